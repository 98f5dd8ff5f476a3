"""Row lookups built once answer exactly what a scan (``isin``) answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ringscope.detectors.keys import RowsByValue, key_index, rows_by_value
from ringscope.detectors.portfolio import in_set


@pytest.mark.parametrize("seed", range(5))
def test_rows_equal_a_scan_of_the_column(seed):
    rng = np.random.default_rng(seed)
    pool = [f"P{i}" for i in range(60)]
    values = pd.Series(rng.choice(pool + [None], size=500), dtype=object)
    rows = RowsByValue(values)
    for size in (0, 1, 3, 40, 80):  # one by one below the batch size, vectorised above it
        wanted = set(rng.choice(pool + ["absent"], size=size)) if size else set()
        expected = np.flatnonzero(in_set(values, wanted))
        assert rows.rows(wanted).tolist() == expected.tolist()
        assert rows.mask(wanted).tolist() == in_set(values, wanted).tolist()


def test_numbers_and_text_compare_as_text_and_missing_is_never_found():
    rows = RowsByValue(pd.Series([1, "1", None, np.nan, "x"], dtype=object))
    assert rows.rows(["1"]).tolist() == [0, 1]
    assert rows.rows([1, None]).tolist() == [0, 1]
    assert rows.rows(["None", "nan"]).tolist() == []


def test_a_text_key_index_keeps_object_dtype():
    # pandas 3 infers the Arrow ``str`` dtype for text, whose lookups rebuild a hash table each call
    assert key_index(np.array(["a", "b"], dtype=object)).dtype == object


def test_the_row_map_is_rebuilt_for_another_table_only():
    held: dict = {}
    first = pd.DataFrame({"key": ["a", "b"]})
    kept = rows_by_value(held, "keys", first, "key")
    assert rows_by_value(held, "keys", first, "key") is kept
    second = pd.DataFrame({"key": ["b", "a"]})
    assert rows_by_value(held, "keys", second, "key").rows(["a"]).tolist() == [1]
