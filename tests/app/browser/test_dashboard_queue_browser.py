"""Issue 14, the triage queue, in real headless Chromium (Debian's package,
never `playwright install`): a pasted deep link opens its finding after the
log-in, a reload (F5) lands on the same finding, the link to paste carries
no session; the queue (nested rows, exposure, why) is photographed.

The screenshot goes to the pytest tmp dir and, when ``RINGSCOPE_SCREENSHOT_DIR``
is set, to ``$RINGSCOPE_SCREENSHOT_DIR/dashboard-queue.png`` (the docs use
``RINGSCOPE_SCREENSHOT_DIR=docs/img``). Every request off 127.0.0.1 is
recorded and aborted; the test fails if there was one.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from ringscope.app.dashboard import auth
from ringscope.app.dashboard.launch import free_port, launch, stop
from ringscope.graph.embedded import EmbeddedStore
from tests.app.browser.common import ARGS, CHROMIUM, PASSWORD, READY, loopback_guard, settle
from tests.app.browser.queue_fixture import add_triage_findings
from tests.app.browser.store_fixture import build_dashboard_store

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def server(tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make browser` (apt-get install chromium) installs it")
    store = EmbeddedStore(tmp_path / "store")
    build_dashboard_store(store, tmp_path / "export")
    add_triage_findings(store)
    auth.add_user(tmp_path / "store" / "users.json", "ivy", PASSWORD, "investigator")
    auth.add_user(tmp_path / "store" / "users.json", "ian", PASSWORD, "investigator")
    port = free_port()
    process = launch(str(tmp_path / "store"), None, port=port, open_browser=False, wait=False, quiet=True)
    try:
        yield store, f"http://127.0.0.1:{port}"
    finally:
        stop(process, timeout=15)


def test_a_finding_link_survives_the_log_in_and_a_reload_and_the_queue_is_photographed(server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    store, url = server
    off_loopback: list[str] = []

    guard = loopback_guard(off_loopback)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = browser.new_context(viewport={"width": 1600, "height": 1000})
            context.route("**/*", guard)
            page = context.new_page()
            page.set_default_timeout(30_000)

            # a link pasted from a ticket, before logging in: a finding nested in ring A
            page.goto(f"{url}/cluster?finding=burst-cccc&lang=en")
            page.get_by_role("textbox", name="User").fill("ivy")
            page.get_by_role("textbox", name="Password").fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()
            settle(page)
            finding = page.get_by_role("combobox", name="Finding")
            expect(page.get_by_role("heading", name="Cluster explorer")).to_be_visible()
            expect(finding).to_have_value(re.compile("^burst-cccc "))
            assert parse_qs(urlparse(page.url).query)["finding"] == ["burst-cccc"]

            # F5: still logged in, the same finding
            page.reload()
            page.wait_for_selector(READY)
            settle(page)
            expect(page.get_by_role("heading", name="Cluster explorer")).to_be_visible()
            expect(finding).to_have_value(re.compile("^burst-cccc "))
            assert page.get_by_role("textbox", name="Password").count() == 0

            # the link to paste: the finding's page and id, no session token
            shown = page.locator("[data-testid='stSidebar'] [data-testid='stCode']").first.inner_text().strip()
            assert shown == f"{url}/cluster?finding=burst-cccc", shown
            assert "session" not in shown

            # the queue: C under A, D under B; exposure in yuan; in Chinese for the docs
            page.get_by_role("link", name="Alert queue").click()
            expect(page.get_by_role("heading", name="Alert queue")).to_be_visible()
            settle(page)
            page.get_by_role("radio", name="中文").click()
            settle(page)
            expect(page.get_by_role("heading", name="告警队列")).to_be_visible()
            expect(page.get_by_text("我的队列")).to_be_visible()
            page.wait_for_timeout(500)  # the grid draws on a canvas after the run
            screenshot = tmp_path / "dashboard-queue.png"
            page.screenshot(path=str(screenshot), full_page=True)
            if os.environ.get("RINGSCOPE_SCREENSHOT_DIR"):
                target = Path(os.environ["RINGSCOPE_SCREENSHOT_DIR"])
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy(screenshot, target / "dashboard-queue.png")
        finally:
            browser.close()
    assert screenshot.stat().st_size > 10_000
    assert off_loopback == [], f"requests left the machine: {off_loopback}"
