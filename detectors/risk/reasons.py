"""Reason codes with evidence: why one application scored as it did.

Feature contributions (``scoring.contributions``) say *which* features pushed
a score up; this module turns the top ones into reason codes a reviewer
reads, each with the evidence behind it: the identifier shared with which
known-bad application, the ring or guarantee cycle it sits in, the burst.
"""

from __future__ import annotations

import functools
import json
from collections import namedtuple
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ringscope.detectors.base import Finding
from ringscope.detectors.risk.features import BAD_LABELS, SHARED_KINDS, link_applications, link_keys

__all__ = ["ReasonContext", "reason_code", "build_reasons", "reasons_json", "accused_ring", "Partner"]

#: an earlier known-bad application sharing an identifier (reason evidence)
Partner = namedtuple("Partner", "application_id kind identifier application_id_partner partner_label partner_at")

_FIXED_CODES = {
    "id_checksum_bad": ("ID_CHECKSUM_FAILED", "the resident ID as typed fails its GB 11643 check digit"),
    "id_region_unknown": ("ID_REGION_UNKNOWN", "the ID's region code is not a known administrative division"),
    "phone_invalid": ("PHONE_INVALID", "the phone number is not a valid Chinese mobile number"),
    "night_application": ("NIGHT_APPLICATION", "applied between 00:00 and 06:00 Beijing time"),
    "amount_to_declared": ("AMOUNT_VS_DECLARED", "amount asked is large against the declared monthly figure"),
    "log_amount": ("AMOUNT", "the amount asked"),
    "log_declared": ("DECLARED_FIGURE", "the declared monthly revenue or income"),
    "applicant_age": ("APPLICANT_AGE", "the applicant's age"),
    "term_months": ("TERM", "the loan term"),
    "has_agent": ("VIA_AGENT", "submitted through an agent or broker"),
    "is_business": ("BUSINESS_LOAN", "a business loan"),
    "product": ("PRODUCT", "the product"),
    "channel": ("CHANNEL", "the channel"),
    "earlier_applications_same_person": ("REPEAT_APPLICANT", "the same person applied before"),
    "bad_earlier_same_person": ("APPLICANT_KNOWN_BAD", "the same person has an earlier known-bad outcome"),
    "known_bad_1hop": ("LINKED_TO_KNOWN_BAD", "shares identifiers with earlier known-bad applications"),
    "known_bad_2hop": ("FINDING_WITH_KNOWN_BAD", "is in a finding with earlier known-bad applications"),
    "shares_hub": ("SHARES_HUB", "uses an identifier shared by many unrelated people (a hub)"),
    "findings_count": ("IN_FINDINGS", "appears in detector findings (rings, circles, bursts)"),
    "largest_finding": ("CLUSTER_SIZE", "size of the largest cluster it belongs to"),
}
_DETECTOR_CODES = {
    "identity": "IDENTITY_CONFLICT",
    "shared_identifier_rings": "RING_MEMBER",
    "guarantee_circles": "GUARANTEE_CIRCLE",
    "device_velocity": "DEVICE_VELOCITY",
    "contact_loops": "CONTACT_LOOP",
    "broker_rings": "BROKER_RING",
    "cashflow": "CASHFLOW_MISMATCH",
}


@functools.cache  # a handful of features, asked once per application and reason
def reason_code(feature: str) -> tuple[str, str]:
    """Reason code and plain description of a feature.

    Example
    -------
    >>> reason_code("bad_earlier_device")[0]
    'SHARES_DEVICE_WITH_KNOWN_BAD'
    """
    if feature in _FIXED_CODES:
        return _FIXED_CODES[feature]
    for kind in SHARED_KINDS:
        if feature == f"bad_earlier_{kind}":
            return f"SHARES_{kind.upper()}_WITH_KNOWN_BAD", f"its {kind} was used by earlier known-bad applications"
        if feature == f"earlier_sharers_{kind}":
            return f"SHARED_{kind.upper()}", f"its {kind} was used by other people before"
    if feature.startswith("det_"):
        name = feature[4:]
        return _DETECTOR_CODES.get(name, name.upper()), f"flagged by the {name} detector"
    return feature.upper(), feature


