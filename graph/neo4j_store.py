"""The Neo4j store: the same graph contract over Bolt.

All Cypher lives in this module, built from the model's own labels, types and
property names (never from input); every value travels as a ``$parameter``.
Writes are ``UNWIND $rows ... MERGE`` in batches, after the uniqueness
constraints exist, so a MERGE is an index lookup.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, as_completed
from functools import lru_cache
from typing import Any, Iterator

import numpy as np
import pandas as pd

from graph.model import DERIVED_LABELS, DERIVED_RELS, NODE_TYPES, REL_TYPES, TEMPORAL_PROPERTIES
from graph.store import GraphBatch, GraphCounts, Progress, redact_uri, split_credentials

__all__ = ["Neo4jStore", "DEFAULT_BATCH_SIZE", "merge_nodes_query", "merge_rels_query", "node_properties_query"]

DEFAULT_BATCH_SIZE = 20_000

CREATE_KEY_CONSTRAINT = {
    label: f"CREATE CONSTRAINT {label.lower()}_key IF NOT EXISTS FOR (n:{label}) REQUIRE n.key IS UNIQUE"
    for label in NODE_TYPES
}


def _value(prop: str) -> str:
    """Cypher for the i-th value of column parameter ``prop`` (typed if temporal)."""
    kind = TEMPORAL_PROPERTIES.get(prop)
    value = f"${prop}[i]"
    if kind is None:
        return value
    # sent as epoch milliseconds: packing datetime objects is ~10x slower
    typed = f"datetime({{epochMillis: {value}}})"
    if kind == "date":
        typed = f"date({typed})"
    return f"CASE WHEN {value} IS NULL THEN null ELSE {typed} END"


def _sets(var: str, props: list[str]) -> str:
    # coalesce: a missing value leaves the stored one alone (embedded store rule)
    return ", ".join(f"{var}.{p} = coalesce({_value(p)}, {var}.{p})" for p in props)


@lru_cache(maxsize=None)
def merge_nodes_query(label: str, columns: tuple[str, ...]) -> str:
    """Batched ``MERGE`` for nodes of ``label`` carrying ``columns``.

    Parameters are columns (one list per property, ``$key`` included),
    which pack several times faster than a list of maps. Label and property
    names come from the model (checked here), values only from parameters.

    Example
    -------
    >>> merge_nodes_query("Phone", ("key", "valid"))
    'UNWIND range(0, size($key) - 1) AS i MERGE (n:Phone {key: $key[i]}) SET n.valid = coalesce($valid[i], n.valid)'
    """
    allowed = set(NODE_TYPES[label].properties)
    props = [c for c in columns if c != "key"]
    if set(props) - allowed:
        raise ValueError(f"Properties {sorted(set(props) - allowed)} are not in the model of {label}")
    query = f"UNWIND range(0, size($key) - 1) AS i MERGE (n:{label} {{key: $key[i]}})"
    if props:
        query += " SET " + _sets("n", props)
    return query


@lru_cache(maxsize=None)
def merge_rels_query(name: str, columns: tuple[str, ...]) -> str:
    """Batched ``MATCH MATCH MERGE`` for relationship ``name`` (column parameters).

    End nodes are matched, not merged: ingest always writes them first (in
    the same batch or an earlier one).

    Example
    -------
    >>> merge_rels_query("Application-HAS_IP-IP", ("src", "dst"))
    'UNWIND range(0, size($src) - 1) AS i MATCH (a:Application {key: $src[i]}) MATCH (b:IP {key: $dst[i]}) MERGE (a)-[r:HAS_IP]->(b)'
    """
    rt = REL_TYPES[name]
    allowed = set(rt.properties)
    props = [c for c in columns if c not in ("src", "dst", *rt.identity)]
    if set(props) - allowed:
        raise ValueError(f"Properties {sorted(set(props) - allowed)} are not in the model of {name}")
    identity = ", ".join(f"{p}: ${p}[i]" for p in rt.identity)
    pattern = f"[r:{rt.type} {{{identity}}}]" if identity else f"[r:{rt.type}]"
    query = (
        f"UNWIND range(0, size($src) - 1) AS i MATCH (a:{rt.source} {{key: $src[i]}}) "
        f"MATCH (b:{rt.target} {{key: $dst[i]}}) MERGE (a)-{pattern}->(b)"
    )
    if props:
        query += " SET " + _sets("r", props)
    return query


STORE_ID = "CALL db.info() YIELD id RETURN id"

COUNT_NODES = {label: f"MATCH (n:{label}) RETURN count(n) AS c" for label in NODE_TYPES}
COUNT_RELS = {rt.type: f"MATCH ()-[r:{rt.type}]->() RETURN count(r) AS c" for rt in REL_TYPES.values()}

CLEAR_ALL = "MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS"

# what ``replace_derived`` removes first: detector output only, from the model
CLEAR_DERIVED = [
    f"MATCH (n:{label}) CALL (n) {{ DETACH DELETE n }} IN TRANSACTIONS OF 10000 ROWS" for label in DERIVED_LABELS
] + [
    f"MATCH ()-[r:{t}]->() CALL (r) {{ DELETE r }} IN TRANSACTIONS OF 10000 ROWS"
    for t in sorted({REL_TYPES[name].type for name in DERIVED_RELS})
]

@lru_cache(maxsize=None)
def node_properties_query(label: str, properties: tuple[str, ...]) -> str:
    """Read ``properties`` (checked against the model) of the nodes of
    ``label`` keyed ``$keys``; temporal ones as epoch milliseconds.

    Example
    -------
    >>> node_properties_query("Phone", ("valid",))
    'UNWIND $keys AS k MATCH (n:Phone {key: k}) RETURN n.key AS key, n.valid AS valid'
    """
    unknown = set(properties) - set(NODE_TYPES[label].properties)
    if unknown:
        raise ValueError(f"Properties {sorted(unknown)} are not in the model of {label}")
    return f"UNWIND $keys AS k MATCH (n:{label} {{key: k}}) RETURN n.key AS key" + "".join(
        f", {_read_value('n', p)} AS {p}" for p in properties)


class Neo4jStore:
    """Graph store on a Neo4j server (5.26 LTS), reached over Bolt.

    Parameters
    ----------
    uri : str
        ``bolt://host:port`` or ``neo4j://...``; ``bolt://user:password@host:port``
        is accepted too (the credentials are taken out of it: the driver and
        every message see the URI without them, ``location`` shows it redacted).
    auth : tuple or None
        ``(user, password)``; when not given: the URI's credentials, else
        ``RINGSCOPE_NEO4J_USER`` / ``..._PASSWORD`` / ``..._PASSWORD_FILE``
        (see :mod:`graph.neo4j_auth`), else none (a server with auth off).
    database : str
        Database name; Community has one, ``neo4j``.
    batch_size : int
        Rows per ``UNWIND`` transaction.
    workers : int
        Batches in flight at once (sessions are not shared between threads).
    """

    kind = "neo4j"

    def __init__(
        self,
        uri: str,
        auth: tuple[str, str] | None = None,
        database: str = "neo4j",
        batch_size: int = DEFAULT_BATCH_SIZE,
        workers: int = 3,
    ) -> None:
        from neo4j import GraphDatabase

        bare, in_uri = split_credentials(uri)
        auth = auth or in_uri
        if auth is None:
            from graph.neo4j_auth import auth_from_env

            auth = auth_from_env()
        self.location = redact_uri(uri)  # shown in summaries and messages: never the password
        uri = bare
        self.database = database
        self.batch_size = batch_size
        self.workers = workers
        # Counting a type nobody has written yet is not worth a warning.
        self._driver = GraphDatabase.driver(uri, auth=auth, notifications_min_severity="OFF")
        self._schema_ready = False

    @property
    def driver(self):
        return self._driver

    def verify(self) -> None:
        """Fail fast with the driver's message if the server is unreachable."""
        self._driver.verify_connectivity()

    def store_id(self) -> str:
        """The database's own id (``db.info()``): fixed when the database was
        created, the same whatever URI or credentials reach it; what models
        of this store are filed under."""
        from neo4j import RoutingControl

        if not hasattr(self, "_store_id"):
            records, _, _ = self._driver.execute_query(STORE_ID, database_=self.database,
                                                       routing_=RoutingControl.READ)
            self._store_id = str(records[0]["id"])
        return self._store_id

    def ensure_schema(self) -> None:
        if self._schema_ready:
            return
        for query in CREATE_KEY_CONSTRAINT.values():
            self._driver.execute_query(query, database_=self.database)
        self._driver.execute_query("CALL db.awaitIndexes(300)", database_=self.database)
        self._schema_ready = True

    def write(self, batch: GraphBatch, progress: Progress | None = None) -> None:
        self.ensure_schema()
        # Collapse repeated keys first (same rule as the embedded store): a
        # phone named by a thousand contacts is merged once, not a thousand times.
        steps = [
            (merge_nodes_query(label, tuple(frame.columns)), _dedupe(frame, ["key"]), label)
            for label, frame in batch.nodes.items()
        ] + [
            (
                merge_rels_query(name, tuple(frame.columns)),
                _dedupe(frame, ["src", "dst", *REL_TYPES[name].identity]),
                name,
            )
            for name, frame in batch.relationships.items()
        ]
        total = sum(len(frame) for _, frame, _ in steps)
        done = 0
        n_nodes = len(batch.nodes)
        # Nodes first (distinct keys never contend, so all batches go out on
        # a few sessions at once), then relationships (which MATCH their end
        # nodes) one type at a time, split by end node so that no two sessions
        # ever lock the same hub (a carrier NAT IP, a big employer).
        def report(future) -> None:
            nonlocal done
            n, name = future.result()
            done += n
            if progress:
                progress(f"write {name}", done, total)

        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="neo4j-write") as pool:
            futures = [
                pool.submit(self._run_write, query, columns, n, name)
                for query, frame, name in steps[:n_nodes]
                for columns, n in _column_batches(frame, self.batch_size)
            ]
            for future in as_completed(futures):
                report(future)
            for query, frame, name in steps[n_nodes:]:
                partitions = _partition(frame, "dst", self.workers)
                futures = [pool.submit(self._write_partition, query, part, name) for part in partitions]
                for future in as_completed(futures):
                    report(future)

    def _write_partition(self, query: str, frame: pd.DataFrame, name: str) -> tuple[int, str]:
        for columns, _ in _column_batches(frame, self.batch_size):
            self._run_write(query, columns)
        return len(frame), name

    def _run_write(self, query: str, columns: dict[str, list[Any]], n: int = 0, name: str = "") -> tuple[int, str]:
        # execute_query retries transient errors (deadlocks between batches).
        self._driver.execute_query(query, parameters_=columns, database_=self.database)
        return n, name

    def counts(self) -> GraphCounts:
        nodes = {label: self._count(q) for label, q in COUNT_NODES.items()}
        rels = {rtype: self._count(q) for rtype, q in COUNT_RELS.items()}
        return GraphCounts(nodes=nodes, relationships=rels)

    def _count(self, query: str) -> int:
        from neo4j import RoutingControl

        records, _, _ = self._driver.execute_query(query, database_=self.database, routing_=RoutingControl.READ)
        return int(records[0]["c"])

    def node_properties(self, label: str, keys: list[str], properties: list[str]) -> pd.DataFrame:
        # only the properties asked for, temporal ones as numbers: one stored
        # date the driver cannot build (year 0) must not break the read
        known = tuple(p for p in dict.fromkeys(properties) if p in NODE_TYPES[label].properties)
        frame = self._read_frame(node_properties_query(label, known), ["key", *known], keys=list(keys))
        for prop in properties:
            if prop not in frame.columns:
                frame[prop] = None
        return frame[["key", *properties]]

    def read_nodes(self, label: str, columns: list[str] | None = None) -> pd.DataFrame:
        """Whole node table for ``label``: ``key`` plus model properties."""
        props = _checked(columns, NODE_TYPES[label].properties, label)
        query = f"MATCH (n:{label}) RETURN n.key AS key" + "".join(f", {_read_value('n', p)} AS {p}" for p in props)
        return self._read_frame(query, ["key", *props])

    def read_relationships(self, name: str, columns: list[str] | None = None) -> pd.DataFrame:
        """Whole relationship table ``name``: ``src``, ``dst`` plus properties."""
        rt = REL_TYPES[name]
        props = _checked(columns, (*rt.identity, *rt.properties), name)
        query = (
            f"MATCH (a:{rt.source})-[r:{rt.type}]->(b:{rt.target}) RETURN a.key AS src, b.key AS dst"
            + "".join(f", {_read_value('r', p)} AS {p}" for p in props)
        )
        return self._read_frame(query, ["src", "dst", *props])

    def _read_frame(self, query: str, columns: list[str], **parameters: Any) -> pd.DataFrame:
        from neo4j import RoutingControl

        records, _, _ = self._driver.execute_query(query, parameters_=parameters, database_=self.database,
                                                   routing_=RoutingControl.READ)
        frame = pd.DataFrame([r.values() for r in records], columns=columns)
        for col in columns:
            if col in TEMPORAL_PROPERTIES:
                frame[col] = _epoch_millis_to_pandas(frame[col], TEMPORAL_PROPERTIES[col])
        return frame

    def clear(self) -> None:
        """Delete every node and relationship (Community has one database)."""
        # CALL ... IN TRANSACTIONS needs an implicit (auto-commit) transaction
        with self._driver.session(database=self.database) as session:
            session.run(CLEAR_ALL).consume()

    def replace_derived(self, batch: GraphBatch, progress: Progress | None = None) -> None:
        """Delete every finding and SIMILAR_TO edge, then write ``batch``."""
        with self._driver.session(database=self.database) as session:
            for query in CLEAR_DERIVED:
                session.run(query).consume()
        self.write(batch, progress)

    def close(self) -> None:
        self._driver.close()


