"""One writer at a time: the store's write lock.

Every job that changes a store (ingest, detect saving findings, train and
flag writing scores, dashboard case writes) holds the store's exclusive
write lock for the whole job; a second writer waits, saying who holds the
lock, and gives up after a timeout with :class:`StoreBusy`. Never do two
writers proceed together: two ingests rewriting the same tables lose rows.

- Embedded store: ``fcntl.flock`` on ``<store>/write.lock``. The kernel drops
  the lock when its holder dies, however it dies; the file records the
  holder (pid, command, start time) for the waiting message.
- Neo4j: a ``(:RingscopeLock {key: 'write'})`` node taken in a write
  transaction, held with a lease that a background thread renews; a holder
  that dies stops renewing, and the lease runs out (default 60 s).

The lock is reentrant per thread (a job that holds it may call ``write``,
which takes it again), and threads of one process exclude each other (the
dashboard serves many sessions from threads).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

__all__ = [
    "DEFAULT_LOCK_TIMEOUT",
    "LockHolder",
    "StoreBusy",
    "LockLost",
    "WriteLock",
    "FileLock",
    "lock_timeout",
    "job_name",
    "say_waiting",
]

#: seconds a writer waits for the lock unless told otherwise
DEFAULT_LOCK_TIMEOUT = 600.0
_POLL = 0.2

#: (holder or None, seconds waited so far) → None; called once when the wait starts
OnWait = Callable[["LockHolder | None", float], None]


@dataclass(frozen=True)
class LockHolder:
    """Who holds a store's write lock."""

    pid: int
    command: str
    since: str
    host: str = ""

    def describe(self) -> str:
        """Human form for messages.

        Example
        -------
        >>> LockHolder(42, "ringscope ingest", "2026-01-02T03:04:05Z").describe()
        'pid 42 (ringscope ingest) since 2026-01-02T03:04:05Z'
        """
        where = f" on {self.host}" if self.host and self.host != socket.gethostname() else ""
        return f"pid {self.pid}{where} ({self.command}) since {self.since}"

    def to_json(self) -> str:
        return json.dumps({"pid": self.pid, "command": self.command, "since": self.since, "host": self.host})

    @classmethod
    def from_json(cls, text: str) -> LockHolder | None:
        try:
            data = json.loads(text)
            return cls(int(data["pid"]), str(data["command"]), str(data["since"]), str(data.get("host", "")))
        except (ValueError, KeyError, TypeError):
            return None


class StoreBusy(RuntimeError):
    """Another job holds the store's write lock and the wait timed out."""

    def __init__(self, location: str, holder: LockHolder | None, waited: float) -> None:
        who = holder.describe() if holder else "another job"
        super().__init__(
            f"The store at {location} is locked by {who}; gave up after {waited:.0f} s. "
            "Run again when that job has finished (or raise the wait with --lock-timeout)."
        )
        self.location = location
        self.holder = holder
        self.waited = waited


class LockLost(RuntimeError):
    """A Neo4j lease ran out while its job still ran (the job was stalled for
    longer than the lease); its writes are refused from then on."""


def lock_timeout(value: float | None = None) -> float:
    """The wait to use: ``value``, else ``$RINGSCOPE_LOCK_TIMEOUT``, else 600 s.

    Example
    -------
    >>> lock_timeout(5)
    5.0
    """
    if value is not None:
        return float(value)
    try:
        return float(os.environ.get("RINGSCOPE_LOCK_TIMEOUT", DEFAULT_LOCK_TIMEOUT))
    except ValueError:
        return DEFAULT_LOCK_TIMEOUT


def job_name() -> str:
    """A short name for this process's job, from its command line
    (``ringscope ingest`` for ``python -m ringscope.app.cli ingest ...``)."""
    argv = sys.argv or ["python"]
    program = Path(argv[0]).name
    if program in ("cli.py", "__main__.py", "-m", "-c", ""):
        program = "ringscope"
    words = [a for a in argv[1:] if not a.startswith("-")][:1]
    return " ".join([program, *words])