@dataclass
class ReasonContext:
    """What evidence is drawn from: findings by member, and links with times and labels."""

    findings_by_app: dict[str, list[Finding]]
    links: pd.DataFrame  # application_id, kind, identifier, entity
    apps: pd.DataFrame  # indexed by application_id: applied_at, label
    #: already computed partners (same columns as :meth:`bad_partners`), e.g. from the flagging index
    partners: pd.DataFrame | None = None
    #: labels of a known-bad partner: the model's (``TrainedModel.known_bad``)
    bad_labels: tuple[str, ...] = BAD_LABELS

    #: built on first use and kept across chunks (:meth:`bad_partners`): the links of
    #: known-bad applications, and the links grouped by application (``_link_rows[_link_starts[i]:_link_starts[i + 1]]``
    #: are the rows of ``_link_apps[i]``, in the links' order)
    _bad_links: pd.DataFrame | None = field(default=None, init=False, repr=False)
    _link_rows: np.ndarray | None = field(default=None, init=False, repr=False)
    _link_starts: np.ndarray | None = field(default=None, init=False, repr=False)
    _link_apps: pd.Index | None = field(default=None, init=False, repr=False)
    #: each link's (kind, identifier) as one integer (codes: a missing value matches a
    #: missing one, as in a merge), and the known-bad links' positions sorted by it
    _link_keys: np.ndarray | None = field(default=None, init=False, repr=False)
    _bad_order: np.ndarray | None = field(default=None, init=False, repr=False)
    _bad_sorted: np.ndarray | None = field(default=None, init=False, repr=False)

    @classmethod
    def build(
        cls, findings: list[Finding], links: pd.DataFrame, apps: pd.DataFrame, bad_labels: tuple[str, ...] = BAD_LABELS
    ) -> ReasonContext:
        by_app: dict[str, list[Finding]] = {}
        for f in findings:
            for m in f.members:
                by_app.setdefault(m, []).append(f)
        return cls(by_app, links, apps.set_index("application_id")[["applied_at", "label"]], bad_labels=bad_labels)

    def bad_partners(self, app_ids: list[str]) -> pd.DataFrame:
        """For ``app_ids``: each shared identifier with an earlier known-bad
        application of another person (kind, identifier, partner, label, time)."""
        if self.partners is not None:
            return self.partners[self.partners["application_id"].isin(app_ids)]
        if self._link_rows is None:
            # once, not once per chunk: a scan of every link per chunk grew with chunks x links
            coded = link_applications(self.links)
            if coded is not None and coded[1].equals(self.apps.index):
                # each link's row in these applications, from the features' codes (no text hashed)
                codes, self._link_apps = coded[0], self.apps.index
                bad = self.apps["label"].isin(self.bad_labels).to_numpy(dtype=bool)[codes]
            else:
                codes, uniques = pd.factorize(self.links["application_id"])  # -1: a link without application
                self._link_apps = pd.Index(uniques)
                bad_ids = self.apps.index[self.apps["label"].isin(self.bad_labels)]
                bad = self.links["application_id"].isin(bad_ids).to_numpy()
            self._link_rows = np.argsort(codes, kind="stable")
            self._link_starts = np.searchsorted(codes[self._link_rows], np.arange(len(self._link_apps) + 1))
            self._bad_links = self.links[bad]
            # (kind, identifier) as one integer per link, and the known-bad links sorted by it
            # (stably): each chunk's join is a binary search, not a merge of text keys
            self._link_keys = link_keys(self.links)  # hashed once with the features' (the same links)
            bad_keys = self._link_keys[bad]
            self._bad_order = np.argsort(bad_keys, kind="stable")
            self._bad_sorted = bad_keys[self._bad_order]
        wanted = self._link_apps.get_indexer(pd.Index(app_ids).unique())
        wanted = wanted[wanted >= 0]
        first, lengths = self._link_starts[wanted], self._link_starts[wanted + 1] - self._link_starts[wanted]
        rows = np.sort(self._link_rows[_ranges(first, lengths)])  # the chosen applications' links, in the links' order
        mine = self.links.iloc[rows]
        pairs = self._join_bad(mine, self._link_keys[rows])
        pairs = pairs[pairs["entity"] != pairs["entity_partner"]]
        t_self = pairs["application_id"].map(self.apps["applied_at"])
        t_partner = pairs["application_id_partner"].map(self.apps["applied_at"])
        pairs = pairs[(t_partner < t_self).to_numpy()]
        pairs = pairs.assign(
            partner_label=pairs["application_id_partner"].map(self.apps["label"]),
            partner_at=t_partner[(t_partner < t_self).to_numpy()].to_numpy(),
        )
        return pairs

    def _join_bad(self, mine: pd.DataFrame, keys: np.ndarray) -> pd.DataFrame:
        """``mine.merge(self._bad_links, on=["kind", "identifier"], suffixes=("", "_partner"))``
        on the links' integer keys: the same rows, columns and order (each of
        ``mine``'s rows in turn, its partners in the known-bad links' order)."""
        lo = np.searchsorted(self._bad_sorted, keys, side="left")
        counts = np.searchsorted(self._bad_sorted, keys, side="right") - lo
        left = np.repeat(np.arange(len(keys)), counts)
        right = self._bad_order[_ranges(lo, counts)]
        on = ["kind", "identifier"]
        partner = self._bad_links.drop(columns=on)
        partner = partner.rename(columns={c: f"{c}_partner" for c in partner.columns if c in mine.columns})
        out = mine.iloc[left].reset_index(drop=True)
        for column in partner.columns:
            out[column] = partner[column].iloc[right].reset_index(drop=True)
        return out


