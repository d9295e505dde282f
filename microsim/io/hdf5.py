"""HDF5 stacks: a 3D dataset read by hyperslabs, written with its metadata and an XDMF sidecar.

Without a dataset path the file's only 3D dataset is used. The voxel size is
taken from attributes of the dataset or of a group above it: ``voxel_size_um``
(microsim), ``element_size_um`` (Fiji and ilastik), or ``spacing`` /
``voxel_size`` together with a ``unit`` attribute; all in (z, y, x) order.
"""
from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from .errors import VolumeReadError, VolumeWriteError, one_line
from .metadata import length_to_um, phases_from_json, phases_to_json, provenance_from_json, provenance_to_json
from .stack import StackInfo, StackReader, native
from .xdmf import xdmf_grid_text, xdmf_path, xdmf_text


def _as_text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray) and value.shape == ():
        return _as_text(value[()])
    return str(value)


def _triple(value, unit=None):
    arr = np.atleast_1d(np.asarray(value, dtype=np.float64)).ravel()
    if arr.size == 1:
        arr = np.repeat(arr, 3)
    if arr.size != 3:
        return None
    if unit is None:
        return tuple(float(v) if v > 0 else None for v in arr)
    return tuple(length_to_um(v, unit) for v in arr)


def hdf5_voxel_size(ds):
    """(voxel size, source) from the attributes of ``ds`` or of the groups above it."""
    obj = ds
    while True:
        a = obj.attrs
        try:
            if "voxel_size_um" in a:
                return _triple(a["voxel_size_um"]), f"attribute voxel_size_um of {obj.name}"
            if "element_size_um" in a:
                return _triple(a["element_size_um"]), f"attribute element_size_um of {obj.name}"
            for key in ("spacing", "voxel_size"):
                if key in a and "unit" in a:
                    vs = _triple(a[key], _as_text(a["unit"]))
                    if vs is not None and any(v is not None for v in vs):
                        return vs, f"attributes {key} and unit of {obj.name}"
        except (TypeError, ValueError):
            pass
        if obj.name == "/":
            return None, "not in the file"
        obj = obj.parent


def find_3d_datasets(f) -> tuple[list[str], list[str]]:
    """Names of the 3D datasets of an open file, and a description of the others."""
    import h5py
    found, others = [], []

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            if obj.ndim == 3:
                found.append("/" + name)
            else:
                others.append(f"/{name} {obj.shape}")
    f.visititems(visit)
    return found, others


class Hdf5Reader(StackReader):
    """One 3D dataset of an HDF5 file."""

    def __init__(self, path: Path, dataset: str | None = None):
        import h5py
        self.path = path
        try:
            self.file = h5py.File(path, "r")
        except OSError as exc:
            raise VolumeReadError(f"{path}: not a readable HDF5 file ({one_line(exc)}); check that it is "
                                  "complete") from None
        try:
            self._setup(dataset)
        except BaseException:
            self.file.close()
            raise

    def _setup(self, dataset):
        import h5py
        path, f = self.path, self.file
        found, others = find_3d_datasets(f)
        if dataset is None:
            if not found:
                listed = ", ".join(others[:5]) + (" ..." if len(others) > 5 else "") if others else "none"
                raise VolumeReadError(f"{path}: HDF5 file has no 3D dataset (datasets: {listed}); "
                                      "store the volume as one (z, y, x) dataset")
            if len(found) > 1:
                raise VolumeReadError(f"{path}: HDF5 file has {len(found)} 3D datasets "
                                      f"({', '.join(found[:6])}); choose one with --dataset")
            dataset = found[0]
        obj = f.get(dataset)
        if not isinstance(obj, h5py.Dataset):
            what = "is a group" if obj is not None else "does not exist"
            raise VolumeReadError(f"{path}: dataset {dataset!r} {what}; 3D datasets in the file: "
                                  f"{', '.join(found) or 'none'}")
        if obj.ndim != 3:
            raise VolumeReadError(f"{path}: dataset {dataset!r} has shape {obj.shape}, not 3D (z, y, x); "
                                  f"3D datasets in the file: {', '.join(found) or 'none'}")
        dtype = obj.dtype
        if dtype.kind not in "biuf":
            raise VolumeReadError(f"{path}: dataset {dataset!r} has type {dtype}, not an integer, bool or "
                                  "float type")
        self.ds = obj
        vs, source = hdf5_voxel_size(obj)
        if vs is not None and all(v is None for v in vs):
            vs, source = None, "not in the file"
        a = obj.attrs
        phases = phases_from_json(_as_text(a["microsim_phases"]), f"{path}:{obj.name}") \
            if "microsim_phases" in a else None
        provenance = provenance_from_json(_as_text(a["microsim_provenance"])) if "microsim_provenance" in a else ()
        comp = obj.compression
        self.info = StackInfo(str(path), "hdf5", tuple(int(n) for n in obj.shape), dtype.name, vs, source, phases,
                              provenance, dataset=obj.name,
                              byte_order={"<": "little", ">": "big"}.get(dtype.byteorder, "native")
                              if dtype.itemsize > 1 else "n/a",
                              compression=comp, memory_mapped=False,
                              notes=(f"chunks {obj.chunks}",) if obj.chunks else ())

    def read(self, z, y, x):
        try:
            return native(np.asarray(self.ds[z, y, x]))
        except (OSError, ValueError) as exc:
            raise VolumeReadError(f"{self.path}: dataset {self.ds.name} cannot be read ({one_line(exc)}); "
                                  "the file is damaged") from None

    def close(self):
        self.file.close()


