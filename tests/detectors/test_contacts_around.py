"""Contact loops and hubs around a few applications, from the book's rows cut to them.

``ContactLoops.around`` answers an application in a loop or naming or owning
a hub phone from the contacts of its loops and the namings of its hub phones
alone (``_found_around``), instead of running the detector over the whole
scope (every contact of every namer of the hub). Held here to that general
path (``scope`` then ``run``) for every such application of a generated book
with planted contact loops and hubs, one at a time and all at once.
"""

from __future__ import annotations

import pytest

from ringscope.detectors.contacts import ContactLoops
from ringscope.detectors.portfolio import Portfolio
from ringscope.graph.embedded import EmbeddedStore
from ringscope.ingest.pipeline import ingest_folder
from ringscope.ingest.synthetic import GeneratorConfig, generate_portfolio


def _general(detector: ContactLoops, portfolio: Portfolio, ids: list[str], stats) -> list:
    local = detector.scope(portfolio, ids, stats)
    wanted = set(ids)
    return [f for f in detector.run(local, statistics=stats) if wanted.intersection(map(str, f.members))]


def _keys(found: list) -> list:
    return [(f.finding_id, f.members, round(f.score, 12), f.summary, [e.detail for e in f.evidence]) for f in found]


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    folder = tmp_path_factory.mktemp("contacts_around")
    generate_portfolio(GeneratorConfig(applications=800, seed=53, contact_loops=0.06), folder / "data")
    store = EmbeddedStore(folder / "store")
    ingest_folder(folder / "data", store, rejects_path=folder / "rejects.csv")
    portfolio = Portfolio(store)
    detector = ContactLoops()
    stats = detector.statistics(portfolio)
    sccs, hub_apps = detector._reach(portfolio, stats)
    reached = sorted(set(map(str, sccs.index)) | hub_apps)
    return portfolio, detector, stats, reached


def test_around_equals_scope_and_run_one_application_at_a_time(book):
    portfolio, detector, stats, reached = book
    held = 0
    for a in reached:
        got = detector.around(portfolio, [a], stats)
        assert got is not None, a
        expected = _general(detector, portfolio, [a], stats)
        assert _keys(got) == _keys(expected), a
        held += bool(expected)
    assert held >= 4  # not vacuous: planted loops and hubs are found


def test_around_equals_scope_and_run_for_a_batch(book):
    portfolio, detector, stats, reached = book
    ids = reached[::2] + portfolio.applications["application_id"].astype(str).tolist()[::7]
    got = detector.around(portfolio, ids, stats)
    assert got and _keys(got) == _keys(_general(detector, portfolio, ids, stats))


def test_hub_edges_in_python_equal_pandas_grouping(book):
    import numpy as np
    import pandas as pd

    from ringscope.detectors.contacts import _ContactBook, _hub_edges_few, _info
    from ringscope.detectors.family import _family_hub_edges_few, _family_hub_edges_grouped

    portfolio, detector, stats, reached = book
    whole = _ContactBook.of(portfolio)
    contacts = whole.contacts.dropna(subset=["application_id", "phone"])
    rng = np.random.default_rng(5)
    apps = portfolio.applications.set_index("application_id", drop=False)
    hubs_seen = 0
    for share in (1.0, 0.8, 0.5):
        cut = contacts[rng.random(len(contacts)) < share]
        for threshold in (stats.threshold, 2):
            got = _hub_edges_few(cut, whole.phones, whole.identity, threshold)
            expected = detector._hub_edges_grouped(
                cut,
                whole.phones,
                whole.identity,
                stats.__class__(threshold, stats.namer_counts, stats.phones_at_least, stats.phones),
            )
            pd.testing.assert_frame_equal(got[0], expected[0])
            pd.testing.assert_frame_equal(got[1], expected[1])
            assert got[2].to_dict() == expected[2].to_dict()
            edges, owners = got[0], got[1]
            hubs_seen += len(edges)
            if len(edges):
                involved = pd.Index(pd.concat([edges["application_id"], owners["owner_app"]]).astype(str).unique())
                info = _info(apps.loc[apps.index.intersection(involved)], whole.identity)
                np.testing.assert_array_equal(
                    _family_hub_edges_few(edges, info, owners), _family_hub_edges_grouped(edges, info, owners)
                )
    assert hubs_seen > 0


def _groups(sccs) -> list[tuple[str, ...]]:
    """The components as sorted tuples of their applications (their numbers only group)."""
    return sorted(tuple(sorted(map(str, g.index))) for _, g in sccs.groupby(sccs))


def test_loops_on_integer_codes_equal_the_text_join(book):
    """The book's loops from integer codes hold the applications of the text
    join's components, grouped alike, in the same order, and the text path
    is what a book without unique ids gets."""
    from ringscope.detectors.contacts import _coded_sccs, _ContactBook, contact_edges, contact_sccs

    portfolio, detector, stats, _ = book
    contacts = _ContactBook.of(portfolio)
    coded = _coded_sccs(portfolio, contacts)
    text = contact_sccs(
        contact_edges(contacts.contacts.dropna(subset=["application_id", "phone"]), contacts.phones, contacts.identity)
    )
    assert coded is not None and len(text) >= 6  # planted loops
    assert coded.index.equals(text.index) and coded.index.dtype == text.index.dtype
    assert _groups(coded) == _groups(text)
    assert detector._loops(portfolio, stats) is detector._loops(portfolio, stats)  # once per portfolio


def test_a_contact_of_an_application_outside_the_book_falls_back_to_the_text_join(book):
    from ringscope.detectors.contacts import _coded_sccs, _ContactBook

    portfolio, _, _, _ = book
    held = _ContactBook.of(portfolio)
    stranger = held.contacts.copy()
    stranger.loc[stranger.index[0], "application_id"] = "NOT-IN-THE-BOOK"
    portfolio.row_maps.pop(("contacts", "application_id"), None)
    odd = type(held)(
        contacts=stranger,
        phones=held.phones,
        identity=held.identity,
        by_phone=held.by_phone,
        by_phone_owned=held.by_phone_owned,
    )
    try:
        assert _coded_sccs(portfolio, odd) is None
    finally:
        portfolio.row_maps.pop(("contacts", "application_id"), None)
