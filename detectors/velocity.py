"""Device farms and velocity bursts (设备聚集 / 进件突增).

A fraud studio submits many applications from a handful of phones (a *device
farm*: one device, many identities) or from one network (one IP, one /24 or
/48 range) in a few hours or days. Honest traffic shares networks too — a
carrier NAT puts hundreds of unrelated applicants behind one IP — but spread
over months and each on their own device; a repeat borrower uses one device
for several applications, months apart, as one person.

So a burst is judged against the identifier's own history and the
portfolio's normal rate, not against a fixed count: for every application the
number of applications on the same identifier in the following ``window`` is
compared (Poisson tail) with what the identifier's rate outside that window —
or, if higher, the portfolio's average rate per identifier — would give.
Windows that are improbable after a Bonferroni correction over all windows
tested are merged when they overlap, one cluster per identifier and burst,
and each cluster is scored from its distinct resolved identities, its
compactness, the other identifiers its members share and known-bad labels.

Incrementally (``ringscope flag``), the portfolio-wide figures — the time
span, each kind's applications and identifiers (the normal rate) and the
number of windows tested (the Bonferroni count) — come from
:meth:`DeviceVelocity.statistics` over the whole book, and the detector runs
on the whole history of the batch's devices, IPs and IP ranges only
(:meth:`DeviceVelocity.scope`): a burst is a run of windows on one
identifier, so it holds a new application only if it is on one of those.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy.stats import poisson

from ringscope.detectors.base import Detector, Evidence, Finding, param
from ringscope.detectors.engine import IN_PROCESS, engine_of
from ringscope.detectors.keys import is_missing, text_list, values_at
from ringscope.detectors.portfolio import as_portfolio, in_set
from ringscope.graph.model import KNOWN_BAD_LABELS, OUTCOME_LABELS

__all__ = [
    "BurstBase",
    "DeviceVelocity",
    "VelocityStatistics",
    "burst_base",
    "burst_windows",
    "covered_by_dense_window",
]

BAD_LABELS = KNOWN_BAD_LABELS

#: cluster kind → (applications column, node label named in ``shared``, words for people)
_KINDS: dict[str, tuple[str, str, str]] = {
    "device": ("device", "Device", "device"),
    "ip": ("ip", "IP", "IP"),
    "ip_range": ("ip_prefix", "IP", "IP range"),
}
#: identifiers whose sharing inside a cluster says "same controller" (kind → Portfolio link kind)
_OTHER_KINDS = ("device", "phone", "account", "address", "email", "contact_phone")
_LABEL_OF = {
    "device": "Device",
    "phone": "Phone",
    "account": "BankAccount",
    "address": "Address",
    "email": "Email",
    "contact_phone": "Phone",
    "ip": "IP",
}
_DAY = 86400.0


@dataclass(frozen=True)
class BurstBase:
    """The portfolio-wide figures of the burst test on one identifier kind.

    ``applications`` with the identifier and a time, the distinct
    ``identifiers`` among them (together: the normal rate per identifier)
    and the ``tested`` windows: applications on identifiers holding at least
    ``min_apps`` of them, each of which starts a window (Bonferroni count).
    """

    applications: int
    identifiers: int
    tested: int


@dataclass(frozen=True)
class VelocityStatistics:
    """What :class:`DeviceVelocity` judges bursts by, over the whole portfolio.

    ``span_seconds`` of the portfolio's history (first to last application)
    and one :class:`BurstBase` per identifier kind watched.
    """

    span_seconds: float
    kinds: dict[str, BurstBase] = field(default_factory=dict)


#: up to this many rows, :func:`burst_windows` first counts each identifier's timed rows in Python
#: (a scope's identifiers mostly carry one or two: no window to test, and no frame to build)
_FEW_ROWS = 5_000
#: an identifier with more applications than this in its history (a NAT IP, a busy IP range) is
#: first asked whether a dense window covers the applications around which velocity runs
#: (:func:`covered_by_dense_window`), before its windows and clusters are computed
_BUSY_HISTORY = 2_000


def _any_repeated(keys: pd.Series, times: pd.Series, min_apps: int) -> bool:
    """Whether an identifier (as text) carries ``min_apps`` or more rows
    having both a key and a time: :func:`burst_windows`' first filter.

    >>> t = pd.Series(pd.to_datetime(["2025-01-01", None, "2025-01-03"], utc=True))
    >>> _any_repeated(pd.Series(["d1", "d1", "d1"]), t, 3), _any_repeated(pd.Series(["d1", "d1", "d1"]), t, 2)
    (False, True)
    """
    values = keys.to_numpy(dtype=object)
    ok = pd.notna(values) & times.notna().to_numpy(dtype=bool)
    counts: dict[str, int] = {}
    for value in values[ok].tolist():
        key = str(value)
        counts[key] = counts.get(key, 0) + 1
        if counts[key] >= min_apps:
            return True
    return False


def _timed_keys(keys: pd.Series, times: pd.Series) -> pd.DataFrame:
    """``key`` (text) and ``t`` (whole seconds) of the rows having both."""
    if len(keys) <= _FEW_ROWS and isinstance(times.dtype, pd.DatetimeTZDtype):
        return _timed_keys_few(keys, times)
    ok = keys.notna() & times.notna()
    seconds = (times[ok] - pd.Timestamp(0, tz="UTC")).dt.total_seconds().astype("int64")
    return pd.DataFrame({"key": keys[ok].astype(str), "t": seconds})


def _timed_keys_few(keys: pd.Series, times: pd.Series) -> pd.DataFrame:
    """:func:`_timed_keys` of a few rows on their integer ticks (its
    subtraction, ``total_seconds`` and casts cost ~0.3 ms whatever their
    size): ``total_seconds`` is the whole seconds plus the ticks' fraction,
    which the cast to integers truncates towards zero, so a time before 1970
    with a fraction counts one second up."""
    key = keys.to_numpy(dtype=object)
    timed, seconds = _whole_seconds(times)
    ok = pd.notna(key) & timed
    seconds = seconds[ok[timed]]
    index = keys.index[ok]
    return pd.DataFrame({"key": pd.Series([str(k) for k in key[ok].tolist()], index=index, dtype=str), "t": seconds})


def _whole_seconds(times: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Which of ``times`` (timezone-aware) are set, and those ones' whole
    seconds since 1970 as :func:`_timed_keys` counts them (``total_seconds``
    cast to integers: truncated towards zero, so a time before 1970 with a
    fraction counts one second up), from their integer ticks."""
    ticks = times.array.asi8
    timed = ticks != np.iinfo(np.int64).min  # NaT's ticks
    per_second = 10 ** {"s": 0, "ms": 3, "us": 6, "ns": 9}[times.dtype.unit]
    whole, fraction = np.divmod(ticks[timed], per_second)
    return timed, whole + ((fraction != 0) & (whole < 0))


