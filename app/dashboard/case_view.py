"""The case panel (cluster explorer, application page, case page): status,
the form that changes it, threaded notes, the audit trail, the evidence pack.

The status changes only when the user picks a new one, from the status the
page showed: the picker starts empty ("keep …") on every new form, the
form's widgets are keyed by the target and a per-session round that moves
on after each save (no earlier value can be carried into the next save),
and the save passes the ``updated_at`` the page showed, so a case someone
else changed meanwhile is refused (:func:`cases.update_case`), its text
kept in the new form. Text saved without a new status is a note, appended;
with a new status it is the reason. A note may answer another (threads).
"""

from __future__ import annotations

import hashlib
from typing import Any

import streamlit as st

from ringscope.app.dashboard import auth, cases, i18n, names
from ringscope.app.dashboard.auth import User
from ringscope.app.dashboard.i18n import _
from ringscope.app.dashboard.masking import mask_text

__all__ = ["panel", "notes_view", "pack_button"]


def _tag(target_label: str, target_key: str) -> str:
    return hashlib.sha1(f"{target_label}\0{target_key}".encode()).hexdigest()[:12]


def panel(user: User, target_label: str, target_key: str, prefix: str = "case", side: Any = None) -> None:
    """The whole case panel of one target (see the module doc); with
    ``side`` (a Streamlit container, e.g. a column), the notes, the evidence
    pack and the audit trail go there, beside the form."""
    from ringscope.app.dashboard import context

    store = context.store()
    case = cases.get_case(store, target_label, target_key)
    st.text(
        _("Status: {status}").format(status=names.status_name(case.status))
        + (_(" · assignee {name}").format(name=case.assignee) if case.assignee else "")
    )
    if case.updated_at:
        st.text(_("last changed {at} by {user}").format(at=i18n.fmt_time(case.updated_at), user=case.updated_by))
    if case.comment:
        st.text(_("Reason: {text}").format(text=mask_text(case.comment)))
    allowed = list(cases.TRANSITIONS[case.status])
    if case.status in ("Confirmed fraud", "Dismissed") and not auth.can(user.role, "reopen"):
        allowed = []  # only admins reopen a closed case
        st.caption(_("Closed. An admin can reopen it; notes can still be added."))
    flash = st.session_state.pop(f"{prefix}_flash", None)
    if flash:
        st.success(flash)
    refused = st.session_state.pop(f"{prefix}_refused", None)
    if refused:
        st.error(refused)
    tag = _tag(target_label, target_key)
    round_key = f"{prefix}_round_{tag}"
    form = f"{prefix}_{tag}_{st.session_state.get(round_key, 0)}"
    # what this form showed when it was drawn: a save is checked against it
    seen = st.session_state.get(f"{form}_seen", case.updated_at)
    unsaved = st.session_state.pop(f"{form}_unsaved", "")
    notes = cases.case_notes(store, target_label, target_key)
    with st.form(f"{form}_form", clear_on_submit=True):
        new_status = st.selectbox(
            _("New status"),
            allowed,
            index=None,
            key=f"{form}_status",
            format_func=i18n.formatter(names.status_name),
            disabled=not allowed,
            placeholder=_("Keep: {status}").format(status=names.status_name(case.status)),
        )
        assignee = st.text_input(_("Assignee"), value=case.assignee or user.name, key=f"{form}_assignee")
        text = st.text_area(
            _("Note"),
            value=unsaved,
            key=f"{form}_note",
            placeholder=_("A note; with a new status, the reason (required to confirm or dismiss)"),
        )
        reply_to = None
        if len(notes):
            labels = {
                k: f"{i18n.fmt_time(at)} {who}: {str(mask_text(n))[:40]}"
                for k, at, who, n in zip(notes["key"], notes["at"], notes["user"], notes["note"])
            }
            reply_to = st.selectbox(
                _("Reply to"),
                list(labels),
                index=None,
                key=f"{form}_reply",
                format_func=lambda k: labels.get(k, ""),
                placeholder=_("a new thread"),
            )
        saved = st.form_submit_button(_("Save case"))
    if saved:
        _save(user, case, seen, new_status, assignee, (text or "").strip(), reply_to, prefix, form, round_key)
    st.session_state[f"{form}_seen"] = case.updated_at
    with side if side is not None else st.container():
        notes_view(notes)
        pack_button(user, target_label, target_key, prefix)
        log = cases.audit_log(store, target=cases.case_key(target_label, target_key), limit=20)
        if len(log):
            st.caption(_("Audit log of this case"))
            for event in log.head(5).itertuples():
                st.text(
                    f"{i18n.fmt_time(event.at)}  {event.user}  {names.action_name(event.action)}  "
                    f"{mask_text(names.audit_text(event.after))}"
                )
            log = log.assign(before=[cases.reply_words(a, b) for a, b in zip(log["action"], log["before"])])
            shown_log = context.audit_frame(log[["at", "user", "action", "before", "after"]])
            context.table(shown_log, hide_index=True, width="stretch", key=f"{prefix}_audit")


