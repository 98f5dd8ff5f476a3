"""What a training run is configured with: targets and :class:`TrainingConfig`.

Kept apart from the model code (no scikit-learn import) so that settings can
be read and validated cheaply by every command.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass

from ringscope.graph.model import TARGET_LABELS

__all__ = [
    "TARGETS",
    "TrainingConfig",
    "MIN_POSITIVES",
    "OUT_OF_TIME_MINIMUM",
    "FALLBACK_FOLDS",
    "CALIBRATION_FOLDS",
    "HONEST_SAMPLE_FLOOR",
    "TooFewOutcomes",
    "negatives_to_learn_from",
    "fit_threads",
]

#: what a model can learn to predict → the outcome labels that are its positives.
#: ``fraud`` also learns from investigators' confirmed-fraud verdicts; credit
#: ``default`` is its own model, never mixed into the fraud score.
TARGETS: dict[str, tuple[str, ...]] = TARGET_LABELS


class TooFewOutcomes(ValueError):
    """The labelled history cannot train a model of the target: no outcomes,
    only one kind of them, or fewer than :data:`MIN_POSITIVES` of either."""


#: folds of each fit's calibration (``CalibratedClassifierCV``): a fit is that
#: many models, each learning from the other folds and calibrated on its own,
#: their probabilities averaged. Two cost one fit on every row (three cost two:
#: each of them learns from 2/3); at 1M the fits were half of ``train``'s CPU,
#: and ``bench/bench_quality.py`` moved no figure one way with two (README, Benchmarks)
CALIBRATION_FOLDS = 2
#: fewest positives (train period, validation period) that out-of-time
#: validation needs: the calibration's own folds must each see a positive,
#: and an AUC over one positive is a coin toss
OUT_OF_TIME_MINIMUM = (5, 2)
#: fewest positives ``train`` learns from at all: with fewer, every fold of the
#: stratified fallback would validate on a single positive
MIN_POSITIVES = 10
#: folds of the stratified fallback validation (at :data:`MIN_POSITIVES`,
#: each validation fold holds two positives)
FALLBACK_FOLDS = 5
#: fewest other outcomes a fit samples down to: below it a fit costs seconds
#: and a sample would only add noise, so small books learn from every row
HONEST_SAMPLE_FLOOR = 20_000


def negatives_to_learn_from(positives: int, per_positive: int, cap: int) -> int:
    """How many other (negative) outcomes one fit learns from, given the
    positives it has: ``per_positive`` for each of them, at least
    :data:`HONEST_SAMPLE_FLOOR` and at most ``cap``.

    What a fit can learn is bounded by its rarer class: past a few negatives
    per positive, more of them sharpen the estimate of the honest majority
    the model hardly needs (a case-control sample with k controls per case
    keeps about k/(k+1) of the full data's information), while the cost
    grows with every row. The weights of :func:`honest_sample_rows` keep the
    probabilities those of the whole book.

    Example
    -------
    >>> negatives_to_learn_from(5_000, 10, 200_000), negatives_to_learn_from(50, 10, 200_000)
    (50000, 20000)
    >>> negatives_to_learn_from(25_000, 10, 200_000), negatives_to_learn_from(25_000, 10, 1_000)
    (200000, 1000)
    """
    return int(min(cap, max(HONEST_SAMPLE_FLOOR, per_positive * positives)))


@dataclass(frozen=True)
class TrainingConfig:
    """Settings of one training run (saved with the model, hashed into its version).

    ``target`` is what the model predicts (a key of :data:`TARGETS`);
    ``review_capacity`` is the share of applications the team can review
    (precision@k is measured there); ``review_threshold`` /
    ``decline_threshold`` are the default decisions on the calibrated
    probability (``flag`` can override them). A fit learns from every
    positive and from ``negatives_per_positive`` other outcomes per positive
    (at least :data:`HONEST_SAMPLE_FLOOR`, at most ``honest_sample``;
    :func:`negatives_to_learn_from`): beyond that they are drawn at random and
    weighted up, so the probabilities stay those of the whole book while a
    fit's cost follows its positives, not the size of the book.

    Example
    -------
    >>> TrainingConfig().bad_labels, TrainingConfig(target="default").bad_labels
    (('fraud',), ('default',))
    """

    target: str = "fraud"
    validation_share: float = 0.3
    review_capacity: float = 0.05
    review_threshold: float = 0.3
    decline_threshold: float = 0.7
    prefer_scorecard_within: float = 0.02
    honest_sample: int = 200_000
    negatives_per_positive: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise ValueError(f"target must be one of {', '.join(TARGETS)}; got {self.target!r}")
        if not 0.05 <= self.validation_share <= 0.5:
            raise ValueError(f"validation_share must be in [0.05, 0.5]; got {self.validation_share}")
        if not 0 < self.review_capacity < 1:
            raise ValueError(f"review_capacity must be in (0, 1); got {self.review_capacity}")
        whole = isinstance(self.honest_sample, int) and not isinstance(self.honest_sample, bool)
        if not whole or self.honest_sample < 1000:
            raise ValueError(f"honest_sample must be a whole number of at least 1000; got {self.honest_sample!r}")
        whole = isinstance(self.negatives_per_positive, int) and not isinstance(self.negatives_per_positive, bool)
        if not whole or self.negatives_per_positive < 1:
            raise ValueError(
                f"negatives_per_positive must be a whole number of at least 1; got {self.negatives_per_positive!r}"
            )
        if not 0 < self.review_threshold < self.decline_threshold <= 1:
            raise ValueError(
                "thresholds must satisfy 0 < review_threshold < decline_threshold <= 1; "
                f"got {self.review_threshold} and {self.decline_threshold}"
            )

    @property
    def bad_labels(self) -> tuple[str, ...]:
        """The outcome labels that are positives of the target (and the "known
        bad" neighbours of the graph features)."""
        return TARGETS[self.target]

    def digest(self) -> str:
        return hashlib.sha1(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:8]


def fit_threads(cores: int | None = None, load: float | None = None) -> int | None:
    """How many threads the fits may use: the cores no other process keeps
    busy (``cores`` less the 1-minute ``load`` beyond this process's own),
    at least one; ``None`` (no limit) when ``OMP_NUM_THREADS`` says already.

    The boosted model and the scorecard's k-means bins run OpenMP threads
    that spin while they wait for each other: on 2 shared cores at load 13
    a boosted fit of 100,000 rows took 19 s of CPU with two threads and 2 s
    with one (the k-means bins 9.7 s and 4.4 s), and the wall time rose the
    same way. On idle cores every core is used, as before.

    Example
    -------
    >>> fit_threads(cores=8, load=1.0), fit_threads(cores=8, load=5.5), fit_threads(cores=2, load=13.0)
    (8, 3, 1)
    """
    if cores is None and load is None and os.environ.get("OMP_NUM_THREADS"):
        return None
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if load is None:
        try:
            load = os.getloadavg()[0]
        except OSError:  # no load average on this platform: the cores are ours
            load = 0.0
    busy = max(0.0, load - 1.0)  # this process is one of the running ones
    return max(1, min(cores, int(cores - busy)))
