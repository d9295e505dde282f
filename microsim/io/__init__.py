"""Reading and writing volumes: TIFF stacks, slice folders, HDF5, raw binary and .npy.

:func:`describe` reports a stack's shape, dtype, voxel size and stored metadata
from its header; :func:`load_stack` reads all of it or a region (crop, stride,
block downsampling) without loading the rest; :func:`read_volume` returns a
labelled :class:`~microsim.Volume`; :func:`write_array` and :func:`write_volume`
write any format, chosen by the output name.

Voxel size: an explicit ``voxel_size_um`` wins; otherwise the file's metadata
(ImageJ, OME, HDF5 attributes, microsim sidecars); ``slice_thickness_um``
replaces dz only. A crop keeps the voxel size, a stride or block factor s
multiplies it by s along that axis.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..phases import PhaseTable, phase_table
from ..volume import Volume, as_label_array
from .errors import VolumeReadError, VolumeWriteError
from .region import Region, parse_crop
from .stack import RawLayout, StackInfo, describe, open_stack, read_region, resolve_voxel_size
from .writers import write_array, write_volume

__all__ = ["LoadedStack", "RawLayout", "Region", "StackInfo", "VolumeReadError", "VolumeWriteError", "describe",
           "load_stack", "open_stack", "parse_crop", "read_array", "read_volume", "write_array", "write_volume"]


@dataclass(frozen=True)
class LoadedStack:
    """The voxels read from a stack and what is known about them.

    Attributes
    ----------
    array : ndarray (z, y, x), native byte order
    info : StackInfo of the file (shape and voxel size of the whole file)
    voxel_size_um : (dz, dy, dx) of ``array`` in micrometres, or None when unknown
        (already multiplied by the stride or block factor)
    voxel_size_source : where the voxel size came from
    provenance : the file's stored provenance plus this read
    """

    array: np.ndarray = field(repr=False)
    info: StackInfo
    voxel_size_um: tuple[float, float, float] | None
    voxel_size_source: str
    provenance: tuple[str, ...]

    def to_dict(self) -> dict:
        return {"shape": list(self.array.shape), "dtype": self.array.dtype.name, "info": self.info.to_dict(),
                "voxel_size_um": None if self.voxel_size_um is None else list(self.voxel_size_um),
                "voxel_size_source": self.voxel_size_source, "provenance": list(self.provenance)}


def load_stack(path, *, crop=None, stride=None, downsample=None, reduce: str = "auto", dataset: str | None = None,
               raw: RawLayout | None = None, voxel_size_um=None, slice_thickness_um=None,
               progress=None) -> LoadedStack:
    """Read a stack, or a region of it, with its voxel size and provenance.

    Parameters
    ----------
    path : str or Path
        TIFF, folder or glob of 2D TIFF slices, HDF5, .npy or raw file.
    crop : 'z0:z1,y0:y1,x0:x1' or ((z0, z1), (y0, y1), (x0, x1)), optional
        Voxel ranges of the file to read (end excluded).
    stride : int or (sz, sy, sx), optional
        Keep every s-th voxel of the crop.
    downsample : int or (bz, by, bx), optional
        Reduce blocks of the crop to one voxel, by ``reduce``: 'majority' (labels),
        'mean' (grayscale, float32 result) or 'auto' (majority for integer data).
    dataset : str, optional
        HDF5 dataset path (default: the only 3D dataset).
    raw : RawLayout, optional
        Layout of a raw binary file.
    voxel_size_um : float or (dz, dy, dx), optional
        Voxel size of the file in micrometres; overrides the file's metadata.
    slice_thickness_um : float, optional
        Replaces dz of the file's voxel size (FIB-SEM slice thickness).
    progress : microsim.progress.Progress, optional

    Only the planes of the crop are read, a few at a time; memory use is the
    result plus about 32 MB of input.

    Examples
    --------
    >>> s = load_stack("samples/electrode_64.tif", crop="0:32,:,:", downsample=2)  # doctest: +SKIP
    >>> s.array.shape  # doctest: +SKIP
    (16, 32, 32)
    """
    region = Region.make(crop, stride, downsample)
    with open_stack(path, dataset=dataset, raw=raw) as reader:
        info = reader.info
        vs, source = resolve_voxel_size(info, voxel_size_um, slice_thickness_um)
        array = read_region(reader, region, reduce, progress)
    if vs is not None:
        vs = tuple(v * s for v, s in zip(vs, region.scale))
    step = f"read {Path(str(path)).name or path} ({info.format}"
    if not region.is_full:
        step += "; " + region.describe()
        if region.block != (1, 1, 1):
            used = reduce if reduce != "auto" else ("mean" if np.dtype(info.dtype).kind == "f" else "majority")
            step += " by " + ("mean" if used == "mean" else "majority vote")
    step += ")"
    return LoadedStack(array, info, vs, source, info.provenance + (step,))


def read_array(path, **kwargs) -> np.ndarray:
    """The voxels of a stack (or of a region of it) as an array; see :func:`load_stack` for the options.

    >>> read_array("samples/electrode_64.tif", crop=((0, 8), (0, 8), (0, 8))).shape  # doctest: +SKIP
    (8, 8, 8)
    """
    return load_stack(path, **kwargs).array


def read_volume(path, phases=None, voxel_size_um=None, *, crop=None, stride=None, downsample=None,
                dataset: str | None = None, raw: RawLayout | None = None, slice_thickness_um=None,
                progress=None) -> Volume:
    """Read a labelled volume with its phase table and voxel size.

    Parameters
    ----------
    path : str or Path
        Any format :func:`load_stack` reads; the voxels must be integer labels 0..255.
    phases : PhaseTable, dict, path to TOML, or None
        Phase table; None uses the table stored in the file (microsim writes one).
    voxel_size_um : float or (dz, dy, dx), optional
        Voxel size of the file in um; by default the file's, else 1 um.
    crop, stride, downsample, dataset, raw, slice_thickness_um, progress
        As for :func:`load_stack`; a block factor takes the majority label of each block.

    Examples
    --------
    >>> v = read_volume("samples/electrode_64.tif", "samples/electrode_phases.toml", 0.390625)  # doctest: +SKIP
    >>> v.shape  # doctest: +SKIP
    (64, 64, 64)
    """
    loaded = load_stack(path, crop=crop, stride=stride, downsample=downsample, reduce="majority", dataset=dataset,
                        raw=raw, voxel_size_um=voxel_size_um, slice_thickness_um=slice_thickness_um,
                        progress=progress)
    info = loaded.info
    if loaded.array.dtype.kind == "f":
        raise VolumeReadError(f"{path}: holds grayscale {loaded.array.dtype} data, not labels; "
                              "segment it first (microsim segment)")
    try:
        labels = as_label_array(loaded.array)
    except ValueError as exc:
        raise VolumeReadError(f"{path}: {exc}") from None
    if phases is not None:
        table = phase_table(phases)
    elif info.phases is not None:
        table = info.phases
    else:
        raise VolumeReadError(f"{path}: the file stores no phase table; give one (--phases TABLE.toml)")
    vs = loaded.voxel_size_um
    provenance = loaded.provenance
    if vs is None:
        partial = slice_thickness_um is not None or (
            info.voxel_size_um is not None and any(v is not None for v in info.voxel_size_um))
        if partial:
            missing = "the slice thickness" if slice_thickness_um is None else "the in-plane pixel size"
            raise VolumeReadError(f"{path}: the voxel size is known only along some axes ({missing} is not in the "
                                  "file); give --voxel-size dz,dy,dx"
                                  + (" or --slice-thickness" if slice_thickness_um is None else ""))
        vs = (1.0, 1.0, 1.0)
        provenance = provenance + ("voxel size not in the file: 1 um assumed",)
    try:
        return Volume(labels, table, vs, provenance)
    except ValueError as exc:
        raise VolumeReadError(f"{path}: {exc}") from None
