"""The analyst queries of docs/graph-model.md, run on a real Neo4j loaded
with the test sample. The doc is the source: queries are read from it."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from ringscope.ingest.pipeline import ingest_folder
from tests.sample_data import C1, C2, P1, write_sample

DOC = Path(__file__).resolve().parents[2] / "docs" / "graph-model.md"


def doc_queries() -> dict[str, str]:
    """Query tag (``q1-shared-phone``) → Cypher, from the doc's code blocks."""
    blocks = re.findall(r"```cypher\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    out = {}
    for block in blocks:
        tag = re.match(r"// (q\d+-[\w-]+)\n", block)
        assert tag, f"cypher block without a '// qN-name' tag:\n{block}"
        out[tag.group(1)] = block
    return out


def test_doc_has_at_least_ten_tagged_queries():
    queries = doc_queries()
    assert len(queries) >= 10
    assert all("$" not in q or re.search(r"\$\w+", q) for q in queries.values())


@pytest.fixture
def loaded(tmp_path, neo4j_store):
    ingest_folder(write_sample(tmp_path / "export"), neo4j_store, rejects_path=tmp_path / "r.csv")
    return neo4j_store


def _run(store, tag: str, **params):
    from neo4j import RoutingControl

    records, _, _ = store.driver.execute_query(
        doc_queries()[tag], parameters_=params, database_=store.database, routing_=RoutingControl.READ
    )
    return [r.data() for r in records]


EXPECTED = {
    "q1-shared-phone": lambda rows: rows == [{"phone": "+8613700137000", "first": "A3", "second": "A4"}],
    "q2-device-degree": lambda rows: rows[0] == {"device": "dev-1", "applications": 2, "borrowers": 2},
    "q3-mutual-guarantee": lambda rows: (
        rows == [{"party": min(C1, C2), "counterparty": max(C1, C2), "exposure": 150000.0}]
    ),
    # one row per circle, not one per rotation
    "q4-guarantee-cycles": lambda rows: (
        rows == [{"members": [min(C1, C2), max(C1, C2), min(C1, C2)], "length": 2, "exposure": 150000.0}]
    ),
    "q6-contact-is-applicant": lambda rows: (
        {(r["application"], r["contact_application"]) for r in rows} == {("A1", "A2"), ("A2", "A1")}
    ),
    "q7-contact-loops": lambda rows: rows == [{"first": "A1", "second": "A2"}],
    "q8-agent-outcomes": lambda rows: (
        rows[0]["agent"] == "AG1" and rows[0]["applications"] == 2 and rows[0]["bad"] == 1
    ),
    "q9-bad-id-checksum": lambda rows: [r["application"] for r in rows] == ["A7"],
    "q10-shared-company-address": lambda rows: (
        len(rows) == 1 and {rows[0]["rep"], rows[0]["other_rep"]} == {"张伟", "李四"}
    ),
}


@pytest.mark.neo4j
@pytest.mark.parametrize("tag", sorted(EXPECTED))
def test_doc_query_returns_what_the_sample_holds(loaded, tag):
    rows = _run(loaded, tag)
    assert EXPECTED[tag](rows), rows


@pytest.mark.neo4j
def test_person_footprint_query(loaded):
    rows = _run(loaded, "q5-person-footprint", id=P1)
    links = {r["link"] for r in rows}
    assert {"FOR_COMPANY", "HAS_PHONE", "HAS_DEVICE", "HAS_IP", "HAS_ACCOUNT", "SUBMITTED_BY"} <= links
    assert {r["application"] for r in rows} == {"A1"}


@pytest.mark.neo4j
def test_shortest_path_query(loaded):
    rows = _run(loaded, "q11-shortest-path", a="A3", b="A4")
    assert rows[0]["length"] == 2
    assert rows[0]["hops"] == ["A3", "+8613700137000", "A4"]


@pytest.mark.neo4j
def test_finding_queries_after_detect(loaded):
    from ringscope.detectors.runner import run_detectors, save_findings

    save_findings(loaded, run_detectors(loaded, ["guarantee_circles"]))
    top = _run(loaded, "q12-top-findings")
    assert len(top) == 1 and top[0]["detector"] == "guarantee_circles" and top[0]["kind"] == "mutual_guarantee"
    # A1 and A2 guarantee each other; A3's loan is guaranteed by 张伟, C1's legal
    # representative (one economic unit with C1), so it stands on the circle's security
    assert set(top[0]["applications"]) == {"A1", "A2", "A3"}
    mine = _run(loaded, "q13-application-findings", application="A1")
    assert [r["detector"] for r in mine] == ["guarantee_circles"]


@pytest.mark.neo4j
def test_guarantee_cycles_query_lists_each_simple_cycle_once(loaded):
    """A circle of three (one edge carrying two guarantees) and a figure eight
    through one party: each cycle once, from its smallest key, never a walk
    that passes a party twice."""
    from ringscope.graph.store import GraphBatch

    keys = ["GX1", "GX2", "GX3", "GX4"]
    edges = [
        ("GX1", "GX2", "L1", 10.0),
        ("GX2", "GX3", "L2", 20.0),
        ("GX3", "GX1", "L3", 30.0),
        ("GX3", "GX1", "L4", 5.0),
        ("GX1", "GX4", "L5", 1.0),
        ("GX4", "GX1", "L6", 2.0),
    ]
    loaded.write(
        GraphBatch(
            nodes={"Company": pd.DataFrame({"key": keys})},
            relationships={
                "Company-GUARANTEES-Company": pd.DataFrame(
                    {
                        "src": [e[0] for e in edges],
                        "dst": [e[1] for e in edges],
                        "application_id": [e[2] for e in edges],
                        "amount": [e[3] for e in edges],
                    }
                )
            },
        )
    )
    rows = [r for r in _run(loaded, "q4-guarantee-cycles") if r["members"][0].startswith("GX")]
    assert rows == [
        {"members": ["GX1", "GX4", "GX1"], "length": 2, "exposure": 3.0},
        {"members": ["GX1", "GX2", "GX3", "GX1"], "length": 3, "exposure": 65.0},
    ]


@pytest.mark.neo4j
def test_shortest_path_never_walks_through_findings(loaded):
    """Two applications that share nothing but a finding are not connected
    through it (INVOLVES edges are the detectors' output, not data)."""
    from ringscope.graph.store import GraphBatch

    loaded.write(
        GraphBatch(
            nodes={"Finding": pd.DataFrame({"key": ["test-finding"], "detector": ["test"], "score": [0.9]})},
            relationships={
                "Finding-INVOLVES-Application": pd.DataFrame(
                    {"src": ["test-finding", "test-finding"], "dst": ["A3", "A7"], "role": ["member", "member"]}
                )
            },
        )
    )
    for row in _run(loaded, "q11-shortest-path", a="A3", b="A7"):
        assert "test-finding" not in row["hops"], row
    rows = _run(loaded, "q11-shortest-path", a="A3", b="A4")  # the data's own link is still found
    assert rows[0]["hops"] == ["A3", "+8613700137000", "A4"]
