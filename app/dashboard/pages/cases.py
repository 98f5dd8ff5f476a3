"""Cases: every case and the audit log."""

from __future__ import annotations

import streamlit as st

from ringscope.app.dashboard import cases, context
from ringscope.app.dashboard.masking import mask_text

user = context.require("cases")
store = context.store()
st.title("Cases")
all_cases = cases.list_cases(store)
status = st.multiselect("Status", list(cases.STATUSES), default=["Open", "In progress"], key="cases_status")
mine = st.toggle("Assigned to me", key="cases_mine")
shown = all_cases[all_cases["status"].isin(status)] if status else all_cases
if mine:
    shown = shown[shown["assignee"] == user.name]
c1, c2, c3, c4 = st.columns(4)
for col, s in zip((c1, c2, c3, c4), cases.STATUSES):
    col.metric(s, int((all_cases["status"] == s).sum()))
if shown.empty:
    st.info("No cases with these filters. Cases are opened from the cluster explorer.")
else:
    context.table(shown.assign(comment=shown["comment"].map(mask_text)), hide_index=True, width="stretch",
                 key="cases_table")
    pick = st.selectbox("Open", shown[shown["target_label"] == "Finding"]["target_key"].tolist(), key="cases_pick")
    if pick and st.button("Open in cluster explorer", key="cases_open"):
        st.session_state["finding"] = pick
        st.switch_page("pages/cluster.py")

st.subheader("Audit log")
who = st.text_input("User", key="audit_user", placeholder="all users")
log = cases.audit_log(store, user=who or None, limit=500)
context.table(log.assign(target=log["target"].map(mask_text), before=log["before"].map(mask_text),
                        after=log["after"].map(mask_text)), hide_index=True,
             width="stretch", key="audit_table")
labels = cases.case_labels(store)
st.caption(f"{len(labels)} applications carry an investigator verdict for the next `ringscope train`.")
