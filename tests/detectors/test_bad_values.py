"""One absurd stored value never breaks a whole-portfolio job (issue 11, item 7).

A store may hold dates of 9999-12-31 or 0001-01-01 and amounts of inf or
1e30 (an older ingest, or another tool writing Parquet or Neo4j). These
tests write such rows straight into a store holding a planted portfolio,
bypassing ingest's checks, then run every detector, train and flag: nothing
raises, the planted findings are still found, and the bad rows are reported.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from ringscope.app.cli import cli
from ringscope.app.jobs import flag_applications
from ringscope.detectors.portfolio import Portfolio
from ringscope.detectors.risk.flagging import FlagIndex
from ringscope.detectors.risk.scoring import TrainingConfig
from ringscope.detectors.risk.training import train
from ringscope.detectors.runner import run_detectors, save_findings
from ringscope.detectors.values import read_amounts, read_times
from ringscope.graph.store import GraphBatch
from ringscope.ingest.pipeline import ingest_folder
from ringscope.ingest.synthetic import GeneratorConfig, generate_portfolio
from tests.detectors.builder import ExportBuilder, person_id

# trains models or runs whole jobs end to end: in `make test`, not in `make test-fast`
pytestmark = pytest.mark.slow

LATER = datetime(2026, 11, 8, 9)  # after every generated application, not in the future
US = {"9999-12-31": 253402214400000000, "0001-01-01": -62135596800000000, "year 0": -62135625943000000}
NORMAL_US = 1767225600000000  # 2026-01-01T00:00Z
BAD_IDS = ["BADT1", "BADT2", "BADT3", "BADA1", "BADA2", "BADA3", "BADD1"]


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad-values") / "data"
    generate_portfolio(GeneratorConfig(applications=1500, seed=5), folder)
    return folder


def _times(values_us: list[int]) -> pd.Series:
    return pd.Series(np.array(values_us, dtype=np.int64).view("datetime64[us]")).dt.tz_localize("UTC")


def bad_batch() -> GraphBatch:
    """Seven applications no ingest would load today, linked into the graph
    like any other (an applicant each, one shared device, a guarantee): three
    impossible times, amounts of inf, 1e30 and NaN, a declared income of inf,
    and two persons born in years 1 and 9999."""
    n = len(BAD_IDS)
    times = [US["9999-12-31"], US["0001-01-01"], US["year 0"]] + [NORMAL_US + i * 3_600_000_000 for i in range(4)]
    apps = pd.DataFrame(
        {
            "key": BAD_IDS,
            "applied_at": _times(times),
            "amount": [50_000.0, 60_000.0, 70_000.0, float("inf"), 1e30, float("nan"), 80_000.0],
            "term_months": [12.0] * n,
            "product": "消费贷",
            "channel": "app",
            "label": ["fraud", "good", "fraud", "good", "fraud", "good", "fraud"],
            "declared_monthly_income": [12_000.0] * (n - 1) + [float("inf")],
            "applicant_name": [f"坏值{i}" for i in range(n)],
            "applicant_name_raw": [f"坏值{i}" for i in range(n)],
            "borrower_label": "Person",
        }
    )
    persons = [person_id(9000 + i) for i in range(n)]
    apps["borrower_key"] = persons
    births = pd.Series(np.array(["0001-01-01", "9999-12-31"] + ["1985-06-01"] * (n - 2), dtype="datetime64[ms]"))
    return GraphBatch(
        nodes={
            "Application": apps,
            "Person": pd.DataFrame({"key": persons, "name": apps["applicant_name"], "birth_date": births}),
            "Device": pd.DataFrame({"key": ["bad-values-device"]}),
            "Company": pd.DataFrame({"key": ["name:坏值担保公司"], "name": ["坏值担保公司"]}),
        },
        relationships={
            "Person-APPLIED-Application": pd.DataFrame({"src": persons, "dst": BAD_IDS}),
            "Application-HAS_DEVICE-Device": pd.DataFrame({"src": BAD_IDS, "dst": "bad-values-device"}),
            "Company-GUARANTEES-Person": pd.DataFrame(
                {
                    "src": ["name:坏值担保公司"],
                    "dst": [persons[0]],
                    "application_id": ["BADT1"],
                    "amount": [float("inf")],
                }
            ),
        },
    )


def _prepared(store, generated, tmp_path):
    """The planted book, its findings before any bad row, then the bad rows."""
    ingest_folder(generated, store, rejects_path=tmp_path / "rejects.csv")
    clean = run_detectors(store)
    assert not clean.errors and not clean.bad_values
    store.write(bad_batch())
    return clean


def test_every_job_survives_absurd_stored_values(store, generated, tmp_path):
    clean = _prepared(store, generated, tmp_path)
    # the store itself reads the rows back as it holds them (year 0 included), for the portfolio to judge
    stored = store.node_properties("Application", ["BADT3", "BADA1"], ["applied_at", "amount"]).set_index("key")
    assert stored.loc["BADT3", "applied_at"].year == 0 and stored.loc["BADA1", "amount"] == float("inf")
    run = run_detectors(store)
    assert run.errors == {}
    # the planted findings are still found: every strong finding of the clean book, same members
    strong = {f.finding_id: f for f in clean.findings if f.score >= 0.5}
    found = {f.finding_id: f for f in run.findings}
    assert len(strong) > 20
    assert set(strong) <= set(found)
    assert all(abs(found[i].score - f.score) < 0.05 for i, f in strong.items())
    # the bad rows are reported, per column
    reported = {(b.rows, b.column, b.reason): b.count for b in run.bad_values}
    absurd = "not finite or beyond ±1e+12"
    assert reported == {
        ("applications", "applied_at", "outside 1900–2262"): 3,
        ("applications", "amount", absurd): 2,  # inf, 1e30; NaN is simply missing
        ("applications", "declared_monthly_income", absurd): 1,
        ("guarantees", "amount", absurd): 1,
        ("persons", "birth_date", "outside 1900–2262"): 2,
    }
    assert "3 applications with applied_at outside 1900–2262 read as missing" in {
        b.message.split(" (")[0] for b in run.bad_values
    }
    save_findings(store, run)

    result = train(store, TrainingConfig(), folder=tmp_path / "models")
    assert np.isfinite(result.scored["score"]).all() and len(result.scored) == len(Portfolio(store).applications)
    assert result.report["labelled"] == Portfolio(store).applications["label"].notna().sum() - 3  # untimed left out
    assert {b.column for b in result.bad_values} >= {"applied_at", "amount", "birth_date"}

    # flagging a new batch over the dirty graph, and scoring the bad rows themselves on both paths
    batch = ExportBuilder(start=LATER, first_index=7000)
    batch.app("NEWOK", device_id="bad-values-device", label="")
    summary, flagged = flag_applications(store, batch.write(tmp_path / "new"), result.model, tmp_path / "r.csv")
    assert list(flagged.flags["application_id"]) == ["NEWOK"] and np.isfinite(flagged.flags["score"]).all()
    assert {b.column for b in flagged.bad_values} >= {"applied_at", "amount"}
    index = FlagIndex.build(store)
    by_batch = index.score(result.model, BAD_IDS, method="batch").flags.set_index("application_id")
    by_single = index.score(result.model, BAD_IDS, method="single").flags.set_index("application_id")
    assert np.isfinite(by_batch["score"]).all()
    pd.testing.assert_frame_equal(
        by_batch.loc[BAD_IDS], by_single.loc[BAD_IDS], check_index_type=False, check_dtype=False
    )


def test_detect_cli_reports_the_bad_rows(generated, tmp_path):
    from ringscope.graph.embedded import EmbeddedStore

    store = EmbeddedStore(tmp_path / "store")
    _prepared(store, generated, tmp_path)
    result = CliRunner().invoke(cli, ["detect", "--store", str(tmp_path / "store"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "warning: 3 applications with applied_at outside 1900–2262 read as missing" in result.output
    assert "warning: 2 applications with amount not finite or beyond ±1e+12 read as missing" in result.output


def test_untimed_applications_count_nothing_and_are_counted_by_nobody(tmp_path):
    """An application whose time was read as missing is neither before nor
    after any other, in training features and in the flagging index alike."""
    from ringscope.detectors.risk.features import application_features
    from ringscope.graph.embedded import EmbeddedStore

    b = ExportBuilder()
    for i in range(3):
        b.app(
            f"S{i}",
            device_id="shared",
            applied_at=datetime(2025, 3, 1) + timedelta(days=i),
            label="fraud" if i == 0 else "",
        )
    store = EmbeddedStore(tmp_path / "store")
    b.load(store, tmp_path / "export")
    store.write(
        GraphBatch(nodes={"Application": pd.DataFrame({"key": ["S0"], "applied_at": _times([US["9999-12-31"]])})})
    )
    features = application_features(Portfolio(store))
    index = FlagIndex.build(store)
    graph = index.graph_features(index.app_pos.get_indexer(["S0", "S1", "S2"]))
    for frame in (features, graph):
        assert frame.loc["S0", "earlier_sharers_device"] == 0  # no time: nothing before it
        assert frame.loc["S2", "earlier_sharers_device"] == 1  # S1 only: S0 is not earlier
        assert frame.loc["S2", "bad_earlier_device"] == 0  # S0's fraud has no time to precede S2


@pytest.mark.parametrize(
    "values, expected_missing, reported",
    [
        (["2025-01-05T00:00:00Z", "1899-12-31T23:59:59Z", "2262-04-12T00:00:00Z"], [False, True, True], 2),
        (["1900-01-01T00:00:00Z", "2262-04-11T00:00:00Z", None], [False, False, True], 0),
        (["not a date", "2025-13-01", "2025-01-01"], [True, True, False], 2),
    ],
)
def test_read_times_window(values, expected_missing, reported):
    clean, bad = read_times(pd.Series(values, dtype=object), rows="applications", column="applied_at")
    assert clean.isna().tolist() == expected_missing
    assert sum(b.count for b in bad) == reported
    assert str(clean.dtype) == "datetime64[us, UTC]"


def test_read_amounts_keeps_plausible_figures():
    clean, bad = read_amounts(pd.Series([1.0, -5.0, 1e12, 1.0000001e12, float("-inf"), None]), column="amount")
    assert clean.isna().tolist() == [False, False, False, True, True, True]
    assert [b.count for b in bad] == [2]
