"""The rings' plain-Python scoring of a scope's few rings gives what the group-by scoring gives."""

from __future__ import annotations

import pytest

from ringscope.detectors import rings
from ringscope.detectors.portfolio import Portfolio
from ringscope.detectors.rings import SharedIdentifierRings
from ringscope.graph.embedded import EmbeddedStore


def _as_data(findings) -> list:
    return [(f.finding_id, f.members, f.score, f.evidence, f.entities, f.shared, f.summary) for f in findings]


@pytest.fixture(scope="module")
def book(trained_book):
    store = EmbeddedStore(trained_book.store_path)
    yield Portfolio(store)
    store.close()


def test_small_path_equals_group_by_path_over_the_book(book, monkeypatch):
    detector = SharedIdentifierRings()
    monkeypatch.setattr(rings, "SMALL_RINGS", 0)
    grouped = detector.run(book)
    monkeypatch.setattr(rings, "SMALL_RINGS", 10**9)
    small = detector.run(book)
    assert len(grouped) >= 5  # the book has rings to compare
    assert _as_data(small) == _as_data(grouped)


def test_small_path_equals_group_by_path_in_scopes(book, monkeypatch):
    detector = SharedIdentifierRings()
    stats = detector.statistics(book)
    members = sorted({m for f in detector.run(book, statistics=stats) for m in f.members})[::7][:12]
    assert members
    for app in members:
        local = detector.scope(book, [app], stats)
        monkeypatch.setattr(rings, "SMALL_RINGS", 0)
        grouped = detector.run(local, statistics=stats)
        monkeypatch.setattr(rings, "SMALL_RINGS", 10**9)
        assert _as_data(detector.run(local, statistics=stats)) == _as_data(grouped)


def test_small_components_equal_the_sparse_labelling(book, monkeypatch):
    detector = SharedIdentifierRings()
    stats = detector.statistics(book)
    links = rings.entity_links(book)
    monkeypatch.setattr(rings, "SMALL_RINGS", 0)
    grouped = rings.ring_components(links, stats)
    monkeypatch.setattr(rings, "SMALL_RINGS", 10**9)
    small = rings.ring_components(links, stats)
    assert grouped.nunique() >= 5
    assert small.index.tolist() == grouped.index.tolist()
    assert small.tolist() == grouped.tolist()
