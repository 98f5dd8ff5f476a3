"""Cash-flow cross-checks: inflated revenue and oversized asks found, big honest businesses and small consumers not."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from ringscope.detectors.cashflow import CashflowChecks, robust_z, trade_of
from ringscope.graph.embedded import EmbeddedStore
from tests.detectors.builder import ExportBuilder

START = datetime(2025, 1, 6, 9, 0)


def _plant(b: ExportBuilder) -> dict[str, list[str]]:
    rng = np.random.default_rng(7)
    out: dict[str, list[str]] = {"shops": [], "big": [], "consumers": []}
    # snack shops: revenue 30k–80k a month, asking 100k–300k
    for i in range(40):
        rev = round(float(np.exp(rng.uniform(np.log(30000), np.log(80000)))), -2)
        amt = round(float(rng.uniform(100000, 300000)), -2)
        out["shops"].append(
            b.business_app(
                i,
                company_name=f"成都市第{i}号小吃店",
                declared_monthly_revenue=rev,
                amount=amt,
                applied_at=START + timedelta(days=3 * i),
            )["application_id"]
        )
    # big decoration contractors: revenue 300k–900k, asking 1–3 million (large honest businesses)
    for i in range(40):
        rev = round(float(np.exp(rng.uniform(np.log(300000), np.log(900000)))), -2)
        amt = round(rev * 12 * float(rng.uniform(0.15, 0.35)), -3)
        out["big"].append(
            b.business_app(
                100 + i,
                company_name=f"上海市第{i}号装饰工程有限公司",
                amount=amt,
                declared_monthly_revenue=rev,
                applied_at=START + timedelta(days=3 * i + 1),
            )["application_id"]
        )
    # consumers: income 3k–15k, asking a few months of it over 12 months
    for i in range(60):
        inc = round(float(np.exp(rng.uniform(np.log(3000), np.log(15000)))), -2)
        amt = round(inc * float(rng.uniform(2, 8)), -2)
        out["consumers"].append(
            b.app(
                declared_monthly_income=inc,
                amount=amt,
                employer_name=f"杭州第{i}科技有限公司",
                applied_at=START + timedelta(days=2 * i),
            )["application_id"]
        )
    # an honest small consumer: a cleaner earning 2,100 asking 5,000
    out["small_consumer"] = [
        b.app(
            declared_monthly_income=2100,
            amount=5000,
            employer_name="杭州洁美物业有限公司",
            applied_at=START + timedelta(days=200),
        )["application_id"]
    ]
    # a snack shop declaring 4.2 million a month, asking 50,000
    out["inflated"] = [
        b.business_app(
            900,
            company_name="成都市红火小吃店",
            declared_monthly_revenue=4_200_000,
            amount=50000,
            applied_at=START + timedelta(days=210),
        )["application_id"]
    ]
    # a snack shop with 31,000 a month asking 3 million
    out["oversized"] = [
        b.business_app(
            901,
            company_name="成都市好味小吃店",
            declared_monthly_revenue=31000,
            amount=3_000_000,
            applied_at=START + timedelta(days=211),
        )["application_id"]
    ]
    return out


def _findings(store, tmp_path, **params):
    b = ExportBuilder(start=START)
    planted = _plant(b)
    b.load(store, tmp_path / "export")
    return planted, CashflowChecks(**params).run(store)


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cashflow")
    return _findings(EmbeddedStore(tmp / "store"), tmp)


def test_inflated_revenue_found_with_figure_peer_median_and_ratio(planted):
    apps, findings = planted
    by_member = {f.members: f for f in findings}
    f = by_member[tuple(apps["inflated"])]
    assert f.kind == "cashflow_inconsistency"
    ev = {e.feature: e for e in f.evidence}
    figure, peer_median, ratio, z = ev["figure_vs_trade"].values
    assert figure == 4_200_000
    assert 30000 < peer_median < 80000  # the snack shops' median, not the contractors'
    assert ratio == pytest.approx(figure / peer_median, rel=1e-3)
    assert z > 6
    assert "小吃" in ev["figure_vs_trade"].detail
    assert ev["leverage"].values[5] < -6  # a tiny loan against an enormous declared revenue
    assert f.score >= 0.5
    assert abs(sum(e.contribution for e in f.evidence) - f.score) < 1e-9
    assert f.entities and f.entities[0][0] == "Company"


def test_oversized_ask_found_from_leverage_and_trade_amount(planted):
    apps, findings = planted
    f = {f.members: f for f in findings}[tuple(apps["oversized"])]
    ev = {e.feature: e for e in f.evidence}
    assert ev["leverage"].contribution > 0.2
    assert ev["leverage"].values[:2] == (3_000_000.0, 31000.0)
    assert ev["amount_vs_trade"].contribution > 0
    assert ev["figure_vs_trade"].contribution == 0  # 31,000 is an ordinary snack-shop revenue


def test_big_honest_businesses_and_small_consumers_not_flagged(planted):
    apps, findings = planted
    flagged = {m for f in findings for m in f.members}
    for group in ("big", "consumers", "small_consumer", "shops"):
        assert not flagged & set(apps[group]), group
    assert flagged == set(apps["inflated"]) | set(apps["oversized"])


def test_checks_frame_uses_trade_reference(planted, tmp_path_factory):
    apps, _ = planted
    # contractors are compared with contractors: their z-scores stay ordinary
    tmp = tmp_path_factory.mktemp("cashflow-frame")
    b = ExportBuilder(start=START)
    _plant(b)
    store = EmbeddedStore(tmp / "store")
    b.load(store, tmp / "export")
    frame = CashflowChecks().checks(store).set_index("application_id")
    big = frame.loc[apps["big"]]
    assert big["reference_is_trade"].all()
    assert big["z_figure"].abs().max() < 3
    assert frame.loc[apps["small_consumer"][0], "score"] == 0


@pytest.mark.parametrize(
    "name, trade",
    [
        ("甘孜藏族自治州丰金小吃店", "餐饮"),
        ("深圳市华强电子科技有限公司", "科技"),
        ("顺丰速运有限公司", "物流"),
        ("老王便利店", "便利店/超市"),
        ("丽人美容美发店", "美容美发"),
        ("顺达洗车行", "~车行"),
        ("", None),
        (None, None),
    ],
)
def test_trade_of(name, trade):
    assert trade_of(name)[0] == trade


def test_robust_z_ignores_the_outlier_in_the_scale():
    import pandas as pd

    z, med = robust_z(pd.Series([10.0, 10.2, 9.8, 10.1, 9.9, 20.0]), pd.Series(["a"] * 6))
    assert float(z.iloc[-1]) > 20 and abs(float(z.iloc[0])) < 1


@pytest.mark.parametrize(
    "params, message",
    [
        ({"z_start": 0}, "The 'z_start' parameter of CashflowChecks must be a number > 0. Got 0 instead."),
        (
            {"z_full": 2.0},
            "The 'z_full' parameter of CashflowChecks must be a number > z_start (3.0). Got 2.0 instead.",
        ),
        ({"min_peers": 2}, "The 'min_peers' parameter of CashflowChecks must be an int >= 5. Got 2 instead."),
        ({"min_score": 0}, "The 'min_score' parameter of CashflowChecks must be a number in (0, 1]. Got 0 instead."),
    ],
)
def test_parameter_validation(params, message):
    with pytest.raises(ValueError) as err:
        CashflowChecks(**params)
    assert str(err.value) == message


def test_same_result_on_both_stores(store, tmp_path):
    apps, findings = _findings(store, tmp_path)
    assert {m for f in findings for m in f.members} == set(apps["inflated"]) | set(apps["oversized"])
    assert all(f.parameters == CashflowChecks().params() for f in findings)


def test_an_application_without_a_name_is_summarised_by_its_id(tmp_path):
    """A consumer with no employer has no name to show: the summary names the
    application (it read "nan: declared …" before). A 1,000 yuan loan against
    900,000 a month is far off the consumer loans' leverage."""
    b = ExportBuilder(start=START)
    _plant(b)
    nameless = b.app(declared_monthly_income=900_000, amount=1_000, employer_name="")["application_id"]
    store = EmbeddedStore(tmp_path / "store")
    b.load(store, tmp_path / "export")
    [finding] = [f for f in CashflowChecks().run(store) if f.members == (nameless,)]
    assert finding.summary.startswith(f"{nameless}: declared monthly income 900,000")
    assert {e.feature for e in finding.evidence} >= {"leverage"}
    assert "nan" not in finding.summary


