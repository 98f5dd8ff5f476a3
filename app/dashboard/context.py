"""Streamlit glue shared by the pages: the store, caches, the user, session state.

The store comes from the environment ``launch`` sets (``RINGSCOPE_STORE`` or
``RINGSCOPE_NEO4J_URI``) and is opened once per server
(``st.cache_resource``: the Neo4j driver is shared). Query results are
cached with ``st.cache_data`` keyed by the store location and its data
version (which changes whenever the data does), with a TTL as a backstop.
Session state is initialised in :func:`init_session` only.
"""

from __future__ import annotations

import os
from typing import Any

import pandas as pd
import streamlit as st

from ringscope.app.dashboard import auth, cases, display, i18n, names, services
from ringscope.app.dashboard.auth import User
from ringscope.app.dashboard.i18n import N_, _

__all__ = [
    "config",
    "store",
    "version",
    "findings",
    "members",
    "index",
    "search_index",
    "init_session",
    "current_user",
    "require",
    "login_form",
    "log_out",
    "users_path",
    "SESSION_PARAM",
    "reveal_button",
    "is_revealed",
    "case_panel",
    "table",
    "PAGE_FILES",
    "language_switch",
    "audit_frame",
    "field_rows",
]

#: page name → file (relative to main.py), in menu order, with the permission it needs
PAGE_FILES = [
    (N_("Alert queue"), "pages/queue.py", "queue"),
    (N_("Cluster explorer"), "pages/cluster.py", "cluster"),
    (N_("Search"), "pages/search.py", "search"),
    (N_("Application"), "pages/application.py", "application"),
    (N_("Cases"), "pages/cases.py", "cases"),
    (N_("Cypher console"), "pages/console.py", "console"),
    (N_("Model"), "pages/model.py", "model"),
]


def table(frame: pd.DataFrame, **kwargs: Any):
    """``st.dataframe`` for every table a page shows: the grid's own "Download as
    CSV" writes the cells as they are, so cells that a spreadsheet would run as
    a formula (``=``, ``+``, ``-``, ``@``, tab, CR) are neutralised first.
    Every column is headed by its human name (:func:`names.field_name`) unless
    the page configured it; the frame keeps its own column names."""
    from ringscope.graph.files import spreadsheet_safe

    config = dict(kwargs.pop("column_config", None) or {})
    for column in frame.columns:
        config.setdefault(str(column), names.field_name(str(column)))
    return st.dataframe(spreadsheet_safe(frame), column_config=config, **kwargs)


def config() -> tuple[str | None, str | None]:
    """(store path, Neo4j URI) from the environment."""
    uri = os.environ.get("RINGSCOPE_NEO4J_URI") or None
    path = None if uri else os.environ.get("RINGSCOPE_STORE", ".ringscope")
    return path, uri


@st.cache_resource(show_spinner=False)
def _open(path: str | None, uri: str | None):
    from ringscope.graph.store import open_store

    return open_store(path, uri)


def store():
    return _open(*config())


@st.cache_data(ttl=10, show_spinner=False)
def _version(location: str) -> str:
    return services.data_version(store())


def version() -> str:
    return _version(store().location)


@st.cache_data(ttl=600, show_spinner=False, max_entries=4)
def _findings(location: str, data_version: str) -> pd.DataFrame:
    return services.findings_table(store())


@st.cache_data(ttl=600, show_spinner=False, max_entries=4)
def _flagged(location: str, data_version: str) -> pd.DataFrame:
    return services.flagged_applications(store())


def flagged() -> pd.DataFrame:
    return _flagged(store().location, version())


@st.cache_data(ttl=600, show_spinner=False, max_entries=4)
def _members(location: str, data_version: str) -> pd.DataFrame:
    return services.finding_members(store())


@st.cache_resource(ttl=600, show_spinner=False, max_entries=2)
def _index(location: str, data_version: str) -> services.GraphIndex:
    return services.build_index(store())


@st.cache_resource(ttl=600, show_spinner=False, max_entries=2)
def _search_index(location: str, data_version: str) -> services.SearchIndex:
    return services.build_search_index(store())


def findings() -> pd.DataFrame:
    with st.spinner(_("Reading findings…")):
        return _findings(store().location, version())


def members() -> pd.DataFrame:
    return _members(store().location, version())


