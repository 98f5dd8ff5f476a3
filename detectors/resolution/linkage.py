"""Fellegi–Sunter record linkage, vectorised end to end (the engine of identity resolution).

:func:`resolve_records` decides which rows of a table of person records are
one entity, in the style of Splink:

1. **Blocking** — candidate pairs are the union of several cheap keys: the ID
   number, region + birth date (the first 14 characters of a Chinese ID), the
   phone, the pinyin anagram key of the name (张伟 / 張偉 / Zhang Wei / wei
   zhang meet) with and without the birth date, and surname + postcode when
   a postcode is given; each ``extra_fields`` text or number column also
   blocks with the birth date, postcode, surname and given name. A block
   larger than ``max_block`` records is split by birth year, and what is still too large is skipped and counted in
   ``Resolution.stats`` (a shared "wang wei" never becomes millions of pairs).
2. **Comparison** — each field gets an agreement level from rapidfuzz
   (``cpdist`` over the candidate pairs, in C, on all cores):
   see :data:`ringscope.detectors.resolution.matching.LEVELS`. More columns can be compared as
   generic ``text`` / ``exact`` / ``number`` fields (``extra_fields``, see
   :data:`ringscope.detectors.resolution.matching.EXTRA_KINDS`), each its own field with its own
   EM-estimated ``m`` and ``u``.
3. **Weights** — ``u`` (how often a level happens between two random records)
   is measured on random pairs; ``m`` (how often it happens between two
   records of one person) is estimated by expectation–maximisation, once per
   blocking key on the fields that key does not use (so a key never teaches
   its own field); exact agreement on a name, phone or address is weighted
   by that value's frequency (two 张伟 agree less than two 窦阳兵). The match
   probability uses a prior also fitted by EM over the candidates.
4. **Clustering** — connected components over pairs at or above
   ``threshold``; a component in which two different valid ID numbers with
   different birth dates would be joined through weaker records is rebuilt
   edge by edge, strongest first, refusing such merges (chaining guard).

:mod:`ringscope.detectors.identity` runs it over a portfolio's persons.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ringscope.detectors.base import check_param
from ringscope.detectors.resolution.blocking import blocking_keys, candidate_pairs, extra_column
from ringscope.detectors.resolution.clustering import cluster_pairs, entity_ids
from ringscope.detectors.resolution.matching import (
    EXTRA_KINDS,
    LEVELS,
    anagram_key,
    compare_addresses,
    compare_codes,
    compare_dates,
    compare_extra,
    compare_ids,
    compare_name_parts,
    compare_names,
    gb11643_ok,
)

__all__ = ["Resolution", "resolve_records"]

# Prior m (same person) and u (random pair) per field and level, used to start
# EM and to smooth its estimates when a portfolio is small.
_PRIOR_M: dict[str, dict[int, float]] = {
    "name": {4: 0.82, 3: 0.08, 2: 0.04, 1: 0.04, 0: 0.02},
    "given_name": {3: 0.85, 2: 0.06, 1: 0.04, 0: 0.05},
    "surname": {3: 0.85, 2: 0.06, 1: 0.04, 0: 0.05},
    "id_number": {3: 0.9, 2: 0.06, 0: 0.04},
    "dob": {2: 0.9, 1: 0.06, 0: 0.04},
    "phone": {2: 0.6, 1: 0.05, 0: 0.35},
    "address": {3: 0.55, 2: 0.2, 1: 0.1, 0: 0.15},
    "postcode": {2: 0.85, 1: 0.08, 0: 0.07},
}
_PRIOR_U: dict[str, dict[int, float]] = {
    "name": {4: 2e-4, 3: 2e-4, 2: 5e-4, 1: 0.01, 0: 0.989},
    "given_name": {3: 0.01, 2: 0.005, 1: 0.02, 0: 0.965},
    "surname": {3: 0.01, 2: 0.005, 1: 0.02, 0: 0.965},
    "id_number": {3: 1e-7, 2: 1e-6, 0: 1 - 1.1e-6},
    "dob": {2: 5e-5, 1: 5e-4, 0: 1 - 5.5e-4},
    "phone": {2: 1e-6, 1: 1e-5, 0: 1 - 1.1e-5},
    "address": {3: 1e-5, 2: 1e-4, 1: 5e-3, 0: 1 - 5.11e-3},
    "postcode": {2: 1e-3, 1: 1e-2, 0: 0.989},
}
#: priors of the extra fields by comparison kind (``resolve_records(extra_fields=...)``)
_KIND_PRIOR_M: dict[str, dict[int, float]] = {
    "text": {3: 0.8, 2: 0.08, 1: 0.05, 0: 0.07},
    "exact": {1: 0.9, 0: 0.1},
    "number": {2: 0.85, 1: 0.07, 0: 0.08},
}
_KIND_PRIOR_U: dict[str, dict[int, float]] = {
    "text": {3: 0.01, 2: 0.005, 1: 0.02, 0: 0.965},
    "exact": {1: 0.05, 0: 0.95},
    "number": {2: 0.01, 1: 0.03, 0: 0.96},
}
#: fields whose exact level is weighted by the value's frequency
_TF_FIELDS = {"name": 4, "given_name": 3, "surname": 3, "phone": 2, "address": 3, "postcode": 2}


def _prior_m(f: str, kinds: dict[str, str] | None) -> dict[int, float]:
    return _KIND_PRIOR_M[kinds[f]] if kinds and f in kinds else _PRIOR_M[f]


def _prior_u(f: str, kinds: dict[str, str] | None) -> dict[int, float]:
    return _KIND_PRIOR_U[kinds[f]] if kinds and f in kinds else _PRIOR_U[f]


_PRIOR_STRENGTH = 20.0  # pseudo-counts pulling small-sample estimates to the priors
_MISSING = -1


@dataclass
class Resolution:
    """Result of :func:`resolve_records`.

    Attributes
    ----------
    entities : DataFrame
        ``record_id``, ``entity_id`` (the smallest record id of the entity).
    pairs : DataFrame
        Scored candidate pairs with probability >= 0.5: ``left``, ``right``,
        ``score`` (match probability), ``weight`` (log2 Bayes factor) and one
        similarity column per compared field; ``merged`` says whether the
        pair is an edge of the final clustering.
    stats : dict
        Counts: records, candidate pairs per blocking key, oversize/skipped
        blocks, chaining edges dropped.
    model : dict
        ``m``, ``u`` per field and level, and the ``prior`` match probability.
    """

    entities: pd.DataFrame
    pairs: pd.DataFrame
    stats: dict[str, Any]
    model: dict[str, Any]
    records: pd.DataFrame = field(repr=False)
    fields: tuple[str, ...] = ()
    extra_fields: dict[str, str] = field(default_factory=dict)
    address_tokens: bool = False
    _tf: dict[str, pd.Series] = field(default_factory=dict, repr=False)
    _arrays: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    _arrays_meta: dict[str, Any] = field(default_factory=dict, repr=False)

    def frequencies_of(self, record_ids: Any) -> dict[str, pd.Series]:
        """The term frequencies of the values that the records ``record_ids``
        hold: all that :meth:`explain` reads to explain a pair of them, so a
        resolution kept only to explain its scored pairs can keep these alone
        (at a million records the whole tables are ~0.2 GB of text).

        Example
        -------
        >>> frame = pd.DataFrame({"record_id": ["a", "b", "c"], "name": ["张伟", "張偉", "李娜"]})
        >>> res = resolve_records(frame, workers=1)
        >>> sorted(res.frequencies_of(["a", "b"])["name"].index)
        ['张伟']
        """
        recs = self.records
        rows = np.flatnonzero(recs["record_id"].isin(pd.Index(record_ids).astype(str)).to_numpy())
        out = {}
        for f, freq in self._tf.items():
            held = recs[_VALUE_COLUMN[f]].iloc[rows].dropna().unique()
            out[f] = freq[freq.index.isin(held)]
        return out

    def explain(self, left: Any, right: Any) -> dict[str, Any]:
        """Why two records match or not: per field the compared values, the
        agreement level and its meaning, the similarity and the weight (bits).

        Example
        -------
        >>> frame = pd.DataFrame({"record_id": ["a", "b"], "name": ["张伟", "張偉"],
        ...                       "dob": ["1990-01-02", "1990-01-02"]})
        >>> res = resolve_records(frame, workers=1)
        >>> ex = res.explain("a", "b")
        >>> ex["fields"]["name"]["agreed"], ex["fields"]["name"]["level"]
        (True, 4)
        """
        recs = self.records
        if "index" not in self._arrays_meta:
            self._arrays_meta["index"] = pd.Index(recs["record_id"])
        pos = self._arrays_meta["index"]
        li, ri = pos.get_indexer([str(left)]), pos.get_indexer([str(right)])
        if li[0] < 0 or ri[0] < 0:
            raise KeyError(f"unknown record id {left!r} or {right!r}")
        kinds = self.extra_fields
        # the two records' values only: the book's columns, converted to objects a few at
        # a time and dropped again, cost seconds per explanation at 1M records
        two = _arrays(recs.iloc[[li[0], ri[0]]].reset_index(drop=True))
        first, second = np.array([0]), np.array([1])
        levels, sims = _compare(
            two, first, second, self.fields, workers=1, kinds=kinds, address_tokens=self.address_tokens
        )
        bits = _field_bits(two, first, levels, self.model, self._tf, self.fields)
        out: dict[str, Any] = {}
        total = 0.0
        for f in self.fields:
            lvl = int(levels[f][0])
            w = float(bits[f][0])
            total += w
            col = extra_column(f) if f in kinds else _VALUE_COLUMN[f]
            meanings = EXTRA_KINDS[kinds[f]] if f in kinds else LEVELS[f]
            out[f] = {
                "left": recs[col].iat[li[0]],
                "right": recs[col].iat[ri[0]],
                "level": lvl,
                "meaning": "missing" if lvl == _MISSING else meanings[lvl],
                "similarity": None if np.isnan(sims[f][0]) else round(float(sims[f][0]), 3),
                "weight_bits": round(w, 2),
                "agreed": lvl > 0,
            }
        prior = self.model["prior"]
        score = _probability(np.array([total]), prior)[0]
        return {
            "left": str(left),
            "right": str(right),
            "score": float(score),
            "weight_bits": total,
            "prior": prior,
            "fields": out,
        }


#: names an extra field cannot take (columns of ``Resolution.pairs``)
_RESERVED = {"record_id", "left", "right", "score", "weight", "merged"}

_VALUE_COLUMN = {
    "name": "name_norm",
    "given_name": "given",
    "surname": "surname",
    "id_number": "id",
    "dob": "dob",
    "phone": "phone",
    "address": "address",
    "postcode": "postcode",
}


# ---------------------------------------------------------------------------
# preparation
# ---------------------------------------------------------------------------


def _text(series: pd.Series) -> pd.Series:
    s = series.astype("str").str.strip()
    return s.where(s != "", np.nan)


def _dates(series: pd.Series) -> pd.Series:
    """Dates as YYYYMMDD text; 8-digit strings are kept as typed (a typo stays comparable)."""
    if pd.api.types.is_datetime64_any_dtype(series):
        return series.dt.strftime("%Y%m%d").where(series.notna(), np.nan).astype(object)
    s = _text(series)
    digits = s.fillna("").str.replace(r"[-/.\s]", "", regex=True)
    eight = digits.str.fullmatch(r"\d{8}")
    parsed = pd.to_datetime(s.where(~eight), errors="coerce", format="mixed")
    out = digits.where(eight, parsed.dt.strftime("%Y%m%d"))
    return out.where(out.fillna("") != "", np.nan).astype(object)


def _none(n: int) -> pd.Series:
    return pd.Series(np.nan, index=range(n), dtype="str")


def _prepare(
    frame: pd.DataFrame, normalized: bool = False, extra: dict[str, str] | None = None, address_tokens: bool = False
) -> tuple[pd.DataFrame, tuple[str, ...]]:
    from ringscope.ingest.normalize import (
        name_pinyin_key,
        normalize_addresses,
        normalize_id_numbers,
        normalize_names,
        normalize_phones,
    )

    if "record_id" not in frame.columns:
        raise ValueError("resolve_records needs a 'record_id' column")
    recs = pd.DataFrame({"record_id": frame["record_id"].astype(str).to_numpy()})
    if recs["record_id"].duplicated().any():
        raise ValueError("record_id values must be unique")
    n = len(frame)
    fields: list[str] = []
    nan = _none(n)
    col = {c: frame[c].reset_index(drop=True) for c in frame.columns}
    has_parts = "given_name" in col and "surname" in col
    if has_parts:
        recs["given"] = _text(col["given_name"]).str.lower().to_numpy()
        recs["surname"] = _text(col["surname"]).str.lower().to_numpy()
        fields += ["given_name", "surname"]
    if "name" in col:
        raw_name = _text(col["name"])
    elif has_parts:
        raw_name = (recs["given"].fillna("") + " " + recs["surname"].fillna("")).str.strip()
        raw_name = raw_name.where(raw_name != "", np.nan)
    else:
        raw_name = nan
    names = raw_name.str.lower() if normalized else normalize_names(raw_name)["name"].astype("str")
    recs["name_norm"] = names.str.replace(" ", "", regex=False).to_numpy()
    recs["name_key"] = anagram_key(name_pinyin_key(raw_name)).to_numpy()
    if "name" in col and not has_parts:
        fields.insert(0, "name")
    if "id_number" in col:
        raw_id = _text(col["id_number"])
        cleaned = raw_id.fillna("").str.upper().str.replace(r"[\s\-]", "", regex=True)
        if normalized:
            recs["id"] = cleaned.to_numpy()
        else:
            ids = normalize_id_numbers(raw_id)
            recs["id"] = ids["id_number"].astype(object).where(ids["id_number"].notna(), cleaned).to_numpy()
        recs.loc[recs["id"] == "", "id"] = np.nan
        recs["id_ok"] = gb11643_ok(recs["id"].to_numpy())
        fields.append("id_number")
    else:
        recs["id"] = _none(n)
        recs["id_ok"] = False
    cn_id = recs["id"].fillna("").str.fullmatch(r"\d{17}[\dX]")
    if "dob" in col:
        recs["dob"] = _dates(col["dob"]).to_numpy()
    else:
        recs["dob"] = _none(n)
    recs["id"] = recs["id"].astype("str")
    from_id = recs["id"].where(cn_id).str[6:14]
    recs["dob"] = recs["dob"].astype("str").where(recs["dob"].notna(), from_id)
    if "dob" in col or cn_id.any():
        fields.append("dob")
    recs["region_dob"] = recs["id"].where(cn_id).str[:14]
    if "phone" in col:
        raw_phone = _text(col["phone"])
        ph = raw_phone if normalized else normalize_phones(raw_phone)["phone"].astype("str")
        digits = raw_phone.fillna("").str.replace(r"\D", "", regex=True)
        recs["phone"] = ph.where(ph.notna(), digits.where(digits != "", np.nan)).to_numpy()
        fields.append("phone")
    else:
        recs["phone"] = _none(n)
    if "address" in col:
        addr = _text(col["address"])
        recs["address"] = (addr if normalized else normalize_addresses(addr)["address"]).to_numpy()
        if address_tokens:
            # the words as typed, for the order-insensitive comparison (normalisation drops the spaces)
            recs["address_words"] = addr.str.lower().str.replace(r"\s+", " ", regex=True).to_numpy()
        fields.append("address")
    else:
        recs["address"] = _none(n)
        if address_tokens:
            recs["address_words"] = _none(n)
    if "postcode" in col:
        recs["postcode"] = _text(col["postcode"]).str.replace(r"\s", "", regex=True).to_numpy()
        fields.append("postcode")
    else:
        recs["postcode"] = _none(n)
    if not has_parts:
        recs["given"] = _none(n)
        recs["surname"] = _none(n)
    for f, kind in (extra or {}).items():
        text = _text(col[f]).str.lower()
        if kind == "number":
            text = text.str.replace(r"\s", "", regex=True)
        recs[extra_column(f)] = text.to_numpy()
        fields.append(f)
    for c in recs.columns:
        if c not in ("record_id", "id_ok"):
            recs[c] = recs[c].astype("str")
    return recs, tuple(fields)


# ---------------------------------------------------------------------------
# comparison and weights
# ---------------------------------------------------------------------------


def _arrays(recs: pd.DataFrame) -> _Columns:
    """Columns as numpy object arrays (converted on first use, index many times)."""
    return _Columns(recs)


class _Columns(dict):
    """``recs``' columns as numpy object arrays (``id_ok`` as booleans), by
    name, each converted when first asked for and only the last
    :attr:`HELD` kept: the comparisons read a field's columns at a time,
    and every column of a million records as Python strings at once was
    about a gigabyte beside the records themselves."""

    HELD = 4

    def __init__(self, recs: pd.DataFrame) -> None:
        super().__init__()
        self.recs = recs

    def __len__(self) -> int:
        return len(self.recs.columns)

    def __bool__(self) -> bool:
        return True

    def __contains__(self, column) -> bool:
        return column in self.recs.columns

    def __iter__(self):
        return iter(self.recs.columns)

    def keys(self):
        return list(self.recs.columns)

    def __getitem__(self, column: str) -> np.ndarray:
        if dict.__contains__(self, column):
            value = dict.pop(self, column)  # most recent last
        else:
            values = self.recs[column]
            value = values.to_numpy(dtype=object, na_value=np.nan) if column != "id_ok" else values.to_numpy(bool)
        dict.__setitem__(self, column, value)
        while dict.__len__(self) > self.HELD:
            dict.pop(self, next(dict.__iter__(self)))
        return value


#: candidate pairs compared at a time: each comparison makes several arrays per pair
#: (the two sides' values as objects, rapidfuzz's scores, the level conditions), about
#: 100 bytes a pair, so they are made for a block of pairs, not for millions at once
_COMPARE_BLOCK = 500_000


def _compare(
    arrays: dict[str, np.ndarray],
    li: np.ndarray,
    ri: np.ndarray,
    fields: tuple[str, ...],
    workers: int,
    kinds: dict[str, str] | None = None,
    address_tokens: bool = False,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per field, each pair's level (int8) and similarity (float64), field by
    field and :data:`_COMPARE_BLOCK` pairs at a time (every comparison is
    pair by pair: the blocks give what one call over all pairs gave)."""
    levels: dict[str, np.ndarray] = {}
    sims: dict[str, np.ndarray] = {}
    n = len(li)
    kinds = kinds or {}
    blocks = [slice(start, start + _COMPARE_BLOCK) for start in range(0, n, _COMPARE_BLOCK)]
    for f in fields:
        levels[f] = np.empty(n, dtype=np.int8)
        sims[f] = np.empty(n, dtype=np.float64)
        for block in blocks:
            lv, sim = _compare_field(arrays, f, li[block], ri[block], workers, kinds, address_tokens)
            levels[f][block] = lv
            sims[f][block] = sim
    if "given_name" in fields and "surname" in fields:
        # given name and surname swapped between the two records: compare crosswise
        for block in blocks:
            left, right = li[block], ri[block]
            cross_g, _ = compare_name_parts(arrays["given"][left], arrays["surname"][right], workers=workers)
            cross_s, _ = compare_name_parts(arrays["surname"][left], arrays["given"][right], workers=workers)
            given, surname = levels["given_name"][block], levels["surname"][block]
            cross = np.minimum(cross_g, cross_s)
            swapped = (cross > np.minimum(given, surname)) & (cross >= 2)
            levels["given_name"][block] = np.where(swapped, cross_g, given)
            levels["surname"][block] = np.where(swapped, cross_s, surname)
    return levels, sims


