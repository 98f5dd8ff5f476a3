"""Flagging benchmark: scoring new applications against a large graph.

Targets (issue 5): flagging one application against a 1,000,000-application
graph with p99 <= 50 ms (embedded) and <= 150 ms (Neo4j); batch throughput
>= 2,000 applications/s (embedded).

The store must hold an ingested portfolio with findings (``ringscope
detect``) and a trained model (``ringscope train``); the bench trains one if
there is none. The latest applications of the portfolio play the part of
the new ones: each is scored alone (latency) and then all together in one
batch (throughput), through the same incremental path ``ringscope flag``
uses (in-memory index of the graph, local ring re-detection, model, reasons).

Usage::

    python bench/bench_flag.py --store /tmp/s1m [--singles 200] [--batch 5000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", required=True, help="an ingested embedded store")
    parser.add_argument("--singles", type=int, default=200)
    parser.add_argument("--batch", type=int, default=5000)
    args = parser.parse_args()

    from detectors.flagging import FlagIndex
    from detectors.risk import train
    from detectors.scoring import load_model, models_folder
    from graph.embedded import EmbeddedStore

    store = EmbeddedStore(args.store)
    try:
        model = load_model(models_folder(store))
    except FileNotFoundError:
        print("no model in the store: training one (ringscope train)...", file=sys.stderr)
        model = train(store).model
    started = time.perf_counter()
    index = FlagIndex.build(store)
    build = time.perf_counter() - started
    apps = index.apps.sort_values("applied_at")
    n = len(apps)
    latest = apps["application_id"].iloc[-(args.singles + args.batch):].tolist()
    singles, batch = latest[: args.singles], latest[args.singles:]
    index.score(model, singles[:3])  # warm caches (hash tables are built on first use)
    latencies = []
    for app_id in singles:
        t0 = time.perf_counter()
        index.score(model, [app_id])
        latencies.append((time.perf_counter() - t0) * 1000)
    t0 = time.perf_counter()
    index.score(model, batch)
    batch_seconds = time.perf_counter() - t0
    p50, p99 = np.percentile(latencies, [50, 99])
    rate = len(batch) / batch_seconds
    print(f"\n{n:,} applications in the graph; index built in {build:.1f} s (once per process)\n")
    print("| measure | baseline (target) | measured | result |")
    print("|---|---:|---:|---|")
    print(f"| one application, p50 | | {p50:.0f} ms | |")
    print(f"| one application, p99 | <= 50 ms | {p99:.0f} ms | {'pass' if p99 <= 50 else 'FAIL'} |")
    print(f"| batch of {len(batch):,} | >= 2,000 applications/s | {rate:,.0f} /s | "
          f"{'pass' if rate >= 2000 else 'FAIL'} |")


if __name__ == "__main__":
    main()
