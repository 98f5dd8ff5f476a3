"""bench_quality's summary: median, 10th percentile and worst per figure, and
the issue's targets judged on them."""

from __future__ import annotations

import doctest
import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

_PATH = Path(__file__).resolve().parents[2] / "bench" / "bench_quality.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_quality", _PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_doctests(bench):
    assert doctest.testmod(bench).failed == 0


def test_summary_takes_the_bad_tail_and_skips_undefined(bench):
    rows = pd.DataFrame(
        {
            "auc": [*np.linspace(0.9, 1.0, 11), np.nan],
            "honest_declined": [0.0] * 10 + [0.02, 0.005],
        }
    )
    s = bench.summarise(rows).set_index("figure")
    assert s.loc["auc", "n"] == 11 and s.loc["auc", "median"] == pytest.approx(0.95)
    assert s.loc["auc", "p10"] == pytest.approx(0.91) and s.loc["auc", "worst"] == pytest.approx(0.9)
    assert s.loc["honest_declined", "worst"] == 0.02
    assert s.loc["honest_declined", "p10"] == pytest.approx(np.percentile(rows["honest_declined"], 90))


def test_verdicts_against_the_issue_targets(bench):
    good = pd.DataFrame(
        {
            "auc": [0.98] * 20,
            "precision_at_k": [0.9] * 20,
            "pair_f1": [0.9] * 20,
            "rings_recovered": [0.95] * 20,
            "circles_recovered": [1.0] * 20,
            "honest_declined": [0.005] * 20,
        }
    )
    checks = bench.verdicts(bench.summarise(good))
    assert len(checks) == 7 and (checks["result"] == "PASS").all()
    bad = good.copy()
    bad.loc[0, "honest_declined"] = 0.011  # one scenario over 1% fails "in every scenario"
    bad["auc"] = [0.99] * 17 + [0.5] * 3  # median fine, 10th percentile not
    result = bench.verdicts(bench.summarise(bad)).set_index("target")["result"]
    assert result["median >= 0.97"] == "PASS" and result["p10 >= 0.93"] == "FAIL"
    assert result["worst <= 0.01"] == "FAIL"
    # a scenario that did not run cannot be said to keep honest declines under 1%
    failed = bench.verdicts(bench.summarise(good), errors=1).set_index("figure")["result"]
    assert failed["honest_declined"] == "FAIL" and failed["auc"].eq("PASS").all()
