"""A labeled synthetic Chinese micro-lending portfolio with planted fraud.

The book is built honest first (people, businesses, two years of applications
with weekly and seasonal rhythm, guarantees, emergency contacts, registry
roles), then each fraud typology overwrites its own disjoint slice of
applications the way that fraud works in practice, and hard negatives —
honest patterns that look suspicious — are planted beside them. Finally
formatting mess and a few contract-breaking rows are sprinkled over the
output. Everything is drawn from one seeded numpy Generator, column-wise, so
a million applications take seconds and the same seed gives the same bytes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from ingest.synthetic import pools

__all__ = ["GeneratorConfig", "GenerationSummary", "generate_portfolio", "TYPOLOGIES", "HARD_NEGATIVES"]

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

START = np.datetime64("2024-11-01")
END = np.datetime64("2026-11-01")
LABEL_CUTOFF = np.datetime64("2026-05-01")  # outcomes known for older applications
SPRING_FESTIVALS = (np.datetime64("2025-01-29"), np.datetime64("2026-02-17"))

APPLICATION_COLUMNS = [
    "application_id", "applied_at", "amount", "applicant_name", "applicant_id_number", "applicant_phone",
    "applicant_address", "term_months", "product", "channel", "agent_id", "company_name", "company_uscc",
    "company_address", "employer_name", "bank_account", "device_id", "ip", "email", "declared_monthly_revenue",
    "declared_monthly_income", "label",
]


@dataclass(frozen=True)
class GeneratorConfig:
    """What to generate. Each typology has its own rate (share of applications);
    set a rate to 0 to switch it off."""

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

    def __post_init__(self) -> None:
        def bad(name: str, expected: str) -> None:
            raise ValueError(
                f"The {name!r} parameter of GeneratorConfig must be {expected}. Got {getattr(self, name)!r} instead."
            )

        if not isinstance(self.applications, int) or self.applications < 10:
            bad("applications", "an int >= 10")
        if not isinstance(self.seed, int):
            bad("seed", "an int")
        if self.encoding not in ("utf-8", "utf-8-sig", "gbk", "gb18030"):
            bad("encoding", "one of utf-8, utf-8-sig, gbk, gb18030")
        if self.file_format not in ("csv", "parquet"):
            bad("file_format", "'csv' or 'parquet'")
        for f in fields(self):
            if f.type == "float" or isinstance(getattr(self, f.name), float):
                value = getattr(self, f.name)
                if not 0.0 <= value <= 0.2:
                    bad(f.name, "a float in [0, 0.2]")
        if self.fraud_share > 0.5:
            raise ValueError("The typology rates of GeneratorConfig add up to more than 0.5 of the book.")

    @property
    def rates(self) -> dict[str, float]:
        return {
            "identity_ring": self.identity_rings,
            "device_farm": self.device_farms,
            "synthetic_identity": self.synthetic_identities,
            "contact_loop": self.contact_loops,
            "broker_ring": self.broker_rings,
            "guarantee_circle": self.guarantee_circles,
            "cashflow_inconsistency": self.cashflow_inconsistency,
        }

    @property
    def fraud_share(self) -> float:
        return sum(self.rates.values())


@dataclass
class GenerationSummary:
    out_dir: str
    row_counts: dict[str, int] = field(default_factory=dict)
    planted: dict[str, int] = field(default_factory=dict)
    hard_negatives: dict[str, int] = field(default_factory=dict)
    broken_rows: int = 0
    seconds: float = 0.0


# -- small vectorised helpers -----------------------------------------------------


def _digits(rng: np.random.Generator, n: int, width: int) -> np.ndarray:
    """n random digit strings of exactly ``width`` characters."""
    out = rng.integers(0, 10, size=(n, width), dtype=np.uint8) + ord("0")
    return out.view(f"S{width}").ravel().astype(f"U{width}")


def _cat(*parts) -> np.ndarray:
    """Element-wise string concatenation of arrays / scalars."""
    out = np.asarray(parts[0]).astype(str)
    for p in parts[1:]:
        out = np.char.add(out, np.asarray(p).astype(str))
    return out


def _pick(rng: np.random.Generator, values, n: int, p=None) -> np.ndarray:
    values = np.asarray(values)
    return values[rng.choice(len(values), size=n, p=p)]


_ID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
_ID_CHECK = np.array(list("10X98765432"))


def _id_check_chars(bodies: np.ndarray) -> np.ndarray:
    """GB 11643 check characters for 17-digit bodies (weights 7,9,10,...; "10X98765432")."""
    digits = np.frombuffer("".join(bodies).encode("ascii"), dtype=np.uint8).reshape(-1, 17) - ord("0")
    return _ID_CHECK[(digits.astype(np.int64) @ _ID_WEIGHTS) % 11]


_USCC_ALPHABET = np.array(list("0123456789ABCDEFGHJKLMNPQRTUWXY"))
_USCC_WEIGHTS = np.array([1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28])


def _usccs(rng: np.random.Generator, region_codes: np.ndarray) -> np.ndarray:
    """Valid unified social credit codes (GB 32100) registered in ``region_codes``."""
    n = len(region_codes)
    org = rng.integers(0, len(_USCC_ALPHABET), size=(n, 9))
    org[:, 0] = rng.choice([9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20], size=n)  # 'MA…'-like mix
    head = np.array([[9, 1]] * n)  # 91: enterprise, industrial-commercial registration
    region = (np.frombuffer("".join(region_codes).encode(), dtype=np.uint8).reshape(n, 6) - ord("0")).astype(int)
    body = np.concatenate([head, region, org], axis=1)
    check = _USCC_ALPHABET[(31 - (body @ _USCC_WEIGHTS) % 31) % 31]
    chars = _USCC_ALPHABET[body]
    return _rows_to_str(chars, check)


def _rows_to_str(chars: np.ndarray, last: np.ndarray) -> np.ndarray:
    full = np.concatenate([chars, last[:, None]], axis=1)
    width = full.shape[1]
    return full.astype("U1").view(f"U{width}").ravel()


def _resident_ids(rng: np.random.Generator, codes: np.ndarray, birth: np.ndarray) -> np.ndarray:
    births = np.char.replace(birth.astype("datetime64[D]").astype(str), "-", "")
    body = _cat(codes, births, _digits(rng, len(codes), 3))
    return np.char.add(body, _id_check_chars(body.astype(str)).astype(str))


def _phones(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.char.add(_pick(rng, pools.MOBILE_PREFIXES, n), _digits(rng, n, 8))


def _names(rng: np.random.Generator, n: int) -> np.ndarray:
    surname = rng.choice(pools.SURNAMES, size=n, p=pools.SURNAME_WEIGHTS)
    first = _pick(rng, pools.GIVEN_CHARS, n)
    second = np.where(rng.random(n) < 0.7, _pick(rng, pools.GIVEN_CHARS, n), "")
    return _cat(surname, first, second)


def _addresses(rng: np.random.Generator, region_idx: np.ndarray) -> np.ndarray:
    r = pools.regions()
    n = len(region_idx)
    city = np.where(r.city[region_idx] == r.province[region_idx], "", r.city[region_idx])
    return _cat(
        r.province[region_idx], city, r.county[region_idx], _pick(rng, pools.ROADS, n),
        rng.integers(1, 999, n), "号", _pick(rng, pools.BRAND_CHARS, n), _pick(rng, pools.COMMUNITIES, n),
        rng.integers(1, 30, n), "栋", rng.integers(1, 6, n), "单元", rng.integers(101, 3303, n), "室",
    )


def _hex(rng: np.random.Generator, n: int, width: int = 16) -> np.ndarray:
    alphabet = np.array(list("0123456789abcdef"))
    return alphabet[rng.integers(0, 16, size=(n, width))].astype("U1").view(f"U{width}").ravel()


def _ipv4(rng: np.random.Generator, n: int) -> np.ndarray:
    first = _pick(rng, [36, 39, 42, 58, 59, 60, 61, 101, 106, 110, 111, 112, 113, 114, 115, 116, 117, 118, 119,
                        120, 121, 122, 123, 124, 125, 171, 175, 180, 182, 183, 202, 203, 210, 211, 218, 219, 220,
                        221, 222, 223], n)
    octets = rng.integers(0, 256, size=(n, 3))
    octets[:, 2] = np.clip(octets[:, 2], 1, 254)
    return _cat(first, ".", octets[:, 0], ".", octets[:, 1], ".", octets[:, 2])


def _day_weights(days: np.ndarray) -> np.ndarray:
    """Weekly rhythm, month-end bumps, the run-up to Spring Festival and its lull."""
    weekday = ((days.astype("datetime64[D]").view("int64") - 4) % 7)  # 0 = Monday
    w = np.where(weekday >= 5, 0.55, 1.0)
    day_of_month = (days - days.astype("datetime64[M]").astype("datetime64[D]")).astype(int) + 1
    w = w * np.where(day_of_month >= 25, 1.2, 1.0)
    for festival in SPRING_FESTIVALS:
        delta = (days - festival).astype(int)
        w = w * np.where((delta >= -21) & (delta < 0), 1.5, 1.0) * np.where((delta >= 0) & (delta < 7), 0.3, 1.0)
    return w / w.sum()


def _times(rng: np.random.Generator, n: int) -> np.ndarray:
    days = np.arange(START, END, dtype="datetime64[D]")
    day = rng.choice(days, size=n, p=_day_weights(days))
    hour_weights = np.array([1, 0.5, 0.3, 0.2, 0.2, 0.3, 1, 3, 6, 9, 10, 9, 7, 8, 9, 9, 8, 7, 6, 7, 8, 7, 5, 2.5])
    hour = rng.choice(24, size=n, p=hour_weights / hour_weights.sum())
    seconds = hour * 3600 + rng.integers(0, 3600, n)
    return day.astype("datetime64[s]") + seconds.astype("timedelta64[s]")


def _fmt_times(ts: np.ndarray) -> np.ndarray:
    return np.char.replace(ts.astype("datetime64[s]").astype(str), "T", " ")


# -- the generator ----------------------------------------------------------------


class _Book:
    """Column arrays of the portfolio under construction."""

    def __init__(self, config: GeneratorConfig) -> None:
        self.config = config
        self.rng = np.random.Generator(np.random.PCG64(config.seed))
        n = config.applications
        self.n = n
        self.typology = np.full(n, "", dtype=object)
        self.ring_id = np.full(n, "", dtype=object)
        self.hard_negative = np.full(n, "", dtype=object)
        self.rings: list[dict] = []
        self.circles: list[dict] = []
        self.contacts: list[pd.DataFrame] = []
        self.guarantees: list[pd.DataFrame] = []
        self.roles: list[pd.DataFrame] = []
        self.free = np.ones(n, dtype=bool)  # not yet taken by a typology or hard negative

    # -- slices ----------------------------------------------------------------
    def take(self, count: int, mask: np.ndarray | None = None) -> np.ndarray:
        """``count`` free application rows (optionally among ``mask``), marked taken."""
        eligible = self.free if mask is None else (self.free & mask)
        idx = np.flatnonzero(eligible)
        count = min(count, len(idx))
        chosen = np.sort(self.rng.choice(idx, size=count, replace=False)) if count else idx[:0]
        self.free[chosen] = False
        return chosen

    def groups(self, total: int, low: int, high: int) -> list[int]:
        sizes = []
        while sum(sizes) + low <= total:
            sizes.append(int(min(self.rng.integers(low, high + 1), total - sum(sizes))))
        return [s for s in sizes if s >= low]


def generate_portfolio(
    config: GeneratorConfig,
    out_dir: str | Path,
    progress: Callable[[str, int, int], None] | None = None,
) -> GenerationSummary:
    """Generate a labeled portfolio and write it to ``out_dir``.

    Writes ``applications``, ``guarantees``, ``contacts`` and ``company_roles``
    (CSV in ``config.encoding`` or Parquet) and ``truth/`` with the planted
    labels: ``applications.csv``, ``rings.csv``, ``guarantee_circles.csv``,
    ``broken_rows.csv``.

    Example
    -------
    >>> import tempfile
    >>> s = generate_portfolio(GeneratorConfig(applications=200, seed=1), tempfile.mkdtemp())
    >>> s.row_counts["applications"] >= 200
    True
    """
    started = time.perf_counter()
    steps = 6

    def step(name: str, i: int) -> None:
        if progress:
            progress(f"generate {name}", i, steps)

    book = _Book(config)
    step("honest book", 0)
    apps = _honest_book(book)
    step("fraud", 1)
    _plant_fraud(book, apps)
    step("hard negatives", 2)
    if config.hard_negatives:
        _plant_hard_negatives(book, apps)
    _labels(book, apps)
    step("mess", 3)
    tables = _assemble(book, apps)
    broken = _mess_and_breakage(book, tables)
    step("write", 4)
    summary = _write(book, tables, broken, Path(out_dir))
    step("done", 6)
    summary.seconds = time.perf_counter() - started
    return summary


def _honest_book(book: _Book) -> dict[str, np.ndarray]:
    rng, n = book.rng, book.n
    r = pools.regions()
    region_idx = rng.choice(len(r.codes), size=n, p=r.weights)
    age_days = rng.integers(20 * 365, 62 * 365, n)
    birth = (END - age_days.astype("timedelta64[D]")).astype("datetime64[D]")
    business = rng.random(n) < 0.42
    applied = _times(rng, n)
    order = np.argsort(applied, kind="stable")  # application ids follow time
    applied = applied[order]

    apps: dict[str, np.ndarray] = {
        "application_id": _cat("AP", np.char.zfill(np.arange(1, n + 1).astype(str), 8)),
        "applied_at": applied,
        "region_idx": region_idx,
        "applicant_name": _names(rng, n),
        "applicant_id_number": _resident_ids(rng, r.codes[region_idx], birth),
        "applicant_phone": _phones(rng, n),
        "applicant_address": _addresses(rng, region_idx),
        "business": business,
        "device_id": _hex(rng, n),
        "ip": _ipv4(rng, n),
        "bank_account": _cat("62", _pick(rng, ["1700", "2202", "2848", "2700", "2588", "2262", "1483"], n),
                             _digits(rng, n, 12)),
    }
    has_email = rng.random(n) < 0.3
    email_local = _cat(_hex(rng, n, 6), rng.integers(10, 99, n))
    apps["email"] = np.where(has_email, _cat(email_local, "@", _pick(rng, pools.EMAIL_DOMAINS, n)), "")
    ipv6 = rng.random(n) < 0.06
    apps["ip"] = np.where(ipv6, _cat("240e:", _hex(rng, n, 4), ":", _hex(rng, n, 4), "::", _hex(rng, n, 3)), apps["ip"])

    # businesses: a company per business application, sized by industry
    btype = rng.integers(0, len(pools.BUSINESS_TYPES), n)
    rev_lo = np.array([b[1][0] for b in pools.BUSINESS_TYPES])[btype]
    rev_hi = np.array([b[1][1] for b in pools.BUSINESS_TYPES])[btype]
    amt_lo = np.array([b[2][0] for b in pools.BUSINESS_TYPES])[btype]
    amt_hi = np.array([b[2][1] for b in pools.BUSINESS_TYPES])[btype]
    revenue = np.exp(rng.uniform(np.log(rev_lo), np.log(rev_hi)))
    biz_amount = np.clip(revenue * rng.uniform(1.0, 5.0, n), amt_lo, amt_hi)
    city = np.where(r.city[region_idx] == r.province[region_idx], r.province[region_idx], r.city[region_idx])
    industry = np.array([b[0] for b in pools.BUSINESS_TYPES])[btype]
    brand = _cat(_pick(rng, pools.BRAND_CHARS, n), _pick(rng, pools.BRAND_CHARS, n))
    apps["company_name"] = np.where(business, _cat(city, brand, industry), "")
    apps["company_uscc"] = np.where(business, _usccs(rng, r.codes[region_idx]), "")
    apps["company_address"] = np.where(business, _addresses(rng, region_idx), "")
    apps["btype"] = btype
    income = np.round(np.exp(rng.normal(np.log(7500), 0.5, n)), -2)
    cons_amount = np.clip(income * rng.uniform(1.0, 12.0, n), 5_000, 200_000)
    apps["amount"] = np.round(np.where(business, biz_amount, cons_amount), -2)
    apps["declared_monthly_revenue"] = np.where(business, np.round(revenue, -2), np.nan)
    apps["declared_monthly_income"] = np.where(business, np.nan, income)
    apps["term_months"] = np.where(business, _pick(rng, [12, 24, 36], n), _pick(rng, [3, 6, 12, 24], n))
    apps["product"] = np.where(business, "经营贷", np.where(rng.random(n) < 0.75, "消费贷", "信用卡"))
    apps["channel"] = _pick(rng, ["app", "web", "branch", "agent"], n, p=[0.45, 0.2, 0.15, 0.2])
    n_agents = max(5, n // 400)
    agent_ids = _cat("AG", np.char.zfill(np.arange(1, n_agents + 1).astype(str), 4))
    apps["agent_id"] = np.where(apps["channel"] == "agent", _pick(rng, agent_ids, n), "")
    # consumer employers: a long tail of small ones and a few giants
    small = _cat(_pick(rng, pools.BRAND_CHARS, n), _pick(rng, pools.BRAND_CHARS, n), _pick(rng, ["科技", "贸易", "餐饮", "物业", "教育"], n), "有限公司")
    big_names = np.array([e[0] for e in pools.EMPLOYERS])
    big_share = np.array([e[1] for e in pools.EMPLOYERS])
    pick_big = rng.random(n) < big_share.sum()
    big = rng.choice(big_names, size=n, p=big_share / big_share.sum())
    apps["employer_name"] = np.where(business, "", np.where(pick_big, big, small))
    apps["label"] = np.full(n, "", dtype=object)
    apps["is_bad"] = np.zeros(n, dtype=bool)  # planted fraud: will be labeled bad when old enough

    # contacts: 1-3 per application
    k = rng.choice([1, 2, 3], size=n, p=[0.35, 0.45, 0.2])
    owner = np.repeat(np.arange(n), k)
    m = len(owner)
    family = rng.random(m) < 0.6
    relation = np.where(family, _pick(rng, pools.RELATIONS_FAMILY, m), _pick(rng, pools.RELATIONS_OTHER, m))
    surname_same = family & (relation != "spouse")
    contact_name = np.where(surname_same, _cat(np.array([s[0] for s in apps["applicant_name"][owner]]), _pick(rng, pools.GIVEN_CHARS, m), _pick(rng, pools.GIVEN_CHARS, m)), _names(rng, m))
    book.contacts.append(pd.DataFrame({"row": owner, "contact_name": contact_name, "contact_phone": _phones(rng, m), "relation": relation}))

    # guarantees: ~30% of business loans, 1-2 guarantors
    biz = np.flatnonzero(business & (rng.random(n) < 0.3))
    g = rng.choice([1, 2], size=len(biz), p=[0.7, 0.3])
    g_owner = np.repeat(biz, g)
    gm = len(g_owner)
    person = rng.random(gm) < 0.7
    g_region = rng.choice(len(r.codes), size=gm, p=r.weights)
    g_birth = (END - rng.integers(25 * 365, 60 * 365, gm).astype("timedelta64[D]")).astype("datetime64[D]")
    g_city = np.where(r.city[g_region] == r.province[g_region], r.province[g_region], r.city[g_region])
    gname = np.where(person, _names(rng, gm), _cat(g_city, _pick(rng, pools.BRAND_CHARS, gm), _pick(rng, pools.BRAND_CHARS, gm), "投资有限公司"))
    gid = np.where(person, _resident_ids(rng, r.codes[g_region], g_birth), _usccs(rng, r.codes[g_region]))
    book.guarantees.append(pd.DataFrame({
        "row": g_owner, "guarantor_type": np.where(person, "person", "company"), "guarantor_name": gname,
        "guarantor_id": gid, "guarantor_phone": np.where(person, _phones(rng, gm), ""),
        "amount": np.round(apps["amount"][g_owner] * rng.uniform(0.3, 1.0, gm), -2),
    }))
    return apps


def _ring(book: _Book, typology: str, members: np.ndarray, shared: str) -> str:
    ring_id = f"R{len(book.rings) + 1:05d}"
    book.typology[members] = typology
    book.ring_id[members] = ring_id
    book.rings.append({"ring_id": ring_id, "typology": typology, "size": len(members), "shared": shared})
    return ring_id


def _burst(book: _Book, apps: dict, members: np.ndarray, span_seconds: int) -> None:
    """Move members' application times into one window starting at a random time."""
    rng = book.rng
    start = apps["applied_at"][members].min()
    offsets = np.sort(rng.integers(0, max(span_seconds, 1), len(members)))
    apps["applied_at"][members] = start + offsets.astype("timedelta64[s]")


