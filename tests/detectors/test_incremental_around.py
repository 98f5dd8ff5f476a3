"""The one-application shortcut (``Detector.around``) never drops a finding.

``detect_around`` first asks each detector whether the findings around the
applications can be told without a scope: ``[]`` when nothing within reach
of them could form one (no gluing identifier, no guarantee, no contact loop
or hub, no busy device, no agent, an applicant with one application, one
record and a valid ID), or, for cash-flow checks, the findings
read from the whole book's checks. On a generated portfolio where every
typology is planted, each detector's shortcut is asked about every
application alone and held to a full run: an application the shortcut calls
quiet holds no finding of that detector, an answer it gives is the full
run's, and an application that joins a ring, circle, loop, burst or broker
group still gets it through ``detect_around`` one at a time.
"""

from __future__ import annotations

import pytest

from ringscope.detectors.base import Detector, Finding
from ringscope.detectors.incremental import detect_around
from ringscope.detectors.portfolio import Portfolio
from ringscope.detectors.registry import DETECTORS, build_detector
from ringscope.detectors.runner import run_detectors
from ringscope.graph.embedded import EmbeddedStore
from ringscope.ingest.pipeline import ingest_folder
from ringscope.ingest.synthetic import GeneratorConfig, generate_portfolio

# generates, ingests and detects a whole portfolio: in `make test`, not in `make test-fast`
pytestmark = pytest.mark.slow

#: the detectors with a shortcut
SHORTCUTS = [name for name in DETECTORS if type(build_detector(name)).around is not Detector.around]
SCORE_TOLERANCE = 1e-9


def _key(f: Finding) -> tuple:
    return (f.detector, f.kind, tuple(sorted(map(str, f.members))))


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    folder = tmp_path_factory.mktemp("around")
    generate_portfolio(
        GeneratorConfig(
            applications=900,
            seed=211,
            device_farms=0.04,
            broker_rings=0.05,
            contact_loops=0.03,
            guarantee_circles=0.03,
            cashflow_inconsistency=0.04,
        ),
        folder / "data",
    )
    store = EmbeddedStore(folder / "store")
    ingest_folder(folder / "data", store, rejects_path=folder / "rejects.csv")
    full = run_detectors(Portfolio(store)).findings
    portfolio = Portfolio(store)
    statistics: dict = {}
    ids = portfolio.applications["application_id"].astype(str).tolist()
    detect_around(portfolio, ids[:1], statistics=statistics)  # the statistics, and the entities set
    by_app: dict[tuple[str, str], list[Finding]] = {}
    for f in full:
        for m in f.members:
            by_app.setdefault((f.detector, str(m)), []).append(f)
    return portfolio, statistics, ids, by_app


def test_every_detector_has_a_shortcut():
    assert set(SHORTCUTS) == set(DETECTORS)


@pytest.mark.parametrize("name", SHORTCUTS)
def test_a_quiet_application_holds_no_finding_of_a_full_run(book, name):
    portfolio, statistics, ids, by_app = book
    detector = build_detector(name)
    quiet = answered = held = 0
    for a in ids:
        expected = by_app.get((name, a), [])
        held += bool(expected)
        got = detector.around(portfolio, [a], statistics[name])
        if got is None:
            continue
        answered += 1
        quiet += not got
        # what the shortcut answers is what the full run finds: same findings, same scores
        assert sorted(map(_key, got)) == sorted(map(_key, expected)), (name, a)
        scores = {_key(f): f.score for f in expected}
        assert all(abs(f.score - scores[_key(f)]) <= SCORE_TOLERANCE for f in got), (name, a)
    # not vacuous: the detector finds something here, and the shortcut does answer for some applications
    assert held > 0, f"no {name} finding in the generated book"
    assert answered > 0 and (quiet > 0 or name == "cashflow"), (name, answered, quiet)
    # and it does not answer for everyone: the applications holding a finding still reach scope and run
    # (broker rings, contact loops and device velocity answer every application from the book's
    # groups, loops, hubs and identifier histories: their answers are held to the full run above)
    if name not in ("cashflow", "broker_rings", "contact_loops", "device_velocity"):
        assert answered < len(ids)


