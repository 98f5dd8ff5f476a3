"""The velocity bursts' whole-portfolio pass read by Spark from the embedded store's Parquet files.

:meth:`ringscope.detectors.velocity.DeviceVelocity.bursts` reads the whole
applications table into pandas and counts, for every application on every
device, IP and IP range, the applications on the same identifier in the
window that follows. :func:`spark_velocity_bursts` does that counting in
Spark, straight from the store's files (``nodes/Application`` for the
times and labels, ``rels/Application-HAS_DEVICE-Device``,
``rels/Application-HAS_IP-IP`` and ``nodes/IP`` for the identifiers,
``rels/Person-APPLIED-Application`` for the applicant), and collects only
the identifiers on which some window may be dense — all their
applications, since an identifier's own rate reads its whole history.
Those few are finished by the same Python code as in process
(:meth:`~ringscope.detectors.velocity.DeviceVelocity.clusters`, with the
portfolio-wide figures Spark computed), so the clusters, p-values and
findings are the same.

Which identifiers are collected: a window is dense when its Poisson tail
``P(X >= count)`` is at most ``alpha / tested``; the tail is never below
the probability of ``count`` itself, ``exp(-mu) mu^count / count!``, which
Spark computes (Stirling's series for ``log count!``). Every identifier
having a window whose probability is below ``e · alpha / tested`` is
collected: a superset of those with a dense window (the factor ``e``
absorbs rounding and the series' error, both far smaller).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ringscope.detectors.portfolio import LINK_KINDS
from ringscope.detectors.values import TIME_WINDOW

__all__ = ["spark_velocity_bursts", "with_first", "VELOCITY_FILES"]

#: the store's tables the pass reads
VELOCITY_FILES = (
    ("nodes", "Application"),
    ("rels", "Application-HAS_DEVICE-Device"),
    ("rels", "Application-HAS_IP-IP"),
    ("nodes", "IP"),
    ("rels", "Person-APPLIED-Application"),
)

#: the plausible instants, as microseconds since 1970 (read_times' window)
_LOW_US, _HIGH_US = (int(t.as_unit("us").value) for t in TIME_WINDOW)
#: log(e): the slack of the candidates' test, in natural log units
_SLACK = 1.0


def _applications(spark: Any, store: Any) -> Any | None:
    """One row per stored application: ``application_id``, ``us`` (its time in
    microseconds, null where read_times reads it as missing), ``label``,
    ``device``, ``ip``, ``ip_prefix``, ``person`` (each application's first
    identifier in the store's order, as :attr:`Portfolio.applications` has
    them); ``None`` when the store's times are not timestamps (the caller
    then runs the pass in process)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import TimestampNTZType, TimestampType

    app_file = store.table_path("nodes", "Application")
    if not app_file.exists():
        return None
    nodes = spark.read.parquet(str(app_file))
    fields = {f.name: f.dataType for f in nodes.schema.fields}
    if not isinstance(fields.get("applied_at"), TimestampType | TimestampNTZType):
        return None
    at = F.col("applied_at")
    if isinstance(fields["applied_at"], TimestampNTZType):
        at = at.cast("timestamp")  # naive: UTC (the session's zone), as read_times takes it
    us = F.unix_micros(at)
    label = F.col("label").cast("string") if "label" in fields else F.lit(None).cast("string")
    apps = nodes.select(
        F.col("key").cast("string").alias("application_id"),
        F.when((us >= _LOW_US) & (us <= _HIGH_US), us).alias("us"),
        label.alias("label"),
    )

    apps = with_first(
        spark,
        store,
        apps,
        (
            (LINK_KINDS["device"][0], "device", "src", "dst"),
            (LINK_KINDS["ip"][0], "ip", "src", "dst"),
            ("Person-APPLIED-Application", "person", "dst", "src"),
        ),
    )
    ip_file = store.table_path("nodes", "IP")
    prefix = None
    if ip_file.exists():
        ips = spark.read.parquet(str(ip_file))
        if "prefix" in ips.columns:
            prefix = ips.select(
                F.col("key").cast("string").alias("ip"), F.col("prefix").cast("string").alias("ip_prefix")
            )
    if prefix is None:
        return apps.withColumn("ip_prefix", F.lit(None).cast("string"))
    return apps.join(prefix.dropDuplicates(["ip"]), "ip", "left")


