"""The local Neo4j launcher really serves Neo4j Community 5.26 on loopback."""

from __future__ import annotations

import socket
from urllib.parse import urlparse

import pytest

pytestmark = pytest.mark.neo4j


def test_server_is_community_5_26(neo4j_driver):
    records, _, _ = neo4j_driver.execute_query("CALL dbms.components() YIELD name, versions, edition RETURN *")
    component = records[0]
    assert component["edition"] == "community"
    assert component["versions"][0].startswith("5.26.")


def test_bolt_listens_on_loopback_only(neo4j_driver, neo4j_uri):
    records, _, _ = neo4j_driver.execute_query(
        "CALL dbms.listConfig('server.bolt.listen_address') YIELD value RETURN value"
    )
    assert records[0]["value"].startswith("127.0.0.1:")
    port = urlparse(neo4j_uri).port
    # reachable on loopback, refused on any other local address
    with socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
    others = {info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)}
    others.discard("127.0.0.1")
    others = {a for a in others if not a.startswith("127.")}
    for address in others:
        with socket.socket() as s:
            s.settimeout(2)
            assert s.connect_ex((address, port)) != 0, f"Bolt answers on {address}"


def test_write_then_read_round_trip(neo4j_driver):
    neo4j_driver.execute_query("CREATE (:Probe {name: $name})", name="张伟", database_="neo4j")
    records, _, _ = neo4j_driver.execute_query("MATCH (p:Probe) RETURN p.name AS name", database_="neo4j")
    assert [r["name"] for r in records] == ["张伟"]


def test_database_is_emptied_between_tests(neo4j_driver):
    records, _, _ = neo4j_driver.execute_query("MATCH (n) RETURN count(n) AS c", database_="neo4j")
    assert records[0]["c"] == 0
