"""``ringscope flag``'s index, saved beside the store for the next run.

Building a :class:`ringscope.detectors.risk.flagging.FlagIndex` reads the whole store into a
:class:`ringscope.detectors.portfolio.Portfolio` (a minute at a million applications
embedded, ten over Bolt) and the detectors' whole-book statistics take one to
three more. Both are a function of the stored data, the detectors' code and
parameters, so ``flag`` saves them after its run and the next run loads them
when nothing has changed since — the store's revision
(:meth:`ringscope.graph.store.GraphStore.revision`), this format's version, a digest of
the detectors' source and their parameters all equal — and rebuilds them
otherwise.

Where: ``<store>/cache/flag/`` for the embedded store; for Neo4j
``$XDG_DATA_HOME/ringscope/cache/<store identity>/flag/`` (default
``~/.local/share/...``, keyed like the models by the database's own id).
Folders 0700, files 0600, each written atomically.

What: the portfolio tables as Arrow IPC files (``tables/*.arrow``, uncompressed:
read back without decoding; the
applications, identifier links, contacts, guarantees, roles, persons,
companies, the entities of the last ``detect`` and the other tables the
detectors read, as they were read before detection), the index's arrays
(``index/``: ``.npy`` read without pickle, text and tables as Arrow), the
values read as missing (JSON), in ``findings.pkl`` the stored findings, the
settings the last ``detect`` saved and the run's detection around its batch,
and in ``statistics.pkl`` the detectors' statistics (fitted identity model,
hub tables, rates, peer groups: Python objects, so pickles). With
``ingest.pkl`` the run also records what ingesting its folder again reports
on the saved revision (the folder's digest, the limits, the ingest code's
digest, the summary and rejects): its own ingest when that changed nothing,
else a dry run of it after the run's writes (``ringscope.app.jobs``). The
same folder again on that revision changes nothing, and is not read again
(:func:`unchanged_ingest`).
``manifest.json``, written last, names every file with its SHA-256; a load
verifies every digest before reading the file (the pickles included), so a
partial or corrupt save is never trusted: it is rebuilt, with a warning.
The statistics are read (and their digest checked) only when a detector
needs them: a repeat run of the same batch on an unchanged store reuses the
saved detection around it (the same findings, as the same data and code
give them) and never unpickles the identity model.

The updated state a ``flag`` run saves is what a cold run would build after
it: the same tables (its scores are not portfolio columns), the statistics
it computed over the book with its batch, and the stored findings with its
new ones as the store reads them back (:func:`ringscope.detectors.runner.stored_form`).
"""

from __future__ import annotations

import copyreg
import gc
import hashlib
import io
import json
import pickle
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ringscope.detectors.values import BadValues
from ringscope.graph.files import atomic_open, atomic_write_bytes, atomic_write_text, private_dir

__all__ = [
    "FORMAT_VERSION",
    "FlagStateWarning",
    "StateInfo",
    "state_folder",
    "code_version",
    "save_state",
    "refresh_state",
    "load_state",
    "discard_state",
    "SavedStatistics",
    "release_memory",
    "drop_caches",
    "dump_pickle",
    "ingest_key",
    "unchanged_ingest",
]

#: bump when what is saved, or how, changes
#: 2: the links of each application as integer codes, not a table;
#: 3: the statistics in their own pickle (read on first use), the batch's detection and a no-op ingest kept
FORMAT_VERSION = 3
MANIFEST = "manifest.json"
STATISTICS = "statistics.pkl"
FINDINGS = "findings.pkl"
INGEST = "ingest.pkl"
#: Portfolio tables saved (cached properties of ``Portfolio``)
_TABLES = ("applications", "contacts", "guarantees", "roles", "persons", "companies", "links")
_ENTITY_LABELS = ("Person", "Company")


class FlagStateWarning(UserWarning):
    """The saved flag state could not be used (it is rebuilt)."""