def _read_value(var: str, prop: str) -> str:
    """Cypher returning property ``prop`` of ``var``; temporal values as epoch
    milliseconds.

    The driver cannot build a Python date for every year the server holds
    (0000-12-31 from a "0001-01-01" in Shanghai time breaks the whole record),
    and integers are cheaper to unpack anyway. Dates count from midnight UTC,
    local date-times are Asia/Shanghai time (the data contract's rule); any
    other type reads as null.

    Example
    -------
    >>> _read_value("n", "amount")
    'n.amount'
    """
    if prop not in TEMPORAL_PROPERTIES:
        return f"{var}.{prop}"
    v = f"{var}.{prop}"
    return (
        f"CASE WHEN {v} IS :: ZONED DATETIME THEN {v}.epochMillis "
        f"WHEN {v} IS :: DATE THEN datetime({{date: {v}, timezone: 'UTC'}}).epochMillis "
        f"WHEN {v} IS :: LOCAL DATETIME THEN datetime({{datetime: {v}, timezone: 'Asia/Shanghai'}}).epochMillis END"
    )


def _epoch_millis_to_pandas(values: pd.Series, kind: str) -> pd.Series:
    """Epoch milliseconds (None when missing) as the embedded store's types:
    ``datetime64[us, UTC]`` for date-times, naive ``datetime64[ms]`` for dates.
    Millisecond and microsecond datetimes span far more than any year a
    server holds, so nothing here can overflow."""
    millis = pd.to_numeric(values, errors="coerce").astype("Int64")
    raw = millis.to_numpy(dtype="int64", na_value=np.iinfo(np.int64).min).view("datetime64[ms]")
    if kind == "date":
        return pd.Series(raw, index=values.index, name=values.name)
    return pd.Series(raw.astype("datetime64[us]"), index=values.index, name=values.name).dt.tz_localize("UTC")


