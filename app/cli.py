"""The ``ringscope`` command line: batch jobs and the demo.

Every command shows progress on long work (on stderr) and ends with a
one-screen summary (on stdout). Store selection is the same everywhere:
``--store PATH`` (embedded, default ``./.ringscope``) or ``--neo4j URI``
(or the ``RINGSCOPE_NEO4J_URI`` environment variable).

Commands that change the store (ingest, detect, train, flag, demo) hold its
write lock for the whole job: a second one waits, saying who holds the lock,
for up to ``--lock-timeout`` seconds, then exits with code 3. Everything the
CLI creates is private to the user (umask 077).
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import click

from ringscope.graph.files import atomic_open, private_dir, write_csv
from ringscope.graph.locking import LockHolder, LockLost, StoreBusy
from ringscope.graph.store import DEFAULT_STORE_PATH, GraphCounts, GraphStore, open_store

__all__ = ["main", "cli"]


class _ProgressBar:
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
            self._bar = tqdm(total=total, desc=family, unit="rows" if total > 100 else "step", file=sys.stderr, leave=False)
            self._stage = family
        self._bar.set_postfix_str(stage[len(family):].strip()[:40], refresh=False)
        self._bar.update(max(0, done - self._bar.n))

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _store_options(func):
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


def _limit_options(func):
    """``--applied-from``, ``--applied-to``, ``--max-amount``: the ranges ingest accepts."""
    func = click.option("--max-amount", type=float, default=None, metavar="CNY",
                        help="Largest accepted amount (application, guarantee, declared revenue/income). "
                             "Default 1e10.")(func)
    func = click.option("--applied-to", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
                        help="Latest accepted applied_at day (Asia/Shanghai). Default: tomorrow.")(func)
    func = click.option("--applied-from", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
                        help="Earliest accepted applied_at day (Asia/Shanghai). Default 1990-01-01.")(func)
    return func


def _limits(applied_from, applied_to, max_amount):
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


def _lock_option(func):
    return click.option(
        "--lock-timeout",
        type=click.FloatRange(0),
        default=None,
        metavar="SECONDS",
        help="How long to wait for another job's store lock (default $RINGSCOPE_LOCK_TIMEOUT or 600; 0: do not wait).",
    )(func)


class _StoreBusyError(click.ClickException):
    """The store is locked by another job (exit code 3)."""

    exit_code = 3


@contextmanager
def _writing(store: GraphStore, job: str, timeout: float | None) -> Iterator[None]:
    """Hold the store's write lock for the whole command."""

    def say(holder: LockHolder | None, limit: float) -> None:
        who = holder.describe() if holder else "another job"
        click.echo(f"waiting for the store lock held by {who} (up to {limit:.0f} s)", err=True)

    try:
        with store.lock(job=f"ringscope {job}", timeout=timeout, on_wait=say):
            yield
    except (StoreBusy, LockLost) as busy:
        raise _StoreBusyError(str(busy)) from busy


@contextmanager
def _opened(store_path: str | None, neo4j_uri: str | None) -> Iterator[GraphStore]:
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


def _counts_table(counts: GraphCounts) -> str:
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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ringscope")
def cli() -> None:
    """ringscope: fraud rings in lending portfolios, inside your own walls."""


@cli.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@_store_options
@click.option("--rejects", "rejects_path", metavar="FILE", default="ringscope_rejects.csv", show_default=True,
              help="Where rows that break the data contract are written, with file, line and reason.")
@click.option("--update", is_flag=True,
              help="Rows that differ from stored ones correct them (each change goes to the audit log) "
                   "instead of being rejected.")
@_limit_options
@_lock_option
@click.option("--quiet", is_flag=True, help="No progress bar.")
def ingest(folder: Path, store_path: str | None, neo4j_uri: str | None, rejects_path: str, update: bool,
           applied_from, applied_to, max_amount: float | None, lock_timeout: float | None, quiet: bool) -> None:
    """Load a lender's export FOLDER (applications, guarantees, contacts, company_roles)."""
    from ringscope.ingest.pipeline import ingest_folder

    limits = _limits(applied_from, applied_to, max_amount)
    bar = _ProgressBar(enabled=not quiet)
    with _opened(store_path, neo4j_uri) as store, _writing(store, "ingest", lock_timeout):
        try:
            summary = ingest_folder(folder, store, rejects_path=rejects_path, progress=bar, limits=limits,
                                    update=update)
        finally:
            bar.close()
    click.echo(f"ringscope ingest {folder} → {summary.store} ({summary.seconds:.1f} s)")
    click.echo(f"  {'table':<15}{'encoding':<11}{'read':>10}{'loaded':>10}{'rejected':>10}")
    for t in summary.tables:
        click.echo(f"  {t.table:<15}{t.encoding or '-':<11}{t.rows_read:>10,}{t.rows_loaded:>10,}{t.rows_rejected:>10,}")
        if t.lines_read != t.rows_read:
            click.echo(f"    {t.lines_read:,} physical lines: {t.blank_lines:,} blank, "
                       f"{t.lines_read - t.rows_read - t.blank_lines:,} more inside quoted multi-line values")
        if t.error:
            click.echo(f"    error: {t.error}")
    click.echo(f"  {'total':<26}{sum(t.rows_read for t in summary.tables):>10,}{summary.rows_loaded:>10,}{summary.rows_rejected:>10,}")
    if summary.rejects_path:
        click.echo(f"  rejected rows with reasons: {summary.rejects_path}")
        _print_reasons(summary.reject_reasons)
    if summary.corrections:
        click.echo(f"  corrected {summary.corrections:,} stored rows (before/after in the audit log)")
    if summary.counts is not None:
        click.echo(_counts_table(summary.counts))
    if summary.exit_code:
        click.echo("Nothing was loaded." if not summary.unreadable else "Some files could not be read.", err=True)
    sys.exit(summary.exit_code)


