"""Alert queue: findings ranked by score, filtered, paginated."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from ringscope.app.dashboard import cases, context, services
from ringscope.app.dashboard.masking import mask_text

PAGE_SIZE = 50

user = context.require("queue")
st.title("Alert queue")
table = context.findings()
showing = st.radio("Show", ["Findings", "Flagged applications"], horizontal=True, key="queue_kind",
                   label_visibility="collapsed")
if showing == "Flagged applications":
    flagged = context.flagged()
    if flagged.empty:
        st.info("No application flagged by the risk model yet (run `ringscope train`).")
        st.stop()
    st.metric("Flagged applications", f"{len(flagged):,}",
              help=f"{int((flagged['risk_decision'] == 'decline').sum()):,} decline")
    top = flagged.head(500).copy()
    top["applied_at"] = pd.to_datetime(top["applied_at"], utc=True, errors="coerce").dt.strftime("%Y-%m-%d")
    context.table(top, hide_index=True, width="stretch", key="flagged_table",
                 column_config={"risk_score": st.column_config.ProgressColumn("risk_score", min_value=0.0,
                                                                              max_value=1.0, format="%.2f")})
    pick = st.selectbox("Open application", top["application_id"].tolist(), key="flagged_pick")
    if st.button("Open application", key="flagged_open"):
        st.session_state["application"] = pick
        st.switch_page("pages/application.py")
    st.stop()
if table.empty:
    st.info("No findings yet. Run `ringscope detect` on this store, then reload.")
    st.stop()
statuses = cases.case_statuses(context.store(), "Finding")

with st.sidebar:
    st.subheader("Filters")
    detectors = st.multiselect("Detector", sorted(table["detector"].dropna().unique()), key="q_detector")
    max_seen = int(table["size"].max() or 1)
    size = st.slider("Size (applications)", 1, max(max_seen, 2), (1, max(max_seen, 2)), key="q_size")
    status = st.multiselect("Status", list(cases.STATUSES), key="q_status")
    min_score = st.slider("Minimum score", 0.0, 1.0, 0.0, 0.05, key="q_score")
    dates = table["first_applied"].dropna()
    date_range = None
    if len(dates):
        lo, hi = dates.min().date(), dates.max().date()
        date_range = st.date_input("First application between", (lo, hi), min_value=lo, max_value=hi, key="q_dates")
    agents = sorted(table["agent"].dropna().astype(str).unique())
    agent = st.selectbox("Agent", ["(any)", *agents], key="q_agent")

date_from = date_to = None
if isinstance(date_range, (tuple, list)) and len(date_range) == 2:
    date_from, date_to = date_range
shown = services.filter_queue(
    table, statuses, detectors=detectors, min_size=size[0], max_size=size[1], status=status,
    date_from=date_from, date_to=date_to, agent=None if agent == "(any)" else agent, min_score=min_score,
)

c1, c2, c3, c4 = st.columns(4)
c1.metric("Findings", f"{len(shown):,}", help=f"{len(table):,} in the store")
c2.metric("Applications", f"{int(shown['size'].sum()):,}")
c3.metric("High score (≥ 0.7)", f"{int((shown['score'] >= 0.7).sum()):,}")
c4.metric("Open", f"{int((shown['status'] == 'Open').sum()):,}")

left, right = st.columns([3, 2])
with right:
    st.caption("Findings per week (first application)")
    volume = services.volume_by_week(shown)
    if len(volume):
        st.bar_chart(volume, x="week", y="findings", height=180)
    by_detector = shown.groupby("detector").size().rename("findings").reset_index()
    context.table(by_detector, hide_index=True, width="stretch")

with left:
    pages = max(1, -(-len(shown) // PAGE_SIZE))
    page = st.number_input(f"Page (of {pages:,})", min_value=1, max_value=pages, step=1, key="queue_page_input")
    start = (int(page) - 1) * PAGE_SIZE
    view = shown.iloc[start : start + PAGE_SIZE].copy()
    view["summary"] = view["summary"].map(mask_text)
    view["first_applied"] = view["first_applied"].dt.strftime("%Y-%m-%d")
    columns = ["finding", "score", "size", "detector", "status", "first_applied", "agent", "summary"]
    shown_ids = view["finding"].tolist()

    def ticked() -> None:
        rows = (st.session_state.get("queue_table") or {}).get("selection", {}).get("rows") or []
        if rows and rows[0] < len(shown_ids):
            st.session_state["queue_open_choice"] = shown_ids[rows[0]]

    context.table(
        view[columns], hide_index=True, width="stretch", key="queue_table", on_select=ticked,
        selection_mode="single-row",
        column_config={"score": st.column_config.ProgressColumn("score", min_value=0.0, max_value=1.0, format="%.2f")},
    )
    # one source of truth: the finding id in "queue_open_choice". Ticking a
    # row writes that row's id there (the callback keeps this run's rows,
    # the ones the user saw); the selectbox shows and edits the same key.
    options = view["finding"].tolist()
    if st.session_state.get("queue_open_choice") not in options:
        st.session_state["queue_open_choice"] = options[0] if options else None
    choice = st.selectbox("Open a finding", options, key="queue_open_choice")
    if st.button("Open in cluster explorer", key="queue_open", type="primary", disabled=not options):
        st.session_state["finding"] = choice
        st.session_state["path"] = None
        st.session_state["selected_node"] = None
        st.switch_page("pages/cluster.py")
