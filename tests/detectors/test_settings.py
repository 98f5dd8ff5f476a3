"""One settings object: a TOML file, saved by detect, reused by train and flag, digested everywhere."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from ringscope.app.cli import cli
from ringscope.app.jobs import flag_applications
from ringscope.detectors.registry import DETECTORS
from ringscope.detectors.risk.flagging import FlagIndex
from ringscope.detectors.risk.scoring import load_model, target_folder
from ringscope.detectors.runner import load_findings, run_detectors, save_findings
from ringscope.detectors.settings import Settings, SettingsError, load_settings, stored_settings
from ringscope.graph.embedded import EmbeddedStore
from ringscope.ingest.pipeline import ingest_folder
from ringscope.ingest.synthetic import GeneratorConfig, generate_portfolio

# trains models or runs whole jobs end to end: in `make test`, not in `make test-fast`
pytestmark = pytest.mark.slow

CONFIG = """
[detectors.device_velocity]
window_hours = 48.0

[detectors.shared_identifier_rings]
fence_mads = 3.5

[training]
review_capacity = 0.04
"""


def _write(tmp_path, text: str, name: str = "ringscope.toml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "text, message",
    [
        ("[detectors.rings]\nmin_people = 3\n", "Unknown detector 'rings'"),
        ("[detectors.shared_identifier_rings]\nmin_size = 3\n", "its parameters: min_people"),
        ("[detectors.shared_identifier_rings]\nmin_people = 1\n", "'min_people'"),
        ("[training]\nreview_capacity = 2.0\n", "review_capacity"),
        ("[training]\ntarget = 'default'\n", "Unknown training setting(s) target"),
        ("[detector.cashflow]\nmin_peers = 3\n", "unknown section(s) detector"),
        ("[detectors.cashflow\n", "not valid TOML"),
    ],
)
def test_a_bad_file_names_what_is_wrong(tmp_path, text, message):
    with pytest.raises(SettingsError) as caught:
        load_settings(_write(tmp_path, text))
    assert message in str(caught.value)
    assert "ringscope.toml" in str(caught.value)  # which file


def test_printed_settings_read_back_as_the_same_settings(tmp_path):
    chosen = load_settings(_write(tmp_path, CONFIG))
    printed = _write(tmp_path, chosen.to_toml(), "printed.toml")
    again = load_settings(printed)
    assert again.digest == chosen.digest != Settings().digest
    assert again.effective() == chosen.effective()
    assert set(again.effective()["detectors"]) == set(DETECTORS)  # every detector listed, defaults filled in


def test_the_digest_follows_the_effective_values_not_the_spelling():
    default_rings = Settings().effective()["detectors"]["shared_identifier_rings"]
    spelled_out = Settings({"shared_identifier_rings": dict(default_rings)})
    assert spelled_out.digest == Settings().digest  # naming a default changes nothing
    assert Settings({"cashflow": {"min_peers": 31}}).digest != Settings().digest


@pytest.fixture(scope="module")
def detected(tmp_path_factory):
    """A book detected with CONFIG, trained without --config, and its new batch."""
    root = tmp_path_factory.mktemp("settings")
    generate_portfolio(GeneratorConfig(applications=2500, seed=5, new_batch_share=0.05), root / "data")
    config = _write(root, CONFIG)
    store_path = root / "store"
    ingest_folder(root / "data" / "history", EmbeddedStore(store_path), rejects_path=root / "rejects.csv")
    runner = CliRunner()
    done = runner.invoke(cli, ["detect", "--store", str(store_path), "--config", str(config), "--quiet"])
    assert done.exit_code == 0, done.output
    trained = runner.invoke(cli, ["train", "--store", str(store_path), "--quiet"])
    assert trained.exit_code == 0, trained.output
    return root, store_path, load_settings(config), done.output


def test_detect_saves_its_settings_and_marks_every_finding(detected):
    root, store_path, chosen, output = detected
    store = EmbeddedStore(store_path)
    saved = stored_settings(store)
    assert saved is not None and saved.digest == chosen.digest
    assert f"digest {chosen.digest}" in output
    assert set(store.read_nodes("Finding", ["settings"])["settings"]) == {chosen.digest}
    by_detector = {f.detector: f.parameters for f in load_findings(store)}
    assert by_detector["device_velocity"]["window_hours"] == 48.0
    printed = CliRunner().invoke(cli, ["settings", "--store", str(store_path)])
    assert printed.exit_code == 0 and f"digest {chosen.digest}" in printed.output
    assert "[detectors.device_velocity]\nwindow_hours = 48.0" in printed.output


def test_train_without_config_uses_what_detect_saved(detected):
    _, store_path, chosen, _ = detected
    model = load_model(target_folder(EmbeddedStore(store_path)))
    assert model.config.review_capacity == 0.04  # the [training] of the file detect was given
    assert model.report["settings"]["digest"] == chosen.digest


def test_flag_runs_the_detectors_with_the_saved_parameters(detected, tmp_path):
    root, store_path, chosen, _ = detected
    store = EmbeddedStore(store_path)
    assert FlagIndex.open(store).settings.digest == chosen.digest
    model = load_model(target_folder(store))
    _, result = flag_applications(store, root / "data" / "new", model, tmp_path / "rejects.csv")
    assert len(result.flags) and set(result.flags["settings"]) == {chosen.digest}
    effective = chosen.effective()["detectors"]
    assert result.new_findings, "the new batch should start or join some finding"
    for finding in result.new_findings:
        expected = {k: tuple(v) if isinstance(v, list) else v for k, v in effective[finding.detector].items()}
        assert finding.parameters == expected, finding.detector


def test_flag_warns_when_the_model_learned_from_other_settings(detected, tmp_path):
    root, store_path, chosen, _ = detected
    store = EmbeddedStore(store_path)
    # detect again with the defaults: the stored findings (and settings) change, the model does not
    save_findings(store, run_detectors(store))
    model = load_model(target_folder(store))
    with pytest.warns(UserWarning, match="trained on findings made with other detector settings"):
        _, result = flag_applications(store, root / "data" / "new", model, tmp_path / "rejects.csv", save=False)
    assert set(result.flags["settings"]) == {Settings(training={"review_capacity": 0.04}).digest}


@pytest.mark.neo4j
def test_settings_round_trip_through_neo4j(neo4j_store, tmp_path):
    from tests.sample_data import write_sample

    write_sample(tmp_path / "export")
    ingest_folder(tmp_path / "export", neo4j_store, rejects_path=tmp_path / "rejects.csv")
    chosen = Settings({"cashflow": {"min_peers": 10}}, source="bank.toml")
    save_findings(neo4j_store, run_detectors(neo4j_store, settings=chosen))
    saved = stored_settings(neo4j_store)
    assert saved is not None and saved.digest == chosen.digest and saved.source == "bank.toml"
    digests = neo4j_store.read_nodes("Finding", ["settings"])["settings"]
    assert digests.empty or set(digests) == {chosen.digest}
    # a second detect replaces the one Settings node with the findings
    save_findings(neo4j_store, run_detectors(neo4j_store))
    assert stored_settings(neo4j_store).digest == Settings().digest
    assert len(neo4j_store.read_nodes("Settings")) == 1
