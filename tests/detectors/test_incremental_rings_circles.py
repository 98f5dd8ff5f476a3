"""Rings and guarantee circles around a batch: the whole components, judged by the whole book.

``scope`` must hold every application a ring or circle holding a batch
application reads, however far the component reaches (a 2-hop neighbourhood
cuts long chains), and ``run(scope, statistics)`` must then give exactly the
findings of a full run — members, score and evidence — with the hub
decisions and economic units of the whole portfolio.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
import pytest

from ringscope.detectors.guarantees import GuaranteeCircles
from ringscope.detectors.portfolio import Portfolio
from ringscope.detectors.rings import SharedIdentifierRings, entity_links, ring_components
from ringscope.graph.embedded import EmbeddedStore
from tests.detectors.builder import ExportBuilder, company_uscc, person_id

T0 = datetime(2025, 3, 1, 9, 0)


def _account(i: int) -> str:
    return f"62284800{i:011d}"


def _holding(findings, ids) -> dict:
    """(kind, members) → (score, evidence, entities, shared) of the findings holding one of ``ids``."""
    ids = set(ids)
    return {
        (f.kind, tuple(sorted(f.members))): (f.score, f.evidence, f.entities, f.shared)
        for f in findings
        if ids & set(f.members)
    }


def _around(detector, portfolio, ids):
    stats = detector.statistics(portfolio)
    local = detector.scope(portfolio, ids, stats)
    return local, detector.run(local, statistics=stats)


# -- rings ------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ring_book(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ring-book")
    b = ExportBuilder()
    g: dict[str, list[str]] = {k: [] for k in ("honest", "couples", "chain", "hub", "ring2", "entity", "bridge")}
    for _ in range(30):
        g["honest"].append(b.app()["application_id"])
    for k in range(8):  # couples sharing a phone: the phone kind's usual sharing is two people
        phone = f"1370000{k:04d}"
        g["couples"] += [b.app(applicant_phone=phone)["application_id"] for _ in range(2)]
    # a chain of ten people, each sharing a device or an account with the next only
    for i in range(10):
        g["chain"].append(
            b.app(
                device_id=f"chain-dev-{i // 2}",
                bank_account=_account(100 + (i + 1) // 2),
                applied_at=T0 + timedelta(hours=6 * i),
            )["application_id"]
        )
    # a switchboard phone given by thirty unrelated people over a year: a hub
    for i in range(30):
        g["hub"].append(b.app(applicant_phone="13900009999", applied_at=T0 + timedelta(days=12 * i))["application_id"])
    # three people on one device; the last also gives the switchboard phone
    for i in range(3):
        g["ring2"].append(
            b.app(
                device_id="ring2-dev",
                applied_at=T0 + timedelta(hours=i),
                applicant_phone="13900009999" if i == 2 else f"1380000{i:04d}",
            )["application_id"]
        )
    # a repeat borrower: their old loan shares an account with two people; the new one a device with a third
    old = b.app(bank_account=_account(7), applied_at=T0)
    g["entity"] += [old["application_id"]] + [b.app(bank_account=_account(7))["application_id"] for _ in range(2)]
    g["entity"].append(b.app(device_id="entity-dev")["application_id"])
    new_of_old = b.app(
        applicant_name=old["applicant_name"], applicant_id_number=old["applicant_id_number"], device_id="entity-dev"
    )
    g["entity"].append(new_of_old["application_id"])
    # two pairs that only a new application bridges
    g["bridge"] += [b.app(device_id="bridge-1")["application_id"] for _ in range(2)]
    g["bridge"] += [b.app(bank_account=_account(8))["application_id"] for _ in range(2)]
    bridge = b.app(device_id="bridge-1", bank_account=_account(8))
    g["bridge"].append(bridge["application_id"])
    isolated = b.app()
    batch = {
        "chain": g["chain"][-1],
        "ring2": g["ring2"][-1],
        "entity": new_of_old["application_id"],
        "bridge": bridge["application_id"],
        "isolated": isolated["application_id"],
    }
    store = EmbeddedStore(tmp / "store")
    b.load(store, tmp / "export")
    return Portfolio(store), g, batch


def test_ring_scope_is_the_whole_components_of_the_batch(ring_book):
    portfolio, g, batch = ring_book
    local = SharedIdentifierRings().scope(portfolio, list(batch.values()))
    expected = set(g["chain"]) | set(g["ring2"]) | set(g["entity"]) | set(g["bridge"])
    assert set(local.applications["application_id"]) == expected
    # the same as labelling every component of the portfolio
    det = SharedIdentifierRings()
    components = ring_components(entity_links(portfolio), det.statistics(portfolio))
    hit = components.reindex(list(batch.values())).dropna().unique()
    assert set(components.index[components.isin(hit)]) == expected


def test_rings_around_the_batch_equal_a_full_run(ring_book):
    portfolio, g, batch = ring_book
    det = SharedIdentifierRings()
    ids = list(batch.values())
    _, found = _around(det, portfolio, ids)
    expected = _holding(det.run(portfolio), ids)
    assert _holding(found, ids) == expected
    members = {frozenset(m) for _, m in expected}
    # the chain's far end is nine links away; the repeat borrower's old ring is reached through their person
    assert frozenset(g["chain"]) in members
    assert frozenset(g["entity"]) in members
    assert frozenset(g["bridge"]) in members
    assert frozenset(g["ring2"]) in members


def test_hub_decisions_come_from_the_whole_portfolio(ring_book):
    portfolio, g, batch = ring_book
    det = SharedIdentifierRings()
    local, found = _around(det, portfolio, [batch["ring2"]])
    assert set(local.applications["application_id"]) == set(g["ring2"])  # the hub's sharers are not read
    (ring,) = found
    hubs = {e.feature: e for e in ring.evidence}["hubs_suppressed"]
    assert hubs.values == ("phone:+8613900009999",) and "31 people" in hubs.detail
    # judged by the scope's own figures, the switchboard is one application's phone, no hub at all
    (alone,) = det.run(local)
    assert "hubs_suppressed" not in {e.feature for e in alone.evidence}


def test_a_batch_application_linked_to_nothing_reads_nothing(ring_book):
    portfolio, _, batch = ring_book
    local, found = _around(SharedIdentifierRings(), portfolio, [batch["isolated"]])
    assert len(local.applications) == 0 and found == []


# -- guarantee circles ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def circle_book(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("circle-book")
    b = ExportBuilder()
    a = {i: b.business_app(i)["application_id"] for i in (1, 5, 6, 7, 8, 9, 10, 11, 12, 14)}
    for _ in range(20):
        b.app()
    # 互保 closed by the batch: company 2 guarantees 1's loan, then 1 guarantees 2's new loan
    b.guarantee(a[1], "company", "c2", company_uscc(2))
    a[2] = b.business_app(2)["application_id"]
    b.guarantee(a[2], "company", "c1", company_uscc(1))
    # a circle in the history; the batch brings company 5 a new loan without guarantees
    b.guarantee(a[5], "company", "c6", company_uscc(6))
    b.guarantee(a[6], "company", "c5", company_uscc(5))
    new5 = b.business_app(5)["application_id"]
    # company 7 and its legal representative are one unit, in a circle with company 8,
    # which guarantees a chain 8 -> 9 -> 10; the batch brings the representative a personal loan
    b.role(company_uscc(7), "七老板", person_id(700), "legal_rep")
    b.guarantee(a[7], "company", "c8", company_uscc(8))
    b.guarantee(a[8], "person", "七老板", person_id(700))
    b.guarantee(a[9], "company", "c8", company_uscc(8))
    b.guarantee(a[10], "company", "c9", company_uscc(9))
    rep_loan = b.app(applicant_name="七老板", applicant_id_number=person_id(700))["application_id"]
    # and a new loan of company 15 that company 8 guarantees: it stands on the circle
    chain_loan = b.business_app(15)["application_id"]
    b.guarantee(chain_loan, "company", "c8", company_uscc(8))
    # an unrelated circle
    b.guarantee(a[11], "company", "c12", company_uscc(12))
    b.guarantee(a[12], "company", "c11", company_uscc(11))
    # an owner and their company under other keys (entities resolved below): one unit, no circle
    b.role(company_uscc(13), "十三", person_id(1300), "legal_rep")
    alias_loan = b.app(applicant_name="十三", applicant_id_number=person_id(1301))["application_id"]
    b.guarantee(a[14], "person", "十三", person_id(1301))
    b.guarantee(alias_loan, "company", "c14", company_uscc(14))
    store = EmbeddedStore(tmp / "store")
    b.load(store, tmp / "export")
    portfolio = Portfolio(store)
    portfolio.person_entity = pd.Series({person_id(1301): person_id(1300)})
    portfolio.company_entity = pd.Series({company_uscc(14): company_uscc(13)})
    batch = {"mutual": a[2], "borrower": new5, "rep": rep_loan, "alias": alias_loan, "chain": chain_loan}
    return portfolio, a, batch


def test_circle_scope_is_the_touched_guarantee_components(circle_book):
    portfolio, a, batch = circle_book
    local = GuaranteeCircles().scope(portfolio, list(batch.values()))
    assert set(local.applications["application_id"]) == {
        a[1],
        a[2],
        a[5],
        a[6],
        batch["borrower"],
        a[7],
        a[8],
        a[9],
        a[10],
        batch["rep"],
        batch["chain"],
    }
    assert len(local.guarantees) == 9  # 1<->2, 5<->6, 7<->8, the chain 8 -> 9 -> 10 and 8 -> 15


def test_circles_around_the_batch_equal_a_full_run(circle_book):
    portfolio, a, batch = circle_book
    det = GuaranteeCircles()
    ids = list(batch.values())
    _, found = _around(det, portfolio, ids)
    expected = _holding(det.run(portfolio), ids)
    assert _holding(found, ids) == expected
    assert {m for _, m in expected} == {
        tuple(sorted([a[1], a[2]])),
        tuple(sorted([a[5], a[6], batch["borrower"]])),
        # the loans company 8 guarantees directly (9's and the new 15's) are the circle's; 10's is not
        tuple(sorted([a[7], a[8], a[9], batch["rep"], batch["chain"]])),
    }
    (rep_circle,) = [f for f in found if batch["rep"] in f.members]
    chain = {e.feature: e for e in rep_circle.evidence}["guarantee_chain"]
    assert set(chain.values) == {company_uscc(9), company_uscc(10), company_uscc(15)}


def test_economic_units_come_from_the_whole_portfolio(circle_book):
    portfolio, a, batch = circle_book
    det = GuaranteeCircles()
    stats = det.statistics(portfolio)
    assert stats.units[f"Person:{person_id(1300)}"] == stats.units[f"Company:{company_uscc(13)}"]
    part = portfolio.subset([a[14], batch["alias"]])  # its roles are found by raw key: not the owner's
    assert [f.kind for f in det.run(part)] == ["mutual_guarantee"]
    assert det.run(part, statistics=stats) == []
    assert not _holding(det.run(portfolio), [batch["alias"]])


def test_a_scopes_ring_links_are_cut_from_the_whole_books(ring_book):
    """A subset's entity links, cut from the parent's by its link tables' rows,
    equal those built from the subset itself (same rows, order, dtypes, index)."""
    from ringscope.detectors.rings import _parent_entity_links

    portfolio, g, batch = ring_book
    entity_links(portfolio)  # the whole book's, kept on the portfolio
    for ids in (list(batch.values()), g["chain"], g["entity"] + g["hub"], [batch["isolated"]]):
        cut = _parent_entity_links(portfolio.subset(ids))
        assert cut is not None
        rebuilt = portfolio.subset(ids)
        held = portfolio.derived.pop("ring_links")
        try:
            pd.testing.assert_frame_equal(cut, entity_links(rebuilt))
        finally:
            portfolio.derived["ring_links"] = held