def _plant_fraud(book: _Book, apps: dict) -> None:
    rng, n, rates = book.rng, book.n, book.config.rates
    r = pools.regions()

    # identity-sharing rings: each member leaks only some of the ring's identifiers
    for size in book.groups(int(rates["identity_ring"] * n), 3, 12):
        m = book.take(size)
        if len(m) < 3:
            break
        phone, device = _phones(rng, 1)[0], _hex(rng, 1)[0]
        account = apps["bank_account"][m[0]]
        address = apps["applicant_address"][m[0]]
        contact = _phones(rng, 1)[0]
        kinds = np.array(["phone", "device", "account", "address", "contact"])
        leaks = rng.random((len(m), len(kinds))) < 0.35
        # each member leaks at least one identifier that the previous member
        # leaks too, so the ring is connected without every member sharing all
        link = rng.integers(0, len(kinds), len(m))
        leaks[np.arange(len(m)), link] = True
        leaks[np.arange(1, len(m)), link[1:]] = True
        leaks[np.arange(0, len(m) - 1), link[1:]] = True
        for j, kind in enumerate(kinds):
            sel = m[leaks[:, j]]
            if kind == "phone":
                apps["applicant_phone"][sel] = phone
            elif kind == "device":
                apps["device_id"][sel] = device
            elif kind == "account":
                apps["bank_account"][sel] = account
            elif kind == "address":
                apps["applicant_address"][sel] = address
            else:
                book.contacts.append(pd.DataFrame({"row": sel, "contact_name": _names(rng, 1)[0], "contact_phone": contact, "relation": "friend"}))
        _burst(book, apps, m, 30 * 86400)
        _ring(book, "identity_ring", m, "phones, devices, account, address, contact phone (each member some)")

    # device farms: bursts from a few devices and one /24, stolen unrelated identities
    for size in book.groups(int(rates["device_farm"] * n), 8, 30):
        m = book.take(size)
        if len(m) < 8:
            break
        devices = _hex(rng, int(rng.integers(1, 4)))
        prefix = _ipv4(rng, 1)[0].rsplit(".", 1)[0]
        apps["device_id"][m] = rng.choice(devices, len(m))
        apps["ip"][m] = _cat(prefix, ".", rng.integers(2, 254, len(m)))
        apps["channel"][m] = "app"
        _burst(book, apps, m, int(rng.integers(2, 48)) * 3600)
        _ring(book, "device_farm", m, f"{len(devices)} devices, IP range {prefix}.0/24")

    # synthetic identities: one ID under several names/phones, or near-miss IDs
    for size in book.groups(int(rates["synthetic_identity"] * n), 2, 4):
        m = book.take(size)
        if len(m) < 2:
            break
        base = apps["applicant_id_number"][m[0]]
        if rng.random() < 0.6:
            apps["applicant_id_number"][m] = base
            shared = "one ID number, several names and phones"
        else:
            # same body, check character broken, names drift
            wrong = [c for c in "0123456789X" if c != base[-1]]
            apps["applicant_id_number"][m[1:]] = [base[:-1] + rng.choice(wrong) for _ in m[1:]]
            apps["applicant_name"][m[1:]] = apps["applicant_name"][m[0]]
            shared = "near-miss ID numbers with broken checksums"
        _burst(book, apps, m, 14 * 86400)
        _ring(book, "synthetic_identity", m, shared)

    # emergency-contact loops: A names B, B names C, ..., last names A; plus a shared contact phone
    for size in book.groups(int(rates["contact_loop"] * n), 3, 6):
        m = book.take(size)
        if len(m) < 3:
            break
        nxt = np.roll(m, -1)
        book.contacts.append(pd.DataFrame({"row": m, "contact_name": apps["applicant_name"][nxt],
                                           "contact_phone": apps["applicant_phone"][nxt], "relation": "friend"}))
        _burst(book, apps, m, 10 * 86400)
        _ring(book, "contact_loop", m, "applicants name each other as emergency contacts")

    # broker rings: one agent, a burst, near-identical declared figures, shared contacts
    for size in book.groups(int(rates["broker_ring"] * n), 6, 20):
        m = book.take(size)
        if len(m) < 6:
            break
        agent = f"AGX{len(book.rings) + 1:04d}"
        apps["agent_id"][m] = agent
        apps["channel"][m] = "agent"
        figure = float(rng.choice([30_000, 48_000, 50_000, 80_000, 120_000]))
        declared = np.round(figure * rng.uniform(0.98, 1.02, len(m)), -2)
        biz = apps["business"][m]
        apps["declared_monthly_revenue"][m] = np.where(biz, declared, np.nan)
        apps["declared_monthly_income"][m] = np.where(biz, np.nan, declared)
        contacts = _phones(rng, 2)
        book.contacts.append(pd.DataFrame({"row": m, "contact_name": _names(rng, len(m)),
                                           "contact_phone": rng.choice(contacts, len(m)), "relation": "friend"}))
        _burst(book, apps, m, 7 * 86400)
        _ring(book, "broker_ring", m, f"agent {agent}, declared ≈ {figure:,.0f}, 2 shared contact phones")

    # mutual-guarantee circles among business borrowers, with chains hanging off
    n_business = int(apps["business"].sum())
    for size in book.groups(int(rates["guarantee_circle"] * n_business), 2, 6):
        m = book.take(size, mask=apps["business"])
        if len(m) < 2:
            break
        nxt = np.roll(m, -1)
        # guarantor = next member's company → this member's company
        book.guarantees.append(pd.DataFrame({
            "row": m, "guarantor_type": "company", "guarantor_name": apps["company_name"][nxt],
            "guarantor_id": apps["company_uscc"][nxt], "guarantor_phone": "",
            "amount": np.round(apps["amount"][m] * rng.uniform(0.5, 1.0, len(m)), -2),
        }))
        ring_id = _ring(book, "guarantee_circle", m, f"{len(m)}-cycle of company guarantees")
        book.circles.append({"circle_id": ring_id, "members": "|".join(apps["company_uscc"][m]), "cycle_length": len(m)})
        chain = book.take(int(rng.integers(0, 3)), mask=apps["business"])
        if len(chain):  # a chain: outside firms guaranteed by a circle member
            book.guarantees.append(pd.DataFrame({
                "row": chain, "guarantor_type": "company", "guarantor_name": apps["company_name"][m[0]],
                "guarantor_id": apps["company_uscc"][m[0]], "guarantor_phone": "",
                "amount": np.round(apps["amount"][chain] * 0.8, -2),
            }))
            book.typology[chain] = "guarantee_circle"
            book.ring_id[chain] = ring_id
        _burst(book, apps, m, 90 * 86400)

    # cash-flow inconsistencies: impossible revenue for the business, or for the amount
    shops = np.isin(apps["btype"], pools.SMALL_SHOPS) & apps["business"]
    m = book.take(int(rates["cashflow_inconsistency"] * n), mask=shops)
    half = len(m) // 2
    apps["declared_monthly_revenue"][m[:half]] = np.round(rng.uniform(1_500_000, 5_000_000, half), -3)
    apps["amount"][m[half:]] = np.round(apps["declared_monthly_revenue"][m[half:]] * rng.uniform(60, 150, len(m) - half), -3)
    book.typology[m] = "cashflow_inconsistency"
    book.ring_id[m] = ""
    apps["is_bad"][book.typology != ""] = True


