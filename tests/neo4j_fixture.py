"""A real Neo4j for the suite: the one at ``NEO4J_URI``, or one started here.

When ``NEO4J_URI`` is unset the session starts Neo4j Community 5.26 from
``tools/neo4j`` on a free loopback port with a temporary data folder, waits
for Bolt with ``verify_connectivity`` and stops it at the end. Never a mock.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[1] / "tools"


@pytest.fixture(scope="session")
def neo4j_uri(tmp_path_factory):
    uri = os.environ.get("NEO4J_URI")
    if uri:
        yield uri
        return
    sys.path.insert(0, str(TOOLS))
    import neo4j_server

    handle = neo4j_server.start_server(
        port=0, data_dir=tmp_path_factory.mktemp("neo4j-data"), heap="1g", pagecache="256m"
    )
    try:
        yield handle.uri
    finally:
        handle.stop()


@pytest.fixture(scope="session")
def _session_driver(neo4j_uri):
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
    """The session's driver, on a database emptied before the test
    (Community has a single user database)."""
    # CALL ... IN TRANSACTIONS needs an implicit (auto-commit) transaction
    with _session_driver.session(database="neo4j") as session:
        session.run("MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS").consume()
    return _session_driver
