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

Identity resolution may attach ``person_entity`` / ``company_entity`` maps
(record key → entity id) that later detectors use instead of raw keys.

Two rules make every job's output a function of the stored data alone:

* tables are sorted by their identity (nodes by ``key``, relationships by
  ``src``, ``dst`` and identity properties) as they are read, so both stores,
  and one store written in any order, give the same frames;
* temporal and money columns go through :mod:`detectors.values`: a value no
  lending book can hold (9999-12-31, ``inf``, 1e30) is read as missing and
  counted in :attr:`Portfolio.bad_values`, never raised.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from detectors.values import AMOUNT_LIMIT, TERM_LIMIT, BadValues, read_amounts, read_times
from graph.model import REL_TYPES

__all__ = ["Portfolio", "as_portfolio", "LINK_KINDS"]

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


class Portfolio:
    """Cached whole-portfolio columns read from one store.

    Example
    -------
    >>> import tempfile
    >>> from graph.embedded import EmbeddedStore
    >>> Portfolio(EmbeddedStore(tempfile.mkdtemp())).applications.shape[0]
    0
    """

    def __init__(self, store: Any) -> None:
        self.store = store
        #: record key → entity id, set by identity resolution (else identity)
        self.person_entity: pd.Series | None = None
        self.company_entity: pd.Series | None = None
        #: SIMILAR_TO pairs found by identity resolution, written back by ``detect``
        self.similar_pairs: dict[str, pd.DataFrame] = {}
        #: stored values read as missing (out of range, not finite): the jobs report them
        self.bad_values: list[BadValues] = []

    # -- raw tables ------------------------------------------------------
    def nodes(self, label: str, columns: list[str] | None = None) -> pd.DataFrame:
        """Node table ``label`` sorted by ``key``; requested columns missing
        from the store come back as NA."""
        return _sorted(_with_columns(self.store.read_nodes(label, columns), columns), ["key"])

    def rels(self, name: str, columns: list[str] | None = None) -> pd.DataFrame:
        """Relationship table ``name`` sorted by ``src``, ``dst`` and its
        identity properties; requested columns missing come back as NA."""
        frame = _with_columns(self.store.read_relationships(name, columns), columns)
        identity = [c for c in ("src", "dst", *REL_TYPES[name].identity) if c in frame.columns]
        return _sorted(frame, identity)

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
        are read as missing where implausible (see :mod:`detectors.values`)."""
        apps = self.nodes("Application", _APPLICATION_COLUMNS).rename(columns={"key": "application_id"})
        for col in _APPLICATION_COLUMNS:
            if col not in apps.columns:
                apps[col] = pd.NA
        apps["applied_at"] = self._checked(read_times(
            apps["applied_at"], rows="applications", column="applied_at",
            effect="left out of bursts, time spans, as-of counts and the out-of-time split"))
        for col, effect in _FIGURES.items():
            limit = TERM_LIMIT if col == "term_months" else AMOUNT_LIMIT
            apps[col] = self._checked(read_amounts(apps[col], limit=limit, rows="applications", column=col,
                                                   effect=effect))
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
        frames = [t.assign(kind=kind) for kind, t in self._links_by_kind.items() if len(t)]
        person = self.applications[["application_id", "person"]].dropna()
        person = person.rename(columns={"person": "identifier"}).assign(kind="person")
        frames.append(person)
        links = pd.concat(frames, ignore_index=True)[["application_id", "kind", "identifier"]]
        return links

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
        g["amount"] = self._checked(read_amounts(g["amount"], rows="guarantees", column="amount",
                                                 effect="left out of exposure totals"))
        return g

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
        return out

    @cached_property
    def persons(self) -> pd.DataFrame:
        """Person nodes; ``birth_date`` read as missing where implausible."""
        persons = self.nodes("Person")
        if "birth_date" in persons.columns:
            persons["birth_date"] = self._checked(read_times(
                persons["birth_date"], utc=False, rows="persons", column="birth_date",
                effect="no applicant age, no birth-date match"))
        return persons

    @cached_property
    def companies(self) -> pd.DataFrame:
        return self.nodes("Company")

    # -- resolved entities -------------------------------------------------
    def _stored_entities(self, label: str) -> pd.Series | None:
        """Entities saved by an earlier ``detect`` run (SIMILAR_TO components)."""
        cache = self.__dict__.setdefault("_stored_entity_maps", {})
        if label not in cache:
            try:
                pairs = self.store.read_relationships(f"{label}-SIMILAR_TO-{label}", []) if self.store else None
            except (KeyError, AttributeError):
                pairs = None
            cache[label] = _components(pairs) if pairs is not None and len(pairs) else None
        return cache[label]

    def subset(self, app_ids, *, guarantees: pd.DataFrame | None = None, persons=None) -> "Portfolio":
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
        >>> from graph.embedded import EmbeddedStore
        >>> Portfolio(EmbeddedStore(tempfile.mkdtemp())).subset(["A1"]).applications.shape[0]
        0
        """
        return _Subset(self, app_ids, guarantees, persons)

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
        apps = parent.applications
        apps = apps[_isin(apps["application_id"], wanted)].reset_index(drop=True)
        ids = set(apps["application_id"].astype(str))
        self.app_ids = ids

        def mine(frame: pd.DataFrame) -> pd.DataFrame:
            return frame[_isin(frame["application_id"], ids)].reset_index(drop=True)

        self.__dict__["applications"] = apps
        self.__dict__["_links_by_kind"] = {kind: mine(t) for kind, t in parent._links_by_kind.items()}
        self.__dict__["contacts"] = mine(parent.contacts)
        g = mine(parent.guarantees) if guarantees is None else guarantees.reset_index(drop=True)
        self.__dict__["guarantees"] = g
        people = set(apps["person"].dropna().astype(str))
        firms = set(apps["company"].dropna().astype(str)) | set(apps["employer"].dropna().astype(str))
        for side in ("guarantor", "borrower"):
            label = g[f"{side}_label"]
            people |= set(g.loc[label == "Person", side].dropna().astype(str))
            firms |= set(g.loc[label == "Company", side].dropna().astype(str))
        roles = parent.roles
        roles = roles[_isin(roles["person"], people) | _isin(roles["company"], firms)]
        self.__dict__["roles"] = roles.reset_index(drop=True)
        people |= set(roles["person"].astype(str))
        firms |= set(roles["company"].astype(str))
        if persons is not None:
            people |= set(map(str, persons))
        persons = parent.persons
        self.__dict__["persons"] = persons[_isin(persons["key"], people)].reset_index(drop=True)
        companies = parent.companies
        self.__dict__["companies"] = companies[_isin(companies["key"], firms)].reset_index(drop=True)
        self.person_entity = parent.person_entity
        self.company_entity = parent.company_entity

    def nodes(self, label: str, columns: list[str] | None = None) -> pd.DataFrame:
        frame = self.parent.nodes(label, columns)
        if label == "Application":
            frame = frame[_isin(frame["key"], self.app_ids)].reset_index(drop=True)
        return frame

    def rels(self, name: str, columns: list[str] | None = None) -> pd.DataFrame:
        frame = self.parent.rels(name, columns)
        source, _, target = name.split("-")
        for side, label in (("src", source), ("dst", target)):
            if label == "Application":
                frame = frame[_isin(frame[side], self.app_ids)].reset_index(drop=True)
        return frame

    def _stored_entities(self, label: str) -> pd.Series | None:
        return self.parent._stored_entities(label)


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


