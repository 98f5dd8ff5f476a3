"""``ringscope train`` / ``flag`` with targets: the fraud model by default,
the credit-default model on request, each in its own folder and properties."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from ringscope.app.cli import cli
from ringscope.detectors.risk.model_store import load_model, save_model, target_folder
from ringscope.graph.embedded import EmbeddedStore
from ringscope.ingest.pipeline import ingest_folder
from ringscope.ingest.synthetic import GeneratorConfig, generate_portfolio
from tests.detectors.builder import ExportBuilder

# trains models or runs whole jobs end to end: in `make test`, not in `make test-fast`
pytestmark = pytest.mark.slow


def _run(*args: str) -> str:
    result = CliRunner().invoke(cli, [*args, "--quiet"])
    assert result.exit_code == 0, result.output
    return result.output


def _scores(store_path, keys, props) -> pd.DataFrame:
    store = EmbeddedStore(store_path)
    try:
        return store.node_properties("Application", keys, props).set_index("key")
    finally:
        store.close()


def _report(folder) -> dict:
    version = (folder / "LATEST").read_text(encoding="utf-8")
    return json.loads((folder / version / "report.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A book trained twice through the CLI: ``train``, then ``train --target default``
    (what each printed, and the fraud scores as they were between the two)."""
    root = tmp_path_factory.mktemp("targets")
    generate_portfolio(GeneratorConfig(applications=1200, seed=3), root / "data")
    store = EmbeddedStore(root / "store")
    ingest_folder(root / "data", store, rejects_path=root / "rejects.csv")
    store.close()
    apps = pd.read_csv(root / "data" / "applications.csv", dtype=str, keep_default_na=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("RINGSCOPE_MODELS", raising=False)  # the store's own models folder
        fraud_out = _run("train", "--store", str(root / "store"))
        fraud_scores = _scores(root / "store", apps["application_id"].head(50).tolist(), ["risk_score", "risk_model"])
        fraud_latest = (root / "store" / "models" / "LATEST").read_text(encoding="utf-8")
        default_out = _run("train", "--store", str(root / "store"), "--target", "default")
    return root, apps, fraud_out, fraud_scores, fraud_latest, default_out


def test_train_learns_fraud_by_default_and_says_so(trained):
    root, apps, out, _, _, _ = trained
    folder = target_folder(EmbeddedStore(root / "store"))
    report = _report(folder)
    assert report["target"] == "fraud" and report["positive_labels"] == ["fraud"]
    assert report["bad"] == report["positives"]["total"] == (apps["label"] == "fraud").sum()
    assert report["negatives"]["default"] == (apps["label"] == "default").sum()  # defaults are negatives
    assert "target fraud:" in out and f"{report['positives']['total']:,} positives" in out
    assert f"{report['negatives']['default']:,} default" in out


def test_the_default_target_is_its_own_model_and_score(trained, monkeypatch):
    monkeypatch.delenv("RINGSCOPE_MODELS", raising=False)
    root, apps, _, fraud_scores, fraud_latest, out = trained
    fraud_folder = target_folder(EmbeddedStore(root / "store"))
    default_folder = target_folder(EmbeddedStore(root / "store"), "default")
    assert default_folder == fraud_folder / "default" and str(default_folder) in out
    report = _report(default_folder)
    assert report["target"] == "default" and report["positives"]["total"] == (apps["label"] == "default").sum()
    assert report["left_out"] == {"fraud": int((apps["label"] == "fraud").sum())}  # a fraud is no credit risk
    assert "target default:" in out and "left out:" in out
    # the fraud model and its scores are untouched; the default score has its own properties
    assert (fraud_folder / "LATEST").read_text(encoding="utf-8") == fraud_latest
    assert load_model(fraud_folder).target == "fraud" and load_model(default_folder).target == "default"
    after = _scores(
        root / "store", fraud_scores.index.tolist(), ["risk_score", "risk_model", "default_score", "default_model"]
    )
    pd.testing.assert_series_equal(after["risk_score"], fraud_scores["risk_score"])
    assert (after["risk_model"] == fraud_latest).all()
    assert (after["default_model"] == report["version"]).all() and after["default_score"].between(0, 1).all()

    # flag uses the fraud model unless asked, and writes each target's own properties
    for i, (target, prop, other) in enumerate(
        (("default", "default_score", "risk_score"), ("fraud", "risk_score", "default_score"))
    ):
        batch = ExportBuilder(first_index=9000 + 10 * i)
        new_id = batch.app(label="")["application_id"]
        out_csv = root / f"{target}.csv"
        printed = _run(
            "flag",
            str(batch.write(root / f"new-{target}")),
            "--store",
            str(root / "store"),
            "--out",
            str(out_csv),
            "--rejects",
            str(root / f"{target}-rejects.csv"),
            *(["--target", "default"] if target == "default" else []),
        )
        assert f"with the {target} model" in printed and "ring_id on" in printed
        flags = pd.read_csv(out_csv, encoding="utf-8-sig", keep_default_na=False).set_index("application_id")
        stored = _scores(root / "store", [new_id], ["risk_score", "default_score"])
        assert stored.loc[new_id, prop] == pytest.approx(flags.loc[new_id, "score"])
        assert pd.isna(stored.loc[new_id, other])


def test_a_model_from_before_targets_is_not_used_as_the_fraud_model(trained, tmp_path, monkeypatch):
    root = trained[0]
    model = load_model(root / "store" / "models")  # the fraud model of the book
    # what an older ringscope saved: no target, fraud and default mixed
    del model.config.__dict__["target"]
    model.config.__dict__["bad_labels"] = ("fraud", "default")
    model.version = "old-mixed"
    save_model(model, {"version": "old-mixed"}, tmp_path / "models")
    assert load_model(tmp_path / "models").target == "fraud+default"
    monkeypatch.setenv("RINGSCOPE_MODELS", str(tmp_path / "models"))
    folder = ExportBuilder(first_index=9500).write(tmp_path / "new")
    result = CliRunner().invoke(
        cli,
        [
            "flag",
            str(folder),
            "--store",
            str(root / "store"),
            "--out",
            str(tmp_path / "f.csv"),
            "--rejects",
            str(tmp_path / "r.csv"),
            "--quiet",
        ],
    )
    assert result.exit_code != 0 and "predicts 'fraud+default', not 'fraud'" in result.output
    assert not (tmp_path / "f.csv").exists()
    # what the message says to do works: the next train replaces it (it cannot stay champion)
    retrained = CliRunner().invoke(cli, ["train", "--store", str(root / "store"), "--quiet"])
    assert retrained.exit_code == 0 and "predicts 'fraud+default', not 'fraud'" in retrained.output, retrained.output
    assert load_model(tmp_path / "models").target == "fraud"


def test_bad_is_a_deprecated_alias_of_one_target(tmp_path, monkeypatch):
    monkeypatch.setenv("RINGSCOPE_MODELS", str(tmp_path / "none"))
    mixed = CliRunner().invoke(cli, ["train", "--store", str(tmp_path / "s"), "--bad", "fraud,default"])
    assert mixed.exit_code == 2 and "--target fraud" in mixed.output and "--target default" in mixed.output
    clash = CliRunner().invoke(cli, ["train", "--store", str(tmp_path / "s"), "--bad", "fraud", "--target", "default"])
    assert clash.exit_code == 2 and "disagree" in clash.output
    missing = CliRunner().invoke(
        cli,
        [
            "flag",
            str(ExportBuilder().write(tmp_path / "x")),
            "--store",
            str(tmp_path / "s"),
            "--target",
            "default",
            "--quiet",
        ],
    )
    assert missing.exit_code != 0 and "run `ringscope train --target default` first" in missing.output


def test_training_summary_says_when_validation_is_not_out_of_time(capsys, tmp_path):
    from types import SimpleNamespace

    from ringscope.app.cli.models import print_training

    metrics = {"auc": 0.9, "ks": 0.7, "precision_at_k": 0.5}
    report = {
        "target": "fraud",
        "version": "v1",
        "chosen": "scorecard",
        "review_capacity_k": 3,
        "positive_labels": ["fraud"],
        "labelled": 400,
        "negatives": {"good": 388},
        "left_out": {},
        "positives": {"total": 12, "from labels": 12, "from case verdicts": 0},
        "validation": {
            "method": "stratified 5-fold",
            "n": 400,
            "bad": 12,
            "from": "2025-01-01",
            "to": "2026-02-04",
            "why": "the out-of-time split holds 12 fraud outcomes before 2025-10-28 and 0 after (it needs 5 and 2)",
        },
        "models": {
            "scorecard": {
                "all features": metrics,
                "without graph": metrics,
                "uplift_auc": 0.0,
                "uplift_precision_at_k": 0.0,
            }
        },
    }
    result = SimpleNamespace(report=report, folder=tmp_path, scored=pd.DataFrame({"decision": ["pass"]}), bad_values=[])
    print_training(result)
    out = capsys.readouterr().out
    assert "stratified 5-fold validation over all 400 labelled applications (12 fraud), not out of time" in out
    assert "0 after (it needs 5 and 2)" in out and "out-of-time validation on" not in out
