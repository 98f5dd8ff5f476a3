"""Identity resolution: variants merge, different people and families do not,
conflicts are reported with their evidence."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from ringscope.detectors.identity import IdentityResolution, application_entities, company_core_name, resolve_records
from ringscope.detectors.portfolio import Portfolio
from ringscope.detectors.resolution.matching import block_pairs, gb11643_ok
from ringscope.graph.embedded import EmbeddedStore
from tests.detectors.builder import ExportBuilder, person_id
from tests.sample_data import make_id

# ---------------------------------------------------------------------------
# resolve_records on a hand-made table
# ---------------------------------------------------------------------------


def _fill(i: int) -> dict:
    """A background person (so frequencies and u are not all from the planted rows)."""
    return {
        "record_id": f"bg{i:03d}",
        "name": ["王", "李", "赵", "钱", "孙"][i % 5] + "某" + "甲乙丙丁戊己庚辛壬癸"[i % 10] + str(i),
        "dob": f"19{60 + i % 40:02d}-{1 + i % 12:02d}-{1 + i % 28:02d}",
        "phone": f"137{i:08d}",
        "address": f"测试市{i}路{i}号",
        "id_number": person_id(500 + i),
    }


@pytest.fixture(scope="module")
def table():
    zhang = make_id("110101", "19900102", "123")
    rows = [
        # 張偉 / 张伟 / Zhang Wei: one person (same dob; the romanised one has no ID)
        dict(
            record_id="zw1",
            name="張偉",
            dob="1990-01-02",
            phone="13800138000",
            address="北京市东城区东华门街道1号",
            id_number=zhang,
        ),
        dict(
            record_id="zw2",
            name="张伟",
            dob="1990-01-02",
            phone="138 0013 8000",
            address="北京市東城區東華門街道1號",
            id_number=zhang,
        ),
        dict(
            record_id="zw3", name="Zhang Wei", dob="1990/01/02", phone="+86 138-0013-8000", address=None, id_number=None
        ),
        # another 张伟: other dob, other ID, other phone
        dict(
            record_id="zw4",
            name="张伟",
            dob="1975-06-30",
            phone="13911112222",
            address="上海市徐汇区漕溪路8号",
            id_number=make_id("310104", "19750630", "456"),
        ),
        # a typo in the name, same ID
        dict(
            record_id="ty1",
            name="欧阳明华",
            dob="1988-03-04",
            phone="13500001111",
            address="广州市天河区体育西路5号",
            id_number=make_id("440106", "19880304", "222"),
        ),
        dict(
            record_id="ty2",
            name="欧阳明化",
            dob="1988-03-04",
            phone="13500001111",
            address="广州市天河区体育西路5号",
            id_number=make_id("440106", "19880304", "222"),
        ),
        # a family: same surname and address, different names, dobs and IDs
        dict(
            record_id="fa1",
            name="陈建国",
            dob="1960-05-05",
            phone="13600000001",
            address="杭州市西湖区文三路99号3栋",
            id_number=make_id("330106", "19600505", "111"),
        ),
        dict(
            record_id="fa2",
            name="陈晓红",
            dob="1988-09-09",
            phone="13600000002",
            address="杭州市西湖区文三路99号3栋",
            id_number=make_id("330106", "19880909", "122"),
        ),
        dict(
            record_id="fa3",
            name="陈晓明",
            dob="1990-11-11",
            phone="13600000003",
            address="杭州市西湖区文三路99号3栋",
            id_number=make_id("330106", "19901111", "133"),
        ),
    ]
    frame = pd.DataFrame(rows + [_fill(i) for i in range(60)])
    return frame, resolve_records(frame, workers=1)


def _entity(res, rid):
    return res.entities.set_index("record_id").at[rid, "entity_id"]


def test_traditional_simplified_and_pinyin_variants_merge(table):
    _, res = table
    assert _entity(res, "zw1") == _entity(res, "zw2") == _entity(res, "zw3") == "zw1"


def test_same_common_name_with_other_dob_and_id_stays_apart(table):
    _, res = table
    assert _entity(res, "zw4") == "zw4"


def test_name_typo_with_same_id_merges_and_explains(table):
    _, res = table
    assert _entity(res, "ty1") == _entity(res, "ty2")
    ex = res.explain("ty1", "ty2")
    assert ex["fields"]["id_number"]["level"] == 3 and 1 <= ex["fields"]["name"]["level"] < 4
    assert ex["fields"]["name"]["agreed"] and ex["score"] >= 0.9


def test_family_at_one_address_does_not_merge(table):
    _, res = table
    assert len({_entity(res, r) for r in ("fa1", "fa2", "fa3")}) == 3
    assert res.explain("fa2", "fa3")["score"] < 0.5


def test_pairs_have_field_columns_and_stats(table):
    _, res = table
    assert {"left", "right", "score", "name", "id_number", "dob", "phone", "address"} <= set(res.pairs.columns)
    assert res.stats["records"] == 69 and res.stats["candidate_pairs"] > 0


def test_oversize_blocks_are_split_or_skipped_and_counted():
    frame = pd.DataFrame(
        {
            "record_id": [f"r{i}" for i in range(30)],
            "name": ["王伟"] * 30,
            "dob": [f"19{70 + i % 3}-01-01" for i in range(30)],
        }
    )
    res = resolve_records(frame, workers=1, max_block=5)
    blocks = res.stats["blocks"]["name"]
    assert blocks["oversize_blocks"] == 1 and blocks["skipped_blocks"] == 3


def test_block_pairs_and_checksum_helpers():
    left, right, _ = block_pairs([2, 2, 2, -1, 5, 5], max_block=10)
    assert sorted(zip(left.tolist(), right.tolist())) == [(0, 1), (0, 2), (1, 2), (4, 5)]
    good = make_id("110101", "19900102", "123")
    bad = good[:-1] + ("0" if good[-1] != "0" else "1")
    assert gb11643_ok([good, bad, None]).tolist() == [True, False, False]


def test_resolve_records_validates_threshold():
    with pytest.raises(ValueError, match="The 'threshold' parameter of resolve_records must be a float in"):
        resolve_records(pd.DataFrame({"record_id": ["a"]}), threshold=1.5)


def _extra_fields_table() -> pd.DataFrame:
    """300 unrelated people, then a-b (one person: name typo, birth year typo,
    other postcode, same street address) and c-d (same kind of differences,
    different addresses: two people)."""
    rng = np.random.default_rng(1)
    n = 300
    streets = ["main street", "high road", "park avenue", "church lane", "mill way", "king street"]
    suburbs = ["carlton", "fitzroy", "kew", "hawthorn", "richmond", "brunswick"]
    background = pd.DataFrame(
        {
            "record_id": [f"r{i}" for i in range(n)],
            "given_name": rng.choice(["anna", "ben", "carl", "dora", "emil", "fay", "gus", "hana", "ivan", "june"], n),
            "surname": rng.choice(["smith", "jones", "brown", "taylor", "wilson", "evans"], n)
            + rng.integers(0, 50, n).astype(str),
            "dob": [f"19{rng.integers(40, 99)}{rng.integers(1, 13):02d}{rng.integers(1, 29):02d}" for _ in range(n)],
            "postcode": rng.integers(2000, 2999, n).astype(str),
            "street_number": rng.integers(1, 200, n).astype(str),
            "address_1": rng.choice(streets, n),
            "suburb": rng.choice(suburbs, n),
        }
    )
    pairs = pd.DataFrame(
        {
            "record_id": ["a", "b", "c", "d"],
            "given_name": ["zoe", "zoey", "mia", "miah"],
            "surname": ["okafor", "okafor", "adeyemi", "adeyemi"],
            "dob": ["19800101", "19810101"] * 2,
            "postcode": ["3000", "3999"] * 2,
            "street_number": ["42", "42", "7", "191"],
            "address_1": ["wattle grove", "wattle grove", "high road", "elm court"],
            "suburb": ["toorak", "toorak", "kew", "fitzroy"],
        }
    )
    return pd.concat([background, pairs], ignore_index=True)


def test_extra_fields_are_compared_and_decide_the_match():
    table = _extra_fields_table()
    extra = {"street_number": "number", "address_1": "text", "suburb": "text"}
    base = resolve_records(table.drop(columns=list(extra)), workers=1)
    ent = base.entities.set_index("record_id")["entity_id"]
    assert ent["a"] != ent["b"] and ent["c"] != ent["d"]
    res = resolve_records(table, workers=1, extra_fields=extra)
    ent = res.entities.set_index("record_id")["entity_id"]
    assert ent["a"] == ent["b"] and ent["c"] != ent["d"]
    assert set(extra) <= set(res.fields) and set(extra) <= set(res.model["m"])
    ex = res.explain("a", "b")["fields"]
    assert ex["address_1"]["level"] == 3 and ex["street_number"]["meaning"] == "same number"
    with pytest.raises(ValueError, match="'extra_fields' parameter of resolve_records"):
        resolve_records(table, extra_fields={"suburb": "fuzzy"})


def test_comparisons_by_block_of_pairs_are_those_of_one_call(table, monkeypatch):
    """Comparing the candidate pairs a block at a time gives every field's
    levels and similarities, and so the whole resolution, that one call over
    all pairs gave: Chinese records, and Latin ones with swapped name parts,
    word-order addresses and extra fields."""
    import ringscope.detectors.resolution.linkage as linkage

    latin = _extra_fields_table()
    latin.loc[len(latin)] = ["e", "okafor", "zoe", "19800101", "3000", "42", "wattle grove", "toorak"]  # swapped
    latin["address"] = latin["street_number"] + " " + latin["address_1"]
    cases = [
        (table[0], {}),
        (latin, {"extra_fields": {"street_number": "number", "suburb": "text"}, "address_tokens": True}),
    ]
    for frame, options in cases:
        whole = resolve_records(frame, workers=1, **options)
        monkeypatch.setattr(linkage, "_COMPARE_BLOCK", 997)  # u is estimated over all (2k, 47k) pairs
        blocks = resolve_records(frame, workers=1, **options)
        monkeypatch.setattr(linkage, "_COMPARE_BLOCK", 500_000)
        pd.testing.assert_frame_equal(blocks.pairs, whole.pairs)
        pd.testing.assert_frame_equal(blocks.entities, whole.entities)
        assert blocks.model == whole.model
        recs, fields = linkage._prepare(frame, False, options.get("extra_fields"), options.get("address_tokens", False))
        arrays = linkage._arrays(recs)
        li, ri = np.triu_indices(min(len(recs), 120), 1)
        want = linkage._compare(
            arrays, li, ri, fields, 1, options.get("extra_fields"), options.get("address_tokens", False)
        )
        monkeypatch.setattr(linkage, "_COMPARE_BLOCK", 1000)
        got = linkage._compare(
            arrays, li, ri, fields, 1, options.get("extra_fields"), options.get("address_tokens", False)
        )
        monkeypatch.setattr(linkage, "_COMPARE_BLOCK", 500_000)
        for f in fields:
            assert got[0][f].dtype == np.int8 and (got[0][f] == want[0][f]).all(), f
            np.testing.assert_array_equal(got[1][f], want[1][f])


def test_company_core_name_strips_forms_and_city():
    core = company_core_name(pd.Series(["深圳市鸿宇物流有限公司", "鴻宇物流有限責任公司", "鸿宇物流集团股份有限公司"]))
    assert core["core"].tolist() == ["鸿宇物流"] * 3


# ---------------------------------------------------------------------------
# the detector over a store
# ---------------------------------------------------------------------------


def _planted() -> tuple[ExportBuilder, dict]:
    b = ExportBuilder()
    ids = {}
    for _ in range(30):
        b.app()
    # one ID under two unrelated names, days apart (一证多名)
    shared = person_id(700)
    ids["multi_name"] = [
        b.app(applicant_name="周杰明", applicant_id_number=shared)["application_id"],
        b.app(applicant_name="林晓燕", applicant_id_number=shared)["application_id"],
    ]
    # synthetic identity: same name + birth date, two IDs, different phones
    id_a = make_id("522729", "19620103", "008")
    id_b = make_id("522729", "19620103", "013")
    addr = "贵州省黔南州长顺县新华路356号鑫苑29栋1单元3103室"
    ids["name_dob"] = [
        b.app(applicant_name="姚佳勇", applicant_id_number=id_a, applicant_phone="13912340001", applicant_address=addr)[
            "application_id"
        ],
        b.app(applicant_name="姚佳勇", applicant_id_number=id_b, applicant_phone="13912340002", applicant_address=addr)[
            "application_id"
        ],
    ]
    # repeat borrower: same ID and name, months apart, changed phone
    rb = person_id(701)
    ids["repeat"] = [
        b.app(
            applicant_name="郑浩然",
            applicant_id_number=rb,
            applicant_phone="13700000011",
            applied_at=datetime(2025, 1, 10),
        )["application_id"],
        b.app(
            applicant_name="郑浩然",
            applicant_id_number=rb,
            applicant_phone="13700000022",
            applied_at=datetime(2025, 9, 10),
        )["application_id"],
    ]
    # repeat borrower typing the name in traditional characters / with a typo
    rb2 = person_id(702)
    ids["variant"] = [
        b.app(applicant_name=n, applicant_id_number=rb2, applicant_phone="13700000033")["application_id"]
        for n in ("陈国强", "陳國強", "陈国墙")
    ]
    # a family at one address: same surname, different names and IDs
    fam = "浙江省杭州市西湖区文三路99号3栋1单元501室"
    ids["family"] = [
        b.app(applicant_name=n, applicant_id_number=person_id(710 + k), applicant_address=fam)["application_id"]
        for k, n in enumerate(["刘建国", "刘晓红", "刘晓明"])
    ]
    # an ID that fails its checksum
    good = person_id(720)
    bad = good[:-1] + ("0" if good[-1] != "0" else "1")
    ids["checksum"] = [b.app(applicant_id_number=bad)["application_id"]]
    # one ID cycling through phones within days (not a change of number)
    cyc = person_id(730)
    ids["phones"] = [
        b.app(applicant_name="孙立新", applicant_id_number=cyc, applicant_phone=p, applied_at=datetime(2025, 3, d))[
            "application_id"
        ]
        for p, d in (("13655550001", 1), ("13655550002", 5), ("13655550001", 9))
    ]
    return b, ids


@pytest.fixture(scope="module")
def detected(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("identity")
    b, ids = _planted()
    store = EmbeddedStore(tmp / "store")
    b.load(store, tmp / "export")
    portfolio = Portfolio(store)
    findings = IdentityResolution().run(portfolio)
    portfolio.use_entities(IdentityResolution().resolve(portfolio))
    return ids, findings, portfolio


def _by_kind(findings, kind):
    return [f for f in findings if f.kind == kind]


def test_one_id_under_unrelated_names_is_reported(detected):
    ids, findings, _ = detected
    (f,) = _by_kind(findings, "id_multiple_names")
    assert f.members == tuple(sorted(ids["multi_name"]))
    ev = {e.feature: e for e in f.evidence}
    assert set(ev["id_multiple_names"].values) == {"周杰明", "林晓燕"}
    assert f.score >= 0.5 and ("Person", person_id(700)) in f.entities


def test_name_variants_and_repeat_borrower_are_not_conflicts(detected):
    ids, findings, _ = detected
    conflict_members = {m for f in findings if f.kind != "id_checksum_failed" for m in f.members}
    assert not conflict_members & set(ids["variant"] + ids["repeat"] + ids["family"])


def test_synthetic_identity_name_dob_finding(detected):
    ids, findings, portfolio = detected
    (f,) = _by_kind(findings, "name_dob_multi_id")
    assert f.members == tuple(sorted(ids["name_dob"]))
    ev = {e.feature: e for e in f.evidence}
    assert "different_phones" in ev and len(ev["several_id_numbers"].values) == 2
    assert f.score >= 0.5
    keys = [k for _, k in f.entities]
    assert portfolio.person_entity[keys[0]] == portfolio.person_entity[keys[1]] == min(keys)


def test_family_not_merged(detected):
    ids, _, portfolio = detected
    apps = application_entities(portfolio).set_index("application_id")
    assert apps.loc[ids["family"], "person_entity_id"].nunique() == 3


def test_checksum_finding_per_application(detected):
    ids, findings, _ = detected
    (f,) = _by_kind(findings, "id_checksum_failed")
    assert f.members == tuple(ids["checksum"]) and f.score == pytest.approx(0.25)


def test_phone_cycling_reported_but_not_a_change_of_number(detected):
    ids, findings, _ = detected
    (f,) = _by_kind(findings, "id_multiple_phones")
    assert f.members == tuple(sorted(ids["phones"]))
    assert "phones_interleaved" in {e.feature for e in f.evidence}


def test_similar_pairs_have_model_columns(detected):
    _, _, portfolio = detected
    pairs = portfolio.similar_pairs["Person-SIMILAR_TO-Person"]
    assert list(pairs.columns) == ["src", "dst", "score", "features", "method"]
    assert len(pairs) >= 1 and set(portfolio.similar_pairs) == {
        "Person-SIMILAR_TO-Person",
        "Company-SIMILAR_TO-Company",
    }


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"threshold": 0}, "The 'threshold' parameter of IdentityResolution must be a float in (0, 1). Got 0 instead."),
        ({"max_block": 1}, "The 'max_block' parameter of IdentityResolution must be an int >= 2. Got 1 instead."),
        ({"window_days": 0}, "The 'window_days' parameter of IdentityResolution must be an int >= 1. Got 0 instead."),
    ],
)
def test_parameter_validation(kwargs, message):
    with pytest.raises(ValueError) as err:
        IdentityResolution(**kwargs)
    assert str(err.value) == message


def test_detector_on_both_stores(store, tmp_path):
    b, ids = _planted()
    b.load(store, tmp_path / "export")
    findings = IdentityResolution().run(store)
    kinds = {f.kind for f in findings}
    assert {"id_multiple_names", "name_dob_multi_id", "id_checksum_failed"} <= kinds
    (f,) = [f for f in findings if f.kind == "id_multiple_names"]
    assert f.members == tuple(sorted(ids["multi_name"]))


def test_explain_reads_only_the_two_records_it_explains(monkeypatch):
    """``explain`` is called once per identity group in a whole-book detect:
    converting the book's columns on each call (a few held at a time) made a
    1M-record detect spend minutes in it. It reads the two records, and says
    what one call over every record says."""
    import ringscope.detectors.resolution.linkage as linkage

    names = ["张伟", "張偉", "王芳", "王芳芳", "李娜", "李 娜"] * 10
    frame = pd.DataFrame(
        {
            "record_id": [f"r{i}" for i in range(len(names))],
            "name": names,
            "dob": ["1990-01-02", "1990-01-02", "1985-05-05", "1985-05-05", "1979-12-31", "1979-12-31"] * 10,
        }
    )
    res = resolve_records(frame, workers=1)
    converted: list[int] = []
    real = linkage._Columns.__getitem__

    def noting(self, column):
        converted.append(len(self.recs))
        return real(self, column)

    monkeypatch.setattr(linkage._Columns, "__getitem__", noting)
    ex = res.explain("r0", "r1")
    assert converted and max(converted) == 2
    whole = linkage._compare(linkage._arrays(res.records), np.array([0]), np.array([1]), res.fields, workers=1)[0]
    assert {f: v["level"] for f, v in ex["fields"].items()} == {f: int(whole[f][0]) for f in res.fields}
    assert ex["fields"]["name"]["agreed"]
