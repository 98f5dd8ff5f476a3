"""Cypher console (Neo4j only; analysts and admins): read-only, bounded, timed out.

Cells are masked by content (:func:`ringscope.app.dashboard.masking.mask_content`),
whatever the column is called, unless the query was run with "show personal
data", which is audited as ``cypher.reveal``: a result run masked stays
masked when the toggle is switched on afterwards.
"""

from __future__ import annotations

import streamlit as st
from st_link_analysis import st_link_analysis

from ringscope.app.dashboard import cases, context, cypher, display, graphview
from ringscope.app.dashboard.masking import PII_LABELS, escape, mask_content, mask_value

user = context.require("console")
store = context.store()
st.title("Cypher console")
if getattr(store, "kind", "") != "neo4j":
    st.info("The console needs the Neo4j store (start the dashboard with `--neo4j`). "
            "The embedded store has no query language; use the other pages.")
    st.stop()
st.caption(f"Read-only: queries are explained first and refused unless the plan only reads; "
           f"at most {cypher.MAX_ROWS:,} rows and {cypher.MAX_BYTES // 2**20} MiB, {cypher.TIMEOUT:.0f} s. "
           "Every query is logged.")
text = st.text_area("Query", key="console_query", height=140,
                    placeholder="MATCH p=(f:Finding)-[:INVOLVES]->(a:Application) RETURN p LIMIT 25")
reveal = st.toggle("Show personal data unmasked (logged)", key="console_reveal")
if st.button("Run", key="console_run", type="primary"):
    try:
        cases.audit(store, user.name, "cypher.reveal" if reveal else "cypher", "console", after=text)
        result = cypher.run_read_only(store.driver, store.database, text)
    except cypher.QueryRefused as exc:
        display.say(st.error, "{}", str(exc), limit=600)  # the server's message may quote the query
    else:
        st.session_state["console_result"] = (result, reveal)
stored = st.session_state.get("console_result")
if stored is not None:
    result, revealed = stored  # unmasked only if this very run was audited as a reveal
    frame = result.frame(mask=None if revealed else mask_content)
    display.say(st.caption, f"{len(frame):,} rows in {result.seconds:.2f} s" + (" — {}" if result.notice else ""),
                *([result.notice] if result.notice else []), limit=400)
    context.table(frame, hide_index=True, width="stretch", key="console_table")
    if result.graph_nodes:
        nodes = []
        for eid, n in list(result.graph_nodes.items())[:1000]:
            key = n["key"]
            cap = mask_value(PII_LABELS[n["label"]], key) if n["label"] in PII_LABELS and not revealed else key
            caption = n["props"].get("name", cap)
            nodes.append({"data": {"id": graphview.token(eid), "label": escape(n["label"]),
                                   "caption": escape(caption if revealed else mask_content(caption))}})
        ids = {d["data"]["id"] for d in nodes}
        edges = [{"data": {"id": f"e{i}", "source": graphview.token(e["source"]), "target": graphview.token(e["target"]),
                           "label": escape(e["type"])}}
                 for i, e in enumerate(result.graph_edges)
                 if graphview.token(e["source"]) in ids and graphview.token(e["target"]) in ids]
        st_link_analysis({"nodes": nodes, "edges": edges}, layout=graphview.LAYOUT,
                         node_styles=graphview.node_styles(), edge_styles=graphview.edge_styles(), height=520,
                         key="console_graph")
