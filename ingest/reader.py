"""Read a lender's export tables (CSV in any Chinese encoding, or Parquet).

Every column is read as text: normalisation decides what a value means, and
the raw text is kept beside it. Rows the CSV parser cannot split (wrong number
of fields) are not lost: they come back as :class:`RawReject` with their line.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

__all__ = ["TABLES", "TableFile", "RawReject", "ReadResult", "find_tables", "detect_encoding", "read_table"]

#: the contract's tables, in load order (applications first: others refer to it)
TABLES = ("applications", "guarantees", "contacts", "company_roles")

#: column holding the source line number of each row (1 = header line)
LINE = "__line"


class UnreadableFile(Exception):
    """The file cannot be read at all (not CSV/Parquet, undecodable, no header)."""


@dataclass(frozen=True)
class TableFile:
    table: str
    path: Path


@dataclass(frozen=True)
class RawReject:
    source_file: str
    line: int | None
    reason: str
    content: str = ""


@dataclass
class ReadResult:
    frame: pd.DataFrame
    encoding: str
    rejects: list[RawReject] = field(default_factory=list)


def find_tables(folder: str | Path) -> list[TableFile]:
    """The contract tables present in ``folder`` (``name.csv`` or ``name.parquet``).

    Example
    -------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "applications.csv").write_text("application_id\\n")
    >>> [t.table for t in find_tables(d)]
    ['applications']
    """
    folder = Path(folder)
    found = []
    for table in TABLES:
        candidates = [folder / f"{table}{ext}" for ext in (".csv", ".parquet", ".CSV", ".pq", ".txt")]
        existing = [c for c in candidates if c.is_file()]
        if existing:
            found.append(TableFile(table, existing[0]))
    return found


def detect_encoding(head: bytes) -> str:
    """Guess the text encoding of a Chinese CSV from its first bytes.

    UTF-8 with BOM, then strict UTF-8, then GB18030 (a superset of GBK and
    GB2312, so one decoder covers all three); charset-normalizer decides the
    rest.

    Example
    -------
    >>> detect_encoding("姓名".encode("gbk"))
    'gb18030'
    >>> detect_encoding(codecs.BOM_UTF8 + "姓名".encode())
    'utf-8-sig'
    """
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith(codecs.BOM_UTF16_LE) or head.startswith(codecs.BOM_UTF16_BE):
        return "utf-16"
    # A multi-byte character may be cut at the end of the sample: drop up to
    # three trailing bytes before judging.
    for cut in range(0, 4):
        sample = head[: len(head) - cut] if cut else head
        try:
            sample.decode("utf-8")
            return "utf-8"
        except UnicodeDecodeError as err:
            if err.start < len(sample) - 4:
                break
    for cut in range(0, 4):
        sample = head[: len(head) - cut] if cut else head
        try:
            sample.decode("gb18030")
            return "gb18030"
        except UnicodeDecodeError as err:
            if err.start < len(sample) - 4:
                break
    from charset_normalizer import from_bytes

    best = from_bytes(head).best()
    if best is None:
        raise UnreadableFile("cannot tell the text encoding (not UTF-8, GBK or GB18030)")
    return best.encoding


def read_table(path: str | Path) -> ReadResult:
    """Read one table file as text columns, with each row's source line.

    Raises :class:`UnreadableFile` when the file cannot be read at all.
    """
    path = Path(path)
    if path.suffix.lower() in (".parquet", ".pq"):
        return _read_parquet(path)
    return _read_csv(path)


def _read_parquet(path: Path) -> ReadResult:
    try:
        table = pq.read_table(path)
    except Exception as err:  # pyarrow raises several types for a bad file
        raise UnreadableFile(f"{path.name}: not a readable Parquet file ({err})") from err
    frame = pd.DataFrame(
        {name: _as_text(table.column(name)) for name in table.column_names},
    )
    # Parquet has no lines: number rows like a CSV would (header = 1).
    frame[LINE] = range(2, len(frame) + 2)
    return ReadResult(frame=frame, encoding="parquet")


def _as_text(column: pa.ChunkedArray) -> pd.Series:
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return column.to_pandas()
    series = column.to_pandas()
    if pa.types.is_floating(column.type):
        # 12000.0 -> "12000", keep real decimals
        return series.map(lambda v: None if pd.isna(v) else (str(int(v)) if float(v).is_integer() else repr(float(v))))
    return series.map(lambda v: None if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v))


def _read_csv(path: Path) -> ReadResult:
    try:
        with open(path, "rb") as fh:
            head = fh.read(1 << 20)
    except OSError as err:
        raise UnreadableFile(f"{path.name}: {err.strerror}") from err
    if not head.strip():
        raise UnreadableFile(f"{path.name}: the file is empty")
    if b"\x00" in head[:4096] and not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise UnreadableFile(f"{path.name}: binary data, not a CSV file")
    encoding = detect_encoding(head)
    bad_rows: list[RawReject] = []

    def on_invalid_row(row: pacsv.InvalidRow) -> str:
        bad_rows.append(
            RawReject(
                source_file=path.name,
                line=row.number,
                reason=f"malformed CSV row: expected {row.expected_columns} fields, found {row.actual_columns}",
                content=(row.text or "")[:500],
            )
        )
        return "skip"

    parse_options = pacsv.ParseOptions(invalid_row_handler=on_invalid_row, newlines_in_values=True)
    try:
        names = _header_names(path, encoding)
        convert = pacsv.ConvertOptions(
            column_types={n: pa.string() for n in names},
            strings_can_be_null=True,
            null_values=[""],
            quoted_strings_can_be_null=True,
        )
        # Threaded parsing is faster but cannot tell a bad row's line number:
        # read again single-threaded only when the file has bad rows.
        for threads in (True, False):
            bad_rows.clear()
            read_options = pacsv.ReadOptions(encoding=_arrow_encoding(encoding), block_size=1 << 24, use_threads=threads)
            table = pacsv.read_csv(path, read_options=read_options, parse_options=parse_options, convert_options=convert)
            if not bad_rows:
                break
    except (pa.ArrowInvalid, UnicodeDecodeError, LookupError) as err:
        raise UnreadableFile(f"{path.name}: not a readable CSV file ({err})") from err
    frame = table.to_pandas()
    frame.columns = [c.strip().lstrip("\ufeff") for c in frame.columns]
    # Quoted line breaks exist only if the file has more lines than rows.
    extra = _embedded_newlines(frame) if _count_lines(path) > len(frame) + len(bad_rows) + 1 else None
    frame[LINE] = _line_numbers(len(frame), [r.line for r in bad_rows], extra)
    return ReadResult(frame=frame, encoding=encoding, rejects=bad_rows)


def _arrow_encoding(encoding: str) -> str:
    # Arrow transcodes through Python codecs; utf-8-sig is handled natively.
    return "utf8" if encoding in ("utf-8", "utf-8-sig") else encoding


def _header_names(path: Path, encoding: str) -> list[str]:
    with open(path, encoding=encoding, newline="") as fh:
        import csv

        try:
            header = next(csv.reader(fh))
        except StopIteration:
            raise UnreadableFile(f"{path.name}: no header line") from None
    return header


def _count_lines(path: Path) -> int:
    """Physical lines in a file (a last line without a newline counts)."""
    lines, last = 0, b"\n"
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 24):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    return lines + (last != b"\n")


def _embedded_newlines(frame: pd.DataFrame) -> np.ndarray | None:
    """Per row, how many line breaks its quoted values hold (None if none do)."""
    total = None
    for col in frame.columns:
        series = frame[col]
        if not pd.api.types.is_string_dtype(series):
            continue
        arr = pa.array(series.to_numpy(dtype=object, na_value=None), type=pa.string()) if series.dtype == object else pa.array(series)
        if not pc.any(pc.match_substring(arr, "\n")).as_py():
            continue
        counts = pc.fill_null(pc.count_substring(arr, "\n"), 0).to_numpy(zero_copy_only=False)
        total = counts if total is None else total + counts
    return total


def _line_numbers(n_rows: int, skipped_lines: list[int | None], extra: np.ndarray | None) -> np.ndarray:
    """First source line of each parsed row (header is line 1).

    ``skipped_lines`` are lines the parser rejected; ``extra`` counts line
    breaks inside each row's quoted values.

    Example
    -------
    >>> _line_numbers(3, [3], None).tolist()
    [2, 4, 5]
    >>> _line_numbers(2, [], np.array([1, 0])).tolist()
    [2, 4]
    """
    spans = np.ones(n_rows, dtype=np.int64) if extra is None else 1 + np.asarray(extra, dtype=np.int64)
    lines = 2 + np.concatenate([[0], np.cumsum(spans)[:-1]]) if n_rows else np.zeros(0, dtype=np.int64)
    # The j-th skipped line s_j (ascending) pushes a row down when the row,
    # already pushed by j earlier skips, sits at or after it: s_j - j <= line.
    skipped = np.array(sorted(x for x in skipped_lines if x is not None), dtype=np.int64)
    if len(skipped):
        lines = lines + np.searchsorted(skipped - np.arange(len(skipped)), lines, side="right")
    return lines
