"""The Cypher console against a real Neo4j: writes refused, reads capped."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from ringscope.app.dashboard import cypher
from ringscope.graph.store import GraphBatch

pytestmark = pytest.mark.neo4j

MAIN = str(Path(__file__).resolve().parents[2] / "app" / "dashboard" / "main.py")

WRITES = [
    "CREATE (n:Phone {key: 'x'})",
    "MERGE (n:Phone {key: 'x'}) RETURN n",
    "MATCH (n:Phone) DETACH DELETE n",
    "MATCH (n:Phone) SET n.valid = false",
    "MATCH (n:Phone) REMOVE n.valid",
    "MATCH (n:Phone) CALL (n) { SET n.valid = true } RETURN count(*)",
    "CALL db.createLabel('Hacked')",
    "CREATE INDEX hacked IF NOT EXISTS FOR (n:Phone) ON (n.valid)",
    "LOAD CSV FROM 'http://example.com/x.csv' AS row RETURN row",
]
# more refusals (files, URLs, admin commands, runaway calls) in test_console_bypasses.py


@pytest.fixture
def phones(neo4j_store):
    neo4j_store.write(
        GraphBatch(nodes={"Phone": pd.DataFrame({"key": [f"+86138{i:08d}" for i in range(30)], "valid": True})})
    )
    return neo4j_store


@pytest.mark.parametrize("query", WRITES)
def test_writes_are_refused_and_nothing_changes(phones, query):
    with pytest.raises(cypher.QueryRefused) as refused:
        cypher.run_read_only(phones.driver, phones.database, query)
    assert "read-only" in str(refused.value) or "LOAD CSV" in str(refused.value)
    counts = phones.counts()
    assert counts.nodes["Phone"] == 30
    labels, _, _ = phones.driver.execute_query(
        "CALL db.labels() YIELD label RETURN collect(label) AS l", database_=phones.database
    )
    assert "Hacked" not in labels[0]["l"]
    indexes, _, _ = phones.driver.execute_query(
        "SHOW INDEXES YIELD name RETURN collect(name) AS n", database_=phones.database
    )
    assert "hacked" not in indexes[0]["n"]


def test_a_match_returns_rows_capped(phones):
    result = cypher.run_read_only(
        phones.driver, phones.database, "MATCH (p:Phone) RETURN p.key AS key ORDER BY key", max_rows=10
    )
    assert result.query_type == "r"
    assert len(result.rows) == 10 and result.truncated
    assert result.frame()["key"].iloc[0] == "+8613800000000"
    small = cypher.run_read_only(phones.driver, phones.database, "MATCH (p:Phone) RETURN count(p) AS n")
    assert small.rows == [[30]] and not small.truncated


def test_paths_come_back_as_a_graph(neo4j_store, tmp_path):
    from tests.app.browser.store_fixture import build_dashboard_store

    build_dashboard_store(neo4j_store, tmp_path / "export")
    result = cypher.run_read_only(
        neo4j_store.driver,
        neo4j_store.database,
        "MATCH p=(f:Finding {key: 'rings-aaaa'})-[:INVOLVES]->(a:Application) RETURN p",
    )
    assert len(result.rows) == 6
    labels = sorted({n["label"] for n in result.graph_nodes.values()})
    assert labels == ["Application", "Finding"]
    assert len(result.graph_edges) == 6


def test_syntax_errors_and_empty_queries_are_explained(neo4j_store):
    with pytest.raises(cypher.QueryRefused, match="does not compile"):
        cypher.run_read_only(neo4j_store.driver, neo4j_store.database, "MATCH (n RETURN n")
    with pytest.raises(cypher.QueryRefused, match="Type a query"):
        cypher.run_read_only(neo4j_store.driver, neo4j_store.database, "  ")


def test_console_page_for_an_analyst(neo4j_store, neo4j_uri, tmp_path, monkeypatch):
    from tests.app.browser.store_fixture import build_dashboard_store

    build_dashboard_store(neo4j_store, tmp_path / "export")
    monkeypatch.setenv("RINGSCOPE_NEO4J_URI", neo4j_uri)
    monkeypatch.delenv("RINGSCOPE_STORE", raising=False)
    at = AppTest.from_file(MAIN, default_timeout=60)
    at.session_state["lang"] = "en"  # these tests read the English wording
    at.session_state["user"] = {"name": "ana", "role": "analyst"}
    at.run()
    at.switch_page("pages/console.py").run()
    assert not at.exception
    at.text_area(key="console_query").input("MATCH (n:Application) DETACH DELETE n")
    at.button(key="console_run").click().run()
    assert "read-only" in at.error[0].value
    assert neo4j_store.counts().nodes["Application"] == 22
    at.text_area(key="console_query").input(
        "MATCH p=(:Person)-[:APPLIED]->(a:Application) RETURN a.key AS app, a.applicant_phone_raw AS phone, p"
    )
    at.button(key="console_run").click().run()
    assert not at.exception
    frame = at.dataframe[0].value
    assert len(frame) == 22
    assert not frame["phone"].str.contains("13800138000").any()  # masked by default
    graph = at.get("component_instance")
    assert len(graph) == 1 and "13800138000" not in graph[0].proto.json_args
    # every query is in the audit log
    from ringscope.app.dashboard import cases

    log = cases.audit_log(neo4j_store)
    assert (log["action"] == "cypher").sum() == 2 and set(log["user"]) == {"ana"}


COMPUTED = [
    # (query returning the repeat applicant's ID or a ring phone, computed so the column says nothing)
    "MATCH (p:Person {key: $id}) RETURN p.key AS note",
    "MATCH (p:Person {key: $id}) RETURN toInteger(left(p.key, 17)) AS note",
    "MATCH (p:Person {key: $id}) RETURN toFloat(left(p.key, 17)) AS note",
    "MATCH (p:Person {key: $id}) RETURN reverse(p.key) AS note",
    "MATCH (p:Person {key: $id}) RETURN apoc.text.join(split(p.key, ''), ' ') AS note",
    "MATCH (p:Person {key: $id}) RETURN reduce(s = '', c IN split(p.key, '') | s + c + ' - ') AS note",
    "MATCH (p:Person {key: $id}) RETURN split(p.key, '') AS note",
    "MATCH (p:Person {key: $id}) RETURN {x: reverse(p.key), n: toInteger(left(p.key, 17))} AS note",
    "MATCH (p:Person {key: $id}) RETURN [p.key, reverse(p.key)] AS note",
    "MATCH (a:Application) WHERE a.applicant_phone_raw = '13800138000' "
    "RETURN toInteger(a.applicant_phone_raw) AS n, reverse(a.applicant_phone_raw) AS r, "
    "apoc.text.join(split(a.applicant_phone_raw, ''), ' ') AS s LIMIT 1",
]


def _digits(text: str) -> str:
    return "".join(ch for ch in str(text) if ch.isdigit())


def test_console_masks_computed_values_by_content(neo4j_store, neo4j_uri, tmp_path, monkeypatch):
    from ringscope.app.dashboard import cases
    from tests.app.browser.store_fixture import build_dashboard_store
    from tests.detectors.builder import person_id

    build_dashboard_store(neo4j_store, tmp_path / "export")
    secret_id = person_id(900)
    monkeypatch.setenv("RINGSCOPE_NEO4J_URI", neo4j_uri)
    monkeypatch.delenv("RINGSCOPE_STORE", raising=False)
    at = AppTest.from_file(MAIN, default_timeout=60)
    at.session_state["lang"] = "en"  # these tests read the English wording
    at.session_state["user"] = {"name": "ana", "role": "analyst"}
    at.run()
    at.switch_page("pages/console.py").run()
    for query in COMPUTED:
        at.toggle(key="console_reveal").set_value(False).run()
        at.text_area(key="console_query").input(query.replace("$id", f"'{secret_id}'"))
        at.button(key="console_run").click().run()
        assert not at.exception and not at.error, (query, at.error)
        frame = at.dataframe[0].value
        assert len(frame) == 1
        value = "13800138000" if "applicant_phone_raw" in query else secret_id
        forms = [value, value[::-1], value[:17], value[:17][::-1]]
        shown = _digits(" ".join(str(v) for v in frame.iloc[0].tolist()))
        assert not any(form[2:-3] in shown for form in forms), (query, shown)  # no more than the ends survive
        # switching "show personal data" on afterwards does not unmask the result run masked
        at.toggle(key="console_reveal").set_value(True).run()
        assert _digits(" ".join(map(str, at.dataframe[0].value.iloc[0].tolist()))) == shown
        # run again with it on (audited): the value shows, so the check above could have failed
        at.button(key="console_run").click().run()
        revealed = _digits(" ".join(str(v) for v in at.dataframe[0].value.iloc[0].tolist()))
        assert any(form[2:-3] in revealed for form in forms), (query, revealed)
    actions = cases.audit_log(neo4j_store)["action"]
    assert (actions == "cypher").sum() == len(COMPUTED) and (actions == "cypher.reveal").sum() == len(COMPUTED)
