"""A book written in chunks: one time window at a time, memory bounded by the chunk.

The whole-book generator holds every column of every application (about
3 KB each), so 10M applications do not fit a 24 GB machine. Chunked, the two
years are cut into consecutive time windows of about ``chunk_rows``
applications each (``time_windows``, by the days' weights), and each window is
built as a book of its own (``build_book``: honest, fraud, hard negatives,
labels, mess, broken rows), written, and dropped. What crosses windows is
small: the running application-id offset (ids still follow submission time,
since a window's applications all come after the previous window's), the
ring counter, the shared hubs (the carrier-NAT addresses and the busy
agents, drawn once), the ring and circle truth, the broken-row truth and the
duplicated broken rows (appended at the end of their file, as in a whole
book). The files are appended to (CSV) or get one row group per window
(Parquet, ``pyarrow.parquet.ParquetWriter``).

What a chunked book does not have, by construction: rings, families and
repeat borrowers spanning two windows; and a ring's time spread is capped at
its window's length (a guarantee circle's 30–120 days in a 36-day window
become at most 36). Each window draws from its own stream
(``default_rng([seed, window])``), so a chunked book is a different draw from
the whole book of the same seed, the same for the same seed and chunk size.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ringscope.ingest.synthetic import people as P
from ringscope.ingest.synthetic.book import Book
from ringscope.ingest.synthetic.config import (
    APPLICATION_COLUMNS,
    CONTACT_COLUMNS,
    END,
    GUARANTEE_COLUMNS,
    ROLE_COLUMNS,
    START,
    GenerationSummary,
    GeneratorConfig,
)
from ringscope.ingest.synthetic.generator import build_book, count_planted
from ringscope.ingest.synthetic.honest import agent_pool
from ringscope.ingest.synthetic.writer import csv_bytes, planted_truth, split_tables, write_csv

__all__ = [
    "generate_chunked",
    "time_windows",
    "shared_hubs",
    "default_chunk_rows",
    "MAX_WINDOWS",
    "WHOLE_UP_TO",
    "DEFAULT_CHUNK_ROWS",
]

#: at most this many windows (each then spans at least four days)
MAX_WINDOWS = 180
#: ``ringscope generate`` builds books up to this size whole (the same bytes as ever) ...
WHOLE_UP_TO = 2_000_000
#: ... and larger ones in windows of this many applications (about 2 GB each)
DEFAULT_CHUNK_ROWS = 500_000
_CONTRACT = ("applications", "guarantees", "contacts", "company_roles")
_DUPLICATE = "duplicate application_id"


def time_windows(applications: int, chunk_rows: int) -> list[tuple[int, int, int]]:
    """Consecutive day windows holding about ``chunk_rows`` applications each.

    Returns ``(first_day, end_day, applications)`` per window, days counted
    from ``START``; the counts add up to ``applications`` and follow the
    days' weights (weekly rhythm, Spring Festival, growth).

    Example
    -------
    >>> w = time_windows(10_000, 4_000)
    >>> len(w), sum(n for _, _, n in w), w[0][0], w[-1][1]
    (3, 10000, 0, 730)
    """
    days = np.arange(START, END, dtype="datetime64[D]")
    cum = np.concatenate([[0.0], np.cumsum(P.day_weights(days))])
    cum = cum / cum[-1]
    count = int(min(-(-applications // chunk_rows), MAX_WINDOWS))
    cuts = np.searchsorted(cum, np.arange(1, count) / count)
    edges = np.unique(np.concatenate([[0], np.clip(cuts, 1, len(days) - 1), [len(days)]]))
    totals = np.round(applications * cum[edges]).astype(np.int64)
    return [(int(a), int(b), int(n)) for a, b, n in zip(edges[:-1], edges[1:], np.diff(totals))]


def default_chunk_rows(applications: int) -> int | None:
    """The CLI's window size for a book of ``applications``: None (whole) up to ``WHOLE_UP_TO``.

    >>> default_chunk_rows(1_000_000), default_chunk_rows(10_000_000)
    (None, 500000)
    """
    return None if applications <= WHOLE_UP_TO else DEFAULT_CHUNK_ROWS


def shared_hubs(config: GeneratorConfig) -> dict[str, np.ndarray]:
    """The honest hubs every window shares: carrier-NAT addresses and busy agents."""
    rng = np.random.default_rng([config.seed, 0x4B5])
    agents = agent_pool(config.applications)
    k = min(config.busy_agents, len(agents))
    return {"nat_ips": P.ipv4(rng, config.nat_ips), "busy_agents": rng.choice(agents, size=k, replace=False)}


class _Sink:
    """One contract table's file, written a chunk at a time."""

    def __init__(self, path: Path, columns: tuple[str, ...], config: GeneratorConfig) -> None:
        self.path, self.columns, self.config, self.rows = path, list(columns), config, 0
        if config.file_format == "parquet":
            self.schema = pa.schema([(c, pa.string()) for c in self.columns])
            empty = pa.Table.from_pandas(pd.DataFrame(columns=self.columns), schema=self.schema, preserve_index=False)
            self.parquet = pq.ParquetWriter(path, empty.schema)
        else:
            self.file = path.open("wb")

    def write(self, frame: pd.DataFrame) -> None:
        frame = frame[self.columns]
        if self.config.file_format == "parquet":
            if len(frame):
                table = pa.Table.from_pandas(frame.replace("", None), schema=self.schema, preserve_index=False)
                self.parquet.write_table(table)
        elif len(frame) or self.rows == 0:
            self.file.write(csv_bytes(frame, self.config.encoding, header=self.rows == 0 and not self.file.tell()))
        self.rows += len(frame)

    def close(self) -> None:
        if self.config.file_format == "parquet":
            self.parquet.close()
        else:
            self.file.close()


