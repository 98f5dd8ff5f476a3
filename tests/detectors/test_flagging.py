"""Incremental flagging: new applications scored against the existing graph."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pandas as pd
import pytest
from click.testing import CliRunner

from ringscope.app.cli import cli
from ringscope.app.jobs import flag_applications
from ringscope.detectors.risk.scoring import TrainingConfig
from ringscope.detectors.risk.training import train
from ringscope.detectors.runner import load_findings, run_detectors, save_findings
from ringscope.ingest.pipeline import ingest_folder
from tests.detectors.builder import ExportBuilder

# trains models or runs whole jobs end to end: in `make test`, not in `make test-fast`
pytestmark = pytest.mark.slow

OUTPUT_COLUMNS = ["application_id", "score", "decision", "ring_id", "reasons", "settings"]
LATER = datetime(2026, 11, 8, 9)  # after every generated application, not in the future


@pytest.fixture
def generated(trained_book):
    """The session's generated export (2,500 applications), read only."""
    return trained_book.data


def _prepare(store, generated, tmp_path):
    """Base portfolio + two earlier applications by two people sharing a device
    (too few people for a ring), detect, train."""
    ingest_folder(generated, store, rejects_path=tmp_path / "base-rejects.csv")
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
    run = run_detectors(store, ["shared_identifier_rings", "guarantee_circles"])
    assert not any("EARLY0" in f.members for f in run.findings)
    save_findings(store, run)
    return train(store, TrainingConfig(), folder=tmp_path / "models").model


def _new_batch(tmp_path):
    batch = ExportBuilder(start=LATER, first_index=6000)
    for i in range(2):
        batch.app(
            f"NEW{i}",
            device_id="half-ring-device",
            bank_account="6228480055556666777",
            applied_at=LATER + timedelta(hours=i),
            label="",
        )
    # its own network: three applications in one /24 within hours is a burst worth a look
    batch.app("HONEST", applied_at=LATER + timedelta(hours=3), label="", ip="172.16.9.3")
    batch.app("BROKEN", amount="", label="")  # breaks the contract: rejected, never scored
    return batch.write(tmp_path / "new")


def test_ring_completed_by_the_new_batch_is_flagged(store, generated, tmp_path):
    model = _prepare(store, generated, tmp_path)
    summary, result = flag_applications(store, _new_batch(tmp_path), model, tmp_path / "rejects.csv")
    flags = result.flags.set_index("application_id")
    assert list(result.flags.columns) == OUTPUT_COLUMNS
    assert set(flags.index) == {"NEW0", "NEW1", "HONEST"}
    rejects = pd.read_csv(tmp_path / "rejects.csv", encoding="utf-8-sig")
    assert "missing required value: amount" in set(rejects["reason"])
    # the ring exists only because of the new applications: four people on one device and account
    ring = [f for f in result.new_findings if f.detector == "shared_identifier_rings"]
    assert len(ring) == 1 and set(ring[0].members) == {"EARLY0", "EARLY1", "NEW0", "NEW1"}
    assert flags.loc["NEW0", "ring_id"] == ring[0].finding_id == flags.loc["NEW1", "ring_id"]
    assert pd.isna(flags.loc["HONEST", "ring_id"]) or flags.loc["HONEST", "ring_id"] == ""
    assert flags.loc["NEW0", "score"] > flags.loc["HONEST", "score"]
    assert flags.loc["HONEST", "decision"] == "pass"
    reasons = json.loads(flags.loc["NEW0", "reasons"])
    assert any(ring[0].finding_id in json.dumps(r) for r in reasons), reasons
    # scores and the new ring are saved in the store for the dashboard
    saved = {f.finding_id for f in load_findings(store)}
    assert ring[0].finding_id in saved
    stored = store.node_properties("Application", ["NEW0", "HONEST"], ["risk_score", "risk_decision"])
    assert stored.set_index("key").loc["NEW0", "risk_score"] == pytest.approx(flags.loc["NEW0", "score"])


