"""The data contract's tables and their columns, in the contract's order.

One place for what ``docs/DATA_CONTRACT.md`` lists: the reader checks
required and optional columns against it (:mod:`ringscope.ingest.tables`),
an application's content digest covers its columns in this order
(:mod:`ringscope.ingest.stored`) and the generator writes its files with
them (:mod:`ringscope.ingest.synthetic`). A test holds this module and the
document to the same lists.

Example
-------
>>> CONTRACT_COLUMNS["contacts"]
('application_id', 'contact_name', 'contact_phone', 'relation')
>>> [c for c in CONTRACT_COLUMNS["company_roles"] if c not in REQUIRED_COLUMNS["company_roles"]]
['company_name', 'person_id_number', 'share_pct']
"""

from __future__ import annotations

__all__ = ["CONTRACT_COLUMNS", "REQUIRED_COLUMNS", "OPTIONAL_COLUMNS", "TABLES"]

#: the contract's tables, in the order ingest reads them
TABLES = ("applications", "guarantees", "contacts", "company_roles")

#: every column of each table, as the contract lists it. New columns go at the end: an
#: application's content digest follows this order, so a column added in the middle would
#: change the digest of every stored application.
CONTRACT_COLUMNS: dict[str, tuple[str, ...]] = {
    "applications": (
        "application_id",
        "applied_at",
        "amount",
        "applicant_name",
        "applicant_id_number",
        "applicant_phone",
        "applicant_address",
        "term_months",
        "product",
        "channel",
        "agent_id",
        "company_name",
        "company_uscc",
        "company_address",
        "employer_name",
        "bank_account",
        "device_id",
        "ip",
        "email",
        "declared_monthly_revenue",
        "declared_monthly_income",
        "label",
    ),
    "guarantees": ("application_id", "guarantor_type", "guarantor_name", "guarantor_id", "guarantor_phone", "amount"),
    "contacts": ("application_id", "contact_name", "contact_phone", "relation"),
    "company_roles": ("company_uscc", "company_name", "person_name", "person_id_number", "role", "share_pct"),
}

#: the columns a file must have (a file without one is refused whole)
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "applications": (
        "application_id",
        "applied_at",
        "amount",
        "applicant_name",
        "applicant_id_number",
        "applicant_phone",
    ),
    "guarantees": ("application_id", "guarantor_type", "guarantor_name", "guarantor_id"),
    "contacts": ("application_id", "contact_name", "contact_phone"),
    "company_roles": ("company_uscc", "person_name", "role"),
}

#: the columns a file may leave out (read as empty)
OPTIONAL_COLUMNS: dict[str, tuple[str, ...]] = {
    table: tuple(c for c in columns if c not in REQUIRED_COLUMNS[table]) for table, columns in CONTRACT_COLUMNS.items()
}
