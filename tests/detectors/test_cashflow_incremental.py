"""Cash-flow checks around a nightly batch equal those of a full run.

The peers are in the history; the batch holds an inflated snack shop, an
oversized ask, a consumer whose exact income many history applicants
declared, honest applications, and one of a product nobody had before.
Judged by the whole book's statistics, each batch application gets exactly
the checks (every column) a full run gives it, from a scope of itself.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from ringscope.detectors.cashflow import CashflowChecks
from ringscope.detectors.incremental import detect_around
from ringscope.detectors.portfolio import Portfolio
from ringscope.graph.embedded import EmbeddedStore
from tests.detectors.builder import ExportBuilder

START = datetime(2025, 1, 6, 9, 0)
REPEATED = 23_456  # an income nine history applicants and one batch applicant declare exactly


def _history(b: ExportBuilder) -> None:
    rng = np.random.default_rng(11)
    for i in range(40):  # snack shops: revenue 30k–80k a month, asking 100k–300k
        b.business_app(
            i,
            company_name=f"成都市第{i}号小吃店",
            applied_at=START + timedelta(days=i),
            declared_monthly_revenue=round(float(np.exp(rng.uniform(np.log(30000), np.log(80000)))), -2),
            amount=round(float(rng.uniform(100000, 300000)), -2),
        )
    for i in range(60):  # consumers: income 3k–15k, asking a few months of it
        inc = round(float(np.exp(rng.uniform(np.log(3000), np.log(15000)))), -2)
        b.app(
            declared_monthly_income=inc,
            amount=round(inc * float(rng.uniform(2, 8)), -2),
            employer_name=f"杭州第{i}科技有限公司",
            applied_at=START + timedelta(days=i, hours=5),
        )
    for i in range(9):  # the same odd income, declared by nine unrelated applicants
        b.app(
            declared_monthly_income=REPEATED,
            amount=60000,
            employer_name=f"宁波第{i}贸易有限公司",
            applied_at=START + timedelta(days=70 + i),
        )


def _batch(b: ExportBuilder) -> dict[str, str]:
    at = START + timedelta(days=100)
    return {
        "inflated": b.business_app(
            900, company_name="成都市红火小吃店", declared_monthly_revenue=4_200_000, amount=50000, applied_at=at
        )["application_id"],
        "oversized": b.business_app(
            901,
            company_name="成都市好味小吃店",
            declared_monthly_revenue=31000,
            amount=3_000_000,
            applied_at=at + timedelta(hours=1),
        )["application_id"],
        "repeated": b.app(
            declared_monthly_income=REPEATED,
            amount=900_000,
            employer_name="宁波新贸易有限公司",
            applied_at=at + timedelta(hours=2),
        )["application_id"],
        "shop": b.business_app(
            902,
            company_name="成都市老街小吃店",
            declared_monthly_revenue=52000,
            amount=150000,
            applied_at=at + timedelta(hours=3),
        )["application_id"],
        "consumer": b.app(
            declared_monthly_income=8000,
            amount=30000,
            employer_name="杭州新科技有限公司",
            applied_at=at + timedelta(hours=4),
        )["application_id"],
        "new_product": b.app(
            product="车贷", declared_monthly_income=9000, amount=120000, applied_at=at + timedelta(hours=5)
        )["application_id"],
    }


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cashflow-incremental")
    store = EmbeddedStore(tmp / "store")
    history = ExportBuilder(start=START)
    _history(history)
    history.load(store, tmp / "history")
    before = Portfolio(store)
    stale = CashflowChecks().statistics(before)
    batch = ExportBuilder(start=START, first_index=10_000)
    new = _batch(batch)
    batch.load(store, tmp / "batch")
    return new, Portfolio(store), stale


def test_batch_checks_equal_a_full_run_column_for_column(night):
    new, portfolio, _ = night
    detector = CashflowChecks()
    ids = sorted(new.values())
    stats = detector.statistics(portfolio)
    scope = detector.scope(portfolio, ids, stats)
    assert sorted(scope.applications["application_id"]) == ids
    full = detector.checks(portfolio).set_index("application_id").loc[ids]
    local = detector.checks(scope, stats).set_index("application_id").loc[ids]
    pd.testing.assert_frame_equal(local[full.columns], full, check_exact=True)
    # the checks read the history: trade peers, and the nine earlier declarations of one income
    assert full.loc[new["inflated"], "peers"] >= 40 and full.loc[new["inflated"], "reference_is_trade"]
    assert full.loc[new["repeated"], "repeat_count"] == 10


def test_batch_findings_equal_a_full_run(night):
    new, portfolio, _ = night
    ids = sorted(new.values())
    full = {f.members: f for f in CashflowChecks().run(portfolio) if set(f.members) & set(ids)}
    around = detect_around(portfolio, ids, ["cashflow"])
    assert not around.errors and around.scope_sizes["cashflow"] == len(ids)
    got = {f.members: f for f in around.findings}
    assert sorted(got) == sorted(full)
    assert {new["inflated"], new["oversized"]} <= {m for key in full for m in key}
    for key, finding in full.items():
        assert got[key].score == finding.score
        assert got[key].evidence_json() == finding.evidence_json()


def test_without_the_books_statistics_the_batch_has_no_peers(night):
    new, portfolio, _ = night
    detector = CashflowChecks()
    alone = detector.run(detector.scope(portfolio, [new["inflated"]]))
    assert alone == []  # one shop is its own median: nothing stands out
    judged = detector.run(detector.scope(portfolio, [new["inflated"]]), statistics=detector.statistics(portfolio))
    assert [f.members for f in judged] == [(new["inflated"],)]


def test_statistics_of_an_older_book_do_not_fail_on_what_they_never_saw(night):
    new, portfolio, stale = night
    detector = CashflowChecks()
    frame = detector.checks(detector.scope(portfolio, sorted(new.values())), stale).set_index("application_id")
    # the new product has no peer group in the old book: no z-score, no score, no error
    assert np.isnan(frame.loc[new["new_product"], "z_figure"]) and frame.loc[new["new_product"], "score"] == 0
    assert frame.loc[new["new_product"], "peers"] == 0
    # the inflated shop is still judged against the old book's snack shops
    assert frame.loc[new["inflated"], "score"] >= detector.min_score


def test_one_detection_reads_the_batchs_rows_not_the_books_checks(night):
    """In a one-detection run (``keep_derived`` off, as ``flag`` sets it) the
    batch's findings come from its own declared rows: the same findings, score
    and evidence as the whole book's cached checks, and no book-wide frame
    is kept in the portfolio."""
    new, portfolio, _ = night
    detector = CashflowChecks()
    stats = detector.statistics(portfolio)
    ids = sorted(new.values())
    every = sorted(portfolio.applications["application_id"].astype(str))
    for wanted in (ids, [new["inflated"]], [new["shop"]], every[:7] + ids[:2]):
        cached = detector.around(portfolio, wanted, stats)  # the long-lived path: the book's checks, kept
        assert any(k[0] == "cashflow_flagged" for k in portfolio.derived if isinstance(k, tuple))
        portfolio.derived.clear()
        portfolio.keep_derived = False
        try:
            lean = detector.around(portfolio, wanted, stats)
            assert not any(k[0] == "cashflow_flagged" for k in portfolio.derived if isinstance(k, tuple))
        finally:
            portfolio.keep_derived = True
        assert [f.members for f in lean] == [f.members for f in cached]
        assert [f.score for f in lean] == [f.score for f in cached]
        assert [f.evidence_json() for f in lean] == [f.evidence_json() for f in cached]
        assert [f.summary for f in lean] == [f.summary for f in cached]
    assert detector.around(portfolio, ids, stats)  # the batch has findings to compare (inflated, oversized)


def test_one_detection_around_the_whole_book_equals_a_full_run(night):
    """Every application of the book as the batch, lean: the full run's findings."""
    _, portfolio, _ = night
    detector = CashflowChecks()
    every = sorted(portfolio.applications["application_id"].astype(str))
    full = detector.run(portfolio)
    portfolio.keep_derived = False
    try:
        lean = detector.around(portfolio, every, detector.statistics(portfolio))
    finally:
        portfolio.keep_derived = True
    assert len(full) > 2
    assert [(f.members, f.score, f.evidence_json()) for f in lean] == [
        (f.members, f.score, f.evidence_json()) for f in full
    ]
