"""Files ringscope writes: private, atomic, safe to open in a spreadsheet.

Everything ringscope writes holds personal data (names, ID numbers, phones),
so folders are created ``0700`` and files ``0600`` whatever the umask says.
A file appears whole or not at all: it is written to a temporary name in the
same folder, flushed to disk and swapped in with ``os.replace``. CSV files
meant for people (findings, members, flags, rejects, entities) neutralise
cells that a spreadsheet would run as a formula.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import pandas as pd

__all__ = [
    "PRIVATE_DIR_MODE",
    "PRIVATE_FILE_MODE",
    "TMP_MARKER",
    "private_dir",
    "atomic_open",
    "atomic_write_bytes",
    "atomic_write_text",
    "neutralise_cell",
    "spreadsheet_safe",
    "write_csv",
    "remove_leftovers",
]

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
#: part of every temporary file's name, so leftovers of a killed write can be found
TMP_MARKER = ".rs-tmp-"

# A spreadsheet treats a cell starting with one of these as a formula (or, for
# tab and carriage return, may shift it into one).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def private_dir(path: str | os.PathLike) -> Path:
    """Create ``path`` (and missing parents) with mode 0700; return it.

    A folder that already exists keeps its mode unless it is ours to guard:
    the last component is always set to 0700.

    Example
    -------
    >>> d = private_dir(Path(tempfile.mkdtemp()) / "store" / "nodes")
    >>> oct(d.stat().st_mode & 0o777), oct(d.parent.stat().st_mode & 0o777)
    ('0o700', '0o700')
    """
    path = Path(path)
    missing = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=PRIVATE_DIR_MODE)
        except FileExistsError:  # created meanwhile by another writer
            pass
        os.chmod(folder, PRIVATE_DIR_MODE)  # mkdir's mode is filtered by the umask
    if not missing:
        os.chmod(path, PRIVATE_DIR_MODE)
    return path


@contextmanager
def atomic_open(
    path: str | os.PathLike, mode: str = "wb", encoding: str | None = None, newline: str | None = None
) -> Iterator[IO]:
    """Open a temporary file beside ``path`` (mode 0600); on success it
    replaces ``path`` in one step, on error it is removed and ``path`` is
    left as it was.

    Example
    -------
    >>> target = Path(tempfile.mkdtemp()) / "out.txt"
    >>> with atomic_open(target, "w", encoding="utf-8") as fh:
    ...     _ = fh.write("whole or nothing")
    >>> target.read_text(), oct(target.stat().st_mode & 0o777)
    ('whole or nothing', '0o600')
    """
    path = Path(path)
    private_dir(path.parent) if not path.parent.exists() else None
    fd, tmp = tempfile.mkstemp(prefix=f"{path.name}{TMP_MARKER}", dir=path.parent)  # mkstemp: mode 0600
    try:
        with os.fdopen(fd, mode, encoding=encoding, newline=newline) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, mode 0600."""
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically, mode 0600."""
    with atomic_open(path, "w", encoding=encoding, newline="") as handle:
        handle.write(text)


def neutralise_cell(value: object) -> object:
    """A text cell a spreadsheet will show as text, never run as a formula.

    Text starting with ``= + - @``, a tab or a carriage return gets a leading
    apostrophe (the usual spreadsheet escape); plain numbers such as ``-12.5``
    are left alone, as is anything that is not text.

    Example
    -------
    >>> neutralise_cell('=HYPERLINK("http://x","y")'), neutralise_cell("-12.5"), neutralise_cell("张三")
    ('\\'=HYPERLINK("http://x","y")', '-12.5', '张三')
    """
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells (and column names) cannot start a formula.

    Example
    -------
    >>> spreadsheet_safe(pd.DataFrame({"summary": ["@SUM(A1)", "ok"], "score": [0.5, -1.0]})).to_dict("list")
    {'summary': ["'@SUM(A1)", 'ok'], 'score': [0.5, -1.0]}
    """
    safe = frame.copy()
    for column in safe.columns:
        series = safe[column]
        if pd.api.types.is_object_dtype(series) or pd.api.types.is_string_dtype(series):
            safe[column] = series.map(neutralise_cell, na_action="ignore")
    safe.columns = [neutralise_cell(str(c)) for c in safe.columns]
    return safe


def write_csv(frame: pd.DataFrame, path: str | os.PathLike, encoding: str = "utf-8-sig") -> Path:
    """Write ``frame`` as a spreadsheet-safe CSV, atomically, mode 0600.

    UTF-8 with BOM by default, so spreadsheet tools read the hanzi.
    """
    path = Path(path)
    with atomic_open(path, "w", encoding=encoding, newline="") as handle:
        spreadsheet_safe(frame).to_csv(handle, index=False)
    return path


def remove_leftovers(folder: str | os.PathLike, pattern: str = "*") -> list[Path]:
    """Delete temporary files that a killed write left in ``folder``.

    Only names carrying :data:`TMP_MARKER` (this module's) or the store's
    older ``.tmp<pid>`` suffix count, and only when no live process owns them
    (the pid is unknown for the former, so callers hold the store lock).
    """
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for file in folder.glob(pattern):
        if TMP_MARKER in file.name or re.search(r"\.tmp\d+$", file.name):
            file.unlink(missing_ok=True)
            removed.append(file)
    return removed
