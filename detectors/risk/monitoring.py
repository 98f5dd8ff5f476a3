"""Is the model still scoring the book it was trained on? (``ringscope monitor``)

A model learns from one window of applications. When the book moves — a new
channel, a new product, a shifted amount mix, a new fraud pattern — its score
keeps coming out, but it means less. :func:`monitor` compares each recent
period (week or month, Beijing time) with the model's own training window:

- **population stability** (PSI) of the score and of every model feature;
- each detector's **hit rate** (share of the period's applications that are
  members of one of its findings);
- the **decision mix** (pass / review / decline);
- where outcomes have arrived (labels, case verdicts), **AUC and
  precision@k per monthly cohort**, with the months the model was trained on
  marked as such (those figures are in-sample).

PSI is judged against the usual bands, "watch" from 0.1 and "act" from 0.25,
after taking off the value that sampling noise alone gives two samples of
these sizes (about ``(bins - 1) * (1/n + 1/N)``): a small week is not
"drift" because it is small. A period too small for its noise floor to stay
under the "watch" band is reported as such, not judged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

__all__ = ["population_stability", "PsiResult", "MonitorReport", "monitor", "save_monitoring", "WATCH", "ACT"]

#: PSI from which a shift deserves a look, and from which the model needs attention
WATCH, ACT = 0.1, 0.25
#: reference quantile bins for a numeric feature (fewer when values repeat)
BINS = 10
_SEVERITY = {"ok": 0, "watch": 1, "act": 2}


@dataclass(frozen=True)
class PsiResult:
    """Population stability of one column between a reference and a current sample."""

    psi: float
    #: what PSI two samples of these sizes from one population typically give
    noise: float
    bins: int
    n_reference: int
    n_current: int

    @property
    def excess(self) -> float:
        """PSI beyond sampling noise: what the bands judge."""
        return max(0.0, self.psi - self.noise)

    @property
    def status(self) -> str:
        """``ok``, ``watch``, ``act``, or ``too few`` (the noise alone would reach "watch")."""
        if self.n_current == 0 or self.noise >= WATCH:
            return "too few"
        return "act" if self.excess >= ACT else "watch" if self.excess >= WATCH else "ok"


def population_stability(reference: pd.Series, current: pd.Series, bins: int = BINS) -> PsiResult:
    """PSI of ``current`` against ``reference``.

    Numeric columns are cut at the reference's quantiles; text columns by
    value. A missing value is a bin of its own (a feature that stops arriving
    is drift too). Half a count is added to every bin so that an empty bin
    gives a finite figure.

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> same = population_stability(pd.Series(rng.normal(size=5000)), pd.Series(rng.normal(size=2000)))
    >>> same.status
    'ok'
    >>> moved = population_stability(pd.Series(rng.normal(size=5000)), pd.Series(rng.normal(1, size=2000)))
    >>> round(moved.psi, 1), moved.status
    (0.9, 'act')
    """
    reference, current = pd.Series(reference), pd.Series(current)
    if _is_numeric(reference) and _is_numeric(current):
        ref = pd.to_numeric(reference, errors="coerce").astype(float)
        cur = pd.to_numeric(current, errors="coerce").astype(float)
        finite = ref[np.isfinite(ref)]
        edges = np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1])) if len(finite) else np.array([])
        ref_codes, cur_codes = _cut(ref.to_numpy(), edges), _cut(cur.to_numpy(), edges)
        categories = np.arange(len(edges) + 2)  # len(edges) + 1 intervals, then "missing"
    else:
        ref_text = reference.astype("string").fillna("\x00missing")
        cur_text = current.astype("string").fillna("\x00missing")
        categories = np.array(sorted(set(ref_text) | set(cur_text)), dtype=object)
        lookup = {value: i for i, value in enumerate(categories)}
        ref_codes = np.array([lookup[v] for v in ref_text], dtype=np.int64)
        cur_codes = np.array([lookup[v] for v in cur_text], dtype=np.int64)
    k = len(categories)
    ref_counts = np.bincount(ref_codes, minlength=k)[:k].astype(float)
    cur_counts = np.bincount(cur_codes, minlength=k)[:k].astype(float)
    used = (ref_counts + cur_counts) > 0
    ref_counts, cur_counts = ref_counts[used] + 0.5, cur_counts[used] + 0.5
    p, q = ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum()
    psi = float(np.sum((q - p) * np.log(q / p)))
    n_ref, n_cur = len(reference), len(current)
    occupied = int(used.sum())
    # symmetric KL between two multinomial samples of one population ~ chi2(k-1) * (1/n + 1/N)
    noise = (occupied - 1) * (1 / max(n_cur, 1) + 1 / max(n_ref, 1)) if occupied > 1 else 0.0
    return PsiResult(psi, float(noise), occupied, n_ref, n_cur)


def _is_numeric(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)


def _cut(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    codes = np.searchsorted(edges, values, side="right")
    codes[~np.isfinite(values)] = len(edges) + 1
    return codes


@dataclass
class MonitorReport:
    """What ``ringscope monitor`` found, one row per recent period in each table."""

    model_version: str
    target: str
    #: the model's training window (first and last application time it learned from)
    reference: tuple[str, str]
    period: str  # "week" or "month"
    #: index period; one column per score/feature: PSI, the PSI sampling noise alone
    #: gives samples of these sizes, and the status judged on their difference
    psi: pd.DataFrame
    noise: pd.DataFrame
    status: pd.DataFrame
    #: period -> applications in it (the reference window first, as "reference")
    sizes: pd.Series
    #: index period ("reference" first); one column per detector: share of applications in its findings
    hit_rates: pd.DataFrame
    #: index period ("reference" first); pass / review / decline shares
    decisions: pd.DataFrame
    #: one row per month with outcomes: n, positives, auc, precision_at_k, in_training
    cohorts: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    @property
    def excess(self) -> pd.DataFrame:
        """PSI beyond sampling noise, per period and column: what the bands judge."""
        return (self.psi - self.noise).clip(lower=0.0)

    @property
    def overall(self) -> str:
        """The worst status over every period and column (``ok`` if nothing could be judged)."""
        judged = [s for s in self.status.to_numpy().ravel() if s in _SEVERITY]
        return max(judged, key=_SEVERITY.get, default="ok")

    def alerts(self) -> pd.DataFrame:
        """Every (period, column) at "watch" or "act", worst first."""
        excess = self.excess
        rows = [
            (period, column, self.psi.loc[period, column], excess.loc[period, column], self.status.loc[period, column])
            for period in self.status.index
            for column in self.status.columns
            if self.status.loc[period, column] in ("watch", "act")
        ]
        frame = pd.DataFrame(rows, columns=["period", "column", "psi", "beyond_noise", "status"])
        frame["rank"] = frame["status"].map(_SEVERITY)
        return (
            frame.sort_values(["rank", "beyond_noise"], ascending=False, kind="stable")
            .drop(columns="rank")
            .reset_index(drop=True)
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (for ``monitoring.json`` and the dashboard)."""

        def table(frame: pd.DataFrame) -> dict:
            return {str(i): {str(c): _plain(v) for c, v in row.items()} for i, row in frame.iterrows()}

        return {
            "model_version": self.model_version,
            "target": self.target,
            "reference": list(self.reference),
            "period": self.period,
            "overall": self.overall,
            "sizes": {str(k): int(v) for k, v in self.sizes.items()},
            "psi": table(self.psi),
            "noise": table(self.noise),
            "status": table(self.status),
            "hit_rates": table(self.hit_rates),
            "decisions": table(self.decisions),
            "cohorts": [{str(k): _plain(v) for k, v in row.items()} for row in self.cohorts.to_dict("records")],
            "alerts": [{str(k): _plain(v) for k, v in row.items()} for row in self.alerts().to_dict("records")],
            "notes": list(self.notes),
        }


