"""The triage queue (issue 14): exposure and known-bad sums, containment
nesting, the three sorts, paging; under AppTest the bulk dismiss and assign
(audited, one comment on each case), "my queue" and the deep links."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from ringscope.app.dashboard import auth, cases, i18n, links, queue_view
from ringscope.app.dashboard.queue_data import containment, findings_table, top_evidence
from ringscope.graph.embedded import EmbeddedStore
from tests.app.browser.queue_fixture import add_triage_findings
from tests.app.browser.store_fixture import build_dashboard_store

MAIN = str(Path(__file__).resolve().parents[2] / "app" / "dashboard" / "main.py")


@pytest.fixture
def queue_store(tmp_path, monkeypatch):
    """Rings A (score 0.91, 6 × ¥50,000) and B (0.55, 4 × ¥50,000) and the
    findings C–F of :mod:`tests.app.browser.queue_fixture`; two users."""
    store = EmbeddedStore(tmp_path / "store")
    build_dashboard_store(store, tmp_path / "export")
    add_triage_findings(store)
    monkeypatch.setenv("RINGSCOPE_STORE", str(tmp_path / "store"))
    monkeypatch.delenv("RINGSCOPE_NEO4J_URI", raising=False)
    monkeypatch.delenv("RINGSCOPE_USERS", raising=False)
    for name in ("ivy", "ian"):
        auth.add_user(tmp_path / "store" / "users.json", name, "correct horse", "investigator")
    return store


# -- the table ------------------------------------------------------------------------------


def test_findings_table_sums_exposure_and_known_bad_and_nests_contained_findings(queue_store):
    t = findings_table(queue_store).set_index("finding")
    assert t.index.tolist() == ["rings-aaaa", "rings-bbbb", "burst-cccc", "burst-dddd", "burst-eeee", "burst-ffff"]
    assert t.loc["rings-aaaa", "exposure"] == 6 * 50_000
    assert t.loc["burst-ffff", "exposure"] == 8 * 80_000
    assert t.loc["burst-eeee", "exposure"] == 50_000 + 3 * 80_000
    assert t["members"].to_dict() == {
        "rings-aaaa": 6,
        "rings-bbbb": 4,
        "burst-cccc": 4,
        "burst-dddd": 4,
        "burst-eeee": 4,
        "burst-ffff": 8,
    }
    assert t.loc["rings-aaaa", "known_bad"] == 2 and t.loc["rings-bbbb", "known_bad"] == 1
    assert t.loc["burst-cccc", "known_bad"] == 2 and t.loc["burst-ffff", "known_bad"] == 0
    # C: 4 of 4 in A; D: 2 of 4 in B (exactly half); E: 1 of 4 in A (a quarter) and
    # 3 of 4 in F, which is weaker: E stays a top row
    assert t["parent"].to_dict() == {
        "rings-aaaa": None,
        "rings-bbbb": None,
        "burst-cccc": "rings-aaaa",
        "burst-dddd": "rings-bbbb",
        "burst-eeee": None,
        "burst-ffff": None,
    }
    assert t.loc["burst-cccc", "contained"] == 1.0 and t.loc["burst-dddd", "contained"] == 0.5
    # the top evidence is the largest contribution, not the first item
    top = top_evidence(t["evidence"])
    assert top.loc["burst-cccc", "feature"] == "time_compactness"
    assert top.loc["burst-cccc", "values"] == (0.5,)


@pytest.mark.parametrize(
    "members, ranked, expected",
    [
        # B has 2 of 3 in A
        ({"A": "1234", "B": "125"}, "AB", {"B": ("A", 2 / 3)}),
        # just under half: 1 of 3 … and exactly half: 2 of 4
        ({"A": "12", "B": "189"}, "AB", {}),
        ({"A": "12", "B": "1289"}, "AB", {"B": ("A", 0.5)}),
        # only a stronger finding holds: the stronger A, all inside the weaker B, stays on top
        ({"A": "12", "B": "123"}, "AB", {"B": ("A", 2 / 3)}),
        ({"A": "12", "B": "123"}, "BA", {"A": ("B", 1.0)}),
        # two stronger containers: the strongest, not the one with more overlap
        ({"A": "1289", "B": "1234", "C": "123"}, "ABC", {"B": ("A", 0.5), "C": ("A", 2 / 3)}),
        # a chain: C in B in A
        ({"A": "123456", "B": "1234", "C": "12"}, "ABC", {"B": ("A", 1.0), "C": ("A", 1.0)}),
        # disjoint
        ({"A": "12", "B": "34"}, "AB", {}),
    ],
)
def test_containment_table(members, ranked, expected):
    frame = pd.DataFrame([(f, a) for f, apps in members.items() for a in apps], columns=["finding", "application"])
    got = containment(frame, pd.Series(list(ranked)))
    assert {k: (v["parent"], pytest.approx(v["contained"])) for k, v in got.to_dict("index").items()} == expected


def _ordered(store, by: str, **filters) -> pd.DataFrame:
    t = queue_view.with_cases(findings_table(store), cases.list_cases(store))
    shown = t
    for column, keep in filters.items():
        shown = shown[shown[column].isin(keep)]
    parents = pd.Series(t["parent"].to_numpy(object), index=t["finding"])
    return queue_view.order_queue(shown, by, parents=parents)


def test_sorts_keep_nested_findings_under_their_parent(queue_store):
    by_score = _ordered(queue_store, "score")
    assert by_score[["finding", "depth"]].values.tolist() == [
        ["rings-aaaa", 0],
        ["burst-cccc", 1],
        ["rings-bbbb", 0],
        ["burst-dddd", 1],
        ["burst-eeee", 0],
        ["burst-ffff", 0],
    ]
    by_exposure = _ordered(queue_store, "exposure")
    assert by_exposure["finding"].tolist() == [
        "burst-ffff",
        "rings-aaaa",
        "burst-cccc",
        "burst-eeee",
        "rings-bbbb",
        "burst-dddd",
    ]  # ¥640k, ¥300k (and C under it), ¥290k, ¥200k
    newest = _ordered(queue_store, "newest")
    assert newest["finding"].tolist()[:2] == ["burst-ffff", "burst-eeee"]  # September first
    assert newest.set_index("finding").loc["burst-cccc", "under"] == "rings-aaaa"
    # paging counts top rows: a nested finding travels with its parent
    assert queue_view.page_of(by_score, 1, 2)["finding"].tolist() == [
        "rings-aaaa",
        "burst-cccc",
        "rings-bbbb",
        "burst-dddd",
    ]
    assert queue_view.page_of(by_score, 2, 2)["finding"].tolist() == ["burst-eeee", "burst-ffff"]


def test_a_nested_finding_whose_parent_is_filtered_out_is_a_top_row(queue_store):
    shown = _ordered(queue_store, "score", finding=["rings-bbbb", "burst-cccc", "burst-dddd"])
    assert shown[["finding", "depth"]].values.tolist() == [["rings-bbbb", 0], ["burst-dddd", 1], ["burst-cccc", 0]]


def test_queue_rows_say_what_how_big_why_and_when(queue_store):
    with i18n.use_language("en"):
        rows = queue_view.queue_rows(_ordered(queue_store, "score")).set_index("finding")
    assert rows.loc["rings-aaaa", "what"] == "shared-identifier ring"
    assert rows.loc["burst-cccc", "what"] == "↳ device burst (100% inside)"
    assert rows.loc["burst-ffff", "exposure"] == "¥640,000"
    assert rows.loc["burst-cccc", "why"] == "applied within 0.5 days"
    assert rows.loc["rings-aaaa", "when"] == "2025-03-02 15:00"  # RA05, Beijing time, to the minute
    assert rows.loc["rings-aaaa", "known_bad"] == 2


def test_order_queue_is_columnar_enough_for_10k_findings():
    import time

    import numpy as np

    n = 10_000
    rng = np.random.default_rng(3)
    members = pd.DataFrame(
        {"finding": np.repeat([f"f{i}" for i in range(n)], 5), "application": rng.integers(0, 8000, n * 5).astype(str)}
    )
    ranked = pd.Series([f"f{i}" for i in range(n)])
    started = time.perf_counter()
    nested = containment(members, ranked)
    table = pd.DataFrame(
        {
            "finding": ranked,
            "rank": np.arange(n),
            "parent": ranked.map(nested["parent"]).astype(object),
            "exposure": rng.random(n),
            "last_applied": pd.Timestamp("2025-01-01", tz="UTC"),
        }
    )
    ordered = queue_view.order_queue(table, "exposure")
    seconds = time.perf_counter() - started
    assert len(ordered) == n and set(ordered["finding"]) == set(ranked)
    assert seconds < 2.0, seconds  # 2 shared cores; the bench holds the 1 s target for the whole page


# -- the page -------------------------------------------------------------------------------


def app(name: str = "ivy", params: dict | None = None) -> AppTest:
    at = AppTest.from_file(MAIN, default_timeout=60)
    at.session_state["lang"] = "en"
    at.session_state["user"] = {"name": name, "role": "investigator"}
    for k, v in (params or {}).items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, at.exception
    return at


def grid(at: AppTest) -> pd.DataFrame:
    return next(f.value for f in at.dataframe if "why" in f.value.columns)


def test_page_shows_nested_rows_under_their_parent_and_sorts(queue_store):
    at = app()
    rows = grid(at)
    assert rows["finding"].tolist() == [
        "rings-aaaa",
        "burst-cccc",
        "rings-bbbb",
        "burst-dddd",
        "burst-eeee",
        "burst-ffff",
    ]
    assert rows["what"].tolist()[1].startswith("↳ ")
    assert "2 shown under a stronger finding" in at.metric[0].help
    at.radio(key="q_sort_en").set_value("exposure").run()
    assert grid(at)["finding"].tolist()[0] == "burst-ffff"


def _tick(at: AppTest, findings: list[str]) -> None:
    """Turn on bulk mode and tick ``findings`` (AppTest writes a grid's selection through session state)."""
    at.toggle(key="q_bulk").set_value(True).run()
    (frame,) = [f for f in at.dataframe if f.key and f.key.startswith("queue_bulk_")]
    ids = frame.value["finding"].tolist()
    at.session_state[frame.key] = {"selection": {"rows": [ids.index(f) for f in findings], "columns": [], "cells": []}}
    at.run()
    assert not at.exception, at.exception


def test_bulk_dismiss_writes_one_comment_on_each_case_audited(queue_store):
    cases.update_case(queue_store, "ian", "Finding", "burst-eeee", status="In progress")
    cases.update_case(queue_store, "ian", "Finding", "burst-eeee", status="Confirmed fraud", comment="seen before")
    at = app()
    _tick(at, ["burst-dddd", "burst-eeee", "burst-ffff"])
    assert "3 findings ticked" in [t.value for t in at.text]
    at.radio(key="q_bulk_action_en").set_value("Dismiss")
    at.text_area(key="q_bulk_comment").input("same farm as last week")
    at.button(key="FormSubmitter:queue_bulk_form-Apply to the ticked findings").click().run()
    assert not at.exception, at.exception
    assert "Dismissed 2 findings" in at.success[0].value
    assert "burst-eeee" in at.warning[0].value  # confirmed: skipped, and said
    for key in ("burst-dddd", "burst-ffff"):
        case = cases.get_case(queue_store, "Finding", key)
        assert (case.status, case.comment, case.updated_by) == ("Dismissed", "same farm as last week", "ivy")
        log = cases.audit_log(queue_store, target=cases.case_key("Finding", key))
        assert log["action"].tolist() == ["case.status"] and log["user"].tolist() == ["ivy"]
        assert json.loads(log["after"][0])["comment"] == "same farm as last week"
    kept = cases.get_case(queue_store, "Finding", "burst-eeee")
    assert (kept.status, kept.comment) == ("Confirmed fraud", "seen before")
    # untouched: what was not ticked
    assert cases.get_case(queue_store, "Finding", "rings-aaaa").updated_at == ""
    # the dismissed rows say so
    status = dict(zip(grid(at)["finding"], grid(at)["status"]))
    assert status["burst-dddd"] == "Dismissed" and status["rings-aaaa"] == "Open"


def test_bulk_assign_then_my_queue_and_the_assignee_picker(queue_store):
    at = app()
    picker = at.selectbox(key="q_assignee_en")
    assert {"ivy", "ian"} <= set(picker.options)  # from the users file
    _tick(at, ["rings-bbbb", "burst-ffff"])
    at.radio(key="q_bulk_action_en").set_value("Assign")
    at.selectbox(key="q_bulk_assignee").set_value("ian")
    at.text_area(key="q_bulk_comment").input("for Ian: both from agent AG-9")
    at.button(key="FormSubmitter:queue_bulk_form-Apply to the ticked findings").click().run()
    assert not at.exception, at.exception
    for key in ("rings-bbbb", "burst-ffff"):
        case = cases.get_case(queue_store, "Finding", key)
        assert (case.assignee, case.status) == ("ian", "Open")
        notes = cases.case_notes(queue_store, "Finding", key)
        assert notes["note"].tolist() == ["for Ian: both from agent AG-9"] and notes["user"].tolist() == ["ivy"]
        actions = set(cases.audit_log(queue_store, target=cases.case_key("Finding", key))["action"])
        assert actions == {"case.note", "case.update"}
    # Ian's queue: his two findings; Ivy's: none
    ian = app("ian")
    ian.toggle(key="q_mine").set_value(True).run()
    assert sorted(grid(ian)["finding"]) == ["burst-ffff", "rings-bbbb"]
    assert set(grid(ian)["assignee"]) == {"ian"}
    at.toggle(key="q_bulk").set_value(False).run()
    at.toggle(key="q_mine").set_value(True).run()
    assert grid(at).empty
    at.toggle(key="q_mine").set_value(False).run()
    at.selectbox(key="q_assignee_en").set_value("ian").run()
    assert sorted(grid(at)["finding"]) == ["burst-ffff", "rings-bbbb"]
    at.selectbox(key="q_assignee_en").set_value(queue_view.UNASSIGNED).run()
    assert "rings-bbbb" not in grid(at)["finding"].tolist() and "rings-aaaa" in grid(at)["finding"].tolist()


def test_bulk_needs_a_comment(queue_store):
    at = app()
    _tick(at, ["rings-aaaa"])
    at.radio(key="q_bulk_action_en").set_value("Dismiss")
    at.button(key="FormSubmitter:queue_bulk_form-Apply to the ticked findings").click().run()
    assert "one comment" in at.error[0].value
    assert cases.get_case(queue_store, "Finding", "rings-aaaa").updated_at == ""


# -- deep links -----------------------------------------------------------------------------


def test_finding_link_opens_that_finding_in_the_explorer_and_stays_in_the_url(queue_store):
    at = app(params={"finding": "rings-bbbb", "session": "not-a-real-token"})
    assert at.title[0].value == "Cluster explorer"
    assert at.session_state["finding"] == "rings-bbbb"
    assert at.selectbox(key="cluster_finding").value == "rings-bbbb"
    assert at.query_params["finding"] in ("rings-bbbb", ["rings-bbbb"])  # F5 reopens it
    shown = [c.value for c in at.sidebar.code]
    assert shown == ["/cluster?finding=rings-bbbb"]  # the link to paste: the item, no session token


def test_application_and_case_links(queue_store):
    at = app(params={"application": "RB02"})
    assert at.session_state["application"] == "RB02"
    assert at.text_input(key="app_id_input").value == "RB02"
    assert [c.value for c in at.sidebar.code] == ["/application?application=RB02"]
    at = app(params={"case": "case:Finding:burst-cccc"})
    assert at.title[0].value == "Cluster explorer" and at.session_state["finding"] == "burst-cccc"
    at = app(params={"case": "case:Application:RA03"})
    assert at.session_state["application"] == "RA03"


def test_a_case_link_opens_the_cases_page_when_the_case_exists(queue_store):
    cases.update_case(queue_store, "ivy", "Finding", "burst-cccc", status="In progress", assignee="ivy")
    at = app(params={"case": "Finding:burst-cccc"})
    assert at.title[0].value == "Cases"
    assert at.session_state["case"] == "case:Finding:burst-cccc"
    assert at.query_params["case"] in ("case:Finding:burst-cccc", ["case:Finding:burst-cccc"])  # F5 reopens it
    assert [c.value for c in at.sidebar.code] == ["/cases?case=case%3AFinding%3Aburst-cccc"]


def test_a_link_to_a_missing_finding_opens_nothing_else_and_says_so(queue_store):
    bad = "![x](http://203.0.113.7/track.png)"
    at = app(params={"finding": bad})
    assert at.title[0].value == "Alert queue"
    assert at.session_state["finding"] is None
    assert "No finding `![x](http://203.0.113.7/track.png)` in this store." == at.error[0].value
    assert "finding" not in at.query_params


def test_the_queue_shows_the_link_of_the_finding_to_open(queue_store):
    at = app()
    at.selectbox(key="queue_open_choice").set_value("burst-dddd").run()
    assert at.code[0].value == "/cluster?finding=burst-dddd"
    assert links.parse_link({"finding": "burst-dddd"}).page == "cluster"


def test_order_queue_keeps_a_grandchild_under_its_own_parent():
    """R ⊃ A ⊃ B and R ⊃ C, C stronger than B: B must come right after A, not after C."""
    t = pd.DataFrame(
        {
            "finding": ["R", "A", "C", "B", "Z"],
            "rank": [0, 1, 2, 3, 4],
            "parent": [None, "R", "R", "A", None],
            "exposure": [1.0, 1.0, 1.0, 1.0, 9.0],
            "last_applied": pd.to_datetime(["2025-01-01"] * 5, utc=True),
        }
    )
    got = queue_view.order_queue(t, "score")
    assert got[["finding", "depth", "top"]].values.tolist() == [
        ["R", 0, "R"],
        ["A", 1, "R"],
        ["B", 2, "R"],
        ["C", 1, "R"],
        ["Z", 0, "Z"],
    ]
    assert queue_view.order_queue(t, "exposure")["finding"].tolist() == ["Z", "R", "A", "B", "C"]
    # A filtered out: B climbs to R, and sits under it beside C (strongest first: C, then B)
    got = queue_view.order_queue(t[t["finding"] != "A"], "score", parents=t.set_index("finding")["parent"])
    assert got[["finding", "depth", "under"]].values.tolist() == [
        ["R", 0, None],
        ["C", 1, "R"],
        ["B", 1, "R"],
        ["Z", 0, None],
    ]
