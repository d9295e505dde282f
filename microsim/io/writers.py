"""Writing volumes in any supported format, chosen by the output name.

=====================  =================================================
output                 written as
=====================  =================================================
``.tif``, ``.tiff``    ImageJ multi-page TIFF (voxel size in um)
``.h5``, ``.hdf5``     HDF5 dataset with attributes + ``.xdmf`` sidecar
``.npy``               numpy array + ``.npy.json`` sidecar
``.raw``, ``.bin``     raw C-ordered bytes + ``.raw.json`` sidecar
folder (no extension)  one ImageJ TIFF per z plane
=====================  =================================================

Every file appears complete or not at all: data and sidecars are written
under temporary names and renamed at the end.
"""
from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from .errors import VolumeWriteError
from .metadata import sidecar_dict, sidecar_path
from .stack import format_of_extension


def output_format(path) -> str:
    """'tiff', 'hdf5', 'npy', 'raw' or 'slices' for an output name."""
    text = str(path)
    p = Path(text)
    ext = p.suffix.lower()
    if text.endswith(("/", "\\")) or p.is_dir() or not ext:
        return "slices"
    name = format_of_extension(ext)
    if name:
        return name
    raise VolumeWriteError(f"{p}: unknown output format {ext!r}; use .tif, .h5, .npy, .raw or a folder name "
                           "(no extension) for slices")


def _write_with_sidecar(path: Path, arr: np.ndarray, voxel_size_um, phases, provenance, write_data,
                        byte_order: str, offset: int = 0) -> Path:
    doc = sidecar_dict(arr.shape, arr.dtype.name, byte_order, offset, voxel_size_um, phases, provenance)
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(atomic_path(path))
        tmp_side = stack.enter_context(atomic_path(sidecar_path(path)))
        write_data(tmp)
        from ..jsonio import dumps
        Path(tmp_side).write_text(dumps(doc, indent=2) + "\n")
    return path


def write_raw(path, array: np.ndarray, voxel_size_um=None, phases=None, provenance=(),
              byte_order: str = "little") -> Path:
    """Raw C-ordered bytes plus a ``.raw.json`` sidecar with shape, dtype, byte order and metadata."""
    path = Path(path)
    arr = np.asarray(array)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    if byte_order not in ("little", "big"):
        raise VolumeWriteError(f"{path}: byte order {byte_order!r} is not 'little' or 'big'")
    out = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<" if byte_order == "little" else ">"))
    bo = byte_order if arr.dtype.itemsize > 1 else "little"

    def data(tmp):
        with open(tmp, "wb") as fh:
            # Plane by plane so a byte-swapped copy never needs a second full array.
            for k in range(out.shape[0]):
                fh.write(out[k].tobytes())
    return _write_with_sidecar(path, arr, voxel_size_um, phases, provenance, data, bo)


def write_npy(path, array: np.ndarray, voxel_size_um=None, phases=None, provenance=()) -> Path:
    """``numpy.save`` of the array plus a ``.npy.json`` sidecar with the metadata."""
    path = Path(path)
    arr = np.ascontiguousarray(array)
    bo = {"<": "little", ">": "big"}.get(arr.dtype.byteorder, "native") if arr.dtype.itemsize > 1 else "n/a"

    def data(tmp):
        with open(tmp, "wb") as fh:
            np.save(fh, arr)
    return _write_with_sidecar(path, arr, voxel_size_um, phases, provenance, data, bo)


def write_array(path, array: np.ndarray, voxel_size_um=None, phases=None, provenance=(), *,
                compression: str | None = None, dataset: str | None = None) -> Path:
    """Write a 3D array (labels or grayscale) with its metadata; the format follows ``path``.

    Parameters
    ----------
    path : str or Path
        Output file, or a folder name (no extension) for one TIFF per slice.
    array : ndarray (z, y, x)
    voxel_size_um : (dz, dy, dx) or None
        Voxel size in micrometres (None: not recorded).
    phases : PhaseTable or None
        Phase table to store with the labels.
    provenance : sequence of str
    compression : str, optional
        TIFF compression ('zlib', ...); for HDF5, 'gzip' (default), 'lzf' or 'none'.
    dataset : str, optional
        HDF5 dataset path (default ``/labels`` for integers, ``/image`` otherwise).

    Examples
    --------
    >>> write_array("labels.h5", np.zeros((4, 4, 4), np.uint8), (0.5, 0.4, 0.4))  # doctest: +SKIP
    """
    kind = output_format(path)
    arr = np.asarray(array)
    if arr.ndim != 3:
        raise VolumeWriteError(f"{path}: a volume needs a 3D (z, y, x) array, got shape {arr.shape}")
    if arr.dtype.kind not in "biuf":
        raise VolumeWriteError(f"{path}: cannot write dtype {arr.dtype}; use integer, bool or float data")
    provenance = tuple(provenance)
    if kind == "tiff":
        from .tiff import write_tiff
        return write_tiff(path, arr, voxel_size_um, phases, provenance, compression)
    if kind == "hdf5":
        from .hdf5 import write_hdf5
        comp = "gzip" if compression is None else (None if compression == "none" else compression)
        return write_hdf5(path, arr, voxel_size_um, phases, provenance, dataset, comp)
    if kind == "npy":
        return write_npy(path, arr, voxel_size_um, phases, provenance)
    if kind == "raw":
        return write_raw(path, arr, voxel_size_um, phases, provenance)
    from .slices import write_slices
    return write_slices(str(path).rstrip("/\\"), arr, voxel_size_um, phases, provenance, compression)


def write_volume(path, volume, **kwargs) -> Path:
    """Write a :class:`~microsim.Volume`: labels, voxel size, phase table and provenance.

    >>> write_volume("cathode.h5", volume)  # doctest: +SKIP
    """
    return write_array(path, volume.labels, volume.voxel_size_um, volume.phases, volume.provenance, **kwargs)
