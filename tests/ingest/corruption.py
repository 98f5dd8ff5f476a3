"""A seeded generator of corrupted export folders, and the checks every ingest of one must pass.

:func:`corrupt` takes a clean generated portfolio and writes a copy with
random faults of every class issue 11 names: stray quotes, absurd dates and
amounts, bytes in another encoding or no encoding, NUL bytes, duplicate
header names, truncation, ragged rows, blank lines, and (Parquet) columns of
the wrong type. It records which applications each fault touched and on which
physical line every application sits, so :func:`check_ingest` can assert that

- every table's physical data lines are counted (``lines_read`` equals an
  independent count) and accounted for (read = loaded + rejected, nothing
  unaccounted), and the rejects file holds one row per rejected row;
- every application no fault touched loads, on its line, with exactly the
  properties a clean ingest gives it;
- every touched application loads or is rejected on its own line, and one
  with an absurd value never loads;
- the exit code is 2 exactly when a file is refused as a whole, else 0.

Structural faults sit on lines at least two apart, away from the end (a
line that parses on its own is the resynchronisation point; truncation cuts
one of the last two lines), so each fault's cost is exactly its own line.
"""

from __future__ import annotations

import csv
import io
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["VARIANTS", "Corrupted", "corrupt", "check_ingest", "split_batches", "write_clean", "application_properties"]

TABLES = ("applications", "guarantees", "contacts", "company_roles")
VARIANTS = ("quoted", "minimal", "gb18030", "crlf", "parquet")

#: values outside the contract's plausible ranges: the row must be rejected
ABSURD = {
    "applied_at": ["9999-12-31", "0001-01-01 00:00:00", "1900-01-01", "2999-01-01 08:00:00"],
    "amount": ["9" * 400, "1" + "0" * 30, "inf", "-0", "NaN"],
    "declared_monthly_income": ["9" * 400, "-1000"],
    "term_months": ["0", "12.5", "99999", "十二"],
}

#: line faults (CSV), each costing at most its own line
LINE_FAULTS = ("quote_at_field_start", "quote_anywhere", "nul", "other_encoding", "junk_bytes", "ragged", "blank")

#: Parquet column types: (column, maker, refused?)
PARQUET_FAULTS = (
    "binary_id",
    "float_amount",
    "timestamp_applied_at",
    "dictionary_label",
    "extra_list_column",
    "float_id_number",
    "list_name",
)
_REFUSING_PARQUET = {"float_id_number", "list_name"}

#: Application properties compared with a clean ingest
COMPARED = [
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
]


@dataclass
class Corrupted:
    """A corrupted copy of a portfolio and what the faults did."""

    folder: Path
    variant: str
    faults: list[str] = field(default_factory=list)
    #: application ids whose rows a fault changed
    touched: set[str] = field(default_factory=set)
    #: application ids given an absurd value (and no other fault): must not load
    absurd: set[str] = field(default_factory=set)
    #: application id -> physical line (1 = header) in the corrupted applications file
    line_of: dict[str, int] = field(default_factory=dict)
    #: physical data lines per table, counted from the bytes written
    physical: dict[str, int] = field(default_factory=dict)
    #: tables whose file must be refused as a whole
    refused: set[str] = field(default_factory=set)

    def describe(self) -> str:
        return f"variant {self.variant}: " + "; ".join(self.faults)


def _frames(folder: Path) -> dict[str, pd.DataFrame]:
    return {
        t: pd.read_csv(folder / f"{t}.csv", dtype=str, keep_default_na=False)
        for t in TABLES
        if (folder / f"{t}.csv").exists()
    }


