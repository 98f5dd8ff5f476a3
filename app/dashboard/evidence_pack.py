"""The evidence pack of a case: one PDF to file, print or hand over.

:func:`evidence_pack` writes, in the reader's language (Chinese by
default), the case's summary, a picture of the ring (drawn with
matplotlib at networkx positions, :mod:`~ringscope.app.dashboard.pack_pictures`), the evidence table, the timeline of the
ring's applications, the case's notes as threads and its audit trail.
Everything personal is masked exactly as the dashboard masks it
(:mod:`ringscope.app.dashboard.masking`): the pack never holds more than
the screen shows unrevealed. The Chinese font is embedded (subset) so the
PDF reads the same on a machine without it.

Making a pack is itself an audited action (``case.pack``), written before
the pack is made, so every pack ends with the line that records it.

The font is :data:`FONT_PATH` (Debian's ``fonts-wqy-zenhei``) unless
``RINGSCOPE_PDF_FONT`` names another TrueType font with Chinese glyphs;
without one, :class:`FontMissing` says what to install.
"""

from __future__ import annotations

import io
import json
import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ringscope.app.dashboard import cases, i18n, names
from ringscope.app.dashboard.i18n import N_, Message, _
from ringscope.app.dashboard.masking import PII_LABELS, mask_text, mask_value
from ringscope.app.dashboard.pack_pictures import NODE_COLOURS, graph_png, timeline_png
from ringscope.graph.model import KNOWN_BAD_LABELS

__all__ = [
    "FONT_PATH",
    "FONT_CANDIDATES",
    "FontMissing",
    "PackContent",
    "find_font",
    "pack_content",
    "graph_png",
    "timeline_png",
    "evidence_pack",
    "pack_file_name",
    "NODE_COLOURS",
]

#: the font the pack embeds (Debian: ``apt-get install fonts-wqy-zenhei``)
FONT_PATH = Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc")
#: where else a Chinese TrueType font is looked for, in order
FONT_CANDIDATES = (
    FONT_PATH,
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf"),
)

#: applications listed in the timeline table (all are on the timeline picture)
TIMELINE_ROWS = 500


# fontTools says, on every pack, that it drops the font's bitmap table (BDF) when subsetting: not news
logging.getLogger("fontTools.subset").setLevel(logging.ERROR)


class FontMissing(RuntimeError):
    """No font with Chinese glyphs for the evidence pack."""


@dataclass
class PackContent:
    """What goes into a pack, already in words and masked (tests read it too)."""

    case: cases.Case
    title: str
    summary: list[tuple[str, str]]
    evidence: pd.DataFrame
    timeline: pd.DataFrame
    notes: pd.DataFrame
    audit: pd.DataFrame
    graph_nodes: dict[str, str] = field(default_factory=dict)  # Label:key → role
    graph_edges: pd.DataFrame = field(default_factory=pd.DataFrame)
    captions: dict[str, str] = field(default_factory=dict)  # Label:key → masked caption
    outcomes: dict[str, str] = field(default_factory=dict)  # Application:key → outcome label
    view_notes: list[str] = field(default_factory=list)


def find_font(path: str | Path | None = None) -> Path:
    """The TrueType font the pack embeds: ``path``, else ``RINGSCOPE_PDF_FONT``,
    else the first of :data:`FONT_CANDIDATES` that exists.

    Example
    -------
    >>> find_font().suffix in (".ttc", ".ttf")
    True
    """
    asked = path or os.environ.get("RINGSCOPE_PDF_FONT")
    candidates = [Path(asked)] if asked else list(FONT_CANDIDATES)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FontMissing(
        Message(
            N_(
                "No Chinese font for the evidence pack: {path} is missing. Install it (`apt-get install "
                "fonts-wqy-zenhei`, or `make browser`) or set RINGSCOPE_PDF_FONT to a TrueType font with Chinese glyphs."
            ),
            path=str(candidates[0]),
        )
    )


def pack_file_name(case_key: str) -> str:
    """A file name for a case's pack (no characters a file system refuses).

    >>> pack_file_name("case:Finding:rings-aaaa")
    'evidence-Finding-rings-aaaa.pdf'
    """
    label, key = cases.parse_case_key(case_key)
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in f"{label}-{key}")
    return f"evidence-{safe[:120]}.pdf"


# -- what the pack says ----------------------------------------------------------------


