"""A later batch never overwrites what an earlier one stored (both stores):
a changed application, contact, guarantee or share is rejected; an identical
re-delivery is a no-op; ``update=True`` corrects, with an audit event."""

from __future__ import annotations

import csv
import getpass
import json
from pathlib import Path

import pandas as pd
import pytest

from ringscope.ingest.pipeline import ingest_folder
from ringscope.ingest.stored import STORED_DIFFERENT
from tests.sample_data import APP_HEADER, APPLICATIONS, C1, C2, P1, P2, write_sample

REFUSED = f"application_id {STORED_DIFFERENT}"


def _write(folder: Path, name: str, header: list[str], rows: list[list[str]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{name}.csv", "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return folder


def _app(app_id: str, **changes: str) -> list[str]:
    """The sample's first row for ``app_id`` with some columns changed."""
    row = next(list(r) for r in APPLICATIONS if r[0] == app_id)
    for column, value in changes.items():
        row[APP_HEADER.index(column)] = value
    return row


def _reasons(summary) -> pd.DataFrame:
    if not summary.rejects_path:
        return pd.DataFrame(columns=["source_file", "line", "reason", "record"])
    return pd.read_csv(summary.rejects_path, encoding="utf-8-sig")


@pytest.fixture
def loaded(tmp_path, store):
    summary = ingest_folder(write_sample(tmp_path / "first"), store, rejects_path=tmp_path / "rejects-first.csv")
    assert summary.exit_code == 0
    return store


def test_a_changed_application_in_a_later_batch_is_rejected(tmp_path, loaded):
    store = loaded
    later = _write(
        tmp_path / "later",
        "applications",
        APP_HEADER,
        [
            _app("A1", amount="999999", applicant_name="李四", label="fraud"),
            _app("A3", application_id="A8"),  # a new application loads
            _app("A2"),  # identical re-delivery: a no-op, not a reject
        ],
    )
    summary = ingest_folder(later, store, rejects_path=tmp_path / "rejects-later.csv")
    assert summary.exit_code == 0
    rejects = _reasons(summary)
    assert rejects["reason"].tolist() == [REFUSED]
    assert json.loads(rejects["record"].iloc[0])["application_id"] == "A1"
    assert sorted(summary.application_ids) == ["A2", "A8"]  # what flag would score
    a1 = store.node_properties("Application", ["A1"], ["amount", "applicant_name", "label"]).iloc[0]
    assert (a1["amount"], a1["applicant_name"], a1["label"]) == (200000, "张伟", "good")
    assert store.counts().nodes["Application"] == 6


def test_identical_redelivery_in_another_encoding_is_a_no_op(tmp_path, loaded):
    before = loaded.counts()
    summary = ingest_folder(
        write_sample(tmp_path / "again", encoding="gb18030"), loaded, rejects_path=tmp_path / "rejects-again.csv"
    )
    assert not (_reasons(summary)["reason"].str.contains("already stored")).any()
    assert loaded.counts() == before


def test_contacts_of_a_refused_application_do_not_attach_to_the_stored_one(tmp_path, loaded):
    later = _write(tmp_path / "later", "applications", APP_HEADER, [_app("A1", amount="1")])
    _write(
        later,
        "contacts",
        ["application_id", "contact_name", "contact_phone", "relation"],
        [["A1", "新人", "13922223333", "friend"]],
    )
    summary = ingest_folder(later, loaded, rejects_path=tmp_path / "rejects-later.csv")
    reasons = _reasons(summary).set_index("source_file")["reason"]
    assert reasons["applications.csv"] == REFUSED
    assert "absent or rejected" in reasons["contacts.csv"]
    contacts = loaded.relationship_properties("Application-EMERGENCY_CONTACT-Phone", ["A1"], ["contact_name_raw"])
    assert contacts["contact_name_raw"].tolist() == ["王芳"]


def test_changed_contact_guarantee_and_share_are_rejected(tmp_path, loaded):
    later = _write(
        tmp_path / "later",
        "contacts",
        ["application_id", "contact_name", "contact_phone", "relation"],
        [
            ["A1", "王芳", "139 0013 9000", "spouse"],  # stored as friend
            ["A1", "赵七", "13955556666", "friend"],  # a new contact of a stored application: added
        ],
    )
    _write(
        later,
        "guarantees",
        ["application_id", "guarantor_type", "guarantor_name", "guarantor_id", "guarantor_phone", "amount"],
        [["A1", "company", "深圳华强电子有限公司", C2, "", "150000"]],
    )  # stored with 100000
    _write(
        later,
        "company_roles",
        ["company_uscc", "company_name", "person_name", "person_id_number", "role", "share_pct"],
        [[C1, "北京鑫达贸易有限公司", "王芳", P2, "shareholder", "60"]],
    )  # stored with 40
    summary = ingest_folder(later, loaded, rejects_path=tmp_path / "rejects-later.csv")
    reasons = _reasons(summary).set_index("source_file")["reason"].to_dict()
    assert reasons == {
        "contacts.csv": f"contact (application_id, contact_phone) {STORED_DIFFERENT}",
        "guarantees.csv": f"guarantee (application_id, guarantor_id) {STORED_DIFFERENT}",
        "company_roles.csv": f"shareholder (company_uscc, person) {STORED_DIFFERENT}",
    }
    contacts = loaded.relationship_properties("Application-EMERGENCY_CONTACT-Phone", ["A1"], ["relation"])
    assert sorted(contacts["relation"]) == ["friend", "friend"]
    guarantee = loaded.relationship_properties("Company-GUARANTEES-Company", [C2], ["amount"])
    assert guarantee.set_index("application_id").loc["A1", "amount"] == 100000
    share = loaded.relationship_properties("Person-SHAREHOLDER_OF-Company", [P2], ["share_pct"])
    assert share["share_pct"].tolist() == [40]


def test_a_shared_person_keeps_its_first_delivered_name(tmp_path, loaded):
    later = _write(
        tmp_path / "later",
        "applications",
        APP_HEADER,
        [_app("A3", application_id="A8", applicant_name="陈大文", applicant_id_number=P1)],
    )
    summary = ingest_folder(later, loaded, rejects_path=tmp_path / "rejects-later.csv")
    assert summary.application_ids == ["A8"]
    person = loaded.node_properties("Person", [P1], ["name", "name_raw"]).iloc[0]
    assert (person["name"], person["name_raw"]) == ("张伟", "張偉")
    # the application keeps what its applicant typed: the conflict stays visible
    a8 = loaded.node_properties("Application", ["A8"], ["applicant_name_raw"]).iloc[0]
    assert a8["applicant_name_raw"] == "陈大文"


def test_update_corrects_the_application_and_writes_the_audit_log(tmp_path, loaded):
    later = _write(
        tmp_path / "fix",
        "applications",
        APP_HEADER,
        [_app("A1", amount="250000", label="fraud", applicant_phone="13900001111", email="")],
    )
    _write(
        later,
        "contacts",
        ["application_id", "contact_name", "contact_phone", "relation"],
        [["A1", "王芳", "139 0013 9000", "spouse"]],
    )
    summary = ingest_folder(later, loaded, rejects_path=tmp_path / "rejects-fix.csv", update=True)
    assert summary.exit_code == 0 and summary.rows_rejected == 0
    assert summary.corrections == 2
    a1 = loaded.node_properties("Application", ["A1"], ["amount", "label", "email_raw", "applicant_phone_raw"]).iloc[0]
    assert (a1["amount"], a1["label"], a1["applicant_phone_raw"]) == (250000, "fraud", "13900001111")
    assert pd.isna(a1["email_raw"])  # a removed value is removed
    phones = loaded.relationship_properties("Application-HAS_PHONE-Phone", ["A1"], [])
    assert phones["dst"].tolist() == ["+8613900001111"]  # the old phone edge went with the old row
    emails = loaded.relationship_properties("Application-HAS_EMAIL-Email", ["A1"], [])
    assert emails.empty
    contact = loaded.relationship_properties("Application-EMERGENCY_CONTACT-Phone", ["A1"], ["relation"])
    assert contact["relation"].tolist() == ["spouse"]

    events = loaded.read_nodes("AuditEvent").set_index("target")
    app_event = events.loc["Application:A1"]
    assert app_event["action"] == "ingest.update"
    assert app_event["user"] == getpass.getuser()
    assert app_event["source"] == f"{(tmp_path / 'fix' / 'applications.csv').resolve()}:2"
    before, after = json.loads(app_event["before"]), json.loads(app_event["after"])
    assert before["amount"] == 200000 and after["amount"] == 250000
    assert before["label"] == "good" and after["label"] == "fraud"
    assert before["email_raw"] == "Wei@Example.com" and after["email_raw"] is None
    assert "applicant_name" not in after  # only what changed
    contact_event = events.drop(index="Application:A1").iloc[0]
    assert json.loads(contact_event["before"]) == {"relation": "friend"}
    assert json.loads(contact_event["after"]) == {"relation": "spouse"}

    # the same correction again changes nothing and logs nothing
    again = ingest_folder(later, loaded, rejects_path=tmp_path / "rejects-again.csv", update=True)
    assert again.corrections == 0
    assert len(loaded.read_nodes("AuditEvent")) == 2


def test_without_update_the_cli_rejects_and_with_it_corrects(tmp_path, embedded_store):
    from click.testing import CliRunner

    from ringscope.app.cli import cli

    ingest_folder(write_sample(tmp_path / "first"), embedded_store, rejects_path=tmp_path / "r1.csv")
    later = _write(tmp_path / "later", "applications", APP_HEADER, [_app("A3", amount="31000", label="good")])
    args = ["ingest", str(later), "--store", embedded_store.location, "--quiet", "--rejects", str(tmp_path / "r2.csv")]
    refused = CliRunner().invoke(cli, args)
    assert refused.exit_code == 1, refused.output  # nothing loaded
    assert "use --update to correct" in refused.output
    fixed = CliRunner().invoke(cli, [*args, "--update"])
    assert fixed.exit_code == 0, fixed.output
    assert "corrected 1 stored rows" in fixed.output
    a3 = embedded_store.node_properties("Application", ["A3"], ["amount", "label"]).iloc[0]
    assert (a3["amount"], a3["label"]) == (31000, "good")


def test_a_grown_folder_ingested_again_changes_nothing(tmp_path, store):
    """A folder delivered, delivered again with one application more, then a
    third time: its applications are stored in two writes (two row groups of
    the embedded store), and looking them up used to fail ("Iterable should
    contain Array objects") instead of finding nothing new."""
    from tests.detectors.builder import ExportBuilder

    export = ExportBuilder()
    for i in range(2):
        export.app(f"A{i}")
    ingest_folder(export.write(tmp_path / "one"), store, rejects_path=tmp_path / "rejects.csv")
    export.app("A2")
    grown = export.write(tmp_path / "two")
    assert ingest_folder(grown, store, rejects_path=tmp_path / "rejects.csv").application_ids == ["A0", "A1", "A2"]
    revision = store.revision()
    again = ingest_folder(grown, store, rejects_path=tmp_path / "rejects.csv")
    assert again.application_ids == ["A0", "A1", "A2"] and again.rows_rejected == 0
    assert store.revision() == revision
