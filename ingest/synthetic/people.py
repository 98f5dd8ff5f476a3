"""Vectorised draws of people, firms and their identifiers.

Every function takes the one seeded ``numpy.random.Generator`` and returns
whole columns (numpy ``str`` / object arrays): names, resident ID numbers with
valid GB 11643 checksums and real birthplaces, USCC codes with valid GB 32100
(and GB 11714 organisation-code) checksums, mobile numbers, addresses, bank
cards with Luhn check digits, device fingerprints, IPs and application times.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ringscope.ingest.normalize.companies import USCC_ALPHABET, uscc_check_index
from ringscope.ingest.normalize.resident_ids import id_check_chars
from ringscope.ingest.synthetic import pools
from ringscope.ingest.synthetic.config import END, START

__all__ = [
    "digits",
    "cat",
    "pick",
    "names",
    "resident_ids",
    "id_check_chars",
    "usccs",
    "phones",
    "addresses",
    "hex_ids",
    "ipv4",
    "ipv6",
    "bank_cards",
    "application_times",
    "day_weights",
    "fmt_times",
]

SPRING_FESTIVALS = (np.datetime64("2025-01-29"), np.datetime64("2026-02-17"))


def digits(rng: np.random.Generator, n: int, width: int) -> np.ndarray:
    """``n`` random digit strings of exactly ``width`` characters."""
    out = rng.integers(0, 10, size=(n, width), dtype=np.uint8) + ord("0")
    return out.view(f"S{width}").ravel().astype(f"U{width}")


def cat(*parts) -> np.ndarray:
    """Element-wise string concatenation of arrays and scalars (an object array of str).

    Done by Arrow's ``binary_join_element_wise``: numpy's fixed-width unicode
    concatenation grows every intermediate to the widest row and was the
    generator's main cost at a million rows.
    """
    arrays = []
    for p in parts:
        if isinstance(p, str):
            arrays.append(pa.scalar(p))
            continue
        a = np.asarray(p)
        if a.ndim == 0:
            arrays.append(pa.scalar(str(a)))
        elif a.dtype.kind in "iu":
            arrays.append(pa.array(a).cast(pa.string()))
        else:
            arrays.append(pa.array(a.astype(object), type=pa.string()))  # object -> Arrow is 5x faster than U
    joined = pc.binary_join_element_wise(*arrays, "")
    if isinstance(joined, pa.Scalar):  # scalars only
        return np.array([joined.as_py()], dtype=object)
    return joined.to_numpy(zero_copy_only=False)


def pick(rng: np.random.Generator, values, n: int, p=None) -> np.ndarray:
    """``n`` draws from ``values`` (with probabilities ``p``)."""
    values = np.asarray(values)
    return values[rng.choice(len(values), size=n, p=p)]


def names(rng: np.random.Generator, male: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(surname, given name) per person, gendered by ``male``.

    Surnames follow their population shares; given names are 1–2 characters,
    mostly common whole names, some composed from two name characters.
    """
    n = len(male)
    surname = rng.choice(pools.SURNAMES, size=n, p=pools.SURNAME_WEIGHTS)
    given = np.where(male, pick(rng, pools.GIVEN_MALE, n), pick(rng, pools.GIVEN_FEMALE, n))
    composed = rng.random(n) < 0.35
    given = np.where(composed, cat(pick(rng, pools.GIVEN_CHARS, n), pick(rng, pools.GIVEN_CHARS, n)), given)
    return surname, given


def resident_ids(rng: np.random.Generator, region_codes: np.ndarray, birth: np.ndarray, male: np.ndarray) -> np.ndarray:
    """18-character resident IDs: birthplace, birth date, sequence (odd = male), check char."""
    n = len(region_codes)
    births = np.char.replace(birth.astype("datetime64[D]").astype(str), "-", "")
    seq = rng.integers(0, 50, n) * 2 + np.asarray(male, dtype=int)  # 17th digit parity is the gender
    body = cat(region_codes, births, np.char.zfill(seq.astype(str), 3))
    return cat(body, id_check_chars(body))


_USCC_ALPHABET = np.array(list(USCC_ALPHABET))
_ORG_WEIGHTS = np.array([3, 7, 9, 10, 5, 8, 4, 2])
_ORG_VALUE = np.array([int(c) if c.isdigit() else ord(c) - 55 for c in _USCC_ALPHABET])


