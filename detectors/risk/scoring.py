"""The explainable risk model: training, out-of-time validation, reasons.

Two scikit-learn pipelines are built by one factory (:func:`make_model`):

* ``scorecard`` — k-means bins of every numeric feature, one-hot, and a
  logistic regression: each feature's contribution to the log-odds is exact,
  which is what a credit committee can read;
* ``gbm`` — histogram gradient boosting on the raw features.

Both are calibrated (``CalibratedClassifierCV``), validated out of time (the
latest ``validation_share`` of labelled applications; when that slice or the
period before it holds too few positives, by stratified k-fold over the whole
labelled history instead, and the report says so), and compared with the
same model trained without graph and finding features (the uplift). The
scorecard is kept unless the boosted model beats it by more than
``prefer_scorecard_within`` AUC: explanations exact to the model are worth a
little accuracy to investigators.
"""

from __future__ import annotations

import bisect
import logging
import warnings
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from joblib import parallel_config
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score, roc_curve
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import KBinsDiscretizer, OneHotEncoder, OrdinalEncoder
from threadpoolctl import threadpool_limits

from ringscope.detectors.risk.config import (
    CALIBRATION_FOLDS,
    FALLBACK_FOLDS,
    HONEST_SAMPLE_FLOOR,
    MIN_POSITIVES,
    OUT_OF_TIME_MINIMUM,
    TARGETS,
    TooFewOutcomes,
    TrainingConfig,
    fit_threads,
    negatives_to_learn_from,
)
from ringscope.detectors.risk.features import CATEGORICAL, feature_groups
from ringscope.detectors.risk.findings_only import KIND as FINDINGS_ONLY
from ringscope.detectors.risk.findings_only import findings_contributions

__all__ = [
    "TARGETS",
    "TrainingConfig",
    "MIN_POSITIVES",
    "OUT_OF_TIME_MINIMUM",
    "TooFewOutcomes",
    "TrainedModel",
    "make_model",
    "train_models",
    "honest_sample_rows",
    "fit_threads",
    "ks_statistic",
    "precision_at_k",
    "contributions",
    "save_model",
    "load_model",
    "models_folder",
    "target_folder",
]

log = logging.getLogger(__name__)


#: :attr:`TrainedModel._compiled` before :meth:`TrainedModel.compiled` built it
_UNBUILT: Any = type("_Unbuilt", (), {"__repr__": lambda self: "<not built>"})()


@dataclass
class TrainedModel:
    """A fitted, calibrated model with what it needs to score and explain."""

    kind: str
    estimator: Any  # CalibratedClassifierCV over a Pipeline
    explainer: Pipeline  # the uncalibrated pipeline fitted on all labelled rows (for reasons)
    features: list[str]
    config: TrainingConfig
    report: dict[str, Any] = field(default_factory=dict)
    baseline: pd.Series | None = None  # typical feature values (occlusion reference)
    version: str = ""
    #: the compiled scorecard, built by :meth:`compiled` on first use (not pickled)
    _compiled: Any = field(default=_UNBUILT, init=False, repr=False, compare=False)

    @property
    def target(self) -> str:
        """What the model predicts (``fraud``, ``default``). A model saved
        before targets existed is named by the labels it learned
        (``fraud+default``): it is not a fraud score."""
        state = self.config.__dict__  # an old pickle has no target field: read what it holds
        if "target" in state:
            return state["target"]
        labels = tuple(state.get("bad_labels", ()))
        named = [name for name, wanted in TARGETS.items() if wanted == labels]
        return named[0] if named else "+".join(labels) or "unknown"

    @property
    def known_bad(self) -> tuple[str, ...]:
        """Labels that make an earlier application "known bad" in this
        model's graph features: its target's positives, so that a fraud model
        never counts a neighbour who merely defaulted."""
        return TARGETS.get(self.target) or tuple(self.config.__dict__.get("bad_labels", ()))

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """The calibrated probability of the target for each row of ``X`` (1-D,
        the positive class only, unlike scikit-learn's two columns)."""
        compiled = self.compiled(X)
        if compiled is not None:
            return compiled.predict_proba(X)
        return self.estimator.predict_proba(X[self.features])[:, 1]

    def compiled(self, sample: pd.DataFrame | None = None):
        """The numpy form of a scorecard (checked against sklearn on ``sample``
        the first time), or None for the boosted model."""
        if self._compiled is _UNBUILT:
            if sample is None:
                return None
            self._compiled = compile_scorecard(self, sample.iloc[:200])
        return self._compiled

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_compiled", None)  # rebuilt and re-checked after loading (the class default says so)
        if isinstance(state.get("report"), dict):
            # the report's private parts (validation ids and scores, ROC points: 8 MB of text at 1M)
            # serve this training's comparison and plots only; report.json leaves them out too
            state["report"] = {k: v for k, v in state["report"].items() if not str(k).startswith("_")}
        return state

    @property
    def default_decline(self) -> float:
        """The score from which this model declines unless told otherwise: the
        configured threshold, or never (infinity) for a findings-only model."""
        return np.inf if self.kind == FINDINGS_ONLY else self.config.decline_threshold

    def decide(self, scores: np.ndarray, review: float | None = None, decline: float | None = None) -> np.ndarray:
        """pass / review / decline by the thresholds (the model's own unless
        given). A findings-only model declines nothing unless ``decline`` is
        given: it learned from no outcome, so no decline was calibrated."""
        review = self.config.review_threshold if review is None else review
        decline = self.default_decline if decline is None else decline
        return np.where(scores >= decline, "decline", np.where(scores >= review, "review", "pass"))


