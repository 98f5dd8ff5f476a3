"""The boosted model's bin edges with weights, in one pass per feature.

scikit-learn's ``HistGradientBoostingClassifier`` finds the bin edges of a
weighted fit (the fits weigh their sampled negatives, ``honest_sample_rows``)
by calling ``_weighted_percentile`` once per edge: 254 calls per feature, each
sorting the feature again. ``_weighted_percentile`` takes all the percentiles
in one call and computes each of them exactly as a call of its own would (the
same sort, the same cumulative weights, a loop over the percentiles), so
:func:`one_pass_binning` has the edges found that way while the risk model's
fits run: the same edges, hence the same model, for one sort per feature
instead of 254 (at 200k applications 10 of the fits' 41 s of CPU went there).

Only the scikit-learn releases whose ``_find_binning_thresholds`` this module
reproduces are patched (:data:`CHECKED_RELEASES`); on any other the fits run
unchanged. ``tests/detectors/test_binning.py`` compares both on weighted
data with ties, missing values and zero weights, and a whole fit's scores.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import numpy as np

__all__ = ["one_pass_binning", "binning_thresholds", "CHECKED_RELEASES"]

#: scikit-learn releases whose ``binning._find_binning_thresholds`` is the one reproduced here
CHECKED_RELEASES = ("1.9.",)

_lock = threading.Lock()
_active = 0


def binning_thresholds(col_data: np.ndarray, max_bins: int, sample_weight: np.ndarray | None = None) -> np.ndarray:
    """``sklearn.ensemble._hist_gradient_boosting.binning._find_binning_thresholds``
    (scikit-learn 1.9) with the weighted percentiles computed in one call.

    Example
    -------
    >>> binning_thresholds(np.array([1.0, 2.0, 2.0, 5.0]), 255).tolist()
    [1.5, 3.5]
    """
    from sklearn.ensemble._hist_gradient_boosting.binning import ALMOST_INF, X_DTYPE, sliding_window_view
    from sklearn.utils.stats import _weighted_percentile

    missing_mask = np.isnan(col_data)
    any_missing = missing_mask.any()
    if any_missing:
        col_data = col_data[~missing_mask]
    if sample_weight is not None:
        if any_missing:
            sample_weight = sample_weight[~missing_mask]
        nnz_sw = sample_weight != 0
        col_data = col_data[nnz_sw]
        sample_weight = sample_weight[nnz_sw]
    sort_idx = np.argsort(col_data)
    col_data = col_data[sort_idx]
    if sample_weight is not None:
        sample_weight = sample_weight[sort_idx]
    distinct_values = np.unique(col_data).astype(X_DTYPE)
    if len(distinct_values) == 1:
        return np.asarray([])
    if len(distinct_values) <= max_bins:
        bin_thresholds = sliding_window_view(distinct_values, 2).mean(axis=1)
    elif sample_weight is None:
        percentiles = np.linspace(0, 100, num=max_bins + 1)[1:-1]
        bin_thresholds = np.percentile(col_data, percentiles, method="averaged_inverted_cdf")
    else:
        percentiles = np.linspace(0, 100, num=max_bins + 1)[1:-1]
        # the one change: every percentile in one call (scikit-learn calls once per percentile)
        bin_thresholds = np.asarray(_weighted_percentile(col_data, sample_weight, percentiles, average=True))
    unique_bin_values = np.unique(bin_thresholds)
    if unique_bin_values.shape[0] != bin_thresholds.shape[0]:
        bin_thresholds = unique_bin_values
    np.clip(bin_thresholds, a_min=None, a_max=ALMOST_INF, out=bin_thresholds)
    return bin_thresholds


@contextlib.contextmanager
def one_pass_binning() -> Iterator[None]:
    """Within the block, boosted fits find their weighted bin edges with
    :func:`binning_thresholds` (same edges, one sort per feature). Nested
    and concurrent blocks are safe: the original comes back when the last
    one ends. Does nothing on a scikit-learn release not in
    :data:`CHECKED_RELEASES`."""
    global _active
    import sklearn
    from sklearn.ensemble._hist_gradient_boosting import binning

    if not sklearn.__version__.startswith(CHECKED_RELEASES):
        yield
        return
    with _lock:
        if _active == 0:
            _original[0] = binning._find_binning_thresholds
            binning._find_binning_thresholds = binning_thresholds
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0:
                binning._find_binning_thresholds = _original[0]


_original: list = [None]
