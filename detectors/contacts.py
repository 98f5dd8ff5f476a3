"""Emergency-contact loops and hub contacts (紧急联系人互留 / 联系人集中).

Lenders ask for emergency contacts (紧急联系人) so that they can reach
someone when a borrower disappears. Organised fraud fills them in with each
other: A names B, B names C, C names A — a closed loop in which nobody can be
reached independently — or every applicant names the same phone (a broker's
or the organiser's). Families legitimately name each other too, so a
spouse-to-spouse pair at one address is not a finding.

The detector builds the directed graph application → application whenever
the contact phone on A is the applicant phone on B (a columnar join), finds
its strongly connected components with scipy, and only inside each small
component collapses applications to resolved persons and lists cycles with
networkx. Separately, phones named as contact by unusually many distinct
applicants — rare relative to the portfolio's own distribution — are hubs.
Each naming edge is *family-consistent* when its relation is a family one
and the two sides share a surname or an address; loops and hubs made only of
such edges are not reported, partly-family ones are discounted.

Incremental runs (``ringscope flag``): :meth:`ContactLoops.statistics` is
the portfolio's distribution of namers per phone and the hub threshold
taken from it; :meth:`ContactLoops.scope` is the strongly connected
components the new applications are in, whole, and the namers and owners
of the phones they name or own that enough applicants name to be hubs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

import networkx as nx
import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from ringscope.detectors.base import Detector, Evidence, Finding, param
from ringscope.detectors.components import bounded_cycles, strong_components
from ringscope.detectors.family import (
    FAMILY_RELATIONS,
    family_consistency,
    family_edges,
    family_hub_edges,
    family_of_links,
    family_of_namings,
    home_keys,
    home_keys_of,
    surnames,
    surnames_of,
)
from ringscope.detectors.keys import RowsByValue, is_missing, key_index, text_list, values_at
from ringscope.detectors.portfolio import as_portfolio, in_set
from ringscope.graph.model import KNOWN_BAD_LABELS, OUTCOME_LABELS

__all__ = [
    "ContactLoops",
    "ContactStatistics",
    "contact_edges",
    "contact_owner_pairs",
    "contact_sccs",
    "family_consistency",
    "FAMILY_RELATIONS",
]

BAD_LABELS = KNOWN_BAD_LABELS
_DAY = 86400.0


def contact_edges(contacts: pd.DataFrame, phones: pd.DataFrame, identity: pd.Series) -> pd.DataFrame:
    """Directed edges application → application through emergency contacts.

    Parameters
    ----------
    contacts : DataFrame
        ``application_id``, ``phone`` (the contact's), ``contact_name``, ``relation``.
    phones : DataFrame
        ``application_id``, ``identifier``: applicant phones.
    identity : Series
        application id → resolved applicant; edges between applications of
        one person (naming one's own other phone) are dropped.

    Returns
    -------
    DataFrame ``src``, ``dst``, ``phone``, ``contact_name``, ``relation``.

    Example
    -------
    >>> c = pd.DataFrame({"application_id": ["a", "b"], "phone": ["p2", "p1"],
    ...                   "contact_name": ["B", "A"], "relation": ["friend", "friend"]})
    >>> ph = pd.DataFrame({"application_id": ["a", "b"], "identifier": ["p1", "p2"]})
    >>> contact_edges(c, ph, pd.Series({"a": "A", "b": "B"}))[["src", "dst"]].values.tolist()
    [['a', 'b'], ['b', 'a']]

    Notes
    -----
    One hash join on the phone: O(c + p + e).
    """
    cols = ["src", "dst", "phone", "contact_name", "relation"]
    if contacts.empty or phones.empty:
        return pd.DataFrame(columns=cols)
    if len(contacts) + len(phones) <= _FEW_ROWS:
        few = _contact_edges_few(contacts, phones, identity, cols)
        if few is not None:
            return few
    return _contact_edges_joined(contacts, phones, identity, cols)


def contact_owner_pairs(
    namers: Sequence[Hashable],
    named: Sequence[Hashable],
    owners: Sequence[Hashable],
    owned: Sequence[Hashable],
    person: Mapping[Hashable, Hashable] | None = None,
) -> list[tuple[int, int]]:
    """Join the phones named as emergency contacts to the applicants who gave them as their own.

    The join of :func:`contact_edges` on lists: naming ``i`` (application
    ``namers[i]`` naming phone ``named[i]``) meets owner ``j`` (application
    ``owners[j]`` giving phone ``owned[j]``) when the phones are equal. An
    application naming its own phone is left out, and so is a repeat of a
    (namer, owner, phone) link: the first naming of it is kept.

    Parameters
    ----------
    namers, named : sequences of equal length
        The application and the contact phone of each naming.
    owners, owned : sequences of equal length
        The application and the applicant phone of each phone row.
    person : mapping, optional
        Application → resolved applicant, holding every namer and owner;
        when given, a link between two applications of one person (naming
        one's own other phone) is left out too. Leaving it out and dropping
        those links afterwards gives the same links: a (namer, owner,
        phone) link's repeats share its namer and owner.

    Returns
    -------
    list of (i, j)
        Positions in the namings and in the phone rows, in the join's
        order: each naming in order, then its phone's owners in theirs.

    Example
    -------
    a names b's phone twice (one link); b names p1, which a and c gave (two
    links); c names p1 too, but gave it itself and is a's person:

    >>> contact_owner_pairs(["a", "a", "b", "c"], ["p2", "p2", "p1", "p1"], ["a", "b", "c"], ["p1", "p2", "p1"],
    ...                     person={"a": "A", "b": "B", "c": "A"})
    [(0, 1), (2, 0), (2, 2)]

    Notes
    -----
    One dict of the owned phones and one pass over the namings:
    O(n + p + e) for n namings, p phone rows and e matched pairs.
    """
    at: dict[Hashable, list[int]] = {}  # phone → its rows among the owned phones, in order
    for j, phone in enumerate(owned):
        at.setdefault(phone, []).append(j)
    pairs: list[tuple[int, int]] = []
    seen: set[tuple[Hashable, Hashable, Hashable]] = set()
    for i, (namer, phone) in enumerate(zip(namers, named, strict=True)):
        for j in at.get(phone, ()):
            owner = owners[j]
            if namer == owner or (person is not None and person[namer] == person[owner]):
                continue
            link = (namer, owner, phone)
            if link in seen:
                continue
            seen.add(link)
            pairs.append((i, j))
    return pairs


#: up to this many contact and phone rows, :func:`contact_edges` joins them in Python: a scope's
#: few rows cost microseconds where pandas' merge, renames and de-duplication cost milliseconds
_FEW_ROWS = 5_000


def _contact_edges_few(
    contacts: pd.DataFrame, phones: pd.DataFrame, identity: pd.Series, cols: list[str]
) -> pd.DataFrame | None:
    """:func:`contact_edges` of a few rows with dicts and sets: the rows of
    the join in its order (each contact in order, then its phone's owners in
    theirs), the same filters, the same frame. ``None`` when a key or an end
    is missing (a join matches missing keys with each other: left to it)."""
    named_phone = contacts["phone"].to_numpy(dtype=object)
    owned_phone = phones["identifier"].to_numpy(dtype=object)
    src = contacts["application_id"].to_numpy(dtype=object)
    dst = phones["application_id"].to_numpy(dtype=object)
    if any(pd.isna(v).any() for v in (named_phone, owned_phone, src, dst)):
        return None
    pairs = contact_owner_pairs(src.tolist(), named_phone.tolist(), dst.tolist(), owned_phone.tolist())
    keep_left, keep_right = [], []
    if pairs:
        # links between one person's applications, dropped after the join (the same links, see
        # contact_owner_pairs): the identities looked up as columns, missing ones unequal as in the join
        left, right = (list(side) for side in zip(*pairs, strict=True))
        same = (
            identity.reindex(pd.Index(src[left], dtype=object)).to_numpy()
            == identity.reindex(pd.Index(dst[right], dtype=object)).to_numpy()
        )
        for i, j, one_person in zip(left, right, same.tolist(), strict=True):
            if not one_person:
                keep_left.append(i)
                keep_right.append(j)
    taken = contacts.iloc[keep_left].reset_index(drop=True)
    return pd.DataFrame(
        {
            "src": taken["application_id"],
            "dst": phones["application_id"].iloc[keep_right].reset_index(drop=True),
            "phone": taken["phone"],
            "contact_name": taken["contact_name"],
            "relation": taken["relation"],
        },
        columns=cols,
    )


def _contact_edges_joined(
    contacts: pd.DataFrame, phones: pd.DataFrame, identity: pd.Series, cols: list[str]
) -> pd.DataFrame:
    """:func:`contact_edges` as one hash join, for any number of rows."""
    owners = phones.rename(columns={"application_id": "dst", "identifier": "phone"})[["dst", "phone"]]
    named = contacts.rename(columns={"application_id": "src"})
    edges = named.merge(owners, on="phone")
    edges = edges[edges["src"] != edges["dst"]]
    same = edges["src"].map(identity).to_numpy() == edges["dst"].map(identity).to_numpy()
    return edges.loc[~same, cols].drop_duplicates(["src", "dst", "phone"]).reset_index(drop=True)


def _hub_edges_few(contacts: pd.DataFrame, phones: pd.DataFrame, identity: pd.Series, threshold: int):
    """``ContactLoops._hub_edges`` of a few rows with dicts and sets: the same
    frames (rows in their order, their labels) and distinct namers per
    phone. ``None`` when a named phone or a namer's identity is missing
    (pandas' grouping and merge treat those their own way: left to them)."""
    named = contacts.assign(
        identity=identity.reindex(pd.Index(contacts["application_id"].to_numpy(dtype=object), dtype=object)).to_numpy()
    )
    phone, who = named["phone"].tolist(), named["identity"].tolist()
    if any(is_missing(v) for v in phone) or any(is_missing(v) for v in who):
        return None
    owners = phones.rename(columns={"identifier": "phone", "application_id": "owner_app"})

    def distinct(rows) -> dict:
        out: dict = {}
        for j in rows:
            out.setdefault(phone[j], set()).add(who[j])
        return {p: len(v) for p, v in out.items()}

    def counts(of: dict) -> pd.Series:
        return pd.Series(dict(sorted(of.items())), dtype=np.int64, name="identity").rename_axis("phone")

    namers = distinct(range(len(phone)))
    candidates = {p for p, n in namers.items() if n >= threshold}
    if not candidates:
        return named.iloc[:0], owners.iloc[:0], counts(namers)
    owners = owners[np.array([p in candidates for p in owners["phone"].tolist()], dtype=bool)]
    owners = owners.assign(owner=owners["owner_app"].map(identity).to_numpy())
    # the phone's own applicant naming it does not count
    own = set(zip(owners["phone"].tolist(), owners["owner"].tolist()))
    rows = [j for j in range(len(phone)) if phone[j] in candidates and (phone[j], who[j]) not in own]
    kept = distinct(rows)
    hubs = {p for p, n in kept.items() if n >= threshold}
    mask = np.zeros(len(phone), dtype=bool)
    mask[[j for j in rows if phone[j] in hubs]] = True
    return (
        named[mask].copy(),
        owners[np.array([p in hubs for p in owners["phone"].tolist()], dtype=bool)],
        counts(kept),
    )


#: up to this many contact and applicant-phone rows in reach, :meth:`ContactLoops._found_around`
#: finds the loops and hubs on lists and dicts (:meth:`ContactLoops._findings_few`)
_FEW_AROUND = 5_000


def _identities_of(book: _ContactBook, apps: list[str]) -> dict[str, object] | None:
    """Each of ``apps``' resolved applicant; ``None`` when one has none."""
    unique = list(dict.fromkeys(apps))
    index = book.identity.index
    if len(unique) <= 32:  # a few keys: the index's hash table one key at a time (µs each)
        at = [index.get_loc(a) if a in index else -1 for a in unique]
    else:
        at = index.get_indexer(pd.Index(unique, dtype=object)).tolist()
    if min(at, default=0) < 0:
        return None
    found = dict(zip(unique, values_at(book.identity, np.asarray(at, dtype=np.int64)), strict=True))
    return None if any(is_missing(v) for v in found.values()) else found


def _loop_links(named: list[tuple], owner: list[str], owned: list, ident: dict) -> list[tuple]:
    """:meth:`ContactLoops._loop_edges` on lists: the links (src, dst, phone,
    contact name, relation, component) of :func:`contact_edges` of the
    contacts ``named`` and the applicant phones (``owner``, ``owned``) that
    lie inside one strongly connected component, in the join's order."""
    pairs = contact_owner_pairs([a for a, *_ in named], [p for _, p, *_ in named], owner, owned, ident)
    edges = []
    for i, j in pairs:
        app, phone, name, relation = named[i]
        edges.append((app, owner[j], phone, name, relation))
    if not edges:
        return []
    nodes = sorted({e[0] for e in edges} | {e[1] for e in edges})
    code = {a: i for i, a in enumerate(nodes)}
    src = np.array([code[e[0]] for e in edges], dtype=np.int64)
    dst = np.array([code[e[1]] for e in edges], dtype=np.int64)
    graph = sparse.coo_matrix((np.ones(len(edges)), (src, dst)), shape=(len(nodes), len(nodes)))
    labels = connected_components(graph, directed=True, connection="strong")[1]
    big = np.bincount(labels)[labels] >= 2
    return [
        (*e, int(labels[s]))
        for e, s, d in zip(edges, src.tolist(), dst.tolist(), strict=True)
        if big[s] and labels[s] == labels[d]
    ]


def _hub_rows(
    named: list[tuple], owner: list[str], owned: list, ident: dict, threshold: int
) -> tuple[list[int], list[int], dict]:
    """:func:`_hub_edges_few` on lists: the positions in ``named`` of the
    namings of hub phones, those of their applicant phones (``owner``,
    ``owned``), and the distinct namers of each candidate phone."""
    who = [ident[a] for a, *_ in named]

    def distinct(rows) -> dict:
        out: dict = {}
        for i in rows:
            out.setdefault(named[i][1], set()).add(who[i])
        return {p: len(v) for p, v in out.items()}

    candidates = {p for p, n in distinct(range(len(named))).items() if n >= threshold}
    if not candidates:
        return [], [], {}
    # the phone's own applicant naming it does not count
    own = {(p, ident[owner[j]]) for j, p in enumerate(owned) if p in candidates}
    rows = [i for i, (_, p, *_) in enumerate(named) if p in candidates and (p, who[i]) not in own]
    kept = distinct(rows)
    hubs = {p for p, n in kept.items() if n >= threshold}
    return [i for i in rows if named[i][1] in hubs], [j for j, p in enumerate(owned) if p in hubs], kept


def _records_of(portfolio, book: _ContactBook, apps: set[str], ident: dict) -> dict[str, dict] | None:
    """:func:`_info`'s records of ``apps`` (by id) read from the book's
    rows; ``None`` when one is not in the book."""
    table = portfolio.applications
    rows = portfolio.rows_where("applications", "application_id", apps)
    columns = {c: values_at(table[c], rows) for c in ("application_id", *_INFO_COLUMNS)}
    if len(rows) != len(apps):
        return None
    surname, home = surnames_of(columns["applicant_name"]), home_keys_of(columns["address"])
    records = {}
    for i, app in enumerate(columns["application_id"]):
        records[app] = {
            "identity": ident[app],
            "person": columns["person"][i],
            "name": columns["applicant_name"][i],
            "surname": surname[i],
            "address": columns["address"][i],
            "address_key": home[i],
            "employer": columns["employer"][i],
            "label": columns["label"][i],
            "applied_at": columns["applied_at"][i],
        }
    return records


#: strongly connected components of the contact graph (size >= 2)
contact_sccs = strong_components


@dataclass(frozen=True, kw_only=True)
class ContactLoops(Detector):
    """Applicants naming each other as emergency contacts, and hub contacts.

    Parameters
    ----------
    max_cycle_length : int
        Longest cycle (in persons) enumerated as evidence; a component with
        no cycle that short is still a loop, shown with one longer cycle.
    max_cycles : int
        Cycles enumerated per component at most.
    min_hub_namers : int
        Fewest distinct applicants naming one phone for a hub (a floor; the
        phone must also be in the portfolio's top ``hub_quantile`` tail).
    hub_quantile : float
        Share of named phones that may count as hubs at most: a hub needs
        more namers than this quantile of the portfolio's namers per phone.
    max_household : int
        Components of at most this many persons whose naming edges are all
        family-consistent (family relation and shared surname or address)
        are households, not loops, and are not reported.

    Example
    -------
    >>> import tempfile
    >>> from ringscope.graph.embedded import EmbeddedStore
    >>> ContactLoops().run(EmbeddedStore(tempfile.mkdtemp()))
    []

    Notes
    -----
    Columnar join and scipy SCC over the portfolio, O(n + m); networkx only
    inside each component, bounded by ``max_cycles``.
    """

    name: ClassVar[str] = "contact_loops"
    max_cycle_length: int = param(8, ge=2)
    max_cycles: int = param(50, ge=1)
    min_hub_namers: int = param(3, ge=2)
    hub_quantile: float = param(0.99, ge=0.5, lt=1)
    max_household: int = param(6, ge=0)

    def run(self, source, statistics: ContactStatistics | None = None) -> list[Finding]:
        portfolio = as_portfolio(source)
        contacts = portfolio.contacts
        apps = portfolio.applications
        if contacts.empty or apps.empty:
            return []
        apps = apps.set_index("application_id", drop=False)
        identity = _identity(portfolio, apps)
        contacts = contacts.dropna(subset=["application_id", "phone"])
        phones = portfolio.link_table("phone")
        stats = self._statistics_of(contacts, identity) if statistics is None else statistics
        return self._findings(
            contacts, phones, identity, stats, lambda involved: apps.loc[apps.index.intersection(involved)]
        )

    def _findings(
        self,
        contacts: pd.DataFrame,
        phones: pd.DataFrame,
        identity: pd.Series,
        stats: ContactStatistics,
        apps_of: Callable[[pd.Index], pd.DataFrame],
    ) -> list[Finding]:
        """The loops and hubs of ``contacts`` (with a phone) and applicant
        ``phones``; ``apps_of(ids)``: those applications' rows (indexed by
        id, in the portfolio's order), read for the few involved."""
        loop_edges, sccs = self._loop_edges(contacts, phones, identity)
        hub = self._hub_edges(contacts, phones, identity, stats)
        # names, surnames, homes only for the few applications involved (string work is the cost)
        involved = pd.Index(
            pd.concat([loop_edges["src"], loop_edges["dst"], hub[0]["application_id"], hub[1]["owner_app"]])
            .astype(str)
            .unique()
        )
        info = _info(apps_of(involved), identity)
        # per-group work below is plain Python over the few involved rows (pandas per group is too slow)
        records = dict(zip(info.index, info.to_dict("records")))
        findings = []
        if len(loop_edges):
            loop_edges = loop_edges.assign(
                family=family_edges(loop_edges, info), component=loop_edges["src"].map(sccs).to_numpy()
            )
            for group in _groups(loop_edges, "component"):
                finding = self._loop_finding(group, records)
                if finding is not None:
                    findings.append(finding)
        findings += self._hubs(*hub, stats, info, records)
        findings.sort(key=lambda f: (-f.score, f.members))
        return findings

    # -- incremental runs ----------------------------------------------------
    def statistics(self, portfolio) -> ContactStatistics:
        """The portfolio's distribution of distinct namers per contact phone
        and the hub threshold decided from it.

        Example
        -------
        >>> import tempfile
        >>> from ringscope.graph.embedded import EmbeddedStore
        >>> from ringscope.detectors.portfolio import Portfolio
        >>> ContactLoops().statistics(Portfolio(EmbeddedStore(tempfile.mkdtemp()))).threshold is None
        True

        Notes
        -----
        One grouped distinct count over the contacts, O(c).
        """
        portfolio = as_portfolio(portfolio)
        apps = portfolio.applications.set_index("application_id", drop=False)
        contacts = portfolio.contacts.dropna(subset=["application_id", "phone"])
        return self._statistics_of(contacts, _identity(portfolio, apps))

    def scope(self, portfolio, app_ids: Sequence[str], statistics: ContactStatistics | None = None):
        """Everything the loops and hubs holding ``app_ids`` read.

        * Loops: a loop finding is a whole strongly connected component of
          the contact graph (its members, links, relations and homes), which
          can be longer than ``max_cycle_length``; the scope holds the
          components of ``app_ids``, found exactly over the whole graph
          (one join and scipy's linear SCC). Inside the scope the component
          is the same: every link between two of its applications is there.
        * Hubs: a hub finding is one phone, its namers and its owners. The
          phones ``app_ids`` name or own that enough distinct applicants name
          to pass the threshold in ``statistics`` bring all their namers and
          owners. Other phones named inside the scope may look like smaller
          hubs there, but none of their findings holds one of ``app_ids``.

        Notes
        -----
        O(n + c) columnar: the identity map, the contact join, one SCC, a few
        ``isin`` selections.
        """
        portfolio = as_portfolio(portfolio)
        stats = self.statistics(portfolio) if statistics is None else statistics
        targets = list(dict.fromkeys(map(str, app_ids)))
        book = _ContactBook.of(portfolio)
        if book.contacts["phone"].isna().all() or portfolio.applications.empty:
            return portfolio.subset(targets)
        loops, _, hubs = self._reach_of(portfolio, book, targets, stats)
        return portfolio.subset(list(dict.fromkeys([*targets, *loops, *sorted(hubs)])))

    def _reach_of(
        self, portfolio, book: _ContactBook, targets: list[str], stats: ContactStatistics
    ) -> tuple[list[str], set[str], set[str]]:
        """What can hold a finding with ``targets``: the applications of the
        strongly connected components they are in (whole), the hub phones
        they name or own (enough distinct applicants name them), and those
        hubs' namers and owners."""
        loops = self._loop_index(portfolio, stats).members_with(targets)
        wanted = book.phones_of(portfolio, targets)
        big: set[str] = set()
        hubs: set[str] = set()
        if stats.threshold is not None and wanted:
            rows = book.by_phone.rows(wanted)
            if len(rows) <= _FEW_ROWS:
                big, hubs = _hubs_named_few(book, rows, stats.threshold)
                if big:
                    hubs |= set(book.phones["application_id"].iloc[book.by_phone_owned.rows(big)].astype(str))
                return loops, big, hubs
            named = book.contacts.iloc[rows].dropna(subset=["application_id"])
            namers = (
                pd.Series(book.identity.reindex(key_index(named["application_id"])).to_numpy(), index=named.index)
                .groupby(named["phone"].to_numpy())
                .nunique()
            )
            big = set(namers.index[namers >= stats.threshold].astype(str))
            if big:
                hubs = set(named.loc[named["phone"].astype(str).isin(big), "application_id"].astype(str))
                hubs |= set(book.phones["application_id"].iloc[book.by_phone_owned.rows(big)].astype(str))
        return loops, big, hubs

    def around(self, portfolio, app_ids: Sequence[str], statistics: ContactStatistics | None = None):
        """``[]`` when none of ``app_ids`` is in a contact loop (a strongly
        connected component) or names or owns a hub phone, from the loops
        and hub phones found once per portfolio: the scope would hold the
        applications alone, where no loop or hub can form."""
        if statistics is None:
            return None
        portfolio = as_portfolio(portfolio)
        ids = pd.Index(list(map(str, app_ids)), dtype=object)
        # the hub phones' applications only when no loop holds one (a batch nearly always meets a loop)
        if not self._loop_index(portfolio, statistics).holds(ids.tolist()) and not self._hub_apps(
            portfolio, statistics
        ).intersection(ids.tolist()):
            return []
        return self._found_around(portfolio, list(dict.fromkeys(ids.tolist())), statistics)

    def _found_around(self, portfolio, targets: list[str], stats: ContactStatistics) -> list[Finding] | None:
        """The loops and hubs holding ``targets``, from the book's rows of
        what :meth:`scope` would hold, cut to what decides them: the
        contacts of the targets' strongly connected components and every
        naming of the hub phones the targets name or own (each in the
        book's order), the applicant phones of all those applications.
        :meth:`run` over the scope reads more (every contact of every namer
        of a hub, and the hubs and loops they form), but no finding holding
        a target comes from it. ``None`` (scope and run) without a phone in
        the book's contacts or a row map of the application ids."""
        book = _ContactBook.of(portfolio)
        if portfolio.application_keys() is None or book.contacts["phone"].isna().all():
            return None
        loops, big, hubs = self._reach_of(portfolio, book, targets, stats)
        scope = list(dict.fromkeys([*targets, *loops, *sorted(hubs)]))
        rows = np.union1d(portfolio.rows_where("contacts", "application_id", loops), book.by_phone.rows(big))
        phone_rows = portfolio.rows_where("links:phone", "application_id", scope)
        if len(rows) + len(phone_rows) <= _FEW_AROUND:
            found = self._findings_few(portfolio, book, rows, phone_rows, set(scope), stats)
            if found is not None:
                return found
        contacts = book.contacts.iloc[rows]
        contacts = contacts[in_set(contacts["application_id"], set(scope))].reset_index(drop=True)
        contacts = contacts.dropna(subset=["application_id", "phone"])
        phones = book.phones.iloc[phone_rows].reset_index(drop=True)
        apps = portfolio.applications

        def apps_of(involved: pd.Index) -> pd.DataFrame:
            # the columns ``_info`` reads: a row of every column of the book costs more than the rest
            rows = portfolio.rows_where("applications", "application_id", involved)
            found = pd.DataFrame({c: apps[c].iloc[rows].reset_index(drop=True) for c in _INFO_COLUMNS})
            return found.set_axis(pd.Index(apps["application_id"].iloc[rows]))

        return self._findings(contacts, phones, book.identity, stats, apps_of)

    def _findings_few(
        self,
        portfolio,
        book: _ContactBook,
        rows: np.ndarray,
        phone_rows: np.ndarray,
        scope: set[str],
        stats: ContactStatistics,
    ) -> list[Finding] | None:
        """:meth:`_findings` of the book's contacts at ``rows`` (those of
        applications in ``scope``, with a phone) and applicant phones at
        ``phone_rows``, on lists, dicts and sets: the same edges, components,
        hubs and records in the same order (each pandas step on a scope's few
        rows costs a tenth of a millisecond or more, ~20 ms in all). ``None``
        when an application id is not text, or an applicant phone, an
        identity or an involved application is missing (left to the frames)."""
        columns = ("application_id", "phone", "contact_name", "relation")
        named = [
            row
            for row in zip(*(values_at(book.contacts[c], rows) for c in columns), strict=True)
            if not (is_missing(row[0]) or is_missing(row[1])) and row[0] in scope
        ]
        owner = values_at(book.phones["application_id"], phone_rows)
        owned = values_at(book.phones["identifier"], phone_rows)
        if any(not isinstance(a, str) for a, *_ in named) or any(is_missing(v) for v in (*owner, *owned)):
            return None
        ident = _identities_of(book, [a for a, *_ in named] + owner)
        if ident is None:
            return None
        links = _loop_links(named, owner, owned, ident)
        threshold = stats.threshold
        hub_rows, hub_owners, namers = (
            _hub_rows(named, owner, owned, ident, threshold) if threshold is not None else ([], [], {})
        )
        involved = {e[0] for e in links} | {e[1] for e in links} | {named[i][0] for i in hub_rows}
        records = _records_of(portfolio, book, involved | {owner[j] for j in hub_owners}, ident)
        if records is None:
            return None
        findings = []
        if links:
            surname = {a: r["surname"] for a, r in records.items()}
            home = {a: r["address_key"] for a, r in records.items()}
            family = family_of_links([(s, d, p, r) for s, d, p, _, r, _ in links], surname, home)
            groups: dict[int, list[dict]] = {}
            for (src, dst, phone, name, relation, component), fam in zip(links, family, strict=True):
                groups.setdefault(component, []).append(
                    {"src": src, "dst": dst, "phone": phone, "contact_name": name, "relation": relation, "family": fam}
                )
            for group in groups.values():
                finding = self._loop_finding(group, records)
                if finding is not None:
                    findings.append(finding)
        if hub_rows and threshold is not None:
            hub = [named[i] for i in hub_rows]
            who = [ident[a] for a, *_ in hub]
            family = family_of_namings(
                [p for _, p, _, _ in hub],
                who,
                [r for *_, r in hub],
                [n for _, _, n, _ in hub],
                [records[a]["surname"] for a, *_ in hub],
                [records[a]["address_key"] for a, *_ in hub],
                [records[a]["employer"] for a, *_ in hub],
                {(owned[j], records[owner[j]]["address_key"]) for j in hub_owners},
            )
            owner_apps: dict[str, list[str]] = {}
            for j in hub_owners:
                owner_apps.setdefault(owned[j], []).append(owner[j])
            by_phone: dict[str, list[dict]] = {}
            for (app, phone, name, relation), identity, fam in zip(hub, who, family, strict=True):
                by_phone.setdefault(phone, []).append(
                    {
                        "application_id": app,
                        "phone": phone,
                        "contact_name": name,
                        "relation": relation,
                        "identity": identity,
                        "family": fam,
                    }
                )
            for phone, group in by_phone.items():
                if all(e["family"] == 1.0 for e in group):
                    continue  # siblings naming their parent
                findings.append(
                    self._hub_finding(
                        phone,
                        group,
                        records,
                        owner_apps.get(phone, []),
                        threshold,
                        stats.tail_share(namers[phone]),
                        stats.phones,
                    )
                )
        findings.sort(key=lambda f: (-f.score, f.members))
        return findings

    def _reach(self, portfolio, stats: ContactStatistics) -> tuple[pd.Series, set[str]]:
        """The contact graph's strongly connected components (application
        → component, :meth:`_loops`) and the applications that name or own a
        phone named by ``stats.threshold`` or more applicants
        (:meth:`_hub_apps`)."""
        return self._loops(portfolio, stats), self._hub_apps(portfolio, stats)

    def _loops(self, portfolio, stats: ContactStatistics) -> pd.Series:
        """The contact graph's strongly connected components of two or more
        applications (application → component, in the applications' text
        order), once per portfolio and entities (``portfolio.derived``), not
        per scope. The component numbers only group: two runs may number
        them differently."""
        held = portfolio.derived.get("contact_loops")
        if held is not None and held[0] is stats:
            return held[1]
        book = _ContactBook.of(portfolio)
        sccs = _coded_sccs(portfolio, book)
        if sccs is None:  # ids outside the book or phones that are not text: the text join
            contacts = book.contacts.dropna(subset=["application_id", "phone"])
            sccs = contact_sccs(contact_edges(contacts, book.phones, book.identity))
        portfolio.derived["contact_loops"] = (stats, sccs)
        return sccs

    def _loop_index(self, portfolio, stats: ContactStatistics) -> _LoopIndex:
        """:meth:`_loops` by application and by component, once per portfolio and entities."""
        sccs = self._loops(portfolio, stats)
        held = portfolio.derived.get("contact_loop_index")
        if held is None or held.sccs is not sccs:
            held = _LoopIndex.of(sccs)
            portfolio.derived["contact_loop_index"] = held
        return held

    def _hub_apps(self, portfolio, stats: ContactStatistics) -> set[str]:
        """The applications that name or own a phone named by
        ``stats.threshold`` or more resolved applicants, once per portfolio
        and entities."""
        held = portfolio.derived.get("contact_hub_apps")
        if held is not None and held[0] is stats:
            return held[1]
        book = _ContactBook.of(portfolio)
        hub_apps: set[str] = set()
        contacts = book.contacts.dropna(subset=["application_id", "phone"])
        if stats.threshold is not None and len(contacts):
            identity, phones = book.identity, book.phones
            namers = contacts["application_id"].map(identity).groupby(contacts["phone"]).nunique()
            big = set(namers.index[namers >= stats.threshold].astype(str))
            hub_apps = set(contacts.loc[contacts["phone"].astype(str).isin(big), "application_id"].astype(str))
            hub_apps |= set(phones.loc[phones["identifier"].astype(str).isin(big), "application_id"].astype(str))
        portfolio.derived["contact_hub_apps"] = (stats, hub_apps)
        return hub_apps

    def _statistics_of(self, contacts: pd.DataFrame, identity: pd.Series) -> ContactStatistics:
        namers = contacts["application_id"].map(identity).groupby(contacts["phone"]).nunique()
        if namers.empty:
            return ContactStatistics(
                threshold=None,
                namer_counts=np.zeros(0, dtype=np.int64),
                phones_at_least=np.zeros(1, dtype=np.int64),
                phones=0,
            )
        # a hub must be rarer than the portfolio's hub_quantile, and at least min_hub_namers
        threshold = max(self.min_hub_namers, int(math.floor(namers.quantile(self.hub_quantile))) + 1)
        values, counts = np.unique(namers.to_numpy(), return_counts=True)
        at_least = np.r_[np.cumsum(counts[::-1])[::-1], 0]
        return ContactStatistics(
            threshold=threshold, namer_counts=values, phones_at_least=at_least, phones=int(len(namers))
        )

    # -- loops -----------------------------------------------------------
    def _loop_edges(
        self, contacts: pd.DataFrame, phones: pd.DataFrame, identity: pd.Series
    ) -> tuple[pd.DataFrame, pd.Series]:
        """Contact edges inside strongly connected components, and the components."""
        edges = contact_edges(contacts, phones, identity)
        sccs = contact_sccs(edges)
        if sccs.empty:
            return edges.iloc[:0], sccs
        edges = edges[edges["src"].isin(sccs.index) & edges["dst"].isin(sccs.index)]
        edges = edges[edges["src"].map(sccs).to_numpy() == edges["dst"].map(sccs).to_numpy()]
        return edges.reset_index(drop=True), sccs

    def _loop_finding(self, edges: list[dict], info: dict[str, dict]) -> Finding | None:
        graph = nx.DiGraph()
        for e in edges:
            graph.add_edge(info[e["src"]]["identity"], info[e["dst"]]["identity"], **e)
        k = graph.number_of_nodes()
        if k < 2:
            return None
        family_share = sum(e["family"] for e in edges) / len(edges)  # 1 = every link is a backed family link
        if family_share == 1.0 and k <= self.max_household:
            return None  # a household naming each other
        # the same cycles, each from its smallest person, whatever the hash seed
        cycles = bounded_cycles(
            pd.Series([u for u, _ in graph.edges]),
            pd.Series([v for _, v in graph.edges]),
            self.max_cycle_length,
            self.max_cycles,
        )
        if not cycles:
            # strongly connected, so it has a cycle: one longer than max_cycle_length (a loop of 17
            # applicants A→B→…→A). The bound keeps the enumeration cheap; it must not hide the loop.
            cycles = [_one_cycle(graph)]
        cycles.sort(key=lambda c: (-len(c), c))
        longest = cycles[0]
        members = sorted({e["src"] for e in edges} | {e["dst"] for e in edges})
        rows = [info[m] for m in members]
        path_steps = []
        for a, b in zip(longest, longest[1:] + longest[:1]):
            e = graph.edges[a, b]
            path_steps.append(
                f"{e['src']} ({_txt(info[e['src']]['name'])}) names {e['phone']} "
                f"as {_txt(e['relation'])} '{_txt(e['contact_name'])}' = applicant of {e['dst']}"
            )
        path_values = tuple(
            " → ".join(f"{graph.edges[a, b]['src']}[{graph.edges[a, b]['phone']}]" for a, b in zip(c, c[1:] + c[:1]))
            for c in cycles
        )
        rel_counts = _counts(_txt(e["relation"]) for e in edges)
        evidence = [
            Evidence(
                "contact_cycle",
                0.4 if len(longest) >= 3 else 0.25,
                f"emergency-contact cycle of {len(longest)} applicants: " + " → ".join(path_steps),
                path_values,
            ),
            Evidence(
                "loop_size",
                0.1 * min(1.0, (k - 2) / 4.0),
                f"{k} distinct applicants and {len(edges)} contact links in one strongly connected group",
                (k, len(edges)),
            ),
            Evidence(
                "unrelated_contacts",
                0.2 * (1.0 - family_share),
                f"{sum(e['family'] == 0 for e in edges)} of {len(edges)} links are not family-consistent "
                f"(family relation with shared surname or home, or answered in kind); relations given: "
                + ", ".join(f"{r} ×{c}" for r, c in rel_counts)
                + f"; {_nunique(r['surname'] for r in rows)} surnames, {_nunique(r['address_key'] for r in rows)} "
                f"homes among the applications",
                tuple(f"{r}:{c}" for r, c in rel_counts),
            ),
        ]
        evidence.append(_time_evidence(rows, 0.1, "the applications"))
        evidence.extend(_bad_evidence(rows, 0.15))
        kind = "contact_loop" if len(longest) >= 3 else "mutual_contacts"
        return Finding.from_evidence(
            self.name,
            kind,
            tuple(members),
            evidence,
            parameters=self.params(),
            scale=0.3 if family_share == 1.0 else 1.0,  # a large all-family group: shown, but low
            summary=(
                f"{k} applicants name each other as emergency contacts "
                f"({'互留联系人 loop of ' + str(len(longest)) if len(longest) >= 3 else '互留联系人 pair'}), "
                f"relations {', '.join(r for r, _ in rel_counts[:3])}"
            ),
            entities=_entities(rows),
            shared=tuple(("Phone", p) for p in sorted({str(e["phone"]) for e in edges})),
        )

    # -- hubs ------------------------------------------------------------
    def _hub_edges(self, contacts: pd.DataFrame, phones: pd.DataFrame, identity: pd.Series, stats: ContactStatistics):
        """Naming rows of hub phones, their owners, and their distinct namers."""
        if len(contacts) + len(phones) <= _FEW_ROWS and stats.threshold is not None:
            few = _hub_edges_few(contacts, phones, identity, stats.threshold)
            if few is not None:
                return few
        return self._hub_edges_grouped(contacts, phones, identity, stats)

    def _hub_edges_grouped(
        self, contacts: pd.DataFrame, phones: pd.DataFrame, identity: pd.Series, stats: ContactStatistics
    ):
        """:meth:`_hub_edges` with pandas' groupbys and merge, for any number of rows."""
        named = contacts.assign(identity=contacts["application_id"].map(identity).to_numpy())
        owners = phones.rename(columns={"identifier": "phone", "application_id": "owner_app"})
        namers = named.groupby("phone")["identity"].nunique()
        none = (named.iloc[:0], owners.iloc[:0], namers)
        if namers.empty or stats.threshold is None:
            return none
        threshold = stats.threshold
        candidates = namers.index[namers >= threshold]
        if len(candidates) == 0:
            return none
        edges = named[named["phone"].isin(candidates)]
        owners = owners[owners["phone"].isin(candidates)]
        owners = owners.assign(owner=owners["owner_app"].map(identity).to_numpy())
        # the phone's own applicant naming it does not count
        own = (
            edges.merge(
                owners[["phone", "owner"]].drop_duplicates(),
                left_on=["phone", "identity"],
                right_on=["phone", "owner"],
                how="left",
                indicator=True,
            )["_merge"]
            .eq("both")
            .to_numpy()
        )
        edges = edges[~own]
        kept = edges.groupby("phone")["identity"].nunique()
        hubs = kept.index[kept >= threshold]
        return edges[edges["phone"].isin(hubs)].copy(), owners[owners["phone"].isin(hubs)], kept

    def _hubs(
        self,
        edges: pd.DataFrame,
        owners: pd.DataFrame,
        namers: pd.Series,
        stats: ContactStatistics,
        info: pd.DataFrame,
        records: dict[str, dict],
    ) -> list[Finding]:
        if edges.empty:
            return []
        edges = edges.assign(family=family_hub_edges(edges, info, owners))
        owner_apps = owners.groupby("phone")["owner_app"].agg(list).to_dict()
        out = []
        for group in _groups(edges, "phone"):
            if all(e["family"] == 1.0 for e in group):
                continue  # siblings naming their parent
            phone = group[0]["phone"]
            out.append(
                self._hub_finding(
                    phone,
                    group,
                    records,
                    owner_apps.get(phone, []),
                    stats.threshold,
                    stats.tail_share(namers[phone]),
                    stats.phones,
                )
            )
        return out

    def _hub_finding(
        self,
        phone: str,
        group: list[dict],
        info: dict[str, dict],
        owner_apps: list,
        threshold: int,
        tail_share: float,
        n_phones: int,
    ) -> Finding:
        owner_apps = sorted(str(a) for a in owner_apps)
        namer_apps = sorted({str(e["application_id"]) for e in group})
        members = sorted(set(namer_apps) | set(owner_apps))
        rows = [info[a] for a in namer_apps]
        r = _nunique(e["identity"] for e in group)
        rel_counts = _counts(_txt(e["relation"]) for e in group)
        family_share = sum(e["family"] for e in group) / len(group)
        evidence = [
            Evidence(
                "hub_contact",
                0.35 * min(1.0, math.log2(r) / 4.0),
                f"phone {phone} is the emergency contact of {r} distinct applicants ({', '.join(namer_apps[:20])}"
                f"{' …' if len(namer_apps) > 20 else ''}); only {tail_share:.2%} of the portfolio's {n_phones} "
                f"contact phones are named by as many (hub threshold {threshold})"
                + (f"; it is also the applicant phone of {', '.join(owner_apps[:5])}" if owner_apps else ""),
                (phone, r, threshold, round(tail_share, 6)),
            ),
            Evidence(
                "unrelated_namers",
                0.2 * (1.0 - family_share),
                f"{sum(e['family'] == 0 for e in group)} of {len(group)} namers are neither family-consistent (family "
                f"relation with a shared surname or home) nor colleagues of one employer; relations: "
                + ", ".join(f"{x} ×{c}" for x, c in rel_counts)
                + f"; namers have {_nunique(x['surname'] for x in rows)} surnames and "
                f"{_nunique(x['address_key'] for x in rows)} homes",
                tuple(f"{x}:{c}" for x, c in rel_counts),
            ),
        ]
        names = sorted({str(e["contact_name"]) for e in group if not is_missing(e["contact_name"])})
        if len(names) > 1:
            evidence.append(
                Evidence(
                    "inconsistent_contact_names",
                    0.1 * min(1.0, (len(names) - 1) / 2.0),
                    f"the applicants give {len(names)} different names for {phone}: {', '.join(names[:6])}",
                    tuple(names[:6]),
                )
            )
        evidence.append(_time_evidence(rows, 0.15, "the naming applications"))
        member_rows = [info[m] for m in members if m in info]
        evidence.extend(_bad_evidence(member_rows, 0.2))
        return Finding.from_evidence(
            self.name,
            "hub_contact",
            tuple(members),
            evidence,
            parameters=self.params(),
            summary=f"contact phone {phone} named by {r} applicants (联系人集中) within {_span(rows):.0f} days",
            entities=_entities(member_rows),
            shared=(("Phone", str(phone)),),
        )


@dataclass(frozen=True)
class ContactStatistics:
    """How many distinct applicants name each contact phone, portfolio-wide.

    ``threshold`` is the hub threshold (``None``: no contact phones);
    ``namer_counts`` the distinct namer counts that occur (sorted) and
    ``phones_at_least[i]`` how many phones have at least ``namer_counts[i]``
    namers; ``phones`` how many phones are named.
    """

    threshold: int | None
    namer_counts: np.ndarray
    phones_at_least: np.ndarray
    phones: int

    def tail_share(self, namers: int) -> float:
        """Share of the portfolio's contact phones named by at least ``namers``.

        Example
        -------
        >>> s = ContactStatistics(3, np.array([1, 2, 5]), np.array([10, 4, 1, 0]), 10)
        >>> s.tail_share(5), s.tail_share(2), s.tail_share(9)
        (0.1, 0.4, 0.0)
        """
        if not self.phones:
            return 0.0
        return float(self.phones_at_least[np.searchsorted(self.namer_counts, namers, side="left")] / self.phones)


def _application_codes(portfolio, table: str, frame: pd.DataFrame, keys: pd.Index) -> np.ndarray:
    """Per row of ``frame`` (the portfolio's table ``table``) its
    application's position in ``keys`` (the book's application ids), -1
    where it has none or one outside them: read from the table's row map
    by application when it shares ``keys`` (no text is looked up; scopes
    use the same map), else looked up."""
    held = None
    book = portfolio.link_table(table.removeprefix("links:")) if table.startswith("links:") else portfolio.contacts
    if frame is book:  # the map is of the portfolio's table
        portfolio.rows_where(table, "application_id", ())  # built once per table
        held = getattr(portfolio, "row_maps", {}).get((table, "application_id"))
    if held is None or held.index is not keys or held.size != len(frame):
        return keys.get_indexer(frame["application_id"]).astype(np.int64)
    codes = np.full(len(frame), -1, dtype=np.int64)
    codes[held._order] = np.repeat(np.arange(len(keys), dtype=np.int64), np.diff(held._starts))
    return codes


def _coded_sccs(portfolio, book: _ContactBook) -> pd.Series | None:
    """:func:`contact_sccs` of :func:`contact_edges` of the book's contacts
    with a phone and application, on integer codes: each contact's
    application and each applicant phone's application by their row in the
    book's application ids, the phones by their place in the contacts' map
    by phone, the join as ranges of that map. The same components (the
    same applications grouped alike) without the join's text frame and the
    unicode arrays of every edge's ends (about 1 GB at a million
    applications). ``None`` when the book has no unique ids, a contact or
    applicant phone names an application outside them, or the phones are
    not all text (the join compares values, not their text)."""
    keys, contacts, phones = portfolio.application_keys(), book.contacts, book.phones
    # the join's applications of one person compare their identities as objects: none may be missing
    if keys is None or book.identity.index is not keys or book.identity.isna().any():
        return None
    if contacts.empty or phones.empty:
        return pd.Series(dtype="int64")
    named = contacts["phone"].notna().to_numpy() & contacts["application_id"].notna().to_numpy()
    owned = phones["identifier"].notna().to_numpy() & phones["application_id"].notna().to_numpy()
    for column in (contacts["phone"][named], phones["identifier"][owned]):
        if len(column) and pd.api.types.infer_dtype(column, skipna=False) != "string":
            return None
    src = _application_codes(portfolio, "contacts", contacts, keys)
    dst = _application_codes(portfolio, "links:phone", phones, keys)
    if (src[named] < 0).any() or (dst[owned] < 0).any():
        return None
    src[~named] = -1
    dst = dst[owned]
    # each owned phone's place in the contacts' map: its namers are a range of that map's rows
    at = book.by_phone.index.get_indexer(phones["identifier"][owned])
    dst, at = dst[at >= 0], at[at >= 0]
    starts = book.by_phone._starts
    lo, hi = starts[at].astype(np.int64), starts[at + 1].astype(np.int64)
    sizes = hi - lo
    rows = book.by_phone._order[np.repeat(lo - np.cumsum(sizes) + sizes, sizes) + np.arange(sizes.sum())]
    ends = np.repeat(dst, sizes)
    starts_ = src[rows]
    del rows, lo, hi, sizes, at
    # a contact without an application names no one; an application naming itself is no edge
    keep = (starts_ >= 0) & (starts_ != ends)
    starts_, ends = starts_[keep], ends[keep]
    # nor one naming another application of the same person
    person = pd.factorize(book.identity.to_numpy())[0]
    keep = person[starts_] != person[ends]
    starts_, ends = starts_[keep], ends[keep]
    del keep, person
    if not len(starts_):
        return pd.Series(dtype="int64")
    n = len(keys)
    graph = sparse.coo_matrix((np.ones(len(starts_), dtype=np.int8), (starts_, ends)), shape=(n, n)).tocsr()
    del starts_, ends
    _, labels = connected_components(graph, directed=True, connection="strong")
    del graph
    members = np.flatnonzero(np.bincount(labels)[labels] >= 2)
    if not len(members):
        return pd.Series(dtype="int64")
    # in the text order of the ids, as the text path sorts its nodes; components numbered by first member
    names = keys[members].to_numpy(dtype=object).astype(str)  # the text path's nodes: a unicode array
    order = np.argsort(names, kind="stable")
    names, groups = names[order], labels[members][order]
    return pd.Series(pd.factorize(groups)[0].astype(labels.dtype), index=names)


@dataclass(frozen=True)
class _ContactBook:
    """The portfolio's contacts, applicant phones and identities, with row
    maps by phone (by application the portfolio's own serve, as for its
    subsets), built once per portfolio and entities (``portfolio.derived``):
    a scope of a few applications then looks up their rows instead of
    scanning every contact of the book."""

    contacts: pd.DataFrame  # the portfolio's contacts, missing phones included
    phones: pd.DataFrame  # applicant phones: application_id, identifier
    identity: pd.Series  # application id (object index) → resolved applicant
    by_phone: RowsByValue  # contacts by the phone named
    by_phone_owned: RowsByValue  # applicant phones by the phone

    @classmethod
    def of(cls, portfolio) -> _ContactBook:
        held = portfolio.derived.get("contact_book")
        if held is not None:
            return held
        apps = portfolio.applications.set_index("application_id", drop=False)
        contacts = portfolio.contacts
        phones = portfolio.link_table("phone")
        identity = _identity(portfolio, apps)
        keys = portfolio.application_keys()  # the index the portfolio's row maps share, in the same order
        book = cls(
            contacts=contacts,
            phones=phones,
            identity=pd.Series(identity.to_numpy(), index=key_index(identity.index) if keys is None else keys),
            by_phone=RowsByValue(contacts["phone"]),
            by_phone_owned=RowsByValue(phones["identifier"]),
        )
        portfolio.derived["contact_book"] = book
        return book

    def phones_of(self, portfolio, app_ids: list[str]) -> set[str]:
        """The phones (as text) ``app_ids`` name as contacts or own as applicants."""
        rows = portfolio.rows_where("contacts", "application_id", app_ids)
        named = zip(values_at(self.contacts["application_id"], rows), values_at(self.contacts["phone"], rows))
        phones = {str(phone) for app, phone in named if not (is_missing(app) or is_missing(phone))}
        owned = values_at(self.phones["identifier"], portfolio.rows_where("links:phone", "application_id", app_ids))
        return phones | {str(phone) for phone in owned if not is_missing(phone)}


@dataclass(frozen=True)
class _LoopIndex:
    """The contact graph's strongly connected components (:meth:`ContactLoops._loops`)
    as dicts: a few applications' components without a look-up in the whole Series."""

    sccs: pd.Series  # application → component, in the applications' text order
    names: list[str]  # sccs' applications, in its order
    component_of: dict[str, int]
    rows_of: dict[int, list[int]]  # component → its applications' positions in ``names``

    @classmethod
    def of(cls, sccs: pd.Series) -> _LoopIndex:
        names = text_list(sccs.index)
        rows_of: dict[int, list[int]] = {}
        for i, label in enumerate(sccs.tolist()):
            rows_of.setdefault(label, []).append(i)
        return cls(sccs, names, dict(zip(names, sccs.tolist(), strict=True)), rows_of)

    def holds(self, app_ids: list[str]) -> bool:
        """Whether any of ``app_ids`` is in a component."""
        return any(a in self.component_of for a in app_ids)

    def members_with(self, app_ids: list[str]) -> list[str]:
        """The applications of the components of ``app_ids``, in :attr:`names`' order."""
        held = {self.component_of[a] for a in app_ids if a in self.component_of}
        return [self.names[i] for i in sorted(i for label in held for i in self.rows_of[label])]


def _hubs_named_few(book: _ContactBook, rows: np.ndarray, threshold: int) -> tuple[set[str], set[str]]:
    """``ContactLoops._reach_of``'s hub phones among the contacts at ``rows``
    (named by ``threshold`` or more resolved applicants) and the applications
    naming them, on lists and sets: the identity look-up, group-by and
    selections of the pandas path cost milliseconds for a handful of rows."""
    identity, index = book.identity, book.identity.index
    named = [
        (app, phone)
        for app, phone in zip(
            values_at(book.contacts["application_id"], rows), values_at(book.contacts["phone"], rows), strict=True
        )
        if not is_missing(app)
    ]
    namers: dict = {}
    for app, phone in named:
        who = namers.setdefault(phone, set())
        if app in index:
            entity = identity.iat[index.get_loc(app)]
            if not is_missing(entity):
                who.add(entity)
    big = {str(phone) for phone, who in namers.items() if not is_missing(phone) and len(who) >= threshold}
    return big, {str(app) for app, phone in named if str(phone) in big}


def _identity(portfolio, apps: pd.DataFrame) -> pd.Series:
    """Application id → resolved applicant (the application itself when it has none)."""
    person = apps["person"].astype(object).where(apps["person"].notna(), "app:" + apps["application_id"].astype(str))
    return pd.Series(portfolio.entity_of(person.astype(str)).to_numpy(), index=apps.index)


# -- helpers ---------------------------------------------------------------
#: the application columns :func:`_info` reads
_INFO_COLUMNS = ("person", "applicant_name", "address", "employer", "label", "applied_at")


def _info(apps: pd.DataFrame, identity: pd.Series) -> pd.DataFrame:
    """What the evidence and the family test need about each involved application."""
    return pd.DataFrame(
        {
            "identity": identity.reindex(apps.index).to_numpy(),
            "person": apps["person"].to_numpy(),
            "name": apps["applicant_name"].astype(object).to_numpy(),
            "surname": surnames(apps["applicant_name"]).to_numpy(),
            "address": apps["address"].to_numpy(),
            "address_key": home_keys(apps["address"]).to_numpy(),
            "employer": apps["employer"].to_numpy(),
            "label": apps["label"].to_numpy(),
            "applied_at": apps["applied_at"].to_numpy(),
        },
        index=apps.index,
    )


def _groups(frame: pd.DataFrame, by: str) -> list[list[dict]]:
    """Rows of ``frame`` as dicts, grouped by column ``by`` (in first-seen order)."""
    out: dict = {}
    for row in frame.to_dict("records"):
        out.setdefault(row[by], []).append(row)
    return list(out.values())


def _txt(v) -> str:
    return "?" if is_missing(v) else str(v)


def _nunique(values) -> int:
    return len({v for v in values if not is_missing(v)})


def _counts(values) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def _span(rows: list[dict]) -> float:
    times = [pd.Timestamp(r["applied_at"]) for r in rows if not is_missing(r["applied_at"])]
    return (max(times) - min(times)).total_seconds() / _DAY if times else 0.0


def _time_evidence(rows: list[dict], weight: float, what: str) -> Evidence:
    times = [pd.Timestamp(r["applied_at"]) for r in rows if not is_missing(r["applied_at"])]
    span = _span(rows)
    first = min(times).strftime("%Y-%m-%d") if times else "?"
    last = max(times).strftime("%Y-%m-%d") if times else "?"
    # organised applications arrive within days; families apply months or years apart
    return Evidence(
        "time_compactness",
        weight * max(0.0, 1.0 - span / 90.0),
        f"{what} were submitted within {span:.1f} days ({first} – {last})",
        (round(span, 2),),
    )


def _bad_evidence(rows: list[dict], weight: float) -> list[Evidence]:
    labels = [r["label"] for r in rows]
    labelled = sum(1 for x in labels if x in OUTCOME_LABELS)
    bad = sum(1 for x in labels if x in BAD_LABELS)
    if not bad:
        return []
    return [
        Evidence(
            "known_bad_members",
            weight * min(1.0, 2.0 * bad / max(labelled, 1)),
            f"{bad} of {labelled} labelled applications are fraud or default",
            (bad, labelled),
        )
    ]


def _entities(rows: list[dict]) -> tuple[tuple[str, str], ...]:
    return tuple(("Person", p) for p in sorted({str(r["person"]) for r in rows if not is_missing(r["person"])}))


def _one_cycle(graph: nx.DiGraph) -> list:
    """One simple cycle of a strongly connected ``graph`` (2+ nodes), the
    same on every run: depth-first from the smallest node, neighbours in
    sorted order, until the path returns to the start.

    Example
    -------
    >>> _one_cycle(nx.DiGraph([("c", "a"), ("a", "b"), ("b", "c"), ("b", "a")]))
    ['a', 'b']
    """
    # every node reaches the start, so the first node explored with an edge back closes a
    # cycle: nodes explored once each, O(n + m)
    start = min(graph.nodes)
    path, seen = [start], {start}
    stack = [iter(sorted(graph.successors(start)))]
    while stack:
        nxt = next(stack[-1], None)
        if nxt is None:
            stack.pop()
            path.pop()
            continue
        if nxt == start:
            return path
        if nxt not in seen:
            path.append(nxt)
            seen.add(nxt)
            stack.append(iter(sorted(graph.successors(nxt))))
    raise ValueError("graph has no cycle through its smallest node: not strongly connected")
