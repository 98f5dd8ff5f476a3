"""Training on a sample of the honest outcomes: every positive kept, the other
outcomes drawn and weighted up, so the probabilities stay the book's own."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from ringscope.detectors.risk.scoring import TrainingConfig, honest_sample_rows, train_models

# trains models: in `make test`, not in `make test-fast`
pytestmark = pytest.mark.slow


def _book(n: int = 3000, rate: float = 0.04, seed: int = 3):
    """``n`` labelled applications, one an hour; about ``rate`` of them fraud,
    which a ring score and the amount separate imperfectly."""
    rng = np.random.default_rng(seed)
    ids = [f"A{i:05d}" for i in range(n)]
    y = rng.random(n) < rate
    features = pd.DataFrame(
        {
            "log_amount": rng.normal(10, 1, n) + 0.8 * y,
            "det_shared_identifier_rings": np.clip(rng.normal(0.2, 0.15, n) + 0.35 * y, 0, 1),
            "product": rng.choice(["consumer", "sme"], n),
            "channel": rng.choice(["app", "agent"], n),
        },
        index=ids,
    )
    labels = pd.Series(np.where(y, "fraud", "good"), index=ids)
    applied_at = pd.Series(pd.date_range("2025-01-01", periods=n, freq="h"), index=ids)
    return features, labels, applied_at


def test_sample_keeps_every_positive_and_weights_the_rest_back_to_the_whole():
    y = np.r_[np.ones(37, int), np.zeros(9000, int)]
    rows, weights = honest_sample_rows(y, 1500, seed=4)
    assert y[rows].sum() == 37 and (y[rows] == 0).sum() == 1500
    assert len(np.unique(rows)) == len(rows)
    assert weights[y[rows] == 0].sum() == pytest.approx(9000) and weights[y[rows] == 1].sum() == 37
    again, _ = honest_sample_rows(y, 1500, seed=4)
    assert np.array_equal(rows, again)  # the seed decides the draw


def test_probabilities_stay_calibrated_to_the_whole_book_when_sampled():
    features, labels, applied_at = _book()
    full_model, full = train_models(features, labels, applied_at, TrainingConfig())
    model, report = train_models(features, labels, applied_at, TrainingConfig(honest_sample=1000))
    negatives = int((labels == "good").sum())
    assert full["honest_sample"]["learned_from"] == negatives and full["honest_sample"]["weight"] == 1.0
    assert report["honest_sample"]["learned_from"] == 1000
    assert report["honest_sample"]["weight"] == pytest.approx(negatives / 1000)
    y = (labels == "fraud").to_numpy()
    scores = model.predict_proba(features)
    # unweighted, the sample's ~11% positives would push the mean score far above the book's 4%
    assert 0.6 * y.mean() < scores.mean() < 1.5 * y.mean()
    # the ranking keeps nearly all of its power
    assert roc_auc_score(y, scores) > roc_auc_score(y, full_model.predict_proba(features)) - 0.03
    valid = report["models"][report["chosen"]]["all features"]["auc"]
    assert valid > full["models"][full["chosen"]]["all features"]["auc"] - 0.03


def test_honest_sample_is_validated():
    with pytest.raises(ValueError, match="honest_sample"):
        TrainingConfig(honest_sample=10)
    with pytest.raises(ValueError, match="honest_sample"):
        TrainingConfig(honest_sample=2.5e5)  # type: ignore[arg-type]


def test_scorecard_bins_on_more_rows_than_their_subsample_are_the_same_every_fit():
    """KBinsDiscretizer fits its k-means on a random 200,000 rows of a bigger
    fit (the final model at 1M: every positive and 200,000 others): the draw is
    the model's seed, not numpy's global state, so two fits give one model."""
    from ringscope.detectors.risk.scoring import make_model

    rng = np.random.default_rng(5)
    X = pd.DataFrame({"x": np.round(rng.exponential(3, 200_500)), "product": "consumer"})
    edges = []
    for global_state in (1, 2):
        np.random.seed(global_state)  # what an unseeded subsample draws from
        prep = make_model("scorecard", ["x"], ["product"], seed=0).named_steps["prep"].fit(X)
        edges.append(prep.named_transformers_["num"].named_steps["bins"].bin_edges_[0])
    np.testing.assert_array_equal(edges[0], edges[1])


def test_negatives_follow_the_positives_between_a_floor_and_the_cap():
    from ringscope.detectors.risk.config import HONEST_SAMPLE_FLOOR, negatives_to_learn_from

    assert negatives_to_learn_from(4_941, 10, 200_000) == 49_410  # 200k book: a third of its negatives
    assert negatives_to_learn_from(25_000, 10, 200_000) == 200_000  # the cap still holds at 1M
    assert negatives_to_learn_from(30, 10, 200_000) == HONEST_SAMPLE_FLOOR  # small books: every row
    assert negatives_to_learn_from(30, 10, 1_000) == 1_000  # a cap below the floor wins
    with pytest.raises(ValueError, match="negatives_per_positive"):
        TrainingConfig(negatives_per_positive=0)


def test_every_fit_samples_by_the_positives_it_has(monkeypatch):
    """A book of 26,000 labelled applications, 1% fraud: every fit (validation,
    final, explainer) learns from all its positives and 10 other outcomes per
    positive, at least the floor, weighted back to the whole; before, the
    fits took every row up to 200,000."""
    import ringscope.detectors.risk.scoring as scoring
    from ringscope.detectors.risk.config import HONEST_SAMPLE_FLOOR

    features, labels, applied_at = _book(n=26_000, rate=0.01, seed=8)
    drawn = []
    real = scoring.honest_sample_rows

    def spy(y, limit, seed):
        rows, weights = real(y, limit, seed)
        drawn.append((int(y.sum()), int((y == 0).sum()), limit, int((y[rows] == 0).sum())))
        return rows, weights

    monkeypatch.setattr(scoring, "honest_sample_rows", spy)
    model, report = train_models(features, labels, applied_at, TrainingConfig())
    assert len(drawn) == 6  # four validation fits, the final model, its explainer
    for positives, negatives, limit, kept in drawn:
        assert limit == max(HONEST_SAMPLE_FLOOR, 10 * positives)
        assert kept == min(limit, negatives)  # the validation fits' first 70% hold fewer than the floor
    for _, negatives, _, kept in drawn[-2:]:  # the final model and its explainer: every labelled row
        assert kept == HONEST_SAMPLE_FLOOR < negatives
    sample = report["honest_sample"]
    assert sample["learned_from"] == HONEST_SAMPLE_FLOOR and sample["per_positive"] == 10
    assert sample["weight"] == pytest.approx(sample["negatives"] / HONEST_SAMPLE_FLOOR)
    y = (labels == "fraud").to_numpy()
    scores = model.predict_proba(features)
    assert 0.6 * y.mean() < scores.mean() < 1.5 * y.mean()  # the weights keep the book's own rate


def test_fit_threads_leave_busy_cores_alone(monkeypatch):
    """OpenMP threads that wait for cores other processes hold spin: the fits
    take the idle cores only, and all of them on an idle machine."""
    import os

    import threadpoolctl

    import ringscope.detectors.risk.scoring as scoring
    from ringscope.detectors.risk.scoring import fit_threads

    assert fit_threads(cores=2, load=13.0) == 1
    assert fit_threads(cores=2, load=0.4) == 2
    assert fit_threads(cores=16, load=6.0) == 11
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert fit_threads() is None  # the user's own setting stands
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr(os, "getloadavg", lambda: (40.0, 40.0, 40.0))
    seen = []
    real = scoring.make_model

    def spy(*args, **kwargs):
        seen.extend(p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "openmp")
        return real(*args, **kwargs)

    monkeypatch.setattr(scoring, "make_model", spy)
    features, labels, applied_at = _book(n=1500, rate=0.05, seed=2)
    train_models(features, labels, applied_at, TrainingConfig())
    assert seen and set(seen) == {1}


def test_scorecard_bins_do_not_depend_on_the_thread_limit():
    # the fits take the threads the machine's load leaves idle; k-means' edges
    # moved in the 15th digit between one and two threads, so the same data
    # trained another scorecard at another load
    from threadpoolctl import threadpool_limits

    from ringscope.detectors.risk.scoring import SerialKBins

    rng = np.random.default_rng(3)
    X = np.column_stack([rng.exponential(size=30_000), rng.poisson(0.3, size=30_000).astype(float)])
    edges = []
    for threads in (1, 2):
        with threadpool_limits(limits=threads):
            bins = SerialKBins(n_bins=5, encode="ordinal", strategy="kmeans", random_state=0).fit(X)
        edges.append(np.concatenate(bins.bin_edges_.ravel()))
    assert np.array_equal(edges[0], edges[1])


def test_each_fit_is_calibrated_over_two_folds():
    """Two members, each learning from half of the rows and calibrated on the
    other half, cost one fit on every row (three folds cost two)."""
    from ringscope.detectors.risk.config import CALIBRATION_FOLDS

    features, labels, applied_at = _book()
    model, _ = train_models(features, labels, applied_at, TrainingConfig())
    assert CALIBRATION_FOLDS == 2
    assert len(model.estimator.calibrated_classifiers_) == 2
    compiled = model.compiled(features)  # the numpy scorecard averages the same two members
    assert compiled is not None and len(compiled.members) == 2
    assert np.allclose(compiled.predict_proba(features), model.estimator.predict_proba(features)[:, 1])


def test_folds_side_by_side_train_the_same_model_as_one_after_another(monkeypatch):
    """On idle cores a calibrated fit's folds run at once, each on one OpenMP
    thread: the model, its validation figures and its scores are the ones the
    folds give one after another, and the folds did run side by side."""
    import threading

    from sklearn.linear_model import LogisticRegression

    import ringscope.detectors.risk.scoring as scoring

    features, labels, applied_at = _book(n=2500, rate=0.05, seed=5)
    real_fit = LogisticRegression.fit
    runs = {}
    for threads in (1, 2):
        monkeypatch.setattr(scoring, "fit_threads", lambda threads=threads: threads)
        fitting_threads: set[str] = set()

        def noting_fit(self, *args, _seen=fitting_threads, **kwargs):
            _seen.add(threading.current_thread().name)
            return real_fit(self, *args, **kwargs)

        monkeypatch.setattr(LogisticRegression, "fit", noting_fit)
        model, report = train_models(features, labels, applied_at, TrainingConfig())
        runs[threads] = (model, report, fitting_threads)
    monkeypatch.setattr(LogisticRegression, "fit", real_fit)
    (one, one_report, one_threads), (two, two_report, two_threads) = runs[1], runs[2]
    assert one_threads == {threading.main_thread().name}
    # the scorecard's folds were fitted in worker threads (the explainer stays on the main one)
    assert len(two_threads - {threading.main_thread().name}) >= 2
    assert one_report["models"] == two_report["models"]
    np.testing.assert_array_equal(one.predict_proba(features), two.predict_proba(features))
