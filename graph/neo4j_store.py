"""The Neo4j store: the same graph contract over Bolt.

All Cypher lives in this module as constants built once from the model's own
labels and types (never from input); every value travels as a ``$parameter``.
Writes are ``UNWIND $rows ... MERGE`` in batches, after the uniqueness
constraints exist, so a MERGE is an index lookup.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, Iterator

import numpy as np
import pandas as pd

from graph.model import NODE_TYPES, REL_TYPES
from graph.store import GraphBatch, GraphCounts, Progress

__all__ = ["Neo4jStore", "DEFAULT_BATCH_SIZE"]

DEFAULT_BATCH_SIZE = 5_000

CREATE_KEY_CONSTRAINT = {
    label: f"CREATE CONSTRAINT {label.lower()}_key IF NOT EXISTS FOR (n:{label}) REQUIRE n.key IS UNIQUE"
    for label in NODE_TYPES
}

MERGE_NODES = {
    label: f"UNWIND $rows AS row MERGE (n:{label} {{key: row.key}}) SET n += row.props" for label in NODE_TYPES
}


def _merge_rel_query(name: str) -> str:
    rt = REL_TYPES[name]
    identity = ", ".join(f"{p}: row.{p}" for p in rt.identity)
    pattern = f"[r:{rt.type} {{{identity}}}]" if identity else f"[r:{rt.type}]"
    # MERGE on the end nodes too: a relationship may point at a node written
    # by an earlier ingest, and both stores must agree on counts either way.
    return (
        f"UNWIND $rows AS row "
        f"MERGE (a:{rt.source} {{key: row.src}}) "
        f"MERGE (b:{rt.target} {{key: row.dst}}) "
        f"MERGE (a)-{pattern}->(b) SET r += row.props"
    )


MERGE_RELS = {name: _merge_rel_query(name) for name in REL_TYPES}

COUNT_NODES = {label: f"MATCH (n:{label}) RETURN count(n) AS c" for label in NODE_TYPES}
COUNT_RELS = {rt.type: f"MATCH ()-[r:{rt.type}]->() RETURN count(r) AS c" for rt in REL_TYPES.values()}

CLEAR_ALL = "MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS"

NODE_PROPERTIES = {
    label: f"UNWIND $keys AS k MATCH (n:{label} {{key: k}}) RETURN n.key AS key, properties(n) AS props"
    for label in NODE_TYPES
}


class Neo4jStore:
    """Graph store on a Neo4j server (5.26 LTS), reached over Bolt.

    Parameters
    ----------
    uri : str
        ``bolt://host:port`` or ``neo4j://...``.
    auth : tuple or None
        ``(user, password)``; ``None`` for a server with auth off (the local
        launcher in ``tools/``). ``RINGSCOPE_NEO4J_USER`` / ``..._PASSWORD``
        are read when not given.
    database : str
        Database name; Community has one, ``neo4j``.
    batch_size : int
        Rows per ``UNWIND`` transaction.
    """

    kind = "neo4j"

    def __init__(
        self,
        uri: str,
        auth: tuple[str, str] | None = None,
        database: str = "neo4j",
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        import os

        from neo4j import GraphDatabase

        if auth is None and os.environ.get("RINGSCOPE_NEO4J_USER"):
            auth = (os.environ["RINGSCOPE_NEO4J_USER"], os.environ.get("RINGSCOPE_NEO4J_PASSWORD", ""))
        self.location = uri
        self.database = database
        self.batch_size = batch_size
        self._driver = GraphDatabase.driver(uri, auth=auth)
        self._schema_ready = False

    @property
    def driver(self):
        return self._driver

    def verify(self) -> None:
        """Fail fast with the driver's message if the server is unreachable."""
        self._driver.verify_connectivity()

    def ensure_schema(self) -> None:
        if self._schema_ready:
            return
        for query in CREATE_KEY_CONSTRAINT.values():
            self._driver.execute_query(query, database_=self.database)
        self._driver.execute_query("CALL db.awaitIndexes(300)", database_=self.database)
        self._schema_ready = True

    def write(self, batch: GraphBatch, progress: Progress | None = None) -> None:
        self.ensure_schema()
        total = batch.size()
        done = 0
        for label, frame in batch.nodes.items():
            for rows in _node_rows(frame, self.batch_size):
                self._run_write(MERGE_NODES[label], rows)
                done += len(rows)
                if progress:
                    progress(f"write {label}", done, total)
        for name, frame in batch.relationships.items():
            identity = REL_TYPES[name].identity
            for rows in _rel_rows(frame, identity, self.batch_size):
                self._run_write(MERGE_RELS[name], rows)
                done += len(rows)
                if progress:
                    progress(f"write {name}", done, total)

    def _run_write(self, query: str, rows: list[dict[str, Any]]) -> None:
        # execute_query retries transient errors (deadlocks between batches).
        self._driver.execute_query(query, rows=rows, database_=self.database)

    def counts(self) -> GraphCounts:
        nodes = {label: self._count(q) for label, q in COUNT_NODES.items()}
        rels = {rtype: self._count(q) for rtype, q in COUNT_RELS.items()}
        return GraphCounts(nodes=nodes, relationships=rels)

    def _count(self, query: str) -> int:
        from neo4j import RoutingControl

        records, _, _ = self._driver.execute_query(query, database_=self.database, routing_=RoutingControl.READ)
        return int(records[0]["c"])

    def node_properties(self, label: str, keys: list[str], properties: list[str]) -> pd.DataFrame:
        from neo4j import RoutingControl

        records, _, _ = self._driver.execute_query(
            NODE_PROPERTIES[label], keys=list(keys), database_=self.database, routing_=RoutingControl.READ
        )
        rows = [{"key": r["key"], **{p: r["props"].get(p) for p in properties}} for r in records]
        return pd.DataFrame(rows, columns=["key", *properties])

    def clear(self) -> None:
        """Delete every node and relationship (Community has one database)."""
        # CALL ... IN TRANSACTIONS needs an implicit (auto-commit) transaction
        with self._driver.session(database=self.database) as session:
            session.run(CLEAR_ALL).consume()

    def close(self) -> None:
        self._driver.close()


