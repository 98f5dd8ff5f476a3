"""Getting data in: ``ingest``, ``stats``, ``generate`` and the ``demo``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ringscope.app.cli.common import (
    ProgressBar,
    counts_table,
    duration,
    frame_table,
    limit_options,
    limits_from,
    lock_option,
    opened,
    print_reasons,
    store_options,
    writing,
)
from ringscope.app.cli.detection import print_detection, run_detection
from ringscope.app.cli.models import audit_model_event, print_training
from ringscope.app.cli.serve import start_dashboard
from ringscope.graph.files import atomic_open, private_dir, write_csv

if TYPE_CHECKING:
    from ringscope.ingest.pipeline import IngestSummary

__all__ = ["ingest", "stats", "communities", "generate", "demo", "split_tonight"]


@click.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@store_options
@click.option(
    "--rejects",
    "rejects_path",
    metavar="FILE",
    default="ringscope_rejects.csv",
    show_default=True,
    help="Where rows that break the data contract are written, with file, line and reason.",
)
@click.option(
    "--update",
    is_flag=True,
    help="Rows that differ from stored ones correct them (each change goes to the audit log) "
    "instead of being rejected.",
)
@click.option(
    "--bulk",
    is_flag=True,
    help="First load into an EMPTY Neo4j with Neo4j's offline importer (neo4j-admin database import): "
    "the same normalised tables written as CSV, the server stopped, imported, started again and the "
    "constraints created. The importer writes the database's files, so the server must be one "
    "tools/neo4j_server.py runs on this machine. Refused when the database holds data (later "
    "batches: without --bulk).",
)
@limit_options
@lock_option
@click.option("--quiet", is_flag=True, help="No progress bar.")
def ingest(
    folder: Path,
    store_path: str | None,
    neo4j_uri: str | None,
    rejects_path: str,
    update: bool,
    bulk: bool,
    applied_from,
    applied_to,
    max_amount: float | None,
    lock_timeout: float | None,
    quiet: bool,
) -> None:
    """Load a lender's export FOLDER (applications, guarantees, contacts, company_roles)."""
    from ringscope.graph.neo4j_bulk import BulkFailed, BulkRefused
    from ringscope.ingest.pipeline import ingest_folder

    if bulk and not neo4j_uri:
        raise click.UsageError("--bulk loads a Neo4j database: give --neo4j URI.")
    if bulk and update:
        raise click.UsageError("--update corrects stored rows and --bulk loads an empty database: choose one.")
    limits = limits_from(applied_from, applied_to, max_amount)
    bar = ProgressBar(enabled=not quiet)
    with opened(store_path, neo4j_uri) as store, writing(store, "ingest", lock_timeout):
        try:
            summary = ingest_folder(
                folder, store, rejects_path=rejects_path, progress=bar, limits=limits, update=update, bulk=bulk
            )
        except (BulkRefused, BulkFailed) as err:
            raise click.ClickException(str(err)) from err
        finally:
            bar.close()
    click.echo(f"ringscope ingest {folder} → {summary.store} ({summary.seconds:.1f} s)")
    click.echo("\n".join(rows_table(summary)))
    if summary.rejects_path:
        click.echo(f"  rejected rows with reasons: {summary.rejects_path}")
        print_reasons(summary.reject_reasons)
    if summary.corrections:
        click.echo(f"  corrected {summary.corrections:,} stored rows (before/after in the audit log)")
    if summary.bulk is not None:
        b = summary.bulk
        click.echo(
            f"  bulk import: {b.nodes:,} nodes + {b.relationships:,} relationships in {b.import_seconds:.1f} s "
            f"({b.import_rate:,.0f} writes/s"
            + (f"; the importer's own {b.importer_seconds:.1f} s" if b.importer_seconds else "")
            + f"); files {b.files_seconds:.1f} s, stop {b.stop_seconds:.1f} s, "
            f"start {b.start_seconds:.1f} s, constraints {b.schema_seconds:.1f} s"
        )
        if b.dropped_relationships:
            click.echo(
                f"  {b.dropped_relationships:,} relationships name a node the batch lacks: not loaded (as MERGE)"
            )
    if summary.counts is not None:
        click.echo(counts_table(summary.counts))
    if summary.exit_code:
        click.echo("Nothing was loaded." if not summary.unreadable else "Some files could not be read.", err=True)
    sys.exit(summary.exit_code)


