"""The evidence pack, read back as a reader would: rendered to PNG and its
text extracted by poppler (an independent PDF reader), in Chinese and in
English; and the case's threaded notes and stale-save check it relies on."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from ringscope.app.dashboard import cases, evidence_pack
from ringscope.graph.embedded import EmbeddedStore
from tests.app.browser.store_fixture import RING_A, build_dashboard_store

POPPLER = ("pdftotext", "pdftoppm", "pdffonts")
RAW_ID = "110101199003071234"  # typed into a note: must come out masked
RAW_PHONE = "13912345678"


def _tool(name: str) -> str:
    found = shutil.which(name)
    if not found:
        pytest.fail(f"{name} is missing: `make browser` installs poppler-utils (apt-get install poppler-utils)")
    return found


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    """A store with a worked case on ring A, and its pack in Chinese and in English."""
    root = tmp_path_factory.mktemp("pack")
    store = EmbeddedStore(root / "store")
    build_dashboard_store(store, root / "export")
    cases.update_case(store, "ivy", "Finding", "rings-aaaa", status="In progress", assignee="ivy")
    first = cases.add_note(store, "ivy", "Finding", "rings-aaaa", f"致电申请人 {RAW_PHONE}，身份证 {RAW_ID} 对不上")
    cases.add_note(store, "ana", "Finding", "rings-aaaa", "同一设备农场，已上报", reply_to=first)
    cases.update_case(store, "ana", "Finding", "rings-aaaa", status="Confirmed fraud", comment="设备农场，三笔逾期")
    zh = root / "zh.pdf"
    zh.write_bytes(evidence_pack.evidence_pack(store, "case:Finding:rings-aaaa", user="ivy", lang="zh_CN"))
    en = root / "en.pdf"
    en.write_bytes(evidence_pack.evidence_pack(store, "case:Application:RA01", user="ana", lang="en"))
    return store, zh, en


def _text(pdf: Path) -> str:
    return subprocess.run(
        [_tool("pdftotext"), "-enc", "UTF-8", str(pdf), "-"], capture_output=True, check=True, text=True
    ).stdout


def _personal_values(store) -> set[str]:
    """Every stored ID number, phone, account and e-mail, as stored and as digits."""
    out: set[str] = {RAW_ID, RAW_PHONE}
    for label in ("Person", "Phone", "BankAccount", "Email"):
        for key in store.read_nodes(label, [])["key"].astype(str):
            out.add(key)
            digits = re.sub(r"\D", "", key)
            if len(digits) >= 11:
                out.add(digits[-11:] if label == "Phone" else digits)
    return {v for v in out if len(v) >= 6}


def test_the_pack_reads_back_in_chinese_with_its_font_embedded(packed):
    store, zh, _en = packed
    fonts = subprocess.run([_tool("pdffonts"), str(zh)], capture_output=True, check=True, text=True).stdout
    rows = [line.split() for line in fonts.splitlines()[2:] if line.strip()]
    assert rows and all("WenQuanYi" in r[0] for r in rows), fonts
    assert all(r[-5] == "yes" for r in rows), fonts  # the "emb" column: every font is in the file
    text = _text(zh)
    flat = re.sub(r"\s+", "", text)
    for words in (
        "证据包",
        "共用标识团伙，6份申请",  # the summary in words
        "确认欺诈",  # the status
        "设备农场，三笔逾期",  # the reason
        "同一设备农场，已上报",  # the reply
        "138****8000",  # the shared phone of the evidence, masked as on screen
        "生成证据包",  # this very pack is in its own audit trail
        "的备注：同一设备农场，已上报",  # the reply, in the audit trail, names the note it answers
        *RING_A,  # the timeline lists every member
    ):
        assert words in flat, words
    assert "139****5678" in flat and "110101********1234" in flat  # the note's numbers, masked
    # the reply is indented under the note it answers
    lines = text.splitlines()
    note = next(i for i, line in enumerate(lines) if "致电申请人" in line)
    reply = next(i for i, line in enumerate(lines) if "同一设备农场" in line)
    assert reply > note


def test_no_unmasked_personal_data_anywhere_in_the_pack(packed):
    store, zh, en = packed
    values = _personal_values(store)
    assert len(values) > 20  # the fixture's people, phones, accounts
    for pdf in (zh, en):
        flat = re.sub(r"\s+", "", _text(pdf))
        leaked = sorted(v for v in values if v in flat)
        assert not leaked, (pdf.name, leaked)
        raw = pdf.read_bytes()  # nor in the file's metadata or uncompressed parts
        assert not [v for v in values if v.encode() in raw]


def test_the_pack_renders_with_the_ring_drawn_in_type_colours(packed, tmp_path):
    from PIL import Image

    _store, zh, _en = packed
    subprocess.run([_tool("pdftoppm"), "-r", "50", "-png", str(zh), str(tmp_path / "page")], check=True)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) >= 2
    image = Image.open(pages[0]).convert("RGB")
    colours = {c for _n, c in image.getcolors(maxcolors=1 << 20)}

    def near(hex_colour: str) -> bool:
        r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
        return any(abs(r - c[0]) + abs(g - c[1]) + abs(b - c[2]) < 30 for c in colours)

    # applications, people, the shared phone and device: each in its own colour on page 1
    for label in ("Application", "Person", "Phone", "Device"):
        assert near(evidence_pack.NODE_COLOURS[label]), label


def test_an_application_case_in_english(packed):
    store, _zh, en = packed
    flat = re.sub(r"\s+", "", _text(en))
    for words in ("Evidencepack", "ApplicationRA01", "Summary", "Evidence", "Timelineoftheapplications", "Audittrail"):
        assert words in flat, words
    assert not {"概要", "证据包", "审计记录", "时间线"} & {
        w for w in ("概要", "证据包", "审计记录", "时间线") if w in flat
    }
    assert "evidencepackmade" in flat
    log = cases.audit_log(store, target="case:Application:RA01")
    assert log["action"].tolist() == ["case.pack"] and log["user"].tolist() == ["ana"]


def test_a_missing_font_says_what_to_install_and_audits_nothing(packed, tmp_path):
    store, _zh, _en = packed
    before = len(cases.audit_log(store, limit=100_000))
    with pytest.raises(evidence_pack.FontMissing, match="apt-get install fonts-wqy-zenhei"):
        evidence_pack.evidence_pack(store, "case:Finding:rings-bbbb", user="ivy", font=tmp_path / "none.ttc")
    assert len(cases.audit_log(store, limit=100_000)) == before
    with pytest.raises(cases.CaseError, match="no Finding nothing"):
        evidence_pack.evidence_pack(store, "case:Finding:nothing")
    with pytest.raises(cases.CaseError, match="not a case key"):
        evidence_pack.evidence_pack(store, "Finding:rings-aaaa")


# -- threaded notes, and a status that changes only from what the user saw --------------------


def test_notes_are_threads_and_a_reply_must_answer_a_note_of_the_same_case(tmp_path):
    store = EmbeddedStore(tmp_path / "s")
    a = cases.add_note(store, "ivy", "Finding", "F1", "first")
    b = cases.add_note(store, "ivy", "Finding", "F1", "second thread")
    cases.add_note(store, "ana", "Finding", "F1", "answer to first", reply_to=a)
    cases.add_note(
        store,
        "ivy",
        "Finding",
        "F1",
        "answer to the answer",
        reply_to=cases.case_notes(store, "Finding", "F1")["key"].iloc[1],
    )
    other = cases.add_note(store, "ivy", "Finding", "F2", "elsewhere")
    notes = cases.case_notes(store, "Finding", "F1")
    assert notes["note"].tolist() == ["first", "answer to first", "answer to the answer", "second thread"]
    assert notes["depth"].tolist() == [0, 1, 2, 0]
    assert notes["thread"].tolist() == [a, a, a, b]
    for bad in (other, "audit:nope", b.replace("audit", "case")):
        with pytest.raises(cases.CaseError, match="no note"):
            cases.add_note(store, "ivy", "Finding", "F1", "lost?", reply_to=bad)
    assert len(cases.case_notes(store, "Finding", "F1")) == 4  # nothing was added by the refusals
    assert cases.get_case(store, "Finding", "F1").updated_at == ""  # notes never make or change a case


def test_a_status_picked_on_a_stale_page_is_refused_and_nothing_is_saved(tmp_path):
    store = EmbeddedStore(tmp_path / "s")
    seen = cases.update_case(store, "ivy", "Finding", "F1", status="In progress").updated_at
    # another investigator confirms it meanwhile
    cases.update_case(store, "ana", "Finding", "F1", status="Confirmed fraud", comment="farm")
    events = len(cases.audit_log(store, limit=1000))
    # ivy's page still shows In progress; she dismisses: refused, not a reopen-and-dismiss
    with pytest.raises(cases.CaseError, match="ana changed this case"):
        cases.update_case(store, "ivy", "Finding", "F1", status="Dismissed", comment="a family", expected=seen)
    # nor may a stale "In progress" reopen the confirmed case
    with pytest.raises(cases.CaseError, match="ana changed this case"):
        cases.update_case(store, "ivy", "Finding", "F1", status="In progress", expected=seen)
    case = cases.get_case(store, "Finding", "F1")
    assert (case.status, case.comment, case.updated_by) == ("Confirmed fraud", "farm", "ana")
    assert len(cases.audit_log(store, limit=1000)) == events
    # what she sees now, she may change
    after = cases.update_case(store, "ivy", "Finding", "F1", assignee="ivy", expected=case.updated_at)
    assert after.status == "Confirmed fraud" and after.assignee == "ivy"


def test_pack_content_is_masked_before_it_is_drawn(packed):
    store, _zh, _en = packed
    content = evidence_pack.pack_content(store, "case:Finding:rings-aaaa")
    persons = [n for n in content.graph_nodes if n.startswith("Person:")]
    assert persons and all(n.partition(":")[2] not in content.captions[n] for n in persons)
    phones = [content.captions[n] for n in content.graph_nodes if n.startswith("Phone:")]
    assert phones == ["138****8000"]
    assert isinstance(content.timeline, pd.DataFrame) and content.timeline["application"].tolist() == RING_A
