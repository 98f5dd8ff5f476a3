"""Blocking for record linkage: which pairs of records are compared at all."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ringscope.detectors.resolution.matching import block_pairs

__all__ = ["blocking_keys", "candidate_pairs", "extra_column"]


def extra_column(f: str) -> str:
    return "x:" + f


def blocking_keys(
    recs: pd.DataFrame, fields: tuple[str, ...], kinds: dict[str, str] | None = None
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
        value = recs[extra_column(f)]
        if "dob" in fields:
            keys.append((f + "_dob", value + "|" + recs["dob"], {f, "dob"}))
        if "postcode" in fields:
            keys.append((f + "_postcode", value + "|" + recs["postcode"], {f, "postcode"}))
        if "surname" in fields:
            keys.append((f + "_surname", value + "|" + recs["surname"], {f, "surname"}))
        if "given_name" in fields:
            keys.append((f + "_given", value + "|" + recs["given"], {f, "given_name"}))
    return keys


def candidate_pairs(
    recs: pd.DataFrame,
    fields: tuple[str, ...],
    max_block: int,
    only: tuple[str, ...] | None,
    kinds: dict[str, str] | None = None,
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], dict[str, Any]]:
    n = len(recs)
    year = pd.factorize(recs["dob"].str[:4], use_na_sentinel=True)[0]
    all_codes = []
    per_key: dict[str, np.ndarray] = {}
    stats: dict[str, Any] = {"blocks": {}}
    for name, key, _ in blocking_keys(recs, fields, kinds):
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