def _caption(nid: str, props: dict[str, Any]) -> str:
    """A node's name on the picture, masked as the explorer masks it."""
    label, _sep, key = nid.partition(":")
    if label in ("Person", "Company") and props.get("name"):
        text = str(props["name"])
    elif label in PII_LABELS:
        text = str(mask_value(PII_LABELS[label], key))
    elif label == "Device":
        text = key[:10]
    elif label == "Company" and key.startswith("name:"):
        text = key[5:]
    else:
        text = key
    text = str(mask_text(text))
    return text if len(text) <= 20 else text[:19] + "…"


def _read_json(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, str) or not value.strip():
        return []
    try:
        data = json.loads(value)
    except ValueError:
        return []
    return [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []


def _application_view(index: Any, application: str) -> dict[str, str]:
    """An application's neighbourhood: what it links to, and the other
    applications that share those identifiers (hubs not walked through)."""
    from ringscope.app.dashboard import services

    nid = services.node_id("Application", application)
    roles = {nid: "member"}
    for n in index.neighbours(nid, limit=200):
        label = n.partition(":")[0]
        pos = index.position(n)
        shared = pos is not None and 1 < index.degree(pos) <= services.HUB_DEGREE
        roles.setdefault(n, "shared" if shared and label not in ("Person", "Company", "Agent") else "entity")
    for n, role in list(roles.items()):
        if role == "shared":
            for other in index.neighbours(n, limit=30):
                roles.setdefault(other, "context")
    return roles


def pack_content(
    store: Any,
    case_id: str,
    *,
    index: Any = None,
    members: pd.DataFrame | None = None,
) -> PackContent:
    """Everything a pack holds for case ``case_id`` (``case:<Label>:<key>``),
    in the current language, masked. ``index`` and ``members`` are the
    dashboard's cached :func:`services.build_index` / :func:`services.finding_members`
    (built here when not given).

    Example
    -------
    >>> import tempfile
    >>> from ringscope.graph.embedded import EmbeddedStore
    >>> pack_content(EmbeddedStore(tempfile.mkdtemp()), "case:Finding:nothing")
    Traceback (most recent call last):
    ...
    ringscope.app.dashboard.cases.CaseError: There is no Finding nothing in this store.
    """
    from ringscope.app.dashboard import services

    label, key = cases.parse_case_key(case_id)
    if label not in ("Finding", "Application"):
        raise cases.CaseError(
            Message(N_("Evidence packs are made for findings and applications, not {label}."), label=label)
        )
    case = cases.get_case(store, label, key)
    if label == "Finding":
        found = store.node_properties(
            "Finding", [key], ["detector", "kind", "score", "size", "summary", "evidence", "parameters", "run_at"]
        )
    else:
        found = store.node_properties("Application", [key], ["applied_at", "risk_reasons", "risk_score"])
    if found.empty or found.drop(columns="key").isna().all(axis=None):
        raise cases.CaseError(Message(N_("There is no {label} {key} in this store."), label=label, key=key[:80]))
    row = found.iloc[0]
    index = services.build_index(store) if index is None else index
    view_notes: list[str] = []
    if label == "Finding":
        members = services.finding_members(store) if members is None else members
        view = services.cluster_subgraph(store, index, members, key)
        view_notes = [i18n.tr(n) for n in view.notes]
        roles, edges = view.nodes, view.edges
    else:
        view = services.capped_subgraph(index, _application_view(index, key), services.MAX_ELEMENTS, [])
        view_notes = [i18n.tr(n) for n in view.notes]
        roles, edges = view.nodes, view.edges
    props = services.view_properties(store, list(roles))
    captions = {nid: _caption(nid, props.get(nid, {})) for nid in roles}

    # the ring's applications: members for a finding, all in view for an application
    apps = [n for n, r in roles.items() if n.startswith("Application:") and (label == "Application" or r == "member")]
    timeline = _timeline(props, apps)
    outcomes = {f"Application:{a}": o for a, o in zip(timeline["application"], timeline["_outcome"])}

    summary: list[tuple[str, str]] = [
        (_("Case"), f"{names.label_name(label)} {mask_text(key)}"),
        (_("Status"), names.status_name(case.status)),
    ]
    if case.assignee:
        summary.append((_("Assignee"), case.assignee))
    if case.comment:
        summary.append((_("Reason"), str(mask_text(case.comment))))
    if case.updated_at:
        summary.append((_("Last change"), f"{i18n.fmt_time(case.updated_at)} · {case.updated_by}"))
    amounts = pd.to_numeric(timeline["_amount"], errors="coerce")
    bad = int(timeline["_outcome"].isin(KNOWN_BAD_LABELS).sum())
    if label == "Finding":
        title = str(mask_text(names.finding_summary(row["kind"], row["size"], row["summary"])))
        summary += [
            (_("What"), title),
            (_("Detector"), names.detector_name(row["detector"])),
            (_("Score"), i18n.fmt_score(row["score"])),
            (_("Detected"), i18n.fmt_time(row["run_at"])),
        ]
        evidence = pd.DataFrame(
            [
                {
                    _("Evidence"): names.evidence_name(e.get("feature")),
                    _("Weight"): i18n.fmt_score(e.get("contribution")),
                    _("What it says"): str(
                        mask_text(names.evidence_text(e.get("feature"), e.get("detail"), e.get("values", [])))
                    ),
                    _("Values"): str(mask_text(", ".join(map(i18n.fmt_value, e.get("values", []) or [])))),
                }
                for e in _read_json(row["evidence"])
            ],
            columns=[_("Evidence"), _("Weight"), _("What it says"), _("Values")],
        )
    else:
        title = _("Application {key}").format(key=mask_text(key))
        summary += [(_("Risk score"), i18n.fmt_score(row["risk_score"]))]
        evidence = pd.DataFrame(
            [
                {
                    _("Evidence"): names.reason_name(r.get("code")),
                    _("Weight"): i18n.fmt_score(r.get("contribution")),
                    _("What it says"): str(mask_text(names.reason_detail(r))),
                    _("Values"): str(mask_text(names.reason_evidence(r))),
                }
                for r in _read_json(row["risk_reasons"])
            ],
            columns=[_("Evidence"), _("Weight"), _("What it says"), _("Values")],
        )
    summary += [
        (_("Applications"), i18n.fmt_count(len(timeline))),
        (_("Exposure"), i18n.fmt_amount(amounts.sum(min_count=1))),
        (_("Known-bad applications"), i18n.fmt_count(bad)),
    ]
    if len(timeline):
        summary.append(
            (
                _("Applied between"),
                f"{i18n.fmt_time(timeline['_at'].min())} — {i18n.fmt_time(timeline['_at'].max())}",
            )
        )
    notes = cases.case_notes(store, label, key)
    notes = pd.DataFrame(
        {
            "depth": notes["depth"].astype(int),
            "at": notes["at"].map(i18n.fmt_time),
            "user": notes["user"].astype(str),
            "note": notes["note"].map(lambda t: str(mask_text(str(t)))),
        }
    )
    log = cases.audit_log(store, target=case_id, limit=100_000).iloc[::-1]
    audit = pd.DataFrame(
        {
            _("Time"): log["at"].map(i18n.fmt_time).to_numpy(object),
            _("User"): log["user"].astype(str).to_numpy(object),
            _("Action"): log["action"].map(names.action_name).to_numpy(object),
            _("Detail"): [
                _audit_detail(action, before, after)
                for action, before, after in zip(log["action"], log["before"], log["after"])
            ],
        }
    )
    return PackContent(
        case, title, summary, evidence, timeline, notes, audit, dict(roles), edges, captions, outcomes, view_notes
    )


def _audit_detail(action: Any, before: Any, after: Any) -> str:
    if action == "case.note":
        reply = cases.reply_words(action, before)
        note = str(mask_text(names.audit_text(after)))
        return f"{reply}：{note}" if reply and i18n.language() != "en" else (f"{reply}: {note}" if reply else note)
    was, now = names.audit_text(before), names.audit_text(after)
    text = f"{was} → {now}" if was else now
    return str(mask_text(text))


def _timeline(props: dict[str, dict[str, Any]], apps: list[str]) -> pd.DataFrame:
    """The applications in time order, in words (``_`` columns keep the raw values)."""
    rows = []
    for nid in apps:
        p = props.get(nid, {})
        outcome = p.get("label")
        outcome = "" if outcome is None or (isinstance(outcome, float) and np.isnan(outcome)) else str(outcome)
        rows.append(
            {
                "application": nid.partition(":")[2],
                "_at": pd.to_datetime(p.get("applied_at"), utc=True, errors="coerce"),
                "_amount": p.get("amount"),
                "_outcome": outcome,
                "applicant": str(mask_text(str(p.get("applicant_name") or ""))),
                "product": str(p.get("product") or ""),
                "risk": p.get("risk_score"),
                "decision": p.get("risk_decision"),
            }
        )
    frame = pd.DataFrame(
        rows, columns=["application", "_at", "_amount", "_outcome", "applicant", "product", "risk", "decision"]
    )
    return frame.sort_values(["_at", "application"], na_position="last").reset_index(drop=True)


# -- the PDF ---------------------------------------------------------------------------


def evidence_pack(
    store: Any,
    case_id: str,
    *,
    user: str = "",
    index: Any = None,
    members: pd.DataFrame | None = None,
    lang: str | None = None,
    font: str | Path | None = None,
) -> bytes:
    """The evidence pack of case ``case_id`` (``case:<Label>:<key>``) as PDF bytes.

    ``user`` given, the pack is audited first (``case.pack``, on the case)
    and its audit trail shows that line; ``lang`` is ``zh_CN`` or ``en``
    (default: the session's); ``font`` a TrueType font with Chinese glyphs
    (default :func:`find_font`); ``index``/``members`` as for
    :func:`pack_content`.

    Example
    -------
    >>> import tempfile
    >>> from tests.app.browser.store_fixture import build_dashboard_store
    >>> from ringscope.graph.embedded import EmbeddedStore
    >>> folder = Path(tempfile.mkdtemp())
    >>> store = EmbeddedStore(folder / "store")
    >>> _ = build_dashboard_store(store, folder / "export")
    >>> evidence_pack(store, "case:Finding:rings-aaaa", user="ivy")[:5]
    b'%PDF-'

    Notes
    -----
    About a second for the font (parsed and subset on every call), well
    under a second for a ring of a few hundred nodes.
    """
    font_path = find_font(font)
    label, key = cases.parse_case_key(case_id)
    with i18n.use_language(lang or i18n.language()):
        if user:
            cases.audit(store, user, "case.pack", case_id)
        content = pack_content(store, case_id, index=index, members=members)
        return _render(content, font_path, case_id, user)


def _render(content: PackContent, font: Path, case_id: str, user: str) -> bytes:
    from fpdf import FPDF

    made = i18n.fmt_time(datetime.now(UTC))

    class _Pack(FPDF):
        def footer(self) -> None:
            self.set_y(-12)
            self.set_font("cjk", size=7)
            self.set_text_color(120)
            self.cell(0, 5, f"{case_id[:90]} · {made} · {self.page_no()}/{{nb}}", align="C")

    pdf = _Pack(orientation="P", unit="mm", format="A4")
    pdf.set_auto_page_break(auto=True, margin=16)
    pdf.set_margins(14, 14, 14)
    pdf.add_font("cjk", "", str(font), collection_font_number=0)
    pdf.set_title(_("Evidence pack") + f" {case_id}")
    pdf.set_creator("ringscope")
    pdf.set_author(user or "ringscope")
    pdf.set_lang("zh-CN" if i18n.language() == "zh_CN" else "en")
    pdf.add_page()
    width = pdf.epw

    def heading(text: str, keep: float = 20) -> None:
        """A section heading, on a new page unless ``keep`` mm fit under it."""
        if pdf.get_y() + 9 + keep > pdf.page_break_trigger:
            pdf.add_page()
        pdf.ln(2)
        pdf.set_font("cjk", size=13)
        pdf.set_text_color(20, 40, 90)
        pdf.multi_cell(width, 7, text, new_x="LMARGIN", new_y="NEXT")
        pdf.set_text_color(0)
        pdf.set_font("cjk", size=9)

    def table(frame: pd.DataFrame, widths: tuple[int, ...]) -> None:
        """A ruled table; the header repeats on each page. Cells that fit on
        one line are drawn as single cells (fpdf2's own table wraps every
        cell: seconds for a ring of a few hundred applications)."""
        if frame.empty:
            pdf.multi_cell(width, 5, _("None."), new_x="LMARGIN", new_y="NEXT")
            return
        pdf.set_font("cjk", size=8)
        pdf.set_draw_color(170)
        cols = [width * w / sum(widths) for w in widths]
        line = 4.5

        def row(texts: list[str], header: bool = False) -> None:
            fits = [pdf.get_string_width(t) <= w - 2 for t, w in zip(texts, cols)]
            lines = [
                1 if fit else len(pdf.multi_cell(w - 2, line, t, dry_run=True, output="LINES"))
                for t, w, fit in zip(texts, cols, fits)
            ]
            height = max(lines) * line + 1
            if pdf.get_y() + height > pdf.page_break_trigger:
                pdf.add_page()
                if not header:
                    row([str(c) for c in frame.columns], header=True)
            x, y = pdf.l_margin, pdf.get_y()
            if header:
                pdf.set_fill_color(225, 230, 240)
            for t, w, fit in zip(texts, cols, fits):
                pdf.rect(x, y, w, height, style="DF" if header else "D")
                pdf.set_xy(x + 1, y + 0.5)
                if fit:
                    pdf.cell(w - 2, line, t)
                else:
                    pdf.multi_cell(w - 2, line, t)
                x += w
            pdf.set_xy(pdf.l_margin, y + height)

        row([str(c) for c in frame.columns], header=True)
        for values in frame.itertuples(index=False):
            row(["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in values])
        pdf.set_font("cjk", size=9)

    pdf.set_font("cjk", size=17)
    pdf.multi_cell(width, 9, _("Evidence pack"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", size=11)
    pdf.multi_cell(width, 6, content.title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", size=8)
    pdf.set_text_color(90)
    pdf.multi_cell(
        width,
        4.5,
        _("Made {at} (Beijing time) by {user}. Personal data is masked as on the dashboard.").format(
            at=made, user=user or "—"
        ),
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.set_text_color(0)

    heading(_("Summary"))
    table(pd.DataFrame(content.summary, columns=[_("Item"), _("Value")]), (1, 3))

    heading(_("The ring"), keep=width * 0.75)
    pdf.set_font("cjk", size=8)
    for note in content.view_notes:
        pdf.multi_cell(width, 4.5, note, new_x="LMARGIN", new_y="NEXT")
    png = graph_png(content.graph_nodes, content.graph_edges, content.captions, content.outcomes, font)
    pdf.image(io.BytesIO(png), w=width, alt_text=_("The ring"))

    heading(_("Evidence"))
    table(content.evidence, (3, 1, 6, 4))

    heading(_("Timeline of the applications"), keep=45)
    picture = timeline_png(content.timeline, font)
    if picture is not None:
        pdf.image(io.BytesIO(picture), w=width, alt_text=_("Timeline of the applications"))
    shown = content.timeline.head(TIMELINE_ROWS)
    timeline = pd.DataFrame(
        {
            _("Applied (Beijing time)"): shown["_at"].map(i18n.fmt_time),
            _("Application"): shown["application"].map(lambda v: str(mask_text(v))),
            _("Applicant"): shown["applicant"],
            _("Amount"): shown["_amount"].map(i18n.fmt_amount),
            _("Product"): shown["product"],
            _("Outcome"): shown["_outcome"].map(lambda o: names.outcome_name(o) if o else "—"),
            _("Risk score"): shown["risk"].map(i18n.fmt_score),
            _("Decision"): shown["decision"].map(lambda d: names.decision_name(d) if d else "—"),
        }
    )
    table(timeline, (3, 3, 3, 2, 2, 2, 2, 2))
    if len(content.timeline) > TIMELINE_ROWS:
        pdf.multi_cell(
            width,
            4.5,
            _("The table lists the first {n} of {total} applications; the picture shows all.").format(
                n=i18n.fmt_count(TIMELINE_ROWS), total=i18n.fmt_count(len(content.timeline))
            ),
            new_x="LMARGIN",
            new_y="NEXT",
        )

    heading(_("Notes"))
    if content.notes.empty:
        pdf.multi_cell(width, 5, _("None."), new_x="LMARGIN", new_y="NEXT")
    for note in content.notes.itertuples(index=False):
        indent = min(int(note.depth), 6) * 6
        pdf.set_x(pdf.l_margin + indent)
        pdf.set_text_color(90)
        pdf.multi_cell(width - indent, 4.5, f"{note.at} · {note.user}", new_x="LMARGIN", new_y="NEXT")
        pdf.set_text_color(0)
        pdf.set_x(pdf.l_margin + indent)
        pdf.multi_cell(width - indent, 4.5, note.note, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(1)

    heading(_("Audit trail"))
    table(content.audit, (3, 2, 3, 8))
    return bytes(pdf.output())