def index() -> services.GraphIndex:
    with st.spinner(_("Indexing the graph…")):
        return _index(store().location, version())


def search_index() -> services.SearchIndex:
    with st.spinner(_("Indexing names…")):
        return _search_index(store().location, version())


def init_session() -> None:
    """Every session-state key the pages use, in one place."""
    defaults: dict[str, Any] = {
        "user": None,  # {"name", "role"} after log-in
        "finding": None,  # finding open in the cluster explorer (the one source of truth)
        "cluster_shown": None,  # finding the explorer last drew (a change resets node and path)
        "application": None,  # application open on the Application page
        "revealed": set(),  # ids (Label:key / Application:key) revealed this session
        "expanded": {},  # finding → list of expanded node ids
        "selected_node": None,  # Label:key of the last clicked node
        "path": None,  # shortest path shown, list of ids
        "queue_page": 1,
        "session_token": None,  # this tab's entry in the server's session table (survives F5 in the URL)
        "last_active": None,  # time of the last run (idle timeout)
        "lang": i18n.DEFAULT,  # zh_CN or en (sidebar switch, ?lang=en)
    }
    if "lang" not in st.session_state:  # a link may ask for a language; after that the switch decides
        asked = st.query_params.get(i18n.PARAM)
        if asked in i18n.LANGUAGES:
            st.session_state["lang"] = asked
        elif asked == "zh":
            st.session_state["lang"] = "zh_CN"
    for key, value in defaults.items():
        if key not in st.session_state:
            st.session_state[key] = value
    lang = st.session_state["lang"]
    if lang != i18n.DEFAULT and st.query_params.get(i18n.PARAM) != lang:
        st.query_params[i18n.PARAM] = lang  # page switches drop query parameters; a reload (F5) must keep English


def language_switch() -> None:
    """The sidebar's 中文 / English switch (session state ``lang``, kept in the URL).

    The control is keyed by the language it shows, so after a switch a
    fresh control starts on the new language (no widget state to correct)."""
    current = st.session_state.get("lang") or i18n.DEFAULT
    picked = st.segmented_control(
        "Language · 语言",
        list(i18n.LANGUAGES),
        default=current,
        format_func=i18n.LANGUAGES.get,
        key=f"lang_switch_{current}",
        label_visibility="collapsed",
    )
    if picked and picked != current:
        st.session_state["lang"] = picked
        st.query_params[i18n.PARAM] = picked
        st.rerun()


#: the query parameter holding a tab's session token (see :func:`current_user`)
SESSION_PARAM = "session"


@st.cache_resource(show_spinner=False)
def _sessions() -> auth.SessionTable:
    """This server's log-ins (one table for every browser session)."""
    return auth.SessionTable()


@st.cache_resource(show_spinner=False, ttl=3600)
def _users_path(path: str | None, uri: str | None) -> str:
    return str(auth.users_file(path, uri, store=store()))


def users_path():
    """The users file of this store (the Neo4j database id is asked once an hour)."""
    from pathlib import Path

    path, uri = config()
    return Path(_users_path(path, uri)) if uri else auth.users_file(path)


def _audit_login(name: str, action: str, detail: Any = None) -> None:
    cases.audit(store(), display.clip(name, 64) or "(empty)", action, "login", after=detail)


def _start(user: User, how: str) -> None:
    """Audit the log-in, then hold it in this session and in the session table."""
    import time

    _audit_login(user.name, "login.success", {"method": how})
    st.session_state["user"] = {"name": user.name, "role": user.role}
    st.session_state["session_token"] = _sessions().issue(user)
    st.session_state["last_active"] = time.time()
    st.query_params[SESSION_PARAM] = st.session_state["session_token"]


def log_out(reason: str = "logout") -> None:
    """End this session's log-in (audited) and forget everything it held."""
    user = st.session_state.get("user")
    if user:
        try:
            _audit_login(user["name"], reason)
        except cases.CaseError:
            pass  # a busy store must not keep anyone logged in
    _sessions().revoke(st.session_state.get("session_token"))
    st.query_params.pop(SESSION_PARAM, None)
    for key in list(st.session_state.keys()):  # the language is the reader's, not the log-in's: it stays
        if key != "lang":
            del st.session_state[key]
    init_session()
    if reason == "logout.idle":
        st.session_state["login_flash"] = _("You were logged out after {minutes} minutes without activity.").format(
            minutes=f"{auth.idle_seconds() / 60:g}"
        )


