"""The Cypher console against a real Neo4j, attacked: every way found to read
a file, fetch a URL, run Cypher from a string, administer the server or
outlast the time limit is refused from the plan, nothing is read, no request
is made. Legitimate read queries (the documented analyst queries among them)
still pass.

A secret file is planted where the server could read it, and a tiny HTTP
server listens on loopback; after every test the secret has appeared in no
result or message and the HTTP server has received no request.
"""

from __future__ import annotations

import time
import uuid

import pytest

from ringscope.app.dashboard import cypher
from tests.loopback import recording_http_server

pytestmark = pytest.mark.neo4j


@pytest.fixture(scope="module")
def http_server():
    with recording_http_server() as server:
        yield server


@pytest.fixture(scope="module")
def secret(tmp_path_factory):
    """A file the server's user can read, holding a marker that must never come back."""
    marker = f"RINGSCOPE-SECRET-{uuid.uuid4().hex}"
    path = tmp_path_factory.mktemp("secret") / "passwd"
    path.write_text(f"root:{marker}:0:0\n", encoding="utf-8")
    return path, marker


@pytest.fixture
def attack(neo4j_store, http_server, secret):
    """Run a query through the console; return the refusal message. Checks
    afterwards that nothing was read and no request was made."""
    path, marker = secret
    seen: list[str] = []

    def run(template: str) -> str:
        query = template.format(file=f"file://{path}", url=http_server.url, path=path)
        with pytest.raises(cypher.QueryRefused) as refused:
            result = cypher.run_read_only(neo4j_store.driver, neo4j_store.database, query, timeout=5)
            seen.append(repr(result.rows))
        message = str(refused.value)
        seen.append(message)
        # refused by the console's own check, before the query ran (a "Neo.…" code would be the server's)
        assert message.startswith(("Refused", "The query does not compile")), message
        return message

    yield run
    assert not any(marker in text for text in seen), "the secret file was read"
    assert http_server.requests == [], f"the console made HTTP requests: {http_server.requests}"


FILE_AND_URL = [
    "LOAD CSV FROM '{file}' AS l RETURN l",
    "LOAD/**/CSV FROM '{file}' AS l RETURN l",
    "load  csv from '{file}' as l return l",
    "LoAd/*x*/Csv FROM '{file}' AS l RETURN l",
    "LOAD\n// a comment\nCSV FROM '{file}' AS l RETURN l",
    "\\u004cOAD CSV FROM '{file}' AS l RETURN l",
    "MATCH (n) WITH count(n) AS c LOAD CSV FROM '{file}' AS l RETURN l, c",
    "CALL () {{ LOAD CSV FROM '{file}' AS l RETURN l }} RETURN l",
    "LOAD CSV WITH HEADERS FROM '{url}/?data=secret' AS l RETURN l",
    "LOAD/**/CSV FROM '{url}/' AS l RETURN l",
    "LOAD CSV FROM 'file:///etc/passwd' AS l RETURN l",
    "LOAD CSV FROM 'passwd' AS l RETURN l",
    "CALL apoc.load.json('{url}/j') YIELD value RETURN value",
    "CALL apoc.load.json('{file}') YIELD value RETURN value",
    "CALL `apoc`.`load`.`json`('{url}/j') YIELD value RETURN value",
    "CALL `apoc.load`.json('{url}/j') YIELD value RETURN value",
    "CALL `apoc.load.json`('{url}/j') YIELD value RETURN value",
    "CALL apoc./**/load.json('{url}/j') YIELD value RETURN value",
    "call APOC.LOAD.JSON('{url}/j')",
    "CALL apoc.load.jsonParams('{url}/j', {{}}, null) YIELD value RETURN value",
    "CALL apoc.load.xml('{url}/x') YIELD value RETURN value",
    "CALL apoc.import.csv([{{fileName: '{file}', labels: ['X']}}], [], {{}})",
    "CALL apoc.import.json('{file}')",
    "CALL apoc.export.csv.all('out.csv', {{}})",
    "CALL apoc.export.csv.all(null, {{stream: true}}) YIELD data RETURN data",
    "CALL apoc.export.json.all(null, {{stream: true}})",
    "CALL apoc.log.stream('debug.log')",
    "CALL apoc.cypher.run('LOAD CSV FROM \"{file}\" AS l RETURN l', {{}}) YIELD value RETURN value",
    "RETURN apoc.cypher.runFirstColumnSingle('LOAD CSV FROM \"{file}\" AS l RETURN l', {{}}) AS x",
    "RETURN `apoc`.`cypher`.runFirstColumnSingle('RETURN 1', {{}}) AS x",
    "CALL apoc.when(true, 'LOAD CSV FROM \"{file}\" AS l RETURN l', '') YIELD value RETURN value",
    "CALL apoc.graph.fromCypher('MATCH (n) RETURN n', {{}}, 'g', {{}})",
    "CALL apoc.spatial.geocode('Beijing')",
]

