"""Particle-size distribution of a phase.

Three estimates, chosen with ``method``:

* ``"particles"``: the particle list of a generated volume (``Volume.particles``,
  with ``radii_um`` and ``phase``): exact diameters of the placed particles
  (volume-equivalent diameters for ellipsoids given by three semi-axes).
* ``"local_thickness"``: the continuous size distribution. Each voxel of the
  phase gets the diameter of the largest ball that fits in the phase and
  contains it (Hildebrand and Ruegsegger's local thickness). It needs no
  particle segmentation and is volume-weighted by nature; touching particles
  are not separated, necks between them count as small sizes. Ball radii are
  the Euclidean distance from a voxel centre to the nearest voxel centre
  outside the phase, resolved on ``n_bins`` levels. For a digitised sphere this
  is within a fraction of a voxel of its radius (the lattice points just outside
  a curved surface lie close to it); a flat layer of n voxels reads as n + 1.
* ``"watershed"``: the discrete distribution. The phase is split into particles
  by a watershed of its distance map seeded at the distance maxima, and each
  particle gets its volume-equivalent sphere diameter. Particles cut by the box
  faces are included, which adds small sizes.

``"auto"`` uses the particle list when the volume has one for the phase, and
local thickness otherwise. Diameters are in micrometres; d10/d50/d90 are
percentiles of the volume-weighted distribution.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from scipy import ndimage

from ..atomic import atomic_path
from ..volume import Volume
from .fractions import phase_set, union_name

METHODS = ("auto", "particles", "local_thickness", "watershed")


@dataclass(frozen=True)
class PSDResult:
    """A particle-size distribution.

    Attributes
    ----------
    phase, method : str
    bin_edges_um : tuple of float
        Diameter bins.
    volume_fraction : tuple of float
        Share of the phase volume per bin (sums to 1).
    number_fraction : tuple of float or None
        Share of the particles per bin (None for local thickness, which has no particles).
    d10_um, d50_um, d90_um : float
        Volume-weighted percentiles of the diameter.
    mean_diameter_um : float
        Number-weighted mean (volume-weighted for local thickness).
    n_particles : int or None
    diameters_um : float array or None
        Every particle's diameter (discrete methods); not written by :meth:`to_dict`.
    """

    phase: str
    method: str
    bin_edges_um: tuple
    volume_fraction: tuple
    number_fraction: tuple | None
    d10_um: float
    d50_um: float
    d90_um: float
    mean_diameter_um: float
    n_particles: int | None
    diameters_um: np.ndarray | None = field(default=None, repr=False)

    def table(self) -> list[dict]:
        """One row per bin: lower and upper diameter (um), volume and number shares."""
        rows = []
        for k in range(len(self.volume_fraction)):
            rows.append({"d_low_um": self.bin_edges_um[k], "d_high_um": self.bin_edges_um[k + 1],
                         "volume_fraction": self.volume_fraction[k],
                         "number_fraction": None if self.number_fraction is None else self.number_fraction[k]})
        return rows

    def to_dict(self) -> dict:
        keys = ("phase", "method", "d10_um", "d50_um", "d90_um", "mean_diameter_um", "n_particles")
        return {k: getattr(self, k) for k in keys} | {"table": self.table()}


def _weighted_percentiles(values: np.ndarray, weights: np.ndarray, qs) -> list[float]:
    if values.size == 0 or weights.sum() <= 0:
        return [math.nan] * len(qs)
    order = np.argsort(values)
    v, w = values[order], weights[order]
    cum = np.cumsum(w) / w.sum()
    return [float(v[min(np.searchsorted(cum, q), v.size - 1)]) for q in qs]


def _edges(d: np.ndarray, n_bins: int, step_um: float) -> np.ndarray:
    lo = float(d.min()) if d.size else 0.0
    hi = float(d.max()) if d.size else 1.0
    if hi - lo < step_um:
        lo, hi = lo - 0.5 * step_um, hi + 0.5 * step_um
    return np.linspace(max(lo - 1e-9 * hi, 0.0), hi * (1 + 1e-9), n_bins + 1)


def _discrete(phase: str, method: str, diameters: np.ndarray, volumes: np.ndarray, n_bins: int,
              step_um: float) -> PSDResult:
    edges = _edges(diameters, n_bins, step_um)
    num, _ = np.histogram(diameters, edges)
    vol, _ = np.histogram(diameters, edges, weights=volumes)
    d10, d50, d90 = _weighted_percentiles(diameters, volumes, (0.1, 0.5, 0.9))
    n = int(diameters.size)
    return PSDResult(phase, method, tuple(edges.tolist()),
                     tuple((vol / vol.sum()).tolist()) if n else tuple(0.0 for _ in vol),
                     tuple((num / n).tolist()) if n else tuple(0.0 for _ in num),
                     d10, d50, d90, float(diameters.mean()) if n else math.nan, n, diameters)


def _particle_diameters(particles, names: tuple[str, ...], labels: tuple[int, ...]) -> np.ndarray | None:
    radii = getattr(particles, "radii_um", None)
    phase = getattr(particles, "phase", None)
    if radii is None:
        return None
    radii = np.asarray(radii, dtype=np.float64)
    if radii.ndim == 2:  # semi-axes of ellipsoids: volume-equivalent radius
        radii = np.cbrt(radii.prod(axis=1))
    if phase is None:
        return None
    if isinstance(phase, str):
        keep = np.full(radii.shape[0], phase in names)
    else:
        ph = np.asarray(phase)
        if ph.dtype.kind in "iu":
            keep = np.isin(ph, labels)
        else:
            keep = np.isin(ph.astype(str), names)
    return 2.0 * radii[keep]


def local_thickness(mask: np.ndarray, voxel_size_um=(1.0, 1.0, 1.0), n_bins: int = 24,
                    progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Local thickness (um): the diameter of the largest ball inside ``mask`` that covers each voxel.

    Zero outside the mask. Radii are resolved on ``n_bins`` equally spaced levels,
    each costing one Euclidean distance transform of the whole volume;
    ``progress(done, total)`` is called after each level.

    >>> z, y, x = np.mgrid[:31, :31, :31] - 15
    >>> ball = x**2 + y**2 + z**2 <= 12**2
    >>> lt = local_thickness(ball)
    >>> round(float(np.median(lt[ball])), 1)
    24.1
    """
    mask = np.asarray(mask, dtype=bool)
    vs = tuple(float(v) for v in voxel_size_um)
    out = np.zeros(mask.shape, dtype=np.float32)
    if not mask.any():
        return out
    low = min(vs)  # every voxel of the mask is at least one voxel edge from the outside
    radius = ndimage.distance_transform_edt(mask, sampling=vs).astype(np.float32)
    top = float(radius.max())
    levels = np.linspace(top, low, max(int(n_bins), 1)) if top > low else np.array([low])
    for k, r in enumerate(levels):
        seeds = radius >= r - 1e-6
        covered = ndimage.distance_transform_edt(~seeds, sampling=vs) <= r
        out[covered & mask & (out == 0)] = 2.0 * r
        if progress is not None:
            progress(k + 1, len(levels))
    return out


