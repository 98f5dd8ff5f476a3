"""Champion and challenger: promote, roll back, shadow (issue 16).

A generated book whose later months bring a new fraud pattern: frauds arrive
through a new channel the champion never saw. Once investigators' verdicts
on those months are in, a challenger trained on them beats the champion out
of time and the ``auto`` rule promotes it; a challenger trained on nothing
new does not win. Promotion and rollback move the champion both ways, each
audited, and the stored scores follow the champion; ``flag --shadow``
records the challenger's decisions and acts on the champion's only.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from ringscope.app.cli import cli
from ringscope.detectors.risk.flagging import FlagIndex
from ringscope.detectors.risk.model_store import challenger, champion, champion_history, load_model, promote, rollback
from ringscope.detectors.risk.scoring import TrainingConfig
from ringscope.detectors.risk.training import train
from ringscope.detectors.runner import run_detectors, save_findings
from ringscope.graph.embedded import EmbeddedStore
from ringscope.graph.store import GraphBatch
from ringscope.ingest.pipeline import ingest_folder
from ringscope.ingest.synthetic import GeneratorConfig, generate_portfolio
from tests.detectors.builder import ExportBuilder

# trains models or runs whole jobs end to end: in `make test`, not in `make test-fast`
pytestmark = pytest.mark.slow

#: the champion is trained when outcomes are known up to here; the new pattern starts here too
KNOWN_UNTIL = pd.Timestamp("2025-09-01", tz="Asia/Shanghai")


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    root = tmp_path_factory.mktemp("lifecycle")
    generate_portfolio(GeneratorConfig(applications=3000, seed=11), root / "data")
    path = root / "data" / "applications.csv"
    apps = pd.read_csv(path, dtype=str, keep_default_na=False)
    truth = pd.read_csv(root / "data" / "truth" / "applications.csv", dtype=str, keep_default_na=False)
    fraud = apps["application_id"].map(truth.set_index("application_id")["is_fraud"].astype(str).isin(["1", "True"]))
    fraud = fraud.fillna(False).astype(bool)
    later = pd.to_datetime(apps["applied_at"], errors="coerce", utc=True) >= KNOWN_UNTIL.tz_convert("UTC")
    apps.loc[later, "label"] = ""  # their outcomes are not known yet when the champion is trained
    rng = np.random.default_rng(3)
    # the new pattern: from then on most frauds come through a live-stream channel, few honest people do
    livestream = later & ((fraud & (rng.random(len(apps)) < 0.9)) | (~fraud & (rng.random(len(apps)) < 0.02)))
    apps.loc[livestream, "channel"] = "livestream"
    apps.to_csv(path, index=False)
    store = EmbeddedStore(root / "store")
    ingest_folder(root / "data", store, rejects_path=root / "rejects.csv")
    save_findings(store, run_detectors(store, ["shared_identifier_rings", "guarantee_circles"]))
    first = train(store, TrainingConfig(), user="tester")
    # verdicts on the later months arrive: the frauds confirmed, the others dismissed
    stored = store.read_nodes("Application", ["applied_at"])
    late_ids = stored.loc[pd.to_datetime(stored["applied_at"], utc=True) >= KNOWN_UNTIL.tz_convert("UTC"), "key"]
    is_fraud = dict(zip(apps["application_id"], fraud))
    store.write(
        GraphBatch(
            nodes={
                "Case": pd.DataFrame(
                    {
                        "key": [f"case-{k}" for k in late_ids],
                        "target_label": "Application",
                        "target_key": list(late_ids),
                        "status": ["Confirmed fraud" if is_fraud.get(k) else "Dismissed" for k in late_ids],
                    }
                )
            }
        )
    )
    return store, first, root


def test_the_first_model_is_the_champion_and_scores_the_book(book):
    store, first, _ = book
    folder = first.folder.parent
    assert first.promoted and first.comparison is None
    assert champion(folder) == first.model.version and challenger(folder) is None
    scored = store.read_nodes("Application", ["risk_model"])
    assert set(scored["risk_model"]) == {first.model.version}


def test_a_challenger_that_learned_the_new_pattern_wins_and_the_rule_promotes_it(book):
    store, first, root = book
    result = train(store, TrainingConfig(), promote="auto", user="tester")
    folder = result.folder.parent
    comparison = result.comparison
    # judged on the same out-of-time applications, which the champion never learned from
    assert comparison["champion_version"] == first.model.version and not comparison["champion_in_sample"]
    assert comparison["challenger"]["auc"] > comparison["champion"]["auc"] + 0.02, comparison["verdict"]
    assert comparison["challenger_wins"] and result.promoted
    assert champion(folder) == result.model.version
    assert set(store.read_nodes("Application", ["risk_model"])["risk_model"]) == {result.model.version}
    last = champion_history(folder)[-1]
    assert (last.action, last.before, last.after, last.user) == (
        "promote",
        first.model.version,
        result.model.version,
        "tester",
    )
    assert "auto" in last.reason and "challenger wins" in last.reason

    # trained again on nothing new: it cannot beat the champion that learned the same outcomes
    again = train(store, TrainingConfig(), promote="auto", user="tester")
    assert not again.promoted and not again.comparison["challenger_wins"]
    assert champion(folder) == result.model.version and challenger(folder) == again.model.version
    # the stored scores stay the champion's
    assert set(store.read_nodes("Application", ["risk_model"])["risk_model"]) == {result.model.version}


def test_promote_and_rollback_round_trip_audited_and_rescored(book):
    store, _, root = book
    folder = Path(store.location) / "models"
    runner = CliRunner()
    before, waiting = champion(folder), challenger(folder)
    assert waiting is not None and waiting != before
    promoted = runner.invoke(
        cli, ["promote", "--store", str(store.location), "--reason", "quarterly review", "--quiet"]
    )
    assert promoted.exit_code == 0, promoted.output
    assert champion(folder) == waiting and f"{before} -> {waiting}" in promoted.output
    assert set(store.read_nodes("Application", ["risk_model"])["risk_model"]) == {waiting}
    back = runner.invoke(cli, ["rollback", "--store", str(store.location), "--quiet"])
    assert back.exit_code == 0, back.output
    assert champion(folder) == before
    assert set(store.read_nodes("Application", ["risk_model"])["risk_model"]) == {before}
    audit = store.read_nodes("AuditEvent", ["action", "target", "before", "after"])
    moves = audit[audit["action"].str.startswith("model ")].sort_values("key")
    assert list(moves["action"])[-2:] == ["model promote", "model rollback"]
    assert set(moves["target"]) == {"model:fraud"}
    # a version that does not exist is refused and changes nothing
    refused = runner.invoke(cli, ["promote", "no-such-version", "--store", str(store.location), "--quiet"])
    assert refused.exit_code == 1 and "No model version" in refused.output and champion(folder) == before


def test_rollback_walks_back_along_promotions(tmp_path):
    for version in ("v1", "v2", "v3"):
        (tmp_path / version).mkdir()
        (tmp_path / version / "model.joblib").write_bytes(b"")
    promote(tmp_path, "v1", "a")
    promote(tmp_path, "v2", "a")
    promote(tmp_path, "v3", "a")
    assert rollback(tmp_path, "b").after == "v2" and rollback(tmp_path, "b").after == "v1"
    with pytest.raises(ValueError, match="No earlier champion"):
        rollback(tmp_path, "b")
    promote(tmp_path, "v3", "a")
    assert rollback(tmp_path, "b").after == "v1"  # v2 was rolled back past; it is not in force any more


def test_shadow_flags_are_recorded_and_never_change_decisions(book, tmp_path):
    store, _, _ = book
    folder = Path(store.location) / "models"
    shadow_version = challenger(folder)
    assert shadow_version is not None
    batch = ExportBuilder(start=datetime(2026, 11, 2, 9), first_index=7000)
    for i in range(6):
        batch.app(f"NIGHT{i}", channel="livestream" if i % 2 else "app", label="")
    out = tmp_path / "flags.csv"
    flagged = CliRunner().invoke(
        cli,
        [
            "flag",
            str(batch.write(tmp_path / "new")),
            "--store",
            str(store.location),
            "--shadow",
            "--out",
            str(out),
            "--rejects",
            str(tmp_path / "r.csv"),
            "--quiet",
        ],
    )
    assert flagged.exit_code == 0, flagged.output
    assert f"the challenger {shadow_version}" in flagged.output
    flags = pd.read_csv(out, encoding="utf-8-sig").set_index("application_id")
    # the champion alone decides: the same flags as scoring with it directly
    champ = load_model(folder)
    direct = FlagIndex.build(store, champ.known_bad).score(champ, list(flags.index)).flags.set_index("application_id")
    assert (flags["decision"] == direct["decision"]).all()
    np.testing.assert_allclose(flags["score"], direct["score"], atol=1e-4)
    stored = store.node_properties(
        "Application",
        list(flags.index),
        ["risk_model", "risk_decision", "shadow_model", "shadow_score", "shadow_decision"],
    )
    stored = stored.set_index("key").loc[flags.index]
    assert set(stored["risk_model"]) == {champ.version} and set(stored["shadow_model"]) == {shadow_version}
    assert (stored["risk_decision"] == flags["decision"]).all()
    shadow = load_model(folder, shadow_version)
    shadow_flags = FlagIndex.build(store, shadow.known_bad).score(shadow, list(flags.index)).flags
    np.testing.assert_allclose(
        stored["shadow_score"].astype(float),
        shadow_flags.set_index("application_id").loc[flags.index, "score"],
        atol=1e-4,
    )


def test_the_nightly_script_runs_flag_and_monitor_and_never_overlaps(book, tmp_path):
    import fcntl
    import os
    import subprocess
    import sys

    store, _, _ = book
    script = Path(__file__).resolve().parents[2] / "docs" / "scheduling" / "ringscope-nightly.sh"
    batch = ExportBuilder(start=datetime(2026, 11, 3, 9), first_index=7100)
    for i in range(3):
        batch.app(f"CRON{i}", label="")
    incoming = batch.write(tmp_path / "incoming")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "RINGSCOPE_SCHEDULE_LOCK": str(tmp_path / "schedule.lock"),
    }
    run = [str(script), str(incoming), str(tmp_path / "runs"), "--store", str(store.location)]
    with open(tmp_path / "schedule.lock", "w") as held:  # a run still going
        fcntl.flock(held, fcntl.LOCK_EX)
        busy = subprocess.run(run, env=env, capture_output=True, text=True, timeout=600)
    assert busy.returncode == 75 and "still going" in busy.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("flags.csv"))
    done = subprocess.run(run, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode in (0, 1), done.stderr  # 1: monitor says "act" (this book did drift)
    flags = next((tmp_path / "runs").rglob("flags.csv"))
    assert {"CRON0", "CRON1", "CRON2"} <= set(pd.read_csv(flags, encoding="utf-8-sig")["application_id"])
    assert next((tmp_path / "runs").rglob("monitoring.png")).stat().st_size > 0


@pytest.mark.neo4j
def test_lifecycle_on_neo4j(neo4j_store, neo4j_uri, tmp_path, monkeypatch):
    """The same commands on a real Neo4j: models in the user's data folder, audit events in the graph."""
    monkeypatch.delenv("RINGSCOPE_MODELS", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    generate_portfolio(GeneratorConfig(applications=1200, seed=3), tmp_path / "data")
    ingest_folder(tmp_path / "data", neo4j_store, rejects_path=tmp_path / "rejects.csv")
    runner = CliRunner()
    args = ["--neo4j", neo4j_uri, "--quiet"]
    first = runner.invoke(cli, ["train", *args])
    assert first.exit_code == 0 and "is the champion (first model)" in first.output, first.output
    second = runner.invoke(cli, ["train", *args])
    assert second.exit_code == 0 and "saved as the challenger" in second.output, second.output
    from ringscope.detectors.risk.scoring import target_folder

    folder = target_folder(neo4j_store, "fraud")
    assert folder.is_relative_to(tmp_path / "xdg")
    old, new = champion(folder), challenger(folder)
    assert runner.invoke(cli, ["promote", *args]).exit_code == 0 and champion(folder) == new
    scored = neo4j_store.read_nodes("Application", ["risk_model"])
    assert set(scored["risk_model"]) == {new}
    assert runner.invoke(cli, ["rollback", *args]).exit_code == 0 and champion(folder) == old
    audit = neo4j_store.read_nodes("AuditEvent", ["action"])
    assert {"model promote", "model rollback"} <= set(audit["action"])
    watched = runner.invoke(cli, ["monitor", *args, "--period", "month"])
    assert watched.exit_code in (0, 1) and f"model {old}" in watched.output, watched.output
    assert (folder / "monitoring.json").exists()