@dataclass
class StateInfo:
    """How a run got its index: ``"loaded"`` (saved state) or ``"rebuilt"``
    (read from the store), in ``seconds``; ``reason`` says why it was rebuilt."""

    how: str
    seconds: float
    reason: str = ""

    def describe(self) -> str:
        """One line for the CLI summary.

        Example
        -------
        >>> StateInfo("rebuilt", 12.3, "the store changed since it was saved").describe()
        'index rebuilt from the store in 12.3 s (the store changed since it was saved)'
        """
        if self.how == "loaded":
            return f"index loaded from the saved flag state in {self.seconds:.1f} s"
        return f"index rebuilt from the store in {self.seconds:.1f} s" + (f" ({self.reason})" if self.reason else "")


def state_folder(store: Any) -> Path:
    """Where ``store``'s flag state lives (see the module docstring).

    Example
    -------
    >>> import tempfile
    >>> from ringscope.graph.embedded import EmbeddedStore
    >>> folder = tempfile.mkdtemp()
    >>> state_folder(EmbeddedStore(folder)) == Path(folder).resolve() / "cache" / "flag"
    True
    """
    if getattr(store, "kind", "") == "embedded":
        return Path(store.location) / "cache" / "flag"
    from ringscope.detectors.risk.model_store import store_identity, user_data_dir

    return user_data_dir() / "cache" / store_identity(store) / "flag"


def code_version() -> str:
    """A digest of what the saved state depends on besides the data: this
    format, the source of every detector module and of the graph model (a
    changed detector, threshold rule or statistic invalidates the state),
    and each registered detector's parameters.

    Example
    -------
    >>> len(code_version())
    64
    """
    import ringscope.detectors
    import ringscope.graph.model
    from ringscope.detectors.registry import DETECTORS, build_detector

    digest = hashlib.sha256(f"flag-state {FORMAT_VERSION}".encode())
    detectors = Path(ringscope.detectors.__file__).resolve().parent
    # the detectors and the linkage engine they run on; not the risk model (it is saved with its own version)
    sources = [
        *detectors.glob("*.py"),
        *(detectors / "resolution").glob("*.py"),
        Path(ringscope.graph.model.__file__).resolve(),
    ]
    for file in sorted(sources, key=lambda path: (path.parent.name, path.name)):
        digest.update(file.parent.name.encode() + b"/" + file.name.encode() + b"\0" + file.read_bytes() + b"\0")
    for name in DETECTORS:
        digest.update(repr(build_detector(name)).encode() + b"\0")
    return digest.hexdigest()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _table_bytes(frame: pd.DataFrame) -> bytes:
    """``frame`` as an Arrow IPC file, each column's pandas dtype in the schema's
    metadata: Arrow reads object columns of text back as ``str`` and the
    index as columns, and the index must come back exactly as it was."""
    sink = io.BytesIO()
    _write_table(frame, sink)
    return sink.getvalue()


def _write_table(frame: pd.DataFrame, handle) -> None:
    """Write ``frame`` as :func:`_table_bytes` makes it to ``handle`` (a
    binary file object), a record batch at a time: the file is never held
    whole in memory beside the table."""
    frame = frame.reset_index(drop=not _keeps_index(frame), names=["__index__"] if _keeps_index(frame) else None)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    dtypes = {str(c): str(frame[c].dtype) for c in frame.columns}
    # which missing value an object column holds: None (read from a store) or pd.NA (a column added empty)
    na = {str(c): _missing_kind(frame[c]) for c in frame.columns if frame[c].dtype == object}
    table = table.replace_schema_metadata(
        {b"ringscope": json.dumps({"dtypes": dtypes, "na": na, "columns": [str(c) for c in frame.columns]}).encode()}
    )
    del frame
    # Arrow IPC, uncompressed: read back without decoding (Parquet's decoding was most of a load)
    with pa.ipc.new_file(pa.PythonFile(handle, mode="w"), table.schema) as writer:
        writer.write_table(table)