def watershed_particles(mask: np.ndarray, voxel_size_um=(1.0, 1.0, 1.0), min_radius_voxels: float = 2.0):
    """Split ``mask`` into particles by a watershed of its distance map; return (labels, n).

    Seeds are the maxima of the distance map at least ``min_radius_voxels`` apart.
    """
    from skimage.feature import peak_local_max
    from skimage.segmentation import watershed

    mask = np.asarray(mask, dtype=bool)
    dist = ndimage.distance_transform_edt(mask, sampling=tuple(float(v) for v in voxel_size_um))
    size = max(int(round(2 * min_radius_voxels)) + 1, 3)
    peaks = peak_local_max(dist, footprint=np.ones((size,) * 3, dtype=bool), labels=mask.astype(np.int32),
                           exclude_border=False)
    markers = np.zeros(mask.shape, dtype=np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1, dtype=np.int32)
    lab = watershed(-dist, markers, mask=mask)
    return lab, int(len(peaks))


def particle_size_distribution(volume: Volume, phase: str, method: str = "auto", n_bins: int = 24,
                               min_radius_voxels: float = 2.0,
                               progress: Callable[[int, int], None] | None = None) -> PSDResult:
    """Particle-size distribution of ``phase`` (one phase or a union) as a table of diameter bins.

    Parameters
    ----------
    volume : Volume
    phase : str
    method : 'auto', 'particles', 'local_thickness' or 'watershed'
        See the module notes.
    n_bins : int
        Diameter bins of the table (and radius levels of local thickness).
    min_radius_voxels : float
        Watershed only: smallest distance between two particle seeds.
    progress : callable(done, total), optional
        Local thickness only: called after each radius level.

    Examples
    --------
    >>> z, y, x = np.mgrid[:40, :40, :40]
    >>> lab = ((x - 20)**2 + (y - 20)**2 + (z - 20)**2 <= 10**2).astype(np.uint8)
    >>> v = Volume(lab, {"SE": {"label": 0}, "NMC": {"label": 1}}, voxel_size_um=0.5)
    >>> r = particle_size_distribution(v, "NMC", "watershed")
    >>> r.n_particles, round(r.d50_um, 1)
    (1, 10.0)
    """
    if method not in METHODS:
        raise ValueError(f"PSD method {method!r} is not one of {', '.join(METHODS)}")
    if not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"n_bins = {n_bins!r} must be a positive integer")
    names = phase_set(volume, phase)
    name = union_name(names)
    step = min(volume.voxel_size_um)
    if method in ("auto", "particles"):
        d = None if volume.particles is None else _particle_diameters(volume.particles, names,
                                                                     volume.phases.labels_of(names))
        if d is not None and d.size:
            return _discrete(name, "particles", d, d ** 3, n_bins, step)
        if method == "particles":
            raise ValueError(f"the volume has no particle list for {name}; use method 'local_thickness' or "
                             "'watershed'")
        method = "local_thickness"
    mask = volume.mask(names)
    vox = float(np.prod(volume.voxel_size_um))
    if method == "watershed":
        lab, n = watershed_particles(mask, volume.voxel_size_um, min_radius_voxels)
        vols = np.bincount(lab.ravel(), minlength=n + 1)[1:].astype(np.float64) * vox
        vols = vols[vols > 0]
        d = np.cbrt(6.0 * vols / math.pi)
        return _discrete(name, "watershed", d, vols, n_bins, step)
    lt = local_thickness(mask, volume.voxel_size_um, n_bins, progress)[mask].astype(np.float64)
    # local thickness takes one value per radius level: give each level its own bin
    levels, vol = np.unique(lt, return_counts=True)
    half = 0.5 * (levels[1] - levels[0]) if levels.size > 1 else 0.5 * step
    edges = np.r_[levels[0] - half, 0.5 * (levels[1:] + levels[:-1]), levels[-1] + half]
    d10, d50, d90 = _weighted_percentiles(lt, np.ones_like(lt), (0.1, 0.5, 0.9))
    return PSDResult(name, "local_thickness", tuple(edges.tolist()),
                     tuple((vol / max(vol.sum(), 1)).tolist()), None, d10, d50, d90,
                     float(lt.mean()) if lt.size else math.nan, None, None)


def plot_psd(result: PSDResult, path: str | Path) -> None:
    """Write a PNG histogram of a size distribution (volume share; number share as a step line)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    edges = np.asarray(result.bin_edges_um)
    fig = Figure(figsize=(6.0, 4.0), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.bar(edges[:-1], result.volume_fraction, width=np.diff(edges), align="edge", alpha=0.6,
           edgecolor="k", lw=0.5, label="volume share")
    if result.number_fraction is not None:
        ax.step(edges, np.r_[result.number_fraction, result.number_fraction[-1]], where="post", color="C3",
                label="number share")
    for q, v in (("d10", result.d10_um), ("d50", result.d50_um), ("d90", result.d90_um)):
        if math.isfinite(v):
            ax.axvline(v, color="0.3", ls=":", lw=1)
            ax.text(v, ax.get_ylim()[1] * 0.95, q, rotation=90, va="top", ha="right", fontsize=8)
    ax.set_xlabel("diameter (um)")
    ax.set_ylabel("share per bin")
    ax.set_title(f"{result.phase}: size distribution ({result.method.replace('_', ' ')})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
