"""Reading export files: encodings, Parquet, and true source line numbers.

A fault in a CSV costs only the lines it breaks, and every physical line is
accounted for: in a row, in a reject (with its line number) or as blank.
"""

from __future__ import annotations

import pytest

from ringscope.ingest.reader import RefusedFile, UnreadableFile, read_table

HEADER = "application_id,name,amount"


def _rows(n: int, start: int = 1) -> list[str]:
    return [f"A{i},name{i},{i * 100}" for i in range(start, start + n)]


def _write(tmp_path, lines: list[str] | bytes, name: str = "applications.csv"):
    path = tmp_path / name
    path.write_bytes(lines if isinstance(lines, bytes) else ("\n".join(lines) + "\n").encode())
    return path


def _accounted(result) -> None:
    """Every physical line is in a row, a reject or blank."""
    assert result.unaccounted == 0
    assert result.row_lines + result.blank_lines + sum(r.lines for r in result.rejects) == result.lines


def test_line_numbers_survive_bad_rows_and_quoted_line_breaks(tmp_path):
    path = tmp_path / "applications.csv"
    path.write_text('a,b,c\n1,2,3\n4,5\n6,7,8\n9,10,11,12\n"x\ny",z,w\nq,r,s\n', encoding="utf-8")
    result = read_table(path)
    assert result.frame["a"].tolist() == ["1", "6", "x\ny", "q"]
    assert result.frame["__line"].tolist() == [2, 4, 6, 8]
    assert [r.line for r in result.rejects] == [3, 5]
    assert "expected 3 fields, found 2" in result.rejects[0].reason
    assert result.lines == 7 and result.row_lines == 5
    _accounted(result)


def test_file_without_final_newline(tmp_path):
    path = tmp_path / "contacts.csv"
    path.write_text("a,b\n1,2\n3,4", encoding="utf-8")
    assert read_table(path).frame["__line"].tolist() == [2, 3]


@pytest.mark.parametrize("content", [b"", b"   \n", b"\x00\x01binary\x00" * 50])
def test_unreadable_files_raise_a_clear_error(tmp_path, content):
    path = tmp_path / "applications.csv"
    path.write_bytes(content)
    with pytest.raises(UnreadableFile):
        read_table(path)


def test_clean_file_takes_the_fast_path(tmp_path):
    result = read_table(_write(tmp_path, [HEADER, *_rows(50)]))
    assert result.path == "fast"
    assert len(result.frame) == 50 and result.lines == 50
    _accounted(result)


@pytest.mark.parametrize("where", ["start of a field", "start of the last field", "inside a field"])
def test_a_stray_quote_costs_only_its_line(tmp_path, where):
    rows = _rows(3000)
    broken = 99  # 0-based: line 101 of the file
    ident, name, amount = rows[broken].split(",")
    rows[broken] = {
        "start of a field": f'{ident},"{name},{amount}',
        "start of the last field": f'{ident},{name},"{amount}',
        "inside a field": f'{ident},na"me,"{amount}',
    }[where]
    result = read_table(_write(tmp_path, [HEADER, *rows]))
    assert len(result.frame) == 2999
    assert [(r.line, r.lines) for r in result.rejects] == [(101, 1)]
    assert "quote" in result.rejects[0].reason
    assert result.frame["application_id"].tolist() == [f"A{i}" for i in range(1, 3001) if i != 100]
    assert result.frame["__line"].tolist() == [i + 1 for i in range(1, 3001) if i != 100]
    _accounted(result)


def test_a_quote_closed_on_the_same_line_breaks_only_the_field_count(tmp_path):
    rows = _rows(10)
    rows[4] = 'A5,"name5,500"'  # the quotes close on the line, but two fields run together
    rows[6] = 'A7,"na"me7,700'  # lenient: text after a closing quote joins the value
    result = read_table(_write(tmp_path, [HEADER, *rows]))
    assert [r.line for r in result.rejects] == [6]
    assert "expected 3 fields, found 2" in result.rejects[0].reason
    assert result.frame.loc[result.frame["application_id"] == "A7", "name"].tolist() == ["name7"]
    _accounted(result)


def test_a_quoted_value_may_span_lines_but_never_swallows_a_row(tmp_path):
    rows = _rows(6)
    rows[1] = 'A2,"line one\nline two",200'  # a real multi-line value
    rows[3] = 'A4,"open,400'  # a stray quote: the next line is a complete row
    result = read_table(_write(tmp_path, [HEADER, *rows]))
    names = dict(zip(result.frame["application_id"], result.frame["name"]))
    assert names["A2"] == "line one\nline two"
    assert "A5" in names and "A4" not in names
    assert [r.line for r in result.rejects] == [6]  # A4: header 1, A1 2, A2 3-4, A3 5, A4 6
    assert result.frame["__line"].tolist() == [2, 3, 5, 7, 8]
    _accounted(result)


