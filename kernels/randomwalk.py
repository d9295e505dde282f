"""Random-walk kernels on the voxel grid of the finite-volume solver.

Scheme
------
A walker lives on the conducting voxels and jumps to a face neighbour at the
rate ``k = G / V``: ``G`` is the finite-volume face conductance (series
combination of the two half voxels, area / spacing folded in) and ``V`` the
voxel volume, so the generator of the walk is the finite-volume operator
divided by a uniform capacity. The walk is *uniformised*: time advances by the
fixed step ``dt = 1 / R`` with ``R = 2 * sum_a kmax_a`` (``kmax_a`` the largest
face rate along axis ``a``); in each step an axis is drawn with probability
``kmax_a / sum_b kmax_b``, a side with probability 1/2, and the jump is taken
with probability ``k / kmax_a`` (otherwise the walker stays). This is exact:
the probability to cross a face in one step is ``k dt``, and a continuous-time
walk is this chain observed at Poisson-distributed step counts, so both have the
same stationary state and the same long-time diffusivity.

Random numbers
--------------
Every step draws one 64-bit number ``splitmix64(key_w + step * GAMMA)`` where
``key_w`` is a hash of (seed, walker). The number depends only on (seed,
walker, step), never on which thread runs the walker, so results are identical
for any number of threads. Bits 33..63 choose the axis, bit 32 the side and
bits 0..31 decide acceptance, so probabilities are resolved to 2^-31. The keys
are pseudo-random 64-bit numbers, so two walkers reuse each other's numbers only
if their keys differ by fewer than (steps) multiples of GAMMA: about
walkers^2 * steps / 2^64, negligible.

Geometry
--------
The labels are compact phase indices (uint8) with one ghost layer per face
(:func:`fill_ghosts`); indices ``>= n_walkable`` are never entered. Each axis
is either periodic (the walker leaves through one face and re-enters through
the opposite one) or mirrored (the volume is continued by its mirror image, so
a jump across the outer face lands in the mirror copy of the same voxel and
reverses the walker's index direction along that axis). Displacements are
counted in voxels in the infinite medium, unwrapped.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_LOW32 = np.uint64(0xFFFFFFFF)
_START_DOMAIN = np.uint64(0xD1B54A32D192ED03)


@njit(cache=True, inline="always")
def splitmix64(x):
    """The splitmix64 output function: a bijective 64-bit hash (uint64 in, uint64 out)."""
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


@njit(cache=True)
def walker_key(seed, walker):
    """Per-walker stream key from a seed and a walker number (both >= 0)."""
    k = splitmix64(np.uint64(seed) * GAMMA + _START_DOMAIN)
    return splitmix64(k + (np.uint64(walker) + np.uint64(1)) * GAMMA)


@njit(cache=True)
def random_bits(seed, walker, step):
    """The 64-bit random number a walker draws at a step (for tests and inspection)."""
    return splitmix64(walker_key(seed, walker) + np.uint64(step) * GAMMA)


@njit(cache=True)
def jump_tables(sigma, spacing):
    """Jump probabilities of the uniformised walk.

    Parameters
    ----------
    sigma : float64 array (L,)
        Conductivity of each compact phase index (0 = never entered); any unit.
    spacing : float64 array (3,)
        Voxel size (dz, dy, dx).

    Returns
    -------
    accept : int64 array (3, L, 2 L)
        ``accept[a, i, j] / 2^32`` is the probability to take a proposed jump along
        axis ``a`` from index ``i`` to index ``j``; columns ``L + j`` repeat column
        ``j`` for the ghost layer of :func:`fill_ghosts`.
    axis_cut : int64 array (2,)
        Thresholds on a 31-bit number: axis 0 below ``axis_cut[0]``, axis 1 below
        ``axis_cut[1]``, axis 2 otherwise.
    rate : float64
        Uniformisation rate ``R`` (1 / time step) in units of sigma / spacing^2.
    kmax : float64 array (3,)
        Largest face rate along each axis.
    """
    n = sigma.shape[0]
    k = np.zeros((3, n, n))
    kmax = np.zeros(3)
    for a in range(3):
        for i in range(n):
            for j in range(n):
                si = sigma[i]
                sj = sigma[j]
                if si > 0.0 and sj > 0.0:
                    # G / V = harmonic-mean sigma * (area / spacing) / (area * spacing)
                    k[a, i, j] = 2.0 * si * sj / (si + sj) / (spacing[a] * spacing[a])
                    kmax[a] = max(kmax[a], k[a, i, j])
    accept = np.zeros((3, n, 2 * n), dtype=np.int64)
    total = kmax[0] + kmax[1] + kmax[2]
    axis_cut = np.zeros(2, dtype=np.int64)
    if total == 0.0:
        return accept, axis_cut, 0.0, kmax
    for a in range(3):
        for i in range(n):
            for j in range(n):
                if kmax[a] > 0.0:
                    t = np.int64(np.round(k[a, i, j] / kmax[a] * 4294967296.0))
                    accept[a, i, j] = t
                    accept[a, i, n + j] = t
    axis_cut[0] = np.int64(np.round(kmax[0] / total * 2147483648.0))
    axis_cut[1] = np.int64(np.round((kmax[0] + kmax[1]) / total * 2147483648.0))
    return accept, axis_cut, 2.0 * total, kmax


@njit(cache=True)
def fill_ghosts(labp, n_labels, mirror):
    """Fill the ghost layer of a padded label array (nz+2, ny+2, nx+2) in place.

    A ghost voxel holds ``n_labels +`` the index of the voxel a walker would land
    in: the opposite interior voxel for a periodic axis, the adjacent voxel itself
    (its mirror copy) for a mirrored one. Edges and corners of the ghost layer are
    never read (a jump changes one coordinate).
    """
    nz, ny, nx = labp.shape[0] - 2, labp.shape[1] - 2, labp.shape[2] - 2
    off = np.uint8(n_labels)
    for j in range(1, ny + 1):
        for i in range(1, nx + 1):
            labp[0, j, i] = off + labp[1 if mirror[0] else nz, j, i]
            labp[nz + 1, j, i] = off + labp[nz if mirror[0] else 1, j, i]
    for k in range(1, nz + 1):
        for i in range(1, nx + 1):
            labp[k, 0, i] = off + labp[k, 1 if mirror[1] else ny, i]
            labp[k, ny + 1, i] = off + labp[k, ny if mirror[1] else 1, i]
    for k in range(1, nz + 1):
        for j in range(1, ny + 1):
            labp[k, j, 0] = off + labp[k, j, 1 if mirror[2] else nx]
            labp[k, j, nx + 1] = off + labp[k, j, nx if mirror[2] else 1]


# Displacements are summed in one int64 as three 21-bit signed fields (z, y, x);
# PACK_LIMIT steps cannot overflow a field, and the fields are unpacked at least
# that often. One add per accepted jump instead of a three-way branch.
_FIELD = 21
PACK_LIMIT = (1 << (_FIELD - 1)) - 1


@njit(cache=True, inline="always")
def _unpack(p):
    half = np.int64(1) << np.int64(_FIELD - 1)
    mask = (np.int64(1) << np.int64(_FIELD)) - np.int64(1)
    f0 = ((p + half) & mask) - half
    p = (p - f0) >> np.int64(_FIELD)
    f1 = ((p + half) & mask) - half
    p = (p - f1) >> np.int64(_FIELD)
    return f0, f1, p


@njit(cache=True, inline="always")
def _advance(labp, n_labels, accept, cut0, cut1, mirror, off, wrap, inc, ctr, n, i, c, flip):
    """``n`` (<= PACK_LIMIT) steps of one walker.

    ``ctr`` is the walker's counter (key + step * GAMMA), ``i`` its flat index in
    the padded labels, ``c`` its phase index, ``flip`` three bits: index direction
    reversed along z, y, x (mirror copies). Returns the new (ctr, i, c, flip, packed
    displacement).
    """
    packed = np.int64(0)
    for s in range(n):
        ctr += GAMMA
        r = splitmix64(ctr)
        u = np.int64(r >> np.uint64(33))
        side = np.int64((r >> np.uint64(32)) & np.uint64(1))
        acc = np.int64(r & _LOW32)
        a = np.int64(u >= cut0) + np.int64(u >= cut1)
        idir = 2 * a + (side ^ ((flip >> a) & 1))
        # unsigned indices: every index here is >= 0, and numba skips the negative-index fix-up
        j = i + off[np.uint64(idir)]
        nb = np.int64(labp[np.uint64(j)])
        if acc < accept[np.uint64(a), np.uint64(c), np.uint64(nb)]:
            packed += inc[np.uint64(2 * a + side)]
            i = j
            c = nb
            if c >= n_labels:
                # stepped into the ghost layer: re-enter through the opposite face, or stay in the mirror copy
                c -= n_labels
                if mirror[a]:
                    flip ^= 1 << a
                    i -= off[np.uint64(idir)]
                else:
                    i -= wrap[np.uint64(idir)]
    return ctr, i, c, flip, packed


@njit(cache=True, inline="always")
def _walk(labp, n_labels, accept, cut0, cut1, mirror, off, wrap, inc, ctr, n, i, c, flip):
    """``n`` steps of one walker (any n); returns (ctr, i, c, flip, dz, dy, dx)."""
    dz = np.int64(0)
    dy = np.int64(0)
    dx = np.int64(0)
    while n > 0:
        m = min(n, PACK_LIMIT)
        ctr, i, c, flip, packed = _advance(labp, n_labels, accept, cut0, cut1, mirror, off, wrap, inc, ctr, m, i, c,
                                           flip)
        n -= m
        ez, ey, ex = _unpack(packed)
        dz += ez
        dy += ey
        dx += ex
    return ctr, i, c, flip, dz, dy, dx


@njit(cache=True)
def start_voxel(labp, n_walkable, key):
    """An interior voxel of the padded labels drawn uniformly from those with index
    < ``n_walkable`` (rejection sampling).

    Returns its interior coordinates (z, y, x), or (-1, -1, -1) if none was found in 2^20 draws.
    """
    nz, ny, nx = labp.shape[0] - 2, labp.shape[1] - 2, labp.shape[2] - 2
    total = np.uint64(nz * ny * nx)
    for t in range(1 << 20):
        # counters below zero (mod 2^64) are kept for start positions; steps count up from 1
        r = splitmix64(key - (np.uint64(t) + np.uint64(1)) * GAMMA)
        flat = np.int64(((r >> np.uint64(32)) * total) >> np.uint64(32))
        z = flat // (ny * nx)
        rem = flat - z * ny * nx
        y = rem // nx
        x = rem - y * nx
        if labp[z + 1, y + 1, x + 1] < n_walkable:
            return z, y, x
    return -1, -1, -1


@njit(parallel=True, cache=True)
def walk_blocks(labels_padded, n_labels, n_walkable, accept, axis_cut, mirror, seed, block_first, block_size, stride,
                n_records, log_steps, out_lag, out_log, out_failed):
    """Run blocks of walkers and accumulate their squared displacements.

    Parameters
    ----------
    labels_padded : uint8 array (nz + 2, ny + 2, nx + 2)
        Compact phase indices 0..n_labels-1 with the ghost layer of
        :func:`fill_ghosts`; indices >= ``n_walkable`` are never entered (their
        rows of ``accept`` are zero).
    n_labels : int
        Number of compact indices (2 * n_labels <= 256).
    n_walkable : int
    accept, axis_cut : from :func:`jump_tables`
    mirror : bool array (3,)
        Mirrored (True) or periodic (False) continuation along each axis.
    seed : int >= 0
    block_first, block_size : int64 arrays (B,)
        First walker number and number of walkers of each block. Blocks are the
        unit of parallel work; each writes only its own rows of the outputs, in a
        fixed walker order, so the sums do not depend on the thread count.
    stride : int
        Steps between two recorded positions.
    n_records : int
        Recorded positions after the start (the run has ``stride * n_records`` steps).
    log_steps : int64 array (P,)
        Increasing step numbers <= ``stride`` at which the displacement from the
        start is also recorded (resolves the early-time MSD).
    out_lag : int64 array (B, n_records + 1, 3), zeroed
        ``out_lag[b, m, a]`` = sum over walkers and over all time origins ``k`` of
        ``(X_a(k + m) - X_a(k))^2``, X in voxels at recorded positions: the
        time-origin-averaged MSD numerator at lag ``m * stride``.
    out_log : int64 array (B, P, 3), zeroed
        Sum over walkers of ``X_a(log_steps[p])^2`` (origin at the start).
    out_failed : int64 array (B,), zeroed
        Walkers for which no start voxel was found (then nothing is walkable).
    """
    nz, ny, nx = labels_padded.shape[0] - 2, labels_padded.shape[1] - 2, labels_padded.shape[2] - 2
    labp = labels_padded.ravel()
    sz = (ny + 2) * (nx + 2)
    sy = nx + 2
    # per direction 2a + side (side 0 = down, 1 = up): flat index step, period shift, packed increment
    off = np.empty(6, dtype=np.int64)
    wrap = np.empty(6, dtype=np.int64)
    inc = np.empty(6, dtype=np.int64)
    for a in range(3):
        st = sz if a == 0 else (sy if a == 1 else 1)
        n_a = nz if a == 0 else (ny if a == 1 else nx)
        off[2 * a] = -st
        off[2 * a + 1] = st
        wrap[2 * a] = -n_a * st
        wrap[2 * a + 1] = n_a * st
        inc[2 * a] = -(np.int64(1) << np.int64(_FIELD * a))
        inc[2 * a + 1] = np.int64(1) << np.int64(_FIELD * a)
    cut0 = axis_cut[0]
    cut1 = axis_cut[1]
    n_log = log_steps.shape[0]
    for b in prange(block_first.shape[0]):
        # axis-major so that the lag sums below run over contiguous memory (vectorised)
        hist = np.zeros((3, n_records + 1), dtype=np.int64)
        for w in range(block_first[b], block_first[b] + block_size[b]):
            key = walker_key(seed, w)
            z, y, x = start_voxel(labels_padded, n_walkable, key)
            if z < 0:
                out_failed[b] += 1
                continue
            i = (z + 1) * sz + (y + 1) * sy + x + 1
            c = np.int64(labp[i])
            flip = np.int64(0)
            ctr = key
            dz = np.int64(0)
            dy = np.int64(0)
            dx = np.int64(0)
            done = 0
            for p in range(n_log):
                ctr, i, c, flip, ez, ey, ex = _walk(labp, n_labels, accept, cut0, cut1, mirror, off, wrap, inc, ctr,
                                                    log_steps[p] - done, i, c, flip)
                done = log_steps[p]
                dz += ez
                dy += ey
                dx += ex
                out_log[b, p, 0] += dz * dz
                out_log[b, p, 1] += dy * dy
                out_log[b, p, 2] += dx * dx
            for m in range(1, n_records + 1):
                ctr, i, c, flip, ez, ey, ex = _walk(labp, n_labels, accept, cut0, cut1, mirror, off, wrap, inc, ctr,
                                                    stride - done, i, c, flip)
                done = 0
                dz += ez
                dy += ey
                dx += ex
                hist[0, m] = dz
                hist[1, m] = dy
                hist[2, m] = dx
            for a in range(3):
                h = hist[a]
                for m in range(1, n_records + 1):
                    acc = np.int64(0)
                    for k in range(n_records + 1 - m):
                        e = h[k + m] - h[k]
                        acc += e * e
                    out_lag[b, m, a] += acc


@njit(cache=True)
def label_counts(labels, clusters, keep):
    """How many voxels carry each uint8 value, counting only voxels whose cluster id
    ``clusters[...]`` has ``keep[id]`` True (int64 array of length 256)."""
    out = np.zeros(256, dtype=np.int64)
    flat = labels.ravel()
    ids = clusters.ravel()
    for i in range(flat.shape[0]):
        if keep[ids[i]]:
            out[flat[i]] += 1
    return out


@njit(parallel=True, cache=True)
def walk_labels(labels, to_index, clusters, keep, blocked):
    """Padded (nz+2, ny+2, nx+2) array of compact phase indices: ``to_index[label]`` on
    the kept clusters, ``blocked`` elsewhere; the ghost layer is left 0 for :func:`fill_ghosts`."""
    nz, ny, nx = labels.shape
    out = np.zeros((nz + 2, ny + 2, nx + 2), dtype=np.uint8)
    for k in prange(nz):
        for j in range(ny):
            for i in range(nx):
                out[k + 1, j + 1, i + 1] = to_index[labels[k, j, i]] if keep[clusters[k, j, i]] else blocked
    return out
