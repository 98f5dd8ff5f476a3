"""Contracts every detector keeps: evidence adds up to the score, and the
order detectors run in changes nothing (entities are resolved before any)."""

from __future__ import annotations

import pandas as pd
import pytest

from ringscope.detectors.portfolio import as_portfolio
from ringscope.detectors.runner import run_detectors
from ringscope.graph.embedded import EmbeddedStore
from ringscope.ingest.pipeline import ingest_folder
from ringscope.ingest.synthetic import GeneratorConfig, generate_portfolio

# trains models or runs whole jobs end to end: in `make test`, not in `make test-fast`
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> EmbeddedStore:
    root = tmp_path_factory.mktemp("contracts")
    generate_portfolio(GeneratorConfig(applications=3000, seed=11), root / "data")
    store = EmbeddedStore(str(root / "store"))
    ingest_folder(root / "data", store, rejects_path=root / "rejects.csv")
    return store


def _unexplained(findings) -> list[tuple[str, str, float, float]]:
    return [
        (f.detector, f.kind, f.score, sum(e.contribution for e in f.evidence))
        for f in findings
        if abs(sum(e.contribution for e in f.evidence) - f.score) > 1e-9
    ]


def test_evidence_contributions_add_up_to_every_score(store):
    run = run_detectors(as_portfolio(store))
    assert not run.errors
    assert {f.detector for f in run.findings} >= {"identity", "shared_identifier_rings", "contact_loops", "cashflow"}
    assert _unexplained(run.findings) == []


def test_a_scaled_down_score_scales_its_evidence(store):
    """With ``max_household=0`` all-family contact groups are reported, their
    score multiplied by 0.3: each contribution is scaled the same way."""
    run = run_detectors(as_portfolio(store), ["contact_loops"], {"contact_loops": {"max_household": 0}})
    family = [
        f for f in run.findings if any(e.feature == "unrelated_contacts" and e.contribution == 0 for e in f.evidence)
    ]
    assert family, "the portfolio should hold all-family contact groups"
    assert _unexplained(run.findings) == []
    for f in family:
        cycle = next(e for e in f.evidence if e.feature == "contact_cycle")
        assert cycle.contribution == pytest.approx(0.3 * (0.4 if f.kind == "contact_loop" else 0.25))


def _comparable(findings) -> list:
    return sorted(
        (f.detector, f.kind, f.members, f.score, f.evidence, f.summary, f.entities, f.shared) for f in findings
    )


def test_detectors_give_the_same_findings_in_any_order(store, monkeypatch):
    """Entities are resolved once, before any detector runs: a registry in
    reverse order (identity resolution last) finds exactly the same."""
    import ringscope.detectors.runner as runner

    forward = run_detectors(store)
    monkeypatch.setattr(runner, "DETECTORS", dict(reversed(list(runner.DETECTORS.items()))))
    backward = run_detectors(store)
    assert not forward.errors and not backward.errors
    assert [f.detector for f in backward.findings][0] != "identity"
    assert _comparable(backward.findings) == _comparable(forward.findings)
    for rel, pairs in forward.portfolio.similar_pairs.items():
        assert backward.portfolio.similar_pairs[rel].equals(pairs)


def test_identity_resolution_run_leaves_the_entity_maps_alone(store):
    """``run`` reports; ``resolve`` returns the entity map, which only the job
    running the detectors hands to the portfolio."""
    from ringscope.detectors.identity import IdentityResolution
    from ringscope.detectors.portfolio import EntityMap, Portfolio

    portfolio = Portfolio(store)
    IdentityResolution().run(portfolio)
    assert portfolio.person_entity is None and portfolio.company_entity is None
    entities = IdentityResolution().resolve(portfolio)
    assert isinstance(entities, EntityMap) and len(entities.person) > 0
    portfolio.use_entities(entities)
    assert portfolio.person_entity is entities.person


