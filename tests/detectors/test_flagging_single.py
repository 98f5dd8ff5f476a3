"""The per-application flagging path gives what the batch path gives."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta

import numpy as np
import pytest

from detectors.flagging import FlagIndex
from detectors.risk import train
from detectors.runner import run_detectors, save_findings
from detectors.scoring import TrainingConfig
from graph.embedded import EmbeddedStore
from ingest.pipeline import ingest_folder
from ingest.synthetic import GeneratorConfig, generate_portfolio
from tests.detectors.builder import ExportBuilder, company_uscc

LATER = datetime(2026, 11, 8, 9)  # after every generated application, not in the future


@pytest.fixture(scope="module")
def flagged(tmp_path_factory):
    """A generated book with every detector's findings and a model, then a
    new batch: two applications that complete a device ring with two earlier
    ones, and one whose guarantee closes a mutual-guarantee circle."""
    root = tmp_path_factory.mktemp("single")
    generate_portfolio(GeneratorConfig(applications=2500, seed=11), root / "data")
    store = EmbeddedStore(root / "store")
    ingest_folder(root / "data", store, rejects_path=root / "rejects.csv")
    early = ExportBuilder(start=LATER - timedelta(days=30), first_index=5000)
    for i in range(2):
        early.app(f"EARLY{i}", device_id="half-ring-device", bank_account="6228480055556666777",
                  applied_at=LATER - timedelta(days=2 - i), label="")
    first = early.business_app(1, applied_at=LATER - timedelta(days=3))["application_id"]
    early.guarantee(first, "company", "c2", company_uscc(2))
    early.load(store, root / "early")
    save_findings(store, run_detectors(store))
    model = train(store, TrainingConfig(), folder=root / "models").model
    new = ExportBuilder(start=LATER, first_index=6000)
    for i in range(2):
        new.app(f"NEW{i}", device_id="half-ring-device", bank_account="6228480055556666777",
                applied_at=LATER + timedelta(hours=i), label="")
    second = new.business_app(2, "NEWG", applied_at=LATER + timedelta(hours=2))["application_id"]
    new.guarantee(second, "company", "c1", company_uscc(1))
    new.load(store, root / "new")
    index = FlagIndex.build(store)
    ids = index.apps.sort_values("applied_at")["application_id"].tolist()
    random.seed(0)
    sample = list(dict.fromkeys(ids[-150:] + random.sample(ids, 250) + ["NEW0", "NEW1", second]))
    return index, model, sample, second


def test_single_and_batch_paths_give_the_same_flags(flagged):
    index, model, sample, _ = flagged
    batch = index.score(model, sample, method="batch")
    single = index.score(model, sample, method="single")
    b = batch.flags.set_index("application_id").loc[sample]
    s = single.flags.set_index("application_id").loc[sample]
    np.testing.assert_allclose(s["score"].to_numpy(float), b["score"].to_numpy(float), atol=1e-9)
    assert (s["decision"] == b["decision"]).all()
    assert (s["ring_id"].fillna("") == b["ring_id"].fillna("")).all()
    different = [a for a in sample if s.loc[a, "reasons"] != b.loc[a, "reasons"]]
    assert not different, (different[:3], s.loc[different[0], "reasons"], b.loc[different[0], "reasons"])
    # the same new findings, field for field (ids, scores, evidence, summaries)
    assert {f.finding_id: f for f in single.new_findings} == {f.finding_id: f for f in batch.new_findings}
    # and the comparison covered what matters: rings, circles, known-bad partners, decisions
    detectors = {f.detector for f in single.new_findings}
    assert {"shared_identifier_rings", "guarantee_circles"} <= detectors
    evidence = [json.loads(r) for r in s["reasons"]]
    assert any(e.get("evidence") and "shared_with" in e["evidence"][0] for row in evidence for e in row)
    assert (s["ring_id"].fillna("") != "").sum() >= 10
    assert set(s["decision"]) >= {"pass", "decline"}


def test_single_path_finds_the_ring_and_circle_the_new_applications_complete(flagged):
    index, model, _, second = flagged
    result = index.score(model, ["NEW0"], method="single")
    (ring,) = [f for f in result.new_findings if f.detector == "shared_identifier_rings"]
    assert set(ring.members) == {"EARLY0", "EARLY1", "NEW0", "NEW1"}
    assert result.flags.loc[0, "ring_id"] == ring.finding_id
    reasons = json.loads(result.flags.loc[0, "reasons"])
    assert any(ring.finding_id in json.dumps(r) for r in reasons)
    result = index.score(model, [second], method="single")
    (circle,) = [f for f in result.new_findings if f.detector == "guarantee_circles"]
    assert second in circle.members and circle.kind == "mutual_guarantee"


def test_auto_uses_the_single_path_for_a_few_applications(flagged):
    index, model, sample, _ = flagged
    result = index.score(model, sample[:3])
    assert "_single_path" in index.__dict__
    assert list(result.flags["application_id"]) == sample[:3]
    with pytest.raises(ValueError, match="method"):
        index.score(model, sample[:3], method="fast")
    with pytest.raises(KeyError, match="not in the graph"):
        index.score(model, ["NO-SUCH-APPLICATION"], method="single")


def test_flag_features_are_the_training_features(flagged):
    """The one feature kernel of both flag paths computes, for an application
    already in the book, exactly what training computed for it: the model
    scores a new application on the same footing as the history it learned."""
    from detectors.features import application_features

    index, _, sample, _ = flagged
    training = application_features(index.portfolio, index.findings, index.hubs).loc[sample]
    positions = index.app_pos.get_indexer(sample)
    graph = index.graph_features(positions)
    for column in graph.columns:
        np.testing.assert_allclose(graph[column].to_numpy(float), training[column].to_numpy(float),
                                   err_msg=column)
    holding = [f for f in index.findings if set(f.members) & set(sample)]
    found = index.finding_features(positions, holding)
    assert {"findings_count", "known_bad_2hop"} <= set(found.columns) and found["findings_count"].sum() > 0
    for column in found.columns:
        np.testing.assert_allclose(found[column].to_numpy(float), training[column].fillna(0.0).to_numpy(float),
                                   err_msg=column)
