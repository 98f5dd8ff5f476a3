"""Flagging one application at a time, without DataFrames.

The batch path of :class:`~detectors.flagging.FlagIndex` answers a few
thousand applications in one go with vectorised pandas; for one application
its ~40 small pandas operations cost a few hundred milliseconds, whatever the
size of the neighbourhood. This path computes the same answer for one
application from the index's arrays with numpy slices, sets and dicts:

* graph features: the sharers of each of its identifiers are one CSR slice;
* the ring it would complete: a breadth-first search over gluing
  identifiers inside the same neighbourhood the batch path uses, then the
  ring detector's own scoring (:meth:`SharedIdentifierRings._finding`) on
  statistics gathered in one pass over the ring's links;
* guarantee circles: found once per index with the detector run on the
  guarantee components that hold a unit-level cycle (a circle lies inside
  one), then looked up;
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
from detectors.guarantees import GuaranteeCircles, guarantee_sccs
from detectors.reasons import accused_ring, reasons_json
from detectors.rings import BAD_LABELS, KIND_STRENGTH, SharedIdentifierRings
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
        self.glue, self.hub = arrays["glue"], arrays["hub"]
        self.people, self.fence = arrays["people"], arrays["fence"]
        self.strength = pd.Series(self.kind).map(KIND_STRENGTH).to_numpy(dtype=float)
        n_apps = len(index.app_pos)
        offsets = index._app_offsets
        row_app = np.repeat(np.arange(n_apps), np.diff(offsets))
        self.has_glue = np.zeros(n_apps, dtype=bool)
        self.has_glue[row_app[self.glue]] = True
        self.app_ids = index.app_pos.to_numpy(dtype=object)
        apps = index.apps
        self.labels = apps["label"].to_numpy(dtype=object)
        self.names = apps["applicant_name"].to_numpy(dtype=object)
        self.in_local = np.zeros(n_apps, dtype=bool)
        own = own_features(apps.reset_index(drop=True), index.portfolio.persons)
        self.own = {c: own[c].to_numpy() for c in own.columns}
        self.rings = SharedIdentifierRings()
        self._cyclic: set | None = None
        self._circles: dict | None = None

    # -- the neighbourhood and the ring it completes ------------------------------------
    def ring(self, pos: int, local: np.ndarray) -> Finding | None:
        """The shared-identifier ring holding ``pos`` among ``local``
        applications, scored as the ring detector scores it, or None."""
        if not self.has_glue[pos]:
            return None
        index = self.index
        offsets, ident_offsets, link_app = index._app_offsets, index._ident_offsets, index._link_app
        groups = index._entity_groups()
        entity = index.app_entity
        self.in_local[local] = True
        try:
            component, stack = {pos}, [pos]
            seen_keys: set[int] = set()
            seen_entities: set = set()
            while stack:
                p = stack.pop()
                for r in range(offsets[p], offsets[p + 1]):
                    i = self.ident_idx[r]
                    if not self.glue[r] or i in seen_keys:
                        continue
                    seen_keys.add(i)
                    sharers = link_app[ident_offsets[i]:ident_offsets[i + 1]]
                    for q in sharers[self.in_local[sharers]].tolist():
                        if q not in component:
                            component.add(q)
                            stack.append(q)
                # the applicant glues its own applications too (repeat borrowers)
                e = entity[p]
                if e not in seen_entities:
                    seen_entities.add(e)
                    for q in groups.get(e, ()):
                        q = int(q)
                        if self.in_local[q] and self.has_glue[q] and q not in component:
                            component.add(q)
                            stack.append(q)
        finally:
            self.in_local[local] = False
        people = {entity[q] for q in component}
        if len(people) < self.rings.min_people:
            return None
        return self._ring_finding(sorted(component), people)

    def _ring_finding(self, members: list[int], entities: set) -> Finding:
        offsets = self.index._app_offsets
        shared: dict = {}  # (kind, identifier) → (strength, people), first seen first
        hubs: dict = {}
        kinds: dict[str, set] = {}
        per_app = []
        for q in members:
            identifiers = set()
            for r in range(offsets[q], offsets[q + 1]):
                key = (self.kind[r], self.ident[r])
                if self.glue[r]:
                    identifiers.add(self.ident[r])
                    kinds.setdefault(self.kind[r], set()).add(self.ident[r])
                    if key not in shared:
                        shared[key] = (self.strength[r], self.people[r])
                if self.hub[r] and key not in hubs:
                    hubs[key] = (self.people[r], self.fence[r])
            if identifiers:
                per_app.append(len(identifiers))
        ordered = sorted(shared.items(), key=lambda kv: (-kv[1][0], -kv[1][1]))  # stable, like the detector's
        t = self.index.t[members]
        t = t[t != np.iinfo(np.int64).min]  # NaT
        surnames = {str(n)[:1] for n in self.names[members] if not pd.isna(n)}
        row = {
            "size": len(members), "people": len(entities),
            "t_min": self.index.timestamp(t.min()) if len(t) else pd.NaT,
            "t_max": self.index.timestamp(t.max()) if len(t) else pd.NaT,
            "bad": int(sum(label in BAD_LABELS for label in self.labels[members])),
            "surnames": len(surnames),
            "density": sum(per_app) / len(per_app) if per_app else 0.0,
        }
        return self.rings._finding(
            row, {k: len(v) for k, v in sorted(kinds.items())},
            [(k, i, n) for (k, i), (_, n) in ordered[:50]],
            [(k, i, n, f) for (k, i), (n, f) in list(hubs.items())[:5]],
            tuple(sorted(str(a) for a in self.app_ids[members])), set(entities),
        )

    # -- guarantee circles ------------------------------------------------------------------
    def _cyclic_components(self) -> set:
        """Guarantee components holding a unit-level cycle (built once): only
        there can a circle close."""
        if self._cyclic is None:
            g = self.index._guarantee_components()
            self._cyclic = set()
            if not g.empty:
                edges, _ = GuaranteeCircles.unit_edges(self.index.portfolio)
                sccs = guarantee_sccs(edges[["src", "dst"]])
                if len(sccs):
                    inside = (edges["src"].map(sccs) == edges["dst"].map(sccs)).to_numpy()
                    self._cyclic = set(g.loc[edges.index[inside], "wcc"])
        return self._cyclic

    def circles(self, pos: int) -> list[Finding]:
        """Guarantee circles holding the application. The circles of every
        guarantee component that holds a cycle are found once, with the
        detector on those components only; a circle lies inside one
        component, so this is what the local run would find for any
        application touching it."""
        if self._circles is None:
            self._circles = {}
            cyclic = self._cyclic_components()
            if cyclic:
                for f in GuaranteeCircles().run(self.index.guarantee_portfolio(cyclic)):
                    for member in f.members:
                        self._circles.setdefault(member, []).append(f)
        return list(self._circles.get(self.app_ids[pos], ()))

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
              with_guarantees: bool, ring_detectors: tuple[str, ...], seconds: dict[str, float]):
        """One application's flag row (a dict) and the new findings holding it."""
        started = time.perf_counter()
        local = self.index.neighbourhood(np.array([pos]))
        seconds["neighbourhood"] = seconds.get("neighbourhood", 0.0) + time.perf_counter() - started

        started = time.perf_counter()
        new_findings = []
        ring = self.ring(pos, local)
        if ring is not None:
            new_findings.append(ring)
        if with_guarantees:
            new_findings += self.circles(pos)
        seconds["local detection"] = seconds.get("local detection", 0.0) + time.perf_counter() - started

        started = time.perf_counter()
        app_id = self.app_ids[pos]
        values: dict = {c: self.own[c][pos] for c in self.own}
        values.update(self.graph_features(pos))
        stored = {f.finding_id: f for f in self.index.findings_by_app.get(app_id, [])}
        for f in new_findings:
            stored[f.finding_id] = f
        findings = list(stored.values())
        found = self.finding_features(pos, findings)
        row = [values[c] if c in values else found.get(c, 0.0) for c in model.features]
        seconds["features"] = seconds.get("features", 0.0) + time.perf_counter() - started

        started = time.perf_counter()
        score, contributions = _predict_one(model, row)
        mine = [f for f in findings if app_id in f.members]
        reasons = reasons_json(contributions, list(model.features), dict(zip(model.features, row)), mine,
                               self.index.partners_of(np.array([pos])))
        flag = {
            "application_id": app_id,
            "score": round(float(score), 4),
            "decision": str(model.decide(np.array([score]), review, decline)[0]),
            "ring_id": accused_ring(mine, app_id, contributions, model.features,
                                    model.config.review_threshold if review is None else review, ring_detectors),
            "reasons": reasons,
        }
        seconds["score"] = seconds.get("score", 0.0) + time.perf_counter() - started
        return flag, new_findings


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
