"""Contracts every detector keeps, over one generated portfolio: evidence
adds up to the score."""

from __future__ import annotations

import pytest

from ringscope.detectors.portfolio import as_portfolio
from ringscope.detectors.runner import run_detectors
from ringscope.graph.embedded import EmbeddedStore
from ringscope.ingest.pipeline import ingest_folder
from ringscope.ingest.synthetic import GeneratorConfig, generate_portfolio


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> EmbeddedStore:
    root = tmp_path_factory.mktemp("contracts")
    generate_portfolio(GeneratorConfig(applications=3000, seed=11), root / "data")
    store = EmbeddedStore(str(root / "store"))
    ingest_folder(root / "data", store, rejects_path=root / "rejects.csv")
    return store


def _unexplained(findings) -> list[tuple[str, str, float, float]]:
    return [(f.detector, f.kind, f.score, sum(e.contribution for e in f.evidence)) for f in findings
            if abs(sum(e.contribution for e in f.evidence) - f.score) > 1e-9]


def test_evidence_contributions_add_up_to_every_score(store):
    run = run_detectors(as_portfolio(store))
    assert not run.errors
    assert {f.detector for f in run.findings} >= {"identity", "shared_identifier_rings", "contact_loops", "cashflow"}
    assert _unexplained(run.findings) == []


def test_a_scaled_down_score_scales_its_evidence(store):
    """With ``max_household=0`` all-family contact groups are reported, their
    score multiplied by 0.3: each contribution is scaled the same way."""
    run = run_detectors(as_portfolio(store), ["contact_loops"], {"contact_loops": {"max_household": 0}})
    family = [f for f in run.findings
              if any(e.feature == "unrelated_contacts" and e.contribution == 0 for e in f.evidence)]
    assert family, "the portfolio should hold all-family contact groups"
    assert _unexplained(run.findings) == []
    for f in family:
        cycle = next(e for e in f.evidence if e.feature == "contact_cycle")
        assert cycle.contribution == pytest.approx(0.3 * (0.4 if f.kind == "contact_loop" else 0.25))
