"""Details of one node, one application, and the models of a store."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ringscope.app.dashboard.graph_index import (
    VIEW_PROPERTIES,
    GraphIndex,
    node_id,
    split_node_id,
)

__all__ = ["node_details", "view_properties", "ApplicationDetail", "application_detail", "models_summary"]


def node_details(store: Any, nid: str) -> dict[str, Any]:
    """All stored properties of one node (unmasked; pages mask)."""
    label, key = split_node_id(nid)
    from ringscope.graph.model import NODE_TYPES

    props = list(NODE_TYPES[label].properties) if label in NODE_TYPES else []
    frame = store.node_properties(label, [key], props) if props else pd.DataFrame({"key": [key]})
    out: dict[str, Any] = {"label": label, "key": key}
    if len(frame):
        for col, value in frame.iloc[0].items():
            if col != "key" and value is not None and not (isinstance(value, float) and np.isnan(value)):
                try:
                    if pd.isna(value):
                        continue
                except (TypeError, ValueError):
                    pass
                out[col] = value
    return out


def view_properties(store: Any, nodes: list[str]) -> dict[str, dict[str, Any]]:
    """The few properties the graph view shows, for ``nodes``, by id (one read per label)."""
    by_label: dict[str, list[str]] = {}
    for nid in nodes:
        label, key = split_node_id(nid)
        by_label.setdefault(label, []).append(key)
    out: dict[str, dict[str, Any]] = {nid: {} for nid in nodes}
    for label, keys in by_label.items():
        props = VIEW_PROPERTIES.get(label)
        if not props:
            continue
        frame = store.node_properties(label, keys, props)
        for rec in frame.to_dict("records"):
            nid = node_id(label, rec.pop("key"))
            out[nid] = {k: v for k, v in rec.items() if v is not None and not _isna(v)}
    return out


def _isna(v: Any) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


@dataclass
class ApplicationDetail:
    fields: dict[str, Any]
    score: float | None
    decision: str | None
    reasons: list[dict[str, Any]]
    findings: pd.DataFrame
    person: str | None
    history: pd.DataFrame


def application_detail(
    store: Any, index: GraphIndex, findings: pd.DataFrame, members: pd.DataFrame, application_id: str
) -> ApplicationDetail | None:
    """An application's fields, its score/decision/reasons (if scored), the
    findings it is in, and the other applications of the same person."""
    details = node_details(store, node_id("Application", application_id))
    if len(details) <= 2:
        return None
    score = details.get("risk_score")
    decision = details.get("risk_decision")
    reasons: list[dict[str, Any]] = []
    if details.get("risk_reasons"):
        try:
            reasons = json.loads(details["risk_reasons"])
        except (TypeError, ValueError):
            reasons = []
    if score is None:  # a 'risk_score' detector finding may carry it instead
        mine = members[(members["label"] == "Application") & (members["key"] == application_id)]["finding"]
        scored = findings[findings["finding"].isin(mine) & (findings["detector"] == "risk_score")]
        if len(scored):
            score = float(scored["score"].iloc[0])
            decision = None
    in_findings = members[(members["label"] == "Application") & (members["key"] == application_id)]["finding"]
    its = findings[findings["finding"].isin(in_findings)][["finding", "detector", "score", "size", "summary"]]
    person = None
    history = pd.DataFrame(columns=["application_id", "applied_at", "amount", "product", "label"])
    neighbours = index.neighbours(node_id("Application", application_id), limit=1000)
    persons = [n for n in neighbours if n.startswith("Person:")]
    if persons:
        person = split_node_id(persons[0])[1]
        apps = [split_node_id(n)[1] for n in index.neighbours(persons[0], limit=1000) if n.startswith("Application:")]
        apps = [a for a in apps if a != application_id]
        if apps:
            history = store.node_properties("Application", apps, ["applied_at", "amount", "product", "label"])
            history = history.rename(columns={"key": "application_id"}).sort_values("applied_at")
    return ApplicationDetail(
        details, None if score is None else float(score), decision, reasons, its, person, history.reset_index(drop=True)
    )


def models_summary(store: Any) -> dict[str, Any] | None:
    """The latest training report and its plots, if ``ringscope train`` saved one."""
    try:
        from ringscope.detectors.risk.scoring import models_folder

        folder = models_folder(store)
    except Exception:  # noqa: BLE001 - no scoring module: no model page content
        folder = Path(getattr(store, "location", ".")) / "models"
    override = os.environ.get("RINGSCOPE_MODELS")
    if override:
        folder = Path(override)
    latest = folder / "LATEST"
    if not latest.exists():
        return None
    version = latest.read_text(encoding="utf-8").strip()
    target = folder / version
    report_file = target / "report.json"
    if not report_file.exists():
        return None
    report = json.loads(report_file.read_text(encoding="utf-8"))
    plots = [p for p in (target / "roc.png", target / "scores.png") if p.exists()]
    from ringscope.detectors.risk.model_store import challenger, champion_history

    history = pd.DataFrame(
        [vars(e) for e in champion_history(folder)], columns=["at", "action", "before", "after", "user", "reason"]
    )
    monitoring = None
    if (folder / "monitoring.json").exists():
        try:
            monitoring = json.loads((folder / "monitoring.json").read_text(encoding="utf-8"))
        except ValueError:  # a damaged file: the page says there is no monitoring yet
            monitoring = None
    return {
        "version": version,
        "folder": str(target),
        "report": report,
        "plots": plots,
        "challenger": challenger(folder),
        "history": history,
        "monitoring": monitoring,
    }
