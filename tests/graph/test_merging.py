"""Merging a batch into a stored table: the shortcut for unique keys gives the
general group-by's table exactly (values, types, row order)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import ringscope.graph.merging as merging
from ringscope.graph.merging import _same_rows, merge_tables


def _table(rng, keys, columns):
    data = {"key": keys}
    n = len(keys)
    for name, kind in columns.items():
        if kind == "float":
            values = rng.normal(size=n)
            values[rng.random(n) < 0.3] = np.nan
        elif kind == "text":
            values = [None if rng.random() < 0.3 else f"v{rng.integers(100)}" for _ in range(n)]
        elif kind == "int":
            values = rng.integers(0, 5, n)
        else:  # all null: a type of its own until merged
            values = [None] * n
        data[name] = values
    return pa.Table.from_pandas(pd.DataFrame(data), preserve_index=False)


def _general(old, new, identity, policy):
    saved = merging._update_unique
    merging._update_unique = lambda *args: None
    try:
        return merge_tables(old, new, identity, policy)
    finally:
        merging._update_unique = saved


@pytest.mark.parametrize("policy", ["merge", "keep", "replace"])
def test_unique_keys_merge_like_the_group_by(policy):
    rng = np.random.default_rng(7)
    pool = [f"k{i}" for i in range(50)]
    shortcut_used = 0
    for _ in range(150):
        old_keys = list(rng.choice(pool, rng.integers(1, 30), replace=False))
        new_keys = list(rng.choice(pool, rng.integers(1, 30), replace=False))
        old_columns = {
            c: k for c, k in {"a": "float", "b": "text", "c": "int", "d": "null"}.items() if rng.random() < 0.7
        }
        new_columns = {
            c: k for c, k in {"a": "float", "b": "text", "c": "float", "e": "text"}.items() if rng.random() < 0.6
        }
        old, new = _table(rng, old_keys, old_columns), _table(rng, new_keys, new_columns)
        fast, slow = merge_tables(old, new, ["key"], policy), _general(old, new, ["key"], policy)
        assert fast.schema.equals(slow.schema, check_metadata=True)
        assert fast.equals(slow), (fast.to_pandas(), slow.to_pandas())
        shortcut_used += merging._update_unique(old, new, "key", policy) is not None
    assert shortcut_used > 100  # the comparison is about the shortcut, not the fallback


def test_scores_onto_every_row_keep_the_stored_order():
    old = pa.table({"key": ["c", "a", "b"], "name": ["x", "y", "z"]})
    new = pa.table({"key": ["a", "b", "c"], "score": [0.1, None, 0.3]})
    merged = merge_tables(old, new, ["key"])
    assert merged.column("key").to_pylist() == ["c", "a", "b"]
    assert merged.column("score").to_pylist() == [0.3, 0.1, None]
    assert merged.column("name").to_pylist() == ["x", "y", "z"]


def test_duplicate_keys_take_the_general_path():
    old = pa.table({"key": ["a", "a"], "x": [1.0, 2.0]})
    new = pa.table({"key": ["a"], "x": [3.0]})
    assert merging._update_unique(old, new, "key", "merge") is None
    assert merge_tables(old, new, ["key"]).to_pydict() == {"key": ["a"], "x": [3.0]}


def test_same_rows_in_any_order():
    old = pa.table({"key": ["b", "a"], "x": [2.0, 1.0]})
    assert _same_rows(old, pa.table({"key": ["a", "b"], "x": [1.0, 2.0]}), ["key"])
    assert not _same_rows(old, pa.table({"key": ["a", "b"], "x": [1.0, 2.5]}), ["key"])
