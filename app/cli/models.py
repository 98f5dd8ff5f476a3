"""The risk model: ``train``, ``flag``, ``promote``, ``rollback`` and ``monitor``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ringscope.app.cli.common import (
    ProgressBar,
    config_option,
    frame_table,
    limit_options,
    limits_from,
    lock_option,
    opened,
    print_bad_values,
    print_reasons,
    settings_from,
    store_options,
    writing,
)
from ringscope.detectors.risk.findings_only import KIND as FINDINGS_ONLY
from ringscope.graph.files import write_csv

__all__ = ["train", "flag", "promote", "rollback", "monitor", "print_training", "audit_model_event"]


def print_training(result) -> None:
    report = result.report
    click.echo(f"{report['target']} model {report['version']} ({report['chosen']}) saved in {result.folder}")
    click.echo(f"  target {report['target']}: {_describe_outcomes(report)}")
    if "findings_only" in report:
        _print_findings_only(result)
        return
    sample = report.get("honest_sample")
    if sample and sample["learned_from"] < sample["negatives"]:
        click.echo(
            f"  every fit learns from all positives and {sample.get('per_positive', 'any')} other outcomes per "
            f"positive (at least {sample.get('floor', 0):,}, at most {sample.get('cap', sample['limit']):,}), drawn "
            f"at random and weighted up; the final model: {sample['learned_from']:,} of "
            f"{sample['negatives']:,}, each weighing {sample['weight']:.2f}"
        )
    valid = report["validation"]
    if valid.get("method", "out of time") == "out of time":
        click.echo(
            f"  out-of-time validation on the latest {valid['n']:,} "
            f"({valid['from'][:10]} to {valid['to'][:10]}), {valid['bad']:,} {report['target']} among them"
        )
    else:  # too few positives for a time cut: say so, the figures are not out of time
        click.echo(
            f"  {valid['method']} validation over all {valid['n']:,} labelled applications "
            f"({valid['bad']:,} {report['target']}), not out of time: {valid['why']}"
        )
    rows = []
    for kind, m in report["models"].items():
        for variant in ("all features", "without graph"):
            rows.append(
                {
                    "model": kind + (" *" if kind == report["chosen"] else ""),
                    "features": variant,
                    "AUC": m[variant]["auc"],
                    "KS": m[variant]["ks"],
                    f"precision@{report['review_capacity_k']}": m[variant]["precision_at_k"],
                }
            )
    import pandas as pd

    click.echo(frame_table(pd.DataFrame(rows)))
    chosen = report["models"][report["chosen"]]
    click.echo(
        f"  graph uplift ({report['chosen']}): AUC {chosen['uplift_auc']:+.3f}, "
        f"precision@k {chosen['uplift_precision_at_k']:+.3f}"
    )
    click.echo(f"  plots: {result.folder / 'roc.png'}, {result.folder / 'scores.png'}")
    comparison = getattr(result, "comparison", None)  # None for a first model
    if comparison is not None:
        click.echo(
            f"  against the champion {comparison['champion_version']} on the same out-of-time applications"
            + (
                " (the champion learned from some of them: its figures are in-sample)"
                if comparison.get("champion_in_sample")
                else ""
            )
            + ":"
        )
        click.echo(f"    {comparison['verdict']}")
    if getattr(result, "promoted", True):
        event = getattr(result, "event", None)
        click.echo(f"  {report['version']} is the champion ({event.reason if event else 'promoted'})")
        counts = result.scored["decision"].value_counts()
        click.echo(
            "  decisions on the portfolio: "
            + ", ".join(f"{d} {counts.get(d, 0):,}" for d in ("pass", "review", "decline"))
        )
    else:
        target = "" if report["target"] == "fraud" else f" --target {report['target']}"
        click.echo(
            f"  saved as the challenger; the champion still scores. Promote it with "
            f"`ringscope promote {report['version']}{target}`, compare nightly with `ringscope flag --shadow`."
        )
    print_bad_values(result.bad_values)


def _print_findings_only(result) -> None:
    """What a findings-only model is, and what it will and won't do."""
    report = result.report
    click.echo(f"  findings-only: {report['findings_only']['why']}")
    click.echo(
        "  until then the score is each application's best label-free finding score: from "
        f"{report['config']['review_threshold']} to review, nothing declined (no outcome calibrated a decline; "
        "`ringscope flag --decline` sets one). The first model trained on enough outcomes replaces it."
    )
    event = getattr(result, "event", None)
    click.echo(f"  {report['version']} is the champion ({event.reason if event else 'promoted'})")
    counts = result.scored["decision"].value_counts()
    click.echo(
        "  decisions on the portfolio: " + ", ".join(f"{d} {counts.get(d, 0):,}" for d in ("pass", "review", "decline"))
    )
    print_bad_values(result.bad_values)