def say_waiting(holder: LockHolder | None, location: str, timeout: float) -> None:
    """Default waiting message, on stderr."""
    who = holder.describe() if holder else "another job"
    print(
        f"waiting for the store lock held by {who} (store {location}; up to {timeout:.0f} s)",
        file=sys.stderr,
        flush=True,
    )


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class WriteLock:
    """Exclusive, per-thread reentrant lock around a store's write jobs.

    Subclasses implement ``_try_acquire(holder)`` (``None`` when taken, else
    whoever holds it) and ``_release()``.
    """

    def __init__(self, location: str) -> None:
        self.location = location
        self._local = threading.local()

    @property
    def held(self) -> bool:
        """True when the calling thread holds the lock."""
        return getattr(self._local, "depth", 0) > 0

    @contextlib.contextmanager
    def hold(
        self, job: str | None = None, timeout: float | None = None, on_wait: OnWait | None = None
    ) -> Iterator[LockHolder]:
        """Hold the lock for the ``with`` block; wait up to ``timeout`` seconds.

        Raises :class:`StoreBusy` when the wait times out (``timeout=0``: do
        not wait at all).
        """
        if self.held:
            self._local.depth += 1
            try:
                yield self._local.holder
            finally:
                self._local.depth -= 1
            return
        holder = self._acquire(job or job_name(), lock_timeout(timeout), on_wait)
        self._local.depth = 1
        self._local.holder = holder
        try:
            yield holder
        finally:
            self._local.depth = 0
            self._local.holder = None
            self._release()

    def _acquire(self, job: str, timeout: float, on_wait: OnWait | None) -> LockHolder:
        me = LockHolder(os.getpid(), job, _now(), socket.gethostname())
        started = time.monotonic()
        told = False
        while True:
            other = self._try_acquire(me)
            if other is None:
                return me
            waited = time.monotonic() - started
            if waited >= timeout:
                raise StoreBusy(self.location, other if isinstance(other, LockHolder) else None, waited)
            if not told:
                told = True
                holder = other if isinstance(other, LockHolder) else None
                if on_wait is not None:
                    on_wait(holder, timeout)
                else:
                    say_waiting(holder, self.location, timeout)
            time.sleep(min(_POLL, max(0.0, timeout - waited)))

    def _try_acquire(self, me: LockHolder) -> LockHolder | bool | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _release(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class FileLock(WriteLock):
    """``flock`` on a file: exclusive between processes and between threads
    (each acquisition opens its own file description). The file holds the
    holder's JSON while the lock is held.

    Example
    -------
    >>> import tempfile
    >>> lock = FileLock(Path(tempfile.mkdtemp()) / "write.lock")
    >>> with lock.hold("doctest") as me:
    ...     lock.held, lock.read_holder().pid == os.getpid()
    (True, True)
    >>> lock.held, lock.read_holder()
    (False, None)
    """

    def __init__(self, path: str | os.PathLike, location: str | None = None) -> None:
        self.path = Path(path)
        super().__init__(location or str(self.path.parent))
        self._fds: dict[int, int] = {}

    def read_holder(self) -> LockHolder | None:
        """The recorded holder (``None`` when free or unknown)."""
        try:
            return LockHolder.from_json(self.path.read_text(encoding="utf-8"))
        except OSError:
            return None

    def _try_acquire(self, me: LockHolder) -> LockHolder | bool | None:
        from ringscope.graph.files import private_dir

        if not self.path.parent.exists():
            private_dir(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return self.read_holder() or True
        except BaseException:
            os.close(fd)
            raise
        os.fchmod(fd, 0o600)
        os.ftruncate(fd, 0)
        os.pwrite(fd, me.to_json().encode("utf-8"), 0)
        self._fds[threading.get_ident()] = fd
        return None

    def _release(self) -> None:
        fd = self._fds.pop(threading.get_ident(), None)
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # closing drops the flock


class LeaseKeeper:
    """Renews a lease every ``interval`` seconds on a daemon thread until stopped.

    ``renew()`` returns False when the lease was lost; the keeper then stops
    and sets :attr:`lost`.
    """

    def __init__(self, renew: Callable[[], bool], interval: float) -> None:
        self._renew = renew
        self._interval = interval
        self._stop = threading.Event()
        self.lost = False
        self._thread = threading.Thread(target=self._run, name="ringscope-lease", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                if not self._renew():
                    self.lost = True
                    return
            except Exception:  # a network blip: try again next round; the lease has slack
                continue

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
