"""Where each node of a ring is drawn, and how big its label can be.

The graph component (st-link-analysis, cytoscape.js) takes a ``preset``
layout with a position per node, so the explorer lays rings out here, in
Python, by what the finding is:

- :func:`concentric_layout` — shared-identifier rings, device farms and
  most other findings: the finding's subject in the centre, the other shared
  identifiers around it, the member applications on the next ring(s), their
  people and companies outside, each beside what it links to;
- :func:`directed_circle_layout` — guarantee circles: the guarantors and
  borrowers on one circle in cycle order, clockwise along the guarantees;
- :func:`timeline_layout` — bursts: applications left to right in time.

Positions are in pixels of a design canvas (:data:`CANVAS`), so when the
component fits the view its zoom is about 1 and a font size here is about
the size on screen. :func:`label_sizes` gives each node the largest font
that keeps its label clear of its neighbours' (labels too small to read at
that zoom are hidden by cytoscape and appear when the user zooms in).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "CANVAS",
    "LAYOUT_KINDS",
    "RingLayout",
    "layout_kind",
    "concentric_layout",
    "directed_circle_layout",
    "cycle_order",
    "timeline_layout",
    "label_sizes",
    "label_width",
    "MAX_FONT",
    "READABLE_FONT",
]

#: the design canvas (pixels): about the graph column at 1600 px wide
CANVAS = (760.0, 600.0)
#: largest label font (px); cytoscape hides labels under READABLE_FONT on screen
MAX_FONT = 13.0
READABLE_FONT = 10.0
#: node diameter by role (px at zoom 1)
NODE_SIZE = {"subject": 34.0, "shared": 24.0, "member": 18.0}
DEFAULT_SIZE = 16.0

#: finding kind → layout (anything else: concentric)
LAYOUT_KINDS = {
    "guarantee_circle": "circle",
    "mutual_guarantee": "circle",
    "guarantee_chain": "circle",
    "device_burst": "timeline",
    "ip_burst": "timeline",
    "ip_range_burst": "timeline",
    "subnet_burst": "timeline",
}


@dataclass
class RingLayout:
    """Positions (``id → (x, y)`` px), the layout's name, the subject ids and
    each node's label font (``id → px``)."""

    name: str
    positions: dict[str, tuple[float, float]]
    subject: list[str] = field(default_factory=list)
    fonts: dict[str, float] = field(default_factory=dict)

    @property
    def labelled(self) -> int:
        """How many labels are readable when the whole ring is in view."""
        return sum(1 for f in self.fonts.values() if f >= READABLE_FONT)


def layout_kind(kind: Any) -> str:
    """The layout a finding kind is drawn with.

    Example
    -------
    >>> layout_kind("guarantee_circle"), layout_kind("device_burst"), layout_kind("ring")
    ('circle', 'timeline', 'concentric')
    """
    return LAYOUT_KINDS.get(str(kind), "concentric")


def node_size(role: str) -> float:
    return NODE_SIZE.get(role, DEFAULT_SIZE)


def label_width(text: str, font: float) -> float:
    """Rough width (px) of ``text`` at ``font`` px: hanzi are square, Latin about 0.6.

    >>> label_width("RA01", 10.0), label_width("王伟", 10.0)
    (24.0, 20.0)
    """
    return font * sum(1.0 if ord(ch) > 0x2E7F else 0.6 for ch in text)


# -- helpers ----------------------------------------------------------------------------


