"""Unified social credit codes of companies (GB 32100)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ringscope.ingest.normalize.text import (
    _WS,
    _ascii_matrix,
    _clean,
    _clean_one,
    _expand_np,
    _expand_str,
    _factorize,
    _match,
    _sub,
)

__all__ = ["USCC_ALPHABET", "uscc_check_index", "normalize_uscc"]

#: the 31 characters a unified social credit code is written in (no I, O, S, V, Z)
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_ALPHABET = USCC_ALPHABET
# GB 32100 check: weight 3**i mod 31 per character, check = (31 - sum mod 31) mod 31.
# The one definition in ringscope; the synthetic generator uses it too.
_USCC_WEIGHTS = np.array([1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28], dtype=np.int64)
_USCC_LUT = np.full(256, -1, dtype=np.int64)
for _i, _c in enumerate(_USCC_ALPHABET):
    _USCC_LUT[ord(_c)] = _i
_USCC_BYTES = np.frombuffer(_USCC_ALPHABET.encode(), dtype=np.uint8)
_USCC_RE = f"^[{_USCC_ALPHABET}]{{18}}$"


def uscc_check_index(body: np.ndarray) -> np.ndarray:
    """GB 32100 check characters of 17-character USCC bodies, as places in :data:`USCC_ALPHABET`.

    Parameters
    ----------
    body : numpy.ndarray of int, shape (n, 17)
        Each character's place in :data:`USCC_ALPHABET` (``'A'`` is 10).

    Returns
    -------
    numpy.ndarray of int, shape (n,): the check character's place in the alphabet.

    Example
    -------
    >>> USCC_ALPHABET[uscc_check_index(np.array([[USCC_ALPHABET.index(c) for c in "91110000600037341"]]))[0]]
    'L'

    Notes
    -----
    Cost: one (n, 17) x (17,) integer dot product.
    """
    return (31 - (np.asarray(body, dtype=np.int64) @ _USCC_WEIGHTS) % 31) % 31


def _uscc_one(value) -> tuple[str | None, bool]:
    """Reference: cleaned code (or None) and stdnum.cn.uscc.is_valid."""
    from stdnum.cn import uscc

    s = _clean_one(value)
    if s is None:
        return None, False
    s = re.sub(f"{_WS}|-", "", s).upper()
    if not re.fullmatch(_USCC_RE[1:-1], s):
        return None, False
    return s, bool(uscc.is_valid(s))


def normalize_uscc(values: pd.Series) -> pd.DataFrame:
    """Unified social credit codes (GB 32100), cleaned and checked.

    Parameters
    ----------
    values : pandas.Series of str

    Returns
    -------
    pandas.DataFrame, same index, columns ``uscc`` (whitespace/dashes
    removed, half-width, upper-case; NaN unless 18 characters of the USCC
    alphabet) and ``uscc_valid`` (same answer as ``stdnum.cn.uscc.is_valid``:
    8 leading digits and the mod-31 check character).

    Example
    -------
    >>> normalize_uscc(pd.Series([" 91110000600037341l", "91110000600037341A", "x"])).values.tolist()
    [['91110000600037341L', True], ['91110000600037341A', False], [nan, False]]

    Notes
    -----
    Cost: O(n) factorize; the check character is a numpy dot product over
    the unique values.
    """
    series, codes, uniq = _factorize(values)
    arr = pc.utf8_upper(_sub(_clean(uniq), f"{_WS}|-", ""))
    ok = _match(arr, _USCC_RE)
    uscc = pc.if_else(pa.array(ok), arr, pa.scalar(None, pa.string()))
    valid = np.zeros(len(uniq), dtype=bool)
    pos = np.flatnonzero(ok)
    if len(pos):
        mat = _ascii_matrix(uscc.take(pa.array(pos)), 18)
        idx = _USCC_LUT[mat]
        check = _USCC_BYTES[uscc_check_index(idx[:, :17])]
        valid[pos] = (check == mat[:, 17]) & np.all((mat[:, :8] >= 48) & (mat[:, :8] <= 57), axis=1)
    return pd.DataFrame(
        {"uscc": _expand_str(uscc, codes, series.index), "uscc_valid": _expand_np(valid, codes, False)},
        index=series.index,
    )
