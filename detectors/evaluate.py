"""Compare findings with a labeled portfolio's truth (``ringscope evaluate``).

The truth folder is what ``ringscope generate`` writes (``truth/``):
``applications.csv`` (application_id, is_fraud, typology, ring_id,
hard_negative) and optionally ``guarantee_circles.csv`` (circle_id, members
as ``|``-joined borrower keys). Any generator that writes those columns can
be scored the same way.

Ring quality is measured on pairs, as entity-resolution work does: two
applications are a predicted pair when their best (highest-scoring)
multi-member finding is the same, a true pair when they share a ring_id.

``evaluate_flags`` scores what the nightly job wrote (``flags.csv``) for a
new batch the same way: ranking (AUC, precision@k), ring grouping by the
flags' ``ring_id``, recall by typology and honest applications declined.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ringscope.detectors.base import Finding

__all__ = [
    "Evaluation",
    "FlagEvaluation",
    "evaluate_findings",
    "evaluate_flags",
    "pair_scores",
    "auc",
    "precision_at_k",
    "rings_recovered",
    "best_finding_scores",
    "read_truth",
]


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


def read_truth(truth_dir: str | Path) -> pd.DataFrame:
    """``truth/applications.csv`` indexed by application_id, ``is_fraud`` as bool."""
    truth_file = Path(truth_dir) / "applications.csv"
    if not truth_file.exists():
        raise FileNotFoundError(f"{truth_file} not found: --truth must be a generator's truth/ folder")
    truth = pd.read_csv(truth_file, dtype=str, keep_default_na=False).set_index("application_id")
    truth["is_fraud"] = truth["is_fraud"].isin(["1", "true", "True"])
    return truth


def evaluate_findings(findings: list[Finding], truth_dir: str | Path, min_score: float = 0.5) -> Evaluation:
    """Score ``findings`` (those with ``score >= min_score``) against ``truth_dir``."""
    truth_dir = Path(truth_dir)
    truth = read_truth(truth_dir)
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
    for apps in ring_members.values():
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
        rows.append(
            {
                "detector": detector,
                "findings": len(mine),
                "applications": len(members),
                "precision": float(known["is_fraud"].fillna(False).astype(bool).mean()) if len(members) else np.nan,
            }
        )
    return Evaluation(summary, by_typology, by_negative, pd.DataFrame(rows))


def auc(y: Iterable, scores: Iterable) -> float:
    """Area under the ROC curve: the chance that a random positive outranks a
    random negative, ties counting one half (Mann–Whitney U). NaN when ``y``
    holds one class only.

    Example
    -------
    >>> auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    >>> auc([0, 1, 1], [0.5, 0.5, 0.9])
    0.75

    Notes
    -----
    O(n log n) (one ranking).
    """
    from scipy.stats import rankdata

    y = np.asarray(list(y), dtype=bool)
    scores = np.asarray(list(scores), dtype=float)
    positives, negatives = int(y.sum()), int((~y).sum())
    if not positives or not negatives:
        return float("nan")
    ranks = rankdata(scores)  # ties share their mean rank
    return float((ranks[y].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def precision_at_k(y: Iterable, scores: Iterable, k: int) -> float:
    """Share of positives among the ``k`` highest scores; the applications
    tied at the cut count with the positive share of their tie (the expected
    value under a random order among equals, so input order never helps).

    Example
    -------
    >>> precision_at_k([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1], 2)
    0.5
    >>> precision_at_k([1, 0, 0, 1], [0.9, 0.5, 0.5, 0.5], 2)
    0.6666666666666666
    """
    y = np.asarray(list(y), dtype=float)
    scores = np.asarray(list(scores), dtype=float)
    k = min(int(k), len(y))
    if k <= 0:
        return float("nan")
    cut = np.sort(scores)[::-1][k - 1]
    above, tied = scores > cut, scores == cut
    from_tie = k - int(above.sum())
    return float((y[above].sum() + from_tie * y[tied].mean()) / k)


def _blank_to_na(series: pd.Series) -> pd.Series:
    return series.replace("", np.nan).where(series.notna(), np.nan)


def rings_recovered(
    predicted: pd.Series,
    truth_rings: pd.Series,
    groups: Mapping[str, Iterable[str]] | None = None,
    ring_ids: Iterable[str] | None = None,
) -> tuple[int, int]:
    """How many planted rings touching the scored applications a ring_id recovers.

    Parameters
    ----------
    predicted : Series
        Scored application → predicted ring_id (blank or NA: none).
    truth_rings : Series
        Every known application (history and new) → true ring id (blank: none).
    groups : mapping, optional
        Predicted ring_id → all its member applications, history included
        (the findings' members). Without it a ring_id's group is the scored
        applications that carry it.
    ring_ids : iterable, optional
        Count only these true rings (e.g. guarantee circles).

    Returns
    -------
    (rings, recovered)

    Notes
    -----
    A true ring *counts* when at least one of its applications is scored
    (at least two without ``groups``: a batch-only group needs two). It is
    *recovered* when one ring_id R

    - is carried by at least half of the ring's scored applications, and
    - has a group G (R's members from ``groups``, else the scored applications
      carrying R) that shares at least two applications with the ring, of
      which at least half of G are the ring's and which hold at least half of
      the ring's applications (all of them with ``groups``, else its scored ones).

    Example
    -------
    >>> truth = pd.Series({"a": "T1", "b": "T1", "c": "T1", "d": "T2", "e": "T2", "f": ""})
    >>> rings_recovered(pd.Series({"a": "F1", "b": "F1", "c": "", "d": "F2", "e": "F3"}), truth)
    (2, 1)
    >>> rings_recovered(pd.Series({"c": "F1"}), truth, groups={"F1": ["a", "b", "c", "f"]})
    (1, 1)
    """
    truth_rings = _blank_to_na(truth_rings.astype(object)).dropna()
    predicted = _blank_to_na(predicted.astype(object))
    scored = set(predicted.index)
    members = truth_rings.groupby(truth_rings).groups
    wanted = None if ring_ids is None else set(ring_ids)
    carriers = predicted.dropna().groupby(predicted.dropna()).groups
    counted = recovered = 0
    for ring, apps in members.items():
        if wanted is not None and ring not in wanted:
            continue
        apps = set(apps)
        new = apps & scored
        if len(new) < (1 if groups is not None else 2):
            continue
        counted += 1
        labels = predicted.reindex(sorted(new)).dropna()
        for candidate, carried in labels.value_counts().items():
            if carried < len(new) / 2:
                break
            if groups is not None and candidate in groups:
                group, scope = set(groups[candidate]), apps
            else:
                group, scope = set(carriers[candidate]), new
            overlap = len(group & apps)
            if overlap >= 2 and overlap >= len(group) / 2 and overlap >= len(scope) / 2:
                recovered += 1
                break
    return counted, recovered


@dataclass
class FlagEvaluation:
    """Flags of a new batch against the truth (``evaluate_flags``).

    Figures are NaN where undefined (no fraud in the batch, no ring in it).
    """

    applications: int  # scored applications found in the truth
    frauds: int
    missing: int  # applications of the batch that were not scored (rejected rows)
    auc: float
    precision_at_k: float  # k = frauds
    caught: float  # share of frauds sent to review or decline
    pair_precision: float
    pair_recall: float
    pair_f1: float
    rings: int
    rings_recovered: float
    circles: int
    circles_recovered: float
    honest_declined: float
    honest_reviewed: float  # sent to review or decline
    honest_with_ring: float
    by_typology: pd.DataFrame  # typology, applications, caught, recall

    def figures(self) -> dict[str, float]:
        """Every scalar figure by name (one bench row); recall per typology as ``recall <typology>``."""
        row = {k: v for k, v in asdict(self).items() if k != "by_typology"}
        for t in self.by_typology.itertuples():
            row[f"recall {t.typology}"] = float(t.recall)
        return row


def evaluate_flags(
    flags: pd.DataFrame,
    truth_dir: str | Path | pd.DataFrame,
    new_ids: Iterable[str] | None = None,
    groups: Mapping[str, Iterable[str]] | None = None,
    circles: Iterable[str] | None = None,
) -> FlagEvaluation:
    """Score a batch's flags (``application_id, score, decision, ring_id``) against the truth.

    Parameters
    ----------
    flags : DataFrame
        What ``ringscope flag`` wrote.
    truth_dir : path or DataFrame
        A generator's ``truth/`` folder, or its ``applications.csv`` as
        returned by ``read_truth``.
    new_ids : iterable, optional
        The batch's applications (default: those in ``flags``); those not in
        ``flags`` (rejected rows) are counted as ``missing`` and left out.
    groups : mapping, optional
        ring_id → all member applications (the findings after ``flag``), so a
        new application joining a ring of the history is judged with it
        (see ``rings_recovered``).
    circles : iterable, optional
        True guarantee-circle ids (default: ``guarantee_circles.csv`` in
        ``truth_dir``; none when the truth is a frame).

    Returns
    -------
    FlagEvaluation

    Example
    -------
    >>> truth = pd.DataFrame({"application_id": list("abcdef"), "is_fraud": [1, 1, 0, 0, 0, 1],
    ...                       "typology": ["device_farm"] * 2 + [""] * 3 + ["cashflow_inconsistency"],
    ...                       "ring_id": ["R1", "R1", "", "", "", ""], "hard_negative": ""})
    >>> flags = pd.DataFrame({"application_id": list("abcdef"), "score": [0.9, 0.8, 0.7, 0.1, 0.1, 0.2],
    ...                       "decision": ["decline", "review", "decline", "pass", "pass", "pass"],
    ...                       "ring_id": ["F1", "F1", "", "", "", ""]})
    >>> e = evaluate_flags(flags, truth)
    >>> round(e.auc, 3), round(e.precision_at_k, 3), e.pair_f1, e.rings_recovered, round(e.honest_declined, 3)
    (0.889, 0.667, 1.0, 1.0, 0.333)
    """
    if isinstance(truth_dir, pd.DataFrame):
        truth = truth_dir.set_index("application_id") if "application_id" in truth_dir.columns else truth_dir
        truth = truth.assign(is_fraud=truth["is_fraud"].astype(str).isin(["1", "true", "True"]))
        circle_ids = set(circles) if circles is not None else set()
    else:
        truth = read_truth(truth_dir)
        circles_file = Path(truth_dir) / "guarantee_circles.csv"
        if circles is None and circles_file.exists():
            circles = pd.read_csv(circles_file, dtype=str, keep_default_na=False)["circle_id"]
        circle_ids = set(circles) if circles is not None else set()
    flags = flags.drop_duplicates("application_id").set_index("application_id")
    batch = list(dict.fromkeys(flags.index if new_ids is None else new_ids))
    scored = [a for a in batch if a in flags.index and a in truth.index]
    missing = sum(a not in flags.index for a in batch)
    f = flags.loc[scored]
    t = truth.loc[scored]
    y = t["is_fraud"].to_numpy(dtype=bool)
    score = pd.to_numeric(f["score"], errors="coerce").fillna(0.0).to_numpy()
    decision = f["decision"].astype(str).to_numpy()
    sent = np.isin(decision, ("review", "decline"))
    ring = _blank_to_na(f["ring_id"].astype(object).fillna(""))
    frauds = int(y.sum())

    true_ring = _blank_to_na(t["ring_id"].astype(object))
    precision, recall, f1 = pair_scores(ring, true_ring)
    true_pairs = int((true_ring.value_counts() * (true_ring.value_counts() - 1)).sum())
    predicted_pairs = int((ring.value_counts() * (ring.value_counts() - 1)).sum())
    if not true_pairs:
        recall = np.nan
        f1 = np.nan if not predicted_pairs else 0.0
    if not predicted_pairs:
        precision = np.nan
    rings, found = rings_recovered(ring, truth["ring_id"], groups)
    n_circles, circles_found = rings_recovered(ring, truth["ring_id"], groups, ring_ids=circle_ids)
    honest = ~y

    def share(mask: np.ndarray, of: np.ndarray) -> float:
        return float(mask[of].mean()) if of.any() else np.nan

    typology = t.loc[y, "typology"].replace("", "(none)")
    by_typology = (
        pd.DataFrame({"typology": typology.to_numpy(), "caught": sent[y]})
        .groupby("typology")["caught"]
        .agg(applications="size", caught="sum", recall="mean")
        .reset_index()
    )
    return FlagEvaluation(
        applications=len(scored),
        frauds=frauds,
        missing=missing,
        auc=auc(y, score),
        precision_at_k=precision_at_k(y, score, frauds) if frauds else np.nan,
        caught=share(sent, y),
        pair_precision=precision,
        pair_recall=recall,
        pair_f1=f1,
        rings=rings,
        rings_recovered=found / rings if rings else np.nan,
        circles=n_circles,
        circles_recovered=circles_found / n_circles if n_circles else np.nan,
        honest_declined=share(decision == "decline", honest),
        honest_reviewed=share(sent, honest),
        honest_with_ring=share(ring.notna().to_numpy(), honest),
        by_typology=by_typology,
    )


def best_finding_scores(findings: Iterable[Finding], app_ids: Iterable[str]) -> pd.Series:
    """Each application's highest finding score (0 where no finding holds it):
    how a full ``detect`` ranks them.

    Example
    -------
    >>> from ringscope.detectors.base import Finding
    >>> fs = [Finding("x", "ring", ("a", "b"), 0.4, ()), Finding("y", "ring", ("b",), 0.9, ())]
    >>> best_finding_scores(fs, ["a", "b", "c"]).tolist()
    [0.4, 0.9, 0.0]
    """
    best: dict[str, float] = {}
    for f in findings:
        for m in f.members:
            if f.score > best.get(m, -1.0):
                best[m] = float(f.score)
    ids = list(app_ids)
    return pd.Series([best.get(a, 0.0) for a in ids], index=ids, dtype=float)
