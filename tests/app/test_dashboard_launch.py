"""``launch`` starts Streamlit on loopback only, with nothing phoning home."""

from __future__ import annotations

from app.dashboard import auth
from app.dashboard.launch import ensure_first_user, streamlit_command


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
    assert "unsafe_allow_html" not in source
    assert "components.v1.html" not in source