def corrupt(
    clean: Path, out: Path, seed: int, variant: str | None = None, frames: dict[str, pd.DataFrame] | None = None
) -> Corrupted:
    """Write a corrupted copy of the portfolio in ``clean`` (CSV) to ``out``.

    ``frames`` (table → text frame) replaces the tables read from ``clean``,
    so a batch of a portfolio can be corrupted.
    """
    rng = random.Random(seed)
    variant = variant or rng.choice(VARIANTS)
    frames = {t: f.copy() for t, f in (frames or _frames(clean)).items()}
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    result = Corrupted(folder=out, variant=variant)
    apps = frames["applications"]
    ids = apps["application_id"].tolist()

    # 1. absurd values (any variant)
    for _ in range(rng.randint(0, 4)):
        row = rng.randrange(len(apps))
        column = rng.choice(list(ABSURD))
        value = rng.choice(ABSURD[column])
        apps.iat[row, apps.columns.get_loc(column)] = value
        result.touched.add(ids[row])
        result.absurd.add(ids[row])
        result.faults.append(f"{ids[row]}.{column} = {value[:20]!r}")

    if variant == "parquet":
        _write_parquet(frames, out, rng, result)
        result.line_of = {a: i + 2 for i, a in enumerate(ids)}
        return result

    encoding = "gb18030" if variant == "gb18030" else "utf-8"
    quoting = csv.QUOTE_ALL if variant == "quoted" else csv.QUOTE_MINIMAL
    end = b"\r\n" if variant == "crlf" else b"\n"
    for table, frame in frames.items():
        header = [_csv_line(frame.columns, quoting)]
        lines = header + [_csv_line(row, quoting) for row in frame.itertuples(index=False, name=None)]
        owners: list[str | None] = (
            [None] + frame["application_id"].tolist() if "application_id" in frame else [None] * len(lines)
        )
        raw = [line.encode(encoding) for line in lines]
        if table in ("applications", "contacts"):
            raw, owners = _line_faults(table, raw, owners, encoding, rng, result)
        data = end.join(raw) + end
        if table == "applications" and rng.random() < 0.3:
            data, owners = _truncate(data, raw, owners, end, rng, result)
        if table == "applications" and rng.random() < 0.1:
            data = _duplicate_header(data, frame.columns, quoting, encoding, end, rng, result)
        (out / f"{table}.csv").write_bytes(data)
        result.physical[table] = len(data.splitlines()) - 1
        if table == "applications":
            result.line_of = {o: i + 1 for i, o in enumerate(owners) if o is not None}
    return result


def _csv_line(values, quoting: int) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, quoting=quoting, lineterminator="").writerow(list(values))
    return buffer.getvalue()


def _line_faults(
    table: str, raw: list[bytes], owners: list[str | None], encoding: str, rng: random.Random, result: Corrupted
) -> tuple[list[bytes], list[str | None]]:
    """Line faults on lines at least two apart, never the header or the last three lines."""
    n = len(raw)
    if n < 10:
        return raw, owners
    chosen: list[int] = []
    for _ in range(rng.randint(0, 6)):
        i = rng.randrange(1, n - 3)
        if all(abs(i - j) >= 2 for j in chosen):
            chosen.append(i)
    blanks = []
    for i in chosen:
        fault = rng.choice(LINE_FAULTS)
        text = raw[i].decode(encoding)
        if fault == "quote_at_field_start":
            starts = [0] + [k + 1 for k, c in enumerate(text) if c == ","]
            k = rng.choice(starts)
            raw[i] = (text[:k] + '"' + text[k:]).encode(encoding)
        elif fault == "quote_anywhere":
            k = rng.randrange(len(text) + 1)
            raw[i] = (text[:k] + '"' + text[k:]).encode(encoding)
        elif fault == "nul":
            k = rng.randrange(len(raw[i]) + 1)
            raw[i] = raw[i][:k] + b"\x00" + raw[i][k:]
        elif fault == "other_encoding":
            raw[i] = text.encode("utf-8" if encoding != "utf-8" else "gb18030")
        elif fault == "junk_bytes":
            k = rng.randrange(len(raw[i]) + 1)
            raw[i] = raw[i][:k] + rng.choice([b"\xff\xfe", b"\x81", b"\xc3\x28", b"\xe4\xb8"]) + raw[i][k:]
        elif fault == "ragged":
            fields = next(csv.reader([text]))
            fields = fields[:-1] if rng.random() < 0.5 else fields + ["extra"]
            raw[i] = _csv_line(fields, csv.QUOTE_MINIMAL).encode(encoding)
        else:
            blanks.append(i)
            result.faults.append(f"{table}: blank line before line {i + 1}")
            continue
        if owners[i] is not None and table == "applications":
            result.touched.add(owners[i])
        result.faults.append(f"{table} line {i + 1}: {fault}")
    for i in sorted(blanks, reverse=True):
        raw.insert(i, b"")
        owners.insert(i, None)
    return raw, owners


