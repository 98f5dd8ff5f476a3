"""Neo4j credentials from the environment, without ever echoing the password.

The local launcher (``tools/neo4j_server.py start``) runs with auth on: user
``neo4j`` and a generated password kept in ``DATA/neo4j-password`` (mode
600). Clients find it through one of:

``RINGSCOPE_NEO4J_PASSWORD_FILE``
    a file whose first line is the password (preferred: the password stays
    out of the environment of every child process);
``RINGSCOPE_NEO4J_PASSWORD``
    the password itself;
``RINGSCOPE_NEO4J_USER``
    the user (default ``neo4j`` when a password is given).

With none of them set, the driver connects without auth (a server with auth
off).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["auth_from_env", "read_password_file", "DEFAULT_USER"]

DEFAULT_USER = "neo4j"


def read_password_file(path: str | os.PathLike) -> str:
    """The password on the first line of ``path``.

    Errors name the file, never its content.

    Example
    -------
    >>> import tempfile, os
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = os.path.join(d, "pw")
    ...     _ = open(p, "w").write("s3cret\\n")
    ...     read_password_file(p)
    's3cret'
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise ValueError(f"Cannot read the Neo4j password file {path}: {err.strerror or err}") from None
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise ValueError(f"The Neo4j password file {path} is empty.")
    return lines[0].strip()


def auth_from_env(environ: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """``(user, password)`` from the ``RINGSCOPE_NEO4J_*`` variables, or None.

    Example
    -------
    >>> auth_from_env({"RINGSCOPE_NEO4J_PASSWORD": "pw"})
    ('neo4j', 'pw')
    >>> auth_from_env({"RINGSCOPE_NEO4J_USER": "ana", "RINGSCOPE_NEO4J_PASSWORD": "pw"})
    ('ana', 'pw')
    >>> auth_from_env({}) is None
    True
    """
    env = os.environ if environ is None else environ
    user = env.get("RINGSCOPE_NEO4J_USER") or None
    path = env.get("RINGSCOPE_NEO4J_PASSWORD_FILE") or None
    if path:
        return (user or DEFAULT_USER, read_password_file(path))
    password = env.get("RINGSCOPE_NEO4J_PASSWORD")
    if password is not None or user:
        return (user or DEFAULT_USER, password or "")
    return None
