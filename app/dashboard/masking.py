"""Personal data on screen: masked by default, escaped always.

Resident ID numbers, phone numbers, bank accounts, e-mail addresses and
street addresses are shown masked (``110101********1234``, ``138****8000``,
``广东省深圳市****``) unless an investigator reveals one, which is an
audited action (see :mod:`ringscope.app.dashboard.cases`). Fields computed from the ID
number (birth date, region code, gender) are masked with it: shown beside a
masked ID they would give its hidden digits back. :func:`mask_record` applies
that one rule to a whole record, wherever a page shows one.
Free text (finding evidence, summaries, reasons) goes through
:func:`mask_text`, which finds those values inside sentences.

The Cypher console shows computed values (``toInteger(id)``,
``reverse(phone)``, digits spaced out), whose column names and shapes say
nothing, so it masks by content instead: :func:`mask_content` masks every
run of at least :data:`MIN_DIGITS` digits, separators between digits
ignored, in strings and numbers alike, keeping only the first and last
three digits, so a reversed value shows no more than a forward one.

Everything applicant-derived that reaches the graph component goes through
:func:`escape` first: st-link-analysis renders node properties as raw HTML.
"""

from __future__ import annotations

import datetime
import html
import re
from typing import Any

__all__ = [
    "mask_id",
    "mask_phone",
    "mask_account",
    "mask_email",
    "mask_address",
    "mask_value",
    "mask_record",
    "mask_text",
    "mask_digits",
    "mask_content",
    "MIN_DIGITS",
    "escape",
    "PII_LABELS",
    "PII_FIELDS",
]

#: node labels whose key is itself personal data, and how to mask it
PII_LABELS = {"Person": "id", "Phone": "phone", "BankAccount": "account", "Email": "email", "Address": "address"}

#: record fields holding personal data, and how to mask them
PII_FIELDS = {
    "applicant_id_number_raw": "id",
    "id_number_raw": "id",
    "borrower_key": "id",
    "applicant_phone_raw": "phone",
    "guarantor_phone": "phone",
    "guarantor_phone_raw": "phone",
    "bank_account_raw": "account",
    "email_raw": "email",
    "person": "id",
    "phone": "phone",
    "account": "account",
    "email": "email",
    "applicant_address_raw": "address",
    "company_address_raw": "address",
    "address": "address",
    # computed from the ID number: the masked digits themselves (birth date),
    # or parts of them (region, gender = parity of the 17th digit)
    "birth_date": "id_part",
    "region_code": "id_part",
    "gender": "id_part",
    "dob": "id_part",
}


def mask_id(value: str) -> str:
    """Keep the region (6) and the last 4 characters of a resident ID.

    Example
    -------
    >>> mask_id("110101199003071234")
    '110101********1234'
    >>> mask_id("anon:7f3a")
    'anon:7f3a'
    """
    value = str(value)
    if len(value) in (15, 18) and value[:6].isdigit():
        return value[:6] + "*" * (len(value) - 10) + value[-4:]
    return value if not any(ch.isdigit() for ch in value) or value.startswith("anon:") else _mask_middle(value, 2, 2)


def mask_phone(value: str) -> str:
    """Mainland mobile as ``138****8000`` (country code dropped).

    Example
    -------
    >>> mask_phone("+8613800138000")
    '138****8000'
    >>> mask_phone("010-12345678")
    '010****5678'
    """
    value = str(value)
    digits = re.sub(r"\D", "", value)
    if value.startswith("+86") or (digits.startswith("86") and len(digits) == 13):
        digits = digits[2:]
    if len(digits) < 7:
        return "*" * len(digits)
    return digits[:3] + "****" + digits[-4:]


def mask_account(value: str) -> str:
    """Bank account: first 4 and last 4 digits.

    Example
    -------
    >>> mask_account("6222629455702932303")
    '6222***********2303'
    """
    return _mask_middle(str(value), 4, 4)


def mask_email(value: str) -> str:
    """``jp***@126.com``.

    Example
    -------
    >>> mask_email("jpqsp476@126.com")
    'jp***@126.com'
    """
    value = str(value)
    local, at, domain = value.partition("@")
    if not at:
        return _mask_middle(value, 2, 0)
    return local[:2] + "***@" + domain


def _mask_middle(value: str, head: int, tail: int) -> str:
    if len(value) <= head + tail:
        return "*" * len(value)
    return value[:head] + "*" * (len(value) - head - tail) + (value[-tail:] if tail else "")


#: the end of the province-level unit, then of the city-level unit, of a Chinese address
_PROVINCE_ENDS = ("特别行政区", "自治区", "省")
_MUNICIPALITIES = ("北京市", "上海市", "天津市", "重庆市")
_CITY_ENDS = ("自治州", "地区", "市", "盟")
#: what stands for the hidden part of an address (fixed: its length says nothing)
ADDRESS_MASK = "****"