def current_user() -> User | None:
    """The logged-in user: local log-in in session state, or OIDC (``st.login``).

    A reload (F5) starts a new Streamlit session with empty session state;
    the tab's URL keeps ``?session=<token>``, a random token that only this
    server's :class:`auth.SessionTable` can turn back into the user (the
    token carries nothing itself). Streamlit offers pages no way to set a
    cookie (``st.context.cookies`` is read-only and script-set cookies
    cannot be HttpOnly), so the URL is the one place that survives a
    reload. A session idle longer than :func:`auth.idle_seconds` ends.
    """
    import time

    init_session()
    now = time.time()
    user = st.session_state.get("user")
    if user:
        last = st.session_state.get("last_active") or now
        token = st.session_state.get("session_token")
        if now - last > auth.idle_seconds() or (token and _sessions().resume(token, now) is None):
            log_out("logout.idle")
            return None
        st.session_state["last_active"] = now
        if token and st.query_params.get(SESSION_PARAM) != token:
            st.query_params[SESSION_PARAM] = token  # page switches drop query parameters
        return User(user["name"], user["role"])
    token = st.query_params.get(SESSION_PARAM)
    if token:
        found = _sessions().resume(token, now, users_path=users_path())
        if found is not None:
            st.session_state["user"] = {"name": found.name, "role": found.role}
            st.session_state["session_token"] = token
            st.session_state["last_active"] = now
            return found
        st.query_params.pop(SESSION_PARAM, None)
        st.session_state["login_flash"] = _("Your session ended; please log in again.")
    try:
        if st.user.is_logged_in:  # OIDC configured in secrets.toml
            found = auth.oidc_user(users_path(), st.user.get("email"))
            if found:
                _start(found, "oidc")
            return found
    except Exception:  # noqa: BLE001 - no auth configured
        return None
    return None


def _leave_pages_directory_mode() -> None:
    """Until some session of this server has run ``main.py`` (``st.navigation``),
    Streamlit serves a page URL (``/cluster?finding=…`` pasted from a ticket,
    or F5 after a restart) by running ``pages/<page>.py`` alone, its old
    pages-directory mode: no log-in routing, no deep link. Switch the server
    to ``st.navigation`` once and rerun: ``main.py`` then runs and picks the
    same page by its path (a page's id is its path in both modes)."""
    from streamlit import config
    from streamlit.runtime.pages_manager import PagesManager

    # a server only: AppTest resets the mode before each of its runs and runs pages alone on purpose
    if PagesManager.uses_pages_directory and not config.get_option("global.appTest"):
        PagesManager.uses_pages_directory = False
        st.rerun()


def require(permission: str) -> User:
    """Stop the page unless the user is logged in and allowed ``permission``."""
    _leave_pages_directory_mode()
    user = current_user()
    if user is None:
        st.warning(_("Please log in first."))
        st.stop()
    if not auth.can(user.role, permission):
        st.error(_("Your role ({role}) may not open this page.").format(role=user.role))
        st.stop()
    with st.sidebar:
        language_switch()
    return user


def login_form() -> None:
    """Local log-in (development and tests); OIDC via ``st.login`` when configured.

    Every attempt is audited (``login.success``, ``login.failure``,
    ``login.locked``) before the answer is shown; a name with too many wrong
    passwords in a row is locked for a while (:func:`auth.log_in`)."""
    st.title("ringscope")
    st.caption(_("Fraud-ring investigation. Log in to continue."))
    flash = st.session_state.pop("login_flash", None)
    if flash:
        st.info(flash)
    with st.form("login"):
        name = st.text_input(_("User"), key="login_user", max_chars=200)
        password = st.text_input(_("Password"), type="password", key="login_password", max_chars=1000)
        submitted = st.form_submit_button(_("Log in"))
    if submitted:
        result = auth.log_in(users_path(), name, password)
        try:
            if result.user is not None:
                _start(result.user, "password")
            else:
                _audit_login(
                    name,
                    f"login.{result.outcome}",
                    {"failures": result.failures, "locked_seconds": round(result.locked_for)},
                )
        except cases.CaseError as exc:  # the store is busy: no log-in without its audit row
            st.session_state["user"] = None
            st.error(i18n.tr(exc))
            return
        if result.user is not None:
            st.rerun()
        elif result.locked_for > 0:
            st.error(
                _("Too many failed log-ins for this user. Try again in {minutes} minute(s).").format(
                    minutes=max(1, round(result.locked_for / 60))
                )
            )
        else:
            st.error(_("Unknown user or wrong password."))
    try:
        if "auth" in st.secrets:
            if st.button(_("Log in with single sign-on")):
                st.login()
    except Exception:  # noqa: BLE001 - no secrets.toml
        pass


