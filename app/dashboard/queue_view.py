"""The triage queue as the investigator reads it: nested, sorted, paged, in words.

:func:`~ringscope.app.dashboard.queue_data.findings_table` holds every
finding once per data version; this module shapes what one view shows, in
columns (pandas), so a queue of 10,000 findings is ready in well under a
second:

- :func:`with_cases` adds each finding's case status and assignee;
- :func:`order_queue` puts every finding that is at least half inside a
  stronger one under it (``depth`` 1, 2, …) and sorts the top rows by
  score, exposure or newest;
- :func:`page_of` cuts one page of top rows, their nested findings with them;
- :func:`queue_rows` says each row in words: what, how big, why, when.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ringscope.app.dashboard import i18n, names
from ringscope.app.dashboard.i18n import N_, _
from ringscope.app.dashboard.masking import mask_text

__all__ = [
    "SORTS",
    "ROW_COLUMNS",
    "UNASSIGNED",
    "with_cases",
    "by_assignee",
    "order_queue",
    "page_of",
    "queue_rows",
    "why_text",
    "COLUMN_NAMES",
]

#: the queue's sort orders (stored value → words)
SORTS = {"score": N_("Score"), "exposure": N_("Exposure"), "newest": N_("Newest")}
#: the assignee filter's value for findings nobody has taken
UNASSIGNED = ""
#: columns of :func:`queue_rows`, in the order the grid shows them
ROW_COLUMNS = [
    "what",
    "score",
    "members",
    "exposure",
    "known_bad",
    "why",
    "when",
    "status",
    "assignee",
    "finding",
]

#: the grid's headers (what each column says, with its unit)
COLUMN_NAMES = {
    "what": N_("Kind"),
    "members": N_("Members"),
    "exposure": N_("Exposure (¥, members' loans)"),
    "known_bad": N_("Known bad"),
    "why": N_("Why (top evidence)"),
    "when": N_("Latest application (Beijing)"),
    "score": N_("Score (0–1)"),
    "status": N_("Status"),
    "assignee": N_("Assignee"),
    "finding": N_("Finding"),
}


def with_cases(table: pd.DataFrame, cases: pd.DataFrame) -> pd.DataFrame:
    """``table`` with ``status`` (``Open`` without a case) and ``assignee``
    (empty when nobody) from the stored cases on findings.

    Example
    -------
    >>> t = pd.DataFrame({"finding": ["a", "b"]})
    >>> c = pd.DataFrame({"target_label": ["Finding"], "target_key": ["b"], "status": ["In progress"],
    ...                   "assignee": ["ivy"]})
    >>> with_cases(t, c)[["status", "assignee"]].values.tolist()
    [['Open', ''], ['In progress', 'ivy']]
    """
    out = table.copy()
    on = cases[cases["target_label"] == "Finding"] if len(cases) else cases
    if len(on):
        on = on.drop_duplicates("target_key")
        keys = on["target_key"].astype(str).to_numpy(object)
        status = pd.Series(on["status"].to_numpy(object), index=keys)
        assignee = pd.Series(on["assignee"].to_numpy(object), index=keys)
        out["status"] = out["finding"].map(status)
        out["assignee"] = out["finding"].map(assignee)
    else:
        out["status"] = None
        out["assignee"] = None
    out["status"] = out["status"].where(out["status"].notna() & (out["status"] != ""), "Open").astype(object)
    out["assignee"] = out["assignee"].where(out["assignee"].notna(), "").astype(str)
    return out


def by_assignee(table: pd.DataFrame, assignee: str | None) -> pd.DataFrame:
    """Findings assigned to ``assignee`` (:data:`UNASSIGNED`: to nobody;
    ``None``: everyone's).

    >>> t = pd.DataFrame({"finding": ["a", "b", "c"], "assignee": ["ivy", "", "ian"]})
    >>> by_assignee(t, "ivy")["finding"].tolist(), by_assignee(t, UNASSIGNED)["finding"].tolist()
    (['a'], ['b'])
    """
    if assignee is None:
        return table
    return table[(table["assignee"].fillna("") == assignee).to_numpy(bool)]


def order_queue(shown: pd.DataFrame, by: str = "score", parents: pd.Series | None = None) -> pd.DataFrame:
    """``shown`` in queue order, with ``depth`` (0: a top row), ``under``
    (the finding it is shown under) and ``top`` (its top row).

    A finding whose ``parent`` (from :func:`findings_table`) is not shown
    (filtered out) goes under the nearest shown ancestor, or to the top.
    Top rows are sorted by ``by`` — ``score`` (strongest first),
    ``exposure`` (largest first) or ``newest`` (latest application first)
    — each followed by the findings under it, strongest first.

    Parameters
    ----------
    shown : findings to show, with ``finding``, ``rank``, ``parent``,
        ``exposure``, ``last_applied``
    parents : finding → parent of every finding (to climb through the hidden
        ones); default: ``shown``'s own

    Example
    -------
    >>> t = pd.DataFrame({"finding": ["A", "B", "C"], "rank": [0, 1, 2], "parent": [None, None, "A"],
    ...                   "exposure": [10.0, 99.0, 1.0], "last_applied": pd.to_datetime(["2025-01-01"] * 3)})
    >>> order_queue(t, "exposure")[["finding", "depth"]].values.tolist()
    [['B', 0], ['A', 0], ['C', 1]]

    Notes
    -----
    O(n log n) for the sort; one pass over the nested findings.
    """
    if by not in SORTS:
        raise ValueError(f"The 'by' parameter of order_queue must be one of {list(SORTS)}. Got {by!r} instead.")
    if shown.empty:
        return shown.assign(depth=pd.Series([], dtype=int), under=None, top=None)
    t = shown.sort_values("rank", kind="stable").reset_index(drop=True)
    ids = t["finding"].to_numpy(object)
    n = len(ids)
    parent = t["parent"].to_numpy(object)
    nested_rows = np.flatnonzero(pd.notna(parent))
    under = np.full(n, -1, dtype=np.int64)  # row of the finding each row is shown under
    if len(nested_rows):
        index = pd.Index(ids)
        under[nested_rows] = index.get_indexer(parent[nested_rows])
        hidden = nested_rows[under[nested_rows] < 0]
        if len(hidden):  # the parent is filtered out: climb to the nearest shown ancestor
            source = parents if parents is not None else pd.Series(parent, index=ids)
            parent_of = source.dropna().to_dict()
            at = {f: i for i, f in enumerate(ids)}
            for i in hidden:
                up, steps = parent_of.get(parent[i]), 0
                while up is not None and up not in at and steps < 1000:
                    up, steps = parent_of.get(up), steps + 1
                under[i] = at.get(up, -1) if up is not None else -1
    tops = np.flatnonzero(under < 0)
    if by == "exposure":
        tops = tops[np.lexsort((tops, -t["exposure"].to_numpy(float)[tops]))]
    elif by == "newest":
        when = pd.to_datetime(t["last_applied"], utc=True)
        stamp = np.where(when.isna().to_numpy(), np.iinfo(np.int64).min, when.to_numpy("datetime64[ns]").view("int64"))
        tops = tops[np.lexsort((tops, -stamp[tops].astype(float)))]
    # depth by walking up; a parent is always a stronger (earlier) row, so this ends
    depth = np.zeros(n, dtype=np.int64)
    cur = under.copy()
    while (cur >= 0).any():
        up = cur >= 0
        depth[up] += 1
        cur[up] = under[cur[up]]
    # each row's path from its top row: the top's place in the sort, then the
    # rows (strongest first) down to it; sorting the paths gives the tree order
    width = int(depth.max()) + 1
    path = np.full((n, width), -1, dtype=np.int64)
    cur, level = np.arange(n), depth.copy()
    while (level >= 0).any():
        live = np.flatnonzero(level >= 0)
        path[live, level[live]] = cur[live]
        cur[live] = under[cur[live]]
        level[live] -= 1
    place = np.empty(n, dtype=np.int64)
    place[tops] = np.arange(len(tops))
    root = path[:, 0].copy()
    path[:, 0] = place[root]
    order = np.lexsort(path.T[::-1])
    out = t.iloc[order].reset_index(drop=True)
    out["depth"] = depth[order]
    shown_under = under[order]
    out["under"] = pd.Series(np.where(shown_under >= 0, ids[np.maximum(shown_under, 0)], None), dtype=object)
    out["top"] = ids[root[order]]
    return out


def page_of(ordered: pd.DataFrame, page: int, size: int = 50) -> pd.DataFrame:
    """Page ``page`` (from 1) of :func:`order_queue`'s rows: ``size`` top
    rows, each with the findings under it.

    >>> t = pd.DataFrame({"finding": list("ABCD"), "depth": [0, 1, 0, 0]})
    >>> page_of(t, 1, 2)["finding"].tolist(), page_of(t, 2, 2)["finding"].tolist()
    (['A', 'B', 'C'], ['D'])
    """
    if ordered.empty:
        return ordered
    top_index = np.cumsum(ordered["depth"].to_numpy() == 0) - 1
    return ordered[(top_index // size) == (max(1, int(page)) - 1)]


def why_text(feature: Any, detail: Any, values: Any, kind: Any = None, size: Any = None, summary: Any = None) -> str:
    """The top evidence item in words (masked), or what the finding is when
    it has none.

    >>> why_text("time_compactness", "applied within 1.3 days", (1.3,))
    '1.30 天内集中申请'
    """
    if feature is None or (isinstance(feature, float) and feature != feature):
        return mask_text(names.finding_summary(kind, size, summary))
    return mask_text(names.evidence_text(feature, detail, list(values or ())))


def queue_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """One line per finding for the grid (:data:`ROW_COLUMNS`), in the
    session's language: *what* (the kind in words; a nested one indented
    under its stronger finding, with the share inside it), *how big*
    (members, exposure in ¥, known-bad members), *why* (the top evidence
    in words, personal data masked), *when* (the latest application,
    Beijing time to the minute), then score, case status, assignee, id.

    Example
    -------
    >>> t = pd.DataFrame({"finding": ["A"], "kind": ["guarantee_circle"], "depth": [0], "contained": [None],
    ...     "members": [3], "exposure": [1830000.0], "known_bad": [1], "top_feature": ["exposure"],
    ...     "top_detail": ["…"], "top_values": [(1830000, 900000)], "size": [3], "summary": [""],
    ...     "last_applied": pd.to_datetime(["2025-03-01 01:00"], utc=True), "score": [0.8],
    ...     "status": ["Open"], "assignee": [""]})
    >>> row = queue_rows(t).iloc[0]
    >>> row["what"], row["exposure"], row["why"], row["when"]
    ('担保圈', '¥1,830,000', '圈内贷款合计 ¥1,830,000；担保合计 ¥900,000', '2025-03-01 09:00')
    """
    if "top_feature" not in rows.columns:  # read the stored evidence of these rows only
        from ringscope.app.dashboard.queue_data import top_evidence

        top = top_evidence(rows["evidence"] if "evidence" in rows.columns else pd.Series([None] * len(rows)))
        rows = rows.assign(
            top_feature=top["feature"].to_numpy(object),
            top_detail=top["detail"].to_numpy(object),
            top_values=top["values"].to_numpy(object),
        )
    kinds = [names.kind_name(k) for k in rows["kind"]]
    what = []
    for kind, depth, share in zip(kinds, rows["depth"], rows["contained"]):
        if depth:
            pct = "" if share is None or share != share else f"{float(share):.0%}"
            nested = _("({share} inside)").format(share=pct) if pct else ""
            kind = "　" * (int(depth) - 1) + "↳ " + kind + (f" {nested}" if nested else "")
        what.append(kind)
    out = pd.DataFrame(
        {
            "what": what,
            "members": rows["members"].astype(int).to_numpy(),
            "exposure": [i18n.fmt_amount(v) for v in rows["exposure"]],
            "known_bad": rows["known_bad"].astype(int).to_numpy(),
            "why": [
                why_text(f, d, v, k, n, s)
                for f, d, v, k, n, s in zip(
                    rows["top_feature"],
                    rows["top_detail"],
                    rows["top_values"],
                    rows["kind"],
                    rows["size"],
                    rows["summary"],
                )
            ],
            "when": [i18n.fmt_time(v) for v in rows["last_applied"]],
            "score": rows["score"].astype(float).to_numpy(),
            "status": [names.status_name(s) for s in rows["status"]],
            "assignee": rows["assignee"].fillna("").astype(str).to_numpy(object),
            "finding": rows["finding"].astype(str).to_numpy(object),
        }
    )
    return out[ROW_COLUMNS]
