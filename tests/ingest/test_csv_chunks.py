"""A CSV read in parts (``read_table_chunks``) gives what the whole read gives.

Every case is read whole and in parts of every small size, so each chunk
boundary falls on each line once: the frames concatenated equal the whole
read's frame (values, index, source lines), and the rejects, the line
accounting and the encoding are the same.
"""

from __future__ import annotations

import codecs

import pandas as pd
import pytest

from ringscope.ingest import reader
from ringscope.ingest.reader import LINE, read_table, read_table_chunks
from ringscope.ingest.synthetic import GeneratorConfig, generate_portfolio
from tests.ingest.corruption import VARIANTS, corrupt

HEADER = "application_id,name,amount"


def _rows(n: int, start: int = 1) -> list[str]:
    return [f"A{i},name{i},{i * 100}" for i in range(start, start + n)]


def _write(tmp_path, data: bytes, name: str = "applications.csv"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _lines(lines: list[str], encoding: str = "utf-8", end: str = "\n") -> bytes:
    return (end.join(lines) + end).encode(encoding)


def _rejects(result) -> list[tuple]:
    return [(r.source_file, r.line, r.reason, r.content, r.lines) for r in result.rejects]


def _same_in_parts(path, sizes=None):
    """Read ``path`` whole and in parts of each size; return the whole read."""
    whole = read_table(path)
    n = max(whole.lines, 1)
    for rows in sizes or range(1, n + 2):
        head, frames = read_table_chunks(path, rows)
        got = list(frames)
        assert all(0 < len(f) <= rows for f in got), rows
        frame = pd.concat(got) if got else head.frame
        if got:
            pd.testing.assert_frame_equal(frame, whole.frame, obj=f"rows={rows}")
        else:
            assert whole.frame.empty and list(head.frame.columns) == list(whole.frame.columns)
        assert head.rows == len(whole.frame), rows
        assert _rejects(head) == _rejects(whole), rows
        assert (head.encoding, head.lines, head.row_lines, head.blank_lines) == (
            whole.encoding,
            whole.lines,
            whole.row_lines,
            whole.blank_lines,
        ), rows
        assert head.unaccounted == 0
    return whole


def test_a_clean_file_in_parts(tmp_path):
    whole = _same_in_parts(_write(tmp_path, _lines([HEADER, *_rows(12)])))
    assert whole.path == "fast" and len(whole.frame) == 12


@pytest.mark.parametrize("encoding", ["gbk", "gb18030"])
def test_chinese_encodings_with_broken_lines(tmp_path, encoding):
    names = ["王芳", "李四", "张伟", "欧阳娜娜", "𠀀明", "㐀华"] if encoding == "gb18030" else ["王芳", "李四", "张伟"]
    lines = [HEADER] + [f"A{i},{n},{i}00" for i, n in enumerate(names * 3)]
    data = bytearray(_lines(lines, encoding))
    data += f"B1,{names[0]},1\n".encode()  # a UTF-8 line in the file: rejected
    data += b"B2,\xff\xfe\x81,2\n"  # bytes that are not the file's encoding: rejected
    data += _lines([f"B3,{names[1]},3", f'B4,"{names[2]}', '续",4', "B5,x,5"], encoding)  # a quoted line break
    whole = _same_in_parts(_write(tmp_path, bytes(data)))
    assert whole.encoding == "gb18030"
    assert [r.line for r in whole.rejects] == [len(lines) + 1, len(lines) + 2]
    assert f"{names[2]}\n续" in whole.frame["name"].tolist()


def test_a_quoted_line_break_across_every_boundary(tmp_path):
    lines = [HEADER, *_rows(3), 'Q1,"first', "second", 'third",700', *_rows(3, 10), '"Q2",",\n', '",800', *_rows(2, 20)]
    whole = _same_in_parts(_write(tmp_path, _lines(lines)))
    assert whole.frame.loc[whole.frame["application_id"] == "Q1", "name"].item() == "first\nsecond\nthird"
    assert whole.frame.loc[whole.frame["application_id"] == "Q1", LINE].item() == 5
    assert not whole.rejects


def test_broken_lines_at_every_boundary(tmp_path):
    lines = [
        HEADER,
        *_rows(2),
        'X1,"never closed,100',  # an open quote followed by rows that parse on their own: rejected alone
        *_rows(2, 5),
        "X2,too,many,fields",
        "",
        "",
        'X3,"ok ""quoted""",300',
        "X4,short",
        *_rows(2, 9),
        'X5,5" screen,500',  # a literal quote inside a field
    ]
    whole = _same_in_parts(_write(tmp_path, _lines(lines)))
    assert [r.line for r in whole.rejects] == [4, 7, 11]
    assert whole.blank_lines == 2


def test_bom_and_crlf_line_ends(tmp_path):
    lines = [HEADER, *_rows(4), 'Q1,"two\r\nlines",100', *_rows(3, 8), "X1,short"]
    data = codecs.BOM_UTF8 + _lines(lines, end="\r\n")
    whole = _same_in_parts(_write(tmp_path, data))
    assert whole.encoding == "utf-8-sig" and list(whole.frame.columns)[0] == "application_id"
    assert "two\r\nlines" in whole.frame["name"].tolist()
    assert [r.line for r in whole.rejects] == [11]


def test_cr_line_ends_and_no_final_line_end(tmp_path):
    data = "\r".join([HEADER, *_rows(5), "", *_rows(3, 9)]).encode()
    whole = _same_in_parts(_write(tmp_path, data))
    assert whole.frame[LINE].tolist() == [2, 3, 4, 5, 6, 8, 9, 10]


def test_nul_and_blank_lines_in_a_later_part(tmp_path):
    lines = [HEADER, *_rows(6), "A7,na\x00me,700", "", *_rows(4, 8)]
    whole = _same_in_parts(_write(tmp_path, _lines(lines)))
    assert [r.reason for r in whole.rejects] == ["NUL byte in the line"]


def test_a_last_line_that_opens_a_quote_is_rejected_whole_or_in_parts(tmp_path):
    """Arrow closes such a quote at the end of its buffer (the old reader kept
    ``'x\\n'`` as the value); it is rejected as anywhere else in the file,
    so the end of a part cannot change a row."""
    for last in ['A9,"x', 'A9,b"c,"d']:
        whole = _same_in_parts(_write(tmp_path, _lines([HEADER, *_rows(4), last])))
        assert len(whole.frame) == 4 and [r.line for r in whole.rejects] == [6], last


def test_the_encoding_is_decided_from_the_first_mib_not_the_first_part(tmp_path):
    # the first parts are ASCII; the Chinese names come later, in GBK
    lines = [HEADER, *_rows(20)] + [f"G{i},王芳{i},{i}" for i in range(5)]
    path = _write(tmp_path, _lines(lines, "gbk"))
    whole = _same_in_parts(path, sizes=[1, 3, 7, 20, 21])
    assert whole.encoding == "gb18030" and "王芳0" in whole.frame["name"].tolist() and not whole.rejects
    head, frames = read_table_chunks(path, 7)
    assert head.encoding == "gb18030" and not list(frames)[0]["name"].str.contains("[^ -~]").any()


def test_gbk_after_the_first_mib_of_ascii_is_rejected_whole_or_in_parts(tmp_path):
    """As the whole read: the encoding comes from the first MiB (here ASCII,
    so UTF-8); GBK lines after it are rejected, never decided per part."""
    n = reader._HEAD // 20 + 10
    lines = [HEADER, *_rows(n)] + [f"G{i},王芳{i},{i}" for i in range(3)] + _rows(2, n + 1)
    path = _write(tmp_path, _lines(lines, "gbk"))
    whole = _same_in_parts(path, sizes=[5000, n, n + 1, n + 2])
    assert whole.encoding == "utf-8"
    assert [r.line for r in whole.rejects] == [n + 2, n + 3, n + 4]
    assert all("not valid utf-8" in r.reason for r in whole.rejects)


@pytest.fixture(scope="module")
def clean_book(tmp_path_factory):
    folder = tmp_path_factory.mktemp("book") / "clean"
    generate_portfolio(GeneratorConfig(applications=150, seed=23, broken_row_rate=0.0), folder)
    return folder


@pytest.mark.parametrize("variant", [v for v in VARIANTS if v != "parquet"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_corrupted_exports_in_parts(clean_book, tmp_path, variant, seed):
    """The fuzz harness's faults (stray quotes, NULs, other encodings, junk
    bytes, ragged rows, blank lines, truncation) read the same in parts."""
    corrupted = corrupt(clean_book, tmp_path / "c", seed, variant)
    for table in ("applications", "contacts"):
        path = corrupted.folder / f"{table}.csv"
        try:
            read_table(path)
        except reader.UnreadableFile:
            with pytest.raises(reader.UnreadableFile):
                list(read_table_chunks(path, 7)[1])
            continue
        _same_in_parts(path, sizes=[1, 2, 3, 5, 7, 16, 31, 32, 33, 64, 1000])
