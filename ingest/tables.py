"""The contract's tables, one builder each: validate, normalise, turn rows into graph parts.

Each builder takes one table as read (:mod:`ringscope.ingest.reader`) and
returns a :class:`TablePart`: the nodes and relationships of its good rows
(every normalised identifier beside its raw value) and a rejects frame giving
each contract-breaking row its source file, line and first failing reason.
:func:`ringscope.ingest.pipeline.ingest_folder` runs them in contract order
and merges the parts into one batch.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ringscope.graph.model import ROLE_TYPES
from ringscope.graph.store import GraphStore
from ringscope.ingest import normalize as nz
from ringscope.ingest.contract import CONTRACT_COLUMNS, OPTIONAL_COLUMNS, REQUIRED_COLUMNS
from ringscope.ingest.limits import IngestLimits
from ringscope.ingest.reader import LINE
from ringscope.ingest.stored import StoredCheck, content_digest, is_in_large

__all__ = [
    "REQUIRED_COLUMNS",
    "OPTIONAL_COLUMNS",
    "LABELS",
    "REJECT_COLUMNS",
    "TablePart",
    "SeenRows",
    "applications_part",
    "contacts_part",
    "guarantees_part",
    "company_roles_part",
]

LABELS = {"fraud", "default", "good"}
REJECT_COLUMNS = ["source_file", "line", "reason", "record"]


@dataclass
class TablePart:
    """Nodes, relationships and rejects produced from one table."""

    nodes: dict[str, list[pd.DataFrame]] = field(default_factory=dict)
    rels: dict[str, list[pd.DataFrame]] = field(default_factory=dict)
    rejects: list[pd.DataFrame] = field(default_factory=list)
    loaded: int = 0
    #: for each frame of ``nodes`` / ``rels``, which call of :meth:`node` / :meth:`rel`
    #: for its table made it (empty frames are dropped: the slot says where a frame
    #: goes when the parts of several chunks are put in the order of one whole part)
    slots: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    _calls: dict[tuple[str, str], int] = field(default_factory=dict)

    def _slot(self, kind: str, name: str) -> int:
        slot = self._calls.get((kind, name), 0)
        self._calls[(kind, name)] = slot + 1
        return slot

    def node(self, label: str, frame: pd.DataFrame) -> None:
        slot = self._slot("node", label)
        frame = frame[frame["key"].notna()]
        if len(frame):
            self.nodes.setdefault(label, []).append(frame)
            self.slots.setdefault(("node", label), []).append(slot)

    def rel(self, name: str, frame: pd.DataFrame) -> None:
        slot = self._slot("rel", name)
        frame = frame[frame["src"].notna() & frame["dst"].notna()]
        if len(frame):
            self.rels.setdefault(name, []).append(frame)
            self.slots.setdefault(("rel", name), []).append(slot)


class _Checks:
    """First failing reason per row, in the order checks are applied."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.reason = pd.Series(None, index=frame.index, dtype=object)

    def fail(self, mask: pd.Series, message: str | pd.Series) -> None:
        mask = mask.fillna(False).astype(bool) & self.reason.isna()
        if isinstance(message, pd.Series):
            self.reason[mask] = message[mask]
        else:
            self.reason[mask] = message

    @property
    def ok(self) -> pd.Series:
        return self.reason.isna()


def _text(frame: pd.DataFrame, column: str) -> pd.Series:
    """Column as stripped text, empty → missing (absent column → all missing)."""
    if column not in frame.columns:
        return pd.Series(pd.NA, index=frame.index, dtype="str")
    series = frame[column]
    if not pd.api.types.is_string_dtype(series):
        series = series.astype("str")
    stripped = series.str.strip()
    return stripped.where(stripped != "")