def _plant_hard_negatives(book: _Book, apps: dict) -> None:
    rng, n = book.rng, book.n

    # families: shared home address, home device and Wi-Fi IP, naming each other as contacts
    for size in book.groups(int(0.03 * n), 2, 4):
        m = book.take(size, mask=~apps["business"])
        if len(m) < 2:
            break
        apps["applicant_address"][m] = apps["applicant_address"][m[0]]
        apps["device_id"][m[1:]] = np.where(rng.random(len(m) - 1) < 0.5, apps["device_id"][m[0]], apps["device_id"][m[1:]])
        apps["ip"][m] = apps["ip"][m[0]]
        surname = apps["applicant_name"][m[0]][0]
        apps["applicant_name"][m[1:]] = _cat(surname, _names(rng, len(m) - 1).astype("U3").astype(object))
        apps["applicant_name"][m[1:]] = [surname + x[1:] for x in apps["applicant_name"][m[1:]]]
        nxt = np.roll(m, -1)
        book.contacts.append(pd.DataFrame({"row": m, "contact_name": apps["applicant_name"][nxt],
                                           "contact_phone": apps["applicant_phone"][nxt], "relation": "spouse"}))
        book.hard_negative[m] = "family"

    # repeat borrowers: the same person again, months later, typing things differently
    m = book.take(int(0.04 * n))
    originals = book.take(len(m))
    k = min(len(m), len(originals))
    m, originals = m[:k], originals[:k]
    for col in ("applicant_name", "applicant_id_number", "applicant_phone", "applicant_address", "bank_account"):
        apps[col][m] = apps[col][originals]
    book.hard_negative[m] = "repeat_borrower"
    book.hard_negative[originals] = "repeat_borrower"

    # office towers: hundreds of small firms registered in one building
    towers = _cat(["深圳市南山区科技园科苑路", "上海市浦东新区张江高科碧波路", "杭州市西湖区文三路"], rng.integers(1, 200, 3), "号创业大厦")
    m = book.take(int(0.02 * n), mask=apps["business"])
    apps["company_address"][m] = _cat(rng.choice(towers, len(m)), rng.integers(1, 30, len(m)), "楼", rng.integers(1, 60, len(m)), "室")
    # the building is shared; rooms differ — the normalised address keeps rooms, so also share whole-address for some
    whole = rng.random(len(m)) < 0.5
    apps["company_address"][m[whole]] = rng.choice(towers, int(whole.sum()))
    book.hard_negative[m] = "office_tower"

    # carrier NAT: a handful of IPs shared by thousands of honest applicants
    nat_ips = _ipv4(rng, 5)
    m = book.take(int(0.05 * n))
    apps["ip"][m] = rng.choice(nat_ips, len(m))
    book.hard_negative[m] = "carrier_nat"

    # big employers (already drawn) — mark them
    big = np.isin(apps["employer_name"], pools.BIG_EMPLOYERS) & (book.hard_negative == "") & (book.typology == "")
    book.hard_negative[big] = "big_employer"

    # busy honest agents: many applications, varied figures, spread over the two years
    busy = _cat("AG", ["9001", "9002"])
    m = book.take(int(0.03 * n))
    apps["agent_id"][m] = rng.choice(busy, len(m))
    apps["channel"][m] = "agent"
    book.hard_negative[m] = "busy_agent"


