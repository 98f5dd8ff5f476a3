"""First load of an empty Neo4j with the offline importer (``ingest --bulk``).

``UNWIND … MERGE`` through Bolt is the right tool for nightly batches; a
first load of a whole book is faster written straight into the store files
by ``neo4j-admin database import full``. This module turns the same
:class:`ringscope.graph.store.GraphBatch` the MERGE ingest writes into the
importer's CSV files (integer node ids, a header and a data file per set of
labels or relationship names with the same columns), and runs the import on the
local launcher's data folder (``tools/neo4j_server.py``): stop the server,
import, start it again with the same arguments, create the constraints, move
the store's revision on. The importer writes store files, so it runs on the
machine that holds them: the server must be one the launcher started here.

Values are written so that the stored graph equals a MERGE ingest's: repeated
keys collapse by the same rule (first delivery wins), a missing value is an
empty unquoted field (no property), every present string is quoted (an empty
string stays an empty string), date-times are UTC with millisecond precision
(what the Bolt path sends), dates are the UTC day, and each column's importer
type follows its values (``boolean``, ``long``, ``double``, ``string``).
Relationships whose end node is not in the batch are dropped and counted, as
MERGE's ``MATCH`` drops them.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ringscope.graph.files import atomic_open, atomic_write_text, private_dir
from ringscope.graph.model import REL_TYPES, TEMPORAL_PROPERTIES
from ringscope.graph.store import GraphBatch, Progress

__all__ = [
    "BulkRefused",
    "BulkFailed",
    "BulkFiles",
    "BulkReport",
    "import_tables",
    "write_import_files",
    "bulk_load",
    "launcher",
]


class BulkRefused(RuntimeError):
    """The bulk load cannot run here (database not empty, server not local, …);
    nothing was changed."""


class BulkFailed(RuntimeError):
    """The importer failed; the server was started again on what it left
    (an empty database: the import replaces it whole)."""


@dataclass
class BulkFiles:
    """The importer's input written by :func:`write_import_files`."""

    folder: Path
    #: label → (header file, data file, rows of that label)
    nodes: dict[str, tuple[Path, Path, int]] = field(default_factory=dict)
    #: relationship name → (header file, data file, rows of that name)
    relationships: dict[str, tuple[Path, Path, int]] = field(default_factory=dict)
    #: some string holds a line break (the importer must be told: it is slower then)
    multiline: bool = False
    #: bytes of the longest row (an upper bound): the importer's read buffer must hold it
    longest_row: int = 0

    @property
    def n_nodes(self) -> int:
        return sum(n for _, _, n in self.nodes.values())

    @property
    def n_relationships(self) -> int:
        return sum(n for _, _, n in self.relationships.values())

    @property
    def read_buffer(self) -> int:
        """The importer's ``--read-buffer-size``: it samples each file a
        buffer at a time up to 1 MiB before importing (single-threaded, on a
        cold JVM), so a buffer smaller than its 4 MiB default reads less
        there; never smaller than twice the longest row."""
        return max(READ_BUFFER, 2 * self.longest_row)

    def arguments(self) -> list[str]:
        """Options for ``neo4j-admin database import full``: one input per
        file (a file shared by several labels or types names them in its
        ``:LABEL`` / ``:TYPE`` column)."""
        args: list[str] = []
        for option, parts, prefix in (
            ("nodes", self.nodes, lambda name: name),
            ("relationships", self.relationships, lambda name: REL_TYPES[name].type),
        ):
            files: dict[tuple[Path, Path], list[str]] = {}
            for name, (header, data, _) in parts.items():
                files.setdefault((header, data), []).append(name)
            for (header, data), names in files.items():
                label = f"{prefix(names[0])}=" if len(names) == 1 and _single(header) else ""
                args.append(f"--{option}={label}{header},{data}")
        args.append("--id-type=actual")  # the ids write_import_files assigned
        args.append(f"--read-buffer-size={self.read_buffer}")
        if self.multiline:
            args.append("--multiline-fields=true")
        return args


#: the importer's read buffer (its default is 4 MiB; see BulkFiles.read_buffer)
READ_BUFFER = 256 * 1024


def _single(header: Path) -> bool:
    """True when ``header`` has no ``:LABEL`` / ``:TYPE`` column (one label or type per file)."""
    names = header.read_text(encoding="utf-8").strip().split(",")
    return ":LABEL" not in names and ":TYPE" not in names


