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


def test_kept_values_follow_their_owner_object():
    import gc

    from ringscope.detectors.keys import _KEPT, kept_for

    owner = pd.DataFrame({"key": ["a"]})
    calls = []
    assert kept_for(owner, "n", lambda: calls.append(1) or 7) == 7
    assert kept_for(owner, "n", lambda: calls.append(1) or 8) == 7  # kept, not rebuilt
    assert kept_for(owner, "m", lambda: 9) == 9  # another name is another value
    other = pd.DataFrame({"key": ["a"]})  # equal but another object: its own values
    assert kept_for(other, "n", lambda: 10) == 10
    key = id(owner)
    del owner
    gc.collect()
    assert key not in _KEPT  # nothing outlives the statistics it was built from
    assert calls == [1]


@pytest.mark.parametrize("seed", range(4))
def test_the_rings_glue_mask_is_the_same_for_few_links_and_for_many(seed):
    from ringscope.detectors.rings import _glue_mask

    rng = np.random.default_rng(seed)
    kinds = np.array(["phone", "device", "ip"])
    idents = np.array([f"I{i}" for i in range(40)])
    glue = pd.DataFrame(
        {"glue": rng.random(60) < 0.5},
        index=pd.MultiIndex.from_arrays([rng.choice(kinds, 60), rng.choice(idents, 60)], names=["kind", "identifier"]),
    )
    glue = glue[~glue.index.duplicated()]
    gluing = glue.index[glue["glue"].to_numpy()]
    expected_keys = set(gluing.get_level_values(0) + "\x1f" + gluing.get_level_values(1))
    for size in (3, 25, 500):  # a scope's few links (the kept index) and a whole book's (Arrow's look-up)
        links = pd.Series(
            pd.array(rng.choice(kinds, size), dtype="str") + "\x1f" + pd.array(rng.choice(idents, size), dtype="str")
        )
        mask = _glue_mask(glue, gluing, links)
        assert mask.tolist() == [k in expected_keys for k in links]


class _PiecewiseStore:
    """A store whose tables come back in two pieces per column, as a store
    reading several Parquet row groups or batches gives them."""

    def read_nodes(self, label, columns=None):
        return _in_pieces(pd.DataFrame({"key": ["C2", "C1", "C3"], "name": ["b", "a", "c"]}))

    def read_relationships(self, name, columns=None):
        frame = pd.DataFrame({"src": ["P1", "P2"], "dst": ["C1", "C2"]})
        for column in columns or ():
            frame[column] = [None, None]
        return _in_pieces(frame)


def _in_pieces(frame: pd.DataFrame) -> pd.DataFrame:
    import pyarrow as pa

    out = {}
    for column in frame.columns:
        whole = pa.array(frame[column].astype(object), type=pa.large_string())
        out[column] = pd.arrays.ArrowExtensionArray(pa.chunked_array([whole.slice(0, 1), whole.slice(1)]))
    return pd.DataFrame(out)


def _pieces(frame: pd.DataFrame) -> dict[str, int]:
    return {c: frame[c].array._pa_array.num_chunks for c in frame.columns if hasattr(frame[c].array, "_pa_array")}


def test_portfolio_tables_hold_each_text_column_in_one_piece():
    # Arrow's take over a column in pieces joins them first: every small subset
    # would copy whole columns (a millisecond per column at 200k rows)
    from ringscope.detectors.portfolio import Portfolio

    portfolio = Portfolio(_PiecewiseStore())
    companies = portfolio.nodes("Company")
    assert companies["key"].tolist() == ["C1", "C2", "C3"]
    for table in (companies, portfolio.roles, portfolio.guarantees):  # roles, guarantees: concatenations
        pieces = _pieces(table)
        assert pieces and set(pieces.values()) == {1}, pieces


def test_restored_tables_are_held_in_one_piece_too():
    from ringscope.detectors.portfolio import Portfolio

    portfolio = Portfolio(_PiecewiseStore())
    saved = _in_pieces(pd.DataFrame({"application_id": ["A1", "A2"], "identifier": ["p", "q"]}))
    portfolio.restore_tables({"contacts": saved, "_links_by_kind": {"phone": saved}})
    assert set(_pieces(portfolio.contacts).values()) == {1}
    assert set(_pieces(portfolio.link_table("phone")).values()) == {1}


def test_one_piece_keeps_each_columns_dtype():
    # "str" (missing as NaN) and "string" (missing as NA) share one array class:
    # rebuilt without its dtype, a "str" column became "string" and compared differently
    import pyarrow as pa

    from ringscope.detectors.portfolio import _single_chunks

    frame = pd.DataFrame(
        {
            "str": pd.Series(["a", None, "c"], dtype="str"),
            "string": pd.Series(["a", None, "c"], dtype="string[pyarrow]"),
            "arrow": pd.Series(["a", None, "c"], dtype=pd.ArrowDtype(pa.large_string())),
        }
    )
    pieces = pd.DataFrame(
        {
            c: pd.concat([frame[c].iloc[:1], frame[c].iloc[1:]], ignore_index=True)
            for c in frame.columns  # concatenated: two pieces each
        }
    )
    assert set(_pieces(pieces).values()) == {2}
    joined = _single_chunks(pieces)
    assert set(_pieces(joined).values()) == {1}
    assert joined.dtypes.to_dict() == frame.dtypes.to_dict()
    pd.testing.assert_frame_equal(joined, frame)


def test_text_codes_of_a_column_in_pieces_equal_those_of_one_piece():
    import pyarrow as pa

    from ringscope.detectors.keys import text_codes

    pieces = pd.Series(pd.arrays.ArrowExtensionArray(pa.chunked_array([["b", "a"], [None, "b", "c", "a"]])))
    whole = pd.Series(["b", "a", None, "b", "c", "a"], dtype=object)
    # equal values get equal codes across the pieces (each piece hashed alone would restart at 0)
    assert text_codes(pieces).tolist() == text_codes(whole).tolist() == [0, 1, 2, 0, 3, 1]
