"""Finite-volume kernels for steady conduction div(sigma grad phi) = 0 on a voxel grid.

Layout shared by every kernel here
----------------------------------
* Fields and the work label array are *padded*: shape (nz+2, ny+2, nx+2), one
  ghost layer on each side of every axis. Interior cells are [1:-1, 1:-1, 1:-1].
  The ghost layers carry the boundary condition: a Dirichlet ghost holds the
  fixed potential, a wall ghost has an insulating label, a periodic ghost is a
  copy of the opposite interior layer (refreshed by :func:`refresh_halo`), and
  a slab of a distributed volume would hold its neighbour's plane there.
* ``lab`` holds compact phase indices (uint8); ``g`` has shape (3, L, L) with
  ``g[a, i, j]`` the conductance of a face normal to axis ``a`` between a cell of
  index ``i`` and one of index ``j`` (the series combination of the two half
  voxels, area / spacing folded in). Conductances never sit in memory per face:
  they come from this lookup, which is what keeps the solver at a few bytes per
  voxel.
* Reductions write one float64 partial sum per z plane into ``partial`` (length
  nz+2); the caller sums them. This keeps the result independent of the number
  of threads and lets a distributed caller reduce across ranks.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True)
def conductance_tables(sigma, spacing, dirichlet_index):
    """Face conductance lookup tables.

    Parameters
    ----------
    sigma : float64 array (L,)
        Conductivity of each compact phase index (any consistent unit). The
        entry at ``dirichlet_index`` is ignored: that index marks a ghost cell
        held at a fixed potential, joined to its neighbour through that
        neighbour's half voxel only.
    spacing : float64 array (3,)
        Voxel size (dz, dy, dx).
    dirichlet_index : int
        Compact index of Dirichlet ghosts, or -1 for none.

    Returns
    -------
    g : float64 array (3, L, L)
        ``g[a, i, j] = 2 s_i s_j / (s_i + s_j) * area_a / spacing_a``.
    """
    n = sigma.shape[0]
    g = np.zeros((3, n, n))
    for a in range(3):
        area = spacing[0] * spacing[1] * spacing[2] / spacing[a]
        geo = area / spacing[a]
        for i in range(n):
            for j in range(n):
                si = sigma[i]
                sj = sigma[j]
                if i == dirichlet_index and j == dirichlet_index:
                    continue
                if i == dirichlet_index:
                    g[a, i, j] = 2.0 * sj * geo
                elif j == dirichlet_index:
                    g[a, i, j] = 2.0 * si * geo
                elif si > 0.0 and sj > 0.0:
                    g[a, i, j] = 2.0 * si * sj / (si + sj) * geo
    return g


@njit(parallel=True, cache=True)
def apply_operator(lab, g, v, out, sign, partial):
    """``out = sign * A v`` on interior cells, with ``(A v)_c = sum_nb g (v_c - v_nb)``.

    With ``sign = -1`` and ghost layers holding the boundary potentials this is
    the residual b - A x of the Dirichlet problem; with ``sign = +1`` and zero
    Dirichlet ghosts it is the operator product of conjugate gradients.
    ``partial[k]`` receives sum over plane k of ``v * out`` (float64).
    """
    nz, ny, nx = lab.shape
    gz = g[0]
    gy = g[1]
    gx = g[2]
    for k in prange(1, nz - 1):
        acc = 0.0
        for j in range(1, ny - 1):
            for i in range(1, nx - 1):
                c = lab[k, j, i]
                vc = np.float64(v[k, j, i])
                s = (gz[c, lab[k - 1, j, i]] * (vc - v[k - 1, j, i])
                     + gz[c, lab[k + 1, j, i]] * (vc - v[k + 1, j, i])
                     + gy[c, lab[k, j - 1, i]] * (vc - v[k, j - 1, i])
                     + gy[c, lab[k, j + 1, i]] * (vc - v[k, j + 1, i])
                     + gx[c, lab[k, j, i - 1]] * (vc - v[k, j, i - 1])
                     + gx[c, lab[k, j, i + 1]] * (vc - v[k, j, i + 1]))
                s *= sign
                out[k, j, i] = s
                acc += vc * s
        partial[k] = acc


@njit(inline="always", cache=True)
def _diag(lab, g, k, j, i):
    """Sum of the six face conductances of cell (k, j, i): the diagonal of A there."""
    c = lab[k, j, i]
    return (g[0, c, lab[k - 1, j, i]] + g[0, c, lab[k + 1, j, i]]
            + g[1, c, lab[k, j - 1, i]] + g[1, c, lab[k, j + 1, i]]
            + g[2, c, lab[k, j, i - 1]] + g[2, c, lab[k, j, i + 1]])


@njit(parallel=True, cache=True)
def diagonal(lab, g, out):
    """Diagonal of A (sum of the six face conductances) on interior cells."""
    nz, ny, nx = lab.shape
    for k in prange(1, nz - 1):
        for j in range(1, ny - 1):
            for i in range(1, nx - 1):
                out[k, j, i] = _diag(lab, g, k, j, i)


@njit(parallel=True, cache=True)
def jacobi_residual(lab, g, x, z, part_rz, part_rr):
    """``z = (b - A x) / diag(A)`` from the potential ``x`` (ghosts holding the boundary values).

    The residual is evaluated from ``x`` in every call, so no recursion can drift
    from what ``x`` satisfies. ``part_rz[k]``, ``part_rr[k]``: plane sums of r z and
    r^2 (float64). The diagonal is recomputed from the labels rather than stored,
    which saves a field for a few cached table reads.
    """
    nz, ny, nx = lab.shape
    gz = g[0]
    gy = g[1]
    gx = g[2]
    for k in prange(1, nz - 1):
        arz = 0.0
        arr = 0.0
        for j in range(1, ny - 1):
            for i in range(1, nx - 1):
                c = lab[k, j, i]
                vc = x[k, j, i]
                g0 = gz[c, lab[k - 1, j, i]]
                g1 = gz[c, lab[k + 1, j, i]]
                g2 = gy[c, lab[k, j - 1, i]]
                g3 = gy[c, lab[k, j + 1, i]]
                g4 = gx[c, lab[k, j, i - 1]]
                g5 = gx[c, lab[k, j, i + 1]]
                d = g0 + g1 + g2 + g3 + g4 + g5
                if d > 0.0:
                    r = (g0 * (x[k - 1, j, i] - vc) + g1 * (x[k + 1, j, i] - vc) + g2 * (x[k, j - 1, i] - vc)
                         + g3 * (x[k, j + 1, i] - vc) + g4 * (x[k, j, i - 1] - vc) + g5 * (x[k, j, i + 1] - vc))
                    zv = r / d
                    z[k, j, i] = zv
                    arz += r * zv
                    arr += r * r
                else:
                    z[k, j, i] = 0.0
        part_rz[k] = arz
        part_rr[k] = arr


@njit(parallel=True, cache=True)
def layer_currents(lab, g, v, axis, out):
    """Current (in +axis) through every layer of faces normal to ``axis``.

    ``out[m]``, m = 0 .. n (n interior cells along ``axis``), is the current from
    padded layer m to layer m + 1: ``out[0]`` is the inlet, ``out[n]`` the outlet.
    For the exact solution every entry is the same. float64.
    """
    nz, ny, nx = lab.shape
    ga = g[axis]
    if axis == 0:
        for k in prange(0, nz - 1):
            acc = 0.0
            for j in range(1, ny - 1):
                for i in range(1, nx - 1):
                    acc += ga[lab[k, j, i], lab[k + 1, j, i]] * (np.float64(v[k, j, i]) - v[k + 1, j, i])
            out[k] = acc
    else:
        m = out.shape[0]
        part = np.zeros((nz, m))
        for k in prange(1, nz - 1):
            for j in range(1, ny - 1):
                for i in range(1, nx - 1):
                    if axis == 1:
                        if j == 1:
                            part[k, 0] += ga[lab[k, 0, i], lab[k, 1, i]] * (np.float64(v[k, 0, i]) - v[k, 1, i])
                        part[k, j] += ga[lab[k, j, i], lab[k, j + 1, i]] * (np.float64(v[k, j, i]) - v[k, j + 1, i])
                    else:
                        if i == 1:
                            part[k, 0] += ga[lab[k, j, 0], lab[k, j, 1]] * (np.float64(v[k, j, 0]) - v[k, j, 1])
                        part[k, i] += ga[lab[k, j, i], lab[k, j, i + 1]] * (np.float64(v[k, j, i]) - v[k, j, i + 1])
        for q in range(m):
            acc = 0.0
            for k in range(nz):
                acc += part[k, q]
            out[q] = acc


@njit(parallel=True, cache=True)
def xpay(z, p, beta):
    """``p = z + beta p`` on interior cells."""
    nz, ny, nx = p.shape
    for k in prange(1, nz - 1):
        for j in range(1, ny - 1):
            for i in range(1, nx - 1):
                p[k, j, i] = z[k, j, i] + beta * p[k, j, i]


@njit(parallel=True, cache=True)
def dot(a, b, partial):
    """``partial[k]`` = plane sum of a b over interior cells (float64)."""
    nz, ny, nx = a.shape
    for k in prange(1, nz - 1):
        acc = 0.0
        for j in range(1, ny - 1):
            for i in range(1, nx - 1):
                acc += np.float64(a[k, j, i]) * b[k, j, i]
        partial[k] = acc


@njit(cache=True)
def refresh_halo(v, axis, jump):
    """Periodic ghost layers along ``axis``: low ghost = last interior layer + jump,
    high ghost = first interior layer - jump (``jump`` is the potential drop per period)."""
    n = v.shape[axis] - 2
    if axis == 0:
        for j in range(v.shape[1]):
            for i in range(v.shape[2]):
                v[0, j, i] = v[n, j, i] + jump
                v[n + 1, j, i] = v[1, j, i] - jump
    elif axis == 1:
        for k in range(v.shape[0]):
            for i in range(v.shape[2]):
                v[k, 0, i] = v[k, n, i] + jump
                v[k, n + 1, i] = v[k, 1, i] - jump
    else:
        for k in range(v.shape[0]):
            for j in range(v.shape[1]):
                v[k, j, 0] = v[k, j, n] + jump
                v[k, j, n + 1] = v[k, j, 1] - jump


@njit(parallel=True, cache=True)
def dissipation(lab, g, v, periodic, partial):
    """Joule dissipation sum over faces of g (delta v)^2, each face once (float64 per z plane).

    Faces towards the high neighbour are counted for every interior cell; faces
    towards a low ghost only where that axis is not periodic (a periodic low
    face is the high face of the opposite cell). For a Dirichlet problem with
    unit potential drop this equals the total current, and it is accurate to
    second order in the error of ``v``, which is why microsim reports
    sigma_eff from it.
    """
    nz, ny, nx = lab.shape
    for k in prange(1, nz - 1):
        acc = 0.0
        for j in range(1, ny - 1):
            for i in range(1, nx - 1):
                c = lab[k, j, i]
                vc = np.float64(v[k, j, i])
                d = vc - v[k + 1, j, i]
                acc += g[0, c, lab[k + 1, j, i]] * d * d
                d = vc - v[k, j + 1, i]
                acc += g[1, c, lab[k, j + 1, i]] * d * d
                d = vc - v[k, j, i + 1]
                acc += g[2, c, lab[k, j, i + 1]] * d * d
                if k == 1 and not periodic[0]:
                    d = vc - v[k - 1, j, i]
                    acc += g[0, c, lab[k - 1, j, i]] * d * d
                if j == 1 and not periodic[1]:
                    d = vc - v[k, j - 1, i]
                    acc += g[1, c, lab[k, j - 1, i]] * d * d
                if i == 1 and not periodic[2]:
                    d = vc - v[k, j, i - 1]
                    acc += g[2, c, lab[k, j, i - 1]] * d * d
        partial[k] = acc


@njit(cache=True)
def plane_current(lab_lo, lab_hi, v_lo, v_hi, g_axis):
    """Current through one layer of faces, from the ``lo`` layer to the ``hi`` layer.

    The four arrays are 2D views of two adjacent layers normal to the transport
    axis (ghost rows and columns included; they are skipped). Returns float64.
    """
    acc = 0.0
    for j in range(1, lab_lo.shape[0] - 1):
        for i in range(1, lab_lo.shape[1] - 1):
            acc += g_axis[lab_lo[j, i], lab_hi[j, i]] * (np.float64(v_lo[j, i]) - v_hi[j, i])
    return acc


@njit(parallel=True, cache=True)
def current_density(lab, g, v, area, out):
    """Cell-centred current density (z, y, x components) from the mean of the two face
    fluxes along each axis, divided by the face area. ``out`` has shape (3, nz, ny, nx)
    of the interior (no ghosts); units are those of g * v / area."""
    nz, ny, nx = lab.shape
    for k in prange(1, nz - 1):
        for j in range(1, ny - 1):
            for i in range(1, nx - 1):
                c = lab[k, j, i]
                vc = np.float64(v[k, j, i])
                fz = (g[0, c, lab[k - 1, j, i]] * (v[k - 1, j, i] - vc) + g[0, c, lab[k + 1, j, i]] * (vc - v[k + 1, j, i]))
                fy = (g[1, c, lab[k, j - 1, i]] * (v[k, j - 1, i] - vc) + g[1, c, lab[k, j + 1, i]] * (vc - v[k, j + 1, i]))
                fx = (g[2, c, lab[k, j, i - 1]] * (v[k, j, i - 1] - vc) + g[2, c, lab[k, j, i + 1]] * (vc - v[k, j, i + 1]))
                out[0, k - 1, j - 1, i - 1] = 0.5 * fz / area[0]
                out[1, k - 1, j - 1, i - 1] = 0.5 * fy / area[1]
                out[2, k - 1, j - 1, i - 1] = 0.5 * fx / area[2]
