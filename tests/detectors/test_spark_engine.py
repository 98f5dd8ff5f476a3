"""The Spark engine (``detect --engine spark``) gives what the in-process engine gives.

One generated book and one local Spark session for the module; the tests
needing Spark are marked ``slow`` (``make test-fast`` skips them).
"""

from __future__ import annotations

import ipaddress
import shutil
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from ringscope.app.cli import cli
from ringscope.detectors.components import component_labels
from ringscope.detectors.engine import IN_PROCESS, engine_of
from ringscope.detectors.rings import identifier_hubs, ring_components
from ringscope.detectors.runner import load_findings, run_detectors, save_findings
from ringscope.graph.embedded import EmbeddedStore

pyspark = pytest.importorskip("pyspark")


class Recording:
    """An engine that hands every call to ``inner`` and keeps its inputs and output."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.name = inner.name
        self.calls: list[tuple[str, tuple, dict, object]] = []

    def links_of(self, portfolio):
        out = self.inner.links_of(portfolio)
        self.calls.append(("links_of", (portfolio,), {}, out))
        return out

    def links_of_applications(self, links, app_ids):
        out = self.inner.links_of_applications(links, app_ids)
        self.calls.append(("links_of_applications", (links, app_ids), {}, out))
        return out

    def identifier_hubs(self, links, **params):
        out = self.inner.identifier_hubs(links, **params)
        self.calls.append(("identifier_hubs", (links,), params, out))
        return out

    def ring_components(self, links, hubs):
        out = self.inner.ring_components(links, hubs)
        self.calls.append(("ring_components", (links, hubs), {}, out))
        return out

    def velocity_bursts(self, detector, portfolio, statistics=None):
        out = self.inner.velocity_bursts(detector, portfolio, statistics)
        self.calls.append(("velocity_bursts", (detector, portfolio, statistics), {}, out))
        return out

    def links_of_kinds(self, portfolio, kinds, app_ids):
        out = self.inner.links_of_kinds(portfolio, kinds, app_ids)
        self.calls.append(("links_of_kinds", (portfolio, kinds, app_ids), {}, out))
        return out

    def cashflow_peer_groups(self, detector, portfolio):
        out = self.inner.cashflow_peer_groups(detector, portfolio)
        self.calls.append(("cashflow_peer_groups", (detector, portfolio), {}, out))
        return out


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    from ringscope.ingest.pipeline import ingest_folder
    from ringscope.ingest.synthetic import GeneratorConfig, generate_portfolio

    root = tmp_path_factory.mktemp("spark-book")
    generate_portfolio(GeneratorConfig(applications=2000, seed=11), root / "data")
    store = EmbeddedStore(root / "store")
    ingest_folder(root / "data", store, rejects_path=root / "rejects.csv")
    store.close()
    return root


def _copy(book, tmp_path, name: str):
    shutil.copytree(book / "store", tmp_path / name)
    return tmp_path / name


@pytest.fixture(scope="module")
def spark():
    from ringscope.detectors.spark import SparkEngine

    with SparkEngine("local[2]") as engine:
        yield engine.start()


@pytest.fixture(scope="module")
def runs(book, spark, tmp_path_factory):
    """Every detector over the book, in process and with the Spark engine (recorded)."""
    tmp = tmp_path_factory.mktemp("spark-runs")
    embedded_store = EmbeddedStore(_copy(book, tmp, "embedded"))
    embedded = run_detectors(embedded_store)
    save_findings(embedded_store, embedded)
    embedded_store.close()
    recording = Recording(spark)
    spark_store = EmbeddedStore(_copy(book, tmp, "spark"))
    with_spark = run_detectors(spark_store, engine=recording)
    spark_store.close()
    return embedded, with_spark, recording, tmp


def _by_members(findings) -> dict:
    return {(f.detector, f.kind, tuple(sorted(f.members))): f for f in findings}


# -- the seam, in process (fast) ---------------------------------------------------


def test_run_detectors_hands_the_rings_passes_to_the_engine_given(book, tmp_path):
    store = EmbeddedStore(_copy(book, tmp_path, "s"))
    recording = Recording(IN_PROCESS)
    run = run_detectors(store, ["shared_identifier_rings"], engine=recording)
    assert [c[0] for c in recording.calls] == [
        "links_of",
        "identifier_hubs",
        "ring_components",
        "links_of_applications",
    ]
    assert engine_of(run.portfolio) is recording
    plain = run_detectors(store, ["shared_identifier_rings"])
    assert engine_of(plain.portfolio) is IN_PROCESS
    assert run.findings and _by_members(run.findings).keys() == _by_members(plain.findings).keys()
    store.close()


#: velocity parameters under which the small book has bursts (on devices and IPs; none at the defaults)
_LOOSE_VELOCITY = {"device_velocity": {"alpha": 0.9, "min_apps": 2, "window_hours": 1440}}


def test_velocity_hands_its_whole_portfolio_pass_to_the_engine_given(book, tmp_path):
    store = EmbeddedStore(_copy(book, tmp_path, "s"))
    recording = Recording(IN_PROCESS)
    run = run_detectors(store, ["device_velocity"], params=_LOOSE_VELOCITY, engine=recording)
    assert [c[0] for c in recording.calls] == ["velocity_bursts", "links_of_kinds"]
    plain = run_detectors(store, ["device_velocity"], params=_LOOSE_VELOCITY)
    assert run.findings and [f.finding_id for f in run.findings] == [f.finding_id for f in plain.findings]
    store.close()


def test_cashflow_hands_its_whole_book_pass_to_the_engine_given(book, tmp_path):
    store = EmbeddedStore(_copy(book, tmp_path, "s"))
    recording = Recording(IN_PROCESS)
    run = run_detectors(store, ["cashflow"], engine=recording)
    assert [c[0] for c in recording.calls] == ["cashflow_peer_groups"]
    plain = run_detectors(store, ["cashflow"])
    assert run.findings and [f.finding_id for f in run.findings] == [f.finding_id for f in plain.findings]
    store.close()


def test_bad_spark_master_is_a_usage_error_not_a_traceback(book, tmp_path):
    store = _copy(book, tmp_path, "s")
    result = CliRunner().invoke(
        cli, ["detect", "--store", str(store), "--quiet", "--engine", "spark", "--spark-master", "http://example.com"]
    )
    assert result.exit_code == 2, result.output
    assert "not a Spark master URL" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(cli, ["detect", "--store", str(store), "--quiet", "--spark-master", "local[2]"])
    assert result.exit_code == 2 and "--spark-master needs --engine spark" in result.output


# -- Spark (slow) --------------------------------------------------------------------


def _pandas_links(links, embedded):
    """The pandas link table the embedded run built where ``links`` came from Spark's files."""
    from ringscope.detectors.spark.links import SparkLinks

    return embedded.portfolio.derived["ring_links"] if isinstance(links, SparkLinks) else links


