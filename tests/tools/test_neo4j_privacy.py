"""The local Neo4j keeps data on the machine and to its owner, whatever a
client sends it: checked on the running servers, through the driver
directly (no console in between).

- no file or URL is loaded (LOAD CSV, APOC), and procedures that fetch,
  touch files or run Cypher from strings are not loaded at all;
- no usage report goes to the vendor;
- auth is on, with a generated password in a file of mode 600 that never
  appears in a log or an error message;
- browsers on other origins cannot open a WebSocket to Bolt.

Most checks use the suite's server (with plugins); a second server, started
through ``tools/neo4j_server.py start --no-plugins`` as a user would, shows
that Neo4j's own URL blocklist refuses http (with APOC loaded, APOC's URL
handler fails first) and takes the failed logins (Neo4j locks a user for a
few seconds after three, which must not disturb the suite's server).
"""

from __future__ import annotations

import base64
import os
import re
import socket
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.loopback import recording_http_server

pytestmark = pytest.mark.neo4j

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / "tools"
PYTHON = sys.executable


@pytest.fixture
def own(neo4j_server):
    """The suite's own server's handle (skip with an external NEO4J_URI)."""
    if neo4j_server is None:
        pytest.skip("checks the server started from tools/neo4j")
    return neo4j_server


def _config(driver, name: str) -> str:
    records, _, _ = driver.execute_query(
        "CALL dbms.listConfig($name) YIELD name, value RETURN name, value", name=name, database_="neo4j"
    )
    values = {r["name"]: r["value"] for r in records}
    return str(values[name])


@pytest.fixture(scope="module")
def http_server():
    with recording_http_server() as server:
        yield server


@pytest.fixture(scope="module")
def secret_file(tmp_path_factory):
    marker = f"RINGSCOPE-SECRET-{uuid.uuid4().hex}"
    path = tmp_path_factory.mktemp("secret") / "shadow"
    path.write_text(f"root:{marker}:19000::::::\n", encoding="utf-8")
    return path, marker


def _refused(driver, query: str) -> str:
    from neo4j.exceptions import Neo4jError

    with pytest.raises(Neo4jError) as err:
        driver.execute_query(query, database_="neo4j")
    return str(err.value.message or err.value)


# --- no file, no URL ------------------------------------------------------


def test_file_urls_are_off_and_the_import_folder_is_empty(own, neo4j_driver):
    assert _config(neo4j_driver, "dbms.security.allow_csv_import_from_file_urls") == "false"
    import_dir = Path(_config(neo4j_driver, "server.directories.import"))
    assert import_dir == own.data_dir / "import" and import_dir.is_dir() and not any(import_dir.iterdir())


def test_load_csv_straight_through_the_driver_is_refused(own, neo4j_driver, secret_file, http_server):
    path, marker = secret_file
    for url in (f"file://{path}", "file:///etc/passwd", f"file:///{path.name}"):
        message = _refused(neo4j_driver, f"LOAD CSV FROM '{url}' AS l RETURN l")
        assert "allow_csv_import_from_file_urls" in message and marker not in message
    for url in (f"{http_server.url}/?data=secret", http_server.url.replace("127.0.0.1", "localhost") + "/x"):
        _refused(neo4j_driver, f"LOAD CSV FROM '{url}' AS l RETURN l")
    assert http_server.requests == []


FETCHING = (
    "apoc.load.",
    "apoc.import.",
    "apoc.export.",
    "apoc.log.",
    "apoc.cypher.",
    "apoc.periodic.",
    "apoc.trigger.",
    "apoc.when",
    "apoc.case",
    "apoc.do.",
    "apoc.graph.",
    "apoc.search.",
    "apoc.spatial.",
    "apoc.util.",
    "apoc.xml.",
)


