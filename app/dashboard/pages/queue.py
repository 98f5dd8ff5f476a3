"""Alert queue: findings ranked by score, filtered, paginated."""

from __future__ import annotations

import streamlit as st

from ringscope.app.dashboard import cases, context, i18n, names, services
from ringscope.app.dashboard.i18n import N_, _
from ringscope.app.dashboard.masking import mask_text

PAGE_SIZE = 50
FINDINGS, FLAGGED = N_("Findings"), N_("Flagged applications")

user = context.require("queue")
st.title(_("Alert queue"))
table = context.findings()
showing = st.radio(
    _("Show"),
    [FINDINGS, FLAGGED],
    format_func=i18n.formatter(_),
    horizontal=True,
    key="queue_kind",
    label_visibility="collapsed",
)
if showing == FLAGGED:
    flagged = context.flagged()
    if flagged.empty:
        st.info(_("No application flagged by the risk model yet (run `ringscope train`)."))
        st.stop()
    st.metric(
        _("Flagged applications"),
        i18n.fmt_count(len(flagged)),
        help=_("{n} decline").format(n=i18n.fmt_count(int((flagged["risk_decision"] == "decline").sum()))),
    )
    top = flagged.head(500).copy()
    top["applied_at"] = top["applied_at"].map(i18n.fmt_time)
    top["risk_decision"] = top["risk_decision"].map(names.decision_name)
    if "amount" in top:
        top["amount"] = top["amount"].map(i18n.fmt_amount)
    context.table(
        top,
        hide_index=True,
        width="stretch",
        key="flagged_table",
        column_config={
            "risk_score": st.column_config.ProgressColumn(
                names.field_name("risk_score"), min_value=0.0, max_value=1.0, format="%.2f"
            )
        },
    )
    pick = st.selectbox(_("Open application"), top["application_id"].tolist(), key="flagged_pick")
    if st.button(_("Open application"), key="flagged_open"):
        st.session_state["application"] = pick
        st.switch_page("pages/application.py")
    st.stop()
if table.empty:
    st.info(_("No findings yet. Run `ringscope detect` on this store, then reload."))
    st.stop()
statuses = cases.case_statuses(context.store(), "Finding")
ANY = "(any)"

with st.sidebar:
    st.subheader(_("Filters"))
    detectors = st.multiselect(
        _("Detector"),
        sorted(table["detector"].dropna().unique()),
        key="q_detector",
        format_func=i18n.formatter(names.detector_name),
    )
    max_seen = int(table["size"].max() or 1)
    size = st.slider(_("Size (applications)"), 1, max(max_seen, 2), (1, max(max_seen, 2)), key="q_size")
    status = st.multiselect(
        _("Status"), list(cases.STATUSES), key="q_status", format_func=i18n.formatter(names.status_name)
    )
    min_score = st.slider(_("Minimum score"), 0.0, 1.0, 0.0, 0.05, key="q_score")
    dates = table["first_applied"].dropna()
    date_range = None
    if len(dates):
        lo, hi = dates.min().date(), dates.max().date()
        date_range = st.date_input(_("First application between"), (lo, hi), min_value=lo, max_value=hi, key="q_dates")
    agents = sorted(table["agent"].dropna().astype(str).unique())
    agent = st.selectbox(
        _("Agent"), [ANY, *agents], key="q_agent", format_func=i18n.formatter(lambda a: _("(any)") if a == ANY else a)
    )

date_from = date_to = None
if isinstance(date_range, (tuple, list)) and len(date_range) == 2:
    date_from, date_to = date_range
shown = services.filter_queue(
    table,
    statuses,
    detectors=detectors,
    min_size=size[0],
    max_size=size[1],
    status=status,
    date_from=date_from,
    date_to=date_to,
    agent=None if agent == ANY else agent,
    min_score=min_score,
)

c1, c2, c3, c4 = st.columns(4)
c1.metric(_("Findings"), i18n.fmt_count(len(shown)), help=_("{n} in the store").format(n=i18n.fmt_count(len(table))))
c2.metric(_("Applications"), i18n.fmt_count(int(shown["size"].sum())))
c3.metric(_("High score (≥ 0.7)"), i18n.fmt_count(int((shown["score"] >= 0.7).sum())))
c4.metric(names.status_name("Open"), i18n.fmt_count(int((shown["status"] == "Open").sum())))

left, right = st.columns([3, 2])
with right:
    st.caption(_("Findings per week (first application)"))
    volume = services.volume_by_week(shown)
    if len(volume):
        st.bar_chart(volume, x="week", y="findings", height=180, x_label=_("Week"), y_label=_("Findings"))
    by_detector = shown.groupby("detector").size().rename("findings").reset_index()
    by_detector["detector"] = by_detector["detector"].map(names.detector_name)
    context.table(by_detector, hide_index=True, width="stretch")

with left:
    pages = max(1, -(-len(shown) // PAGE_SIZE))
    page = st.number_input(
        _("Page (of {n})").format(n=i18n.fmt_count(pages)), min_value=1, max_value=pages, step=1, key="queue_page_input"
    )
    start = (int(page) - 1) * PAGE_SIZE
    view = shown.iloc[start : start + PAGE_SIZE].copy()
    view["summary"] = [
        mask_text(names.finding_summary(k, n, s)) for k, n, s in zip(view["kind"], view["size"], view["summary"])
    ]
    view["first_applied"] = view["first_applied"].map(i18n.fmt_time)
    view["detector"] = view["detector"].map(names.detector_name)
    view["status"] = view["status"].map(names.status_name)
    columns = ["finding", "score", "size", "detector", "status", "first_applied", "agent", "summary"]
    shown_ids = view["finding"].tolist()

    def ticked() -> None:
        rows = (st.session_state.get("queue_table") or {}).get("selection", {}).get("rows") or []
        if rows and rows[0] < len(shown_ids):
            st.session_state["queue_open_choice"] = shown_ids[rows[0]]

    context.table(
        view[columns],
        hide_index=True,
        width="stretch",
        key="queue_table",
        on_select=ticked,
        selection_mode="single-row",
        column_config={
            "score": st.column_config.ProgressColumn(
                names.field_name("score"), min_value=0.0, max_value=1.0, format="%.2f"
            )
        },
    )
    # one source of truth: the finding id in "queue_open_choice". Ticking a
    # row writes that row's id there (the callback keeps this run's rows,
    # the ones the user saw); the selectbox shows and edits the same key.
    options = view["finding"].tolist()
    if st.session_state.get("queue_open_choice") not in options:
        st.session_state["queue_open_choice"] = options[0] if options else None
    choice = st.selectbox(_("Open a finding"), options, key="queue_open_choice")
    if st.button(_("Open in cluster explorer"), key="queue_open", type="primary", disabled=not options):
        st.session_state["finding"] = choice
        st.session_state["path"] = None
        st.session_state["selected_node"] = None
        st.switch_page("pages/cluster.py")
