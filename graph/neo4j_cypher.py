"""The Cypher of the Neo4j store (:mod:`ringscope.graph.neo4j_store`), as text.

Every query is a module-level constant or is built by a cached function from
the model's own labels, types and property names (checked against the model,
never taken from input); every value travels as a ``$parameter``. Writes are
``UNWIND`` over column parameters (one list per property), which pack several
times faster than a list of maps.
"""

from __future__ import annotations

from functools import cache

from ringscope.graph.model import DERIVED_LABELS, DERIVED_RELS, NODE_TYPES, REL_TYPES, TEMPORAL_PROPERTIES

__all__ = [
    "CREATE_KEY_CONSTRAINT",
    "STORE_ID",
    "COUNT_NODES",
    "COUNT_RELS",
    "CLEAR_ALL",
    "DROP_OTHER_RUNS",
    "SCHEMA_EXTRA",
    "REVISION_BEGIN",
    "REVISION_END",
    "READ_REVISION",
    "READ_RUNS",
    "COMMIT_RUN",
    "TAKE_LOCK",
    "RENEW_LOCK",
    "DROP_LOCK",
    "AWAIT_INDEXES",
    "ANY_DATA",
    "SERVER_HOME",
    "merge_nodes_query",
    "merge_rels_query",
    "node_properties_query",
    "read_nodes_query",
    "read_relationships_query",
    "read_size_query",
    "READ_PART_ROWS",
    "relationship_properties_query",
    "detach_query",
]

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


def _set_targets(var: str, props: list[str], policy: str = "merge") -> list[tuple[str, str]]:
    """(stored property, value it is set to) per property under a write
    policy (same rules as the embedded store): merge — a missing value leaves
    the stored one alone; keep — a stored value stays; replace — the given
    value, null included."""
    if policy == "keep":
        return [(f"{var}.{p}", f"coalesce({var}.{p}, {_value(p)})") for p in props]
    if policy == "replace":
        return [(f"{var}.{p}", _value(p)) for p in props]
    return [(f"{var}.{p}", f"coalesce({_value(p)}, {var}.{p})") for p in props]


def _sets(var: str, props: list[str], policy: str = "merge") -> str:
    """SET items for ``props`` under a write policy (see :func:`_set_targets`)."""
    return ", ".join(f"{lhs} = {rhs}" for lhs, rhs in _set_targets(var, props, policy))


def _differs(var: str, props: list[str], policy: str = "merge") -> str:
    """Cypher test: would the SET of :func:`_sets` change any stored value?

    Neo4j's counters count a property set to the value it holds, so a no-op
    re-ingest would look like a change; the query returns how many rows
    really differ instead (null-safe equality: two nulls are equal)."""
    return " OR ".join(
        f"NOT coalesce({lhs} = {rhs}, {lhs} IS NULL AND {rhs} IS NULL)" for lhs, rhs in _set_targets(var, props, policy)
    )


def _visible(var: str) -> str:
    """Cypher test: was ``var`` (a derived node or edge) written by a committed
    run, or visible before an uncommitted run rewrote it? Untagged items
    (written before runs existed) count as run 'legacy'."""
    return f"(coalesce({var}.run_id, 'legacy') IN $committed OR {var}.prev_run IN $committed)"


def _tag(var: str) -> str:
    """ON CREATE / ON MATCH items that put ``var`` in run ``$run``, remembering
    under which committed run it was visible before."""
    return (
        f" ON CREATE SET {var}.run_id = $run"
        f" ON MATCH SET {var}.prev_run = CASE WHEN coalesce({var}.run_id, 'legacy') IN $committed"
        f" THEN coalesce({var}.run_id, 'legacy') ELSE {var}.prev_run END, {var}.run_id = $run"
    )


#: what a merge query with properties returns: how many rows changed a stored value
_COUNT_DIFFERING = " RETURN sum(CASE WHEN differs THEN 1 ELSE 0 END) AS differing"


