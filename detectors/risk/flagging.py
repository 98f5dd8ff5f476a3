"""Incremental flagging: score new applications against the existing graph.

A :class:`FlagIndex` holds the stored portfolio in memory as sorted arrays
(identifier → applications, person → applications, application → links),
built once. Scoring a batch then touches only the new applications and
their neighbourhood:

1. graph features straight from the index — earlier sharers of each
   identifier and which of them are known bad (the same "as of" rule as in
   training, so a new application is scored exactly like a historical one);
2. every registered detector around the batch
   (:func:`ringscope.detectors.incremental.detect_around`): each runs on the part of
   the portfolio that decides the findings holding the new applications —
   the ring components they join, the device and IP histories they extend,
   their agents' books, their identity blocks, their contacts — judged by
   the whole portfolio's statistics, so a burst, ring, circle or identity
   conflict the batch starts or joins is found tonight, as a full ``detect``
   would find it;
3. the saved model, its reasons, and the output contract
   (application_id, score, decision, ring_id, reasons). The ring_id is an
   accusation: the highest-scoring group finding at or above the review
   threshold (:func:`ringscope.detectors.risk.reasons.accused_ring`);
   weaker groupings stay in the reasons as evidence.

One application or a batch, the detection step is the same call; only the
feature arithmetic has a per-application form
(:mod:`ringscope.detectors.risk.flagging_single`) for latency.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ringscope.detectors.base import Finding
from ringscope.detectors.incremental import IncrementalRun, detect_around
from ringscope.detectors.keys import key_index
from ringscope.detectors.portfolio import Portfolio
from ringscope.detectors.registry import DETECTORS, build_detector
from ringscope.detectors.rings import RingLinkCodes, application_entities, entity_links, ring_link_codes
from ringscope.detectors.risk.features import (
    BAD_LABELS,
    LABEL_EVIDENCE,
    SHARED_KINDS,
    own_features,
)
from ringscope.detectors.risk.flag_state import SavedStatistics, StateInfo, load_state
from ringscope.detectors.risk.reasons import Partner, ReasonContext, accused_ring, build_reasons
from ringscope.detectors.risk.scoring import TrainedModel, contributions
from ringscope.detectors.runner import load_findings
from ringscope.detectors.settings import Settings, store_settings
from ringscope.detectors.values import BadValues

__all__ = ["FlagIndex", "FlagResult", "RING_DETECTORS"]

#: findings that can give an application its ``ring_id`` (at or above the review threshold, two or
#: more members). ``identity`` too: one ID number under several names is a group of applications
#: (synthetic identities); over 20 random scenarios its findings >= 0.3 held 90 planted frauds and
#: one honest application (a repeat borrower)
RING_DETECTORS = (
    "shared_identifier_rings",
    "guarantee_circles",
    "contact_loops",
    "broker_rings",
    "device_velocity",
    "identity",
)
#: up to this many applications, ``FlagIndex.score`` scores one at a time
SINGLE_PATH_MAX = 16
#: what ``FlagIndex`` derives from the portfolio's links (saved in the flag state). Links are held
#: as integer codes (identifier, entity, kind), never as a table of strings: at a million
#: applications a links frame of Python strings alone took gigabytes
SAVED_ARRAYS = (
    "hubs",
    "_ident_index",
    "_ident_offsets",
    "_link_app",
    "_entities",
    "_link_entity",
    "_kinds",
    "_app_link_ident",
    "_app_link_entity",
    "_app_link_kind",
    "_app_offsets",
    "app_entity",
)
#: the columns of an application's links, as the reasons read them
_LINK_COLUMNS = ["application_id", "kind", "identifier", "entity"]
#: sharer rows :meth:`FlagIndex.graph_features` holds at once (~10 arrays of 8 bytes each per row:
#: ~160 MB); a batch whose targets share more is taken in chunks
SHARER_ROWS_PER_CHUNK = 2_000_000


@dataclass
class FlagResult:
    flags: pd.DataFrame  # application_id, score, decision, ring_id, reasons
    new_findings: list[Finding] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    #: stored values read as missing (implausible dates and figures), for the summary
    bad_values: list[BadValues] = field(default_factory=list)
    #: detectors that failed around this batch (the others' findings still count)
    errors: dict[str, str] = field(default_factory=dict)
    #: with a shadow model (``flag --shadow``): its flags, recorded but never acted on
    shadow: pd.DataFrame | None = None
    #: how the index was had: loaded from the saved flag state or rebuilt, and how long it took
    state: StateInfo | None = None


class FlagIndex:
    """The stored portfolio as arrays, for scoring new applications quickly.

    Build it after the new applications were ingested (they are then part of
    the graph like any other), then call :meth:`score`.
    """

    def __init__(
        self,
        portfolio: Portfolio,
        findings: list[Finding],
        bad_labels: tuple[str, ...] = BAD_LABELS,
        arrays: dict | None = None,
        settings: Settings | None = None,
    ) -> None:
        """``arrays``: what :meth:`arrays` returned for this portfolio (a saved
        flag state), instead of deriving them again; ``settings``: the
        detectors' parameters (the store's last ``detect``'s, by default)."""
        self.portfolio = portfolio
        self.settings = settings if settings is not None else Settings()
        # the applications stay the portfolio's (Arrow-backed) table: a numpy-backed
        # copy of every column would triple it; the index keeps arrays of what it reads
        apps = portfolio.applications
        # the portfolio's index of the application ids, which its row maps share (one hash table, not two)
        shared = portfolio.application_keys()
        self.app_pos = (
            shared.rename("application_id")
            if shared is not None
            else key_index(_object_column(apps["application_id"]), name="application_id")
        )
        self.t = apps["applied_at"].astype("int64").to_numpy() if len(apps) else np.array([], dtype=np.int64)
        # NaT (a time read as missing) is int64's minimum: mask it, an untimed
        # application is earlier than nothing (features.identifier_history's rule)
        self.timed = self.t != np.iinfo(np.int64).min
        self.bad_labels = tuple(bad_labels)
        self.bad = self._labels_in(self.bad_labels)
        if arrays is None:
            self._derive(portfolio)
        else:
            for name in SAVED_ARRAYS:
                setattr(self, name, arrays[name])
            if not isinstance(self._ident_index, pa.Array):  # saved as the object array it stands for
                self._ident_index = pa.array(np.asarray(self._ident_index, dtype=object), type=pa.large_string())
        #: detector name → its statistics over the whole book (saved with the flag state)
        self._statistics: dict[str, Any] = {}
        #: a loaded state's statistics, not read yet (:attr:`detector_statistics` reads them on first use)
        self.pending_statistics: SavedStatistics | None = None
        #: whether this index has run a detection (else its statistics are as loaded or built)
        self.detection_ran = False
        #: called as ``progress(detector, done, total)`` during detection around a batch
        self.progress: Callable[[str, int, int], None] | None = None
        # built on first use
        self._last_detection: tuple[tuple, IncrementalRun] | None = None
        self._persons_by_key: pd.Index | None = None
        self._link_arrays: dict[str, np.ndarray] | None = None
        self._bad_sharers_csr: tuple[np.ndarray, np.ndarray] | None = None
        self._single_path: Any = None
        self.findings = findings
        self.findings_by_app: dict[str, list[Finding]] = {}
        for f in findings:
            for m in f.members:
                self.findings_by_app.setdefault(m, []).append(f)

    def _derive(self, portfolio: Portfolio) -> None:
        """The index arrays (:data:`SAVED_ARRAYS`) from the portfolio's links.

        The links stay Arrow text: the identifier keys are joined, sorted
        and told apart by Arrow, the applications found by one hash
        look-up, so no Python string is made per link (a numpy-backed copy
        of the links and the keys built from it peaked at 2.8 GB above
        what the index keeps at a million applications). The arrays are
        those the object-array computation gave (tested against it).
        """
        codes = None if "ring_links" in portfolio.derived else ring_link_codes(portfolio)
        if codes is not None and not (codes.key < 0).any():
            self._derive_from_codes(portfolio, codes)  # no whole-book text table of the links
            return
        links = entity_links(portfolio)
        self.hubs = self.settings.detector("shared_identifier_rings").hubs(portfolio)
        n_links = len(links)
        kind = _arrow_text(links["kind"])
        # identifier → sharers (CSR over links sorted by identifier); code-point order, as numpy sorts text
        ident = pc.binary_join_element_wise(
            kind, _arrow_text(links["identifier"]), pa.scalar("\x1f", pa.large_string())
        )
        order = pc.sort_indices(ident).to_numpy()  # stable
        ident_sorted = ident.take(order)
        del ident
        if n_links:
            new = np.ones(n_links, dtype=bool)
            new[1:] = pc.not_equal(ident_sorted.slice(1), ident_sorted.slice(0, n_links - 1)).to_numpy(
                zero_copy_only=False
            )
        else:
            new = np.zeros(0, dtype=bool)
        starts = np.flatnonzero(new)
        self._ident_index = ident_sorted.take(starts)  # Arrow text: ~30 bytes a key, not a Python string
        del ident_sorted
        self._ident_offsets = np.append(starts, n_links)
        link_ident = np.empty(n_links, dtype=np.int32)  # each link's identifier, in the links' order
        link_ident[order] = np.cumsum(new) - 1
        del new
        app_ids = pa.array(np.asarray(self.app_pos, dtype=object), type=pa.large_string())
        found = pc.index_in(_arrow_text(links["application_id"]), value_set=app_ids)
        app_of = pc.fill_null(found, -1).to_numpy(zero_copy_only=False).astype(np.int64)  # -1: not an application
        del found
        del app_ids
        self._link_app = app_of[order]
        entity = _arrow_text(links["entity"]).dictionary_encode()
        entity_codes = entity.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        self._entities = _object_array(entity.dictionary)
        self._link_entity = entity_codes[order]
        del order
        kinds = kind.dictionary_encode()  # first-appearance order, as pd.factorize
        kind_codes = kinds.indices.to_numpy(zero_copy_only=False)
        self._kinds = _object_array(kinds.dictionary)
        del kind, kinds
        self._links_by_application(app_of, link_ident, entity_codes, kind_codes)

    def _derive_from_codes(self, portfolio: Portfolio, codes: RingLinkCodes) -> None:
        """:meth:`_derive`'s arrays, the same ones, from the rings' link codes
        (:func:`ringscope.detectors.rings.ring_link_codes`) instead of
        ``entity_links``' text table (7.2M rows, ~0.8 GB at a million
        applications) and its joined, sorted text keys: the identifiers
        are sorted by kind name, then by their code (numbered in sorted
        order within a kind), which is the joined keys' code-point order
        (``\x1f`` sorts before any letter of a kind's name); only the
        distinct keys are joined as text."""
        self.hubs = self.settings.detector("shared_identifier_rings").hubs(portfolio)
        n_links = len(codes)
        held = portfolio._links_by_kind
        kind_of = np.repeat(np.arange(len(codes.kinds)), np.diff(codes.starts))
        by_name = np.argsort(np.argsort(np.asarray(codes.kinds, dtype=object)))  # each kind's rank by name
        sort_key = by_name[kind_of] * (int(codes.key.max()) + 1 if n_links else 1) + codes.key
        order = np.argsort(sort_key, kind="stable")
        sorted_key = sort_key[order]
        del sort_key
        new = np.ones(n_links, dtype=bool)
        if n_links:
            new[1:] = sorted_key[1:] != sorted_key[:-1]
        else:
            new = np.zeros(0, dtype=bool)
        del sorted_key
        starts = np.flatnonzero(new)
        # the distinct keys as text, kind by kind in name order (the keys sorted so)
        firsts = order[starts]
        first_kind = kind_of[firsts]
        parts = []
        for k in np.argsort(np.asarray(codes.kinds, dtype=object), kind="stable").tolist():
            rows = firsts[first_kind == k] - codes.starts[k]
            if not len(rows):
                continue
            identifiers = _arrow_text(held[codes.kinds[k]]["identifier"]).take(pa.array(rows))
            parts.append(
                pc.binary_join_element_wise(
                    pa.scalar(codes.kinds[k], pa.large_string()),
                    identifiers,
                    pa.scalar("\x1f", pa.large_string()),
                )
            )
        self._ident_index = pa.concat_arrays(parts) if parts else pa.array([], type=pa.large_string())
        del parts, firsts, first_kind
        self._ident_offsets = np.append(starts, n_links)
        link_ident = np.empty(n_links, dtype=np.int32)
        link_ident[order] = np.cumsum(new) - 1
        del new
        app_of = codes.app.astype(np.int64)
        self._link_app = app_of[order]
        # entities numbered in order of first appearance over the links (Arrow's dictionary encoding did)
        entity_codes, first_apps = pd.factorize(codes.entity)
        at = np.unique(entity_codes, return_index=True)[1]
        per_app = application_entities(portfolio, codes.app_values)
        self._entities = np.asarray(per_app[codes.app[at]], dtype=object)
        del per_app, first_apps, at
        self._link_entity = entity_codes[order]
        del order
        self._kinds = np.asarray(codes.kinds, dtype=object)
        self._links_by_application(app_of, link_ident, entity_codes, kind_of)

    def _links_by_application(
        self, app_of: np.ndarray, link_ident: np.ndarray, entity_codes: np.ndarray, kind_codes: np.ndarray
    ) -> None:
        """Each application's links as codes (identifier, entity, kind; rows
        from ``_app_offsets``), and its entity: that of its first link
        (missing without links). ``_entities`` must be set."""
        app_order = np.argsort(app_of, kind="stable")
        self._app_link_ident = link_ident[app_order]
        self._app_link_entity = entity_codes[app_order].astype(np.int32)
        self._app_link_kind = kind_codes[app_order].astype(np.int8)
        sorted_apps = app_of[app_order]
        self._app_offsets = np.searchsorted(sorted_apps, np.arange(len(self.app_pos) + 1))
        self.app_entity = np.full(len(self.app_pos), np.nan, dtype=object)
        first = self._app_offsets[:-1]
        has = self._app_offsets[1:] > first
        self.app_entity[has] = self._entities[entity_codes[app_order[first[has]]]]

    @property
    def last_detection(self) -> tuple[tuple, IncrementalRun] | None:
        """``(key, IncrementalRun)`` of the last detection, for the saved
        state; ``None`` when a detector failed in it (the next run tries again)."""
        last = self._last_detection
        return None if last is None or last[1].errors else last

    @property
    def detector_statistics(self) -> dict[str, Any]:
        """Detector name → its statistics over the whole book; a loaded
        state's are read on first use (a damaged file: computed again)."""
        if self.pending_statistics is not None:
            saved, self.pending_statistics = self.pending_statistics.load(), None
            self._statistics = dict(saved) if saved is not None else {}
        return self._statistics

    @detector_statistics.setter
    def detector_statistics(self, value: dict[str, Any]) -> None:
        self.pending_statistics, self._statistics = None, value

    def arrays(self) -> dict:
        """The derived index arrays and tables (:data:`SAVED_ARRAYS`), as
        ``FlagIndex(..., arrays=)`` takes them back."""
        return {name: getattr(self, name) for name in SAVED_ARRAYS}

    @classmethod
    def build(cls, store, bad_labels: tuple[str, ...] = BAD_LABELS) -> FlagIndex:
        """The index of everything ``store`` holds, read from it."""
        portfolio = Portfolio(store)
        return cls(portfolio, load_findings(store), bad_labels, settings=store_settings(store))

    @classmethod
    def open(cls, store, bad_labels: tuple[str, ...] = BAD_LABELS) -> FlagIndex:
        """The index of ``store``: from the state a ``flag`` run saved beside
        it (:mod:`ringscope.detectors.risk.flag_state`: the portfolio tables, the detectors'
        statistics and the stored findings) when the store has not changed
        since, else built from the store. ``index.state`` says which, and
        how long it took; ``index.revision`` is the revision it reflects.
        Call it under the store's write lock, or a write may land between
        the revision and the reads."""
        started = time.perf_counter()
        revision = store.revision()
        state, reason = load_state(store, revision)
        if state is None:
            index = cls.build(store, bad_labels)
            index.portfolio.remember_reads()  # what detection reads beyond the index's tables is saved too
            index.state = StateInfo("rebuilt", time.perf_counter() - started, reason)
        else:
            portfolio = Portfolio(store)
            portfolio.restore_tables(state["tables"])
            if state["links_by_kind"] is not None:
                portfolio.restore_tables({"_links_by_kind": state["links_by_kind"]})
            portfolio.stored_entity_maps = dict(state["entities"])
            portfolio.bad_values = list(state["bad_values"])
            portfolio.reads = dict(state["reads"])
            # the settings come with the state (saved at this revision), so a loaded index reads no table
            saved = state.get("settings")
            settings = Settings.from_json(saved) if saved else store_settings(store)
            index = cls(portfolio, state["findings"], bad_labels, arrays=state["arrays"], settings=settings)
            index.pending_statistics = state["statistics"]
            # the saved run's detection around its batch: the same batch on the same revision finds the same
            index._last_detection = state.get("detection")
            index.state = StateInfo("loaded", time.perf_counter() - started)
        index.revision = revision
        return index

    def use_known_bad(self, labels: tuple[str, ...]) -> None:
        """Count applications labelled ``labels`` as known bad (a model's
        target, ``TrainedModel.known_bad``), as its training did; what was
        built on the previous labels is dropped."""
        labels = tuple(labels)
        if labels != self.bad_labels:
            self.bad_labels = labels
            self.bad = self._labels_in(labels)
            self._bad_sharers_csr = None

    def _labels_in(self, labels: tuple[str, ...]) -> np.ndarray:
        return pd.Series(self._labels).isin(labels).to_numpy()

    @property
    def apps(self) -> pd.DataFrame:
        """The applications, numpy-backed and indexed by ``application_id``
        (a copy made on each call: the index itself reads its arrays)."""
        return _numpy_backed(self.portfolio.applications).set_index("application_id", drop=False)

    # -- detection -----------------------------------------------------------------
    def detect(self, app_ids: list[str], with_guarantees: bool = True) -> IncrementalRun:
        """Every registered detector around ``app_ids`` (guarantee circles
        left out when ``with_guarantees`` is false). Each detector's
        statistics are computed on first use (identity resolution's first:
        the portfolio gets its entities before any detector runs) and kept
        in :attr:`detector_statistics` for the next call.
        The same applications asked again (a shadow model scoring the batch
        the champion scored, or a repeat ``flag`` of the batch whose
        detection the loaded state kept) get the same run, not a second
        detection."""
        key = (tuple(app_ids), with_guarantees)
        last = self._last_detection
        if last is not None and last[0] == key:
            return last[1]
        self.detection_ran = True
        names = [n for n in DETECTORS if with_guarantees or n != "guarantee_circles"]
        run = detect_around(
            self.portfolio,
            app_ids,
            names,
            params=self.settings.detector_params(),
            statistics=self.detector_statistics,
            progress=self.progress,
        )
        self._last_detection = (key, run)
        return run

    def warm(self, with_guarantees: bool = True) -> list[str]:
        """Build every detector's lookup tables now, once per process, instead
        of at the first application whose scope needs them.

        The row maps a detector's scope reads (identity resolution's by
        entity and by name + birth date, the store reads a sub-portfolio
        takes its rows from) are built on first use: at 200k applications
        the first application with an identity conflict waited 1.2 s CPU
        for them, every later one ~5 ms. A long-lived process scoring one
        application at a time (``bench/bench_flag.py``) calls this once
        after the index: one detection around a member of a stored finding
        of each detector. Nothing of that detection is kept (its findings,
        the SIMILAR_TO pairs it adopts, the last detection), so what is
        scored afterwards is what it would have been. Returns the
        applications it ran around.
        """
        probes = sorted({min(f.members) for name in DETECTORS for f in self._first_of(name) if f.members})
        if not probes:
            return []
        pairs, last, ran = dict(self.portfolio.similar_pairs), self._last_detection, self.detection_ran
        try:
            self.detect(probes, with_guarantees)
        finally:
            self.portfolio.similar_pairs, self._last_detection, self.detection_ran = pairs, last, ran
        # what a detector can prepare for the whole book beyond its tables (broker rings: every group scored)
        params = self.settings.detector_params()
        for name, stats in self.detector_statistics.items():
            detector = build_detector(name, **params.get(name, {}))
            if hasattr(detector, "warm"):
                detector.warm(self.portfolio, stats)
        return probes

    def _first_of(self, detector: str) -> list[Finding]:
        """The first stored finding of ``detector`` (none: ``[]``)."""
        return next(([f] for f in self.findings if f.detector == detector and f.members), [])

    def findings_around(self, app_ids: list[str], detection: IncrementalRun) -> list[Finding]:
        """The findings holding ``app_ids``: what the detectors found around
        them now and, for a detector that did not run there (or failed), what
        the last ``detect`` saved. A saved finding of a detector that ran is
        left out: the applications' data may have grown it, as a full
        ``detect`` would have (by finding id)."""
        redone = set(detection.seconds) - set(detection.errors)
        out = {f.finding_id: f for a in app_ids for f in self.findings_by_app.get(a, []) if f.detector not in redone}
        for f in detection.findings:
            out.setdefault(f.finding_id, f)
        return [out[k] for k in sorted(out)]

    # -- neighbourhood -----------------------------------------------------------
    @cached_property
    def _labels(self) -> np.ndarray:
        return _object_column(self.portfolio.applications["label"])

    def _persons_of(self, keys: set) -> pd.DataFrame:
        """Person rows for ``keys`` through a hash index of the keys built once."""
        persons = self.portfolio.persons
        if self._persons_by_key is None:
            # the index the portfolio's row map of the person keys holds (the same positions when the keys are unique)
            shared = self.portfolio.unique_keys("persons", "key")
            self._persons_by_key = shared if shared is not None else key_index(_object_column(persons["key"]))
        rows = self._persons_by_key.get_indexer(list(keys))
        return _numpy_backed(persons.iloc[rows[rows >= 0]]).reset_index(drop=True)

    def _target_apps(self, targets: np.ndarray) -> pd.DataFrame:
        """The applications at ``targets``, numpy-backed (as :attr:`apps` would give them)."""
        return _numpy_backed(self.portfolio.applications.iloc[targets]).set_index("application_id", drop=False)

    def link_arrays(self) -> dict[str, np.ndarray]:
        """Per row of the application → links CSR: its identifier's CSR index,
        entity code, kind code (in ``SHARED_KINDS``, -1 for other kinds), and
        the portfolio's hub decisions (``glue``, ``hub``, ``people``,
        ``fence``). Built on first use."""
        if self._link_arrays is None:
            ident_idx = self._app_link_ident
            hubs = self.hubs
            hub_keys = (
                hubs.index.get_level_values(0).astype(str) + "\x1f" + hubs.index.get_level_values(1).astype(str)
            ).to_numpy(dtype=object)
            # each hub's identifier in the identifier index (Arrow's hash look-up of the hub keys)
            at_ident = np.full(len(self._ident_index), -1, dtype=np.int64)
            if len(hub_keys) and len(self._ident_index):
                pos = pc.index_in(self._ident_index, value_set=pa.array(hub_keys, type=pa.large_string()))
                pos = pc.fill_null(pos, -1).to_numpy(zero_copy_only=False).astype(np.int64)
                held = pos >= 0
                at_ident[held] = pos[held]
            at = at_ident[ident_idx]
            found = at >= 0

            def column(name: str, fill, dtype):
                out = np.full(len(ident_idx), fill, dtype=dtype)
                out[found] = hubs[name].to_numpy(dtype=dtype)[at[found]]
                return out

            self._link_arrays = {
                "ident_idx": ident_idx,
                "entity_code": self._app_link_entity,
                "kind_code": pd.Index(SHARED_KINDS).get_indexer(self._kinds)[self._app_link_kind]
                if len(self._kinds)
                else np.zeros(len(ident_idx), dtype=np.int64),
                "glue": column("glue", False, bool),
                "hub": column("hub", False, bool),
                "people": column("people", np.nan, float),
                "fence": column("fence", np.nan, float),
            }
        return self._link_arrays

    def _identifier(self, i: int) -> str:
        """The identifier (without its kind) at ``i`` in the identifier index."""
        return self._ident_index[i].as_py().split("\x1f", 1)[1]

    def _bad_sharers(self) -> tuple[np.ndarray, np.ndarray]:
        """Per identifier, its known-bad sharers in time order: (offsets,
        rows of the identifier CSR). Built on first use."""
        if self._bad_sharers_csr is None:
            rows = np.flatnonzero(self.bad[self._link_app])
            n_ident = len(self._ident_offsets) - 1
            ident_of = np.repeat(np.arange(n_ident), np.diff(self._ident_offsets))[rows]
            order = np.lexsort((self.t[self._link_app[rows]], ident_of))
            offsets = np.searchsorted(ident_of[order], np.arange(n_ident + 1))
            self._bad_sharers_csr = (offsets, rows[order])
        return self._bad_sharers_csr

    def partners_of(self, positions: np.ndarray, per_kind: int = 5, scan: int = 20) -> list[Partner]:
        """Reason evidence for the applications at ``positions``: for each of
        their identifiers, the earliest ``scan`` known-bad applications that
        used it before, other people's only, at most ``per_kind`` per
        application and kind (reasons show five), in the order of the
        application's links. Array arithmetic over every candidate at once;
        only the partners kept become Python objects.

        Example
        -------
        >>> import tempfile
        >>> from ringscope.graph.embedded import EmbeddedStore
        >>> FlagIndex.build(EmbeddedStore(tempfile.mkdtemp())).partners_of(np.zeros(0, dtype=np.int64))
        []
        """
        positions = np.asarray(positions, dtype=np.int64).reshape(-1)
        starts, ends = self._app_offsets[positions], self._app_offsets[positions + 1]
        rows = csr_rows(starts, ends)
        if not len(rows):
            return []
        owner = np.repeat(np.arange(len(positions)), ends - starts)  # the position each link row is of
        ident_idx = self._app_link_ident[rows]
        links = np.flatnonzero(ident_idx >= 0)
        offsets, bad_rows = self._bad_sharers()
        first = offsets[ident_idx[links]]
        last = np.minimum(offsets[ident_idx[links] + 1], first + scan)
        link_of = np.repeat(links, last - first)  # nondecreasing: link order, then time order
        sharer_rows = bad_rows[csr_rows(first, last)]
        sharers = self._link_app[sharer_rows]
        me = positions[owner[link_of]]
        hit = (
            (self.t[sharers] < self.t[me])
            & self.timed[sharers]
            & (self._link_entity[sharer_rows] != self._app_link_entity[rows][link_of])
        )
        link_of, sharers = link_of[hit], sharers[hit]
        # the first ``per_kind`` hits of each (application, kind), in the order above
        n_kinds = max(len(self._kinds), 1)
        kind_code = self._app_link_kind[rows][link_of] % n_kinds
        group = owner[link_of] * n_kinds + kind_code
        order = np.argsort(group, kind="stable")
        sorted_group = group[order]
        group_start = np.flatnonzero(np.r_[True, sorted_group[1:] != sorted_group[:-1]])
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order)) - np.repeat(group_start, np.diff(np.r_[group_start, len(order)]))
        kept = np.flatnonzero(rank < per_kind)
        labels = self._labels
        return [
            Partner(
                self.app_pos[positions[owner[j]]],
                self._kinds[k],
                self._identifier(ident_idx[j]),
                self.app_pos[q],
                labels[q],
                self.timestamp(self.t[q]),
            )
            for j, k, q in zip(link_of[kept].tolist(), kind_code[kept].tolist(), sharers[kept].tolist())
        ]

    def timestamp(self, value) -> pd.Timestamp:
        """An ``applied_at`` from the index's integer times."""
        applied = self.portfolio.applications["applied_at"].dtype
        return pd.Timestamp(int(value), unit=np.datetime_data(applied.base)[0], tz="UTC").tz_convert(
            getattr(applied, "tz", None)
        )

    # -- features ------------------------------------------------------------------
    def graph_features(self, targets: np.ndarray) -> pd.DataFrame:
        """Earlier sharers and earlier known-bad sharers per kind, the hub
        flag and the same person's earlier applications, from the index
        (``features.application_features``' graph group, "as of" each
        application). Plain array arithmetic: one application or thousands.

        Each target is compared with every application sharing one of its
        identifiers, so a batch whose targets sit on busy identifiers (a NAT
        IP shared by 20,000) would hold tens of millions of sharer rows at
        once; the targets are taken in chunks of at most
        :data:`SHARER_ROWS_PER_CHUNK` sharer rows (a target's rows are never
        split), each target's features computed as alone.
        """
        targets = np.asarray(targets, dtype=np.int64).reshape(-1)
        if len(targets) <= 1:
            return self._graph_features(targets)
        sharers = self._sharer_rows_per_target(targets)
        if sharers.sum() <= SHARER_ROWS_PER_CHUNK:
            return self._graph_features(targets)
        bounds = chunk_bounds(sharers, SHARER_ROWS_PER_CHUNK)
        out = pd.concat([self._graph_features(targets[a:b]) for a, b in zip(bounds[:-1], bounds[1:])])
        out.index = pd.Index(self.app_pos[targets], name="application_id")  # concat would infer another dtype
        return out

    def _sharer_rows_per_target(self, targets: np.ndarray) -> np.ndarray:
        """Per target, how many link rows share one of its identifiers (the
        sharer rows :meth:`_graph_features` reads for it)."""
        starts, ends = self._app_offsets[targets], self._app_offsets[targets + 1]
        rows = csr_rows(starts, ends)
        owner = np.repeat(np.arange(len(targets)), ends - starts)
        idx = self.link_arrays()["ident_idx"][rows]
        ok = idx >= 0
        width = self._ident_offsets[idx[ok] + 1] - self._ident_offsets[idx[ok]]
        return np.bincount(owner[ok], weights=width, minlength=len(targets)).astype(np.int64)

    def _graph_features(self, targets: np.ndarray) -> pd.DataFrame:
        """:meth:`graph_features` of ``targets`` in one piece."""
        n, kinds = len(targets), len(SHARED_KINDS)
        arrays = self.link_arrays()
        starts, ends = self._app_offsets[targets], self._app_offsets[targets + 1]
        rows = csr_rows(starts, ends)
        owner = np.repeat(np.arange(n), ends - starts)
        idx = arrays["ident_idx"][rows]
        ok = idx >= 0
        rows, owner, idx = rows[ok], owner[ok], idx[ok]
        s, e = self._ident_offsets[idx], self._ident_offsets[idx + 1]
        sharer_rows = csr_rows(s, e)
        link_of = np.repeat(np.arange(len(idx)), e - s)
        sharer = self._link_app[sharer_rows]
        me = targets[owner][link_of]
        earlier = (
            (self.t[sharer] < self.t[me])
            & self.timed[sharer]
            & (self._link_entity[sharer_rows] != arrays["entity_code"][rows][link_of])
        )
        per_link = np.bincount(link_of, weights=earlier, minlength=len(idx))
        bad_link = np.bincount(link_of, weights=earlier & self.bad[sharer], minlength=len(idx))
        kind = arrays["kind_code"][rows]
        counted = kind >= 0  # kinds outside SHARED_KINDS are not features
        cell = owner[counted] * kinds + kind[counted]
        earlier_by = np.bincount(cell, weights=per_link[counted], minlength=n * kinds).reshape(n, kinds)
        bad_by = np.bincount(cell, weights=bad_link[counted], minlength=n * kinds).reshape(n, kinds)
        out = pd.DataFrame(
            np.hstack([earlier_by, bad_by]),
            index=pd.Index(self.app_pos[targets], name="application_id"),
            columns=[f"earlier_sharers_{k}" for k in SHARED_KINDS] + [f"bad_earlier_{k}" for k in SHARED_KINDS],
        )
        out["shares_hub"] = (np.bincount(owner, weights=arrays["hub"][rows], minlength=n) > 0).astype(float)
        out["known_bad_1hop"] = bad_by.sum(axis=1)
        # the same person's earlier applications
        codes, order, starts = self._entity_groups()
        earlier_same, bad_same = np.zeros(n), np.zeros(n)
        for j, pos in enumerate(targets.tolist()):
            code = codes[pos]
            members = order[starts[code] : starts[code + 1]] if code >= 0 else np.array([pos])
            before = (self.t[members] < self.t[pos]) & self.timed[members]
            earlier_same[j] = before.sum()
            bad_same[j] = (before & self.bad[members]).sum()
        out["earlier_applications_same_person"] = earlier_same
        out["bad_earlier_same_person"] = bad_same
        return out

    def finding_features(self, targets: np.ndarray, findings: list[Finding]) -> pd.DataFrame:
        """``features.finding_features`` for the applications at ``targets``
        and the findings holding them: the best label-free score per
        detector, how many findings, the largest, and members known bad
        before the application."""
        targets = np.asarray(targets, dtype=np.int64).reshape(-1)
        ids = self.app_pos[targets]
        where = {a: j for j, a in enumerate(ids)}
        best: list[dict[str, float]] = [{} for _ in ids]
        count, largest = np.zeros(len(ids)), np.zeros(len(ids))
        others: list[set] = [set() for _ in ids]
        for f in findings:
            label_part = sum(e.contribution for e in f.evidence if e.feature in LABEL_EVIDENCE)
            free = max(0.0, f.score - label_part)
            column = f"det_{f.detector}"
            for m in f.members:
                j = where.get(m)
                if j is None:
                    continue
                best[j][column] = max(best[j].get(column, free), free)
                count[j] += 1
                largest[j] = max(largest[j], f.size)
                others[j].update(o for o in f.members if o != m)
        known = np.zeros(len(ids))
        for j, pos in enumerate(targets.tolist()):
            if not others[j]:
                continue
            q = self.app_pos.get_indexer(list(others[j]))
            q = q[q >= 0]  # a member no longer in the graph
            known[j] = float(((self.t[q] < self.t[pos]) & self.timed[q] & self.bad[q]).sum())
        out = pd.DataFrame(best, index=pd.Index(ids, name="application_id")).fillna(0.0)
        out["findings_count"] = count
        out["largest_finding"] = largest
        out["known_bad_2hop"] = known
        return out

    def _entity_groups(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The applications of each entity as integer arrays: each
        application's entity code (-1 without one), the positions grouped by
        code (ascending within a group) and each group's start. A dict of an
        array per entity took ~100 bytes an application."""
        if not hasattr(self, "_entity_groups_cache"):
            codes, uniques = pd.factorize(self.app_entity, use_na_sentinel=True)
            small = np.int32 if len(codes) < 2**31 - 1 else np.int64
            codes = codes.astype(small)
            order = np.argsort(codes, kind="stable").astype(small)
            order = order[codes[order] >= 0]
            starts = np.searchsorted(codes[order], np.arange(len(uniques) + 1)).astype(small)
            self._entity_groups_cache = (codes, order, starts)
        return self._entity_groups_cache

    # -- scoring -------------------------------------------------------------------------
    def score(
        self,
        model: TrainedModel,
        app_ids: list[str],
        review: float | None = None,
        decline: float | None = None,
        with_guarantees: bool = True,
        method: str = "auto",
    ) -> FlagResult:
        """Score ``app_ids`` (already in the graph) incrementally.

        ``method``: ``"batch"`` (vectorised over all of them), ``"single"``
        (one at a time without DataFrames, :mod:`ringscope.detectors.risk.flagging_single`)
        or ``"auto"``: single up to ``SINGLE_PATH_MAX`` applications. Both
        give the same flags.
        """
        if method not in ("auto", "batch", "single"):
            raise ValueError(f"method must be 'auto', 'batch' or 'single', not {method!r}")
        self.use_known_bad(model.known_bad)  # known-bad neighbours as the model learned them
        review = model.config.review_threshold if review is None else review  # also decides ring_id
        targets = self.app_pos.get_indexer(list(app_ids))
        missing = [a for a, p in zip(app_ids, targets) if p < 0]
        if missing:
            raise KeyError(f"{len(missing)} applications are not in the graph, e.g. {missing[:3]}")
        if method == "single" or (method == "auto" and len(app_ids) <= SINGLE_PATH_MAX):
            return self._score_single(model, targets, review, decline, with_guarantees)
        seconds: dict[str, float] = {}
        started = time.perf_counter()
        detection = self.detect(list(app_ids), with_guarantees)
        new_findings = detection.findings
        seconds.update({f"detect {name}": t for name, t in detection.seconds.items()})
        seconds["local detection"] = time.perf_counter() - started

        started = time.perf_counter()
        target_apps = self._target_apps(targets)
        features = own_features(
            target_apps.reset_index(drop=True), self._persons_of(set(target_apps["person"].dropna()))
        )
        graph = self.graph_features(targets)
        for col in graph.columns:
            features[col] = graph[col].reindex(features.index).to_numpy()
        all_findings = self.findings_around(app_ids, detection)
        found = self.finding_features(targets, all_findings)
        for col in model.features:
            if col not in features.columns:
                features[col] = found[col].reindex(features.index).fillna(0.0).to_numpy() if col in found else 0.0
        seconds["features"] = time.perf_counter() - started

        started = time.perf_counter()
        scores = model.predict_proba(features)
        contrib = contributions(model, features)
        by_member: dict[str, list[Finding]] = {}  # one pass: a scan per application is quadratic
        for f in all_findings:
            for m in f.members:
                by_member.setdefault(m, []).append(f)
        context = ReasonContext(  # partners given: links and times are not read
            {a: by_member.get(a, []) for a in app_ids},
            pd.DataFrame(columns=_LINK_COLUMNS),
            target_apps.iloc[0:0][["applied_at", "label"]],
            partners=pd.DataFrame(self.partners_of(targets), columns=list(Partner._fields)),
        )
        reasons = build_reasons(contrib, features, context)
        values, columns = contrib.to_numpy(), list(contrib.columns)
        ring_ids = [
            accused_ring(by_member.get(a, []), a, values[row], columns, review, RING_DETECTORS)
            for row, a in enumerate(contrib.index)
        ]
        flags = pd.DataFrame(
            {
                "application_id": features.index,
                "score": np.round(scores, 4),
                "decision": model.decide(scores, review, decline),
                "ring_id": ring_ids,
                "reasons": reasons.reindex(features.index).to_numpy(),
            }
        )
        seconds["score"] = time.perf_counter() - started
        return FlagResult(flags, new_findings, seconds, errors=detection.errors)

    def single_path(self):
        """The per-application path over this index (built on first use)."""
        if self._single_path is None:
            from ringscope.detectors.risk.flagging_single import SingleApplicationPath

            self._single_path = SingleApplicationPath(self)
        return self._single_path

    def _score_single(
        self, model: TrainedModel, targets: np.ndarray, review, decline, with_guarantees: bool
    ) -> FlagResult:
        path = self.single_path()
        seconds: dict[str, float] = {}
        # one detection step for all of them: the findings holding an
        # application are the same whichever batch it is detected with
        started = time.perf_counter()
        ids = [str(self.app_pos[pos]) for pos in targets]
        detection = self.detect(ids, with_guarantees)
        seconds["local detection"] = time.perf_counter() - started
        rows = [
            path.score(
                model, int(pos), review, decline, self.findings_around([app_id], detection), RING_DETECTORS, seconds
            )
            for pos, app_id in zip(targets, ids)
        ]
        flags = pd.DataFrame(rows, columns=["application_id", "score", "decision", "ring_id", "reasons"])
        return FlagResult(flags, detection.findings, seconds, errors=detection.errors)


def chunk_bounds(costs: np.ndarray, budget: int) -> np.ndarray:
    """Boundaries ``[0, ..., len(costs)]`` cutting ``costs`` into consecutive
    chunks whose sums stay within ``budget``; an item costing more than the
    budget is a chunk of its own.

    Example
    -------
    >>> chunk_bounds(np.array([3, 3, 3, 9, 1]), 6).tolist()
    [0, 2, 3, 4, 5]
    """
    bounds, total = [0], 0
    for i, cost in enumerate(np.asarray(costs).tolist()):
        if total and total + cost > budget:
            bounds.append(i)
            total = 0
        total += cost
    bounds.append(len(costs))
    return np.asarray(bounds, dtype=np.int64)


def csr_rows(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(s, e)`` for each pair: the rows of several CSR slices.

    Example
    -------
    >>> csr_rows(np.array([0, 5]), np.array([2, 8])).tolist()
    [0, 1, 5, 6, 7]
    """
    lengths = ends - starts
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    return np.repeat(starts - np.cumsum(np.r_[0, lengths[:-1]]), lengths) + np.arange(total)


def _arrow_text(column: pd.Series):
    """A text column as one Arrow ``large_string`` array (no Python string per row)."""
    import pyarrow as pa

    values = column.array
    held = getattr(values, "_pa_array", None)
    if held is not None and (pa.types.is_string(held.type) or pa.types.is_large_string(held.type)):
        return held.combine_chunks().cast(pa.large_string())
    return pa.array(column.astype(str).to_numpy(dtype=object), type=pa.large_string())


def _object_array(values) -> np.ndarray:
    """An Arrow text array as an object array of Python strings."""
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=object)


def _object_column(column: pd.Series) -> np.ndarray:
    """One column as :func:`_numpy_backed` holds it, as an array."""
    if isinstance(column.dtype, pd.StringDtype) or str(column.dtype) in ("str", "string"):
        column = column.astype(object)
    return column.to_numpy(dtype=object)


def _numpy_backed(frame: pd.DataFrame) -> pd.DataFrame:
    """Arrow-backed string columns as object arrays (positional takes on
    Arrow columns cost ~1 ms each at a million rows; numpy's are free)."""
    out = frame.copy()
    for col in out.columns:
        if isinstance(out[col].dtype, pd.StringDtype) or str(out[col].dtype) in ("str", "string"):
            out[col] = out[col].astype(object)
    return out