class GuardedFile:
    """A binary file for h5py's file-object driver whose writes never raise into the HDF5 library.

    On a full disk the HDF5 library, handed an error by a write, can crash the
    process while it closes the file (a segmentation fault). Here a failing write
    is recorded and reported as done; :meth:`check` raises the recorded error
    after h5py has closed the file, and the caller removes the temporary.
    """

    def __init__(self, path):
        self._fh = open(path, "w+b")
        self.error: OSError | None = None

    def _guard(self, fn, *args, default=None):
        if self.error is not None:
            return default
        try:
            return fn(*args)
        except OSError as exc:
            self.error = exc
            return default

    def write(self, data) -> int:
        n = len(memoryview(data).cast("B"))
        self._guard(self._fh.write, data)
        return n

    def flush(self) -> None:
        self._guard(self._fh.flush)

    def truncate(self, size=None):
        return self._guard(self._fh.truncate, size, default=size)

    def seek(self, offset, whence=0):
        return self._fh.seek(offset, whence)

    def tell(self):
        return self._fh.tell()

    def read(self, size=-1):
        return self._fh.read(size)

    def readinto(self, buf):
        return self._fh.readinto(buf)

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def close(self) -> None:
        self._guard(self._fh.flush)
        self._guard(os.fsync, self._fh.fileno())
        with contextlib.suppress(OSError):
            self._fh.close()

    def check(self) -> None:
        """Raise the first write error (a full disk), if there was one."""
        if self.error is not None:
            raise self.error


def open_h5(path, mode: str = "w"):
    """``(h5py.File, GuardedFile)`` of a new HDF5 file written through :class:`GuardedFile`."""
    import h5py
    guard = GuardedFile(path)
    try:
        return h5py.File(guard, mode), guard
    except BaseException:
        guard.close()
        raise


def write_hdf5(path, array: np.ndarray, voxel_size_um=None, phases=None, provenance=(), dataset: str | None = None,
               compression: str | None = "gzip", xdmf: bool = True) -> Path:
    """Write a 3D array to an HDF5 file, with an XDMF sidecar ``NAME.xdmf`` for ParaView.

    The dataset (default ``/labels`` for integer data, ``/image`` otherwise) is
    chunked and, by default, gzip-compressed. Its attributes hold the voxel size
    (``voxel_size_um`` and ``element_size_um``, z y x), ``unit`` = 'um',
    ``microsim_phases`` (the phase table as JSON) and ``microsim_provenance``.
    Both files are written under temporary names and renamed when complete.
    """
    import h5py
    from .. import __version__
    path = Path(path)
    arr = np.ascontiguousarray(array)
    if arr.ndim != 3:
        raise VolumeWriteError(f"{path}: HDF5 output needs a 3D (z, y, x) array, got shape {arr.shape}")
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    name = dataset or ("/labels" if arr.dtype.kind in "iu" else "/image")
    name = "/" + name.lstrip("/")
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(atomic_path(path))
        tmp_x = stack.enter_context(atomic_path(xdmf_path(path))) if xdmf else None
        f, guard = open_h5(tmp)
        try:
            with f:
                _create_dataset(f, name, arr, voxel_size_um, phases, provenance, compression)
                f.attrs["creator"] = f"microsim {__version__}"
        finally:
            guard.close()
        guard.check()
        if xdmf:
            Path(tmp_x).write_text(xdmf_text(path.name, name, arr.shape, arr.dtype, voxel_size_um))
    return path