@pytest.mark.slow
def test_hub_table_is_identical_to_pandas(runs):
    embedded, _, recording, _ = runs
    calls = [c for c in recording.calls if c[0] == "identifier_hubs"]
    assert calls
    for _, (links,), params, got in calls:
        expected = identifier_hubs(_pandas_links(links, embedded), **params)
        # the decisions must be exercised both ways on this book
        assert got["glue"].any() and (~got["glue"]).any()
        pd.testing.assert_frame_equal(got.sort_index(), expected.sort_index(), check_exact=True)


@pytest.mark.slow
def test_components_are_identical_to_scipys(runs):
    embedded, _, recording, _ = runs
    calls = [c for c in recording.calls if c[0] == "ring_components"]
    assert calls
    for _, (links, hubs), _, got in calls:
        expected = ring_components(_pandas_links(links, embedded), hubs)
        assert got.nunique() > 10
        pd.testing.assert_series_equal(got, expected)
        partition = {frozenset(g.index) for _, g in got.groupby(got)}
        assert partition == {frozenset(g.index) for _, g in expected.groupby(expected)}


@pytest.mark.slow
def test_spark_reads_the_links_from_the_stores_parquet_files(runs):
    """Over an embedded store the links never pass through pandas: Spark's plan
    reads the store's own files, and the portfolio never builds its link tables."""
    from ringscope.detectors.spark.links import SparkLinks

    embedded, with_spark, recording, _ = runs
    (links,) = [c[3] for c in recording.calls if c[0] == "links_of"]
    assert isinstance(links, SparkLinks)
    store = with_spark.portfolio.store
    # the files the engine's frame was built over are the store's own (the plan itself,
    # cached by now, is checked over a fresh copy below)
    assert {store.table_path("rels", rel) for rel in _RING_RELS} <= set(links.files)
    assert store.table_path("rels", "Person-APPLIED-Application") in links.files
    # neither the portfolio's long link table nor the rings' entity links were built in Python
    assert "links" not in vars(with_spark.portfolio)
    assert "ring_links" not in with_spark.portfolio.derived
    assert "ring_links" in embedded.portfolio.derived  # (the embedded engine does build them)
    # the same rows as pandas builds, keys and entities included
    expected = embedded.portfolio.derived["ring_links"]
    got = links.frame.toArrow().to_pandas()
    assert len(got) == len(expected)
    key = ["application_id", "kind", "identifier", "entity"]
    assert sorted(map(tuple, got[key].astype(str).to_numpy())) == sorted(
        map(tuple, expected[key].astype(str).to_numpy())
    )
    merged = with_spark.portfolio.person_entity  # identity resolution merged some applicants
    assert merged is not None and (merged.index != merged.to_numpy()).any()


