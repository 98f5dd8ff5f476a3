"""Households in shared-identifier rings: a family that shares a home, its
Wi-Fi IP and a device, the spouse with their own surname, is evidence and
no accusation; a ring sharing the same identifiers without family relations
is still accused."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from ringscope.detectors.portfolio import Portfolio
from ringscope.detectors.rings import SharedIdentifierRings, household_limit
from ringscope.detectors.risk.config import TrainingConfig
from ringscope.detectors.risk.reasons import accused_ring
from ringscope.graph.embedded import EmbeddedStore
from tests.detectors.builder import ExportBuilder

REVIEW = TrainingConfig().review_threshold
START = datetime(2025, 5, 1, 9, 0)


def _group(b: ExportBuilder, names: list[str], tag: str, address: str) -> list[dict]:
    """People applying over 20 days from one home: one address, IP and device."""
    return [
        b.app(
            applicant_name=name,
            applicant_address=address,
            ip=f"183.{tag}.7.9",
            device_id=f"dev-{tag}",
            applied_at=START + timedelta(days=10 * k),
            label="",
        )
        for k, name in enumerate(names)
    ]


def _portfolio() -> tuple[ExportBuilder, dict[str, list[str]]]:
    b = ExportBuilder()
    for _ in range(30):  # unlinked background
        b.app()
    # household: husband, wife (her own surname), son; the family names each other
    husband, wife, son = _group(b, ["王建国", "陈丽华", "王明"], "1", "江苏省南京市鼓楼区中山路5号2栋301室")
    b.contact(wife["application_id"], husband["applicant_name"], husband["applicant_phone"], "配偶")
    b.contact(husband["application_id"], wife["applicant_name"], wife["applicant_phone"], "配偶")
    b.contact(son["application_id"], husband["applicant_name"], husband["applicant_phone"], "parent")
    # a ring of four strangers sharing the same kinds of identifiers, naming each other as friends
    ring = _group(b, ["赵磊", "孙强", "周敏", "吴刚"], "2", "广东省深圳市宝安区新安街道88号3栋502室")
    for row, other in zip(ring, ring[1:] + ring[:1]):
        b.contact(row["application_id"], other["applicant_name"], other["applicant_phone"], "friend")
    # a ring that names an outside phone together (shared contacts, no family relation among members)
    shared = _group(b, ["郑浩", "冯伟", "蒋涛"], "3", "四川省成都市武侯区人民南路9号1栋1101室")
    for row in shared:
        b.contact(row["application_id"], "钱老板", "13700000001", "spouse")
    groups = {
        "household": [r["application_id"] for r in (husband, wife, son)],
        "ring": [r["application_id"] for r in ring],
        "shared": [r["application_id"] for r in shared],
    }
    return b, groups


@pytest.fixture(scope="module")
def found(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("household")
    b, groups = _portfolio()
    store = EmbeddedStore(tmp / "store")
    b.load(store, tmp / "export")
    return groups, SharedIdentifierRings().run(store)


def _finding(findings, members):
    (finding,) = [f for f in findings if set(members) & set(f.members)]
    assert set(finding.members) == set(members)
    return finding


def _ring_ids(finding, members) -> set[str]:
    return {accused_ring([finding], a, [], [], REVIEW, ("shared_identifier_rings",)) for a in members}


def test_household_is_evidence_not_an_accusation(found):
    groups, findings = found
    household = _finding(findings, groups["household"])
    assert household.score < REVIEW
    assert "household" in {e.feature for e in household.evidence}
    assert _ring_ids(household, groups["household"]) == {""}
    assert abs(sum(e.contribution for e in household.evidence) - household.score) < 1e-6


@pytest.mark.parametrize("group", ["ring", "shared"])
def test_rings_without_family_relations_are_accused(found, group):
    groups, findings = found
    ring = _finding(findings, groups[group])
    assert ring.score >= REVIEW
    assert "household" not in {e.feature for e in ring.evidence}
    assert _ring_ids(ring, groups[group]) == {ring.finding_id}


def test_same_sharing_scores_the_same_but_for_the_household(found):
    groups, findings = found
    household = _finding(findings, groups["household"])
    undiscounted = sum(e.contribution for e in household.evidence if e.feature != "household")
    assert undiscounted >= REVIEW  # without the household test, this family would be accused


def test_one_stranger_in_the_home_is_no_household(tmp_path):
    """A lodger sharing the flat, IP and device but named by no one breaks the household."""
    b, groups = _portfolio()
    lodger = b.app(
        applicant_name="林志强",
        applicant_address="江苏省南京市鼓楼区中山路5号2栋301室",
        ip="183.1.7.9",
        device_id="dev-1",
        applied_at=START + timedelta(days=5),
        label="",
    )
    store = EmbeddedStore(tmp_path / "store")
    b.load(store, tmp_path / "export")
    finding = _finding(SharedIdentifierRings().run(store), groups["household"] + [lodger["application_id"]])
    assert "household" not in {e.feature for e in finding.evidence}
    assert finding.score >= REVIEW


def test_a_group_far_larger_than_the_books_families_is_no_household(tmp_path):
    """The household bound is the book's own: among twenty couples, a 'family' of three is an outlier."""
    b, groups = _portfolio()
    for _ in range(20):
        one, two = b.app(), b.app()
        b.contact(one["application_id"], two["applicant_name"], two["applicant_phone"], "spouse")
        b.contact(two["application_id"], one["applicant_name"], one["applicant_phone"], "spouse")
    store = EmbeddedStore(tmp_path / "store")
    b.load(store, tmp_path / "export")
    detector = SharedIdentifierRings(max_household=2)
    assert 2 <= household_limit(Portfolio(store), detector.fence_mads, 2) < 3
    assert "household" not in {e.feature for e in _finding(detector.run(store), groups["household"]).evidence}
    # the default floor (contact_loops' household bound, 6) still takes it for a household
    assert "household" in {
        e.feature for e in _finding(SharedIdentifierRings().run(store), groups["household"]).evidence
    }