@cache
def merge_nodes_query(label: str, columns: tuple[str, ...], policy: str = "merge") -> str:
    """Batched ``MERGE`` for nodes of ``label`` carrying ``columns``.

    Parameters are columns (one list per property, ``$key`` included),
    which pack several times faster than a list of maps. Label and property
    names come from the model (checked here), values only from parameters.

    Example
    -------
    >>> query = merge_nodes_query("Phone", ("key", "valid"))
    >>> query.split(" WITH ")[0]
    'UNWIND range(0, size($key) - 1) AS i MERGE (n:Phone {key: $key[i]})'
    >>> query.split(" SET ")[1]
    'n.valid = coalesce($valid[i], n.valid) RETURN sum(CASE WHEN differs THEN 1 ELSE 0 END) AS differing'

    The query returns how many rows changed a stored value (``differing``),
    since Neo4j's counters also count a property set to the value it held.
    """
    allowed = set(NODE_TYPES[label].properties)
    props = [c for c in columns if c != "key"]
    if set(props) - allowed:
        raise ValueError(f"Properties {sorted(set(props) - allowed)} are not in the model of {label}")
    query = f"UNWIND range(0, size($key) - 1) AS i MERGE (n:{label} {{key: $key[i]}})"
    if label in DERIVED_LABELS:
        query += _tag("n")
    if props and label in DERIVED_LABELS:
        query += " SET " + _sets("n", props, policy)
    elif props:
        query += (
            f" WITH n, i, {_differs('n', props, policy)} AS differs SET {_sets('n', props, policy)}" + _COUNT_DIFFERING
        )
    return query


@cache
def merge_rels_query(name: str, columns: tuple[str, ...], policy: str = "merge") -> str:
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
    if name in DERIVED_RELS:
        query += _tag("r")
    if props and name in DERIVED_RELS:
        query += " SET " + _sets("r", props, policy)
    elif props:
        query += (
            f" WITH r, i, {_differs('r', props, policy)} AS differs SET {_sets('r', props, policy)}" + _COUNT_DIFFERING
        )
    return query


STORE_ID = "CALL db.info() YIELD id RETURN id"

_DERIVED_TYPES = sorted({REL_TYPES[name].type for name in DERIVED_RELS})

COUNT_NODES = {
    label: f"MATCH (n:{label})"
    + (f" WHERE {_visible('n')}" if label in DERIVED_LABELS else "")
    + " RETURN count(n) AS c"
    for label in NODE_TYPES
}
COUNT_RELS = {
    rt.type: f"MATCH ()-[r:{rt.type}]->()"
    + (f" WHERE {_visible('r')}" if rt.type in _DERIVED_TYPES else "")
    + " RETURN count(r) AS c"
    for rt in REL_TYPES.values()
}

# the lock node survives a clear: its holder may be the one clearing (the revision node too: it counts on)
CLEAR_ALL = (
    "MATCH (n) WHERE NOT n:RingscopeLock AND NOT n:RingscopeRevision "
    "CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS"
)

# what ``replace_derived`` removes once its run is committed: every other run
DROP_OTHER_RUNS = [
    f"MATCH (n:{label}) WHERE n.run_id IS NULL OR n.run_id <> $run "
    f"CALL (n) {{ DETACH DELETE n }} IN TRANSACTIONS OF 10000 ROWS"
    for label in DERIVED_LABELS
] + [
    f"MATCH ()-[r:{t}]->() WHERE r.run_id IS NULL OR r.run_id <> $run CALL (r) {{ DELETE r }} IN TRANSACTIONS OF 10000 ROWS"
    for t in _DERIVED_TYPES
]

SCHEMA_EXTRA = [
    "CREATE CONSTRAINT ringscope_lock_key IF NOT EXISTS FOR (n:RingscopeLock) REQUIRE n.key IS UNIQUE",
    "CREATE CONSTRAINT ringscope_run_key IF NOT EXISTS FOR (n:RingscopeRun) REQUIRE n.key IS UNIQUE",
    "CREATE CONSTRAINT ringscope_revision_key IF NOT EXISTS FOR (n:RingscopeRevision) REQUIRE n.key IS UNIQUE",
]

