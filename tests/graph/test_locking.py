"""The store's write lock: one writer at a time, a clear wait or a clear
failure, and a dead holder never keeps it (both stores)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from ringscope.graph.locking import LockHolder, StoreBusy
from ringscope.graph.store import GraphBatch

ROOT = Path(__file__).resolve().parents[2]


def _phone(key: str) -> GraphBatch:
    return GraphBatch(nodes={"Phone": pd.DataFrame({"key": [key]})})


def test_second_writer_waits_then_fails_naming_the_holder(store):
    store.write(_phone("+8613800000000"))
    waits: list[LockHolder | None] = []
    with store.lock(job="ringscope ingest"):
        error: list[BaseException] = []

        def other() -> None:
            try:
                with store.lock(job="ringscope detect", timeout=0.6, on_wait=lambda h, t: waits.append(h)):
                    pass
            except BaseException as exc:  # noqa: BLE001 - handed to the test thread
                error.append(exc)

        thread = threading.Thread(target=other)
        thread.start()
        thread.join(timeout=30)
    assert isinstance(error[0], StoreBusy)
    assert waits and waits[0] is not None
    assert waits[0].pid == os.getpid() and waits[0].command == "ringscope ingest"
    assert f"pid {os.getpid()} (ringscope ingest)" in str(error[0])
    # released: the next writer gets it at once
    with store.lock(timeout=0):
        store.write(_phone("+8613800000001"))
    assert store.counts().nodes["Phone"] == 2


def test_lock_is_reentrant_in_one_thread(store):
    with store.lock(timeout=0):
        with store.lock(timeout=0):
            store.write(_phone("+8613800000002"))  # write takes it again
    assert store.counts().nodes["Phone"] == 1


def test_a_writer_waits_for_the_holder_and_then_proceeds(store):
    started = threading.Event()
    done: list[float] = []

    def holder() -> None:
        with store.lock(job="ringscope train"):
            started.set()
            time.sleep(1.0)
            store.write(_phone("+8613800000003"))
            done.append(time.monotonic())

    thread = threading.Thread(target=holder)
    thread.start()
    started.wait(10)
    store.write(_phone("+8613800000004"))  # waits for the holder (default timeout)
    finished = time.monotonic()
    thread.join()
    assert done and finished >= done[0]
    assert store.counts().nodes["Phone"] == 2


_HOLD_AND_DIE = textwrap.dedent(
    """
    import os, signal, sys
    from ringscope.graph.store import open_store
    {open}
    with store.lock(job="ringscope ingest"):
        print("held", flush=True)
        sys.stdin.readline()  # the test kills us here
    """
)


def _hold_in_child(open_line: str) -> subprocess.Popen:
    code = _HOLD_AND_DIE.format(open=open_line)
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "held"
    return child


def test_a_killed_holder_releases_the_embedded_lock(tmp_path):
    from ringscope.graph.embedded import EmbeddedStore

    path = tmp_path / "store"
    child = _hold_in_child(f"store = open_store({str(path)!r})")
    store = EmbeddedStore(path)
    with pytest.raises(StoreBusy) as busy:
        with store.lock(timeout=0.3):
            pass
    assert busy.value.holder.pid == child.pid  # the message names the holder
    child.send_signal(signal.SIGKILL)
    child.wait()
    with store.lock(timeout=5):  # the kernel dropped the flock with the process
        store.write(_phone("+8613800000005"))
    assert store.counts().nodes["Phone"] == 1


@pytest.mark.neo4j
def test_a_killed_holder_releases_the_neo4j_lock_when_its_lease_runs_out(neo4j_store, neo4j_uri):
    child = _hold_in_child(
        f"from ringscope.graph.neo4j_store import Neo4jStore\nstore = Neo4jStore({neo4j_uri!r}, lock_lease=5)"
    )
    with pytest.raises(StoreBusy) as busy:
        with neo4j_store.lock(timeout=0.5):
            pass
    assert busy.value.holder.pid == child.pid
    assert busy.value.holder.command == "ringscope ingest"
    # alive, the child renews its lease: still held after more than one lease
    time.sleep(6)
    with pytest.raises(StoreBusy):
        with neo4j_store.lock(timeout=0):
            pass
    child.send_signal(signal.SIGKILL)
    child.wait()
    started = time.monotonic()
    with neo4j_store.lock(timeout=30):
        neo4j_store.write(_phone("+8613800000006"))
    assert time.monotonic() - started < 20  # about one lease, not the default wait
    assert neo4j_store.counts().nodes["Phone"] == 1


def test_clear_keeps_the_lock_it_holds(store):
    store.write(_phone("+8613800000007"))
    with store.lock(timeout=0):
        store.clear()
        store.write(_phone("+8613800000008"))
    assert store.counts().nodes["Phone"] == 1