# -- conversion of frames to parameter rows -----------------------------------


def _py(value: Any) -> Any:
    """A plain Python value the driver can send, or None for a missing one."""
    if value is None:
        return None
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, (np.floating,)):
        return None if np.isnan(value) else float(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, pd.Timestamp):
        return None if pd.isna(value) else value.to_pydatetime()
    if value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, (dt.datetime, dt.date, str, int, bool)):
        return value
    return value


def _props_rows(frame: pd.DataFrame, skip: set[str]) -> list[dict[str, Any]]:
    columns = [c for c in frame.columns if c not in skip]
    values = [frame[c].astype(object).to_numpy() for c in columns]
    out = []
    for i in range(len(frame)):
        props = {}
        for c, col in zip(columns, values):
            v = _py(col[i])
            if v is not None:
                props[c] = v
        out.append(props)
    return out


def _chunks(frame: pd.DataFrame, size: int) -> Iterator[pd.DataFrame]:
    for start in range(0, len(frame), size):
        yield frame.iloc[start : start + size]


def _node_rows(frame: pd.DataFrame, size: int) -> Iterator[list[dict[str, Any]]]:
    for chunk in _chunks(frame, size):
        props = _props_rows(chunk, {"key"})
        keys = chunk["key"].astype(object).to_numpy()
        yield [{"key": str(k), "props": p} for k, p in zip(keys, props)]


def _rel_rows(frame: pd.DataFrame, identity: tuple[str, ...], size: int) -> Iterator[list[dict[str, Any]]]:
    for chunk in _chunks(frame, size):
        props = _props_rows(chunk, {"src", "dst", *identity})
        src = chunk["src"].astype(object).to_numpy()
        dst = chunk["dst"].astype(object).to_numpy()
        ident = {p: chunk[p].astype(object).to_numpy() for p in identity}
        rows = []
        for i in range(len(chunk)):
            row = {"src": str(src[i]), "dst": str(dst[i]), "props": props[i]}
            for p in identity:
                row[p] = _py(ident[p][i])
            rows.append(row)
        yield rows