def test_procedures_that_fetch_or_run_strings_are_not_loaded_but_gds_is(own, neo4j_driver):
    from tests.tools.test_neo4j_launcher import _plugins_built

    if not _plugins_built():
        pytest.skip("built without plugins")
    procedures = {
        r["name"] for r in neo4j_driver.execute_query("SHOW PROCEDURES YIELD name RETURN name", database_="neo4j")[0]
    }
    functions = {
        r["name"] for r in neo4j_driver.execute_query("SHOW FUNCTIONS YIELD name RETURN name", database_="neo4j")[0]
    }
    assert not [n for n in procedures | functions if n.startswith(FETCHING)]
    # what later work needs is there: GDS (stream and write), APOC's value functions and meta procedures
    assert {"gds.wcc.stream", "gds.wcc.write", "gds.louvain.stream", "gds.graph.project"} <= procedures
    assert len([n for n in procedures if n.startswith("gds.")]) > 300
    assert {"apoc.meta.stats", "apoc.path.expand"} <= procedures
    assert {"apoc.text.join", "apoc.coll.sum", "apoc.version"} <= functions
    assert {"db.labels", "dbms.components"} <= procedures  # built-ins are not filtered


def test_apoc_file_settings_are_read_back_from_apoc(own):
    from tests.tools.test_neo4j_launcher import _plugins_built

    if not _plugins_built():
        pytest.skip("built without plugins")
    log = (own.data_dir / "launcher.log").read_text(encoding="utf-8")
    line = next(line for line in log.splitlines() if "APOC settings read back" in line)
    for setting in (
        "apoc.import.file.enabled=false",
        "apoc.export.file.enabled=false",
        "apoc.import.file.allow_read_from_filesystem=false",
        "apoc.trigger.enabled=false",
    ):
        assert setting in line


# --- nothing to the vendor ------------------------------------------------


def test_usage_report_is_off_and_nothing_is_sent(own, neo4j_driver):
    assert _config(neo4j_driver, "dbms.usage_report.enabled") == "false"
    debug = own.data_dir / "logs" / "debug.log"
    # with reporting on, Neo4j logs the first report about 10 s after start
    started = _first_timestamp(debug)
    if started is not None:
        time.sleep(max(0.0, started + 15 - time.time()))
    text = debug.read_text(encoding="utf-8", errors="replace")
    assert "UserDataCollector" in text or "usage" in text.lower()  # the log is the one Neo4j writes
    assert "Anonymous Usage Data is being sent" not in text


def _first_timestamp(log: Path) -> float | None:
    from datetime import datetime

    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        match = re.match(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}[+-]\d{4})", line)
        if match:
            return datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S.%f%z").timestamp()
    return None


# --- auth -----------------------------------------------------------------


