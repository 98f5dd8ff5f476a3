"""Turn the book into the four contract tables plus truth/, and write them."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ringscope.ingest.synthetic import people as P
from ringscope.ingest.synthetic import pools
from ringscope.ingest.synthetic.book import Book
from ringscope.ingest.synthetic.config import (
    APPLICATION_COLUMNS,
    CONTACT_COLUMNS,
    GUARANTEE_COLUMNS,
    ROLE_COLUMNS,
    GenerationSummary,
)

__all__ = ["assemble", "write", "write_csv", "csv_bytes", "split_tables", "planted_truth"]


def _money(values: np.ndarray) -> np.ndarray:
    """Whole yuan as text, '' where missing."""
    v = np.asarray(values, dtype=float)
    return np.where(np.isnan(v), "", np.char.mod("%.0f", np.nan_to_num(v)))


def assemble(book: Book) -> tuple[dict[str, pd.DataFrame], np.ndarray]:
    """Contract tables and truth as text frames; application ids follow submission time.

    Returns the tables and ``order`` (book row of each output row), so that
    per-row flags can follow.
    """
    c = book.cols
    # ids are issued in submission order, after every burst was planted, so
    # an id never betrays a moved time
    order = np.argsort(c["applied_at"], kind="stable")
    rank = np.empty(book.n, dtype=np.int64)
    rank[order] = np.arange(book.n)
    ids = np.char.add("AP", np.char.zfill((rank + book.offset + 1).astype(str), 8)).astype(object)

    data = {col: c[col] for col in APPLICATION_COLUMNS if col in c}
    data["application_id"] = ids
    data["applied_at"] = P.fmt_times(c["applied_at"])
    for col in ("amount", "declared_monthly_revenue", "declared_monthly_income"):
        data[col] = _money(c[col])
    data["term_months"] = c["term_months"].astype(str)
    applications = pd.DataFrame({col: np.asarray(data[col])[order] for col in APPLICATION_COLUMNS})

    def by_row(frames: list[pd.DataFrame], columns: tuple[str, ...]) -> pd.DataFrame:
        frame = pd.concat(frames, ignore_index=True)
        frame = frame.iloc[np.argsort(rank[frame["row"].to_numpy()], kind="stable")]
        frame.insert(0, "application_id", ids[frame.pop("row").to_numpy()])
        return frame.reset_index(drop=True)[list(columns)]

    contacts = by_row(book.contacts, CONTACT_COLUMNS)
    guarantees = by_row(book.guarantees, GUARANTEE_COLUMNS)
    guarantees["amount"] = _money(guarantees["amount"].to_numpy(dtype=float))
    truth = (
        pd.DataFrame(
            {
                "application_id": ids,
                "is_fraud": (book.typology != "").astype(int),
                "typology": book.typology,
                "ring_id": book.ring_id,
                "hard_negative": book.hard_negative,
            }
        )
        .iloc[order]
        .reset_index(drop=True)
    )
    tables = {
        "applications": applications,
        "guarantees": guarantees,
        "contacts": contacts,
        "company_roles": _company_roles(book),
        "truth": truth,
    }
    return tables, order


def _company_roles(book: Book) -> pd.DataFrame:
    """The registry: each firm's legal representative (the applicant) and 0–3 other shareholders."""
    rng, c = book.rng, book.cols
    biz = np.flatnonzero(c["business"])
    biz = biz[~pd.Series(c["company_uscc"][biz]).duplicated().to_numpy()]  # a firm once, however many loans
    biz = biz[np.argsort(c["applied_at"][biz], kind="stable")]
    k = rng.choice([0, 1, 2, 3], size=len(biz), p=[0.3, 0.4, 0.2, 0.1])
    # the legal rep holds most of the firm; the others split at most the rest
    rep_share = np.where(k == 0, 100.0, np.round(rng.uniform(34, 90, len(biz)), 1))
    reps = pd.DataFrame(
        {
            "company_uscc": c["company_uscc"][biz],
            "company_name": c["company_name"][biz],
            "person_name": c["applicant_name"][biz],
            "person_id_number": c["applicant_id_number"][biz],
            "role": "legal_rep",
            "share_pct": np.char.mod("%.1f", rep_share),
            "_firm": np.arange(len(biz)),
            "_k": 0,
        }
    )
    owner = np.repeat(np.arange(len(biz)), k)
    m = len(owner)
    rest = 100.0 - rep_share[owner]
    share = np.floor(rest / k[owner] * rng.uniform(0.5, 1.0, m) * 10) / 10  # sums stay <= 100
    r = pools.regions()
    region = c["region_idx"][biz][owner]
    male = rng.random(m) < 0.55
    surname, given = P.names(rng, male)
    birth = np.datetime64("2026-01-01") - rng.integers(25 * 365, 65 * 365, m).astype("timedelta64[D]")
    holders = pd.DataFrame(
        {
            "company_uscc": c["company_uscc"][biz][owner],
            "company_name": c["company_name"][biz][owner],
            "person_name": P.cat(surname, given),
            "person_id_number": np.where(rng.random(m) < 0.8, P.resident_ids(rng, r.codes[region], birth, male), ""),
            "role": np.where(rng.random(m) < 0.85, "shareholder", P.pick(rng, ["director", "supervisor"], m)),
            "share_pct": np.char.mod("%.1f", share),
            "_firm": owner,
            "_k": 1,
        }
    )
    holders.loc[holders["role"] != "shareholder", "share_pct"] = ""
    roles = pd.concat([reps, holders], ignore_index=True).sort_values(["_firm", "_k"], kind="stable")
    return roles[list(ROLE_COLUMNS)].reset_index(drop=True)


