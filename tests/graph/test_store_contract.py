"""One contract, two stores: every test here runs on the embedded store and
on a real Neo4j server (``store`` is parametrised in conftest)."""

from __future__ import annotations

import pandas as pd
import pytest

from ringscope.graph.model import NODE_TYPES, REL_TYPES
from ringscope.graph.store import GraphBatch


def _batch(name_a="张伟", amount=1000.0):
    return GraphBatch(
        nodes={
            "Application": pd.DataFrame(
                {"key": ["A1", "A2"], "amount": [amount, 2000.0], "applicant_name": [name_a, None]}
            ),
            "Phone": pd.DataFrame({"key": ["+8613800138000"], "valid": [True]}),
            "Company": pd.DataFrame({"key": ["C1", "C2"]}),
        },
        relationships={
            "Application-HAS_PHONE-Phone": pd.DataFrame(
                {"src": ["A1", "A2"], "dst": ["+8613800138000"] * 2, "raw": ["138 0013 8000", "13800138000"]}
            ),
            "Company-GUARANTEES-Company": pd.DataFrame(
                {
                    "src": ["C1", "C1", "C2"],
                    "dst": ["C2", "C2", "C1"],
                    "application_id": ["A1", "A2", "A2"],
                    "amount": [10.0, 20.0, 30.0],
                }
            ),
        },
    )


def test_counts_cover_every_label_and_type(store):
    counts = store.counts()
    assert set(counts.nodes) == set(NODE_TYPES)
    assert set(counts.relationships) == {rt.type for rt in REL_TYPES.values()}
    assert counts.total_nodes == 0


def test_write_is_idempotent(store):
    store.write(_batch())
    first = store.counts()
    store.write(_batch())
    assert store.counts() == first
    assert first.nodes["Application"] == 2
    assert first.relationships["HAS_PHONE"] == 2
    # guarantees are unique per application: C1→C2 twice (A1, A2), C2→C1 once
    assert first.relationships["GUARANTEES"] == 3


def test_later_value_wins_and_null_keeps_old(store):
    store.write(_batch(name_a="张伟", amount=1000.0))
    store.write(
        GraphBatch(nodes={"Application": pd.DataFrame({"key": ["A1"], "amount": [1500.0], "applicant_name": [None]})})
    )
    props = store.node_properties("Application", ["A1"], ["amount", "applicant_name"])
    assert props.loc[0, "amount"] == 1500.0
    assert props.loc[0, "applicant_name"] == "张伟"


def test_values_are_data_never_query_text(store):
    evil = "x'}) DETACH DELETE n //"
    store.write(
        GraphBatch(nodes={"Application": pd.DataFrame({"key": [evil], "applicant_name": ["` MATCH (n) DELETE n"]})})
    )
    store.write(_batch())
    props = store.node_properties("Application", [evil], ["applicant_name"])
    assert props.loc[0, "applicant_name"] == "` MATCH (n) DELETE n"
    assert store.counts().nodes["Application"] == 3


def test_node_properties_of_unknown_keys_is_empty(store):
    store.write(_batch())
    assert len(store.node_properties("Application", ["nope"], ["amount"])) == 0


def test_batch_rejects_columns_outside_the_model():
    with pytest.raises(ValueError, match="unknown columns"):
        GraphBatch(nodes={"Phone": pd.DataFrame({"key": ["x"], "colour": ["red"]})})
    with pytest.raises(ValueError, match="Unknown relationship"):
        GraphBatch(relationships={"Phone-LIKES-Phone": pd.DataFrame({"src": [], "dst": []})})


