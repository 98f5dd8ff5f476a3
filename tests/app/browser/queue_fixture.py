"""Findings for the triage queue's tests: nested, with exposure and known-bad members.

On top of :func:`store_fixture.build_dashboard_store`'s rings A (6
applications, score 0.91) and B (4, 0.55):

- C — 4 of ring A's 6 applications (0.40): inside A, shown under it;
- D — 2 of ring B's 4 and 2 unrelated (0.30): exactly half inside B;
- E — 1 of ring A's and 3 unrelated (0.20): a quarter inside A, its own row;
- F — 8 unrelated applications of ¥80,000 (0.10): the largest exposure, the newest.

RA01 and RA02 are known fraud, RB00 a default.
"""

from __future__ import annotations

import json

import pandas as pd

from ringscope.graph.store import GraphBatch
from tests.app.browser.store_fixture import RING_A, RING_B

__all__ = ["add_finding", "add_triage_findings", "UNRELATED"]

UNRELATED = [f"UN{i:02d}" for i in range(10)]


def add_finding(store, key: str, members: list[str], score: float, kind: str = "device_burst", evidence=None) -> None:
    """One more finding over ``members`` (the findings already stored stay)."""
    node = pd.DataFrame(
        {
            "key": [key],
            "detector": ["device_velocity"],
            "kind": [kind],
            "score": [score],
            "size": [len(members)],
            "summary": [f"{kind} of {len(members)}"],
            "evidence": [json.dumps(evidence or [])],
            "parameters": ["{}"],
            "run_at": ["2025-06-01T00:00:00Z"],
        }
    )
    rel = pd.DataFrame({"src": key, "dst": members, "role": "member"})
    store.write(GraphBatch(nodes={"Finding": node}, relationships={"Finding-INVOLVES-Application": rel}))


def add_triage_findings(store) -> None:
    """Findings C–F, outcomes and amounts (see the module docstring)."""
    evidence = [
        {"feature": "burst_size", "contribution": 0.2, "detail": "4 applications in the cluster", "values": [4]},
        {"feature": "time_compactness", "contribution": 0.5, "detail": "applied within 0.5 days", "values": [0.5]},
    ]
    add_finding(store, "burst-cccc", RING_A[:4], 0.40, evidence=evidence)
    add_finding(store, "burst-dddd", RING_B[:2] + UNRELATED[:2], 0.30)
    add_finding(store, "burst-eeee", RING_A[5:] + UNRELATED[2:5], 0.20)
    add_finding(store, "burst-ffff", UNRELATED[2:10], 0.10, kind="ip_burst")
    store.write(
        GraphBatch(
            nodes={
                "Application": pd.DataFrame(
                    {
                        "key": ["RA01", "RA02", "RB00", *UNRELATED[2:10]],
                        "label": ["fraud", "fraud", "default", *["good"] * 8],
                        "amount": [50000.0] * 3 + [80000.0] * 8,
                        "applied_at": pd.to_datetime(
                            ["2025-03-01T07:00:00Z", "2025-03-01T13:00:00Z", "2025-04-01T01:00:00Z"]
                            + [f"2025-09-0{1 + i % 8}T02:00:00Z" for i in range(8)],
                            utc=True,
                        ),
                    }
                )
            }
        )
    )
