"""Dense random packings of spheres and spheroids without overlaps.

Random sequential addition stalls near 38 vol %; composite cathodes hold 50-75
vol % active material. :func:`pack` reaches such fractions by collective
rearrangement (see :mod:`kernels.packing`): particles start small at random
positions, repeatedly push their neighbours apart and grow until they have
their full size and no overlap deeper than the tolerance remains.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import numba
import numpy as np

from kernels import packing as kp

#: fraction of the box the particles fill when the packing starts (they start smaller if
#: the target is higher); starting dense saves growth steps, FIRE removes the overlaps quickly
START_FRACTION = 0.55
#: sweeps per call of the compiled packing loop (between two progress reports)
CHUNK_SWEEPS = 200
#: below this many particles a sweep is too short for threads to pay (their start-up and
#: waiting, worst on a busy machine, exceed the work), so small packings run on one thread
SERIAL_BELOW = 2000
#: size ratio between neighbouring size classes of the cell lists, and cell edge over typical pair reach
LEVEL_FACTOR = 2.0
CELL_FACTOR = 1.0


class PackingError(ValueError):
    """The particles could not be packed as asked; the message says what to change."""


@dataclass(frozen=True, eq=False)
class Packing:
    """Result of :func:`pack`.

    Attributes
    ----------
    centres_um : float64 (N, 3)
        Particle centres (z, y, x) in micrometres, inside the box.
    fraction : float
        Volume of the particles over the volume of the box.
    max_overlap : float
        Largest overlap depth as a fraction of the smaller diameter of the pair
        (walls count as a pair partner), below ``tolerance``.
    sweeps : int
        Relaxation sweeps used.
    time_s : float
        Wall-clock time.
    """

    centres_um: np.ndarray
    radii_um: np.ndarray
    box_um: tuple[float, float, float]
    periodic: tuple[bool, bool, bool]
    fraction: float
    max_overlap: float
    tolerance: float
    sweeps: int
    time_s: float

    def to_dict(self) -> dict:
        return {"count": int(self.radii_um.size), "box_um": list(self.box_um), "periodic": list(self.periodic),
                "fraction": self.fraction, "max_overlap": self.max_overlap, "tolerance": self.tolerance,
                "sweeps": self.sweeps, "time_s": self.time_s}


def _levels(bound: np.ndarray, factor: float = 2.0, max_levels: int = 6):
    """Size classes ``factor`` apart, each with its own cell grid.

    Returns the class of each particle and, per class, the largest bounding
    radius, the wanted cell edge and the particle count. The cell edge is the
    reach of a typical pair of the class (median plus largest radius) rather
    than the largest diameter: with a spread of sizes inside a class this
    halves the pairs examined.
    """
    level = np.minimum(np.floor(np.log(bound.max() / bound) / math.log(factor)).astype(np.int64), max_levels - 1)
    used = np.unique(level)
    level = np.searchsorted(used, level).astype(np.int64)
    rmax = np.array([bound[level == b].max() for b in range(used.size)])
    cell = np.array([CELL_FACTOR * (bound[level == b].max() + np.median(bound[level == b]))
                     for b in range(used.size)])
    count = np.array([np.count_nonzero(level == b) for b in range(used.size)], dtype=np.float64)
    return level, rmax, cell, count


def pack(radii_um, box_um, periodic=True, *, shape_q: np.ndarray | None = None, tolerance: float = 0.01,
         seed: int | np.random.Generator = 0, compaction: float = 0.0, compaction_axis: int = 0,
         max_sweeps: int = 200000, progress: Callable[[int, float, float], None] | None = None) -> Packing:
    """Pack particles of the given sizes into a box without overlaps beyond ``tolerance``.

    Parameters
    ----------
    radii_um : array (N,)
        Volume-equivalent radii in micrometres.
    box_um : (3,) floats
        Box edges (z, y, x) in micrometres; at least twice the largest particle along periodic axes.
    periodic : bool or (3,) bools
        Periodic axes; the others are flat walls.
    shape_q : float64 (N, 3, 3), optional
        Shape matrices ``R diag(a^2) R^T`` of ellipsoids (see
        :meth:`ParticleList.shape_matrices`); spheres when omitted.
    tolerance : float
        Largest allowed overlap depth as a fraction of the smaller diameter of a pair.
    seed : int or numpy Generator
        Start positions.
    compaction : float
        Uniaxial compaction strain 0..0.5: the particles are first packed in a box
        taller by 1/(1 - compaction) along ``compaction_axis`` and then pressed to the final height.
    max_sweeps : int
        Give up with :class:`PackingError` after this many sweeps.
    progress : callable(sweeps, scale, max_overlap), optional
        Called every few hundred sweeps.

    Returns
    -------
    Packing

    Examples
    --------
    >>> p = pack(np.full(200, 0.5), (6.0, 6.0, 6.0), seed=1)
    >>> p.fraction > 0.48 and p.max_overlap < 0.01
    True
    """
    t0 = time.perf_counter()
    r = np.ascontiguousarray(radii_um, dtype=np.float64)
    box = np.asarray(box_um, dtype=np.float64)
    per = np.broadcast_to(np.asarray(periodic, dtype=np.bool_), (3,)).copy()
    n = r.size
    if n == 0:
        return Packing(np.zeros((0, 3)), r, tuple(box), tuple(per), 0.0, 0.0, tolerance, 0, 0.0)
    if not np.all(r > 0):
        raise PackingError("all particle radii must be > 0")
    spheres = shape_q is None
    q = np.zeros((1, 3, 3)) if spheres else np.ascontiguousarray(shape_q, dtype=np.float64)
    bound = r.copy() if spheres else np.sqrt(np.linalg.eigvalsh(q)[:, -1])
    if 4.0 * bound.max() > box.min():
        raise PackingError(f"the largest particle ({2 * bound.max():.3g} um across) needs a box at least twice its "
                           f"size; the box is {box.min():.3g} um; enlarge the domain")
    fraction = float(4.0 / 3.0 * math.pi * np.sum(r**3) / np.prod(box))
    if fraction >= 0.8:
        raise PackingError(f"particles fill {fraction:.3f} of the box; rigid particles cannot exceed about 0.7")
    axis = int(compaction_axis) if compaction > 0 else -1
    start_box = box.copy()
    if axis >= 0:
        start_box[axis] = box[axis] / (1.0 - compaction)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    pos = rng.random((n, 3)) * start_box
    # Particles move only a few radii while packing: ordering them along z, y, x once keeps
    # neighbours close in memory. The caller's order is restored at the end.
    cells = np.floor(pos / (start_box / max(1.0, n ** (1.0 / 3.0)))).astype(np.int64)
    order = np.lexsort((cells[:, 2], cells[:, 1], cells[:, 0]))
    pos = np.ascontiguousarray(pos[order])
    r_in = r
    r = np.ascontiguousarray(r[order])
    bound = np.ascontiguousarray(bound[order])
    if not spheres:
        q = np.ascontiguousarray(q[order])
    level, rmax, cell, count = _levels(bound, LEVEL_FACTOR)
    start_fraction = fraction * np.prod(box) / np.prod(start_box)
    state = np.zeros(10)
    state[0] = min(1.0, (START_FRACTION / start_fraction) ** (1.0 / 3.0))
    state[1:4] = start_box
    state[4] = 0.005
    state[8] = 1.0
    state[9] = 0.1
    vel = np.zeros((n, 3))
    done = 0
    threads = numba.get_num_threads()
    if n < SERIAL_BELOW:
        numba.set_num_threads(1)  # the result does not depend on the number of threads
    try:
        while not done:
            done = kp.pack(pos, vel, r, bound, q, spheres, level, rmax, cell, count, box, per, state,
                           float(tolerance), axis, CHUNK_SWEEPS)
            if progress is not None:
                progress(int(state[6]), float(state[0]), float(state[7]))
            if not done and state[6] >= max_sweeps:
                reached = fraction * state[0] ** 3 * np.prod(box) / np.prod(state[1:4])
                raise PackingError(f"packing {n} particles to {fraction:.3f} stalled at {reached:.3f} after "
                                   f"{int(state[6])} sweeps; lower the fraction, widen the size distribution or "
                                   f"raise packing.tolerance / packing.max_sweeps")
    finally:
        numba.set_num_threads(threads)
    centres = np.empty_like(pos)
    centres[order] = pos
    return Packing(centres, r_in, tuple(float(b) for b in box), tuple(bool(p) for p in per), fraction,
                   float(state[7]), float(tolerance), int(state[6]), time.perf_counter() - t0)


def overlaps(centres_um, radii_um, box_um, periodic=True, shape_q: np.ndarray | None = None) -> np.ndarray:
    """Relative overlap (depth / smaller diameter) of every overlapping pair, found with a k-d tree.

    An independent check of :func:`pack`: it uses scipy's periodic k-d tree for the
    neighbour search and, for ellipsoids, the Perram-Wertheim contact function.
    Walls are not included.

    Returns
    -------
    float64 (M, 3): rows (i, j, relative overlap) with i < j.
    """
    from scipy.spatial import cKDTree

    c = np.asarray(centres_um, dtype=np.float64)
    r = np.asarray(radii_um, dtype=np.float64)
    box = np.asarray(box_um, dtype=np.float64)
    per = np.broadcast_to(np.asarray(periodic, dtype=bool), (3,))
    if c.shape[0] < 2:
        return np.zeros((0, 3))
    bound = r if shape_q is None else np.sqrt(np.linalg.eigvalsh(shape_q)[:, -1])
    if per.all():
        tree = cKDTree(np.mod(c, box), boxsize=box)
    elif not per.any():
        tree = cKDTree(c)
    else:
        raise ValueError("overlaps() supports all-periodic or all-walled boxes")
    pairs = tree.query_pairs(2.0 * bound.max(), output_type="ndarray")
    if pairs.size == 0:
        return np.zeros((0, 3))
    i, j = pairs[:, 0], pairs[:, 1]
    v = c[i] - c[j]
    if per.all():
        v -= box * np.round(v / box)
    d = np.linalg.norm(v, axis=1)
    if shape_q is None:
        mu = d / (r[i] + r[j])
    else:
        normal = np.empty(3)
        mu = np.array([math.sqrt(kp.contact_function(v[k], shape_q[i[k]], shape_q[j[k]], normal))
                       for k in range(len(i))])
    hit = mu < 1.0
    depth = d[hit] * (1.0 / np.maximum(mu[hit], 1e-12) - 1.0)
    rel = depth / (2.0 * np.minimum(r[i[hit]], r[j[hit]]))
    return np.column_stack([i[hit], j[hit], rel])
