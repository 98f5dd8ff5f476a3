"""One contract, two stores: every test here runs on the embedded store and
on a real Neo4j server (``store`` is parametrised in conftest)."""

from __future__ import annotations

import pandas as pd
import pytest

from graph.model import NODE_TYPES, REL_TYPES
from graph.store import GraphBatch


def _batch(name_a="张伟", amount=1000.0):
    return GraphBatch(
        nodes={
            "Application": pd.DataFrame({"key": ["A1", "A2"], "amount": [amount, 2000.0], "applicant_name": [name_a, None]}),
            "Phone": pd.DataFrame({"key": ["+8613800138000"], "valid": [True]}),
            "Company": pd.DataFrame({"key": ["C1", "C2"]}),
        },
        relationships={
            "Application-HAS_PHONE-Phone": pd.DataFrame(
                {"src": ["A1", "A2"], "dst": ["+8613800138000"] * 2, "raw": ["138 0013 8000", "13800138000"]}
            ),
            "Company-GUARANTEES-Company": pd.DataFrame(
                {"src": ["C1", "C1", "C2"], "dst": ["C2", "C2", "C1"], "application_id": ["A1", "A2", "A2"],
                 "amount": [10.0, 20.0, 30.0]}
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
    store.write(GraphBatch(nodes={"Application": pd.DataFrame({"key": [evil], "applicant_name": ["` MATCH (n) DELETE n"]})}))
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
