"""Percolation of a phase split into slabs: local labelling, then one merge of the boundary clusters.

Each rank labels the clusters of its own slab (face connectivity, no periodic
joins). A cluster that touches none of the six faces of the slab can neither
reach another slab, nor a face of the volume, nor its own periodic image: it is
isolated, whatever the other ranks hold. Only the *boundary clusters* take part
in the global step. Each rank numbers its boundary clusters globally and lists
the pairs of them that touch

* across the plane between its slab and the next one (the next rank's first
  plane arrives by message),
* across the periodic y and x faces, and across the z wrap from the last rank
  to the first when z is periodic (with the image shift of the crossing),

and which of them touch the inlet and outlet faces. Rank 0 merges these pairs
with :func:`kernels.label.merge_with_offsets` (the union-find that the
single-process :func:`microsim.percolation.label_clusters` uses for periodic
faces, which also tells whether a merged cluster joins its own periodic image)
and sends every rank one flag per boundary cluster. The result equals the
single-process :func:`microsim.percolation.percolation` exactly; rank 0 holds
only the boundary clusters, a number bounded by the slab surfaces.
"""
from __future__ import annotations

import numpy as np

from kernels.label import merge_with_offsets

from ..percolation import PercolationResult, label_clusters
from ..volume import axis_index, label_counts, lookup
from .world import Slab, World


def _pairs(a: np.ndarray, b: np.ndarray, shift) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct pairs of global ids (a, b) of touching voxels, both in boundary clusters."""
    a, b = a.ravel(), b.ravel()
    both = (a >= 0) & (b >= 0)
    if not both.any():
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 3), np.int64)
    pairs = np.unique(np.stack([a[both], b[both]], axis=1), axis=0)
    return pairs[:, 0], pairs[:, 1], np.tile(np.asarray(shift, np.int64), (len(pairs), 1))


def _ids(*planes) -> np.ndarray:
    out = np.unique(np.concatenate([p.ravel() for p in planes]))
    return out[out >= 0]


def slab_percolation(world: World, slab: Slab, mask: np.ndarray, direction: str, periodic_sides: bool = False,
                     periodic_direction: bool = False) -> PercolationResult:
    """Classify the voxels of a distributed phase as percolating, dead-end or isolated.

    Parameters
    ----------
    world : World
    slab : Slab
        This rank's planes of the volume.
    mask : bool array (slab.n, ny, nx)
        This rank's planes of the phase.
    direction, periodic_sides, periodic_direction
        As for :func:`microsim.percolation.percolation` (face connectivity).

    Returns
    -------
    PercolationResult
        ``percolating`` holds this rank's planes only; the fractions and
        ``n_clusters`` are those of the whole volume, the same on every rank.

    Example (under ``mpiexec -n 2``)::

        r = slab_percolation(world, slab, labels == 1, "z")
    """
    axis = axis_index(direction)
    periodic = [periodic_sides] * 3
    periodic[axis] = periodic_direction
    with world.step():
        mask = np.asarray(mask, dtype=bool)
        if mask.shape[0] != slab.n:
            raise ValueError(f"mask has {mask.shape[0]} planes but the slab has {slab.n}")
        lab, n, _ = label_clusters(mask, 6)
        boundary = np.unique(np.concatenate([lab[0].ravel(), lab[-1].ravel(), lab[:, 0].ravel(),
                                             lab[:, -1].ravel(), lab[:, :, 0].ravel(), lab[:, :, -1].ravel()]))
        boundary = boundary[boundary > 0]
    sizes = world.comm.allgather(len(boundary))
    offset = sum(sizes[:world.rank])
    with world.step():
        gid = np.full(n + 1, -1, dtype=np.int64)
        gid[boundary] = offset + np.arange(len(boundary))
        edges = []
        if periodic[1]:
            edges.append(_pairs(gid[lab[:, -1, :]], gid[lab[:, 0, :]], (0, 1, 0)))
        if periodic[2]:
            edges.append(_pairs(gid[lab[:, :, -1]], gid[lab[:, :, 0]], (0, 0, 1)))
        mine_first = np.ascontiguousarray(gid[lab[0]])
        next_first = np.full_like(mine_first, -1)
    below, above = world.neighbours(periodic[0])
    world.comm.Sendrecv(mine_first, dest=below, sendtag=21, recvbuf=next_first, source=above, recvtag=21)
    with world.step():
        wraps = periodic[0] and slab.last
        edges.append(_pairs(gid[lab[-1]], next_first, (1 if wraps else 0, 0, 0)))
        faces = (np.zeros(0, np.int64), np.zeros(0, np.int64))
        if not periodic_direction:
            if axis == 0:
                faces = (_ids(gid[lab[0]]) if slab.first else faces[0], _ids(gid[lab[-1]]) if slab.last else faces[1])
            else:
                faces = (_ids(gid[np.take(lab, 0, axis=axis)]), _ids(gid[np.take(lab, -1, axis=axis)]))
        local = (np.concatenate([e[0] for e in edges]), np.concatenate([e[1] for e in edges]),
                 np.concatenate([e[2] for e in edges]), faces[0], faces[1])
    gathered = world.comm.gather(local, root=0)
    flags = None
    with world.step():
        if world.rank == 0:
            n_nodes = sum(sizes)
            eu, ev, sh, inlet, outlet = (np.concatenate([g[i] for g in gathered]) for i in range(5))
            root, winds = merge_with_offsets(n_nodes, eu, ev, sh.reshape(-1, 3))
            if periodic_direction:
                keep = winds[:, axis].copy()
                dead = np.zeros(n_nodes, dtype=bool)
            else:
                r_in, r_out = np.unique(root[inlet]), np.unique(root[outlet])
                keep = np.isin(root, np.intersect1d(r_in, r_out))
                dead = np.isin(root, np.setxor1d(r_in, r_out))
            starts = np.cumsum([0] + sizes)
            n_merged = len(np.unique(root))
            flags = [(keep[starts[r]:starts[r + 1]], dead[starts[r]:starts[r + 1]], n_merged)
                     for r in range(world.size)]
    keep_b, dead_b, n_merged = world.comm.scatter(flags, root=0)
    with world.step():
        keep = np.zeros(n + 1, dtype=bool)
        dead = np.zeros(n + 1, dtype=bool)
        keep[boundary] = keep_b
        dead[boundary] = dead_b
        size_of = label_counts(lab, n + 1)
        local_counts = np.array([mask.size, int(size_of[1:].sum()), int(size_of[keep].sum()),
                                 int(size_of[dead].sum()), n - len(boundary)], dtype=np.int64)
        percolating = lookup(keep, lab)
    total, phase, n_perc, n_dead, interior_clusters = world.counts(local_counts)
    denom = max(int(phase), 1)
    return PercolationResult(
        direction=direction if isinstance(direction, str) else "zyx"[axis],
        percolating=percolating,
        volume_fraction=float(phase) / total,
        percolating_volume_fraction=float(n_perc) / total,
        fraction_percolating=float(n_perc) / denom,
        fraction_dead_end=float(n_dead) / denom,
        fraction_isolated=float(phase - n_perc - n_dead) / denom if phase else 0.0,
        n_clusters=int(n_merged + interior_clusters),
    )
