"""The checks every command makes before it reads a voxel: paths, memory, disk (see microsim.safety)."""
from __future__ import annotations

import math
import os

from ..safety import (allow_symlink_output, check_disk, check_input, check_memory, check_name_length, check_outputs,
                      sidecars_of, size_text, volume_inputs)

#: peak bytes per voxel of the region read, beyond the input array, measured with a margin
BYTES_PER_VOXEL = {"convert": 2, "segment": 16, "analyze": 120, "randomwalk": 40, "generate": 24}
#: bytes per random walker (positions, group sums)
BYTES_PER_WALKER = 64


def add_symlink_option(parser) -> None:
    parser.add_argument("--allow-symlink-output", action="store_true",
                        help="write through an output path that is a symbolic link (refused by default)")


def volume_outputs(path) -> list[str]:
    """A volume output and its companion files (XDMF, JSON sidecars)."""
    if not path:
        return []
    return [os.fspath(path)] + sidecars_of(path)


def guard(args, inputs=(), outputs=(), folders=(), volumes=()) -> None:
    """Refuse the command's inputs and outputs before any work (one-line errors, exit code 2).

    ``inputs`` are files that must stay unchanged (missing ones are ignored: the reader
    reports them); ``outputs`` are files, ``folders`` are output folders, ``volumes``
    are volume outputs (files with sidecars, or folders of slices).
    """
    from ..arrays import parse_axes
    from ..io.writers import output_format
    parse_axes(getattr(args, "axes", None) or "zyx")  # options first: a bad order fails before any file is looked at
    ins = []
    for i in inputs:
        if i:
            check_input(i)
            ins += volume_inputs(i)
    files, dirs = list(o for o in outputs if o), list(f for f in folders if f)
    for v in volumes:
        if not v:
            continue
        if output_format(v) == "slices":
            dirs.append(os.fspath(v))
        else:
            files += volume_outputs(v)
            check_name_length(v, [s[len(os.fspath(v)):] for s in sidecars_of(v)
                                  if s.startswith(os.fspath(v))])
    names = [os.path.abspath(os.fspath(p)) for p in files]
    for k, name in enumerate(names):
        if name in names[:k]:
            raise ValueError(f"{files[k]}: given for two outputs; give each output its own name")
    check_outputs(ins, files, folders=dirs, allow_symlink=allow_symlink_output(args))


def region_shape(args):
    """(shape of the region read, dtype itemsize, StackInfo) from the input's header and the region options."""
    from ..io import describe
    from ..io.region import Region
    from ._common import raw_layout
    info = describe(args.volume, dataset=getattr(args, "dataset", None), raw=raw_layout(args))
    region = Region.make(getattr(args, "crop", None), getattr(args, "stride", None),
                         getattr(args, "downsample", None))
    shape = region.resolve(info.shape, str(args.volume)).out_shape
    import numpy as np
    return shape, np.dtype(info.dtype).itemsize, info


def _shape_text(shape) -> str:
    return " x ".join(map(str, shape))


READ_HINT = "read less of it: --crop z0:z1,y0:y1,x0:x1, --stride N or --downsample N"


def check_read(args, command: str, extra_bytes: float = 0.0, per_voxel: float | None = None,
               hint: str = READ_HINT, limit: float | None = None):
    """Refuse before reading when the region read and the command's work on it would not fit in memory.

    Returns the shape of the region read.
    """
    shape, itemsize, info = region_shape(args)
    n = math.prod(shape)
    per = BYTES_PER_VOXEL.get(command, 8) if per_voxel is None else per_voxel
    need = n * (itemsize + per) + extra_bytes
    check_memory(need, f"{command} of {args.volume} ({_shape_text(shape)} voxels of {info.dtype} read)", hint, limit)
    return shape


def check_output_space(path, nbytes: float, what: str = "the output") -> None:
    """Refuse when the output's file system cannot hold ``nbytes`` (uncompressed size)."""
    if path:
        check_disk(os.path.dirname(os.path.abspath(os.fspath(path))), nbytes, f"{what} {os.fspath(path)}")


__all__ = ["BYTES_PER_VOXEL", "BYTES_PER_WALKER", "READ_HINT", "add_symlink_option", "check_output_space",
           "check_read", "guard", "region_shape", "size_text", "volume_outputs"]
