"""Opening a stack in any supported format, describing it cheaply, and reading a region of it.

Every format has a reader (in ``tiff.py``, ``slices.py``, ``hdf5.py``, ``raw.py``)
that knows the shape, dtype and metadata after reading the header only, and can
return any run of z planes cropped in y and x. :func:`iter_slabs` turns a
:class:`~microsim.io.region.Region` into such reads, a bounded number of planes
at a time, so a crop or a downsampled copy of a stack larger than memory never
holds more than the result plus one slab of input.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from ..downsample import majority_downsample, mean_downsample
from ..phases import PhaseTable
from ..volume import check_voxel_size
from .errors import VolumeReadError
from .region import Region, ResolvedRegion

#: input bytes one slab may span (whole planes, before cropping); at least one plane is always read
SLAB_BYTES = 32 * 2**20

TIFF_EXTENSIONS = (".tif", ".tiff")
HDF5_EXTENSIONS = (".h5", ".hdf5", ".hdf", ".he5")
RAW_EXTENSIONS = (".raw", ".bin", ".dat", ".vol")
NPY_EXTENSIONS = (".npy",)


def format_of_extension(ext: str) -> str | None:
    """'tiff', 'hdf5', 'npy' or 'raw' for a lower-case file extension ('.tif'), else None."""
    for name, known in (("tiff", TIFF_EXTENSIONS), ("hdf5", HDF5_EXTENSIONS), ("npy", NPY_EXTENSIONS),
                        ("raw", RAW_EXTENSIONS)):
        if ext in known:
            return name
    return None


@dataclass(frozen=True)
class RawLayout:
    """How to interpret a raw binary file.

    Parameters
    ----------
    shape : (nz, ny, nx)
        Array shape, C order (x fastest).
    dtype : str or numpy dtype
        Element type, e.g. ``'uint8'``, ``'uint16'``, ``'float32'``.
    byte_order : 'little', 'big' or 'native'
    offset_bytes : int
        Header bytes to skip at the start of the file.
    """

    shape: tuple[int, int, int]
    dtype: str = "uint8"
    byte_order: str = "little"
    offset_bytes: int = 0

    def __post_init__(self):
        try:
            shape = tuple(int(n) for n in self.shape)
        except (TypeError, ValueError):
            raise ValueError(f"raw shape {self.shape!r} is not three integers (z, y, x)") from None
        if len(shape) != 3 or min(shape) < 1:
            raise ValueError(f"raw shape {self.shape!r} must be three positive integers (z, y, x)")
        try:
            dt = np.dtype(self.dtype)
        except TypeError:
            raise ValueError(f"raw dtype {self.dtype!r} is not a numpy type name such as uint8, uint16, "
                             "float32") from None
        if dt.kind not in "biuf" or dt.itemsize > 8:
            raise ValueError(f"raw dtype {self.dtype!r} is not a plain integer, bool or float type")
        if self.byte_order not in ("little", "big", "native"):
            raise ValueError(f"byte order {self.byte_order!r} is not 'little', 'big' or 'native'")
        if int(self.offset_bytes) < 0:
            raise ValueError(f"raw offset {self.offset_bytes} is negative; give the header size in bytes")
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "dtype", dt.name)
        object.__setattr__(self, "offset_bytes", int(self.offset_bytes))

    @property
    def numpy_dtype(self) -> np.dtype:
        code = {"little": "<", "big": ">", "native": "="}[self.byte_order]
        return np.dtype(self.dtype).newbyteorder(code)

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * np.dtype(self.dtype).itemsize


@dataclass(frozen=True)
class StackInfo:
    """What a file holds, known before its voxels are read.

    Attributes
    ----------
    path : str
    format : str
        'tiff', 'imagej-tiff', 'ome-tiff', 'slices', 'hdf5', 'raw' or 'npy'.
    shape : (nz, ny, nx)
    dtype : str
        numpy type name of the voxels (native byte order once read).
    voxel_size_um : (dz, dy, dx) or None
        From the file's metadata; an entry is None when the file gives only some axes
        (a folder of slices knows the pixel size but not the slice thickness).
    voxel_size_source : str
        Where the voxel size came from, or why there is none.
    phases : PhaseTable or None
        Phase table stored with the volume (microsim writes one), if any.
    """

    path: str
    format: str
    shape: tuple[int, int, int]
    dtype: str
    voxel_size_um: tuple | None = None
    voxel_size_source: str = "not in the file"
    phases: PhaseTable | None = field(default=None, repr=False)
    provenance: tuple[str, ...] = ()
    dataset: str | None = None
    byte_order: str = "native"
    compression: str | None = None
    memory_mapped: bool = False
    n_files: int = 1
    notes: tuple[str, ...] = ()

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * np.dtype(self.dtype).itemsize

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in ("path", "format", "dtype", "voxel_size_source", "dataset", "byte_order",
                                           "compression", "memory_mapped", "n_files", "nbytes")}
        d["shape"] = list(self.shape)
        d["voxel_size_um"] = None if self.voxel_size_um is None else list(self.voxel_size_um)
        d["phases"] = None if self.phases is None else self.phases.to_dict()
        d["provenance"] = list(self.provenance)
        d["notes"] = list(self.notes)
        return d


class StackReader:
    """Base of the format readers: ``info`` plus ``read(z, y, x)`` of a run of planes."""

    info: StackInfo

    def read(self, z: slice, y: slice, x: slice) -> np.ndarray:
        """Planes ``z`` (a slice with step) cropped to ``y``, ``x``, as a new native-order array."""
        raise NotImplementedError

    def plane_bytes(self) -> int:
        """Bytes of input touched to read one whole plane (for slab sizing)."""
        return self.info.shape[1] * self.info.shape[2] * np.dtype(self.info.dtype).itemsize

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def native(arr: np.ndarray) -> np.ndarray:
    """``arr`` in native byte order (copied only when it is not)."""
    return arr if arr.dtype.isnative else arr.astype(arr.dtype.newbyteorder("="))


def has_glob(text: str) -> bool:
    return any(c in text for c in "*?[")


def detect_format(path, raw: RawLayout | None = None) -> str:
    """Format name of ``path`` from what it is (folder, glob) and its extension."""
    text = str(path)
    p = Path(text)
    if raw is not None:
        return "raw"
    if p.is_dir() or has_glob(text):
        return "slices"
    ext = p.suffix.lower()
    name = format_of_extension(ext)
    if name:
        return name
    raise VolumeReadError(f"{p}: unknown format {ext or '(no extension)'!r}; use a TIFF (.tif), HDF5 (.h5), "
                          ".npy or raw (.raw with --raw-shape/--raw-dtype) file, or a folder of TIFF slices")


def open_stack(path, *, dataset: str | None = None, raw: RawLayout | None = None) -> StackReader:
    """Open ``path`` and read its header; the voxels are read later by :func:`read_region`.

    Parameters
    ----------
    path : str or Path
        A TIFF file, a folder of 2D TIFF slices or a glob pattern of them (``'fib/*.tif'``),
        an HDF5 file, a .npy file or a raw binary file.
    dataset : str, optional
        HDF5 dataset path; by default the file's only 3D dataset.
    raw : RawLayout, optional
        Layout of a raw binary file (not needed when it has a microsim sidecar).
    """
    kind = detect_format(path, raw)
    text = str(path)
    from ..safety import check_input
    check_input(text, "stack")
    if kind != "slices" and not Path(text).exists():
        raise VolumeReadError(f"{text}: file not found; check the path")
    if kind == "slices" and not has_glob(text) and not Path(text).is_dir():
        raise VolumeReadError(f"{text}: folder not found; check the path")
    if kind == "tiff":
        from .tiff import TiffReader
        return TiffReader(Path(text))
    if kind == "slices":
        from .slices import SliceReader
        return SliceReader(text)
    if kind == "hdf5":
        from .hdf5 import Hdf5Reader
        return Hdf5Reader(Path(text), dataset)
    if kind == "npy":
        from .raw import NpyReader
        return NpyReader(Path(text))
    from .raw import RawReader
    return RawReader(Path(text), raw)


def describe(path, *, dataset: str | None = None, raw: RawLayout | None = None) -> StackInfo:
    """Shape, dtype, voxel size and stored metadata of a stack, from its header only.

    Examples
    --------
    >>> info = describe("samples/electrode_64.tif")  # doctest: +SKIP
    >>> info.shape, info.dtype  # doctest: +SKIP
    ((64, 64, 64), 'uint8')
    """
    with open_stack(path, dataset=dataset, raw=raw) as reader:
        return reader.info


def reducer(name: str, dtype) -> Callable[[np.ndarray, tuple], np.ndarray]:
    """The block reduction for ``name``: 'majority', 'mean' or 'auto' (majority for integer data)."""
    dt = np.dtype(dtype)
    if name == "auto":
        name = "mean" if dt.kind == "f" else "majority"
    if name == "majority":
        if dt.kind == "f":
            raise ValueError(f"majority vote needs integer labels but the stack holds {dt.name}; "
                             "use --reduce mean for grayscale data")
        return majority_downsample
    if name == "mean":
        return mean_downsample
    raise ValueError(f"reduction {name!r} is not 'majority', 'mean' or 'auto'")


def iter_slabs(reader: StackReader, region: ResolvedRegion, reduce: Callable | None = None,
               budget_bytes: int = SLAB_BYTES) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(k0, slab)``: output planes ``k0 .. k0 + len(slab)`` of ``region``, a few at a time."""
    nz_out = region.out_shape[0]
    ys, xs = region.axis_slice(1), region.axis_slice(2)
    bz = region.block[0]
    per_out_plane = max(1, reader.plane_bytes()) * bz
    batch = max(1, budget_bytes // per_out_plane)
    blocked = region.block != (1, 1, 1)
    for k0 in range(0, nz_out, batch):
        k1 = min(nz_out, k0 + batch)
        if blocked:
            z = slice(region.start[0] + k0 * bz, region.start[0] + k1 * bz, 1)
            yield k0, reduce(reader.read(z, ys, xs), region.block)
        else:
            sz = region.stride[0]
            z = slice(region.start[0] + k0 * sz, region.start[0] + (k1 - 1) * sz + 1, sz)
            yield k0, reader.read(z, ys, xs)


def read_region(reader: StackReader, region: Region | None = None, reduce: str = "auto",
                progress=None) -> np.ndarray:
    """Read ``region`` of an open stack into a new array (z, y, x) in native byte order.

    ``reduce`` says how a block factor combines voxels: 'majority' (labels),
    'mean' (grayscale, float32 result) or 'auto' (majority for integer data).
    ``progress`` is a :class:`microsim.progress.Progress` or None.
    """
    region = region or Region()
    info = reader.info
    rr = region.resolve(info.shape, info.path)
    fn = reducer(reduce, info.dtype) if region.block != (1, 1, 1) else None
    out = None
    name = Path(info.path).name or info.path
    for k0, slab in iter_slabs(reader, rr, fn):
        if out is None:
            out = np.empty(rr.out_shape, dtype=slab.dtype)
        out[k0:k0 + slab.shape[0]] = slab
        if progress is not None:
            progress.bar(f"reading {name}", k0 + slab.shape[0], rr.out_shape[0])
    return out


def resolve_voxel_size(info: StackInfo, voxel_size_um=None, slice_thickness_um=None):
    """Voxel size of the file's voxels: ``voxel_size_um`` if given, else the file's, with
    ``slice_thickness_um`` replacing dz. Returns ``(size or None, source)``; None when the
    size is not known for all three axes."""
    if voxel_size_um is not None:
        return check_voxel_size(voxel_size_um), "given"
    vs = list(info.voxel_size_um) if info.voxel_size_um is not None else [None, None, None]
    source = info.voxel_size_source
    if slice_thickness_um is not None:
        t = check_voxel_size(slice_thickness_um)[0]
        vs[0] = t
        source = f"{source}; slice thickness given" if any(v is not None for v in vs[1:]) else "slice thickness given"
    if any(v is None for v in vs):
        return None, source
    return check_voxel_size(vs), source
