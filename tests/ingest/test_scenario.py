"""Random scenarios: knobs drawn from the seed, spanning their ranges, taking effect;
the new batch written apart as the latest applications."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from ringscope.app.cli import cli
from ringscope.ingest.synthetic import GeneratorConfig, generate_portfolio, generate_scenario, random_scenario
from ringscope.ingest.synthetic.scenario import RANGES

N = 2_000


def _read(path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _sha(folder) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _times(apps: pd.DataFrame) -> pd.Series:
    return pd.to_datetime(apps["applied_at"], errors="coerce", format="%Y-%m-%d %H:%M:%S")


def test_same_seed_same_knobs_and_files(tmp_path):
    a, b = random_scenario(11, N), random_scenario(11, N)
    assert a.knobs == b.knobs and a.config == b.config
    generate_scenario(a, tmp_path / "a")
    generate_scenario(b, tmp_path / "b")
    assert _sha(tmp_path / "a") == _sha(tmp_path / "b")
    written = json.loads((tmp_path / "a" / "scenario.json").read_text())
    assert written["knobs"] == json.loads(json.dumps(a.knobs)) and written["seed"] == 11
    assert (
        GeneratorConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in written["config"].items()}) == a.config
    )


def test_knobs_differ_between_seeds_and_span_their_ranges():
    drawn = [random_scenario(seed, N) for seed in range(300)]
    knobs = pd.DataFrame([s.knobs for s in drawn])
    assert len({json.dumps(k, sort_keys=True) for k in knobs.to_dict("records")}) == 300

    def spans(values, name, slack=0.1):
        low, high = RANGES[name]
        values = np.asarray(values, dtype=float)
        assert values.min() >= low and values.max() <= high, name
        assert values.min() <= low + slack * (high - low) and values.max() >= high - slack * (high - low), name

    for name in (
        "reuse_share",
        "mess_rate",
        "nat_share",
        "office_share",
        "employer_share",
        "family_share",
        "busy_agent_share",
        "repeat_share",
        "labelled_share",
        "new_batch_share",
    ):
        spans(knobs[name], name)
    for name in ("big_employers", "family_size", "busy_agents"):
        assert set(knobs[name]) == set(range(int(RANGES[name][0]), int(RANGES[name][1]) + 1)), name
    for name in ("nat_ips", "office_towers"):  # log-uniform: both ends reached
        assert knobs[name].min() == RANGES[name][0] and knobs[name].max() >= RANGES[name][1] * 0.8, name
    prevalence = knobs["fraud_prevalence"]
    assert prevalence.min() < 0.006 and prevalence.max() > 0.085 and prevalence.between(0.005, 0.10).all()
    sizes = np.array(knobs["ring_sizes"].tolist())
    assert sizes[:, 0].min() == 2 and sizes[:, 1].max() >= 50 and (sizes[:, 1] <= 60).all()
    assert (sizes[:, 0] <= sizes[:, 1]).all()
    span = np.array(knobs["ring_span_seconds"].tolist())
    assert span[:, 0].min() < 30 * 60 and span[:, 1].max() > 60 * 86_400  # minutes to months
    assert span[:, 0].min() >= 60 and span[:, 1].max() <= 183 * 86_400
    rotation = knobs["rotation"]
    assert 0.2 < (rotation == 0).mean() < 0.45 and rotation.max() > 0.8
    # every scenario's typology rates make a valid config and roughly the drawn prevalence
    mix = pd.DataFrame(knobs["typology_mix"].tolist())
    assert np.allclose(mix.sum(axis=1), 1.0) and ((mix > 0).sum(axis=1) >= 2).all()


def test_new_batch_is_the_latest_applications_with_blank_labels(tmp_path):
    config = GeneratorConfig(applications=N, seed=4, new_batch_share=0.2, labelled_share=0.3, mess_rate=0.0)
    summary = generate_portfolio(config, tmp_path)
    history, new = _read(tmp_path / "history" / "applications.csv"), _read(tmp_path / "new" / "applications.csv")
    assert not (tmp_path / "applications.csv").exists()
    truth = _read(tmp_path / "truth" / "applications.csv")
    assert set(truth["application_id"]) == set(history["application_id"]) | set(new["application_id"])
    assert new["application_id"].nunique() == 400
    # ids are issued in time order: the new batch holds the latest ones
    assert history["application_id"].max() < new["application_id"].min()
    assert _times(history).max() <= _times(new).min()
    assert (new["label"] == "").all()
    # labelled share 0.3 of the history: ~70% blank, the oldest labelled
    unique = history.drop_duplicates("application_id")
    blank = (unique["label"] == "").mean()
    assert blank == pytest.approx(0.7, abs=0.01)
    labelled = _times(unique[unique["label"] != ""])
    assert labelled.max() <= _times(unique[unique["label"] == ""]).min()
    # contacts and guarantees follow their application
    for name in ("contacts", "guarantees"):
        for folder, apps in (("history", history), ("new", new)):
            rows = _read(tmp_path / folder / f"{name}.csv")
            assert rows["application_id"].isin(apps["application_id"]).all(), (name, folder)
    assert summary.row_counts["new/applications"] == len(new)


def test_broken_rows_point_at_their_line_in_their_folder(tmp_path):
    config = GeneratorConfig(applications=N, seed=6, new_batch_share=0.3, broken_row_rate=0.02)
    generate_portfolio(config, tmp_path)
    broken = _read(tmp_path / "truth" / "broken_rows.csv")
    assert set(broken["folder"]) == {"history", "new"}
    for row in broken.itertuples():
        apps = _read(tmp_path / row.folder / "applications.csv")
        assert apps["application_id"].iloc[int(row.line) - 2] == row.application_id


def test_labelled_share_alone_labels_the_oldest(tmp_path):
    generate_portfolio(GeneratorConfig(applications=N, seed=4, labelled_share=0.5), tmp_path)
    apps = _read(tmp_path / "applications.csv").drop_duplicates("application_id")
    assert (apps["label"] != "").mean() == pytest.approx(0.5, abs=0.01)


def _generate(tmp_path, **knobs):
    config = GeneratorConfig(applications=N, seed=8, mess_rate=0.0, broken_row_rate=0.0, **knobs)
    generate_portfolio(config, tmp_path)
    apps = _read(tmp_path / "applications.csv")
    return apps.merge(_read(tmp_path / "truth" / "applications.csv"), on="application_id")


def test_ring_sizes_and_spans_take_effect(tmp_path):
    apps = _generate(tmp_path, ring_sizes=(9, 9), ring_span_seconds=(60.0, 120.0))
    grouped = ("identity_ring", "device_farm", "contact_loop", "broker_ring")
    for typology in grouped:
        sizes = apps[apps["typology"] == typology].groupby("ring_id").size()
        assert len(sizes) >= 1
        # one last ring may take what was left over
        assert (sizes == 9).sum() >= len(sizes) - 1 and sizes.min() >= 2, typology
    times = _times(apps)
    for typology in (*grouped, "synthetic_identity"):
        rows = apps["typology"] == typology
        spread = times[rows].groupby(apps.loc[rows, "ring_id"]).agg(lambda t: (t.max() - t.min()).total_seconds())
        assert spread.max() <= 120, typology


def test_reuse_share_and_rotation_take_effect(tmp_path):
    def devices_per_member(apps, typology):
        rings = apps[apps["typology"] == typology].groupby("ring_id")
        return (rings["device_id"].nunique() / rings.size()).mean()

    low = _generate(tmp_path / "low", reuse_share=0.1, rotation=0.0)
    high = _generate(tmp_path / "high", reuse_share=0.9, rotation=1.0)
    assert devices_per_member(high, "identity_ring") < devices_per_member(low, "identity_ring") - 0.3
    # a farm without rotation runs 1–3 devices in one /24; with full rotation every member is fresh
    farms = low[low["typology"] == "device_farm"].groupby("ring_id")
    assert (farms["device_id"].nunique() <= 3).all()
    assert (farms["ip"].agg(lambda ips: ips.str.rsplit(".", n=1).str[0].nunique()) == 1).all()
    rotated = high[high["typology"] == "device_farm"].groupby("ring_id")
    assert (rotated["device_id"].nunique() == rotated.size()).all()
    assert (rotated["ip"].agg(lambda ips: ips.str.rsplit(".", n=1).str[0].nunique()) > 1).all()


def test_honest_hub_knobs_take_effect(tmp_path):
    apps = _generate(
        tmp_path,
        nat_ips=1,
        nat_share=0.1,
        office_towers=9,
        office_share=0.05,
        big_employers=12,
        employer_share=0.3,
        busy_agents=5,
        busy_agent_share=0.05,
    )
    nat = apps[apps["hard_negative"] == "carrier_nat"]
    assert nat["ip"].nunique() == 1 and len(nat) == pytest.approx(0.1 * N, rel=0.05)
    from ringscope.ingest.synthetic.negatives import office_towers

    addresses = apps[apps["hard_negative"] == "office_tower"]["company_address"]
    used = {next(t for t in office_towers(9) if a.startswith(t)) for a in addresses}  # StopIteration: not a tower
    assert len(used) == 9
    busy = apps[apps["hard_negative"] == "busy_agent"]
    assert busy["agent_id"].nunique() == 5
    consumers = apps[apps["company_uscc"] == ""]
    big = consumers["hard_negative"] == "big_employer"
    assert consumers.loc[big, "employer_name"].nunique() == 12
    # ~30% of consumer applicants work for a big employer (some were planted as fraud or other negatives)
    from ringscope.ingest.synthetic.honest import big_employers

    at_big = consumers["employer_name"].isin(big_employers(12)[0]).mean()
    assert at_big == pytest.approx(0.3, abs=0.04)


@pytest.mark.parametrize(
    "name, value",
    [
        ("ring_sizes", (1, 5)),
        ("ring_sizes", (8, 3)),
        ("ring_sizes", [3, 8]),
        ("ring_span_seconds", (10.0, 100.0)),
        ("reuse_share", 1.5),
        ("rotation", -0.1),
        ("nat_ips", 0),
        ("family_size", 1),
        ("labelled_share", 2.0),
        ("new_batch_share", 0.0),
        ("employer_share", True),
        ("busy_agents", 2.5),
    ],
)
def test_config_rejects_bad_knobs(name, value):
    with pytest.raises(ValueError, match=f"The '{name}' parameter of GeneratorConfig must be"):
        replace(GeneratorConfig(), **{name: value})


def test_cli_generate_random_scenario(tmp_path):
    result = CliRunner().invoke(
        cli,
        [
            "generate",
            "--scenario",
            "random",
            "--seed",
            "3",
            "--applications",
            "1500",
            "--out",
            str(tmp_path / "s"),
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    out = tmp_path / "s"
    assert (out / "history" / "applications.csv").exists() and (out / "new" / "applications.csv").exists()
    assert json.loads((out / "scenario.json").read_text())["knobs"] == json.loads(
        json.dumps(random_scenario(3, 1500).knobs)
    )
    assert "scenario random (seed 3)" in result.output
    # without --scenario: one folder as before, no scenario file
    plain = CliRunner().invoke(
        cli, ["generate", "--seed", "3", "--applications", "500", "--out", str(tmp_path / "p"), "--quiet"]
    )
    assert plain.exit_code == 0, plain.output
    assert (tmp_path / "p" / "applications.csv").exists() and not (tmp_path / "p" / "scenario.json").exists()
    assert not (tmp_path / "p" / "history").exists()