class SerialKBins(KBinsDiscretizer):
    """k-means bins fitted on one thread, whatever the fit's thread limit.

    The fits take as many threads as the machine's load leaves idle
    (:func:`fit_threads`), and k-means' edges move in the 15th digit with
    the number of threads: the same data would train a different
    scorecard at another load. One thread keeps a training reproducible
    on a machine (and costs little: these fits are small next to the
    boosted model's).
    """

    def fit(self, X, y=None, sample_weight=None):
        with threadpool_limits(limits=1):
            return super().fit(X, y, sample_weight=sample_weight)


def make_model(kind: str, numeric: list[str], categorical: list[str], seed: int = 0) -> Pipeline:
    """The one factory for both pipelines.

    Example
    -------
    >>> make_model("scorecard", ["a"], ["b"]).steps[-1][0]
    'model'
    """
    if kind == "scorecard":
        prep = ColumnTransformer(
            [
                (
                    "num",
                    Pipeline(
                        [
                            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                            # k-means bins: most graph counts are zero for most
                            # applicants, which quantile bins collapse into one
                            # k-means bins fit on a random 200,000 rows of a bigger fit: seeded,
                            # else the bins (and the model) changed from run to run at 1M
                            (
                                "bins",
                                SerialKBins(n_bins=5, encode="onehot", strategy="kmeans", random_state=seed),
                            ),
                        ]
                    ),
                    numeric,
                ),
                ("cat", OneHotEncoder(handle_unknown="ignore", min_frequency=20), categorical),
            ]
        )
        model = LogisticRegression(C=0.5, max_iter=2000)
    elif kind == "gbm":
        prep = ColumnTransformer(
            [
                ("num", "passthrough", numeric),
                (
                    "cat",
                    OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1),
                    categorical,
                ),
            ]
        )
        model = HistGradientBoostingClassifier(
            max_iter=200, learning_rate=0.08, max_leaf_nodes=15, l2_regularization=1.0, random_state=seed
        )
    else:
        raise ValueError(f"Unknown model kind {kind!r}; use 'scorecard' or 'gbm'")
    return Pipeline([("prep", prep), ("model", model)])


def ks_statistic(y: np.ndarray, scores: np.ndarray) -> float:
    """Kolmogorov–Smirnov distance between bad and good score distributions.

    Example
    -------
    >>> ks_statistic(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9]))
    1.0
    """
    fpr, tpr, _ = roc_curve(y, scores)
    return float(np.max(tpr - fpr))


def precision_at_k(y: np.ndarray, scores: np.ndarray, k: int) -> float:
    """Share of bad among the ``k`` highest scores (what reviewers would see).

    Example
    -------
    >>> precision_at_k(np.array([1, 0, 1, 0]), np.array([0.9, 0.8, 0.7, 0.1]), 2)
    0.5
    """
    if k <= 0:
        return float("nan")
    order = np.argsort(-scores, kind="stable")[:k]
    return float(np.mean(y[order]))


