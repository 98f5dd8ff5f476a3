"""One absurd value is a rejected row, never a poisoned store."""

from __future__ import annotations

import csv
import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from ringscope.app.cli import cli
from ringscope.ingest.limits import IngestLimits
from ringscope.ingest.normalize import normalize_id_numbers
from ringscope.ingest.pipeline import ingest_folder
from tests.sample_data import P1, P2, make_id, make_uscc

HEADER = [
    "application_id",
    "applied_at",
    "amount",
    "applicant_name",
    "applicant_id_number",
    "applicant_phone",
    "term_months",
    "declared_monthly_revenue",
    "declared_monthly_income",
]
C1 = make_uscc("91440300MA5D" + "00001")


def _app(i: int, **values) -> dict:
    row = {
        "application_id": f"A{i}",
        "applied_at": "2025-03-01 10:00:00",
        "amount": "50000",
        "applicant_name": "张伟",
        "applicant_id_number": P1,
        "applicant_phone": "13800138000",
        "term_months": "12",
        "declared_monthly_revenue": "",
        "declared_monthly_income": "9000",
    }
    row.update(values)
    return row


def _export(tmp_path, rows: list[dict], guarantees: list[list[str]] | None = None):
    folder = tmp_path / "export"
    folder.mkdir(exist_ok=True)
    with open(folder / "applications.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=HEADER)
        writer.writeheader()
        writer.writerows(rows)
    if guarantees:
        with open(folder / "guarantees.csv", "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["application_id", "guarantor_type", "guarantor_name", "guarantor_id", "amount"])
            writer.writerows(guarantees)
    return folder


def _reasons(tmp_path) -> dict[str, str]:
    """application_id → reject reason, from the rejects file."""
    rejects = pd.read_csv(tmp_path / "r.csv", encoding="utf-8-sig", dtype=str)
    return {
        json.loads(record)["application_id"]: reason for record, reason in zip(rejects["record"], rejects["reason"])
    }


ABSURD = {
    "A2": {"applied_at": "9999-12-31"},
    "A3": {"applied_at": "0001-01-01"},
    "A4": {"applied_at": "1989-12-31 23:00:00"},
    "A5": {"amount": "9" * 400},
    "A6": {"amount": "1" + "0" * 30},
    "A7": {"amount": "2亿亿"},  # not a number at all
    "A8": {"term_months": "12.5"},
    "A9": {"term_months": "0"},
    "A10": {"term_months": "9999"},
    "A11": {"declared_monthly_income": "9" * 400},
    "A12": {"declared_monthly_income": "-100"},
    "A13": {"declared_monthly_revenue": "lots"},
}


def test_absurd_values_are_rejected_with_a_reason(tmp_path, embedded_store):
    rows = [_app(1)] + [_app(int(k[1:]), **v) for k, v in ABSURD.items()] + [_app(20, applied_at="2026-11-29")]
    summary = ingest_folder(
        _export(tmp_path, rows),
        embedded_store,
        rejects_path=tmp_path / "r.csv",
        limits=IngestLimits(applied_to=dt.date(2026, 11, 30)),
    )
    assert summary.exit_code == 0
    loaded = set(embedded_store.read_nodes("Application")["key"])
    assert loaded == {"A1", "A20"}
    reasons = _reasons(tmp_path)
    assert set(reasons) == set(ABSURD)
    for key in ("A2", "A3", "A4"):
        assert reasons[key].startswith("applied_at outside the accepted window 1990-01-01 to 2026-11-30")
    for key in ("A5", "A6"):
        assert reasons[key].startswith("amount above 10,000,000,000")
    assert reasons["A7"] == "unparseable amount"
    for key in ("A8", "A9", "A10"):
        assert reasons[key] == "term_months must be a whole number of months from 1 to 600"
    assert reasons["A11"].startswith("declared_monthly_income must be from 0 to")
    assert reasons["A12"].startswith("declared_monthly_income must be from 0 to")
    assert reasons["A13"] == "unparseable declared_monthly_revenue"
    stored = embedded_store.read_nodes("Application")
    assert np.isfinite(stored["amount"]).all()


def test_the_window_and_the_bound_are_parameters(tmp_path, embedded_store):
    rows = [_app(1, applied_at="1985-06-01"), _app(2, amount="2e3"), _app(3, amount="300000")]
    limits = IngestLimits(applied_from=dt.date(1980, 1, 1), max_amount=100_000)
    ingest_folder(_export(tmp_path, rows), embedded_store, rejects_path=tmp_path / "r.csv", limits=limits)
    assert set(embedded_store.read_nodes("Application")["key"]) == {"A1"}
    reasons = _reasons(tmp_path)
    assert reasons["A3"].startswith("amount above 100,000")


def test_the_default_window_ends_tomorrow(tmp_path, embedded_store):
    today = pd.Timestamp.now(tz="Asia/Shanghai").date()
    rows = [
        _app(1, applied_at=str(today)),
        _app(2, applied_at=str(today + dt.timedelta(days=1))),
        _app(3, applied_at=str(today + dt.timedelta(days=2))),
    ]
    ingest_folder(_export(tmp_path, rows), embedded_store, rejects_path=tmp_path / "r.csv")
    assert set(embedded_store.read_nodes("Application")["key"]) == {"A1", "A2"}


def test_absurd_guarantee_amounts_are_rejected(tmp_path, embedded_store):
    guarantees = [
        ["A1", "company", "某公司", C1, "9" * 400],
        ["A1", "person", "王芳", P2, "1" + "0" * 20],
        ["A1", "person", "王芳", P2, "30000"],
    ]
    summary = ingest_folder(_export(tmp_path, [_app(1)], guarantees), embedded_store, rejects_path=tmp_path / "r.csv")
    report = {t.table: t for t in summary.tables}["guarantees"]
    assert (report.rows_loaded, report.rows_rejected) == (1, 2)
    rejects = pd.read_csv(tmp_path / "r.csv", encoding="utf-8-sig")
    assert (rejects["reason"] == "guarantee amount above 10,000,000,000 (--max-amount) or not finite").sum() == 2


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"max_amount": float("inf")}, "'max_amount' parameter of IngestLimits must be a finite number > 0"),
        ({"applied_from": dt.date(2025, 1, 1), "applied_to": dt.date(2024, 1, 1)}, "on or after applied_from"),
        ({"applied_from": "1990-01-01"}, "'applied_from' parameter of IngestLimits must be a datetime.date"),
        ({"max_term_months": 0}, "'max_term_months' parameter of IngestLimits must be an int >= 1"),
    ],
)
def test_bad_limits_fail_early(kwargs, message):
    with pytest.raises(ValueError, match=message):
        IngestLimits(**kwargs)


