"""A book without enough fraud outcomes: a findings-only model instead of a refusal."""

from __future__ import annotations

import pickle
import shutil
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.metrics import roc_auc_score

from ringscope.app.cli import cli
from ringscope.app.jobs import flag_applications
from ringscope.detectors.evaluate import read_truth
from ringscope.detectors.risk.config import TooFewOutcomes
from ringscope.detectors.risk.features import finding_features
from ringscope.detectors.risk.findings_only import BestFindingScore, findings_contributions
from ringscope.detectors.risk.model_store import champion, load_model
from ringscope.detectors.risk.scoring import TrainingConfig, contributions
from ringscope.detectors.risk.training import train
from ringscope.detectors.runner import load_findings, run_detectors, save_findings
from ringscope.graph.embedded import EmbeddedStore
from ringscope.ingest.pipeline import ingest_folder
from tests.detectors.builder import ExportBuilder

LATER = datetime(2026, 11, 8, 9)  # after every generated application, not in the future


def test_best_finding_score_and_its_reasons():
    X = pd.DataFrame(
        {"det_a": [0.8, 0.0, 0.6, np.nan], "det_b": [0.5, 0.0, 0.6, 0.2], "own": [3.0, 1.0, 2.0, 0.0]},
        index=["x", "y", "z", "w"],
    )
    best = BestFindingScore(["det_a", "det_b", "det_missing"])
    assert best.predict_proba(X)[:, 1].tolist() == [0.8, 0.0, 0.6, 0.2]  # a missing column or value counts 0
    parts = findings_contributions(best, X, ["own", "det_b", "det_a"])
    assert parts.tolist() == [[0.0, 0.5, 0.8], [0.0, 0.0, 0.0], [0.0, 0.6, 0.6], [0.0, 0.2, 0.0]]
    # pickled with the model (a class of the package, no lambda)
    assert pickle.loads(pickle.dumps(best)).predict_proba(X)[:, 1].tolist() == [0.8, 0.0, 0.6, 0.2]


@pytest.fixture
def unlabelled(trained_book, tmp_path):
    """The session's generated book with every label blanked (a lender on its first day),
    plus two earlier applications on one device and account, ingested and detected."""
    data = tmp_path / "data"
    shutil.copytree(trained_book.data, data)
    apps = pd.read_csv(data / "applications.csv", dtype=str, keep_default_na=False)
    apps["label"] = ""
    apps.to_csv(data / "applications.csv", index=False)
    store = EmbeddedStore(tmp_path / "store")
    ingest_folder(data, store, rejects_path=tmp_path / "rejects.csv")
    early = ExportBuilder(start=LATER - timedelta(days=30), first_index=5000)
    for i in range(2):
        early.app(
            f"EARLY{i}",
            device_id="half-ring-device",
            bank_account="6228480055556666777",
            applied_at=LATER - timedelta(days=2 - i),
            label="",
        )
    early.load(store, tmp_path / "early")
    save_findings(store, run_detectors(store))
    yield store
    store.close()


@pytest.mark.slow
def test_no_outcomes_train_a_findings_only_model_that_reviews_and_never_declines(unlabelled, trained_book, tmp_path):
    folder = tmp_path / "models"
    result = train(unlabelled, TrainingConfig(), folder=folder)
    model, report = result.model, result.report
    assert model.kind == report["chosen"] == "findings" and result.promoted and champion(folder) == model.version
    assert "No labelled applications" in report["findings_only"]["why"]
    # the score is the best label-free finding score, application by application
    scored = result.scored.set_index("application_id")
    apps = pd.DataFrame(
        {
            "application_id": scored.index,
            "applied_at": pd.Timestamp("2026-01-01", tz="UTC"),
            "label": "",
        }
    )
    best = finding_features(load_findings(unlabelled), apps).filter(like="det_").max(axis=1)
    # scores are rounded to 4 places
    assert np.allclose(scored["score"].astype(float), best.reindex(scored.index).fillna(0.0), atol=5e-5)
    assert (scored["decision"] == "review").sum() == (scored["score"].astype(float) >= 0.3).sum() > 0
    assert "decline" not in set(scored["decision"])
    # and it ranks the planted fraud far above the honest (the detectors need no labels)
    truth = read_truth(trained_book.data / "truth")
    fraud = scored.index.isin(truth.index[truth["is_fraud"]])
    assert fraud.sum() > 10 and roc_auc_score(fraud, scored["score"].astype(float)) > 0.85
    # saved and loaded like any model; no ROC to draw
    loaded = load_model(folder, model.version)
    assert loaded.kind == "findings" and not (folder / model.version / "roc.png").exists()

    # the nightly flag: the new batch completes a ring, which goes to review with its ring_id
    batch = ExportBuilder(start=LATER, first_index=6000)
    for i in range(2):
        batch.app(
            f"NEW{i}",
            device_id="half-ring-device",
            bank_account="6228480055556666777",
            applied_at=LATER + timedelta(hours=i),
            label="",
        )
    batch.app("HONEST", applied_at=LATER + timedelta(hours=3), label="")
    _, flagged = flag_applications(unlabelled, batch.write(tmp_path / "new"), loaded, tmp_path / "new-rejects.csv")
    flags = flagged.flags.set_index("application_id")
    ring = [f for f in flagged.new_findings if f.detector == "shared_identifier_rings"]
    assert len(ring) == 1 and set(ring[0].members) >= {"NEW0", "NEW1", "EARLY0", "EARLY1"}
    assert flags.loc["NEW0", "decision"] == "review" and flags.loc["NEW0", "ring_id"] == ring[0].finding_id
    assert float(flags.loc["NEW0", "score"]) == pytest.approx(ring[0].score, abs=5e-5)  # flags round to 4 places
    assert flags.loc["HONEST", "decision"] == "pass" and flags.loc["HONEST", "ring_id"] == ""
    assert '"det_shared_identifier_rings"' in flags.loc["NEW0", "reasons"]
    # a decline only when asked for
    _, asked = flag_applications(
        unlabelled, tmp_path / "new", loaded, tmp_path / "again-rejects.csv", review=0.3, decline=0.2
    )
    assert (asked.flags.set_index("application_id").loc[["NEW0", "NEW1"], "decision"] == "decline").all()


