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
the lines it breaks. :func:`read_table_chunks` reads a CSV the same way a
part of its lines at a time, never holding the whole file. Parquet columns are checked against the contract's
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

import numpy as np
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
    #: a CSV read in parts: the accounting is complete only once every frame is read
    streamed: bool = False

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

    A Parquet file is read a batch of rows at a time. A CSV is read
    ``rows`` physical lines at a time (so a frame holds at most ``rows``
    rows), each part as :func:`read_table` reads a file: Arrow when it
    accounts for every line, else line by line, looking up to
    ``MAX_RECORD_LINES - 1`` lines past the part for a quoted value that
    spans lines. Its encoding is decided from the first MiB, as for a whole
    read. Its accounting (``lines``, ``rows``, the rejects …) grows as the
    frames are read and is complete when the iterator is exhausted; a file
    that turns out unreadable half-way raises :class:`UnreadableFile` from
    the iterator. A UTF-16 file is read whole and handed out in slices.

    Example
    -------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = p.write_bytes(b'a,b\\n1,2\\n3,"x\\ny"\\n\\n5,6,7\\n8,9\\n')
    >>> result, frames = read_table_chunks(p, 2)
    >>> [f[LINE].tolist() for f in frames]
    [[2, 3], [7]]
    >>> result.rows, result.lines, result.blank_lines, [r.line for r in result.rejects], result.unaccounted
    (3, 6, 1, [6], 0)
    """
    path = Path(path)
    if path.suffix.lower() in (".parquet", ".pq"):
        from ringscope.ingest.parquet_types import read_parquet_chunks

        return read_parquet_chunks(path, rows)
    return _read_csv_chunks(path, max(int(rows), 1))


# -- CSV ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Scan:
    """One pass over the raw bytes: physical lines and whether a NUL occurs."""

    lines: int
    has_nul: bool
    #: the last physical line, without its end (a line longer than 16 MiB may come cut)
    last_line: bytes = b""


def _scan(path: Path) -> _Scan:
    """Physical lines (ended by LF, CRLF or CR; a last line without an end
    counts), NUL bytes and the last line, in one streaming pass at memchr speed.

    Only a file holding a CR not followed by LF pays for counting CRs.
    """
    lf = lone_cr = 0
    nul = False
    last = b""
    before = current = b""
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 24):
            before, current = current, chunk
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
    tail = (before + current).splitlines()
    return _Scan(
        lines=lf + lone_cr + (last not in (b"", b"\n", b"\r")), has_nul=nul, last_line=tail[-1] if tail else b""
    )


_LONE_CR = re.compile(rb"\r(?!\n)")


def _open_csv(path: Path) -> tuple[str, list[str] | None]:
    """The file's encoding (decided from its first MiB) and its header's
    names (None for UTF-16, read apart); the names are not checked yet."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(_HEAD)
    except OSError as err:
        raise UnreadableFile(f"{path.name}: {err.strerror}") from err
    if not head.strip():
        raise UnreadableFile(f"{path.name}: the file is empty")
    encoding = detect_encoding(head)
    if encoding == "utf-16":
        return encoding, None
    header = head.splitlines()[0] if head.splitlines() else b""
    if b"\x00" in header:
        raise UnreadableFile(f"{path.name}: binary data, not a CSV file")
    if len(header) == len(head) and len(head) == _HEAD:
        raise UnreadableFile(f"{path.name}: no line break in the first MiB: not a CSV file")
    return encoding, _header_names(header, encoding, path.name)


def _read_csv(path: Path) -> ReadResult:
    encoding, names = _open_csv(path)
    if names is None:
        return _read_utf16(path)
    scan = _scan(path)
    names = check_column_names(names, path.name, max(scan.lines - 1, 0), encoding)
    if not scan.has_nul and encoding not in _LINE_DECODED and not _opens_quote(scan.last_line, encoding):
        result = _read_fast(path, encoding, names, scan)
        if result is not None:
            return result
    from ringscope.ingest.csv_lines import read_lines

    return read_lines(path.read_bytes(), encoding, names, path.name)


def _opens_quote(line: bytes, encoding: str) -> bool:
    """Does this (last) line leave a quote open? Arrow would close it at the
    end of its buffer, keeping the line end in the value: the line-by-line
    read judges such a line instead (as it would anywhere else in the file)."""
    if b'"' not in line:
        return False
    from ringscope.ingest.csv_lines import line_is_closed

    return not line_is_closed(line.decode(_arrow_encoding(encoding), errors="replace"))


