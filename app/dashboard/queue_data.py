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
    (members whose outcome is fraud or default), ``evidence`` (the stored
    JSON: :func:`top_evidence` reads it for the rows a page shows), ``rank``
    (0 is the strongest), ``parent`` (the strongest finding holding at
    least :data:`CONTAINED` of its applications, or ``None``) and
    ``contained`` (that share).

    Notes
    -----
    One read of the Finding table, the INVOLVES-Application edges, the
    applications' dates, amounts and outcomes and SUBMITTED_BY; the rest is
    array work on integer codes (10k findings, 50k members: a few tenths of
    a second).
    """
    cols = ["detector", "kind", "score", "size", "summary", "run_at", "evidence"]
    nodes = store.read_nodes("Finding", cols)
    for c in cols:
        if c not in nodes.columns:
            nodes[c] = pd.NA
    nodes = nodes.rename(columns={"key": "finding"})
    nodes["finding"] = nodes["finding"].astype(str).to_numpy(object)
    nodes["score"] = pd.to_numeric(nodes["score"], errors="coerce").fillna(0.0)
    nodes["size"] = pd.to_numeric(nodes["size"], errors="coerce").fillna(0).astype(int)
    nodes = nodes.sort_values(["score", "size", "finding"], ascending=[False, False, True], kind="stable")
    nodes = nodes.reset_index(drop=True)
    n = len(nodes)
    nodes["rank"] = np.arange(n)
    members = _involves(store, "Application")
    members = members[members["role"].fillna("member").to_numpy(object) == "member"]
    # integer codes: the finding's rank, the application's row
    f_code = _positions(nodes["finding"], members["src"])
    apps = store.read_nodes("Application", ["applied_at", "amount", "label"])
    for c in ("applied_at", "amount", "label"):
        if c not in apps.columns:
            apps[c] = pd.NA
    a_code = _positions(apps["key"], members["dst"])
    keep = f_code >= 0
    pairs = pd.DataFrame({"f": f_code[keep], "a": a_code[keep]}).drop_duplicates()
    f, a = pairs["f"].to_numpy(), pairs["a"].to_numpy()
    known = a >= 0  # an edge to an application the store does not hold counts, but adds no amount
    amount = pd.to_numeric(apps["amount"], errors="coerce").to_numpy(float)
    bad = apps["label"].isin(list(KNOWN_BAD_LABELS)).to_numpy(bool)
    # UTC as naive datetime64 (a tz-aware column turns into Timestamps object by object)
    applied = pd.to_datetime(apps["applied_at"], utc=True, errors="coerce", format="mixed").dt.tz_localize(None)
    counted = np.bincount(f, minlength=n)
    nodes["members"] = np.where(counted > 0, counted, nodes["size"].to_numpy())  # no edge (an older store): its size
    money = np.where(known, np.nan_to_num(amount[np.where(known, a, 0)]), 0.0)
    nodes["exposure"] = np.bincount(f, weights=money, minlength=n)
    nodes["known_bad"] = np.bincount(f, weights=np.where(known, bad[np.where(known, a, 0)], False), minlength=n).astype(
        int
    )
    stamps = applied.to_numpy("datetime64[ns]")
    dated = pd.DataFrame({"f": f[known], "at": stamps[a[known]]}).groupby("f")["at"].agg(["min", "max"])
    for column, agg in (("first_applied", "min"), ("last_applied", "max")):
        when = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
        when[dated.index.to_numpy(int)] = dated[agg].to_numpy("datetime64[ns]")
        nodes[column] = pd.Series(when, index=nodes.index).dt.tz_localize("UTC")
    nodes["agent"] = pd.Series([None] * n, dtype=object)
    agents = store.read_relationships("Application-SUBMITTED_BY-Agent", [])
    if len(agents) and len(f):
        agent_keys, agent_code = np.unique(agents["dst"].astype(str).to_numpy(object), return_inverse=True)
        of_app = np.full(len(apps), -1)
        at_app = _positions(apps["key"], agents["src"])
        ok = at_app >= 0
        of_app[at_app[ok]] = agent_code[ok]
        via = np.where(known, of_app[np.where(known, a, 0)], -1)
        has = via >= 0
        counts = pd.DataFrame({"f": f[has], "g": via[has]}).value_counts().reset_index(name="k")
        # the most common agent; ties go to the first name
        top = counts.sort_values(["f", "k", "g"], ascending=[True, False, True]).drop_duplicates("f")
        agent = np.full(n, None, dtype=object)
        agent[top["f"].to_numpy()] = agent_keys[top["g"].to_numpy()]
        nodes["agent"] = agent
    nested = containment(pd.DataFrame({"finding": f, "application": a}), pd.Series(np.arange(n)))
    parent = np.full(n, None, dtype=object)
    share = np.full(n, np.nan)
    if len(nested):
        rows = nested.index.to_numpy(int)
        parent[rows] = nodes["finding"].to_numpy(object)[nested["parent"].to_numpy(int)]
        share[rows] = nested["contained"].to_numpy(float)
    nodes["parent"] = pd.Series(parent, dtype=object)
    nodes["contained"] = share
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
            "evidence",
            "rank",
            "parent",
            "contained",
        ]
    ]


def _positions(keys: pd.Series, lookup: pd.Series) -> np.ndarray:
    """Row of each ``lookup`` value in ``keys`` (-1 where absent): one
    factorisation of both (fast on Arrow strings), no Python objects.

    >>> _positions(pd.Series(["a", "b", "c"]), pd.Series(["c", "x", "a"])).tolist()
    [2, -1, 0]
    """
    both = pd.concat([keys.astype(str), lookup.astype(str)], ignore_index=True)
    codes, uniques = pd.factorize(both)
    row = np.full(len(uniques), -1, dtype=np.int64)
    row[codes[: len(keys)][::-1]] = np.arange(len(keys))[::-1]  # the first row of a repeated key
    return row[codes[len(keys) :]]


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
    A self-join on the application over integer codes: O(sum over
    applications of the number of findings holding it, squared).
    """
    ids = ranked.to_numpy()
    empty = pd.DataFrame(
        {"parent": pd.Series([], dtype=ids.dtype), "contained": pd.Series([], dtype=float)},
        index=pd.Index(ids[:0], name="finding"),
    )
    if members.empty or not len(ids):
        return empty
    rank = pd.Index(ids).get_indexer(members["finding"].to_numpy())
    app, _ = pd.factorize(members["application"].to_numpy())
    keep = rank >= 0
    m = pd.DataFrame({"r": rank[keep], "a": app[keep]}).drop_duplicates()
    size = np.bincount(m["r"].to_numpy(), minlength=len(ids))
    # only applications held by two findings or more can be shared
    shared = m[m["a"].duplicated(keep=False).to_numpy()]
    if shared.empty:
        return empty
    pairs = shared.merge(shared, on="a", suffixes=("", "_in"))
    pairs = pairs[pairs["r_in"].to_numpy() < pairs["r"].to_numpy()]
    if pairs.empty:
        return empty
    overlap = pairs.groupby(["r", "r_in"], sort=True).size()  # sorted: the strongest container first
    r = overlap.index.get_level_values(0).to_numpy()
    r_in = overlap.index.get_level_values(1).to_numpy()
    share = overlap.to_numpy() / size[r]
    held = share >= at_least
    r, r_in, share = r[held], r_in[held], share[held]
    first = np.unique(r, return_index=True)[1]
    return pd.DataFrame(
        {"parent": ids[r_in[first]], "contained": share[first]}, index=pd.Index(ids[r[first]], name="finding")
    )


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
