"""Jobs that span the layers: ingest a batch, score it, save the results.

A detector scores what the store holds; reading a folder into the store is
ingest's job, and holding the lock across both is the application's. So the
nightly ``flag`` job lives here, above ``ingest``, ``graph`` and
``detectors``, and the CLI, the Python API and the benchmarks call it.
"""

from __future__ import annotations

import copy
import time
import warnings
from pathlib import Path

import pandas as pd

from ringscope.detectors.risk.flag_state import (
    FlagStateWarning,
    drop_caches,
    ingest_key,
    refresh_state,
    release_memory,
    save_state,
    unchanged_ingest,
)
from ringscope.detectors.risk.flagging import FlagIndex, FlagResult
from ringscope.detectors.risk.scoring import TrainedModel
from ringscope.detectors.runner import DetectionRun, findings_batch, stored_form
from ringscope.detectors.settings import TRAINING_KEYS, Settings, SettingsWarning
from ringscope.graph.files import atomic_write_bytes

__all__ = ["flag_applications"]


def flag_applications(
    store,
    folder: str | Path,
    model: TrainedModel,
    rejects_path: str | Path,
    review: float | None = None,
    decline: float | None = None,
    progress=None,
    limits=None,
    save: bool = True,
    shadow: TrainedModel | None = None,
):
    """Ingest ``folder`` into ``store``, score what loaded, save scores and new findings.

    The index comes from the saved flag state when the store has not changed
    since the last run (:meth:`FlagIndex.open`); with ``save`` the state is
    saved again after this run's writes, so the next run starts from it.
    ``limits`` (an ``ingest.limits.IngestLimits``) is passed to the ingest.
    ``shadow`` (a challenger) scores the same applications with its own
    thresholds; its flags go to the shadow properties and
    ``FlagResult.shadow``, never to the decisions.
    Returns ``(ingest summary, FlagResult)``; ``FlagResult.state`` says
    whether the index was loaded or rebuilt and in how long.
    """
    from ringscope.detectors.risk.training import write_scores

    # one lock from the ingest to the saved state: the state must be the store's at its revision
    with store.lock(job="flag"):
        summary, replayed, key, changed = _ingest(store, folder, rejects_path, progress, limits)
        if not summary.application_ids:
            return summary, FlagResult(
                pd.DataFrame(columns=["application_id", "score", "decision", "ring_id", "reasons", "settings"])
            )
        release_memory()  # what the ingest freed, before the index is read
        index = FlagIndex.open(store, bad_labels=model.known_bad)
        # the parameters the flags come from: the detectors' as the last detect ran them, the model's training
        used = Settings(
            index.settings.detectors, {key: getattr(model.config, key) for key in TRAINING_KEYS}, index.settings.source
        )
        trained_with = (model.report or {}).get("settings", {}).get("digest")
        if trained_with is not None and trained_with != used.digest:
            warnings.warn(
                f"the model {model.version} was trained on findings made with other detector settings "
                f"({trained_with}, now {used.digest}); retrain it after `ringscope detect`",
                SettingsWarning,
                stacklevel=2,
            )
        index.progress = progress  # detection around the batch reports per detector, like ``detect``
        index.portfolio.keep_derived = False  # one detection: a detector's tables go once it ran
        # the rings' links the index was derived from hold the stored entities, which identity's replace:
        # dropped now, they do not sit beside identity resolution's peak
        index.portfolio.derived.clear()
        release_memory()
        result = index.score(model, summary.application_ids, review, decline)
        result.flags["settings"] = used.digest
        result.state = index.state
        result.seconds["open index"] = index.state.seconds
        result.bad_values = list(index.portfolio.bad_values)
        shadowed = index.score(shadow, summary.application_ids) if shadow is not None else None
        # the batch is scored: what detection kept for more scores goes before the writes and the save
        drop_caches(index)
        write_scores(store, result.flags, model)
        if shadowed is not None:
            result.shadow = shadowed.flags
            write_scores(store, shadowed.flags, shadow, shadow=True)
        if result.new_findings:
            run = DetectionRun(
                result.new_findings,
                {},
                run_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                settings=index.settings,
            )
            store.write(findings_batch(run))
        if save:
            started = time.perf_counter()
            try:
                # the store now is the indexed one plus this run's scores (not portfolio columns) and findings
                saved = {f.finding_id: f for f in index.findings}
                saved.update((f.finding_id, f) for f in stored_form(result.new_findings))
                findings = [saved[k] for k in sorted(saved)]
                if replayed is not None:
                    record = replayed
                elif changed:  # what ingesting the folder again would report: the next run replays it
                    checked = time.perf_counter()
                    record = _reingest_record(store, folder, key, limits)
                    result.seconds["record ingest"] = time.perf_counter() - checked
                else:
                    record = _ingest_record(key, summary)
                # a loaded index that reused its detection is the saved one: only the findings and revision move
                if not (
                    index.state.how == "loaded"
                    and not index.detection_ran
                    and refresh_state(store, index, store.revision(), findings, index.last_detection, record)
                ):
                    save_state(store, index, store.revision(), findings, detection=index.last_detection, ingest=record)
            except Exception as exc:  # the flags stand; the next run rebuilds
                from ringscope.detectors.risk.flag_state import discard_state

                warnings.warn(
                    f"flag state not saved ({type(exc).__name__}: {exc}); the next run rebuilds it",
                    FlagStateWarning,
                    stacklevel=2,
                )
                try:
                    discard_state(store)
                except OSError:
                    pass
            result.seconds["save state"] = time.perf_counter() - started
    return summary, result


