"""What every real-browser test of the dashboard shares: Debian's Chromium
(never ``playwright install``), its flags, the log-in password the fixtures
set, waiting for a rerun to end, and the guard that records and aborts any
request off loopback (the dashboard must make none)."""

from __future__ import annotations

import os
from collections.abc import Callable
from urllib.parse import urlparse

__all__ = ["ARGS", "CHROMIUM", "LOOPBACK", "PASSWORD", "READY", "loopback_guard", "settle"]

CHROMIUM = os.environ.get("RINGSCOPE_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
READY = "[data-testid='stApp'][data-test-script-state='notRunning']"
PASSWORD = "correct horse"


def settle(page) -> None:
    page.wait_for_timeout(300)  # let a rerun start before waiting for it to end
    page.wait_for_selector(READY)


def loopback_guard(off_loopback: list[str]) -> Callable:
    """A ``context.route`` handler: requests to loopback (and data/blob/about
    URLs) go through; any other is appended to ``off_loopback`` and aborted.

    >>> class Route:
    ...     def __init__(self, url): self.request, self.done = type("R", (), {"url": url}), None
    ...     def continue_(self): self.done = "continued"
    ...     def abort(self): self.done = "aborted"
    >>> seen = []; guard = loopback_guard(seen)
    >>> local, remote = Route("http://127.0.0.1:8501/x"), Route("http://203.0.113.7/track.png")
    >>> guard(local); guard(remote); (local.done, remote.done, seen)
    ('continued', 'aborted', ['http://203.0.113.7/track.png'])
    """

    def guard(route) -> None:
        parsed = urlparse(route.request.url)
        if parsed.scheme in ("data", "blob", "about") or parsed.hostname in LOOPBACK:
            route.continue_()
        else:
            off_loopback.append(route.request.url)
            route.abort()

    return guard
