"""What the dashboard pages ask of a store: plain functions, no Streamlit.

Pages (and the CLI, and the bench) call these; Streamlit caching lives in
:mod:`ringscope.app.dashboard.context`. Everything goes through the
:class:`ringscope.graph.store.GraphStore` protocol, so both stores work.
The functions live in one module per page's need and are gathered here:

- :mod:`~ringscope.app.dashboard.graph_index`: node ids, the data version, the graph index;
- :mod:`~ringscope.app.dashboard.queue_data`: the alert queue;
- :mod:`~ringscope.app.dashboard.cluster_view`: the cluster explorer's subgraphs;
- :mod:`~ringscope.app.dashboard.details`: node and application details, models;
- :mod:`~ringscope.app.dashboard.search`: search.
"""

from __future__ import annotations

from ringscope.app.dashboard.cluster_view import (
    Subgraph,
    capped_subgraph,
    cluster_subgraph,
    expand_subgraph,
    shortest_path,
)
from ringscope.app.dashboard.details import (
    ApplicationDetail,
    application_detail,
    models_summary,
    node_details,
    view_properties,
)
from ringscope.app.dashboard.graph_index import (
    HUB_DEGREE,
    MAX_ELEMENTS,
    VIEW_PROPERTIES,
    GraphIndex,
    build_index,
    data_version,
    node_id,
    split_node_id,
)
from ringscope.app.dashboard.queue_data import (
    filter_queue,
    finding_members,
    findings_table,
    flagged_applications,
    volume_by_week,
)
from ringscope.app.dashboard.search import HIT_COLUMNS, SearchHits, SearchIndex, build_search_index, search

__all__ = [
    "data_version",
    "GraphIndex",
    "build_index",
    "findings_table",
    "finding_members",
    "filter_queue",
    "flagged_applications",
    "volume_by_week",
    "Subgraph",
    "cluster_subgraph",
    "capped_subgraph",
    "expand_subgraph",
    "shortest_path",
    "node_details",
    "view_properties",
    "ApplicationDetail",
    "application_detail",
    "models_summary",
    "search",
    "SearchIndex",
    "SearchHits",
    "HIT_COLUMNS",
    "build_search_index",
    "node_id",
    "split_node_id",
    "MAX_ELEMENTS",
    "HUB_DEGREE",
    "VIEW_PROPERTIES",
]