def is_revealed(nid: str) -> bool:
    return nid in st.session_state.get("revealed", set())


def reveal_button(nid: str, user: User, key: str) -> bool:
    """A button that reveals the personal data of ``nid`` (audited first)."""
    if is_revealed(nid):
        return True
    if st.button(_("Reveal personal data"), key=key, help=_("Shows ID numbers, phones and accounts; this is logged.")):
        cases.audit(store(), user.name, "reveal", nid)
        st.session_state["revealed"] = set(st.session_state["revealed"]) | {nid}
        st.rerun()
    return False


@st.cache_data(ttl=600, show_spinner=False, max_entries=32)
def _cluster(
    location: str,
    data_version: str,
    finding: str,
    extra: tuple[str, ...],
    window: tuple | None,
    path: tuple[str, ...],
    revealed: frozenset,
    lang: str = i18n.DEFAULT,
) -> tuple[Any, Any]:
    from ringscope.app.dashboard import graphview, ring_view

    idx = index()
    lo, hi = window if window else (None, None)
    view = services.cluster_subgraph(
        store(), idx, members(), finding, extra=list(extra), applied_from=lo, applied_to=hi
    )
    if path:
        roles = dict(view.nodes)
        for nid in path:
            roles.setdefault(nid, "path")
        view = services.capped_subgraph(idx, roles, services.MAX_ELEMENTS, list(view.notes))
    props = services.view_properties(store(), list(view.nodes))
    # the subject as a node, a layout by kind, a label size per node (ring_view)
    record = ring_view.finding_record(store(), finding)
    captions = {n: graphview.caption(*services.split_node_id(n), props.get(n, {})) for n in view.nodes}
    view, layout = ring_view.arrange(view, record["kind"], record["evidence"], props, captions)
    with i18n.use_language(lang):  # the info panel's words (the language is part of the cache key)
        payload = graphview.build_payload(view, props, revealed, list(path), layout=layout)
    return view, payload


def cluster(finding: str, extra: list[str], window: tuple | None, path: list[str] | None, revealed: set[str]):
    """(Subgraph, GraphPayload) of a finding's view, cached per data version."""
    return _cluster(
        store().location,
        version(),
        finding,
        tuple(extra),
        window,
        tuple(path or ()),
        frozenset(revealed),
        i18n.language(),
    )


def case_panel(user: User, target_label: str, target_key: str, prefix: str = "case") -> None:
    """Status, the form that changes it, the threaded notes, the evidence
    pack and the case's audit log (one place for the cluster explorer, the
    application page and the case page): :func:`case_view.panel`."""
    from ringscope.app.dashboard import case_view

    case_view.panel(user, target_label, target_key, prefix)


def audit_frame(log: pd.DataFrame) -> pd.DataFrame:
    """Audit events for reading: Beijing minutes, actions in words, JSON as
    ``field: value`` text, personal data masked."""
    from ringscope.app.dashboard.masking import mask_text

    out = log.copy()
    if "at" in out:
        out["at"] = out["at"].map(i18n.fmt_time)
    if "action" in out:
        out["action"] = out["action"].map(names.action_name)
    for col in ("before", "after", "target"):
        if col in out:
            out[col] = out[col].map(lambda v: mask_text(names.audit_text(v)))
    return out


def field_rows(record: dict[str, Any], name: str = "field") -> pd.DataFrame:
    """A record as rows of (human field name, value for reading)."""
    return pd.DataFrame(
        {name: [names.field_name(k) for k in record], "value": [names.fmt_field(k, v) for k, v in record.items()]}
    )