def test_birth_dates_from_id_numbers_stay_in_bounds():
    ids = pd.Series(
        [
            make_id("110101", birth, "123")
            for birth in ("00000101", "99991231", "17991231", "18000101", "29991231", "19850312")
        ]
        + ["110101850312123"]
    )  # 15-digit legacy: 19xx
    births = normalize_id_numbers(ids)["id_birth_date"]
    assert births.isna().tolist() == [True, True, True, False, True, False, False]
    present = births.dropna()
    # every date a detector may meet converts to nanoseconds (1677-2262) without overflow
    assert present.astype("datetime64[ns]").between(pd.Timestamp("1800-01-01"), pd.Timestamp.now()).all()


def test_cli_ingest_takes_the_limits(tmp_path):
    folder = _export(tmp_path, [_app(1, applied_at="1985-06-01"), _app(2, amount="300000")])
    runner = CliRunner()
    args = ["ingest", str(folder), "--store", str(tmp_path / "s"), "--quiet", "--rejects", str(tmp_path / "r.csv")]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0 and "applied_at outside" in result.output
    result = runner.invoke(
        cli, [*args, "--applied-from", "1980-01-01", "--applied-to", "2026-01-01", "--max-amount", "100000"]
    )
    assert result.exit_code == 0, result.output
    assert "amount above 100,000" in result.output and "applied_at outside" not in result.output
    bad = runner.invoke(cli, [*args, "--applied-from", "2026-01-01", "--applied-to", "2025-01-01"])
    assert bad.exit_code == 2 and "applied_to" in bad.output
    assert runner.invoke(cli, [*args, "--applied-to", "tomorrow"]).exit_code == 2


def test_cli_flag_passes_the_limits_to_its_ingest(tmp_path, monkeypatch):
    import ringscope.app.jobs as jobs

    seen = {}

    def fake_flag(
        store, folder, model, rejects_path, review=None, decline=None, progress=None, limits=None, shadow=None
    ):
        seen["limits"] = limits
        raise SystemExit(0)

    monkeypatch.setattr(jobs, "flag_applications", fake_flag)
    monkeypatch.setattr(
        "ringscope.detectors.risk.scoring.load_model",
        lambda folder: type(
            "M",
            (),
            {
                "target": "fraud",
                "version": "v-test",
                "kind": "scorecard",
                "default_decline": 0.7,
                "config": type("C", (), {"review_threshold": 0.3, "decline_threshold": 0.7})(),
            },
        )(),
    )
    folder = _export(tmp_path, [_app(1)])
    CliRunner().invoke(
        cli,
        [
            "flag",
            str(folder),
            "--store",
            str(tmp_path / "s"),
            "--quiet",
            "--applied-from",
            "2000-01-01",
            "--max-amount",
            "5e6",
        ],
    )
    assert seen["limits"] == IngestLimits(applied_from=dt.date(2000, 1, 1), max_amount=5e6)
