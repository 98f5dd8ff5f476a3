"""GDS algorithms inside Neo4j (graph/neo4j_gds.py) give what the Python
detectors give on the same stored book, leave no projection behind, and the
paged whole-table reads keep every row and every null."""

from __future__ import annotations

import pandas as pd
import pytest

from ringscope.graph import neo4j_gds

pytestmark = pytest.mark.neo4j


def _partition(labels: pd.Series) -> list[list[str]]:
    """Member sets of a key → component series, whatever the numbering."""
    return sorted(sorted(map(str, members)) for members in labels.groupby(labels).groups.values())


@pytest.fixture
def book(neo4j_store, tmp_path):
    from ringscope.ingest.pipeline import ingest_folder
    from ringscope.ingest.synthetic import GeneratorConfig, generate_portfolio

    generate_portfolio(GeneratorConfig(applications=1200, seed=11), tmp_path / "data")
    ingest_folder(tmp_path / "data", neo4j_store, rejects_path=tmp_path / "rejects.csv")
    return neo4j_store


def _glue_by_relationship(glue: pd.DataFrame) -> dict[str, list[str]]:
    from ringscope.detectors.portfolio import LINK_KINDS

    out: dict[str, list[str]] = {}
    for kind, identifier in glue.index[glue["glue"].to_numpy(dtype=bool)]:
        out.setdefault(LINK_KINDS[kind][0], []).append(identifier)
    return out


def test_gds_agrees_with_the_python_detectors(book):
    from ringscope.detectors.components import strong_components
    from ringscope.detectors.portfolio import Portfolio
    from ringscope.detectors.rings import entity_links, identifier_hubs, ring_components

    portfolio = Portfolio(book)
    links = entity_links(portfolio)
    glue = identifier_hubs(links)
    expected = ring_components(links, glue)
    assert expected.nunique() > 5  # a book with rings in it, not a trivial partition
    got = book.connected_components(_glue_by_relationship(glue))
    assert _partition(got) == _partition(expected)

    # resolved entities glue their persons' applications: make the applicant
    # of one ring's first application the entity of the next ring's
    entity = links.drop_duplicates("application_id").set_index("application_id")["entity"]
    firsts = expected.sort_index().groupby(expected.sort_index()).head(1).index
    people = [e for e in entity.reindex(firsts).dropna() if not e.startswith("app:")][:6]
    merged = pd.Series(people[0::2][: len(people[1::2])], index=people[1::2])  # person → its entity (another person)
    links = links.assign(entity=links["entity"].map(lambda e: merged.get(e, e)))
    expected_merged = ring_components(links, glue)
    assert _partition(expected_merged) != _partition(expected)  # the merge changes the rings
    assert _partition(book.connected_components(_glue_by_relationship(glue), merged)) == _partition(expected_merged)

    guarantees = portfolio.guarantees.rename(columns={"guarantor": "src", "borrower": "dst"})[["src", "dst"]]
    expected_scc = strong_components(guarantees)
    assert len(expected_scc) > 0
    assert _partition(book.strong_components()) == _partition(expected_scc)

    first = book.communities()
    shared = portfolio.links.groupby(["kind", "identifier"])["application_id"].transform("nunique") >= 2
    kinds = ["phone", "device", "ip", "account", "address", "email", "contact_phone"]
    projected = set(portfolio.links.loc[shared & portfolio.links["kind"].isin(kinds), "application_id"])
    assert projected <= set(first.loc[first["label"] == "Application", "key"])  # a community for every node
    assert not first.duplicated(["label", "key"]).any() and first["community"].notna().all()
    assert 1 < first["community"].nunique() < len(first)
    pd.testing.assert_frame_equal(book.communities(), first)  # single-threaded Louvain: the same every run
    assert neo4j_gds.projections(book.driver, book.database) == []


def test_projection_dropped_after_an_error(neo4j_store):
    from neo4j.exceptions import ClientError

    store = neo4j_store
    store.driver.execute_query(
        "CREATE (a:Application {key: 'a1'})-[:HAS_PHONE]->(p:Phone {key: 'p1'})<-[:HAS_PHONE]-"
        "(:Application {key: 'a2'})",
        database_=store.database,
    )
    with pytest.raises(ClientError):
        store.communities(max_levels=-1)  # refused by Louvain after the projection exists
    assert neo4j_gds.projections(store.driver, store.database) == []
    # and a good call after it works
    got = store.communities()
    assert sorted(got["key"]) == ["a1", "a2", "p1"] and got["community"].nunique() == 1
    assert store.connected_components({"Application-HAS_PHONE-Phone": ["p1"]}).to_dict() == {"a1": 0, "a2": 0}
    assert store.connected_components({"Application-HAS_PHONE-Phone": ["nowhere"]}).empty
    assert neo4j_gds.projections(store.driver, store.database) == []


def test_paged_reads_keep_rows_and_nulls(neo4j_store, embedded_store, monkeypatch):
    """A table read in many id parts (collect drops nulls: rows are lists) equals the embedded store's."""
    from ringscope.graph import neo4j_store as module
    from ringscope.graph.store import GraphBatch

    phones = pd.DataFrame(
        {"key": [f"p{i:03d}" for i in range(60)], "valid": [None if i % 3 == 0 else i % 2 == 0 for i in range(60)]}
    )
    apps = pd.DataFrame({"key": [f"a{i:03d}" for i in range(60)]})
    edges = pd.DataFrame(
        {"src": apps["key"], "dst": phones["key"], "raw": [None if i % 4 else f"r{i}" for i in range(60)]}
    )
    batch = GraphBatch(
        nodes={"Phone": phones, "Application": apps}, relationships={"Application-HAS_PHONE-Phone": edges}
    )
    for store in (neo4j_store, embedded_store):
        store.write(batch)
    monkeypatch.setattr(module, "READ_PART_ROWS", 7)  # nine parts, on several sessions
    for read in (
        lambda s: s.read_nodes("Phone", ["valid"]),
        lambda s: s.read_relationships("Application-HAS_PHONE-Phone", ["raw"]),
    ):
        got = read(neo4j_store)
        want = read(embedded_store)
        assert len(got) == 60
        order = [c for c in ("key", "src") if c in got.columns]
        got = got.sort_values(order).reset_index(drop=True)
        want = want.sort_values(order).reset_index(drop=True)
        assert got.astype(object).where(got.notna(), None).equals(want.astype(object).where(want.notna(), None))


def test_communities_cli_writes_a_csv(neo4j_store, neo4j_uri, tmp_path):
    from click.testing import CliRunner

    from ringscope.app.cli import cli

    neo4j_store.driver.execute_query(
        "CREATE (a:Application {key: 'a1'})-[:HAS_DEVICE]->(:Device {key: 'd1'})<-[:HAS_DEVICE]-"
        "(:Application {key: 'a2'}), (:Application {key: 'a3'})-[:HAS_DEVICE]->(:Device {key: 'd2'})",
        database_=neo4j_store.database,
    )
    out = tmp_path / "communities.csv"
    result = CliRunner().invoke(cli, ["communities", "--neo4j", neo4j_uri, "--out", str(out)])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out, encoding="utf-8-sig")
    assert sorted(frame["key"]) == ["a1", "a2", "d1"]  # d2 has one application: not shared
    assert frame["community"].nunique() == 1
    assert neo4j_gds.projections(neo4j_store.driver, neo4j_store.database) == []
    refused = CliRunner().invoke(cli, ["communities", "--store", str(tmp_path / "emb"), "--out", str(out)])
    assert refused.exit_code != 0 and "--neo4j" in refused.output
