"""Mutual-guarantee circles (互保圈 / 担保圈).

Small businesses guarantee each other's loans; when A guarantees B and B
guarantees A (互保), or guarantees run round a longer cycle, one default pulls
the whole circle down and the guarantees were never real security. This
detector builds the directed graph guarantor → borrower over *economic
units* — a company together with its legal representative (an owner who
guarantees their own company's loan is normal, not a circle) — finds its
strongly connected components with scipy, and only inside each component
enumerates the bounded simple cycles with networkx. A circle's members are
the loans of its units and the loans a unit of it guarantees directly: a
loan secured by a circle member stands on the circle's worthless security
(the first link of the 担保链, guarantee chain); loans further down the
chain are evidence, not members.

Incrementally (``ringscope flag``), a circle and everything its evidence
reads (its cycles, exposure, members in default, the chain it guarantees
downstream) lies inside one weakly connected component of that unit graph,
so only the components a batch touches are read again, with the economic
units decided over the whole portfolio (:class:`GuaranteeUnits`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy import sparse

from ringscope.detectors.base import Detector, Evidence, Finding, param
from ringscope.detectors.components import bounded_cycles, component_labels, strong_components
from ringscope.detectors.keys import RowsByValue, is_missing, kept_for
from ringscope.detectors.portfolio import as_portfolio, in_set
from ringscope.graph.model import KNOWN_BAD_LABELS

__all__ = ["GuaranteeCircles", "GuaranteeUnits", "guarantee_sccs", "economic_units", "unit_components"]

BAD_LABELS = KNOWN_BAD_LABELS


def economic_units(roles: pd.DataFrame, persons: pd.Series, companies: pd.Series) -> pd.Series:
    """Map each person and company key to its economic unit.

    A legal representative and the company they represent are one unit;
    everything else is its own unit. Keys are prefixed with their label so a
    person and a company can never collide.

    Parameters
    ----------
    roles : DataFrame
        ``person``, ``company``, ``role`` (registry roles).
    persons, companies : Series
        The person and company keys to map.

    Example
    -------
    >>> roles = pd.DataFrame({"person": ["p1"], "company": ["c1"], "role": ["LEGAL_REP_OF"]})
    >>> units = economic_units(roles, pd.Series(["p1", "p2"]), pd.Series(["c1"]))
    >>> units["Person:p1"] == units["Company:c1"], units["Person:p2"]
    (True, 'Person:p2')

    Notes
    -----
    Connected components over the legal-representative edges: O(n + m).
    """
    keys = pd.Index(pd.concat(["Person:" + persons.astype(str), "Company:" + companies.astype(str)]).unique())
    reps = roles[roles["role"] == "LEGAL_REP_OF"]
    src = keys.get_indexer("Person:" + reps["person"].astype(str))
    dst = keys.get_indexer("Company:" + reps["company"].astype(str))
    ok = (src >= 0) & (dst >= 0)
    n = len(keys)
    labels = component_labels(n, src[ok], dst[ok])
    # name each unit after its company if it has one, else its only member
    frame = pd.DataFrame({"key": keys, "unit": labels})
    frame["is_company"] = frame["key"].str.startswith("Company:")
    head = frame.sort_values(["unit", "is_company", "key"], ascending=[True, False, True]).drop_duplicates("unit")
    names = head.set_index("unit")["key"]
    return pd.Series(names.reindex(labels).to_numpy(), index=keys)


#: strongly connected components of the guarantee graph (size >= 2)
guarantee_sccs = strong_components


def unit_components(edges: pd.DataFrame) -> pd.Series:
    """Weakly connected components of the unit graph ``src`` → ``dst``.

    Parameters
    ----------
    edges : DataFrame
        ``src``, ``dst`` economic units (one row per guarantee).

    Returns
    -------
    Series unit → component number, for every unit on an edge.

    Example
    -------
    >>> e = pd.DataFrame({"src": ["a", "b", "x"], "dst": ["b", "c", "y"]})
    >>> comps = unit_components(e)
    >>> bool(comps["a"] == comps["c"]), bool(comps["a"] == comps["x"])
    (True, False)

    Notes
    -----
    scipy's connected components over the factorised units: O(n + m).
    """
    if edges.empty:
        return pd.Series(dtype="int64")
    codes, nodes = pd.factorize(
        np.concatenate([edges["src"].to_numpy(dtype=object), edges["dst"].to_numpy(dtype=object)])
    )
    m = len(edges)
    labels = component_labels(len(nodes), codes[:m], codes[m:])
    return pd.Series(labels, index=pd.Index(nodes, dtype=object), name="component")


@dataclass(frozen=True)
class GuaranteeUnits:
    """What guarantee circles read from the whole portfolio.

    ``units`` maps each resolved guarantee party (``Person:<key>``,
    ``Company:<key>``) to its economic unit — a company merged with its legal
    representative, decided over every registry role, so that a part of the
    portfolio maps its parties exactly as the whole does. ``components`` maps
    each unit on a guarantee to its weakly connected component of the unit
    graph: a circle, its members and its downstream chain never leave one.
    """

    units: pd.Series
    components: pd.Series


@dataclass(frozen=True, kw_only=True)
class GuaranteeCircles(Detector):
    """Guarantee circles over resolved borrowers, with cycles and exposure.

    Parameters
    ----------
    max_cycle_length : int
        Longest simple cycle listed as evidence (cycles are enumerated only
        inside one strongly connected component).
    max_cycles : int
        Cycles listed per circle at most (a dense component has very many).
    """

    name: ClassVar[str] = "guarantee_circles"
    max_cycle_length: int = param(6, ge=2)
    max_cycles: int = param(20, ge=1)

    def run(self, source, statistics: GuaranteeUnits | None = None) -> list[Finding]:
        """Circles over a store or portfolio; ``statistics`` (from
        :meth:`statistics` over a larger portfolio) give the economic units
        instead of those decided from ``source``'s own roles."""
        portfolio = as_portfolio(source)
        g, units = self.unit_edges(portfolio, None if statistics is None else statistics.units)
        if g.empty:
            return []
        sccs = guarantee_sccs(g[["src", "dst"]])
        if sccs.empty:
            return []
        # applications whose borrower sits in a circle, by unit (resolved like the edges)
        unit = self._borrower_units(portfolio, portfolio.applications, units)
        unit = unit[unit.isin(sccs.index)]
        apps = portfolio.applications.set_index("application_id")
        apps_by_unit = {u: list(ids) for u, ids in unit.groupby(unit).groups.items()}
        inside = g[g["src"].isin(sccs.index) & g["dst"].isin(sccs.index)]
        inside = inside[inside["src"].map(sccs) == inside["dst"].map(sccs)]
        # only the few applications in circles, two columns: per-circle lookups stay cheap
        wanted = set(inside["application_id"].dropna().astype(str)) | {a for ids in apps_by_unit.values() for a in ids}
        small = apps.loc[apps.index.intersection(list(wanted)), ["amount", "label"]]
        small = pd.DataFrame(
            {
                "amount": small["amount"].to_numpy(dtype=float, na_value=np.nan),
                "label": small["label"].to_numpy(dtype=object),
            },
            index=small.index.astype(object),
        )
        downstream = _downstream(g[["src", "dst"]], sccs)
        secured = _secured_loans(g, sccs)
        findings = []
        for comp, edges in inside.groupby(inside["src"].map(sccs)):
            findings.append(self._finding(edges, small, apps_by_unit, downstream.get(comp, []), secured.get(comp, [])))
        findings.sort(key=lambda f: -f.score)
        return findings

    def statistics(self, portfolio) -> GuaranteeUnits:
        """The economic units of every guarantee party and the weakly
        connected component of each unit, over the whole portfolio."""
        g, units = self.unit_edges(as_portfolio(portfolio))
        return GuaranteeUnits(units=units, components=unit_components(g[["src", "dst"]]))

    def scope(self, portfolio, app_ids: Sequence[str], statistics: GuaranteeUnits | None = None):
        """The guarantee components ``app_ids`` touch — through their own
        guarantee rows or through their borrower's unit — as a sub-portfolio:
        all the components' guarantees (in the portfolio's order) and every
        application listed on them or borrowed by one of their units.

        The scope is exact: a circle is a strongly connected part of one
        component, its members are the applications on its guarantees and
        those its units borrow, and the chain it guarantees downstream stays
        inside the component.
        """
        portfolio = as_portfolio(portfolio)
        stats = self.statistics(portfolio) if statistics is None else statistics
        g, _ = self._reach(portfolio, stats)
        targets = pd.Index(list(map(str, app_ids)), dtype=object)
        if g.empty or stats.components.empty:
            return portfolio.subset([])
        # row maps over the whole book's edges and units, built once per portfolio and statistics:
        # a scope costs look-ups, not a pass over every guarantee, unit and application
        maps = _scope_maps(portfolio, stats, g)
        comp = maps["comp"]
        touched = set(comp.iloc[maps["g_by_app"].rows(targets)].dropna().tolist())
        apps = portfolio.applications
        mine = apps.iloc[portfolio.rows_where("applications", "application_id", targets)]
        touched |= set(self._borrower_units(portfolio, mine, stats.units).map(stats.components).dropna().tolist())
        rows = g.iloc[maps["g_by_comp"].rows(touched)]
        if rows.empty:
            return portfolio.subset([])
        units = pd.Index(stats.components.index[maps["units_by_comp"].rows(touched)])
        borrowers = self._unit_borrowers(portfolio, apps, stats.units, units, maps)
        ids = set(rows["application_id"].dropna().astype(str)) | set(borrowers.astype(str))
        return portfolio.subset(sorted(ids), guarantees=portfolio.guarantees.loc[rows.index])

    def around(self, portfolio, app_ids: Sequence[str], statistics: GuaranteeUnits | None = None):
        """``[]`` when none of ``app_ids`` is listed on a guarantee or borrows
        for a guaranteed unit (no circle can hold it), from the applications
        within reach of a guarantee computed once per portfolio."""
        if statistics is None:
            return None
        _, reach = self._reach(as_portfolio(portfolio), statistics)
        return None if reach.intersection(map(str, app_ids)) else []

    def _reach(self, portfolio, stats: GuaranteeUnits) -> tuple[pd.DataFrame, set[str]]:
        """The portfolio's unit edges (:meth:`unit_edges` under ``stats``) and
        the applications a guarantee component reaches — listed on one of its
        rows or borrowing for one of its units — once per portfolio and
        entities (``portfolio.derived``), not per scope."""
        held = portfolio.derived.get("guarantee_reach")
        if held is not None and held[0] is stats:
            return held[1], held[2]
        g, _ = self.unit_edges(portfolio, stats.units)
        reach: set[str] = set()
        if not g.empty and not stats.components.empty:
            listed = g["src"].map(stats.components).notna().to_numpy(dtype=bool)
            reach = set(g.loc[listed, "application_id"].dropna().astype(str))
            borrowers = self._borrower_units(portfolio, portfolio.applications, stats.units)
            reach |= set(borrowers.map(stats.components).dropna().index.astype(str))
        portfolio.derived["guarantee_reach"] = (stats, g, reach)
        return g, reach

    @staticmethod
    def _borrower_units(portfolio, apps: pd.DataFrame, units: pd.Series) -> pd.Series:
        """application_id → economic unit of its resolved borrower (those with one)."""
        if len(apps) <= _FEW_APPLICATIONS:
            few = _borrower_units_few(portfolio, apps, units)
            if few is not None:
                return few
        apps = apps.loc[apps["borrower_key"].notna(), ["application_id", "borrower_label", "borrower_key"]]
        resolved = pd.Series(index=pd.Index(apps["application_id"].astype(str), dtype=object), dtype=object)
        for label in ("Person", "Company"):
            mask = (apps["borrower_label"] == label).to_numpy(dtype=bool)
            keys = apps.loc[mask, "borrower_key"].astype(str)
            resolved[mask] = (label + ":" + portfolio.entity_of(keys, label).astype(str)).to_numpy()
        return resolved.map(units).dropna()

    @classmethod
    def _unit_borrowers(
        cls, portfolio, apps: pd.DataFrame, units: pd.Series, wanted: pd.Index, maps: dict | None = None
    ) -> pd.Index:
        """Applications whose resolved borrower belongs to one of the ``wanted``
        units: candidates picked by raw key first (one hash look-up per
        application), then resolved exactly. ``maps`` (:func:`_scope_maps`
        of ``portfolio``, whose applications ``apps`` then are) find the
        rows by look-ups instead of passes over the units, entity maps and
        applications."""
        if maps is None:
            members = units[units.isin(wanted)].index.astype(str)
        else:
            members = units.index[maps["units_by_unit"].rows(wanted)].astype(str)
        raw = set(members.str.split(":", n=1).str[1])
        for label in ("Person", "Company"):  # raw keys that resolve to a member entity
            mapping = _entity_map(portfolio, label)
            if mapping is not None and len(mapping):
                entities = {m.split(":", 1)[1] for m in members if m.startswith(label + ":")}
                if maps is None:
                    raw |= set(mapping.index[in_set(mapping, entities)].astype(str))
                else:
                    by_entity = kept_for(mapping, "keys_by_entity", lambda m=mapping: RowsByValue(m))
                    raw |= set(mapping.index[by_entity.rows(entities)].astype(str))
        if maps is None:
            candidates = apps[in_set(apps["borrower_key"], raw)]
        else:
            candidates = apps.iloc[portfolio.rows_where("applications", "borrower_key", raw)]
        unit = cls._borrower_units(portfolio, candidates, units)
        return pd.Index(unit.index[unit.isin(wanted)])

    @staticmethod
    def unit_edges(portfolio, units: pd.Series | None = None) -> tuple[pd.DataFrame, pd.Series]:
        """The portfolio's guarantee rows with ``src`` and ``dst`` economic
        units (over resolved entities; rows inside one unit are dropped), and
        the entity → unit map. ``units`` decided elsewhere (the whole
        portfolio's) are used as given; a party they do not know is its own
        unit."""
        g = portfolio.guarantees
        if g.empty:
            return (
                g.assign(src=pd.Series(dtype=object), dst=pd.Series(dtype=object)),
                pd.Series(dtype=object) if units is None else units,
            )
        g = g.copy()
        # resolved entities first, then economic units
        maps = _unique_entity_maps(portfolio) if len(g) <= _FEW_APPLICATIONS else None
        for side in ("guarantor", "borrower"):
            if maps is not None:  # a few rows: one hash look-up per party, no masks and assignments
                g[f"{side}_entity"] = [
                    f"{label}:{_entity_text(maps, label, key)}"
                    for label, key in zip(g[f"{side}_label"].tolist(), g[side].astype(str).tolist(), strict=True)
                ]
                continue
            resolved = pd.Series(index=g.index, dtype=object)
            for label in ("Person", "Company"):
                mask = g[f"{side}_label"] == label
                resolved[mask] = portfolio.entity_of(g.loc[mask, side].astype(str), label).to_numpy()
            g[f"{side}_entity"] = g[f"{side}_label"] + ":" + resolved.astype(str)
        entity_keys = pd.concat([g["guarantor_entity"], g["borrower_entity"]]).unique()
        if units is None:
            roles = portfolio.roles.copy()
            roles["person"] = portfolio.entity_of(roles["person"].astype(str), "Person")
            roles["company"] = portfolio.entity_of(roles["company"].astype(str), "Company")
            persons = pd.Series([k[7:] for k in entity_keys if k.startswith("Person:")], dtype=object)
            companies = pd.Series([k[8:] for k in entity_keys if k.startswith("Company:")], dtype=object)
            units = economic_units(roles, persons, companies)
        else:
            unknown = pd.Index(entity_keys).difference(units.index)
            if len(unknown):
                units = pd.concat([units, pd.Series(unknown.to_numpy(dtype=object), index=unknown)])
        g["src"] = g["guarantor_entity"].map(units)
        g["dst"] = g["borrower_entity"].map(units)
        return g[g["src"] != g["dst"]], units  # an owner guaranteeing their own company

    def _finding(
        self,
        edges: pd.DataFrame,
        apps: pd.DataFrame,
        apps_by_unit: dict[str, list[str]],
        downstream: list[str],
        secured: list[str],
    ) -> Finding:
        nodes = sorted(set(edges["src"]) | set(edges["dst"]))
        cycles = bounded_cycles(edges["src"], edges["dst"], self.max_cycle_length, self.max_cycles)
        unit_apps = {str(a) for n in nodes for a in apps_by_unit.get(n, ())}
        in_circle = sorted(set(edges["application_id"].dropna().astype(str)) | unit_apps)
        # the loans a member guarantees directly stand on the circle's security: they are
        # members too (the first link of the 担保链); exposure and defaults stay the circle's own
        chained = sorted(set(secured) - set(in_circle))
        members = sorted(set(in_circle) | set(chained))
        member_apps = apps.reindex(in_circle)
        exposure_loans = float(member_apps["amount"].sum(skipna=True))
        exposure_guarantees = float(edges["amount"].sum(skipna=True))
        bad = int(member_apps["label"].isin(BAD_LABELS).sum())
        mutual = sum(1 for c in cycles if len(c) == 2)

        evidence = []
        c_cycle = 0.45 if mutual else 0.35
        shortest = cycles[0] if cycles else nodes
        evidence.append(
            Evidence(
                "guarantee_cycle",
                c_cycle,
                ("互保 mutual guarantee: " if mutual else f"guarantee cycle of {len(shortest)}: ")
                + " → ".join(_short(n) for n in [*shortest, shortest[0]]),
                tuple(" → ".join(_short(n) for n in [*c, c[0]]) for c in cycles[: self.max_cycles]),
            )
        )
        c_size = min(0.2, 0.05 * (len(nodes) - 1))
        evidence.append(
            Evidence(
                "circle_size",
                c_size,
                f"{len(nodes)} borrowers and {len(edges)} guarantees in one strongly connected circle",
                (len(nodes), len(edges)),
            )
        )
        c_exposure = min(0.15, 0.03 * np.log10(max(exposure_loans, 1.0)) / 2)
        evidence.append(
            Evidence(
                "exposure",
                c_exposure,
                f"loans in the circle total ¥{exposure_loans:,.0f}; guarantees ¥{exposure_guarantees:,.0f}",
                (round(exposure_loans), round(exposure_guarantees)),
            )
        )
        c_bad = min(0.25, 0.1 * bad)
        if bad:
            evidence.append(
                Evidence(
                    "members_in_default",
                    c_bad,
                    f"{bad} applications in the circle are labelled fraud or default",
                    (bad,),
                )
            )
        c_chain = min(0.05, 0.01 * len(downstream))
        if downstream:
            evidence.append(
                Evidence(
                    "guarantee_chain",
                    c_chain,
                    f"担保链: the circle's guarantees reach {len(downstream)} more borrowers outside it "
                    "(a default here can spread along the chain)"
                    + (
                        f"; {len(chained)} loans guaranteed directly by a member are part of the circle"
                        if chained
                        else ""
                    ),
                    tuple(_short(n) for n in downstream[:20]),
                )
            )
        entities = tuple((n.split(":", 1)[0], n.split(":", 1)[1]) for n in nodes)
        return Finding.from_evidence(
            self.name,
            "mutual_guarantee" if mutual else "guarantee_circle",
            tuple(members),
            evidence,
            parameters=self.params(),
            summary=(
                f"{'互保 ' if mutual else ''}guarantee circle of {len(nodes)} borrowers, "
                f"exposure ¥{exposure_loans:,.0f}" + (f", {bad} in default" if bad else "")
            ),
            entities=entities,
        )


