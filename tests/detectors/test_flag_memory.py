"""What keeps ``flag``'s index small: links as integer codes, no whole-book copies kept.

The memory itself is measured by ``bench/bench_flag.py`` (peak RSS), never
here; these tests hold the shapes that make it small, and that the compact
form still answers what the tables did.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ringscope.detectors.identity import IdentityResolution
from ringscope.detectors.portfolio import Portfolio
from ringscope.detectors.rings import entity_links
from ringscope.detectors.risk.flagging import FlagIndex
from ringscope.graph.embedded import EmbeddedStore
from ringscope.ingest.pipeline import ingest_folder
from ringscope.ingest.synthetic import GeneratorConfig, generate_portfolio


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("memory")
    generate_portfolio(GeneratorConfig(applications=800, seed=5), root / "data")
    store = EmbeddedStore(root / "store")
    ingest_folder(root / "data", store, rejects_path=root / "rejects.csv")
    return store


def test_index_holds_links_as_codes_not_tables(store):
    index = FlagIndex.build(store)
    links = entity_links(index.portfolio)
    assert len(links) > 1000
    # no table of one row per link (the old application → links frame of strings)
    tables = {name: len(v) for name, v in vars(index).items() if isinstance(v, pd.DataFrame)}
    assert all(rows < len(links) for rows in tables.values()), tables
    for name in ("_app_link_ident", "_app_link_entity", "_app_link_kind"):
        codes = getattr(index, name)
        assert codes.dtype.kind == "i" and codes.itemsize <= 4 and len(codes) == len(links)
    # the long links table is not cached on the portfolio beside the rings' copy of it
    assert "links" not in vars(index.portfolio)


def test_link_codes_decode_to_the_portfolio_links(store):
    """Each application's links, decoded from the codes, are its rows of the
    links table (kind, identifier, entity), in the table's order."""
    index = FlagIndex.build(store)
    links = entity_links(index.portfolio)
    for pos in np.random.default_rng(0).choice(len(index.app_pos), 60, replace=False):
        app_id = index.app_pos[pos]
        rows = range(index._app_offsets[pos], index._app_offsets[pos + 1])
        decoded = [
            (
                index._kinds[index._app_link_kind[r]],
                index._identifier(int(index._app_link_ident[r])),
                index._entities[index._app_link_entity[r]],
            )
            for r in rows
        ]
        mine = links[links["application_id"] == app_id]
        expected = list(zip(mine["kind"], mine["identifier"].astype(str), mine["entity"]))
        assert decoded == expected, app_id


def test_identity_statistics_keep_no_record_arrays_and_still_explain(store):
    stats = IdentityResolution().statistics(Portfolio(store))
    res = stats.resolution
    assert res._arrays == {}  # the records once, not twice
    pair = res.pairs.iloc[0] if len(res.pairs) else None
    left, right = (pair["left"], pair["right"]) if pair is not None else tuple(res.records["record_id"][:2])
    explained = res.explain(left, right)
    assert set(explained["fields"]) == set(res.fields)
    if pair is not None:  # the explanation adds up to the pair's weight, as when the arrays were kept
        assert explained["score"] == pytest.approx(pair["score"], abs=1e-9)


def test_identity_statistics_keep_the_frequencies_their_pairs_are_explained_with(tmp_path, monkeypatch):
    from ringscope.detectors.resolution.linkage import Resolution

    generate_portfolio(GeneratorConfig(applications=3000, seed=11), tmp_path / "data")
    store = EmbeddedStore(tmp_path / "store")
    ingest_folder(tmp_path / "data", store, rejects_path=tmp_path / "rejects.csv")
    lean = IdentityResolution().statistics(Portfolio(store)).resolution
    monkeypatch.setattr(Resolution, "frequencies_of", lambda self, ids: self._tf)
    whole = IdentityResolution().statistics(Portfolio(store)).resolution
    assert len(lean.pairs) >= 5 and set(lean._tf) == set(whole._tf) == {"name", "phone", "address"}
    for f in whole._tf:  # a small part of every table kept, each value's frequency as it was
        assert 0 < len(lean._tf[f]) < len(whole._tf[f]) / 4
        pd.testing.assert_series_equal(lean._tf[f], whole._tf[f].loc[lean._tf[f].index])
    assert "region_dob" not in lean.records  # it served the blocking only
    for left, right in zip(lean.pairs["left"], lean.pairs["right"]):
        assert lean.explain(left, right) == whole.explain(left, right)


