"""Start the dashboard: ``streamlit run`` on 127.0.0.1, nothing leaving the machine.

The server listens on loopback only, headless (no browser prompt, no e-mail
prompt), with usage statistics off, no file watcher and no development mode;
the store is handed over in environment variables. Streamlit ships its own
fonts and st-link-analysis bundles its JavaScript, and the pages use no
``:material/`` icons or remote images, so the browser never asks anyone but
127.0.0.1 for anything (``tests/app/browser`` proves it).

Streamlit runs as a child process that never outlives ``launch``: Ctrl+C,
SIGTERM and SIGHUP to the launcher stop it (and wait for it), and on Linux
the child is also told to stop if the launcher dies without cleaning up
(``PR_SET_PDEATHSIG``), so no orphan keeps serving the port.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

__all__ = ["launch", "stop", "streamlit_command", "wait_until_ready", "free_port", "ensure_first_user"]

MAIN = Path(__file__).with_name("main.py")

#: every server/browser option that keeps requests on loopback
STREAMLIT_OPTIONS = {
    "server.address": "127.0.0.1",
    "server.headless": "true",
    "server.fileWatcherType": "none",
    "server.runOnSave": "false",
    "server.enableXsrfProtection": "true",
    "browser.gatherUsageStats": "false",
    "browser.serverAddress": "127.0.0.1",
    "global.developmentMode": "false",
    "client.toolbarMode": "viewer",
    "client.showErrorDetails": "false",
    "theme.base": "light",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def streamlit_command(port: int) -> list[str]:
    """The ``streamlit run`` command line (options as flags)."""
    cmd = [sys.executable, "-m", "streamlit", "run", str(MAIN)]
    opts = dict(STREAMLIT_OPTIONS, **{"server.port": str(port), "browser.serverPort": str(port)})
    cmd += [f"--{k}={v}" for k, v in opts.items()]
    return cmd


def wait_until_ready(port: int, timeout: float = 60.0, process: subprocess.Popen | None = None) -> None:
    """Poll ``/_stcore/health`` until the server answers (or fail)."""
    deadline = time.monotonic() + timeout
    url = f"http://127.0.0.1:{port}/_stcore/health"
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"The dashboard exited with code {process.returncode} before it was ready.")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    raise TimeoutError(f"The dashboard did not answer on {url} within {timeout:.0f} s.")


def ensure_first_user(store_path: str | None, neo4j_uri: str | None) -> tuple[str, str] | None:
    """With no users file yet, create an ``admin`` with a random password and
    return (name, password) so it can be shown once; else ``None``."""
    import secrets

    from ringscope.app.dashboard import auth

    path = auth.users_file(store_path, neo4j_uri)
    if auth.load_users(path):
        return None
    password = secrets.token_urlsafe(12)
    auth.add_user(path, "admin", password, "admin")
    return "admin", password


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: SIGTERM this process when the launcher dies, however it dies."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def stop(process: subprocess.Popen, timeout: float = 10.0) -> int | None:
    """Terminate ``process`` and wait for it (kill it if it does not stop in ``timeout`` s)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)
    return process.returncode


def _serve_until_stopped(process: subprocess.Popen) -> None:
    """Wait for the child; Ctrl+C, SIGTERM or SIGHUP to this process stop it first."""
    handled = (signal.SIGTERM, signal.SIGHUP)
    previous = {}

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, interrupt) for sig in handled}
    try:
        process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        try:
            stop(process)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def launch(
    store_path: str | None,
    neo4j_uri: str | None,
    port: int = 8501,
    open_browser: bool = True,
    *,
    wait: bool = True,
    env: dict[str, str] | None = None,
    quiet: bool = False,
    idle_minutes: float | None = None,
) -> subprocess.Popen:
    """Start the dashboard on ``http://127.0.0.1:<port>``.

    Parameters
    ----------
    store_path, neo4j_uri : str or None
        The store to open (Neo4j when ``neo4j_uri`` is given).
    port : int
        ``0`` picks a free port.
    open_browser : bool
        Open the default browser once the server answers.
    wait : bool
        Block until the server exits (Ctrl+C, SIGTERM or SIGHUP stop it);
        ``False`` returns the running process once it is ready (tests, the demo).
    idle_minutes : float or None
        Log a user out after this long without activity (default
        :data:`ringscope.app.dashboard.auth.IDLE_MINUTES`).
    """
    port = port or free_port()
    first = ensure_first_user(store_path, neo4j_uri)
    child_env = dict(os.environ)
    child_env.update(env or {})
    child_env.pop("RINGSCOPE_NEO4J_URI", None)
    child_env.pop("RINGSCOPE_STORE", None)
    if neo4j_uri:
        child_env["RINGSCOPE_NEO4J_URI"] = neo4j_uri
    else:
        child_env["RINGSCOPE_STORE"] = str(Path(store_path or ".ringscope").resolve())
    if idle_minutes is not None:
        if not idle_minutes > 0:
            raise ValueError(f"The 'idle_minutes' parameter of launch must be > 0. Got {idle_minutes!r} instead.")
        child_env["RINGSCOPE_IDLE_MINUTES"] = str(idle_minutes)
    child_env["STREAMLIT_BROWSER_GATHER_USAGE_STATS"] = "false"
    out = subprocess.DEVNULL if quiet else None
    process = subprocess.Popen(
        streamlit_command(port),
        cwd=str(MAIN.parent),
        env=child_env,
        stdout=out,
        stderr=out,
        preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
    )
    try:
        wait_until_ready(port, process=process)
    except BaseException:
        stop(process)
        raise
    url = f"http://127.0.0.1:{port}"
    if not quiet:
        print(f"ringscope dashboard at {url}  (Ctrl+C stops it)")
        if first:
            print(
                f"  first user created: {first[0]} / {first[1]}  (add more: python -m ringscope.app.dashboard.auth add-user)"
            )
    if open_browser:
        import webbrowser

        webbrowser.open(url)
    if wait:
        _serve_until_stopped(process)
    return process
