"""``ringscope monitor``: drift is reported on what moved, and only there.

Two copies of one generated book: in one, the months after the labelled
history (the ones the model never saw) change — most applications arrive
through a new channel and ask for five times the amount. The model trained on
the history must see those features drift in every recent month, and the
untouched copy must stay quiet on them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.metrics import roc_auc_score

from ringscope.app.cli import cli
from ringscope.detectors.risk.features import OWN
from ringscope.detectors.risk.monitoring import ACT, WATCH, monitor, population_stability
from ringscope.detectors.risk.scoring import TrainingConfig
from ringscope.detectors.risk.training import train
from ringscope.detectors.runner import run_detectors, save_findings
from ringscope.graph.embedded import EmbeddedStore
from ringscope.graph.store import GraphBatch
from ringscope.ingest.pipeline import ingest_folder
from ringscope.ingest.synthetic import GeneratorConfig, generate_portfolio

# trains models or runs whole jobs end to end: in `make test`, not in `make test-fast`
pytestmark = pytest.mark.slow

# the generator labels applications before this day; later ones are the model's future
CUTOFF = pd.Timestamp("2026-05-01", tz="Asia/Shanghai")


def test_psi_of_one_population_is_ok_and_of_a_moved_one_acts():
    rng = np.random.default_rng(1)
    reference = pd.Series(rng.lognormal(10, 1, 4000))
    same = population_stability(reference, pd.Series(rng.lognormal(10, 1, 600)))
    moved = population_stability(reference, pd.Series(rng.lognormal(11.5, 1, 600)))
    assert same.status == "ok" and same.excess < WATCH
    assert moved.status == "act" and moved.excess >= ACT


def test_psi_counts_a_new_category_and_a_feature_that_stops_arriving():
    reference = pd.Series(["app"] * 500 + ["web"] * 500)
    new_channel = population_stability(reference, pd.Series(["app"] * 100 + ["livestream"] * 100))
    assert new_channel.status == "act" and new_channel.bins == 3
    ages = pd.Series(np.linspace(20, 60, 1000))
    gone = population_stability(ages, pd.Series([np.nan] * 200))
    assert gone.status == "act"


def test_a_small_period_is_not_drift_because_it_is_small():
    rng = np.random.default_rng(2)
    reference = pd.Series(rng.normal(size=5000))
    tiny = population_stability(reference, pd.Series(rng.normal(size=12)))
    # twelve draws from the same population give a sizeable raw PSI: noise, not drift
    assert tiny.psi > 0.2
    assert tiny.status == "too few"
    # the noise estimate tracks what same-population samples actually give
    draws = [population_stability(reference, pd.Series(rng.normal(size=300))) for _ in range(40)]
    assert np.mean([d.psi for d in draws]) == pytest.approx(draws[0].noise, rel=0.35)


@pytest.fixture(scope="module")
def books(tmp_path_factory):
    """The same generated book twice, trained on its history; the second
    copy's later months drift (a new channel, amounts five times larger)."""
    root = tmp_path_factory.mktemp("monitor")
    generate_portfolio(GeneratorConfig(applications=3000, seed=5), root / "steady")
    shutil.copytree(root / "steady", root / "drifted")
    path = root / "drifted" / "applications.csv"
    apps = pd.read_csv(path, dtype=str, keep_default_na=False)
    later = pd.to_datetime(apps["applied_at"], errors="coerce", utc=True) >= CUTOFF.tz_convert("UTC")
    rng = np.random.default_rng(0)
    switched = later & (rng.random(len(apps)) < 0.7)
    apps.loc[switched, "channel"] = "livestream"
    amount = pd.to_numeric(apps["amount"], errors="coerce")
    apps.loc[later & amount.notna(), "amount"] = (amount[later & amount.notna()] * 5).round(2).astype(str)
    apps.to_csv(path, index=False)
    stores = {}
    for name in ("steady", "drifted"):
        store = EmbeddedStore(root / f"{name}-store")
        ingest_folder(root / name, store, rejects_path=root / f"{name}-rejects.csv")
        save_findings(store, run_detectors(store, ["shared_identifier_rings", "guarantee_circles"]))
        train(store, TrainingConfig())
        stores[name] = store
    return stores


