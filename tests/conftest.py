"""Shared fixtures: a store of each kind, so one contract suite runs on both."""

from __future__ import annotations

import pytest

from tests.neo4j_fixture import _session_driver, neo4j_driver, neo4j_server, neo4j_uri  # noqa: F401  (fixtures)


@pytest.fixture
def embedded_store(tmp_path):
    from ringscope.graph.embedded import EmbeddedStore

    store = EmbeddedStore(tmp_path / "store")
    yield store
    store.close()


@pytest.fixture
def neo4j_store(neo4j_driver, neo4j_uri):  # noqa: F811
    """A Neo4jStore on the suite's real server, emptied before the test."""
    from ringscope.graph.neo4j_store import Neo4jStore

    store = Neo4jStore(neo4j_uri)
    store.clear()
    yield store
    store.close()


@pytest.fixture(params=["embedded", pytest.param("neo4j", marks=pytest.mark.neo4j)])
def store(request):
    """Each test using ``store`` runs once per store kind."""
    return request.getfixturevalue(f"{request.param}_store")