def with_first(spark: Any, store: Any, apps: Any, rels: Any) -> Any:
    """``apps`` (keyed by ``application_id``) with one text column per
    ``(relationship, name, key, value)`` of ``rels``: each application's first
    ``value`` in the store's (src, dst) order — the smallest, as the portfolio
    takes the first — read from ``store``'s file of that relationship (null
    where it has none or the file is missing)."""
    from pyspark.sql import functions as F

    for rel, name, key, value in rels:
        file = store.table_path("rels", rel)
        if not file.exists():
            apps = apps.withColumn(name, F.lit(None).cast("string"))
            continue
        table = spark.read.parquet(str(file)).select(
            F.col(key).cast("string").alias("application_id"), F.col(value).cast("string").alias(name)
        )
        part = table.where(F.col(name).isNotNull()).groupBy("application_id").agg(F.min(name).alias(name))
        apps = apps.join(part, "application_id", "left")
    return apps


def spark_velocity_bursts(
    spark: Any, store: Any, detector: Any, statistics: Any = None
) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """:meth:`ringscope.detectors.velocity.DeviceVelocity.bursts` with the
    windows counted in Spark over ``store``'s files.

    Returns the same clustered applications (``row`` then points into the
    second frame: the applications of the collected identifiers, in
    application-id order, with ``application_id``, ``applied_at``, ``label``,
    ``device``, ``ip``, ``ip_prefix``, ``person``); ``None`` when there is no
    cluster; ``NotImplemented`` when the store's times are not timestamps.

    Notes
    -----
    Two aggregations over the timed (application, identifier) rows (counts
    per identifier, the kinds' figures), two windows over the rows of the
    identifiers holding ``min_apps`` or more (rank and count within the
    window), one join back for the candidates' rows; what is collected is
    three small rows per kind and the candidates' applications.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from ringscope.detectors.velocity import _KINDS, BurstBase, VelocityStatistics

    apps = _applications(spark, store)
    if apps is None:
        return NotImplemented
    apps = apps.localCheckpoint()
    watched = [kind for kind in ("device", "ip", "ip_range") if kind in detector.kinds]
    min_apps = int(detector.min_apps)
    window = float(detector.window_hours) * 3600.0
    whole = int(window)
    t = (F.col("us") / 1e6).cast("long")  # whole seconds, truncated as pandas' astype truncates
    parts = [
        apps.where(F.col(_KINDS[kind][0]).isNotNull() & F.col("us").isNotNull()).select(
            F.lit(kind).alias("kind"), F.col(_KINDS[kind][0]).alias("key"), "application_id", t.alias("t")
        )
        for kind in watched
    ]
    if statistics is None or any(kind not in statistics.kinds for kind in watched):
        figures = apps.agg(F.count("*").alias("n"), F.min("us").alias("lo"), F.max("us").alias("hi")).first()
        if not figures["n"]:
            return None
        span = (figures["hi"] - figures["lo"]) / 1e6 if figures["lo"] is not None else 0.0
        kinds = {kind: BurstBase(0, 0, 0) for kind in watched}
        if parts:
            timed = _union(parts)
            per_key = timed.groupBy("kind", "key").agg(F.count("*").alias("n"))
            for row in (
                per_key.groupBy("kind")
                .agg(
                    F.sum("n").alias("applications"),
                    F.count("*").alias("identifiers"),
                    F.sum(F.when(F.col("n") >= min_apps, F.col("n")).otherwise(0)).alias("tested"),
                )
                .collect()
            ):
                kinds[row["kind"]] = BurstBase(int(row["applications"]), int(row["identifiers"]), int(row["tested"]))
        given = statistics.kinds if statistics is not None else {}
        statistics = VelocityStatistics(
            span_seconds=float(span) if statistics is None else statistics.span_seconds,
            kinds={kind: given.get(kind, kinds[kind]) for kind in watched},
        )
    if not parts:
        return None
    candidates = []
    for kind, part in zip(watched, parts, strict=True):
        base = statistics.kinds[kind]
        if base.tested == 0:
            continue
        span = max(float(statistics.span_seconds), window) if statistics.span_seconds else None
        if span is None:  # as burst_windows: the kind's own time range
            lo_hi = part.agg(F.min("t"), F.max("t")).first()
            span = max(float(lo_hi[1] - lo_hi[0]), window) if lo_hi[0] is not None else window
        rate = base.applications / max(base.identifiers, 1) / span
        limit = math.log(float(detector.alpha) / max(base.tested, 1)) + _SLACK
        by_key = Window.partitionBy("key")
        rows = part.withColumn("n", F.count("*").over(by_key)).where(F.col("n") >= min_apps)
        # count: the applications from this one (in time, then id order) to whole seconds after it
        rank = F.row_number().over(by_key.orderBy("t", "application_id")) - 1
        reach = F.count("*").over(by_key.orderBy("t").rangeBetween(Window.unboundedPreceding, whole))
        rows = rows.withColumn("count", reach - rank)
        own = (F.col("n") - F.col("count")) / F.lit(max(span - window, window))
        mu = F.greatest(own, F.lit(rate)) * F.lit(window)
        k = F.col("count").cast("double")
        log_factorial = k * F.log(k) - k + 0.5 * F.log(2 * math.pi * k) + 1 / (12 * k) - 1 / (360 * k * k * k)
        log_pmf = -mu + k * F.log(mu) - log_factorial
        maybe = rows.where((F.col("count") >= min_apps) & ((mu <= 0) | (log_pmf <= limit)))
        keys = maybe.select("key").distinct()
        candidates.append(part.join(keys, "key").select("kind", "key", "application_id"))
    if not candidates:
        return None
    table = _union(candidates).join(apps, "application_id").toArrow()
    if table.num_rows == 0:
        return None
    return _finish(detector, statistics, table)


def _finish(detector: Any, statistics: Any, table: pa.Table) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """The collected rows finished in Python: the candidates' applications once each,
    in application-id order (the order the whole table has them), and the clusters."""
    order = pc.sort_indices(table, sort_keys=[("application_id", "ascending")])
    table = table.take(order)
    ids = table.column("application_id").to_numpy(zero_copy_only=False).astype(object)
    first = np.r_[True, ids[1:] != ids[:-1]]
    unique = table.filter(pa.array(first))
    columns = ["application_id", "label", "device", "ip", "ip_prefix", "person"]
    apps = pd.DataFrame({c: unique.column(c).to_numpy(zero_copy_only=False).astype(object) for c in columns})
    us = unique.column("us").to_numpy(zero_copy_only=False)
    micros = pd.array(us, dtype="Int64").to_numpy(dtype="int64", na_value=np.iinfo(np.int64).min)
    apps["applied_at"] = pd.Series(micros.view("datetime64[us]")).dt.tz_localize("UTC")
    positions = pd.Index(apps["application_id"]).get_indexer(ids)
    kinds = table.column("kind").to_numpy(zero_copy_only=False).astype(object)
    within = {kind: np.sort(positions[kinds == kind]) for kind in np.unique(kinds)}
    members = detector.clusters(apps, statistics, within)
    return None if members is None else (members, apps)


def _union(frames: list[Any]) -> Any:
    out = frames[0]
    for frame in frames[1:]:
        out = out.unionByName(frame)
    return out