class _ChunkedBook:
    """The output folder(s) of a chunked book and the truth gathered across windows."""

    def __init__(self, config: GeneratorConfig, out: Path) -> None:
        self.config, self.out = config, out
        self.summary = GenerationSummary(out_dir=str(out))
        n = config.applications
        if config.new_batch_share is None:
            self.main_rows = {"": n}
        else:
            new = max(1, int(round(config.new_batch_share * n)))
            self.main_rows = {"history": n - new, "new": new}
        ext = "parquet" if config.file_format == "parquet" else "csv"
        self.sinks: dict[str, dict[str, _Sink]] = {}
        columns = dict(zip(_CONTRACT, (APPLICATION_COLUMNS, GUARANTEE_COLUMNS, CONTACT_COLUMNS, ROLE_COLUMNS)))
        for folder in self.main_rows:
            (out / folder).mkdir(parents=True, exist_ok=True)
            self.sinks[folder] = {
                name: _Sink(out / folder / f"{name}.{ext}", columns[name], config) for name in _CONTRACT
            }
        (out / "truth").mkdir(parents=True, exist_ok=True)
        self.truth = (out / "truth" / "applications.csv").open("wb")
        self.duplicates: dict[str, list[pd.DataFrame]] = {f: [] for f in self.main_rows}
        self.dup_count = dict.fromkeys(self.main_rows, 0)
        self.rings: list[pd.DataFrame] = []
        self.circles: list[pd.DataFrame] = []
        self.broken: list[pd.DataFrame] = []

    def add(self, book: Book, tables: dict[str, pd.DataFrame], broken: pd.DataFrame, new_ids: set[str] | None) -> None:
        """Write one window's tables; keep its duplicated broken rows for the end."""
        n = book.n
        apps = tables["applications"]
        contract = {name: tables[name] for name in _CONTRACT}
        contract["applications"] = apps.iloc[:n]
        duplicates = apps.iloc[n:]
        if new_ids is None:
            parts = {"": contract}
            is_new = np.zeros(n, dtype=bool)
            dup_folder = np.full(len(duplicates), "", dtype=object)
        else:
            parts = split_tables(contract, new_ids)
            is_new = contract["applications"]["application_id"].isin(new_ids).to_numpy()
            dup_folder = np.where(duplicates["application_id"].isin(new_ids), "new", "history").astype(object)
        folder_of_row = np.where(is_new, "new", "history") if new_ids is not None else np.full(n, "", dtype=object)
        # each row's 1-based line in its folder's file (the header is line 1)
        line_of_row = np.empty(n, dtype=np.int64)
        for folder in self.main_rows:
            mine = folder_of_row == folder
            line_of_row[mine] = self.sinks[folder]["applications"].rows + np.arange(int(mine.sum())) + 2
        line_of_dup = np.empty(len(duplicates), dtype=np.int64)
        for folder in self.main_rows:
            mine = dup_folder == folder
            k = int(mine.sum())
            line_of_dup[mine] = self.main_rows[folder] + self.dup_count[folder] + np.arange(k) + 2
            self.dup_count[folder] += k
            if k:
                self.duplicates[folder].append(duplicates[mine])
        if len(broken):
            local = broken["line"].to_numpy(dtype=np.int64) - 2
            dup = broken["reason"].str.startswith(_DUPLICATE).to_numpy()
            out = broken.copy()
            line, where = np.empty(len(out), dtype=np.int64), np.empty(len(out), dtype=object)
            line[~dup], where[~dup] = line_of_row[local[~dup]], folder_of_row[local[~dup]]
            line[dup], where[dup] = line_of_dup[local[dup] - n], dup_folder[local[dup] - n]
            out["line"] = line
            if new_ids is not None:
                out.insert(1, "folder", where)
            self.broken.append(out)
        for folder, frames in parts.items():
            for name, frame in frames.items():
                self.sinks[folder][name].write(frame)
        self.truth.write(csv_bytes(tables["truth"], "utf-8", header=not self.truth.tell()))
        self.rings.extend(book.rings)
        self.circles.extend(book.circles)

    def close(self) -> GenerationSummary:
        """Append the duplicated broken rows, write the truth gathered across windows; the summary."""
        summary, truth_dir = self.summary, self.out / "truth"
        for folder, sinks in self.sinks.items():
            for frame in self.duplicates[folder]:
                sinks["applications"].write(frame)
            for name, sink in sinks.items():
                sink.close()
                key = f"{folder}/{name}" if folder else name
                summary.paths[key] = str(sink.path)
                summary.row_counts[key] = sink.rows
        self.truth.close()
        rings, circles = planted_truth(self.rings, self.circles)
        columns = ["application_id", "line", "reason"]
        if self.config.new_batch_share is not None:
            columns.insert(1, "folder")
        broken = pd.concat(self.broken, ignore_index=True) if self.broken else pd.DataFrame(columns=columns)
        summary.paths["truth/applications"] = str(truth_dir / "applications.csv")
        for name, frame in (("rings", rings), ("guarantee_circles", circles), ("broken_rows", broken)):
            path = truth_dir / f"{name}.csv"
            write_csv(frame, path, "utf-8")
            summary.paths[f"truth/{name}"] = str(path)
        summary.broken_rows = len(broken)
        return summary


