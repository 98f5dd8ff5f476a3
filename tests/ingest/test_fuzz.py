"""The corruption fuzzer: random faults of every class, and what ingest must still guarantee.

Each seed corrupts a clean generated portfolio (see ``tests/ingest/corruption.py``
for the faults and the checks). The normal suite runs a few seeds per
variant; ``RINGSCOPE_FUZZ_SEEDS=500`` runs that many more.
"""

from __future__ import annotations

import datetime as dt
import os

import pytest

from graph.embedded import EmbeddedStore
from ingest.limits import IngestLimits
from ingest.pipeline import ingest_folder
from ingest.synthetic import GeneratorConfig, generate_portfolio
from tests.ingest.corruption import (
    VARIANTS,
    application_properties,
    check_ingest,
    corrupt,
    split_batches,
    write_clean,
)

#: the generator's applications end 2026-11-01; a fixed window keeps the
#: fuzzer independent of the clock
LIMITS = IngestLimits(applied_to=dt.date(2026, 12, 31))
EXTRA_SEEDS = int(os.environ.get("RINGSCOPE_FUZZ_SEEDS", "0"))
SEEDS = [(variant, seed) for seed in range(2) for variant in VARIANTS] + [
    (None, 1000 + seed) for seed in range(EXTRA_SEEDS)]


@pytest.fixture(scope="module")
def portfolio(tmp_path_factory):
    """A clean portfolio (no broken rows) and its clean ingest, the reference."""
    root = tmp_path_factory.mktemp("fuzz")
    clean = root / "clean"
    generate_portfolio(GeneratorConfig(applications=800, seed=17, broken_row_rate=0.0), clean)
    store = EmbeddedStore(root / "reference")
    summary = ingest_folder(clean, store, rejects_path=root / "reference-rejects.csv", limits=LIMITS)
    assert summary.exit_code == 0 and summary.rows_rejected == 0
    reference = application_properties(store)
    store.close()
    return clean, reference


@pytest.mark.parametrize("variant, seed", SEEDS, ids=[f"{v or 'any'}-{s}" for v, s in SEEDS])
def test_a_corrupted_export_loses_nothing_and_changes_no_good_row(portfolio, tmp_path, variant, seed):
    clean, reference = portfolio
    corrupted = corrupt(clean, tmp_path / "corrupted", seed, variant)
    store = EmbeddedStore(tmp_path / "store")
    summary = ingest_folder(corrupted.folder, store, rejects_path=tmp_path / "rejects.csv", limits=LIMITS)
    check_ingest(corrupted, summary, store, reference, tmp_path / "rejects.csv")


def ingest_second_batch(portfolio, tmp_path, seed: int, variant: str | None = None):
    """A store holding a clean first batch, then a corrupted second batch ingested into it.

    Returns (store, first-batch summary, second-batch summary, the corruption,
    the stored applications after the first batch) so a test can compare what
    the second batch left of the first.
    """
    clean, _ = portfolio
    first, second = split_batches(clean)
    store = EmbeddedStore(tmp_path / "store")
    one = ingest_folder(write_clean(first, tmp_path / "first"), store, rejects_path=tmp_path / "r1.csv", limits=LIMITS)
    before = application_properties(store)
    corrupted = corrupt(clean, tmp_path / "second", seed, variant, frames=second)
    two = ingest_folder(corrupted.folder, store, rejects_path=tmp_path / "r2.csv", limits=LIMITS)
    return store, one, two, corrupted, before


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_corrupted_second_batch_keeps_the_first_and_its_own_good_rows(portfolio, tmp_path, seed):
    clean, reference = portfolio
    store, one, two, corrupted, before = ingest_second_batch(portfolio, tmp_path, seed)
    assert one.exit_code == 0 and one.rows_rejected == 0
    check_ingest(corrupted, two, store, reference, tmp_path / "r2.csv", stored_before=before.index)
    after = application_properties(store).loc[before.index, before.columns]
    assert after.equals(before), corrupted.describe()  # the first batch is untouched
