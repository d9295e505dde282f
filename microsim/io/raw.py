"""Raw binary and .npy stacks, read through memory maps of a few planes at a time.

Both formats (and uncompressed TIFF) keep the volume as one C-ordered block
at a known offset, so a run of planes is a contiguous byte range. Each read maps
just that range and copies the requested voxels out, which keeps the memory in
use to the result plus the pages actually touched, however large the file.
A sidecar ``NAME.EXT.json`` written by microsim carries the layout, voxel size,
phase table and provenance.
"""
from __future__ import annotations

import mmap
from pathlib import Path

import numpy as np

from .errors import VolumeReadError, one_line
from .metadata import read_sidecar, sidecar_path, sidecar_phases
from .stack import RawLayout, StackInfo, StackReader, native


class ContiguousBlock:
    """A C-ordered (z, y, x) array stored contiguously in a file at ``offset``."""

    def __init__(self, path: Path, offset: int, shape, dtype: np.dtype):
        self.path = path
        self.offset = int(offset)
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(dtype)
        self.plane = self.shape[1] * self.shape[2] * self.dtype.itemsize

    def read(self, z: slice, y: slice, x: slice) -> np.ndarray:
        ny, nx = self.shape[1:]
        y0, y1, sy = y.indices(ny)
        rows = range(y0, y1, sy)
        planes = range(*z.indices(self.shape[0]))
        out = np.empty((len(planes), len(rows), len(range(*x.indices(nx)))), self.dtype)
        if out.size == 0:
            return native(out)
        row_bytes = nx * self.dtype.itemsize
        span = (rows[-1] - y0 + 1) * row_bytes
        with open(self.path, "rb") as fh:
            for i, k in enumerate(planes):
                # One small map per plane, covering only the rows read, closed right after:
                # the pages it touched (and those the kernel maps around them) leave the
                # process, so resident memory stays at one plane's rows however large the file.
                start = self.offset + k * self.plane + y0 * row_bytes
                base = start - start % mmap.ALLOCATIONGRANULARITY
                m = mmap.mmap(fh.fileno(), span + start - base, access=mmap.ACCESS_READ, offset=base)
                try:
                    rows_k = np.frombuffer(m, self.dtype, span // self.dtype.itemsize, start - base)
                    out[i] = rows_k.reshape(-1, nx)[::sy, x]
                    del rows_k
                finally:
                    m.close()
        return native(out)


def check_size(path: Path, needed: int, exact: bool, what: str, hint: str) -> None:
    size = path.stat().st_size
    if size < needed or (exact and size != needed):
        raise VolumeReadError(f"{path}: file has {size} bytes but {what} needs {needed}; {hint}")


class RawReader(StackReader):
    """A raw binary volume; the layout comes from ``layout`` or from the microsim sidecar."""

    def __init__(self, path: Path, layout: RawLayout | None):
        doc = read_sidecar(path)
        phases, provenance, vs, source = None, (), None, "not in the file (raw data has no metadata)"
        if doc is not None:
            side = sidecar_path(path)
            if layout is None:
                try:
                    layout = RawLayout(doc["shape"], doc["dtype"], doc.get("byte_order", "little"),
                                       doc.get("offset_bytes", 0))
                except (KeyError, ValueError) as exc:
                    raise VolumeReadError(f"{side}: sidecar layout is invalid ({exc}); fix it or give "
                                          "--raw-shape/--raw-dtype") from None
            phases = sidecar_phases(doc, str(side))
            provenance = tuple(doc.get("provenance") or ())
            if doc.get("voxel_size_um"):
                vs, source = tuple(float(v) for v in doc["voxel_size_um"]), f"sidecar {side.name}"
        if layout is None:
            raise VolumeReadError(f"{path}: raw data needs its layout; give --raw-shape Z,Y,X and "
                                  "--raw-dtype (e.g. uint8), and --byte-order for multi-byte types")
        shape_text = "(" + ",".join(map(str, layout.shape)) + ")"
        header = f" after a {layout.offset_bytes}-byte header" if layout.offset_bytes else ""
        check_size(path, layout.offset_bytes + layout.nbytes, exact=True,
                   what=f"shape {shape_text} {layout.dtype}{header}",
                   hint="check --raw-shape/--raw-dtype" + ("/--raw-offset" if layout.offset_bytes else ""))
        self.block = ContiguousBlock(path, layout.offset_bytes, layout.shape, layout.numpy_dtype)
        bo = layout.byte_order if np.dtype(layout.dtype).itemsize > 1 else "n/a"
        self.info = StackInfo(str(path), "raw", layout.shape, layout.dtype, vs, source, phases, provenance,
                              byte_order=bo, memory_mapped=True)

    def read(self, z, y, x):
        return self.block.read(z, y, x)


class NpyReader(StackReader):
    """A .npy file; C-ordered arrays are memory-mapped a few planes at a time."""

    def __init__(self, path: Path):
        try:
            with open(path, "rb") as fh:
                version = np.lib.format.read_magic(fh)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
                else:
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
                offset = fh.tell()
        except (ValueError, OSError, EOFError) as exc:
            raise VolumeReadError(f"{path}: not a readable .npy file ({one_line(exc)}); save it with numpy.save")
        if len(shape) != 3:
            raise VolumeReadError(f"{path}: array has {len(shape)} dimensions, shape {tuple(shape)}; "
                                  "a volume needs a 3D (z, y, x) array")
        if dtype.kind not in "biuf":
            raise VolumeReadError(f"{path}: dtype {dtype} is not an integer, bool or float type")
        nbytes = int(np.prod(shape)) * dtype.itemsize
        check_size(path, offset + nbytes, exact=False, what=f"the header's shape {tuple(shape)} {dtype.name}",
                   hint="the file is truncated; save it again")
        self.fortran = bool(fortran)
        self.path = path
        if self.fortran:
            # Planes of a Fortran-ordered array are not contiguous; numpy's own map serves the reads.
            self.block = None
            self.array = np.load(path, mmap_mode="r")
        else:
            self.block = ContiguousBlock(path, offset, shape, dtype)
        doc = read_sidecar(path)
        phases, provenance, vs, source = None, (), None, "not in the file (.npy has no metadata)"
        if doc is not None:
            side = sidecar_path(path)
            phases = sidecar_phases(doc, str(side))
            provenance = tuple(doc.get("provenance") or ())
            if doc.get("voxel_size_um"):
                vs, source = tuple(float(v) for v in doc["voxel_size_um"]), f"sidecar {side.name}"
        bo = {"<": "little", ">": "big"}.get(dtype.byteorder, "native") if dtype.itemsize > 1 else "n/a"
        self.info = StackInfo(str(path), "npy", tuple(int(n) for n in shape), dtype.name, vs, source, phases,
                              provenance, byte_order=bo, memory_mapped=True,
                              notes=("Fortran-ordered array: reads are not bounded to a few planes",)
                              if self.fortran else ())

    def read(self, z, y, x):
        if self.block is not None:
            return self.block.read(z, y, x)
        return native(np.array(self.array[z, y, x]))

    def close(self):
        self.array = None
