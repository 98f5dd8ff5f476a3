"""The rings' links as integer codes (``RingLinkCodes``) answer what ``entity_links``' text table did.

A batch detection (``flag``) decides the hub table, the ring labels and the
household bound over the whole book; from the codes of the link tables it
does so without the book's text links table (7.2M rows, ~0.8 GB at a
million applications). Each answer is held to the text path's, frame for
frame, on stored entities and on entities resolved again.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ringscope.detectors import rings
from ringscope.detectors.identity import IdentityResolution
from ringscope.detectors.incremental import detect_around
from ringscope.detectors.portfolio import Portfolio
from ringscope.detectors.rings import (
    SharedIdentifierRings,
    entity_links,
    identifier_hubs,
    ring_link_codes,
    ring_link_hubs,
)
from ringscope.detectors.runner import run_detectors, save_findings
from ringscope.graph.embedded import EmbeddedStore
from ringscope.ingest.pipeline import ingest_folder
from ringscope.ingest.synthetic import GeneratorConfig, generate_portfolio

SETTINGS = [
    dict(seed=31),
    dict(seed=32, identity_rings=0.05, device_farms=0.04, mess_rate=0.15),
    dict(seed=33, contact_loops=0.04, broker_rings=0.05),
]


@pytest.fixture(scope="module", params=SETTINGS, ids=lambda s: f"seed{s['seed']}")
def store(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"codes{request.param['seed']}")
    generate_portfolio(GeneratorConfig(applications=1200, **request.param), root / "data")
    store = EmbeddedStore(root / "store")
    ingest_folder(root / "data", store, rejects_path=root / "rejects.csv")
    save_findings(store, run_detectors(store))  # stored entities (SIMILAR_TO) to start from
    return store


def _portfolios(store) -> list[Portfolio]:
    """The book on its stored entities, and on entities resolved again (what a batch detection reads)."""
    stored = Portfolio(store)
    resolved = Portfolio(store)
    identity = IdentityResolution()
    resolved.use_entities(identity.resolve(resolved, identity.statistics(resolved)))
    return [stored, resolved]


def _text_and_codes(portfolio: Portfolio):
    """The text path's links and the codes, each built on a portfolio of its own derived tables."""
    codes = ring_link_codes(portfolio)
    held = dict(portfolio.derived)
    portfolio.derived.clear()
    links = entity_links(portfolio)
    portfolio.derived.clear()
    portfolio.derived.update(held)
    return links, codes


def test_codes_are_the_links_of_entity_links(store):
    for portfolio in _portfolios(store):
        links, codes = _text_and_codes(portfolio)
        assert codes is not None and len(codes) == len(links) > 1000
        assert codes.app.dtype == np.int32 and codes.entity.dtype == np.int32 and codes.key.dtype == np.int64
        # row for row: the application, and equal codes exactly where the texts are equal
        assert (np.asarray(codes.app_values, dtype=object)[codes.app] == links["application_id"].to_numpy()).all()
        assert list(np.asarray(codes.kinds)[codes.kind_of(np.arange(len(codes)))]) == links["kind"].tolist()
        text_key = (links["kind"] + "\x1f" + links["identifier"]).to_numpy(dtype=object)
        assert (pd.factorize(codes.key)[0] == pd.factorize(text_key)[0]).all()
        assert (pd.factorize(codes.entity)[0] == pd.factorize(links["entity"].to_numpy(dtype=object))[0]).all()


def test_hub_table_from_codes_is_the_text_one(store):
    detector = SharedIdentifierRings()
    for portfolio in _portfolios(store):
        links, codes = _text_and_codes(portfolio)
        labels = portfolio.applications.set_index("application_id")["label"]
        expected = identifier_hubs(links, labels=labels)
        got = ring_link_hubs(portfolio, codes, labels=labels)
        assert len(expected) > 20 and expected["glue"].any()
        pd.testing.assert_frame_equal(got, expected)
        # and with other parameters (low fences: hubs too), without labels
        tight = dict(fence_mads=0.5, min_hub_people=2, cohesion_threshold=0.9)
        expected_tight = identifier_hubs(links, **tight)
        assert expected_tight["hub"].any()
        pd.testing.assert_frame_equal(ring_link_hubs(portfolio, codes, **tight), expected_tight)
        # what the detector's statistics read: the codes unless the text table is held
        portfolio.derived.pop("ring_links", None)
        pd.testing.assert_frame_equal(detector.hubs(portfolio), expected)


def test_ring_labels_and_linked_entities_from_codes_are_the_text_ones(store):
    for portfolio in _portfolios(store):
        links, codes = _text_and_codes(portfolio)
        hubs = identifier_hubs(links, labels=portfolio.applications.set_index("application_id")["label"])
        apps, labels = rings._glued_labels_of_codes(portfolio, codes, hubs)
        want_apps, want_labels = rings._glued_labels(links, hubs)
        assert len(want_apps) > 50
        pd.testing.assert_index_equal(apps, want_apps, exact=True)
        assert np.array_equal(labels, want_labels)
        # the household bound reads the linked applications' entities: from the codes, the table's
        portfolio.derived.pop("ring_links", None)
        from_codes = rings._linked_entities(portfolio)
        portfolio.derived["ring_links"] = links
        from_text = rings._linked_entities(portfolio)
        pd.testing.assert_series_equal(from_codes.sort_index(), from_text.sort_index(), check_names=False)


