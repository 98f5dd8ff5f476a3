"""The evidence pack's pictures: the ring and the timeline of its applications, as PNG.

Drawn on the machine with matplotlib (Agg) at positions computed here
(networkx for the adjacency): concentric rings around what the members
share, so a ring reads from its middle out. Colour means the type of a node
and nothing else; known-bad applications get a red rim, guarantees are red
arrows. Labels come in already masked (:mod:`ringscope.app.dashboard.evidence_pack`).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from ringscope.app.dashboard import i18n, names
from ringscope.app.dashboard.i18n import _
from ringscope.graph.model import KNOWN_BAD_LABELS

__all__ = ["NODE_COLOURS", "OUTCOME_COLOURS", "LABEL_LIMIT", "graph_png", "timeline_png"]

#: node colour by type: the same colours the cluster explorer uses; colour means type only
NODE_COLOURS = {
    "Application": "#1f77b4",
    "Person": "#2ca02c",
    "Company": "#9467bd",
    "Agent": "#8c564b",
    "Phone": "#ff7f0e",
    "Device": "#7f7f7f",
    "IP": "#17becf",
    "BankAccount": "#bcbd22",
    "Address": "#e377c2",
    "Email": "#d62728",
}
#: timeline colour by outcome (blank: not known yet)
OUTCOME_COLOURS = {"good": "#2ca02c", "fraud": "#d00000", "default": "#ff7f0e", "": "#9e9e9e"}
#: member labels are drawn on the picture up to this many nodes (beyond, only shared identifiers)
LABEL_LIMIT = 120


def _positions(nodes: dict[str, str], edges: pd.DataFrame) -> dict[str, tuple[float, float]]:
    """Concentric rings: shared identifiers in the middle, the applications
    around them, their people and the rest outside; each outer node placed
    at the mean angle of its inner neighbours so few links cross."""
    import networkx as nx

    graph = nx.Graph()
    graph.add_nodes_from(nodes)
    if len(edges):
        graph.add_edges_from(zip(edges["source"], edges["target"]))
    shells: list[list[str]] = [[], [], [], []]
    for nid, role in nodes.items():
        label = nid.partition(":")[0]
        if role == "shared":
            shells[0].append(nid)
        elif label == "Application" and role == "member":
            shells[1].append(nid)
        elif role in ("member", "entity"):
            shells[2].append(nid)
        else:
            shells[3].append(nid)
    if len(shells[1]) == 1:  # one application (an application's case): it is the middle
        shells = [shells[1], shells[0], shells[2], shells[3]]
    shells = [sorted(s) for s in shells if s]
    if len(shells) == 1 and len(shells[0]) > 1:  # nothing in the middle (a guarantee circle): one ring
        shells = [[]] + shells
    pos: dict[str, tuple[float, float]] = {}
    radius = 0.0
    for shell in shells:
        if not shell:
            radius += 1.0
            continue
        if len(shell) == 1 and radius == 0.0:
            pos[shell[0]] = (0.0, 0.0)
            radius = 1.0
            continue
        if radius == 0.0:
            radius = 0.5 if len(shell) <= 6 else 1.0
        angle = {}
        for nid in shell:  # the mean direction of the neighbours already placed
            placed = [pos[n] for n in graph.neighbors(nid) if n in pos]
            if placed:
                x, y = np.mean([p[0] for p in placed]), np.mean([p[1] for p in placed])
                angle[nid] = float(np.arctan2(y, x)) if (x or y) else 0.0
            else:
                angle[nid] = 10.0  # unlinked ones last
        order = sorted(shell, key=lambda n: (angle[n], n))
        step = 2 * np.pi / len(order)
        offset = min((angle[n] for n in order), default=0.0)
        offset = offset if offset < 10 else 0.0
        for i, nid in enumerate(order):
            a = offset + i * step
            pos[nid] = (radius * float(np.cos(a)), radius * float(np.sin(a)))
        radius += 1.0
    return pos


def graph_png(
    nodes: dict[str, str],
    edges: pd.DataFrame,
    captions: dict[str, str],
    outcomes: dict[str, str],
    font: Path,
    width_in: float = 7.0,
) -> bytes:
    """The ring as a PNG: colour by node type, diamonds for the shared
    identifiers, a thick red rim for known-bad applications, guarantees as
    red arrows, a legend, member labels where they fit.

    ``nodes`` maps ``Label:key`` → role (as :class:`~ringscope.app.dashboard.cluster_view.Subgraph`),
    ``edges`` has ``source``, ``target``, ``type``; ``captions`` are the
    (already masked) labels, ``outcomes`` the applications' outcome labels.

    Example
    -------
    >>> from ringscope.app.dashboard.evidence_pack import find_font
    >>> png = graph_png({"Device:d1": "shared", "Application:A1": "member", "Application:A2": "member"},
    ...                 pd.DataFrame({"source": ["Application:A1", "Application:A2"],
    ...                               "target": ["Device:d1", "Device:d1"], "type": ["HAS_DEVICE"] * 2}),
    ...                 {"Device:d1": "d1", "Application:A1": "A1", "Application:A2": "A2"},
    ...                 {"Application:A1": "fraud"}, find_font())
    >>> png[:4]
    b'\x89PNG'
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection
    from matplotlib.font_manager import FontProperties
    from matplotlib.lines import Line2D

    fp = FontProperties(fname=str(font), size=7)
    pos = _positions(nodes, edges)
    fig, ax = plt.subplots(figsize=(width_in, width_in * 0.8), dpi=150)
    try:
        ax.set_axis_off()
        plain = []  # one artist for all plain links: hundreds of ax.plot calls cost a second
        if len(edges):
            for e in edges.itertuples(index=False):
                if e.source not in pos or e.target not in pos:
                    continue
                (x1, y1), (x2, y2) = pos[e.source], pos[e.target]
                if e.type == "GUARANTEES":
                    ax.annotate(
                        "",
                        xy=(x2, y2),
                        xytext=(x1, y1),
                        arrowprops={"arrowstyle": "-|>", "color": "#d62728", "lw": 1.2, "shrinkA": 6, "shrinkB": 6},
                        zorder=1,
                    )
                else:
                    plain.append([(x1, y1), (x2, y2)])
        if plain:
            ax.add_collection(LineCollection(plain, colors="#b0b0b0", linewidths=0.6, zorder=1))
        for label in sorted({n.partition(":")[0] for n in nodes}):
            for shared in (False, True):
                ids = [n for n in nodes if n.partition(":")[0] == label and (nodes[n] == "shared") == shared]
                if not ids:
                    continue
                bad = [outcomes.get(n, "") in KNOWN_BAD_LABELS for n in ids]
                ax.scatter(
                    [pos[n][0] for n in ids],
                    [pos[n][1] for n in ids],
                    s=[150 if shared else 70 for _n in ids],
                    c=NODE_COLOURS.get(label, "#444444"),
                    marker="D" if shared else "o",
                    edgecolors=["#d00000" if b else "white" for b in bad],
                    linewidths=[2.2 if b else 0.6 for b in bad],
                    zorder=3,
                )
        many = len(nodes) > LABEL_LIMIT
        for nid, (x, y) in pos.items():
            if many and nodes[nid] != "shared":
                continue
            ax.annotate(
                captions.get(nid, ""),
                (x, y),
                xytext=(0, -9),
                textcoords="offset points",
                ha="center",
                va="top",
                fontproperties=fp,
                zorder=4,
            )
        present = sorted({n.partition(":")[0] for n in nodes})
        handles = [
            Line2D([], [], marker="o", ls="", color=NODE_COLOURS.get(lb, "#444444"), label=names.label_name(lb))
            for lb in present
        ]
        handles.append(Line2D([], [], marker="D", ls="", color="#7f7f7f", label=_("shared identifier")))
        handles.append(
            Line2D(
                [],
                [],
                marker="o",
                ls="",
                color="white",
                markeredgecolor="#d00000",
                markeredgewidth=2,
                label=_("known bad (outcome)"),
            )
        )
        if len(edges) and (edges["type"] == "GUARANTEES").any():
            handles.append(Line2D([], [], color="#d62728", label=_("guarantees")))
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), prop=fp, frameon=False)
        ax.set_aspect("equal")
        ax.margins(0.08)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", bbox_inches="tight")
        return buf.getvalue()
    finally:
        plt.close(fig)


