"""Parquet columns are checked against the contract: nothing changes a value silently."""

from __future__ import annotations

import datetime as dt
import decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ringscope.ingest.pipeline import ingest_folder
from ringscope.ingest.reader import RefusedFile, read_table
from tests.sample_data import P1

# 18-digit resident IDs: float64 keeps ~16 significant digits
IDS = ["110105194912310021", "11010519491231002X", "440301199001011234"]


def _write(tmp_path, columns: dict) -> object:
    path = tmp_path / "applications.parquet"
    pq.write_table(pa.table(columns), path)
    return path


def test_float_identifier_column_is_refused_naming_the_column(tmp_path):
    path = _write(tmp_path, {"applicant_id_number": pa.array([110105194912310021.0, 440301199001011234.0])})
    with pytest.raises(RefusedFile, match="column applicant_id_number is double") as err:
        read_table(path)
    assert err.value.rows == 2


def test_float_identifiers_that_are_exact_integers_are_read(tmp_path):
    path = _write(tmp_path, {"applicant_phone": pa.array([13800138000.0, None]), "amount": pa.array([12000.0, 0.5])})
    frame = read_table(path).frame
    assert frame["applicant_phone"].tolist()[0] == "13800138000"
    assert frame["amount"].tolist() == ["12000", "0.5"]


def test_huge_float_amounts_are_written_out_not_in_exponent_form(tmp_path):
    frame = read_table(_write(tmp_path, {"amount": pa.array([1e30, float("inf")])})).frame
    assert frame["amount"].tolist() == ["1" + "0" * 30, "inf"]


def test_binary_is_decoded_as_utf8_or_refused(tmp_path):
    frame = read_table(_write(tmp_path, {"application_id": pa.array([b"A00000001", "张伟".encode()])})).frame
    assert frame["application_id"].tolist() == ["A00000001", "张伟"]
    path = _write(tmp_path, {"application_id": pa.array([b"A1", "张伟".encode("gbk")])})
    with pytest.raises(RefusedFile, match="column application_id is binary: it holds bytes that are not UTF-8"):
        read_table(path)


@pytest.mark.parametrize(
    "column",
    [
        pa.array([["a"], ["b"]]),
        pa.array([{"x": 1}, {"x": 2}]),
        pa.array([[("k", "v")], []], pa.map_(pa.string(), pa.string())),
    ],
)
def test_nested_types_are_refused(tmp_path, column):
    with pytest.raises(RefusedFile, match="column applicant_name is"):
        read_table(_write(tmp_path, {"applicant_name": column}))


def test_timestamps_dates_and_dictionaries_are_accepted(tmp_path):
    path = _write(
        tmp_path,
        {
            "applied_at": pa.array([dt.datetime(2025, 3, 1, 9, 30, 15, 500)], pa.timestamp("ns")),
            "label": pa.array(["good"]).dictionary_encode(),
            "term_months": pa.array([12], pa.int8()),
            "amount": pa.array([decimal.Decimal("12000.50")], pa.decimal128(12, 2)),
        },
    )
    row = read_table(path).frame.iloc[0]
    assert (row["applied_at"], row["label"], row["term_months"], row["amount"]) == (
        "2025-03-01 09:30:15",
        "good",
        "12",
        "12000.50",
    )
    aware = _write(tmp_path, {"applied_at": pa.array([0], pa.int64()).cast(pa.timestamp("s", tz="Asia/Shanghai"))})
    assert read_table(aware).frame["applied_at"].tolist() == ["1970-01-01T00:00:00Z"]
    dates = _write(tmp_path, {"applied_at": pa.array([dt.date(2025, 3, 1)])})
    assert read_table(dates).frame["applied_at"].tolist() == ["2025-03-01"]


def test_integer_applied_at_is_refused(tmp_path):
    with pytest.raises(RefusedFile, match="applied_at must be a timestamp"):
        read_table(_write(tmp_path, {"applied_at": pa.array([20250301])}))


def test_parquet_duplicate_names_after_stripping_are_refused(tmp_path):
    with pytest.raises(RefusedFile, match="duplicate column names: 'amount'"):
        read_table(_write(tmp_path, {"amount": ["1"], "amount ": ["2"]}))


def test_refused_parquet_counts_every_row_as_rejected(tmp_path, embedded_store):
    folder = tmp_path / "export"
    folder.mkdir()
    n = len(IDS)
    pq.write_table(
        pa.table(
            {
                "application_id": [f"A{i}" for i in range(n)],
                "applied_at": ["2025-01-01"] * n,
                "amount": ["1000"] * n,
                "applicant_name": ["张伟"] * n,
                "applicant_id_number": pa.array([float(x.replace("X", "0")) for x in IDS]),
                "applicant_phone": ["13800138000"] * n,
            }
        ),
        folder / "applications.parquet",
    )
    summary = ingest_folder(folder, embedded_store, rejects_path=tmp_path / "r.csv")
    report = summary.tables[0]
    assert summary.exit_code == 2
    assert (report.rows_read, report.rows_loaded, report.rows_rejected) == (n, 0, n)
    assert "applicant_id_number" in report.error
    assert summary.counts.nodes.get("Person", 0) == 0  # no ID was turned into another
    assert (tmp_path / "r.csv").exists()
    # the same IDs as text load unchanged
    pq.write_table(
        pa.table(
            {
                "application_id": ["A1"],
                "applied_at": ["2025-01-01"],
                "amount": ["1000"],
                "applicant_name": ["张伟"],
                "applicant_id_number": [P1],
                "applicant_phone": ["13800138000"],
            }
        ),
        folder / "applications.parquet",
    )
    assert ingest_folder(folder, embedded_store, rejects_path=tmp_path / "r2.csv").exit_code == 0
    assert embedded_store.node_properties("Person", [P1], ["id_number_raw"]).loc[0, "id_number_raw"] == P1
