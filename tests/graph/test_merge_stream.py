"""Merging a batch into a stored node table a slice at a time (``merge_parquet``):
the same table as the in-memory merge, without holding the stored table whole."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ringscope.graph.embedded import EmbeddedStore
from ringscope.graph.merging import _same_rows, merge_parquet, merge_tables
from ringscope.graph.store import GraphBatch
from tests.graph.test_merging import _table


@pytest.mark.parametrize("policy", ["merge", "keep", "replace"])
def test_streamed_merge_writes_the_in_memory_merge(tmp_path, policy):
    """Random stored tables (several row groups) and batches: the file
    written equals ``merge_tables`` of the two (values, types, row order),
    and 'nothing changed' is said exactly when the merge holds the stored rows."""
    rng = np.random.default_rng(11)
    pool = [f"k{i}" for i in range(60)]
    outcomes = {True: 0, False: 0}
    for trial in range(120):
        old_keys = list(rng.choice(pool, rng.integers(1, 40), replace=False))
        same = rng.random() < 0.3  # a batch of stored rows: the merge changes nothing
        new_keys = (
            list(rng.choice(old_keys, rng.integers(1, len(old_keys) + 1), replace=False))
            if same
            else list(rng.choice(pool, rng.integers(1, 40), replace=False))
        )
        old_columns = {
            c: k for c, k in {"a": "float", "b": "text", "c": "int", "d": "null"}.items() if rng.random() < 0.7
        }
        new_columns = {
            c: k for c, k in {"a": "float", "b": "text", "c": "float", "e": "text"}.items() if rng.random() < 0.6
        }
        old = _table(rng, old_keys, old_columns)
        new = old.take(pa.array([old_keys.index(k) for k in new_keys])) if same else _table(rng, new_keys, new_columns)
        source, sink = tmp_path / f"old{trial}.parquet", tmp_path / f"new{trial}.parquet"
        pq.write_table(old, source, row_group_size=int(rng.integers(1, 12)))
        old = pq.read_table(source)
        expected = merge_tables(old, new, ["key"], policy)
        written = merge_parquet(source, new, "key", sink, policy, rows=int(rng.integers(1, 9)))
        assert written is not None
        assert written == (not _same_rows(old, expected, ["key"]))
        assert sink.exists() == written
        if written:
            back = pq.read_table(sink)
            assert back.schema.equals(expected.schema)
            assert back.equals(expected), (back.to_pandas(), expected.to_pandas())
        outcomes[written] += 1
    assert min(outcomes.values()) >= 8  # both outcomes were tried


def test_repeated_or_null_keys_are_left_to_the_in_memory_merge(tmp_path):
    pq.write_table(pa.table({"key": ["a", "a"], "x": [1.0, 2.0]}), tmp_path / "dup.parquet")
    pq.write_table(pa.table({"key": ["a", None], "x": [1.0, 2.0]}), tmp_path / "null.parquet")
    new = pa.table({"key": ["a"], "x": [3.0]})
    for name in ("dup", "null"):
        assert merge_parquet(tmp_path / f"{name}.parquet", new, "key", tmp_path / "out.parquet") is None
        assert not (tmp_path / "out.parquet").exists()
    pq.write_table(pa.table({"key": ["a"], "x": [1.0]}), tmp_path / "one.parquet")
    twice = pa.table({"key": ["b", "b"], "x": [3.0, 4.0]})
    assert merge_parquet(tmp_path / "one.parquet", twice, "key", tmp_path / "out.parquet") is None


def test_store_writes_scores_as_before_and_keeps_its_revision(tmp_path):
    """Through the store: the stored table after a score write is the old
    in-memory merge's, and writing the same scores again commits nothing."""
    rng = np.random.default_rng(3)
    store = EmbeddedStore(tmp_path / "store")
    apps = pd.DataFrame(
        {
            "key": [f"A{i:05d}" for i in range(3000)],
            "amount": rng.integers(1_000, 90_000, 3000).astype(float),
            "applicant_name": [f"n{i % 97}" for i in range(3000)],
        }
    )
    store.write(GraphBatch(nodes={"Application": apps}))
    stored = pq.read_table(store.table_path("nodes", "Application"))
    scores = pd.DataFrame(
        {
            "key": [f"A{i:05d}" for i in rng.choice(3000, 400, replace=False)],
            "risk_score": rng.random(400),
            "risk_reasons": ["shared phone; device burst"] * 400,
        }
    )
    expected = merge_tables(stored, pa.Table.from_pandas(scores, preserve_index=False), ["key"])
    store.write(GraphBatch(nodes={"Application": scores}))
    assert pq.read_table(store.table_path("nodes", "Application")).equals(expected)
    revision = store.revision()
    store.write(GraphBatch(nodes={"Application": scores}))
    assert store.revision() == revision
    assert not list(store.table_path("nodes", "Application").parent.glob("*.tmp*"))


_PEAK = """
import json, sys
import pandas as pd, pyarrow as pa
import ringscope.graph.merging
from ringscope.graph.embedded import EmbeddedStore
from ringscope.graph.store import GraphBatch
ringscope.graph.merging.STREAM_ROWS = 4096  # slices small beside the table: what is left is what is held whole
store = EmbeddedStore(sys.argv[1])
keys = [f"A{i:06d}" for i in range(0, 200_000, 50)]
store.write(GraphBatch(nodes={"Application": pd.DataFrame({"key": keys, "risk_score": 0.5})}))
print(json.dumps({"peak": pa.default_memory_pool().max_memory()}))
"""