def _rejects_frame(frame: pd.DataFrame, checks: _Checks, source: str) -> pd.DataFrame:
    bad = frame[~checks.ok]
    if not len(bad):
        return pd.DataFrame(columns=REJECT_COLUMNS)
    columns = [c for c in bad.columns if c != LINE]
    records = [
        json.dumps({c: (None if pd.isna(v) else str(v)) for c, v in zip(columns, row)}, ensure_ascii=False)
        for row in bad[columns].itertuples(index=False, name=None)
    ]
    return pd.DataFrame(
        {
            "source_file": source,
            "line": bad[LINE].to_numpy(),
            "reason": checks.reason[~checks.ok].to_numpy(),
            "record": records,
        }
    )


class SeenRows:
    """Application rows of the chunks already read, for :func:`_duplicate_keys`
    across chunks: each row's raw key, and a 128-bit hash of its content
    (every column but :data:`LINE`). A chunked ingest passes one to every
    :func:`applications_part` call of a file, so a row repeating a key of
    an earlier chunk is rejected or collapsed as in one whole read."""

    def __init__(self) -> None:
        self._keys: list[pa.Array] = []
        self._hashes: list[pa.Array] = []

    @staticmethod
    def content(frame: pd.DataFrame) -> pa.Array:
        """A 128-bit BLAKE2b digest of each row's content: of one text per
        row spelling every column out unambiguously (its value's length in
        bytes, ``:``, the value, ``:``; a missing value: ``::``)."""
        columns = [_large(frame[c]).combine_chunks() for c in frame.columns if c != LINE]
        if columns:
            spelled = [part for text in columns for part in (pc.cast(pc.binary_length(text), pa.large_string()), text)]
            joined = pc.binary_join_element_wise(*spelled, _COLON, null_handling="replace", null_replacement="")
            rows = joined.cast(pa.large_binary()).to_numpy(zero_copy_only=False)
        else:
            rows = [b""] * len(frame)
        blake = hashlib.blake2b
        digests = b"".join([blake(row, digest_size=16).digest() for row in rows])
        return pa.FixedSizeBinaryArray.from_buffers(pa.binary(16), len(frame), [None, pa.py_buffer(digests)])

    def has_key(self, keys: pd.Series) -> pd.Series:
        return self._member(keys, self._keys, _large(keys))

    def has_content(self, index: pd.Index, hashes: pa.Array) -> pd.Series:
        return self._member(pd.Series(index=index, dtype=object), self._hashes, hashes)

    @staticmethod
    def _member(like: pd.Series, seen: list[pa.Array], values: pa.Array) -> pd.Series:
        if not seen:
            return pd.Series(False, index=like.index)
        hit = pc.fill_null(is_in_large(values, pa.chunked_array(seen, type=seen[0].type)), False)
        return pd.Series(hit.to_numpy(zero_copy_only=False), index=like.index)

    def add(self, keys: pd.Series, hashes: pa.Array) -> None:
        given = keys.notna().to_numpy()
        self._keys.append(_large(keys[given]).combine_chunks() if len(keys) else pa.array([], pa.large_string()))
        self._hashes.append(hashes.filter(pa.array(given)))


_COLON = pa.scalar(":", pa.large_string())


def _large(series: pd.Series) -> pa.ChunkedArray:
    return pa.chunked_array([pa.array(series.astype("str"), from_pandas=True)]).cast(pa.large_string())


def _duplicate_keys(frame: pd.DataFrame, key: str, checks: _Checks, seen: SeenRows | None = None) -> pd.Series:
    """Mark rows repeating an earlier key with different content (reject)
    and rows repeating it identically (collapse). Returns the collapse mask.
    ``seen``: the rows of earlier chunks (updated with this one's)."""
    same_key = frame[key].duplicated(keep="first") & frame[key].notna()
    exact_before = pd.Series(False, index=frame.index)
    if seen is not None:
        hashes = SeenRows.content(frame)
        before = seen.has_key(frame[key]) & frame[key].notna()
        if before.any():
            exact_before = before & seen.has_content(frame.index, hashes)
        same_key |= before
        seen.add(frame[key], hashes)
    if not same_key.any():
        return same_key
    involved = frame[frame[key].duplicated(keep=False) & frame[key].notna()]
    content = [c for c in frame.columns if c != LINE]
    exact = pd.Series(False, index=frame.index)
    exact[involved.index] = involved.duplicated(subset=content, keep="first")
    exact |= exact_before
    checks.fail(same_key & ~exact, f"duplicate {key} with different content (first occurrence kept)")
    return same_key & exact