def test_the_features_that_moved_are_reported_in_every_later_month(books):
    report = monitor(books["drifted"], period="month")
    later = [p for p in report.status.index if p >= "2026-05"]
    assert later and list(report.status.index) == later  # the recent periods follow the training window
    for column in ("channel", "log_amount"):
        assert (report.status.loc[later, column] == "act").all(), report.status[column]
    assert report.overall == "act"
    alerts = report.alerts()
    assert {"channel", "log_amount"} <= set(alerts["column"])
    # the decision mix and hit rates have the training window as their first row
    assert report.decisions.index[0] == "reference" and report.hit_rates.index[0] == "reference"
    assert report.decisions.sum(axis=1).round(6).eq(1.0).all()


def test_a_book_that_did_not_move_stays_quiet(books):
    report = monitor(books["steady"], period="month")
    own = [c for c in report.status.columns if c in OWN]
    judged = report.status[own]
    assert not judged.isin(["watch", "act"]).any().any(), report.excess[own].max().sort_values().tail()
    assert report.overall != "act"


def test_cohort_figures_are_the_scores_against_the_outcomes_that_arrived(books):
    store = books["steady"]
    apps = store.read_nodes("Application", ["applied_at", "risk_score"])
    applied = pd.to_datetime(apps["applied_at"], utc=True)
    may = apps[(applied >= CUTOFF.tz_convert("UTC")) & (applied < pd.Timestamp("2026-06-01", tz="Asia/Shanghai"))]
    # investigators' verdicts on May: the highest-scored third confirmed fraud, the rest dismissed
    order = may.sort_values("risk_score", ascending=False)["key"].tolist()
    confirmed = set(order[: len(order) // 3][::2])  # not a perfect ranking: every other one of the top third
    verdicts = pd.DataFrame(
        {
            "key": [f"case-m-{i}" for i in range(len(order))],
            "target_label": "Application",
            "target_key": order,
            "status": ["Confirmed fraud" if k in confirmed else "Dismissed" for k in order],
        }
    )
    store.write(GraphBatch(nodes={"Case": verdicts}))
    report = monitor(store, period="month")
    may_row = report.cohorts.set_index("month").loc["2026-05"]
    assert not may_row["in_training"] and may_row["n"] == len(order) and may_row["positives"] == len(confirmed)
    y = np.array([k in confirmed for k in may["key"]], dtype=int)
    assert may_row["auc"] == pytest.approx(roc_auc_score(y, may["risk_score"].astype(float)))
    # months the model learned from are marked as such
    assert report.cohorts.set_index("month").loc["2025-06", "in_training"]


def test_the_cli_exits_1_on_act_and_writes_what_the_dashboard_reads(books, tmp_path):
    runner = CliRunner()
    drifted = runner.invoke(
        cli,
        [
            "monitor",
            "--store",
            str(books["drifted"].location),
            "--period",
            "month",
            "--out",
            str(tmp_path / "out"),
            "--quiet",
        ],
    )
    assert drifted.exit_code == 1, drifted.output
    assert "channel" in drifted.output and "act" in drifted.output
    assert (tmp_path / "out" / "monitoring.png").stat().st_size > 10_000
    alerts = pd.read_csv(tmp_path / "out" / "alerts.csv", encoding="utf-8-sig")
    assert set(alerts["status"]) <= {"watch", "act"} and "channel" in set(alerts["column"])
    saved = pd.read_json(Path(books["drifted"].location) / "models" / "monitoring.json", typ="series")
    assert saved["overall"] == "act"
    steady = runner.invoke(cli, ["monitor", "--store", str(books["steady"].location), "--period", "month", "--quiet"])
    assert steady.exit_code == 0, steady.output
    bad = runner.invoke(cli, ["monitor", "--store", str(books["steady"].location), "--since", "not-a-date"])
    assert bad.exit_code == 2 and "--since" in bad.output
