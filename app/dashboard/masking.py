"""Personal data on screen: masked by default, escaped always.

Resident ID numbers, phone numbers, bank accounts and e-mail addresses are
shown masked (``110101********1234``, ``138****8000``) unless an investigator
reveals one, which is an audited action (see :mod:`app.dashboard.cases`).
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
    "mask_value",
    "mask_text",
    "mask_digits",
    "mask_content",
    "MIN_DIGITS",
    "escape",
    "PII_LABELS",
    "PII_FIELDS",
]

#: node labels whose key is itself personal data, and how to mask it
PII_LABELS = {"Person": "id", "Phone": "phone", "BankAccount": "account", "Email": "email"}

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


_MASKERS = {"id": mask_id, "phone": mask_phone, "account": mask_account, "email": mask_email}


def mask_value(kind: str, value: Any) -> Any:
    """Mask ``value`` as ``kind`` (``id``, ``phone``, ``account``, ``email``);
    missing values pass through.

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


# Resident ID (18 or 15 characters), then mobile phones (+86 optional), then
# long digit runs (accounts). Lookarounds keep USCC codes and keys whole.
_ID_RE = re.compile(r"(?<![0-9A-Za-z])\d{6}(?:19|20)\d{2}[01]\d[0-3]\d\d{3}[0-9Xx](?![0-9A-Za-z])")
_PHONE_RE = re.compile(r"(?<![0-9A-Za-z])(?:\+?86[- ]?)?1[3-9]\d[- ]?\d{4}[- ]?\d{4}(?![0-9A-Za-z])")
_ACCOUNT_RE = re.compile(r"(?<![0-9A-Za-z])\d{12,19}(?![0-9A-Za-z])")
_EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


def mask_text(text: Any) -> Any:
    """Mask every ID number, mobile, account and e-mail found in ``text``.

    Example
    -------
    >>> mask_text("account:6212266232226231 (6 people), phone:+8619966524266, id 110101199003071234")
    'account:6212********6231 (6 people), phone:199****4266, id 110101********1234'
    """
    if not isinstance(text, str) or not text:
        return text
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

    Strings get :func:`mask_digits` and e-mail masking; numbers with
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
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        text = repr(value)
        masked = mask_digits(text)
        return value if masked == text else masked
    if isinstance(value, str):
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
            isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 9)

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
