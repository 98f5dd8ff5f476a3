"""Application: fields, score / decision / reasons, findings, the same person's history."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from ringscope.app.dashboard import context, display, i18n, names, services
from ringscope.app.dashboard.i18n import _
from ringscope.app.dashboard.masking import mask_record, mask_text

user = context.require("application")
store = context.store()
st.title(_("Application"))
app_id = st.text_input(_("Application id"), value=st.session_state.get("application") or "", key="app_id_input")
if not app_id:
    st.info(_("Open an application from the queue, the cluster explorer or search, or type its id."))
    st.stop()
st.session_state["application"] = app_id
detail = services.application_detail(store, context.index(), context.findings(), context.members(), app_id)
if detail is None:
    display.say(st.error, _("No application {} in this store."), app_id)
    st.stop()

nid = services.node_id("Application", app_id)
revealed = context.is_revealed(nid)

left, right = st.columns([3, 2])
with right:
    st.subheader(_("Risk"))
    if detail.score is None:
        st.info(_("Not scored yet: run `ringscope train` to score applications."))
    else:
        m1, m2 = st.columns(2)
        m1.metric(_("Score"), i18n.fmt_score(detail.score))
        m2.metric(_("Decision"), names.decision_name(detail.decision) if detail.decision else "—")
        if detail.reasons:
            reasons = pd.DataFrame(
                [
                    {
                        "code": names.reason_name(r.get("code")),
                        "contribution": r.get("contribution"),
                        "detail": mask_text(names.reason_detail(r)),
                        "evidence": mask_text(names.reason_evidence(r)),
                    }
                    for r in detail.reasons
                ]
            )
            context.table(reasons, hide_index=True, width="stretch", key="app_reasons")
    st.subheader(_("Findings"))
    if detail.findings.empty:
        st.caption(_("In no finding."))
    else:
        kinds = dict(zip(context.findings()["finding"], context.findings()["kind"]))
        shown = detail.findings.assign(
            summary=[
                mask_text(names.finding_summary(kinds.get(f), n, s))
                for f, n, s in zip(detail.findings["finding"], detail.findings["size"], detail.findings["summary"])
            ],
            detector=detail.findings["detector"].map(names.detector_name),
        )
        context.table(shown, hide_index=True, width="stretch", key="app_findings")
        pick = st.selectbox(_("Finding"), detail.findings["finding"].tolist(), key="app_finding_pick")
        if st.button(_("Open in cluster explorer"), key="app_open_finding"):
            st.session_state["finding"] = pick
            st.switch_page("pages/cluster.py")
    st.subheader(_("Case on this application"))
    context.case_panel(user, "Application", app_id, prefix="app_case")

with left:
    st.subheader(_("Fields"))
    fields = mask_record(
        "Application", {k: v for k, v in detail.fields.items() if not k.startswith("risk_")}, revealed
    )  # risk_* are shown under Risk
    context.table(context.field_rows(fields), hide_index=True, width="stretch", key="app_fields", height=560)
    if not revealed:
        context.reveal_button(nid, user, key="app_reveal")
    st.subheader(_("Other applications of the same person"))
    if detail.history.empty:
        st.caption(_("None."))
    else:
        history = detail.history.copy()
        for col in history.columns:
            if col != "application_id":
                history[col] = [names.fmt_field(col, v) for v in history[col]]
        context.table(history, hide_index=True, width="stretch", key="app_history")
