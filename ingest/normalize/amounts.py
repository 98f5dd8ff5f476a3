"""Money amounts in CNY to float."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ringscope.ingest.normalize.text import (
    _clean,
    _clean_one,
    _expand_np,
    _factorize,
    _sub,
)

__all__ = ["parse_amounts"]

_AMOUNT_STRIP = r"(?i)^(?:¥|cny|rmb|人民币)|元$|[, ]"
_AMOUNT_RE = r"^(?P<num>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(?P<unit>万|亿)?$"
_AMOUNT_SCALE = {"": 1.0, "万": 1e4, "亿": 1e8}


def _amount_one(value) -> float:
    s = _clean_one(value)
    if s is None:
        return float("nan")
    s = re.sub(_AMOUNT_STRIP, "", s)
    m = re.match(_AMOUNT_RE, s)
    if not m:
        return float("nan")
    return float(m.group(1)) * _AMOUNT_SCALE[m.group(2) or ""]


def parse_amounts(values: pd.Series) -> pd.Series:
    """Money amounts in CNY to float.

    Accepts thousands separators, full-width digits, a leading ¥/￥/CNY/RMB/
    人民币, a trailing 元, and a 万 (×10⁴) or 亿 (×10⁸) suffix.

    Parameters
    ----------
    values : pandas.Series of str

    Returns
    -------
    pandas.Series of float64 (NaN when unparseable), same index.

    Example
    -------
    >>> parse_amounts(pd.Series(["12,000", "￥１２０００.５０", "1.2万", "CNY 300元", "abc"])).tolist()
    [12000.0, 12000.5, 12000.0, 300.0, nan]

    Notes
    -----
    Cost: O(n) factorize + three vectorised RE2 passes and one cast over the
    unique values.
    """
    series, codes, uniq = _factorize(values)
    arr = _sub(_clean(uniq), _AMOUNT_STRIP, "")
    parts = pc.extract_regex(arr, _AMOUNT_RE)
    number = pc.cast(pc.struct_field(parts, [0]), pa.float64(), safe=False)
    unit = pc.fill_null(pc.struct_field(parts, [1]), "")
    scale = pc.if_else(pc.equal(unit, "万"), 1e4, pc.if_else(pc.equal(unit, "亿"), 1e8, 1.0))
    value = pc.multiply(number, scale).to_numpy(zero_copy_only=False)
    value = np.asarray(value, dtype=np.float64)
    return pd.Series(_expand_np(value, codes, np.nan), index=series.index, name=series.name)
