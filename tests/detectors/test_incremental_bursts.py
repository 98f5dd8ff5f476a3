"""Device/IP bursts and broker rings around a batch equal a full run.

``detect_around`` runs a detector on its scope (the batch's identifiers'
histories; the batch's broker groups and their time windows) judged by the
whole portfolio's statistics. These cases are the ones a scope can get
wrong: a burst the batch starts, one it joins that began days earlier, a
busy network whose history makes the batch ordinary, a broker group reaching
back months through a shared contact, an agent whose habit makes a batch of
equal figures ordinary; and random batches over a generated portfolio.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from ringscope.detectors.base import Finding
from ringscope.detectors.brokers import BrokerRings
from ringscope.detectors.incremental import detect_around
from ringscope.detectors.portfolio import Portfolio
from ringscope.detectors.template_cells import cell_reference, template_cells
from ringscope.detectors.velocity import DeviceVelocity, burst_base, burst_windows
from ringscope.graph.embedded import EmbeddedStore
from ringscope.ingest.pipeline import ingest_folder
from ringscope.ingest.synthetic import GeneratorConfig, generate_portfolio
from tests.detectors.builder import ExportBuilder

START = datetime(2025, 1, 6, 9, 0)
NAT_IP = "117.136.12.34"
RUNNER = "13700001111"


def _holding(findings: list[Finding], ids) -> dict[tuple, Finding]:
    ids = set(ids)
    return {(f.kind, tuple(sorted(f.members))): f for f in findings if ids & set(f.members)}


def _assert_equal_around(
    portfolio: Portfolio, detector, ids: list[str], full: list[Finding] | None = None, statistics=None
) -> tuple[dict, int]:
    """Findings holding ``ids`` from ``detect_around`` equal a full run's
    (``full``, default: run here); returns them and the size of the scope
    the general path reads (``detect_around`` may answer without one)."""
    expected = _holding(detector.run(portfolio) if full is None else full, ids)
    run = detect_around(
        portfolio, ids, names=[detector.name], statistics=None if statistics is None else {detector.name: statistics}
    )
    assert not run.errors, run.errors
    got = _holding(run.findings, ids)
    assert sorted(got) == sorted(expected)
    for key, finding in expected.items():
        assert abs(got[key].score - finding.score) <= 1e-9, key
        assert got[key].evidence_json() == finding.evidence_json()
    if detector.name in run.shortcuts:
        stats = detector.statistics(portfolio) if statistics is None else statistics
        return expected, len(detector.scope(portfolio, ids, stats).applications)
    return expected, run.scope_sizes[detector.name]


# -- device and IP bursts -----------------------------------------------------------


def _velocity_book(b: ExportBuilder) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {
        "background": [],
        "chain": [],
        "start_history": [],
        "start": [],
        "nat": [],
        "nat_batch": [],
    }
    for i in range(90):  # a year of ordinary traffic, each on its own device and network
        out["background"].append(
            b.app(applied_at=START + timedelta(days=4 * i, hours=i % 9), ip=f"58.{i % 200 + 1}.{i // 200 + 1}.9")[
                "application_id"
            ]
        )
    # a farm phone in use for eight days, one application every 12 hours: windows chain into one burst
    for j in range(16):
        out["chain"].append(
            b.app(applied_at=START + timedelta(days=150, hours=12 * j), device_id="farm-chain")["application_id"]
        )
    # a phone seen twice months apart, then five applications one evening (the batch starts the burst)
    for day in (20, 120):
        out["start_history"].append(
            b.app(applied_at=START + timedelta(days=day), device_id="farm-start")["application_id"]
        )
    for j in range(5):
        out["start"].append(
            b.app(applied_at=START + timedelta(days=300, hours=18, minutes=40 * j), device_id="farm-start")[
                "application_id"
            ]
        )
    # a carrier NAT: an application every 3.5 days all year, then five in one evening
    for j in range(100):
        out["nat"].append(b.app(applied_at=START + timedelta(days=3.5 * j, hours=j % 7), ip=NAT_IP)["application_id"])
    for j in range(5):
        out["nat_batch"].append(
            b.app(applied_at=START + timedelta(days=340, hours=19, minutes=30 * j), ip=NAT_IP)["application_id"]
        )
    return out


@pytest.fixture(scope="module")
def velocity_book(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("velocity-around")
    b = ExportBuilder(start=START)
    planted = _velocity_book(b)
    store = EmbeddedStore(tmp / "store")
    b.load(store, tmp / "export")
    return planted, store


def test_burst_the_batch_joins_holds_its_earlier_days(velocity_book):
    planted, store = velocity_book
    portfolio = Portfolio(store)
    newest = planted["chain"][-1]
    found, size = _assert_equal_around(portfolio, DeviceVelocity(), [newest])
    (finding,) = found.values()
    # the whole eight-day chain, most of it more than one window (72 h) before the new application
    assert set(finding.members) == set(planted["chain"]) and finding.kind == "device_farm"
    assert size < len(portfolio.applications) / 4


def test_burst_the_batch_starts_is_judged_with_the_device_history(velocity_book):
    planted, store = velocity_book
    portfolio = Portfolio(store)
    detector = DeviceVelocity()
    found, _ = _assert_equal_around(portfolio, detector, planted["start"])
    assert [set(f.members) for f in found.values()] == [set(planted["start"])]
    scope = detector.scope(portfolio, planted["start"], detector.statistics(portfolio))
    # the device's earlier applications are read: its own rate outside the window
    assert set(planted["start_history"]) <= set(scope.applications["application_id"])


def test_busy_network_history_makes_the_batch_ordinary(velocity_book):
    planted, store = velocity_book
    portfolio = Portfolio(store)
    detector = DeviceVelocity()
    found, size = _assert_equal_around(portfolio, detector, planted["nat_batch"])
    assert found == {}  # five in an evening is this NAT's normal traffic
    assert size >= len(planted["nat"])  # because the scope reads the IP's whole year
    # read without that history, the same evening would look like a burst
    stats = detector.statistics(portfolio)
    alone = detector.run(portfolio.subset(planted["nat_batch"]), statistics=stats)
    assert [set(f.members) for f in alone] == [set(planted["nat_batch"])]


def test_burst_windows_with_the_portfolio_base_judge_one_identifier_as_the_whole_does():
    # one key with three applications in an hour among 2,000 keys with three spread over a year:
    # after Bonferroni over the 6,003 windows tested the hour is not improbable enough
    rng = np.random.default_rng(5)
    day = pd.Timedelta(days=1)
    t0 = pd.Timestamp("2025-01-01", tz="UTC")
    keys = np.r_[np.repeat([f"k{i}" for i in range(2000)], 3), ["hot"] * 3]
    times = pd.Series(
        np.r_[t0 + day * rng.uniform(0, 365, 6000), [t0 + day * 100 + pd.Timedelta(minutes=m) for m in (0, 20, 40)]]
    )
    keys, times = pd.Series(keys), pd.Series(pd.to_datetime(times, utc=True))
    span = (times.max() - times.min()).total_seconds()
    args = dict(window_seconds=72 * 3600.0, min_apps=3, alpha=1e-3, span_seconds=span)
    whole = burst_windows(keys, times, **args)
    assert "hot" not in set(whole["key"])
    hot = keys == "hot"
    base = burst_base(keys, times, min_apps=3)
    assert base.tested == 6003 and base.identifiers == 2001
    assert burst_windows(keys[hot], times[hot], base=base, **args).empty
    # judged by its own rows alone (three windows tested) it would be a burst
    assert set(burst_windows(keys[hot], times[hot], **args)["key"]) == {"hot"}


# -- broker rings -----------------------------------------------------------------


def _honest(b: ExportBuilder, rng, agent: str, n: int, every_days: float, offset: int) -> list[str]:
    ids = []
    for i in range(n):
        inc = round(float(np.exp(rng.normal(np.log(8000), 0.5))), -2)
        row = b.app(
            agent_id=agent,
            channel="agent",
            declared_monthly_income=inc,
            amount=round(inc * float(rng.uniform(2, 8)), -2),
            applied_at=START + timedelta(days=every_days * i + offset, hours=int(rng.integers(0, 9))),
        )
        b.contact(row["application_id"], f"联系人{agent}{i}", f"136{offset:02d}{i:06d}", "parent")
        ids.append(row["application_id"])
    return ids


def _broker_book(b: ExportBuilder) -> dict[str, list[str]]:
    rng = np.random.default_rng(11)
    out: dict[str, list[str]] = {}
    for k, agent in enumerate(("AG-A", "AG-B", "AG-C")):
        out[agent] = _honest(b, rng, agent, 40, 9, k)
    out["ring_agent_honest"] = _honest(b, rng, "AG-RING", 40, 9, 7)
    # months before the batch, one of the agent's applicants already named the runner as contact
    early = b.app(
        agent_id="AG-RING",
        channel="agent",
        declared_monthly_income=29300,
        amount=200000,
        applied_at=START + timedelta(days=40),
    )
    b.contact(early["application_id"], "张经理", RUNNER, "friend")
    out["ring_early"] = [early["application_id"]]
    ring = []
    for j in range(9):  # the packaged batch: near-identical figures in three days, the runner's phone
        row = b.app(
            agent_id="AG-RING",
            channel="agent",
            declared_monthly_income=29000 + 100 * (j % 6),
            amount=200000,
            applied_at=START + timedelta(days=200, hours=7 * j),
        )
        b.contact(row["application_id"], "张经理", RUNNER, "friend")
        ring.append(row["application_id"])
    out["ring"] = ring
    # an agent whose customers declare 30,000 every week: five more in two days are its habit
    habit = []
    for i in range(50):
        row = b.app(
            agent_id="AG-HABIT",
            channel="agent",
            declared_monthly_income=30000,
            amount=90000,
            applied_at=START + timedelta(days=7 * i + 3),
        )
        b.contact(row["application_id"], f"家人{i}", f"13500{i:06d}", "parent")
        habit.append(row["application_id"])
    out["habit"] = habit
    batch = []
    for j in range(5):
        row = b.app(
            agent_id="AG-HABIT",
            channel="agent",
            declared_monthly_income=30000,
            amount=90000,
            applied_at=START + timedelta(days=360, hours=9 * j),
        )
        b.contact(row["application_id"], f"客户{j}", f"13400{j:06d}", "parent")
        batch.append(row["application_id"])
    out["habit_batch"] = batch
    # a busy week: 40 customers with their own figures, and five declaring 20,000, three of them naming
    # one contact; among the week's 45 the five are no template, and three make no group of four
    out["week_honest"] = _honest(b, rng, "AG-WEEK", 100, 3.6, 9)
    first = np.ceil((START - datetime(1970, 1, 1)).days / 7 + 40) * 7 + 0.3  # inside one cell of both time grids
    busy, five = [], []
    for j in range(45):
        when = datetime(1970, 1, 1) + timedelta(days=first + 2.5 * j / 45)
        if j % 9 == 4:
            row = b.app(
                agent_id="AG-WEEK", channel="agent", declared_monthly_income=20000, amount=60000, applied_at=when
            )
            if len(five) < 3:
                b.contact(row["application_id"], "王姐", "13700009999", "friend")
            five.append(row["application_id"])
            continue
        inc = 20000.0
        while abs(np.log(inc / 20000.0)) < 0.15:
            inc = round(float(np.exp(rng.normal(np.log(8000), 0.5))), -2)
        busy.append(
            b.app(agent_id="AG-WEEK", channel="agent", declared_monthly_income=inc, amount=30000, applied_at=when)[
                "application_id"
            ]
        )
    out["week_busy"], out["week_five"] = busy, five
    return out


@pytest.fixture(scope="module")
def broker_book(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("brokers-around")
    b = ExportBuilder(start=START)
    planted = _broker_book(b)
    store = EmbeddedStore(tmp / "store")
    b.load(store, tmp / "export")
    return planted, store


def test_broker_group_reaching_back_through_a_shared_contact(broker_book):
    planted, store = broker_book
    portfolio = Portfolio(store)
    batch = planted["ring"][-3:]
    found, size = _assert_equal_around(portfolio, BrokerRings(), batch)
    (finding,) = found.values()
    # the group holds the application 160 days earlier that shares the runner's phone
    assert set(finding.members) == set(planted["ring"]) | set(planted["ring_early"])
    # ... yet the scope is the group and its weeks, not the agent's year of business
    agent_book = len(planted["ring_agent_honest"]) + len(planted["ring"]) + 1
    assert size < agent_book - len(planted["ring_agent_honest"]) // 2


def test_agent_habit_read_from_the_statistics_not_the_window(broker_book):
    planted, store = broker_book
    portfolio = Portfolio(store)
    detector = BrokerRings()
    found, size = _assert_equal_around(portfolio, detector, planted["habit_batch"])
    assert found == {}
    assert size < len(planted["habit"])  # the habit is outside the scope: only the statistics know it
    stats = detector.statistics(portfolio)
    assert int(stats.per_agent.loc["AG-HABIT", "size"]) == 55


def test_broker_cells_of_the_batch_count_their_whole_window(broker_book):
    planted, store = broker_book
    portfolio = Portfolio(store)
    detector = BrokerRings()
    found, size = _assert_equal_around(portfolio, detector, planted["week_five"])
    assert found == {}
    assert size >= len(planted["week_busy"])  # the week's other customers are counted
    # counted without them, the five would look like a template joining the three into a ring
    stats = detector.statistics(portfolio)
    alone = detector.run(portfolio.subset(planted["week_five"]), statistics=stats)
    assert [set(f.members) for f in alone] == [set(planted["week_five"])]


def test_template_cells_with_the_portfolio_reference_judge_a_window_as_the_whole_does():
    # agent A declares 30,000 every week all year, then five times in two days; agent B's figures vary
    rng = np.random.default_rng(3)
    t = pd.Series(np.r_[np.arange(50) * 7.0, 400 + np.arange(5) * 0.4, rng.uniform(0, 400, 60)])
    agent = pd.Series(["A"] * 55 + ["B"] * 60)
    f = pd.Series(np.r_[np.log(np.full(55, 30000.0)), rng.normal(np.log(8000), 0.5, 60)])
    args = dict(window_days=7.0, band=float(np.log1p(0.05)), min_apps=4, alpha=1e-3, prior_weight=20.0)
    whole = template_cells(agent, t, f, **args)
    assert not set(whole["row"]) & set(range(50, 55))
    window = (agent == "B") | (t >= 392)  # agent A's last weeks only, and all of B
    reference = cell_reference(agent, t, f, window_days=7.0, band=args["band"])
    cut = template_cells(agent[window], t[window], f[window], reference=reference, **args)
    assert not set(cut["row"]) & set(range(50, 55))
    # without the reference agent A's habit is out of sight and the five look templated
    assert set(range(50, 55)) <= set(template_cells(agent[window], t[window], f[window], **args)["row"])


# -- random batches over a generated portfolio --------------------------------------


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Portfolio:
    tmp = tmp_path_factory.mktemp("generated-around")
    generate_portfolio(GeneratorConfig(applications=2500, seed=102, device_farms=0.04, broker_rings=0.06), tmp / "data")
    store = EmbeddedStore(tmp / "store")
    ingest_folder(tmp / "data", store, rejects_path=tmp / "rejects.csv")
    return Portfolio(store)


@pytest.mark.parametrize("detector", [DeviceVelocity(), BrokerRings()], ids=lambda d: d.name)
def test_any_batch_gets_the_findings_of_a_full_run(generated, detector):
    """Not only the latest applications: a re-delivered slice of history, a
    random sample, or a few members of known findings."""
    apps = generated.applications
    full = detector.run(generated)
    members = sorted({m for f in full for m in f.members})
    order = apps.sort_values(["applied_at", "application_id"])["application_id"].astype(str).tolist()
    rng = np.random.default_rng(1)
    batches = [order[-50:], order[1000:1100], list(rng.choice(order, 50, replace=False))]
    batches += [list(rng.choice(members, k, replace=False)) for k in (1, 1, 3, 10)]
    compared = 0
    stats = detector.statistics(generated)
    for batch in batches:
        expected, size = _assert_equal_around(generated, detector, [str(i) for i in batch], full, stats)
        assert size < len(apps) / 4, (detector.name, size)
        compared += len(expected)
    assert compared >= 5  # the batches do hold findings