def _truncate(
    data: bytes, raw: list[bytes], owners: list[str | None], end: bytes, rng: random.Random, result: Corrupted
) -> tuple[bytes, list[str | None]]:
    """Cut the file inside one of its last two lines (maybe inside a character)."""
    which = len(raw) - rng.randint(1, 2)
    start = len(end.join(raw[:which])) + len(end)
    cut = start + rng.randrange(1, max(2, len(raw[which])))
    owners = owners[: which + 1]
    if owners[which] is not None:
        result.touched.add(owners[which])
    result.faults.append(f"applications cut at byte {cut} (line {which + 1})")
    return data[:cut], owners


def _duplicate_header(
    data: bytes, columns, quoting: int, encoding: str, end: bytes, rng: random.Random, result: Corrupted
) -> bytes:
    names = list(columns)
    k = rng.randrange(1, len(names))
    names[k] = rng.choice(names[:k]) + rng.choice(["", " "])
    head, rest = data.split(end, 1)
    result.refused.add("applications")
    result.faults.append(f"applications header: column {k + 1} renamed {names[k]!r}")
    return _csv_line(names, quoting).encode(encoding) + end + rest


def _write_parquet(frames: dict[str, pd.DataFrame], out: Path, rng: random.Random, result: Corrupted) -> None:
    for table, frame in frames.items():
        columns = {
            c: pa.array(frame[c].where(frame[c] != "").tolist(), pa.string(), from_pandas=True) for c in frame.columns
        }
        if table == "applications":
            for fault in rng.sample(PARQUET_FAULTS, rng.randint(1, 2)):
                _parquet_fault(fault, frame, columns, result)
        pq.write_table(pa.table(columns), out / f"{table}.parquet")
        result.physical[table] = len(frame)


def _parquet_fault(fault: str, frame: pd.DataFrame, columns: dict, result: Corrupted) -> None:
    result.faults.append(f"applications.parquet: {fault}")
    if fault == "binary_id":
        columns["application_id"] = pa.array([v.encode() for v in frame["application_id"]], pa.binary())
    elif fault == "float_amount":  # whole yuan, so exact
        columns["amount"] = pa.array(pd.to_numeric(frame["amount"], errors="coerce"), pa.float64())
        result.touched.update(frame["application_id"][pd.to_numeric(frame["amount"], errors="coerce").isna()])
    elif fault == "timestamp_applied_at":
        parsed = pd.to_datetime(frame["applied_at"], errors="coerce", format="%Y-%m-%d %H:%M:%S")
        columns["applied_at"] = pa.array(parsed.to_numpy(dtype="datetime64[us]"), pa.timestamp("us"))
        result.touched.update(frame["application_id"][parsed.isna()])
    elif fault == "dictionary_label":
        columns["label"] = columns["label"].dictionary_encode()
    elif fault == "extra_list_column":
        columns["tags"] = pa.array([["a", "b"]] * len(frame))
    elif fault == "float_id_number":
        columns["applicant_id_number"] = pa.array(
            pd.to_numeric(frame["applicant_id_number"], errors="coerce"), pa.float64()
        )
    elif fault == "list_name":
        columns["applicant_name"] = pa.array([[v] for v in frame["applicant_name"]])
    if fault in _REFUSING_PARQUET:
        result.refused.add("applications")


def application_properties(store) -> pd.DataFrame:
    """The stored Application nodes, indexed by application_id."""
    nodes = store.read_nodes("Application")
    return nodes.set_index("key")


