"""Incremental flagging: score new applications against the existing graph.

A :class:`FlagIndex` holds the stored portfolio in memory as sorted arrays
(identifier → applications, person → applications, application → links),
built once. Scoring a batch then touches only the new applications and
their neighbourhood:

1. graph features straight from the index — earlier sharers of each
   identifier and which of them are known bad (the same "as of" rule as in
   training, so a new application is scored exactly like a historical one);
2. rings re-detected on the local neighbourhood (the new applications, the
   applications sharing their identifiers, and one hop further), with the
   portfolio's own hub decisions — a ring that exists only because of the new
   applications is found here, without recomputing the portfolio;
3. guarantee circles over the guarantee graph (small even at 1M), when the
   batch brings guarantees;
4. the saved model, its reasons, and the output contract
   (application_id, score, decision, ring_id, reasons). The ring_id is an
   accusation: the ring-like finding at or above the review threshold that
   explains most of the score (:func:`detectors.reasons.accused_ring`);
   weaker groupings stay in the reasons as evidence.

Statistical detectors that compare an application with the whole portfolio
(cash flow against peers, broker populations) contribute through the saved
findings of the last ``detect`` run; they see the new applications at the
next one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from detectors.base import Finding
from detectors.features import (
    BAD_LABELS,
    SHARED_KINDS,
    finding_features,
    own_features,
)
from detectors.guarantees import GuaranteeCircles
from detectors.portfolio import Portfolio
from detectors.reasons import Partner, ReasonContext, accused_ring, build_reasons
from detectors.rings import SharedIdentifierRings, entity_links
from detectors.runner import DetectionRun, findings_batch, load_findings
from detectors.scoring import TrainedModel, contributions
from detectors.values import BadValues

__all__ = ["FlagIndex", "FlagResult", "flag_applications", "RING_DETECTORS"]

#: findings that can give an application its ``ring_id`` (at or above the review threshold)
RING_DETECTORS = ("shared_identifier_rings", "guarantee_circles", "contact_loops", "broker_rings", "device_velocity")
#: up to this many applications, ``FlagIndex.score`` scores one at a time
SINGLE_PATH_MAX = 16


@dataclass
class FlagResult:
    flags: pd.DataFrame  # application_id, score, decision, ring_id, reasons
    new_findings: list[Finding] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    #: stored values read as missing (implausible dates and figures), for the summary
    bad_values: list[BadValues] = field(default_factory=list)


class _LocalPortfolio(Portfolio):
    """A Portfolio over frames already in memory (a neighbourhood)."""

    def __init__(self, applications: pd.DataFrame, links: pd.DataFrame, persons: pd.DataFrame,
                 guarantees: pd.DataFrame | None = None, roles: pd.DataFrame | None = None) -> None:
        super().__init__(store=None)
        self.__dict__["applications"] = applications.reset_index(drop=True)
        self.__dict__["links"] = links[["application_id", "kind", "identifier"]]
        self.__dict__["_ring_links"] = links
        self.__dict__["persons"] = persons
        if guarantees is not None:
            self.__dict__["guarantees"] = guarantees
        if roles is not None:
            self.__dict__["roles"] = roles

    def _stored_entities(self, label: str):
        return None


class FlagIndex:
    """The stored portfolio as arrays, for scoring new applications quickly.

    Build it after the new applications were ingested (they are then part of
    the graph like any other), then call :meth:`score`.
    """

    def __init__(self, portfolio: Portfolio, findings: list[Finding], max_expand: int = 200,
                 bad_labels: tuple[str, ...] = BAD_LABELS) -> None:
        self.portfolio = portfolio
        self.max_expand = max_expand
        # numpy-backed columns: row lookups by position stay cheap on 1M rows
        apps = _numpy_backed(portfolio.applications)
        self.apps = apps.set_index("application_id", drop=False)
        self.app_pos = pd.Index(self.apps.index)
        self.t = self.apps["applied_at"].astype("int64").to_numpy() if len(apps) else np.array([], dtype=np.int64)
        # NaT (a time read as missing) is int64's minimum: mask it, an untimed
        # application is earlier than nothing (features.identifier_history's rule)
        self.timed = self.t != np.iinfo(np.int64).min
        self.bad_labels = tuple(bad_labels)
        self.bad = self.apps["label"].isin(self.bad_labels).to_numpy()
        links = _numpy_backed(entity_links(portfolio))
        self.links = links
        rings = SharedIdentifierRings()
        self.hubs = rings.hubs(portfolio)
        self.hub_keys = set(self.hubs.index[self.hubs["hub"].to_numpy()])
        self.glue_keys = set(self.hubs.index[self.hubs["glue"].to_numpy()])
        # identifier → sharers (CSR over links sorted by identifier)
        ident = (links["kind"] + "\x1f" + links["identifier"].astype(str)).to_numpy()
        order = np.argsort(ident, kind="stable")
        self._ident_sorted = ident[order]
        self._ident_index, starts = np.unique(self._ident_sorted, return_index=True)
        self._ident_offsets = np.append(starts, len(order))
        self._ident_lookup = pd.Index(self._ident_index)
        self._link_app = self.app_pos.get_indexer(links["application_id"].to_numpy())[order]
        entity_codes, self._entities = pd.factorize(links["entity"])
        self._entity_index = pd.Index(self._entities)
        self._link_entity = entity_codes[order]
        # application → its links
        app_order = np.argsort(self.app_pos.get_indexer(links["application_id"].to_numpy()), kind="stable")
        self._app_links = links.iloc[app_order].reset_index(drop=True)
        app_codes = self.app_pos.get_indexer(self._app_links["application_id"].to_numpy())
        self._app_offsets = np.searchsorted(app_codes, np.arange(len(self.app_pos) + 1))
        # entity → applications
        first = links.drop_duplicates("application_id")
        ent = first.set_index("application_id")["entity"].reindex(self.app_pos)
        self.app_entity = ent.to_numpy()
        self.findings = findings
        self.findings_by_app: dict[str, list[Finding]] = {}
        for f in findings:
            for m in f.members:
                self.findings_by_app.setdefault(m, []).append(f)

    @classmethod
    def build(cls, store, max_expand: int = 200, bad_labels: tuple[str, ...] = BAD_LABELS) -> "FlagIndex":
        portfolio = Portfolio(store)
        return cls(portfolio, load_findings(store), max_expand, bad_labels)

    def use_known_bad(self, labels: tuple[str, ...]) -> None:
        """Count applications labelled ``labels`` as known bad (a model's
        target, ``TrainedModel.known_bad``), as its training did; what was
        built on the previous labels is dropped."""
        labels = tuple(labels)
        if labels != self.bad_labels:
            self.bad_labels = labels
            self.bad = self.apps["label"].isin(labels).to_numpy()
            self.__dict__.pop("_bad_sharers_csr", None)

    # -- neighbourhood -----------------------------------------------------------
    def _links_of(self, positions: np.ndarray) -> pd.DataFrame:
        if len(positions) == 0:
            return self._app_links.iloc[0:0]
        return self._app_links.iloc[csr_rows(self._app_offsets[positions], self._app_offsets[positions + 1])]

    def _glue_identifiers(self, positions: np.ndarray) -> np.ndarray:
        """CSR indexes of the gluing identifiers the applications at ``positions`` use."""
        if "_link_arrays" in self.__dict__:  # built by the per-application path: no strings
            arrays = self.__dict__["_link_arrays"]
            rows = csr_rows(self._app_offsets[positions], self._app_offsets[positions + 1])
            return np.unique(arrays["ident_idx"][rows[arrays["glue"][rows]]])
        links = self._links_of(positions)
        keys = links["kind"].to_numpy(object) + "\x1f" + links["identifier"].astype(str).to_numpy(object)
        keys = [k for k in set(keys) if tuple(k.split("\x1f", 1)) in self._glue_str]
        idx = self._ident_lookup.get_indexer(keys) if keys else np.zeros(0, dtype=np.int64)
        return np.unique(idx[idx >= 0])

    def neighbourhood(self, targets: np.ndarray, hops: int = 2, cap: int = 20_000) -> np.ndarray:
        """Application positions within ``hops`` gluing identifiers of ``targets``
        (hubs and identifiers with more than ``max_expand`` sharers do not expand)."""
        seen = set(targets.tolist())
        frontier = targets
        for _ in range(hops):
            keys = self._glue_identifiers(frontier)
            if len(keys) == 0:
                break
            sizes = self._ident_offsets[keys + 1] - self._ident_offsets[keys]
            keys = keys[sizes <= self.max_expand]
            new = set(self._link_app[csr_rows(self._ident_offsets[keys], self._ident_offsets[keys + 1])].tolist()) - seen
            if not new:
                break
            seen |= new
            if len(seen) > cap:
                break
            frontier = np.fromiter(new, dtype=np.int64)
        return np.fromiter(seen, dtype=np.int64)

    @property
    def _glue_str(self) -> set:
        if not hasattr(self, "_glue_str_cache"):
            self._glue_str_cache = {(k, str(i)) for k, i in self.glue_keys}
        return self._glue_str_cache

    def _persons_of(self, keys: set) -> pd.DataFrame:
        """Person rows for ``keys`` through a hash index built once."""
        if "_persons_by_key" not in self.__dict__:
            persons = self.portfolio.persons
            self.__dict__["_persons_by_key"] = _numpy_backed(persons).set_index("key", drop=False)
        table = self.__dict__["_persons_by_key"]
        rows = table.index.get_indexer(list(keys))
        return table.iloc[rows[rows >= 0]].reset_index(drop=True)

    def link_arrays(self) -> dict[str, np.ndarray]:
        """Per row of the application → links table: kind, identifier, its
        identifier's CSR index, entity code, and the portfolio's hub decisions
        (``glue``, ``hub``, ``people``, ``fence``). Built on first use."""
        if "_link_arrays" not in self.__dict__:
            links = self._app_links
            kind = links["kind"].to_numpy(dtype=object)
            ident = links["identifier"].to_numpy(dtype=object)
            keys = (links["kind"].astype(str) + "\x1f" + links["identifier"].astype(str)).to_numpy(dtype=object)
            hubs = self.hubs
            hub_keys = pd.Index(hubs.index.get_level_values(0).astype(str) + "\x1f"
                                + hubs.index.get_level_values(1).astype(str))
            at = hub_keys.get_indexer(keys)
            found = at >= 0

            def column(name: str, fill, dtype):
                out = np.full(len(keys), fill, dtype=dtype)
                out[found] = hubs[name].to_numpy(dtype=dtype)[at[found]]
                return out

            self.__dict__["_link_arrays"] = {
                "kind": kind, "identifier": ident,
                "ident_idx": self._ident_lookup.get_indexer(keys),
                "entity_code": self._entity_index.get_indexer(links["entity"].to_numpy()),
                "glue": column("glue", False, bool), "hub": column("hub", False, bool),
                "people": column("people", np.nan, float), "fence": column("fence", np.nan, float),
            }
        return self.__dict__["_link_arrays"]

    def _bad_sharers(self) -> tuple[np.ndarray, np.ndarray]:
        """Per identifier, its known-bad sharers in time order: (offsets,
        rows of the identifier CSR). Built on first use."""
        if "_bad_sharers_csr" not in self.__dict__:
            rows = np.flatnonzero(self.bad[self._link_app])
            n_ident = len(self._ident_offsets) - 1
            ident_of = np.repeat(np.arange(n_ident), np.diff(self._ident_offsets))[rows]
            order = np.lexsort((self.t[self._link_app[rows]], ident_of))
            offsets = np.searchsorted(ident_of[order], np.arange(n_ident + 1))
            self.__dict__["_bad_sharers_csr"] = (offsets, rows[order])
        return self.__dict__["_bad_sharers_csr"]

    def partners_of(self, positions: np.ndarray, per_kind: int = 5, scan: int = 20) -> list[Partner]:
        """Reason evidence for the applications at ``positions``: for each of
        their identifiers, the earliest ``scan`` known-bad applications that
        used it before, other people's only, at most ``per_kind`` per
        application and kind (reasons show five)."""
        positions = np.asarray(positions, dtype=np.int64).reshape(-1)
        starts, ends = self._app_offsets[positions], self._app_offsets[positions + 1]
        if "_link_arrays" in self.__dict__:  # the per-application path built them
            arrays = self.__dict__["_link_arrays"]
            rows = csr_rows(starts, ends)
            kinds, idents = arrays["kind"][rows], arrays["identifier"][rows]
            ident_idx, entity = arrays["ident_idx"][rows], arrays["entity_code"][rows]
        else:
            links = self._links_of(positions)
            kinds = links["kind"].to_numpy(dtype=object)
            idents = links["identifier"].to_numpy(dtype=object)
            ident_idx = self._ident_lookup.get_indexer(
                (links["kind"].astype(str) + "\x1f" + links["identifier"].astype(str)).to_numpy(dtype=object))
            entity = self._entity_index.get_indexer(links["entity"].to_numpy())
        offsets, bad_rows = self._bad_sharers()
        labels = self.__dict__.setdefault("_labels", self.apps["label"].to_numpy(dtype=object))
        out: list[Partner] = []
        at = 0
        for pos, count in zip(positions.tolist(), (ends - starts).tolist()):
            app_id, kept = self.app_pos[pos], {}
            for j in range(at, at + count):
                kind, i = kinds[j], ident_idx[j]
                if i < 0 or kept.get(kind, 0) >= per_kind:
                    continue
                rows = bad_rows[offsets[i]:offsets[i + 1]][:scan]
                sharers = self._link_app[rows]
                hit = (self.t[sharers] < self.t[pos]) & self.timed[sharers] & (self._link_entity[rows] != entity[j])
                for q in sharers[hit][: per_kind - kept.get(kind, 0)].tolist():
                    out.append(Partner(app_id, kind, idents[j], self.app_pos[q], labels[q], self.timestamp(self.t[q])))
                    kept[kind] = kept.get(kind, 0) + 1
            at += count
        return out

    def timestamp(self, value) -> pd.Timestamp:
        """An ``applied_at`` from the index's integer times."""
        applied = self.apps["applied_at"].dtype
        return pd.Timestamp(int(value), unit=np.datetime_data(applied.base)[0], tz="UTC").tz_convert(
            getattr(applied, "tz", None))

    # -- guarantees ------------------------------------------------------------------
    def _guarantee_components(self) -> pd.DataFrame:
        """Guarantee rows with the weakly connected component (over guarantees
        and legal-representative links) each belongs to; built on first use."""
        if "_guarantee_wcc" not in self.__dict__:
            from detectors.portfolio import _components

            g = self.portfolio.guarantees
            if g.empty:
                self.__dict__["_guarantee_wcc"] = g.assign(wcc=pd.Series(dtype=object))
                return self.__dict__["_guarantee_wcc"]
            src = g["guarantor_label"] + ":" + g["guarantor"].astype(str)
            dst = g["borrower_label"] + ":" + g["borrower"].astype(str)
            roles = self.portfolio.roles
            reps = roles[roles["role"] == "LEGAL_REP_OF"]
            pairs = pd.concat([
                pd.DataFrame({"src": src, "dst": dst}),
                pd.DataFrame({"src": "Person:" + reps["person"].astype(str),
                              "dst": "Company:" + reps["company"].astype(str)}),
            ], ignore_index=True)
            wcc = _components(pairs)
            self.__dict__["_guarantee_wcc"] = g.assign(wcc=src.map(wcc).to_numpy(), src_key=src.to_numpy(),
                                                       dst_key=dst.to_numpy())
        return self.__dict__["_guarantee_wcc"]

    def guarantee_lookup(self) -> dict[str, dict]:
        """Hash indexes over the guarantee rows (by application, by guarantor
        or borrower node, by component), the roles (by person, by company) and
        the applications (by borrower key): a neighbourhood is then gathered
        without scanning million-row columns. Built on first use."""
        if "_guarantee_lookup" not in self.__dict__:
            g = self._guarantee_components()
            roles = self.portfolio.roles

            def rows_by(values) -> dict:
                out: dict = {}
                for row, value in enumerate(values):
                    if isinstance(value, str):
                        out.setdefault(value, []).append(row)
                return out

            by_node = rows_by(g["src_key"].to_numpy()) if len(g) else {}
            for node, rows in (rows_by(g["dst_key"].to_numpy()) if len(g) else {}).items():
                by_node.setdefault(node, []).extend(rows)
            self.__dict__["_guarantee_lookup"] = {
                "by_app": rows_by(g["application_id"].to_numpy()) if len(g) else {},
                "by_node": by_node,
                "by_wcc": rows_by(g["wcc"].to_numpy()) if len(g) else {},
                "roles_by_person": rows_by(roles["person"].to_numpy()),
                "roles_by_company": rows_by(roles["company"].to_numpy()),
                "apps_by_borrower": rows_by(self.apps["borrower_key"].to_numpy()),
                # numpy copies: Arrow-backed columns cost milliseconds per to_numpy() at 1M rows
                "wcc": g["wcc"].to_numpy(dtype=object) if len(g) else np.zeros(0, dtype=object),
                "borrower_label": self.apps["borrower_label"].to_numpy(dtype=object),
                "borrower_key": self.apps["borrower_key"].to_numpy(dtype=object),
            }
        return self.__dict__["_guarantee_lookup"]

    def touched_components(self, app_ids: list[str]) -> set:
        """Guarantee components the applications touch: through their own
        guarantee rows or through their borrower."""
        g = self._guarantee_components()
        if g.empty:
            return set()
        lookup = self.guarantee_lookup()
        wcc = lookup["wcc"]
        rows = [r for a in app_ids for r in lookup["by_app"].get(a, ())]
        positions = self.app_pos.get_indexer(list(app_ids))
        labels = lookup["borrower_label"][positions[positions >= 0]]
        keys = lookup["borrower_key"][positions[positions >= 0]]
        for label, key in zip(labels, keys):
            if isinstance(label, str) and isinstance(key, str):
                rows += lookup["by_node"].get(f"{label}:{key}", [])
        return set(wcc[rows].tolist())

    def _guarantee_neighbourhood(self, app_ids: list[str]) -> "_LocalPortfolio | None":
        """A portfolio holding only the guarantee components the new
        applications touch (a circle can only close inside one)."""
        touched = self.touched_components(app_ids)
        if not touched:
            return None
        return self.guarantee_portfolio(touched)

    def guarantee_portfolio(self, components: set) -> "_LocalPortfolio":
        """A portfolio of the given guarantee components: their guarantees,
        the roles and applications of their parties."""
        g = self._guarantee_components()
        lookup = self.guarantee_lookup()
        sub = g.iloc[sorted(r for w in components for r in lookup["by_wcc"].get(w, ()))]
        keys = set(sub["src_key"]) | set(sub["dst_key"])
        persons = {k[7:] for k in keys if k.startswith("Person:")}
        companies = {k[8:] for k in keys if k.startswith("Company:")}
        role_rows = {r for p in persons for r in lookup["roles_by_person"].get(p, ())}
        role_rows |= {r for c in companies for r in lookup["roles_by_company"].get(c, ())}
        roles = self.portfolio.roles.iloc[sorted(role_rows)]
        app_rows = {r for k in persons | companies for r in lookup["apps_by_borrower"].get(k, ())}
        listed = self.app_pos.get_indexer(list(set(sub["application_id"].dropna())))
        app_rows |= set(listed[listed >= 0].tolist())
        member_apps = self.apps.iloc[sorted(app_rows)]
        local = _LocalPortfolio(member_apps, self.links.iloc[0:0], self.portfolio.persons.iloc[0:0],
                                guarantees=sub.drop(columns=["wcc", "src_key", "dst_key"]), roles=roles)
        # the portfolio's resolved entities, not raw keys
        local.person_entity = self.portfolio.person_entity
        local.company_entity = self.portfolio.company_entity
        return local

    # -- features ------------------------------------------------------------------
    def graph_features(self, targets: np.ndarray) -> pd.DataFrame:
        """Earlier sharers and earlier known-bad sharers per kind, from the index."""
        ids = self.app_pos[targets]
        links = self._links_of(targets)
        out = pd.DataFrame(0.0, index=pd.Index(ids, name="application_id"),
                           columns=[f"earlier_sharers_{k}" for k in SHARED_KINDS]
                           + [f"bad_earlier_{k}" for k in SHARED_KINDS] + ["shares_hub"])
        if len(links):
            keys = (links["kind"] + "\x1f" + links["identifier"].astype(str)).to_numpy()
            idx = self._ident_lookup.get_indexer(keys)
            ok = idx >= 0
            links, idx = links[ok], idx[ok]
            starts, ends = self._ident_offsets[idx], self._ident_offsets[idx + 1]
            lengths = ends - starts
            owner = np.repeat(np.arange(len(idx)), lengths)
            rows = np.repeat(starts - np.cumsum(np.r_[0, lengths[:-1]]), lengths) + np.arange(lengths.sum())
            sharer_app = self._link_app[rows]
            self_pos = self.app_pos.get_indexer(links["application_id"].to_numpy())
            self_entity = self._entity_index.get_indexer(links["entity"].to_numpy())
            earlier = ((self.t[sharer_app] < self.t[self_pos][owner]) & self.timed[sharer_app]
                       & (self._link_entity[rows] != self_entity[owner]))
            counts = np.bincount(owner, weights=earlier, minlength=len(idx))
            bad = np.bincount(owner, weights=earlier & self.bad[sharer_app], minlength=len(idx))
            frame = pd.DataFrame({"application_id": links["application_id"].to_numpy(), "kind": links["kind"].to_numpy(),
                                  "earlier": counts, "bad": bad})
            summed = frame.groupby(["application_id", "kind"])[["earlier", "bad"]].sum().unstack("kind", fill_value=0)
            for kind in SHARED_KINDS:
                if ("earlier", kind) in summed.columns:
                    out[f"earlier_sharers_{kind}"] = summed[("earlier", kind)].reindex(out.index).fillna(0).to_numpy()
                    out[f"bad_earlier_{kind}"] = summed[("bad", kind)].reindex(out.index).fillna(0).to_numpy()
            on_hub = [(k, i) in self.hub_keys for k, i in zip(links["kind"], links["identifier"])]
            hub_apps = set(links["application_id"][np.array(on_hub, dtype=bool)]) if len(on_hub) else set()
            out["shares_hub"] = out.index.isin(list(hub_apps)).astype(float)
        out["known_bad_1hop"] = out[[f"bad_earlier_{k}" for k in SHARED_KINDS]].sum(axis=1)
        # the same person's earlier applications
        entity = self.app_entity[targets]
        same = pd.Series(self.app_entity)
        earlier_same, bad_same = [], []
        groups = self._entity_groups()
        for pos, ent in zip(targets, entity):
            members = groups.get(ent, np.array([pos]))
            before = (self.t[members] < self.t[pos]) & self.timed[members]
            earlier_same.append(float(before.sum()))
            bad_same.append(float((before & self.bad[members]).sum()))
        out["earlier_applications_same_person"] = earlier_same
        out["bad_earlier_same_person"] = bad_same
        del same
        return out

    def _entity_groups(self) -> dict:
        if not hasattr(self, "_entity_groups_cache"):
            frame = pd.Series(np.arange(len(self.app_entity))).groupby(self.app_entity).indices
            self._entity_groups_cache = frame
        return self._entity_groups_cache

    # -- scoring -------------------------------------------------------------------------
    def score(self, model: TrainedModel, app_ids: list[str], review: float | None = None,
              decline: float | None = None, with_guarantees: bool = True, method: str = "auto") -> FlagResult:
        """Score ``app_ids`` (already in the graph) incrementally.

        ``method``: ``"batch"`` (vectorised over all of them), ``"single"``
        (one at a time without DataFrames, :mod:`detectors.flagging_single`)
        or ``"auto"``: single up to ``SINGLE_PATH_MAX`` applications. Both
        give the same flags.
        """
        if method not in ("auto", "batch", "single"):
            raise ValueError(f"method must be 'auto', 'batch' or 'single', not {method!r}")
        self.use_known_bad(model.known_bad)  # known-bad neighbours as the model learned them
        review = model.config.review_threshold if review is None else review  # also decides ring_id
        targets = self.app_pos.get_indexer(list(app_ids))
        missing = [a for a, p in zip(app_ids, targets) if p < 0]
        if missing:
            raise KeyError(f"{len(missing)} applications are not in the graph, e.g. {missing[:3]}")
        if method == "single" or (method == "auto" and len(app_ids) <= SINGLE_PATH_MAX):
            return self._score_single(model, targets, review, decline, with_guarantees)
        seconds: dict[str, float] = {}
        started = time.perf_counter()
        local_pos = self.neighbourhood(targets)
        local_ids = self.app_pos[local_pos]
        local_apps = self.apps.iloc[local_pos]
        local_links = self._links_of(np.sort(local_pos))
        persons = self.portfolio.persons
        wanted_persons = set(local_apps["person"].dropna())
        local = _LocalPortfolio(local_apps, local_links, self._persons_of(wanted_persons))
        seconds["neighbourhood"] = time.perf_counter() - started

        started = time.perf_counter()
        hubs = self.hubs
        local_keys = pd.MultiIndex.from_arrays([local_links["kind"], local_links["identifier"]])
        local_hubs = hubs.reindex(local_keys.unique()).dropna(subset=["hub"]).astype({"hub": bool, "glue": bool})
        rings = SharedIdentifierRings().find(local, hubs=local_hubs)
        new_findings = [f for f in rings if set(f.members) & set(app_ids)]
        if with_guarantees:
            local_guarantees = self._guarantee_neighbourhood(app_ids)
            if local_guarantees is not None:
                circles = GuaranteeCircles().run(local_guarantees)
                new_findings += [f for f in circles if set(f.members) & set(app_ids)]
        seconds["local detection"] = time.perf_counter() - started

        started = time.perf_counter()
        target_apps = self.apps.iloc[targets]
        features = own_features(target_apps.reset_index(drop=True),
                                self._persons_of(set(target_apps["person"].dropna())))
        graph = self.graph_features(targets)
        for col in graph.columns:
            features[col] = graph[col].reindex(features.index).to_numpy()
        stored = {f.finding_id: f for a in app_ids for f in self.findings_by_app.get(a, [])}
        for f in new_findings:
            stored[f.finding_id] = f
        all_findings = list(stored.values())
        member_ids = {m for f in all_findings for m in f.members}
        rows = self.app_pos.get_indexer(list(member_ids | set(app_ids)))
        member_apps = self.apps.iloc[rows[rows >= 0]]
        found = finding_features(all_findings, member_apps.reset_index(drop=True), self.bad_labels)
        for col in model.features:
            if col not in features.columns:
                features[col] = found[col].reindex(features.index).fillna(0.0).to_numpy() if col in found else 0.0
        seconds["features"] = time.perf_counter() - started

        started = time.perf_counter()
        scores = model.predict(features)
        contrib = contributions(model, features)
        by_member: dict[str, list[Finding]] = {}  # one pass: a scan per application is quadratic
        for f in all_findings:
            for m in f.members:
                by_member.setdefault(m, []).append(f)
        context = ReasonContext(
            {a: by_member.get(a, []) for a in app_ids},
            local_links,
            self.apps.iloc[local_pos][["applied_at", "label"]],
            partners=pd.DataFrame(self.partners_of(targets), columns=list(Partner._fields)),
        )
        reasons = build_reasons(contrib, features, context)
        values, columns = contrib.to_numpy(), list(contrib.columns)
        ring_ids = [accused_ring(by_member.get(a, []), a, values[row], columns, review, RING_DETECTORS)
                    for row, a in enumerate(contrib.index)]
        flags = pd.DataFrame({
            "application_id": features.index,
            "score": np.round(scores, 4),
            "decision": model.decide(scores, review, decline),
            "ring_id": ring_ids,
            "reasons": reasons.reindex(features.index).to_numpy(),
        })
        seconds["score"] = time.perf_counter() - started
        return FlagResult(flags, new_findings, seconds)

    def single_path(self):
        """The per-application path over this index (built on first use)."""
        if "_single_path" not in self.__dict__:
            from detectors.flagging_single import SingleApplicationPath

            self.__dict__["_single_path"] = SingleApplicationPath(self)
        return self.__dict__["_single_path"]

    def _score_single(self, model: TrainedModel, targets: np.ndarray, review, decline,
                      with_guarantees: bool) -> FlagResult:
        path = self.single_path()
        seconds: dict[str, float] = {}
        rows, new_findings = [], {}
        for pos in targets:
            flag, found = path.score(model, int(pos), review, decline, with_guarantees, RING_DETECTORS, seconds)
            rows.append(flag)
            for f in found:
                new_findings.setdefault(f.finding_id, f)
        flags = pd.DataFrame(rows, columns=["application_id", "score", "decision", "ring_id", "reasons"])
        return FlagResult(flags, list(new_findings.values()), seconds)