def covered_by_dense_window(
    times: pd.Series,
    targets: np.ndarray,
    *,
    window_seconds: float,
    min_apps: int,
    alpha: float,
    span_seconds: float,
    base: BurstBase,
) -> bool:
    """Whether a dense window of :func:`burst_windows` over one identifier's
    whole history ``times`` (timezone-aware, in the rows' order) covers one
    of the rows at positions ``targets``: whether a cluster on it can hold
    one of them.

    A cluster is a run of overlapping dense windows, so it holds exactly the
    rows its windows cover. The windows covering a row start at most
    ``window_seconds`` before it, so only those few are tested, by the same
    arithmetic (times in the same stable order, the identifier's own rate
    from its whole history, the portfolio's rate and Bonferroni count from
    ``base``). A busy NAT IP's history (~20,000 rows at 1M) costs a sort
    instead of all of its windows and clusters.

    Example
    -------
    >>> t = pd.Series(pd.to_datetime(["2025-01-01 10:00", "2025-01-01 11:00", "2025-01-01 12:00",
    ...                               "2025-06-01 09:00"], utc=True))
    >>> base = BurstBase(applications=1000, identifiers=900, tested=10)
    >>> [covered_by_dense_window(t, np.array([i]), window_seconds=86400, min_apps=3, alpha=1e-3,
    ...                          span_seconds=365 * 86400.0, base=base) for i in (0, 3)]
    [True, False]
    """
    timed, seconds = _whole_seconds(times)
    n_key = len(seconds)
    if n_key < min_apps:
        return False
    order = np.argsort(seconds, kind="stable")  # burst_windows' stable sort by time
    where = np.empty(len(times), dtype=np.int64)  # each timed row's position in that order
    where[np.flatnonzero(timed)[order]] = np.arange(n_key)
    ordered = seconds[order]
    end = np.searchsorted(ordered, ordered + int(window_seconds), side="right")
    span = max(float(span_seconds), float(window_seconds))
    portfolio_rate = base.applications / max(base.identifiers, 1) / span
    tested = max(base.tested, 1)
    for q in where[targets[timed[targets]]].tolist():
        start = int(np.searchsorted(end, q, side="right"))  # the first window reaching past row q
        pos = np.arange(start, q + 1)
        count = end[pos] - pos
        own_rate = (n_key - count) / max(span - window_seconds, window_seconds)
        expected = np.maximum(own_rate, portfolio_rate) * window_seconds
        pvalue = poisson.sf(count - 1, expected)
        if ((count >= min_apps) & (pvalue * tested <= alpha)).any():
            return True
    return False


def burst_base(keys: pd.Series, times: pd.Series, *, min_apps: int = 3) -> BurstBase:
    """The portfolio-wide figures :func:`burst_windows` judges one kind by.

    Example
    -------
    >>> t = pd.Series(pd.to_datetime(["2025-01-01", "2025-01-02", "2025-01-03", "2025-02-01", None], utc=True))
    >>> burst_base(pd.Series(["d1", "d1", "d1", "d2", "d2"]), t, min_apps=3)
    BurstBase(applications=4, identifiers=2, tested=3)

    Notes
    -----
    One ``value_counts``: O(n) for n applications.
    """
    return _base_of(_timed_keys(keys, times), min_apps)


def _base_of(frame: pd.DataFrame, min_apps: int) -> BurstBase:
    counts = frame["key"].value_counts()
    return BurstBase(applications=len(frame), identifiers=len(counts), tested=int(counts[counts >= min_apps].sum()))


