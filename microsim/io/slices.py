"""Folders (or glob patterns) of 2D TIFF slices, one file per z plane.

Slices are ordered naturally, so ``slice_2.tif`` comes before ``slice_10.tif``.
Every slice header is checked when the stack is opened: a folder with slices of
different sizes or types fails before any voxel is read. The in-plane pixel
size comes from the first slice's ImageJ or OME metadata; a FIB-SEM slice
thickness is rarely stored, so it usually has to be given (``--slice-thickness``).
"""
from __future__ import annotations

import glob
import os
import re
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from .errors import VolumeReadError, VolumeWriteError, one_line
from .stack import TIFF_EXTENSIONS, StackInfo, StackReader, has_glob, native
from .tiff import check_damage, imagej_kwargs, open_tiff, tiff_metadata, tifffile_warnings


def natural_key(name: str):
    """Sort key that orders embedded numbers by value: 'a2' < 'a10'.

    >>> sorted(["s10.tif", "s2.tif", "s1.tif"], key=natural_key)
    ['s1.tif', 's2.tif', 's10.tif']
    """
    return [(0, int(t), "") if t.isdigit() else (1, 0, t.lower()) for t in re.split(r"(\d+)", name) if t]


def list_slices(spec: str) -> list[Path]:
    """The TIFF files of a folder or a glob pattern, in natural order."""
    if has_glob(spec):
        files = [Path(f) for f in glob.glob(spec) if os.path.isfile(f)]
        files = [f for f in files if f.suffix.lower() in TIFF_EXTENSIONS]
        where = f"pattern {spec!r} matches no TIFF files; check the pattern (quote it so the shell leaves it alone)"
    else:
        folder = Path(spec)
        files = [f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in TIFF_EXTENSIONS
                 and not f.name.startswith(".")]
        where = "folder holds no .tif/.tiff slices; point to the folder of 2D slices or give a glob 'dir/*.tif'"
    if not files:
        raise VolumeReadError(f"{spec}: {where}")
    return sorted(files, key=lambda f: natural_key(f.name))


def _slice_header(path: Path):
    tif = open_tiff(path)
    try:
        if not tif.series:
            raise VolumeReadError(f"{path}: TIFF slice holds no image")
        s = tif.series[0]
        shape = tuple(s.shape[-2:])
        if len(s.shape) < 2 or any(n != 1 for n in s.shape[:-2]) or not s.axes.endswith("YX"):
            raise VolumeReadError(f"{path}: slice has shape {s.shape}; every file of a slice folder must be one "
                                  "2D single-channel image")
        return shape, np.dtype(s.dtype), tif
    except BaseException:
        tif.close()
        raise


class SliceReader(StackReader):
    """A stack made of one 2D TIFF file per z plane."""

    def __init__(self, spec: str):
        self.files = list_slices(spec)
        shape0, dtype0, tif = _slice_header(self.files[0])
        try:
            meta = tiff_metadata(tif, tif.pages[0])
            compression = tif.pages[0].compression
        finally:
            tif.close()
        for f in self.files[1:]:
            shape, dtype, t = _slice_header(f)
            t.close()
            if shape != shape0:
                raise VolumeReadError(f"{f}: slice is {shape[0]} x {shape[1]} pixels but {self.files[0].name} is "
                                      f"{shape0[0]} x {shape0[1]}; all slices of a stack must have the same size")
            if dtype != dtype0:
                raise VolumeReadError(f"{f}: slice has pixel type {dtype} but {self.files[0].name} has {dtype0}; "
                                      "all slices of a stack must have the same type")
        if dtype0.kind not in "biuf":
            raise VolumeReadError(f"{self.files[0]}: pixel type {dtype0} is not an integer, bool or float type")
        vs = meta["voxel_size_um"]
        notes = meta["notes"]
        if vs is not None and vs[0] is None:
            notes = notes + ("slice thickness is not stored; give it with --slice-thickness (um)",)
        self.plane_shape = shape0
        self.info = StackInfo(spec, "slices", (len(self.files),) + shape0, dtype0.name, vs, meta["source"],
                              meta["phases"], meta["provenance"],
                              compression=None if compression == 1 else compression.name.lower(),
                              n_files=len(self.files), notes=notes)

    def read(self, z, y, x):
        import tifffile
        planes = []
        for k in range(*z.indices(len(self.files))):
            f = self.files[k]
            with tifffile_warnings() as messages:
                try:
                    data = tifffile.imread(f)
                except Exception as exc:
                    raise VolumeReadError(f"{f}: slice cannot be read ({one_line(exc)}); "
                                          "the file is damaged or was changed while reading") from None
            check_damage(f, messages)
            data = data.reshape(-1, *data.shape[-2:])[0] if data.ndim > 2 else data
            if data.shape != self.plane_shape:
                raise VolumeReadError(f"{f}: slice is {data.shape} but the stack's slices are {self.plane_shape}; "
                                      "all slices must have the same size")
            planes.append(data[y, x])
        return native(np.stack(planes))


def write_slices(folder, array: np.ndarray, voxel_size_um=None, phases=None, provenance=(),
                 compression: str | None = None, prefix: str = "slice_") -> Path:
    """Write one ImageJ TIFF per z plane into a new folder, made complete before it appears.

    The files are named ``slice_0000.tif`` ...; each carries the in-plane pixel size,
    and the slice thickness, phase table and provenance as ImageJ properties.
    The folder is built under a temporary name next to ``folder`` and renamed at the end;
    an existing non-empty ``folder`` is an error.
    """
    import tifffile
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise VolumeWriteError(f"{folder}: output folder already exists and is not empty; remove it or choose "
                               "another name")
    arr = np.asarray(array)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    if arr.ndim != 3:
        raise VolumeWriteError(f"{folder}: slices need a 3D (z, y, x) array, got shape {arr.shape}")
    if arr.dtype not in (np.uint8, np.uint16, np.float32):
        raise VolumeWriteError(f"{folder}: slices are written as ImageJ TIFFs, which hold uint8, uint16 or float32, "
                               f"not {arr.dtype}; write a .tif or .h5 file instead")
    digits = max(4, len(str(arr.shape[0] - 1)))
    kw = imagej_kwargs(arr[0], voxel_size_um, phases, provenance)
    kw["metadata"].pop("axes")
    if compression:
        kw["compression"] = compression
    parent = folder.parent if str(folder.parent) else Path(".")
    parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder, suffix="") as tmp:
        os.unlink(tmp)
        os.mkdir(tmp)
        try:
            for k in range(arr.shape[0]):
                tifffile.imwrite(Path(tmp) / f"{prefix}{k:0{digits}d}.tif", np.ascontiguousarray(arr[k]), **kw)
            if folder.exists():
                folder.rmdir()
        except BaseException:
            for f in Path(tmp).iterdir():
                f.unlink()
            os.rmdir(tmp)
            raise
    return folder