def test_any_part_of_the_declared_rows_is_judged_as_in_the_whole_book(tmp_path):
    """What lets an engine hand back only some rows: each row's checks read the
    statistics and the row alone."""
    from ringscope.detectors.portfolio import Portfolio

    store = EmbeddedStore(tmp_path / "store")
    apps, _ = _findings(store, tmp_path)
    detector = CashflowChecks()
    declared, stats = detector.peer_groups(Portfolio(store))
    columns_read = list(declared.columns)
    whole = detector.checks_of(declared, stats).set_index("application_id")
    assert list(declared.columns) == columns_read  # the rows given are not written to
    wanted = apps["inflated"] + apps["shops"][:3] + apps["consumers"][-2:]
    part = declared[declared["application_id"].isin(wanted)].iloc[::-1]
    alone = detector.checks_of(part, stats).set_index("application_id")
    assert sorted(alone.index) == sorted(wanted)
    columns = [c for c in whole.columns if c.startswith(("z_", "c_")) or c == "score"]
    np.testing.assert_array_equal(
        alone.loc[wanted, columns].to_numpy(float), whole.loc[wanted, columns].to_numpy(float)
    )
    assert alone.loc[apps["inflated"][0], "score"] >= 0.5


def _figure_popularity_of_text(f):
    """The popularity tables as they were counted on each applicant's text."""
    from ringscope.detectors.cashflow import popularity_of

    applicant = f["person"].astype(object).where(f["person"].notna(), f["application_id"])
    out = {}
    for kind, g in f.groupby("figure_kind", sort=False):
        per_value = (
            pd.DataFrame({"v": g["figure"].round(2).to_numpy(), "p": applicant[g.index].to_numpy()})
            .drop_duplicates()
            .groupby("v")
            .size()
        )
        out[str(kind)] = popularity_of(per_value)
    return out


