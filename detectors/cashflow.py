"""Declared cash flow against the amount asked (交叉检验).

Micro-credit underwriting cross-checks what an applicant declares: a noodle
shop (小吃店) does not turn over four million yuan a month, and a barber's
shop declaring 30,000 a month does not repay three million over two years.
Packaged applications (包装进件) inflate one side and forget the other.

Every check is a robust z-score against the portfolio itself, never a fixed
yuan threshold:

* ``figure_vs_trade`` — log declared monthly revenue (business loans) or
  income (consumer loans) against applications of the same trade, read from
  the company (or employer) name (餐饮, 贸易, 科技, 物流, 建筑, 便利店 …);
  trades with too few peers fall back to the product. Only inflated figures
  count: a small honest income is not a cash-flow conflict.
* ``amount_vs_trade`` — log amount against the same peers, upwards only.
* ``leverage`` — log(amount / (monthly figure × months)), months = the term
  for consumer loans and 12 (annual revenue) for business loans, against
  the product; both directions, since a tiny loan against an enormous
  declared revenue is as inconsistent as a huge loan against a small one.
* ``round_figure`` and ``repeated_figure`` — small additions when the
  declared figure has one significant digit, or when the exact value recurs
  across unrelated applicants far more often than figures near it do.

A large honest business (big revenue, big amount, in a big-ticket trade) has
ordinary z-scores in its trade; an honest small consumer has a small figure,
which only ever lowers the upward checks.

Incremental runs (``ringscope flag``): a finding is one application judged
against its peers, so :meth:`CashflowChecks.scope` is the new applications
themselves and :meth:`CashflowChecks.statistics` holds everything read from
the rest of the book — which trade keys have enough applications, each peer
group's median and scale, the term median, how round and how repeated
declared figures are. Judged by the statistics of the portfolio they are
in, the applications get exactly the checks a full run gives them. With
statistics of an older portfolio, a peer group or product they do not know
gives no z-score (the check counts 0) and an unknown figure counts as
declared once.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy.stats import poisson

from ringscope.detectors.base import Detector, Evidence, Finding, param
from ringscope.detectors.engine import engine_of
from ringscope.detectors.keys import RowsByValue
from ringscope.detectors.portfolio import as_portfolio

__all__ = [
    "CashflowChecks",
    "CashflowStatistics",
    "trade_of",
    "robust_z",
    "declared_rows",
    "popularity_of",
    "TRADES",
    "DECLARED_INPUT",
]

#: trade → keywords found in company names (longest keyword wins when several match)
TRADES: dict[str, tuple[str, ...]] = {
    "餐饮": ("餐饮", "饭店", "酒楼", "酒家", "小吃", "火锅", "面馆", "食府", "餐厅", "快餐", "烧烤", "食品"),
    "便利店/超市": ("便利店", "超市", "商店", "百货", "小卖部"),
    "五金": ("五金",),
    "服装": ("服装", "服饰", "鞋业"),
    "美容美发": ("美容", "美发", "理发", "美甲", "发廊"),
    "贸易": ("贸易", "商贸", "进出口"),
    "科技": ("科技", "信息技术", "网络", "软件", "电子"),
    "物流": ("物流", "运输", "快递", "速运", "速递", "货运", "配送", "供应链"),
    "建筑": ("建筑", "装饰", "工程", "建设", "建材", "装修"),
    "农业": ("农业", "合作社", "种植", "养殖"),
    "医药": ("医药", "药房", "药店", "诊所", "医疗"),
    "教育": ("教育", "培训"),
    "物业": ("物业",),
    "制造": ("制造", "机械", "加工", "实业"),
}
_KEYWORDS = sorted(((kw, trade) for trade, kws in TRADES.items() for kw in kws), key=lambda p: -len(p[0]))
_KEYWORD_RE = re.compile("|".join(re.escape(kw) for kw, _ in _KEYWORDS))
_TRADE_OF_KEYWORD = dict(_KEYWORDS)
#: legal-form suffixes stripped before the fallback trade token is read
_FORM_RE = re.compile(r"(股份有限公司|有限责任公司|有限公司|集团|公司|个体工商户)+$")
_MAD_SCALE = 1.4826
#: floor on the robust scale of a log figure (about ±10 %): round values can make the MAD zero
_MIN_SCALE = 0.1
_WEIGHTS = {
    "figure_vs_trade": 0.3,
    "amount_vs_trade": 0.25,
    "leverage": 0.3,
    "round_figure": 0.05,
    "repeated_figure": 0.1,
}


def trade_of(name: str | None) -> tuple[str | None, str | None]:
    """The trade a company name declares, coarse and fine, or (None, None).

    A known keyword (the longest that occurs) names the coarse trade;
    otherwise the last two characters before the legal form (有限公司 …) stand
    for it, marked with ``~`` so that they never collide with a keyword trade.
    The fine trade adds the keyword and the size class the legal form implies
    (a 小吃店 is not a 餐饮有限公司).

    Example
    -------
    >>> trade_of("甘孜藏族自治州丰金小吃店")
    ('餐饮', '餐饮/小吃/shop')
    >>> trade_of("上海市通发装饰工程有限公司"), trade_of("顺达洗车行")
    (('建筑', '建筑/装饰/company'), ('~车行', '~车行/shop'))
    """
    if not isinstance(name, str) or not name.strip():
        return None, None
    name = name.strip()
    size = "company" if _FORM_RE.search(name) else "shop"
    found = _KEYWORD_RE.findall(name)
    if found:
        keyword = max(found, key=len)
        trade = _TRADE_OF_KEYWORD[keyword]
        return trade, f"{trade}/{keyword}/{size}"
    core = re.sub(r"[^\u4e00-\u9fff]", "", _FORM_RE.sub("", name))
    if len(core) < 2:
        return None, None
    trade = "~" + core[-2:]
    return trade, f"{trade}/{size}"


def robust_z(values: pd.Series, groups: pd.Series, min_scale: float = _MIN_SCALE) -> tuple[pd.Series, pd.Series]:
    """Robust z-score of ``values`` within ``groups``: (x - median) / (1.4826 MAD).

    Returns the z-scores and the group medians (both aligned with ``values``).

    Example
    -------
    >>> z, med = robust_z(pd.Series([1.0, 1.1, 0.9, 1.0, 5.0]), pd.Series(["a"] * 5))
    >>> round(float(z.iloc[-1]), 1), float(med.iloc[0])
    (27.0, 1.0)

    Notes
    -----
    Two grouped medians: O(n log n).
    """
    med = values.groupby(groups).transform("median")
    mad = (values - med).abs().groupby(groups).transform("median") * _MAD_SCALE
    scale = mad.clip(lower=min_scale)
    return (values - med) / scale, med


def _ramp(z: pd.Series | np.ndarray, start: float, full: float) -> np.ndarray:
    """0 below ``start``, 1 from ``full`` on, linear between; 0 for a missing
    z (a peer group the statistics do not know: no evidence either way)."""
    return np.nan_to_num(np.clip((np.asarray(z, dtype=float) - start) / (full - start), 0.0, 1.0), nan=0.0)


def _significant_digits(x: np.ndarray) -> np.ndarray:
    """Significant digits of positive integers-valued figures (50000 → 1, 46500 → 3)."""
    v = np.round(np.abs(x)).astype(np.int64)
    digits = np.zeros(len(v), dtype=np.int64)
    stripped = v.copy()
    ok = stripped > 0
    # strip trailing zeros, at most 12 times (figures are below 10**12)
    for _ in range(12):
        tail = ok & (stripped % 10 == 0)
        if not tail.any():
            break
        stripped = np.where(tail, stripped // 10, stripped)
    digits[ok] = np.floor(np.log10(stripped[ok])).astype(np.int64) + 1
    return digits


@dataclass(frozen=True, kw_only=True)
class CashflowChecks(Detector):
    """Declared revenue or income inconsistent with the amount, the peers or the trade.

    Parameters
    ----------
    z_start : float
        Robust z-score at which a check starts to count.
    z_full : float
        Robust z-score at which a check counts fully.
    min_peers : int
        Fewest applications a trade needs (within its product) to be its own
        reference; otherwise the product is.
    min_score : float
        Lowest score reported (the checks together must fail clearly).

    Example
    -------
    >>> import tempfile
    >>> from ringscope.graph.embedded import EmbeddedStore
    >>> CashflowChecks().run(EmbeddedStore(tempfile.mkdtemp()))
    []

    Notes
    -----
    Columnar: a few grouped medians and one regex per distinct company name;
    O(n log n) for n applications.
    """

    name: ClassVar[str] = "cashflow"
    z_start: float = param(3.0, kind=numbers.Real, gt=0)
    z_full: float = param(6.0, kind=numbers.Real, gt="z_start")
    min_peers: int = param(30, ge=5)
    min_score: float = param(0.3, kind=numbers.Real, gt=0, le=1)

    def run(self, source, statistics: CashflowStatistics | None = None) -> list[Finding]:
        portfolio = as_portfolio(source)
        if statistics is None:
            # the whole book's pass (peer groups) goes to the portfolio's engine: in Spark it
            # hands back only the applications some check may fail, not the whole book
            declared, statistics = engine_of(portfolio).cashflow_peer_groups(self, portfolio)
            frame = self.checks_of(declared, statistics)
        else:
            frame = self.checks(portfolio, statistics)
        return self._findings_of(frame)

    def _findings_of(self, frame: pd.DataFrame) -> list[Finding]:
        """The findings of the rows of a checks frame scoring ``min_score`` or more, best first."""
        if frame.empty:
            return []
        flagged = frame[frame["score"] >= self.min_score]
        findings = [self._finding(row) for row in flagged.itertuples(index=False)]
        findings.sort(key=lambda f: (-f.score, f.members))
        return findings

    # -- incremental runs ----------------------------------------------------
    def statistics(self, portfolio) -> CashflowStatistics:
        """The portfolio's peer groups: which trade keys have ``min_peers``
        applications, each reference's and segment's robust median and scale,
        the term median, how round and how repeated declared figures are.

        Example
        -------
        >>> import tempfile
        >>> from ringscope.graph.embedded import EmbeddedStore
        >>> from ringscope.detectors.portfolio import Portfolio
        >>> CashflowChecks().statistics(Portfolio(EmbeddedStore(tempfile.mkdtemp()))).applications
        0

        Notes
        -----
        A few grouped medians over the portfolio, O(n log n); no finding is built.
        """
        # the names a row's trade was read from are not read again (~0.1 GB of Python text at 1M)
        return self._statistics_of(_declared(as_portfolio(portfolio)).drop(columns=["entity_name"]))

    def peer_groups(self, portfolio) -> tuple[pd.DataFrame, CashflowStatistics]:
        """The whole book's pass in this process: the declared rows of every
        application (:func:`declared_rows`) and the :meth:`statistics` read
        from them. An engine may return fewer rows — any that some check may
        fail under those statistics — since each row is judged alone.

        Example
        -------
        >>> import tempfile
        >>> from ringscope.graph.embedded import EmbeddedStore
        >>> from ringscope.detectors.portfolio import Portfolio
        >>> rows, stats = CashflowChecks().peer_groups(Portfolio(EmbeddedStore(tempfile.mkdtemp())))
        >>> len(rows), stats.applications
        (0, 0)
        """
        declared = _declared(as_portfolio(portfolio))
        return declared, self._statistics_of(declared)

    def scope(self, portfolio, app_ids: Sequence[str], statistics: CashflowStatistics | None = None):
        """The applications themselves: a finding is one application judged
        against its peers, and the peers are in ``statistics``. The subset
        keeps their applicant and their company's and employer's names (the
        trade is read from them)."""
        return as_portfolio(portfolio).subset(app_ids)

    def around(self, portfolio, app_ids: Sequence[str], statistics: CashflowStatistics | None = None):
        """The findings of ``app_ids`` read from the checks of the whole book
        under ``statistics``, computed once per portfolio (columnar, O(n)
        like the statistics themselves): each application is judged against
        the peers in ``statistics`` alone, so its row is the one a scope of
        it alone would give, without a sub-portfolio per call. In a
        one-detection run (``portfolio.keep_derived`` off: ``flag``'s batch)
        the book's checks would be dropped as soon as the detector ran, so
        the batch's own rows are judged instead, with the same findings."""
        if statistics is None:
            return None
        portfolio = as_portfolio(portfolio)
        key = ("cashflow_flagged", tuple(sorted(self.params().items())))
        held = portfolio.derived.get(key)
        if (held is None or held[0] is not statistics) and not getattr(portfolio, "keep_derived", True):
            # one detection (``flag``): the book's checks would be dropped once this detector ran, so
            # they never pay back; the batch's own rows give the same findings (+0.9 GB less at 1M)
            return self._found_in_rows(portfolio, app_ids, statistics)
        if held is None or held[0] is not statistics:
            frame = self.checks(portfolio, statistics) if not portfolio.applications.empty else None
            flagged = (
                frame[frame["score"] >= self.min_score].reset_index(drop=True)
                if frame is not None and len(frame)
                else pd.DataFrame(columns=["application_id"])
            )
            held = (statistics, flagged, RowsByValue(flagged["application_id"]))
            portfolio.derived[key] = held
        _, flagged, rows = held
        at = rows.rows(map(str, app_ids))
        if not len(at):  # most applications: no row to take from the wide frame
            return []
        findings = [self._finding(row) for row in flagged.iloc[at].itertuples(index=False)]
        findings.sort(key=lambda f: (-f.score, f.members))
        return findings

    def _found_in_rows(self, portfolio, app_ids: Sequence[str], statistics: CashflowStatistics) -> list[Finding]:
        """The findings of ``app_ids`` from their own declared rows
        (:func:`declared_rows`, row-local) judged under ``statistics``:
        what :meth:`around` reads from the whole book's checks, without
        computing the checks of every other application."""
        rows = portfolio.rows_where("applications", "application_id", list(map(str, app_ids)))
        if not len(rows):
            return []
        return self._findings_of(self.checks_of(_declared(portfolio, rows), statistics))

    # -- the checks, columnar ----------------------------------------------
    def checks(self, source, statistics: CashflowStatistics | None = None) -> pd.DataFrame:
        """Every application with a declared figure, its checks and score.

        Columns: ``application_id``, ``figure_kind`` (revenue/income),
        ``figure``, ``amount``, ``months``, ``trade``, ``reference``, the
        medians and z-scores of each check, their contributions and
        ``score``. Useful for calibration plots as well as for ``run``.
        With ``statistics`` (from :meth:`statistics` over a larger
        portfolio) the applications of ``source`` are judged against that
        portfolio's peers instead of each other.
        """
        f = _declared(as_portfolio(source))
        return self.checks_of(f, self._statistics_of(f) if statistics is None else statistics)

    def checks_of(self, declared: pd.DataFrame, statistics: CashflowStatistics) -> pd.DataFrame:
        """:meth:`checks` of the rows ``declared`` (:func:`declared_rows`)
        under ``statistics``: row by row, so any part of a book's rows is
        judged as it is in the whole."""
        if declared.empty:
            return declared.assign(score=pd.Series(dtype=float))
        f = declared.reset_index(drop=True)  # copy on write: the caller's rows are left as they are
        stats = statistics
        reference, label, is_trade = self._reference(f, stats.key_counts)
        segment = f["segment"]
        f["reference"] = reference
        f["reference_label"] = label
        f["reference_is_trade"] = is_trade
        # a reference unknown to the statistics (computed before this application existed) has no peers
        f["peers"] = f["reference"].map(stats.peers).fillna(0).astype(int)
        # business loans repay out of annual revenue; consumer loans out of the term's income
        f["months"] = _months(f, stats.term_fill)
        log_fig = np.log(f["figure"].astype(float))
        log_amt = np.log(f["amount"].astype(float))
        log_lev = log_amt - log_fig - np.log(f["months"].astype(float))
        f["z_figure"], med_fig = _z(log_fig, f["reference"], stats.figure)
        f["z_amount"], med_amt = _z(log_amt, f["reference"], stats.amount)
        f["z_leverage"], med_lev = _z(log_lev, segment, stats.leverage)
        f["peer_figure"] = np.exp(med_fig)
        f["peer_amount"] = np.exp(med_amt)
        f["leverage"] = np.exp(log_lev)
        f["peer_leverage"] = np.exp(med_lev)

        s0, s1 = float(self.z_start), float(self.z_full)
        c_fig = _WEIGHTS["figure_vs_trade"] * _ramp(f["z_figure"], s0, s1)
        c_amt = _WEIGHTS["amount_vs_trade"] * _ramp(f["z_amount"], s0, s1)
        c_lev = _WEIGHTS["leverage"] * _ramp(f["z_leverage"].abs(), s0, s1)
        main = c_fig + c_amt + c_lev
        # round numbers and repeated figures only add to a check that already fails
        failing = main > 0
        round_share = stats.round_share
        c_round = np.where(failing & (f["sig_digits"] <= 1) & (round_share < 0.5), _WEIGHTS["round_figure"], 0.0)
        f["round_share"] = round_share
        rep_p, rep_n, rep_e = _repeated_figure(f, stats.repeats, stats.n_values)
        f["repeat_count"], f["repeat_expected"], f["repeat_p"] = rep_n, rep_e, rep_p
        strength = -np.log10(np.clip(rep_p, 1e-300, 1.0))
        c_rep = np.where(failing, _WEIGHTS["repeated_figure"] * np.clip((strength - 3.0) / 7.0, 0.0, 1.0), 0.0)
        f["c_figure"], f["c_amount"], f["c_leverage"], f["c_round"], f["c_repeat"] = c_fig, c_amt, c_lev, c_round, c_rep
        f["score"] = np.clip(main + c_round + c_rep, 0.0, 1.0)
        return f.drop(columns=["segment"])

    def _reference(
        self, f: pd.DataFrame, key_counts: dict[str, pd.Series], labels: bool = True
    ) -> tuple[pd.Series, pd.Series | None, np.ndarray]:
        """The finest reference with enough peers in the portfolio (``key_counts``):
        keyword and size class, then trade, then product; and each row's
        label of it unless ``labels`` is off (the statistics read none)."""
        segment = f["segment"]
        reference = segment.copy()
        label = f["product"].copy() if labels else None
        is_trade = pd.Series(False, index=f.index)
        for col in ("trade", "fine_trade"):
            key = segment + "|" + f[col].fillna("")
            enough = f[col].notna() & (key.map(key_counts[col]).fillna(0) >= self.min_peers)
            reference = reference.where(~enough, key)
            if label is not None:
                label = label.where(~enough, f[col].astype(str).str.replace("/", " ") + " (" + f["product"] + ")")
            is_trade |= enough
        return reference, label, is_trade.to_numpy()

    def _statistics_of(self, f: pd.DataFrame) -> CashflowStatistics:
        """Statistics of the declared-figure frame ``f`` (see :func:`_declared`)."""
        if f.empty:
            groups = pd.DataFrame({"median": pd.Series(dtype=float), "scale": pd.Series(dtype=float)})
            nothing = pd.Series(dtype="int64")
            return CashflowStatistics(
                applications=0,
                key_counts={"trade": nothing, "fine_trade": nothing},
                peers=nothing,
                term_fill=12.0,
                figure=groups,
                amount=groups,
                leverage=groups,
                round_share=0.0,
                repeats={},
                n_values=1,
            )
        segment = f["segment"]
        key_counts = {col: (segment + "|" + f[col].fillna("")).value_counts() for col in ("trade", "fine_trade")}
        term = f["term"].where(f["term"] > 0)
        term_fill = float(term.median()) if term.notna().any() else 12.0
        reference = self._reference(f, key_counts, labels=False)[0]
        log_fig = np.log(f["figure"].astype(float))
        log_amt = np.log(f["amount"].astype(float))
        log_lev = log_amt - log_fig - np.log(_months(f, term_fill).astype(float))
        return CashflowStatistics(
            applications=len(f),
            key_counts=key_counts,
            peers=reference.value_counts(),
            term_fill=term_fill,
            figure=_robust_groups(log_fig, reference),
            amount=_robust_groups(log_amt, reference),
            leverage=_robust_groups(log_lev, segment),
            round_share=float((f["sig_digits"] <= 1).mean()),
            repeats=_figure_popularity(f),
            n_values=max(f["figure"].round(2).nunique(), 1),
        )

    def _finding(self, r) -> Finding:
        word = "monthly revenue" if r.figure_kind == "revenue" else "monthly income"
        ref = f"trade {r.reference_label}" if r.reference_is_trade else f"product {r.product}"
        ev = []
        # the declared figure against its peers is always shown, even when only another check fails
        ev.append(
            Evidence(
                "figure_vs_trade",
                float(r.c_figure),
                f"declared {word} {r.figure:,.0f} vs median {r.peer_figure:,.0f} of {r.peers} applications in {ref}: "
                f"{r.figure / r.peer_figure:.1f}x (robust z {r.z_figure:.1f})",
                (
                    float(r.figure),
                    round(float(r.peer_figure), 2),
                    round(float(r.figure / r.peer_figure), 4),
                    round(float(r.z_figure), 3),
                ),
            )
        )
        if r.c_amount > 0:
            ev.append(
                Evidence(
                    "amount_vs_trade",
                    float(r.c_amount),
                    f"amount {r.amount:,.0f} vs median {r.peer_amount:,.0f} of {r.peers} applications in {ref}: "
                    f"{r.amount / r.peer_amount:.1f}x (robust z {r.z_amount:.1f})",
                    (
                        float(r.amount),
                        round(float(r.peer_amount), 2),
                        round(float(r.amount / r.peer_amount), 4),
                        round(float(r.z_amount), 3),
                    ),
                )
            )
        if r.c_leverage > 0:
            basis = "annual revenue" if r.figure_kind == "revenue" else f"income over the {r.months:.0f}-month term"
            ev.append(
                Evidence(
                    "leverage",
                    float(r.c_leverage),
                    f"amount {r.amount:,.0f} is {r.leverage:.3g}x the {basis} ({r.figure:,.0f} x {r.months:.0f}); "
                    f"product {r.product} median is {r.peer_leverage:.3g}x (robust z {r.z_leverage:.1f})",
                    (
                        float(r.amount),
                        float(r.figure),
                        float(r.months),
                        round(float(r.leverage), 6),
                        round(float(r.peer_leverage), 6),
                        round(float(r.z_leverage), 3),
                    ),
                )
            )
        if r.c_round > 0:
            ev.append(
                Evidence(
                    "round_figure",
                    float(r.c_round),
                    f"declared {word} {r.figure:,.0f} has one significant digit "
                    f"(only {r.round_share:.0%} of declared figures are that round)",
                    (float(r.figure), round(float(r.round_share), 4)),
                )
            )
        if r.c_repeat > 0:
            ev.append(
                Evidence(
                    "repeated_figure",
                    float(r.c_repeat),
                    f"the exact {word} {r.figure:,.0f} is declared on {int(r.repeat_count)} applications; figures within "
                    f"±10 % of it repeat {r.repeat_expected:.2g} times on average (Poisson p={r.repeat_p:.2g})",
                    (float(r.figure), int(r.repeat_count), round(float(r.repeat_expected), 4), float(r.repeat_p)),
                )
            )
        entities = []
        if isinstance(r.company, str):
            entities.append(("Company", r.company))
        if isinstance(r.person, str):
            entities.append(("Person", r.person))
        ratio = r.figure / r.peer_figure
        # an application with neither company nor employer has no name (NaN, which is truthy)
        named = r.entity_name if isinstance(r.entity_name, str) and r.entity_name else r.application_id
        summary = (
            f"{named}: declared {word} {r.figure:,.0f} "
            f"({ratio:.1f}x peer median {r.peer_figure:,.0f}) for amount {r.amount:,.0f} — 交叉检验不一致"
        )
        return Finding.from_evidence(
            self.name,
            "cashflow_inconsistency",
            (r.application_id,),
            ev,
            parameters=self.params(),
            summary=summary,
            entities=tuple(entities),
            shared=(),
        )


@dataclass(frozen=True)
class CashflowStatistics:
    """A portfolio's peer groups, as :meth:`CashflowChecks.statistics` computes them.

    ``key_counts`` counts applications per ``product|kind|trade`` and
    ``product|kind|fine trade`` key (which keys are references);
    ``peers`` per reference; ``figure`` and ``amount`` hold each
    reference's robust ``median`` and ``scale`` of the log figure and log
    amount, ``leverage`` each segment's (product and figure kind);
    ``repeats`` per figure kind the distinct declared values with their
    applicant counts, expectations and p-values (:func:`_figure_popularity`);
    ``n_values`` the Bonferroni count.
    """

    applications: int
    key_counts: dict[str, pd.Series]
    peers: pd.Series
    term_fill: float
    figure: pd.DataFrame
    amount: pd.DataFrame
    leverage: pd.DataFrame
    round_share: float
    repeats: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]
    n_values: int


