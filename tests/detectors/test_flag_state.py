"""Repeat nightly runs are cheap (issue 12): ``flag`` saves its index beside
the store and the next run on an unchanged store loads it, with the same
flags as a run that rebuilds; any write invalidates it; a damaged state is
rebuilt with a warning."""

from __future__ import annotations

import json
import os
import shutil
import warnings
from datetime import timedelta

import pandas as pd
import pyarrow as pa
import pytest

from ringscope.app.jobs import flag_applications
from ringscope.detectors.risk import flag_state
from ringscope.detectors.risk.flag_state import MANIFEST, FlagStateWarning, discard_state, load_state, state_folder
from ringscope.detectors.risk.flagging import FlagIndex
from ringscope.detectors.runner import load_findings, run_detectors, save_findings
from ringscope.graph.store import GraphBatch
from ringscope.ingest.pipeline import ingest_folder
from ringscope.ingest.synthetic import GeneratorConfig, generate_portfolio
from tests.detectors.builder import ExportBuilder
from tests.detectors.test_flagging import LATER, _new_batch, _prepare

# trains models or runs whole jobs end to end: in `make test`, not in `make test-fast`
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """An embedded store with a portfolio, findings and a model, prepared once
    (each test works on a copy), and the folder it was generated in."""
    from ringscope.graph.embedded import EmbeddedStore

    root = tmp_path_factory.mktemp("prepared")
    generate_portfolio(GeneratorConfig(applications=1500, seed=12), root / "data")
    model = _prepare(EmbeddedStore(root / "store"), root / "data", root)
    return root, model


def _copy(prepared, tmp_path):
    from ringscope.graph.embedded import EmbeddedStore

    root, model = prepared
    shutil.copytree(root / "store", tmp_path / "store")
    return EmbeddedStore(tmp_path / "store"), model


@pytest.fixture
def private_data(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))  # Neo4j's state folder


class _Reads:
    """Counts whole-table reads from a store (what rebuilding the index costs)."""

    def __init__(self, store) -> None:
        self.store, self.tables = store, []
        self._nodes, self._rels = store.read_nodes, store.read_relationships

    def __enter__(self):
        self.store.read_nodes = lambda label, columns=None: (self.tables.append(label), self._nodes(label, columns))[1]
        self.store.read_relationships = lambda name, columns=None: (
            self.tables.append(name),
            self._rels(name, columns),
        )[1]
        return self

    def __exit__(self, *exc) -> None:
        self.store.read_nodes, self.store.read_relationships = self._nodes, self._rels


def _flag(store, folder, model, tmp_path):
    return flag_applications(store, folder, model, tmp_path / "rejects.csv")[1]


def _load(store, prepared, tmp_path):
    """``_prepare`` without training (the prepared model scores): a portfolio
    and its saved findings in ``store``, either kind."""
    root, model = prepared
    ingest_folder(root / "data", store, rejects_path=tmp_path / "base-rejects.csv")
    early = ExportBuilder(start=LATER - timedelta(days=30), first_index=5000)
    for i in range(2):
        early.app(
            f"EARLY{i}",
            device_id="half-ring-device",
            bank_account="6228480055556666777",
            applied_at=LATER - timedelta(days=2 - i),
            label="",
        )
    early.load(store, tmp_path / "early")
    save_findings(store, run_detectors(store, ["shared_identifier_rings", "guarantee_circles"]))
    return model


