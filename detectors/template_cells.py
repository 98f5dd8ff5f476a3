"""Template cells: an agent's applications crowded into one time window and figure band.

A broker packaging applications from a template submits, within days,
applicants whose declared figures sit in one narrow band. This module
counts each agent's applications on shifted (time window × log-figure band)
grids and keeps the cells whose count the agent's own habits outside the
window, shrunk towards the portfolio's figure distribution, make
improbable (binomial tail, Bonferroni over every cell tested).
:class:`~ringscope.detectors.brokers.BrokerRings` builds its candidates from
them; :func:`cell_reference` keeps the portfolio-wide counts so that a
nightly batch is judged as the whole book would judge it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import binom

__all__ = [
    "GRID_OFFSETS",
    "CellReference",
    "cell_reference",
    "grid_bins",
    "group_codes",
    "positions_in",
    "template_cells",
]


@dataclass(frozen=True)
class CellReference:
    """The figures :func:`template_cells` judges a cell by beyond its own time window.

    ``applications`` with an agent, a time and a figure (the population),
    ``tested`` non-empty cells over the four grids (the Bonferroni count),
    ``agents`` (agent → its applications), and per figure-grid offset
    (0.0, 0.5) the applications per figure band, ``population``, and per
    (agent, band), ``bands``. See :func:`cell_reference`.
    """

    applications: int
    tested: int
    agents: pd.Series
    bands: dict[float, pd.Series]
    population: dict[float, pd.Series]


#: each grid also shifted by half a cell, so a burst straddling a cell edge is whole in one of them
GRID_OFFSETS = (0.0, 0.5)


def _cell_frame(agent: pd.Series, days: pd.Series, log_figure: pd.Series) -> pd.DataFrame:
    ok = agent.notna() & days.notna() & log_figure.notna()
    return pd.DataFrame(
        {"agent": agent[ok].astype(str), "t": days[ok].astype(float), "f": log_figure[ok].astype(float)}
    )


def grid_bins(values: np.ndarray, width: float, offset: float) -> np.ndarray:
    """Cell index of each value on a grid of ``width`` shifted by ``offset`` cells.

    >>> grid_bins(np.array([0.0, 6.9, 7.0, 10.6]), 7.0, 0.5).tolist()
    [0, 1, 1, 2]
    """
    return np.floor(values / width + offset).astype(np.int64)


def group_codes(*columns: np.ndarray) -> tuple[np.ndarray, int]:
    """Dense group codes of the rows over integer ``columns``, and the number of groups.

    >>> codes, n = group_codes(np.array([1, 1, 2]), np.array([5, 6, 5]))
    >>> codes.tolist(), n
    ([0, 1, 2], 3)
    """
    key = np.zeros(len(columns[0]), dtype=np.int64)
    for column in columns:
        codes, uniques = pd.factorize(column)
        key, _ = pd.factorize(key * len(uniques) + codes)
    return key, (int(key.max()) + 1 if len(key) else 0)


def _sizes(*columns: np.ndarray) -> np.ndarray:
    """Per row, how many rows share its values in all ``columns``."""
    codes, n = group_codes(*columns)
    return np.bincount(codes, minlength=n)[codes]


def _cell_grids(frame: pd.DataFrame, window_days: float, band: float):
    """Per grid (time offset, figure offset): time bins, figure bins, agent codes."""
    agents = pd.factorize(frame["agent"])[0]
    for dt in GRID_OFFSETS:
        tbin = grid_bins(frame["t"].to_numpy(), window_days, dt)
        for df in GRID_OFFSETS:
            yield dt, df, agents, tbin, grid_bins(frame["f"].to_numpy(), band, df)


def cell_reference(
    agent: pd.Series, days: pd.Series, log_figure: pd.Series, *, window_days: float, band: float
) -> CellReference:
    """The portfolio-wide figures of :func:`template_cells` (same arguments).

    Example
    -------
    >>> ref = cell_reference(pd.Series(["A", "A", "B"]), pd.Series([0.0, 1.0, 30.0]),
    ...                      pd.Series(np.log([100.0, 101.0, 500.0])), window_days=7, band=0.05)
    >>> ref.applications, ref.tested, ref.agents.to_dict()
    (3, 8, {'A': 2, 'B': 1})

    Notes
    -----
    Counting over integer codes on four grids: O(n log n) for n applications.
    """
    frame = _cell_frame(agent, days, log_figure)
    tested, bands, population = 0, {}, {}
    for dt, df, agents, tbin, fbin in _cell_grids(frame, window_days, band):
        tested += group_codes(agents, tbin, fbin)[1]
        if dt == 0.0:
            keys = pd.DataFrame({"agent": frame["agent"].to_numpy(), "fb": fbin})
            bands[df] = keys.groupby(["agent", "fb"]).size()
            population[df] = keys.groupby("fb").size()
    return CellReference(
        applications=len(frame), tested=tested, agents=frame.groupby("agent").size(), bands=bands, population=population
    )


def positions_in(values: pd.Series, index: pd.Index) -> np.ndarray:
    """Position of each value in ``index`` (-1 if absent): Arrow's hash
    lookup, several times faster than pandas' on text."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        found = pc.index_in(pa.array(values.astype(str)), value_set=pa.array(index.astype(str)))
        return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return index.get_indexer(values)


