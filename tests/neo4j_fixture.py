"""A real Neo4j for the suite: the one at ``NEO4J_URI``, or one started here.

When ``NEO4J_URI`` is unset the session starts Neo4j Community 5.26 from
``tools/neo4j`` (``tools/neo4j_server.py``) on a free loopback port with a
temporary data folder (heap 1g, page cache 256m), auth ON (the launcher's
generated password), waits for Bolt with ``verify_connectivity`` and stops it
at the end. Never a mock.

For the session, ``RINGSCOPE_NEO4J_USER`` and ``RINGSCOPE_NEO4J_PASSWORD_FILE``
point at that password in ``os.environ``, so every ``Neo4jStore(uri)``, the
CLI run in-process and every subprocess (CLI, dashboard) logs in the way a
user's would. With ``NEO4J_URI`` set, ``NEO4J_USER``/``NEO4J_PASSWORD`` (if
any) are passed on the same way.

Use it with ``from tests.neo4j_fixture import *`` (or import the fixtures by
name, as ``tests/conftest.py`` does).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

__all__ = ["neo4j_server", "neo4j_uri", "_session_driver", "neo4j_driver", "wipe_database", "quote_name"]

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


def _client_env() -> dict[str, str]:
    """Credentials for an external server (``NEO4J_USER``/``NEO4J_PASSWORD``)."""
    if not os.environ.get("NEO4J_USER"):
        return {}
    return {
        "RINGSCOPE_NEO4J_USER": os.environ["NEO4J_USER"],
        "RINGSCOPE_NEO4J_PASSWORD": os.environ.get("NEO4J_PASSWORD", ""),
    }


@pytest.fixture(scope="session")
def neo4j_server(tmp_path_factory):
    """The suite's own server (a ``ServerHandle``: ``uri``, ``data_dir``,
    ``password_file``, ``auth()``), or None when ``NEO4J_URI`` names another.

    Sets the ``RINGSCOPE_NEO4J_*`` credentials in ``os.environ`` for the
    session and restores the previous values at the end.
    """
    if os.environ.get("NEO4J_URI"):
        handle, env = None, _client_env()
    else:
        if str(TOOLS) not in sys.path:
            sys.path.insert(0, str(TOOLS))
        import neo4j_server as launcher

        handle = launcher.start_server(
            port=0, data_dir=tmp_path_factory.mktemp("neo4j-data"), heap="1g", pagecache="256m", timeout=180
        )
        env = handle.client_env()
    saved = {name: os.environ.get(name) for name in _CREDENTIALS}
    for name in _CREDENTIALS:
        os.environ.pop(name, None)
    os.environ.update(env)
    try:
        yield handle
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if handle is not None:
            handle.stop()


_CREDENTIALS = ("RINGSCOPE_NEO4J_USER", "RINGSCOPE_NEO4J_PASSWORD", "RINGSCOPE_NEO4J_PASSWORD_FILE")


@pytest.fixture(scope="session")
def neo4j_uri(neo4j_server):
    """Bolt URI of the suite's Neo4j (``NEO4J_URI`` or one started for the session)."""
    return neo4j_server.uri if neo4j_server is not None else os.environ["NEO4J_URI"]


@pytest.fixture(scope="session")
def _session_driver(neo4j_uri):
    """One driver for the whole session (the driver is meant to be shared),
    logged in with the session's credentials."""
    from neo4j import GraphDatabase

    from ringscope.graph.neo4j_auth import auth_from_env

    driver = GraphDatabase.driver(neo4j_uri, auth=auth_from_env())
    driver.verify_connectivity()
    yield driver
    driver.close()


@pytest.fixture
def neo4j_driver(_session_driver):
    """The session's driver, on a database emptied (data, constraints,
    indexes) before the test."""
    wipe_database(_session_driver)
    yield _session_driver
