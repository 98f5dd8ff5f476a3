"""Entities from scored pairs: the lean ``entity_ids`` and ``cluster_pairs``
against the whole-book group-bys they replace (issue 12: memory at 1M)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ringscope.detectors.components import component_labels
from ringscope.detectors.resolution.clustering import cluster_pairs, entity_ids


def _entity_ids_by_groupby(record_ids, labels):
    frame = pd.DataFrame({"rid": record_ids, "label": labels})
    return frame.groupby("label")["rid"].min().reindex(labels).array


def _random_records(rng, n: int) -> pd.DataFrame:
    # a few valid IDs per birth date, so that components join records of different dates
    dob = rng.choice(["1980-01-01", "1990-05-05", "1975-09-09", None], size=n)
    ids = pd.Series([f"{rng.integers(10**17, 10**18)}" for _ in range(n)]).where(rng.random(n) > 0.1)
    return pd.DataFrame(
        {
            "record_id": [f"{'张李王'[i % 3]}{rng.integers(0, 10**6):06d}-{i}" for i in range(n)],
            "id": ids.astype("str"),
            "id_ok": rng.random(n) > 0.2,
            "dob": pd.Series(dob).astype("str"),
        }
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_entity_ids_equal_the_whole_group_by(seed):
    rng = np.random.default_rng(seed)
    n = 3000
    recs = _random_records(rng, n)
    li = rng.integers(0, n, size=900)
    ri = rng.integers(0, n, size=900)
    labels = component_labels(n, li, ri)
    rid = recs["record_id"].astype("str").array
    got = entity_ids(rid, labels)
    assert type(got) is type(rid)
    want = _entity_ids_by_groupby(rid, labels)
    assert list(got) == list(want)
    # most records are alone, some clusters hold several and take another record's id
    assert 0 < sum(g != r for g, r in zip(got, rid)) < n // 2


def test_entity_ids_of_nothing_and_of_singletons():
    rid = pd.Series(["b", "a"]).astype("str").array
    assert list(entity_ids(rid, np.array([0, 1]))) == ["b", "a"]
    assert len(entity_ids(rid[:0], np.array([], dtype=np.int64))) == 0


def _cluster_pairs_whole(n, li, ri, score, recs):
    """The chaining guard as it read every record's ID and birth date."""
    labels = component_labels(n, li, ri)
    keep = np.ones(len(li), dtype=bool)
    valid = recs["id_ok"].to_numpy() & recs["id"].notna().to_numpy()
    if not valid.any() or len(li) == 0:
        return labels, keep
    ids = recs["id"].to_numpy()
    dobs = recs["dob"].fillna("").to_numpy()
    anchor = pd.DataFrame({"label": labels[valid], "dob": dobs[valid]})
    conflicted = anchor.groupby("label")["dob"].nunique()
    conflicted = conflicted[conflicted > 1].index.to_numpy()
    if len(conflicted) == 0:
        return labels, keep
    in_conf = np.isin(labels[li], conflicted)
    edge_idx = np.flatnonzero(in_conf)
    edge_idx = edge_idx[np.argsort(-score[edge_idx], kind="stable")]
    parent: dict[int, int] = {}
    anchors: dict[int, set] = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def anchor_of(x):
        return anchors.setdefault(x, {(ids[x], dobs[x])} if valid[x] else set())

    for e in edge_idx:
        a, b = find(int(li[e])), find(int(ri[e]))
        if a == b:
            continue
        sa, sb = anchor_of(a), anchor_of(b)
        if sa and sb and {d for _, d in sa}.isdisjoint({d for _, d in sb}):
            keep[e] = False
            continue
        parent[b] = a
        anchors[a] = sa | sb
    return component_labels(n, li[keep], ri[keep]), keep


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_chaining_guard_reads_only_the_records_with_an_edge_and_decides_the_same(seed):
    rng = np.random.default_rng(seed)
    n = 2000
    recs = _random_records(rng, n)
    li = rng.integers(0, n, size=700)
    ri = rng.integers(0, n, size=700)
    score = rng.random(700)
    labels, keep = cluster_pairs(n, li, ri, score, recs)
    want_labels, want_keep = _cluster_pairs_whole(n, li, ri, score, recs)
    np.testing.assert_array_equal(labels, want_labels)
    np.testing.assert_array_equal(keep, want_keep)
    assert 0 < (~keep).sum() < len(keep)  # the guard refused some merges, not all