# The revision (see ``Neo4jStore.revision``). A write is many transactions,
# run in parallel: one counter node locked by each would serialise them, so a
# write marks the node ``writing`` in a transaction of its own before its
# first data transaction, and in one after its last moves the counter on (if
# anything changed) with a fresh token. A writer that died midway left
# ``writing`` set: the next write moves the counter on at its start.
REVISION_BEGIN = (
    "MERGE (m:RingscopeRevision {key: 'revision'}) "
    "SET m.counter = coalesce(m.counter, 0) + CASE WHEN coalesce(m.writing, false) THEN 1 ELSE 0 END, "
    "m.token = CASE WHEN coalesce(m.writing, false) OR m.token IS NULL THEN $token ELSE m.token END, "
    "m.writing = true"
)
REVISION_END = (
    "MERGE (m:RingscopeRevision {key: 'revision'}) "
    "SET m.counter = coalesce(m.counter, 0) + CASE WHEN $changed THEN 1 ELSE 0 END, "
    "m.token = CASE WHEN $changed OR m.token IS NULL THEN $token ELSE m.token END, m.writing = false"
)
READ_REVISION = (
    "OPTIONAL MATCH (m:RingscopeRevision {key: 'revision'}) "
    "RETURN m.counter AS counter, m.token AS token, m.writing AS writing"
)
READ_RUNS = "MATCH (m:RingscopeRun {key: 'derived'}) RETURN m.committed AS committed"
COMMIT_RUN = {
    # replace: only this run is visible from now on
    "replace": "MERGE (m:RingscopeRun {key: 'derived'}) SET m.committed = [$run], m.committed_at = timestamp()",
    # add (flag's new findings): this run joins the visible ones
    "add": "MERGE (m:RingscopeRun {key: 'derived'}) "
    "SET m.committed = coalesce(m.committed, ['legacy']) + $run, m.committed_at = timestamp()",
}

# The lock: SET first, so the node's write lock is ours before its holder is
# read (two takers serialise on it; the second then sees the first's token).
TAKE_LOCK = (
    "MERGE (l:RingscopeLock {key: $key}) SET l.probed_at = timestamp() "
    "WITH l, (l.token IS NULL OR l.token = $token OR l.expires < timestamp()) AS free "
    "FOREACH (_ IN CASE WHEN free THEN [1] ELSE [] END | "
    "SET l.token = $token, l.pid = $pid, l.command = $command, l.since = $since, l.host = $host, "
    "l.expires = timestamp() + $lease) "
    "RETURN free, l.pid AS pid, l.command AS command, l.since AS since, l.host AS host"
)
RENEW_LOCK = (
    "MATCH (l:RingscopeLock {key: $key}) WHERE l.token = $token "
    "SET l.expires = timestamp() + $lease RETURN count(l) AS n"
)
DROP_LOCK = (
    "MATCH (l:RingscopeLock {key: $key}) WHERE l.token = $token "
    "REMOVE l.token, l.pid, l.command, l.since, l.host SET l.expires = 0"
)


@cache
def node_properties_query(label: str, properties: tuple[str, ...]) -> str:
    """Read ``properties`` (checked against the model) of the nodes of
    ``label`` keyed ``$keys``; temporal ones as epoch milliseconds; derived
    nodes only from committed runs (``$committed``).

    Example
    -------
    >>> node_properties_query("Phone", ("valid",))
    'UNWIND $keys AS k MATCH (n:Phone {key: k}) RETURN n.key AS key, n.valid AS valid'
    """
    unknown = set(properties) - set(NODE_TYPES[label].properties)
    if unknown:
        raise ValueError(f"Properties {sorted(unknown)} are not in the model of {label}")
    where = f" WHERE {_visible('n')}" if label in DERIVED_LABELS else ""
    return f"UNWIND $keys AS k MATCH (n:{label} {{key: k}}){where} RETURN n.key AS key" + "".join(
        f", {_read_value('n', p)} AS {p}" for p in properties
    )


@cache
def relationship_properties_query(name: str, props: tuple[str, ...], by: str) -> str:
    rt = REL_TYPES[name]
    unknown = set(props) - set(rt.identity) - set(rt.properties)
    if unknown:
        raise KeyError(f"Properties {sorted(unknown)} are not in the model of {name}")
    if by not in ("src", "dst"):
        raise ValueError(f"The 'by' parameter must be 'src' or 'dst'. Got {by!r} instead.")
    a = f"(a:{rt.source} {{key: k}})" if by == "src" else f"(a:{rt.source})"
    b = f"(b:{rt.target} {{key: k}})" if by == "dst" else f"(b:{rt.target})"
    where = f" WHERE {_visible('r')}" if name in DERIVED_RELS else ""
    projection = ", ".join(f".{p}" for p in props)
    return f"UNWIND $keys AS k MATCH {a}-[r:{rt.type}]->{b}{where} RETURN a.key AS src, b.key AS dst, r {{{projection}}} AS props"


@cache
def detach_query(name: str, by: str) -> str:
    rt = REL_TYPES[name]
    a = f"(a:{rt.source} {{key: k}})" if by == "src" else f"(a:{rt.source})"
    b = f"(b:{rt.target} {{key: k}})" if by == "dst" else f"(b:{rt.target})"
    if by not in ("src", "dst"):
        raise ValueError(f"Detach by 'src' or 'dst', not {by!r}")
    return f"UNWIND $keys AS k MATCH {a}-[r:{rt.type}]->{b} DELETE r"


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


