"""Connected components and bounded cycles of edge lists, shared by the detectors."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse.csgraph import connected_components

__all__ = ["component_labels", "strong_components", "bounded_cycles"]


def component_labels(n: int, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Connected-component label of each of ``n`` nodes, given edges between
    integer node ids (direction ignored): the one definition every detector uses.

    Parameters
    ----------
    n : int
        Number of nodes (ids ``0 .. n-1``; nodes in no edge are components of their own).
    src, dst : array of int
        Edge ends, aligned.

    Returns
    -------
    Array of ``n`` component labels (ints from 0).

    Example
    -------
    >>> component_labels(5, np.array([0, 3]), np.array([1, 2])).tolist()
    [0, 0, 1, 1, 2]

    Notes
    -----
    scipy.sparse.csgraph's labelling: O(n + m).
    """
    src = np.asarray(src, dtype=np.int64)
    graph = sparse.coo_matrix((np.ones(len(src), dtype=np.int8), (src, np.asarray(dst, dtype=np.int64))), shape=(n, n))
    return connected_components(graph, directed=False)[1]


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
    nodes, idx = np.unique(
        np.concatenate([edges["src"].to_numpy(str), edges["dst"].to_numpy(str)]), return_inverse=True
    )
    m = len(edges)
    graph = sparse.coo_matrix((np.ones(m), (idx[:m], idx[m:])), shape=(len(nodes), len(nodes)))
    _, labels = connected_components(graph, directed=True, connection="strong")
    keep = np.bincount(labels)[labels] >= 2
    return pd.Series(labels[keep], index=nodes[keep])


def bounded_cycles(src: pd.Series, dst: pd.Series, max_length: int, max_cycles: int) -> list[list[str]]:
    """Up to ``max_cycles`` simple cycles of at most ``max_length`` nodes in
    the graph ``src`` → ``dst``, the same ones on every run: each starts at
    its smallest node, shortest first, then in node order.

    networkx picks its start nodes from sets of strings, whose order changes
    with Python's hash seed; on integer node ids (nodes numbered in sorted
    order, edges added sorted) it searches in one order only.

    Example
    -------
    >>> bounded_cycles(pd.Series(["b", "a", "c", "b"]), pd.Series(["a", "b", "b", "c"]), 6, 20)
    [['a', 'b'], ['b', 'c']]

    Notes
    -----
    networkx's bounded search inside the component; stops after ``max_cycles``.
    """
    names = sorted(set(src.tolist()) | set(dst.tolist()))
    index = {name: i for i, name in enumerate(names)}
    graph = nx.DiGraph()
    graph.add_nodes_from(range(len(names)))
    graph.add_edges_from(sorted({(index[a], index[b]) for a, b in zip(src.tolist(), dst.tolist())}))
    cycles = []
    for cycle in nx.simple_cycles(graph, length_bound=max_length):
        start = cycle.index(min(cycle))
        cycles.append(cycle[start:] + cycle[:start])
        if len(cycles) >= max_cycles:
            break
    cycles.sort(key=lambda c: (len(c), c))
    return [[names[i] for i in c] for c in cycles]