def _describe_outcomes(report: dict) -> str:
    """One line: how many positives (and from where), negatives, left out."""
    pos = report["positives"]
    sources = [f"{pos['from labels']:,} '{'/'.join(report['positive_labels'])}' labels"]
    if pos["from case verdicts"]:
        sources.append(f"{pos['from case verdicts']:,} confirmed-fraud case verdicts")
    negatives = ", ".join(f"{n:,} {k}" for k, n in report["negatives"].items())
    line = (
        f"{pos['total']:,} positives ({', '.join(sources)}) among {report['labelled']:,} labelled "
        f"applications; negatives: {negatives}"
    )
    if report.get("left_out"):
        line += "; left out: " + ", ".join(f"{n:,} {k}" for k, n in report["left_out"].items())
    return line


def _target_option(action: str):
    from ringscope.detectors.risk.scoring import TARGETS

    return click.option(
        "--target",
        type=click.Choice(list(TARGETS)),
        default=None,
        help=f"What the model {action}: fraud (default) or credit default, each its own model.",
    )


def _bad_alias(bad_labels: str | None, target: str | None) -> str:
    """The target of ``train``: ``--target``, or the deprecated ``--bad`` naming exactly one target's labels."""
    from ringscope.detectors.risk.scoring import TARGETS

    if bad_labels is None:
        return target or "fraud"
    labels = tuple(sorted({b.strip() for b in bad_labels.split(",") if b.strip()}))
    named = [name for name, wanted in TARGETS.items() if tuple(sorted(wanted)) == labels]
    if not named:
        raise click.UsageError(
            f"--bad {bad_labels} would mix outcomes into one score; --bad is deprecated: train "
            "each target on its own with --target fraud (the default) and --target default."
        )
    if target is not None and target != named[0]:
        raise click.UsageError(f"--bad {bad_labels} and --target {target} disagree; give --target only.")
    click.echo(f"note: --bad is deprecated; use --target {named[0]}", err=True)
    return named[0]


