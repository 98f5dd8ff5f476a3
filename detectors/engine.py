"""Where the whole-portfolio passes of the detectors run.

A detector asks an :class:`Engine` for the passes whose cost grows with
the whole book — today the shared-identifier rings' link table
(:meth:`Engine.links_of`: a pandas frame in process, a Spark DataFrame read
from the store's Parquet files in Spark), their hub table
(:func:`ringscope.detectors.rings.identifier_hubs`) and their connected
components (:func:`ringscope.detectors.rings.ring_components`); the velocity
bursts' windows over every device, IP and IP range
(:meth:`Engine.velocity_bursts`) and the links of their members
(:meth:`Engine.links_of_kinds`); the cash-flow checks' peer groups
(:meth:`Engine.cashflow_peer_groups`) — and
finishes the small results itself, with the same Python code whichever
engine ran them. The default, :class:`InProcess`, calls those functions in
this process; :class:`ringscope.detectors.spark.SparkEngine` runs them on
Apache Spark (``ringscope detect --engine spark``). Both return the same
frames, so findings do not depend on the engine.

A portfolio carries its engine (``portfolio.engine``, given by
``run_detectors(..., engine=...)``); :func:`engine_of` reads it, the
in-process one when none was given.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from ringscope.detectors.keys import values_at

__all__ = ["Engine", "InProcess", "IN_PROCESS", "engine_of"]


@runtime_checkable
class Engine(Protocol):
    """The whole-portfolio passes a detector may hand to an engine.

    ``links`` is the rings' link table (``application_id``, ``kind``,
    ``identifier``, ``entity``: :func:`ringscope.detectors.rings.entity_links`).
    """

    name: str

    def links_of(self, portfolio: Any) -> Any:
        """The rings' link table of ``portfolio``, in the form this engine's passes take."""
        ...

    def links_of_applications(self, links: Any, app_ids: pd.Index) -> pd.DataFrame:
        """The rows of ``links`` (from :meth:`links_of`) for ``app_ids``, as
        pandas, in the link table's order: what a ring's scoring reads."""
        ...

    def identifier_hubs(
        self,
        links: pd.DataFrame,
        *,
        fence_mads: float = 3.0,
        min_hub_people: int = 5,
        cohesion_threshold: float = 0.5,
        labels: pd.Series | None = None,
    ) -> pd.DataFrame:
        """The hub table of :func:`ringscope.detectors.rings.identifier_hubs`."""
        ...

    def ring_components(self, links: pd.DataFrame, hubs: pd.DataFrame) -> pd.Series:
        """The components of :func:`ringscope.detectors.rings.ring_components`."""
        ...

    def velocity_bursts(
        self, detector: Any, portfolio: Any, statistics: Any = None
    ) -> tuple[pd.DataFrame, pd.DataFrame] | None:
        """The clustered applications of :meth:`ringscope.detectors.velocity.DeviceVelocity.bursts`
        and the applications their ``row`` points into (at least the clustered ones)."""
        ...

    def links_of_kinds(self, portfolio: Any, kinds: tuple[str, ...], app_ids: pd.Index) -> pd.DataFrame:
        """``application_id``, ``kind``, ``identifier``: the links of ``app_ids`` of
        ``kinds`` (kind by kind in ``kinds`` order, each in its table's order)."""
        ...

    def cashflow_peer_groups(self, detector: Any, portfolio: Any) -> tuple[pd.DataFrame, Any]:
        """:meth:`ringscope.detectors.cashflow.CashflowChecks.peer_groups`: the
        statistics of the whole book's declared figures, and the declared rows
        of (at least) every application some check may fail under them."""
        ...


class InProcess:
    """The default engine: pandas and scipy in this process.

    Example
    -------
    >>> links = pd.DataFrame([("a", "device", "d", "p"), ("b", "device", "d", "q")],
    ...                      columns=["application_id", "kind", "identifier", "entity"])
    >>> comps = IN_PROCESS.ring_components(links, IN_PROCESS.identifier_hubs(links))
    >>> bool(comps["a"] == comps["b"])
    True
    """

    name = "embedded"

    def links_of(self, portfolio: Any) -> pd.DataFrame:
        from ringscope.detectors.rings import entity_links

        return entity_links(portfolio)

    def links_of_applications(self, links: pd.DataFrame, app_ids: pd.Index) -> pd.DataFrame:
        return links[links["application_id"].isin(app_ids)]

    def identifier_hubs(self, links: pd.DataFrame, **params: Any) -> pd.DataFrame:
        from ringscope.detectors.rings import identifier_hubs  # rings imports this module

        return identifier_hubs(links, **params)

    def ring_components(self, links: pd.DataFrame, hubs: pd.DataFrame) -> pd.Series:
        from ringscope.detectors.rings import ring_components

        return ring_components(links, hubs)

    def velocity_bursts(
        self, detector: Any, portfolio: Any, statistics: Any = None
    ) -> tuple[pd.DataFrame, pd.DataFrame] | None:
        return detector.bursts(portfolio, statistics)

    def cashflow_peer_groups(self, detector: Any, portfolio: Any) -> tuple[pd.DataFrame, Any]:
        return detector.peer_groups(portfolio)

    def links_of_kinds(self, portfolio: Any, kinds: tuple[str, ...], app_ids: pd.Index) -> pd.DataFrame:
        frames = []
        for kind in kinds:
            table = portfolio.link_table(kind)
            if _few_of_many(portfolio, len(app_ids), len(table)):
                # a few applications of a large book: their rows through the book's row map of
                # the table (built once, shared with the subsets' cuts of it), not an ``isin``
                # over every link of the kind (~12 ms a kind per call at 200k, O(book))
                table = table.iloc[portfolio.rows_where(f"links:{kind}", "application_id", app_ids)]
            else:
                table = table[table["application_id"].isin(app_ids)]
            if len(table):
                frames.append(table[["application_id", "identifier"]].assign(kind=kind))
        if not frames:
            return pd.DataFrame({"application_id": [], "kind": [], "identifier": []}, dtype=object)
        return pd.concat(frames, ignore_index=True)[["application_id", "kind", "identifier"]]

    def link_triples(self, portfolio: Any, kinds: tuple[str, ...], app_ids: pd.Index) -> list[tuple[Any, str, Any]]:
        """:meth:`links_of_kinds` as ``(application_id, kind, identifier)``
        tuples, the same rows in the same order, without a frame: for a few
        applications, whose frame cost more than its rows (a selection, an
        ``assign`` and a concatenation per kind)."""
        out: list[tuple[Any, str, Any]] = []
        for kind in kinds:
            table = portfolio.link_table(kind)
            if _few_of_many(portfolio, len(app_ids), len(table)):
                rows = portfolio.rows_where(f"links:{kind}", "application_id", app_ids)
            else:
                rows = np.flatnonzero(table["application_id"].isin(app_ids).to_numpy(dtype=bool))
            if len(rows):
                apps, idents = values_at(table["application_id"], rows), values_at(table["identifier"], rows)
                out.extend(zip(apps, [kind] * len(rows), idents, strict=True))
        return out

    def close(self) -> None:
        """Nothing to release."""

    def __repr__(self) -> str:
        return "InProcess()"


IN_PROCESS = InProcess()

#: below this many rows a table is scanned (``isin``) rather than given a row map of its own
ROW_MAP_MIN_ROWS = 20_000


def _few_of_many(portfolio: Any, wanted: int, rows: int) -> bool:
    """Whether ``wanted`` applications are few enough, among ``rows`` link
    rows, to find through :meth:`Portfolio.rows_where`: a whole book (not a
    sub-portfolio, whose maps would be built for one call) of at least
    :data:`ROW_MAP_MIN_ROWS` rows, asked for at most one application in 100."""
    return (
        rows >= ROW_MAP_MIN_ROWS
        and wanted * 100 <= rows
        and hasattr(portfolio, "rows_where")
        and getattr(portfolio, "parent", None) is None
    )


def engine_of(portfolio: Any) -> Engine:
    """The engine ``portfolio`` carries, :data:`IN_PROCESS` when none.

    Example
    -------
    >>> engine_of(object()).name
    'embedded'
    """
    engine = getattr(portfolio, "engine", None)
    return IN_PROCESS if engine is None else engine
