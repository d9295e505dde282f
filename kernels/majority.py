"""Majority-vote kernels on label arrays: block downsampling and filling of unassigned voxels."""
from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(parallel=True, cache=True)
def block_majority(codes, n_codes, bz, by, bx, out):
    """Most frequent code in each (bz, by, bx) block.

    Parameters
    ----------
    codes : integer array (nz, ny, nx)
        Values in 0..n_codes-1; each axis a multiple of its block size.
    n_codes : int
    bz, by, bx : int
        Block size along z, y, x.
    out : array (nz // bz, ny // by, nx // bx), same dtype as ``codes``
        Receives the majority code of each block; a tie goes to the smallest code.
    """
    oz, oy, ox = out.shape
    for k in prange(oz):
        counts = np.zeros(n_codes, dtype=np.int64)
        for j in range(oy):
            for i in range(ox):
                for a in range(bz):
                    for b in range(by):
                        for c in range(bx):
                            counts[codes[k * bz + a, j * by + b, i * bx + c]] += 1
                best = 0
                best_count = -1
                # Scanning the block again (not all n_codes) keeps the cost per block
                # independent of the number of distinct labels; the clearing does the same.
                for a in range(bz):
                    for b in range(by):
                        for c in range(bx):
                            v = codes[k * bz + a, j * by + b, i * bx + c]
                            n = counts[v]
                            if n > best_count or (n == best_count and v < best):
                                best = v
                                best_count = n
                for a in range(bz):
                    for b in range(by):
                        for c in range(bx):
                            counts[codes[k * bz + a, j * by + b, i * bx + c]] = 0
                out[k, j, i] = best


@njit(parallel=True, cache=True)
def fill_sweep(src, dst, unassigned, n_codes):
    """One sweep of filling: every ``unassigned`` voxel of ``src`` takes the most frequent
    code among its assigned face neighbours (ties: smallest code) and is written to ``dst``.

    Voxels whose neighbours are all unassigned stay ``unassigned``. Returns the number
    of voxels still unassigned after the sweep. ``src`` and ``dst`` must differ so the
    result does not depend on the order in which voxels are visited.
    """
    nz, ny, nx = src.shape
    left = np.zeros(nz, dtype=np.int64)
    for kp in prange(nz):
        k = np.int64(kp)  # a signed index, so that k - 1 stays an integer
        counts = np.zeros(n_codes, dtype=np.int64)
        for j in range(ny):
            for i in range(nx):
                v = src[k, j, i]
                if v != unassigned:
                    dst[k, j, i] = v
                    continue
                for d in range(6):
                    kk = k
                    jj = np.int64(j)
                    ii = np.int64(i)
                    if d == 0:
                        kk -= 1
                    elif d == 1:
                        kk += 1
                    elif d == 2:
                        jj -= 1
                    elif d == 3:
                        jj += 1
                    elif d == 4:
                        ii -= 1
                    else:
                        ii += 1
                    if 0 <= kk < nz and 0 <= jj < ny and 0 <= ii < nx:
                        w = src[kk, jj, ii]
                        if w != unassigned:
                            counts[w] += 1
                best = unassigned
                best_count = 0
                for c in range(n_codes):
                    if counts[c] > best_count:
                        best = c
                        best_count = counts[c]
                    counts[c] = 0
                dst[k, j, i] = best
                if best == unassigned:
                    left[kp] += 1
    return left.sum()
