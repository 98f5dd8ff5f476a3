"""Emergency-contact loops and hub contacts: rings found, families not."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from ringscope.detectors.contacts import ContactLoops, contact_edges, contact_owner_pairs, contact_sccs
from ringscope.graph.embedded import EmbeddedStore
from tests.detectors.builder import ExportBuilder

START = datetime(2025, 1, 6, 9, 0)
HOME = "上海市普陀区青年路991号嘉苑20栋2单元1102室"


def _plant(b: ExportBuilder) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    # background: every applicant names one contact nobody else names
    bg = [b.app(applied_at=START + timedelta(days=3 * i)) for i in range(80)]
    for i, row in enumerate(bg):
        b.contact(row["application_id"], f"联系人{i}", f"137{i:08d}", "parent" if i % 2 else "friend")
    out["background"] = [r["application_id"] for r in bg]

    # a ring of three unrelated people naming each other round a loop, within two days
    ring = [
        b.app(
            applied_at=START + timedelta(days=120, hours=3 * j),
            applicant_name=name,
            applicant_phone=phone,
            applicant_address=addr,
            label="fraud" if j == 0 else "",
        )
        for j, (name, phone, addr) in enumerate(
            [
                ("赵子龙", "13800000001", "广东省深圳市福田区深南大道1号1栋101室"),
                ("钱多多", "13800000002", "浙江省宁波市鄞州区天童路88号6栋1202室"),
                ("孙小红", "13800000003", "四川省成都市武侯区人民南路4段9号3栋701室"),
            ]
        )
    ]
    for j, relation in enumerate(["friend", "colleague", "friend"]):
        nxt = ring[(j + 1) % 3]
        b.contact(ring[j]["application_id"], nxt["applicant_name"], nxt["applicant_phone"], relation)
    out["ring"] = [r["application_id"] for r in ring]

    # two unrelated friends naming each other (a pair, different surnames and homes)
    pair = [
        b.app(applied_at=START + timedelta(days=150 + j), applicant_name=n, applicant_phone=p)
        for j, (n, p) in enumerate([("周大福", "13800000011"), ("吴小飞", "13800000012")])
    ]
    b.contact(pair[0]["application_id"], "吴小飞", "13800000012", "friend")
    b.contact(pair[1]["application_id"], "周大福", "13800000011", "friend")
    out["pair"] = [r["application_id"] for r in pair]

    # spouses at one home (typed 路 and 道), naming each other, months apart
    couple = [
        b.app(
            applied_at=START + timedelta(days=10),
            applicant_name="张雪梅",
            applicant_phone="13800000021",
            applicant_address=HOME,
        ),
        b.app(
            applied_at=START + timedelta(days=200),
            applicant_name="李新冬",
            applicant_phone="13800000022",
            applicant_address=HOME.replace("上海市", "上海").replace("路", "道"),
        ),
    ]
    b.contact(couple[0]["application_id"], "李新冬", "13800000022", "spouse")
    b.contact(couple[1]["application_id"], "张雪梅", "13800000021", "spouse")
    # and their son, at the same home, naming his mother, who names him
    son = b.app(
        applied_at=START + timedelta(days=230),
        applicant_name="李明",
        applicant_phone="13800000023",
        applicant_address=HOME,
    )
    b.contact(son["application_id"], "张雪梅", "13800000021", "parent")
    b.contact(couple[0]["application_id"], "李明", "13800000023", "child")
    out["family"] = [r["application_id"] for r in couple] + [son["application_id"]]

    # a broker's phone named by five unrelated applicants within a week (it applies for nothing)
    hub = [
        b.app(applied_at=START + timedelta(days=300, hours=20 * j), applicant_name=n)
        for j, n in enumerate(["冯一", "陈二", "褚三", "卫四", "蒋五"])
    ]
    for row in hub:
        b.contact(row["application_id"], "王经理" if row is not hub[4] else "小王", "13999990000", "friend")
    out["hub"] = [r["application_id"] for r in hub]

    # three siblings naming their father, years apart
    kids = [
        b.app(applied_at=START + timedelta(days=5 + 120 * j), applicant_name=n)
        for j, n in enumerate(["韩梅", "韩雷", "韩雪"])
    ]
    for row in kids:
        b.contact(row["application_id"], "韩建国", "13999991111", "parent")
    out["siblings"] = [r["application_id"] for r in kids]
    return out


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("contacts")
    b = ExportBuilder(start=START)
    apps = _plant(b)
    store = EmbeddedStore(tmp / "store")
    b.load(store, tmp / "export")
    return apps, store, ContactLoops().run(store)


def test_three_loop_found_with_path_and_relations(planted):
    apps, _, findings = planted
    (loop,) = [f for f in findings if f.kind == "contact_loop"]
    assert set(loop.members) == set(apps["ring"])
    evidence = {e.feature: e for e in loop.evidence}
    cycle = evidence["contact_cycle"].detail
    for app_id in apps["ring"]:
        assert app_id in cycle
    for phone in ("+8613800000001", "+8613800000002", "+8613800000003"):
        assert phone in cycle
        assert ("Phone", phone) in loop.shared
    assert "colleague" in cycle and "friend" in cycle
    assert evidence["unrelated_contacts"].contribution == pytest.approx(0.2)
    assert evidence["known_bad_members"].values == (1, 1)
    assert loop.score > 0.8
    assert abs(sum(e.contribution for e in loop.evidence) - loop.score) < 1e-9


def test_family_loops_not_reported(planted):
    apps, _, findings = planted
    flagged = {m for f in findings for m in f.members}
    assert not flagged & set(apps["family"])
    assert not flagged & set(apps["siblings"])
    assert not flagged & set(apps["background"])


def test_unrelated_pair_scores_below_ring(planted):
    apps, _, findings = planted
    (pair,) = [f for f in findings if set(f.members) == set(apps["pair"])]
    (loop,) = [f for f in findings if f.kind == "contact_loop"]
    assert pair.kind == "mutual_contacts"
    assert pair.score < loop.score - 0.2


def test_broker_hub_found_with_inconsistent_names(planted):
    apps, _, findings = planted
    (hub,) = [f for f in findings if f.kind == "hub_contact"]
    assert set(hub.members) == set(apps["hub"])
    assert hub.shared == (("Phone", "+8613999990000"),)
    evidence = {e.feature: e for e in hub.evidence}
    assert evidence["hub_contact"].values[:2] == ("+8613999990000", 5)
    assert evidence["inconsistent_contact_names"].values == ("小王", "王经理")
    assert evidence["time_compactness"].values[0] < 4


def test_family_hub_skipped_even_when_threshold_is_low(planted):
    apps, store, _ = planted
    findings = ContactLoops(hub_quantile=0.5, min_hub_namers=3).run(store)
    flagged = {m for f in findings for m in f.members}
    assert not flagged & set(apps["siblings"])
    assert flagged >= set(apps["hub"])


def test_edges_and_sccs_columnar():
    contacts = pd.DataFrame(
        {
            "application_id": ["a", "b", "c", "a2"],
            "phone": ["pb", "pc", "pa", "pa"],
            "contact_name": ["B", "C", "A", "A"],
            "relation": ["friend"] * 4,
        }
    )
    phones = pd.DataFrame({"application_id": ["a", "b", "c", "a2"], "identifier": ["pa", "pb", "pc", "pa2"]})
    identity = pd.Series({"a": "A", "a2": "A", "b": "B", "c": "C"})
    edges = contact_edges(contacts, phones, identity)
    # a2 naming a's phone is one person naming themself: dropped
    assert sorted(map(tuple, edges[["src", "dst"]].values.tolist())) == [("a", "b"), ("b", "c"), ("c", "a")]
    assert sorted(contact_sccs(edges).index) == ["a", "b", "c"]


@pytest.mark.parametrize(
    "namers, named, owners, owned, person, expected",
    [
        # a names b's phone, b names a's: one link each way
        (["a", "b"], ["pb", "pa"], ["a", "b"], ["pa", "pb"], None, [(0, 1), (1, 0)]),
        # a phone with two owners: both, in the phone rows' order
        (["a"], ["p"], ["c", "b"], ["p", "p"], None, [(0, 0), (0, 1)]),
        # a naming its own phone twice, then b's phone twice: the first naming of the link only
        (["a", "a", "a", "a"], ["pa", "pa", "pb", "pb"], ["a", "b"], ["pa", "pb"], None, [(2, 1)]),
        # a2 naming a's phone: kept without identities, left out when a and a2 are one person
        (["a2", "a2"], ["pa", "pb"], ["a", "b"], ["pa", "pb"], None, [(0, 0), (1, 1)]),
        (["a2", "a2"], ["pa", "pb"], ["a", "b"], ["pa", "pb"], {"a": "A", "a2": "A", "b": "B"}, [(1, 1)]),
        # a phone nobody owns, and a phone of another spelling: no link
        (["a", "a"], ["px", "+86pb"], ["b"], ["pb"], None, []),
        ([], [], ["b"], ["pb"], None, []),
    ],
)
def test_contact_owner_pairs(namers, named, owners, owned, person, expected):
    assert contact_owner_pairs(namers, named, owners, owned, person) == expected


@pytest.mark.parametrize("seed", range(3))
def test_contact_owner_pairs_equal_the_merge(seed):
    """The pairs are the rows of pandas' merge of the namings on the phone
    rows, in its order, less self-naming, one person's links and repeated
    (namer, owner, phone) links; leaving ``person`` out and dropping one
    person's links afterwards gives the same pairs."""
    rng = np.random.default_rng(seed)
    for _ in range(40):
        apps = [f"A{i}" for i in range(int(rng.integers(1, 8)))]
        phones = [f"p{i}" for i in range(int(rng.integers(1, 5)))]
        n, m = int(rng.integers(0, 30)), int(rng.integers(0, 12))
        namers, named = rng.choice(apps, n).tolist(), rng.choice(phones, n).tolist()
        owners, owned = rng.choice(apps, m).tolist(), rng.choice(phones, m).tolist()
        person = {a: f"P{int(rng.integers(0, 4))}" for a in apps}
        left = pd.DataFrame({"src": namers, "phone": named, "i": np.arange(n)})
        right = pd.DataFrame({"dst": owners, "phone": owned, "j": np.arange(m)})
        joined = left.merge(right, on="phone")
        joined = joined[(joined["src"] != joined["dst"]) & (joined["src"].map(person) != joined["dst"].map(person))]
        joined = joined.drop_duplicates(["src", "dst", "phone"])
        expected = list(zip(joined["i"].tolist(), joined["j"].tolist()))
        assert contact_owner_pairs(namers, named, owners, owned, person) == expected
        unfiltered = contact_owner_pairs(namers, named, owners, owned)
        assert [(i, j) for i, j in unfiltered if person[namers[i]] != person[owners[j]]] == expected


