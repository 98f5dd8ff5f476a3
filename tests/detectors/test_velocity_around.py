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


@pytest.mark.parametrize("seed", range(6))
def test_windows_in_python_equal_pandas_grouping(seed):
    import numpy as np
    import pandas as pd

    from ringscope.detectors.velocity import BurstBase, _timed_keys, _windows_few, _windows_grouped

    rng = np.random.default_rng(seed)
    found = 0
    for trial in range(40):
        n = int(rng.integers(0, 120))
        keys = pd.Series(rng.choice(["d1", "d2", "d10", "x", None], n), index=rng.permutation(n) + 7)
        hours = np.where(rng.random(n) < 0.5, rng.integers(0, 48, n), rng.integers(0, 24 * 365, n))
        times = pd.Series(pd.Timestamp("2025-01-01", tz="UTC") + pd.to_timedelta(hours, unit="h"), index=keys.index)
        times[rng.random(n) < 0.05] = pd.NaT
        frame = _timed_keys(keys.astype("str") if trial % 2 else keys, times)
        if frame.empty:
            continue
        base = BurstBase(applications=5000, identifiers=4000, tested=int(rng.integers(1, 3000)))
        window = float(rng.choice([3600.0, 72 * 3600.0]))
        empty = pd.DataFrame({"row": [], "key": [], "cluster": [], "pvalue": [], "expected": [], "window_count": []})
        args = (frame, window, 3, 1e-3, 365 * 86400.0, 1e-7, base, empty)
        few, grouped = _windows_few(*args), _windows_grouped(*args)
        pd.testing.assert_frame_equal(few, grouped)
        found += len(few)
    assert found > 0


def test_a_busy_identifier_is_asked_first_whether_a_dense_window_covers_the_application(book, monkeypatch):
    """Every identifier treated as busy (its windows computed only when a
    dense one covers the application asked about) gives each application
    the findings of the whole computation; both answers occur."""
    from ringscope.detectors import velocity

    portfolio, detector, stats = book
    ids = portfolio.applications["application_id"].astype(str).tolist()
    whole = [_keys(detector.around(portfolio, [a], stats)) for a in ids]
    asked: list[bool] = []
    covered = velocity.covered_by_dense_window

    def counted(*args, **kwargs):
        asked.append(covered(*args, **kwargs))
        return asked[-1]

    monkeypatch.setattr(velocity, "_BUSY_HISTORY", 0)
    monkeypatch.setattr(velocity, "covered_by_dense_window", counted)
    assert [_keys(detector.around(portfolio, [a], stats)) for a in ids] == whole
    assert True in asked and False in asked  # not vacuous: identifiers skipped and identifiers computed
    assert sum(map(bool, whole)) >= 4
    # a batch too
    batch = ids[::7]
    monkeypatch.setattr(velocity, "_BUSY_HISTORY", 10**9)
    expected = _keys(detector.around(portfolio, batch, stats))
    monkeypatch.setattr(velocity, "_BUSY_HISTORY", 0)
    assert _keys(detector.around(portfolio, batch, stats)) == expected and expected
