"""Parquet columns to contract text, refusing any conversion that could change a value.

Every contract column is read as text, as from a CSV. What each Parquet
type may become:

=====================  ============================================================
identifier columns     text, dictionary-encoded text, UTF-8 binary, integers, decimals
                       of scale 0; floats only when every value is a whole number
                       below 2**53 (exactly representable) — an 18-digit resident ID
                       or bank account stored as float64 has already lost digits
amount-like columns    text, integers, floats (positional, never exponent notation),
                       decimals
``applied_at``         text, timestamps (naive: Asia/Shanghai local time, as the
                       contract says; with a time zone: converted to UTC), dates
other text columns     text, UTF-8 binary, integers, floats, decimals
=====================  ============================================================

Refused everywhere: binary that is not UTF-8, nested types (list, struct,
map, union), booleans, durations and times, and any type not listed. A refusal
is a :class:`ringscope.ingest.reader.RefusedFile` naming the column and its type; the
whole file is counted as rejected (a column-wide type fault is not a row
fault). Columns outside the contract are kept as text only for the rejects
file's record.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ringscope.ingest.reader import LINE, ReadResult, RefusedFile, UnreadableFile, check_column_names

__all__ = ["ID_COLUMNS", "NUMBER_COLUMNS", "TIME_COLUMNS", "TEXT_COLUMNS", "read_parquet", "column_as_text"]

#: identifiers: a changed digit is a different person, phone or company
ID_COLUMNS = frozenset(
    {
        "application_id",
        "applicant_id_number",
        "applicant_phone",
        "agent_id",
        "company_uscc",
        "bank_account",
        "device_id",
        "ip",
        "email",
        "guarantor_id",
        "guarantor_phone",
        "contact_phone",
        "person_id_number",
    }
)
NUMBER_COLUMNS = frozenset(
    {"amount", "term_months", "declared_monthly_revenue", "declared_monthly_income", "share_pct"}
)
TIME_COLUMNS = frozenset({"applied_at"})
TEXT_COLUMNS = frozenset(
    {
        "applicant_name",
        "applicant_address",
        "product",
        "channel",
        "company_name",
        "company_address",
        "employer_name",
        "label",
        "guarantor_type",
        "guarantor_name",
        "contact_name",
        "relation",
        "person_name",
        "role",
    }
)

_EXACT = 2**53


def read_parquet(path: Path) -> ReadResult:
    """Read a Parquet table as contract text columns (see the module's table)."""
    try:
        table = pq.read_table(path)
    except Exception as err:  # pyarrow raises several types for a bad file
        raise UnreadableFile(f"{path.name}: not a readable Parquet file ({err})") from err
    names = check_column_names(table.column_names, path.name, table.num_rows, "parquet")
    columns = {name: column_as_text(name, table.column(i), path.name, table.num_rows) for i, name in enumerate(names)}
    frame = pa.table(columns).to_pandas() if columns else pd.DataFrame(index=range(table.num_rows))
    # Parquet has no lines: number rows like a CSV would (header = 1).
    frame[LINE] = np.arange(2, table.num_rows + 2, dtype=np.int64)
    return ReadResult(frame=frame, encoding="parquet", lines=table.num_rows, row_lines=table.num_rows, path="parquet")


def read_parquet_chunks(path: Path, rows: int) -> tuple[ReadResult, Iterator[pd.DataFrame]]:
    """:func:`read_parquet` ``rows`` rows at a time: the file's accounting
    (a :class:`ReadResult` with an empty frame) and an iterator of frames
    whose concatenation is ``read_parquet(path).frame``.

    A column that :func:`column_as_text` would refuse is found before the
    first frame, by reading only the columns that are not text already (one
    at a time), so the file is refused as a whole, with the same message.
    """
    try:
        handle = pq.ParquetFile(path)
        schema = handle.schema_arrow
    except Exception as err:  # pyarrow raises several types for a bad file
        raise UnreadableFile(f"{path.name}: not a readable Parquet file ({err})") from err
    total = handle.metadata.num_rows
    names = check_column_names(schema.names, path.name, total, "parquet")
    for i, field in enumerate(schema):
        t = field.type
        if not (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)):
            try:
                column = handle.read(columns=[field.name]).column(0)
            except Exception as err:
                raise UnreadableFile(f"{path.name}: not a readable Parquet file ({err})") from err
            column_as_text(names[i], column, path.name, total)
            del column
    header = ReadResult(
        frame=pd.DataFrame(columns=[*names, LINE]),
        encoding="parquet",
        lines=total,
        row_lines=total,
        path="parquet",
        rows=total,
    )

    def frames() -> Iterator[pd.DataFrame]:
        start = 0
        for batch in handle.iter_batches(batch_size=rows, use_threads=True):
            n = batch.num_rows
            columns = {
                name: column_as_text(name, pa.chunked_array([batch.column(i)]), path.name, total)
                for i, name in enumerate(names)
            }
            frame = pa.table(columns).to_pandas() if columns else pd.DataFrame(index=range(n))
            frame.index = pd.RangeIndex(start, start + n)
            frame[LINE] = np.arange(start + 2, start + n + 2, dtype=np.int64)
            start += n
            yield frame

    return header, frames()