def mask_address(value: str) -> str:
    """Keep the province and city of an address, mask the rest.

    Example
    -------
    >>> mask_address("广东省深圳市南山区科技园1号1栋1单元101室")
    '广东省深圳市****'
    >>> mask_address("北京市朝阳区建国路88号")
    '北京市****'
    >>> mask_address("新疆维吾尔自治区乌鲁木齐市天山区1号")
    '新疆维吾尔自治区乌鲁木齐市****'
    >>> mask_address("Flat 3, 12 High Street")
    'Fl****'
    """
    value = str(value).strip()
    keep = _region_prefix(value) or value[:2]  # no province or city recognised: almost nothing
    return keep + ADDRESS_MASK if len(keep) < len(value) else keep


def _region_prefix(value: str) -> str:
    """The province and city at the start of an address ('' when none is recognised)."""
    for city in _MUNICIPALITIES:
        if value.startswith(city):
            return city
    start = 0
    for end in _PROVINCE_ENDS:
        at = value.find(end)
        if 0 < at <= 12:
            start = at + len(end)
            break
    ends = [value.find(c, start) for c in _CITY_ENDS]
    ends = [(at, c) for at, c in zip(ends, _CITY_ENDS) if at > start and at - start <= 12]
    if ends:
        at, c = min(ends)
        return value[: at + len(c)]
    return value[:start]


#: what the part of an address below the city holds (a company name holds none of these)
_ADDRESS_DETAIL = re.compile(r"[号室栋幢楼路街村弄巷]|单元|大道|小区")


def _looks_like_address(text: str) -> bool:
    """A province or city first, then street / building / room words (console cells)."""
    prefix = _region_prefix(text)
    return bool(prefix) and bool(_ADDRESS_DETAIL.search(text, len(prefix)))


def _mask_part(value: str) -> str:
    return "*" * min(len(value), 10)


_MASKERS = {
    "id": mask_id,
    "phone": mask_phone,
    "account": mask_account,
    "email": mask_email,
    "address": mask_address,
    "id_part": _mask_part,
}


def mask_value(kind: str, value: Any) -> Any:
    """Mask ``value`` as ``kind`` (``id``, ``phone``, ``account``, ``email``,
    ``address``, ``id_part``: a field computed from an ID number); missing
    values pass through.

    Example
    -------
    >>> mask_value("phone", "13800138000")
    '138****8000'
    >>> mask_value("phone", None) is None
    True
    """
    if value is None or (isinstance(value, float) and value != value) or value == "":
        return value
    try:
        import pandas as pd

        if pd.isna(value):
            return value
    except (TypeError, ValueError):
        pass
    return _MASKERS[kind](str(value))


def mask_record(label: str | None, record: dict[str, Any], revealed: bool = False) -> dict[str, Any]:
    """A record as a page may show it: the key masked by ``label``
    (:data:`PII_LABELS`), personal fields by :data:`PII_FIELDS` (those
    computed from the ID number too), other text by :func:`mask_text`;
    ``revealed`` (an audited reveal) shows it as stored.

    Example
    -------
    >>> mask_record("Person", {"key": "110101199003071234", "birth_date": "1990-03-07",
    ...                        "region_code": "110101", "name": "张伟"})
    {'key': '110101********1234', 'birth_date': '**********', 'region_code': '******', 'name': '张伟'}
    """
    if revealed:
        return dict(record)
    out: dict[str, Any] = {}
    for k, v in record.items():
        kind = PII_LABELS.get(label or "") if k == "key" else PII_FIELDS.get(k)
        if kind is not None:
            v = mask_value(kind, v)
        out[k] = mask_text(v) if isinstance(v, str) else v
    return out


# Resident ID (18 or 15 characters), then mobile phones (+86 optional), then
# long digit runs (accounts). Lookarounds keep USCC codes and keys whole.
_ID_RE = re.compile(r"(?<![0-9A-Za-z])\d{6}(?:19|20)\d{2}[01]\d[0-3]\d\d{3}[0-9Xx](?![0-9A-Za-z])")
_PHONE_RE = re.compile(r"(?<![0-9A-Za-z])(?:\+?86[- ]?)?1[3-9]\d[- ]?\d{4}[- ]?\d{4}(?![0-9A-Za-z])")
_ACCOUNT_RE = re.compile(r"(?<![0-9A-Za-z])\d{12,19}(?![0-9A-Za-z])")
_EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# detectors name a shared address as ``address:<text> (n people)`` in evidence
_ADDRESS_VALUE_RE = re.compile(r"(?<=address:)[^\s(),;]+")


def mask_text(text: Any) -> Any:
    """Mask every ID number, mobile, account and e-mail found in ``text``.

    Example
    -------
    >>> mask_text("account:6212266232226231 (6 people), phone:+8619966524266, id 110101199003071234")
    'account:6212********6231 (6 people), phone:199****4266, id 110101********1234'
    >>> mask_text("address:广东省深圳市南山区科技园1号 (4 people)")
    'address:广东省深圳市**** (4 people)'
    """
    if not isinstance(text, str) or not text:
        return text
    text = _ADDRESS_VALUE_RE.sub(lambda m: mask_address(m.group(0)), text)
    text = _ID_RE.sub(lambda m: mask_id(m.group(0)), text)
    text = _PHONE_RE.sub(lambda m: mask_phone(m.group(0)), text)
    text = _ACCOUNT_RE.sub(lambda m: mask_account(m.group(0)), text)
    return _EMAIL_RE.sub(lambda m: mask_email(m.group(0)), text)


