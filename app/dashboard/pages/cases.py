"""Cases: every case, one case at a time (status, threaded notes, evidence pack), and the audit log.

``?case=case:Finding:<key>`` (or ``case:Application:<key>``) in the URL
opens that case, and the URL follows the case picked, so a reload or a
pasted link shows the same case.
"""

from __future__ import annotations

import streamlit as st

from ringscope.app.dashboard import case_view, cases, context, display, i18n, names
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

# the case open on this page: a link's ?case=…, else the last one picked
asked = st.query_params.get("case") or st.session_state.get("case")
keys = [cases.case_key(lb, k) for lb, k in zip(shown["target_label"], shown["target_key"])]
if (
    asked
    and asked not in keys
    and asked in set(cases.case_key(lb, k) for lb, k in zip(all_cases["target_label"], all_cases["target_key"]))
):
    keys = [asked, *keys]  # a linked case stays reachable whatever the filters say
if shown.empty and not keys:
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
    by_key = {
        cases.case_key(lb, k): (lb, k, s)
        for lb, k, s in zip(all_cases["target_label"], all_cases["target_key"], all_cases["status"])
    }

    def describe(key: str) -> str:
        label, target, state = by_key.get(key, ("", key, ""))
        return f"{names.label_name(label)} {display.clip(mask_text(target), 60)} · {names.status_name(state)}"

    pick = st.selectbox(
        _("Open a case"),
        keys,
        index=keys.index(asked) if asked in keys else 0,
        key="cases_pick",
        format_func=i18n.formatter(describe),
    )
    if pick:
        st.session_state["case"] = pick
        if st.query_params.get("case") != pick:
            st.query_params["case"] = pick  # a reload, or the link pasted into a ticket, opens this case
        label, target = cases.parse_case_key(pick)
        st.subheader(_("Case: {what}").format(what=describe(pick)))
        # the summary and the form on the left; notes, evidence pack and audit trail on the right
        form_col, side_col = st.columns([1, 1], gap="large")
        with form_col:
            if label == "Finding":
                table = context.findings()
                row = table[table["finding"] == target]
                if len(row):
                    r = row.iloc[0]
                    st.text(
                        mask_text(names.finding_summary(r["kind"], r["size"], r["summary"]))
                        + "\n"
                        + _("score {score} · {detector} · {n} applications").format(
                            score=i18n.fmt_score(r["score"]),
                            detector=names.detector_name(r["detector"]),
                            n=i18n.fmt_count(r["size"]),
                        )
                    )
                if st.button(_("Open in cluster explorer"), key="cases_open"):
                    st.session_state["finding"] = target
                    st.switch_page("pages/cluster.py")
            elif label == "Application" and st.button(_("Open application"), key="cases_open_app"):
                st.session_state["application"] = target
                st.switch_page("pages/application.py")
            case_view.panel(user, label, target, prefix="cases_case", side=side_col)

st.subheader(_("Audit log"))
who = st.text_input(_("User"), key="audit_user", placeholder=_("all users"))
log = cases.audit_log(store, user=who or None, limit=500)
log = log.assign(before=[cases.reply_words(a, b) for a, b in zip(log["action"], log["before"])])
context.table(context.audit_frame(log), hide_index=True, width="stretch", key="audit_table")
labels = cases.case_labels(store)
st.caption(
    _("{n} applications carry an investigator verdict for the next `ringscope train`.").format(
        n=i18n.fmt_count(len(labels))
    )
)