@dataclass
class BulkReport:
    """What one bulk load did, with its timings (seconds)."""

    nodes: int
    relationships: int
    #: relationships dropped because an end node is not in the batch
    dropped_relationships: int
    files_seconds: float
    stop_seconds: float
    import_seconds: float
    start_seconds: float
    schema_seconds: float
    #: the importer's own figure ("IMPORT DONE in …": without JVM start-up), None if it printed none
    importer_seconds: float | None = None

    @property
    def writes(self) -> int:
        return self.nodes + self.relationships

    @property
    def import_rate(self) -> float:
        """Graph writes (nodes + relationships) per second of the importer run."""
        return self.writes / self.import_seconds if self.import_seconds else float("nan")


def importer_seconds(output: str) -> float | None:
    """The duration in the importer's ``IMPORT DONE in …`` line.

    Example
    -------
    >>> importer_seconds("...\\nIMPORT DONE in 1m 7s 923ms. \\nImported:")
    67.923
    """
    match = re.search(r"IMPORT DONE in ([^.]*)\.", output)
    if match is None:
        return None
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    parts = re.findall(r"(\d+)(ms|h|m|s)\b", match.group(1))
    return round(sum(int(n) * units[u] for n, u in parts), 3) if parts else None


# -- tables and files ---------------------------------------------------------


def import_tables(batch: GraphBatch) -> tuple[GraphBatch, int]:
    """``batch`` as the importer must see it: repeated keys collapsed as the
    MERGE ingest collapses them (policy ``keep``), relationships whose end
    node is not in the batch dropped. Returns the tables and how many were dropped.

    Example
    -------
    >>> b = GraphBatch(
    ...     nodes={"Application": pd.DataFrame({"key": ["A1", "A1"]}), "IP": pd.DataFrame({"key": ["1.2.3.4"]})},
    ...     relationships={"Application-HAS_IP-IP": pd.DataFrame({"src": ["A1", "A2"], "dst": ["1.2.3.4"] * 2})},
    ... )
    >>> tables, dropped = import_tables(b)
    >>> len(tables.nodes["Application"]), len(tables.relationships["Application-HAS_IP-IP"]), dropped
    (1, 1, 1)
    """
    from ringscope.graph.neo4j_store import _dedupe

    nodes = {label: _dedupe(frame, ["key"], "keep") for label, frame in batch.nodes.items() if len(frame)}
    rels: dict[str, pd.DataFrame] = {}
    dropped = 0
    for name, frame in batch.relationships.items():
        rt = REL_TYPES[name]
        frame = _dedupe(frame, ["src", "dst", *rt.identity], "keep")
        known = _isin(frame["src"], _keys(nodes, rt.source)) & _isin(frame["dst"], _keys(nodes, rt.target))
        dropped += int((~known).sum())
        if known.all():
            rels[name] = frame
        elif known.any():
            rels[name] = frame[known].reset_index(drop=True)
    return GraphBatch(nodes=nodes, relationships=rels), dropped


def _keys(nodes: dict[str, pd.DataFrame], label: str) -> pd.Series:
    return nodes[label]["key"] if label in nodes else pd.Series([], dtype=object)


