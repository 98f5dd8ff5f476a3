"""Read a damaged CSV one physical line at a time, so a fault costs only its lines.

Arrow's CSV parser reads a file as one stream: a stray ``"`` at the start of
a field opens a quoted value that runs to the next quote, possibly thousands
of lines later, and bytes that do not decode fail the whole file. Here each
physical line (ended by LF, CRLF or CR) is judged on its own:

- a line that does not decode in the file's encoding, or (GB18030 files) is
  UTF-8 text, or holds a NUL byte, is rejected with its line number;
- an empty line is counted as blank;
- a line whose quotes close is one row (the field count is checked by Arrow
  below, with the same lenient quoting rules as the fast path);
- a line that leaves a quote open may continue on the next lines, as a quoted
  line break in a value, but only while no following line parses on its own
  as a complete row and for at most :data:`MAX_RECORD_LINES` lines, and the
  record must close strictly (a closing quote followed by a comma or the end
  of the line). Otherwise the line alone is rejected and reading resumes on
  the next line: the resynchronisation that keeps a stray quote from
  swallowing the rest of the file.

The surviving records are handed to Arrow as one UTF-8 buffer (so values are
parsed exactly as on the fast path); rows with the wrong number of fields
come back as rejects. Every physical data line ends up in a row, a reject or
the blank count.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from ingest.reader import LINE, RawReject, ReadResult, UnreadableFile, _convert_options

__all__ = ["MAX_RECORD_LINES", "read_lines", "line_is_closed"]

#: the most physical lines one record (a value with quoted line breaks) may span
MAX_RECORD_LINES = 32

#: lines decoded together when the encoding is checked block by block
_BLOCK = 4096

# One field, lenient (as Arrow and Python's csv without strict): a quoted part
# may be followed by more text; a quote inside an unquoted field is literal.
_F_LENIENT = r'(?:"(?:[^"]|"")*+"[^,]*|[^,"][^,]*|)'
_CLOSED_LENIENT = re.compile(rf"{_F_LENIENT}(?:,{_F_LENIENT})*", re.S)
# One field, strict: a quoted field ends at a quote followed by , or the end;
# an unquoted field holds no quote and no line break.
_F_STRICT = r'(?:"(?:[^"]|"")*+"|[^,"\r\n]*)'
_CLOSED_STRICT = re.compile(rf"{_F_STRICT}(?:,{_F_STRICT})*", re.S)
_OPEN_STRICT = re.compile(rf'(?:{_F_STRICT},)*"(?:[^"]|"")*+', re.S)


def line_is_closed(text: str) -> bool:
    """Do the quotes of one line close (lenient CSV rules, as Arrow reads)?

    Example
    -------
    >>> line_is_closed('a,"b,c",d'), line_is_closed('a,"b,c'), line_is_closed('a,5" screen,b')
    (True, False, True)
    """
    return '"' not in text or _CLOSED_LENIENT.fullmatch(text) is not None


@dataclass
class _Record:
    line: int  # first physical line (1 = header)
    span: int  # physical lines
    text: bytes  # UTF-8, without the final line end


def read_lines(data: bytes, encoding: str, names: list[str], source: str) -> ReadResult:
    """Read ``data`` (a whole CSV file, header first) line by line.

    Parameters
    ----------
    data : bytes
        The raw file.
    encoding : str
        Its encoding (``utf-8``, ``utf-8-sig``, ``gb18030`` …).
    names : list of str
        The header's column names, already checked.
    source : str
        File name for the rejects.

    Returns
    -------
    ReadResult with ``path == "lines"``.

    Example
    -------
    >>> r = read_lines(b'a,b\\n1,"2\\n3,4\\n\\n5,6,7\\n', "utf-8", ["a", "b"], "t.csv")
    >>> r.frame["a"].tolist(), r.frame["__line"].tolist(), [(x.line, x.reason[:24]) for x in r.rejects]
    (['3'], [3], [(2, 'malformed CSV row: a quo'), (5, 'malformed CSV row: expec')])
    >>> r.lines, r.blank_lines, r.unaccounted
    (4, 1, 0)

    Notes
    -----
    Cost: O(n) over the lines; the regular expressions run only on lines
    whose quote count is odd (or on every quoted line, if Arrow disagrees
    with the cheap test: then the file is judged again exactly).
    """
    raw = data.splitlines(keepends=True)
    body = raw[1:]
    texts, ends, rejects = _decode(body, encoding, source)
    for exact in (False, True):
        records, blank, structure_rejects = _records(texts, ends, len(names), exact, source)
        table, bad = _parse(records, names)
        if table is not None:
            break
    else:  # pragma: no cover - the exact pass closes every record it keeps
        raise UnreadableFile(f"{source}: the CSV reader lost track of its lines; please report this file")
    rejects += structure_rejects
    keep = np.ones(len(records), dtype=bool)
    for index, found in bad:
        rec = records[index]
        keep[index] = False
        rejects.append(RawReject(source, rec.line, f"malformed CSV row: expected {len(names)} fields, found {found}",
                                 _content(rec.text), lines=rec.span))
    frame = table.to_pandas()
    frame[LINE] = np.array([r.line for r in records], dtype=np.int64)[keep]
    rejects.sort(key=lambda r: r.line or 0)
    return ReadResult(
        frame=frame,
        encoding=encoding,
        rejects=rejects,
        lines=len(body),
        row_lines=int(sum(r.span for r, k in zip(records, keep) if k)),
        blank_lines=blank,
        path="lines",
    )


def _content(text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return text.replace("\x00", "\\x00")[:500]


def _split_end(line: bytes) -> tuple[bytes, bytes]:
    if line.endswith(b"\r\n"):
        return line[:-2], b"\r\n"
    if line.endswith((b"\n", b"\r")):
        return line[:-1], line[-1:]
    return line, b""


def _decode(body: list[bytes], encoding: str, source: str) -> tuple[list[bytes | None], list[bytes], list[RawReject]]:
    """Each line as UTF-8 bytes without its line end (None: rejected), the line ends, the rejects."""
    texts: list[bytes | None] = []
    ends: list[bytes] = []
    for line in body:
        text, end = _split_end(line)
        texts.append(text)
        ends.append(end)
    rejects: list[RawReject] = []

    def reject(i: int, reason: str, content: str) -> None:
        texts[i] = None
        rejects.append(RawReject(source, i + 2, reason, _content(content)))

    utf8 = encoding in ("utf-8", "utf-8-sig")
    for start in range(0, len(texts), _BLOCK):
        block = texts[start:start + _BLOCK]
        joined = b"\n".join(block)
        if utf8 and b"\x00" not in joined:
            try:
                joined.decode("utf-8")
                continue  # the common case: a whole block of good UTF-8
            except UnicodeDecodeError:
                pass
        for i in range(start, start + len(block)):
            text = texts[i]
            if b"\x00" in text:
                reject(i, "NUL byte in the line", text.decode(encoding, errors="replace"))
                continue
            if text.isascii():
                continue
            if not utf8:
                try:
                    text.decode("utf-8")
                    reject(i, f"line is UTF-8 text in a {encoding} file", text.decode("utf-8"))
                    continue
                except UnicodeDecodeError:
                    pass
            try:
                decoded = text.decode(encoding)
            except UnicodeDecodeError as err:
                reason = f"line is not valid {encoding} text (byte 0x{text[err.start]:02x} at byte {err.start + 1})"
                reject(i, reason, text.decode(encoding, errors="replace"))
                continue
            if not utf8:
                texts[i] = decoded.encode("utf-8")
    return texts, ends, rejects


def _records(texts: list[bytes | None], ends: list[bytes], n_fields: int, exact: bool,
             source: str) -> tuple[list[_Record], int, list[RawReject]]:
    """Group lines into records; reject lines whose open quote cannot close."""
    records: list[_Record] = []
    rejects: list[RawReject] = []
    blank = 0
    n = len(texts)
    clean_cache: dict[int, bool] = {}

    def clean(k: int) -> bool:
        """Does line k parse on its own as a complete row (strictly)?"""
        if k not in clean_cache:
            text = texts[k]
            ok = False
            if text:
                s = text.decode("utf-8")
                if _CLOSED_STRICT.fullmatch(s):
                    ok = len(next(csv.reader([s]))) == n_fields
            clean_cache[k] = ok
        return clean_cache[k]

    i = 0
    while i < n:
        text = texts[i]
        if text is None:  # already rejected (encoding, NUL)
            i += 1
            continue
        if not text:
            blank += 1
            i += 1
            continue
        quotes = text.count(b'"')
        if quotes == 0 or (not exact and quotes % 2 == 0) or line_is_closed(text.decode("utf-8")):
            records.append(_Record(i + 2, 1, text))
            i += 1
            continue
        end = _continue_record(texts, ends, i, clean)
        if end is None:
            rejects.append(RawReject(
                source, i + 2,
                "malformed CSV row: a quote opened in this line is not closed (the lines after it are read on their own)",
                _content(text)))
            i += 1
            continue
        joined = b"".join(texts[k] + ends[k] for k in range(i, end)) + texts[end]
        records.append(_Record(i + 2, end - i + 1, joined))
        i = end + 1
    return records, blank, rejects


def _continue_record(texts: list[bytes | None], ends: list[bytes], i: int, clean) -> int | None:
    """Last line of the record that line i opens, or None when it cannot close."""
    parts = [texts[i].decode("utf-8")]
    for k in range(i + 1, min(i + MAX_RECORD_LINES, len(texts))):
        text = texts[k]
        if text is None or clean(k):
            return None  # never swallow a bad line or a line that is a row of its own
        parts.append(ends[k - 1].decode("ascii") + text.decode("utf-8"))
        if '"' not in parts[-1]:
            continue  # still inside the quoted value
        candidate = "".join(parts)
        if _CLOSED_STRICT.fullmatch(candidate):
            return k
        if not _OPEN_STRICT.fullmatch(candidate):
            return None  # closed wrongly: a quote followed by text
    return None


def _parse(records: list[_Record], names: list[str]) -> tuple[pa.Table | None, list[tuple[int, int]]]:
    """Arrow-parse the records; (table, [(record index, fields found)]), or
    (None, []) when Arrow sees a different number of records."""
    bad: list[tuple[int, int]] = []

    def on_invalid_row(row: pacsv.InvalidRow) -> str:
        bad.append((row.number - 1, row.actual_columns))  # numbered from 1, no header
        return "skip"

    if not records:
        return pa.table({n: pa.array([], pa.string()) for n in names}), bad
    buffer = b"\n".join(r.text for r in records) + b"\n"
    table = pacsv.read_csv(
        pa.BufferReader(buffer),
        read_options=pacsv.ReadOptions(encoding="utf8", block_size=1 << 24, use_threads=False, column_names=names),
        parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid_row, newlines_in_values=True),
        convert_options=_convert_options(names),
    )
    if table.num_rows + len(bad) != len(records):
        return None, []
    return table, bad
