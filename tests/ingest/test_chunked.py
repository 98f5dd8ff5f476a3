"""An ingest read in chunks and staged on disk ends in the same store as a whole-folder ingest."""

from __future__ import annotations

import codecs

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ringscope.graph.embedded import EmbeddedStore
from ringscope.graph.model import REL_TYPES
from ringscope.ingest.pipeline import ingest_folder
from ringscope.ingest.synthetic import GeneratorConfig, generate_portfolio
from tests.sample_data import write_sample


def _book(folder, file_format: str, seed: int = 7):
    generate_portfolio(GeneratorConfig(applications=40, seed=seed, file_format=file_format), folder)
    return folder


def _read(folder, table: str) -> pd.DataFrame:
    csv = folder / f"{table}.csv"
    if csv.exists():
        return pd.read_csv(csv, dtype=str, keep_default_na=False)
    return pq.read_table(folder / f"{table}.parquet").to_pandas()


def _write(folder, table: str, frame: pd.DataFrame) -> None:
    csv = folder / f"{table}.csv"
    if csv.exists():
        frame.to_csv(csv, index=False)
    else:
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), folder / f"{table}.parquet")


def _mess(folder):
    """Repeat application rows far apart (the same content: collapsed; other
    content: rejected; a third copy equal to the second: collapsed), and put
    contacts and guarantees of the first applications at the end."""
    apps = _read(folder, "applications")
    changed = apps.iloc[[10]].assign(amount="12345")
    again = apps.iloc[[3, 20]]
    _write(folder, "applications", pd.concat([apps, again, changed, changed, apps.iloc[[10]]], ignore_index=True))
    contacts = _read(folder, "contacts")
    _write(folder, "contacts", pd.concat([contacts, contacts.iloc[:5], contacts.iloc[:2]], ignore_index=True))
    guarantees = _read(folder, "guarantees")
    _write(folder, "guarantees", pd.concat([guarantees, guarantees.iloc[:3]], ignore_index=True))
    roles = _read(folder, "company_roles")
    _write(folder, "company_roles", pd.concat([roles, roles.iloc[:4]], ignore_index=True))
    return folder


def _tables(store: EmbeddedStore, ordered: bool) -> dict[str, pd.DataFrame]:
    """Every table of the store, by file; rows in identity order unless ``ordered``."""
    out = {}
    for file in sorted((store.path / "nodes").glob("*.parquet")) + sorted((store.path / "rels").glob("*.parquet")):
        table = pq.read_table(file)
        name = file.stem
        identity = ["key"] if file.parent.name == "nodes" else ["src", "dst", *REL_TYPES[name].identity]
        frame = table.to_pandas()
        if not ordered:
            frame = frame.sort_values(identity, kind="stable").reset_index(drop=True)
        out[f"{file.parent.name}/{name}"] = (table.schema.remove_metadata(), frame)
    return out


def _same_store(a: EmbeddedStore, b: EmbeddedStore, ordered: bool) -> None:
    ta, tb = _tables(a, ordered), _tables(b, ordered)
    assert sorted(ta) == sorted(tb)
    for name in ta:
        assert ta[name][0].equals(tb[name][0]), name
        pd.testing.assert_frame_equal(ta[name][1], tb[name][1], obj=name)
    assert a.counts() == b.counts()


def _ingest(folder, store_path, rejects, **kw):
    return ingest_folder(folder, EmbeddedStore(store_path), rejects_path=rejects, **kw)


def _same_summary(a, b) -> None:
    assert [(t.table, t.rows_read, t.rows_loaded, t.rows_rejected, t.error) for t in a.tables] == [
        (t.table, t.rows_read, t.rows_loaded, t.rows_rejected, t.error) for t in b.tables
    ]
    assert a.reject_reasons == b.reject_reasons
    assert a.application_ids == b.application_ids
    assert a.exit_code == b.exit_code


@pytest.mark.parametrize(("file_format", "partition_rows"), [("csv", 40), ("parquet", None), ("parquet", 25)])
def test_chunks_of_seven_rows_give_the_whole_ingest(tmp_path, file_format, partition_rows):
    folder = _mess(_book(tmp_path / "book", file_format))
    whole = _ingest(folder, tmp_path / "whole", tmp_path / "whole.csv", chunk_rows=None)
    chunked = _ingest(
        folder, tmp_path / "chunked", tmp_path / "chunked.csv", chunk_rows=7, partition_rows=partition_rows
    )
    _same_summary(whole, chunked)
    reasons = whole.reject_reasons
    assert reasons.get("duplicate application_id with different content (first occurrence kept)", 0) >= 1
    assert (tmp_path / "whole.csv").read_bytes() == (tmp_path / "chunked.csv").read_bytes()
    # partitions regroup rows; without partitions the files hold the rows in the same order
    _same_store(EmbeddedStore(tmp_path / "whole"), EmbeddedStore(tmp_path / "chunked"), ordered=partition_rows is None)
    assert not list((tmp_path / "chunked").glob("staging*"))  # the staged chunks are gone


