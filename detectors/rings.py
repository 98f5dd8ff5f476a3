"""Shared-identifier rings, with hub suppression decided from the data.

Applications are linked through the identifiers they share (phones, devices,
accounts, e-mails, contact phones, addresses, IPs) and through their resolved
applicant; a ring is a connected component that spans several distinct
people. What makes this work on real portfolios is deciding which identifiers
may glue applications together at all:

* an identifier used by one person only (a repeat borrower's phone) links
  nothing new and is ignored;
* a **hub** — a carrier NAT IP, an office tower, a call-centre switchboard —
  is shared by many people who have nothing else in common. Per identifier
  kind, the number of distinct people sharing an identifier is compared with
  that kind's own distribution (a robust upper fence on log counts), and a
  large identifier is suppressed unless its sharers are *cohesive* (most of
  them also share some other identifier among themselves) or unusually often
  known bad;
* weak kinds (IP, address) glue only when cohesive, never alone.

Each ring is scored from what its members share (kind and number of shared
identifiers), its density, how compact it is in time, and known-bad members;
family-like rings (sharing only an address or each other as contacts, same
surname) are discounted, and so is a ring that is one **household**: a few
people who name each other as emergency contacts with a family relation
(spouse, parent, 配偶 …, backed by a shared surname or home, or answered in
kind: the test of :func:`ringscope.detectors.family.family_consistency`),
those links joining all of them. A family shares a home address, the home
IP and often a device, and a spouse keeps their own surname, so what it
shares alone cannot tell it from a ring; who its members say they are to
each other can. Members who merely share contact phones, or name each
other as friends, are no household.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from ringscope.detectors.base import Detector, Evidence, Finding, param
from ringscope.detectors.components import component_labels
from ringscope.detectors.contacts import contact_edges, contact_owner_pairs
from ringscope.detectors.engine import InProcess, engine_of
from ringscope.detectors.family import family_consistency, family_of_links, home_keys_of, surnames_of
from ringscope.detectors.keys import is_missing, kept_for, key_index, text_codes
from ringscope.detectors.portfolio import LINK_KINDS, _single_chunks, as_portfolio, in_set
from ringscope.graph.model import KNOWN_BAD_LABELS

__all__ = [
    "SharedIdentifierRings",
    "identifier_hubs",
    "hub_decisions",
    "ring_components",
    "ring_scope",
    "entity_links",
    "RingLinkCodes",
    "ring_link_codes",
    "ring_link_hubs",
    "households",
    "household_limit",
]

#: how much sharing one identifier of each kind says about common control
KIND_STRENGTH: dict[str, float] = {
    "device": 1.0,
    "account": 1.0,
    "phone": 1.0,
    "email": 0.8,
    "contact_phone": 0.6,
    "address": 0.35,
    "ip": 0.3,
}
WEAK_KINDS = frozenset({"address", "ip"})
#: the application columns :func:`ringscope.detectors.family.family_consistency` reads
_FAMILY_COLUMNS = ("applicant_name", "address")
BAD_LABELS = KNOWN_BAD_LABELS
#: up to this many ring members (a scope's few rings), :meth:`SharedIdentifierRings._findings` runs in plain Python
SMALL_RINGS = 2_000


def identifier_hubs(
    links: pd.DataFrame,
    *,
    fence_mads: float = 3.0,
    min_hub_people: int = 5,
    cohesion_threshold: float = 0.5,
    labels: pd.Series | None = None,
) -> pd.DataFrame:
    """Per shared identifier: people sharing it, cohesion, and whether it is a hub.

    Parameters
    ----------
    links : DataFrame
        ``application_id``, ``kind``, ``identifier``, ``entity`` (the resolved
        applicant). Only identifiers with two or more distinct entities count.
    fence_mads : float
        A kind's upper fence is ``median + fence_mads * MAD`` of log(people).
    min_hub_people : int
        Never call an identifier shared by fewer people a hub.
    cohesion_threshold : float
        Share of sharers that also share another identifier among themselves,
        above which a large identifier is kept (a big farm, not a hub).
    labels : Series, optional
        application_id → label; sharers known bad at more than twice the
        portfolio rate keep a large identifier.

    Returns
    -------
    DataFrame indexed by (kind, identifier) with ``apps``, ``people``,
    ``cohesion``, ``bad_rate``, ``fence``, ``hub`` and ``glue``.

    Example
    -------
    >>> links = pd.DataFrame(
    ...     [(f"a{i}", "ip", "nat", f"p{i}") for i in range(40)]
    ...     + [("a1", "device", "d1", "p1"), ("a2", "device", "d1", "p2")]
    ...     + [(f"a{i}", "ip", f"ip{i // 2}", f"p{i}") for i in range(100, 140)],
    ...     columns=["application_id", "kind", "identifier", "entity"])
    >>> hubs = identifier_hubs(links)
    >>> bool(hubs.loc[("ip", "nat"), "hub"]), bool(hubs.loc[("device", "d1"), "glue"])
    (True, True)

    Notes
    -----
    O(L + sum of squared shared degrees per application) over the L links.
    """
    if links.empty:
        return _no_hubs()

    def key_text(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return links["kind"].iloc[rows].to_numpy(), links["identifier"].iloc[rows].to_numpy()

    return _hubs_of_codes(_link_codes(links), key_text, labels, fence_mads, min_hub_people, cohesion_threshold)


def _no_hubs() -> pd.DataFrame:
    return pd.DataFrame(columns=["apps", "people", "cohesion", "bad_rate", "fence", "hub", "glue"])


def _hubs_of_codes(
    codes: dict[str, np.ndarray],
    key_text: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    labels: pd.Series | None,
    fence_mads: float,
    min_hub_people: int,
    cohesion_threshold: float,
) -> pd.DataFrame:
    """:func:`identifier_hubs` of links given as codes (:func:`_link_codes`'
    dict, which it empties as it goes) and ``key_text(rows)``: the kind and
    identifier of those rows, as arrays (the hub table's index)."""
    rows = _shared_rows(codes)
    if not len(rows):
        return _no_hubs()
    # identifiers numbered in order of first appearance: the group-by (sort=False) of the text keys
    group, _ = pd.factorize(codes["key"][rows])
    n_groups = int(group.max()) + 1
    firsts = rows[np.unique(group, return_index=True)[1]]
    app = codes["app"][rows]
    entity = codes["entity"][rows]
    del codes["key"], codes["entity"]
    app_named = ~codes["app_missing"][rows]
    # rows are one per application and identifier: the applications are the rows with one
    apps = np.bincount(group[app_named], minlength=n_groups)
    named = ~codes["entity_missing"][rows]
    people_pairs = pd.unique(group[named] * (int(entity.max()) + 1) + entity[named])
    people = np.bincount(people_pairs // (int(entity.max()) + 1), minlength=n_groups)
    del entity, people_pairs
    index = pd.MultiIndex.from_arrays(list(key_text(firsts)), names=["kind", "identifier"])
    per_id = pd.DataFrame({"apps": apps, "people": people}, index=index)
    total = np.bincount(group, minlength=n_groups)
    per_id["cohesion"] = _cohesion_codes(app, group, n_groups) / total
    if labels is not None and len(labels):
        bad_app = labels.reindex(codes["app_values"]).isin(BAD_LABELS).to_numpy()
        bad = bad_app[app].astype(np.float64)
        bad_rate = pd.Series(np.bincount(group, weights=bad, minlength=n_groups) / total, index=index)
    else:
        bad_rate = None
    return hub_decisions(per_id, bad_rate, labels, fence_mads, min_hub_people, cohesion_threshold)


def hub_decisions(
    per_id: pd.DataFrame,
    bad_rate: pd.Series | None,
    labels: pd.Series | None,
    fence_mads: float,
    min_hub_people: int,
    cohesion_threshold: float,
) -> pd.DataFrame:
    """The fences, hub and glue decisions of :func:`identifier_hubs` from its
    per-identifier figures (``apps``, ``people``, ``cohesion``, indexed by
    kind and identifier) and bad rates: the part every engine finishes with
    the same code, so the decisions cannot differ between engines.

    Example
    -------
    >>> keys = pd.MultiIndex.from_tuples([("ip", f"i{n}") for n in range(10)], names=["kind", "identifier"])
    >>> per_id = pd.DataFrame({"apps": [2] * 9 + [40], "people": [2] * 9 + [40], "cohesion": [1.0] * 9 + [0.0]},
    ...                       index=keys)
    >>> decided = hub_decisions(per_id, None, None, 3.0, 5, 0.5)
    >>> decided.loc[("ip", "i9"), ["hub", "glue"]].tolist(), decided.loc[("ip", "i0"), ["hub", "glue"]].tolist()
    ([True, False], [False, True])
    """
    # robust upper fence of log(people) per kind
    logp = np.log(per_id["people"].astype(float))
    med = logp.groupby(level="kind").transform("median")
    mad = (logp - med).abs().groupby(level="kind").transform("median") * 1.4826
    per_id["fence"] = np.maximum(np.exp(med + fence_mads * np.maximum(mad, 0.1)), min_hub_people)
    if labels is not None and len(labels):
        per_id["bad_rate"] = bad_rate
        base_rate = float(labels.isin(BAD_LABELS).mean())
    else:
        per_id["bad_rate"] = 0.0
        base_rate = 1.0
    large = per_id["people"] > per_id["fence"]
    suspicious = per_id["bad_rate"] > 2 * base_rate
    cohesive = per_id["cohesion"] >= cohesion_threshold
    per_id["hub"] = large & ~cohesive & ~suspicious
    weak = per_id.index.get_level_values("kind").isin(list(WEAK_KINDS))
    per_id["glue"] = ~per_id["hub"] & (~weak | cohesive)
    return per_id


def ring_components(links: pd.DataFrame, glue: pd.DataFrame) -> pd.Series:
    """Connected components of applications through gluing identifiers.

    Parameters
    ----------
    links : DataFrame
        ``application_id``, ``kind``, ``identifier``, ``entity``.
    glue : DataFrame
        Output of :func:`identifier_hubs`; rows with ``glue`` True link.

    Returns
    -------
    Series application_id → component number (only linked applications).

    Example
    -------
    >>> links = pd.DataFrame([("a", "device", "d", "p"), ("b", "device", "d", "q"), ("c", "device", "x", "r")],
    ...                      columns=["application_id", "kind", "identifier", "entity"])
    >>> comps = ring_components(links, identifier_hubs(links))
    >>> bool(comps["a"] == comps["b"]), "c" in comps.index
    (True, False)

    Notes
    -----
    One sparse bipartite matrix and scipy's connected components: O(L).
    """
    gluing = _gluing(glue)
    if len(gluing) == 0:
        return pd.Series(dtype="int64")
    if len(links) <= SMALL_RINGS:
        return _ring_components_small(links, glue, gluing)
    link_keys = links["kind"].astype(str) + "\x1f" + links["identifier"].astype(str)
    mask = _glue_mask(glue, gluing, link_keys)
    # the applicant entity glues its own applications too (repeat borrowers)
    used = links.loc[mask, ["application_id", "kind", "identifier"]]
    person = links[["application_id", "entity"]].drop_duplicates()
    person = person.rename(columns={"entity": "identifier"}).assign(kind="person")
    person = person[person["application_id"].isin(used["application_id"])]
    edges = pd.concat([used, person], ignore_index=True)
    apps, app_idx = np.unique(edges["application_id"].to_numpy(dtype=object).astype(str), return_inverse=True)
    ids, id_idx = np.unique(
        (edges["kind"] + "\x1f" + edges["identifier"].astype(str)).to_numpy(dtype=str), return_inverse=True
    )
    n_apps = len(apps)
    labels = component_labels(n_apps + len(ids), app_idx, n_apps + id_idx)  # applications, then identifiers
    return pd.Series(labels[:n_apps], index=pd.Index(apps, name="application_id"), name="component")


def _gluing(glue: pd.DataFrame) -> pd.MultiIndex:
    """The gluing identifiers of a hub table, picked once per table (a
    scope's few links would otherwise pay a pass over the whole book's hubs)."""
    return kept_for(glue, "gluing", lambda: glue.index[glue["glue"].to_numpy(dtype=bool)])


def _ring_components_small(links: pd.DataFrame, glue: pd.DataFrame, gluing: pd.MultiIndex) -> pd.Series:
    """:func:`ring_components` of a scope's few links, on Python lists: the
    same edges, nodes in the same (sorted) order, hence the same labels."""
    apps = [str(a) for a in links["application_id"].to_numpy(dtype=object).tolist()]
    kinds = links["kind"].to_numpy(dtype=object).tolist()
    idents = [None if pd.isna(i) else str(i) for i in links["identifier"].to_numpy(dtype=object).tolist()]
    entities = [_as_str(e) for e in links["entity"].to_numpy(dtype=object).tolist()]
    # a missing identifier glues nothing (its key is missing, as the concatenated text columns give it)
    keys = [None if i is None else f"{_as_str(k)}\x1f{i}" for k, i in zip(kinds, idents)]
    mask = _glue_mask(glue, gluing, pd.Series(keys, dtype=object)).tolist()
    edges = [(a, key) for a, key, m in zip(apps, keys, mask) if m]
    used = {a for a, _ in edges}
    # each linked application's applicant entity glues its applications too
    edges += [(a, f"person\x1f{e}") for a, e in dict.fromkeys(zip(apps, entities)) if a in used]
    app_nodes = sorted({a for a, _ in edges})
    id_nodes = sorted({i for _, i in edges})
    app_at = {a: n for n, a in enumerate(app_nodes)}
    id_at = {i: n for n, i in enumerate(id_nodes)}
    n_apps = len(app_nodes)
    labels = component_labels(
        n_apps + len(id_nodes),
        np.array([app_at[a] for a, _ in edges], dtype=np.int64),
        np.array([n_apps + id_at[i] for _, i in edges], dtype=np.int64),
    )
    return pd.Series(labels[:n_apps], index=pd.Index(app_nodes, name="application_id"), name="component")


def _as_str(value) -> str:
    """``astype(str)`` of one value of a text column (a missing one reads ``nan``)."""
    return "nan" if value is None or value is pd.NA or (isinstance(value, float) and value != value) else str(value)


def _glue_mask(glue: pd.DataFrame, gluing: pd.MultiIndex, link_keys: pd.Series) -> np.ndarray:
    """Which ``link_keys`` (``kind\\x1fidentifier``) are gluing identifiers.

    The hub table is the whole portfolio's while the links may be a
    scope's few: the gluing keys' hash table is built once per hub table
    (an object index keeps it), so a scope pays for its own links only.
    """
    if len(link_keys) > len(gluing):  # a whole portfolio: one pass of Arrow's hash look-up
        keys = gluing.get_level_values(0).astype(str) + "\x1f" + gluing.get_level_values(1).astype(str)
        return link_keys.isin(keys).to_numpy(dtype=bool)
    keys = kept_for(
        glue,
        "glue_keys",
        lambda: key_index(
            pd.unique(gluing.get_level_values(0).astype(str) + "\x1f" + gluing.get_level_values(1).astype(str))
        ),
    )
    return keys.get_indexer(key_index(link_keys)) >= 0


def ring_scope(links: pd.DataFrame, glue: pd.DataFrame, app_ids: Sequence[str]) -> pd.Index:
    """The applications of the ring components that hold any of ``app_ids``.

    The components are those of :func:`ring_components` (gluing identifiers,
    and the applicant entity of every application with a gluing link), whole
    however far they reach: everything a ring's members, score and evidence
    read, for the rings a batch starts or joins.

    Parameters
    ----------
    links : DataFrame
        ``application_id``, ``kind``, ``identifier``, ``entity`` of the whole portfolio.
    glue : DataFrame
        Output of :func:`identifier_hubs` over the whole portfolio.
    app_ids : sequence of str
        The applications whose rings are wanted.

    Returns
    -------
    Index of application ids (empty when none of ``app_ids`` is linked).

    Example
    -------
    >>> links = pd.DataFrame([("a", "device", "d", "p"), ("b", "device", "d", "q"), ("b", "phone", "t", "q"),
    ...                       ("c", "phone", "t", "r"), ("x", "device", "y", "s"), ("z", "device", "y", "u")],
    ...                      columns=["application_id", "kind", "identifier", "entity"])
    >>> sorted(ring_scope(links, identifier_hubs(links), ["a"]))
    ['a', 'b', 'c']

    Notes
    -----
    O(L): one Arrow hash look-up per link picks the gluing links (a small
    share of the L links), then scipy labels the components of those only.
    On a 20k-application book (144k links, 4.7k gluing edges) the pick takes
    ~33 ms and the labelling ~4 ms; a breadth-first search from a 2% batch
    over CSR arrays of the same edges costs the same ~4 ms after the same
    pick, so the simpler labelling is kept.
    """
    return _components_holding(*_glued_labels(links, glue), app_ids)


def _glued_labels(links: pd.DataFrame, glue: pd.DataFrame) -> tuple[pd.Index, np.ndarray]:
    """The applications with a gluing link and their ring component number."""
    edges = _glue_edges(links, glue)
    if edges.empty:
        return pd.Index([], dtype=object, name="application_id"), np.zeros(0, dtype=np.int64)
    app_codes, apps = pd.factorize(edges["application_id"].to_numpy(dtype=object))
    node_codes, nodes = pd.factorize(edges["node"].to_numpy(dtype=object))
    n_apps = len(apps)
    labels = component_labels(n_apps + len(nodes), app_codes, n_apps + node_codes)[:n_apps]
    return pd.Index(apps, name="application_id", dtype=object), labels


def _components_holding(apps: pd.Index, labels: np.ndarray, app_ids: Sequence[str]) -> pd.Index:
    """The applications of ``apps`` whose component holds one of ``app_ids``."""
    at = apps.get_indexer(pd.Index(list(map(str, app_ids)), dtype=object))
    return apps[np.isin(labels, np.unique(labels[at[at >= 0]]))]


def _ring_labels(portfolio, glue: pd.DataFrame) -> tuple[pd.Index, np.ndarray]:
    """The applications with a gluing link and their ring component
    (:func:`ring_scope`'s labelling), computed once per portfolio, entities
    and hub table, not per scope."""
    held = portfolio.derived.get("ring_labels")
    if held is not None and held[0] is glue:
        return held[1], held[2]
    codes = None if "ring_links" in portfolio.derived else ring_link_codes(portfolio)
    if codes is not None:  # no whole-book text table for a batch's rings
        apps, labels = _glued_labels_of_codes(portfolio, codes, glue)
    else:
        apps, labels = _glued_labels(entity_links(portfolio), glue)
    portfolio.derived["ring_labels"] = (glue, apps, labels)
    return apps, labels


def _ring_people(portfolio, glue: pd.DataFrame) -> np.ndarray:
    """The distinct applicant entities of each ring component of
    :func:`_ring_labels` (by label), as ``find`` counts a ring's people:
    each application's resolved applicant, ``app:<id>`` without one.
    Computed once per portfolio, entities and hub table."""
    held = portfolio.derived.get("ring_people")
    if held is not None and held[0] is glue:
        return held[1]
    apps, labels = _ring_labels(portfolio, glue)
    if portfolio.application_keys() is None:  # an id twice: each ring's own entities decide, in ``find``
        people = np.full(int(labels.max()) + 1 if len(labels) else 0, np.iinfo(np.int64).max)
    elif not len(apps):
        people = np.zeros(0, dtype=np.int64)
    else:
        entity, _ = pd.factorize(application_entities(portfolio, apps))
        width = int(entity.max()) + 1
        pairs = np.unique(labels.astype(np.int64) * width + entity)
        people = np.bincount(pairs // width, minlength=int(labels.max()) + 1)
    portfolio.derived["ring_people"] = (glue, people)
    return people


def _glue_edges(links: pd.DataFrame, glue: pd.DataFrame) -> pd.DataFrame:
    """``application_id``, ``node`` for every gluing link, plus each linked
    application's applicant entity: the edges of :func:`ring_components`."""
    gluing = glue.index[glue["glue"].to_numpy(dtype=bool)]
    if len(gluing) == 0 or links.empty:
        return pd.DataFrame(columns=["application_id", "node"])
    # one vectorised pass over all links by identifier alone, then the exact
    # (kind, identifier) check on the few candidates
    candidate = in_set(links["identifier"], gluing.get_level_values(1).unique())
    used = links.loc[candidate]
    node = used["kind"].astype(str) + "\x1f" + used["identifier"].astype(str)
    glue_keys = gluing.get_level_values(0).astype(str) + "\x1f" + gluing.get_level_values(1).astype(str)
    exact = node.isin(glue_keys).to_numpy(dtype=bool)
    used, node = used.loc[exact], node.to_numpy(dtype=object)[exact]
    app = used["application_id"].astype(str).to_numpy(dtype=object)
    person = used.drop_duplicates("application_id")
    return pd.DataFrame(
        {
            "application_id": np.concatenate([app, person["application_id"].astype(str).to_numpy(dtype=object)]),
            "node": np.concatenate([node, ("person\x1f" + person["entity"].astype(str)).to_numpy(dtype=object)]),
        }
    )


@dataclass(frozen=True, kw_only=True)
class SharedIdentifierRings(Detector):
    """Rings of applications that share identifiers across several people.

    Parameters
    ----------
    min_people : int
        Distinct resolved applicants a ring must span (default 3: two people
        sharing a phone is a couple as often as a ring).
    fence_mads : float
        Hub fence per identifier kind, in MADs of log(people) above the median.
    min_hub_people : int
        Identifiers shared by fewer people are never hubs.
    cohesion_threshold : float
        Share of sharers that must also share another identifier for a large
        identifier (or a weak kind) to glue a ring.
    max_ring_size : int
        Rings larger than this are still reported but scored down: in real
        data a giant component means a hub slipped through, not a giant gang.
    max_household : int
        The smallest bound on a household's people: a ring all of whose
        people are joined by family naming links (:func:`households`) is one
        household, scored down like a family, when it has at most
        ``max(max_household, fence)`` people, the fence being the
        portfolio's own family groups' upper fence (:func:`household_limit`,
        ``fence_mads`` MADs of log people above the median). The floor is
        ``contact_loops``' household bound.
    """

    name: ClassVar[str] = "shared_identifier_rings"
    min_people: int = param(3, ge=2)
    fence_mads: float = param(3.0, kind=numbers.Real, gt=0)
    min_hub_people: int = param(5, ge=2)
    cohesion_threshold: float = param(0.5, kind=numbers.Real, gt=0, le=1)
    max_ring_size: int = param(300, ge="min_people")
    max_household: int = param(6, ge=0)

    def run(self, source, statistics: pd.DataFrame | None = None) -> list[Finding]:
        """Rings over a store or portfolio; ``statistics`` (the hub table of
        :meth:`statistics`, usually over a larger portfolio) decide which
        identifiers glue instead of figures from ``source``."""
        return self.find(as_portfolio(source), hubs=statistics)

    def statistics(self, portfolio) -> pd.DataFrame:
        """The hub table over the whole portfolio (:func:`identifier_hubs`;
        known-bad labels feed it), and in its ``attrs["household_people"]``
        the household bound decided over the whole portfolio
        (:func:`household_limit`): the only portfolio-wide figures a ring reads."""
        portfolio = as_portfolio(portfolio)
        hubs = self.hubs(portfolio)
        hubs.attrs["household_people"] = household_limit(portfolio, self.fence_mads, self.max_household)
        return hubs

    def scope(self, portfolio, app_ids: Sequence[str], statistics: pd.DataFrame | None = None):
        """The whole ring components ``app_ids`` belong to (:func:`ring_scope`),
        as a sub-portfolio: every application, link and label a ring holding
        one of them reads. Entities stay those of ``portfolio``."""
        portfolio = as_portfolio(portfolio)
        hubs = self.statistics(portfolio) if statistics is None else statistics
        return portfolio.subset(_components_holding(*_ring_labels(portfolio, hubs), app_ids))

    def around(self, portfolio, app_ids: Sequence[str], statistics: pd.DataFrame | None = None):
        """``[]`` when none of ``app_ids`` has a gluing link (no ring can hold
        it), from the ring components computed once per portfolio."""
        if statistics is None:
            return None
        portfolio = as_portfolio(portfolio)
        apps, labels = _ring_labels(portfolio, statistics)
        at = apps.get_indexer(pd.Index(list(map(str, app_ids)), dtype=object))
        at = at[at >= 0]
        if not len(at):
            return []
        # a component of fewer people than a ring needs holds no ring (a couple sharing a phone):
        # the scope's components are these components, its people these people
        if (_ring_people(portfolio, statistics)[labels[at]] < self.min_people).all():
            return []
        return None

    def hubs(self, portfolio) -> pd.DataFrame:
        """The portfolio's shared identifiers with hub and glue decisions."""
        labels = portfolio.applications.set_index("application_id")["label"]
        engine = engine_of(portfolio)
        params = dict(
            fence_mads=self.fence_mads,
            min_hub_people=self.min_hub_people,
            cohesion_threshold=self.cohesion_threshold,
            labels=labels,
        )
        if isinstance(engine, InProcess) and "ring_links" not in portfolio.derived:
            codes = ring_link_codes(portfolio)  # the same table without the whole book's text links
            if codes is not None:
                return ring_link_hubs(portfolio, codes, **params)
        return engine.identifier_hubs(engine.links_of(portfolio), **params)

    def find(self, portfolio, hubs: pd.DataFrame | None = None) -> list[Finding]:
        """Rings in ``portfolio``; ``hubs`` decided elsewhere (the whole
        portfolio, when ``portfolio`` is only the neighbourhood of new
        applications) are used as given."""
        apps = portfolio.applications
        if apps.empty:
            return []
        engine = engine_of(portfolio)
        # the whole book's links stay in the engine (in Spark: never in this process)
        links = engine.links_of(portfolio)
        if hubs is None:
            hubs = engine.identifier_hubs(
                links,
                fence_mads=self.fence_mads,
                min_hub_people=self.min_hub_people,
                cohesion_threshold=self.cohesion_threshold,
                labels=apps.set_index("application_id")["label"],
            )
        components = engine.ring_components(links, hubs)
        if components.empty:
            return []
        # what scoring reads of the links: the linked applications' own, collected once
        linked = engine.links_of_applications(links, components.index)
        entity = linked.drop_duplicates("application_id").set_index("application_id")["entity"]
        members = components.to_frame().join(
            apps.set_index("application_id")[["applied_at", "label", "applicant_name"]]
        )
        members["entity"] = entity.reindex(members.index).fillna(pd.Series(members.index, index=members.index))
        people = members.groupby("component")["entity"].nunique()
        keep = people[people >= self.min_people].index
        members = members[members["component"].isin(keep)]
        if members.empty:
            return []
        limit = hubs.attrs.get("household_people") if hubs is not None else None
        if limit is None:  # decided over the portfolio at hand (the whole one in a full run)
            limit = household_limit(portfolio, self.fence_mads, self.max_household)
        household = households(portfolio, members[["component", "entity"]], limit)
        return self._findings(members.assign(household=members["component"].isin(household)), linked, hubs)

    # -- scoring (vectorised over all rings, then one light loop) -----------------
    def _findings(self, members: pd.DataFrame, links: pd.DataFrame, hubs: pd.DataFrame) -> list[Finding]:
        if len(members) <= SMALL_RINGS:
            return self._findings_small(members, links, hubs)
        comp_of = members["component"]
        in_rings = links[links["application_id"].isin(members.index)]
        keyed = pd.MultiIndex.from_arrays([in_rings["kind"], in_rings["identifier"]])
        hub_info = hubs.reindex(keyed)
        in_rings = in_rings.assign(
            component=in_rings["application_id"].map(comp_of).to_numpy(),
            people=hub_info["people"].to_numpy(),
            fence=hub_info["fence"].to_numpy(),
            glue=hub_info["glue"].fillna(False).to_numpy(dtype=bool),
            hub=hub_info["hub"].fillna(False).to_numpy(dtype=bool),
            strength=in_rings["kind"].map(KIND_STRENGTH).to_numpy(),
        )
        shared = in_rings[in_rings["glue"]]
        members = members.assign(
            bad=members["label"].isin(BAD_LABELS).astype(int),
            surname=members["applicant_name"].astype("string").str[:1],
        )
        stats = members.groupby("component").agg(
            size=("entity", "size"),
            people=("entity", "nunique"),
            t_min=("applied_at", "min"),
            t_max=("applied_at", "max"),
            bad=("bad", "sum"),
            surnames=("surname", "nunique"),
            household=("household", "any"),
        )
        kinds = shared.groupby(["component", "kind"])["identifier"].nunique().unstack("kind", fill_value=0)
        per_app = shared.groupby(["component", "application_id"])["identifier"].nunique()
        stats["density"] = per_app.groupby(level="component").mean()
        stats["density"] = stats["density"].fillna(0.0)
        unique_shared = shared.drop_duplicates(["component", "kind", "identifier"]).sort_values(
            ["component", "strength", "people"], ascending=[True, False, False]
        )
        top_shared = _records_by_component(unique_shared, ["kind", "identifier", "people"], 50)
        unique_hubs = in_rings[in_rings["hub"]].drop_duplicates(["component", "kind", "identifier"])
        top_hubs = _records_by_component(unique_hubs, ["kind", "identifier", "people", "fence"], 5)
        member_ids = members.groupby("component").indices
        index = members.index.to_numpy()
        entity_values = members["entity"].to_numpy()
        kind_names = list(kinds.columns)
        kind_rows = dict(zip(kinds.index, kinds.to_numpy().tolist()))
        findings = []
        for row in stats.reset_index().to_dict("records"):
            comp = row["component"]
            counts = kind_rows.get(comp, [0] * len(kind_names))
            kind_counts = {k: int(n) for k, n in zip(kind_names, counts) if n}
            rows = member_ids[comp]
            findings.append(
                self._finding(
                    row,
                    kind_counts,
                    top_shared.get(comp, []),
                    top_hubs.get(comp, []),
                    tuple(sorted(index[rows])),
                    set(entity_values[rows]),
                )
            )
        findings.sort(key=lambda f: -f.score)
        return findings

    def _findings_small(self, members: pd.DataFrame, links: pd.DataFrame, hubs: pd.DataFrame) -> list[Finding]:
        """:meth:`_findings` for the few rings of a scope, in plain Python over
        the rows (the same figures, tested against it): its two dozen group-bys
        cost ~15 ms however few the rows."""
        index = members.index.to_numpy(dtype=object)
        comps = members["component"].to_numpy()
        entities = members["entity"].to_numpy(dtype=object)
        labels = members["label"].to_numpy(dtype=object)
        times = members["applied_at"]
        stamps = list(times)  # Timestamps (NaT for a missing time), as a group-by's min and max give them
        names = members["applicant_name"].astype("string").str[:1].to_numpy(dtype=object)
        household = members["household"].to_numpy(dtype=bool)
        rows_of: dict = {}
        for row, comp in enumerate(comps.tolist()):
            rows_of.setdefault(comp, []).append(row)
        comp_of = dict(zip(index.tolist(), comps.tolist()))
        # the members' links, with their identifier's hub decisions
        app_col = links["application_id"].to_numpy(dtype=object)
        held = [i for i, a in enumerate(app_col.tolist()) if a in comp_of]
        kinds = links["kind"].to_numpy(dtype=object)[held]
        idents = links["identifier"].to_numpy(dtype=object)[held]
        apps = app_col[held]
        at = hubs.index.get_indexer(pd.MultiIndex.from_arrays([kinds, idents])) if held else np.zeros(0, dtype=np.int64)
        found = at >= 0

        def hub_column(name: str, fill, dtype) -> list:
            out = np.full(len(held), fill, dtype=dtype)
            out[found] = hubs[name].to_numpy()[at[found]]
            return out.tolist()

        people, fence = hub_column("people", np.nan, float), hub_column("fence", np.nan, float)
        glue = hub_column("glue", False, bool) if "glue" in hubs else [False] * len(held)
        hub = hub_column("hub", False, bool) if "hub" in hubs else [False] * len(held)
        # per ring: identifiers by kind, per application, the first of each (ring, kind, identifier)
        kind_sets: dict = {}
        app_sets: dict = {}
        shared_first: dict = {}
        hubs_first: dict = {}
        for j, (kind, ident, app) in enumerate(zip(kinds.tolist(), idents.tolist(), apps.tolist())):
            comp = comp_of[app]
            if glue[j]:
                kind_sets.setdefault(comp, {}).setdefault(kind, set()).add(ident)
                app_sets.setdefault(comp, {}).setdefault(app, set()).add(ident)
                shared_first.setdefault(comp, {}).setdefault((kind, ident), (j, kind, ident, people[j]))
            if hub[j]:
                hubs_first.setdefault(comp, {}).setdefault((kind, ident), (kind, ident, people[j], fence[j]))
        findings = []
        for comp in sorted(rows_of):
            rows = rows_of[comp]
            when = [stamps[r] for r in rows if not pd.isna(stamps[r])]
            per_app = app_sets.get(comp, {})
            firsts = sorted(
                shared_first.get(comp, {}).values(),
                key=lambda v: (-KIND_STRENGTH[v[1]], -v[3] if v[3] == v[3] else np.inf, v[0]),
            )
            row = {
                "component": comp,
                "size": len(rows),
                "people": len({entities[r] for r in rows if not pd.isna(entities[r])}),
                "t_min": min(when) if when else pd.NaT,
                "t_max": max(when) if when else pd.NaT,
                "bad": sum(labels[r] in BAD_LABELS for r in rows),
                "surnames": len({names[r] for r in rows if not pd.isna(names[r])}),
                "household": bool(household[rows].any()),
                "density": float(np.mean([len(v) for v in per_app.values()])) if per_app else 0.0,
            }
            by_kind = kind_sets.get(comp, {})
            findings.append(
                self._finding(
                    row,
                    {k: len(by_kind[k]) for k in sorted(by_kind)},
                    [(k, i, n) for _, k, i, n in firsts[:50]],
                    list(hubs_first.get(comp, {}).values())[:5],
                    tuple(sorted(index[rows])),
                    set(entities[rows]),
                )
            )
        findings.sort(key=lambda f: -f.score)
        return findings

    def _finding(
        self,
        row: dict,
        kinds: dict[str, int],
        shared: list[tuple],
        hubs: list[tuple],
        members: tuple[str, ...],
        entities: set,
    ) -> Finding:
        size, people, bad, density = int(row["size"]), int(row["people"]), int(row["bad"]), float(row["density"])
        has_times = pd.notna(row["t_min"]) and pd.notna(row["t_max"])
        span_days = (row["t_max"] - row["t_min"]).total_seconds() / 86400 if has_times else 0.0
        by_strength = sorted(kinds.items(), key=lambda kv: -KIND_STRENGTH[kv[0]])
        strength = sum(KIND_STRENGTH[k] * min(n, 3) / 3 for k, n in kinds.items())
        family_like = set(kinds) <= {"address", "contact_phone"} and int(row["surnames"]) == 1
        household = bool(row.get("household", False)) and not family_like

        evidence = []
        c_share = min(0.45, 0.45 * strength / 2.0)
        evidence.append(
            Evidence(
                "shared_identifiers",
                c_share,
                f"{size} applications by {people} people share " + ", ".join(f"{n} {k}" for k, n in by_strength),
                tuple(f"{kind}:{ident} ({n:.0f} people)" for kind, ident, n in shared[:8]),
            )
        )
        c_size = min(0.15, 0.05 * math.log2(max(people, 2)))
        evidence.append(Evidence("ring_size", c_size, f"{people} distinct applicants in one ring", (people,)))
        c_density = min(0.1, 0.04 * density)
        evidence.append(
            Evidence(
                "density",
                c_density,
                f"each member shares {density:.1f} identifiers with the ring on average",
                (round(density, 2),),
            )
        )
        c_time = 0.2 / (1.0 + span_days / 14.0)
        evidence.append(
            Evidence(
                "time_compactness",
                c_time,
                f"applied within {span_days:.1f} days ({row['t_min']:%Y-%m-%d} to {row['t_max']:%Y-%m-%d})"
                if has_times
                else "no application dates",
                (round(span_days, 1),),
            )
        )
        c_bad = min(0.2, 0.1 * bad)
        if bad:
            evidence.append(
                Evidence("known_bad_members", c_bad, f"{bad} members already labelled fraud or default", (bad,))
            )
        score = c_share + c_size + c_density + c_time + c_bad
        if family_like:
            evidence.append(
                Evidence(
                    "family_like",
                    -score * 0.6,
                    "members share only an address or name each other as contacts, same surname: looks like a family",
                    (),
                )
            )
            score *= 0.4
        if household:
            evidence.append(
                Evidence(
                    "household",
                    -score * 0.6,
                    f"all {people} people name each other as family (spouse, parent, …) and share a home "
                    "or surname: looks like one household",
                    (people,),
                )
            )
            score *= 0.4
        if size > self.max_ring_size:
            evidence.append(
                Evidence(
                    "oversized",
                    -score * 0.5,
                    f"{size} applications is larger than max_ring_size={self.max_ring_size}: "
                    "probably glued by an unrecognised hub",
                    (size,),
                )
            )
            score *= 0.5
        if hubs:
            evidence.append(
                Evidence(
                    "hubs_suppressed",
                    0.0,
                    "ignored as hubs (shared by many unrelated people): "
                    + ", ".join(
                        f"{kind} {ident} ({n:.0f} people > fence {fence:.0f})" for kind, ident, n, fence in hubs
                    ),
                    tuple(f"{kind}:{ident}" for kind, ident, _, _ in hubs),
                )
            )
        shared_nodes = tuple((LINK_KINDS[kind][1], str(ident)) for kind, ident, _ in shared)
        entity_keys = tuple(("Person", str(e)) for e in sorted(map(str, entities)) if not str(e).startswith("app:"))
        top_kinds = "/".join(k for k, _ in by_strength[:3])
        return Finding.from_evidence(
            self.name,
            "shared_identifier_ring",
            members,
            evidence,
            parameters=self.params(),
            summary=f"ring of {people} people / {size} applications sharing {top_kinds} within {span_days:.0f} days",
            entities=entity_keys,
            shared=shared_nodes,
        )


def household_limit(portfolio, fence_mads: float = 3.0, floor: float = 6) -> float:
    """The most people a household of ``portfolio`` may have, from its own families.

    Family groups are the connected groups of resolved applicants joined
    by family naming links (an emergency contact that is another
    applicant's phone, with a family relation that
    :func:`ringscope.detectors.family.family_consistency` backs), over the
    whole portfolio. The bound is the upper fence of their sizes,
    ``exp(median + fence_mads * MAD)`` of log(people) (the MAD at least 0.1,
    as for hubs), and never below ``floor``: a "household" far larger than
    the book's own family groups is not one.

    Example
    -------
    >>> import tempfile
    >>> from ringscope.graph.embedded import EmbeddedStore
    >>> from ringscope.detectors.portfolio import Portfolio
    >>> household_limit(Portfolio(EmbeddedStore(tempfile.mkdtemp())))
    6.0

    Notes
    -----
    One join of the contacts on the applicant phones and one connected
    components labelling: O(c + p), like ``contact_loops``.
    """
    contacts = portfolio.contacts
    apps = portfolio.applications
    if contacts.empty or apps.empty:
        return float(floor)
    contacts = contacts.dropna(subset=["application_id", "phone"])
    phones = portfolio.link_table("phone")
    # only a contact naming an applicant's phone, and that phone's owners, can make a link: the
    # join is the same on those rows, and only their applications get an identity (at 1M, a
    # Python string per application of the book was most of this function's memory)
    phones = phones[in_set(phones["identifier"], contacts["phone"].dropna().unique())]
    contacts = contacts[in_set(contacts["phone"], phones["identifier"].dropna().unique())]
    reached = pd.Index(
        pd.unique(np.concatenate([contacts["application_id"].astype(str), phones["application_id"].astype(str)]))
    )
    # the two columns family_consistency reads, not a copy of every column of the book's applications
    apps = apps[["application_id", *_FAMILY_COLUMNS]].drop_duplicates("application_id").set_index("application_id")
    apps = apps[in_set(pd.Series(apps.index), reached)]
    ids = apps.index.astype(str)
    entity = _linked_entities(portfolio, among=ids)
    identity = pd.Series(entity.reindex(ids).to_numpy(dtype=object), index=ids)
    identity = identity.where(identity.notna(), "app:" + pd.Series(ids, index=ids))
    edges = contact_edges(contacts, phones, identity)
    if edges.empty:
        return float(floor)
    involved = pd.Index(pd.unique(pd.concat([edges["src"], edges["dst"]]).astype(str)))
    edges = edges[family_consistency(edges, apps.loc[involved]) > 0]
    if edges.empty:
        return float(floor)
    m = len(edges)
    codes, people = pd.factorize(
        np.concatenate([identity.reindex(edges["src"]).to_numpy(), identity.reindex(edges["dst"]).to_numpy()])
    )
    sizes = np.bincount(component_labels(len(people), codes[:m], codes[m:]))
    logp = np.log(sizes[sizes >= 2].astype(float))
    median = float(np.median(logp))
    mad = float(np.median(np.abs(logp - median))) * 1.4826
    return float(max(floor, math.exp(median + fence_mads * max(mad, 0.1))))


def households(portfolio, members: pd.DataFrame, max_people: float) -> pd.Index:
    """The rings that are one household: at most ``max_people`` people whom
    family naming links join into one group.

    A family naming link is an emergency contact of one member that is
    another member's applicant phone, with a family relation that
    :func:`ringscope.detectors.family.family_consistency` backs (shared
    surname or home, or answered in kind). The ring is one household when
    those links, between its resolved people, connect all of them.

    Parameters
    ----------
    portfolio : Portfolio
        Its contacts, phone links and applications (name, address) are read.
    members : DataFrame
        Indexed by application id: ``component`` (the ring) and ``entity``
        (the resolved applicant).
    max_people : int
        Larger rings are never one household.

    Returns
    -------
    Index of the ``component`` values that are households.

    Example
    -------
    >>> import tempfile
    >>> from ringscope.graph.embedded import EmbeddedStore
    >>> from ringscope.detectors.portfolio import Portfolio
    >>> members = pd.DataFrame({"component": [0, 0], "entity": ["p", "q"]}, index=["a", "b"])
    >>> list(households(Portfolio(EmbeddedStore(tempfile.mkdtemp())), members, 6))
    []

    Notes
    -----
    One join of the members' contacts on their phones and one connected
    components labelling of the people: O(c + p) over the members.
    """
    empty = pd.Index([], name="component")
    if len(members) <= SMALL_RINGS:
        if not _family_candidates(portfolio, members, max_people):
            return empty  # no member names another member of its ring: no family link, no household
        few = _households_few(portfolio, members, max_people)
        if few is not None:
            return few
    people = members.groupby("component")["entity"].nunique()
    small = people.index[people <= max_people]
    members = members[members["component"].isin(small)]
    contacts = portfolio.contacts
    if members.empty or contacts.empty:
        return empty
    ids = members.index.astype(str)
    contacts = contacts.dropna(subset=["application_id", "phone"])
    contacts = contacts[in_set(contacts["application_id"].astype(str), ids)]
    phones = portfolio.link_table("phone")
    phones = phones[in_set(phones["application_id"].astype(str), ids)]
    edges = contact_edges(contacts, phones, members["entity"])
    if edges.empty:
        return empty
    component = members["component"]
    edges = edges[edges["src"].map(component).to_numpy() == edges["dst"].map(component).to_numpy()]
    if edges.empty:
        return empty
    involved = pd.Index(pd.unique(pd.concat([edges["src"], edges["dst"]]).astype(str)))
    apps = portfolio.applications[["application_id", *_FAMILY_COLUMNS]]
    apps = apps.drop_duplicates("application_id").set_index("application_id")
    edges = edges[family_consistency(edges.reset_index(drop=True), apps.loc[involved]) > 0]
    if edges.empty:
        return empty
    # people of each ring joined by family links: one group covering them all is a household
    codes, entities = pd.factorize(members["entity"].astype(str))
    position = pd.Series(codes, index=members.index)
    labels = component_labels(
        len(entities), position.reindex(edges["src"]).to_numpy(), position.reindex(edges["dst"]).to_numpy()
    )
    groups = pd.Series(labels[codes], index=members.index).groupby(component).nunique()
    return pd.Index(groups.index[groups == 1], name="component")  # rings span >= 2 people: joined


def _households_few(portfolio, members: pd.DataFrame, max_people: float) -> pd.Index | None:
    """:func:`households` of a scope's few rings, on dicts and sets: the
    same family naming links (:func:`contact_edges`' join, de-duplication
    and own-phone filter, as :func:`~ringscope.detectors.contacts.contact_owner_pairs`;
    :func:`~ringscope.detectors.family.family_of_links`) and the same
    test that they join all of a ring's people. About 1 ms where the frame
    operations cost ~10 ms whatever their size. ``None`` (the frames
    decide) when an application id is not text or an entity is missing."""
    comps = members["component"].tolist()
    ids = members.index.tolist()
    entities = members["entity"].tolist()
    if not all(isinstance(a, str) for a in ids) or any(is_missing(e) for e in entities):
        return None
    people: dict = {}
    for comp, entity in zip(comps, entities):
        people.setdefault(comp, set()).add(entity)
    ring_of, entity_of = {}, {}
    for app, comp, entity in zip(ids, comps, entities):
        if len(people[comp]) <= max_people:
            ring_of[app], entity_of[app] = comp, entity
    contacts, phones = portfolio.contacts, portfolio.link_table("phone")
    if not ring_of or contacts.empty or phones.empty:
        return pd.Index([], name="component")
    owners, owned = [], []  # the rings' applications' phones, in the phone table's order
    for app, phone in zip(phones["application_id"].tolist(), phones["identifier"].tolist()):
        if not is_missing(app) and not is_missing(phone) and str(app) in ring_of:
            owners.append(str(app))
            owned.append(phone)
    namers, named, relations = [], [], []  # their contacts, in the contacts' order
    for app, phone, relation in zip(
        contacts["application_id"].tolist(), contacts["phone"].tolist(), contacts["relation"].tolist()
    ):
        if not is_missing(app) and not is_missing(phone) and str(app) in ring_of:
            namers.append(str(app))
            named.append(phone)
            relations.append(relation)
    edges = [
        (namers[i], owners[j], named[i], relations[i])
        for i, j in contact_owner_pairs(namers, named, owners, owned, entity_of)
        if ring_of[namers[i]] == ring_of[owners[j]]
    ]
    if not edges:
        return pd.Index([], name="component")
    involved = {a for s, d, _, _ in edges for a in (s, d)}
    details: dict = {}
    apps = portfolio.applications
    for app, name, address in zip(
        apps["application_id"].tolist(), *(apps[c].tolist() for c in _FAMILY_COLUMNS), strict=True
    ):
        if app in involved and app not in details:  # the first row of an id, as drop_duplicates keeps
            details[app] = (name, address)
    named = list(details)
    surname = dict(zip(named, surnames_of([details[a][0] for a in named])))
    home = dict(zip(named, home_keys_of([details[a][1] for a in named])))
    family = [e for e, value in zip(edges, family_of_links(edges, surname, home)) if value > 0]
    if not family:
        return pd.Index([], name="component")
    # the people of each ring joined by family links: one group covering them all is a household
    root = {str(e): str(e) for e in entity_of.values()}

    def find(e: str) -> str:
        while root[e] != e:
            root[e] = root[root[e]]
            e = root[e]
        return e

    for src, dst, _, _ in family:
        a, b = find(str(entity_of[src])), find(str(entity_of[dst]))
        if a != b:
            root[a] = b
    groups: dict = {}
    for app, comp in ring_of.items():
        groups.setdefault(comp, set()).add(find(str(entity_of[app])))
    return pd.Index(sorted(c for c, g in groups.items() if len(g) == 1), name="component")


def _family_candidates(portfolio, members: pd.DataFrame, max_people: float) -> bool:
    """Whether, in a ring of at most ``max_people`` people, a member's
    emergency contact is another member's applicant phone: what a family
    naming link of :func:`households` needs first (a superset of its links,
    told on Python sets: most rings of a scope have none, and the join,
    filters and group-bys that find none cost ~10 ms)."""
    comps = members["component"].to_numpy().tolist()
    ids = [str(a) for a in members.index.to_numpy(dtype=object).tolist()]
    people: dict = {}
    for comp, entity in zip(comps, members["entity"].to_numpy(dtype=object).tolist()):
        if not pd.isna(entity):
            people.setdefault(comp, set()).add(entity)
    ring_of = {a: c for a, c in zip(ids, comps) if len(people.get(c, ())) <= max_people}
    if not ring_of:
        return False
    contacts = portfolio.contacts
    phones = portfolio.link_table("phone")
    if contacts.empty or phones.empty:
        return False
    owners: dict = {}
    for app, phone in zip(
        phones["application_id"].to_numpy(dtype=object).tolist(), phones["identifier"].to_numpy(dtype=object).tolist()
    ):
        if pd.isna(app) or str(app) not in ring_of:
            continue
        owners.setdefault(phone, []).append(str(app))
    for app, phone in zip(
        contacts["application_id"].to_numpy(dtype=object).tolist(), contacts["phone"].to_numpy(dtype=object).tolist()
    ):
        if pd.isna(app) or pd.isna(phone):
            continue
        ring = ring_of.get(str(app))
        if ring is not None and any(o != str(app) and ring_of[o] == ring for o in owners.get(phone, ())):
            return True
    return False


def _records_by_component(frame: pd.DataFrame, columns: list[str], limit: int) -> dict:
    """component → the first ``limit`` rows of ``columns`` as tuples (frame sorted)."""
    out: dict = {}
    if frame.empty:
        return out
    comps = frame["component"].to_numpy()
    values = list(zip(*(frame[c].to_numpy() for c in columns)))
    for comp, value in zip(comps, values):
        bucket = out.setdefault(comp, [])
        if len(bucket) < limit:
            bucket.append(value)
    return out


def entity_links(portfolio) -> pd.DataFrame:
    """The portfolio's shareable links with each application's resolved
    applicant as ``entity`` (``app:<id>`` when it has none)."""
    if "ring_links" in portfolio.derived:
        return portfolio.derived["ring_links"]
    cut = _parent_entity_links(portfolio)
    if cut is None:
        cut = _entity_links_of_parent_codes(portfolio)
    if cut is not None:
        portfolio.derived["ring_links"] = cut
        return cut
    apps = portfolio.applications
    # the rows of ``portfolio.links`` of these kinds, in its order (they come first in
    # LINK_KINDS), from the link tables: not the whole long table, only to filter it
    held = portfolio._links_by_kind
    kinds = [kind for kind in LINK_KINDS if kind in KIND_STRENGTH and kind in held and len(held[kind])]
    if not kinds:
        links = type(portfolio).links.func(portfolio)
        links = links[links["kind"].isin(list(KIND_STRENGTH))].copy()
    else:
        links = pd.concat([held[kind].assign(kind=kind) for kind in kinds], ignore_index=True)
        links = _single_chunks(links[["application_id", "kind", "identifier"]])
    person = apps.set_index("application_id")["person"]
    entity = portfolio.entity_of(person.dropna())
    # each application's entity once (``app:<id>`` without one), then one take per link
    codes, ids = pd.factorize(links["application_id"])
    ids = pd.Series(ids)
    per_app = ids.map(entity)
    per_app = per_app.where(per_app.notna(), "app:" + ids)
    links["entity"] = pd.Series(per_app.array.take(codes, allow_fill=True), index=links.index)
    portfolio.derived["ring_links"] = links
    portfolio.derived.pop("ring_link_codes", None)  # the table answers what they did
    return links


def _parent_entity_links(portfolio) -> pd.DataFrame | None:
    """A subset's :func:`entity_links`, cut from its parent's (when the
    parent holds them, over the same entities) by the rows of the parent's
    link tables that the subset's own are cut by: the same rows in the same
    order, without building the subset's long links table or mapping its
    entities again. ``None`` when it cannot be cut so.

    The parent's table is its link tables of :data:`KIND_STRENGTH`'s kinds
    one after the other in ``LINK_KINDS`` order (those kinds come first
    there, the rest are filtered out), so a row's position is its kind's
    offset plus its row in that kind's table.
    """
    parent = getattr(portfolio, "parent", None)
    if parent is None or not hasattr(portfolio, "link_rows"):
        return None
    whole = parent.derived.get("ring_links")
    if whole is None or portfolio.person_entity is not parent.person_entity:
        return None
    held = parent._links_by_kind
    kinds = [kind for kind in LINK_KINDS if kind in held and len(held[kind])]
    if [k for k in kinds if k in KIND_STRENGTH] != kinds[: sum(k in KIND_STRENGTH for k in kinds)]:
        return None  # a kept kind after a dropped one: positions are not offsets
    offset, rows = 0, []
    for kind in kinds:
        if kind not in KIND_STRENGTH:
            break
        rows.append(offset + portfolio.link_rows(kind))
        offset += len(held[kind])
    if offset != len(whole):
        return None
    at = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    return whole.iloc[at].reset_index(drop=True)


def _entity_links_of_parent_codes(portfolio) -> pd.DataFrame | None:
    """A subset's :func:`entity_links` when its parent holds the links as
    :class:`RingLinkCodes` instead of the text table (a flag index does):
    the same rows, order and dtypes, from the parent's link-table rows of
    the subset (the kinds of the codes, in their order), the identifiers
    taken from the parent's tables and each application's entity mapped
    once. Building it from the subset's own link tables took ~7 ms of
    small pandas steps for every ring scope. ``None`` when it cannot be
    cut so (not a subset, no codes, other entities)."""
    parent = getattr(portfolio, "parent", None)
    if parent is None or not hasattr(portfolio, "link_rows"):
        return None
    codes = parent.derived.get("ring_link_codes")
    if codes is None or portfolio.person_entity is not parent.person_entity:
        return None
    held = parent._links_by_kind
    rows, kinds, identifiers = [], [], []
    for k, kind in enumerate(codes.kinds):
        at = portfolio.link_rows(kind)
        if len(at):
            rows.append(codes.starts[k] + at)
            kinds.append(np.full(len(at), kind, dtype=object))
            identifiers.append(held[kind]["identifier"].array.take(at))
    if not rows:
        return None  # no link: the text path's empty frame
    at = np.concatenate(rows)
    apps = codes.app[at]
    app_rows, first = np.unique(apps, return_inverse=True)
    app_values = pd.Index(np.asarray(codes.app_values, dtype=object)[app_rows], dtype=object)
    column = held[codes.kinds[0]]["application_id"]
    ids = pd.array(np.asarray(app_values, dtype=object)[first], dtype=column.dtype)
    # each application's entity as application_entities gives it, from the parent's rows of the few
    # applications (its look-ups by id over the subset's table cost ~2 ms of frame building)
    persons = parent.applications["person"].iloc[app_rows]
    named = persons.notna().to_numpy()
    entities = np.asarray(["app:" + a for a in app_values], dtype=object)
    entities[named] = portfolio.entity_of(persons[named]).to_numpy(dtype=object)
    entity = pd.array(entities[first], dtype=column.dtype)
    return pd.DataFrame(
        {
            "application_id": ids,
            "kind": pd.array(np.concatenate(kinds), dtype=column.dtype),
            "identifier": pd.concat([pd.Series(part) for part in identifiers], ignore_index=True).array,
            "entity": entity,
        }
    )


@dataclass(frozen=True, eq=False)
class RingLinkCodes:
    """:func:`entity_links`' rows, in its order, as integer codes: what the
    hub table (:func:`ring_link_hubs`) and the ring labels of a batch
    detection read, without the whole book's text table (at a million
    applications 7.2M rows, ~0.8 GB; these ~16 bytes a link).

    Codes tell values apart and nothing more: equal codes, equal values.
    """

    #: the link kinds in the order of their rows (``LINK_KINDS`` order), and each one's first row (then the end)
    kinds: tuple[str, ...]
    starts: np.ndarray
    #: each link's application: its row in ``portfolio.applications`` (int32)
    app: np.ndarray
    #: each link's (kind, identifier) (int64); -1 where the identifier is missing
    key: np.ndarray
    #: each link's ``entity`` (its application's resolved applicant, ``app:<id>`` without one) (int32)
    entity: np.ndarray
    #: the application ids, by row of ``portfolio.applications``
    app_values: pd.Index

    def __len__(self) -> int:
        return len(self.app)

    def kind_of(self, rows: np.ndarray) -> np.ndarray:
        """The position in :attr:`kinds` of each of ``rows``."""
        return np.searchsorted(self.starts, rows, side="right") - 1

    def as_link_codes(self) -> dict[str, np.ndarray]:
        """:func:`_link_codes`' dict of the same links (no value is missing)."""
        none = np.zeros(len(self), dtype=bool)
        return {
            "key": self.key,
            "app": self.app,
            "app_missing": none,
            "app_values": self.app_values,
            "entity": self.entity,
            "entity_missing": none,
        }


def ring_link_codes(portfolio) -> RingLinkCodes | None:
    """The portfolio's :class:`RingLinkCodes`, built once per portfolio and
    entities (kept in ``portfolio.derived``, dropped with them); ``None``
    when they cannot stand for :func:`entity_links` (application ids not
    unique, a link of no application, no link tables): the text table then.

    Example
    -------
    >>> import tempfile
    >>> from ringscope.graph.embedded import EmbeddedStore
    >>> from ringscope.detectors.portfolio import Portfolio
    >>> ring_link_codes(Portfolio(EmbeddedStore(tempfile.mkdtemp()))) is None
    True
    """
    if "ring_link_codes" not in portfolio.derived:
        portfolio.derived["ring_link_codes"] = _build_ring_link_codes(portfolio)
    return portfolio.derived["ring_link_codes"]


def _build_ring_link_codes(portfolio) -> RingLinkCodes | None:
    """:func:`ring_link_codes`, built from the link tables: per kind, the
    applications found by one Arrow hash look-up of the ids, the identifiers
    coded in sorted order (:func:`_sorted_codes`, no hash table of the
    distinct values), the entities coded once per application."""
    import pyarrow.compute as pc

    held = portfolio._links_by_kind
    kinds = [kind for kind in LINK_KINDS if kind in KIND_STRENGTH and kind in held and len(held[kind])]
    app_values = portfolio.application_keys()
    if not kinds or app_values is None:
        return None
    apps = portfolio.applications
    ids = _text_array(apps["application_id"])
    if ids is None:
        return None
    app_parts, key_parts, starts = [], [], [0]
    offset = 0
    for kind in kinds:
        table = held[kind]
        column = _text_array(table["application_id"])
        if column is None:
            return None
        found = pc.index_in(column, value_set=ids)
        del column
        if found.null_count:  # a link of an application the book does not hold (or of none)
            return None
        app_parts.append(found.to_numpy(zero_copy_only=False).astype(np.int32))
        del found
        ident = _sorted_codes(table["identifier"])
        named = table["identifier"].notna().to_numpy()
        top = int(ident.max()) + 1 if len(ident) else 0
        ident += offset
        ident[~named] = -1
        offset += top
        key_parts.append(ident)
        starts.append(starts[-1] + len(table))
    app = np.concatenate(app_parts)
    del app_parts
    key = np.concatenate(key_parts)
    del key_parts
    entity_codes, _ = pd.factorize(application_entities(portfolio, app_values))
    return RingLinkCodes(
        kinds=tuple(kinds),
        starts=np.asarray(starts, dtype=np.int64),
        app=app,
        key=key,
        entity=entity_codes.astype(np.int32)[app],
        app_values=app_values,
    )


def application_entities(portfolio, app_values: pd.Index) -> np.ndarray:
    """Each application's ``entity`` as :func:`entity_links` maps it (its
    resolved applicant, ``app:<id>`` without one), for the unique
    application ids ``app_values``, as an object array."""
    person = portfolio.applications.set_index("application_id")["person"]
    entity = portfolio.entity_of(person.dropna())
    ids = pd.Series(np.asarray(app_values, dtype=object))
    per_app = ids.map(entity)
    return per_app.where(per_app.notna(), "app:" + ids).to_numpy(dtype=object)


def _text_array(column: pd.Series):
    """A text column as one Arrow ``large_string`` array; ``None`` when it is not text."""
    import pyarrow as pa

    try:
        array = pa.array(column, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        return None
    return array.cast(pa.large_string())


def ring_link_hubs(
    portfolio,
    codes: RingLinkCodes,
    *,
    fence_mads: float = 3.0,
    min_hub_people: int = 5,
    cohesion_threshold: float = 0.5,
    labels: pd.Series | None = None,
) -> pd.DataFrame:
    """:func:`identifier_hubs` of ``entity_links(portfolio)``, the same
    table, from its :class:`RingLinkCodes` (the text of the shared
    identifiers only is read, from the link tables)."""
    if not len(codes):
        return _no_hubs()
    held = portfolio._links_by_kind

    def key_text(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        at = codes.kind_of(rows)
        kinds = np.asarray(codes.kinds, dtype=object)[at]
        identifiers = np.empty(len(rows), dtype=object)
        for k, kind in enumerate(codes.kinds):
            mine = at == k
            if mine.any():
                column = held[kind]["identifier"]
                identifiers[mine] = column.iloc[rows[mine] - codes.starts[k]].to_numpy()
        return kinds, identifiers

    return _hubs_of_codes(codes.as_link_codes(), key_text, labels, fence_mads, min_hub_people, cohesion_threshold)


def _glued_labels_of_codes(portfolio, codes: RingLinkCodes, glue: pd.DataFrame) -> tuple[pd.Index, np.ndarray]:
    """:func:`_glued_labels` of ``entity_links(portfolio)`` from its codes:
    the same applications in the same order, the same labels (the edges'
    ends numbered in the same order of first appearance)."""
    gluing = _gluing(glue)
    empty = pd.Index([], dtype=object, name="application_id"), np.zeros(0, dtype=np.int64)
    if len(gluing) == 0 or not len(codes):
        return empty
    held = portfolio._links_by_kind
    glue_kinds = gluing.get_level_values(0).astype(str)
    glue_idents = gluing.get_level_values(1).astype(str)
    mask = np.zeros(len(codes), dtype=bool)
    for k, kind in enumerate(codes.kinds):
        wanted = glue_idents[glue_kinds == kind]
        if len(wanted):
            mask[codes.starts[k] : codes.starts[k + 1]] = in_set(held[kind]["identifier"], pd.Index(wanted))
    rows = np.flatnonzero(mask)
    del mask
    if not len(rows):
        return empty
    app = codes.app[rows]
    # each linked application's applicant entity: its first gluing link's, as drop_duplicates keeps it
    first = np.sort(np.unique(app, return_index=True)[1])
    base = int(codes.key.max()) + 1
    app_codes, app_rows = pd.factorize(np.concatenate([app, app[first]]))
    node_codes, nodes = pd.factorize(
        np.concatenate([codes.key[rows], base + codes.entity[rows[first]].astype(np.int64)])
    )
    n_apps = len(app_rows)
    labels = component_labels(n_apps + len(nodes), app_codes, n_apps + node_codes)[:n_apps]
    ids = pd.Index(np.asarray(codes.app_values, dtype=object)[app_rows], name="application_id", dtype=object)
    return ids, labels


def _linked_entities(portfolio, among: pd.Index | None = None) -> pd.Series:
    """application id → the ``entity`` :func:`entity_links` gives its links,
    for every application with a link (of those ``among`` only, if given),
    without building that table (an engine may hold it elsewhere)."""
    if "ring_links" in portfolio.derived:
        links = portfolio.derived["ring_links"]
        if among is not None:
            links = links[in_set(links["application_id"], among)]
        return links.drop_duplicates("application_id").set_index("application_id")["entity"]
    person = portfolio.applications.set_index("application_id")["person"]
    if among is not None:
        person = person[in_set(pd.Series(person.index), among)]
    entity = portfolio.entity_of(person.dropna())
    codes = portfolio.derived.get("ring_link_codes")
    if codes is not None:  # the applications with a link, from the codes (no text per link)
        with_links = np.flatnonzero(np.bincount(codes.app, minlength=len(codes.app_values)))
        linked = pd.Index(np.asarray(codes.app_values, dtype=object)[with_links], name="application_id")
    else:
        tables = [portfolio.link_table(kind)["application_id"] for kind in KIND_STRENGTH]
        linked = pd.Index(pd.unique(np.concatenate([t.to_numpy(dtype=object) for t in tables])), name="application_id")
    if among is not None:
        linked = linked[in_set(pd.Series(linked), among)]
    found = pd.Series(linked.map(entity).to_numpy(dtype=object), index=linked)
    return found.where(found.notna(), "app:" + pd.Series(linked.astype(str), index=linked))


def _shared_links(links: pd.DataFrame) -> pd.DataFrame:
    """Links whose identifier is used by two or more distinct entities (the
    first link of each application and identifier, in the links' order).

    What a group-by of the text keys with ``nunique`` and ``drop_duplicates``
    gave, on integer codes (at 1M, 5M links: most of the hub decisions' time).

    >>> links = pd.DataFrame({"application_id": ["a", "a", "b", "c", "d"], "kind": "ip",
    ...                       "identifier": ["x", "x", "x", "y", "y"], "entity": ["p", "p", "q", "r", "r"]})
    >>> _shared_links(links).index.tolist()
    [0, 2]
    """
    if links.empty:
        return links
    return links.iloc[_shared_rows(_link_codes(links))]


def _link_codes(links: pd.DataFrame) -> dict[str, np.ndarray]:
    """The links' text columns as integer codes (:func:`text_codes`): ``key``
    (kind and identifier; -1 where either is missing), ``app`` and ``entity``
    with masks of their missing values, and ``app_values`` (code → id)."""
    import pyarrow as pa

    named = (links["kind"].notna() & links["identifier"].notna()).to_numpy()
    kind, identifier = text_codes(links["kind"]), _sorted_codes(links["identifier"])
    key = kind * (int(identifier.max()) + 1) + identifier
    del kind, identifier
    key[~named] = -1
    try:  # text_codes' encoding, its dictionary kept (application code → id)
        array = pa.array(links["application_id"])
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        array = pa.array(links["application_id"].astype(str).to_numpy(dtype=object))
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    encoded = array.dictionary_encode(null_encoding="encode")
    del array
    return {
        "key": key,
        "app": encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64),
        "app_missing": links["application_id"].isna().to_numpy(),
        "app_values": pd.Index(encoded.dictionary.to_pandas(), dtype=object),
        "entity": text_codes(links["entity"]),
        "entity_missing": links["entity"].isna().to_numpy(),
    }


def _sorted_codes(values: pd.Series) -> np.ndarray:
    """Dense int64 codes of text ``values`` numbered in sorted order (equal
    values, equal codes; missing values one code of their own, the last).

    What :func:`text_codes` tells apart, without its hash table: for a
    column of mostly distinct values (the identifiers: 1.39M distinct of
    1.44M links at 200k) Arrow's dictionary encoding peaked at ~140 bytes a
    value (its table of the distinct values, grown by doubling); a sort of
    the row numbers and one sorted copy of the text cost the column's size
    and 16 bytes a value.

    >>> _sorted_codes(pd.Series(["b", "a", None, "b"])).tolist()
    [1, 0, 2, 1]
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        array = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        array = pa.array(values.astype(str).to_numpy(dtype=object))
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    n = len(array)
    codes = np.zeros(n, dtype=np.int64)
    if n == 0 or pa.types.is_null(array.type):
        return codes
    order = pc.sort_indices(array).to_numpy()  # stable, missing values last
    ordered = array.take(order)
    del array
    new = np.ones(n, dtype=bool)
    if n > 1:
        valid = ordered.is_valid().to_numpy(zero_copy_only=False)
        differs = pc.fill_null(pc.not_equal(ordered.slice(1), ordered.slice(0, n - 1)), False)
        # the first missing value (they come last) starts a code of its own; the others repeat it
        new[1:] = differs.to_numpy(zero_copy_only=False) | (valid[1:] != valid[:-1])
        del differs, valid
    del ordered
    codes[order] = np.cumsum(new) - 1
    return codes


def _shared_rows(codes: dict[str, np.ndarray]) -> np.ndarray:
    """The rows of :func:`_shared_links`, from :func:`_link_codes`."""
    key, entity, app = codes["key"], codes["entity"], codes["app"]
    named = key >= 0
    counted = named & ~codes["entity_missing"]  # nunique leaves missing entities out
    # distinct (identifier, entity) pairs by hash (no sort), then people per identifier
    first_pair = ~pd.Series(key[counted] * (int(entity.max()) + 1) + entity[counted].astype(np.int64)).duplicated()
    first_pair = first_pair.to_numpy()
    people = np.bincount(key[counted][first_pair], minlength=int(key.max()) + 1)
    rows = np.flatnonzero(named)
    rows = rows[people[key[rows]] >= 2]
    first = ~pd.Series(app[rows].astype(np.int64) * (int(key.max()) + 1) + key[rows]).duplicated().to_numpy()
    return rows[first]


def _cohesion_codes(app: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """Per identifier ``0 .. n_groups - 1``, the applications (of the shared
    links' rows ``app``, ``group``, one row per application and identifier)
    that share some other identifier J with another application of it:
    :func:`_cohesion`'s numerator, on codes.

    Every ordered pair of two identifiers of one application, (I, J), seen on
    two or more applications makes those applications co-share I. O(sum of
    squared identifiers per application), as the self-merge was, in int64
    arrays instead of a frame of application ids.
    """
    order = np.argsort(app, kind="stable")
    app_sorted, group_sorted = app[order], group[order]
    del order
    n = len(app_sorted)
    if n == 0:
        return np.zeros(n_groups)
    start = np.flatnonzero(np.r_[True, app_sorted[1:] != app_sorted[:-1]])
    size = np.diff(np.r_[start, n])
    own_size = np.repeat(size, size)  # per row: the identifiers of its application
    own_start = np.repeat(start, size)  # per row: its application's first row
    # row p pairs with every other row of its application, own_start[p] .. own_start[p] + own_size[p] - 1
    rows = np.flatnonzero(own_size > 1).astype(np.int32)
    reps = own_size[rows]
    left = np.repeat(rows, reps)
    step = np.arange(len(left), dtype=np.int64) - np.repeat(np.cumsum(reps) - reps, reps)
    right = (own_start[left] + step).astype(np.int32)
    del rows, reps, step, own_start, own_size
    other = right != left
    left, right = left[other], right[other]
    del other
    pair = group_sorted[left].astype(np.int64) * n_groups + group_sorted[right]
    del right
    # (I, J) on two or more applications: the applications of those pairs co-share I
    pair_codes = pd.factorize(pair)[0]
    del pair
    keep = np.bincount(pair_codes)[pair_codes] >= 2
    del pair_codes
    co_rows = np.unique(left[keep])  # rows (an application and an identifier) that co-share
    return np.bincount(group_sorted[co_rows], minlength=n_groups).astype(np.float64)
