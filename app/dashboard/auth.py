"""Who may use the dashboard: local users for development and tests.

Users live in a JSON file placed like the store's models
(:func:`ringscope.detectors.risk.model_store.models_folder`): ``$RINGSCOPE_USERS`` if set,
else ``<store>/users.json`` for the embedded store and, for Neo4j, the user's
data folder keyed by the database's own identity
(``~/.local/share/ringscope/dashboard/neo4j-<database id>/users.json``), so
the working directory never decides who may log in. Each user has a role and
a salted scrypt hash of the password (never the password). Roles:

* ``investigator`` — queue, cluster explorer, search, applications, cases;
* ``analyst`` — all of that plus the read-only Cypher console and the model;
* ``admin`` — everything, including reopening closed cases.

Log-ins are throttled per user name (:func:`log_in`): after
:data:`LOCK_AFTER` wrong passwords in a row the name is locked for
:data:`BACKOFF` seconds, doubling with every further failure up to
:data:`MAX_BACKOFF`; while locked, even the right password is refused. The
count lives beside the users file (``users.json.attempts``), so restarting
the dashboard does not reset it; unknown names are counted the same way, so
the answer says nothing about which names exist.

A logged-in browser tab keeps its log-in over a reload through a
:class:`SessionTable` entry (random token, server-side, idle timeout,
revoked at log-out).

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
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ringscope.graph.files import atomic_write_text, private_dir

__all__ = [
    "ROLES",
    "User",
    "users_file",
    "add_user",
    "verify",
    "load_users",
    "hash_password",
    "can",
    "oidc_user",
    "LoginResult",
    "log_in",
    "attempts_file",
    "LOCK_AFTER",
    "BACKOFF",
    "MAX_BACKOFF",
    "SessionTable",
    "idle_seconds",
    "IDLE_MINUTES",
    "unlock",
]

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


def users_file(store_path: str | None = None, neo4j_uri: str | None = None, *, store: Any = None) -> Path:
    """Where the users of this store are kept (see the module docstring).

    ``store`` (already open) saves opening a Neo4j store just to ask the
    database its id.

    Example
    -------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> users_file(folder) == Path(folder).resolve() / "users.json"
    True
    """
    if os.environ.get("RINGSCOPE_USERS"):
        return Path(os.environ["RINGSCOPE_USERS"])
    if store is None and not neo4j_uri:
        return Path(store_path or ".ringscope").resolve() / "users.json"
    if store is not None and getattr(store, "kind", "") == "embedded":
        return Path(store.location).resolve() / "users.json"
    from ringscope.detectors.risk.model_store import store_identity, user_data_dir

    if store is not None:
        return user_data_dir() / "dashboard" / store_identity(store) / "users.json"
    from ringscope.graph.store import open_store

    opened = open_store(None, neo4j_uri)
    try:
        return user_data_dir() / "dashboard" / store_identity(opened) / "users.json"
    finally:
        opened.close()


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
    digest = hashlib.scrypt(
        (password or "").encode("utf-8"),
        salt=bytes.fromhex(entry["salt"]),
        n=entry.get("n", _N),
        r=entry.get("r", _R),
        p=entry.get("p", _P),
        dklen=32,
    )
    if hmac.compare_digest(digest.hex(), entry["hash"]):
        return User(name.strip(), entry["role"])
    return None


#: wrong passwords in a row before a user name is locked
LOCK_AFTER = 5
#: seconds of the first lock; each further failure doubles it, up to MAX_BACKOFF
BACKOFF = 60.0
MAX_BACKOFF = 3600.0
#: names remembered in the attempts file (the oldest are forgotten first)
_MAX_NAMES = 10_000
_ATTEMPTS_LOCK = threading.Lock()


@dataclass(frozen=True)
class LoginResult:
    """What a log-in attempt came to: ``user`` when it succeeded; else
    ``locked_for`` seconds still to wait (0 when the name is not locked) and
    ``failures`` in a row so far."""

    user: User | None
    failures: int = 0
    locked_for: float = 0.0

    @property
    def outcome(self) -> str:
        return "success" if self.user else "locked" if self.locked_for > 0 else "failure"


def attempts_file(users_path: Path) -> Path:
    """The failed-log-in counts, beside the users file.

    Example
    -------
    >>> attempts_file(Path("/srv/store/users.json")).name
    'users.json.attempts'
    """
    users_path = Path(users_path)
    return users_path.with_name(users_path.name + ".attempts")


def _read_attempts(path: Path) -> dict[str, dict[str, float]]:
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("attempts", {})
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        # an unreadable count must not open the door: start again, but loudly
        import warnings

        warnings.warn(f"{path} is unreadable; failed log-in counts start again.", stacklevel=2)
        return {}


def _write_attempts(path: Path, attempts: dict[str, dict[str, float]]) -> None:
    if len(attempts) > _MAX_NAMES:
        keep = sorted(attempts, key=lambda n: attempts[n].get("last", 0.0))[-_MAX_NAMES:]
        attempts = {n: attempts[n] for n in keep}
    if not path.parent.exists():
        private_dir(path.parent)
    atomic_write_text(path, json.dumps({"attempts": attempts}, ensure_ascii=False))


def _backoff(failures: int) -> float:
    return min(MAX_BACKOFF, BACKOFF * 2 ** (failures - LOCK_AFTER))


def log_in(path: Path, name: str, password: str, now: float | None = None) -> LoginResult:
    """Check a password with the lock-out rule (see the module docstring).

    Example
    -------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "users.json"
    >>> add_user(path, "ivy", "correct horse", "investigator")
    >>> [log_in(path, "ivy", "wrong", now=0).outcome for _ in range(LOCK_AFTER)][-1]
    'locked'
    >>> log_in(path, "ivy", "correct horse", now=1).outcome
    'locked'
    >>> log_in(path, "ivy", "correct horse", now=1 + BACKOFF).outcome
    'success'
    """
    now = time.time() if now is None else now
    who = (name or "").strip()[:200]
    where = attempts_file(path)
    with _ATTEMPTS_LOCK:
        attempts = _read_attempts(where)
        mine = attempts.get(who, {})
        until = float(mine.get("until", 0.0))
        if until > now:  # locked: the password is not even checked
            return LoginResult(None, int(mine.get("failures", 0)), until - now)
    user = verify(path, who, password)  # ~50 ms of scrypt, outside the lock
    with _ATTEMPTS_LOCK:
        attempts = _read_attempts(where)
        mine = attempts.get(who, {})
        if user is not None:
            if who in attempts:
                del attempts[who]
                _write_attempts(where, attempts)
            return LoginResult(user)
        failures = int(mine.get("failures", 0)) + 1
        entry = {"failures": failures, "last": now}
        locked_for = 0.0
        if failures >= LOCK_AFTER:
            locked_for = _backoff(failures)
            entry["until"] = now + locked_for
        attempts[who] = entry
        _write_attempts(where, attempts)
    return LoginResult(None, failures, locked_for)


#: minutes without activity before a session ends
IDLE_MINUTES = 30.0


def idle_seconds() -> float:
    """The idle timeout: ``$RINGSCOPE_IDLE_MINUTES`` (``ringscope dashboard
    --idle-minutes``), default :data:`IDLE_MINUTES`; a bad value keeps the default.

    Example
    -------
    >>> os.environ["RINGSCOPE_IDLE_MINUTES"] = "5"; idle_seconds()
    300.0
    >>> del os.environ["RINGSCOPE_IDLE_MINUTES"]; idle_seconds()
    1800.0
    """
    try:
        minutes = float(os.environ.get("RINGSCOPE_IDLE_MINUTES", IDLE_MINUTES))
    except ValueError:
        minutes = IDLE_MINUTES
    return (minutes if minutes > 0 else IDLE_MINUTES) * 60.0


@dataclass
class _Session:
    user: User
    last: float


@dataclass
class SessionTable:
    """Log-ins of this server, by random token: what lets a reloaded tab
    (a new Streamlit session) carry on without logging in again.

    The token is 256 random bits held only here and in the tab's URL; it
    ends after ``idle`` seconds without use, at log-out, and with the
    server. The user's role is read again from the users file on every
    resume, so a removed user is out at once.

    Example
    -------
    >>> table = SessionTable()
    >>> token = table.issue(User("ivy", "investigator"), now=0)
    >>> table.resume(token, now=10, idle=60)
    User(name='ivy', role='investigator')
    >>> table.resume(token, now=100, idle=60) is None  # idle too long
    True
    """

    sessions: dict[str, _Session] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def issue(self, user: User, now: float | None = None) -> str:
        token = secrets.token_urlsafe(32)
        with self.lock:
            self.sessions[token] = _Session(user, time.time() if now is None else now)
        return token

    def resume(
        self, token: str | None, now: float | None = None, idle: float | None = None, users_path: Path | None = None
    ) -> User | None:
        """The user of ``token`` if it is live (and touch it), else ``None``."""
        now = time.time() if now is None else now
        idle = idle_seconds() if idle is None else idle
        with self.lock:
            for old in [t for t, s in self.sessions.items() if now - s.last > idle]:
                del self.sessions[old]
            found = self.sessions.get(token or "")
            if found is None:
                return None
            if users_path is not None:
                entry = load_users(users_path).get(found.user.name)
                if not entry:
                    del self.sessions[token]
                    return None
                found.user = User(found.user.name, entry["role"])
            found.last = now
            return found.user

    def revoke(self, token: str | None) -> None:
        with self.lock:
            self.sessions.pop(token or "", None)


def oidc_user(path: Path, email: str | None) -> User | None:
    """Role of an OIDC-signed-in user (``st.user.email``) from the users file."""
    if not email:
        return None
    entry = load_users(path).get(email)
    return User(email, entry["role"]) if entry else None


def unlock(path: Path, name: str) -> bool:
    """Forget the failed log-ins of ``name`` (an admin's answer to a locked
    user); ``True`` if there were any.

    Example
    -------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "users.json"
    >>> _ = [log_in(path, "ivy", "wrong", now=0) for _ in range(LOCK_AFTER)]
    >>> unlock(path, "ivy"), unlock(path, "ivy")
    (True, False)
    """
    where = attempts_file(path)
    with _ATTEMPTS_LOCK:
        attempts = _read_attempts(where)
        if attempts.pop((name or "").strip(), None) is None:
            return False
        _write_attempts(where, attempts)
    return True


def main(argv: list[str] | None = None) -> int:
    """``python -m ringscope.app.dashboard.auth add-user NAME ROLE [--store PATH]`` (prompts for the password);
    ``python -m ringscope.app.dashboard.auth unlock NAME [--store PATH]`` (clears a lock-out)."""
    import argparse
    import getpass

    parser = argparse.ArgumentParser(prog="python -m ringscope.app.dashboard.auth")
    sub = parser.add_subparsers(dest="cmd", required=True)
    add = sub.add_parser("add-user")
    add.add_argument("name")
    add.add_argument("role", choices=ROLES)
    add.add_argument("--store", default=None)
    add.add_argument("--neo4j", default=None)
    add.add_argument("--oidc", action="store_true", help="no password: an OIDC e-mail")
    free = sub.add_parser("unlock", help="clear a user's failed log-ins")
    free.add_argument("name")
    free.add_argument("--store", default=None)
    free.add_argument("--neo4j", default=None)
    args = parser.parse_args(argv)
    path = users_file(args.store or (None if args.neo4j else ".ringscope"), args.neo4j)
    if args.cmd == "unlock":
        print(f"{args.name}: " + ("unlocked" if unlock(path, args.name) else "was not locked"))
        return 0
    password = None if args.oidc else getpass.getpass(f"Password for {args.name}: ")
    add_user(path, args.name, password, args.role)
    print(f"{args.name} ({args.role}) saved in {path}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
