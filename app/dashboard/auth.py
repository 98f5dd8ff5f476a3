"""Who may use the dashboard: local users for development and tests.

Users live in a JSON file next to the store (``<store>/users.json`` for the
embedded store, ``./.ringscope-users.json`` for Neo4j, or
``$RINGSCOPE_USERS``), each with a role and a salted scrypt hash of the
password (never the password). Roles:

* ``investigator`` — queue, cluster explorer, search, applications, cases;
* ``analyst`` — all of that plus the read-only Cypher console and the model;
* ``admin`` — everything, including reopening closed cases.

In production, use OIDC through ``st.login`` instead (see
``docs/dashboard.md``); :func:`oidc_user` maps the signed-in e-mail to a role
through the same file (entries without a password hash).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graph.files import atomic_write_text, private_dir

__all__ = ["ROLES", "User", "users_file", "add_user", "verify", "load_users", "hash_password", "can", "oidc_user"]

ROLES = ("investigator", "analyst", "admin")

#: role → what it may do
_PERMISSIONS = {
    "investigator": {"queue", "cluster", "search", "application", "cases", "reveal", "model"},
    "analyst": {"queue", "cluster", "search", "application", "cases", "reveal", "model", "console"},
    "admin": {"queue", "cluster", "search", "application", "cases", "reveal", "model", "console", "reopen", "users"},
}

# scrypt parameters (RFC 7914 interactive-login strength; ~50 ms, 16 MiB)
_N, _R, _P = 2**14, 8, 1


@dataclass(frozen=True)
class User:
    name: str
    role: str


def can(role: str | None, permission: str) -> bool:
    """Whether ``role`` has ``permission``.

    Example
    -------
    >>> can("investigator", "console"), can("analyst", "console")
    (False, True)
    """
    return permission in _PERMISSIONS.get(role or "", set())


def users_file(store_path: str | None = None, neo4j_uri: str | None = None) -> Path:
    """Where the users of this store are kept."""
    if os.environ.get("RINGSCOPE_USERS"):
        return Path(os.environ["RINGSCOPE_USERS"])
    if store_path and not neo4j_uri:
        return Path(store_path) / "users.json"
    return Path(".ringscope-users.json")


def hash_password(password: str, salt: bytes | None = None) -> dict[str, Any]:
    """Salted scrypt hash record of ``password``."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return {"algo": "scrypt", "n": _N, "r": _R, "p": _P, "salt": salt.hex(), "hash": digest.hex()}


def load_users(path: Path) -> dict[str, dict[str, Any]]:
    path = Path(path)
    if not path.exists():
        return {}
    return json.loads(path.read_text(encoding="utf-8")).get("users", {})


def add_user(path: Path, name: str, password: str | None, role: str) -> None:
    """Add or replace user ``name`` (``password`` None: an OIDC-only entry)."""
    if role not in ROLES:
        raise ValueError(f"The 'role' of a user must be one of {ROLES}. Got {role!r} instead.")
    if not name or not name.strip():
        raise ValueError("A user needs a name.")
    if password is not None and len(password) < 8:
        raise ValueError("The password must have at least 8 characters.")
    path = Path(path)
    users = load_users(path)
    entry: dict[str, Any] = {"role": role}
    if password is not None:
        entry.update(hash_password(password))
    users[name.strip()] = entry
    if not path.parent.exists():
        private_dir(path.parent)
    atomic_write_text(path, json.dumps({"users": users}, indent=2, ensure_ascii=False))  # mode 0600


def verify(path: Path, name: str, password: str) -> User | None:
    """The user if ``password`` is right, else ``None`` (constant-time compare)."""
    entry = load_users(path).get((name or "").strip())
    if not entry or "hash" not in entry:
        # spend the same time on unknown users
        hashlib.scrypt(b"x", salt=b"0" * 16, n=_N, r=_R, p=_P, dklen=32)
        return None
    digest = hashlib.scrypt((password or "").encode("utf-8"), salt=bytes.fromhex(entry["salt"]),
                            n=entry.get("n", _N), r=entry.get("r", _R), p=entry.get("p", _P), dklen=32)
    if hmac.compare_digest(digest.hex(), entry["hash"]):
        return User(name.strip(), entry["role"])
    return None


def oidc_user(path: Path, email: str | None) -> User | None:
    """Role of an OIDC-signed-in user (``st.user.email``) from the users file."""
    if not email:
        return None
    entry = load_users(path).get(email)
    return User(email, entry["role"]) if entry else None


def main(argv: list[str] | None = None) -> int:
    """``python -m app.dashboard.auth add-user NAME ROLE [--store PATH]`` (prompts for the password)."""
    import argparse
    import getpass

    parser = argparse.ArgumentParser(prog="python -m app.dashboard.auth")
    sub = parser.add_subparsers(dest="cmd", required=True)
    add = sub.add_parser("add-user")
    add.add_argument("name")
    add.add_argument("role", choices=ROLES)
    add.add_argument("--store", default=None)
    add.add_argument("--neo4j", default=None)
    add.add_argument("--oidc", action="store_true", help="no password: an OIDC e-mail")
    args = parser.parse_args(argv)
    path = users_file(args.store or (None if args.neo4j else ".ringscope"), args.neo4j)
    password = None if args.oidc else getpass.getpass(f"Password for {args.name}: ")
    add_user(path, args.name, password, args.role)
    print(f"{args.name} ({args.role}) saved in {path}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
