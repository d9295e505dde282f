"""The finite-volume operator of :mod:`kernels.fv` as a sparse matrix over its conducting cells.

Algebraic multigrid needs the operator as a matrix. These kernels number the
interior cells whose compact label is below ``ins`` (the insulating index) in C
order, and write the rows of A in CSR form: the diagonal is the sum of the six
face conductances (Dirichlet ghosts included), each conducting neighbour gets
``-g``. A neighbour across a periodic face is the interior cell at the other end
of that axis (the ghost is its copy). The right-hand side collects the
conductances to Dirichlet ghosts times the ghost potential. (The cell problem,
singular without a fixed potential, is not expressed this way.)

Layout: ``lab`` and fields are padded as in :mod:`kernels.fv`; ``index`` is an
int32 padded array, -1 outside the conducting cells.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(parallel=True, cache=True)
def number_cells(lab, ins, index):
    """Number the conducting interior cells (``lab < ins``) in C order; return how many there are."""
    nz, ny, nx = lab.shape
    counts = np.zeros(nz, dtype=np.int64)
    for k in prange(1, nz - 1):
        c = 0
        for j in range(1, ny - 1):
            for i in range(1, nx - 1):
                if lab[k, j, i] < ins:
                    c += 1
        counts[k] = c
    start = np.zeros(nz, dtype=np.int64)
    total = 0
    for k in range(nz):
        start[k] = total
        total += counts[k]
    for k in prange(nz):
        m = start[k]
        for j in range(ny):
            for i in range(nx):
                if 0 < k < nz - 1 and 0 < j < ny - 1 and 0 < i < nx - 1 and lab[k, j, i] < ins:
                    index[k, j, i] = m
                    m += 1
                else:
                    index[k, j, i] = -1
    return total


@njit(cache=True, inline="always")
def _neighbour(index, periodic, k, j, i, a, step):
    """Index of the cell across the face (a, step) of (k, j, i), wrapping periodic axes; -1 for none."""
    nz, ny, nx = index.shape
    kk, jj, ii = k, j, i
    if a == 0:
        kk += step
        if periodic[0]:
            if kk == 0:
                kk = nz - 2
            elif kk == nz - 1:
                kk = 1
    elif a == 1:
        jj += step
        if periodic[1]:
            if jj == 0:
                jj = ny - 2
            elif jj == ny - 1:
                jj = 1
    else:
        ii += step
        if periodic[2]:
            if ii == 0:
                ii = nx - 2
            elif ii == nx - 1:
                ii = 1
    return index[kk, jj, ii]


@njit(parallel=True, cache=True)
def row_lengths(lab, g, index, periodic, n, indptr):
    """``indptr`` (length n + 1) of the CSR rows: one diagonal plus one entry per coupled conducting neighbour."""
    nz, ny, nx = lab.shape
    counts = np.zeros(n + 1, dtype=np.int64)
    for k in prange(1, nz - 1):
        for j in range(1, ny - 1):
            for i in range(1, nx - 1):
                row = index[k, j, i]
                if row < 0:
                    continue
                c = lab[k, j, i]
                m = 1
                for a in range(3):
                    for step in (-1, 1):
                        kk = k + step if a == 0 else k
                        jj = j + step if a == 1 else j
                        ii = i + step if a == 2 else i
                        if g[a, c, lab[kk, jj, ii]] > 0.0:
                            col = _neighbour(index, periodic, k, j, i, a, step)
                            if col >= 0 and col != row:
                                m += 1
                counts[row + 1] = m
    indptr[0] = 0
    for r in range(n):
        indptr[r + 1] = indptr[r] + counts[r + 1]


@njit(parallel=True, cache=True)
def fill_rows(lab, g, x_ghost, index, periodic, indptr, indices, data, b):
    """Columns, values and right-hand side of the CSR rows laid out by :func:`row_lengths`.

    ``x_ghost`` is a padded field whose ghosts hold the boundary potentials (its
    interior is ignored).
    """
    nz, ny, nx = lab.shape
    shape = (nz, ny, nx)
    for k in prange(1, nz - 1):
        for j in range(1, ny - 1):
            for i in range(1, nx - 1):
                row = index[k, j, i]
                if row < 0:
                    continue
                c = lab[k, j, i]
                pos = indptr[row] + 1
                diag = 0.0
                rhs = 0.0
                for a in range(3):
                    for step in (-1, 1):
                        kk = k + step if a == 0 else k
                        jj = j + step if a == 1 else j
                        ii = i + step if a == 2 else i
                        ga = g[a, c, lab[kk, jj, ii]]
                        if ga <= 0.0:
                            continue
                        col = _neighbour(index, periodic, k, j, i, a, step)
                        p = kk if a == 0 else (jj if a == 1 else ii)
                        wrapped = periodic[a] and (p == 0 or p == shape[a] - 1)
                        if col >= 0:
                            if col == row:  # a periodic axis of one cell: the face joins the cell to itself
                                continue
                            diag += ga
                            indices[pos] = col
                            data[pos] = -ga
                            pos += 1
                        elif not wrapped:
                            diag += ga
                            rhs += ga * x_ghost[kk, jj, ii]
                start = indptr[row]
                indices[start] = row
                data[start] = diag
                b[row] = rhs


@njit(parallel=True, cache=True)
def gather(field, index, out):
    """``out[index[c]] = field[c]`` for the numbered cells."""
    nz, ny, nx = field.shape
    for k in prange(1, nz - 1):
        for j in range(1, ny - 1):
            for i in range(1, nx - 1):
                m = index[k, j, i]
                if m >= 0:
                    out[m] = field[k, j, i]


@njit(parallel=True, cache=True)
def scatter(values, index, field):
    """``field[c] = values[index[c]]`` for the numbered cells, 0 at the other interior cells."""
    nz, ny, nx = field.shape
    for k in prange(1, nz - 1):
        for j in range(1, ny - 1):
            for i in range(1, nx - 1):
                m = index[k, j, i]
                field[k, j, i] = values[m] if m >= 0 else 0.0
