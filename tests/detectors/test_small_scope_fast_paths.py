"""The plain-Python shortcuts of small scopes give what the pandas paths give.

Each shortcut of one application's detection is held here to the path it
replaces, which stays in the code for large inputs (switched on by setting
its size limit to nothing):

* identity's run asks plain sets whether an ID sits under two names or two
  phones, or two records share a name + birth date or an entity, before its
  group-bys, and computes the pinyin key only for IDs under two names;
* device velocity finds the identifiers a cluster's members share, and the
  five it names, on lists and dicts instead of a merge and group-bys, and a
  few applications' times in whole seconds from their integer ticks;
* ``InProcess.links_of_kinds`` finds a few applications' links through the
  book's row maps instead of an ``isin`` over every link;
* a sub-portfolio cuts its guarantees, roles, persons and companies on first use;
* guarantee circles look a few applications' borrower units up one key at a time;
* contact loops find the loops and hubs around a few applications on lists
  and dicts instead of frames of their contacts, phones and applications;
* a scope's rings test for households (family naming links joining all of a
  ring's people) on dicts and sets, with the family weights of each link.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ringscope.detectors import engine, guarantees, identity, velocity
from ringscope.detectors.guarantees import GuaranteeCircles
from ringscope.detectors.identity import IdentityResolution
from ringscope.detectors.keys import text_list
from ringscope.detectors.portfolio import Portfolio
from ringscope.detectors.velocity import DeviceVelocity
from ringscope.graph.embedded import EmbeddedStore
from ringscope.ingest.pipeline import ingest_folder
from ringscope.ingest.synthetic import GeneratorConfig, generate_portfolio


def _keys(found: list) -> list:
    return [
        (f.finding_id, f.kind, f.members, round(f.score, 12), f.summary, f.shared, [e.detail for e in f.evidence])
        for f in found
    ]


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    folder = tmp_path_factory.mktemp("small_scopes")
    config = GeneratorConfig(
        applications=900,
        seed=29,
        identity_rings=0.04,
        synthetic_identities=0.03,
        device_farms=0.05,
        guarantee_circles=0.04,
        mess_rate=0.12,
    )
    generate_portfolio(config, folder / "data")
    store = EmbeddedStore(folder / "store")
    ingest_folder(folder / "data", store, rejects_path=folder / "rejects.csv")
    portfolio = Portfolio(store)
    detector = IdentityResolution(workers=1)
    stats = detector.statistics(portfolio)
    portfolio.use_entities(detector.resolve(portfolio, stats))
    return portfolio, stats


def test_identity_with_set_checks_equals_the_group_bys(book, monkeypatch):
    portfolio, stats = book
    detector = IdentityResolution(workers=1)
    ids = portfolio.applications["application_id"].astype(str).tolist()
    scopes = [detector.scope(portfolio, [a], stats) for a in ids[::3]]
    fast = [_keys(detector.run(scope, statistics=stats)) for scope in scopes]
    whole_fast = _keys(detector.run(portfolio, statistics=stats))
    monkeypatch.setattr(identity, "_FEW_RECORDS", -1)  # every call takes the group-bys
    slow = [_keys(detector.run(scope, statistics=stats)) for scope in scopes]
    assert fast == slow
    assert whole_fast == _keys(detector.run(portfolio, statistics=stats))
    kinds = {k[1] for found in slow for k in found}
    # not vacuous: the scopes hold conflicts of each kind the shortcuts skip
    assert {"id_multiple_names", "name_dob_multi_id"} <= kinds or {"id_multiple_names", "fuzzy_duplicate"} <= kinds
    assert sum(not found for found in slow) > 0


@pytest.mark.parametrize("seed", range(4))
def test_identity_set_checks_on_awkward_values(seed):
    rng = np.random.default_rng(seed)
    for _ in range(200):
        n = int(rng.integers(0, 8))
        persons = list(rng.choice(["p1", "p2", "anon:x", None], n))
        values = list(rng.choice(["a", "b", "", None, np.nan, pd.NA], n))
        for skip_empty in (False, True):
            frame = pd.DataFrame({"person": pd.Series(persons, dtype=object), "v": pd.Series(values, dtype=object)})
            if skip_empty:
                frame = frame[frame["v"].astype(object).ne("").fillna(True)]
            frame = frame[frame["person"].notna()]
            counts = frame.groupby("person")["v"].nunique()
            expected = set(counts[counts >= 2].index)
            assert identity._under_two(persons, values, skip_empty=skip_empty) == expected


def test_velocity_shared_identifiers_in_python_equal_pandas(book, monkeypatch):
    portfolio, _ = book
    detector = DeviceVelocity()
    stats = detector.statistics(portfolio)
    fast = detector.run(portfolio, statistics=stats)
    monkeypatch.setattr(velocity, "_FEW_MEMBERS", -1)
    slow = detector.run(portfolio, statistics=stats)
    assert _keys(fast) == _keys(slow)
    assert any(e.feature == "shared_identifiers" for f in slow for e in f.evidence)  # not vacuous


@pytest.mark.parametrize("seed", range(6))
def test_top_shared_in_python_equals_pandas_with_ties(seed):
    rng = np.random.default_rng(seed)
    for _ in range(60):
        n = int(rng.integers(1, 200))  # past 16 groups numpy's quicksort is no longer an insertion sort
        rows = [
            (str(rng.choice(["phone", "email", "address"])), f"id{rng.integers(0, 40)}", f"A{rng.integers(0, 30)}")
            for _ in range(n)
        ]
        frame = pd.DataFrame(rows, columns=["other", "identifier", "application_id"])
        assert velocity._top_shared(rows) == velocity._top_shared(frame)


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_velocity_seconds_from_ticks_equal_total_seconds(unit, monkeypatch):
    rng = np.random.default_rng(len(unit))
    per_second = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}[unit]
    limit = {"s": 9 * 10**9, "ms": 9 * 10**12, "us": 9 * 10**15, "ns": 2**62}[unit]  # within pandas' ns range
    cases = []
    for trial in range(200):
        n = int(rng.integers(0, 30))
        # any instant, or a few seconds around 1970 (before it a fraction truncates towards zero)
        ticks = (
            rng.integers(-limit, limit, n)
            if trial % 2
            else rng.integers(-9, 9, n) * per_second + rng.integers(-3, 3, n)
        )
        times = pd.Series(pd.DatetimeIndex(ticks.astype(f"M8[{unit}]")).tz_localize("UTC"))
        times[rng.random(n) < 0.1] = pd.NaT
        keys = pd.Series(rng.choice(["a", "b", None], n), dtype="str" if trial % 3 else object)
        cases.append((keys, times))
    fast = [velocity._timed_keys(k, t) for k, t in cases]
    monkeypatch.setattr(velocity, "_FEW_ROWS", -1)
    for got, (keys, times) in zip(fast, cases, strict=True):
        expected = velocity._timed_keys(keys, times)
        pd.testing.assert_frame_equal(got, expected)
        pd.testing.assert_frame_equal(velocity._timed_keys_few(keys, times), expected)  # the shortcut, really
    assert sum(len(f) for f in fast) > 1000


def test_links_of_kinds_through_row_maps_equal_isin(book, monkeypatch):
    portfolio, _ = book
    ids = portfolio.applications["application_id"].astype(str).tolist()
    kinds = ("device", "phone", "account", "address", "email", "contact_phone")
    wanted = [pd.Index(ids[i : i + 3]) for i in range(0, len(ids), 37)] + [pd.Index(["nobody"])]
    monkeypatch.setattr(engine, "ROW_MAP_MIN_ROWS", 0)
    monkeypatch.setattr(engine, "_few_of_many", lambda p, wanted, rows: getattr(p, "parent", None) is None)
    by_map = [engine.IN_PROCESS.links_of_kinds(portfolio, kinds, w) for w in wanted]
    monkeypatch.setattr(engine, "_few_of_many", lambda p, wanted, rows: False)
    for got, w in zip(by_map, wanted, strict=True):
        expected = engine.IN_PROCESS.links_of_kinds(portfolio, kinds, w)
        pd.testing.assert_frame_equal(got, expected)
    assert sum(len(f) for f in by_map) > 0


def test_a_subsets_tables_cut_on_first_use_are_the_parents_rows(book):
    portfolio, _ = book
    ids = portfolio.applications["application_id"].astype(str).tolist()[::50]
    local = portfolio.subset(ids)
    mine = set(ids)
    g = portfolio.guarantees
    pd.testing.assert_frame_equal(
        local.guarantees, g[g["application_id"].astype(object).isin(mine)].reset_index(drop=True)
    )
    people = set(text_list(local.applications["person"])) | set(text_list(local.roles["person"]))
    for side in ("guarantor", "borrower"):
        people |= set(text_list(local.guarantees.loc[local.guarantees[f"{side}_label"] == "Person", side]))
    persons = portfolio.persons
    pd.testing.assert_frame_equal(
        local.persons, persons[persons["key"].astype(object).isin(people)].reset_index(drop=True)
    )
    assert len(local.persons) > 0


def test_link_triples_are_links_of_kinds_rows(book):
    portfolio, _ = book
    ids = portfolio.applications["application_id"].astype(str).tolist()
    kinds = ("device", "phone", "account", "address", "email", "contact_phone")
    held = 0
    for i in range(0, len(ids), 41):
        wanted = pd.Index(ids[i : i + 4])
        frame = engine.IN_PROCESS.links_of_kinds(portfolio, kinds, wanted)
        expected = list(zip(frame["application_id"], frame["kind"], frame["identifier"], strict=True))
        assert engine.IN_PROCESS.link_triples(portfolio, kinds, wanted) == expected
        held += len(expected)
    assert held > 0


def test_borrower_units_of_a_few_applications_equal_the_pandas_path(book, monkeypatch):
    portfolio, _ = book
    units = GuaranteeCircles().statistics(portfolio).units
    apps = portfolio.applications
    chunks = [apps.iloc[i : i + n] for n in (1, 3) for i in range(0, len(apps), 2 * n)]
    fast = [GuaranteeCircles._borrower_units(portfolio, chunk, units) for chunk in chunks]
    monkeypatch.setattr(guarantees, "_FEW_APPLICATIONS", -1)
    slow = [GuaranteeCircles._borrower_units(portfolio, chunk, units) for chunk in chunks]
    for got, expected in zip(fast, slow, strict=True):
        pd.testing.assert_series_equal(got, expected)
    assert sum(len(s) for s in slow) > 20  # not vacuous: borrowers with units


def test_circles_around_a_few_applications_equal_the_pandas_path(book, monkeypatch):
    portfolio, _ = book
    detector = GuaranteeCircles()
    stats = detector.statistics(portfolio)
    _, reach = detector._reach(portfolio, stats)
    scopes = [detector.scope(portfolio, [a], stats) for a in sorted(reach)]
    fast = [_keys(detector.run(scope, statistics=stats)) for scope in scopes]
    edges = [detector.unit_edges(scope, stats.units) for scope in scopes]
    whole = _keys(detector.run(portfolio, statistics=stats))
    monkeypatch.setattr(guarantees, "_FEW_APPLICATIONS", -1)
    assert fast == [_keys(detector.run(scope, statistics=stats)) for scope in scopes]
    for (g, units), scope in zip(edges, scopes, strict=True):
        expected_g, expected_units = detector.unit_edges(scope, stats.units)
        pd.testing.assert_frame_equal(g, expected_g)
        pd.testing.assert_series_equal(units, expected_units)
    assert whole == _keys(detector.run(portfolio, statistics=stats))
    assert sum(map(len, fast)) > 0  # not vacuous: the scopes hold circles


def test_contact_hubs_named_few_equal_the_pandas_path(tmp_path, monkeypatch):
    from ringscope.detectors import contacts
    from ringscope.detectors.contacts import ContactLoops, _ContactBook

    generate_portfolio(
        GeneratorConfig(applications=700, seed=31, contact_loops=0.04, family_share=0.08), tmp_path / "data"
    )
    store = EmbeddedStore(tmp_path / "store")
    ingest_folder(tmp_path / "data", store, rejects_path=tmp_path / "rejects.csv")
    portfolio = Portfolio(store)
    detector = ContactLoops(min_hub_namers=2)
    stats = detector.statistics(portfolio)
    book = _ContactBook.of(portfolio)
    ids = portfolio.applications["application_id"].astype(str).tolist()
    fast = [detector._reach_of(portfolio, book, [a], stats) for a in ids]
    monkeypatch.setattr(contacts, "_FEW_ROWS", -1)
    slow = [detector._reach_of(portfolio, book, [a], stats) for a in ids]
    assert fast == slow
    assert sum(bool(big) for _, big, _ in slow) > 5  # not vacuous: applications naming or owning hub phones


def test_contact_findings_around_in_python_equal_the_frames(tmp_path, monkeypatch):
    from ringscope.detectors import contacts
    from ringscope.detectors.contacts import ContactLoops

    generate_portfolio(
        GeneratorConfig(applications=700, seed=37, contact_loops=0.05, family_share=0.1), tmp_path / "data"
    )
    store = EmbeddedStore(tmp_path / "store")
    ingest_folder(tmp_path / "data", store, rejects_path=tmp_path / "rejects.csv")
    portfolio = Portfolio(store)
    detector = ContactLoops(min_hub_namers=2)
    stats = detector.statistics(portfolio)
    ids = portfolio.applications["application_id"].astype(str).tolist()
    asked = [[a] for a in ids] + [ids[i : i + 5] for i in range(0, len(ids), 50)]
    taken = []
    few = ContactLoops._findings_few

    def counted(self, *args):
        found = few(self, *args)
        taken.append(found is not None)
        return found

    monkeypatch.setattr(ContactLoops, "_findings_few", counted)
    fast = [_keys(detector.around(portfolio, a, stats)) for a in asked]
    monkeypatch.setattr(contacts, "_FEW_AROUND", -1)
    slow = [_keys(detector.around(portfolio, a, stats)) for a in asked]
    assert fast == slow
    kinds = {k[1] for found in slow for k in found}
    assert {"hub_contact", "contact_loop"} <= kinds  # not vacuous: loops and hubs around the applications
    assert sum(taken) > 20 and all(taken)  # and the lists found them


@pytest.mark.parametrize("seed", [41, 42])
def test_households_of_a_few_rings_equal_the_pandas_path(tmp_path, monkeypatch, seed):
    """Every ``households`` call of a full rings run and of each ring's
    scope, on dicts and sets, gives the households the frame path gives."""
    from ringscope.detectors import rings

    generate_portfolio(
        GeneratorConfig(applications=900, seed=seed, family_share=0.15, identity_rings=0.05, mess_rate=0.1),
        tmp_path / "data",
    )
    store = EmbeddedStore(tmp_path / "store")
    ingest_folder(tmp_path / "data", store, rejects_path=tmp_path / "rejects.csv")
    portfolio = Portfolio(store)
    detector = rings.SharedIdentifierRings()
    stats = detector.statistics(portfolio)
    calls: list = []
    households = rings.households

    def spy(p, members, max_people):
        found = households(p, members, max_people)
        calls.append((p, members, max_people, found, rings._households_few(p, members, max_people)))
        return found

    monkeypatch.setattr(rings, "households", spy)
    found = detector.run(portfolio, statistics=stats)
    for f in found[:40]:
        detector.run(detector.scope(portfolio, list(f.members), stats), statistics=stats)
    monkeypatch.setattr(rings, "_households_few", lambda *args: None)
    held = 0
    for p, members, max_people, got, few in calls:
        assert few is not None
        assert sorted(got) == sorted(households(p, members, max_people))
        held += len(got)
    assert len(calls) > 10 and held > 0  # not vacuous: rings that are one household occur


def test_family_weights_of_a_few_links_equal_the_frames():
    from ringscope.detectors.family import family_consistency, family_of_links, home_keys_of, surnames_of

    rng = np.random.default_rng(5)
    names = ["王伟", "王芳", "欧阳娜", "欧阳明", "李强", " 李静", "", None]
    homes = ["幸福路1号2栋3室", "幸福道1号2栋3室 ", "人民路9号", "人民 路9号", None, ""]
    relations = ["配偶", "spouse", "parent", "child", " Child", "sibling", "friend", "同事", None, "父母"]
    apps = [f"A{i}" for i in range(12)]
    people = {a: (names[rng.integers(len(names))], homes[rng.integers(len(homes))]) for a in apps}
    pairs = {(str(s), str(d), f"p{rng.integers(3)}") for s, d in rng.choice(apps, size=(80, 2)) if s != d}
    pairs = sorted(pairs)
    edges = [(s, d, relations[rng.integers(len(relations))]) for s, d, _ in pairs]
    # answered in kind between strangers by name and home: the half weight
    people.update({"X1": ("张三", "东路1号"), "X2": ("赵四", "西路2号")})
    pairs += [("X1", "X2", "p9"), ("X2", "X1", "p8")]
    edges += [("X1", "X2", "Parent "), ("X2", "X1", "child")]
    frame = pd.DataFrame(
        {
            "src": [s for s, _, _ in edges],
            "dst": [d for _, d, _ in edges],
            "phone": [p for _, _, p in pairs],
            "relation": [r for _, _, r in edges],
        }
    )
    info = pd.DataFrame.from_dict(people, orient="index", columns=["applicant_name", "address"])
    expected = family_consistency(frame, info).tolist()
    apps = list(people)
    surname = dict(zip(apps, surnames_of([people[a][0] for a in apps])))
    home = dict(zip(apps, home_keys_of([people[a][1] for a in apps])))
    links = [(s, d, p, r) for (s, d, r), (_, _, p) in zip(edges, pairs, strict=True)]
    assert family_of_links(links, surname, home) == expected
    assert {0.0, 0.5, 1.0} <= set(expected)
