"""Lookups of a few keys in whole-book columns, at the cost of the few.

Flagging one application asks many "which rows hold these keys?" questions
of million-row columns. A scan (``isin``) answers each in O(n); a
:class:`RowsByValue` built once answers it in O(k log k + rows found).

Why not a pandas ``Index``: since pandas 3 an index built from text infers
the Arrow-backed ``str`` dtype, whose ``get_indexer`` rebuilds its hash
table on every call (about 0.1 s per lookup at 200,000 keys, measured here),
so a cached index of text keys must be made with ``dtype=object``
(:func:`key_index`), whose hash table is built once and kept.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "RowsByValue",
    "is_missing",
    "key_index",
    "kept_for",
    "rows_by_value",
    "text_codes",
    "text_list",
    "values_at",
]

#: up to this many wanted keys are looked up one by one (pandas' vectorised
#: lookup costs ~0.2 ms of overhead per call, a single key ~4 µs)
_FEW = 32


def text_codes(values: pd.Series) -> np.ndarray:
    """Dense int64 codes of ``values`` by Arrow's hash encoding (several times
    faster than pandas' on text); a missing value is one code of its own.

    Example
    -------
    >>> text_codes(pd.Series(["b", "a", None, "b"])).tolist()
    [0, 1, 2, 0]
    """
    import pyarrow as pa

    try:
        array = pa.array(values)  # Arrow-backed text converts without a copy
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        array = pa.array(values.astype(str).to_numpy(dtype=object))
    if isinstance(array, pa.ChunkedArray):  # a column in pieces: each piece would get its own dictionary
        array = array.combine_chunks()
    encoded = array.dictionary_encode(null_encoding="encode")
    return encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)


def key_index(values: Any, name: str | None = None) -> pd.Index:
    """An object-dtype index of ``values`` (as text), for repeated lookups.

    Example
    -------
    >>> index = key_index(["A2", "A1"])
    >>> index.dtype, index.get_indexer(["A1", "A9"]).tolist()
    (dtype('O'), [1, -1])
    """
    array = np.asarray(values, dtype=object)
    return pd.Index(array, dtype=object, name=name)


def text_list(values: Any) -> list[str]:
    """The non-missing values of a column, as text, in order.

    ``set(column.astype(str))`` or ``list(column)`` of an Arrow-backed
    column walks it through pandas one element at a time (about 4 µs each,
    measured here: a second per 250,000 values in a batch's scopes); this
    converts it in one piece. Numbers become text as ``astype(str)`` writes
    them.

    Example
    -------
    >>> text_list(pd.Series(["b", None, "a"], dtype="str"))
    ['b', 'a']
    >>> text_list(pd.Series([3, 1])), text_list(["x", None])
    (['3', '1'], ['x'])
    """
    direct = _arrow_text_list(values)
    if direct is not None:
        return direct
    if isinstance(values, pd.Series):
        series = values
    elif isinstance(values, (pd.Index, np.ndarray, pd.api.extensions.ExtensionArray)):
        series = pd.Series(values, copy=False)
    else:
        series = pd.Series(list(values), dtype=object)
    series = series[series.notna().to_numpy(dtype=bool)]
    if not isinstance(series.dtype, pd.StringDtype):
        series = series.astype(str)
    return series.to_numpy(dtype=object).tolist()


def _arrow_text_list(values: Any) -> list[str] | None:
    """:func:`text_list` of an Arrow-backed text column straight from its
    Arrow array (nulls dropped, one conversion: ~50 µs for a scope's few
    values where pandas' masking and conversion take ~0.6 ms), else ``None``."""
    if not isinstance(values, (pd.Series, pd.Index, pd.api.extensions.ExtensionArray)):
        return None
    pieces = getattr(getattr(values, "array", values), "_pa_array", None)
    if pieces is None:
        return None
    import pyarrow as pa
    import pyarrow.compute as pc

    if not (pa.types.is_string(pieces.type) or pa.types.is_large_string(pieces.type)):
        return None
    return pc.drop_null(pieces).to_pylist()


def is_missing(value: Any) -> bool:
    """Whether one value is missing (``None``, ``nan``, ``NA``, ``NaT``); text never is.

    Example
    -------
    >>> [is_missing(v) for v in (None, float("nan"), pd.NA, "", "nan", 0)]
    [True, True, True, False, False, False]
    """
    return value is None or (not isinstance(value, str) and bool(pd.isna(value)))


def values_at(column: pd.Series, rows: np.ndarray) -> list:
    """``column.iloc[rows].tolist()``, taken from the column's Arrow array
    when it holds one (missing values as ``None`` there, ``nan`` through
    pandas): a few rows without a Series made of them.

    Example
    -------
    >>> values_at(pd.Series(["a", None, "c"], dtype="str"), np.array([2, 0]))
    ['c', 'a']
    """
    import pyarrow as pa

    held = getattr(column.array, "_pa_array", None)
    if held is not None:
        return held.take(pa.array(np.asarray(rows, dtype=np.int64), type=pa.int64())).to_pylist()
    return column.iloc[rows].tolist()


def _as_text(values: Any) -> np.ndarray:
    """Non-missing values as text, missing ones as ``None`` (never a key)."""
    series = pd.Series(np.asarray(values, dtype=object), dtype=object)
    present = series.notna().to_numpy()
    out = np.full(len(series), None, dtype=object)
    out[present] = series[present].astype(str).to_numpy(dtype=object)
    return out


class RowsByValue:
    """The positions of a column's rows by their value (as text).

    Built in O(n) once; :meth:`rows` of ``k`` wanted values then costs
    O(k + rows found), whatever the column's length. Missing entries are
    never found.

    ``vocabulary`` (a unique :func:`key_index`, e.g. the book's application
    ids) lets many maps share one index of the keys and its hash table: the
    map then holds only integer arrays (4 bytes a row and a key), where an
    index of its own holds a Python string and a hash slot per key. A
    column holding a value outside the vocabulary gets an index of its own,
    so the answers never change.

    Example
    -------
    >>> rows = RowsByValue(["p1", "p2", None, "p1"])
    >>> rows.rows({"p1", "p9"}).tolist(), rows.rows([]).tolist()
    ([0, 3], [])
    >>> rows.mask(["p2"]).tolist()
    [False, True, False, False]
    >>> shared = RowsByValue(["p2", "p1"], vocabulary=key_index(["p1", "p2", "p3"]))
    >>> shared.rows({"p1", "p3"}).tolist(), shared.index is RowsByValue(["p1"], vocabulary=shared.index).index
    ([1], True)
    """

    def __init__(self, values: Any, vocabulary: pd.Index | None = None) -> None:
        text = _as_text(values)
        self.size = len(text)
        codes = None
        if vocabulary is not None:
            codes = vocabulary.get_indexer(text)
            if (codes < 0).any() and pd.notna(text[codes < 0]).any():  # a value outside it: an index of its own
                codes = None
        if codes is None:
            codes, uniques = pd.factorize(text, use_na_sentinel=True)
            self.index = key_index(uniques)
        else:
            self.index = vocabulary
        del text
        small = np.int32 if max(len(codes), len(self.index)) < 2**31 - 1 else np.int64
        present = codes >= 0
        positions = np.flatnonzero(present).astype(small)
        present_codes = codes[present].astype(small)
        del codes, present
        order = np.argsort(present_codes, kind="stable")
        self._order = positions[order]
        self._starts = np.searchsorted(present_codes[order], np.arange(len(self.index) + 1)).astype(small)

    def codes(self, wanted: Iterable[Any]) -> np.ndarray:
        """The positions in :attr:`index` of the wanted values found."""
        values = text_list(wanted) if isinstance(wanted, (pd.Series, pd.Index)) else list(wanted)
        unique = isinstance(wanted, (set, frozenset))
        if not values:  # nothing asked (``unique_keys`` asks so, per call): no conversion
            return np.zeros(0, dtype=np.int64)
        if set(map(type, values)) != {str}:  # the usual case (text keys) skips pandas
            text = _as_text(values)
            values, unique = text[pd.notna(text)].tolist(), False  # 1 and "1" are one key
        if not values:
            return np.zeros(0, dtype=np.int64)
        if not unique:
            values = list(dict.fromkeys(values))
        if len(values) <= _FEW:  # a few keys: the index's hash table one key at a time (µs each)
            found = [self.index.get_loc(v) for v in values if v in self.index]
            return np.asarray(found, dtype=np.int64)
        at = self.index.get_indexer(key_index(values))
        return at[at >= 0]

    def held(self, values: Any) -> np.ndarray:
        """Per value of ``values``: does any row hold it?

        Example
        -------
        >>> RowsByValue(["a", None], vocabulary=key_index(["a", "b"])).held(["b", "a", "z"]).tolist()
        [False, True, False]
        """
        at = self.index.get_indexer(key_index(_as_text(values)))
        out = at >= 0
        out[out] = self._starts[at[out] + 1] > self._starts[at[out]]
        return out

    def rows(self, wanted: Iterable[Any]) -> np.ndarray:
        """Sorted positions of the rows whose value is one of ``wanted``."""
        return self.rows_of_codes(self.codes(wanted))

    def rows_of_codes(self, at: np.ndarray) -> np.ndarray:
        """Sorted positions of the rows whose value is at ``at`` in
        :attr:`index` (from :meth:`codes`, of this map or of any map sharing
        its index, see ``vocabulary``): no text is looked up.

        Example
        -------
        >>> ids = RowsByValue(["A1", "A2", "A3"])
        >>> links = RowsByValue(["A3", "A1", "A3"], vocabulary=ids.index)
        >>> links.rows_of_codes(ids.codes(["A3", "A9"])).tolist()
        [0, 2]
        """
        at = np.asarray(at, dtype=np.int64)
        if not len(at):
            return np.zeros(0, dtype=np.int64)
        starts = self._starts[at].astype(np.int64)
        lengths = self._starts[at + 1] - starts
        first = np.repeat(starts - np.cumsum(np.r_[0, lengths[:-1]]), lengths) + np.arange(lengths.sum())
        return np.sort(self._order[first]).astype(np.int64)

    def mask(self, wanted: Iterable[Any]) -> np.ndarray:
        """A boolean mask over the column: ``column.isin(wanted)``."""
        out = np.zeros(self.size, dtype=bool)
        out[self.rows(wanted)] = True
        return out


def rows_by_value(
    holder: dict, name: str, table: Any, column: str | None = None, vocabulary: pd.Index | None = None
) -> RowsByValue:
    """The :class:`RowsByValue` of ``table[column]`` (of ``table`` itself,
    a Series or Index, without ``column``), kept in ``holder`` under
    ``name`` and rebuilt when ``holder`` is given another table object
    under that name (statistics computed again); ``vocabulary`` as for
    :class:`RowsByValue`.

    The table, not the column, is what is compared: pandas makes a new
    Series object at each ``frame[column]``.

    Example
    -------
    >>> held, frame = {}, pd.DataFrame({"key": ["a", "b"]})
    >>> rows_by_value(held, "x", frame, "key") is rows_by_value(held, "x", frame, "key")
    True
    """
    kept = holder.get(name)
    if kept is None or kept[0] is not table or kept[1] != column:
        kept = (table, column, RowsByValue(table if column is None else table[column], vocabulary=vocabulary))
        holder[name] = kept
    return kept[2]


#: id(object) → (weak reference to it, {name: value}); an entry goes with its object
_KEPT: dict[int, tuple[weakref.ref, dict[str, Any]]] = {}


def kept_for(owner: Any, name: str, build: Callable[[], Any]) -> Any:
    """``build()``, computed once per ``owner`` object and ``name`` and kept
    while ``owner`` lives: a lookup table over a per-portfolio statistic
    (the rings' hub table) that each small scope would otherwise rebuild in
    O(n). ``owner`` must not change afterwards (statistics do not).

    Example
    -------
    >>> frame, calls = pd.DataFrame({"key": ["a"]}), []
    >>> first = kept_for(frame, "keys", lambda: calls.append(1) or key_index(frame["key"]))
    >>> kept_for(frame, "keys", lambda: calls.append(1)) is first, len(calls)
    (True, 1)
    """
    key = id(owner)
    entry = _KEPT.get(key)
    if entry is None or entry[0]() is not owner:
        entry = (weakref.ref(owner, lambda _, key=key: _KEPT.pop(key, None)), {})
        _KEPT[key] = entry
    held = entry[1]
    if name not in held:
        held[name] = build()
    return held[name]
