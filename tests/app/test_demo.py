"""The demo end to end (without the browser), on both stores."""

from __future__ import annotations

import pandas as pd
import pytest
from click.testing import CliRunner

from ringscope.app.cli import cli

# trains models or runs whole jobs end to end: in `make test`, not in `make test-fast`
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("kind", ["embedded", pytest.param("neo4j", marks=pytest.mark.neo4j)])
def test_demo_generates_ingests_detects_trains_and_flags(kind, tmp_path, monkeypatch, request):
    monkeypatch.setenv("RINGSCOPE_MODELS", str(tmp_path / "models"))
    if kind == "neo4j":
        request.getfixturevalue("neo4j_driver")  # a wiped database
        target = ["--neo4j", request.getfixturevalue("neo4j_uri")]
    else:
        target = ["--store", str(tmp_path / "store")]
    data = tmp_path / "data"
    result = CliRunner().invoke(
        cli, ["demo", "--applications", "1500", "--seed", "3", "--data", str(data), "--no-ui", *target]
    )
    assert result.exit_code == 0, result.output
    for step in ("1/5", "2/5", "3/5", "4/5", "5/5"):
        assert step in result.output
    assert "ring pair F1" in result.output and "graph uplift" in result.output
    flags = pd.read_csv(data / "flags.csv", encoding="utf-8-sig", keep_default_na=False)
    assert list(flags.columns) == ["application_id", "score", "decision", "ring_id", "reasons", "settings"]
    tonight = pd.read_csv(data / "tonight" / "applications.csv", dtype=str)
    assert set(flags["application_id"]) <= set(tonight["application_id"]) and len(flags) > 0
    assert set(flags["decision"]) <= {"pass", "review", "decline"}