def test_tables_read_back_as_columns(store):
    store.write(_batch())
    apps = store.read_nodes("Application", ["amount", "applicant_name"]).sort_values("key").reset_index(drop=True)
    assert apps["key"].tolist() == ["A1", "A2"]
    assert apps["amount"].tolist() == [1000.0, 2000.0]
    assert apps.loc[0, "applicant_name"] == "张伟"
    guarantees = store.read_relationships("Company-GUARANTEES-Company", ["application_id", "amount"])
    rows = sorted(zip(guarantees["src"], guarantees["dst"], guarantees["application_id"], guarantees["amount"]))
    assert rows == [("C1", "C2", "A1", 10.0), ("C1", "C2", "A2", 20.0), ("C2", "C1", "A2", 30.0)]
    assert len(store.read_relationships("Application-HAS_PHONE-Phone")) == 2


def test_reading_a_property_outside_the_model_fails(store):
    with pytest.raises(KeyError, match="colour"):
        store.read_nodes("Phone", ["colour"])
    with pytest.raises(KeyError, match="weight"):
        store.read_relationships("Application-HAS_PHONE-Phone", ["weight"])


def test_keep_policy_keeps_stored_values_and_fills_missing_ones(store):
    store.write(_batch(name_a="张伟", amount=1000.0))
    later = GraphBatch(
        nodes={
            "Application": pd.DataFrame(
                {
                    "key": ["A1", "A2", "A3"],
                    "amount": [1500.0, 2500.0, 3000.0],
                    "applicant_name": ["王五", "李四", "赵六"],
                }
            )
        },
        relationships={
            "Application-HAS_PHONE-Phone": pd.DataFrame({"src": ["A1"], "dst": ["+8613800138000"], "raw": ["changed"]})
        },
    )
    store.write(later, policy="keep")
    props = store.node_properties("Application", ["A1", "A2", "A3"], ["amount", "applicant_name"]).set_index("key")
    assert props.loc["A1", "amount"] == 1000.0 and props.loc["A1", "applicant_name"] == "张伟"  # first delivery wins
    assert props.loc["A2", "amount"] == 2000.0 and props.loc["A2", "applicant_name"] == "李四"  # null filled in
    assert props.loc["A3", "amount"] == 3000.0  # new node written
    phones = store.read_relationships("Application-HAS_PHONE-Phone", ["raw"]).set_index("src")
    assert phones.loc["A1", "raw"] == "138 0013 8000"


def test_replace_policy_and_detach_correct_a_node_and_its_edges(store):
    store.write(_batch(name_a="张伟", amount=1000.0))
    store.write(GraphBatch(nodes={"Phone": pd.DataFrame({"key": ["+8613900139000"]})}))
    fix = GraphBatch(
        nodes={"Application": pd.DataFrame({"key": ["A1"], "amount": [1200.0], "applicant_name": [None]})},
        relationships={
            "Application-HAS_PHONE-Phone": pd.DataFrame(
                {"src": ["A1"], "dst": ["+8613900139000"], "raw": ["13900139000"]}
            )
        },
    )
    store.write(fix, policy="replace", detach={"Application-HAS_PHONE-Phone": ("src", ["A1"])})
    props = store.node_properties("Application", ["A1", "A2"], ["amount", "applicant_name"]).set_index("key")
    assert props.loc["A1", "amount"] == 1200.0
    assert pd.isna(props.loc["A1", "applicant_name"])  # replace: the null replaces too
    assert props.loc["A2", "amount"] == 2000.0  # other rows untouched
    phones = store.read_relationships("Application-HAS_PHONE-Phone", ["raw"])
    assert sorted(zip(phones["src"], phones["dst"])) == [("A1", "+8613900139000"), ("A2", "+8613800138000")]


def test_relationship_properties_by_either_end(store):
    store.write(_batch())
    rows = store.relationship_properties("Company-GUARANTEES-Company", ["C1"], ["amount"])
    assert sorted(zip(rows["dst"], rows["application_id"], rows["amount"])) == [("C2", "A1", 10.0), ("C2", "A2", 20.0)]
    rows = store.relationship_properties("Application-HAS_PHONE-Phone", ["+8613800138000"], ["raw"], by="dst")
    assert sorted(rows["src"]) == ["A1", "A2"]
    assert len(store.relationship_properties("Application-HAS_PHONE-Phone", ["nope"], ["raw"])) == 0


