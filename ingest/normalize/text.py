"""Shared plumbing of the normalisers: character classes, unique values in and
results mapped back by factorize codes, NFKC/opencc over joined values."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["to_halfwidth"]

_STR = pd.StringDtype(storage="pyarrow", na_value=np.nan)  # pandas 3 "str"
_LOCAL_TZ = "Asia/Shanghai"

# Character classes written with literal characters so that the same pattern
# means the same thing to RE2 (pyarrow) and to Python's ``re``.
_WS_CHARS = "\t\n\x0b\x0c\r \x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000-\u200b\u2028\u2029\u202f\u205f\u3000\ufeff"
_WS = f"[{_WS_CHARS}]"
_HAN_CHARS = (
    "\u2e80-\u2fdf\u3005\u3007\u3021-\u3029\u3038-\u303b\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
)
_HAN = f"[{_HAN_CHARS}]"
_LATIN = "[A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff]"
_DOTS = "[\u00b7\u2022\u2027\u2219\u22c5\u30fb\uff65\u318d\u2e31\u16eb.\u3002]"
_TRIM = f"^{_WS}+|{_WS}+$"

_WS_RE = re.compile(_WS)
_WS_RUN_RE = re.compile(f"{_WS}+")
_TRIM_RE = re.compile(_TRIM)
_HAN_RE = re.compile(_HAN)
_LATIN_RE = re.compile(_LATIN)
_DOTS_RE = re.compile(_DOTS)


# --------------------------------------------------------------------------
# plumbing: unique values in, results mapped back by factorize codes
# --------------------------------------------------------------------------


def _as_series(values) -> pd.Series:
    return values if isinstance(values, pd.Series) else pd.Series(values, dtype=object)


def _coerce_text(value) -> str | None:
    """One raw cell as text, or None when it is missing."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (float, np.floating)):
        if value != value:  # NaN
            return None
        if float(value).is_integer() and abs(value) < 1e18:
            return str(int(value))
        return repr(float(value))
    return str(value)


def _factorize(values) -> tuple[pd.Series, np.ndarray, pa.Array]:
    """(series, codes with -1 for missing, uniques as a pyarrow string array)."""
    series = _as_series(values)
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    if isinstance(uniques.dtype, pd.StringDtype) or isinstance(uniques.dtype, pd.ArrowDtype):
        arr = pa.array(uniques)
        if not pa.types.is_string(arr.type):
            arr = arr.cast(pa.string())
    else:
        arr = pa.array([_coerce_text(u) for u in np.asarray(uniques, dtype=object)], type=pa.string())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return series, np.asarray(codes, dtype=np.int64), arr


def _expand_np(result: np.ndarray, codes: np.ndarray, fill) -> np.ndarray:
    """Map per-unique results back; code -1 (missing) picks ``fill``."""
    return np.append(result, np.array([fill], dtype=result.dtype))[codes]


def _expand_str(result: pa.Array, codes: np.ndarray, index) -> pd.Series:
    n = len(result)
    idx = pa.array(np.where(codes < 0, n, codes))
    full = pa.concat_arrays([result.cast(pa.string()), pa.nulls(1, pa.string())]).take(idx)
    return pd.Series(pd.array(full, dtype=_STR), index=index)


def _to_np_bool(arr) -> np.ndarray:
    return np.asarray(pc.fill_null(arr, False).to_numpy(zero_copy_only=False), dtype=bool)


def _match(arr: pa.Array, pattern: str) -> np.ndarray:
    return _to_np_bool(pc.match_substring_regex(arr, pattern))


def _sub(arr: pa.Array, pattern: str, repl: str) -> pa.Array:
    return pc.replace_substring_regex(arr, pattern, repl)


def _null_empty(arr: pa.Array) -> pa.Array:
    return pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.string()), arr)


def _map_strings(strings: list[str], func) -> list[str]:
    """Apply a str -> str ``func`` to many strings with one call on their
    '\\n'-join (NFKC, opencc are far faster that way); fall back per value
    when a value holds a newline or the count changes."""
    if not strings:
        return []
    if not any("\n" in s for s in strings):
        out = func("\n".join(strings)).split("\n")
        if len(out) == len(strings):
            return out
    return [func(s) for s in strings]


def _nfkc_str(s: str) -> str:
    if unicodedata.is_normalized("NFKC", s):
        return s
    return unicodedata.normalize("NFKC", s)


def _join_lines(arr: pa.Array) -> str:
    """All values of a null-free string array joined by newlines, in C++."""
    lists = pa.ListArray.from_arrays(pa.array([0, len(arr)], pa.int32()), arr.cast(pa.string()))
    return pc.binary_join(lists, "\n")[0].as_py()


