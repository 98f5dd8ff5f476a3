"""Every dashboard page under AppTest (no browser): widgets, graph payload,
role gating, masking, escaping, cases and the audit log."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from ringscope.app.dashboard import cases, graphview, names, services
from ringscope.graph.embedded import EmbeddedStore
from ringscope.graph.store import GraphBatch
from tests.app.browser.store_fixture import RING_A, XSS_NAME, build_dashboard_store

APP = Path(__file__).resolve().parents[2] / "app" / "dashboard"
MAIN = str(APP / "main.py")


@pytest.fixture
def dash_store(tmp_path, monkeypatch):
    store = EmbeddedStore(tmp_path / "store")
    build_dashboard_store(store, tmp_path / "export")
    monkeypatch.setenv("RINGSCOPE_STORE", str(tmp_path / "store"))
    monkeypatch.delenv("RINGSCOPE_NEO4J_URI", raising=False)
    monkeypatch.delenv("RINGSCOPE_USERS", raising=False)
    return store


def app(role: str = "investigator", name: str = "ivy", page: str | None = None) -> AppTest:
    at = AppTest.from_file(MAIN, default_timeout=60)
    at.session_state["lang"] = "en"  # these tests read the English wording
    at.session_state["user"] = {"name": name, "role": role}
    at.run()
    assert not at.exception, at.exception
    if page:
        at.switch_page(page)
        at.run()
        assert not at.exception, at.exception
    return at


def graph_args(at: AppTest) -> dict:
    comps = at.get("component_instance")
    assert len(comps) == 1
    return json.loads(comps[0].proto.json_args)


def table(at: AppTest, *columns: str):
    """The first dataframe on the page with these columns (st.dataframe keys
    are not exposed to AppTest unless the table is selectable)."""
    for frame in at.dataframe:
        value = frame.value
        if all(c in value.columns for c in columns):
            return value
    raise AssertionError(f"no table with columns {columns}")


def case_widget(at: AppTest, kind: str, label: str):
    """The case form's widget of ``kind`` with ``label`` (its keys carry the case's version)."""
    found = [w for w in getattr(at, kind) if w.label == label]
    assert len(found) == 1, [w.label for w in getattr(at, kind)]
    return found[0]


def fields(at: AppTest, name: str = "field") -> dict:
    """A field/value table as stored field → shown value (the page heads rows
    with human names, here the English ones)."""
    from ringscope.app.dashboard import i18n

    with i18n.use_language("en"):
        back = {names.field_name(k): k for k in names.FIELD_NAMES}
    rows = table(at, name, "value")
    return {back.get(k, k): v for k, v in zip(rows[name], rows["value"])}


def texts(at: AppTest) -> str:
    """Everything the page wrote (markdown, captions, dataframes) as one string."""
    parts = [
        str(e.value)
        for kind in ("markdown", "caption", "info", "warning", "error", "success", "title")
        for e in getattr(at, kind)
    ]
    parts += [e.value.to_csv() for e in at.dataframe]
    return "\n".join(parts)


# -- log-in and roles --------------------------------------------------------------


def test_login_form_then_queue(dash_store, tmp_path):
    from ringscope.app.dashboard import auth

    auth.add_user(tmp_path / "store" / "users.json", "ivy", "correct horse", "investigator")
    at = AppTest.from_file(MAIN, default_timeout=60)
    at.session_state["lang"] = "en"  # these tests read the English wording
    at.run()
    assert [t.label for t in at.text_input] == ["User", "Password"]
    at.text_input(key="login_user").input("ivy")
    at.text_input(key="login_password").input("wrong password")
    at.button[0].click().run()
    assert "wrong password" in at.error[0].value
    at.text_input(key="login_password").input("correct horse")
    at.button[0].click().run()
    assert not at.exception
    assert at.session_state["user"] == {"name": "ivy", "role": "investigator"}
    assert at.title[0].value == "Alert queue"


def test_investigator_cannot_open_the_console(dash_store):
    at = AppTest.from_file(str(APP / "pages" / "console.py"), default_timeout=30)
    at.session_state["lang"] = "en"  # these tests read the English wording
    at.session_state["user"] = {"name": "ivy", "role": "investigator"}
    at.run()
    assert "may not open this page" in at.error[0].value
    assert not at.text_area  # no query box


def test_console_page_is_in_the_menu_for_analysts_only():
    from ringscope.app.dashboard import auth
    from ringscope.app.dashboard.context import PAGE_FILES

    def menu(role):
        return [title for title, _, permission in PAGE_FILES if auth.can(role, permission)]

    assert "Cypher console" not in menu("investigator")
    assert "Cypher console" in menu("analyst") and "Cypher console" in menu("admin")


def test_analyst_console_on_the_embedded_store_says_it_needs_neo4j(dash_store):
    at = app("analyst", page="pages/console.py")
    assert "needs the Neo4j store" in at.info[0].value


def test_no_user_sees_nothing_but_the_login(dash_store):
    at = AppTest.from_file(str(APP / "pages" / "queue.py"), default_timeout=30)
    at.session_state["lang"] = "en"  # these tests read the English wording
    at.run()
    assert "log in" in at.warning[0].value.lower()
    assert not at.dataframe


# -- queue --------------------------------------------------------------------------------


def test_queue_lists_findings_best_first_with_filters(dash_store):
    at = app()
    assert at.title[0].value == "Alert queue"
    assert {m.label for m in at.metric} >= {"Findings", "Applications", "Open"}
    assert at.metric[0].value == "2"
    labels = {w.label for w in at.sidebar.multiselect} | {w.label for w in at.sidebar.slider}
    assert {"Detector", "Status", "Size (applications)", "Minimum score"} <= labels
    assert at.sidebar.selectbox(key="q_agent_en").options[:1] == ["(any)"]
    queue = table(at, "finding", "why")
    assert queue["finding"].tolist() == ["rings-aaaa", "rings-bbbb"]
    # the top evidence names a phone: masked
    assert "13800138000" not in queue.to_csv() and "138****8000" in queue.to_csv()
    at.sidebar.slider(key="q_size").set_value((5, 6)).run()
    assert table(at, "finding", "why")["finding"].tolist() == ["rings-aaaa"]
    at.sidebar.selectbox(key="q_agent_en").set_value("AG-9").run()
    assert table(at, "finding", "why").empty


def test_queue_opens_a_finding_in_the_cluster_explorer(dash_store):
    at = app()
    at.selectbox(key="queue_open_choice").set_value("rings-bbbb")
    at.button(key="queue_open").click().run()
    assert not at.exception
    assert at.title[0].value == "Cluster explorer"
    assert at.session_state["finding"] == "rings-bbbb"


# -- cluster explorer ------------------------------------------------------------------------


def test_cluster_payload_has_the_ring_masked_and_escaped(dash_store):
    at = app(page="pages/cluster.py")
    args = graph_args(at)
    nodes = [n["data"] for n in args["elements"]["nodes"]]
    by_label = {}
    for n in nodes:
        by_label.setdefault(n["label"], []).append(n)
    assert sorted(n["caption"] for n in by_label["Application"]) == RING_A
    assert len(by_label["Person"]) == 6
    assert {n["role"] for n in by_label["Device"]} == {"shared"}
    assert by_label["Phone"][0]["caption"] == "138****8000"
    # edges connect existing nodes; ids are opaque tokens
    ids = {n["id"] for n in nodes}
    assert all(e["data"]["source"] in ids and e["data"]["target"] in ids for e in args["elements"]["edges"])
    raw = comps_json = at.get("component_instance")[0].proto.json_args
    persons = dash_store.read_nodes("Person")["key"].tolist()
    assert not any(p in raw for p in persons), "an ID number reached the browser"
    assert "13800138000" not in raw
    assert "<img" not in comps_json and "&lt;img" in comps_json
    # styles by type and risk, no animation, expand enabled, click events
    selectors = {s["selector"] for s in args["style"]}
    assert "node[label='Application']" in selectors and "node[risk >= 0.7]" in selectors
    assert args["layout"]["animate"] is False
    assert args["nodeActions"] == ["expand"]
    assert args["events"][0]["name"] == "node_click"
    scored = [n for n in by_label["Application"] if n["caption"] == "RA01"][0]
    assert scored["risk"] == pytest.approx(0.83)
    # evidence beside the graph, masked
    evidence = table(at, "feature", "contribution")
    assert "Shared identifiers" in evidence["feature"].tolist()  # the feature in words
    assert "13800138000" not in evidence.to_csv()


def graph_key(finding: str = "rings-aaaa") -> str:
    """Session key of the explorer's graph component (one per finding)."""
    return f"cluster_graph_{graphview.token('Finding:' + finding)}"


