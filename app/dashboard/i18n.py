"""The dashboard's words: one message catalogue (Babel), Chinese by default.

Every label, message, reason and evidence sentence a page shows goes through
:func:`_` (or :func:`ngettext`); the English source strings are the msgids,
the Chinese is in ``locale/zh_CN/LC_MESSAGES/ringscope.po``, read at run time
(no compile step). Strings that are chosen at run time (field names, reason
codes, statuses) are marked with :func:`N_` where they are defined, so the
catalogue test finds every one of them.

The language is the session's (``st.session_state["lang"]``): Chinese unless
the sidebar switch or ``?lang=en`` in the URL says English. Outside a
Streamlit run (tests, doctests) it is :data:`DEFAULT`, or what
:func:`use_language` set.

Numbers, money and times are formatted here too: Beijing time to the minute,
amounts in whole yuan (``¥1,830,000``), counts with thousands separators.
Human names for fields, statuses, reason codes and evidence are in
:mod:`ringscope.app.dashboard.names`.
"""

from __future__ import annotations

import contextvars
import functools
import math
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from babel.numbers import format_decimal

__all__ = [
    "_",
    "N_",
    "ngettext",
    "formatter",
    "language",
    "use_language",
    "LANGUAGES",
    "DEFAULT",
    "PARAM",
    "catalogue",
    "fmt_time",
    "fmt_date",
    "fmt_amount",
    "fmt_count",
    "fmt_score",
    "fmt_value",
    "TIMEZONE",
    "Message",
    "tr",
]

#: languages offered, with the name the switch shows (each in its own language)
LANGUAGES = {"zh_CN": "中文", "en": "English"}
DEFAULT = "zh_CN"
#: the URL query parameter that picks a language (``?lang=en``)
PARAM = "lang"
#: investigators work on Beijing time
TIMEZONE = "Asia/Shanghai"
LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "ringscope"

_forced: contextvars.ContextVar[str | None] = contextvars.ContextVar("ringscope_lang", default=None)


@functools.cache
def catalogue(lang: str) -> dict[str, Any]:
    """msgid → translation (a string, or a tuple of plural forms) of ``lang``;
    empty for English (the msgids are English) or a language without a file."""
    from babel.messages.pofile import read_po

    path = LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not path.exists():
        return {}
    with path.open("rb") as fh:
        cat = read_po(fh, locale=lang)
    out: dict[str, Any] = {}
    for msg in cat:
        if not msg.id or msg.fuzzy:
            continue
        key = msg.id[0] if isinstance(msg.id, (tuple, list)) else msg.id
        value = tuple(msg.string) if isinstance(msg.string, (tuple, list)) else msg.string
        if value and (not isinstance(value, tuple) or all(value)):
            out[key] = value
    return out


def _session_language() -> str | None:
    try:
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        if get_script_run_ctx(suppress_warning=True) is None:
            return None
        import streamlit as st

        lang = st.session_state.get("lang")
    except Exception:  # noqa: BLE001 - no Streamlit session (a test, a doctest)
        return None
    return lang if lang in LANGUAGES else None


def language() -> str:
    """The language of this session (``zh_CN`` or ``en``).

    Example
    -------
    >>> language()
    'zh_CN'
    """
    return _forced.get() or _session_language() or DEFAULT


class use_language:
    """Context manager: format in ``lang`` whatever the session says.

    Example
    -------
    >>> with use_language("en"):
    ...     _("Alert queue")
    'Alert queue'
    >>> _("Alert queue")
    '告警队列'
    """

    def __init__(self, lang: str) -> None:
        self.lang = lang if lang in LANGUAGES else DEFAULT

    def __enter__(self) -> use_language:
        self._token = _forced.set(self.lang)
        return self

    def __exit__(self, *exc: Any) -> None:
        _forced.reset(self._token)


def formatter(func: Callable[[Any], str]) -> Callable[[Any], str]:
    """``func`` bound to the language of now: a widget's ``format_func`` may
    be called later, outside this run (Streamlit's AppTest does).

    >>> with use_language("en"):
    ...     fmt = formatter(_)
    >>> fmt("Open")
    'Open'
    """
    lang = language()

    def bound(value: Any) -> str:
        with use_language(lang):
            return func(value)

    return bound


def _(message: str) -> str:
    """``message`` in the session's language (the English itself if untranslated).

    Example
    -------
    >>> _("Score")
    '评分'
    """
    found = catalogue(language()).get(message)
    return found if isinstance(found, str) else message


def N_(message: str) -> str:
    """Mark ``message`` for the catalogue without translating it now.

    >>> N_("Open")
    'Open'
    """
    return message


def ngettext(singular: str, plural: str, n: int) -> str:
    """Singular or plural of a message for ``n`` (Chinese has one form).

    Example
    -------
    >>> ngettext("{n} matching application for {{}}, exact matches first, then by risk score (personal data masked)",
    ...          "{n} matching applications for {{}}, exact matches first, then by risk score (personal data masked)",
    ...          3)[:16]
    '{{}} 共匹配 {n} 份申请'
    >>> with use_language("en"):
    ...     ngettext("{n} matching application for {{}}, exact matches first, then by risk score (personal data masked)",
    ...              "{n} matching applications for {{}}, exact matches first, then by risk score (personal data masked)",
    ...              1)[:26]
    '{n} matching application f'
    """
    found = catalogue(language()).get(singular)
    if isinstance(found, tuple):
        return found[0] if len(found) == 1 else found[0 if n == 1 else 1]
    if isinstance(found, str):
        return found
    return singular if n == 1 else plural


