"""What the alert queue shows: findings with their members, filters, weekly volume."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ringscope.graph.model import FINDING_TARGETS

__all__ = ["finding_members", "findings_table", "flagged_applications", "filter_queue", "volume_by_week"]


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
    """One row per finding, ready for the queue: ``finding``, ``detector``,
    ``kind``, ``score``, ``size``, ``summary``, ``run_at``, ``first_applied``,
    ``last_applied``, ``agent`` (most common agent of its applications),
    best first.

    Notes
    -----
    One read of the Finding table, the INVOLVES-Application edges, the
    applications' dates and SUBMITTED_BY; the rest is pandas (10k findings:
    tens of milliseconds).
    """
    cols = ["detector", "kind", "score", "size", "summary", "run_at"]
    nodes = store.read_nodes("Finding", cols)
    for c in cols:
        if c not in nodes.columns:
            nodes[c] = pd.NA
    nodes = nodes.rename(columns={"key": "finding"})
    nodes["score"] = pd.to_numeric(nodes["score"], errors="coerce").fillna(0.0)
    nodes["size"] = pd.to_numeric(nodes["size"], errors="coerce").fillna(0).astype(int)
    members = _involves(store, "Application")
    members = members[members["role"].fillna("member") == "member"][["src", "dst"]]
    if len(members):
        apps = store.read_nodes("Application", ["applied_at"]).rename(columns={"key": "dst"})
        apps["applied_at"] = pd.to_datetime(apps["applied_at"], utc=True, errors="coerce")
        dated = members.merge(apps, on="dst", how="left")
        span = dated.groupby("src")["applied_at"].agg(["min", "max"])
        nodes["first_applied"] = nodes["finding"].map(span["min"])
        nodes["last_applied"] = nodes["finding"].map(span["max"])
        agents = store.read_relationships("Application-SUBMITTED_BY-Agent", [])[["src", "dst"]]
        if len(agents):
            via = members.merge(agents.rename(columns={"src": "dst", "dst": "agent"}), on="dst")
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
            nodes["agent"] = pd.NA
    else:
        nodes["first_applied"] = pd.NaT
        nodes["last_applied"] = pd.NaT
        nodes["agent"] = pd.NA
    nodes["first_applied"] = pd.to_datetime(nodes["first_applied"], utc=True)
    nodes["last_applied"] = pd.to_datetime(nodes["last_applied"], utc=True)
    nodes = nodes.sort_values(["score", "size", "finding"], ascending=[False, False, True], kind="stable")
    return nodes.reset_index(drop=True)[
        ["finding", "detector", "kind", "score", "size", "summary", "run_at", "first_applied", "last_applied", "agent"]
    ]


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
    out["status"] = out["finding"].map(statuses) if statuses is not None and len(statuses) else None
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
