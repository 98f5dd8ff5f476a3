"""Dashboard search: any part of a name or company name, pinyin, numbers.

One row per application (:class:`SearchIndex`, built once per data version
and cached by :mod:`ringscope.app.dashboard.context`), searched with vectorised
substring tests; names go through ingest's normaliser
(:mod:`ringscope.ingest.normalize`) so the query and the data are compared the same
way (traditional → simplified, half-width, spaces, pinyin keys). Results
carry the application's risk score and decision and the best score of its
applicant and company, and count every match, so the page can say when it
shows only the first ``limit``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["SearchIndex", "SearchHits", "HIT_COLUMNS", "build_search_index", "search"]


@dataclass
class SearchIndex:
    """What search looks in, one row per application: ``application_id``;
    ``name`` and ``company`` as stored (shown) and ``name_key`` /
    ``company_key`` normalised as ingest does (:func:`ringscope.ingest.normalize.normalize_names`:
    half-width, simplified, no spaces); ``pinyin`` (:func:`ringscope.ingest.normalize.name_pinyin_key`)
    and ``initials``; ``id_number``, ``phone``, ``account`` (digits);
    ``risk_score`` / ``risk_decision`` of the application; ``person_risk`` and
    ``company_risk``: the highest score among the applications of its
    applicant and of its company."""

    rows: pd.DataFrame


@dataclass
class SearchHits:
    """Search results: ``rows`` (at most ``limit``, best first) and how many
    applications matched in all (``total``)."""

    rows: pd.DataFrame
    total: int
    limit: int

    @property
    def capped(self) -> bool:
        """True when more matched than ``rows`` holds."""
        return self.total > len(self.rows)


#: columns of :attr:`SearchHits.rows`
HIT_COLUMNS = [
    "application_id",
    "matched",
    "match",
    "exact",
    "risk_score",
    "risk_decision",
    "person_risk",
    "company_risk",
]


def _initials(names: np.ndarray, keys: np.ndarray) -> list[str]:
    """First letters of each syllable of normalised names (``zw`` for 张伟):
    the first from the pinyin key (ingest's surname readings: 单 is ``s``),
    the others from each distinct character's common reading (pypinyin once
    per character, not once per name)."""
    from pypinyin import Style, lazy_pinyin

    chars = sorted({c for name in names for c in name[1:]})
    letter = {c: "".join(lazy_pinyin(c, style=Style.FIRST_LETTER, errors="ignore")).lower()[:1] for c in chars}
    return [
        (key[:1] if key else "") + "".join(letter[c] for c in name[1:]) if name else ""
        for name, key in zip(names, keys)
    ]


def _text(values: pd.Series) -> np.ndarray:
    return values.astype(object).where(values.notna(), "").astype(str).to_numpy(object)


def _name_keys(values: pd.Series, pinyin: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Normalised names and (if ``pinyin``) their pinyin keys, by the ingest normaliser."""
    from ringscope.ingest.normalize import name_pinyin_key, normalize_names

    values = pd.Series(values, dtype=object).reset_index(drop=True)
    names = _text(normalize_names(values)["name"])
    return names, _text(name_pinyin_key(values)) if pinyin else None


def _best_of(apps: pd.DataFrame, store: Any, rels: list[str], score: pd.Series) -> np.ndarray:
    """For each application, the highest score among the applications that
    share its node across ``rels`` (its applicant, its company)."""
    frames = []
    for name in rels:
        r = store.read_relationships(name, [])
        src, dst = name.split("-")[0], name.split("-")[-1]
        app_col, node_col = ("dst", "src") if dst == "Application" else ("src", "dst")
        if r.empty:
            continue
        frames.append(
            pd.DataFrame(
                {
                    "application_id": r[app_col].astype(str).to_numpy(object),
                    "node": (src if dst == "Application" else dst) + ":" + r[node_col].astype(str),
                }
            )
        )
    if not frames:
        return np.full(len(apps), np.nan)
    links = pd.concat(frames, ignore_index=True)
    links["score"] = links["application_id"].map(score)
    best = links.groupby("node")["score"].max()
    links["best"] = links["node"].map(best)
    per_app = links.groupby("application_id")["best"].max()
    return apps["key"].astype(str).map(per_app).to_numpy(float)