def _isin(series: pd.Series, values) -> pd.Series:
    """``series.isin(values)`` through Arrow's hash set (pandas' is slow on Arrow strings)."""
    value_set = pa.array(pd.Series(values, dtype="str").dropna()).cast(pa.large_string())
    arr = pa.chunked_array(pa.array(series.astype("str"))).cast(pa.large_string())  # Arrow-backed: no copy to Python
    hit = pc.fill_null(is_in_large(arr, value_set), False)
    return pd.Series(hit.to_numpy(), index=series.index)


def _person_nodes(
    key: pd.Series, names: pd.DataFrame, raw_name: pd.Series, raw_id: pd.Series, ids: pd.DataFrame
) -> pd.DataFrame:
    """Person rows: normalised name and ID facts beside the raw values."""
    return pd.DataFrame(
        {
            "key": key,
            "name": names["name"],
            "name_raw": raw_name,
            "id_number_raw": raw_id,
            "id_format_ok": ids["id_format_ok"],
            "id_checksum_ok": ids["id_checksum_ok"],
            "id_region_known": ids["id_region_known"],
            "birth_date": ids["id_birth_date"],
            "region_code": ids["id_region_code"],
            "gender": ids["id_gender"],
        }
    )


def _company_nodes(
    key: pd.Series, names: pd.DataFrame, raw_name: pd.Series, raw_uscc: pd.Series, usccs: pd.DataFrame
) -> pd.DataFrame:
    """Company rows keyed by USCC, with the raw name and code."""
    return pd.DataFrame(
        {
            "key": key,
            "name": names["name"],
            "name_raw": raw_name,
            "uscc_raw": raw_uscc,
            "uscc_valid": usccs["uscc_valid"],
        }
    )


# -- applications ---------------------------------------------------------------