def _print_reasons(reasons: dict[str, int], top: int = 5) -> None:
    for reason, n in list(reasons.items())[:top]:
        click.echo(f"    {n:>8,}  {reason}")
    if len(reasons) > top:
        click.echo(f"    {sum(list(reasons.values())[top:]):>8,}  other reasons")


@cli.command()
@_store_options
def stats(store_path: str | None, neo4j_uri: str | None) -> None:
    """Node and relationship counts by label and type."""
    with _opened(store_path, neo4j_uri) as store:
        counts = store.counts()
        click.echo(f"ringscope stats: {store.kind} store at {store.location}")
        click.echo(_counts_table(counts))


@cli.command()
@click.option("--applications", "n_applications", type=int, default=20_000, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--encoding", type=click.Choice(["utf-8", "utf-8-sig", "gbk", "gb18030"]), default="utf-8", show_default=True)
@click.option("--format", "file_format", type=click.Choice(["csv", "parquet"]), default="csv", show_default=True)
@click.option("--scenario", type=click.Choice(["random"]), default=None,
              help="Draw the generator's knobs (ring sizes and speed, reuse, mess, honest hubs, labelled share, "
                   "fraud prevalence, new-batch share, rotation) at random from --seed; writes history/, new/ "
                   "and scenario.json.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def generate(n_applications: int, seed: int, out_dir: Path, encoding: str, file_format: str, scenario: str | None,
             quiet: bool) -> None:
    """Write a labeled synthetic lending portfolio (the four contract tables + truth/)."""
    from ringscope.ingest.synthetic import GeneratorConfig, generate_portfolio, generate_scenario, random_scenario

    try:
        if scenario is None:
            config = GeneratorConfig(applications=n_applications, seed=seed, encoding=encoding,
                                     file_format=file_format)
        else:
            drawn = random_scenario(seed, n_applications, encoding=encoding, file_format=file_format)
    except (TypeError, ValueError) as err:
        raise click.BadParameter(str(err)) from err
    bar = _ProgressBar(enabled=not quiet)
    try:
        if scenario is None:
            summary = generate_portfolio(config, out_dir, progress=bar)
        else:
            summary = generate_scenario(drawn, out_dir, progress=bar)
    finally:
        bar.close()
    _print_generation(summary, out_dir)
    if scenario is not None:
        _print_scenario(drawn, summary)


def _print_scenario(scenario, summary) -> None:
    k = scenario.knobs
    span = k["ring_span_seconds"]
    click.echo(f"  scenario {scenario.kind} (seed {scenario.seed}): fraud prevalence {k['fraud_prevalence']:.2%}, "
               f"ring sizes {k['ring_sizes'][0]}–{k['ring_sizes'][1]}, ring spans {_duration(span[0])}–"
               f"{_duration(span[1])}, reuse {k['reuse_share']:.0%}, rotation {k['rotation']:.0%}, "
               f"mess {k['mess_rate']:.1%}, labelled {k['labelled_share']:.0%} of history, "
               f"new batch {k['new_batch_share']:.1%}")
    click.echo(f"  ingest {Path(summary.out_dir) / 'history'}, then flag {Path(summary.out_dir) / 'new'}; "
               f"every knob in {summary.paths['scenario']}")


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


def _print_generation(summary, out_dir: Path) -> None:
    click.echo(f"ringscope generate → {out_dir} ({summary.seconds:.1f} s)")
    for table, n in summary.row_counts.items():
        click.echo(f"  {table:<28}{n:>10,} rows")
    planted = {k: v for k, v in summary.planted.items() if v}
    if planted:
        click.echo("  planted: " + ", ".join(f"{k} {v:,}" for k, v in planted.items()))


@cli.command()
@click.option("--applications", "n_applications", type=int, default=20_000, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("demo-data"),
              show_default=True, help="Where the generated portfolio is written.")
@_store_options
@_lock_option
@click.option("--no-ui", is_flag=True, help="Do not start the dashboard.")
def demo(n_applications: int, seed: int, data_dir: Path, store_path: str | None, neo4j_uri: str | None,
         lock_timeout: float | None, no_ui: bool) -> None:
    """Generate a portfolio, ingest it, and summarise what ringscope sees."""
    from ringscope.ingest.pipeline import ingest_folder
    from ringscope.ingest.synthetic import GeneratorConfig, generate_portfolio

    bar = _ProgressBar(enabled=True)
    click.echo(f"1/5 generating {n_applications:,} applications (seed {seed}) into {data_dir}")
    try:
        gen = generate_portfolio(GeneratorConfig(applications=n_applications, seed=seed), data_dir, progress=bar)
    finally:
        bar.close()
    _print_generation(gen, data_dir)
    with _opened(store_path, neo4j_uri) as store, _writing(store, "demo", lock_timeout):
        base_dir, tonight_dir = _split_tonight(data_dir)
        click.echo(f"2/5 ingesting {base_dir} into the {store.kind} store at {store.location} (replacing its "
                   f"contents); the latest applications are held back in {tonight_dir} as tonight's batch")
        store.clear()
        try:
            summary = ingest_folder(base_dir, store, rejects_path=data_dir / "rejects.csv", progress=bar)
        finally:
            bar.close()
        click.echo(f"  loaded {summary.rows_loaded:,} rows, rejected {summary.rows_rejected:,} "
                   f"(reasons in {summary.rejects_path}) in {summary.seconds:.1f} s")
        _print_reasons(summary.reject_reasons)
        if summary.counts is not None:
            click.echo(_counts_table(summary.counts))
        if summary.exit_code:
            sys.exit(summary.exit_code)
        click.echo("3/5 running the detectors")
        run = _run_detection(store, (), quiet=False)
        _print_detection(run)
        truth = data_dir / "truth"
        if truth.exists():
            from ringscope.detectors.evaluate import evaluate_findings

            result = evaluate_findings(run.findings, truth)
            click.echo("  against the generator's truth:")
            click.echo(_frame_table(result.summary))
        click.echo("4/5 training the fraud model and scoring every application")
        from ringscope.detectors.risk import train as train_model

        try:
            # the demo replaced the store's data: its model is the champion whatever an earlier demo left
            trained = train_model(store, progress=bar, promote="always")
        except ValueError as err:
            raise click.ClickException(str(err)) from err
        finally:
            bar.close()
        if trained.event is not None:
            _audit_model_event(store, "fraud", trained.event)
        _print_training(trained)
        click.echo(f"5/5 flagging tonight's batch ({tonight_dir}) incrementally")
        from ringscope.detectors.flagging import flag_applications

        try:
            flagged, result = flag_applications(store, tonight_dir, trained.model, data_dir / "tonight-rejects.csv",
                                                progress=bar)
        finally:
            bar.close()
        flags_path = data_dir / "flags.csv"
        write_csv(result.flags, flags_path)
        counts = result.flags["decision"].value_counts()
        click.echo(f"  scored {len(result.flags):,} new applications -> {flags_path}: "
                   + ", ".join(f"{d} {counts.get(d, 0):,}" for d in ("pass", "review", "decline")))
        for f in sorted(result.new_findings, key=lambda f: -f.score)[:3]:
            click.echo(f"    {f.score:.2f}  {f.finding_id}  {f.summary}")
        location = store.location
        kind = store.kind
    if no_ui:
        click.echo(f"Done. Explore with `ringscope dashboard --{'store' if kind == 'embedded' else 'neo4j'} {location}`.")
        return
    _start_dashboard(store_path if kind == "embedded" else None, neo4j_uri if kind == "neo4j" else None)


def _split_tonight(data_dir: Path, share: float = 0.02) -> tuple[Path, Path]:
    """Split a generated export into the portfolio and "tonight's batch": the
    latest ``share`` of applications with their contacts and guarantees."""
    import pandas as pd

    base, tonight = data_dir / "portfolio", data_dir / "tonight"
    apps = pd.read_csv(data_dir / "applications.csv", dtype=str, keep_default_na=False)
    when = pd.to_datetime(apps["applied_at"], errors="coerce", format="mixed")
    latest = when.sort_values(ascending=False).dropna().index[: max(1, int(len(apps) * share))]
    new_ids = set(apps.loc[latest, "application_id"])
    for folder in (base, tonight):
        private_dir(folder)
    for name in ("applications", "contacts", "guarantees", "company_roles"):
        path = data_dir / f"{name}.csv"
        if not path.exists():
            continue
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
        if "application_id" in table.columns:
            is_new = table["application_id"].isin(new_ids)
            _private_csv(table[~is_new], base / path.name)
            _private_csv(table[is_new], tonight / path.name)
        else:  # registry rows describe companies, not applications: all of them stay in the portfolio
            _private_csv(table, base / path.name)
    return base, tonight


def _private_csv(frame, path: Path) -> None:
    """Input for a later ingest, written as it is (no spreadsheet escaping), mode 0600."""
    with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
        frame.to_csv(handle, index=False)


def _start_dashboard(store_path: str | None, neo4j_uri: str | None, port: int = 8501, open_browser: bool = True,
                     idle_minutes: float | None = None) -> None:
    try:
        from ringscope.app.dashboard.launch import launch
    except ImportError:
        click.echo("The dashboard is not installed in this build; the store above is ready for "
                   "`ringscope stats`, `ringscope flag` and Cypher.")
        return
    launch(store_path, neo4j_uri, port=port, open_browser=open_browser, idle_minutes=idle_minutes)


def _frame_table(frame, floats: str = "{:.3f}") -> str:
    """A pandas frame as a plain aligned table for the terminal."""
    if frame.empty:
        return "  (none)"
    shown = frame.copy()
    for col in shown.columns:
        if shown[col].dtype.kind == "f":
            shown[col] = shown[col].map(lambda v: "" if v != v else floats.format(v))
    return "\n".join("  " + line for line in shown.to_string(index=False).splitlines())


def _run_detection(store: GraphStore, only: tuple[str, ...], quiet: bool):
    from ringscope.detectors.runner import run_detectors, save_findings

    bar = _ProgressBar(enabled=not quiet)
    try:
        run = run_detectors(store, list(only) or None,
                            progress=lambda name, done, total: bar(f"detect {name}", done, total))
        save_findings(store, run, progress=bar)
    finally:
        bar.close()
    return run


def _print_bad_values(bad_values) -> None:
    """One warning line per column whose implausible stored values were read as missing."""
    for bad in bad_values:
        click.echo(f"  warning: {bad.message}")


def _print_detection(run) -> None:
    click.echo(_frame_table(run.by_detector(), "{:.2f}"))
    for name, error in run.errors.items():
        click.echo(f"  ! {name} failed: {error.splitlines()[0]}", err=True)
    _print_bad_values(run.bad_values)
    top = sorted(run.findings, key=lambda f: -f.score)[:5]
    if top:
        click.echo("  top findings:")
        for f in top:
            click.echo(f"    {f.score:.2f}  {f.finding_id}  {f.summary}")


@cli.command()
@_store_options
@click.option("--export", "export_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also write findings.csv and members.csv to this folder.")
@click.option("--only", multiple=True, metavar="NAME", help="Run only this detector (repeatable).")
@_lock_option
@click.option("--quiet", is_flag=True, help="No progress bar.")
def detect(store_path: str | None, neo4j_uri: str | None, export_dir: Path | None, only: tuple[str, ...],
           lock_timeout: float | None, quiet: bool) -> None:
    """Run every detector over the store and save the findings in it."""
    from ringscope.detectors.registry import DETECTORS
    from ringscope.detectors.runner import export_findings

    unknown = set(only) - set(DETECTORS)
    if unknown:
        raise click.UsageError(f"Unknown detector(s) {', '.join(sorted(unknown))}; known: {', '.join(DETECTORS)}")
    # The lock spans the reads too: the findings describe one state of the store.
    with _opened(store_path, neo4j_uri) as store, _writing(store, "detect", lock_timeout):
        if store.counts().nodes.get("Application", 0) == 0:
            raise click.ClickException(f"The {store.kind} store at {store.location} holds no applications; "
                                       "run `ringscope ingest FOLDER` first.")
        run = _run_detection(store, only, quiet)
    click.echo(f"{len(run.findings):,} findings saved in the {store.kind} store at {store.location}")
    _print_detection(run)
    if export_dir is not None:
        findings_path, members_path = export_findings(run.findings, export_dir)
        click.echo(f"  wrote {findings_path} and {members_path}")
    sys.exit(1 if run.errors else 0)


@cli.command()
@_store_options
@click.option("--truth", "truth_dir", type=click.Path(file_okay=False, exists=True, path_type=Path), required=True,
              help="A generator's truth/ folder (applications.csv, guarantee_circles.csv).")
@click.option("--min-score", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Findings below this score are not counted as flagged.")
def evaluate(store_path: str | None, neo4j_uri: str | None, truth_dir: Path, min_score: float) -> None:
    """Compare the saved findings with a labeled portfolio's truth."""
    from ringscope.detectors.evaluate import evaluate_findings
    from ringscope.detectors.runner import load_findings

    with _opened(store_path, neo4j_uri) as store:
        findings = load_findings(store)
    if not findings:
        raise click.ClickException("No findings in the store; run `ringscope detect` first.")
    try:
        result = evaluate_findings(findings, truth_dir, min_score=min_score)
    except (FileNotFoundError, KeyError) as err:
        raise click.ClickException(str(err)) from err
    click.echo(_frame_table(result.summary))
    click.echo("\nrecall by planted typology")
    click.echo(_frame_table(result.by_typology))
    click.echo("\nfalse positives among hard negatives")
    click.echo(_frame_table(result.by_hard_negative))
    click.echo("\nper detector (precision = share of flagged applications that are fraud)")
    click.echo(_frame_table(result.by_detector))


def _print_training(result) -> None:
    report = result.report
    click.echo(f"{report['target']} model {report['version']} ({report['chosen']}) saved in {result.folder}")
    click.echo(f"  target {report['target']}: {_describe_outcomes(report)}")
    valid = report["validation"]
    if valid.get("method", "out of time") == "out of time":
        click.echo(f"  out-of-time validation on the latest {valid['n']:,} "
                   f"({valid['from'][:10]} to {valid['to'][:10]}), {valid['bad']:,} {report['target']} among them")
    else:  # too few positives for a time cut: say so, the figures are not out of time
        click.echo(f"  {valid['method']} validation over all {valid['n']:,} labelled applications "
                   f"({valid['bad']:,} {report['target']}), not out of time: {valid['why']}")
    rows = []
    for kind, m in report["models"].items():
        for variant in ("all features", "without graph"):
            rows.append({"model": kind + (" *" if kind == report["chosen"] else ""), "features": variant,
                         "AUC": m[variant]["auc"], "KS": m[variant]["ks"],
                         f"precision@{report['review_capacity_k']}": m[variant]["precision_at_k"]})
    import pandas as pd

    click.echo(_frame_table(pd.DataFrame(rows)))
    chosen = report["models"][report["chosen"]]
    click.echo(f"  graph uplift ({report['chosen']}): AUC {chosen['uplift_auc']:+.3f}, "
               f"precision@k {chosen['uplift_precision_at_k']:+.3f}")
    click.echo(f"  plots: {result.folder / 'roc.png'}, {result.folder / 'scores.png'}")
    comparison = getattr(result, "comparison", None)  # None for a first model
    if comparison is not None:
        click.echo(f"  against the champion {comparison['champion_version']} on the same out-of-time applications"
                   + (" (the champion learned from some of them: its figures are in-sample)"
                      if comparison.get("champion_in_sample") else "") + ":")
        click.echo(f"    {comparison['verdict']}")
    if getattr(result, "promoted", True):
        event = getattr(result, "event", None)
        click.echo(f"  {report['version']} is the champion ({event.reason if event else 'promoted'})")
        counts = result.scored["decision"].value_counts()
        click.echo("  decisions on the portfolio: " + ", ".join(f"{d} {counts.get(d, 0):,}"
                                                                 for d in ("pass", "review", "decline")))
    else:
        target = "" if report["target"] == "fraud" else f" --target {report['target']}"
        click.echo(f"  saved as the challenger; the champion still scores. Promote it with "
                   f"`ringscope promote {report['version']}{target}`, compare nightly with `ringscope flag --shadow`.")
    _print_bad_values(result.bad_values)


def _describe_outcomes(report: dict) -> str:
    """One line: how many positives (and from where), negatives, left out."""
    pos = report["positives"]
    sources = [f"{pos['from labels']:,} '{'/'.join(report['positive_labels'])}' labels"]
    if pos["from case verdicts"]:
        sources.append(f"{pos['from case verdicts']:,} confirmed-fraud case verdicts")
    negatives = ", ".join(f"{n:,} {k}" for k, n in report["negatives"].items())
    line = (f"{pos['total']:,} positives ({', '.join(sources)}) among {report['labelled']:,} labelled "
            f"applications; negatives: {negatives}")
    if report.get("left_out"):
        line += "; left out: " + ", ".join(f"{n:,} {k}" for k, n in report["left_out"].items())
    return line


def _target_option(action: str):
    from ringscope.detectors.scoring import TARGETS

    return click.option("--target", type=click.Choice(list(TARGETS)), default=None,
                        help=f"What the model {action}: fraud (default) or credit default, each its own model.")


def _bad_alias(bad_labels: str | None, target: str | None) -> str:
    """The target of ``train``: ``--target``, or the deprecated ``--bad`` naming exactly one target's labels."""
    from ringscope.detectors.scoring import TARGETS

    if bad_labels is None:
        return target or "fraud"
    labels = tuple(sorted({b.strip() for b in bad_labels.split(",") if b.strip()}))
    named = [name for name, wanted in TARGETS.items() if tuple(sorted(wanted)) == labels]
    if not named:
        raise click.UsageError(f"--bad {bad_labels} would mix outcomes into one score; --bad is deprecated: train "
                               "each target on its own with --target fraud (the default) and --target default.")
    if target is not None and target != named[0]:
        raise click.UsageError(f"--bad {bad_labels} and --target {target} disagree; give --target only.")
    click.echo(f"note: --bad is deprecated; use --target {named[0]}", err=True)
    return named[0]


@cli.command()
@_store_options
@_target_option("learns to predict")
@click.option("--bad", "bad_labels", default=None, hidden=True,
              help="Deprecated: --bad fraud is --target fraud, --bad default is --target default.")
@click.option("--review-capacity", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.05,
              show_default=True, help="Share of applications the team can review (precision@k is measured there).")
@click.option("--review", "review_threshold", type=click.FloatRange(0, 1), default=0.3, show_default=True,
              help="Default score from which an application goes to review.")
@click.option("--decline", "decline_threshold", type=click.FloatRange(0, 1), default=0.7, show_default=True,
              help="Default score from which an application is declined.")
@click.option("--promote", "promote_policy", type=click.Choice(["never", "auto", "always"]), default="never",
              show_default=True,
              help="When a champion exists: never (save a challenger for `ringscope promote`), auto (promote when it "
                   "beats the champion out of time on AUC and precision@k without declining more honest "
                   "applications), always.")
@_lock_option
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train(store_path: str | None, neo4j_uri: str | None, target: str | None, bad_labels: str | None,
          review_capacity: float, review_threshold: float, decline_threshold: float, promote_policy: str,
          lock_timeout: float | None, quiet: bool) -> None:
    """Fit the fraud model (or, with --target default, the credit-default model) on the store's
    outcomes and case verdicts. The first model becomes the champion and scores every application;
    later ones are challengers, compared with the champion (see --promote)."""
    from ringscope.detectors.risk import train as train_model
    from ringscope.detectors.scoring import TrainingConfig

    try:
        config = TrainingConfig(target=_bad_alias(bad_labels, target),
                                review_capacity=review_capacity, review_threshold=review_threshold,
                                decline_threshold=decline_threshold)
    except ValueError as err:
        raise click.UsageError(str(err)) from err
    bar = _ProgressBar(enabled=not quiet)
    with _opened(store_path, neo4j_uri) as store, _writing(store, "train", lock_timeout):
        try:
            result = train_model(store, config, progress=bar, promote=promote_policy)
        except ValueError as err:
            raise click.ClickException(str(err)) from err
        finally:
            bar.close()
        if result.event is not None:
            _audit_model_event(store, config.target, result.event)
    _print_training(result)


@cli.command()
@click.argument("folder", type=click.Path(file_okay=False, exists=True, path_type=Path))
@_store_options
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), default=Path("flags.csv"),
              show_default=True, help="Where the scored applications are written.")
