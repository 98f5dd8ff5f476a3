"""Data in messages: shown as text, never as markup, and never whole when long.

Streamlit renders the body of ``st.error``, ``st.info``, ``st.caption`` and
the like as Markdown, so a value typed by a user or read from the data
(``![x](http://203.0.113.7/t.png)`` as an application id) would become an
image the browser fetches. :func:`say` keeps the two apart by construction:
the template is ours and is Markdown; every value goes into the message as a
Markdown *code span* (:func:`literal`), inside which nothing is parsed —
no links, images, emphasis, colour directives or maths — with a fence of
backticks longer than any run in the value, so the value cannot close it.
Long values are cut for display (:func:`clip`) and say how long they were.
Plain widgets (``st.text``, tables, option lists) never parse Markdown and
need none of this.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

__all__ = ["clip", "literal", "say", "CLIP"]

#: characters of one value shown in a message
CLIP = 80


def clip(value: Any, limit: int = CLIP) -> str:
    """``value`` as text, cut to ``limit`` characters with its length said.

    Example
    -------
    >>> clip("A" * 10_000, 5)
    'AAAAA…（共 10,000 个字符）'
    >>> from ringscope.app.dashboard.i18n import use_language
    >>> with use_language("en"):
    ...     clip("A" * 10_000, 5)
    'AAAAA… (10,000 characters)'
    >>> clip("RA01")
    'RA01'
    """
    from ringscope.app.dashboard.i18n import _

    text = "" if value is None else str(value)
    if len(text) <= limit:
        return text
    return text[:limit] + _("… ({n} characters)").format(n=f"{len(text):,}")


def literal(value: Any, limit: int = CLIP) -> str:
    """``value`` (clipped) as a Markdown code span: shown as typed, never parsed.

    Example
    -------
    >>> literal("![x](http://203.0.113.7/track.png)")
    '`![x](http://203.0.113.7/track.png)`'
    >>> literal("a`b")
    '`` a`b ``'
    """
    text = clip(value, limit).replace("\r", " ").replace("\n", " ")
    if not text:
        return "` `"
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    # a space on both sides when the text touches a backtick (CommonMark strips one)
    if longest or text.startswith(" ") or text.endswith(" "):
        return f"{fence} {text} {fence}"
    return f"{fence}{text}{fence}"


def say(show: Callable[[str], Any], template: str, *values: Any, limit: int = CLIP) -> Any:
    """Call ``show`` (``st.error``, ``st.caption``, …) with ``template`` whose
    ``{}`` fields are filled with :func:`literal` values.

    Example
    -------
    >>> say(str, "No application {} in this store.", "![x](http://203.0.113.7/t.png)")
    'No application `![x](http://203.0.113.7/t.png)` in this store.'
    """
    return show(template.format(*(literal(v, limit) for v in values)))
