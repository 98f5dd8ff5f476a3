"""What the cluster explorer draws: a finding's neighbourhood, capped, expanded, and paths."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ringscope.app.dashboard.graph_index import (
    HUB_DEGREE,
    MAX_ELEMENTS,
    GraphIndex,
    node_id,
    split_node_id,
)
from ringscope.app.dashboard.i18n import N_, Message

__all__ = ["Subgraph", "cluster_subgraph", "capped_subgraph", "expand_subgraph", "shortest_path"]


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
    return pd.DataFrame(
        {
            "source": index.ids[e["s"].to_numpy()].to_numpy(object),
            "target": index.ids[e["t"].to_numpy()].to_numpy(object),
            "type": e["type"].astype(str).to_numpy(object),
            "amount": e["amount"].to_numpy(),
            "share_pct": e["share_pct"].to_numpy(),
            "score": e["score"].to_numpy(),
        }
    )


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
    return capped_subgraph(index, roles, max_elements, notes)


_ROLE_RANK = {"member": 0, "entity": 1, "shared": 2, "path": 2, "context": 3, "expanded": 4}


def capped_subgraph(index: GraphIndex, roles: dict[str, str], max_elements: int, notes: list[str]) -> Subgraph:
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
        notes.append(
            Message(
                N_("The view is capped at {limit} elements: {n} lower-priority nodes are not shown."),
                limit=max_elements,
                n=truncated,
            )
        )
    return Subgraph(kept, edges.reset_index(drop=True), truncated, notes)


def expand_subgraph(
    index: GraphIndex, view: Subgraph, nid: str, limit: int = 50, max_elements: int = MAX_ELEMENTS
) -> Subgraph:
    """``view`` plus up to ``limit`` neighbours of ``nid`` (hubs say so)."""
    roles = dict(view.nodes)
    notes = list(view.notes)
    pos = index.position(nid)
    if pos is not None and index.degree(pos) > limit:
        notes.append(
            Message(
                N_("{label} has {n} links; showing {limit}."),
                label=split_node_id(nid)[0],
                n=int(index.degree(pos)),
                limit=limit,
            )
        )
    for n in index.neighbours(nid, limit=limit):
        roles.setdefault(n, "expanded")
    return capped_subgraph(index, roles, max_elements, notes)


def shortest_path(
    index: GraphIndex, a: str, b: str, radius: int = 4, max_nodes: int = 20_000, hub_degree: int = HUB_DEGREE
) -> list[str] | None:
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
