"""The corruption fuzzer: random faults of every class, and what ingest must still guarantee.

Each seed corrupts a clean generated portfolio (see ``tests/ingest/corruption.py``
for the faults and the checks). The normal suite runs a few seeds per
variant; ``RINGSCOPE_FUZZ_SEEDS=500`` runs that many more.
"""

from __future__ import annotations

import datetime as dt
import os

import pytest

from ringscope.graph.embedded import EmbeddedStore
from ringscope.ingest.limits import IngestLimits
from ringscope.ingest.pipeline import ingest_folder
from ringscope.ingest.synthetic import GeneratorConfig, generate_portfolio
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
    (None, 1000 + seed) for seed in range(EXTRA_SEEDS)
]


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


def _changed(column: str, value: str) -> str:
    """Another value for ``column`` that still passes every check."""
    if column == "amount":
        return "123457" if value != "123457" else "123458"
    if column == "applicant_name":
        return value + "改"
    if column == "label":
        return "good" if value != "good" else "fraud"
    return "13912345678" if value != "13912345678" else "13912345679"


def _redeliveries(first: dict, rng, n: int = 40) -> tuple[dict, set[str], set[str]]:
    """First-batch rows sent again: half as they were, half with a changed
    contract field (amount, name, label, phone). Their contacts come along."""
    apps = first["applications"]
    picked = apps.sample(n=min(n, len(apps)), random_state=rng.randrange(2**31)).copy()
    changed: set[str] = set()
    for i, index in enumerate(picked.index):
        if i % 2:
            continue
        column = ("amount", "applicant_name", "label", "applicant_phone")[(i // 2) % 4]
        value = picked.at[index, column]
        picked.at[index, column] = _changed(column, value)
        changed.add(picked.at[index, "application_id"])
    ids = set(picked["application_id"])
    extra = {"applications": picked}
    if "contacts" in first:
        contacts = first["contacts"]
        extra["contacts"] = contacts[contacts["application_id"].isin(ids)]
    return extra, ids, changed


@pytest.mark.parametrize("seed", [0, 1, 2, 3] + [2000 + s for s in range(EXTRA_SEEDS)])
def test_a_later_corrupted_batch_never_overwrites_a_stored_row(portfolio, tmp_path, seed):
    """Re-deliveries inside a corrupted second batch: identical ones change
    nothing, changed ones are rejected with the reason, the stored rows stay."""
    import random

    import pandas as pd

    clean, _ = portfolio
    first, second = split_batches(clean)
    store = EmbeddedStore(tmp_path / "store")
    one = ingest_folder(write_clean(first, tmp_path / "first"), store, rejects_path=tmp_path / "r1.csv", limits=LIMITS)
    assert one.exit_code == 0 and one.rows_rejected == 0
    before = application_properties(store)
    contacts_before = store.read_relationships("Application-EMERGENCY_CONTACT-Phone")
    contacts_before = contacts_before[contacts_before["src"].isin(before.index)].sort_values(["src", "dst"])

    rng = random.Random(seed)
    extra, resent, changed = _redeliveries(first, rng)
    mixed = {t: pd.concat([second[t], extra[t]], ignore_index=True) if t in extra else second[t] for t in second}
    mixed = {t: f.sample(frac=1, random_state=seed).reset_index(drop=True) for t, f in mixed.items()}  # interleave
    corrupted = corrupt(clean, tmp_path / "second", seed, frames=mixed)
    two = ingest_folder(corrupted.folder, store, rejects_path=tmp_path / "r2.csv", limits=LIMITS)

    why = corrupted.describe()
    for report in two.tables:
        assert report.rows_read == report.rows_loaded + report.rows_rejected, (report, why)
        assert report.lines_unaccounted == 0, (report, why)
    after = application_properties(store)
    assert after.loc[before.index, before.columns].equals(before), why  # no stored application changed
    contacts_after = store.read_relationships("Application-EMERGENCY_CONTACT-Phone")
    contacts_after = contacts_after[contacts_after["src"].isin(before.index)].sort_values(["src", "dst"])
    assert contacts_after.reset_index(drop=True).equals(contacts_before.reset_index(drop=True)), why
    if "applications" in corrupted.refused:
        return
    rejects = pd.read_csv(tmp_path / "r2.csv", encoding="utf-8-sig", dtype={"line": "Int64"})
    rejects = rejects[rejects["source_file"].str.startswith("applications")]
    reason_at = dict(zip(rejects["line"].dropna().astype(int), rejects["reason"]))
    checked = 0
    for app in changed - corrupted.touched:
        line = corrupted.line_of.get(app)
        if line is None:  # cut off by a truncation fault
            continue
        assert "already stored with different content" in reason_at.get(line, ""), (app, line, why)
        checked += 1
    for app in resent - changed - corrupted.touched:
        line = corrupted.line_of.get(app)
        assert line is None or line not in reason_at, (app, reason_at.get(line), why)  # identical: a no-op
    assert checked >= 5, why  # the changed re-deliveries really reached the check
