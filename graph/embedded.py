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
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from graph.model import NODE_TYPES, REL_TYPES
from graph.store import GraphBatch, GraphCounts, Progress

__all__ = ["EmbeddedStore", "merge_frames"]

FORMAT_VERSION = 1


def merge_frames(old: pd.DataFrame | None, new: pd.DataFrame, identity: list[str]) -> pd.DataFrame:
    """Merge ``new`` rows into ``old`` by the ``identity`` columns.

    For a row present in both, a non-null value in ``new`` wins and a null in
    ``new`` keeps the old value (Cypher's ``SET n += props`` with nulls left
    out). Row order: old rows first, then rows new to the table.

    Example
    -------
    >>> old = pd.DataFrame({"key": ["a", "b"], "x": [1.0, 2.0]})
    >>> new = pd.DataFrame({"key": ["b", "c"], "x": [None, 3.0]})
    >>> merge_frames(old, new, ["key"]).to_dict("list")
    {'key': ['a', 'b', 'c'], 'x': [1.0, 2.0, 3.0]}

    Notes
    -----
    O(n) hashing when keys do not collide; a group-by only when they do.
    """
    frames = [f for f in (old, new) if f is not None and len(f)]
    if not frames:
        return new.iloc[0:0]
    combined = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0].reset_index(drop=True)
    duplicated = combined.duplicated(identity, keep=False)
    if not duplicated.any():
        return combined
    unique_part = combined[~duplicated]
    # groupby().last() takes the last non-null value per column: new wins,
    # nulls in new keep the old value.
    merged = combined[duplicated].groupby(identity, sort=False, dropna=False).last().reset_index()
    merged = merged[combined.columns]
    out = pd.concat([unique_part, merged], ignore_index=True)
    return out.astype(combined.dtypes.to_dict(), errors="ignore")


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
        file = self._rel_file(name)
        if not file.exists():
            return pd.DataFrame({"src": pd.Series([], dtype="str"), "dst": pd.Series([], dtype="str")})
        if columns is not None:
            present = set(pq.read_schema(file).names)
            columns = [c for c in dict.fromkeys(["src", "dst", *columns]) if c in present]
        return pq.read_table(file, columns=columns).to_pandas()

    def node_properties(self, label: str, keys: list[str], properties: list[str]) -> pd.DataFrame:
        table = self.read_nodes(label, ["key", *properties])
        found = table[table["key"].isin(list(keys))]
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
        for kind, name, frame in steps:
            if kind == "node":
                file, identity = self._node_file(name), ["key"]
            else:
                file, identity = self._rel_file(name), ["src", "dst", *REL_TYPES[name].identity]
            old = pq.read_table(file).to_pandas() if file.exists() else None
            merged = merge_frames(old, _dedupe_within(frame, identity), identity)
            _atomic_write_parquet(file, merged)
            done += len(frame)
            if progress:
                progress(f"write {name}", done, total)

    def clear(self) -> None:
        """Delete every table of this store (tests and ``ingest --replace``)."""
        for sub in ("nodes", "rels"):
            folder = self.path / sub
            if folder.exists():
                for file in folder.glob("*.parquet"):
                    file.unlink()

    def close(self) -> None:  # nothing held open
        return None


def _dedupe_within(frame: pd.DataFrame, identity: list[str]) -> pd.DataFrame:
    """Collapse repeated identities inside one batch (last non-null wins)."""
    if not frame.duplicated(identity).any():
        return frame
    return merge_frames(None, frame, identity)


def _row_count(file: Path) -> int:
    return pq.ParquetFile(file).metadata.num_rows if file.exists() else 0


def _atomic_write_parquet(file: Path, frame: pd.DataFrame) -> None:
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_suffix(f".parquet.tmp{os.getpid()}")
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, file)


def _atomic_write_text(file: Path, text: str) -> None:
    tmp = file.with_suffix(file.suffix + f".tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, file)