def test_a_batch_detection_builds_no_whole_book_text_links(store, monkeypatch):
    """Around a batch, the rings' statistics, labels and scope read the codes:
    ``entity_links`` runs on the scope's few applications only, and the
    findings are those of the text path."""
    portfolio = Portfolio(store)
    ids = sorted(portfolio.applications["application_id"].astype(str))[-60:]
    built: list[int] = []
    text_links = rings.entity_links

    def spy(p):
        built.append(len(p.applications))
        return text_links(p)

    monkeypatch.setattr(rings, "entity_links", spy)
    run = detect_around(portfolio, ids, ["identity", "shared_identifier_rings"])
    assert not run.errors, run.errors
    book = len(portfolio.applications)
    assert all(n < book for n in built), (built, book)
    assert "ring_links" not in portfolio.derived and ring_link_codes(portfolio) is not None
    # the text path (the whole book's table held first) finds the same rings
    monkeypatch.setattr(rings, "entity_links", text_links)
    again = Portfolio(store)
    identity = IdentityResolution()
    stats = {"identity": identity.statistics(again)}
    again.use_entities(identity.resolve(again, stats["identity"]))
    entity_links(again)
    reference = detect_around(again, ids, ["identity", "shared_identifier_rings"], statistics=stats)
    assert "ring_links" in again.derived

    def rings_of(found):
        return sorted(
            (tuple(sorted(f.members)), round(f.score, 12)) for f in found if f.detector == "shared_identifier_rings"
        )

    assert rings_of(run.findings) == rings_of(reference.findings)
    assert rings_of(reference.findings), "no ring holds the batch: the comparison would be empty"


def test_flag_index_from_codes_is_the_one_from_text_links(store, monkeypatch):
    """``FlagIndex``'s arrays (what the flag state saves) derived from the
    codes, without the whole book's text links, are the text path's, array
    for array and dtype for dtype."""
    import pyarrow as pa

    from ringscope.detectors.risk import flagging
    from ringscope.detectors.risk.flagging import SAVED_ARRAYS, FlagIndex

    built: list[int] = []
    text_links = flagging.entity_links

    def spy(p):
        built.append(len(p.applications))
        return text_links(p)

    monkeypatch.setattr(flagging, "entity_links", spy)
    from_codes = FlagIndex(Portfolio(store), [])
    assert built == [] and "ring_links" not in from_codes.portfolio.derived
    monkeypatch.setattr(flagging, "entity_links", text_links)
    held = Portfolio(store)
    entity_links(held)  # the text path: the table is there
    from_text = FlagIndex(held, [])
    for name in SAVED_ARRAYS:
        got, want = getattr(from_codes, name), getattr(from_text, name)
        if isinstance(want, pd.DataFrame):
            pd.testing.assert_frame_equal(got, want)
        elif isinstance(want, pa.Array):
            assert got.type == want.type and got.equals(want), name
        else:
            assert got.dtype == want.dtype and got.shape == want.shape, (name, got.dtype, want.dtype)
            assert pd.Series(got).equals(pd.Series(want)), name


def test_a_scopes_links_cut_from_the_books_codes_are_its_own(store):
    """A scope of a portfolio that holds the links as codes (a flag index)
    cuts its ``entity_links`` from them: frame for frame (rows, order,
    dtypes) the table built from the scope's own link tables."""
    for portfolio in _portfolios(store):
        found = SharedIdentifierRings().run(portfolio)  # (a full run holds the text table)
        assert found
        portfolio.derived.pop("ring_links")
        assert ring_link_codes(portfolio) is not None
        ids = sorted(portfolio.applications["application_id"].astype(str))
        scopes = [list(f.members) for f in found[:15]] + [ids[:40], ids[-3:]]
        for scope in scopes:
            assert rings._entity_links_of_parent_codes(portfolio.subset(scope)) is not None  # the path taken
            cut = entity_links(portfolio.subset(scope))
            assert len(cut)
            codes = portfolio.derived.pop("ring_link_codes")
            try:
                built = entity_links(portfolio.subset(scope))
            finally:
                portfolio.derived["ring_link_codes"] = codes
            pd.testing.assert_frame_equal(cut, built)


def test_an_application_whose_component_has_too_few_people_needs_no_scope(store):
    """``around`` answers ``[]`` for an application glued only to fewer
    people than a ring needs; no ring of a full run holds such an
    application, and the rest still get a scope."""
    detector = SharedIdentifierRings()
    for portfolio in _portfolios(store):
        stats = detector.statistics(portfolio)
        apps, labels = rings._ring_labels(portfolio, stats)
        people = rings._ring_people(portfolio, stats)
        in_rings = {m for f in detector.run(portfolio, statistics=stats) for m in f.members}
        few = [a for a, label in zip(apps, labels) if people[label] < detector.min_people]
        many = [a for a, label in zip(apps, labels) if people[label] >= detector.min_people]
        assert few and many, "both cases must occur in the data"
        assert not in_rings.intersection(few)
        for app_id in few[:30]:
            assert detector.around(portfolio, [app_id], stats) == []
            local = detector.scope(portfolio, [app_id], stats)
            assert not [f for f in detector.run(local, statistics=stats) if app_id in f.members]
        assert all(detector.around(portfolio, [a], stats) is None for a in many[:30])
        # every ring lies in one component, counted with at least the people a ring needs
        for f in detector.run(portfolio, statistics=stats):
            at = apps.get_indexer(list(f.members))
            assert (at >= 0).all() and len(set(labels[at])) == 1
            assert people[labels[at[0]]] >= detector.min_people
