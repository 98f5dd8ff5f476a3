"""Chinese by default, English as a switch: every page under AppTest in both
languages, the catalogue complete and clean, the formats investigators read."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from ringscope.app.dashboard import cases, i18n, messages
from ringscope.graph.embedded import EmbeddedStore
from tests.app.browser.store_fixture import build_dashboard_store

APP = Path(__file__).resolve().parents[2] / "app" / "dashboard"
MAIN = str(APP / "main.py")
ZH = i18n.catalogue("zh_CN")
#: English messages whose Chinese differs: none may show on a Chinese page
ENGLISH_ONLY = {m for m, t in ZH.items() if isinstance(t, str) and t != m and len(m) > 3}


@pytest.fixture
def dash_store(tmp_path, monkeypatch):
    store = EmbeddedStore(tmp_path / "store")
    build_dashboard_store(store, tmp_path / "export")
    monkeypatch.setenv("RINGSCOPE_STORE", str(tmp_path / "store"))
    monkeypatch.delenv("RINGSCOPE_NEO4J_URI", raising=False)
    monkeypatch.delenv("RINGSCOPE_USERS", raising=False)
    return store


def open_page(page: str | None, role: str = "investigator", lang: str | None = None) -> AppTest:
    at = AppTest.from_file(MAIN, default_timeout=60)
    at.session_state["user"] = {"name": "ivy", "role": role}
    if lang:
        at.query_params[i18n.PARAM] = lang
    at.run()
    assert not at.exception, at.exception
    if page:
        at.switch_page(page).run()
        assert not at.exception, at.exception
    return at


def words(at: AppTest) -> list[str]:
    """What the page says in its own words: titles, headings, messages, widget labels, tabs."""
    out = []
    for kind in ("title", "subheader", "caption", "info", "warning", "error", "success"):
        out += [str(e.value) for e in getattr(at, kind)]
    for kind in (
        "button",
        "text_input",
        "text_area",
        "selectbox",
        "multiselect",
        "slider",
        "toggle",
        "radio",
        "number_input",
        "date_input",
        "metric",
        "tabs",
    ):
        out += [str(getattr(w, "label", "")) for w in getattr(at, kind)]
    out += [str(o) for r in at.radio for o in r.options]
    return [w for w in out if w]


def headers(at: AppTest) -> list[str]:
    """Column headers as the browser shows them (the configured labels)."""
    import json

    found = []
    for frame in at.dataframe:
        config = json.loads(frame.proto.columns or "{}")
        found += [c.get("label") for c in config.values() if isinstance(c, dict) and c.get("label")]
    return found


def assert_chinese(at: AppTest, expected: str, english: str) -> None:
    said = words(at)
    assert any(expected in w for w in said), (expected, said)
    assert not any(english == w for w in said), (english, said)
    leftover = [w for w in said if w in ENGLISH_ONLY]
    assert not leftover, f"untranslated on a Chinese page: {leftover}"


PAGES = [  # page, role, a Chinese label it shows, its English
    ("pages/queue.py", "investigator", "告警队列", "Alert queue"),
    ("pages/cluster.py", "investigator", "团伙浏览", "Cluster explorer"),
    ("pages/search.py", "investigator", "搜索申请", "Search applications"),
    ("pages/application.py", "investigator", "申请编号", "Application id"),
    ("pages/cases.py", "investigator", "审计日志", "Audit log"),
    ("pages/model.py", "analyst", "还没有训练好的模型", "No trained model yet"),
    ("pages/console.py", "analyst", "控制台需要 Neo4j 库", "The console needs the Neo4j store"),
]


@pytest.mark.parametrize("page, role, chinese, english", PAGES, ids=[p[0].split("/")[1][:-3] for p in PAGES])
def test_every_page_is_chinese_by_default_and_english_after_the_switch(dash_store, page, role, chinese, english):
    at = open_page(page, role)
    assert at.session_state["lang"] == "zh_CN"
    assert_chinese(at, chinese, english)
    # the sidebar switch (drawn by main.py, which AppTest runs on the first page only), then the page
    at = open_page(None, role)
    (switch,) = at.sidebar.button_group
    assert switch.options[:2] == ["中文", "English"] or len(switch.options) == 2
    switch.set_value("en").run()
    assert not at.exception, at.exception
    assert at.session_state["lang"] == "en"
    assert at.query_params[i18n.PARAM] in ("en", ["en"])  # a reload keeps it
    at.switch_page(page).run()
    assert not at.exception, at.exception
    said = words(at)
    assert any(english in w for w in said), (english, said)
    assert not any(chinese in w for w in said)


def test_lang_en_in_the_url_is_honoured_and_the_log_in_is_chinese_without_it(dash_store):
    at = AppTest.from_file(MAIN, default_timeout=60).run()
    assert [t.label for t in at.text_input] == ["用户", "密码"]
    assert at.button[0].label == "登录"
    at = AppTest.from_file(MAIN, default_timeout=60)
    at.query_params[i18n.PARAM] = "en"
    at.run()
    assert [t.label for t in at.text_input] == ["User", "Password"]


def test_queue_in_chinese_names_columns_detectors_and_times_in_beijing(dash_store):
    at = open_page("pages/queue.py")
    assert {
        "类型",
        "成员数",
        "敞口（元）",
        "已知不良",
        "原因（首要证据）",
        "最近申请（北京时间）",
        "评分（0–1）",
        "状态",
    } <= set(headers(at))
    queue = next(f.value for f in at.dataframe if "finding" in f.value.columns)
    # ring A's latest application: 2025-03-02 15:00 Beijing (07:00 UTC), to the minute
    assert queue["when"].tolist()[0] == "2025-03-02 15:00"
    assert set(queue["what"]) == {"共用标识团伙"} and set(queue["status"]) == {"待处理"}
    assert queue["exposure"].tolist() == ["¥300,000", "¥200,000"]
    assert queue["why"].tolist()[0].startswith("共用标识：设备 farm-device-1（6 人）")
    # the filters and the sort offer words, the data keeps its codes
    assert at.sidebar.multiselect(key="q_status_zh_CN").options == ["待处理", "调查中", "确认欺诈", "已排除"]
    assert at.radio(key="q_sort_zh_CN").options == ["评分", "敞口", "最新"]


def test_application_fields_have_human_names_yuan_and_beijing_minutes(dash_store):
    at = open_page(None)
    at.session_state["application"] = "RA01"
    at.switch_page("pages/application.py").run()
    assert not at.exception, at.exception
    rows = next(f.value for f in at.dataframe if "field" in f.value.columns)
    shown = dict(zip(rows["field"], rows["value"]))
    assert "applicant_id_number_raw" not in shown and "*" in shown["申请人身份证号（原始输入）"]
    assert shown["金额（元）"] == "¥50,000"  # stored 50000.0
    assert shown["申请时间（北京时间）"] == "2025-03-01 15:00"  # RA01: 07:00 UTC
    assert shown["结果标签"] in {"正常", "欺诈", "逾期违约", "—"}
    reasons = next(f.value for f in at.dataframe if "code" in f.value.columns)
    assert reasons["code"].tolist() == ["共用标识团伙成员"]  # RING_MEMBER in words
    assert {m.label: m.value for m in at.metric} == {"评分": "0.83", "决策": "拒绝"}


def test_cluster_evidence_and_case_panel_in_chinese(dash_store):
    at = open_page("pages/cluster.py")
    # the evidence beside the graph, not in a tab; the node and the case in tabs under it
    assert [t.label for t in at.tabs] == ["选中的节点", "案件"]
    assert "证据" in [h.value for h in at.subheader]
    evidence = next(f.value for f in at.dataframe if "feature" in f.value.columns)
    assert "共用标识" in evidence["feature"].tolist()
    assert evidence["detail"].tolist()[1] == "1.30 天内集中申请"
    assert evidence["detail"].tolist()[0].startswith("共用标识：设备 farm-device-1（6 人），手机号 ")
    # the graph's info panel: human names, yuan and Beijing minutes (the type and style keys stay)
    import json

    (graph,) = at.get("component_instance")
    apps = {
        n["data"]["caption"]: n["data"]
        for n in json.loads(graph.proto.json_args)["elements"]["nodes"]
        if n["data"]["label"] == "Application"
    }
    assert apps["RA00"]["申请时间（北京时间）"] == "2025-03-01 09:00" and "applied_at" not in apps["RA00"]
    assert apps["RA00"]["金额（元）"] == "¥50,000"
    assert "出生日期" in next(
        n["data"] for n in json.loads(graph.proto.json_args)["elements"]["nodes"] if n["data"]["label"] == "Person"
    )
    status = [s for s in at.selectbox if s.label == "新状态"]
    assert len(status) == 1 and status[0].options == ["调查中", "已排除"]


def test_audit_log_is_readable_text_in_beijing_time(dash_store):
    cases.update_case(dash_store, "ivy", "Finding", "rings-aaaa", status="In progress", comment="打电话核实")
    at = open_page("pages/cases.py")
    log = next(f.value for f in at.dataframe if "action" in f.value.columns)
    row = log.iloc[0]
    assert row["action"] != "case.status" and "{" not in row["after"] and '"' not in row["after"]
    assert "状态：调查中" in row["after"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", row["at"])  # to the minute, no microseconds
    table = next(f.value for f in at.dataframe if "assignee" in f.value.columns)
    assert table["status"].tolist() == ["调查中"]
    assert cases.get_case(dash_store, "Finding", "rings-aaaa").status == "In progress"  # stored in English


def test_a_case_error_is_shown_in_the_readers_language(dash_store):
    try:
        cases.update_case(dash_store, "ivy", "Finding", "rings-aaaa", status="Confirmed fraud")
    except cases.CaseError as exc:
        assert "cannot go from Open to Confirmed fraud" in str(exc)  # English for logs and the CLI
        assert i18n.tr(exc) == "案件不能从“Open”改为“Confirmed fraud”；允许：In progress, Dismissed。"
    else:
        raise AssertionError("the move is not allowed")


# -- the catalogue --------------------------------------------------------------------


def test_every_message_in_the_code_has_a_chinese_translation_and_none_is_obsolete():
    used = messages.extract()
    assert len(used) > 300  # the extractor found the pages' strings
    assert {
        "Alert queue",
        "Applicant ID number (as typed)",
        "Confirmed fraud",
        "Number of findings it appears in",
    } <= set(used)
    assert messages.problems("zh_CN") == {"missing": [], "obsolete": []}


def test_translations_keep_every_placeholder():
    for msgid, text in ZH.items():
        for translated in text if isinstance(text, tuple) else (text,):
            assert sorted(re.findall(r"\{[^{}]*\}", msgid)) == sorted(re.findall(r"\{[^{}]*\}", translated)), msgid
            assert msgid.count("`") == translated.count("`"), msgid


def test_no_string_is_scattered_outside_the_catalogue():
    """Page code hands Streamlit no bare English literal as a label or message."""
    call = re.compile(
        r"\bst\.(title|subheader|caption|info|warning|error|success|button|text_input|selectbox|"
        r"multiselect|slider|toggle|radio|metric|text_area|number_input|date_input|expander)\(\s*f?\""
    )
    offenders = []
    for path in [*(APP / "pages").glob("*.py"), APP / "context.py", APP / "case_view.py", APP / "main.py"]:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if call.search(line) and 'st.title("ringscope")' not in line:
                offenders.append(f"{path.name}:{n}: {line.strip()}")
    assert not offenders, offenders


def test_model_page_with_a_report_history_and_monitoring_in_chinese(dash_store, tmp_path):
    import json

    folder = tmp_path / "store" / "models"
    (folder / "v2").mkdir(parents=True)
    (folder / "LATEST").write_text("v2")
    (folder / "v2" / "report.json").write_text(
        json.dumps(
            {
                "chosen": "gbm",
                "labelled": 12000,
                "bad": 700,
                "target": "fraud",
                "models": {"gbm": {"all features": {"auc": 0.9, "precision_at_k": 0.5}}},
            }
        )
    )
    (folder / "CHAMPIONS.jsonl").write_text(
        json.dumps(
            {
                "at": "2026-11-29T01:00:00.123456Z",
                "action": "promote",
                "before": "v1",
                "after": "v2",
                "user": "ana",
                "reason": "quarterly review",
            }
        )
        + "\n"
    )
    (folder / "monitoring.json").write_text(
        json.dumps(
            {
                "model_version": "v2",
                "overall": "watch",
                "period": "week",
                "psi": {},
                "noise": {},
                "decisions": {},
                "hit_rates": {},
                "cohorts": [],
                "alerts": [
                    {"period": "2026-11-02", "column": "channel", "psi": 0.2, "beyond_noise": 0.18, "status": "watch"}
                ],
            }
        )
    )
    at = open_page("pages/model.py", "analyst")
    assert_chinese(at, "冠军模型历史", "Champion history")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["有标签的申请"] == "12,000" and metrics["正样本（欺诈）"] == "700"
    assert metrics["稳定性"] == "需关注（PSI ≥ 0.1）"
    history = next(f.value for f in at.dataframe if "reason" in f.value.columns)
    assert history[["at", "action"]].values.tolist() == [["2026-11-29 09:00", "晋升为冠军模型"]]
    models = next(f.value for f in at.dataframe if "auc" in f.value.columns)
    assert models[["model", "features"]].values.tolist() == [["梯度提升树", "全部特征"]]
    assert "前 k 名精确率" in headers(at) and "超出噪声的 PSI" in headers(at)


@pytest.mark.slow
def test_every_kind_of_finding_the_detectors_wrote_has_a_name(trained_book):
    """The queue and explorer say a finding's kind in words: a kind the
    detectors write but the catalogue lacks would show as its code."""
    from ringscope.app.dashboard import names
    from ringscope.detectors.runner import load_findings
    from ringscope.graph.embedded import EmbeddedStore

    kinds = {f.kind for f in load_findings(EmbeddedStore(trained_book.store_path))}
    assert len(kinds) >= 5
    assert sorted(k for k in kinds if k not in names.KIND_NAMES) == []
