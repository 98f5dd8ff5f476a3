"""The rings' link table read by Spark straight from the embedded store's Parquet files.

:func:`ringscope.detectors.rings.entity_links` builds the link table in
pandas from the whole portfolio (every identifier relationship, the
applicant of every application, the resolved entities): several copies of
the book's largest table in this process. :func:`parquet_links` builds the
same rows inside Spark from the store's own files — ``rels/<Application-
HAS_x-X>.parquet`` for each ring kind, ``rels/Person-APPLIED-Application``
and ``nodes/Application`` for the applicant — so Python never holds them;
only the resolved entities (the keys identity resolution merged, a small
map) cross from Python. :class:`SparkLinks` carries that frame to the
engine's passes, and :meth:`SparkLinks.of_applications` collects the links
of a few applications (rings' members) in the order the pandas table has
them: kind in :data:`ringscope.detectors.portfolio.LINK_KINDS` order, then
application and identifier in code-point order (the store's identity sort).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ringscope.detectors.portfolio import LINK_KINDS

__all__ = ["SparkLinks", "parquet_links", "reads_parquet"]

LINK_COLUMNS = ["application_id", "kind", "identifier", "entity"]


@dataclass
class SparkLinks:
    """The rings' link table as a Spark DataFrame read from a store's files.

    ``frame`` has the columns of :func:`ringscope.detectors.rings.entity_links`
    (``application_id``, ``kind``, ``identifier``, ``entity``, all text),
    built from ``rows`` and ``applicants`` (kept apart, so a pass joins the
    applicants only to the links it needs);
    ``files`` are the Parquet files it reads; ``store`` is held shared for
    reading while a pass runs, so no commit lands half-way through one.
    """

    #: ``application_id``, ``kind``, ``identifier``: every stored link of the ring kinds
    rows: Any
    #: ``application_id``, ``entity``: each application's resolved applicant (``None``: none stored)
    applicants: Any
    files: list[Path]
    store: Any = None

    @property
    def frame(self) -> Any:
        """Every link with its ``entity`` (``app:<id>`` for an application without applicant)."""
        return _with_entity(self.rows, self.applicants)

    def shared(self) -> Any:
        """The links of identifiers held by two or more applications, with ``entity``:
        all the rings' passes read (an identifier shared by two people is held by two
        applications, an application having one applicant), a small part of the book.

        Notes
        -----
        One window over the links by identifier (smallest and largest application:
        no count of distinct values), then the applicants joined to what is left.
        """
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        by_id = Window.partitionBy("kind", "identifier")
        app = F.col("application_id")
        held = (
            self.rows.withColumn("lo", F.min(app).over(by_id))
            .withColumn("hi", F.max(app).over(by_id))
            .where(F.col("lo") < F.col("hi"))
            .select("application_id", "kind", "identifier")
        )
        return _with_entity(held, self.applicants)

    def reading(self) -> contextlib.AbstractContextManager:
        """The store's read lock, for the time one Spark pass reads the files."""
        reading = getattr(self.store, "reading", None)
        return reading() if reading is not None else contextlib.nullcontext()

    def of_applications(self, app_ids: Sequence[str] | pd.Index) -> pd.DataFrame:
        """The links of ``app_ids`` as a pandas frame, ordered as
        ``entity_links(portfolio)`` orders them (its rows for those applications).

        Notes
        -----
        One broadcast join with the wanted ids; the rows collected are those
        of the wanted applications only.
        """
        from pyspark.sql import functions as F

        from ringscope.detectors.spark.rings import to_spark

        ids = pd.DataFrame({"application_id": pd.Index(app_ids).astype(str).unique()})
        if ids.empty:
            return pd.DataFrame({c: pd.Series([], dtype="str") for c in LINK_COLUMNS})
        wanted = to_spark(self.rows.sparkSession, ids, ["application_id"])
        mine = self.rows.join(F.broadcast(wanted), "application_id")
        applicants = None if self.applicants is None else self.applicants.join(F.broadcast(wanted), "application_id")
        with self.reading():
            table = _with_entity(mine, applicants).toArrow()
        return _in_link_order(table)


def _with_entity(rows: Any, applicants: Any) -> Any:
    """``rows`` with each application's ``entity`` (``app:<id>`` when it has no applicant)."""
    from pyspark.sql import functions as F

    app_id = F.col("application_id")
    if applicants is None:
        return rows.select("application_id", "kind", "identifier", F.concat(F.lit("app:"), app_id).alias("entity"))
    joined = rows.join(applicants, "application_id", "left")
    entity = F.coalesce(F.col("entity"), F.concat(F.lit("app:"), app_id))
    return joined.select("application_id", "kind", "identifier", entity.alias("entity"))