def _plain(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if not math.isfinite(float(value)) else round(float(value), 6)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def _periods(times: pd.Series, period: str) -> pd.Series:
    """Each application's period label in Beijing time: the Monday of its
    week (``2026-05-04``) or its month (``2026-05``)."""
    local = times.dt.tz_convert("Asia/Shanghai").dt.tz_localize(None)
    if period == "week":
        monday = local.dt.normalize() - pd.to_timedelta(local.dt.weekday, unit="D")
        return monday.dt.strftime("%Y-%m-%d")
    return local.dt.strftime("%Y-%m")


def monitor(
    store, target: str = "fraud", since: str | None = None, period: str = "week", model=None, progress=None
) -> MonitorReport:
    """Compare recent periods of ``store`` with its model's training window.

    Parameters
    ----------
    store : GraphStore
    target : str
        Which model (``fraud`` or ``default``).
    since : str, optional
        First day of the recent periods (``YYYY-MM-DD``, Beijing time);
        default: everything after the training window.
    period : {"week", "month"}
    model : TrainedModel, optional
        Judge this model instead of the store's latest one.
    """
    from ringscope.detectors.portfolio import Portfolio
    from ringscope.detectors.risk.features import application_features
    from ringscope.detectors.risk.scoring import load_model, precision_at_k, target_folder
    from ringscope.detectors.risk.training import SCORE_PROPERTIES, outcome_labels, target_outcomes
    from ringscope.detectors.runner import load_findings
    from ringscope.detectors.settings import store_settings

    if period not in ("week", "month"):
        raise ValueError(f"period must be 'week' or 'month'. Got {period!r} instead.")
    if model is None:
        model = load_model(target_folder(store, target))
    report = model.report or {}
    try:
        window = (pd.Timestamp(report["train"]["from"]), pd.Timestamp(report["validation"]["to"]))
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"The model {model.version} has no training window in its report; retrain it.") from err
    window = tuple(t.tz_localize("UTC") if t.tzinfo is None else t for t in window)
    step = (lambda name, i: progress(name, i, 4)) if progress else (lambda name, i: None)

    step("read", 0)
    portfolio = Portfolio(store)
    findings = load_findings(store)
    apps = portfolio.applications.set_index("application_id")
    applied = apps["applied_at"]
    step("features", 1)
    hubs = store_settings(store).detector("shared_identifier_rings").hubs(portfolio)
    features = application_features(portfolio, findings, hubs, model.known_bad)
    features = features.reindex(columns=[c for c in model.features if c in features.columns])
    score_col, decision_col, *_ = SCORE_PROPERTIES[model.target]
    scored = store.read_nodes("Application", [score_col, decision_col]).set_index("key")
    scored = scored.reindex(columns=[score_col, decision_col]).reindex(apps.index)
    columns = pd.concat([pd.to_numeric(scored[score_col], errors="coerce").rename("score"), features], axis=1)

    timed = applied.notna()
    in_window = timed & (applied >= window[0]) & (applied <= window[1])
    start = window[1] if since is None else pd.Timestamp(since, tz="Asia/Shanghai").tz_convert("UTC")
    recent = timed & ((applied > start) if since is None else (applied >= start))
    labels = pd.Series("reference", index=apps.index, dtype=object)
    labels[recent] = _periods(applied[recent], period)
    notes = []
    if not recent.any():
        notes.append("No applications after the training window: nothing to compare yet.")
    if not in_window.any():
        notes.append("No stored application falls in the model's training window.")
    recent_periods = sorted(set(labels[recent]))

    step("stability", 2)
    reference = columns[in_window]
    psi_rows, noise_rows, status_rows = {}, {}, {}
    for label in recent_periods:
        current = columns[(labels == label).to_numpy() & recent.to_numpy()]
        results = {c: population_stability(reference[c], current[c]) for c in columns.columns}
        psi_rows[label] = {c: r.psi for c, r in results.items()}
        noise_rows[label] = {c: r.noise for c, r in results.items()}
        status_rows[label] = {c: r.status for c, r in results.items()}
    psi = pd.DataFrame.from_dict(psi_rows, orient="index").reindex(columns=columns.columns)
    noise = pd.DataFrame.from_dict(noise_rows, orient="index").reindex(columns=columns.columns)
    status = pd.DataFrame.from_dict(status_rows, orient="index").reindex(columns=columns.columns)

    step("rates", 3)
    group = labels.where(in_window | recent)  # applications outside both are left out
    sizes = group.value_counts().reindex(["reference", *recent_periods]).fillna(0).astype(int)
    members: dict[str, set[str]] = {}
    for f in findings:
        members.setdefault(f.detector, set()).update(f.members)
    hit_rates = pd.DataFrame(
        {
            name: pd.Series(apps.index.isin(list(ids)), index=apps.index).groupby(group).mean()
            for name, ids in sorted(members.items())
        }
    ).reindex(sizes.index)
    decisions = (
        (
            pd.crosstab(group, scored[decision_col].fillna("(unscored)"), normalize="index")
            .reindex(index=sizes.index)
            .fillna(0.0)
        )
        if group.notna().any()
        else pd.DataFrame()
    )

    verdicts = outcome_labels(store, portfolio, findings)
    outcomes = target_outcomes(apps["label"], verdicts, model.target)
    known = outcomes.notna() & (outcomes.astype(str) != "") & timed & columns["score"].notna()
    months = _periods(applied[known], "month")
    capacity = float(getattr(model.config, "review_capacity", 0.05))
    cohort_rows = []
    for month in sorted(set(months)):
        ids = months.index[months == month]
        y = outcomes[ids].isin(model.known_bad).astype(int).to_numpy()
        s = columns.loc[ids, "score"].to_numpy(dtype=float)
        k = max(1, int(round(len(ids) * capacity)))
        both = 0 < y.sum() < len(y)
        cohort_rows.append(
            {
                "month": month,
                "n": int(len(ids)),
                "positives": int(y.sum()),
                "auc": float(roc_auc_score(y, s)) if both else float("nan"),
                "precision_at_k": precision_at_k(y, s, k) if y.sum() else float("nan"),
                "in_training": bool(((applied[ids] >= window[0]) & (applied[ids] <= window[1])).any()),
            }
        )
    cohorts = pd.DataFrame(cohort_rows, columns=["month", "n", "positives", "auc", "precision_at_k", "in_training"])
    step("done", 4)
    shown = tuple(t.tz_convert("Asia/Shanghai").isoformat() for t in window)
    return MonitorReport(
        model.version, model.target, shown, period, psi, noise, status, sizes, hit_rates, decisions, cohorts, notes
    )


