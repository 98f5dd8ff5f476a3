"""Flagging one application at a time.

The batch path of :class:`~ringscope.detectors.risk.flagging.FlagIndex` computes features
for a few thousand applications in one go with vectorised pandas; for one
application its small pandas operations cost a few hundred milliseconds,
whatever the size of the neighbourhood. This path computes the same features
for one application from the index's arrays with numpy slices, sets and
dicts (detection is shared: both paths take their findings from
``FlagIndex.detect``):

* own-field features computed once for every application, then looked up;
* graph and finding features from the same array kernels as the batch
  (``FlagIndex.graph_features``, ``FlagIndex.finding_features``);
* the compiled scorecard, reason codes and evidence, one row.

``tests/detectors/test_flagging_single.py`` checks that both paths give the
same flags and findings on every application of a planted portfolio.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from ringscope.detectors.base import Finding
from ringscope.detectors.risk.features import own_features
from ringscope.detectors.risk.reasons import accused_ring, reasons_json
from ringscope.detectors.risk.scoring import TrainedModel

__all__ = ["SingleApplicationPath"]


class SingleApplicationPath:
    """Per-application scoring over a :class:`~ringscope.detectors.risk.flagging.FlagIndex`.

    Built on first use (``FlagIndex.score`` with one or a few applications):
    the own-field features of every application are computed once,
    vectorised, so that each call only looks them up.
    """

    def __init__(self, index) -> None:
        self.index = index
        self.app_ids = index.app_pos.to_numpy(dtype=object)
        apps = index.apps
        own = own_features(apps.reset_index(drop=True), index.portfolio.persons)
        self.own = {c: own[c].to_numpy() for c in own.columns}

    # -- one application --------------------------------------------------------------------------
    def score(
        self,
        model: TrainedModel,
        pos: int,
        review: float | None,
        decline: float | None,
        findings_around: list[Finding],
        ring_detectors: tuple[str, ...],
        seconds: dict[str, float],
    ) -> dict:
        """One application's flag row (a dict), given the findings holding it
        (``FlagIndex.findings_around``)."""
        started = time.perf_counter()
        app_id = self.app_ids[pos]
        values: dict = {c: self.own[c][pos] for c in self.own}
        target = np.array([pos])
        values.update(self.index.graph_features(target).iloc[0].to_dict())
        findings = list(findings_around)
        found = self.index.finding_features(target, findings).iloc[0].to_dict()
        row = [values[c] if c in values else found.get(c, 0.0) for c in model.features]
        seconds["features"] = seconds.get("features", 0.0) + time.perf_counter() - started

        started = time.perf_counter()
        score, contributions = _predict_one(model, row)
        mine = [f for f in findings if app_id in f.members]
        reasons = reasons_json(
            contributions,
            list(model.features),
            dict(zip(model.features, row)),
            mine,
            self.index.partners_of(np.array([pos])),
        )
        flag = {
            "application_id": app_id,
            "score": round(float(score), 4),
            "decision": str(model.decide(np.array([score]), review, decline)[0]),
            "ring_id": accused_ring(
                mine,
                app_id,
                contributions,
                model.features,
                model.config.review_threshold if review is None else review,
                ring_detectors,
            ),
            "reasons": reasons,
        }
        seconds["score"] = seconds.get("score", 0.0) + time.perf_counter() - started
        return flag


def _predict_one(model: TrainedModel, row: list) -> tuple[float, np.ndarray]:
    """Score and per-feature contributions of one feature row."""
    from ringscope.detectors.risk.scoring import contributions

    compiled = model.compiled()  # None until built
    if compiled is None:
        frame = pd.DataFrame([row], columns=model.features)
        for c in frame.columns:
            if frame[c].dtype == object:
                frame[c] = frame[c].astype("string")
        compiled = model.compiled(frame)
        if compiled is None:  # the boosted model: sklearn on a one-row frame
            return float(model.predict_proba(frame)[0]), contributions(model, frame).to_numpy()[0]
    return compiled.predict_one(row)
