"""``launch`` starts Streamlit on loopback only, with nothing phoning home."""

from __future__ import annotations

import pytest

from ringscope.app.dashboard import auth
from ringscope.app.dashboard.launch import ensure_first_user, streamlit_command


def test_command_keeps_everything_on_loopback():
    cmd = streamlit_command(8599)
    assert cmd[1:4] == ["-m", "streamlit", "run"] and cmd[4].endswith("app/dashboard/main.py")
    flags = dict(arg[2:].split("=", 1) for arg in cmd[5:])
    assert flags["server.address"] == "127.0.0.1" and flags["server.port"] == "8599"
    assert flags["server.headless"] == "true"
    assert flags["browser.gatherUsageStats"] == "false"
    assert flags["browser.serverAddress"] == "127.0.0.1"
    assert flags["global.developmentMode"] == "false"


def test_first_user_is_an_admin_with_a_random_password(tmp_path, monkeypatch):
    monkeypatch.delenv("RINGSCOPE_USERS", raising=False)
    store = tmp_path / "store"
    name, password = ensure_first_user(str(store), None)
    assert name == "admin" and len(password) >= 12
    assert auth.verify(store / "users.json", "admin", password) == auth.User("admin", "admin")
    assert ensure_first_user(str(store), None) is None  # only once


def test_no_page_uses_remote_icons_or_html():
    from pathlib import Path

    pages = Path(__file__).resolve().parents[2] / "app" / "dashboard"
    files = [*pages.glob("pages/*.py"), pages / "main.py", pages / "context.py", pages / "graphview.py"]
    source = "\n".join(p.read_text(encoding="utf-8") for p in files)
    assert ":material/" not in source
    # one exception: the ring legend, built by ring_view.legend_html from the
    # code's node types and catalogue words only, every text HTML-escaped
    assert source.count("unsafe_allow_html") == 1
    assert "st.markdown(ring_view.legend_html(legend), unsafe_allow_html=True)" in source
    assert "components.v1.html" not in source


def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` (Linux /proc)."""
    import glob

    out = []
    for path in glob.glob(f"/proc/{pid}/task/*/children"):
        with open(path) as handle:
            out += [int(p) for p in handle.read().split()]
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(") ", 1)[1][0] != "Z"  # a zombie has stopped
    except FileNotFoundError:
        return False


def _serving(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.slow
@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT", "SIGHUP", "SIGKILL"])
def test_stopping_ringscope_dashboard_stops_its_streamlit_child(tmp_path, sig):
    """A real `ringscope dashboard`, signalled alone (not its process group):
    its Streamlit child is gone and nothing serves the port afterwards."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from ringscope.app.dashboard.launch import free_port, wait_until_ready

    port = free_port()
    env = dict(os.environ, RINGSCOPE_USERS=str(tmp_path / "users.json"))
    cli = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ringscope.app.cli",
            "dashboard",
            "--store",
            str(tmp_path / "store"),
            "--port",
            str(port),
            "--no-browser",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    children: list[int] = []
    try:
        wait_until_ready(port, timeout=90, process=cli)
        children = _children(cli.pid)
        assert len(children) == 1 and _alive(children[0])
        os.kill(cli.pid, getattr(signal, sig))
        cli.wait(timeout=30)
        deadline = time.monotonic() + 20
        while (_alive(children[0]) or _serving(port)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(children[0]), f"Streamlit (pid {children[0]}) outlived `ringscope dashboard` ({sig})"
        assert not _serving(port)
    finally:  # never leave a server behind, whatever failed
        for pid in [cli.pid, *children]:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        cli.wait(timeout=10)
