"""The boosted model's weighted bin edges in one pass: the same edges, the same model."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.ensemble._hist_gradient_boosting import binning

from ringscope.detectors.risk.binning import binning_thresholds, one_pass_binning

ORIGINAL = binning._find_binning_thresholds


def _column(rng, n: int, kind: str) -> np.ndarray:
    if kind == "continuous":
        x = rng.normal(0, 3, n)
    elif kind == "counts":  # mostly zero, long tail: many ties
        x = rng.poisson(0.3, n) * rng.integers(1, 30, n)
    elif kind == "few":
        x = rng.integers(0, 6, n)
    else:  # rounded: hundreds of distinct values with ties
        x = np.round(rng.lognormal(3, 1, n), 1)
    x = x.astype(float)
    x[rng.random(n) < 0.05] = np.nan
    return x


@pytest.mark.parametrize("kind", ["continuous", "counts", "few", "rounded"])
@pytest.mark.parametrize("weights", ["sampled", "zeros", "none"])
def test_one_pass_edges_equal_scikit_learns(kind, weights):
    rng = np.random.default_rng(len(kind) * 7 + len(weights))
    n = 6000
    x = _column(rng, n, kind)
    y = rng.random(n) < 0.1
    w = None if weights == "none" else np.where(y, 1.0, 3.48)
    if weights == "zeros":
        w[rng.random(n) < 0.1] = 0.0
    for max_bins in (255, 16):
        expected = ORIGINAL(x.copy(), max_bins, None if w is None else w.copy())
        got = binning_thresholds(x.copy(), max_bins, None if w is None else w.copy())
        np.testing.assert_array_equal(got, expected)


def test_a_weighted_boosted_fit_is_the_same_model():
    rng = np.random.default_rng(5)
    n = 5000
    X = np.column_stack([_column(rng, n, k) for k in ("continuous", "counts", "few", "rounded")])
    y = (np.nan_to_num(X[:, 0]) + rng.normal(0, 2, n) > 3).astype(int)
    w = np.where(y == 0, 2.81, 1.0)

    def fit():
        model = HistGradientBoostingClassifier(max_iter=30, max_leaf_nodes=15, random_state=0)
        return model.fit(X, y, sample_weight=w)

    plain = fit()
    with one_pass_binning():
        assert binning._find_binning_thresholds is binning_thresholds
        with one_pass_binning():  # nested: the inner end leaves the outer's in place
            pass
        assert binning._find_binning_thresholds is binning_thresholds
        fast = fit()
    assert binning._find_binning_thresholds is ORIGINAL
    for a, b in zip(plain._bin_mapper.bin_thresholds_, fast._bin_mapper.bin_thresholds_):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(plain.predict_proba(X), fast.predict_proba(X))