def _token_of(at: AppTest, label: str, caption: str | None = None) -> str:
    for n in graph_args(at)["elements"]["nodes"]:
        if n["data"]["label"] == label and (caption is None or n["data"]["caption"] == caption):
            return n["data"]["id"]
    raise AssertionError(f"no {label} {caption}")


def test_clicking_a_node_shows_its_details_masked_and_reveal_is_audited(dash_store):
    at = app(page="pages/cluster.py")
    tok = _token_of(at, "Person")
    at.session_state[graph_key()] = {
        "action": "node_click",
        "data": {"type": "tap", "target_id": tok, "target_group": "nodes"},
        "timestamp": 1,
    }
    at.run()
    assert not at.exception
    shown = fields(at, "property")
    person_key = at.session_state["selected_node"].split(":", 1)[1]
    assert shown["key"] != person_key and shown["key"].startswith(person_key[:6]) and "*" in shown["key"]
    # the birth date, region and gender are the masked digits: masked with them
    for field in ("birth_date", "region_code", "gender"):
        assert set(shown[field]) == {"*"}, (field, shown[field])
    assert person_key[6:14] not in texts(at)
    at.button(key="reveal_node").click().run()
    assert not at.exception
    assert fields(at, "property")["key"] == person_key
    log = cases.audit_log(dash_store)
    assert log.iloc[0]["action"] == "reveal" and log.iloc[0]["user"] == "ivy"
    assert log.iloc[0]["target"] == f"Person:{person_key}"