AWAIT_INDEXES = "CALL db.awaitIndexes(300)"

# ``ingest --bulk`` needs an empty database: nothing but the lock and revision nodes (which ``clear`` keeps)
ANY_DATA = (
    "CALL () { MATCH (n) WHERE NOT n:RingscopeLock AND NOT n:RingscopeRevision RETURN n LIMIT 1 } "
    "WITH count(n) AS found CALL () { MATCH (m) RETURN count(m) AS total } RETURN found, total"
)
# where the server keeps its files (admin only; the local launcher's data folder)
SERVER_HOME = "SHOW SETTINGS YIELD name, value WHERE name = 'server.directories.neo4j_home' RETURN value"


#: rows a whole-table read asks for per part (one record each, see
#: :func:`read_nodes_query`): bounds what the server holds in one list,
#: times the store's ``workers`` parts in flight
READ_PART_ROWS = 250_000


@cache
def read_nodes_query(label: str, props: tuple[str, ...]) -> str:
    """Part ``$part`` of ``$parts`` of the whole node table of ``label``:
    one record whose ``rows`` holds ``[id, key, *props]`` per node (``props``
    already checked against the model); derived nodes only from committed runs.

    One record of lists, not a record per node: Neo4j streams records at
    ~15k/s here (the server, not the client, is the bottleneck), a collected
    list at ~150k rows/s. Rows are lists, not ``collect(n.prop)`` per
    column, since ``collect`` drops nulls. Parts are split by ``id(n)``
    (deprecated in Neo4j 5 with no replacement as cheap; the store turns
    notifications off) so that several sessions read at once, and the id
    puts the rows back in one order.

    The properties are read once into a map projection (``n {.key, …}``),
    then taken from it: each ``n.prop`` walks the node's property chain
    again, and reading Application's columns that way took twice as long.

    Example
    -------
    >>> read_nodes_query("Phone", ("valid",))
    'MATCH (n:Phone) WHERE id(n) % $parts = $part WITH n, n {.key, .valid} AS m RETURN collect([id(n), m.key, m.valid]) AS rows'
    """
    where = f" AND {_visible('n')}" if label in DERIVED_LABELS else ""
    projection = ", ".join(f".{p}" for p in ("key", *props))
    row = ", ".join(["id(n)", "m.key", *(_read_value("m", p) for p in props)])
    return (
        f"MATCH (n:{label}) WHERE id(n) % $parts = $part{where} WITH n, n {{{projection}}} AS m "
        f"RETURN collect([{row}]) AS rows"
    )


@cache
def read_relationships_query(name: str, props: tuple[str, ...]) -> str:
    """Part ``$part`` of ``$parts`` of the whole relationship table ``name``:
    one record whose ``rows`` holds ``[id, src, dst, *props]`` per
    relationship (see :func:`read_nodes_query`); derived ones only from
    committed runs.

    Example
    -------
    >>> read_relationships_query("Application-HAS_IP-IP", ())
    'MATCH (a:Application)-[r:HAS_IP]->(b:IP) WHERE id(r) % $parts = $part RETURN collect([id(r), a.key, b.key]) AS rows'
    """
    rt = REL_TYPES[name]
    where = f" AND {_visible('r')}" if name in DERIVED_RELS else ""
    # properties through one map projection, as for nodes
    read = f" WITH a, b, r, r {{{', '.join(f'.{p}' for p in props)}}} AS m" if len(props) > 1 else ""
    var = "m" if read else "r"
    row = ", ".join(["id(r)", "a.key", "b.key", *(_read_value(var, p) for p in props)])
    return (
        f"MATCH (a:{rt.source})-[r:{rt.type}]->(b:{rt.target}) WHERE id(r) % $parts = $part{where}{read} "
        f"RETURN collect([{row}]) AS rows"
    )


@cache
def read_size_query(name: str) -> str:
    """How many rows a whole-table read of node label or relationship
    ``name`` returns at most (Neo4j's count store: no scan).

    Example
    -------
    >>> read_size_query("Application-HAS_IP-IP")
    'MATCH ()-[r:HAS_IP]->() RETURN count(r) AS c'
    """
    if name in NODE_TYPES:
        return f"MATCH (n:{name}) RETURN count(n) AS c"
    return f"MATCH ()-[r:{REL_TYPES[name].type}]->() RETURN count(r) AS c"
