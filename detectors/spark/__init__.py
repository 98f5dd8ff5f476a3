"""The Spark engine: the detectors' whole-portfolio passes on Apache Spark.

``ringscope detect --engine spark [--spark-master URL]`` runs with a
:class:`SparkEngine`. Today it takes the shared-identifier rings' hub table
and connected components (:mod:`ringscope.detectors.spark.rings`); the
links are handed to Spark as Arrow tables, the small results (one row per
shared identifier, one per linked application) are collected and finished
by the same Python code as in process, so the findings are the same.

Example
-------
>>> engine = SparkEngine("local[1]")   # nothing starts until a pass needs Spark
>>> engine.name, engine.started
('spark', False)
>>> engine.close()
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
    """Runs the rings' whole-portfolio passes on Spark.

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

    def identifier_hubs(self, links: pd.DataFrame, **params: Any) -> pd.DataFrame:
        """:func:`ringscope.detectors.rings.identifier_hubs`, its passes in Spark."""
        from ringscope.detectors.spark.rings import spark_identifier_hubs

        with quiet():
            return spark_identifier_hubs(self.session, links, frame=self._frame(links), **params)

    def ring_components(self, links: pd.DataFrame, hubs: pd.DataFrame) -> pd.Series:
        """:func:`ringscope.detectors.rings.ring_components`, labelled in Spark."""
        from ringscope.detectors.spark.rings import spark_ring_components

        with quiet():
            return spark_ring_components(self.session, links, hubs, frame=self._frame(links))

    def _frame(self, links: pd.DataFrame) -> Any:
        """``links`` in Spark, kept for the next pass over the same frame."""
        from ringscope.detectors.spark.rings import LINK_COLUMNS, to_spark

        if self._links is None or self._links[0] is not links:
            if self._links is not None:
                self._links[1].unpersist()
            self._links = (links, to_spark(self.session, links, LINK_COLUMNS).cache())
        return self._links[1]

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
