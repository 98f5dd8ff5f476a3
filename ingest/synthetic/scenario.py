"""Random scenarios: the generator's knobs drawn from wide ranges, from one seed.

A detector tuned on one generated portfolio may only have learnt that
portfolio. ``ringscope generate --scenario random --seed S`` draws every
knob of :class:`GeneratorConfig` that shapes what fraud and honest crowds
look like — ring sizes, how much of the ring's identifiers each member
reuses, how fast a ring applies, formatting mess, the honest hubs, how much
of the history is labelled, how common fraud is, how big tonight's batch is,
fraudsters rotating devices and IPs — so that ``bench/bench_quality.py`` can
measure detection on books it was never tuned on.

The ranges (``RANGES``; *log* = log-uniform, *int* = whole numbers):

=====================  ==========================  ==================================================
knob                   range                       meaning
=====================  ==========================  ==================================================
fraud_prevalence       0.5%–10% (log)              share of applications planted as fraud, split
                                                   over the typologies by a random mix (each on with
                                                   chance 0.85, at least two on)
ring_sizes             low 2–10, high low–60       members per identity ring, device farm, contact
                       (int, high log)             loop and broker ring
ring_span_seconds      centre 5 min–90 days (log), the window each ring's applications fall in
                       low = centre/4 (>= 60 s),
                       high = centre*4 (<= 183 d)
reuse_share            10%–90%                     chance an identity-ring member reuses each of the
                                                   ring's identifiers
rotation               0 (one in three), else      chance a device-farm member resets its device, and
                       10%–90%                     apart, comes through an IP outside the farm's range
mess_rate              0–20%                       rows with formatting mess
broken_row_rate        0–0.5%                      rows that break the contract
nat_ips, nat_share     1–50 (log int), 0–15%       carrier-NAT addresses and the share behind them
office_towers,         1–20 (log int), 0–6%        buildings with many registered firms
office_share
big_employers,         1–20 (int), 5%–35%          big employers and the consumer share they employ
employer_share
family_size,           2–8 (int), 0–8%             largest family, share of applications in families
family_share
busy_agents,           1–6 (int), 0–8%             honest agents with many applications
busy_agent_share
repeat_share           0–6%                        applications by a borrower borrowing again
labelled_share         20%–90%                     oldest share of the history with an outcome label
new_batch_share        1%–30%                      latest share of applications held out as ``new/``
=====================  ==========================  ==================================================

Example
-------
>>> s = random_scenario(3, applications=1_000)
>>> s.config.seed, 0.01 <= s.config.new_batch_share <= 0.3
(3, True)
>>> random_scenario(3, applications=1_000) == s
True
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ringscope.graph.files import atomic_write_text
from ringscope.ingest.synthetic.config import TYPOLOGIES, GenerationSummary, GeneratorConfig
from ringscope.ingest.synthetic.generator import generate_portfolio
from ringscope.ingest.synthetic.honest import BUSINESS_SHARE

__all__ = ["Scenario", "RANGES", "SCENARIOS", "random_scenario", "generate_scenario", "SCENARIO_FILE"]

SCENARIOS = ("random",)
SCENARIO_FILE = "scenario.json"

#: knob -> (low, high) of its draw; see the module docstring for how each is drawn
RANGES: dict[str, tuple[float, float]] = {
    "fraud_prevalence": (0.005, 0.10),
    "ring_size_low": (2, 10),
    "ring_size_high": (2, 60),
    "ring_span_centre_seconds": (300, 90 * 86_400),
    "reuse_share": (0.1, 0.9),
    "rotation": (0.1, 0.9),
    "mess_rate": (0.0, 0.2),
    "broken_row_rate": (0.0, 0.005),
    "nat_ips": (1, 50),
    "nat_share": (0.0, 0.15),
    "office_towers": (1, 20),
    "office_share": (0.0, 0.06),
    "big_employers": (1, 20),
    "employer_share": (0.05, 0.35),
    "family_size": (2, 8),
    "family_share": (0.0, 0.08),
    "busy_agents": (1, 6),
    "busy_agent_share": (0.0, 0.08),
    "repeat_share": (0.0, 0.06),
    "labelled_share": (0.2, 0.9),
    "new_batch_share": (0.01, 0.30),
}
_MIN_SPAN, _MAX_SPAN = 60, 183 * 86_400
# config field of each typology's rate
_RATE_FIELD = {
    "identity_ring": "identity_rings",
    "device_farm": "device_farms",
    "synthetic_identity": "synthetic_identities",
    "contact_loop": "contact_loops",
    "broker_ring": "broker_rings",
    "guarantee_circle": "guarantee_circles",
    "cashflow_inconsistency": "cashflow_inconsistency",
}
#: a guarantee circle also drags ~0.2 chain firms per member into the truth
_CHAIN_FACTOR = 1.2


@dataclass(frozen=True)
class Scenario:
    """A named set of generator knobs and the config they make.

    ``knobs`` holds what was drawn (JSON-ready: fraud prevalence and the
    typology mix as well as the config fields they set); ``config`` is what
    :func:`generate_portfolio` runs with.
    """

    kind: str
    seed: int
    config: GeneratorConfig
    knobs: dict[str, Any] = field(default_factory=dict, compare=False)

    def to_json(self) -> str:
        """``scenario.json``: kind, seed, drawn knobs and the full config."""
        return (
            json.dumps(
                {"kind": self.kind, "seed": self.seed, "knobs": self.knobs, "config": asdict(self.config)},
                ensure_ascii=False,
                indent=2,
                sort_keys=True,
            )
            + "\n"
        )


def random_scenario(seed: int, applications: int = 20_000, **fixed: Any) -> Scenario:
    """Draw every scenario knob from ``RANGES``, deterministically from ``seed``.

    Parameters
    ----------
    seed : int
        Seeds both the knob draws and the generator itself.
    applications : int
        Portfolio size (not drawn).
    **fixed
        Other ``GeneratorConfig`` fields kept as given (``encoding``,
        ``file_format``, ...).

    Returns
    -------
    Scenario

    Example
    -------
    >>> a, b = random_scenario(1, 2_000), random_scenario(2, 2_000)
    >>> a.knobs == random_scenario(1, 2_000).knobs, a.knobs == b.knobs
    (True, False)
    >>> 2 <= a.config.ring_sizes[0] <= a.config.ring_sizes[1] <= 60
    True
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"The 'seed' parameter of random_scenario must be an int >= 0. Got {seed!r} instead.")
    # a stream of its own: the generator's stream (seeded with ``seed``) is untouched
    rng = np.random.default_rng([seed, 0x5CE7A])

    def uniform(name: str) -> float:
        return float(rng.uniform(*RANGES[name]))

    def log_uniform(low: float, high: float) -> float:
        return float(np.exp(rng.uniform(np.log(low), np.log(high))))

    def whole(name: str, log: bool = False) -> int:
        low, high = RANGES[name]
        value = log_uniform(low, high + 1) if log else rng.uniform(low, high + 1)
        return int(min(np.floor(value), high))

    prevalence = log_uniform(*RANGES["fraud_prevalence"])
    on = rng.random(len(TYPOLOGIES)) < 0.85
    if on.sum() < 2:
        on[rng.choice(len(TYPOLOGIES), size=2, replace=False)] = True
    mix = np.where(on, rng.dirichlet(np.ones(len(TYPOLOGIES))), 0.0)
    mix = mix / mix.sum()
    rates = {}
    for typology, share in zip(TYPOLOGIES, mix):
        rate = prevalence * float(share)
        if typology == "guarantee_circle":  # its rate counts business borrowers, plus chains
            rate = min(rate / BUSINESS_SHARE / _CHAIN_FACTOR, 0.2)
        rates[_RATE_FIELD[typology]] = round(rate, 6)

    size_low = whole("ring_size_low")
    size_high = int(
        min(np.floor(log_uniform(max(size_low, 4), RANGES["ring_size_high"][1] + 1)), RANGES["ring_size_high"][1])
    )
    centre = log_uniform(*RANGES["ring_span_centre_seconds"])
    span = (float(round(max(_MIN_SPAN, centre / 4))), float(round(min(_MAX_SPAN, centre * 4))))
    rotation = 0.0 if rng.random() < 1 / 3 else uniform("rotation")
    drawn = {
        "ring_sizes": (size_low, size_high),
        "ring_span_seconds": span,
        "reuse_share": uniform("reuse_share"),
        "rotation": rotation,
        "mess_rate": uniform("mess_rate"),
        "broken_row_rate": uniform("broken_row_rate"),
        "nat_ips": whole("nat_ips", log=True),
        "nat_share": uniform("nat_share"),
        "office_towers": whole("office_towers", log=True),
        "office_share": uniform("office_share"),
        "big_employers": whole("big_employers"),
        "employer_share": uniform("employer_share"),
        "family_size": whole("family_size"),
        "family_share": uniform("family_share"),
        "busy_agents": whole("busy_agents"),
        "busy_agent_share": uniform("busy_agent_share"),
        "repeat_share": uniform("repeat_share"),
        "labelled_share": uniform("labelled_share"),
        "new_batch_share": uniform("new_batch_share"),
    }
    drawn = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in drawn.items()}
    config = GeneratorConfig(applications=applications, seed=seed, **rates, **drawn, **fixed)
    knobs = {
        "fraud_prevalence": round(prevalence, 6),
        "typology_mix": {t: round(float(s), 6) for t, s in zip(TYPOLOGIES, mix)},
        **rates,
        **{k: list(v) if isinstance(v, tuple) else v for k, v in drawn.items()},
    }
    return Scenario(kind="random", seed=seed, config=config, knobs=knobs)


def generate_scenario(
    scenario: Scenario,
    out_dir: str | Path,
    progress: Callable[[str, int, int], None] | None = None,
    chunk_rows: int | None = None,
) -> GenerationSummary:
    """Generate ``scenario``'s portfolio into ``out_dir`` and write its knobs
    beside the data (``scenario.json``, mode 0600).

    ``chunk_rows`` as in :func:`generate_portfolio`. Returns the generator's
    summary, with ``paths["scenario"]`` added.
    """
    out = Path(out_dir)
    summary = generate_portfolio(scenario.config, out, progress=progress, chunk_rows=chunk_rows)
    path = out / SCENARIO_FILE
    atomic_write_text(path, scenario.to_json())
    summary.paths["scenario"] = str(path)
    return summary