#: the application columns :func:`declared_rows` reads (``business_name`` and
#: ``employer_name``: the names of the application's company and employer)
DECLARED_INPUT = (
    "application_id",
    "person",
    "company",
    "product",
    "declared_monthly_revenue",
    "declared_monthly_income",
    "amount",
    "term_months",
    "business_name",
    "employer_name",
)


def _declared(portfolio, rows: np.ndarray | None = None) -> pd.DataFrame:
    """:func:`declared_rows` of every application of ``portfolio`` (or of
    the applications at positions ``rows`` only)."""
    apps = portfolio.applications
    if rows is not None:
        apps = apps.iloc[rows].reset_index(drop=True)
    names = _company_names(portfolio)
    inputs = apps[list(DECLARED_INPUT[:-2])].assign(
        business_name=apps["company"].map(names), employer_name=apps["employer"].map(names)
    )
    return declared_rows(inputs)


def declared_rows(apps: pd.DataFrame) -> pd.DataFrame:
    """Applications with a declared figure and an amount, and what is read
    from each alone: figure kind, company or employer name, trade, segment,
    significant digits. Nothing here depends on other applications, so the
    rows of a book can be read in any parts (Spark reads them batch by batch).

    ``apps`` has the columns :data:`DECLARED_INPUT`, its figures read as
    :attr:`Portfolio.applications` reads them.

    Example
    -------
    >>> apps = pd.DataFrame([("a1", "p1", "c1", "经营贷", 4e6, np.nan, 5e5, 12.0, "丰金小吃店", None)],
    ...                     columns=list(DECLARED_INPUT))
    >>> row = declared_rows(apps).iloc[0]
    >>> row["figure_kind"], float(row["figure"]), row["trade"], row["segment"], int(row["sig_digits"])
    ('revenue', 4000000.0, '餐饮', '经营贷|revenue', 1)
    """
    revenue = apps["declared_monthly_revenue"]
    income = apps["declared_monthly_income"]
    figure = revenue.where(revenue > 0, income)
    kind = np.where(revenue > 0, "revenue", "income")
    ok = (figure > 0) & (apps["amount"] > 0)
    business_name = apps["business_name"]
    employer_name = apps["employer_name"]
    named = pd.Series(np.where(kind == "revenue", business_name, employer_name), index=apps.index)
    named = named.where(named.notna(), business_name.where(business_name.notna(), employer_name))
    f = pd.DataFrame(
        {
            "application_id": apps["application_id"].astype(str),
            "person": apps["person"],
            "company": apps["company"],
            "product": apps["product"].fillna("?").astype(str),
            "figure_kind": kind,
            "figure": figure,
            "amount": apps["amount"],
            "term": apps["term_months"],
            "entity_name": named,
        }
    )[ok.to_numpy()].reset_index(drop=True)
    # one regex per distinct name, not per application
    uniq = pd.Series(f["entity_name"].dropna().unique(), dtype=object)
    parsed = [trade_of(n) for n in uniq]
    f["trade"] = f["entity_name"].map(dict(zip(uniq, (t for t, _ in parsed))))
    f["fine_trade"] = f["entity_name"].map(dict(zip(uniq, (t for _, t in parsed))))
    f["segment"] = f["product"] + "|" + f["figure_kind"]
    f["sig_digits"] = _significant_digits(f["figure"].to_numpy(float))
    return f


