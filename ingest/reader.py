"""Read a lender's export tables (CSV in any Chinese encoding, or Parquet).

Every column is read as text: normalisation decides what a value means, and
the raw text is kept beside it. Nothing read is lost without a word: every
physical line of a CSV ends up in a row, in a :class:`RawReject` (with its
line number and a reason) or is counted as blank, and :class:`ReadResult`
says how many lines were accounted for.

Clean CSVs take the fast path (Arrow's multi-threaded parser). A file Arrow
cannot read line for line (a stray quote, a wrong field count, bytes that do
not decode, a NUL byte, a blank line) is read again by
:mod:`ringscope.ingest.csv_lines`, one physical line at a time, so a fault costs only
the lines it breaks. Parquet columns are checked against the contract's
types (:mod:`ringscope.ingest.parquet_types`): a conversion that could change a value
refuses the file, naming the column.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

__all__ = [
    "TABLES",
    "LINE",
    "TableFile",
    "RawReject",
    "ReadResult",
    "UnreadableFile",
    "RefusedFile",
    "find_tables",
    "detect_encoding",
    "read_table",
    "read_table_chunks",
    "check_column_names",
]

#: the contract's tables, in load order (applications first: others refer to it)
TABLES = ("applications", "guarantees", "contacts", "company_roles")

#: column holding the source line number of each row (1 = header line)
LINE = "__line"

#: bytes read to guess the encoding and find the header
_HEAD = 1 << 20


class UnreadableFile(Exception):
    """The file cannot be read at all (not CSV/Parquet, undecodable header, no header)."""


class RefusedFile(UnreadableFile):
    """The file was read but is refused as a whole (duplicate column names, a
    Parquet column whose type would change values). ``rows`` is how many data
    rows (CSV: physical data lines) it holds; all of them count as rejected."""

    def __init__(self, message: str, rows: int, encoding: str = "") -> None:
        super().__init__(message)
        self.rows = rows
        self.encoding = encoding


@dataclass(frozen=True)
class TableFile:
    table: str
    path: Path


@dataclass(frozen=True)
class RawReject:
    """A part of the file that never became a row: ``line`` is its first
    physical line, ``lines`` how many physical lines it covers."""

    source_file: str
    line: int | None
    reason: str
    content: str = ""
    lines: int = 1


@dataclass
class ReadResult:
    """Rows as text columns (plus :data:`LINE`), and how the file's lines were spent.

    ``lines`` counts physical data lines (after the header; Parquet: rows);
    ``row_lines`` the lines the rows of ``frame`` span (more than
    ``len(frame)`` only when quoted values hold line breaks), ``blank_lines``
    the empty lines skipped. :attr:`unaccounted` is 0 when every line is in a
    row, a reject or blank.
    """

    frame: pd.DataFrame
    encoding: str
    rejects: list[RawReject] = field(default_factory=list)
    lines: int = 0
    row_lines: int = 0
    blank_lines: int = 0
    #: "fast" (Arrow read the whole file), "lines" (read line by line) or "parquet"
    path: str = "fast"
    #: rows of the file when ``frame`` is empty because they come in chunks (:func:`read_table_chunks`)
    rows: int | None = None

    @property
    def unaccounted(self) -> int:
        return self.lines - self.row_lines - self.blank_lines - sum(r.lines for r in self.rejects)


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
    GB2312, so one decoder covers all three). When neither decodes the whole
    sample (a few lines in another encoding), the encoding that decodes most
    of its non-ASCII lines wins; charset-normalizer decides the rest.

    Example
    -------
    >>> detect_encoding("姓名".encode("gbk"))
    'gb18030'
    >>> detect_encoding(codecs.BOM_UTF8 + "姓名".encode())
    'utf-8-sig'
    >>> detect_encoding("姓名\\n张三\\n".encode("gbk") + "李四\\n".encode())
    'gb18030'
    """
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith(codecs.BOM_UTF16_LE) or head.startswith(codecs.BOM_UTF16_BE):
        return "utf-16"
    for encoding in ("utf-8", "gb18030"):
        if _decodes(head, encoding):
            return encoding
    # Mixed: vote line by line (the last line may be cut, so it does not vote).
    from ringscope.ingest.csv_lines import is_utf8_line

    votes = Counter()
    for line in head.splitlines()[:-1]:
        if line.isascii():
            continue
        if is_utf8_line(line):
            votes["utf-8"] += 1
        elif _decodes(line, "gb18030"):
            votes["gb18030"] += 1
    if votes:
        return votes.most_common(1)[0][0]
    from charset_normalizer import from_bytes

    best = from_bytes(head).best()
    if best is None:
        raise UnreadableFile("cannot tell the text encoding (not UTF-8, GBK or GB18030)")
    return best.encoding


