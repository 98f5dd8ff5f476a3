"""The shared-identifier rings' whole-portfolio passes in Spark.

:func:`spark_identifier_hubs` computes in Spark what
:func:`ringscope.detectors.rings.identifier_hubs` computes in pandas for
every shared identifier — applications, distinct people, cohesion (the
share of its applications that also co-share another identifier) and
known-bad applications — and collects that one row per shared identifier;
the per-kind fences (median and MAD of log people, exact) and the hub and
glue decisions are then made by the same function as in process
(:func:`ringscope.detectors.rings.hub_decisions`), so the hub table is
identical. :func:`spark_ring_components` labels the components of
applications through gluing identifiers with
:func:`ringscope.detectors.spark.components.star_components` and numbers
them as the in-process labelling does (by each component's smallest
application id), so the components are identical too.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ringscope.graph.model import KNOWN_BAD_LABELS

__all__ = ["spark_identifier_hubs", "spark_ring_components", "to_spark", "to_pandas"]

LINK_COLUMNS = ["application_id", "kind", "identifier", "entity"]
_HUB_COLUMNS = ["apps", "people", "cohesion", "bad_rate", "fence", "hub", "glue"]
_SEP = "\x1f"  # the in-process node key's separator (kind, identifier)


def to_spark(spark: Any, frame: pd.DataFrame, columns: list[str]) -> Any:
    """``frame[columns]`` as a Spark DataFrame of strings (missing stays null), through Arrow."""
    arrays = {}
    for column in columns:
        values = frame[column]
        try:
            array = pa.array(values, from_pandas=True)
            if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
                raise TypeError
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):  # numbers or mixed types: as text
            array = pa.array(values.astype(str).where(values.notna(), None), type=pa.string())
        arrays[column] = array.cast(pa.string())
    return spark.createDataFrame(pa.table(arrays, schema=pa.schema([(c, pa.string()) for c in columns])))


def to_pandas(frame: Any) -> pd.DataFrame:
    """A (small) Spark DataFrame collected through Arrow."""
    return frame.toArrow().to_pandas()


def spark_identifier_hubs(
    spark: Any,
    links: Any,
    *,
    fence_mads: float = 3.0,
    min_hub_people: int = 5,
    cohesion_threshold: float = 0.5,
    labels: pd.Series | None = None,
    frame: Any = None,
) -> pd.DataFrame:
    """:func:`ringscope.detectors.rings.identifier_hubs` with its per-identifier
    passes in Spark; same parameters, same table (rows ordered by kind and
    identifier). ``links``: the pandas link table, or the engine's
    :class:`~ringscope.detectors.spark.links.SparkLinks` with ``frame`` its
    Spark DataFrame; ``frame``: ``links`` already in Spark (:func:`to_spark`).

    Notes
    -----
    Two aggregations over the links, a self-join of the shared links on the
    application (sum of squared shared degrees per application, as in
    process) and two joins; one row per shared identifier is collected.
    """
    from pyspark.sql import functions as F

    from ringscope.detectors.rings import hub_decisions

    app, kind, ident, entity = (F.col(c) for c in ("application_id", "kind", "identifier", "entity"))
    frame = to_spark(spark, links, LINK_COLUMNS) if frame is None else frame
    frame = frame.where(kind.isNotNull() & ident.isNotNull())
    # shared: an identifier whose links carry two or more entities (smallest < largest: one plain
    # aggregation over every link, where counting distinct entities would take two); then, over its
    # shared links only (one per application once deduplicated), apps and people: the distinct
    # entities of its links, which are those of its shared links (an application has one entity)
    sharing = (
        frame.groupBy("kind", "identifier")
        .agg(F.min("entity").alias("lo"), F.max("entity").alias("hi"))
        .where(F.col("lo") < F.col("hi"))
        .select("kind", "identifier")
    )
    shared = (
        frame.join(sharing, ["kind", "identifier"])
        .where(app.isNotNull())
        .dropDuplicates(["application_id", "kind", "identifier"])
        .localCheckpoint()
    )
    per_id = shared.groupBy("kind", "identifier").agg(
        F.count("*").alias("apps"), F.countDistinct("entity").alias("people")
    )
    # cohesion: (I, J) co-shared by two or more applications; which applications of I share such a J
    mine = shared.select("application_id", "kind", "identifier")
    other = mine.select(app, kind.alias("k2"), ident.alias("i2"))
    pairs = mine.join(other, "application_id").where((kind != F.col("k2")) | (ident != F.col("i2")))
    pair_keys = ["kind", "identifier", "k2", "i2"]
    strong = pairs.groupBy(*pair_keys).count().where(F.col("count") >= 2).select(*pair_keys)
    co = (
        pairs.join(strong, pair_keys)
        .select("kind", "identifier", "application_id")
        .distinct()
        .groupBy("kind", "identifier")
        .agg(F.count("*").alias("co"))
    )
    per_id = per_id.join(co, ["kind", "identifier"], "left")
    with_labels = labels is not None and len(labels) > 0
    if with_labels:
        bad_ids = labels.index[labels.isin(KNOWN_BAD_LABELS).to_numpy(dtype=bool)]
        bad_apps = to_spark(spark, pd.DataFrame({"application_id": bad_ids}), ["application_id"]).distinct()
        bad = (
            mine.join(F.broadcast(bad_apps), "application_id")
            .groupBy("kind", "identifier")
            .agg(F.count("*").alias("bad"))
        )
        per_id = per_id.join(bad, ["kind", "identifier"], "left")
    else:
        per_id = per_id.withColumn("bad", F.lit(0))
    table = to_pandas(per_id.fillna(0, ["co", "bad"]))
    if table.empty:
        return pd.DataFrame(columns=_HUB_COLUMNS)
    table = table.sort_values(["kind", "identifier"], kind="stable", ignore_index=True)
    index = pd.MultiIndex.from_arrays(
        [_like(table["kind"], links, "kind"), _like(table["identifier"], links, "identifier")],
        names=["kind", "identifier"],
    )
    apps = table["apps"].to_numpy(dtype=np.int64)
    # the same float operations as in process: counts divided by counts
    out = pd.DataFrame(
        {
            "apps": apps,
            "people": table["people"].to_numpy(dtype=np.int64),
            "cohesion": (table["co"].to_numpy(dtype=np.int64).astype(float) / apps).astype(float),
        },
        index=index,
    )
    bad_rate = (
        pd.Series(table["bad"].to_numpy(dtype=np.int64).astype(float) / apps, index=index) if with_labels else None
    )
    return hub_decisions(out, bad_rate, labels, fence_mads, min_hub_people, cohesion_threshold)


def spark_ring_components(spark: Any, links: Any, hubs: pd.DataFrame, frame: Any = None) -> pd.Series:
    """:func:`ringscope.detectors.rings.ring_components` with the components
    labelled in Spark; the same Series (components numbered by their
    smallest application id, as scipy's labelling numbers them).
    ``links``, ``frame``: as for :func:`spark_identifier_hubs`.

    Notes
    -----
    One join of the links with the gluing identifiers, then
    :func:`ringscope.detectors.spark.components.star_components`; one row
    per linked application is collected.
    """
    from pyspark.sql import functions as F

    from ringscope.detectors.spark.components import star_components

    gluing = hubs.index[hubs["glue"].to_numpy(dtype=bool)] if len(hubs) else pd.Index([])
    if len(gluing) == 0:
        return pd.Series(dtype="int64")
    glue = pd.DataFrame({"kind": gluing.get_level_values(0), "identifier": gluing.get_level_values(1)})
    glue_frame = to_spark(spark, glue, ["kind", "identifier"])
    frame = to_spark(spark, links, LINK_COLUMNS) if frame is None else frame
    frame = frame.where(F.col("application_id").isNotNull())
    used = frame.join(glue_frame, ["kind", "identifier"])
    # vertices: "0" + application id sorts every application before every identifier ("1" + node)
    app_vertex = F.concat(F.lit("0"), F.col("application_id"))
    through_ids = used.select(
        app_vertex.alias("src"), F.concat(F.lit("1"), F.col("kind"), F.lit(_SEP), F.col("identifier")).alias("dst")
    )
    # the applicant entity glues its own applications too (repeat borrowers); an application has
    # one entity, carried on each of its links, so the gluing links name it (no pass over all links)
    person = (
        used.select("application_id", "entity")
        .distinct()
        .select(app_vertex.alias("src"), F.concat(F.lit("1person" + _SEP), F.col("entity")).alias("dst"))
    )
    # one large-star step from the identifiers' side first: each application links to the smallest
    # application of every identifier it holds, so only applications remain (half the rounds)
    edges = through_ids.union(person)
    smallest = edges.groupBy("dst").agg(F.min("src").alias("first"))
    app_edges = edges.join(smallest, "dst").select("src", F.col("first").alias("dst"))
    roots = star_components(app_edges)
    table = to_pandas(roots)
    apps = table["vertex"].str[1:].to_numpy(dtype=str)
    order = np.argsort(apps, kind="stable")
    apps = apps[order]
    # the root is each component's smallest application: numbering roots in order is scipy's numbering
    _, labels = np.unique(table["root"].to_numpy(dtype=str)[order], return_inverse=True)
    return pd.Series(
        labels.astype(np.int32), index=pd.Index(apps.astype(object), name="application_id"), name="component"
    )


def _like(values: pd.Series, links: Any, column: str) -> pd.Index:
    """``values`` with the dtype of the links column they came from, where it
    is text (links read from Parquet: the text dtype pandas reads Parquet text as)."""
    dtype = links[column].dtype if isinstance(links, pd.DataFrame) else pd.Series(["text"]).dtype
    try:
        return pd.Index(values.to_numpy(dtype=object)).astype(dtype)
    except (TypeError, ValueError):
        return pd.Index(values.to_numpy(dtype=object))
