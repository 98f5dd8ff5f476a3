"""Deep links: ``?finding=…``, ``?application=…``, ``?case=…``.

A link names one item; opening it (pasted from a ticket, or a reload of
the tab) lands on the page that shows that item, with it open:

- ``?finding=<id>`` → the cluster explorer on that finding;
- ``?application=<id>`` → the application page on that application;
- ``?case=<case key>`` (``case:Finding:<id>``, ``Finding:<id>`` or the
  same for an application) → the cases page with that case open (the
  finding's or application's own page when it has no case yet).

While a page shows an item, its link is kept in the tab's URL (so F5
reopens it) and shown in the sidebar to copy. The link carries the item
only: never the tab's session token (``?session=``), so pasting it into a
ticket gives nobody the sender's log-in. A link to an item that is not in
the store says so on the page it lands on instead of opening another item.

The pure parts (:func:`parse_link`, :func:`share_url`, :func:`base_url`)
are separate from the Streamlit glue (:func:`run`, :func:`remember`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

__all__ = [
    "PARAMS",
    "PAGES",
    "Link",
    "parse_link",
    "share_url",
    "base_url",
    "remember",
    "run",
]

#: the link parameters, in the order one is chosen when a URL has several
PARAMS = ("finding", "application", "case")
#: the page (``url_path``) that opens an item of each label, and the session key holding it
PAGES = {"Finding": ("cluster", "finding"), "Application": ("application", "application")}
#: the page that opens a case (``?case=case:<label>:<id>``) when the case exists
CASES_PAGE = "cases"
#: longest id a link may carry (a longer one is not an id of ours)
MAX_ID = 512


@dataclass(frozen=True)
class Link:
    """What a link asks to open: ``label`` (``Finding`` or ``Application``)
    and ``key``, named by ``param`` = ``value`` in the URL."""

    param: str
    value: str
    label: str
    key: str

    @property
    def page(self) -> str:
        return PAGES[self.label][0]


def _one(value: Any) -> str | None:
    if isinstance(value, (list, tuple)):
        value = value[-1] if value else None
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def parse_link(params: Mapping[str, Any]) -> Link | None:
    """The item a URL's query parameters link to, or ``None``.

    Example
    -------
    >>> parse_link({"finding": "rings-aaaa", "session": "t0k3n"})
    Link(param='finding', value='rings-aaaa', label='Finding', key='rings-aaaa')
    >>> parse_link({"case": "case:Application:RA01"}).page
    'application'
    >>> parse_link({"case": "Finding:rings-b"}).key, parse_link({"lang": "en"})
    ('rings-b', None)
    """
    for param in PARAMS:
        value = _one(params.get(param))
        if value is None:
            continue
        if param == "finding":
            return Link(param, value, "Finding", value)
        if param == "application":
            return Link(param, value, "Application", value)
        body = value[len("case:") :] if value.startswith("case:") else value
        label, sep, key = body.partition(":")
        if sep and label in PAGES and key:
            return Link(param, value, label, key)
        return Link(param, value, "Finding", body)  # a bare id: the case of that finding
    return None


def base_url(url: str | None, pages: list[str] | tuple[str, ...] = ()) -> str:
    """The app's root URL from the browser's URL of a page (``st.context.url``).

    >>> base_url("http://127.0.0.1:8501/cluster", ["queue", "cluster"])
    'http://127.0.0.1:8501'
    >>> base_url("https://risk.example.cn/ringscope/", ["queue"]), base_url(None)
    ('https://risk.example.cn/ringscope', '')
    """
    if not url:
        return ""
    parts = urlsplit(str(url))
    path = parts.path.rstrip("/")
    head, _sep, last = path.rpartition("/")
    if last in pages:
        path = head
    return urlunsplit((parts.scheme, parts.netloc, path, "", "")).rstrip("/")


def share_url(base: str, page: str, param: str, value: str) -> str:
    """The link to paste into a ticket: the item's page with the item, and
    nothing else (no session token, no language).

    >>> share_url("http://127.0.0.1:8501", "cluster", "finding", "rings a/b")
    'http://127.0.0.1:8501/cluster?finding=rings%20a%2Fb'
    """
    return f"{base}/{page}?{param}={quote(str(value), safe='')}"


# -- Streamlit glue -------------------------------------------------------------------------

_SEEN = "link_seen"  # param → value this session has already followed or written
_PENDING = "link_pending"  # link params of a URL opened before the log-in


def remember() -> None:
    """Before the log-in: keep the URL's link, so it opens after the log-in
    whatever the log-in does to the URL."""
    import streamlit as st

    found = {p: _one(st.query_params.get(p)) for p in PARAMS}
    found = {p: v for p, v in found.items() if v}
    if found:
        st.session_state[_PENDING] = found


def _exists(link: Link) -> bool:
    from ringscope.app.dashboard import context

    if len(link.key) > MAX_ID:
        return False
    if link.label == "Finding":
        return bool((context.findings()["finding"] == link.key).any())
    found = context.store().node_properties("Application", [link.key], [])
    return not found.empty


def _follow(current, pages: dict[str, Any]) -> None:
    """Open the URL's link once per session and value (a reload is a new session)."""
    import streamlit as st

    from ringscope.app.dashboard import display
    from ringscope.app.dashboard.i18n import _

    params = {p: st.query_params.get(p) for p in PARAMS if p in st.query_params}
    params = params or st.session_state.pop(_PENDING, None) or {}
    st.session_state.pop(_PENDING, None)
    link = parse_link(params)
    seen: dict[str, str] = st.session_state.setdefault(_SEEN, {})
    if link is None or seen.get(link.param) == link.value:
        return
    seen[link.param] = link.value
    if not _exists(link):
        for p in PARAMS:
            st.query_params.pop(p, None)
        message = (
            _("No finding {} in this store.") if link.label == "Finding" else _("No application {} in this store.")
        )
        st.session_state["link_error"] = display.literal(link.key)
        st.session_state["link_error_template"] = message
        return
    if link.param == "case" and _case_exists(link):
        # the cases page opens one case with its notes, pack and audit trail
        value = f"case:{link.label}:{link.key}"
        st.session_state["case"] = value
        if current.url_path != CASES_PAGE and CASES_PAGE in pages:
            kept = {k: st.query_params.get(k) for k in st.query_params if k not in PARAMS}
            st.switch_page(pages[CASES_PAGE], query_params={**kept, "case": value})
        return
    page, key = PAGES[link.label]
    st.session_state[key] = link.key
    if link.label == "Finding":
        st.session_state["path"] = None
        st.session_state["selected_node"] = None
    if current.url_path != page and page in pages:
        kept = {k: st.query_params.get(k) for k in st.query_params if k not in PARAMS}
        st.switch_page(pages[page], query_params={**kept, link.param: link.value})


