"""A small store with findings, cases and a scored application, for the
dashboard's AppTest, browser tests and bench (hand-made, no detectors run).

Two rings (6 applications sharing a device and a phone; 4 sharing an
account and an address), one guarantee circle, one person with two
applications, ten unrelated applications, and an applicant whose name is an
HTML payload (the graph must show it escaped).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd

from ringscope.graph.store import GraphBatch
from tests.detectors.builder import ExportBuilder, person_id

__all__ = ["build_dashboard_store", "add_findings", "RING_A", "RING_B", "XSS_NAME", "add_bulk_findings"]

RING_A = [f"RA{i:02d}" for i in range(6)]
RING_B = [f"RB{i:02d}" for i in range(4)]
XSS_NAME = '<img src=x onerror="alert(1)">王伟'


def build_dashboard_store(store, folder: Path) -> dict:
    """Ingest the export into ``store`` and write findings; return what was planted."""
    b = ExportBuilder(start=datetime(2025, 3, 1, 9, 0))
    for i, app_id in enumerate(RING_A):
        b.app(
            app_id,
            device_id="farm-device-1",
            applicant_phone="13800138000" if i % 2 else f"139{i:08d}",
            agent_id="AG-7",
            applicant_name=XSS_NAME if i == 0 else _name(i),
            applied_at=datetime(2025, 3, 1, 9) + timedelta(hours=6 * i),
        )
    for i, app_id in enumerate(RING_B):
        b.app(
            app_id,
            bank_account="6222000011112222333",
            applicant_address="广东省深圳市南山区科技园1号1栋1单元101室",
            agent_id="AG-9",
            applied_at=datetime(2025, 4, 1, 9) + timedelta(days=i),
        )
    repeat_id = person_id(900)
    b.app("RP01", applicant_id_number=repeat_id, applicant_name="赵敏", applied_at=datetime(2025, 1, 5, 10))
    b.app("RP02", applicant_id_number=repeat_id, applicant_name="赵敏", applied_at=datetime(2025, 5, 5, 10))
    for i in range(10):
        b.app(f"UN{i:02d}")
    b.load(store, folder)
    add_findings(store)
    return {"ring_a": RING_A, "ring_b": RING_B, "repeat": ["RP01", "RP02"]}


def _name(i: int) -> str:
    return ["张伟", "李娜", "王芳", "刘强", "陈静", "杨磊"][i % 6]


def add_findings(store) -> None:
    """Finding nodes + INVOLVES edges for the two rings; a scored application."""
    persons = store.read_relationships("Person-APPLIED-Application")
    person_of = dict(zip(persons["dst"], persons["src"]))
    phone = store.read_relationships("Application-HAS_PHONE-Phone")
    account = store.read_relationships("Application-HAS_ACCOUNT-BankAccount")
    shared_phone = phone[phone["src"].isin(RING_A)]["dst"].value_counts()
    shared_phone = shared_phone[shared_phone > 1].index[0]
    evidence_a = [
        {
            "feature": "shared_identifiers",
            "contribution": 0.4,
            "detail": f"6 applications share 1 device, 1 phone ({shared_phone})",
            "values": ["device:farm-device-1 (6 people)", f"phone:{shared_phone} (3 people)"],
        },
        {"feature": "time_compactness", "contribution": 0.2, "detail": "applied within 1.3 days", "values": [1.3]},
    ]
    acct = account[account["src"].isin(RING_B)]["dst"].iloc[0]
    evidence_b = [
        {
            "feature": "shared_identifiers",
            "contribution": 0.3,
            "detail": f"4 applications share account {acct}",
            "values": [f"account:{acct} (4 people)"],
        }
    ]
    findings = pd.DataFrame(
        {
            "key": ["rings-aaaa", "rings-bbbb"],
            "detector": ["shared_identifier_rings"] * 2,
            "kind": ["ring", "ring"],
            "score": [0.91, 0.55],
            "size": [6, 4],
            "summary": [f"ring of 6 sharing a device and phone {shared_phone}", "ring of 4 sharing an account"],
            "evidence": [json.dumps(evidence_a, ensure_ascii=False), json.dumps(evidence_b, ensure_ascii=False)],
            "parameters": ['{"min_size": 3}'] * 2,
            "run_at": ["2025-06-01T00:00:00Z"] * 2,
        }
    )
    rels = {
        "Finding-INVOLVES-Application": pd.DataFrame(
            [("rings-aaaa", a, "member") for a in RING_A] + [("rings-bbbb", a, "member") for a in RING_B],
            columns=["src", "dst", "role"],
        ),
        "Finding-INVOLVES-Person": pd.DataFrame(
            [("rings-aaaa", person_of[a], "member") for a in RING_A]
            + [("rings-bbbb", person_of[a], "member") for a in RING_B],
            columns=["src", "dst", "role"],
        ),
        "Finding-INVOLVES-Device": pd.DataFrame(
            [("rings-aaaa", "farm-device-1", "shared")], columns=["src", "dst", "role"]
        ),
        "Finding-INVOLVES-Phone": pd.DataFrame(
            [("rings-aaaa", shared_phone, "shared")], columns=["src", "dst", "role"]
        ),
        "Finding-INVOLVES-BankAccount": pd.DataFrame([("rings-bbbb", acct, "shared")], columns=["src", "dst", "role"]),
    }
    store.replace_derived(GraphBatch(nodes={"Finding": findings}, relationships=rels))
    reasons = [
        {
            "code": "RING_MEMBER",
            "feature": "det_shared_identifier_rings",
            "contribution": 1.2,
            "value": 1.0,
            "detail": "flagged by the shared_identifier_rings detector",
        }
    ]
    store.write(
        GraphBatch(
            nodes={
                "Application": pd.DataFrame(
                    {
                        "key": ["RA01"],
                        "risk_score": [0.83],
                        "risk_decision": ["decline"],
                        "risk_reasons": [json.dumps(reasons)],
                        "risk_model": ["test-1"],
                        "scored_at": ["2025-06-02T00:00:00Z"],
                    }
                )
            }
        )
    )


def add_bulk_findings(store, n: int, members_per: int = 5, seed: int = 1) -> None:
    """``n`` synthetic findings over the store's applications (bench / speed tests)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    apps = store.read_nodes("Application", [])["key"].to_numpy()
    keys = [f"bulk-{i:06d}" for i in range(n)]
    findings = pd.DataFrame(
        {
            "key": keys,
            "detector": rng.choice(["shared_identifier_rings", "guarantee_circles", "device_velocity"], n),
            "kind": "ring",
            "score": rng.random(n).round(4),
            "size": members_per,
            "summary": [f"synthetic finding {i}" for i in range(n)],
            "evidence": "[]",
            "parameters": "{}",
            "run_at": "2025-06-01T00:00:00Z",
        }
    )
    picks = rng.integers(0, len(apps), size=(n, members_per))
    rel = pd.DataFrame({"src": np.repeat(keys, members_per), "dst": apps[picks.ravel()], "role": "member"})
    store.replace_derived(
        GraphBatch(
            nodes={"Finding": findings},
            relationships={"Finding-INVOLVES-Application": rel.drop_duplicates(["src", "dst"])},
        )
    )
