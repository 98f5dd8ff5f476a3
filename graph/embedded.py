"""The embedded default store: columnar Parquet files in a folder, no server.

Layout of a store folder (default ``./.ringscope``, mode 0700, files 0600)::

    store.json                      format version
    nodes/<Label>.parquet           key + properties, one row per node
    rels/<Source-TYPE-Target>.parquet   src, dst, identity + properties
    write.lock                      the write lock (holder's pid, job, start)
    read.lock, swap.lock            readers share the first; a commit's swap takes both alone
    journal.json                    only while a commit swaps its tables in
    revision.json                   the store's revision: replaced by every commit, in its swap
    cache/                          derived state saved beside the store (``ringscope flag``'s index)

A write is all or nothing, however many tables it touches: every new table
is written to a temporary file beside the old one, then a journal naming the
swaps is written and the files are renamed into place. A process killed
before the journal leaves the old store (its temporary files are deleted on
the next open); one killed during the swap leaves a journal that the next
open rolls forward. Readers hold ``read.lock`` shared for each read (and for
a whole :meth:`EmbeddedStore.reading` block), so a reader never sees half a
commit. Whole-portfolio detectors read these tables directly as columns
(pandas / pyarrow), which is what makes 1M applications cheap.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ringscope.graph.files import TMP_MARKER, atomic_write_text, private_dir, remove_leftovers
from ringscope.graph.locking import FileLock, LockHolder, OnWait, StoreBusy
from ringscope.graph.merging import _same_rows, merge_frames, merge_parquet, merge_tables
from ringscope.graph.model import DERIVED_LABELS, DERIVED_RELS, NODE_TYPES, REL_TYPES
from ringscope.graph.staged import STAGING, StagedWrite, _conform
from ringscope.graph.store import WRITE_POLICIES, Detach, GraphBatch, GraphCounts, Progress

__all__ = ["EmbeddedStore", "merge_frames", "merge_tables"]

FORMAT_VERSION = 1
JOURNAL = "journal.json"
#: what a store folder holds (a folder holding only these may be made private)
REVISION = "revision.json"
_OURS = {
    "store.json",
    "nodes",
    "rels",
    "write.lock",
    "read.lock",
    "swap.lock",
    JOURNAL,
    "users.json",
    "models",
    REVISION,
    "cache",
}

#: test hook: ``RINGSCOPE_TEST_KILL_AT=<point>[:<n>]`` makes this process
#: SIGKILL itself the n-th time it passes ``point`` (table-written, swapped)
_KILL_ENV = "RINGSCOPE_TEST_KILL_AT"
_passed: dict[str, int] = {}


def _fault_point(point: str) -> None:
    spec = os.environ.get(_KILL_ENV)
    if not spec:
        return
    name, _, nth = spec.partition(":")
    if name != point:
        return
    _passed[point] = _passed.get(point, 0) + 1
    if _passed[point] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)


# -- locks shared by every store object on one folder -------------------------------

_registry_lock = threading.Lock()
_write_locks: dict[str, FileLock] = {}
_read_gates: dict[str, _ReadGate] = {}


def _write_lock_for(location: str) -> FileLock:
    with _registry_lock:
        if location not in _write_locks:
            _write_locks[location] = FileLock(Path(location) / "write.lock", location)
        return _write_locks[location]


def _read_gate_for(location: str) -> _ReadGate:
    with _registry_lock:
        if location not in _read_gates:
            _read_gates[location] = _ReadGate(Path(location) / "read.lock")
        return _read_gates[location]


class _ReadGate:
    """``read.lock``: shared by readers, exclusive for a commit's swap; and
    ``swap.lock``, a turnstile that keeps a stream of readers from starving
    a swap (a reader passes it on the way in; a swap holds it while it waits
    for the readers inside to finish, so no new ones come in).

    Per-thread reentrant; a thread that holds it shared and must swap (a
    reader rolling a dead writer's journal forward) lets go of its share
    first, so two such readers cannot wait for each other.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.turnstile = path.with_name("swap.lock")
        self._local = threading.local()

    def _open(self, path: Path, create_folder: bool = False) -> int | None:
        if not path.parent.is_dir():
            if not create_folder:
                return None
            private_dir(path.parent)
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except PermissionError:  # a store we may read but not lock: read unlocked
            if create_folder:
                raise
            return None

    @contextlib.contextmanager
    def shared(self, before_read=None) -> Iterator[None]:
        state = getattr(self._local, "state", None)
        if state is not None:  # nested: already shared or exclusive
            yield
            return
        turn = self._open(self.turnstile)
        fd = self._open(self.path)
        if turn is None or fd is None:
            for handle in (turn, fd):
                if handle is not None:
                    os.close(handle)
            yield
            return
        try:
            _flock(turn, fcntl.LOCK_SH)  # wait while a swap is waiting or running
            _flock(fd, fcntl.LOCK_SH)
            os.close(turn)
            turn = None
            self._local.state, self._local.fd = "shared", fd
            if before_read is not None:
                before_read()
            yield
        finally:
            self._local.state = self._local.fd = None
            os.close(fd)
            if turn is not None:
                os.close(turn)

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        state = getattr(self._local, "state", None)
        if state == "exclusive":
            yield
            return
        turn = self._open(self.turnstile, create_folder=True)
        upgrade = state == "shared"
        fd = self._local.fd if upgrade else self._open(self.path, create_folder=True)
        try:
            if upgrade:
                fcntl.flock(fd, fcntl.LOCK_UN)
            _flock(turn, fcntl.LOCK_EX)
            _flock(fd, fcntl.LOCK_EX)
            self._local.state, self._local.fd = "exclusive", fd
            yield
        finally:
            if upgrade:
                _flock(fd, fcntl.LOCK_SH)
                self._local.state = "shared"
            else:
                self._local.state = self._local.fd = None
                os.close(fd)
            os.close(turn)


def _flock(fd: int, operation: int, timeout: float = 600.0) -> None:
    """``flock`` that gives up after ``timeout`` s (readers and swaps hold it briefly)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, operation | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise TimeoutError("read.lock stayed taken for 600 s") from None
            time.sleep(0.01)


class EmbeddedStore:
    """A graph store in a local folder of Parquet tables (the default).

    Parameters
    ----------
    path : str or Path
        Store folder; created (mode 0700) on first write.

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
        self._write_lock = _write_lock_for(self.location)
        self._gate = _read_gate_for(self.location)
        if self._is_store():
            # Opening cleans up after a killed writer, unless a writer is at work.
            try:
                with self.lock(timeout=0):
                    pass
            except (StoreBusy, PermissionError):
                pass

    # -- layout --------------------------------------------------------
    def _node_file(self, label: str) -> Path:
        return self.path / "nodes" / f"{label}.parquet"

    def _rel_file(self, name: str) -> Path:
        return self.path / "rels" / f"{name}.parquet"

    def table_path(self, kind: str, name: str) -> Path:
        """The Parquet file of node table ``name`` (``kind="nodes"``) or
        relationship table ``name`` (``kind="rels"``), for readers that read
        the files themselves (Spark); it may not exist yet.

        Example
        -------
        >>> EmbeddedStore("/tmp/s").table_path("rels", "Application-HAS_PHONE-Phone").name
        'Application-HAS_PHONE-Phone.parquet'
        """
        if kind == "nodes":
            return self._node_file(name)
        if kind == "rels":
            return self._rel_file(name)
        raise ValueError(f"kind must be 'nodes' or 'rels', not {kind!r}")

    def _is_store(self) -> bool:
        return (self.path / "store.json").is_file()

    def _claim_folder(self) -> None:
        """Make the store folder private: a new or empty folder, or one that
        is a store already (never someone's existing folder of other files)."""
        if not self.path.exists() or self._is_store() or not {p.name for p in self.path.iterdir()} - _OURS:
            private_dir(self.path)

    def ensure_schema(self) -> None:
        self._claim_folder()
        private_dir(self.path / "nodes")
        private_dir(self.path / "rels")
        meta = self.path / "store.json"
        if meta.exists():
            version = json.loads(meta.read_text(encoding="utf-8")).get("format_version")
            if version != FORMAT_VERSION:
                raise RuntimeError(
                    f"Store {self.location} has format version {version}; this ringscope reads {FORMAT_VERSION}."
                )
        else:
            atomic_write_text(meta, json.dumps({"format_version": FORMAT_VERSION, "kind": "ringscope-embedded"}))

    # -- locks -----------------------------------------------------------
    @contextlib.contextmanager
    def lock(
        self, job: str | None = None, timeout: float | None = None, on_wait: OnWait | None = None
    ) -> Iterator[LockHolder]:
        """Hold the store's write lock for a whole job (see :mod:`ringscope.graph.locking`).

        Taking it fresh finishes or undoes what a killed writer left (a
        journal is rolled forward, temporary files are deleted) and makes the
        folder private again.
        """
        fresh = not self._write_lock.held
        with self._write_lock.hold(job, timeout, on_wait) as holder:
            if fresh:
                self._recover()
            yield holder

    def reading(self) -> contextlib.AbstractContextManager:
        """Hold a consistent view for several reads: no commit lands inside
        the ``with`` block (commits wait for it, so keep it short)."""
        return self._gate.shared(self._roll_forward_if_needed)

    def _recover(self) -> None:
        self._claim_folder()
        with self._gate.exclusive():
            self._roll_forward()
        if self._is_store():
            for ours in ("store.json*", f"{JOURNAL}*", "users.json*", f"{REVISION}*"):
                remove_leftovers(self.path, ours)
            for file in self.path.iterdir():
                if file.name in _OURS and file.is_file() and file.stat().st_mode & 0o077:
                    os.chmod(file, 0o600)
        for staging in self.path.glob(f"{STAGING}*"):  # a staged write killed before its commit
            shutil.rmtree(staging, ignore_errors=True)
        for folder in (self.path / "nodes", self.path / "rels"):
            remove_leftovers(folder)
            if folder.is_dir():
                os.chmod(folder, 0o700)
                for file in folder.glob("*.parquet"):
                    if file.stat().st_mode & 0o077:
                        os.chmod(file, 0o600)  # stores made before files were private

    def _roll_forward_if_needed(self) -> None:
        if (self.path / JOURNAL).exists():  # a writer died mid-swap: finish its commit
            with self._gate.exclusive():
                self._roll_forward()

    def _roll_forward(self) -> None:
        journal = self.path / JOURNAL
        if not journal.exists():
            return
        plan = json.loads(journal.read_text(encoding="utf-8"))
        self._apply(plan)
        journal.unlink()
        _fsync_dir(self.path)

    def _apply(self, plan: dict) -> None:
        for tmp, final in plan["moves"]:
            if (self.path / tmp).exists():
                os.replace(self.path / tmp, self.path / final)
                _fault_point("swapped")
        for gone in plan["deletes"]:
            (self.path / gone).unlink(missing_ok=True)
        for sub in ("nodes", "rels"):
            _fsync_dir(self.path / sub)

    # -- reading -------------------------------------------------------
    def read_nodes(self, label: str, columns: list[str] | None = None) -> pd.DataFrame:
        """Whole node table for ``label`` (empty frame with ``key`` if none)."""
        if label not in NODE_TYPES:
            raise KeyError(f"Unknown node label {label!r}")
        _check_columns(columns, ("key", *NODE_TYPES[label].properties), label)
        with self.reading():
            return self._read(self._node_file(label), ["key"], columns)

    def read_relationships(self, name: str, columns: list[str] | None = None) -> pd.DataFrame:
        """Whole relationship table ``name`` (``Source-TYPE-Target``)."""
        if name not in REL_TYPES:
            raise KeyError(f"Unknown relationship {name!r}")
        rt = REL_TYPES[name]
        _check_columns(columns, ("src", "dst", *rt.identity, *rt.properties), name)
        with self.reading():
            return self._read(self._rel_file(name), ["src", "dst"], columns)

    @staticmethod
    def _read(file: Path, first: list[str], columns: list[str] | None) -> pd.DataFrame:
        if not file.exists():
            return pd.DataFrame({c: pd.Series([], dtype="str") for c in first})
        if columns is not None:
            present = set(pq.read_schema(file).names)
            columns = [c for c in dict.fromkeys([*first, *columns]) if c in present]
        return pq.read_table(file, columns=columns).to_pandas()

    def node_properties(self, label: str, keys: list[str], properties: list[str]) -> pd.DataFrame:
        with self.reading():
            found = self._filtered(self._node_file(label), "key", keys, ["key", *properties])
        for prop in properties:
            if prop not in found.columns:
                found[prop] = None
        return found[["key", *properties]].reset_index(drop=True)

    def relationship_properties(
        self, name: str, keys: list[str], properties: list[str], by: str = "src"
    ) -> pd.DataFrame:
        """Stored relationships ``name`` whose ``by`` end (``src`` or ``dst``) is
        among ``keys``: ``src``, ``dst``, identity and ``properties``."""
        rt = REL_TYPES[name]
        _check_columns(properties, (*rt.identity, *rt.properties), name)
        wanted = ["src", "dst", *dict.fromkeys([*rt.identity, *properties])]
        with self.reading():
            found = self._filtered(self._rel_file(name), by, keys, wanted)
        for prop in wanted:
            if prop not in found.columns:
                found[prop] = None
        return found[wanted].reset_index(drop=True)

    @staticmethod
    def _filtered(file: Path, column: str, keys: list[str], wanted: list[str]) -> pd.DataFrame:
        if not file.exists() or not len(keys):
            return pd.DataFrame(columns=wanted)
        present = set(pq.read_schema(file).names)
        table = pq.read_table(file, columns=[c for c in dict.fromkeys(wanted) if c in present])
        table = table.filter(pc.is_in(table.column(column), value_set=pa.array(list(keys), type=pa.string())))
        return table.to_pandas()

    def counts(self) -> GraphCounts:
        with self.reading():
            nodes = {label: _row_count(self._node_file(label)) for label in NODE_TYPES}
            rels: dict[str, int] = {}
            for name, rt in REL_TYPES.items():
                rels[rt.type] = rels.get(rt.type, 0) + _row_count(self._rel_file(name))
        return GraphCounts(nodes=nodes, relationships=rels)

    def revision(self) -> str:
        """The store's revision: a new value after every commit that changed
        something (ingest, ``--update``, findings, scores, cases, ``clear``);
        the same while nothing did. A write whose tables come out as they
        were commits nothing and keeps the revision.

        Example
        -------
        >>> import tempfile
        >>> store = EmbeddedStore(tempfile.mkdtemp())
        >>> before = store.revision()
        >>> store.write(GraphBatch(nodes={"Phone": pd.DataFrame({"key": ["+8613800138000"]})}))
        >>> after = store.revision()
        >>> after != before
        True
        >>> store.write(GraphBatch(nodes={"Phone": pd.DataFrame({"key": ["+8613800138000"]})}))
        >>> store.revision() == after
        True
        """
        with self.reading():
            try:
                meta = json.loads((self.path / REVISION).read_text(encoding="utf-8"))
                return f"{int(meta['counter'])}.{meta['token']}"
            except FileNotFoundError:
                return "0"  # never written, or written before revisions existed
            except (ValueError, KeyError, TypeError):
                return f"unreadable.{uuid.uuid4().hex}"  # never equal to a saved one

    def _next_revision(self) -> dict:
        try:
            counter = int(json.loads((self.path / REVISION).read_text(encoding="utf-8"))["counter"])
        except (OSError, ValueError, KeyError, TypeError):
            counter = 0
        return {"counter": counter + 1, "token": uuid.uuid4().hex}

    # -- writing -------------------------------------------------------
    def write(
        self,
        batch: GraphBatch,
        progress: Progress | None = None,
        *,
        policy: str = "merge",
        detach: Detach | None = None,
    ) -> None:
        """Merge ``batch`` into the store in one all-or-nothing commit.

        ``policy`` says what a stored value meets (see :func:`merge_frames`);
        ``detach`` names relationships to drop first, by the keys of one end
        (``{"Application-HAS_PHONE-Phone": ("src", ["A1"])}``: a corrected
        application's old phone edge goes before its new one is written).
        A node table is merged into its new file a slice at a time
        (:func:`merge_parquet`: the same table as merging it whole, in
        Parquet row groups of :data:`~ringscope.graph.merging.STREAM_ROWS`
        rows), so a batch of scores does not hold the stored table.
        """
        if policy not in WRITE_POLICIES:
            raise ValueError(f"The 'policy' parameter must be one of {WRITE_POLICIES}. Got {policy!r} instead.")
        detach = dict(detach or {})
        with self.lock():
            self.ensure_schema()
            steps = [("node", label, frame) for label, frame in batch.nodes.items() if len(frame)]
            steps += [("rel", name, frame) for name, frame in batch.relationships.items() if len(frame)]
            steps += [
                ("rel", name, None)
                for name in detach
                if name not in batch.relationships or not len(batch.relationships[name])
            ]
            total = sum(len(f) for _, _, f in steps if f is not None)
            done = 0
            with _TableWriter(self) as out:
                for kind, name, frame in steps:
                    if kind == "node":
                        file, identity = self._node_file(name), ["key"]
                    else:
                        file, identity = self._rel_file(name), ["src", "dst", *REL_TYPES[name].identity]
                    if kind == "node" and frame is not None and name not in detach and file.exists():
                        # a node table is merged into a new file a slice at a time (the scores of a
                        # batch onto 1M applications held the whole table twice, reasons included)
                        streamed = out.stream(file, pa.Table.from_pandas(frame, preserve_index=False), policy)
                        if streamed is not None:
                            done += len(frame)
                            if progress:
                                progress(f"write {name}", done, total)
                            continue
                    old = pq.read_table(file) if file.exists() else None
                    detached = False
                    if old is not None and name in detach:
                        end, keys = detach[name]
                        gone = pc.is_in(old.column(end), value_set=pa.array(list(keys), type=pa.string()))
                        kept = old.filter(pc.invert(pc.fill_null(gone, False)))
                        detached, old = kept.num_rows != old.num_rows, kept
                    if frame is None:
                        if detached:
                            out.put(file, old)
                        continue
                    merged = merge_tables(old, pa.Table.from_pandas(frame, preserve_index=False), identity, policy)
                    if not _same_rows(old, merged, identity):  # an unchanged table is not rewritten
                        out.put(file, merged)
                    elif detached:
                        out.put(file, old)
                    done += len(frame)
                    if progress:
                        progress(f"write {name}", done, total)

    def staged(self, partition_rows: int | None = None) -> StagedWrite:
        """A write to gather chunk by chunk on disk (inside the store folder)
        and commit with :meth:`write_staged`; close it when done."""
        self.ensure_schema()
        return StagedWrite(self.path, **({} if partition_rows is None else {"partition_rows": partition_rows}))

    def write_staged(self, staged: StagedWrite, progress: Progress | None = None, *, policy: str = "merge") -> None:
        """Merge the tables gathered in ``staged`` into the store in one
        all-or-nothing commit: the same stored rows as :meth:`write` of
        the whole batch (the chunks concatenated in the order added), in
        memory O(``staged.partition_rows``) per table (see
        :mod:`ringscope.graph.staged`)."""
        if policy not in WRITE_POLICIES:
            raise ValueError(f"The 'policy' parameter must be one of {WRITE_POLICIES}. Got {policy!r} instead.")
        with self.lock():
            self.ensure_schema()
            total, done = staged.size(), 0
            with _TableWriter(self) as out:
                for kind, name in staged.files:
                    out.wait()  # one table in memory at a time (and the one being written)
                    if kind == "node":
                        file, identity = self._node_file(name), ["key"]
                    else:
                        file, identity = self._rel_file(name), ["src", "dst", *REL_TYPES[name].identity]
                    old_file = file if file.exists() else None
                    rows = staged.rows[(kind, name)] + (_row_count(file) if old_file else 0)
                    if rows <= staged.partition_rows:
                        self._merge_whole(out, kind, file, identity, staged.read(kind, name), policy)
                    else:
                        self._merge_partitioned(out, staged, kind, name, file, old_file, identity, policy)
                    done += staged.rows[(kind, name)]
                    if progress:
                        progress(f"write {name}", done, total)

    def _merge_whole(
        self, out: _TableWriter, kind: str, file: Path, identity: list[str], new: pa.Table, policy: str
    ) -> None:
        """One table's merge as :meth:`write` does it."""
        if kind == "node" and file.exists() and out.stream(file, new, policy) is not None:
            return
        old = pq.read_table(file) if file.exists() else None
        merged = merge_tables(old, new, identity, policy)
        if not _same_rows(old, merged, identity):
            out.put(file, merged)

    def _merge_partitioned(
        self,
        out: _TableWriter,
        staged: StagedWrite,
        kind: str,
        name: str,
        file: Path,
        old_file: Path | None,
        identity: list[str],
        policy: str,
    ) -> None:
        """One table's merge a partition of identities at a time, straight into the commit's file."""
        schema = staged.schema(kind, name, old_file)
        changed = old_file is None or not schema.equals(pq.read_schema(old_file))
        tmp = file.with_name(f"{file.name}{TMP_MARKER}{out.txid}")
        try:
            with pq.ParquetWriter(str(tmp), schema, compression="snappy") as writer:
                for old, new in staged.partitions(kind, name, old_file, identity, schema):
                    stored = old if old.num_rows else None
                    merged = merge_tables(stored, new, identity, policy)
                    if not merged.num_rows:
                        continue
                    merged = _conform(merged, schema)
                    changed = changed or not _same_rows(stored, merged, identity)
                    writer.write_table(merged)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        if changed:
            out.moves.append((tmp, file))
            _made_durable(tmp)
        else:
            tmp.unlink(missing_ok=True)

    def clear(self) -> None:
        """Delete every table of this store (tests and the demo), in one commit."""
        with self.lock():
            with _TableWriter(self) as out:
                for sub in ("nodes", "rels"):
                    folder = self.path / sub
                    if folder.exists():
                        for file in folder.glob("*.parquet"):
                            out.delete(file)

    def replace_derived(self, batch: GraphBatch, progress: Progress | None = None) -> None:
        """Replace every finding and SIMILAR_TO edge by ``batch``'s, in one
        commit: readers see the old findings or the new, never a mix, and
        never a finding without its INVOLVES edges."""
        with self.lock():
            self.ensure_schema()
            with _TableWriter(self) as out:
                for label in DERIVED_LABELS:
                    if label not in batch.nodes or not len(batch.nodes[label]):
                        out.delete(self._node_file(label))
                for name in DERIVED_RELS:
                    if name not in batch.relationships or not len(batch.relationships[name]):
                        out.delete(self._rel_file(name))
                for label, frame in batch.nodes.items():
                    if len(frame):
                        old = (
                            None
                            if label in DERIVED_LABELS or not self._node_file(label).exists()
                            else pq.read_table(self._node_file(label))
                        )
                        out.put(
                            self._node_file(label),
                            merge_tables(old, pa.Table.from_pandas(frame, preserve_index=False), ["key"]),
                        )
                for name, frame in batch.relationships.items():
                    if len(frame):
                        file = self._rel_file(name)
                        old = None if name in DERIVED_RELS or not file.exists() else pq.read_table(file)
                        identity = ["src", "dst", *REL_TYPES[name].identity]
                        out.put(file, merge_tables(old, pa.Table.from_pandas(frame, preserve_index=False), identity))
                if progress:
                    progress("write findings", batch.size(), batch.size())

    def close(self) -> None:  # nothing held open
        return None


class _TableWriter:
    """Collects the tables of one commit, writes each to a temporary file (on
    a second thread: Parquet encoding releases the GIL, so the next table is
    merged meanwhile), then swaps them all in under the journal."""

    def __init__(self, store: EmbeddedStore) -> None:
        self.store = store
        self.txid = uuid.uuid4().hex[:12]
        self.moves: list[tuple[Path, Path]] = []
        self.deletes: list[Path] = []
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parquet-writer")
        self._pending: list[Future] = []

    def put(self, file: Path, table: pa.Table) -> None:
        tmp = file.with_name(f"{file.name}{TMP_MARKER}{self.txid}")
        self.moves.append((tmp, file))
        self._pending.append(self._pool.submit(_write_parquet, tmp, table))

    def wait(self) -> None:
        """Wait for the tables handed to :meth:`put` so far (bounds what is held in memory)."""
        for future in self._pending:
            future.result()
        self._pending.clear()

    def stream(self, file: Path, new: pa.Table, policy: str) -> bool | None:
        """Merge ``new`` into node table ``file`` with :func:`merge_parquet`,
        straight into this commit's temporary file; what it returns (None:
        the caller merges in memory and calls :meth:`put`)."""
        tmp = file.with_name(f"{file.name}{TMP_MARKER}{self.txid}")
        try:
            written = merge_parquet(file, new, "key", tmp, policy)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        if written:
            self.moves.append((tmp, file))
            _made_durable(tmp)
        return written

    def delete(self, file: Path) -> None:
        if file.exists():
            self.deletes.append(file)

    def __enter__(self) -> _TableWriter:
        return self

    def __exit__(self, kind, error, trace) -> None:
        try:
            for future in self._pending:
                future.result()  # re-raise a failed write
        except BaseException:
            self._discard()
            raise
        finally:
            self._pool.shutdown()
        if kind is not None:
            self._discard()
            return
        if not self.moves and not self.deletes:
            return
        root = self.store.path
        # the new revision is one more file of the same swap: in with the tables or not at all
        revision = root / f"{REVISION}{TMP_MARKER}{self.txid}"
        atomic_write_text(revision, json.dumps(self.store._next_revision()))
        self.moves.append((revision, root / REVISION))
        plan = {
            "txid": self.txid,
            "moves": [[str(t.relative_to(root)), str(f.relative_to(root))] for t, f in self.moves],
            "deletes": [str(f.relative_to(root)) for f in self.deletes],
        }
        with self.store._gate.exclusive():
            atomic_write_text(root / JOURNAL, json.dumps(plan))  # the commit point
            _fsync_dir(root)
            self.store._apply(plan)
            (root / JOURNAL).unlink()
            _fsync_dir(root)

    def _discard(self) -> None:
        for tmp, _ in self.moves:
            tmp.unlink(missing_ok=True)


def _check_columns(columns: list[str] | None, allowed: tuple[str, ...], owner: str) -> None:
    unknown = set(columns or ()) - set(allowed)
    if unknown:
        raise KeyError(f"Properties {sorted(unknown)} are not in the model of {owner}")


def _row_count(file: Path) -> int:
    return pq.ParquetFile(file).metadata.num_rows if file.exists() else 0


def _write_parquet(tmp: Path, table: pa.Table) -> None:
    # snappy: several times faster to write than zstd, files a little larger
    pq.write_table(table, str(tmp), compression="snappy")
    _made_durable(tmp)


def _made_durable(tmp: Path) -> None:
    os.chmod(tmp, 0o600)  # the folder is 0700 already; the file is private too
    fd = os.open(tmp, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)  # on disk before the journal can name it
    finally:
        os.close(fd)
    _fault_point("table-written")


def _fsync_dir(folder: Path) -> None:
    if not folder.is_dir():
        return
    fd = os.open(folder, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
