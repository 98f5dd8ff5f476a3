"""Timestamps to tz-aware UTC (naive values are Asia/Shanghai time)."""

from __future__ import annotations

import datetime as _dt
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ringscope.ingest.normalize.text import (
    _LOCAL_TZ,
    _clean,
    _clean_one,
    _expand_np,
    _factorize,
    _to_np_bool,
)

__all__ = ["parse_datetimes"]

_NAIVE_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M",
)
_OFFSET_RE = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,9})?)?(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)$"
)
_YEAR_FIRST_RE = re.compile(r"^[0-9]{4}(?:[^0-9]|[0-9]{4}(?:$|[^0-9]))")
_UNIT = "us"
#: dateutil defaults differing in year, month and day (see ``_datetime_one``)
_PARTIAL_PROBES = (_dt.datetime(2000, 1, 1), _dt.datetime(2001, 2, 2))


def _localize(ts: pd.Series) -> pd.Series:
    return ts.dt.tz_localize(
        _LOCAL_TZ, ambiguous=np.zeros(len(ts), dtype=bool), nonexistent="shift_forward"
    ).dt.tz_convert("UTC")


def _datetime_one(value) -> pd.Timestamp:
    """Reference for one timestamp (UTC, NaT when unparseable)."""
    s = _clean_one(value)
    if s is None:
        return pd.NaT
    try:
        if re.match(_OFFSET_RE, s):
            return pd.Timestamp(pd.to_datetime(s, format="ISO8601", utc=True)).as_unit(_UNIT)
        naive = None
        for fmt in _NAIVE_FORMATS:
            try:
                naive = _dt.datetime.strptime(s, fmt)
                break
            except ValueError:
                continue
        if naive is None:
            t = re.sub("[年月/.]", "-", s)
            t = re.sub("日|号", " ", t)
            t = re.sub("[时点分]", ":", t).replace("秒", "").strip(" :")
            if not _YEAR_FIRST_RE.match(t):
                return pd.NaT
            from dateutil import parser

            # dateutil fills a missing day or month from its default (today, unless given):
            # "2025年" would become a different date on every run. Two defaults that differ
            # in every date field tell a full date from a partial one, which is no date.
            naive = parser.parse(t, yearfirst=True, dayfirst=False, default=_PARTIAL_PROBES[0])
            other = parser.parse(t, yearfirst=True, dayfirst=False, default=_PARTIAL_PROBES[1])
            if naive.date() != other.date():
                return pd.NaT
            if naive.tzinfo is not None:
                return pd.Timestamp(naive).tz_convert("UTC").as_unit(_UNIT)
        ts = pd.Timestamp(naive).tz_localize(_LOCAL_TZ, ambiguous=False, nonexistent="shift_forward")
        return ts.tz_convert("UTC").as_unit(_UNIT)
    except Exception:
        return pd.NaT


_DT_FAST_RE = (
    r"^(?P<y>[0-9]{4})(?P<s1>[-/])(?P<m>0?[1-9]|1[0-2])(?P<s2>[-/])(?P<d>0?[1-9]|[12][0-9]|3[01])"
    r"(?:(?P<t>[ T])(?P<H>[01]?[0-9]|2[0-3]):(?P<M>[0-5][0-9])(?::(?P<S>[0-5][0-9])(?:\.(?P<f>[0-9]{1,6}))?)?"
    r"(?P<z>Z|[+-](?:0[0-9]|1[0-4])(?::?[0-5][0-9])?)?)?$"
)


def _int_field(parts, name: str, default: int = 0) -> np.ndarray:
    field = pc.struct_field(parts, [list(_DT_FAST_GROUPS).index(name)])
    field = pc.if_else(pc.equal(field, ""), pa.scalar(None, pa.string()), field)
    return np.asarray(pc.fill_null(pc.cast(field, pa.int64()), default).to_numpy(zero_copy_only=False), dtype=np.int64)


_DT_FAST_GROUPS = ("y", "s1", "m", "s2", "d", "t", "H", "M", "S", "f", "z")