class _RowsByEqual:
    """The positions of a column's rows by value (compared as values, as
    ``isin`` compares them: a component 3 finds a row holding 3.0), built
    once; :meth:`rows` of a few values costs their rows."""

    def __init__(self, values) -> None:
        codes, uniques = pd.factorize(pd.Series(values, copy=False), use_na_sentinel=True)
        self.index = pd.Index(uniques)
        order = np.argsort(codes, kind="stable")
        self.order = order[codes[order] >= 0]
        self.starts = np.searchsorted(codes[self.order], np.arange(len(uniques) + 1))

    def rows(self, wanted) -> np.ndarray:
        """Sorted positions of the rows whose value is one of ``wanted``."""
        wanted = list(wanted)
        if not wanted or not len(self.index):
            return np.zeros(0, dtype=np.int64)
        at = self.index.get_indexer(pd.Index(wanted, dtype=object) if self.index.dtype == object else wanted)
        at = np.unique(at[at >= 0])
        if not len(at):
            return np.zeros(0, dtype=np.int64)
        return np.sort(np.concatenate([self.order[self.starts[k] : self.starts[k + 1]] for k in at.tolist()]))


def _scope_maps(portfolio, stats: GuaranteeUnits, g: pd.DataFrame) -> dict:
    """Per portfolio, statistics and unit edges ``g``: each edge's component
    (``comp``), and the rows of ``g`` by application (as text, as ``in_set``
    picks them) and by component, the units by component and by unit."""
    held = portfolio.derived.get("guarantee_scope")
    if held is not None and held[0] is stats and held[1] is g:
        return held[2]
    comp = g["src"].map(stats.components)
    maps = {
        "comp": comp,
        "g_by_app": RowsByValue(g["application_id"]),
        "g_by_comp": _RowsByEqual(comp),
        "units_by_comp": _RowsByEqual(stats.components),
        "units_by_unit": _RowsByEqual(stats.units),
    }
    portfolio.derived["guarantee_scope"] = (stats, g, maps)
    return maps


