"""Writers killed midway: the store holds the old state or the new, never a
mix; never findings without their INVOLVES edges; no temporary files once the
store is opened again. Real processes, killed with SIGKILL at injected points
(``RINGSCOPE_TEST_KILL_AT``) and at random moments."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from ringscope.graph.embedded import JOURNAL, EmbeddedStore
from ringscope.graph.files import TMP_MARKER
from ringscope.graph.model import FINDING_TARGETS, REL_TYPES
from tests.sample_data import split_export

# trains models or runs whole jobs end to end: in `make test`, not in `make test-fast`
pytestmark = pytest.mark.slow

# children run outside the repository, so its top-level folders are not importable by their bare names
OUTSIDE = tempfile.gettempdir()


def _cli(*args: str, kill_at: str | None = None) -> subprocess.Popen:
    # read the environment now: the Neo4j fixture sets its credentials after import
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    if kill_at:
        env["RINGSCOPE_TEST_KILL_AT"] = kill_at
    return subprocess.Popen(
        [sys.executable, "-m", "ringscope.app.cli", *args, "--quiet"],
        cwd=OUTSIDE,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _run(*args: str, kill_at: str | None = None) -> subprocess.CompletedProcess:
    proc = _cli(*args, kill_at=kill_at)
    out, err = proc.communicate(timeout=600)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> tuple[Path, Path]:
    """Two deliveries: the first 70% of a generated portfolio, then the rest."""
    import pandas as pd

    from ringscope.ingest.synthetic import GeneratorConfig, generate_portfolio

    base = tmp_path_factory.mktemp("atomic")
    generate_portfolio(GeneratorConfig(applications=2000, seed=9), base / "all")
    apps = pd.read_csv(base / "all" / "applications.csv", dtype=str, keep_default_na=False)
    ids = sorted(set(apps["application_id"]))
    cut = int(len(ids) * 0.7)
    first, second = split_export(base / "all", base, [set(ids[:cut]), set(ids[cut:])])
    return first, second


def _graph_state(store) -> tuple:
    counts = store.counts()
    return tuple(sorted(counts.nodes.items())) + tuple(sorted(counts.relationships.items()))


def _findings_state(store) -> tuple[frozenset, int, int]:
    """(finding keys, INVOLVES edges, SIMILAR_TO edges), checking that every
    finding has INVOLVES edges and every INVOLVES edge a finding."""
    keys = set(store.read_nodes("Finding", [])["key"].astype(str))
    sources: set[str] = set()
    involves = 0
    for label in FINDING_TARGETS:
        rel = store.read_relationships(f"Finding-INVOLVES-{label}")
        involves += len(rel)
        sources |= set(rel["src"].astype(str))
    assert sources == keys, (
        f"{len(keys - sources)} findings without INVOLVES, {len(sources - keys)} edges without finding"
    )
    similar = sum(len(store.read_relationships(n)) for n, rt in REL_TYPES.items() if rt.type == "SIMILAR_TO")
    return frozenset(keys), involves, similar


def _leftovers(path: Path) -> list[Path]:
    return [p for p in path.rglob("*") if TMP_MARKER in p.name or ".parquet.tmp" in p.name or p.name == JOURNAL]


@pytest.fixture(scope="module")
def detect_states(exports, tmp_path_factory):
    """A store after part 0 + detect (old findings), part 1 ingested on top;
    and the findings a clean detect then saves (new findings)."""
    base = tmp_path_factory.mktemp("detect-states")
    store = base / "before"
    assert _run("ingest", str(exports[0]), "--store", str(store), "--rejects", str(base / "r0.csv")).returncode == 0
    assert _run("detect", "--store", str(store)).returncode in (0, 1)
    old = _findings_state(EmbeddedStore(store))
    assert _run("ingest", str(exports[1]), "--store", str(store), "--rejects", str(base / "r1.csv")).returncode == 0
    clean = base / "clean"
    shutil.copytree(store, clean)
    assert _run("detect", "--store", str(clean)).returncode in (0, 1)
    new = _findings_state(EmbeddedStore(clean))
    assert old != new and old[0] and new[0]
    return store, old, new


@pytest.mark.parametrize("kill_at", ["table-written:1", "table-written:4", "swapped:1", "swapped:3", "swapped:7"])
def test_killed_detect_leaves_old_or_new_findings(detect_states, tmp_path, kill_at):
    source, old, new = detect_states
    store_path = tmp_path / "store"
    shutil.copytree(source, store_path)
    killed = _run("detect", "--store", str(store_path), kill_at=kill_at)
    assert killed.returncode == -signal.SIGKILL
    if kill_at.startswith("swapped"):
        assert (store_path / JOURNAL).exists()  # died inside the swap
    store = EmbeddedStore(store_path)  # the next open finishes or undoes it
    state = _findings_state(store)
    assert state == (new if kill_at.startswith("swapped") else old)
    assert _leftovers(store_path) == []


def test_killed_detect_at_random_moments(detect_states, tmp_path):
    source, old, new = detect_states
    started = time.monotonic()
    clean = tmp_path / "timing"
    shutil.copytree(source, clean)
    _run("detect", "--store", str(clean))
    duration = time.monotonic() - started
    rng = random.Random(11)
    for trial in range(4):
        store_path = tmp_path / f"store-{trial}"
        shutil.copytree(source, store_path)
        proc = _cli("detect", "--store", str(store_path))
        time.sleep(rng.uniform(0.5, duration))
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        state = _findings_state(EmbeddedStore(store_path))
        assert state in (old, new)
        assert _leftovers(store_path) == []


@pytest.mark.parametrize("kill_at", ["table-written:2", "table-written:9", "swapped:1", "swapped:5", "swapped:12"])
def test_killed_ingest_leaves_old_or_new_graph(exports, tmp_path, kill_at):
    store_path = tmp_path / "store"
    assert (
        _run("ingest", str(exports[0]), "--store", str(store_path), "--rejects", str(tmp_path / "r.csv")).returncode
        == 0
    )
    old = _graph_state(EmbeddedStore(store_path))
    reference = tmp_path / "reference"
    shutil.copytree(store_path, reference)
    assert (
        _run("ingest", str(exports[1]), "--store", str(reference), "--rejects", str(tmp_path / "r.csv")).returncode == 0
    )
    new = _graph_state(EmbeddedStore(reference))
    reader = EmbeddedStore(store_path)  # opened before the kill: its next read must repair, not see a mix
    killed = _run(
        "ingest", str(exports[1]), "--store", str(store_path), "--rejects", str(tmp_path / "r.csv"), kill_at=kill_at
    )
    assert killed.returncode == -signal.SIGKILL
    assert _graph_state(reader) == (new if kill_at.startswith("swapped") else old)
    EmbeddedStore(store_path)
    assert _leftovers(store_path) == []
    # and running the same ingest again ends where one clean run does
    assert (
        _run("ingest", str(exports[1]), "--store", str(store_path), "--rejects", str(tmp_path / "r.csv")).returncode
        == 0
    )
    assert _graph_state(EmbeddedStore(store_path)) == new


def test_old_style_temporary_files_are_removed_on_open(tmp_path):
    store_path = tmp_path / "store"
    store = EmbeddedStore(store_path)
    store.ensure_schema()
    stray = store_path / "nodes" / "Application.parquet.tmp12345"
    stray.write_bytes(b"half a table")
    EmbeddedStore(store_path)
    assert not stray.exists()


@pytest.mark.neo4j
def test_killed_detect_on_neo4j_keeps_the_old_findings_visible(exports, neo4j_store, neo4j_uri, tmp_path):
    args = ["--neo4j", neo4j_uri]
    assert _run("ingest", str(exports[0]), *args, "--rejects", str(tmp_path / "r0.csv")).returncode == 0
    assert _run("detect", *args).returncode in (0, 1)
    old = _findings_state(neo4j_store)
    assert _run("ingest", str(exports[1]), *args, "--rejects", str(tmp_path / "r1.csv")).returncode == 0
    killed = _run("detect", *args, kill_at="run-written")  # all new findings written, not committed
    assert killed.returncode == -signal.SIGKILL
    assert _findings_state(neo4j_store) == old

    # killed at a random moment: old or new, each finding with its edges
    proc = _cli("detect", *args)
    time.sleep(random.Random(3).uniform(2, 8))
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    between = _findings_state(neo4j_store)

    assert _run("detect", *args).returncode in (0, 1)
    new = _findings_state(neo4j_store)
    assert between in (old, new)
    assert new != old
    # what the killed runs wrote is gone: every stored finding is a visible one
    records, _, _ = neo4j_store.driver.execute_query("MATCH (f:Finding) RETURN count(f) AS n")
    assert records[0]["n"] == len(new[0])


def test_readers_never_see_half_a_commit(tmp_path, monkeypatch):
    """A reader between the swaps of a commit would see the new Phone edges
    before (or without) their Applications; the swap is slowed down here so a
    reader that did not wait for it would be caught."""
    import threading

    import pandas as pd

    import ringscope.graph.embedded as embedded
    from ringscope.graph.store import GraphBatch

    def batch(start: int, n: int) -> GraphBatch:
        keys = [f"A{i}" for i in range(start, start + n)]
        return GraphBatch(
            nodes={"Application": pd.DataFrame({"key": keys}), "Phone": pd.DataFrame({"key": ["+8613800138000"]})},
            relationships={"Application-HAS_PHONE-Phone": pd.DataFrame({"src": keys, "dst": "+8613800138000"})},
        )

    store = EmbeddedStore(tmp_path / "store")
    store.write(batch(0, 50))
    monkeypatch.setattr(embedded, "_fault_point", lambda point: time.sleep(0.15) if point == "swapped" else None)
    first_read = threading.Event()

    def write_during_a_read() -> None:
        first_read.wait(10)  # the commit starts while a reader is between its two reads
        store.write(batch(50, 50))

    writer = threading.Thread(target=write_during_a_read)
    writer.start()
    seen = set()
    started = time.monotonic()
    while writer.is_alive() or not seen:
        with store.reading():
            apps = set(store.read_nodes("Application")["key"])
            first_read.set()
            time.sleep(0.5)  # a slow reader: a swap must not land between its two reads
            edges = set(store.read_relationships("Application-HAS_PHONE-Phone")["src"])
        assert edges <= apps, f"{len(edges - apps)} edges to applications not yet visible"
        seen.add(len(apps))
    writer.join()
    assert seen == {50, 100}  # the reader saw the old state, then the new
    assert time.monotonic() - started < 10  # and the readers did not starve the swap
    assert store.counts().nodes["Application"] == 100
