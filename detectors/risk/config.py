"""What a training run is configured with: targets and :class:`TrainingConfig`.

Kept apart from the model code (no scikit-learn import) so that settings can
be read and validated cheaply by every command.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

from ringscope.graph.model import TARGET_LABELS

__all__ = ["TARGETS", "TrainingConfig", "MIN_POSITIVES", "OUT_OF_TIME_MINIMUM", "FALLBACK_FOLDS"]

#: what a model can learn to predict → the outcome labels that are its positives.
#: ``fraud`` also learns from investigators' confirmed-fraud verdicts; credit
#: ``default`` is its own model, never mixed into the fraud score.
TARGETS: dict[str, tuple[str, ...]] = TARGET_LABELS


#: fewest positives (train period, validation period) that out-of-time
#: validation needs: the calibration's own 3 folds must each see a positive,
#: and an AUC over one positive is a coin toss
OUT_OF_TIME_MINIMUM = (5, 2)
#: fewest positives ``train`` learns from at all: with fewer, every fold of the
#: stratified fallback would validate on a single positive
MIN_POSITIVES = 10
#: folds of the stratified fallback validation (at :data:`MIN_POSITIVES`,
#: each validation fold holds two positives)
FALLBACK_FOLDS = 5


@dataclass(frozen=True)
class TrainingConfig:
    """Settings of one training run (saved with the model, hashed into its version).

    ``target`` is what the model predicts (a key of :data:`TARGETS`);
    ``review_capacity`` is the share of applications the team can review
    (precision@k is measured there); ``review_threshold`` /
    ``decline_threshold`` are the default decisions on the calibrated
    probability (``flag`` can override them). ``honest_sample`` is the most
    other outcomes one fit learns from: beyond it they are drawn at random and
    weighted up, so every positive counts and the probabilities stay those
    of the whole book while a fit's cost stops growing with it.

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
