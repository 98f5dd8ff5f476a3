"""Issue 14 "Rings you can read", in real headless Chromium.

A shared-identifier ring opens with a legend, every member labelled (no two
labels overlapping), the device it shares in the centre, the evidence table
beside the graph without a tab click, and a timeline of its applications; a
guarantee circle is drawn as a circle, clockwise along its guarantees. Both
are photographed (to the test's temp dir; also to ``$RINGSCOPE_SCREENSHOT_DIR``
as ``dashboard-ring.png`` and ``dashboard-guarantee-circle.png`` when that is
set: ``RINGSCOPE_SCREENSHOT_DIR=docs/img`` refreshes the docs' pictures).
Nothing may be fetched off loopback.
"""

from __future__ import annotations

import math
import os
import re
import shutil
from pathlib import Path

import pytest

from ringscope.app.dashboard import auth
from ringscope.app.dashboard.launch import free_port, launch, stop
from ringscope.graph.embedded import EmbeddedStore
from tests.app.browser.common import ARGS, CHROMIUM, PASSWORD, settle
from tests.app.browser.ring_fixture import CIRCLE, DEVICE, RING, build_ring_store
from tests.app.browser.test_dashboard_regressions import Guarded, graph_frame, log_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: every node's label as drawn: text, on-screen font size, label box; the zoom
_LABELS_JS = """() => {
    const cy = document.getElementById('cy')._cyreg.cy;
    return {zoom: cy.zoom(), nodes: cy.nodes().map(n => {
        const b = n.boundingBox({includeNodes: false, includeEdges: false, includeLabels: true});
        const p = n.renderedPosition();
        return {type: n.data('label'), caption: n.data('caption'), subject: !!n.data('subject'),
                text: n.style('label'), px: parseFloat(n.style('font-size')) * cy.zoom(),
                box: [b.x1, b.y1, b.x2, b.y2], x: p.x, y: p.y,
                visible: n.visible()};
    }), edges: cy.edges().map(e => ({type: e.data('label'), source: e.source().data('caption'),
                                      target: e.target().data('caption'),
                                      arrow: e.style('target-arrow-shape')}))};
}"""
#: cytoscape hides labels smaller than this on screen (the explorer's style)
MIN_SHOWN_PX = 9