@click.option("--rejects", "rejects_path", metavar="FILE", default="ringscope_rejects.csv", show_default=True,
              help="Rows that break the data contract, with file, line and reason.")
@click.option("--review", "review_threshold", type=click.FloatRange(0, 1), default=None,
              help="Score from which an application goes to review (default: the model's).")
@click.option("--decline", "decline_threshold", type=click.FloatRange(0, 1), default=None,
              help="Score from which an application is declined (default: the model's).")
@_target_option("scores")
@click.option("--shadow", is_flag=True,
              help="Also score with the challenger (`ringscope train` saves one) and record its decisions beside "
                   "the champion's, without acting on them.")
@_limit_options
@_lock_option
@click.option("--quiet", is_flag=True, help="No progress bar.")
def flag(folder: Path, store_path: str | None, neo4j_uri: str | None, out_path: Path, rejects_path: str,
         review_threshold: float | None, decline_threshold: float | None, target: str | None, shadow: bool,
         applied_from, applied_to, max_amount: float | None, lock_timeout: float | None, quiet: bool) -> None:
    """Score the new applications in FOLDER against the existing graph (incremental), with the
    fraud model (or, with --target default, the credit-default model)."""
    import pandas as pd

    import warnings

    from ringscope.detectors.flag_state import FlagStateWarning
    from ringscope.detectors.flagging import flag_applications
    from ringscope.detectors.scoring import load_model, target_folder

    target = target or "fraud"
    limits = _limits(applied_from, applied_to, max_amount)
    bar = _ProgressBar(enabled=not quiet)
    with _opened(store_path, neo4j_uri) as store:
        try:
            model = load_model(target_folder(store, target))
        except FileNotFoundError as err:
            hint = "" if target == "fraud" else f" --target {target}"
            raise click.ClickException(f"No trained {target} model in {target_folder(store, target)}; "
                                       f"run `ringscope train{hint}` first.") from err
        if model.target != target:  # a model saved before targets: fraud and default mixed
            raise click.ClickException(f"The saved model {model.version} predicts {model.target!r}, not {target!r} "
                                       f"(trained before separate targets); run `ringscope train"
                                       f"{'' if target == 'fraud' else ' --target ' + target}` to replace it.")
        shadow_model = None
        if shadow:
            from ringscope.detectors.model_store import challenger

            version = challenger(target_folder(store, target))
            if version is None:
                raise click.ClickException(f"No challenger to shadow in {target_folder(store, target)}: "
                                           f"`ringscope train` saves one once a champion exists.")
            shadow_model = load_model(target_folder(store, target), version)
        review = model.config.review_threshold if review_threshold is None else review_threshold
        decline = model.config.decline_threshold if decline_threshold is None else decline_threshold
        if review >= decline:
            raise click.UsageError(f"--review ({review}) must be below --decline ({decline}).")
        try:
            with _writing(store, "flag", lock_timeout), warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", FlagStateWarning)
                summary, result = flag_applications(store, folder, model, rejects_path, review, decline,
                                                    progress=bar, limits=limits, shadow=shadow_model)
        finally:
            bar.close()
    for warning in caught:
        if issubclass(warning.category, FlagStateWarning):  # a bad cache costs time, never the flags
            click.echo(f"warning: {warning.message}", err=True)
        else:
            warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)
    write_csv(result.flags, out_path)
    click.echo(f"scored {len(result.flags):,} applications with the {target} model {model.version} -> {out_path}")
    if result.state is not None:
        first = sum(result.seconds.get(k, 0.0) for k in ("open index", "local detection")) + summary.seconds
        click.echo(f"  {result.state.describe()}; first score {first:.1f} s after the start of the ingest"
                   + (f"; state saved for the next run in {result.seconds['save state']:.1f} s"
                      if "save state" in result.seconds else ""))
    if summary.rows_rejected:
        click.echo(f"  rejected {summary.rows_rejected:,} rows (reasons in {summary.rejects_path})")
        _print_reasons(summary.reject_reasons)
    counts = result.flags["decision"].value_counts()
    click.echo("  decisions: " + ", ".join(f"{d} {counts.get(d, 0):,}" for d in ("pass", "review", "decline")))
    if result.shadow is not None and shadow_model is not None:
        both = result.flags.merge(result.shadow, on="application_id", suffixes=("", "_shadow"))
        shadow_counts = both["decision_shadow"].value_counts()
        agree = float((both["decision"] == both["decision_shadow"]).mean()) if len(both) else 1.0
        click.echo(f"  shadow: the challenger {shadow_model.version} would decide "
                   + ", ".join(f"{d} {shadow_counts.get(d, 0):,}" for d in ("pass", "review", "decline"))
                   + f" (same decision on {agree:.1%}; recorded in the shadow_* properties, not acted on)")
    accused = int((result.flags["ring_id"].fillna("") != "").sum())
    click.echo(f"  ring_id on {accused:,} applications (the finding scoring >= {review} that explains most "
               "of the score; weaker groupings are only evidence in the reasons)")
    if result.new_findings:
        per = pd.Series([f.detector for f in result.new_findings]).value_counts()
        click.echo(f"  {len(result.new_findings)} findings hold new applications ("
                   + ", ".join(f"{name} {n}" for name, n in per.items()) + "):")
        for f in sorted(result.new_findings, key=lambda f: (-f.score, f.finding_id))[:5]:
            click.echo(f"    {f.score:.2f}  {f.finding_id}  {f.summary}")
    for name, error in result.errors.items():
        click.echo(f"  detector {name} failed around this batch (its saved findings were used): "
                   f"{error.splitlines()[0]}", err=True)
    _print_bad_values(result.bad_values)
    sys.exit(summary.exit_code)


