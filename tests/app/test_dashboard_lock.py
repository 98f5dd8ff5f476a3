"""Dashboard case writes take the store's one write lock: while a batch job
holds it, a case save fails clearly and saves nothing (audit event included)."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ringscope.app.dashboard import cases
from ringscope.graph.embedded import EmbeddedStore

ROOT = Path(__file__).resolve().parents[2]


def test_case_write_waits_for_a_batch_job_then_fails_clearly(tmp_path, monkeypatch):
    store = EmbeddedStore(tmp_path / "store")
    store.ensure_schema()
    code = textwrap.dedent(f"""
        import sys
        from ringscope.graph.embedded import EmbeddedStore
        with EmbeddedStore({str(tmp_path / "store")!r}).lock(job="ringscope detect"):
            print("held", flush=True)
            sys.stdin.readline()
    """)
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "held"
        monkeypatch.setattr(cases, "LOCK_WAIT", 0.5)
        with pytest.raises(cases.CaseError, match=rf"pid {child.pid} \(ringscope detect\)"):
            cases.update_case(store, "ana", "Application", "A1", status="In progress")
        assert store.counts().nodes["AuditEvent"] == 0 and store.counts().nodes["Case"] == 0
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    saved = cases.update_case(store, "ana", "Application", "A1", status="In progress")
    assert saved.status == "In progress"
    assert store.counts().nodes["AuditEvent"] == 1
