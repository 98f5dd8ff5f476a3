"""What every command shares: store options, the write lock, progress bars, tables."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from ringscope.graph.locking import LockHolder, LockLost, StoreBusy
from ringscope.graph.store import (
    DEFAULT_STORE_PATH,
    GraphCounts,
    GraphStore,
    open_store,
)

__all__ = [
    "config_option",
    "settings_from",
    "print_bad_values",
    "ProgressBar",
    "StoreBusyError",
    "counts_table",
    "duration",
    "frame_table",
    "limit_options",
    "limits_from",
    "lock_option",
    "opened",
    "print_reasons",
    "store_options",
    "writing",
]


class ProgressBar:
    """tqdm bar fed by ``progress(stage, done, total)`` callbacks."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._bar = None
        self._stage = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        family = stage.split(" ")[0]
        if self._bar is None or self._stage != family or self._bar.total != total:
            self.close()
            self._bar = tqdm(
                total=total, desc=family, unit="rows" if total > 100 else "step", file=sys.stderr, leave=False
            )
            self._stage = family
        self._bar.set_postfix_str(stage[len(family) :].strip()[:40], refresh=False)
        self._bar.update(max(0, done - self._bar.n))

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def store_options(func):
    func = click.option(
        "--neo4j",
        "neo4j_uri",
        metavar="URI",
        default=None,
        help="Use Neo4j at URI (bolt://127.0.0.1:7687). Also RINGSCOPE_NEO4J_URI.",
    )(func)
    func = click.option(
        "--store",
        "store_path",
        metavar="PATH",
        default=None,
        help=f"Embedded store folder (default {DEFAULT_STORE_PATH}).",
    )(func)
    return func


def config_option(func):
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, exists=True, path_type=Path),
        default=None,
        envvar="RINGSCOPE_CONFIG",
        metavar="FILE",
        help="Settings file (TOML: [detectors.NAME] parameters, [training]); also RINGSCOPE_CONFIG. "
        "`ringscope settings` prints every setting with its value.",
    )(func)


def settings_from(path: Path | None):
    """The settings of ``--config`` (the defaults without one), or a usage error saying what is wrong."""
    from ringscope.detectors.settings import SettingsError, load_settings

    try:
        return load_settings(path)
    except SettingsError as err:
        raise click.UsageError(str(err)) from err


def limit_options(func):
    """``--applied-from``, ``--applied-to``, ``--max-amount``: the ranges ingest accepts."""
    func = click.option(
        "--max-amount",
        type=float,
        default=None,
        metavar="CNY",
        help="Largest accepted amount (application, guarantee, declared revenue/income). Default 1e10.",
    )(func)
    func = click.option(
        "--applied-to",
        type=click.DateTime(formats=["%Y-%m-%d"]),
        default=None,
        help="Latest accepted applied_at day (Asia/Shanghai). Default: tomorrow.",
    )(func)
    func = click.option(
        "--applied-from",
        type=click.DateTime(formats=["%Y-%m-%d"]),
        default=None,
        help="Earliest accepted applied_at day (Asia/Shanghai). Default 1990-01-01.",
    )(func)
    return func


def limits_from(applied_from, applied_to, max_amount):
    """IngestLimits from the CLI options (unset options keep their defaults)."""
    from ringscope.ingest.limits import IngestLimits

    given = {}
    if applied_from is not None:
        given["applied_from"] = applied_from.date()
    if applied_to is not None:
        given["applied_to"] = applied_to.date()
    if max_amount is not None:
        given["max_amount"] = max_amount
    try:
        return IngestLimits(**given)
    except ValueError as err:
        raise click.UsageError(str(err)) from err


def lock_option(func):
    return click.option(
        "--lock-timeout",
        type=click.FloatRange(0),
        default=None,
        metavar="SECONDS",
        help="How long to wait for another job's store lock (default $RINGSCOPE_LOCK_TIMEOUT or 600; 0: do not wait).",
    )(func)


class StoreBusyError(click.ClickException):
    """The store is locked by another job (exit code 3)."""

    exit_code = 3


@contextmanager
def writing(store: GraphStore, job: str, timeout: float | None) -> Iterator[None]:
    """Hold the store's write lock for the whole command."""

    def say(holder: LockHolder | None, limit: float) -> None:
        who = holder.describe() if holder else "another job"
        click.echo(f"waiting for the store lock held by {who} (up to {limit:.0f} s)", err=True)

    try:
        with store.lock(job=f"ringscope {job}", timeout=timeout, on_wait=say):
            yield
    except (StoreBusy, LockLost) as busy:
        raise StoreBusyError(str(busy)) from busy


@contextmanager
def opened(store_path: str | None, neo4j_uri: str | None) -> Iterator[GraphStore]:
    if store_path and neo4j_uri:
        raise click.UsageError("Give either --store or --neo4j, not both.")
    try:
        store = open_store(store_path, neo4j_uri)
        if store.kind == "neo4j":
            store.verify()
    except Exception as err:  # driver errors carry the useful message
        if isinstance(err, click.ClickException):
            raise
        raise click.ClickException(f"Cannot open the store: {err}") from err
    try:
        yield store
    finally:
        store.close()


def counts_table(counts: GraphCounts) -> str:
    left = [(label, n) for label, n in counts.nodes.items()]
    right = [(rtype, n) for rtype, n in counts.relationships.items()]
    width = max(len(left), len(right))
    left += [("", None)] * (width - len(left))
    right += [("", None)] * (width - len(right))
    lines = [f"  {'nodes':<14}{'count':>11}    {'relationships':<20}{'count':>11}"]
    for (ln, lc), (rn, rc) in zip(left, right):
        lc_s = f"{lc:>11,}" if lc is not None else " " * 11
        rc_s = f"{rc:>11,}" if rc is not None else ""
        lines.append(f"  {ln:<14}{lc_s}    {rn:<20}{rc_s}")
    lines.append(f"  {'total':<14}{counts.total_nodes:>11,}    {'total':<20}{counts.total_relationships:>11,}")
    return "\n".join(lines)


def print_reasons(reasons: dict[str, int], top: int = 5) -> None:
    for reason, n in list(reasons.items())[:top]:
        click.echo(f"    {n:>8,}  {reason}")
    if len(reasons) > top:
        click.echo(f"    {sum(list(reasons.values())[top:]):>8,}  other reasons")


def duration(seconds: float) -> str:
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


def frame_table(frame, floats: str = "{:.3f}") -> str:
    """A pandas frame as a plain aligned table for the terminal."""
    if frame.empty:
        return "  (none)"
    shown = frame.copy()
    for col in shown.columns:
        if shown[col].dtype.kind == "f":
            shown[col] = shown[col].map(lambda v: "" if v != v else floats.format(v))
    return "\n".join("  " + line for line in shown.to_string(index=False).splitlines())


def print_bad_values(bad_values) -> None:
    """One warning line per column whose implausible stored values were read as missing."""
    for bad in bad_values:
        click.echo(f"  warning: {bad.message}")
