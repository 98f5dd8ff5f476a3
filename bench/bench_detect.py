"""Detector benchmark: every registered detector over 1,000,000 applications.

Targets (issue 4): all detectors together <= 5 minutes on this 2-core
machine and <= 8 GB peak memory; each detector's time is reported. The run
happens in a child process (``--child``) so GNU time can report its own peak
RSS. The store is the embedded one, built by ``bench_ingest``'s generator and
``ringscope ingest`` when ``--store`` is not given.

Usage::

    python bench/bench_detect.py                          # 1M, builds the store if needed
    python bench/bench_detect.py --store /tmp/s1m         # an existing ingested store
    python bench/bench_detect.py --applications 200000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TOTAL_SECONDS = 300
PEAK_GB = 8.0


def _child(store_path: str) -> None:
    from ringscope.detectors.portfolio import Portfolio
    from ringscope.detectors.registry import DETECTORS
    from ringscope.detectors.runner import run_detectors
    from ringscope.graph.embedded import EmbeddedStore

    store = EmbeddedStore(store_path)
    started = time.perf_counter()
    portfolio = Portfolio(store)
    _ = portfolio.applications, portfolio.links
    read = time.perf_counter() - started
    run = run_detectors(portfolio, list(DETECTORS))
    print(
        json.dumps(
            {
                "read": read,
                "seconds": run.seconds,
                "errors": {k: v.splitlines()[0] for k, v in run.errors.items()},
                "findings": {name: sum(f.detector == name for f in run.findings) for name in run.seconds},
                "applications": int(len(portfolio.applications)),
            }
        )
    )


def _store(n: int, out: Path) -> Path:
    sys.path.insert(0, str(ROOT / "bench"))
    from bench_ingest import _portfolio

    store = out / f"store-{n}"
    if not (store / "nodes" / "Application.parquet").exists():
        folder = _portfolio(n, out)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "ringscope.app.cli",
                "ingest",
                str(folder),
                "--store",
                str(store),
                "--quiet",
                "--rejects",
                str(out / "rejects-detect.csv"),
            ],
            cwd=ROOT,
            check=False,
        )
    return store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", default=None, help="an ingested embedded store to reuse")
    parser.add_argument("--applications", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    store = Path(args.store) if args.store else _store(args.applications, args.out)
    started = time.perf_counter()
    proc = subprocess.run(
        ["/usr/bin/time", "-f", "MAXRSS_KB %M", sys.executable, __file__, "--child", str(store)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        print(proc.stdout, proc.stderr, file=sys.stderr)
        raise SystemExit(f"detector run failed with exit code {proc.returncode}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    peak = int(proc.stderr.strip().splitlines()[-1].split()[-1]) / 1024 / 1024
    n = result["applications"]
    print(f"\n{n:,} applications, store {store}\n")
    print("| step | seconds | findings | status |")
    print("|---|---:|---:|---|")
    print(f"| read portfolio columns | {result['read']:.1f} | | |")
    for name, seconds in result["seconds"].items():
        status = "error: " + result["errors"][name] if name in result["errors"] else "ok"
        print(f"| {name} | {seconds:.1f} | {result['findings'][name]:,} | {status} |")
    total = result["read"] + sum(result["seconds"].values())
    print(f"| **all detectors (wall, incl. start-up)** | **{wall:.1f}** | | |")
    print()
    print("| measure | baseline (target) | measured | result |")
    print("|---|---:|---:|---|")
    print(
        f"| all detectors, {n:,} applications | <= {TOTAL_SECONDS} s | {total:.1f} s | "
        f"{'pass' if total <= TOTAL_SECONDS else 'FAIL'} |"
    )
    print(f"| peak RSS | <= {PEAK_GB:.0f} GB | {peak:.2f} GB | {'pass' if peak <= PEAK_GB else 'FAIL'} |")


if __name__ == "__main__":
    main()
