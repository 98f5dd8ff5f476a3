"""Broker rings around a few applications from the book's groups, found once.

``BrokerRings.around`` answers every application with an agent from the
candidate groups of the whole book (found once per portfolio and
statistics) and each group scored once, instead of cutting a scope out of
the agent's whole book and running the detector on it. Held here to that
general path (``scope`` then ``run``) for every application of a generated
book with planted broker rings, one at a time and all at once.
"""

from __future__ import annotations

import pytest

from ringscope.detectors.brokers import BrokerRings
from ringscope.detectors.portfolio import Portfolio
from ringscope.graph.embedded import EmbeddedStore
from ringscope.ingest.pipeline import ingest_folder
from ringscope.ingest.synthetic import GeneratorConfig, generate_portfolio


def _general(detector: BrokerRings, portfolio: Portfolio, ids: list[str], stats) -> list:
    local = detector.scope(portfolio, ids, stats)
    wanted = set(ids)
    return [f for f in detector.run(local, statistics=stats) if wanted.intersection(map(str, f.members))]


def _same(got: list, expected: list) -> bool:
    def key(f):
        return (f.finding_id, f.members, round(f.score, 12), f.summary, [e.detail for e in f.evidence])

    return [key(f) for f in got] == [key(f) for f in expected]


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    folder = tmp_path_factory.mktemp("brokers_around")
    generate_portfolio(GeneratorConfig(applications=700, seed=37, broker_rings=0.08), folder / "data")
    store = EmbeddedStore(folder / "store")
    ingest_folder(folder / "data", store, rejects_path=folder / "rejects.csv")
    portfolio = Portfolio(store)
    detector = BrokerRings()
    return portfolio, detector, detector.statistics(portfolio)


def test_around_equals_scope_and_run_one_application_at_a_time(book):
    portfolio, detector, stats = book
    apps = portfolio.applications
    with_agent = apps.loc[apps["agent"].notna(), "application_id"].astype(str).tolist()
    held = 0
    for a in with_agent:
        got = detector.around(portfolio, [a], stats)
        assert got is not None, a
        expected = _general(detector, portfolio, [a], stats)
        assert _same(got, expected), a
        held += bool(expected)
    assert held >= 4  # not vacuous: planted groups are found
    assert "broker_groups" in portfolio.derived


def test_around_equals_scope_and_run_for_a_batch(book):
    portfolio, detector, stats = book
    ids = portfolio.applications["application_id"].astype(str).tolist()[::3]
    got = detector.around(portfolio, ids, stats)
    assert got and _same(got, _general(detector, portfolio, ids, stats))


def test_new_statistics_find_the_groups_again(book):
    portfolio, detector, stats = book
    ids = portfolio.applications["application_id"].astype(str).tolist()
    detector.around(portfolio, ids[:1], stats)
    other = detector.statistics(portfolio)
    detector.around(portfolio, ids[:1], other)
    assert portfolio.derived["broker_groups"][0] is other


def test_warm_scores_every_group_and_changes_no_answer(book):
    portfolio, detector, stats = book
    ids = portfolio.applications["application_id"].astype(str).tolist()
    fresh = BrokerRings().statistics(portfolio)  # a book of its own: none of its groups scored yet
    detector.warm(portfolio, fresh)
    book_of = portfolio.derived["broker_groups"][2]
    assert len(book_of[3]) == len(book_of[2]) - 1 > 0
    for a in ids[::4]:
        assert _same(detector.around(portfolio, [a], fresh), _general(detector, portfolio, [a], fresh)), a
