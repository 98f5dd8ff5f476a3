"""End to end in real headless Chromium (Debian's package, never `playwright install`).

The dashboard is started the way users start it (``launch``) on a free
loopback port against a small store. A route guard on the browser context
records and aborts every request whose host is not 127.0.0.1 / localhost;
the test fails if there was any. The investigator logs in, opens the queue,
opens a ring, clicks a node on the graph canvas, sees its details, moves the
case to In progress and finds the audit row; a screenshot of the cluster view
is saved under the pytest tmp dir and to ``tests/app/browser/artifacts/``.
"""

from __future__ import annotations

import html
import shutil
from pathlib import Path

import pytest

from ringscope.app.dashboard import auth, cases
from ringscope.app.dashboard.launch import free_port, launch
from ringscope.graph.embedded import EmbeddedStore
from tests.app.browser.common import ARGS, CHROMIUM, READY, loopback_guard
from tests.app.browser.store_fixture import build_dashboard_store

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ARTIFACTS = Path(__file__).parent / "artifacts"

#: where a node is drawn on the cytoscape canvas, in the component iframe's coordinates
_NODE_POSITION_JS = """(label) => {
    const container = document.getElementById('cy');
    const cy = container._cyreg.cy;
    const node = cy.nodes().filter(n => n.data('label') === label)[0];
    const p = node.renderedPosition();
    const r = container.getBoundingClientRect();
    return {x: r.left + p.x, y: r.top + p.y, id: node.id(), caption: node.data('caption')};
}"""


@pytest.fixture
def dashboard(tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make browser` (apt-get install chromium) installs it")
    store = EmbeddedStore(tmp_path / "store")
    build_dashboard_store(store, tmp_path / "export")
    auth.add_user(tmp_path / "store" / "users.json", "ivy", "correct horse", "investigator")
    port = free_port()
    process = launch(str(tmp_path / "store"), None, port=port, open_browser=False, wait=False, quiet=True)
    try:
        yield store, f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except Exception:  # noqa: BLE001
            process.kill()


def test_investigator_works_a_ring_offline(dashboard, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    store, url = dashboard
    off_loopback: list[str] = []

    guard = loopback_guard(off_loopback)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = browser.new_context(viewport={"width": 1500, "height": 1100})
            context.route("**/*", guard)
            page = context.new_page()
            page.set_default_timeout(30_000)
            page.goto(f"{url.rstrip('/')}/?lang=en")  # English: Chinese is the default (see the regressions)

            # log in
            page.get_by_role("textbox", name="User").fill("ivy")
            page.get_by_role("textbox", name="Password").fill("correct horse")
            page.get_by_role("button", name="Log in").click()

            # the queue, then the top ring
            expect(page.get_by_role("heading", name="Alert queue")).to_be_visible()
            page.get_by_role("button", name="Open in cluster explorer").click()
            expect(page.get_by_role("heading", name="Cluster explorer")).to_be_visible()
            iframe = page.locator("iframe[title*='st_link_analysis']")
            graph = page.frame_locator("iframe[title*='st_link_analysis']")
            expect(graph.locator("#cy canvas").first).to_be_attached()
            page.wait_for_selector(READY)
            frame = next(f for f in page.frames if "st_link_analysis" in f.url)
            frame.wait_for_function("() => document.getElementById('cy')?._cyreg?.cy?.nodes().length > 0")

            # click a person on the canvas: cytoscape draws nodes on a canvas, so
            # the click goes to the node's rendered position (read from the
            # component's own cytoscape instance) in page coordinates
            box = iframe.bounding_box()
            node = frame.evaluate(_NODE_POSITION_JS, "Person")
            page.mouse.click(box["x"] + node["x"], box["y"] + node["y"])

            # its details: in the component's info panel and on the page, masked
            expect(graph.locator("#infopanelProps")).to_contain_text(html.unescape(node["caption"]))
            # the first applicant's name is an HTML payload: shown as text, never an element
            expect(graph.locator("#infopanelProps img")).to_have_count(0)
            details = page.get_by_text("Person · ")
            expect(details).to_be_visible()
            person_keys = set(store.read_nodes("Person")["key"])
            shown = details.inner_text()
            assert "*" in shown and not any(k in shown for k in person_keys), shown
            page.wait_for_selector(READY)
            # no ID number or full phone anywhere in what the browser holds
            dom = page.content() + frame.content()
            leaked = [k for k in person_keys | {"13800138000", "+8613800138000"} if k in dom]
            assert not leaked, f"personal data reached the browser unmasked: {leaked}"
            screenshot = tmp_path / "cluster.png"
            page.screenshot(path=str(screenshot), full_page=True)
            ARTIFACTS.mkdir(exist_ok=True)
            shutil.copy(screenshot, ARTIFACTS / "cluster.png")

            # change the case status
            page.get_by_role("tab", name="Case").click()
            page.get_by_text("Status: Open").wait_for()
            status = page.get_by_role("combobox", name="New status")
            status.click()
            page.get_by_role("option", name="In progress").click()
            page.get_by_role("textbox", name="Note").fill("checking the device farm")
            page.get_by_role("button", name="Save case").click()
            expect(page.get_by_text("Case saved: In progress")).to_be_visible()

            # the audit row, on the page and in the store
            page.get_by_role("tab", name="Case").click()
            expect(page.get_by_text("case status changed").first).to_be_visible()
            log = cases.audit_log(store, target="case:Finding:rings-aaaa")
            assert log["action"].tolist() == ["case.status"] and log["user"].tolist() == ["ivy"]
            assert cases.get_case(store, "Finding", "rings-aaaa").status == "In progress"
        finally:
            browser.close()
    assert screenshot.stat().st_size > 10_000
    assert off_loopback == [], f"requests left the machine: {off_loopback}"
