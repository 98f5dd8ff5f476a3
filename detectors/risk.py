"""Train the risk model on a store, score applications, write scores back.

``train`` is what ``ringscope train`` runs: features over the whole portfolio
(columnar), outcomes from the ``label`` column plus investigators' case
verdicts (feedback), out-of-time validation, a saved versioned model, and a
score with reasons written onto every application.

A model learns one target (``TrainingConfig.target``, :func:`target_outcomes`):
``fraud`` by default — the ``fraud`` label and confirmed-fraud verdicts are its
positives, a credit default is a negative — or, on request, ``default``, which
is saved in its own folder and writes its own score properties, so the fraud
score never has defaults mixed into it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from detectors.features import application_features
from detectors.portfolio import Portfolio
from detectors.reasons import ReasonContext, build_reasons
from detectors.rings import SharedIdentifierRings, entity_links
from detectors.runner import load_findings
from detectors.scoring import TrainedModel, TrainingConfig, contributions, save_model, target_folder, train_models
from detectors.values import BadValues
from graph.store import GraphBatch

__all__ = ["TrainResult", "train", "outcome_labels", "target_outcomes", "score_applications", "write_scores",
           "CASE_VERDICTS", "SCORE_PROPERTIES"]

#: case status → outcome label used by the next training run ("Open" and
#: "In progress" are no verdict yet)
CASE_VERDICTS = {"Confirmed fraud": "fraud", "Dismissed": "good"}

#: per target, the Application properties its score, decision, reasons, model
#: version and time go to (the fraud score keeps the names the dashboard reads)
SCORE_PROPERTIES = {
    "fraud": ("risk_score", "risk_decision", "risk_reasons", "risk_model", "scored_at"),
    "default": ("default_score", "default_decision", "default_reasons", "default_model", "default_scored_at"),
}


@dataclass
class TrainResult:
    model: TrainedModel
    report: dict
    folder: Path
    scored: pd.DataFrame  # application_id, score, decision, reasons
    #: stored values read as missing (implausible dates and figures), for the summary
    bad_values: list[BadValues] = field(default_factory=list)


def outcome_labels(store, portfolio: Portfolio, findings=None) -> pd.Series:
    """application_id → outcome: the lender's ``label``, overridden by case verdicts.

    A confirmed case on an application labels it ``fraud``; on a finding, all
    its member applications. A dismissed case labels ``good`` only what has
    no outcome yet (dismissing an alert does not clear a recorded default).
    """
    apps = portfolio.applications.set_index("application_id")
    labels = apps["label"].astype(object).where(apps["label"].notna(), None)
    cases = store.read_nodes("Case", ["target_label", "target_key", "status"])
    if cases.empty or "status" not in cases.columns:
        return labels
    members = {f.finding_id: f.members for f in (findings if findings is not None else load_findings(store))}
    for verdict in ("Dismissed", "Confirmed fraud"):  # confirmed wins over dismissed
        outcome = CASE_VERDICTS[verdict]
        for row in cases[cases["status"] == verdict].itertuples():
            targets = [row.target_key] if row.target_label == "Application" else list(members.get(row.target_key, ()))
            for app_id in targets:
                if app_id not in labels.index:
                    continue
                if outcome == "good" and labels.get(app_id) not in (None, np.nan):
                    continue
                labels[app_id] = outcome
    return labels


def target_outcomes(labels: pd.Series, outcomes: pd.Series, target: str) -> pd.Series:
    """application_id → what training for ``target`` learns from (None: left out).

    ``labels`` is the lender's ``label`` column, ``outcomes`` the same with
    case verdicts applied (:func:`outcome_labels`).

    * ``fraud``: the outcomes. ``fraud`` (labelled or confirmed by an
      investigator) is positive; ``good`` and ``default`` are negative — a
      borrower who did not repay is not evidence of fraud.
    * ``default``: the ``label`` column only (a dismissed alert says nothing
      about repayment); ``default`` is positive, ``good`` negative, and a
      fraud, labelled or confirmed, is left out: its loss is not credit risk.

    Example
    -------
    >>> labels = pd.Series(["fraud", "default", "good", "default", None], index=list("abcde"))
    >>> outcomes = pd.Series(["fraud", "default", "good", "fraud", "good"], index=list("abcde"))
    >>> target_outcomes(labels, outcomes, "fraud").tolist()
    ['fraud', 'default', 'good', 'fraud', 'good']
    >>> target_outcomes(labels, outcomes, "default").tolist()
    [None, 'default', 'good', None, None]
    """
    if target == "fraud":
        return outcomes.copy()
    if target == "default":
        out = labels.astype(object).where(labels.notna(), None).reindex(outcomes.index)
        return out.where(~outcomes.reindex(out.index).eq("fraud").to_numpy(), None)
    raise ValueError(f"Unknown target {target!r}")


def score_applications(model: TrainedModel, features: pd.DataFrame, context: ReasonContext,
                       review: float | None = None, decline: float | None = None) -> pd.DataFrame:
    """Scores, decisions and JSON reasons for the rows of ``features``."""
    if features.empty:
        return pd.DataFrame(columns=["application_id", "score", "decision", "reasons"])
    scores = model.predict(features)
    contrib = contributions(model, features)
    reasons = build_reasons(contrib, features, context)
    return pd.DataFrame({
        "application_id": features.index,
        "score": np.round(scores, 4),
        "decision": model.decide(scores, review, decline),
        "reasons": reasons.reindex(features.index).to_numpy(),
    })


def write_scores(store, scored: pd.DataFrame, model: TrainedModel) -> None:
    """Put score, decision and reasons on the Application nodes, in the
    properties of the model's target (:data:`SCORE_PROPERTIES`)."""
    if model.target not in SCORE_PROPERTIES:
        raise ValueError(f"A model of target {model.target!r} has no score properties; retrain it with a target "
                         f"of {', '.join(SCORE_PROPERTIES)}.")
    score, decision, reasons, version, at = SCORE_PROPERTIES[model.target]
    frame = pd.DataFrame({
        "key": scored["application_id"].astype(str),
        score: scored["score"].astype(float),
        decision: scored["decision"].astype(str),
        reasons: scored["reasons"].astype(str),
        version: model.version,
        at: datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    })
    store.write(GraphBatch(nodes={"Application": frame}))