_RING_RELS = ("Application-HAS_PHONE-Phone", "Application-HAS_DEVICE-Device", "Application-EMERGENCY_CONTACT-Phone")


@pytest.mark.slow
def test_spark_plan_scans_the_store_files(book, spark, tmp_path):
    from ringscope.detectors.portfolio import Portfolio

    store = EmbeddedStore(_copy(book, tmp_path, "plan"))
    links = spark.links_of(Portfolio(store))
    read = {Path(urlparse(f).path) for f in links.frame.inputFiles()}
    for rel in (*_RING_RELS, "Person-APPLIED-Application"):
        assert store.table_path("rels", rel).resolve() in read
    assert store.table_path("nodes", "Application").resolve() in read
    assert all(str(f).startswith(str(store.path.resolve())) for f in read)


@pytest.mark.slow
def test_members_links_are_collected_in_the_pandas_order(runs):
    """What scoring reads: the rings' applications' links, row for row as pandas has them."""
    embedded, _, recording, _ = runs
    [((links, app_ids), got)] = [(c[1], c[3]) for c in recording.calls if c[0] == "links_of_applications"]
    expected = IN_PROCESS.links_of_applications(_pandas_links(links, embedded), app_ids)
    assert len(got) > 100
    pd.testing.assert_frame_equal(
        got.reset_index(drop=True).astype(object), expected.reset_index(drop=True).astype(object)
    )


@pytest.mark.slow
def test_findings_equal_the_embedded_engines(runs):
    embedded, with_spark, _, _ = runs
    assert not embedded.errors and not with_spark.errors
    mine, theirs = _by_members(with_spark.findings), _by_members(embedded.findings)
    assert mine.keys() == theirs.keys()
    assert any(key[0] == "shared_identifier_rings" for key in mine)
    for key, finding in mine.items():
        assert abs(finding.score - theirs[key].score) <= 1e-9, key
        assert finding.evidence == theirs[key].evidence


@pytest.mark.slow
def test_detect_engine_spark_saves_the_embedded_findings(book, runs, spark):
    _, _, _, tmp = runs
    store = _copy(book, tmp, "cli")
    result = CliRunner().invoke(
        cli, ["detect", "--store", str(store), "--quiet", "--engine", "spark", "--spark-master", "local[2]"]
    )
    assert result.exit_code == 0, result.output
    assert "engine: spark on local[2]" in result.output
    saved = {(f.finding_id, f.members, f.score) for f in load_findings(EmbeddedStore(store))}
    embedded = {(f.finding_id, f.members, f.score) for f in load_findings(EmbeddedStore(tmp / "embedded"))}
    assert saved and saved == embedded
    assert spark.started  # the module's session was used, and left running


