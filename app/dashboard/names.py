"""Human names for what the data calls things, in the reader's language.

Stored fields (``applicant_id_number_raw``), case statuses, decisions,
outcomes, detectors, finding kinds, node labels, audit actions, reason codes
and evidence features each have a name in the catalogue (marked with
:func:`~ringscope.app.dashboard.i18n.N_` here, translated when shown); values
are formatted for reading (:func:`fmt_field`); evidence and reasons become
sentences (:func:`evidence_text`, :func:`reason_detail`); the audit log's
JSON becomes ``field: value`` text (:func:`audit_text`). Stored values stay
English codes: only the display is translated.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from typing import Any

from ringscope.app.dashboard.i18n import (
    N_,
    _,
    _missing,
    fmt_amount,
    fmt_count,
    fmt_date,
    fmt_score,
    fmt_time,
    fmt_value,
    language,
)

__all__ = [
    "field_name",
    "status_name",
    "decision_name",
    "outcome_name",
    "detector_name",
    "kind_name",
    "label_name",
    "model_name",
    "role_name",
    "action_name",
    "reason_name",
    "evidence_name",
    "fmt_field",
    "evidence_text",
    "reason_detail",
    "reason_value",
    "reason_evidence",
    "finding_summary",
    "audit_text",
    "column_labels",
    "FIELD_NAMES",
    "MODEL_NAMES",
    "STATUS_NAMES",
    "DECISION_NAMES",
    "OUTCOME_NAMES",
    "DETECTOR_NAMES",
    "KIND_NAMES",
    "LABEL_NAMES",
    "PERIOD_NAMES",
    "ROLE_NAMES",
    "ACTION_NAMES",
    "REASON_NAMES",
    "IDENTIFIER_NAMES",
    "EVIDENCE_NAMES",
    "EVIDENCE_SENTENCES",
]

#: stored field → human name (with its unit)
FIELD_NAMES = {
    "key": N_("Key"),
    "application_id": N_("Application id"),
    "applied_at": N_("Applied at (Beijing time)"),
    "amount": N_("Amount (¥)"),
    "term_months": N_("Term (months)"),
    "product": N_("Product"),
    "channel": N_("Channel"),
    "label": N_("Outcome"),
    "declared_monthly_income": N_("Declared monthly income (¥)"),
    "declared_monthly_revenue": N_("Declared monthly revenue (¥)"),
    "applicant_name": N_("Applicant name"),
    "applicant_name_raw": N_("Applicant name (as typed)"),
    "applicant_id_number_raw": N_("Applicant ID number (as typed)"),
    "applicant_phone_raw": N_("Applicant phone (as typed)"),
    "applicant_address_raw": N_("Applicant address (as typed)"),
    "company_name_raw": N_("Company name (as typed)"),
    "company_uscc_raw": N_("Company credit code (as typed)"),
    "company_address_raw": N_("Company address (as typed)"),
    "employer_name_raw": N_("Employer (as typed)"),
    "bank_account_raw": N_("Bank account (as typed)"),
    "device_id_raw": N_("Device id (as typed)"),
    "ip_raw": N_("IP address (as typed)"),
    "email_raw": N_("Email (as typed)"),
    "agent_id_raw": N_("Agent (as typed)"),
    "borrower_label": N_("Borrower type"),
    "borrower_key": N_("Borrower key"),
    "id_checksum_ok": N_("ID check digit valid"),
    "id_region_known": N_("ID region code known"),
    "phone_valid": N_("Phone number valid"),
    "source_file": N_("Source file"),
    "source_line": N_("Source line"),
    "content_digest": N_("Content digest"),
    "risk_score": N_("Risk score (0–1)"),
    "risk_decision": N_("Decision"),
    "name": N_("Name"),
    "gender": N_("Gender"),
    "birth_date": N_("Birth date"),
    "region_code": N_("Region code"),
    "uscc_valid": N_("Credit code valid"),
    "valid": N_("Valid"),
    "finding": N_("Finding"),
    "detector": N_("Detector"),
    "kind": N_("Kind"),
    "score": N_("Score (0–1)"),
    "size": N_("Size (applications)"),
    "summary": N_("Summary"),
    "status": N_("Status"),
    "first_applied": N_("First application"),
    "last_applied": N_("Last application"),
    "run_at": N_("Run at"),
    "agent": N_("Agent"),
    "code": N_("Reason"),
    "contribution": N_("Contribution"),
    "detail": N_("Detail"),
    "evidence": N_("Evidence"),
    "feature": N_("Evidence"),
    "values": N_("Values"),
    "week": N_("Week"),
    "findings": N_("Findings"),
    "target_label": N_("On"),
    "target_key": N_("Target"),
    "target": N_("Target"),
    "assignee": N_("Assignee"),
    "comment": N_("Reason or note"),
    "updated_at": N_("Last changed (Beijing time)"),
    "updated_by": N_("Changed by"),
    "at": N_("Time (Beijing)"),
    "user": N_("User"),
    "action": N_("Action"),
    "before": N_("Before"),
    "after": N_("After"),
    "source": N_("Source"),
    "property": N_("Field"),
    "value": N_("Value"),
    "field": N_("Field"),
    "identifier": N_("Identifier"),
    "company": N_("Company"),
    "id_number": N_("ID number"),
    "phone": N_("Phone"),
    "account": N_("Account"),
    "matched": N_("Matched on"),
    "match": N_("Match"),
    "person_best_score": N_("Applicant's best score"),
    "company_best_score": N_("Company's best score"),
    "model": N_("Model"),
    "features": N_("Features"),
    "auc": N_("AUC"),
    "ks": N_("KS"),
    "precision_at_k": N_("Precision@k"),
    "month": N_("Month"),
    "n": N_("Applications"),
    "positives": N_("Positives"),
    "in_training": N_("In the training window"),
    "period": N_("Period"),
    "column": N_("Column"),
    "psi": N_("PSI"),
    "beyond_noise": N_("PSI beyond noise"),
    "reason": N_("Reason"),
    "version": N_("Version"),
    "promoted_at": N_("Promoted at (Beijing time)"),
}
#: the risk model's kinds and feature sets (training report)
MODEL_NAMES = {
    "scorecard": N_("scorecard"),
    "gbm": N_("gradient-boosted trees"),
    "findings": N_("findings only"),
    "all features": N_("all features"),
    "without graph": N_("without graph features"),
}

STATUS_NAMES = {
    "Open": N_("Open"),
    "In progress": N_("In progress"),
    "Confirmed fraud": N_("Confirmed fraud"),
    "Dismissed": N_("Dismissed"),
}
DECISION_NAMES = {"pass": N_("pass"), "review": N_("review"), "decline": N_("decline")}
OUTCOME_NAMES = {"fraud": N_("fraud"), "default": N_("default"), "good": N_("good")}
DETECTOR_NAMES = {
    "identity": N_("Identity conflicts"),
    "shared_identifier_rings": N_("Shared-identifier rings"),
    "guarantee_circles": N_("Guarantee circles"),
    "device_velocity": N_("Device and network bursts"),
    "contact_loops": N_("Contact loops"),
    "broker_rings": N_("Broker rings"),
    "cashflow": N_("Cash-flow mismatches"),
    "risk_score": N_("Risk model"),
}
KIND_NAMES = {
    "ring": N_("shared-identifier ring"),
    "guarantee_circle": N_("guarantee circle"),
    "guarantee_chain": N_("guarantee chain"),
    "device_farm": N_("device farm"),
    "device_burst": N_("device burst"),
    "ip_burst": N_("IP burst"),
    "subnet_burst": N_("IP-range burst"),
    "contact_loop": N_("contact loop"),
    "broker_ring": N_("broker ring"),
    "stolen_identity": N_("stolen identity"),
    "synthetic_identity": N_("synthetic identity"),
    "identity_conflict": N_("identity conflict"),
    "cashflow": N_("cash-flow mismatch"),
    # the kinds the detectors write (the short names above are older spellings)
    "shared_identifier_ring": N_("shared-identifier ring"),
    "mutual_guarantee": N_("mutual guarantee"),
    "ip_range_burst": N_("IP-range burst"),
    "cashflow_inconsistency": N_("cash-flow mismatch"),
    "mutual_contacts": N_("mutual emergency contacts"),
    "hub_contact": N_("emergency-contact hub"),
    "id_multiple_names": N_("one ID number under several names"),
    "id_multiple_phones": N_("one ID number under several phones"),
    "name_dob_multi_id": N_("one person under several ID numbers"),
    "fuzzy_duplicate": N_("near-duplicate identity"),
    "id_checksum_failed": N_("ID number fails its check digit"),
}
#: node labels of the graph
LABEL_NAMES = {
    "Application": N_("Application"),
    "Person": N_("Person"),
    "Company": N_("Company"),
    "Agent": N_("Agent"),
    "Phone": N_("Phone"),
    "Device": N_("Device"),
    "IP": N_("IP address"),
    "Subnet": N_("IP range"),
    "BankAccount": N_("Bank account"),
    "Address": N_("Address"),
    "Email": N_("Email"),
    "Finding": N_("Finding"),
    "Case": N_("Case"),
    "AuditEvent": N_("Audit event"),
}
#: monitoring periods
PERIOD_NAMES = {"week": N_("week"), "month": N_("month"), "day": N_("day")}
ROLE_NAMES = {"investigator": N_("investigator"), "analyst": N_("analyst"), "admin": N_("admin")}
ACTION_NAMES = {
    "case.update": N_("case changed"),
    "case.status": N_("case status changed"),
    "ingest.update": N_("data corrected"),
    "case.note": N_("note added"),
    "case.pack": N_("evidence pack made"),
    "reveal": N_("personal data revealed"),
    "cypher": N_("console query"),
    "cypher.reveal": N_("console query, unmasked"),
    "login.success": N_("logged in"),
    "login.failure": N_("failed log-in"),
    "login.locked": N_("log-in locked"),
    "logout": N_("logged out"),
    "logout.idle": N_("logged out (idle)"),
    "promote": N_("promoted to champion"),
    "rollback": N_("rolled back"),
    "train": N_("trained"),
}
#: reason codes of the risk model (``detectors/reasons.py``) → human name
REASON_NAMES = {
    "ID_CHECKSUM_FAILED": N_("ID number fails its check digit"),
    "ID_REGION_UNKNOWN": N_("ID region code unknown"),
    "PHONE_INVALID": N_("Invalid mobile number"),
    "NIGHT_APPLICATION": N_("Applied at night (00:00–06:00 Beijing time)"),
    "AMOUNT_VS_DECLARED": N_("Amount large against declared monthly figure"),
    "AMOUNT": N_("Amount asked"),
    "DECLARED_FIGURE": N_("Declared monthly revenue or income"),
    "APPLICANT_AGE": N_("Applicant's age"),
    "TERM": N_("Loan term"),
    "VIA_AGENT": N_("Submitted through an agent"),
    "BUSINESS_LOAN": N_("Business loan"),
    "PRODUCT": N_("Product"),
    "CHANNEL": N_("Channel"),
    "REPEAT_APPLICANT": N_("Applied before"),
    "APPLICANT_KNOWN_BAD": N_("Applicant has an earlier fraud outcome"),
    "LINKED_TO_KNOWN_BAD": N_("Shares identifiers with known-bad applications"),
    "FINDING_WITH_KNOWN_BAD": N_("In a finding with known-bad applications"),
    "SHARES_HUB": N_("Uses a hub identifier"),
    "IN_FINDINGS": N_("Number of findings it appears in"),
    "CLUSTER_SIZE": N_("Size of its largest cluster (applications)"),
    "IDENTITY_CONFLICT": N_("Flagged for an identity conflict"),
    "RING_MEMBER": N_("Member of a shared-identifier ring"),
    "GUARANTEE_CIRCLE": N_("Member of a guarantee circle"),
    "DEVICE_VELOCITY": N_("In a device or network burst"),
    "CONTACT_LOOP": N_("In a contact loop"),
    "BROKER_RING": N_("In a broker ring"),
    "CASHFLOW_MISMATCH": N_("Cash-flow mismatch"),
}
#: identifier kinds in ``SHARES_<KIND>_WITH_KNOWN_BAD`` / ``SHARED_<KIND>`` codes
IDENTIFIER_NAMES = {
    "device": N_("device"),
    "phone": N_("phone"),
    "account": N_("bank account"),
    "ip": N_("IP address"),
    "subnet": N_("IP range"),
    "address": N_("address"),
    "email": N_("email"),
    "company": N_("company"),
    "employer": N_("employer"),
    "agent": N_("agent"),
    "contact": N_("contact phone"),
}
#: evidence features of findings → human name (with the unit of its values)
EVIDENCE_NAMES = {
    "shared_identifiers": N_("Shared identifiers"),
    "time_compactness": N_("Applied close together (span in days)"),
    "ring_size": N_("Distinct applicants in the ring"),
    "density": N_("Link density"),
    "distinct_identities": N_("Distinct identities"),
    "known_bad_members": N_("Members with a known fraud outcome"),
    "members_in_default": N_("Members in default"),
    "family_like": N_("Looks like a family (discounted)"),
    "oversized": N_("Too large to be one ring (discounted)"),
    "hubs_suppressed": N_("Hub identifiers left out"),
    "burst": N_("Burst of applications"),
    "burst_size": N_("Applications in the burst"),
    "burst_compactness": N_("Burst compactness (share of the window used, lower is tighter)"),
    "circle_size": N_("Companies and people in the circle"),
    "exposure": N_("Exposure (¥)"),
    "guarantee_cycle": N_("Guarantee cycle"),
    "guarantee_chain": N_("Guarantee chain"),
    "leverage": N_("Guarantees against own size"),
    "contact_cycle": N_("Emergency contacts form a loop"),
    "loop_size": N_("Applicants in the loop"),
    "hub_contact": N_("Contact given by many applicants"),
    "unrelated_contacts": N_("Contacts given by unrelated applicants"),
    "unrelated_namers": N_("Unrelated applicants naming the same contact"),
    "inconsistent_contact_names": N_("Same contact phone under different names"),
    "amount_duplication": N_("Identical amounts"),
    "amount_vs_trade": N_("Amount against trade volume"),
    "figure_duplication": N_("Identical declared figures"),
    "figure_vs_trade": N_("Declared figure against trade volume"),
    "repeated_figure": N_("Declared figure repeated"),
    "round_figure": N_("Round declared figure"),
    "id_multiple_names": N_("One ID number under several names"),
    "id_multiple_phones": N_("One ID number with several phones"),
    "short_time_span": N_("Within a short time (days)"),
    "different_phones": N_("Different phones"),
    "rapid_phone_change": N_("Rapid changes of phone"),
    "phones_interleaved": N_("Went back to an earlier phone"),
    "phone_used_by_others": N_("Phone also given by other people"),
    "same_person_match": N_("Same person by name and details"),
    "several_id_numbers": N_("Several ID numbers"),
    "id_checksum_failed": N_("ID number fails its check digit"),
}


def _name(table: dict[str, str], value: Any) -> str:
    if _missing(value):
        return "—"
    text = str(value)
    return _(table[text]) if text in table else text


def field_name(field: str) -> str:
    """Human name of a stored field or column (the field itself if unknown).

    Example
    -------
    >>> field_name("applicant_id_number_raw")
    '申请人身份证号（原始输入）'
    >>> from ringscope.app.dashboard.i18n import use_language
    >>> with use_language("en"):
    ...     field_name("amount")
    'Amount (¥)'
    """
    return _name(FIELD_NAMES, field)


def status_name(status: Any) -> str:
    """A case status (stored in English) in words.

    >>> status_name("Confirmed fraud")
    '确认欺诈'
    """
    return _name(STATUS_NAMES, status)


def decision_name(decision: Any) -> str:
    """A model decision (``pass``/``review``/``decline``) in words.

    >>> decision_name("decline")
    '拒绝'
    """
    return _name(DECISION_NAMES, decision)


def outcome_name(outcome: Any) -> str:
    """An application's known outcome (``fraud``/``default``/``good``).

    >>> outcome_name("default")
    '逾期违约'
    """
    return _name(OUTCOME_NAMES, outcome)


def detector_name(detector: Any) -> str:
    """A detector's name in words.

    >>> detector_name("guarantee_circles")
    '担保圈'
    """
    return _name(DETECTOR_NAMES, detector)


def kind_name(kind: Any) -> str:
    """A finding kind in words.

    >>> kind_name("device_farm")
    '设备农场'
    """
    return _name(KIND_NAMES, kind)


def label_name(label: Any) -> str:
    """A node label of the graph in words.

    >>> label_name("BankAccount")
    '银行账户'
    """
    return _name(LABEL_NAMES, label)


def model_name(name: Any) -> str:
    """A model kind or feature set of the training report in words.

    >>> model_name("without graph")
    '不含图特征'
    """
    return _name(MODEL_NAMES, name)


def role_name(role: Any) -> str:
    """A user's role in words.

    >>> role_name("analyst")
    '分析师'
    """
    return _name(ROLE_NAMES, role)


def action_name(action: Any) -> str:
    """An audit action in words.

    >>> action_name("case.note")
    '添加备注'
    """
    return _name(ACTION_NAMES, action)


def reason_name(code: Any) -> str:
    """A reason code of the risk model in words.

    Example
    -------
    >>> reason_name("IN_FINDINGS")
    '所在发现的数量（个）'
    >>> reason_name("SHARES_DEVICE_WITH_KNOWN_BAD")
    '设备曾被已知欺诈申请使用'
    """
    if _missing(code):
        return "—"
    text = str(code)
    if text in REASON_NAMES:
        return _(REASON_NAMES[text])
    for prefix, suffix, template in (
        ("SHARES_", "_WITH_KNOWN_BAD", N_("Its {kind} was used by known-bad applications")),
        ("SHARED_", "", N_("Its {kind} was used by other people before")),
    ):
        if text.startswith(prefix) and text.endswith(suffix):
            kind = text[len(prefix) : len(text) - len(suffix)].lower()
            if kind in IDENTIFIER_NAMES:
                return _(template).format(kind=_(IDENTIFIER_NAMES[kind]))
    return text


def evidence_name(feature: Any) -> str:
    """An evidence feature of a finding in words (with its unit).

    >>> evidence_name("burst_compactness")
    '突发紧凑度（占用时间窗的比例，越低越集中）'
    """
    return _name(EVIDENCE_NAMES, feature)


_MONEY_FIELDS = frozenset({"amount", "declared_monthly_income", "declared_monthly_revenue", "exposure"})


def fmt_field(field: str, value: Any) -> str:
    """A stored field's value for reading: money in yuan, times in Beijing
    minutes, outcomes and decisions in words, yes/no, counts with separators.

    Example
    -------
    >>> fmt_field("amount", "50000.0"), fmt_field("applied_at", "2025-03-01T01:00:00.123456Z")
    ('¥50,000', '2025-03-01 09:00')
    >>> fmt_field("label", "fraud"), fmt_field("phone_valid", True), fmt_field("term_months", 12.0)
    ('欺诈', '是', '12')
    """
    if _missing(value):
        return "—"
    if field in _MONEY_FIELDS or field.startswith("declared_"):
        return fmt_amount(value)
    if field.endswith("_at") or field in ("at", "first_applied", "last_applied"):
        return fmt_time(value)
    if field == "birth_date":
        return fmt_date(value) if not isinstance(value, str) else value
    if field == "label":
        return outcome_name(value)
    if field in ("risk_decision", "decision"):
        return decision_name(value)
    if field == "status":
        return status_name(value)
    if field in ("risk_score", "score"):
        return fmt_score(value)
    if field == "borrower_label":
        return label_name(value)
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()  # numpy scalars
    if field == "source_line" and isinstance(value, (int, float)):
        return str(int(value))
    return fmt_value(value)


#: evidence sentences by feature and number of values: {0}, {1}… are the
#: detector's values in order (``$`` marks a slot shown as yuan)
EVIDENCE_SENTENCES = {
    ("ring_size", 1): N_("{0} distinct applicants in one ring"),
    ("density", 1): N_("each member shares {0} identifiers with the ring on average"),
    ("time_compactness", 1): N_("applied within {0} days"),
    ("short_time_span", 1): N_("within {0} days"),
    ("known_bad_members", 1): N_("{0} members already labelled fraud or default"),
    ("known_bad_members", 2): N_("{0} of {1} labelled applications are fraud or default"),
    ("members_in_default", 1): N_("{0} applications in the circle are labelled fraud or default"),
    ("circle_size", 2): N_("{0} borrowers and {1} guarantees in one strongly connected circle"),
    ("exposure", 2): N_("loans in the circle total {0}; guarantees {1}"),
    ("burst_size", 1): N_("{0} applications in the cluster"),
    ("burst_compactness", 4): N_(
        "{0} applications in one window where {1} were expected (Poisson p={2}); the cluster spans {3} days"
    ),
    ("distinct_identities", 5): N_("{0}: {3} applications by {4} distinct applicants, {1} to {2}"),
    ("loop_size", 2): N_("{0} distinct applicants and {1} contact links in one strongly connected group"),
    ("oversized", 1): N_("{0} applications: too large for one ring, probably glued by an unrecognised hub"),
}


def _p_value(value: Any) -> str:
    try:
        return f"{float(value):.2g}"
    except (TypeError, ValueError):
        return str(value)


#: slots not shown as plain numbers: yuan, p-values, times
_SLOT_FORMATS = {
    ("exposure", 2): {0: fmt_amount, 1: fmt_amount},
    ("burst_compactness", 4): {2: _p_value},
    ("distinct_identities", 5): {1: fmt_time, 2: fmt_time},
}
#: ``kind:identifier (n people)`` as the ring detectors list shared identifiers
_SHARED = re.compile(r"^(?P<kind>[a-z_]+):(?P<ident>.*?)(?: \((?P<n>\d+) people\))?$")
_KIND_LABELS = {
    "device": "Device",
    "phone": "Phone",
    "account": "BankAccount",
    "ip": "IP",
    "subnet": "Subnet",
    "ip_range": "Subnet",
    "address": "Address",
    "email": "Email",
    "company": "Company",
    "employer": "Company",
    "agent": "Agent",
    "person": "Person",
}


def _identifier(value: Any) -> str:
    """``device:d-1 (6 people)`` → 设备 d-1（6 人）."""
    match = _SHARED.match(str(value))
    if not match or match["kind"] not in _KIND_LABELS:
        return fmt_value(value)
    head = f"{label_name(_KIND_LABELS[match['kind']])} {match['ident']}"
    return head + (_(" ({n} people)").format(n=match["n"]) if match["n"] else "")


def evidence_text(feature: Any, detail: Any, values: Iterable[Any] = ()) -> str:
    """The evidence sentence shown to the investigator: in English the
    detector's own sentence; otherwise a sentence from the catalogue filled
    with the detector's values, or the feature's name with its values.

    Example
    -------
    >>> evidence_text("exposure", "loans in the circle total ¥1,830,000; …", [1830000, 900000])
    '圈内贷款合计 ¥1,830,000；担保合计 ¥900,000'
    >>> evidence_text("shared_identifiers", "6 applications share …", ["device:farm-1 (6 people)"])
    '共用标识：设备 farm-1（6 人）'
    >>> from ringscope.app.dashboard.i18n import use_language
    >>> with use_language("en"):
    ...     evidence_text("ring_size", "6 distinct applicants in one ring", [6])
    '6 distinct applicants in one ring'
    """
    if language() == "en" and not _missing(detail) and str(detail):
        return str(detail)
    values = list(values or [])
    feature = str(feature)
    template = EVIDENCE_SENTENCES.get((feature, len(values)))
    if template:
        slots = _SLOT_FORMATS.get((feature, len(values)), {})
        return _(template).format(*(slots.get(i, fmt_value)(v) for i, v in enumerate(values)))
    money = feature.startswith("amount")
    shown = "，".join(fmt_amount(v) if money and isinstance(v, (int, float)) else _identifier(v) for v in values)
    name = evidence_name(feature)
    return f"{name}：{shown}" if shown else name


def reason_detail(reason: dict[str, Any]) -> str:
    """What one reason of the risk model says, with the application's value.

    Example
    -------
    >>> reason_detail({"code": "NIGHT_APPLICATION", "detail": "applied between 00:00 and 06:00", "value": 1.0})
    '夜间申请（北京时间 00:00–06:00）：1'
    >>> from ringscope.app.dashboard.i18n import use_language
    >>> with use_language("en"):
    ...     reason_detail({"code": "NIGHT_APPLICATION", "detail": "applied between 00:00 and 06:00", "value": 1.0})
    'applied between 00:00 and 06:00: 1'
    """
    head = (
        str(reason.get("detail") or reason.get("code") or "") if language() == "en" else reason_name(reason.get("code"))
    )
    value = reason.get("value")
    if _missing(value):
        return head
    return f"{head}{'：' if language() != 'en' else ': '}{reason_value(reason.get('feature'), value)}"


_YES_NO_FEATURES = frozenset(
    {
        "night_application",
        "has_agent",
        "is_business",
        "id_checksum_bad",
        "id_region_unknown",
        "phone_invalid",
        "shares_hub",
    }
)


def reason_value(feature: Any, value: Any) -> str:
    """A model feature's value as the investigator reads it: amounts back
    from their logarithm in yuan, ages in years, terms in months, flags yes/no.

    Example
    -------
    >>> reason_value("log_amount", 10.82), reason_value("applicant_age", 34.0), reason_value("has_agent", 1.0)
    ('≈¥50,000', '34 岁', '是')
    >>> reason_value("amount_to_declared", 2.456), reason_value("product", "经营贷")
    ('年度申报额的 2.5 倍', '经营贷')
    """
    feature = str(feature or "")
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if feature in ("log_amount", "log_declared"):
        # the reason keeps the logarithm to 3 decimals: about 0.1 % of the amount, so 3 significant digits
        return "≈" + fmt_amount(float(f"{math.expm1(number):.3g}"))
    if feature == "amount_to_declared":
        return _("{x} times the declared figure for a year").format(x=f"{number:.1f}")
    if feature == "applicant_age":
        return _("{n} years").format(n=fmt_count(round(number)))
    if feature == "term_months":
        return _("{n} months").format(n=fmt_count(round(number)))
    if feature in _YES_NO_FEATURES:
        return _("yes") if number >= 0.5 else _("no")
    return fmt_value(value)


def reason_evidence(reason: dict[str, Any]) -> str:
    """The evidence behind one reason, in words: the findings it sits in, or
    the earlier known-bad applications it shares an identifier with.

    Example
    -------
    >>> reason_evidence({"evidence": [{"kind": "device", "identifier": "d-1", "shared_with": "A7",
    ...                                "label": "fraud", "applied_at": "2025-03-01 01:00:00+00:00"}]})
    '设备 d-1 也用于申请 A7（欺诈，2025-03-01 09:00）'
    """
    items = reason.get("evidence") or []
    if isinstance(items, str):
        return items
    out = []
    for item in items:
        if not isinstance(item, dict):
            out.append(str(item))
        elif "finding_id" in item:
            head = _("{detector} {finding} (score {score})").format(
                detector=detector_name(item.get("detector")),
                finding=item.get("finding_id"),
                score=fmt_score(item.get("score")),
            )
            # the detector's summary is English; Chinese says what the finding is by its detector
            out.append(f"{head}: {item['summary']}" if language() == "en" and item.get("summary") else head)
        else:
            kind = item.get("kind")
            out.append(
                _("{kind} {identifier} also on application {other} ({outcome}, {at})").format(
                    kind=_(IDENTIFIER_NAMES[kind]) if kind in IDENTIFIER_NAMES else kind,
                    identifier=item.get("identifier"),
                    other=item.get("shared_with"),
                    outcome=outcome_name(item.get("label")),
                    at=fmt_time(item.get("applied_at")),
                )
            )
    return "；".join(out) if language() != "en" else "; ".join(out)


def finding_summary(kind: Any, size: Any, summary: Any = None) -> str:
    """What a finding is and how big, in words (in English the detector's summary).

    >>> finding_summary("ring", 6, "ring of 6 sharing a device")
    '共用标识团伙，6 份申请'
    """
    if language() == "en" and not _missing(summary) and str(summary):
        return str(summary)
    n = 0 if _missing(size) else int(size)
    return _("{kind}, {n} applications").format(kind=kind_name(kind), n=fmt_count(n))


def audit_text(value: Any) -> str:
    """An audit event's JSON before/after as readable ``field: value`` text.

    Example
    -------
    >>> audit_text('{"status": "Confirmed fraud", "updated_at": "2026-11-30T06:05:41.1+00:00"}')
    '状态：确认欺诈；最后修改（北京时间）：2026-11-30 14:05'
    >>> audit_text("plain words"), audit_text(None)
    ('plain words', '')
    >>> audit_text('{"assignee": "ivy", "comment": ""}')  # an empty field says nothing
    '负责人：ivy'
    """
    if _missing(value):
        return ""
    text = str(value)
    try:
        data = json.loads(text)
    except (TypeError, ValueError):
        return text
    if not isinstance(data, dict):
        return text if not isinstance(data, list) else "；".join(map(str, data))
    parts = []
    for key, item in data.items():
        if item is None or (isinstance(item, str) and not item.strip()):
            continue  # "reason: ;" reads as a reason that was given and lost
        if key == "status":
            shown = status_name(item)
        elif key in ("at", "updated_at", "applied_at") or str(key).endswith("_at"):
            shown = fmt_time(item)
        elif key == "amount":
            shown = fmt_amount(item)
        elif isinstance(item, (dict, list)):
            shown = json.dumps(item, ensure_ascii=False)
        else:
            shown = fmt_value(item)
        parts.append(f"{field_name(key)}：{shown}" if language() != "en" else f"{field_name(key)}: {shown}")
    return ("；" if language() != "en" else "; ").join(parts)


def column_labels(columns: Iterable[str]) -> dict[str, str]:
    """Column → header in words, for ``st.dataframe(column_config=…)``.

    >>> column_labels(["score", "size"])
    {'score': '评分（0–1）', 'size': '规模（申请数）'}
    """
    return {c: field_name(c) for c in columns}
