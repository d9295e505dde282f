"""Connected clusters of a phase and which of them carry current across the volume."""
from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
from scipy import ndimage

from kernels.label import label_components, merge_with_offsets

from .volume import axis_index, label_counts, lookup

_STRUCTURES = {6: 1, 18: 2, 26: 3}
# Rows (dz, dy) before a row whose runs can touch it, and by how many voxels such a run
# is widened along x for the diagonal contacts (see kernels.label.label_components).
_NEIGHBOUR_ROWS = {6: ((0, -1, 0), (-1, 0, 0)),
                   18: ((0, -1, 1), (-1, 0, 1), (-1, -1, 0), (-1, 1, 0)),
                   26: ((0, -1, 1), (-1, -1, 1), (-1, 0, 1), (-1, 1, 1))}


def _structure(connectivity: int) -> np.ndarray:
    if connectivity not in _STRUCTURES:
        raise ValueError(f"connectivity {connectivity} is not 6, 18 or 26")
    return ndimage.generate_binary_structure(3, _STRUCTURES[connectivity])


def _label(mask: np.ndarray, connectivity: int):
    """Clusters of a bool mask numbered in raster order, as ``scipy.ndimage.label`` numbers them.

    The run-based numba labeller replaces scipy here because it was measured faster on
    electrode volumes (see benchmarks/bench_analysis.py); the labels are identical.
    """
    _structure(connectivity)  # raises for a connectivity other than 6, 18 or 26
    mask = np.ascontiguousarray(mask, dtype=bool)
    out = np.empty(mask.size, dtype=np.int32 if mask.size < 2**31 - 1 else np.int64)
    n = label_components(mask.reshape(-1), np.array(mask.shape, dtype=np.int64),
                         np.array(_NEIGHBOUR_ROWS[connectivity], dtype=np.int64), out, numba.get_num_threads())
    return out.reshape(mask.shape), int(n)


def _periodic_edges(lab: np.ndarray, periodic, connectivity: int):
    """Pairs of cluster labels that touch across periodic faces, with the image shift."""
    eu, ev, sh = [], [], []
    offsets = [(dz, dy, dx) for dz in (-1, 0, 1) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
               if 0 < abs(dz) + abs(dy) + abs(dx) <= _STRUCTURES[connectivity]]
    n = lab.shape
    for off in offsets:
        # A neighbour pair crosses a periodic boundary when stepping by `off` leaves the box
        # along at least one periodic axis; step into the opposite side's image there.
        crossing = [a for a in range(3) if off[a] != 0 and periodic[a]]
        if not crossing or any(off[a] != 0 and not periodic[a] and n[a] == 1 for a in range(3)):
            continue
        for mask_bits in range(1, 1 << len(crossing)):
            src, dst, shift = [slice(None)] * 3, [slice(None)] * 3, [0, 0, 0]
            ok = True
            for a in range(3):
                if off[a] == 0:
                    continue
                wraps = a in crossing and (mask_bits >> crossing.index(a)) & 1
                if wraps:
                    src[a] = slice(n[a] - 1, n[a]) if off[a] > 0 else slice(0, 1)
                    dst[a] = slice(0, 1) if off[a] > 0 else slice(n[a] - 1, n[a])
                    shift[a] = off[a]
                else:
                    if n[a] < 2:
                        ok = False
                        break
                    src[a] = slice(0, n[a] - 1) if off[a] > 0 else slice(1, n[a])
                    dst[a] = slice(1, n[a]) if off[a] > 0 else slice(0, n[a] - 1)
            if not ok:
                continue
            a_lab = lab[tuple(src)].ravel()
            b_lab = lab[tuple(dst)].ravel()
            keep = (a_lab > 0) & (b_lab > 0)
            if not keep.any():
                continue
            pairs = np.unique(np.stack([a_lab[keep], b_lab[keep]], axis=1), axis=0)
            eu.append(pairs[:, 0])
            ev.append(pairs[:, 1])
            sh.append(np.tile(np.array(shift, dtype=np.int64), (len(pairs), 1)))
    if not eu:
        return (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 3), np.int64))
    return (np.concatenate(eu).astype(np.int64), np.concatenate(ev).astype(np.int64),
            np.concatenate(sh).astype(np.int64))