class _Hashing:
    """A binary file object that hashes what is written through it (SHA-256)."""

    def __init__(self, handle) -> None:
        self.handle, self.digest = handle, hashlib.sha256()

    def write(self, data) -> int:
        self.digest.update(data)
        return self.handle.write(data)

    def flush(self) -> None:
        self.handle.flush()

    @property
    def closed(self) -> bool:
        return self.handle.closed

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        return self.handle.tell()


def _missing_kind(column: pd.Series) -> str:
    """Which missing value an object column holds: ``None`` (as read from a
    store), ``pd.NA`` (a column added empty) or ``nan`` (a reindex)."""
    for value in column:
        if value is pd.NA:
            return "NA"
        if isinstance(value, float) and value != value:
            return "nan"
    return "None"


def _array_bytes(value: Any) -> tuple[dict, bytes]:
    """One of ``FlagIndex.arrays()`` as bytes (numbers as ``.npy``, text and
    tables as Arrow) and how to read it back."""
    how, write = _array_writer(value)
    sink = io.BytesIO()
    write(sink)
    return how, sink.getvalue()


def _array_writer(value: Any) -> tuple[dict, Any]:
    """How :func:`_array` reads ``value`` back, and a function writing its
    bytes (:func:`_array_bytes`) to a binary file object."""
    if isinstance(value, pd.DataFrame):
        if isinstance(value.index, pd.MultiIndex):
            return {"as": "frame", "index": list(value.index.names)}, lambda h: _write_table(value.reset_index(), h)
        return {"as": "frame"}, lambda h: _write_table(value, h)
    if isinstance(value, pd.Index):
        return {"as": "index", "name": value.name}, lambda h: _write_table(
            pd.DataFrame({"v": pd.Series(value.to_numpy(), dtype=value.dtype)}), h
        )
    if isinstance(value, (pa.Array, pa.ChunkedArray)):  # text held by Arrow: saved as the object array it stands for
        return {"as": "objects"}, lambda h: _write_text(value, h)
    value = np.asarray(value)
    if value.dtype == object:
        return {"as": "objects"}, lambda h: _write_table(pd.DataFrame({"v": pd.Series(value, dtype=object)}), h)
    return {"as": "npy"}, lambda h: np.save(h, value, allow_pickle=False)


def _write_text(values: pa.Array | pa.ChunkedArray, handle) -> None:
    """Arrow text as :func:`_write_table` writes the object column of Python
    strings it stands for (the same file, read back by :func:`_array` as
    that object array), without making that column: at a million
    applications the identifier index's keys as Python strings, and Arrow's
    copy of them, were most of the state save's peak (+1.15 GB)."""
    column = values.cast(pa.string())  # what Arrow makes of an object column of text
    na = "None"  # a missing key comes back as None, as from an object column holding None
    meta = {"dtypes": {"v": "object"}, "na": {"v": na}, "columns": ["v"]}
    table = pa.table({"v": column}).replace_schema_metadata({b"ringscope": json.dumps(meta).encode()})
    with pa.ipc.new_file(pa.PythonFile(handle, mode="w"), table.schema) as writer:
        writer.write_table(table)


def _array(how: dict, blob: bytes) -> Any:
    if how["as"] == "npy":
        return np.load(io.BytesIO(blob), allow_pickle=False)
    frame = _frame(blob)
    if how["as"] == "frame":
        return frame.set_index(how["index"]) if how.get("index") else frame
    if how["as"] == "index":
        return pd.Index(frame["v"]).rename(how.get("name"))
    return frame["v"].to_numpy()


def _keeps_index(frame: pd.DataFrame) -> bool:
    return not (isinstance(frame.index, pd.RangeIndex) and frame.index.start == 0 and frame.index.step == 1)


