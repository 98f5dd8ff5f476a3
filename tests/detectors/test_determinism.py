"""The same input gives the same output (issue 11, item 15).

Whatever Python's hash seed (set and dict order of strings) and whichever
store holds the data (Neo4j returns rows in its own order), ``detect``,
``train`` and ``flag`` produce byte-identical files and the same model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ringscope.app.jobs import flag_applications
from ringscope.detectors.risk.scoring import TrainingConfig
from ringscope.detectors.risk.training import train
from ringscope.detectors.runner import _unique, findings_frame, run_detectors, save_findings
from ringscope.ingest.pipeline import ingest_folder
from ringscope.ingest.synthetic import GeneratorConfig, generate_portfolio

# trains models or runs whole jobs end to end: in `make test`, not in `make test-fast`
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def book(tmp_path_factory) -> tuple[Path, Path]:
    """A generated portfolio (with guarantee circles) split into the book and
    tonight's batch, as ``make demo`` does."""
    from ringscope.app.cli.data import split_tonight

    folder = tmp_path_factory.mktemp("determinism") / "data"
    generate_portfolio(GeneratorConfig(applications=2500, seed=7), folder)
    return split_tonight(folder)


def _run_jobs(book: tuple[Path, Path], out: Path, hash_seed: str) -> None:
    """detect --export, train, flag on ``out/store``: each its own ``ringscope`` process."""
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    for name in ("RINGSCOPE_MODELS", "RINGSCOPE_NEO4J_URI"):
        env.pop(name, None)
    store = str(out / "store")
    for args in (
        ["detect", "--store", store, "--export", str(out / "export")],
        ["train", "--store", store],
        [
            "flag",
            str(book[1]),
            "--store",
            store,
            "--out",
            str(out / "flags.csv"),
            "--rejects",
            str(out / "flag-rejects.csv"),
        ],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "ringscope.app.cli", *args, "--quiet"],
            cwd=out,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert done.returncode == 0, (hash_seed, args[0], done.stdout[-2000:], done.stderr[-2000:])


# detect, train and flag (every detector around the batch) as processes, twice: minutes, not seconds
@pytest.mark.timeout(1800)
def test_outputs_do_not_depend_on_the_hash_seed(book, tmp_path):
    import shutil
    from concurrent.futures import ThreadPoolExecutor

    from ringscope.graph.embedded import EmbeddedStore

    ingest_folder(book[0], EmbeddedStore(tmp_path / "ingested"), rejects_path=tmp_path / "rejects.csv")
    outs = {seed: tmp_path / f"hash-{seed}" for seed in ("1", "2")}
    for out in outs.values():
        shutil.copytree(tmp_path / "ingested", out / "store")
    with ThreadPoolExecutor(max_workers=2) as pool:  # the two seeds side by side
        for future in [pool.submit(_run_jobs, book, out, seed) for seed, out in outs.items()]:
            future.result()
    outs = list(outs.values())
    for name in ("export/findings.csv", "export/members.csv", "flags.csv"):
        first, second = ((o / name).read_bytes() for o in outs)
        assert first == second, f"{name} differs between PYTHONHASHSEED=1 and 2"
    findings = pd.read_csv(outs[0] / "export/findings.csv", encoding="utf-8-sig")
    # what used to change with the seed: where a circle's cycle starts (now at its smallest borrower)
    circles = findings[findings["detector"] == "guarantee_circles"]
    assert len(circles) >= 3
    for evidence in circles["evidence"]:
        cycle = json.loads(evidence)[0]["detail"].split(": ", 1)[1].split(" → ")
        assert cycle[0] == min(cycle[:-1]) and cycle[0] == cycle[-1]


@pytest.mark.neo4j
@pytest.mark.timeout(1800)
def test_both_stores_give_the_same_findings_model_and_flags(book, embedded_store, neo4j_store, tmp_path):
    base, tonight = book
    results = {}
    for store in (embedded_store, neo4j_store):
        ingest_folder(base, store, rejects_path=tmp_path / f"{store.kind}-rejects.csv")
        run = run_detectors(store)
        assert not run.errors
        save_findings(store, run)
        trained = train(store, TrainingConfig(), folder=tmp_path / f"{store.kind}-models")
        _, flagged = flag_applications(store, tonight, trained.model, tmp_path / f"{store.kind}-flag-rejects.csv")
        results[store.kind] = (findings_frame(_unique(run.findings)), trained, flagged.flags)
    (f_e, t_e, flags_e), (f_n, t_n, flags_n) = results["embedded"], results["neo4j"]
    pd.testing.assert_frame_equal(f_e, f_n)
    scored_e = t_e.scored.set_index("application_id").sort_index()
    scored_n = t_n.scored.set_index("application_id").sort_index()
    assert scored_e.index.equals(scored_n.index)
    assert np.max(np.abs(scored_e["score"].to_numpy() - scored_n["score"].to_numpy())) <= 1e-12
    assert (scored_e["decision"] == scored_n["decision"]).all()
    assert (scored_e["reasons"] == scored_n["reasons"]).all()

    def metrics(report: dict) -> str:
        return json.dumps(
            {k: v for k, v in report.items() if not k.startswith("_") and k not in ("trained_at", "version")},
            sort_keys=True,
            default=str,
        )

    assert metrics(t_e.report) == metrics(t_n.report)
    pd.testing.assert_frame_equal(flags_e.reset_index(drop=True), flags_n.reset_index(drop=True))
