"""The flag state's pickles: the bytes ``pickle.dump`` writes, without a
joined copy of every Arrow-backed column held until the dump ends."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pandas as pd
import pyarrow as pa
from pandas.core.arrays.arrow.array import ArrowExtensionArray

from ringscope.detectors.risk.flag_state import dump_pickle


def _statistics() -> dict:
    """Statistics shaped like identity resolution's: Arrow text columns and
    indexes (one piece, several pieces, a slice), numbers, a plain object
    column, shared references."""
    text = pd.array([f"P{i:06d}" for i in range(5000)], dtype="string[pyarrow]")
    pieces = pd.arrays.ArrowExtensionArray(pa.chunked_array([["a", "b"], ["c", None]]))
    records = pd.DataFrame({"record_id": text, "n": np.arange(5000), "raw": [f"r{i}" for i in range(5000)]})
    tf = pd.Series(np.linspace(0, 1, 5000), index=pd.Index(text))
    sliced = pd.Series(pd.array([f"S{i}" for i in range(100)], dtype="string[pyarrow]")).iloc[10:40]
    return {
        "identity": {"records": records, "tf": tf, "again": records},
        "pieces": pd.Series(pieces),
        "sliced": sliced,
        "empty": pd.Series(pd.array([], dtype="string[pyarrow]")),
        "plain": [1, "two", 3.0],
    }


def test_the_same_bytes_as_pickle_dump_and_the_same_values_back():
    value = _statistics()
    sink = io.BytesIO()
    dump_pickle(value, sink)
    assert sink.getvalue() == pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    back = pickle.loads(sink.getvalue())
    pd.testing.assert_frame_equal(back["identity"]["records"], value["identity"]["records"])
    pd.testing.assert_series_equal(back["identity"]["tf"], value["identity"]["tf"])
    pd.testing.assert_series_equal(back["pieces"], value["pieces"])
    pd.testing.assert_series_equal(back["sliced"], value["sliced"])
    assert back["identity"]["again"] is back["identity"]["records"]  # shared references stay shared


def test_a_column_in_one_piece_is_not_joined_into_a_copy(monkeypatch):
    """``ArrowExtensionArray.__getstate__`` joins the pieces (a copy, kept by
    the pickler's memo to the end of the dump); the state's pickler asks it
    only for a column in several pieces or a slice."""
    joined = []
    original = ArrowExtensionArray.__getstate__

    def counting(self):
        joined.append(len(self))
        return original(self)

    monkeypatch.setattr(ArrowExtensionArray, "__getstate__", counting)
    value = _statistics()
    dump_pickle(value, io.BytesIO())
    # the two-piece column and the slice (offset 10) only; the 5,000-row text column and index never
    assert sorted(joined) == [4, 30]
