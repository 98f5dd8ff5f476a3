"""Dashboard services on both stores: queue, cluster, path, search, cases and
the audit log, case labels; masking and local users."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from ringscope.app.dashboard import auth, cases, masking, services
from tests.app.browser.store_fixture import RING_A, RING_B, build_dashboard_store


@pytest.fixture
def loaded(store, tmp_path):
    build_dashboard_store(store, tmp_path / "export")
    return store


def test_queue_cluster_path_on_both_stores(loaded):
    table = services.findings_table(loaded)
    assert table["finding"].tolist() == ["rings-aaaa", "rings-bbbb"]
    assert table["agent"].tolist() == ["AG-7", "AG-9"]
    assert str(table["first_applied"].iloc[0].date()) == "2025-03-01"
    index = services.build_index(loaded)
    members = services.finding_members(loaded)
    view = services.cluster_subgraph(loaded, index, members, "rings-bbbb")
    apps = sorted(n.split(":", 1)[1] for n, r in view.nodes.items() if r == "member")
    assert apps == RING_B
    assert any(r == "shared" and n.startswith("BankAccount:") for n, r in view.nodes.items())
    assert set(view.edges["type"]) >= {"APPLIED", "HAS_ACCOUNT", "HAS_ADDRESS"}
    path = services.shortest_path(index, "Application:RA00", "Application:RA05")
    assert path == ["Application:RA00", "Device:farm-device-1", "Application:RA05"]
    assert services.shortest_path(index, "Application:RA00", "Application:RB00") is None
    detail = services.application_detail(loaded, index, table, members, "RP02")
    assert detail.history["application_id"].tolist() == ["RP01"] and detail.score is None
    scored = services.application_detail(loaded, index, table, members, "RA01")
    assert scored.score == pytest.approx(0.83) and scored.reasons[0]["code"] == "RING_MEMBER"
    assert services.data_version(loaded)


def test_cases_and_audit_on_both_stores(loaded):
    assert cases.get_case(loaded, "Finding", "rings-aaaa").status == "Open"
    with pytest.raises(cases.CaseError, match="cannot go from Open to Confirmed fraud"):
        cases.update_case(loaded, "ivy", "Finding", "rings-aaaa", status="Confirmed fraud", comment="x")
    cases.update_case(loaded, "ivy", "Finding", "rings-aaaa", status="In progress", assignee="ivy")
    cases.update_case(loaded, "ivy", "Finding", "rings-aaaa", status="Confirmed fraud", comment="device farm")
    cases.update_case(loaded, "ivy", "Application", "RB00", status="Dismissed", comment="known customer")
    cases.update_case(loaded, "ivy", "Application", "RA00", status="Dismissed", comment="looked fine")
    log = cases.audit_log(loaded)
    assert len(log) == 4 and set(log["user"]) == {"ivy"}
    first = log.sort_values("at").iloc[0]
    assert first["action"] == "case.status" and json.loads(first["after"])["status"] == "In progress"
    assert first["before"] == ""  # no case before
    second = log.sort_values("at").iloc[1]
    assert json.loads(second["before"])["status"] == "In progress"
    labels = cases.case_labels(loaded).set_index("application_id")["label"]
    assert all(labels[a] == "fraud" for a in RING_A)  # confirmed on the finding wins over RA00's dismissal
    assert labels["RB00"] == "good" and len(labels) == 7
    assert cases.case_statuses(loaded)["rings-aaaa"] == "Confirmed fraud"


def test_case_labels_agree_with_the_training_labels(loaded):
    from ringscope.detectors.risk.training import CASE_VERDICTS

    assert cases.VERDICT_LABELS == CASE_VERDICTS


def test_search_index_on_both_stores(loaded):
    idx = services.build_search_index(loaded)
    assert sorted(services.search(idx, "zhaomin").rows["application_id"]) == ["RP01", "RP02"]
    assert {"RP01", "RP02"} <= set(services.search(idx, "zm", field="name").rows["application_id"])
    account = "6222000011112222333"
    assert sorted(services.search(idx, account).rows["application_id"]) == RING_B
    assert sorted(services.search(idx, account[:-1] + "4").rows["application_id"]) == RING_B  # a typo
    assert services.search(idx, "").rows["application_id"].tolist() == []
    # the scored application carries its score and decision on both stores
    hit = services.search(idx, "RA01").rows.iloc[0]
    assert hit["application_id"] == "RA01" and hit["risk_score"] == 0.83 and hit["risk_decision"] == "decline"


def test_the_view_is_capped_and_says_so(loaded):
    index = services.build_index(loaded)
    members = services.finding_members(loaded)
    view = services.cluster_subgraph(loaded, index, members, "rings-aaaa", max_elements=12)
    assert view.elements <= 12 and view.truncated > 0
    assert any("capped" in n for n in view.notes)
    assert all(r == "member" for r in view.nodes.values())  # members are kept first


@pytest.mark.parametrize(
    "value, kind, expected",
    [
        ("110101199003071234", "id", "110101********1234"),
        ("11010119900307123X", "id", "110101********123X"),
        ("+8613800138000", "phone", "138****8000"),
        ("13800138000", "phone", "138****8000"),
        ("6222629455702932303", "account", "6222***********2303"),
        ("jpqsp476@126.com", "email", "jp***@126.com"),
    ],
)
def test_masking(value, kind, expected):
    assert masking.mask_value(kind, value) == expected


def test_mask_text_keeps_company_codes_and_masks_people():
    text = "guarantee cycle 92120104MA3D80R18B → 91150221MA6UR3A12U; phone +86 138-0013-8000; id 110101199003071234"
    out = masking.mask_text(text)
    assert "92120104MA3D80R18B" in out and "91150221MA6UR3A12U" in out
    assert "138****8000" in out and "110101********1234" in out


def test_local_users_are_hashed_and_verified(tmp_path):
    path = tmp_path / "users.json"
    auth.add_user(path, "ana", "s3cret-pass", "analyst")
    raw = path.read_text()
    assert "s3cret-pass" not in raw and json.loads(raw)["users"]["ana"]["algo"] == "scrypt"
    assert auth.verify(path, "ana", "s3cret-pass") == auth.User("ana", "analyst")
    assert auth.verify(path, "ana", "wrong") is None
    assert auth.verify(path, "nobody", "s3cret-pass") is None
    with pytest.raises(ValueError, match="role"):
        auth.add_user(path, "x", "long enough", "superuser")
    with pytest.raises(ValueError, match="8 characters"):
        auth.add_user(path, "x", "short", "admin")
    # same password, different salt
    auth.add_user(path, "bob", "s3cret-pass", "investigator")
    users = auth.load_users(path)
    assert users["ana"]["hash"] != users["bob"]["hash"]


def test_queue_filters_and_volume():
    table = pd.DataFrame(
        {
            "finding": ["a", "b", "c"],
            "detector": ["x", "y", "x"],
            "size": [3, 9, 4],
            "score": [0.9, 0.5, 0.2],
            "first_applied": pd.to_datetime(["2025-01-01", "2025-02-01", None], utc=True),
            "agent": [None, "G1", "G1"],
        }
    )
    statuses = pd.Series({"b": "In progress"})
    assert services.filter_queue(table, statuses, status=["Open"])["finding"].tolist() == ["a", "c"]
    assert services.filter_queue(table, statuses, detectors=["x"], min_score=0.5)["finding"].tolist() == ["a"]
    assert services.filter_queue(table, None, agent="G1")["finding"].tolist() == ["b", "c"]
    assert services.filter_queue(table, None, date_from="2025-01-15", date_to="2025-02-01")["finding"].tolist() == ["b"]
    assert services.volume_by_week(table)["findings"].sum() == 2


def test_saving_a_case_keeps_the_cached_data_version(embedded_store, tmp_path):
    build_dashboard_store(embedded_store, tmp_path / "export")
    before = services.data_version(embedded_store)
    cases.update_case(embedded_store, "ivy", "Finding", "rings-aaaa", status="In progress")
    assert services.data_version(embedded_store) == before


@pytest.mark.parametrize(
    "address, shown",
    [
        ("广东省深圳市南山区科技园1号1栋1单元101室", "广东省深圳市****"),
        ("上海市浦东新区世纪大道100号", "上海市****"),
        ("内蒙古自治区呼和浩特市新城区1号", "内蒙古自治区呼和浩特市****"),
        ("四川省凉山彝族自治州西昌市1号", "四川省凉山彝族自治州****"),
        ("深圳市南山区科技园1号", "深圳市****"),
        ("广东省", "广东省"),
        ("科技园1号", "科技****"),
    ],
)
def test_addresses_keep_province_and_city_only(address, shown):
    assert masking.mask_address(address) == shown
    assert masking.mask_value("address", address) == shown


def test_fields_computed_from_a_masked_id_are_masked_with_it():
    person = {
        "key": "110101199003071234",
        "birth_date": "1990-03-07",
        "region_code": "110101",
        "gender": "M",
        "name": "张伟",
        "id_checksum_ok": True,
    }
    shown = masking.mask_record("Person", person)
    assert shown["key"] == "110101********1234"
    assert "19900307" not in json.dumps(shown) and "1990-03-07" not in json.dumps(shown)
    assert set(shown["gender"]) == {"*"} and set(shown["region_code"]) == {"*"}
    assert shown["name"] == "张伟" and shown["id_checksum_ok"] is True
    assert masking.mask_record("Person", person, revealed=True) == person  # an audited reveal shows all
    app = masking.mask_record(
        "Application",
        {
            "applicant_address_raw": "北京市朝阳区建国路88号",
            "company_address_raw": "广东省广州市天河区1号",
            "summary": "phone 13800138000",
        },
    )
    assert app == {
        "applicant_address_raw": "北京市****",
        "company_address_raw": "广东省广州市****",
        "summary": "phone 138****8000",
    }


def test_a_comment_without_a_new_status_is_a_note_and_keeps_the_reason(embedded_store, tmp_path):
    build_dashboard_store(embedded_store, tmp_path / "export")
    cases.update_case(embedded_store, "ivy", "Finding", "rings-aaaa", status="In progress")
    cases.update_case(embedded_store, "ivy", "Finding", "rings-aaaa", status="Confirmed fraud", comment="device farm")
    after = cases.update_case(embedded_store, "ivy", "Finding", "rings-aaaa", comment="called the branch")
    assert (after.status, after.comment) == ("Confirmed fraud", "device farm")
    after = cases.update_case(
        embedded_store, "ivy", "Finding", "rings-aaaa", status="Confirmed fraud", comment="again"
    )  # the same status: not a move, a note
    assert (after.status, after.comment) == ("Confirmed fraud", "device farm")
    cases.add_note(embedded_store, "ana", "Finding", "rings-aaaa", "third")
    notes = cases.case_notes(embedded_store, "Finding", "rings-aaaa")
    assert notes["note"].tolist() == ["called the branch", "again", "third"]
    assert notes["user"].tolist() == ["ivy", "ivy", "ana"]
    with pytest.raises(cases.CaseError, match="empty"):
        cases.add_note(embedded_store, "ivy", "Finding", "rings-aaaa", "   ")
    assert set(cases.case_labels(embedded_store)["label"]) == {"fraud"}