@pytest.mark.parametrize(
    "params, message",
    [
        (
            dict(max_cycle_length=1),
            "The 'max_cycle_length' parameter of ContactLoops must be an int >= 2. Got 1 instead.",
        ),
        (dict(max_cycles=0), "The 'max_cycles' parameter of ContactLoops must be an int >= 1. Got 0 instead."),
        (dict(min_hub_namers=1), "The 'min_hub_namers' parameter of ContactLoops must be an int >= 2. Got 1 instead."),
        (
            dict(hub_quantile=1.0),
            "The 'hub_quantile' parameter of ContactLoops must be a float in [0.5, 1). Got 1.0 instead.",
        ),
        (dict(max_household=-1), "The 'max_household' parameter of ContactLoops must be an int >= 0. Got -1 instead."),
    ],
)
def test_parameter_validation(params, message):
    with pytest.raises(ValueError) as err:
        ContactLoops(**params)
    assert str(err.value) == message


def test_loop_and_hub_found_on_both_stores(store, tmp_path):
    b = ExportBuilder(start=START)
    apps = _plant(b)
    b.load(store, tmp_path / "export")
    findings = ContactLoops().run(store)
    by_kind = {f.kind: set(f.members) for f in findings}
    assert by_kind == {
        "contact_loop": set(apps["ring"]),
        "mutual_contacts": set(apps["pair"]),
        "hub_contact": set(apps["hub"]),
    }


