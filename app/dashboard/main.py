"""Streamlit entry point: log-in, then route (``st.navigation``) by role and by
the URL's deep link (``?finding=…``, ``?application=…``, ``?case=…``: :mod:`links`)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from ringscope.app.dashboard import auth, context, display, links, names
from ringscope.app.dashboard.i18n import _

st.set_page_config(page_title="ringscope", layout="wide", initial_sidebar_state="expanded")
context.init_session()
user = context.current_user()
if user is None:
    with st.sidebar:
        context.language_switch()  # 中文 / English (each page draws it through context.require)
    links.remember()  # a pasted link opens after the log-in
    # every page's address shows the log-in too: a link to a page (``/cluster?finding=…``)
    # keeps its path and parameters through the log-in and then opens
    login = [st.Page(context.login_form, title=_("Log in"), url_path="login", default=True)]
    login += [
        st.Page(context.login_form, title=_("Log in"), url_path=Path(file).stem)
        for _title, file, _p in context.PAGE_FILES
    ]
    st.navigation(login, position="hidden").run()
else:
    here = Path(__file__).parent
    # url_path stays English (links survive a language switch); the title is worded
    pages = [
        st.Page(str(here / file), title=_(title), url_path=Path(file).stem)
        for title, file, permission in context.PAGE_FILES
        if auth.can(user.role, permission)
    ]
    with st.sidebar:
        st.text(f"{display.clip(user.name, 40)} · {names.role_name(user.role)}")  # text, never markdown
        path, uri = context.config()
        if uri:
            from ringscope.graph.store import redact_uri

            uri = redact_uri(uri)
        st.text(_("store: {where}").format(where=display.clip(uri or path, 60)))
        if st.button(_("Log out"), key="logout"):
            context.log_out()
            st.rerun()
    links.run(st.navigation(pages), pages)