@click.command()
@store_options
@_target_option("learns to predict")
@click.option(
    "--bad",
    "bad_labels",
    default=None,
    hidden=True,
    help="Deprecated: --bad fraud is --target fraud, --bad default is --target default.",
)
@click.option(
    "--review-capacity",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=None,
    help="Share of applications the team can review (precision@k is measured there) [default: 0.05, or --config's].",
)
@click.option(
    "--review",
    "review_threshold",
    type=click.FloatRange(0, 1),
    default=None,
    help="Default score from which an application goes to review [default: 0.3, or --config's].",
)
@click.option(
    "--decline",
    "decline_threshold",
    type=click.FloatRange(0, 1),
    default=None,
    help="Default score from which an application is declined [default: 0.7, or --config's].",
)
@click.option(
    "--promote",
    "promote_policy",
    type=click.Choice(["never", "auto", "always"]),
    default="never",
    show_default=True,
    help="When a champion exists: never (save a challenger for `ringscope promote`), auto (promote when it "
    "beats the champion out of time on AUC and precision@k without declining more honest "
    "applications), always.",
)
@click.option(
    "--too-few",
    "too_few",
    type=click.Choice(["findings", "refuse"]),
    default="findings",
    show_default=True,
    help="When the labelled history holds too few fraud outcomes to learn from (fewer than 10): save a "
    "findings-only model (the best finding score; review, never decline) while no learned model is "
    "champion, or refuse.",
)
@lock_option
@click.option("--quiet", is_flag=True, help="No progress bar.")
@config_option
def train(
    store_path: str | None,
    neo4j_uri: str | None,
    target: str | None,
    bad_labels: str | None,
    review_capacity: float | None,
    review_threshold: float | None,
    decline_threshold: float | None,
    promote_policy: str,
    too_few: str,
    lock_timeout: float | None,
    quiet: bool,
    config_path: Path | None,
) -> None:
    """Fit the fraud model (or, with --target default, the credit-default model) on the store's
    outcomes and case verdicts. The first model becomes the champion and scores every application;
    later ones are challengers, compared with the champion (see --promote)."""
    from ringscope.detectors.risk.training import keep_malloc_heap, reuse_freed_memory
    from ringscope.detectors.risk.training import train as train_model
    from ringscope.detectors.settings import store_settings

    # a one-job process: both allocators keep freed memory for the next large column
    reuse_freed_memory()
    keep_malloc_heap()
    settings = settings_from(config_path) if config_path is not None else None
    bar = ProgressBar(enabled=not quiet)
    with opened(store_path, neo4j_uri) as store, writing(store, "train", lock_timeout):
        detected_with = store_settings(store)
        if settings is None:  # the [training] the last detect was given, if any
            settings = detected_with
        elif settings.detectors and not settings.same_detectors(detected_with):
            click.echo(
                f"warning: the [detectors] of {config_path} differ from the settings the store's findings "
                f"were made with; the model learns from the stored findings. Run `ringscope detect "
                f"--config {config_path}` first to use them.",
                err=True,
            )
        try:
            config = settings.training_config(
                _bad_alias(bad_labels, target),
                review_capacity=review_capacity,
                review_threshold=review_threshold,
                decline_threshold=decline_threshold,
            )
        except ValueError as err:
            raise click.UsageError(str(err)) from err
        try:
            result = train_model(store, config, progress=bar, promote=promote_policy, too_few=too_few)
        except ValueError as err:
            raise click.ClickException(str(err)) from err
        finally:
            bar.close()
        if result.event is not None:
            audit_model_event(store, config.target, result.event)
    print_training(result)


