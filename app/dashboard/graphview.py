"""The payload of the graph component (st-link-analysis 0.4, cytoscape.js).

Node ids sent to the browser are opaque tokens (an HMAC of ``Label:key``
with a per-process secret), never ID numbers or phones; the page keeps the
token → id map. Every string in a node or edge is masked where it is
personal data and HTML-escaped: the component renders properties as raw
HTML in its info panel.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from dataclasses import dataclass, field
from typing import Any

from st_link_analysis import EdgeStyle, NodeStyle

from ringscope.app.dashboard import i18n, names
from ringscope.app.dashboard.masking import PII_LABELS, escape, mask_record, mask_value
from ringscope.app.dashboard.ring_layout import READABLE_FONT, RingLayout, node_size
from ringscope.app.dashboard.services import Subgraph, split_node_id
from ringscope.graph.model import KNOWN_BAD_LABELS

__all__ = [
    "GraphPayload",
    "build_payload",
    "node_styles",
    "edge_styles",
    "token",
    "LAYOUT",
    "layout_options",
    "NODE_LOOK",
]

_SECRET = secrets.token_bytes(16)

#: label → (colour, icon bundled with the component): colour means node type
#: and nothing else (risk is the border, known-bad a double border)
NODE_LOOK = {
    "Application": ("#1f77b4", "description"),
    "Person": ("#2ca02c", "person"),
    "Company": ("#9467bd", "business"),
    "Agent": ("#8c564b", "badge"),
    "Phone": ("#ff7f0e", "smartphone"),
    "Device": ("#7f7f7f", "laptop"),
    "IP": ("#17becf", "router"),
    "BankAccount": ("#bcbd22", "account_balance"),
    "Address": ("#e377c2", "home"),
    "Email": ("#393b79", "email"),
    "Subnet": ("#0b7285", "language"),
}

#: no animation: the layout settles at once (and browser tests are stable);
#: used only when a view has no positions of its own (see layout_options)
LAYOUT = {
    "name": "cose",
    "animate": False,
    "fit": True,
    "padding": 20,
    "nodeRepulsion": 4000,
    "nodeDimensionsIncludeLabels": True,
    "randomize": False,
    "numIter": 600,
}


class _RawStyle(NodeStyle):
    """A style with its own cytoscape selector (risk, path highlight)."""

    def __init__(self, selector: str, style: dict[str, Any]) -> None:
        super().__init__(label=selector)
        self._selector, self._style = selector, style

    def dump(self) -> dict[str, Any]:
        return {"selector": self._selector, "style": self._style}


class _RawEdgeStyle(EdgeStyle):
    """An edge style with its own cytoscape selector."""

    def __init__(self, selector: str, style: dict[str, Any]) -> None:
        super().__init__(label=selector, labeled=None)
        self._selector, self._style = selector, style

    def dump(self) -> dict[str, Any]:
        return {"selector": self._selector, "style": self._style}


def node_styles() -> list[NodeStyle]:
    """Colour and icon by type only; model risk as the border's width (dark,
    never a colour), known fraud/default as a double border; shared
    identifiers are diamonds, the subject a large one; path highlight.
    Node size and label font come with each node (``size``, ``fs``), from
    the layout, so labels are drawn wherever they fit."""
    styles: list[NodeStyle] = [NodeStyle(label, colour, "caption", icon) for label, (colour, icon) in NODE_LOOK.items()]
    styles += [
        _RawStyle(
            "node",
            {
                "font-size": 12,
                "text-valign": "bottom",
                "text-margin-y": 2,
                "min-zoomed-font-size": 9,
                "text-background-color": "#ffffff",
                "text-background-opacity": 0.75,
                "text-background-padding": 1,
            },
        ),
        _RawStyle("node[fs]", {"font-size": "data(fs)"}),
        _RawStyle("node[size]", {"width": "data(size)", "height": "data(size)"}),
        _RawStyle("node[risk >= 0.3]", {"border-width": 3, "border-color": "#222222"}),
        _RawStyle("node[risk >= 0.7]", {"border-width": 6, "border-color": "#222222"}),
        _RawStyle("node[outcome = 'bad']", {"border-style": "double", "border-width": 7, "border-color": "#222222"}),
        _RawStyle("node[role = 'shared']", {"shape": "diamond"}),
        _RawStyle("node[?subject]", {"shape": "diamond", "font-weight": "bold", "z-index": 10}),
        _RawStyle("node[?on_path]", {"outline-width": 6, "outline-color": "#ffd60a"}),
        _RawStyle("edge[?on_path]", {"width": 5, "line-color": "#ffd60a"}),
    ]
    return styles


def edge_styles() -> list[EdgeStyle]:
    return [
        EdgeStyle("GUARANTEES", color="#444444", caption="caption", directed=True, labeled=None),
        EdgeStyle("SIMILAR_TO", color="#9467bd", caption=None, labeled=None),
        EdgeStyle("IN_RANGE", color="#0b7285", caption=None, directed=False, labeled=None),
        *[
            EdgeStyle(t, caption=None, directed=False, labeled=None)
            for t in (
                "APPLIED",
                "FOR_COMPANY",
                "HAS_PHONE",
                "HAS_DEVICE",
                "HAS_IP",
                "HAS_ACCOUNT",
                "HAS_ADDRESS",
                "HAS_EMAIL",
                "EMERGENCY_CONTACT",
                "SUBMITTED_BY",
                "DECLARES_EMPLOYER",
            )
        ],
        # after the type styles: a guarantee's amount readable on white, the line heavier
        _RawEdgeStyle(
            "edge[caption]",
            {
                "font-size": 11,
                "min-zoomed-font-size": 8,
                "color": "#222222",
                "text-rotation": "none",
                "text-background-color": "#ffffff",
                "text-background-opacity": 0.9,
            },
        ),
        _RawEdgeStyle("edge[label = 'GUARANTEES']", {"width": 3, "arrow-scale": 1.3}),
    ]


def token(nid: str) -> str:
    """Opaque id of a node in the browser.

    Example
    -------
    >>> token("Person:110101199003071234") == token("Person:110101199003071234")
    True
    >>> "1101" in token("Person:110101199003071234")
    False
    """
    return "n" + hmac.new(_SECRET, nid.encode("utf-8"), hashlib.sha256).hexdigest()[:16]


def caption(label: str, key: str, props: dict[str, Any], reveal: bool = False) -> str:
    """What a node is called on the graph (masked unless revealed)."""
    if label == "Application":
        return key
    if label in ("Person", "Company") and props.get("name"):
        return str(props["name"])
    if label in PII_LABELS and not reveal:
        return str(mask_value(PII_LABELS[label], key))
    if label == "Address":
        return key[:14] + ("…" if len(key) > 14 else "")
    if label == "Device":
        return key[:10]
    if label == "Company" and key.startswith("name:"):
        return key[5:]
    return key


@dataclass
class GraphPayload:
    """What goes to ``st_link_analysis``: ``elements`` plus the token map."""

    elements: dict[str, list[dict[str, Any]]]
    tokens: dict[str, str]  # token → Label:key
    positions: dict[str, dict[str, float]] = field(default_factory=dict)  # token → {x, y}
    layout: str = ""  # the layout's name (concentric, circle, timeline), "" without positions
    labelled: int = 0  # labels readable with the whole view on screen

    def id_of(self, tok: str) -> str | None:
        return self.tokens.get(tok)


def _fmt(value: Any) -> Any:
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return round(value, 4)
    if hasattr(value, "isoformat"):
        return value.isoformat()[:19]
    return value


def build_payload(
    view: Subgraph,
    props: dict[str, dict[str, Any]],
    revealed: set[str] | frozenset = frozenset(),
    path: list[str] | None = None,
    layout: RingLayout | None = None,
) -> GraphPayload:
    """Elements for ``view``; ``props`` from :func:`services.view_properties`;
    ``revealed`` ids show personal data unmasked; ``path`` is highlighted;
    ``layout`` (from :func:`ring_view.arrange`) gives each node its position,
    size and label font, and marks the subject."""
    on_path = set(path or ())
    path_edges = {frozenset(pair) for pair in zip(path or [], (path or [])[1:])}
    tokens: dict[str, str] = {}
    positions: dict[str, dict[str, float]] = {}
    nodes = []
    for nid, role in view.nodes.items():
        label, key = split_node_id(nid)
        p = props.get(nid, {})
        tok = token(nid)
        tokens[tok] = nid
        data: dict[str, Any] = {
            "id": tok,
            "label": label,
            "role": role,
            "caption": escape(caption(label, key, p, nid in revealed)),
        }
        # one masking rule: fields computed from a masked ID number are masked too
        # properties for the component's info panel: human names, values as read (yuan, Beijing minutes)
        for k, v in mask_record(label, {k: _fmt(v) for k, v in p.items()}, nid in revealed).items():
            if v is None or k == "name":
                continue
            if k == "risk_score":
                data["risk"] = float(v)
                data[escape(names.field_name(k))] = i18n.fmt_score(v)
                continue
            if k == "label":
                data["outcome"] = "bad" if str(v) in KNOWN_BAD_LABELS else escape(v)
                data[escape(names.field_name(k))] = escape(names.outcome_name(v))
                continue
            data[escape(names.field_name(k))] = escape(names.fmt_field(k, v))
        if label == "Application":
            data["application"] = escape(key)
        if nid in on_path:
            data["on_path"] = True
        element: dict[str, Any] = {"data": data}
        if layout is not None and nid in layout.positions:
            x, y = layout.positions[nid]
            element["position"] = positions[tok] = {"x": x, "y": y}
            subject = nid in layout.subject
            data["size"] = node_size("subject" if subject else role)
            data["fs"] = layout.fonts.get(nid, 12.0)
            if subject:
                data["subject"] = True
        nodes.append(element)
    edges = []
    for i, e in enumerate(view.edges.itertuples(index=False)):
        data = {"id": f"e{i}", "source": token(e.source), "target": token(e.target), "label": escape(e.type)}
        for prop in ("amount", "share_pct", "score"):
            v = _fmt(getattr(e, prop, None))
            if v is not None:
                data[prop] = v
        if e.type == "GUARANTEES" and data.get("amount") is not None:
            data["caption"] = escape(i18n.fmt_amount(data["amount"]))
        if frozenset((e.source, e.target)) in path_edges:
            data["on_path"] = True
        edges.append({"data": data})
    return GraphPayload(
        {"nodes": nodes, "edges": edges},
        tokens,
        positions,
        layout.name if layout is not None and positions else "",
        sum(1 for n in nodes if n["data"].get("fs", 0) >= READABLE_FONT),
    )


def layout_options(payload: GraphPayload) -> dict[str, Any]:
    """The component's layout: ``preset`` at the payload's own positions
    (the component's refresh button lays the ring out the same way again),
    fitted to the canvas; the force layout when there are none.

    Example
    -------
    >>> layout_options(GraphPayload({"nodes": [], "edges": []}, {}))["name"]
    'cose'
    >>> layout_options(GraphPayload({"nodes": [], "edges": []}, {}, {"n1": {"x": 1.0, "y": 2.0}}))["name"]
    'preset'
    """
    if not payload.positions:
        return LAYOUT
    return {"name": "preset", "positions": payload.positions, "fit": True, "padding": 24, "animate": False}
