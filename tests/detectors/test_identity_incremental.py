"""Identity resolution around a nightly batch finds what a full run finds.

A hand-built book is ingested and detected, then a batch arrives holding the
cases the issue names: a stored ID number under another name, a near-miss ID
of a stored person (who was already linked to a third record through keys the
new one does not share), a near-miss whose records each have a namesake born
the same day, a near-miss of a guarantor who never applied, and a stored
person back within days with a phone another stored person gave.
``detect_around`` the batch must give each of them its finding, equal to a
full run's, and hand the later detectors the full run's entity ids.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
import pytest

from ringscope.detectors.identity import IdentityResolution
from ringscope.detectors.incremental import detect_around
from ringscope.detectors.portfolio import Portfolio
from ringscope.detectors.runner import run_detectors, save_findings
from ringscope.graph.embedded import EmbeddedStore
from tests.detectors.builder import ExportBuilder, person_id
from tests.sample_data import make_id

LATER = datetime(2025, 3, 1, 9, 0)


def _typo(good: str, position: int) -> str:
    """``good`` with the digit at ``position`` changed: a near-miss that fails its checksum."""
    digit = str((int(good[position]) + 1) % 10)
    return good[:position] + digit + good[position + 1 :]


#: one person, 陈国强, typed three ways over time
CHEN = make_id("330106", "19850417", "031")
CHEN_TYPO_DOB = _typo(CHEN, 13)  # a birth-date digit: another region+birth key, another name+birth key
CHEN_TYPO_SEQ = _typo(CHEN, 15)  # a sequence digit: same region+birth key
#: 刘志刚, and a record of him under 刘志康 with a near-miss ID; each name with its
#: birth date is also a stranger's (common names, one birthday)
LIU = make_id("420102", "19791108", "052")
LIU_NEAR_MISS = _typo(LIU, 16)
LIU_NAMESAKE, KANG_NAMESAKE = make_id("510104", "19791108", "117"), make_id("320102", "19791108", "233")
#: a stored guarantor (a person without applications), then an applicant under a near-miss of his ID
GUARANTOR = make_id("370102", "19720915", "064")
SHARED_ID = person_id(801)  # stored under 周杰明, comes back under 林晓燕
CYCLING = person_id(802)  # 孙立新: back within days with a phone another person gave


def _history(b: ExportBuilder) -> dict[str, str]:
    ids = {}
    for _ in range(40):
        b.app()
    ids["shared_id"] = b.app(applicant_name="周杰明", applicant_id_number=SHARED_ID)["application_id"]
    # 陈国强 and a record of him with a one-character name typo and a birth-date
    # typo in the ID: linked through the phone and the address they share
    ids["chen"] = b.app(
        applicant_name="陈国强",
        applicant_id_number=CHEN,
        applicant_phone="13566660001",
        applicant_address="浙江省杭州市西湖区文三路77号5栋2单元301室",
    )["application_id"]
    ids["chen_far"] = b.app(
        applicant_name="陈国弘",
        applicant_id_number=CHEN_TYPO_DOB,
        applicant_phone="13566660001",
        applicant_address="浙江省杭州市西湖区文三路77号5栋2单元301室",
    )["application_id"]
    ids["cycling"] = b.app(
        applicant_name="孙立新",
        applicant_id_number=CYCLING,
        applicant_phone="13655550001",
        applied_at=LATER - timedelta(days=10),
    )["application_id"]
    ids["phone_owner"] = b.app(applicant_phone="13655550002")["application_id"]
    ids["liu"] = b.app(
        applicant_name="刘志刚",
        applicant_id_number=LIU,
        applicant_phone="13577770001",
        applicant_address="湖北省武汉市江岸区解放大道18号2栋801室",
    )["application_id"]
    ids["liu_namesake"] = b.app(applicant_name="刘志刚", applicant_id_number=LIU_NAMESAKE)["application_id"]
    ids["kang_namesake"] = b.app(applicant_name="刘志康", applicant_id_number=KANG_NAMESAKE)["application_id"]
    for _ in range(20):
        b.app()
    b.guarantee(ids["phone_owner"], "person", "吴海峰", GUARANTOR, guarantor_phone="13588880001")
    return ids


def _batch(b: ExportBuilder) -> dict[str, str]:
    ids = {}
    for _ in range(5):
        b.app()
    ids["shared_id"] = b.app(applicant_name="林晓燕", applicant_id_number=SHARED_ID)["application_id"]
    # the near-miss: same name and birth date, another phone and address
    ids["chen"] = b.app(applicant_name="陈国强", applicant_id_number=CHEN_TYPO_SEQ)["application_id"]
    ids["cycling"] = b.app(applicant_name="孙立新", applicant_id_number=CYCLING, applicant_phone="13655550002")[
        "application_id"
    ]
    ids["liu"] = b.app(
        applicant_name="刘志康",
        applicant_id_number=LIU_NEAR_MISS,
        applicant_phone="13577770001",
        applicant_address="湖北省武汉市江岸区解放大道18号2栋801室",
    )["application_id"]
    ids["guarantor"] = b.app(
        applicant_name="吴海峰", applicant_id_number=_typo(GUARANTOR, 15), applicant_phone="13588880001"
    )["application_id"]
    return ids


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("identity-night")
    store = EmbeddedStore(tmp / "store")
    history, batch = ExportBuilder(), ExportBuilder(start=LATER, first_index=1000)
    old = _history(history)
    new = _batch(batch)
    history.load(store, tmp / "history")
    save_findings(store, run_detectors(store, names=["identity"]))
    stale = IdentityResolution().statistics(Portfolio(store))
    loaded = batch.load(store, tmp / "batch")
    new_ids = sorted(map(str, loaded.application_ids))
    full_portfolio = Portfolio(store)
    full = run_detectors(full_portfolio, names=["identity"])
    around_portfolio = Portfolio(store)
    around = detect_around(around_portfolio, new_ids, names=["identity"])
    return dict(
        old=old,
        new=new,
        new_ids=new_ids,
        full=full,
        full_portfolio=full_portfolio,
        around=around,
        around_portfolio=around_portfolio,
        store=store,
        stale=stale,
    )


def _holding(findings, ids) -> dict[tuple, object]:
    return {(f.kind, f.members): f for f in findings if set(f.members) & set(ids)}


def test_batch_findings_equal_a_full_run(night):
    assert not night["around"].errors, night["around"].errors
    expected = _holding(night["full"].findings, night["new_ids"])
    got = _holding(night["around"].findings, night["new_ids"])
    assert sorted(got) == sorted(expected)
    for key, finding in expected.items():
        assert got[key].score == pytest.approx(finding.score, abs=1e-12)
        assert got[key].evidence == finding.evidence and got[key].entities == finding.entities


def test_one_detection_scans_instead_of_keeping_row_maps_and_finds_the_same(night, monkeypatch):
    """``flag``'s one detection (``keep_derived`` off) looks the scope's
    records, entities and name + birth dates up by scans: no row map over
    the statistics is built, and the findings and pairs are the kept maps'."""
    from ringscope.detectors import identity

    def no_map(*args, **kwargs):
        raise AssertionError("a row map over the whole book's statistics was built")

    monkeypatch.setattr(identity, "rows_by_value", no_map)
    lean = Portfolio(night["store"])
    lean.keep_derived = False
    statistics: dict = {}
    run = detect_around(lean, night["new_ids"], names=["identity"], statistics=statistics)
    assert not run.errors, run.errors
    assert statistics["identity"].lookups == {}
    assert [(f.kind, f.members, f.score, f.evidence) for f in run.findings] == [
        (f.kind, f.members, f.score, f.evidence) for f in night["around"].findings
    ]
    assert night["around_portfolio"].similar_pairs.keys() == lean.similar_pairs.keys()
    for rel, pairs in lean.similar_pairs.items():
        pd.testing.assert_frame_equal(pairs, night["around_portfolio"].similar_pairs[rel])