def burst_windows(
    keys: pd.Series,
    times: pd.Series,
    *,
    window_seconds: float,
    min_apps: int = 3,
    alpha: float = 1e-3,
    span_seconds: float | None = None,
    base: BurstBase | None = None,
) -> pd.DataFrame:
    """Dense time windows per identifier, merged into clusters.

    Parameters
    ----------
    keys : Series
        Identifier of each application (NA rows are ignored).
    times : Series
        Submission time of each application (UTC datetimes), same index.
    window_seconds : float
        Length of the sliding window.
    min_apps : int
        Fewest applications a window must hold.
    alpha : float
        Family-wise false-alarm rate over all windows tested (Bonferroni).
    span_seconds : float, optional
        Length of the portfolio's history (default: from ``times``).
    base : BurstBase, optional
        The normal rate and the number of windows tested, from a larger
        portfolio (:func:`burst_base`); default: from ``keys`` and ``times``.
        Each identifier's own rate always comes from its rows given here, so
        they must hold each identifier's whole history.

    Returns
    -------
    DataFrame, one row per clustered application: ``row`` (index label in
    ``keys``), ``key``, ``cluster`` (int), ``pvalue`` and ``expected`` (of the
    cluster's most improbable window) and ``window_count``.

    Example
    -------
    >>> t = pd.Series(pd.to_datetime(["2025-01-01 10:00", "2025-01-01 11:00", "2025-01-01 12:00",
    ...                               "2025-03-01 09:00", "2025-06-01 09:00", "2025-09-01 09:00"], utc=True))
    >>> k = pd.Series(["d1", "d1", "d1", "d2", "d2", "d2"])
    >>> burst_windows(k, t, window_seconds=86400)["key"].tolist()
    ['d1', 'd1', 'd1']

    Notes
    -----
    One sort and one ``searchsorted``: O(n log n) for n applications.
    """
    empty = pd.DataFrame({"row": [], "key": [], "cluster": [], "pvalue": [], "expected": [], "window_count": []})
    if len(keys) <= _FEW_ROWS and not _any_repeated(keys, times, min_apps):
        return empty  # no identifier carries min_apps timed applications: no window can be dense
    frame = _timed_keys(keys, times)
    if frame.empty:
        return empty
    span = float(span_seconds) if span_seconds else float(frame["t"].max() - frame["t"].min())
    span = max(span, float(window_seconds))
    if base is None:
        base = _base_of(frame, min_apps)
    # the portfolio's normal rate per identifier: its applications spread evenly over its history
    portfolio_rate = base.applications / max(base.identifiers, 1) / span
    if len(frame) <= _FEW_ROWS:
        return _windows_few(frame, window_seconds, min_apps, alpha, span, portfolio_rate, base, empty)
    return _windows_grouped(frame, window_seconds, min_apps, alpha, span, portfolio_rate, base, empty)


def _windows_few(
    frame: pd.DataFrame,
    window_seconds: float,
    min_apps: int,
    alpha: float,
    span: float,
    portfolio_rate: float,
    base: BurstBase,
    empty: pd.DataFrame,
) -> pd.DataFrame:
    """:func:`burst_windows`' windows and clusters of a few timed rows with
    numpy and Python loops (pandas' groupbys and sorts cost milliseconds
    each whatever their size): the same arithmetic, the same frame."""
    key = frame["key"].to_numpy(dtype=object)
    counts: dict = {}
    for k in key.tolist():
        counts[k] = counts.get(k, 0) + 1
    keep = np.array([counts[k] >= min_apps for k in key.tolist()], dtype=bool)
    if not keep.any():
        return empty
    key, t, label = key[keep], frame["t"].to_numpy(np.int64)[keep], frame.index.to_numpy()[keep]
    names = sorted(set(key.tolist()))
    code_of = {k: i for i, k in enumerate(names)}
    codes = np.array([code_of[k] for k in key.tolist()], dtype=np.int64)
    order = np.lexsort((t, codes))  # by key, then time; stable
    key, t, label, codes = key[order], t[order], label[order], codes[order]
    t = t - t.min()
    stride = int(t.max()) + int(window_seconds) + 1
    composite = codes * stride + t
    pos = np.arange(len(t))
    end = np.searchsorted(composite, composite + int(window_seconds), side="right")
    count = end - pos
    n_key = np.array([counts[k] for k in key.tolist()], dtype=np.int64)
    own_rate = (n_key - count) / max(span - window_seconds, window_seconds)
    expected = np.maximum(own_rate, portfolio_rate) * window_seconds
    pvalue = poisson.sf(count - 1, expected)
    tested = max(base.tested, 1)
    dense = (count >= min_apps) & (pvalue * tested <= alpha)
    if not dense.any():
        return empty
    d_pos, d_end, d_code = pos[dense], end[dense], codes[dense]
    # merge overlapping windows: a new cluster starts where a window begins after every earlier one ended
    cluster = np.empty(len(d_pos), dtype=np.int64)
    reach: dict = {}
    current = -1
    for j, (p, e, c) in enumerate(zip(d_pos.tolist(), d_end.tolist(), d_code.tolist())):
        if c not in reach or p >= reach[c]:
            current += 1
        cluster[j] = current
        reach[c] = max(reach.get(c, e), e)
    n = current + 1
    starts = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(starts, cluster, d_pos)
    stops = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(stops, cluster, d_end)
    # each cluster's most improbable window (the first of equals)
    p_dense, e_dense, c_dense = pvalue[dense], expected[dense], count[dense]
    best = np.full(n, -1, dtype=np.int64)
    for j, c in enumerate(cluster.tolist()):
        if best[c] < 0 or p_dense[j] < p_dense[best[c]]:
            best[c] = j
    lengths = stops - starts
    member_cluster = np.repeat(np.arange(n), lengths)
    member_pos = np.repeat(starts - np.cumsum(np.r_[0, lengths[:-1]]), lengths) + np.arange(lengths.sum())
    at = best[member_cluster]
    return pd.DataFrame(
        {
            "row": label[member_pos],
            "key": key[member_pos],
            "cluster": member_cluster,
            "pvalue": p_dense[at],
            "expected": e_dense[at],
            "window_count": c_dense[at],
        }
    )


