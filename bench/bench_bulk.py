"""First-load benchmark: ``ingest --bulk`` (offline importer) against the MERGE ingest.

Issue 15's target: bulk import >= 300,000 graph writes/s at 100,000
applications. Each load runs as a child ``ringscope ingest`` into a fresh
launcher-run Neo4j (heap 2g, page cache 1g, plugins on, as ``bench_ingest``),
first with ``--bulk``, then without it on a second fresh server (the
baseline). Printed per run: seconds of the whole command, of the import step
(importer JVM included) and of the importer's own ``IMPORT DONE`` figure,
graph writes (nodes + relationships) per second of each, input rows per
second of the command, and the child's peak RSS. Usage::

    python bench/bench_bulk.py                       # 100k applications
    python bench/bench_bulk.py --applications 20000 --skip-merge
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from bench_ingest import _input_rows, _portfolio  # noqa: E402  (same generated book, seed 11)


def _ingest(folder: Path, uri: str, rejects: Path, *extra: str) -> tuple[float, float, str]:
    """One ``ringscope ingest`` child: (seconds, peak RSS in GB, its stdout)."""
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
            "--neo4j",
            uri,
            "--quiet",
            "--rejects",
            str(rejects),
            *extra,
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
    return seconds, peak_kb / 1024 / 1024, proc.stdout


def _server(data: Path):
    import neo4j_server

    shutil.rmtree(data, ignore_errors=True)
    handle = neo4j_server.start_server(port=0, data_dir=str(data), heap="2g", pagecache="1g")
    os.environ.update(handle.client_env())
    return handle


def _graph_writes(uri: str) -> int:
    from ringscope.graph.neo4j_store import Neo4jStore

    store = Neo4jStore(uri)
    try:
        counts = store.counts()
    finally:
        store.close()
    return counts.total_nodes + counts.total_relationships


def bench_bulk(folder: Path, rows: int, out: Path) -> dict:
    import neo4j_server

    data = out / "neo4j-bulk"
    handle = _server(data)
    try:
        seconds, peak, stdout = _ingest(folder, handle.uri, out / "rejects-bulk.csv", "--bulk")
        writes = _graph_writes(handle.uri)
    finally:
        neo4j_server.stop_server(data)  # by pid file: the bulk load restarted the server
    line = next(ln for ln in stdout.splitlines() if "bulk import:" in ln)
    print(f"  {line.strip()} (whole command {seconds:.1f} s)", file=sys.stderr)
    step = float(re.search(r"relationships in ([\d.]+) s", line).group(1))
    own = re.search(r"importer's own ([\d.]+) s", line)
    return dict(
        method="ingest --bulk",
        rows=rows,
        writes=writes,
        seconds=seconds,
        step=step,
        own=float(own.group(1)) if own else None,
        peak=peak,
    )


def bench_merge(folder: Path, rows: int, out: Path) -> dict:
    data = out / "neo4j-merge"
    handle = _server(data)
    try:
        seconds, peak, _ = _ingest(folder, handle.uri, out / "rejects-merge.csv")
        writes = _graph_writes(handle.uri)
    finally:
        handle.stop()
    return dict(method="ingest (MERGE)", rows=rows, writes=writes, seconds=seconds, step=None, own=None, peak=peak)


def _rate(n: int, seconds: float | None) -> str:
    return f"{n / seconds:>12,.0f}" if seconds else f"{'-':>12}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--applications", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    parser.add_argument("--skip-merge", action="store_true", help="no MERGE baseline (it takes minutes)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    folder = _portfolio(args.applications, args.out)
    rows = _input_rows(folder)
    results = [bench_bulk(folder, rows, args.out)]
    if not args.skip_merge:
        results.append(bench_merge(folder, rows, args.out))
    print(f"\nFirst load of {args.applications:,} applications ({rows:,} input rows) into an empty Neo4j 5.26")
    print(
        f"{'method':<16}{'graph writes':>13}{'command s':>11}{'import s':>10}{'importer s':>11}"
        f"{'writes/s cmd':>13}{'writes/s imp':>13}{'writes/s own':>13}{'rows/s cmd':>12}{'peak GB':>9}"
    )
    for r in results:
        step = f"{r['step']:.1f}" if r["step"] else "-"
        own = f"{r['own']:.1f}" if r["own"] else "-"
        print(
            f"{r['method']:<16}{r['writes']:>13,}{r['seconds']:>11.1f}{step:>10}{own:>11}"
            f"{_rate(r['writes'], r['seconds']):>13}{_rate(r['writes'], r['step']):>13}{_rate(r['writes'], r['own']):>13}"
            f"{_rate(r['rows'], r['seconds'])}{r['peak']:>9.2f}"
        )
    bulk = results[0]
    rate = bulk["writes"] / bulk["step"]
    print(
        f"target (issue 15): >= 300,000 graph writes/s in the import step -> {rate:,.0f} {'PASS' if rate >= 300_000 else 'FAIL'}"
    )


if __name__ == "__main__":
    main()