def test_expanding_a_node_adds_its_neighbours(dash_store):
    at = app(page="pages/cluster.py")
    before = len(graph_args(at)["elements"]["nodes"])
    tok = _token_of(at, "Application", "RA02")
    at.session_state[graph_key()] = {"action": "expand", "data": {"node_ids": [tok]}, "timestamp": 2}
    at.run()
    assert not at.exception
    nodes = graph_args(at)["elements"]["nodes"]
    assert len(nodes) > before
    assert {"IP", "BankAccount", "Address"} <= {n["data"]["label"] for n in nodes}


def test_shortest_path_is_highlighted(dash_store):
    at = app(page="pages/cluster.py")
    at.selectbox(key="path_from").set_value("Application:RA00")
    at.selectbox(key="path_to").set_value("Application:RA05")
    at.button(key="path_go").click().run()
    assert not at.exception
    assert at.session_state["path"] == ["Application:RA00", "Device:farm-device-1", "Application:RA05"]
    args = graph_args(at)
    on_path = [n["data"]["caption"] for n in args["elements"]["nodes"] if n["data"].get("on_path")]
    assert sorted(on_path) == ["RA00", "RA05", "farm-devic"]
    assert sum(1 for e in args["elements"]["edges"] if e["data"].get("on_path")) == 2


def test_time_filter_hides_applications_outside_the_window(dash_store):
    import datetime as dt

    at = app(page="pages/cluster.py")
    at.slider(key="cluster_window").set_value((dt.date(2025, 3, 1), dt.date(2025, 3, 1))).run()
    apps = [n["data"]["caption"] for n in graph_args(at)["elements"]["nodes"] if n["data"]["label"] == "Application"]
    assert sorted(apps) == ["RA00", "RA01", "RA02", "RA03"]
    assert any("outside the time window" in w.value for w in at.warning)