def test_replace_derived_swaps_findings_with_their_edges(store):
    store.write(_batch())

    def findings(keys, members):
        return GraphBatch(
            nodes={"Finding": pd.DataFrame({"key": keys, "score": [0.5] * len(keys)})},
            relationships={
                "Finding-INVOLVES-Application": pd.DataFrame(
                    {"src": [k for k in keys for _ in members], "dst": members * len(keys), "role": "member"}
                )
            },
        )

    store.replace_derived(findings(["f-old", "f-both"], ["A1"]))
    store.replace_derived(findings(["f-both", "f-new"], ["A2"]))
    assert sorted(store.read_nodes("Finding")["key"]) == ["f-both", "f-new"]
    edges = store.read_relationships("Finding-INVOLVES-Application")
    assert sorted(zip(edges["src"], edges["dst"])) == [("f-both", "A2"), ("f-new", "A2")]
    assert store.counts().nodes["Finding"] == 2 and store.counts().relationships["INVOLVES"] == 2
    # flag adds findings to the current run's
    store.write(findings(["f-flag"], ["A1"]))
    assert sorted(store.read_nodes("Finding")["key"]) == ["f-both", "f-flag", "f-new"]


def test_revision_moves_on_with_every_write_that_changes_something(store):
    """Issue 12: saved derived state is checked against the revision; it must
    change with any stored change (ingest, scores, findings, clear) and stay
    while nothing changed, on both stores."""
    from ringscope.detectors.base import Evidence, Finding
    from ringscope.detectors.runner import DetectionRun, findings_batch

    seen = [store.revision()]
    store.write(_batch())
    seen.append(store.revision())
    store.write(GraphBatch(nodes={"Application": pd.DataFrame({"key": ["A1"], "risk_score": [0.5]})}))
    seen.append(store.revision())
    finding = Finding("shared_identifier_rings", "ring", ("A1", "A2"), 0.9, (Evidence("x", 0.9, "d"),))
    store.write(findings_batch(DetectionRun([finding], {}, run_at="2026-11-30T00:00:00Z")))
    seen.append(store.revision())
    store.replace_derived(findings_batch(DetectionRun([], {})))
    seen.append(store.revision())
    store.clear()
    seen.append(store.revision())
    assert len(set(seen)) == len(seen), seen
    assert store.revision() == seen[-1]  # reading changes nothing


def test_revision_stays_when_a_write_changes_nothing(store):
    """A second nightly run re-ingests the same batch: on either store that
    must keep the revision (and so the saved flag state), although Neo4j
    counts a property set to the value it holds as an update."""
    store.write(_batch())
    before = store.revision()
    store.write(_batch())  # the same rows again: nodes, relationships and their properties
    store.write(
        GraphBatch(nodes={"Application": pd.DataFrame({"key": ["A1"], "amount": [9.0]})}), policy="keep"
    )  # a stored value stays
    assert store.revision() == before
    store.write(GraphBatch(nodes={"Application": pd.DataFrame({"key": ["A1"], "amount": [9.0]})}))
    assert store.revision() != before
    changed = store.revision()
    edge = _batch().relationships["Company-GUARANTEES-Company"].head(1).assign(amount=99.0)
    store.write(GraphBatch(relationships={"Company-GUARANTEES-Company": edge}))  # a relationship property
    assert store.revision() != changed


@pytest.mark.neo4j
def test_a_killed_write_leaves_a_revision_no_saved_state_matches(neo4j_store):
    """Neo4j writes in many transactions: a writer that dies after some of
    them must not leave the revision it started from."""
    neo4j_store.write(_batch())
    before = neo4j_store.revision()
    with pytest.raises(RuntimeError):
        with neo4j_store.lock(), neo4j_store._revising():
            neo4j_store._run_write("MATCH (a:Application {key: 'A1'}) SET a.amount = 5.0", {})
            raise RuntimeError("killed midway")
    assert neo4j_store.revision() not in (before, "0")
