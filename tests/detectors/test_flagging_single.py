"""The per-application flagging path gives what the batch path gives."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from ringscope.detectors.base import Evidence, Finding
from ringscope.detectors.risk.findings_only import findings_only_model
from ringscope.detectors.risk.flagging import RING_DETECTORS, FlagIndex
from ringscope.detectors.risk.reasons import accused_ring
from ringscope.detectors.risk.scoring import TrainingConfig
from ringscope.detectors.risk.training import train
from ringscope.detectors.runner import run_detectors, save_findings
from ringscope.graph.embedded import EmbeddedStore
from ringscope.ingest.pipeline import ingest_folder
from ringscope.ingest.synthetic import GeneratorConfig, generate_portfolio
from tests.detectors.builder import ExportBuilder, company_uscc

# trains models or runs whole jobs end to end: in `make test`, not in `make test-fast`
pytestmark = pytest.mark.slow

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
        early.app(
            f"EARLY{i}",
            device_id="half-ring-device",
            bank_account="6228480055556666777",
            applied_at=LATER - timedelta(days=2 - i),
            label="",
        )
    first = early.business_app(1, applied_at=LATER - timedelta(days=3))["application_id"]
    early.guarantee(first, "company", "c2", company_uscc(2))
    early.load(store, root / "early")
    save_findings(store, run_detectors(store))
    model = train(store, TrainingConfig(), folder=root / "models").model
    new = ExportBuilder(start=LATER, first_index=6000)
    for i in range(2):
        new.app(
            f"NEW{i}",
            device_id="half-ring-device",
            bank_account="6228480055556666777",
            applied_at=LATER + timedelta(hours=i),
            label="",
        )
    second = new.business_app(2, "NEWG", applied_at=LATER + timedelta(hours=2))["application_id"]
    new.guarantee(second, "company", "c1", company_uscc(1))
    new.load(store, root / "new")
    index = FlagIndex.build(store)
    ids = index.apps.sort_values("applied_at")["application_id"].tolist()
    random.seed(0)
    # and the applications with earlier known-bad sharers (for the fraud model: fraud only), so that
    # reasons with known-bad partners are compared too
    index.use_known_bad(model.known_bad)
    graph = index.graph_features(np.arange(len(index.app_pos)))
    known_bad_sharers = graph.index[graph["known_bad_1hop"] > 0].tolist()
    sample = list(dict.fromkeys(ids[-150:] + random.sample(ids, 250) + known_bad_sharers + ["NEW0", "NEW1", second]))
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


def test_a_findings_only_model_gives_the_same_flags_on_both_paths(flagged):
    index, model, sample, _ = flagged
    only, _ = findings_only_model(
        pd.DataFrame(columns=model.features), pd.Series(dtype="datetime64[ns]"), TrainingConfig(), "no outcomes"
    )
    b = index.score(only, sample, method="batch").flags.set_index("application_id").loc[sample]
    s = index.score(only, sample, method="single").flags.set_index("application_id").loc[sample]
    np.testing.assert_allclose(s["score"].to_numpy(float), b["score"].to_numpy(float), atol=1e-9)
    assert (s["decision"] == b["decision"]).all() and (s["reasons"] == b["reasons"]).all()
    assert (s["ring_id"].fillna("") == b["ring_id"].fillna("")).all()
    assert "decline" not in set(s["decision"]) and s.loc["NEW0", "decision"] == "review"
    assert s.loc["NEW0", "ring_id"] != ""


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
    assert index._single_path is not None
    assert list(result.flags["application_id"]) == sample[:3]
    with pytest.raises(ValueError, match="method"):
        index.score(model, sample[:3], method="fast")
    with pytest.raises(KeyError, match="not in the graph"):
        index.score(model, ["NO-SUCH-APPLICATION"], method="single")


def test_flag_features_are_the_training_features(flagged):
    """The one feature kernel of both flag paths computes, for an application
    already in the book, exactly what training computed for it: the model
    scores a new application on the same footing as the history it learned."""
    from ringscope.detectors.risk.features import application_features

    index, _, sample, _ = flagged
    training = application_features(index.portfolio, index.findings, index.hubs).loc[sample]
    positions = index.app_pos.get_indexer(sample)
    graph = index.graph_features(positions)
    for column in graph.columns:
        np.testing.assert_allclose(graph[column].to_numpy(float), training[column].to_numpy(float), err_msg=column)
    holding = [f for f in index.findings if set(f.members) & set(sample)]
    found = index.finding_features(positions, holding)
    assert {"findings_count", "known_bad_2hop"} <= set(found.columns) and found["findings_count"].sum() > 0
    for column in found.columns:
        np.testing.assert_allclose(
            found[column].to_numpy(float), training[column].fillna(0.0).to_numpy(float), err_msg=column
        )


def test_ring_id_is_an_accusation_on_both_paths(flagged):
    """A grouping scoring below the review threshold gives no ring_id but stays
    in the reasons; a ring at or above it gives its id, on both paths."""
    index, model, sample, _ = flagged
    review = model.config.review_threshold
    plain = [a for a in sample if not index.findings_by_app.get(a) and not a.startswith(("NEW", "EARLY"))]
    family, ring = plain[:2], plain[1:5]  # the second of the family is also in the ring
    # saved findings of a detector that does not run around the batch (circles, with
    # with_guarantees=False): flag takes them as the last detect left them
    low = Finding(
        "guarantee_circles",
        "mutual_guarantee",
        tuple(family),
        review / 3,
        (Evidence("shared_address", review / 3, "two relatives share a home address"),),
        summary="family of 2 sharing an address",
    )
    high = Finding(
        "guarantee_circles",
        "mutual_guarantee",
        tuple(ring),
        min(1.0, review + 0.5),
        (Evidence("shared_device", min(1.0, review + 0.5), "four people on one device"),),
        summary="ring of 4 people",
    )
    planted = FlagIndex(index.portfolio, index.findings + [low, high])
    for method in ("batch", "single"):
        flags = planted.score(model, plain[:5], method=method, with_guarantees=False).flags.set_index("application_id")
        assert flags.loc[family[0], "ring_id"] == ""
        assert low.finding_id in flags.loc[family[0], "reasons"]  # evidence, not an accusation
        # in both: the higher-scoring finding
        assert flags.loc[family[1], "ring_id"] == high.finding_id
        assert (flags.loc[ring[1:], "ring_id"] == high.finding_id).all()
    # the threshold is the one the decision uses: below the family's score, the family is accused
    flags = planted.score(model, [family[0]], review=review / 4, decline=0.9, with_guarantees=False).flags
    assert flags.loc[0, "ring_id"] == low.finding_id


def test_accused_ring_prefers_the_highest_finding_score():
    columns = ["log_amount", "det_guarantee_circles", "det_shared_identifier_rings", "det_contact_loops"]
    contributions = np.array([2.0, 0.4, 1.1, 0.4])
    ring = Finding("shared_identifier_rings", "ring", ("a", "b"), 0.5, ())
    circle = Finding("guarantee_circles", "mutual_guarantee", ("a", "c"), 0.95, ())
    loop = Finding("contact_loops", "loop", ("a", "d"), 0.95, ())
    lone = Finding("shared_identifier_rings", "ring", ("a",), 0.99, ())
    farm = Finding("device_velocity", "burst", ("a", "e"), 0.99, ())  # the model has no feature for it
    detectors = RING_DETECTORS
    # the circle and the loop score higher than the ring, which explains more of the score:
    # the higher score wins; between equal scores, the larger contribution, then the id
    assert accused_ring([circle, ring, loop, lone], "a", contributions, columns, 0.3, detectors) == min(
        circle.finding_id, loop.finding_id
    )
    assert accused_ring([ring, loop], "a", contributions, columns, 0.3, detectors) == loop.finding_id
    tied = Finding("contact_loops", "loop", ("a", "f"), 0.5, ())
    assert accused_ring([tied, ring], "a", contributions, columns, 0.3, detectors) == ring.finding_id
    # below the review threshold it accuses nobody
    assert accused_ring([ring, loop], "a", contributions, columns, 0.6, detectors) == loop.finding_id
    assert accused_ring([ring], "a", contributions, columns, 0.6, detectors) == ""
    assert accused_ring([lone], "a", contributions, columns, 0.3, detectors) == ""  # one application is no ring
    assert accused_ring([farm], "a", contributions, columns, 0.3, detectors) == farm.finding_id
    assert accused_ring([farm, circle], "a", contributions, columns, 0.3, detectors) == farm.finding_id
    twins = Finding("identity", "id_multiple_names", ("a", "g"), 0.9, ())  # one ID under two names
    assert accused_ring([twins, ring], "a", contributions, columns, 0.3, detectors) == twins.finding_id
    assert accused_ring([ring], "z", contributions, columns, 0.3, detectors) == ""  # not a member
