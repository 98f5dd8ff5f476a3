"""The dashboard's graph index: every relationship read once per data version into adjacency arrays.

Neighbourhoods come from a :class:`GraphIndex`: every non-derived
relationship table read once (per data version) into integer adjacency
arrays. That is cheap for portfolios up to a few hundred thousand
applications; beyond that, neighbour queries belong in the store (see
``docs/dashboard.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ringscope.graph.model import REL_TYPES

__all__ = [
    "MAX_ELEMENTS",
    "HUB_DEGREE",
    "VIEW_PROPERTIES",
    "node_id",
    "split_node_id",
    "data_version",
    "GraphIndex",
    "build_index",
]


#: the graph view is capped at this many nodes + edges
MAX_ELEMENTS = 1500
#: nodes with more links than this are not walked through (NAT IPs, big employers)
HUB_DEGREE = 200

#: labels the dashboard reads fresh on every run (not part of the data version)
_UNCACHED_LABELS = ("Case", "AuditEvent")

#: edge properties kept in the index (shown on the graph / in details)
_EDGE_PROPS = {"GUARANTEES": ["amount"], "SHAREHOLDER_OF": ["share_pct"], "SIMILAR_TO": ["score"]}

#: node properties read for the graph view, per label
VIEW_PROPERTIES = {
    "Application": ["applied_at", "amount", "product", "label", "risk_score", "risk_decision", "applicant_name"],
    "Person": ["name", "gender", "birth_date"],
    "Company": ["name", "uscc_valid"],
    "IP": ["prefix"],
    "Phone": ["valid"],
}


def node_id(label: str, key: str) -> str:
    """Index id of a node: ``Label:key``.

    Example
    -------
    >>> split_node_id(node_id("Company", "name:abc"))
    ('Company', 'name:abc')
    """
    return f"{label}:{key}"


def split_node_id(nid: str) -> tuple[str, str]:
    label, _, key = nid.partition(":")
    return label, key


def data_version(store: Any) -> str:
    """A string that changes whenever the store's data does (cache key).

    Embedded: the newest modification time among its tables (cases and
    audit events aside: they are never cached). Neo4j: node
    counts of the labels the dashboard caches plus the latest finding run and
    scoring time.
    """
    if getattr(store, "kind", "") == "embedded":
        root = Path(store.location)
        # cases and audit events are read fresh, never cached: saving one must
        # not throw away the cached findings and graph index
        stamps = [
            f.stat().st_mtime_ns
            for sub in ("nodes", "rels")
            for f in (root / sub).glob("*.parquet")
            if f.stem not in _UNCACHED_LABELS
        ]
        return f"{len(stamps)}-{max(stamps, default=0)}"
    from neo4j import RoutingControl

    query = (
        "CALL () { MATCH (f:Finding) RETURN count(f) AS findings, max(f.run_at) AS run_at } "
        "CALL () { MATCH (a:Application) RETURN count(a) AS apps, max(a.scored_at) AS scored } "
        "CALL () { MATCH ()-[r]->() RETURN count(r) AS rels } "
        "RETURN findings, run_at, apps, scored, rels"
    )
    records, _, _ = store.driver.execute_query(query, database_=store.database, routing_=RoutingControl.READ)
    r = records[0]
    return f"{r['findings']}-{r['run_at']}-{r['apps']}-{r['scored']}-{r['rels']}"


# -- the graph index -----------------------------------------------------------


@dataclass
class GraphIndex:
    """All non-derived relationships as integer adjacency (CSR by hand).

    ``ids`` holds the ``Label:key`` of every node that has a relationship;
    ``edges`` one row per relationship (``s``, ``t`` positions, ``type``, and
    a few properties); ``order``/``offsets`` list, for each node, the edges
    touching it (both directions).
    """

    ids: pd.Index
    edges: pd.DataFrame
    offsets: np.ndarray
    order_edge: np.ndarray
    order_other: np.ndarray

    def position(self, nid: str) -> int | None:
        try:
            pos = self.ids.get_loc(nid)
        except KeyError:
            return None
        return int(pos) if isinstance(pos, (int, np.integer)) else None

    def degree(self, pos: int) -> int:
        return int(self.offsets[pos + 1] - self.offsets[pos])

    def incident(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Edge positions and neighbour positions of ``positions`` (concatenated)."""
        positions = np.asarray(positions, dtype=np.int64)
        if len(positions) == 0:
            return np.array([], dtype=np.int64), np.array([], dtype=np.int64)
        starts, ends = self.offsets[positions], self.offsets[positions + 1]
        lengths = ends - starts
        idx = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())
        return self.order_edge[idx], self.order_other[idx]

    def neighbours(self, nid: str, limit: int = 100) -> list[str]:
        pos = self.position(nid)
        if pos is None:
            return []
        _, others = self.incident(np.array([pos]))
        return list(dict.fromkeys(self.ids[others].tolist()))[:limit]


def build_index(store: Any) -> GraphIndex:
    """Read every non-derived relationship table once into a :class:`GraphIndex`.

    Notes
    -----
    O(m log m) for m relationships; one whole-table read per relationship type.
    """
    frames = []
    for name, rt in REL_TYPES.items():
        if rt.type == "INVOLVES":
            continue
        props = [p for p in _EDGE_PROPS.get(rt.type, []) if p in rt.properties]
        rel = store.read_relationships(name, props)
        if rel.empty:
            continue
        frame = pd.DataFrame(
            {
                "src": (rt.source + ":" + rel["src"].astype(str)).to_numpy(object),
                "dst": (rt.target + ":" + rel["dst"].astype(str)).to_numpy(object),
                "type": rt.type,
            }
        )
        for prop in ("amount", "share_pct", "score"):
            frame[prop] = pd.to_numeric(rel[prop], errors="coerce").to_numpy() if prop in rel.columns else np.nan
        frames.append(frame)
    if not frames:
        empty = pd.DataFrame(
            {
                "s": pd.Series([], dtype=np.int64),
                "t": pd.Series([], dtype=np.int64),
                "type": pd.Series([], dtype=object),
            }
        )
        return GraphIndex(
            pd.Index([], dtype=object),
            empty,
            np.zeros(1, dtype=np.int64),
            np.array([], dtype=np.int64),
            np.array([], dtype=np.int64),
        )
    edges = pd.concat(frames, ignore_index=True)
    codes, ids = pd.factorize(np.concatenate([edges["src"].to_numpy(object), edges["dst"].to_numpy(object)]))
    m = len(edges)
    s, t = codes[:m].astype(np.int64), codes[m:].astype(np.int64)
    edges = edges.drop(columns=["src", "dst"]).assign(s=s, t=t)
    edges["type"] = edges["type"].astype("category")
    first = np.concatenate([s, t])
    other = np.concatenate([t, s])
    edge = np.concatenate([np.arange(m), np.arange(m)])
    order = np.argsort(first, kind="stable")
    offsets = np.zeros(len(ids) + 1, dtype=np.int64)
    np.cumsum(np.bincount(first, minlength=len(ids)), out=offsets[1:])
    return GraphIndex(pd.Index(ids, dtype=object), edges, offsets, edge[order], other[order])