def _calibrated(kind: str, numeric: list[str], categorical: list[str], seed: int, positives: int, jobs: int = 1):
    method = "isotonic" if positives >= 1000 else "sigmoid"
    model = make_model(kind, numeric, categorical, seed)
    return CalibratedClassifierCV(model, method=method, cv=CALIBRATION_FOLDS, n_jobs=jobs if jobs > 1 else None)


def fold_jobs(threads: int | None) -> tuple[int, int | None]:
    """How a calibrated fit uses the threads it may take: how many of its
    folds are fitted at once, and the OpenMP threads each fold may use.

    The folds are independent fits, each mostly single-threaded Python and
    numpy (the scorecard's bins and solver, the pipelines' transforms); only
    the boosted model's histograms run OpenMP threads. Two folds side by side
    keep two cores busy where one fold with two OpenMP threads keeps one and
    a half busy at best. Folds side by side take one OpenMP thread each: the
    scorecard's k-means bins set the process-wide limit to one and back while
    they fit (:class:`SerialKBins`), and a fold beside them must not change
    that limit under them. With no limit (``OMP_NUM_THREADS`` set: the user
    decides) the folds run one after another.

    Example
    -------
    >>> fold_jobs(1), fold_jobs(2), fold_jobs(8), fold_jobs(None)
    ((1, 1), (2, 1), (2, 1), (1, None))
    """
    if threads is None:
        return 1, None
    jobs = max(1, min(CALIBRATION_FOLDS, threads))
    return jobs, 1 if jobs > 1 else threads


def _split_columns(features: pd.DataFrame) -> tuple[list[str], list[str]]:
    categorical = [c for c in features.columns if c in CATEGORICAL]
    numeric = [c for c in features.columns if c not in categorical]
    return numeric, categorical


def train_models(
    features: pd.DataFrame,
    labels: pd.Series,
    applied_at: pd.Series,
    config: TrainingConfig = TrainingConfig(),
    progress=None,
) -> tuple[TrainedModel, dict]:
    """Fit, validate out of time, and return the chosen model and its report.

    Parameters
    ----------
    features : DataFrame
        Index application_id (``application_features``).
    labels : Series
        application_id → outcome label (``fraud``, ``default``, ``good``);
        those in ``config.bad_labels`` are the positives, unknown outcomes
        are left out of training (``risk.target_outcomes`` prepares them).
    applied_at : Series
        application_id → time, for the out-of-time split.
    """
    known = labels.reindex(features.index)
    known = known[known.notna() & (known.astype(str) != "")]
    # an application whose time was read as missing cannot be placed before or after the cut
    known = known[applied_at.reindex(known.index).notna().to_numpy()]
    if known.empty:
        raise TooFewOutcomes("No labelled applications: training needs outcomes (label column or case verdicts).")
    y_all = known.isin(config.bad_labels).astype(int)
    if y_all.nunique() < 2:
        raise TooFewOutcomes(
            f"Training the {config.target} model needs both {config.target} and other outcomes "
            "among the labelled applications."
        )
    split = _validation_split(y_all, applied_at, config)
    jobs, threads = fold_jobs(fit_threads())
    # folds side by side run in threads: the fits release the GIL in their numeric
    # work, and threads share the feature frame where processes would each copy it
    with warnings.catch_warnings(), threadpool_limits(limits=threads), parallel_config(backend="threading"):
        # constant columns and collapsed bins are expected on small portfolios
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        return _train(features, y_all, known, applied_at, config, progress, split, jobs)


@dataclass
class _Split:
    """How the model is validated: ``out of time`` (one train/validation cut)
    or ``stratified k-fold`` (``folds`` over the whole labelled history)."""

    method: str
    order: pd.Index  # labelled applications, oldest first
    train_ids: pd.Index  # out of time only
    valid_ids: pd.Index
    folds: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)  # positions in ``order``
    why: str = ""
    #: out of time: the rows of the training and the validation applications in the fits' frame
    #: (:meth:`locate`), found once for the four validation fits
    train_rows: np.ndarray | None = None
    valid_rows: np.ndarray | None = None

    def locate(self, index: pd.Index) -> None:
        """Find :attr:`train_ids` and :attr:`valid_ids` in ``index`` (the
        fits' frame): the training rows ascending, the validation ones in
        their order. By hash lookup: ``Index.isin`` on Arrow-backed text
        builds its value set in Python (3.5 s of CPU for the four validation
        fits at 200k), and finding them for each fit cost ~0.4 s at 1M."""
        if self.folds:
            return
        chosen = np.zeros(len(index), dtype=bool)
        at = index.get_indexer(self.train_ids)
        chosen[at[at >= 0]] = True
        self.train_rows = np.flatnonzero(chosen)
        self.valid_rows = index.get_indexer(self.valid_ids)


