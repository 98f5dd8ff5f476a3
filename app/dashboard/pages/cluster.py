"""Cluster explorer: a finding's ring as a graph, its evidence, its case."""

from __future__ import annotations

import functools
import json

import pandas as pd
import streamlit as st
from st_link_analysis import Event, st_link_analysis

from ringscope.app.dashboard import context, display, graphview, i18n, names, ring_view, services
from ringscope.app.dashboard.i18n import N_, _
from ringscope.app.dashboard.masking import PII_FIELDS, PII_LABELS, mask_record, mask_text, mask_value

GRAPH_KEY = "cluster_graph"
#: how each layout is drawn, in words (the graph's caption)
LAYOUT_WORDS = {
    "concentric": N_("rings around what the members share"),
    "circle": N_("the guarantee circle clockwise, arrows from guarantor to borrower"),
    "timeline": N_("applications in time order, left to right"),
    "": N_("force layout"),
}


@st.cache_data(ttl=600, show_spinner=False, max_entries=4)
def _finding_labels(location: str, data_version: str, lang: str, _table: pd.DataFrame) -> dict[str, str]:
    """finding → its line in the selectbox, once per data version and language
    (10,000 summaries take seconds to word and mask); ``_table`` is that
    version's findings (not hashed)."""
    table = _table
    # in Chinese a summary is worded from (kind, size) alone: few distinct ones
    summary = functools.lru_cache(maxsize=None)(names.finding_summary)
    with i18n.use_language(lang):
        return {
            f: f"{sc:.2f} · {mask_text(summary(k, n, s if lang == 'en' else None))}"
            for f, sc, k, n, s in zip(table["finding"], table["score"], table["kind"], table["size"], table["summary"])
        }


@st.cache_data(ttl=600, show_spinner=False, max_entries=16)
def _timeline(location: str, data_version: str, applications: tuple[str, ...], lang: str) -> pd.DataFrame:
    with i18n.use_language(lang):
        return ring_view.timeline_frame(context.store(), list(applications))


user = context.require("cluster")
store = context.store()
table = context.findings()
st.title(_("Cluster explorer"))
if table.empty:
    st.info(_("No findings yet. Run `ringscope detect` on this store, then reload."))
    st.stop()

# one source of truth: session "finding" (set by the queue, search, the
# application page or this selectbox); the selectbox only mirrors it
options = table["finding"].tolist()
if st.session_state.get("finding") not in options:
    st.session_state["finding"] = options[0]
if st.session_state.get("cluster_finding") != st.session_state["finding"]:
    st.session_state["cluster_finding"] = st.session_state["finding"]


def _switched() -> None:
    st.session_state["finding"] = st.session_state["cluster_finding"]


labels = _finding_labels(store.location, context.version(), i18n.language(), table)
finding = st.selectbox(
    _("Finding"),
    options,
    key="cluster_finding",
    on_change=_switched,
    format_func=lambda f: f"{display.clip(f, 40)} — {labels.get(f, '')}"[:300],
)
if finding != st.session_state.get("cluster_shown"):  # another ring: nothing of the last one carries over
    st.session_state["cluster_shown"] = finding
    st.session_state["path"] = None
    st.session_state["selected_node"] = None
row = table[table["finding"] == finding].iloc[0]
# the graph component is keyed by the finding: a new ring mounts a new
# component, laid out anew (no positions, zoom or info panel of the last one)
graph_key = f"{GRAPH_KEY}_{graphview.token('Finding:' + finding)}"

# -- controls: time window -------------------------------------------------------
window = None
if pd.notna(row["first_applied"]):
    lo, hi = row["first_applied"].date(), row["last_applied"].date()
    if lo < hi:
        picked = st.slider(_("Applications between"), min_value=lo, max_value=hi, value=(lo, hi), key="cluster_window")
        if tuple(picked) != (lo, hi):
            window = tuple(picked)

expanded: dict = st.session_state["expanded"]
extra = list(expanded.get(finding, []))
path = st.session_state.get("path") or []
view, payload = context.cluster(finding, extra, window, path, st.session_state["revealed"])

# -- events from the graph (clicks and expands come back as the component value) ---
event = st.session_state.get(graph_key)
if isinstance(event, dict) and event.get("timestamp") != st.session_state.get("cluster_last_event"):
    st.session_state["cluster_last_event"] = event.get("timestamp")
    data = event.get("data") or {}
    if event.get("action") == "node_click":
        nid = payload.id_of(str(data.get("target_id")))
        if nid:
            st.session_state["selected_node"] = nid
    elif event.get("action") == "expand":
        for tok in data.get("node_ids") or []:
            nid = payload.id_of(str(tok))
            if nid and nid not in extra:
                extra.append(nid)
                st.session_state["selected_node"] = nid
        expanded[finding] = extra
        view, payload = context.cluster(finding, extra, window, path, st.session_state["revealed"])