def _compare_field(
    arrays: dict[str, np.ndarray],
    f: str,
    li: np.ndarray,
    ri: np.ndarray,
    workers: int,
    kinds: dict[str, str],
    address_tokens: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Field ``f``'s levels and similarities for the pairs ``li``, ``ri``."""

    def v(c: str, idx: np.ndarray) -> np.ndarray:
        return arrays[c][idx]

    if f in kinds:
        c = extra_column(f)
        return compare_extra(v(c, li), v(c, ri), kinds[f], workers=workers)
    if f == "name":
        return compare_names(
            v("name_norm", li), v("name_norm", ri), v("name_key", li), v("name_key", ri), workers=workers
        )
    if f in ("given_name", "surname"):
        c = "given" if f == "given_name" else "surname"
        return compare_name_parts(v(c, li), v(c, ri), workers=workers)
    if f == "id_number":
        ok = arrays["id_ok"]
        return compare_ids(v("id", li), v("id", ri), ok[li], ok[ri], workers=workers)
    if f == "dob":
        return compare_dates(v("dob", li), v("dob", ri), workers=workers)
    if f in ("phone", "postcode"):
        return compare_codes(v(f, li), v(f, ri), workers=workers)
    lv, sim = compare_addresses(v("address", li), v("address", ri), workers=workers)
    if address_tokens:
        # same words in another order: at least the level of the token-sorted similarity
        lv_t, sim_t = compare_addresses(v("address_words", li), v("address_words", ri), workers=workers, tokens=True)
        lv, sim = np.maximum(lv, np.minimum(lv_t, 2)), np.fmax(sim, sim_t)
    return lv, sim


def _estimate_u(
    arrays: dict[str, np.ndarray],
    fields: tuple[str, ...],
    workers: int,
    rng: np.random.Generator,
    sample: int = 200_000,
    kinds: dict[str, str] | None = None,
    address_tokens: bool = False,
) -> dict[str, dict[int, float]]:
    """u per level from random record pairs, smoothed towards the priors."""
    n = len(arrays["record_id"])
    total = n * (n - 1) // 2
    if total <= sample:
        li, ri = np.triu_indices(n, 1)
    else:
        li = rng.integers(0, n, sample)
        ri = rng.integers(0, n, sample)
        keep = li != ri
        li, ri = li[keep], ri[keep]
    levels, _ = _compare(arrays, li, ri, fields, workers, kinds, address_tokens)
    u: dict[str, dict[int, float]] = {}
    for f in fields:
        lv = levels[f]
        seen = lv[lv >= 0]
        prior = _prior_u(f, kinds)
        counts = {lvl: float((seen == lvl).sum()) for lvl in prior}
        a = _PRIOR_STRENGTH * 50  # u needs a stronger prior: random pairs rarely agree
        u[f] = {lvl: (counts[lvl] + a * prior[lvl]) / (len(seen) + a) for lvl in prior}
    return u


def _em_m(
    levels: dict[str, np.ndarray],
    fields: list[str],
    u: dict[str, dict[int, float]],
    iterations: int = 30,
    kinds: dict[str, str] | None = None,
) -> tuple[dict[str, dict[int, float]], float]:
    """m per level by EM with u fixed, over the distinct comparison patterns."""
    mat = np.stack([levels[f] for f in fields], axis=1).astype(np.int16)
    patterns, counts = np.unique(mat, axis=0, return_counts=True)
    counts = counts.astype(np.float64)
    prior_m = {f: _prior_m(f, kinds) for f in fields}
    m = {f: dict(prior_m[f]) for f in fields}
    lam = 0.3
    for _ in range(iterations):
        logit = np.full(len(patterns), math.log(lam / (1 - lam)))
        for j, f in enumerate(fields):
            lv = patterns[:, j]
            for lvl in m[f]:
                sel = lv == lvl
                logit[sel] += math.log(m[f][lvl]) - math.log(u[f][lvl])
        p = 1.0 / (1.0 + np.exp(-np.clip(logit, -50, 50)))
        w = p * counts
        lam = float(np.clip(w.sum() / counts.sum(), 1e-6, 1 - 1e-6))
        for j, f in enumerate(fields):
            lv = patterns[:, j]
            denom = w[lv >= 0].sum() + _PRIOR_STRENGTH
            m[f] = {lvl: (w[lv == lvl].sum() + _PRIOR_STRENGTH * prior_m[f][lvl]) / denom for lvl in m[f]}
    return m, lam


def _term_frequencies(recs: pd.DataFrame, fields: tuple[str, ...]) -> dict[str, pd.Series]:
    """Smoothed frequency of each value of the frequency-weighted fields."""
    tf: dict[str, pd.Series] = {}
    for f, lvl in _TF_FIELDS.items():
        if f not in fields:
            continue
        values = recs[_VALUE_COLUMN[f]].dropna()
        counts = values.value_counts()
        a = _PRIOR_STRENGTH
        tf[f] = (counts + a * _PRIOR_U[f][lvl]) / (len(values) + a)
    return tf


def _field_bits(
    arrays: dict[str, np.ndarray],
    li: np.ndarray,
    levels: dict[str, np.ndarray],
    model: dict,
    tf: dict[str, pd.Series],
    fields: tuple[str, ...],
) -> dict[str, np.ndarray]:
    """log2 Bayes factor per field and pair; exact levels use the value's frequency."""
    m, u = model["m"], model["u"]
    out = {}
    for f in fields:
        lv = levels[f]
        lvls = sorted(m[f])
        table = np.zeros(max(lvls) + 2)
        for lvl in lvls:
            table[lvl] = math.log2(m[f][lvl] / u[f][lvl])
        bits = np.where(lv >= 0, table[np.clip(lv, 0, None)], 0.0)
        if f in tf:
            exact = lv == _TF_FIELDS[f]
            if exact.any():
                freq = tf[f].reindex(arrays[_VALUE_COLUMN[f]][li[exact]]).to_numpy(dtype=np.float64)
                freq = np.where(np.isnan(freq), u[f][_TF_FIELDS[f]], freq)
                # never let frequency weighting say more than the average u would
                freq = np.maximum(freq, min(u[f][_TF_FIELDS[f]], freq.min(initial=1.0)))
                bits[exact] = np.log2(m[f][_TF_FIELDS[f]] / freq)
        out[f] = bits
    return out


def _probability(bits: np.ndarray, prior: float) -> np.ndarray:
    logit = bits * math.log(2) + math.log(prior / (1 - prior))
    return 1.0 / (1.0 + np.exp(-np.clip(logit, -60, 60)))


def _fit_prior(bits: np.ndarray, total_pairs: int, iterations: int = 50) -> float:
    """Share of all record pairs that match, by EM over the candidates (the
    pairs blocking never proposed count as non-matches)."""
    lam = min(0.5, max(len(bits), 1) / max(total_pairs, 1) * 0.1)
    for _ in range(iterations):
        p = _probability(bits, lam)
        lam = float(np.clip(p.sum() / max(total_pairs, 1), 1e-12, 0.5))
    return lam


# ---------------------------------------------------------------------------
# public engine
# ---------------------------------------------------------------------------


def resolve_records(
    frame: pd.DataFrame,
    *,
    threshold: float = 0.9,
    workers: int = -1,
    max_block: int = 200,
    seed: int = 0,
    blocking: tuple[str, ...] | None = None,
    normalized: bool = False,
    extra_fields: dict[str, str] | None = None,
    address_tokens: bool = False,
) -> Resolution:
    """Resolve a table of person records into entities (Fellegi–Sunter).

    Parameters
    ----------
    frame : DataFrame
        ``record_id`` (unique) and any of ``name``, ``id_number``, ``dob``
        (date or text), ``phone``, ``address``, ``postcode``, and
        ``given_name`` + ``surname`` (then compared separately, Jaro-Winkler).
        Chinese names are compared after traditional → simplified and through
        their pinyin; a Chinese ID also gives the birth date and region.
    threshold : float
        Match probability at or above which two records are linked.
    workers : int
        rapidfuzz workers (-1 = all cores).
    max_block : int
        Largest block, in records, whose pairs are compared (oversize blocks
        are split by birth year, then skipped and counted in ``stats``).
    seed : int
        Seed of the random pairs that estimate ``u``.
    blocking : tuple of str, optional
        Blocking keys to use (default all that the columns allow): ``id``,
        ``region_dob``, ``phone``, ``name_dob``, ``name``, ``address``,
        ``surname_postcode``, ``dob_postcode``, ``given_dob``,
        ``surname_dob``, ``given_postcode``.
    normalized : bool
        Values are already normalised as ringscope's ingest stores them
        (simplified names, E.164 phones, normalised IDs and addresses):
        skip that work.
    extra_fields : dict, optional
        More columns of ``frame`` to compare, column → kind: ``"text"``
        (Jaro-Winkler / token-sorted ratio levels), ``"exact"`` (same value or
        not) or ``"number"`` (same, one edit off, different; for house numbers
        and other codes). Each is its own Fellegi–Sunter field with ``u``
        from random pairs and ``m`` by EM like the built-in fields (see
        :data:`ringscope.detectors.resolution.matching.EXTRA_KINDS`); values are compared lower-cased.
    address_tokens : bool
        Compare ``address`` also with the words sorted (rapidfuzz
        ``token_sort_ratio``), so reordered address words still agree.

    Returns
    -------
    Resolution

    Example
    -------
    >>> frame = pd.DataFrame({
    ...     "record_id": ["a", "b", "c", "d"],
    ...     "name": ["張偉", "张伟", "Zhang Wei", "张伟"],
    ...     "dob": ["1990-01-02", "1990-01-02", "1990-01-02", "1975-06-30"],
    ...     "phone": ["13800138000", "138 0013 8000", "13800138000", "13900000001"]})
    >>> res = resolve_records(frame, workers=1)
    >>> res.entities["entity_id"].tolist()
    ['a', 'a', 'a', 'd']

    Notes
    -----
    Cost: O(n log n) blocking + O(candidate pairs) comparisons in C; EM runs
    over the distinct comparison patterns (a few hundred), not the pairs.
    """
    check_param(
        "resolve_records",
        "threshold",
        threshold,
        isinstance(threshold, (int, float)) and 0 < threshold < 1,
        "a float in (0, 1)",
    )
    check_param("resolve_records", "max_block", max_block, isinstance(max_block, int) and max_block >= 2, "an int >= 2")
    kinds = dict(extra_fields or {})
    for f, kind in kinds.items():
        check_param(
            "resolve_records",
            "extra_fields",
            extra_fields,
            f in frame.columns and f not in _VALUE_COLUMN and f not in _RESERVED and kind in EXTRA_KINDS,
            f"a dict of frame columns (not the built-in fields) to one of {sorted(EXTRA_KINDS)}",
        )
    rng = np.random.default_rng(seed)
    recs, fields = _prepare(frame, normalized, kinds, address_tokens)
    del frame  # the prepared copy is all that is read from here on (a caller's temporary goes now)
    n = len(recs)
    li, ri, per_key, stats = candidate_pairs(recs, fields, max_block, blocking, kinds)
    stats["records"] = n
    arrays = _arrays(recs)
    levels, sims = _compare(arrays, li, ri, fields, workers, kinds, address_tokens)
    u = (
        _estimate_u(arrays, fields, workers, rng, kinds=kinds, address_tokens=address_tokens)
        if n >= 2
        else {f: dict(_prior_u(f, kinds)) for f in fields}
    )
    # m: EM per blocking key, on the fields that key does not constrain
    pair_code = li * n + ri
    estimates: dict[str, list[dict[int, float]]] = {f: [] for f in fields}
    for name, _key, used in blocking_keys(recs, fields, kinds):
        codes = per_key.get(name)  # None when not selected
        if codes is None or len(codes) < 20:
            continue
        if len(codes) > 300_000:
            codes = rng.choice(codes, 300_000, replace=False)
        rows = np.searchsorted(pair_code, codes)
        free = [f for f in fields if f not in used]
        if not free:
            continue
        m_k, _lam = _em_m({f: levels[f][rows] for f in free}, free, u, kinds=kinds)
        for f in free:
            estimates[f].append(m_k[f])
    m = {}
    for f in fields:
        if estimates[f]:
            m[f] = {lvl: float(np.mean([e[lvl] for e in estimates[f]])) for lvl in _prior_m(f, kinds)}
        else:
            m[f] = dict(_prior_m(f, kinds))
    model: dict[str, Any] = {"m": m, "u": u}
    tf = _term_frequencies(recs, fields)
    bits_by_field = _field_bits(arrays, li, levels, model, tf, fields)
    # the fields' bits added in order, as np.sum(axis=0) of their stack adds them, without the stack
    bits = bits_by_field.pop(fields[0]) if fields else np.zeros(len(li))
    for f in fields[1:]:
        bits += bits_by_field.pop(f)
    del bits_by_field
    total_pairs = n * (n - 1) // 2
    model["prior"] = _fit_prior(bits, total_pairs)
    score = _probability(bits, model["prior"])
    linked = score >= threshold
    out = score >= min(0.5, threshold)
    # only the kept pairs' similarities and levels are read from here on (the pairs table)
    sims = {f: sims[f][out] for f in fields}
    levels = {f: levels[f][out] for f in fields}
    labels, keep = cluster_pairs(n, li[linked], ri[linked], score[linked], recs)
    stats["linked_pairs"] = int(linked.sum())
    stats["chaining_edges_dropped"] = int((~keep).sum())
    # record ids as the records' Arrow text (taken, not a Python string per record and use)
    rid = recs["record_id"].reset_index(drop=True).astype("str").array
    entity = entity_ids(rid, labels)
    entities = pd.DataFrame({"record_id": rid, "entity_id": entity})
    stats["entities"] = int(pd.Series(entity).nunique())
    pairs = pd.DataFrame(
        {"left": rid.take(li[out]), "right": rid.take(ri[out]), "score": score[out], "weight": bits[out]}
    )
    for f in fields:
        pairs[f] = sims[f]
        pairs[f + "_level"] = levels[f]
    merged = np.zeros(len(li), dtype=bool)
    merged[np.flatnonzero(linked)[keep]] = True
    pairs["merged"] = merged[out]
    pairs = pairs.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)
    return Resolution(
        entities=entities,
        pairs=pairs,
        stats=stats,
        model=model,
        records=recs,
        fields=fields,
        extra_fields=kinds,
        address_tokens=address_tokens,
        _tf=tf,
        _arrays=arrays,
    )