@pytest.mark.slow
def test_velocity_in_spark_reads_the_store_not_the_pandas_portfolio_and_finds_the_same(book, spark, tmp_path):
    """The windows over every device, IP and IP range are counted in Spark from the store's
    files: the portfolio's applications and link tables are never read into pandas, only the
    identifiers that may hold a dense window come back, and the clusters and findings are
    the embedded engine's."""
    from ringscope.detectors.velocity import DeviceVelocity

    store = EmbeddedStore(_copy(book, tmp_path, "velocity"))
    embedded = run_detectors(store, ["device_velocity"], params=_LOOSE_VELOCITY)
    recording = Recording(spark)
    with_spark = run_detectors(store, ["device_velocity"], params=_LOOSE_VELOCITY, engine=recording)
    assert not embedded.errors and not with_spark.errors
    assert "applications" not in vars(with_spark.portfolio) and "_links_by_kind" not in vars(with_spark.portfolio)
    # the same clusters, p-values and counts as the whole book's pass in process
    [((detector, portfolio, _), (got, collected))] = [
        (c[1], c[3]) for c in recording.calls if c[0] == "velocity_bursts"
    ]
    assert isinstance(detector, DeviceVelocity) and portfolio is with_spark.portfolio
    expected, book_apps = detector.bursts(embedded.portfolio)
    assert {"device", "ip"} <= set(got["kind"])
    # only the candidates' applications were collected: a small part of the book
    assert len(collected) < len(book_apps) / 4
    columns = ["application_id", "key", "kind", "cluster", "pvalue", "expected", "window_count"]
    pd.testing.assert_frame_equal(got[columns].astype(object), expected[columns].astype(object), check_exact=True)
    # the members' links, collected from the store's files, row for row as pandas has them
    [((_, kinds, ids), links)] = [(c[1], c[3]) for c in recording.calls if c[0] == "links_of_kinds"]
    pd.testing.assert_frame_equal(
        links.astype(object), IN_PROCESS.links_of_kinds(embedded.portfolio, kinds, ids).astype(object)
    )
    mine, theirs = _by_members(with_spark.findings), _by_members(embedded.findings)
    assert len(mine) >= 5 and mine.keys() == theirs.keys()
    for key, finding in mine.items():
        assert abs(finding.score - theirs[key].score) <= 1e-9, key
        assert finding.evidence == theirs[key].evidence
        assert (finding.summary, finding.shared, finding.entities) == (
            theirs[key].summary,
            theirs[key].shared,
            theirs[key].entities,
        )
    store.close()


@pytest.mark.slow
def test_cashflow_in_spark_reads_the_store_not_the_pandas_portfolio_and_finds_the_same(book, spark, tmp_path):
    """The peer groups are learnt in Spark from the store's files: the portfolio's
    applications are never read into pandas, the statistics are the in-process ones
    bit for bit, only the applications some check may fail come back, and the
    findings are the embedded engine's."""
    from ringscope.detectors.cashflow import CashflowChecks

    store = EmbeddedStore(_copy(book, tmp_path, "cashflow"))
    embedded = run_detectors(store, ["cashflow"])
    recording = Recording(spark)
    with_spark = run_detectors(store, ["cashflow"], engine=recording)
    assert not embedded.errors and not with_spark.errors
    assert "applications" not in vars(with_spark.portfolio)
    [((detector, portfolio), (rows, statistics))] = [
        (c[1], c[3]) for c in recording.calls if c[0] == "cashflow_peer_groups"
    ]
    assert isinstance(detector, CashflowChecks) and portfolio is with_spark.portfolio
    book_rows, expected = detector.peer_groups(embedded.portfolio)
    for name in ("applications", "term_fill", "round_share", "n_values"):
        assert getattr(statistics, name) == getattr(expected, name), name
    for col in ("trade", "fine_trade"):
        pd.testing.assert_series_equal(
            statistics.key_counts[col].sort_index(), expected.key_counts[col].sort_index(), check_names=False
        )
    pd.testing.assert_series_equal(statistics.peers.sort_index(), expected.peers.sort_index(), check_names=False)
    for name in ("figure", "amount", "leverage"):
        pd.testing.assert_frame_equal(
            getattr(statistics, name).sort_index(),
            getattr(expected, name).sort_index(),
            check_exact=True,
            check_names=False,
        )
    assert statistics.repeats.keys() == expected.repeats.keys()
    for kind, arrays in expected.repeats.items():
        for got, want in zip(statistics.repeats[kind], arrays, strict=True):
            np.testing.assert_array_equal(got, want)
    # only the candidates came back: every application with some failing check, a small part of the book
    checked = detector.checks_of(book_rows, expected)
    assert set(checked.loc[checked["score"] > 0, "application_id"]) <= set(rows["application_id"])
    assert len(rows) < len(book_rows) / 4
    mine, theirs = _by_members(with_spark.findings), _by_members(embedded.findings)
    assert len(mine) >= 5 and mine.keys() == theirs.keys()
    for key, finding in mine.items():
        assert abs(finding.score - theirs[key].score) <= 1e-9, key
        assert (finding.evidence, finding.summary, finding.entities) == (
            theirs[key].evidence,
            theirs[key].summary,
            theirs[key].entities,
        )
    store.close()


