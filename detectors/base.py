"""What every detector shares: findings, evidence, parameter validation.

A detector is a small frozen dataclass with a ``name`` and keyword-only
parameters, each declared with :func:`param` (its type and bounds), all
validated in one place when it is built; ``run(store)`` returns findings. A
finding records the detector's name and parameters, its members, a raw score
in [0, 1] kept apart from any threshold, and evidence items that say why,
each with its contribution, so an investigator can check it in seconds.

Incremental detection (``ringscope flag``) asks two more things of a
detector, both optional:

* ``statistics(portfolio)`` — the portfolio-wide figures its thresholds are
  decided from (hub decisions, base rates, peer groups, a fitted model);
* ``scope(portfolio, app_ids, statistics)`` — a smaller portfolio holding
  everything that decides the findings which can contain ``app_ids``.

* ``around(portfolio, app_ids, statistics)`` — a shortcut: the findings
  (usually none) when they can be told without building a scope.

``run(scope, statistics=...)`` must then give exactly the findings holding
``app_ids`` that ``run(portfolio)`` gives. A detector that does not narrow
its scope is run on the whole portfolio: slower, never wrong.
"""

from __future__ import annotations

import hashlib
import json
import numbers
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar

__all__ = ["Evidence", "Finding", "Detector", "ParamSpec", "param", "check_param"]


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
        return {
            "feature": self.feature,
            "contribution": round(self.contribution, 4),
            "detail": self.detail,
            "values": list(self.values),
        }


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

    @classmethod
    def from_evidence(
        cls,
        detector: str,
        kind: str,
        members: Sequence[str],
        evidence: Iterable[Evidence],
        *,
        scale: float = 1.0,
        cap: float = 1.0,
        parameters: dict[str, Any] | None = None,
        summary: str = "",
        entities: tuple[tuple[str, str], ...] = (),
        shared: tuple[tuple[str, str], ...] = (),
    ) -> Finding:
        """A finding whose score is the sum of its evidence contributions.

        The sum is multiplied by ``scale`` and clipped to [0, ``cap``]; when
        that changes it, every contribution is multiplied by the same factor,
        so the evidence still adds up to the score (an investigator's
        waterfall ends exactly at it).

        Example
        -------
        >>> ev = [Evidence("shared_phone", 0.7, "d"), Evidence("burst", 0.5, "d")]
        >>> f = Finding.from_evidence("rings", "ring", ("A1", "A2"), ev)
        >>> f.score, [round(e.contribution, 4) for e in f.evidence]
        (1.0, [0.5833, 0.4167])
        >>> Finding.from_evidence("rings", "ring", ("A1",), ev[1:], scale=0.3).score
        0.15
        """
        evidence = tuple(evidence)
        raw = sum(e.contribution for e in evidence)
        score = float(min(cap, max(0.0, raw * scale)))
        if score != raw and raw != 0:
            factor = score / raw
            evidence = tuple(replace(e, contribution=e.contribution * factor) for e in evidence)
        return cls(
            detector=detector,
            kind=kind,
            members=tuple(members),
            score=score,
            evidence=evidence,
            parameters=dict(parameters or {}),
            summary=summary,
            entities=entities,
            shared=shared,
        )

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


_SPEC = "ringscope.param"
_KINDS = {int: "an int", float: "a float", numbers.Real: "a number", tuple: "a non-empty tuple"}
Bound = float | int | str | None