def _labels(book: _Book, apps: dict) -> None:
    rng, n = book.rng, book.n
    known = apps["applied_at"] < LABEL_CUTOFF
    u = rng.random(n)
    bad = apps["is_bad"]
    label = np.where(bad, np.where(u < 0.6, "fraud", np.where(u < 0.9, "default", "good")),
                     np.where(u < 0.03, "default", "good"))
    # defaults spread around guarantee circles
    circle = book.typology == "guarantee_circle"
    label = np.where(circle & (u < 0.7), "default", label)
    apps["label"] = np.where(known, label, "")


def _assemble(book: _Book, apps: dict) -> dict[str, pd.DataFrame]:
    ids = apps["application_id"]
    applications = pd.DataFrame({c: apps[c] for c in APPLICATION_COLUMNS if c not in ("applied_at",)})
    applications.insert(1, "applied_at", _fmt_times(apps["applied_at"]))
    for col in ("amount", "declared_monthly_revenue", "declared_monthly_income"):
        values = apps[col]
        applications[col] = np.where(np.isnan(values.astype(float)), "", np.char.mod("%.0f", np.nan_to_num(values.astype(float))))
    applications["term_months"] = apps["term_months"].astype(str)

    contacts = pd.concat(book.contacts, ignore_index=True)
    contacts.insert(0, "application_id", ids[contacts.pop("row").to_numpy()])
    guarantees = pd.concat(book.guarantees, ignore_index=True)
    guarantees.insert(0, "application_id", ids[guarantees.pop("row").to_numpy()])
    guarantees["amount"] = np.char.mod("%.0f", guarantees["amount"].to_numpy(dtype=float))

    # registry: a legal representative (the applicant) and 0-3 shareholders per company
    rng = book.rng
    biz = np.flatnonzero(apps["business"])
    biz = biz[pd.Series(apps["company_uscc"][biz]).drop_duplicates().index.to_numpy()]
    reps = pd.DataFrame({
        "company_uscc": apps["company_uscc"][biz], "company_name": apps["company_name"][biz],
        "person_name": apps["applicant_name"][biz], "person_id_number": apps["applicant_id_number"][biz],
        "role": "legal_rep", "share_pct": "",
    })
    k = rng.choice([0, 1, 2, 3], size=len(biz), p=[0.3, 0.4, 0.2, 0.1])
    owner = np.repeat(biz, k)
    share = np.round(rng.uniform(5, 100 / 3, len(owner)), 1)
    r = pools.regions()
    region = rng.choice(len(r.codes), size=len(owner), p=r.weights)
    birth = (END - rng.integers(25 * 365, 60 * 365, len(owner)).astype("timedelta64[D]")).astype("datetime64[D]")
    holders = pd.DataFrame({
        "company_uscc": apps["company_uscc"][owner], "company_name": apps["company_name"][owner],
        "person_name": _names(rng, len(owner)),
        "person_id_number": np.where(rng.random(len(owner)) < 0.8, _resident_ids(rng, r.codes[region], birth), ""),
        "role": "shareholder", "share_pct": np.char.mod("%.1f", share),
    })
    roles = pd.concat([reps, holders], ignore_index=True)
    truth = pd.DataFrame({
        "application_id": ids,
        "is_fraud": (book.typology != "").astype(int),
        "typology": book.typology,
        "ring_id": book.ring_id,
        "hard_negative": book.hard_negative,
    })
    return {"applications": applications, "contacts": contacts, "guarantees": guarantees, "company_roles": roles,
            "truth": truth}