ADMIN_AND_TIME = [
    "SHOW TRANSACTIONS",
    "show transactions yield * return *",
    "TERMINATE TRANSACTIONS 'neo4j-transaction-1'",
    "SHOW SETTINGS",
    "SHOW SETTINGS YIELD name, value WHERE name CONTAINS 'auth' RETURN name, value",
    "SHOW PROCEDURES",
    "SHOW FUNCTIONS",
    "SHOW INDEXES",
    "SHOW CONSTRAINTS",
    "SHOW USERS",
    "SHOW DATABASES",
    "CREATE USER evil SET PASSWORD 'long-enough-1'",
    "ALTER USER neo4j SET PASSWORD 'long-enough-2'",
    "STOP DATABASE neo4j",
    "CALL dbms.listConfig()",
    "CALL dbms.components()",
    "CALL dbms.setConfigValue('db.logs.query.enabled', 'OFF')",
    "CALL db.clearQueryCaches()",
    "CALL db.createLabel('Hacked')",
    "CALL tx.setMetaData({{x: 1}})",
    "CALL apoc.cypher.runTimeboxed('CALL apoc.util.sleep(120000)', {{}}, 120000)",
    "CALL apoc.util.sleep(120000)",
    "CALL apoc.periodic.iterate('MATCH (n) RETURN n', 'SET n.hacked = true', {{}})",
    "CALL apoc.periodic.commit('MATCH (n) SET n.hacked = true RETURN count(*)', {{}})",
    "CALL apoc.trigger.list()",
    "CALL () {{ MATCH (n) RETURN n }} IN TRANSACTIONS RETURN n",
    "CALL gds.graph.project('g', '*', '*')",
]


@pytest.mark.parametrize("query", FILE_AND_URL)
def test_files_and_urls_are_refused_and_nothing_is_read(attack, query):
    attack(query)


@pytest.mark.parametrize("query", ADMIN_AND_TIME)
def test_admin_commands_and_unbounded_calls_are_refused(attack, neo4j_store, query):
    started = time.monotonic()
    attack(query)
    assert time.monotonic() - started < 10  # refused from the plan, not after 120 s
    assert (
        "Hacked"
        not in neo4j_store.driver.execute_query(
            "CALL db.labels() YIELD label RETURN collect(label) AS l", database_=neo4j_store.database
        )[0][0]["l"]
    )
    users, _, _ = neo4j_store.driver.execute_query(
        "SHOW USERS YIELD user RETURN collect(user) AS u", database_="system"
    )
    assert "evil" not in users[0]["u"]


def test_refusals_name_the_reason(attack):
    assert "LOAD CSV" in attack("LOAD/**/CSV FROM '{file}' AS l RETURN l")
    assert "administration" in attack("TERMINATE TRANSACTIONS 'neo4j-transaction-1'")
    assert "administration" in attack("SHOW SETTINGS")
    refused = attack("CALL apoc.cypher.runTimeboxed('RETURN 1', {{}}, 1000)")
    assert "apoc.cypher.runTimeboxed" in refused or "does not compile" in refused
    assert "read-only" in attack("MATCH (n) SET n.x = 1")


@pytest.fixture
def loaded(neo4j_store, tmp_path):
    from ringscope.ingest.pipeline import ingest_folder
    from tests.sample_data import write_sample

    ingest_folder(write_sample(tmp_path / "export"), neo4j_store, rejects_path=tmp_path / "r.csv")
    return neo4j_store


