"""The ringscope property-graph model: labels, relationship types, their keys.

Both stores implement exactly this model, and nothing outside it: the Neo4j
store builds its Cypher from these constants (never from user input), and the
embedded store lays out one columnar table per label and per relationship type.
See ``docs/graph-model.md`` for the diagram and analyst queries.

Every node has a unique ``key`` property. Identifier nodes are keyed by the
normalised value (a phone in E.164, an upper-case resident ID number, ...);
the raw value as typed is kept on the Application (the record of truth) and,
where one identifier was typed differently by different applicants, on the
relationship as ``raw``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "NodeType",
    "RelType",
    "NODE_TYPES",
    "REL_TYPES",
    "node_type",
    "rel_type",
    "FINDING_TARGETS",
    "DERIVED_LABELS",
    "DERIVED_RELS",
    "OUTCOME_LABELS",
    "KNOWN_BAD_LABELS",
    "TARGET_LABELS",
    "CASE_VERDICTS",
]

#: outcome labels of the data contract (``label`` on an Application; blank: not known yet)
OUTCOME_LABELS = ("good", "fraud", "default")
#: labels the detectors count as known-bad members of a finding (a ring whose
#: members defaulted is suspect too); the risk model's positives are per target
KNOWN_BAD_LABELS = ("fraud", "default")
#: what a model can learn to predict → the outcome labels that are its positives.
#: ``fraud`` also learns from investigators' confirmed-fraud verdicts; credit
#: ``default`` is its own model, never mixed into the fraud score.
TARGET_LABELS: dict[str, tuple[str, ...]] = {"fraud": ("fraud",), "default": ("default",)}
#: case status → the outcome label the next training reads ("Open" and
#: "In progress" are no verdict yet; "Dismissed" means honest)
CASE_VERDICTS: dict[str, str] = {"Confirmed fraud": "fraud", "Dismissed": "good"}


@dataclass(frozen=True)
class NodeType:
    """A node label and the properties it may carry (besides ``key``)."""

    label: str
    properties: tuple[str, ...]
    description: str


@dataclass(frozen=True)
class RelType:
    """A relationship type between two labels.

    ``identity`` names the relationship properties that, with the two end
    nodes, make one relationship unique (a guarantee is unique per
    application, not per guarantor/borrower pair).
    """

    type: str
    source: str
    target: str
    properties: tuple[str, ...]
    identity: tuple[str, ...]
    description: str

    @property
    def name(self) -> str:
        """Unique name of this (source, type, target) triple."""
        return f"{self.source}-{self.type}-{self.target}"


APPLICATION_PROPERTIES = (
    "applied_at",
    "amount",
    "term_months",
    "product",
    "channel",
    "label",
    "declared_monthly_revenue",
    "declared_monthly_income",
    "applicant_name",
    "applicant_name_raw",
    "applicant_id_number_raw",
    "applicant_phone_raw",
    "applicant_address_raw",
    "company_name_raw",
    "company_uscc_raw",
    "company_address_raw",
    "employer_name_raw",
    "bank_account_raw",
    "device_id_raw",
    "ip_raw",
    "email_raw",
    "borrower_label",
    "borrower_key",
    "id_checksum_ok",
    "id_region_known",
    "phone_valid",
    "source_file",
    "source_line",
    # digest of the row's contract fields: a later delivery of the same
    # application_id must match it (or come with ``ingest --update``)
    "content_digest",
    # written by `ringscope train` / `ringscope flag` (the fraud model)
    "risk_score",
    "risk_decision",
    "risk_reasons",
    "risk_model",
    "scored_at",
    # written by `ringscope train --target default` / `flag --target default`
    "default_score",
    "default_decision",
    "default_reasons",
    "default_model",
    "default_scored_at",
    # written by `ringscope flag --shadow`: the challenger's view, never acted on
    "shadow_score",
    "shadow_decision",
    "shadow_reasons",
    "shadow_model",
    "shadow_scored_at",
    "default_shadow_score",
    "default_shadow_decision",
    "default_shadow_reasons",
    "default_shadow_model",
    "default_shadow_scored_at",
)

NODE_TYPES: dict[str, NodeType] = {
    n.label: n
    for n in (
        NodeType("Application", APPLICATION_PROPERTIES, "One loan application (进件)."),
        NodeType(
            "Person",
            (
                "name",
                "name_raw",
                "id_number_raw",
                "id_format_ok",
                "id_checksum_ok",
                "id_region_known",
                "birth_date",
                "region_code",
                "gender",
            ),
            "A natural person, keyed by normalised resident ID (or 'anon:' key when the registry gives none).",
        ),
        NodeType(
            "Company",
            ("name", "name_raw", "uscc_raw", "uscc_valid"),
            "A business, keyed by USCC (or 'name:' + normalised name when only a name is known, e.g. employers).",
        ),
        NodeType("Agent", (), "Loan officer, broker or channel partner."),
        NodeType("Phone", ("valid",), "Phone number in E.164."),
        NodeType("Device", (), "Device fingerprint."),
        NodeType("IP", ("prefix",), "IP address; prefix is the /24 (IPv4) or /48 (IPv6)."),
        NodeType("BankAccount", (), "Disbursement account number (digits)."),
        NodeType("Address", (), "Normalised address text."),
        NodeType("Email", (), "Lower-cased e-mail address."),
        NodeType(
            "Finding",
            ("detector", "kind", "score", "size", "summary", "evidence", "parameters", "run_at", "settings"),
            "What a detector found (a ring, a circle, a burst, a conflict); evidence is JSON; "
            "settings is the digest of the settings it ran with.",
        ),
        NodeType(
            "Settings",
            ("digest", "settings", "source", "saved_at"),
            "The settings (detector parameters, training) the last detect ran with: one node, key 'detect'; "
            "train and flag reuse them.",
        ),
        NodeType(
            "Case",
            ("target_label", "target_key", "status", "assignee", "comment", "updated_at", "updated_by"),
            "An investigator's case on a finding or application: Open, In progress, Confirmed fraud, Dismissed.",
        ),
        NodeType(
            "AuditEvent",
            ("at", "user", "action", "target", "before", "after", "source"),
            "Append-only audit log of investigator actions and ingest corrections "
            "(keys are unique; rows are never rewritten); source: the file and line of a correction.",
        ),
    )
}

#: labels a finding may point at with an INVOLVES relationship
FINDING_TARGETS = (
    "Application",
    "Person",
    "Company",
    "Agent",
    "Phone",
    "Device",
    "IP",
    "BankAccount",
    "Address",
    "Email",
)

#: what detectors write back; ``detect`` replaces all of it on every run
DERIVED_LABELS = ("Finding", "Settings")


def _rel(type_: str, source: str, target: str, properties=(), identity=(), description="") -> RelType:
    return RelType(type_, source, target, tuple(properties), tuple(identity), description)


REL_TYPES: dict[str, RelType] = {
    r.name: r
    for r in (
        _rel("APPLIED", "Person", "Application", description="The applicant of an application."),
        _rel("FOR_COMPANY", "Application", "Company", description="Business loan: the borrowing company."),
        _rel("DECLARES_EMPLOYER", "Application", "Company", description="Consumer loan: declared employer."),
        _rel("HAS_PHONE", "Application", "Phone", ("raw",), description="Applicant phone given on the application."),
        _rel("HAS_DEVICE", "Application", "Device", description="Device the application was submitted from."),
        _rel("HAS_IP", "Application", "IP", description="IP the application was submitted from."),
        _rel("HAS_ACCOUNT", "Application", "BankAccount", ("raw",), description="Disbursement account."),
        _rel("HAS_ADDRESS", "Application", "Address", ("raw",), description="Applicant residential address."),
        _rel("HAS_EMAIL", "Application", "Email", ("raw",), description="Applicant e-mail."),
        _rel(
            "EMERGENCY_CONTACT",
            "Application",
            "Phone",
            ("contact_name", "contact_name_raw", "relation", "raw"),
            description="Emergency contact named on the application (keyed by the contact's phone).",
        ),
        _rel("SUBMITTED_BY", "Application", "Agent", description="Agent who submitted the application."),
        _rel("REGISTERED_AT", "Company", "Address", ("raw",), description="Company (business) address."),
        _rel("GUARANTOR_PHONE", "Person", "Phone", ("raw",), description="Phone a guarantor gave."),
    )
    + tuple(
        _rel(
            "GUARANTEES",
            src,
            dst,
            ("amount", "guarantor_name_raw", "guarantor_phone", "guarantor_phone_raw"),
            ("application_id",),
            "Guarantor → borrower, per guaranteed application, with the guaranteed amount.",
        )
        for src in ("Person", "Company")
        for dst in ("Person", "Company")
    )
    + tuple(
        _rel(role_type, "Person", "Company", props, description=desc)
        for role_type, props, desc in (
            ("LEGAL_REP_OF", (), "Registry: legal representative (法定代表人)."),
            ("SHAREHOLDER_OF", ("share_pct",), "Registry: shareholder with share in percent."),
            ("DIRECTOR_OF", (), "Registry: director."),
            ("SUPERVISOR_OF", (), "Registry: supervisor."),
        )
    )
    + tuple(
        _rel(
            "INVOLVES",
            "Finding",
            target,
            ("role",),
            description="A finding's member (role 'member') or the identifier it names as evidence (role 'shared').",
        )
        for target in FINDING_TARGETS
    )
    + tuple(
        _rel(
            "SIMILAR_TO",
            label,
            label,
            ("score", "features", "method"),
            description="Identity resolution: two records judged the same entity; features is JSON of field scores.",
        )
        for label in ("Person", "Company")
    )
}

#: relationship names written by detectors (replaced on every ``detect`` run)
DERIVED_RELS = tuple(name for name, r in REL_TYPES.items() if r.type in ("INVOLVES", "SIMILAR_TO"))

#: temporal properties and their Cypher type (stores keep them typed)
TEMPORAL_PROPERTIES = {"applied_at": "datetime", "birth_date": "date"}

#: registry role (contract value) → relationship type
ROLE_TYPES = {
    "legal_rep": "LEGAL_REP_OF",
    "shareholder": "SHAREHOLDER_OF",
    "director": "DIRECTOR_OF",
    "supervisor": "SUPERVISOR_OF",
}


def node_type(label: str) -> NodeType:
    """Return the model's node type for ``label``; raise ``KeyError`` if unknown.

    Example
    -------
    >>> node_type("Phone").label
    'Phone'
    """
    try:
        return NODE_TYPES[label]
    except KeyError:
        raise KeyError(f"Unknown node label {label!r}; the model has {sorted(NODE_TYPES)}") from None


def rel_type(name: str) -> RelType:
    """Return the relationship type by its ``Source-TYPE-Target`` name.

    Example
    -------
    >>> rel_type("Person-GUARANTEES-Company").identity
    ('application_id',)
    """
    try:
        return REL_TYPES[name]
    except KeyError:
        raise KeyError(f"Unknown relationship {name!r}; the model has {sorted(REL_TYPES)}") from None