def test_loop_longer_than_the_enumeration_bound_is_still_a_loop(tmp_path):
    # twelve unrelated applicants A→B→…→L→A within a week: no cycle of <= max_cycle_length (8)
    # persons exists, yet the component is one loop (before: no finding at all)
    b = ExportBuilder(start=START)
    ring = [b.app(applied_at=START + timedelta(hours=12 * j), applicant_phone=f"1380000{j:04d}") for j in range(12)]
    for j, row in enumerate(ring):
        nxt = ring[(j + 1) % len(ring)]
        b.contact(row["application_id"], nxt["applicant_name"], nxt["applicant_phone"], "friend")
    for _ in range(20):
        b.app()
    store = EmbeddedStore(tmp_path / "store")
    b.load(store, tmp_path / "export")
    detector = ContactLoops()
    (loop,) = [f for f in detector.run(store) if f.kind == "contact_loop"]
    assert set(loop.members) == {r["application_id"] for r in ring}
    cycle = {e.feature: e for e in loop.evidence}["contact_cycle"]
    assert "cycle of 12 applicants" in cycle.detail and len(cycle.values) == 1
    assert cycle.values[0].count("→") == 11 and all(m in cycle.values[0] for m in loop.members)
    assert loop.score > 0.7


@pytest.mark.parametrize("seed", range(5))
def test_contact_edges_of_a_few_rows_equal_the_join(seed):
    """The set-based join for a scope's few rows gives the frame the hash join
    gives: same rows in the same order, same dtypes (repeated phones, several
    owners of one phone, self-naming, one person's two applications)."""
    from ringscope.detectors.contacts import _contact_edges_few, _contact_edges_joined

    cols = ["src", "dst", "phone", "contact_name", "relation"]
    rng = np.random.default_rng(seed)
    for trial in range(40):
        apps = [f"A{i}" for i in range(int(rng.integers(1, 8)))]
        phones_used = [f"p{i}" for i in range(int(rng.integers(1, 5)))]
        n, m = int(rng.integers(1, 30)), int(rng.integers(1, 12))
        contacts = pd.DataFrame(
            {
                "application_id": rng.choice(apps, n),
                "phone": rng.choice(phones_used, n),
                "contact_name": rng.choice(["王伟", "李娜", None], n),
                "relation": rng.choice(["parent", "friend", None], n),
            }
        )
        phones = pd.DataFrame({"application_id": rng.choice(apps, m), "identifier": rng.choice(phones_used, m)})
        if trial % 2:  # Arrow-backed text, as the portfolio's tables are
            contacts = contacts.astype({"application_id": "str", "phone": "str"})
            phones = phones.astype("str")
        identity = pd.Series({a: f"P{int(rng.integers(0, 4))}" for a in apps})
        few = _contact_edges_few(contacts, phones, identity, cols)
        assert few is not None
        pd.testing.assert_frame_equal(few, _contact_edges_joined(contacts, phones, identity, cols))
