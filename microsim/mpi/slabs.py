"""Cutting a volume into slabs of z planes, one per rank, and reading one slab straight from its file.

Each rank opens the file, reads the header and then only its own planes:
HDF5 by hyperslab, TIFF page by page (uncompressed TIFF, raw and .npy through a
memory map of just those planes); see :mod:`microsim.io`. The neighbours'
planes that the stencil needs arrive later by message (halo exchange), so no
rank ever holds more of the volume than its slab.
"""
from __future__ import annotations

from ..io import describe, read_volume
from ..io.region import Region
from .world import Slab


class DecompositionError(ValueError):
    """A volume cannot be cut into as many slabs as there are ranks."""


def slab_bounds(nz: int, parts: int, align: int = 1) -> tuple[int, ...]:
    """First plane of each of ``parts`` slabs of ``nz`` planes, followed by ``nz``.

    Slabs differ in thickness by at most ``align`` planes and every slab but the
    last starts at a multiple of ``align`` (a power of two), so that blocks of
    ``align`` planes, and the coarse grids built from them, never straddle two
    ranks. ``align`` is halved until every rank gets at least one block.

    >>> slab_bounds(10, 3)
    (0, 4, 7, 10)
    >>> slab_bounds(10, 2, align=4)
    (0, 8, 10)
    """
    if parts < 1:
        raise DecompositionError(f"{parts} ranks; a run needs at least one")
    if nz < parts:
        raise DecompositionError(f"the volume has {nz} planes along z but the run has {parts} ranks; "
                                 f"use at most {nz} ranks or a larger volume")
    if align < 1 or align & (align - 1):
        raise DecompositionError(f"slab alignment {align} is not a power of two")
    while align > 1 and -(-nz // align) < parts:
        align //= 2
    units = -(-nz // align)
    base, extra = divmod(units, parts)
    return tuple(min(nz, align * (k * base + min(k, extra))) for k in range(parts + 1))


def read_slab(path, phases, voxel_size_um=None, *, rank: int, size: int, align: int = 1, crop=None, stride=None,
              downsample=None, dataset=None, raw=None, slice_thickness_um=None):
    """Read rank ``rank``'s slab of a labelled volume file.

    The crop, stride and block downsampling apply to the whole file exactly as
    in :func:`microsim.io.read_volume`; the result of that selection is cut into
    ``size`` slabs by :func:`slab_bounds`, and only the file planes behind this
    rank's slab are read.

    Returns
    -------
    volume : Volume
        The slab's labels (z planes ``slab.z0 .. slab.z1-1`` of the selection),
        phase table and voxel size.
    slab : Slab
    shape : (nz, ny, nx) of the whole selection
    """
    info = describe(path, dataset=dataset, raw=raw)
    rr = Region.make(crop, stride, downsample).resolve(info.shape, info.path)
    bounds = slab_bounds(rr.out_shape[0], size, align)
    a, b = bounds[rank], bounds[rank + 1]
    z0, s, f = rr.start[0], rr.stride[0], rr.block[0]
    zcrop = (z0 + a * f, z0 + b * f) if f > 1 else (z0 + a * s, z0 + (b - 1) * s + 1)
    slab_crop = (zcrop, (rr.start[1], rr.stop[1]), (rr.start[2], rr.stop[2]))
    volume = read_volume(path, phases, voxel_size_um, crop=slab_crop, stride=stride, downsample=downsample,
                         dataset=dataset, raw=raw, slice_thickness_um=slice_thickness_um)
    return volume, Slab(a, b, rr.out_shape[0], bounds), rr.out_shape
