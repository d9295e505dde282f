"""Union-find kernels: connected-component labelling of 3D masks, and merging across periodic boundaries."""
from __future__ import annotations

import numpy as np
from numba import njit, prange


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


# ---------------------------------------------------------------------------
# Connected-component labelling of a 3D mask, run by run.
#
# Each row (z, y) of the mask is cut into runs of foreground voxels along x; a
# union-find forest over the runs joins runs of neighbouring rows that touch.
# A union always links the larger root under the smaller, so each root is the
# first run of its cluster in raster order and the final numbering equals
# scipy.ndimage.label's. Runs rather than voxels keep the forest small and the
# inner loops free of per-voxel branches.


@njit(cache=True)
def _row_runs(mask, start, nx, x0, x1):
    # Write the runs of one row (mask[start:start+nx]) to x0/x1 (length nx + 1); return the count.
    # Both candidates are written at every voxel and only the counters decide what is kept,
    # which avoids a mispredicted branch at every run boundary of a noisy mask.
    n0 = 0
    n1 = 0
    prev = False
    for x in range(nx):
        cur = mask[start + x]
        x0[n0] = x
        x1[n1] = x - 1
        n0 += cur and not prev
        n1 += prev and not cur
        prev = cur
    if prev:
        x1[n1] = nx - 1
    return n0


@njit(cache=True)
def _count_runs(mask, start, nx):
    n = 0
    prev = False
    for x in range(nx):
        cur = mask[start + x]
        if cur and not prev:
            n += 1
        prev = cur
    return n


@njit(cache=True)
def _root(parent, u):
    while parent[u] != u:
        p = parent[u]
        parent[u] = parent[p]  # path halving
        u = p
    return u


@njit(cache=True)
def _join_rows(parent, x0, x1, a_lo, a_hi, b_lo, b_hi, expand):
    # Union every run of row A (indices a_lo..a_hi-1) with the runs of row B that it
    # touches, B's runs widened by `expand` voxels on each side (diagonal neighbours).
    # A union links the larger root under the smaller one.
    j = b_lo
    for i in range(a_lo, a_hi):
        while j < b_hi and x1[j] + expand < x0[i]:
            j += 1
        k = j
        ri = -1
        while k < b_hi and x0[k] - expand <= x1[i]:
            if ri < 0:
                ri = _root(parent, i)
            rk = _root(parent, k)
            if rk < ri:
                parent[ri] = rk
                ri = rk
            elif ri < rk:
                parent[rk] = ri
            k += 1


@njit(parallel=True, cache=True)
def label_components(mask, shape, neighbour_rows, out, n_slabs):
    """Label the connected components of a 3D mask, numbered in raster order from 1.

    Parameters
    ----------
    mask : bool array (nz * ny * nx,)
        The flattened (C order) mask.
    shape : int64 array (3,)
        (nz, ny, nx).
    neighbour_rows : int64 array (K, 3)
        Rows (dz, dy) before the current row whose runs can touch it, and how many
        voxels a run there is widened by along x (0 = face contact only, 1 = edge
        or corner contact): [[0, -1, 0], [-1, 0, 0]] for 6-connectivity.
        Runs within a row are always face-connected.
    out : int32 or int64 array (nz * ny * nx,)
        Receives the labels, 0 on background.
    n_slabs : int
        Number of z slabs labelled in parallel before their seams are merged.

    Returns
    -------
    n : int
        Number of components; ``out`` numbers them as ``scipy.ndimage.label`` does
        with the matching structuring element.
    """
    nz, ny, nx = shape[0], shape[1], shape[2]
    n_rows = nz * ny
    n_slabs = max(1, min(n_slabs, nz))
    bounds = np.empty(n_slabs + 1, dtype=np.int64)
    for s in range(n_slabs + 1):
        bounds[s] = (s * nz) // n_slabs
    # runs: count per row, offsets by prefix sum, then positions
    row_start = np.zeros(n_rows + 1, dtype=np.int64)
    for z in prange(nz):
        for y in range(ny):
            row_start[z * ny + y + 1] = _count_runs(mask, (z * ny + y) * nx, nx)
    for r in range(n_rows):
        row_start[r + 1] += row_start[r]
    n_runs = row_start[n_rows]
    x0 = np.empty(n_runs, dtype=np.int32)
    x1 = np.empty(n_runs, dtype=np.int32)
    parent = np.empty(n_runs, dtype=np.int64)
    for z in prange(nz):
        b0 = np.empty(nx + 1, dtype=np.int32)
        b1 = np.empty(nx + 1, dtype=np.int32)
        for y in range(ny):
            r = z * ny + y
            first = row_start[r]
            for k in range(_row_runs(mask, r * nx, nx, b0, b1)):
                x0[first + k] = b0[k]
                x1[first + k] = b1[k]
                parent[first + k] = first + k
    # union within each slab in parallel (its unions never leave the slab), then the seams
    for s in prange(n_slabs):
        for z in range(bounds[s], bounds[s + 1]):
            for y in range(ny):
                r = z * ny + y
                for k in range(neighbour_rows.shape[0]):
                    zz = z + neighbour_rows[k, 0]
                    yy = y + neighbour_rows[k, 1]
                    if zz < bounds[s] or yy < 0 or yy >= ny:
                        continue
                    q = zz * ny + yy
                    _join_rows(parent, x0, x1, row_start[r], row_start[r + 1], row_start[q], row_start[q + 1],
                               neighbour_rows[k, 2])
    for s in range(1, n_slabs):
        z = bounds[s]
        for y in range(ny):
            r = z * ny + y
            for k in range(neighbour_rows.shape[0]):
                if neighbour_rows[k, 0] != -1:
                    continue
                yy = y + neighbour_rows[k, 1]
                if yy < 0 or yy >= ny:
                    continue
                q = (z - 1) * ny + yy
                _join_rows(parent, x0, x1, row_start[r], row_start[r + 1], row_start[q], row_start[q + 1],
                           neighbour_rows[k, 2])
    # number the roots in run order; parent becomes the final label of every run
    n = 0
    for u in range(n_runs):
        p = parent[u]
        if p == u:
            n += 1
            parent[u] = -n  # negated so that later runs can tell a number from a pointer
        else:
            parent[u] = parent[p]  # p < u is already numbered (negated)
    for z in prange(nz):
        for y in range(ny):
            r = z * ny + y
            base = r * nx
            x = 0
            for u in range(row_start[r], row_start[r + 1]):
                for xx in range(x, x0[u]):
                    out[base + xx] = 0
                lab = -parent[u]
                for xx in range(x0[u], x1[u] + 1):
                    out[base + xx] = lab
                x = x1[u] + 1
            for xx in range(x, nx):
                out[base + xx] = 0
    return n