#: digit runs this long or longer are personal data to the console: mobiles
#: (11), resident IDs (15/18), bank cards (16-19); dates (8) and amounts stay
MIN_DIGITS = 11
# digits, each pair separated by at most three characters that are neither
# letters, digits nor the mask character: "1 3 8", "138-0013", "1, 3, 8"
_DIGIT_RUN = re.compile(r"\d(?:[^0-9A-Za-z*]{0,3}\d)*")
_KEEP = 3


def mask_digits(text: str) -> str:
    """Mask every run of :data:`MIN_DIGITS`+ digits in ``text``, whatever
    separates them, keeping the first and last three digits.

    Example
    -------
    >>> mask_digits("110101199003071234")
    '110************234'
    >>> mask_digits("4321700309910101011")
    '432*************011'
    >>> mask_digits("1 3 8 0 0 1 3 8 0 0 0 on 2024-03-01, amount 150000.00")
    '138*****000 on 2024-03-01, amount 150000.00'
    """

    def repl(match: re.Match) -> str:
        digits = [ch for ch in match.group(0) if ch.isdigit()]
        if len(digits) < MIN_DIGITS:
            return match.group(0)
        return "".join(digits[:_KEEP]) + "*" * (len(digits) - 2 * _KEEP) + "".join(digits[-_KEEP:])

    return _DIGIT_RUN.sub(repl, text)


def mask_content(value: Any) -> Any:
    """Mask personal data in any console value, by content alone.

    Strings that read as an address (a province or city, then street,
    building or room words) get :func:`mask_address`; other strings get
    :func:`mask_digits` and e-mail masking; numbers with
    :data:`MIN_DIGITS`+ digits become masked text; lists and maps are masked
    item by item (keys too), and a list holding a run of single digits (a
    value split into characters) is masked as that run. Date and time values
    pass unchanged.

    Content masking is a screen guard, not a wall: a value cut into short
    pieces across cells or rows, or encoded as something else, is not
    recognised. The audit log, which records every console query, is the
    control for that.

    Example
    -------
    >>> mask_content(110101199003071234)
    '110************234'
    >>> mask_content(1.1010119900307123e+17)
    '110***********123e+17'
    >>> mask_content(["1", "3", "8", "0", "0", "1", "3", "8", "0", "0", "0"])
    ['1', '3', '8', '*', '*', '*', '*', '*', '0', '0', '0']
    >>> mask_content({"amount": 150000.0, "phone": "13800138000"})
    {'amount': 150000.0, 'phone': '138*****000'}
    >>> mask_content(["广东省深圳市南山区科技园1号", "深圳市腾讯计算机系统有限公司"])
    ['广东省深圳市****', '深圳市腾讯计算机系统有限公司']
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        text = repr(value)
        masked = mask_digits(text)
        return value if masked == text else masked
    if isinstance(value, str):
        if _looks_like_address(value.strip()):
            return mask_address(value)
        return _EMAIL_RE.sub(lambda m: mask_email(m.group(0)), mask_digits(value))
    if isinstance(value, (list, tuple)):
        return _mask_digit_items([mask_content(v) for v in value])
    if isinstance(value, dict):
        return {mask_content(k): mask_content(v) for k, v in value.items()}
    if isinstance(value, (bytes, bytearray)):
        return mask_content(bytes(value).decode("utf-8", "replace"))
    if hasattr(value, "iso_format") or isinstance(value, (datetime.date, datetime.time, datetime.timedelta)):
        return value  # dates and times as typed by the server (their digits are not an identifier)
    return mask_content(str(value))


def _mask_digit_items(items: list[Any]) -> list[Any]:
    """Mask runs of MIN_DIGITS+ consecutive single-digit items (``split(id, '')``)."""

    def single_digit(v: Any) -> bool:
        return (isinstance(v, str) and len(v) == 1 and v.isdigit()) or (
            isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 9
        )

    out = list(items)
    i = 0
    while i < len(out):
        j = i
        while j < len(out) and single_digit(out[j]):
            j += 1
        if j - i >= MIN_DIGITS:
            for k in range(i + _KEEP, j - _KEEP):
                out[k] = "*"
        i = max(j, i + 1)
    return out


def escape(value: Any) -> str:
    """HTML-escape anything on its way to a component (quotes included).

    Example
    -------
    >>> escape('<img src=x onerror="alert(1)">')
    '&lt;img src=x onerror=&quot;alert(1)&quot;&gt;'
    """
    if value is None:
        return ""
    return html.escape(str(value), quote=True)
