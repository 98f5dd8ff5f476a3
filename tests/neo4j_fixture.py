"""A real Neo4j for the suite: the one at ``NEO4J_URI``, or one started here.

When ``NEO4J_URI`` is unset the session starts Neo4j Community 5.26 from
``tools/neo4j`` (``tools/neo4j_server.py``) on a free loopback port with a
temporary data folder (heap 1g, page cache 256m), waits for Bolt with
``verify_connectivity`` and stops it at the end. Never a mock.

Use it with ``from tests.neo4j_fixture import *`` (or import the three
fixtures by name, as ``tests/conftest.py`` does).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

__all__ = ["neo4j_uri", "_session_driver", "neo4j_driver", "wipe_database", "quote_name"]

TOOLS = Path(__file__).resolve().parents[1] / "tools"
DATABASE = "neo4j"  # Community has one user database


def quote_name(name: str) -> str:
    """A schema name as a Cypher identifier: backtick-quoted, backticks doubled."""
    return "`" + name.replace("`", "``") + "`"


def wipe_database(driver, database: str = DATABASE) -> None:
    """Empty ``database``: every node and relationship, every constraint and
    every index except the built-in token LOOKUP indexes."""
    with driver.session(database=database) as session:
        # CALL ... IN TRANSACTIONS needs an implicit (auto-commit) transaction: session.run
        session.run("MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS").consume()
        # constraints first: dropping one drops the index it owns
        for record in list(session.run("SHOW CONSTRAINTS YIELD name RETURN name")):
            session.run(f"DROP CONSTRAINT {quote_name(record['name'])} IF EXISTS").consume()
        indexes = session.run(
            "SHOW INDEXES YIELD name, type, owningConstraint "
            "WHERE type <> 'LOOKUP' AND owningConstraint IS NULL RETURN name"
        )
        for record in list(indexes):
            session.run(f"DROP INDEX {quote_name(record['name'])} IF EXISTS").consume()


@pytest.fixture(scope="session")
def neo4j_uri(tmp_path_factory):
    """Bolt URI of the suite's Neo4j (``NEO4J_URI`` or one started for the session)."""
    uri = os.environ.get("NEO4J_URI")
    if uri:
        yield uri
        return
    if str(TOOLS) not in sys.path:
        sys.path.insert(0, str(TOOLS))
    import neo4j_server

    handle = neo4j_server.start_server(
        port=0, data_dir=tmp_path_factory.mktemp("neo4j-data"), heap="1g", pagecache="256m", timeout=180
    )
    try:
        from neo4j import GraphDatabase

        with GraphDatabase.driver(handle.uri, auth=None) as driver:
            driver.verify_connectivity()
        yield handle.uri
    finally:
        handle.stop()


@pytest.fixture(scope="session")
def _session_driver(neo4j_uri):
    """One driver for the whole session (the driver is meant to be shared)."""
    from neo4j import GraphDatabase

    auth = None
    if os.environ.get("NEO4J_USER"):
        auth = (os.environ["NEO4J_USER"], os.environ.get("NEO4J_PASSWORD", ""))
    driver = GraphDatabase.driver(neo4j_uri, auth=auth)
    driver.verify_connectivity()
    yield driver
    driver.close()


@pytest.fixture
def neo4j_driver(_session_driver):
    """The session's driver, on a database emptied (data, constraints,
    indexes) before the test."""
    wipe_database(_session_driver)
    yield _session_driver
