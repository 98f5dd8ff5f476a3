"""The generator in time windows: a whole book keeps its bytes, a chunked book
holds one window at a time and keeps every promise of the whole one."""

from __future__ import annotations

import gc
import hashlib
import weakref
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from ringscope.app.cli.data import generate as generate_command
from ringscope.ingest.synthetic import GeneratorConfig, generate_portfolio, generate_scenario, random_scenario
from ringscope.ingest.synthetic.chunked import (
    _Sink,
    default_chunk_rows,
    generate_chunked,
    time_windows,
)
from ringscope.ingest.synthetic.config import APPLICATION_COLUMNS
from ringscope.ingest.synthetic.generator import build_book
from ringscope.ingest.synthetic.writer import write_csv

# sha256 of every file main's generator (ad445a0, before windows existed)
# wrote for these configs. A dependency update that moves them moves every
# README figure with them: re-pin deliberately, never to make a test pass.
PINNED = {
    "plain": ("b83588df14744ef0c261043ec7a177da174c3b9dc5f0b88a1db3998986ab7b06", {}),
    "gb18030": ("735a14892b5742006d1a08bf53ff0d1158eb759adf3bf76e5fb83a27babb5db6", {"encoding": "gb18030"}),
}
PINNED_RANDOM = "1ff0ca2c65c66f1f8e8fdd55b56e93b4eef81f782d52efabf39457f0efb2d2cd"


