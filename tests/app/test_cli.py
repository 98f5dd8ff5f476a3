"""The CLI: ingest and stats end with a summary and the right exit code."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from ringscope.app.cli import cli
from ringscope.graph.embedded import EmbeddedStore
from tests.sample_data import SAMPLE_EXPECTED, write_sample


def test_ingest_then_stats(tmp_path):
    folder = write_sample(tmp_path / "export")
    store = tmp_path / "store"
    runner = CliRunner()
    result = runner.invoke(
        cli, ["ingest", str(folder), "--store", str(store), "--rejects", str(tmp_path / "r.csv"), "--quiet"]
    )
    assert result.exit_code == 0, result.output
    assert "applications" in result.output and "rejected" in result.output
    assert str(tmp_path / "r.csv") in result.output
    assert "missing required value: amount" in result.output  # top reasons are shown
    stats = runner.invoke(cli, ["stats", "--store", str(store)])
    assert stats.exit_code == 0
    line = next(l for l in stats.output.splitlines() if l.strip().startswith("Application"))
    assert int(line.split()[1].replace(",", "")) == SAMPLE_EXPECTED["nodes"]["Application"]


def test_ingest_of_nothing_exits_non_zero(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(cli, ["ingest", str(empty), "--store", str(tmp_path / "s"), "--quiet"])
    assert result.exit_code == 2
    assert "no contract tables" in result.output


def test_store_and_neo4j_are_exclusive(tmp_path):
    result = CliRunner().invoke(cli, ["stats", "--store", str(tmp_path), "--neo4j", "bolt://127.0.0.1:1"])
    assert result.exit_code == 2
    assert "either --store or --neo4j" in result.output


def test_unreachable_neo4j_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(cli, ["stats", "--neo4j", "bolt://127.0.0.1:9"])
    assert result.exit_code == 1
    assert "Cannot open the store" in result.output


def _ringscope(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "ringscope.app.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


@pytest.mark.slow
def test_killed_ingest_rerun_equals_one_clean_run(tmp_path):
    from ringscope.ingest.synthetic import GeneratorConfig, generate_portfolio

    data = tmp_path / "data"
    generate_portfolio(GeneratorConfig(applications=30_000, seed=3), data)
    clean = tmp_path / "clean"
    proc = _ringscope("ingest", str(data), "--store", str(clean), "--quiet", "--rejects", str(tmp_path / "r1.csv"))
    proc.communicate(timeout=300)
    expected = EmbeddedStore(clean).counts()

    killed = tmp_path / "killed"
    proc = _ringscope("ingest", str(data), "--store", str(killed), "--quiet", "--rejects", str(tmp_path / "r2.csv"))
    # kill it once it has started writing tables, before it finishes
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if any((killed / "nodes").glob("*.rs-tmp-*")) if (killed / "nodes").exists() else False:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "ingest finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = EmbeddedStore(killed).counts()
    # a write is all or nothing: the kill left the store empty, never half of it
    assert partial.total_nodes == 0 or partial == expected

    proc = _ringscope("ingest", str(data), "--store", str(killed), "--quiet", "--rejects", str(tmp_path / "r3.csv"))
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert EmbeddedStore(killed).counts() == expected
    # and the tables themselves are equal, not just their sizes
    for label in ("Application", "Person", "Phone"):
        a = EmbeddedStore(clean).read_nodes(label).sort_values("key").reset_index(drop=True)
        b = EmbeddedStore(killed).read_nodes(label).sort_values("key").reset_index(drop=True)
        pd_testing = pytest.importorskip("pandas.testing")
        pd_testing.assert_frame_equal(
            a.drop(columns=[c for c in a.columns if c == "source_line"]),
            b.drop(columns=[c for c in b.columns if c == "source_line"]),
        )


@pytest.mark.neo4j
@pytest.mark.slow
def test_killed_neo4j_ingest_rerun_equals_one_clean_run(tmp_path, neo4j_driver, neo4j_uri):
    from ringscope.ingest.synthetic import GeneratorConfig, generate_portfolio

    data = tmp_path / "data"
    generate_portfolio(GeneratorConfig(applications=8_000, seed=4), data)
    clean = tmp_path / "clean"
    proc = _ringscope("ingest", str(data), "--store", str(clean), "--quiet", "--rejects", str(tmp_path / "r1.csv"))
    proc.communicate(timeout=300)
    expected = EmbeddedStore(clean).counts()  # both stores agree on counts (tested elsewhere)

    def applications() -> int:
        records, _, _ = neo4j_driver.execute_query("MATCH (a:Application) RETURN count(a) AS c", database_="neo4j")
        return records[0]["c"]

    proc = _ringscope("ingest", str(data), "--neo4j", neo4j_uri, "--quiet", "--rejects", str(tmp_path / "r2.csv"))
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None and applications() == 0:
        time.sleep(0.05)
    assert proc.poll() is None, "ingest finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    from ringscope.graph.neo4j_store import Neo4jStore

    store = Neo4jStore(neo4j_uri)
    try:
        assert store.counts() != expected  # the kill really left a partial graph
        proc = _ringscope("ingest", str(data), "--neo4j", neo4j_uri, "--quiet", "--rejects", str(tmp_path / "r3.csv"))
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        assert store.counts() == expected
    finally:
        store.close()
