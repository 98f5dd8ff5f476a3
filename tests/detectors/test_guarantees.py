"""Mutual-guarantee circles: cycles found, owners and chains not."""

from __future__ import annotations

import pandas as pd
import pytest

from ringscope.detectors.guarantees import GuaranteeCircles, economic_units, guarantee_sccs
from ringscope.detectors.risk.config import TrainingConfig
from ringscope.detectors.risk.reasons import accused_ring
from ringscope.graph.embedded import EmbeddedStore
from tests.detectors.builder import ExportBuilder, company_uscc, person_id


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("guarantees")
    b = ExportBuilder()
    apps = {i: b.business_app(i, label="default" if i == 1 else "good")["application_id"] for i in range(1, 10)}
    # 互保: companies 1 and 2 guarantee each other's loans
    b.guarantee(apps[1], "company", "深圳市第2号贸易有限公司", company_uscc(2), 300000)
    b.guarantee(apps[2], "company", "深圳市第1号贸易有限公司", company_uscc(1), 300000)
    # a three-cycle 3 -> 4 -> 5 -> 3 (guarantor -> borrower)
    b.guarantee(apps[4], "company", "c3", company_uscc(3))
    b.guarantee(apps[5], "company", "c4", company_uscc(4))
    b.guarantee(apps[3], "company", "c5", company_uscc(5))
    # the owner of company 6 guarantees its loan, and company 6 guarantees the owner's personal loan
    owner = b.app(applicant_name="周老板", applicant_id_number=person_id(900))
    b.role(company_uscc(6), "周老板", person_id(900), "legal_rep")
    b.guarantee(apps[6], "person", "周老板", person_id(900))
    b.guarantee(owner["application_id"], "company", "c6", company_uscc(6))
    # a chain without a cycle: 7 -> 8 -> 9
    b.guarantee(apps[8], "company", "c7", company_uscc(7))
    b.guarantee(apps[9], "company", "c8", company_uscc(8))
    store = EmbeddedStore(tmp / "store")
    b.load(store, tmp / "export")
    return apps, owner, GuaranteeCircles().run(store)


def test_mutual_guarantee_found_with_cycle_and_default(planted):
    apps, _, findings = planted
    mutual = [f for f in findings if f.kind == "mutual_guarantee"]
    assert len(mutual) == 1
    f = mutual[0]
    assert set(f.members) == {apps[1], apps[2]}
    assert {k for _, k in f.entities} == {company_uscc(1), company_uscc(2)}
    evidence = {e.feature: e for e in f.evidence}
    assert company_uscc(1) in evidence["guarantee_cycle"].detail and "互保" in evidence["guarantee_cycle"].detail
    assert evidence["members_in_default"].values == (1,)


def test_three_cycle_found_with_its_path(planted):
    apps, _, findings = planted
    (circle,) = [f for f in findings if f.kind == "guarantee_circle"]
    assert set(circle.members) == {apps[3], apps[4], apps[5]}
    cycle = {e.feature: e for e in circle.evidence}["guarantee_cycle"].detail
    assert all(company_uscc(i) in cycle for i in (3, 4, 5))


def test_owner_guaranteeing_own_company_and_chains_are_not_circles(planted):
    apps, owner, findings = planted
    flagged = {m for f in findings for m in f.members}
    assert not flagged & {apps[6], owner["application_id"], apps[7], apps[8], apps[9]}
    assert len(findings) == 2


def test_mutual_scores_above_no_default_circle(planted):
    _, _, findings = planted
    by_kind = {f.kind: f.score for f in findings}
    assert by_kind["mutual_guarantee"] > by_kind["guarantee_circle"]


def test_economic_units_merge_only_legal_reps():
    roles = pd.DataFrame({"person": ["p1", "p2"], "company": ["c1", "c2"], "role": ["LEGAL_REP_OF", "SHAREHOLDER_OF"]})
    units = economic_units(roles, pd.Series(["p1", "p2"]), pd.Series(["c1", "c2"]))
    assert units["Person:p1"] == units["Company:c1"] == "Company:c1"
    assert units["Person:p2"] != units["Company:c2"]


def test_sccs_skip_singletons():
    edges = pd.DataFrame({"src": ["a", "b", "c", "d"], "dst": ["b", "c", "a", "e"]})
    sccs = guarantee_sccs(edges)
    assert set(sccs.index) == {"a", "b", "c"} and sccs.nunique() == 1


def test_bad_parameter_message():
    with pytest.raises(ValueError, match="The 'max_cycle_length' parameter of GuaranteeCircles must be an int >= 2"):
        GuaranteeCircles(max_cycle_length=1)


def test_chain_downstream_of_a_circle_is_evidence(tmp_path):
    b = ExportBuilder()
    apps = {i: b.business_app(i)["application_id"] for i in range(1, 5)}
    b.guarantee(apps[1], "company", "c2", company_uscc(2))
    b.guarantee(apps[2], "company", "c1", company_uscc(1))
    b.guarantee(apps[3], "company", "c2", company_uscc(2))  # the circle guarantees company 3 ...
    b.guarantee(apps[4], "company", "c3", company_uscc(3))  # ... which guarantees company 4
    store = EmbeddedStore(tmp_path / "s")
    b.load(store, tmp_path / "e")
    (circle,) = GuaranteeCircles().run(store)
    chain = {e.feature: e for e in circle.evidence}["guarantee_chain"]
    assert set(chain.values) == {company_uscc(3), company_uscc(4)}
    # company 3's loan stands on the circle's guarantee: a member; company 4's, one link further, is not
    assert set(circle.members) == {apps[1], apps[2], apps[3]}
    assert "1 loans guaranteed directly by a member" in chain.detail


def test_loan_the_circle_secures_carries_its_ring_id(tmp_path):
    """A chain borrower of a planted circle got no finding at all (bench_quality
    2026-11-30: 17% of circle members); now it is a member at the circle's score."""
    b = ExportBuilder()
    apps = {i: b.business_app(i)["application_id"] for i in range(1, 6)}
    for borrower, guarantor in ((1, 2), (2, 3), (3, 1)):  # a three-cycle
        b.guarantee(apps[borrower], "company", f"c{guarantor}", company_uscc(guarantor))
    b.guarantee(apps[4], "company", "c1", company_uscc(1))  # a loan the circle secures
    b.guarantee(apps[5], "company", "c4", company_uscc(4))  # one link further down
    store = EmbeddedStore(tmp_path / "s")
    b.load(store, tmp_path / "e")
    (circle,) = GuaranteeCircles().run(store)
    assert set(circle.members) == {apps[1], apps[2], apps[3], apps[4]}
    assert circle.score >= TrainingConfig().review_threshold
    ring = accused_ring([circle], apps[4], [], [], TrainingConfig().review_threshold, ("guarantee_circles",))
    assert ring == circle.finding_id
    # exposure is the circle's own loans
    exposure = {e.feature: e for e in circle.evidence}["exposure"].values[0]
    assert exposure == 3 * 300000
