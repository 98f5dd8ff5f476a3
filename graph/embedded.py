"""The embedded default store: columnar Parquet files in a folder, no server.

Layout of a store folder (default ``./.ringscope``)::

    store.json                      format version
    nodes/<Label>.parquet           key + properties, one row per node
    rels/<Source-TYPE-Target>.parquet   src, dst, identity + properties

Each table is rewritten whole through a temporary file and an atomic
``os.replace``, so a killed write leaves either the old or the new table,
never half of one; since merging is idempotent, running the same ingest again
finishes the job. Whole-portfolio detectors read these tables directly as
columns (pandas / pyarrow), which is what makes 1M applications cheap.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from graph.model import DERIVED_LABELS, DERIVED_RELS, NODE_TYPES, REL_TYPES
from graph.store import GraphBatch, GraphCounts, Progress

__all__ = ["EmbeddedStore", "merge_frames"]

FORMAT_VERSION = 1


def merge_frames(old: pd.DataFrame | None, new: pd.DataFrame, identity: list[str]) -> pd.DataFrame:
    """Merge ``new`` rows into ``old`` by the ``identity`` columns.

    For a row present in both, a non-null value in ``new`` wins and a null in
    ``new`` keeps the old value (Cypher's ``SET n += props`` with nulls left
    out). Row order: rows without a collision first, then the merged ones.

    Example
    -------
    >>> old = pd.DataFrame({"key": ["a", "b"], "x": [1.0, 2.0]})
    >>> new = pd.DataFrame({"key": ["b", "c"], "x": [None, 3.0]})
    >>> merge_frames(old, new, ["key"]).to_dict("list")
    {'key': ['a', 'c', 'b'], 'x': [1.0, 3.0, 2.0]}

    Notes
    -----
    O(n) hashing in Arrow; only colliding rows are grouped.
    """
    old_table = None if old is None else pa.Table.from_pandas(old, preserve_index=False)
    return merge_tables(old_table, pa.Table.from_pandas(new, preserve_index=False), identity).to_pandas()


def merge_tables(old: pa.Table | None, new: pa.Table, identity: list[str]) -> pa.Table:
    """Arrow version of :func:`merge_frames` (what the store uses)."""
    tables = [t for t in (old, new) if t is not None and t.num_rows]
    if not tables:
        return new
    table = pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]
    table = _no_null_columns(table)
    duplicated = _duplicated_mask(table, identity)
    if not duplicated.any():
        return table  # nothing collided: keep the input as it is
    others = [c for c in table.column_names if c not in identity]
    # Only the colliding rows go through the (ordered, single-threaded)
    # group-by; 'last' skips nulls, so new non-null values win.
    colliding = table.filter(pa.array(duplicated))
    grouped = colliding.group_by(identity, use_threads=False).aggregate([(c, "last") for c in others])
    grouped = grouped.rename_columns(
        [c[:-5] if c.endswith("_last") and c[:-5] in others else c for c in grouped.column_names]
    ).select(table.column_names)
    return pa.concat_tables([table.filter(pa.array(~duplicated)), grouped.cast(table.schema)])


def _duplicated_mask(table: pa.Table, identity: list[str]) -> np.ndarray:
    """True for every row whose identity occurs more than once.

    Each identity column is dictionary-encoded (Arrow's hash); if one of them
    never repeats, no identity can (true of most tables, e.g. one HAS_PHONE
    per application). Otherwise the codes are combined pairwise into one
    integer code per row and counted.
    """
    n = table.num_rows
    encoded = []
    for column in identity:
        codes, distinct = _codes(table.column(column))
        if distinct == n:
            return np.zeros(n, dtype=bool)
        encoded.append(codes)
    combined = encoded[0]
    for codes in encoded[1:]:
        pair = combined * (int(codes.max(initial=0)) + 2) + codes
        combined = pd.factorize(pair)[0].astype(np.int64)
    counts = np.bincount(combined)
    return counts[combined] > 1


def _codes(column: pa.ChunkedArray) -> tuple[np.ndarray, int]:
    """Dense integer code per value (nulls share code 0) and the number of
    distinct non-null values when there are no nulls (-1 otherwise)."""
    encoded = column.combine_chunks().dictionary_encode()
    distinct = len(encoded.dictionary) if encoded.null_count == 0 else -1
    return pc.fill_null(pc.add(encoded.indices.cast(pa.int64()), 1), 0).to_numpy(), distinct


def _no_null_columns(table: pa.Table) -> pa.Table:
    """Give all-null columns a real type (text) so they aggregate and concatenate."""
    for i, field in enumerate(table.schema):
        if pa.types.is_null(field.type):
            table = table.set_column(i, field.name, table.column(i).cast(pa.string()))
    return table


class EmbeddedStore:
    """A graph store in a local folder of Parquet tables (the default).

    Parameters
    ----------
    path : str or Path
        Store folder; created on first write.

    Example
    -------
    >>> import tempfile
    >>> store = EmbeddedStore(tempfile.mkdtemp())
    >>> store.write(GraphBatch(nodes={"Phone": pd.DataFrame({"key": ["+8613800138000"]})}))
    >>> store.counts().nodes["Phone"]
    1
    """

    kind = "embedded"

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.location = str(self.path.resolve())

    # -- layout --------------------------------------------------------
    def _node_file(self, label: str) -> Path:
        return self.path / "nodes" / f"{label}.parquet"

    def _rel_file(self, name: str) -> Path:
        return self.path / "rels" / f"{name}.parquet"

    def ensure_schema(self) -> None:
        (self.path / "nodes").mkdir(parents=True, exist_ok=True)
        (self.path / "rels").mkdir(parents=True, exist_ok=True)
        meta = self.path / "store.json"
        if meta.exists():
            version = json.loads(meta.read_text(encoding="utf-8")).get("format_version")
            if version != FORMAT_VERSION:
                raise RuntimeError(
                    f"Store {self.location} has format version {version}; this ringscope reads {FORMAT_VERSION}."
                )
        else:
            _atomic_write_text(meta, json.dumps({"format_version": FORMAT_VERSION, "kind": "ringscope-embedded"}))

    # -- reading -------------------------------------------------------
    def read_nodes(self, label: str, columns: list[str] | None = None) -> pd.DataFrame:
        """Whole node table for ``label`` (empty frame with ``key`` if none)."""
        if label not in NODE_TYPES:
            raise KeyError(f"Unknown node label {label!r}")
        _check_columns(columns, ("key", *NODE_TYPES[label].properties), label)
        file = self._node_file(label)
        if not file.exists():
            return pd.DataFrame({"key": pd.Series([], dtype="str")})
        if columns is not None:
            present = set(pq.read_schema(file).names)
            columns = [c for c in dict.fromkeys(["key", *columns]) if c in present]
        return pq.read_table(file, columns=columns).to_pandas()

    def read_relationships(self, name: str, columns: list[str] | None = None) -> pd.DataFrame:
        """Whole relationship table ``name`` (``Source-TYPE-Target``)."""
        if name not in REL_TYPES:
            raise KeyError(f"Unknown relationship {name!r}")
        rt = REL_TYPES[name]
        _check_columns(columns, ("src", "dst", *rt.identity, *rt.properties), name)
        file = self._rel_file(name)
        if not file.exists():
            return pd.DataFrame({"src": pd.Series([], dtype="str"), "dst": pd.Series([], dtype="str")})
        if columns is not None:
            present = set(pq.read_schema(file).names)
            columns = [c for c in dict.fromkeys(["src", "dst", *columns]) if c in present]
        return pq.read_table(file, columns=columns).to_pandas()

    def node_properties(self, label: str, keys: list[str], properties: list[str]) -> pd.DataFrame:
        file = self._node_file(label)
        if not file.exists():
            return pd.DataFrame(columns=["key", *properties])
        present = set(pq.read_schema(file).names)
        table = pq.read_table(file, columns=[c for c in dict.fromkeys(["key", *properties]) if c in present])
        table = table.filter(pc.is_in(table.column("key"), value_set=pa.array(list(keys), type=pa.string())))
        found = table.to_pandas()
        for prop in properties:
            if prop not in found.columns:
                found[prop] = None
        return found[["key", *properties]].reset_index(drop=True)

    def counts(self) -> GraphCounts:
        nodes = {label: _row_count(self._node_file(label)) for label in NODE_TYPES}
        rels: dict[str, int] = {}
        for name, rt in REL_TYPES.items():
            rels[rt.type] = rels.get(rt.type, 0) + _row_count(self._rel_file(name))
        return GraphCounts(nodes=nodes, relationships=rels)

    # -- writing -------------------------------------------------------
    def write(self, batch: GraphBatch, progress: Progress | None = None) -> None:
        self.ensure_schema()
        steps = [("node", label, frame) for label, frame in batch.nodes.items() if len(frame)]
        steps += [("rel", name, frame) for name, frame in batch.relationships.items() if len(frame)]
        total = sum(len(f) for _, _, f in steps)
        done = 0
        writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parquet-writer")
        pending: list[Future] = []
        for kind, name, frame in steps:
            if kind == "node":
                file, identity = self._node_file(name), ["key"]
            else:
                file, identity = self._rel_file(name), ["src", "dst", *REL_TYPES[name].identity]
            old = pq.read_table(file) if file.exists() else None
            merged = merge_tables(old, pa.Table.from_pandas(frame, preserve_index=False), identity)
            # Encoding Parquet releases the GIL: let the other core do it
            # while the next table is merged.
            pending.append(writer.submit(_atomic_write_parquet, file, merged))
            done += len(frame)
            if progress:
                progress(f"write {name}", done, total)
        for future in pending:
            future.result()  # re-raise a failed write
        writer.shutdown()

    def clear(self) -> None:
        """Delete every table of this store (tests and ``ingest --replace``)."""
        for sub in ("nodes", "rels"):
            folder = self.path / sub
            if folder.exists():
                for file in folder.glob("*.parquet"):
                    file.unlink()

    def replace_derived(self, batch: GraphBatch, progress: Progress | None = None) -> None:
        """Delete every finding and SIMILAR_TO edge, then write ``batch``."""
        for label in DERIVED_LABELS:
            self._node_file(label).unlink(missing_ok=True)
        for name in DERIVED_RELS:
            self._rel_file(name).unlink(missing_ok=True)
        self.write(batch, progress)

    def close(self) -> None:  # nothing held open
        return None


def _check_columns(columns: list[str] | None, allowed: tuple[str, ...], owner: str) -> None:
    unknown = set(columns or ()) - set(allowed)
    if unknown:
        raise KeyError(f"Properties {sorted(unknown)} are not in the model of {owner}")


def _row_count(file: Path) -> int:
    return pq.ParquetFile(file).metadata.num_rows if file.exists() else 0


def _atomic_write_parquet(file: Path, table: pa.Table) -> None:
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_suffix(f".parquet.tmp{os.getpid()}")
    # snappy: several times faster to write than zstd, files a little larger
    pq.write_table(table, tmp, compression="snappy")
    os.replace(tmp, file)


def _atomic_write_text(file: Path, text: str) -> None:
    tmp = file.with_suffix(file.suffix + f".tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, file)
