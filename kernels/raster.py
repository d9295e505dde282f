"""Rasterisation of particles (spheres, ellipsoids) into a label volume.

Every voxel gets a *score* from the particles near it, and voxels whose score is
below a threshold take a new label. Three scores cover all uses:

* metric 0, the normalised radius ``rho`` of the nearest particle: ``|v| / r`` for
  a sphere, ``sqrt(v^T Q^-1 v)`` for an ellipsoid with shape matrix ``Q``. A voxel
  with ``rho <= s`` lies inside the particle scaled by ``s``, so thresholding at
  ``s`` rasterises the particles scaled by ``s``.
* metric 1, the distance to the nearest particle surface (negative inside):
  ``|v| - r`` for a sphere; for an ellipsoid the distance along the ray from the
  centre, ``|v| (1 - 1/rho)``, which is never smaller than the true distance.
* metric 2, the sum of the distances to the two nearest particle surfaces: small
  in the necks between two particles that (nearly) touch.

The same scan also histograms the scores of the voxels it looks at and can
store each voxel's histogram bin (2 bytes per voxel). A caller that wants an
exact number of voxels scans once, picks the bin from the cumulative histogram,
and labels the voxels below it with :func:`assign` without scoring them again.

Only voxels that still carry the label ``free`` are scored or changed, which is
how phases are laid down in order of priority. Periodic axes wrap particles
around the box; voxel (k, j, i) has its centre at ((k + 1/2) dz, (j + 1/2) dy,
(i + 1/2) dx).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange


@njit(cache=True)
def plane_lists(cz, extent, dz, nz, periodic_z):
    """Particles whose bounding ball reaches each z plane.

    Parameters
    ----------
    cz : float64 (N,)
        Centre z coordinates in micrometres.
    extent : float64 (N,)
        Radius of each particle's bounding ball in micrometres; smaller than half
        the box along a periodic axis.
    dz : float
        Voxel size along z.
    nz : int
        Number of planes.
    periodic_z : bool
        Wrap particles around the z axis.

    Returns
    -------
    start : int64 (nz + 1,)
        ``items[start[k]:start[k+1]]`` are the particles reaching plane k.
    items : int64 (M,)
    offset : float64 (M,)
        z of the plane's voxel centres minus the particle centre (periodic image included).
    """
    n = cz.shape[0]
    start = np.zeros(nz + 1, dtype=np.int64)
    for p in range(2):
        if p == 1:
            for k in range(nz):
                start[k + 1] += start[k]
            fill = start[:-1].copy()
            items = np.empty(start[nz], dtype=np.int64)
            offset = np.empty(start[nz])
        for i in range(n):
            k0 = int(math.ceil((cz[i] - extent[i]) / dz - 0.5))
            k1 = int(math.floor((cz[i] + extent[i]) / dz - 0.5))
            if not periodic_z:
                k0 = max(k0, 0)
                k1 = min(k1, nz - 1)
            for ku in range(k0, k1 + 1):
                k = ku % nz
                if p == 0:
                    start[k + 1] += 1
                else:
                    items[fill[k]] = i
                    offset[fill[k]] = (ku + 0.5) * dz - cz[i]
                    fill[k] += 1
    return start, items, offset


@njit(parallel=True, cache=True)
def scan(labels, free, new_label, centres, radius, bound, qinv, spheres, metric, cutoff, threshold,
         voxel_size, periodic, start, items, offset, lo, hi, hist, bins, store_bins):
    """Score the free voxels near the particles; histogram the scores; label those below ``threshold``.

    Parameters
    ----------
    labels : uint8 (nz, ny, nx), in/out
        Label volume; only voxels equal to ``free`` are scored and may change.
    free, new_label : int
        Label of unassigned voxels, and the label given to voxels with score < ``threshold``.
    centres : float64 (N, 3)
        Particle centres (z, y, x) in micrometres.
    radius : float64 (N,)
        Sphere radii (used when ``spheres``).
    bound : float64 (N,)
        Largest semi-axis of each particle (its radius for a sphere).
    qinv : float64 (N, 3, 3)
        Inverse shape matrices of ellipsoids (ignored when ``spheres``).
    spheres : bool
    metric : int
        0 normalised radius, 1 surface distance, 2 sum of the two nearest surface distances.
    cutoff : float
        Scores at or above ``cutoff`` are not computed (they count as infinite): a
        normalised radius for metric 0, a distance in micrometres otherwise. This
        bounds the region scanned around each particle.
    threshold : float
        Voxels with score < threshold get ``new_label``; pass -inf to only histogram.
    voxel_size : float64 (3,)
    periodic : bool (3,)
    start, items, offset :
        Output of :func:`plane_lists` for the same particles and an extent of
        ``cutoff * bound`` (metric 0) or ``bound + cutoff`` (metrics 1, 2).
    lo, hi : float
        Histogram range; scores below ``lo`` fall in the first bin, scores from ``hi`` on are not counted.
    hist : int64 (n_chunks, n_bins), in/out
        Histogram counts, one row per chunk of planes (summed by the caller).
    bins : uint16 (nz, ny, nx), out
        With ``store_bins``, the histogram bin of every free voxel's score, and
        ``n_bins`` for free voxels scoring ``hi`` or more (``n_bins`` <= 65535); a
        caller then labels the voxels below a chosen bin with :func:`assign`
        instead of scoring them again. Not touched otherwise (pass a (1, 1, 1) array).
    store_bins : bool
    """
    nz, ny, nx = labels.shape
    n_chunks, n_bins = hist.shape
    vz, vy, vx = voxel_size[0], voxel_size[1], voxel_size[2]
    py, px = periodic[1], periodic[2]
    width = (hi - lo) / n_bins
    for c in prange(n_chunks):
        best1 = np.empty((ny, nx))
        best2 = np.empty((ny, nx))
        for k in range(c * nz // n_chunks, (c + 1) * nz // n_chunks):
            best1[:, :] = np.inf
            best2[:, :] = np.inf
            for p in range(start[k], start[k + 1]):
                i = items[p]
                dzv = offset[p]
                ext = cutoff * bound[i] if metric == 0 else bound[i] + cutoff
                rem = ext * ext - dzv * dzv
                if rem < 0.0:
                    continue
                cy = centres[i, 1]
                cx = centres[i, 2]
                ry = math.sqrt(rem)
                j0 = int(math.ceil((cy - ry) / vy - 0.5))
                j1 = int(math.floor((cy + ry) / vy - 0.5))
                if not py:
                    j0 = max(j0, 0)
                    j1 = min(j1, ny - 1)
                for ju in range(j0, j1 + 1):
                    j = ju % ny
                    dyv = (ju + 0.5) * vy - cy
                    rem2 = rem - dyv * dyv
                    if rem2 < 0.0:
                        continue
                    rx = math.sqrt(rem2)
                    i0 = int(math.ceil((cx - rx) / vx - 0.5))
                    i1 = int(math.floor((cx + rx) / vx - 0.5))
                    if not px:
                        i0 = max(i0, 0)
                        i1 = min(i1, nx - 1)
                    for iu in range(i0, i1 + 1):
                        x = iu % nx
                        if labels[k, j, x] != free:
                            continue
                        dxv = (iu + 0.5) * vx - cx
                        d = math.sqrt(dzv * dzv + dyv * dyv + dxv * dxv)
                        if spheres:
                            rho = d / radius[i]
                        else:
                            q = qinv[i]
                            rho = math.sqrt(q[0, 0] * dzv * dzv + q[1, 1] * dyv * dyv + q[2, 2] * dxv * dxv
                                            + 2.0 * (q[0, 1] * dzv * dyv + q[0, 2] * dzv * dxv + q[1, 2] * dyv * dxv))
                        if metric == 0:
                            s = rho
                        elif rho > 0.0:
                            s = d * (1.0 - 1.0 / rho)
                        else:
                            s = -bound[i]
                        if s < best1[j, x]:
                            best2[j, x] = best1[j, x]
                            best1[j, x] = s
                        elif s < best2[j, x]:
                            best2[j, x] = s
            for j in range(ny):
                for x in range(nx):
                    if labels[k, j, x] != free:
                        continue
                    s = best1[j, x] + best2[j, x] if metric == 2 else best1[j, x]
                    b = n_bins
                    if s < cutoff and s < hi:
                        b = min(int((s - lo) / width), n_bins - 1) if s > lo else 0
                        hist[c, b] += 1
                    if store_bins:
                        bins[k, j, x] = b
                    if s < cutoff and s < threshold:
                        labels[k, j, x] = new_label


@njit(parallel=True, cache=True)
def assign(labels, free, new_label, bins, below):
    """Give ``new_label`` to the free voxels whose stored bin is below ``below``; returns how many."""
    nz, ny, nx = labels.shape
    counts = np.zeros(nz, dtype=np.int64)
    for k in prange(nz):
        for j in range(ny):
            for x in range(nx):
                if labels[k, j, x] == free and bins[k, j, x] < below:
                    labels[k, j, x] = new_label
                    counts[k] += 1
    return counts.sum()