graph_col, side_col = st.columns([3, 2])
with graph_col:
    st.caption(
        _("{nodes} nodes, {links} links · {layout} · labels on {labelled} nodes (zoom in for the rest)").format(
            nodes=i18n.fmt_count(len(view.nodes)),
            links=i18n.fmt_count(len(view.edges)),
            layout=_(LAYOUT_WORDS.get(payload.layout, LAYOUT_WORDS[""])),
            labelled=i18n.fmt_count(payload.labelled),
        )
        + " · "
        + _("Click a node for details, double-click to expand it.")
    )
    for note in view.notes:
        st.warning(i18n.tr(note))
    st_link_analysis(
        payload.elements,
        layout=graphview.layout_options(payload),
        node_styles=graphview.node_styles(),
        edge_styles=graphview.edge_styles(),
        height=620,
        key=graph_key,
        node_actions=["expand"],
        events=[Event("node_click", "click tap", "node")],
    )
    legend = ring_view.legend_items(
        sorted({services.split_node_id(n)[0] for n in view.nodes}),
        has_path=bool(path),
        has_guarantees=bool(len(view.edges)) and bool((view.edges["type"] == "GUARANTEES").any()),
        marks=ring_view.view_marks(payload.elements),
    )
    with st.container(key="ring_legend"):  # under the graph: the graph stays high on the page
        # our own words only, every one escaped (legend_html): no applicant text here
        st.markdown(ring_view.legend_html(legend), unsafe_allow_html=True)
    member_apps = [services.split_node_id(n)[1] for n, r in view.nodes.items() if r == "member"]
    timeline = _timeline(store.location, context.version(), tuple(sorted(member_apps)), i18n.language())
    with st.container(key="ring_timeline"):
        st.caption(_("The ring's applications over time, coloured by outcome"))
        if timeline.empty:
            st.caption(_("No application dates."))
        else:
            st.altair_chart(ring_view.timeline_chart(timeline), width="stretch")
    in_view = [n for n in view.nodes if not n.startswith(ring_view.SUBNET + ":")]  # stored nodes only

    def describe(nid: str) -> str:
        label, key = services.split_node_id(nid)
        shown = mask_value(PII_LABELS[label], key) if label in PII_LABELS and not context.is_revealed(nid) else key
        return f"{names.label_name(label)} · {shown}"

    with st.expander(_("Shortest path between two entities"), expanded=bool(path)):
        a = st.selectbox(_("From"), in_view, format_func=i18n.formatter(describe), key="path_from")
        b = st.selectbox(
            _("To"), in_view, index=min(1, len(in_view) - 1), format_func=i18n.formatter(describe), key="path_to"
        )
        p1, p2 = st.columns(2)
        if p1.button(_("Find shortest path"), key="path_go"):
            found = services.shortest_path(context.index(), a, b)
            st.session_state["path"] = found
            if not found:
                st.session_state["path"] = None
                st.warning(_("No path within 4 hops (hubs are not walked through)."))
            else:
                st.rerun()
        if path and p2.button(_("Clear path"), key="path_clear"):
            st.session_state["path"] = None
            st.rerun()
        if path:
            st.text(" → ".join(describe(n) for n in path))
    if extra and st.button(_("Collapse expanded nodes"), key="cluster_collapse"):
        expanded[finding] = []
        st.rerun()


def _evidence() -> None:
    found = store.node_properties("Finding", [finding], ["evidence", "parameters", "detector", "run_at"])
    evidence = []
    if len(found) and isinstance(found["evidence"].iloc[0], str):
        evidence = json.loads(found["evidence"].iloc[0] or "[]")
    st.text(
        mask_text(names.finding_summary(row["kind"], row["size"], row["summary"]))
        + "\n"
        + _("score {score} · {detector} · {n} applications").format(
            score=i18n.fmt_score(row["score"]),
            detector=names.detector_name(row["detector"]),
            n=i18n.fmt_count(row["size"]),
        )
    )
    if evidence:
        ev = pd.DataFrame(
            [
                {
                    "feature": names.evidence_name(e.get("feature")),
                    "contribution": e.get("contribution"),
                    "detail": mask_text(names.evidence_text(e.get("feature"), e.get("detail"), e.get("values", []))),
                    "values": mask_text(", ".join(map(i18n.fmt_value, e.get("values", [])))),
                }
                for e in evidence
            ]
        )
        context.table(ev, hide_index=True, width="stretch", key="evidence_table")
    shared = [n for n, r in view.nodes.items() if r == "shared"]
    if shared:
        st.caption(_("Shared identifiers"))
        context.table(
            pd.DataFrame({"identifier": [describe(n) for n in shared]}),
            hide_index=True,
            width="stretch",
            key="shared_table",
        )
    if len(found) and isinstance(found["parameters"].iloc[0], str):
        display.say(
            st.caption,
            _("detector parameters: {} · run {}"),
            found["parameters"].iloc[0],
            i18n.fmt_time(found["run_at"].iloc[0]),
            limit=400,
        )


with side_col:
    # the evidence is what an investigator reads first: beside the graph, no tab to click
    with st.container(key="ring_evidence"):
        st.subheader(_("Evidence"))
        _evidence()
    tab_node, tab_case = st.tabs([_("Selected node"), _("Case")])
    with tab_node:
        nid = st.session_state.get("selected_node")
        if not nid:
            st.caption(_("Click a node in the graph to see its details."))
        else:
            details = services.node_details(store, nid)
            label, key = services.split_node_id(nid)
            revealed = context.is_revealed(nid)
            shown = mask_record(label, details, revealed)
            # st.text, never markdown: applicant text could carry links or remote images
            st.text(f"{names.label_name(label)} · {graphview.caption(label, key, details, revealed)} · {shown['key']}")
            context.table(context.field_rows(shown, "property"), hide_index=True, width="stretch", key="node_details")
            has_pii = label in PII_LABELS or any(k in PII_FIELDS for k in details)
            if has_pii and not revealed:
                context.reveal_button(nid, user, key="reveal_node")
            b1, b2 = st.columns(2)
            if label != ring_view.SUBNET and b1.button(_("Expand neighbours"), key="expand_node"):  # not a stored node
                if nid not in extra:
                    expanded[finding] = extra + [nid]
                st.rerun()
            if label == "Application" and b2.button(_("Open application"), key="open_app"):
                st.session_state["application"] = key
                st.switch_page("pages/application.py")
    with tab_case:
        context.case_panel(user, "Finding", finding, prefix="case")