def _read_csv_chunks(path: Path, rows: int) -> tuple[ReadResult, Iterator[pd.DataFrame]]:
    """:func:`read_table_chunks` for a CSV (see there)."""
    encoding, names = _open_csv(path)
    if names is None:  # UTF-16: decoded whole, then handed out in slices
        result = _read_utf16(path)
        frame = result.frame
        result.frame, result.rows = frame.iloc[:0], len(frame)
        return result, (frame.iloc[start : start + rows] for start in range(0, len(frame), rows))
    try:
        names = check_column_names(names, path.name, 0, encoding)
    except RefusedFile:  # refused: count its lines for the report
        names = check_column_names(names, path.name, max(_scan(path).lines - 1, 0), encoding)
    result = ReadResult(frame=pd.DataFrame(columns=[*names, LINE]), encoding=encoding, rows=0, streamed=True)
    return result, _csv_frames(path, encoding, names, rows, result)


def _csv_frames(path: Path, encoding: str, names: list[str], rows: int, result: ReadResult) -> Iterator[pd.DataFrame]:
    """The frames of a CSV read ``rows`` lines at a time; ``result``'s
    accounting grows with each part. At most ``rows + MAX_RECORD_LINES``
    lines are held at a time."""
    from ringscope.ingest.csv_lines import MAX_RECORD_LINES

    window: list[bytes] = []  # physical lines with their ends, from body line ``offset`` on
    offset = 0
    blocks = _body_lines(path)
    done = False
    while True:
        while not done and len(window) < rows + MAX_RECORD_LINES:
            block = next(blocks, None)
            if block is None:
                done = True
            else:
                window.extend(block)
        if not window:
            return
        owned = min(rows, len(window))
        part = _csv_part(window, owned, encoding, names, path.name, offset + 2)
        if part.unaccounted:
            raise UnreadableFile(
                f"{path.name}: {part.unaccounted:,} of lines {offset + 2:,}–{offset + 1 + part.lines:,} "
                "are in no row and no reject; the file was not loaded"
            )
        frame = part.frame
        frame.index = pd.RangeIndex(result.rows, result.rows + len(frame))
        result.rows += len(frame)
        result.lines += part.lines
        result.row_lines += part.row_lines
        result.blank_lines += part.blank_lines
        result.rejects.extend(part.rejects)
        if part.path == "lines":
            result.path = "lines"
        del window[: part.lines]
        offset += part.lines
        if len(frame):
            yield frame
        del part, frame  # not held while the next part is read


def _csv_part(window: list[bytes], owned: int, encoding: str, names: list[str], source: str, first_line: int):
    """The first ``owned`` lines of ``window`` read as :func:`read_table`
    reads a file: Arrow's parser when it makes one row of every line, else
    line by line (the lines after ``owned`` are looked at as continuations)."""
    from ringscope.ingest.csv_lines import LinesPart, _line_end, read_part

    if encoding not in _LINE_DECODED and not _opens_quote(window[owned - 1].rstrip(b"\r\n"), encoding):
        data = b"".join(window[:owned])
        table = None if b"\x00" in data else _arrow_rows(data, encoding, names)
        del data
        if table is not None and table.num_rows == owned:
            frame = table.to_pandas()
            frame[LINE] = np.arange(first_line, first_line + owned, dtype=np.int64)
            return LinesPart(frame, [], owned, owned, 0, path="fast")
    texts = b"".join(window).splitlines()
    ends = [_line_end(line) for line in window]
    return read_part(texts, ends, owned, encoding, names, source, first_line)


def _arrow_rows(data: bytes, encoding: str, names: list[str]) -> pa.Table | None:
    """Arrow's read of body lines (no header), or None when it fails."""
    try:
        return pacsv.read_csv(
            pa.BufferReader(data),
            read_options=pacsv.ReadOptions(
                encoding=_arrow_encoding(encoding), block_size=1 << 24, use_threads=True, column_names=names
            ),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=_convert_options(names),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError, LookupError):
        return None


def _body_lines(path: Path, block: int = 1 << 22) -> Iterator[list[bytes]]:
    """The physical lines after the header (ended by LF, CRLF or CR, ends
    kept), a block of the file at a time."""
    carry = b""
    header = True
    with open(path, "rb") as fh:
        while data := fh.read(block):
            lines = (carry + data).splitlines(keepends=True)
            carry = b""
            if not lines[-1].endswith(b"\n"):  # no end yet, or a CR that may start a CRLF: wait for the next block
                carry = lines.pop()
            if header and lines:
                del lines[0]
                header = False
            if lines:
                yield lines
    if carry and not header:
        yield [carry]  # the last line, without an end (or ended by CR)


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