@pytest.mark.parametrize("name", SHORTCUTS)
def test_members_still_get_their_findings_one_application_at_a_time(book, name):
    portfolio, statistics, ids, by_app = book
    members = sorted(a for (det, a) in by_app if det == name)[:6]
    assert members
    for a in members:
        run = detect_around(portfolio, [a], [name], statistics=statistics)
        assert not run.errors, run.errors
        got = {_key(f): f.score for f in run.findings}
        expected = {_key(f): f.score for f in by_app[(name, a)]}
        assert sorted(got) == sorted(expected), (name, a)
        assert all(abs(got[k] - expected[k]) <= SCORE_TOLERANCE for k in expected)


def test_a_quiet_application_skips_scope_and_run(book):
    """The shortcut is taken: a detector with nothing in reach of an
    application answers without building a scope."""
    portfolio, statistics, ids, by_app = book
    loner = next(a for a in ids if not any((n, a) in by_app for n in SHORTCUTS))
    run = detect_around(portfolio, [loner], SHORTCUTS, statistics=statistics)
    assert run.findings == [] and not run.errors
    assert len(run.shortcuts) >= 3 and all(run.scope_sizes[n] == 1 for n in run.shortcuts), run.scope_sizes


def test_a_detector_without_statistics_takes_no_shortcut():
    """Without the whole book's statistics the shortcut cannot judge: scope and run decide."""
    assert build_detector("shared_identifier_rings").around(Portfolio(None), ["A1"]) is None
    assert build_detector("cashflow").around(Portfolio(None), ["A1"]) is None


def _answer(found: list[Finding] | None) -> list | None:
    return None if found is None else sorted((_key(f), f.score, f.evidence_json()) for f in found)


@pytest.mark.parametrize("name", ["identity", "cashflow", "contact_loops"])
def test_one_detection_answers_as_the_books_arrays_do(book, name):
    """With ``keep_derived`` off (``flag``'s one detection) identity's quiet
    applications, the cash-flow findings and the contact loops come from
    the batch's own rows instead of arrays over the whole book: the same
    answer for every application alone and for batches."""
    portfolio, statistics, ids, by_app = book
    detector = build_detector(name)
    batches = [[a] for a in ids[::5]] + [ids[i : i + 60] for i in range(0, len(ids), 170)]
    batches.append(sorted({a for (det, a) in by_app if det == name})[:30])
    kept = [_answer(detector.around(portfolio, b, statistics[name])) for b in batches]
    portfolio.keep_derived = False
    try:
        lean = []
        for b in batches:
            portfolio.derived.clear()  # nothing kept from the book's pass: the batch's own way
            lean.append(_answer(detector.around(portfolio, b, statistics[name])))
    finally:
        portfolio.keep_derived = True
    assert lean == kept
    assert any(a is None for a in kept) or name != "identity"  # not vacuous: some need scope and run
    assert any(a for a in kept) or name == "identity"  # and some answers hold findings


def test_identitys_quiet_rows_equal_the_books_pass(book):
    import numpy as np

    from ringscope.detectors.identity import _quiet_applications

    portfolio, statistics, ids, _ = book
    apps, stats = portfolio.applications, statistics["identity"]
    whole = _quiet_applications(apps, stats)
    assert 0 < whole.sum() < len(whole)
    rng = np.random.default_rng(5)
    for size in (1, 3, 40, len(apps) // 2, len(apps)):
        rows = np.sort(rng.choice(len(apps), size, replace=False))
        assert _quiet_applications(apps, stats, rows).tolist() == whole[rows].tolist(), size
    # keys held as Python objects, not Arrow text: the same answers through pandas' isin
    objects = apps.assign(person=apps["person"].astype(object))
    rows = np.arange(0, len(apps), 3)
    assert _quiet_applications(objects, stats, rows).tolist() == whole[rows].tolist()
