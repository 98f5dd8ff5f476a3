"""The local Neo4j launcher really serves Neo4j Community 5.26 on loopback,
with APOC core and OpenGDS loaded.

The fixtures (``neo4j_uri``, ``neo4j_driver``) come from ``tests/conftest.py``,
which imports them from ``tests/neo4j_fixture.py``; importing them here again
would start a second server for this module.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.neo4j_fixture import quote_name

pytestmark = pytest.mark.neo4j

TOOLS = Path(__file__).resolve().parents[2] / "tools"
# apoc/gds are checked only against the server this suite starts from
# tools/neo4j (an external NEO4J_URI may be plain Neo4j)
OWN_SERVER = not os.environ.get("NEO4J_URI")


def _query(driver, cypher, **params):
    records, _, _ = driver.execute_query(cypher, params, database_="neo4j")
    return records


def test_server_answers_return_1(neo4j_driver):
    assert _query(neo4j_driver, "RETURN 1 AS one")[0]["one"] == 1


def test_server_is_community_5_26(neo4j_driver):
    component = _query(neo4j_driver, "CALL dbms.components() YIELD name, versions, edition RETURN *")[0]
    assert component["name"] == "Neo4j Kernel"
    assert component["edition"] == "community"
    assert component["versions"][0].startswith("5.26.")


@pytest.mark.skipif(not OWN_SERVER, reason="checks the server started from tools/neo4j")
def test_bolt_listens_on_loopback_only(neo4j_driver, neo4j_uri):
    value = _query(neo4j_driver, "CALL dbms.listConfig('server.bolt.listen_address') YIELD value RETURN value")
    port = urlparse(neo4j_uri).port
    assert value[0]["value"] == f"127.0.0.1:{port}"
    assert _query(neo4j_driver, "CALL dbms.listConfig('server.http.enabled') YIELD value RETURN value")[0]["value"] in (
        "false",
        False,
    )
    # reachable on loopback, refused on this machine's own non-loopback addresses
    with socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
    except socket.gaierror:
        infos = []
    others = {info[4][0] for info in infos if not info[4][0].startswith("127.")}
    for address in others:
        with socket.socket() as s:
            s.settimeout(2)
            assert s.connect_ex((address, port)) != 0, f"Bolt answers on {address}"


def test_write_then_read_round_trip(neo4j_driver):
    neo4j_driver.execute_query(
        "CREATE (:Probe {name: $name})-[:CALLS {n: 3}]->(:Probe {name: $other})",
        name="张伟",
        other="李娜",
        database_="neo4j",
    )
    records = _query(neo4j_driver, "MATCH (a:Probe)-[r:CALLS]->(b:Probe) RETURN a.name AS a, r.n AS n, b.name AS b")
    assert [(r["a"], r["n"], r["b"]) for r in records] == [("张伟", 3, "李娜")]


def test_database_is_emptied_between_tests(neo4j_driver):
    assert _query(neo4j_driver, "MATCH (n) RETURN count(n) AS c")[0]["c"] == 0
    assert _query(neo4j_driver, "SHOW CONSTRAINTS YIELD name RETURN count(*) AS c")[0]["c"] == 0
    assert _query(neo4j_driver, "SHOW INDEXES YIELD type WHERE type <> 'LOOKUP' RETURN count(*) AS c")[0]["c"] == 0


def test_wipe_drops_constraints_and_indexes_with_awkward_names(neo4j_driver):
    from tests.neo4j_fixture import wipe_database

    neo4j_driver.execute_query(
        f"CREATE CONSTRAINT {quote_name('phone key`; DROP')} IF NOT EXISTS FOR (p:Phone) REQUIRE p.key IS UNIQUE",
        database_="neo4j",
    )
    neo4j_driver.execute_query(
        f"CREATE INDEX {quote_name('名字 idx')} IF NOT EXISTS FOR (p:Person) ON (p.name)", database_="neo4j"
    )
    neo4j_driver.execute_query("CREATE (:Phone {key: '+8613800138000'})", database_="neo4j")
    wipe_database(neo4j_driver)
    assert _query(neo4j_driver, "MATCH (n) RETURN count(n) AS c")[0]["c"] == 0
    assert _query(neo4j_driver, "SHOW CONSTRAINTS YIELD name RETURN count(*) AS c")[0]["c"] == 0
    assert _query(neo4j_driver, "SHOW INDEXES YIELD type WHERE type <> 'LOOKUP' RETURN count(*) AS c")[0]["c"] == 0
    # the built-in token lookup indexes stay
    assert _query(neo4j_driver, "SHOW INDEXES YIELD type WHERE type = 'LOOKUP' RETURN count(*) AS c")[0]["c"] == 2


def _plugins_built() -> bool:
    sys.path.insert(0, str(TOOLS))
    try:
        import neo4j_server
    finally:
        sys.path.remove(str(TOOLS))
    return neo4j_server.plugins_dir() is not None


needs_plugins = pytest.mark.skipif(
    not OWN_SERVER or not _plugins_built(),
    reason="APOC/OpenGDS are only checked on the server built from tools/neo4j with plugins",
)


@needs_plugins
def test_apoc_core_is_loaded(neo4j_driver):
    records = _query(neo4j_driver, "CALL apoc.help('text') YIELD name RETURN name")
    assert len(records) > 10
    assert _query(neo4j_driver, "RETURN apoc.version() AS v")[0]["v"].startswith("5.26.")
    assert _query(neo4j_driver, "RETURN apoc.text.clean($s) AS t", s="Hé-llo")[0]["t"] == "hello"


@needs_plugins
def test_opengds_is_loaded_and_writes(neo4j_driver):
    assert _query(neo4j_driver, "RETURN gds.version() AS v")[0]["v"].startswith("2.13.")
    neo4j_driver.execute_query("UNWIND range(1, 6) AS i CREATE (:Acct {id: i})", database_="neo4j")
    neo4j_driver.execute_query(
        "MATCH (a:Acct), (b:Acct) WHERE b.id = a.id + 1 AND a.id <> 3 CREATE (a)-[:PAYS]->(b)",
        database_="neo4j",
    )
    _query(neo4j_driver, "CALL gds.graph.project('ring_test', 'Acct', 'PAYS') YIELD graphName RETURN graphName")
    try:
        stream = _query(
            neo4j_driver,
            "CALL gds.wcc.stream('ring_test') YIELD componentId RETURN count(DISTINCT componentId) AS c",
        )
        assert stream[0]["c"] == 2
        # write mode needs open-write-services on the classpath
        written = _query(
            neo4j_driver, "CALL gds.wcc.write('ring_test', {writeProperty: 'ring'}) YIELD componentCount RETURN *"
        )
        assert written[0]["componentCount"] == 2
        assert _query(neo4j_driver, "MATCH (a:Acct) RETURN count(DISTINCT a.ring) AS c")[0]["c"] == 2
    finally:
        _query(neo4j_driver, "CALL gds.graph.drop('ring_test', false) YIELD graphName RETURN graphName")
