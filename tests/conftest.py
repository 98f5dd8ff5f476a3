"""Shared fixtures: a store of each kind, so one contract suite runs on both, and one trained book."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


@dataclass(frozen=True)
class TrainedBook:
    """A generated book ingested, detected (every detector) and trained once per session.

    ``data`` is the generator's export (with ``truth/``), ``store_path`` the
    embedded store (its models in ``store_path/models``), ``result`` the
    ``TrainResult``. Tests that write must work on a copy: :func:`trained_store`.
    """

    data: Path
    store_path: Path
    result: Any


@pytest.fixture(scope="session")
def trained_book(tmp_path_factory) -> TrainedBook:
    from ringscope.detectors.risk.scoring import TrainingConfig
    from ringscope.detectors.risk.training import train
    from ringscope.detectors.runner import run_detectors, save_findings
    from ringscope.graph.embedded import EmbeddedStore
    from ringscope.ingest.pipeline import ingest_folder
    from ringscope.ingest.synthetic import GeneratorConfig, generate_portfolio

    root = tmp_path_factory.mktemp("trained-book")
    generate_portfolio(GeneratorConfig(applications=2500, seed=5), root / "data")
    store = EmbeddedStore(root / "store")
    ingest_folder(root / "data", store, rejects_path=root / "rejects.csv")
    save_findings(store, run_detectors(store))
    result = train(store, TrainingConfig())
    store.close()
    return TrainedBook(root / "data", root / "store", result)


@pytest.fixture
def trained_store(trained_book, tmp_path):
    """A private copy of the session's trained store (findings, scores, models), to write into."""
    from ringscope.graph.embedded import EmbeddedStore

    copy = tmp_path / "trained-store"
    shutil.copytree(trained_book.store_path, copy)
    store = EmbeddedStore(copy)
    yield store
    store.close()
