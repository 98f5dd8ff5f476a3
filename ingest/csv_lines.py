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

:func:`read_part` does the same for a run of a file's lines (the chunked
ingest reads a CSV that way, :func:`ringscope.ingest.reader.read_table_chunks`):
records start only in the lines it owns, and one may continue into the
``MAX_RECORD_LINES - 1`` lines after them, so a part ends where the whole
read would and line numbers stay the file's own.
"""

from __future__ import annotations

import codecs
import csv
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from ringscope.ingest.reader import LINE, RawReject, ReadResult, UnreadableFile, _convert_options

__all__ = ["MAX_RECORD_LINES", "LinesPart", "read_lines", "read_part", "line_is_closed", "is_utf8_line"]

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
class _Records:
    """The records found among the lines: each one's first line (0-based in
    the body), its span in lines, and its UTF-8 text."""

    first: np.ndarray
    span: np.ndarray
    texts: list[bytes]
    blank: int
    rejects: list[RawReject]
    #: lines accounted for: the owned ones, and those a record continued into
    stop: int


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
    Cost: O(n) over the lines, mostly in C (splitting, decoding by blocks,
    Arrow's parser); Python looks only at lines that are blank, undecodable
    or hold an odd number of quotes. If Arrow then sees a different number of
    records (an even number of quotes that still leaves one open), the file
    is judged again with every quoted line checked exactly.
    """
    body = data.splitlines()[1:]
    part = read_part(body, _LineEnds(data), len(body), encoding, names, source, 2, raw=data)
    return ReadResult(
        frame=part.frame,
        encoding=encoding,
        rejects=part.rejects,
        lines=len(body),
        row_lines=part.row_lines,
        blank_lines=part.blank_lines,
        path="lines",
    )


@dataclass
class LinesPart:
    """What :func:`read_part` made of the lines it owns: the rows (with
    :data:`LINE`), the rejects, and how its lines were spent. ``lines`` is
    how many lines from the first it accounts for: the lines it owns, and
    more when its last record continues past them."""

    frame: pd.DataFrame
    rejects: list[RawReject]
    lines: int
    row_lines: int
    blank_lines: int
    #: "fast" when Arrow read the lines on its own, else "lines"
    path: str = "lines"

    @property
    def unaccounted(self) -> int:
        return self.lines - self.row_lines - self.blank_lines - sum(r.lines for r in self.rejects)


def read_part(
    texts: list[bytes],
    ends,
    owned: int,
    encoding: str,
    names: list[str],
    source: str,
    first_line: int,
    raw: bytes | None = None,
) -> LinesPart:
    """Read a run of body lines line by line: the first ``owned`` of ``texts``
    start records, the rest are only looked at (a record that opens in an
    owned line may continue into them, as it would in the whole file).

    Parameters
    ----------
    texts : list of bytes
        Physical lines without their line ends, in the file's encoding: the
        owned lines, then up to ``MAX_RECORD_LINES - 1`` lines after them
        (none at the end of the file).
    ends : indexable
        ``ends[k]``: the line end (LF, CRLF, CR or nothing) of ``texts[k]``.
    owned : int
        Lines that belong to this part.
    first_line : int
        The file's line number of ``texts[0]`` (2 for the first body line).
    raw : bytes, optional
        The raw bytes the lines come from (the whole file), if at hand: a
        UTF-8 file is then checked without joining the lines.

    Example
    -------
    >>> t = [b'1,"a', b'b"', b'3,4']
    >>> p = read_part(t, [b"\\n"] * 3, 1, "utf-8", ["x", "y"], "t.csv", 10)
    >>> p.frame.to_dict("list"), p.lines  # the record opened in line 10 ends in line 11
    ({'x': ['1'], 'y': ['a\\nb'], '__line': [10]}, 2)
    """
    texts, rejects = _decode(texts, encoding, source, raw, first_line)
    rejects = [r for r in rejects if r.line < first_line + owned]  # a later line is judged by the next part
    for exact in (False, True):
        records = _records(texts, ends, len(names), exact, source, owned, first_line)
        try:
            parsed = _parse(records.texts, names)
        except pa.ArrowInvalid as err:  # e.g. a single value larger than Arrow's block
            raise UnreadableFile(f"{source}: not a readable CSV file ({err})") from None
        if parsed is not None:
            break
    else:  # pragma: no cover - the exact pass closes every record it keeps
        raise UnreadableFile(f"{source}: the CSV reader lost track of its lines; please report this file")
    table, bad = parsed
    rejects += records.rejects
    keep = np.ones(len(records.texts), dtype=bool)
    for index, found in bad:
        keep[index] = False
        rejects.append(
            RawReject(
                source,
                int(records.first[index]) + first_line,
                f"malformed CSV row: expected {len(names)} fields, found {found}",
                _content(records.texts[index]),
                lines=int(records.span[index]),
            )
        )
    frame = table.to_pandas()
    frame[LINE] = records.first[keep] + first_line
    rejects.sort(key=lambda r: r.line or 0)
    return LinesPart(
        frame=frame,
        rejects=rejects,
        lines=records.stop,
        row_lines=int(records.span[keep].sum()),
        blank_lines=records.blank,
    )