@click.command()
@click.argument("folder", type=click.Path(file_okay=False, exists=True, path_type=Path))
@store_options
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("flags.csv"),
    show_default=True,
    help="Where the scored applications are written.",
)
@click.option(
    "--rejects",
    "rejects_path",
    metavar="FILE",
    default="ringscope_rejects.csv",
    show_default=True,
    help="Rows that break the data contract, with file, line and reason.",
)
@click.option(
    "--review",
    "review_threshold",
    type=click.FloatRange(0, 1),
    default=None,
    help="Score from which an application goes to review (default: the model's).",
)
@click.option(
    "--decline",
    "decline_threshold",
    type=click.FloatRange(0, 1),
    default=None,
    help="Score from which an application is declined (default: the model's).",
)
@_target_option("scores")
@click.option(
    "--shadow",
    is_flag=True,
    help="Also score with the challenger (`ringscope train` saves one) and record its decisions beside "
    "the champion's, without acting on them.",
)
@limit_options
@lock_option
@click.option("--quiet", is_flag=True, help="No progress bar.")
def flag(
    folder: Path,
    store_path: str | None,
    neo4j_uri: str | None,
    out_path: Path,
    rejects_path: str,
    review_threshold: float | None,
    decline_threshold: float | None,
    target: str | None,
    shadow: bool,
    applied_from,
    applied_to,
    max_amount: float | None,
    lock_timeout: float | None,
    quiet: bool,
) -> None:
    """Score the new applications in FOLDER against the existing graph (incremental), with the
    fraud model (or, with --target default, the credit-default model)."""
    import warnings

    import pandas as pd

    from ringscope.app.jobs import flag_applications
    from ringscope.detectors.risk.flag_state import FlagStateWarning
    from ringscope.detectors.risk.scoring import load_model, target_folder
    from ringscope.detectors.settings import SettingsWarning

    target = target or "fraud"
    limits = limits_from(applied_from, applied_to, max_amount)
    bar = ProgressBar(enabled=not quiet)
    with opened(store_path, neo4j_uri) as store:
        try:
            model = load_model(target_folder(store, target))
        except FileNotFoundError as err:
            hint = "" if target == "fraud" else f" --target {target}"
            raise click.ClickException(
                f"No trained {target} model in {target_folder(store, target)}; run `ringscope train{hint}` first."
            ) from err
        if model.target != target:  # a model saved before targets: fraud and default mixed
            raise click.ClickException(
                f"The saved model {model.version} predicts {model.target!r}, not {target!r} "
                f"(trained before separate targets); run `ringscope train"
                f"{'' if target == 'fraud' else ' --target ' + target}` to replace it."
            )
        shadow_model = None
        if shadow:
            from ringscope.detectors.risk.model_store import challenger

            version = challenger(target_folder(store, target))
            if version is None:
                raise click.ClickException(
                    f"No challenger to shadow in {target_folder(store, target)}: "
                    f"`ringscope train` saves one once a champion exists."
                )
            shadow_model = load_model(target_folder(store, target), version)
        review = model.config.review_threshold if review_threshold is None else review_threshold
        decline = model.default_decline if decline_threshold is None else decline_threshold
        if review >= decline:
            raise click.UsageError(f"--review ({review}) must be below --decline ({decline}).")
        try:
            with writing(store, "flag", lock_timeout), warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", FlagStateWarning)
                warnings.simplefilter("always", SettingsWarning)
                summary, result = flag_applications(
                    store,
                    folder,
                    model,
                    rejects_path,
                    review,
                    decline,
                    progress=bar,
                    limits=limits,
                    shadow=shadow_model,
                )
        finally:
            bar.close()
    for warning in caught:
        if issubclass(warning.category, (FlagStateWarning, SettingsWarning)):  # a bad cache costs time, never the flags
            click.echo(f"warning: {warning.message}", err=True)
        else:
            warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)
    write_csv(result.flags, out_path)
    click.echo(f"scored {len(result.flags):,} applications with the {target} model {model.version} -> {out_path}")
    if model.kind == FINDINGS_ONLY and decline_threshold is None:
        click.echo(
            "  a findings-only model (too few fraud outcomes to learn from): the best finding score, "
            "nothing declined unless --decline is given"
        )
    if result.state is not None:
        first = sum(result.seconds.get(k, 0.0) for k in ("open index", "local detection")) + summary.seconds
        click.echo(
            f"  {result.state.describe()}; first score {first:.1f} s after the start of the ingest"
            + (
                f"; state saved for the next run in {result.seconds['save state']:.1f} s"
                if "save state" in result.seconds
                else ""
            )
            + (
                f" (of which {result.seconds['record ingest']:.1f} s checking what ingesting the folder again "
                "reports, so the next run of it skips its ingest)"
                if "record ingest" in result.seconds
                else ""
            )
        )
    if summary.rows_rejected:
        click.echo(f"  rejected {summary.rows_rejected:,} rows (reasons in {summary.rejects_path})")
        print_reasons(summary.reject_reasons)
    counts = result.flags["decision"].value_counts()
    click.echo("  decisions: " + ", ".join(f"{d} {counts.get(d, 0):,}" for d in ("pass", "review", "decline")))
    if result.shadow is not None and shadow_model is not None:
        both = result.flags.merge(result.shadow, on="application_id", suffixes=("", "_shadow"))
        shadow_counts = both["decision_shadow"].value_counts()
        agree = float((both["decision"] == both["decision_shadow"]).mean()) if len(both) else 1.0
        click.echo(
            f"  shadow: the challenger {shadow_model.version} would decide "
            + ", ".join(f"{d} {shadow_counts.get(d, 0):,}" for d in ("pass", "review", "decline"))
            + f" (same decision on {agree:.1%}; recorded in the shadow_* properties, not acted on)"
        )
    accused = int((result.flags["ring_id"].fillna("") != "").sum())
    click.echo(
        f"  ring_id on {accused:,} applications (the finding scoring >= {review} that explains most "
        "of the score; weaker groupings are only evidence in the reasons)"
    )
    if result.new_findings:
        per = pd.Series([f.detector for f in result.new_findings]).value_counts()
        click.echo(
            f"  {len(result.new_findings)} findings hold new applications ("
            + ", ".join(f"{name} {n}" for name, n in per.items())
            + "):"
        )
        for f in sorted(result.new_findings, key=lambda f: (-f.score, f.finding_id))[:5]:
            click.echo(f"    {f.score:.2f}  {f.finding_id}  {f.summary}")
    for name, error in result.errors.items():
        click.echo(
            f"  detector {name} failed around this batch (its saved findings were used): {error.splitlines()[0]}",
            err=True,
        )
    print_bad_values(result.bad_values)
    sys.exit(summary.exit_code)


