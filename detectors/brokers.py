"""Broker rings: an agent packaging fake applications (中介包装).

A broker who packages applications (包装进件) works from a template: in a
few days he submits a batch of applicants whose declared revenue or income
is near-identical (the figure that clears the scorecard), often with the
same emergency contacts (his own or his runners' phones) and sometimes the
same device or account. An honest busy agent has many applications too, but
spread over time, with the diverse figures of real customers and nobody's
contacts in common.

So each agent is compared with itself and with the population of agents:

* candidates come from (a) *template cells* — an agent's applications in
  one time window whose declared figures fall in one narrow band far more
  often than the agent's other applications (shrunk towards the whole
  portfolio's figure distribution, so small agents are judged by the
  population) make likely (binomial tail, Bonferroni over all cells), and
  (b) applications of one agent linked by a shared emergency contact,
  phone, device, account or e-mail;
* overlapping candidates of one agent are merged, and every group is scored
  on its burstiness (Poisson tail of the agent's applications in the
  group's time span given the agent's rate elsewhere), its figure
  duplication (binomial tail of members within the band given how often the
  agent's other applications and the population fall in it), its sharing
  (binomial tail against the portfolio's per-kind rate of within-agent
  sharing) and duplicated amounts. Tails become contributions through one
  ramp over -log10(p), so no yuan or day threshold is tuned to a data set.

Incrementally (``ringscope flag``), what reaches beyond a group's own time
windows — each agent's totals, figure bands, active span and figures, the
population's bands, rates and amounts, the number of cells tested — comes
from :meth:`BrokerRings.statistics` over the whole book, and the detector
runs on the batch's groups (found over its agents' histories) and the
applications of their time windows only (:meth:`BrokerRings.scope`).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy.stats import binom, poisson

from ringscope.detectors.base import Detector, Evidence, Finding, param
from ringscope.detectors.components import component_labels
from ringscope.detectors.keys import RowsByValue, text_list
from ringscope.detectors.portfolio import as_portfolio, in_set
from ringscope.detectors.template_cells import (
    GRID_OFFSETS,
    CellReference,
    cell_reference,
    grid_bins,
    group_codes,
    positions_in,
    template_cells,
)

__all__ = ["BrokerRings", "BrokerStatistics", "CellReference", "cell_reference", "template_cells"]

#: identifiers whose sharing links two applications of one agent into a candidate
_STRONG_KINDS = ("contact_phone", "phone", "device", "account", "email")
#: identifiers counted as sharing evidence (IPs and addresses are weaker: NAT, families, towers)
_SHARE_KINDS = _STRONG_KINDS + ("ip", "address")
_LABEL_OF = {
    "device": "Device",
    "phone": "Phone",
    "account": "BankAccount",
    "address": "Address",
    "email": "Email",
    "contact_phone": "Phone",
    "ip": "IP",
}
_WEIGHTS = {"burst": 0.3, "figure_duplication": 0.35, "shared_identifiers": 0.25, "amount_duplication": 0.1}
_DAY = 86400.0
#: the application columns the book's groups are found from
_BOOK_COLUMNS = (
    "application_id",
    "agent",
    "person",
    "applied_at",
    "declared_monthly_revenue",
    "declared_monthly_income",
    "amount",
)
#: -log10(p) where a signal starts to count and where it counts fully
_RAMP = (2.0, 12.0)


def _ramp_p(p: float) -> float:
    strength = -np.log10(max(float(p), 1e-300))
    return float(np.clip((strength - _RAMP[0]) / (_RAMP[1] - _RAMP[0]), 0.0, 1.0))


@dataclass(frozen=True, eq=False)
class BrokerStatistics:
    """What :class:`BrokerRings` judges an agent's group by, over the whole portfolio.

    ``applications`` with an agent; ``span_days`` of their history and the
    ``median_rate`` of agents (applications per day); ``kind_rate``: per
    identifier kind, the share of agents' applications sharing one with
    another applicant of the same agent; ``per_agent`` (agent → ``size``,
    first and last day ``min``/``max``) and ``agent_figures`` (agent → its
    sorted log declared figures); ``population_figures`` (all of them,
    sorted); ``amount_share`` (amount → share of applications asking it);
    and ``cells``, the template test's :class:`CellReference`.
    """

    applications: int
    span_days: float
    median_rate: float
    kind_rate: dict[str, float]
    per_agent: pd.DataFrame = field(repr=False)
    agent_figures: dict[str, np.ndarray] = field(repr=False)
    population_figures: np.ndarray = field(repr=False)
    amount_share: pd.Series = field(repr=False)
    cells: CellReference = field(repr=False)


@dataclass(frozen=True, kw_only=True)
class BrokerRings(Detector):
    """Agents whose applications come in templated, bursty, contact-sharing batches.

    Parameters
    ----------
    window_days : float
        Width of the time cells in which templated batches are looked for.
    figure_tolerance : float
        Relative width of a "near-identical" declared figure band (0.05 = 5 %).
    min_apps : int
        Fewest applications in a batch.
    alpha : float
        Family-wise false-alarm rate of the template-cell test.
    prior_weight : float
        Pseudo-count of the portfolio in each agent's figure distribution;
        larger judges small agents more by the population.
    min_score : float
        Lowest score reported.
    max_listed : int
        Applications and identifiers listed by name in evidence at most.

    Example
    -------
    >>> import tempfile
    >>> from ringscope.graph.embedded import EmbeddedStore
    >>> BrokerRings().run(EmbeddedStore(tempfile.mkdtemp()))
    []

    Notes
    -----
    Columnar: four grids of groupbys, one join of identifier links on the
    agents' applications and one sparse connected-components pass; then
    per-group scoring of the few candidate groups. O(n log n + l) for n
    applications and l identifier links.
    """

    name: ClassVar[str] = "broker_rings"
    window_days: float = param(7.0, kind=numbers.Real, gt=0, le=90)
    figure_tolerance: float = param(0.05, kind=numbers.Real, gt=0, lt=1)
    min_apps: int = param(4, ge=3)
    alpha: float = param(1e-3, gt=0, lt=1)
    prior_weight: float = param(20.0, kind=numbers.Real, gt=0)
    min_score: float = param(0.3, kind=numbers.Real, gt=0, le=1)
    max_listed: int = param(20, ge=1)

    def statistics(self, portfolio) -> BrokerStatistics:
        """The agents' population figures and each agent's own totals over
        the whole portfolio (O(n log n + l): the groupbys of the template
        test and one join of identifier links).

        Example
        -------
        >>> import tempfile
        >>> from ringscope.graph.embedded import EmbeddedStore
        >>> BrokerRings().statistics(EmbeddedStore(tempfile.mkdtemp())).applications
        0
        """
        portfolio = as_portfolio(portfolio)
        a = self._agent_apps(portfolio.applications)
        return self._statistics(a, self._links(portfolio, a))

    def scope(self, portfolio, app_ids: Sequence[str], statistics: BrokerStatistics | None = None):
        """The applications that decide the broker groups holding ``app_ids``.

        A group is a connected set of one agent's applications, joined by
        significant template cells and by strong identifiers two of the
        agent's applicants share. The scope holds every such group (of any
        size) around ``app_ids`` — found over the whole history of their
        agents, judged by ``statistics`` — and every application in those
        groups' time windows (both grids), so each of their cells counts
        exactly what it counts in the whole portfolio. Identifier candidates
        of a group hold all their applications (they are edges of the
        group). What else the score reads per agent (its size, active span,
        declared figures) and over the population comes from ``statistics``.

        Applications in scope only for a window's sake may form groups from
        partial windows; those hold none of ``app_ids`` (an edge from a
        group's application is exact, so it leads inside the group) and are
        left to the caller to drop.

        Example
        -------
        >>> import tempfile
        >>> from ringscope.graph.embedded import EmbeddedStore
        >>> from ringscope.detectors.portfolio import Portfolio
        >>> BrokerRings().scope(Portfolio(EmbeddedStore(tempfile.mkdtemp())), ["A1"]).applications.shape[0]
        0

        Notes
        -----
        ``isin`` over the portfolio, then the template test and one
        connected-components pass over the applications of the batch's
        agents: O(m log m + l) for their m applications and the l links.
        """
        portfolio = as_portfolio(portfolio)
        apps = portfolio.applications
        targets = portfolio.rows_where("applications", "application_id", set(map(str, app_ids)))
        keep = set(text_list(apps["application_id"].iloc[targets]))
        agents = set(text_list(apps["agent"].iloc[targets]))
        if not agents:
            return portfolio.subset(sorted(keep))
        if statistics is None:
            statistics = self.statistics(portfolio)
        book = self._agent_apps(apps.iloc[portfolio.rows_where("applications", "agent", agents)])
        # the groups' edges: significant cells and strong identifiers (the weak kinds are evidence only)
        pairs = self._candidate_pairs(book, self._links(portfolio, book, _STRONG_KINDS), statistics.cells)
        if len(pairs):
            groups = self._components(pairs)
            hit = set(groups.loc[in_set(groups["app"], keep), "group"])
            keep |= set(text_list(groups.loc[groups["group"].isin(hit), "app"]))
        timed = book[book["days"].notna()]
        core = in_set(timed["application_id"], keep)
        padding = set()
        for dt in GRID_OFFSETS:
            window = pd.MultiIndex.from_arrays(
                [timed["agent"].to_numpy(), grid_bins(timed["days"].to_numpy(), float(self.window_days), dt)]
            )
            padding |= set(text_list(timed["application_id"][window.isin(window[core])]))
        return portfolio.subset(sorted(keep | padding))

    def around(self, portfolio, app_ids: Sequence[str], statistics: BrokerStatistics | None = None):
        """``[]`` when none of ``app_ids`` names an agent (a broker group is
        one agent's applications), from the agent column alone; else, given
        ``statistics``, the findings of the groups holding them
        (:meth:`_groups_around`)."""
        apps = as_portfolio(portfolio).applications
        held = as_portfolio(portfolio).derived.get("broker_agents")
        if held is None:
            with_agent = apps["agent"].notna().to_numpy(dtype=bool)
            held = RowsByValue(apps["application_id"].to_numpy(dtype=object)[with_agent])
            as_portfolio(portfolio).derived["broker_agents"] = held
        if not len(held.rows(map(str, app_ids))):
            return []
        if statistics is None:
            return None
        return self._groups_around(as_portfolio(portfolio), app_ids, statistics)

    def _groups_around(self, portfolio, app_ids: Sequence[str], statistics: BrokerStatistics) -> list[Finding] | None:
        """The findings of the book's groups holding ``app_ids``, from the
        groups of the whole book computed once (:meth:`_book_groups`) and
        each group scored once: what :meth:`scope` and :meth:`run` find
        around them, without cutting a scope out of their agents' books.
        ``None`` (scope and run as usual) when the book's ids are not unique
        or a group's agent is not in ``statistics``."""
        if statistics.applications < self.min_apps:
            return []
        book = self._book_groups(portfolio, statistics)
        if book is None:
            return None
        group_of = book[0]
        rows = portfolio.rows_where("applications", "application_id", set(map(str, app_ids)))
        groups = np.unique(group_of[rows])
        findings = []
        for gid in groups[groups >= 0].tolist():
            if not self._score_group(portfolio, book, gid, statistics):
                return None  # an agent the statistics lack: the general path describes it from its rows
            if book[3][gid] is not None:
                findings.append(book[3][gid])
        findings.sort(key=lambda f: (-f.score, f.members))
        return findings

    def warm(self, portfolio, statistics: BrokerStatistics) -> None:
        """Find the book's groups and score every one of them now (a
        long-lived process scoring one application at a time), instead of
        each at the first application that joins it."""
        portfolio = as_portfolio(portfolio)
        book = self._book_groups(portfolio, statistics) if statistics.applications >= self.min_apps else None
        if book is not None:
            for gid in range(len(book[2]) - 1):
                self._score_group(portfolio, book, gid, statistics)

    def _score_group(self, portfolio, book, gid: int, statistics: BrokerStatistics) -> bool:
        """Score group ``gid`` of ``book`` once (its finding, or ``None`` below
        ``min_score``, kept in the book); ``False`` when the statistics lack its agent."""
        group_of, order, starts, scored = book
        if gid in scored:
            return True
        members = self._agent_apps(portfolio.applications.iloc[order[starts[gid] : starts[gid + 1]]])
        if members["agent"].iloc[0] not in statistics.per_agent.index:
            return False
        ctx = _references(statistics)
        # the group's own links: within one agent's group, the same as the agent's links cut to it
        finding = self._score(members, self._links(portfolio, members), ctx)
        scored[gid] = finding if finding is not None and finding.score >= self.min_score else None
        return True

    def _book_groups(self, portfolio, statistics: BrokerStatistics):
        """The candidate groups (of ``min_apps`` or more) of the whole book,
        once per portfolio and statistics (``portfolio.derived``): each
        application row's group (-1: none), the rows grouped by group, each
        group's start, and the findings scored so far by group. A group is
        one agent's, found over the agent's whole history exactly as
        :meth:`scope` finds it (every agent at once). ``None`` when the
        application ids are not unique."""
        held = portfolio.derived.get("broker_groups")
        if held is not None and held[0] is statistics and held[1] == self:
            return held[2]
        keys = portfolio.application_keys()
        if keys is None:
            return None
        apps = portfolio.applications
        columns = [c for c in _BOOK_COLUMNS if c in apps.columns]
        a = self._agent_apps(apps[columns])
        pairs = self._candidate_pairs(a, self._links(portfolio, a, _STRONG_KINDS), statistics.cells)
        group_of = np.full(len(apps), -1, dtype=np.int32)
        if len(pairs):
            groups = self._components(pairs)
            size = groups.groupby("group")["app"].transform("size").to_numpy()
            groups = groups[size >= self.min_apps]
            rows = keys.get_indexer(groups["app"].to_numpy(dtype=object))
            group_of[rows] = pd.factorize(groups["group"])[0]
        order = np.argsort(group_of, kind="stable").astype(np.int32)
        order = order[group_of[order] >= 0]
        n_groups = int(group_of.max()) + 1 if len(group_of) else 0
        starts = np.searchsorted(group_of[order], np.arange(n_groups + 1)).astype(np.int32)
        book = (group_of, order, starts, {})
        portfolio.derived["broker_groups"] = (statistics, self, book)
        return book

    def run(self, source, statistics: BrokerStatistics | None = None) -> list[Finding]:
        portfolio = as_portfolio(source)
        apps = portfolio.applications
        if apps.empty:
            return []
        a = self._agent_apps(apps)
        links = self._links(portfolio, a)
        if statistics is None:
            statistics = self._statistics(a, links)
        if a.empty or statistics.applications < self.min_apps:
            return []
        groups = self._candidategroup_codes(a, links, statistics.cells)
        if groups.empty:
            return []
        context = self._context_of(statistics, a, links)
        # each group's identifier links, split once (not filtered per group)
        joined = links.merge(groups.rename(columns={"app": "application_id"}), on="application_id")
        inner_of = dict(tuple(joined.groupby("group", sort=False)))
        empty = links.iloc[:0]
        findings = []
        for gid, g in groups.groupby("group", sort=False):
            finding = self._score(a.loc[g["app"].to_numpy()], inner_of.get(gid, empty), context)
            if finding is not None and finding.score >= self.min_score:
                findings.append(finding)
        findings.sort(key=lambda f: (-f.score, f.members))
        return findings

    # -- columnar preparation ------------------------------------------------
    @staticmethod
    def _agent_apps(apps: pd.DataFrame) -> pd.DataFrame:
        a = apps[apps["agent"].notna()].copy()
        revenue, income = a["declared_monthly_revenue"], a["declared_monthly_income"]
        figure = revenue.where(revenue > 0, income)
        # one scale for revenue and income: a template declares the same number whatever the product
        a["log_figure"] = np.log(figure.where(figure > 0).astype(float))
        a["figure"] = figure
        a["days"] = (a["applied_at"] - pd.Timestamp(0, tz="UTC")).dt.total_seconds() / _DAY
        a["agent"] = a["agent"].astype(str)
        return a.set_index("application_id", drop=False)

    @staticmethod
    def _links(portfolio, a: pd.DataFrame, kinds: tuple[str, ...] = _SHARE_KINDS) -> pd.DataFrame:
        """Personal identifiers (of ``kinds``) an agent's applications share
        with another of the same agent's."""
        columns = ["application_id", "identifier", "kind", "agent", "person"]
        found = []  # (kind, its link table, rows of the table on a's applications, their positions in a)
        for kind in kinds:
            table = portfolio.link_table(kind)
            if len(table) and len(a):
                hit, pos = _rows_of(portfolio, kind, table, a.index)
                if len(hit):
                    found.append((kind, table, hit, pos))
        if not found:
            return pd.DataFrame(columns=columns)
        # applicants per (agent, kind, identifier), counted over integer codes
        rows = np.concatenate([f[3] for f in found])
        kind_code = np.concatenate([np.full(len(f[2]), k, dtype=np.int64) for k, f in enumerate(found)])
        identifier = np.concatenate([pd.factorize(f[1]["identifier"].take(f[2]))[0] for f in found])
        # one person's several applications share their own phone and device: not a ring signal
        person = a["person"].astype(object).where(a["person"].notna(), a["application_id"])
        person_code = pd.factorize(person)[0]
        group, n = group_codes(pd.factorize(a["agent"])[0][rows], kind_code, identifier)
        pairs = pd.unique(group * (len(a) + 1) + person_code[rows])
        persons = np.bincount(pairs // (len(a) + 1), minlength=n)[group]
        keep = (persons >= 2) & (identifier >= 0)
        frames, at = [], 0
        for kind, table, hit, pos in found:
            mine = keep[at : at + len(hit)]
            at += len(hit)
            if mine.any():
                frames.append(
                    table.take(hit[mine])[["application_id", "identifier"]].assign(
                        kind=kind, agent=a["agent"].to_numpy()[pos[mine]], person=person.to_numpy()[pos[mine]]
                    )
                )
        if not frames:
            return pd.DataFrame(columns=columns)
        return pd.concat(frames, ignore_index=True)

    def _candidate_pairs(self, a: pd.DataFrame, links: pd.DataFrame, reference: CellReference) -> pd.DataFrame:
        """(application, candidate) pairs: significant template cells and strong identifiers."""
        band = float(np.log1p(self.figure_tolerance))
        cells = template_cells(
            a["agent"].reset_index(drop=True),
            a["days"].reset_index(drop=True),
            a["log_figure"].reset_index(drop=True),
            window_days=float(self.window_days),
            band=band,
            min_apps=self.min_apps,
            alpha=self.alpha,
            prior_weight=self.prior_weight,
            reference=reference,
        )
        pairs = (
            [
                pd.DataFrame(
                    {"app": a.index.to_numpy()[cells["row"].to_numpy(int)], "cand": "cell:" + cells["cell"].astype(str)}
                )
            ]
            if len(cells)
            else []
        )
        strong = links[links["kind"].isin(_STRONG_KINDS)]
        if len(strong):
            cand = "id:" + strong["agent"].astype(str) + "|" + strong["kind"] + "|" + strong["identifier"].astype(str)
            pairs.append(pd.DataFrame({"app": strong["application_id"].to_numpy(), "cand": cand.to_numpy()}))
        if not pairs:
            return pd.DataFrame(columns=["app", "cand"])
        return pd.concat(pairs, ignore_index=True).drop_duplicates()

    @staticmethod
    def _components(pairs: pd.DataFrame) -> pd.DataFrame:
        """``app``, ``group``: candidates that share applications merged
        (components of the bipartite application–candidate graph)."""
        app_codes, app_idx = np.unique(pairs["app"].to_numpy(str), return_inverse=True)
        _, cand_idx = np.unique(pairs["cand"].to_numpy(str), return_inverse=True)
        n_app = len(app_codes)
        labels = component_labels(n_app + cand_idx.max() + 1, app_idx, n_app + cand_idx)  # applications first
        return pd.DataFrame({"app": app_codes, "group": labels[:n_app]})

    def _candidategroup_codes(self, a: pd.DataFrame, links: pd.DataFrame, reference: CellReference) -> pd.DataFrame:
        pairs = self._candidate_pairs(a, links, reference)
        if pairs.empty:
            return pd.DataFrame(columns=["app", "group"])
        out = self._components(pairs)
        size = out.groupby("group")["app"].transform("size")
        return out[size >= self.min_apps]

    def _statistics(self, a: pd.DataFrame, links: pd.DataFrame) -> BrokerStatistics:
        band = float(np.log1p(self.figure_tolerance))
        cells = cell_reference(a["agent"], a["days"], a["log_figure"], window_days=float(self.window_days), band=band)
        if a.empty:
            return BrokerStatistics(
                applications=0,
                span_days=1.0,
                median_rate=0.0,
                kind_rate={},
                per_agent=pd.DataFrame(columns=["size", "min", "max"]),
                agent_figures={},
                population_figures=np.empty(0),
                amount_share=pd.Series(dtype=float),
                cells=cells,
            )
        ctx = self._context(a, links)
        return BrokerStatistics(
            applications=len(a),
            span_days=ctx["span"],
            median_rate=ctx["median_rate"],
            kind_rate=ctx["kind_rate"],
            per_agent=ctx["per_agent"],
            agent_figures=ctx["agent_figs"],
            population_figures=ctx["pop_figs"],
            amount_share=ctx["amount_share"],
            cells=cells,
        )

    def _context_of(self, statistics: BrokerStatistics, a: pd.DataFrame, links: pd.DataFrame) -> dict:
        """The scoring references from ``statistics``; an agent they lack
        (new since they were computed) is described by its rows in ``a``."""
        ctx = _references(statistics)
        new = ~in_set(a["agent"], set(statistics.per_agent.index.astype(str)))
        if new.any():
            local = self._context(a[new], links)
            ctx["per_agent"] = pd.concat([statistics.per_agent, local["per_agent"]])
            ctx["agent_figs"] = {**statistics.agent_figures, **local["agent_figs"]}
        return ctx

    def _context(self, a: pd.DataFrame, links: pd.DataFrame) -> dict:
        """Population references: per-agent rates and sorted figures, per-kind sharing rates."""
        days = a["days"]
        span = float(days.max() - days.min()) if days.notna().any() else 1.0
        per_agent = a.groupby("agent")["days"].agg(["size", "min", "max"])
        # an agent's ordinary rate, floored by the median agent's (a new agent is judged by its peers)
        median_rate = float(np.median(per_agent["size"] / max(span, 1.0)))
        shared_apps = links.groupby("kind")["application_id"].nunique()
        kind_rate = (shared_apps / len(a)).to_dict()
        figs = a[["agent", "log_figure"]].dropna().sort_values(["agent", "log_figure"])
        values = figs["log_figure"].to_numpy()
        agent_figs = {k: values[v] for k, v in figs.groupby("agent", sort=False).indices.items()}
        amount_share = a["amount"].value_counts(normalize=True)
        return {
            "span": max(span, 1.0),
            "per_agent": per_agent,
            "median_rate": median_rate,
            "kind_rate": kind_rate,
            "agent_figs": agent_figs,
            "pop_figs": np.sort(a["log_figure"].dropna().to_numpy()),
            "amount_share": amount_share,
        }

    # -- one candidate group -------------------------------------------------
    def _score(self, g: pd.DataFrame, inner: pd.DataFrame, ctx: dict) -> Finding | None:
        agent = str(g["agent"].iloc[0])
        n = len(g)
        if n < self.min_apps:
            return None
        n_agent = int(ctx["per_agent"].loc[agent, "size"])
        evidence: list[Evidence] = []
        shared_nodes: list[tuple[str, str]] = [("Agent", agent)]

        # burstiness: the agent's applications inside the group's span vs its rate elsewhere
        t0, t1 = float(g["days"].min()), float(g["days"].max())
        width = max(t1 - t0, 1.0)
        row = ctx["per_agent"].loc[agent]
        active = max(float(row["max"] - row["min"]), width)
        outside = n_agent - n
        rate = max(outside / max(active - width, width), ctx["median_rate"])
        expected = rate * width
        p_burst = float(poisson.sf(n - 1, expected))
        c_burst = _WEIGHTS["burst"] * _ramp_p(p_burst)
        start, end = g["applied_at"].min(), g["applied_at"].max()
        evidence.append(
            Evidence(
                "burst",
                c_burst,
                f"agent {agent}: {n} of its {n_agent} applications within {t1 - t0:.1f} days "
                f"({start:%Y-%m-%d} – {end:%Y-%m-%d}); its rate elsewhere predicts {expected:.2g} (Poisson p={p_burst:.2g})",
                (agent, str(start), str(end), n, n_agent, round(expected, 4), p_burst),
            )
        )

        # figure duplication: members in the band round their median vs the agent's and the portfolio's habits
        band = float(np.log1p(self.figure_tolerance))
        lf = g["log_figure"].dropna()
        c_fig = 0.0
        if len(lf) >= 2:
            centre = float(lf.median())
            lo, hi = centre - band, centre + band
            k = int(((lf >= lo) & (lf <= hi)).sum())
            agent_figs = ctx["agent_figs"].get(agent, np.empty(0))
            agent_in = int(np.searchsorted(agent_figs, hi, "right") - np.searchsorted(agent_figs, lo, "left"))
            pop = ctx["pop_figs"]
            pop_share = (np.searchsorted(pop, hi, "right") - np.searchsorted(pop, lo, "left")) / max(len(pop), 1)
            q = (agent_in - k + self.prior_weight * pop_share) / (len(agent_figs) - len(lf) + self.prior_weight)
            q = float(np.clip(q, 1e-9, 1.0))
            p_fig = float(binom.sf(k - 1, len(lf), q))
            c_fig = _WEIGHTS["figure_duplication"] * _ramp_p(p_fig)
            figs = g["figure"].dropna()
            evidence.append(
                Evidence(
                    "figure_duplication",
                    c_fig,
                    f"{k} of {len(lf)} declared monthly figures lie within ±{self.figure_tolerance:.0%} of "
                    f"{np.exp(centre):,.0f} (range {figs.min():,.0f}–{figs.max():,.0f}); "
                    f"{q:.2%} of the agent's other applications (shrunk to the portfolio's) do (binomial p={p_fig:.2g})",
                    (round(float(np.exp(centre)), 2), k, len(lf), round(q, 6), p_fig),
                )
            )

        # shared identifiers among members, per kind against the portfolio's within-agent sharing rate
        inner = inner[inner.groupby(["kind", "identifier"])["person"].transform("nunique") >= 2]
        c_share = 0.0
        if len(inner):
            best_p, best_kind, sharing = 1.0, None, 0
            for kind, kg in inner.groupby("kind"):
                k = int(kg["application_id"].nunique())
                r = max(float(ctx["kind_rate"].get(kind, 0.0)), 1e-4)
                p = float(binom.sf(k - 1, n, r)) * len(_SHARE_KINDS)
                if p < best_p:
                    best_p, best_kind, sharing = p, kind, k
            c_share = _WEIGHTS["shared_identifiers"] * _ramp_p(best_p)
            top = inner.groupby(["kind", "identifier"])["application_id"].nunique().sort_values(ascending=False).head(5)
            what = "; ".join(f"{kd} {i} ({c} apps)" for (kd, i), c in top.items())
            evidence.append(
                Evidence(
                    "shared_identifiers",
                    c_share,
                    f"{inner['application_id'].nunique()} of {n} applications share identifiers across applicants: {what}; "
                    f"most telling: {sharing} share a {best_kind}, where {ctx['kind_rate'].get(best_kind, 0.0):.2%} of "
                    f"agents' applications do (binomial p={best_p:.2g})",
                    tuple(f"{kd}:{i}" for (kd, i) in top.index),
                )
            )
            shared_nodes += [(_LABEL_OF[kd], str(i)) for (kd, i) in top.index]

        # duplicated amounts: the group's most common amount vs how common it is in the portfolio
        amounts = g["amount"].dropna()
        if len(amounts):
            mode = float(amounts.mode().iloc[0])
            k = int((amounts == mode).sum())
            if k >= 2:
                share = max(float(ctx["amount_share"].get(mode, 0.0)), 1.0 / max(ctx["applications"], 1))
                p_amt = float(binom.sf(k - 1, len(amounts), share))
                c_amt = _WEIGHTS["amount_duplication"] * _ramp_p(p_amt)
                evidence.append(
                    Evidence(
                        "amount_duplication",
                        c_amt,
                        f"{k} of {len(amounts)} applications ask exactly {mode:,.0f}, which {share:.2%} of the "
                        f"portfolio's applications ask (binomial p={p_amt:.2g})",
                        (mode, k, len(amounts), round(share, 6), p_amt),
                    )
                )

        # a burst alone is a campaign, sharing alone may be a family: ask for two signals
        strong = sum(1 for c in (c_burst, c_fig, c_share) if c > 0)
        if strong < 2:
            return None
        members = tuple(sorted(g["application_id"].astype(str)))
        listed = ", ".join(members[: self.max_listed]) + (" …" if n > self.max_listed else "")
        evidence[0] = Evidence(
            evidence[0].feature, evidence[0].contribution, evidence[0].detail + f": {listed}", evidence[0].values
        )
        figs = g["figure"].dropna()
        fig_text = f", figures {figs.min():,.0f}–{figs.max():,.0f}" if len(figs) else ""
        summary = (
            f"agent {agent}: {n} applications in {t1 - t0:.1f} days{fig_text}"
            + (f", {inner['application_id'].nunique()} sharing contacts/identifiers" if len(inner) else "")
            + " — 疑似中介包装"
        )
        return Finding.from_evidence(
            self.name,
            "broker_ring",
            members,
            evidence,
            parameters=self.params(),
            summary=summary,
            entities=(("Agent", agent),),
            shared=tuple(dict.fromkeys(s for s in shared_nodes if s[0] != "Agent")),
        )


#: a link table this many times longer than the applications looked up in it is read through the
#: portfolio's row map of its application ids (built once) instead of scanned
_SCAN_RATIO = 16


def _rows_of(portfolio, kind: str, table: pd.DataFrame, apps: pd.Index) -> tuple[np.ndarray, np.ndarray]:
    """The rows of link table ``table`` (``portfolio.link_table(kind)``)
    whose application is in ``apps``, in the table's order, and each one's
    position in ``apps``.

    A few applications of a large book (a scope's agents) are looked up
    through the portfolio's row map of the table (O(rows found)); a table
    not much longer than ``apps`` (a scope's own) is scanned once.

    Example
    -------
    >>> table = pd.DataFrame({"application_id": ["A2", "A9", "A1", "A2"], "identifier": list("wxyz")})
    >>> hit, pos = _rows_of(None, "phone", table, pd.Index(["A1", "A2"]))
    >>> hit.tolist(), pos.tolist()
    ([0, 2, 3], [1, 0, 1])
    """
    if portfolio is not None and len(table) > _SCAN_RATIO * len(apps) and hasattr(portfolio, "rows_where"):
        hit = portfolio.rows_where(f"links:{kind}", "application_id", apps)
        found = table["application_id"].iloc[hit].to_numpy(dtype=object)
        pos = pd.Index(apps.to_numpy(dtype=object), dtype=object).get_indexer(found).astype(np.int64)
        return hit, pos
    pos = positions_in(table["application_id"], apps)
    hit = np.flatnonzero(pos >= 0)
    return hit, pos[hit]


def _references(statistics: BrokerStatistics) -> dict:
    """The book-wide references a group is scored against, from ``statistics``."""
    return {
        "per_agent": statistics.per_agent,
        "median_rate": statistics.median_rate,
        "kind_rate": statistics.kind_rate,
        "agent_figs": statistics.agent_figures,
        "pop_figs": statistics.population_figures,
        "amount_share": statistics.amount_share,
        "applications": statistics.applications,
    }
