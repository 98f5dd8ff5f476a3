"""The Neo4j store: the same graph contract over Bolt.

All Cypher lives in :mod:`ringscope.graph.neo4j_cypher`, built from the
model's own labels, types and property names (never from input); every value
travels as a ``$parameter``; this module runs it.
Writes are ``UNWIND $rows ... MERGE`` in batches, after the uniqueness
constraints exist, so a MERGE is an index lookup.

One writer at a time: the write lock is a ``(:RingscopeLock {key: 'write'})``
node taken in a write transaction and held with a lease that a background
thread renews (a holder that dies stops renewing; the lease runs out).

Detector output is written as a *run*: every Finding, INVOLVES and
SIMILAR_TO written by one call carries the call's ``run_id``, and the
``(:RingscopeRun {key: 'derived'})`` marker lists the committed runs. Readers
going through this store see only committed runs, so a ``detect`` killed
midway leaves the old findings visible (never a finding without its edges);
``replace_derived`` commits the new run, then deletes every older one, and
what a killed run left is deleted by the next. Ingest batches are many
transactions too; relationships are written after their end nodes (MATCH),
so no reader ever sees an edge to a missing node, but a reader during an
ingest sees part of the batch.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

import numpy as np
import pandas as pd

from ringscope.graph.locking import LeaseKeeper, LockHolder, LockLost, OnWait, WriteLock
from ringscope.graph.model import DERIVED_LABELS, DERIVED_RELS, NODE_TYPES, REL_TYPES, TEMPORAL_PROPERTIES
from ringscope.graph.neo4j_cypher import (
    ANY_DATA,
    AWAIT_INDEXES,
    CLEAR_ALL,
    COMMIT_RUN,
    COUNT_NODES,
    COUNT_RELS,
    CREATE_KEY_CONSTRAINT,
    DROP_LOCK,
    DROP_OTHER_RUNS,
    READ_PART_ROWS,
    READ_REVISION,
    READ_RUNS,
    RENEW_LOCK,
    REVISION_BEGIN,
    REVISION_END,
    SCHEMA_EXTRA,
    SERVER_HOME,
    STORE_ID,
    TAKE_LOCK,
    detach_query,
    merge_nodes_query,
    merge_rels_query,
    node_properties_query,
    read_nodes_query,
    read_relationships_query,
    read_size_query,
    relationship_properties_query,
)
from ringscope.graph.store import (
    WRITE_POLICIES,
    Detach,
    GraphBatch,
    GraphCounts,
    Progress,
    redact_uri,
    split_credentials,
)

__all__ = [
    "Neo4jStore",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_LOCK_LEASE",
    "merge_nodes_query",
    "merge_rels_query",
    "node_properties_query",
]

DEFAULT_BATCH_SIZE = 20_000
#: seconds a write lock outlives its holder's last renewal
DEFAULT_LOCK_LEASE = 60.0
_LOOKUP_BATCH = 50_000


class _Lease(WriteLock):
    """The write lock as a lease on a ``RingscopeLock`` node (see module doc)."""

    def __init__(self, store: Neo4jStore, lease: float) -> None:
        super().__init__(store.location)
        self._store = store
        self.lease = float(lease)
        self._held: dict[int, tuple[str, LeaseKeeper]] = {}

    def _query(self, query: str, **params):
        self._store.ensure_lock_schema()
        records, _, _ = self._store.driver.execute_query(query, parameters_=params, database_=self._store.database)
        return records

    def _try_acquire(self, me: LockHolder):
        token = uuid.uuid4().hex
        record = self._take(token, me)
        if not record["free"]:
            if record["pid"] is None:
                return True
            return LockHolder(
                int(record["pid"]), str(record["command"]), str(record["since"]), str(record["host"] or "")
            )

        self._held[threading.get_ident()] = (token, self._keeper(token))
        return None

    def _take(self, token: str, holder: LockHolder):
        """Take the write lock node for ``holder`` under ``token`` (or learn who holds it)."""
        return self._query(
            TAKE_LOCK,
            key="write",
            token=token,
            pid=holder.pid,
            command=holder.command,
            since=holder.since,
            host=holder.host,
            lease=int(self.lease * 1000),
        )[0]

    def _keeper(self, token: str) -> LeaseKeeper:
        lease_ms = int(self.lease * 1000)

        def renew() -> bool:
            return self._query(RENEW_LOCK, key="write", token=token, lease=lease_ms)[0]["n"] == 1

        return LeaseKeeper(renew, max(0.2, self.lease / 3))

    @contextlib.contextmanager
    def suspended(self, holder: LockHolder) -> Iterator[None]:
        """While the server is down (an offline import replaces the database,
        lock node included): stop renewing; afterwards write the lock node
        back with the same token and renew again. Nobody can write while the
        server is down, so the lock is never free in between."""
        tid = threading.get_ident()
        token, keeper = self._held[tid]
        keeper.stop()
        try:
            yield
        finally:
            record = self._take(token, holder)
            keeper = self._keeper(token)
            if not record["free"]:  # someone took it in the moment the server was up: never write on
                keeper.lost = True
            self._held[tid] = (token, keeper)

    def _release(self) -> None:
        token, keeper = self._held.pop(threading.get_ident(), (None, None))
        if token is None:
            return
        keeper.stop()
        self._query(DROP_LOCK, key="write", token=token)

    def check(self) -> None:
        """Raise :class:`LockLost` if this thread's lease ran out."""
        held = self._held.get(threading.get_ident())
        if held is not None and held[1].lost:
            raise LockLost(
                f"The write lock on {self.location} was lost (its lease of {self.lease:.0f} s ran out); "
                "the job stopped writing."
            )


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
        (see :mod:`ringscope.graph.neo4j_auth`), else none (a server with auth off).
    database : str
        Database name; Community has one, ``neo4j``.
    batch_size : int
        Rows per ``UNWIND`` transaction.
    workers : int
        Batches in flight at once (sessions are not shared between threads).
    lock_lease : float
        Seconds the write lock outlives its holder's last renewal (renewed
        every third of it while held).
    """

    kind = "neo4j"

    def __init__(
        self,
        uri: str,
        auth: tuple[str, str] | None = None,
        database: str = "neo4j",
        batch_size: int = DEFAULT_BATCH_SIZE,
        workers: int = 3,
        lock_lease: float = DEFAULT_LOCK_LEASE,
    ) -> None:
        from neo4j import GraphDatabase

        bare, in_uri = split_credentials(uri)
        auth = auth or in_uri
        if auth is None:
            from ringscope.graph.neo4j_auth import auth_from_env

            auth = auth_from_env()
        self.location = redact_uri(uri)  # shown in summaries and messages: never the password
        uri = bare
        self.database = database
        self.batch_size = batch_size
        self.workers = workers
        # Counting a type nobody has written yet is not worth a warning.
        self._connect = lambda: GraphDatabase.driver(uri, auth=auth, notifications_min_severity="OFF")
        self._driver = self._connect()
        self._schema_ready = False
        self._lock_schema_ready = False
        self._lease = _Lease(self, lock_lease)
        self._revision_state = threading.local()
        self._changed = False

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
            records, _, _ = self._driver.execute_query(STORE_ID, database_=self.database, routing_=RoutingControl.READ)
            self._store_id = str(records[0]["id"])
        return self._store_id

    def ensure_schema(self) -> None:
        if self._schema_ready:
            return
        for query in CREATE_KEY_CONSTRAINT.values():
            self._driver.execute_query(query, database_=self.database)
        self.ensure_lock_schema()
        self._driver.execute_query(AWAIT_INDEXES, database_=self.database)
        self._schema_ready = True

    # -- a first load with the offline importer (``ingest --bulk``) ---------
    def require_empty(self) -> None:
        """Raise ``BulkRefused`` unless the database holds no data (the lock
        and revision nodes aside): a bulk load replaces the whole database."""
        from neo4j import RoutingControl

        from ringscope.graph.neo4j_bulk import BulkRefused

        records, _, _ = self._driver.execute_query(ANY_DATA, database_=self.database, routing_=RoutingControl.READ)
        if records[0]["found"]:
            raise BulkRefused(
                f"--bulk is for a first load into an empty database, and the one at {self.location} holds "
                f"{int(records[0]['total']):,} nodes; load further batches without --bulk (MERGE), "
                "or empty it first"
            )

    def server_home(self) -> str | None:
        """The server's home folder (``server.directories.neo4j_home``; the
        launcher's data folder), or None when the server does not say (not
        an admin, not a Neo4j 5)."""
        from neo4j.exceptions import Neo4jError

        try:
            records, _, _ = self._driver.execute_query(SERVER_HOME, database_="system")
        except Neo4jError:
            return None
        return str(records[0]["value"]) if records else None

    def bulk_load(self, batch: GraphBatch, progress: Progress | None = None):
        """Load ``batch`` into this EMPTY database with Neo4j's offline
        importer (see :mod:`ringscope.graph.neo4j_bulk`); under the write lock.
        Returns a :class:`ringscope.graph.neo4j_bulk.BulkReport`."""
        from ringscope.graph.neo4j_bulk import bulk_load

        with self.lock():
            return bulk_load(self, batch, progress)

    @contextlib.contextmanager
    def offline(self) -> Iterator[None]:
        """Around stopping the server, replacing its database and starting it
        again: the lock lease pauses, the driver reconnects and the schema
        is created anew afterwards."""
        holder = self._lease._local.holder
        with self._lease.suspended(holder):
            try:
                yield
            finally:
                self._driver.close()
                self._driver = self._connect()
                self._schema_ready = self._lock_schema_ready = False
                if hasattr(self, "_store_id"):
                    del self._store_id  # a new database has a new id

    def after_bulk(self) -> None:
        """After a bulk load: the constraints and indexes a MERGE ingest
        creates, and the revision moved on as one write moves it."""
        with self.lock(), self._revising():
            self.ensure_schema()
            self._changed = True

    def ensure_lock_schema(self) -> None:
        """Constraints of the lock and run-marker nodes (before the first lock)."""
        if self._lock_schema_ready:
            return
        for query in SCHEMA_EXTRA:
            self._driver.execute_query(query, database_=self.database)
        self._lock_schema_ready = True

    # -- the write lock --------------------------------------------------
    @contextlib.contextmanager
    def lock(
        self, job: str | None = None, timeout: float | None = None, on_wait: OnWait | None = None
    ) -> Iterator[LockHolder]:
        """Hold the store's write lock (a lease on a lock node) for a whole job."""
        with self._lease.hold(job, timeout, on_wait) as holder:
            yield holder

    def reading(self) -> contextlib.AbstractContextManager:
        """Reads see committed transactions and committed detector runs only;
        nothing more to hold."""
        return contextlib.nullcontext()

    # -- writing -------------------------------------------------------
    def write(
        self,
        batch: GraphBatch,
        progress: Progress | None = None,
        *,
        policy: str = "merge",
        detach: Detach | None = None,
    ) -> None:
        """Merge ``batch`` under the write lock (``policy``, ``detach``: see
        :meth:`ringscope.graph.store.GraphStore.write`). Findings in the batch are added
        as a run of their own, visible once all of it is written."""
        if policy not in WRITE_POLICIES:
            raise ValueError(f"The 'policy' parameter must be one of {WRITE_POLICIES}. Got {policy!r} instead.")
        with self.lock(), self._revising():
            self.ensure_schema()
            for name, (end, keys) in (detach or {}).items():
                query = detach_query(name, end)
                for start in range(0, len(keys), _LOOKUP_BATCH):
                    self._run_write(query, {"keys": list(keys[start : start + _LOOKUP_BATCH])})
            derived = any(label in DERIVED_LABELS for label in batch.nodes) or any(
                name in DERIVED_RELS for name in batch.relationships
            )
            run = self._begin_run() if derived else {}
            self._write(batch, progress, policy, run)
            if derived:
                self._commit_run(run["run"], "add")

    # -- the revision ----------------------------------------------------
    def revision(self) -> str:
        """The store's revision: a new value after every write through this
        store that changed something (ingest, ``--update``, findings, scores,
        cases, ``clear``), the same while nothing did; while a write is under
        way (or after a writer died midway) a value no saved state carries.
        A write that only sets properties to the values they hold keeps it."""
        from neo4j import RoutingControl

        self.ensure_lock_schema()
        records, _, _ = self._driver.execute_query(READ_REVISION, database_=self.database, routing_=RoutingControl.READ)
        record = records[0] if records else None
        if record is None or record["counter"] is None:
            return "0"
        if record["writing"]:
            return f"writing.{uuid.uuid4().hex}"
        return f"{int(record['counter'])}.{record['token']}"

    @contextlib.contextmanager
    def _revising(self) -> Iterator[None]:
        """Around one write under the lock (see ``REVISION_BEGIN``); nested
        writes count as the outer one."""
        if getattr(self._revision_state, "depth", 0):
            self._revision_state.depth += 1
            try:
                yield
            finally:
                self._revision_state.depth -= 1
            return
        self.ensure_lock_schema()
        self._driver.execute_query(REVISION_BEGIN, token=uuid.uuid4().hex, database_=self.database)
        self._revision_state.depth, self._changed = 1, False
        try:
            yield
        finally:
            self._revision_state.depth = 0
            # also after an error: part of the write may have landed
            changed = bool(self._changed) or sys.exc_info()[0] is not None
            self._driver.execute_query(REVISION_END, token=uuid.uuid4().hex, changed=changed, database_=self.database)

    def _begin_run(self) -> dict[str, Any]:
        return {"run": uuid.uuid4().hex, "committed": self._committed_runs()}

    def _commit_run(self, run: str, how: str) -> None:
        self._lease.check()  # never commit a run after losing the lock
        self._driver.execute_query(COMMIT_RUN[how], run=run, database_=self.database)

    def _committed_runs(self) -> list[str]:
        from neo4j import RoutingControl

        records, _, _ = self._driver.execute_query(READ_RUNS, database_=self.database, routing_=RoutingControl.READ)
        committed = records[0]["committed"] if records else None
        return list(committed) if committed else ["legacy"]

    def _write(self, batch: GraphBatch, progress: Progress | None, policy: str, run: dict[str, Any]) -> None:
        self._lease.check()
        # Collapse repeated keys first (same rule as the embedded store): a
        # phone named by a thousand contacts is merged once, not a thousand times.
        steps = [
            (merge_nodes_query(label, tuple(frame.columns), policy), _dedupe(frame, ["key"], policy), label)
            for label, frame in batch.nodes.items()
        ] + [
            (
                merge_rels_query(name, tuple(frame.columns), policy),
                _dedupe(frame, ["src", "dst", *REL_TYPES[name].identity], policy),
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
                pool.submit(self._run_write, query, {**columns, **run}, n, name)
                for query, frame, name in steps[:n_nodes]
                for columns, n in _column_batches(frame, self.batch_size)
            ]
            for future in as_completed(futures):
                report(future)
            for query, frame, name in steps[n_nodes:]:
                partitions = _partition(frame, "dst", self.workers)
                futures = [pool.submit(self._write_partition, query, part, name, run) for part in partitions]
                for future in as_completed(futures):
                    report(future)

    def _write_partition(self, query: str, frame: pd.DataFrame, name: str, run: dict[str, Any]) -> tuple[int, str]:
        for columns, _ in _column_batches(frame, self.batch_size):
            self._run_write(query, {**columns, **run})
        return len(frame), name

    def _run_write(self, query: str, columns: dict[str, list[Any]], n: int = 0, name: str = "") -> tuple[int, str]:
        # execute_query retries transient errors (deadlocks between batches).
        records, summary, _ = self._driver.execute_query(query, parameters_=columns, database_=self.database)
        if _changed(summary, records):
            self._changed = True  # read by ``_revising`` (set from the writer threads)
        return n, name

    # -- reading -------------------------------------------------------
    def counts(self) -> GraphCounts:
        committed = self._committed_runs()
        nodes = {label: self._count(q, committed) for label, q in COUNT_NODES.items()}
        rels = {rtype: self._count(q, committed) for rtype, q in COUNT_RELS.items()}
        return GraphCounts(nodes=nodes, relationships=rels)

    def _count(self, query: str, committed: list[str]) -> int:
        from neo4j import RoutingControl

        records, _, _ = self._driver.execute_query(
            query, committed=committed, database_=self.database, routing_=RoutingControl.READ
        )
        return int(records[0]["c"])

    def node_properties(self, label: str, keys: list[str], properties: list[str]) -> pd.DataFrame:
        # only the properties asked for, temporal ones as numbers: one stored
        # date the driver cannot build (year 0) must not break the read
        known = tuple(p for p in dict.fromkeys(properties) if p in NODE_TYPES[label].properties)
        records = self._lookup(node_properties_query(label, known), keys, label in DERIVED_LABELS)
        frame = _records_frame(records, ["key", *known])
        for prop in properties:
            if prop not in frame.columns:
                frame[prop] = None
        return frame[["key", *properties]]

    def relationship_properties(
        self, name: str, keys: list[str], properties: list[str], by: str = "src"
    ) -> pd.DataFrame:
        """Stored relationships ``name`` whose ``by`` end is among ``keys``."""
        rt = REL_TYPES[name]
        wanted = list(dict.fromkeys([*rt.identity, *properties]))
        query = relationship_properties_query(name, tuple(wanted), by)
        records = self._lookup(query, keys, name in DERIVED_RELS)
        rows = [{"src": r["src"], "dst": r["dst"], **{p: r["props"].get(p) for p in wanted}} for r in records]
        frame = pd.DataFrame(rows, columns=["src", "dst", *wanted])
        for col in wanted:
            if col in TEMPORAL_PROPERTIES:
                frame[col] = [v.to_native() if hasattr(v, "to_native") else v for v in frame[col]]
        return frame

    def _lookup(self, query: str, keys: list[str], derived: bool) -> list:
        from neo4j import RoutingControl

        keys = list(keys)
        extra = {"committed": self._committed_runs()} if derived else {}
        out = []
        for start in range(0, len(keys), _LOOKUP_BATCH):
            records, _, _ = self._driver.execute_query(
                query,
                parameters_={"keys": keys[start : start + _LOOKUP_BATCH], **extra},
                database_=self.database,
                routing_=RoutingControl.READ,
            )
            out.extend(records)
        return out

    def read_nodes(self, label: str, columns: list[str] | None = None) -> pd.DataFrame:
        """Whole node table for ``label``: ``key`` plus model properties."""
        props = _checked(columns, NODE_TYPES[label].properties, label)
        query = read_nodes_query(label, tuple(props))
        return self._read_frame(query, ["key", *props], label in DERIVED_LABELS, label)

    def read_relationships(self, name: str, columns: list[str] | None = None) -> pd.DataFrame:
        """Whole relationship table ``name``: ``src``, ``dst`` plus properties."""
        rt = REL_TYPES[name]
        props = _checked(columns, (*rt.identity, *rt.properties), name)
        query = read_relationships_query(name, tuple(props))
        return self._read_frame(query, ["src", "dst", *props], name in DERIVED_RELS, name)

    def _read_frame(self, query: str, columns: list[str], derived: bool = False, name: str = "") -> pd.DataFrame:
        """A whole table in parts (``id % parts``, ``READ_PART_ROWS`` rows
        each), each one record of row lists, read on ``workers`` sessions at
        once, rows in id order (see ``neo4j_cypher.read_nodes_query``)."""
        from neo4j import RoutingControl

        params = {"committed": self._committed_runs()} if derived else {}
        records, _, _ = self._driver.execute_query(
            read_size_query(name), database_=self.database, routing_=RoutingControl.READ
        )
        size = int(records[0]["c"]) if records else 0
        # parts bound the server's list; splitting a smaller table over
        # sessions measured no faster on 2 cores (the server is the bottleneck)
        parts = max(1, -(-size // READ_PART_ROWS))

        def part(i: int) -> list:
            records, _, _ = self._driver.execute_query(
                query,
                parameters_={**params, "parts": parts, "part": i},
                database_=self.database,
                routing_=RoutingControl.READ,
            )
            return records[0]["rows"] if records else []

        if parts == 1:
            rows = part(0)
        else:
            with ThreadPoolExecutor(max_workers=max(1, self.workers), thread_name_prefix="neo4j-read") as pool:
                rows = [row for chunk in pool.map(part, range(parts)) for row in chunk]
        if parts > 1 and rows:
            # back in id order, as one scan would give them
            order = np.argsort(np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows)), kind="stable")
            rows = [rows[i] for i in order]
        return _records_frame([row[1:] for row in rows], columns)

    # -- whole-graph algorithms in the server (GDS) ----------------------
    def connected_components(self, glue: dict[str, list[str]], entities: pd.Series | None = None) -> pd.Series:
        """Ring components by GDS WCC in the server: see
        :func:`ringscope.graph.neo4j_gds.connected_components`."""
        from ringscope.graph import neo4j_gds

        return neo4j_gds.connected_components(self._driver, self.database, glue, entities)

    def strong_components(self, relationships: tuple[str, ...] | None = None) -> pd.Series:
        """Guarantee-circle SCCs (size >= 2) by GDS SCC in the server: see
        :func:`ringscope.graph.neo4j_gds.strong_components`."""
        from ringscope.graph import neo4j_gds

        rels = neo4j_gds.GUARANTEE_RELS if relationships is None else relationships
        return neo4j_gds.strong_components(self._driver, self.database, rels)

    def communities(self, relationships: tuple[str, ...] | None = None, **louvain: Any) -> pd.DataFrame:
        """Louvain communities over shared identifiers by GDS in the server:
        see :func:`ringscope.graph.neo4j_gds.communities`."""
        from ringscope.graph import neo4j_gds

        rels = neo4j_gds.IDENTIFIER_RELS if relationships is None else relationships
        return neo4j_gds.communities(self._driver, self.database, rels, **louvain)

    def clear(self) -> None:
        """Delete every node and relationship (Community has one database)."""
        with self.lock(), self._revising():
            self._changed = True
            # CALL ... IN TRANSACTIONS needs an implicit (auto-commit) transaction
            with self._driver.session(database=self.database) as session:
                session.run(CLEAR_ALL).consume()

    def replace_derived(self, batch: GraphBatch, progress: Progress | None = None) -> None:
        """Write ``batch`` as a new run, commit it (readers switch from the old
        findings to the new in one transaction), then delete every other run."""
        with self.lock(), self._revising():
            self._changed = True  # a replacement always moves the revision on
            self.ensure_schema()
            run = self._begin_run()
            self._write(batch, progress, "merge", run)
            _fault_point("run-written")
            self._commit_run(run["run"], "replace")
            with self._driver.session(database=self.database) as session:
                for query in DROP_OTHER_RUNS:
                    session.run(query, run=run["run"]).consume()

    def close(self) -> None:
        self._driver.close()


def _changed(summary, records: list | None = None) -> bool:
    """Did a write transaction change anything? Nodes, relationships or
    labels created or deleted always count. Neo4j also counts a ``SET`` to
    the value a property holds, so a merge query reports the rows whose
    values really differ (``differing``, see ``merge_nodes_query``) and only
    other writes fall back to the properties-set counter."""
    counters = getattr(summary, "counters", None)
    if counters is None:
        return True
    structural = (
        counters.nodes_created,
        counters.nodes_deleted,
        counters.relationships_created,
        counters.relationships_deleted,
        counters.labels_added,
        counters.labels_removed,
    )
    if any(structural):
        return True
    if records and "differing" in records[0].keys():
        return bool(records[0]["differing"])
    return bool(counters.contains_updates)


def _records_frame(records: list, columns: list[str]) -> pd.DataFrame:
    """Records (or row lists) read with ``neo4j_cypher._read_value`` as a frame of the embedded store's types."""
    frame = pd.DataFrame([r if isinstance(r, list) else r.values() for r in records], columns=columns)
    for col in columns:
        if col in TEMPORAL_PROPERTIES:
            frame[col] = _epoch_millis_to_pandas(frame[col], TEMPORAL_PROPERTIES[col])
    return frame


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


def _fault_point(point: str) -> None:
    from ringscope.graph.embedded import _fault_point as fault

    fault(point)


# -- conversion of frames to parameter rows -----------------------------------


def _dedupe(frame: pd.DataFrame, identity: list[str], policy: str = "merge") -> pd.DataFrame:
    import pyarrow as pa

    from ringscope.graph.embedded import merge_tables

    table = pa.Table.from_pandas(frame, preserve_index=False)
    merged = merge_tables(None, table, identity, policy)
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
    values as epoch milliseconds (see ``neo4j_cypher._value``)."""
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