def applications_part(
    frame: pd.DataFrame,
    source: str,
    limits: IngestLimits | None = None,
    stored: StoredCheck | None = None,
    seen: SeenRows | None = None,
) -> tuple[TablePart, pd.DataFrame]:
    """Validate and normalise applications; return the graph part and an
    index of application_id → borrower label/key for the other tables.
    ``seen``: the rows of the file's earlier chunks, when it is read in chunks."""
    limits = limits or IngestLimits()
    part = TablePart()
    checks = _Checks(frame)
    t = {c: _text(frame, c) for c in CONTRACT_COLUMNS["applications"]}

    for column in REQUIRED_COLUMNS["applications"]:
        checks.fail(t[column].isna(), f"missing required value: {column}")
    applied_at = nz.parse_datetimes(t["applied_at"])
    checks.fail(applied_at.isna(), "unparseable applied_at")
    checks.fail(
        limits.outside_window(applied_at),
        f"applied_at outside the accepted window {limits.window_text()} (--applied-from/--applied-to)",
    )
    amount = nz.parse_amounts(t["amount"])
    checks.fail(amount.isna(), "unparseable amount")
    checks.fail(amount <= 0, "amount must be > 0")
    checks.fail(limits.amount_too_large(amount), f"amount above {limits.amount_text()} (--max-amount) or not finite")
    term = nz.parse_amounts(t["term_months"])
    checks.fail(
        t["term_months"].notna() & limits.bad_term(term),
        f"term_months must be a whole number of months from 1 to {limits.max_term_months}",
    )
    declared = {}
    for column in ("declared_monthly_revenue", "declared_monthly_income"):
        declared[column] = nz.parse_amounts(t[column])
        given = t[column].notna()
        checks.fail(given & declared[column].isna(), f"unparseable {column}")
        checks.fail(
            given & ((declared[column] < 0) | limits.amount_too_large(declared[column])),
            f"{column} must be from 0 to {limits.amount_text()} (--max-amount)",
        )
    ids = nz.normalize_id_numbers(t["applicant_id_number"])
    checks.fail(ids["id_number"].isna(), "applicant_id_number is not a resident ID number (15 or 18 characters)")
    label = t["label"].str.lower()
    checks.fail(label.notna() & ~label.isin(LABELS), "label must be fraud, default, good or empty")
    collapse = _duplicate_keys(frame, "application_id", checks, seen)
    digest = content_digest({c: t[c] for c in CONTRACT_COLUMNS["applications"]})
    if stored is not None:
        stored.check_applications(checks, frame, source, t["application_id"], digest, collapse)

    rejects = _rejects_frame(frame, checks, source)
    keep = checks.ok & ~collapse
    part.rejects.append(rejects)
    part.loaded = int(checks.ok.sum())

    f = frame[keep]
    t = {c: s[keep] for c, s in t.items()}
    ids = ids[keep]
    applied_at, amount, label, term = applied_at[keep], amount[keep], label[keep], term[keep]
    declared = {c: v[keep] for c, v in declared.items()}
    names = nz.normalize_names(t["applicant_name"])
    phones = nz.normalize_phones(t["applicant_phone"])
    usccs = nz.normalize_uscc(t["company_uscc"])
    company_names = nz.normalize_names(t["company_name"])
    employers = nz.normalize_names(t["employer_name"])
    home = nz.normalize_addresses(t["applicant_address"])
    office = nz.normalize_addresses(t["company_address"])
    accounts = nz.normalize_accounts(t["bank_account"])
    ips = nz.normalize_ips(t["ip"])
    emails = nz.normalize_emails(t["email"])
    devices = nz.normalize_device_ids(t["device_id"])
    agents = t["agent_id"]

    app_key = t["application_id"]
    person_key = ids["id_number"]
    company_key = usccs["uscc"]
    is_business = company_key.notna()
    borrower_label = pd.Series(np.where(is_business, "Company", "Person"), index=f.index)
    borrower_key = company_key.where(is_business, person_key)

    application = pd.DataFrame(
        {
            "key": app_key,
            "applied_at": applied_at,
            "amount": amount,
            "term_months": term,
            "product": t["product"],
            "channel": t["channel"],
            "label": label,
            "declared_monthly_revenue": declared["declared_monthly_revenue"],
            "declared_monthly_income": declared["declared_monthly_income"],
            "applicant_name": names["name"],
            "applicant_name_raw": t["applicant_name"],
            "applicant_id_number_raw": t["applicant_id_number"],
            "applicant_phone_raw": t["applicant_phone"],
            "applicant_address_raw": t["applicant_address"],
            "company_name_raw": t["company_name"],
            "company_uscc_raw": t["company_uscc"],
            "company_address_raw": t["company_address"],
            "employer_name_raw": t["employer_name"],
            "bank_account_raw": t["bank_account"],
            "device_id_raw": t["device_id"],
            "ip_raw": t["ip"],
            "email_raw": t["email"],
            "borrower_label": borrower_label,
            "borrower_key": borrower_key,
            "id_checksum_ok": ids["id_checksum_ok"],
            "id_region_known": ids["id_region_known"],
            "phone_valid": phones["phone_valid"],
            "source_file": source,
            "source_line": f[LINE].astype("int64"),
            "content_digest": digest[keep],
        }
    )
    part.node("Application", application)
    part.node("Person", _person_nodes(person_key, names, t["applicant_name"], t["applicant_id_number"], ids))
    part.rel("Person-APPLIED-Application", pd.DataFrame({"src": person_key, "dst": app_key}))

    part.node("Company", _company_nodes(company_key, company_names, t["company_name"], t["company_uscc"], usccs))
    part.rel("Application-FOR_COMPANY-Company", pd.DataFrame({"src": app_key, "dst": company_key}))
    employer_key = "name:" + employers["name"]
    part.node("Company", pd.DataFrame({"key": employer_key, "name": employers["name"], "name_raw": t["employer_name"]}))
    part.rel("Application-DECLARES_EMPLOYER-Company", pd.DataFrame({"src": app_key, "dst": employer_key}))

    part.node("Phone", pd.DataFrame({"key": phones["phone"], "valid": phones["phone_valid"]}))
    part.rel(
        "Application-HAS_PHONE-Phone",
        pd.DataFrame({"src": app_key, "dst": phones["phone"], "raw": t["applicant_phone"]}),
    )
    part.node("Device", pd.DataFrame({"key": devices}))
    part.rel("Application-HAS_DEVICE-Device", pd.DataFrame({"src": app_key, "dst": devices}))
    part.node("IP", pd.DataFrame({"key": ips["ip"], "prefix": ips["ip_prefix"]}))
    part.rel("Application-HAS_IP-IP", pd.DataFrame({"src": app_key, "dst": ips["ip"]}))
    part.node("BankAccount", pd.DataFrame({"key": accounts["account"]}))
    part.rel(
        "Application-HAS_ACCOUNT-BankAccount",
        pd.DataFrame({"src": app_key, "dst": accounts["account"], "raw": t["bank_account"]}),
    )
    part.node("Email", pd.DataFrame({"key": emails["email"]}))
    part.rel("Application-HAS_EMAIL-Email", pd.DataFrame({"src": app_key, "dst": emails["email"], "raw": t["email"]}))
    part.node("Address", pd.DataFrame({"key": home["address"]}))
    part.rel(
        "Application-HAS_ADDRESS-Address",
        pd.DataFrame({"src": app_key, "dst": home["address"], "raw": t["applicant_address"]}),
    )
    part.node("Address", pd.DataFrame({"key": office["address"]}))
    part.rel(
        "Company-REGISTERED_AT-Address",
        pd.DataFrame({"src": company_key, "dst": office["address"], "raw": t["company_address"]}),
    )
    part.node("Agent", pd.DataFrame({"key": agents}))
    part.rel("Application-SUBMITTED_BY-Agent", pd.DataFrame({"src": app_key, "dst": agents}))

    index = pd.DataFrame({"key": app_key, "borrower_label": borrower_label, "borrower_key": borrower_key})
    return part, index