# -- mess and contract-breaking rows ----------------------------------------------

_FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def _mess(book: _Book, tables: dict[str, pd.DataFrame]) -> None:
    rng, rate = book.rng, book.config.mess_rate
    apps = tables["applications"]
    n = len(apps)

    def rows() -> np.ndarray:
        return np.flatnonzero(rng.random(n) < rate / 3)

    phone = apps["applicant_phone"].to_numpy(dtype=object)
    messy = np.flatnonzero(rng.random(n) < rate)
    for i, style in zip(messy, rng.integers(0, 4, len(messy))):  # one format per row
        p = phone[i]
        phone[i] = (f"+86 {p[:3]}-{p[3:7]}-{p[7:]}", "86" + p, f"{p[:3]} {p[3:7]} {p[7:]}", p.translate(_FULLWIDTH))[style]
    apps["applicant_phone"] = phone
    name = apps["applicant_name"].to_numpy(dtype=object)
    for i in rows():
        name[i] = name[i].translate(pools.TRADITIONAL)
    pinyin_rows = np.flatnonzero(rng.random(n) < rate / 10)
    if len(pinyin_rows):
        from pypinyin import Style, lazy_pinyin

        for i in pinyin_rows:
            syllables = lazy_pinyin(name[i], style=Style.NORMAL)
            name[i] = (syllables[0].capitalize() + " " + "".join(syllables[1:]).capitalize()).strip()
    for i in np.flatnonzero(rng.random(n) < rate / 20):  # a typo: one character replaced
        if len(name[i]) >= 2:
            name[i] = name[i][:-1] + rng.choice(pools.GIVEN_CHARS)
    apps["applicant_name"] = name
    ids = apps["applicant_id_number"].to_numpy(dtype=object)
    lower = np.array([s.endswith("X") for s in ids]) & (rng.random(n) < 0.5)
    ids[lower] = [s[:-1] + "x" for s in ids[lower]]
    for i in rows():
        ids[i] = " ".join([ids[i][:6], ids[i][6:14], ids[i][14:]]) if rng.random() < 0.5 else ids[i].translate(_FULLWIDTH)
    apps["applicant_id_number"] = ids
    address = apps["applicant_address"].to_numpy(dtype=object)
    for i in rows():
        a = address[i]
        address[i] = rng.choice([a.replace("省", "", 1), a.replace("号", "號").replace("区", "區"), a.replace("路", "道", 1), " ".join([a[:3], a[3:]])])
    apps["applicant_address"] = address


