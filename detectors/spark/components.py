"""Connected components in Spark DataFrames: alternating large-star and small-star.

GraphFrames' jars are not at hand, so components are computed with the
algorithm of Kiveris et al., "Connected Components in MapReduce and Beyond"
(SoCC 2014), in plain DataFrame operations: edges are kept oriented from
the larger vertex to the smaller; *large-star* links every vertex's larger
neighbours to its smallest neighbour, *small-star* links every vertex and
its smaller neighbours to the smallest of them. Each round keeps the
components as they are and shortens paths toward each component's smallest
vertex; when every edge joins a leaf to a root that is nobody's leaf, each
component is one star around its smallest vertex. O(log² n) rounds of a few
shuffles each; every round is checkpointed so the plan stays short.
"""

from __future__ import annotations

from typing import Any

__all__ = ["star_components"]


def star_components(edges: Any, max_rounds: int = 100) -> Any:
    """Component root (its smallest vertex) of every vertex in ``edges``.

    Parameters
    ----------
    edges : pyspark DataFrame
        ``src``, ``dst``: undirected edges between comparable vertex values
        (strings or numbers); self loops and repeats are allowed.
    max_rounds : int
        Safety bound; a :class:`RuntimeError` past it (never reached on
        real graphs: the rounds are logarithmic in the vertex count).

    Returns
    -------
    DataFrame ``vertex``, ``root``: every vertex of ``edges`` once, ``root``
    the smallest vertex of its component (a root is its own root).

    Example
    -------
    >>> from pyspark.sql import SparkSession               # doctest: +SKIP
    >>> spark = SparkSession.builder.master("local[1]").getOrCreate()  # doctest: +SKIP
    >>> e = spark.createDataFrame([("b", "a"), ("c", "b"), ("y", "x")], ["src", "dst"])  # doctest: +SKIP
    >>> sorted(map(tuple, star_components(e).collect()))   # doctest: +SKIP
    [('a', 'a'), ('b', 'a'), ('c', 'a'), ('x', 'x'), ('y', 'x')]

    Notes
    -----
    O(log² n) rounds; each round two joins and two aggregations over the
    current edges, which never outnumber the input edges.
    """
    from pyspark.sql import functions as F

    src, dst = F.col("src"), F.col("dst")
    vertices = edges.select(src.alias("vertex")).union(edges.select(dst.alias("vertex"))).distinct()
    current = (
        edges.where(src != dst)
        .select(F.greatest(src, dst).alias("src"), F.least(src, dst).alias("dst"))
        .distinct()
        .localCheckpoint()
    )
    for _ in range(max_rounds):
        if _is_star_forest(current):
            break
        current = _small_star(_large_star(current)).localCheckpoint()
    else:
        raise RuntimeError(f"connected components did not settle in {max_rounds} rounds")
    return vertices.join(current.withColumnRenamed("src", "vertex"), "vertex", "left").select(
        "vertex", F.coalesce(dst, F.col("vertex")).alias("root")
    )


def _large_star(edges: Any) -> Any:
    """For each vertex u and each neighbour v > u: the edge v → min(N(u) ∪ {u})."""
    from pyspark.sql import functions as F

    both = edges.union(edges.select(F.col("dst").alias("src"), F.col("src").alias("dst")))
    smallest = both.groupBy("src").agg(F.min("dst").alias("m"))
    return (
        both.where(F.col("dst") > F.col("src"))
        .join(smallest, "src")
        .select(F.col("dst").alias("src"), F.least(F.col("m"), F.col("src")).alias("dst"))
    )  # repeats are dropped by the small-star that follows


def _small_star(edges: Any) -> Any:
    """For each vertex u with smaller neighbours N: every v in N ∪ {u} but
    the smallest, m, gets the edge v → m."""
    from pyspark.sql import functions as F

    smallest = edges.groupBy("src").agg(F.min("dst").alias("m"))
    return (
        edges.join(smallest, "src")
        .select(
            F.when(F.col("dst") == F.col("m"), F.col("src")).otherwise(F.col("dst")).alias("src"),
            F.col("m").alias("dst"),
        )
        .distinct()
    )


def _is_star_forest(edges: Any) -> bool:
    """Every vertex has at most one smaller neighbour, and no such neighbour has one itself
    (one aggregation: a vertex with two edges out, or with edges both out and in, breaks it)."""
    from pyspark.sql import functions as F

    ends = edges.select(F.col("src").alias("v"), F.lit(1).alias("out"), F.lit(0).alias("into")).union(
        edges.select(F.col("dst").alias("v"), F.lit(0).alias("out"), F.lit(1).alias("into"))
    )
    per_vertex = ends.groupBy("v").agg(F.sum("out").alias("out"), F.max("into").alias("into"))
    broken = per_vertex.where((F.col("out") > 1) | ((F.col("out") == 1) & (F.col("into") == 1)))
    return not broken.limit(1).count()
