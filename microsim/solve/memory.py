"""Peak memory of a conductivity solve, predicted before anything is allocated."""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .multigrid import mg_levels
from .names import DEFAULT_SOLVER, check_solver


class MemoryLimitError(ValueError):
    """A solve would need more memory than allowed; the message has the estimate and a crop that fits."""


@dataclass(frozen=True)
class MemoryEstimate:
    """Peak memory of the arrays of a conductivity solve.

    Computed from the sizes of the arrays each stage allocates (the same level
    layout the multigrid solver builds). The volume's own labels are included;
    the Python interpreter and the compiled kernels (a few hundred MB, the same
    for every volume) are not.

    Attributes
    ----------
    peak_bytes : int
        The largest stage plus the fields kept by earlier solves.
    stages : tuple of (name, bytes)
        Peak of each stage: percolation, discretise, set-up (multigrid), solve, fields.
    """

    shape: tuple[int, int, int]
    solver: str
    peak_bytes: int
    stages: tuple[tuple[str, int], ...]

    @property
    def bytes_per_voxel(self) -> float:
        return self.peak_bytes / float(np.prod(self.shape))

    def to_dict(self) -> dict:
        return {"shape": list(self.shape), "solver": self.solver, "peak_bytes": self.peak_bytes,
                "bytes_per_voxel": self.bytes_per_voxel, "stages": dict(self.stages)}


def estimate_memory(shape, solver: str = DEFAULT_SOLVER, *, periodic: bool = False, conducting_phases: int = 1,
                    return_fields: bool = False, solves: int = 1) -> MemoryEstimate:
    """Peak memory of :func:`conductivity` on a volume of ``shape`` (z, y, x).

    Parameters
    ----------
    solver : 'mg' or 'jacobi'
    periodic : bool
        Periodic sides or the cell problem (cluster labelling across periodic faces
        needs a second int32 array).
    conducting_phases : int
        Number of conducting label values; with more than two, level 1 of the
        multigrid hierarchy may need float32 faces instead of uint8 codes.
    return_fields, solves : the potential and current density of every solve are kept.

    Examples
    --------
    >>> e = estimate_memory((512, 512, 512))
    >>> round(e.bytes_per_voxel, 1) <= 20.0
    True
    """
    check_solver(solver)
    nz, ny, nx = (int(v) for v in shape)
    n = nz * ny * nx
    padded = (nz + 2) * (ny + 2) * (nx + 2)
    # percolation: the labels, the conducting mask, int32 cluster ids and the percolating
    # mask (lookups and counts run a few planes at a time, so no 8-byte copy of a whole
    # array); periodic faces can add a second set of ids while clusters are merged
    stages = [("percolation", n * (7 + (4 if periodic else 0))),
              ("discretise", 4 * n + padded)]
    if solver == "mg":
        lv, _, n_e, n_f = mg_levels((nz, ny, nx), (periodic,) * 3)
        level1 = int(np.prod(lv[1, :3] + 2))
        bottom = int(np.prod(lv[-1, :3]))
        # level-1 faces: 4-bit codes with one conducting phase, bytes with two, float32 when
        # more than 256 sums occur (possible with three or more conducting phases); the
        # coarsest level keeps a dense float64 Cholesky factor
        per_face = 1.5 if conducting_phases <= 1 else 3 if conducting_phases == 2 else 12
        faces = int(per_face * level1) + 4 * n_f
        stages.append(("set-up", n + padded + faces + 8 * level1))
        stages.append(("solve", n + padded + 16 * padded + 8 * n_e + faces + 8 * bottom * (bottom + 3)))
    else:
        stages.append(("solve", n + padded + 24 * padded))
    kept = 0
    if return_fields:
        # potential (float32, via a float64 temporary) and current density (3 x float32)
        # while the float64 potential of the solve is still alive
        stages.append(("fields", 18 * n + 9 * padded))
        kept = 16 * n * (solves - 1)
    peak = max(b for _, b in stages) + kept
    return MemoryEstimate((nz, ny, nx), solver, int(peak), tuple((k, int(b)) for k, b in stages))


def largest_crop(shape, max_bytes: float, **kw) -> tuple[int, int, int] | None:
    """The largest crop of ``shape``, same proportions, whose :func:`estimate_memory` fits ``max_bytes``."""
    shape = tuple(int(v) for v in shape)

    def crop(s):
        return tuple(max(1, int(v * s)) for v in shape)

    if estimate_memory(crop(0.0), **kw).peak_bytes > max_bytes:
        return None
    lo, hi = 0.0, 1.0
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        if estimate_memory(crop(mid), **kw).peak_bytes <= max_bytes:
            lo = mid
        else:
            hi = mid
    return crop(lo)


def available_memory_bytes() -> int | None:
    """Memory the system can give a new process without swapping (Linux MemAvailable), or None if unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def format_bytes(nbytes: float) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= scale:
            return f"{nbytes / scale:.2f} {unit}"
    return f"{nbytes:.0f} bytes"


def check_memory(shape, max_bytes: float, **kw) -> MemoryEstimate:
    """Raise :class:`MemoryLimitError` if :func:`estimate_memory` exceeds ``max_bytes``; return the estimate."""
    est = estimate_memory(shape, **kw)
    if est.peak_bytes > max_bytes:
        fit = largest_crop(shape, max_bytes, **kw)
        where = (f"the largest crop that fits is about {' x '.join(map(str, fit))} voxels (z, y, x)" if fit
                 else "not even a single voxel fits")
        raise MemoryLimitError(
            f"a {' x '.join(map(str, est.shape))} volume needs about {format_bytes(est.peak_bytes)} "
            f"({est.bytes_per_voxel:.1f} bytes/voxel, {est.solver} solver) but only {format_bytes(max_bytes)} "
            f"may be used; {where}: crop the volume or raise the limit (--max-memory)")
    return est