def _in_link_order(table: pa.Table) -> pd.DataFrame:
    """``table`` sorted as the pandas link table is: kind by ``LINK_KINDS``, then
    application and identifier (Arrow's sort: code points, like the store's)."""
    order = {kind: n for n, kind in enumerate(LINK_KINDS)}
    kinds = table.column("kind").to_numpy(zero_copy_only=False)
    rank = pa.array(np.array([order.get(k, len(order)) for k in kinds], dtype=np.int64))
    keyed = pa.table(
        {"rank": rank, "application_id": table.column("application_id"), "identifier": table.column("identifier")}
    )
    at = pc.sort_indices(
        keyed, sort_keys=[("rank", "ascending"), ("application_id", "ascending"), ("identifier", "ascending")]
    )
    return table.take(at).to_pandas().reset_index(drop=True)


def parquet_links(spark: Any, store: Any, kinds: Sequence[str], entities: pd.Series | None = None) -> SparkLinks:
    """The link table of ``kinds`` read by Spark from ``store``'s Parquet files.

    Parameters
    ----------
    spark : SparkSession
    store : EmbeddedStore
        Its ``table_path`` names the files (``rels/…``, ``nodes/…``).
    kinds : sequence of str
        Identifier kinds of :data:`ringscope.detectors.portfolio.LINK_KINDS` to read.
    entities : Series, optional
        Person key → resolved entity, for the keys identity resolution merged
        (a key not in it is its own entity).

    Returns
    -------
    :class:`SparkLinks`: one row per stored (application, identifier) of
    those kinds, with ``entity`` the application's applicant (the smallest
    Person key applying for it, as the portfolio reads it) as its resolved
    entity, or ``app:<application id>`` when it has none.

    Example
    -------
    >>> links = parquet_links(spark, EmbeddedStore(folder), ["phone", "device"])  # doctest: +SKIP
    >>> links.frame.columns                                                       # doctest: +SKIP
    ['application_id', 'kind', 'identifier', 'entity']
    """
    from pyspark.sql import functions as F

    from ringscope.detectors.spark.rings import to_spark

    files: list[Path] = []
    parts = []
    for kind in kinds:
        rel, _label = LINK_KINDS[kind]
        file = store.table_path("rels", rel)
        if file.exists():
            files.append(file)
            parts.append(
                spark.read.parquet(str(file)).select(
                    F.col("src").cast("string").alias("application_id"),
                    F.lit(kind).alias("kind"),
                    F.col("dst").cast("string").alias("identifier"),
                )
            )
    if not parts:
        empty = spark.createDataFrame([], "application_id string, kind string, identifier string")
        return SparkLinks(empty, None, files, store)
    rows = parts[0]
    for part in parts[1:]:
        rows = rows.unionByName(part)
    rows = rows.where(F.col("application_id").isNotNull() & F.col("identifier").isNotNull())
    app_file = store.table_path("nodes", "Application")
    applied_file = store.table_path("rels", "Person-APPLIED-Application")
    applicant = None
    if app_file.exists() and applied_file.exists():
        files += [app_file, applied_file]
        apps = spark.read.parquet(str(app_file)).select(F.col("key").cast("string").alias("application_id"))
        applicant = (
            spark.read.parquet(str(applied_file))
            .select(F.col("dst").cast("string").alias("application_id"), F.col("src").cast("string").alias("person"))
            .join(apps, "application_id")
            .groupBy("application_id")
            .agg(F.min("person").alias("person"))  # the first applicant in the store's (src, dst) order
        )
        if entities is not None and len(entities):
            merged = pd.DataFrame({"person": entities.index.astype(str), "merged": entities.astype(str).to_numpy()})
            applicant = applicant.join(F.broadcast(to_spark(spark, merged, ["person", "merged"])), "person", "left")
            person = F.coalesce(F.col("merged"), F.col("person"))
        else:
            person = F.col("person")
        applicant = applicant.select("application_id", person.alias("entity"))
    return SparkLinks(rows, applicant, files, store)


def reads_parquet(links: SparkLinks) -> list[str]:
    """The files Spark's plan for ``links`` reads (what a test checks)."""
    return list(links.frame.inputFiles())
