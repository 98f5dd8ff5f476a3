"""Connected components of edge lists, shared by the detectors."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse.csgraph import connected_components

__all__ = ["strong_components"]


def strong_components(edges: pd.DataFrame) -> pd.Series:
    """Strongly connected components (size >= 2) of ``src`` → ``dst`` edges.

    Parameters
    ----------
    edges : DataFrame
        ``src``, ``dst`` node names.

    Returns
    -------
    Series node → component id, only for nodes in components of size >= 2.

    Example
    -------
    >>> e = pd.DataFrame({"src": ["a", "b", "b"], "dst": ["b", "a", "c"]})
    >>> sorted(strong_components(e).index)
    ['a', 'b']

    Notes
    -----
    scipy's linear-time SCC: O(n + m).
    """
    if edges.empty:
        return pd.Series(dtype="int64")
    nodes, idx = np.unique(np.concatenate([edges["src"].to_numpy(str), edges["dst"].to_numpy(str)]),
                           return_inverse=True)
    m = len(edges)
    graph = sparse.coo_matrix((np.ones(m), (idx[:m], idx[m:])), shape=(len(nodes), len(nodes)))
    _, labels = connected_components(graph, directed=True, connection="strong")
    keep = np.bincount(labels)[labels] >= 2
    return pd.Series(labels[keep], index=nodes[keep])