def audit_model_event(store, target: str, event) -> None:
    """A change of champion is an audited event in the store, like an investigator's action."""
    from ringscope.app.dashboard.cases import audit

    audit(
        store,
        event.user,
        f"model {event.action}",
        f"model:{target}",
        before=event.before,
        after={"version": event.after, "reason": event.reason},
    )


def _change_champion(store, target: str, change, progress) -> None:
    """Promote or roll back, audit it, and rescore the portfolio with the new champion."""
    from ringscope.detectors.risk.model_store import load_model, target_folder
    from ringscope.detectors.risk.training import score_portfolio

    event = change()
    audit_model_event(store, target, event)
    model = load_model(target_folder(store, target))
    try:
        scored = score_portfolio(store, model, progress=progress)
    finally:
        progress.close()
    counts = scored["decision"].value_counts()
    click.echo(
        f"{target} champion: {event.before or '(none)'} -> {event.after} ({event.action} by {event.user}); "
        f"rescored {len(scored):,} applications: "
        + ", ".join(f"{d} {counts.get(d, 0):,}" for d in ("pass", "review", "decline"))
    )


@click.command()
@click.argument("version", required=False)
@store_options
@_target_option("to promote is for")
@click.option("--reason", default="", help="Why (kept in the model history and the audit log).")
@lock_option
@click.option("--quiet", is_flag=True, help="No progress bar.")
def promote(
    version: str | None,
    store_path: str | None,
    neo4j_uri: str | None,
    target: str | None,
    reason: str,
    lock_timeout: float | None,
    quiet: bool,
) -> None:
    """Make VERSION (default: the challenger) the champion that flag uses, and rescore every
    application with it. Audited; `ringscope rollback` undoes it."""
    from ringscope.detectors.risk.model_store import challenger, champion, target_folder
    from ringscope.detectors.risk.model_store import promote as promote_version
    from ringscope.detectors.risk.training import _user

    target = target or "fraud"
    with opened(store_path, neo4j_uri) as store, writing(store, "promote", lock_timeout):
        folder = target_folder(store, target)
        version = version or challenger(folder)
        if version is None:
            raise click.ClickException(
                f"No challenger in {folder} (champion: {champion(folder)}); give a VERSION or train one."
            )
        try:
            _change_champion(
                store, target, lambda: promote_version(folder, version, _user(), reason), ProgressBar(enabled=not quiet)
            )
        except ValueError as err:
            raise click.ClickException(str(err)) from err


@click.command()
@store_options
@_target_option("to roll back is for")
@click.option("--reason", default="", help="Why (kept in the model history and the audit log).")
@lock_option
@click.option("--quiet", is_flag=True, help="No progress bar.")
def rollback(
    store_path: str | None,
    neo4j_uri: str | None,
    target: str | None,
    reason: str,
    lock_timeout: float | None,
    quiet: bool,
) -> None:
    """Return to the champion before the current one and rescore every application with it. Audited."""
    from ringscope.detectors.risk.model_store import rollback as rollback_version
    from ringscope.detectors.risk.model_store import target_folder
    from ringscope.detectors.risk.training import _user

    target = target or "fraud"
    with opened(store_path, neo4j_uri) as store, writing(store, "rollback", lock_timeout):
        folder = target_folder(store, target)
        try:
            _change_champion(
                store, target, lambda: rollback_version(folder, _user(), reason), ProgressBar(enabled=not quiet)
            )
        except ValueError as err:
            raise click.ClickException(str(err)) from err