def _records(frame: pd.DataFrame):
    """``frame.itertuples(index=False)``: the same named tuples and values,
    each column converted to Python values in one piece.

    >>> frame = pd.DataFrame({"a": pd.Series(["x", None], dtype="str"), "b": [1.5, 2.0]})
    >>> list(_records(frame)) == list(frame.itertuples(index=False))
    True
    """
    fields = list(frame.columns)
    record = namedtuple("Pandas", fields, rename=True)
    return map(record._make, zip(*(frame.iloc[:, k].tolist() for k in range(len(fields)))))


def _ranges(first: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``first[i], ..., first[i] + lengths[i] - 1`` for each ``i``, concatenated.

    >>> _ranges(np.array([5, 0, 9]), np.array([2, 0, 1])).tolist()
    [5, 6, 9]
    """
    return np.repeat(first - np.cumsum(lengths) + lengths, lengths) + np.arange(int(lengths.sum()))


def build_reasons(contrib: pd.DataFrame, features: pd.DataFrame, context: ReasonContext, top: int = 5) -> pd.Series:
    """JSON reason lists, one per application, ranked by contribution.

    Each reason: ``code``, ``feature``, ``contribution`` (log-odds, relative to
    the typical applicant), ``value``, ``detail`` and, where there is one,
    ``evidence`` (finding ids and summaries, identifiers and partners).

    The text is the same as :func:`reasons_json` gives row by row. Rows whose
    reasons carry evidence (an application in findings, or with known-bad
    partners, whose top features draw on them) are built that way; the others
    (most of a portfolio) are put together a rank at a time from each
    feature's fixed JSON text and the contributions and values formatted as
    ``json`` formats floats.

    Notes
    -----
    O(n * top) string joins for rows without evidence; at 200k applications
    the reasons cost 1-2 s where a ``json.dumps`` per row cost 12 s.
    """
    ids = contrib.index.tolist()  # in one piece (list() walks an Arrow-backed index a value at a time)
    partners = context.bad_partners(ids)
    partners_by_app: dict[str, list] = {}
    # one pass over the records: itertuples per group builds a record class and
    # indexes the frame once per application (most of the scoring time at 200k);
    # the records are itertuples' own, from whole columns (itertuples walks an
    # Arrow-backed column a value at a time through pandas: 1 s per 300k values)
    for record in _records(partners):
        partners_by_app.setdefault(record.application_id, []).append(record)
    values = contrib.to_numpy()
    columns = list(contrib.columns)
    codes = [reason_code(c) for c in columns]
    arrays = [features[c].to_numpy() for c in columns]
    positions = np.arange(len(ids)) if features.index.equals(contrib.index) else features.index.get_indexer(ids)
    if not len(ids):
        return pd.Series({}, name="reasons")
    # every row's ranking in one call (each row sorted as ``reasons_json`` sorts it)
    orders = np.argsort(values, axis=1)[:, ::-1][:, :top]
    ranked = np.take_along_axis(values, orders, axis=1).astype(float)
    # a row's reasons stop at its first contribution <= 0.01 (a NaN does not stop them)
    kept = np.logical_and.accumulate(~(ranked <= 0.01), axis=1)
    counts = kept.sum(axis=1)
    findings_of = [context.findings_by_app.get(app_id, ()) for app_id in ids]  # no new list per row
    partners_of = [partners_by_app.get(app_id) for app_id in ids]
    draws_findings = np.array([_draws_on_findings(c) for c in columns] + [False])
    draws_partners = np.array([_draws_on_partners(c) for c in columns] + [False])
    shown = np.where(kept, orders, len(columns))  # the last slot: no reason at that rank
    has_findings = np.fromiter((bool(f) for f in findings_of), dtype=bool, count=len(ids))
    has_partners = np.fromiter((bool(p) for p in partners_of), dtype=bool, count=len(ids))
    slow = (has_findings & draws_findings[shown].any(axis=1)) | (has_partners & draws_partners[shown].any(axis=1))
    text = np.full(len(ids), "[", dtype=object)
    heads = [
        f'{{"code": {_json_text(code)}, "feature": {_json_text(c)}, "contribution": '
        for c, (code, _) in zip(columns, codes)
    ]
    tails = [f', "detail": {_json_text(detail)}}}' for _, detail in codes]
    for rank in range(orders.shape[1]):
        rows = np.flatnonzero((counts > rank) & ~slow)
        if not len(rows):
            break
        cols = orders[rows, rank]
        contribution = _float_texts(ranked[rows, rank])
        shown_values = _value_texts(arrays, positions[rows], cols)
        parts = [
            heads[j] + c + ', "value": ' + v + tails[j] for j, c, v in zip(cols.tolist(), contribution, shown_values)
        ]
        piece = np.array(parts, dtype=object)
        text[rows] = text[rows] + (", " + piece if rank else piece)
    text += "]"
    finding_texts: dict[int, str] = {}  # a ring's findings are cited by each of its members
    for row in np.flatnonzero(slow).tolist():
        text[row] = _reasons_json(
            values[row],
            orders[row],
            columns,
            codes,
            lambda j, at=positions[row]: arrays[j][at],
            findings_of[row],
            partners_of[row],
            finding_texts,
        )
    return pd.Series(dict(zip(ids, text.tolist())), name="reasons")


#: how ``json`` writes the floats that ``repr`` writes otherwise
_JSON_SPECIAL = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}
_json_text = functools.partial(json.dumps, ensure_ascii=False)


def _json_float(x: float) -> str:
    """``json.dumps(x)`` for a float, without the encoder's per-call cost.

    >>> [_json_float(x) for x in (0.125, 1e-05, float("nan"), -0.0)]
    ['0.125', '1e-05', 'NaN', '-0.0']
    """
    text = float.__repr__(x)
    return _JSON_SPECIAL.get(text, text)


def _float_texts(values: np.ndarray) -> list[str]:
    """``_json_float(round(v, 3))`` of each float of ``values``, formatted once
    per distinct value (by its bits: -0.0 and 0.0 stay apart): counts, flags
    and a scorecard's contributions take few values over many rows.

    >>> _float_texts(np.array([0.12345, -0.0, 0.0, 0.12345, np.nan]))
    ['0.123', '-0.0', '0.0', '0.123', 'NaN']
    """
    values = np.ascontiguousarray(values, dtype=float)
    distinct, inverse = np.unique(values.view(np.int64), return_inverse=True)
    texts = [_json_float(round(v, 3)) for v in distinct.view(float).tolist()]
    return [texts[i] for i in inverse.reshape(-1).tolist()]


def _value_texts(arrays: list[np.ndarray], at: np.ndarray, cols: np.ndarray) -> list[str]:
    """The ``value`` of each reason (feature ``cols[i]`` of row ``at[i]``) as
    :func:`_reasons_json` writes it: text as JSON text, anything else rounded
    to 3 decimals as a float."""
    out: list[str | None] = [None] * len(at)
    for j in np.unique(cols).tolist():
        picked = np.flatnonzero(cols == j)
        column = arrays[j]
        if column.dtype.kind in "fiub":
            texts = _float_texts(column[at[picked]].astype(float))
        else:
            texts = [
                _json_text(v) if isinstance(v, str) else _json_float(round(float(v), 3))
                for v in column[at[picked]].tolist()
            ]
        for i, t in zip(picked.tolist(), texts):
            out[i] = t
    return out


def _draws_on_findings(feature: str) -> bool:
    """Whether :func:`_evidence` cites findings for ``feature``."""
    return feature.startswith("det_") or feature in ("known_bad_2hop", "findings_count", "largest_finding")


def _draws_on_partners(feature: str) -> bool:
    """Whether :func:`_evidence` cites known-bad partners for ``feature``."""
    return feature == "known_bad_1hop" or (feature.startswith("bad_earlier_") and feature[12:] in SHARED_KINDS)


def reasons_json(
    contributions: np.ndarray, columns: list[str], values, findings: list[Finding], partners: list | None, top: int = 5
) -> str:
    """One application's reasons as JSON (what :func:`build_reasons` writes per row).

    ``partners`` are records with ``kind``, ``identifier``,
    ``application_id_partner``, ``partner_label`` and ``partner_at``: the
    earlier known-bad applications sharing an identifier with this one.
    """
    return _reasons_json(
        contributions,
        contributions.argsort()[::-1][:top],
        columns,
        [reason_code(c) for c in columns],
        lambda j: values[columns[j]],
        findings,
        partners,
    )


def _reasons_json(contributions, order, columns, codes, value_of, findings, partners, finding_texts=None) -> str:
    """The reasons of one application given its contributions ranked
    (``order``: the top feature positions, largest first), each feature's
    reason code and ``value_of(position)``: what both flagging paths and
    ``train`` write.

    The text is ``json.dumps`` of the reasons (``ensure_ascii=False``,
    ``default=str``), put together from the JSON text of each part, so that
    a finding cited by many applications is encoded once: ``finding_texts``
    (finding object id → its evidence text) keeps them across the rows of a
    :func:`build_reasons` call.

    >>> f = Finding("contact_loops", "loop", ("a", "b"), 0.81234, (), summary="环")
    >>> text = _reasons_json(np.array([0.5, 0.2]), [0, 1], ["det_contact_loops", "has_agent"],
    ...                      [reason_code("det_contact_loops"), reason_code("has_agent")],
    ...                      lambda j: [0.81234, True][j], [f], None)
    >>> text == json.dumps(json.loads(text), ensure_ascii=False)
    True
    """
    texts = finding_texts if finding_texts is not None else {}
    reasons = []
    for j in order:
        c = float(contributions[j])
        if c <= 0.01:
            break
        feature = columns[j]
        code, detail = codes[j]
        value = value_of(j)
        shown = _quoted(value) if isinstance(value, str) else _json_float(round(float(value), 3))
        reason = (
            f'{{"code": {_quoted(code)}, "feature": {_quoted(feature)}, '
            f'"contribution": {_json_float(round(c, 3))}, "value": {shown}, "detail": {_quoted(detail)}'
        )
        evidence = _evidence_text(feature, findings, partners, texts)
        reasons.append(f'{reason}, "evidence": {evidence}}}' if evidence else reason + "}")
    return "[" + ", ".join(reasons) + "]"


def _evidence_text(feature: str, findings: list[Finding], partners: list | None, texts: dict) -> str | None:
    """``json.dumps(_evidence(feature, findings, partners), ensure_ascii=False,
    default=str)``, None where there is none; each finding's part encoded once
    per ``texts`` (finding object id → text)."""
    if _draws_on_findings(feature):
        detector = feature[4:] if feature.startswith("det_") else None
        found = [f for f in findings if detector is None or f.detector == detector]
        if not found:
            return None
        found.sort(key=lambda f: -f.score)
        parts = []
        for f in found[:3]:
            text = texts.get(id(f))
            if text is None:
                text = texts[id(f)] = _dumps(_finding_evidence(f))
            parts.append(text)
        return "[" + ", ".join(parts) + "]"
    evidence = _evidence(feature, findings, partners)
    return _dumps(evidence) if evidence else None


_dumps = functools.partial(json.dumps, ensure_ascii=False, default=str)


@functools.lru_cache(maxsize=4096)  # reason codes, features, details and category values: a few dozen texts
def _quoted(text: str) -> str:
    """``_json_text(text)``, kept for the texts every reason repeats."""
    return _json_text(text)


def accused_ring(
    findings: Iterable[Finding],
    app_id: str,
    contributions: Sequence[float],
    columns: Sequence[str],
    review: float,
    detectors: Iterable[str],
) -> str:
    """The ``ring_id`` of one application: an accusation, so only a finding
    of ``detectors`` with two or more members, holding ``app_id`` and scoring
    at or above ``review`` (the review threshold of the decision) qualifies.
    Of those, the strongest accusation: the highest finding score, then the
    one that explains most of the application's score (the largest
    contribution of its detector's feature, ``det_<detector>``; one the model
    lacks counts 0), then the smaller finding_id. Empty when none qualifies:
    a low-score grouping (a family, a shared office) stays evidence in the
    reasons.

    Why the finding score first: over 20 random scenarios (bench_quality,
    2026-11-30) it gave ring pair F1 median 0.644 against 0.557 for "explains
    most first", better or equal in 13 of the 14 scenarios with rings. The
    model's contributions follow what the labelled history taught it, so
    members of one ring whose feature values differ slightly were split
    between a ring and, say, a device burst over part of it; the finding
    score is the same for every member.

    Both flagging paths call this, with the contributions their reasons use.

    Example
    -------
    >>> ring = Finding("shared_identifier_rings", "ring", ("a", "b"), 0.8, ())
    >>> loop = Finding("contact_loops", "loop", ("a", "c"), 0.9, ())
    >>> accused_ring([ring, loop], "a", [0.1, 1.2], ["det_contact_loops", "det_shared_identifier_rings"],
    ...              0.3, ("shared_identifier_rings", "contact_loops")) == loop.finding_id
    True
    >>> accused_ring([ring], "a", [1.2], ["det_shared_identifier_rings"], 0.85, ("shared_identifier_rings",))
    ''

    Notes
    -----
    O(f) in the application's findings (plus O(features) once when one qualifies).
    """
    detectors = set(detectors)
    eligible = [
        f for f in findings if f.detector in detectors and f.size > 1 and f.score >= review and app_id in f.members
    ]
    if not eligible:
        return ""
    position = {c: j for j, c in enumerate(columns)}

    def explains(f: Finding) -> float:
        j = position.get(f"det_{f.detector}")
        return float(contributions[j]) if j is not None else 0.0

    best = min(eligible, key=lambda f: (-f.score, -explains(f), f.finding_id))
    return best.finding_id


def _finding_evidence(f: Finding) -> dict:
    """What a reason cites of one finding."""
    return {
        "finding_id": f.finding_id,
        "detector": f.detector,
        "score": round(f.score, 3),
        "summary": f.summary,
        "evidence": [e.detail for e in f.evidence[:3]],
    }


def _evidence(feature: str, findings: list[Finding], partners: list | None):
    if feature.startswith("det_") or feature in ("known_bad_2hop", "findings_count", "largest_finding"):
        detector = feature[4:] if feature.startswith("det_") else None
        found = [f for f in findings if detector is None or f.detector == detector]
        found.sort(key=lambda f: -f.score)
        return [_finding_evidence(f) for f in found[:3]]
    kinds = None
    if feature == "known_bad_1hop":
        kinds = set(SHARED_KINDS)
    elif feature.startswith("bad_earlier_") and feature[12:] in SHARED_KINDS:
        kinds = {feature[12:]}
    if kinds and partners:
        rows = [r for r in partners if r.kind in kinds][:5]
        return [
            {
                "kind": r.kind,
                "identifier": str(r.identifier),
                "shared_with": r.application_id_partner,
                "label": r.partner_label,
                "applied_at": str(r.partner_at),
            }
            for r in rows
        ]
    return None