def _isin(values: pd.Series, keys: pd.Series):
    """``values.isin(keys)`` as a numpy mask, through Arrow (pandas' isin on
    Arrow-backed strings loops in Python: 100 s at 100k applications)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    def text(series: pd.Series):
        return pa.array(series, from_pandas=True).cast(pa.large_string())

    return pc.is_in(text(values), value_set=text(keys)).to_numpy(zero_copy_only=False)


def write_import_files(tables: GraphBatch, folder: str | os.PathLike) -> BulkFiles:
    """Write the importer's CSV files for ``tables`` (from :func:`import_tables`)
    into ``folder`` (created private); see the module doc for the rules.

    Nodes get integer ids here, each label a contiguous range, and are
    imported with ``--id-type=actual``: the importer writes each node at
    that id and links relationships by it, with no ID map to build, sort
    and look up (the string ``key`` is an ordinary property). Relationship
    ends are looked up in Arrow (a hash join). Labels (relationship names)
    whose columns are the same share one file with a ``:LABEL`` (``:TYPE``)
    column: the importer's start-up reads every file, so fewer files start faster.
    """
    folder = private_dir(folder)
    if "," in str(folder):  # the importer separates files with commas
        raise BulkRefused(f"the import folder {folder} has a comma in its path")
    files = BulkFiles(folder=folder)
    ids: dict[str, tuple[int, Any]] = {}  # label -> (first id, its keys as Arrow)
    groups: dict[tuple[str, ...], list[tuple[str, pd.DataFrame]]] = {}
    first = 0
    for label, frame in tables.nodes.items():
        ids[label] = (first, _text(frame["key"]))
        columns = {":ID": pd.Series(range(first, first + len(frame)), dtype="int64"), "key": frame["key"]}
        header, table = _columns(frame, columns, [":ID", "key:string"])
        groups.setdefault(tuple(header), []).append((label, table))
        first += len(frame)
    for i, (header, members) in enumerate(groups.items()):
        _write_group(folder, f"n{i}", list(header), ":LABEL", members, files, files.nodes)
    groups = {}
    for name, frame in tables.relationships.items():
        rt = REL_TYPES[name]
        columns = {":START_ID": _ids(frame["src"], ids[rt.source]), ":END_ID": _ids(frame["dst"], ids[rt.target])}
        header, table = _columns(frame, columns, [":START_ID", ":END_ID"])
        groups.setdefault(tuple(header), []).append((name, table))
    for i, (header, members) in enumerate(groups.items()):
        _write_group(folder, f"r{i}", list(header), ":TYPE", members, files, files.relationships)
    return files


def _text(series: pd.Series):
    import pyarrow as pa

    return pa.array(series, from_pandas=True).cast(pa.large_string())


def _ids(values: pd.Series, label_ids: tuple[int, Any]) -> pd.Series:
    """Node ids of ``values`` (keys of one label, all present: :func:`import_tables` dropped the rest)."""
    import pyarrow.compute as pc

    first, keys = label_ids
    index = pc.index_in(_text(values), value_set=keys)
    if index.null_count:  # import_tables keeps only relationships whose ends exist
        raise BulkRefused(f"{index.null_count} relationship ends name no node of the batch")
    return pd.Series(index.to_numpy(zero_copy_only=False).astype("int64") + first)


def _columns(frame: pd.DataFrame, columns: dict[str, pd.Series], header: list[str]) -> tuple[list[str], pd.DataFrame]:
    """The header and the values to write for ``frame``: ``columns`` (ids)
    first, then each property column with a value, typed."""
    for col in frame.columns:
        if col in ("key", "src", "dst"):
            continue
        kind, values = _typed(col, frame[col])
        if kind is None:  # no value at all: MERGE sets no property either
            continue
        header.append(f"{col}:{kind}")
        columns[col] = values.reset_index(drop=True)
    return header, pd.DataFrame(columns)


def _write_group(
    folder: Path,
    stem: str,
    header: list[str],
    name_column: str,
    members: list[tuple[str, pd.DataFrame]],
    files: BulkFiles,
    index: dict[str, tuple[Path, Path, int]],
) -> None:
    """One header and one data file for ``members`` (labels or relationship
    names with the same columns); several share it through ``name_column``."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    if len(members) > 1:
        header = [*header, name_column]
        kind = {":LABEL": lambda n: n, ":TYPE": lambda n: REL_TYPES[n].type}[name_column]
        frames = [t.assign(**{name_column: kind(n)}) for n, t in members]
        frame = pd.concat(frames, ignore_index=True)
    else:
        frame = members[0][1]
    table = pa.Table.from_pandas(frame, preserve_index=False)
    longest = 0
    for col in table.column_names:
        if pa.types.is_string(table[col].type) or pa.types.is_large_string(table[col].type):
            if pc.any(pc.match_substring_regex(table[col], r"[\r\n]")).as_py():
                files.multiline = True
            longest += 2 * (pc.max(pc.binary_length(table[col])).as_py() or 0) + 3  # quotes doubled at worst
        else:
            longest += 32
    files.longest_row = max(files.longest_row, longest)
    head, data = folder / f"{stem}_header.csv", folder / f"{stem}.csv"
    atomic_write_text(head, ",".join(header) + "\n")
    # every string quoted, a missing value an empty field: "" stays an empty string;
    # numbers and booleans bare (less to write and to parse)
    options = pcsv.WriteOptions(include_header=False, quoting_style="needed")
    with atomic_open(data, "wb") as out:
        pcsv.write_csv(table, out, options)
    for name, part in members:
        index[name] = (head, data, len(part))


