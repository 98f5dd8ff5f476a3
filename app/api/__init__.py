"""ringscope's Python API: the CLI's jobs as functions, for notebooks and schedulers.

This folder is installed as the top-level ``ringscope`` package (see
``[tool.setuptools.package-dir]`` in pyproject.toml); the rooms below it are
``ringscope.ingest``, ``ringscope.graph``, ``ringscope.detectors`` and
``ringscope.app`` (so no function here is named after a room: ``ringscope.ingest``
is the package, :func:`ingest_export` the job). Every function here takes an open store and holds the
store's write lock while it writes, like the matching ``ringscope`` command.

A nightly job in five calls (the README's "Python API" section runs it as a
doctest)::

    import ringscope
    store = ringscope.open_store(".ringscope")          # or neo4j_uri="neo4j://..."
    ringscope.ingest_export(store, "exports/2026-11-29") # rejects go to a CSV, never lost
    run = ringscope.detect(store)                        # findings saved in the store
    ringscope.train(store)                               # the fraud model (first one: champion)
    summary, result = ringscope.flag(store, "exports/tonight")
    result.flags.sort_values("score", ascending=False).head()
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for type checkers; at run time these load on first use (see __getattr__)
    import pandas as pd

    from ringscope.detectors.evaluate import Evaluation
    from ringscope.detectors.registry import DETECTORS
    from ringscope.detectors.risk.flagging import FlagResult
    from ringscope.detectors.risk.training import TrainResult
    from ringscope.detectors.runner import DetectionRun, load_findings
    from ringscope.detectors.settings import Settings, load_settings
    from ringscope.graph.store import GraphStore, open_store
    from ringscope.ingest.pipeline import IngestSummary
    from ringscope.ingest.synthetic import GeneratorConfig, generate_portfolio

#: names this package re-exports → the module that defines them. Loaded on first
#: use: ``import ringscope.detectors.rings`` runs this file first, and must not
#: pay for scikit-learn, the ingest pipeline and the generator it does not use.
_REEXPORTS = {
    "open_store": "ringscope.graph.store",
    "GraphStore": "ringscope.graph.store",
    "load_findings": "ringscope.detectors.runner",
    "DetectionRun": "ringscope.detectors.runner",
    "Settings": "ringscope.detectors.settings",
    "load_settings": "ringscope.detectors.settings",
    "DETECTORS": "ringscope.detectors.registry",
    "Evaluation": "ringscope.detectors.evaluate",
    "FlagResult": "ringscope.detectors.risk.flagging",
    "TrainResult": "ringscope.detectors.risk.training",
    "IngestSummary": "ringscope.ingest.pipeline",
    "GeneratorConfig": "ringscope.ingest.synthetic",
    "generate_portfolio": "ringscope.ingest.synthetic",
}


def __getattr__(name: str) -> Any:
    module = _REEXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ringscope' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once loaded, an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_REEXPORTS))


__all__ = [
    "open_store",
    "ingest_export",
    "detect",
    "resolve_entities",
    "train",
    "flag",
    "evaluate",
    "load_findings",
    "Settings",
    "load_settings",
    "generate_portfolio",
    "GeneratorConfig",
    "DETECTORS",
    "GraphStore",
    "IngestSummary",
    "DetectionRun",
    "TrainResult",
    "FlagResult",
    "Evaluation",
]


def ingest_export(
    store: GraphStore,
    folder: str | Path,
    rejects_path: str | Path | None = None,
    *,
    update: bool = False,
    lock_timeout: float | None = None,
    progress=None,
) -> IngestSummary:
    """Load the contract tables in ``folder`` (CSV in UTF-8/GBK/GB18030, or Parquet).

    Rows that fail a check go to ``rejects_path`` (default
    ``./ringscope_rejects.csv``) with a reason; the summary counts both.
    ``update`` lets a later feed change stored applications (audited); without
    it a stored row is never overwritten.
    """
    from ringscope.ingest.pipeline import ingest_folder as _pipeline_ingest

    return _pipeline_ingest(
        folder, store, rejects_path=rejects_path, progress=progress, update=update, lock_timeout=lock_timeout
    )


def detect(
    store: GraphStore,
    detectors: list[str] | None = None,
    settings: Settings | None = None,
    *,
    save: bool = True,
    lock_timeout: float | None = None,
    progress=None,
) -> DetectionRun:
    """Run ``detectors`` (default: every one in :data:`DETECTORS`) and save their findings.

    ``settings`` (:func:`load_settings` reads a ``--config`` file) override
    detector parameters, e.g. ``Settings({"shared_identifier_rings":
    {"min_people": 4}})``. With ``save`` the store's findings and the
    settings are replaced by this run's, as ``ringscope detect`` does;
    :func:`train` and :func:`flag` then run the detectors with them.
    """
    from ringscope.detectors.registry import DETECTORS
    from ringscope.detectors.runner import run_detectors, save_findings

    unknown = sorted(set(detectors or ()) - set(DETECTORS))
    if unknown:
        raise ValueError(f"Unknown detector(s) {', '.join(unknown)}; known: {', '.join(DETECTORS)}")
    # the lock spans the reads too: the findings describe one state of the store
    with store.lock(job="ringscope detect", timeout=lock_timeout):
        run = run_detectors(store, detectors, progress=progress, settings=settings)
        if save:
            save_findings(store, run)
    return run


def resolve_entities(store: GraphStore) -> pd.DataFrame:
    """The resolved applicant and company of every application.

    Returns a frame ``application_id``, ``person_entity_id``,
    ``company_entity_id``: applications whose applicants the identity
    resolution judged to be one person share a ``person_entity_id``.
    """
    from ringscope.detectors.identity import application_entities

    return application_entities(store)


def train(
    store: GraphStore,
    target: str = "fraud",
    *,
    settings: Settings | None = None,
    promote: str = "never",
    lock_timeout: float | None = None,
    progress=None,
    **config: Any,
) -> TrainResult:
    """Fit the ``target`` model (``"fraud"`` or ``"default"``) on the store's outcomes and verdicts.

    The first model of a store becomes its champion and scores every
    application; later ones are challengers unless ``promote`` is ``"auto"``
    (better out of time) or ``"always"``. The ``[training]`` part of
    ``settings`` (default: the settings the last :func:`detect` saved) and
    then ``config`` set the other
    :class:`~ringscope.detectors.risk.config.TrainingConfig` fields, e.g.
    ``review_capacity=0.05``; the detectors' parameters are those the
    store's last :func:`detect` ran with.
    """
    from ringscope.detectors.risk.training import train as train_model
    from ringscope.detectors.settings import store_settings

    with store.lock(job="ringscope train", timeout=lock_timeout):
        training = (settings or store_settings(store)).training_config(target, **config)
        return train_model(store, training, progress=progress, promote=promote)


def flag(
    store: GraphStore,
    folder: str | Path,
    rejects_path: str | Path | None = None,
    *,
    target: str = "fraud",
    lock_timeout: float | None = None,
    progress=None,
) -> tuple[IngestSummary, FlagResult]:
    """Ingest tonight's ``folder`` and score what loaded with the champion ``target`` model.

    Returns the ingest summary and the :class:`FlagResult`, whose ``flags``
    frame holds one row per new application: score, decision
    (pass/review/decline), ring_id and reasons. Raises ``FileNotFoundError``
    when no model has been trained for ``target``.
    """
    from ringscope.detectors.risk.scoring import load_model, target_folder

    model = load_model(target_folder(store, target))
    if model.target != target:
        raise ValueError(
            f"The saved model {model.version} predicts {model.target!r}, not {target!r}; train a {target} model first."
        )
    with store.lock(job="ringscope flag", timeout=lock_timeout):
        from ringscope.app.jobs import flag_applications

        return flag_applications(store, folder, model, rejects_path or "ringscope_rejects.csv", progress=progress)


def evaluate(store: GraphStore, truth_dir: str | Path, min_score: float = 0.5) -> Evaluation:
    """Compare the store's saved findings with a generated portfolio's ``truth/`` folder."""
    from ringscope.detectors.evaluate import evaluate_findings
    from ringscope.detectors.runner import load_findings

    findings = load_findings(store)
    if not findings:
        raise ValueError("No findings in the store; run detect() first.")
    return evaluate_findings(findings, truth_dir, min_score=min_score)
