"""Where trained models live, and saving them so that a reader never sees half of one.

One rule for both stores (:func:`models_folder`): ``$RINGSCOPE_MODELS`` if
set; else the embedded store keeps its models inside its own folder
(``<store>/models``), and a Neo4j store's go to the user's data folder,
keyed by the database's own identity (``$XDG_DATA_HOME/ringscope/models/
neo4j-<database id>``, default ``~/.local/share/...``). The identity comes
from the server, not from the URI, so ``flag`` finds the model from any
working directory and whatever host name or credentials reach the server;
no password can end up in a path.

Each target has its own models (:func:`target_folder`): the fraud model in
that folder, the optional credit-default model in ``default/`` inside it.

Champion and challenger: ``LATEST`` names the champion, the version that
``flag``, ``monitor`` and the dashboard use. A newly trained version that is
not promoted is the challenger (``CHALLENGER``). Every change of champion —
a promotion, a rollback — is appended to ``CHAMPIONS.jsonl`` (who, when,
from which version to which, why) before ``LATEST`` moves; ``rollback``
returns to the champion before the current one by replaying that log.

A version is written into a private temporary folder beside the others,
flushed, and renamed into place in one step; only then does ``LATEST``
(itself replaced atomically) point at it. Folders are 0700, files 0600:
models and their reports describe the lender's customers.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from ringscope.graph.files import TMP_MARKER, atomic_open, atomic_write_text, private_dir

__all__ = [
    "models_folder",
    "target_folder",
    "store_identity",
    "user_data_dir",
    "save_model",
    "load_model",
    "champion",
    "challenger",
    "promote",
    "rollback",
    "champion_history",
    "ModelEvent",
]

#: a temporary version folder older than this is a killed save's leftover
_STALE_SECONDS = 24 * 3600


def user_data_dir() -> Path:
    """The per-user data folder: ``$XDG_DATA_HOME/ringscope`` or ``~/.local/share/ringscope``.

    Example
    -------
    >>> os.environ["XDG_DATA_HOME"] = "/srv/data"; str(user_data_dir())
    '/srv/data/ringscope'
    >>> del os.environ["XDG_DATA_HOME"]
    """
    base = os.environ.get("XDG_DATA_HOME", "")
    # the XDG rule: a relative value is invalid and ignored
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".local" / "share"
    return root / "ringscope"


def store_identity(store: Any) -> str:
    """A stable name for ``store`` that holds no secret: ``neo4j-<database
    id>`` for Neo4j (the id the server gave the database when it was
    created), else the store kind and a digest of its (redacted) location."""
    identify = getattr(store, "store_id", None)
    if callable(identify):
        return f"{store.kind}-{_safe(identify())}"
    from ringscope.graph.store import redact_uri

    where = redact_uri(str(getattr(store, "location", "")))
    return f"{getattr(store, 'kind', 'store')}-{hashlib.sha1(where.encode('utf-8')).hexdigest()[:16]}"


def models_folder(store: Any) -> Path:
    """Where models of ``store`` live (see the module docstring).

    Example
    -------
    >>> from ringscope.graph.embedded import EmbeddedStore
    >>> folder = tempfile.mkdtemp()
    >>> models_folder(EmbeddedStore(folder)) == Path(folder).resolve() / "models"
    True
    """
    if os.environ.get("RINGSCOPE_MODELS"):
        return Path(os.environ["RINGSCOPE_MODELS"])
    if getattr(store, "kind", "") == "embedded":
        return Path(store.location) / "models"
    return user_data_dir() / "models" / store_identity(store)


def target_folder(store: Any, target: str = "fraud") -> Path:
    """Where the models of ``target`` live: the fraud model in
    :func:`models_folder` itself (where it always was), any other target in a
    folder of its own name inside it, so the models never overwrite each other.

    Example
    -------
    >>> from ringscope.graph.embedded import EmbeddedStore
    >>> store = EmbeddedStore(tempfile.mkdtemp())
    >>> target_folder(store) == models_folder(store), target_folder(store, "default").name
    (True, 'default')
    """
    root = models_folder(store)
    return root if target == "fraud" else root / _safe(target)


def save_model(model: Any, report: dict, folder: str | os.PathLike, promote: bool = True) -> Path:
    """Save ``model`` as ``<folder>/<version>/`` (model.joblib, report.json,
    roc.png, scores.png) and then point ``<folder>/LATEST`` at it — or, with
    ``promote=False``, ``<folder>/CHALLENGER`` (:func:`promote` later makes
    it the champion).

    The version appears whole or not at all, and ``LATEST`` never names a
    version that is not complete. A version name already taken gets a
    suffix (``-2``, ...) rather than being overwritten.
    """
    folder = private_dir(folder)
    _remove_stale(folder)
    version = model.version
    n = 1
    while (folder / version).exists():
        n += 1
        version = f"{model.version}-{n}"
    if version != model.version:
        model.version = version
        report["version"] = version
    staging = Path(tempfile.mkdtemp(prefix=f".{version}{TMP_MARKER}", dir=folder))  # mode 0700
    try:
        with atomic_open(staging / "model.joblib", "wb") as handle:
            joblib.dump(model, handle)
        public = {k: v for k, v in report.items() if not k.startswith("_")}
        atomic_write_text(staging / "report.json", json.dumps(public, indent=2, ensure_ascii=False, default=str))
        _plots(report, staging)
        _fsync_dir(staging)
        os.rename(staging, folder / version)  # one step; fails rather than merge into an existing folder
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _fsync_dir(folder)
    if promote:
        atomic_write_text(folder / "LATEST", version)
    else:
        atomic_write_text(folder / "CHALLENGER", version)
    return folder / version


def load_model(folder: str | os.PathLike, version: str | None = None):
    """Load the latest (or a given) model version from ``folder``."""
    folder = Path(folder)
    if version is None:
        latest = folder / "LATEST"
        if not latest.exists():
            raise FileNotFoundError(f"No trained model in {folder}; run `ringscope train` first.")
        version = latest.read_text(encoding="utf-8").strip()
    path = folder / version / "model.joblib"
    try:
        return joblib.load(path)
    except ModuleNotFoundError as err:
        if (err.name or "").split(".")[0] not in _LEGACY_ROOTS:
            raise
        with _legacy_module_names():  # saved before the package was installed as ``ringscope``
            return joblib.load(path)


#: where each module of a model saved by ringscope 0.1 before 2026-11-30 (top-level
#: ``detectors``, ``graph``, ... packages) lives now
_LEGACY_MODULES = {
    "detectors": "ringscope.detectors",
    "detectors.scoring": "ringscope.detectors.risk.scoring",
    "detectors.features": "ringscope.detectors.risk.features",
    "detectors.reasons": "ringscope.detectors.risk.reasons",
    "detectors.model_store": "ringscope.detectors.risk.model_store",
    "detectors.risk": "ringscope.detectors.risk.training",
    "detectors.base": "ringscope.detectors.base",
    "graph": "ringscope.graph",
    "graph.model": "ringscope.graph.model",
}
_LEGACY_ROOTS = {"detectors", "graph"}


@contextmanager
def _legacy_module_names():
    """The old module names as aliases of the new modules, for one unpickling
    (only names nothing else has taken; removed afterwards)."""
    import importlib
    import sys

    added = []
    try:
        for old, new in _LEGACY_MODULES.items():
            if old not in sys.modules:
                sys.modules[old] = importlib.import_module(new)
                added.append(old)
        yield
    finally:
        for old in added:
            sys.modules.pop(old, None)


@dataclass(frozen=True)
class ModelEvent:
    """One change of champion, as ``CHAMPIONS.jsonl`` keeps it."""

    at: str
    action: str  # "promote" or "rollback"
    before: str | None  # the champion until then
    after: str
    user: str
    reason: str = ""


def _pointer(folder: Path, name: str) -> str | None:
    path = Path(folder) / name
    if not path.exists():
        return None
    version = path.read_text(encoding="utf-8").strip()
    return version if version and (Path(folder) / version / "model.joblib").exists() else None


def champion(folder: str | os.PathLike) -> str | None:
    """The version ``flag`` uses (``LATEST``), or None before any training."""
    return _pointer(Path(folder), "LATEST")


def challenger(folder: str | os.PathLike) -> str | None:
    """The newest trained version that is not (yet) the champion, or None."""
    version = _pointer(Path(folder), "CHALLENGER")
    return None if version == champion(folder) else version


def champion_history(folder: str | os.PathLike) -> list[ModelEvent]:
    """Every promotion and rollback in ``folder``, oldest first."""
    path = Path(folder) / "CHAMPIONS.jsonl"
    if not path.exists():
        return []
    events = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            events.append(ModelEvent(**{k: row.get(k) for k in ModelEvent.__dataclass_fields__}))
    return events


def _record(folder: Path, event: ModelEvent) -> None:
    """Append ``event`` durably (the log is the audit trail of who changed the model)."""
    path = folder / "CHAMPIONS.jsonl"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (json.dumps(asdict(event), ensure_ascii=False) + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


def promote(folder: str | os.PathLike, version: str, user: str, reason: str = "") -> ModelEvent:
    """Make ``version`` the champion of ``folder``; returns the recorded event.

    Example
    -------
    >>> folder = Path(tempfile.mkdtemp())
    >>> for v in ("v1", "v2"):
    ...     _ = private_dir(folder / v); _ = (folder / v / "model.joblib").write_bytes(b"")
    >>> promote(folder, "v1", "ana").after, promote(folder, "v2", "ana").before
    ('v1', 'v1')
    >>> rollback(folder, "bo").after, champion(folder)
    ('v1', 'v1')
    """
    folder = Path(folder)
    if not (folder / version / "model.joblib").exists():
        known = sorted(p.name for p in folder.iterdir() if (p / "model.joblib").exists()) if folder.exists() else []
        raise ValueError(f"No model version {version!r} in {folder}; versions: {', '.join(known) or 'none'}.")
    before = champion(folder)
    if before == version:
        raise ValueError(f"{version} is already the champion.")
    event = ModelEvent(_now(), "promote", before, version, user, reason)
    _record(folder, event)
    atomic_write_text(folder / "LATEST", version)
    return event


def rollback(folder: str | os.PathLike, user: str, reason: str = "") -> ModelEvent:
    """Return to the champion before the current one (repeatable: each call
    goes one further back along the promotions)."""
    folder = Path(folder)
    chain: list[str] = []  # champions in force, oldest first, replayed from the log
    for event in champion_history(folder):
        if event.action == "promote":
            if not chain and event.before:
                chain.append(event.before)  # a champion from before the log existed
            chain.append(event.after)
        elif event.action == "rollback" and chain:
            chain.pop()
    current = champion(folder)
    if current is None or len(chain) < 2 or chain[-1] != current:
        raise ValueError(f"No earlier champion to return to in {folder} (the current one is {current}).")
    event = ModelEvent(_now(), "rollback", current, chain[-2], user, reason)
    _record(folder, event)
    atomic_write_text(folder / "LATEST", chain[-2])
    return event


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in str(text)).strip("-.") or "unknown"


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_stale(folder: Path) -> None:
    """Delete temporary version folders a killed save left behind (a day old:
    a save running right now in another process is never touched)."""
    now = time.time()
    for leftover in folder.glob(f".*{TMP_MARKER}*"):
        if leftover.is_dir() and now - leftover.stat().st_mtime > _STALE_SECONDS:
            shutil.rmtree(leftover, ignore_errors=True)


def _savefig(fig, path: Path) -> None:
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png")


def _plots(report: dict, target: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    if not report.get("_curves"):  # a findings-only model validated nothing: no curve to draw
        return
    fig, ax = plt.subplots(figsize=(5, 4.5), dpi=110)
    for kind, (fpr, tpr) in report.get("_curves", {}).items():
        auc = report["models"][kind]["all features"]["auc"]
        ax.plot(fpr, tpr, label=f"{kind} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC, out-of-time validation")
    ax.legend(loc="lower right")
    fig.tight_layout()
    _savefig(fig, target / "roc.png")
    plt.close(fig)

    valid = report.get("_valid")
    if valid:
        chosen = report["chosen"]
        y, scores = valid["y"], valid["scores"][chosen]
        fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
        bins = np.linspace(0, 1, 41)
        ax.hist(scores[y == 0], bins=bins, alpha=0.6, density=True, label="good")
        ax.hist(scores[y == 1], bins=bins, alpha=0.6, density=True, label="bad")
        cfg = report["config"]
        for name, value in (("review", cfg["review_threshold"]), ("decline", cfg["decline_threshold"])):
            ax.axvline(value, color="black", linestyle="--", linewidth=1)
            ax.text(value, ax.get_ylim()[1] * 0.9, f" {name}", fontsize=8)
        ax.set_xlabel(f"calibrated score ({chosen})")
        ax.set_ylabel("density")
        ax.set_title("Score distribution, out-of-time validation")
        ax.legend()
        fig.tight_layout()
        _savefig(fig, target / "scores.png")
        plt.close(fig)