def _looked_up(reference: pd.Series, keys, local: np.ndarray) -> np.ndarray:
    """``reference`` at ``keys``; where it has no entry (a key it was not
    computed with), the ``local`` count from the rows at hand."""
    found = reference.reindex(keys).to_numpy(dtype=float)
    return np.where(np.isnan(found), local, found)


def template_cells(
    agent: pd.Series,
    days: pd.Series,
    log_figure: pd.Series,
    *,
    window_days: float,
    band: float,
    min_apps: int = 4,
    alpha: float = 1e-3,
    prior_weight: float = 20.0,
    reference: CellReference | None = None,
) -> pd.DataFrame:
    """Cells (agent, time window, figure band) holding improbably many applications.

    For each of four shifted grids (time and figure offset by half a cell),
    the count ``c`` of a cell is compared with the ``n_t`` applications the
    agent has in that time window: under no template, each falls in the
    figure band with probability ``q`` = (the agent's applications in the
    band outside the cell + ``prior_weight`` × the portfolio's share of the
    band) / (the agent's applications outside the window + ``prior_weight``).
    Cells with binomial tail × number of cells tested <= ``alpha`` are kept.

    Parameters
    ----------
    agent, days, log_figure : Series
        Agent key, time in days and log declared figure per application (same index; NA rows ignored).
    window_days : float
        Width of a time cell.
    band : float
        Width of a figure cell in log units (0.05 ≈ figures within 5 %).
    min_apps : int
        Fewest applications in a cell.
    alpha : float
        Family-wise false-alarm rate (Bonferroni over all non-empty cells).
    prior_weight : float
        Pseudo-count of the portfolio's figure distribution in each agent's.
    reference : CellReference, optional
        The agents' totals and band counts, the population's band shares and
        the number of cells tested, from a larger portfolio
        (:func:`cell_reference`); default: from the rows given. A cell's own
        count and its window's always come from the rows given, so they must
        hold the whole time window of every cell that matters.

    Returns
    -------
    DataFrame ``row`` (index label), ``cell`` (int), ``pvalue``, ``count``, ``n_window``, ``q``.

    Example
    -------
    >>> ag = pd.Series(["A"] * 6 + ["B"] * 6)
    >>> d = pd.Series([0, 0.5, 1, 1.5, 2, 2.5] + [0, 40, 80, 120, 160, 200])
    >>> f = pd.Series(np.log([30000, 30100, 29900, 30050, 30000, 29950] + [8000, 9000, 12000, 5000, 7000, 20000]))
    >>> sorted(set(template_cells(ag, d, f, window_days=7, band=0.05, min_apps=4, alpha=0.5)["row"]))
    [0, 1, 2, 3, 4, 5]

    Notes
    -----
    Counting over integer codes on four grids: O(n log n) for n applications.
    """
    frame = _cell_frame(agent, days, log_figure)
    cols = ["row", "cell", "pvalue", "count", "n_window", "q"]
    if len(frame) < min_apps:
        return pd.DataFrame(columns=cols)
    names = frame["agent"].to_numpy()
    found, tested, n_total, agent_n = [], 0, len(frame), None
    if reference is not None:
        n_total = max(reference.applications, 1)
    for dt, df, agents, tbin, fbin in _cell_grids(frame, window_days, band):
        if agent_n is None:
            agent_n = _sizes(agents)
            if reference is not None:
                agent_n = _looked_up(reference.agents, names, agent_n)
        cell, n_cells = group_codes(agents, tbin, fbin)
        tested += n_cells
        cell_n = np.bincount(cell, minlength=n_cells)[cell]
        window_n = _sizes(agents, tbin)
        band_n = _sizes(agents, fbin)
        pop_n = _sizes(fbin)
        if reference is not None:
            band_n = _looked_up(reference.bands[df], pd.MultiIndex.from_arrays([names, fbin]), band_n)
            pop_n = _looked_up(reference.population[df], fbin, pop_n)
        pop_share = pop_n / n_total
        # the agent's habits outside this window, shrunk to the portfolio's
        q = (band_n - cell_n + prior_weight * pop_share) / (agent_n - window_n + prior_weight)
        q = np.clip(q, 1e-9, 1.0)
        p = binom.sf(cell_n - 1, window_n, q)
        found.append(
            pd.DataFrame(
                {
                    "row": frame.index.to_numpy(),
                    "cell": cell,
                    "grid": int(2 * dt + 4 * df),
                    "pvalue": p,
                    "count": cell_n,
                    "n_window": window_n,
                    "q": q,
                    "big": cell_n >= min_apps,
                }
            )
        )
    if reference is not None:
        tested = reference.tested
    cells = pd.concat(found, ignore_index=True)
    cells = cells[cells["big"] & (cells["pvalue"] * max(tested, 1) <= alpha)]
    if cells.empty:
        return pd.DataFrame(columns=cols)
    cells["cell"] = pd.factorize(cells["grid"].astype(str) + ":" + cells["cell"].astype(str))[0]
    return cells[cols].reset_index(drop=True)
