"""Pure, vectorised comparison functions for identity resolution.

Each field comparison takes two aligned arrays (the left and right records of
candidate pairs) and returns ``(levels, similarity)``: an integer agreement
level per pair (``-1`` = a value is missing, ``0`` = disagree, higher = closer
agreement) and a similarity in [0, 1] for the investigator. The level labels
in :data:`LEVELS` double as the explanation shown to investigators. Blocking
helpers turn key columns into candidate pairs without a Python loop per pair.

Example
-------
>>> lv, sim = compare_names(np.array(["张伟", "李雷"]), np.array(["张伟", "李洋"]),
...                         np.array(["aeghinwz", "eiill"]), np.array(["aeghinwz", "agiilny"]))
>>> lv.tolist()
[4, 0]
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from rapidfuzz import process
from rapidfuzz.distance import JaroWinkler, Levenshtein
from rapidfuzz.fuzz import ratio, token_sort_ratio

from ringscope.ingest.normalize.resident_ids import id_check_codes

__all__ = [
    "LEVELS",
    "anagram_key",
    "compare_names",
    "compare_name_parts",
    "compare_ids",
    "compare_dates",
    "compare_codes",
    "compare_addresses",
    "compare_extra",
    "EXTRA_KINDS",
    "block_pairs",
    "gb11643_ok",
]

#: field → level → what that level means (the explanation investigators see)
LEVELS: dict[str, dict[int, str]] = {
    "name": {
        4: "same name (after traditional→simplified, spacing)",
        3: "same pinyin (romanised, reordered or homophone)",
        2: "near-identical spelling (similarity >= 0.85)",
        1: "one character differs (similarity >= 0.6) or pinyin one letter off",
        0: "different names",
    },
    "given_name": {3: "exact", 2: "Jaro-Winkler >= 0.92", 1: "Jaro-Winkler >= 0.8", 0: "different"},
    "surname": {3: "exact", 2: "Jaro-Winkler >= 0.92", 1: "Jaro-Winkler >= 0.8", 0: "different"},
    "id_number": {
        3: "same ID number",
        2: "IDs differ by <= 2 edits, one fails its checksum (typo)",
        0: "different ID numbers (or both valid)",
    },
    "dob": {
        2: "same birth date",
        1: "birth dates differ by one digit or day/month swapped",
        0: "different birth dates",
    },
    "phone": {2: "same phone", 1: "phones differ by one digit", 0: "different phones"},
    "address": {
        3: "same address",
        2: "address similarity >= 0.9",
        1: "address similarity >= 0.7",
        0: "different addresses",
    },
    "postcode": {2: "same postcode", 1: "postcodes differ by one digit", 0: "different postcodes"},
}

#: comparison kinds of extra fields (``resolve_records(extra_fields=...)``) → level → meaning
EXTRA_KINDS: dict[str, dict[int, str]] = {
    "text": {
        3: "exact",
        2: "Jaro-Winkler >= 0.92 or token-sorted ratio >= 0.9",
        1: "Jaro-Winkler >= 0.8 or token-sorted ratio >= 0.75",
        0: "different",
    },
    "exact": {1: "same value", 0: "different values"},
    "number": {2: "same number", 1: "numbers differ by one edit", 0: "different numbers"},
}


def _missing(values: np.ndarray) -> np.ndarray:
    return pd.isna(values) | (values == "")


def _strs(values: np.ndarray) -> np.ndarray:
    return np.where(pd.isna(values), "", values)


def _pair_scores(left: np.ndarray, right: np.ndarray, scorer, workers: int) -> np.ndarray:
    """``scorer`` over aligned pairs, in C (rapidfuzz ``cpdist``)."""
    if len(left) == 0:
        return np.zeros(0, dtype=np.float64)
    return process.cpdist(_strs(left), _strs(right), scorer=scorer, workers=workers).astype(np.float64)


def anagram_key(pinyin: pd.Series) -> pd.Series:
    """Letters of a pinyin key sorted: 张伟, Zhang Wei and wei zhang meet.

    Example
    -------
    >>> anagram_key(pd.Series(["zhangwei", "weizhang", None])).tolist()
    ['aeghinwz', 'aeghinwz', nan]
    """
    codes, uniq = pd.factorize(pinyin.fillna("").astype(str).to_numpy())
    keyed = np.array(["".join(sorted(u)) if u else "" for u in uniq], dtype=object)[codes]
    out = pd.Series(keyed, index=pinyin.index, dtype=object)
    return out.where(out != "", np.nan)


def gb11643_ok(ids: np.ndarray) -> np.ndarray:
    """True where a value is an 18-character resident ID with a valid check character (GB 11643).

    Example
    -------
    >>> gb11643_ok(np.array(["11010519491231002X", "110105194912310021", "12345"], dtype=object)).tolist()
    [True, False, False]
    """
    s = pd.Series(ids, dtype=object).fillna("").astype(str)
    ok = (s.str.len() == 18) & s.str[:17].str.isdigit()
    out = np.zeros(len(s), dtype=bool)
    if ok.any():
        sel = s[ok].to_numpy().astype("U18")
        raw = sel.view(np.uint32).reshape(-1, 18)
        digits = raw[:, :17].astype(np.int64) - ord("0")
        check = id_check_codes(digits)
        out[ok.to_numpy()] = raw[:, 17] == check
    return out


def compare_names(
    left: np.ndarray, right: np.ndarray, left_key: np.ndarray, right_key: np.ndarray, *, workers: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Full names: exact, same pinyin anagram key, or spelling similarity.

    ``left``/``right`` are normalised names (simplified, no spacing); the keys
    are :func:`anagram_key` values. Similarity is rapidfuzz ``ratio`` (indel)
    on the names; one wrong character in a three-character name gives 0.67,
    in a two-character name 0.5 (which is also two siblings: left to the
    other fields).
    """
    miss = _missing(left) | _missing(right)
    sim = _pair_scores(left, right, ratio, workers) / 100.0
    keys_present = ~(_missing(left_key) | _missing(right_key))
    same_key = (left_key == right_key) & keys_present
    # pinyin one letter off (曾 read zeng or ceng, a romanisation typo)
    key_sim = np.where(keys_present, _pair_scores(left_key, right_key, ratio, workers) / 100.0, 0.0)
    level = np.select([left == right, same_key, sim >= 0.85, (sim >= 0.6) | (key_sim >= 0.85)], [4, 3, 2, 1], 0)
    sim = np.where(same_key, np.maximum(sim, 0.95), sim)
    return np.where(miss, -1, level), np.where(miss, np.nan, sim)


