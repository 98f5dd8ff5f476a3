"""The contract's columns in code are the ones docs/DATA_CONTRACT.md gives users."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ringscope.ingest.contract import CONTRACT_COLUMNS, OPTIONAL_COLUMNS, REQUIRED_COLUMNS, TABLES

DOC = Path(__file__).resolve().parents[2] / "docs" / "DATA_CONTRACT.md"


def documented_columns(table: str) -> list[tuple[str, bool]]:
    """(column, required) rows of the table's section of the contract, in its order."""
    text = DOC.read_text(encoding="utf-8")
    section = re.search(rf"^## {table}\b.*?$(.*?)(?=^## |\Z)", text, flags=re.M | re.S)
    assert section is not None, f"no section for {table}"
    rows = []
    for line in section.group(1).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) >= 2 and cells[1] in ("yes", "no"):
            rows.append((cells[0], cells[1] == "yes"))
    return rows


@pytest.mark.parametrize("table", TABLES)
def test_code_lists_the_documented_columns_in_order(table: str) -> None:
    documented = documented_columns(table)
    assert [c for c, _ in documented] == list(CONTRACT_COLUMNS[table])
    assert [c for c, required in documented if required] == list(REQUIRED_COLUMNS[table])
    assert [c for c, required in documented if not required] == list(OPTIONAL_COLUMNS[table])


def test_every_table_has_its_lists() -> None:
    assert set(CONTRACT_COLUMNS) == set(REQUIRED_COLUMNS) == set(OPTIONAL_COLUMNS) == set(TABLES)
