"""``ringscope ingest --bulk``: a first load through Neo4j's offline importer
gives the graph a MERGE ingest of the same export gives (counts, every node
and relationship property, constraints, revision, rejects, findings), and a
second bulk load into the now non-empty database is refused.

The importer files themselves are checked without a server first: types,
quoting (a missing value and an empty string stay different), multi-line
values, the MERGE ingest's collapsing of repeated keys.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from ringscope.graph.model import NODE_TYPES, REL_TYPES
from ringscope.graph.neo4j_bulk import BulkRefused, import_tables, write_import_files
from ringscope.graph.store import GraphBatch

TOOLS = Path(__file__).resolve().parents[2] / "tools"


# -- the files, no server -------------------------------------------------------


def test_import_files_types_quoting_and_collapsing(tmp_path):
    apps = pd.DataFrame(
        {
            "key": ["A1", "A2", "A1"],
            "applied_at": pd.to_datetime(["2024-03-01 10:00:00.1239", None, "2025-01-01 00:00:00.0000"], utc=True),
            "amount": [1.5, None, 9.0],
            "source_line": [2, 3, 4],
            "applicant_name": ["张伟", "", "later"],
            "channel": ['a,"b"', None, "x"],
            "company_name_raw": ["two\nlines", "x", "y"],
            "phone_valid": [True, False, True],
        }
    )
    persons = pd.DataFrame({"key": ["P1"], "id_checksum_ok": [True], "birth_date": pd.to_datetime(["1990-05-06"])})
    rels = {
        "Person-APPLIED-Application": pd.DataFrame({"src": ["P1", "P1", "P9"], "dst": ["A1", "A1", "A2"]}),
    }
    tables, dropped = import_tables(GraphBatch(nodes={"Application": apps, "Person": persons}, relationships=rels))
    assert dropped == 1  # P9 is in no node table: MERGE's MATCH would drop it too
    files = write_import_files(tables, tmp_path / "in")
    header, data, rows = files.nodes["Application"]
    assert rows == 2  # A1 twice: the first delivery wins, as the MERGE ingest's "keep"
    assert header.read_text() == (
        ":ID,key:string,applied_at:datetime,amount:double,source_line:long,applicant_name:string,"
        "channel:string,company_name_raw:string,phone_valid:boolean\n"
    )
    text = data.read_text(encoding="utf-8")
    # ids 0.. in the order of the collapsed table; milliseconds, UTC; strings quoted, quotes doubled;
    # a missing value is an empty field, an empty string is ""; numbers and booleans bare
    assert (
        text == '0,"A2",,,3,"",,"x",false\n1,"A1","2024-03-01T10:00:00.123Z",1.5,2,"张伟","a,""b""","two\nlines",true\n'
    )
    assert text.count("\n") == 3  # two rows, one of them spanning two lines
    assert files.multiline  # "two\nlines": the importer must be told
    p_header, p_data, _ = files.nodes["Person"]
    assert p_header.read_text() == ":ID,key:string,id_checksum_ok:boolean,birth_date:date\n"
    assert p_data.read_text() == '2,"P1",true,"1990-05-06"\n'  # Person's ids follow Application's
    r_header, r_data, r_rows = files.relationships["Person-APPLIED-Application"]
    assert r_header.read_text() == ":START_ID,:END_ID\n" and r_rows == 1
    assert r_data.read_text() == "2,1\n"  # P1 -> A1 by their ids
    args = files.arguments()
    assert f"--relationships=APPLIED={r_header},{r_data}" in args and "--multiline-fields=true" in args
    assert "--id-type=actual" in args and "--read-buffer-size=262144" in args
    assert oct(files.folder.stat().st_mode & 0o777) == "0o700"
    assert oct(data.stat().st_mode & 0o777) == "0o600"