def _windows_grouped(
    frame: pd.DataFrame,
    window_seconds: float,
    min_apps: int,
    alpha: float,
    span: float,
    portfolio_rate: float,
    base: BurstBase,
    empty: pd.DataFrame,
) -> pd.DataFrame:
    """:func:`burst_windows`' windows and clusters with pandas, for any number of rows."""
    size = frame.groupby("key")["t"].transform("size")
    frame = frame[size >= min_apps]
    if frame.empty:
        return empty
    frame = frame.sort_values(["key", "t"], kind="stable")
    codes = pd.factorize(frame["key"], sort=True)[0].astype(np.int64)
    t = frame["t"].to_numpy(np.int64)
    t = t - t.min()
    stride = int(t.max()) + int(window_seconds) + 1
    composite = codes * stride + t
    pos = np.arange(len(frame))
    end = np.searchsorted(composite, composite + int(window_seconds), side="right")
    count = end - pos
    n_key = frame.groupby("key")["t"].transform("size").to_numpy()
    # the identifier's own rate outside the window, floored by the portfolio's rate
    own_rate = (n_key - count) / max(span - window_seconds, window_seconds)
    expected = np.maximum(own_rate, portfolio_rate) * window_seconds
    pvalue = poisson.sf(count - 1, expected)
    # every application of a repeated identifier starts a window that could have been dense
    tested = max(base.tested, 1)
    dense = (count >= min_apps) & (pvalue * tested <= alpha)
    if not dense.any():
        return empty
    d_pos, d_end, d_code = pos[dense], end[dense], codes[dense]
    # merge overlapping windows: a new cluster starts where a window begins after every earlier one ended
    prev_end = pd.Series(d_end).groupby(d_code).cummax().groupby(d_code).shift(1).to_numpy()
    new = np.isnan(prev_end) | (d_pos >= np.nan_to_num(prev_end, nan=-1))
    cluster = np.cumsum(new) - 1
    starts = pd.Series(d_pos).groupby(cluster).min().to_numpy()
    stops = pd.Series(d_end).groupby(cluster).max().to_numpy()
    best = pd.DataFrame({"cluster": cluster, "p": pvalue[dense], "e": expected[dense], "c": count[dense]})
    best = best.sort_values(["cluster", "p"]).drop_duplicates("cluster").set_index("cluster")
    lengths = stops - starts
    member_cluster = np.repeat(np.arange(len(starts)), lengths)
    member_pos = np.repeat(starts - np.cumsum(np.r_[0, lengths[:-1]]), lengths) + np.arange(lengths.sum())
    return pd.DataFrame(
        {
            "row": frame.index.to_numpy()[member_pos],
            "key": frame["key"].to_numpy()[member_pos],
            "cluster": member_cluster,
            "pvalue": best["p"].reindex(member_cluster).to_numpy(),
            "expected": best["e"].reindex(member_cluster).to_numpy(),
            "window_count": best["c"].reindex(member_cluster).to_numpy(),
        }
    )


