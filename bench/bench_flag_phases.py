"""Memory of one ``ringscope flag``, phase by phase (issue 12: ``flag`` <= 4 GB at 1M).

Runs ``flag_applications`` (what the CLI runs) on a copy of a store and
samples the process's resident memory every 10 ms; prints, per phase (the
ingest, the index build and its arrays, the detection around the batch and
identity resolution's entities inside it, the score write, the state's
save), the RSS at its start, its peak and at its end, Arrow's allocated
bytes and its seconds, then one JSON line with the whole run's peak and a
digest of the flags (compare two runs' flags with it).

Usage::

    cp -a STORE /tmp/copy && python bench/bench_flag_phases.py /tmp/copy FOLDER OUT_DIR [--no-save] [--detectors]

``--detectors`` adds a phase per call of each registered detector's
``statistics``, ``scope``, ``run``, ``around`` and ``resolve`` (those it
has), so the detector that sets the detection's peak shows by name, and
phases for the scoring's steps after the detection (features, the
model's scores and contributions, the reasons, the partners).

The store is written to (the batch is ingested, scores and findings
saved): always give it a copy.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import resource
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_gb() -> float:
    """This process's resident memory now, in GB."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * _PAGE / 2**30


class PhaseSampler:
    """Resident memory sampled every 10 ms into each open phase's peak."""

    def __init__(self) -> None:
        self.open: list[dict] = []
        self.done: list[dict] = []
        self.peak = 0.0
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self) -> None:
        while True:
            now = rss_gb()
            self.peak = max(self.peak, now)
            for phase in list(self.open):
                phase["peak"] = max(phase["peak"], now)
            time.sleep(0.01)

    def timed(self, label: str, function):
        """``function`` wrapped to record a phase ``label`` per call."""

        # ``functools.wraps`` keeps the signature the callers inspect: a detector's ``run`` is given
        # its statistics only if its signature names them, else it recomputes them over the scope
        @functools.wraps(function)
        def wrapped(*args, **kwargs):
            import pyarrow as pa

            now = rss_gb()
            phase = {"label": label, "start": now, "peak": now, "t": time.perf_counter()}
            self.open.append(phase)
            try:
                return function(*args, **kwargs)
            finally:
                self.open.remove(phase)
                phase.update(end=rss_gb(), arrow=pa.total_allocated_bytes() / 2**30)
                phase["seconds"] = time.perf_counter() - phase["t"]
                self.done.append(phase)

        return wrapped


def wrap_detectors(sampler: PhaseSampler) -> None:
    """Time each registered detector's passes over the book as phases of their own."""
    from ringscope.detectors.registry import DETECTORS, detector_class
    from ringscope.detectors.risk import flagging, scoring

    # the batch's scoring after its detection: each step the batch path takes, by name
    for name in ("own_features", "contributions", "build_reasons"):
        setattr(flagging, name, sampler.timed(f"    scoring: {name}", getattr(flagging, name)))
    for name in ("graph_features", "finding_features", "partners_of", "findings_around", "_target_apps"):
        setattr(flagging.FlagIndex, name, sampler.timed(f"    scoring: {name}", getattr(flagging.FlagIndex, name)))
    scoring.TrainedModel.predict_proba = sampler.timed("    scoring: predict_proba", scoring.TrainedModel.predict_proba)
    for name in DETECTORS:
        cls = detector_class(name)
        for method in ("statistics", "scope", "run", "around", "resolve"):
            function = cls.__dict__.get(method)  # the class's own, not a base class's (wrapped once)
            if callable(function):
                setattr(cls, method, sampler.timed(f"    {name}.{method}", function))


def main() -> None:
    store_path, folder, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    out.mkdir(parents=True, exist_ok=True)
    sampler = PhaseSampler()
    from ringscope.app import jobs
    from ringscope.detectors import incremental
    from ringscope.detectors.risk import flagging, training
    from ringscope.detectors.risk.scoring import load_model, models_folder
    from ringscope.graph.store import open_store

    index = flagging.FlagIndex
    jobs._ingest = sampler.timed("ingest", jobs._ingest)
    index.open = classmethod(sampler.timed("open index", index.open.__func__))
    index.__init__ = sampler.timed("  index arrays", index.__init__)
    index.detect = sampler.timed("detection", index.detect)
    index.score = sampler.timed("score (detection included)", index.score)
    incremental._resolve_entities = sampler.timed("  identity's entities", incremental._resolve_entities)
    training.write_scores = sampler.timed("write scores", training.write_scores)
    jobs.save_state = sampler.timed("save state", jobs.save_state)
    if "--detectors" in sys.argv:
        wrap_detectors(sampler)
    store = open_store(store_path, None)
    model = load_model(models_folder(store))
    started = time.perf_counter()
    _, result = jobs.flag_applications(store, folder, model, out / "rejects.csv", save="--no-save" not in sys.argv)
    total = time.perf_counter() - started
    result.flags.sort_values("application_id").to_csv(out / "flags.csv", index=False)
    for p in sorted(sampler.done, key=lambda p: p["t"]):
        print(
            f"{p['label']:<28} start {p['start']:6.2f}  peak {p['peak']:6.2f} (+{p['peak'] - p['start']:5.2f})  "
            f"end {p['end']:6.2f}  arrow {p['arrow']:5.2f}  {p['seconds']:7.1f} s"
        )
    print(
        json.dumps(
            {
                "scored": len(result.flags),
                "seconds": round(total, 1),
                "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3),
                "flags_sha256": hashlib.sha256((out / "flags.csv").read_bytes()).hexdigest(),
                # the findings detected around the batch, every field (two versions of the code compared)
                "findings": len(result.new_findings),
                "findings_sha256": hashlib.sha256(
                    "\n".join(sorted(repr(f) for f in result.new_findings)).encode("utf-8")
                ).hexdigest(),
            }
        )
    )
    store.close()


if __name__ == "__main__":
    main()
