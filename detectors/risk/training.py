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

import contextlib
import gc
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ringscope.detectors.portfolio import Portfolio
from ringscope.detectors.rings import entity_links
from ringscope.detectors.risk.config import TooFewOutcomes
from ringscope.detectors.risk.features import application_features
from ringscope.detectors.risk.findings_only import KIND as FINDINGS_ONLY
from ringscope.detectors.risk.findings_only import findings_only_model
from ringscope.detectors.risk.model_store import champion, load_model
from ringscope.detectors.risk.model_store import promote as promote_version
from ringscope.detectors.risk.reasons import ReasonContext, build_reasons
from ringscope.detectors.risk.scoring import (
    TrainedModel,
    TrainingConfig,
    contributions,
    save_model,
    target_folder,
    train_models,
)
from ringscope.detectors.runner import load_findings
from ringscope.detectors.settings import TRAINING_KEYS, Settings, store_settings
from ringscope.detectors.values import BadValues
from ringscope.graph.model import CASE_VERDICTS as GRAPH_CASE_VERDICTS
from ringscope.graph.store import GraphBatch

__all__ = [
    "TrainResult",
    "train",
    "outcome_labels",
    "target_outcomes",
    "score_applications",
    "write_scores",
    "score_portfolio",
    "reuse_freed_memory",
    "keep_malloc_heap",
    "compare_with_champion",
    "PROMOTE_POLICIES",
    "SHADOW_PROPERTIES",
    "CASE_VERDICTS",
    "SCORE_PROPERTIES",
]

#: case status → outcome label used by the next training run (one definition, in the graph model)
CASE_VERDICTS = GRAPH_CASE_VERDICTS

#: per target, the Application properties its score, decision, reasons, model
#: version and time go to (the fraud score keeps the names the dashboard reads)
SCORE_PROPERTIES = {
    "fraud": ("risk_score", "risk_decision", "risk_reasons", "risk_model", "scored_at"),
    "default": ("default_score", "default_decision", "default_reasons", "default_model", "default_scored_at"),
}
#: where ``flag --shadow`` records the challenger's score and decision (never acted on)
SHADOW_PROPERTIES = {
    "fraud": ("shadow_score", "shadow_decision", "shadow_reasons", "shadow_model", "shadow_scored_at"),
    "default": (
        "default_shadow_score",
        "default_shadow_decision",
        "default_shadow_reasons",
        "default_shadow_model",
        "default_shadow_scored_at",
    ),
}


@dataclass
class TrainResult:
    model: TrainedModel
    report: dict
    folder: Path
    scored: pd.DataFrame  # application_id, score, decision, reasons
    #: stored values read as missing (implausible dates and figures), for the summary
    bad_values: list[BadValues] = field(default_factory=list)
    #: whether this version became the champion (else it is the challenger), and the event if so
    promoted: bool = True
    event: Any = None
    #: the challenger against the champion (``compare_with_champion``), None for a first model
    comparison: dict | None = None


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


def score_applications(
    model: TrainedModel,
    features: pd.DataFrame,
    context: ReasonContext,
    review: float | None = None,
    decline: float | None = None,
) -> pd.DataFrame:
    """Scores, decisions and JSON reasons for the rows of ``features``."""
    if features.empty:
        return pd.DataFrame(columns=["application_id", "score", "decision", "reasons"])
    scores = model.predict_proba(features)
    contrib = contributions(model, features)
    reasons = build_reasons(contrib, features, context)
    return pd.DataFrame(
        {
            "application_id": features.index,
            "score": np.round(scores, 4),
            "decision": model.decide(scores, review, decline),
            "reasons": reasons.reindex(features.index).to_numpy(),
        }
    )


