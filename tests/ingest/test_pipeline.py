"""Ingest of the data contract into both stores."""

from __future__ import annotations

import csv
import re

import pandas as pd
import pytest

from ringscope.ingest.pipeline import ingest_folder
from tests.sample_data import INJECTION_NAME, P1, P4, SAMPLE_EXPECTED, write_sample


def _ingest(tmp_path, store, encoding="utf-8", name="export"):
    folder = write_sample(tmp_path / name, encoding=encoding)
    return ingest_folder(folder, store, rejects_path=tmp_path / f"rejects-{name}.csv")


def test_sample_loads_good_rows_and_rejects_bad_ones(tmp_path, store):
    summary = _ingest(tmp_path, store)
    by_table = {t.table: t for t in summary.tables}
    assert {t: r.rows_loaded for t, r in by_table.items()} == SAMPLE_EXPECTED["loaded"]
    assert {t: r.rows_rejected for t, r in by_table.items()} == SAMPLE_EXPECTED["rejected"]
    assert summary.exit_code == 0
    counts = summary.counts
    for label, n in SAMPLE_EXPECTED["nodes"].items():
        assert counts.nodes[label] == n, label
    for rtype, n in SAMPLE_EXPECTED["relationships"].items():
        assert counts.relationships[rtype] == n, rtype


def test_rejects_file_names_file_line_and_reason(tmp_path, embedded_store):
    summary = _ingest(tmp_path, embedded_store)
    rejects = pd.read_csv(summary.rejects_path, encoding="utf-8-sig")
    assert list(rejects.columns) == ["source_file", "line", "reason", "record"]
    assert len(rejects) == sum(SAMPLE_EXPECTED["rejected"].values())
    apps = rejects[rejects["source_file"] == "applications.csv"].set_index("line")["reason"].to_dict()
    # line 1 is the header: the 6th data row (A1 again, different content) is line 7
    assert "duplicate application_id" in apps[7]
    assert apps[8] == "missing required value: amount"
    assert apps[9] == "unparseable applied_at"
    contacts = rejects[rejects["source_file"] == "contacts.csv"]["reason"].tolist()
    assert "application_id not found among loaded applications (absent or rejected)" in contacts
    # the rejected record keeps every raw value
    assert "钱七" in rejects.loc[rejects["line"] == 9, "record"].iloc[0]


def test_ingesting_twice_changes_no_count(tmp_path, store):
    first = _ingest(tmp_path, store).counts
    second = _ingest(tmp_path, store).counts
    assert first == second
    assert first.total_nodes > 0


def test_a_dry_run_reports_the_ingest_and_writes_nothing(tmp_path, store):
    """A dry run reports (and writes the rejects) as the ingest would, but the
    store keeps its revision and counts; after the real ingest, a dry run
    reports what ingesting the folder again reports."""
    before, counts = store.revision(), store.counts()
    folder = write_sample(tmp_path / "export")
    dry = ingest_folder(folder, store, rejects_path=tmp_path / "dry.csv", dry_run=True)
    assert store.revision() == before and store.counts() == counts
    real = ingest_folder(folder, store, rejects_path=tmp_path / "real.csv")
    assert store.revision() != before
    assert dry.application_ids == real.application_ids and dry.reject_reasons == real.reject_reasons
    assert [(t.rows_loaded, t.rows_rejected) for t in dry.tables] == [
        (t.rows_loaded, t.rows_rejected) for t in real.tables
    ]
    assert (tmp_path / "dry.csv").read_bytes() == (tmp_path / "real.csv").read_bytes()
    after = store.revision()
    dry = ingest_folder(folder, store, rejects_path=tmp_path / "dry.csv", dry_run=True)
    again = ingest_folder(folder, store, rejects_path=tmp_path / "again.csv")
    assert store.revision() == after
    assert dry.tables == again.tables and dry.counts == again.counts and dry.reject_reasons == again.reject_reasons
    assert (tmp_path / "dry.csv").read_bytes() == (tmp_path / "again.csv").read_bytes()
    with pytest.raises(ValueError, match="dry run"):
        ingest_folder(folder, store, dry_run=True, update=True)


def test_both_stores_give_the_same_counts(tmp_path, embedded_store, neo4j_store):
    pytest.importorskip("neo4j")
    a = _ingest(tmp_path, embedded_store).counts
    b = _ingest(tmp_path, neo4j_store).counts
    assert a == b


test_both_stores_give_the_same_counts = pytest.mark.neo4j(test_both_stores_give_the_same_counts)