def test_the_scope_is_a_small_part_of_the_book(night):
    assert night["around"].scope_sizes["identity"] < len(Portfolio(night["store"]).applications) / 4


def test_a_stored_id_under_another_name(night):
    old, new = night["old"], night["new"]
    (f,) = [f for f in night["around"].findings if f.kind == "id_multiple_names"]
    assert f.members == tuple(sorted([old["shared_id"], new["shared_id"]]))
    assert set({e.feature: e for e in f.evidence}["id_multiple_names"].values) == {"周杰明", "林晓燕"}


def test_a_near_miss_id_joins_the_stored_person_and_the_record_linked_to_him(night):
    old, new = night["old"], night["new"]
    kinds = {f.kind: f for f in night["around"].findings if new["chen"] in f.members}
    assert {"name_dob_multi_id", "fuzzy_duplicate", "id_checksum_failed"} <= set(kinds)
    # 陈国弘 shares no blocking key with the new record: only his link to 陈国强 brings him in
    assert kinds["fuzzy_duplicate"].members == tuple(sorted([old["chen"], old["chen_far"], new["chen"]]))
    assert kinds["name_dob_multi_id"].members == tuple(sorted([old["chen"], new["chen"]]))


def test_whether_a_fuzzy_duplicate_is_reported_depends_on_namesakes_outside_its_blocks(night):
    # 刘志康 (new) is 刘志刚 (stored); a full run leaves the fuzzy duplicate out because
    # each of the two records shares its name and birth date with another record
    # (the stranger 刘志刚 shares no blocking key with the new record)
    new = night["new"]
    entity = night["around_portfolio"].person_entity
    assert entity[LIU] == entity[LIU_NEAR_MISS] != entity.get(LIU_NAMESAKE, LIU_NAMESAKE)
    for run in (night["full"], night["around"]):
        assert [f.kind for f in run.findings if new["liu"] in f.members] == ["id_checksum_failed"]


