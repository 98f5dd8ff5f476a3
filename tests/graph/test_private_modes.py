"""Personal data is private to its user: store folders 0700, their files 0600,
whatever the umask (the suite runs these with umask 022)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from ringscope.graph.embedded import EmbeddedStore
from ringscope.graph.store import GraphBatch
from tests.sample_data import write_sample

# children run outside the repository, so its top-level folders are not importable by their bare names
OUTSIDE = tempfile.gettempdir()


@pytest.fixture(autouse=True)
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _assert_private(root: Path) -> None:
    assert _mode(root) == 0o700, root
    for path in root.rglob("*"):
        expected = 0o700 if path.is_dir() else 0o600
        assert _mode(path) == expected, f"{path.relative_to(root)}: {oct(_mode(path))}"


def test_a_new_store_and_everything_in_it_is_private(tmp_path):
    from ringscope.ingest.pipeline import ingest_folder

    store = EmbeddedStore(tmp_path / "store")
    summary = ingest_folder(write_sample(tmp_path / "export"), store, rejects_path=tmp_path / "out" / "rejects.csv")
    store.replace_derived(GraphBatch(nodes={"Finding": pd.DataFrame({"key": ["f1"]})}))
    names = {p.name for p in (tmp_path / "store").iterdir()}
    assert {"store.json", "write.lock", "read.lock", "nodes", "rels"} <= names
    _assert_private(tmp_path / "store")
    assert _mode(Path(summary.rejects_path)) == 0o600
    assert _mode(tmp_path / "out") == 0o700


def test_an_old_world_readable_store_is_made_private_on_open(tmp_path):
    store = EmbeddedStore(tmp_path / "store")
    store.write(GraphBatch(nodes={"Phone": pd.DataFrame({"key": ["+8613800138000"]})}))
    root = tmp_path / "store"
    for path in [root, *root.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    EmbeddedStore(root)
    _assert_private(root)


def test_a_folder_of_other_files_is_not_locked_down(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    (shared / "notes.txt").write_text("not ours")
    store = EmbeddedStore(shared)
    store.write(GraphBatch(nodes={"Phone": pd.DataFrame({"key": ["+8613800138000"]})}))
    assert _mode(shared) == 0o755  # someone's folder: only what we create in it is private
    assert _mode(shared / "nodes") == 0o700
    assert _mode(shared / "nodes" / "Phone.parquet") == 0o600


def test_the_dashboard_users_file_is_private(tmp_path):
    from ringscope.app.dashboard.auth import add_user

    path = tmp_path / "newstore" / "users.json"
    add_user(path, "ana", "correct horse battery", "analyst")
    assert _mode(path) == 0o600
    assert _mode(path.parent) == 0o700


def test_the_cli_creates_private_outputs_whatever_the_umask(tmp_path):
    out = tmp_path / "generated"
    subprocess.run(
        [sys.executable, "-m", "ringscope.app.cli", "generate", "--applications", "60", "--out", str(out), "--quiet"],
        cwd=OUTSIDE,
        env=dict(os.environ),
        check=True,
        capture_output=True,
        preexec_fn=lambda: os.umask(0o022),
    )
    files = [p for p in out.rglob("*") if p.is_file()]
    assert files and all(_mode(p) == 0o600 for p in files)
    assert _mode(out) == 0o700
