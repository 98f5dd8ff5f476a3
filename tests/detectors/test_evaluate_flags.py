"""Flags of a new batch scored against the truth: AUC, precision@k, ring pair
F1, rings and circles recovered, honest declined, recall by typology."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from ringscope.detectors.evaluate import auc, evaluate_flags, precision_at_k, rings_recovered


def _truth(rows):
    """rows: (application_id, is_fraud, typology, ring_id)"""
    frame = pd.DataFrame(rows, columns=["application_id", "is_fraud", "typology", "ring_id"])
    return frame.assign(hard_negative="")


def _flags(rows):
    """rows: (application_id, score, decision, ring_id)"""
    return pd.DataFrame(rows, columns=["application_id", "score", "decision", "ring_id"]).assign(reasons="[]")


@pytest.mark.parametrize(
    "y, scores, expected",
    [
        ([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9], 1.0),
        ([1, 1, 0, 0], [0.1, 0.2, 0.8, 0.9], 0.0),
        ([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5], 0.5),
        ([0, 1, 1], [0.3, 0.3, 0.9], 0.75),
    ],
)
def test_auc_hand_made(y, scores, expected):
    assert auc(y, scores) == pytest.approx(expected)


def test_auc_agrees_with_sklearn_and_is_nan_for_one_class():
    rng = np.random.default_rng(0)
    y = rng.random(500) < 0.1
    scores = np.round(rng.random(500) + y * 0.3, 2)  # rounded: many ties
    assert auc(y, scores) == pytest.approx(roc_auc_score(y, scores), abs=1e-12)
    assert np.isnan(auc([0, 0], [0.1, 0.2])) and np.isnan(auc([1], [0.3]))


def test_precision_at_k_counts_ties_at_the_cut_by_their_share():
    assert precision_at_k([1, 1, 0, 0], [0.9, 0.8, 0.7, 0.1], 2) == 1.0
    # three tied at the cut, one of them bad, two places left: 1 + 2 * 1/3 over k = 3
    assert precision_at_k([1, 0, 0, 1], [0.9, 0.5, 0.5, 0.5], 3) == pytest.approx((1 + 2 / 3) / 3)
    # input order never helps: the bad one first or last among equals gives the same
    assert precision_at_k([1, 0, 0], [0.5, 0.5, 0.5], 1) == precision_at_k([0, 0, 1], [0.5, 0.5, 0.5], 1)
    assert precision_at_k([1, 0], [0.9, 0.1], 5) == 0.5  # k beyond the batch: the whole batch
    assert np.isnan(precision_at_k([1], [0.9], 0))


TRUTH = _truth(
    [
        # ring T1: four members, all in the batch
        ("a1", 1, "device_farm", "T1"),
        ("a2", 1, "device_farm", "T1"),
        ("a3", 1, "device_farm", "T1"),
        ("a4", 1, "device_farm", "T1"),
        # ring T2: three members, all in the batch
        ("b1", 1, "broker_ring", "T2"),
        ("b2", 1, "broker_ring", "T2"),
        ("b3", 1, "broker_ring", "T2"),
        # ring T3: two in the history, one new member joins
        ("h1", 1, "identity_ring", "T3"),
        ("h2", 1, "identity_ring", "T3"),
        ("c1", 1, "identity_ring", "T3"),
        # a fraud without a ring
        ("d1", 1, "cashflow_inconsistency", ""),
        # honest
        *[(f"o{i}", 0, "", "") for i in range(10)],
    ]
)


def test_rings_recovered_rules():
    truth = TRUTH.set_index("application_id")["ring_id"]
    # T1: F1 on three of four; T2: F3 on two of three, and F3 holds nothing else
    predicted = pd.Series(
        {"a1": "F1", "a2": "F1", "a3": "F1", "a4": "", "b1": "F2", "b2": "F3", "b3": "F3", "c1": "", "o1": ""}
    )
    counted, found = rings_recovered(predicted, truth)
    assert (counted, found) == (2, 2)  # T3 has one new member: no batch-only group, not counted
    # T2 split one-one-one: no ring_id carries half of it
    split = predicted.copy()
    split[["b1", "b2", "b3"]] = ["F2", "F3", "F4"]
    assert rings_recovered(split, truth) == (2, 1)
    # T1 lost inside a big group of honest applications: not "mostly" the ring
    drowned = predicted.copy()
    drowned[["a1", "a2", "a3", "a4"]] = "F1"
    drowned = pd.concat([drowned, pd.Series({f"o{i}": "F1" for i in range(2, 10)})])
    assert rings_recovered(drowned, truth) == (2, 1)
    # with the findings' members, the one new member of T3 joins the history ring's finding
    groups = {"F1": ["a1", "a2", "a3"], "F5": ["h1", "h2", "c1"], "F6": ["c1", "o1", "o2", "o3"]}
    joined = predicted.copy()
    joined["c1"] = "F5"
    assert rings_recovered(joined, truth, groups) == (3, 3)
    joined["c1"] = "F6"  # a ring_id whose finding is mostly honest applications
    assert rings_recovered(joined, truth, groups) == (3, 2)
    # only some rings counted
    assert rings_recovered(joined, truth, groups, ring_ids=["T3"]) == (1, 0)


def test_evaluate_flags_on_a_hand_made_batch(tmp_path):
    truth_dir = tmp_path / "truth"
    truth_dir.mkdir()
    TRUTH.to_csv(truth_dir / "applications.csv", index=False)
    pd.DataFrame({"circle_id": ["T2"], "members": ["U1|U2|U3"], "cycle_length": [3]}).to_csv(
        truth_dir / "guarantee_circles.csv", index=False
    )
    batch = [a for a in TRUTH["application_id"] if not a.startswith("h")]
    flags = _flags(
        [
            ("a1", 0.95, "decline", "F1"),
            ("a2", 0.94, "decline", "F1"),
            ("a3", 0.9, "decline", "F1"),
            ("a4", 0.2, "pass", ""),
            ("b1", 0.8, "review", "F2"),
            ("b2", 0.8, "review", "F2"),
            ("b3", 0.4, "review", "F2"),
            ("c1", 0.85, "decline", "F5"),
            # d1 rejected at ingest: not scored
            ("o0", 0.92, "decline", "F2"),
            ("o1", 0.5, "review", ""),
            *[(f"o{i}", 0.05, "pass", "") for i in range(2, 10)],
        ]
    )
    e = evaluate_flags(flags, truth_dir, batch)
    assert (e.applications, e.frauds, e.missing) == (18, 8, 1)
    y = np.array([1] * 8 + [0] * 10)
    s = np.array([0.95, 0.94, 0.9, 0.2, 0.8, 0.8, 0.4, 0.85, 0.92, 0.5] + [0.05] * 8)
    assert e.auc == pytest.approx(roc_auc_score(y, s))
    # top 8: a1 a2 o0 a3 c1 b1 b2 o1 -> 6 frauds
    assert e.precision_at_k == pytest.approx(6 / 8)
    assert e.caught == pytest.approx(7 / 8)  # a4 passed
    # pairs: predicted F1 {a1,a2,a3}: 3 true; F2 {b1,b2,b3,o0}: 3 true of 6; F5 alone
    # true pairs in the batch: T1 6, T2 3 (T3 has one member in the batch)
    assert e.pair_precision == pytest.approx(6 / 9)
    assert e.pair_recall == pytest.approx(6 / 9)
    assert e.pair_f1 == pytest.approx(6 / 9)
    # T1 (3 of 4 carry F1) and T2 (F2: 3 of its 4 carriers are T2) recovered; T3 not counted without groups
    assert (e.rings, e.rings_recovered) == (2, 1.0)
    assert (e.circles, e.circles_recovered) == (1, 1.0)
    assert e.honest_declined == pytest.approx(1 / 10)
    assert e.honest_reviewed == pytest.approx(2 / 10)
    assert e.honest_with_ring == pytest.approx(1 / 10)
    recall = e.by_typology.set_index("typology")["recall"].to_dict()
    assert recall == {"device_farm": 0.75, "broker_ring": 1.0, "identity_ring": 1.0}
    figures = e.figures()
    assert figures["recall device_farm"] == 0.75 and figures["pair_f1"] == e.pair_f1

    # with the findings' members, the new member of T3 is judged with its history ring
    grouped = evaluate_flags(flags, truth_dir, batch, groups={"F5": ["h1", "h2", "c1"]})
    assert (grouped.rings, grouped.rings_recovered) == (3, 1.0)


def test_evaluate_flags_undefined_figures_are_nan():
    truth = _truth([("x1", 0, "", ""), ("x2", 0, "", "")])
    e = evaluate_flags(_flags([("x1", 0.1, "pass", ""), ("x2", 0.2, "pass", "")]), truth)
    assert e.frauds == 0 and np.isnan(e.auc) and np.isnan(e.precision_at_k) and np.isnan(e.caught)
    assert np.isnan(e.pair_f1) and np.isnan(e.rings_recovered) and np.isnan(e.circles_recovered)
    assert e.honest_declined == 0.0
    # grouping honest applications where no ring exists is a failure, not "undefined"
    grouped = evaluate_flags(_flags([("x1", 0.1, "pass", "F"), ("x2", 0.2, "pass", "F")]), truth)
    assert grouped.pair_f1 == 0.0 and grouped.honest_with_ring == 1.0
