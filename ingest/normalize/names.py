"""Person and company names (half-width, simplified, tidy) and their pinyin blocking key."""

from __future__ import annotations

import unicodedata
from functools import cache

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ringscope.ingest.normalize.text import (
    _DOTS,
    _DOTS_RE,
    _HAN,
    _HAN_RE,
    _LATIN,
    _LATIN_RE,
    _STR,
    _TRIM,
    _TRIM_RE,
    _WS,
    _WS_RE,
    _WS_RUN_RE,
    _apply_to_non_ascii,
    _coerce_text,
    _expand_str,
    _factorize,
    _match,
    _nfkc_str,
    _null_empty,
    _strip_tones,
    _sub,
    _t2s,
    _t2s_converter,
    _to_np_bool,
    _trad_class,
)

__all__ = ["normalize_names", "name_pinyin_key"]


def _name_one(value) -> tuple[str | None, str | None]:
    """Reference for one name: (name, script)."""
    s = _coerce_text(value)
    if s is None:
        return None, None
    s = _t2s(unicodedata.normalize("NFKC", s))
    s = _TRIM_RE.sub("", _WS_RUN_RE.sub(" ", s))
    if not s:
        return None, None
    han = _HAN_RE.search(s) is not None
    latin = _LATIN_RE.search(s) is not None
    if han:
        s = _DOTS_RE.sub("\u00b7", _WS_RE.sub("", s))
        return s, "mixed" if latin else "han"
    if latin:
        return _strip_tones(s).lower(), "latin"
    return s, "mixed"


def normalize_names(values: pd.Series) -> pd.DataFrame:
    """Person or company names: half-width, simplified, tidy whitespace.

    Parameters
    ----------
    values : pandas.Series of str

    Returns
    -------
    pandas.DataFrame, same index, columns
        ``name``: NFKC, traditional → simplified (opencc t2s, on values
        holding a character t2s changes by itself), whitespace
        runs collapsed. With Han characters all whitespace is removed and
        middle-dot variants (・ • ‧ . 。…) become '·'; pure Latin (pinyin) is
        lower-cased with tone marks stripped (ü kept). ``name_script``:
        'han', 'latin', 'mixed' (both, or neither e.g. digits), NaN if empty.

    Example
    -------
    >>> normalize_names(pd.Series(["張 偉", "Zhāng  Sān", "阿卜杜拉・买买提", "  "])).values.tolist()
    [['张伟', 'han'], ['zhang san', 'latin'], ['阿卜杜拉·买买提', 'han'], [nan, nan]]

    Notes
    -----
    Cost: O(n) factorize; NFKC and opencc run once each over the
    newline-joined unique values, the rest is vectorised RE2.
    """
    series, codes, uniq = _factorize(values)
    arr = _sub(uniq, "\n", " ")
    arr = _apply_to_non_ascii(arr, _nfkc_str)
    arr = _apply_to_non_ascii(arr, _t2s_converter().convert, _trad_class())
    arr = _null_empty(_sub(_sub(arr, f"{_WS}+", " "), _TRIM, ""))
    han = _match(arr, _HAN)
    latin = _match(arr, _LATIN)
    present = _to_np_bool(pc.is_valid(arr))
    han_val = _sub(_sub(arr, _WS, ""), _DOTS, "\u00b7")
    out = pc.if_else(pa.array(han), han_val, arr)
    lat_only = latin & ~han
    if lat_only.any():
        pos = np.flatnonzero(lat_only)
        sub = arr.take(pa.array(pos))
        sub = _apply_to_non_ascii(sub, _strip_tones)
        out = pc.replace_with_mask(out, pa.array(lat_only), pc.utf8_lower(sub))
    script = np.where(han & ~latin, "han", np.where(lat_only, "latin", "mixed")).astype(object)
    script[~present] = None
    idx = series.index
    return pd.DataFrame(
        {
            "name": _expand_str(out, codes, idx),
            "name_script": _expand_str(pa.array(script, type=pa.string()), codes, idx),
        },
        index=idx,
    )


