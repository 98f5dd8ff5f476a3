"""Every detector around a few applications: what ``flag`` runs each night.

A full ``detect`` reads the whole portfolio. A nightly batch only needs the
findings that hold its new applications, and each detector knows where
those can come from (:meth:`ringscope.detectors.base.Detector.scope`): the ring
component the applications join, the device and IP histories they extend,
their agent's book, their identity block, their contacts' owners. Inside
that scope the detector is judged by the whole portfolio's standards — its
:meth:`~detectors.base.Detector.statistics` (hub decisions, base rates,
peer groups) computed over the whole book — so the findings equal those of
a full run::

    detect_around(p, new_ids).findings == [f for f in run_detectors(p).findings
                                           if set(f.members) & set(new_ids)]

(``tests/detectors/test_incremental.py`` holds every detector to it over
several generated portfolios.) A detector without a scope of its own runs
over the whole portfolio: slower, never different.

Entities are resolved first, as in ``detect``: identity resolution resolves
every record of the book in its statistics (its fitted model moves with the
new data, so even entities far from the batch may change), and those entity
maps replace the portfolio's before any detector reads them.
"""

from __future__ import annotations

import collections
import inspect
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ringscope.detectors.base import Detector, Finding
from ringscope.detectors.portfolio import Portfolio
from ringscope.detectors.registry import DETECTORS, build_detector
from ringscope.detectors.risk.flag_state import release_memory

__all__ = ["IncrementalRun", "detect_around", "portfolio_statistics"]


@dataclass
class IncrementalRun:
    """What :func:`detect_around` found for the applications it was given."""

    #: findings holding at least one of the applications, best first per detector
    findings: list[Finding]
    #: detector → seconds (statistics, scope and run together)
    seconds: dict[str, float] = field(default_factory=dict)
    #: detector → applications in the scope it ran on (``None``: the whole portfolio)
    scope_sizes: dict[str, int | None] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    #: detectors that answered from arrays kept per portfolio (``Detector.around``), without a scope
    shortcuts: list[str] = field(default_factory=list)


def _accepts_statistics(detector: Detector) -> bool:
    return "statistics" in inspect.signature(detector.run).parameters


