"""train's features and reasons from the rings' link codes (the hub table's)
equal those from the links' text, and what else train skips reading or
collecting changes nothing it produces."""

from __future__ import annotations

import gc

import pandas as pd
import pytest

from ringscope.detectors.portfolio import Portfolio
from ringscope.detectors.rings import entity_links
from ringscope.detectors.risk.features import application_features, link_applications
from ringscope.detectors.risk.reasons import ReasonContext, build_reasons
from ringscope.detectors.runner import load_findings, run_detectors, save_findings
from ringscope.detectors.settings import store_settings
from ringscope.graph.embedded import EmbeddedStore
from ringscope.ingest.pipeline import ingest_folder
from ringscope.ingest.synthetic import GeneratorConfig, generate_portfolio

SETTINGS = [
    dict(seed=41),
    dict(seed=42, identity_rings=0.05, device_farms=0.04, mess_rate=0.15),
]


@pytest.fixture(scope="module", params=SETTINGS, ids=lambda s: f"seed{s['seed']}")
def store(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"traincodes{request.param['seed']}")
    generate_portfolio(GeneratorConfig(applications=1500, **request.param), root / "data")
    store = EmbeddedStore(root / "store")
    ingest_folder(root / "data", store, rejects_path=root / "rejects.csv")
    save_findings(store, run_detectors(store))
    return store


def _features(store, codes: bool):
    """What train computes: the hub table first (from the codes), then the
    features; without ``codes`` the text links are built first, so the
    hub table and the features read them (the former path)."""
    portfolio = Portfolio(store)
    findings = load_findings(store)
    if not codes:
        entity_links(portfolio)
    hubs = store_settings(store).detector("shared_identifier_rings").hubs(portfolio)
    features = application_features(portfolio, findings, hubs)
    return portfolio, findings, features


def test_features_from_the_hub_tables_codes_are_the_text_ones(store):
    coded, findings, from_codes = _features(store, codes=True)
    text, _, from_text = _features(store, codes=False)
    assert link_applications(entity_links(coded)) is not None  # the codes were used
    assert link_applications(entity_links(text)) is None
    pd.testing.assert_frame_equal(from_codes, from_text, check_exact=True)


def test_reasons_from_the_codes_are_the_text_ones(store):
    reasons = []
    for codes in (True, False):
        portfolio, findings, features = _features(store, codes)
        context = ReasonContext.build(findings, entity_links(portfolio), portfolio.applications)
        ids = features.index.tolist()
        partners = context.bad_partners(ids).reset_index(drop=True)
        # every feature pushing up (the reasons cite partners and findings wherever they can)
        contrib = pd.DataFrame(1.0, index=features.index, columns=features.columns)
        contrib["known_bad_1hop"] = 3.0
        text = build_reasons(contrib, features, context)
        assert (context._link_apps is context.apps.index) == codes  # the codes' grouping, or the text's
        reasons.append((partners, text))
    assert len(reasons[0][0])  # some application has an earlier known-bad partner
    pd.testing.assert_frame_equal(reasons[0][0], reasons[1][0], check_exact=True)
    pd.testing.assert_series_equal(reasons[0][1], reasons[1][1], check_exact=True)


def test_birth_dates_are_the_persons_columns(store):
    alone, whole = Portfolio(store), Portfolio(store)
    births = alone.birth_dates
    persons = whole.persons
    pd.testing.assert_frame_equal(births, persons[["key", "birth_date"]], check_exact=True)
    assert [str(b) for b in alone.bad_values] == [str(b) for b in whole.bad_values]


def test_train_leaves_the_collector_as_it_found_it(store, tmp_path):
    from ringscope.detectors.risk.training import train

    kept = object()  # the caller's own objects stay collectable afterwards
    assert gc.get_freeze_count() == 0
    result = train(store, folder=tmp_path / "models", promote="always")
    assert gc.get_freeze_count() == 0 and kept is not None
    assert len(result.scored) == len(Portfolio(store).applications)


def test_a_caller_that_froze_objects_keeps_them_frozen():
    from ringscope.detectors.risk.training import _collector_settled

    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with _collector_settled() as settle:
            settle()
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
    with _collector_settled() as settle:
        assert gc.get_freeze_count() > 0
        settle()
    assert gc.get_freeze_count() == 0