def usccs(rng: np.random.Generator, region_codes: np.ndarray) -> np.ndarray:
    """Unified social credit codes (GB 32100) of firms registered in ``region_codes``.

    Layout as issued since 2015: ``9`` (market regulator) + ``1``/``2``
    (company / sole trader), the 6-digit region, a 9-character organisation
    code (``MA…`` with its own GB 11714 check digit), the check character.
    """
    n = len(region_codes)
    kind = np.where(rng.random(n) < 0.7, 1, 2)
    region = np.frombuffer(np.asarray(region_codes).astype("S6").tobytes(), dtype=np.uint8).reshape(n, 6) - ord("0")
    org = np.empty((n, 9), dtype=np.int64)
    org[:, 0] = 21  # 'M'
    org[:, 1] = 10  # 'A'
    org[:, 2] = rng.integers(0, 10, n)  # the registration sequence starts with a digit
    org[:, 3:7] = rng.integers(0, 31, size=(n, 4))
    org[:, 7] = rng.integers(0, 10, n)
    # GB 11714 check over the first 8 characters (a letter counts as 10 + its place in A–Z)
    org_check = (11 - (_ORG_VALUE[org[:, :8]] @ _ORG_WEIGHTS) % 11) % 11
    redo = org_check == 10  # would be 'X', which the USCC alphabet lacks: move the last digit one on
    org[redo, 7] = np.where(org[redo, 7] < 9, org[redo, 7] + 1, 0)
    org_check = (11 - (_ORG_VALUE[org[:, :8]] @ _ORG_WEIGHTS) % 11) % 11
    org[:, 8] = org_check
    org[:, 8] = org_check
    body = np.concatenate([np.full((n, 1), 9), kind[:, None], region, org], axis=1)
    check = _USCC_ALPHABET[uscc_check_index(body)]
    full = np.concatenate([_USCC_ALPHABET[body], check[:, None]], axis=1)
    return full.astype("U1").view("U18").ravel()


def phones(rng: np.random.Generator, n: int) -> np.ndarray:
    """Mainland mobile numbers on real 13x/15x/17x/18x/19x prefixes."""
    return np.char.add(pick(rng, pools.MOBILE_PREFIXES, n), digits(rng, n, 8))


def addresses(rng: np.random.Generator, region_idx: np.ndarray, unit: str = "单元") -> np.ndarray:
    """Addresses: province, city, district, road, number, estate, building, unit (or shop), room."""
    r = pools.regions()
    n = len(region_idx)
    city = np.where(r.city[region_idx] == r.province[region_idx], "", r.city[region_idx])
    return cat(
        r.province[region_idx],
        city,
        r.county[region_idx],
        pick(rng, pools.ROADS, n),
        rng.integers(1, 999, n),
        "号",
        pick(rng, pools.BRAND_CHARS, n),
        pick(rng, pools.COMMUNITIES, n),
        rng.integers(1, 30, n),
        "栋",
        rng.integers(1, 6, n),
        unit,
        rng.integers(1, 33, n) * 100 + rng.integers(1, 5, n),
        "室",
    )


def hex_ids(rng: np.random.Generator, n: int, width: int = 16) -> np.ndarray:
    """Lower-case hex strings (device fingerprints)."""
    alphabet = np.array(list("0123456789abcdef"))
    return alphabet[rng.integers(0, 16, size=(n, width))].astype("U1").view(f"U{width}").ravel()


# first octets of blocks allocated to Chinese carriers
_CN_FIRST_OCTETS = [
    36,
    39,
    42,
    58,
    59,
    60,
    61,
    101,
    106,
    110,
    111,
    112,
    113,
    114,
    115,
    116,
    117,
    118,
    119,
    120,
    121,
    122,
    123,
    124,
    125,
    171,
    175,
    180,
    182,
    183,
    202,
    203,
    210,
    211,
    218,
    219,
    220,
    221,
    222,
    223,
]


def ipv4(rng: np.random.Generator, n: int) -> np.ndarray:
    """Public IPv4 addresses in Chinese carrier blocks."""
    first = pick(rng, _CN_FIRST_OCTETS, n)
    octets = rng.integers(0, 256, size=(n, 3))
    octets[:, 2] = np.clip(octets[:, 2], 1, 254)
    return cat(first, ".", octets[:, 0], ".", octets[:, 1], ".", octets[:, 2])


