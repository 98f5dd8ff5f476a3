"""Ingest benchmark: embedded store at 1M applications, Neo4j at 100k.

Prints a table beside the targets of issue 2:

- embedded: 1,000,000 applications (with contacts and guarantees) in <= 60 s,
  peak memory <= 4 GB;
- Neo4j: >= 30,000 input rows/s with batched UNWIND at 100,000 applications.

Each ingest runs in a child process (``ringscope ingest``) so its own peak RSS
is measured. Usage::

    python bench/bench_ingest.py                 # both
    python bench/bench_ingest.py --only embedded --applications 200000
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))


def _portfolio(n: int, out: Path) -> Path:
    from ringscope.ingest.synthetic import GeneratorConfig, generate_portfolio

    folder = out / f"portfolio-{n}"
    if not (folder / "applications.csv").exists():
        started = time.perf_counter()
        generate_portfolio(GeneratorConfig(applications=n, seed=11), folder)
        print(f"  generated {n:,} applications in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return folder


def _input_rows(folder: Path) -> int:
    rows = 0
    for name in ("applications", "contacts", "guarantees", "company_roles"):
        path = folder / f"{name}.csv"
        if path.exists():
            with open(path, "rb") as fh:
                rows += sum(1 for _ in fh) - 1
    return rows


def _run_ingest(folder: Path, store_args: list[str], rejects: Path) -> tuple[float, float]:
    """Run one ingest in a child; return (seconds, that child's peak RSS in GB).

    GNU time reports the child's own maximum resident set size.
    """
    started = time.perf_counter()
    proc = subprocess.run(
        [
            "/usr/bin/time",
            "-f",
            "MAXRSS_KB %M",
            sys.executable,
            "-m",
            "ringscope.app.cli",
            "ingest",
            str(folder),
            *store_args,
            "--quiet",
            "--rejects",
            str(rejects),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        print(proc.stdout, proc.stderr, file=sys.stderr)
        raise SystemExit(f"ingest failed with exit code {proc.returncode}")
    peak_kb = int(proc.stderr.strip().splitlines()[-1].split()[-1])
    return seconds, peak_kb / 1024 / 1024


def bench_embedded(n: int, out: Path) -> dict:
    folder = _portfolio(n, out)
    rows = _input_rows(folder)
    store = out / f"store-{n}"
    shutil.rmtree(store, ignore_errors=True)
    seconds, peak = _run_ingest(folder, ["--store", str(store)], out / "rejects-embedded.csv")
    from ringscope.graph.embedded import EmbeddedStore

    counts = EmbeddedStore(store).counts()
    passed = seconds <= 60 * n / 1_000_000 and peak <= 4.0
    return dict(
        store="embedded",
        applications=n,
        rows=rows,
        seconds=seconds,
        peak=peak,
        graph=counts.total_nodes + counts.total_relationships,
        target=f"<= {60 * n / 1_000_000:.0f} s, <= 4 GB",
        passed=passed,
    )


def bench_neo4j(n: int, out: Path) -> dict:
    import neo4j_server

    folder = _portfolio(n, out)
    rows = _input_rows(folder)
    uri = os.environ.get("NEO4J_URI")
    handle = None
    if not uri:
        handle = neo4j_server.start_server(port=0, data_dir=str(out / "neo4j-data"), heap="2g", pagecache="1g")
        uri = handle.uri
        os.environ.update(handle.client_env())  # its password, for the store here and the ingest subprocess
    try:
        from ringscope.graph.neo4j_store import Neo4jStore

        store = Neo4jStore(uri)
        store.clear()
        store.close()
        seconds, peak = _run_ingest(folder, ["--neo4j", uri], out / "rejects-neo4j.csv")
        store = Neo4jStore(uri)
        counts = store.counts()
        store.close()
    finally:
        if handle is not None:
            handle.stop()
    rate = rows / seconds
    return dict(
        store="neo4j",
        applications=n,
        rows=rows,
        seconds=seconds,
        peak=peak,
        graph=counts.total_nodes + counts.total_relationships,
        target=">= 30,000 rows/s",
        passed=rate >= 30_000,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["embedded", "neo4j"])
    parser.add_argument("--applications", type=int, default=None, help="override N for the chosen store")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    if args.only in (None, "embedded"):
        results.append(bench_embedded(args.applications or 1_000_000, args.out))
    if args.only in (None, "neo4j"):
        results.append(bench_neo4j(args.applications or 100_000, args.out))
    print()
    print(
        "| store | applications | input rows | seconds | input rows/s | graph nodes+rels | graph writes/s | peak RSS (client) | target | result |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for r in results:
        print(
            f"| {r['store']} | {r['applications']:,} | {r['rows']:,} | {r['seconds']:.1f} | "
            f"{r['rows'] / r['seconds']:,.0f} | {r['graph']:,} | {r['graph'] / r['seconds']:,.0f} | "
            f"{r['peak']:.2f} GB | {r['target']} | {'pass' if r['passed'] else 'FAIL'} |"
        )


if __name__ == "__main__":
    main()
