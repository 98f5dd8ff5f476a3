"""Dashboard search (issue 14 item 10): any part of a name or company, one
hanzi, traditional input, risk score and decision in the results, exact
matches first then by score, and the cap counted."""

from __future__ import annotations

import pandas as pd
import pytest

from ringscope.app.dashboard import services
from ringscope.graph.store import GraphBatch
from tests.detectors.builder import ExportBuilder, person_id

COMPANY = "苏州工业园区开发区世创科技有限公司"


@pytest.fixture
def index(store, tmp_path):
    b = ExportBuilder()
    b.business_app(1, "C1", company_name=COMPANY, applicant_name="周一")
    b.business_app(1, "C2", company_name=COMPANY, applicant_name="周二")
    b.business_app(2, "C3", company_name="深圳市第2号贸易有限公司", applicant_name="周三")
    b.app("Z1", applicant_name="张伟", applicant_id_number=person_id(901), bank_account="6222000011112222")
    b.app("Z1B", applicant_name="张伟", applicant_id_number=person_id(901))
    b.app("Z2", applicant_name="張三", bank_account="62220000111122223333")  # stored in traditional script
    b.app("L1", applicant_name="李张")
    b.app("S1", applicant_name="單雄信")  # 单 as a surname reads shan
    for i in range(55):
        b.app(f"W{i:02d}", applicant_name="王五")
    b.load(store, tmp_path / "export")
    scores = {
        "Z1": (0.3, "approve"),
        "Z1B": (0.95, "decline"),
        "Z2": (0.9, "decline"),
        "C2": (0.8, "review"),
        "W07": (0.5, "review"),
    }
    store.write(
        GraphBatch(
            nodes={
                "Application": pd.DataFrame(
                    {
                        "key": list(scores),
                        "risk_score": [s for s, _ in scores.values()],
                        "risk_decision": [d for _, d in scores.values()],
                    }
                )
            }
        )
    )
    return services.build_search_index(store)


def ids(hits: services.SearchHits) -> list[str]:
    # (a plain frame is what search returned before SearchHits: lets these tests judge the old matching too)
    return getattr(hits, "rows", hits)["application_id"].tolist()


def test_part_of_a_company_name(index):
    hits = services.search(index, "开发区世创")
    assert sorted(ids(hits)) == ["C1", "C2"] and set(hits.rows["matched"]) == {"company"}
    assert ids(hits) == ["C2", "C1"]  # the scored one first
    # the company's best score is carried by its unscored application too
    assert hits.rows.set_index("application_id")["company_risk"].to_dict() == {"C1": 0.8, "C2": 0.8}


def test_one_hanzi_finds_every_name_holding_it_ranked_by_score(index):
    hits = services.search(index, "张")
    # 張三 (stored traditional) and 李张 (张 not first) are found too
    assert ids(hits) == ["Z1B", "Z2", "Z1", "L1"]
    rows = hits.rows.set_index("application_id")
    assert rows.loc["Z2", "risk_score"] == pytest.approx(0.9) and rows.loc["Z2", "risk_decision"] == "decline"
    assert pd.isna(rows.loc["L1", "risk_score"]) and rows.loc["L1", "risk_decision"] == ""
    # the applicant's best score: Z1's person also applied as Z1B (0.95)
    assert rows.loc["Z1", "person_risk"] == pytest.approx(0.95)


def test_traditional_input_finds_simplified_names(index):
    assert sorted(ids(services.search(index, "張偉"))) == ["Z1", "Z1B"]
    assert sorted(ids(services.search(index, "開發區世創"))) == ["C1", "C2"]


def test_pinyin_and_hanzi_as_ingest_reads_them(index):
    # the pinyin key is ingest's (surname readings: 单 is shan, not dan), on the simplified name
    assert ids(services.search(index, "shanxiongxin")) == ["S1"]
    assert ids(services.search(index, "单")) == ["S1"]
    assert "Z2" in ids(services.search(index, "zhangsan"))


def test_cap_and_total_count(index):
    hits = services.search(index, "王五", limit=50)
    assert len(hits.rows) == 50 and hits.total == 55 and hits.capped
    assert ids(hits)[0] == "W07"  # the only scored one leads
    few = services.search(index, "张")
    assert few.total == len(few.rows) == 4 and not few.capped


def test_exact_number_first_then_by_score(index):
    hits = services.search(index, "6222000011112222")
    assert ids(hits)[:2] == ["Z1", "Z2"]  # Z1's account is exactly that; Z2's (scored higher) only holds it
    assert hits.rows["exact"].tolist()[:2] == [True, False]
    name = services.search(index, "张伟")
    assert ids(name) == ["Z1B", "Z1"] and name.rows["exact"].all()


def test_application_id_and_empty_query(index):
    assert ids(services.search(index, "z1b")) == ["Z1B"]
    assert services.search(index, "  ").rows.empty and services.search(index, "  ").total == 0
    assert list(services.search(index, "no such name 无").rows.columns) == services.HIT_COLUMNS