def _frame(blob: bytes) -> pd.DataFrame:
    """The frame :func:`_table_bytes` saved, with its dtypes: object
    columns as object arrays (``None`` for missing, as read from a store)."""
    table = pa.ipc.open_file(pa.py_buffer(blob)).read_all()  # zero copy: the columns share ``blob``
    meta = json.loads(table.schema.metadata[b"ringscope"])
    columns = {}
    for name in meta["columns"]:
        dtype, column = meta["dtypes"][name], table.column(name)
        if dtype == "object":
            values = column.to_numpy(zero_copy_only=False).astype(object)
            kind = meta["na"].get(name)
            if kind in ("NA", "nan"):
                values[pd.isna(values)] = pd.NA if kind == "NA" else np.nan
            columns[name] = pd.Series(values, dtype=object)
        else:
            values = pa.table({name: column}).to_pandas()[name]
            columns[name] = values if str(values.dtype) == dtype else values.astype(dtype)
    frame = pd.DataFrame(columns, index=pd.RangeIndex(table.num_rows))
    if "__index__" in frame.columns:
        frame = frame.set_index("__index__")
        frame.index.name = None
    return frame


def save_state(
    store: Any,
    index: Any,
    revision: str,
    findings: list | None = None,
    detection: tuple | None = None,
    ingest: dict | None = None,
) -> Path:
    """Save ``index`` (a ``FlagIndex`` that has run its detection) as the
    state of ``store`` at ``revision``; ``findings``: the stored findings at
    that revision (default the index's own); ``detection``: ``(key,
    IncrementalRun)`` of the run's batch, reused by a run of the same batch
    at the same revision; ``ingest``: a no-op ingest to remember
    (:func:`unchanged_ingest`). Returns the folder.

    Statistics the index never loaded (``SavedStatistics`` still pending:
    its detection was reused) stay in their file, under their digest.

    The portfolio tables are saved as they are; its identity maps adopted
    during detection are not (a fresh index starts from the stored entities,
    and identity's statistics bring the new ones again).
    """
    folder = private_dir(state_folder(store))
    private_dir(folder / "tables")
    private_dir(folder / "index")
    # the old manifest goes first: a save killed midway leaves no state, never a mix
    (folder / MANIFEST).unlink(missing_ok=True)
    portfolio = index.portfolio
    files: dict[str, str] = {}

    def put(name: str, data: bytes) -> None:
        atomic_write_bytes(folder / name, data)
        files[name] = _sha(data)

    def put_streamed(name: str, write) -> None:
        """``write(handle)`` into ``name``, hashed on the way: the file's bytes
        are never held whole (the tables and the statistics pickle at a
        million applications made the save peak 1.8 GB above the run)."""
        with atomic_open(folder / name, "wb") as handle:
            hashing = _Hashing(handle)
            write(hashing)
        files[name] = hashing.digest.hexdigest()

    def put_table(name: str, frame: pd.DataFrame) -> None:
        put_streamed(name, lambda handle: _write_table(frame, handle))

    def put_pickle(name: str, value: Any) -> None:
        put_streamed(name, lambda handle: dump_pickle(value, handle))

    saved_tables = []
    tables = portfolio.cached_tables()
    for name in _TABLES:
        if name in tables:
            put_table(f"tables/{name}.arrow", tables[name])
            saved_tables.append(name)
    links_by_kind = tables.get("_links_by_kind")
    if links_by_kind is not None:
        for kind, frame in links_by_kind.items():
            put_table(f"tables/links_by_kind.{kind}.arrow", frame)
    entity_maps = portfolio.stored_entity_maps
    saved_maps = {}
    for label in _ENTITY_LABELS:
        if label in entity_maps:
            mapping = entity_maps[label]
            saved_maps[label] = mapping is not None
            if mapping is not None:
                put_table(f"tables/entities.{label}.arrow", mapping.to_frame("entity"))
    arrays = {}
    for name, value in index.arrays().items():
        how, write = _array_writer(value)
        put_streamed(f"index/{name.lstrip('_')}.{'npy' if how['as'] == 'npy' else 'arrow'}", write)
        arrays[name] = {**how, "file": f"index/{name.lstrip('_')}.{'npy' if how['as'] == 'npy' else 'arrow'}"}
    reads = []
    for i, ((kind, name, columns), frame) in enumerate(
        sorted((portfolio.reads or {}).items(), key=lambda item: repr(item[0]))
    ):
        put_table(f"tables/read.{i}.arrow", frame)
        reads.append(
            {
                "file": f"tables/read.{i}.arrow",
                "kind": kind,
                "name": name,
                "columns": None if columns is None else list(columns),
            }
        )
    put(
        "bad_values.json",
        json.dumps([asdict(b) for b in portfolio.bad_values], ensure_ascii=False, default=str).encode("utf-8"),
    )
    pending = getattr(index, "pending_statistics", None)
    if pending is not None and pending.folder == folder and (folder / STATISTICS).is_file():
        # never unpickled this run, so unchanged: the file stays; a damaged one fails its digest next time
        files[STATISTICS] = pending.digest
        statistics = list(pending.names)
    else:
        statistics = sorted(index.detector_statistics)
        put_pickle(STATISTICS, dict(index.detector_statistics))
    put_pickle(
        FINDINGS,
        {
            "findings": list(index.findings if findings is None else findings),
            # the settings the store's last detect saved, as the index ran with them
            "settings": index.settings.to_json(),
            "detection": detection,
        },
    )
    if ingest is not None:
        put_pickle(INGEST, ingest)
    manifest = {
        "format_version": FORMAT_VERSION,
        "revision": revision,
        "code_version": code_version(),
        "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "store": getattr(store, "location", ""),
        "tables": saved_tables,
        "links_by_kind": sorted(links_by_kind) if links_by_kind is not None else None,
        "entities": saved_maps,
        "reads": reads,
        "arrays": arrays,
        "statistics": sorted(statistics),
        "ingest": None if ingest is None else ingest["key"],
        "files": files,
    }
    atomic_write_text(folder / MANIFEST, json.dumps(manifest, indent=1, ensure_ascii=False))
    _remove_unlisted(folder, files)
    return folder


