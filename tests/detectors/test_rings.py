"""Shared-identifier rings: planted rings found, hubs and families not."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from ringscope.detectors.rings import SharedIdentifierRings
from ringscope.graph.embedded import EmbeddedStore
from tests.detectors.builder import ExportBuilder

RING_START = datetime(2025, 6, 1, 10, 0)


def _portfolio() -> tuple[ExportBuilder, dict[str, list[str]]]:
    b = ExportBuilder()
    groups: dict[str, list[str]] = {k: [] for k in ("ring", "nat", "family", "repeat", "tower", "honest")}
    for _ in range(30):  # background of honest, unlinked applications
        groups["honest"].append(b.app()["application_id"])
    # an identity ring: six people, one device and two accounts between them, three days
    for i in range(6):
        row = b.app(
            applied_at=RING_START + timedelta(hours=11 * i),
            device_id="ring-device-01",
            bank_account="6228480099990000017" if i % 2 else "6228480099990000025",
            label="",
        )
        groups["ring"].append(row["application_id"])
    # carrier NAT: forty unrelated people on one IP over forty days
    for i in range(40):
        row = b.app(applied_at=datetime(2025, 2, 1) + timedelta(days=i), ip="100.64.1.1")
        groups["nat"].append(row["application_id"])
    # office tower: twenty unrelated applicants giving one building as address
    for i in range(20):
        row = b.app(
            applied_at=datetime(2025, 3, 1) + timedelta(days=2 * i),
            applicant_address="上海市浦东新区世纪大道100号环球金融中心",
        )
        groups["tower"].append(row["application_id"])
    # a family: same surname, same flat, naming each other as emergency contacts
    family = [
        b.app(
            applicant_name=name,
            applicant_address="江苏省南京市鼓楼区中山路5号2栋301室",
            applied_at=datetime(2025, 4, 1) + timedelta(days=30 * k),
        )
        for k, name in enumerate(["李建国", "李秀英", "李明"])
    ]
    for row in family:
        groups["family"].append(row["application_id"])
        for other in family:
            if other is not row:
                b.contact(row["application_id"], other["applicant_name"], other["applicant_phone"], "parent")
    # a repeat borrower: one person, three loans, same phone and device
    first = b.app(applied_at=datetime(2025, 1, 10))
    groups["repeat"].append(first["application_id"])
    for k in (1, 2):
        row = b.app(
            applicant_name=first["applicant_name"],
            applicant_id_number=first["applicant_id_number"],
            applicant_phone=first["applicant_phone"],
            device_id=first["device_id"],
            applied_at=datetime(2025, 1, 10) + timedelta(days=120 * k),
        )
        groups["repeat"].append(row["application_id"])
    return b, groups


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rings")
    b, groups = _portfolio()
    store = EmbeddedStore(tmp / "store")
    b.load(store, tmp / "export")
    return store, groups, SharedIdentifierRings().run(store)


def test_planted_ring_is_one_finding_with_its_evidence(planted):
    _, groups, findings = planted
    ring = [f for f in findings if set(groups["ring"]) & set(f.members)]
    assert len(ring) == 1
    assert set(ring[0].members) == set(groups["ring"])
    assert ring[0].score >= 0.5
    evidence = {e.feature: e for e in ring[0].evidence}
    assert "ring-device-01" in " ".join(evidence["shared_identifiers"].values).lower()
    assert ("Device", "ring-device-01") in ring[0].shared
    assert len(ring[0].entities) == 6
    assert abs(sum(e.contribution for e in ring[0].evidence) - ring[0].score) < 1e-6


def test_hubs_do_not_glue_rings(planted):
    _, groups, findings = planted
    flagged = {m for f in findings for m in f.members}
    assert not flagged & set(groups["nat"]), "a carrier NAT IP glued unrelated applicants"
    assert not flagged & set(groups["tower"]), "an office tower address glued unrelated applicants"
    assert not flagged & set(groups["honest"])


def test_repeat_borrower_is_not_a_ring(planted):
    _, groups, findings = planted
    assert not {m for f in findings for m in f.members} & set(groups["repeat"])


def test_family_scores_low(planted):
    _, groups, findings = planted
    family = [f for f in findings if set(groups["family"]) & set(f.members)]
    ring = [f for f in findings if set(groups["ring"]) & set(f.members)]
    assert all(f.score < 0.5 for f in family)
    assert all(f.score < ring[0].score for f in family)


def test_known_bad_members_raise_the_score(tmp_path):
    scores = []
    for label in ("", "fraud"):
        b = ExportBuilder()
        for i in range(4):
            b.app(device_id="shared-dev", applied_at=RING_START + timedelta(days=i), label=label if i == 0 else "")
        store = EmbeddedStore(tmp_path / f"s{label}")
        b.load(store, tmp_path / f"e{label}")
        (finding,) = SharedIdentifierRings().run(store)
        scores.append(finding.score)
    assert scores[1] > scores[0]


@pytest.mark.parametrize(
    "params, message",
    [
        ({"min_people": 1}, "The 'min_people' parameter of SharedIdentifierRings must be an int >= 2. Got 1 instead."),
        (
            {"cohesion_threshold": 0},
            "'cohesion_threshold' parameter of SharedIdentifierRings must be a number in (0, 1]",
        ),
        ({"fence_mads": -1}, "'fence_mads' parameter"),
    ],
)
def test_bad_parameters_fail_early(params, message):
    with pytest.raises(ValueError) as err:
        SharedIdentifierRings(**params)
    assert message in str(err.value)


def test_shared_links_on_codes_are_the_text_group_by():
    """Links whose identifier two or more entities use, first per application
    and identifier: what the group-by of the text keys gave (rows, order,
    types), with missing identifiers, kinds and entities."""
    from ringscope.detectors.rings import _shared_links

    rng = np.random.default_rng(3)
    for trial in range(20):
        n = int(rng.integers(1, 400))
        links = pd.DataFrame(
            {
                "application_id": [f"a{i}" for i in rng.integers(0, max(1, n // 3), n)],
                "kind": rng.choice(["ip", "device", "phone", None], n, p=[0.4, 0.3, 0.28, 0.02]),
                "identifier": [None if rng.random() < 0.03 else f"x{i}" for i in rng.integers(0, max(1, n // 4), n)],
                "entity": [None if rng.random() < 0.03 else f"p{i}" for i in rng.integers(0, max(1, n // 5), n)],
            }
        ).astype("str" if trial % 2 else object)
        people = links.groupby(["kind", "identifier"], sort=False)["entity"].transform("nunique")
        expected = links[people >= 2].drop_duplicates(["application_id", "kind", "identifier"])
        pd.testing.assert_frame_equal(_shared_links(links), expected)


def _hubs_on_text(links: pd.DataFrame, labels: pd.Series | None) -> pd.DataFrame:
    """The hub table as the group-bys and the self-merge of the text links
    computed it before it moved to integer codes: the reference."""
    from ringscope.detectors.rings import BAD_LABELS, _shared_links, hub_decisions

    shared = _shared_links(links)
    per_id = shared.groupby(["kind", "identifier"], sort=False).agg(
        apps=("application_id", "nunique"), people=("entity", "nunique")
    )
    keys = pd.MultiIndex.from_arrays(
        [shared["kind"].to_numpy(), shared["identifier"].to_numpy()], names=["kind", "identifier"]
    )
    codes, uniques = keys.factorize()
    frame = pd.DataFrame({"app": shared["application_id"].to_numpy(), "id": codes}).drop_duplicates()
    pairs = frame.merge(frame, on="app", suffixes=("", "_other"))
    pairs = pairs[pairs["id"] != pairs["id_other"]]
    count = pairs.groupby(["id", "id_other"])["app"].transform("size")
    co = pairs[count >= 2].drop_duplicates(["id", "app"]).groupby("id").size()
    total = frame.groupby("id").size()
    ratio = co.reindex(range(len(uniques))).fillna(0).to_numpy() / total.reindex(range(len(uniques))).to_numpy()
    per_id["cohesion"] = pd.Series(ratio.astype(float), index=uniques).reindex(per_id.index).fillna(0.0)
    if labels is not None and len(labels):
        bad = shared["application_id"].map(labels).isin(BAD_LABELS)
        bad_rate = bad.groupby([shared["kind"], shared["identifier"]]).mean().reindex(per_id.index)
    else:
        bad_rate = None
    return hub_decisions(per_id, bad_rate, labels, 3.0, 5, 0.5)


@pytest.mark.parametrize("trial", range(24))
def test_hub_table_on_codes_is_the_text_group_by(trial):
    """The hub table from integer codes is the one the text group-bys and the
    self-merge per application gave: rows, order, values and types, with
    missing kinds, identifiers and entities, farms that share several
    identifiers (cohesion) and labels."""
    from ringscope.detectors.rings import identifier_hubs

    rng = np.random.default_rng(trial)
    n = int(rng.integers(1, 3000 if trial % 4 == 0 else 400))
    apps = max(1, n // 3)
    links = pd.DataFrame(
        {
            "application_id": [f"a{i}" for i in rng.integers(0, apps, n)],
            "kind": rng.choice(["ip", "device", "phone", "address", None], n, p=[0.3, 0.3, 0.2, 0.18, 0.02]),
            "identifier": [None if rng.random() < 0.03 else f"x{i}" for i in rng.integers(0, max(1, n // 6), n)],
            "entity": [None if rng.random() < 0.03 else f"p{i}" for i in rng.integers(0, max(1, n // 5), n)],
        }
    )
    # a farm: applications of different people sharing a device and a phone (cohesive identifiers)
    farm = [(f"a{i}", kind, f"farm-{kind}", f"q{i}") for i in range(6) for kind in ("device", "phone")]
    links = pd.DataFrame(list(links.itertuples(index=False)) + farm, columns=links.columns)
    links = links.astype("str" if trial % 2 else object)  # one Arrow chunk, as the rings' links are
    labels = None
    if trial % 3:
        ids = [f"a{i}" for i in range(apps)]
        labels = pd.Series(rng.choice(["fraud", "good", None], len(ids), p=[0.2, 0.7, 0.1]), index=ids)
    expected = _hubs_on_text(links, labels)
    got = identifier_hubs(links, labels=labels)
    if expected.empty:
        assert got.empty
        return
    pd.testing.assert_frame_equal(got, expected)
    assert got.loc[("device", "farm-device"), "cohesion"] > 0


def test_sorted_codes_tell_apart_what_the_dictionary_codes_do():
    """The identifiers' codes by sort give equal codes to exactly the values
    (missing ones together) that Arrow's dictionary codes make equal."""
    from ringscope.detectors.keys import text_codes
    from ringscope.detectors.rings import _sorted_codes

    rng = np.random.default_rng(11)
    assert _sorted_codes(pd.Series(["b", "a", None, "b", None])).tolist() == [1, 0, 2, 1, 2]
    assert _sorted_codes(pd.Series([None, None], dtype=object)).tolist() == [0, 0]
    for trial in range(100):
        n = int(rng.integers(1, 300))
        values = pd.Series([None if rng.random() < 0.1 else f"x{i}" for i in rng.integers(0, max(1, n // 3), n)])
        values = values.astype("str" if trial % 2 else object)
        got, want = _sorted_codes(values), text_codes(values)
        assert (pd.factorize(got)[0] == pd.factorize(want)[0]).all()
