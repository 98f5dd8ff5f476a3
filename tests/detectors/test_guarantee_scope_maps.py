"""The guarantee circles' scope by row maps holds what the passes over the book held."""

from __future__ import annotations

import pytest

from ringscope.detectors import guarantees
from ringscope.detectors.guarantees import GuaranteeCircles
from ringscope.detectors.portfolio import Portfolio
from ringscope.graph.embedded import EmbeddedStore


@pytest.fixture(scope="module")
def book(trained_book):
    store = EmbeddedStore(trained_book.store_path)
    yield Portfolio(store)
    store.close()


def _scope_by_passes(detector, portfolio, app_ids, stats):
    """The scope as it was computed before the row maps (isin over every edge, unit and application)."""
    g, _ = detector._reach(portfolio, stats)
    targets = [str(a) for a in app_ids]
    comp = g["src"].map(stats.components)
    touched = set(comp[guarantees.in_set(g["application_id"], targets)].dropna().tolist())
    apps = portfolio.applications
    mine = apps.iloc[portfolio.rows_where("applications", "application_id", targets)]
    touched |= set(detector._borrower_units(portfolio, mine, stats.units).map(stats.components).dropna().tolist())
    rows = g[comp.isin(touched).to_numpy(dtype=bool)]
    units = stats.components.index[stats.components.isin(touched)]
    borrowers = detector._unit_borrowers(portfolio, apps, stats.units, units)
    return sorted(set(rows["application_id"].dropna().astype(str)) | set(borrowers.astype(str))), list(rows.index)


def test_scope_by_row_maps_equals_scope_by_passes(book):
    detector = GuaranteeCircles()
    stats = detector.statistics(book)
    g, reach = detector._reach(book, stats)
    in_circles = sorted({m for f in detector.run(book, statistics=stats) for m in f.members})
    assert in_circles  # the book has circles
    probes = in_circles[::3][:10] + sorted(reach)[::97][:10]
    for app in probes:
        local = detector.scope(book, [app], stats)
        ids, rows = _scope_by_passes(detector, book, [app], stats)
        assert sorted(local.applications["application_id"].astype(str)) == ids
        assert local.guarantees.reset_index(drop=True).equals(book.guarantees.loc[rows].reset_index(drop=True))