def test_flag_cli_writes_the_output_contract(generated, tmp_path, monkeypatch):
    from ringscope.graph.embedded import EmbeddedStore

    store = EmbeddedStore(tmp_path / "store")
    _prepare(store, generated, tmp_path)
    monkeypatch.setenv("RINGSCOPE_MODELS", str(tmp_path / "models"))
    out = tmp_path / "flags.csv"
    result = CliRunner().invoke(
        cli,
        [
            "flag",
            str(_new_batch(tmp_path)),
            "--store",
            str(tmp_path / "store"),
            "--out",
            str(out),
            "--rejects",
            str(tmp_path / "r.csv"),
            "--quiet",
            "--review",
            "0.2",
            "--decline",
            "0.6",
        ],
    )
    assert result.exit_code == 0, result.output
    flags = pd.read_csv(out, encoding="utf-8-sig", keep_default_na=False)
    assert list(flags.columns) == OUTPUT_COLUMNS
    assert flags["score"].between(0, 1).all()
    expected = flags["score"].map(lambda s: "decline" if s >= 0.6 else "review" if s >= 0.2 else "pass")
    assert (flags["decision"] == expected).all()
    assert "rejected 1 rows" in result.output and "ring of 4 people" in result.output


def test_flag_without_a_model_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("RINGSCOPE_MODELS", str(tmp_path / "none"))
    folder = ExportBuilder().write(tmp_path / "x")
    result = CliRunner().invoke(cli, ["flag", str(folder), "--store", str(tmp_path / "s"), "--quiet"])
    assert result.exit_code != 0 and "run `ringscope train` first" in result.output


def test_guarantee_circle_closed_by_a_new_application_is_found_locally(tmp_path):
    from ringscope.detectors.guarantees import GuaranteeCircles
    from ringscope.detectors.risk.flagging import FlagIndex
    from ringscope.graph.embedded import EmbeddedStore
    from tests.detectors.builder import company_uscc

    store = EmbeddedStore(tmp_path / "store")
    old = ExportBuilder()
    first = old.business_app(1)["application_id"]
    old.guarantee(first, "company", "c2", company_uscc(2))
    for i in range(3, 8):  # unrelated guarantees elsewhere in the book
        old.guarantee(old.business_app(i)["application_id"], "company", f"c{i + 10}", company_uscc(i + 10))
    old.load(store, tmp_path / "old")
    new = ExportBuilder(first_index=100)
    second = new.business_app(2, "NEWG")["application_id"]
    new.guarantee(second, "company", "c1", company_uscc(1))
    new.load(store, tmp_path / "new")

    index = FlagIndex.build(store)
    circles = GuaranteeCircles()
    local = circles.scope(index.portfolio, [second])
    assert set(local.guarantees["application_id"]) == {first, second}  # only the touched component
    (circle,) = circles.run(local, statistics=circles.statistics(index.portfolio))
    assert circle.kind == "mutual_guarantee" and set(circle.members) == {first, second}
    # and flag's detection step finds it around the new application alone
    (found,) = [f for f in index.detect([second]).findings if f.detector == "guarantee_circles"]
    assert found.finding_id == circle.finding_id


def test_a_device_farm_that_arrives_in_one_night_is_found_by_flag(generated, tmp_path):
    """Issue 12, cause 1: bursts were seen only at the next full ``detect``.
    Six people on one new phone within hours, nothing else shared: only the
    velocity detector can see it, and ``flag`` now runs it around the batch."""
    from ringscope.detectors.risk.flagging import FlagIndex
    from ringscope.graph.embedded import EmbeddedStore

    store = EmbeddedStore(tmp_path / "store")
    model = _prepare(store, generated, tmp_path)
    farm = ExportBuilder(start=LATER, first_index=7000)
    for i in range(6):
        farm.app(
            f"FARM{i}",
            device_id="farm-phone-1",
            ip=f"172.20.{i}.7",
            applied_at=LATER + timedelta(minutes=25 * i),
            label="",
        )
    farm.load(store, tmp_path / "farm")
    ids = [f"FARM{i}" for i in range(6)]
    result = FlagIndex.build(store).score(model, ids, method="batch")
    (burst,) = [f for f in result.new_findings if f.detector == "device_velocity"]
    assert set(burst.members) == set(ids) and burst.kind == "device_farm"
    assert not result.errors
    # one at a time, the same finding holds each of them
    single = FlagIndex.build(store).score(model, ids[:1], method="single")
    assert burst.finding_id in {f.finding_id for f in single.new_findings}
