"""Device velocity around a few applications, from their identifiers' histories alone.

``DeviceVelocity.around`` answers an application whose device, IP or IP
range carries enough applications from those identifiers' whole histories
(``_found_around``): their windows and the clusters holding the application,
without cutting a scope (and testing the partial histories of every other
identifier in it). Held here to that general path (``scope`` then ``run``)
for every such application of a generated book with planted device farms,
one at a time and all at once.
"""

from __future__ import annotations

import pytest

from ringscope.detectors.portfolio import Portfolio
from ringscope.detectors.velocity import DeviceVelocity
from ringscope.graph.embedded import EmbeddedStore
from ringscope.ingest.pipeline import ingest_folder
from ringscope.ingest.synthetic import GeneratorConfig, generate_portfolio


def _general(detector: DeviceVelocity, portfolio: Portfolio, ids: list[str], stats) -> list:
    local = detector.scope(portfolio, ids, stats)
    wanted = set(ids)
    return [f for f in detector.run(local, statistics=stats) if wanted.intersection(map(str, f.members))]


def _keys(found: list) -> list:
    return [
        (f.finding_id, f.members, round(f.score, 12), f.summary, f.shared, [e.detail for e in f.evidence])
        for f in found
    ]


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    folder = tmp_path_factory.mktemp("velocity_around")
    generate_portfolio(GeneratorConfig(applications=800, seed=71, device_farms=0.06), folder / "data")
    store = EmbeddedStore(folder / "store")
    ingest_folder(folder / "data", store, rejects_path=folder / "rejects.csv")
    portfolio = Portfolio(store)
    detector = DeviceVelocity()
    return portfolio, detector, detector.statistics(portfolio)


def test_around_equals_scope_and_run_one_application_at_a_time(book):
    portfolio, detector, stats = book
    answered = held = 0
    for a in portfolio.applications["application_id"].astype(str).tolist():
        got = detector.around(portfolio, [a], stats)
        assert got is not None, a
        expected = _general(detector, portfolio, [a], stats)
        assert _keys(got) == _keys(expected), a
        answered += bool(got)
        held += bool(expected)
    assert held >= 4 and answered == held  # not vacuous: planted farms are found


def test_around_equals_scope_and_run_for_a_batch(book):
    portfolio, detector, stats = book
    ids = portfolio.applications["application_id"].astype(str).tolist()[::5]
    got = detector.around(portfolio, ids, stats)
    assert got and _keys(got) == _keys(_general(detector, portfolio, ids, stats))
