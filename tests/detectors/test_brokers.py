"""Broker rings: a templated, contact-sharing batch found; busy honest agents and families not."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from ringscope.detectors.brokers import BrokerRings
from ringscope.detectors.template_cells import template_cells
from ringscope.graph.embedded import EmbeddedStore
from tests.detectors.builder import ExportBuilder

START = datetime(2025, 1, 6, 9, 0)
RUNNER_PHONES = ("13700001111", "13700002222")


def _income(rng) -> float:
    return round(float(np.exp(rng.normal(np.log(8000), 0.5))), -2)


def _honest(b: ExportBuilder, rng, agent: str, n: int, every_days: float, offset: int) -> list[str]:
    ids = []
    for i in range(n):
        inc = _income(rng)
        row = b.app(
            agent_id=agent,
            channel="agent",
            declared_monthly_income=inc,
            amount=round(inc * float(rng.uniform(2, 8)), -2),
            term_months=int(rng.choice([6, 12, 24])),
            applied_at=START + timedelta(days=every_days * i + offset, hours=int(rng.integers(0, 9))),
        )
        b.contact(row["application_id"], f"联系人{agent}{i}", f"136{offset:02d}{i:06d}", "parent")
        ids.append(row["application_id"])
    return ids


def _plant(b: ExportBuilder) -> dict[str, list[str]]:
    rng = np.random.default_rng(11)
    out: dict[str, list[str]] = {}
    for k, agent in enumerate(("AG-A", "AG-B", "AG-C")):
        out[agent] = _honest(b, rng, agent, 40, 9, k)
    # a busy honest agent: 150 customers over a year, diverse incomes, nobody's contacts in common
    out["busy"] = _honest(b, rng, "AG-BUSY", 150, 2.4, 5)
    # ... and a promotion day: 8 customers in one afternoon, each with their own figures and contacts
    promo = []
    for j in range(8):
        inc = _income(rng)
        row = b.app(
            agent_id="AG-BUSY",
            channel="agent",
            declared_monthly_income=inc,
            amount=round(inc * 4, -2),
            applied_at=START + timedelta(days=150, hours=13, minutes=25 * j),
        )
        b.contact(row["application_id"], f"促销{j}", f"135{j:08d}", "friend")
        promo.append(row["application_id"])
    out["promo"] = promo
    # a family through one agent: three relatives on one day naming the same mother
    fam = []
    for j in range(3):
        row = b.app(
            agent_id="AG-C",
            channel="agent",
            declared_monthly_income=_income(rng),
            amount=30000,
            applied_at=START + timedelta(days=90, hours=10 + j),
        )
        b.contact(row["application_id"], "李秀英", "13911112222", "parent")
        fam.append(row["application_id"])
    out["family"] = fam
    # the broker: 40 ordinary applications over the year, then 9 packaged ones in three days
    out["ring_agent_honest"] = _honest(b, rng, "AG-RING", 40, 9, 7)
    ring = []
    for j in range(9):
        business = j % 3 == 0
        fields = dict(
            agent_id="AG-RING",
            channel="agent",
            term_months=[12, 24, 36][j % 3],
            applied_at=START + timedelta(days=200, hours=7 * j),
            label="fraud" if j < 2 else "",
        )
        fig = 29000 + 100 * (j % 6)
        if business:
            row = b.business_app(500 + j, declared_monthly_revenue=fig, amount=200000, **fields)
        else:
            row = b.app(declared_monthly_income=fig, amount=200000, **fields)
        b.contact(row["application_id"], "张经理", RUNNER_PHONES[j % 2], "friend")
        ring.append(row["application_id"])
    out["ring"] = ring
    return out


def _run(store, tmp_path, **params):
    b = ExportBuilder(start=START)
    planted = _plant(b)
    b.load(store, tmp_path / "export")
    return planted, BrokerRings(**params).run(store)


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("brokers")
    return _run(EmbeddedStore(tmp / "store"), tmp)


def test_broker_batch_found_with_members_and_evidence(planted):
    apps, findings = planted
    rings = [f for f in findings if f.entities == (("Agent", "AG-RING"),)]
    assert len(rings) == 1
    ring = rings[0]
    assert ring.kind == "broker_ring"
    assert set(ring.members) == set(apps["ring"])  # the batch, not the agent's honest customers
    ev = {e.feature: e for e in ring.evidence}
    assert {"burst", "figure_duplication", "shared_identifiers"} <= set(ev)
    centre, k, n, q, p = ev["figure_duplication"].values
    assert (k, n) == (9, 9) and 29000 <= centre <= 29500 and q < 0.05
    assert ev["burst"].values[3:5] == (9, 49)
    assert {("Phone", "+86" + p) for p in RUNNER_PHONES} <= set(ring.shared)
    assert "contact_phone" in ev["shared_identifiers"].detail
    assert ring.score > 0.8
    assert abs(sum(e.contribution for e in ring.evidence) - ring.score) < 1e-9
    assert "AG-RING" in ring.summary


def test_busy_agent_promotion_and_family_not_flagged(planted):
    apps, findings = planted
    flagged = {m for f in findings for m in f.members}
    for group in ("AG-A", "AG-B", "AG-C", "busy", "promo", "family", "ring_agent_honest"):
        assert not flagged & set(apps[group]), group
    assert [f.entities for f in findings] == [(("Agent", "AG-RING"),)]


def test_family_group_scores_low_when_the_size_floor_allows_it(tmp_path):
    # even with min_apps=3 the family (burst + one shared parent, diverse incomes) stays below the ring
    apps, findings = _run(EmbeddedStore(tmp_path / "store"), tmp_path, min_apps=3, min_score=0.01)
    by_members = {frozenset(f.members): f.score for f in findings}
    ring_score = by_members[frozenset(apps["ring"])]
    family_scores = [s for m, s in by_members.items() if m & set(apps["family"])]
    assert family_scores  # the floor let the family through as a candidate …
    assert all(s < 0.5 * ring_score for s in family_scores)  # … and it scores far below the ring


def test_template_cells_needs_concentration_beyond_the_agents_habits():
    # agent A declares 30,000 every week all year: a batch of the same figure is its habit, not a template
    t = pd.Series(np.r_[np.arange(50) * 7.0, 400 + np.arange(5) * 0.2])
    f = pd.Series(np.log(np.r_[np.full(50, 30000.0), np.full(5, 30000.0)]))
    habit = template_cells(pd.Series(["A"] * 55), t, f, window_days=7, band=0.05, min_apps=4, alpha=1e-3)
    assert habit.empty
    # agent B's figures are diverse, so five identical ones in two days are
    rng = np.random.default_rng(3)
    fb = pd.Series(np.r_[rng.normal(np.log(8000), 0.5, 50), np.log(np.full(5, 30000.0))])
    batch = template_cells(pd.Series(["B"] * 55), t, fb, window_days=7, band=0.05, min_apps=4, alpha=1e-3)
    assert set(batch["row"]) == set(range(50, 55))


@pytest.mark.parametrize(
    "params, message",
    [
        ({"window_days": 0}, "The 'window_days' parameter of BrokerRings must be a number in (0, 90]. Got 0 instead."),
        (
            {"figure_tolerance": 1.5},
            "The 'figure_tolerance' parameter of BrokerRings must be a number in (0, 1). Got 1.5 instead.",
        ),
        ({"min_apps": 2}, "The 'min_apps' parameter of BrokerRings must be an int >= 3. Got 2 instead."),
        ({"alpha": 1}, "The 'alpha' parameter of BrokerRings must be a float in (0, 1). Got 1 instead."),
        ({"prior_weight": -1}, "The 'prior_weight' parameter of BrokerRings must be a number > 0. Got -1 instead."),
        ({"min_score": 2}, "The 'min_score' parameter of BrokerRings must be a number in (0, 1]. Got 2 instead."),
        ({"max_listed": 0}, "The 'max_listed' parameter of BrokerRings must be an int >= 1. Got 0 instead."),
    ],
)
def test_parameter_validation(params, message):
    with pytest.raises(ValueError) as err:
        BrokerRings(**params)
    assert str(err.value) == message


def test_same_result_on_both_stores(store, tmp_path):
    apps, findings = _run(store, tmp_path)
    assert [set(f.members) for f in findings] == [set(apps["ring"])]
    assert findings[0].parameters == BrokerRings().params()
