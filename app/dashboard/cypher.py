"""The analysts' Cypher console: read-only, bounded, timed out.

Whether a query may run is decided from its plan, never from its text. The
query is ``EXPLAIN``-ed first (in a READ session) and refused when the plan

1. is an administration command or holds one (``SHOW …``, ``TERMINATE
   TRANSACTIONS``, user and database commands: the operators
   ``Show*``/``Terminate*``/``AdministrationCommand``);
2. holds a ``LoadCSV`` operator (the console reads no files or URLs);
3. calls a procedure outside :data:`CONSOLE_PROCEDURES` (names come from
   the plan's ``ProcedureCall`` operators, as the server resolved them: no
   spelling, comment or backtick changes them) or a user-defined function
   outside :data:`CONSOLE_FUNCTIONS` (the server lists its own functions);
4. is not read-only by the server's own classification (query type ``r``);
5. holds any operator not on :data:`READ_OPERATORS`, so an operator this
   module has never seen is refused rather than trusted.

It then runs in a READ session (the server refuses writes), with a
server-side transaction timeout, at most ``max_rows`` rows and at most
``max_bytes`` bytes of values, each cell cut to ``max_cell_bytes``; what was
cut is said in the result. The server itself loads no file or URL and has
no fetching procedures (``tools/neo4j``): this module is the second lock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ringscope.app.dashboard.i18n import N_, Message

__all__ = [
    "ConsoleResult",
    "QueryRefused",
    "check_read_only",
    "run_read_only",
    "plan_operators",
    "MAX_ROWS",
    "MAX_BYTES",
    "MAX_CELL_BYTES",
    "TIMEOUT",
    "READ_OPERATORS",
    "CONSOLE_PROCEDURES",
    "CONSOLE_FUNCTIONS",
]

MAX_ROWS = 1000
MAX_BYTES = 4 * 1024 * 1024
MAX_CELL_BYTES = 64 * 1024
TIMEOUT = 15.0

#: Plan operators (name before any ``(…)`` and ``@database``) that only read.
#: Writes, schema changes, LOAD CSV, CALL … IN TRANSACTIONS, commands and
#: anything newer than this list are refused.
READ_OPERATORS = frozenset(
    {
        # leaves: scans and seeks
        "AllNodesScan",
        "NodeByLabelScan",
        "UnionNodeByLabelsScan",
        "IntersectionNodeByLabelsScan",
        "SubtractionNodeByLabelsScan",
        "NodeByIdSeek",
        "NodeByElementIdSeek",
        "NodeIndexSeek",
        "NodeUniqueIndexSeek",
        "NodeIndexSeekByRange",
        "NodeUniqueIndexSeekByRange",
        "MultiNodeIndexSeek",
        "AssertingMultiNodeIndexSeek",
        "NodeIndexScan",
        "NodeIndexContainsScan",
        "NodeIndexEndsWithScan",
        "NodeCountFromCountStore",
        "RelationshipCountFromCountStore",
        "DirectedRelationshipByIdSeek",
        "UndirectedRelationshipByIdSeek",
        "DirectedRelationshipByElementIdSeek",
        "UndirectedRelationshipByElementIdSeek",
        "DirectedRelationshipIndexSeek",
        "UndirectedRelationshipIndexSeek",
        "DirectedRelationshipUniqueIndexSeek",
        "UndirectedRelationshipUniqueIndexSeek",
        "DirectedRelationshipIndexSeekByRange",
        "UndirectedRelationshipIndexSeekByRange",
        "DirectedRelationshipUniqueIndexSeekByRange",
        "UndirectedRelationshipUniqueIndexSeekByRange",
        "DirectedRelationshipIndexScan",
        "UndirectedRelationshipIndexScan",
        "DirectedRelationshipIndexContainsScan",
        "UndirectedRelationshipIndexContainsScan",
        "DirectedRelationshipIndexEndsWithScan",
        "UndirectedRelationshipIndexEndsWithScan",
        "DirectedAllRelationshipsScan",
        "UndirectedAllRelationshipsScan",
        "DirectedRelationshipTypeScan",
        "UndirectedRelationshipTypeScan",
        "DirectedUnionRelationshipTypesScan",
        "UndirectedUnionRelationshipTypesScan",
        "AssertingMultiRelationshipIndexSeek",
        "Argument",
        "ArgumentTracker",
        "EmptyRow",
        # traversal
        "Expand",
        "OptionalExpand",
        "VarLengthExpand",
        "ShortestPath",
        "StatefulShortestPath",
        "Repeat",
        "BidirectionalRepeat",
        "ProjectEndpoints",
        "PathPropagatingBFS",
        # rows
        "Filter",
        "Projection",
        "ProduceResults",
        "CacheProperties",
        "Distinct",
        "OrderedDistinct",
        "EagerAggregation",
        "OrderedAggregation",
        "Sort",
        "PartialSort",
        "Top",
        "PartialTop",
        "Limit",
        "ExhaustiveLimit",
        "Skip",
        "Unwind",
        "Eager",
        "EmptyResult",
        "NonFuseable",
        "PreserveOrder",
        "NullifyMetadata",
        "AssertSameNode",
        "AssertSameRelationship",
        # joins and subqueries
        "Apply",
        "SemiApply",
        "AntiSemiApply",
        "LetSemiApply",
        "LetAntiSemiApply",
        "SelectOrSemiApply",
        "SelectOrAntiSemiApply",
        "LetSelectOrSemiApply",
        "LetSelectOrAntiSemiApply",
        "ConditionalApply",
        "AntiConditionalApply",
        "RollUpApply",
        "CartesianProduct",
        "NodeHashJoin",
        "NodeLeftOuterHashJoin",
        "NodeRightOuterHashJoin",
        "ValueHashJoin",
        "Optional",
        "Anti",
        "Union",
        "OrderedUnion",
        "TriadicSelection",
        "TriadicBuild",
        "TriadicFilter",
        # checked by name below
        "ProcedureCall",
    }
)

#: Procedures the console may call: schema introspection and read-only traversals.
CONSOLE_PROCEDURES = frozenset(
    {
        "db.labels",
        "db.relationshipTypes",
        "db.propertyKeys",
        "db.schema.visualization",
        "db.schema.nodeTypeProperties",
        "db.schema.relTypeProperties",
        "apoc.meta.stats",
        "apoc.meta.schema",
        "apoc.meta.data",
        "apoc.meta.nodeTypeProperties",
        "apoc.meta.relTypeProperties",
        "apoc.path.expand",
        "apoc.path.expandConfig",
        "apoc.path.subgraphNodes",
        "apoc.path.subgraphAll",
        "apoc.path.spanningTree",
        "apoc.neighbors.tohop",
        "apoc.neighbors.byhop",
        "apoc.neighbors.athop",
        "apoc.neighbors.tohop.count",
        "apoc.neighbors.byhop.count",
        "apoc.neighbors.athop.count",
    }
)

#: Namespaces (or full names) of user-defined functions the console may call:
#: pure value functions. Built-in Cypher functions are always allowed.
CONSOLE_FUNCTIONS = (
    "apoc.agg.",
    "apoc.any.",
    "apoc.bitwise.",
    "apoc.coll.",
    "apoc.convert.",
    "apoc.data.",
    "apoc.date.",
    "apoc.diff.",
    "apoc.hashing.",
    "apoc.json.",
    "apoc.label.",
    "apoc.map.",
    "apoc.math.",
    "apoc.meta.",
    "apoc.node.",
    "apoc.nodes.",
    "apoc.number.",
    "apoc.path.",
    "apoc.rel.",
    "apoc.scoring.",
    "apoc.temporal.",
    "apoc.text.",
    "apoc.version",
    "gds.util.",
    "gds.similarity.",
    "gds.version",
)

_ADMIN_PREFIXES = ("Show", "Terminate", "AdministrationCommand")


class QueryRefused(ValueError):
    """The console will not run this query (and says why: a
    :class:`~ringscope.app.dashboard.i18n.Message`, English as ``str``,
    in the reader's language through ``i18n.tr``)."""


@dataclass
class ConsoleResult:
    """What the console shows: rows (bounded), and what was left out."""

    columns: list[str]
    rows: list[list[Any]]
    truncated: bool
    query_type: str
    seconds: float
    graph_nodes: dict[str, dict[str, Any]] = field(default_factory=dict)  # element id → {label, key, props}
    graph_edges: list[dict[str, Any]] = field(default_factory=list)  # {id, source, target, type}
    bytes: int = 0  # estimated size of the values kept
    byte_capped: bool = False  # rows left out because the result reached max_bytes
    cut_cells: int = 0  # cells shortened to max_cell_bytes

    @property
    def notice(self) -> str:
        """One line on what was cut, or ``""``.

        Example
        -------
        >>> ConsoleResult(["n"], [[1]], True, "r", 0.1, byte_capped=True, cut_cells=2).notice
        'cut: the result reached the byte limit, later rows not shown; 2 cells shortened'
        """
        return self.notice_in(lambda text: text)

    def notice_in(self, translate: Callable[[str], str]) -> str:
        """:attr:`notice` with each sentence passed through ``translate``
        (the dashboard's ``_``: the console shows it in the reader's language).

        >>> from ringscope.app.dashboard.i18n import _
        >>> ConsoleResult(["n"], [[1]], True, "r", 0.1).notice_in(_)
        '已截断：达到行数上限，之后的行未显示'
        """
        parts = []
        if self.byte_capped:
            parts.append(translate(N_("the result reached the byte limit, later rows not shown")))
        elif self.truncated:
            parts.append(translate(N_("capped at the row limit, later rows not shown")))
        if self.cut_cells:
            many = N_("{n} cells shortened") if self.cut_cells != 1 else N_("{n} cell shortened")
            parts.append(translate(many).format(n=f"{self.cut_cells:,}"))
        return translate(N_("cut: {parts}")).format(parts="; ".join(parts)) if parts else ""

    def frame(self, mask: Callable[[Any], Any] | None = None) -> pd.DataFrame:
        """The rows as a table of plain values (nodes and paths as short
        text), passed through ``mask`` (e.g. :func:`ringscope.app.dashboard.masking.mask_content`)
        before lists and maps are turned into text."""
        cells = [[_display(mask(_plain(v)) if mask else _plain(v)) for v in row] for row in self.rows]
        frame = pd.DataFrame(cells, columns=self.columns)
        for col in frame.columns:  # a column of numbers and masked text is shown as text
            kinds = {type(v) for v in frame[col] if v is not None}
            if str in kinds and len(kinds) > 1:
                frame[col] = frame[col].map(lambda v: v if v is None else str(v))
        return frame


def plan_operators(plan: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """``(operator, details)`` for every operator of an EXPLAIN plan,
    operator names without the ``@database`` suffix.

    Example
    -------
    >>> plan = {"operatorType": "ProduceResults@neo4j", "args": {"Details": "n"},
    ...         "children": [{"operatorType": "AllNodesScan@neo4j", "args": {"Details": "n"}}]}
    >>> list(plan_operators(plan))
    [('ProduceResults', 'n'), ('AllNodesScan', 'n')]
    """
    stack = [plan]
    while stack:
        node = stack.pop()
        name = str(node.get("operatorType") or node.get("operator_type") or "")
        details = (node.get("args") or node.get("arguments") or {}).get("Details")
        yield name.split("@", 1)[0], "" if details is None else str(details)
        stack.extend(reversed(node.get("children") or []))


def check_read_only(driver: Any, database: str, text: str) -> str:
    """``EXPLAIN`` the query and return its type (``"r"``) if the console may
    run it, else raise :class:`QueryRefused` saying why (see the module doc)."""
    from neo4j import READ_ACCESS
    from neo4j.exceptions import Neo4jError

    if not text or not text.strip():
        raise QueryRefused(Message(N_("Type a query first.")))
    try:
        with driver.session(database=database, default_access_mode=READ_ACCESS) as session:
            summary = session.run("EXPLAIN " + text).consume()
            functions = _user_functions(session) if summary.plan else set()
    except Neo4jError as exc:
        raise QueryRefused(Message(N_("The query does not compile: {error}"), error=str(exc.message or exc))) from None
    if not summary.plan:
        raise QueryRefused(
            Message(N_("Refused: the server returned no plan for this query, so the console cannot check it."))
        )
    _check_plan(list(plan_operators(summary.plan)), summary.query_type or "", functions)
    return summary.query_type or ""


def _user_functions(session: Any) -> set[str]:
    """Names of the user-defined (plugin) functions the server has loaded."""
    record = session.run(
        "SHOW FUNCTIONS YIELD name, isBuiltIn WHERE NOT isBuiltIn RETURN collect(name) AS names"
    ).single()
    return set(record["names"]) if record else set()


def _check_plan(operators: list[tuple[str, str]], query_type: str, functions: set[str]) -> None:
    names = [op for op, _ in operators]
    for op in names:
        if op.startswith(_ADMIN_PREFIXES):
            raise QueryRefused(
                Message(
                    N_(
                        "Refused: administration commands ({operator}) are not run from the console; it is "
                        "read-only and sees data, not transactions, settings or users."
                    ),
                    operator=op,
                )
            )
    if "LoadCSV" in names:
        raise QueryRefused(
            Message(N_("Refused: LOAD CSV reads files or URLs, and the read-only console reads neither."))
        )
    for op, details in operators:
        if op == "ProcedureCall":
            procedure = details.split("(", 1)[0].strip()
            if procedure not in CONSOLE_PROCEDURES:
                raise QueryRefused(
                    Message(
                        N_("Refused: {procedure} is not one of the console's read-only procedures ({allowed})."),
                        procedure=procedure or "?",
                        allowed=", ".join(sorted(CONSOLE_PROCEDURES)),
                    )
                )
        for name in _functions_called(details, functions):
            if not name.startswith(CONSOLE_FUNCTIONS):
                raise QueryRefused(
                    Message(
                        N_("Refused: the function {function} is not one of the console's read-only functions."),
                        function=name,
                    )
                )
    if query_type != "r":
        template = {
            "w": N_("Refused: the console is read-only and this query writes (plan type {type})."),
            "rw": N_("Refused: the console is read-only and this query reads and writes (plan type {type})."),
            "s": N_("Refused: the console is read-only and this query changes the schema (plan type {type})."),
        }.get(query_type, N_("Refused: the console is read-only and this query is not a read (plan type {type})."))
        raise QueryRefused(Message(template, type=repr(query_type)))
    for op in names:
        if op.split("(", 1)[0] not in READ_OPERATORS:
            raise QueryRefused(
                Message(
                    N_("Refused: the plan holds a {operator} operator, which the read-only console does not run."),
                    operator=op,
                )
            )


def _functions_called(details: str, functions: set[str]) -> Iterator[str]:
    """User-defined functions named in an operator's details (as the planner
    prints them: resolved names, literals replaced by parameters)."""
    for name in functions:
        start = details.find(name + "(")
        while start >= 0:
            if start == 0 or not (details[start - 1].isalnum() or details[start - 1] in "._`"):
                yield name
                break
            start = details.find(name + "(", start + 1)


def run_read_only(
    driver: Any,
    database: str,
    text: str,
    params: dict[str, Any] | None = None,
    max_rows: int = MAX_ROWS,
    timeout: float = TIMEOUT,
    max_bytes: int = MAX_BYTES,
    max_cell_bytes: int = MAX_CELL_BYTES,
) -> ConsoleResult:
    """Run ``text`` if its plan passes :func:`check_read_only`, in a READ
    session, timed out on the server, at most ``max_rows`` rows and about
    ``max_bytes`` bytes of values (each cell at most ``max_cell_bytes``)."""
    from neo4j import READ_ACCESS, Query
    from neo4j.exceptions import ClientError, Neo4jError

    query_type = check_read_only(driver, database, text)
    start = time.perf_counter()
    rows: list[list[Any]] = []
    truncated = byte_capped = False
    used = cut_cells = 0
    nodes: dict[str, dict[str, Any]] = {}
    edges: dict[str, dict[str, Any]] = {}
    try:
        with driver.session(
            database=database, default_access_mode=READ_ACCESS, fetch_size=min(max_rows + 1, 1000)
        ) as session:
            result = session.run(Query(text, timeout=timeout), params or {})
            columns = list(result.keys())
            for record in result:
                if len(rows) >= max_rows:
                    truncated = True
                    break
                if used >= max_bytes:
                    truncated = byte_capped = True
                    break
                values = []
                for v in record.values():
                    bounded, size, cut = _bound(v, min(max_cell_bytes, max(max_bytes - used, 0)))
                    used += size
                    cut_cells += cut
                    values.append(bounded)
                rows.append(values)
                for v in values:
                    _collect_graph(v, nodes, edges)
            result.consume()  # discards what is left on the server
    except ClientError as exc:
        if "AccessMode" in (exc.code or "") or "read access mode" in str(exc).lower():
            raise QueryRefused(
                Message(N_("Refused by the server: writing in read access mode is not allowed."))
            ) from None
        raise QueryRefused(
            Message(N_("The server stopped the query: {code}: {error}"), code=str(exc.code), error=str(exc.message))
        ) from None
    except Neo4jError as exc:
        raise QueryRefused(
            Message(N_("The server stopped the query: {code}: {error}"), code=str(exc.code), error=str(exc.message))
        ) from None
    return ConsoleResult(
        columns,
        rows,
        truncated,
        query_type,
        time.perf_counter() - start,
        nodes,
        list(edges.values()),
        bytes=used,
        byte_capped=byte_capped,
        cut_cells=cut_cells,
    )


_CUT = "…"


def _bound(value: Any, limit: int) -> tuple[Any, int, bool]:
    """``(value kept, its estimated size in bytes, whether anything was cut)``.

    Strings are cut to ``limit`` UTF-8 bytes, lists and maps keep the items
    that fit (then ``"…"``); a node, relationship or path that does not fit
    whole becomes its short text, cut.

    Example
    -------
    >>> _bound("x" * 10, 4)
    ('xxxx…', 4, True)
    >>> _bound([1, 2, 3], 16)
    ([1, 2, '…'], 16, True)
    """
    from neo4j.graph import Node, Path, Relationship

    limit = max(limit, 0)
    if value is None or isinstance(value, (bool, int, float)):
        return value, 8, False
    if isinstance(value, str):
        data = value.encode("utf-8")
        if len(data) <= limit:
            return value, len(data), False
        return data[:limit].decode("utf-8", "ignore") + _CUT, limit, True
    if isinstance(value, (bytes, bytearray)):
        return (bytes(value), len(value), False) if len(value) <= limit else (bytes(value[:limit]), limit, True)
    if isinstance(value, (list, tuple)):
        out: list[Any] = []
        used = 0
        for item in value:
            kept, size, cut = _bound(item, limit - used)
            if cut or used + size > limit:
                return out + [_CUT], used, True
            out.append(kept)
            used += size
        return out, used, False
    if isinstance(value, dict):
        kept_map: dict[Any, Any] = {}
        used = 0
        for key, item in value.items():
            kept, size, cut = _bound(item, limit - used - len(str(key)))
            if cut or used + size + len(str(key)) > limit:
                kept_map[_CUT] = _CUT
                return kept_map, used, True
            kept_map[key] = kept
            used += size + len(str(key))
        return kept_map, used, False
    if isinstance(value, (Node, Relationship, Path)):
        size = _size(value)
        if size <= limit:
            return value, size, False
        text, used, _ = _bound(str(_plain(value)), limit)
        return text, used, True
    text = str(_plain(value))
    return _bound(text, limit)


def _size(value: Any) -> int:
    """Estimated bytes of a value (UTF-8 text, 8 per number)."""
    from neo4j.graph import Node, Path, Relationship

    if value is None or isinstance(value, (bool, int, float)):
        return 8
    if isinstance(value, str):
        return len(value.encode("utf-8"))
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    if isinstance(value, (list, tuple)):
        return sum(_size(v) for v in value)
    if isinstance(value, dict):
        return sum(len(str(k)) + _size(v) for k, v in value.items())
    if isinstance(value, Node):
        return 16 + sum(len(label) for label in value.labels) + _size(dict(value))
    if isinstance(value, Relationship):
        return 16 + len(value.type) + _size(dict(value))
    if isinstance(value, Path):
        return sum(_size(n) for n in value.nodes) + sum(_size(r) for r in value.relationships)
    return len(str(value))


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
        edges[value.element_id] = {
            "id": value.element_id,
            "source": value.start_node.element_id,
            "target": value.end_node.element_id,
            "type": value.type,
        }
    elif isinstance(value, (list, tuple)):
        for v in value:
            _collect_graph(v, nodes, edges)


def _plain(value: Any) -> Any:
    """A cell as plain Python: nodes, relationships and paths as short text,
    lists and maps kept (their items plain), other values as they are."""
    from neo4j.graph import Node, Path, Relationship

    if isinstance(value, Node):
        return f"({':'.join(value.labels)} {value.get('key', '')})"
    if isinstance(value, Relationship):
        return f"[:{value.type}]"
    if isinstance(value, Path):
        return " ".join(_plain(n) for n in value.nodes)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _display(value: Any) -> Any:
    """A plain (possibly masked) cell for the table: dates and times as ISO
    text, lists and maps as one line of text, other scalars as they are."""

    def text(v: Any) -> Any:
        if hasattr(v, "iso_format"):
            return v.iso_format()
        if isinstance(v, list):
            return [text(x) for x in v]
        if isinstance(v, dict):
            return {k: text(x) for k, x in v.items()}
        return v

    value = text(value)
    return str(value) if isinstance(value, (dict, list)) else value