def train(store, config: TrainingConfig = TrainingConfig(), progress=None, folder: Path | None = None,
          chunk: int = 50_000) -> TrainResult:
    """Fit the model of ``config.target`` on ``store``, save it (in the
    target's own folder unless ``folder`` is given), and score every
    application (into the target's own properties)."""
    portfolio = Portfolio(store)
    findings = load_findings(store)
    if progress:
        progress("features", 0, 3)
    hubs = SharedIdentifierRings().hubs(portfolio)
    known_bad = config.bad_labels  # earlier neighbours count as known bad by the model's own target
    features = application_features(portfolio, findings, hubs, known_bad)
    apps = portfolio.applications
    labels = apps.set_index("application_id")["label"]
    verdicts = outcome_labels(store, portfolio, findings)
    outcomes = target_outcomes(labels, verdicts, config.target)
    applied_at = apps.set_index("application_id")["applied_at"]
    model, report = train_models(features, outcomes, applied_at, config, progress)
    report.update(_outcome_counts(labels, verdicts, outcomes, applied_at, config))
    folder = Path(folder) if folder else target_folder(store, config.target)
    saved = save_model(model, report, folder)
    context = ReasonContext.build(findings, entity_links(portfolio), apps, known_bad)
    parts = []
    for start in range(0, len(features), chunk):
        if progress:
            progress("score", start, len(features))
        parts.append(score_applications(model, features.iloc[start:start + chunk], context))
    scored = pd.concat(parts, ignore_index=True) if parts else score_applications(model, features, context)
    write_scores(store, scored, model)
    return TrainResult(model, report, saved, scored, list(portfolio.bad_values))


def _outcome_counts(labels: pd.Series, outcomes: pd.Series, used: pd.Series, applied_at: pd.Series,
                    config: TrainingConfig) -> dict:
    """What the report says about the target: where its positives came from,
    what the negatives are, and what was left out."""
    timed = applied_at.reindex(used.index).notna().to_numpy()
    known = used[used.notna().to_numpy() & (used.astype(str) != "").to_numpy() & timed]
    positive = known.isin(config.bad_labels)
    from_labels = labels.reindex(known.index).isin(config.bad_labels)
    outcomes = outcomes.reindex(used.index)
    left_out = outcomes[outcomes.notna().to_numpy() & used.isna().to_numpy() & timed]

    def counts(values: pd.Series) -> dict[str, int]:
        return {str(k): int(v) for k, v in values.value_counts().sort_index().items()}

    return {
        "positives": {"total": int(positive.sum()), "from labels": int((positive & from_labels).sum()),
                      "from case verdicts": int((positive & ~from_labels).sum())},
        "negatives": counts(known[~positive]),
        "left_out": counts(left_out),
    }