def check_ingest(
    corrupted: Corrupted,
    summary,
    store,
    reference: pd.DataFrame,
    rejects_path: Path,
    stored_before: pd.Index | None = None,
) -> None:
    """Assert what every ingest of a corrupted folder must give (see the module docstring).

    ``reference`` holds the Application properties of a clean ingest;
    ``stored_before`` the application ids the store held before this ingest.
    """
    why = corrupted.describe()
    reports = {t.table: t for t in summary.tables}
    rejects = (
        pd.read_csv(rejects_path, encoding="utf-8-sig", dtype={"line": "Int64"})
        if summary.rejects_path
        else pd.DataFrame(columns=["source_file", "line", "reason", "record"])
    )
    for table, report in reports.items():
        name = Path(report.file).name
        assert report.rows_read == report.rows_loaded + report.rows_rejected, (table, why)
        assert report.lines_read == corrupted.physical[table], (table, report, why)
        assert report.lines_unaccounted == 0, (table, report, why)
        mine = rejects[rejects["source_file"] == name]
        if table in corrupted.refused:
            assert report.error and report.rows_loaded == 0, (table, report, why)
            assert report.rows_rejected == corrupted.physical[table], (table, report, why)
            continue
        assert report.error is None, (table, report.error, why)
        # no multi-line records and no fault costs more than its line
        assert report.rows_read == report.lines_read - report.blank_lines, (table, report, why)
        assert len(mine) == report.rows_rejected, (table, len(mine), report, why)
    assert summary.exit_code == (2 if corrupted.refused else 0), (summary.exit_code, why)

    stored = application_properties(store)
    if "applications" in corrupted.refused:
        assert stored.empty or not set(stored.index) & set(corrupted.line_of), why
        return
    app_file = Path(reports["applications"].file).name
    rejected_lines = set(rejects.loc[rejects["source_file"] == app_file, "line"].dropna().astype(int))
    present = corrupted.line_of
    good = [a for a in present if a not in corrupted.touched]
    missing = [a for a in good if a not in stored.index]
    assert not missing, (f"{len(missing)} untouched applications not loaded, e.g. {missing[:5]}", why)
    left, right = stored.loc[good, COMPARED], reference.loc[good, COMPARED]
    changed = [a for a in good if not _same(left.loc[a], right.loc[a])]
    assert not changed, (
        f"{len(changed)} untouched applications changed, e.g. {changed[:3]}",
        left.loc[changed[:1]].to_dict("records"),
        right.loc[changed[:1]].to_dict("records"),
        why,
    )
    lines = stored.loc[good, "source_line"].astype(int)
    assert (lines == pd.Series({a: present[a] for a in good})).all(), ("source lines moved", why)
    earlier = set() if stored_before is None else set(stored_before)
    new = stored.loc[[k for k in stored.index if k not in earlier]]
    loaded_lines = set(new["source_line"].astype(int))
    for app in corrupted.touched & set(present):
        # loaded (perhaps under a key the fault changed) or rejected, on its own line
        assert present[app] in loaded_lines | rejected_lines, (app, present[app], why)
    for app in corrupted.absurd & set(present):
        assert app not in stored.index or stored.loc[app, "source_line"] != present[app], (
            f"{app} with an absurd value was loaded",
            why,
        )
    touched_lines = {present[a] for a in corrupted.touched if a in present}
    for key in set(new.index) - set(present):
        assert int(new.loc[key, "source_line"]) in touched_lines, (f"unexpected application {key!r}", why)


def _same(left: pd.Series, right: pd.Series) -> bool:
    for a, b in zip(left.tolist(), right.tolist()):
        if (a is None or (isinstance(a, float) and np.isnan(a)) or a is pd.NaT or a is pd.NA) and (
            b is None or (isinstance(b, float) and np.isnan(b)) or b is pd.NaT or b is pd.NA
        ):
            continue
        if a != b:
            return False
    return True


def split_batches(clean: Path, share: float = 0.5) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    """Split a portfolio into two batches by application (registry rows go with the first)."""
    frames = _frames(clean)
    apps = frames["applications"]
    cut = int(len(apps) * share)
    first_ids = set(apps["application_id"][:cut])
    first, second = {}, {}
    for table, frame in frames.items():
        if "application_id" in frame:
            mask = frame["application_id"].isin(first_ids)
            first[table], second[table] = frame[mask].reset_index(drop=True), frame[~mask].reset_index(drop=True)
        else:
            first[table], second[table] = frame, frame.iloc[0:0]
    return first, second


def write_clean(frames: dict[str, pd.DataFrame], out: Path) -> Path:
    """Write text frames as a clean CSV export folder."""
    out.mkdir(parents=True, exist_ok=True)
    for table, frame in frames.items():
        if len(frame) or table == "applications":
            frame.to_csv(out / f"{table}.csv", index=False, quoting=csv.QUOTE_MINIMAL)
    return out
