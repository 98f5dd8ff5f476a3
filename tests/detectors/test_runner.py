"""Running detectors, saving findings in both stores, exporting, evaluating."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import ClassVar

import pandas as pd
import pytest

from ringscope.detectors.base import Detector, Evidence, Finding
from ringscope.detectors.evaluate import evaluate_findings, pair_scores
from ringscope.detectors.registry import DETECTORS, detector_class
from ringscope.detectors.runner import export_findings, load_findings, run_detectors, save_findings
from tests.detectors.builder import ExportBuilder, company_uscc

PLANTED = ["shared_identifier_rings", "guarantee_circles"]


def _export() -> tuple[ExportBuilder, list[str], list[str]]:
    b = ExportBuilder()
    for _ in range(10):
        b.app()
    ring = [
        b.app(device_id="farm-dev", applied_at=datetime(2025, 5, 1) + timedelta(hours=i))["application_id"]
        for i in range(4)
    ]
    c1 = b.business_app(1)["application_id"]
    c2 = b.business_app(2)["application_id"]
    b.guarantee(c1, "company", "c2", company_uscc(2))
    b.guarantee(c2, "company", "c1", company_uscc(1))
    return b, ring, [c1, c2]


@dataclass(frozen=True, kw_only=True)
class Broken(Detector):
    name: ClassVar[str] = "broken"

    def run(self, source):
        raise RuntimeError("boom")


def test_every_registered_detector_imports_with_its_name():
    for name in DETECTORS:
        cls = detector_class(name)
        assert cls.name == name
        assert isinstance(cls(), Detector)


def test_findings_are_saved_read_back_and_replaced(store, tmp_path):
    b, ring, circle = _export()
    b.load(store, tmp_path / "export")
    run = run_detectors(store, PLANTED)
    assert not run.errors
    assert {tuple(sorted(ring)), tuple(sorted(circle))} <= {f.members for f in run.findings}
    save_findings(store, run)
    counts = store.counts()
    assert counts.nodes["Finding"] == len({f.finding_id for f in run.findings})
    involves = store.read_relationships("Finding-INVOLVES-Application", ["role"])
    assert set(involves["dst"]) >= set(ring) | set(circle)
    shared = store.read_relationships("Finding-INVOLVES-Device", ["role"])
    assert list(shared["dst"]) == ["farm-dev"] and list(shared["role"]) == ["shared"]

    back = {f.finding_id: f for f in load_findings(store)}
    for f in run.findings:
        assert back[f.finding_id].members == f.members
        assert back[f.finding_id].score == pytest.approx(f.score, abs=1e-4)
        assert [e.feature for e in back[f.finding_id].evidence] == [e.feature for e in f.evidence]
    companies = [f for f in back.values() if f.detector == "guarantee_circles"][0].entities
    assert {k for _, k in companies} == {company_uscc(1), company_uscc(2)}

    # a second run replaces the first: nothing is duplicated, stale findings go
    save_findings(store, run_detectors(store, ["guarantee_circles"]))
    assert store.counts().nodes["Finding"] == 1
    assert len(store.read_relationships("Finding-INVOLVES-Device")) == 0


def test_a_failing_detector_is_reported_and_the_others_still_run(embedded_store, tmp_path, monkeypatch):
    b, ring, _ = _export()
    b.load(embedded_store, tmp_path / "export")
    monkeypatch.setitem(DETECTORS, "broken", f"{__name__}:Broken")
    run = run_detectors(embedded_store, ["broken", "shared_identifier_rings"])
    assert "boom" in run.errors["broken"]
    assert any(set(ring) == set(f.members) for f in run.findings)
    table = run.by_detector().set_index("detector")
    assert table.loc["broken", "status"] == "error" and table.loc["shared_identifier_rings", "status"] == "ok"


def test_unknown_detector_and_bad_parameters_fail_before_work(embedded_store):
    with pytest.raises(KeyError, match="Unknown detectors"):
        run_detectors(embedded_store, ["nope"])
    with pytest.raises(ValueError, match="min_people"):
        run_detectors(embedded_store, ["shared_identifier_rings"], {"shared_identifier_rings": {"min_people": 0}})


def test_export_writes_findings_and_members(tmp_path):
    findings = [
        Finding("d", "k", ("a1", "a2"), 0.7, (Evidence("f", 0.7, "shared 设备", ("x",)),), summary="两人"),
        Finding("d", "k", ("a3",), 0.2, ()),
    ]
    findings_path, members_path = export_findings(findings, tmp_path / "out")
    table = pd.read_csv(findings_path, encoding="utf-8-sig")
    assert list(table.columns[:5]) == ["finding_id", "detector", "kind", "score", "size"]
    assert list(table["score"]) == [0.7, 0.2]
    assert "设备" in table.loc[0, "evidence"]
    members = pd.read_csv(members_path, encoding="utf-8-sig")
    assert sorted(members["application_id"]) == ["a1", "a2", "a3"]
    assert set(members["finding_id"]) == {f.finding_id for f in findings}


def test_pair_scores_perfect_and_empty():
    truth = pd.Series({"a": 1, "b": 1, "c": 2, "d": 2})
    assert pair_scores(truth.map({1: "x", 2: "y"}), truth) == (1.0, 1.0, 1.0)
    assert pair_scores(pd.Series(dtype=object), truth) == (0.0, 0.0, 0.0)


def test_evaluate_counts_recall_and_false_positives(tmp_path):
    truth = tmp_path / "truth"
    truth.mkdir()
    pd.DataFrame(
        {
            "application_id": ["a1", "a2", "a3", "a4", "h1", "h2"],
            "is_fraud": ["1", "1", "1", "1", "0", "0"],
            "typology": ["identity_ring"] * 3 + ["device_farm", "", ""],
            "ring_id": ["R1", "R1", "R1", "R2", "", ""],
            "hard_negative": ["", "", "", "", "carrier_nat", ""],
        }
    ).to_csv(truth / "applications.csv", index=False)
    findings = [
        Finding("rings", "ring", ("a1", "a2", "a3", "h1"), 0.8, ()),
        Finding("rings", "ring", ("h2", "a4"), 0.3, ()),
    ]
    result = evaluate_findings(findings, truth, min_score=0.5)
    summary = dict(zip(result.summary["metric"], result.summary["value"]))
    assert summary["ring pair recall"] == 1.0
    assert summary["ring pair precision"] == pytest.approx(0.5)
    assert summary["planted rings recovered"] == 0.5
    assert summary["honest applications flagged"] == 0.5
    negatives = result.by_hard_negative.set_index("hard_negative")
    assert negatives.loc["carrier_nat", "flagged"] == 1
    typology = result.by_typology.set_index("typology")
    assert typology.loc["device_farm", "recall"] == 0.0 and typology.loc["identity_ring", "recall"] == 1.0