def test_case_status_change_writes_case_and_audit_before_success(dash_store):
    at = app(page="pages/cluster.py")
    case_widget(at, "selectbox", "New status").set_value("In progress")
    case_widget(at, "text_input", "Assignee").input("ivy")
    submit = [b for b in at.button if b.label == "Save case"][0]
    submit.click().run()
    assert not at.exception
    assert "Case saved: In progress" in at.success[0].value
    case = cases.get_case(dash_store, "Finding", "rings-aaaa")
    assert case.status == "In progress" and case.assignee == "ivy" and case.updated_by == "ivy"
    log = cases.audit_log(dash_store, target="case:Finding:rings-aaaa")
    assert len(log) == 1 and log.iloc[0]["action"] == "case.status"
    assert json.loads(log.iloc[0]["after"])["status"] == "In progress"
    assert table(at, "action", "before")["action"].tolist() == ["case status changed"]  # the action in words
    # confirming needs a comment
    case_widget(at, "selectbox", "New status").set_value("Confirmed fraud")
    [b for b in at.button if b.label == "Save case"][0].click().run()
    assert "Say why" in at.error[0].value
    assert cases.get_case(dash_store, "Finding", "rings-aaaa").status == "In progress"
    case_widget(at, "selectbox", "New status").set_value("Confirmed fraud")  # the form clears on submit
    case_widget(at, "text_area", "Note").input("same device farm, 3 defaults")
    [b for b in at.button if b.label == "Save case"][0].click().run()
    assert cases.get_case(dash_store, "Finding", "rings-aaaa").status == "Confirmed fraud"
    labels = cases.case_labels(dash_store)
    assert sorted(labels["application_id"]) == RING_A and set(labels["label"]) == {"fraud"}


# -- search, application, cases, model -----------------------------------------------------------


def test_search_by_pinyin_hanzi_and_number(dash_store):
    at = app(page="pages/search.py")
    at.text_input(key="search_query").input("zhao min").run()
    hits = table(at, "matched")
    assert sorted(hits["application_id"]) == ["RP01", "RP02"]
    assert all("*" in v for v in hits["id_number"])
    at.text_input(key="search_query").input("赵敏").run()
    assert sorted(table(at, "matched")["application_id"]) == ["RP01", "RP02"]
    at.text_input(key="search_query").input("8000").run()
    found = table(at, "matched")
    assert {"RA01", "RA03", "RA05"} <= set(found["application_id"])
    assert "13800138000" not in found.to_csv()
    at.selectbox(key="search_pick").set_value("RA01")
    at.button(key="search_open").click().run()
    assert at.title[0].value == "Application"


def test_search_part_of_a_name_one_hanzi_score_decision_and_cap(dash_store):
    at = app(page="pages/search.py")
    at.text_input(key="search_query").input("李").run()  # one hanzi: 李娜 (RA01, scored)
    hits = table(at, "matched", "risk_score", "risk_decision")
    assert "RA01" in set(hits["application_id"])
    row = hits.set_index("application_id").loc["RA01"]
    assert row["risk_score"] == pytest.approx(0.83) and row["risk_decision"] == "decline"
    at.text_input(key="search_query").input("实业").run()  # part of every employer's name (22 applications)
    assert len(table(at, "matched")) == 22 and not at.warning
    assert "22 matching applications" in at.caption[0].value


def test_search_says_when_it_stops_at_50(dash_store):
    # 40 more applications (employers written in traditional script): 62 match, 50 are shown
    extra = pd.DataFrame(
        {"key": [f"EX{i:02d}" for i in range(40)], "employer_name_raw": [f"杭州第{i}實業有限公司" for i in range(40)]}
    )
    dash_store.write(GraphBatch(nodes={"Application": extra}))
    at = app(page="pages/search.py")
    at.text_input(key="search_query").input("实业").run()
    assert len(table(at, "matched")) == 50
    assert "Showing 50 of 62 matches" in at.warning[0].value and "refine the search" in at.warning[0].value


def test_search_query_is_never_markdown(dash_store):
    at = app(page="pages/search.py")
    at.text_input(key="search_query").input("![x](http://203.0.113.7/t.png)").run()
    assert not at.exception
    assert "`![x](http://203.0.113.7/t.png)`" in at.info[0].value


