"""The columnar view of a portfolio that every detector reads.

Detectors never talk to a database: they ask a :class:`Portfolio` for
whole-portfolio columns, which it reads once from the store (either kind)
through ``read_nodes`` / ``read_relationships`` and caches. Running all
detectors therefore costs one read of each table, whatever the store.

The main shapes:

* ``applications`` — one row per application, its own fields plus the keys
  of its applicant, company, employer, agent and identifiers (wide);
* ``links`` — one row per (application, identifier kind, identifier) for
  everything applications can share (long): the input of ring detection;
* ``contacts``, ``guarantees``, ``roles`` — the other tables.

Resolved entities (record key → entity id, an :class:`EntityMap` that
:meth:`ringscope.detectors.identity.IdentityResolution.resolve` computes)
are given to a portfolio with :meth:`Portfolio.use_entities` before any
detector runs, so every detector reads the same ones whatever the order;
until then a portfolio uses the entities the last ``detect`` stored.

Two rules make every job's output a function of the stored data alone:

* tables are sorted by their identity (nodes by ``key``, relationships by
  ``src``, ``dst`` and identity properties) as they are read, so both stores,
  and one store written in any order, give the same frames;
* temporal and money columns go through :mod:`ringscope.detectors.values`: a value no
  lending book can hold (9999-12-31, ``inf``, 1e30) is read as missing and
  counted in :attr:`Portfolio.bad_values`, never raised.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from ringscope.detectors.components import component_labels
from ringscope.detectors.keys import RowsByValue, text_list
from ringscope.detectors.values import AMOUNT_LIMIT, TERM_LIMIT, BadValues, read_amounts, read_times
from ringscope.graph.model import REL_TYPES

__all__ = ["Portfolio", "EntityMap", "as_portfolio", "in_set", "LINK_KINDS"]

#: identifier kind → (relationship, node label); the kinds applications share
LINK_KINDS: dict[str, tuple[str, str]] = {
    "phone": ("Application-HAS_PHONE-Phone", "Phone"),
    "device": ("Application-HAS_DEVICE-Device", "Device"),
    "ip": ("Application-HAS_IP-IP", "IP"),
    "account": ("Application-HAS_ACCOUNT-BankAccount", "BankAccount"),
    "address": ("Application-HAS_ADDRESS-Address", "Address"),
    "email": ("Application-HAS_EMAIL-Email", "Email"),
    "contact_phone": ("Application-EMERGENCY_CONTACT-Phone", "Phone"),
    "employer": ("Application-DECLARES_EMPLOYER-Company", "Company"),
    "company": ("Application-FOR_COMPANY-Company", "Company"),
    "agent": ("Application-SUBMITTED_BY-Agent", "Agent"),
}

_APPLICATION_COLUMNS = [
    "applied_at",
    "amount",
    "term_months",
    "product",
    "channel",
    "label",
    "declared_monthly_revenue",
    "declared_monthly_income",
    "applicant_name",
    "applicant_name_raw",
    "borrower_label",
    "borrower_key",
    "id_checksum_ok",
    "id_region_known",
    "phone_valid",
]


@dataclass(frozen=True)
class EntityMap:
    """Resolved entities: record key → entity id (the smallest key of the
    entity) for the Person and Company keys merged with another; a key not
    in a map is its own entity.
    """

    person: pd.Series
    company: pd.Series


class Portfolio:
    """Cached whole-portfolio columns read from one store.

    Example
    -------
    >>> import tempfile
    >>> from ringscope.graph.embedded import EmbeddedStore
    >>> Portfolio(EmbeddedStore(tempfile.mkdtemp())).applications.shape[0]
    0
    """

    def __init__(self, store: Any) -> None:
        self.store = store
        #: record key → entity id, given by :meth:`use_entities` (else the stored entities)
        self.person_entity: pd.Series | None = None
        self.company_entity: pd.Series | None = None
        #: SIMILAR_TO pairs found by identity resolution, written back by ``detect``
        self.similar_pairs: dict[str, pd.DataFrame] = {}
        #: stored values read as missing (out of range, not finite): the jobs report them
        self.bad_values: list[BadValues] = []
        #: every table read, (``"nodes"`` or ``"rels"``, name, columns) → frame, once
        #: :meth:`remember_reads` is called (``None``: reads are not kept)
        self.reads: dict[tuple, pd.DataFrame] | None = None
        #: label → entity map of the SIMILAR_TO components the last ``detect`` stored (read on first use)
        self.stored_entity_maps: dict[str, pd.Series | None] = {}
        #: what detectors derive from the tables and the entities, by name (rings'
        #: ``entity_links``): computed once, dropped when the entities change
        self.derived: dict[str, Any] = {}
        #: whether :func:`ringscope.detectors.incremental.detect_around` keeps what each detector
        #: derived for the next call (``False``: dropped once the detector ran; a job that detects
        #: around one batch, such as ``flag``, need not hold every detector's tables at once)
        self.keep_derived = True
        #: (table, column) → value → rows, built once for :meth:`subset`
        self.row_maps: dict[tuple[str, ...], Any] = {}
        #: where the whole-portfolio passes run (:mod:`ringscope.detectors.engine`; ``None``: in process)
        self.engine: Any = None
        #: raw tables a subset reads (``nodes``/``rels`` beyond the cached ones), read once for all subsets
        self.subset_reads: dict[tuple, pd.DataFrame] = {}

    # -- raw tables ------------------------------------------------------
    def nodes(self, label: str, columns: list[str] | None = None) -> pd.DataFrame:
        """Node table ``label`` sorted by ``key``; requested columns missing
        from the store come back as NA."""
        memo = self._memo()
        key = ("nodes", label, None if columns is None else tuple(columns))
        if memo is not None and key in memo:
            return memo[key].copy()
        frame = _sorted(_with_columns(self.store.read_nodes(label, columns), columns), ["key"])
        if memo is not None:
            memo[key] = frame.copy()
        return frame

    def rels(self, name: str, columns: list[str] | None = None) -> pd.DataFrame:
        """Relationship table ``name`` sorted by ``src``, ``dst`` and its
        identity properties; requested columns missing come back as NA."""
        memo = self._memo()
        key = ("rels", name, None if columns is None else tuple(columns))
        if memo is not None and key in memo:
            return memo[key].copy()
        frame = _with_columns(self.store.read_relationships(name, columns), columns)
        identity = [c for c in ("src", "dst", *REL_TYPES[name].identity) if c in frame.columns]
        frame = _sorted(frame, identity)
        if memo is not None:
            memo[key] = frame.copy()
        return frame

    def _memo(self) -> dict | None:
        """The remembered reads, unless the caller is one of the cached
        tables (kept as themselves: remembering their raw reads too would
        hold every table twice)."""
        memo = self.reads
        if memo is None or sys._getframe(2).f_code.co_name in _CACHED_TABLES:
            return None
        return memo

    def remember_reads(self) -> None:
        """Keep every table read from now on (``reads``: (``"nodes"`` or
        ``"rels"``, name, columns) → frame) and answer a repeated read from
        it: a snapshot for a job that reads a table more than once, and what
        ``flag`` saves beside the store (:mod:`ringscope.detectors.risk.flag_state`)."""
        if self.reads is None:
            self.reads = {}

    def _checked(self, cleaned: tuple[pd.Series, list[BadValues]]) -> pd.Series:
        values, bad = cleaned
        self.bad_values.extend(bad)
        return values

    @cached_property
    def applications(self) -> pd.DataFrame:
        """One row per application: ``application_id``, its fields, and the
        keys ``person``, ``company``, ``employer``, ``agent``, ``phone``,
        ``device``, ``ip``, ``ip_prefix``, ``account``, ``address``, ``email``
        (missing as NA). ``applied_at`` is a UTC datetime; it and the figures
        are read as missing where implausible (see :mod:`ringscope.detectors.values`)."""
        apps = self.nodes("Application", _APPLICATION_COLUMNS).rename(columns={"key": "application_id"})
        for col in _APPLICATION_COLUMNS:
            if col not in apps.columns:
                apps[col] = pd.NA
        apps["applied_at"] = self._checked(
            read_times(
                apps["applied_at"],
                rows="applications",
                column="applied_at",
                effect="left out of bursts, time spans, as-of counts and the out-of-time split",
            )
        )
        for col, effect in _FIGURES.items():
            limit = TERM_LIMIT if col == "term_months" else AMOUNT_LIMIT
            apps[col] = self._checked(
                read_amounts(apps[col], limit=limit, rows="applications", column=col, effect=effect)
            )
        apps = apps.set_index("application_id", drop=False)
        applicant = self.rels("Person-APPLIED-Application").drop_duplicates("dst").set_index("dst")["src"]
        apps["person"] = applicant.reindex(apps.index).to_numpy()
        for kind in ("company", "employer", "agent", "phone", "device", "ip", "account", "address", "email"):
            table = self.link_table(kind)
            rows = apps.index.get_indexer(table["application_id"])
            values = np.full(len(apps), None, dtype=object)
            ok = rows >= 0
            # reversed, so the first identifier of an application wins
            values[rows[ok][::-1]] = table["identifier"].to_numpy(dtype=object)[ok][::-1]
            apps[kind] = values
        prefixes = self.nodes("IP", ["prefix"]).set_index("key")["prefix"]
        apps["ip_prefix"] = prefixes.reindex(apps["ip"]).to_numpy()
        return apps.reset_index(drop=True)

    def link_table(self, kind: str) -> pd.DataFrame:
        """``application_id``, ``identifier`` for one identifier ``kind``."""
        return self._links_by_kind[kind]

    @cached_property
    def _links_by_kind(self) -> dict[str, pd.DataFrame]:
        out = {}
        for kind, (rel, _label) in LINK_KINDS.items():
            # (src, dst) is the relationship's identity: rows are already unique
            frame = self.rels(rel, [])[["src", "dst"]]
            out[kind] = frame.rename(columns={"src": "application_id", "dst": "identifier"})
        return out

    @cached_property
    def links(self) -> pd.DataFrame:
        """Long table ``application_id``, ``kind``, ``identifier`` of every
        shareable identifier, plus ``person`` (the applicant, as its resolved
        entity when identity resolution ran)."""
        held = self._links_by_kind
        # in LINK_KINDS order whatever the dict's (a saved flag state lists the kinds sorted)
        frames = [held[kind].assign(kind=kind) for kind in LINK_KINDS if kind in held and len(held[kind])]
        person = self.applications[["application_id", "person"]].dropna()
        person = person.rename(columns={"person": "identifier"}).assign(kind="person")
        frames.append(person)
        links = pd.concat(frames, ignore_index=True)[["application_id", "kind", "identifier"]]
        return _single_chunks(links)

    @cached_property
    def contacts(self) -> pd.DataFrame:
        """Emergency contacts: ``application_id``, ``phone``, ``contact_name``, ``relation``."""
        frame = self.rels("Application-EMERGENCY_CONTACT-Phone", ["contact_name", "relation"])
        return frame.rename(columns={"src": "application_id", "dst": "phone"})

    @cached_property
    def guarantees(self) -> pd.DataFrame:
        """Guarantee edges guarantor → borrower over all four label pairs:
        ``guarantor``, ``guarantor_label``, ``borrower``, ``borrower_label``,
        ``application_id``, ``amount``, ``guarantor_name_raw``."""
        frames = []
        for src in ("Person", "Company"):
            for dst in ("Person", "Company"):
                f = self.rels(f"{src}-GUARANTEES-{dst}", ["application_id", "amount", "guarantor_name_raw"])
                for col in ("application_id", "amount", "guarantor_name_raw"):
                    if col not in f.columns:
                        f[col] = pd.NA
                frames.append(f.assign(guarantor_label=src, borrower_label=dst))
        g = pd.concat(frames, ignore_index=True).rename(columns={"src": "guarantor", "dst": "borrower"})
        g["amount"] = self._checked(
            read_amounts(g["amount"], rows="guarantees", column="amount", effect="left out of exposure totals")
        )
        return _single_chunks(g)

    @cached_property
    def roles(self) -> pd.DataFrame:
        """Registry roles: ``person``, ``company``, ``role``, ``share_pct``."""
        frames = []
        for role in ("LEGAL_REP_OF", "SHAREHOLDER_OF", "DIRECTOR_OF", "SUPERVISOR_OF"):
            cols = ["share_pct"] if role == "SHAREHOLDER_OF" else []
            f = self.rels(f"Person-{role}-Company", cols).assign(role=role)
            frames.append(f)
        out = pd.concat(frames, ignore_index=True).rename(columns={"src": "person", "dst": "company"})
        if "share_pct" not in out.columns:
            out["share_pct"] = pd.NA
        return _single_chunks(out)

    @cached_property
    def persons(self) -> pd.DataFrame:
        """Person nodes; ``birth_date`` read as missing where implausible."""
        persons = self.nodes("Person")
        if "birth_date" in persons.columns:
            persons["birth_date"] = self._checked(
                read_times(
                    persons["birth_date"],
                    utc=False,
                    rows="persons",
                    column="birth_date",
                    effect="no applicant age, no birth-date match",
                )
            )
        return persons

    @cached_property
    def birth_dates(self) -> pd.DataFrame:
        """``key`` and ``birth_date`` of the Person nodes as :attr:`persons`
        has them (implausible dates read as missing and counted the same
        way), without reading the persons' other columns (at 1M the whole
        table cost ~2 s): what the risk features read of them (a store
        without birth dates gives them all missing: no applicant age either way)."""
        if "persons" in self.__dict__:  # read already: its columns
            return self.persons[[c for c in ("key", "birth_date") if c in self.persons.columns]]
        persons = self.nodes("Person", ["birth_date"])  # missing from the store: all missing
        if len(persons):
            persons["birth_date"] = self._checked(
                read_times(
                    persons["birth_date"],
                    utc=False,
                    rows="persons",
                    column="birth_date",
                    effect="no applicant age, no birth-date match",
                )
            )
        return persons

    @cached_property
    def companies(self) -> pd.DataFrame:
        return self.nodes("Company")

    # -- resolved entities -------------------------------------------------
    def _stored_entities(self, label: str) -> pd.Series | None:
        """Entities saved by an earlier ``detect`` run (SIMILAR_TO components)."""
        cache = self.stored_entity_maps
        if label not in cache:
            try:
                pairs = self.store.read_relationships(f"{label}-SIMILAR_TO-{label}", []) if self.store else None
            except (KeyError, AttributeError):
                pairs = None
            cache[label] = _components(pairs) if pairs is not None and len(pairs) else None
        return cache[label]

    def cached_tables(self) -> dict[str, Any]:
        """The tables read and cleaned so far (``applications``,
        ``_links_by_kind``, ``contacts``, ...), by name: what ``flag`` saves
        beside the store."""
        held = vars(self)  # a cached_property keeps its value in the instance dict
        return {name: held[name] for name in _TABLES if name in held}

    def restore_tables(self, tables: dict[str, Any]) -> None:
        """Take tables saved from :meth:`cached_tables` instead of reading them again."""
        unknown = set(tables) - _TABLES
        if unknown:
            raise KeyError(f"not portfolio tables: {sorted(unknown)}")
        for name, table in tables.items():
            # a saved table may come back in pieces (one per record batch): one piece per column, as read
            if isinstance(table, pd.DataFrame):
                table = _single_chunks(table)
            elif isinstance(table, dict):
                table = {k: _single_chunks(v) if isinstance(v, pd.DataFrame) else v for k, v in table.items()}
            setattr(self, name, table)  # shadows the cached_property, as its first use would

    def subset(self, app_ids, *, guarantees: pd.DataFrame | None = None, persons=None) -> Portfolio:
        """The part of this portfolio about ``app_ids``, for incremental runs.

        It holds their applications, links and emergency contacts, the
        guarantees listed on them (or the ``guarantees`` rows given), and the
        registry roles, persons and companies of the parties those name,
        plus the Person records ``persons`` (keys) if given: records a
        detector reads without their applications. Entities resolved over
        this portfolio stay as they are.

        Example
        -------
        >>> import tempfile
        >>> from ringscope.graph.embedded import EmbeddedStore
        >>> Portfolio(EmbeddedStore(tempfile.mkdtemp())).subset(["A1"]).applications.shape[0]
        0
        """
        return _Subset(self, app_ids, guarantees, persons)

    def rows_where(self, table: str, column: str, values) -> np.ndarray:
        """Sorted positions of the rows of cached table ``table``
        (``"applications"``, ``"contacts"``, …, ``"links:<kind>"`` for
        :meth:`link_table`) whose ``column`` is one of
        ``values`` (as text), through the value → rows map :meth:`subset`
        uses, built once per table: a scope of a few applications costs
        its own rows, not a scan of the book.

        Example
        -------
        >>> import tempfile
        >>> from ringscope.graph.embedded import EmbeddedStore
        >>> Portfolio(EmbeddedStore(tempfile.mkdtemp())).rows_where("applications", "agent", ["AG1"]).tolist()
        []
        """
        frame = self.link_table(table.removeprefix("links:")) if table.startswith("links:") else getattr(self, table)
        return _rows(self, table, frame, column, values)

    def application_keys(self) -> pd.Index | None:
        """The application ids as an object index in row order, with its
        hash table: the one index every row map over application ids
        shares (:meth:`rows_where`), for other lookups by application id
        too; ``None`` when the ids are not unique.

        Example
        -------
        >>> import tempfile
        >>> from ringscope.graph.embedded import EmbeddedStore
        >>> len(Portfolio(EmbeddedStore(tempfile.mkdtemp())).application_keys())
        0
        """
        return self.unique_keys("applications", "application_id")

    def unique_keys(self, table: str, column: str) -> pd.Index | None:
        """The index of the row map of ``table``'s ``column`` (:meth:`rows_where`):
        its values as text, in row order, when they are unique (else ``None``),
        so that other lookups of the same keys share its hash table.

        Example
        -------
        >>> import tempfile
        >>> from ringscope.graph.embedded import EmbeddedStore
        >>> Portfolio(EmbeddedStore(tempfile.mkdtemp())).unique_keys("persons", "key") is None
        False
        """
        self.rows_where(table, column, ())
        keys = self.row_maps[(table, column)].index
        return keys if len(keys) == len(getattr(self, table)) else None

    def book_keys(self, table: str, column: str) -> pd.Index | None:
        """:meth:`unique_keys` of the whole book (of the parent, for a
        subset): a vocabulary for row maps over statistics of the whole book."""
        return self.unique_keys(table, column)

    def use_entities(self, entities: EntityMap) -> None:
        """Read ``entities`` (identity resolution's result) from now on
        instead of the stored ones; what was derived from the old ones is
        dropped. The job running the detectors calls it once, before them."""
        if entities.person is self.person_entity and entities.company is self.company_entity:
            return
        self.person_entity = entities.person
        self.company_entity = entities.company
        self.derived.clear()  # built on the old entities

    def entity_of(self, keys: pd.Series, label: str = "Person") -> pd.Series:
        """Map record keys to resolved entity ids (the key itself when
        identity resolution has not merged it with anything)."""
        mapping = self.person_entity if label == "Person" else self.company_entity
        if mapping is None:
            mapping = self._stored_entities(label)
        if mapping is None or len(mapping) == 0:
            return keys
        mapped = keys.map(mapping)
        return mapped.where(mapped.notna(), keys)


class _Subset(Portfolio):
    """A :class:`Portfolio` restricted to some applications (see ``Portfolio.subset``)."""

    def __init__(self, parent: Portfolio, app_ids, guarantees: pd.DataFrame | None, persons=None) -> None:
        super().__init__(store=None)
        self.parent = parent
        wanted = set(map(str, app_ids))
        by_id = _row_map(parent, "applications", parent.applications, "application_id")
        # the applications' codes: every other table is cut by them, with no second lookup of the ids
        self.app_codes = by_id.codes(wanted)
        apps = parent.applications.iloc[by_id.rows_of_codes(self.app_codes)].reset_index(drop=True)
        ids = set(text_list(apps["application_id"]))
        self.app_ids = ids

        # the cached tables, given instead of read; every table but the applications is cut on
        # first use (links, contacts, guarantees, roles, persons, companies: most scopes read a
        # few of them, and each cut costs a few milliseconds of small pandas operations)
        self.applications = apps
        self._given_guarantees = guarantees
        self._given_persons = persons
        self.person_entity = parent.person_entity
        self.company_entity = parent.company_entity
        #: kind → this subset's rows of the parent's link table, cut on first use (:meth:`link_table`)
        self._link_tables: dict[str, pd.DataFrame] = {}

    @cached_property
    def guarantees(self) -> pd.DataFrame:
        """The guarantees listed on the subset's applications (or the rows given)."""
        given = self._given_guarantees
        if given is not None:
            return given.reset_index(drop=True)
        parent = self.parent
        return _take_applications(parent, "guarantees", parent.guarantees, "application_id", self.app_codes)

    @cached_property
    def _parties(self) -> tuple[set[str], set[str]]:
        """The people and firms the applications and their guarantees name."""
        apps, g = self.applications, self.guarantees
        people = set(text_list(apps["person"]))
        firms = set(text_list(apps["company"])) | set(text_list(apps["employer"]))
        for side in ("guarantor", "borrower"):
            label = g[f"{side}_label"]
            people |= set(text_list(g.loc[label == "Person", side]))
            firms |= set(text_list(g.loc[label == "Company", side]))
        return people, firms

    @cached_property
    def roles(self) -> pd.DataFrame:
        """The registry roles of the parties :attr:`_parties` names."""
        parent, (people, firms) = self.parent, self._parties
        roles = parent.roles
        rows = np.union1d(
            _rows(parent, "roles", roles, "person", people), _rows(parent, "roles", roles, "company", firms)
        )
        return roles.iloc[rows].reset_index(drop=True)

    @cached_property
    def _named(self) -> tuple[set[str], set[str]]:
        """Every person and firm of the subset: the parties, those of their
        roles and the Person records given."""
        people, firms = (set(held) for held in self._parties)
        roles = self.roles
        people |= set(text_list(roles["person"]))
        firms |= set(text_list(roles["company"]))
        if self._given_persons is not None:
            people |= set(map(str, self._given_persons))
        return people, firms

    @cached_property
    def persons(self) -> pd.DataFrame:
        parent = self.parent
        return _take(parent, "persons", parent.persons, "key", self._named[0])

    @cached_property
    def birth_dates(self) -> pd.DataFrame:
        persons = self.persons
        return persons[[c for c in ("key", "birth_date") if c in persons.columns]]

    @cached_property
    def companies(self) -> pd.DataFrame:
        parent = self.parent
        return _take(parent, "companies", parent.companies, "key", self._named[1])

    @cached_property
    def _links_by_kind(self) -> dict[str, pd.DataFrame]:
        return {kind: self.link_table(kind) for kind in self.parent._links_by_kind}

    def link_table(self, kind: str) -> pd.DataFrame:
        """``application_id``, ``identifier`` for one identifier ``kind``: the
        parent's rows of this subset's applications, cut on first use of
        that kind alone (a scope reading its phones does not cut the nine
        other tables)."""
        held = self._link_tables
        if kind not in held:
            table = self.parent._links_by_kind[kind]
            held[kind] = _take_applications(self.parent, f"links:{kind}", table, "application_id", self.app_codes)
        return held[kind]

    @cached_property
    def contacts(self) -> pd.DataFrame:
        return _take_applications(self.parent, "contacts", self.parent.contacts, "application_id", self.app_codes)

    def _parent_read(self, how: str, name: str, columns: list[str] | None) -> tuple[tuple, pd.DataFrame]:
        """The parent's table, read once for every subset of it (a scope per
        call would otherwise read the store, or copy a remembered read, each time)."""
        key = (how, name, None if columns is None else tuple(columns))
        held = self.parent.subset_reads
        if key not in held:
            held[key] = (self.parent.nodes if how == "nodes" else self.parent.rels)(name, columns)
        return key, held[key]

    def nodes(self, label: str, columns: list[str] | None = None) -> pd.DataFrame:
        key, frame = self._parent_read("nodes", label, columns)
        if label == "Application":
            return _take_applications(self.parent, repr(key), frame, "key", self.app_codes)
        return frame.copy()

    def rels(self, name: str, columns: list[str] | None = None) -> pd.DataFrame:
        key, frame = self._parent_read("rels", name, columns)
        source, _, target = name.split("-")
        sides = [side for side, label in (("src", source), ("dst", target)) if label == "Application"]
        if len(sides) == 1:  # rows by a value → rows map built once
            return _take_applications(self.parent, repr(key), frame, sides[0], self.app_codes)
        for side in sides:
            frame = frame[in_set(frame[side], self.app_ids)].reset_index(drop=True)
        return frame.copy() if not sides else frame

    def _stored_entities(self, label: str) -> pd.Series | None:
        return self.parent._stored_entities(label)

    def link_rows(self, kind: str) -> np.ndarray:
        """The sorted positions, in the parent's link table of ``kind``, of
        the rows :meth:`link_table` holds (the same row map cuts both)."""
        table = self.parent._links_by_kind[kind]
        return _application_rows(self.parent, f"links:{kind}", table, "application_id", self.app_codes)

    def book_keys(self, table: str, column: str) -> pd.Index | None:
        return self.parent.book_keys(table, column)


def _rows(parent: Portfolio, name: str, frame: pd.DataFrame, column: str, values: set[str]) -> np.ndarray:
    """Positions of ``frame``'s rows whose ``column`` (as text) is in ``values``,
    in ``frame``'s order, through a value → rows map built once per parent
    table: a subset of a few applications costs lookups, not a scan of
    every table of a million-row book."""
    return _row_map(parent, name, frame, column).rows(values)


def _row_map(parent: Portfolio, name: str, frame: pd.DataFrame, column: str) -> RowsByValue:
    """The value → rows map of ``frame[column]`` (cached table ``name``), built once."""
    cache = parent.row_maps
    key = (name, column)
    if key not in cache:
        cache[key] = RowsByValue(frame[column], vocabulary=_vocabulary(parent, name, column))
    return cache[key]


def _take_applications(parent: Portfolio, name: str, frame: pd.DataFrame, column: str, codes) -> pd.DataFrame:
    """The rows of ``frame`` whose ``column`` holds one of the applications
    at ``codes`` (:meth:`RowsByValue.codes` of the parent's application ids).
    The table's map shares the application ids' index, so the codes find
    its rows with no text lookup: a subset looks its ids up once, not once
    per table. A column holding an id outside the book has a map of its
    own, which the ids themselves are looked up in."""
    return frame.iloc[_application_rows(parent, name, frame, column, codes)].reset_index(drop=True)


def _application_rows(parent: Portfolio, name: str, frame: pd.DataFrame, column: str, codes) -> np.ndarray:
    """The sorted positions of :func:`_take_applications`' rows."""
    by_id = _row_map(parent, "applications", parent.applications, "application_id")
    cache = parent.row_maps
    key = (name, column)
    if key not in cache:
        cache[key] = RowsByValue(frame[column], vocabulary=by_id.index)
    held = cache[key]
    if held.index is by_id.index:
        return held.rows_of_codes(codes)
    return held.rows(by_id.index[np.asarray(codes, dtype=np.int64)])


#: (table, column) whose values are the keys of another table (its own row map's keys): the row
#: maps over them share that table's index of keys (at a million applications each index of the
#: application ids took ~120 MB, and sixteen maps were built over them)
_KEYS_OF = {
    ("applications", "person"): ("persons", "key"),
    ("roles", "person"): ("persons", "key"),
    ("roles", "company"): ("companies", "key"),
}


def _vocabulary(parent: Portfolio, name: str, column: str) -> pd.Index | None:
    """The index of keys the row map of ``name``'s ``column`` shares (see :data:`_KEYS_OF`), if any."""
    if column == "application_id" or (column == "key" and name.startswith("('nodes', 'Application'")):
        owner = ("applications", "application_id")
    else:
        owner = _KEYS_OF.get((name, column))
    if owner is None or owner == (name, column):
        return None
    if owner not in parent.row_maps:
        parent.row_maps[owner] = RowsByValue(getattr(parent, owner[0])[owner[1]])
    return parent.row_maps[owner].index


def _take(parent: Portfolio, name: str, frame: pd.DataFrame, column: str, values: set[str]) -> pd.DataFrame:
    """The rows of ``frame`` whose ``column`` is in ``values`` (see :func:`_rows`)."""
    return frame.iloc[_rows(parent, name, frame, column, values)].reset_index(drop=True)


#: the cached properties that read tables (their reads are not remembered twice)
_CACHED_TABLES = frozenset(
    {
        "applications",
        "_links_by_kind",
        "links",
        "contacts",
        "guarantees",
        "roles",
        "persons",
        "companies",
        "_stored_entities",
    }
)

#: the cached tables (``cached_property``s) :meth:`Portfolio.restore_tables` may be given
_TABLES = frozenset(name for name in _CACHED_TABLES if isinstance(getattr(Portfolio, name, None), cached_property))

#: numeric application columns → what a missing value means for the jobs
_FIGURES = {
    "amount": "left out of amount checks and features",
    "declared_monthly_revenue": "left out of cash-flow and template checks",
    "declared_monthly_income": "left out of cash-flow and template checks",
    "term_months": "left out of leverage checks",
}


def _sorted(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``frame`` in the order of ``columns`` (a store's own row order depends
    on how it was written; results must not).

    Notes
    -----
    Arrow's sort of the key columns (stable; text in code-point order on
    both stores' string types): about a second per million rows, where a
    multi-column pandas sort of text takes several. A table already in
    order is returned as it is.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    frame = _single_chunks(frame)
    if len(frame) < 2 or not columns:
        return frame.reset_index(drop=True)
    arrays = {}
    for column in columns:
        try:
            arrays[column] = pa.array(frame[column], from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed types written by another tool: order as text
            arrays[column] = pa.array(frame[column].astype(str))
    order = pc.sort_indices(pa.table(arrays), sort_keys=[(c, "ascending") for c in columns]).to_numpy()
    if np.array_equal(order, np.arange(len(frame))):
        return frame.reset_index(drop=True)
    return frame.take(order).reset_index(drop=True)


def _single_chunks(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with each Arrow-backed column in one piece.

    A store reads a table in several pieces (one per Parquet row group or
    batch), and Arrow's ``take`` over a column in pieces first joins them:
    every subset of a few rows then copies the whole column (about a
    millisecond per column at 200k rows, paid by every scope of every
    detector). Joined once here, a take costs what its rows cost.

    Example
    -------
    >>> import pyarrow as pa
    >>> parts = pa.chunked_array([["A1"], ["A2"]])
    >>> frame = pd.DataFrame({"key": pd.arrays.ArrowExtensionArray(parts)})
    >>> _single_chunks(frame)["key"].array._pa_array.num_chunks
    1
    """
    joined = {}
    for column in frame.columns:
        values = frame[column].array
        pieces = getattr(values, "_pa_array", None)
        if pieces is not None and getattr(pieces, "num_chunks", 1) > 1:
            whole = _one_piece(values, pieces)
            if whole is not None:
                joined[column] = whole
    if not joined:
        return frame
    frame = frame.copy(deep=False)
    for column, values in joined.items():
        frame[column] = pd.Series(values, index=frame.index, name=column)
    return frame


def _one_piece(values, pieces):
    """``values`` (an Arrow-backed array) over one piece, of the same dtype
    (``str`` and ``string`` share a class but not their missing value), or
    ``None`` when it cannot be rebuilt as it was."""
    import pyarrow as pa

    whole = pa.chunked_array([pieces.combine_chunks()], type=pieces.type)
    try:
        joined = type(values)(whole, dtype=values.dtype)
    except TypeError:  # ArrowExtensionArray: the dtype is the Arrow type's
        joined = type(values)(whole)
    return joined if joined.dtype == values.dtype else None


def _with_columns(frame: pd.DataFrame, columns: list[str] | None) -> pd.DataFrame:
    for col in columns or ():
        if col not in frame.columns:
            frame[col] = pd.Series(pd.NA, index=frame.index, dtype=object)
    return frame


def _components(pairs: pd.DataFrame) -> pd.Series:
    """key → smallest key of its connected component over ``src``/``dst`` pairs."""
    import numpy as np

    keys, idx = np.unique(np.concatenate([pairs["src"].to_numpy(str), pairs["dst"].to_numpy(str)]), return_inverse=True)
    m = len(pairs)
    labels = component_labels(len(keys), idx[:m], idx[m:])
    frame = pd.DataFrame({"key": keys, "component": labels})
    smallest = frame.groupby("component")["key"].min()
    return pd.Series(smallest.reindex(labels).to_numpy(), index=keys)


def in_set(column: pd.Series, values) -> np.ndarray:
    """``column.astype(str).isin(values)`` as a boolean array, for large value sets.

    pandas' ``isin`` on Arrow-backed text converts the wanted values one by
    one (about 1 s for 50,000 values over a million rows); Arrow's ``is_in``
    takes them as one array. Missing entries are never in the set.

    Example
    -------
    >>> in_set(pd.Series(["A1", "A2", None, "A3"]), {"A3", "A1"}).tolist()
    [True, False, False, True]
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    wanted = None
    if isinstance(values, (pd.Series, pd.Index)) and not values.hasnans:
        try:  # a text column as one array, not element by element
            wanted = pa.array(values, from_pandas=True)
            text = pa.types.is_string(wanted.type) or pa.types.is_large_string(wanted.type)
            wanted = wanted.cast(pa.large_string()) if text else None
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            wanted = None
        if wanted is not None and isinstance(wanted, pa.ChunkedArray):
            wanted = wanted.combine_chunks()
    if wanted is None:
        wanted = pa.array(list(map(str, values)), type=pa.large_string())
    try:
        text = pa.array(column, from_pandas=True)
        if not (pa.types.is_string(text.type) or pa.types.is_large_string(text.type)):
            raise TypeError
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):  # numbers or mixed types: compare as text
        text = pa.array(column.astype(str).where(column.notna(), None), from_pandas=True, type=pa.large_string())
    found = pc.is_in(text.cast(pa.large_string()), value_set=wanted, skip_nulls=True)
    return found.fill_null(False).to_numpy(zero_copy_only=False)


def as_portfolio(source: Any) -> Portfolio:
    """Accept a store or a :class:`Portfolio` (detectors take either)."""
    return source if isinstance(source, Portfolio) else Portfolio(source)