def _known_applications(ids: pd.Series, loaded: pd.DataFrame, store: GraphStore) -> pd.DataFrame:
    """Borrower of each referenced application, from this load or the store."""
    wanted = pd.Index(ids.dropna().unique())
    refused = loaded["refused"].fillna(False).astype(bool) if "refused" in loaded else False
    referenced = _isin(loaded["key"], wanted)  # the loaded index is the book's: only probed, never hashed
    known = loaded[referenced & ~refused].drop(columns="refused", errors="ignore")
    # refused ones are not looked up in the store
    missing = wanted[~_isin(pd.Series(wanted, dtype="str"), loaded["key"][referenced]).to_numpy()].sort_values()
    if len(missing):
        stored = store.node_properties("Application", list(missing), ["borrower_label", "borrower_key"])
        known = pd.concat([known, stored], ignore_index=True)
    return known.drop_duplicates("key", keep="first").set_index("key")


# -- contacts -------------------------------------------------------------------


def contacts_part(
    frame: pd.DataFrame, source: str, apps: pd.DataFrame, store: GraphStore, stored: StoredCheck | None = None
) -> TablePart:
    """Validate and normalise emergency contacts of the applications in
    ``apps`` (this batch's index from :func:`applications_part`) or already in
    ``store``; the rest go to the rejects."""
    part = TablePart()
    checks = _Checks(frame)
    t = {c: _text(frame, c) for c in CONTRACT_COLUMNS["contacts"]}
    for column in REQUIRED_COLUMNS["contacts"]:
        checks.fail(t[column].isna(), f"missing required value: {column}")
    known = _known_applications(t["application_id"], apps, store)
    checks.fail(
        ~_isin(t["application_id"], known.index),
        "application_id not found among loaded applications (absent or rejected)",
    )
    phones = nz.normalize_phones(t["contact_phone"])
    checks.fail(phones["phone"].isna(), "contact_phone is not a phone number")
    if stored is not None:
        stored.check_contacts(checks, frame, source, t, phones)
    part.rejects.append(_rejects_frame(frame, checks, source))
    keep = checks.ok
    part.loaded = int(keep.sum())
    names = nz.normalize_names(t["contact_name"][keep])
    phone = phones["phone"][keep]
    part.node("Phone", pd.DataFrame({"key": phone, "valid": phones["phone_valid"][keep]}))
    part.rel(
        "Application-EMERGENCY_CONTACT-Phone",
        pd.DataFrame(
            {
                "src": t["application_id"][keep],
                "dst": phone,
                "contact_name": names["name"],
                "contact_name_raw": t["contact_name"][keep],
                "relation": t["relation"][keep].str.lower(),
                "raw": t["contact_phone"][keep],
            }
        ),
    )
    return part