def test_a_ring_judged_on_resolved_entities_in_any_order(tmp_path, monkeypatch):
    """Two ID numbers of one synthetic identity (same name, birth date and
    home) and one other applicant share a device and an account: two people,
    not the three a ring needs, whichever detector runs first."""
    import ringscope.detectors.runner as runner
    from tests.detectors.builder import ExportBuilder
    from tests.sample_data import make_id

    b = ExportBuilder()
    for _ in range(30):
        b.app()
    home = "贵州省黔南州长顺县新华路356号鑫苑29栋1单元3103室"
    shared = dict(device_id="dev-shared", bank_account="6222000000000000999")
    pair = [
        b.app(
            applicant_name="姚佳勇",
            applicant_id_number=make_id("522729", "19620103", seq),
            applicant_phone=phone,
            applicant_address=home,
            **shared,
        )["application_id"]
        for seq, phone in (("008", "13912340001"), ("013", "13912340002"))
    ]
    other = b.app(**shared)["application_id"]
    store = EmbeddedStore(str(tmp_path / "store"))
    b.load(store, tmp_path / "export")

    def rings_with(members):
        return [f for f in run.findings if f.detector == "shared_identifier_rings" and set(members) <= set(f.members)]

    run = run_detectors(store)
    assert any(set(pair) <= set(f.members) for f in run.findings if f.kind == "name_dob_multi_id")
    assert rings_with([*pair, other]) == []
    forward = _comparable(run.findings)
    monkeypatch.setattr(runner, "DETECTORS", dict(reversed(list(runner.DETECTORS.items()))))
    run = run_detectors(store)
    assert rings_with([*pair, other]) == []
    assert _comparable(run.findings) == forward


# -- caches are declared by the class that owns them -----------------------------------------------------------


def test_no_module_writes_caches_into_an_objects_dict():
    """Caches are declared attributes, ``cached_property``s or a cache owned by
    the class that reads it: nothing writes into another object's ``__dict__``."""
    import re
    from pathlib import Path

    import ringscope.detectors as package

    root = Path(package.__file__).resolve().parent
    writes = re.compile(r"__dict__\s*(\[[^\]]+\]\s*=|\.(setdefault|update|pop|clear)\()")
    found = [
        f"{path.relative_to(root)}:{n}: {line.strip()}"
        for path in sorted(root.rglob("*.py"))
        for n, line in enumerate(path.read_text("utf-8").splitlines(), 1)
        if writes.search(line)
    ]
    assert found == []


def test_derived_tables_are_dropped_when_the_entities_change(store):
    from ringscope.detectors.portfolio import EntityMap, Portfolio
    from ringscope.detectors.rings import entity_links

    portfolio = Portfolio(store)
    raw = entity_links(portfolio)
    assert entity_links(portfolio) is raw  # computed once
    apps = portfolio.applications.dropna(subset=["person"])
    first, second = apps["person"].iloc[0], apps["person"].iloc[1]
    portfolio.use_entities(EntityMap(person=pd.Series({second: first}), company=pd.Series(dtype=object)))
    merged = entity_links(portfolio)
    assert merged is not raw
    app = apps["application_id"].iloc[1]
    assert set(merged.loc[merged["application_id"] == app, "entity"]) == {first}


def test_a_portfolio_keeps_its_reads_and_tables_in_declared_fields(store):
    from ringscope.detectors.portfolio import Portfolio

    portfolio = Portfolio(store)
    assert portfolio.reads is None and portfolio.cached_tables() == {}
    portfolio.remember_reads()
    portfolio.nodes("Agent")
    assert [key[:2] for key in portfolio.reads] == [("nodes", "Agent")]
    apps = portfolio.applications
    tables = portfolio.cached_tables()
    assert tables["applications"] is apps and "_links_by_kind" in tables
    again = Portfolio(store)
    again.restore_tables(tables)
    assert again.applications is apps
    with pytest.raises(KeyError, match="not portfolio tables"):
        again.restore_tables({"_stored_entities": None})
