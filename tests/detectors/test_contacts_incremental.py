"""Contact loops and hubs around a nightly batch equal those of a full run.

A history is ingested, then a batch whose applications close a long loop,
join an existing one, join a hub as its newest namer, or own a phone many
history applicants already name. ``detect_around`` the batch must find
what a full run finds for it (members, score, evidence), reading only the
loop components and hub phones the batch touches.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from ringscope.detectors.contacts import ContactLoops, ContactStatistics
from ringscope.detectors.incremental import detect_around
from ringscope.detectors.portfolio import Portfolio
from ringscope.graph.embedded import EmbeddedStore
from tests.detectors.builder import ExportBuilder

START = datetime(2025, 1, 6, 9, 0)
BROKER = "13999990000"  # named by history applicants, then by one more in the batch
ORGANISER = "13999991234"  # named by history applicants; its owner applies in the batch
LONG_END = "13810009999"  # named in history by the long chain's last link; the batch applicant's phone
JOIN_END = "13820009999"  # named in history by a loop member; the batch applicant's phone


def _history(b: ExportBuilder) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    # background: every applicant names one contact nobody else names (the namer distribution's bulk)
    bg = [b.app(applied_at=START + timedelta(hours=6 * i)) for i in range(300)]
    for i, row in enumerate(bg):
        b.contact(row["application_id"], f"联系人{i}", f"137{i:08d}", "friend")
    out["background"] = [r["application_id"] for r in bg]
    # a chain of nine naming the next, closed into a 3-loop at its start; its end names a phone nobody owns yet
    chain = [b.app(applied_at=START + timedelta(days=80, hours=k), applicant_phone=f"1381000{k:04d}") for k in range(9)]
    for k, row in enumerate(chain):
        b.contact(row["application_id"], "朋友", chain[k + 1]["applicant_phone"] if k < 8 else LONG_END)
    b.contact(chain[2]["application_id"], "朋友", chain[0]["applicant_phone"], "colleague")
    out["chain"] = [r["application_id"] for r in chain]
    # a 3-loop, one of whose members also names a phone nobody owns yet
    loop = [b.app(applied_at=START + timedelta(days=90, hours=k), applicant_phone=f"1382000{k:04d}") for k in range(3)]
    for k, row in enumerate(loop):
        b.contact(row["application_id"], "朋友", loop[(k + 1) % 3]["applicant_phone"])
    b.contact(loop[1]["application_id"], "老乡", JOIN_END)
    out["loop"] = [r["application_id"] for r in loop]
    # four applicants name the broker within days; the broker applied long before
    out["broker_owner"] = [b.app(applied_at=START + timedelta(days=1), applicant_phone=BROKER)["application_id"]]
    namers = [b.app(applied_at=START + timedelta(days=100, hours=10 * j)) for j in range(4)]
    for j, row in enumerate(namers):
        b.contact(row["application_id"], "王经理" if j % 2 else "小王", BROKER)
    out["broker_namers"] = [r["application_id"] for r in namers]
    # five applicants name the organiser, who has not applied
    org = [b.app(applied_at=START + timedelta(days=110, hours=10 * j)) for j in range(5)]
    for row in org:
        b.contact(row["application_id"], "张总", ORGANISER)
    out["organiser_namers"] = [r["application_id"] for r in org]
    return out


def _batch(b: ExportBuilder) -> dict[str, str]:
    at = START + timedelta(days=120)
    closes = b.app(applied_at=at, applicant_phone=LONG_END)
    b.contact(closes["application_id"], "朋友", "13810000000")  # the chain's first
    joins = b.app(applied_at=at + timedelta(hours=1), applicant_phone=JOIN_END)
    b.contact(joins["application_id"], "朋友", "13820000000")
    namer = b.app(applied_at=at + timedelta(hours=2))
    b.contact(namer["application_id"], "王经理", BROKER)
    owner = b.app(applied_at=at + timedelta(hours=3), applicant_phone=ORGANISER)
    # names a background contact: a phone two applicants name is no hub, its other namer stays out
    lone = b.app(applied_at=at + timedelta(hours=4))
    b.contact(lone["application_id"], "联系人5", f"137{5:08d}")
    return {
        "closes": closes["application_id"],
        "joins": joins["application_id"],
        "namer": namer["application_id"],
        "owner": owner["application_id"],
        "lone": lone["application_id"],
    }


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("contacts-incremental")
    store = EmbeddedStore(tmp / "store")
    history = ExportBuilder(start=START)
    old = _history(history)
    history.load(store, tmp / "history")
    batch = ExportBuilder(start=START, first_index=10_000)
    new = _batch(batch)
    batch.load(store, tmp / "batch")
    return old, new, Portfolio(store)


def _holding(findings, ids):
    return {(f.kind, tuple(sorted(f.members))): f for f in findings if set(ids) & set(f.members)}


def test_batch_findings_equal_a_full_run(night):
    old, new, portfolio = night
    ids = sorted(new.values())
    full = _holding(ContactLoops().run(portfolio), ids)
    around = detect_around(portfolio, ids, ["contact_loops"])
    assert not around.errors
    got = _holding(around.findings, ids)
    assert sorted(got) == sorted(full)
    for key, finding in full.items():
        assert got[key].score == pytest.approx(finding.score, abs=1e-12)
        assert got[key].evidence_json() == finding.evidence_json()
        assert got[key].summary == finding.summary
    members = {m for key in full for m in key[1]}
    # every planted case is there: the long loop closed, the loop joined, both hubs
    assert set(old["chain"]) | {new["closes"]} in [set(k[1]) for k in full]
    assert set(old["loop"]) | {new["joins"]} in [set(k[1]) for k in full]
    assert set(old["broker_namers"]) | set(old["broker_owner"]) | {new["namer"]} in [set(k[1]) for k in full]
    assert set(old["organiser_namers"]) | {new["owner"]} in [set(k[1]) for k in full]
    assert new["lone"] not in members


def test_scope_holds_whole_components_and_hub_phones_only(night):
    old, new, portfolio = night
    detector = ContactLoops()
    stats = detector.statistics(portfolio)
    scope = set(detector.scope(portfolio, sorted(new.values()), stats).applications["application_id"])
    expected = (
        set(new.values())
        | set(old["chain"])
        | set(old["loop"])
        | set(old["broker_owner"])
        | set(old["broker_namers"])
        | set(old["organiser_namers"])
    )
    # the closed loop is ten applicants long: longer than max_cycle_length, found whole
    assert len(old["chain"]) + 1 > detector.max_cycle_length
    assert scope == expected
    # the background applicant who names the same phone as the lone batch applicant is not read
    assert old["background"][5] not in scope


def test_a_new_applicant_closing_a_chain_makes_one_loop_of_it(night):
    old, new, portfolio = night
    before = [
        f
        for f in ContactLoops().run(portfolio.subset(set(portfolio.applications["application_id"]) - set(new.values())))
        if set(old["chain"]) & set(f.members)
    ]
    assert [sorted(f.members) for f in before] == [sorted(old["chain"][:3])]
    (after,) = [f for f in detect_around(portfolio, [new["closes"]], ["contact_loops"]).findings]
    assert set(after.members) == set(old["chain"]) | {new["closes"]}


def test_hub_evidence_is_judged_by_the_whole_book(night):
    _, new, portfolio = night
    detector = ContactLoops()
    stats = detector.statistics(portfolio)
    scope = detector.scope(portfolio, [new["namer"]], stats)
    full = {f.members: f for f in detector.run(portfolio) if f.kind == "hub_contact"}
    (with_stats,) = [f for f in detector.run(scope, statistics=stats) if new["namer"] in f.members]
    assert with_stats.evidence_json() == full[with_stats.members].evidence_json()
    # the scope on its own knows a handful of phones: its tail share and phone count are not the book's
    alone = [f for f in detector.run(scope) if new["namer"] in f.members]
    assert [f.evidence_json() for f in alone] != [with_stats.evidence_json()]
    assert stats.phones > len(scope.contacts["phone"].unique())


def test_statistics_hold_the_namer_distribution():
    import numpy as np

    stats = ContactStatistics(
        threshold=3, namer_counts=np.array([1, 2, 5]), phones_at_least=np.array([10, 4, 1, 0]), phones=10
    )
    assert stats.tail_share(1) == 1.0 and stats.tail_share(3) == 0.1 and stats.tail_share(6) == 0.0
    assert ContactStatistics(None, np.zeros(0, dtype=int), np.zeros(1, dtype=int), 0).tail_share(4) == 0.0
