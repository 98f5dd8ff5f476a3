"""Compare findings with a labeled portfolio's truth (``ringscope evaluate``).

The truth folder is what ``ringscope generate`` writes (``truth/``):
``applications.csv`` (application_id, is_fraud, typology, ring_id,
hard_negative) and optionally ``guarantee_circles.csv`` (circle_id, members
as ``|``-joined borrower keys). Any generator that writes those columns can
be scored the same way.

Ring quality is measured on pairs, as entity-resolution work does: two
applications are a predicted pair when their best (highest-scoring)
multi-member finding is the same, a true pair when they share a ring_id.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from detectors.base import Finding

__all__ = ["Evaluation", "evaluate_findings", "pair_scores"]


@dataclass
class Evaluation:
    """The numbers ``ringscope evaluate`` prints."""

    summary: pd.DataFrame  # metric, value
    by_typology: pd.DataFrame  # typology, applications, flagged, recall
    by_hard_negative: pd.DataFrame  # hard_negative, applications, flagged, false_positive_rate
    by_detector: pd.DataFrame  # detector, findings, precision (fraud share of members)


def pair_scores(predicted: pd.Series, truth: pd.Series) -> tuple[float, float, float]:
    """Pair precision, recall and F1 of a clustering against true clusters.

    Parameters
    ----------
    predicted, truth : Series
        item → cluster label; items missing (or NA) are singletons.

    Example
    -------
    >>> truth = pd.Series({"a": 1, "b": 1, "c": 1, "d": 2, "e": 2})
    >>> predicted = pd.Series({"a": "x", "b": "x", "d": "x"})
    >>> [round(v, 3) for v in pair_scores(predicted, truth)]
    [0.333, 0.25, 0.286]

    Notes
    -----
    Counts pairs through the contingency table: O(n), no pair enumeration.
    """
    frame = pd.DataFrame({"p": predicted, "t": truth})
    both = frame.dropna()

    def pairs(counts: pd.Series) -> float:
        c = counts.to_numpy(dtype=float)
        return float((c * (c - 1) / 2).sum())

    tp = pairs(both.groupby(["p", "t"]).size())
    predicted_pairs = pairs(frame["p"].dropna().value_counts())
    true_pairs = pairs(frame["t"].dropna().value_counts())
    precision = tp / predicted_pairs if predicted_pairs else 0.0
    recall = tp / true_pairs if true_pairs else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def evaluate_findings(findings: list[Finding], truth_dir: str | Path, min_score: float = 0.5) -> Evaluation:
    """Score ``findings`` (those with ``score >= min_score``) against ``truth_dir``."""
    truth_dir = Path(truth_dir)
    truth_file = truth_dir / "applications.csv"
    if not truth_file.exists():
        raise FileNotFoundError(f"{truth_file} not found: --truth must be a generator's truth/ folder")
    truth = pd.read_csv(truth_file, dtype=str, keep_default_na=False).set_index("application_id")
    truth["is_fraud"] = truth["is_fraud"].isin(["1", "true", "True"])
    kept = [f for f in findings if f.score >= min_score]
    flagged = {m for f in kept for m in f.members}

    # best multi-member finding per application
    best: dict[str, tuple[float, str]] = {}
    for f in kept:
        if f.size < 2:
            continue
        for m in f.members:
            if m not in best or f.score > best[m][0]:
                best[m] = (f.score, f.finding_id)
    predicted = pd.Series({m: fid for m, (_, fid) in best.items()}, dtype=object)
    rings = truth["ring_id"].replace("", np.nan)
    precision, recall, f1 = pair_scores(predicted.reindex(truth.index), rings)

    # a planted ring is recovered when one finding holds half of it, mostly from it
    recovered = 0
    ring_members = rings.dropna().groupby(rings.dropna()).groups
    member_sets = [set(f.members) for f in kept if f.size >= 2]
    for ring_id, apps in ring_members.items():
        apps = set(apps)
        for members in member_sets:
            overlap = len(apps & members)
            if overlap >= len(apps) / 2 and overlap >= len(members) / 2:
                recovered += 1
                break
    circle_recall = np.nan
    circles_file = truth_dir / "guarantee_circles.csv"
    if circles_file.exists():
        circles = pd.read_csv(circles_file, dtype=str, keep_default_na=False)
        entity_sets = [{k for _, k in f.entities} for f in kept if f.detector == "guarantee_circles"]
        hits = sum(any(set(c.split("|")) <= s for s in entity_sets) for c in circles["members"])
        circle_recall = hits / len(circles) if len(circles) else np.nan

    truth["flagged"] = truth.index.isin(list(flagged))
    honest = truth[~truth["is_fraud"]]
    fraud = truth[truth["is_fraud"]]
    summary = pd.DataFrame(
        [
            ("findings (score >= %.2f)" % min_score, len(kept)),
            ("ring pair precision", precision),
            ("ring pair recall", recall),
            ("ring pair F1", f1),
            ("planted rings recovered", recovered / len(ring_members) if ring_members else np.nan),
            ("guarantee circles recovered", circle_recall),
            ("fraud applications flagged", fraud["flagged"].mean() if len(fraud) else np.nan),
            ("honest applications flagged", honest["flagged"].mean() if len(honest) else np.nan),
        ],
        columns=["metric", "value"],
    )
    by_typology = (
        fraud.groupby(fraud["typology"].replace("", "(none)"))["flagged"]
        .agg(applications="size", flagged="sum", recall="mean")
        .reset_index()
    )
    negatives = truth[truth["hard_negative"] != ""]
    by_negative = (
        negatives.groupby("hard_negative")["flagged"]
        .agg(applications="size", flagged="sum", false_positive_rate="mean")
        .reset_index()
    )
    rows = []
    for detector in sorted({f.detector for f in findings}):
        mine = [f for f in kept if f.detector == detector]
        members = {m for f in mine for m in f.members}
        known = truth.reindex(list(members))
        rows.append({
            "detector": detector,
            "findings": len(mine),
            "applications": len(members),
            "precision": float(known["is_fraud"].fillna(False).astype(bool).mean()) if len(members) else np.nan,
        })
    return Evaluation(summary, by_typology, by_negative, pd.DataFrame(rows))
