"""Incremental ≡ recompute: every detector around a nightly batch finds what a full run finds.

For several generated portfolios (different seeds and fraud mixes) the history
is ingested and detected, then the latest applications arrive as a new batch.
A full ``detect`` over history + batch is the reference; ``detect_around`` the
batch must give the same findings for the batch's applications: the same
members and kinds, the same scores within 1e-9.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pytest

from ringscope.detectors.base import Finding
from ringscope.detectors.incremental import IncrementalRun, detect_around
from ringscope.detectors.portfolio import Portfolio
from ringscope.detectors.registry import DETECTORS
from ringscope.detectors.runner import DetectionRun, run_detectors, save_findings
from ringscope.graph.embedded import EmbeddedStore
from ringscope.ingest.pipeline import ingest_folder
from ringscope.ingest.synthetic import GeneratorConfig, generate_portfolio
from tests.sample_data import split_export

# trains models or runs whole jobs end to end: in `make test`, not in `make test-fast`
pytestmark = pytest.mark.slow

#: seeds and fraud mixes: each detector's typology is planted densely in at least one
SETTINGS = [
    dict(seed=101),
    dict(seed=102, device_farms=0.04, broker_rings=0.06),
    dict(seed=103, identity_rings=0.04, synthetic_identities=0.02, mess_rate=0.15),
    dict(seed=104, contact_loops=0.03, guarantee_circles=0.03),
    dict(seed=105, cashflow_inconsistency=0.04, broker_rings=0.03, device_farms=0.02),
]
APPLICATIONS = 1500
NEW_SHARE = 0.15
SCORE_TOLERANCE = 1e-9


@dataclass
class Night:
    seed: int
    new_ids: list[str]
    full: DetectionRun
    incremental: IncrementalRun
    applications: int


def _night(settings: dict, folder) -> Night:
    data = folder / "data"
    generate_portfolio(GeneratorConfig(applications=APPLICATIONS, **settings), data)
    apps = pd.read_csv(data / "applications.csv", dtype=str, keep_default_na=False)
    order = apps.assign(t=pd.to_datetime(apps["applied_at"], errors="coerce", utc=True)).sort_values(
        ["t", "application_id"], kind="stable", na_position="first"
    )
    cut = int(len(order) * (1 - NEW_SHARE))
    history, new = set(order["application_id"][:cut]), set(order["application_id"][cut:])
    history_dir, new_dir = split_export(data, folder / "split", [history, new])
    store = EmbeddedStore(folder / "store")
    ingest_folder(history_dir, store, rejects_path=folder / "history-rejects.csv")
    save_findings(store, run_detectors(store))
    loaded = ingest_folder(new_dir, store, rejects_path=folder / "new-rejects.csv")
    new_ids = sorted(map(str, loaded.application_ids))
    full = run_detectors(Portfolio(store))
    incremental = detect_around(Portfolio(store), new_ids)
    return Night(settings["seed"], new_ids, full, incremental, len(Portfolio(store).applications))


@pytest.fixture(scope="module")
def nights(tmp_path_factory) -> list[Night]:
    return [_night(s, tmp_path_factory.mktemp(f"night{s['seed']}")) for s in SETTINGS]


def _touching(findings: list[Finding], detector: str, ids: set[str]) -> dict[tuple, Finding]:
    return {
        (f.kind, tuple(sorted(map(str, f.members)))): f
        for f in findings
        if f.detector == detector and ids.intersection(map(str, f.members))
    }


@pytest.mark.parametrize("detector", list(DETECTORS))
def test_incremental_findings_equal_a_full_run(nights, detector):
    compared = 0
    for night in nights:
        assert not night.full.errors and not night.incremental.errors, (night.full.errors, night.incremental.errors)
        ids = set(night.new_ids)
        expected = _touching(night.full.findings, detector, ids)
        got = _touching(night.incremental.findings, detector, ids)
        assert sorted(got) == sorted(expected), (
            f"seed {night.seed}: only in full run {sorted(set(expected) - set(got))[:3]}, "
            f"only incremental {sorted(set(got) - set(expected))[:3]}"
        )
        for key, finding in expected.items():
            assert abs(got[key].score - finding.score) <= SCORE_TOLERANCE, (
                night.seed,
                key,
                got[key].score,
                finding.score,
            )
        compared += len(expected)
    # the invariant is not vacuous: the batches do create or join findings of this detector
    assert compared > 0, f"no {detector} finding held a new application in any setting"


#: every registered detector narrows its scope to a part of the portfolio
SCOPED: set[str] = set(DETECTORS)


@pytest.mark.parametrize("detector", sorted(SCOPED))
def test_scoped_detectors_read_only_a_part_of_the_portfolio(nights, detector):
    for night in nights:
        size = night.incremental.scope_sizes[detector]
        assert size is not None and size < night.applications / 2, (night.seed, size, night.applications)