def _derived_from_objects(index: FlagIndex) -> dict:
    """The index arrays as the object-array code computed them (a numpy-backed
    copy of the links, text keys joined and sorted by numpy): what the
    Arrow computation must give, array for array."""
    links = entity_links(index.portfolio).copy()
    for col in links.columns:
        links[col] = links[col].astype(object)
    out = {}
    ident = (links["kind"] + "\x1f" + links["identifier"].astype(str)).to_numpy()
    order = np.argsort(ident, kind="stable")
    out["_ident_index"], starts, inverse = np.unique(ident[order], return_index=True, return_inverse=True)
    out["_ident_offsets"] = np.append(starts, len(order))
    link_ident = np.empty(len(order), dtype=np.int32)
    link_ident[order] = inverse
    app_of = index.app_pos.get_indexer(links["application_id"].to_numpy())
    out["_link_app"] = app_of[order]
    entity_codes, out["_entities"] = pd.factorize(links["entity"])
    out["_link_entity"] = entity_codes[order]
    kind_codes, kinds = pd.factorize(links["kind"])
    out["_kinds"] = np.asarray(kinds, dtype=object)
    app_order = np.argsort(app_of, kind="stable")
    out["_app_link_ident"] = link_ident[app_order]
    out["_app_link_entity"] = entity_codes[app_order].astype(np.int32)
    out["_app_link_kind"] = kind_codes[app_order].astype(np.int8)
    out["_app_offsets"] = np.searchsorted(app_of[app_order], np.arange(len(index.app_pos) + 1))
    first = links.drop_duplicates("application_id")
    out["app_entity"] = first.set_index("application_id")["entity"].reindex(index.app_pos).to_numpy()
    return out


def test_index_arrays_equal_those_computed_from_objects(store):
    """The identifier index, built from Arrow text without a Python string per
    link, is the object-array computation's, value for value and dtype for dtype."""
    index = FlagIndex.build(store)
    expected = _derived_from_objects(index)
    for name, want in expected.items():
        got = np.asarray(getattr(index, name))
        if name == "_ident_index":
            got = np.asarray(index._ident_index.to_pylist() if hasattr(index._ident_index, "to_pylist") else got)
        assert got.dtype == want.dtype or name == "_ident_index", (name, got.dtype, want.dtype)
        assert len(got) == len(want), name
        same = pd.isna(pd.Series(got)).to_numpy() & pd.isna(pd.Series(want)).to_numpy()
        assert ((got == want) | same).all(), name


def test_row_maps_over_application_ids_share_one_index(store):
    """Every row map keyed by application id (links, contacts, ...) shares the
    applications' index of ids, and answers what a scan answers."""
    from ringscope.detectors.portfolio import in_set

    portfolio = Portfolio(store)
    ids = portfolio.applications["application_id"].astype(str).tolist()[:50:7]
    for kind in ("phone", "device", "contact_phone"):
        table = portfolio.link_table(kind)
        assert portfolio.rows_where(f"links:{kind}", "application_id", ids).tolist() == (
            np.flatnonzero(in_set(table["application_id"], set(ids))).tolist()
        )
    keys = portfolio.application_keys()
    maps = [m for (_, column), m in portfolio.row_maps.items() if column == "application_id"]
    assert len(maps) == 4 and all(m.index is keys for m in maps)
    assert all(m._order.dtype == np.int32 for m in maps)
    index = FlagIndex(portfolio, [])
    assert index.app_pos.name == "application_id" and index.app_pos._engine is keys._engine


def test_building_the_index_makes_no_python_string_per_link(store):
    """The identifier index is built from Arrow text: Python's own allocations
    while deriving the arrays are those of the hub table (which the rings
    compute anyway), not a copy of every link as strings. The object-array
    build peaked at ~525 bytes a link (tracemalloc, 30k applications) where
    the hub table takes ~90."""
    import tracemalloc

    portfolio = Portfolio(store)
    links = entity_links(portfolio)
    index = FlagIndex(portfolio, [])
    hubs = index.settings.detector("shared_identifier_rings")
    tracemalloc.start()
    try:
        hubs.hubs(portfolio)
        _, hub_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        index._derive(portfolio)
        _, derive_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert derive_peak - hub_peak < 60 * len(links), (derive_peak / len(links), hub_peak / len(links))


