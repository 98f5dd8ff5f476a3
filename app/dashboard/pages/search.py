"""Search: any part of a name (hanzi or pinyin) or company, ID number, phone,
account or application id; each result with its risk score and decision."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from ringscope.app.dashboard import context, services
from ringscope.app.dashboard.display import say
from ringscope.app.dashboard.masking import mask_value

FIELDS = {"Anything": "auto", "Name (hanzi or pinyin)": "name", "ID number": "id_number", "Phone": "phone",
          "Company": "company", "Account": "account"}

user = context.require("search")
st.title("Search")
c1, c2 = st.columns([3, 1])
query = c1.text_input("Search applications", key="search_query",
                      placeholder="张伟 · zhangwei · zw · 110101… · 138… · 6222… · 公司名")
field = c2.selectbox("In", list(FIELDS), key="search_field")
if query:
    idx = context.search_index()
    found = services.search(idx, query, FIELDS[field])
    hits = found.rows
    if hits.empty:
        say(st.info, "Nothing matches {}. Try fewer characters, pinyin, or the last digits of a number.", query)
    else:
        rows = idx.rows.set_index("application_id").loc[hits["application_id"]].reset_index()
        shown = pd.DataFrame({
            "application_id": hits["application_id"].to_numpy(),
            "name": rows["name"].to_numpy(),
            "company": rows["company"].to_numpy(),
            "risk_score": hits["risk_score"].to_numpy(float),
            "risk_decision": hits["risk_decision"].to_numpy(),
            "person_best_score": hits["person_risk"].to_numpy(float),
            "company_best_score": hits["company_risk"].to_numpy(float),
            "matched": hits["matched"].to_numpy(),
            "match": hits["match"].to_numpy(),
            "id_number": [mask_value("id", v) for v in rows["id_number"]],
            "phone": [mask_value("phone", v) for v in rows["phone"]],
            "account": [mask_value("account", v) for v in rows["account"]],
        })
        if found.capped:
            # the counts are ours; the query goes in as a literal
            say(st.warning, f"Showing {len(shown):,} of {found.total:,} matches for {{}} — refine the search.", query)
        else:
            noun = "application" if found.total == 1 else "applications"
            say(st.caption, f"{found.total:,} matching {noun} for {{}}, exact matches first, then by risk "
                "score (personal data masked)", query)
        context.table(shown, hide_index=True, width="stretch", key="search_results", column_config={
            "risk_score": st.column_config.NumberColumn("risk score", format="%.2f"),
            "risk_decision": st.column_config.TextColumn("decision"),
            "person_best_score": st.column_config.NumberColumn(
                "applicant's best score", format="%.2f", help="Highest risk score among this applicant's applications"),
            "company_best_score": st.column_config.NumberColumn(
                "company's best score", format="%.2f", help="Highest risk score among this company's applications"),
        })
        pick = st.selectbox("Open application", shown["application_id"].tolist(), key="search_pick")
        if st.button("Open application", key="search_open"):
            st.session_state["application"] = pick
            st.switch_page("pages/application.py")
