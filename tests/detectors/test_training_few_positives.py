"""Training on a book with few positives: a stratified fallback, an honest refusal."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ringscope.detectors.risk.scoring import MIN_POSITIVES, TrainingConfig, train_models

# trains models or runs whole jobs end to end: in `make test`, not in `make test-fast`
pytestmark = pytest.mark.slow


def _book(positives_early: int, positives_late: int, n: int = 400, seed: int = 0):
    """``n`` labelled applications one a day; the positives sit in the first
    70% (``positives_early``) and the last 30% (``positives_late``) of time and
    have a higher ``det_shared_identifier_rings`` score than the rest."""
    rng = np.random.default_rng(seed)
    ids = [f"A{i:04d}" for i in range(n)]
    applied_at = pd.Series(pd.date_range("2025-01-01", periods=n, freq="D"), index=ids)
    cut = int(n * 0.7)
    bad = set(rng.choice(cut, positives_early, replace=False).tolist())
    bad |= set((cut + rng.choice(n - cut, positives_late, replace=False)).tolist())
    y = np.array([i in bad for i in range(n)])
    features = pd.DataFrame(
        {
            "log_amount": rng.normal(10, 1, n),
            "det_shared_identifier_rings": np.where(y, rng.uniform(0.5, 1, n), rng.uniform(0, 0.6, n)),
            "product": rng.choice(["consumer", "sme"], n),
            "channel": rng.choice(["app", "agent"], n),
        },
        index=ids,
    )
    labels = pd.Series(np.where(y, "fraud", "good"), index=ids)
    return features, labels, applied_at


def test_out_of_time_when_both_periods_hold_enough_positives():
    features, labels, applied_at = _book(positives_early=12, positives_late=6)
    _, report = train_models(features, labels, applied_at, TrainingConfig())
    assert report["validation"]["method"] == "out of time" and "why" not in report["validation"]
    assert report["validation"]["bad"] == 6 and report["train"]["to"] <= report["validation"]["from"]


def test_too_few_positives_after_the_cut_fall_back_to_stratified_folds():
    # 12 frauds, none in the latest 30%: out of time cannot validate, k-fold can
    features, labels, applied_at = _book(positives_early=12, positives_late=0)
    model, report = train_models(features, labels, applied_at, TrainingConfig())
    valid = report["validation"]
    assert valid["method"] == "stratified 5-fold"
    assert valid["n"] == 400 and valid["bad"] == 12  # validated on every labelled application, out of fold
    assert "holds 12 fraud outcomes before" in valid["why"] and "and 0 after" in valid["why"]
    assert len(report["_valid"]["y"]) == 400 and report["_valid"]["y"].sum() == 12
    # the out-of-fold scores still measure the signal, and the final model learned it
    assert report["models"][report["chosen"]]["all features"]["auc"] > 0.8
    scores = model.predict_proba(features)
    assert scores[labels.to_numpy() == "fraud"].mean() > 2 * scores[labels.to_numpy() == "good"].mean()


def test_below_the_minimum_train_refuses_and_says_how_many():
    features, labels, applied_at = _book(positives_early=5, positives_late=1)
    with pytest.raises(ValueError, match=rf"6 labelled fraud .* at least {MIN_POSITIVES} of each are needed") as err:
        train_models(features, labels, applied_at, TrainingConfig())
    assert "holds 5 fraud outcomes before" in str(err.value) and "and 1 after" in str(err.value)