def test_application_page_score_findings_history_masked(dash_store):
    at = AppTest.from_file(MAIN, default_timeout=60)
    at.session_state["lang"] = "en"  # these tests read the English wording
    at.session_state["user"] = {"name": "ivy", "role": "investigator"}
    at.session_state["application"] = "RA01"
    at.run()
    at.switch_page("pages/application.py").run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {"Score": "0.83", "Decision": "decline"}
    assert table(at, "code")["code"].tolist() == ["Member of a shared-identifier ring"]  # RING_MEMBER in words
    assert table(at, "finding", "detector")["finding"].tolist() == ["rings-aaaa"]
    values = fields(at)
    assert values["applicant_phone_raw"] == "138****8000"
    assert "*" in values["applicant_id_number_raw"] and "*" in values["bank_account_raw"]
    at.button(key="app_reveal").click().run()
    values = fields(at)
    assert values["applicant_phone_raw"] == "13800138000"
    assert cases.audit_log(dash_store)[["action", "target"]].values.tolist() == [["reveal", "Application:RA01"]]
    # a case on the application itself
    case_widget(at, "selectbox", "New status").set_value("In progress")
    [b for b in at.button if b.label == "Save case"][0].click().run()
    assert "Case saved: In progress" in at.success[0].value
    assert cases.get_case(dash_store, "Application", "RA01").status == "In progress"
    at.text_input(key="app_id_input").input("RP01").run()
    assert "Not scored yet" in at.info[0].value
    assert table(at, "application_id", "applied_at")["application_id"].tolist() == ["RP02"]
    at.text_input(key="app_id_input").input("NOPE").run()
    assert "No application" in at.error[0].value


def test_cases_page_lists_cases_and_the_audit_log(dash_store):
    cases.update_case(dash_store, "ivy", "Finding", "rings-bbbb", status="In progress", assignee="ivy")
    at = app(page="pages/cases.py")
    listed = table(at, "target_key")
    assert listed["target_key"].tolist() == ["rings-bbbb"]
    assert table(at, "action", "before")["action"].tolist() == ["case status changed"]  # the action in words


def test_model_page_empty_then_report(dash_store, tmp_path):
    at = app(page="pages/model.py")
    assert "No trained model yet" in at.info[0].value
    folder = tmp_path / "store" / "models" / "v1"
    folder.mkdir(parents=True)
    (folder.parent / "LATEST").write_text("v1")
    report = {
        "chosen": "gbm",
        "labelled": 100,
        "bad": 7,
        "models": {"gbm": {"all features": {"auc": 0.9, "precision_at_k": 0.5}}},
    }
    (folder / "report.json").write_text(json.dumps(report))
    at = app(page="pages/model.py")
    assert {m.label: m.value for m in at.metric}["Chosen model"] == "gradient-boosted trees"
    assert table(at, "auc")["auc"].tolist() == [0.9]


def test_model_page_says_what_a_findings_only_model_does(dash_store, tmp_path):
    folder = tmp_path / "store" / "models" / "v1"
    folder.mkdir(parents=True)
    (folder.parent / "LATEST").write_text("v1")
    why = "Too few fraud outcomes to train: 3 labelled fraud"
    report = {"chosen": "findings", "labelled": 40, "bad": 3, "models": {}, "findings_only": {"why": why}}
    (folder / "report.json").write_text(json.dumps(report))
    at = app(page="pages/model.py")
    assert {m.label: m.value for m in at.metric}["Chosen model"] == "findings only"
    shown = [i.value for i in at.info]
    assert any("Findings-only model" in text and why in text and "declines none" in text for text in shown), shown