@pytest.mark.parametrize("encoding", ["utf-8-sig", "gbk", "gb18030"])
def test_chinese_encodings_are_detected(tmp_path, embedded_store, encoding):
    reference = _ingest(tmp_path, embedded_store, name="utf8").counts
    other_store = type(embedded_store)(tmp_path / f"store-{encoding}")
    summary = _ingest(tmp_path, other_store, encoding=encoding, name=encoding)
    assert summary.counts == reference
    expected = "utf-8-sig" if encoding == "utf-8-sig" else "gb18030"
    assert {t.encoding for t in summary.tables} == {expected}
    people = other_store.read_nodes("Person")
    assert "张伟" in set(people["name"])  # traditional 張偉 decoded and simplified


def test_parquet_input_gives_the_same_graph(tmp_path, embedded_store):
    reference = _ingest(tmp_path, embedded_store, name="csv").counts
    csv_folder = tmp_path / "csv"
    pq_folder = tmp_path / "pq"
    pq_folder.mkdir()
    for file in csv_folder.glob("*.csv"):
        pd.read_csv(file, dtype=str, keep_default_na=False).replace("", None).to_parquet(
            pq_folder / f"{file.stem}.parquet"
        )
    other = type(embedded_store)(tmp_path / "store-pq")
    summary = ingest_folder(pq_folder, other, rejects_path=tmp_path / "rej-pq.csv")
    assert summary.counts == reference
    assert {t.encoding for t in summary.tables} == {"parquet"}


def test_injection_is_stored_as_data(tmp_path, store):
    summary = _ingest(tmp_path, store)
    props = store.node_properties("Application", ["A4"], ["applicant_name_raw", "amount"])
    assert props.loc[0, "applicant_name_raw"] == INJECTION_NAME
    assert props.loc[0, "amount"] == 12000  # '1.2万'
    assert summary.counts.nodes["Application"] == SAMPLE_EXPECTED["nodes"]["Application"]


def test_identifiers_are_normalised_and_raw_kept(tmp_path, store):
    _ingest(tmp_path, store)
    a2 = store.node_properties("Application", ["A2"], ["applicant_phone_raw", "borrower_label", "borrower_key"])
    assert a2.loc[0, "applicant_phone_raw"] == "１３９００１３９０００"
    assert a2.loc[0, "borrower_label"] == "Company"
    phones = store.node_properties("Phone", ["+8613900139000", "+8613800138000"], ["valid"])
    assert len(phones) == 2
    person = store.node_properties("Person", [P1], ["name", "id_checksum_ok", "region_code", "gender"])
    assert person.loc[0, "name"] == "张伟"
    assert bool(person.loc[0, "id_checksum_ok"]) is True
    assert person.loc[0, "region_code"] == "110101"


def test_broken_checksum_is_loaded_and_flagged(tmp_path, store):
    _ingest(tmp_path, store)
    a7 = store.node_properties("Application", ["A7"], ["id_checksum_ok", "applicant_id_number_raw"])
    assert len(a7) == 1
    assert bool(a7.loc[0, "id_checksum_ok"]) is False
    assert a7.loc[0, "applicant_id_number_raw"][:-1] == P4[:-1]


def test_unreadable_and_empty_inputs_exit_non_zero(tmp_path, embedded_store):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert ingest_folder(empty, embedded_store).exit_code == 2
    binary = tmp_path / "binary"
    binary.mkdir()
    (binary / "applications.csv").write_bytes(b"\x00\x01\x02garbage\x00" * 100)
    summary = ingest_folder(binary, embedded_store, rejects_path=tmp_path / "r.csv")
    assert summary.exit_code == 2 and "binary" in summary.tables[0].error
    all_bad = tmp_path / "all_bad"
    all_bad.mkdir()
    with open(all_bad / "applications.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(
            ["application_id", "applied_at", "amount", "applicant_name", "applicant_id_number", "applicant_phone"]
        )
        w.writerow(["X1", "2025-01-01", "-5", "某", P1, "13800138000"])
    summary = ingest_folder(all_bad, embedded_store, rejects_path=tmp_path / "r2.csv")
    assert summary.exit_code == 1
    assert summary.rows_rejected == 1


def test_missing_required_column_is_a_clear_error(tmp_path, embedded_store):
    folder = tmp_path / "nocol"
    folder.mkdir()
    (folder / "applications.csv").write_text("application_id,amount\nA1,100\n", encoding="utf-8")
    summary = ingest_folder(folder, embedded_store, rejects_path=tmp_path / "r.csv")
    assert summary.exit_code == 2
    assert "missing required columns" in summary.tables[0].error
    assert "applied_at" in summary.tables[0].error


