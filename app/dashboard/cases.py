"""Cases and the audit log, stored in the graph store (either kind).

A case is one ``Case`` node per target (a finding or an application), keyed
``case:<Label>:<key>``; its status moves Open → In progress → Confirmed fraud
/ Dismissed (and back to In progress when reopened). Every investigator
action — a status change, a reveal of personal data, a console query — is an
``AuditEvent`` node with a fresh key, written *before* the action is
reported as done, never rewritten. Confirmed and dismissed cases become
labels for the next ``ringscope train`` through :func:`case_labels`.

A case's ``comment`` is the reason given with its last status change (why it
was confirmed or dismissed); it changes only with the status. Notes are
appended (:func:`add_note`): each one is an audit event ``case.note``, so a
note can neither change the status nor overwrite the reason, and none is
ever edited or lost (:func:`case_notes` lists them). Notes are threaded: a
reply names the note it answers (stored as the event's ``before``, the key
of that note), and :func:`case_notes` returns each thread under its first
note.

A status changes only when the user picks one, and only from the status
the user saw: :func:`update_case` takes the ``updated_at`` the page showed
(``expected``) and refuses, saving nothing, when someone else changed the
case in between (checked again under the store's write lock).
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from ringscope.app.dashboard.i18n import N_, Message
from ringscope.graph.locking import StoreBusy
from ringscope.graph.model import CASE_VERDICTS
from ringscope.graph.store import GraphBatch

__all__ = [
    "STATUSES",
    "TRANSITIONS",
    "VERDICT_LABELS",
    "CaseError",
    "Case",
    "case_key",
    "get_case",
    "list_cases",
    "case_statuses",
    "update_case",
    "add_note",
    "case_notes",
    "parse_case_key",
    "reply_words",
    "audit",
    "audit_log",
    "case_labels",
    "BulkResult",
    "bulk_update",
]

STATUSES = ("Open", "In progress", "Confirmed fraud", "Dismissed")

#: allowed moves; a closed case is reopened to In progress
TRANSITIONS = {
    "Open": ("In progress", "Dismissed"),
    "In progress": ("Confirmed fraud", "Dismissed", "Open"),
    "Confirmed fraud": ("In progress",),
    "Dismissed": ("In progress",),
}

#: case verdict → training label (the graph model's one definition, which training reads too)
VERDICT_LABELS = CASE_VERDICTS

_CASE_PROPS = ["target_label", "target_key", "status", "assignee", "comment", "updated_at", "updated_by"]
_AUDIT_PROPS = ["at", "user", "action", "target", "before", "after", "source"]

#: seconds a case write waits for another job's store lock (a page should not hang)
LOCK_WAIT = 30.0


class CaseError(ValueError):
    """A case action that is not allowed (bad status move, unknown target)."""


@dataclass(frozen=True)
class Case:
    target_label: str
    target_key: str
    status: str = "Open"
    assignee: str = ""
    comment: str = ""
    updated_at: str = ""
    updated_by: str = ""

    @property
    def key(self) -> str:
        return case_key(self.target_label, self.target_key)


def case_key(target_label: str, target_key: str) -> str:
    """Key of the one case on a target.

    Example
    -------
    >>> case_key("Finding", "rings-abc")
    'case:Finding:rings-abc'
    """
    return f"case:{target_label}:{target_key}"


def parse_case_key(key: str) -> tuple[str, str]:
    """(target label, target key) of a case key; :class:`CaseError` if it is not one.

    Example
    -------
    >>> parse_case_key("case:Finding:rings-abc")
    ('Finding', 'rings-abc')
    """
    prefix, _, rest = str(key).partition(":")
    label, _, target = rest.partition(":")
    if prefix != "case" or not label or not target:
        raise CaseError(Message(N_("{key} is not a case key (case:<Label>:<key>)."), key=str(key)[:80]))
    return label, target


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@contextlib.contextmanager
def _locked(store: Any) -> Iterator[None]:
    """The store's one write lock (the same every batch job takes): sessions
    of this server and other processes wait for each other."""
    try:
        with store.lock(job="ringscope dashboard", timeout=LOCK_WAIT, on_wait=lambda holder, limit: None):
            yield
    except StoreBusy as busy:
        who = busy.holder.describe() if busy.holder else "another job"
        raise CaseError(
            Message(
                N_("The store is busy: {who} is writing to it. Nothing was saved; try again when it has finished."),
                who=who,
            )
        ) from busy


def _clean(value: Any) -> str:
    if value is None:
        return ""
    try:
        if pd.isna(value):
            return ""
    except (TypeError, ValueError):
        pass
    return str(value)


def get_case(store: Any, target_label: str, target_key: str) -> Case:
    """The stored case on a target, or a new ``Open`` one (not stored)."""
    frame = store.node_properties("Case", [case_key(target_label, target_key)], _CASE_PROPS)
    if frame.empty:
        return Case(target_label, target_key)
    row = frame.iloc[0]
    return Case(
        target_label,
        target_key,
        _clean(row["status"]) or "Open",
        _clean(row["assignee"]),
        _clean(row["comment"]),
        _clean(row["updated_at"]),
        _clean(row["updated_by"]),
    )


def list_cases(store: Any) -> pd.DataFrame:
    """Every stored case, latest change first."""
    frame = store.read_nodes("Case", _CASE_PROPS)
    for col in _CASE_PROPS:
        if col not in frame.columns:
            frame[col] = pd.Series([None] * len(frame), dtype=object)
    return frame.sort_values("updated_at", ascending=False).reset_index(drop=True)


def case_statuses(store: Any, target_label: str = "Finding") -> pd.Series:
    """target key → status for cases on ``target_label``."""
    cases = list_cases(store)
    cases = cases[cases["target_label"] == target_label]
    return pd.Series(cases["status"].to_numpy(object), index=cases["target_key"].astype(str).to_numpy(object))


def audit(store: Any, user: str, action: str, target: str, before: Any = None, after: Any = None) -> str:
    """Append one audit event and return its key (written before returning)."""
    at = _now()
    key = f"audit:{at}:{uuid.uuid4().hex[:12]}"
    row = {
        "key": key,
        "at": at,
        "user": user,
        "action": action,
        "target": target,
        "before": _json(before),
        "after": _json(after),
    }
    with _locked(store):
        store.write(GraphBatch(nodes={"AuditEvent": pd.DataFrame([row])}))
    stored = store.node_properties("AuditEvent", [key], ["action"])
    if stored.empty:
        raise RuntimeError(f"The audit event {key} was not stored; the action was not done.")
    return key


def _json(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)


def update_case(
    store: Any,
    user: str,
    target_label: str,
    target_key: str,
    status: str | None = None,
    assignee: str | None = None,
    comment: str | None = None,
    expected: str | None = None,
) -> Case:
    """Change a case's status or assignee; ``comment`` is the reason for a
    status change; ``expected`` is the case's ``updated_at`` as the user saw
    it (``""`` for a case not saved yet), or None not to check.

    The status changes only when ``status`` names a new one. A ``comment``
    without a status change does not touch the stored reason: it is added
    as a note (:func:`add_note`). The audit event (before → after) is
    written first, then the case; both are read back before this returns.
    Raises :class:`CaseError` for a move :data:`TRANSITIONS` does not allow,
    and when the case is no longer as the user saw it (nothing is saved).

    Example
    -------
    >>> import tempfile
    >>> from ringscope.graph.embedded import EmbeddedStore
    >>> store = EmbeddedStore(tempfile.mkdtemp())
    >>> seen = update_case(store, "ivy", "Finding", "F1", status="In progress").updated_at
    >>> _ = update_case(store, "ana", "Finding", "F1", status="Dismissed", comment="a family")
    >>> try:
    ...     update_case(store, "ivy", "Finding", "F1", status="Confirmed fraud", comment="farm", expected=seen)
    ... except CaseError as exc:
    ...     print(exc)
    ana changed this case at ... Nothing was saved; look at it again.
    """
    if not user:
        raise CaseError(Message(N_("Log in to change a case.")))
    before = get_case(store, target_label, target_key)
    _check_unchanged(before, expected)
    new_status = status or before.status
    if new_status not in STATUSES:
        raise CaseError(
            Message(
                N_("Unknown status {status}; use one of {allowed}."),
                status=repr(new_status),
                allowed=", ".join(STATUSES),
            )
        )
    if new_status != before.status and new_status not in TRANSITIONS[before.status]:
        raise CaseError(
            Message(
                N_("A case cannot go from {before} to {after}; allowed: {allowed}."),
                before=before.status,
                after=new_status,
                allowed=", ".join(TRANSITIONS[before.status]),
            )
        )
    if new_status in ("Confirmed fraud", "Dismissed") and new_status != before.status and not (comment or "").strip():
        raise CaseError(Message(N_("Say why in the comment before marking the case {status}."), status=new_status))
    moves = new_status != before.status
    if comment is not None and comment.strip() and not moves:
        add_note(store, user, target_label, target_key, comment)
        if assignee is None or assignee == before.assignee:
            return get_case(store, target_label, target_key)
    reason = comment if moves and comment is not None else before.comment
    after = Case(
        target_label, target_key, new_status, before.assignee if assignee is None else assignee, reason, _now(), user
    )
    fields = ("status", "assignee", "comment")
    changed = {f: (getattr(before, f), getattr(after, f)) for f in fields if getattr(before, f) != getattr(after, f)}
    if not changed and before.updated_at:
        return before
    action = "case.status" if "status" in changed else "case.update"
    row = {"key": after.key, **{p: getattr(after, p) for p in _CASE_PROPS}}
    with _locked(store):  # one hold: the audit event, then the case
        # another session or server may have saved since `before` was read
        _check_unchanged(get_case(store, target_label, target_key), before.updated_at)
        audit(
            store,
            user,
            action,
            after.key,
            before={f: getattr(before, f) for f in fields} if before.updated_at else None,
            after={f: getattr(after, f) for f in fields},
        )
        store.write(GraphBatch(nodes={"Case": pd.DataFrame([row])}))
    stored = get_case(store, target_label, target_key)
    if stored.status != after.status or stored.updated_at != after.updated_at:
        raise RuntimeError(f"The case {after.key} did not save; the audit log has the attempt.")
    return stored


def reply_words(action: Any, before: Any) -> Any:
    """What an audit event's ``before`` says, for reading: a note's is the
    key of the note it answers, shown as that note's time (Beijing).

    >>> reply_words("case.note", "audit:2026-11-30T06:05:41.123456Z:0a1b2c3d4e5f")
    '回复 2026-11-30 14:05 的备注'
    >>> reply_words("case.status", '{"status": "Open"}')
    '{"status": "Open"}'
    """
    text = _clean(before)
    if action != "case.note" or not text.startswith("audit:"):
        return before
    from ringscope.app.dashboard.i18n import _, fmt_time

    return _("in reply to the note of {at}").format(at=fmt_time(text[len("audit:") :].rsplit(":", 1)[0]))


def _check_unchanged(case: Case, expected: str | None) -> None:
    if expected is None or case.updated_at == expected:
        return
    from ringscope.app.dashboard.i18n import fmt_time

    raise CaseError(
        Message(
            N_("{user} changed this case at {at}. Nothing was saved; look at it again."),
            user=case.updated_by or "?",
            at=fmt_time(case.updated_at),
        )
    )


def add_note(store: Any, user: str, target_label: str, target_key: str, text: str, reply_to: str | None = None) -> str:
    """Append a note to a case (an audit event ``case.note``); the case's
    status and reason stay as they are. ``reply_to`` is the key of the note
    this one answers (a note of the same case), None for a new thread.
    Returns the event's key.

    Example
    -------
    >>> import tempfile
    >>> from ringscope.graph.embedded import EmbeddedStore
    >>> store = EmbeddedStore(tempfile.mkdtemp())
    >>> _ = update_case(store, "ivy", "Application", "A1", status="In progress")
    >>> first = add_note(store, "ivy", "Application", "A1", "called the applicant")
    >>> _ = add_note(store, "ana", "Application", "A1", "which number?", reply_to=first)
    >>> get_case(store, "Application", "A1").status
    'In progress'
    >>> case_notes(store, "Application", "A1")[["user", "note", "depth"]].values.tolist()
    [['ivy', 'called the applicant', 0], ['ana', 'which number?', 1]]
    """
    if not user:
        raise CaseError(Message(N_("Log in to add a note.")))
    if not (text or "").strip():
        raise CaseError(Message(N_("The note is empty.")))
    target = case_key(target_label, target_key)
    if reply_to:
        log = audit_log(store, target=target, limit=100_000)
        if not ((log["key"] == reply_to) & (log["action"] == "case.note")).any():
            raise CaseError(Message(N_("There is no note {key} on this case to reply to."), key=str(reply_to)[:80]))
    return audit(store, user, "case.note", target, before=reply_to or None, after=text.strip())


def case_notes(store: Any, target_label: str, target_key: str) -> pd.DataFrame:
    """A case's notes as threads: each first note (oldest first) followed by
    its replies (oldest first, replies to replies beneath them).

    Columns ``key``, ``at``, ``user``, ``note``, ``reply_to`` (key of the
    note answered, ``""`` for a first note), ``thread`` (key of the thread's
    first note) and ``depth`` (0 for a first note)."""
    log = audit_log(store, target=case_key(target_label, target_key), limit=100_000)
    notes = log[log["action"] == "case.note"].sort_values(["at", "key"])
    keys = notes["key"].astype(str).tolist()
    parent = {k: _clean(p) for k, p in zip(keys, notes["before"])}
    children: dict[str, list[str]] = {}
    for k in keys:  # a reply to a note that is not there (never: add_note checks) starts its own thread
        children.setdefault(parent[k] if parent[k] in parent else "", []).append(k)
    rows = {k: r for k, r in zip(keys, notes.itertuples(index=False))}
    out = []
    stack = [(k, 0, k) for k in reversed(children.get("", []))]
    while stack:
        k, depth, thread = stack.pop()
        r = rows[k]
        out.append((k, r.at, r.user, r.after, parent[k] if depth else "", thread, depth))
        stack.extend((c, depth + 1, thread) for c in reversed(children.get(k, [])))
    columns = ["key", "at", "user", "note", "reply_to", "thread", "depth"]
    frame = pd.DataFrame(out, columns=columns).astype(object)
    frame["depth"] = frame["depth"].astype(int)
    return frame


def audit_log(store: Any, target: str | None = None, user: str | None = None, limit: int = 500) -> pd.DataFrame:
    """Audit events, newest first (optionally for one target or user)."""
    frame = store.read_nodes("AuditEvent", _AUDIT_PROPS)
    for col in ["key", *_AUDIT_PROPS]:
        if col not in frame.columns:
            frame[col] = pd.Series([None] * len(frame), dtype=object)
    if target is not None:
        frame = frame[frame["target"] == target]
    if user is not None:
        frame = frame[frame["user"] == user]
    return frame.sort_values(["at", "key"], ascending=False).head(limit).reset_index(drop=True)


def case_labels(store: Any) -> pd.DataFrame:
    """Investigators' verdicts as training labels: ``application_id``, ``label``.

    A case confirmed as fraud labels its application (or, on a finding, every
    member application) ``fraud``; a dismissed one ``good``. Where both
    apply to one application, ``fraud`` wins.

    Example
    -------
    >>> import tempfile
    >>> from ringscope.graph.embedded import EmbeddedStore
    >>> case_labels(EmbeddedStore(tempfile.mkdtemp())).columns.tolist()
    ['application_id', 'label']
    """
    cases = list_cases(store)
    cases = cases[cases["status"].isin(list(VERDICT_LABELS))]
    if cases.empty:
        return pd.DataFrame({"application_id": pd.Series([], dtype=object), "label": pd.Series([], dtype=object)})
    rows = []
    on_apps = cases[cases["target_label"] == "Application"]
    rows.extend(zip(on_apps["target_key"], on_apps["status"].map(VERDICT_LABELS)))
    on_findings = cases[cases["target_label"] == "Finding"]
    if len(on_findings):
        rel = store.read_relationships("Finding-INVOLVES-Application", ["role"])
        if "role" in rel.columns:
            rel = rel[rel["role"].fillna("member") == "member"]
        label_of = dict(zip(on_findings["target_key"], on_findings["status"].map(VERDICT_LABELS)))
        rel = rel[rel["src"].isin(list(label_of))]
        rows.extend(zip(rel["dst"], rel["src"].map(label_of)))
    out = pd.DataFrame(rows, columns=["application_id", "label"]).astype(object)
    out["rank"] = (out["label"] == "fraud").astype(int)
    out = out.sort_values(["application_id", "rank"], ascending=[True, False]).drop_duplicates("application_id")
    return out[["application_id", "label"]].reset_index(drop=True)


@dataclass(frozen=True)
class BulkResult:
    """What :func:`bulk_update` did: the targets ``changed`` and those
    ``skipped``, each with the reason (a :class:`Message`) it was not."""

    changed: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]


def bulk_update(
    store: Any,
    user: str,
    target_label: str,
    target_keys: list[str],
    comment: str,
    status: str | None = None,
    assignee: str | None = None,
) -> BulkResult:
    """One action with one comment on many cases (the queue's bulk assign
    and dismiss): each case goes through :func:`update_case`, so each gets
    its own audit event(s) and the same comment — as the reason of a status
    change, else as a note. The comment is required. A case the action
    does not fit (a confirmed case cannot be dismissed) is skipped with its
    reason; the others still change. The store's lock is held once for all.

    Example
    -------
    >>> import tempfile
    >>> from ringscope.graph.embedded import EmbeddedStore
    >>> store = EmbeddedStore(tempfile.mkdtemp())
    >>> done = bulk_update(store, "ivy", "Finding", ["f1", "f2"], "same device farm", status="Dismissed")
    >>> done.changed, [get_case(store, "Finding", k).comment for k in done.changed]
    (('f1', 'f2'), ['same device farm', 'same device farm'])
    """
    if not user:
        raise CaseError(Message(N_("Log in to change a case.")))
    if not (comment or "").strip():
        raise CaseError(Message(N_("Write one comment for the cases you ticked.")))
    changed: list[str] = []
    skipped: list[tuple[str, str]] = []
    with _locked(store):
        for key in dict.fromkeys(str(k) for k in target_keys):
            try:
                update_case(store, user, target_label, key, status=status, assignee=assignee, comment=comment.strip())
            except CaseError as exc:
                skipped.append((key, exc.args[0] if exc.args else str(exc)))
            else:
                changed.append(key)
    return BulkResult(tuple(changed), tuple(skipped))
