"""Reading export files: encodings, Parquet, and true source line numbers."""

from __future__ import annotations

import pytest

from ingest.reader import UnreadableFile, read_table


def test_line_numbers_survive_bad_rows_and_quoted_line_breaks(tmp_path):
    path = tmp_path / "applications.csv"
    path.write_text('a,b,c\n1,2,3\n4,5\n6,7,8\n9,10,11,12\n"x\ny",z,w\nq,r,s\n', encoding="utf-8")
    result = read_table(path)
    assert result.frame["a"].tolist() == ["1", "6", "x\ny", "q"]
    assert result.frame["__line"].tolist() == [2, 4, 6, 8]
    assert [r.line for r in result.rejects] == [3, 5]
    assert "expected 3 fields, found 2" in result.rejects[0].reason


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