def build_search_index(store: Any) -> SearchIndex:
    """Read what search looks in: the Application table, its risk scores,
    and who applied for which company (for the best score of each)."""
    cols = [
        "applicant_name",
        "applicant_id_number_raw",
        "applicant_phone_raw",
        "company_name_raw",
        "employer_name_raw",
        "bank_account_raw",
        "risk_score",
        "risk_decision",
    ]
    apps = store.read_nodes("Application", cols)
    for c in cols:
        if c not in apps.columns:
            apps[c] = pd.NA
    company = apps["company_name_raw"].astype(object).where(apps["company_name_raw"].notna(), apps["employer_name_raw"])
    name_key, pinyin = _name_keys(apps["applicant_name"])
    company_key, _ = _name_keys(company, pinyin=False)
    score = pd.to_numeric(apps["risk_score"], errors="coerce")
    ids = apps["key"].astype(str)
    by_app = pd.Series(score.to_numpy(float), index=ids.to_numpy(object))
    rows = pd.DataFrame(
        {
            "application_id": ids.to_numpy(object),
            "name": _text(apps["applicant_name"]),
            "name_key": name_key,
            "pinyin": pinyin,
            "id_number": _text(apps["applicant_id_number_raw"]).astype(str),
            "phone": pd.Series(_text(apps["applicant_phone_raw"])).str.replace(r"\D", "", regex=True).to_numpy(object),
            "company": _text(pd.Series(company)),
            "company_key": company_key,
            "account": pd.Series(_text(apps["bank_account_raw"])).str.replace(r"\D", "", regex=True).to_numpy(object),
            "risk_score": score.to_numpy(float),
            "risk_decision": _text(apps["risk_decision"]),
            "person_risk": _best_of(apps, store, ["Person-APPLIED-Application"], by_app),
            "company_risk": _best_of(
                apps, store, ["Application-FOR_COMPANY-Company", "Application-DECLARES_EMPLOYER-Company"], by_app
            ),
        }
    )
    rows["id_number"] = rows["id_number"].str.upper()
    rows["initials"] = _initials(name_key, pinyin)
    return SearchIndex(rows)


def _empty_hits(limit: int) -> SearchHits:
    return SearchHits(pd.DataFrame(columns=HIT_COLUMNS), 0, limit)


