"""The cash-flow checks' peer groups read by Spark from the embedded store's Parquet files.

:meth:`ringscope.detectors.cashflow.CashflowChecks.peer_groups` reads every
application into pandas to learn the book's peer groups: which trades have
enough applications, each peer group's robust median and scale, the term
median, how round and how repeated declared figures are.
:func:`spark_cashflow_peer_groups` learns them in Spark, straight from the
store's files (``nodes/Application`` for the figures, the applicant from
``rels/Person-APPLIED-Application``, the company and employer from
``rels/Application-FOR_COMPANY-Company``,
``rels/Application-DECLARES_EMPLOYER-Company`` and ``nodes/Company``).

What runs where:

* each application's own reading — figures read as the portfolio reads
  them, figure kind, trade from the company or employer name, significant
  digits — is :func:`~ringscope.detectors.cashflow.declared_rows` itself,
  run by Python workers on Arrow batches (``mapInArrow``);
* counts are Spark aggregations: applications and round figures per
  segment, trade and fine trade (the trade keys, peers and round share
  follow from those few rows), terms, applicants per declared value;
* each peer group's median and scale are computed by the in-process code
  on that group's values (``applyInArrow``: a median reads the group as a
  multiset, so the figures are bit for bit the pandas ones);
* the applicants per declared value come back (one row per distinct value)
  and are finished by :func:`~ringscope.detectors.cashflow.popularity_of`.

Only the applications some check may fail come back: a row whose robust
z-scores are all below ``z_start`` scores 0 (round and repeated figures
only add to a check that already fails), so the rows with some z-score
within 1e-6 of ``z_start`` or above are collected and judged in Python by
:meth:`~ringscope.detectors.cashflow.CashflowChecks.checks_of`, with the same
statistics: the findings are the in-process ones.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

__all__ = ["spark_cashflow_peer_groups", "CASHFLOW_FILES"]

#: the store's tables the pass reads
CASHFLOW_FILES = (
    ("nodes", "Application"),
    ("rels", "Person-APPLIED-Application"),
    ("rels", "Application-FOR_COMPANY-Company"),
    ("rels", "Application-DECLARES_EMPLOYER-Company"),
    ("nodes", "Company"),
)

#: how far below ``z_start`` a z-score computed by Spark may be and its row still collected
#: (Spark's and numpy's logarithms may differ in the last bit)
_Z_SLACK = 1e-6

#: the declared rows as they cross from the Python workers (with ``v``, the figure rounded
#: to cents as pandas rounds it, and ``applicant``, the person or else the application)
_DECLARED_FIELDS = [
    ("application_id", pa.string()),
    ("person", pa.string()),
    ("company", pa.string()),
    ("product", pa.string()),
    ("figure_kind", pa.string()),
    ("figure", pa.float64()),
    ("amount", pa.float64()),
    ("term", pa.float64()),
    ("entity_name", pa.string()),
    ("trade", pa.string()),
    ("fine_trade", pa.string()),
    ("segment", pa.string()),
    ("sig_digits", pa.int64()),
    ("v", pa.float64()),
    ("applicant", pa.string()),
]
_DECLARED_SCHEMA = pa.schema(_DECLARED_FIELDS)
_TEXT = ("application_id", "person", "company", "product", "figure_kind", "entity_name", "trade", "fine_trade")


def spark_cashflow_peer_groups(spark: Any, store: Any, detector: Any) -> tuple[pd.DataFrame, Any]:
    """:meth:`ringscope.detectors.cashflow.CashflowChecks.peer_groups` over
    ``store``'s files in Spark: the statistics of the whole book, and the
    declared rows (in application-id order) of the applications some check
    may fail under them.

    Notes
    -----
    One pass of the Python workers over the applications, three
    aggregations (applications and round figures per segment, trade and fine
    trade — the trade keys, peers and round share follow from it —, terms,
    applicants per declared value) and two grouped passes for the medians;
    what is collected is one row per such group and distinct value, and the
    candidates' rows.
    """
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    from ringscope.detectors.cashflow import CashflowStatistics, declared_rows, popularity_of

    inputs = _inputs(spark, store)
    if inputs is None:  # no applications stored
        empty = declared_rows(_empty_inputs())
        return empty, detector._statistics_of(empty)
    declared = inputs.mapInArrow(_declare, _spark_schema()).persist(StorageLevel.MEMORY_AND_DISK)
    judged = None
    try:
        # one aggregation for every count the statistics need but the terms' and values':
        # applications and round figures per (segment, trade, fine trade)
        combos = _text_frame(
            declared.groupBy("segment", "trade", "fine_trade")
            .agg(F.count("*").alias("n"), F.sum((F.col("sig_digits") <= 1).cast("long")).alias("round"))
            .toArrow()
        )
        n = int(combos["n"].sum())
        if n == 0:
            empty = declared_rows(_empty_inputs())
            return empty, detector._statistics_of(empty)
        key_of = {col: combos["segment"] + "|" + combos[col].fillna("") for col in ("trade", "fine_trade")}
        key_counts = {col: combos["n"].groupby(key_of[col].to_numpy()).sum().astype("int64") for col in key_of}
        # the finest reference with enough peers: fine trade, then trade, then the segment (as _reference)
        reference, combo_reference = F.col("segment"), combos["segment"].copy()
        for col in ("trade", "fine_trade"):
            enough_here = combos[col].notna() & (key_of[col].map(key_counts[col]) >= detector.min_peers)
            combo_reference = combo_reference.where(~enough_here, key_of[col])
            enough = sorted(set(key_of[col][enough_here]))
            key = F.concat(F.col("segment"), F.lit("|"), F.coalesce(F.col(col), F.lit("")))
            reference = F.when(F.col(col).isNotNull() & key.isin(enough), key).otherwise(reference)
        peers = combos["n"].groupby(combo_reference.to_numpy()).sum().astype("int64")
        terms = declared.where(F.col("term") > 0).groupBy("term").count().collect()
        term_fill = (
            float(pd.Series(np.repeat([r["term"] for r in terms], [r["count"] for r in terms])).median())
            if terms
            else 12.0
        )
        months = F.when(F.col("figure_kind") == "revenue", F.lit(12.0)).otherwise(
            F.when(F.col("term") > 0, F.col("term")).otherwise(F.lit(term_fill))
        )
        judged = declared.withColumn("reference", reference).withColumn("months", months)
        judged = judged.persist(StorageLevel.MEMORY_AND_DISK)
        trade_groups = (
            judged.select("reference", "figure", "amount")
            .groupBy("reference")
            .applyInArrow(
                _reference_groups,
                "reference string, fig_median double, fig_scale double, amt_median double, amt_scale double",
            )
            .toArrow()
            .to_pandas()
            .set_index("reference")
        )
        segment_groups = (
            judged.select("segment", "figure", "amount", "months")
            .groupBy("segment")
            .applyInArrow(_segment_groups, "segment string, lev_median double, lev_scale double")
            .toArrow()
            .to_pandas()
            .set_index("segment")
        )
        round_count = int(combos["round"].sum())
        per_value = declared.groupBy("figure_kind", "v").agg(F.countDistinct("applicant").alias("n")).toArrow()
        repeats = {}
        kinds = per_value.column("figure_kind").to_numpy(zero_copy_only=False).astype(object)
        values = per_value.column("v").to_numpy(zero_copy_only=False)
        counts = per_value.column("n").to_numpy(zero_copy_only=False).astype("int64")
        for kind in pd.unique(kinds):
            at = kinds == kind
            repeats[str(kind)] = popularity_of(pd.Series(counts[at], index=pd.Index(values[at], dtype=float)))
        statistics = CashflowStatistics(
            applications=n,
            key_counts=key_counts,
            peers=peers,
            term_fill=term_fill,
            figure=_table(trade_groups, "fig", "reference"),
            amount=_table(trade_groups, "amt", "reference"),
            leverage=_table(segment_groups, "lev", "segment"),
            round_share=round_count / n,
            repeats=repeats,
            n_values=max(len(np.unique(values)), 1),
        )
        candidates = _candidates(spark, judged, statistics, detector)
    finally:
        if judged is not None:
            judged.unpersist()
        declared.unpersist()
    return candidates, statistics


def _inputs(spark: Any, store: Any) -> Any | None:
    """The columns :func:`~ringscope.detectors.cashflow.declared_rows` reads, one
    row per stored application: its figures as stored, its applicant, company
    and employer (each the first in the store's order, as the portfolio has
    them) and the company's and employer's names."""
    from pyspark.sql import functions as F

    from ringscope.detectors.cashflow import DECLARED_INPUT
    from ringscope.detectors.spark.velocity import with_first

    app_file = store.table_path("nodes", "Application")
    if not app_file.exists():
        return None
    nodes = spark.read.parquet(str(app_file))
    present = set(nodes.columns)
    apps = nodes.select(
        F.col("key").cast("string").alias("application_id"),
        *[
            (F.col(c) if c in present else F.lit(None).cast("double")).alias(c)
            for c in ("declared_monthly_revenue", "declared_monthly_income", "amount", "term_months")
        ],
        (F.col("product").cast("string") if "product" in present else F.lit(None).cast("string")).alias("product"),
    )

    apps = with_first(
        spark,
        store,
        apps,
        (
            ("Person-APPLIED-Application", "person", "dst", "src"),
            ("Application-FOR_COMPANY-Company", "company", "src", "dst"),
            ("Application-DECLARES_EMPLOYER-Company", "employer", "src", "dst"),
        ),
    )
    names = _company_names(spark, store)
    for firm, column in (("company", "business_name"), ("employer", "employer_name")):
        if names is None:
            apps = apps.withColumn(column, F.lit(None).cast("string"))
        else:
            named = names.select(F.col("key").alias(firm), F.col("name").alias(column))
            apps = apps.join(named, firm, "left")
    return apps.select(*DECLARED_INPUT)


def _company_names(spark: Any, store: Any) -> Any | None:
    """Company key → name: the normalised name, else the key without its ``name:`` prefix."""
    from pyspark.sql import functions as F

    file = store.table_path("nodes", "Company")
    if not file.exists():
        return None
    companies = spark.read.parquet(str(file))
    key = F.col("key").cast("string")
    fallback = F.regexp_replace(key, "^name:", "")
    if "name" in companies.columns:
        name = F.col("name").cast("string")
        named = F.when(name.isNotNull() & (name != ""), name).otherwise(fallback)
    else:
        named = fallback
    return companies.select(key.alias("key"), named.alias("name")).dropDuplicates(["key"])


def _declare(batches: Any) -> Any:
    """mapInArrow: each batch of application inputs → its declared rows (Python workers)."""
    from ringscope.detectors.cashflow import declared_rows
    from ringscope.detectors.portfolio import _FIGURES
    from ringscope.detectors.values import AMOUNT_LIMIT, TERM_LIMIT, read_amounts

    for batch in batches:
        apps = pa.Table.from_batches([batch]).to_pandas()
        for col in _FIGURES:
            limit = TERM_LIMIT if col == "term_months" else AMOUNT_LIMIT
            apps[col] = read_amounts(apps[col], limit=limit, column=col)[0]
        rows = declared_rows(apps)
        rows["v"] = rows["figure"].round(2)
        rows["applicant"] = rows["person"].astype(object).where(rows["person"].notna(), rows["application_id"])
        yield pa.RecordBatch.from_arrays(
            [_arrow(rows[name], kind) for name, kind in _DECLARED_FIELDS], schema=_DECLARED_SCHEMA
        )


def _arrow(values: pd.Series, kind: pa.DataType) -> pa.Array:
    """A column as Arrow, missing values (``None``, ``NaN``, ``NA``) as null: Spark
    orders NaN above every number, so a NaN term would pass ``term > 0``."""
    if pa.types.is_string(kind):
        return pa.array(values, type=kind, from_pandas=True)
    return pa.array(
        values.to_numpy(dtype=float if pa.types.is_floating(kind) else "int64"), type=kind, from_pandas=True
    )


def _spark_schema() -> Any:
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(_DECLARED_SCHEMA)


def _reference_groups(table: pa.Table) -> pa.Table:
    """applyInArrow over one reference: the robust median and scale of its log
    figure and log amount, by the in-process code."""
    from ringscope.detectors.cashflow import _robust_groups

    ref = table.column("reference").to_pylist()[:1]
    group = pd.Series(np.zeros(table.num_rows, dtype=np.int64))
    fig = _robust_groups(pd.Series(np.log(table.column("figure").to_numpy().astype(float))), group)
    amt = _robust_groups(pd.Series(np.log(table.column("amount").to_numpy().astype(float))), group)
    return pa.table(
        {
            "reference": pa.array(ref, type=pa.string()),
            "fig_median": fig["median"].to_numpy(),
            "fig_scale": fig["scale"].to_numpy(),
            "amt_median": amt["median"].to_numpy(),
            "amt_scale": amt["scale"].to_numpy(),
        }
    )


def _segment_groups(table: pa.Table) -> pa.Table:
    """applyInArrow over one segment: the robust median and scale of its log
    leverage, computed as the in-process code computes it."""
    from ringscope.detectors.cashflow import _robust_groups

    seg = table.column("segment").to_pylist()[:1]
    log_fig = pd.Series(np.log(table.column("figure").to_numpy().astype(float)))
    log_amt = pd.Series(np.log(table.column("amount").to_numpy().astype(float)))
    log_lev = log_amt - log_fig - np.log(table.column("months").to_numpy().astype(float))
    lev = _robust_groups(log_lev, pd.Series(np.zeros(table.num_rows, dtype=np.int64)))
    return pa.table(
        {
            "segment": pa.array(seg, type=pa.string()),
            "lev_median": lev["median"].to_numpy(),
            "lev_scale": lev["scale"].to_numpy(),
        }
    )


def _table(groups: pd.DataFrame, prefix: str, name: str) -> pd.DataFrame:
    """A collected group table as :class:`CashflowStatistics` holds it: ``median``, ``scale``."""
    out = pd.DataFrame(
        {"median": groups[f"{prefix}_median"].astype(float), "scale": groups[f"{prefix}_scale"].astype(float)}
    )
    out.index = pd.Index(groups.index.tolist(), name=name)
    return out


def _candidates(spark: Any, judged: Any, statistics: Any, detector: Any) -> pd.DataFrame:
    """The declared rows with some robust z-score at least ``z_start`` (less
    :data:`_Z_SLACK`), in application-id order, as pandas."""
    from pyspark.sql import functions as F

    def groups(table: pd.DataFrame, name: str, prefix: str) -> Any:
        rows = list(zip(map(str, table.index), table["median"].map(float), table["scale"].map(float), strict=True))
        schema = f"{name} string, {prefix}_median double, {prefix}_scale double"
        return F.broadcast(spark.createDataFrame(rows, schema))

    rows = (
        judged.join(groups(statistics.figure, "reference", "fig"), "reference", "left")
        .join(groups(statistics.amount, "reference", "amt"), "reference", "left")
        .join(groups(statistics.leverage, "segment", "lev"), "segment", "left")
    )
    log_fig, log_amt = F.log(F.col("figure")), F.log(F.col("amount"))
    log_lev = log_amt - log_fig - F.log(F.col("months"))
    start = float(detector.z_start) - _Z_SLACK
    z_fig = (log_fig - F.col("fig_median")) / F.col("fig_scale")
    z_amt = (log_amt - F.col("amt_median")) / F.col("amt_scale")
    z_lev = F.abs((log_lev - F.col("lev_median")) / F.col("lev_scale"))
    picked = rows.where((z_fig >= start) | (z_amt >= start) | (z_lev >= start))
    columns = [name for name, _ in _DECLARED_FIELDS if name not in ("v", "applicant")]
    table = picked.select(*columns).orderBy("application_id").toArrow()
    frame = pd.DataFrame(
        {
            name: (
                table.column(name).to_numpy(zero_copy_only=False).astype(object)
                if name in _TEXT or name == "segment"
                else table.column(name).to_numpy(zero_copy_only=False)
            )
            for name in columns
        }
    )
    frame["sig_digits"] = frame["sig_digits"].astype("int64")
    for name in ("figure", "amount", "term"):
        frame[name] = pd.to_numeric(pd.Series(frame[name]), errors="coerce").astype(float)
    return frame


def _text_frame(table: pa.Table) -> pd.DataFrame:
    """A small collected table as pandas, its text columns as objects (``None`` missing)."""
    return pd.DataFrame(
        {
            name: table.column(name).to_numpy(zero_copy_only=False).astype(object)
            if pa.types.is_string(table.schema.field(name).type)
            or pa.types.is_large_string(table.schema.field(name).type)
            else table.column(name).to_numpy(zero_copy_only=False)
            for name in table.column_names
        }
    )


def _empty_inputs() -> pd.DataFrame:
    from ringscope.detectors.cashflow import DECLARED_INPUT

    frame = pd.DataFrame({c: pd.Series(dtype=object) for c in DECLARED_INPUT})
    for col in ("declared_monthly_revenue", "declared_monthly_income", "amount", "term_months"):
        frame[col] = frame[col].astype(float)
    return frame
