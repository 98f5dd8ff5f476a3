"""Companies resolved into entities: one firm under its USCC, its name, or a name variant.

A company is keyed by its USCC when it has one, else by its normalised name;
the same firm registered once with a code and named elsewhere without one (an
employer, a guarantor) is joined through :func:`company_core_name` (legal form
and city stripped, traditional characters simplified).
"""

from __future__ import annotations

import json
import re

import pandas as pd

__all__ = ["company_core_name", "resolve_companies"]


_COMPANY_SUFFIX = re.compile(r"(股份有限公司|有限责任公司|有限公司|股份公司|集团|股份|公司)")
_COMPANY_CITY = re.compile(
    r"^(?:[\u4e00-\u9fff]{2,7}?(?:省|自治区))?(?:[\u4e00-\u9fff]{2,7}?(?:市|自治州|地区|盟))?"
    r"(?:[\u4e00-\u9fff]{1,5}?(?:区|县|旗))?"
)
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
    from ringscope.ingest.normalize import normalize_names

    norm = normalize_names(names.astype("str"))["name"].astype("str").fillna("").str.replace(" ", "", regex=False)
    norm = norm.str.replace(_PAREN, "", regex=True)
    city = norm.str.extract(f"({_COMPANY_CITY.pattern})", expand=False).fillna("")
    core = norm.str.slice(0).str.replace(_COMPANY_CITY, "", regex=True).str.replace(_COMPANY_SUFFIX, "", regex=True)
    core = core.where(core.str.len() >= 2, norm.str.replace(_COMPANY_SUFFIX, "", regex=True))
    return pd.DataFrame({"core": core.to_numpy(), "city": city.to_numpy()}, index=names.index)


def resolve_companies(companies: pd.DataFrame) -> tuple[pd.Series, pd.DataFrame]:
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
    feats = [
        json.dumps({"core_name": g.split("|")[0], "city": city or None}, ensure_ascii=False)
        for g, city in zip(pairs["group"], pairs["city"])
    ]
    out = pd.DataFrame(
        {
            "src": pairs["key"].to_numpy(),
            "dst": pairs["dst"].to_numpy(),
            "score": 0.9,
            "features": feats,
            "method": "core_name",
        }
    )
    return mapping, out


# ---------------------------------------------------------------------------
# the detector
# ---------------------------------------------------------------------------