def test_a_near_miss_of_a_stored_guarantor_who_never_applied(night):
    new = night["new"]
    (f,) = [f for f in night["around"].findings if f.kind == "name_dob_multi_id" and new["guarantor"] in f.members]
    # the guarantor's record has no application in the scope: it is held as a record of its own
    assert f.members == (new["guarantor"],) and ("Person", GUARANTOR) in f.entities


def test_a_phone_given_by_another_stored_person_counts(night):
    old, new = night["old"], night["new"]
    (f,) = [f for f in night["around"].findings if f.kind == "id_multiple_phones"]
    assert f.members == tuple(sorted([old["cycling"], new["cycling"]]))
    # the other person's application is outside the scope: the whole book's phone users say so
    assert "phone_used_by_others" in {e.feature for e in f.evidence}


def test_later_detectors_get_the_full_runs_entities(night):
    around, full = night["around_portfolio"], night["full_portfolio"]
    pd.testing.assert_series_equal(around.person_entity.sort_index(), full.person_entity.sort_index())
    pd.testing.assert_series_equal(around.company_entity.sort_index(), full.company_entity.sort_index())
    entity = around.person_entity
    assert entity[CHEN] == entity[CHEN_TYPO_DOB] == entity[CHEN_TYPO_SEQ] == min(CHEN, CHEN_TYPO_DOB, CHEN_TYPO_SEQ)
    # the SIMILAR_TO pairs found around the batch link the new record
    pairs = around.similar_pairs["Person-SIMILAR_TO-Person"]
    assert CHEN_TYPO_SEQ in set(pairs["src"]) | set(pairs["dst"])


def test_statistics_from_before_the_batch_are_refused_not_used(night):
    run = detect_around(
        Portfolio(night["store"]), night["new_ids"], names=["identity"], statistics={"identity": night["stale"]}
    )
    assert "compute them over the current portfolio" in run.errors["identity"] and not run.findings
    # run directly, they miss the batch's person records
    with pytest.raises(ValueError, match="not in the identity statistics"):
        IdentityResolution().run(Portfolio(night["store"]), statistics=night["stale"])