@dataclass(frozen=True, kw_only=True)
class DeviceVelocity(Detector):
    """Device farms and application bursts per device, IP and IP range.

    Parameters
    ----------
    window_hours : float
        Sliding window in which a burst is counted.
    min_apps : int
        Fewest applications on one identifier in one window for a burst.
    alpha : float
        Family-wise false-alarm rate of the burst test over all windows
        tested; smaller asks for more improbable bursts.
    kinds : tuple of str
        Identifiers watched, among ``device``, ``ip`` and ``ip_range``.
    max_listed : int
        Applications and identifiers listed by name in evidence at most.

    Example
    -------
    >>> import tempfile
    >>> from ringscope.graph.embedded import EmbeddedStore
    >>> DeviceVelocity(min_apps=4).run(EmbeddedStore(tempfile.mkdtemp()))
    []

    Notes
    -----
    Columnar: one sort and ``searchsorted`` per kind, then groupbys over the
    clustered applications only; O(n log n) for n applications.
    """

    name: ClassVar[str] = "device_velocity"
    window_hours: float = param(72.0, kind=numbers.Real, gt=0, le=24 * 90)
    min_apps: int = param(3, ge=2)
    alpha: float = param(1e-3, gt=0, lt=1)
    kinds: tuple[str, ...] = param(("device", "ip", "ip_range"), choices=tuple(_KINDS))
    max_listed: int = param(20, ge=1)

    def statistics(self, portfolio) -> VelocityStatistics:
        """The portfolio's time span and, per kind watched, its normal rate
        and number of windows tested (O(n): one ``value_counts`` per kind).

        Example
        -------
        >>> import tempfile
        >>> from ringscope.graph.embedded import EmbeddedStore
        >>> DeviceVelocity().statistics(EmbeddedStore(tempfile.mkdtemp()))
        VelocityStatistics(span_seconds=0.0, kinds={})
        """
        apps = as_portfolio(portfolio).applications
        if apps.empty:
            return VelocityStatistics(span_seconds=0.0)
        times = apps["applied_at"]
        span = (times.max() - times.min()).total_seconds() if times.notna().any() else 0.0
        kinds = {
            kind: burst_base(apps[_KINDS[kind][0]], times, min_apps=self.min_apps)
            for kind in _KINDS
            if kind in self.kinds
        }
        return VelocityStatistics(span_seconds=float(span), kinds=kinds)

    def scope(self, portfolio, app_ids: Sequence[str], statistics: VelocityStatistics | None = None):
        """The whole history of the devices, IPs and IP ranges of ``app_ids``.

        A cluster is a run of dense windows on one identifier, so one holding
        an application of ``app_ids`` is on that application's identifier;
        its windows' counts and the identifier's own rate outside them read
        that identifier's applications and nothing else (the portfolio's
        rate and the Bonferroni count come from ``statistics``); its evidence
        reads its members' identities and link tables. Other identifiers of
        the applications in scope show only part of their history: their
        clusters hold none of ``app_ids`` and are left to the caller to drop.

        Example
        -------
        >>> import tempfile
        >>> from ringscope.graph.embedded import EmbeddedStore
        >>> from ringscope.detectors.portfolio import Portfolio
        >>> DeviceVelocity().scope(Portfolio(EmbeddedStore(tempfile.mkdtemp())), ["A1"]).applications.shape[0]
        0

        Notes
        -----
        Row maps over the portfolio's applications, built once per
        portfolio (O(n)); each scope then costs its own rows.
        """
        portfolio = as_portfolio(portfolio)
        apps = portfolio.applications
        targets = portfolio.rows_where("applications", "application_id", set(map(str, app_ids)))
        wanted = [targets]
        for kind in self.kinds:
            column = _KINDS[kind][0]
            keys = set(text_list(apps[column].iloc[targets]))
            if keys:
                wanted.append(portfolio.rows_where("applications", column, keys))
        rows = np.unique(np.concatenate(wanted))
        return portfolio.subset(text_list(apps["application_id"].iloc[rows]))

    def around(self, portfolio, app_ids: Sequence[str], statistics: VelocityStatistics | None = None):
        """``[]`` when every device, IP and IP range of ``app_ids`` carries
        fewer than ``min_apps`` applications in the whole history (no window
        on it can be dense), from per-identifier counts taken once per
        portfolio."""
        portfolio = as_portfolio(portfolio)
        held = portfolio.derived.get("velocity_busiest")
        if held is None or held[0] != self.kinds:
            apps = portfolio.applications
            busiest = np.zeros(len(apps), dtype=np.int64)
            for kind in self.kinds:  # per application, the applications on its busiest identifier
                keys = apps[_KINDS[kind][0]].astype(object)
                size = keys.groupby(keys, dropna=True).transform("size")
                busiest = np.maximum(busiest, size.fillna(0).to_numpy(dtype=np.int64))
            keys = portfolio.application_keys()  # the index the portfolio's row maps share
            if keys is None:
                keys = pd.Index(apps["application_id"].astype(str).to_numpy(dtype=object), dtype=object)
            held = (self.kinds, keys, busiest)
            portfolio.derived["velocity_busiest"] = held
        _, rows, busiest = held
        at = rows.get_indexer(pd.Index(list(map(str, app_ids)), dtype=object))
        if not (busiest[at[at >= 0]] >= self.min_apps).any():
            return []
        return None if statistics is None else self._found_around(portfolio, app_ids, statistics)

    def _found_around(self, portfolio, app_ids: Sequence[str], statistics: VelocityStatistics) -> list[Finding] | None:
        """The clusters holding ``app_ids``, from the whole histories of their
        devices, IPs and IP ranges only (the applications :meth:`scope`
        holds, without cutting a sub-portfolio): their windows, each
        identifier's own rate, the clusters holding the applications and
        their members' links. :meth:`run` over the scope also tests the
        partial histories of the other identifiers in it, whose clusters
        hold none of ``app_ids``. ``None`` (scope and run) when the
        statistics lack the history's span or a kind's base rates."""
        if not statistics.span_seconds or any(statistics.kinds.get(kind) is None for kind in self.kinds):
            return None
        apps = portfolio.applications
        holding = set(map(str, app_ids))
        targets = portfolio.rows_where("applications", "application_id", holding)
        history = {}  # per kind, the rows on the applications' own identifiers: each one's whole history
        for kind in self.kinds:
            column = _KINDS[kind][0]
            keys = set(text_list(apps[column].iloc[targets]))
            held = [portfolio.rows_where("applications", column, {key}) for key in sorted(keys)]
            # a busy identifier's windows and clusters only if one of them can hold an application asked
            held = [
                rows
                for rows in held
                if len(rows) <= _BUSY_HISTORY or self._may_hold(apps, rows, targets, kind, statistics)
            ]
            history[kind] = np.sort(np.concatenate(held)) if held else targets[:0]
        rows = np.unique(np.concatenate([targets, *history.values()]))
        # the columns the windows and findings read: a row of every column of the book costs more
        local = apps.iloc[rows, [apps.columns.get_loc(c) for c in _AROUND_COLUMNS]].reset_index(drop=True)
        within = {kind: np.searchsorted(rows, held) for kind, held in history.items()}
        members = self.clusters(local, statistics, within)
        if members is None:
            return []
        held = set(members.loc[in_set(members["application_id"], holding), "cluster"])
        members = members[members["cluster"].isin(held)]
        return self._cluster_findings(portfolio, members, local) if len(members) else []

    def _may_hold(self, apps: pd.DataFrame, rows: np.ndarray, targets: np.ndarray, kind: str, stats) -> bool:
        """Whether a cluster on one identifier's history (``rows`` of ``apps``)
        can hold one of the ``targets`` rows (:func:`covered_by_dense_window`);
        ``True`` when that cannot be told (times without a timezone)."""
        times = apps["applied_at"].iloc[rows]
        if not isinstance(times.dtype, pd.DatetimeTZDtype):
            return True
        return covered_by_dense_window(
            times,
            np.flatnonzero(np.isin(rows, targets)),
            window_seconds=float(self.window_hours) * 3600.0,
            min_apps=self.min_apps,
            alpha=self.alpha,
            span_seconds=stats.span_seconds,
            base=stats.kinds[kind],
        )

    def run(self, source, statistics: VelocityStatistics | None = None) -> list[Finding]:
        portfolio = as_portfolio(source)
        # the whole-portfolio pass (windows over every identifier) runs where the engine runs it
        engine = engine_of(portfolio)
        passes = getattr(engine, "velocity_bursts", None)
        found = (passes or IN_PROCESS.velocity_bursts)(self, portfolio, statistics)
        if found is None:
            return []
        members, apps = found
        return self._cluster_findings(portfolio, members, apps)

    def _cluster_findings(self, portfolio, members: pd.DataFrame, apps: pd.DataFrame) -> list[Finding]:
        """The findings of clustered applications ``members`` (:meth:`clusters`
        of ``apps``), best first. The members' rows are read once, as lists:
        a group-by and a frame per cluster cost more than their few rows."""
        member_rows = np.unique(members["row"].to_numpy())
        taken = {c: values_at(apps[c], member_rows) for c in _FINDING_COLUMNS}
        person = [
            "app:" + str(app) if is_missing(p) else str(p)
            for p, app in zip(taken["person"], taken["application_id"], strict=True)
        ]
        taken["identity"] = portfolio.entity_of(pd.Series(person, dtype=str)).to_numpy(dtype=object).tolist()
        at = {row: i for i, row in enumerate(member_rows.tolist())}
        window = float(self.window_hours) * 3600.0
        shared = self._shared_inside(portfolio, members)
        column = {
            c: members[c].tolist() for c in ("cluster", "row", "kind", "key", "pvalue", "expected", "window_count")
        }
        groups: dict = {}
        for i, cluster in enumerate(column["cluster"]):
            groups.setdefault(cluster, []).append(at[column["row"][i]])

        findings: list[Finding] = []
        seen: dict[tuple[str, ...], int] = {}
        for (cluster_id, group), first in zip(groups.items(), _first_positions(column["cluster"]), strict=True):
            rows = {c: [values[i] for i in group] for c, values in taken.items()}
            ids = tuple(sorted(str(a) for a in rows["application_id"]))
            if ids in seen:  # the same applications on a coarser identifier: one finding, both named
                kept = findings[seen[ids]]
                extra = ("IP", str(column["key"][first])) if column["kind"][first] == "ip" else None
                if extra and extra not in kept.shared:
                    findings[seen[ids]] = _with_shared(kept, extra)
                continue
            seen[ids] = len(findings)
            head = {c: column[c][first] for c in ("kind", "key", "pvalue", "expected", "window_count")}
            findings.append(self._finding(head, rows, shared.get(cluster_id, []), window))
        findings.sort(key=lambda f: (-f.score, f.members))
        return findings

    def bursts(
        self, portfolio, statistics: VelocityStatistics | None = None
    ) -> tuple[pd.DataFrame, pd.DataFrame] | None:
        """The whole-portfolio pass in this process: the clustered applications
        (:meth:`clusters`) and the portfolio's applications their ``row`` points
        into; ``None`` when there is no cluster."""
        apps = portfolio.applications
        if apps.empty:
            return None
        if statistics is None:
            statistics = self.statistics(portfolio)
        apps = apps.reset_index(drop=True)
        members = self.clusters(apps, statistics)
        return None if members is None else (members, apps)

    def clusters(
        self, apps: pd.DataFrame, statistics: VelocityStatistics, within: dict[str, np.ndarray] | None = None
    ) -> pd.DataFrame | None:
        """:func:`burst_windows` per kind watched over ``apps`` (``device``, ``ip``,
        ``ip_prefix``, ``applied_at``, ``application_id``; a ``RangeIndex``), as
        one frame of clustered applications: ``row`` (position in ``apps``),
        ``key``, ``cluster`` (``kind:n``), ``pvalue``, ``expected``,
        ``window_count``, ``kind``, ``application_id``; ``None`` when none.

        ``within``: per kind, the rows of ``apps`` to test, holding each of
        their identifiers' whole history (the Spark engine gives those of the
        identifiers that may hold a dense window); all rows when not given.
        """
        times = apps["applied_at"]
        window = float(self.window_hours) * 3600.0
        clusters = []
        for kind in ("device", "ip", "ip_range"):
            if kind not in self.kinds:
                continue
            keys, at = apps[_KINDS[kind][0]], times
            if within is not None:
                rows = within.get(kind)
                if rows is None or not len(rows):
                    continue
                keys, at = keys.iloc[rows], times.iloc[rows]
            found = burst_windows(
                keys,
                at,
                window_seconds=window,
                min_apps=self.min_apps,
                alpha=self.alpha,
                span_seconds=statistics.span_seconds,
                base=statistics.kinds.get(kind),
            )
            if len(found):
                clusters.append(found.assign(kind=kind, cluster=kind + ":" + found["cluster"].astype(str)))
        if not clusters:
            return None
        members = pd.concat(clusters, ignore_index=True)
        members["application_id"] = apps["application_id"].to_numpy()[members["row"].to_numpy()]
        return members

    # -- helpers ---------------------------------------------------------
    def _shared_inside(self, portfolio, members: pd.DataFrame) -> dict[str, pd.DataFrame | list[tuple[str, str, str]]]:
        """Per cluster, the other identifiers two or more of its applications share."""
        ids = pd.Index(members["application_id"].astype(str).unique())
        engine = engine_of(portfolio)
        few = len(members) <= _FEW_MEMBERS
        if few and engine is IN_PROCESS:  # the links as tuples: a frame of a few rows costs more than its rows
            return _shared_few(members, IN_PROCESS.link_triples(portfolio, _OTHER_KINDS, ids))
        of_kinds = getattr(engine, "links_of_kinds", None)
        links = (of_kinds or IN_PROCESS.links_of_kinds)(portfolio, _OTHER_KINDS, ids)
        if links.empty:
            return {}
        if few:
            triples = zip(links["application_id"].tolist(), links["kind"].tolist(), links["identifier"].tolist())
            return _shared_few(members, list(triples))
        links = links.rename(columns={"kind": "other"})
        joined = members[["cluster", "kind", "application_id"]].merge(links, on="application_id")
        # a device cluster sharing its own device says nothing new
        joined = joined[~((joined["kind"] == "device") & (joined["other"] == "device"))]
        counts = joined.groupby(["cluster", "other", "identifier"])["application_id"].transform("nunique")
        joined = joined[counts >= 2]
        return {c: g for c, g in joined.groupby("cluster", sort=False)}

    def _finding(
        self, head: dict, rows: dict[str, list], shared: pd.DataFrame | list[tuple[str, str, str]], window: float
    ) -> Finding:
        """One cluster's finding: ``head`` its first member's ``kind``, ``key``,
        ``pvalue``, ``expected`` and ``window_count``; ``rows`` its members'
        :data:`_FINDING_COLUMNS` and ``identity``, as lists."""
        kind = head["kind"]
        col, node_label, word = _KINDS[kind]
        key = str(head["key"])
        n = len(rows["application_id"])
        d = len({str(x) for x in rows["identity"]})
        times = [t for t in rows["applied_at"] if not is_missing(t)]
        start, end = min(times), max(times)
        span_days = (end - start).total_seconds() / _DAY
        pvalue = float(head["pvalue"])
        expected = float(head["expected"])
        wcount = int(head["window_count"])
        labelled = sum(x in OUTCOME_LABELS for x in rows["label"])
        bad = sum(x in BAD_LABELS for x in rows["label"])
        n_devices = _nunique(rows["device"])
        when = f"{start:%Y-%m-%d %H:%M} – {end:%Y-%m-%d %H:%M} UTC"
        listed = ", ".join(sorted(str(a) for a in rows["application_id"])[: self.max_listed]) + (
            " …" if n > self.max_listed else ""
        )

        evidence = []
        # many resolved people on one device is the farm signal; on a network it is weaker
        weight = {"device": 0.4, "ip": 0.34, "ip_range": 0.3}[kind]
        c_id = weight * min(1.0, math.log2(d) / 4.0) if d > 1 else 0.0
        if kind != "device" and n > 1:
            # behind a NAT every applicant brings their own device; a studio reuses a few
            reuse = 1.0 - (max(n_devices, 1) - 1) / (n - 1)
            c_id *= 0.5 + 0.5 * reuse
        evidence.append(
            Evidence(
                "distinct_identities",
                c_id,
                f"{word} {key}: {n} applications by {d} distinct applicants (resolved persons) "
                f"on {n_devices} device(s), {when}: {listed}",
                (key, str(start), str(end), n, d),
            )
        )
        strength = -math.log10(max(pvalue, 1e-300))
        c_burst = 0.25 * min(1.0, strength / 30.0)
        evidence.append(
            Evidence(
                "burst_compactness",
                c_burst,
                f"{wcount} applications on {word} {key} within {window / 3600:.0f} h (cluster spans {span_days:.1f} days); "
                f"its own history and the portfolio's rate predict {expected:.3g} per window (Poisson p={pvalue:.2g})",
                (wcount, round(expected, 6), pvalue, round(span_days, 3)),
            )
        )
        c_size = 0.1 * min(1.0, math.log2(n / self.min_apps + 1.0) / 3.0)
        evidence.append(Evidence("burst_size", c_size, f"{n} applications in the cluster on {word} {key}", (n,)))
        shared_nodes: list[tuple[str, str]] = [(node_label, key)] if kind != "ip_range" else []
        if kind == "ip_range":
            shared_nodes += [("IP", ip) for ip in _texts(rows["ip"])[: self.max_listed]]
        c_shared = 0.0
        if len(shared):
            sharing, top = _top_shared(shared)
            c_shared = 0.15 * sharing / n
            what = "; ".join(f"{o} {i} ({c} apps)" for o, i, c in top)
            evidence.append(
                Evidence(
                    "shared_identifiers",
                    c_shared,
                    f"{sharing} of {n} applications also share another identifier inside the cluster: {what}",
                    tuple(f"{o}:{i}" for o, i, _ in top),
                )
            )
            shared_nodes += [(_LABEL_OF[o], str(i)) for o, i, _ in top]
        if bad:
            c_bad = 0.2 * min(1.0, 2.0 * bad / max(labelled, 1))
            evidence.append(
                Evidence(
                    "known_bad_members",
                    c_bad,
                    f"{bad} of {labelled} labelled applications in the cluster are fraud or default",
                    (bad, labelled),
                )
            )
        kind_name = "device_farm" if kind == "device" and d >= self.min_apps else f"{kind}_burst"
        entities = tuple(("Person", p) for p in _texts(rows["person"]))
        summary = (
            f"{word} {key} used by {d} applicants in {n} applications within {max(span_days, 0.0):.1f} days "
            f"({start:%Y-%m-%d})" + (f", {bad} fraud/default" if bad else "")
        )
        return Finding.from_evidence(
            self.name,
            kind_name,
            tuple(sorted(str(a) for a in rows["application_id"])),
            evidence,
            parameters=self.params(),
            summary=summary,
            entities=entities,
            shared=tuple(dict.fromkeys(shared_nodes)),
        )