def write_scores(store, scored: pd.DataFrame, model: TrainedModel, shadow: bool = False) -> None:
    """Put score, decision and reasons on the Application nodes, in the
    properties of the model's target (:data:`SCORE_PROPERTIES`; with
    ``shadow``, a challenger's :data:`SHADOW_PROPERTIES`)."""
    if model.target not in SCORE_PROPERTIES:
        raise ValueError(
            f"A model of target {model.target!r} has no score properties; retrain it with a target "
            f"of {', '.join(SCORE_PROPERTIES)}."
        )
    score, decision, reasons, version, at = (SHADOW_PROPERTIES if shadow else SCORE_PROPERTIES)[model.target]
    frame = pd.DataFrame(
        {
            "key": scored["application_id"].astype(str),
            score: scored["score"].astype(float),
            decision: scored["decision"].astype(str),
            reasons: scored["reasons"].astype(str),
            version: model.version,
            at: datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
    )
    store.write(GraphBatch(nodes={"Application": frame}))


#: what ``train`` does with the version it saved when a champion exists
PROMOTE_POLICIES = ("never", "auto", "always")
#: what ``train`` does when the history holds too few outcomes to learn from
TOO_FEW_POLICIES = ("findings", "refuse")


def train(
    store,
    config: TrainingConfig = TrainingConfig(),
    progress=None,
    folder: Path | None = None,
    chunk: int = 50_000,
    promote: str = "never",
    user: str | None = None,
    too_few: str = "findings",
) -> TrainResult:
    """Fit the model of ``config.target`` on ``store`` and save it (in the
    target's own folder unless ``folder`` is given).

    The first model of a folder becomes its champion. Later ones are saved
    as the challenger and compared with the champion on the challenger's
    out-of-time validation applications (:func:`compare_with_champion`);
    ``promote`` decides what happens next: ``never`` (the default: a person
    runs ``ringscope promote``), ``auto`` (promoted when it wins on AUC and
    precision@k without declining more honest applications) or ``always``.
    A promoted model scores every application (into the target's own
    properties); a challenger leaves the champion's scores in place.

    When the labelled history holds too few fraud outcomes to learn from
    (:class:`TooFewOutcomes`), ``too_few="findings"`` (the default) saves a
    findings-only model (:mod:`~ringscope.detectors.risk.findings_only`):
    the best finding score, review without decline. It does so only for the
    fraud target and only while no learned model is champion, which it
    would otherwise replace; ``too_few="refuse"`` raises instead.
    """
    if promote not in PROMOTE_POLICIES:
        raise ValueError(f"promote must be one of {', '.join(PROMOTE_POLICIES)}. Got {promote!r} instead.")
    if too_few not in TOO_FEW_POLICIES:
        raise ValueError(f"too_few must be one of {', '.join(TOO_FEW_POLICIES)}. Got {too_few!r} instead.")
    with _collector_settled() as settle:
        return _train(store, config, progress, folder, chunk, promote, user, too_few, settle)


@contextlib.contextmanager
def _collector_settled():
    """Keep the cyclic garbage collector off what ``train`` holds for its
    whole run: a function that moves every object alive when it is called
    out of the collector's view (``gc.freeze``), all of them back when the
    block ends (``gc.unfreeze``: the caller's collector as it was).

    The collector's full passes walk every object alive each time, and
    ``train`` holds millions of them (the modules, the findings and their
    evidence) while it allocates millions more: at 1M 18 full passes cost
    5.1 s of CPU. The objects out of view are still freed when their last
    reference goes; only garbage in reference cycles waits for the block's
    end. A caller that froze objects itself keeps its collector untouched
    (unfreezing would undo its choice).
    """
    if gc.get_freeze_count():
        yield lambda: None
        return
    gc.freeze()  # the modules and whatever the caller holds
    try:
        yield gc.freeze
    finally:
        gc.unfreeze()


def _train(store, config, progress, folder, chunk, promote, user, too_few, settle) -> TrainResult:
    folder = Path(folder) if folder else target_folder(store, config.target)
    portfolio = Portfolio(store)
    findings = load_findings(store)
    if progress:
        progress("features", 0, 3)
    # the detectors' parameters are the ones the findings were made with
    detected_with = store_settings(store)
    hubs = detected_with.detector("shared_identifier_rings").hubs(portfolio)
    known_bad = config.bad_labels  # earlier neighbours count as known bad by the model's own target
    features = application_features(portfolio, findings, hubs, known_bad)
    apps = portfolio.applications
    labels = apps.set_index("application_id")["label"]
    verdicts = outcome_labels(store, portfolio, findings)
    outcomes = target_outcomes(labels, verdicts, config.target)
    applied_at = apps.set_index("application_id")["applied_at"]
    # what scoring needs later; the portfolio's tables go before the fits
    links, reason_apps = entity_links(portfolio), apps[["application_id", "applied_at", "label"]]
    bad_values = list(portfolio.bad_values)
    del portfolio, apps, hubs
    settle()  # the findings and what scoring needs later stay to the end
    try:
        model, report = train_models(features, outcomes, applied_at, config, progress)
    except TooFewOutcomes as err:
        _check_findings_only(err, config, folder, too_few)
        model, report = findings_only_model(features, applied_at, config, str(err), outcomes)
        # a detector without findings in this book has no column: its score is 0 (as flag fills it)
        missing = [c for c in model.features if c not in features.columns]
        features = features.assign(**dict.fromkeys(missing, 0.0)) if missing else features
    report.update(_outcome_counts(labels, verdicts, outcomes, applied_at, config))
    del labels, verdicts, outcomes, applied_at
    settings = Settings(
        detected_with.detectors, {key: getattr(config, key) for key in TRAINING_KEYS}, detected_with.source
    )
    report["settings"] = {
        "digest": settings.digest,
        "detectors": detected_with.detector_params(),
        "training": settings.training,
    }
    before = champion(folder)
    comparison, unfit = None, None
    if before is not None:
        try:
            current = load_model(folder, before)
        except Exception as err:  # an unreadable champion cannot serve: the new model replaces it
            current, unfit = None, f"the champion {before} cannot be loaded ({type(err).__name__})"
        if current is not None and current.target != config.target:
            # saved before targets (fraud and default mixed): flag refuses it, so it cannot stay champion
            unfit = f"the champion {before} predicts {current.target!r}, not {config.target!r}"
        elif current is not None and FINDINGS_ONLY in (current.kind, model.kind):
            # a findings-only model was validated on nothing, so there is no comparison: a learned
            # model replaces it, and while outcomes are still too few a new findings-only one renews it
            unfit = (
                f"the champion {before} is findings-only"
                if model.kind != FINDINGS_ONLY
                else f"the labelled history still holds too few outcomes; the findings-only {before} is renewed"
            )
        elif current is not None:
            comparison = compare_with_champion(current, report, features)
            report["comparison"] = comparison
    promoted = (
        before is None
        or unfit is not None
        or promote == "always"
        or (promote == "auto" and comparison["challenger_wins"])
    )
    saved = save_model(model, report, folder, promote=False)
    event = None
    if promoted:
        why = (
            "first model"
            if before is None
            else unfit
            if unfit
            else "train --promote always"
            if promote == "always"
            else f"train --promote auto: {comparison['verdict']}"
        )
        event = promote_version(folder, model.version, user or _user(), why)
        context = ReasonContext.build(findings, links, reason_apps, known_bad)
        del findings, links, reason_apps  # the context holds what it needs
        scored = score_portfolio(store, model, features, context, progress, chunk)
    else:
        scored = pd.DataFrame(columns=["application_id", "score", "decision", "reasons"])
    return TrainResult(model, report, saved, scored, bad_values, promoted, event, comparison)


def _check_findings_only(err: TooFewOutcomes, config: TrainingConfig, folder: Path, too_few: str) -> None:
    """Raise ``err`` unless a findings-only model may stand in: fraud target,
    ``too_few="findings"``, and no learned champion in ``folder`` (a model
    that learned from outcomes keeps scoring rather than be replaced by one
    that did not)."""
    if too_few != "findings":
        raise err
    if config.target != "fraud":
        raise TooFewOutcomes(f"{err} (the detectors find fraud, not {config.target}: no findings-only model)") from err
    current = champion(folder)
    if current is None:
        return
    try:
        kind = load_model(folder, current).kind
    except Exception:  # an unreadable champion cannot serve: the findings-only model replaces it
        return
    if kind != FINDINGS_ONLY:
        raise TooFewOutcomes(f"{err} The champion {current}, learned from outcomes, keeps scoring.") from err


def reuse_freed_memory() -> bool:
    """Let Arrow's buffers come from the C allocator (``malloc``), which
    keeps freed memory for the next allocation, instead of its bundled
    mimalloc, which hands freed pages back to the system within milliseconds
    (a system call, and a page fault when the page is used again). ``train`` allocates and
    frees the same large columns over and over: at 200k the process spent
    6.1 s in the kernel (returning and re-mapping pages), 2.0 s with this,
    at a peak 13% higher (1.38 → 1.56 GB). Results do not depend on the
    allocator. Process-wide, so the ``ringscope train`` command calls it, not
    :func:`train` (a dashboard or notebook keeps its allocator). Left alone
    when ``ARROW_DEFAULT_MEMORY_POOL`` chooses; returns whether it switched.
    """
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return False
    import pyarrow as pa

    pa.set_memory_pool(pa.system_memory_pool())
    return True


#: glibc's ``mallopt`` parameters (``malloc.h``)
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4


def keep_malloc_heap() -> bool:
    """Have glibc's ``malloc`` serve large blocks from its heap and keep what
    is freed there (up to 2 GB at its top) for the next allocation, as
    :func:`reuse_freed_memory` does for Arrow's buffers: by default each block
    above 32 MB (a column of five million links, a feature at 1M) is a fresh
    ``mmap``, returned on ``free`` and faulted in page by page on the next.
    At 1M (``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=17179869184``, the same
    settings from the environment, 2026-12-01, load 3.5–11) ``train``'s kernel
    time went from 17.0 to 7.3 s, its page faults from 2.9M to 2.1M, at a peak
    of 4.65 GB instead of 4.19 GB; the same scores. Results do not depend on
    the allocator. Process-wide, so the ``ringscope train`` command calls
    it, not :func:`train`. Left alone when the environment sets either
    (``MALLOC_MMAP_MAX_``, ``MALLOC_TRIM_THRESHOLD_``) or the C library is not
    glibc; returns whether it changed them (for the rest of the process).
    """
    if "MALLOC_MMAP_MAX_" in os.environ or "MALLOC_TRIM_THRESHOLD_" in os.environ:
        return False
    try:
        import ctypes

        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_MAX, 0)) & bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))