#: up to this many applications, their borrowers' units are looked up in plain Python
#: (the pandas path's selections and assignments cost ~30 ms a call even for one row)
_FEW_APPLICATIONS = 64


def _borrower_units_few(portfolio, apps: pd.DataFrame, units: pd.Series) -> pd.Series | None:
    """``GuaranteeCircles._borrower_units`` for a few applications: each key
    resolved as ``Portfolio.entity_of`` resolves it (its entity when the map
    holds one, else itself) and its unit looked up in ``units``, one hash
    look-up each in the maps' own indexes. ``None`` when a map's index is not
    unique (the pandas path then says so)."""
    maps = _unique_entity_maps(portfolio)
    if maps is None or not units.index.is_unique:
        return None
    found_ids: list[str] = []
    found_units: list = []
    for app, label, key in zip(
        apps["application_id"].tolist(), apps["borrower_label"].tolist(), apps["borrower_key"].tolist(), strict=True
    ):
        if is_missing(key) or label not in maps:  # no borrower, or a label the pandas path leaves unresolved
            continue
        key = str(key)
        entity = _value_of(maps[label], key)
        unit = _value_of(units, f"{label}:{key if entity is None else str(entity)}")
        if unit is not None:
            found_ids.append(str(app))
            found_units.append(unit)
    index = pd.Index(found_ids, dtype=object, name=apps["application_id"].name)
    return pd.Series(found_units, index=index, dtype=units.dtype)


