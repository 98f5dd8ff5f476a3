"""Finding fraud: ``detect``, ``evaluate`` and ``resolve``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ringscope.app.cli.common import (
    ProgressBar,
    config_option,
    frame_table,
    lock_option,
    opened,
    print_bad_values,
    settings_from,
    store_options,
    writing,
)
from ringscope.graph.files import write_csv
from ringscope.graph.store import GraphStore

__all__ = ["detect", "evaluate", "resolve", "settings", "run_detection", "print_detection"]


def run_detection(store: GraphStore, only: tuple[str, ...], quiet: bool, settings=None, engine=None):
    from ringscope.detectors.runner import run_detectors, save_findings

    bar = ProgressBar(enabled=not quiet)
    try:
        run = run_detectors(
            store,
            list(only) or None,
            progress=lambda name, done, total: bar(f"detect {name}", done, total),
            settings=settings,
            engine=engine,
        )
        save_findings(store, run, progress=bar)
    finally:
        bar.close()
    return run


def print_detection(run) -> None:
    click.echo(frame_table(run.by_detector(), "{:.2f}"))
    for name, error in run.errors.items():
        click.echo(f"  ! {name} failed: {error.splitlines()[0]}", err=True)
    print_bad_values(run.bad_values)
    top = sorted(run.findings, key=lambda f: -f.score)[:5]
    if top:
        click.echo("  top findings:")
        for f in top:
            click.echo(f"    {f.score:.2f}  {f.finding_id}  {f.summary}")


@click.command()
@store_options
@click.option(
    "--export",
    "export_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Also write findings.csv and members.csv to this folder.",
)
@click.option("--only", multiple=True, metavar="NAME", help="Run only this detector (repeatable).")
@lock_option
@click.option("--quiet", is_flag=True, help="No progress bar.")
@config_option
@click.option(
    "--engine",
    type=click.Choice(["embedded", "spark"]),
    default="embedded",
    show_default=True,
    help="Where the whole-portfolio passes run: in this process, or on Apache Spark "
    "(today the shared-identifier rings' hub table and components, the velocity windows and the "
    "cash-flow peer groups).",
)
@click.option(
    "--spark-master",
    metavar="URL",
    default=None,
    help="With --engine spark: local[N], spark://HOST:7077, yarn or k8s://URL (default local[*], on loopback only).",
)
def detect(
    store_path: str | None,
    neo4j_uri: str | None,
    export_dir: Path | None,
    only: tuple[str, ...],
    lock_timeout: float | None,
    quiet: bool,
    config_path: Path | None,
    engine: str,
    spark_master: str | None,
) -> None:
    """Run every detector over the store and save the findings in it (and the settings they ran with)."""
    from ringscope.detectors.registry import DETECTORS
    from ringscope.detectors.runner import export_findings

    unknown = set(only) - set(DETECTORS)
    if unknown:
        raise click.UsageError(f"Unknown detector(s) {', '.join(sorted(unknown))}; known: {', '.join(DETECTORS)}")
    settings = settings_from(config_path)
    chosen = _engine(engine, spark_master)
    try:
        # The lock spans the reads too: the findings describe one state of the store.
        with opened(store_path, neo4j_uri) as store, writing(store, "detect", lock_timeout):
            if store.counts().nodes.get("Application", 0) == 0:
                raise click.ClickException(
                    f"The {store.kind} store at {store.location} holds no applications; "
                    "run `ringscope ingest FOLDER` first."
                )
            _start(chosen)
            run = run_detection(store, only, quiet, settings, engine=chosen)
    finally:
        if chosen is not None:
            chosen.close()
    click.echo(f"{len(run.findings):,} findings saved in the {store.kind} store at {store.location}")
    if chosen is not None:
        click.echo(f"  engine: spark on {chosen.master}")
    click.echo(f"  settings: {settings.source} (digest {settings.digest}); train and flag use them")
    print_detection(run)
    if export_dir is not None:
        findings_path, members_path = export_findings(run.findings, export_dir)
        click.echo(f"  wrote {findings_path} and {members_path}")
    sys.exit(1 if run.errors else 0)


def _engine(name: str, master: str | None):
    """The engine ``--engine`` and ``--spark-master`` ask for (``None``: in process)."""
    if name != "spark":
        if master is not None:
            raise click.UsageError("--spark-master needs --engine spark.")
        return None
    from ringscope.detectors.spark import DEFAULT_MASTER, SparkEngine

    try:
        return SparkEngine(master or DEFAULT_MASTER)
    except ValueError as err:
        raise click.UsageError(f"--spark-master: {err}") from err


def _start(engine) -> None:
    """Start Spark before any detector runs, so a bad cluster fails the command at once."""
    if engine is None:
        return
    from ringscope.detectors.spark import SparkStartError

    try:
        engine.start()
    except SparkStartError as err:
        raise click.ClickException(str(err)) from err


@click.command()
@store_options
@click.option(
    "--truth",
    "truth_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    required=True,
    help="A generator's truth/ folder (applications.csv, guarantee_circles.csv).",
)
@click.option(
    "--min-score",
    type=click.FloatRange(0, 1),
    default=0.5,
    show_default=True,
    help="Findings below this score are not counted as flagged.",
)
def evaluate(store_path: str | None, neo4j_uri: str | None, truth_dir: Path, min_score: float) -> None:
    """Compare the saved findings with a labeled portfolio's truth."""
    from ringscope.detectors.evaluate import evaluate_findings
    from ringscope.detectors.runner import load_findings

    with opened(store_path, neo4j_uri) as store:
        findings = load_findings(store)
    if not findings:
        raise click.ClickException("No findings in the store; run `ringscope detect` first.")
    try:
        result = evaluate_findings(findings, truth_dir, min_score=min_score)
    except (FileNotFoundError, KeyError) as err:
        raise click.ClickException(str(err)) from err
    click.echo(frame_table(result.summary))
    click.echo("\nrecall by planted typology")
    click.echo(frame_table(result.by_typology))
    click.echo("\nfalse positives among hard negatives")
    click.echo(frame_table(result.by_hard_negative))
    click.echo("\nper detector (precision = share of flagged applications that are fraud)")
    click.echo(frame_table(result.by_detector))