def column_as_text(name: str, column: pa.ChunkedArray, source: str = "", rows: int = 0) -> pa.ChunkedArray:
    """One Parquet column as text, or :class:`RefusedFile` when that could change a value.

    Example
    -------
    >>> column_as_text("applicant_phone", pa.chunked_array([pa.array([13800138000.0, None])])).to_pylist()
    ['13800138000', None]
    >>> column_as_text("applicant_id_number", pa.chunked_array([pa.array([110105194912310021.0])]), "a.parquet", 1)
    Traceback (most recent call last):
    ...
    ringscope.ingest.reader.RefusedFile: a.parquet: column applicant_id_number is double: 1 of 1 values are not whole numbers below 2**53, so digits may already be lost; export identifiers as text
    """
    kind = (
        "id"
        if name in ID_COLUMNS
        else "number"
        if name in NUMBER_COLUMNS
        else "time"
        if name in TIME_COLUMNS
        else "text"
        if name in TEXT_COLUMNS
        else "other"
    )
    t = column.type

    def refuse(why: str) -> RefusedFile:
        return RefusedFile(f"{source}: column {name} is {t}: {why}", rows, "parquet")

    if pa.types.is_dictionary(t):
        try:
            column = pc.cast(column, t.value_type)
        except pa.ArrowInvalid as err:
            raise refuse(f"its dictionary cannot be decoded ({err})") from None
        t = column.type
    if pa.types.is_null(t):
        return pa.chunked_array([pa.nulls(len(column), pa.string())])
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pc.cast(column, pa.string())
    if (
        pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
        or pa.types.is_fixed_size_binary(t)
        or pa.types.is_binary_view(t)
    ):
        try:
            return pc.cast(pc.cast(column, pa.binary()), pa.string())  # validates UTF-8
        except pa.ArrowInvalid:
            raise refuse("it holds bytes that are not UTF-8 text; export it as text") from None
    if kind == "other":
        return _other_as_text(column)
    if kind == "time":
        if pa.types.is_timestamp(t):
            # to whole seconds (a coarser unit cannot overflow); a time zone
            # is only metadata, so UTC is a relabel
            seconds = pc.cast(column, pa.timestamp("s", tz=None if t.tz is None else "UTC"), safe=False)
            return pc.strftime(seconds, format="%Y-%m-%d %H:%M:%S" if t.tz is None else "%Y-%m-%dT%H:%M:%SZ")
        if pa.types.is_date(t):
            return pc.cast(pc.cast(column, pa.date32()), pa.string())
        raise refuse("applied_at must be a timestamp, a date or text")
    if pa.types.is_integer(t):
        return pc.cast(column, pa.string())
    if pa.types.is_decimal(t):
        if kind == "id" and t.scale > 0:
            raise refuse("an identifier with decimal places; export identifiers as text")
        return pc.cast(column, pa.string())
    if pa.types.is_floating(t):
        values = pc.cast(column, pa.float64()).to_numpy()
        present = ~np.isnan(values)
        if kind == "id":
            exact = present & np.isfinite(values)
            exact[exact] = (np.floor(values[exact]) == values[exact]) & (np.abs(values[exact]) < _EXACT)
            wrong = int((present & ~exact).sum())
            if wrong:
                raise refuse(
                    f"{wrong:,} of {int(present.sum()):,} values are not whole numbers below 2**53, "
                    "so digits may already be lost; export identifiers as text"
                )
        return pa.chunked_array([pa.array(_format_floats(values), type=pa.string())])
    raise refuse(f"a {kind} column cannot be {t}; export it as text")


def _format_floats(values: np.ndarray) -> list[str | None]:
    """12000.0 → '12000', 0.5 → '0.5', 1e30 → all its digits (never '1e+30',
    which no amount parser reads), inf → 'inf' (rejected later), NaN → None."""
    out: list[str | None] = []
    for v in values.tolist():
        if v != v:
            out.append(None)
        elif v in (float("inf"), float("-inf")):
            out.append(str(v))
        else:
            out.append(np.format_float_positional(v, trim="-"))
    return out


def _other_as_text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A column outside the contract: text for the rejects record only."""
    try:
        return pc.cast(column, pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.chunked_array([pa.array([None if v is None else str(v) for v in column.to_pylist()], pa.string())])