def _content(text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return text.replace("\x00", "\\x00")[:500]


class _LineEnds:
    """The line end (LF, CRLF or CR) of each body line, found only when a
    record spans lines (so a clean-looking file never pays for it)."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._ends: list[bytes] | None = None

    def __getitem__(self, k: int) -> bytes:
        if self._ends is None:
            self._ends = [_line_end(x) for x in self._data.splitlines(keepends=True)[1:]]
        return self._ends[k]


def _line_end(line: bytes) -> bytes:
    if line.endswith(b"\r\n"):
        return b"\r\n"
    return line[-1:] if line.endswith((b"\n", b"\r")) else b""


def _is_valid_utf8(line: bytes) -> bool:
    """Does one line decode as UTF-8? (An exception is cheaper than any
    pre-filter tried: 0.9 µs per GB18030 line.)"""
    try:
        line.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def _valid_utf8(data: bytes) -> bool:
    """Is ``data`` UTF-8, checked in slices so no full-size str is built?"""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        for start in range(0, len(data), 1 << 24):
            decoder.decode(data[start : start + (1 << 24)])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def is_utf8_line(text: bytes, encoding: str = "gb18030") -> bool:
    """Is this line, found in a file of ``encoding``, really UTF-8 text?

    Short GB18030 text is sometimes valid UTF-8 by accident (one random
    two-character name in thirty), so validity alone does not decide: the
    decoding whose non-ASCII characters are more often common Chinese
    characters (those in GB2312) wins; a tie goes to the file's encoding.

    Example
    -------
    >>> is_utf8_line("王芳,13800138000".encode()), is_utf8_line("王芳,13800138000".encode("gb18030"))
    (True, False)
    >>> "模".encode("gb18030").decode("utf-8")  # valid UTF-8, but not Chinese
    'ģ'
    >>> is_utf8_line("模".encode("gb18030"))
    False
    """
    try:
        as_utf8 = text.decode("utf-8")
    except UnicodeDecodeError:
        return False
    try:
        as_file = text.decode(encoding)
    except UnicodeDecodeError:
        return True
    return _common_share(as_utf8) > _common_share(as_file)


def _common_share(text: str) -> float:
    """Share of the non-ASCII characters that are common Chinese (GB2312)."""
    wide = [c for c in text if not c.isascii()]
    return sum(map(_in_gb2312, wide)) / len(wide) if wide else 0.0


@lru_cache(maxsize=65536)
def _in_gb2312(char: str) -> bool:
    try:
        char.encode("gb2312")
        return True
    except UnicodeEncodeError:
        return False


def _decode(
    body: list[bytes], encoding: str, source: str, data: bytes | None, first_line: int = 2
) -> tuple[list[bytes | None], list[RawReject]]:
    """Each line as UTF-8 bytes (None: rejected, with the reason in the rejects).

    Whole blocks of lines are decoded at once; a line is looked at on its own
    only when its block shows a fault (a NUL, an undecodable byte, or, in a
    file not in UTF-8, a line that is valid UTF-8). ``data``: the raw bytes
    of the lines, if at hand (else they are joined to be checked).
    """
    rejects: list[RawReject] = []
    utf8 = encoding in ("utf-8", "utf-8-sig")
    if utf8:
        if data is None:
            data = b"\n".join(body)
        if b"\x00" not in data and _valid_utf8(data):
            return body, rejects  # every line decodes: nothing to do per line
    texts: list[bytes | None] = list(body)

    def reject(i: int, reason: str, content: str) -> None:
        texts[i] = None
        rejects.append(RawReject(source, i + first_line, reason, _content(content)))

    def judge(i: int) -> None:
        """One line on its own: reject it, or leave it (still in the file's encoding)."""
        text = texts[i]
        if b"\x00" in text:
            reject(i, "NUL byte in the line", text.decode(encoding, errors="replace"))
        elif text.isascii():
            return
        elif not utf8 and is_utf8_line(text, encoding):
            reject(i, f"line is UTF-8 text in a {encoding} file", text.decode("utf-8"))
        else:
            try:
                text.decode(encoding)
            except UnicodeDecodeError as err:
                reason = f"line is not valid {encoding} text (byte 0x{text[err.start]:02x} at byte {err.start + 1})"
                reject(i, reason, text.decode(encoding, errors="replace"))

    for start in range(0, len(texts), _BLOCK):
        stop = min(start + _BLOCK, len(texts))
        joined = b"\n".join(texts[start:stop])
        if utf8:
            if b"\x00" in joined or not _valid_utf8(joined):
                for i in range(start, stop):
                    judge(i)
            continue
        # Another encoding: suspect lines hold a NUL or an undecodable byte
        # (the whole block is judged then), or could be valid UTF-8.
        as_file = joined.decode(encoding, errors="replace")
        broken = "\ufffd" in as_file or "\x00" in as_file
        maybe_utf8 = [
            start + k for k, line in enumerate(texts[start:stop]) if not line.isascii() and _is_valid_utf8(line)
        ]
        if not broken and not maybe_utf8:
            converted = as_file.encode("utf-8").split(b"\n")
            if len(converted) == stop - start:
                texts[start:stop] = converted
                continue
        for i in range(start, stop) if broken else maybe_utf8:
            judge(i)
        good = [i for i in range(start, stop) if texts[i] is not None]
        converted = b"\n".join(texts[i] for i in good).decode(encoding).encode("utf-8").split(b"\n")
        for i, text in zip(good, converted):
            texts[i] = text
    return texts, rejects


def _records(
    texts: list[bytes | None], ends, n_fields: int, exact: bool, source: str, owned: int, first_line: int
) -> _Records:
    """Group lines into records; reject the lines whose open quote cannot close.
    Records start only in the first ``owned`` lines (the others are looked at
    only as continuations)."""
    n = len(texts)
    # 0: a record of one line; 1: not a record start (rejected, blank, inside
    # another record); 2: the first line of a record spanning lines
    kind = bytearray(n)
    special = [
        i for i, t in enumerate(texts[:owned]) if t is None or not t or (t.count(b'"') % 2 if not exact else b'"' in t)
    ]
    multi: dict[int, tuple[int, bytes]] = {}
    rejects: list[RawReject] = []
    blank = 0
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

    consumed = -1  # last line taken by a record spanning lines
    for i in special:
        if i <= consumed:
            continue
        text = texts[i]
        if text is None:  # already rejected (encoding, NUL)
            kind[i] = 1
        elif not text:
            kind[i] = 1
            blank += 1
        elif line_is_closed(text.decode("utf-8")):
            kind[i] = 0
        else:
            end = _continue_record(texts, ends, i, clean)
            if end is None:
                kind[i] = 1
                rejects.append(
                    RawReject(
                        source,
                        i + first_line,
                        "malformed CSV row: a quote opened in this line is not closed "
                        "(the lines after it are read on their own)",
                        _content(text),
                    )
                )
            else:
                kind[i] = 2
                kind[i + 1 : end + 1] = b"\x01" * (end - i)
                multi[i] = (end, b"".join(texts[k] + ends[k] for k in range(i, end)) + texts[end])
                consumed = end
    first = np.flatnonzero(np.frombuffer(bytes(kind[:owned]), dtype=np.uint8) != 1)
    span = np.ones(len(first), dtype=np.int64)
    out = [texts[i] for i in first.tolist()]
    if multi:
        for pos, i in enumerate(first.tolist()):
            if i in multi:
                end, joined = multi[i]
                out[pos] = joined
                span[pos] = end - i + 1
    return _Records(first=first, span=span, texts=out, blank=blank, rejects=rejects, stop=max(owned, consumed + 1))


def _continue_record(texts: list[bytes | None], ends, i: int, clean) -> int | None:
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


def _parse(texts: list[bytes], names: list[str]) -> tuple[pa.Table, list[tuple[int, int]]] | None:
    """Arrow-parse the records: (table, [(record index, fields found)]), or
    None when Arrow sees a different number of records than given.

    A sentinel row follows the last record, so a last record that leaves a
    quote open swallows it and is caught, wherever the records end (at the
    end of the file, or of a part of it) — Arrow would otherwise close the
    quote at the end of the buffer and keep the line end in the value."""
    if not texts:
        return pa.table({n: pa.array([], pa.string()) for n in names}), []
    buffer = b"\n".join(texts) + b"\n" + b",".join([b"x"] * len(names)) + b"\n"
    bad: list[tuple[int | None, int]] = []

    def on_invalid_row(row: pacsv.InvalidRow) -> str:
        bad.append((None if row.number is None else row.number - 1, row.actual_columns))  # from 1, no header
        return "skip"

    # Threaded parsing is fast but cannot number a bad row: parse again
    # single-threaded only when there are bad rows.
    for threads in (True, False):
        bad.clear()
        table = pacsv.read_csv(
            pa.BufferReader(buffer),
            read_options=pacsv.ReadOptions(
                encoding="utf8", block_size=1 << 24, use_threads=threads, column_names=names
            ),
            parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid_row, newlines_in_values=True),
            convert_options=_convert_options(names),
        )
        if not bad or all(index is not None for index, _ in bad):
            break
    if table.num_rows + len(bad) != len(texts) + 1:
        return None
    return table.slice(0, table.num_rows - 1), bad
