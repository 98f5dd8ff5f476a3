"""What the dashboard pages ask of a store: plain functions, no Streamlit.

Pages (and the CLI, and the bench) call these; Streamlit caching lives in
:mod:`ringscope.app.dashboard.context`. Everything goes through the
:class:`ringscope.graph.store.GraphStore` protocol, so both stores work.

Neighbourhoods come from a :class:`GraphIndex`: every non-derived
relationship table read once (per data version) into integer adjacency
arrays. That is cheap for portfolios up to a few hundred thousand
applications; beyond that, neighbour queries belong in the store (see
``docs/dashboard.md``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ringscope.app.dashboard.i18n import Message, N_
from ringscope.app.dashboard.search import HIT_COLUMNS, SearchHits, SearchIndex, build_search_index, search
from ringscope.graph.model import FINDING_TARGETS, REL_TYPES

__all__ = [
    "data_version",
    "GraphIndex",
    "build_index",
    "findings_table",
    "finding_members",
    "filter_queue",
    "flagged_applications",
    "volume_by_week",
    "Subgraph",
    "cluster_subgraph",
    "expand_subgraph",
    "shortest_path",
    "node_details",
    "application_detail",
    "search",
    "SearchIndex",
    "SearchHits",
    "HIT_COLUMNS",
    "build_search_index",
    "node_id",
    "split_node_id",
    "MAX_ELEMENTS",
    "HUB_DEGREE",
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


# -- data version -------------------------------------------------------------


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
        stamps = [f.stat().st_mtime_ns for sub in ("nodes", "rels") for f in (root / sub).glob("*.parquet")
                  if f.stem not in _UNCACHED_LABELS]
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
        frame = pd.DataFrame({
            "src": (rt.source + ":" + rel["src"].astype(str)).to_numpy(object),
            "dst": (rt.target + ":" + rel["dst"].astype(str)).to_numpy(object),
            "type": rt.type,
        })
        for prop in ("amount", "share_pct", "score"):
            frame[prop] = pd.to_numeric(rel[prop], errors="coerce").to_numpy() if prop in rel.columns else np.nan
        frames.append(frame)
    if not frames:
        empty = pd.DataFrame({"s": pd.Series([], dtype=np.int64), "t": pd.Series([], dtype=np.int64),
                              "type": pd.Series([], dtype=object)})
        return GraphIndex(pd.Index([], dtype=object), empty, np.zeros(1, dtype=np.int64),
                          np.array([], dtype=np.int64), np.array([], dtype=np.int64))
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


# -- the alert queue -------------------------------------------------------------


def _involves(store: Any, label: str) -> pd.DataFrame:
    rel = store.read_relationships(f"Finding-INVOLVES-{label}", ["role"])
    if "role" not in rel.columns:
        rel["role"] = pd.Series([None] * len(rel), dtype=object)
    return rel


def finding_members(store: Any) -> pd.DataFrame:
    """Every INVOLVES edge: ``finding``, ``label``, ``key``, ``role``."""
    frames = []
    for label in FINDING_TARGETS:
        rel = _involves(store, label)
        if len(rel):
            frames.append(pd.DataFrame({"finding": rel["src"].astype(str), "label": label,
                                        "key": rel["dst"].astype(str), "role": rel["role"].astype(object)}))
    if not frames:
        return pd.DataFrame(columns=["finding", "label", "key", "role"])
    return pd.concat(frames, ignore_index=True)


def findings_table(store: Any) -> pd.DataFrame:
    """One row per finding, ready for the queue: ``finding``, ``detector``,
    ``kind``, ``score``, ``size``, ``summary``, ``run_at``, ``first_applied``,
    ``last_applied``, ``agent`` (most common agent of its applications),
    best first.

    Notes
    -----
    One read of the Finding table, the INVOLVES-Application edges, the
    applications' dates and SUBMITTED_BY; the rest is pandas (10k findings:
    tens of milliseconds).
    """
    cols = ["detector", "kind", "score", "size", "summary", "run_at"]
    nodes = store.read_nodes("Finding", cols)
    for c in cols:
        if c not in nodes.columns:
            nodes[c] = pd.NA
    nodes = nodes.rename(columns={"key": "finding"})
    nodes["score"] = pd.to_numeric(nodes["score"], errors="coerce").fillna(0.0)
    nodes["size"] = pd.to_numeric(nodes["size"], errors="coerce").fillna(0).astype(int)
    members = _involves(store, "Application")
    members = members[members["role"].fillna("member") == "member"][["src", "dst"]]
    if len(members):
        apps = store.read_nodes("Application", ["applied_at"]).rename(columns={"key": "dst"})
        apps["applied_at"] = pd.to_datetime(apps["applied_at"], utc=True, errors="coerce")
        dated = members.merge(apps, on="dst", how="left")
        span = dated.groupby("src")["applied_at"].agg(["min", "max"])
        nodes["first_applied"] = nodes["finding"].map(span["min"])
        nodes["last_applied"] = nodes["finding"].map(span["max"])
        agents = store.read_relationships("Application-SUBMITTED_BY-Agent", [])[["src", "dst"]]
        if len(agents):
            via = members.merge(agents.rename(columns={"src": "dst", "dst": "agent"}), on="dst")
            top = via.groupby(["src", "agent"]).size().reset_index(name="n").sort_values(
                ["src", "n", "agent"], ascending=[True, False, True]).drop_duplicates("src").set_index("src")["agent"]
            nodes["agent"] = nodes["finding"].map(top)
        else:
            nodes["agent"] = pd.NA
    else:
        nodes["first_applied"] = pd.NaT
        nodes["last_applied"] = pd.NaT
        nodes["agent"] = pd.NA
    nodes["first_applied"] = pd.to_datetime(nodes["first_applied"], utc=True)
    nodes["last_applied"] = pd.to_datetime(nodes["last_applied"], utc=True)
    nodes = nodes.sort_values(["score", "size", "finding"], ascending=[False, False, True], kind="stable")
    return nodes.reset_index(drop=True)[
        ["finding", "detector", "kind", "score", "size", "summary", "run_at", "first_applied", "last_applied", "agent"]
    ]


def flagged_applications(store: Any) -> pd.DataFrame:
    """Applications the risk model sent to review or decline, highest score
    first: ``application_id``, ``risk_score``, ``risk_decision``,
    ``applied_at``, ``amount``, ``product``, ``applicant_name`` (empty before
    ``ringscope train``)."""
    cols = ["risk_score", "risk_decision", "applied_at", "amount", "product", "applicant_name"]
    apps = store.read_nodes("Application", cols)
    for c in cols:
        if c not in apps.columns:
            apps[c] = pd.Series([None] * len(apps), dtype=object)
    apps = apps.rename(columns={"key": "application_id"})
    apps["risk_score"] = pd.to_numeric(apps["risk_score"], errors="coerce")
    flagged = apps[apps["risk_decision"].isin(["review", "decline"]).fillna(False).to_numpy(bool)]
    return flagged.sort_values("risk_score", ascending=False).reset_index(drop=True)[["application_id", *cols]]


def filter_queue(
    table: pd.DataFrame,
    statuses: pd.Series | None = None,
    detectors: list[str] | None = None,
    min_size: int = 0,
    max_size: int | None = None,
    status: list[str] | None = None,
    date_from: Any = None,
    date_to: Any = None,
    agent: str | None = None,
    min_score: float = 0.0,
) -> pd.DataFrame:
    """Apply the queue's filters; ``statuses`` maps finding → case status
    (findings without a case are ``Open``).

    Example
    -------
    >>> t = pd.DataFrame({"finding": ["a", "b"], "detector": ["x", "y"], "size": [3, 9], "score": [.9, .5],
    ...                   "first_applied": pd.to_datetime(["2025-01-01", "2025-02-01"], utc=True), "agent": [None, "G1"]})
    >>> filter_queue(t, min_size=5)["finding"].tolist()
    ['b']
    """
    out = table.copy()
    out["status"] = out["finding"].map(statuses) if statuses is not None and len(statuses) else None
    out["status"] = out["status"].fillna("Open")
    mask = np.ones(len(out), dtype=bool)
    if detectors:
        mask &= out["detector"].isin(detectors).to_numpy()
    mask &= (out["size"] >= min_size).to_numpy()
    if max_size is not None:
        mask &= (out["size"] <= max_size).to_numpy()
    if min_score:
        mask &= (out["score"] >= min_score).to_numpy()
    if status:
        mask &= out["status"].isin(status).to_numpy()
    if date_from is not None:
        mask &= (out["first_applied"] >= pd.Timestamp(date_from, tz="UTC")).fillna(False).to_numpy(bool)
    if date_to is not None:
        end = pd.Timestamp(date_to, tz="UTC") + pd.Timedelta(days=1)
        mask &= (out["first_applied"] < end).fillna(False).to_numpy(bool)
    if agent:
        mask &= (out["agent"] == agent).fillna(False).to_numpy(bool)
    return out[mask]


def volume_by_week(table: pd.DataFrame) -> pd.DataFrame:
    """Findings per week of their first application (for the small chart)."""
    dated = table.dropna(subset=["first_applied"])
    if dated.empty:
        return pd.DataFrame({"week": [], "findings": []})
    week = dated["first_applied"].dt.tz_localize(None).dt.to_period("W").dt.start_time
    counts = week.value_counts().sort_index()
    return pd.DataFrame({"week": counts.index, "findings": counts.to_numpy()})


# -- the cluster view --------------------------------------------------------------


@dataclass
class Subgraph:
    """Nodes and edges of one view, by index id (``Label:key``).

    ``nodes`` maps id → role (``member``, ``shared``, ``entity``, ``context``,
    ``expanded``); ``edges`` holds ``source``, ``target``, ``type`` and
    properties; ``truncated`` says how many nodes were left out by the cap.
    """

    nodes: dict[str, str]
    edges: pd.DataFrame
    truncated: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def elements(self) -> int:
        return len(self.nodes) + len(self.edges)


def _edges_among(index: GraphIndex, nodes: list[str]) -> pd.DataFrame:
    positions = [p for p in (index.position(n) for n in nodes) if p is not None]
    if not positions:
        return pd.DataFrame(columns=["source", "target", "type", "amount", "share_pct", "score"])
    inside = np.zeros(len(index.ids), dtype=bool)
    inside[positions] = True
    edge_pos, other = index.incident(np.array(positions))
    keep = np.unique(edge_pos[inside[other]])
    e = index.edges.iloc[keep]
    return pd.DataFrame({
        "source": index.ids[e["s"].to_numpy()].to_numpy(object),
        "target": index.ids[e["t"].to_numpy()].to_numpy(object),
        "type": e["type"].astype(str).to_numpy(object),
        "amount": e["amount"].to_numpy(),
        "share_pct": e["share_pct"].to_numpy(),
        "score": e["score"].to_numpy(),
    })


def cluster_subgraph(
    store: Any,
    index: GraphIndex,
    members: pd.DataFrame,
    finding: str,
    extra: list[str] | None = None,
    applied_from: Any = None,
    applied_to: Any = None,
    max_elements: int = MAX_ELEMENTS,
) -> Subgraph:
    """The ring of ``finding``: its applications, their persons/companies, the
    identifiers they share (and any ``extra`` expanded nodes), with every
    relationship among them, capped at ``max_elements``.

    ``members`` is :func:`finding_members`. With ``applied_from``/``applied_to``,
    applications outside the window are left out (and what only they linked).
    """
    mine = members[members["finding"] == finding]
    roles: dict[str, str] = {}
    for row in mine.itertuples(index=False):
        nid = node_id(row.label, row.key)
        roles[nid] = "member" if row.label == "Application" else ("shared" if row.role == "shared" else "entity")
    apps = [n for n, r in roles.items() if n.startswith("Application:")]
    notes: list[str] = []
    if applied_from is not None or applied_to is not None:
        dates = store.node_properties("Application", [split_node_id(a)[1] for a in apps], ["applied_at"])
        when = pd.to_datetime(dates.set_index("key")["applied_at"], utc=True, errors="coerce")
        lo = pd.Timestamp(applied_from, tz="UTC") if applied_from is not None else None
        hi = pd.Timestamp(applied_to, tz="UTC") + pd.Timedelta(days=1) if applied_to is not None else None
        dropped = []
        for a in apps:
            t = when.get(split_node_id(a)[1])
            if t is None or pd.isna(t) or (lo is not None and t < lo) or (hi is not None and t >= hi):
                dropped.append(a)
        for a in dropped:
            roles.pop(a, None)
        apps = [a for a in apps if a not in set(dropped)]
        if dropped:
            notes.append(Message(N_("{n} applications outside the time window are hidden."), n=len(dropped)))
    # context: what the member applications link to that at least two of them
    # share, plus each application's own applicant / company
    positions = [p for p in (index.position(a) for a in apps) if p is not None]
    if positions:
        edge_pos, other = index.incident(np.array(positions))
        types = index.edges["type"].to_numpy()[edge_pos].astype(str)
        counts = pd.Series(other).value_counts()
        for pos, typ in zip(other, types):
            nid = index.ids[pos]
            if nid in roles:
                continue
            if typ in ("APPLIED", "FOR_COMPANY") or counts.get(pos, 0) >= 2:
                roles[nid] = "context"
    # guarantees / registry roles between the persons and companies in view
    parties = [n for n in roles if n.startswith(("Person:", "Company:"))]
    positions = [p for p in (index.position(n) for n in parties) if p is not None]
    if positions:
        edge_pos, other = index.incident(np.array(positions))
        types = index.edges["type"].to_numpy()[edge_pos].astype(str)
        for pos, typ in zip(other, types):
            nid = index.ids[pos]
            if nid not in roles and typ == "GUARANTEES" and roles.get(nid) is None and len(roles) < max_elements:
                roles[nid] = "context"
    for nid in extra or []:
        roles.setdefault(nid, "expanded")
    for nid in extra or []:
        for n in index.neighbours(nid, limit=50):
            roles.setdefault(n, "expanded")
    return _capped(index, roles, max_elements, notes)


_ROLE_RANK = {"member": 0, "entity": 1, "shared": 2, "path": 2, "context": 3, "expanded": 4}


def _capped(index: GraphIndex, roles: dict[str, str], max_elements: int, notes: list[str]) -> Subgraph:
    order = sorted(roles, key=lambda n: (_ROLE_RANK.get(roles[n], 9), n))
    keep = order
    edges = _edges_among(index, keep)
    truncated = 0
    while len(keep) + len(edges) > max_elements and len(keep) > 1:
        # drop the lowest-priority nodes until nodes + edges fit
        excess = len(keep) + len(edges) - max_elements
        cut = max(1, min(len(keep) - 1, excess // 2 if excess > 10 else excess))
        truncated += cut
        keep = keep[:-cut]
        edges = _edges_among(index, keep)
    kept = {n: roles[n] for n in keep}
    if truncated:
        notes.append(Message(N_("The view is capped at {limit} elements: {n} lower-priority nodes are not shown."),
                             limit=max_elements, n=truncated))
    return Subgraph(kept, edges.reset_index(drop=True), truncated, notes)


def expand_subgraph(index: GraphIndex, view: Subgraph, nid: str, limit: int = 50,
                    max_elements: int = MAX_ELEMENTS) -> Subgraph:
    """``view`` plus up to ``limit`` neighbours of ``nid`` (hubs say so)."""
    roles = dict(view.nodes)
    notes = list(view.notes)
    pos = index.position(nid)
    if pos is not None and index.degree(pos) > limit:
        notes.append(Message(N_("{label} has {n} links; showing {limit}."), label=split_node_id(nid)[0],
                             n=int(index.degree(pos)), limit=limit))
    for n in index.neighbours(nid, limit=limit):
        roles.setdefault(n, "expanded")
    return _capped(index, roles, max_elements, notes)


def shortest_path(index: GraphIndex, a: str, b: str, radius: int = 4, max_nodes: int = 20_000,
                  hub_degree: int = HUB_DEGREE) -> list[str] | None:
    """Shortest path between nodes ``a`` and ``b`` (ids), or ``None``.

    Runs networkx on the bounded neighbourhood of both ends (``radius`` hops
    from each, at most ``max_nodes``), not walking through hubs of more than
    ``hub_degree`` links: a path through a carrier NAT IP explains nothing.

    Notes
    -----
    O(n + m) of the bounded neighbourhood.
    """
    import networkx as nx

    pa_, pb = index.position(a), index.position(b)
    if pa_ is None or pb is None:
        return None
    if pa_ == pb:
        return [a]
    graph = nx.Graph()
    seen = {pa_, pb}
    frontier = [pa_, pb]
    for _ in range(radius):
        walk = [p for p in frontier if p in (pa_, pb) or index.degree(p) <= hub_degree]
        if not walk:
            break
        edge_pos, other = index.incident(np.array(walk))
        sources = np.repeat(walk, [index.degree(p) for p in walk])
        graph.add_edges_from(zip(sources.tolist(), other.tolist()))
        frontier = [o for o in dict.fromkeys(other.tolist()) if o not in seen]
        seen.update(frontier)
        if len(seen) > max_nodes:
            break
        if nx.has_path(graph, pa_, pb):
            break
    try:
        path = nx.shortest_path(graph, pa_, pb)
    except (nx.NetworkXNoPath, nx.NodeNotFound):
        return None
    return [index.ids[p] for p in path]


# -- details -------------------------------------------------------------------------


def node_details(store: Any, nid: str) -> dict[str, Any]:
    """All stored properties of one node (unmasked; pages mask)."""
    label, key = split_node_id(nid)
    from ringscope.graph.model import NODE_TYPES

    props = list(NODE_TYPES[label].properties) if label in NODE_TYPES else []
    frame = store.node_properties(label, [key], props) if props else pd.DataFrame({"key": [key]})
    out: dict[str, Any] = {"label": label, "key": key}
    if len(frame):
        for col, value in frame.iloc[0].items():
            if col != "key" and value is not None and not (isinstance(value, float) and np.isnan(value)):
                try:
                    if pd.isna(value):
                        continue
                except (TypeError, ValueError):
                    pass
                out[col] = value
    return out


def view_properties(store: Any, nodes: list[str]) -> dict[str, dict[str, Any]]:
    """The few properties the graph view shows, for ``nodes``, by id (one read per label)."""
    by_label: dict[str, list[str]] = {}
    for nid in nodes:
        label, key = split_node_id(nid)
        by_label.setdefault(label, []).append(key)
    out: dict[str, dict[str, Any]] = {nid: {} for nid in nodes}
    for label, keys in by_label.items():
        props = VIEW_PROPERTIES.get(label)
        if not props:
            continue
        frame = store.node_properties(label, keys, props)
        for rec in frame.to_dict("records"):
            nid = node_id(label, rec.pop("key"))
            out[nid] = {k: v for k, v in rec.items() if v is not None and not _isna(v)}
    return out


def _isna(v: Any) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


@dataclass
class ApplicationDetail:
    fields: dict[str, Any]
    score: float | None
    decision: str | None
    reasons: list[dict[str, Any]]
    findings: pd.DataFrame
    person: str | None
    history: pd.DataFrame


def application_detail(store: Any, index: GraphIndex, findings: pd.DataFrame, members: pd.DataFrame,
                       application_id: str) -> ApplicationDetail | None:
    """An application's fields, its score/decision/reasons (if scored), the
    findings it is in, and the other applications of the same person."""
    details = node_details(store, node_id("Application", application_id))
    if len(details) <= 2:
        return None
    score = details.get("risk_score")
    decision = details.get("risk_decision")
    reasons: list[dict[str, Any]] = []
    if details.get("risk_reasons"):
        try:
            reasons = json.loads(details["risk_reasons"])
        except (TypeError, ValueError):
            reasons = []
    if score is None:  # a 'risk_score' detector finding may carry it instead
        mine = members[(members["label"] == "Application") & (members["key"] == application_id)]["finding"]
        scored = findings[findings["finding"].isin(mine) & (findings["detector"] == "risk_score")]
        if len(scored):
            score = float(scored["score"].iloc[0])
            decision = None
    in_findings = members[(members["label"] == "Application") & (members["key"] == application_id)]["finding"]
    its = findings[findings["finding"].isin(in_findings)][["finding", "detector", "score", "size", "summary"]]
    person = None
    history = pd.DataFrame(columns=["application_id", "applied_at", "amount", "product", "label"])
    neighbours = index.neighbours(node_id("Application", application_id), limit=1000)
    persons = [n for n in neighbours if n.startswith("Person:")]
    if persons:
        person = split_node_id(persons[0])[1]
        apps = [split_node_id(n)[1] for n in index.neighbours(persons[0], limit=1000) if n.startswith("Application:")]
        apps = [a for a in apps if a != application_id]
        if apps:
            history = store.node_properties("Application", apps, ["applied_at", "amount", "product", "label"])
            history = history.rename(columns={"key": "application_id"}).sort_values("applied_at")
    return ApplicationDetail(details, None if score is None else float(score), decision, reasons, its, person,
                             history.reset_index(drop=True))


def models_summary(store: Any) -> dict[str, Any] | None:
    """The latest training report and its plots, if ``ringscope train`` saved one."""
    try:
        from ringscope.detectors.risk.scoring import models_folder

        folder = models_folder(store)
    except Exception:  # noqa: BLE001 - no scoring module: no model page content
        folder = Path(getattr(store, "location", ".")) / "models"
    override = os.environ.get("RINGSCOPE_MODELS")
    if override:
        folder = Path(override)
    latest = folder / "LATEST"
    if not latest.exists():
        return None
    version = latest.read_text(encoding="utf-8").strip()
    target = folder / version
    report_file = target / "report.json"
    if not report_file.exists():
        return None
    report = json.loads(report_file.read_text(encoding="utf-8"))
    plots = [p for p in (target / "roc.png", target / "scores.png") if p.exists()]
    from ringscope.detectors.risk.model_store import challenger, champion_history

    history = pd.DataFrame([vars(e) for e in champion_history(folder)],
                           columns=["at", "action", "before", "after", "user", "reason"])
    monitoring = None
    if (folder / "monitoring.json").exists():
        try:
            monitoring = json.loads((folder / "monitoring.json").read_text(encoding="utf-8"))
        except ValueError:  # a damaged file: the page says there is no monitoring yet
            monitoring = None
    return {"version": version, "folder": str(target), "report": report, "plots": plots,
            "challenger": challenger(folder), "history": history, "monitoring": monitoring}