READS = [
    "MATCH (a:Application) RETURN a.key AS k ORDER BY k SKIP 1 LIMIT 3",
    "MATCH (a:Application {key: 'A1'}) RETURN a",
    "MATCH (a:Application) WHERE a.key STARTS WITH 'A' RETURN count(*) AS n",
    "OPTIONAL MATCH (a:Application)-[:HAS_PHONE]->(p) RETURN a.key, p.key",
    "MATCH (a:Application) RETURN a.key AS k UNION MATCH (p:Phone) RETURN p.key AS k",
    "MATCH (a:Application) WHERE EXISTS { (a)-[:HAS_PHONE]->() } RETURN a.key",
    "MATCH (a:Application) RETURN a.key, COUNT { (a)--() } AS degree",
    "MATCH (a:Application) RETURN a.key, [(a)-[:HAS_PHONE]->(p) | p.key] AS phones",
    "MATCH (a:Application) CALL (a) { MATCH (a)-->(x) RETURN count(x) AS n } RETURN a.key, n",
    "MATCH p = (a:Application)-[*1..3]-(b:Application) WHERE a.key < b.key RETURN length(p) LIMIT 5",
    "MATCH (a:Application {key: 'A1'}), (b:Application {key: 'A2'}) MATCH p = shortestPath((a)-[*..6]-(b)) RETURN p",
    "MATCH (a:Application {key: 'A1'}), (b:Application {key: 'A2'}) "
    "MATCH p = allShortestPaths((a)-[*..6]-(b)) RETURN p",
    "MATCH p = SHORTEST 1 (a:Application)-[]-+(b:Application) WHERE a.key = 'A1' AND b.key = 'A2' RETURN p",
    "MATCH (a:Application)((x)-[:HAS_PHONE]->(y)){1,2} RETURN count(*)",
    "UNWIND range(1, 5) AS i WITH i WHERE i % 2 = 1 RETURN collect(i) AS odd",
    "MATCH (a:Application) RETURN DISTINCT a.label, count(*) ORDER BY count(*) DESC",
    "MATCH (a:Application) RETURN CASE WHEN a.amount > 100000 THEN 'big' ELSE 'small' END AS size, count(*)",
    "MATCH (a:Application) RETURN apoc.text.join(collect(a.key), ',') AS keys",
    "CALL db.labels() YIELD label RETURN label",
    "CALL db.schema.visualization()",
    "MATCH ()-[r]->() RETURN type(r), count(*)",
    "MATCH (n) RETURN labels(n), count(*)",
]


@pytest.mark.parametrize("query", READS)
def test_read_queries_still_run(loaded, query):
    if "apoc." in query and not _has_apoc(loaded):
        pytest.skip("APOC is not loaded on this server")
    result = cypher.run_read_only(loaded.driver, loaded.database, query)
    assert result.query_type == "r"


def test_the_documented_analyst_queries_pass_the_console(loaded):
    from tests.graph.test_analyst_queries import doc_queries

    params = {"id": "110101199003071234", "a": "A1", "b": "A2", "application": "A1"}
    for tag, query in doc_queries().items():
        used = {k: v for k, v in params.items() if f"${k}" in query}
        result = cypher.run_read_only(loaded.driver, loaded.database, query, params=used)
        assert result.query_type == "r", tag


def _has_apoc(store) -> bool:
    records, _, _ = store.driver.execute_query(
        "SHOW FUNCTIONS YIELD name WHERE name = 'apoc.version' RETURN count(*) AS n", database_=store.database
    )
    return records[0]["n"] == 1


@pytest.fixture
def blobs(neo4j_store):
    neo4j_store.driver.execute_query(
        "UNWIND range(0, 39) AS i CREATE (:Blob {key: 'b' + i, note: $note})",
        note="x" * 100_000,
        database_=neo4j_store.database,
    )
    return neo4j_store


def test_one_huge_row_is_cut_in_bytes(blobs):
    result = cypher.run_read_only(
        blobs.driver, blobs.database, "MATCH (p:Blob) RETURN collect(p.note) AS notes", max_cell_bytes=250_000
    )
    assert len(result.rows) == 1
    notes = result.rows[0][0]
    assert sum(len(n) for n in notes if n != "…") <= 250_000 and notes[-1] == "…"
    assert result.cut_cells == 1 and "1 cell shortened" in result.notice
    assert result.bytes <= 250_000


def test_many_rows_stop_at_the_byte_budget(blobs):
    result = cypher.run_read_only(
        blobs.driver,
        blobs.database,
        "MATCH (p:Blob) RETURN p.key AS k, p.note AS note",
        max_bytes=1_000_000,
        max_cell_bytes=150_000,
    )
    assert result.byte_capped and result.truncated
    assert 9 <= len(result.rows) <= 11  # 100 kB each, 1 MB budget
    assert "byte limit" in result.notice
    whole = cypher.run_read_only(blobs.driver, blobs.database, "MATCH (p:Blob) RETURN p.key AS k")
    assert len(whole.rows) == 40 and not whole.truncated and whole.notice == ""


def test_a_large_node_becomes_short_text(blobs):
    result = cypher.run_read_only(blobs.driver, blobs.database, "MATCH (p:Blob) RETURN p LIMIT 1", max_cell_bytes=1_000)
    assert isinstance(result.rows[0][0], str) and result.rows[0][0].startswith("(Blob b")
    assert result.cut_cells == 1 and not result.graph_nodes