def test_score_write_does_not_hold_the_stored_table(tmp_path):
    """Scores for 4,000 of 200,000 applications whose stored reasons take
    ~150 MB in Arrow: the write's Arrow peak (its own process) stays under
    half a copy of the table; the keys and one slice are held, where the
    in-memory merge held the stored table, the merged one and the copies
    it compared and encoded (four copies)."""
    store = EmbeddedStore(tmp_path / "store")
    keys = [f"A{i:06d}" for i in range(200_000)]
    reasons = [f"shared phone with {i % 1000} others; device burst {i}; " * 15 for i in range(200_000)]
    store.write(GraphBatch(nodes={"Application": pd.DataFrame({"key": keys, "risk_reasons": reasons})}))
    size = pq.read_table(store.table_path("nodes", "Application")).nbytes
    assert size > 100 * 2**20
    out = subprocess.run(
        [sys.executable, "-c", _PEAK, str(tmp_path / "store")], check=True, capture_output=True, text=True
    ).stdout
    peak = json.loads(out.strip().splitlines()[-1])["peak"]
    assert peak < size / 2, (peak, size)
    back = pq.read_table(store.table_path("nodes", "Application"))
    assert back.num_rows == 200_000 and back.column("risk_score").null_count == 200_000 - 4000


def test_a_column_that_does_not_cast_is_left_to_the_in_memory_merge(tmp_path):
    """Text stored where the batch brings numbers (the types do not merge): None, and no file left."""
    pq.write_table(pa.table({"key": ["a", "b"], "x": ["one", "two"]}), tmp_path / "old.parquet")
    new = pa.table({"key": ["c"], "x": pa.array([3], pa.int64())})
    assert merge_parquet(tmp_path / "old.parquet", new, "key", tmp_path / "out.parquet") is None
    assert not (tmp_path / "out.parquet").exists()


@pytest.mark.parametrize("policy", ["merge", "keep", "replace"])
def test_a_batch_of_every_stored_row_merges_slice_by_slice_as_in_memory(tmp_path, policy):
    """Scores for every application (``train``): each stored slice is merged
    as it is read; the file equals ``merge_tables`` (values, types, row
    order), and an unchanged table is still reported as unchanged."""
    rng = np.random.default_rng(5)
    for trial in range(30):
        keys = [f"k{i}" for i in rng.permutation(int(rng.integers(1, 50)))]
        old = _table(rng, keys, {"a": "float", "b": "text"})
        same = trial % 3 == 0
        order = list(rng.permutation(len(keys)))
        new = old.take(pa.array(order)) if same else _table(rng, [keys[i] for i in order], {"a": "float", "e": "text"})
        source, sink = tmp_path / f"old{trial}.parquet", tmp_path / f"new{trial}.parquet"
        pq.write_table(old, source, row_group_size=int(rng.integers(1, 12)))
        old = pq.read_table(source)
        expected = merge_tables(old, new, ["key"], policy)
        written = merge_parquet(source, new, "key", sink, policy, rows=int(rng.integers(1, 9)))
        assert written == (not _same_rows(old, expected, ["key"]))
        assert written != same
        if written:
            back = pq.read_table(sink)
            assert back.schema.equals(expected.schema) and back.equals(expected)


def test_a_batch_of_many_chunks_merges_as_one_chunk(tmp_path):
    """Scores concatenated from chunks (``train`` scores 50,000 at a time) are
    joined once before the slices are merged: the same file as the batch in
    one chunk, and the batch is left as it was."""
    rng = np.random.default_rng(8)
    keys = [f"k{i}" for i in range(300)]
    old = _table(rng, keys, {"a": "float", "b": "text"})
    source = tmp_path / "old.parquet"
    pq.write_table(old, source, row_group_size=40)
    whole = _table(rng, [keys[i] for i in rng.permutation(len(keys))], {"a": "float", "e": "text"})
    chunked = pa.Table.from_batches(whole.to_batches(max_chunksize=17))
    assert chunked.column("e").num_chunks > 10
    for name, batch in (("one", whole), ("many", chunked)):
        assert merge_parquet(source, batch, "key", tmp_path / f"{name}.parquet", "merge", rows=32)
    assert pq.read_table(tmp_path / "many.parquet").equals(pq.read_table(tmp_path / "one.parquet"))
    assert chunked.column("e").num_chunks > 10


_PEAK_EVERY = _PEAK.replace("range(0, 200_000, 50)", "range(200_000)")


def test_scores_of_every_application_do_not_hold_the_stored_table(tmp_path):
    """Scores for all 200,000 applications over ~150 MB of stored reasons:
    the stored rows are merged a slice at a time (every row collides), where
    the colliding rows were gathered, all of them here, and combined at the end."""
    store = EmbeddedStore(tmp_path / "store")
    keys = [f"A{i:06d}" for i in range(200_000)]
    reasons = [f"shared phone with {i % 1000} others; device burst {i}; " * 15 for i in range(200_000)]
    store.write(GraphBatch(nodes={"Application": pd.DataFrame({"key": keys, "risk_reasons": reasons})}))
    size = pq.read_table(store.table_path("nodes", "Application")).nbytes
    out = subprocess.run(
        [sys.executable, "-c", _PEAK_EVERY, str(tmp_path / "store")], check=True, capture_output=True, text=True
    ).stdout
    peak = json.loads(out.strip().splitlines()[-1])["peak"]
    assert peak < size / 2, (peak, size)
    back = pq.read_table(store.table_path("nodes", "Application"))
    assert back.num_rows == 200_000 and back.column("risk_score").null_count == 0
    assert back.column("key").to_pylist() == keys and back.column("risk_reasons").to_pylist() == reasons
