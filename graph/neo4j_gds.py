"""Whole-graph algorithms inside Neo4j, through Graph Data Science (OpenGDS).

Instead of reading the whole graph into Python, each function projects the
subgraph it needs into GDS's in-memory catalog (a Cypher projection: only
the edges asked for), runs one algorithm in stream mode, reads the result
back as one record of rows, and drops the projection — always, also when the
projection or the algorithm fails. Graph names are unique per call
(``ringscope_<what>_<uuid>``), so concurrent calls never meet.

Cypher is built here from the model's own labels and types (checked against
:data:`ringscope.graph.model.REL_TYPES`); every key travels as a
``$parameter``.

* :func:`connected_components` — weakly connected components of applications
  through a given set of identifier nodes, per relationship (a phone given
  as the applicant's phone and the same phone given as an emergency contact
  are two nodes, as they are two identifier kinds in
  :func:`ringscope.detectors.rings.ring_components`), plus each linked
  application's applicant person (and optionally their resolved entity).
* :func:`strong_components` — strongly connected components (size >= 2) of
  the guarantee graph (guarantor → borrower, persons and companies).
* :func:`communities` — Louvain communities of applications and the
  identifiers two or more of them share (for analysts).

Projected node ids are ``id(node) * 16 + slot``: slot 0 an application,
1 a person, 2.. one per relationship of the glue. Everything runs as the
store's user; nothing here writes to the database.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ringscope.graph.model import REL_TYPES

__all__ = [
    "GUARANTEE_RELS",
    "IDENTIFIER_RELS",
    "APPLICANT_REL",
    "connected_components",
    "strong_components",
    "communities",
    "projections",
]

#: guarantor → borrower, over the four label pairs
GUARANTEE_RELS = tuple(f"{s}-GUARANTEES-{d}" for s in ("Person", "Company") for d in ("Person", "Company"))
#: application → identifier relationships that applications can share
IDENTIFIER_RELS = (
    "Application-HAS_PHONE-Phone",
    "Application-HAS_DEVICE-Device",
    "Application-HAS_IP-IP",
    "Application-HAS_ACCOUNT-BankAccount",
    "Application-HAS_ADDRESS-Address",
    "Application-HAS_EMAIL-Email",
    "Application-EMERGENCY_CONTACT-Phone",
)
APPLICANT_REL = "Person-APPLIED-Application"

_SLOTS = 16  # projected id = id(node) * _SLOTS + slot
_APP, _PERSON = 0, 1


def _app_rel(name: str) -> Any:
    rt = REL_TYPES.get(name)
    if rt is None or rt.source != "Application":
        raise ValueError(f"{name!r} is not a relationship from Application in the model")
    return rt


def _glue_union(glue: Sequence[str]) -> str:
    """One branch per glue relationship: (application id, projected identifier id)."""
    branches = []
    for i, name in enumerate(glue):
        rt = _app_rel(name)
        branches.append(
            f"MATCH (b:{rt.target}) WHERE b.key IN $glue_{i} "
            f"MATCH (a:Application)-[:{rt.type}]->(b) RETURN id(a) AS app, id(b) * {_SLOTS} + {i + 2} AS node"
        )
    return " UNION ALL ".join(branches)


def _components_query(glue: Sequence[str], entities: bool) -> str:
    union = _glue_union(glue)
    applicant = REL_TYPES[APPLICANT_REL]
    parts = [
        f"CALL () {{ {union} }} RETURN app * {_SLOTS} AS s, node AS t",
        f"CALL () {{ {union} }} WITH DISTINCT app "
        f"MATCH (p:{applicant.source})-[:{applicant.type}]->(a:Application) WHERE id(a) = app "
        f"RETURN app * {_SLOTS} AS s, id(p) * {_SLOTS} + {_PERSON} AS t",
    ]
    if entities:
        parts.append(
            "UNWIND range(0, size($entity_src) - 1) AS i "
            "MATCH (p:Person {key: $entity_src[i]}) MATCH (q:Person {key: $entity_dst[i]}) "
            f"RETURN id(p) * {_SLOTS} + {_PERSON} AS s, id(q) * {_SLOTS} + {_PERSON} AS t"
        )
    body = " UNION ALL ".join(parts)
    return f"CALL () {{ {body} }} RETURN gds.graph.project($graph, s, t) AS g"


_WCC_APPS = (
    "CALL gds.wcc.stream($graph) YIELD nodeId, componentId "
    f"WITH nodeId, componentId WHERE nodeId % {_SLOTS} = {_APP} "
    f"MATCH (a:Application) WHERE id(a) = nodeId / {_SLOTS} "
    "RETURN collect([a.key, componentId]) AS rows"
)
_SCC_NODES = (
    "CALL gds.scc.stream($graph) YIELD nodeId, componentId "
    "MATCH (n) WHERE id(n) = nodeId RETURN collect([n.key, componentId]) AS rows"
)
_LOUVAIN_NODES = (
    "CALL gds.louvain.stream($graph, $config) YIELD nodeId, communityId "
    "MATCH (n) WHERE id(n) = nodeId "
    "RETURN collect([labels(n)[0], n.key, communityId]) AS rows"
)
_DROP = "CALL gds.graph.drop($graph, false) YIELD graphName RETURN graphName"
_LIST = "CALL gds.graph.list() YIELD graphName RETURN collect(graphName) AS names"


@contextlib.contextmanager
def _projection(driver, database: str, what: str) -> Iterator[str]:
    """A unique graph name, dropped from the GDS catalog on the way out
    (also after an error in the projection or the algorithm)."""
    name = f"ringscope_{what}_{uuid.uuid4().hex}"
    try:
        yield name
    finally:
        driver.execute_query(_DROP, graph=name, database_=database)


def _rows(driver, database: str, query: str, **params) -> list:
    records, _, _ = driver.execute_query(query, parameters_=params, database_=database)
    return records[0]["rows"] if records else []


def _renumbered(keys: np.ndarray, labels: np.ndarray, name: str, index_name: str) -> pd.Series:
    """key → component numbered 0.. in order of each component's smallest key:
    the same numbers whatever ids the server gave."""
    if len(keys) == 0:
        return pd.Series(dtype="int64", name=name, index=pd.Index([], dtype=object, name=index_name))
    order = np.argsort(keys.astype(str), kind="stable")
    keys, labels = keys[order], labels[order]
    numbers, _ = pd.factorize(labels)
    return pd.Series(numbers.astype("int64"), index=pd.Index(keys, dtype=object, name=index_name), name=name)


def connected_components(
    driver,
    database: str,
    glue: Mapping[str, Sequence[str]],
    entities: pd.Series | None = None,
) -> pd.Series:
    """Weakly connected components of applications through gluing identifiers,
    computed by GDS WCC inside Neo4j.

    Parameters
    ----------
    driver : neo4j.Driver
    database : str
    glue : mapping
        Relationship name (``Application-TYPE-Label``) → keys of the identifier
        nodes that glue through it; an application linked through none of
        them is left out.
    entities : Series, optional
        Person key → resolved entity (a Person key): persons of one entity
        glue their applications together. Without it each person is its own.

    Returns
    -------
    Series application key → component number (0.. in order of each
    component's smallest application key), only the linked applications;
    the partition of :func:`ringscope.detectors.rings.ring_components` when
    ``glue`` holds its gluing identifiers.

    Example
    -------
    >>> connected_components(None, "neo4j", {}).empty  # nothing glues: no query
    True

    Notes
    -----
    The projection holds the gluing links and their applicants only (index
    seeks by key); WCC is O(n + m) on the server.
    """
    glue = {name: sorted(map(str, keys)) for name, keys in glue.items() if len(keys)}
    if not glue:
        return _renumbered(np.array([], dtype=object), np.array([]), "component", "application_id")
    if len(glue) > _SLOTS - 2:
        raise ValueError(f"At most {_SLOTS - 2} glue relationships; got {len(glue)}")
    names = sorted(glue)
    params: dict[str, Any] = {f"glue_{i}": glue[name] for i, name in enumerate(names)}
    use_entities = entities is not None and len(entities) > 0
    if use_entities:
        params["entity_src"] = [str(k) for k in entities.index]
        params["entity_dst"] = [str(v) for v in entities.to_numpy()]
    with _projection(driver, database, "wcc") as graph:
        summary = driver.execute_query(
            _components_query(tuple(names), use_entities), parameters_={**params, "graph": graph}, database_=database
        )[0]
        # no row at all (no stored identifier among the keys): no graph was made
        rows = _rows(driver, database, _WCC_APPS, graph=graph) if summary and summary[0]["g"] else []
    keys = np.array([r[0] for r in rows], dtype=object)
    return _renumbered(keys, np.array([r[1] for r in rows], dtype=np.int64), "component", "application_id")


def strong_components(driver, database: str, relationships: Sequence[str] = GUARANTEE_RELS) -> pd.Series:
    """Strongly connected components (size >= 2) of ``relationships``
    (default: guarantor → borrower), computed by GDS SCC inside Neo4j.

    Returns
    -------
    Series node key → component number (0.. in order of each component's
    smallest key), only nodes in components of two or more: what
    :func:`ringscope.detectors.components.strong_components` gives on the
    same edges.

    Example
    -------
    >>> strong_components(None, "neo4j", ()).empty
    True

    Notes
    -----
    Projects only the edges of ``relationships``; SCC is O(n + m).
    """
    if not relationships:
        return _renumbered(np.array([], dtype=object), np.array([]), "component", "key")
    branches = []
    for name in relationships:
        rt = REL_TYPES[name]
        branches.append(f"MATCH (a:{rt.source})-[:{rt.type}]->(b:{rt.target}) RETURN id(a) AS s, id(b) AS t")
    project = f"CALL () {{ {' UNION ALL '.join(branches)} }} RETURN gds.graph.project($graph, s, t) AS g"
    with _projection(driver, database, "scc") as graph:
        summary = driver.execute_query(project, graph=graph, database_=database)[0]
        rows = _rows(driver, database, _SCC_NODES, graph=graph) if summary and summary[0]["g"] else []
    if not rows:
        return _renumbered(np.array([], dtype=object), np.array([]), "component", "key")
    keys = np.array([r[0] for r in rows], dtype=object)
    labels = np.array([r[1] for r in rows], dtype=np.int64)
    keep = np.bincount(pd.factorize(labels)[0])[pd.factorize(labels)[0]] >= 2
    return _renumbered(keys[keep], labels[keep], "component", "key")


def communities(
    driver,
    database: str,
    relationships: Sequence[str] = IDENTIFIER_RELS,
    *,
    min_applications: int = 2,
    max_levels: int = 10,
    tolerance: float = 1e-4,
) -> pd.DataFrame:
    """Louvain communities of applications and the identifiers they share,
    computed by GDS inside Neo4j (for analysts).

    Parameters
    ----------
    driver : neo4j.Driver
    database : str
    relationships : sequence of str
        Application → identifier relationships projected (undirected).
    min_applications : int
        An identifier is projected when at least this many applications use
        it (one used by a single application links nothing).
    max_levels, tolerance : Louvain's own settings.

    Returns
    -------
    DataFrame ``label``, ``key``, ``community`` (0.. in order of each
    community's smallest ``label``/``key``): one row per projected node.
    Louvain runs single-threaded (``concurrency`` 1), so the same graph
    gives the same communities on every run.

    Example
    -------
    >>> list(communities(None, "neo4j", ()).columns)
    ['label', 'key', 'community']

    Notes
    -----
    Projection O(links of shared identifiers); Louvain about O(m log n).
    """
    empty = pd.DataFrame({"label": [], "key": [], "community": pd.Series([], dtype="int64")})
    if not relationships:
        return empty
    branches = []
    for name in relationships:
        rt = _app_rel(name)
        branches.append(
            f"MATCH (b:{rt.target}) WHERE COUNT {{ (b)<-[:{rt.type}]-(:Application) }} >= $min_applications "
            f"MATCH (a:Application)-[:{rt.type}]->(b) RETURN id(a) AS s, id(b) AS t"
        )
    project = (
        f"CALL () {{ {' UNION ALL '.join(branches)} }} "
        "RETURN gds.graph.project($graph, s, t, {}, {undirectedRelationshipTypes: ['*']}) AS g"
    )
    config = {"concurrency": 1, "maxLevels": int(max_levels), "tolerance": float(tolerance)}
    with _projection(driver, database, "louvain") as graph:
        summary = driver.execute_query(
            project, graph=graph, min_applications=int(min_applications), database_=database
        )[0]
        rows = _rows(driver, database, _LOUVAIN_NODES, graph=graph, config=config) if summary[0]["g"] else []
    if not rows:
        return empty
    frame = pd.DataFrame(rows, columns=["label", "key", "community"])
    frame = frame.sort_values(["label", "key"], kind="stable").reset_index(drop=True)
    frame["community"] = pd.factorize(frame["community"])[0].astype("int64")
    return frame


def projections(driver, database: str) -> list[str]:
    """Names of the projected graphs in the GDS catalog (what a test checks is empty).

    Example
    -------
    >>> callable(projections)
    True
    """
    records, _, _ = driver.execute_query(_LIST, database_=database)
    return list(records[0]["names"]) if records else []
