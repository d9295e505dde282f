"""The labelled voxel volume that every microsim function works on."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from .phases import PhaseTable, phase_table

AXES = {"z": 0, "y": 1, "x": 2}


class VolumeError(ValueError):
    """A volume is malformed; the message names the problem and the fix."""


#: voxel sizes accepted, in micrometres: 0.1 nm to 10 cm (beyond, areas and lengths under- or overflow)
VOXEL_SIZE_RANGE_UM = (1e-4, 1e5)


def check_voxel_size(voxel_size_um) -> tuple[float, float, float]:
    """Validate a voxel size (dz, dy, dx) in micrometres; a scalar means isotropic."""
    if np.isscalar(voxel_size_um):
        voxel_size_um = (voxel_size_um,) * 3
    try:
        vs = tuple(float(v) for v in voxel_size_um)
    except (TypeError, ValueError):
        raise VolumeError(f"voxel size {voxel_size_um!r} is not three numbers (dz, dy, dx) in micrometres") from None
    if len(vs) != 3:
        raise VolumeError(f"voxel size {voxel_size_um!r} has {len(vs)} values; give three (dz, dy, dx) in micrometres")
    if not all(v > 0 and math.isfinite(v) for v in vs):
        raise VolumeError(f"voxel size {vs} must be positive and finite in every axis; give (dz, dy, dx) in micrometres")
    if not all(VOXEL_SIZE_RANGE_UM[0] <= v <= VOXEL_SIZE_RANGE_UM[1] for v in vs):
        raise VolumeError(f"voxel size {vs} um is outside {VOXEL_SIZE_RANGE_UM[0]:g}..{VOXEL_SIZE_RANGE_UM[1]:g} um "
                          "(0.1 nm to 10 cm) in some axis; give (dz, dy, dx) in micrometres")
    return vs


def as_label_array(labels) -> np.ndarray:
    """Check a label array and return it as C-ordered uint8 (z, y, x) without changing a value."""
    arr = np.asarray(labels)
    if arr.ndim != 3:
        raise VolumeError(f"labels have {arr.ndim} dimensions, shape {arr.shape}; a volume needs a 3D (z, y, x) array"
                          + (" (add an axis with arr[None] for a single slice)" if arr.ndim == 2 else
                             " (select one channel or time step)" if arr.ndim == 4 else ""))
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    if not np.issubdtype(arr.dtype, np.integer):
        raise VolumeError(f"labels have dtype {arr.dtype}; a volume needs integer labels "
                          "(segment grayscale data first, e.g. with `microsim segment`)")
    if min(arr.shape) < 1:
        raise VolumeError(f"labels have shape {arr.shape} with an empty axis; every axis needs at least one voxel")
    if arr.dtype != np.uint8:
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi > 255:
            raise VolumeError(f"labels range {lo}..{hi} does not fit uint8; relabel to values 0..255")
        arr = arr.astype(np.uint8)
    return np.ascontiguousarray(arr)


def label_counts(labels: np.ndarray, minlength: int = 256) -> np.ndarray:
    """Number of voxels of each value 0..minlength-1 (or up to the largest) of a
    non-negative integer array, as int64.

    ``np.bincount`` widens its whole input to int64 (8 bytes per voxel); counting a
    slab at a time keeps that copy a few MB whatever the volume.

    Example
    -------
    >>> label_counts(np.array([[[0, 2, 2]]], np.uint8))[:3]
    array([1, 0, 2])
    """
    flat = np.asarray(labels).reshape(-1)
    counts = np.zeros(minlength, dtype=np.int64)
    step = 1 << 18
    for start in range(0, flat.size, step):
        part = np.bincount(flat[start:start + step], minlength=minlength)
        if part.size > counts.size:
            part[:counts.size] += counts
            counts = part
        else:
            counts += part
    return counts


def lookup(table: np.ndarray, index: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``table[index]`` for a large integer ``index`` array, a few z planes at a time.

    Fancy indexing first converts the whole index array to 8-byte integers; doing it
    in slabs keeps that temporary a few MB, so a lookup costs only its result.
    ``out`` (the shape of ``index``, the dtype of ``table``) receives the result.

    Example
    -------
    >>> lookup(np.array([False, True]), np.array([[[0, 1, 1]]], np.uint8)).tolist()
    [[[False, True, True]]]
    """
    index = np.asarray(index)
    if out is None:
        out = np.empty(index.shape, dtype=table.dtype)
    rows = index.reshape(index.shape[0], -1) if index.ndim else index.reshape(1, 1)
    step = max(1, (1 << 20) // max(rows.shape[1], 1))
    dest = out.reshape(rows.shape)
    for k in range(0, rows.shape[0], step):
        dest[k:k + step] = table[rows[k:k + step]]
    return out


@dataclass(frozen=True, eq=False)
class Volume:
    """A labelled 3D volume with its phase table and voxel size.

    Parameters
    ----------
    labels : ndarray, shape (nz, ny, nx)
        Integer labels (stored as uint8), axes (z, y, x), C order.
    phases : PhaseTable, dict or path to TOML
        Every label value present in ``labels`` must be in the table.
    voxel_size_um : float or (dz, dy, dx)
        Voxel edge lengths in micrometres; may be anisotropic.
    provenance : tuple of str
        What was done to make this volume (source file, operations).
    particles : object, optional
        The particle list of a generated volume (centres, radii, phase).

    Examples
    --------
    >>> import numpy as np
    >>> v = Volume(np.ones((4, 4, 4), np.uint8), {"SE": {"label": 1, "sigma_ionic_S_per_m": 0.1}}, 0.5)
    >>> v.shape, v.voxel_size_um
    ((4, 4, 4), (0.5, 0.5, 0.5))
    """

    labels: np.ndarray
    phases: PhaseTable
    voxel_size_um: tuple[float, float, float] = (1.0, 1.0, 1.0)
    provenance: tuple[str, ...] = ()
    particles: Any = field(default=None, repr=False)

    def __post_init__(self):
        labels = as_label_array(self.labels)
        object.__setattr__(self, "labels", labels)
        table = phase_table(self.phases)
        object.__setattr__(self, "phases", table)
        object.__setattr__(self, "voxel_size_um", check_voxel_size(self.voxel_size_um))
        object.__setattr__(self, "provenance", tuple(self.provenance))
        present = np.flatnonzero(label_counts(labels))
        missing = sorted(set(present.tolist()) - set(table.labels))
        if missing:
            raise VolumeError(f"label value(s) {', '.join(map(str, missing))} are in the volume but not in the phase "
                              f"table; add a phase for each (the table has labels {list(table.labels)})")

    def __repr__(self):
        return (f"Volume(shape={self.shape}, voxel_size_um={self.voxel_size_um}, "
                f"phases={list(self.phases.names)})")

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.labels.shape)

    @property
    def size_um(self) -> tuple[float, float, float]:
        """Edge lengths of the whole volume in micrometres (z, y, x)."""
        return tuple(n * d for n, d in zip(self.shape, self.voxel_size_um))

    def phase_fractions(self) -> dict[str, float]:
        """Volume fraction of each phase in the table (0 for phases not present)."""
        counts = label_counts(self.labels)
        total = self.labels.size
        return {p.name: float(counts[p.label]) / total for p in self.phases}

    def mask(self, names: str | Sequence[str]) -> np.ndarray:
        """Boolean array of the voxels that belong to one phase or a union of phases."""
        lut = np.zeros(256, dtype=bool)
        lut[list(self.phases.labels_of(names))] = True
        return lookup(lut, self.labels)

    def conductivity_lut(self, carrier: str) -> np.ndarray:
        return self.phases.conductivity_lut(carrier)

    def derive(self, labels: np.ndarray | None = None, phases=None, note: str | None = None, **changes) -> "Volume":
        """A new volume with some parts replaced and ``note`` appended to the provenance."""
        prov = self.provenance + ((note,) if note else ())
        return Volume(self.labels if labels is None else labels,
                      self.phases if phases is None else phases,
                      changes.pop("voxel_size_um", self.voxel_size_um), prov,
                      changes.pop("particles", self.particles if labels is None else None))


def axis_index(direction: str | int) -> int:
    """Array axis of a transport direction: 'z' -> 0, 'y' -> 1, 'x' -> 2."""
    if isinstance(direction, (int, np.integer)) and 0 <= int(direction) <= 2:
        return int(direction)
    if direction in AXES:
        return AXES[direction]
    raise VolumeError(f"direction {direction!r} is not one of x, y, z")


def directions(spec: str | Sequence[str]) -> tuple[str, ...]:
    """Expand 'all' or 'x,y' or ['x','z'] into a tuple of direction names, in x, y, z order for 'all'."""
    if isinstance(spec, str):
        spec = ["x", "y", "z"] if spec == "all" else [s.strip() for s in spec.split(",") if s.strip()]
    out = []
    for d in spec:
        if not isinstance(d, str):
            raise VolumeError(f"direction {d!r} is not one of x, y, z (give the letters, e.g. ['x', 'z'])")
        axis_index(d)
        if d not in out:
            out.append(d)
    if not out:
        raise VolumeError("no direction given; use x, y, z or all")
    return tuple(out)