def _validation_split(y_all: pd.Series, applied_at: pd.Series, config: TrainingConfig) -> _Split:
    """Out of time when both periods hold enough positives, else stratified
    k-fold over every labelled application; refuse below :data:`MIN_POSITIVES`."""
    order = applied_at.reindex(y_all.index).sort_values(kind="stable").index
    cut = int(len(order) * (1 - config.validation_share))
    train_ids, valid_ids = order[:cut], order[cut:]
    in_train, in_valid = int(y_all.loc[train_ids].sum()), int(y_all.loc[valid_ids].sum())
    need_train, need_valid = OUT_OF_TIME_MINIMUM
    if in_train >= need_train and in_valid >= need_valid:
        return _Split("out of time", order, train_ids, valid_ids)
    positives, negatives = int(y_all.sum()), int(len(y_all) - y_all.sum())
    oot = (
        f"the out-of-time split holds {in_train} {config.target} outcomes before "
        f"{applied_at[valid_ids].min()} and {in_valid} after (it needs {need_train} and {need_valid})"
    )
    if positives < MIN_POSITIVES or negatives < MIN_POSITIVES:
        raise TooFewOutcomes(
            f"Too few {config.target} outcomes to train: {positives} labelled {config.target} and "
            f"{negatives} other labelled applications; at least {MIN_POSITIVES} of each are needed "
            f"({oot}). Label more of the history"
            + (" or record confirmed-fraud case verdicts." if config.target == "fraud" else ".")
        )
    y = y_all.loc[order].to_numpy()
    folds = StratifiedKFold(FALLBACK_FOLDS, shuffle=True, random_state=config.seed).split(np.zeros(len(y)), y)
    return _Split(f"stratified {FALLBACK_FOLDS}-fold", order, order, order, list(folds), why=oot)


def _train(features, y_all, known, applied_at, config, progress, split: _Split, jobs: int = 1):
    order, train_ids, valid_ids = split.order, split.train_ids, split.valid_ids
    X = features.loc[order].copy()
    y = y_all.loc[order].to_numpy()
    y_train, y_valid = y_all.loc[train_ids].to_numpy(), y_all.loc[valid_ids].to_numpy()
    numeric, categorical = _split_columns(features)
    for col in numeric:  # a feature no application has (no birth dates, say) is constant, not missing
        X[col] = pd.to_numeric(X[col], errors="coerce").astype(float)
        X[col] = X[col].where(np.isfinite(X[col]))  # an infinite ratio is as unknown as a missing one
        if X[col].isna().all():
            X[col] = 0.0
    split.locate(X.index)  # once for the four validation fits
    groups = feature_groups(features.columns)
    own_numeric = [c for c in numeric if c in groups["own"]]
    k = max(1, int(round(len(valid_ids) * config.review_capacity)))
    report: dict[str, Any] = {
        "trained_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "target": config.target,
        "positive_labels": list(config.bad_labels),
        "labelled": int(len(known)),
        "bad": int(y.sum()),
        "train": {
            "n": int(len(train_ids)),
            "bad": int(y_train.sum()),
            "from": str(applied_at[train_ids].min()),
            "to": str(applied_at[train_ids].max()),
        },
        "validation": {
            "method": split.method,
            "n": int(len(valid_ids)),
            "bad": int(y_valid.sum()),
            "from": str(applied_at[valid_ids].min()),
            "to": str(applied_at[valid_ids].max()),
            **({"why": split.why} if split.why else {}),
        },
        "review_capacity_k": k,
        "models": {},
        "config": asdict(config),
    }
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    valid_scores: dict[str, np.ndarray] = {}
    for i, kind in enumerate(("scorecard", "gbm")):
        if progress:
            progress(f"train {kind}", i, 2)
        for variant, cols in (("all features", (numeric, categorical)), ("without graph", (own_numeric, categorical))):
            scores = _validation_scores(X[cols[0] + cols[1]], y, split, kind, cols, config, jobs)
            metrics = {
                "auc": float(roc_auc_score(y_valid, scores)),
                "ks": ks_statistic(y_valid, scores),
                "precision_at_k": precision_at_k(y_valid, scores, k),
            }
            report["models"].setdefault(kind, {})[variant] = metrics
            if variant == "all features":
                fpr, tpr, _ = roc_curve(y_valid, scores)
                curves[kind] = (fpr, tpr)
                valid_scores[kind] = scores
        m = report["models"][kind]
        m["uplift_auc"] = m["all features"]["auc"] - m["without graph"]["auc"]
        m["uplift_precision_at_k"] = m["all features"]["precision_at_k"] - m["without graph"]["precision_at_k"]
    sc, gb = (report["models"][k_]["all features"]["auc"] for k_ in ("scorecard", "gbm"))
    chosen = "gbm" if gb > sc + config.prefer_scorecard_within else "scorecard"
    report["chosen"] = chosen
    if progress:
        progress(f"train final {chosen}", 2, 2)
    every = np.arange(len(y))
    final = _fit_calibrated(chosen, (numeric, categorical), X, y, every, config, jobs)
    limit = _sample_limit(y, config)
    rows, weights = honest_sample_rows(y, limit, config.seed)
    explainer = make_model(chosen, numeric, categorical, config.seed).fit(
        X[numeric + categorical].iloc[rows], y[rows], **({} if weights is None else {"model__sample_weight": weights})
    )
    report["honest_sample"] = {
        "limit": limit,
        "cap": config.honest_sample,
        "per_positive": config.negatives_per_positive,
        "floor": HONEST_SAMPLE_FLOOR,
        "negatives": int((y == 0).sum()),
        "learned_from": int((y[rows] == 0).sum()),
        "weight": 1.0 if weights is None else float(weights.max()),
    }
    baseline = _baseline(X[numeric + categorical], numeric)
    version = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + config.digest()
    model = TrainedModel(chosen, final, explainer, numeric + categorical, config, report, baseline, version)
    report["version"] = version
    report["_curves"] = curves
    report["_valid"] = {"y": y_valid, "scores": valid_scores, "ids": list(valid_ids)}
    return model, report


