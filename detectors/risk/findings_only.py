"""A score for a book without enough fraud outcomes: the detectors' own.

A lender that starts with ringscope seldom has ten confirmed frauds in its
labels, and a model cannot learn from fewer (:data:`MIN_POSITIVES`). The
detectors need no labels: each finding carries a score from its own
evidence. Until the history holds enough outcomes, ``train`` saves a
*findings-only* model instead of refusing. It is an ordinary
:class:`TrainedModel` of kind ``findings`` (so ``flag``, reasons, ``ring_id``,
promotion and rollback treat it like any other), whose score is the
application's best label-free finding score and whose reasons are that
finding.

Nothing was learned from outcomes, so nothing is calibrated against them:
the score sends applications to **review** from the review threshold, and
**declines none** unless ``flag --decline`` asks for it. The first model
trained on enough outcomes replaces it as champion.

Example
-------
>>> import pandas as pd
>>> X = pd.DataFrame({"det_rings": [0.8, 0.0], "det_identity": [0.4, 0.0], "log_amount": [9.0, 11.0]})
>>> best = BestFindingScore(["det_rings", "det_identity"])
>>> best.predict_proba(X)[:, 1].tolist()
[0.8, 0.0]
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from ringscope.detectors.registry import DETECTORS
from ringscope.detectors.risk.config import MIN_POSITIVES, TrainingConfig

__all__ = ["KIND", "BestFindingScore", "findings_only_model", "findings_contributions", "finding_columns"]

#: the model kind of a findings-only model (``TrainedModel.kind``, ``report["chosen"]``)
KIND = "findings"


def finding_columns(columns) -> list[str]:
    """The finding-score features: one ``det_NAME`` per registered detector,
    then any other ``det_`` column the features hold (a detector a plug-in
    added), in a fixed order.

    >>> finding_columns(["log_amount", "det_rings_x"])[:2]
    ['det_identity', 'det_shared_identifier_rings']
    """
    registered = [f"det_{name}" for name in DETECTORS]
    extra = sorted(c for c in columns if str(c).startswith("det_") and c not in registered)
    return registered + extra


class BestFindingScore:
    """The best of an application's finding scores, in the shape of a
    scikit-learn classifier (``predict_proba`` gives two columns)."""

    classes_ = np.array([0, 1])

    def __init__(self, columns: list[str]):
        self.columns = list(columns)

    def best(self, X: pd.DataFrame) -> np.ndarray:
        """Each row's finding scores, one column per ``columns`` (a column or
        value that is missing counts 0), clipped to [0, 1]."""
        values = np.column_stack(
            [
                pd.to_numeric(X[c], errors="coerce").to_numpy(dtype=float) if c in X else np.zeros(len(X))
                for c in self.columns
            ]
            or [np.zeros(len(X))]
        )
        return np.clip(np.nan_to_num(values, nan=0.0), 0.0, 1.0)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        score = self.best(X).max(axis=1)
        return np.column_stack([1.0 - score, score])


def findings_contributions(estimator: BestFindingScore, X: pd.DataFrame, features: list[str]) -> np.ndarray:
    """Each feature's part in a findings-only score: a finding feature's part
    is its own score, every other feature's is 0. Nothing was learned, so
    there are no log-odds to share out; the reasons then list an
    application's findings from the strongest down, which is what the score
    rests on.

    >>> X = pd.DataFrame({"det_a": [0.8], "det_b": [0.5], "own": [3.0]})
    >>> findings_contributions(BestFindingScore(["det_a", "det_b"]), X, ["det_a", "det_b", "own"]).tolist()
    [[0.8, 0.5, 0.0]]
    """
    values = estimator.best(X)
    out = np.zeros((len(X), len(features)))
    position = {c: i for i, c in enumerate(features)}
    for j, column in enumerate(estimator.columns):
        if column in position:
            out[:, position[column]] = values[:, j]
    return out


def findings_only_model(
    features: pd.DataFrame, applied_at: pd.Series, config: TrainingConfig, why: str, outcomes: pd.Series | None = None
):
    """A :class:`TrainedModel` scoring by the best finding, and its report.

    ``why`` says which outcomes were missing (it goes into the report and
    ``train``'s output); ``outcomes`` (application_id → label, blank when
    unknown) gives the report's counts of labelled applications and positives.
    """
    known = outcomes[outcomes.notna() & (outcomes.astype(str) != "")] if outcomes is not None else pd.Series()
    from ringscope.detectors.risk.scoring import TrainedModel

    columns = finding_columns(features.columns)
    baseline = pd.Series(dict.fromkeys(columns, 0.0), dtype=object)
    seen = applied_at.reindex(features.index).dropna()
    start, end = (str(seen.min()), str(seen.max())) if len(seen) else ("", "")
    version = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + config.digest() + "-findings"
    report = {
        "trained_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "target": config.target,
        "positive_labels": list(config.bad_labels),
        "chosen": KIND,
        "labelled": int(len(known)),
        "bad": int(known.isin(config.bad_labels).sum()),
        "findings_only": {
            "why": why,
            "needs": MIN_POSITIVES,
            "score": "the best label-free finding score of the application",
            "decisions": "review from the review threshold; no decline unless flag --decline asks",
        },
        # the window the findings were made on: what `ringscope monitor` compares recent weeks with
        "train": {"n": 0, "bad": 0, "from": start, "to": end},
        "validation": {"method": "none", "n": 0, "bad": 0, "from": end, "to": end, "why": why},
        "review_capacity_k": 0,
        "models": {},
        "config": asdict(config),
        "version": version,
    }
    estimator = BestFindingScore(columns)
    model = TrainedModel(KIND, estimator, estimator, columns, config, report, baseline, version)
    return model, report