def compare_name_parts(left: np.ndarray, right: np.ndarray, *, workers: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """One part of a Latin name (given name or surname): Jaro-Winkler levels."""
    miss = _missing(left) | _missing(right)
    sim = _pair_scores(left, right, JaroWinkler.normalized_similarity, workers)
    level = np.select([left == right, sim >= 0.92, sim >= 0.8], [3, 2, 1], 0)
    return np.where(miss, -1, level), np.where(miss, np.nan, sim)


def compare_ids(
    left: np.ndarray, right: np.ndarray, left_ok: np.ndarray, right_ok: np.ndarray, *, workers: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """ID numbers: exact, a typo (<= 2 edits, one side fails its checksum), or
    different (two close numbers that both pass their checksum are different
    people: twins, or two people born the same day in one county).

    ``left_ok``/``right_ok`` say whether each ID passes its checksum (False
    when it cannot be checked, e.g. a non-Chinese number).
    """
    miss = _missing(left) | _missing(right)
    dist = _pair_scores(left, right, Levenshtein.distance, workers)
    length = np.maximum(pd.Series(_strs(left), dtype=object).str.len().to_numpy(dtype=np.float64), 1.0)
    sim = 1.0 - np.minimum(dist / length, 1.0)
    # two different IDs that both pass their checksum are two issued numbers:
    # twins or neighbours born the same day in one county differ in 1-2 digits
    both_ok = left_ok & right_ok
    level = np.select([left == right, (dist <= 2) & ~both_ok], [3, 2], 0)
    return np.where(miss, -1, level), np.where(miss, np.nan, sim)


def compare_dates(left: np.ndarray, right: np.ndarray, *, workers: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Birth dates as ``YYYYMMDD`` text: exact, one digit off or day/month swapped, or different."""
    miss = _missing(left) | _missing(right)
    dist = _pair_scores(left, right, Levenshtein.distance, workers)
    ls, rs = pd.Series(_strs(left)), pd.Series(_strs(right))
    swapped = ((ls.str[:4] == rs.str[:4]) & (ls.str[4:6] == rs.str[6:8]) & (ls.str[6:8] == rs.str[4:6])).to_numpy()
    level = np.select([left == right, (dist <= 1) | swapped], [2, 1], 0)
    sim = 1.0 - np.minimum(dist / 8.0, 1.0)
    return np.where(miss, -1, level), np.where(miss, np.nan, sim)


def compare_codes(left: np.ndarray, right: np.ndarray, *, workers: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Phone numbers or postcodes: exact, one digit off, or different."""
    miss = _missing(left) | _missing(right)
    dist = _pair_scores(left, right, Levenshtein.distance, workers)
    level = np.select([left == right, dist <= 1], [2, 1], 0)
    sim = np.where(left == right, 1.0, np.where(dist <= 1, 0.5, 0.0))
    return np.where(miss, -1, level), np.where(miss, np.nan, sim)


def compare_addresses(
    left: np.ndarray, right: np.ndarray, *, workers: int = 1, tokens: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Normalised addresses: exact, or rapidfuzz ``ratio`` >= 0.9 / >= 0.7.

    ``tokens=True`` also takes ``token_sort_ratio`` (the words sorted first),
    so "12 main st flat 3" and "flat 3 12 main st" agree.
    """
    miss = _missing(left) | _missing(right)
    sim = _pair_scores(left, right, ratio, workers) / 100.0
    if tokens:
        sim = np.maximum(sim, _pair_scores(left, right, token_sort_ratio, workers) / 100.0)
    level = np.select([left == right, sim >= 0.9, sim >= 0.7], [3, 2, 1], 0)
    return np.where(miss, -1, level), np.where(miss, np.nan, sim)


def compare_extra(left: np.ndarray, right: np.ndarray, kind: str, *, workers: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """A generic field of kind ``text``, ``exact`` or ``number`` (see :data:`EXTRA_KINDS`).

    Example
    -------
    >>> compare_extra(np.array(["main st", "12"], dtype=object), np.array(["st main", "13"], dtype=object),
    ...               "text")[0].tolist()
    [2, 0]
    >>> compare_extra(np.array(["12", "12"], dtype=object), np.array(["13", None], dtype=object), "number")[0].tolist()
    [1, -1]
    """
    miss = _missing(left) | _missing(right)
    same = left == right
    if kind == "text":
        jw = _pair_scores(left, right, JaroWinkler.normalized_similarity, workers)
        tok = _pair_scores(left, right, token_sort_ratio, workers) / 100.0
        sim = np.maximum(jw, tok)
        level = np.select([same, (jw >= 0.92) | (tok >= 0.9), (jw >= 0.8) | (tok >= 0.75)], [3, 2, 1], 0)
    elif kind == "exact":
        sim = same.astype(np.float64)
        level = same.astype(np.int64)
    elif kind == "number":
        dist = _pair_scores(left, right, Levenshtein.distance, workers)
        level = np.select([same, dist <= 1], [2, 1], 0)
        sim = np.where(same, 1.0, np.where(dist <= 1, 0.5, 0.0))
    else:
        raise ValueError(f"unknown comparison kind {kind!r}; expected one of {sorted(EXTRA_KINDS)}")
    return np.where(miss, -1, level), np.where(miss, np.nan, sim)


def block_pairs(
    codes: np.ndarray, *, max_block: int, sub_codes: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, dict]:
    """All within-block record pairs ``(i, j)``, ``i < j``, for integer block codes.

    Blocks larger than ``max_block`` are split by ``sub_codes`` (e.g. birth
    year) when given; what is still too large is skipped and counted.

    Parameters
    ----------
    codes : ndarray of int
        Block code per record, ``-1`` = no key.
    max_block : int
        Largest block (in records) whose pairs are generated.
    sub_codes : ndarray of int, optional
        Secondary code used to split oversize blocks.

    Returns
    -------
    left, right : ndarray of int64 (record positions), stats : dict

    Example
    -------
    >>> l, r, s = block_pairs(np.array([0, 1, 0, 0, -1]), max_block=10)
    >>> sorted(zip(l.tolist(), r.tolist()))
    [(0, 2), (0, 3), (2, 3)]

    Notes
    -----
    Vectorised: O(n log n) sort plus O(pairs) output.
    """
    codes = np.asarray(codes, dtype=np.int64)
    stats = {"oversize_blocks": 0, "oversize_records": 0, "skipped_blocks": 0, "skipped_records": 0}
    idx = np.flatnonzero(codes >= 0)
    if len(idx) < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), stats
    order = idx[np.argsort(codes[idx], kind="stable")]
    sorted_codes = codes[order]
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
    sizes = np.diff(np.r_[starts, len(order)])
    big = sizes > max_block
    lefts, rights = [], []
    keep_mask = np.repeat((sizes >= 2) & ~big, sizes)
    l, r = _pairs_in_sorted(order[keep_mask], np.repeat(np.arange(len(sizes)), sizes)[keep_mask])
    lefts.append(l)
    rights.append(r)
    if big.any():
        stats["oversize_blocks"] = int(big.sum())
        stats["oversize_records"] = int(sizes[big].sum())
        big_records = order[np.repeat(big, sizes)]
        if sub_codes is not None:
            sub = np.asarray(sub_codes, dtype=np.int64)[big_records]
            parent = codes[big_records]
            combined = np.where(sub >= 0, parent * (int(sub.max(initial=0)) + 1) + sub, -1)
            inner = np.full(len(codes), -1, dtype=np.int64)
            inner[big_records] = combined
            l2, r2, s2 = block_pairs(inner, max_block=max_block)
            lefts.append(l2)
            rights.append(r2)
            stats["skipped_blocks"] = s2["oversize_blocks"]
            stats["skipped_records"] = s2["oversize_records"]
        else:
            stats["skipped_blocks"] = stats["oversize_blocks"]
            stats["skipped_records"] = stats["oversize_records"]
    left, right = np.concatenate(lefts), np.concatenate(rights)
    lo, hi = np.minimum(left, right), np.maximum(left, right)
    return lo, hi, stats


def _pairs_in_sorted(members: np.ndarray, group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs within contiguous groups: each record with every later record of its group."""
    if len(members) < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    sizes = np.diff(np.r_[starts, len(members)])
    pos = np.arange(len(members))
    rank = pos - np.repeat(starts, sizes)
    later = np.repeat(sizes, sizes) - rank - 1
    left_pos = np.repeat(pos, later)
    first = np.repeat(np.cumsum(later) - later, later)
    right_pos = left_pos + (np.arange(len(left_pos)) - first) + 1
    return members[left_pos].astype(np.int64), members[right_pos].astype(np.int64)