def _unique_entity_maps(portfolio) -> dict[str, pd.Series | None] | None:
    """The Person and Company entity maps, ``None`` when one's index is not unique."""
    maps = {label: _entity_map(portfolio, label) for label in ("Person", "Company")}
    return None if any(m is not None and not m.index.is_unique for m in maps.values()) else maps


def _entity_text(maps: dict[str, pd.Series | None], label, key: str) -> str:
    """``Portfolio.entity_of`` of one key, as text (``"nan"`` for a label
    without a map, as the pandas path's unset entry reads)."""
    if label not in maps:
        return "nan"
    entity = _value_of(maps[label], key)
    return key if entity is None else str(entity)


def _value_of(mapping: pd.Series | None, key: str):
    """``mapping[key]`` by its index's hash table (``None`` when absent or missing)."""
    if mapping is None or key not in mapping.index:
        return None
    value = mapping.iat[mapping.index.get_loc(key)]
    return None if is_missing(value) else value


def _entity_map(portfolio, label: str) -> pd.Series | None:
    """The record key → entity map :meth:`Portfolio.entity_of` uses for ``label``."""
    mapping = portfolio.person_entity if label == "Person" else portfolio.company_entity
    return portfolio._stored_entities(label) if mapping is None else mapping


def _downstream(edges: pd.DataFrame, sccs: pd.Series) -> dict:
    """For each strongly connected component: the borrowers outside it that its
    members guarantee, directly or along a chain (breadth-first, scipy)."""
    from scipy.sparse.csgraph import breadth_first_order

    if edges.empty or sccs.empty:
        return {}
    nodes, idx = np.unique(
        np.concatenate([edges["src"].to_numpy(str), edges["dst"].to_numpy(str)]), return_inverse=True
    )
    m = len(edges)
    graph = sparse.csr_matrix((np.ones(m), (idx[:m], idx[m:])), shape=(len(nodes), len(nodes)))
    position = pd.Index(nodes)
    out = {}
    for comp, members in sccs.groupby(sccs).groups.items():
        start = position.get_loc(members[0])
        reached = breadth_first_order(graph, start, directed=True, return_predecessors=False)
        inside = set(members)
        out[comp] = [nodes[i] for i in reached if nodes[i] not in inside]
    return out


def _secured_loans(g: pd.DataFrame, sccs: pd.Series) -> dict:
    """For each strongly connected component: the applications on guarantee
    rows whose guarantor is one of its units and whose borrower is outside it
    (loans the circle secures directly)."""
    if g.empty or sccs.empty:
        return {}
    src = g["src"].map(sccs)
    out = g[src.notna().to_numpy() & (src.to_numpy() != g["dst"].map(sccs).to_numpy())]
    out = out[out["application_id"].notna()]
    return {
        comp: sorted(set(ids.astype(str)))
        for comp, ids in out["application_id"].groupby(out["src"].map(sccs).to_numpy())
    }


def _short(unit: str) -> str:
    return unit.split(":", 1)[1] if ":" in unit else unit