def write(
    book: Book, tables: dict[str, pd.DataFrame], broken: pd.DataFrame, out: Path, new_ids: set[str] | None = None
) -> GenerationSummary:
    """Write the contract tables (CSV in the configured encoding, or Parquet) and truth/ (UTF-8 CSV).

    With ``new_ids`` the tables are split into ``history/`` and ``new/``
    (see ``split_tables``) and the broken rows' lines count in their folder.
    """
    config = book.config
    truth_dir = out / "truth"
    truth_dir.mkdir(parents=True, exist_ok=True)
    summary = GenerationSummary(out_dir=str(out))
    contract = {name: tables[name] for name in ("applications", "guarantees", "contacts", "company_roles")}
    folders = {"": contract}
    if new_ids is not None:
        folders = split_tables(contract, new_ids)
        broken = _broken_lines(broken, contract["applications"], new_ids)
    for folder, frames in folders.items():
        (out / folder).mkdir(parents=True, exist_ok=True)
        for name, frame in frames.items():
            key = f"{folder}/{name}" if folder else name
            if config.file_format == "parquet":
                path = out / folder / f"{name}.parquet"
                table = pa.Table.from_pandas(frame.replace("", None), preserve_index=False)
                pq.write_table(table, path)
            else:
                path = out / folder / f"{name}.csv"
                write_csv(frame, path, config.encoding)
            summary.paths[key] = str(path)
            summary.row_counts[key] = len(frame)
    truth = tables["truth"]
    rings, circles = planted_truth(book.rings, book.circles)
    for name, frame in (
        ("applications", truth),
        ("rings", rings),
        ("guarantee_circles", circles),
        ("broken_rows", broken),
    ):
        path = truth_dir / f"{name}.csv"
        write_csv(frame, path, "utf-8")
        summary.paths[f"truth/{name}"] = str(path)
    summary.broken_rows = len(broken)
    return summary


def split_tables(tables: dict[str, pd.DataFrame], new_ids: set[str]) -> dict[str, dict[str, pd.DataFrame]]:
    """The contract tables cut into ``history`` and ``new`` by ``new_ids``.

    Applications, contacts and guarantees follow their application; a
    registry row goes with its firm's first application (``company_roles``
    rows of firms that never applied stay in the history). Row order is kept.

    Example
    -------
    >>> apps = pd.DataFrame({"application_id": ["A1", "A2"], "company_uscc": ["U1", "U2"]})
    >>> roles = pd.DataFrame({"company_uscc": ["U1", "U2", "U3"], "role": ["legal_rep"] * 3})
    >>> parts = split_tables({"applications": apps, "company_roles": roles}, {"A2"})
    >>> list(parts["new"]["applications"]["application_id"]), list(parts["history"]["company_roles"]["company_uscc"])
    (['A2'], ['U1', 'U3'])
    """
    apps = tables["applications"]
    firms = apps[apps["company_uscc"] != ""].drop_duplicates("company_uscc")
    new_firms = set(firms.loc[firms["application_id"].isin(new_ids), "company_uscc"])
    parts: dict[str, dict[str, pd.DataFrame]] = {"history": {}, "new": {}}
    for name, frame in tables.items():
        if "application_id" in frame.columns:
            is_new = frame["application_id"].isin(new_ids)
        else:
            is_new = frame["company_uscc"].isin(new_firms)
        parts["history"][name] = frame[~is_new].reset_index(drop=True)
        parts["new"][name] = frame[is_new].reset_index(drop=True)
    return parts


def _broken_lines(broken: pd.DataFrame, apps: pd.DataFrame, new_ids: set[str]) -> pd.DataFrame:
    """Broken-row truth with each row's folder and its line in that folder's file."""
    is_new = apps["application_id"].isin(new_ids).to_numpy()
    # 1-based line of each row within its part's file (header is line 1)
    line = np.empty(len(apps), dtype=np.int64)
    line[is_new] = np.arange(is_new.sum()) + 2
    line[~is_new] = np.arange((~is_new).sum()) + 2
    rows = broken["line"].to_numpy(dtype=np.int64) - 2
    out = broken.copy()
    out.insert(1, "folder", np.where(is_new[rows], "new", "history"))
    out["line"] = line[rows]
    return out


def write_csv(frame: pd.DataFrame, path: Path, encoding: str) -> None:
    """CSV through pyarrow's writer; GBK/GB18030 re-encoded from its UTF-8 in one pass."""
    path.write_bytes(csv_bytes(frame, encoding))


def csv_bytes(frame: pd.DataFrame, encoding: str, header: bool = True) -> bytes:
    """``frame`` as CSV in ``encoding``; without ``header`` the rows that follow
    an earlier part (no header line, no byte-order mark)."""
    table = pa.Table.from_pandas(frame.astype(str), preserve_index=False)
    buffer = io.BytesIO()
    pacsv.write_csv(table, buffer, pacsv.WriteOptions(quoting_style="needed", include_header=header))
    raw = buffer.getvalue()
    if encoding == "utf-8-sig" and header:
        raw = "\ufeff".encode("utf-8") + raw
    elif encoding in ("gbk", "gb18030"):
        raw = raw.decode("utf-8").encode(encoding)  # strict: a character outside GBK should fail loudly
    return raw


def planted_truth(rings: list[pd.DataFrame], circles: list[pd.DataFrame]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ring and circle truth tables from the frames planted (empty ones keep their columns)."""
    ring_table = (
        pd.concat(rings, ignore_index=True)
        if rings
        else pd.DataFrame(columns=["ring_id", "typology", "size", "shared"])
    )
    circle_table = (
        pd.concat(circles, ignore_index=True)
        if circles
        else pd.DataFrame(columns=["circle_id", "members", "cycle_length"])
    )
    return ring_table, circle_table