def timeline_png(timeline: pd.DataFrame, font: Path, width_in: float = 7.0) -> bytes | None:
    """The ring's applications on a time axis (Beijing dates), one dot each,
    coloured by outcome; None when no application has a date. ``timeline``
    has ``_at`` (UTC times) and ``_outcome`` (outcome labels, ``""`` unknown)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from matplotlib.font_manager import FontProperties
    from matplotlib.lines import Line2D

    t = timeline.dropna(subset=["_at"])
    if t.empty:
        return None
    fp = FontProperties(fname=str(font), size=7)
    when = t["_at"].dt.tz_convert(i18n.TIMEZONE).dt.tz_localize(None)
    fig, ax = plt.subplots(figsize=(width_in, 1.6), dpi=150)
    try:
        y = np.arange(len(t)) % 5  # a few lanes, so same-day applications stay apart
        ax.scatter(when, y, c=[OUTCOME_COLOURS.get(o, "#9e9e9e") for o in t["_outcome"]], s=22, zorder=3)
        ax.set_yticks([])
        ax.set_ylim(-1, 5)
        for side in ("left", "right", "top"):
            ax.spines[side].set_visible(False)
        span = when.max() - when.min()
        locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d" if span > pd.Timedelta(days=3) else "%m-%d %H:%M"))
        if span < pd.Timedelta(hours=1):
            ax.set_xlim(when.min() - pd.Timedelta(hours=12), when.max() + pd.Timedelta(hours=12))
        for tick in ax.get_xticklabels():
            tick.set_fontproperties(fp)
        handles = [
            Line2D(
                [],
                [],
                marker="o",
                ls="",
                color=OUTCOME_COLOURS[o],
                label=names.outcome_name(o) if o else _("not known yet"),
            )
            for o in ("good", "fraud", "default", "")
            if (t["_outcome"] == o).any()
        ]
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), prop=fp, frameon=False)
        fig.autofmt_xdate()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", bbox_inches="tight")
        return buf.getvalue()
    finally:
        plt.close(fig)
