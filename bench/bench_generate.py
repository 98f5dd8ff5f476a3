"""Generator benchmark: a labeled portfolio of N applications (default 1,000,000).

Target: 1M applications in <= 120 s on a 2-core machine. Prints one table:
applications, rows per table, seconds, peak RSS, target and pass/fail.
Usage::

    python bench/bench_generate.py
    python bench/bench_generate.py --applications 200000 --encoding gb18030
    python bench/bench_generate.py --applications 10000000 --file-format parquet --chunk-rows 500000
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_SECONDS = 120.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--applications", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--encoding", default="utf-8")
    parser.add_argument("--file-format", default="csv", choices=("csv", "parquet"))
    parser.add_argument(
        "--chunk-rows", type=int, default=None, help="build the book in time windows of this many applications"
    )
    args = parser.parse_args(argv)

    from ringscope.ingest.synthetic import GeneratorConfig, generate_portfolio

    config = GeneratorConfig(
        applications=args.applications, seed=args.seed, encoding=args.encoding, file_format=args.file_format
    )
    with tempfile.TemporaryDirectory(prefix="ringscope-bench-") as tmp:
        started = time.perf_counter()
        summary = generate_portfolio(
            config,
            tmp,
            chunk_rows=args.chunk_rows,
            progress=lambda step, i, k: print(
                f"  [{time.perf_counter() - started:6.1f} s] {i}/{k} {step}", file=sys.stderr
            ),
        )
        seconds = time.perf_counter() - started
        size_mb = sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file()) / 1e6
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024  # Linux: KiB
    # the target scales with N so smaller runs still say something
    target = TARGET_SECONDS * args.applications / 1_000_000
    ok = seconds <= target

    rows = [("applications (requested)", f"{args.applications:,}")]
    rows += [(f"rows: {name}", f"{count:,}") for name, count in summary.row_counts.items()]
    rows += [
        ("planted fraud applications", f"{sum(summary.planted.values()):,}"),
        ("broken rows", f"{summary.broken_rows:,}"),
        ("output size", f"{size_mb:,.0f} MB ({args.file_format}, {args.encoding})"),
        ("time windows", f"{len(summary.chunks)} (chunk rows {args.chunk_rows:,})" if summary.chunks else "whole book"),
        ("seconds", f"{seconds:.1f}"),
        ("peak RSS", f"{peak_gb:.2f} GB"),
        ("target", f"<= {target:.0f} s"),
        ("result", "PASS" if ok else "FAIL"),
    ]
    width = max(len(k) for k, _ in rows)
    print(f"{'metric':<{width}}  value")
    print(f"{'-' * width}  {'-' * 24}")
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
