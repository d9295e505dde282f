"""Percolation classes and cluster-size statistics of a phase or a union of phases.

Every voxel of the selected phases belongs to one connected cluster. Along a
direction a cluster is *percolating* when it touches both faces normal to that
direction, *dead-end* when it touches one of them and *isolated* when it
touches neither; the volume shares of the three classes sum to 1. Clusters are
labelled once and classified for every direction from that one labelling.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from ..arrays import as_volume
from ..percolation import label_clusters
from ..volume import Volume, axis_index, directions as parse_directions
from .fractions import phase_set, union_name


def touching(lab: np.ndarray, n: int, axis: int, side: int) -> np.ndarray:
    """Bool array (n + 1,): which cluster labels of ``lab`` occur on one face.

    ``side`` is 0 for the first layer along ``axis`` and -1 for the last; entry 0
    (background) is always False.
    """
    hit = np.zeros(n + 1, dtype=bool)
    hit[np.take(lab, side, axis=axis)] = True
    hit[0] = False
    return hit


@dataclass(frozen=True)
class ClusterSizeStats:
    """How the voxels of a phase split into connected clusters.

    Attributes
    ----------
    n_clusters : int
    n_voxels : int
        Voxels of the phase.
    largest_voxels : int
        Size of the largest cluster.
    largest_fraction : float
        Largest cluster over the phase volume (1 = one connected network).
    mean_voxels : float
        Number-average cluster size.
    weighted_mean_voxels : float
        Volume-weighted mean size sum(s^2) / sum(s): the size of the cluster a random
        voxel of the phase belongs to, on average.
    voxel_volume_um3 : float
        Volume of one voxel, to turn sizes into cubic micrometres.
    histogram_edges_voxels : tuple of int
        Bin edges 1, 2, 4, 8, ... (a bin holds sizes edge_k <= s < edge_k+1).
    histogram_counts : tuple of int
        Number of clusters per bin.
    histogram_volume_fraction : tuple of float
        Share of the phase volume held by the clusters of each bin.
    sizes_voxels : int64 array
        Size of every cluster (label 1 first); not written by :meth:`to_dict`.
    """

    n_clusters: int
    n_voxels: int
    largest_voxels: int
    largest_fraction: float
    mean_voxels: float
    weighted_mean_voxels: float
    voxel_volume_um3: float
    histogram_edges_voxels: tuple
    histogram_counts: tuple
    histogram_volume_fraction: tuple
    sizes_voxels: np.ndarray = field(repr=False, default=None)

    @property
    def largest_um3(self) -> float:
        return self.largest_voxels * self.voxel_volume_um3

    @property
    def mean_um3(self) -> float:
        return self.mean_voxels * self.voxel_volume_um3

    def to_dict(self) -> dict:
        keys = ("n_clusters", "n_voxels", "largest_voxels", "largest_fraction", "mean_voxels",
                "weighted_mean_voxels", "voxel_volume_um3", "largest_um3", "mean_um3")
        d = {k: getattr(self, k) for k in keys}
        d["histogram"] = {"edges_voxels": list(self.histogram_edges_voxels),
                          "counts": list(self.histogram_counts),
                          "volume_fraction": list(self.histogram_volume_fraction)}
        return d


def cluster_size_stats(sizes_voxels: np.ndarray, voxel_volume_um3: float = 1.0) -> ClusterSizeStats:
    """Statistics of a list of cluster sizes (voxels).

    >>> s = cluster_size_stats(np.array([1, 1, 6]))
    >>> s.n_clusters, s.largest_fraction, s.mean_voxels, s.weighted_mean_voxels
    (3, 0.75, 2.6666666666666665, 4.75)
    """
    sizes = np.asarray(sizes_voxels, dtype=np.int64)
    total = int(sizes.sum())
    n = int(sizes.size)
    largest = int(sizes.max()) if n else 0
    top = max(largest, 1)
    edges = 2 ** np.arange(int(np.floor(np.log2(top))) + 2, dtype=np.int64)
    which = np.searchsorted(edges, sizes, side="right") - 1
    counts = np.bincount(which, minlength=len(edges) - 1)[:len(edges) - 1]
    vol = np.bincount(which, weights=sizes.astype(np.float64), minlength=len(edges) - 1)[:len(edges) - 1]
    return ClusterSizeStats(
        n_clusters=n, n_voxels=total, largest_voxels=largest,
        largest_fraction=largest / total if total else 0.0,
        mean_voxels=total / n if n else 0.0,
        weighted_mean_voxels=float((sizes.astype(np.float64) ** 2).sum() / total) if total else 0.0,
        voxel_volume_um3=float(voxel_volume_um3),
        histogram_edges_voxels=tuple(int(e) for e in edges),
        histogram_counts=tuple(int(c) for c in counts),
        histogram_volume_fraction=tuple(float(v) / total if total else 0.0 for v in vol),
        sizes_voxels=sizes)


@dataclass(frozen=True)
class DirectionPercolation:
    """Percolation classes of one phase selection along one direction.

    The three fractions are shares of the selection's volume and sum to 1 (all 0
    for an empty selection); the counts are numbers of clusters.
    """

    direction: str
    fraction_percolating: float
    fraction_dead_end: float
    fraction_isolated: float
    n_percolating: int
    n_dead_end: int
    n_isolated: int

    @property
    def percolates(self) -> bool:
        return self.n_percolating > 0

    def to_dict(self) -> dict:
        return dict(self.__dict__) | {"percolates": self.percolates}


@dataclass(frozen=True)
class ClusterPercolation:
    """Percolation of a mask (a phase or a union of phases) in several directions.

    Attributes
    ----------
    name : str
        The selection, e.g. ``"NMC+CBD"`` (``"mask"`` for a bare array).
    connectivity : int
        6, 18 or 26.
    volume_fraction : float
        Selection volume over the whole volume.
    directions : tuple of DirectionPercolation
    clusters : ClusterSizeStats
    labels : int array or None
        The cluster labels (0 outside the selection), kept when asked for.
    """

    name: str
    connectivity: int
    volume_fraction: float
    directions: tuple
    clusters: ClusterSizeStats
    labels: np.ndarray | None = field(default=None, repr=False)

    def get(self, direction: str) -> DirectionPercolation:
        for d in self.directions:
            if d.direction == direction:
                return d
        raise KeyError(f"no percolation result for direction {direction!r}")

    def to_dict(self) -> dict:
        return {"name": self.name, "connectivity": self.connectivity, "volume_fraction": self.volume_fraction,
                "directions": {d.direction: d.to_dict() for d in self.directions},
                "clusters": self.clusters.to_dict()}


def cluster_percolation(mask: np.ndarray, directions: str | Sequence[str] = "all", connectivity: int = 6,
                        voxel_size_um=(1.0, 1.0, 1.0), name: str = "mask",
                        keep_labels: bool = False) -> ClusterPercolation:
    """Percolating, dead-end and isolated shares of a mask along each direction, and its cluster sizes.

    Parameters
    ----------
    mask : bool array (z, y, x)
    directions : 'all', 'x', 'y', 'z' or a list
    connectivity : 6, 18 or 26
        Face, face+edge or face+edge+corner neighbours.
    voxel_size_um : (dz, dy, dx)
        Only used to express cluster volumes in cubic micrometres.
    name : str
        Label of the selection in the result.
    keep_labels : bool
        Keep the cluster label array in the result.

    Examples
    --------
    A straight channel along x (6 voxels), a stub from the x = 0 face (2 voxels)
    and an isolated voxel:

    >>> m = np.zeros((5, 5, 6), bool)
    >>> m[2, 2, :] = True; m[0, 0, 0:2] = True; m[4, 0, 3] = True
    >>> d = cluster_percolation(m, "x").get("x")
    >>> d.fraction_percolating, d.fraction_dead_end, d.fraction_isolated
    (0.6666666666666666, 0.2222222222222222, 0.1111111111111111)
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 3:
        raise ValueError(f"mask has {mask.ndim} dimensions; give a 3D (z, y, x) array")
    lab, n, _ = label_clusters(mask, connectivity)
    sizes = np.bincount(lab.ravel(), minlength=n + 1)
    total = int(sizes[1:].sum())
    out = []
    for d in parse_directions(directions):
        axis = axis_index(d)
        first = touching(lab, n, axis, 0)
        last = touching(lab, n, axis, -1)
        perc = first & last
        dead = first ^ last
        iso = ~(first | last)
        iso[0] = False
        n_perc, n_dead = int(sizes[perc].sum()), int(sizes[dead].sum())
        denom = max(total, 1)
        out.append(DirectionPercolation(
            direction=d, fraction_percolating=n_perc / denom, fraction_dead_end=n_dead / denom,
            fraction_isolated=(total - n_perc - n_dead) / denom,
            n_percolating=int(perc.sum()), n_dead_end=int(dead.sum()), n_isolated=int(iso.sum())))
    vz, vy, vx = voxel_size_um
    stats = cluster_size_stats(sizes[1:], vz * vy * vx)
    return ClusterPercolation(name, int(connectivity), total / mask.size, tuple(out), stats,
                              lab if keep_labels else None)