def _audit_model_event(store, target: str, event) -> None:
    """A change of champion is an audited event in the store, like an investigator's action."""
    from ringscope.app.dashboard.cases import audit

    audit(store, event.user, f"model {event.action}", f"model:{target}", before=event.before,
          after={"version": event.after, "reason": event.reason})


def _change_champion(store, target: str, change, progress) -> None:
    """Promote or roll back, audit it, and rescore the portfolio with the new champion."""
    from ringscope.detectors.model_store import load_model, target_folder
    from ringscope.detectors.risk import score_portfolio

    event = change()
    _audit_model_event(store, target, event)
    model = load_model(target_folder(store, target))
    try:
        scored = score_portfolio(store, model, progress=progress)
    finally:
        progress.close()
    counts = scored["decision"].value_counts()
    click.echo(f"{target} champion: {event.before or '(none)'} -> {event.after} ({event.action} by {event.user}); "
               f"rescored {len(scored):,} applications: "
               + ", ".join(f"{d} {counts.get(d, 0):,}" for d in ("pass", "review", "decline")))


@cli.command()
@click.argument("version", required=False)
@_store_options
@_target_option("to promote is for")
@click.option("--reason", default="", help="Why (kept in the model history and the audit log).")
@_lock_option
@click.option("--quiet", is_flag=True, help="No progress bar.")
def promote(version: str | None, store_path: str | None, neo4j_uri: str | None, target: str | None, reason: str,
            lock_timeout: float | None, quiet: bool) -> None:
    """Make VERSION (default: the challenger) the champion that flag uses, and rescore every
    application with it. Audited; `ringscope rollback` undoes it."""
    from ringscope.detectors.model_store import champion, challenger, promote as promote_version, target_folder
    from ringscope.detectors.risk import _user

    target = target or "fraud"
    with _opened(store_path, neo4j_uri) as store, _writing(store, "promote", lock_timeout):
        folder = target_folder(store, target)
        version = version or challenger(folder)
        if version is None:
            raise click.ClickException(f"No challenger in {folder} (champion: {champion(folder)}); "
                                       "give a VERSION or train one.")
        try:
            _change_champion(store, target, lambda: promote_version(folder, version, _user(), reason),
                             _ProgressBar(enabled=not quiet))
        except ValueError as err:
            raise click.ClickException(str(err)) from err


