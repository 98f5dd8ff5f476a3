"""A password inside a Neo4j URI is used, never shown (issue 11, item 16)."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from ringscope.app.cli import cli
from ringscope.graph.store import redact_uri, split_credentials

SECRET = "s3cr@t/pa:ss"
QUOTED = "s3cr%40t%2Fpa%3Ass"


@pytest.mark.parametrize(
    "uri, bare, credentials, shown",
    [
        ("bolt://127.0.0.1:7687", "bolt://127.0.0.1:7687", None, "bolt://127.0.0.1:7687"),
        (
            "bolt://neo4j:secret@127.0.0.1:7687",
            "bolt://127.0.0.1:7687",
            ("neo4j", "secret"),
            "bolt://neo4j:***@127.0.0.1:7687",
        ),
        (
            f"neo4j://reader:{QUOTED}@db.example.cn:7687",
            "neo4j://db.example.cn:7687",
            ("reader", SECRET),
            "neo4j://reader:***@db.example.cn:7687",
        ),
        # typed without quoting: everything up to the last '@' is the credentials
        (
            "bolt://neo4j:p@ss/w@rd@10.0.0.5:7687",
            "bolt://10.0.0.5:7687",
            ("neo4j", "p@ss/w@rd"),
            "bolt://neo4j:***@10.0.0.5:7687",
        ),
        ("bolt+s://neo4j@host:7687", "bolt+s://host:7687", ("neo4j", ""), "bolt+s://neo4j@host:7687"),
        (".ringscope", ".ringscope", None, ".ringscope"),
    ],
)
def test_credentials_are_split_off_and_redacted(uri, bare, credentials, shown):
    assert split_credentials(uri) == (bare, credentials)
    assert redact_uri(uri) == shown


def test_unreachable_server_message_never_echoes_the_password():
    from tools.neo4j_server import free_port

    uri = f"bolt://neo4j:{QUOTED}@127.0.0.1:{free_port()}"
    for command in (["stats", "--neo4j", uri], ["detect", "--neo4j", uri, "--quiet"]):
        result = CliRunner().invoke(cli, command, env={"RINGSCOPE_NEO4J_URI": None})
        assert result.exit_code != 0
        assert "Cannot open the store" in result.output
        for part in (QUOTED, SECRET, "s3cr"):
            assert part not in result.output, result.output


def test_store_location_is_redacted():
    from ringscope.graph.neo4j_store import Neo4jStore

    store = Neo4jStore("bolt://neo4j:secret@127.0.0.1:1")
    try:
        assert store.location == "bolt://neo4j:***@127.0.0.1:1"
    finally:
        store.close()


@pytest.mark.neo4j
def test_credentials_in_the_uri_are_used_and_hidden(neo4j_driver, neo4j_uri, monkeypatch):
    """With the suite's credentials (when its server has auth on) moved from
    the environment into the URI, the CLI still connects, and prints the URI
    without the password."""
    from ringscope.graph.neo4j_auth import auth_from_env

    user, password = auth_from_env() or (
        os.environ.get("NEO4J_USER") or "neo4j",
        os.environ.get("NEO4J_PASSWORD") or "unused-secret",
    )
    for name in (
        "RINGSCOPE_NEO4J_USER",
        "RINGSCOPE_NEO4J_PASSWORD",
        "RINGSCOPE_NEO4J_PASSWORD_FILE",
        "RINGSCOPE_NEO4J_URI",
    ):
        monkeypatch.delenv(name, raising=False)
    from urllib.parse import quote

    scheme, _, host = neo4j_uri.partition("://")
    uri = f"{scheme}://{quote(user, safe='')}:{quote(password, safe='')}@{host}"
    result = CliRunner().invoke(cli, ["stats", "--neo4j", uri])
    assert result.exit_code == 0, result.output
    assert f"neo4j store at {scheme}://{quote(user, safe='')}:***@{host}" in result.output
    assert quote(password, safe="") not in result.output and password not in result.output