def phase_percolation(volume, phases: str | Iterable[str] | None = None, directions: str | Sequence[str] = "all",
                      connectivity: int = 6, keep_labels: bool = False, *, voxel_size_um=None,
                      axes: str = "zyx") -> ClusterPercolation:
    """:func:`cluster_percolation` of one phase or a union of phases of a volume.

    Parameters
    ----------
    volume : Volume or numpy array
        A boolean array (True = the phase) works too, with ``voxel_size_um`` and
        ``axes`` as in :func:`microsim.arrays.as_volume`.
    phases : str or list of str, optional
        A phase name, a union such as ``"NMC+CBD"`` (the electron-conducting network),
        or a list of names; by default every phase that conducts either carrier.

    Examples
    --------
    >>> from microsim import Volume
    >>> lab = np.zeros((4, 4, 4), np.uint8); lab[:, 1, 1] = 1
    >>> v = Volume(lab, {"SE": {"label": 0}, "NMC": {"label": 1}})
    >>> r = phase_percolation(v, "NMC")
    >>> r.get("z").fraction_percolating, r.get("x").fraction_isolated
    (1.0, 1.0)
    """
    volume = as_volume(volume, voxel_size_um=voxel_size_um, axes=axes)
    if phases is None:
        phases = [p.name for p in volume.phases if p.sigma_ionic_S_per_m > 0 or p.sigma_electronic_S_per_m > 0]
        if not phases:
            raise ValueError("no phase of the volume conducts; name the phases to test, e.g. phases='NMC'")
    names = phase_set(volume, phases)
    return cluster_percolation(volume.mask(names), directions, connectivity, volume.voxel_size_um,
                               union_name(names), keep_labels)