def search(index: SearchIndex, query: str, field: str = "auto", limit: int = 50, cutoff: int = 70) -> SearchHits:
    """Search applications: ``field`` is ``name``, ``id_number``, ``phone``,
    ``company``, ``account`` or ``auto`` (digits → numbers, latin → pinyin
    and application ids, hanzi → names and companies).

    Names and companies match any part (one hanzi is enough: 张 finds 张伟),
    after the same normalisation ingest applies (traditional → simplified,
    half-width, spaces dropped); pinyin matches any part of the full pinyin,
    the initials, or is close to the whole (``cutoff``, 0–100); numbers match
    any part, long ones tolerate a typo. Rows: ``application_id``,
    ``matched`` (the field), ``match`` (0–100), ``exact`` (the whole value
    equals the query), ``risk_score``, ``risk_decision``, ``person_risk``,
    ``company_risk``. Exact matches first, then by risk score (unscored
    last), then by match; at most ``limit`` rows, ``total`` counts them all.

    Example
    -------
    >>> idx = SearchIndex(pd.DataFrame({"application_id": ["A1", "A2"], "name": ["张伟", "李娜"],
    ...     "name_key": ["张伟", "李娜"], "pinyin": ["zhangwei", "lina"], "initials": ["zw", "ln"],
    ...     "id_number": ["", ""], "phone": ["13800138000", ""], "company": ["", "开发区世创科技"],
    ...     "company_key": ["", "开发区世创科技"], "account": ["", ""], "risk_score": [0.2, 0.9],
    ...     "risk_decision": ["approve", "decline"], "person_risk": [0.2, 0.9], "company_risk": [None, 0.9]}))
    >>> search(idx, "zhang wei").rows["application_id"].tolist()
    ['A1']
    >>> search(idx, "8000").rows["application_id"].tolist()
    ['A1']
    >>> search(idx, "世创").rows[["application_id", "matched", "risk_decision"]].values.tolist()
    [['A2', 'company', 'decline']]
    >>> search(idx, "張").total
    1

    Notes
    -----
    Cost: O(n) vectorised substring tests over the index's columns, plus one
    rapidfuzz pass over the pinyin (and over numbers when nothing contains a
    long one).
    """
    from rapidfuzz import fuzz, process

    q = (query or "").strip()
    rows = index.rows
    if not q or rows.empty:
        return _empty_hits(limit)
    results = []
    digits = "".join(ch for ch in q if ch.isdigit() or ch in "xX").upper()
    is_numeric = len(digits) >= max(4, len(q.replace(" ", "").replace("-", "").replace("+", "")) - 1)
    fields = (
        [field]
        if field != "auto"
        else (
            ["id_number", "phone", "account"]
            if is_numeric
            else (
                ["application_id"] + ([] if any(ch.isdigit() for ch in q) else ["pinyin"])
                if q.isascii()
                else ["name", "company"]
            )
        )
    )
    if "name" in fields and q.isascii():
        fields = [x for x in fields if x != "name"] + ["pinyin"]
    app_ids = rows["application_id"]

    def add(hit: np.ndarray, match: np.ndarray, exact: np.ndarray, matched: str) -> None:
        hit = np.asarray(hit, bool)
        if hit.any():
            results.append(
                pd.DataFrame(
                    {
                        "pos": np.flatnonzero(hit),
                        "matched": matched,
                        "match": np.asarray(match)[hit].astype(int),
                        "exact": np.asarray(exact, bool)[hit],
                    }
                )
            )

    for f in fields:
        if f in ("id_number", "phone", "account"):
            values = rows[f]
            needle = (
                digits if f != "phone" else digits[-11:] if digits.startswith("86") and len(digits) == 13 else digits
            )
            if not needle:
                continue
            exact = (values == needle).to_numpy()
            contains = (values.str.contains(needle, regex=False) & (values != "")).to_numpy()
            score = np.where(exact, 100, np.where(contains, 90, 0))
            if not contains.any() and len(needle) >= 8:  # typo in a long number
                score = process.cdist(
                    [needle], values.tolist(), scorer=fuzz.ratio, dtype=np.uint8, score_cutoff=85, workers=1
                )[0]
            add(score > 0, score, exact, f)
        elif f in ("name", "company"):
            needle = _name_keys(pd.Series([q]), pinyin=False)[0][0]
            if not needle:
                continue
            values = rows[f"{f}_key"]
            exact = (values == needle).to_numpy()
            contains = values.str.contains(needle, regex=False).to_numpy() & (values != "").to_numpy()
            # the share of the name the query covers: 张 in 张伟 ranks below 张伟 itself
            share = np.round(100 * len(needle) / np.maximum(values.str.len().to_numpy(float), 1))
            add(contains, np.minimum(share, 100), exact, f)
        elif f == "application_id":
            needle = q.upper()
            values = app_ids.str.upper()
            exact = (values == needle).to_numpy()
            add(values.str.contains(needle, regex=False).to_numpy(), np.where(exact, 100, 90), exact, f)
        else:  # pinyin: part of the full pinyin, the initials, or close to the whole
            needle = _name_keys(pd.Series([q]))[1][0] or q.lower().replace(" ", "")
            values = rows["pinyin"]
            exact = ((values == needle) | (rows["initials"] == needle)).to_numpy()
            fuzzy = process.cdist(
                [needle], values.tolist(), scorer=fuzz.ratio, dtype=np.uint8, score_cutoff=cutoff, workers=1
            )[0]
            # any part of the pinyin from 3 letters on (shorter parts match half the portfolio)
            part = (rows["initials"] == needle).to_numpy().copy()
            if len(needle) >= 3:
                part |= (values.str.contains(needle, regex=False) & (values != "")).to_numpy()
            add((fuzzy > 0) | part, np.where(exact, 100, np.maximum(fuzzy, np.where(part, cutoff, 0))), exact, "name")
    if not results:
        return _empty_hits(limit)
    out = pd.concat(results, ignore_index=True)
    # one row per application: its best field
    out = out.sort_values(["exact", "match"], ascending=False).drop_duplicates("pos")
    picked = rows.iloc[out["pos"].to_numpy()]
    for c in ("application_id", "risk_score", "risk_decision", "person_risk", "company_risk"):
        out[c] = picked[c].to_numpy()
    out["_risk"] = out["risk_score"].fillna(-1.0)
    out = out.sort_values(["exact", "_risk", "match", "application_id"], ascending=[False, False, False, True])
    return SearchHits(out[HIT_COLUMNS].head(limit).reset_index(drop=True), len(out), limit)