def _with_columns(frame: pd.DataFrame, columns: list[str] | None) -> pd.DataFrame:
    for col in columns or ():
        if col not in frame.columns:
            frame[col] = pd.Series(pd.NA, index=frame.index, dtype=object)
    return frame


def _components(pairs: pd.DataFrame) -> pd.Series:
    """key → smallest key of its connected component over ``src``/``dst`` pairs."""
    import numpy as np
    from scipy import sparse
    from scipy.sparse.csgraph import connected_components

    keys, idx = np.unique(np.concatenate([pairs["src"].to_numpy(str), pairs["dst"].to_numpy(str)]),
                          return_inverse=True)
    m = len(pairs)
    graph = sparse.coo_matrix((np.ones(m), (idx[:m], idx[m:])), shape=(len(keys), len(keys)))
    _, labels = connected_components(graph, directed=False)
    frame = pd.DataFrame({"key": keys, "component": labels})
    smallest = frame.groupby("component")["key"].min()
    return pd.Series(smallest.reindex(labels).to_numpy(), index=keys)


def _isin(values, lookup) -> np.ndarray:
    """``values.isin(lookup)`` for text keys, through Arrow's hash set.

    pandas' ``isin`` on Arrow strings builds a Python object per *lookup*
    value: seconds when the lookup is a batch or the whole book. Values are
    compared as text (as ``astype(str)`` would), missing ones are never in.

    Example
    -------
    >>> _isin(pd.Series(["a", None, "c"]), {"c", "d"}).tolist()
    [False, False, True]
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    def text(x) -> pa.Array:
        if isinstance(x, (pd.Series, pd.Index)) and isinstance(x.dtype, pd.StringDtype):
            return pa.array(x).cast(pa.large_string())  # Arrow-backed already: no Python objects
        arr = np.asarray(list(x) if isinstance(x, (set, frozenset, dict)) else x, dtype=object)
        try:
            return pa.array(arr, type=pa.large_string(), from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # numbers among the keys: compare their text
            return pa.array(pd.Series(arr, dtype=object).astype(str), type=pa.large_string(), from_pandas=True)

    found = pc.is_in(text(values), value_set=text(lookup), skip_nulls=True)
    return found.fill_null(False).to_numpy(zero_copy_only=False)


def as_portfolio(source: Any) -> Portfolio:
    """Accept a store or a :class:`Portfolio` (detectors take either)."""
    return source if isinstance(source, Portfolio) else Portfolio(source)