def test_model_page_shows_history_and_the_last_monitoring_of_this_champion(dash_store, tmp_path):
    folder = tmp_path / "store" / "models"
    (folder / "v2").mkdir(parents=True)
    (folder / "LATEST").write_text("v2")
    (folder / "v2" / "report.json").write_text(
        json.dumps({"chosen": "scorecard", "labelled": 10, "bad": 2, "models": {}})
    )
    (folder / "CHAMPIONS.jsonl").write_text(
        json.dumps(
            {
                "at": "2026-11-29T01:00:00Z",
                "action": "promote",
                "before": "v1",
                "after": "v2",
                "user": "ana",
                "reason": "quarterly review",
            }
        )
        + "\n"
    )
    monitoring = {
        "model_version": "v1",
        "overall": "act",
        "period": "week",
        "psi": {"2026-11-02": {"score": 0.05, "channel": 0.9}},
        "noise": {"2026-11-02": {"score": 0.02, "channel": 0.01}},
        "decisions": {"reference": {"pass": 0.95, "review": 0.05}, "2026-11-02": {"pass": 0.9, "review": 0.1}},
        "hit_rates": {},
        "cohorts": [],
        "alerts": [{"period": "2026-11-02", "column": "channel", "psi": 0.9, "beyond_noise": 0.89, "status": "act"}],
    }
    (folder / "monitoring.json").write_text(json.dumps(monitoring))
    at = app(page="pages/model.py")
    assert table(at, "action", "reason")["reason"].tolist() == ["quarterly review"]
    # a monitoring of another version is not shown as this champion's
    assert any("judged `v1`, not this champion" in c.value for c in at.caption)
    monitoring["model_version"] = "v2"
    (folder / "monitoring.json").write_text(json.dumps(monitoring))
    at = app(page="pages/model.py")
    assert {m.label: m.value for m in at.metric}["Stability"] == "act (PSI ≥ 0.25)"
    assert table(at, "column", "beyond_noise")["column"].tolist() == ["channel"]


# -- the payload builder on its own ---------------------------------------------------------------


def test_every_string_in_the_payload_is_escaped():
    view = services.Subgraph(
        {"Person:110101199003071234": "entity", "Application:<b>A1</b>": "member"},
        __import__("pandas").DataFrame(
            {
                "source": ["Person:110101199003071234"],
                "target": ["Application:<b>A1</b>"],
                "type": ["APPLIED"],
                "amount": [float("nan")],
                "share_pct": [float("nan")],
                "score": [float("nan")],
            }
        ),
    )
    props = {
        "Person:110101199003071234": {"name": XSS_NAME, "gender": "<script>x</script>"},
        "Application:<b>A1</b>": {"product": "<svg onload=1>"},
    }
    payload = graphview.build_payload(view, props)
    text = json.dumps(payload.elements, ensure_ascii=False)
    assert "<" not in text and ">" not in text
    assert "110101199003071234" not in text
    assert payload.id_of(payload.elements["nodes"][0]["data"]["id"]) == "Person:110101199003071234"


@pytest.mark.neo4j
def test_queue_cluster_and_case_on_neo4j(neo4j_store, neo4j_uri, tmp_path, monkeypatch):
    build_dashboard_store(neo4j_store, tmp_path / "export")
    monkeypatch.setenv("RINGSCOPE_NEO4J_URI", neo4j_uri)
    monkeypatch.delenv("RINGSCOPE_STORE", raising=False)
    at = app()
    assert table(at, "finding", "why")["finding"].tolist() == ["rings-aaaa", "rings-bbbb"]
    at.button(key="queue_open").click().run()
    assert not at.exception
    nodes = [n["data"] for n in graph_args(at)["elements"]["nodes"]]
    assert sorted(n["caption"] for n in nodes if n["label"] == "Application") == RING_A
    assert "13800138000" not in at.get("component_instance")[0].proto.json_args
    case_widget(at, "selectbox", "New status").set_value("In progress")
    [b for b in at.button if b.label == "Save case"][0].click().run()
    assert "Case saved: In progress" in at.success[0].value
    assert cases.get_case(neo4j_store, "Finding", "rings-aaaa").status == "In progress"
    assert cases.audit_log(neo4j_store)["action"].tolist() == ["case.status"]


def test_queue_lists_applications_flagged_by_the_model(dash_store):
    at = app()
    at.radio(key="queue_kind_en").set_value("Flagged applications").run()
    assert not at.exception
    flagged = table(at, "risk_score", "risk_decision")
    assert flagged["application_id"].tolist() == ["RA01"]
    at.button(key="flagged_open").click().run()
    assert at.title[0].value == "Application"


