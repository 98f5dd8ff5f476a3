"""Identity resolution: who is really behind each Person and Company record.

Fraud rings reuse people under slightly different identities, and honest
customers type their own details inconsistently (traditional characters,
pinyin, a wrong digit). This module decides which records are one entity and
reports the conflicts that are fraud signals in themselves.

:class:`IdentityResolution` runs the Fellegi–Sunter engine
(:func:`ringscope.detectors.resolution.linkage.resolve_records`: blocking, rapidfuzz comparisons,
m and u by EM, term frequencies, a fitted prior, clustering with a chaining
guard) over the portfolio's persons (with the applicant phones and
addresses) and groups its companies by core name (有限公司, 集团, city
prefixes stripped). :meth:`IdentityResolution.resolve` returns the entity
map (an :class:`~ringscope.detectors.portfolio.EntityMap`), which the
detection jobs give the portfolio before any detector runs;
:meth:`IdentityResolution.run` sets ``portfolio.similar_pairs`` (what
``detect`` saves) and reports conflicts: one ID under several unrelated
names, one ID cycling through phones, one name + birth date under several ID
numbers, fuzzy duplicates under different IDs, and IDs that fail their
checksum.

Incrementally (``detect_around``), the model is fitted and every record
resolved over the whole book in :meth:`IdentityResolution.statistics`; the
scope around new applications holds only what their findings read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ringscope.detectors.base import Detector, Evidence, Finding, param
from ringscope.detectors.components import component_labels
from ringscope.detectors.keys import is_missing, key_index, rows_by_value
from ringscope.detectors.portfolio import EntityMap, as_portfolio, in_set
from ringscope.detectors.resolution.companies import company_core_name, resolve_companies
from ringscope.detectors.resolution.linkage import _MISSING, Resolution, _arrays, resolve_records
from ringscope.detectors.resolution.matching import anagram_key, block_pairs, compare_names

__all__ = [
    "Resolution",
    "resolve_records",
    "IdentityResolution",
    "IdentityStatistics",
    "application_entities",
    "company_core_name",
]


def _features_json(row: pd.Series, fields: tuple[str, ...]) -> str:
    out = {}
    for f in fields:
        sim = row[f]
        out[f] = {"similarity": None if pd.isna(sim) else round(float(sim), 3), "level": int(row[f + "_level"])}
    return json.dumps(out, ensure_ascii=False)


def _pairs_within(
    pairs: pd.DataFrame,
    lookups: dict | None,
    name: str,
    keys: pd.Index,
    sides: tuple[str, str] = ("src", "dst"),
    vocabulary: pd.Index | None = None,
) -> pd.DataFrame:
    """The rows of ``pairs`` with both ends in ``keys``, in their order
    (a row map of the first end, kept in ``lookups`` under ``name``, over
    ``vocabulary`` if given: see ``RowsByValue``; one scan without ``lookups``)."""
    first, second = sides
    rows = _rows_in(lookups, name, pairs, first, keys, vocabulary)
    some = pairs.iloc[rows]
    return some[in_set(some[second], keys)].reset_index(drop=True)


def _rows_in(
    lookups: dict | None, name: str, table: Any, column: str | None, wanted: Any, vocabulary: pd.Index | None = None
) -> np.ndarray:
    """Sorted positions of the rows of ``table[column]`` (of ``table``
    itself, a Series or Index, without ``column``) whose value, as text, is
    one of ``wanted``: through the row map kept in ``lookups`` under
    ``name`` (:func:`rows_by_value`), or, without ``lookups``, by one scan
    that builds and keeps nothing (a job that asks once, such as ``flag``'s
    one detection: the maps over every record, entity and name + birth date
    were about 0.8 GB at a million applications).

    Example
    -------
    >>> frame = pd.DataFrame({"key": ["a", "b", None, "a"]})
    >>> _rows_in({}, "k", frame, "key", ["a", None]).tolist(), _rows_in(None, "k", frame, "key", {"a"}).tolist()
    ([0, 3], [0, 3])
    """
    if lookups is not None:
        return rows_by_value(lookups, name, table, column, vocabulary).rows(wanted)
    values = table if column is None else table[column]
    if isinstance(values, pd.Index):
        values = pd.Series(values.array, copy=False)
    text = [str(v) for v in wanted if not pd.isna(v)]  # missing is never a key (RowsByValue's rule)
    return np.flatnonzero(in_set(values, text)).astype(np.int64)


def _lookups(portfolio, stats: IdentityStatistics) -> dict | None:
    """``stats``' kept row maps, or ``None`` (scan instead) when the
    portfolio (a scope's parent, for a scope) keeps nothing between
    detections (``Portfolio.keep_derived`` off)."""
    root = getattr(portfolio, "parent", None) or portfolio
    return stats.lookups if getattr(root, "keep_derived", True) else None


def _quiet_applications(apps: pd.DataFrame, stats: IdentityStatistics, rows: np.ndarray | None = None) -> np.ndarray:
    """Per application: can no identity finding hold it (see ``IdentityResolution.around``)?
    With ``rows``, per application at those positions only (the same answers)."""
    if rows is not None:
        return _quiet_rows(apps, stats, rows)
    person = apps["person"].astype(object)
    present = person.notna().to_numpy()
    key = person.where(present, None).astype(str).to_numpy(dtype=object)
    counts = pd.Series(key[present]).value_counts()
    alone = np.ones(len(apps), dtype=bool)
    alone[present] = pd.Series(key[present]).map(counts).to_numpy() == 1
    nd = stats.name_dob
    shared = nd.map(nd.value_counts()) >= 2
    paired = set(stats.person_entity.index.astype(str)) | set(nd.index[shared.to_numpy()].astype(str))
    known = np.zeros(len(apps), dtype=bool)
    known[present] = pd.Series(key[present]).isin(paired).to_numpy()
    checksum_failed = apps["id_checksum_ok"].astype("boolean").eq(False).fillna(False).to_numpy(dtype=bool)
    return ~present | (alone & ~known & ~checksum_failed)


def _quiet_rows(apps: pd.DataFrame, stats: IdentityStatistics, rows: np.ndarray) -> np.ndarray:
    """:func:`_quiet_applications` of the applications at ``rows``: each
    applicant's applications counted in the book, and the merged and
    name + birth-date records looked up, for those applicants only."""
    rows = np.asarray(rows, dtype=np.int64)
    if not pd.api.types.is_string_dtype(apps["person"].dtype):
        return _quiet_applications(apps, stats)[rows]  # keys that are not text: as text, as the book's pass does
    person = apps["person"].iloc[rows].astype(object)
    present = person.notna().to_numpy()
    key = person.where(present, None).astype(str).to_numpy(dtype=object)
    wanted = pd.unique(key[present])
    book = apps["person"]
    counts = book[_is_in(book, wanted)].astype(str).value_counts()
    alone = np.ones(len(rows), dtype=bool)
    alone[present] = pd.Series(key[present]).map(counts).to_numpy() == 1
    nd = stats.name_dob
    ours = nd[_is_in(nd.index.astype(str), wanted)]
    values = ours.dropna().unique()
    shared = ours.map(nd[_is_in(nd, values)].value_counts()) >= 2
    entity = stats.person_entity.index.astype(str)
    paired = set(entity[_is_in(entity, wanted)]) | set(ours.index[shared.to_numpy()].astype(str))
    known = np.zeros(len(rows), dtype=bool)
    known[present] = pd.Series(key[present]).isin(paired).to_numpy()
    ok = apps["id_checksum_ok"].iloc[rows].astype("boolean")
    checksum_failed = ok.eq(False).fillna(False).to_numpy(dtype=bool)
    return ~present | (alone & ~known & ~checksum_failed)


def _is_in(values: pd.Series | pd.Index, wanted) -> np.ndarray:
    """``values.isin(wanted)`` as a numpy mask; text held by Arrow is looked
    up by Arrow in one call (pandas makes an Arrow scalar per wanted value:
    seconds for a batch of 20,000 applicants)."""
    pieces = getattr(values.array, "_pa_array", None)
    if isinstance(pieces, pa.ChunkedArray) and (
        pa.types.is_string(pieces.type) or pa.types.is_large_string(pieces.type)
    ):
        text = pa.array([w for w in wanted if isinstance(w, str)], type=pieces.type)
        found = pc.is_in(pieces, value_set=text).fill_null(False)
        return found.to_numpy(zero_copy_only=False).astype(bool)
    return np.asarray(values.isin(wanted), dtype=bool)


#: up to this many records, identity's run asks plain Python sets whether a conflict can exist
_FEW_RECORDS = 5_000


def _under_two(persons: list, values: list, *, skip_empty: bool) -> set:
    """The persons (``None``: left out) holding two distinct present values
    (``""`` left out too with ``skip_empty``): what ``nunique() >= 2`` per
    person tells, on a few rows without a group-by."""
    first: dict = {}
    two: set = set()
    for person, value in zip(persons, values, strict=True):
        if person is None or is_missing(value) or (skip_empty and value == ""):
            continue
        if first.setdefault(person, value) != value:
            two.add(person)
    return two


def _may_hold_multi_id(recs: pd.DataFrame, person_entity: pd.Series) -> bool:
    """Whether ``IdentityResolution._multi_id`` can find a group: two records
    (with an ID, a name key and a birth date) sharing name + birth date, or
    two ID records (not registry-only persons) resolved to one entity."""
    seen: set = set()
    for rid, key, dob in zip(recs["id"].tolist(), recs["name_key"].tolist(), recs["dob"].tolist(), strict=True):
        if is_missing(rid) or is_missing(key) or is_missing(dob):
            continue
        nd = key + "|" + dob  # the group-by's key
        if nd in seen:
            return True
        seen.add(nd)
    entities: set = set()
    for record, entity in zip(map(str, person_entity.index), person_entity.tolist(), strict=True):
        if record.startswith("anon:") or is_missing(entity):
            continue
        if entity in entities:
            return True
        entities.add(entity)
    return False


def _fmt_day(ts) -> str:
    return "" if pd.isna(ts) else pd.Timestamp(ts).strftime("%Y-%m-%d")


def _no_pairs() -> pd.DataFrame:
    return pd.DataFrame(columns=["src", "dst", "score", "features", "method"])


@dataclass
class IdentityStatistics:
    """What :meth:`IdentityResolution.statistics` decides over the whole book.

    Attributes
    ----------
    resolution : Resolution or None
        :func:`resolve_records` over every Person record: the model (``m``,
        ``u``, prior), term frequencies, scored pairs and entities.
    person_entity, company_entity : Series
        Record key → entity id (the smallest key of its entity), for the
        keys merged with another; what a full ``detect`` assigns.
    anon_pairs, company_pairs : DataFrame
        SIMILAR_TO pairs of anonymous parties and of companies.
    phone_persons : Series
        Phone → distinct applicants (ID numbers) who gave it.
    name_dob : Series
        Record key → pinyin name key + birth date, for records with an ID.
    applications : int
        Applications of the portfolio they were computed over (a scope
        refuses statistics of another portfolio: an older one misses the
        batch's records and its refit).
    """

    resolution: Resolution | None = None
    person_entity: pd.Series = field(default_factory=lambda: pd.Series(dtype=object))
    anon_pairs: pd.DataFrame = field(default_factory=_no_pairs)
    company_entity: pd.Series = field(default_factory=lambda: pd.Series(dtype=object))
    company_pairs: pd.DataFrame = field(default_factory=_no_pairs)
    phone_persons: pd.Series = field(default_factory=lambda: pd.Series(dtype="int64"))
    name_dob: pd.Series = field(default_factory=lambda: pd.Series(dtype=object))
    applications: int = 0
    #: row lookups over these tables (:func:`rows_by_value`), built on first use, never saved
    lookups: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "lookups"}

    def __setstate__(self, state: dict) -> None:
        for name, value in state.items():
            setattr(self, name, value)
        self.lookups = {}


def _restricted(
    res: Resolution, keys: pd.Index, lookups: dict | None = None, vocabulary: pd.Index | None = None
) -> Resolution:
    """``res`` over the records ``keys`` only (their pairs, same model);
    ``lookups`` keeps the row maps of ``res``'s tables between calls, over
    ``vocabulary`` (the book's person keys) if given (``None``: scans, nothing kept)."""
    if lookups is not None:
        by_record = rows_by_value(lookups, "records", res.records, "record_id", vocabulary)
        unknown = keys[~by_record.held(keys.astype(str))]
        held = by_record.rows(keys)
    else:  # one scan, nothing kept
        ids = res.records["record_id"]
        held = np.flatnonzero(in_set(ids, keys))
        unknown = keys[~in_set(pd.Series(keys.astype(str)), ids.iloc[held])]
    if len(unknown):
        raise ValueError(
            f"{len(unknown)} person record(s) (e.g. {unknown[0]!r}) are not in the identity "
            "statistics: they were computed before these records arrived; compute them over the "
            "current portfolio"
        )
    if len(held) == len(res.records):
        return res
    recs = res.records.iloc[held].reset_index(drop=True)
    pairs = _pairs_within(res.pairs, lookups, "pairs", keys, ("left", "right"), vocabulary)
    return Resolution(
        entities=res.entities.iloc[held].reset_index(drop=True),
        pairs=pairs,
        stats=res.stats,
        model=res.model,
        records=recs,
        fields=res.fields,
        extra_fields=res.extra_fields,
        address_tokens=res.address_tokens,
        _tf=res._tf,
        _arrays=_arrays(recs),
    )


@dataclass(frozen=True, kw_only=True)
class IdentityResolution(Detector):
    """Resolve persons and companies; report identity conflicts.

    Parameters
    ----------
    threshold : float
        Match probability at or above which two Person records are one entity.
    max_block : int
        Largest blocking block compared (see :func:`resolve_records`).
    window_days : int
        Applications this close in time count as "at once": a phone change
        or a second identity inside the window is suspicious, a change
        across years is a customer getting a new number.
    checksum_score : float
        Score of the per-application finding "ID fails its checksum".
    workers : int
        rapidfuzz workers (-1 = all cores).

    Example
    -------
    >>> import tempfile
    >>> from ringscope.graph.embedded import EmbeddedStore
    >>> IdentityResolution().run(EmbeddedStore(tempfile.mkdtemp()))
    []

    Notes
    -----
    Cost: one :func:`resolve_records` over the persons (blocking + C string
    comparisons over candidate pairs), then pandas group-bys over the
    applications; no loop over all applications.
    """

    name: ClassVar[str] = "identity"
    threshold: float = param(0.9, gt=0, lt=1)
    max_block: int = param(200, ge=2)
    window_days: int = param(90, ge=1)
    checksum_score: float = param(0.25, ge=0, le=1)
    workers: int = param(-1, nonzero=True)

    def statistics(self, portfolio) -> IdentityStatistics:
        """The identity model fitted and applied over the whole book.

        Fitting the model *is* resolving the book: the prior is fitted over
        every candidate pair's weight, so every candidate pair is compared
        anyway, and scoring, clustering (chaining guard included) and the
        company groups cost little on top. What comes out decides every
        record's entity as a full run does; the scope only adds the findings.

        Example
        -------
        >>> import tempfile
        >>> from ringscope.graph.embedded import EmbeddedStore
        >>> IdentityResolution().statistics(EmbeddedStore(tempfile.mkdtemp())).resolution is None
        True

        Notes
        -----
        Cost: the whole of :func:`resolve_records` over the persons (its u
        sample of 200,000 random pairs is a fixed part), the anonymous-party
        and company groupings (pandas merges and group-bys); no findings.
        """
        portfolio = as_portfolio(portfolio)
        persons = portfolio.persons
        apps = portfolio.applications
        if persons.empty or apps.empty:
            return IdentityStatistics()
        # the four columns read below, not a copy of every column of the book's applications
        applied = apps.loc[apps["person"].notna(), ["person", "phone", "address", "applied_at"]].reset_index(drop=True)
        phone_persons = applied.groupby("phone")["person"].nunique()
        # the records are handed over (popped from a list, no name left holding them):
        # ``resolve_records`` drops them once prepared, and ``applied`` goes before it
        records = [self._person_records(portfolio, persons, applied)]
        del applied
        # every person carries an ID-derived birth date: a bare pinyin key would
        # only add millions of same-name pairs that the other keys already cover
        res = resolve_records(
            records.pop(),
            threshold=self.threshold,
            workers=self.workers,
            max_block=self.max_block,
            blocking=("id", "region_dob", "phone", "name_dob", "address"),
            normalized=True,
        )
        # the records as object arrays are not kept: ``explain`` converts only the two records
        # it explains, and kept in the statistics they would double the records in ``flag``
        res._arrays = {}
        # ``explain`` is asked about scored pairs only (the best pair of a group): the term
        # frequencies of their records' values are all it reads (~0.2 GB of text less at 1M), and
        # region + birth date only served the blocking
        res._tf = res.frequencies_of(pd.unique(np.concatenate([res.pairs["left"], res.pairs["right"]])))
        res.records = res.records.drop(columns=["region_dob"], errors="ignore")
        merged = res.pairs[res.pairs["merged"]]
        anon_pairs = self._anon_pairs(portfolio, persons)
        edges = pd.concat(
            [
                pd.DataFrame({"src": merged["left"].to_numpy(), "dst": merged["right"].to_numpy()}),
                anon_pairs[["src", "dst"]],
            ],
            ignore_index=True,
        )
        company_entity, company_pairs = resolve_companies(portfolio.companies)
        recs = res.records
        real = recs["id"].notna() & recs["name_key"].notna() & recs["dob"].notna()
        return IdentityStatistics(
            resolution=res,
            person_entity=_pairs_to_entities(edges),
            anon_pairs=anon_pairs,
            company_entity=company_entity,
            company_pairs=company_pairs,
            phone_persons=phone_persons,
            name_dob=pd.Series(
                (recs["name_key"] + "|" + recs["dob"])[real].to_numpy(), index=recs["record_id"][real].to_numpy()
            ),
            applications=len(apps),
        )

    def around(self, portfolio, app_ids, statistics: IdentityStatistics | None = None):
        """``[]`` when no identity finding can hold ``app_ids``, else ``None``.

        An application is quiet when its ID passes the checksum and its
        applicant (if any) has no other application, was merged with no
        other record and shares its name + birth date with none: a conflict
        needs two applications of one ID, a duplicate two records. Told
        from arrays over the whole book's statistics, built once per
        portfolio; the SIMILAR_TO pairs a scope would find are not gathered
        then (no finding reads them).
        """
        portfolio = as_portfolio(portfolio)
        if statistics is None or statistics.resolution is None:
            return None
        apps = portfolio.applications
        if statistics.applications != len(apps):
            return None  # stale statistics: the scope says so
        held = portfolio.derived.get("identity_quiet")
        wanted = set(map(str, app_ids))
        rows = portfolio.rows_where("applications", "application_id", wanted)
        if len(rows) < len(wanted):
            return None
        if (held is None or held[0] is not statistics) and not getattr(portfolio, "keep_derived", True):
            # one detection (``flag``): the book's answer would be dropped once this detector ran,
            # and Python strings for every application's key cost ~0.9 GB at a million
            return [] if _quiet_applications(apps, statistics, rows).all() else None
        if held is None or held[0] is not statistics:
            held = (statistics, _quiet_applications(apps, statistics))
            portfolio.derived["identity_quiet"] = held
        return [] if held[1][rows].all() else None

    def scope(self, portfolio, app_ids, statistics: IdentityStatistics | None = None):
        """The applications and persons whose findings can hold one of ``app_ids``.

        Entities come from ``statistics`` (every record resolved over the
        whole book), so the scope only has to hold what the findings read:
        the applications of each target's applicant (names and phones under
        one ID), every record of the applicant's resolved entity (fuzzy
        duplicates), every record sharing the name + birth date of one of
        those (one name + birth date under several IDs, and what says whether
        a fuzzy duplicate is already reported that way), and all their
        applications, which a finding lists as members.

        Example
        -------
        >>> import tempfile
        >>> from ringscope.graph.embedded import EmbeddedStore
        >>> from ringscope.detectors.portfolio import Portfolio
        >>> IdentityResolution().scope(Portfolio(EmbeddedStore(tempfile.mkdtemp())), ["A1"]).applications.shape[0]
        0

        Notes
        -----
        Cost: ``isin`` over the entity map, the name + birth-date keys and the
        applications: O(n), no comparison.
        """
        portfolio = as_portfolio(portfolio)
        stats = self.statistics(portfolio) if statistics is None else statistics
        apps = portfolio.applications
        if stats.resolution is not None and stats.applications != len(apps):
            raise ValueError(
                f"the identity statistics were computed over {stats.applications:,} applications, "
                f"this portfolio has {len(apps):,}: compute them over the current portfolio"
            )
        # row maps built once per portfolio and statistics: a scope costs lookups, not scans
        # (one detection, as ``flag``'s, scans instead: nothing built that it would not ask again)
        look = _lookups(portfolio, stats)
        persons_keys = portfolio.book_keys("persons", "key") if look is not None else None
        targets = portfolio.rows_where("applications", "application_id", map(str, app_ids))
        applicants = key_index(apps["person"].iloc[targets].dropna().astype(str).unique())
        ent = stats.person_entity
        their = ent.iloc[_rows_in(look, "entity_keys", ent.index, None, applicants, persons_keys)].dropna().unique()
        held = applicants.union(
            key_index(ent.index[_rows_in(look, "entities", ent, None, their, persons_keys)].astype(str))
        )
        nd = stats.name_dob
        theirs = nd.iloc[_rows_in(look, "name_dob_keys", nd.index, None, held, persons_keys)].dropna().unique()
        peers = nd.index[_rows_in(look, "name_dob", nd, None, theirs)]
        persons = held.union(key_index(peers.astype(str)))
        applied = (
            portfolio.rows_where("applications", "person", persons)
            if look is not None
            else np.flatnonzero(in_set(apps["person"], persons))
        )
        chosen = np.union1d(targets, applied)
        return portfolio.subset(apps["application_id"].iloc[chosen], persons=persons)

    def resolve(self, source, statistics: IdentityStatistics | None = None) -> EntityMap:
        """Who is one entity: the record key → entity id maps of persons and
        companies, over the whole book (from ``statistics`` when given).

        Example
        -------
        >>> import tempfile
        >>> from ringscope.graph.embedded import EmbeddedStore
        >>> IdentityResolution().resolve(EmbeddedStore(tempfile.mkdtemp())).person.empty
        True
        """
        stats = self.statistics(as_portfolio(source)) if statistics is None else statistics
        return EntityMap(person=stats.person_entity, company=stats.company_entity)

    def run(self, source, statistics: IdentityStatistics | None = None) -> list[Finding]:
        """Conflict findings; ``portfolio.similar_pairs`` (saved by ``detect``)
        is set as a result. The entity maps are not set here: other
        detectors get them from :meth:`resolve`, before any of them runs."""
        portfolio = as_portfolio(source)
        stats = self.statistics(portfolio) if statistics is None else statistics
        persons = portfolio.persons
        apps = portfolio.applications
        if persons.empty or apps.empty or stats.resolution is None:
            portfolio.similar_pairs = {}
            return []
        keys = pd.Index(persons["key"].astype(str))
        look = _lookups(portfolio, stats)
        # the row maps below share the book's index of them
        persons_keys = portfolio.book_keys("persons", "key") if look is not None else None
        res = _restricted(stats.resolution, keys, look, persons_keys)
        ap = self._applicant_records(portfolio)
        person_pairs = self._person_pairs(res)
        anon = stats.anon_pairs
        all_pairs = pd.concat(
            [person_pairs, _pairs_within(anon, look, "anon", keys, vocabulary=persons_keys)], ignore_index=True
        )
        firms = pd.Index(portfolio.companies["key"].astype(str)) if len(portfolio.companies) else pd.Index([])
        company = stats.company_pairs
        company_pairs = _pairs_within(company, look, "company", firms)
        portfolio.similar_pairs = {"Person-SIMILAR_TO-Person": all_pairs, "Company-SIMILAR_TO-Company": company_pairs}
        findings: list[Finding] = []
        findings += self._id_conflicts(ap, stats.phone_persons)
        ent = stats.person_entity
        findings += self._multi_id(
            ap, res, ent.iloc[_rows_in(look, "entity_keys", ent.index, None, keys, persons_keys)]
        )
        findings += self._checksum(ap)
        findings.sort(key=lambda f: (-f.score, f.members))
        return findings

    # -- records ----------------------------------------------------------------
    def _applicant_records(self, portfolio) -> pd.DataFrame:
        from ringscope.ingest.normalize import name_pinyin_key

        apps = portfolio.applications
        raw = portfolio.nodes("Application", ["applicant_id_number_raw"]).set_index("key")["applicant_id_number_raw"]
        ap = apps[
            [
                "application_id",
                "person",
                "applicant_name",
                "applicant_name_raw",
                "phone",
                "address",
                "applied_at",
                "id_checksum_ok",
            ]
        ].copy()
        ap = ap[ap["person"].notna()]
        ap["id_raw"] = raw.reindex(ap["application_id"]).to_numpy()
        name = ap["applicant_name"].astype("str").fillna("")
        ap["name_norm"] = name.str.replace(" ", "", regex=False)
        raw_names = ap["applicant_name_raw"].astype("str")
        if len(ap) <= _FEW_RECORDS:
            # the key is read only for an ID given under two names (``_id_conflicts``' name
            # comparison): pinyin for those rows alone, the others' key left missing
            named = _under_two(ap["person"].tolist(), ap["name_norm"].tolist(), skip_empty=False)
            wanted = np.flatnonzero([p in named for p in ap["person"].tolist()])
            keys = np.full(len(ap), np.nan, dtype=object)
            if len(wanted):
                keys[wanted] = anagram_key(name_pinyin_key(raw_names.iloc[wanted])).to_numpy()
            ap["name_key"] = keys
        else:
            ap["name_key"] = anagram_key(name_pinyin_key(raw_names)).to_numpy()
        return ap.reset_index(drop=True)

    def _person_records(self, portfolio, persons: pd.DataFrame, applied: pd.DataFrame) -> pd.DataFrame:
        """One record per Person: its name, ID, birth date, and the phone and
        address of its latest application (else its guarantor phone)."""
        latest = applied.sort_values("applied_at", kind="stable").groupby("person")[["phone", "address"]].last()
        gphone = portfolio.rels("Person-GUARANTOR_PHONE-Phone").drop_duplicates("src").set_index("src")["dst"]
        keys = persons["key"].astype("str").reset_index(drop=True)
        anon = keys.str.startswith("anon:").to_numpy()
        # text stays Arrow text (``str``): as object arrays the six columns were a Python
        # string per person and column, held for the whole resolution
        phone = latest["phone"].astype("str").reindex(keys.to_numpy())
        phone = phone.where(phone.notna(), gphone.astype("str").reindex(keys.to_numpy())).reset_index(drop=True)
        frame = pd.DataFrame(
            {
                "record_id": keys,
                "name": persons["name"].astype("str").reset_index(drop=True),
                "id_number": keys.where(~anon),
                "dob": pd.to_datetime(persons["birth_date"], errors="coerce").to_numpy(),
                "phone": phone,
                "address": latest["address"].astype("str").reindex(keys.to_numpy()).reset_index(drop=True),
            }
        )
        frame["dob"] = pd.to_datetime(frame["dob"], errors="coerce")
        return frame

    def _person_pairs(self, res: Resolution) -> pd.DataFrame:
        merged = res.pairs[res.pairs["merged"]]
        feats = (
            [_features_json(row, res.fields) for _, row in merged.iterrows()]
            if len(merged) < 200_000
            else merged[list(res.fields)].round(3).to_json(orient="records", lines=True).splitlines()
        )
        return pd.DataFrame(
            {
                "src": merged["left"].to_numpy(),
                "dst": merged["right"].to_numpy(),
                "score": merged["score"].astype(float).to_numpy(),
                "features": feats,
                "method": "fellegi_sunter",
            }
        )

    def _anon_pairs(self, portfolio, persons: pd.DataFrame) -> pd.DataFrame:
        """A registry person known only by name at company C is the applicant or
        role holder of C with that name, when exactly one such person exists."""
        empty = pd.DataFrame(columns=["src", "dst", "score", "features", "method"])
        keys = persons["key"].astype(str)
        anon = persons[keys.str.startswith("anon:")]
        if anon.empty:
            return empty
        parts = anon["key"].astype(str).str.split(":", n=2, expand=True)
        a = pd.DataFrame(
            {
                "src": anon["key"].to_numpy(),
                "company": parts[1].to_numpy(),
                "name": anon["name"].astype("str").fillna("").str.replace(" ", "").to_numpy(),
            }
        )
        apps = portfolio.applications
        named = persons.set_index("key")["name"].astype("str").fillna("").str.replace(" ", "")
        linked = pd.concat(
            [
                apps[["person", "company"]].dropna(),
                portfolio.roles[["person", "company"]].dropna(),
            ],
            ignore_index=True,
        ).drop_duplicates()
        linked = linked[~linked["person"].astype(str).str.startswith("anon:")]
        linked["name"] = named.reindex(linked["person"]).to_numpy()
        m = a.merge(linked, on=["company", "name"])
        m = m[m.groupby("src")["person"].transform("nunique") == 1].drop_duplicates("src")
        feats = [json.dumps({"name": n, "company": c}, ensure_ascii=False) for n, c in zip(m["name"], m["company"])]
        return pd.DataFrame(
            {
                "src": m["src"].to_numpy(),
                "dst": m["person"].to_numpy(),
                "score": 0.95,
                "features": feats,
                "method": "name+company",
            }
        )

    # -- findings -------------------------------------------------------------
    def _apps_of(self, ap: pd.DataFrame, persons) -> tuple[str, ...]:
        return tuple(sorted(ap.loc[ap["person"].isin(list(persons)), "application_id"].astype(str)))

    def _id_conflicts(self, ap: pd.DataFrame, users: pd.Series) -> list[Finding]:
        """One ID under unrelated names; else one ID cycling through phones
        (``users``: phone → distinct applicants who gave it, over the whole book)."""
        if len(ap) <= _FEW_RECORDS:
            # plain sets first: a conflict needs an ID (not a registry-only person) under two
            # names or two phones; most scopes hold none, and the group-bys below cost milliseconds
            persons = [None if p.startswith("anon:") else p for p in map(str, ap["person"].tolist())]
            if not _under_two(persons, ap["name_norm"].tolist(), skip_empty=True) and not _under_two(
                persons, ap["phone"].tolist(), skip_empty=False
            ):
                return []
        real = ap[~ap["person"].astype(str).str.startswith("anon:")]
        out: list[Finding] = []
        # --- names: (person, distinct name) nodes, joined when variants
        nm = real[real["name_norm"] != ""].drop_duplicates(["person", "name_norm"])
        multi = nm[nm.groupby("person")["name_norm"].transform("size") >= 2].reset_index(drop=True)
        name_groups = pd.Series(dtype="int64")
        if len(multi):
            code = pd.factorize(multi["person"])[0]
            li, ri, _ = block_pairs(code, max_block=10_000)
            lv, _sim = compare_names(
                multi["name_norm"].to_numpy()[li],
                multi["name_norm"].to_numpy()[ri],
                multi["name_key"].to_numpy()[li],
                multi["name_key"].to_numpy()[ri],
                workers=self.workers,
            )
            var = lv >= 1
            multi["group"] = component_labels(len(multi), li[var], ri[var])
            name_groups = multi.groupby("person")["group"].nunique()
        conflicted = set(name_groups[name_groups >= 2].index)
        window = pd.Timedelta(days=self.window_days)
        multi_by_person = dict(tuple(multi[multi["person"].isin(conflicted)].groupby("person"))) if conflicted else {}
        for person, rows in real[real["person"].isin(conflicted)].groupby("person"):
            groups = multi_by_person[person]
            names = groups.groupby("group")["name_norm"].first().tolist()
            n_names = len(names)
            span = rows["applied_at"].max() - rows["applied_at"].min()
            phones = rows["phone"].dropna().unique()
            ev = [
                Evidence(
                    "id_multiple_names",
                    0.5 + min(0.1 * (n_names - 2), 0.2),
                    f"ID {person} was given with {n_names} unrelated names ({', '.join(names)}) on "
                    f"applications {', '.join(rows['application_id'])}; spelling, traditional/pinyin "
                    "variants and one-character typos were already treated as the same name.",
                    tuple(names),
                )
            ]
            if span <= window:
                ev.append(
                    Evidence(
                        "short_time_span",
                        0.15,
                        f"all within {span.days} days "
                        f"({_fmt_day(rows['applied_at'].min())} to {_fmt_day(rows['applied_at'].max())}).",
                        (span.days,),
                    )
                )
            if len(phones) >= 2:
                ev.append(
                    Evidence(
                        "different_phones",
                        0.1,
                        f"with {len(phones)} different phones: {', '.join(phones)}.",
                        tuple(phones),
                    )
                )
            out.append(
                Finding.from_evidence(
                    self.name,
                    "id_multiple_names",
                    tuple(sorted(rows["application_id"].astype(str))),
                    ev,
                    cap=0.95,
                    parameters=self.params(),
                    summary=f"一证多名 ID {person} used under {n_names} names: {' / '.join(names)}",
                    entities=(("Person", str(person)),),
                    shared=tuple(("Phone", p) for p in phones),
                )
            )
        # --- phones: a new number inside the window, or going back to an old one
        ph = real[real["phone"].notna() & ~real["person"].isin(conflicted)].sort_values(["person", "applied_at"])
        nphones = ph.groupby("person")["phone"].transform("nunique")
        ph = ph[nphones >= 2].copy()
        if len(ph):
            prev_phone = ph.groupby("person")["phone"].shift()
            gap = ph["applied_at"] - ph.groupby("person")["applied_at"].shift()
            ph["switch"] = prev_phone.notna() & (ph["phone"] != prev_phone)
            ph["rapid"] = ph["switch"] & (gap <= window)
            changes = ph.groupby("person")["switch"].sum()
            distinct = ph.groupby("person")["phone"].nunique()
            interleaved = changes > distinct - 1  # came back to a number used before
            rapid = ph.groupby("person")["rapid"].sum()
            flagged = rapid[(rapid >= 1) | interleaved].index
            for person, rows in ph[ph["person"].isin(flagged)].groupby("person"):
                phones = rows["phone"].unique().tolist()
                ev = [
                    Evidence(
                        "id_multiple_phones",
                        0.3 + min(0.1 * (len(phones) - 2), 0.2),
                        f"ID {person} gave {len(phones)} phones ({', '.join(phones)}) on applications "
                        f"{', '.join(rows['application_id'])} between {_fmt_day(rows['applied_at'].min())} "
                        f"and {_fmt_day(rows['applied_at'].max())}.",
                        tuple(phones),
                    )
                ]
                if rapid[person]:
                    ev.append(
                        Evidence(
                            "rapid_phone_change",
                            0.15,
                            f"{int(rapid[person])} change(s) of phone "
                            f"within {self.window_days} days of the previous application.",
                            (int(rapid[person]),),
                        )
                    )
                if interleaved[person]:
                    ev.append(
                        Evidence(
                            "phones_interleaved",
                            0.1,
                            "went back to a phone used before (A→B→A): "
                            "several phones in use at once, not a change of number.",
                            (),
                        )
                    )
                shared = [p for p in phones if users.get(p, 0) > 1]
                if shared:
                    ev.append(
                        Evidence(
                            "phone_used_by_others",
                            0.15,
                            f"phone(s) {', '.join(shared)} also given by other ID numbers.",
                            tuple(shared),
                        )
                    )
                out.append(
                    Finding.from_evidence(
                        self.name,
                        "id_multiple_phones",
                        tuple(sorted(rows["application_id"].astype(str))),
                        ev,
                        cap=0.9,
                        parameters=self.params(),
                        summary=f"一证多号 ID {person} with {len(phones)} phones",
                        entities=(("Person", str(person)),),
                        shared=tuple(("Phone", p) for p in phones),
                    )
                )
        return out

    def _multi_id(self, ap: pd.DataFrame, res: Resolution, person_entity: pd.Series) -> list[Finding]:
        """Several ID numbers for one person: same name + birth date, or one resolved entity."""
        recs = res.records
        if len(recs) <= _FEW_RECORDS and not _may_hold_multi_id(recs, person_entity):
            return []
        real = recs[recs["id"].notna() & recs["name_key"].notna() & recs["dob"].notna()]
        real = real.assign(nd=real["name_key"] + "|" + real["dob"])
        nd = real[real.groupby("nd")["record_id"].transform("size") >= 2]
        flat_nd = pd.DataFrame(
            {"key": "nd:" + nd["nd"].to_numpy(), "rid": nd["record_id"].to_numpy(), "kind": "name_dob_multi_id"}
        )
        ent = person_entity[~person_entity.index.astype(str).str.startswith("anon:")]
        ent = ent[ent.groupby(ent).transform("size") >= 2]
        flat_e = pd.DataFrame(
            {
                "key": "e:" + ent.astype(str).to_numpy(),
                "rid": ent.index.astype(str).to_numpy(),
                "kind": "fuzzy_duplicate",
            }
        )
        flat_e["covered"] = flat_e["rid"].isin(flat_nd["rid"]).to_numpy()
        flat_e = flat_e[~flat_e.groupby("key")["covered"].transform("all")].drop(columns="covered")
        flat = pd.concat([flat_nd, flat_e], ignore_index=True)
        if flat.empty:
            return []
        flat["g"] = pd.factorize(flat["key"])[0]
        # best scored pair inside each group; a group without any plausible
        # pair (two different people sharing a common name and birthday) is left out
        pairs = res.pairs
        left = pairs.merge(flat[["g", "rid"]].rename(columns={"rid": "left"}), on="left")
        both = left.merge(flat[["g", "rid"]].rename(columns={"rid": "right", "g": "g2"}), on="right")
        both = both[both["g"] == both["g2"]].sort_values("score", ascending=False, kind="stable")
        best_of = {int(g): row for g, row in both.drop_duplicates("g").set_index("g").iterrows()}
        flat = flat[flat["g"].isin(list(best_of))]
        groups = [(grp["kind"].iat[0], sorted(grp["rid"])) for _, grp in flat.groupby("g", sort=True)]
        gids = sorted(best_of)
        best_of = {i: best_of[g] for i, g in enumerate(gids)}
        by_rec = recs.set_index("record_id")
        window = pd.Timedelta(days=self.window_days)
        out = []
        apps_of = dict(tuple(ap[ap["person"].isin(flat["rid"])].groupby("person")))
        for gi, (kind, ids) in enumerate(groups):
            best = best_of.get(gi)
            if best is not None:
                best = best.copy()
            p = float(best["score"]) if best is not None else 0.0
            parts = [apps_of[i] for i in ids if i in apps_of]
            rows = pd.concat(parts) if parts else ap.iloc[:0]
            if rows.empty:
                continue
            name = by_rec.at[ids[0], "name_norm"]
            dob = by_rec.at[ids[0], "dob"]
            ev = []
            agreed = ""
            if best is not None:
                ex = res.explain(best["left"], best["right"])
                agreed = "; ".join(f"{f}: {v['meaning']}" for f, v in ex["fields"].items() if v["level"] != _MISSING)
            ev.append(
                Evidence(
                    "same_person_match",
                    0.35 * p,
                    f"best pair {best['left'] if best is not None else ids[0]} ~ "
                    f"{best['right'] if best is not None else ids[1]} matches with probability {p:.2f} "
                    f"({agreed or 'no scored pair'}).",
                    (round(p, 3),),
                )
            )
            ev.append(
                Evidence(
                    "several_id_numbers",
                    0.1 if len(ids) == 2 else 0.25,
                    f"{len(ids)} ID numbers ({', '.join(ids)}) for "
                    + (f"name {name} born {dob}" if kind == "name_dob_multi_id" else "one resolved person")
                    + f", applications {', '.join(rows['application_id'])}.",
                    tuple(ids),
                )
            )
            phones = rows.groupby("person")["phone"].first().dropna()
            if phones.nunique() >= 2:
                ev.append(
                    Evidence(
                        "different_phones",
                        0.15,
                        f"each ID came with its own phone: {', '.join(phones.unique())}.",
                        tuple(phones.unique()),
                    )
                )
            bad = [i for i in ids if not bool(by_rec.at[i, "id_ok"])]
            if bad:
                ev.append(
                    Evidence(
                        "id_checksum_failed", 0.05, f"ID(s) {', '.join(bad)} fail the GB 11643 checksum.", tuple(bad)
                    )
                )
            span = rows["applied_at"].max() - rows["applied_at"].min()
            if span <= window:
                ev.append(Evidence("short_time_span", 0.1, f"applications within {span.days} days.", (span.days,)))
            label = "一人多证 " + (f"{name} born {dob}" if kind == "name_dob_multi_id" else "fuzzy duplicate")
            out.append(
                Finding.from_evidence(
                    self.name,
                    kind,
                    tuple(sorted(rows["application_id"].astype(str))),
                    ev,
                    cap=0.95,
                    parameters=self.params(),
                    summary=f"{label} under {len(ids)} ID numbers",
                    entities=tuple(("Person", i) for i in ids),
                    shared=tuple(("Phone", p) for p in phones.unique()),
                )
            )
        return out

    def _checksum(self, ap: pd.DataFrame) -> list[Finding]:
        bad = ap[ap["id_checksum_ok"].astype("boolean").eq(False).fillna(False).to_numpy()]
        out = []
        for row in bad.itertuples(index=False):
            typed = row.id_raw if isinstance(row.id_raw, str) else row.person
            out.append(
                Finding.from_evidence(
                    self.name,
                    "id_checksum_failed",
                    (str(row.application_id),),
                    (
                        Evidence(
                            "id_checksum_failed",
                            float(self.checksum_score),
                            f"application {row.application_id}: ID {typed} as typed fails the GB 11643 check "
                            "character (a typo or a made-up number).",
                            (typed,),
                        ),
                    ),
                    parameters=self.params(),
                    summary=f"ID {typed} fails its checksum (校验位错误)",
                    entities=(("Person", str(row.person)),),
                )
            )
        return out


def _pairs_to_entities(pairs: pd.DataFrame) -> pd.Series:
    """record key → smallest key of its component (keys in no pair are left out)."""
    if pairs.empty:
        return pd.Series(dtype=object)
    from ringscope.detectors.portfolio import _components

    return _components(pairs)


def application_entities(portfolio) -> pd.DataFrame:
    """Resolved applicant and company per application (runs resolution if needed).

    Returns
    -------
    DataFrame ``application_id``, ``person_entity_id``, ``company_entity_id``
    (empty string when the application has no FOR_COMPANY company).
    """
    portfolio = as_portfolio(portfolio)
    if portfolio.person_entity is None:
        portfolio.use_entities(IdentityResolution().resolve(portfolio))
    apps = portfolio.applications
    person = apps["person"].astype(object)
    company = apps["company"].astype(object)
    person_e = portfolio.entity_of(person.fillna("").astype(str), "Person").where(person.notna(), "")
    company_e = portfolio.entity_of(company.fillna("").astype(str), "Company").where(company.notna(), "")
    return pd.DataFrame(
        {
            "application_id": apps["application_id"].to_numpy(),
            "person_entity_id": person_e.to_numpy(),
            "company_entity_id": company_e.to_numpy(),
        }
    )
