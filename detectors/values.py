"""Reading stored values that whole-portfolio jobs compute with.

Ingest checks ranges on new rows, but a store may already hold a date of
9999-12-31 or an amount of ``inf`` (an older ingest, or another tool writing
the Parquet tables or the Neo4j graph). One such value must never make
``detect``, ``train`` or ``flag`` fail for the whole portfolio, so every
temporal and money column the detectors use is read through this module:
a value outside the plausible range becomes missing, and the rows affected
are counted in a :class:`BadValues` that the run reports as a warning
("3 applications with applied_at outside 1900–2262 read as missing: ...").

The time window is 1900-01-01 to 2262-04-11 UTC: nothing in a lending book
is older, and every timestamp inside it fits pandas' nanosecond arithmetic
(which is where out-of-range dates used to raise ``OutOfBoundsDatetime``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "BadValues",
    "TIME_WINDOW",
    "AMOUNT_LIMIT",
    "TERM_LIMIT",
    "read_times",
    "read_amounts",
]

#: the plausible instants: older or later values are read as missing
TIME_WINDOW = (pd.Timestamp("1900-01-01"), pd.Timestamp.max.floor("D"))
#: the largest plausible money figure in CNY (a trillion; loans and monthly figures are far below)
AMOUNT_LIMIT = 1e12
#: the longest plausible loan term in months
TERM_LIMIT = 1200.0
_UNIT = "us"  # the stores' unit


@dataclass(frozen=True)
class BadValues:
    """Rows of one column whose stored values were read as missing.

    Example
    -------
    >>> BadValues("applications", "applied_at", 3, "outside 1900–2262", "left out of bursts").message
    '3 applications with applied_at outside 1900–2262 read as missing (left out of bursts)'
    """

    rows: str  # what the rows are, plural ("applications", "guarantees")
    column: str
    count: int
    reason: str
    effect: str = ""

    @property
    def message(self) -> str:
        what = self.rows if self.count != 1 else self.rows.rstrip("s")
        text = f"{self.count:,} {what} with {self.column} {self.reason} read as missing"
        return text + (f" ({self.effect})" if self.effect else "")

    def __str__(self) -> str:
        return self.message


def _window_text() -> str:
    return f"outside {TIME_WINDOW[0].year}–{TIME_WINDOW[1].year}"


def read_times(
    values: pd.Series, *, utc: bool = True, rows: str = "rows", column: str | None = None, effect: str = ""
) -> tuple[pd.Series, list[BadValues]]:
    """Stored instants as ``datetime64[us]`` (UTC if ``utc``), values outside
    :data:`TIME_WINDOW` and values that are not instants as NaT.

    Accepts what either store returns (datetime64 of any unit, with or
    without a zone) and, for stores written by other tools, Python datetimes
    or ISO text. Naive values are taken as UTC.

    Parameters
    ----------
    values : Series
    utc : bool
        Zone-aware UTC result (``applied_at``) or naive (``birth_date``).
    rows, column, effect : str
        Words for the warning: what the rows are, the column, what missing means.

    Returns
    -------
    The cleaned series (same index) and the warnings (empty when all is well).

    Example
    -------
    >>> s = pd.Series(pd.to_datetime(["2025-01-05", "9999-12-31", None]).as_unit("us"))
    >>> clean, bad = read_times(s, rows="applications", column="applied_at")
    >>> clean.isna().tolist(), [b.count for b in bad]
    ([False, True, True], [1])

    Notes
    -----
    Vectorised: one comparison of the integer values; O(n).
    """
    column = column or str(values.name)
    present = values.notna().to_numpy()
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = values
    else:
        parsed = pd.to_datetime(
            values.astype(object).where(pd.notna(values), None), utc=True, errors="coerce", format="mixed"
        )
    if getattr(parsed.dtype, "tz", None) is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    unit = np.datetime_data(parsed.dtype)[0]
    raw = parsed.to_numpy(dtype=f"datetime64[{unit}]")
    readable = ~np.isnat(raw)
    low, high = (np.datetime64(t.to_datetime64(), unit) for t in TIME_WINDOW)
    inside = readable & (raw >= low) & (raw <= high)
    out = np.where(inside, raw, np.datetime64("NaT", unit)).astype(f"datetime64[{_UNIT}]")
    clean = pd.Series(out, index=values.index, name=values.name)
    if utc:
        clean = clean.dt.tz_localize("UTC")
    bad = []
    outside = int((readable & ~inside).sum())
    unreadable = int((present & ~readable).sum())
    if outside:
        bad.append(BadValues(rows, column, outside, _window_text(), effect))
    if unreadable:
        bad.append(BadValues(rows, column, unreadable, "that is not a date", effect))
    return clean, bad


def read_amounts(
    values: pd.Series, *, limit: float = AMOUNT_LIMIT, rows: str = "rows", column: str | None = None, effect: str = ""
) -> tuple[pd.Series, list[BadValues]]:
    """Stored figures as float, with non-finite values (``inf``, ``nan``
    text) and values beyond ``±limit`` as NaN.

    Example
    -------
    >>> clean, bad = read_amounts(pd.Series([5e4, float("inf"), 1e30, None]), rows="applications", column="amount")
    >>> clean.tolist()[:1], clean.isna().tolist(), bad[0].message
    ([50000.0], [False, True, True, True], '2 applications with amount not finite or beyond ±1e+12 read as missing')

    Notes
    -----
    Vectorised; O(n).
    """
    column = column or str(values.name)
    present = values.notna().to_numpy()
    numbers = pd.to_numeric(values, errors="coerce").astype(float)
    x = numbers.to_numpy(dtype=float, na_value=np.nan)
    with np.errstate(invalid="ignore"):
        plausible = np.isfinite(x) & (np.abs(x) <= limit)
    clean = pd.Series(np.where(plausible, x, np.nan), index=values.index, name=values.name)
    absurd = int((present & ~plausible).sum())
    bad = [BadValues(rows, column, absurd, f"not finite or beyond ±{limit:g}", effect)] if absurd else []
    return clean, bad
