"""What every detector shares: findings, evidence, parameter validation.

A detector is a small frozen dataclass with a ``name`` and keyword-only
parameters validated when it is built; ``run(store)`` returns findings. A
finding records the detector's name and parameters, its members, a raw score
in [0, 1] kept apart from any threshold, and evidence items that say why,
each with its contribution, so an investigator can check it in seconds.

Incremental detection (``ringscope flag``) asks two more things of a
detector, both optional:

* ``statistics(portfolio)`` — the portfolio-wide figures its thresholds are
  decided from (hub decisions, base rates, peer groups, a fitted model);
* ``scope(portfolio, app_ids, statistics)`` — a smaller portfolio holding
  everything that decides the findings which can contain ``app_ids``.

``run(scope, statistics=...)`` must then give exactly the findings holding
``app_ids`` that ``run(portfolio)`` gives. A detector that does not narrow
its scope is run on the whole portfolio: slower, never wrong.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Sequence

__all__ = ["Evidence", "Finding", "Detector", "check_param"]


@dataclass(frozen=True)
class Evidence:
    """One reason behind a finding.

    ``feature`` names what was observed (``shared_phone``, ``guarantee_cycle``),
    ``contribution`` its share of the score, ``detail`` a sentence for people,
    ``values`` the compared values or identifiers.
    """

    feature: str
    contribution: float
    detail: str
    values: tuple[Any, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"feature": self.feature, "contribution": round(self.contribution, 4), "detail": self.detail,
                "values": list(self.values)}


@dataclass(frozen=True)
class Finding:
    """A suspected ring, circle, burst or conflict, with its evidence.

    ``members`` are always application ids (what investigators open and what
    ``members.csv`` lists). ``entities`` are the persons, companies or agents
    the finding is about and ``shared`` the identifiers its evidence names,
    both as ``(label, key)`` pairs; they become INVOLVES edges in the store.
    ``summary`` is one line for the alert queue.
    """

    detector: str
    kind: str
    members: tuple[str, ...]
    score: float
    evidence: tuple[Evidence, ...]
    parameters: dict[str, Any] = field(default_factory=dict)
    summary: str = ""
    entities: tuple[tuple[str, str], ...] = ()
    shared: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"Finding score must be in [0, 1]; got {self.score!r} from {self.detector}")

    @property
    def finding_id(self) -> str:
        """Stable id: the same detector and members give the same id on every run."""
        digest = hashlib.sha1(
            (self.detector + "|" + self.kind + "|" + "|".join(sorted(self.members))).encode("utf-8")
        ).hexdigest()
        return f"{self.detector}-{digest[:12]}"

    @property
    def size(self) -> int:
        return len(self.members)

    def evidence_json(self) -> str:
        return json.dumps([e.to_dict() for e in self.evidence], ensure_ascii=False, default=str)


def check_param(owner: str, name: str, value: Any, ok: bool, expected: str) -> None:
    """Raise the standard message for a bad parameter.

    Example
    -------
    >>> check_param("SharedIdentifierRings", "min_size", 1, False, "an int >= 2")
    Traceback (most recent call last):
    ...
    ValueError: The 'min_size' parameter of SharedIdentifierRings must be an int >= 2. Got 1 instead.
    """
    if not ok:
        raise ValueError(f"The {name!r} parameter of {owner} must be {expected}. Got {value!r} instead.")


class Detector:
    """Base for detectors (subclasses are frozen dataclasses)."""

    name: ClassVar[str] = "detector"

    def params(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]

    def run(self, source, statistics: Any = None) -> list[Finding]:  # pragma: no cover - interface
        """Findings over a store or a :class:`ringscope.detectors.portfolio.Portfolio`.

        ``statistics`` (from :meth:`statistics` over a larger portfolio) are
        used instead of figures computed from ``source``: how a scope is
        judged by the whole portfolio's standards.
        """
        raise NotImplementedError

    def statistics(self, portfolio) -> Any:
        """The portfolio-wide figures this detector's thresholds come from
        (``None``: it has none, or it does not support incremental runs)."""
        return None

    def scope(self, portfolio, app_ids: Sequence[str], statistics: Any = None):
        """A portfolio (usually ``portfolio.subset(...)``) holding everything
        that decides the findings which can contain one of ``app_ids``, or
        ``None`` for the whole portfolio."""
        return None