def _neighbours(edges: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for s, t in edges:
        out.setdefault(s, []).append(t)
        out.setdefault(t, []).append(s)
    return out


def _mean_angle(angles: list[float]) -> float | None:
    if not angles:
        return None
    x, y = sum(math.cos(a) for a in angles), sum(math.sin(a) for a in angles)
    if abs(x) < 1e-9 and abs(y) < 1e-9:
        return angles[0]
    return math.atan2(y, x)


def _rings(nodes: list[str], r0: float, spacing: float) -> tuple[list[tuple[str, float, float]], float]:
    """``nodes`` (in order) on as many concentric rings from radius ``r0`` as
    their number needs at ``spacing`` px apart; (node, radius, angle) and the
    last radius. Angles start at the top and run clockwise."""
    placed: list[tuple[str, float, float]] = []
    if not nodes:
        return placed, r0 - spacing
    radii, caps, left, r = [], [], len(nodes), r0
    while left > 0:
        cap = max(1, int(2 * math.pi * r / spacing))
        radii.append(r)
        caps.append(cap)
        left -= cap
        r += spacing
    # share the nodes over the rings in proportion to their room: equal spacing
    total = sum(caps)
    counts = [int(round(len(nodes) * c / total)) for c in caps]
    counts[-1] += len(nodes) - sum(counts)
    i = 0
    for radius, n in zip(radii, counts):
        for k in range(n):
            angle = -math.pi / 2 + 2 * math.pi * k / max(n, 1)
            placed.append((nodes[i], radius, angle))
            i += 1
    return placed, radii[-1]


def _by_barycentre(nodes: list[str], nbrs: dict[str, list[str]], angle: dict[str, float]) -> list[str]:
    """``nodes`` ordered by the mean angle of their already placed neighbours
    (so a person sits beside their application)."""

    def key(n: str) -> tuple[float, str]:
        a = _mean_angle([angle[m] for m in nbrs.get(n, ()) if m in angle])
        if a is None:
            return (9.0, n)
        return ((a + math.pi / 2) % (2 * math.pi), n)

    return sorted(nodes, key=key)


def _satellites(
    nodes: list[str], nbrs: dict[str, list[str]], polar: dict[str, tuple[float, float]], spacing: float
) -> tuple[list[tuple[str, float, float]], list[str]]:
    """Nodes linked to exactly one placed member, placed just outside it
    (several fan out sideways); and the nodes left over."""
    placed, left = [], []
    count: dict[str, int] = {}
    for n in nodes:
        owners = [m for m in nbrs.get(n, ()) if m in polar]
        if len(set(owners)) != 1:
            left.append(n)
            continue
        m = owners[0]
        k = count[m] = count.get(m, 0) + 1
        rad, a = polar[m]
        step = (k // 2) * (1 if k % 2 else -1)  # 0, +1, -1, +2, ...
        placed.append((n, rad + 0.45 * spacing, a + step * 0.35 * spacing / max(rad, spacing)))
    return placed, left


def _turned(
    got: list[tuple[str, float, float]], nbrs: dict[str, list[str]], angle: dict[str, float]
) -> list[tuple[str, float, float]]:
    """``got`` turned round the centre so that its nodes sit, on average, at
    the angle of what they link to (a group centred on its shared phone)."""
    offsets = []
    for n, _r, a in got:
        target = _mean_angle([angle[m] for m in nbrs.get(n, ()) if m in angle])
        if target is not None:
            offsets.append(target - a)
    turn = _mean_angle(offsets)
    if turn is None:
        return got
    return [(n, r, a + turn) for n, r, a in got]


def _fit(raw: dict[str, tuple[float, float]], canvas: tuple[float, float] = CANVAS) -> dict[str, tuple[float, float]]:
    """Scale positions into the canvas, the origin (the subject) in its
    centre, keeping the aspect ratio."""
    if not raw:
        return {}
    xs = np.array([p[0] for p in raw.values()])
    ys = np.array([p[1] for p in raw.values()])
    w, h = 2 * float(np.abs(xs).max()), 2 * float(np.abs(ys).max())
    margin = 40.0
    sx = (canvas[0] - 2 * margin) / w if w > 0 else math.inf
    sy = (canvas[1] - 2 * margin) / h if h > 0 else math.inf
    scale = min(sx, sy)
    if not math.isfinite(scale):
        scale = 1.0
    scale = min(scale, 3.0)  # a handful of nodes: no giant spacing
    cx = cy = 0.0
    return {
        n: (round(canvas[0] / 2 + (x - cx) * scale, 1), round(canvas[1] / 2 + (y - cy) * scale, 1))
        for n, (x, y) in raw.items()
    }


def _polar(placed: Iterable[tuple[str, float, float]]) -> dict[str, tuple[float, float]]:
    return {n: (r * math.cos(a), r * math.sin(a)) for n, r, a in placed}


# -- concentric ---------------------------------------------------------------------------


def concentric_layout(
    roles: Mapping[str, str],
    edges: Iterable[tuple[str, str]],
    subject: Sequence[str] = (),
    spacing: float = 60.0,
) -> dict[str, tuple[float, float]]:
    """Concentric rings around the subject.

    Parameters
    ----------
    roles : node id → role (``member`` for the finding's applications,
        ``shared`` for the identifiers they share, anything else outside).
    edges : (source, target) pairs among the nodes.
    subject : the node(s) the finding is about: the centre (several: a small
        ring in the centre).

    Returns
    -------
    id → (x, y) in canvas pixels.

    Example
    -------
    >>> roles = {"D": "shared", "A1": "member", "A2": "member", "A3": "member"}
    >>> pos = concentric_layout(roles, [("A1", "D"), ("A2", "D"), ("A3", "D")], subject=["D"])
    >>> d = {n: round(math.dist(pos[n], pos["D"])) for n in ("A1", "A2", "A3")}
    >>> len(set(d.values()))  # the members all at one distance from the subject
    1

    Notes
    -----
    O(n log n): ring placement plus one sort by neighbour angle per level.
    """
    nbrs = _neighbours(edges)
    subject = [s for s in subject if s in roles]
    centre = list(subject)
    shared = sorted(n for n, r in roles.items() if r == "shared" and n not in centre)
    if not centre and shared:
        centre, shared = shared[:1], shared[1:]
    members = sorted(n for n, r in roles.items() if r == "member" and n not in centre)
    rest = [n for n in roles if n not in set(centre) | set(shared) | set(members)]
    placed: list[tuple[str, float, float]] = []
    if len(centre) == 1:
        placed.append((centre[0], 0.0, 0.0))
        r = 0.0
    else:
        got, r = _rings(centre, max(spacing * 0.6, spacing * len(centre) / (2 * math.pi)), spacing)
        placed += got
    for level in (shared, members, rest):
        if level is rest and level:
            # a big ring (members on several rings): each person or company sits
            # just outside its one application instead of on rings of its own,
            # which would shrink the members' spacing, and their labels, further
            polar = {n: (rad, a) for n, rad, a in placed if n in set(members)}
            if len({round(rad, 3) for rad, _a in polar.values()}) > 1:
                got, level = _satellites(level, nbrs, polar, spacing)
                placed += got
        if not level:
            continue
        angle = {n: a for n, rad, a in placed if rad > 0}
        # members spread by what they share, the rest beside what they belong to
        ordered = _by_barycentre(level, nbrs, angle) if angle else level
        # one ring when the level fits on one not much wider than the last
        one = spacing * len(ordered) / (2 * math.pi)
        r0 = max(r + spacing, one) if one <= r + 3 * spacing else r + spacing
        got, r = _rings(ordered, r0, spacing)
        placed += _turned(got, nbrs, angle)
    return _fit(_polar(placed))


# -- directed circle ------------------------------------------------------------------------


def cycle_order(directed: Iterable[tuple[str, str]], nodes: Sequence[str] = (), max_cycles: int = 5000) -> list[str]:
    """The nodes of the longest directed cycle among ``directed`` edges, in
    cycle order (each guarantees the next), then the other ``nodes`` of
    the same strongly connected part after a node that points at them.

    Example
    -------
    >>> cycle_order([("A", "B"), ("B", "C"), ("C", "A"), ("B", "A")])
    ['A', 'B', 'C']

    Notes
    -----
    Johnson's simple-cycle search, stopped after ``max_cycles`` cycles.
    """
    import networkx as nx

    graph = nx.DiGraph()
    graph.add_nodes_from(nodes)
    graph.add_edges_from((s, t) for s, t in directed if s != t)
    best: list[str] = []
    for i, cycle in enumerate(nx.simple_cycles(graph, length_bound=max(2, min(len(graph), 40)))):
        if len(cycle) > len(best):
            best = list(cycle)
        if i >= max_cycles or len(best) == len(graph):
            break
    if not best:
        return []
    # start at the smallest id so the order is stable
    k = best.index(min(best))
    order = best[k:] + best[:k]
    part = next((c for c in nx.strongly_connected_components(graph) if order[0] in c), set())
    for n in sorted(part - set(order)):
        preds = [p for p in graph.predecessors(n) if p in order]
        at = order.index(preds[0]) + 1 if preds else len(order)
        order.insert(at, n)
    return order


def directed_circle_layout(
    roles: Mapping[str, str],
    edges: Iterable[tuple[str, str]],
    directed: Iterable[tuple[str, str]],
    spacing: float = 60.0,
) -> tuple[dict[str, tuple[float, float]], list[str]]:
    """Guarantee circle: the nodes of the guarantee cycle on one circle in
    cycle order, clockwise (each node guarantees the next one round); the
    applications and everything else on rings outside, beside what they link to.

    Returns the positions and the cycle order.

    Example
    -------
    >>> roles = {"P1": "entity", "P2": "entity", "P3": "entity", "A1": "member"}
    >>> g = [("P1", "P2"), ("P2", "P3"), ("P3", "P1")]
    >>> pos, order = directed_circle_layout(roles, g + [("A1", "P1")], g)
    >>> order
    ['P1', 'P2', 'P3']
    >>> r = {n: round(math.dist(pos[n], (380.0, 300.0))) for n in order}
    >>> len(set(r.values())) == 1 and math.dist(pos["A1"], (380.0, 300.0)) > r["P1"]
    True
    """
    edges = list(edges)
    nbrs = _neighbours(edges)
    order = cycle_order(list(directed), [n for n in roles])
    if not order:  # no cycle in view: plain concentric rings
        return concentric_layout(roles, edges, spacing=spacing), []
    r = max(spacing, spacing * len(order) / (2 * math.pi))
    placed = [(n, r, -math.pi / 2 + 2 * math.pi * i / len(order)) for i, n in enumerate(order)]
    angle = {n: a for n, _r, a in placed}
    inner = set(order)
    members = [n for n, role in roles.items() if role == "member" and n not in inner]
    rest = [n for n in roles if n not in inner and n not in set(members)]
    for level in (members, rest):
        if not level:
            continue
        ordered = _by_barycentre(level, nbrs, angle)
        got, r = _rings(ordered, r + spacing, spacing)
        placed += got
        angle.update({n: a for n, _r, a in got})
    return _fit(_polar(placed)), order


# -- timeline ---------------------------------------------------------------------------------


def _lanes(xs: np.ndarray, widths: np.ndarray, max_lanes: int) -> np.ndarray:
    """Greedy interval packing: each item (left to right) into the first lane
    whose last label ends before this one starts (the fullest-ended lane when
    none is free)."""
    ends = np.full(max_lanes, -np.inf)
    lane = np.zeros(len(xs), dtype=int)
    for i in np.argsort(xs, kind="stable"):
        left = xs[i] - widths[i] / 2
        free = np.flatnonzero(ends <= left)
        k = int(free[0]) if len(free) else int(np.argmin(ends))
        lane[i] = k
        ends[k] = xs[i] + widths[i] / 2
    return lane


def timeline_layout(
    roles: Mapping[str, str],
    edges: Iterable[tuple[str, str]],
    times: Mapping[str, Any],
    subject: Sequence[str] = (),
    captions: Mapping[str, str] | None = None,
    canvas: tuple[float, float] = CANVAS,
) -> dict[str, tuple[float, float]]:
    """Applications left to right by ``times`` (application id → time), in
    lanes so their labels do not collide; the subject above the middle, the
    other shared identifiers in a band above, people and companies in a
    band below at the mean place of their applications.

    Example
    -------
    >>> roles = {"D": "shared", "A": "member", "B": "member", "C": "member"}
    >>> t = {"A": "2025-03-01 10:00", "B": "2025-03-01 09:00", "C": "2025-03-02 09:00"}
    >>> pos = timeline_layout(roles, [("A", "D"), ("B", "D"), ("C", "D")], t, subject=["D"])
    >>> sorted("ABC", key=lambda n: pos[n][0])
    ['B', 'A', 'C']

    Notes
    -----
    O(n · lanes).
    """
    captions = captions or {}
    nbrs = _neighbours(edges)
    w, h = canvas
    margin = 50.0
    subject = [s for s in subject if s in roles]
    apps = [n for n, r in roles.items() if r == "member" and n not in subject]
    when = pd.to_datetime(pd.Series([times.get(a) for a in apps], dtype=object), utc=True, errors="coerce")
    order = np.argsort(when.fillna(pd.Timestamp.max.tz_localize("UTC")).to_numpy(), kind="stable")
    secs = (when - when.min()).dt.total_seconds().to_numpy() if when.notna().any() else np.zeros(len(apps))
    span = float(np.nanmax(secs)) if len(secs) and np.isfinite(secs).any() else 0.0
    xs = np.empty(len(apps))
    # time on x; half rank, half time, so a tight burst is not one point
    rank = np.empty(len(apps))
    rank[order] = np.arange(len(apps))
    for i in range(len(apps)):
        frac_t = secs[i] / span if span > 0 and np.isfinite(secs[i]) else (rank[i] / max(len(apps) - 1, 1))
        frac_r = rank[i] / max(len(apps) - 1, 1)
        xs[i] = margin + (w - 2 * margin) * (0.5 * frac_t + 0.5 * frac_r) if len(apps) > 1 else w / 2
    # keep time order exact after mixing (the mix is monotone in both, so it is)
    pos: dict[str, tuple[float, float]] = {}
    band_top, band_bottom = 0.22 * h, 0.70 * h
    lane_h = 2.6 * MAX_FONT
    max_lanes = max(1, int((band_bottom - band_top) / lane_h))
    widths = np.array([label_width(captions.get(a, a), MAX_FONT) + 8 for a in apps])
    lanes = _lanes(xs, widths, max_lanes) if len(apps) else np.array([], dtype=int)
    used = int(lanes.max()) + 1 if len(lanes) else 1
    step = min(lane_h, (band_bottom - band_top) / max(used, 1))
    mid = (band_top + band_bottom) / 2 - step * (used - 1) / 2
    for a, x, lane in zip(apps, xs, lanes):
        pos[a] = (round(float(x), 1), round(mid + step * int(lane), 1))
    # the subject above the middle; the other shared identifiers in a band above it
    for i, n in enumerate(subject):
        pos[n] = (round(w / 2 + (i - (len(subject) - 1) / 2) * 120.0, 1), round(0.12 * h, 1))
    others = sorted(n for n, r in roles.items() if r == "shared" and n not in pos)
    for i, n in enumerate(others):
        pos[n] = (round(margin + (w - 2 * margin) * (i + 0.5) / len(others), 1), round(0.02 * h, 1))
    rest = [n for n in roles if n not in pos]
    if rest:
        rx = []
        for n in rest:
            near = [pos[m][0] for m in nbrs.get(n, ()) if m in pos]
            rx.append(float(np.mean(near)) if near else w / 2)
        rx_arr = np.array(rx)
        rw = np.array([label_width(captions.get(n, n), MAX_FONT) + 8 for n in rest])
        rl = _lanes(rx_arr, rw, 3)
        for n, x, lane in zip(rest, rx_arr, rl):
            pos[n] = (round(float(x), 1), round(0.80 * h + lane_h * int(lane), 1))
    return pos


# -- labels -------------------------------------------------------------------------------------


def label_sizes(
    positions: Mapping[str, tuple[float, float]],
    captions: Mapping[str, str],
    sizes: Mapping[str, float] | None = None,
    max_font: float = MAX_FONT,
    min_font: float = 1.0,
    priority: Mapping[str, int] | None = None,
) -> dict[str, float]:
    """The largest font (px, at most ``max_font``) for each node's label (drawn
    under the node) that keeps it clear of every neighbour's label and node.

    Two labels at (dx, dy) clear each other when they are apart sideways
    (|dx| ≥ half of both widths plus a gap) or vertically (|dy| ≥ a line plus
    the node). Fonts scale with the zoom like distances do, so a label too
    small to read when the whole ring is in view still clears its
    neighbours once zoomed in far enough to read it. With ``priority``
    (lower first: the subject, then members), a node only yields to nodes
    of its own or a higher priority, and a lower one makes room for them.

    Example
    -------
    >>> pos = {"a": (0.0, 0.0), "b": (200.0, 0.0), "c": (20.0, 0.0)}
    >>> f = label_sizes(pos, {"a": "RA01", "b": "RA02", "c": "RA03"})
    >>> f["b"] == MAX_FONT and f["a"] < READABLE_FONT
    True
    >>> f = label_sizes(pos, {"a": "RA01", "b": "RA02", "c": "RA03"}, priority={"a": 0, "b": 0, "c": 1})
    >>> f["a"] == MAX_FONT and f["c"] < READABLE_FONT
    True

    Notes
    -----
    O(n²) in numpy, by priority level (a capped view: ~10 ms for 500 nodes).
    """
    ids = list(positions)
    if not ids:
        return {}
    sizes = sizes or {}
    priority = priority or {}
    rank = np.array([priority.get(n, 0) for n in ids])
    xy = np.array([positions[n] for n in ids], dtype=float)
    units = np.array([label_width(str(captions.get(n, "")), 1.0) for n in ids])  # width per px of font
    half_node = np.array([sizes.get(n, DEFAULT_SIZE) for n in ids]) / 2
    fonts = np.full(len(ids), max_font)
    gap = 6.0
    # all pairs at once, one priority level after the other (views are capped at
    # ~1,500 elements: at most a few MB)
    for level in sorted(set(rank.tolist())):
        rows = np.flatnonzero(rank == level)
        cols = np.flatnonzero(rank <= level)
        dx = np.abs(xy[cols, 0][None, :] - xy[rows, 0][:, None])
        dy = np.abs(xy[cols, 1][None, :] - xy[rows, 1][:, None])
        vert = (dy - np.maximum(half_node[rows][:, None], half_node[cols][None, :])) / 1.3
        same = (rank[cols] == level)[None, :]
        u_i, u_j, f_j = units[rows][:, None], units[cols][None, :], fonts[cols][None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            # the same font for both: f * (u_i + u_j) / 2 + gap <= dx
            side_same = 2 * (dx - gap) / (u_i + u_j)
            # j keeps its font: f * u_i / 2 + f_j * u_j / 2 + gap <= dx
            side_kept = 2 * (dx - gap - f_j * u_j / 2) / u_i
        side = np.where(same, side_same, side_kept)
        side = np.where(np.isnan(side), np.inf, side)
        side = np.where(~same & (f_j * u_j == 0), np.inf, side)  # no label there: only its node
        bound = np.maximum(side, vert)
        bound[rows[:, None] == cols[None, :]] = np.inf  # not against itself
        if bound.shape[1]:
            fonts[rows] = np.minimum(fonts[rows], bound.min(axis=1))
    return {n: round(float(max(min_font, f)), 2) for n, f in zip(ids, fonts)}