@dataclass(frozen=True)
class ParamSpec:
    """What a detector parameter accepts: a ``kind`` and optional bounds.

    ``kind`` is ``int`` (not ``bool``), ``float`` or ``numbers.Real`` (any
    real number but ``bool``; they differ only in the word the message
    uses), or ``tuple`` (non-empty, items among ``choices``). A bound
    (``ge``, ``gt``, ``le``, ``lt``) is a number or the name of an earlier
    parameter of the same detector. ``nonzero`` rejects 0.
    """

    kind: type = float
    ge: Bound = None
    gt: Bound = None
    le: Bound = None
    lt: Bound = None
    nonzero: bool = False
    choices: tuple[Any, ...] | None = None

    def _bound(self, bound: Bound, owner: Any) -> tuple[float, str]:
        """A bound's value and how the message names it."""
        if isinstance(bound, str):
            value = getattr(owner, bound)
            return value, f"{bound} ({value})"
        return bound, f"{bound!r}"  # type: ignore[return-value]

    def expected(self, owner: Any = None) -> str:
        """The message's "must be ..." part, e.g. ``"an int >= 2"``.

        Example
        -------
        >>> ParamSpec(float, gt=0, le=1).expected()
        'a float in (0, 1]'
        >>> ParamSpec(tuple, choices=("device", "ip")).expected()
        "a non-empty tuple of 'device', 'ip'"
        """
        word = _KINDS[self.kind]
        if self.kind is tuple:
            return f"{word} of {', '.join(map(repr, self.choices or ()))}"
        if self.nonzero:
            word = "a non-zero " + word.split(" ", 1)[1]
        low = [(op, self._bound(b, owner)[1]) for op, b in ((">=", self.ge), (">", self.gt)) if b is not None]
        high = [(op, self._bound(b, owner)[1]) for op, b in (("<=", self.le), ("<", self.lt)) if b is not None]
        if low and high:
            opening, closing = "[" if low[0][0] == ">=" else "(", "]" if high[0][0] == "<=" else ")"
            return f"{word} in {opening}{low[0][1]}, {high[0][1]}{closing}"
        if low or high:
            op, text = (low or high)[0]
            return f"{word} {op} {text}"
        return word

    def accepts(self, value: Any, owner: Any = None) -> bool:
        """Whether ``value`` fits (bounds naming parameters read ``owner``'s)."""
        if self.kind is tuple:
            return (
                isinstance(value, tuple)
                and len(value) > 0
                and (self.choices is None or set(value) <= set(self.choices))
            )
        if isinstance(value, bool):
            return False
        if not isinstance(value, int if self.kind is int else (int, float)):
            return False
        if self.nonzero and value == 0:
            return False
        checks = (
            (self.ge, lambda v, b: v >= b),
            (self.gt, lambda v, b: v > b),
            (self.le, lambda v, b: v <= b),
            (self.lt, lambda v, b: v < b),
        )
        # NaN fails every comparison, so a bounded parameter never takes it
        return all(ok(value, self._bound(bound, owner)[0]) for bound, ok in checks if bound is not None)


def param(
    default: Any,
    *,
    kind: type | None = None,
    ge: Bound = None,
    gt: Bound = None,
    le: Bound = None,
    lt: Bound = None,
    nonzero: bool = False,
    choices: tuple[Any, ...] | None = None,
) -> Any:
    """A detector parameter: a dataclass field whose :class:`ParamSpec`
    :class:`Detector` checks when the detector is built.

    ``kind`` defaults to the default's type.

    Example
    -------
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True, kw_only=True)
    ... class Rings(Detector):
    ...     min_size: int = param(3, ge=2)
    ...     max_size: int = param(300, ge="min_size")
    >>> Rings(min_size=1)
    Traceback (most recent call last):
    ...
    ValueError: The 'min_size' parameter of Rings must be an int >= 2. Got 1 instead.
    >>> Rings(min_size=10, max_size=5)
    Traceback (most recent call last):
    ...
    ValueError: The 'max_size' parameter of Rings must be an int >= min_size (10). Got 5 instead.
    """
    spec = ParamSpec(kind or type(default), ge=ge, gt=gt, le=le, lt=lt, nonzero=nonzero, choices=choices)
    # a bound naming another parameter is checked when the detector is built
    if not any(isinstance(b, str) for b in (ge, gt, le, lt)) and not spec.accepts(default):
        raise TypeError(f"default {default!r} is not {spec.expected()}")
    return field(default=default, metadata={_SPEC: spec})


class Detector:
    """Base for detectors (subclasses are frozen dataclasses whose fields
    are all declared with :func:`param`)."""

    name: ClassVar[str] = "detector"

    def __post_init__(self) -> None:
        # every parameter, in declaration order: a bound naming an earlier one sees it validated
        owner = type(self).__name__
        for f in fields(self):  # type: ignore[arg-type]
            spec = f.metadata.get(_SPEC)
            if spec is None:
                raise TypeError(f"{owner}.{f.name} is not declared with param(): it would go unvalidated")
            value = getattr(self, f.name)
            check_param(owner, f.name, value, spec.accepts(value, self), spec.expected(self))

    @classmethod
    def param_specs(cls) -> dict[str, ParamSpec]:
        """Each parameter's :class:`ParamSpec`, in declaration order."""
        return {f.name: f.metadata[_SPEC] for f in fields(cls) if _SPEC in f.metadata}  # type: ignore[arg-type]

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

    def around(self, portfolio, app_ids: Sequence[str], statistics: Any = None) -> list[Finding] | None:
        """The findings holding ``app_ids`` when they can be told without a
        scope — ``[]`` when nothing within reach of them could form one (no
        gluing identifier, no guarantee, no contact loop, no busy device) —
        decided from arrays computed once per portfolio; ``None``: build the
        scope and run. A shortcut for the one-application case, never a
        different answer."""
        return None
