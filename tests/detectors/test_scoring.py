"""Risk features, training, reasons: leakage, determinism, feedback."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from ringscope.detectors.portfolio import Portfolio
from ringscope.detectors.risk.features import application_features, identifier_history
from ringscope.detectors.risk.reasons import reason_code
from ringscope.detectors.risk.scoring import TrainingConfig, ks_statistic, load_model, precision_at_k
from ringscope.detectors.risk.training import outcome_labels, train
from ringscope.detectors.runner import run_detectors
from ringscope.graph.embedded import EmbeddedStore
from ringscope.graph.store import GraphBatch
from tests.detectors.builder import ExportBuilder

T0 = datetime(2025, 3, 1, 10)


def _shared_device_store(tmp_path, labels: list[str]) -> EmbeddedStore:
    b = ExportBuilder()
    for i, label in enumerate(labels):
        b.app(f"D{i}", device_id="dev-shared", applied_at=T0 + timedelta(days=i), label=label)
    for _ in range(5):
        b.app()
    store = EmbeddedStore(tmp_path / "store")
    b.load(store, tmp_path / "export")
    return store


def test_features_use_only_labels_of_earlier_applications(tmp_path):
    base = application_features(Portfolio(_shared_device_store(tmp_path / "a", ["fraud", "", "", ""])))
    later_bad = application_features(Portfolio(_shared_device_store(tmp_path / "b", ["fraud", "", "", "fraud"])))
    # D1 and D2 see D0's fraud (earlier); nobody before D3 changes when D3 is labelled
    assert base.loc["D1", "bad_earlier_device"] == 1 and base.loc["D2", "bad_earlier_device"] == 1
    assert base.loc["D0", "bad_earlier_device"] == 0
    cols = [c for c in base.columns if c not in ("product", "channel")]
    pd.testing.assert_frame_equal(base.loc[["D0", "D1", "D2"], cols], later_bad.loc[["D0", "D1", "D2"], cols])
    assert base.loc["D3", "earlier_sharers_device"] == 3


def test_finding_scores_enter_features_without_their_label_part(tmp_path):
    values = []
    for name, labels in (("clean", ["", "", "", ""]), ("labelled", ["fraud", "fraud", "", ""])):
        store = _shared_device_store(tmp_path / name, labels)
        run = run_detectors(store, ["shared_identifier_rings"])
        feats = application_features(Portfolio(store), run.findings)
        values.append(feats.loc["D3", "det_shared_identifier_rings"])
        if name == "labelled":
            assert max(f.score for f in run.findings) > values[0]  # the finding itself did use labels
            assert feats.loc["D3", "known_bad_2hop"] == 2 and feats.loc["D0", "known_bad_2hop"] == 0
    assert values[0] == pytest.approx(values[1])


def test_identifier_history_ignores_the_same_person():
    links = pd.DataFrame(
        {"application_id": ["a", "b", "c"], "kind": "phone", "identifier": "p", "entity": ["x", "x", "y"]}
    )
    times = pd.Series(pd.to_datetime(["2025-01-01", "2025-01-02", "2025-01-03"]), index=["a", "b", "c"])
    h = identifier_history(links, times, pd.Series(True, index=["a", "b", "c"])).set_index("application_id")
    assert h.loc["b", "earlier"] == 0 and h.loc["c", "earlier"] == 2 and h.loc["c", "bad_earlier"] == 2


def test_identifier_history_equals_counting_by_hand_with_ties_and_missing_times():
    """The sorted-array counting against the definition, pair by pair: for
    each link, the other people's links to the same identifier strictly
    earlier in time (ties: earlier in the links' order), none when either
    time is missing; with repeated applications of one person."""
    rng = np.random.default_rng(5)
    n = 400
    apps = [f"a{i}" for i in range(120)]
    day = pd.Series(pd.to_datetime("2025-01-01", utc=True) + pd.to_timedelta(rng.integers(0, 30, 120), "D"), index=apps)
    day.iloc[::17] = pd.NaT
    bad = pd.Series(rng.random(120) < 0.3, index=apps)
    person = {a: f"p{rng.integers(0, 70)}" for a in apps}
    links = pd.DataFrame({"application_id": rng.choice(apps, n), "kind": rng.choice(["phone", "device"], n)})
    links["identifier"] = [f"i{k}" for k in rng.integers(0, 25, n)]
    links["entity"] = links["application_id"].map(person)
    got = identifier_history(links, day, bad)
    rows = list(links.itertuples())
    for me in rows:
        earlier = bad_earlier = 0
        for other in rows:
            if (other.kind, other.identifier) != (me.kind, me.identifier) or other.entity == me.entity:
                continue
            t_me, t_other = day[me.application_id], day[other.application_id]
            if pd.isna(t_me) or pd.isna(t_other):
                continue
            if t_other < t_me or (t_other == t_me and other.Index < me.Index):
                earlier += 1
                bad_earlier += int(bad[other.application_id])
        assert (got.loc[me.Index, "earlier"], got.loc[me.Index, "bad_earlier"]) == (earlier, bad_earlier), me


def test_metrics():
    y = np.array([1, 0, 1, 0, 0])
    s = np.array([0.9, 0.8, 0.7, 0.2, 0.1])
    assert precision_at_k(y, s, 1) == 1.0 and precision_at_k(y, s, 3) == pytest.approx(2 / 3)
    assert ks_statistic(y, s) == pytest.approx(2 / 3)


def test_reason_codes_name_what_they_mean():
    assert reason_code("det_guarantee_circles")[0] == "GUARANTEE_CIRCLE"
    assert reason_code("earlier_sharers_account")[0] == "SHARED_ACCOUNT"
    assert reason_code("id_checksum_bad")[0] == "ID_CHECKSUM_FAILED"


@pytest.fixture
def trained(trained_book, trained_store):
    """The session's trained book: a store of our own to write into, and its training result."""
    return trained_store, trained_book.result


def test_training_report_and_saved_model(trained):
    store, result = trained
    report = result.report
    assert set(report["models"]) == {"scorecard", "gbm"}
    for m in report["models"].values():
        assert 0.5 < m["all features"]["auc"] <= 1.0
        assert "uplift_auc" in m
    # out of time: every validation application is later than every training one
    assert report["train"]["to"] <= report["validation"]["from"]
    saved = json.loads((result.folder / "report.json").read_text(encoding="utf-8"))
    assert saved["version"] == result.model.version
    assert (result.folder / "roc.png").stat().st_size > 5_000 and (result.folder / "scores.png").exists()
    loaded = load_model(result.folder.parent)
    assert loaded.version == result.model.version
    # scores written onto the applications, every one with a decision and JSON reasons
    apps = store.read_nodes("Application", ["risk_score", "risk_decision", "risk_reasons", "label"])
    assert apps["risk_score"].between(0, 1).all()
    assert set(apps["risk_decision"]) <= {"pass", "review", "decline"}
    top = apps.sort_values("risk_score").iloc[-1]
    reasons = json.loads(top["risk_reasons"])
    assert reasons and all({"code", "contribution", "detail"} <= set(r) for r in reasons)
    assert [r["contribution"] for r in reasons] == sorted((r["contribution"] for r in reasons), reverse=True)
    # the model separates bad from good on its own portfolio
    bad = apps["label"].isin(["fraud", "default"])
    assert apps.loc[bad, "risk_score"].mean() > 2 * apps.loc[apps["label"] == "good", "risk_score"].mean()


def test_training_is_deterministic(trained, tmp_path):
    store, first = trained
    second = train(store, TrainingConfig(), folder=tmp_path / "models")
    merged = first.scored.merge(second.scored, on="application_id")
    np.testing.assert_allclose(merged["score_x"], merged["score_y"])
    assert (merged["reasons_x"] == merged["reasons_y"]).all()


def test_case_verdicts_become_labels(trained):
    store, result = trained
    apps = Portfolio(store).applications
    unlabelled = apps.loc[apps["label"].isna(), "application_id"].iloc[:2].tolist()
    good = apps.loc[apps["label"] == "good", "application_id"].iloc[0]
    cases = pd.DataFrame(
        {
            "key": ["case-1", "case-2", "case-3"],
            "target_label": ["Application"] * 3,
            "target_key": [unlabelled[0], unlabelled[1], good],
            "status": ["Confirmed fraud", "Dismissed", "Confirmed fraud"],
        }
    )
    store.write(GraphBatch(nodes={"Case": cases}))
    labels = outcome_labels(store, Portfolio(store))
    assert labels[unlabelled[0]] == "fraud" and labels[unlabelled[1]] == "good" and labels[good] == "fraud"


def test_training_without_outcomes_is_a_clear_error(tmp_path):
    b = ExportBuilder()
    for _ in range(20):
        b.app(label="")
    store = EmbeddedStore(tmp_path / "s")
    b.load(store, tmp_path / "e")
    with pytest.raises(ValueError, match="No labelled applications"):
        train(store, folder=tmp_path / "m", too_few="refuse")
    # by default a findings-only model stands in, and says why (tests/detectors/test_findings_only.py);
    # here no detector ran, so every score is 0 and every application passes
    standing_in = train(store, folder=tmp_path / "m")
    assert "No labelled applications" in standing_in.report["findings_only"]["why"]
    assert set(standing_in.scored["decision"]) == {"pass"} and len(standing_in.scored) == 20


def test_compiled_scorecard_reproduces_sklearn_row_by_row(trained):
    from ringscope.detectors.risk.features import application_features
    from ringscope.detectors.risk.scoring import compile_scorecard, contributions

    store, result = trained
    model = result.model
    assert model.kind == "scorecard"
    from ringscope.detectors.runner import load_findings

    features = application_features(Portfolio(store), load_findings(store))[model.features].head(300)
    compiled = compile_scorecard(model, features)
    assert compiled is not None
    expected = model.estimator.predict_proba(features)[:, 1]
    np.testing.assert_allclose(compiled.predict_proba(features), expected, atol=1e-12)
    # sklearn's own per-feature terms (the uncompiled branch) against the tables
    plain = copy.copy(model)
    plain._compiled = None  # no tables: contributions() takes sklearn's branch
    uncompiled = contributions(plain, features)
    np.testing.assert_allclose(compiled.contributions(features), uncompiled.to_numpy(), atol=1e-12)
    # one row at a time (the per-application flagging path): the same numbers
    for i in range(0, len(features), 37):
        row = features.iloc[i].tolist()
        score, parts = compiled.predict_one(row)
        assert score == pytest.approx(expected[i], abs=1e-12)
        np.testing.assert_allclose(parts, uncompiled.to_numpy()[i], atol=1e-12)
