"""Rings you can read (issue 14): layouts by kind, label sizes, the subject as a
node, the legend, colour for type only; the explorer page under AppTest."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pandas as pd
import pytest

from ringscope.app.dashboard import graphview, ring_view
from ringscope.app.dashboard.ring_layout import (
    READABLE_FONT,
    concentric_layout,
    cycle_order,
    directed_circle_layout,
    label_sizes,
    label_width,
    layout_kind,
    timeline_layout,
)
from ringscope.app.dashboard.services import Subgraph

APP = Path(__file__).resolve().parents[2] / "app" / "dashboard"
MAIN = str(APP / "main.py")


def _angle(p, c) -> float:
    return math.atan2(p[1] - c[1], p[0] - c[0])


# -- pure layouts ------------------------------------------------------------------------------


def test_concentric_members_around_the_subject_people_beside_their_application():
    roles = {"Device:d": "shared", "Phone:p": "shared"}
    edges = []
    for i in range(10):
        roles[f"Application:A{i}"] = "member"
        roles[f"Person:P{i}"] = "entity"
        edges += [(f"Application:A{i}", "Device:d"), (f"Person:P{i}", f"Application:A{i}")]
        if i < 3:
            edges.append((f"Application:A{i}", "Phone:p"))
    pos = concentric_layout(roles, edges, subject=["Device:d"])
    centre = pos["Device:d"]
    r_app = [math.dist(pos[f"Application:A{i}"], centre) for i in range(10)]
    r_person = [math.dist(pos[f"Person:P{i}"], centre) for i in range(10)]
    r_phone = math.dist(pos["Phone:p"], centre)
    assert max(r_app) - min(r_app) < 0.2  # one ring (positions are rounded to 0.1 px)
    assert 0 < r_phone < min(r_app) < min(r_person)  # shared identifiers inside, people outside
    for i in range(10):  # each person on the ray of their application
        d = abs(_angle(pos[f"Person:P{i}"], centre) - _angle(pos[f"Application:A{i}"], centre)) % (2 * math.pi)
        assert min(d, 2 * math.pi - d) < 0.05
    # the three applications on the phone sit together, nearest the phone
    near = sorted(range(10), key=lambda i: math.dist(pos[f"Application:A{i}"], pos["Phone:p"]))[:3]
    assert sorted(near) == [0, 1, 2]


def test_concentric_many_members_use_several_rings_inside_the_canvas():
    roles = {"Device:d": "shared", **{f"Application:A{i:03d}": "member" for i in range(300)}}
    pos = concentric_layout(roles, [(a, "Device:d") for a in roles if a != "Device:d"], subject=["Device:d"])
    radii = {round(math.dist(pos[a], pos["Device:d"])) for a in roles if a != "Device:d"}
    assert len(radii) > 1
    assert all(0 <= x <= 760 and 0 <= y <= 600 for x, y in pos.values())
    assert len(set(pos.values())) == len(pos)  # no two nodes on one spot


def test_cycle_order_follows_the_guarantees_and_the_circle_runs_clockwise():
    g = [("C3", "C1"), ("C1", "C4"), ("C4", "C2"), ("C2", "C3"), ("C1", "C2")]  # a 4-cycle and a chord
    order = cycle_order(g)
    assert sorted(order) == ["C1", "C2", "C3", "C4"]
    assert order == ["C1", "C4", "C2", "C3"]
    edges = set(g)
    assert all((order[i], order[(i + 1) % 4]) in edges for i in range(4))
    roles = {c: "entity" for c in order} | {"A1": "member", "A2": "member"}
    pos, drawn = directed_circle_layout(roles, g + [("A1", "C1"), ("A2", "C2")], g)
    assert drawn == order
    centre = (sum(pos[c][0] for c in order) / 4, sum(pos[c][1] for c in order) / 4)
    for a, b in zip(order, order[1:] + order[:1]):  # screen y points down: clockwise = growing angle
        step = (_angle(pos[b], centre) - _angle(pos[a], centre)) % (2 * math.pi)
        assert step == pytest.approx(math.pi / 2, abs=1e-6)
    assert math.dist(pos["A1"], centre) > math.dist(pos["C1"], centre)
    # no cycle: concentric instead, nothing lost
    pos, drawn = directed_circle_layout(roles, [("A1", "C1")], [("C1", "C2")])
    assert drawn == [] and set(pos) == set(roles)


def test_timeline_orders_a_burst_by_time_and_keeps_labels_apart():
    t0 = pd.Timestamp("2025-05-02 01:00", tz="UTC")
    roles = {"Subnet:41.118.150.0/24": "shared"}
    times = {}
    for i in range(40):
        a = f"Application:B{39 - i:02d}"  # ids in reverse time order
        roles[a] = "member"
        times[a] = t0 + pd.Timedelta(minutes=7 * i + (i % 3))
    edges = [(a, "Subnet:41.118.150.0/24") for a in times]
    captions = {a: a.split(":")[1] for a in roles}
    pos = timeline_layout(roles, edges, times, subject=["Subnet:41.118.150.0/24"], captions=captions)
    by_time = sorted(times, key=times.get)
    xs = [pos[a][0] for a in by_time]
    assert xs == sorted(xs) and len(set(xs)) == len(xs)
    assert pos["Subnet:41.118.150.0/24"][1] < min(pos[a][1] for a in times)  # the subject above
    fonts = label_sizes(pos, captions)
    assert sum(f >= READABLE_FONT for a, f in fonts.items() if a in times) == 40  # lanes leave room for all


def _boxes(pos, captions, fonts):
    out = []
    for n, (x, y) in pos.items():
        f = fonts[n]
        if f < READABLE_FONT:
            continue
        w = label_width(captions[n], f)
        out.append((x - w / 2, y + 8, x + w / 2, y + 8 + 1.2 * f))  # under a node of 16 px
    return out


def test_label_sizes_readable_labels_never_overlap_on_a_500_node_ring():
    roles = {"Device:d": "shared"}
    edges = []
    for i in range(250):
        roles[f"Application:A{i:05d}"] = "member"
        roles[f"Person:P{i}"] = "entity"
        edges += [(f"Application:A{i:05d}", "Device:d"), (f"Person:P{i}", f"Application:A{i:05d}")]
    pos = concentric_layout(roles, edges, subject=["Device:d"])
    captions = {n: ("王伟芳" if n.startswith("Person") else n.split(":")[1]) for n in roles}
    priority = {n: 1 if n.startswith("Application") else 2 for n in roles}  # as arrange() ranks them
    fonts = label_sizes(pos, captions, priority=priority)
    # 500 labels cannot all be read in one 760 x 600 view: each is sized so that, once zoomed
    # in far enough to read it (cytoscape hides it before), it clears its neighbours
    zoom = 4.0
    assert all(fonts[n] * zoom >= READABLE_FONT for n in roles if n.startswith("Application"))
    boxes = _boxes(
        {n: (x * zoom, y * zoom) for n, (x, y) in pos.items()}, captions, {n: f * zoom for n, f in fonts.items()}
    )
    assert len(boxes) >= 250
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not (min(a[2], b[2]) - max(a[0], b[0]) > 0.5 and min(a[3], b[3]) - max(a[1], b[1]) > 0.5)
    # far apart: the biggest font; on top of each other: too small to show
    f = label_sizes({"a": (0.0, 0.0), "b": (300.0, 0.0), "c": (2.0, 1.0)}, {"a": "RA01", "b": "RA02", "c": "RA03"})
    assert f["b"] > READABLE_FONT > f["a"]


def test_layout_by_finding_kind():
    assert layout_kind("shared_identifier_ring") == "concentric"
    assert layout_kind("device_farm") == "concentric"
    assert layout_kind("mutual_guarantee") == layout_kind("guarantee_circle") == "circle"
    assert layout_kind("ip_range_burst") == layout_kind("device_burst") == "timeline"


# -- subject, legend, colours -----------------------------------------------------------------------


def test_an_ip_range_burst_gets_its_range_as_the_subject_node_linked_to_its_addresses():
    nodes = {"IP:41.118.150.10": "shared", "IP:41.118.150.11": "shared", "IP:10.0.0.1": "context"}
    nodes |= {"Application:B1": "member", "Application:B2": "member"}
    edges = pd.DataFrame(
        {
            "source": ["Application:B1", "Application:B2", "Application:B2"],
            "target": ["IP:41.118.150.10", "IP:41.118.150.11", "IP:10.0.0.1"],
            "type": ["HAS_IP"] * 3,
        }
    )
    view = Subgraph(nodes, edges)
    evidence = [{"feature": "distinct_identities", "values": ["41.118.150.0/24", "t0", "t1", 2, 2]}]
    props = {
        "Application:B1": {"applied_at": "2025-05-02T02:00:00Z"},
        "Application:B2": {"applied_at": "2025-05-02T01:00:00Z"},
    }
    out, layout = ring_view.arrange(view, "ip_range_burst", evidence, props, {})
    assert layout.name == "timeline" and layout.subject == ["Subnet:41.118.150.0/24"]
    linked = out.edges[out.edges["type"] == "IN_RANGE"]
    assert sorted(linked["target"]) == ["IP:41.118.150.10", "IP:41.118.150.11"]  # not 10.0.0.1
    assert layout.positions["Application:B2"][0] < layout.positions["Application:B1"][0]
    # a ring: its strongest shared identifier in view; a circle: none
    ring = Subgraph({"Phone:p": "shared", "Device:d": "shared", "Application:A": "member"}, pd.DataFrame())
    evidence = [{"feature": "shared_identifiers", "values": ["device:d (6 people)", "phone:p (3 people)"]}]
    assert ring_view.subject_of("shared_identifier_ring", evidence, ring) == (["Device:d"], None)
    assert ring_view.subject_of("guarantee_circle", [], ring) == ([], None)


def test_colour_means_node_type_only_and_the_legend_names_what_is_in_view():
    colours = [c for c, _icon in graphview.NODE_LOOK.values()]
    assert len(set(colours)) == len(colours)  # one colour, one type
    styles = [s.dump() for s in graphview.node_styles()] + [e.dump() for e in graphview.edge_styles()]
    by_selector = {s["selector"]: s["style"] for s in styles}
    # risk and known-bad are the border's width and style, in one neutral dark, never a type's colour
    for sel in ("node[risk >= 0.3]", "node[risk >= 0.7]", "node[outcome = 'bad']"):
        assert by_selector[sel]["border-color"] not in colours and "background-color" not in by_selector[sel]
    assert by_selector["node[risk >= 0.7]"]["border-width"] > by_selector["node[risk >= 0.3]"]["border-width"]
    # the guarantee edge is not a type's colour either (it was Email's red)
    assert by_selector["edge[label='GUARANTEES']"]["line-color"] not in colours
    items = ring_view.legend_items(["Application", "Device"], has_guarantees=True)
    assert [i["label"] for i in items if i["kind"] == "type"] == ["Application", "Device"]
    assert {i["kind"] for i in items} >= {"subject", "shared", "risk", "bad", "guarantee"}
    html = ring_view.legend_html(items)
    assert graphview.NODE_LOOK["Device"][0] in html and "Email" not in html


# -- the explorer page (AppTest) --------------------------------------------------------------------


@pytest.fixture(scope="module")
def ring_store(tmp_path_factory):
    from ringscope.graph.embedded import EmbeddedStore
    from tests.app.browser.ring_fixture import build_ring_store

    root = tmp_path_factory.mktemp("ringstore")
    store = EmbeddedStore(root / "store")
    build_ring_store(store, root / "export")
    saved = {k: os.environ.get(k) for k in ("RINGSCOPE_STORE", "RINGSCOPE_NEO4J_URI", "RINGSCOPE_USERS")}
    os.environ["RINGSCOPE_STORE"] = str(root / "store")
    os.environ.pop("RINGSCOPE_NEO4J_URI", None)
    os.environ.pop("RINGSCOPE_USERS", None)
    try:
        yield store
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _explorer(finding: str):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(MAIN, default_timeout=60)
    at.session_state["lang"] = "en"
    at.session_state["user"] = {"name": "ivy", "role": "investigator"}
    at.session_state["finding"] = finding
    at.run()
    at.switch_page("pages/cluster.py")
    at.run()
    assert not at.exception, at.exception
    (graph,) = at.get("component_instance")
    return at, json.loads(graph.proto.json_args)


def test_explorer_draws_the_ring_around_its_device_with_legend_evidence_and_timeline(ring_store):
    at, args = _explorer("ring-device")
    layout = args["layout"]
    assert layout["name"] == "preset" and layout["animate"] is False
    nodes = [n for n in args["elements"]["nodes"]]
    assert {n["data"]["id"] for n in nodes} == set(layout["positions"])  # every node placed
    (device,) = [n for n in nodes if n["data"]["label"] == "Device"]
    assert device["data"]["subject"] is True
    centre = (device["position"]["x"], device["position"]["y"])
    apps = [n for n in nodes if n["data"]["label"] == "Application"]
    r = [math.dist((n["position"]["x"], n["position"]["y"]), centre) for n in apps]
    assert len(apps) == 12 and max(r) - min(r) < 1
    assert all(n["data"]["fs"] >= READABLE_FONT for n in apps)  # every member labelled
    # the legend, the evidence without a tab, the timeline
    legend = "".join(m.value for m in at.markdown if "ring-legend" in m.value)
    assert "Device" in legend and "double ring" in legend
    assert [t.label for t in at.tabs] == ["Selected node", "Case"]
    assert "Evidence" in [h.value for h in at.subheader]
    assert any("feature" in f.value.columns for f in at.dataframe)
    charts = at.get("vega_lite_chart")
    assert len(charts) == 1
    spec = json.loads(charts[0].proto.spec)
    assert spec["encoding"]["x"]["field"] == "applied" and spec["encoding"]["color"]["field"] == "outcome_name"


def test_explorer_draws_a_guarantee_circle_with_amounts_and_a_burst_in_time_order(ring_store):
    at, args = _explorer("circle-4")
    assert any("clockwise" in c.value for c in at.caption)
    edges = [e["data"] for e in args["elements"]["edges"] if e["data"]["label"] == "GUARANTEES"]
    assert sorted(e["caption"] for e in edges) == ["¥200,000", "¥300,000", "¥400,000", "¥500,000"]
    at, args = _explorer("burst-range")
    nodes = {n["data"]["id"]: n for n in args["elements"]["nodes"]}
    (subnet,) = [n for n in nodes.values() if n["data"]["label"] == "Subnet"]
    assert subnet["data"]["subject"] and subnet["data"]["caption"] == "41.118.150.0/24"
    in_range = [e["data"] for e in args["elements"]["edges"] if e["data"]["label"] == "IN_RANGE"]
    assert len(in_range) == 8 and {nodes[e["target"]]["data"]["label"] for e in in_range} == {"IP"}
    apps = sorted((n for n in nodes.values() if n["data"]["label"] == "Application"), key=lambda n: n["position"]["x"])
    assert [n["data"]["caption"] for n in apps] == [f"IB{i:02d}" for i in range(8)]  # applied in this order
