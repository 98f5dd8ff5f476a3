"""Flagging one application at a time, without DataFrames.

The batch path of :class:`~detectors.flagging.FlagIndex` computes features
for a few thousand applications in one go with vectorised pandas; for one
application its small pandas operations cost a few hundred milliseconds,
whatever the size of the neighbourhood. This path computes the same features
for one application from the index's arrays with numpy slices, sets and
dicts (detection is shared: both paths take their findings from
``FlagIndex.detect``):

* graph features: the sharers of each of its identifiers are one CSR slice;
* finding features from the findings holding it;
* the compiled scorecard, reason codes and evidence, one row.

``tests/detectors/test_flagging_single.py`` checks that both paths give the
same flags and findings on every application of a planted portfolio.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from detectors.base import Finding
from detectors.features import LABEL_EVIDENCE, SHARED_KINDS, own_features
from detectors.reasons import reasons_json
from detectors.scoring import TrainedModel

__all__ = ["SingleApplicationPath"]


class SingleApplicationPath:
    """Per-application scoring over a :class:`~detectors.flagging.FlagIndex`.

    Built on first use (``FlagIndex.score`` with one or a few applications):
    per-link hub decisions and the own-field features of every application
    are computed once, vectorised, so that each call is only lookups.
    """

    def __init__(self, index) -> None:
        self.index = index
        arrays = index.link_arrays()
        self.kind, self.ident = arrays["kind"], arrays["identifier"]
        self.ident_idx, self.entity_code = arrays["ident_idx"], arrays["entity_code"]
        self.hub = arrays["hub"]
        self.app_ids = index.app_pos.to_numpy(dtype=object)
        apps = index.apps
        own = own_features(apps.reset_index(drop=True), index.portfolio.persons)
        self.own = {c: own[c].to_numpy() for c in own.columns}

    # -- features ---------------------------------------------------------------------------------
    def graph_features(self, pos: int) -> dict[str, float]:
        """``FlagIndex.graph_features`` for one application."""
        index = self.index
        earlier = dict.fromkeys(SHARED_KINDS, 0.0)
        bad = dict.fromkeys(SHARED_KINDS, 0.0)
        on_hub = False
        for r in range(index._app_offsets[pos], index._app_offsets[pos + 1]):
            i = self.ident_idx[r]
            if i < 0:
                continue
            rows = slice(index._ident_offsets[i], index._ident_offsets[i + 1])
            sharers = index._link_app[rows]
            before = ((index.t[sharers] < index.t[pos]) & index.timed[sharers]
                      & (index._link_entity[rows] != self.entity_code[r]))
            kind = self.kind[r]
            if kind in earlier:
                earlier[kind] += float(before.sum())
                bad[kind] += float((before & index.bad[sharers]).sum())
            on_hub = on_hub or bool(self.hub[r])
        out = {f"earlier_sharers_{k}": earlier[k] for k in SHARED_KINDS}
        out.update({f"bad_earlier_{k}": bad[k] for k in SHARED_KINDS})
        out["shares_hub"] = float(on_hub)
        out["known_bad_1hop"] = float(sum(bad[k] for k in SHARED_KINDS))
        members = index._entity_groups().get(index.app_entity[pos], np.array([pos]))
        before = (index.t[members] < index.t[pos]) & index.timed[members]
        out["earlier_applications_same_person"] = float(before.sum())
        out["bad_earlier_same_person"] = float((before & index.bad[members]).sum())
        return out

    def finding_features(self, pos: int, findings: list[Finding]) -> dict[str, float]:
        """``features.finding_features`` for one application and the findings holding it."""
        index = self.index
        app_id = self.app_ids[pos]
        out: dict[str, float] = {}
        others: set = set()
        count, largest = 0, 0
        for f in findings:
            if app_id not in f.members:
                continue
            label_part = sum(e.contribution for e in f.evidence if e.feature in LABEL_EVIDENCE)
            free = max(0.0, f.score - label_part)
            column = f"det_{f.detector}"
            out[column] = max(out.get(column, free), free)
            count += 1
            largest = max(largest, f.size)
            others.update(m for m in f.members if m != app_id)
        if count:
            out["findings_count"] = float(count)
            out["largest_finding"] = float(largest)
            known = 0
            for other in others:
                try:
                    q = index.app_pos.get_loc(other)
                except KeyError:  # a member no longer in the graph
                    continue
                if index.t[q] < index.t[pos] and index.timed[q] and index.bad[q]:
                    known += 1
            out["known_bad_2hop"] = float(known)
        return out

    # -- one application --------------------------------------------------------------------------
    def score(self, model: TrainedModel, pos: int, review: float | None, decline: float | None,
              findings_around: list[Finding], ring_detectors: tuple[str, ...], seconds: dict[str, float]) -> dict:
        """One application's flag row (a dict), given the findings holding it
        (``FlagIndex.findings_around``)."""
        started = time.perf_counter()
        app_id = self.app_ids[pos]
        values: dict = {c: self.own[c][pos] for c in self.own}
        values.update(self.graph_features(pos))
        findings = list(findings_around)
        found = self.finding_features(pos, findings)
        row = [values[c] if c in values else found.get(c, 0.0) for c in model.features]
        seconds["features"] = seconds.get("features", 0.0) + time.perf_counter() - started

        started = time.perf_counter()
        score, contributions = _predict_one(model, row)
        mine = [f for f in findings if app_id in f.members]
        reasons = reasons_json(contributions, list(model.features), dict(zip(model.features, row)), mine,
                               self.index.partners_of(np.array([pos])))
        candidates = [f for f in findings if app_id in f.members and f.detector in ring_detectors and f.size > 1]
        flag = {
            "application_id": app_id,
            "score": round(float(score), 4),
            "decision": str(model.decide(np.array([score]), review, decline)[0]),
            "ring_id": max(candidates, key=lambda f: f.score).finding_id if candidates else "",
            "reasons": reasons,
        }
        seconds["score"] = seconds.get("score", 0.0) + time.perf_counter() - started
        return flag


def _predict_one(model: TrainedModel, row: list) -> tuple[float, np.ndarray]:
    """Score and per-feature contributions of one feature row."""
    from detectors.scoring import contributions

    compiled = model.__dict__.get("_compiled")
    if compiled is None:
        frame = pd.DataFrame([row], columns=model.features)
        for c in frame.columns:
            if frame[c].dtype == object:
                frame[c] = frame[c].astype("string")
        compiled = model.compiled(frame)
        if compiled is None:  # the boosted model: sklearn on a one-row frame
            return float(model.predict(frame)[0]), contributions(model, frame).to_numpy()[0]
    return compiled.predict_one(row)