@pytest.mark.slow
def test_passes_over_applications_already_read_run_in_process(book, spark, tmp_path):
    """Identity resolution reads the applications before the other detectors: the
    velocity and cash-flow passes then run on the table in hand (Spark would
    read the book again and save no memory), and find what they find in Spark."""
    store = EmbeddedStore(_copy(book, tmp_path, "read"))
    names = ["identity", "device_velocity", "cashflow"]
    recording = Recording(spark)
    run = run_detectors(store, names, params=_LOOSE_VELOCITY, engine=recording)
    assert not run.errors and "applications" in vars(run.portfolio)
    calls = {c[0]: c for c in recording.calls}
    _, book_apps = calls["velocity_bursts"][3]
    assert len(book_apps) == len(run.portfolio.applications)  # the whole book: in process
    (detector, portfolio), (rows, _) = calls["cashflow_peer_groups"][1], calls["cashflow_peer_groups"][3]
    assert len(rows) == len(detector.peer_groups(portfolio)[0])
    plain = run_detectors(store, names, params=_LOOSE_VELOCITY)
    assert run.findings and [f.finding_id for f in run.findings] == [f.finding_id for f in plain.findings]
    alone = run_detectors(store, ["cashflow"], engine=spark)  # nothing read yet: the pass runs in Spark
    assert "applications" not in vars(alone.portfolio)
    assert {f.finding_id for f in alone.findings} == {f.finding_id for f in plain.findings if f.detector == "cashflow"}
    store.close()


@pytest.mark.slow
def test_local_spark_listens_and_talks_on_loopback_only(spark):
    import psutil

    conf = dict(spark.session.sparkContext.getConf().getAll())
    assert conf["spark.driver.host"] == conf["spark.driver.bindAddress"] == "127.0.0.1"
    assert conf["spark.ui.enabled"] == "false"
    assert conf["spark.local.dir"].startswith(str(spark._scratch))
    assert spark.session.range(100).count() == 100
    jvms = [p for p in psutil.Process().children(recursive=True) if "java" in p.name()]
    assert jvms
    addresses = [c.laddr.ip for p in jvms for c in p.net_connections("inet")]
    addresses += [c.raddr.ip for p in jvms for c in p.net_connections("inet") if c.raddr]
    assert addresses
    for address in addresses:
        ip = ipaddress.ip_address(address)
        ip = ip.ipv4_mapped or ip if ip.version == 6 else ip
        assert ip.is_loopback, address


@pytest.mark.slow
def test_star_components_match_scipy_on_chains_and_stars(spark):
    from ringscope.detectors.spark.components import star_components

    rng = np.random.default_rng(3)
    edges = [(i, i + 1) for i in range(24)]  # a path: several rounds
    edges += [(100, 100 + k) for k in range(1, 30)]  # a star
    edges += [tuple(rng.integers(200, 400, 2)) for _ in range(150)]  # random sparse graph
    edges += [(500, 500)]  # a self loop alone
    frame = spark.session.createDataFrame([(int(a), int(b)) for a, b in edges], "src long, dst long")
    got = star_components(frame).toArrow().to_pandas().set_index("vertex")["root"]
    src, dst = np.array(edges).T
    labels = component_labels(int(max(src.max(), dst.max())) + 1, src, dst)
    for vertex, root in got.items():
        members = np.flatnonzero(labels == labels[vertex])
        assert root == members[np.isin(members, got.index)].min()
    assert set(got.index) == set(src) | set(dst)