def score_portfolio(
    store,
    model: TrainedModel,
    features: pd.DataFrame | None = None,
    context: ReasonContext | None = None,
    progress=None,
    chunk: int = 50_000,
) -> pd.DataFrame:
    """Score every application of ``store`` with ``model`` and write the
    scores (what a new champion does: the stored scores are always the
    champion's). Features and reason context are built when not given."""
    if features is None or context is None:
        portfolio = Portfolio(store)
        findings = load_findings(store)
        hubs = store_settings(store).detector("shared_identifier_rings").hubs(portfolio)
        features = application_features(portfolio, findings, hubs, model.known_bad)
        context = ReasonContext.build(findings, entity_links(portfolio), portfolio.applications, model.known_bad)
    parts = []
    for start in range(0, len(features), chunk):
        if progress:
            progress("score", start, len(features))
        parts.append(score_applications(model, features.iloc[start : start + chunk], context))
    scored = pd.concat(parts, ignore_index=True) if parts else score_applications(model, features, context)
    write_scores(store, scored, model)
    return scored


def compare_with_champion(champion_model: TrainedModel, report: dict, features: pd.DataFrame) -> dict:
    """The challenger (the model ``report`` describes) against the champion
    on the challenger's out-of-time validation applications: AUC,
    precision@k and the share of honest ones each would decline.

    The challenger's figures come from its validation fit (trained before
    those applications); the champion scores them as it is. When the
    champion was trained on some of them its figures are in-sample, which
    favours it: ``champion_in_sample`` says so. The challenger wins when it
    is at least as good on all three and better on AUC or precision@k.
    """
    from sklearn.metrics import roc_auc_score

    from ringscope.detectors.risk.scoring import precision_at_k

    valid = report["_valid"]
    ids, y = list(valid["ids"]), np.asarray(valid["y"])
    new = np.asarray(valid["scores"][report["chosen"]], dtype=float)
    k = int(report["review_capacity_k"])
    honest = y == 0
    out = {"champion_version": champion_model.version, "applications": len(ids), "positives": int(y.sum()), "k": k}
    try:
        X = features.reindex(index=ids, columns=champion_model.features)
        old = np.asarray(champion_model.predict_proba(X), dtype=float)
    except Exception as err:  # a champion from older code may not read today's features
        out.update(challenger_wins=False, verdict=f"the champion cannot score today's features ({err})")
        return out
    decline_new = float(report["config"]["decline_threshold"])
    decline_old = float(champion_model.config.decline_threshold)
    both = 0 < y.sum() < len(y)
    figures = {
        "challenger": {
            "auc": float(roc_auc_score(y, new)) if both else float("nan"),
            "precision_at_k": precision_at_k(y, new, k),
            "honest_declined": float((new[honest] >= decline_new).mean()) if honest.any() else 0.0,
        },
        "champion": {
            "auc": float(roc_auc_score(y, old)) if both else float("nan"),
            "precision_at_k": precision_at_k(y, old, k),
            "honest_declined": float((old[honest] >= decline_old).mean()) if honest.any() else 0.0,
        },
    }
    c, o = figures["challenger"], figures["champion"]
    window_end = pd.Timestamp((champion_model.report or {}).get("validation", {}).get("to", "NaT"))
    first = pd.Timestamp(report["validation"]["from"])
    in_sample = bool(pd.notna(window_end) and pd.notna(first) and window_end >= first)
    not_worse = (
        c["auc"] >= o["auc"]
        and c["precision_at_k"] >= o["precision_at_k"]
        and c["honest_declined"] <= o["honest_declined"]
    )
    wins = bool(not_worse and (c["auc"] > o["auc"] or c["precision_at_k"] > o["precision_at_k"]))
    verdict = (
        f"AUC {c['auc']:.3f} vs {o['auc']:.3f}, precision@{k} {c['precision_at_k']:.3f} vs "
        f"{o['precision_at_k']:.3f}, honest declined {c['honest_declined']:.2%} vs {o['honest_declined']:.2%}"
        f" -> {'challenger wins' if wins else 'champion stays'}"
    )
    out.update(figures, champion_in_sample=in_sample, challenger_wins=wins, verdict=verdict)
    return out


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return os.environ.get("USER", "unknown")


def _outcome_counts(
    labels: pd.Series, outcomes: pd.Series, used: pd.Series, applied_at: pd.Series, config: TrainingConfig
) -> dict:
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
        "positives": {
            "total": int(positive.sum()),
            "from labels": int((positive & from_labels).sum()),
            "from case verdicts": int((positive & ~from_labels).sum()),
        },
        "negatives": counts(known[~positive]),
        "left_out": counts(left_out),
    }
