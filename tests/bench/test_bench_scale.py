"""bench_scale's measuring: the peak is the whole process tree's (Spark's JVM
is a child of the driver), a step past the memory cap is stopped with its
descendants, and the curve divides by the size."""

from __future__ import annotations

import doctest
import importlib.util
import sys
from pathlib import Path

import psutil
import pytest

_PATH = Path(__file__).resolve().parents[2] / "bench" / "bench_scale.py"

# a parent that starts a child holding ~300 MB, waits for it, and holds little itself
_TREE = (
    "import subprocess, sys; "
    "subprocess.run([sys.executable, '-c', "
    "'import time; b = bytearray(300 * 1024 * 1024); b[::4096] = b\"x\" * len(b[::4096]); time.sleep(2)'], check=True)"
)


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_scale", _PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_scale"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_doctests(bench):
    assert doctest.testmod(bench).failed == 0


def test_peak_counts_the_descendants(bench, tmp_path):
    seconds, peak, status, _load = bench.run_step([sys.executable, "-c", _TREE], 8.0, tmp_path / "log")
    assert status == "ok"
    assert peak > 0.28  # GB: the grandchild's 300 MB, not the parent's ~10 MB
    assert seconds >= 2


def test_a_tree_over_the_cap_is_stopped_whole(bench, tmp_path):
    before = {p.pid for p in psutil.process_iter()}
    seconds, peak, status, _load = bench.run_step([sys.executable, "-c", _TREE], 0.1, tmp_path / "log")
    assert status.startswith("stopped above 0.1 GB")
    assert seconds < 2  # stopped before the child's two-second sleep ended
    leftovers = [
        p
        for p in psutil.process_iter(["cmdline"])
        if p.pid not in before and "bytearray" in " ".join(p.info["cmdline"] or [])
    ]
    assert leftovers == []


def test_a_failing_step_says_so(bench, tmp_path):
    _, _, status, _ = bench.run_step([sys.executable, "-c", "raise SystemExit(3)"], 8.0, tmp_path / "log")
    assert status.startswith("failed (exit 3")


def test_curve_is_seconds_per_million(bench, capsys):
    steps = [
        bench.Step(1_000_000, "embedded", "detect", 200.0, 5.0, "ok"),
        bench.Step(3_000_000, "embedded", "detect", 660.0, 14.0, "ok"),
        bench.Step(1_000_000, "spark", "detect", 300.0, 6.0, "ok"),
        bench.Step(3_000_000, "spark", "detect", 0.0, 20.1, "stopped above 20 GB"),
    ]
    bench.print_tables(steps)
    out = capsys.readouterr().out
    assert "| embedded | detect | 200 | 220 |" in out
    assert "| spark | detect | 300 | — |" in out  # a stopped step has no point on the curve
    assert "| Spark local / embedded detect at 1M | <= 2x | 1.50x | pass |" in out