# -- numbers, money, time -------------------------------------------------------------


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _locale() -> str:
    return "zh_CN" if language() == "zh_CN" else "en_US"


def fmt_count(value: Any) -> str:
    """A count with thousands separators; ``—`` when missing.

    Example
    -------
    >>> fmt_count(22000), fmt_count(None)
    ('22,000', '—')
    """
    if _missing(value):
        return "—"
    return format_decimal(int(value), format="#,##0", locale=_locale())


def fmt_amount(value: Any) -> str:
    """An amount in CNY as whole yuan: ``¥1,830,000`` (text stays as it is).

    Example
    -------
    >>> fmt_amount(1830000.0), fmt_amount("50000.0"), fmt_amount(-12.6), fmt_amount(None)
    ('¥1,830,000', '¥50,000', '-¥13', '—')
    """
    if _missing(value):
        return "—"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(number):
        return "—"
    whole = int(round(abs(number)))
    sign = "-" if number < 0 and whole else ""
    return f"{sign}¥{format_decimal(whole, format='#,##0', locale=_locale())}"


def fmt_score(value: Any) -> str:
    """A 0–1 score with two decimals.

    >>> fmt_score(0.912), fmt_score(None)
    ('0.91', '—')
    """
    if _missing(value):
        return "—"
    try:
        return f"{float(value):.2f}"
    except (TypeError, ValueError):
        return str(value)


def _timestamp(value: Any) -> pd.Timestamp | None:
    if _missing(value) or (isinstance(value, str) and not value.strip()):
        return None
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        return None
    if ts is pd.NaT:
        return None
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")  # stored times without an offset are UTC
    return ts.tz_convert(TIMEZONE)


def fmt_time(value: Any) -> str:
    """A stored time (UTC, any precision) as Beijing time to the minute;
    text that is not a time comes back as it is, missing as ``—``.

    Example
    -------
    >>> fmt_time("2026-11-30T06:05:41.123456+00:00")
    '2026-11-30 14:05'
    >>> fmt_time(pd.Timestamp("2025-03-01 01:00", tz="UTC")), fmt_time(None), fmt_time("soon")
    ('2025-03-01 09:00', '—', 'soon')
    """
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    ts = _timestamp(value)
    if ts is None:
        return "—" if _missing(value) or not str(value).strip() else str(value)
    return ts.strftime("%Y-%m-%d %H:%M")


def fmt_date(value: Any) -> str:
    """A stored time as its Beijing date.

    >>> fmt_date("2025-03-01T20:00:00Z")
    '2025-03-02'
    """
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    ts = _timestamp(value)
    return "—" if ts is None else ts.strftime("%Y-%m-%d")


# -- human names for what the data calls things ---------------------------------------


def fmt_value(value: Any) -> str:
    """One evidence value for reading: whole numbers with separators, other
    numbers to two decimals, text as it is.

    >>> fmt_value(1234567), fmt_value(0.254), fmt_value("device:d1")
    ('1,234,567', '0.25', 'device:d1')
    """
    if isinstance(value, bool) or _missing(value):
        return "—" if _missing(value) else (_("yes") if value else _("no"))
    if isinstance(value, (int, float)):
        if float(value).is_integer():
            return fmt_count(value)
        return f"{float(value):.2f}"
    return str(value)


class Message(str):
    """An English message that remembers its template and values, so a
    module without Streamlit (``cases``, ``services``) can say something in
    English (``str``) that a page shows translated (:func:`tr`).

    Example
    -------
    >>> m = Message(N_("{n} applications outside the time window are hidden."), n=3)
    >>> str(m), tr(m)
    ('3 applications outside the time window are hidden.', '时间窗之外的 3 份申请已隐藏。')
    """

    template: str
    values: dict[str, Any]

    def __new__(cls, template: str, **values: Any) -> Message:
        self = super().__new__(cls, template.format(**values))
        self.template, self.values = template, values
        return self

    def __reduce__(self):  # cached results are pickled: keep template and values
        return (_message, (self.template, self.values))


def _message(template: str, values: dict[str, Any]) -> Message:
    return Message(template, **values)


def tr(message: Any) -> str:
    """``message`` in the session's language: a :class:`Message` or an
    exception carrying one is translated; other text is looked up as it is.

    >>> tr("Score"), tr(ValueError("not in the catalogue"))
    ('评分', 'not in the catalogue')
    """
    if isinstance(message, BaseException):
        message = message.args[0] if message.args else str(message)
    if isinstance(message, Message):
        values = {
            k: fmt_count(v) if isinstance(v, int) and not isinstance(v, bool) else v for k, v in message.values.items()
        }
        return _(message.template).format(**values)
    return _(str(message))