def ipv6(rng: np.random.Generator, n: int) -> np.ndarray:
    """IPv6 addresses in the big carriers' 240e (Telecom) / 2409 (Mobile) / 2408 (Unicom) ranges."""
    return cat(
        pick(rng, ["240e", "2409", "2408"], n),
        ":",
        hex_ids(rng, n, 4),
        ":",
        hex_ids(rng, n, 4),
        "::",
        np.char.lstrip(hex_ids(rng, n, 3), "0"),
        "1",
    )


def bank_cards(rng: np.random.Generator, n: int) -> np.ndarray:
    """UnionPay debit card numbers, 16–19 digits, with a valid Luhn check digit."""
    length = rng.choice([16, 17, 18, 19], size=n, p=[0.25, 0.05, 0.2, 0.5])
    bins = pick(rng, pools.CARD_BINS, n)
    body = np.frombuffer(bins.astype("S6").tobytes(), dtype=np.uint8).reshape(n, 6) - ord("0")
    body = np.concatenate([body, rng.integers(0, 10, size=(n, 12))], axis=1).astype(np.int64)  # 18 payload digits
    # Luhn over the first (length-1) digits: double every second digit from the right
    payload = length - 1
    pos_from_right = payload[:, None] - 1 - np.arange(18)[None, :]  # 0 = rightmost payload digit
    used = pos_from_right >= 0
    doubled = np.where(pos_from_right % 2 == 0, body * 2, body)
    doubled = np.where(doubled > 9, doubled - 9, doubled)
    check = (10 - (np.where(used, doubled, 0).sum(axis=1) % 10)) % 10
    chars = (body + ord("0")).astype(np.uint8).view("S1").reshape(n, 18).astype("U1")
    full = np.concatenate([chars, np.full((n, 1), "0", dtype="U1")], axis=1)
    full[np.arange(n), payload] = check.astype(str)
    joined = full.view("U19").ravel()
    return np.array([s[:k] for s, k in zip(joined.tolist(), length.tolist())], dtype=object)


def day_weights(days: np.ndarray) -> np.ndarray:
    """Weekly rhythm, month-end bumps, the run-up to Spring Festival and its lull."""
    weekday = (days.astype("datetime64[D]").view("int64") - 4) % 7  # 0 = Monday
    w = np.where(weekday >= 5, 0.55, 1.0)
    day_of_month = (days - days.astype("datetime64[M]").astype("datetime64[D]")).astype(int) + 1
    w = w * np.where(day_of_month >= 25, 1.2, 1.0)
    for festival in SPRING_FESTIVALS:
        delta = (days - festival).astype(int)
        w = w * np.where((delta >= -21) & (delta < 0), 1.5, 1.0) * np.where((delta >= 0) & (delta < 7), 0.3, 1.0)
    # the book grows: a third more applications in the second year
    w = w * np.linspace(0.85, 1.15, len(days))
    return w / w.sum()


_HOUR_WEIGHTS = np.array([1, 0.5, 0.3, 0.2, 0.2, 0.3, 1, 3, 6, 9, 10, 9, 7, 8, 9, 9, 8, 7, 6, 7, 8, 7, 5, 2.5])


def application_times(rng: np.random.Generator, n: int, window: tuple[int, int] | None = None) -> np.ndarray:
    """``n`` submission times (datetime64[s]) over the two years, mostly in the daytime.

    ``window`` (first and end day, counted from ``START``) keeps them to
    those days, weighted as in the whole two years.
    """
    days = np.arange(START, END, dtype="datetime64[D]")
    weights = day_weights(days)
    if window is not None:
        days, weights = days[window[0] : window[1]], weights[window[0] : window[1]]
        weights = weights / weights.sum()
    day = days[rng.choice(len(days), size=n, p=weights)]
    hour = rng.choice(24, size=n, p=_HOUR_WEIGHTS / _HOUR_WEIGHTS.sum())
    seconds = hour * 3600 + rng.integers(0, 3600, n)
    return day.astype("datetime64[s]") + seconds.astype("timedelta64[s]")


def fmt_times(ts: np.ndarray) -> np.ndarray:
    """``YYYY-MM-DD HH:MM:SS`` strings."""
    return np.char.replace(ts.astype("datetime64[s]").astype(str), "T", " ")
