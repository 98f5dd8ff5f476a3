"""Train the risk model on a store, score applications, write scores back.

``train`` is what ``ringscope train`` runs: features over the whole portfolio
(columnar), outcomes from the ``label`` column plus investigators' case
verdicts (feedback), out-of-time validation, a saved versioned model, and a
score with reasons written onto every application.
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
from detectors.scoring import TrainedModel, TrainingConfig, contributions, models_folder, save_model, train_models
from detectors.values import BadValues
from graph.store import GraphBatch

__all__ = ["TrainResult", "train", "outcome_labels", "score_applications", "CASE_VERDICTS"]

#: case status → outcome label used by the next training run
CASE_VERDICTS = {"Confirmed fraud": "fraud", "Dismissed": "good"}


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
    """Put score, decision and reasons on the Application nodes."""
    frame = pd.DataFrame({
        "key": scored["application_id"].astype(str),
        "risk_score": scored["score"].astype(float),
        "risk_decision": scored["decision"].astype(str),
        "risk_reasons": scored["reasons"].astype(str),
        "risk_model": model.version,
        "scored_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    })
    store.write(GraphBatch(nodes={"Application": frame}))


def train(store, config: TrainingConfig = TrainingConfig(), progress=None, folder: Path | None = None,
          chunk: int = 50_000) -> TrainResult:
    """Fit the model on ``store``, save it, and score every application."""
    portfolio = Portfolio(store)
    findings = load_findings(store)
    if progress:
        progress("features", 0, 3)
    hubs = SharedIdentifierRings().hubs(portfolio)
    features = application_features(portfolio, findings, hubs)
    labels = outcome_labels(store, portfolio, findings)
    apps = portfolio.applications
    applied_at = apps.set_index("application_id")["applied_at"]
    model, report = train_models(features, labels, applied_at, config, progress)
    folder = Path(folder) if folder else models_folder(store)
    saved = save_model(model, report, folder)
    context = ReasonContext.build(findings, entity_links(portfolio), apps)
    parts = []
    for start in range(0, len(features), chunk):
        if progress:
            progress("score", start, len(features))
        parts.append(score_applications(model, features.iloc[start:start + chunk], context))
    scored = pd.concat(parts, ignore_index=True) if parts else score_applications(model, features, context)
    write_scores(store, scored, model)
    return TrainResult(model, report, saved, scored, list(portfolio.bad_values))
