"""One graph contract, two stores.

``GraphStore`` is the narrow protocol both the embedded columnar store and
Neo4j implement. Ingest hands a store a :class:`GraphBatch` (one frame per
node label and per relationship, already normalised); the store merges it:
a node is unique by ``key``, a relationship by its end nodes plus the
relationship type's identity properties. Merging is idempotent: writing the
same batch twice changes nothing, and a property that is missing (null) in a
later batch leaves the stored value alone.

What a later non-null value does to a stored one is the write's ``policy``:
``"merge"`` (the later value wins: scores, findings, cases), ``"keep"`` (the
stored value stays: ingest, first delivery wins) or ``"replace"`` (the
batch's columns replace the stored ones, nulls included: an explicit
correction). One job at a time writes: see :mod:`ringscope.graph.locking`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import pandas as pd

from ringscope.graph.model import NODE_TYPES, REL_TYPES

__all__ = [
    "WRITE_POLICIES",
    "Detach",
    "GraphBatch",
    "GraphCounts",
    "GraphStore",
    "Progress",
    "open_store",
    "DEFAULT_STORE_PATH",
    "redact_uri",
    "split_credentials",
]

DEFAULT_STORE_PATH = ".ringscope"

#: progress callback: (stage description, units done, units total)
Progress = Callable[[str, int, int], None]

#: what a write does to a stored value: later value wins, stored value stays, or batch replaces
WRITE_POLICIES = ("merge", "keep", "replace")

#: relationships to drop before a write: name -> ("src" or "dst", keys of that end)
Detach = dict[str, tuple[str, Sequence[str]]]


@dataclass
class GraphBatch:
    """Nodes and relationships to merge into a store.

    ``nodes[label]`` has a ``key`` column plus any of the label's properties.
    ``relationships[name]`` (``name`` as in :data:`ringscope.graph.model.REL_TYPES`) has
    ``src`` and ``dst`` key columns plus identity and other properties.
    """

    nodes: dict[str, pd.DataFrame] = field(default_factory=dict)
    relationships: dict[str, pd.DataFrame] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for label, frame in self.nodes.items():
            if label not in NODE_TYPES:
                raise ValueError(f"Unknown node label {label!r} in batch")
            allowed = {"key", *NODE_TYPES[label].properties}
            extra = set(frame.columns) - allowed
            if "key" not in frame.columns or extra:
                raise ValueError(f"Nodes {label}: need a 'key' column; unknown columns {sorted(extra)}")
        for name, frame in self.relationships.items():
            if name not in REL_TYPES:
                raise ValueError(f"Unknown relationship {name!r} in batch")
            rt = REL_TYPES[name]
            allowed = {"src", "dst", *rt.identity, *rt.properties}
            extra = set(frame.columns) - allowed
            missing = {"src", "dst", *rt.identity} - set(frame.columns)
            if missing or extra:
                raise ValueError(f"Relationship {name}: missing {sorted(missing)}, unknown {sorted(extra)}")

    def size(self) -> int:
        """Number of node and relationship rows in the batch."""
        return sum(len(f) for f in self.nodes.values()) + sum(len(f) for f in self.relationships.values())


@dataclass(frozen=True)
class GraphCounts:
    """Node counts by label and relationship counts by type."""

    nodes: dict[str, int]
    relationships: dict[str, int]

    @property
    def total_nodes(self) -> int:
        return sum(self.nodes.values())

    @property
    def total_relationships(self) -> int:
        return sum(self.relationships.values())


@runtime_checkable
class GraphStore(Protocol):
    """What ingest, detectors and the app may ask of a store."""

    kind: str
    location: str

    def ensure_schema(self) -> None:
        """Create uniqueness constraints / indexes (idempotent)."""

    def lock(
        self, job: str | None = None, timeout: float | None = None, on_wait: Callable | None = None
    ) -> AbstractContextManager:
        """Hold the store's exclusive write lock for a whole job (reentrant in
        a thread); wait up to ``timeout`` s, then raise ``StoreBusy``."""

    def reading(self) -> AbstractContextManager:
        """A consistent view for several reads (no commit lands inside)."""

    def write(
        self,
        batch: GraphBatch,
        progress: Progress | None = None,
        *,
        policy: str = "merge",
        detach: Detach | None = None,
    ) -> None:
        """Merge ``batch`` into the store (idempotent) under the write lock.

        ``policy``: one of :data:`WRITE_POLICIES`; ``detach``: relationships
        dropped first, by the keys of one end."""

    def revision(self) -> str:
        """An opaque value that changes with every committed write through
        this protocol that changed stored data (ingest, ``--update``, findings,
        scores, cases); equal values mean the same stored graph. What saved
        derived state (``ringscope flag``'s index) is checked against."""

    def counts(self) -> GraphCounts:
        """Node counts by label and relationship counts by type (zeros included)."""

    def node_properties(self, label: str, keys: list[str], properties: list[str]) -> pd.DataFrame:
        """Return ``key`` plus ``properties`` for the stored nodes among ``keys``."""

    def relationship_properties(
        self, name: str, keys: list[str], properties: list[str], by: str = "src"
    ) -> pd.DataFrame:
        """Stored relationships ``name`` whose ``by`` end is among ``keys``:
        ``src``, ``dst``, identity and ``properties``."""

    def read_nodes(self, label: str, columns: list[str] | None = None) -> pd.DataFrame:
        """All nodes of ``label`` as columns (``key`` first): what whole-portfolio
        detectors read instead of talking to a database."""

    def read_relationships(self, name: str, columns: list[str] | None = None) -> pd.DataFrame:
        """All relationships ``Source-TYPE-Target`` as columns (``src``, ``dst`` first)."""

    def replace_derived(self, batch: GraphBatch, progress: Progress | None = None) -> None:
        """Replace what detectors wrote before (findings, SIMILAR_TO) by ``batch``:
        readers see the old findings or the new ones, each with its edges."""

    def close(self) -> None:
        """Release connections and files."""


def split_credentials(uri: str) -> tuple[str, tuple[str, str] | None]:
    """``uri`` without its ``user:password@`` part, and that user and password
    (percent-decoded), or ``None`` when it has none.

    Everything before the last ``@`` is taken as credentials: a password may
    hold ``@``, ``/`` or ``:``, a host never does.

    Example
    -------
    >>> split_credentials("bolt://neo4j:s%40cret@127.0.0.1:7687")
    ('bolt://127.0.0.1:7687', ('neo4j', 's@cret'))
    >>> split_credentials("neo4j://db.example.cn:7687")
    ('neo4j://db.example.cn:7687', None)
    """
    from urllib.parse import unquote

    scheme, sep, rest = str(uri).partition("://")
    if not sep or "@" not in rest:
        return str(uri), None
    userinfo, _, host = rest.rpartition("@")
    user, _, password = userinfo.partition(":")
    return f"{scheme}://{host}", (unquote(user), unquote(password))


def redact_uri(uri: str) -> str:
    """``uri`` as it may be shown (messages, summaries, the dashboard): a
    password in it becomes ``***``; the user name stays.

    Example
    -------
    >>> redact_uri("bolt://neo4j:secret@127.0.0.1:7687")
    'bolt://neo4j:***@127.0.0.1:7687'
    >>> redact_uri("bolt://127.0.0.1:7687"), redact_uri(".ringscope")
    ('bolt://127.0.0.1:7687', '.ringscope')
    """
    bare, credentials = split_credentials(uri)
    if credentials is None:
        return bare
    scheme, _, host = bare.partition("://")
    user, password = credentials
    return f"{scheme}://{user}{':***' if password else ''}@{host}"


def open_store(path: str | None = None, neo4j_uri: str | None = None) -> GraphStore:
    """Open the store the user asked for.

    Neo4j when ``neo4j_uri`` (or the ``RINGSCOPE_NEO4J_URI`` environment
    variable) is given, else the embedded store at ``path`` (default
    ``./.ringscope``).
    """
    uri = neo4j_uri or (None if path else os.environ.get("RINGSCOPE_NEO4J_URI"))
    if uri:
        from ringscope.graph.neo4j_store import Neo4jStore

        return Neo4jStore(uri)
    from ringscope.graph.embedded import EmbeddedStore

    return EmbeddedStore(path or DEFAULT_STORE_PATH)
