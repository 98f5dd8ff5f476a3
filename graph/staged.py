"""A write gathered chunk by chunk on disk, merged into the embedded store in bounded memory.

An ingest of a large folder builds its graph a chunk of input rows at a
time. Each chunk's tables go to a staging folder inside the store
(:meth:`StagedWrite.add`: one Arrow IPC file per table and chunk), and
:meth:`ringscope.graph.embedded.EmbeddedStore.write_staged` merges them
into the store in one all-or-nothing commit, as :meth:`EmbeddedStore.write`
would have merged the concatenated batch:

- a table whose stored and staged rows together fit in ``partition_rows``
  is merged whole in memory (the same code and the same file as
  ``write``);
- a larger one is split by a hash of its first identity column (a node's
  key, a relationship's ``src``) into partitions of about
  ``partition_rows`` rows (stored rows first, then the chunks in order),
  and each partition is merged on its own. Every row of one identity lands
  in one partition, in the order it came, so each row of the result is the
  one the whole merge gives; the table holds the same rows, grouped by
  partition instead of in delivery order. (Hashing one column instead of
  all of them halves the cost of a relationship table; a partition then
  holds whole sources, so it may exceed ``partition_rows`` by the most
  relationships one source has: a handful in an ingest.)

Memory is then O(chunk + partition) whatever the size of the book.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ringscope.graph.files import TMP_MARKER, private_dir
from ringscope.graph.merging import STREAM_ROWS, _no_null_columns
from ringscope.graph.store import GraphBatch

__all__ = ["PARTITION_ROWS", "STAGING", "StagedWrite"]

#: rows of one table merged in memory at a time (a larger table is partitioned)
PARTITION_ROWS = 250_000

#: name prefix of a staging folder inside the store (deleted when done, and by the next writer after a kill)
STAGING = f"staging{TMP_MARKER}"


class StagedWrite:
    """The tables of one write, added chunk by chunk (see the module doc).

    Parameters
    ----------
    folder : path
        The store folder; the staging folder is made inside it and deleted
        by :meth:`close` (or by the next writer after a kill).
    partition_rows : int
        Rows of one table merged in memory at a time.
    """

    def __init__(self, folder: str | Path, partition_rows: int = PARTITION_ROWS) -> None:
        self.root = Path(folder) / f"{STAGING}{uuid.uuid4().hex[:12]}"
        private_dir(self.root)
        self.partition_rows = max(int(partition_rows), 1)
        #: (kind, name) -> staged files, in the order of the whole batch
        self.files: dict[tuple[str, str], list[Path]] = {}
        self.rows: dict[tuple[str, str], int] = {}
        self._order: dict[tuple[str, str], list[tuple[tuple, int, Path]]] = {}
        self._schemas: dict[Path, pa.Schema] = {}
        self._count = 0

    def add(self, batch: GraphBatch) -> None:
        """Stage one chunk's tables (written to disk now, not held), after the chunks added before."""
        for label, frame in batch.nodes.items():
            self.add_frame("node", label, frame)
        for name, frame in batch.relationships.items():
            self.add_frame("rel", name, frame)

    def add_frame(self, kind: str, name: str, frame: pd.DataFrame, place: tuple = ()) -> None:
        """Stage rows of one table. ``place`` says where they go in the whole
        batch: frames are ordered by ``place``, then by the order added (an
        ingest stages ``(table, slot)``: the whole batch holds a table's
        first frame of every chunk before its second one)."""
        if not len(frame):
            return
        self._count += 1
        file = self.root / f"{self._count:08d}.arrow"
        table = pa.Table.from_pandas(frame, preserve_index=False)
        _write_ipc(file, table)
        entries = self._order.setdefault((kind, name), [])
        entries.append((place, self._count, file))
        entries.sort(key=lambda e: (e[0], e[1]))
        self.files[(kind, name)] = [e[2] for e in entries]
        self._schemas[file] = table.schema
        self.rows[(kind, name)] = self.rows.get((kind, name), 0) + len(frame)

    def size(self) -> int:
        return sum(self.rows.values())

    def read(self, kind: str, name: str) -> pa.Table:
        """The staged rows of one table, whole (in the order added), typed as
        the whole batch's table would be (:meth:`batch_schema`)."""
        schema = self.batch_schema(kind, name)
        return pa.concat_tables([_conform(_read_ipc(f), schema) for f in self.files[(kind, name)]])

    def batch_schema(self, kind: str, name: str) -> pa.Schema:
        """The types of the whole batch's table: Arrow's promotion of the
        chunks' types, except that a text column held as ``large_string`` in
        some chunks (pandas' ``str``) and as ``string`` or ``null`` in others
        (Python objects) is ``string``: the whole batch concatenates the
        chunks' frames in pandas, which makes such a column Python objects,
        and Arrow reads those as ``string``."""
        schemas = [self._schemas[f] for f in self.files[(kind, name)]]
        promoted = pa.concat_tables([s.empty_table() for s in schemas], promote_options="permissive").schema
        for i, field in enumerate(promoted):
            kinds = {str(s.field(field.name).type) for s in schemas if field.name in s.names}
            if "large_string" in kinds and kinds & {"string", "null"} and kinds <= {"string", "large_string", "null"}:
                promoted = promoted.set(i, field.with_type(pa.string()))
        return promoted

    def schema(self, kind: str, name: str, old: Path | None) -> pa.Schema:
        """The schema the whole merge would give (stored table first, then the batch)."""
        empty = ([pq.read_schema(old).empty_table()] if old else []) + [self.batch_schema(kind, name).empty_table()]
        return _no_null_columns(pa.concat_tables(empty, promote_options="permissive")).schema

    def partitions(
        self, kind: str, name: str, old: Path | None, identity: list[str], schema: pa.Schema
    ) -> Iterator[tuple[pa.Table, pa.Table]]:
        """Each partition of the table: (its stored rows, its staged rows), in order."""
        staged = self.files[(kind, name)]
        total = self.rows[(kind, name)] + (pq.ParquetFile(old).metadata.num_rows if old else 0)
        count = max(-(-total // self.partition_rows), 1)
        folder = self.root / f"parts-{kind}-{name}"
        private_dir(folder)
        writers: dict[tuple[str, int], _IpcFile] = {}

        def spread(side: str, table: pa.Table) -> None:
            table = _conform(table, schema)
            part = _partition_of(table, identity[:1], count)
            order = np.argsort(part, kind="stable")  # one take; a partition keeps its rows' order
            table, part = table.take(pa.array(order)), part[order]
            bounds = np.searchsorted(part, np.arange(count + 1))
            for j in np.flatnonzero(np.diff(bounds)):
                key = (side, int(j))
                if key not in writers:
                    # read back once, at once, and deleted: not worth compressing
                    writers[key] = _IpcFile(folder / f"{side}-{j:05d}.arrow", schema, compressed=False)
                writers[key].write(table.slice(int(bounds[j]), int(bounds[j + 1] - bounds[j])))

        try:
            if old is not None:
                for batch in pq.ParquetFile(old).iter_batches(batch_size=STREAM_ROWS):
                    spread("old", pa.Table.from_batches([batch]))
            for file in staged:
                spread("new", _read_ipc(file))
        finally:
            for writer in writers.values():
                writer.close()
        for j in range(count):
            sides = []
            for side in ("old", "new"):
                file = folder / f"{side}-{j:05d}.arrow"
                sides.append(_read_ipc(file) if file.exists() else schema.empty_table())
                file.unlink(missing_ok=True)
            yield sides[0], sides[1]
        shutil.rmtree(folder, ignore_errors=True)

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> StagedWrite:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


#: staged tables are Arrow IPC files: several times cheaper to write and read
#: back than Parquet, and read only by this process (LZ4 keeps them about as small)
_IPC_OPTIONS = pa.ipc.IpcWriteOptions(compression="lz4" if pa.Codec.is_available("lz4_frame") else None)


class _IpcFile:
    """One staged file written a table at a time."""

    def __init__(self, file: Path, schema: pa.Schema, compressed: bool = True) -> None:
        self._sink = pa.OSFile(str(file), "wb")
        options = _IPC_OPTIONS if compressed else pa.ipc.IpcWriteOptions()
        self._writer = pa.ipc.new_file(self._sink, schema, options=options)

    def write(self, table: pa.Table) -> None:
        self._writer.write_table(table)

    def close(self) -> None:
        try:
            self._writer.close()
        finally:
            self._sink.close()


def _write_ipc(file: Path, table: pa.Table) -> None:
    writer = _IpcFile(file, table.schema)
    try:
        writer.write(table)
    finally:
        writer.close()


def _read_ipc(file: Path) -> pa.Table:
    """A staged file's rows, read into memory (not mapped: its pages would count as the process's own)."""
    with pa.OSFile(str(file)) as source:
        return pa.ipc.open_file(source).read_all()


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    return pa.Table.from_arrays(
        [
            table.column(f.name).cast(f.type) if f.name in table.column_names else pa.nulls(table.num_rows, f.type)
            for f in schema
        ],
        schema=schema,
    )


def _partition_of(table: pa.Table, identity: list[str], count: int) -> np.ndarray:
    """Partition number of each row: a hash of its identity values (the same
    values, the same partition, whatever their chunk)."""
    if count == 1:
        return np.zeros(table.num_rows, dtype=np.int64)
    frame = pd.DataFrame({c: table.column(c).to_pandas().astype("str") for c in identity})
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return (hashed % np.uint64(count)).astype(np.int64)
