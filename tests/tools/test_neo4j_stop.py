"""Stopping a launcher-run server from a process that did not start it.

``ingest --bulk`` stops the server it imports into; when the server was
started by a process that is still alive (a bench, a test, an app that runs
the CLI as a child), the stopped JVM stays a zombie of that parent, and signal
0 still reaches a zombie: the stop used to wait its whole timeout (60 s) and
then SIGKILL a process that had already shut down cleanly. No Neo4j here: a
small Python process stands in for the launcher (its command line names the
launcher's main class, which is what the pid check looks for).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

TOOLS = Path(__file__).resolve().parents[2] / "tools"


def _launcher():
    if str(TOOLS) not in sys.path:
        sys.path.insert(0, str(TOOLS))
    import neo4j_server

    return neo4j_server


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]


def test_a_zombie_is_not_alive():
    launcher = _launcher()
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 20
    while _state(child.pid) != "Z":  # exited, not reaped yet: we have not waited for it
        assert time.monotonic() < deadline
        time.sleep(0.05)
    try:
        assert not launcher._pid_alive(child.pid)
    finally:
        child.wait()


def test_stop_from_another_process_returns_when_the_server_exits(tmp_path):
    launcher = _launcher()
    fake = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))  # a clean shutdown, at once\n"
        "time.sleep(120)\n"
    )
    server = subprocess.Popen([sys.executable, "-c", fake, launcher.MAIN_CLASS])  # this process is its parent
    try:
        (tmp_path / "neo4j.pid").write_text(f"{server.pid}\n")
        deadline = time.monotonic() + 20
        while not launcher.server_running(tmp_path):  # the interpreter has started
            assert time.monotonic() < deadline
            time.sleep(0.05)
        stop = (
            f"import sys, time; sys.path.insert(0, {str(TOOLS)!r}); import neo4j_server\n"
            "t = time.monotonic()\n"
            f"assert neo4j_server.stop_server({str(tmp_path)!r}, timeout=15)\n"
            "print(time.monotonic() - t)\n"
        )
        done = subprocess.run([sys.executable, "-c", stop], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert float(done.stdout) < 8  # not the 15 s timeout
        assert server.wait(10) == 0  # it exited on SIGTERM, not killed (-9)
        assert not (tmp_path / "neo4j.pid").exists()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
