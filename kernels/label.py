"""Union-find kernels for connected-component labelling with periodic boundaries."""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _find(parent, offset, u):
    # Path halving keeps the trees shallow; offsets are re-expressed relative to the new parent.
    while parent[u] != u:
        p = parent[u]
        gp = parent[p]
        if gp != p:
            for a in range(offset.shape[1]):
                offset[u, a] += offset[p, a]
            parent[u] = gp
        u = parent[u]
    return u


@njit(cache=True)
def _offset_to_root(parent, offset, u, out):
    for a in range(offset.shape[1]):
        out[a] = 0
    while parent[u] != u:
        for a in range(offset.shape[1]):
            out[a] += offset[u, a]
        u = parent[u]
    return u


@njit(cache=True)
def merge_with_offsets(n_nodes, eu, ev, shift):
    """Merge nodes joined by edges that may cross periodic boundaries.

    Parameters
    ----------
    n_nodes : int
        Number of nodes (cluster labels 0..n_nodes-1).
    eu, ev : int64 arrays (E,)
        Edge end points: node ``ev`` sits at the position of ``eu`` plus ``shift``.
    shift : int64 array (E, 3)
        Periodic image shift of each edge, in periods along (z, y, x).

    Returns
    -------
    root : int64 array (n_nodes,)
        Representative node of each node's merged cluster.
    winds : bool array (n_nodes, 3)
        For each representative, whether its cluster reaches its own periodic image
        along that axis (it is infinite, i.e. percolates, in the periodic tiling).
    """
    parent = np.arange(n_nodes)
    offset = np.zeros((n_nodes, 3), dtype=np.int64)
    winds = np.zeros((n_nodes, 3), dtype=np.bool_)
    ou = np.zeros(3, dtype=np.int64)
    ov = np.zeros(3, dtype=np.int64)
    for e in range(eu.shape[0]):
        u = eu[e]
        v = ev[e]
        _find(parent, offset, u)
        _find(parent, offset, v)
        ru = _offset_to_root(parent, offset, u, ou)
        rv = _offset_to_root(parent, offset, v, ov)
        if ru == rv:
            for a in range(3):
                if ov[a] - ou[a] != shift[e, a]:
                    winds[ru, a] = True
        else:
            parent[rv] = ru
            for a in range(3):
                offset[rv, a] = ou[a] + shift[e, a] - ov[a]
                winds[ru, a] = winds[ru, a] or winds[rv, a]
    root = np.empty(n_nodes, dtype=np.int64)
    for u in range(n_nodes):
        root[u] = _offset_to_root(parent, offset, u, ou)
    for u in range(n_nodes):
        r = root[u]
        for a in range(3):
            winds[u, a] = winds[r, a]
    return root, winds