# Readings of surnames that differ from the common reading pypinyin gives.
_SURNAME_PINYIN = {
    "尉迟": "yuchi",
    "万俟": "moqi",
    "单于": "chanyu",
    "长孙": "zhangsun",
    "澹台": "tantai",
    "令狐": "linghu",
    "欧阳": "ouyang",
    "司马": "sima",
    "诸葛": "zhuge",
    "皇甫": "huangfu",
    "单": "shan",
    "曾": "zeng",
    "区": "ou",
    "解": "xie",
    "仇": "qiu",
    "朴": "piao",
    "查": "zha",
    "盖": "ge",
    "乐": "yue",
    "覃": "qin",
    "缪": "miao",
    "翟": "zhai",
    "黑": "he",
    "重": "chong",
    "种": "chong",
    "秘": "bi",
    "冼": "xian",
    "召": "shao",
    "繁": "po",
    "员": "yun",
    "句": "gou",
    "折": "she",
    "柏": "bai",
    "沈": "shen",
    "葛": "ge",
    "华": "hua",
    "任": "ren",
    "宁": "ning",
    "纪": "ji",
    "燕": "yan",
}


@cache
def _key_char(c: str) -> str:
    """Blocking-key text for one character of a normalised name."""
    if "a" <= c <= "z":
        return c
    if "A" <= c <= "Z":
        return c.lower()
    if c in "üÜ":
        return "v"
    if _HAN_RE.match(c):
        from pypinyin import Style, lazy_pinyin

        out = lazy_pinyin(c, style=Style.NORMAL, errors="ignore")
        return "".join(out).lower() if out else ""
    if _LATIN_RE.match(c):
        base = _strip_tones(c).lower()
        return "v" if base == "ü" else "".join(ch for ch in base if "a" <= ch <= "z")
    return ""


def _surname_split(name: str) -> tuple[str, str]:
    for k in (2, 1):
        head = name[:k]
        if head in _SURNAME_PINYIN:
            return _SURNAME_PINYIN[head], name[k:]
    return "", name


def _pinyin_key_from_name(name: str | None) -> str | None:
    if name is None:
        return None
    head, rest = _surname_split(name)
    key = head + "".join(_key_char(c) for c in rest)
    return key or None


def name_pinyin_key(values: pd.Series) -> pd.Series:
    """Blocking key: toneless pinyin of a name, syllables run together.

    The name is normalised first (:func:`normalize_names`); Han characters
    are read one by one with pypinyin (first reading), except a leading
    surname found in a table of heteronym and compound surnames (单 shan,
    曾 zeng, 区 ou, 尉迟 yuchi …); Latin letters are lower-cased, tone marks
    dropped, ü → v (pypinyin's spelling); everything else is dropped.

    Parameters
    ----------
    values : pandas.Series of str

    Returns
    -------
    pandas.Series of str (NaN when nothing is left), same index.

    Example
    -------
    >>> name_pinyin_key(pd.Series(["张三", "Zhang San", "zhang-san", "單雄信", "吕布"])).tolist()
    ['zhangsan', 'zhangsan', 'zhangsan', 'shanxiongxin', 'lvbu']

    Notes
    -----
    Cost: that of :func:`normalize_names`, plus one ``str.translate`` over
    the joined unique names (pypinyin called once per distinct character).
    """
    series, codes, uniq = _factorize(values)
    names = normalize_names(pd.Series(pd.array(uniq, dtype=_STR)))["name"]
    lst = [None if isinstance(v, float) else v for v in names.tolist()]
    present = [v for v in lst if v is not None]
    heads, rests = [], []
    for v in present:
        h, r = _surname_split(v) if v[:1] in _SURNAME_FIRST else ("", v)
        heads.append(h)
        rests.append(r)
    joined = "\n".join(rests)
    table = {ord(c): _key_char(c) for c in set(joined)}
    table[ord("\n")] = "\n"
    keys = joined.translate(table).split("\n") if rests else []
    if len(keys) != len(rests):  # cannot happen: '\n' was removed by normalize_names
        keys = ["".join(_key_char(c) for c in r) for r in rests]
    it = iter(h + k for h, k in zip(heads, keys))
    out = []
    for v in lst:
        k = None if v is None else next(it)
        out.append(k or None)
    return _expand_str(pa.array(out, type=pa.string()), codes, series.index).rename(series.name)


_SURNAME_FIRST = frozenset(k[0] for k in _SURNAME_PINYIN)