def test_same_columns_share_a_file_and_ids_follow_keys(tmp_path):
    """Labels (relationship names) with the same columns go to one file with a
    :LABEL (:TYPE) column, so the importer opens fewer files; every
    relationship end is the id of its own label's node with that key."""
    nodes = {
        "Application": pd.DataFrame({"key": ["A1", "A2", "A3"], "amount": [1.0, 2.0, 3.0]}),
        "Device": pd.DataFrame({"key": ["D1", "D2"]}),
        "Email": pd.DataFrame({"key": ["x@y.cn", "A1"]}),  # a key another label also has
    }
    rels = {
        "Application-HAS_DEVICE-Device": pd.DataFrame({"src": ["A3", "A1"], "dst": ["D2", "D2"]}),
        "Application-HAS_EMAIL-Email": pd.DataFrame({"src": ["A2"], "dst": ["A1"], "raw": ["a1"]}),
        "Application-HAS_IP-IP": pd.DataFrame({"src": ["A1"], "dst": ["9.9.9.9"]}),  # no IP node: dropped
    }
    tables, dropped = import_tables(GraphBatch(nodes=nodes, relationships=rels))
    files = write_import_files(tables, tmp_path / "in")
    assert dropped == 1 and files.n_nodes == 7 and files.n_relationships == 3
    header, data, rows = files.nodes["Device"]
    assert files.nodes["Email"][:2] == (header, data) and rows == 2  # one file, two labels
    assert header.read_text() == ":ID,key:string,:LABEL\n"
    assert data.read_text() == '3,"D1","Device"\n4,"D2","Device"\n5,"x@y.cn","Email"\n6,"A1","Email"\n'
    assert files.nodes["Application"][0] != header  # its amount column: a file of its own
    d_header, d_data, _ = files.relationships["Application-HAS_DEVICE-Device"]
    assert d_header.read_text() == ":START_ID,:END_ID\n" and d_data.read_text() == "2,4\n0,4\n"
    e_header, e_data, _ = files.relationships["Application-HAS_EMAIL-Email"]
    assert e_data.read_text() == '1,6,"a1"\n'  # the Email A1 (id 6), not the Application A1 (id 0)
    args = files.arguments()
    assert f"--nodes={header},{data}" in args  # labels from the :LABEL column
    assert f"--nodes=Application={files.nodes['Application'][0]},{files.nodes['Application'][1]}" in args
    assert len([a for a in args if a.startswith("--nodes=")]) == 2


def test_read_buffer_holds_the_longest_row(tmp_path):
    """The importer's read buffer is small (it samples files buffer by
    buffer before importing) but never smaller than twice a row."""
    long = "长" * 100_000  # 300,000 bytes in UTF-8
    nodes = {"Company": pd.DataFrame({"key": ["C1", "C2"], "name": ["short", long]})}
    files = write_import_files(import_tables(GraphBatch(nodes=nodes, relationships={}))[0], tmp_path / "in")
    assert files.longest_row >= 600_000
    assert f"--read-buffer-size={files.read_buffer}" in files.arguments() and files.read_buffer >= 2 * 600_000


def test_mixed_value_types_are_refused_before_anything_runs(tmp_path):
    mixed = pd.DataFrame({"key": ["P1", "P2"], "name": ["张伟", 7]})
    with pytest.raises(BulkRefused, match="mixes value types"):
        write_import_files(GraphBatch(nodes={"Person": mixed}, relationships={}), tmp_path / "in")


# -- against real servers -----------------------------------------------------------


def _launcher():
    if str(TOOLS) not in sys.path:
        sys.path.insert(0, str(TOOLS))
    import neo4j_server

    return neo4j_server


@pytest.fixture(scope="module")
def book(tmp_path_factory) -> Path:
    from ringscope.ingest.synthetic import GeneratorConfig, generate_portfolio

    out = tmp_path_factory.mktemp("bulk-book") / "export"
    generate_portfolio(GeneratorConfig(applications=1000, seed=9), out)
    return out


@pytest.fixture(scope="module")
def bulk_server(tmp_path_factory):
    """A server of its own: the bulk load stops and restarts it (the session's
    server handle would lose track of the restarted process)."""
    launcher = _launcher()
    data = tmp_path_factory.mktemp("bulk-neo4j")
    handle = launcher.start_server(port=0, data_dir=data, heap="1g", pagecache="256m", plugins=False, timeout=180)
    try:
        yield handle
    finally:
        launcher.stop_server(data)  # by its pid file: the process now running is the restarted one


