"""Model: the latest training report and its plots."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.dashboard import context, display, services

user = context.require("model")
st.title("Model")
summary = services.models_summary(context.store())
if summary is None:
    st.info("No trained model yet. Run `ringscope train` on this store; its report and plots will show here.")
    st.stop()
report = summary["report"]
# a report saved before targets names the labels it mixed
target = report.get("target") or "+".join((report.get("config") or {}).get("bad_labels") or []) or "—"
display.say(st.caption, "target {} · version {} · saved in {}", target, summary["version"], summary["folder"], limit=300)
c1, c2, c3 = st.columns(3)
c1.metric("Chosen model", str(report.get("chosen", "—")))
c2.metric("Labelled applications", f"{report.get('labelled', 0):,}")
c3.metric(f"Positives ({target})", f"{report.get('bad', 0):,}")
rows = []
for kind, variants in (report.get("models") or {}).items():
    for variant, metrics in variants.items():
        if isinstance(metrics, dict):
            rows.append({"model": kind, "features": variant,
                         **{k: v for k, v in metrics.items() if isinstance(v, (int, float))}})
if rows:
    context.table(pd.DataFrame(rows), hide_index=True, width="stretch", key="model_metrics")
for plot in summary["plots"]:
    st.image(str(plot), caption=plot.name)
with st.expander("Full report"):
    st.json(report)