def label_clusters(mask: np.ndarray, connectivity: int = 6, periodic=(False, False, False)):
    """Label the connected clusters of ``mask``, joining clusters across periodic faces.

    Parameters
    ----------
    mask : bool array (z, y, x)
    connectivity : 6, 18 or 26
        Face, face+edge, or face+edge+corner neighbours.
    periodic : three bools
        Axes (z, y, x) along which the volume repeats.

    Returns
    -------
    labels : int32 array
        0 outside ``mask``, clusters numbered from 1.
    n : int
        Number of clusters.
    winds : bool array (n + 1, 3)
        ``winds[c, a]``: cluster c joins its own periodic image along axis a, i.e. it
        spans the periodic tiling in that direction.

    Examples
    --------
    >>> m = np.zeros((1, 1, 5), bool); m[0, 0, [0, 1, 4]] = True
    >>> lab, n, w = label_clusters(m, periodic=(False, False, True))
    >>> n, lab.tolist()
    (1, [[[1, 1, 0, 0, 1]]])
    """
    mask = np.asarray(mask, dtype=bool)
    lab, n = _label(mask, connectivity)
    winds = np.zeros((n + 1, 3), dtype=bool)
    periodic = tuple(bool(p) for p in periodic)
    if n == 0 or not any(periodic):
        return lab, n, winds
    eu, ev, sh = _periodic_edges(lab, periodic, connectivity)
    if len(eu) == 0:
        return lab, n, winds
    root, w = merge_with_offsets(n + 1, eu, ev, sh)
    roots, compact = np.unique(root[1:], return_inverse=True)
    relabel = np.zeros(n + 1, dtype=np.int32)
    relabel[1:] = compact.astype(np.int32) + 1
    lab = lookup(relabel, lab, lab)
    winds = np.zeros((len(roots) + 1, 3), dtype=bool)
    winds[1:] = w[roots]
    return lab, len(roots), winds


@dataclass(frozen=True)
class PercolationResult:
    """Which voxels of a phase connect the two faces normal to a direction.

    Attributes
    ----------
    percolating : bool array
        Voxels of clusters that touch both faces (or, for a periodic cell, that span
        the periodic tiling along the direction).
    fraction_percolating, fraction_dead_end, fraction_isolated : float
        Shares of the phase volume; dead-end clusters touch one face only, isolated
        clusters neither. They sum to 1 (all 0 for an empty phase).
    volume_fraction : float
        Phase volume over total volume.
    percolating_volume_fraction : float
        Percolating volume over total volume.
    n_clusters : int
    """

    direction: str
    percolating: np.ndarray
    volume_fraction: float
    percolating_volume_fraction: float
    fraction_percolating: float
    fraction_dead_end: float
    fraction_isolated: float
    n_clusters: int

    @property
    def percolates(self) -> bool:
        return self.fraction_percolating > 0

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("direction", "volume_fraction", "percolating_volume_fraction",
                                              "fraction_percolating", "fraction_dead_end", "fraction_isolated",
                                              "n_clusters")} | {"percolates": self.percolates}


def percolation(mask: np.ndarray, direction: str, connectivity: int = 6, periodic_sides: bool = False,
                periodic_direction: bool = False) -> PercolationResult:
    """Classify the voxels of ``mask`` as percolating, dead-end or isolated along ``direction``.

    Parameters
    ----------
    mask : bool array (z, y, x)
        The phase (or union of phases) to test.
    direction : 'x', 'y' or 'z'
    connectivity : 6, 18 or 26
    periodic_sides : bool
        Treat the two axes normal to ``direction`` as periodic.
    periodic_direction : bool
        Periodic along ``direction`` too (the homogenisation cell problem): then a
        cluster percolates when it joins its own periodic image along ``direction``,
        and no cluster is dead-end.

    Examples
    --------
    >>> m = np.zeros((3, 3, 6), bool); m[1, 1, :] = True; m[0, 0, :2] = True
    >>> r = percolation(m, "x")
    >>> round(r.fraction_percolating, 3), round(r.fraction_dead_end, 3)
    (0.75, 0.25)
    """
    axis = axis_index(direction)
    mask = np.asarray(mask, dtype=bool)
    periodic = [periodic_sides] * 3
    periodic[axis] = periodic_direction
    lab, n, winds = label_clusters(mask, connectivity, periodic)
    total = mask.sum()
    if periodic_direction:
        perc_ids = np.flatnonzero(winds[:, axis])
        dead_ids = np.zeros(0, dtype=np.int64)
    else:
        first = np.unique(np.take(lab, 0, axis=axis))
        last = np.unique(np.take(lab, -1, axis=axis))
        first, last = first[first > 0], last[last > 0]
        perc_ids = np.intersect1d(first, last)
        dead_ids = np.setxor1d(first, last)
    keep = np.zeros(n + 1, dtype=bool)
    keep[perc_ids] = True
    perc = lookup(keep, lab)
    counts = label_counts(lab, n + 1)
    n_perc = int(counts[perc_ids].sum())
    n_dead = int(counts[dead_ids].sum())
    denom = max(int(total), 1)
    return PercolationResult(
        direction=direction if isinstance(direction, str) else "zyx"[axis],
        percolating=perc,
        volume_fraction=float(total) / mask.size,
        percolating_volume_fraction=n_perc / mask.size,
        fraction_percolating=n_perc / denom,
        fraction_dead_end=n_dead / denom,
        fraction_isolated=(int(total) - n_perc - n_dead) / denom if total else 0.0,
        n_clusters=int(n),
    )