def test_malformed_csv_row_is_rejected_with_its_line(tmp_path, embedded_store):
    folder = write_sample(tmp_path / "ragged")
    path = folder / "contacts.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines.insert(2, "A1,too,many,fields,here")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    summary = ingest_folder(folder, embedded_store, rejects_path=tmp_path / "r.csv")
    rejects = pd.read_csv(tmp_path / "r.csv", encoding="utf-8-sig")
    row = rejects[(rejects["source_file"] == "contacts.csv") & (rejects["line"] == 3)]
    assert "malformed CSV row" in row["reason"].iloc[0]
    contacts = {t.table: t for t in summary.tables}["contacts"]
    assert contacts.rows_loaded == SAMPLE_EXPECTED["loaded"]["contacts"]


def _generated(tmp_path, n=600, seed=3):
    from ringscope.ingest.synthetic import GeneratorConfig, generate_portfolio

    folder = tmp_path / "gen"
    generate_portfolio(GeneratorConfig(applications=n, seed=seed, broken_row_rate=0.0), folder)
    return folder


def _unquoted(path):
    """Rewrite a generated CSV with minimal quoting (as most exporters write)."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.to_csv(path, index=False, quoting=csv.QUOTE_MINIMAL)
    return frame


def test_a_stray_quote_loses_one_row_not_the_file(tmp_path, embedded_store):
    folder = _generated(tmp_path)
    path = folder / "applications.csv"
    frame = _unquoted(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[100] = lines[100].replace(",", ',"', 1)  # a quote at the start of the second field
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    summary = ingest_folder(folder, embedded_store, rejects_path=tmp_path / "r.csv")
    apps = {t.table: t for t in summary.tables}["applications"]
    assert (apps.rows_read, apps.rows_loaded, apps.rows_rejected) == (len(frame), len(frame) - 1, 1)
    assert apps.lines_read == len(frame) and apps.lines_unaccounted == 0 and not apps.error
    assert summary.exit_code == 0
    rejects = pd.read_csv(tmp_path / "r.csv", encoding="utf-8-sig")
    assert rejects.loc[rejects["source_file"] == "applications.csv", "line"].tolist() == [101]
    assert embedded_store.counts().nodes["Application"] == len(frame) - 1


def test_duplicate_header_is_refused_with_a_rejects_file_and_no_traceback(tmp_path):
    from click.testing import CliRunner

    from ringscope.app.cli import cli

    folder = _generated(tmp_path)
    path = folder / "applications.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    n = len(lines) - 1
    lines[0] = lines[0].replace('"applicant_address"', '"applicant_name "')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = CliRunner().invoke(
        cli, ["ingest", str(folder), "--store", str(tmp_path / "s"), "--quiet", "--rejects", str(tmp_path / "r.csv")]
    )
    assert result.exit_code == 2
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "duplicate column names: 'applicant_name' (columns 4 and 7)" in result.output
    rejects = pd.read_csv(tmp_path / "r.csv", encoding="utf-8-sig")
    assert "duplicate column names" in rejects.loc[rejects["source_file"] == "applications.csv", "reason"].iloc[0]
    assert re.search(rf"applications\s+utf-8\s+{n}\s+0\s+{n}\n", result.output)  # read, loaded, rejected


def test_lines_the_reader_cannot_account_for_make_the_table_an_error(tmp_path, embedded_store, monkeypatch):
    from ringscope.ingest import pipeline  # (ringscope.ingest, the attribute, is the API function)

    folder = _generated(tmp_path, n=100)
    real = pipeline.read_table

    def losing(path):
        result = real(path)
        result.lines += 3  # as if three physical lines had vanished in the parser
        return result

    monkeypatch.setattr(pipeline, "read_table", losing)
    summary = ingest_folder(folder, embedded_store, rejects_path=tmp_path / "r.csv")
    assert summary.exit_code == 2
    assert all(t.lines_unaccounted == 3 and "in no row and no reject" in t.error for t in summary.tables)
    assert summary.rows_loaded == 0


def test_a_file_level_reject_keeps_line_numbers_whole(tmp_path, embedded_store):
    folder = write_sample(tmp_path / "export")
    (folder / "contacts.csv").write_bytes(b"\x00\x01binary\x00" * 10)
    summary = ingest_folder(folder, embedded_store, rejects_path=tmp_path / "r.csv")
    assert summary.exit_code == 2
    text = (tmp_path / "r.csv").read_text(encoding="utf-8-sig")
    assert "applications.csv,7," in text and ".0," not in text
    assert "contacts.csv,,contacts.csv: binary data" in text.replace('"', "")
