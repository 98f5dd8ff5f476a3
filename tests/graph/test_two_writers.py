"""Two real ``ringscope ingest`` processes into one store at the same time:
both load everything, one after the other, or the second fails clearly with
a non-zero exit; never a lost row or a relationship to a missing node."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from graph.embedded import EmbeddedStore
from graph.model import REL_TYPES

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> tuple[Path, Path]:
    """One generated portfolio split in two exports with disjoint applications
    (contacts and guarantees follow their application; the registry goes to both)."""
    from ingest.synthetic import GeneratorConfig, generate_portfolio

    base = tmp_path_factory.mktemp("two-writers")
    generate_portfolio(GeneratorConfig(applications=3000, seed=5), base / "all")
    apps = pd.read_csv(base / "all" / "applications.csv", dtype=str, keep_default_na=False)
    ids = sorted(set(apps["application_id"]))
    halves = [set(ids[::2]), set(ids[1::2])]
    folders = []
    for i, half in enumerate(halves):
        folder = base / f"export-{i}"
        folder.mkdir()
        for name in ("applications", "contacts", "guarantees", "company_roles"):
            table = pd.read_csv(base / "all" / f"{name}.csv", dtype=str, keep_default_na=False)
            if "application_id" in table.columns:
                table = table[table["application_id"].isin(half)]
            table.to_csv(folder / f"{name}.csv", index=False)
        folders.append(folder)
    return folders[0], folders[1]


@pytest.fixture(scope="module")
def reference(exports, tmp_path_factory):
    """Counts after loading both exports one after the other, in-process."""
    from ingest.pipeline import ingest_folder

    tmp = tmp_path_factory.mktemp("reference")
    store = EmbeddedStore(tmp / "store")
    for i, folder in enumerate(exports):
        ingest_folder(folder, store, rejects_path=tmp / f"rejects-{i}.csv")
    return store.counts()


def _ingest(folder: Path, store_args: list[str], rejects: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", "ingest", str(folder), *store_args, "--quiet", "--rejects", str(rejects),
         *extra],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def _wait_until(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def _embedded_holder(store_path: Path) -> int | None:
    try:
        return json.loads((store_path / "write.lock").read_text(encoding="utf-8"))["pid"]
    except (OSError, ValueError, KeyError):
        return None


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
    first = _ingest(exports[0], args, tmp_path / "r0.csv")
    if trial % 2 == 0:  # make sure they overlap: the second starts while the first holds the lock
        _wait_until(lambda: _embedded_holder(store_path) == first.pid)
    second = _ingest(exports[1], args, tmp_path / "r1.csv")
    out = [p.communicate(timeout=300) for p in (first, second)]
    codes = [first.returncode, second.returncode]
    assert codes == [0, 0], out
    if trial % 2 == 0:
        assert f"waiting for the store lock held by pid {first.pid} (ringscope ingest)" in out[1][1]
    _assert_consistent(EmbeddedStore(store_path), reference)


def test_second_ingest_without_wait_fails_clearly_and_loses_nothing(exports, tmp_path):
    from ingest.pipeline import ingest_folder

    store_path = tmp_path / "store"
    first = _ingest(exports[0], ["--store", str(store_path)], tmp_path / "r0.csv")
    _wait_until(lambda: _embedded_holder(store_path) == first.pid)
    second = _ingest(exports[1], ["--store", str(store_path)], tmp_path / "r1.csv", "--lock-timeout", "0")
    _, err = second.communicate(timeout=300)
    first.communicate(timeout=300)
    assert first.returncode == 0
    assert second.returncode == 3
    assert f"locked by pid {first.pid} (ringscope ingest)" in err
    # the store holds exactly the first export, whole
    alone = EmbeddedStore(tmp_path / "alone")
    ingest_folder(exports[0], alone, rejects_path=tmp_path / "r-alone.csv")
    _assert_consistent(EmbeddedStore(store_path), alone.counts())


@pytest.mark.neo4j
def test_two_concurrent_ingests_into_neo4j_leave_a_consistent_store(exports, reference, neo4j_store, neo4j_uri,
                                                                    tmp_path):
    args = ["--neo4j", neo4j_uri]
    neo4j_store.ensure_schema()

    def holder() -> int | None:
        records, _, _ = neo4j_store.driver.execute_query("MATCH (l:RingscopeLock {key: 'write'}) RETURN l.pid AS pid")
        return records[0]["pid"] if records else None

    first = _ingest(exports[0], args, tmp_path / "r0.csv")
    _wait_until(lambda: holder() == first.pid, timeout=120)
    second = _ingest(exports[1], args, tmp_path / "r1.csv")
    out = [p.communicate(timeout=600) for p in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], out
    assert f"waiting for the store lock held by pid {first.pid} (ringscope ingest)" in out[1][1]
    _assert_consistent(neo4j_store, reference)