def _ingest(store, folder, rejects_path, progress, limits):
    """Ingest ``folder``, or take the summary of the same ingest the saved
    flag state recorded (:func:`ringscope.detectors.risk.flag_state.unchanged_ingest`):
    the same files on the revision that ingest left unchanged change nothing,
    and reading the whole store to find that out again is most of a repeat
    run's ingest. Returns ``(summary, the record replayed or None, key,
    whether the ingest changed the store)``."""
    from ringscope.ingest.pipeline import ingest_folder

    started = time.perf_counter()
    before = store.revision()
    key = ingest_key(folder, limits)
    record = unchanged_ingest(store, before, key)
    if record is not None:
        summary = copy.deepcopy(record["summary"])
        summary.folder = str(Path(folder))
        summary.rejects_path = None
        if record["rejects"] is not None:  # the rejects file as the ingest wrote it
            atomic_write_bytes(Path(rejects_path or "ringscope_rejects.csv"), record["rejects"])
            summary.rejects_path = str(rejects_path or "ringscope_rejects.csv")
        summary.seconds = time.perf_counter() - started
        return summary, record, key, False
    summary = ingest_folder(folder, store, rejects_path=rejects_path, progress=progress, limits=limits)
    summary.seconds = time.perf_counter() - started
    return summary, None, key, store.revision() != before


def _ingest_record(key: str, summary) -> dict:
    """What :func:`_ingest` replays for an ingest that changed nothing."""
    rejects = Path(summary.rejects_path).read_bytes() if summary.rejects_path else None
    return {"key": key, "summary": copy.deepcopy(summary), "rejects": rejects}


def _reingest_record(store, folder, key: str, limits) -> dict | None:
    """The record of ingesting ``folder`` again, after a run whose ingest of
    it changed the store: a dry run of that ingest on the store as this run
    leaves it (its scores and findings written), so the next run of the same
    files replays it instead of reading the store to find nothing new.

    Ingest writes with the ``"keep"`` policy (the stored non-null value
    first), so the same rows again change nothing; what the second ingest
    reports can still differ from the first (rows of one batch that repeat a
    contact, guarantee or share with other values load the first time and are
    rejected as stored with other content the second), which is why it is
    checked again rather than copied. ``None`` (nothing recorded) when the
    folder's files changed meanwhile."""
    import tempfile

    from ringscope.ingest.pipeline import ingest_folder

    try:
        with tempfile.TemporaryDirectory(prefix="ringscope-reingest-") as tmp:
            rejects = Path(tmp) / "rejects.csv"
            summary = ingest_folder(folder, store, rejects_path=rejects, limits=limits, dry_run=True)
            record = _ingest_record(key, summary)
    except Exception as exc:  # the state stands without it: the next run ingests the folder
        warnings.warn(
            f"the ingest was not recorded for the next run ({type(exc).__name__}: {exc}); it ingests the folder",
            FlagStateWarning,
            stacklevel=3,
        )
        return None
    if ingest_key(folder, limits) != key:
        return None
    return record