def _sha(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(Path(folder).rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(folder).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _read(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pd.read_parquet(path).fillna("")
    return pd.read_csv(path, dtype=str, keep_default_na=False)


@pytest.mark.parametrize("name", sorted(PINNED))
def test_whole_book_has_mains_bytes(tmp_path, name):
    digest, extra = PINNED[name]
    generate_portfolio(GeneratorConfig(applications=3_000, seed=42, **extra), tmp_path)
    assert _sha(tmp_path) == digest


def test_whole_random_scenario_has_mains_bytes(tmp_path):
    generate_scenario(random_scenario(3, 3_000), tmp_path)
    assert _sha(tmp_path) == PINNED_RANDOM


def test_a_book_within_one_chunk_is_built_whole(tmp_path):
    config = GeneratorConfig(applications=3_000, seed=42)
    summary = generate_portfolio(config, tmp_path / "one", chunk_rows=3_000)
    assert summary.chunks == []
    assert _sha(tmp_path / "one") == PINNED["plain"][0]


def test_bad_chunk_rows_fail_early(tmp_path):
    with pytest.raises(ValueError, match="The 'chunk_rows' parameter of generate_portfolio must be None or an int"):
        generate_portfolio(GeneratorConfig(applications=3_000), tmp_path, chunk_rows=10)


def test_time_windows_cover_the_two_years_and_the_book():
    windows = time_windows(1_000_000, 100_000)
    assert len(windows) == 10
    assert windows[0][0] == 0 and windows[-1][1] == 730
    assert all(a[1] == b[0] for a, b in zip(windows, windows[1:]))  # consecutive, no gap
    assert sum(n for _, _, n in windows) == 1_000_000
    assert all(90_000 <= n <= 110_000 for _, _, n in windows)
    assert default_chunk_rows(2_000_000) is None and default_chunk_rows(10_000_000) == 500_000


def test_chunked_generator_holds_one_window_at_a_time(tmp_path):
    """Each window's book is built, written and gone before the next is built:
    the rows held follow ``chunk_rows``, not the book."""
    held, alive = [], []

    def build(book):
        gc.collect()
        alive.append(sum(ref() is not None for ref in held))
        held.append(weakref.ref(book))
        return build_book(book)

    config = GeneratorConfig(applications=12_000, seed=5)
    summary = generate_chunked(config, tmp_path, 3_000, build=build)
    assert len(summary.chunks) == 4 and sum(summary.chunks) == 12_000
    assert max(summary.chunks) <= 3_300
    assert alive == [0, 0, 0, 0]
    assert summary.row_counts["applications"] == 12_000 + sum(
        r.startswith("duplicate") for r in _read(tmp_path / "truth" / "broken_rows.csv")["reason"]
    )


@pytest.mark.parametrize("encoding", ["utf-8-sig", "gb18030"])
def test_a_table_written_in_parts_is_the_table_written_whole(tmp_path, encoding):
    frame = pd.DataFrame({c: [f"{c}-{i}" if i % 3 else "" for i in range(50)] for c in APPLICATION_COLUMNS}).assign(
        applicant_name=[f'张伟{i}, "x"' for i in range(50)]
    )
    write_csv(frame, tmp_path / "whole.csv", encoding)
    sink = _Sink(tmp_path / "parts.csv", APPLICATION_COLUMNS, GeneratorConfig(encoding=encoding))
    for part in (frame.iloc[:0], frame.iloc[:7], frame.iloc[7:7], frame.iloc[7:31], frame.iloc[31:]):
        sink.write(part)
    sink.close()
    assert (tmp_path / "parts.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()
    sink = _Sink(tmp_path / "parts.parquet", APPLICATION_COLUMNS, GeneratorConfig(file_format="parquet"))
    for part in (frame.iloc[:20], frame.iloc[20:]):
        sink.write(part)
    sink.close()
    assert pq.ParquetFile(tmp_path / "parts.parquet").metadata.num_row_groups == 2
    assert _read(tmp_path / "parts.parquet").equals(frame)


@pytest.fixture(scope="module")
def chunked(tmp_path_factory):
    out = tmp_path_factory.mktemp("chunked")
    config = GeneratorConfig(applications=12_000, seed=8, broken_row_rate=0.01)
    summary = generate_portfolio(config, out, chunk_rows=3_000)
    return out, config, summary


def test_chunked_book_ids_follow_time_across_windows(chunked):
    out, config, summary = chunked
    apps = _read(out / "applications.csv")
    truth = _read(out / "truth" / "applications.csv")
    first = apps.drop_duplicates("application_id")
    assert len(first) == config.applications
    assert list(first["application_id"]) == list(truth["application_id"])
    assert list(first["application_id"]) == [f"AP{i:08d}" for i in range(1, config.applications + 1)]
    times = pd.to_datetime(first["applied_at"], errors="coerce").dropna()
    assert times.is_monotonic_increasing


def test_chunked_book_broken_rows_point_at_their_line(chunked):
    out, _, summary = chunked
    apps = _read(out / "applications.csv")
    broken = _read(out / "truth" / "broken_rows.csv")
    assert summary.broken_rows == len(broken) > 50
    rows = broken["line"].astype(int) - 2
    assert list(apps["application_id"].iloc[rows]) == list(broken["application_id"])
    dup = broken["reason"].str.startswith("duplicate")
    assert dup.any() and (rows[dup] >= 12_000).all()  # duplicates at the end of the file, as in a whole book


def test_chunked_book_plants_every_typology_and_hub(chunked):
    out, config, summary = chunked
    truth = _read(out / "truth" / "applications.csv")
    rings = _read(out / "truth" / "rings.csv")
    apps = _read(out / "applications.csv").drop_duplicates("application_id")
    assert rings["ring_id"].is_unique
    assert set(truth.loc[truth["ring_id"] != "", "ring_id"]) <= set(rings["ring_id"])
    for typology, rate in config.rates.items():
        if typology != "guarantee_circle":
            assert rate * 0.6 <= (truth["typology"] == typology).mean() <= rate * 1.6, typology
    # a ring lives in one window: its ids are consecutive windows' worth apart at most
    edges = np.cumsum(summary.chunks)
    ranks = truth.index.to_numpy()
    window = np.searchsorted(edges, ranks, side="right")
    ringed = truth["ring_id"] != ""
    assert (pd.Series(window[ringed]).groupby(truth.loc[ringed, "ring_id"].to_numpy()).nunique() == 1).all()
    # the hubs are shared by the whole book: a carrier-NAT address in every window
    nat = apps.merge(truth, on="application_id").query("hard_negative == 'carrier_nat'")
    top = nat["ip"].value_counts().index[0]
    nat_window = window[
        truth.set_index("application_id").index.get_indexer(nat.loc[nat["ip"] == top, "application_id"])
    ]
    assert set(nat_window) == set(range(len(summary.chunks)))
    assert sum(summary.planted.values()) == int((truth["typology"] != "").sum())


def test_chunked_book_is_deterministic(tmp_path, chunked):
    out, config, _ = chunked
    generate_portfolio(config, tmp_path, chunk_rows=3_000)
    assert _sha(tmp_path) == _sha(out)


def test_chunked_random_scenario_splits_history_and_new(tmp_path):
    scenario = random_scenario(3, 12_000, file_format="parquet")
    summary = generate_scenario(scenario, tmp_path, chunk_rows=3_000)
    assert len(summary.chunks) == 4
    history, new = (
        _read(tmp_path / "history" / "applications.parquet"),
        _read(tmp_path / "new" / "applications.parquet"),
    )
    expected_new = max(1, round(scenario.config.new_batch_share * 12_000))
    assert new["application_id"].nunique() == expected_new
    assert (new["label"] == "").all()
    assert history["application_id"].max() < new["application_id"].min()
    broken = _read(tmp_path / "truth" / "broken_rows.csv")
    for folder, frame in (("history", history), ("new", new)):
        mine = broken[broken["folder"] == folder]
        assert list(frame["application_id"].iloc[mine["line"].astype(int) - 2]) == list(mine["application_id"])
    # a registry row sits with its firm's first application
    new_roles = _read(tmp_path / "new" / "company_roles.parquet")
    assert set(new_roles["company_uscc"]) <= set(new["company_uscc"])


def test_cli_chunk_rows(tmp_path):
    result = CliRunner().invoke(
        generate_command, ["--applications", "4000", "--chunk-rows", "2000", "--out", str(tmp_path / "c"), "--quiet"]
    )
    assert result.exit_code == 0, result.output
    assert "2 time windows" in result.output
    result = CliRunner().invoke(
        generate_command,
        ["--applications", "3000", "--seed", "42", "--chunk-rows", "0", "--out", str(tmp_path / "w"), "--quiet"],
    )
    assert result.exit_code == 0, result.output
    assert _sha(tmp_path / "w") == PINNED["plain"][0]