# -- conversion of frames to parameter rows -----------------------------------


def _dedupe(frame: pd.DataFrame, identity: list[str]) -> pd.DataFrame:
    import pyarrow as pa

    from graph.embedded import merge_tables

    table = pa.Table.from_pandas(frame, preserve_index=False)
    merged = merge_tables(None, table, identity)
    return frame if merged.num_rows == len(frame) else merged.to_pandas()


def _checked(columns: list[str] | None, allowed: tuple[str, ...], owner: str) -> list[str]:
    """Requested property names, all from the model (None: all of them)."""
    if columns is None:
        return list(allowed)
    wanted = [c for c in columns if c not in ("key", "src", "dst")]
    unknown = set(wanted) - set(allowed)
    if unknown:
        raise KeyError(f"Properties {sorted(unknown)} are not in the model of {owner}")
    return wanted


def _partition(frame: pd.DataFrame, column: str, parts: int) -> list[pd.DataFrame]:
    """Split rows by a hash of ``column`` so equal values land in one part."""
    if parts <= 1 or len(frame) < 2 * DEFAULT_BATCH_SIZE:
        return [frame]
    bucket = pd.util.hash_array(frame[column].astype(object).to_numpy()) % parts
    return [frame[bucket == i] for i in range(parts) if (bucket == i).any()]


def _python_values(series: pd.Series) -> list[Any]:
    """Column values as plain Python objects, None where missing; temporal
    values as epoch milliseconds (see :func:`_value`)."""
    if series.name in TEMPORAL_PROPERTIES and not pd.api.types.is_datetime64_any_dtype(series):
        series = pd.to_datetime(series, errors="coerce")
    present = series.notna().to_numpy()
    if pd.api.types.is_datetime64_any_dtype(series):
        epoch = pd.Timestamp(0, tz=series.dt.tz)
        values = series.dt.as_unit("ms").fillna(epoch).astype("int64").astype(object).to_numpy()
    else:
        values = series.astype(object).to_numpy()
    if not present.all():
        values = values.copy()
        values[~present] = None
    return values.tolist()


def _column_batches(frame: pd.DataFrame, size: int) -> Iterator[tuple[dict[str, list[Any]], int]]:
    for start in range(0, len(frame), size):
        chunk = frame.iloc[start : start + size]
        yield {c: _python_values(chunk[c]) for c in frame.columns}, len(chunk)
