"""Issue 14, "Broken" 1-6 and search (item 10), each replayed in real headless Chromium.

One dashboard server (started as users start it, on loopback) serves the
module; each test has its own browser context, and every context records
and aborts any request that leaves 127.0.0.1 (a test fails if there was
one). Tests that change cases work on different targets, so their order
does not matter. The lock-out test restarts its own server: the point is
that a restart does not reset the count.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from ringscope.app.dashboard import auth, cases
from ringscope.app.dashboard.launch import free_port, launch, stop
from ringscope.graph.embedded import EmbeddedStore
from tests.app.browser.common import ARGS, CHROMIUM, PASSWORD, READY, loopback_guard, settle
from tests.app.browser.store_fixture import build_dashboard_store

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TRACKER = "![x](http://203.0.113.7/track.png)"

#: every node's rendered position and the panel's text, from the component's own cytoscape
_GRAPH_STATE_JS = """() => {
    const cy = document.getElementById('cy')._cyreg.cy;
    return {n: cy.nodes().length, zoom: cy.zoom(),
            pos: cy.nodes().map(n => [Math.round(n.renderedPosition().x), Math.round(n.renderedPosition().y)]),
            labels: cy.nodes().map(n => n.data('label')),
            panel: (document.getElementById('infopanelProps') || {}).innerText || ''};
}"""
_NODE_POSITION_JS = """(label) => {
    const container = document.getElementById('cy');
    const node = container._cyreg.cy.nodes().filter(n => n.data('label') === label)[0];
    const p = node.renderedPosition();
    const r = container.getBoundingClientRect();
    return {x: r.left + p.x, y: r.top + p.y};
}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make browser` (apt-get install chromium) installs it")
    root = tmp_path_factory.mktemp("dash")
    store = EmbeddedStore(root / "store")
    build_dashboard_store(store, root / "export")
    users = root / "store" / "users.json"
    for name in ("ivy", "ian", "ida", "iris"):
        auth.add_user(users, name, PASSWORD, "investigator")
    port = free_port()
    process = launch(str(root / "store"), None, port=port, open_browser=False, wait=False, quiet=True)
    try:
        yield store, f"http://127.0.0.1:{port}"
    finally:
        stop(process, timeout=15)


@pytest.fixture(scope="module")
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


class Guarded:
    """A browser context whose requests off loopback are recorded and aborted."""

    def __init__(self, browser):
        self.off_loopback: list[str] = []
        self.context = browser.new_context(viewport={"width": 1600, "height": 1000})
        self.context.route("**/*", loopback_guard(self.off_loopback))
        self.page = self.context.new_page()
        self.page.set_default_timeout(30_000)


@pytest.fixture
def tab(chromium):
    guarded = Guarded(chromium)
    try:
        yield guarded
    finally:
        guarded.context.close()
    assert guarded.off_loopback == [], f"requests left the machine: {guarded.off_loopback}"


def english(url: str) -> str:
    """The dashboard in English (Chinese is the default; these tests read English labels)."""
    return f"{url.rstrip('/')}/?lang=en"


def log_in(page, url: str, name: str, password: str = PASSWORD) -> None:
    page.goto(english(url))
    page.get_by_role("textbox", name="User").fill(name)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_selector(READY)


def choose(page, combobox: str, option: str) -> None:
    page.get_by_role("combobox", name=combobox).click()
    page.get_by_role("option", name=option).click()
    settle(page)


def graph_frame(page, showing: str | None = None):
    """The graph component's frame once it has drawn nodes (and a node labelled ``showing``)."""
    test = "() => document.getElementById('cy')?._cyreg?.cy?.nodes().length > 0"
    if showing:
        test = (
            "() => (document.getElementById('cy')?._cyreg?.cy?.nodes() || [])"
            f".some(n => n.data('label') === '{showing}')"
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for frame in page.frames:
            if "st_link_analysis" in frame.url and not frame.is_detached():
                try:
                    if frame.evaluate(test):
                        return frame
                except Exception:  # noqa: BLE001 - the frame went away meanwhile
                    pass
        page.wait_for_timeout(200)
    raise AssertionError(f"no graph drawn (showing {showing})")


# -- 1. the queue opens the finding whose row was ticked ---------------------------------------


def test_ticked_row_opens_that_finding_and_the_verdict_goes_on_it(server, tab):
    from playwright.sync_api import expect

    store, url = server
    page = tab.page
    log_in(page, url, "ivy")
    expect(page.get_by_role("heading", name="Alert queue")).to_be_visible()
    choice = page.get_by_role("combobox", name="Open a finding")
    grid = page.locator("[data-testid='stDataFrame']").first
    box = grid.bounding_box()

    def tick(row: int) -> None:  # the row's selection box: the grid is a canvas, rows 35 px under a 35 px header
        page.mouse.click(box["x"] + 18, box["y"] + 35 * row + 17)
        settle(page)

    tick(2)
    expect(choice).to_have_value("rings-bbbb")
    tick(1)
    expect(choice).to_have_value("rings-aaaa")
    tick(2)
    expect(choice).to_have_value("rings-bbbb")
    assert choice.is_visible()
    page.get_by_role("button", name="Open in cluster explorer").click()
    expect(page.get_by_role("heading", name="Cluster explorer")).to_be_visible()
    settle(page)
    expect(page.get_by_role("combobox", name="Finding")).to_have_value(re.compile("^rings-bbbb "))
    graph = graph_frame(page)
    drawn = set(graph.evaluate(_GRAPH_STATE_JS)["labels"])
    assert "BankAccount" in drawn and "Device" not in drawn  # ring B (an account), not ring A (a device)

    page.get_by_role("tab", name="Case").click()
    choose(page, "New status", "In progress")
    page.get_by_role("textbox", name="Note").fill("ticked row 2")
    page.get_by_role("button", name="Save case").click()
    expect(page.get_by_text("Case saved: In progress")).to_be_visible()
    assert cases.get_case(store, "Finding", "rings-bbbb").status == "In progress"
    assert cases.get_case(store, "Finding", "rings-bbbb").comment == "ticked row 2"
    assert cases.audit_log(store, target="case:Finding:rings-aaaa").empty  # nothing went onto row 1


# -- 2. another finding in the explorer is laid out anew ---------------------------------------


def test_switching_finding_lays_the_new_ring_out_with_a_fresh_panel(server, tab):
    from playwright.sync_api import expect

    store, url = server
    page = tab.page
    log_in(page, url, "ian")
    page.get_by_role("link", name="Cluster explorer").click()
    expect(page.get_by_role("heading", name="Cluster explorer")).to_be_visible()
    settle(page)
    first = graph_frame(page)
    before = first.evaluate(_GRAPH_STATE_JS)
    # click a person: the component's side panel shows it
    iframe = page.locator("iframe[title*='st_link_analysis']").bounding_box()
    node = first.evaluate(_NODE_POSITION_JS, "Person")
    page.mouse.click(iframe["x"] + node["x"], iframe["y"] + node["y"])
    expect(page.get_by_text("Person · ")).to_be_visible()
    settle(page)
    assert first.evaluate(_GRAPH_STATE_JS)["panel"].strip()

    choose(page, "Finding", "rings-bbbb — 0.55 · ring of 4 sharing an account")
    second = graph_frame(page, showing="BankAccount")  # ring B
    page.wait_for_timeout(500)
    after = second.evaluate(_GRAPH_STATE_JS)
    assert after["n"] != before["n"] and "BankAccount" in after["labels"]
    # laid out: every node at its own place, spread over the canvas, not all at one point
    assert len(set(map(tuple, after["pos"]))) == after["n"], after["pos"]
    xs, ys = [p[0] for p in after["pos"]], [p[1] for p in after["pos"]]
    assert max(xs) - min(xs) > 100 and max(ys) - min(ys) > 100, after["pos"]
    assert after["panel"].strip() == ""  # no side panel of the last ring
    page.get_by_role("tab", name="Selected node").click()
    expect(page.get_by_text("Click a node in the graph to see its details.")).to_be_visible()


# -- 3. a note never changes a case's status ------------------------------------------------------


def test_a_note_on_a_confirmed_case_keeps_it_confirmed(server, tab):
    from playwright.sync_api import expect

    store, url = server
    page = tab.page
    log_in(page, url, "ida")
    page.get_by_role("link", name="Application").click()
    page.get_by_role("textbox", name="Application id").fill("RA03")
    page.get_by_role("textbox", name="Application id").press("Enter")
    settle(page)

    def save(status: str | None, text: str, expected: str) -> None:
        if status:
            choose(page, "New status", status)
        page.get_by_role("textbox", name="Note").fill(text)
        page.get_by_role("button", name="Save case").click()
        expect(page.get_by_text(expected)).to_be_visible()
        settle(page)

    save("In progress", "", "Case saved: In progress")
    save("Confirmed fraud", "same device as RA01, two defaults", "Case saved: Confirmed fraud")
    save(None, "called the branch, no answer", "Case saved: Confirmed fraud (note added)")
    save(None, "second note", "Case saved: Confirmed fraud (note added)")
    case = cases.get_case(store, "Application", "RA03")
    assert case.status == "Confirmed fraud"
    assert case.comment == "same device as RA01, two defaults"  # the reason is kept
    assert cases.case_notes(store, "Application", "RA03")["note"].tolist() == [
        "called the branch, no answer",
        "second note",
    ]
    actions = cases.audit_log(store, target="case:Application:RA03")["action"].tolist()
    assert actions == ["case.note", "case.note", "case.status", "case.status"]
    assert "RA03" in set(cases.case_labels(store)["application_id"])  # still a training label
    # the panel's status line (the audit lines below it now say "Status: …" in words too)
    expect(page.get_by_text(re.compile(r"^Status: Confirmed fraud"))).to_be_visible()


# -- 4. markup typed in is shown as text -------------------------------------------------------------


def test_markdown_in_an_id_is_shown_as_text_and_fetches_nothing(server, tab):
    from playwright.sync_api import expect

    store, url = server
    page = tab.page
    log_in(page, url, "iris")
    page.get_by_role("link", name="Application").click()
    box = page.get_by_role("textbox", name="Application id")
    box.fill(TRACKER)
    box.press("Enter")
    error = page.locator("[data-testid='stAlertContentError']")
    expect(error).to_contain_text(TRACKER)  # as typed, not an image
    page.wait_for_timeout(1000)  # time for an image request, had one been made
    assert page.locator("img[src*='203.0.113.7']").count() == 0
    assert not [u for u in tab.off_loopback if "203.0.113.7" in u], tab.off_loopback

    long_id = "A" * 10_000
    box.fill(long_id)
    box.press("Enter")
    expect(error).to_contain_text("(10,000 characters)")
    assert "A" * 200 not in error.inner_text()


# -- 10. search: one hanzi, score and decision in the results, the query never markdown ----------


def test_search_one_hanzi_shows_score_and_decision(server, tab):
    from playwright.sync_api import expect

    store, url = server
    page = tab.page
    log_in(page, url, "ian")
    page.get_by_role("link", name="Search").click()
    page.wait_for_selector(READY)
    box = page.get_by_role("textbox", name="Search applications")
    box.fill("李")  # one hanzi of 李娜 (RA01, scored 0.83, declined)
    box.press("Enter")
    settle(page)
    expect(page.locator("[data-testid='stCaptionContainer']").first).to_contain_text("matching application")
    grid = page.locator("[data-testid='stDataFrame'] [role='gridcell']")
    expect(grid.filter(has_text="RA01")).to_have_count(1)  # the grid draws after the script ends
    cells = grid.all_inner_texts()
    row = cells[cells.index("RA01") :]
    assert row[1] == "李娜" and "0.83" in row and "decline" in row
    assert "13800138000" not in cells and "138****8000" in row  # still masked

    box.fill(TRACKER)
    box.press("Enter")
    settle(page)
    expect(page.locator("[data-testid='stAlertContentInfo']")).to_contain_text(TRACKER)
    page.wait_for_timeout(1000)  # time for an image request, had one been made
    assert page.locator("img[src*='203.0.113.7']").count() == 0


# -- 5. nothing beside a masked ID gives its digits back; addresses masked -----------------------------


def test_person_details_and_addresses_are_masked_in_the_browser(server, tab):
    from playwright.sync_api import expect

    store, url = server
    page = tab.page
    log_in(page, url, "ivy")
    page.get_by_role("link", name="Cluster explorer").click()
    settle(page)
    persons = store.read_nodes("Person", ["birth_date"])
    births = {str(b)[:10] for b in persons["birth_date"].dropna()}
    births |= {b.replace("-", "") for b in births}
    assert births  # the fixture's people have birth dates
    graph = graph_frame(page)
    iframe = page.locator("iframe[title*='st_link_analysis']").bounding_box()
    node = graph.evaluate(_NODE_POSITION_JS, "Person")
    page.mouse.click(iframe["x"] + node["x"], iframe["y"] + node["y"])
    expect(page.get_by_text("Person · ")).to_be_visible()
    settle(page)
    panel = graph.evaluate(_GRAPH_STATE_JS)["panel"]
    assert "Birth date" in panel  # the field is there (by its human name), masked
    dom = page.content() + graph.content()
    assert not [b for b in births if b in dom], "a birth date (the masked ID digits) reached the browser"

    # the ring sharing an address: the address shows province and city only
    choose(page, "Finding", "rings-bbbb — 0.55 · ring of 4 sharing an account")
    graph = graph_frame(page, showing="BankAccount")
    page.wait_for_timeout(300)
    state = graph.evaluate(_GRAPH_STATE_JS)
    assert "Address" in state["labels"]
    captions = graph.evaluate(
        "() => document.getElementById('cy')._cyreg.cy.nodes()"
        ".filter(n => n.data('label') === 'Address').map(n => n.data('caption'))"
    )
    assert captions == ["广东省深圳市****"], captions
    dom = page.content() + graph.content()
    assert "科技园" not in dom and "南山区" not in dom


# -- 6. log-in: F5 keeps it, log-out ends it, lock-out survives a restart, idle timeout -----------------


def test_reload_keeps_the_log_in_and_log_out_ends_the_token(server, tab, chromium):
    from playwright.sync_api import expect

    store, url = server
    page = tab.page
    log_in(page, url, "iris")
    expect(page.get_by_role("heading", name="Alert queue")).to_be_visible()
    page.get_by_role("link", name="Cases").click()
    expect(page.get_by_role("heading", name="Cases")).to_be_visible()
    settle(page)
    page.reload()  # F5
    page.wait_for_selector(READY)
    expect(page.get_by_role("heading", name="Cases")).to_be_visible()
    assert page.get_by_role("textbox", name="Password").count() == 0
    assert "session=" in page.url
    token_url = page.url
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("textbox", name="Password")).to_be_visible()
    assert "session=" not in page.url
    # the old URL (say, from the history) no longer logs anyone in
    other = Guarded(chromium)
    try:
        other.page.goto(token_url)
        other.page.wait_for_selector(READY)
        expect(other.page.get_by_role("textbox", name="Password")).to_be_visible()
        expect(other.page.get_by_text("Your session ended")).to_be_visible()
    finally:
        other.context.close()
    log = cases.audit_log(store, user="iris")
    assert {"login.success", "logout"} <= set(log["action"])


def test_lock_out_survives_a_restart_and_idle_sessions_end(tmp_path, chromium):
    from playwright.sync_api import expect

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing")
    store = EmbeddedStore(tmp_path / "store")
    build_dashboard_store(store, tmp_path / "export")
    auth.add_user(tmp_path / "store" / "users.json", "lou", PASSWORD, "investigator")
    auth.add_user(tmp_path / "store" / "users.json", "ned", PASSWORD, "investigator")

    def start():
        port = free_port()
        return launch(
            str(tmp_path / "store"), None, port=port, open_browser=False, wait=False, quiet=True, idle_minutes=0.1
        ), f"http://127.0.0.1:{port}"

    process, url = start()
    tab = Guarded(chromium)
    page = tab.page
    try:
        page.goto(english(url))
        for attempt in range(auth.LOCK_AFTER):
            page.get_by_role("textbox", name="User").fill("lou")
            page.get_by_role("textbox", name="Password").fill(f"guess {attempt}")
            page.get_by_role("button", name="Log in").click()
            settle(page)
        expect(page.get_by_text("Too many failed log-ins")).to_be_visible()
        page.get_by_role("textbox", name="User").fill("lou")
        page.get_by_role("textbox", name="Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        settle(page)
        expect(page.get_by_text("Too many failed log-ins")).to_be_visible()
        assert page.get_by_role("heading", name="Alert queue").count() == 0

        stop(process, timeout=15)  # a restart does not reset the count
        process, url = start()
        log_in(page, url, "lou")
        expect(page.get_by_text("Too many failed log-ins")).to_be_visible()
        assert page.get_by_role("heading", name="Alert queue").count() == 0
        actions = cases.audit_log(store, user="lou")["action"].tolist()[::-1]
        assert actions == ["login.failure"] * (auth.LOCK_AFTER - 1) + ["login.locked"] * 3, actions

        # another user is not locked; left idle past the timeout (6 s here), the next click logs out
        log_in(page, url, "ned")
        expect(page.get_by_role("heading", name="Alert queue")).to_be_visible()
        page.wait_for_timeout(7_000)
        page.get_by_role("link", name="Search").click()
        expect(page.get_by_role("textbox", name="Password")).to_be_visible()
        expect(page.get_by_text("without activity")).to_be_visible()
        assert "logout.idle" in set(cases.audit_log(store, user="ned")["action"])
    finally:
        tab.context.close()
        stop(process, timeout=15)
    assert tab.off_loopback == []


# -- Chinese by default, English as a switch -------------------------------------------------------


def test_chinese_by_default_english_by_the_switch_and_a_reload_keeps_it(server, tab):
    from playwright.sync_api import expect

    store, url = server
    page = tab.page
    page.goto(url)
    page.get_by_role("textbox", name="用户").fill("ida")
    page.get_by_role("textbox", name="密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_selector(READY)
    expect(page.get_by_role("heading", name="告警队列")).to_be_visible()
    expect(page.get_by_role("link", name="团伙浏览")).to_be_visible()
    assert page.get_by_role("heading", name="Alert queue").count() == 0
    settle(page)
    assert page.get_by_role("radio", name="English").count() == 1  # one switch, drawn once
    page.get_by_role("radio", name="English").click()
    expect(page.get_by_role("heading", name="Alert queue")).to_be_visible()
    expect(page.get_by_role("link", name="Cluster explorer")).to_be_visible()
    settle(page)
    assert "lang=en" in page.url
    page.reload()  # F5: still logged in, still English
    page.wait_for_selector(READY)
    expect(page.get_by_role("heading", name="Alert queue")).to_be_visible()
    page.get_by_role("radio", name="中文").click()
    expect(page.get_by_role("heading", name="告警队列")).to_be_visible()