def test_incremental_run_reads_the_bound_of_the_whole_book(tmp_path):
    b, groups = _portfolio()
    store = EmbeddedStore(tmp_path / "store")
    b.load(store, tmp_path / "export")
    portfolio = Portfolio(store)
    detector = SharedIdentifierRings()
    stats = detector.statistics(portfolio)
    assert stats.attrs["household_people"] == household_limit(portfolio, detector.fence_mads, 6)
    local = detector.scope(portfolio, groups["household"][:1], stats)
    (finding,) = detector.run(local, statistics=stats)
    assert finding == _finding(detector.run(portfolio), groups["household"])


def _household_limit_over_every_application(portfolio, fence_mads, floor, seen):
    """household_limit as it was: an identity for every application of the book."""
    import math

    import numpy as np
    import pandas as pd

    from ringscope.detectors.components import component_labels
    from ringscope.detectors.contacts import contact_edges
    from ringscope.detectors.family import family_consistency
    from ringscope.detectors.rings import _FAMILY_COLUMNS, _linked_entities

    contacts, apps = portfolio.contacts, portfolio.applications
    apps = apps[["application_id", *_FAMILY_COLUMNS]].drop_duplicates("application_id").set_index("application_id")
    entity = _linked_entities(portfolio)
    ids = apps.index.astype(str)
    identity = pd.Series(entity.reindex(ids).to_numpy(dtype=object), index=ids)
    identity = identity.where(identity.notna(), "app:" + pd.Series(ids, index=ids))
    edges = contact_edges(contacts.dropna(subset=["application_id", "phone"]), portfolio.link_table("phone"), identity)
    seen.append(edges)
    involved = pd.Index(pd.unique(pd.concat([edges["src"], edges["dst"]]).astype(str)))
    edges = edges[family_consistency(edges, apps.loc[involved]) > 0]
    m = len(edges)
    codes, people = pd.factorize(
        np.concatenate([identity.reindex(edges["src"]).to_numpy(), identity.reindex(edges["dst"]).to_numpy()])
    )
    sizes = np.bincount(component_labels(len(people), codes[:m], codes[m:]))
    logp = np.log(sizes[sizes >= 2].astype(float))
    median = float(np.median(logp))
    mad = float(np.median(np.abs(logp - median))) * 1.4826
    return float(max(floor, math.exp(median + fence_mads * max(mad, 0.1))))


@pytest.mark.parametrize("seed", [3, 8])
def test_household_limit_resolves_only_the_applications_a_contact_reaches(tmp_path, monkeypatch, seed):
    import pandas as pd

    from ringscope.detectors import rings
    from ringscope.ingest.pipeline import ingest_folder
    from ringscope.ingest.synthetic import GeneratorConfig, generate_portfolio

    generate_portfolio(GeneratorConfig(applications=4000, seed=seed), tmp_path / "data")
    store = EmbeddedStore(tmp_path / "store")
    ingest_folder(tmp_path / "data", store, rejects_path=tmp_path / "rejects.csv")
    old_edges, new_edges = [], []
    want = _household_limit_over_every_application(Portfolio(store), 0.5, 0.0, old_edges)
    joined = rings.contact_edges

    def recorded(contacts, phones, identity):
        new_edges.append(joined(contacts, phones, identity))
        assert len(identity) < len(Portfolio(store).applications) / 2  # not every application
        return new_edges[-1]

    monkeypatch.setattr(rings, "contact_edges", recorded)
    got = household_limit(Portfolio(store), fence_mads=0.5, floor=0.0)
    assert len(old_edges[0]) >= 20  # family naming links exist in the book
    pd.testing.assert_frame_equal(new_edges[0].reset_index(drop=True), old_edges[0].reset_index(drop=True))
    assert got == want and got > 1.0