def _create_dataset(f, name: str, arr: np.ndarray, voxel_size_um, phases, provenance, compression):
    """A chunked dataset with microsim's attributes (voxel size z y x in um, phase table, provenance)."""
    chunks = tuple(min(n, 64) for n in arr.shape)
    ds = f.create_dataset(name, data=arr, chunks=chunks, compression=compression)
    if voxel_size_um is not None:
        vs = np.array([float(v) for v in voxel_size_um], dtype=np.float64)
        ds.attrs["voxel_size_um"] = vs
        ds.attrs["element_size_um"] = vs
    ds.attrs["unit"] = "um"
    ds.attrs["axes"] = "zyx"
    if phases is not None:
        ds.attrs["microsim_phases"] = phases_to_json(phases)
    ds.attrs["microsim_provenance"] = provenance_to_json(provenance)
    return ds


class FieldsWriter:
    """Several (z, y, x) arrays of one grid, added one at a time to one HDF5 file with one XDMF sidecar.

    Made by :func:`open_fields`. Both files exist under temporary names until
    :meth:`close`, which writes the XDMF (listing every dataset as a cell array)
    and renames them; :meth:`abort` removes them. Arrays can be dropped after
    :meth:`add`, so a caller holds one field in memory at a time.
    """

    def __init__(self, path, voxel_size_um=None, phases=None, provenance=(), compression: str | None = "gzip"):
        import h5py
        from .. import __version__
        self.path = Path(path)
        self.voxel_size_um = voxel_size_um
        self.phases = phases
        self.provenance = tuple(provenance)
        self.compression = compression
        self.shape = None
        self._items: list[tuple[str, str, np.dtype]] = []
        self._stack = contextlib.ExitStack()
        try:
            self._tmp = self._stack.enter_context(atomic_path(self.path))
            self._tmp_x = self._stack.enter_context(atomic_path(xdmf_path(self.path)))
            self._file, self._guard = open_h5(self._tmp)
            self._file.attrs["creator"] = f"microsim {__version__}"
        except BaseException:
            self._stack.__exit__(*sys.exc_info())
            raise

    @property
    def names(self) -> list[str]:
        """Dataset paths written so far."""
        return [d for _, d, _ in self._items]

    def add(self, name: str, array: np.ndarray) -> None:
        """Store ``array`` as dataset ``/name`` (its attribute name in ParaView: name with '/' -> '_')."""
        arr = np.ascontiguousarray(array)
        if arr.dtype == bool:
            arr = arr.astype(np.uint8)
        if arr.ndim != 3 or (self.shape is not None and arr.shape != self.shape):
            raise VolumeWriteError(f"{self.path}: field {name!r} has shape {arr.shape}; every field needs the "
                                   f"grid's 3D shape {self.shape}")
        self.shape = arr.shape
        dataset = "/" + name.strip("/")
        _create_dataset(self._file, dataset, arr, self.voxel_size_um, self.phases if arr.dtype.kind in "iu" else None,
                        self.provenance, self.compression)
        self._guard.check()  # a full disk ends the run now, not after the last solve
        self._items.append((name.strip("/").replace("/", "_"), dataset, arr.dtype))

    def close(self) -> Path:
        """Finish both files and give them their final names."""
        try:
            self._file.close()
        finally:
            self._guard.close()
        try:
            self._guard.check()
        except BaseException:
            self._stack.__exit__(*sys.exc_info())
            raise
        if self.shape is not None:
            Path(self._tmp_x).write_text(xdmf_grid_text(self.path.name, self._items, self.shape, self.voxel_size_um,
                                                        self.path.stem))
        self._stack.close()
        return self.path

    def abort(self) -> None:
        """Remove both temporary files; the final names are never created."""
        with contextlib.suppress(Exception):
            self._file.close()
        with contextlib.suppress(Exception):
            self._guard.close()
        reason = VolumeWriteError(f"{self.path}: writing abandoned")
        self._stack.__exit__(type(reason), reason, None)


def open_fields(path, voxel_size_um=None, phases=None, provenance=(), compression: str | None = "gzip"
                ) -> FieldsWriter:
    """Start an HDF5 file of several fields on one grid, with an XDMF sidecar for ParaView.

    >>> w = open_fields("fields.h5", (0.5, 0.4, 0.4))  # doctest: +SKIP
    >>> w.add("labels", labels); w.add("ionic/x/potential_V", phi); w.close()  # doctest: +SKIP
    """
    return FieldsWriter(path, voxel_size_um, phases, provenance, compression)