# -- guarantees -----------------------------------------------------------------


def guarantees_part(
    frame: pd.DataFrame,
    source: str,
    apps: pd.DataFrame,
    store: GraphStore,
    limits: IngestLimits | None = None,
    stored: StoredCheck | None = None,
) -> TablePart:
    """Validate and normalise guarantees (person or company guarantors) of
    the applications in ``apps`` or already in ``store``."""
    limits = limits or IngestLimits()
    part = TablePart()
    checks = _Checks(frame)
    t = {c: _text(frame, c) for c in CONTRACT_COLUMNS["guarantees"]}
    for column in REQUIRED_COLUMNS["guarantees"]:
        checks.fail(t[column].isna(), f"missing required value: {column}")
    kind = t["guarantor_type"].str.lower()
    checks.fail(~kind.isin(["person", "company"]), "guarantor_type must be person or company")
    known = _known_applications(t["application_id"], apps, store)
    checks.fail(
        ~_isin(t["application_id"], known.index),
        "application_id not found among loaded applications (absent or rejected)",
    )
    ids = nz.normalize_id_numbers(t["guarantor_id"].where(kind == "person"))
    usccs = nz.normalize_uscc(t["guarantor_id"].where(kind == "company"))
    checks.fail((kind == "person") & ids["id_number"].isna(), "guarantor_id is not a resident ID number")
    checks.fail((kind == "company") & usccs["uscc"].isna(), "guarantor_id is not an 18-character USCC")
    amount = nz.parse_amounts(t["amount"])
    checks.fail(t["amount"].notna() & (amount.isna() | (amount < 0)), "unparseable guarantee amount")
    checks.fail(
        t["amount"].notna() & limits.amount_too_large(amount),
        f"guarantee amount above {limits.amount_text()} (--max-amount) or not finite",
    )
    if stored is not None:
        stored.check_guarantees(checks, frame, source, t, kind, ids, usccs, known, amount)
    part.rejects.append(_rejects_frame(frame, checks, source))
    keep = checks.ok
    part.loaded = int(keep.sum())

    t = {c: s[keep] for c, s in t.items()}
    kind, ids, usccs, amount = kind[keep], ids[keep], usccs[keep], amount[keep]
    names = nz.normalize_names(t["guarantor_name"])
    phones = nz.normalize_phones(t["guarantor_phone"])
    borrower = known.reindex(t["application_id"].to_numpy())
    borrower.index = t["application_id"].index
    is_person = kind == "person"
    guarantor_key = ids["id_number"].where(is_person, usccs["uscc"])

    person = is_person
    raw_name, raw_id = t["guarantor_name"], t["guarantor_id"]
    part.node("Person", _person_nodes(guarantor_key, names, raw_name, raw_id, ids)[person])
    part.node("Company", _company_nodes(guarantor_key, names, raw_name, raw_id, usccs)[~person])
    for src_label, src_mask in (("Person", person), ("Company", ~person)):
        for dst_label in ("Person", "Company"):
            mask = src_mask & (borrower["borrower_label"] == dst_label)
            dst = borrower["borrower_key"][mask]
            part.node(dst_label, pd.DataFrame({"key": dst}))
            part.rel(
                f"{src_label}-GUARANTEES-{dst_label}",
                pd.DataFrame(
                    {
                        "src": guarantor_key[mask],
                        "dst": dst,
                        "application_id": t["application_id"][mask],
                        "amount": amount[mask],
                        "guarantor_name_raw": t["guarantor_name"][mask],
                        "guarantor_phone": phones["phone"][mask],
                        "guarantor_phone_raw": t["guarantor_phone"][mask],
                    }
                ),
            )
    part.node("Phone", pd.DataFrame({"key": phones["phone"][person], "valid": phones["phone_valid"][person]}))
    part.rel(
        "Person-GUARANTOR_PHONE-Phone",
        pd.DataFrame(
            {"src": guarantor_key[person], "dst": phones["phone"][person], "raw": t["guarantor_phone"][person]}
        ),
    )
    return part


