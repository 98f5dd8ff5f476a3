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