def test_one_batch_detection_holds_no_detector_tables_and_finds_the_same(store):
    """``flag`` detects around one batch: with ``keep_derived`` off each
    detector's tables (rings' links, contact book, busiest identifiers, ...),
    the row maps its scope built and its statistics' look-ups go once it ran, and ``drop_caches`` leaves none of the index's either;
    the findings are those of a run that keeps them all."""
    from collections import Counter

    from ringscope.detectors.risk.flag_state import drop_caches

    kept = FlagIndex.build(store)
    batch = list(kept.app_pos[-40:])
    full = kept.detect(batch)
    assert kept.portfolio.derived  # the old behaviour: every detector's tables stay
    lean = FlagIndex.build(store)
    lean.portfolio.keep_derived = False
    maps = set(lean.portfolio.row_maps)
    found = lean.detect(batch)
    assert not lean.portfolio.derived
    # nor the row maps with an index of their own a detector built for its scope (those over the
    # application ids or person keys share one index and stay), nor identity's look-ups over every record
    uses = Counter(id(held.index) for held in kept.portfolio.row_maps.values())
    own = {key for key, held in kept.portfolio.row_maps.items() if key not in maps and uses[id(held.index)] == 1}
    assert own & {("applications", "device"), ("applications", "ip")}, own
    assert not own & set(lean.portfolio.row_maps)
    assert kept._statistics["identity"].lookups
    assert not lean._statistics["identity"].lookups
    assert [(f.finding_id, f.members, f.score) for f in found.findings] == [
        (f.finding_id, f.members, f.score) for f in full.findings
    ]
    assert found.findings  # the batch holds findings: the comparison says something
    lean.link_arrays()
    drop_caches(lean)
    assert not lean.portfolio.row_maps and lean._link_arrays is None
    assert lean._statistics["identity"].resolution is not None  # the statistics stay (saved with the state)
    assert all(not getattr(s, "lookups", None) for s in lean._statistics.values())


def test_saving_the_identifier_index_makes_no_python_string_per_key():
    """The index's Arrow text is saved as the object column it stands for
    (read back equal) without making that column: the old save made a
    Python string per key, and Arrow's copy of them, at the state save's peak."""
    import io
    import tracemalloc

    import pyarrow as pa

    from ringscope.detectors.risk.flag_state import _array, _array_writer

    keys = pa.array([f"phone\x1f+86138{i:08d}" for i in range(200_000)], type=pa.large_string())
    how, write = _array_writer(keys)
    sink = io.BytesIO()
    tracemalloc.start()
    try:
        write(sink)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 40 * len(keys), peak  # a Python string per key alone is ~70 bytes
    back = _array(how, sink.getvalue())
    assert back.dtype == object and back.tolist() == keys.to_pylist()


def test_graph_features_in_chunks_equal_one_piece(store, monkeypatch):
    import ringscope.detectors.risk.flagging as flagging

    index = FlagIndex.build(store)
    targets = np.arange(len(index.app_pos))
    sharers = index._sharer_rows_per_target(targets)
    # every target's sharer rows counted: its own link rows at least, and a shared identifier's more
    assert (sharers >= np.diff(index._app_offsets)[targets]).all() and sharers.max() > sharers.min()
    whole = index.graph_features(targets)
    calls = []
    one_piece = FlagIndex._graph_features

    def counted(self, chunk):
        calls.append(len(chunk))
        return one_piece(self, chunk)

    monkeypatch.setattr(flagging, "SHARER_ROWS_PER_CHUNK", int(sharers.sum() // 7))
    monkeypatch.setattr(FlagIndex, "_graph_features", counted)
    chunked = index.graph_features(targets)
    assert len(calls) >= 7 and sum(calls) == len(targets)
    pd.testing.assert_frame_equal(chunked, whole)
    assert whole["earlier_sharers_phone"].sum() > 0


def test_chunk_bounds_keep_each_chunk_within_the_budget():
    from ringscope.detectors.risk.flagging import chunk_bounds

    rng = np.random.default_rng(3)
    costs = rng.integers(0, 50, size=500)
    costs[[7, 300]] = 400  # larger than the budget: alone
    bounds = chunk_bounds(costs, 100)
    assert bounds[0] == 0 and bounds[-1] == len(costs) and (np.diff(bounds) > 0).all()
    sums = np.add.reduceat(costs, bounds[:-1])
    assert ((sums <= 100) | (np.diff(bounds) == 1)).all()
    # greedy: no chunk could have taken the next item
    assert all(s + costs[b] > 100 for s, b in zip(sums[:-1], bounds[1:-1]))