def test_auth_is_on_with_a_private_generated_password(own, neo4j_driver):
    from neo4j import GraphDatabase
    from neo4j.exceptions import AuthError

    assert _config(neo4j_driver, "dbms.security.auth_enabled") == "true"
    assert own.password_file == own.data_dir / "neo4j-password"
    assert stat.S_IMODE(own.password_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(own.data_dir.stat().st_mode) == 0o700
    password = own.password_file.read_text(encoding="utf-8").strip()
    assert len(password) >= 24 and password != "neo4j"
    with GraphDatabase.driver(own.uri, auth=None) as anonymous, pytest.raises(AuthError):
        anonymous.verify_connectivity()
    # the suite's clients log in with it from the environment, as users' do
    assert os.environ["RINGSCOPE_NEO4J_PASSWORD_FILE"] == str(own.password_file)


def test_the_password_is_in_no_log(own, neo4j_driver):
    password = own.password_file.read_text(encoding="utf-8").strip()
    for path in [own.data_dir / "launcher.log", *(own.data_dir / "logs").glob("*.log")]:
        assert password not in path.read_text(encoding="utf-8", errors="replace"), path


# --- WebSocket ------------------------------------------------------------


def _websocket_upgrade(port: int, origin: str | None) -> bytes:
    """Send a WebSocket upgrade to Bolt on a raw socket; return the status line ('' if closed)."""
    key = base64.b64encode(os.urandom(16)).decode()
    head = (
        f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
    )
    if origin is not None:
        head += f"Origin: {origin}\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall((head + "\r\n").encode())
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    return data.split(b"\r\n", 1)[0]


def test_websocket_from_a_foreign_origin_is_refused(own):
    port = urlparse(own.uri).port
    for origin in ("http://evil.example.com", "null", "http://127.0.0.1.evil.example.com", "https://localhost"):
        status = _websocket_upgrade(port, origin)
        assert b"101" not in status, origin
        assert status.startswith(b"HTTP/1.1 403")
    # a client that sends no Origin (not a browser) still gets the upgrade: the test can see one
    assert _websocket_upgrade(port, None).startswith(b"HTTP/1.1 101")


# --- a second server, started from the command line ------------------------


@pytest.fixture(scope="module")
def plain_server(tmp_path_factory):
    """``tools/neo4j_server.py start --no-plugins`` on a free port; (uri, data dir, start output)."""
    if os.environ.get("NEO4J_URI"):
        pytest.skip("starts a server from tools/neo4j")
    data = tmp_path_factory.mktemp("plain-neo4j")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RINGSCOPE_NEO4J")}
    started = subprocess.run(
        [
            PYTHON,
            str(TOOLS / "neo4j_server.py"),
            "start",
            "--port",
            "0",
            "--data",
            str(data),
            "--no-plugins",
            "--heap",
            "512m",
            "--pagecache",
            "64m",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=ROOT,
    )
    assert started.returncode == 0, started.stderr
    try:
        yield started.stdout.strip().splitlines()[-1], data, started.stdout + started.stderr
    finally:
        subprocess.run(
            [PYTHON, str(TOOLS / "neo4j_server.py"), "stop", "--data", str(data)],
            capture_output=True,
            timeout=120,
            env=env,
            cwd=ROOT,
        )


def test_start_says_where_the_password_is_and_not_what_it_is(plain_server):
    uri, data, output = plain_server
    password = (data / "neo4j-password").read_text(encoding="utf-8").strip()
    assert str(data / "neo4j-password") in output and "RINGSCOPE_NEO4J_PASSWORD_FILE" in output
    assert password not in output


def test_neo4j_blocklist_refuses_every_address(plain_server, secret_file, http_server):
    from neo4j import GraphDatabase

    uri, data, _ = plain_server
    password = (data / "neo4j-password").read_text(encoding="utf-8").strip()
    path, marker = secret_file
    with GraphDatabase.driver(uri, auth=("neo4j", password)) as driver:
        for url in (
            f"{http_server.url}/?data=secret",
            http_server.url.replace("127.0.0.1", "localhost") + "/x",
            http_server.url.replace("http:", "ftp:"),
        ):
            assert "cypher_ip_blocklist" in _refused(driver, f"LOAD CSV FROM '{url}' AS l RETURN l")
        message = _refused(driver, f"LOAD CSV FROM 'file://{path}' AS l RETURN l")
        assert "allow_csv_import_from_file_urls" in message and marker not in message
    assert http_server.requests == []


def test_wrong_passwords_are_refused_and_never_echoed(plain_server, tmp_path):
    from neo4j import GraphDatabase
    from neo4j.exceptions import AuthError

    uri, data, _ = plain_server
    password = (data / "neo4j-password").read_text(encoding="utf-8").strip()
    wrong = "wrong-" + uuid.uuid4().hex
    with GraphDatabase.driver(uri, auth=("neo4j", wrong)) as driver, pytest.raises(AuthError) as err:
        driver.verify_connectivity()
    assert wrong not in str(err.value) and password not in str(err.value)
    # the CLI with a wrong password in the environment: a clear error, no password in it
    env = {k: v for k, v in os.environ.items() if not k.startswith("RINGSCOPE_NEO4J")}
    env.update(RINGSCOPE_NEO4J_PASSWORD=wrong)
    cli = subprocess.run(
        [PYTHON, "-m", "ringscope.app.cli", "stats", "--neo4j", uri],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert cli.returncode != 0
    assert "unauthorized" in (cli.stdout + cli.stderr).lower() or "auth" in (cli.stdout + cli.stderr).lower()
    assert wrong not in cli.stdout + cli.stderr and password not in cli.stdout + cli.stderr
    # a missing password file is named, and nothing else is said about it
    env.pop("RINGSCOPE_NEO4J_PASSWORD")
    env["RINGSCOPE_NEO4J_PASSWORD_FILE"] = str(tmp_path / "no-such-file")
    cli = subprocess.run(
        [PYTHON, "-m", "ringscope.app.cli", "stats", "--neo4j", uri],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert cli.returncode != 0 and "no-such-file" in cli.stdout + cli.stderr
    time.sleep(6)  # let Neo4j's lock on the user (after failed logins) expire
    for log in [data / "launcher.log", *(data / "logs").glob("*.log")]:
        text = log.read_text(encoding="utf-8", errors="replace")
        assert password not in text and wrong not in text, log