def _case_exists(link: Link) -> bool:
    """Is there a case on the linked finding or application (a link to an
    item without one opens the item's own page instead)?"""
    from ringscope.app.dashboard import cases, context

    if len(link.key) > MAX_ID:
        return False
    found = context.store().node_properties("Case", [cases.case_key(link.label, link.key)], [])
    return not found.empty


def _open_item(current) -> tuple[str, str, str] | None:
    """(param, value, label) of the item the page shows, if it is a page with one."""
    import streamlit as st

    if current.url_path == CASES_PAGE and st.session_state.get("case"):
        return "case", str(st.session_state["case"]), "Case"

    for label, (page, key) in PAGES.items():
        if current.url_path == page and st.session_state.get(key):
            return ("finding" if label == "Finding" else "application"), str(st.session_state[key]), label
    return None


def _keep(current, pages: dict[str, Any]) -> None:
    """Put the open item's link in the URL (a reload reopens it) and in the sidebar."""
    import streamlit as st

    from ringscope.app.dashboard.i18n import _

    item = _open_item(current)
    for p in PARAMS:
        if (item is None or p != item[0]) and p in st.query_params:
            del st.query_params[p]
    if item is None:
        return
    param, value, label = item
    if st.query_params.get(param) != value:
        st.query_params[param] = value
    st.session_state.setdefault(_SEEN, {})[param] = value
    try:
        url = st.context.url
    except Exception:  # noqa: BLE001 - no browser (AppTest)
        url = None
    page = CASES_PAGE if label == "Case" else PAGES[label][0]
    link = share_url(base_url(url, list(pages)), page, param, value)
    captions = {
        "Finding": _("Link to this finding"),
        "Application": _("Link to this application"),
        "Case": _("Link to this case"),
    }
    with st.sidebar:
        st.caption(captions[label])
        st.code(link, language=None, wrap_lines=True)


def run(current, pages: list[Any]) -> None:
    """Run the page ``st.navigation`` chose, following the URL's link first
    and keeping the open item's link after."""
    import streamlit as st
    from streamlit.runtime.scriptrunner_utils.exceptions import StopException

    by_path = {p.url_path: p for p in pages}
    _follow(current, by_path)
    error = st.session_state.pop("link_error", None)
    if error:
        st.error(st.session_state.pop("link_error_template", "{}").format(error))
    try:
        current.run()
    except StopException:
        _keep(current, by_path)
        raise
    _keep(current, by_path)
