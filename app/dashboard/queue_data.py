"""What the alert queue shows: findings with their members, filters, weekly volume.

:func:`findings_table` is one columnar pass over the store (10,000 findings:
well under a second, then cached per data version): for each finding its
member count, exposure (the sum of its members' loan amounts), known-bad
members, the time span of its applications, its top evidence item and the
stronger finding it sits in (:func:`containment`).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from ringscope.graph.model import FINDING_TARGETS, KNOWN_BAD_LABELS

__all__ = [
    "finding_members",
    "findings_table",
    "flagged_applications",
    "filter_queue",
    "volume_by_week",
    "containment",
    "top_evidence",
    "CONTAINED",
]

#: share of a finding's applications inside a stronger finding from which it is shown under it
CONTAINED = 0.5


def _involves(store: Any, label: str) -> pd.DataFrame:
    rel = store.read_relationships(f"Finding-INVOLVES-{label}", ["role"])
    if "role" not in rel.columns:
        rel["role"] = pd.Series([None] * len(rel), dtype=object)
    return rel


def finding_members(store: Any) -> pd.DataFrame:
    """Every INVOLVES edge: ``finding``, ``label``, ``key``, ``role``."""
    frames = []
    for label in FINDING_TARGETS:
        rel = _involves(store, label)
        if len(rel):
            frames.append(
                pd.DataFrame(
                    {
                        "finding": rel["src"].astype(str),
                        "label": label,
                        "key": rel["dst"].astype(str),
                        "role": rel["role"].astype(object),
                    }
                )
            )
    if not frames:
        return pd.DataFrame(columns=["finding", "label", "key", "role"])
    return pd.concat(frames, ignore_index=True)


def findings_table(store: Any) -> pd.DataFrame:
    """One row per finding, ready for the queue, best first (score, then size):

    ``finding``, ``detector``, ``kind``, ``score``, ``size``, ``summary``,
    ``run_at``, ``first_applied``, ``last_applied``, ``agent`` (most common
    agent of its applications), ``members`` (member applications),
    ``exposure`` (¥, the sum of the members' loan amounts), ``known_bad``
    (members whose outcome is fraud or default), ``top_feature``,
    ``top_detail``, ``top_values`` (the evidence item with the largest
    contribution), ``rank`` (0 is the strongest), ``parent`` (the strongest
    finding holding at least :data:`CONTAINED` of its applications, or
    ``None``) and ``contained`` (that share).

    Notes
    -----
    One read of the Finding table, the INVOLVES-Application edges, the
    applications' dates, amounts and outcomes and SUBMITTED_BY; the rest is
    pandas (10k findings: a few hundred milliseconds, most of it JSON).
    """
    cols = ["detector", "kind", "score", "size", "summary", "run_at", "evidence"]
    nodes = store.read_nodes("Finding", cols)
    for c in cols:
        if c not in nodes.columns:
            nodes[c] = pd.NA
    nodes = nodes.rename(columns={"key": "finding"})
    nodes["finding"] = nodes["finding"].astype(str)
    nodes["score"] = pd.to_numeric(nodes["score"], errors="coerce").fillna(0.0)
    nodes["size"] = pd.to_numeric(nodes["size"], errors="coerce").fillna(0).astype(int)
    members = _involves(store, "Application")
    members = members[members["role"].fillna("member") == "member"][["src", "dst"]].astype(str)
    members = members.drop_duplicates()
    nodes["agent"] = pd.Series([None] * len(nodes), dtype=object)
    if len(members):
        apps = store.read_nodes("Application", ["applied_at", "amount", "label"]).rename(columns={"key": "dst"})
        for c in ("applied_at", "amount", "label"):
            if c not in apps.columns:
                apps[c] = pd.NA
        apps["dst"] = apps["dst"].astype(str)
        apps["applied_at"] = pd.to_datetime(apps["applied_at"], utc=True, errors="coerce", format="mixed")
        apps["amount"] = pd.to_numeric(apps["amount"], errors="coerce")
        apps["bad"] = apps["label"].isin(list(KNOWN_BAD_LABELS)).to_numpy(bool)
        dated = members.merge(apps[["dst", "applied_at", "amount", "bad"]], on="dst", how="left")
        per = dated.groupby("src").agg(
            first_applied=("applied_at", "min"),
            last_applied=("applied_at", "max"),
            members=("dst", "size"),
            exposure=("amount", "sum"),
            known_bad=("bad", "sum"),
        )
        for c in per.columns:
            nodes[c] = nodes["finding"].map(per[c])
        agents = store.read_relationships("Application-SUBMITTED_BY-Agent", [])[["src", "dst"]]
        if len(agents):
            via = members.merge(agents.astype(str).rename(columns={"src": "dst", "dst": "agent"}), on="dst")
            top = (
                via.groupby(["src", "agent"])
                .size()
                .reset_index(name="n")
                .sort_values(["src", "n", "agent"], ascending=[True, False, True])
                .drop_duplicates("src")
                .set_index("src")["agent"]
            )
            nodes["agent"] = nodes["finding"].map(top)
    else:
        nodes["first_applied"] = pd.NaT
        nodes["last_applied"] = pd.NaT
        nodes["members"] = 0
        nodes["exposure"] = 0.0
        nodes["known_bad"] = 0
    nodes["first_applied"] = pd.to_datetime(nodes["first_applied"], utc=True)
    nodes["last_applied"] = pd.to_datetime(nodes["last_applied"], utc=True)
    # a finding with no member edge (an older store) still says how big it is
    counted = pd.to_numeric(nodes["members"], errors="coerce").fillna(0).astype(int)
    nodes["members"] = np.where(counted > 0, counted, nodes["size"])
    nodes["exposure"] = pd.to_numeric(nodes["exposure"], errors="coerce").fillna(0.0).astype(float)
    nodes["known_bad"] = pd.to_numeric(nodes["known_bad"], errors="coerce").fillna(0).astype(int)
    top = top_evidence(nodes["evidence"])
    nodes["top_feature"] = top["feature"].to_numpy(object)
    nodes["top_detail"] = top["detail"].to_numpy(object)
    nodes["top_values"] = top["values"].to_numpy(object)
    nodes = nodes.sort_values(["score", "size", "finding"], ascending=[False, False, True], kind="stable")
    nodes = nodes.reset_index(drop=True)
    nodes["rank"] = np.arange(len(nodes))
    nested = containment(members.rename(columns={"src": "finding", "dst": "application"}), nodes["finding"])
    nodes["parent"] = nodes["finding"].map(nested["parent"]).astype(object)
    nodes["parent"] = nodes["parent"].where(nodes["parent"].notna(), None)
    nodes["contained"] = nodes["finding"].map(nested["contained"]).astype(float)
    return nodes[
        [
            "finding",
            "detector",
            "kind",
            "score",
            "size",
            "summary",
            "run_at",
            "first_applied",
            "last_applied",
            "agent",
            "members",
            "exposure",
            "known_bad",
            "top_feature",
            "top_detail",
            "top_values",
            "rank",
            "parent",
            "contained",
        ]
    ]


def top_evidence(evidence: pd.Series) -> pd.DataFrame:
    """The evidence item with the largest contribution of each finding:
    ``feature``, ``detail``, ``values`` (``None`` where there is none or the
    stored JSON is unreadable: one bad row never hides the queue).

    Example
    -------
    >>> ev = pd.Series(['[{"feature": "a", "contribution": 0.1, "detail": "x", "values": [1]},'
    ...                 ' {"feature": "b", "contribution": 0.4, "detail": "y", "values": [2]}]', "not json", None])
    >>> top_evidence(ev)["feature"].tolist()
    ['b', None, None]
    """
    feature: list[Any] = []
    detail: list[Any] = []
    values: list[Any] = []
    for raw in evidence.tolist():
        best = None
        if isinstance(raw, str) and raw.startswith("["):
            try:
                items = json.loads(raw)
            except ValueError:
                items = []
            scored = [i for i in items if isinstance(i, dict)]
            if scored:
                best = max(scored, key=lambda i: _number(i.get("contribution")))
        feature.append(best.get("feature") if best else None)
        detail.append(best.get("detail") if best else None)
        vals = best.get("values") if best else None
        values.append(tuple(vals) if isinstance(vals, list) else ())
    out = pd.DataFrame(index=evidence.index)
    for name, column in (("feature", feature), ("detail", detail), ("values", values)):
        out[name] = pd.Series(column, index=evidence.index, dtype=object)
    return out


def _number(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return float("-inf")
    return number if number == number else float("-inf")


def containment(members: pd.DataFrame, ranked: pd.Series, at_least: float = CONTAINED) -> pd.DataFrame:
    """For each finding at least ``at_least`` of whose applications are in a
    stronger finding (earlier in ``ranked``, best first), that finding:
    index ``finding``, columns ``parent`` (the strongest such) and
    ``contained`` (the share of its applications in it).

    Parameters
    ----------
    members : DataFrame with ``finding`` and ``application`` (one row per member)
    ranked : finding ids, strongest first

    Example
    -------
    >>> m = pd.DataFrame({"finding": list("AAAABBBCC"), "application": list("1234125" "67")})
    >>> containment(m, pd.Series(["A", "B", "C"])).to_dict("index")
    {'B': {'parent': 'A', 'contained': 0.6666666666666666}}

    Notes
    -----
    A self-join on the application: O(sum over applications of the
    number of findings holding it, squared).
    """
    empty = pd.DataFrame({"parent": pd.Series([], dtype=object), "contained": pd.Series([], dtype=float)})
    empty.index.name = "finding"
    if members.empty:
        return empty
    rank = pd.Series(np.arange(len(ranked)), index=pd.Index(ranked.astype(str)))
    m = members[["finding", "application"]].astype(str).drop_duplicates()
    m = m[m["finding"].isin(rank.index)]
    m = m.assign(rank=m["finding"].map(rank).to_numpy(np.int64))
    size = m.groupby("finding").size()
    # only applications held by two findings or more can be shared
    many = m["application"].duplicated(keep=False).to_numpy()
    shared = m[many]
    if shared.empty:
        return empty
    pairs = shared.merge(shared, on="application", suffixes=("", "_in"))
    pairs = pairs[pairs["rank_in"].to_numpy() < pairs["rank"].to_numpy()]
    if pairs.empty:
        return empty
    overlap = pairs.groupby(["finding", "finding_in", "rank_in"], sort=False).size().reset_index(name="n")
    overlap["contained"] = overlap["n"].to_numpy() / overlap["finding"].map(size).to_numpy()
    held = overlap[overlap["contained"].to_numpy() >= at_least]
    held = held.sort_values(["finding", "rank_in"]).drop_duplicates("finding")
    out = pd.DataFrame(
        {"parent": held["finding_in"].to_numpy(object), "contained": held["contained"].to_numpy(float)},
        index=pd.Index(held["finding"].to_numpy(object), name="finding"),
    )
    return out


def flagged_applications(store: Any) -> pd.DataFrame:
    """Applications the risk model sent to review or decline, highest score
    first: ``application_id``, ``risk_score``, ``risk_decision``,
    ``applied_at``, ``amount``, ``product``, ``applicant_name`` (empty before
    ``ringscope train``)."""
    cols = ["risk_score", "risk_decision", "applied_at", "amount", "product", "applicant_name"]
    apps = store.read_nodes("Application", cols)
    for c in cols:
        if c not in apps.columns:
            apps[c] = pd.Series([None] * len(apps), dtype=object)
    apps = apps.rename(columns={"key": "application_id"})
    apps["risk_score"] = pd.to_numeric(apps["risk_score"], errors="coerce")
    flagged = apps[apps["risk_decision"].isin(["review", "decline"]).fillna(False).to_numpy(bool)]
    return flagged.sort_values("risk_score", ascending=False).reset_index(drop=True)[["application_id", *cols]]


def filter_queue(
    table: pd.DataFrame,
    statuses: pd.Series | None = None,
    detectors: list[str] | None = None,
    min_size: int = 0,
    max_size: int | None = None,
    status: list[str] | None = None,
    date_from: Any = None,
    date_to: Any = None,
    agent: str | None = None,
    min_score: float = 0.0,
) -> pd.DataFrame:
    """Apply the queue's filters; ``statuses`` maps finding → case status
    (findings without a case are ``Open``).

    Example
    -------
    >>> t = pd.DataFrame({"finding": ["a", "b"], "detector": ["x", "y"], "size": [3, 9], "score": [.9, .5],
    ...                   "first_applied": pd.to_datetime(["2025-01-01", "2025-02-01"], utc=True), "agent": [None, "G1"]})
    >>> filter_queue(t, min_size=5)["finding"].tolist()
    ['b']
    """
    out = table.copy()
    if statuses is not None and len(statuses):
        out["status"] = out["finding"].map(statuses)
    elif "status" not in out.columns:  # a table from queue_view.with_cases has its own
        out["status"] = None
    out["status"] = out["status"].fillna("Open")
    mask = np.ones(len(out), dtype=bool)
    if detectors:
        mask &= out["detector"].isin(detectors).to_numpy()
    mask &= (out["size"] >= min_size).to_numpy()
    if max_size is not None:
        mask &= (out["size"] <= max_size).to_numpy()
    if min_score:
        mask &= (out["score"] >= min_score).to_numpy()
    if status:
        mask &= out["status"].isin(status).to_numpy()
    if date_from is not None:
        mask &= (out["first_applied"] >= pd.Timestamp(date_from, tz="UTC")).fillna(False).to_numpy(bool)
    if date_to is not None:
        end = pd.Timestamp(date_to, tz="UTC") + pd.Timedelta(days=1)
        mask &= (out["first_applied"] < end).fillna(False).to_numpy(bool)
    if agent:
        mask &= (out["agent"] == agent).fillna(False).to_numpy(bool)
    return out[mask]


def volume_by_week(table: pd.DataFrame) -> pd.DataFrame:
    """Findings per week of their first application (for the small chart)."""
    dated = table.dropna(subset=["first_applied"])
    if dated.empty:
        return pd.DataFrame({"week": [], "findings": []})
    week = dated["first_applied"].dt.tz_localize(None).dt.to_period("W").dt.start_time
    counts = week.value_counts().sort_index()
    return pd.DataFrame({"week": counts.index, "findings": counts.to_numpy()})