@cli.command()
@_store_options
@_target_option("to roll back is for")
@click.option("--reason", default="", help="Why (kept in the model history and the audit log).")
@_lock_option
@click.option("--quiet", is_flag=True, help="No progress bar.")
def rollback(store_path: str | None, neo4j_uri: str | None, target: str | None, reason: str,
             lock_timeout: float | None, quiet: bool) -> None:
    """Return to the champion before the current one and rescore every application with it. Audited."""
    from ringscope.detectors.model_store import rollback as rollback_version, target_folder
    from ringscope.detectors.risk import _user

    target = target or "fraud"
    with _opened(store_path, neo4j_uri) as store, _writing(store, "rollback", lock_timeout):
        folder = target_folder(store, target)
        try:
            _change_champion(store, target, lambda: rollback_version(folder, _user(), reason),
                             _ProgressBar(enabled=not quiet))
        except ValueError as err:
            raise click.ClickException(str(err)) from err


@cli.command()
@_store_options
@_target_option("is judged")
@click.option("--since", default=None, metavar="YYYY-MM-DD",
              help="First day of the recent periods (Beijing time). Default: everything after the training window.")
@click.option("--period", type=click.Choice(["week", "month"]), default="week", show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also write the tables (CSV) and a chart (monitoring.png) here.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def monitor(store_path: str | None, neo4j_uri: str | None, target: str | None, since: str | None, period: str,
            out_dir: Path | None, quiet: bool) -> None:
    """Is the model still scoring the book it learned from? Stability (PSI) of the score and each
    feature per recent week or month against the training window, detector hit rates, decision mix,
    and AUC / precision@k per monthly cohort where outcomes arrived. Exit code 1 when a PSI reaches
    "act" (0.25 beyond sampling noise), so a scheduler can alert."""
    import pandas as pd

    from ringscope.detectors.monitoring import ACT, WATCH, monitor as run_monitor, save_monitoring
    from ringscope.detectors.scoring import load_model, target_folder

    target = target or "fraud"
    if since is not None:
        try:
            pd.Timestamp(since)
        except ValueError as err:
            raise click.UsageError(f"--since must be a date (YYYY-MM-DD). Got {since!r}.") from err
    bar = _ProgressBar(enabled=not quiet)
    with _opened(store_path, neo4j_uri) as store:
        folder = target_folder(store, target)
        try:
            model = load_model(folder)
        except FileNotFoundError as err:
            hint = "" if target == "fraud" else f" --target {target}"
            raise click.ClickException(f"No trained {target} model in {folder}; run `ringscope train{hint}` "
                                       "first.") from err
        try:
            result = run_monitor(store, target, since=since, period=period, model=model, progress=bar)
        except ValueError as err:
            raise click.ClickException(str(err)) from err
        finally:
            bar.close()
        written = save_monitoring(result, folder, out_dir)
    click.echo(f"{result.target} model {result.model_version}: trained on {result.reference[0][:10]} to "
               f"{result.reference[1][:10]} ({result.sizes.get('reference', 0):,} applications)")
    for note in result.notes:
        click.echo(f"  {note}")
    if len(result.psi):
        click.echo(f"  per {period} (PSI judged beyond sampling noise: watch >= {WATCH}, act >= {ACT}):")
        decisions = result.decisions
        click.echo(f"    {period:<10} {'apps':>6}  {'score':>9}  {'status':<8} {'review+decline':>14}  moved features "
                   "(PSI beyond noise)")
        excess = result.excess
        for label in result.psi.index:
            moved = [f"{c} {excess.loc[label, c]:.2f} ({result.status.loc[label, c]})"
                     for c in result.psi.columns if c != "score" and result.status.loc[label, c] in ("watch", "act")]
            flagged = sum(float(decisions.loc[label, d]) for d in ("review", "decline") if d in decisions.columns)
            click.echo(f"    {label:<10} {int(result.sizes.get(label, 0)):>6}  {excess.loc[label, 'score']:>9.3f}  "
                       f"{result.status.loc[label, 'score']:<8} {flagged:>13.1%}  {', '.join(moved[:4]) or '-'}")
        reference_flagged = sum(float(decisions.loc["reference", d]) for d in ("review", "decline")
                                if "reference" in decisions.index and d in decisions.columns)
        click.echo(f"    {'reference':<10} {int(result.sizes.get('reference', 0)):>6}  {'':>9}  {'':<8} "
                   f"{reference_flagged:>13.1%}")
    outcomes = result.cohorts[~result.cohorts["in_training"]] if len(result.cohorts) else result.cohorts
    if len(outcomes):
        click.echo("  monthly cohorts with outcomes, after the training window:")
        for row in outcomes.itertuples():
            click.echo(f"    {row.month}  n {row.n:,}  {target} {row.positives:,}  AUC {row.auc:.3f}  "
                       f"precision@k {row.precision_at_k:.3f}")
    else:
        click.echo("  no outcomes after the training window yet (AUC per cohort waits for labels or verdicts)")
    click.echo(f"  overall: {result.overall}; written: {', '.join(str(p) for p in written)}")
    sys.exit(1 if result.overall == "act" else 0)


@cli.command()
@_store_options
@click.option("--port", type=int, default=8501, show_default=True, help="Port on 127.0.0.1 (0: any free port).")
@click.option("--no-browser", is_flag=True, help="Do not open a browser window.")
@click.option("--idle-minutes", type=click.FloatRange(min=1), default=None,
              help="Log users out after this many minutes without activity  [default: 30].")
def dashboard(store_path: str | None, neo4j_uri: str | None, port: int, no_browser: bool,
              idle_minutes: float | None) -> None:
    """Start the investigator dashboard on 127.0.0.1 (Ctrl+C or SIGTERM stops it)."""
    if store_path and neo4j_uri:
        raise click.UsageError("Give either --store or --neo4j, not both.")
    neo4j_uri = neo4j_uri or (None if store_path else os.environ.get("RINGSCOPE_NEO4J_URI"))
    _start_dashboard(None if neo4j_uri else (store_path or DEFAULT_STORE_PATH), neo4j_uri, port=port,
                     open_browser=not no_browser, idle_minutes=idle_minutes)


#: --columns keys → resolve_records columns
_RESOLVE_FIELDS = {"record": "record_id", "name": "name", "id": "id_number", "dob": "dob", "phone": "phone",
                   "address": "address", "postcode": "postcode", "given_name": "given_name", "surname": "surname"}


def _parse_columns(spec: str) -> dict[str, str]:
    """``name=姓名,id=身份证号`` → {input column: resolve_records field}."""
    mapping = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        key, _, column = part.partition("=")
        if key.strip() not in _RESOLVE_FIELDS or not column.strip():
            raise click.UsageError(f"--columns: {part!r} is not FIELD=COLUMN with FIELD one of "
                                   f"{', '.join(_RESOLVE_FIELDS)}")
        mapping[column.strip()] = _RESOLVE_FIELDS[key.strip()]
    return mapping


@cli.command()
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), default=Path("entities.csv"),
              show_default=True)
