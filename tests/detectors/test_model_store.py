"""Where models live and how they are saved (issue 11, item 14).

One rule for both stores: ``$RINGSCOPE_MODELS``, else ``<store>/models`` for
the embedded store and the user's data folder keyed by the database's own id
for Neo4j, so ``flag`` finds the model of ``train`` from any working
directory. A version is private (0700/0600) and appears whole or not at all.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from ringscope.app.cli import cli
from ringscope.detectors.risk.model_store import load_model, models_folder, save_model, store_identity
from ringscope.graph.files import TMP_MARKER
from ringscope.ingest.pipeline import ingest_folder
from ringscope.ingest.synthetic import GeneratorConfig, generate_portfolio
from tests.detectors.builder import ExportBuilder

# trains models or runs whole jobs end to end: in `make test`, not in `make test-fast`
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models") / "data"
    generate_portfolio(GeneratorConfig(applications=1200, seed=3), folder)
    return folder


@pytest.fixture
def data_home(tmp_path, monkeypatch):
    monkeypatch.delenv("RINGSCOPE_MODELS", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg"


def _store_args(store, request) -> list[str]:
    if store.kind == "embedded":
        return ["--store", str(store.location)]
    return ["--neo4j", request.getfixturevalue("neo4j_uri")]


def _modes(folder: Path) -> set[tuple[str, int]]:
    return {(p.name, stat.S_IMODE(p.stat().st_mode)) for p in [folder, *folder.rglob("*")]}


def test_flag_finds_the_model_from_another_directory(store, generated, data_home, tmp_path, monkeypatch, request):
    ingest_folder(generated, store, rejects_path=tmp_path / "rejects.csv")
    args = _store_args(store, request)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    trained = CliRunner().invoke(cli, ["train", *args, "--quiet"])
    assert trained.exit_code == 0, trained.output
    monkeypatch.chdir(tmp_path / "b")
    batch = ExportBuilder(first_index=9000)
    batch.app("LATE1", label="")
    out = tmp_path / "flags.csv"
    flagged = CliRunner().invoke(
        cli,
        [
            "flag",
            str(batch.write(tmp_path / "new")),
            *args,
            "--out",
            str(out),
            "--rejects",
            str(tmp_path / "r.csv"),
            "--quiet",
        ],
    )
    assert flagged.exit_code == 0, flagged.output
    assert "LATE1" in out.read_text(encoding="utf-8-sig")
    # nothing was written under either working directory
    assert not any((tmp_path / "a").iterdir()) and not any((tmp_path / "b").iterdir())

    folder = models_folder(store)
    if store.kind == "embedded":
        assert folder == Path(store.location) / "models"
    else:
        assert folder == data_home / "ringscope" / "models" / store_identity(store)
        assert store_identity(store) == f"neo4j-{store.store_id()}"
    version = (folder / "LATEST").read_text(encoding="utf-8")
    assert (folder / version / "model.joblib").exists() and (folder / version / "roc.png").exists()
    modes = _modes(folder)
    assert {m for name, m in modes if (folder / name).is_dir() or name == folder.name} <= {0o700}
    assert {mode for _, mode in modes} <= {0o700, 0o600}
    assert not [p for p in folder.iterdir() if TMP_MARKER in p.name]


def test_the_neo4j_identity_does_not_depend_on_the_uri(neo4j_store, neo4j_uri, data_home):
    from ringscope.graph.neo4j_store import Neo4jStore

    host, port = neo4j_uri.rsplit("//", 1)[1].rsplit(":", 1)
    other = Neo4jStore(f"neo4j://localhost:{port}" if host == "127.0.0.1" else f"bolt://{host}:{port}")
    # the suite's server has auth on: the real credentials, given inside the URI this time
    from ringscope.graph.neo4j_auth import auth_from_env

    user, password = auth_from_env() or ("neo4j", "")
    with_credentials = Neo4jStore(f"bolt://{user}:{password}@{host}:{port}")
    try:
        assert models_folder(other) == models_folder(neo4j_store)
        folder = str(models_folder(with_credentials))
        assert folder == str(models_folder(neo4j_store))
        assert not password or password not in folder
    finally:
        other.close()
        with_credentials.close()


@dataclass
class Model:
    """A stand-in for a trained model: save_model pickles whatever it is given."""

    version: str


def test_a_failed_save_leaves_the_last_version_in_place(tmp_path):
    folder = tmp_path / "models"
    good = save_model(Model("v1"), {"models": {}}, folder)
    assert (folder / "LATEST").read_text(encoding="utf-8") == "v1" and good == folder / "v1"
    # the ROC plot of a report naming a model it has no metrics for fails midway through the save
    with pytest.raises(KeyError):
        save_model(Model("v2"), {"models": {}, "_curves": {"gbm": ([0, 1], [0, 1])}}, folder)
    assert (folder / "LATEST").read_text(encoding="utf-8") == "v1"
    assert sorted(p.name for p in folder.iterdir()) == ["LATEST", "v1"]  # no v2, no temporary folder
    assert load_model(folder).version == "v1"
    # the same version saved twice is kept twice, never overwritten in place
    again = save_model(Model("v1"), {"models": {}}, folder)
    assert again.name == "v1-2" and (folder / "LATEST").read_text(encoding="utf-8") == "v1-2"
    assert oct(stat.S_IMODE(os.stat(folder / "v1" / "model.joblib").st_mode)) == "0o600"


def test_models_override_and_default_data_folder(tmp_path, monkeypatch):
    from ringscope.detectors.risk.model_store import user_data_dir
    from ringscope.graph.embedded import EmbeddedStore

    monkeypatch.setenv("RINGSCOPE_MODELS", str(tmp_path / "elsewhere"))
    assert models_folder(EmbeddedStore(tmp_path / "s")) == tmp_path / "elsewhere"
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert user_data_dir() == tmp_path / "home" / ".local" / "share" / "ringscope"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/path")  # invalid per XDG: ignored
    assert user_data_dir() == tmp_path / "home" / ".local" / "share" / "ringscope"


def test_a_model_saved_under_the_old_module_names_still_loads(tmp_path, monkeypatch):
    """Models pickled before the package was installed as ``ringscope`` name
    ``detectors.scoring`` for their classes; loading them must not need that
    top-level package to exist."""
    import sys

    import joblib

    import ringscope.detectors as detectors_package
    from ringscope.detectors.risk import scoring
    from ringscope.detectors.risk.model_store import load_model

    old = {"detectors": detectors_package, "detectors.scoring": scoring}
    with monkeypatch.context() as patched:
        for name, module in old.items():
            patched.setitem(sys.modules, name, module)
        patched.setattr(scoring.TrainingConfig, "__module__", "detectors.scoring")
        (tmp_path / "v1").mkdir()
        joblib.dump({"config": scoring.TrainingConfig(review_capacity=0.04)}, tmp_path / "v1" / "model.joblib")
    assert b"detectors.scoring" in (tmp_path / "v1" / "model.joblib").read_bytes()
    for name in old:  # as in a fresh process: no top-level `detectors` package
        monkeypatch.delitem(sys.modules, name, raising=False)
    loaded = load_model(tmp_path, "v1")
    assert isinstance(loaded["config"], scoring.TrainingConfig) and loaded["config"].review_capacity == 0.04
    assert "detectors.scoring" not in sys.modules  # the aliases are gone again
