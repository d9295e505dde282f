"""Independent reference solutions for the solver tests: the same discretisation assembled with scipy.

Nothing here uses microsim's kernels: the matrix is built from the voxel
conductivities with numpy, solved by a sparse direct factorisation, and
sigma_eff is taken from the Joule dissipation of the solution (a sum of
positive terms, so it stays accurate at conductivity contrasts where the
inlet current, 1 - phi near a good conductor, would cancel).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy import ndimage


def _faces(shape, axis, periodic_sides):
    """(a, i, j) of every pair of neighbouring layers i, j along each axis a, wrapping periodic sides."""
    for a in range(3):
        wrap = periodic_sides and a != axis
        for i in range(shape[a] - 1 + (1 if wrap else 0)):
            yield a, i, (i + 1) % shape[a]


def percolating(s: np.ndarray, axis: int, periodic_sides: bool = False) -> np.ndarray:
    """Conducting voxels connected to both faces normal to ``axis`` (6-connectivity)."""
    lab, n = ndimage.label(s > 0)
    if periodic_sides:
        # join clusters across the periodic side faces
        parent = np.arange(n + 1)

        def find(u):
            while parent[u] != u:
                parent[u] = parent[parent[u]]
                u = parent[u]
            return u

        for a in range(3):
            if a == axis:
                continue
            lo, hi = np.take(lab, 0, axis=a).ravel(), np.take(lab, -1, axis=a).ravel()
            for u, v in zip(lo, hi):
                if u and v:
                    parent[find(u)] = find(v)
        roots = np.array([find(u) for u in range(n + 1)])
        lab = roots[lab]
    ends = np.intersect1d(np.take(lab, 0, axis=axis), np.take(lab, -1, axis=axis))
    return np.isin(lab, ends[ends > 0])


def direct_solve(labels, sigma, voxel, axis, periodic_sides=False, return_potential=False):
    """sigma_eff (units of ``sigma``) of ``labels`` along array ``axis``, by a sparse direct solve.

    ``sigma`` maps label values to conductivities (an array indexed by label);
    ``voxel`` is (dz, dy, dx). The potential is 1 on the low face and 0 on the
    high face, half a voxel outside the volume; the other faces are insulating
    or, with ``periodic_sides``, periodic.
    """
    shape = labels.shape
    s = np.asarray(sigma, dtype=np.float64)[labels]
    keep = percolating(s, axis, periodic_sides)
    s = np.where(keep, s, 0.0)
    n = labels.size
    idx = np.arange(n).reshape(shape)
    rows, cols, vals = [], [], []
    diag = np.zeros(n)
    b = np.zeros(n)
    pairs = []
    for a, i, j in _faces(shape, axis, periodic_sides):
        geo = voxel[0] * voxel[1] * voxel[2] / voxel[a] ** 2
        sa, sb = np.take(s, i, axis=a).ravel(), np.take(s, j, axis=a).ravel()
        ia, ib = np.take(idx, i, axis=a).ravel(), np.take(idx, j, axis=a).ravel()
        with np.errstate(invalid="ignore", divide="ignore"):
            g = np.where((sa > 0) & (sb > 0), 2 * sa * sb / (sa + sb), 0.0) * geo
        rows += [ia, ib]
        cols += [ib, ia]
        vals += [-g, -g]
        np.add.at(diag, ia, g)
        np.add.at(diag, ib, g)
        pairs.append((ia, ib, g))
    geo = voxel[0] * voxel[1] * voxel[2] / voxel[axis] ** 2
    g_in = (2 * np.take(s, 0, axis=axis) * geo).ravel()
    g_out = (2 * np.take(s, -1, axis=axis) * geo).ravel()
    i_in, i_out = np.take(idx, 0, axis=axis).ravel(), np.take(idx, -1, axis=axis).ravel()
    np.add.at(diag, i_in, g_in)
    np.add.at(diag, i_out, g_out)
    np.add.at(b, i_in, g_in)
    A = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    A = A + sp.diags(diag)
    k = keep.ravel()
    phi = np.zeros(n)
    if k.any():
        # Symmetric diagonal scaling keeps the factorisation accurate at high contrast.
        dk = 1.0 / np.sqrt(diag[k])
        Ak = sp.diags(dk) @ A[k][:, k] @ sp.diags(dk)
        phi[k] = dk * spla.spsolve(Ak.tocsc(), dk * b[k])
    power = sum(float((g * (phi[ia] - phi[ib]) ** 2).sum()) for ia, ib, g in pairs)
    power += float((g_in * (1.0 - phi[i_in]) ** 2).sum()) + float((g_out * phi[i_out] ** 2).sum())
    length = shape[axis] * voxel[axis]
    area = np.prod([shape[m] * voxel[m] for m in range(3) if m != axis])
    sigma_eff = power * length / area
    return (sigma_eff, phi.reshape(shape)) if return_potential else sigma_eff
