"""Device farms and velocity bursts: farms found, carrier NAT and repeat borrowers not."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
import pytest

from ringscope.detectors.velocity import DeviceVelocity, burst_windows
from ringscope.graph.embedded import EmbeddedStore
from tests.detectors.builder import ExportBuilder, person_id

START = datetime(2025, 1, 6, 9, 0)


def _ip(i: int) -> str:
    """A public IP in its own /24 for each ``i``."""
    return f"58.{i % 200 + 1}.{i // 200 + 1}.9"


def _plant(b: ExportBuilder) -> dict[str, list[str]]:
    planted: dict[str, list[str]] = {"background": [], "farm": [], "nat": [], "repeat": [], "ip_burst": []}
    # a year of ordinary traffic: one application every 4 days, own device and network each
    for i in range(90):
        planted["background"].append(
            b.app(applied_at=START + timedelta(days=4 * i, hours=i % 9), ip=_ip(i))["application_id"]
        )
    # a device farm: one phone, 8 different people, every 50 minutes one evening, one /24
    for j in range(8):
        planted["farm"].append(
            b.app(
                applied_at=START + timedelta(days=200, hours=18, minutes=50 * j),
                device_id="farm-phone-1",
                ip=f"121.40.7.{10 + j}",
                label="fraud" if j < 3 else "",
            )["application_id"]
        )
    # a promotion evening behind one mobile IP: 8 people, each on their own device, nothing else shared
    for j in range(8):
        planted["ip_burst"].append(
            b.app(applied_at=START + timedelta(days=250, hours=19, minutes=40 * j), ip="223.104.3.3")["application_id"]
        )
    # a carrier NAT: 30 unrelated applicants on one IP, each on their own device, every 11 days
    for j in range(30):
        planted["nat"].append(
            b.app(applied_at=START + timedelta(days=11 * j, hours=j % 7), ip="117.136.12.34")["application_id"]
        )
    # a repeat borrower: one person, one device, three loans months apart
    for j in range(3):
        planted["repeat"].append(
            b.app(
                applied_at=START + timedelta(days=100 * j + 3),
                applicant_name="孙明远",
                applicant_id_number=person_id(4242),
                applicant_phone="13912345678",
                device_id="own-phone-77",
                ip=_ip(300 + j),
            )["application_id"]
        )
    return planted


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("velocity")
    b = ExportBuilder(start=START)
    apps = _plant(b)
    store = EmbeddedStore(tmp / "store")
    b.load(store, tmp / "export")
    return apps, DeviceVelocity().run(store)


def test_device_farm_found_with_members_and_evidence(planted):
    apps, findings = planted
    farms = [f for f in findings if f.kind == "device_farm"]
    assert len(farms) == 1
    farm = farms[0]
    assert set(farm.members) == set(apps["farm"])
    assert ("Device", "farm-phone-1") in farm.shared
    evidence = {e.feature: e for e in farm.evidence}
    key, start, end, n, d = evidence["distinct_identities"].values
    assert (key, n, d) == ("farm-phone-1", 8, 8)
    assert pd.Timestamp(end) - pd.Timestamp(start) == pd.Timedelta(minutes=350)
    assert "farm-phone-1" in evidence["distinct_identities"].detail
    assert evidence["known_bad_members"].values == (3, 3)
    assert evidence["burst_compactness"].values[2] < 1e-6  # Poisson p of the window
    assert farm.score > 0.7
    assert abs(sum(e.contribution for e in farm.evidence) - farm.score) < 1e-9
    assert len(farm.entities) == 8


def test_farm_range_with_same_members_is_not_a_second_finding(planted):
    apps, findings = planted
    # the farm's /24 holds exactly the farm's applications: one finding, not two
    assert sum(set(f.members) == set(apps["farm"]) for f in findings) == 1


def test_carrier_nat_and_repeat_borrower_not_flagged(planted):
    apps, findings = planted
    flagged = {m for f in findings for m in f.members}
    assert not flagged & set(apps["nat"])
    assert not flagged & set(apps["repeat"])
    assert not flagged & set(apps["background"])
    assert {f.kind for f in findings} == {"device_farm", "ip_burst"}


def test_network_burst_on_own_devices_scores_below_device_farm(planted):
    apps, findings = planted
    (burst,) = [f for f in findings if set(f.members) == set(apps["ip_burst"])]
    (farm,) = [f for f in findings if f.kind == "device_farm"]
    assert burst.kind == "ip_burst"
    assert ("IP", "223.104.3.3") in burst.shared
    assert burst.score < farm.score - 0.2


def test_overlapping_windows_merge_and_distant_bursts_split():
    times = (
        ["2025-01-01 10:00", "2025-01-01 11:00", "2025-01-02 09:00", "2025-01-03 08:00", "2025-01-04 07:00"]
        + ["2025-06-01 10:00", "2025-06-01 10:30", "2025-06-01 11:00"]
        + ["2025-09-01 00:00", "2025-12-01 00:00"]
    )
    keys = ["d1"] * 8 + ["d2", "d2"]
    found = burst_windows(pd.Series(keys), pd.Series(pd.to_datetime(times, utc=True)), window_seconds=86400 * 2)
    sizes = sorted(found.groupby("cluster").size().tolist())
    assert sizes == [3, 5]  # January chain merged, June separate, d2 never dense
    assert set(found["key"]) == {"d1"}


def test_spread_out_identifier_is_not_a_burst():
    times = pd.Series(pd.date_range("2025-01-01", periods=40, freq="9D", tz="UTC"))
    assert burst_windows(pd.Series(["nat"] * 40), times, window_seconds=72 * 3600).empty


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(min_apps=1), "The 'min_apps' parameter of DeviceVelocity must be an int >= 2. Got 1 instead."),
        (
            dict(window_hours=0),
            "The 'window_hours' parameter of DeviceVelocity must be a number in (0, 2160]. Got 0 instead.",
        ),
        (dict(alpha=1.5), "The 'alpha' parameter of DeviceVelocity must be a float in (0, 1). Got 1.5 instead."),
        (
            dict(kinds=("device", "email")),
            "The 'kinds' parameter of DeviceVelocity must be a non-empty tuple of "
            "'device', 'ip', 'ip_range'. Got ('device', 'email') instead.",
        ),
        (dict(max_listed=0), "The 'max_listed' parameter of DeviceVelocity must be an int >= 1. Got 0 instead."),
    ],
)
def test_parameter_validation(params, message):
    with pytest.raises(ValueError) as err:
        DeviceVelocity(**params)
    assert str(err.value) == message


def test_farm_found_on_both_stores(store, tmp_path):
    b = ExportBuilder(start=START)
    apps = _plant(b)
    b.load(store, tmp_path / "export")
    findings = DeviceVelocity(kinds=("device",)).run(store)
    assert [set(f.members) for f in findings] == [set(apps["farm"])]
    assert findings[0].parameters["kinds"] == ("device",)
