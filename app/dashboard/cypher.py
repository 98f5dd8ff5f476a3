"""The analysts' Cypher console: read-only, capped, timed out.

Three locks, any one of which refuses a write:

1. the query is ``EXPLAIN``-ed first and refused unless the plan's query
   type is read-only (``r``) — writes, schema changes and write procedures
   come back as ``w``, ``rw`` or ``s``;
2. it then runs in a session whose access mode is READ, where the server
   itself refuses writes;
3. ``LOAD CSV`` (a read that fetches URLs) is refused outright: the
   dashboard makes no request off the machine.

Rows are capped (``max_rows``; the rest is discarded on the server) and the
transaction times out (``timeout`` seconds, enforced by the server).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

__all__ = ["ConsoleResult", "QueryRefused", "check_read_only", "run_read_only", "MAX_ROWS", "TIMEOUT"]

MAX_ROWS = 1000
TIMEOUT = 15.0

_LOAD_CSV = re.compile(r"\bLOAD\s+CSV\b", re.IGNORECASE)
_PROFILE = re.compile(r"^\s*(EXPLAIN|PROFILE)\b", re.IGNORECASE)
# plan type "r", yet they fetch URLs or files from the server: refused like LOAD CSV
_FETCHING_PROCEDURES = re.compile(r"\bapoc\s*\.\s*(load|import|export|log)\s*\.", re.IGNORECASE)


class QueryRefused(ValueError):
    """The console will not run this query (and says why)."""


@dataclass
class ConsoleResult:
    columns: list[str]
    rows: list[list[Any]]
    truncated: bool
    query_type: str
    seconds: float
    graph_nodes: dict[str, dict[str, Any]] = field(default_factory=dict)  # element id → {label, key, props}
    graph_edges: list[dict[str, Any]] = field(default_factory=list)  # {id, source, target, type}

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame([[_cell(v) for v in row] for row in self.rows], columns=self.columns)


def check_read_only(driver: Any, database: str, text: str) -> str:
    """``EXPLAIN`` the query; return its type if read-only, else raise :class:`QueryRefused`."""
    from neo4j import READ_ACCESS
    from neo4j.exceptions import Neo4jError

    if not text or not text.strip():
        raise QueryRefused("Type a query first.")
    if _PROFILE.match(text):
        raise QueryRefused("Leave out EXPLAIN / PROFILE: the console explains every query itself.")
    if _LOAD_CSV.search(text):
        raise QueryRefused("LOAD CSV is refused: the console does not read files or URLs.")
    if _FETCHING_PROCEDURES.search(text):
        raise QueryRefused("apoc.load / import / export procedures are refused: the console does not read or "
                           "write files or URLs.")
    try:
        with driver.session(database=database, default_access_mode=READ_ACCESS) as session:
            summary = session.run("EXPLAIN " + text).consume()
    except Neo4jError as exc:
        raise QueryRefused(f"The query does not compile: {exc.message or exc}") from None
    query_type = summary.query_type or ""
    if query_type != "r":
        kind = {"w": "writes", "rw": "reads and writes", "s": "changes the schema"}.get(query_type, query_type or "?")
        raise QueryRefused(f"Refused: the console is read-only and this query {kind} (plan type {query_type!r}).")
    return query_type


def run_read_only(driver: Any, database: str, text: str, params: dict[str, Any] | None = None,
                  max_rows: int = MAX_ROWS, timeout: float = TIMEOUT) -> ConsoleResult:
    """Run ``text`` if its plan is read-only, in a READ session, capped and timed out."""
    import time

    from neo4j import READ_ACCESS, Query
    from neo4j.exceptions import ClientError, Neo4jError

    query_type = check_read_only(driver, database, text)
    start = time.perf_counter()
    rows: list[list[Any]] = []
    truncated = False
    nodes: dict[str, dict[str, Any]] = {}
    edges: dict[str, dict[str, Any]] = {}
    try:
        with driver.session(database=database, default_access_mode=READ_ACCESS, fetch_size=min(max_rows + 1, 1000)) as session:
            result = session.run(Query(text, timeout=timeout), params or {})
            columns = list(result.keys())
            for record in result:
                if len(rows) >= max_rows:
                    truncated = True
                    break
                values = list(record.values())
                rows.append(values)
                for v in values:
                    _collect_graph(v, nodes, edges)
            result.consume()  # discards what is left on the server
    except ClientError as exc:
        if "AccessMode" in (exc.code or "") or "read access mode" in str(exc).lower():
            raise QueryRefused("Refused by the server: writing in read access mode is not allowed.") from None
        raise QueryRefused(f"{exc.code}: {exc.message}") from None
    except Neo4jError as exc:
        raise QueryRefused(f"{exc.code}: {exc.message}") from None
    return ConsoleResult(columns, rows, truncated, query_type, time.perf_counter() - start, nodes, list(edges.values()))


def _collect_graph(value: Any, nodes: dict, edges: dict) -> None:
    from neo4j.graph import Node, Path, Relationship

    if isinstance(value, Path):
        for n in value.nodes:
            _collect_graph(n, nodes, edges)
        for r in value.relationships:
            _collect_graph(r, nodes, edges)
    elif isinstance(value, Node):
        label = next(iter(value.labels), "Node")
        nodes[value.element_id] = {"label": label, "key": str(value.get("key", value.element_id)), "props": dict(value)}
    elif isinstance(value, Relationship):
        if value.start_node is not None:
            _collect_graph(value.start_node, nodes, edges)
        if value.end_node is not None:
            _collect_graph(value.end_node, nodes, edges)
        edges[value.element_id] = {"id": value.element_id, "source": value.start_node.element_id,
                                   "target": value.end_node.element_id, "type": value.type}
    elif isinstance(value, (list, tuple)):
        for v in value:
            _collect_graph(v, nodes, edges)


def _cell(value: Any) -> Any:
    """A table cell: nodes and paths as short text."""
    from neo4j.graph import Node, Path, Relationship

    if isinstance(value, Node):
        return f"({':'.join(value.labels)} {value.get('key', '')})"
    if isinstance(value, Relationship):
        return f"[:{value.type}]"
    if isinstance(value, Path):
        return " ".join(_cell(n) for n in value.nodes)
    if isinstance(value, (dict, list)):
        return str(value)
    if hasattr(value, "iso_format"):
        return value.iso_format()
    return value