def _decodes(sample: bytes, encoding: str) -> bool:
    """Does ``sample`` decode, allowing a character cut at its very end?"""
    try:
        sample.decode(encoding)
        return True
    except UnicodeDecodeError as err:
        if err.start < len(sample) - 4:
            return False
    for cut in range(1, 4):
        try:
            sample[:-cut].decode(encoding)
            return True
        except UnicodeDecodeError:
            continue
    return False


def check_column_names(names: list[str], source: str, rows: int, encoding: str = "") -> list[str]:
    """Header names stripped of spaces and BOM; a name given twice refuses the file.

    Two columns with one name (``amount`` twice, or ``applicant_name`` next to
    ``applicant_name ``) would leave it to chance which one is read, so the
    file is refused (:class:`RefusedFile`) with both positions named. A
    column without a name becomes ``column_<position>``.

    Example
    -------
    >>> check_column_names(["\\ufeffa", " b ", ""], "t.csv", 0)
    ['a', 'b', 'column_3']
    >>> check_column_names(["amount", "amount "], "t.csv", 5)
    Traceback (most recent call last):
    ...
    ingest.reader.RefusedFile: t.csv: duplicate column names: 'amount' (columns 1 and 2); rename or drop the copies
    """
    clean = [str(n).strip().lstrip("\ufeff").strip() for n in names]
    clean = [n if n else f"column_{i + 1}" for i, n in enumerate(clean)]
    seen: dict[str, list[int]] = {}
    for i, name in enumerate(clean):
        seen.setdefault(name, []).append(i + 1)
    dups = {n: pos for n, pos in seen.items() if len(pos) > 1}
    if dups:
        listed = "; ".join(f"{n!r} (columns {' and '.join(map(str, pos))})" for n, pos in dups.items())
        raise RefusedFile(f"{source}: duplicate column names: {listed}; rename or drop the copies", rows, encoding)
    return clean


def read_table(path: str | Path) -> ReadResult:
    """Read one table file as text columns, with each row's source line.

    Raises :class:`UnreadableFile` when the file cannot be read at all and
    :class:`RefusedFile` when it is refused as a whole.
    """
    path = Path(path)
    if path.suffix.lower() in (".parquet", ".pq"):
        from ringscope.ingest.parquet_types import read_parquet

        return read_parquet(path)
    return _read_csv(path)


def read_table_chunks(path: str | Path, rows: int) -> tuple[ReadResult, Iterator[pd.DataFrame]]:
    """:func:`read_table` ``rows`` rows at a time: the file's accounting (a
    :class:`ReadResult` whose ``frame`` is empty and whose rejects are the
    reader's) and an iterator of frames, in order, whose concatenation is
    ``read_table(path).frame`` (same values, index and :data:`LINE`).

    A Parquet file is read a batch of rows at a time; a CSV is read whole
    (its line accounting and the line-by-line fallback see the whole file)
    and handed out in slices.
    """
    path = Path(path)
    if path.suffix.lower() in (".parquet", ".pq"):
        from ringscope.ingest.parquet_types import read_parquet_chunks

        return read_parquet_chunks(path, rows)
    result = _read_csv(path)
    frame = result.frame
    result.frame, result.rows = frame.iloc[:0], len(frame)

    def frames() -> Iterator[pd.DataFrame]:
        for start in range(0, len(frame), rows):
            yield frame.iloc[start : start + rows]

    return result, frames()


# -- CSV ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Scan:
    """One pass over the raw bytes: physical lines and whether a NUL occurs."""

    lines: int
    has_nul: bool


def _scan(path: Path) -> _Scan:
    """Physical lines (ended by LF, CRLF or CR; a last line without an end
    counts) and NUL bytes, in one streaming pass at memchr speed.

    Only a file holding a CR not followed by LF pays for counting CRs.
    """
    lf = lone_cr = 0
    nul = False
    last = b""
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 24):
            lf += chunk.count(b"\n")
            if last == b"\r" and chunk[:1] != b"\n":
                lone_cr += 1  # a CR ended the previous chunk
            if b"\r" in chunk and _LONE_CR.search(chunk):
                body = chunk[:-1] if chunk.endswith(b"\r") else chunk  # judged with the next chunk
                lone_cr += body.count(b"\r") - body.count(b"\r\n")
            nul = nul or b"\x00" in chunk
            last = chunk[-1:]
    if last == b"\r":
        lone_cr += 1
    return _Scan(lines=lf + lone_cr + (last not in (b"", b"\n", b"\r")), has_nul=nul)