@pytest.mark.slow
def test_a_learned_champion_is_never_replaced_by_a_findings_only_model(unlabelled, trained_book, tmp_path):
    folder = tmp_path / "models"
    shutil.copytree(trained_book.store_path / "models", folder)
    learned = champion(folder)
    with pytest.raises(TooFewOutcomes, match=f"The champion {learned}, learned from outcomes, keeps scoring"):
        train(unlabelled, TrainingConfig(), folder=folder)
    assert champion(folder) == learned
    # refusing is also a choice; and credit default has no findings to stand in for it
    with pytest.raises(TooFewOutcomes, match="No labelled applications"):
        train(unlabelled, TrainingConfig(), folder=tmp_path / "empty", too_few="refuse")
    with pytest.raises(TooFewOutcomes, match="the detectors find fraud, not default"):
        train(unlabelled, TrainingConfig(target="default"), folder=tmp_path / "default")
    assert champion(tmp_path / "empty") is None and champion(tmp_path / "default") is None


@pytest.mark.slow
def test_the_first_learned_model_replaces_a_findings_only_champion(unlabelled, trained_store, tmp_path):
    folder = tmp_path / "models"
    first = train(unlabelled, TrainingConfig(), folder=folder).model.version
    learned = train(trained_store, TrainingConfig(), folder=folder)  # promote="never", yet it replaces it
    assert learned.model.kind != "findings" and learned.promoted and champion(folder) == learned.model.version
    assert learned.event.reason == f"the champion {first} is findings-only"


@pytest.mark.slow
def test_cli_says_what_a_findings_only_model_does(unlabelled, tmp_path):
    path = str(unlabelled.path)
    unlabelled.close()
    result = CliRunner().invoke(cli, ["train", "--store", path, "--quiet"])
    assert result.exit_code == 0, result.output
    assert "(findings) saved in" in result.output and "nothing declined" in result.output
    assert "decline 0" in result.output
    refused = CliRunner().invoke(cli, ["train", "--store", path, "--quiet", "--too-few", "refuse"])
    assert refused.exit_code != 0 and "No labelled applications" in refused.output


def test_contributions_of_a_findings_only_model_follow_the_findings():
    from ringscope.detectors.risk.findings_only import findings_only_model

    features = pd.DataFrame(
        {"det_identity": [0.9, 0.1], "det_broker_rings": [0.4, 0.0], "log_amount": [10.0, 9.0]}, index=["a", "b"]
    )
    applied = pd.Series(pd.to_datetime(["2026-01-01", "2026-01-02"]), index=["a", "b"])
    model, report = findings_only_model(features, applied, TrainingConfig(), "No labelled applications")
    parts = contributions(model, features.reindex(columns=model.features, fill_value=0.0))
    assert parts.loc["a", "det_identity"] == 0.9 and parts.loc["a", "det_broker_rings"] == 0.4
    assert model.decide(np.array([0.95, 0.5, 0.1])).tolist() == ["review", "review", "pass"]
    assert model.decide(np.array([0.95]), decline=0.9).tolist() == ["decline"]
    assert report["train"]["from"].startswith("2026-01-01") and report["validation"]["method"] == "none"