class _StatePickler(pickle.Pickler):
    """``pickle.dump`` at the highest protocol, the same bytes, without a
    copy of every Arrow-backed column.

    pandas pickles an Arrow-backed array (text columns and indexes) with its
    pieces joined (``combine_chunks``): a copy of the column even when it
    is in one piece already, and the pickler's memo keeps every copy alive
    until the whole dump ends. Identity resolution's statistics (records,
    term frequencies, entities: ~800 MB of pickle at a million
    applications) then set the state save's peak, +0.9 GB above the run.
    A column in one piece starting at its buffers' start is pickled as
    that piece, which is what the copy would hold: the same bytes."""

    def reducer_override(self, obj: Any) -> Any:
        from pandas.core.arrays.arrow.array import ArrowExtensionArray

        if (
            isinstance(obj, ArrowExtensionArray)
            and type(obj).__getstate__ is ArrowExtensionArray.__getstate__
            and type(obj).__reduce_ex__ is object.__reduce_ex__
        ):
            pieces = getattr(obj, "_pa_array", None)
            if isinstance(pieces, pa.ChunkedArray) and pieces.num_chunks == 1 and pieces.chunk(0).offset == 0:
                # what ``ArrowExtensionArray.__getstate__`` returns, the piece for its joined copy
                state = obj.__dict__.copy()
                state["_pa_array"] = pieces.chunk(0)
                state["_cache"] = {}
                return copyreg.__newobj__, (type(obj),), state
        return NotImplemented


def dump_pickle(value: Any, handle) -> None:
    """``pickle.dump(value, handle, protocol=pickle.HIGHEST_PROTOCOL)``, the
    same bytes, without copying Arrow-backed columns (:class:`_StatePickler`).

    Example
    -------
    >>> frame = pd.DataFrame({"key": pd.array(["a", "b"], dtype="string[pyarrow]")})
    >>> sink = io.BytesIO()
    >>> dump_pickle(frame, sink)
    >>> sink.getvalue() == pickle.dumps(frame, protocol=pickle.HIGHEST_PROTOCOL)
    True
    """
    _StatePickler(handle, protocol=pickle.HIGHEST_PROTOCOL).dump(value)