@pytest.fixture(scope="module")
def bulk_loaded(bulk_server, book, tmp_path_factory):
    from ringscope.graph.neo4j_store import Neo4jStore
    from ringscope.ingest.pipeline import ingest_folder

    tmp = tmp_path_factory.mktemp("bulk-out")
    store = Neo4jStore(bulk_server.uri, auth=bulk_server.auth())
    summary = ingest_folder(book, store, rejects_path=tmp / "rejects.csv", bulk=True)
    yield store, summary, tmp / "rejects.csv"
    store.close()


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(list(frame.columns), kind="stable", na_position="first").reset_index(drop=True)


def _findings(store):
    from ringscope.detectors.runner import run_detectors

    run = run_detectors(store)
    assert not run.errors
    return sorted((f.detector, f.kind, tuple(sorted(f.members)), round(f.score, 9)) for f in run.findings)


def _stats(uri: str, password_file) -> list[str]:
    from ringscope.app.cli import cli

    result = CliRunner().invoke(
        cli, ["stats", "--neo4j", uri], env={"RINGSCOPE_NEO4J_PASSWORD_FILE": str(password_file)}
    )
    assert result.exit_code == 0, result.output
    return result.output.splitlines()[1:]  # the first line names the store


@pytest.mark.neo4j
@pytest.mark.slow
def test_bulk_load_equals_merge_ingest(bulk_loaded, bulk_server, book, neo4j_driver, neo4j_uri, neo4j_server, tmp_path):
    from ringscope.graph.neo4j_store import Neo4jStore
    from ringscope.ingest.pipeline import ingest_folder

    bulk, summary, bulk_rejects = bulk_loaded
    merge = Neo4jStore(neo4j_uri)
    try:
        merged = ingest_folder(book, merge, rejects_path=tmp_path / "rejects.csv")
        assert summary.exit_code == merged.exit_code == 0
        assert summary.bulk is not None and merged.bulk is None
        assert summary.bulk.nodes == summary.counts.total_nodes > 10_000
        assert summary.bulk.relationships == summary.counts.total_relationships
        assert summary.counts == merged.counts == bulk.counts() == merge.counts()
        if neo4j_server is not None:  # `ringscope stats` prints the same table
            assert _stats(bulk_server.uri, bulk_server.password_file) == _stats(neo4j_uri, neo4j_server.password_file)
        for label in NODE_TYPES:
            pd.testing.assert_frame_equal(_sorted(bulk.read_nodes(label)), _sorted(merge.read_nodes(label)), obj=label)
        for name in REL_TYPES:
            pd.testing.assert_frame_equal(
                _sorted(bulk.read_relationships(name)), _sorted(merge.read_relationships(name)), obj=name
            )
        assert bulk_rejects.read_bytes() == (tmp_path / "rejects.csv").read_bytes()
        constraints = "SHOW CONSTRAINTS YIELD name, labelsOrTypes, properties, type RETURN * ORDER BY name"
        assert [r.data() for r in bulk.driver.execute_query(constraints).records] == [
            r.data() for r in merge.driver.execute_query(constraints).records
        ]
        # one write each: the same revision counter (tokens are random)
        assert bulk.revision().split(".")[0] == merge.revision().split(".")[0] == "1"
        assert _findings(bulk) == _findings(merge)
    finally:
        merge.close()


@pytest.mark.neo4j
@pytest.mark.slow
def test_second_bulk_load_is_refused(bulk_loaded, bulk_server, book, tmp_path):
    from ringscope.app.cli import cli

    bulk, summary, _ = bulk_loaded
    before = bulk.counts()
    result = CliRunner().invoke(
        cli,
        ["ingest", str(book), "--bulk", "--neo4j", bulk_server.uri, "--rejects", str(tmp_path / "r.csv"), "--quiet"],
        env={"RINGSCOPE_NEO4J_PASSWORD_FILE": str(bulk_server.password_file)},
    )
    assert result.exit_code == 1
    assert "--bulk is for a first load into an empty database" in result.output
    assert f"holds {before.total_nodes + 2:,} nodes" in result.output  # + the lock and revision nodes
    assert not (tmp_path / "r.csv").exists()  # refused before reading a file
    assert bulk.counts() == before
    # the launcher never imports under a running server
    with pytest.raises(RuntimeError, match="stop it before an offline import"):
        _launcher().import_database(bulk_server.data_dir, [])
