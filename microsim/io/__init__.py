"""Reading and writing volumes.

:func:`read_array` returns the raw array of a file; :func:`read_volume` adds the
phase table and voxel size. Formats are chosen by extension.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..phases import phase_table
from ..volume import Volume, as_label_array


class VolumeReadError(ValueError):
    """A file could not be read as a volume; the message names the file and the problem."""


def read_array(path: str | Path) -> np.ndarray:
    """Read a 3D array from a TIFF (.tif, .tiff) or numpy (.npy) file."""
    path = Path(path)
    if not path.exists():
        raise VolumeReadError(f"{path}: file not found; check the path")
    ext = path.suffix.lower()
    try:
        if ext in (".tif", ".tiff"):
            import tifffile
            return tifffile.imread(path)
        if ext == ".npy":
            return np.load(path, mmap_mode="r")
    except Exception as exc:  # the libraries raise many types for damaged files
        raise VolumeReadError(f"{path}: cannot be read ({type(exc).__name__}: {exc})") from None
    raise VolumeReadError(f"{path}: unknown format {ext!r}; use .tif, .tiff or .npy")


def read_volume(path: str | Path, phases, voxel_size_um=None) -> Volume:
    """Read a labelled volume and attach a phase table and voxel size (um; default 1).

    Examples
    --------
    >>> v = read_volume("samples/electrode_64.tif", "samples/electrode_phases.toml", 0.390625)  # doctest: +SKIP
    """
    arr = read_array(path)
    try:
        labels = as_label_array(arr)
    except ValueError as exc:
        raise VolumeReadError(f"{path}: {exc}") from None
    return Volume(labels, phase_table(phases), 1.0 if voxel_size_um is None else voxel_size_um,
                  provenance=(f"read {Path(path).name}",))