def _typed(name: str, series: pd.Series) -> tuple[str | None, pd.Series]:
    """(importer type, values to write) for one property column."""
    if name in TEMPORAL_PROPERTIES:
        kind = TEMPORAL_PROPERTIES[name]
        when = series if pd.api.types.is_datetime64_any_dtype(series) else pd.to_datetime(series, errors="coerce")
        when = when.dt.tz_convert("UTC") if when.dt.tz is not None else when.dt.tz_localize("UTC")
        # epoch milliseconds on the Bolt path: the same precision here
        when = when.dt.floor("ms")
        text = (
            when.dt.strftime("%Y-%m-%d") if kind == "date" else when.dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str[:-3] + "Z"
        )
        return (kind if when.notna().any() else None), text.astype(object).where(when.notna(), None)
    present = series.dropna()
    if present.empty:
        return None, series
    if pd.api.types.is_bool_dtype(series):
        return "boolean", series
    if pd.api.types.is_integer_dtype(series):
        return "long", series
    if pd.api.types.is_float_dtype(series):
        return "double", series
    if pd.api.types.is_string_dtype(series) and series.dtype != object:  # a string dtype holds strings only
        return "string", series
    kinds = {type(v) for v in present}
    if kinds <= {bool}:
        return "boolean", series.astype("boolean")
    if kinds <= {int}:
        return "long", series.astype("Int64")
    if kinds <= {float, int}:
        return "double", series.astype("float64")
    if kinds <= {str}:
        return "string", series.astype(object).where(series.notna(), None)
    raise BulkRefused(
        f"property {name!r} mixes value types ({', '.join(sorted(k.__name__ for k in kinds))}): "
        "the importer needs one type per column; load this book with the MERGE ingest"
    )


# -- the load -------------------------------------------------------------------


def launcher():
    """The launcher module (``tools/neo4j_server.py`` beside this package's
    source, or the file ``$RINGSCOPE_NEO4J_LAUNCHER``)."""
    path = Path(
        os.environ.get("RINGSCOPE_NEO4J_LAUNCHER") or Path(__file__).resolve().parents[1] / "tools" / "neo4j_server.py"
    )
    name = "ringscope_neo4j_launcher"
    if name in sys.modules:
        return sys.modules[name]
    if not path.is_file():
        raise BulkRefused(
            f"--bulk needs the Neo4j launcher ({path} not found): run it from a ringscope source checkout "
            "or set RINGSCOPE_NEO4J_LAUNCHER to tools/neo4j_server.py"
        )
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def bulk_load(store: Any, batch: GraphBatch, progress: Progress | None = None) -> BulkReport:
    """Load ``batch`` into the empty Neo4j behind ``store`` (a
    :class:`ringscope.graph.neo4j_store.Neo4jStore`) with the offline importer.

    The caller holds the store's write lock. Raises :class:`BulkRefused`
    (nothing changed) when the database holds data or its server is not a
    launcher-run server on this machine; :class:`BulkFailed` when the import
    itself fails (the server is started again either way).
    """

    def step(stage: str, i: int) -> None:
        if progress:
            progress(stage, i, 5)

    store.require_empty()
    home = store.server_home()
    tools = launcher()
    if home is None or not tools.server_running(home):
        raise BulkRefused(
            f"--bulk writes the database's files, so it needs a Neo4j started by tools/neo4j_server.py on this "
            f"machine; the server at {store.location} is not one (its home {home or 'is unknown'} has no live "
            "launcher). Load it with the MERGE ingest (without --bulk)."
        )
    if not (Path(home) / tools.ARGS_FILE).is_file():
        raise BulkRefused(
            f"the server at {store.location} was started without {tools.ARGS_FILE}: restart it with "
            "tools/neo4j_server.py so --bulk can start it again after the import"
        )
    started = time.perf_counter()
    step("write import files", 0)
    tables, dropped = import_tables(batch)
    folder = Path(tempfile.mkdtemp(prefix="ringscope-bulk-"))
    try:
        files = write_import_files(tables, folder)
        files_seconds = time.perf_counter() - started
        with store.offline():
            step("stop Neo4j", 1)
            t = time.perf_counter()
            tools.stop_server(home)
            stop_seconds = time.perf_counter() - t
            try:
                step("import", 2)
                run = tools.import_database(home, files.arguments())
            except RuntimeError as err:
                raise BulkFailed(
                    f"{err}\nThe server was started again on an empty database; nothing else was changed."
                ) from err
            finally:
                step("start Neo4j", 3)
                t = time.perf_counter()
                tools.start_again(home)
                start_seconds = time.perf_counter() - t
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    step("constraints", 4)
    t = time.perf_counter()
    store.after_bulk()
    return BulkReport(
        nodes=files.n_nodes,
        relationships=files.n_relationships,
        dropped_relationships=dropped,
        files_seconds=files_seconds,
        stop_seconds=stop_seconds,
        import_seconds=run.seconds,
        start_seconds=start_seconds,
        schema_seconds=time.perf_counter() - t,
        importer_seconds=importer_seconds(run.output),
    )
