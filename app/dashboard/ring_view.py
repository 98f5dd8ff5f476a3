"""A ring you can read: its subject as a node, a layout by kind, a legend, a timeline.

:func:`arrange` takes the explorer's :class:`~ringscope.app.dashboard.services.Subgraph`
of a finding and returns it with the finding's subject marked (and, for an
IP-range burst, the range itself added as a node linked to its addresses),
laid out by :mod:`~ringscope.app.dashboard.ring_layout` with a label size
per node. :func:`legend_items` says what each colour and mark means;
:func:`timeline_frame` and :func:`timeline_chart` draw the ring's
applications over time, coloured by outcome. No Streamlit here.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import numpy as np
import pandas as pd

from ringscope.app.dashboard import i18n, names
from ringscope.app.dashboard.graph_index import node_id, split_node_id
from ringscope.app.dashboard.i18n import N_, _
from ringscope.app.dashboard.ring_layout import (
    MAX_FONT,
    RingLayout,
    concentric_layout,
    directed_circle_layout,
    label_sizes,
    label_width,
    layout_kind,
    node_size,
    timeline_layout,
)
from ringscope.app.dashboard.services import Subgraph

__all__ = [
    "arrange",
    "subject_of",
    "finding_record",
    "legend_items",
    "view_marks",
    "legend_html",
    "timeline_frame",
    "timeline_chart",
    "OUTCOME_COLOURS",
    "SUBNET",
]

#: the label of the IP-range node the explorer adds (not a stored node)
SUBNET = "Subnet"
#: identifier kinds as the detectors' evidence names them → node label
_KIND_LABELS = {
    "device": "Device",
    "phone": "Phone",
    "contact_phone": "Phone",
    "account": "BankAccount",
    "ip": "IP",
    "ip_range": SUBNET,
    "subnet": SUBNET,
    "address": "Address",
    "email": "Email",
    "company": "Company",
    "employer": "Company",
    "agent": "Agent",
}
#: what a burst's kind is about (velocity findings name it first in their evidence)
_BURST_LABELS = {
    "device_farm": "Device",
    "device_burst": "Device",
    "ip_burst": "IP",
    "ip_range_burst": SUBNET,
    "subnet_burst": SUBNET,
}
#: outcome → colour of the timeline (its own chart: no clash with node types)
OUTCOME_COLOURS = {"fraud": "#a50f15", "default": "#f16913", "good": "#41ab5d", "unknown": "#9e9e9e"}
OUTCOME_WORDS = {"unknown": N_("no outcome yet")}


def finding_record(store: Any, finding: str) -> dict[str, Any]:
    """``kind`` and ``evidence`` (a list) of one finding, as stored."""
    found = store.node_properties("Finding", [finding], ["kind", "evidence"])
    out: dict[str, Any] = {"kind": None, "evidence": []}
    if len(found):
        out["kind"] = found["kind"].iloc[0]
        raw = found["evidence"].iloc[0]
        if isinstance(raw, str) and raw:
            try:
                out["evidence"] = json.loads(raw)
            except ValueError:  # one bad value never fails the page
                out["evidence"] = []
    return out


def _evidence_values(evidence: list[dict], feature: str) -> list[Any]:
    for item in evidence or []:
        if isinstance(item, dict) and item.get("feature") == feature:
            return list(item.get("values") or [])
    return []


def _identifier(value: Any) -> tuple[str, str] | None:
    """``device:d-1 (6 people)`` → ("Device", "d-1")."""
    text = str(value)
    kind, sep, rest = text.partition(":")
    if not sep or kind not in _KIND_LABELS:
        return None
    ident = rest.rsplit(" (", 1)[0] if rest.endswith(")") else rest
    return _KIND_LABELS[kind], ident


def subject_of(kind: Any, evidence: list[dict], view: Subgraph) -> tuple[list[str], str | None]:
    """The node id(s) the finding is about, and the IP range to add as a node
    (or ``None``).

    Bursts and farms: their device, IP or IP range (the first value of their
    ``distinct_identities`` evidence). Rings: the strongest shared identifier
    in view. Guarantee circles: none (the circle is the subject). Others: the
    shared identifiers, else the entity they are about.

    Example
    -------
    >>> v = Subgraph({"Device:d1": "shared", "Application:A": "member"}, pd.DataFrame())
    >>> subject_of("ring", [{"feature": "shared_identifiers", "values": ["device:d1 (3 people)"]}], v)
    (['Device:d1'], None)
    >>> subject_of("ip_range_burst", [{"feature": "distinct_identities", "values": ["10.0.0.0/24", "t0"]}], v)
    (['Subnet:10.0.0.0/24'], '10.0.0.0/24')
    """
    kind = str(kind)
    roles = view.nodes
    if layout_kind(kind) == "circle":
        return [], None
    if kind in _BURST_LABELS:
        values = _evidence_values(evidence, "distinct_identities")
        if values:
            label, key = _BURST_LABELS[kind], str(values[0])
            if label == SUBNET:
                return [node_id(SUBNET, key)], key
            if node_id(label, key) in roles:
                return [node_id(label, key)], None
    for value in _evidence_values(evidence, "shared_identifiers"):
        found = _identifier(value)
        if found and node_id(*found) in roles:
            return [node_id(*found)], None
    shared = [n for n, r in roles.items() if r == "shared"]
    if shared:
        return shared[:1], None
    entities = [n for n, r in roles.items() if r == "entity" and not n.startswith("Person:")]
    entities = entities or [n for n, r in roles.items() if r == "entity"]
    return (entities[:1] if len(entities) <= 3 else []), None


def _with_subnet(view: Subgraph, cidr: str) -> Subgraph:
    """``view`` plus the IP range as a node, linked to its addresses in view
    (to the member applications when none is)."""
    try:
        net = ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        net = None
    linked = []
    for nid in view.nodes:
        label, key = split_node_id(nid)
        if label == "IP" and net is not None:
            try:
                if ipaddress.ip_address(key) in net:
                    linked.append(nid)
            except ValueError:
                continue
    if not linked:
        linked = [n for n, r in view.nodes.items() if r == "member"]
    sub = node_id(SUBNET, cidr)
    rows = pd.DataFrame({"source": sub, "target": linked, "type": "IN_RANGE"})
    edges = pd.concat([view.edges, rows], ignore_index=True) if len(view.edges) else rows
    return Subgraph({sub: "shared", **view.nodes}, edges, view.truncated, list(view.notes))


def arrange(
    view: Subgraph,
    kind: Any,
    evidence: list[dict],
    props: dict[str, dict[str, Any]],
    captions: dict[str, str],
) -> tuple[Subgraph, RingLayout]:
    """The view with its subject (an IP range added as a node) and where to
    draw it: concentric around the subject, a directed circle for guarantee
    circles, time order for bursts; each node's label font.

    ``props`` are the view's properties (``applied_at`` of applications);
    ``captions`` node id → the text drawn under it.

    Example
    -------
    >>> v = Subgraph({"Device:d1": "shared", "Application:A": "member", "Application:B": "member"},
    ...              pd.DataFrame({"source": ["Application:A", "Application:B"], "target": ["Device:d1"] * 2,
    ...                            "type": ["HAS_DEVICE"] * 2}))
    >>> _, lay = arrange(v, "device_farm", [{"feature": "distinct_identities", "values": ["d1"]}], {}, {})
    >>> lay.name, lay.subject, lay.positions["Device:d1"]
    ('concentric', ['Device:d1'], (380.0, 300.0))
    """
    subject, cidr = subject_of(kind, evidence, view)
    if cidr is not None:
        view = _with_subnet(view, cidr)
    subject = [s for s in subject if s in view.nodes]
    captions = {**{n: split_node_id(n)[1] for n in view.nodes}, **captions}
    pairs = list(zip(view.edges["source"], view.edges["target"])) if len(view.edges) else []
    name = layout_kind(kind)
    # rings as far apart as most labels are wide (the fit scales it all to the canvas)
    widths = [label_width(str(c), MAX_FONT) for c in captions.values()] or [0.0]
    spacing = float(min(160.0, max(56.0, float(np.percentile(widths, 75)) + 16.0)))
    if name == "circle":
        g = view.edges[view.edges["type"] == "GUARANTEES"] if len(view.edges) else view.edges
        directed = list(zip(g["source"], g["target"])) if len(g) else []
        positions, order = directed_circle_layout(view.nodes, pairs, directed, spacing=spacing)
        if not order:
            name = "concentric"
    elif name == "timeline":
        times = {n: props.get(n, {}).get("applied_at") for n, r in view.nodes.items() if r == "member"}
        positions = timeline_layout(view.nodes, pairs, times, subject, captions)
    else:
        positions = concentric_layout(view.nodes, pairs, subject, spacing=spacing)
    sizes = {n: node_size("subject" if n in subject else view.nodes[n]) for n in view.nodes}
    # the subject's and the members' labels first; people and context make room
    order = {"member": 1, "shared": 1, "entity": 2}
    priority = {n: 0 if n in subject else order.get(r, 3) for n, r in view.nodes.items()}
    fonts = label_sizes(positions, captions, sizes, priority=priority)
    return view, RingLayout(name, positions, subject, fonts)


# -- legend -------------------------------------------------------------------------------------


def legend_items(
    labels: list[str], has_path: bool = False, has_guarantees: bool = False, marks: set[str] | None = None
) -> list[dict[str, str]]:
    """What the graph's colours and marks mean: one item per node type in
    view (``kind`` ``type``, with its colour), then the marks (``subject``,
    ``shared``, ``risk``, ``bad``, ``guarantee``, ``path``); ``marks`` keeps
    only those of the first four that the view shows (all when ``None``).

    Example
    -------
    >>> [i["kind"] for i in legend_items(["Application", "Device"])]
    ['type', 'type', 'subject', 'shared', 'risk', 'bad']
    >>> [i["kind"] for i in legend_items(["Company"], has_guarantees=True, marks={"bad"})]
    ['type', 'bad', 'guarantee']
    """
    from ringscope.app.dashboard.graphview import NODE_LOOK

    items = [
        {"kind": "type", "label": lab, "text": names.label_name(lab), "colour": NODE_LOOK[lab][0]}
        for lab in NODE_LOOK
        if lab in labels
    ]
    items += [
        {"kind": "subject", "text": _("large diamond: what the finding is about")},
        {"kind": "shared", "text": _("diamond: identifier shared by members")},
        {"kind": "risk", "text": _("thick dark ring: model risk score (thicker = higher)")},
        {"kind": "bad", "text": _("double ring: labelled fraud or default")},
    ]
    if marks is not None:
        items = [i for i in items if i["kind"] == "type" or i["kind"] in marks]
    if has_guarantees:
        items.append({"kind": "guarantee", "text": _("arrow: guarantor → borrower, with the amount")})
    if has_path:
        items.append({"kind": "path", "text": _("yellow: shortest path")})
    return items


def view_marks(elements: dict[str, list[dict[str, Any]]]) -> set[str]:
    """Which marks a graph payload's nodes show (for :func:`legend_items`).

    >>> sorted(view_marks({"nodes": [{"data": {"subject": True, "risk": 0.8}}, {"data": {"role": "shared"}}]}))
    ['risk', 'shared', 'subject']
    """
    found: set[str] = set()
    for node in elements.get("nodes", []):
        data = node.get("data", {})
        if data.get("subject"):
            found.add("subject")
        elif data.get("role") == "shared":
            found.add("shared")
        if (data.get("risk") or 0) >= 0.3:
            found.add("risk")
        if data.get("outcome") == "bad":
            found.add("bad")
    return found


_MARKS = {
    "subject": "width:14px;height:14px;transform:rotate(45deg);background:#555;",
    "shared": "width:10px;height:10px;transform:rotate(45deg);background:#999;",
    "risk": "width:10px;height:10px;border-radius:50%;border:4px solid #222;background:#fff;",
    "bad": "width:10px;height:10px;border-radius:50%;border:5px double #222;background:#fff;",
    "guarantee": "width:18px;height:0;border-top:3px solid #444;",
    "path": "width:12px;height:12px;border-radius:50%;background:#ffd60a;",
}


def legend_html(items: list[dict[str, str]]) -> str:
    """The legend as small inline HTML (every text escaped).

    >>> "&lt;b&gt;" in legend_html([{"kind": "type", "text": "<b>", "colour": "#123456"}])
    True
    """
    from html import escape

    parts = []
    for item in items:
        if item["kind"] == "type":
            mark = f"width:12px;height:12px;border-radius:50%;background:{escape(item['colour'])};"
        else:
            mark = _MARKS[item["kind"]]
        parts.append(
            '<span class="ring-legend-item" style="display:inline-flex;align-items:center;gap:5px;'
            'margin:0 12px 4px 0;font-size:0.85rem;">'
            f'<span style="display:inline-block;{mark}"></span>{escape(item["text"])}</span>'
        )
    return '<div class="ring-legend">' + "".join(parts) + "</div>"


# -- timeline ------------------------------------------------------------------------------------


def timeline_frame(store: Any, applications: list[str]) -> pd.DataFrame:
    """The ring's applications for the timeline: ``application``, ``applied``
    (Beijing time, naive), ``outcome`` (code), ``outcome_name`` (words),
    ``amount``, ``risk``; undated ones are left out."""
    cols = ["applied_at", "label", "amount", "risk_score"]
    frame = store.node_properties("Application", list(applications), cols)
    for c in cols:
        if c not in frame.columns:
            frame[c] = pd.Series([None] * len(frame), dtype=object)
    when = pd.to_datetime(frame["applied_at"], utc=True, errors="coerce")
    outcome = frame["label"].where(frame["label"].isin(list(OUTCOME_COLOURS)), "unknown").fillna("unknown")
    out = pd.DataFrame(
        {
            "application": frame["key"].astype(str),
            "applied": when.dt.tz_convert(i18n.TIMEZONE).dt.tz_localize(None),
            "outcome": outcome.astype(str),
            "amount": pd.to_numeric(frame["amount"], errors="coerce"),
            "risk": pd.to_numeric(frame["risk_score"], errors="coerce"),
        }
    )
    out["outcome_name"] = [_(OUTCOME_WORDS[o]) if o in OUTCOME_WORDS else names.outcome_name(o) for o in out["outcome"]]
    out["amount_text"] = [i18n.fmt_amount(a) for a in out["amount"]]
    out["time_text"] = [i18n.fmt_time(t) if pd.notna(t) else "—" for t in when]
    return out[out["applied"].notna()].sort_values("applied", kind="stable").reset_index(drop=True)


def timeline_chart(frame: pd.DataFrame, height: int = 200):
    """An Altair chart: applications over time (x), loan amount (y), colour
    by outcome (its own legend), a tooltip per application."""
    import altair as alt

    present = [o for o in OUTCOME_COLOURS if o in set(frame["outcome"])]
    words = dict(zip(frame["outcome"], frame["outcome_name"]))
    scale = alt.Scale(domain=[words[o] for o in present], range=[OUTCOME_COLOURS[o] for o in present])
    has_amount = frame["amount"].notna().any()
    y = (
        alt.Y("amount:Q", title=_("Amount (yuan)"), axis=alt.Axis(format=",.0f"))
        if has_amount
        else alt.Y("outcome_name:N", title=_("Outcome"))
    )
    return (
        alt.Chart(frame)
        .mark_circle(size=70, opacity=0.85)
        .encode(
            x=alt.X(
                "applied:T", title=_("Applied (Beijing time)"), axis=alt.Axis(format="%m-%d %H:%M", labelAngle=-30)
            ),
            y=y,
            color=alt.Color("outcome_name:N", title=_("Outcome"), scale=scale),
            tooltip=[
                alt.Tooltip("application:N", title=_("Application")),
                alt.Tooltip("time_text:N", title=_("Applied (Beijing time)")),
                alt.Tooltip("outcome_name:N", title=_("Outcome")),
                alt.Tooltip("amount_text:N", title=_("Amount (yuan)")),
            ],
        )
        .properties(height=height)
    )