def csr_rows(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(s, e)`` for each pair: the rows of several CSR slices.

    Example
    -------
    >>> csr_rows(np.array([0, 5]), np.array([2, 8])).tolist()
    [0, 1, 5, 6, 7]
    """
    lengths = ends - starts
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    return np.repeat(starts - np.cumsum(np.r_[0, lengths[:-1]]), lengths) + np.arange(total)


def _numpy_backed(frame: pd.DataFrame) -> pd.DataFrame:
    """Arrow-backed string columns as object arrays (positional takes on
    Arrow columns cost ~1 ms each at a million rows; numpy's are free)."""
    out = frame.copy()
    for col in out.columns:
        if isinstance(out[col].dtype, pd.StringDtype) or str(out[col].dtype) in ("str", "string"):
            out[col] = out[col].astype(object)
    return out


def flag_applications(store, folder: str | Path, model: TrainedModel, rejects_path: str | Path,
                      review: float | None = None, decline: float | None = None, progress=None, limits=None):
    """Ingest ``folder`` into ``store``, score what loaded, save scores and new findings.

    ``limits`` (an ``ingest.limits.IngestLimits``) is passed to the ingest.
    Returns ``(ingest summary, FlagResult)``.
    """
    from detectors.risk import write_scores
    from ingest.pipeline import ingest_folder

    summary = ingest_folder(folder, store, rejects_path=rejects_path, progress=progress, limits=limits)
    if not summary.application_ids:
        return summary, FlagResult(pd.DataFrame(columns=["application_id", "score", "decision", "ring_id", "reasons"]))
    index = FlagIndex.build(store, bad_labels=model.known_bad)
    result = index.score(model, summary.application_ids, review, decline)
    result.bad_values = list(index.portfolio.bad_values)
    write_scores(store, result.flags, model)
    if result.new_findings:
        run = DetectionRun(result.new_findings, {}, run_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        store.write(findings_batch(run))
    return summary, result
