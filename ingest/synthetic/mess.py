"""Formatting mess as lenders' exports really have it, and a few contract-breaking rows.

Mess never changes what a value means (a normaliser can undo it); broken rows
do break the contract and are listed in ``truth/broken_rows.csv``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ringscope.ingest.synthetic import pools
from ringscope.ingest.synthetic.book import Book

__all__ = ["add_mess", "break_rows"]

_FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def _phone_variant(p: str, style: int) -> str:
    if len(p) != 11:
        return p
    return (
        f"+86 {p[:3]}-{p[3:7]}-{p[7:]}",
        "86" + p,
        f"{p[:3]} {p[3:7]} {p[7:]}",
        p.translate(_FULLWIDTH),
        f"+86{p}",
        f"{p[:3]}-{p[3:7]}-{p[7:]}",
    )[style]


def _name_variant(name: str, style: int, rng: np.random.Generator) -> str:
    if style == 0:
        return name.translate(pools.TRADITIONAL)
    if style == 1:  # pinyin, as typed into a Latin-only field
        from pypinyin import Style, lazy_pinyin

        syllables = lazy_pinyin(name, style=Style.NORMAL)
        return (syllables[0].capitalize() + " " + "".join(syllables[1:]).capitalize()).strip()
    if style == 2:  # a homophone typo in the given name
        typo = name[1:].translate(pools.HOMOPHONES)
        if typo == name[1:]:
            typo = name[1:-1] + str(rng.choice(pools.GIVEN_CHARS)) if len(name) > 2 else typo
        return name[0] + typo
    return (" " + name) if style == 3 else (name[0] + " " + name[1:])  # stray spaces


def _address_variant(a: str, style: int) -> str:
    if style == 0:
        return a.replace("省", "", 1).replace("市", "", 1)
    if style == 1:
        return a.replace("路", "道", 1) if "路" in a else a.replace("大道", "路", 1)
    if style == 2:
        return a.translate(pools.TRADITIONAL)
    return a.replace("单元", "单元 ", 1).replace("号", "号 ", 1) + " "


def add_mess(book: Book, apps: pd.DataFrame, contacts: pd.DataFrame, rows_forced: np.ndarray) -> None:
    """Mess up ``mess_rate`` of the application rows (and all ``rows_forced``), in place.

    Each messy row gets one or two of: phone format, name (traditional,
    pinyin, typo, spaces), ID (lower-case x, spaces, full-width digits),
    address (abbreviated, 路/道, traditional, spaces). Contact phones get the
    same phone mess at the same rate.
    """
    rng, rate = book.rng, book.config.mess_rate
    n = len(apps)
    messy = np.flatnonzero((rng.random(n) < rate) | rows_forced)
    fields = rng.random((len(messy), 4)) < 0.35
    fields[np.arange(len(messy)), rng.integers(0, 4, len(messy))] = True  # at least one field per messy row
    styles = rng.integers(0, 1 << 30, size=(len(messy), 4))

    def apply(column: str, j: int, variant) -> None:
        rows = messy[fields[:, j]]
        if len(rows):
            values = apps[column].to_numpy(dtype=object)
            values[rows] = [variant(v, s) for v, s in zip(values[rows], styles[fields[:, j], j])]
            apps[column] = values

    apply("applicant_phone", 0, lambda v, s: _phone_variant(v, s % 6))
    # pinyin is rarer than traditional characters or typos
    apply("applicant_name", 1, lambda v, s: _name_variant(v, (0, 0, 1, 2, 2, 3, 4)[s % 7], rng))
    apply("applicant_id_number", 2, _id_variant)
    apply("applicant_address", 3, lambda v, s: _address_variant(v, s % 4))

    phones = contacts["contact_phone"].to_numpy(dtype=object)
    rows = np.flatnonzero(rng.random(len(phones)) < rate / 2)
    phones[rows] = [_phone_variant(p, s) for p, s in zip(phones[rows], rng.integers(0, 6, len(rows)))]
    contacts["contact_phone"] = phones


def _id_variant(v: str, s: int) -> str:
    if v.endswith("X") and s % 2 == 0:
        return v[:-1] + "x"
    style = s % 3
    if style == 0:
        return f"{v[:6]} {v[6:14]} {v[14:]}"
    if style == 1:
        return v.translate(_FULLWIDTH)
    return " " + v + " "


_BAD_DATES = ("2025-13-45 25:61", "昨天下午", "31/02/2025", "2025年", "0000-00-00 00:00:00")


def break_rows(book: Book, apps: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Break ``broken_row_rate`` of the rows; return (applications, broken-row truth).

    Kinds: a missing required value, an unparseable applied_at, a bad amount
    ('-5', 'abc', '0'), a duplicate application_id with different content
    (appended at the end of the file). ``line`` is the 1-based line in the
    CSV, counting the header as line 1.
    """
    rng = book.rng
    n = len(apps)
    k = int(round(book.config.broken_row_rate * n))
    columns = ["application_id", "line", "reason"]
    if k == 0:
        return apps, pd.DataFrame(columns=columns)
    idx = np.sort(rng.choice(n, size=k, replace=False))
    kinds = rng.integers(0, 4, k)
    broken, duplicates = [], []
    for i, kind in zip(idx.tolist(), kinds.tolist()):
        app_id = apps.at[i, "application_id"]
        if kind == 0:
            column = str(rng.choice(["amount", "applicant_name", "applicant_id_number", "applicant_phone"]))
            apps.at[i, column] = ""
            broken.append((app_id, i + 2, f"missing required value: {column}"))
        elif kind == 1:
            apps.at[i, "applied_at"] = str(rng.choice(_BAD_DATES))
            broken.append((app_id, i + 2, "unparseable applied_at"))
        elif kind == 2:
            apps.at[i, "amount"] = str(rng.choice(["-5", "abc", "0", "-5000"]))
            broken.append((app_id, i + 2, "bad amount"))
        else:
            row = apps.iloc[i].copy()
            row["amount"] = str(int(float(row["amount"] or 1000)) + int(rng.integers(1, 50)) * 1000)
            row["applied_at"] = apps.at[i, "applied_at"]
            duplicates.append(row)
            broken.append((app_id, n + 1 + len(duplicates), "duplicate application_id with different content"))
    if duplicates:
        apps = pd.concat([apps, pd.DataFrame(duplicates)], ignore_index=True)
    return apps, pd.DataFrame(broken, columns=columns)
