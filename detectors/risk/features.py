"""Per-application features for the risk model, from the graph and findings.

Leakage rule: a feature may use another application's *label* only if that
application was applied for before this one (the label could have been known
when this one was decided). Counts of identifiers shared with earlier
applications are "as of" the application's own time for the same reason, so
the features of a new application in ``ringscope flag`` are computed exactly
as they were in training. Finding scores enter without the parts of their
evidence that come from labels (``LABEL_EVIDENCE``); those parts are rebuilt
here from earlier labels only.

Feature groups (``FEATURE_GROUPS``): ``own`` fields of the application,
``graph`` (sharing, known-bad neighbours), ``findings`` (detector scores).
The uplift in the training report is measured by dropping the last two.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ringscope.detectors.base import Finding
from ringscope.detectors.keys import kept_for, text_codes
from ringscope.detectors.rings import KIND_STRENGTH, entity_links
from ringscope.detectors.template_cells import positions_in
from ringscope.graph.model import TARGET_LABELS

__all__ = [
    "application_features",
    "own_features",
    "finding_features",
    "identifier_history",
    "link_keys",
    "link_codes_of",
    "link_applications",
    "LinkCodes",
    "FEATURE_GROUPS",
    "LABEL_EVIDENCE",
    "BAD_LABELS",
    "CATEGORICAL",
]

#: labels that make an earlier application "known bad" for the fraud model
#: (the default target): a neighbour who merely defaulted is no evidence of
#: fraud. A model's own are ``TrainedModel.known_bad``; training and flagging
#: both pass them, so a new application is scored like a historical one.
BAD_LABELS = TARGET_LABELS["fraud"]
#: evidence features computed from labels: removed from finding scores
LABEL_EVIDENCE = frozenset({"known_bad_members", "members_in_default", "known_bad", "bad_members", "labelled_bad"})
SHARED_KINDS = tuple(KIND_STRENGTH)
CATEGORICAL = ("product", "channel")

OWN = [
    "log_amount",
    "term_months",
    "log_declared",
    "amount_to_declared",
    "id_checksum_bad",
    "id_region_unknown",
    "phone_invalid",
    "night_application",
    "applicant_age",
    "has_agent",
    "is_business",
    "product",
    "channel",
]
GRAPH = (
    [f"earlier_sharers_{k}" for k in SHARED_KINDS]
    + [f"bad_earlier_{k}" for k in SHARED_KINDS]
    + ["earlier_applications_same_person", "bad_earlier_same_person", "known_bad_1hop", "shares_hub"]
)
FEATURE_GROUPS: dict[str, list[str]] = {"own": OWN, "graph": GRAPH, "findings": []}


def link_keys(links: pd.DataFrame) -> np.ndarray:
    """Each link's (``kind``, ``identifier``) as one integer (dense codes of
    each, :func:`text_codes`: a missing value matches a missing one), computed
    once per links table and kept while it lives (``kept_for``): the
    features' identifier history and the reasons' known-bad partners both key
    the same links by them, and hashing five million identifiers cost about
    4 s each time at 1M. The table must not change afterwards
    (``entity_links`` keeps its table for the portfolio), nor the array.

    Example
    -------
    >>> links = pd.DataFrame({"kind": ["ip", "ip", "phone", "ip"], "identifier": ["x", "y", "x", "x"]})
    >>> keys = link_keys(links)
    >>> bool(keys[0] == keys[3]), len(set(keys.tolist())), link_keys(links) is keys
    (True, 3, True)

    Notes
    -----
    O(L) over the L links, once per table; an int64 per link is kept.
    """

    def build() -> np.ndarray:
        kinds, identifiers = text_codes(links["kind"]), text_codes(links["identifier"])
        return kinds * (int(identifiers.max(initial=0)) + 1) + identifiers

    return kept_for(links, "risk.link_keys", build)


@dataclass(frozen=True, eq=False)
class LinkCodes:
    """:func:`entity_links`' table as the integer codes the features need,
    taken from the rings' codes of the same links
    (:class:`~ringscope.detectors.rings.RingLinkCodes`, which the hub table
    was built from) instead of coding the text again (at 1M, 5M links: the
    kinds and identifiers ~5 s, the entities ~1 s, the application ids
    ~0.6 s). Codes tell values apart and nothing more."""

    #: each link's (kind, identifier): what :func:`link_keys` gives, numbered otherwise
    keys: np.ndarray
    #: each link's entity: equal codes, equal entities
    person: np.ndarray
    #: each link's application: its row in the applications
    at: np.ndarray
    #: each link's kind, as its position in ``kinds``
    kind: np.ndarray
    kinds: tuple[str, ...]
    #: the applications ``at`` counts rows of (their ids, in row order)
    applications: pd.Index

    def position(self, kind: str) -> int:
        """``kind``'s position in :attr:`kinds` (-1, no link's, when absent)."""
        return self.kinds.index(kind) if kind in self.kinds else -1


def link_codes_of(links: pd.DataFrame, codes, applications: pd.Index) -> LinkCodes | None:
    """:class:`LinkCodes` of ``links`` from ``codes``, the rings' codes of the
    same table (:func:`~ringscope.detectors.rings.ring_link_codes`: its rows,
    in its order) over ``applications`` (the portfolio's application ids, in
    row order); ``None`` when ``codes`` cannot stand for ``links`` (other
    rows, other applications). The keys are also kept as ``links``'
    :func:`link_keys`, unless those were computed already, and the
    applications as its :func:`link_applications`.

    A missing identifier matches a missing one of the same kind, as in
    :func:`link_keys` (the rings' codes give every missing one -1).

    Example
    -------
    >>> from ringscope.detectors.rings import RingLinkCodes
    >>> links = pd.DataFrame({"application_id": ["a", "b", "b"], "kind": ["ip", "ip", "phone"],
    ...                       "identifier": ["x", "x", None], "entity": ["p", "q", "q"]})
    >>> codes = RingLinkCodes(("ip", "phone"), np.array([0, 2, 3]), np.array([0, 1, 1], dtype=np.int32),
    ...                       np.array([0, 0, -1]), np.array([0, 1, 1], dtype=np.int32), pd.Index(["a", "b"]))
    >>> coded = link_codes_of(links, codes, pd.Index(["a", "b"]))
    >>> coded.keys.tolist(), coded.at.tolist(), link_keys(links) is coded.keys
    ([0, 0, 1], [0, 1, 1], True)
    """
    if codes is None or len(codes) != len(links) or not len(links):
        return None
    kinds = links["kind"]
    starts = codes.starts.tolist()
    for k, kind in enumerate(codes.kinds):  # each kind's rows where the codes have them
        if starts[k + 1] > starts[k] and (kinds.iloc[starts[k]] != kind or kinds.iloc[starts[k + 1] - 1] != kind):
            return None
    if not codes.app_values.equals(applications):
        return None
    keys = codes.key.copy()
    missing = keys < 0
    if missing.any():  # one code per kind for a missing identifier, after every other
        keys[missing] = int(keys.max()) + 1 + codes.kind_of(np.flatnonzero(missing))
    # numbered in order of first appearance, as link_keys' text codes are: the rings' codes
    # follow the identifiers' sorted order, which made the history's stable sorts of the
    # links ~3x slower (their runs of already ordered keys are gone); a hash of integers
    keys = pd.factorize(keys)[0].astype(np.int64)
    keys = kept_for(links, "risk.link_keys", lambda: keys)
    kind = np.repeat(np.arange(len(codes.kinds)), np.diff(codes.starts))
    person = pd.factorize(codes.entity)[0].astype(np.int64)  # first appearance too
    coded = LinkCodes(keys, person, codes.app.astype(np.int64), kind, tuple(codes.kinds), applications)
    kept_for(links, "risk.link_applications", lambda: (coded.at, applications))  # for the reasons' partners
    return coded


def link_applications(links: pd.DataFrame) -> tuple[np.ndarray, pd.Index] | None:
    """Each link's application as its row in the applications, and those
    applications' ids, when :func:`link_codes_of` kept them for ``links``
    (else ``None``)."""
    return kept_for(links, "risk.link_applications", lambda: None)


def identifier_history(
    links: pd.DataFrame, times: pd.Series, bad: pd.Series, codes: LinkCodes | None = None
) -> pd.DataFrame:
    """For each link: how many earlier applications of *other* people used
    the same identifier, and how many of those are known bad.

    Parameters
    ----------
    links : DataFrame
        ``application_id``, ``kind``, ``identifier``, ``entity``.
    times : Series
        application_id → applied_at.
    bad : Series
        application_id → bool (known bad).
    codes : LinkCodes, optional
        The same links as integer codes (:func:`link_codes_of`): used
        instead of coding the text again; the counts are the same.

    Returns
    -------
    The links with ``earlier`` and ``bad_earlier`` columns.

    Example
    -------
    >>> links = pd.DataFrame({"application_id": ["a", "b", "c"], "kind": "device",
    ...                       "identifier": "d1", "entity": ["p", "q", "p"]})
    >>> times = pd.Series(pd.to_datetime(["2025-01-01", "2025-01-02", "2025-01-03"]), index=["a", "b", "c"])
    >>> h = identifier_history(links, times, pd.Series([True, False, False], index=["a", "b", "c"]))
    >>> h.set_index("application_id")[["earlier", "bad_earlier"]].to_dict("index")["c"]
    {'earlier': 1, 'bad_earlier': 0}

    Notes
    -----
    One sort and grouped cumulative sums: O(L log L).
    """
    keys = link_keys(links)
    frame = links.copy()
    at = positions_in(frame["application_id"], times.index) if codes is None else codes.at
    t = _epoch_ns(times).astype(np.int64)
    t = np.where(at >= 0, t[np.maximum(at, 0)], np.iinfo(np.int64).min)
    known_t = (at >= 0) & (t != np.iinfo(np.int64).min)
    is_bad = bad.reindex(times.index).fillna(False).to_numpy(dtype=bool)
    is_bad = np.where(at >= 0, is_bad[np.maximum(at, 0)], False)
    if not len(frame):
        return frame.assign(earlier=0, bad_earlier=0)
    # integer codes and one stable sort instead of string group-bys: the
    # rows of one identifier in time order (ties in the links' order); an
    # application without a time is neither before nor after any other: it
    # counts nothing and is counted by nobody (the flagging index's rule)
    identifier = keys
    person = text_codes(frame["entity"]) if codes is None else codes.person
    rows = np.flatnonzero(known_t)
    rows = rows[np.lexsort((t[rows], identifier[rows]))]
    same_id_before, bad_same_id = _before_in_run(identifier[rows], is_bad[rows])
    by_person = np.lexsort((person[rows], identifier[rows]))  # stable: time order kept within a person
    rows_p = rows[by_person]
    same_person_before, bad_same_person = _before_in_run(
        identifier[rows_p] * (max(len(frame), int(person.max(initial=0))) + 1) + person[rows_p], is_bad[rows_p]
    )
    earlier = np.zeros(len(frame), dtype=np.int64)
    bad_earlier = np.zeros(len(frame), dtype=np.int64)
    earlier[rows] = same_id_before
    bad_earlier[rows] = bad_same_id
    earlier[rows_p] -= same_person_before
    bad_earlier[rows_p] -= bad_same_person
    frame["earlier"] = earlier
    frame["bad_earlier"] = bad_earlier
    return frame


def _epoch_ns(times: pd.Series) -> np.ndarray:
    """Times as int64 nanoseconds (NaT as int64's minimum)."""
    values = times
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    return pd.to_datetime(values, errors="coerce").to_numpy(dtype="datetime64[ns]").view(np.int64)


def _before_in_run(keys: np.ndarray, flags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For rows sorted so that equal ``keys`` are contiguous: how many rows of
    the same key come before each, and how many of those are flagged.

    >>> [x.tolist() for x in _before_in_run(np.array([4, 4, 4, 7]), np.array([True, False, True, True]))]
    [[0, 1, 2, 0], [0, 1, 1, 0]]
    """
    n = len(keys)
    if not n:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    position = np.arange(n)
    starts = np.r_[True, keys[1:] != keys[:-1]]
    start = np.maximum.accumulate(np.where(starts, position, 0))
    flags = flags.astype(np.int64)
    running = np.cumsum(flags)
    flagged_before = running - flags - (running[start] - flags[start])
    return position - start, flagged_before


def _sums_by_kind(history: pd.DataFrame, index: pd.Index, codes: LinkCodes | None = None) -> dict[str, np.ndarray]:
    """``earlier_sharers_<kind>`` and ``bad_earlier_<kind>`` for the
    applications of ``index``: the sums of :func:`identifier_history`'s
    counts over each application's links of that kind, 0 without one.

    What pivot tables of the sums, reindexed and filled with 0, gave — their
    type too: whole numbers only when every application has a link of every
    kind the links hold (else a table with holes, in floats) — with counts
    over integer positions instead of grouping every link by its text.

    >>> h = pd.DataFrame({"application_id": ["a", "c", "c"], "kind": ["device", "device", "phone"],
    ...                   "earlier": [1, 2, 3], "bad_earlier": [0, 1, 0]})
    >>> s = _sums_by_kind(h, pd.Index(["a", "b", "c"]))
    >>> s["earlier_sharers_device"].tolist(), s["bad_earlier_phone"].tolist(), s["earlier_sharers_ip"].tolist()
    ([1.0, 0.0, 2.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0])

    With ``codes`` (:func:`link_codes_of` of the links ``history`` was
    computed from, ``index`` their applications) the links' kinds and
    applications come from the codes instead of their text.
    """
    n = len(index)
    if codes is None:
        at = positions_in(history["application_id"], index)
        kind_of = history["kind"].to_numpy(dtype=object)
    else:  # each link's kind as its position in codes.kinds, compared with each kind's position
        at, kind_of = codes.at, codes.kind
    earlier = history["earlier"].to_numpy(dtype=np.int64)
    bad_earlier = history["bad_earlier"].to_numpy(dtype=np.int64)
    out, complete, seen = {}, n > 0, False
    for kind in SHARED_KINDS:
        this = kind_of == (kind if codes is None else codes.position(kind))
        rows = np.flatnonzero(this & (at >= 0))
        if len(rows) or this.any():
            seen = True
            complete = complete and bool(np.bincount(at[rows], minlength=n).all())
        out[f"earlier_sharers_{kind}"] = np.bincount(at[rows], weights=earlier[rows], minlength=n).astype(float)
        out[f"bad_earlier_{kind}"] = np.bincount(at[rows], weights=bad_earlier[rows], minlength=n).astype(float)
    if seen and complete:
        whole = {kind for kind in SHARED_KINDS if (kind_of == (kind if codes is None else codes.position(kind))).any()}
        for kind in whole:
            for name in (f"earlier_sharers_{kind}", f"bad_earlier_{kind}"):
                out[name] = out[name].astype(np.int64)
    return out


def finding_features(
    findings: Iterable[Finding], apps: pd.DataFrame, bad_labels: tuple[str, ...] = BAD_LABELS
) -> pd.DataFrame:
    """Per application and detector: the best label-free finding score, plus
    ring size, guarantee exposure and earlier known-bad members of its findings.

    ``apps`` needs ``application_id``, ``applied_at``, ``label``; a member is
    known bad when its label is one of ``bad_labels``.
    """
    times = apps.set_index("application_id")["applied_at"]
    bad = apps.set_index("application_id")["label"].isin(bad_labels)
    rows = []
    for f in findings:
        label_part = sum(e.contribution for e in f.evidence if e.feature in LABEL_EVIDENCE)
        free = max(0.0, f.score - label_part)
        rows.extend((m, f.detector, free, f.size, f.finding_id) for m in f.members)
    if not rows:
        return pd.DataFrame(index=pd.Index(apps["application_id"], name="application_id"))
    long = pd.DataFrame(rows, columns=["application_id", "detector", "score", "size", "finding_id"])
    wide = long.pivot_table(index="application_id", columns="detector", values="score", aggfunc="max")
    wide.columns = [f"det_{c}" for c in wide.columns]
    wide["findings_count"] = long.groupby("application_id").size()
    wide["largest_finding"] = long.groupby("application_id")["size"].max()
    # members of the same findings that were known bad before this application
    member_t = long.merge(long[["finding_id", "application_id"]], on="finding_id", suffixes=("", "_other"))
    member_t = member_t[member_t["application_id"] != member_t["application_id_other"]]
    # by position in the applications (a hash lookup per column) instead of a map per figure
    ns = _epoch_ns(times)  # int64 compares fast; NaT is before everything
    known, is_bad_app = times.notna().to_numpy(dtype=bool), bad.to_numpy(dtype=bool)
    me = positions_in(member_t["application_id"], times.index)
    other = positions_in(member_t["application_id_other"], times.index)
    if (me < 0).any() or (other < 0).any():  # a member not among the applications: compared as map did (floats)
        t_me = np.where(me >= 0, ns[np.maximum(me, 0)].astype(float), np.nan)
        t_other = np.where(other >= 0, ns[np.maximum(other, 0)].astype(float), np.nan)
    else:
        t_me, t_other = ns[me], ns[other]
    earlier = (t_other < t_me) & (
        np.where(other >= 0, known[np.maximum(other, 0)], False) & np.where(me >= 0, known[np.maximum(me, 0)], False)
    )
    is_bad = np.where(other >= 0, is_bad_app[np.maximum(other, 0)], False)
    member_t = member_t.assign(bad_before=earlier & is_bad)
    wide["known_bad_2hop"] = (
        member_t.drop_duplicates(["application_id", "application_id_other"])
        .groupby("application_id")["bad_before"]
        .sum()
    )
    return wide.reindex(pd.Index(apps["application_id"], name="application_id")).fillna(0.0)


def own_features(apps: pd.DataFrame, persons: pd.DataFrame) -> pd.DataFrame:
    """The application's own fields as features (no graph): what the
    "without graph" model of the uplift comparison sees."""
    out = pd.DataFrame(index=pd.Index(apps["application_id"], name="application_id"))
    a = apps.set_index("application_id")
    declared = a["declared_monthly_revenue"].fillna(a["declared_monthly_income"])
    out["log_amount"] = np.log1p(a["amount"].astype(float))
    out["term_months"] = a["term_months"].astype(float)
    out["log_declared"] = np.log1p(declared.astype(float))
    out["amount_to_declared"] = a["amount"].astype(float) / (declared.astype(float) * 12).where(declared > 0)
    out["id_checksum_bad"] = (a["id_checksum_ok"] == False).astype(float)  # noqa: E712  (NA is not bad)
    out["id_region_unknown"] = (a["id_region_known"] == False).astype(float)  # noqa: E712
    out["phone_invalid"] = (a["phone_valid"] == False).astype(float)  # noqa: E712
    local_hour = a["applied_at"].dt.tz_convert("Asia/Shanghai").dt.hour
    out["night_application"] = local_hour.between(0, 5).astype(float)
    births = persons.set_index("key")["birth_date"] if "birth_date" in persons else None
    if births is not None and len(births):
        born = pd.to_datetime(a["person"].map(births), errors="coerce")
        applied = a["applied_at"].dt.tz_localize(None)
        out["applicant_age"] = ((applied - born).dt.days / 365.25).astype(float)
    else:
        out["applicant_age"] = np.nan
    out["has_agent"] = a["agent"].notna().astype(float)
    out["is_business"] = (a["borrower_label"] == "Company").astype(float)
    numeric = [c for c in out.columns if c not in CATEGORICAL]
    # a ratio over a vanishing figure is unknown, not infinite (sklearn refuses inf)
    out[numeric] = out[numeric].where(np.isfinite(out[numeric].to_numpy(dtype=float)))
    out["product"] = a["product"].astype("string").fillna("(none)")
    out["channel"] = a["channel"].astype("string").fillna("(none)")
    return out


def application_features(
    portfolio,
    findings: list[Finding] | None = None,
    hubs: pd.DataFrame | None = None,
    bad_labels: tuple[str, ...] = BAD_LABELS,
) -> pd.DataFrame:
    """The feature table, one row per application (index ``application_id``).

    Parameters
    ----------
    portfolio : Portfolio
    findings : list of Finding, optional
        Saved findings (``load_findings``); detector scores become features.
    hubs : DataFrame, optional
        ``identifier_hubs`` output, for the ``shares_hub`` feature.
    bad_labels : tuple of str
        Labels that make an earlier application known bad (the model's
        target: ``TrainingConfig.bad_labels``).
    """
    apps = portfolio.applications
    a = apps.set_index("application_id")
    # the persons' key and birth date only, where the portfolio reads them alone
    out = own_features(apps, portfolio.birth_dates if hasattr(portfolio, "birth_dates") else portfolio.persons)

    codes = getattr(portfolio, "derived", {}).get("ring_link_codes")  # the hub table's codes (entity_links drops them)
    links = entity_links(portfolio)
    bad = a["label"].isin(bad_labels)
    coded = link_codes_of(links, codes, a.index)
    del codes
    history = identifier_history(links, a["applied_at"], bad, coded)
    for column, sums in _sums_by_kind(history, out.index, coded if out.index.equals(a.index) else None).items():
        out[column] = sums
    out["known_bad_1hop"] = out[[f"bad_earlier_{k}" for k in SHARED_KINDS]].sum(axis=1)
    # the same resolved person's earlier applications (repeat borrowing, earlier defaults)
    if coded is not None and out.index.equals(a.index):  # an application's links all have its entity
        person = np.full(len(out.index), np.nan)
        person[coded.at] = coded.person  # as codes: only which applications share one matters
        person = pd.Series(person, index=out.index)
    else:
        person = links.drop_duplicates("application_id").set_index("application_id")["entity"].reindex(out.index)
    own = pd.DataFrame({"entity": person, "t": a["applied_at"], "bad": bad.astype(int)})
    own = own.reset_index().sort_values(["entity", "t"], kind="stable")
    timed = own[own["t"].notna()]  # no time, no "earlier" (as in identifier_history)
    grouped = timed.groupby("entity", sort=False)
    own["earlier"] = grouped.cumcount()
    own["bad_earlier"] = grouped["bad"].cumsum() - timed["bad"]
    own = own.set_index("application_id")
    out["earlier_applications_same_person"] = own["earlier"].reindex(out.index).fillna(0).astype(float)
    out["bad_earlier_same_person"] = own["bad_earlier"].reindex(out.index).fillna(0).astype(float)
    if hubs is not None and len(hubs):
        hub_keys = hubs.index[hubs["hub"].to_numpy()]
        # (kind, identifier) as one text key: Arrow's lookup instead of a MultiIndex over every
        # link, and only over the links whose identifier is some hub's (joining 5M keys at 1M took 5 s)
        maybe = links.loc[links["identifier"].isin(pd.Index(hub_keys.get_level_values(1)).unique()).to_numpy()]
        joined = maybe["kind"].astype(str) + "\x1f" + maybe["identifier"].astype(str)
        hub_joined = pd.Index([f"{kind}\x1f{identifier}" for kind, identifier in hub_keys.to_list()], dtype=object)
        on_hub = maybe.loc[positions_in(joined, hub_joined) >= 0, "application_id"].unique()
        out["shares_hub"] = out.index.isin(on_hub).astype(float)
    else:
        out["shares_hub"] = 0.0
    if findings:
        found = finding_features(findings, apps, bad_labels)
        for col in found.columns:
            out[col] = found[col].to_numpy()
    return out


def feature_groups(columns: Iterable[str]) -> dict[str, list[str]]:
    """Split feature columns into own / graph / findings groups."""
    columns = list(columns)
    return {
        "own": [c for c in columns if c in OWN],
        "graph": [c for c in columns if c in GRAPH],
        "findings": [c for c in columns if c not in OWN and c not in GRAPH],
    }