def test_a_later_feed_in_chunks_never_overwrites_a_stored_row(tmp_path):
    first = _book(tmp_path / "first", "parquet")
    later = _mess(_book(tmp_path / "later", "parquet"))
    # the later feed repeats the first one's applications, some with other content
    apps = _read(later, "applications")
    old = _read(first, "applications")
    changed = old.iloc[5:20].assign(amount="777")
    _write(later, "applications", pd.concat([apps.iloc[:30], changed, old.iloc[20:], apps.iloc[30:]]))
    contacts = _read(first, "contacts")
    _write(later, "contacts", pd.concat([_read(later, "contacts"), contacts.assign(contact_name="换人")]))
    for name in ("whole", "chunked"):
        _ingest(first, tmp_path / name, tmp_path / f"first-{name}.csv", chunk_rows=None)
    whole = _ingest(later, tmp_path / "whole", tmp_path / "whole.csv", chunk_rows=None)
    chunked = _ingest(later, tmp_path / "chunked", tmp_path / "chunked.csv", chunk_rows=7, partition_rows=60)
    _same_summary(whole, chunked)
    assert any("already stored with different content" in r for r in whole.reject_reasons)
    assert (tmp_path / "whole.csv").read_bytes() == (tmp_path / "chunked.csv").read_bytes()
    _same_store(EmbeddedStore(tmp_path / "whole"), EmbeddedStore(tmp_path / "chunked"), ordered=False)


def test_the_same_feed_again_in_chunks_commits_nothing(tmp_path):
    folder = _mess(_book(tmp_path / "book", "parquet"))
    store = EmbeddedStore(tmp_path / "s")
    ingest_folder(folder, store, rejects_path=tmp_path / "r.csv", chunk_rows=7, partition_rows=50)
    before = store.revision()
    ingest_folder(folder, store, rejects_path=tmp_path / "r.csv", chunk_rows=7, partition_rows=50)
    assert store.revision() == before


def test_sample_with_rejects_in_chunks(tmp_path):
    folder = write_sample(tmp_path / "sample")
    whole = _ingest(folder, tmp_path / "whole", tmp_path / "whole.csv", chunk_rows=None)
    chunked = _ingest(folder, tmp_path / "chunked", tmp_path / "chunked.csv", chunk_rows=2, partition_rows=3)
    _same_summary(whole, chunked)
    assert (tmp_path / "whole.csv").read_bytes() == (tmp_path / "chunked.csv").read_bytes()
    _same_store(EmbeddedStore(tmp_path / "whole"), EmbeddedStore(tmp_path / "chunked"), ordered=False)


def test_memory_is_bounded_by_the_chunk_and_the_partition(tmp_path, monkeypatch):
    """No step sees more rows than a chunk (reading, checking) or about a
    partition (merging), however long the book: the largest table here has
    several partitions' worth of rows."""
    import ringscope.graph.embedded as embedded
    import ringscope.ingest.pipeline as pipeline

    folder = _book(tmp_path / "book", "parquet")
    checked, merged = [], []
    real_part, real_merge = pipeline.contacts_part, embedded.merge_tables

    def contacts_part(frame, *args, **kw):
        checked.append(len(frame))
        return real_part(frame, *args, **kw)

    def merge_tables(old, new, *args, **kw):
        merged.append((0 if old is None else old.num_rows) + new.num_rows)
        return real_merge(old, new, *args, **kw)

    monkeypatch.setattr(pipeline, "contacts_part", contacts_part)
    monkeypatch.setattr(embedded, "merge_tables", merge_tables)
    ingest_folder(
        folder, EmbeddedStore(tmp_path / "s"), rejects_path=tmp_path / "r.csv", chunk_rows=20, partition_rows=15
    )
    contacts = len(_read(folder, "contacts"))
    assert contacts > 40 and max(checked) == 20 and sum(checked) == contacts
    assert max(merged) <= 2 * 15 < contacts


def test_a_killed_staged_write_leaves_nothing_behind(tmp_path):
    store = EmbeddedStore(tmp_path / "s")
    staged = store.staged(partition_rows=10)
    staged.add_frame("node", "Phone", pd.DataFrame({"key": ["+8613800138000"]}))
    assert staged.root.is_dir()
    # a writer killed here never commits: the next writer clears its staging folder
    with EmbeddedStore(tmp_path / "s").lock():
        pass
    assert not staged.root.exists()
    assert store.counts().nodes["Phone"] == 0