def _fast_datetimes(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised parse of the common forms: (settled mask, UTC datetime64[us]).

    Settles ``Y-M-D``, ``Y/M/D``, ``Y-M-D[ T]H:MM:SS``, ``Y-M-D H:MM``,
    ``Y/M/D H:MM[:SS]`` (Shanghai local time) and ISO 8601 with an offset;
    everything else (and impossible dates) is left to the reference parser.
    """
    n = len(arr)
    if n == 0:
        return np.zeros(0, dtype=bool), np.zeros(0, dtype="datetime64[us]")
    # (the unit here is _UNIT: microseconds)
    parts = pc.extract_regex(pc.fill_null(arr, ""), _DT_FAST_RE)
    matched = _to_np_bool(pc.is_valid(parts)) & _to_np_bool(pc.is_valid(arr))
    if not matched.any():
        return matched, np.full(n, np.datetime64("NaT"), dtype="datetime64[us]")

    def text(name):
        return pc.fill_null(pc.struct_field(parts, [_DT_FAST_GROUPS.index(name)]), "")

    s1, s2, t, z, f, sec = text("s1"), text("s2"), text("t"), text("z"), text("f"), text("S")
    has = {k: _to_np_bool(pc.not_equal(v, "")) for k, v in (("t", t), ("z", z), ("f", f), ("S", sec))}
    slash = _to_np_bool(pc.equal(s1, "/"))
    ok = matched & _to_np_bool(pc.equal(s1, s2))
    tee = _to_np_bool(pc.equal(t, "T"))
    # naive forms exactly as in _NAIVE_FORMATS; offsets only on full ISO dash forms
    naive_ok = ~has["z"] & ~has["f"] & (~has["t"] | (slash & ~tee) | (~slash & (has["S"] | ~tee)))
    offset_ok = has["z"] & ~slash
    ok &= naive_ok | offset_ok
    y, m, d = _int_field(parts, "y"), _int_field(parts, "m", 1), _int_field(parts, "d", 1)
    ym = (y - 1970) * 12 + (m - 1)
    day = ym.astype("datetime64[M]").astype("datetime64[D]") + (d - 1).astype("timedelta64[D]")
    ok &= day.astype("datetime64[M]").astype(np.int64) == ym
    frac = pc.utf8_rpad(f, 6, "0")
    micros = np.asarray(
        pc.fill_null(pc.cast(pc.if_else(pc.not_equal(f, ""), frac, "0"), pa.int64()), 0).to_numpy(zero_copy_only=False)
    )
    secs = _int_field(parts, "H") * 3600 + _int_field(parts, "M") * 60 + _int_field(parts, "S")
    local = day.astype("datetime64[us]") + (secs * 1_000_000 + micros).astype("timedelta64[us]")
    # offsets: Z, +hh, +hhmm, +hh:mm
    zs = pc.replace_substring(z, ":", "")
    sign = np.where(_to_np_bool(pc.starts_with(zs, "-")), -1, 1)
    zh = np.asarray(
        pc.fill_null(
            pc.cast(
                pc.if_else(pc.greater_equal(pc.utf8_length(zs), 3), pc.utf8_slice_codeunits(zs, 1, 3), "0"), pa.int64()
            ),
            0,
        ).to_numpy(zero_copy_only=False)
    )
    zm = np.asarray(
        pc.fill_null(
            pc.cast(pc.if_else(pc.equal(pc.utf8_length(zs), 5), pc.utf8_slice_codeunits(zs, 3, 5), "0"), pa.int64()), 0
        ).to_numpy(zero_copy_only=False)
    )
    offset_us = (sign * (zh * 3600 + zm * 60) * 1_000_000).astype("timedelta64[us]")
    utc = np.where(offset_ok, local - offset_us, np.datetime64("NaT", "us"))
    naive = ok & ~offset_ok
    # Shanghai has been UTC+8 without DST since 1992: only older times need tzdata
    recent = naive & (local >= np.datetime64("1992-01-01", "us"))
    utc[recent] = local[recent] - np.timedelta64(8 * 3600 * 1_000_000, "us")
    naive &= ~recent
    if naive.any():
        loc = pd.Series(local[naive]).dt.tz_localize(
            _LOCAL_TZ, ambiguous=np.zeros(int(naive.sum()), dtype=bool), nonexistent="shift_forward"
        )
        utc[naive] = loc.dt.tz_convert("UTC").dt.tz_localize(None).dt.as_unit("us").to_numpy()
    return ok, utc


def parse_datetimes(values: pd.Series) -> pd.Series:
    """Timestamps to tz-aware UTC; naive values are Asia/Shanghai time.

    Accepts ISO 8601 with or without an offset (``Z``, ``+08:00``),
    ``YYYY-MM-DD HH:MM:SS``, ``YYYY-MM-DD``, ``YYYY/MM/DD``,
    ``YYYY/MM/DD HH:MM``, full-width digits, and (slow path) other year-first
    forms such as ``2024年1月5日``. Anything else is NaT.

    Parameters
    ----------
    values : pandas.Series of str

    Returns
    -------
    pandas.Series of ``datetime64[us, UTC]``, same index.

    Example
    -------
    >>> parse_datetimes(pd.Series(["2024-01-05 08:00:00", "2024-01-05T00:00:00Z", "2024/01/05", "nope"])).tolist()
    [Timestamp('2024-01-05 00:00:00+0000', tz='UTC'), Timestamp('2024-01-05 00:00:00+0000', tz='UTC'), Timestamp('2024-01-04 16:00:00+0000', tz='UTC'), NaT]

    Notes
    -----
    Cost: O(n) factorize; each explicit format is one vectorised
    ``pd.to_datetime`` over the still-unparsed unique values; dateutil only
    for the few values left.
    """
    series, codes, uniq = _factorize(values)
    arr = _clean(uniq)
    fast, result = _fast_datetimes(arr)
    slow = np.flatnonzero(~fast & _to_np_bool(pc.is_valid(arr)))
    if len(slow):
        parsed = pd.to_datetime([_datetime_one(v) for v in arr.take(pa.array(slow)).to_pylist()], utc=True)
        result[slow] = parsed.tz_localize(None).as_unit(_UNIT).to_numpy()
    out = _expand_np(result, codes, np.datetime64("NaT", _UNIT))
    return pd.Series(out, index=series.index, name=series.name).dt.tz_localize("UTC")