@click.command()
@store_options
def stats(store_path: str | None, neo4j_uri: str | None) -> None:
    """Node and relationship counts by label and type."""
    with opened(store_path, neo4j_uri) as store:
        counts = store.counts()
        click.echo(f"ringscope stats: {store.kind} store at {store.location}")
        click.echo(counts_table(counts))


@click.command()
@store_options
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default="communities.csv",
    show_default=True,
    help="CSV written: label, key, community.",
)
@click.option(
    "--min-applications",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="Identifiers used by fewer applications are left out of the graph.",
)
def communities(store_path: str | None, neo4j_uri: str | None, out_path: Path, min_applications: int) -> None:
    """Louvain communities of applications and the identifiers they share,
    computed inside Neo4j by GDS (Neo4j stores only): for analysts."""
    with opened(store_path, neo4j_uri) as store:
        if not hasattr(store, "communities"):
            raise click.UsageError("Communities are computed inside Neo4j: give --neo4j URI.")
        frame = store.communities(min_applications=min_applications)
        write_csv(frame, out_path)
        sizes = frame.groupby("community").size()
        click.echo(
            f"ringscope communities: {len(frame):,} nodes in {len(sizes):,} communities "
            f"(largest {int(sizes.max()) if len(sizes) else 0:,}) -> {out_path}"
        )


