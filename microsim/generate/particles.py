"""Particle sizes, shapes and the list of placed particles.

Diameters are volume-equivalent diameters in micrometres: a spheroid of
diameter d has the volume of a sphere of diameter d. Coordinates are (z, y, x)
in micrometres from the corner of the volume, like the voxel axes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import special

from ..atomic import atomic_path
from .recipe import AXIS_NAMES, Shape, SizeDistribution


@dataclass(frozen=True, eq=False)
class ParticleList:
    """Placed particles of a generated volume.

    Parameters
    ----------
    centres_um : float64 (N, 3)
        Centres (z, y, x) in micrometres.
    radii_um : float64 (N,)
        Volume-equivalent radii in micrometres, as drawn in the volume.
    phase : uint8 (N,)
        Label value of each particle's phase in the volume.
    semi_axes_um : float64 (N, 3) or None
        Semi-axes of ellipsoids along their body axes; None when all are spheres.
    rotations : float64 (N, 3, 3) or None
        Columns are the body axes in (z, y, x) coordinates (the third is a spheroid's symmetry axis).
    box_um : (3,) float
        Edge lengths of the volume.
    periodic : (3,) bool
        Axes along which particles wrap around.

    Examples
    --------
    >>> p = ParticleList(np.zeros((1, 3)), np.ones(1), np.ones(1, np.uint8), box_um=(8.0, 8.0, 8.0))
    >>> p.diameters_um
    array([2.])
    """

    centres_um: np.ndarray
    radii_um: np.ndarray
    phase: np.ndarray
    semi_axes_um: np.ndarray | None = None
    rotations: np.ndarray | None = None
    box_um: tuple[float, float, float] = (0.0, 0.0, 0.0)
    periodic: tuple[bool, bool, bool] = (True, True, True)
    names: tuple[tuple[int, str], ...] = field(default=(), repr=False)

    def __post_init__(self):
        c = np.ascontiguousarray(self.centres_um, dtype=np.float64).reshape(-1, 3)
        n = c.shape[0]
        r = np.ascontiguousarray(self.radii_um, dtype=np.float64).reshape(n)
        ph = np.ascontiguousarray(self.phase, dtype=np.uint8).reshape(n)
        object.__setattr__(self, "centres_um", c)
        object.__setattr__(self, "radii_um", r)
        object.__setattr__(self, "phase", ph)
        if (self.semi_axes_um is None) != (self.rotations is None):
            raise ValueError("give both semi_axes_um and rotations for ellipsoids, or neither for spheres")
        if self.semi_axes_um is not None:
            object.__setattr__(self, "semi_axes_um", np.ascontiguousarray(self.semi_axes_um, np.float64).reshape(n, 3))
            object.__setattr__(self, "rotations", np.ascontiguousarray(self.rotations, np.float64).reshape(n, 3, 3))
        object.__setattr__(self, "box_um", tuple(float(b) for b in self.box_um))
        object.__setattr__(self, "periodic", tuple(bool(p) for p in self.periodic))
        object.__setattr__(self, "names", tuple((int(k), str(v)) for k, v in self.names))

    def __len__(self) -> int:
        return self.radii_um.shape[0]

    @property
    def diameters_um(self) -> np.ndarray:
        return 2.0 * self.radii_um

    @property
    def spheres(self) -> bool:
        return self.semi_axes_um is None

    def select(self, label: int) -> "ParticleList":
        """The particles of one phase label."""
        keep = self.phase == label
        return ParticleList(self.centres_um[keep], self.radii_um[keep], self.phase[keep],
                            None if self.spheres else self.semi_axes_um[keep],
                            None if self.spheres else self.rotations[keep], self.box_um, self.periodic, self.names)

    def volume_um3(self) -> float:
        return float(4.0 / 3.0 * math.pi * np.sum(self.radii_um**3))

    def shape_matrices(self, inverse: bool = False) -> np.ndarray:
        """``Q = R diag(a^2) R^T`` per particle (or its inverse); the particle is x^T Q^-1 x <= 1."""
        if self.spheres:
            eye = np.eye(3)[None]
            return eye * (self.radii_um**(-2 if inverse else 2))[:, None, None]
        p = -2.0 if inverse else 2.0
        return np.einsum("nij,nj,nkj->nik", self.rotations, self.semi_axes_um**p, self.rotations)

    def bounding_radii_um(self) -> np.ndarray:
        return self.radii_um.copy() if self.spheres else self.semi_axes_um.max(axis=1)

    def to_dict(self) -> dict:
        d = {"count": len(self), "box_um": list(self.box_um), "periodic": list(self.periodic),
             "centres_um": self.centres_um.tolist(), "radii_um": self.radii_um.tolist(),
             "phase": self.phase.tolist()}
        if not self.spheres:
            d["semi_axes_um"] = self.semi_axes_um.tolist()
            d["rotations"] = self.rotations.tolist()
        return d

    def write_csv(self, path: str | Path) -> None:
        """One row per particle: phase label and name, centre, radius, and for ellipsoids semi-axes and body axes."""
        names = dict(self.names)
        head = ["label", "phase", "z_um", "y_um", "x_um", "radius_um"]
        if not self.spheres:
            head += ["a_um", "b_um", "c_um"] + [f"R{i}{j}" for i in range(3) for j in range(3)]
        lines = [f"# box_um = {' '.join(repr(b) for b in self.box_um)}; periodic = "
                 f"{' '.join(str(p).lower() for p in self.periodic)}", ",".join(head)]
        for n in range(len(self)):
            row = [str(int(self.phase[n])), names.get(int(self.phase[n]), "")]
            row += [f"{v:.6g}" for v in self.centres_um[n]] + [f"{self.radii_um[n]:.6g}"]
            if not self.spheres:
                row += [f"{v:.6g}" for v in self.semi_axes_um[n]] + [f"{v:.6g}" for v in self.rotations[n].ravel()]
            lines.append(",".join(row))
        with atomic_path(path) as tmp:
            Path(tmp).write_text("\n".join(lines) + "\n")


# ---------------------------------------------------------------------------
# sizes


def diameter_cdf(size: SizeDistribution, d_um) -> np.ndarray:
    """Number-weighted cumulative distribution of the diameters that :func:`sample_diameters` draws.

    For a log-normal this is the truncated log-normal CDF; for an explicit list,
    the step function of the list.
    """
    d = np.asarray(d_um, dtype=np.float64)
    if size.diameters_um:
        ref = np.sort(np.asarray(size.diameters_um))
        return np.searchsorted(ref, d, side="right") / ref.size
    lo, hi = size.bounds_um
    m, s = size.number_median_um, size.sigma
    if s == 0.0:
        return (d >= m).astype(np.float64)
    f_lo, f_hi = special.ndtr((math.log(lo / m)) / s), special.ndtr((math.log(hi / m)) / s)
    f = special.ndtr(np.log(np.clip(d, 1e-300, None) / m) / s)
    return np.clip((f - f_lo) / (f_hi - f_lo), 0.0, 1.0)


def sample_diameters(size: SizeDistribution, rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` diameters in micrometres drawn from ``size`` (inverse-CDF sampling of the truncated log-normal).

    >>> d = sample_diameters(SizeDistribution(d50_um=5.0, gsd=1.0), np.random.default_rng(0), 3)
    >>> d.tolist()
    [5.0, 5.0, 5.0]
    """
    if size.diameters_um:
        return np.asarray(size.diameters_um, dtype=np.float64)[rng.integers(0, len(size.diameters_um), n)]
    m, s = size.number_median_um, size.sigma
    if s == 0.0:
        return np.full(n, m)
    lo, hi = size.bounds_um
    f_lo, f_hi = special.ndtr(math.log(lo / m) / s), special.ndtr(math.log(hi / m) / s)
    u = f_lo + (f_hi - f_lo) * rng.random(n)
    return m * np.exp(s * special.ndtri(u))


def draw_to_volume(size: SizeDistribution, rng: np.random.Generator, volume_um3: float) -> np.ndarray:
    """Diameters drawn one after another until their spheres fill ``volume_um3``.

    The last particle is kept only if that brings the total closer to the target.
    """
    if volume_um3 <= 0:
        return np.zeros(0)
    m = size.number_median_um
    mean_v = math.pi / 6.0 * m**3 * math.exp(4.5 * size.sigma**2)
    batch = int(volume_um3 / mean_v * 1.1) + 16
    chunks, total = [], 0.0
    while total < volume_um3:
        d = sample_diameters(size, rng, batch)
        chunks.append(d)
        total += float(np.sum(math.pi / 6.0 * d**3))
    d = np.concatenate(chunks)
    cum = np.cumsum(math.pi / 6.0 * d**3)
    k = int(np.searchsorted(cum, volume_um3))  # first index where the target is reached
    below = cum[k - 1] if k > 0 else 0.0
    keep = k + 1 if cum[k] - volume_um3 < volume_um3 - below else k
    return d[:max(keep, 1)]


# ---------------------------------------------------------------------------
# shapes


def orientations(shape: Shape, rng: np.random.Generator, n: int, compaction: float = 0.0,
                 compaction_axis: int = 0) -> np.ndarray:
    """Rotation matrices (n, 3, 3) whose third column is the symmetry axis of each spheroid.

    With ``compaction`` c > 0 the drawn axes are turned as an affine compression by
    (1 - c) along ``compaction_axis`` turns them: the normal of a flattened
    particle (aspect ratio < 1) maps as n -> F^-T n, so flakes come to lie across
    the pressing direction; the axis of an elongated one maps as u -> F u, so rods
    tip over into the plane. The particles keep their shape.
    """
    if shape.orientation == "random":
        u = rng.standard_normal((n, 3))
    else:
        axis = AXIS_NAMES.index(shape.orientation)
        tilt = math.radians(shape.tilt_deg) / math.sqrt(2.0)
        t = rng.standard_normal((n, 2)) * tilt
        theta = np.hypot(t[:, 0], t[:, 1])
        phi = np.arctan2(t[:, 1], t[:, 0])
        others = [a for a in range(3) if a != axis]
        u = np.zeros((n, 3))
        u[:, axis] = np.cos(theta)
        u[:, others[0]] = np.sin(theta) * np.cos(phi)
        u[:, others[1]] = np.sin(theta) * np.sin(phi)
    if compaction > 0:
        stretch = 1.0 - compaction if shape.aspect_ratio > 1.0 else 1.0 / (1.0 - compaction)
        u[:, compaction_axis] *= stretch
    u /= np.linalg.norm(u, axis=1)[:, None]
    # Any vector not parallel to u gives the first body axis by Gram-Schmidt.
    helper = np.where(np.abs(u[:, :1]) < 0.9, np.array([[1.0, 0.0, 0.0]]), np.array([[0.0, 1.0, 0.0]]))
    e1 = helper - np.sum(helper * u, axis=1)[:, None] * u
    e1 /= np.linalg.norm(e1, axis=1)[:, None]
    e2 = np.cross(u, e1)
    return np.stack([e1, e2, u], axis=2)


def spheroid_axes(radii_um: np.ndarray, aspect_ratio: float) -> np.ndarray:
    """Semi-axes (a, a, c) with c / a = aspect_ratio and a^2 c = r^3 (same volume as the sphere of radius r)."""
    r = np.asarray(radii_um, dtype=np.float64)
    a = r * aspect_ratio ** (-1.0 / 3.0)
    c = r * aspect_ratio ** (2.0 / 3.0)
    return np.stack([a, a, c], axis=1)
