"""Kernels on triangle meshes from marching cubes."""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def relax_on_edges(verts, faces, spacing, iterations, margin):
    """Smooth a marching-cubes mesh of a 0/1 field, each vertex sliding along its own grid edge.

    Parameters
    ----------
    verts : float array (V, 3)
        Vertex positions in voxel index units, as marching cubes at level 0.5 of a
        0/1 field returns them: each half way along one grid edge.
    faces : int array (F, 3)
        Triangles as vertex indices.
    spacing : float64 array (3,)
        Voxel size per axis.
    iterations : int
        Rounds of: set each vertex's coordinate along its edge to the mean, over
        its triangles, of the other two corners; clip it to the edge shortened by
        ``margin`` (in voxels) at both ends.
    margin : float
        Closest approach to a voxel centre, in voxels (0 <= margin < 0.5).

    Returns
    -------
    points : float64 array (V, 3)
        Relaxed positions in the units of ``spacing``.
    """
    n = verts.shape[0]
    points = np.empty((n, 3))
    axis = np.empty(n, dtype=np.int64)
    lo = np.empty(n)
    hi = np.empty(n)
    for v in range(n):
        best = 0
        frac_best = -1.0
        for a in range(3):
            x = verts[v, a]
            frac = abs(x - np.floor(x + 0.5))
            if frac > frac_best:
                frac_best = frac
                best = a
            points[v, a] = x * spacing[a]
        axis[v] = best
        base = np.floor(verts[v, best])
        lo[v] = (base + margin) * spacing[best]
        hi[v] = (base + 1.0 - margin) * spacing[best]
    weight = np.zeros(n)
    for f in range(faces.shape[0]):
        for k in range(3):
            weight[faces[f, k]] += 2.0
    acc = np.zeros(n)
    for _ in range(iterations):
        acc[:] = 0.0
        for f in range(faces.shape[0]):
            a = faces[f, 0]
            b = faces[f, 1]
            c = faces[f, 2]
            acc[a] += points[b, axis[a]] + points[c, axis[a]]
            acc[b] += points[a, axis[b]] + points[c, axis[b]]
            acc[c] += points[a, axis[c]] + points[b, axis[c]]
        for v in range(n):
            if weight[v] > 0.0:
                points[v, axis[v]] = min(max(acc[v] / weight[v], lo[v]), hi[v])
    return points


@njit(cache=True)
def area_in_box(points, faces, spacing, shape, pad):
    """Total triangle area, with triangles outside the box counted half per axis.

    ``points`` are in the units of ``spacing``; the box spans voxel index
    coordinates pad .. pad + shape[a] - 1 on axis a (``pad`` ghost layers lie in
    front of it). A triangle whose centroid lies in a ghost layer along an axis
    counts half for that axis: a surface crossing a box face at a right angle is
    then cut exactly at the face, half a voxel beyond the last voxel centre.
    """
    total = 0.0
    for f in range(faces.shape[0]):
        a = faces[f, 0]
        b = faces[f, 1]
        c = faces[f, 2]
        ux = points[b, 0] - points[a, 0]
        uy = points[b, 1] - points[a, 1]
        uz = points[b, 2] - points[a, 2]
        vx = points[c, 0] - points[a, 0]
        vy = points[c, 1] - points[a, 1]
        vz = points[c, 2] - points[a, 2]
        cx = uy * vz - uz * vy
        cy = uz * vx - ux * vz
        cz = ux * vy - uy * vx
        area = 0.5 * np.sqrt(cx * cx + cy * cy + cz * cz)
        for k in range(3):
            centre = (points[a, k] + points[b, k] + points[c, k]) / (3.0 * spacing[k]) - pad
            if centre < 0.0 or centre > shape[k] - 1:
                area *= 0.5
        total += area
    return total
