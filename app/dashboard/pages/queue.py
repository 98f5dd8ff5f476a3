"""Alert queue for triage: one line per finding (what, how big, why, when),
nested under stronger findings, sorted, filtered, "my queue", bulk assign
or dismiss with one audited comment, a link to paste into a ticket."""

from __future__ import annotations

import hashlib

import pandas as pd
import streamlit as st

from ringscope.app.dashboard import auth, cases, context, display, i18n, links, names, queue_view, services
from ringscope.app.dashboard.i18n import N_, _

PAGE_SIZE = 50
FINDINGS, FLAGGED = N_("Findings"), N_("Flagged applications")
ASSIGN, DISMISS = N_("Assign"), N_("Dismiss")

user = context.require("queue")
LANG = i18n.language()


def worded(name: str) -> str:
    """The key of a widget whose options are shown in words: one per language.

    The browser holds a widget's choice as the words it showed; after a
    language switch those match no option, and the widget would show no
    choice. A fresh widget per language starts from the value kept under
    ``<name>.value`` (see :func:`keep`)."""
    return f"{name}_{LANG}"


def kept(name: str, options: list, default=None) -> int:
    """Index of the value ``name`` last had among ``options`` (for a fresh widget)."""
    value = st.session_state.get(f"{name}.value", default)
    return options.index(value) if value in options else 0


def keep(name: str, value):
    st.session_state[f"{name}.value"] = value
    return value


