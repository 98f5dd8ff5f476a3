"""A case worked in real headless Chromium, in Chinese (the investigators' default).

A link ``/cases?case=case:Finding:rings-aaaa`` opens the case; the
investigator answers a colleague's note (the reply is threaded under it),
makes the evidence pack and downloads it (a PDF whose text reads back in
Chinese, masked), and a reload (F5) keeps the case open. The page is
screenshot to the pytest tmp dir, and to ``RINGSCOPE_SCREENSHOT_DIR`` when
set (``docs/img/dashboard-case.png`` comes from there). Every request off
127.0.0.1 is aborted and fails the test.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from ringscope.app.dashboard import auth, cases, i18n
from ringscope.app.dashboard.launch import free_port, launch, stop
from ringscope.graph.embedded import EmbeddedStore
from tests.app.browser.common import ARGS, CHROMIUM, PASSWORD, loopback_guard, settle
from tests.app.browser.store_fixture import build_dashboard_store

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CASE = "case:Finding:rings-aaaa"


def zh(message: str) -> str:
    """What the Chinese page shows for ``message`` (the catalogue's translation)."""
    with i18n.use_language("zh_CN"):
        return i18n._(message)


@pytest.fixture
def served(tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make browser` (apt-get install chromium) installs it")
    store = EmbeddedStore(tmp_path / "store")
    build_dashboard_store(store, tmp_path / "export")
    auth.add_user(tmp_path / "store" / "users.json", "ivy", PASSWORD, "investigator")
    # a colleague has worked the case already
    cases.update_case(store, "ana", "Finding", "rings-aaaa", status="In progress", assignee="ivy")
    cases.add_note(store, "ana", "Finding", "rings-aaaa", "六份申请同一台设备，手机号 13800138000 出现三次")
    port = free_port()
    process = launch(str(tmp_path / "store"), None, port=port, open_browser=False, wait=False, quiet=True)
    try:
        yield store, f"http://127.0.0.1:{port}"
    finally:
        stop(process, timeout=15)


def test_a_case_link_reply_evidence_pack_and_reload_in_chinese(served, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    store, url = served
    off_loopback: list[str] = []

    guard = loopback_guard(off_loopback)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = browser.new_context(viewport={"width": 1600, "height": 1250}, accept_downloads=True)
            context.route("**/*", guard)
            page = context.new_page()
            page.set_default_timeout(30_000)
            page.goto(url)
            page.get_by_role("textbox", name=zh("User")).fill("ivy")
            page.get_by_role("textbox", name=zh("Password")).fill(PASSWORD)
            page.get_by_role("button", name=zh("Log in")).click()
            settle(page)
            session = parse_qs(urlparse(page.url).query)["session"][0]

            # the link a colleague pasted into the ticket
            page.goto(f"{url}/cases?session={session}&case={CASE}")
            settle(page)
            title = zh("Case: {what}").format(what=f"{zh('Finding')} rings-aaaa · {zh('In progress')}")
            expect(page.get_by_role("heading", name=title)).to_be_visible()

            # answer the colleague's note
            page.get_by_role("textbox", name=zh("Note")).fill("已核实：同一设备农场，建议确认欺诈")
            page.get_by_role("combobox", name=zh("Reply to")).click()
            page.get_by_role("option", name=re.compile("ana: 六份申请")).click()
            page.get_by_role("button", name=zh("Save case")).click()
            saved = zh("Case saved: {status} (note added).").format(status=zh("In progress"))
            expect(page.get_by_text(saved)).to_be_visible()
            settle(page)
            notes = cases.case_notes(store, "Finding", "rings-aaaa")
            assert notes["user"].tolist() == ["ana", "ivy"] and notes["depth"].tolist() == [0, 1]
            assert cases.get_case(store, "Finding", "rings-aaaa").status == "In progress"
            expect(page.get_by_text("↳").first).to_be_visible()  # the reply is drawn under the note
            assert "13800138000" not in page.content()  # the note's phone is masked on the page

            # the evidence pack: made (audited), then downloaded
            page.get_by_role("button", name=zh("Make evidence pack (PDF)")).click()
            download_button = page.get_by_role("button", name=zh("Download evidence pack"))
            expect(download_button).to_be_visible(timeout=60_000)
            with page.expect_download() as caught:
                download_button.click()
            pdf = tmp_path / caught.value.suggested_filename
            caught.value.save_as(pdf)
            assert pdf.name == "evidence-Finding-rings-aaaa.pdf" and pdf.read_bytes()[:5] == b"%PDF-"
            if shutil.which("pdftotext"):
                text = re.sub(
                    r"\s+",
                    "",
                    subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout,
                )
                assert "证据包" in text and "已核实：同一设备农场" in text and "138****8000" in text
                assert "13800138000" not in text
            assert cases.audit_log(store, target=CASE)["action"].iloc[0] == "case.pack"
            settle(page)
            page.get_by_role("heading", name=title).evaluate("e => e.scrollIntoView({block: 'start'})")
            page.wait_for_timeout(300)
            shot = tmp_path / "dashboard-case.png"
            page.screenshot(path=str(shot))
            wanted = os.environ.get("RINGSCOPE_SCREENSHOT_DIR")
            if wanted:
                Path(wanted).mkdir(parents=True, exist_ok=True)
                shutil.copy(shot, Path(wanted) / "dashboard-case.png")

            # F5: still logged in, still on this case
            page.reload()
            settle(page)
            expect(page.get_by_role("heading", name=title)).to_be_visible()
            assert f"case={CASE}".replace(":", "%3A") in page.url or f"case={CASE}" in page.url
        finally:
            browser.close()
    assert shot.stat().st_size > 20_000
    assert off_loopback == [], f"requests left the machine: {off_loopback}"
