"""Phone numbers to E.164 (default region CN)."""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ringscope.ingest.normalize.text import (
    _clean,
    _clean_one,
    _expand_np,
    _expand_str,
    _factorize,
    _match,
    _sub,
    _to_np_bool,
)

__all__ = ["normalize_phones"]

_PHONE_SEP = r"[ \t()\-.]"
_PHONE_FAST = r"^(?:\+?86|0086)?(?P<m>1[3-9]\d{9})$"


@lru_cache(maxsize=1)
def _cn_mobile_valid_pattern() -> tuple[str, str]:
    """The phonenumbers CN type patterns that can match an 11-digit number
    starting with 1, as one anchored RE2/Python pattern."""
    import phonenumbers

    meta = phonenumbers.PhoneMetadata.metadata_for_region("CN")
    parts = []
    for name in (
        "premium_rate",
        "toll_free",
        "shared_cost",
        "voip",
        "personal_number",
        "pager",
        "uan",
        "voicemail",
        "fixed_line",
        "mobile",
    ):
        desc = getattr(meta, name, None)
        if desc is None or not desc.national_number_pattern:
            continue
        lengths = desc.possible_length or meta.general_desc.possible_length
        if lengths and 11 not in lengths:
            continue
        parts.append(f"(?:{desc.national_number_pattern})")
    general = meta.general_desc.national_number_pattern
    return f"^(?:{general})$", f"^(?:{'|'.join(parts)})$"


def _phone_one(value) -> tuple[str | None, bool]:
    """Reference: phonenumbers.parse(s, 'CN'); E.164 when the number is
    *possible* (plausible full length for its country), valid =
    is_valid_number."""
    import phonenumbers

    s = _clean_one(value)
    if s is None:
        return None, False
    try:
        num = phonenumbers.parse(s, "CN")
    except Exception:  # NumberParseException and anything odd
        return None, False
    try:
        # IS_POSSIBLE only: local-only lengths (5-6 digit numbers without an
        # area code) are not usable as a key.
        if phonenumbers.is_possible_number_with_reason(num) != phonenumbers.ValidationResult.IS_POSSIBLE:
            return None, False
        return (
            phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164),
            bool(phonenumbers.is_valid_number(num)),
        )
    except Exception:
        return None, False


def normalize_phones(values: pd.Series) -> pd.DataFrame:
    """Phone numbers to E.164 (default region CN).

    Parameters
    ----------
    values : pandas.Series of str
        Raw numbers in any common format (full-width digits, ``+86``,
        ``0086``, ``86`` before a mobile, spaces, dashes, dots, parentheses,
        landlines with area code).

    Returns
    -------
    pandas.DataFrame, same index, columns
        ``phone`` (E.164 str or NaN when unparseable, empty or of an
        impossible length) and ``phone_valid`` (bool, phonenumbers'
        ``is_valid_number``: an allocated range for its type).

    The key is kept for numbers that are *possible* but not *valid*
    (unallocated prefix, typo in the range): sharing such a number is still a
    link, and the flag says it is odd. Garbage (wrong length, letters) gets no
    key at all.

    Example
    -------
    >>> normalize_phones(pd.Series(["+86 138-0013-8000", "０１０-１２３４５６７８", "abc"])).to_dict("list")
    {'phone': ['+8613800138000', '+861012345678', nan], 'phone_valid': [True, True, False]}

    Notes
    -----
    Cost: O(n) factorize + vectorised RE2 on the unique values; phonenumbers
    only for the uniques that are not plain CN mobiles.
    """
    series, codes, uniq = _factorize(values)
    arr = _clean(uniq)
    stripped = _sub(arr, _PHONE_SEP, "")
    mobile = pc.struct_field(pc.extract_regex(stripped, _PHONE_FAST), [0])
    fast = _to_np_bool(pc.is_valid(mobile))
    general, types = _cn_mobile_valid_pattern()
    try:
        valid = _match(mobile, general) & _match(mobile, types)
    except pa.ArrowInvalid:  # pattern not RE2-compatible: use Python re
        g, t = re.compile(general), re.compile(types)
        valid = np.array(
            [m is not None and bool(g.match(m)) and bool(t.match(m)) for m in mobile.to_pylist()], dtype=bool
        )
    phone = pc.binary_join_element_wise("+86", mobile, "").to_pylist()
    valid = valid & fast
    slow = np.flatnonzero(~fast & _to_np_bool(pc.is_valid(arr)))
    for i, raw in zip(slow, uniq.take(pa.array(slow)).to_pylist()):
        phone[i], valid[i] = _phone_one(raw)
    return pd.DataFrame(
        {
            "phone": _expand_str(pa.array(phone, type=pa.string()), codes, series.index),
            "phone_valid": _expand_np(valid, codes, False),
        },
        index=series.index,
    )