def test_application_page_masks_addresses_and_shows_a_typed_id_as_text(dash_store):
    at = AppTest.from_file(MAIN, default_timeout=60)
    at.session_state["lang"] = "en"  # these tests read the English wording
    at.session_state["user"] = {"name": "ivy", "role": "investigator"}
    at.session_state["application"] = "RB00"
    at.run()
    at.switch_page("pages/application.py").run()
    values = fields(at)
    assert values["applicant_address_raw"] == "广东省深圳市****"
    at.text_input(key="app_id_input").input("![x](http://203.0.113.7/t.png)").run()
    assert at.error[0].value == "No application `![x](http://203.0.113.7/t.png)` in this store."
    at.text_input(key="app_id_input").input("`" * 3 + "x" * 5000).run()
    message = at.error[0].value
    assert "(5,003 characters)" in message and len(message) < 200 and message.count("````") == 2


# -- the case page: one case, threaded notes, a stale save refused, the evidence pack --------------


def test_a_case_link_opens_the_case_and_its_evidence_pack_downloads(dash_store):
    cases.update_case(dash_store, "ana", "Finding", "rings-aaaa", status="In progress", assignee="ana")
    at = AppTest.from_file(MAIN, default_timeout=120)
    at.session_state["lang"] = "en"
    at.session_state["user"] = {"name": "ivy", "role": "investigator"}
    at.run()
    at.query_params["case"] = "case:Finding:rings-aaaa"
    at.switch_page("pages/cases.py").run()
    assert not at.exception, at.exception
    assert any("Case: Finding rings-aaaa" in s.value for s in at.subheader)
    assert "case:Finding:rings-aaaa" in str(at.query_params["case"])  # the URL keeps the case (reload, ticket)
    assert not at.get("download_button")  # made on demand, not on every view
    [b for b in at.button if b.label == "Make evidence pack (PDF)"][0].click().run()
    assert not at.exception, at.exception
    downloads = at.get("download_button")
    assert len(downloads) == 1 and "Download evidence pack" in downloads[0].proto.label
    log = cases.audit_log(dash_store, target="case:Finding:rings-aaaa")
    assert log["action"].iloc[0] == "case.pack" and log["user"].iloc[0] == "ivy"  # audited, newest first


def test_a_reply_is_threaded_under_the_note_it_answers(dash_store):
    first = cases.add_note(dash_store, "ana", "Finding", "rings-aaaa", "called the branch")
    cases.add_note(dash_store, "ana", "Finding", "rings-aaaa", "second thread")
    at = app(page="pages/cluster.py")
    case_widget(at, "text_area", "Note").input("they called back")
    case_widget(at, "selectbox", "Reply to").set_value(first)
    [b for b in at.button if b.label == "Save case"][0].click().run()
    assert not at.exception, at.exception
    notes = cases.case_notes(dash_store, "Finding", "rings-aaaa")
    assert notes["note"].tolist() == ["called the branch", "they called back", "second thread"]
    assert notes["depth"].tolist() == [0, 1, 0]
    assert cases.get_case(dash_store, "Finding", "rings-aaaa").status == "Open"  # a note changes no status
    shown = [t.value for t in at.text if "they called back" in t.value]
    assert shown and "↳" in shown[0]
    audit = table(at, "action", "before")  # the reply's "before" in words, not a key
    assert any(str(b).startswith("in reply to the note of 20") for b in audit["before"]), audit["before"].tolist()


def test_a_status_picked_on_a_page_someone_else_changed_is_refused_and_the_text_kept(dash_store):
    cases.update_case(dash_store, "ivy", "Finding", "rings-aaaa", status="In progress")
    at = app(page="pages/cluster.py")  # ivy sees In progress
    cases.update_case(dash_store, "ana", "Finding", "rings-aaaa", status="Confirmed fraud", comment="farm")
    case_widget(at, "selectbox", "New status").set_value("Dismissed")  # offered: the page still says In progress
    case_widget(at, "text_area", "Note").input("a family, not a ring")
    [b for b in at.button if b.label == "Save case"][0].click().run()
    assert not at.exception, at.exception
    assert any("ana changed this case" in e.value for e in at.error), [e.value for e in at.error]
    case = cases.get_case(dash_store, "Finding", "rings-aaaa")
    assert (case.status, case.comment, case.updated_by) == ("Confirmed fraud", "farm", "ana")
    assert case_widget(at, "text_area", "Note").value == "a family, not a ring"  # kept, not lost
    assert case_widget(at, "selectbox", "New status").value is None  # nothing carried over
