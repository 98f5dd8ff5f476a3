"""Normalise the identifiers of a loan-application export.

Each function takes a pandas Series of raw text (missing values allowed) and
returns normalised values with validity flags, on the same index. Work is done
once per distinct value and mapped back (exports repeat values a lot), with
vectorised fast paths for the common formats and the real libraries
(phonenumbers, python-stdnum, opencc, pypinyin) for the rest. A bad value is
never an exception: it comes back as missing (NaN in pandas' string
dtype), flagged.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from functools import lru_cache
from typing import Callable

import numpy as np
import pandas as pd

__all__ = [
    "to_halfwidth",
    "normalize_phones",
    "normalize_id_numbers",
    "normalize_uscc",
    "normalize_names",
    "name_pinyin_key",
    "normalize_addresses",
    "normalize_emails",
    "normalize_ips",
    "normalize_accounts",
    "normalize_device_ids",
    "parse_datetimes",
    "parse_amounts",
]


def to_halfwidth(s: str) -> str:
    """Full-width letters, digits and punctuation to half-width (NFKC).

    Example
    -------
    >>> to_halfwidth("１３８　ＡＢＣ（）")
    '138 ABC()'
    """
    return unicodedata.normalize("NFKC", s)


def _unique_map(values: pd.Series, func: Callable[[np.ndarray], dict | pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    """Apply ``func`` to the distinct non-missing values, map results back.

    ``func`` receives an array of distinct strings and returns a DataFrame
    indexed by them with ``columns``.
    """
    series = values.astype("str") if not pd.api.types.is_string_dtype(values) else values
    present = series.notna()
    distinct = pd.unique(series[present].to_numpy(dtype=object))
    if len(distinct):
        table = func(np.asarray(distinct, dtype=object))
        codes = pd.Index(distinct).get_indexer(series[present].to_numpy(dtype=object))
        out = pd.DataFrame(index=values.index, columns=columns)
        for col in columns:
            col_values = table[col].to_numpy()
            full = np.empty(len(values), dtype=object)
            full[:] = None
            full[present.to_numpy()] = col_values[codes]
            full[pd.isna(full)] = None  # one missing marker for every column
            out[col] = full
        return out
    return pd.DataFrame({c: np.full(len(values), None, dtype=object) for c in columns}, index=values.index)


def _nfkc_array(values: np.ndarray) -> np.ndarray:
    return np.array([unicodedata.normalize("NFKC", v) for v in values], dtype=object)


# -- phones -----------------------------------------------------------------------

_PHONE_SEPARATORS = re.compile(r"[\s\-\.\(\)（）/]")
_CN_MOBILE = re.compile(r"^(?:\+?86|0086)?(1[3-9]\d{9})$")


def _phone_one(text: str) -> tuple[str | None, bool]:
    import phonenumbers

    try:
        number = phonenumbers.parse(text, "CN")
    except phonenumbers.NumberParseException:
        return None, False
    if not phonenumbers.is_possible_number(number):
        return None, False
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), bool(
        phonenumbers.is_valid_number(number)
    )


def normalize_phones(values: pd.Series) -> pd.DataFrame:
    """Phones to E.164 with China as the default region.

    Columns ``phone`` (E.164 or None when it cannot be a phone number) and
    ``phone_valid`` (phonenumbers' validity; a possible-but-unassigned number
    keeps its E.164 form and is flagged).

    Example
    -------
    >>> normalize_phones(pd.Series(["+86 138-0013-8000", "１３８００１３８０００", "010-12345678", "12"])).phone.tolist()
    ['+8613800138000', '+8613800138000', '+861012345678', nan]

    Notes
    -----
    Mainland mobiles take a regex fast path; everything else goes through
    ``phonenumbers.parse``. O(distinct values).
    """

    def run(distinct: np.ndarray) -> pd.DataFrame:
        cleaned = pd.Series(_nfkc_array(distinct)).str.replace(_PHONE_SEPARATORS, "", regex=True)
        cleaned = cleaned.str.replace(r"^00", "+", regex=True).where(~cleaned.str.startswith("0086"), cleaned.str[2:])
        mobile = cleaned.str.extract(_CN_MOBILE, expand=False)
        phone = np.array(("+86" + mobile).to_numpy(dtype=object), dtype=object)
        valid = np.array(mobile.notna().to_numpy(), dtype=object)
        for i in np.flatnonzero(mobile.isna().to_numpy()):
            phone[i], valid[i] = _phone_one(cleaned.iloc[i])
        return pd.DataFrame({"phone": phone, "phone_valid": valid}, index=distinct)

    out = _unique_map(values, run, ["phone", "phone_valid"])
    out["phone_valid"] = out["phone_valid"].fillna(False).astype(bool)
    return out


# -- resident identity numbers ----------------------------------------------------

_ID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
_ID_CHECK = np.array(list("10X98765432"))


def _id_check_chars(bodies: np.ndarray) -> np.ndarray:
    """GB 11643 check characters for an array of 17-digit strings."""
    if not len(bodies):
        return np.array([], dtype="<U1")
    digits = np.frombuffer("".join(bodies).encode("ascii"), dtype=np.uint8).reshape(-1, 17) - ord("0")
    return _ID_CHECK[(digits.astype(np.int64) @ _ID_WEIGHTS) % 11]


@lru_cache(maxsize=8192)
def _region_known(code: str) -> bool:
    from stdnum.cn import ric

    try:
        ric.get_birth_place(code + "19000101" + "0000")
    except Exception:  # stdnum raises InvalidComponent for unknown codes
        return False
    return True


def normalize_id_numbers(values: pd.Series) -> pd.DataFrame:
    """Resident identity numbers (GB 11643), kept and flagged when invalid.

    Columns: ``id_number`` (upper-case, 18 characters; a legacy 15-digit ID is
    upgraded by inserting ``19`` and computing the check character; None when
    the value cannot be an ID), ``id_format_ok``, ``id_checksum_ok``,
    ``id_birth_date``, ``id_region_code``, ``id_region_known``, ``id_gender``.

    Example
    -------
    >>> r = normalize_id_numbers(pd.Series(["11010119900307803x", "110101900307803", "110101199003078031"]))
    >>> r.id_number.tolist(), r.id_checksum_ok.tolist()
    (['11010119900307803X', '11010119900307803X', '110101199003078031'], [True, True, False])

    Notes
    -----
    Checksum vectorised with numpy over distinct values; region lookups cached.
    """

    def run(distinct: np.ndarray) -> pd.DataFrame:
        cleaned = pd.Series(_nfkc_array(distinct)).str.replace(r"\s", "", regex=True).str.upper()
        is18 = cleaned.str.fullmatch(r"\d{17}[\dX]").fillna(False)
        is15 = cleaned.str.fullmatch(r"\d{15}").fillna(False)
        number = cleaned.where(is18, None).astype(object)
        legacy = cleaned[is15]
        if len(legacy):
            bodies = (legacy.str[:6] + "19" + legacy.str[6:]).to_numpy(dtype=str)
            number[is15] = [b + c for b, c in zip(bodies, _id_check_chars(bodies))]
        ok = number.notna()
        checksum = np.zeros(len(number), dtype=bool)
        if ok.any():
            arr = number[ok].to_numpy(dtype=str)
            bodies = np.array([a[:17] for a in arr])
            checksum[ok.to_numpy()] = _id_check_chars(bodies) == np.array([a[17] for a in arr])
        birth = pd.to_datetime(number.str[6:14], format="%Y%m%d", errors="coerce")
        birth = birth.where((birth.dt.year >= 1900) & (birth <= pd.Timestamp("2030-01-01")))
        region = number.str[:6]
        region_known = region.map(lambda c: _region_known(c) if isinstance(c, str) else False)
        gender_digit = pd.to_numeric(number.str[16], errors="coerce")
        gender = np.where(gender_digit.isna(), None, np.where(gender_digit % 2 == 1, "M", "F"))
        return pd.DataFrame(
            {
                "id_number": number.to_numpy(dtype=object),
                "id_format_ok": ok.to_numpy(),
                "id_checksum_ok": checksum,
                "id_birth_date": birth.dt.date.to_numpy(dtype=object),
                "id_region_code": region.to_numpy(dtype=object),
                "id_region_known": region_known.to_numpy(dtype=bool),
                "id_gender": gender,
            },
            index=distinct,
        )

    cols = ["id_number", "id_format_ok", "id_checksum_ok", "id_birth_date", "id_region_code", "id_region_known", "id_gender"]
    out = _unique_map(values, run, cols)
    for flag in ("id_format_ok", "id_checksum_ok", "id_region_known"):
        out[flag] = out[flag].fillna(False).astype(bool)
    out["id_birth_date"] = out["id_birth_date"].where(out["id_birth_date"].notna(), None)
    return out


# -- unified social credit codes --------------------------------------------------


def normalize_uscc(values: pd.Series) -> pd.DataFrame:
    """Unified social credit codes (GB 32100): ``uscc`` and ``uscc_valid``.

    Example
    -------
    >>> normalize_uscc(pd.Series(["91110000600037341l", "abc"])).uscc.tolist()
    ['91110000600037341L', nan]
    """
    from stdnum.cn import uscc as stdnum_uscc

    def run(distinct: np.ndarray) -> pd.DataFrame:
        cleaned = pd.Series(_nfkc_array(distinct)).str.replace(r"\s", "", regex=True).str.upper()
        shaped = cleaned.str.fullmatch(r"[0-9A-HJ-NPQRTUWXY]{18}").fillna(False)
        code = cleaned.where(shaped, None).astype(object)
        valid = np.array([bool(c) and stdnum_uscc.is_valid(c) for c in code.to_numpy(dtype=object)], dtype=bool)
        return pd.DataFrame({"uscc": code.to_numpy(dtype=object), "uscc_valid": valid}, index=distinct)

    out = _unique_map(values, run, ["uscc", "uscc_valid"])
    out["uscc_valid"] = out["uscc_valid"].fillna(False).astype(bool)
    return out


# -- names --------------------------------------------------------------------------

_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")
_DOTS = re.compile(r"[•・·．.]")


@lru_cache(maxsize=1)
def _t2s():
    import opencc

    return opencc.OpenCC("t2s")


def _to_simplified(texts: list[str]) -> list[str]:
    """Traditional → simplified for many strings in one opencc call."""
    if not texts:
        return []
    converter = _t2s()
    joined = converter.convert("\n".join(texts))
    out = joined.split("\n")
    if len(out) != len(texts):  # a value held a line break: convert one by one
        out = [converter.convert(t) for t in texts]
    return out


def _strip_tones(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")


def normalize_names(values: pd.Series) -> pd.DataFrame:
    """Person or company names: ``name`` and ``name_script`` (han/latin/mixed).

    Half-width, traditional → simplified, whitespace collapsed; hanzi names
    lose inner spaces and unify middle dots to '·'; pinyin is lower-cased
    without tone marks.

    Example
    -------
    >>> normalize_names(pd.Series(["張 偉", "Zhāng  Sān", "阿卜杜拉・买买提"])).name.tolist()
    ['张伟', 'zhang san', '阿卜杜拉·买买提']
    """

    def run(distinct: np.ndarray) -> pd.DataFrame:
        half = [unicodedata.normalize("NFKC", v).replace("\n", " ") for v in distinct]
        simplified = _to_simplified(half)
        names, scripts = [], []
        for text in simplified:
            has_han = bool(_HAN.search(text))
            has_latin = bool(_LATIN.search(text))
            if has_han:
                text = _DOTS.sub("·", re.sub(r"\s+", "", text))
                script = "mixed" if has_latin else "han"
            else:
                text = re.sub(r"\s+", " ", _strip_tones(text)).strip().lower()
                script = "latin" if has_latin else None
            names.append(text or None)
            scripts.append(script if text else None)
        return pd.DataFrame({"name": names, "name_script": scripts}, index=distinct)

    return _unique_map(values, run, ["name", "name_script"])


#: surnames pypinyin reads with their common (non-surname) reading
SURNAME_READINGS = {
    "单": "shan", "曾": "zeng", "区": "ou", "解": "xie", "仇": "qiu", "朴": "piao", "查": "zha",
    "盖": "ge", "乐": "yue", "覃": "qin", "尉": "yu", "缪": "miao", "繁": "po", "翟": "zhai",
    "员": "yun", "召": "shao", "长孙": "zhangsun", "尉迟": "yuchi", "万俟": "moqi", "沈": "shen",
}


def name_pinyin_key(values: pd.Series) -> pd.Series:
    """Blocking key: toneless pinyin, syllables run together, lower-case.

    Example
    -------
    >>> name_pinyin_key(pd.Series(["张三", "Zhang San", "zhang-san", "单雄信"])).tolist()
    ['zhangsan', 'zhangsan', 'zhangsan', 'shanxiongxin']
    """
    from pypinyin import Style, lazy_pinyin

    def one(name: str) -> str:
        name = normalize_names(pd.Series([name])).name.iloc[0] or ""
        if _HAN.search(name):
            for surname in sorted((s for s in SURNAME_READINGS if name.startswith(s)), key=len, reverse=True):
                rest = "".join(lazy_pinyin(name[len(surname):], style=Style.NORMAL, errors="ignore"))
                return SURNAME_READINGS[surname] + rest
            return "".join(lazy_pinyin(name, style=Style.NORMAL, errors="ignore")).lower()
        return re.sub(r"[^a-z]", "", name.lower())

    def run(distinct: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame({"key": [one(v) or None for v in distinct]}, index=distinct)

    return _unique_map(values, run, ["key"])["key"]


# -- addresses ----------------------------------------------------------------------

_ADDRESS_PUNCT = re.compile(r"[\s,，、;；:：\-—_()（）\[\]【】#＃\"'“”‘’.。]")
_BUILDING = re.compile(r"(号楼|幢|栋|座)")


def normalize_addresses(values: pd.Series) -> pd.DataFrame:
    """Free-text addresses: ``address`` for exact sharing between applicants.

    Half-width, simplified, whitespace and punctuation removed, a leading
    country name dropped, building words unified (号楼/幢/座 → 栋), a final
    房 → 室.

    Example
    -------
    >>> normalize_addresses(pd.Series(["中國 北京市朝陽區 建國路88號 3號樓 1201房"])).address.tolist()
    ['北京市朝阳区建国路88号3栋1201室']
    """

    def run(distinct: np.ndarray) -> pd.DataFrame:
        half = [unicodedata.normalize("NFKC", v).replace("\n", " ") for v in distinct]
        simplified = pd.Series(_to_simplified(half))
        text = simplified.str.replace(_ADDRESS_PUNCT, "", regex=True)
        text = text.str.replace(r"^(中华人民共和国|中国)", "", regex=True)
        text = text.str.replace(_BUILDING, "栋", regex=True)
        text = text.str.replace(r"(\d+)房$", r"\1室", regex=True)
        text = text.where(text != "", None)
        return pd.DataFrame({"address": text.to_numpy(dtype=object)}, index=distinct)

    return _unique_map(values, run, ["address"])


# -- e-mail, IP, accounts, devices --------------------------------------------------

_EMAIL = re.compile(r"^[a-z0-9._%+\-]+@[a-z0-9.\-]+\.[a-z]{2,}$")


def normalize_emails(values: pd.Series) -> pd.DataFrame:
    """E-mail addresses: ``email`` (lower-case) and ``email_valid``.

    Example
    -------
    >>> normalize_emails(pd.Series([" Wei@Example.COM ", "not-an-email"])).email.tolist()
    ['wei@example.com', nan]
    """

    def run(distinct: np.ndarray) -> pd.DataFrame:
        text = pd.Series(_nfkc_array(distinct)).str.strip().str.lower()
        ok = text.str.match(_EMAIL).fillna(False)
        return pd.DataFrame({"email": text.where(ok, None).to_numpy(dtype=object), "email_valid": ok.to_numpy()},
                            index=distinct)

    out = _unique_map(values, run, ["email", "email_valid"])
    out["email_valid"] = out["email_valid"].fillna(False).astype(bool)
    return out


def _ip_one(text: str) -> tuple[str | None, str | None]:
    try:
        ip = ipaddress.ip_address(unicodedata.normalize("NFKC", text).strip())
    except ValueError:
        return None, None
    bits = 24 if ip.version == 4 else 48
    return ip.compressed, str(ipaddress.ip_network(f"{ip}/{bits}", strict=False))


def normalize_ips(values: pd.Series) -> pd.DataFrame:
    """IP addresses: ``ip`` (compressed), ``ip_valid``, ``ip_prefix`` (/24 or /48).

    Example
    -------
    >>> normalize_ips(pd.Series(["10.1.2.3", "2001:0db8:0000::0001", "999.1.1.1"])).values.tolist()
    [['10.1.2.3', True, '10.1.2.0/24'], ['2001:db8::1', True, '2001:db8::/48'], [nan, False, nan]]
    """

    def run(distinct: np.ndarray) -> pd.DataFrame:
        pairs = [_ip_one(v) for v in distinct]
        return pd.DataFrame(
            {"ip": [p[0] for p in pairs], "ip_valid": [p[0] is not None for p in pairs], "ip_prefix": [p[1] for p in pairs]},
            index=distinct,
        )

    out = _unique_map(values, run, ["ip", "ip_valid", "ip_prefix"])
    out["ip_valid"] = out["ip_valid"].fillna(False).astype(bool)
    return out


def normalize_accounts(values: pd.Series) -> pd.DataFrame:
    """Bank account numbers: ``account`` (8–30 digits) and ``account_valid``.

    Example
    -------
    >>> normalize_accounts(pd.Series(["6222 0000-1111 2222", "abc"])).account.tolist()
    ['6222000011112222', nan]
    """

    def run(distinct: np.ndarray) -> pd.DataFrame:
        text = pd.Series(_nfkc_array(distinct)).str.replace(r"[\s\-]", "", regex=True)
        ok = text.str.fullmatch(r"\d{8,30}").fillna(False)
        return pd.DataFrame({"account": text.where(ok, None).to_numpy(dtype=object), "account_valid": ok.to_numpy()},
                            index=distinct)

    out = _unique_map(values, run, ["account", "account_valid"])
    out["account_valid"] = out["account_valid"].fillna(False).astype(bool)
    return out


def normalize_device_ids(values: pd.Series) -> pd.Series:
    """Device fingerprints: half-width and trimmed (case kept: fingerprints are opaque).

    Example
    -------
    >>> normalize_device_ids(pd.Series([" ａｂ12 ", ""])).tolist()
    ['ab12', nan]
    """

    def run(distinct: np.ndarray) -> pd.DataFrame:
        text = pd.Series(_nfkc_array(distinct)).str.strip()
        return pd.DataFrame({"device": text.where(text != "", None).to_numpy(dtype=object)}, index=distinct)

    return _unique_map(values, run, ["device"])["device"]


# -- dates and amounts --------------------------------------------------------------

_DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d", "%Y/%m/%d", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M")
LOCAL_TZ = "Asia/Shanghai"


def parse_datetimes(values: pd.Series) -> pd.Series:
    """Application times to UTC; naive values are Asia/Shanghai local time.

    Example
    -------
    >>> [str(t) for t in parse_datetimes(pd.Series(["2025-03-01 08:00:00", "2025/03/01", "2025-03-01T08:00:00+00:00", "soon"]))]
    ['2025-03-01 00:00:00+00:00', '2025-02-28 16:00:00+00:00', '2025-03-01 08:00:00+00:00', 'NaT']

    Notes
    -----
    Tries the contract's explicit formats vectorised on distinct values, then
    ISO 8601 with offsets, then a per-value parser for stragglers.
    """
    series = values.astype("str") if not pd.api.types.is_string_dtype(values) else values
    present = series.notna()
    distinct = pd.Series(pd.unique(series[present].to_numpy(dtype=object)), dtype=object)
    text = distinct.map(lambda v: unicodedata.normalize("NFKC", v).strip())
    result = pd.Series(pd.NaT, index=distinct.index, dtype="datetime64[ns, UTC]")
    todo = pd.Series(True, index=distinct.index)
    for fmt in _DATE_FORMATS:
        if not todo.any():
            break
        parsed = pd.to_datetime(text[todo], format=fmt, errors="coerce")
        hit = parsed.notna()
        if hit.any():
            local = parsed[hit].dt.tz_localize(LOCAL_TZ, ambiguous="NaT", nonexistent="shift_forward")
            result[hit[hit].index] = local.dt.tz_convert("UTC")
            todo[hit[hit].index] = False
    if todo.any():
        for i in todo[todo].index:
            try:
                ts = pd.Timestamp(text[i])
            except (ValueError, TypeError, OverflowError):
                continue
            if pd.isna(ts):
                continue
            ts = ts.tz_localize(LOCAL_TZ) if ts.tzinfo is None else ts
            result[i] = ts.tz_convert("UTC")
    mapping = pd.Series(result.to_numpy(), index=pd.Index(distinct.to_numpy(dtype=object)))
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]")
    if len(distinct):
        codes = mapping.index.get_indexer(series[present].to_numpy(dtype=object))
        out[present] = mapping.to_numpy()[codes]
    return out


_AMOUNT_JUNK = re.compile(r"[,\s¥￥元]|^CNY|^RMB", re.I)


def parse_amounts(values: pd.Series) -> pd.Series:
    """Money amounts in CNY as float (NaN when unparseable); '1.2万' is 12000.

    Example
    -------
    >>> parse_amounts(pd.Series(["12,000", "￥３０００元", "1.2万", "abc", None])).tolist()
    [12000.0, 3000.0, 12000.0, nan, nan]
    """
    series = values.astype("str") if not pd.api.types.is_string_dtype(values) else values
    plain = pd.to_numeric(series, errors="coerce")
    todo = plain.isna() & series.notna()
    if todo.any():
        def run(distinct: np.ndarray) -> pd.DataFrame:
            text = pd.Series(_nfkc_array(distinct)).str.replace(_AMOUNT_JUNK, "", regex=True)
            wan = text.str.endswith("万")
            number = pd.to_numeric(text.str.rstrip("万"), errors="coerce")
            number = number.where(~wan, number * 10_000)
            return pd.DataFrame({"amount": number.to_numpy(dtype=object)}, index=distinct)

        fixed = _unique_map(series[todo], run, ["amount"])["amount"]
        plain = plain.astype(float)
        plain[todo] = pd.to_numeric(fixed, errors="coerce")
    return plain.astype(float)