_LONE_CR = re.compile(rb"\r(?!\n)")


def _read_csv(path: Path) -> ReadResult:
    try:
        with open(path, "rb") as fh:
            head = fh.read(_HEAD)
    except OSError as err:
        raise UnreadableFile(f"{path.name}: {err.strerror}") from err
    if not head.strip():
        raise UnreadableFile(f"{path.name}: the file is empty")
    encoding = detect_encoding(head)
    if encoding == "utf-16":
        return _read_utf16(path)
    header = head.splitlines()[0] if head.splitlines() else b""
    if b"\x00" in header:
        raise UnreadableFile(f"{path.name}: binary data, not a CSV file")
    if len(header) == len(head) and len(head) == _HEAD:
        raise UnreadableFile(f"{path.name}: no line break in the first MiB: not a CSV file")
    names = _header_names(header, encoding, path.name)
    scan = _scan(path)
    names = check_column_names(names, path.name, max(scan.lines - 1, 0), encoding)
    if not scan.has_nul and encoding not in _LINE_DECODED:
        result = _read_fast(path, encoding, names, scan)
        if result is not None:
            return result
    from ringscope.ingest.csv_lines import read_lines

    return read_lines(path.read_bytes(), encoding, names, path.name)


#: encodings read line by line always: Arrow would transcode them through
#: Python codecs anyway, and only a line-by-line read catches UTF-8 lines in
#: a GB18030 file (they often decode, as nonsense)
_LINE_DECODED = frozenset({"gb18030", "gbk", "gb2312"})


def _read_fast(path: Path, encoding: str, names: list[str], scan: _Scan) -> ReadResult | None:
    """Arrow's multi-threaded read, kept only when it accounts for every line:
    one row per physical line after the header, no row of the wrong length
    (Arrow stops on the first), nothing that failed to decode. Otherwise None
    (read line by line)."""
    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(
                encoding=_arrow_encoding(encoding),
                block_size=1 << 24,
                use_threads=True,
                column_names=names,
                skip_rows=1,
            ),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=_convert_options(names),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError, LookupError):
        return None
    data_lines = max(scan.lines - 1, 0)
    # Each quoted line break, blank line or swallowed line makes rows < lines.
    if table.num_rows != data_lines:
        return None
    frame = table.to_pandas()
    frame[LINE] = range(2, len(frame) + 2)
    return ReadResult(frame=frame, encoding=encoding, lines=data_lines, row_lines=data_lines, path="fast")


def _convert_options(names: list[str]) -> pacsv.ConvertOptions:
    return pacsv.ConvertOptions(
        column_types={n: pa.string() for n in names},
        strings_can_be_null=True,
        null_values=[""],
        quoted_strings_can_be_null=True,
    )


def _arrow_encoding(encoding: str) -> str:
    # Arrow transcodes through Python codecs; utf-8-sig is handled natively.
    return "utf8" if encoding in ("utf-8", "utf-8-sig") else encoding


def _header_names(header: bytes, encoding: str, source: str) -> list[str]:
    """Column names from the first physical line (which must parse on its own)."""
    try:
        text = header.decode("utf-8-sig" if encoding == "utf-8" else encoding)
    except (UnicodeDecodeError, LookupError) as err:
        raise UnreadableFile(f"{source}: the header line is not {encoding} text ({err})") from None
    if not text.strip():
        raise UnreadableFile(f"{source}: no header line (the first line is empty)")
    from ringscope.ingest.csv_lines import line_is_closed

    if not line_is_closed(text):
        raise UnreadableFile(f"{source}: the header line has a quote that is not closed")
    return next(csv.reader([text]))


def _read_utf16(path: Path) -> ReadResult:
    """UTF-16 (with BOM) is decoded whole and read line by line as UTF-8."""
    from ringscope.ingest.csv_lines import read_lines

    try:
        data = path.read_bytes().decode("utf-16").encode("utf-8")
    except UnicodeDecodeError as err:
        raise UnreadableFile(f"{path.name}: not valid UTF-16 text ({err})") from None
    lines = data.splitlines()
    names = _header_names(lines[0] if lines else b"", "utf-8", path.name)
    names = check_column_names(names, path.name, max(len(lines) - 1, 0), "utf-16")
    result = read_lines(data, "utf-8", names, path.name)
    result.encoding = "utf-16"
    return result
