"""Log-in protection without a browser: the lock-out rule and its file, the
session table, the idle timeout and the audit rows (AppTest), and where the
users file of a Neo4j store lives."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from ringscope.app.dashboard import auth, cases
from ringscope.graph.embedded import EmbeddedStore

MAIN = str(Path(__file__).resolve().parents[2] / "app" / "dashboard" / "main.py")
PASSWORD = "correct horse"


@pytest.fixture
def users(tmp_path):
    path = tmp_path / "users.json"
    auth.add_user(path, "ivy", PASSWORD, "investigator")
    return path


def test_lock_out_after_repeated_failures_with_doubling_back_off(users):
    outcomes = [auth.log_in(users, "ivy", "nope", now=100.0) for _ in range(auth.LOCK_AFTER)]
    assert [o.outcome for o in outcomes] == ["failure"] * (auth.LOCK_AFTER - 1) + ["locked"]
    assert outcomes[-1].locked_for == auth.BACKOFF
    # locked: the right password is refused, and not even checked
    assert auth.log_in(users, "ivy", PASSWORD, now=100.0 + auth.BACKOFF - 1).user is None
    # after the back-off one more wrong password locks for twice as long
    again = auth.log_in(users, "ivy", "nope", now=100.0 + auth.BACKOFF)
    assert again.outcome == "locked" and again.locked_for == 2 * auth.BACKOFF
    assert auth.log_in(users, "ivy", PASSWORD, now=100.0 + 3 * auth.BACKOFF).user == auth.User("ivy", "investigator")
    # success clears the count
    assert json.loads(auth.attempts_file(users).read_text())["attempts"] == {}
    assert auth.log_in(users, "ivy", "nope", now=1e6).outcome == "failure"


def test_the_count_is_kept_on_disk_per_name_and_unknown_names_count_too(users):
    for _ in range(auth.LOCK_AFTER):
        auth.log_in(users, "nobody", "x", now=0.0)
    saved = json.loads(auth.attempts_file(users).read_text())["attempts"]
    assert saved["nobody"]["failures"] == auth.LOCK_AFTER and saved["nobody"]["until"] == auth.BACKOFF
    assert oct(auth.attempts_file(users).stat().st_mode & 0o777) == "0o600"
    assert auth.log_in(users, "nobody", "x", now=1.0).outcome == "locked"  # same answer as a real name
    assert auth.log_in(users, "ivy", PASSWORD, now=1.0).outcome == "success"  # others are not locked


def test_session_table_ends_at_log_out_idle_and_user_removal(users):
    table = auth.SessionTable()
    ivy = auth.User("ivy", "investigator")
    token = table.issue(ivy, now=0.0)
    assert len(token) >= 40 and "ivy" not in token
    assert table.resume(token, now=10.0, idle=60.0, users_path=users) == ivy
    assert table.resume(token, now=65.0, idle=60.0) == ivy  # touched at 10
    table.revoke(token)
    assert table.resume(token, now=66.0, idle=60.0) is None
    token = table.issue(ivy, now=0.0)
    auth.add_user(users, "ivy", PASSWORD, "analyst")  # role changed: read again
    assert table.resume(token, now=1.0, idle=60.0, users_path=users).role == "analyst"
    users.write_text(json.dumps({"users": {}}))
    assert table.resume(token, now=2.0, idle=60.0, users_path=users) is None
    assert table.resume(None) is None


def test_neo4j_users_file_does_not_depend_on_the_working_directory(tmp_path, monkeypatch):
    class Neo4jLike:  # what users_file asks of a store: its kind and the database's own id
        kind = "neo4j"

        def store_id(self):
            return "a1b2-c3"

    monkeypatch.delenv("RINGSCOPE_USERS", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    places = []
    for cwd in (tmp_path / "one", tmp_path / "two"):
        cwd.mkdir()
        monkeypatch.chdir(cwd)
        places.append(auth.users_file(None, "bolt://x", store=Neo4jLike()))
    assert places[0] == places[1] == tmp_path / "data" / "ringscope" / "dashboard" / "neo4j-a1b2-c3" / "users.json"
    monkeypatch.chdir(tmp_path / "one")
    assert auth.users_file("rel/store") == (tmp_path / "one" / "rel" / "store" / "users.json")
    monkeypatch.setenv("RINGSCOPE_USERS", str(tmp_path / "u.json"))
    assert auth.users_file(None, "bolt://x", store=Neo4jLike()) == tmp_path / "u.json"


@pytest.fixture
def dash(tmp_path, monkeypatch):
    store = EmbeddedStore(tmp_path / "store")
    store.ensure_schema()
    auth.add_user(tmp_path / "store" / "users.json", "ivy", PASSWORD, "investigator")
    monkeypatch.setenv("RINGSCOPE_STORE", str(tmp_path / "store"))
    monkeypatch.delenv("RINGSCOPE_NEO4J_URI", raising=False)
    monkeypatch.delenv("RINGSCOPE_USERS", raising=False)
    monkeypatch.delenv("RINGSCOPE_IDLE_MINUTES", raising=False)
    return store


def _log_in(at: AppTest, password: str) -> AppTest:
    at.text_input(key="login_user").input("ivy")
    at.text_input(key="login_password").input(password)
    return at.button[0].click().run()


def test_every_log_in_attempt_is_audited_and_a_session_token_is_set(dash):
    at = AppTest.from_file(MAIN, default_timeout=60)
    at.session_state["lang"] = "en"  # these tests read the English wording
    at.run()
    _log_in(at, "wrong password")
    _log_in(at, PASSWORD)
    assert not at.exception and at.title[0].value == "Alert queue"
    log = cases.audit_log(dash)
    assert log["action"].tolist()[::-1] == ["login.failure", "login.success"]
    assert set(log["user"]) == {"ivy"} and set(log["target"]) == {"login"}
    token = at.session_state["session_token"]
    assert at.query_params["session"] in (token, [token])


def test_an_idle_session_is_logged_out_and_that_is_audited(dash, monkeypatch):
    monkeypatch.setenv("RINGSCOPE_IDLE_MINUTES", "30")
    at = AppTest.from_file(MAIN, default_timeout=60)
    at.session_state["lang"] = "en"  # these tests read the English wording
    at.run()
    _log_in(at, PASSWORD)
    assert at.title[0].value == "Alert queue"
    at.session_state["last_active"] = time.time() - 29 * 60
    at.run()
    assert at.title[0].value == "Alert queue"  # 29 minutes: still in
    token = at.session_state["session_token"]
    at.session_state["last_active"] = time.time() - 31 * 60
    at.run()
    # (the browser test sees the log-in form; AppTest keeps the queue's page address, which the
    # logged-out navigation does not hold, so it draws nothing)
    assert not at.exception, at.exception
    assert at.session_state["user"] is None and at.session_state["session_token"] is None
    assert "after 30 minutes without activity" in at.session_state["login_flash"]
    assert "session" not in at.query_params
    assert cases.audit_log(dash)["action"].iloc[0] == "logout.idle"
    # the token is dead too: a reload with it does not log back in
    from ringscope.app.dashboard import context

    assert context._sessions().resume(token) is None


def test_an_admin_unlocks_a_user_from_the_command_line(users, capsys, monkeypatch):
    monkeypatch.setenv("RINGSCOPE_USERS", str(users))
    for _ in range(auth.LOCK_AFTER):
        auth.log_in(users, "ivy", "nope")
    assert auth.log_in(users, "ivy", PASSWORD).outcome == "locked"
    assert auth.main(["unlock", "ivy"]) == 0
    assert "ivy: unlocked" in capsys.readouterr().out
    assert auth.log_in(users, "ivy", PASSWORD).outcome == "success"


@pytest.mark.neo4j
def test_neo4j_users_file_is_keyed_by_the_database_id(neo4j_store, neo4j_uri, tmp_path, monkeypatch):
    from ringscope.app.dashboard.launch import ensure_first_user

    monkeypatch.delenv("RINGSCOPE_USERS", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    path = auth.users_file(None, neo4j_uri)  # opens the store to ask the database its id
    assert path == tmp_path / "data" / "ringscope" / "dashboard" / f"neo4j-{neo4j_store.store_id()}" / "users.json"
    assert auth.users_file(None, neo4j_uri, store=neo4j_store) == path
    name, password = ensure_first_user(None, neo4j_uri)
    assert auth.verify(path, name, password) == auth.User("admin", "admin")
    assert not (tmp_path / ".ringscope-users.json").exists()