#: the applications' columns a cluster's finding reads (:meth:`DeviceVelocity._finding`)
_FINDING_COLUMNS = ("application_id", "applied_at", "label", "device", "ip", "person")
#: the applications' columns :meth:`DeviceVelocity.clusters` and its findings read
_AROUND_COLUMNS = (*_FINDING_COLUMNS, "ip_prefix")


def _first_positions(values: list) -> list[int]:
    """The position of each distinct value's first occurrence, in order."""
    first: dict = {}
    for i, v in enumerate(values):
        first.setdefault(v, i)
    return list(first.values())


def _nunique(values: list) -> int:
    """Distinct non-missing values (``Series.nunique``)."""
    return len({v for v in values if not is_missing(v)})


def _texts(values: list) -> list[str]:
    """The distinct non-missing values as text, sorted (``sorted(s.dropna().astype(str).unique())``)."""
    return sorted({str(v) for v in values if not is_missing(v)})


#: up to this many clustered applications, their shared identifiers are found in plain Python
#: (a merge and two group-bys cost milliseconds whatever their size)
_FEW_MEMBERS = 2_000


def _shared_few(members: pd.DataFrame, links: list[tuple]) -> dict[str, list[tuple[str, str, str]]]:
    """:meth:`DeviceVelocity._shared_inside` for a few clustered applications
    and their ``links`` (application, kind, identifier): per cluster, its
    (other kind, identifier, application) rows on identifiers two or more of
    its applications share, in the merge's order."""
    by_app: dict[str, list[tuple[str, str]]] = {}
    for app, kind, ident in links:
        if isinstance(ident, str):  # a missing identifier groups with nothing
            by_app.setdefault(app, []).append((kind, ident))
    joined: dict[str, list[tuple[str, str, str]]] = {}
    for cluster, kind, app in zip(
        members["cluster"].tolist(), members["kind"].tolist(), members["application_id"].tolist(), strict=True
    ):
        rows = joined.setdefault(cluster, [])
        for other, ident in by_app.get(app, ()):
            if not (kind == "device" and other == "device"):  # a device cluster sharing its own device
                rows.append((other, ident, app))
    out = {}
    for cluster, rows in joined.items():
        apps_on: dict[tuple[str, str], set[str]] = {}
        for other, ident, app in rows:
            apps_on.setdefault((other, ident), set()).add(app)
        kept = [r for r in rows if len(apps_on[r[0], r[1]]) >= 2]
        if kept:
            out[cluster] = kept
    return out


