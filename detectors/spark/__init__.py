"""The Spark engine: the detectors' whole-portfolio passes on Apache Spark.

``ringscope detect --engine spark [--spark-master URL]`` runs with a
:class:`SparkEngine`. Today it takes the shared-identifier rings' hub table
and connected components (:mod:`ringscope.detectors.spark.rings`), the
velocity bursts' windows (:mod:`ringscope.detectors.spark.velocity`) and the
cash-flow checks' peer groups (:mod:`ringscope.detectors.spark.cashflow`). Over an
embedded store Spark reads the links straight from the store's Parquet
files (:mod:`ringscope.detectors.spark.links`), so the whole book's link
table is never built in Python; over any other store (Neo4j, a
sub-portfolio) the pandas links are handed over as Arrow tables. The small
results (one row per shared identifier, one per linked application, the
linked applications' own links) are collected and finished by the same
Python code as in process, so the findings are the same.

Example
-------
>>> engine = SparkEngine("local[1]")   # nothing starts until a pass needs Spark
>>> engine.name, engine.started
('spark', False)
>>> engine.close()
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ringscope.detectors.spark.session import (
    SparkStartError,
    check_master,
    is_local,
    quiet,
    remove_scratch,
    scratch_dir,
    start_session,
)

__all__ = ["SparkEngine", "SparkStartError", "DEFAULT_MASTER"]

DEFAULT_MASTER = "local[*]"


class SparkEngine:
    """Runs the detectors' whole-portfolio passes on Spark.

    Parameters
    ----------
    master : str
        A Spark master URL: ``local[*]`` (default: every core of this
        machine), ``local[N]``, ``spark://HOST:7077``, ``yarn``,
        ``k8s://https://HOST:PORT``. Checked at once (a :class:`ValueError`);
        Spark itself starts on first use.
    conf : dict, optional
        More Spark settings (``spark.executor.memory`` …).
    session : SparkSession, optional
        A session to use instead of starting one (left running on close).

    Use it as a context manager, or call :meth:`close`: the session this
    engine started is stopped and its scratch folder removed.
    """

    name = "spark"

    def __init__(self, master: str = DEFAULT_MASTER, conf: dict[str, str] | None = None, session: Any = None) -> None:
        self.master = check_master(master)
        self.conf = dict(conf or {})
        self._session = session
        self._owned = False
        self._scratch: Path | None = None
        #: the last links frame handed to Spark and its Spark copy (hubs, then components, read the same links)
        self._links: tuple[pd.DataFrame, Any] | None = None

    @property
    def started(self) -> bool:
        return self._session is not None

    @property
    def local(self) -> bool:
        return is_local(self.master)

    @property
    def session(self) -> Any:
        """The Spark session, started on first use (:class:`SparkStartError` if it cannot be)."""
        if self._session is None:
            self._scratch = scratch_dir()
            try:
                self._session, self._owned = start_session(self.master, self._scratch, "ringscope-detect", self.conf)
            except BaseException:
                remove_scratch(self._scratch)
                self._scratch = None
                raise
        return self._session

    def start(self) -> SparkEngine:
        """Start Spark now (to fail early, before any detector runs)."""
        _ = self.session
        return self

    def links_of(self, portfolio: Any) -> Any:
        """The rings' link table: over a whole embedded store, a
        :class:`~ringscope.detectors.spark.links.SparkLinks` read by Spark
        from the store's Parquet files (one per portfolio and entities);
        otherwise the pandas table of :func:`ringscope.detectors.rings.entity_links`."""
        from ringscope.detectors.rings import KIND_STRENGTH, entity_links
        from ringscope.detectors.spark.links import parquet_links

        store = getattr(portfolio, "store", None)
        if store is None or not hasattr(store, "table_path"):
            return entity_links(portfolio)
        held = portfolio.derived.get("spark_links")
        if held is None:
            entities = portfolio.person_entity
            if entities is None:
                entities = portfolio._stored_entities("Person")
            with quiet():
                held = parquet_links(self.session, store, list(KIND_STRENGTH), entities)
            portfolio.derived["spark_links"] = held  # dropped with the other derived tables when entities change
        return held

    def links_of_applications(self, links: Any, app_ids: pd.Index) -> pd.DataFrame:
        """The links of ``app_ids`` in the link table's order (collected from Spark when they are there)."""
        from ringscope.detectors.spark.links import SparkLinks

        if isinstance(links, SparkLinks):
            with quiet():
                return links.of_applications(app_ids)
        return links[links["application_id"].isin(app_ids)]

    def identifier_hubs(self, links: Any, **params: Any) -> pd.DataFrame:
        """:func:`ringscope.detectors.rings.identifier_hubs`, its passes in Spark."""
        from ringscope.detectors.spark.rings import spark_identifier_hubs

        frame, reading = self._frame(links)
        with quiet(), reading:
            return spark_identifier_hubs(self.session, links, frame=frame, **params)

    def ring_components(self, links: Any, hubs: pd.DataFrame) -> pd.Series:
        """:func:`ringscope.detectors.rings.ring_components`, labelled in Spark."""
        from ringscope.detectors.spark.rings import spark_ring_components

        frame, reading = self._frame(links)
        with quiet(), reading:
            return spark_ring_components(self.session, links, hubs, frame=frame)

    def velocity_bursts(
        self, detector: Any, portfolio: Any, statistics: Any = None
    ) -> tuple[pd.DataFrame, pd.DataFrame] | None:
        """:meth:`ringscope.detectors.velocity.DeviceVelocity.bursts`, its windows
        counted in Spark over an embedded store's files
        (:func:`ringscope.detectors.spark.velocity.spark_velocity_bursts`): the
        portfolio's applications are not read into pandas. In process over any
        other store, or when the portfolio already holds its applications
        (:func:`_holds_applications`)."""
        from ringscope.detectors.engine import IN_PROCESS
        from ringscope.detectors.spark.velocity import spark_velocity_bursts

        store = _files_of(portfolio)
        if store is None or _holds_applications(portfolio):
            return IN_PROCESS.velocity_bursts(detector, portfolio, statistics)
        with quiet(), _reading(store):
            found = spark_velocity_bursts(self.session, store, detector, statistics)
        if found is NotImplemented:  # times stored as something else than timestamps
            return IN_PROCESS.velocity_bursts(detector, portfolio, statistics)
        return found

    def cashflow_peer_groups(self, detector: Any, portfolio: Any) -> tuple[pd.DataFrame, Any]:
        """:meth:`ringscope.detectors.cashflow.CashflowChecks.peer_groups`, the
        book's peer groups learnt in Spark over an embedded store's files
        (:func:`ringscope.detectors.spark.cashflow.spark_cashflow_peer_groups`):
        only the applications some check may fail come back to Python. In
        process over any other store, or when the portfolio already holds its
        applications (:func:`_holds_applications`)."""
        from ringscope.detectors.engine import IN_PROCESS
        from ringscope.detectors.spark.cashflow import spark_cashflow_peer_groups

        store = _files_of(portfolio)
        if store is None or _holds_applications(portfolio):
            return IN_PROCESS.cashflow_peer_groups(detector, portfolio)
        with quiet(), _reading(store):
            return spark_cashflow_peer_groups(self.session, store, detector)

    def links_of_kinds(self, portfolio: Any, kinds: tuple[str, ...], app_ids: pd.Index) -> pd.DataFrame:
        """The links of ``app_ids`` of ``kinds`` (:meth:`ringscope.detectors.engine.InProcess.links_of_kinds`),
        collected from the store's files by Spark over an embedded store."""
        import dataclasses

        from ringscope.detectors.engine import IN_PROCESS
        from ringscope.detectors.spark.links import parquet_links

        store = _files_of(portfolio)
        if store is None:
            return IN_PROCESS.links_of_kinds(portfolio, kinds, app_ids)
        with quiet():
            links = dataclasses.replace(parquet_links(self.session, store, list(kinds)), applicants=None)
            table = links.of_applications(app_ids)[["application_id", "kind", "identifier"]]
        # kind by kind in the order asked (each already in application, identifier order)
        rank = table["kind"].map({kind: n for n, kind in enumerate(kinds)}).to_numpy()
        return table.iloc[np.argsort(rank, kind="stable")].reset_index(drop=True)

    def _frame(self, links: Any) -> tuple[Any, Any]:
        """``links`` in Spark, kept for the next pass over the same links, and
        what to hold while a pass reads it (the store's read lock for files)."""
        from ringscope.detectors.spark.links import SparkLinks
        from ringscope.detectors.spark.rings import LINK_COLUMNS, to_spark

        if self._links is None or self._links[0] is not links:
            if self._links is not None:
                self._links[1].unpersist()
            if isinstance(links, SparkLinks):
                # the links of identifiers held by two or more applications: the passes read no
                # other; memory and disk, so a book larger than the JVM's heap spills to scratch
                frame = links.shared().persist(_memory_and_disk())
            else:
                frame = to_spark(self.session, links, LINK_COLUMNS).cache()
            self._links = (links, frame)
        reading = links.reading() if isinstance(links, SparkLinks) else contextlib.nullcontext()
        return self._links[1], reading

    def close(self) -> None:
        """Stop the session this engine started and remove its scratch files."""
        if self._session is not None and self._owned:
            with quiet():
                self._session.stop()
        self._session, self._owned, self._links = None, False, None
        if self._scratch is not None:
            remove_scratch(self._scratch)
            self._scratch = None

    def __enter__(self) -> SparkEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SparkEngine({self.master!r})"


def _files_of(portfolio: Any) -> Any:
    """The embedded store whose files Spark reads for ``portfolio`` (``None``: a
    sub-portfolio or another store, whose passes run in process)."""
    store = getattr(portfolio, "store", None)
    return store if store is not None and hasattr(store, "table_path") else None


def _holds_applications(portfolio: Any) -> bool:
    """Whether ``portfolio`` has already read its applications into this process
    (identity resolution, which runs before the other detectors, reads them).
    A pass over the applications then costs less on the table in hand than in
    Spark (at 1M, the cash-flow pass: seconds against minutes) and Spark would
    save no memory: the passes that read the applications run in Spark only when
    the portfolio has not read them."""
    return "applications" in getattr(portfolio, "__dict__", {})


def _reading(store: Any) -> Any:
    """The store's read lock, for the time a pass reads its files."""
    reading = getattr(store, "reading", None)
    return reading() if reading is not None else contextlib.nullcontext()


def _memory_and_disk() -> Any:
    from pyspark import StorageLevel

    return StorageLevel.MEMORY_AND_DISK
