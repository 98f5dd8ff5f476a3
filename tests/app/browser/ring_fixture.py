"""A store with one finding of each layout, for the ring tests and screenshots.

- ``ring-device``: a shared-identifier ring of 12 applications on one
  device, four of them also on one phone; fraud, default and good outcomes,
  two with model scores (concentric around the device);
- ``circle-4``: a guarantee circle of four companies, each guaranteeing the
  next one's loan (a directed circle);
- ``burst-range``: an IP-range burst, 8 applications from 41.118.150.0/24
  within six hours (time order; the range becomes a node).

Findings are written by hand in the shape the detectors write them.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd

from ringscope.graph.store import GraphBatch
from tests.detectors.builder import ExportBuilder, company_uscc

__all__ = ["build_ring_store", "RING", "CIRCLE", "BURST", "DEVICE", "SUBNET"]

RING = [f"RG{i:02d}" for i in range(12)]
CIRCLE = [f"GC{i:02d}" for i in range(4)]
BURST = [f"IB{i:02d}" for i in range(8)]
DEVICE = "farm-dev-9"
SUBNET = "41.118.150.0/24"
_OUTCOMES = ["fraud", "fraud", "default", "good", "", "good", "fraud", "", "good", "default", "", "good"]


def build_ring_store(store, folder: Path) -> dict:
    """Ingest the export into ``store`` and write the three findings; return their keys."""
    b = ExportBuilder(start=datetime(2025, 3, 1, 9, 0))
    for i, app_id in enumerate(RING):
        b.app(
            app_id,
            device_id=DEVICE,
            applicant_phone="13800138000" if i % 3 == 0 else f"139{i + 50:08d}",
            applied_at=datetime(2025, 3, 1, 9) + timedelta(hours=7 * i),
            amount=30000 + 5000 * i,
            label=_OUTCOMES[i],
        )
    for i, app_id in enumerate(CIRCLE):
        b.business_app(i + 1, app_id, applied_at=datetime(2025, 4, 1, 10) + timedelta(days=i), label="")
    for i, app_id in enumerate(CIRCLE):  # company i+2 guarantees company i+1's loan, round the circle
        g = (i + 1) % len(CIRCLE) + 1
        b.guarantee(app_id, "company", f"深圳市第{g}号贸易有限公司", company_uscc(g), amount=200000 + 100000 * i)
    for i, app_id in enumerate(BURST):
        b.app(
            app_id,
            ip=f"41.118.150.{10 + i}",
            applied_at=datetime(2025, 5, 2, 1) + timedelta(minutes=45 * i),
            label="",
        )
    b.load(store, folder)
    _findings(store)
    return {"ring": "ring-device", "circle": "circle-4", "burst": "burst-range"}


def _findings(store) -> None:
    person_of = store.read_relationships("Person-APPLIED-Application")
    person_of = dict(zip(person_of["dst"], person_of["src"]))
    company_of = store.read_relationships("Application-FOR_COMPANY-Company")
    company_of = dict(zip(company_of["src"], company_of["dst"]))
    ips = store.read_relationships("Application-HAS_IP-IP")
    ip_of = dict(zip(ips["src"], ips["dst"]))
    phones = store.read_relationships("Application-HAS_PHONE-Phone")
    phone = phones[phones["src"] == RING[0]]["dst"].iloc[0]
    evidence = {
        "ring-device": [
            {
                "feature": "shared_identifiers",
                "contribution": 0.45,
                "detail": f"12 applications by 12 people share 1 device, 1 phone ({phone})",
                "values": [f"device:{DEVICE} (12 people)", f"phone:{phone} (4 people)"],
            },
            {
                "feature": "known_bad_members",
                "contribution": 0.2,
                "detail": "5 members fraud or default",
                "values": [5],
            },
        ],
        "circle-4": [
            {
                "feature": "guarantee_cycle",
                "contribution": 0.35,
                "detail": "guarantee cycle of 4",
                "values": [],
            },
            {
                "feature": "exposure",
                "contribution": 0.1,
                "detail": "loans in the circle total ¥1,200,000; guarantees ¥1,400,000",
                "values": [1200000, 1400000],
            },
        ],
        "burst-range": [
            {
                "feature": "distinct_identities",
                "contribution": 0.3,
                "detail": f"IP range {SUBNET}: 8 applications by 8 distinct applicants",
                "values": [SUBNET, "2025-05-02 01:00:00+00:00", "2025-05-02 06:15:00+00:00", 8, 8],
            }
        ],
    }
    meta = [
        ("ring-device", "shared_identifier_rings", "shared_identifier_ring", 0.93, RING, "ring of 12 on one device"),
        ("circle-4", "guarantee_circles", "guarantee_circle", 0.71, CIRCLE, "guarantee circle of 4 borrowers"),
        ("burst-range", "device_velocity", "ip_range_burst", 0.66, BURST, f"IP range {SUBNET}: 8 applications"),
    ]
    nodes = pd.DataFrame(
        {
            "key": [m[0] for m in meta],
            "detector": [m[1] for m in meta],
            "kind": [m[2] for m in meta],
            "score": [m[3] for m in meta],
            "size": [len(m[4]) for m in meta],
            "summary": [m[5] for m in meta],
            "evidence": [json.dumps(evidence[m[0]], ensure_ascii=False) for m in meta],
            "parameters": ["{}"] * len(meta),
            "run_at": ["2025-06-01T00:00:00Z"] * len(meta),
        }
    )
    apps = [(m[0], a, "member") for m in meta for a in m[4]]
    persons = [(f, person_of[a], "member") for f, a, _ in apps if f != "circle-4" and a in person_of]
    companies = [("circle-4", company_of[a], "member") for a in CIRCLE]
    rels = {
        "Finding-INVOLVES-Application": pd.DataFrame(apps, columns=["src", "dst", "role"]),
        "Finding-INVOLVES-Person": pd.DataFrame(persons, columns=["src", "dst", "role"]),
        "Finding-INVOLVES-Company": pd.DataFrame(companies, columns=["src", "dst", "role"]),
        "Finding-INVOLVES-Device": pd.DataFrame([("ring-device", DEVICE, "shared")], columns=["src", "dst", "role"]),
        "Finding-INVOLVES-Phone": pd.DataFrame([("ring-device", phone, "shared")], columns=["src", "dst", "role"]),
        "Finding-INVOLVES-IP": pd.DataFrame(
            [("burst-range", ip_of[a], "shared") for a in BURST], columns=["src", "dst", "role"]
        ),
    }
    store.replace_derived(GraphBatch(nodes={"Finding": nodes}, relationships=rels))
    store.write(
        GraphBatch(
            nodes={
                "Application": pd.DataFrame(
                    {"key": [RING[0], RING[3]], "risk_score": [0.91, 0.45], "risk_decision": ["decline", "review"]}
                )
            }
        )
    )