def test_statistics_read_from_codes_equal_those_read_from_text(tmp_path):
    from ringscope.detectors.cashflow import _declared, _figure_popularity
    from ringscope.detectors.portfolio import Portfolio
    from ringscope.ingest.pipeline import ingest_folder
    from ringscope.ingest.synthetic import GeneratorConfig, generate_portfolio

    generate_portfolio(GeneratorConfig(applications=3000, seed=4), tmp_path / "data")
    store = EmbeddedStore(tmp_path / "store")
    ingest_folder(tmp_path / "data", store, rejects_path=tmp_path / "rejects.csv")
    f = _declared(Portfolio(store))
    # some applicants declare more than once, some rows have no applicant (their application counts)
    f.loc[f.index[:40], "person"] = None
    assert f["person"].isna().sum() == 40 and f["person"].dropna().duplicated().any()
    got, want = _figure_popularity(f), _figure_popularity_of_text(f)
    assert set(got) == set(want) == {"revenue", "income"}
    for kind in want:
        for a, b in zip(got[kind], want[kind], strict=True):
            np.testing.assert_array_equal(a, b)
        assert want[kind][1].max() >= 2  # a value declared by several applicants
    checks = CashflowChecks()
    stats = checks.statistics(Portfolio(store))
    reference, label, is_trade = checks._reference(f, stats.key_counts)
    lean, no_label, lean_trade = checks._reference(f, stats.key_counts, labels=False)
    pd.testing.assert_series_equal(lean, reference)
    np.testing.assert_array_equal(lean_trade, is_trade)
    assert no_label is None and label.notna().all() and is_trade.any()
    # the statistics without the names are those of the whole declared frame
    whole = checks._statistics_of(_declared(Portfolio(store)))
    assert stats.key_counts["trade"].equals(whole.key_counts["trade"]) and stats.peers.equals(whole.peers)
    pd.testing.assert_frame_equal(stats.figure, whole.figure)
    assert stats.round_share == whole.round_share and stats.n_values == whole.n_values
