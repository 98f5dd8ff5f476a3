"""Model: the champion's training report and plots, the challenger, the
history of promotions, and what ``ringscope monitor`` last found."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from ringscope.app.dashboard import context, display, i18n, names, services
from ringscope.app.dashboard.i18n import N_, _

#: monitoring verdicts in words
STABILITY = {"ok": N_("ok"), "watch": N_("watch (PSI ≥ 0.1)"), "act": N_("act (PSI ≥ 0.25)")}


def stability(verdict: str) -> str:
    return _(STABILITY[verdict]) if verdict in STABILITY else verdict


user = context.require("model")
st.title(_("Model"))
summary = services.models_summary(context.store())
if summary is None:
    st.info(_("No trained model yet. Run `ringscope train` on this store; its report and plots will show here."))
    st.stop()
report = summary["report"]
# a report saved before targets names the labels it mixed
target = report.get("target") or "+".join((report.get("config") or {}).get("bad_labels") or []) or "—"
display.say(
    st.caption, _("target {} · version {} · saved in {}"), target, summary["version"], summary["folder"], limit=300
)
c1, c2, c3 = st.columns(3)
c1.metric(_("Chosen model"), names.model_name(report.get("chosen", "—")))
c2.metric(_("Labelled applications"), i18n.fmt_count(report.get("labelled", 0)))
c3.metric(_("Positives ({target})").format(target=names.outcome_name(target)), i18n.fmt_count(report.get("bad", 0)))
if report.get("findings_only"):
    display.say(
        st.info,
        _(
            "Findings-only model: the labelled history holds too few fraud outcomes to learn from ({}). "
            "The score is each application's best finding score; it sends applications to review and "
            "declines none. The first model trained on enough outcomes replaces it."
        ),
        report["findings_only"].get("why", ""),
        limit=400,
    )
rows = []
for kind, variants in (report.get("models") or {}).items():
    for variant, metrics in variants.items():
        if isinstance(metrics, dict):
            rows.append(
                {
                    "model": names.model_name(kind),
                    "features": names.model_name(variant),
                    **{k: v for k, v in metrics.items() if isinstance(v, (int, float))},
                }
            )
if rows:
    context.table(pd.DataFrame(rows), hide_index=True, width="stretch", key="model_metrics")
for plot in summary["plots"]:
    st.image(str(plot), caption=plot.name)
if summary.get("challenger"):
    display.say(
        st.info,
        _(
            "Challenger {} is waiting: `ringscope promote` makes it the champion, "
            "`ringscope flag --shadow` records its decisions beside the champion's."
        ),
        summary["challenger"],
    )
history = summary.get("history")
if history is not None and len(history):
    st.subheader(_("Champion history"))
    history = history.iloc[::-1].copy()
    for col in history.columns:
        if col == "action":
            history[col] = history[col].map(names.action_name)
        elif col == "at" or str(col).endswith("_at"):
            history[col] = history[col].map(i18n.fmt_time)
    context.table(history, hide_index=True, width="stretch", key="model_history")

st.subheader(_("Monitoring"))
monitoring = summary.get("monitoring")
if not monitoring:
    st.caption(_("No monitoring yet: `ringscope monitor` compares recent weeks with the training window."))
elif monitoring.get("model_version") != summary["version"]:
    display.say(
        st.caption,
        _("The last `ringscope monitor` judged {}, not this champion; run it again."),
        monitoring.get("model_version"),
    )
else:
    overall = monitoring.get("overall", "ok")
    st.metric(_("Stability"), stability(overall))
    psi = pd.DataFrame(monitoring.get("psi") or {}).T
    noise = pd.DataFrame(monitoring.get("noise") or {}).T
    if len(psi):
        beyond = (psi.astype(float) - noise.reindex_like(psi).astype(float).fillna(0.0)).clip(lower=0.0)
        moved = beyond.drop(columns="score", errors="ignore").max().sort_values(ascending=False)
        shown = ["score", *[c for c in moved.index[:4] if moved[c] >= 0.1]]
        st.caption(
            _(
                "PSI beyond sampling noise per {period}, against the training window (watch from 0.1, act from 0.25)"
            ).format(period=_(monitoring.get("period", "week")))
        )
        st.line_chart(beyond[[c for c in shown if c in beyond.columns]])
    decisions = pd.DataFrame(monitoring.get("decisions") or {}).T
    if len(decisions):
        st.caption(_("Decision mix per period (the first row is the training window)"))
        st.bar_chart(decisions.astype(float))
    hits = pd.DataFrame(monitoring.get("hit_rates") or {}).T
    if len(hits):
        st.caption(_("Share of each period's applications in a detector's findings"))
        st.line_chart(hits.astype(float))
    alerts = pd.DataFrame(monitoring.get("alerts") or [])
    if len(alerts):
        if "status" in alerts:
            alerts["status"] = alerts["status"].map(stability)
        context.table(alerts, hide_index=True, width="stretch", key="model_alerts")
    cohorts = pd.DataFrame(monitoring.get("cohorts") or [])
    if len(cohorts):
        st.caption(_("AUC and precision@k per monthly cohort with outcomes (in_training: the model learned from it)"))
        context.table(cohorts, hide_index=True, width="stretch", key="model_cohorts")
with st.expander(_("Full report")):
    st.json(report)
