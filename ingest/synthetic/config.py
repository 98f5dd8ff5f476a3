"""What the generator is asked for (`GeneratorConfig`) and what it reports back
(`GenerationSummary`), plus the constants every module shares."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ringscope.ingest.contract import CONTRACT_COLUMNS

__all__ = [
    "GeneratorConfig",
    "GenerationSummary",
    "TYPOLOGIES",
    "HARD_NEGATIVES",
    "ENCODINGS",
    "APPLICATION_COLUMNS",
    "GUARANTEE_COLUMNS",
    "CONTACT_COLUMNS",
    "ROLE_COLUMNS",
    "START",
    "END",
    "LABEL_CUTOFF",
]

TYPOLOGIES = (
    "identity_ring",
    "device_farm",
    "synthetic_identity",
    "contact_loop",
    "broker_ring",
    "guarantee_circle",
    "cashflow_inconsistency",
)
HARD_NEGATIVES = ("family", "repeat_borrower", "office_tower", "carrier_nat", "big_employer", "busy_agent")
ENCODINGS = ("utf-8", "utf-8-sig", "gbk", "gb18030")

#: two years of applications; outcomes are known for those older than ~6 months
START = np.datetime64("2024-11-01")
END = np.datetime64("2026-11-01")  # exclusive
LABEL_CUTOFF = np.datetime64("2026-05-01")

# The data contract's columns, in its order (ingest/contract.py)
APPLICATION_COLUMNS = CONTRACT_COLUMNS["applications"]
GUARANTEE_COLUMNS = CONTRACT_COLUMNS["guarantees"]
CONTACT_COLUMNS = CONTRACT_COLUMNS["contacts"]
ROLE_COLUMNS = CONTRACT_COLUMNS["company_roles"]

#: the longest time spread a ring may be given (half a year)
_MAX_SPAN_SECONDS = 183 * 86_400

# config field -> typology it switches
_RATE_FIELDS = {
    "identity_rings": "identity_ring",
    "device_farms": "device_farm",
    "synthetic_identities": "synthetic_identity",
    "contact_loops": "contact_loop",
    "broker_rings": "broker_ring",
    "guarantee_circles": "guarantee_circle",
    "cashflow_inconsistency": "cashflow_inconsistency",
}


@dataclass(frozen=True)
class GeneratorConfig:
    """What to generate.

    Each typology has its own rate, the share of applications planted with it
    (for ``guarantee_circles``: the share of business borrowers in 互保圈);
    0 switches it off. ``mess_rate`` is the share of application rows with
    formatting mess, ``broken_row_rate`` the share that break the contract.

    The scenario knobs (``ingest.synthetic.scenario`` draws them at random)
    default to the standard portfolio:

    - ``ring_sizes`` (low, high): members per identity ring, device farm,
      contact loop and broker ring (None: each typology's own range);
      synthetic identities (2–4) and guarantee cycles (2–6) keep theirs.
    - ``ring_span_seconds`` (low, high): each ring's applications fall in one
      window drawn log-uniformly from this range (None: per typology, hours
      for device farms to months for guarantee circles).
    - ``reuse_share``: the chance that an identity-ring member reuses each of
      the ring's identifiers (phone, device, account, address, contact).
    - ``rotation``: the chance that a device-farm member uses a fresh device,
      and (drawn apart) an IP outside the farm's range.
    - honest hubs: ``nat_ips`` carrier-NAT addresses shared by ``nat_share``
      of applications; ``office_towers`` buildings holding ``office_share``
      of applications (business ones); ``big_employers`` employing
      ``employer_share`` of consumer applicants (None: the pool's 17%);
      families of 2–``family_size`` relatives on ``family_share`` of
      applications; ``busy_agents`` honest agents submitting
      ``busy_agent_share``; ``repeat_share`` of applications borrowing again.
    - ``labelled_share``: the oldest share of the history that carries an
      outcome label (None: applications before 2026-05-01).
    - ``new_batch_share``: the latest share of applications written apart as
      the new batch (``new/``, labels blank) beside the history
      (``history/``); None writes one folder.

    Example
    -------
    >>> GeneratorConfig(applications=1_000, device_farms=0.0).rates["device_farm"]
    0.0
    >>> GeneratorConfig(applications=3)
    Traceback (most recent call last):
    ...
    ValueError: The 'applications' parameter of GeneratorConfig must be an int >= 10. Got 3 instead.
    """

    applications: int = 20_000
    seed: int = 7
    encoding: str = "utf-8"
    file_format: str = "csv"
    mess_rate: float = 0.08
    broken_row_rate: float = 0.002
    identity_rings: float = 0.02
    device_farms: float = 0.01
    synthetic_identities: float = 0.005
    contact_loops: float = 0.005
    broker_rings: float = 0.01
    guarantee_circles: float = 0.01
    cashflow_inconsistency: float = 0.01
    hard_negatives: bool = True
    # Scenario knobs. Their defaults give the standard portfolio byte for byte.
    ring_sizes: tuple[int, int] | None = None
    ring_span_seconds: tuple[float, float] | None = None
    reuse_share: float = 0.3
    rotation: float = 0.0
    nat_ips: int = 5
    nat_share: float = 0.05
    office_towers: int = 4
    office_share: float = 0.02
    big_employers: int = 6
    employer_share: float | None = None
    family_share: float = 0.03
    family_size: int = 4
    busy_agents: int = 2
    busy_agent_share: float = 0.03
    repeat_share: float = 0.02
    labelled_share: float | None = None
    new_batch_share: float | None = None

    def __post_init__(self) -> None:
        def bad(name: str, expected: str) -> None:
            raise ValueError(
                f"The {name!r} parameter of GeneratorConfig must be {expected}. Got {getattr(self, name)!r} instead."
            )

        # bool is an int subclass: reject it explicitly
        if not isinstance(self.applications, int) or isinstance(self.applications, bool) or self.applications < 10:
            bad("applications", "an int >= 10")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            bad("seed", "an int >= 0")
        if self.encoding not in ENCODINGS:
            bad("encoding", "one of " + ", ".join(map(repr, ENCODINGS)))
        if self.file_format not in ("csv", "parquet"):
            bad("file_format", "'csv' or 'parquet'")
        if not isinstance(self.hard_negatives, bool):
            bad("hard_negatives", "a bool")
        for name in ("mess_rate", "broken_row_rate", *_RATE_FIELDS):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 0.2:
                bad(name, "a float in [0, 0.2]")
        self._check_scenario_knobs(bad)
        if self.fraud_share > 0.5:
            raise ValueError(
                f"The typology rates of GeneratorConfig must add up to <= 0.5. Got {self.fraud_share:g} instead."
            )

    def _check_scenario_knobs(self, bad) -> None:
        def number(value) -> bool:
            return isinstance(value, (int, float)) and not isinstance(value, bool)

        def whole(value) -> bool:
            return isinstance(value, int) and not isinstance(value, bool)

        def pair(value, ok) -> bool:
            return isinstance(value, tuple) and len(value) == 2 and all(ok(v) for v in value) and value[0] <= value[1]

        if self.ring_sizes is not None and not pair(self.ring_sizes, lambda v: whole(v) and 2 <= v <= 200):
            bad("ring_sizes", "None or a (low, high) tuple of ints with 2 <= low <= high <= 200")
        if self.ring_span_seconds is not None and not pair(
            self.ring_span_seconds, lambda v: number(v) and 60 <= v <= _MAX_SPAN_SECONDS
        ):
            bad(
                "ring_span_seconds",
                f"None or a (low, high) tuple of seconds with 60 <= low <= high <= {_MAX_SPAN_SECONDS}",
            )
        for name, low, high in (
            ("reuse_share", 0.0, 1.0),
            ("rotation", 0.0, 1.0),
            ("nat_share", 0.0, 0.3),
            ("office_share", 0.0, 0.3),
            ("family_share", 0.0, 0.2),
            ("busy_agent_share", 0.0, 0.2),
            ("repeat_share", 0.0, 0.2),
        ):
            value = getattr(self, name)
            if not number(value) or not low <= value <= high:
                bad(name, f"a float in [{low:g}, {high:g}]")
        for name, low, high in (
            ("nat_ips", 1, 1000),
            ("office_towers", 1, 1000),
            ("big_employers", 1, 50),
            ("family_size", 2, 10),
            ("busy_agents", 1, 20),
        ):
            value = getattr(self, name)
            if not whole(value) or not low <= value <= high:
                bad(name, f"an int in [{low}, {high}]")
        if self.employer_share is not None and (not number(self.employer_share) or not 0 <= self.employer_share <= 0.5):
            bad("employer_share", "None or a float in [0, 0.5]")
        if self.labelled_share is not None and (not number(self.labelled_share) or not 0 <= self.labelled_share <= 1):
            bad("labelled_share", "None or a float in [0, 1]")
        if self.new_batch_share is not None and (
            not number(self.new_batch_share) or not 0 < self.new_batch_share <= 0.5
        ):
            bad("new_batch_share", "None or a float in (0, 0.5]")

    @property
    def rates(self) -> dict[str, float]:
        """Typology name -> planted rate."""
        return {typology: float(getattr(self, name)) for name, typology in _RATE_FIELDS.items()}

    @property
    def fraud_share(self) -> float:
        return sum(self.rates.values())


@dataclass
class GenerationSummary:
    """What `generate_portfolio` wrote.

    ``paths`` maps table names (and ``truth/...``) to files; ``row_counts``
    counts data rows per contract table (duplicated broken rows included);
    ``planted`` counts applications per typology, ``hard_negatives`` per kind.
    ``chunks`` lists the applications of each time window of a chunked book.
    """

    out_dir: str
    paths: dict[str, str] = field(default_factory=dict)
    row_counts: dict[str, int] = field(default_factory=dict)
    planted: dict[str, int] = field(default_factory=dict)
    rings: dict[str, int] = field(default_factory=dict)
    hard_negatives: dict[str, int] = field(default_factory=dict)
    broken_rows: int = 0
    seconds: float = 0.0
    #: applications per time window of a chunked book (empty: built whole)
    chunks: list[int] = field(default_factory=list)