def portfolio_statistics(
    portfolio: Portfolio, names: Sequence[str] | None = None, params: dict[str, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """Each detector's portfolio-wide statistics, by registry name.

    Example
    -------
    >>> import tempfile
    >>> from ringscope.graph.embedded import EmbeddedStore
    >>> stats = portfolio_statistics(Portfolio(EmbeddedStore(tempfile.mkdtemp())), ["guarantee_circles"])
    >>> list(stats)
    ['guarantee_circles']
    """
    params = params or {}
    wanted = list(DETECTORS) if names is None else [n for n in DETECTORS if n in set(names)]
    return {name: build_detector(name, **params.get(name, {})).statistics(portfolio) for name in wanted}


def detect_around(
    portfolio: Portfolio,
    app_ids: Sequence[str],
    names: Sequence[str] | None = None,
    params: dict[str, dict[str, Any]] | None = None,
    statistics: dict[str, Any] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> IncrementalRun:
    """Run detectors ``names`` (default: all registered) around ``app_ids``.

    Parameters
    ----------
    portfolio : Portfolio
        The whole portfolio, the applications already in it.
    app_ids : sequence of str
        The applications whose findings are wanted (a nightly batch).
    names, params :
        As for :func:`ringscope.detectors.runner.run_detectors`.
    statistics : dict, optional
        ``{detector name: statistics}`` computed earlier; missing ones are
        computed from ``portfolio`` (after identity resolution's, whose
        entities the portfolio is given first) and added to this
        dict, so that the next call reuses them.

    Example
    -------
    >>> import tempfile
    >>> from ringscope.graph.embedded import EmbeddedStore
    >>> detect_around(Portfolio(EmbeddedStore(tempfile.mkdtemp())), ["A1"]).findings
    []
    """
    params = params or {}
    statistics = {} if statistics is None else statistics
    wanted = list(DETECTORS) if names is None else [n for n in DETECTORS if n in set(names)]
    unknown = set(names or ()) - set(DETECTORS)
    if unknown:
        raise KeyError(f"Unknown detectors {sorted(unknown)}; known: {', '.join(DETECTORS)}")
    detectors = [build_detector(name, **params.get(name, {})) for name in wanted]
    targets = set(map(str, app_ids))
    run = IncrementalRun(findings=[])
    resolved = "identity" in wanted and "identity" not in statistics
    _resolve_entities(portfolio, detectors, statistics, run)
    if resolved:  # fitting identity's model over the book freed more than any detector holds after it
        release_memory()
    for i, detector in enumerate(detectors):
        if progress:
            progress(detector.name, i, len(detectors))
        if detector.name in run.errors:
            continue
        started = time.perf_counter()
        lean = not getattr(portfolio, "keep_derived", True)
        held = set(portfolio.derived) if lean else None
        maps = set(portfolio.row_maps) if lean else None
        try:
            if detector.name not in statistics:
                statistics[detector.name] = detector.statistics(portfolio)
            stats = statistics[detector.name]
            known = _findings_without_scope(detector, portfolio, sorted(targets), stats)
            if known is not None:  # the detector answered from its per-portfolio arrays
                run.scope_sizes[detector.name] = len(targets)  # the applications themselves
                run.shortcuts.append(detector.name)
                run.findings.extend(f for f in known if targets.intersection(map(str, f.members)))
                run.seconds[detector.name] = run.seconds.get(detector.name, 0.0) + time.perf_counter() - started
                continue
            local = detector.scope(portfolio, sorted(targets), stats)
            source = portfolio if local is None else local
            run.scope_sizes[detector.name] = None if local is None else len(local.applications)
            found = detector.run(source, statistics=stats) if _accepts_statistics(detector) else detector.run(source)
            if local is not None:
                _adopt_pairs(portfolio, local)
            run.findings.extend(f for f in found if targets.intersection(map(str, f.members)))
        except Exception as exc:  # one broken detector must not hide the others' findings
            run.errors[detector.name] = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}"
        finally:
            if lean:  # what this detector derived goes with it (rebuilt, the same, if asked again)
                _drop_built(portfolio, held, maps, statistics.get(detector.name))
        run.seconds[detector.name] = run.seconds.get(detector.name, 0.0) + time.perf_counter() - started
    if progress:
        progress("done", len(detectors), len(detectors))
    return run


def _drop_built(portfolio: Portfolio, derived: set, maps: set, stats: Any) -> None:
    """Drop what one detector built for its scope and run: the portfolio's
    derived tables and the row maps with an index of their own that were not
    there before it (``derived``, ``maps``), and its statistics' row look-ups (identity resolution's over
    every record, entity and name + birth date: at a million applications
    about 0.9 GB held through every later detector), then hands the freed
    memory back (:func:`release_memory`). A later detector that asks for
    one rebuilds it, the same."""
    for name in set(portfolio.derived) - derived:
        del portfolio.derived[name]
    # a map over a shared index of keys (the application ids, the person keys) is two integer
    # arrays, and the next detector would build it again; a map with an index of its own
    # (devices, IPs, borrowers: ~0.1 GB each at a million applications) goes
    uses = collections.Counter(id(held.index) for held in portfolio.row_maps.values())
    for key in set(portfolio.row_maps) - maps:
        if uses[id(portfolio.row_maps[key].index)] == 1:
            del portfolio.row_maps[key]
    lookups = getattr(stats, "lookups", None)
    if isinstance(lookups, dict):
        lookups.clear()
    # and the memory they held goes back to the system: freed pages kept by Arrow's pool or
    # glibc's free lists serve neither the other allocator nor numpy, so the next detector's
    # tables would otherwise grow on top of them
    release_memory()


def _findings_without_scope(
    detector: Detector, portfolio: Portfolio, app_ids: list[str], stats: Any
) -> list[Finding] | None:
    """The findings around ``app_ids`` when the detector can tell them
    without a sub-portfolio (``Detector.around``: usually ``[]``, nothing
    in reach could form one), else ``None``: scope and run as usual."""
    around = getattr(detector, "around", None)
    return None if around is None else around(portfolio, app_ids, stats)


def _resolve_entities(
    portfolio: Portfolio, detectors: list[Detector], statistics: dict[str, Any], run: IncrementalRun
) -> None:
    """Give the portfolio the whole book's entities (identity resolution's
    statistics, computed now unless ``statistics`` holds them) before any
    detector reads them; without identity resolution it keeps the stored ones."""
    identity = next((d for d in detectors if hasattr(d, "resolve")), None)
    if identity is None:
        return
    started = time.perf_counter()
    try:
        if identity.name not in statistics:
            statistics[identity.name] = identity.statistics(portfolio)
        portfolio.use_entities(identity.resolve(portfolio, statistics[identity.name]))
    except Exception as exc:  # the others still run, on the stored entities
        run.errors[identity.name] = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}"
    run.seconds[identity.name] = time.perf_counter() - started


def _adopt_pairs(portfolio: Portfolio, local: Portfolio) -> None:
    """Merge the SIMILAR_TO pairs identity resolution found inside a scope
    into the portfolio's (what ``flag`` saves), a pair found again keeping
    its new score."""
    for rel, pairs in local.similar_pairs.items():
        if pairs is None or not len(pairs):
            continue
        known = portfolio.similar_pairs.get(rel)
        if pairs is known:
            continue
        portfolio.similar_pairs[rel] = (
            pairs
            if known is None or not len(known)
            else (
                pd.concat([known, pairs], ignore_index=True)
                .drop_duplicates(["src", "dst"], keep="last")
                .reset_index(drop=True)
            )
        )
