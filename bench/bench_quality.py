"""Quality benchmark: the nightly path over random scenarios it was never tuned on.

Each scenario is ``ringscope generate --scenario random --seed S`` (knobs
drawn from wide ranges; see ``ingest/synthetic/scenario.py``), then the
nightly path through the same functions the CLI calls:

1. ``ingest_folder(history/)`` into a fresh embedded store,
2. ``run_detectors`` + ``save_findings`` (``ringscope detect``),
3. ``train`` with its default settings (``ringscope train``),
4. ``flag_applications(new/)`` (``ringscope flag``),
5. ``evaluate_flags`` on the new batch: AUC of the flag score, precision@k
   (k = frauds in the batch), ring pair F1 of ``ring_id``, planted rings and
   guarantee circles recovered (``detectors.evaluate.rings_recovered``, with
   the findings' members so a new application joining a ring of the history
   counts), honest applications declined, recall by typology (sent to review
   or decline),
6. for comparison, a full ``run_detectors`` over history + new: the AUC of
   ranking the new applications by their best finding score ("full AUC").

One row per scenario, then median, 10th percentile and worst of each figure
over the scenarios where it is defined (a batch without fraud has no AUC),
beside the targets of issue 12, each marked PASS/FAIL:

=========================  =====================================
figure                     target
=========================  =====================================
AUC                        median >= 0.97 and p10 >= 0.93
precision@k                median >= 0.85
ring pair F1               median >= 0.85
planted rings recovered    median >= 0.90
guarantee circles          median >= 0.95
honest declined            <= 1% in every scenario (worst)
=========================  =====================================

A scenario that fails (an exception in any step) is reported with its error
and fails the every-scenario target.

Usage::

    python bench/bench_quality.py [--scenarios 20] [--applications 4000] [--first-seed 1]
                                  [--out results/] [--workdir DIR] [--keep]

``--out`` writes ``scenarios.csv`` (every knob, figure and step time per scenario),
``summary.csv`` and ``quality.md`` (both tables in Markdown). About a minute
per scenario of 4,000 applications on 2 idle cores (four when other jobs share
them), over 90% of it in ``train``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: figure -> (statistic, bound, higher is better)
TARGETS: dict[str, list[tuple[str, float, bool]]] = {
    "auc": [("median", 0.97, True), ("p10", 0.93, True)],
    "precision_at_k": [("median", 0.85, True)],
    "pair_f1": [("median", 0.85, True)],
    "rings_recovered": [("median", 0.90, True)],
    "circles_recovered": [("median", 0.95, True)],
    "honest_declined": [("worst", 0.01, False)],
}
#: figures summarised, in table order; False = lower is better
FIGURES = {"auc": True, "precision_at_k": True, "pair_f1": True, "rings_recovered": True,
           "circles_recovered": True, "honest_declined": False, "honest_with_ring": False, "caught": True,
           "full_auc": True}
LABELS = {"auc": "AUC", "precision_at_k": "P@k", "pair_f1": "pair F1", "rings_recovered": "rings",
          "circles_recovered": "circles", "honest_declined": "honest decl", "honest_with_ring": "honest ring",
          "caught": "caught", "full_auc": "full AUC"}


def run_scenario(seed: int, applications: int, workdir: Path) -> dict:
    """Generate scenario ``seed`` in ``workdir`` and run the nightly path; one result row."""
    from detectors.evaluate import auc, best_finding_scores, evaluate_flags, read_truth
    from detectors.flagging import flag_applications
    from detectors.risk import train
    from detectors.runner import load_findings, run_detectors, save_findings
    from graph.embedded import EmbeddedStore
    from ingest.pipeline import ingest_folder
    from ingest.synthetic import generate_scenario, random_scenario

    scenario = random_scenario(seed, applications)
    k = scenario.knobs
    row: dict = {"seed": seed, "prevalence": k["fraud_prevalence"], "ring_sizes": "%d-%d" % tuple(k["ring_sizes"]),
                 "span": "%s-%s" % tuple(_duration(v) for v in k["ring_span_seconds"]),
                 "reuse": k["reuse_share"], "rotation": k["rotation"], "mess": k["mess_rate"],
                 "labelled": k["labelled_share"], "new_share": k["new_batch_share"]}
    row.update({f"knob {name}": value if not isinstance(value, (list, dict)) else str(value)
                for name, value in k.items()})
    data = workdir / f"scenario-{seed}"
    started = time.perf_counter()
    steps: dict[str, float] = {}

    def lap(name: str, since: float) -> float:
        now = time.perf_counter()
        steps[name] = now - since
        return now

    try:
        t = time.perf_counter()
        generate_scenario(scenario, data)
        t = lap("generate", t)
        store = EmbeddedStore(data / "store")
        ingest_folder(data / "history", store, rejects_path=data / "history-rejects.csv")
        t = lap("ingest", t)
        save_findings(store, run_detectors(store))
        t = lap("detect", t)
        trained = train(store, folder=data / "models")
        # the target train learnt (its default may change: say which one these figures are for)
        row["train_target"] = str(trained.report.get("target")
                                  or ",".join(getattr(trained.model.config, "bad_labels", ())))
        t = lap("train", t)
        _, result = flag_applications(store, data / "new", trained.model, data / "new-rejects.csv")
        t = lap("flag", t)
        new_ids = pd.read_csv(data / "new" / "applications.csv", dtype=str, keep_default_na=False)["application_id"]
        groups = {f.finding_id: f.members for f in load_findings(store)}
        truth = read_truth(data / "truth")
        evaluation = evaluate_flags(result.flags, data / "truth", new_ids.drop_duplicates(), groups)
        row.update({"new": evaluation.applications, "frauds": evaluation.frauds, "rings_n": evaluation.rings,
                    "circles_n": evaluation.circles})
        row.update(evaluation.figures())
        scored = [a for a in result.flags["application_id"] if a in truth.index]
        full = run_detectors(store)
        row["full_auc"] = auc(truth.loc[scored, "is_fraud"], best_finding_scores(full.findings, scored))
        lap("full detect", t)
    except Exception as exc:  # one broken scenario must not hide the others
        row["error"] = f"{type(exc).__name__}: {exc}"
        traceback.print_exc(file=sys.stderr)
    row["seconds"] = time.perf_counter() - started
    row.update({f"seconds {name}": s for name, s in steps.items()})
    return row


def summarise(rows: pd.DataFrame) -> pd.DataFrame:
    """Median, 10th percentile and worst of each figure over the scenarios that define it.

    The 10th percentile is of the bad tail: the 10th for figures where higher
    is better, the 90th where lower is (honest declined).

    Example
    -------
    >>> s = summarise(pd.DataFrame({"auc": [0.9, 1.0, np.nan], "honest_declined": [0.0, 0.02, 0.0]}))
    >>> s.set_index("figure").loc["auc", ["median", "worst"]].tolist(), int(s["n"].iloc[0])
    ([0.95, 0.9], 2)
    >>> float(s.set_index("figure").loc["honest_declined", "worst"])
    0.02
    """
    out = []
    for figure, higher in FIGURES.items():
        if figure not in rows:
            continue
        values = pd.to_numeric(rows[figure], errors="coerce").dropna().to_numpy(dtype=float)
        if not len(values):
            out.append({"figure": figure, "n": 0, "median": np.nan, "p10": np.nan, "worst": np.nan})
            continue
        out.append({"figure": figure, "n": len(values), "median": float(np.median(values)),
                    "p10": float(np.percentile(values, 10 if higher else 90)),
                    "worst": float(values.min() if higher else values.max())})
    return pd.DataFrame(out, columns=["figure", "n", "median", "p10", "worst"])


def verdicts(summary: pd.DataFrame, errors: int = 0) -> pd.DataFrame:
    """Each target of issue 12 beside today's figure, PASS or FAIL.

    Example
    -------
    >>> s = pd.DataFrame({"figure": ["auc"], "n": [20], "median": [0.98], "p10": [0.90], "worst": [0.8]})
    >>> verdicts(s)[["target", "result"]].values.tolist()
    [['median >= 0.97', 'PASS'], ['p10 >= 0.93', 'FAIL']]
    """
    by_figure = summary.set_index("figure")
    out = []
    for figure, checks in TARGETS.items():
        if figure not in by_figure.index:
            continue
        for statistic, bound, higher in checks:
            value = float(by_figure.loc[figure, statistic])
            ok = value == value and (value >= bound if higher else value <= bound)
            if statistic == "worst" and errors:  # "in every scenario" cannot hold for one that did not run
                ok = False
            out.append({"figure": figure, "target": f"{statistic} {'>=' if higher else '<='} {bound:g}",
                        "measured": value, "result": "PASS" if ok else "FAIL"})
    return pd.DataFrame(out, columns=["figure", "target", "measured", "result"])


def _duration(seconds: float) -> str:
    """A time spread in its largest whole unit.

    >>> _duration(90), _duration(7_200), _duration(3 * 86_400)
    ('2m', '2h', '3d')
    """
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def _fmt(value, digits: int = 3) -> str:
    if isinstance(value, (float, np.floating)):
        return "" if value != value else f"{value:.{digits}f}"
    return "" if value is None else str(value)


def scenario_table(rows: pd.DataFrame) -> pd.DataFrame:
    """The printed per-scenario table: seed, key knobs, figures."""
    columns = {"seed": "seed", "prevalence": "prev", "ring_sizes": "sizes", "span": "span", "reuse": "reuse",
               "rotation": "rot", "labelled": "lab", "new_share": "new%", "new": "new", "frauds": "fraud",
               **LABELS, "seconds": "s"}
    shown = pd.DataFrame({label: rows[col] if col in rows else np.nan for col, label in columns.items()})
    for col in ("prev", "new%"):
        shown[col] = shown[col].map(lambda v: f"{100 * v:.1f}" if v == v else "")
    for col in ("reuse", "rot", "lab"):
        shown[col] = shown[col].map(lambda v: f"{v:.2f}" if v == v else "")
    shown["s"] = shown["s"].map(lambda v: f"{v:.0f}")
    for col in ("new", "fraud"):
        shown[col] = shown[col].map(lambda v: "" if v != v else f"{int(v)}")
    for label in LABELS.values():
        shown[label] = shown[label].map(_fmt)
    if "error" in rows:
        shown["error"] = rows["error"].fillna("").map(lambda e: e[:60])
    return shown


def _text(frame: pd.DataFrame) -> str:
    return frame.to_string(index=False)


def _markdown(frame: pd.DataFrame) -> str:
    cells = frame.astype(str).replace("nan", "")
    lines = ["| " + " | ".join(cells.columns) + " |", "|" + "---|" * len(cells.columns)]
    lines += ["| " + " | ".join(row) + " |" for row in cells.itertuples(index=False)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", type=int, default=20)
    parser.add_argument("--applications", type=int, default=4000)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="folder for scenarios.csv, summary.csv, quality.md")
    parser.add_argument("--workdir", type=Path, default=None, help="where scenarios are generated (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep each scenario's data and store")
    args = parser.parse_args()

    from graph.files import atomic_write_text, private_dir, write_csv

    workdir = private_dir(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="ringscope-quality-"))
    rows = []
    started = time.perf_counter()
    for seed in range(args.first_seed, args.first_seed + args.scenarios):
        row = run_scenario(seed, args.applications, workdir)
        rows.append(row)
        figures = ", ".join(f"{LABELS[f]} {_fmt(row.get(f, np.nan))}" for f in LABELS)
        print(f"scenario {seed}: {row.get('new', 0)} new, {row.get('frauds', 0)} fraud; {figures}; "
              f"{row['seconds']:.0f} s" + (f"; ERROR {row['error']}" if "error" in row else ""), flush=True)
        if not args.keep:
            shutil.rmtree(workdir / f"scenario-{seed}", ignore_errors=True)
    frame = pd.DataFrame(rows)
    errors = int(frame["error"].notna().sum()) if "error" in frame else 0
    summary = summarise(frame)
    checks = verdicts(summary, errors)
    table = scenario_table(frame)
    print(f"\n{args.scenarios} random scenarios of {args.applications:,} applications (seeds {args.first_seed}–"
          f"{args.first_seed + args.scenarios - 1}), {time.perf_counter() - started:.0f} s, {errors} failed\n")
    print(_text(table))
    shown = summary.assign(figure=summary["figure"].map(LABELS), **{c: summary[c].map(_fmt)
                                                                      for c in ("median", "p10", "worst")})
    print("\n" + _text(shown))
    print("\n" + _text(checks.assign(measured=checks["measured"].map(_fmt))))
    recall = frame[[c for c in frame.columns if c.startswith("recall ")]]
    if not recall.empty:
        by_typology = pd.DataFrame({"typology": [c[len("recall "):] for c in recall.columns],
                                    "scenarios": recall.notna().sum().to_numpy(),
                                    "median recall": recall.median().to_numpy(),
                                    "worst": recall.min().to_numpy()})
        print("\nrecall by typology (sent to review or decline)\n"
              + _text(by_typology.assign(**{c: by_typology[c].map(_fmt) for c in ("median recall", "worst")})))
    if args.out:
        out = private_dir(args.out)
        write_csv(frame, out / "scenarios.csv")
        write_csv(summary, out / "summary.csv")
        parts = [f"# Quality over {args.scenarios} random scenarios ({args.applications:,} applications each)",
                 _markdown(table), "## Summary", _markdown(shown), "## Targets",
                 _markdown(checks.assign(measured=checks["measured"].map(_fmt)))]
        if not recall.empty:
            parts += ["## Recall by typology", _markdown(by_typology.assign(
                **{c: by_typology[c].map(_fmt) for c in ("median recall", "worst")}))]
        atomic_write_text(out / "quality.md", "\n\n".join(parts) + "\n")
        print(f"\nwrote {out / 'scenarios.csv'}, {out / 'summary.csv'}, {out / 'quality.md'}")
    if not args.workdir and not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