def _remove_unlisted(folder: Path, files: dict[str, str]) -> None:
    """Delete what the manifest no longer names (an older format's files, a
    read or kind gone): the folder holds one state, not every one saved."""
    for path in folder.rglob("*"):
        name = path.relative_to(folder).as_posix()
        if path.is_file() and name != MANIFEST and name not in files:
            path.unlink(missing_ok=True)


def refresh_state(
    store: Any, index: Any, revision: str, findings: list, detection: tuple | None, ingest: dict | None
) -> bool:
    """Move the state ``index`` was loaded from (at ``index.revision``) on to
    ``revision`` when only the run's own writes happened in between and the
    index is the saved one unchanged (loaded, its detection reused, so no
    table, array or statistic moved): the findings, the detection and the
    ingest record are written again, every other file stays under its
    digest. ``False`` (and nothing done) when the saved state is not
    ``index.revision``'s; a file damaged meanwhile fails its digest at the
    next load, as ever.
    """
    folder = state_folder(store)
    try:
        manifest, _ = _manifest(folder, index.revision)
    except Exception:
        return False
    if manifest is None or detection is None:
        return False
    (folder / MANIFEST).unlink(missing_ok=True)  # a refresh killed midway leaves no state, never a mix
    files = {name: digest for name, digest in manifest["files"].items() if name not in (FINDINGS, INGEST)}
    blob = pickle.dumps(
        {"findings": list(findings), "settings": index.settings.to_json(), "detection": detection},
        protocol=pickle.HIGHEST_PROTOCOL,
    )
    atomic_write_bytes(folder / FINDINGS, blob)
    files[FINDINGS] = _sha(blob)
    if ingest is not None:
        blob = pickle.dumps(ingest, protocol=pickle.HIGHEST_PROTOCOL)
        atomic_write_bytes(folder / INGEST, blob)
        files[INGEST] = _sha(blob)
    manifest.update(
        revision=revision,
        saved_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        ingest=None if ingest is None else ingest["key"],
        files=files,
    )
    atomic_write_text(folder / MANIFEST, json.dumps(manifest, indent=1, ensure_ascii=False))
    return True


def discard_state(store: Any) -> None:
    """Forget the saved state (its manifest): the next run rebuilds."""
    (state_folder(store) / MANIFEST).unlink(missing_ok=True)


class _Unusable(Exception):
    pass