def _csv_faults(folder, encoding: str, end: str, bom: bool) -> dict[str, int]:
    """Re-write the book's CSVs in ``encoding`` with ``end`` line ends (and a
    BOM), and put faults at the boundaries of 7-line chunks of
    applications.csv: a quoted line break from the last line of the first
    chunk into the second, bad amounts in the second chunk, a line whose
    quote never closes at the end of the second, a name outside GBK (for
    GB18030) and a UTF-8 line (in a GBK/GB18030 file) in the third. Returns
    the file's own line of each fault."""
    for table in ("contacts", "guarantees", "company_roles", "applications"):
        path = folder / f"{table}.csv"
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        rows = [",".join(f'"{v}"' for v in frame.columns)]
        rows += [",".join(f'"{v}"' if v else "" for v in row) for row in frame.itertuples(index=False, name=None)]
        if table != "applications":
            path.write_bytes((codecs.BOM_UTF8 if bom else b"") + (end.join(rows) + end).encode(encoding))
            continue
        cells = [row.split(",") for row in rows]
        amount, address, name = (
            list(frame.columns).index(c) for c in ("amount", "applicant_address", "applicant_name")
        )
        cells[7][address] = '"上海市浦东新区' + end + '张江路1号"'  # lines 8-9: from chunk 1 into chunk 2
        cells[10][amount] = '"abc"'  # line 12
        cells[12][amount] = '"-5"'  # line 14
        if encoding == "gb18030":
            cells[16][name] = '"𠀀明"'  # line 18, outside GBK
        lines = [",".join(c) for c in cells]
        lines.insert(14, '"AP99999999","2024-11-01 00:00:00","1000","不闭合的引号')  # line 16, ends chunk 2
        raw = [line.encode(encoding) for line in lines]
        if encoding != "utf-8":
            raw[18] = lines[18].encode("utf-8")  # line 20: UTF-8 text in a GBK/GB18030 file
        path.write_bytes((codecs.BOM_UTF8 if bom else b"") + end.encode().join(raw) + end.encode())
    straddling = frame["application_id"].iloc[6]
    return {"bad_amount": 12, "bad_amount_2": 14, "open_quote": 16, "utf8_line": 20, "straddling": straddling}


@pytest.mark.parametrize(
    ("encoding", "end", "bom"),
    [("gbk", "\r\n", False), ("gb18030", "\n", False), ("utf-8", "\r\n", True), ("utf-8", "\n", False)],
)
def test_csv_in_chunks_gives_the_whole_ingest(tmp_path, encoding, end, bom):
    """A CSV is read 7 lines at a time (never whole): the same store, the
    same rejects file, byte for byte, and the file's own line numbers."""
    folder = _book(tmp_path / "book", "csv")
    lines = _csv_faults(_mess(folder), encoding, end, bom)
    whole = _ingest(folder, tmp_path / "whole", tmp_path / "whole.csv", chunk_rows=None)
    chunked = _ingest(folder, tmp_path / "chunked", tmp_path / "chunked.csv", chunk_rows=7, partition_rows=40)
    _same_summary(whole, chunked)
    assert (tmp_path / "whole.csv").read_bytes() == (tmp_path / "chunked.csv").read_bytes()
    _same_store(EmbeddedStore(tmp_path / "whole"), EmbeddedStore(tmp_path / "chunked"), ordered=False)
    rejects = pd.read_csv(tmp_path / "chunked.csv", dtype=str, keep_default_na=False)
    apps = rejects[rejects["source_file"] == "applications.csv"].set_index("line")["reason"]
    assert "amount" in apps[str(lines["bad_amount"])] and "amount" in apps[str(lines["bad_amount_2"])]
    assert "quote opened in this line is not closed" in apps[str(lines["open_quote"])]
    if encoding != "utf-8":
        assert "UTF-8 text" in apps[str(lines["utf8_line"])]
    assert chunked.tables[0].encoding == ("utf-8-sig" if bom else "utf-8" if encoding == "utf-8" else "gb18030")
    assert lines["straddling"] in chunked.application_ids  # its record spans the boundary of two chunks


def test_a_csv_unreadable_half_way_falls_back_to_the_whole_read(tmp_path, monkeypatch):
    """A CSV found unreadable only in a later part (e.g. a value longer than
    Arrow's block) leaves nothing behind: the ingest starts again reading
    whole files, and the whole read decides (here it reads the file)."""
    import ringscope.ingest.reader as reader

    folder = _mess(_book(tmp_path / "book", "csv"))
    whole = _ingest(folder, tmp_path / "whole", tmp_path / "whole.csv", chunk_rows=None)
    real = reader._csv_part
    calls = []

    def failing(window, owned, encoding, names, source, first_line):
        calls.append(first_line)
        if source == "contacts.csv" and first_line > 2:
            raise reader.UnreadableFile(f"{source}: not a readable CSV file (test)")
        return real(window, owned, encoding, names, source, first_line)

    monkeypatch.setattr(reader, "_csv_part", failing)
    chunked = _ingest(folder, tmp_path / "chunked", tmp_path / "chunked.csv", chunk_rows=7)
    assert calls and max(calls) > 2
    _same_summary(whole, chunked)
    assert (tmp_path / "whole.csv").read_bytes() == (tmp_path / "chunked.csv").read_bytes()
    _same_store(EmbeddedStore(tmp_path / "whole"), EmbeddedStore(tmp_path / "chunked"), ordered=True)
    assert not list((tmp_path / "chunked").glob("staging*"))