@click.option("--columns", default=None, metavar="FIELD=COLUMN,...",
              help="Generic mode: PATH is any person table (CSV/Parquet); map its columns to "
                   "record, name, id, dob, phone, address, postcode, given_name, surname.")
@click.option("--threshold", type=click.FloatRange(0, 1, min_open=True), default=0.9, show_default=True,
              help="Match probability from which two records are one entity.")
@click.option("--rejects", "rejects_path", metavar="FILE", default="ringscope_rejects.csv", show_default=True)
def resolve(path: Path, out_path: Path, columns: str | None, threshold: float, rejects_path: str) -> None:
    """Resolve people and companies into entities.

    PATH is a lender's export folder (writes application_id, person_entity_id,
    company_entity_id) or, with --columns, any table of people (writes
    record_id, entity_id).
    """
    import tempfile

    import pandas as pd

    from ringscope.detectors.identity import IdentityResolution, application_entities, resolve_records

    if columns:
        if path.is_dir():
            raise click.UsageError("With --columns, PATH is one CSV or Parquet file of people.")
        from ringscope.ingest.reader import UnreadableFile, read_table

        mapping = _parse_columns(columns)
        try:
            table = read_table(path).frame
        except UnreadableFile as err:
            raise click.ClickException(str(err)) from err
        missing = [c for c in mapping if c not in table.columns]
        if missing:
            raise click.ClickException(f"{path.name} has no column(s) {missing}; it has {list(table.columns)}")
        frame = table[list(mapping)].rename(columns=mapping)
        if "record_id" not in frame.columns:
            frame.insert(0, "record_id", [str(i) for i in range(1, len(frame) + 1)])
        frame["record_id"] = frame["record_id"].astype(str)
        if frame["record_id"].duplicated().any():
            raise click.ClickException("the record column has duplicate values; record ids must be unique")
        result = resolve_records(frame, threshold=threshold)
        write_csv(result.entities, out_path)
        n_entities = result.entities["entity_id"].nunique()
        click.echo(f"{len(frame):,} records → {n_entities:,} entities ({len(frame) - n_entities:,} duplicates) "
                   f"-> {out_path}")
        return
    if not path.is_dir():
        raise click.UsageError("PATH must be an export folder (or give --columns for a single person table).")
    from ringscope.detectors.portfolio import Portfolio
    from ringscope.graph.embedded import EmbeddedStore
    from ringscope.ingest.pipeline import ingest_folder

    with tempfile.TemporaryDirectory(prefix="ringscope-resolve-") as tmp:
        store = EmbeddedStore(tmp)
        summary = ingest_folder(path, store, rejects_path=rejects_path)
        if summary.exit_code:
            raise click.ClickException(f"nothing could be loaded from {path} (see {summary.rejects_path})")
        portfolio = Portfolio(store)
        IdentityResolution(threshold=threshold).run(portfolio)
        entities = application_entities(portfolio)
    write_csv(entities, out_path)
    people = entities["person_entity_id"].replace("", pd.NA).dropna()
    click.echo(f"{len(entities):,} applications: {people.nunique():,} people, "
               f"{entities['company_entity_id'].replace('', pd.NA).dropna().nunique():,} companies -> {out_path}")
    if summary.rows_rejected:
        click.echo(f"  rejected {summary.rows_rejected:,} rows (reasons in {summary.rejects_path})")


def main() -> None:
    """Console entry point."""
    import logging

    # Stores, rejects, flags and models hold personal data: private to the
    # user whatever the shell's umask (the store also sets modes itself).
    os.umask(0o077)

    # The driver logs each retried transient error (a deadlock between two
    # write batches on a hub node); retries are routine, failures still raise.
    logging.getLogger("neo4j").setLevel(logging.ERROR)
    cli(prog_name="ringscope")


if __name__ == "__main__":
    main()
