"""Search: fuzzy by name (hanzi or pinyin), ID number, phone, company, account."""

from __future__ import annotations

import streamlit as st

from app.dashboard import context, services
from app.dashboard.masking import mask_value

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
    hits = services.search(idx, query, FIELDS[field])
    if hits.empty:
        st.info("Nothing close enough. Try fewer characters, pinyin, or the last digits of a number.")
    else:
        rows = idx.rows.set_index("application_id").loc[hits["application_id"]].reset_index()
        shown = hits.assign(
            name=rows["name"].to_numpy(),
            id_number=[mask_value("id", v) for v in rows["id_number"]],
            phone=[mask_value("phone", v) for v in rows["phone"]],
            company=rows["company"].to_numpy(),
            account=[mask_value("account", v) for v in rows["account"]],
        )
        st.caption(f"{len(shown)} applications (personal data masked)")
        context.table(shown, hide_index=True, width="stretch", key="search_results")
        pick = st.selectbox("Open application", shown["application_id"].tolist(), key="search_pick")
        if st.button("Open application", key="search_open"):
            st.session_state["application"] = pick
            st.switch_page("pages/application.py")