def test_second_flag_loads_the_state_and_flags_as_a_rebuild_does(store, prepared, tmp_path, private_data):
    model = _load(store, prepared, tmp_path)
    batch = _new_batch(tmp_path)
    first = _flag(store, batch, model, tmp_path)
    assert first.state.how == "rebuilt" and first.state.reason == "no saved state"
    manifest = json.loads((state_folder(store) / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["revision"] == store.revision()  # the state includes this run's own writes
    # what it saved as the stored findings is what the store reads back (its new findings included)
    state, _ = load_state(store, store.revision())
    assert [(f.finding_id, f.members, f.score, f.evidence) for f in state["findings"]] == [
        (f.finding_id, f.members, f.score, f.evidence) for f in load_findings(store)
    ]
    assert {f.finding_id for f in first.new_findings} <= {f.finding_id for f in state["findings"]}

    # the same batch again: the ingest changes nothing, so the state is loaded on
    # either store (Neo4j counts a property set to the value it holds as an
    # update; the merge queries report what really differs instead)
    with _Reads(store) as reads:
        second = _flag(store, batch, model, tmp_path)
    assert second.state.how == "loaded", second.state
    assert reads.tables == [], reads.tables  # not one whole table read from the store
    assert set(manifest["statistics"]) >= {"identity", "shared_identifier_rings", "device_velocity"}
    # a third run on the unchanged store must load on either store: the second saved after its writes
    with _Reads(store) as reads:
        index = FlagIndex.open(store, bad_labels=model.known_bad)
    assert index.state.how == "loaded" and reads.tables == []
    discard_state(store)
    rebuilt = _flag(store, batch, model, tmp_path)
    assert rebuilt.state.how == "rebuilt"
    pd.testing.assert_frame_equal(second.flags, rebuilt.flags)
    pd.testing.assert_frame_equal(first.flags, rebuilt.flags)
    assert sorted(f.finding_id for f in second.new_findings) == sorted(f.finding_id for f in rebuilt.new_findings)


def test_the_loaded_index_equals_a_built_one(prepared, tmp_path):
    """Field by field: the tables, the arrays, the statistics, the findings."""
    store, model = _copy(prepared, tmp_path)
    _flag(store, _new_batch(tmp_path), model, tmp_path)
    loaded = FlagIndex.open(store, bad_labels=model.known_bad)
    built = FlagIndex.build(store, bad_labels=model.known_bad)
    assert loaded.state.how == "loaded"
    for name in ("applications", "contacts", "guarantees", "roles", "persons", "companies"):
        pd.testing.assert_frame_equal(loaded.portfolio.cached_tables()[name], getattr(built.portfolio, name))
    # the long links table is not held (nor saved): rebuilt from the links by kind, it is the same
    assert "links" not in loaded.portfolio.cached_tables()
    pd.testing.assert_frame_equal(loaded.portfolio.links, built.portfolio.links)
    for kind, frame in built.portfolio._links_by_kind.items():
        pd.testing.assert_frame_equal(loaded.portfolio._links_by_kind[kind], frame)
    for name, value in built.arrays().items():  # the saved index arrays, dtypes and missing values included
        saved = loaded.arrays()[name]
        if isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(saved, value)
        elif isinstance(value, pd.Index):
            pd.testing.assert_index_equal(saved, value, exact=True)
        elif isinstance(value, pa.Array):  # text held by Arrow (the identifier index)
            assert isinstance(saved, pa.Array) and saved.equals(value), name
        else:
            assert saved.dtype == value.dtype, name
            pd.testing.assert_series_equal(pd.Series(saved), pd.Series(value), obj=name)
    pd.testing.assert_frame_equal(loaded.apps, built.apps)
    assert [f.finding_id for f in loaded.findings] == [f.finding_id for f in built.findings]
    # statistics as a rebuild computes them (hub tables compared as frames)
    built.detect(["NEW0"])
    hubs = loaded.detector_statistics["shared_identifier_rings"]
    pd.testing.assert_frame_equal(hubs, built.detector_statistics["shared_identifier_rings"])
    assert set(loaded.detector_statistics) == set(built.detector_statistics)


def test_any_write_invalidates_the_state(prepared, tmp_path):
    store, model = _copy(prepared, tmp_path)
    _flag(store, _new_batch(tmp_path), model, tmp_path)
    assert FlagIndex.open(store, bad_labels=model.known_bad).state.how == "loaded"
    store.write(GraphBatch(nodes={"Application": pd.DataFrame({"key": ["NEW0"], "label": ["fraud"]})}))
    index = FlagIndex.open(store, bad_labels=model.known_bad)
    assert index.state.how == "rebuilt" and "changed" in index.state.reason
    assert index.apps.loc["NEW0", "label"] == "fraud"


def test_a_corrupt_or_partial_state_is_rebuilt_with_a_warning(prepared, tmp_path):
    store, model = _copy(prepared, tmp_path)
    batch = _new_batch(tmp_path)
    expected = _flag(store, batch, model, tmp_path).flags
    folder = state_folder(store)
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    assert all(oct(p.stat().st_mode & 0o777) == "0o600" for p in folder.rglob("*") if p.is_file())
    pickled = folder / "findings.pkl"
    damages = [
        lambda: pickled.write_bytes(pickled.read_bytes()[:-100]),  # cut short
        lambda: (folder / "tables" / "applications.arrow").write_bytes(b"ARROW1 not arrow"),
        lambda: (folder / "tables" / "persons.arrow").unlink(),  # a file missing
        lambda: (folder / MANIFEST).write_text("{not json", encoding="utf-8"),
    ]
    good = shutil.copytree(folder, tmp_path / "good-state")
    for damage in damages:
        shutil.rmtree(folder)
        shutil.copytree(good, folder)
        assert FlagIndex.open(store, bad_labels=model.known_bad).state.how == "loaded"
        damage()
        with pytest.warns(FlagStateWarning, match="unusable"):
            index = FlagIndex.open(store, bad_labels=model.known_bad)
        assert index.state.how == "rebuilt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FlagStateWarning)
        result = _flag(store, batch, model, tmp_path)  # rebuilds, flags, saves a good state again
    pd.testing.assert_frame_equal(result.flags, expected)
    assert FlagIndex.open(store, bad_labels=model.known_bad).state.how == "loaded"
    # a state saved by other code is not used (no warning: it is simply old)
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    (folder / MANIFEST).write_text(json.dumps({**manifest, "code_version": "0" * 64}), encoding="utf-8")
    index = FlagIndex.open(store, bad_labels=model.known_bad)
    assert index.state.how == "rebuilt" and "code" in index.state.reason


def test_cli_summary_says_whether_the_state_was_loaded(prepared, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from ringscope.app.cli import cli
    from ringscope.graph.embedded import EmbeddedStore

    _copy(prepared, tmp_path)
    monkeypatch.setenv("RINGSCOPE_MODELS", str(prepared[0] / "models"))
    batch = _new_batch(tmp_path)
    args = [
        "flag",
        str(batch),
        "--store",
        str(tmp_path / "store"),
        "--out",
        str(tmp_path / "flags.csv"),
        "--rejects",
        str(tmp_path / "r.csv"),
        "--quiet",
    ]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert "index rebuilt from the store" in first.output and "state saved for the next run" in first.output
    second = CliRunner().invoke(cli, args)
    assert second.exit_code == 0, second.output
    assert "index loaded from the saved flag state" in second.output
    os.remove(state_folder(EmbeddedStore(tmp_path / "store")) / "findings.pkl")
    third = CliRunner().invoke(cli, args)
    assert third.exit_code == 0 and "warning: saved flag state" in third.output


class _Calls:
    """Counts the calls of ``module.name`` (the real function still runs)."""

    def __init__(self, monkeypatch, module, name: str) -> None:
        self.count, real = 0, getattr(module, name)

        def counted(*args, **kwargs):
            self.count += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(module, name, counted)


def test_a_repeat_run_of_the_batch_reuses_its_detection_and_its_ingest(
    store, prepared, tmp_path, private_data, monkeypatch
):
    """The second run of a batch on an unchanged store takes the detection
    around it from the saved state (the identity model is never unpickled);
    the run that ingests records what ingesting the same files again reports,
    and the next runs of them take its summary and rejects instead of reading
    the store again.
    The flags are those of a rebuild every time."""
    import ringscope.detectors.risk.flagging as flagging
    import ringscope.ingest.pipeline as pipeline

    model = _load(store, prepared, tmp_path)
    batch = _new_batch(tmp_path)
    state_folder(store).mkdir(parents=True)
    (state_folder(store) / "state.pkl").write_bytes(b"an older format's pickle")
    first = _flag(store, batch, model, tmp_path)  # a real ingest: it records what ingesting again reports
    manifest = json.loads((state_folder(store) / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["ingest"] is not None
    # the folder holds this state only: what the manifest does not name is gone
    held = {p.relative_to(state_folder(store)).as_posix() for p in state_folder(store).rglob("*") if p.is_file()}
    assert held == set(manifest["files"]) | {MANIFEST}
    first_rejects = (tmp_path / "rejects.csv").read_bytes()

    detections = _Calls(monkeypatch, flagging, "detect_around")
    ingests = _Calls(monkeypatch, pipeline, "ingest_folder")
    loads = _Calls(monkeypatch, flag_state.SavedStatistics, "load")
    (tmp_path / "rejects.csv").unlink()
    kept = {p: p.stat().st_mtime_ns for p in state_folder(store).rglob("*") if p.suffix in (".arrow", ".npy")}
    kept[state_folder(store) / "statistics.pkl"] = (state_folder(store) / "statistics.pkl").stat().st_mtime_ns
    summary, second = flag_applications(store, batch, model, tmp_path / "rejects.csv")
    assert second.state.how == "loaded"
    assert detections.count == 0 and loads.count == 0  # no detection, statistics never read
    assert ingests.count == 0  # the first run recorded what this ingest reports: not read again
    assert json.loads((state_folder(store) / MANIFEST).read_text(encoding="utf-8"))["ingest"] is not None
    pd.testing.assert_frame_equal(second.flags, first.flags)
    assert sorted(f.finding_id for f in second.new_findings) == sorted(f.finding_id for f in first.new_findings)

    (tmp_path / "rejects.csv").unlink()
    replayed, third = flag_applications(store, batch, model, tmp_path / "rejects.csv")
    assert ingests.count == 0 and detections.count == 0 and loads.count == 0
    assert third.state.how == "loaded"  # (its scores are written again, with their time: a new revision)
    assert replayed.application_ids == summary.application_ids and replayed.rows_rejected == summary.rows_rejected
    assert replayed.exit_code == summary.exit_code and replayed.reject_reasons == summary.reject_reasons
    assert (tmp_path / "rejects.csv").read_bytes() == first_rejects  # the rejected row is still reported
    pd.testing.assert_frame_equal(third.flags, first.flags)
    # nothing but the findings, the ingest record and the manifest was written again, and the state is good
    assert {p: p.stat().st_mtime_ns for p in kept} == kept
    assert FlagIndex.open(store, bad_labels=model.known_bad).state.how == "loaded"

    discard_state(store)
    rebuilt = _flag(store, batch, model, tmp_path)
    assert rebuilt.state.how == "rebuilt" and detections.count == 1 and ingests.count == 1
    pd.testing.assert_frame_equal(rebuilt.flags, first.flags)


def test_the_saved_detection_serves_only_its_own_batch(prepared, tmp_path, monkeypatch):
    """Another set of applications on the same revision is detected afresh,
    with the saved statistics (read then); after a write nothing is reused."""
    import ringscope.detectors.risk.flagging as flagging

    store, model = _copy(prepared, tmp_path)
    batch = _new_batch(tmp_path)
    _flag(store, batch, model, tmp_path)
    detections = _Calls(monkeypatch, flagging, "detect_around")
    index = FlagIndex.open(store, bad_labels=model.known_bad)
    assert index.state.how == "loaded" and index.pending_statistics is not None
    alone = index.score(model, ["NEW0"])
    assert detections.count == 1 and index.detection_ran and index.pending_statistics is None
    assert {"identity", "shared_identifier_rings"} <= set(index.detector_statistics)
    built = FlagIndex.build(store, bad_labels=model.known_bad)
    pd.testing.assert_frame_equal(alone.flags, built.score(model, ["NEW0"]).flags)


def test_a_changed_batch_folder_is_ingested_again(prepared, tmp_path, monkeypatch):
    """The ingest record is keyed by the files' bytes: the same folder with
    one more application is read and loads it."""
    import ringscope.ingest.pipeline as pipeline

    store, model = _copy(prepared, tmp_path)
    batch = _new_batch(tmp_path)
    _flag(store, batch, model, tmp_path)
    _flag(store, batch, model, tmp_path)  # changes nothing: recorded
    ingests = _Calls(monkeypatch, pipeline, "ingest_folder")
    _flag(store, batch, model, tmp_path)
    assert ingests.count == 0
    apps = pd.read_csv(batch / "applications.csv", dtype=str, keep_default_na=False)
    extra = apps[apps["application_id"] == "HONEST"].assign(application_id="HONEST2")
    pd.concat([apps, extra]).to_csv(batch / "applications.csv", index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FlagStateWarning)  # the state is saved, its ingest recorded
        summary, result = flag_applications(store, batch, model, tmp_path / "rejects.csv")
    assert ingests.count == 2 and "HONEST2" in summary.application_ids  # the ingest, then the dry run recording it
    assert result.state.how == "rebuilt" and "HONEST2" in set(result.flags["application_id"])
    _flag(store, batch, model, tmp_path)
    assert ingests.count == 2  # replayed


def test_damaged_statistics_or_ingest_record_cost_time_not_flags(prepared, tmp_path, monkeypatch):
    """The files read on demand are verified when read: damaged statistics
    are computed again, a damaged ingest record means ingesting again; each
    with a warning, and the flags are the same."""
    import ringscope.ingest.pipeline as pipeline

    store, model = _copy(prepared, tmp_path)
    batch = _new_batch(tmp_path)
    expected = _flag(store, batch, model, tmp_path).flags
    _flag(store, batch, model, tmp_path)  # records the unchanged ingest
    folder = state_folder(store)
    statistics = folder / "statistics.pkl"
    statistics.write_bytes(statistics.read_bytes()[:-10])
    index = FlagIndex.open(store, bad_labels=model.known_bad)
    assert index.state.how == "loaded"
    with pytest.warns(FlagStateWarning, match="statistics are computed again"):
        loaded = index.score(model, ["NEW0", "NEW1"])  # another batch: detection runs, reads the statistics
    built = FlagIndex.build(store, bad_labels=model.known_bad)
    pd.testing.assert_frame_equal(loaded.flags, built.score(model, ["NEW0", "NEW1"]).flags)
    assert "identity" in index.detector_statistics
    assert set(index.detector_statistics) == set(built.detector_statistics)

    (folder / "ingest.pkl").write_bytes(b"\x80not a pickle")
    ingests = _Calls(monkeypatch, pipeline, "ingest_folder")
    with pytest.warns(FlagStateWarning, match="ingested again"):
        result = _flag(store, batch, model, tmp_path)
    assert ingests.count == 1
    pd.testing.assert_frame_equal(result.flags, expected)


def _summary_fields(summary) -> dict:
    """What a run reports of its ingest, less where it ran and how long it took."""
    from dataclasses import asdict

    fields = asdict(summary)
    for name in ("seconds", "rejects_path", "folder"):
        fields.pop(name)
    return fields


def test_the_run_that_ingests_leaves_what_the_next_run_replays(store, prepared, tmp_path, private_data, monkeypatch):
    """Run 1 really ingests its batch (the store changes); it records what
    ingesting the same files again reports, on the store as it leaves it, so
    run 2 of the same folder neither ingests nor reads a table: its ingest
    summary and rejects are those of a real second ingest (which changes
    nothing), its flags those of run 1 and of a rebuild. The batch repeats a
    contact, a guarantee and a share with other values: loaded the first
    time, rejected as stored with other content the second — so the record
    is not run 1's own summary."""
    import ringscope.detectors.risk.flagging as flagging
    import ringscope.ingest.pipeline as pipeline
    from ringscope.detectors.risk.flag_state import ingest_key, unchanged_ingest
    from tests.detectors.builder import company_uscc, person_id

    model = _load(store, prepared, tmp_path)
    batch = ExportBuilder(start=LATER, first_index=6000)
    for i in range(2):
        batch.app(f"NEW{i}", device_id="half-ring-device", bank_account="6228480055556666777", label="")
    batch.app("HONEST", label="", ip="172.16.9.3")
    batch.business_app(61, "FIRM", label="")
    batch.app("BROKEN", amount="", label="")  # breaks the contract: rejected both times
    batch.contact("NEW0", "张三", "13900001111")
    batch.contact("NEW0", "李四", "13900001111")  # the same contact, another name
    batch.contact("GHOST", "王五", "13900002222")  # no such application: rejected both times
    batch.guarantee("HONEST", "person", "赵六", person_id(6100), amount=100000)
    batch.guarantee("HONEST", "person", "赵六", person_id(6100), amount=200000)
    batch.role(company_uscc(61), "钱七", person_id(6101), role="shareholder", share_pct=40)
    batch.role(company_uscc(61), "钱七", person_id(6101), role="shareholder", share_pct=60)
    folder = batch.write(tmp_path / "new")

    before = store.revision()
    first_summary, first = flag_applications(store, folder, model, tmp_path / "rejects.csv")
    assert store.revision() != before and first.state.how == "rebuilt"
    first_rejects = pd.read_csv(tmp_path / "rejects.csv", encoding="utf-8-sig")
    assert len(first_rejects) == 2  # BROKEN and GHOST's contact
    manifest = json.loads((state_folder(store) / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["revision"] == store.revision() and manifest["ingest"] is not None
    record = unchanged_ingest(store, store.revision(), ingest_key(folder))
    assert record is not None

    # a real second ingest on this store: it changes nothing and reports what was recorded
    revision = store.revision()
    again = ingest_folder(folder, store, rejects_path=tmp_path / "again.csv")
    assert store.revision() == revision
    assert _summary_fields(again) == _summary_fields(record["summary"])
    assert (tmp_path / "again.csv").read_bytes() == record["rejects"]
    assert _summary_fields(again) != _summary_fields(first_summary)  # three rows more rejected: not a copy
    assert again.rows_rejected == first_summary.rows_rejected + 3
    assert again.application_ids == first_summary.application_ids

    ingests = _Calls(monkeypatch, pipeline, "ingest_folder")
    detections = _Calls(monkeypatch, flagging, "detect_around")
    with _Reads(store) as reads:
        summary, second = flag_applications(store, folder, model, tmp_path / "rejects2.csv")
    assert ingests.count == 0 and detections.count == 0 and reads.tables == [], reads.tables
    assert second.state.how == "loaded"
    assert _summary_fields(summary) == _summary_fields(again)
    assert (tmp_path / "rejects2.csv").read_bytes() == (tmp_path / "again.csv").read_bytes()
    pd.testing.assert_frame_equal(second.flags, first.flags)
    assert sorted(f.finding_id for f in second.new_findings) == sorted(f.finding_id for f in first.new_findings)

    discard_state(store)
    rebuilt = _flag(store, folder, model, tmp_path)
    assert rebuilt.state.how == "rebuilt" and ingests.count == 1
    pd.testing.assert_frame_equal(rebuilt.flags, first.flags)


def test_a_failed_dry_run_costs_the_next_run_its_ingest_not_the_state(prepared, tmp_path, monkeypatch):
    """Recording the ingest is a dry run of it; when that fails, the state is
    saved all the same (with a warning) and the next run ingests the folder."""
    import ringscope.ingest.pipeline as pipeline

    store, model = _copy(prepared, tmp_path)
    batch = _new_batch(tmp_path)
    real = pipeline.ingest_folder

    def failing(*args, dry_run=False, **kwargs):
        if dry_run:
            raise OSError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "ingest_folder", failing)
    with pytest.warns(FlagStateWarning, match="ingest was not recorded"):
        first = _flag(store, batch, model, tmp_path)
    manifest = json.loads((state_folder(store) / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["revision"] == store.revision() and manifest["ingest"] is None
    monkeypatch.setattr(pipeline, "ingest_folder", real)
    ingests = _Calls(monkeypatch, pipeline, "ingest_folder")
    second = _flag(store, batch, model, tmp_path)
    assert ingests.count == 1 and second.state.how == "loaded"
    pd.testing.assert_frame_equal(second.flags, first.flags)