def generate_chunked(
    config: GeneratorConfig,
    out: Path,
    chunk_rows: int,
    progress: Callable[[str, int, int], None] | None = None,
    build: Callable[[Book], tuple[dict[str, pd.DataFrame], pd.DataFrame, set[str] | None]] = build_book,
) -> GenerationSummary:
    """Generate ``config``'s book one time window of about ``chunk_rows`` applications at a time.

    ``build`` builds one window's book (``generator.build_book``). Returns
    the summary, with ``chunks`` the applications of each window.

    Notes
    -----
    Cost: O(n) as the whole book; memory O(chunk_rows) plus the ring,
    circle and broken-row truth (a few bytes per planted ring).
    """
    windows = time_windows(config.applications, chunk_rows)
    hubs = shared_hubs(config)
    sink = _ChunkedBook(config, out)
    offset = rings = 0
    for k, (first, end, count) in enumerate(windows):
        if progress:
            progress(f"window {k + 1}/{len(windows)}", k, len(windows))
        book = Book(
            config=dataclasses.replace(config, applications=count),
            rng=np.random.default_rng([config.seed, k]),
            population=config.applications,
            offset=offset,
            ring_offset=rings,
            window=(first, end),
            hubs=hubs,
        )
        tables, broken, new_ids = build(book)
        sink.add(book, tables, broken, new_ids)
        count_planted(sink.summary, book, tables["truth"])
        sink.summary.chunks.append(count)
        offset, rings = offset + count, book._ring_counter
        del book, tables, broken, new_ids
    summary = sink.close()
    if progress:
        progress("done", len(windows), len(windows))
    return summary