_RESOLVE_FIELDS = {
    "record": "record_id",
    "name": "name",
    "id": "id_number",
    "dob": "dob",
    "phone": "phone",
    "address": "address",
    "postcode": "postcode",
    "given_name": "given_name",
    "surname": "surname",
}


def _parse_columns(spec: str) -> dict[str, str]:
    """``name=姓名,id=身份证号`` → {input column: resolve_records field}."""
    mapping = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        key, _, column = part.partition("=")
        if key.strip() not in _RESOLVE_FIELDS or not column.strip():
            raise click.UsageError(
                f"--columns: {part!r} is not FIELD=COLUMN with FIELD one of {', '.join(_RESOLVE_FIELDS)}"
            )
        mapping[column.strip()] = _RESOLVE_FIELDS[key.strip()]
    return mapping


@click.command()
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("entities.csv"),
    show_default=True,
)
@click.option(
    "--columns",
    default=None,
    metavar="FIELD=COLUMN,...",
    help="Generic mode: PATH is any person table (CSV/Parquet); map its columns to "
    "record, name, id, dob, phone, address, postcode, given_name, surname.",
)
@click.option(
    "--threshold",
    type=click.FloatRange(0, 1, min_open=True),
    default=0.9,
    show_default=True,
    help="Match probability from which two records are one entity.",
)
@click.option("--rejects", "rejects_path", metavar="FILE", default="ringscope_rejects.csv", show_default=True)
def resolve(path: Path, out_path: Path, columns: str | None, threshold: float, rejects_path: str) -> None:
    """Resolve people and companies into entities.

    PATH is a lender's export folder (writes application_id, person_entity_id,
    company_entity_id) or, with --columns, any table of people (writes
    record_id, entity_id).
    """
    import tempfile

    import pandas as pd

    from ringscope.detectors.identity import (
        IdentityResolution,
        application_entities,
        resolve_records,
    )

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
        click.echo(
            f"{len(frame):,} records → {n_entities:,} entities ({len(frame) - n_entities:,} duplicates) -> {out_path}"
        )
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
        portfolio.use_entities(IdentityResolution(threshold=threshold).resolve(portfolio))
        entities = application_entities(portfolio)
    write_csv(entities, out_path)
    people = entities["person_entity_id"].replace("", pd.NA).dropna()
    click.echo(
        f"{len(entities):,} applications: {people.nunique():,} people, "
        f"{entities['company_entity_id'].replace('', pd.NA).dropna().nunique():,} companies -> {out_path}"
    )
    if summary.rows_rejected:
        click.echo(f"  rejected {summary.rows_rejected:,} rows (reasons in {summary.rejects_path})")


@click.command()
@store_options
@config_option
def settings(store_path: str | None, neo4j_uri: str | None, config_path: Path | None) -> None:
    """Print every detector parameter and training setting as a settings file (TOML).

    With --config: that file's settings, defaults filled in. Otherwise the
    settings the store's last `detect` ran with (the defaults if it saved none).
    Save the output, edit it, and pass it to `ringscope detect --config FILE`."""
    from ringscope.detectors.settings import stored_settings

    if config_path is not None:
        chosen = settings_from(config_path)
        where = f"from {config_path}"
    else:
        with opened(store_path, neo4j_uri) as store:
            saved = stored_settings(store)
        chosen = saved if saved is not None else settings_from(None)
        where = (
            f"the last detect of the {store.kind} store at {store.location}"
            if saved is not None
            else "the defaults (the store has no saved settings yet)"
        )
    click.echo(f"# {where}")
    click.echo(chosen.to_toml(), nl=False)