def _apply_to_non_ascii(arr: pa.Array, func, need: str | None = None) -> pa.Array:
    """Apply a str -> str function to the non-ASCII values (optionally only
    those matching the RE2 pattern ``need``) with one call on their
    newline-join; per value when a value holds a newline or counts differ."""
    mask = _to_np_bool(pc.invert(pc.string_is_ascii(arr)))
    if need is not None and mask.any():
        mask &= _match(arr, need)
    if not mask.any():
        return arr
    sub = arr.filter(pa.array(mask))
    if _match(sub, "\n").any():
        new = pa.array([func(v) for v in sub.to_pylist()], type=pa.string())
    else:
        joined = _join_lines(sub)
        out = func(joined)
        if out == joined:
            return arr
        new = pc.list_flatten(pc.split_pattern(pa.array([out], pa.string()), "\n"))
        if len(new) != len(sub):
            new = pa.array([func(v) for v in sub.to_pylist()], type=pa.string())
    return pc.replace_with_mask(arr, pa.array(mask), new.cast(arr.type))


def _clean(arr: pa.Array) -> pa.Array:
    """NFKC (non-ASCII only) + trim; empty -> null."""
    arr = _apply_to_non_ascii(arr, _nfkc_str)
    return _null_empty(_sub(arr, _TRIM, ""))


def _clean_one(value) -> str | None:
    s = _coerce_text(value)
    if s is None:
        return None
    s = _TRIM_RE.sub("", unicodedata.normalize("NFKC", s))
    return s or None


def to_halfwidth(s: str) -> str:
    """Full-width forms to half-width (NFKC), ideographic space to a space.

    Parameters
    ----------
    s : str

    Returns
    -------
    str

    Example
    -------
    >>> to_halfwidth("１３８\\u3000ＡＢＣ（１）")
    '138 ABC(1)'

    Notes
    -----
    Cost: O(len(s)); NFKC also folds ligatures and compatibility forms.
    """
    if not isinstance(s, str):
        s = _coerce_text(s) or ""
    return unicodedata.normalize("NFKC", s)


def _ascii_matrix(arr: pa.Array, width: int) -> np.ndarray:
    """Rows of ``width`` ASCII bytes from a pyarrow string array whose values
    all have exactly that many ASCII characters."""
    if len(arr) == 0:
        return np.zeros((0, width), dtype=np.uint8)
    arr = pa.concat_arrays([arr.cast(pa.string())])  # fresh, unsliced buffers
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset : arr.offset + len(arr) + 1]
    data = np.frombuffer(arr.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    return data.reshape(-1, width)


def _strings_from_matrix(mat: np.ndarray) -> pa.Array:
    n, width = mat.shape
    offsets = pa.py_buffer((np.arange(n + 1, dtype=np.int32) * width).tobytes())
    return pa.Array.from_buffers(pa.string(), n, [None, offsets, pa.py_buffer(np.ascontiguousarray(mat).tobytes())])


# --------------------------------------------------------------------------
# traditional -> simplified (opencc), pinyin tone marks
# --------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _t2s_converter():
    import opencc

    return opencc.OpenCC("t2s")


_CJK_SCAN = ((0x2E80, 0x2FDF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x3134F))


@lru_cache(maxsize=1)
def _trad_class() -> str:
    """RE2/Python character class of the characters opencc t2s changes on
    their own (built once by converting every CJK code point in one call)."""
    chars = [chr(c) for lo, hi in _CJK_SCAN for c in range(lo, hi + 1)]
    out = _t2s_converter().convert("\n".join(chars)).split("\n")
    if len(out) != len(chars):
        out = [_t2s_converter().convert(c) for c in chars]
    changed = [ord(c) for c, o in zip(chars, out) if o != c]
    ranges, start, prev = [], None, None
    for cp in changed:
        if start is None:
            start = prev = cp
        elif cp == prev + 1:
            prev = cp
        else:
            ranges.append((start, prev))
            start = prev = cp
    if start is not None:
        ranges.append((start, prev))
    body = "".join(chr(a) if a == b else f"{chr(a)}-{chr(b)}" for a, b in ranges)
    return f"[{body}]" if body else "[^\\x00-\\x{10FFFF}]"


@lru_cache(maxsize=1)
def _trad_re() -> re.Pattern:
    return re.compile(_trad_class())


def _t2s(s: str) -> str:
    """opencc t2s, applied only when some character is one t2s changes on
    its own (phrase rules made only of unchanged characters are skipped, so
    the vectorised path can skip the many values with nothing to convert)."""
    if not _trad_re().search(s):
        return s
    return _t2s_converter().convert(s)


def _strip_tones(s: str) -> str:
    """Drop combining accents (pinyin tones) but keep the diaeresis of ü."""
    d = unicodedata.normalize("NFD", s)
    d = re.sub("[\u0300-\u0307\u0309-\u036f]", "", d)
    return unicodedata.normalize("NFC", d)
