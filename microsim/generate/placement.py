"""Laying phases into a label volume with an exact number of voxels each.

Each phase is placed by scoring the still unassigned voxels (see
:mod:`kernels.raster`) and giving the phase to the ``count`` voxels with the
lowest scores. The threshold comes from a histogram of the scores (65535
bins), so the count is met to within one bin, far below a voxel fraction of
1e-4 for the smooth score distributions here. The scan stores each voxel's bin
(2 bytes per voxel while a phase is placed), so labelling needs no second scan.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from kernels import raster

from .particles import ParticleList

#: label of voxels that no phase has claimed yet
FREE = 255
#: scores: normalised radius of the nearest particle, distance to the nearest
#: particle surface, and the sum of the distances to the two nearest surfaces
SCALE, DISTANCE, NECK = 0, 1, 2
N_BINS = (1 << 16) - 1  # bins stored as uint16; the value N_BINS marks "beyond the cutoff"
N_CHUNKS = 64


class PlacementError(ValueError):
    """A phase could not be placed as asked; the message says what to change."""


@dataclass(frozen=True)
class Placement:
    """Outcome of :func:`place`: the score threshold and the voxels given the label."""

    label: int
    metric: int
    threshold: float
    count: int
    target: int

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _kernel_arrays(particles: ParticleList):
    c = particles.centres_um
    return (c, particles.radii_um, particles.bounding_radii_um(),
            np.zeros((1, 3, 3)) if particles.spheres else particles.shape_matrices(inverse=True))


def _scan(labels, new_label, particles, metric, cutoff, threshold, voxel_size, periodic, lo, hi, bins=None):
    centres, radius, bound, qinv = _kernel_arrays(particles)
    extent = cutoff * bound if metric == SCALE else bound + cutoff
    start, items, offset = raster.plane_lists(centres[:, 0].copy(), extent, voxel_size[0], labels.shape[0],
                                              bool(periodic[0]))
    hist = np.zeros((min(N_CHUNKS, labels.shape[0]), N_BINS), dtype=np.int64)
    store = bins is not None
    raster.scan(labels, FREE, new_label, centres, radius, bound, qinv, particles.spheres, metric, float(cutoff),
                float(threshold), voxel_size, periodic, start, items, offset, float(lo), float(hi), hist,
                bins if store else np.zeros((1, 1, 1), np.uint16), store)
    return hist.sum(axis=0)


def place(labels: np.ndarray, new_label: int, particles: ParticleList, metric: int, count: int,
          voxel_size_um, periodic, cutoff: float) -> Placement:
    """Give ``new_label`` to the ``count`` free voxels with the lowest score.

    Parameters
    ----------
    labels : uint8 (nz, ny, nx), modified in place
        Unclaimed voxels hold :data:`FREE`.
    new_label : int
    particles : ParticleList
        The particles that score the voxels.
    metric : int
        :data:`SCALE`, :data:`DISTANCE` or :data:`NECK`.
    count : int
        Number of voxels to label.
    voxel_size_um, periodic : (3,)
    cutoff : float
        First guess of the largest score needed (a scale factor for SCALE, micrometres
        otherwise); it grows until ``count`` voxels score below it.
    """
    vs = np.asarray(voxel_size_um, dtype=np.float64)
    per = np.asarray(periodic, dtype=np.bool_)
    if count <= 0 or len(particles) == 0:
        return Placement(new_label, metric, -math.inf, 0, max(count, 0))
    half_box = 0.5 * min(n * d for n, d in zip(labels.shape, vs))
    bound_max = float(particles.bounding_radii_um().max())
    lo = 0.0 if metric == SCALE else -float(np.max(vs))
    bins = np.empty(labels.shape, dtype=np.uint16)
    for _ in range(12):
        hist = _scan(labels, new_label, particles, metric, cutoff, -math.inf, vs, per, lo, cutoff, bins)
        total = int(hist.sum())
        if total >= count:
            break
        reach = cutoff * bound_max if metric == SCALE else bound_max + cutoff
        if reach >= half_box:
            raise PlacementError(f"only {total} of the {count} voxels asked for lie near the particles of label "
                                 f"{new_label}; lower that phase's fraction or use more or larger particles")
        cutoff = min(cutoff * 1.5, (half_box / bound_max) if metric == SCALE else half_box - bound_max)
    else:  # pragma: no cover - the loop above always ends by break or raise
        raise PlacementError(f"could not place label {new_label}")
    cum = np.cumsum(hist)
    b = int(np.searchsorted(cum, count))  # first bin whose upper edge reaches the count
    below = int(cum[b - 1]) if b > 0 else 0
    take = b if b > 0 and count - below <= int(cum[b]) - count else b + 1
    got = int(raster.assign(labels, FREE, new_label, bins, take))
    return Placement(new_label, metric, lo + take * (cutoff - lo) / N_BINS, got, int(count))


def rasterise(particles: ParticleList, shape, voxel_size_um, scale: float = 1.0) -> np.ndarray:
    """Boolean (nz, ny, nx) mask of the voxels whose centre lies inside a particle scaled by ``scale``.

    Particles wrap around periodic axes of ``particles.periodic``.

    >>> p = ParticleList(np.array([[2.0, 2.0, 2.0]]), [1.0], [1], box_um=(4.0, 4.0, 4.0))
    >>> int(rasterise(p, (8, 8, 8), 0.5).sum())
    32
    """
    labels = np.full(tuple(shape), FREE, dtype=np.uint8)
    vs = np.broadcast_to(np.asarray(voxel_size_um, dtype=np.float64), (3,)).copy()
    cutoff = scale * 1.01 + 1e-9
    _scan(labels, 1, particles, SCALE, cutoff, scale, vs, np.asarray(particles.periodic, np.bool_), 0.0, cutoff)
    return labels == 1


def boolean_spheres(diameters_um: np.ndarray, box_um, rng: np.random.Generator) -> np.ndarray:
    """Uniformly random centres (z, y, x) for overlapping spheres (a Boolean model)."""
    return rng.random((len(diameters_um), 3)) * np.asarray(box_um, dtype=np.float64)