# -- company roles --------------------------------------------------------------


def company_roles_part(frame: pd.DataFrame, source: str, stored: StoredCheck | None = None) -> TablePart:
    """Validate and normalise company roles (legal representative,
    shareholder, director, supervisor) into Person and Company nodes and
    the role relationships between them.

    Example
    -------
    >>> frame = pd.DataFrame({"company_uscc": ["91110000600037341L", "x"], "person_name": ["张三", "李四"],
    ...                       "role": ["legal_rep", "legal_rep"], LINE: [2, 3]})
    >>> part = company_roles_part(frame, "company_roles.csv")
    >>> part.loaded, part.rejects[0]["reason"].tolist(), sorted(part.rels)
    (1, ['company_uscc is not an 18-character USCC'], ['Person-LEGAL_REP_OF-Company'])
    """
    part = TablePart()
    checks = _Checks(frame)
    t = {c: _text(frame, c) for c in CONTRACT_COLUMNS["company_roles"]}
    for column in REQUIRED_COLUMNS["company_roles"]:
        checks.fail(t[column].isna(), f"missing required value: {column}")
    usccs = nz.normalize_uscc(t["company_uscc"])
    checks.fail(usccs["uscc"].isna(), "company_uscc is not an 18-character USCC")
    role = t["role"].str.lower()
    checks.fail(~role.isin(list(ROLE_TYPES)), "role must be legal_rep, shareholder, director or supervisor")
    share = pd.to_numeric(t["share_pct"].str.rstrip("%"), errors="coerce")
    checks.fail(t["share_pct"].notna() & (share.isna() | (share < 0) | (share > 100)), "share_pct must be 0-100")
    ids = nz.normalize_id_numbers(t["person_id_number"])
    checks.fail(t["person_id_number"].notna() & ids["id_number"].isna(), "person_id_number is not a resident ID number")
    if stored is not None:
        stored.check_company_roles(checks, frame, source, t, usccs, role, share, ids)
    part.rejects.append(_rejects_frame(frame, checks, source))
    keep = checks.ok
    part.loaded = int(keep.sum())

    t = {c: s[keep] for c, s in t.items()}
    usccs, role, share, ids = usccs[keep], role[keep], share[keep], ids[keep]
    names = nz.normalize_names(t["person_name"])
    company_names = nz.normalize_names(t["company_name"])
    company = usccs["uscc"]
    # A registry person without an ID number is only known within its company.
    person_key = ids["id_number"].where(ids["id_number"].notna(), "anon:" + company + ":" + names["name"].fillna(""))
    part.node("Company", _company_nodes(company, company_names, t["company_name"], t["company_uscc"], usccs))
    given = t["person_id_number"].notna()
    flags = ids.copy()
    for flag in ("id_format_ok", "id_checksum_ok", "id_region_known"):
        flags[flag] = ids[flag].where(given)  # no ID given: unknown, not False
    part.node("Person", _person_nodes(person_key, names, t["person_name"], t["person_id_number"], flags))
    for contract_role, rel_type in ROLE_TYPES.items():
        mask = role == contract_role
        columns = {"src": person_key[mask], "dst": company[mask]}
        if rel_type == "SHAREHOLDER_OF":
            columns["share_pct"] = share[mask]
        part.rel(f"Person-{rel_type}-Company", pd.DataFrame(columns))
    return part