def test_a_record_may_not_span_more_than_the_limit(tmp_path):
    from ringscope.ingest.csv_lines import MAX_RECORD_LINES

    lines = [HEADER, 'A1,"' + "\n".join(["x"] * (MAX_RECORD_LINES + 5)) + '",1', *_rows(3, start=2)]
    result = read_table(_write(tmp_path, lines))
    assert result.frame["application_id"].tolist()[-3:] == ["A2", "A3", "A4"]
    assert result.rejects[0].line == 2
    _accounted(result)


def test_blank_lines_are_counted_not_lost(tmp_path):
    result = read_table(_write(tmp_path, [HEADER, *_rows(2), "", *_rows(2, start=3), "", ""]))
    assert len(result.frame) == 4 and result.blank_lines == 3 and result.lines == 7
    assert result.frame["__line"].tolist() == [2, 3, 5, 6]
    _accounted(result)


@pytest.mark.parametrize("end", [b"\r\n", b"\r"])
def test_crlf_and_cr_line_ends(tmp_path, end):
    data = end.join(x.encode() for x in [HEADER, *_rows(5)]) + end
    result = read_table(_write(tmp_path, data))
    assert result.frame["application_id"].tolist() == [f"A{i}" for i in range(1, 6)]
    assert result.lines == 5
    _accounted(result)


def test_a_nul_byte_costs_only_its_line(tmp_path):
    lines = [HEADER.encode(), *(r.encode() for r in _rows(20))]
    lines[7] = lines[7][:3] + b"\x00" + lines[7][3:]
    result = read_table(_write(tmp_path, b"\n".join(lines) + b"\n"))
    assert len(result.frame) == 19
    assert [(r.line, r.reason) for r in result.rejects] == [(8, "NUL byte in the line")]
    assert "\\x00" in result.rejects[0].content
    _accounted(result)


def _gb_rows(n: int) -> list[str]:
    return [f"A{i},张伟{i},{i}00" for i in range(1, n + 1)]


def test_a_gb18030_file_cut_inside_a_character(tmp_path):
    data = ("\n".join([HEADER, *_gb_rows(30)]) + "\n").encode("gb18030")
    data += "A31,张伟".encode("gb18030")[:-1]  # the last character loses its second byte
    result = read_table(_write(tmp_path, data))
    assert result.encoding == "gb18030"
    assert len(result.frame) == 30 and result.frame["name"].iloc[0] == "张伟1"
    assert [r.line for r in result.rejects] == [32]
    assert "not valid gb18030" in result.rejects[0].reason
    _accounted(result)


def test_utf8_rows_inside_a_gb18030_file(tmp_path):
    lines = [x.encode("gb18030") for x in [HEADER, *_gb_rows(200)]]
    for i in range(50, 60):  # ten rows written by another system, in UTF-8
        lines[i] = f"A{i},王芳{i},{i}00".encode()
    result = read_table(_write(tmp_path, b"\n".join(lines) + b"\n"))
    assert result.encoding == "gb18030"
    assert len(result.frame) == 190
    assert [r.line for r in result.rejects] == list(range(51, 61))
    assert all("UTF-8 text in a gb18030 file" in r.reason for r in result.rejects)
    assert "王芳50" in result.rejects[0].content  # the reject shows the text readably
    assert set(result.frame["name"]) == {f"张伟{i}" for i in range(1, 201) if not 50 <= i < 60}
    _accounted(result)


def test_gb18030_rows_after_the_first_mib_of_a_utf8_file(tmp_path):
    rows = [f"A{i},张伟{i},{i}00" for i in range(1, 60_001)]
    lines = [x.encode("utf-8") for x in [HEADER, *rows]]
    assert sum(map(len, lines[:50_000])) > 1 << 20
    for i in (50_000, 50_001, 59_999):
        lines[i] = rows[i - 1].encode("gb18030")
    result = read_table(_write(tmp_path, b"\n".join(lines) + b"\n"))
    assert result.encoding == "utf-8"
    assert len(result.frame) == 59_997
    assert [r.line for r in result.rejects] == [50_001, 50_002, 60_000]
    assert all(r.reason.startswith("line is not valid utf-8 text") for r in result.rejects)
    _accounted(result)


def test_duplicate_column_names_refuse_the_file(tmp_path):
    for header in ("application_id,amount,name,amount", "application_id,name ,name,amount"):
        path = _write(tmp_path, [header, "A1,1,x,2", "A2,1,x,2"])
        with pytest.raises(RefusedFile) as err:
            read_table(path)
        assert "duplicate column names" in str(err.value)
        assert err.value.rows == 2


def test_a_header_with_an_open_quote_is_unreadable(tmp_path):
    with pytest.raises(UnreadableFile, match="header"):
        read_table(_write(tmp_path, ['application_id,"name,amount', *_rows(3)]))
