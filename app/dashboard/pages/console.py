"""Cypher console (Neo4j only; analysts and admins): read-only, bounded, timed out.

Cells are masked by content (:func:`ringscope.app.dashboard.masking.mask_content`),
whatever the column is called, unless the query was run with "show personal
data", which is audited as ``cypher.reveal``: a result run masked stays
masked when the toggle is switched on afterwards.
"""

from __future__ import annotations

import streamlit as st
from st_link_analysis import st_link_analysis

from ringscope.app.dashboard import cases, context, cypher, display, graphview, i18n
from ringscope.app.dashboard.i18n import _
from ringscope.app.dashboard.masking import PII_LABELS, escape, mask_content, mask_value

user = context.require("console")
store = context.store()
st.title(_("Cypher console"))
if getattr(store, "kind", "") != "neo4j":
    st.info(
        _(
            "The console needs the Neo4j store (start the dashboard with `--neo4j`). "
            "The embedded store has no query language; use the other pages."
        )
    )
    st.stop()
st.caption(
    _(
        "Read-only: queries are explained first and refused unless the plan only reads; at most {rows} rows "
        "and {mib} MiB, {seconds} s. Every query is logged."
    ).format(rows=i18n.fmt_count(cypher.MAX_ROWS), mib=cypher.MAX_BYTES // 2**20, seconds=f"{cypher.TIMEOUT:.0f}")
)
text = st.text_area(
    _("Query"),
    key="console_query",
    height=140,
    placeholder="MATCH p=(f:Finding)-[:INVOLVES]->(a:Application) RETURN p LIMIT 25",
)
reveal = st.toggle(_("Show personal data unmasked (logged)"), key="console_reveal")
if st.button(_("Run"), key="console_run", type="primary"):
    try:
        cases.audit(store, user.name, "cypher.reveal" if reveal else "cypher", "console", after=text)
        result = cypher.run_read_only(store.driver, store.database, text)
    except cypher.QueryRefused as exc:
        # the reason in the reader's language; what it quotes (the server's message may quote the query) as text
        reason = exc.args[0] if exc.args else str(exc)
        if isinstance(reason, i18n.Message):
            st.error(_(reason.template).format(**{k: display.literal(v, 600) for k, v in reason.values.items()}))
        else:
            display.say(st.error, "{}", str(reason), limit=600)
    else:
        st.session_state["console_result"] = (result, reveal)
stored = st.session_state.get("console_result")
if stored is not None:
    result, revealed = stored  # unmasked only if this very run was audited as a reveal
    frame = result.frame(mask=None if revealed else mask_content)
    display.say(
        st.caption,
        _("{n} rows in {seconds} s").format(n=i18n.fmt_count(len(frame)), seconds=f"{result.seconds:.2f}")
        + (" — {}" if result.notice else ""),
        *([result.notice_in(_)] if result.notice else []),
        limit=400,
    )
    context.table(frame, hide_index=True, width="stretch", key="console_table")
    if result.graph_nodes:
        nodes = []
        for eid, n in list(result.graph_nodes.items())[:1000]:
            key = n["key"]
            cap = mask_value(PII_LABELS[n["label"]], key) if n["label"] in PII_LABELS and not revealed else key
            caption = n["props"].get("name", cap)
            nodes.append(
                {
                    "data": {
                        "id": graphview.token(eid),
                        "label": escape(n["label"]),
                        "caption": escape(caption if revealed else mask_content(caption)),
                    }
                }
            )
        ids = {d["data"]["id"] for d in nodes}
        edges = [
            {
                "data": {
                    "id": f"e{i}",
                    "source": graphview.token(e["source"]),
                    "target": graphview.token(e["target"]),
                    "label": escape(e["type"]),
                }
            }
            for i, e in enumerate(result.graph_edges)
            if graphview.token(e["source"]) in ids and graphview.token(e["target"]) in ids
        ]
        st_link_analysis(
            {"nodes": nodes, "edges": edges},
            layout=graphview.LAYOUT,
            node_styles=graphview.node_styles(),
            edge_styles=graphview.edge_styles(),
            height=520,
            key="console_graph",
        )
