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
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from graph.files import TMP_MARKER, atomic_open, atomic_write_text, private_dir

__all__ = ["models_folder", "target_folder", "store_identity", "user_data_dir", "save_model", "load_model"]

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
    from graph.store import redact_uri

    where = redact_uri(str(getattr(store, "location", "")))
    return f"{getattr(store, 'kind', 'store')}-{hashlib.sha1(where.encode('utf-8')).hexdigest()[:16]}"


def models_folder(store: Any) -> Path:
    """Where models of ``store`` live (see the module docstring).

    Example
    -------
    >>> from graph.embedded import EmbeddedStore
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
    >>> from graph.embedded import EmbeddedStore
    >>> store = EmbeddedStore(tempfile.mkdtemp())
    >>> target_folder(store) == models_folder(store), target_folder(store, "default").name
    (True, 'default')
    """
    root = models_folder(store)
    return root if target == "fraud" else root / _safe(target)


def save_model(model: Any, report: dict, folder: str | os.PathLike) -> Path:
    """Save ``model`` as ``<folder>/<version>/`` (model.joblib, report.json,
    roc.png, scores.png) and then point ``<folder>/LATEST`` at it.

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
    atomic_write_text(folder / "LATEST", version)
    return folder / version


def load_model(folder: str | os.PathLike, version: str | None = None):
    """Load the latest (or a given) model version from ``folder``."""
    folder = Path(folder)
    if version is None:
        latest = folder / "LATEST"
        if not latest.exists():
            raise FileNotFoundError(f"No trained model in {folder}; run `ringscope train` first.")
        version = latest.read_text(encoding="utf-8").strip()
    return joblib.load(folder / version / "model.joblib")


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

    fig, ax = plt.subplots(figsize=(5, 4.5), dpi=110)
    for kind, (fpr, tpr) in report.get("_curves", {}).items():
        auc = report["models"][kind]["all features"]["auc"]
        ax.plot(fpr, tpr, label=f"{kind} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC, out-of-time validation")
    if report.get("_curves"):
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
