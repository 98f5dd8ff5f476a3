"""Clustering scored record pairs into entities, with a guard against chaining."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ringscope.detectors.components import component_labels

__all__ = ["cluster_pairs", "entity_ids"]


def cluster_pairs(
    n: int, li: np.ndarray, ri: np.ndarray, score: np.ndarray, recs: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray]:
    """Component label per record and a mask of kept edges (chaining guard)."""
    labels = component_labels(n, li, ri)
    keep = np.ones(len(li), dtype=bool)
    valid = recs["id_ok"].to_numpy() & recs["id"].notna().to_numpy()
    if not valid.any() or len(li) == 0:
        return labels, keep
    # only records with an edge can sit in a component of two or more (a conflicted one): their
    # IDs and birth dates alone become Python strings, not those of every record of the book
    nodes = np.unique(np.concatenate([li, ri]))
    ids = np.full(n, None, dtype=object)
    dobs = np.full(n, "", dtype=object)
    ids[nodes] = recs["id"].iloc[nodes].to_numpy()
    dobs[nodes] = recs["dob"].iloc[nodes].fillna("").to_numpy()
    anchored = nodes[valid[nodes]]
    anchor = pd.DataFrame({"label": labels[anchored], "dob": dobs[anchored]})
    conflicted = anchor.groupby("label")["dob"].nunique()
    conflicted = conflicted[conflicted > 1].index.to_numpy()
    if len(conflicted) == 0:
        return labels, keep
    # rebuild only the conflicted components, strongest edge first
    in_conf = np.isin(labels[li], conflicted)
    edge_idx = np.flatnonzero(in_conf)
    edge_idx = edge_idx[np.argsort(-score[edge_idx], kind="stable")]
    parent: dict[int, int] = {}
    anchors: dict[int, set[tuple[str, str]]] = {}

    def find(x: int) -> int:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def anchor_of(x: int) -> set[tuple[str, str]]:
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


def entity_ids(record_ids, labels: np.ndarray):
    """Each record's entity: the smallest record id of its cluster ``labels``
    (non-negative integers), as an array like ``record_ids`` (Arrow text
    stays Arrow text). A record alone in its cluster is its own entity, so
    only the records of shared clusters are compared: at a million records
    nearly all are alone, and a group-by over every id held them twice.

    Example
    -------
    >>> list(entity_ids(np.array(["r3", "r1", "r2", "r4"], dtype=object), np.array([0, 0, 1, 0])))
    ['r1', 'r1', 'r2', 'r1']
    """
    labels = np.asarray(labels)
    pick = np.arange(len(labels))
    shared = np.flatnonzero(np.bincount(labels, minlength=1)[labels] > 1) if len(labels) else pick
    if len(shared):
        frame = pd.DataFrame({"rid": record_ids[shared], "label": labels[shared], "at": shared})
        smallest = frame.groupby("label")["rid"].transform("min")
        first = frame[(frame["rid"] == smallest).to_numpy()].drop_duplicates("label")
        pick[shared] = first.set_index("label")["at"].reindex(labels[shared]).to_numpy()
    return record_ids.take(pick)