def _months(f: pd.DataFrame, term_fill: float) -> np.ndarray:
    """Months of repayment: 12 (annual revenue) for business loans, the term
    (``term_fill`` where it is missing) for consumer loans."""
    term = f["term"].where(f["term"] > 0)
    return np.where(f["figure_kind"] == "revenue", 12.0, term.fillna(term_fill))


def _robust_groups(values: pd.Series, groups: pd.Series, min_scale: float = _MIN_SCALE) -> pd.DataFrame:
    """Per group the ``median`` and robust ``scale`` (1.4826 MAD, at least
    ``min_scale``) that :func:`robust_z` uses."""
    med = values.groupby(groups).median()
    mad = (values - groups.map(med)).abs().groupby(groups).median() * _MAD_SCALE
    return pd.DataFrame({"median": med, "scale": mad.clip(lower=min_scale)})


def _z(values: pd.Series, groups: pd.Series, table: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Robust z of ``values`` against the group medians and scales in
    ``table`` (NaN for a group the table does not know)."""
    med = groups.map(table["median"])
    return (values - med) / groups.map(table["scale"]), med


def _company_names(portfolio) -> pd.Series:
    """Company key → name (the normalised name, else the key without its ``name:`` prefix)."""
    companies = portfolio.companies
    if companies.empty:
        return pd.Series(dtype=object)
    names = (
        companies.set_index("key")["name"] if "name" in companies.columns else pd.Series(pd.NA, index=companies["key"])
    )
    fallback = pd.Series(
        companies["key"].astype(str).str.replace(r"^name:", "", regex=True).to_numpy(), index=companies["key"]
    )
    return names.where(names.notna() & (names.astype(str) != ""), fallback)


def _figure_popularity(f: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Per figure kind: distinct declared values (rounded to cents, sorted),
    the distinct applicants declaring each, the count expected from values
    within ±10 % and the Poisson p-value of the observed count
    (:func:`popularity_of` of each kind's applicants per value).
    """
    # each applicant as an integer code (the person, else the application): distinct pairs of
    # value and applicant are counted, so codes count as the text did without a Python string per row
    applicant = f["person"].astype("str").where(f["person"].notna(), f["application_id"].astype("str"))
    applicant = pd.Series(pd.factorize(applicant)[0], index=f.index)
    out = {}
    for kind, g in f.groupby("figure_kind", sort=False):
        per_value = (
            pd.DataFrame({"v": g["figure"].round(2).to_numpy(), "p": applicant[g.index].to_numpy()})
            .drop_duplicates()
            .groupby("v")
            .size()
        )
        out[str(kind)] = popularity_of(per_value)
    return out


def popularity_of(per_value: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """How popular each declared value is: from ``per_value`` (distinct
    applicants per value, one figure kind), the values sorted, their counts,
    the count expected from values within ±10 % and the Poisson p-value of
    the observed count.

    The expectation for a value is the mean number of applicants per distinct
    value among figures within ±10 %, so popular round values are compared
    with other round values' popularity rather than with zero.

    Example
    -------
    >>> values, counts, expected, p = popularity_of(pd.Series({5000.0: 9, 5100.0: 1, 4900.0: 1}))
    >>> values.tolist(), counts.tolist(), expected.tolist()
    ([4900.0, 5000.0, 5100.0], [1, 9, 1], [5.0, 1.0, 5.0])
    """
    per_value = per_value.sort_index()
    values = per_value.index.to_numpy(float)
    obs = per_value.to_numpy()
    cum = np.r_[0, np.cumsum(obs)]
    lo = np.searchsorted(values, values / 1.1, side="left")
    hi = np.searchsorted(values, values * 1.1, side="right")
    band_apps = cum[hi] - cum[lo] - obs
    band_values = np.maximum(hi - lo - 1, 1)
    exp = np.maximum(band_apps / band_values, 1.0)
    return values, obs, exp, poisson.sf(obs - 1, exp)


def _repeated_figure(
    f: pd.DataFrame, popularity: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]], n_values: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact declared value repeated across distinct applicants beyond what
    nearby values do: Bonferroni p-value (over ``n_values`` distinct values
    tested), count and expectation of each row's figure, read from
    ``popularity`` (:func:`_figure_popularity`). A value the popularity does
    not hold counts once, as expected (p = 1)."""
    n = len(f)
    count = np.ones(n)
    expected = np.ones(n)
    pval = np.ones(n)
    for kind, g in f.groupby("figure_kind", sort=False):
        if str(kind) not in popularity:
            continue
        values, obs, exp, p = popularity[str(kind)]
        wanted = g["figure"].round(2).to_numpy(float)
        pos = np.minimum(np.searchsorted(values, wanted), max(len(values) - 1, 0))
        known = (pos < len(values)) & (values[pos] == wanted) if len(values) else np.zeros(len(g), dtype=bool)
        rows = g.index.to_numpy()[known]
        count[rows] = obs[pos[known]]
        expected[rows] = exp[pos[known]]
        pval[rows] = p[pos[known]]
    return np.minimum(pval * n_values, 1.0), count, expected
