"""Identity resolution: who is really behind each Person and Company record.

Fraud rings reuse people under slightly different identities, and honest
customers type their own details inconsistently (traditional characters,
pinyin, a wrong digit). This module decides which records are one entity and
reports the conflicts that are fraud signals in themselves.

The generic engine, :func:`resolve_records`, is a Fellegi–Sunter record
linkage in the style of Splink, vectorised end to end:

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
   see :data:`detectors.matching.LEVELS`. More columns can be compared as
   generic ``text`` / ``exact`` / ``number`` fields (``extra_fields``, see
   :data:`detectors.matching.EXTRA_KINDS`), each its own field with its own
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

:class:`IdentityResolution` runs this over the portfolio's persons (with the
applicant phones and addresses) and its companies (by core name: 有限公司,
集团, city prefixes stripped), sets ``portfolio.person_entity`` /
``company_entity`` / ``similar_pairs``, and reports conflicts: one ID under
several unrelated names, one ID cycling through phones, one name + birth date
under several ID numbers, fuzzy duplicates under different IDs, and IDs that
fail their checksum.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from detectors.base import Detector, Evidence, Finding, check_param
from detectors.matching import (
    EXTRA_KINDS,
    LEVELS,
    anagram_key,
    block_pairs,
    compare_addresses,
    compare_codes,
    compare_dates,
    compare_extra,
    compare_ids,
    compare_name_parts,
    compare_names,
    gb11643_ok,
)
from detectors.portfolio import _isin, as_portfolio

__all__ = ["Resolution", "resolve_records", "IdentityResolution", "IdentityStatistics", "application_entities",
           "company_core_name"]

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


def _extra_column(f: str) -> str:
    return "x:" + f


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
        levels, sims = _compare(self._arrays, li, ri, self.fields, workers=1, kinds=kinds,
                                address_tokens=self.address_tokens)
        bits = _field_bits(self._arrays, li, levels, self.model, self._tf, self.fields)
        out: dict[str, Any] = {}
        total = 0.0
        for f in self.fields:
            lvl = int(levels[f][0])
            w = float(bits[f][0])
            total += w
            col = _extra_column(f) if f in kinds else _VALUE_COLUMN[f]
            meanings = EXTRA_KINDS[kinds[f]] if f in kinds else LEVELS[f]
            out[f] = {"left": recs[col].iat[li[0]], "right": recs[col].iat[ri[0]], "level": lvl,
                      "meaning": "missing" if lvl == _MISSING else meanings[lvl],
                      "similarity": None if np.isnan(sims[f][0]) else round(float(sims[f][0]), 3),
                      "weight_bits": round(w, 2), "agreed": lvl > 0}
        prior = self.model["prior"]
        score = _probability(np.array([total]), prior)[0]
        return {"left": str(left), "right": str(right), "score": float(score), "weight_bits": total,
                "prior": prior, "fields": out}


#: names an extra field cannot take (columns of ``Resolution.pairs``)
_RESERVED = {"record_id", "left", "right", "score", "weight", "merged"}

_VALUE_COLUMN = {"name": "name_norm", "given_name": "given", "surname": "surname", "id_number": "id",
                 "dob": "dob", "phone": "phone", "address": "address", "postcode": "postcode"}


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


def _prepare(frame: pd.DataFrame, normalized: bool = False, extra: dict[str, str] | None = None,
             address_tokens: bool = False) -> tuple[pd.DataFrame, tuple[str, ...]]:
    from ingest.normalize import (
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
        recs[_extra_column(f)] = text.to_numpy()
        fields.append(f)
    for c in recs.columns:
        if c not in ("record_id", "id_ok"):
            recs[c] = recs[c].astype("str")
    return recs, tuple(fields)


# ---------------------------------------------------------------------------
# comparison and weights
# ---------------------------------------------------------------------------

def _arrays(recs: pd.DataFrame) -> dict[str, np.ndarray]:
    """Columns as numpy object arrays (convert once, index many times)."""
    return {c: recs[c].to_numpy(dtype=object, na_value=np.nan) if c != "id_ok" else recs[c].to_numpy(bool)
            for c in recs.columns}


def _compare(arrays: dict[str, np.ndarray], li: np.ndarray, ri: np.ndarray, fields: tuple[str, ...],
             workers: int, kinds: dict[str, str] | None = None, address_tokens: bool = False
             ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    levels: dict[str, np.ndarray] = {}
    sims: dict[str, np.ndarray] = {}

    def v(c: str, idx: np.ndarray) -> np.ndarray:
        return arrays[c][idx]

    kinds = kinds or {}
    for f in fields:
        if f in kinds:
            c = _extra_column(f)
            lv, sim = compare_extra(v(c, li), v(c, ri), kinds[f], workers=workers)
        elif f == "name":
            lv, sim = compare_names(v("name_norm", li), v("name_norm", ri), v("name_key", li), v("name_key", ri),
                                    workers=workers)
        elif f in ("given_name", "surname"):
            c = "given" if f == "given_name" else "surname"
            lv, sim = compare_name_parts(v(c, li), v(c, ri), workers=workers)
        elif f == "id_number":
            ok = arrays["id_ok"]
            lv, sim = compare_ids(v("id", li), v("id", ri), ok[li], ok[ri], workers=workers)
        elif f == "dob":
            lv, sim = compare_dates(v("dob", li), v("dob", ri), workers=workers)
        elif f in ("phone", "postcode"):
            lv, sim = compare_codes(v(f, li), v(f, ri), workers=workers)
        else:
            lv, sim = compare_addresses(v("address", li), v("address", ri), workers=workers)
            if address_tokens:
                # same words in another order: at least the level of the token-sorted similarity
                lv_t, sim_t = compare_addresses(v("address_words", li), v("address_words", ri), workers=workers,
                                                tokens=True)
                lv, sim = np.maximum(lv, np.minimum(lv_t, 2)), np.fmax(sim, sim_t)
        levels[f] = lv.astype(np.int8)
        sims[f] = sim.astype(np.float64)
    if "given_name" in fields and "surname" in fields:
        # given name and surname swapped between the two records: compare crosswise
        cross_g, _ = compare_name_parts(v("given", li), v("surname", ri), workers=workers)
        cross_s, _ = compare_name_parts(v("surname", li), v("given", ri), workers=workers)
        cross = np.minimum(cross_g, cross_s)
        swapped = (cross > np.minimum(levels["given_name"], levels["surname"])) & (cross >= 2)
        levels["given_name"] = np.where(swapped, cross_g, levels["given_name"]).astype(np.int8)
        levels["surname"] = np.where(swapped, cross_s, levels["surname"]).astype(np.int8)
    return levels, sims


def _estimate_u(arrays: dict[str, np.ndarray], fields: tuple[str, ...], workers: int, rng: np.random.Generator,
                sample: int = 200_000, kinds: dict[str, str] | None = None, address_tokens: bool = False
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


def _em_m(levels: dict[str, np.ndarray], fields: list[str], u: dict[str, dict[int, float]],
          iterations: int = 30, kinds: dict[str, str] | None = None) -> tuple[dict[str, dict[int, float]], float]:
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


def _field_bits(arrays: dict[str, np.ndarray], li: np.ndarray, levels: dict[str, np.ndarray], model: dict,
                tf: dict[str, pd.Series], fields: tuple[str, ...]) -> dict[str, np.ndarray]:
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
# blocking
# ---------------------------------------------------------------------------

def _blocking_keys(recs: pd.DataFrame, fields: tuple[str, ...], kinds: dict[str, str] | None = None
                   ) -> list[tuple[str, pd.Series, set[str]]]:
    """(name, key per record, fields the key constrains)."""
    keys: list[tuple[str, pd.Series, set[str]]] = []
    name_fields = {"name", "given_name", "surname"} & set(fields)
    if "id_number" in fields:
        keys.append(("id", recs["id"], {"id_number", "dob"}))
        keys.append(("region_dob", recs["region_dob"], {"id_number", "dob"}))
    if "phone" in fields:
        keys.append(("phone", recs["phone"], {"phone"}))
    if name_fields:
        keys.append(("name_dob", recs["name_key"] + "|" + recs["dob"], name_fields | {"dob"}))
        keys.append(("name", recs["name_key"], set(name_fields)))
    if "postcode" in fields:
        surname = recs["surname"] if "surname" in fields else recs["name_norm"].str[:1]
        keys.append(("surname_postcode", surname + "|" + recs["postcode"], {"surname", "name", "postcode"}))
        keys.append(("dob_postcode", recs["dob"] + "|" + recs["postcode"], {"dob", "postcode"}))
    if "given_name" in fields:
        keys.append(("given_dob", recs["given"] + "|" + recs["dob"], {"given_name", "dob"}))
        keys.append(("surname_dob", recs["surname"] + "|" + recs["dob"], {"surname", "dob"}))
        if "postcode" in fields:
            keys.append(("given_postcode", recs["given"] + "|" + recs["postcode"], {"given_name", "postcode"}))
    if "address" in fields:
        keys.append(("address", recs["address"], {"address"}))
    # an extra text or number field blocks together with the birth date, the
    # postcode, the surname and the given name (one corrupted field does not
    # hide a duplicate)
    for f, kind in (kinds or {}).items():
        if kind == "exact":
            continue
        value = recs[_extra_column(f)]
        if "dob" in fields:
            keys.append((f + "_dob", value + "|" + recs["dob"], {f, "dob"}))
        if "postcode" in fields:
            keys.append((f + "_postcode", value + "|" + recs["postcode"], {f, "postcode"}))
        if "surname" in fields:
            keys.append((f + "_surname", value + "|" + recs["surname"], {f, "surname"}))
        if "given_name" in fields:
            keys.append((f + "_given", value + "|" + recs["given"], {f, "given_name"}))
    return keys


def _candidates(recs: pd.DataFrame, fields: tuple[str, ...], max_block: int, only: tuple[str, ...] | None,
                kinds: dict[str, str] | None = None
                ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], dict[str, Any]]:
    n = len(recs)
    year = pd.factorize(recs["dob"].str[:4], use_na_sentinel=True)[0]
    all_codes = []
    per_key: dict[str, np.ndarray] = {}
    stats: dict[str, Any] = {"blocks": {}}
    for name, key, _ in _blocking_keys(recs, fields, kinds):
        if only is not None and name not in only:
            continue
        codes = pd.factorize(key, use_na_sentinel=True)[0]
        left, right, s = block_pairs(codes, max_block=max_block, sub_codes=year)
        pair_codes = np.unique(left * n + right)
        per_key[name] = pair_codes
        all_codes.append(pair_codes)
        stats["blocks"][name] = {"pairs": int(len(pair_codes)), **s}
    union = np.unique(np.concatenate(all_codes)) if all_codes else np.zeros(0, np.int64)
    stats["candidate_pairs"] = int(len(union))
    return union // max(n, 1), union % max(n, 1), per_key, stats


# ---------------------------------------------------------------------------
# clustering
# ---------------------------------------------------------------------------

def _cluster(n: int, li: np.ndarray, ri: np.ndarray, score: np.ndarray, recs: pd.DataFrame
             ) -> tuple[np.ndarray, np.ndarray]:
    """Component label per record and a mask of kept edges (chaining guard)."""
    graph = sparse.coo_matrix((np.ones(len(li)), (li, ri)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    keep = np.ones(len(li), dtype=bool)
    valid = recs["id_ok"].to_numpy() & recs["id"].notna().to_numpy()
    if not valid.any() or len(li) == 0:
        return labels, keep
    ids = recs["id"].to_numpy()
    dobs = recs["dob"].fillna("").to_numpy()
    anchor = pd.DataFrame({"label": labels[valid], "dob": dobs[valid]})
    conflicted = anchor.groupby("label")["dob"].nunique()
    conflicted = conflicted[conflicted > 1].index.to_numpy()
    if len(conflicted) == 0:
        return labels, keep
    # rebuild only the conflicted components, strongest edge first
    in_conf = np.isin(labels[li], conflicted)
    edge_idx = np.flatnonzero(in_conf)
    edge_idx = edge_idx[np.argsort(-score[edge_idx], kind="stable")]
    parent: dict[int, int] = {}
    anchors: dict[int, set[tuple[str, str]]] = {}

    def find(x: int) -> int:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def anchor_of(x: int) -> set[tuple[str, str]]:
        return anchors.setdefault(x, {(ids[x], dobs[x])} if valid[x] else set())

    for e in edge_idx:
        a, b = find(int(li[e])), find(int(ri[e]))
        if a == b:
            continue
        sa, sb = anchor_of(a), anchor_of(b)
        if sa and sb and {d for _, d in sa}.isdisjoint({d for _, d in sb}):
            keep[e] = False
            continue
        parent[b] = a
        anchors[a] = sa | sb
    graph = sparse.coo_matrix((np.ones(int(keep.sum())), (li[keep], ri[keep])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return labels, keep


def _entity_ids(record_ids: np.ndarray, labels: np.ndarray) -> np.ndarray:
    frame = pd.DataFrame({"rid": record_ids, "label": labels})
    smallest = frame.groupby("label")["rid"].min()
    return smallest.reindex(labels).to_numpy()


# ---------------------------------------------------------------------------
# public engine
# ---------------------------------------------------------------------------

def resolve_records(frame: pd.DataFrame, *, threshold: float = 0.9, workers: int = -1, max_block: int = 200,
                    seed: int = 0, blocking: tuple[str, ...] | None = None, normalized: bool = False,
                    extra_fields: dict[str, str] | None = None, address_tokens: bool = False) -> Resolution:
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
        :data:`detectors.matching.EXTRA_KINDS`); values are compared lower-cased.
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
    check_param("resolve_records", "threshold", threshold,
                isinstance(threshold, (int, float)) and 0 < threshold < 1, "a float in (0, 1)")
    check_param("resolve_records", "max_block", max_block, isinstance(max_block, int) and max_block >= 2,
                "an int >= 2")
    kinds = dict(extra_fields or {})
    for f, kind in kinds.items():
        check_param("resolve_records", "extra_fields", extra_fields,
                    f in frame.columns and f not in _VALUE_COLUMN and f not in _RESERVED and kind in EXTRA_KINDS,
                    f"a dict of frame columns (not the built-in fields) to one of {sorted(EXTRA_KINDS)}")
    rng = np.random.default_rng(seed)
    recs, fields = _prepare(frame, normalized, kinds, address_tokens)
    n = len(recs)
    li, ri, per_key, stats = _candidates(recs, fields, max_block, blocking, kinds)
    stats["records"] = n
    arrays = _arrays(recs)
    levels, sims = _compare(arrays, li, ri, fields, workers, kinds, address_tokens)
    u = (_estimate_u(arrays, fields, workers, rng, kinds=kinds, address_tokens=address_tokens) if n >= 2
         else {f: dict(_prior_u(f, kinds)) for f in fields})
    # m: EM per blocking key, on the fields that key does not constrain
    pair_code = li * n + ri
    estimates: dict[str, list[dict[int, float]]] = {f: [] for f in fields}
    for name, _key, used in _blocking_keys(recs, fields, kinds):
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
    bits = np.sum([bits_by_field[f] for f in fields], axis=0) if fields else np.zeros(len(li))
    total_pairs = n * (n - 1) // 2
    model["prior"] = _fit_prior(bits, total_pairs)
    score = _probability(bits, model["prior"])
    linked = score >= threshold
    labels, keep = _cluster(n, li[linked], ri[linked], score[linked], recs)
    stats["linked_pairs"] = int(linked.sum())
    stats["chaining_edges_dropped"] = int((~keep).sum())
    entity = _entity_ids(recs["record_id"].to_numpy(), labels)
    entities = pd.DataFrame({"record_id": recs["record_id"].to_numpy(), "entity_id": entity})
    stats["entities"] = int(pd.Series(entity).nunique())
    out = score >= min(0.5, threshold)
    rid = recs["record_id"].to_numpy()
    pairs = pd.DataFrame({"left": rid[li[out]], "right": rid[ri[out]], "score": score[out], "weight": bits[out]})
    for f in fields:
        pairs[f] = sims[f][out]
        pairs[f + "_level"] = levels[f][out]
    merged = np.zeros(len(li), dtype=bool)
    merged[np.flatnonzero(linked)[keep]] = True
    pairs["merged"] = merged[out]
    pairs = pairs.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)
    return Resolution(entities=entities, pairs=pairs, stats=stats, model=model, records=recs, fields=fields,
                      extra_fields=kinds, address_tokens=address_tokens, _tf=tf, _arrays=arrays)


# ---------------------------------------------------------------------------
# companies
# ---------------------------------------------------------------------------

_COMPANY_SUFFIX = re.compile(r"(股份有限公司|有限责任公司|有限公司|股份公司|集团|股份|公司)")
_COMPANY_CITY = re.compile(r"^(?:[\u4e00-\u9fff]{2,7}?(?:省|自治区))?(?:[\u4e00-\u9fff]{2,7}?(?:市|自治州|地区|盟))?"
                           r"(?:[\u4e00-\u9fff]{1,5}?(?:区|县|旗))?")
_PAREN = re.compile(r"[(（][^)）]*[)）]")


def company_core_name(names: pd.Series) -> pd.DataFrame:
    """Core of company names for comparison, and the city prefix removed.

    Traditional → simplified, bracketed parts, legal-form suffixes (有限公司,
    有限责任公司, 股份, 集团) and a leading province/city/district prefix go.

    Example
    -------
    >>> company_core_name(pd.Series(["深圳市鸿宇物流有限公司", "鴻宇物流（深圳）有限公司", "鸿宇物流集团"])).values.tolist()
    [['鸿宇物流', '深圳市'], ['鸿宇物流', ''], ['鸿宇物流', '']]
    """
    from ingest.normalize import normalize_names

    norm = normalize_names(names.astype("str"))["name"].astype("str").fillna("").str.replace(" ", "", regex=False)
    norm = norm.str.replace(_PAREN, "", regex=True)
    city = norm.str.extract(f"({_COMPANY_CITY.pattern})", expand=False).fillna("")
    core = norm.str.slice(0).str.replace(_COMPANY_CITY, "", regex=True).str.replace(_COMPANY_SUFFIX, "", regex=True)
    core = core.where(core.str.len() >= 2, norm.str.replace(_COMPANY_SUFFIX, "", regex=True))
    return pd.DataFrame({"core": core.to_numpy(), "city": city.to_numpy()}, index=names.index)


def _resolve_companies(companies: pd.DataFrame) -> tuple[pd.Series, pd.DataFrame]:
    """Entity per company key, and the SIMILAR_TO pairs (member → entity)."""
    empty = pd.DataFrame(columns=["src", "dst", "score", "features", "method"])
    if companies.empty:
        return pd.Series(dtype=object), empty
    c = companies[["key", "name"]].copy()
    c["name"] = c["name"].astype("str")
    c = c.join(company_core_name(c["name"].fillna("")))
    c["valid_uscc"] = ~c["key"].astype(str).str.startswith("name:")
    if "uscc_valid" in companies.columns:
        c["valid_uscc"] &= companies["uscc_valid"].fillna(False).astype(bool).to_numpy()
    c = c[c["core"].str.len() >= 2]
    # one group per core name; split by city when the group names several
    # cities, and keep apart groups holding two different valid codes
    cities = c[c["city"] != ""].groupby("core")["city"].nunique()
    multi_city = c["core"].map(cities).fillna(0) > 1
    c["group"] = c["core"].where(~multi_city, c["core"] + "|" + c["city"])
    c = c[~(multi_city & (c["city"] == ""))]  # ambiguous: which city's company?
    valid = c[c["valid_uscc"]].groupby("group")["key"].nunique()
    c = c[c["group"].map(valid).fillna(0) <= 1]
    sizes = c.groupby("group")["key"].transform("size")
    c = c[sizes >= 2]
    if c.empty:
        return pd.Series(dtype=object), empty
    entity = c.groupby("group")["key"].transform("min")
    mapping = pd.Series(entity.to_numpy(), index=c["key"].to_numpy())
    pairs = c.assign(dst=entity)[c["key"].to_numpy() != entity.to_numpy()]
    feats = [json.dumps({"core_name": g.split("|")[0], "city": city or None}, ensure_ascii=False)
             for g, city in zip(pairs["group"], pairs["city"])]
    out = pd.DataFrame({"src": pairs["key"].to_numpy(), "dst": pairs["dst"].to_numpy(), "score": 0.9,
                        "features": feats, "method": "core_name"})
    return mapping, out


# ---------------------------------------------------------------------------
# the detector
# ---------------------------------------------------------------------------

def _features_json(row: pd.Series, fields: tuple[str, ...]) -> str:
    out = {}
    for f in fields:
        sim = row[f]
        out[f] = {"similarity": None if pd.isna(sim) else round(float(sim), 3), "level": int(row[f + "_level"])}
    return json.dumps(out, ensure_ascii=False)


def _fmt_day(ts) -> str:
    return "" if pd.isna(ts) else pd.Timestamp(ts).strftime("%Y-%m-%d")


def _no_pairs() -> pd.DataFrame:
    return pd.DataFrame(columns=["src", "dst", "score", "features", "method"])


@dataclass
class IdentityStatistics:
    """What :meth:`IdentityResolution.statistics` decides over the whole book.

    Attributes
    ----------
    resolution : Resolution or None
        :func:`resolve_records` over every Person record: the model (``m``,
        ``u``, prior), term frequencies, scored pairs and entities.
    person_entity, company_entity : Series
        Record key → entity id (the smallest key of its entity), for the
        keys merged with another; what a full ``detect`` assigns.
    anon_pairs, company_pairs : DataFrame
        SIMILAR_TO pairs of anonymous parties and of companies.
    phone_persons : Series
        Phone → distinct applicants (ID numbers) who gave it.
    name_dob : Series
        Record key → pinyin name key + birth date, for records with an ID.
    """

    resolution: Resolution | None = None
    person_entity: pd.Series = field(default_factory=lambda: pd.Series(dtype=object))
    anon_pairs: pd.DataFrame = field(default_factory=_no_pairs)
    company_entity: pd.Series = field(default_factory=lambda: pd.Series(dtype=object))
    company_pairs: pd.DataFrame = field(default_factory=_no_pairs)
    phone_persons: pd.Series = field(default_factory=lambda: pd.Series(dtype="int64"))
    name_dob: pd.Series = field(default_factory=lambda: pd.Series(dtype=object))


def _restricted(res: Resolution, keys: pd.Index) -> Resolution:
    """``res`` over the records ``keys`` only (their pairs, same model)."""
    held = _isin(res.records["record_id"], keys)
    unknown = keys[~_isin(keys, res.records["record_id"])]
    if len(unknown):
        raise ValueError(f"{len(unknown)} person record(s) (e.g. {unknown[0]!r}) are not in the identity "
                         "statistics: they were computed before these records arrived; compute them over the "
                         "current portfolio")
    if held.all():
        return res
    recs = res.records[held].reset_index(drop=True)
    pairs = res.pairs[_isin(res.pairs["left"], keys) & _isin(res.pairs["right"], keys)].reset_index(drop=True)
    return Resolution(entities=res.entities[held].reset_index(drop=True), pairs=pairs, stats=res.stats,
                      model=res.model, records=recs, fields=res.fields, extra_fields=res.extra_fields,
                      address_tokens=res.address_tokens, _tf=res._tf, _arrays=_arrays(recs))


@dataclass(frozen=True, kw_only=True)
class IdentityResolution(Detector):
    """Resolve persons and companies; report identity conflicts.

    Parameters
    ----------
    threshold : float
        Match probability at or above which two Person records are one entity.
    max_block : int
        Largest blocking block compared (see :func:`resolve_records`).
    window_days : int
        Applications this close in time count as "at once": a phone change
        or a second identity inside the window is suspicious, a change
        across years is a customer getting a new number.
    checksum_score : float
        Score of the per-application finding "ID fails its checksum".
    workers : int
        rapidfuzz workers (-1 = all cores).

    Example
    -------
    >>> import tempfile
    >>> from graph.embedded import EmbeddedStore
    >>> IdentityResolution().run(EmbeddedStore(tempfile.mkdtemp()))
    []

    Notes
    -----
    Cost: one :func:`resolve_records` over the persons (blocking + C string
    comparisons over candidate pairs), then pandas group-bys over the
    applications; no loop over all applications.
    """

    name: ClassVar[str] = "identity"
    threshold: float = 0.9
    max_block: int = 200
    window_days: int = 90
    checksum_score: float = 0.25
    workers: int = -1

    def __post_init__(self) -> None:
        owner = type(self).__name__
        check_param(owner, "threshold", self.threshold,
                    isinstance(self.threshold, (int, float)) and 0 < self.threshold < 1, "a float in (0, 1)")
        check_param(owner, "max_block", self.max_block, isinstance(self.max_block, int) and self.max_block >= 2,
                    "an int >= 2")
        check_param(owner, "window_days", self.window_days,
                    isinstance(self.window_days, int) and self.window_days >= 1, "an int >= 1")
        check_param(owner, "checksum_score", self.checksum_score,
                    isinstance(self.checksum_score, (int, float)) and 0 <= self.checksum_score <= 1,
                    "a float in [0, 1]")
        check_param(owner, "workers", self.workers, isinstance(self.workers, int) and self.workers != 0,
                    "a non-zero int")

    # -- orchestration --------------------------------------------------------
    def statistics(self, portfolio) -> IdentityStatistics:
        """The identity model fitted and applied over the whole book.

        Fitting the model *is* resolving the book: the prior is fitted over
        every candidate pair's weight, so every candidate pair is compared
        anyway, and scoring, clustering (chaining guard included) and the
        company groups cost little on top. What comes out decides every
        record's entity as a full run does; the scope only adds the findings.

        Example
        -------
        >>> import tempfile
        >>> from graph.embedded import EmbeddedStore
        >>> IdentityResolution().statistics(EmbeddedStore(tempfile.mkdtemp())).resolution is None
        True

        Notes
        -----
        Cost: the whole of :func:`resolve_records` over the persons (its u
        sample of 200,000 random pairs is a fixed part), the anonymous-party
        and company groupings (pandas merges and group-bys); no findings.
        """
        portfolio = as_portfolio(portfolio)
        persons = portfolio.persons
        apps = portfolio.applications
        if persons.empty or apps.empty:
            return IdentityStatistics()
        applied = apps[apps["person"].notna()].reset_index(drop=True)
        records = self._person_records(portfolio, persons, applied)
        # every person carries an ID-derived birth date: a bare pinyin key would
        # only add millions of same-name pairs that the other keys already cover
        res = resolve_records(records, threshold=self.threshold, workers=self.workers, max_block=self.max_block,
                              blocking=("id", "region_dob", "phone", "name_dob", "address"), normalized=True)
        merged = res.pairs[res.pairs["merged"]]
        anon_pairs = self._anon_pairs(portfolio, persons)
        edges = pd.concat([pd.DataFrame({"src": merged["left"].to_numpy(), "dst": merged["right"].to_numpy()}),
                           anon_pairs[["src", "dst"]]], ignore_index=True)
        company_entity, company_pairs = _resolve_companies(portfolio.companies)
        recs = res.records
        real = recs["id"].notna() & recs["name_key"].notna() & recs["dob"].notna()
        return IdentityStatistics(
            resolution=res, person_entity=_pairs_to_entities(edges), anon_pairs=anon_pairs,
            company_entity=company_entity, company_pairs=company_pairs,
            phone_persons=applied.groupby("phone")["person"].nunique(),
            name_dob=pd.Series((recs["name_key"] + "|" + recs["dob"])[real].to_numpy(),
                               index=recs["record_id"][real].to_numpy()))

    def scope(self, portfolio, app_ids, statistics: IdentityStatistics | None = None):
        """The applications and persons whose findings can hold one of ``app_ids``.

        Entities come from ``statistics`` (every record resolved over the
        whole book), so the scope only has to hold what the findings read:
        the applications of each target's applicant (names and phones under
        one ID), every record of the applicant's resolved entity (fuzzy
        duplicates), every record sharing the name + birth date of one of
        those (one name + birth date under several IDs, and what says whether
        a fuzzy duplicate is already reported that way), and all their
        applications, which a finding lists as members.

        Example
        -------
        >>> import tempfile
        >>> from graph.embedded import EmbeddedStore
        >>> from detectors.portfolio import Portfolio
        >>> IdentityResolution().scope(Portfolio(EmbeddedStore(tempfile.mkdtemp())), ["A1"]).applications.shape[0]
        0

        Notes
        -----
        Cost: ``isin`` over the entity map, the name + birth-date keys and the
        applications: O(n), no comparison.
        """
        portfolio = as_portfolio(portfolio)
        stats = self.statistics(portfolio) if statistics is None else statistics
        apps = portfolio.applications
        targets = _isin(apps["application_id"], list(map(str, app_ids)))
        applicants = pd.Index(apps.loc[targets, "person"].dropna().astype(str).unique())
        ent = stats.person_entity
        their = ent.reindex(applicants).dropna().unique()
        held = applicants.union(pd.Index(ent.index[_isin(ent, their)].astype(str)))
        nd = stats.name_dob
        peers = nd.index[_isin(nd, nd.reindex(held).dropna().unique())]
        persons = held.union(pd.Index(peers.astype(str)))
        chosen = targets | _isin(apps["person"], persons)
        return portfolio.subset(apps.loc[chosen, "application_id"], persons=persons)

    def run(self, source, statistics: IdentityStatistics | None = None) -> list[Finding]:
        portfolio = as_portfolio(source)
        stats = self.statistics(portfolio) if statistics is None else statistics
        # entities are the whole book's (a scope carries them to the rest of the book)
        portfolio.person_entity = stats.person_entity
        portfolio.company_entity = stats.company_entity
        persons = portfolio.persons
        apps = portfolio.applications
        if persons.empty or apps.empty or stats.resolution is None:
            portfolio.similar_pairs = {}
            return []
        keys = pd.Index(persons["key"].astype(str))
        res = _restricted(stats.resolution, keys)
        ap = self._applicant_records(portfolio)
        person_pairs = self._person_pairs(res)
        anon = stats.anon_pairs
        all_pairs = pd.concat([person_pairs, anon[_isin(anon["src"], keys) & _isin(anon["dst"], keys)]],
                              ignore_index=True)
        firms = pd.Index(portfolio.companies["key"].astype(str)) if len(portfolio.companies) else pd.Index([])
        company = stats.company_pairs
        company_pairs = company[_isin(company["src"], firms) & _isin(company["dst"], firms)]
        portfolio.similar_pairs = {"Person-SIMILAR_TO-Person": all_pairs,
                                   "Company-SIMILAR_TO-Company": company_pairs}
        findings: list[Finding] = []
        findings += self._id_conflicts(ap, stats.phone_persons)
        findings += self._multi_id(ap, res, stats.person_entity[_isin(stats.person_entity.index, keys)])
        findings += self._checksum(ap)
        findings.sort(key=lambda f: (-f.score, f.members))
        return findings

    # -- records ----------------------------------------------------------------
    def _applicant_records(self, portfolio) -> pd.DataFrame:
        from ingest.normalize import name_pinyin_key

        apps = portfolio.applications
        raw = portfolio.nodes("Application", ["applicant_id_number_raw"]).set_index("key")["applicant_id_number_raw"]
        ap = apps[["application_id", "person", "applicant_name", "applicant_name_raw", "phone", "address",
                   "applied_at", "id_checksum_ok"]].copy()
        ap = ap[ap["person"].notna()]
        ap["id_raw"] = raw.reindex(ap["application_id"]).to_numpy()
        name = ap["applicant_name"].astype("str").fillna("")
        ap["name_norm"] = name.str.replace(" ", "", regex=False)
        ap["name_key"] = anagram_key(name_pinyin_key(ap["applicant_name_raw"].astype("str"))).to_numpy()
        return ap.reset_index(drop=True)

    def _person_records(self, portfolio, persons: pd.DataFrame, applied: pd.DataFrame) -> pd.DataFrame:
        """One record per Person: its name, ID, birth date, and the phone and
        address of its latest application (else its guarantor phone)."""
        latest = applied.sort_values("applied_at", kind="stable").groupby("person")[["phone", "address"]].last()
        gphone = portfolio.rels("Person-GUARANTOR_PHONE-Phone").drop_duplicates("src").set_index("src")["dst"]
        keys = persons["key"].astype(str)
        anon = keys.str.startswith("anon:").to_numpy()
        phone = latest["phone"].reindex(keys).astype(object)
        phone = phone.where(phone.notna(), gphone.reindex(keys).astype(object))
        frame = pd.DataFrame({
            "record_id": keys.to_numpy(),
            "name": persons["name"].astype("str").to_numpy(),
            "id_number": np.where(anon, None, keys.to_numpy()),
            "dob": pd.to_datetime(persons["birth_date"], errors="coerce").to_numpy(),
            "phone": phone.to_numpy(),
            "address": latest["address"].reindex(keys).to_numpy(),
        })
        frame["dob"] = pd.to_datetime(frame["dob"], errors="coerce")
        return frame

    def _person_pairs(self, res: Resolution) -> pd.DataFrame:
        merged = res.pairs[res.pairs["merged"]]
        feats = [_features_json(row, res.fields) for _, row in merged.iterrows()] if len(merged) < 200_000 else \
            merged[list(res.fields)].round(3).to_json(orient="records", lines=True).splitlines()
        return pd.DataFrame({"src": merged["left"].to_numpy(), "dst": merged["right"].to_numpy(),
                             "score": merged["score"].astype(float).to_numpy(), "features": feats,
                             "method": "fellegi_sunter"})

    def _anon_pairs(self, portfolio, persons: pd.DataFrame) -> pd.DataFrame:
        """A registry person known only by name at company C is the applicant or
        role holder of C with that name, when exactly one such person exists."""
        empty = pd.DataFrame(columns=["src", "dst", "score", "features", "method"])
        keys = persons["key"].astype(str)
        anon = persons[keys.str.startswith("anon:")]
        if anon.empty:
            return empty
        parts = anon["key"].astype(str).str.split(":", n=2, expand=True)
        a = pd.DataFrame({"src": anon["key"].to_numpy(), "company": parts[1].to_numpy(),
                          "name": anon["name"].astype("str").fillna("").str.replace(" ", "").to_numpy()})
        apps = portfolio.applications
        named = persons.set_index("key")["name"].astype("str").fillna("").str.replace(" ", "")
        linked = pd.concat([
            apps[["person", "company"]].dropna(),
            portfolio.roles[["person", "company"]].dropna(),
        ], ignore_index=True).drop_duplicates()
        linked = linked[~linked["person"].astype(str).str.startswith("anon:")]
        linked["name"] = named.reindex(linked["person"]).to_numpy()
        m = a.merge(linked, on=["company", "name"])
        m = m[m.groupby("src")["person"].transform("nunique") == 1].drop_duplicates("src")
        feats = [json.dumps({"name": n, "company": c}, ensure_ascii=False) for n, c in zip(m["name"], m["company"])]
        return pd.DataFrame({"src": m["src"].to_numpy(), "dst": m["person"].to_numpy(), "score": 0.95,
                             "features": feats, "method": "name+company"})

    # -- findings -------------------------------------------------------------
    def _apps_of(self, ap: pd.DataFrame, persons) -> tuple[str, ...]:
        return tuple(sorted(ap.loc[ap["person"].isin(list(persons)), "application_id"].astype(str)))

    def _id_conflicts(self, ap: pd.DataFrame, users: pd.Series) -> list[Finding]:
        """One ID under unrelated names; else one ID cycling through phones
        (``users``: phone → distinct applicants who gave it, over the whole book)."""
        real = ap[~ap["person"].astype(str).str.startswith("anon:")]
        out: list[Finding] = []
        # --- names: (person, distinct name) nodes, joined when variants
        nm = real[real["name_norm"] != ""].drop_duplicates(["person", "name_norm"])
        multi = nm[nm.groupby("person")["name_norm"].transform("size") >= 2].reset_index(drop=True)
        name_groups = pd.Series(dtype="int64")
        if len(multi):
            code = pd.factorize(multi["person"])[0]
            li, ri, _ = block_pairs(code, max_block=10_000)
            lv, _sim = compare_names(multi["name_norm"].to_numpy()[li], multi["name_norm"].to_numpy()[ri],
                                     multi["name_key"].to_numpy()[li], multi["name_key"].to_numpy()[ri],
                                     workers=self.workers)
            var = lv >= 1
            g = sparse.coo_matrix((np.ones(var.sum()), (li[var], ri[var])), shape=(len(multi), len(multi)))
            _, comp = connected_components(g, directed=False)
            multi["group"] = comp
            name_groups = multi.groupby("person")["group"].nunique()
        conflicted = set(name_groups[name_groups >= 2].index)
        window = pd.Timedelta(days=self.window_days)
        multi_by_person = dict(tuple(multi[multi["person"].isin(conflicted)].groupby("person"))) if conflicted else {}
        for person, rows in real[real["person"].isin(conflicted)].groupby("person"):
            groups = multi_by_person[person]
            names = groups.groupby("group")["name_norm"].first().tolist()
            n_names = len(names)
            span = rows["applied_at"].max() - rows["applied_at"].min()
            phones = rows["phone"].dropna().unique()
            ev = [Evidence("id_multiple_names", 0.5 + min(0.1 * (n_names - 2), 0.2),
                           f"ID {person} was given with {n_names} unrelated names ({', '.join(names)}) on "
                           f"applications {', '.join(rows['application_id'])}; spelling, traditional/pinyin "
                           "variants and one-character typos were already treated as the same name.",
                           tuple(names))]
            if span <= window:
                ev.append(Evidence("short_time_span", 0.15, f"all within {span.days} days "
                                   f"({_fmt_day(rows['applied_at'].min())} to {_fmt_day(rows['applied_at'].max())}).",
                                   (span.days,)))
            if len(phones) >= 2:
                ev.append(Evidence("different_phones", 0.1, f"with {len(phones)} different phones: "
                                   f"{', '.join(phones)}.", tuple(phones)))
            score = min(sum(e.contribution for e in ev), 0.95)
            out.append(Finding(self.name, "id_multiple_names", tuple(sorted(rows["application_id"].astype(str))),
                               score, tuple(ev), self.params(),
                               f"一证多名 ID {person} used under {n_names} names: {' / '.join(names)}",
                               (("Person", str(person)),), tuple(("Phone", p) for p in phones)))
        # --- phones: a new number inside the window, or going back to an old one
        ph = real[real["phone"].notna() & ~real["person"].isin(conflicted)].sort_values(["person", "applied_at"])
        nphones = ph.groupby("person")["phone"].transform("nunique")
        ph = ph[nphones >= 2].copy()
        if len(ph):
            prev_phone = ph.groupby("person")["phone"].shift()
            gap = ph["applied_at"] - ph.groupby("person")["applied_at"].shift()
            ph["switch"] = prev_phone.notna() & (ph["phone"] != prev_phone)
            ph["rapid"] = ph["switch"] & (gap <= window)
            changes = ph.groupby("person")["switch"].sum()
            distinct = ph.groupby("person")["phone"].nunique()
            interleaved = changes > distinct - 1  # came back to a number used before
            rapid = ph.groupby("person")["rapid"].sum()
            flagged = rapid[(rapid >= 1) | interleaved].index
            for person, rows in ph[ph["person"].isin(flagged)].groupby("person"):
                phones = rows["phone"].unique().tolist()
                ev = [Evidence("id_multiple_phones", 0.3 + min(0.1 * (len(phones) - 2), 0.2),
                               f"ID {person} gave {len(phones)} phones ({', '.join(phones)}) on applications "
                               f"{', '.join(rows['application_id'])} between {_fmt_day(rows['applied_at'].min())} "
                               f"and {_fmt_day(rows['applied_at'].max())}.", tuple(phones))]
                if rapid[person]:
                    ev.append(Evidence("rapid_phone_change", 0.15, f"{int(rapid[person])} change(s) of phone "
                                       f"within {self.window_days} days of the previous application.",
                                       (int(rapid[person]),)))
                if interleaved[person]:
                    ev.append(Evidence("phones_interleaved", 0.1, "went back to a phone used before (A→B→A): "
                                       "several phones in use at once, not a change of number.", ()))
                shared = [p for p in phones if users.get(p, 0) > 1]
                if shared:
                    ev.append(Evidence("phone_used_by_others", 0.15, f"phone(s) {', '.join(shared)} also given "
                                       "by other ID numbers.", tuple(shared)))
                score = min(sum(e.contribution for e in ev), 0.9)
                out.append(Finding(self.name, "id_multiple_phones", tuple(sorted(rows["application_id"].astype(str))),
                                   score, tuple(ev), self.params(),
                                   f"一证多号 ID {person} with {len(phones)} phones",
                                   (("Person", str(person)),), tuple(("Phone", p) for p in phones)))
        return out

    def _multi_id(self, ap: pd.DataFrame, res: Resolution, person_entity: pd.Series) -> list[Finding]:
        """Several ID numbers for one person: same name + birth date, or one resolved entity."""
        recs = res.records
        real = recs[recs["id"].notna() & recs["name_key"].notna() & recs["dob"].notna()]
        real = real.assign(nd=real["name_key"] + "|" + real["dob"])
        nd = real[real.groupby("nd")["record_id"].transform("size") >= 2]
        flat_nd = pd.DataFrame({"key": "nd:" + nd["nd"].to_numpy(), "rid": nd["record_id"].to_numpy(),
                                "kind": "name_dob_multi_id"})
        ent = person_entity[~person_entity.index.astype(str).str.startswith("anon:")]
        ent = ent[ent.groupby(ent).transform("size") >= 2]
        flat_e = pd.DataFrame({"key": "e:" + ent.astype(str).to_numpy(), "rid": ent.index.astype(str).to_numpy(),
                               "kind": "fuzzy_duplicate"})
        flat_e["covered"] = flat_e["rid"].isin(flat_nd["rid"]).to_numpy()
        flat_e = flat_e[~flat_e.groupby("key")["covered"].transform("all")].drop(columns="covered")
        flat = pd.concat([flat_nd, flat_e], ignore_index=True)
        if flat.empty:
            return []
        flat["g"] = pd.factorize(flat["key"])[0]
        # best scored pair inside each group; a group without any plausible
        # pair (two different people sharing a common name and birthday) is left out
        pairs = res.pairs
        left = pairs.merge(flat[["g", "rid"]].rename(columns={"rid": "left"}), on="left")
        both = left.merge(flat[["g", "rid"]].rename(columns={"rid": "right", "g": "g2"}), on="right")
        both = both[both["g"] == both["g2"]].sort_values("score", ascending=False, kind="stable")
        best_of = {int(g): row for g, row in both.drop_duplicates("g").set_index("g").iterrows()}
        flat = flat[flat["g"].isin(list(best_of))]
        groups = [(grp["kind"].iat[0], sorted(grp["rid"])) for _, grp in flat.groupby("g", sort=True)]
        gids = sorted(best_of)
        best_of = {i: best_of[g] for i, g in enumerate(gids)}
        by_rec = recs.set_index("record_id")
        window = pd.Timedelta(days=self.window_days)
        out = []
        apps_of = dict(tuple(ap[ap["person"].isin(flat["rid"])].groupby("person")))
        for gi, (kind, ids) in enumerate(groups):
            best = best_of.get(gi)
            if best is not None:
                best = best.copy()
            p = float(best["score"]) if best is not None else 0.0
            parts = [apps_of[i] for i in ids if i in apps_of]
            rows = pd.concat(parts) if parts else ap.iloc[:0]
            if rows.empty:
                continue
            name = by_rec.at[ids[0], "name_norm"]
            dob = by_rec.at[ids[0], "dob"]
            ev = []
            agreed = ""
            if best is not None:
                ex = res.explain(best["left"], best["right"])
                agreed = "; ".join(f"{f}: {v['meaning']}" for f, v in ex["fields"].items() if v["level"] != _MISSING)
            ev.append(Evidence("same_person_match", 0.35 * p,
                               f"best pair {best['left'] if best is not None else ids[0]} ~ "
                               f"{best['right'] if best is not None else ids[1]} matches with probability {p:.2f} "
                               f"({agreed or 'no scored pair'}).", (round(p, 3),)))
            ev.append(Evidence("several_id_numbers", 0.1 if len(ids) == 2 else 0.25,
                               f"{len(ids)} ID numbers ({', '.join(ids)}) for "
                               + (f"name {name} born {dob}" if kind == "name_dob_multi_id" else "one resolved person")
                               + f", applications {', '.join(rows['application_id'])}.", tuple(ids)))
            phones = rows.groupby("person")["phone"].first().dropna()
            if phones.nunique() >= 2:
                ev.append(Evidence("different_phones", 0.15, f"each ID came with its own phone: "
                                   f"{', '.join(phones.unique())}.", tuple(phones.unique())))
            bad = [i for i in ids if not bool(by_rec.at[i, "id_ok"])]
            if bad:
                ev.append(Evidence("id_checksum_failed", 0.05, f"ID(s) {', '.join(bad)} fail the GB 11643 checksum.",
                                   tuple(bad)))
            span = rows["applied_at"].max() - rows["applied_at"].min()
            if span <= window:
                ev.append(Evidence("short_time_span", 0.1, f"applications within {span.days} days.", (span.days,)))
            score = min(sum(e.contribution for e in ev), 0.95)
            label = "一人多证 " + (f"{name} born {dob}" if kind == "name_dob_multi_id" else "fuzzy duplicate")
            out.append(Finding(self.name, kind, tuple(sorted(rows["application_id"].astype(str))), score, tuple(ev),
                               self.params(), f"{label} under {len(ids)} ID numbers",
                               tuple(("Person", i) for i in ids), tuple(("Phone", p) for p in phones.unique())))
        return out

    def _checksum(self, ap: pd.DataFrame) -> list[Finding]:
        bad = ap[ap["id_checksum_ok"].astype("boolean").eq(False).fillna(False).to_numpy()]
        out = []
        for row in bad.itertuples(index=False):
            typed = row.id_raw if isinstance(row.id_raw, str) else row.person
            out.append(Finding(
                self.name, "id_checksum_failed", (str(row.application_id),), float(self.checksum_score),
                (Evidence("id_checksum_failed", float(self.checksum_score),
                          f"application {row.application_id}: ID {typed} as typed fails the GB 11643 check "
                          "character (a typo or a made-up number).", (typed,)),),
                self.params(), f"ID {typed} fails its checksum (校验位错误)", (("Person", str(row.person)),), ()))
        return out


def _pairs_to_entities(pairs: pd.DataFrame) -> pd.Series:
    """record key → smallest key of its component (keys in no pair are left out)."""
    if pairs.empty:
        return pd.Series(dtype=object)
    from detectors.portfolio import _components

    return _components(pairs)


def application_entities(portfolio) -> pd.DataFrame:
    """Resolved applicant and company per application (runs resolution if needed).

    Returns
    -------
    DataFrame ``application_id``, ``person_entity_id``, ``company_entity_id``
    (empty string when the application has no FOR_COMPANY company).
    """
    portfolio = as_portfolio(portfolio)
    if portfolio.person_entity is None:
        IdentityResolution().run(portfolio)
    apps = portfolio.applications
    person = apps["person"].astype(object)
    company = apps["company"].astype(object)
    person_e = portfolio.entity_of(person.fillna("").astype(str), "Person").where(person.notna(), "")
    company_e = portfolio.entity_of(company.fillna("").astype(str), "Company").where(company.notna(), "")
    return pd.DataFrame({"application_id": apps["application_id"].to_numpy(),
                         "person_entity_id": person_e.to_numpy(), "company_entity_id": company_e.to_numpy()})