@click.command()
@click.option("--applications", "n_applications", type=int, default=20_000, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option(
    "--encoding", type=click.Choice(["utf-8", "utf-8-sig", "gbk", "gb18030"]), default="utf-8", show_default=True
)
@click.option("--format", "file_format", type=click.Choice(["csv", "parquet"]), default="csv", show_default=True)
@click.option(
    "--scenario",
    type=click.Choice(["random"]),
    default=None,
    help="Draw the generator's knobs (ring sizes and speed, reuse, mess, honest hubs, labelled share, "
    "fraud prevalence, new-batch share, rotation) at random from --seed; writes history/, new/ "
    "and scenario.json.",
)
@click.option(
    "--chunk-rows",
    type=click.IntRange(min=0),
    default=None,
    help="Build and write the book one time window of about this many applications at a time, so memory "
    "follows the window, not the book (a different draw than the whole book of the same seed); 0 builds it "
    "whole. Default: whole up to 2,000,000 applications, windows of 500,000 above.",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def generate(
    n_applications: int,
    seed: int,
    out_dir: Path,
    encoding: str,
    file_format: str,
    scenario: str | None,
    chunk_rows: int | None,
    quiet: bool,
) -> None:
    """Write a labeled synthetic lending portfolio (the four contract tables + truth/)."""
    from ringscope.ingest.synthetic import (
        GeneratorConfig,
        generate_portfolio,
        generate_scenario,
        random_scenario,
    )
    from ringscope.ingest.synthetic.chunked import default_chunk_rows

    chunk_rows = default_chunk_rows(n_applications) if chunk_rows is None else (chunk_rows or None)

    try:
        if scenario is None:
            config = GeneratorConfig(applications=n_applications, seed=seed, encoding=encoding, file_format=file_format)
        else:
            drawn = random_scenario(seed, n_applications, encoding=encoding, file_format=file_format)
    except (TypeError, ValueError) as err:
        raise click.BadParameter(str(err)) from err
    bar = ProgressBar(enabled=not quiet)
    try:
        if scenario is None:
            summary = generate_portfolio(config, out_dir, progress=bar, chunk_rows=chunk_rows)
        else:
            summary = generate_scenario(drawn, out_dir, progress=bar, chunk_rows=chunk_rows)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--chunk-rows") from err
    finally:
        bar.close()
    _print_generation(summary, out_dir)
    if scenario is not None:
        _print_scenario(drawn, summary)


def _print_scenario(scenario, summary) -> None:
    k = scenario.knobs
    span = k["ring_span_seconds"]
    click.echo(
        f"  scenario {scenario.kind} (seed {scenario.seed}): fraud prevalence {k['fraud_prevalence']:.2%}, "
        f"ring sizes {k['ring_sizes'][0]}–{k['ring_sizes'][1]}, ring spans {duration(span[0])}–"
        f"{duration(span[1])}, reuse {k['reuse_share']:.0%}, rotation {k['rotation']:.0%}, "
        f"mess {k['mess_rate']:.1%}, labelled {k['labelled_share']:.0%} of history, "
        f"new batch {k['new_batch_share']:.1%}"
    )
    click.echo(
        f"  ingest {Path(summary.out_dir) / 'history'}, then flag {Path(summary.out_dir) / 'new'}; "
        f"every knob in {summary.paths['scenario']}"
    )


def _print_generation(summary, out_dir: Path) -> None:
    windows = f", {len(summary.chunks)} time windows" if summary.chunks else ""
    click.echo(f"ringscope generate → {out_dir} ({summary.seconds:.1f} s{windows})")
    for table, n in summary.row_counts.items():
        click.echo(f"  {table:<28}{n:>10,} rows")
    planted = {k: v for k, v in summary.planted.items() if v}
    if planted:
        click.echo("  planted: " + ", ".join(f"{k} {v:,}" for k, v in planted.items()))


@click.command()
@click.option("--applications", "n_applications", type=int, default=20_000, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("demo-data"),
    show_default=True,
    help="Where the generated portfolio is written.",
)
@store_options
@lock_option
@click.option("--no-ui", is_flag=True, help="Do not start the dashboard.")
def demo(
    n_applications: int,
    seed: int,
    data_dir: Path,
    store_path: str | None,
    neo4j_uri: str | None,
    lock_timeout: float | None,
    no_ui: bool,
) -> None:
    """Generate a portfolio, ingest it, and summarise what ringscope sees."""
    from ringscope.ingest.pipeline import ingest_folder
    from ringscope.ingest.synthetic import GeneratorConfig, generate_portfolio

    bar = ProgressBar(enabled=True)
    click.echo(f"1/5 generating {n_applications:,} applications (seed {seed}) into {data_dir}")
    try:
        gen = generate_portfolio(GeneratorConfig(applications=n_applications, seed=seed), data_dir, progress=bar)
    finally:
        bar.close()
    _print_generation(gen, data_dir)
    with opened(store_path, neo4j_uri) as store, writing(store, "demo", lock_timeout):
        base_dir, tonight_dir = split_tonight(data_dir)
        click.echo(
            f"2/5 ingesting {base_dir} into the {store.kind} store at {store.location} (replacing its "
            f"contents); the latest applications are held back in {tonight_dir} as tonight's batch"
        )
        store.clear()
        try:
            summary = ingest_folder(base_dir, store, rejects_path=data_dir / "rejects.csv", progress=bar)
        finally:
            bar.close()
        click.echo(
            f"  loaded {summary.rows_loaded:,} rows, rejected {summary.rows_rejected:,} "
            f"(reasons in {summary.rejects_path}) in {summary.seconds:.1f} s"
        )
        print_reasons(summary.reject_reasons)
        if summary.counts is not None:
            click.echo(counts_table(summary.counts))
        if summary.exit_code:
            sys.exit(summary.exit_code)
        click.echo("3/5 running the detectors")
        run = run_detection(store, (), quiet=False)
        print_detection(run)
        truth = data_dir / "truth"
        if truth.exists():
            from ringscope.detectors.evaluate import evaluate_findings

            result = evaluate_findings(run.findings, truth)
            click.echo("  against the generator's truth:")
            click.echo(frame_table(result.summary))
        click.echo("4/5 training the fraud model and scoring every application")
        from ringscope.detectors.risk.training import train as train_model

        try:
            # the demo replaced the store's data: its model is the champion whatever an earlier demo left
            trained = train_model(store, progress=bar, promote="always")
        except ValueError as err:
            raise click.ClickException(str(err)) from err
        finally:
            bar.close()
        if trained.event is not None:
            audit_model_event(store, "fraud", trained.event)
        print_training(trained)
        click.echo(f"5/5 flagging tonight's batch ({tonight_dir}) incrementally")
        from ringscope.app.jobs import flag_applications

        try:
            flagged, result = flag_applications(
                store, tonight_dir, trained.model, data_dir / "tonight-rejects.csv", progress=bar
            )
        finally:
            bar.close()
        flags_path = data_dir / "flags.csv"
        write_csv(result.flags, flags_path)
        counts = result.flags["decision"].value_counts()
        click.echo(
            f"  scored {len(result.flags):,} new applications -> {flags_path}: "
            + ", ".join(f"{d} {counts.get(d, 0):,}" for d in ("pass", "review", "decline"))
        )
        for f in sorted(result.new_findings, key=lambda f: -f.score)[:3]:
            click.echo(f"    {f.score:.2f}  {f.finding_id}  {f.summary}")
        location = store.location
        kind = store.kind
    if no_ui:
        click.echo(
            f"Done. Explore with `ringscope dashboard --{'store' if kind == 'embedded' else 'neo4j'} {location}`."
        )
        return
    start_dashboard(store_path if kind == "embedded" else None, neo4j_uri if kind == "neo4j" else None)


def split_tonight(data_dir: Path, share: float = 0.02) -> tuple[Path, Path]:
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


def rows_table(summary: IngestSummary) -> list[str]:
    """The ingest's per-table lines (read, loaded, rejected), each number
    column as wide as its largest figure needs: a book of ten million
    contacts has 11-character counts, which a fixed width ran together.

    >>> from ringscope.ingest.pipeline import IngestSummary, TableReport
    >>> big = TableReport("contacts", "c.parquet", "parquet", 19_082_657, 19_053_943, 28_714, lines_read=19_082_657)
    >>> print("\\n".join(rows_table(IngestSummary("in", "store", tables=[big]))))
      table          encoding          read      loaded  rejected
      contacts       parquet     19,082,657  19,053,943    28,714
      total                      19,082,657  19,053,943    28,714
    """
    total = ("total", "", sum(t.rows_read for t in summary.tables), summary.rows_loaded, summary.rows_rejected)
    figures = [(t.rows_read, t.rows_loaded, t.rows_rejected) for t in summary.tables] + [total[2:]]
    # at least as wide as before (10), and one space more than the widest figure of the column
    widths = [max(10, max((len(f"{row[i]:,}") for row in figures), default=0) + 2) for i in range(3)]
    lines = [
        f"  {'table':<15}{'encoding':<11}"
        + "".join(f"{h:>{w}}" for h, w in zip(("read", "loaded", "rejected"), widths))
    ]
    for t in summary.tables:
        numbers = (t.rows_read, t.rows_loaded, t.rows_rejected)
        lines.append(f"  {t.table:<15}{t.encoding or '-':<11}" + "".join(f"{n:>{w},}" for n, w in zip(numbers, widths)))
        if t.lines_read != t.rows_read:
            lines.append(
                f"    {t.lines_read:,} physical lines: {t.blank_lines:,} blank, "
                f"{t.lines_read - t.rows_read - t.blank_lines:,} more inside quoted multi-line values"
            )
        if t.error:
            lines.append(f"    error: {t.error}")
    lines.append(f"  {'total':<26}" + "".join(f"{n:>{w},}" for n, w in zip(total[2:], widths)))
    return lines
