"""Two real ``ringscope ingest`` processes into one store at the same time:
both load everything, one after the other, or the second fails clearly with
a non-zero exit; never a lost row or a relationship to a missing node."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest

from ringscope.graph.embedded import EmbeddedStore
from ringscope.graph.model import REL_TYPES
from tests.sample_data import split_export

# trains models or runs whole jobs end to end: in `make test`, not in `make test-fast`
pytestmark = pytest.mark.slow

# children run outside the repository, so its top-level folders are not importable by their bare names
OUTSIDE = tempfile.gettempdir()


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> tuple[Path, Path]:
    """One generated portfolio split in two exports with disjoint applications
    (contacts and guarantees follow their application; the registry goes to both)."""
    from ringscope.ingest.synthetic import GeneratorConfig, generate_portfolio

    base = tmp_path_factory.mktemp("two-writers")
    generate_portfolio(GeneratorConfig(applications=3000, seed=5), base / "all")
    apps = pd.read_csv(base / "all" / "applications.csv", dtype=str, keep_default_na=False)
    ids = sorted(set(apps["application_id"]))
    first, second = split_export(base / "all", base, [set(ids[::2]), set(ids[1::2])])
    return first, second


@pytest.fixture(scope="module")
def reference(exports, tmp_path_factory):
    """Counts after loading both exports one after the other, in-process."""
    from ringscope.ingest.pipeline import ingest_folder

    tmp = tmp_path_factory.mktemp("reference")
    store = EmbeddedStore(tmp / "store")
    for i, folder in enumerate(exports):
        ingest_folder(folder, store, rejects_path=tmp / f"rejects-{i}.csv")
    return store.counts()


def _ingest(folder: Path, store_args: list[str], rejects: Path, *extra: str) -> subprocess.Popen:
    """``ringscope ingest`` in a child; its stderr goes to ``<rejects>.err`` so
    the test can watch for the waiting message while it runs."""
    err = open(rejects.with_suffix(".err"), "w+", encoding="utf-8")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ringscope.app.cli",
            "ingest",
            str(folder),
            *store_args,
            "--quiet",
            "--rejects",
            str(rejects),
            *extra,
        ],
        cwd=OUTSIDE,
        stdout=subprocess.PIPE,
        stderr=err,
        text=True,
        env=dict(os.environ),
    )
    proc.err_path = err.name
    return proc


def _stderr(proc: subprocess.Popen) -> str:
    return Path(proc.err_path).read_text(encoding="utf-8")


def _wait_until(condition, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def _finish(*procs: subprocess.Popen) -> list[int]:
    for proc in procs:
        proc.communicate(timeout=600)
    return [proc.returncode for proc in procs]


def _assert_consistent(store, reference) -> None:
    """All rows of both exports, and every relationship between stored nodes."""
    counts = store.counts()
    assert counts == reference
    keys = {}
    for name, rt in REL_TYPES.items():
        rel = store.read_relationships(name)
        if rel.empty:
            continue
        for label, column in ((rt.source, "src"), (rt.target, "dst")):
            if label not in keys:
                keys[label] = set(store.read_nodes(label, [])["key"].astype(str))
            dangling = set(rel[column].astype(str)) - keys[label]
            assert not dangling, f"{name}: {len(dangling)} {column} nodes missing"


@pytest.mark.parametrize("trial", range(4))
def test_two_concurrent_ingests_load_everything_or_one_fails_clearly(exports, reference, tmp_path, trial):
    store_path = tmp_path / "store"
    args = ["--store", str(store_path)]
    if trial % 2:  # started together, as two cron jobs would be
        first = _ingest(exports[0], args, tmp_path / "r0.csv")
        second = _ingest(exports[1], args, tmp_path / "r1.csv")
        assert _finish(first, second) == [0, 0], (_stderr(first), _stderr(second))
    else:  # made to overlap: both start while the lock is held, then race for it
        store = EmbeddedStore(store_path)
        with store.lock(job="ringscope ingest"):
            first = _ingest(exports[0], args, tmp_path / "r0.csv")
            second = _ingest(exports[1], args, tmp_path / "r1.csv")
            waiting = f"waiting for the store lock held by pid {os.getpid()} (ringscope ingest)"
            _wait_until(lambda: waiting in _stderr(first) and waiting in _stderr(second))
        assert _finish(first, second) == [0, 0], (_stderr(first), _stderr(second))
    _assert_consistent(EmbeddedStore(store_path), reference)


def test_a_writer_that_will_not_wait_fails_clearly_and_changes_nothing(exports, tmp_path):
    store_path = tmp_path / "store"
    store = EmbeddedStore(store_path)
    with store.lock(job="ringscope ingest"):
        second = _ingest(exports[1], ["--store", str(store_path)], tmp_path / "r1.csv", "--lock-timeout", "0")
        assert _finish(second) == [3]
    assert f"locked by pid {os.getpid()} (ringscope ingest)" in _stderr(second)
    assert store.counts().total_nodes == 0


@pytest.mark.neo4j
def test_two_concurrent_ingests_into_neo4j_leave_a_consistent_store(
    exports, reference, neo4j_store, neo4j_uri, tmp_path
):
    args = ["--neo4j", neo4j_uri]
    with neo4j_store.lock(job="ringscope ingest"):
        first = _ingest(exports[0], args, tmp_path / "r0.csv")
        second = _ingest(exports[1], args, tmp_path / "r1.csv")
        waiting = f"waiting for the store lock held by pid {os.getpid()} (ringscope ingest)"
        _wait_until(lambda: waiting in _stderr(first) and waiting in _stderr(second), timeout=300)
    assert _finish(first, second) == [0, 0], (_stderr(first), _stderr(second))
    _assert_consistent(neo4j_store, reference)