@pytest.fixture(scope="module")
def ring_server(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make browser` (apt-get install chromium) installs it")
    root = tmp_path_factory.mktemp("rings")
    store = EmbeddedStore(root / "store")
    build_ring_store(store, root / "export")
    auth.add_user(root / "store" / "users.json", "ivy", PASSWORD, "investigator")
    port = free_port()
    process = launch(str(root / "store"), None, port=port, open_browser=False, wait=False, quiet=True)
    try:
        yield store, f"http://127.0.0.1:{port}"
    finally:
        stop(process, timeout=15)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _overlaps(boxes: list[list[float]]) -> list[tuple[int, int]]:
    """Pairs of label boxes that overlap by more than a pixel."""
    out = []
    for i, a in enumerate(boxes):
        for j in range(i + 1, len(boxes)):
            b = boxes[j]
            if min(a[2], b[2]) - max(a[0], b[0]) > 1 and min(a[3], b[3]) - max(a[1], b[1]) > 1:
                out.append((i, j))
    return out


def _shoot(page, tmp_path: Path, name: str) -> Path:
    page.set_viewport_size({"width": 1600, "height": 1500})  # the whole page: graph, timeline, evidence
    page.wait_for_timeout(800)  # the chart and the graph finish drawing
    shot = tmp_path / name
    page.screenshot(path=str(shot))
    page.set_viewport_size({"width": 1600, "height": 1000})
    assert shot.stat().st_size > 20_000, "an empty picture"
    target = os.environ.get("RINGSCOPE_SCREENSHOT_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, Path(target) / name)
    return shot


def test_a_ring_reads_legend_labels_subject_evidence_and_timeline(ring_server, browser, tmp_path):
    from playwright.sync_api import expect

    store, url = ring_server
    tab = Guarded(browser)
    try:
        page = tab.page
        log_in(page, url, "ivy")
        page.get_by_role("link", name="Cluster explorer").click()
        expect(page.get_by_role("heading", name="Cluster explorer")).to_be_visible()
        settle(page)
        graph = graph_frame(page, showing="Device")
        page.wait_for_timeout(500)

        # the legend: the node types in view by colour, and the marks
        legend = page.locator(".st-key-ring_legend")
        expect(legend).to_be_visible()
        for words in ("Application", "Device", "Phone", "Person", "large diamond", "double ring", "thick dark ring"):
            expect(legend).to_contain_text(words)

        # the evidence beside the graph, without clicking a tab
        evidence = page.locator(".st-key-ring_evidence")
        expect(evidence.get_by_role("heading", name="Evidence")).to_be_visible()
        cells = evidence.locator("[data-testid='stDataFrame'] [role='gridcell']")
        expect(cells.filter(has_text="Shared identifiers")).to_have_count(1)
        assert (
            evidence.bounding_box()["y"] < page.locator("iframe[title*='st_link_analysis']").bounding_box()["y"] + 400
        )

        # every member and the device labelled, readable, no two labels on each other
        state = graph.evaluate(_LABELS_JS)
        nodes = state["nodes"]
        apps = [n for n in nodes if n["type"] == "Application"]
        assert sorted(n["text"] for n in apps) == RING
        shown = [n for n in nodes if n["text"] and n["px"] >= MIN_SHOWN_PX]
        assert {n["caption"] for n in apps} <= {n["caption"] for n in shown}, [(n["caption"], n["px"]) for n in apps]
        assert not _overlaps([n["box"] for n in shown]), "labels drawn over each other"
        # the shared device is the subject, in the centre: every member at one distance from it
        (device,) = [n for n in nodes if n["type"] == "Device"]
        assert device["subject"] and device["caption"].startswith(DEVICE[:8]), device
        dist = [math.dist((n["x"], n["y"]), (device["x"], device["y"])) for n in apps]
        assert max(dist) - min(dist) < 2 and min(dist) > 50, dist

        # the timeline of the ring's applications, coloured by outcome
        timeline = page.locator(".st-key-ring_timeline")
        expect(timeline.locator("[data-testid='stVegaLiteChart']")).to_be_visible()
        expect(timeline).to_contain_text("over time")
        _shoot(page, tmp_path, "dashboard-ring.png")

        # a guarantee circle: the four companies on a circle, each guarantee one step clockwise
        page.get_by_role("combobox", name="Finding").click()
        page.get_by_role("option", name=re.compile(r"^circle-4")).click()
        settle(page)
        graph = graph_frame(page, showing="Company")
        page.wait_for_timeout(500)
        state = graph.evaluate(_LABELS_JS)
        companies = {n["caption"]: n for n in state["nodes"] if n["type"] == "Company"}
        assert len(companies) == len(CIRCLE)
        cx = sum(n["x"] for n in companies.values()) / 4
        cy = sum(n["y"] for n in companies.values()) / 4
        angle = {c: math.atan2(n["y"] - cy, n["x"] - cx) for c, n in companies.items()}
        guarantees = [e for e in state["edges"] if e["type"] == "GUARANTEES"]
        assert len(guarantees) == 4 and {e["arrow"] for e in guarantees} == {"triangle"}
        for e in guarantees:  # screen y points down: clockwise is a growing angle
            step = (angle[e["target"]] - angle[e["source"]]) % (2 * math.pi)
            assert abs(step - math.pi / 2) < 0.05, (e, step)
        radius = [math.dist((n["x"], n["y"]), (cx, cy)) for n in companies.values()]
        assert max(radius) - min(radius) < 2
        shown = [n for n in state["nodes"] if n["text"] and n["px"] >= MIN_SHOWN_PX]
        assert set(companies) <= {n["caption"] for n in shown}
        expect(page.locator(".st-key-ring_legend")).to_contain_text("guarantor → borrower")
        _shoot(page, tmp_path, "dashboard-guarantee-circle.png")
    finally:
        tab.context.close()
    assert tab.off_loopback == [], f"requests left the machine: {tab.off_loopback}"