st.title(_("Alert queue"))
table = context.findings()
showing = keep(
    "queue_kind",
    st.radio(
        _("Show"),
        [FINDINGS, FLAGGED],
        index=kept("queue_kind", [FINDINGS, FLAGGED]),
        format_func=i18n.formatter(_),
        horizontal=True,
        key=worded("queue_kind"),
        label_visibility="collapsed",
    ),
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

store = context.store()
triage = queue_view.with_cases(table, cases.list_cases(store))
ANY = "(any)"
EVERYONE = "\0everyone"
team = sorted(set(auth.load_users(context.users_path())) | {user.name} | set(triage["assignee"]) - {""})

with st.sidebar:
    st.subheader(_("Filters"))
    known_detectors = sorted(table["detector"].dropna().unique())
    detectors = keep(
        "q_detector",
        st.multiselect(
            _("Detector"),
            known_detectors,
            default=[d for d in st.session_state.get("q_detector.value", []) if d in known_detectors],
            key=worded("q_detector"),
            format_func=i18n.formatter(names.detector_name),
            placeholder=_("(any)"),
        ),
    )
    max_seen = int(table["size"].max() or 1)
    size = st.slider(_("Size (applications)"), 1, max(max_seen, 2), (1, max(max_seen, 2)), key="q_size")
    status = keep(
        "q_status",
        st.multiselect(
            _("Status"),
            list(cases.STATUSES),
            default=st.session_state.get("q_status.value", []),
            key=worded("q_status"),
            format_func=i18n.formatter(names.status_name),
            placeholder=_("(any)"),
        ),
    )
    min_score = st.slider(_("Minimum score"), 0.0, 1.0, 0.0, 0.05, key="q_score")
    dates = table["first_applied"].dropna()
    date_range = None
    if len(dates):
        lo, hi = dates.min().date(), dates.max().date()
        date_range = st.date_input(_("First application between"), (lo, hi), min_value=lo, max_value=hi, key="q_dates")
    agents = sorted(table["agent"].dropna().astype(str).unique())
    agent = keep(
        "q_agent",
        st.selectbox(
            _("Agent"),
            [ANY, *agents],
            index=kept("q_agent", [ANY, *agents]),
            key=worded("q_agent"),
            format_func=i18n.formatter(lambda a: _("(any)") if a == ANY else a),
        ),
    )


def _assignee_word(name: str) -> str:
    if name == EVERYONE:
        return _("(everyone)")
    if name == queue_view.UNASSIGNED:
        return _("(unassigned)")
    return name


top_left, top_mid, top_right = st.columns([1, 2, 3])
mine = top_left.toggle(_("My queue"), key="q_mine", help=_("Only the findings assigned to you."))
whose = keep(
    "q_assignee",
    top_mid.selectbox(
        _("Assigned to"),
        [EVERYONE, queue_view.UNASSIGNED, *team],
        index=kept("q_assignee", [EVERYONE, queue_view.UNASSIGNED, *team]),
        key=worded("q_assignee"),
        format_func=i18n.formatter(_assignee_word),
        disabled=mine,
    ),
)
sort = keep(
    "q_sort",
    top_right.radio(
        _("Sort by"),
        list(queue_view.SORTS),
        index=kept("q_sort", list(queue_view.SORTS)),
        key=worded("q_sort"),
        horizontal=True,
        format_func=i18n.formatter(lambda s: _(queue_view.SORTS[s])),
    ),
)

date_from = date_to = None
if isinstance(date_range, (tuple, list)) and len(date_range) == 2:
    date_from, date_to = date_range
shown = services.filter_queue(
    triage,
    None,
    detectors=detectors,
    min_size=size[0],
    max_size=size[1],
    status=status,
    date_from=date_from,
    date_to=date_to,
    agent=None if agent == ANY else agent,
    min_score=min_score,
)
shown = queue_view.by_assignee(shown, user.name if mine else (None if whose == EVERYONE else whose))
ordered = queue_view.order_queue(
    shown, sort, parents=pd.Series(table["parent"].to_numpy(object), index=table["finding"])
)
nested = int((ordered["depth"] > 0).sum()) if len(ordered) else 0

c1, c2, c3, c4 = st.columns(4)
c1.metric(
    _("Findings"),
    i18n.fmt_count(len(shown)),
    help=_(
        "{n} in the store; {m} shown under a stronger finding that holds at least half of their applications"
    ).format(n=i18n.fmt_count(len(table)), m=i18n.fmt_count(nested)),
)
c2.metric(_("Applications"), i18n.fmt_count(int(shown["size"].sum())))
c3.metric(
    _("Known-bad members"),
    i18n.fmt_count(int(shown["known_bad"].sum())),
    help=_("Applications labelled fraud or default, summed over the findings shown."),
)
c4.metric(names.status_name("Open"), i18n.fmt_count(int((shown["status"] == "Open").sum())))

tops = int((ordered["depth"] == 0).sum()) if len(ordered) else 0
pages = max(1, -(-tops // PAGE_SIZE))
page_col, bulk_col = st.columns([1, 3])
page = page_col.number_input(
    _("Page (of {n})").format(n=i18n.fmt_count(pages)), min_value=1, max_value=pages, step=1, key="queue_page_input"
)
bulk = bulk_col.toggle(
    _("Select several (bulk assign or dismiss)"),
    key="q_bulk",
    help=_("Tick findings in the table, then assign or dismiss them all with one comment."),
)
view = queue_view.page_of(ordered, int(page), PAGE_SIZE)
rows = queue_view.queue_rows(view)
shown_ids = rows["finding"].tolist()
headers = {c: _(queue_view.COLUMN_NAMES[c]) for c in queue_view.ROW_COLUMNS}
widths = {"what": 230, "members": 70, "exposure": 120, "known_bad": 80, "why": 360, "when": 140, "status": 80}
config = {c: st.column_config.TextColumn(headers[c], width=widths.get(c, "small")) for c in queue_view.ROW_COLUMNS}
config["what"] = st.column_config.TextColumn(
    headers["what"],
    width=widths["what"],
    pinned=True,
    help=_("↳ marks a finding at least half of whose applications are in the stronger finding above it (the share)."),
)
config["why"] = st.column_config.TextColumn(headers["why"], width=widths["why"])
config["exposure"] = st.column_config.TextColumn(
    headers["exposure"], width=widths["exposure"], help=_("The sum of the loan amounts of the finding's applications.")
)
config["members"] = st.column_config.NumberColumn(headers["members"], width=widths["members"], format="%d")
config["known_bad"] = st.column_config.NumberColumn(headers["known_bad"], width=widths["known_bad"], format="%d")
config["score"] = st.column_config.ProgressColumn(
    headers["score"], width=110, min_value=0.0, max_value=1.0, format="%.2f"
)

if not bulk:

    def ticked() -> None:
        picked = (st.session_state.get("queue_table") or {}).get("selection", {}).get("rows") or []
        if picked and picked[0] < len(shown_ids):
            st.session_state["queue_open_choice"] = shown_ids[picked[0]]

    context.table(
        rows,
        hide_index=True,
        width="stretch",
        key="queue_table",
        on_select=ticked,
        selection_mode="single-row",
        column_config=config,
    )
else:
    # keyed by the rows it shows: ticks always refer to this list of findings
    # (after a bulk change or a new filter, a fresh table starts unticked)
    bulk_key = "queue_bulk_" + hashlib.sha1("\0".join(shown_ids).encode()).hexdigest()[:12]
    event = context.table(
        rows,
        hide_index=True,
        width="stretch",
        key=bulk_key,
        on_select="rerun",
        selection_mode="multi-row",
        column_config=config,
    )
    picked = [i for i in (event.selection.rows if event else []) if i < len(shown_ids)]
    chosen = [shown_ids[i] for i in picked]
    flash = st.session_state.pop("queue_bulk_flash", None)
    if flash:
        st.success(flash)
    for problem in st.session_state.pop("queue_bulk_skipped", []):
        st.warning(problem)
    with st.form("queue_bulk_form", clear_on_submit=True):
        st.text(_("{n} findings ticked").format(n=i18n.fmt_count(len(chosen))))
        action = st.radio(
            _("Action"), [ASSIGN, DISMISS], key=worded("q_bulk_action"), horizontal=True, format_func=i18n.formatter(_)
        )
        to = st.selectbox(
            _("Assign to"), team, index=team.index(user.name), key="q_bulk_assignee", help=_("Users of this store.")
        )
        comment = st.text_area(
            _("Comment"),
            key="q_bulk_comment",
            placeholder=_("One comment, written on every ticked case (the reason when dismissing)"),
        )
        go = st.form_submit_button(_("Apply to the ticked findings"), disabled=not chosen)
    if go:
        try:
            done = cases.bulk_update(
                store,
                user.name,
                "Finding",
                chosen,
                comment or "",
                status="Dismissed" if action == DISMISS else None,
                assignee=to if action == ASSIGN else None,
            )
        except cases.CaseError as exc:
            st.error(i18n.tr(exc))
        else:
            said = _("Dismissed {n} findings.") if action == DISMISS else _("Assigned {n} findings to {name}.")
            st.session_state["queue_bulk_flash"] = (
                said.format(n=i18n.fmt_count(len(done.changed)), name=to) + " " + _("The change is in the audit log.")
            )
            st.session_state["queue_bulk_skipped"] = [
                _("Not changed: {finding}: {why}").format(finding=display.clip(key, 60), why=i18n.tr(why))
                for key, why in done.skipped
            ]
            st.rerun()

# one source of truth: the finding id in "queue_open_choice". Ticking a
# row writes that row's id there (the callback keeps this run's rows,
# the ones the user saw); the selectbox shows and edits the same key.
options = shown_ids
if st.session_state.get("queue_open_choice") not in options:
    st.session_state["queue_open_choice"] = options[0] if options else None
open_col, link_col = st.columns([2, 3])
with open_col:
    choice = st.selectbox(_("Open a finding"), options, key="queue_open_choice")
    if st.button(_("Open in cluster explorer"), key="queue_open", type="primary", disabled=not options):
        st.session_state["finding"] = choice
        st.session_state["path"] = None
        st.session_state["selected_node"] = None
        st.switch_page("pages/cluster.py")
if choice:
    with link_col:
        try:
            here = st.context.url
        except Exception:  # noqa: BLE001 - no browser (AppTest)
            here = None
        base = links.base_url(here, [f.rsplit("/", 1)[-1].removesuffix(".py") for _t, f, _p in context.PAGE_FILES])
        st.caption(_("Link to this finding (paste it into a ticket; it carries no log-in)"))
        st.code(links.share_url(base, "cluster", "finding", choice), language=None, wrap_lines=True)

with st.expander(_("Findings per week and by detector")):
    st.caption(_("Findings per week (first application)"))
    volume = services.volume_by_week(shown)
    if len(volume):
        st.bar_chart(volume, x="week", y="findings", height=180, x_label=_("Week"), y_label=_("Findings"))
    by_detector = shown.groupby("detector").size().rename("findings").reset_index()
    by_detector["detector"] = by_detector["detector"].map(names.detector_name)
    context.table(by_detector, hide_index=True, width="stretch")