def _mess_and_breakage(book: _Book, tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Sprinkle formatting mess, then break a few rows; return the broken-row truth."""
    _mess(book, tables)
    rng = book.rng
    apps = tables["applications"]
    n = len(apps)
    k = int(round(book.config.broken_row_rate * n))
    if k == 0:
        return pd.DataFrame(columns=["application_id", "reason"])
    idx = rng.choice(n, size=k, replace=False)
    kinds = rng.integers(0, 4, k)
    broken = []
    duplicates = []
    for i, kind in zip(idx, kinds):
        app_id = apps.at[i, "application_id"]
        if kind == 0:
            apps.at[i, "amount"] = ""
            broken.append((app_id, "missing amount"))
        elif kind == 1:
            apps.at[i, "applied_at"] = "2025-13-45 25:61"
            broken.append((app_id, "unparseable applied_at"))
        elif kind == 2:
            apps.at[i, "amount"] = rng.choice(["-5000", "abc"])
            broken.append((app_id, "bad amount"))
        else:
            row = apps.iloc[i].copy()
            row["amount"] = str(int(float(row["amount"] or 1000)) + 1000)
            duplicates.append(row)
            broken.append((app_id, "duplicate application_id with different content"))
    if duplicates:
        tables["applications"] = pd.concat([apps, pd.DataFrame(duplicates)], ignore_index=True)
    return pd.DataFrame(broken, columns=["application_id", "reason"])


# -- writing ------------------------------------------------------------------------


def _write(book: _Book, tables: dict[str, pd.DataFrame], broken: pd.DataFrame, out: Path) -> GenerationSummary:
    config = book.config
    out.mkdir(parents=True, exist_ok=True)
    truth_dir = out / "truth"
    truth_dir.mkdir(exist_ok=True)
    summary = GenerationSummary(out_dir=str(out))
    for name in ("applications", "guarantees", "contacts", "company_roles"):
        frame = tables[name].astype(str).replace({"nan": ""})
        if config.file_format == "parquet":
            frame.replace("", None).to_parquet(out / f"{name}.parquet", index=False)
        else:
            _write_csv(frame, out / f"{name}.csv", config.encoding)
        summary.row_counts[name] = len(frame)
    tables["truth"].to_csv(truth_dir / "applications.csv", index=False, encoding="utf-8")
    pd.DataFrame(book.rings, columns=["ring_id", "typology", "size", "shared"]).to_csv(truth_dir / "rings.csv", index=False)
    pd.DataFrame(book.circles, columns=["circle_id", "members", "cycle_length"]).to_csv(
        truth_dir / "guarantee_circles.csv", index=False
    )
    broken.to_csv(truth_dir / "broken_rows.csv", index=False)
    truth = tables["truth"]
    summary.planted = {t: int((truth["typology"] == t).sum()) for t in TYPOLOGIES}
    summary.hard_negatives = {h: int((truth["hard_negative"] == h).sum()) for h in HARD_NEGATIVES}
    summary.broken_rows = len(broken)
    return summary


def _write_csv(frame: pd.DataFrame, path: Path, encoding: str) -> None:
    if encoding in ("utf-8", "utf-8-sig"):
        import pyarrow as pa
        import pyarrow.csv as pacsv

        table = pa.Table.from_pandas(frame, preserve_index=False)
        with open(path, "wb") as fh:
            if encoding == "utf-8-sig":
                fh.write("\ufeff".encode("utf-8"))
            pacsv.write_csv(table, fh, pacsv.WriteOptions(quoting_style="needed"))
    else:
        frame.to_csv(path, index=False, encoding=encoding)