@click.command()
@store_options
@_target_option("is judged")
@click.option(
    "--since",
    default=None,
    metavar="YYYY-MM-DD",
    help="First day of the recent periods (Beijing time). Default: everything after the training window.",
)
@click.option("--period", type=click.Choice(["week", "month"]), default="week", show_default=True)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Also write the tables (CSV) and a chart (monitoring.png) here.",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def monitor(
    store_path: str | None,
    neo4j_uri: str | None,
    target: str | None,
    since: str | None,
    period: str,
    out_dir: Path | None,
    quiet: bool,
) -> None:
    """Is the model still scoring the book it learned from? Stability (PSI) of the score and each
    feature per recent week or month against the training window, detector hit rates, decision mix,
    and AUC / precision@k per monthly cohort where outcomes arrived. Exit code 1 when a PSI reaches
    "act" (0.25 beyond sampling noise), so a scheduler can alert."""
    import pandas as pd

    from ringscope.detectors.risk.monitoring import ACT, WATCH, save_monitoring
    from ringscope.detectors.risk.monitoring import monitor as run_monitor
    from ringscope.detectors.risk.scoring import load_model, target_folder

    target = target or "fraud"
    if since is not None:
        try:
            pd.Timestamp(since)
        except ValueError as err:
            raise click.UsageError(f"--since must be a date (YYYY-MM-DD). Got {since!r}.") from err
    bar = ProgressBar(enabled=not quiet)
    with opened(store_path, neo4j_uri) as store:
        folder = target_folder(store, target)
        try:
            model = load_model(folder)
        except FileNotFoundError as err:
            hint = "" if target == "fraud" else f" --target {target}"
            raise click.ClickException(
                f"No trained {target} model in {folder}; run `ringscope train{hint}` first."
            ) from err
        try:
            result = run_monitor(store, target, since=since, period=period, model=model, progress=bar)
        except ValueError as err:
            raise click.ClickException(str(err)) from err
        finally:
            bar.close()
        written = save_monitoring(result, folder, out_dir)
    click.echo(
        f"{result.target} model {result.model_version}: trained on {result.reference[0][:10]} to "
        f"{result.reference[1][:10]} ({result.sizes.get('reference', 0):,} applications)"
    )
    for note in result.notes:
        click.echo(f"  {note}")
    if len(result.psi):
        click.echo(f"  per {period} (PSI judged beyond sampling noise: watch >= {WATCH}, act >= {ACT}):")
        decisions = result.decisions
        click.echo(
            f"    {period:<10} {'apps':>6}  {'score':>9}  {'status':<8} {'review+decline':>14}  moved features "
            "(PSI beyond noise)"
        )
        excess = result.excess
        for label in result.psi.index:
            moved = [
                f"{c} {excess.loc[label, c]:.2f} ({result.status.loc[label, c]})"
                for c in result.psi.columns
                if c != "score" and result.status.loc[label, c] in ("watch", "act")
            ]
            flagged = sum(float(decisions.loc[label, d]) for d in ("review", "decline") if d in decisions.columns)
            click.echo(
                f"    {label:<10} {int(result.sizes.get(label, 0)):>6}  {excess.loc[label, 'score']:>9.3f}  "
                f"{result.status.loc[label, 'score']:<8} {flagged:>13.1%}  {', '.join(moved[:4]) or '-'}"
            )
        reference_flagged = sum(
            float(decisions.loc["reference", d])
            for d in ("review", "decline")
            if "reference" in decisions.index and d in decisions.columns
        )
        click.echo(
            f"    {'reference':<10} {int(result.sizes.get('reference', 0)):>6}  {'':>9}  {'':<8} "
            f"{reference_flagged:>13.1%}"
        )
    outcomes = result.cohorts[~result.cohorts["in_training"]] if len(result.cohorts) else result.cohorts
    if len(outcomes):
        click.echo("  monthly cohorts with outcomes, after the training window:")
        for row in outcomes.itertuples():
            click.echo(
                f"    {row.month}  n {row.n:,}  {target} {row.positives:,}  AUC {row.auc:.3f}  "
                f"precision@k {row.precision_at_k:.3f}"
            )
    else:
        click.echo("  no outcomes after the training window yet (AUC per cohort waits for labels or verdicts)")
    click.echo(f"  overall: {result.overall}; written: {', '.join(str(p) for p in written)}")
    sys.exit(1 if result.overall == "act" else 0)