def _top_shared(shared: pd.DataFrame | list[tuple[str, str, str]]) -> tuple[int, list[tuple[str, str, int]]]:
    """How many applications share another identifier inside a cluster, and
    the five identifiers most of them share: (kind, identifier, applications),
    most first, ties as pandas' descending sort leaves them (its quicksort,
    on the group-by's sorted keys). ``shared``: a frame (``other``,
    ``identifier``, ``application_id``) or :func:`_shared_few`'s rows."""
    if isinstance(shared, pd.DataFrame):
        sharing = int(shared["application_id"].nunique())
        top = shared.groupby(["other", "identifier"])["application_id"].nunique().sort_values(ascending=False).head(5)
        return sharing, [(o, i, int(c)) for (o, i), c in top.items()]
    apps_on: dict[tuple[str, str], set[str]] = {}
    for other, ident, app in shared:
        apps_on.setdefault((other, ident), set()).add(app)
    keys = sorted(apps_on)
    counts = np.array([len(apps_on[k]) for k in keys], dtype=np.int64)
    # pandas' nargsort, descending: reverse, sort, reverse (the same numpy sort, the same ties)
    reverse = np.arange(len(keys))[::-1]
    order = reverse[counts[::-1].argsort(kind="quicksort")][::-1][:5]
    return len({app for _, _, app in shared}), [(keys[j][0], keys[j][1], int(counts[j])) for j in order]


def _with_shared(finding: Finding, extra: tuple[str, str]) -> Finding:
    from dataclasses import replace

    return replace(finding, shared=finding.shared + (extra,))
