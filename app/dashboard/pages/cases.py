"""Cases: every case and the audit log."""

from __future__ import annotations

import streamlit as st

from ringscope.app.dashboard import cases, context, i18n, names
from ringscope.app.dashboard.i18n import _
from ringscope.app.dashboard.masking import mask_text

user = context.require("cases")
store = context.store()
st.title(_("Cases"))
all_cases = cases.list_cases(store)
status = st.multiselect(
    _("Status"),
    list(cases.STATUSES),
    default=["Open", "In progress"],
    key="cases_status",
    format_func=i18n.formatter(names.status_name),
)
mine = st.toggle(_("Assigned to me"), key="cases_mine")
shown = all_cases[all_cases["status"].isin(status)] if status else all_cases
if mine:
    shown = shown[shown["assignee"] == user.name]
c1, c2, c3, c4 = st.columns(4)
for col, s in zip((c1, c2, c3, c4), cases.STATUSES):
    col.metric(names.status_name(s), i18n.fmt_count(int((all_cases["status"] == s).sum())))
if shown.empty:
    st.info(_("No cases with these filters. Cases are opened from the cluster explorer."))
else:
    context.table(
        shown.assign(
            comment=shown["comment"].map(mask_text),
            status=shown["status"].map(names.status_name),
            target_label=shown["target_label"].map(names.label_name),
            updated_at=shown["updated_at"].map(i18n.fmt_time),
        ),
        hide_index=True,
        width="stretch",
        key="cases_table",
    )
    pick = st.selectbox(
        _("Open a case"), shown[shown["target_label"] == "Finding"]["target_key"].tolist(), key="cases_pick"
    )
    if pick and st.button(_("Open in cluster explorer"), key="cases_open"):
        st.session_state["finding"] = pick
        st.switch_page("pages/cluster.py")

st.subheader(_("Audit log"))
who = st.text_input(_("User"), key="audit_user", placeholder=_("all users"))
log = cases.audit_log(store, user=who or None, limit=500)
context.table(context.audit_frame(log), hide_index=True, width="stretch", key="audit_table")
labels = cases.case_labels(store)
st.caption(
    _("{n} applications carry an investigator verdict for the next `ringscope train`.").format(
        n=i18n.fmt_count(len(labels))
    )
)
