"""Application: fields, score / decision / reasons, findings, the same person's history."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from ringscope.app.dashboard import context, display, services
from ringscope.app.dashboard.masking import mask_record, mask_text

user = context.require("application")
store = context.store()
st.title("Application")
app_id = st.text_input("Application id", value=st.session_state.get("application") or "", key="app_id_input")
if not app_id:
    st.info("Open an application from the queue, the cluster explorer or search, or type its id.")
    st.stop()
st.session_state["application"] = app_id
detail = services.application_detail(store, context.index(), context.findings(), context.members(), app_id)
if detail is None:
    display.say(st.error, "No application {} in this store.", app_id)
    st.stop()

nid = services.node_id("Application", app_id)
revealed = context.is_revealed(nid)

left, right = st.columns([3, 2])
with right:
    st.subheader("Risk")
    if detail.score is None:
        st.info("Not scored yet: run `ringscope train` to score applications.")
    else:
        m1, m2 = st.columns(2)
        m1.metric("Score", f"{detail.score:.2f}")
        m2.metric("Decision", detail.decision or "—")
        if detail.reasons:
            reasons = pd.DataFrame([{
                "code": r.get("code"), "contribution": r.get("contribution"), "detail": mask_text(str(r.get("detail", ""))),
                "evidence": mask_text(str(r.get("evidence", ""))) if r.get("evidence") else ""} for r in detail.reasons])
            context.table(reasons, hide_index=True, width="stretch", key="app_reasons")
    st.subheader("Findings")
    if detail.findings.empty:
        st.caption("In no finding.")
    else:
        shown = detail.findings.assign(summary=detail.findings["summary"].map(mask_text))
        context.table(shown, hide_index=True, width="stretch", key="app_findings")
        pick = st.selectbox("Finding", detail.findings["finding"].tolist(), key="app_finding_pick")
        if st.button("Open in cluster explorer", key="app_open_finding"):
            st.session_state["finding"] = pick
            st.switch_page("pages/cluster.py")
    st.subheader("Case on this application")
    context.case_panel(user, "Application", app_id, prefix="app_case")

with left:
    st.subheader("Fields")
    fields = mask_record("Application", {k: v for k, v in detail.fields.items() if not k.startswith("risk_")},
                         revealed)  # risk_* are shown under Risk
    rows = [{"field": k, "value": str(v)} for k, v in fields.items()]
    context.table(pd.DataFrame(rows), hide_index=True, width="stretch", key="app_fields", height=560)
    if not revealed:
        context.reveal_button(nid, user, key="app_reveal")
    st.subheader("Other applications of the same person")
    if detail.history.empty:
        st.caption("None.")
    else:
        context.table(detail.history, hide_index=True, width="stretch", key="app_history")
