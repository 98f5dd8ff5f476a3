"""Plausible ranges for ingested values, and the reject reasons for values outside them.

One absurd value (an application dated 9999-12-31, an amount of 400 nines
that parses as infinity) must not reach the store: every whole-portfolio job
would carry it. :class:`IngestLimits` holds the ranges; ``ringscope ingest``
and ``ringscope flag`` expose them as ``--applied-from``, ``--applied-to`` and
``--max-amount``.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["IngestLimits", "LOCAL_TZ"]

#: the contract's local time (naive applied_at values are in it)
LOCAL_TZ = "Asia/Shanghai"


@dataclass(frozen=True)
class IngestLimits:
    """Ranges outside which a row is rejected (with a reason naming the range).

    Parameters
    ----------
    applied_from : datetime.date
        Earliest ``applied_at`` day (Asia/Shanghai), default 1990-01-01.
    applied_to : datetime.date or None
        Latest ``applied_at`` day, inclusive. None (default): tomorrow in
        Asia/Shanghai when the ingest runs (one day of slack for clocks).
    max_amount : float
        Upper bound in CNY for the application amount, the guarantee amount
        and declared monthly revenue/income; default 1e10 (100亿). Values must
        also be finite.
    max_term_months : int
        ``term_months``, when given, must be a whole number in 1..this;
        default 600 (50 years).

    Example
    -------
    >>> IngestLimits(applied_to=dt.date(2026, 1, 1)).window_text()
    '1990-01-01 to 2026-01-01'
    >>> IngestLimits(max_amount=0)
    Traceback (most recent call last):
    ...
    ValueError: The 'max_amount' parameter of IngestLimits must be a finite number > 0. Got 0 instead.
    """

    applied_from: dt.date = dt.date(1990, 1, 1)
    applied_to: dt.date | None = None
    max_amount: float = 1e10
    max_term_months: int = 600

    def __post_init__(self) -> None:
        def bad(name: str, expected: str) -> None:
            raise ValueError(
                f"The {name!r} parameter of IngestLimits must be {expected}. Got {getattr(self, name)!r} instead."
            )

        if not isinstance(self.applied_from, dt.date) or isinstance(self.applied_from, dt.datetime):
            bad("applied_from", "a datetime.date")
        if self.applied_to is not None:
            if not isinstance(self.applied_to, dt.date) or isinstance(self.applied_to, dt.datetime):
                bad("applied_to", "a datetime.date or None")
            if self.applied_to < self.applied_from:
                bad("applied_to", f"on or after applied_from ({self.applied_from})")
        if (
            isinstance(self.max_amount, bool)
            or not isinstance(self.max_amount, (int, float))
            or not math.isfinite(self.max_amount)
            or self.max_amount <= 0
        ):
            bad("max_amount", "a finite number > 0")
        if (
            isinstance(self.max_term_months, bool)
            or not isinstance(self.max_term_months, int)
            or self.max_term_months < 1
        ):
            bad("max_term_months", "an int >= 1")

    @property
    def last_day(self) -> dt.date:
        """The latest accepted day (``applied_to`` or tomorrow in Asia/Shanghai)."""
        if self.applied_to is not None:
            return self.applied_to
        return pd.Timestamp.now(tz=LOCAL_TZ).date() + dt.timedelta(days=1)

    def window(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """[start, end) in UTC: local midnight of ``applied_from`` to the
        local midnight after the last day."""
        start = pd.Timestamp(self.applied_from).tz_localize(LOCAL_TZ).tz_convert("UTC")
        end = (pd.Timestamp(self.last_day) + pd.Timedelta(days=1)).tz_localize(LOCAL_TZ).tz_convert("UTC")
        return start, end

    def window_text(self) -> str:
        return f"{self.applied_from.isoformat()} to {self.last_day.isoformat()}"

    def outside_window(self, applied_at: pd.Series) -> pd.Series:
        """True where a parsed (UTC) ``applied_at`` lies outside the window."""
        start, end = self.window()
        values = applied_at.dt.tz_convert("UTC")
        return applied_at.notna() & ((values < start) | (values >= end))

    def amount_too_large(self, values: pd.Series) -> pd.Series:
        """True where an amount is infinite or above ``max_amount`` (NaN: False)."""
        v = values.to_numpy(dtype=np.float64, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            return pd.Series(np.isinf(v) | (v > self.max_amount), index=values.index)

    def bad_term(self, values: pd.Series) -> pd.Series:
        """True where a given ``term_months`` is not a whole number in 1..max (NaN: True)."""
        v = values.to_numpy(dtype=np.float64, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(v) & (np.floor(v) == v) & (v >= 1) & (v <= self.max_term_months)
        return pd.Series(~ok, index=values.index)

    def amount_text(self) -> str:
        return f"{self.max_amount:,.0f}"
