"""Ingest a lender's export folder into a graph store.

``ingest_folder`` reads the contract's tables, normalises every identifier
(raw value kept beside it), sends each contract-breaking row to a rejects
file with its source file, line and reason, turns the good rows into a
:class:`ringscope.graph.store.GraphBatch` and merges it into the store.

The same folder ingested twice leaves the store unchanged: every node and
relationship is merged on its key, and a row that would change a stored one
is rejected unless ``update`` asks for a correction (see :mod:`ringscope.ingest.stored`).
The whole run holds the store's write lock. The per-table builders are in
:mod:`ringscope.ingest.tables`.

Into the embedded store (without ``update``) a folder is ingested
:data:`CHUNK_ROWS` rows at a time: a Parquet file is read a batch of rows at
a time, a CSV that many physical lines at a time (never whole), each chunk is
checked and normalised, and its graph is staged on disk; the staged tables
are merged into the store at the end, in one commit, a partition of
identities at a time (:mod:`ringscope.graph.staged`). What crosses chunks
is kept small: the ids and content hashes of the applications read so far
(a repeat in a later chunk is collapsed or rejected as in one read), the
index of loaded applications (contacts and guarantees in another chunk
find their borrower), and the rejects. The store ends with the same rows,
properties and rejects file as a whole-folder ingest; a table larger than
a partition holds its rows grouped by partition.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ringscope.graph.files import write_csv
from ringscope.graph.store import GraphBatch, GraphCounts, GraphStore, Progress
from ringscope.ingest.limits import IngestLimits
from ringscope.ingest.reader import (
    TABLES,
    RawReject,
    ReadResult,
    RefusedFile,
    UnreadableFile,
    find_tables,
    read_table,
    read_table_chunks,
)
from ringscope.ingest.stored import StoredCheck, write_batch
from ringscope.ingest.tables import (
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    SeenRows,
    TablePart,
    applications_part,
    company_roles_part,
    contacts_part,
    guarantees_part,
)

__all__ = [
    "REQUIRED_COLUMNS",
    "OPTIONAL_COLUMNS",
    "TableReport",
    "IngestSummary",
    "IngestLimits",
    "CHUNK_ROWS",
    "ingest_folder",
    "build_batch",
]


@dataclass
class TableReport:
    """What happened to one input table.

    ``rows_read == rows_loaded + rows_rejected`` always. ``lines_read`` counts
    the file's physical data lines (CSV, after the header; Parquet: rows): it
    equals ``rows_read`` unless quoted values hold line breaks or blank lines
    were skipped (``blank_lines``). ``lines_unaccounted`` is the number of
    lines in no row, no reject and not blank: never silently non-zero, it
    makes the table an error.
    """

    table: str
    file: str
    encoding: str
    rows_read: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    error: str | None = None
    lines_read: int = 0
    blank_lines: int = 0
    lines_unaccounted: int = 0


@dataclass
class IngestSummary:
    """The outcome of one ingest run; ``exit_code`` is what the CLI returns."""

    folder: str
    store: str
    tables: list[TableReport] = field(default_factory=list)
    rejects_path: str | None = None
    reject_reasons: dict[str, int] = field(default_factory=dict)
    counts: GraphCounts | None = None
    seconds: float = 0.0
    #: ids of the applications this run loaded (what ``ringscope flag`` scores)
    application_ids: list[str] = field(default_factory=list)
    #: changes made by ``update`` (each one an AuditEvent)
    corrections: int = 0
    #: what ``bulk`` did (a ``ringscope.graph.neo4j_bulk.BulkReport``), None for a MERGE ingest
    bulk: Any = None

    @property
    def rows_loaded(self) -> int:
        return sum(t.rows_loaded for t in self.tables)

    @property
    def rows_rejected(self) -> int:
        return sum(t.rows_rejected for t in self.tables)

    @property
    def unreadable(self) -> list[TableReport]:
        return [t for t in self.tables if t.error]

    @property
    def exit_code(self) -> int:
        """0 when rows loaded and every file was read; 1 when nothing loaded;
        2 when a file could not be read or was refused (duplicate column
        names, a lossy Parquet type, missing required columns, lines that
        could not be accounted for)."""
        if not self.tables:
            return 2
        if self.unreadable:
            return 2
        return 1 if self.rows_loaded == 0 else 0


#: input rows read, checked and staged at a time by an embedded ingest
CHUNK_ROWS = 100_000

# -- the whole folder -----------------------------------------------------------


def _any_longer(paths, rows: int) -> bool:
    r"""Does any of ``paths`` hold more than ``rows`` rows? (Parquet: its
    footer; CSV: its line breaks, counted until there are enough.)

    Example
    -------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "a.csv"
    >>> _ = path.write_text("h\n1\n2\n")
    >>> _any_longer([path], 2), _any_longer([path], 1)
    (False, True)
    """
    for path in paths:
        path = Path(path)
        if path.suffix.lower() in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            try:
                if pq.ParquetFile(path).metadata.num_rows > rows:
                    return True
            except Exception:  # an unreadable file is refused by the reader, with its reason
                continue
            continue
        breaks = 0
        with open(path, "rb") as handle:
            while block := handle.read(1 << 20):
                breaks += block.count(b"\n")
                if breaks > rows + 1:  # the header's line too
                    return True
    return False


def _read(
    path: Path, table: str, report: TableReport, raw_rejects: list[RawReject], chunk_rows: int | None = None
) -> tuple[ReadResult, Iterator[pd.DataFrame]] | None:
    """Read one file and account for its lines in ``report``: the read and
    its rows (one frame, or ``chunk_rows`` rows at a time); None when the
    file is unreadable or refused as a whole (the reason is in ``report.error``
    and in the rejects, and every row it holds counts as rejected)."""
    try:
        if chunk_rows:
            result, frames = read_table_chunks(path, chunk_rows)
        else:
            result = read_table(path)
            frames = _slices(result.frame, chunk_rows)
    except RefusedFile as err:
        report.error, report.encoding = str(err), err.encoding
        report.rows_read = report.rows_rejected = report.lines_read = err.rows
        raw_rejects.append(RawReject(path.name, 1, report.error))
        return None
    except UnreadableFile as err:
        report.error = str(err)
        raw_rejects.append(RawReject(path.name, None, report.error))
        return None
    report.encoding = result.encoding
    missing = [c for c in REQUIRED_COLUMNS[table] if c not in result.frame.columns]
    if result.streamed and missing:  # read it through to count its lines
        try:
            for _ in frames:
                pass
        except UnreadableFile as err:
            raise _WholeRead(str(err)) from err
    if not result.streamed or missing:
        _account(report, result, raw_rejects)
    if result.unaccounted:
        report.error = (
            f"{path.name}: {result.unaccounted:,} of {result.lines:,} lines are in no row and no reject; "
            "the file was not loaded"
        )
    elif missing:
        report.error = f"{path.name}: missing required columns {missing}"
    if report.error:
        report.rows_rejected = report.rows_read
        raw_rejects.append(RawReject(path.name, 1, report.error))
        return None
    return result, frames


class _WholeRead(Exception):
    """A CSV read in parts turned out unreadable half-way: the ingest starts
    again reading whole files, so the file is refused as a whole read refuses it."""


def _account(report: TableReport, result: ReadResult, raw_rejects: list[RawReject]) -> None:
    """The file's lines in ``report`` and its reader's rejects in ``raw_rejects``
    (a CSV read in parts: once its frames are all read)."""
    report.rows_read = (len(result.frame) if result.rows is None else result.rows) + len(result.rejects)
    report.lines_read = result.lines
    report.blank_lines = result.blank_lines
    report.lines_unaccounted = result.unaccounted
    raw_rejects.extend(result.rejects)


def _frames(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    try:
        yield from frames
    except UnreadableFile as err:  # only a CSV read in parts fails half-way
        raise _WholeRead(str(err)) from err


def _slices(frame: pd.DataFrame, rows: int | None) -> Iterator[pd.DataFrame]:
    if not rows:
        yield frame
        return
    for start in range(0, len(frame), rows):
        yield frame.iloc[start : start + rows]


def build_batch(parts: list[TablePart]) -> GraphBatch:
    """Concatenate the parts of several tables into one batch."""
    nodes: dict[str, list[pd.DataFrame]] = {}
    rels: dict[str, list[pd.DataFrame]] = {}
    for part in parts:
        for label, frames in part.nodes.items():
            nodes.setdefault(label, []).extend(frames)
        for name, frames in part.rels.items():
            rels.setdefault(name, []).extend(frames)
    return GraphBatch(
        nodes={label: _concat(frames) for label, frames in nodes.items()},
        relationships={name: _concat(frames) for name, frames in rels.items()},
    )


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0].reset_index(drop=True)


def ingest_folder(
    folder: str | Path,
    store: GraphStore,
    rejects_path: str | Path | None = None,
    progress: Progress | None = None,
    limits: IngestLimits | None = None,
    update: bool = False,
    lock_timeout: float | None = None,
    bulk: bool = False,
    dry_run: bool = False,
    *,
    chunk_rows: int | None = CHUNK_ROWS,
    partition_rows: int | None = None,
) -> IngestSummary:
    """Ingest the contract tables found in ``folder`` into ``store``.

    Parameters
    ----------
    folder : path
        Holds ``applications`` and optionally ``guarantees``, ``contacts``,
        ``company_roles`` as ``.csv`` (UTF-8/GBK/GB18030) or ``.parquet``.
    store : GraphStore
        Embedded or Neo4j.
    rejects_path : path, optional
        Where rejected rows go (CSV, UTF-8 with BOM so spreadsheet tools read
        the hanzi); default ``./ringscope_rejects.csv``. Not written when
        every row loads.
    progress : callable, optional
        ``progress(stage, done, total)``.
    limits : IngestLimits, optional
        Plausible ranges (applied_at window, largest amount, term); rows
        outside go to the rejects file. Default ``IngestLimits()``.
    update : bool
        Rows that differ from stored ones correct them (with an audit event
        each) instead of being rejected.
    lock_timeout : float, optional
        Seconds to wait for the store's write lock (held for the whole run;
        default ``$RINGSCOPE_LOCK_TIMEOUT`` or 600); ``StoreBusy`` after that.
    bulk : bool
        A first load into an EMPTY Neo4j with the offline importer instead
        of MERGE (same tables, same stored graph; see
        :mod:`ringscope.graph.neo4j_bulk`). Raises ``BulkRefused`` before
        reading anything when the database holds data or its server is not
        one the local launcher runs; ``ValueError`` for the embedded store
        or with ``update``.
    dry_run : bool
        Read and check everything against the store, write the rejects file
        and report as the ingest would, but write nothing to the store. On a
        folder the store already holds (ingested once), this is what ingesting
        it again reports: that ingest writes only what the store holds
        (first delivery wins), so it changes nothing. ``ringscope flag``
        records it for the next run of the same folder.
    chunk_rows : int, optional
        Rows of a file read, checked and staged at a time when writing
        to the embedded store (without ``update``): the graph of each chunk
        goes to disk (:meth:`EmbeddedStore.write_staged
        <ringscope.graph.embedded.EmbeddedStore.write_staged>`) and memory
        stays bounded by the chunk, not the book. The store ends the same as
        with ``None`` (the whole folder in memory, as Neo4j, ``bulk``,
        ``update`` and ``dry_run`` always do, and as a folder whose every
        file fits in one chunk does: a nightly batch merges into the store
        as before).
    partition_rows : int, optional
        Rows of one table merged in memory at a time by the staged write
        (default :data:`ringscope.graph.staged.PARTITION_ROWS`).

    Returns
    -------
    IngestSummary
    """
    if bulk and not hasattr(store, "bulk_load"):
        raise ValueError(f"bulk loads are for Neo4j; the {store.kind} store takes the ordinary ingest")
    if bulk and update:
        raise ValueError("update corrects stored rows and a bulk load starts from an empty database: choose one")
    if dry_run and (bulk or update):
        raise ValueError("a dry run writes nothing: it takes neither bulk nor update")
    started = time.perf_counter()
    folder = Path(folder)
    summary = IngestSummary(folder=str(folder), store=store.location)
    if not folder.is_dir():
        summary.tables.append(TableReport("applications", str(folder), "", error=f"{folder} is not a folder"))
        return summary
    files = {tf.table: tf.path for tf in find_tables(folder)}
    if not files:
        summary.tables.append(
            TableReport("applications", str(folder), "", error=f"no contract tables ({', '.join(TABLES)}) in {folder}")
        )
        return summary

    # One lock from the first look at the store to the last write: the
    # cross-batch checks are only true if nobody writes in between.
    with store.lock(timeout=lock_timeout):
        if bulk:
            store.require_empty()  # refuse before reading a single file
        chunked = (
            chunk_rows
            if chunk_rows
            and hasattr(store, "write_staged")
            and not (bulk or update or dry_run)
            and _any_longer(files.values(), chunk_rows)
            else None
        )
        for chunks in (chunked, None):
            stored = StoredCheck(store, update=update, folder=str(folder.resolve()))
            try:
                _load(
                    folder,
                    files,
                    store,
                    summary,
                    stored,
                    rejects_path,
                    progress,
                    limits,
                    bulk,
                    chunks,
                    partition_rows,
                    dry_run,
                )
                break
            except _WholeRead:  # a CSV unreadable half-way: nothing was written; read whole files
                summary = IngestSummary(folder=str(folder), store=store.location)
    summary.seconds = time.perf_counter() - started
    return summary


def _load(
    folder: Path,
    files: dict[str, Path],
    store: GraphStore,
    summary: IngestSummary,
    stored: StoredCheck,
    rejects_path: str | Path | None,
    progress: Progress | None,
    limits: IngestLimits | None = None,
    bulk: bool = False,
    chunk_rows: int | None = None,
    partition_rows: int | None = None,
    dry_run: bool = False,
) -> None:
    """Read, check and write every table; with ``chunk_rows`` a chunk at a
    time, each chunk's graph staged on disk and merged into the store at the
    end (the same store as the whole batch)."""

    def step(stage: str, i: int) -> None:
        if progress:
            progress(stage, i, len(files) + 1)

    parts: list[TablePart] = []
    staged = None
    reject_parts: list[pd.DataFrame] = []
    raw_rejects: list[RawReject] = []
    apps_index = pd.DataFrame({"key": pd.Series([], dtype=object), "borrower_label": [], "borrower_key": []})
    try:
        for i, table in enumerate(t for t in TABLES if t in files):
            path = files[table]
            step(f"read {path.name}", i)
            report = TableReport(table, str(path), "")
            summary.tables.append(report)
            read = _read(path, table, report, raw_rejects, chunk_rows)
            if read is None:
                continue
            seen = SeenRows() if chunk_rows else None
            indexes: list[pd.DataFrame] = []
            loaded = 0
            for frame in _frames(read[1]):
                if table == "applications":
                    part, index = applications_part(frame, path.name, limits, stored, seen)
                    indexes.append(index)
                elif table == "contacts":
                    part = contacts_part(frame, path.name, apps_index, store, stored)
                elif table == "guarantees":
                    part = guarantees_part(frame, path.name, apps_index, store, limits, stored)
                else:
                    part = company_roles_part(frame, path.name, stored)
                loaded += part.loaded
                reject_parts.extend(r for r in part.rejects if len(r))
                part.rejects = []
                if chunk_rows:
                    if staged is None and (part.nodes or part.rels):
                        staged = store.staged(partition_rows)
                    for kind, tables in (("node", part.nodes), ("rel", part.rels)):
                        for name, frames in tables.items():
                            for frame, slot in zip(frames, part.slots[(kind, name)]):
                                staged.add_frame(kind, name, frame, (i, slot))
                else:
                    parts.append(part)
            if table == "applications":
                if indexes:
                    apps_index = pd.concat(indexes) if len(indexes) > 1 else indexes[0]
                summary.application_ids = [str(k) for k in apps_index["key"]]
                if stored.refused:  # their contacts and guarantees must not attach to the stored rows
                    refused = pd.DataFrame({"key": sorted(stored.refused), "refused": True})
                    apps_index = pd.concat([apps_index.assign(refused=False), refused], ignore_index=True)
            if read[0].streamed:
                _account(report, read[0], raw_rejects)
            report.rows_loaded = loaded
            report.rows_rejected = report.rows_read - loaded

        _write_rejects(summary, raw_rejects, reject_parts, rejects_path)
        if staged is not None:
            step("write graph", len(files))
            store.write_staged(staged, progress, policy="keep")
        elif parts:
            batch = build_batch(parts)
            if batch.size() and not dry_run:
                step("write graph", len(files))
                if bulk:
                    summary.bulk = store.bulk_load(batch, progress)
                else:
                    store.ensure_schema()
                    summary.corrections = write_batch(store, batch, stored, progress)
    finally:
        if staged is not None:
            staged.close()
    summary.counts = store.counts()


def _write_rejects(
    summary: IngestSummary,
    raw_rejects: list[RawReject],
    reject_parts: list[pd.DataFrame],
    rejects_path: str | Path | None,
) -> None:
    rejects = pd.concat(
        [
            pd.DataFrame(
                [r.__dict__ for r in raw_rejects], columns=["source_file", "line", "reason", "content"]
            ).rename(columns={"content": "record"})
        ]
        + reject_parts,
        ignore_index=True,
    )
    rejects["line"] = rejects["line"].astype("Int64")  # a file-level reject has no line: keep the others whole
    summary.rejects_path = str(rejects_path or "ringscope_rejects.csv")
    if len(rejects):
        rejects = rejects.sort_values(["source_file", "line"], kind="stable")
        summary.reject_reasons = {str(k): int(v) for k, v in rejects["reason"].value_counts().items()}
        write_csv(rejects, summary.rejects_path)
    else:
        summary.rejects_path = None
