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
    ids = recs["id"].to_numpy()
    dobs = recs["dob"].fillna("").to_numpy()
    anchor = pd.DataFrame({"label": labels[valid], "dob": dobs[valid]})
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
    (an array like ``record_ids``: Arrow text stays Arrow text)."""
    frame = pd.DataFrame({"rid": record_ids, "label": labels})
    smallest = frame.groupby("label")["rid"].min()
    return smallest.reindex(labels).array