def _validation_scores(
    X: pd.DataFrame,
    y: np.ndarray,
    split: _Split,
    kind: str,
    cols: tuple[list[str], list[str]],
    config: TrainingConfig,
    jobs: int = 1,
) -> np.ndarray:
    """Scores of the validation applications (``split.valid_ids``, in that
    order): one fit on the training period, or out-of-fold over k folds."""
    if not split.folds:
        if split.train_rows is None:
            split.locate(X.index)
        est = _fit_calibrated(kind, cols, X, y, split.train_rows, config, jobs)
        return est.predict_proba(X.iloc[split.valid_rows])[:, 1]  # X.loc[split.valid_ids]
    scores = np.empty(len(X))
    for fit_rows, valid_rows in split.folds:
        est = _fit_calibrated(kind, cols, X, y, fit_rows, config, jobs)
        scores[valid_rows] = est.predict_proba(X.iloc[valid_rows])[:, 1]
    return scores


def honest_sample_rows(y: np.ndarray, limit: int, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """The rows one fit learns from, and their weights.

    Every positive is kept. When there are more than ``limit`` negatives,
    ``limit`` of them are drawn uniformly (``seed``) and each weighs
    ``negatives / limit``, so the weighted sample has the book's own mix of
    outcomes: the fit and its calibration estimate the same probabilities as
    on every row, at a cost that stops growing with the book. Below the limit
    nothing is drawn and the weights are ``None`` (the fit is unchanged).

    Example
    -------
    >>> y = np.array([1] * 10 + [0] * 5000)
    >>> rows, weights = honest_sample_rows(y, 1000, seed=0)
    >>> len(rows), int(y[rows].sum()), float(weights[y[rows] == 0][0]), float(weights.sum())
    (1010, 10, 5.0, 5010.0)
    >>> honest_sample_rows(y, 10_000, seed=0)[1] is None
    True
    """
    negatives = np.flatnonzero(y == 0)
    if len(negatives) <= limit:
        return np.arange(len(y)), None
    drawn = np.random.default_rng(seed).choice(negatives, size=limit, replace=False)
    rows = np.sort(np.concatenate([np.flatnonzero(y != 0), drawn]))
    weights = np.where(y[rows] == 0, len(negatives) / limit, 1.0)
    return rows, weights


def _sample_limit(y: np.ndarray, config: TrainingConfig) -> int:
    """The negatives a fit on outcomes ``y`` learns from (:func:`negatives_to_learn_from`)."""
    return negatives_to_learn_from(int((y != 0).sum()), config.negatives_per_positive, config.honest_sample)


def _fit_calibrated(
    kind, cols, X: pd.DataFrame, y: np.ndarray, rows: np.ndarray, config: TrainingConfig, jobs: int = 1
):
    """A calibrated model of ``kind`` fitted on ``rows`` of ``X``, its negatives
    sampled by the positives these rows hold (:func:`honest_sample_rows`,
    :func:`_sample_limit`): the weights reach both the model
    (``model__sample_weight``, through the pipeline) and the calibration."""
    seed = config.seed
    picked, weights = honest_sample_rows(y[rows], _sample_limit(y[rows], config), seed)
    rows = rows[picked]
    est = _calibrated(kind, cols[0], cols[1], seed, int(y[rows].sum()), jobs)
    weighted = {} if weights is None else {"sample_weight": weights, "model__sample_weight": weights}
    return est.fit(X[cols[0] + cols[1]].iloc[rows], y[rows], **weighted)


def _baseline(X: pd.DataFrame, numeric: list[str]) -> pd.Series:
    """The typical applicant: medians of numeric features, modes of categories."""
    values = {}
    for col in X.columns:
        if col in numeric:
            values[col] = float(X[col].median()) if X[col].notna().any() else 0.0
        else:
            values[col] = X[col].mode().iloc[0] if X[col].notna().any() else "(none)"
    return pd.Series(values, dtype=object)


def contributions(model: TrainedModel, X: pd.DataFrame) -> pd.DataFrame:
    """Each feature's contribution to each application's log-odds, relative to
    the typical applicant (rows: applications, columns: features).

    Scorecard: exact per-feature sums of coefficients over the feature's
    one-hot bins, minus the same for the typical applicant. Boosted model:
    occlusion — the change in log-odds when the feature alone is set back to
    the typical value (one stacked prediction for the whole batch).
    """
    X = X[model.features]
    if model.kind == FINDINGS_ONLY:  # no log-odds: each finding's own score (findings_only)
        return pd.DataFrame(
            findings_contributions(model.estimator, X, model.features), index=X.index, columns=model.features
        )
    compiled = model.compiled(X)
    if compiled is not None:
        return pd.DataFrame(compiled.contributions(X), index=X.index, columns=model.features)
    pipe = model.explainer
    base = pd.DataFrame([model.baseline[model.features].to_dict()]).astype(X.dtypes.to_dict(), errors="ignore")
    if model.kind == "scorecard":
        prep, lr = pipe.named_steps["prep"], pipe.named_steps["model"]
        coef = lr.coef_[0]
        owners = _output_owners(prep, model.features)

        def per_feature(frame: pd.DataFrame) -> np.ndarray:
            z = prep.transform(frame)
            z = z.toarray() if hasattr(z, "toarray") else np.asarray(z)
            weighted = z * coef
            out = np.zeros((len(frame), len(model.features)))
            for j, owner in enumerate(owners):
                out[:, owner] += weighted[:, j]
            return out

        values = per_feature(X) - per_feature(base)
        return pd.DataFrame(values, index=X.index, columns=model.features)
    # gbm: occlusion, stacked into one predict call
    n, f = len(X), len(model.features)
    stacked = pd.concat([X] * (f + 1), ignore_index=True)
    for j, col in enumerate(model.features):
        stacked.loc[(j + 1) * n : (j + 2) * n - 1, col] = base[col].iloc[0]
    logit = pipe.decision_function(stacked) if hasattr(pipe, "decision_function") else None
    if logit is None:
        p = np.clip(pipe.predict_proba(stacked)[:, 1], 1e-9, 1 - 1e-9)
        logit = np.log(p / (1 - p))
    full = logit[:n]
    values = np.column_stack([full - logit[(j + 1) * n : (j + 2) * n] for j in range(f)])
    return pd.DataFrame(values, index=X.index, columns=model.features)


def _output_owners(prep: ColumnTransformer, features: list[str]) -> list[int]:
    """For each transformed column, the index of the input feature it came from."""
    owners: list[int] = []
    position = {c: i for i, c in enumerate(features)}
    for name, transformer, cols in prep.transformers_:
        if name == "remainder" or transformer == "drop":
            continue
        if name == "num":
            bins = transformer.named_steps["bins"]
            for col, n_bins in zip(cols, bins.n_bins_):
                owners.extend([position[col]] * int(n_bins))
        else:
            for col, cats in zip(cols, transformer.categories_):
                kept = len(cats)
                infrequent = getattr(transformer, "infrequent_categories_", None)
                if infrequent is not None:
                    inf = infrequent[list(cols).index(col)]
                    if inf is not None:
                        kept = len(cats) - len(inf) + 1
                owners.extend([position[col]] * kept)
    return owners


# -- compiled scorecard: the same numbers without sklearn's per-call overhead --------


class _CompiledLinear:
    """One fitted scorecard pipeline as lookup tables: per numeric feature the
    imputation value, bin edges and one coefficient per bin; per categorical
    feature a coefficient per category (infrequent and unknown handled as
    sklearn does). ``logits`` and ``parts`` reproduce ``decision_function``
    and the per-feature terms exactly."""

    def __init__(self, pipe: Pipeline, features: list[str]) -> None:
        prep, lr = pipe.named_steps["prep"], pipe.named_steps["model"]
        coef = lr.coef_[0]
        self.intercept = float(lr.intercept_[0])
        self.numeric: list[tuple[int, float, np.ndarray, np.ndarray]] = []
        self.categorical: list[tuple[int, dict, float]] = []
        col = 0
        position = {c: i for i, c in enumerate(features)}
        for name, transformer, cols in prep.transformers_:
            if name == "num":
                imputer, bins = transformer.named_steps["impute"], transformer.named_steps["bins"]
                for j, c in enumerate(cols):
                    n = int(bins.n_bins_[j])
                    self.numeric.append(
                        (
                            position[c],
                            float(imputer.statistics_[j]),
                            bins.bin_edges_[j][1:-1],
                            coef[col : col + n].copy(),
                        )
                    )
                    col += n
            elif name == "cat":
                for j, c in enumerate(cols):
                    cats = list(transformer.categories_[j])
                    infrequent = (
                        transformer.infrequent_categories_[j]
                        if hasattr(transformer, "infrequent_categories_")
                        else None
                    )
                    infrequent = set(infrequent) if infrequent is not None else set()
                    table, k = {}, 0
                    for cat in cats:
                        if cat not in infrequent:
                            table[cat] = float(coef[col + k])
                            k += 1
                    other = 0.0
                    if infrequent:
                        other = float(coef[col + k])
                        for cat in infrequent:
                            table[cat] = other
                        k += 1
                    self.categorical.append((position[c], table, 0.0))  # unknown: all zeros
                    col += k
        if col != len(coef):
            raise ValueError("scorecard layout not understood")
        self.n_features = len(features)
        # bisect on lists: searchsorted's call costs more than the search, one row at a time
        self._edge_lists = [edges.tolist() for _, _, edges, _ in self.numeric]

    def parts(self, X: pd.DataFrame | _Columns) -> np.ndarray:
        columns = X if isinstance(X, _Columns) else _Columns(X)
        out = np.zeros((columns.n, self.n_features))
        for pos, fill, edges, weights in self.numeric:
            x = columns.numeric(pos)
            x = np.where(np.isnan(x), fill, x)
            out[:, pos] = weights[np.searchsorted(edges, x, side="right")]
        for pos, table, unknown in self.categorical:
            values, inverse = columns.categories(pos)
            out[:, pos] = np.array([table.get(v, unknown) for v in values], dtype=float)[inverse]
        return out

    def logits(self, X: pd.DataFrame | _Columns) -> np.ndarray:
        return self.intercept + self.parts(X).sum(axis=1)

    def parts_one(self, row: list) -> np.ndarray:
        """:meth:`parts` of one row given as a list in feature order, shape (1, n)."""
        out = np.zeros((1, self.n_features))
        for (pos, fill, _, weights), edges in zip(self.numeric, self._edge_lists):
            x = row[pos]
            x = float(x) if x is not None and not pd.isna(x) else fill
            out[0, pos] = weights[bisect.bisect_right(edges, x)]
        for pos, table, unknown in self.categorical:
            out[0, pos] = table.get(row[pos], unknown)
        return out


class _Columns:
    """The columns of a feature frame as :meth:`_CompiledLinear.parts` reads
    them, converted once and shared by the calibrated members and the
    explainer (each converted every column of every chunk itself)."""

    def __init__(self, X: pd.DataFrame) -> None:
        self.X, self.n, self._names = X, len(X), list(X.columns)
        self._numeric: dict[int, np.ndarray] = {}
        self._categories: dict[int, tuple[list, np.ndarray]] = {}

    def numeric(self, pos: int) -> np.ndarray:
        """Column ``pos`` as floats (what cannot be read as a number: NaN)."""
        if pos not in self._numeric:
            column = self.X[self._names[pos]]
            self._numeric[pos] = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        return self._numeric[pos]

    def categories(self, pos: int) -> tuple[list, np.ndarray]:
        """Column ``pos``'s distinct values (as ``tolist`` gives them) and
        each row's position among them."""
        if pos not in self._categories:
            inverse, distinct = pd.factorize(self.X[self._names[pos]], use_na_sentinel=False)
            self._categories[pos] = (list(distinct.tolist()), np.asarray(inverse, dtype=np.int64))
        return self._categories[pos]


class CompiledScorecard:
    """A calibrated scorecard compiled to numpy (see :class:`_CompiledLinear`).

    Built from a :class:`TrainedModel` of kind ``scorecard`` and checked
    against sklearn on ``check`` rows at build time; ``None`` is returned by
    :func:`compile_scorecard` when the check fails, and sklearn is used.
    """

    def __init__(self, model: TrainedModel) -> None:
        self.features = model.features
        self.members = []
        for cc in model.estimator.calibrated_classifiers_:
            calibrator = cc.calibrators[0]
            self.members.append((_CompiledLinear(cc.estimator, self.features), calibrator))
        self.explainer = _CompiledLinear(model.explainer, self.features)
        base = pd.DataFrame([model.baseline[self.features].to_dict()])
        self.baseline_parts = self.explainer.parts(base)[0]

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """The calibrated probability of the target (1-D), as :meth:`TrainedModel.predict_proba`."""
        columns = _Columns(X[self.features])
        return self._calibrated(lambda linear: linear.logits(columns), len(X))

    def _calibrated(self, logits_of, n: int) -> np.ndarray:
        """The calibrated ensemble's probability, given each member's logits."""
        total = np.zeros(n)
        for linear, calibrator in self.members:
            f = logits_of(linear)
            if hasattr(calibrator, "a_"):  # sigmoid (Platt)
                total += 1.0 / (1.0 + np.exp(calibrator.a_ * f + calibrator.b_))
            else:  # isotonic, clipped like sklearn's
                total += np.interp(f, calibrator.X_thresholds_, calibrator.y_thresholds_)
        return total / len(self.members)

    def contributions(self, X: pd.DataFrame) -> np.ndarray:
        return self.explainer.parts(X[self.features]) - self.baseline_parts

    def predict_one(self, row: list) -> tuple[float, np.ndarray]:
        """Score and contributions of one row (a list in feature order), with
        the same arithmetic as :meth:`predict_proba` and :meth:`contributions`."""
        score = self._calibrated(lambda linear: linear.intercept + linear.parts_one(row).sum(axis=1), 1)
        return float(score[0]), self.explainer.parts_one(row)[0] - self.baseline_parts


def compile_scorecard(model: TrainedModel, check: pd.DataFrame | None = None) -> CompiledScorecard | None:
    """Compile a scorecard model; verify it against sklearn on ``check`` rows."""
    if model.kind != "scorecard":
        return None
    try:
        compiled = CompiledScorecard(model)
    except (ValueError, AttributeError, KeyError, IndexError) as err:
        # scoring still works through scikit-learn, only slower: say so, once per model
        log.warning(
            "model %s: the scorecard cannot be compiled (%s: %s); scoring through scikit-learn",
            model.version,
            type(err).__name__,
            err,
        )
        return None
    if check is not None and len(check):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = model.estimator.predict_proba(check[model.features])[:, 1]
        if not np.allclose(compiled.predict_proba(check), expected, atol=1e-9):
            log.warning(
                "model %s: the compiled scorecard differs from scikit-learn by more than 1e-9 on %d "
                "rows; scoring through scikit-learn",
                model.version,
                len(check),
            )
            return None
    return compiled


# persistence lives in ringscope.detectors.risk.model_store; these names stay importable from here
from ringscope.detectors.risk.model_store import (  # noqa: E402
    load_model,
    models_folder,
    save_model,
    target_folder,
)