def save_monitoring(result: MonitorReport, folder, out=None) -> list:
    """Write ``monitoring.json`` into the model's ``folder`` (what the
    dashboard's Model page reads) and, with ``out``, the tables as CSV and
    ``monitoring.png`` there. Returns the paths written."""
    import json
    from pathlib import Path

    from ringscope.graph.files import atomic_write_text, private_dir, write_csv

    written = []
    folder = Path(folder)
    private_dir(folder)
    path = folder / "monitoring.json"
    atomic_write_text(path, json.dumps(result.to_dict(), ensure_ascii=False, indent=1))
    written.append(path)
    if out is not None:
        out = Path(out)
        private_dir(out)
        for name, frame in (
            ("psi", result.psi),
            ("noise", result.noise),
            ("status", result.status),
            ("hit_rates", result.hit_rates),
            ("decisions", result.decisions),
        ):
            target = out / f"{name}.csv"
            write_csv(frame.rename_axis("period").reset_index(), target)
            written.append(target)
        for name, frame in (("cohorts", result.cohorts), ("alerts", result.alerts())):
            target = out / f"{name}.csv"
            write_csv(frame, target)
            written.append(target)
        written.append(_chart(result, out / "monitoring.png"))
    return written


def _chart(result: MonitorReport, path):
    """Score PSI per period against the bands, the most-moved features, and the decision mix."""
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    from ringscope.graph.files import atomic_open

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6.5), dpi=110, sharex=True)
    periods = list(result.psi.index)
    x = np.arange(len(periods))
    excess = result.excess
    if periods:
        moved = excess.drop(columns="score", errors="ignore").max().sort_values(ascending=False)
        for column in ["score", *[c for c in moved.index[:4] if moved[c] >= WATCH]]:
            if column in excess:
                top.plot(
                    x, excess[column].to_numpy(), marker="o", linewidth=2.5 if column == "score" else 1.2, label=column
                )
        top.axhspan(WATCH, ACT, color="#f2c14e", alpha=0.25, label=f"watch (PSI {WATCH})")
        top.axhspan(
            ACT,
            max(ACT * 1.6, float(np.nanmax(excess.to_numpy(dtype=float))) * 1.1),
            color="#d1495b",
            alpha=0.18,
            label=f"act (PSI {ACT})",
        )
        top.legend(fontsize=7, loc="upper left")
        shares = result.decisions.reindex(periods).fillna(0.0)
        bottomline = np.zeros(len(periods))
        for decision, colour in (("pass", "#8fb996"), ("review", "#f2c14e"), ("decline", "#d1495b")):
            if decision in shares:
                values = shares[decision].to_numpy(dtype=float)
                bottom.bar(x, values, bottom=bottomline, color=colour, label=decision)
                bottomline += values
        bottom.legend(fontsize=7, loc="lower left")
    top.set_ylabel("PSI beyond sampling noise\nagainst the training window")
    top.set_title(f"{result.target} model {result.model_version}: stability per {result.period}")
    bottom.set_ylabel("decision mix")
    bottom.set_xticks(x, periods, rotation=45, ha="right", fontsize=7)
    fig.tight_layout()
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png")
    plt.close(fig)
    return path