def _manifest(folder: Path, revision: str) -> tuple[dict | None, str]:
    """The manifest in ``folder`` if it is this format's, code's and
    ``revision``'s, else ``(None, why not)``; ``_Unusable`` if it is no manifest."""
    if not (folder / MANIFEST).is_file():
        return None, "no saved state"
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise _Unusable("manifest is not a state manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        return None, f"saved in format {manifest.get('format_version')}, this ringscope reads {FORMAT_VERSION}"
    if manifest.get("code_version") != code_version():
        return None, "saved by other detector code or parameters"
    if manifest.get("revision") != revision:
        return None, "the store changed since it was saved"
    for name in manifest["files"]:
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise _Unusable(f"manifest names {name!r}")
    return manifest, ""


def release_memory() -> None:
    """Hand memory freed so far back to the system: cyclic garbage first,
    then what Arrow's allocator (mimalloc or jemalloc) keeps for reuse and
    glibc's free lists (``malloc_trim``). Freed memory kept by one
    allocator serves none of the others (Arrow's pages are no use to numpy
    or Python's strings), so ``flag`` calls this between its phases: the
    next phase then grows from what is really held. No result depends on it.
    """
    gc.collect()
    try:
        pa.default_memory_pool().release_unused()
    except (AttributeError, NotImplementedError):  # an older Arrow, another pool
        pass
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def drop_caches(index: Any) -> None:
    """Drop what ``index``'s detection built only to answer more detections
    and scores quickly (the portfolio's derived tables — rings' links,
    contact book, per-application busiest identifiers, ring labels, hub
    reach —, its row maps, the statistics' row look-ups and the index's
    per-link arrays), keeping all that a saved state or a later score
    needs: each is rebuilt on first use, the same. ``flag`` calls it
    once its batch is scored, before writing the scores and saving the
    state, whose peaks would otherwise sit on top of them."""
    portfolio = index.portfolio
    portfolio.derived.clear()
    portfolio.row_maps.clear()
    for stats in index._statistics.values():
        lookups = getattr(stats, "lookups", None)
        if isinstance(lookups, dict):
            lookups.clear()
    index._link_arrays = None
    index._bad_sharers_csr = None
    index._persons_by_key = None
    release_memory()


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a state is read: unpickling tens of
    thousands of findings otherwise runs it over and over (10 s instead of 1)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _verified(folder: Path, name: str, digest: str | None) -> bytes:
    """The bytes of ``folder/name`` if they match ``digest`` (checked before
    anything parses them), else ``_Unusable``."""
    if digest is None:
        raise _Unusable(f"{name} missing")
    try:
        blob = (folder / name).read_bytes()
    except OSError as err:
        raise _Unusable(f"{name}: {err.strerror or err}") from err
    if _sha(blob) != digest:
        raise _Unusable(f"{name} does not match its digest")
    return blob


@dataclass
class SavedStatistics:
    """The detectors' statistics of a loaded state, read on first use
    (:meth:`load`): a run that reuses its saved detection never needs them."""

    folder: Path
    digest: str
    names: list[str]

    def load(self) -> dict[str, Any] | None:
        """The statistics, or ``None`` with a :class:`FlagStateWarning` when
        the file is missing or damaged (the detectors then compute them again
        from the loaded portfolio, as a rebuild would)."""
        try:
            blob = _verified(self.folder, STATISTICS, self.digest)
            with _gc_paused():
                saved = pickle.loads(blob)
            if not isinstance(saved, dict):
                raise _Unusable("statistics are not a dict")
            return saved
        except Exception as exc:
            warnings.warn(
                f"saved flag state in {self.folder} is unusable ({type(exc).__name__}: {exc}); "
                "the detectors' statistics are computed again",
                FlagStateWarning,
                stacklevel=2,
            )
            return None


def load_state(store: Any, revision: str) -> tuple[dict | None, str]:
    """The state saved for ``store`` at ``revision``, or ``(None, why not)``.

    The state is a dict: ``tables`` (name → frame), ``links_by_kind``,
    ``entities`` (label → Series or None), ``bad_values``, ``statistics``
    (a :class:`SavedStatistics`, read on first use), ``findings``,
    ``settings`` and ``detection`` (the saved run's ``(key, IncrementalRun)``
    or ``None``). A state saved at another revision, by another format or
    code, is not used; a corrupt or partial one neither, with a
    :class:`FlagStateWarning` (never an exception).
    """
    folder = state_folder(store)
    try:
        manifest, reason = _manifest(folder, revision)
        if manifest is None:
            return None, reason
        files = manifest["files"]
        if STATISTICS not in files:
            raise _Unusable(f"{STATISTICS} missing")
        # every file read now is verified first; the statistics when they are read, the ingest by its own check
        data = {
            name: _verified(folder, name, digest) for name, digest in files.items() if name not in (STATISTICS, INGEST)
        }

        with _gc_paused():
            state = _parse(manifest, data, folder)
        return state, ""
    except Exception as exc:  # never crash on a bad cache: rebuild
        reason = f"saved flag state in {folder} is unusable ({type(exc).__name__}: {exc}); rebuilt from the store"
        warnings.warn(reason, FlagStateWarning, stacklevel=2)
        return None, f"saved state unusable: {exc}"


def _parse(manifest: dict, data: dict[str, bytes], folder: Path) -> dict[str, Any]:
    """The state from its verified files (see :func:`load_state`)."""

    def table(name: str) -> pd.DataFrame:
        if name not in data:
            raise _Unusable(f"{name} missing")
        return _frame(data[name])

    state: dict[str, Any] = {"tables": {t: table(f"tables/{t}.arrow") for t in manifest.get("tables", [])}}
    kinds = manifest.get("links_by_kind")
    state["links_by_kind"] = None if kinds is None else {k: table(f"tables/links_by_kind.{k}.arrow") for k in kinds}
    state["entities"] = {}
    for label, present in manifest.get("entities", {}).items():
        state["entities"][label] = table(f"tables/entities.{label}.arrow")["entity"] if present else None
    state["reads"] = {
        (r["kind"], r["name"], None if r["columns"] is None else tuple(r["columns"])): table(r["file"])
        for r in manifest.get("reads", [])
    }
    state["arrays"] = {}
    for name, how in manifest["arrays"].items():
        if how["file"] not in data:
            raise _Unusable(f"{how['file']} missing")
        state["arrays"][name] = _array(how, data[how["file"]])
    if "bad_values.json" not in data or FINDINGS not in data:
        raise _Unusable("bad_values.json or findings missing")
    state["bad_values"] = [BadValues(**b) for b in json.loads(data["bad_values.json"].decode("utf-8"))]
    saved = pickle.loads(data[FINDINGS])
    state["findings"] = list(saved["findings"])
    state["settings"] = saved.get("settings")
    state["detection"] = saved.get("detection")
    files = manifest["files"]
    state["statistics"] = SavedStatistics(folder, files[STATISTICS], list(manifest.get("statistics", [])))
    return state


def ingest_key(folder: str | Path, limits: Any = None) -> str:
    """A digest of what an ingest of ``folder`` depends on besides the store:
    the bytes and names of its files, the ``limits`` and the ingest code.

    Example
    -------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "applications.csv").write_text("application_id\\nA1\\n", encoding="utf-8")
    >>> before = ingest_key(folder)
    >>> _ = (folder / "applications.csv").write_text("application_id\\nA2\\n", encoding="utf-8")
    >>> before == ingest_key(folder)
    False
    """
    import ringscope.graph.model
    import ringscope.ingest

    digest = hashlib.sha256(f"ingest {FORMAT_VERSION} {limits!r}".encode())
    code = Path(ringscope.ingest.__file__).resolve().parent
    for file in sorted(code.glob("*.py")) + [Path(ringscope.graph.model.__file__).resolve()]:
        digest.update(file.name.encode() + b"\0" + file.read_bytes() + b"\0")
    root = Path(folder)
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(root)).encode() + b"\0")
        with open(file, "rb") as handle:
            digest.update(hashlib.file_digest(handle, "sha256").digest())
    return digest.hexdigest()


def unchanged_ingest(store: Any, revision: str, key: str) -> dict | None:
    """The ingest a ``flag`` run recorded for ``key`` (:func:`ingest_key`) if
    the state is ``revision``'s: ``{"key", "summary", "rejects"}`` (the
    rejects file's bytes or ``None``), what ingesting those files on that
    revision reports — it changes nothing (the files are in the store; the
    store's own writes since — scores, findings — are not what an ingest
    merges), so the run can take the summary instead of reading the
    store. ``None`` otherwise; a damaged record with a :class:`FlagStateWarning`.
    """
    folder = state_folder(store)
    try:
        manifest, _ = _manifest(folder, revision)
        if manifest is None or manifest.get("ingest") != key:
            return None
        saved = pickle.loads(_verified(folder, INGEST, manifest["files"].get(INGEST)))
        return saved if isinstance(saved, dict) and saved.get("key") == key else None
    except Exception as exc:
        warnings.warn(
            f"saved flag state in {folder} is unusable ({type(exc).__name__}: {exc}); the batch is ingested again",
            FlagStateWarning,
            stacklevel=2,
        )
        return None