def _save(
    user: User,
    case: cases.Case,
    seen: str,
    new_status: str | None,
    assignee: str,
    text: str,
    reply_to: str | None,
    prefix: str,
    form: str,
    round_key: str,
) -> None:
    from ringscope.app.dashboard import context

    store = context.store()
    label, key = case.target_label, case.target_key
    try:
        if new_status is not None and new_status != case.status:
            after = cases.update_case(
                store, user.name, label, key, status=new_status, assignee=assignee, comment=text or None, expected=seen
            )
            message = _("Case saved: {status}.").format(status=names.status_name(after.status))
        else:
            after = case
            if (assignee or "") != (case.assignee or "") or not case.updated_at:
                after = cases.update_case(store, user.name, label, key, assignee=assignee, expected=seen)
            if text:  # a note never conflicts: it is appended to whatever the case is now
                cases.add_note(store, user.name, label, key, text, reply_to=reply_to)
            message = (_("Case saved: {status} (note added).") if text else _("Case saved: {status}.")).format(
                status=names.status_name(after.status)
            )
    except cases.CaseError as exc:
        st.session_state[round_key] = st.session_state.get(round_key, 0) + 1  # a fresh form on the case as it is now
        st.session_state[f"{prefix}_{_tag(label, key)}_{st.session_state[round_key]}_unsaved"] = text
        st.session_state[f"{prefix}_refused"] = i18n.tr(exc) + (
            " " + _("Your text is kept in the form; nothing was saved.") if text else ""
        )
        st.rerun()
    # the audit event and the case are stored and read back by now
    st.session_state[round_key] = st.session_state.get(round_key, 0) + 1
    st.session_state[f"{prefix}_flash"] = message + " " + _("The change is in the audit log.")
    st.rerun()


def notes_view(notes: Any) -> None:
    """The notes as threads: replies indented under the note they answer."""
    if not len(notes):
        return
    st.caption(_("Notes ({n})").format(n=len(notes)))
    for note in notes.itertuples():
        indent = "    " * min(int(note.depth), 6)
        lead = "↳ " if note.depth else ""
        body = str(mask_text(note.note)).replace("\n", "\n" + indent + "  ")
        st.text(f"{indent}{lead}{i18n.fmt_time(note.at)}  {note.user}\n{indent}  {body}")


def pack_button(user: User, target_label: str, target_key: str, prefix: str = "case") -> None:
    """ "Make evidence pack" (audited), then a download button for the PDF."""
    from ringscope.app.dashboard import context, evidence_pack

    case_key = cases.case_key(target_label, target_key)
    slot = f"{prefix}_pack"
    if st.button(
        _("Make evidence pack (PDF)"),
        key=f"{prefix}_pack_make_{_tag(target_label, target_key)}",
        help=_("Summary, the ring, evidence, timeline, notes and audit trail, personal data masked; this is logged."),
    ):
        try:
            with st.spinner(_("Making the evidence pack…")):
                data = evidence_pack.evidence_pack(
                    context.store(),
                    case_key,
                    user=user.name,
                    index=context.index(),
                    members=context.members() if target_label == "Finding" else None,
                    lang=i18n.language(),
                )
        except (cases.CaseError, evidence_pack.FontMissing) as exc:
            st.error(i18n.tr(exc))
        else:
            st.session_state[slot] = (case_key, data)
    made = st.session_state.get(slot)
    if made and made[0] == case_key:
        st.download_button(
            _("Download evidence pack"),
            data=made[1],
            file_name=evidence_pack.pack_file_name(case_key),
            mime="application/pdf",
            key=f"{prefix}_pack_download_{_tag(target_label, target_key)}",
            on_click="ignore",
        )
