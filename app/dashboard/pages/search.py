"""Search: any part of a name (hanzi or pinyin) or company, ID number, phone,
account or application id; each result with its risk score and decision."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from ringscope.app.dashboard import context, i18n, names, services
from ringscope.app.dashboard.display import say
from ringscope.app.dashboard.i18n import N_, _, ngettext
from ringscope.app.dashboard.masking import mask_value

FIELDS = {
    N_("Anything"): "auto",
    N_("Name (hanzi or pinyin)"): "name",
    N_("ID number"): "id_number",
    N_("Phone"): "phone",
    N_("Company"): "company",
    N_("Account"): "account",
}

user = context.require("search")
st.title(_("Search"))
c1, c2 = st.columns([3, 1])
query = c1.text_input(
    _("Search applications"), key="search_query", placeholder="张伟 · zhangwei · zw · 110101… · 138… · 6222… · 公司名"
)
field = c2.selectbox(_("In"), list(FIELDS), key="search_field", format_func=i18n.formatter(_))
if query:
    idx = context.search_index()
    found = services.search(idx, query, FIELDS[field])
    hits = found.rows
    if hits.empty:
        say(st.info, _("Nothing matches {}. Try fewer characters, pinyin, or the last digits of a number."), query)
    else:
        rows = idx.rows.set_index("application_id").loc[hits["application_id"]].reset_index()
        shown = pd.DataFrame(
            {
                "application_id": hits["application_id"].to_numpy(),
                "name": rows["name"].to_numpy(),
                "company": rows["company"].to_numpy(),
                "risk_score": hits["risk_score"].to_numpy(float),
                "risk_decision": [names.decision_name(d) for d in hits["risk_decision"]],
                "person_best_score": hits["person_risk"].to_numpy(float),
                "company_best_score": hits["company_risk"].to_numpy(float),
                "matched": [names.field_name(m) for m in hits["matched"]],
                "match": hits["match"].to_numpy(),
                "id_number": [mask_value("id", v) for v in rows["id_number"]],
                "phone": [mask_value("phone", v) for v in rows["phone"]],
                "account": [mask_value("account", v) for v in rows["account"]],
            }
        )
        if found.capped:
            # the counts are ours; the query goes in as a literal
            say(
                st.warning,
                _("Showing {shown} of {total} matches for {{}} — refine the search.").format(
                    shown=i18n.fmt_count(len(shown)), total=i18n.fmt_count(found.total)
                ),
                query,
            )
        else:
            say(
                st.caption,
                ngettext(
                    "{n} matching application for {{}}, exact matches first, then by risk score (personal data masked)",
                    "{n} matching applications for {{}}, exact matches first, then by risk score "
                    "(personal data masked)",
                    found.total,
                ).format(n=i18n.fmt_count(found.total)),
                query,
            )
        context.table(
            shown,
            hide_index=True,
            width="stretch",
            key="search_results",
            column_config={
                "risk_score": st.column_config.NumberColumn(names.field_name("risk_score"), format="%.2f"),
                "risk_decision": st.column_config.TextColumn(names.field_name("risk_decision")),
                "person_best_score": st.column_config.NumberColumn(
                    names.field_name("person_best_score"),
                    format="%.2f",
                    help=_("Highest risk score among this applicant's applications"),
                ),
                "company_best_score": st.column_config.NumberColumn(
                    names.field_name("company_best_score"),
                    format="%.2f",
                    help=_("Highest risk score among this company's applications"),
                ),
            },
        )
        pick = st.selectbox(_("Open application"), shown["application_id"].tolist(), key="search_pick")
        if st.button(_("Open application"), key="search_open"):
            st.session_state["application"] = pick
            st.switch_page("pages/application.py")
