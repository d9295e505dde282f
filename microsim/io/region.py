"""Which part of a stack to read: a crop, then a stride or a block downsampling.

The crop is applied first, in voxels of the file; the stride (keep every s-th
voxel) or the block factor (reduce b x b x b blocks to one voxel) then applies
inside the crop. The voxel size of the result is the file's voxel size times
the stride or block factor along each axis.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..downsample import block_factor

AXIS_NAMES = ("z", "y", "x")


def parse_crop(text: str) -> tuple[tuple[int | None, int | None], ...]:
    """Parse ``'z0:z1,y0:y1,x0:x1'`` (voxels, end excluded; an empty bound means the edge).

    >>> parse_crop("0:64,:,10:")
    ((0, 64), (None, None), (10, None))
    """
    parts = [p.strip() for p in str(text).split(",")]
    if len(parts) != 3:
        raise ValueError(f"crop {text!r} needs three ranges 'z0:z1,y0:y1,x0:x1' (voxels, end excluded)")
    out = []
    for name, part in zip(AXIS_NAMES, parts):
        bounds = part.split(":")
        if len(bounds) != 2:
            raise ValueError(f"crop {text!r}: {name} range {part!r} is not 'start:end'; "
                             "give 'z0:z1,y0:y1,x0:x1' (e.g. '0:100,:,:')")
        try:
            lo, hi = (int(b) if b.strip() else None for b in bounds)
        except ValueError:
            raise ValueError(f"crop {text!r}: {name} range {part!r} is not two integers 'start:end'") from None
        if (lo is not None and lo < 0) or (hi is not None and hi < 0):
            raise ValueError(f"crop {text!r}: {name} range {part!r} has a negative bound; use voxel indices >= 0")
        out.append((lo, hi))
    return tuple(out)


def _factor3(value, what: str) -> tuple[int, int, int]:
    try:
        return block_factor(value)
    except ValueError:
        raise ValueError(f"{what} {value!r} is not one positive integer or three (z, y, x)") from None


@dataclass(frozen=True)
class Region:
    """A crop plus a stride or a block factor, independent of any file.

    Parameters
    ----------
    crop : ((z0, z1), (y0, y1), (x0, x1)) or 'z0:z1,y0:y1,x0:x1' or None
        Voxel ranges, end excluded; None bounds mean the edge of the stack.
    stride : int or (sz, sy, sx)
        Keep every s-th voxel (nearest-neighbour subsampling).
    block : int or (bz, by, bx)
        Reduce blocks of this size to one voxel (majority vote or mean, chosen by the reader).

    >>> Region.make("0:10,:,:", downsample=2).resolve((20, 8, 9)).out_shape
    (5, 4, 4)
    """

    crop: tuple[tuple[int | None, int | None], ...] = ((None, None),) * 3
    stride: tuple[int, int, int] = (1, 1, 1)
    block: tuple[int, int, int] = (1, 1, 1)

    @classmethod
    def make(cls, crop=None, stride=None, downsample=None) -> "Region":
        if crop is None:
            c = ((None, None),) * 3
        elif isinstance(crop, str):
            c = parse_crop(crop)
        else:
            try:
                c = tuple((None if a is None else int(a), None if b is None else int(b)) for a, b in crop)
            except (TypeError, ValueError):
                raise ValueError(f"crop {crop!r} is not three (start, end) pairs in voxels") from None
            if len(c) != 3:
                raise ValueError(f"crop {crop!r} needs three (start, end) pairs, one per axis z, y, x")
        s = _factor3(1 if stride is None else stride, "stride")
        b = _factor3(1 if downsample is None else downsample, "downsampling factor")
        if s != (1, 1, 1) and b != (1, 1, 1):
            raise ValueError("give either a stride or a downsampling factor, not both")
        return cls(c, s, b)

    @property
    def is_full(self) -> bool:
        return self.crop == ((None, None),) * 3 and self.stride == (1, 1, 1) and self.block == (1, 1, 1)

    @property
    def scale(self) -> tuple[int, int, int]:
        """Factor by which the voxel size grows along (z, y, x)."""
        return tuple(s * b for s, b in zip(self.stride, self.block))

    def resolve(self, shape, source: str = "stack") -> "ResolvedRegion":
        """Concrete index ranges for a stack of ``shape``; ``source`` names the file in errors."""
        starts, stops = [], []
        if any(int(n) == 0 for n in shape):
            empty = ", ".join(name for name, n in zip(AXIS_NAMES, shape) if int(n) == 0)
            raise ValueError(f"{source}: the stack has shape {' x '.join(map(str, shape))} (z, y, x), with no voxels "
                             f"along {empty}; give a file that holds a volume")
        for name, n, (lo, hi) in zip(AXIS_NAMES, shape, self.crop):
            lo = 0 if lo is None else lo
            hi = n if hi is None else hi
            if hi > n:
                raise ValueError(f"{source}: crop {name} {lo}:{hi} goes beyond the {n} voxels along {name}; "
                                 f"use an end <= {n}")
            if lo >= hi:
                raise ValueError(f"{source}: crop {name} {lo}:{hi} is empty; the start must be below the end")
            starts.append(lo)
            stops.append(hi)
        out = []
        for name, lo, hi, s, b in zip(AXIS_NAMES, starts, stops, self.stride, self.block):
            n = (hi - lo) // b if b > 1 else math.ceil((hi - lo) / s)
            if s > 1 and n < 2 <= hi - lo:
                raise ValueError(f"{source}: stride {s} leaves one voxel of the {hi - lo} read along {name}; "
                                 f"use a stride of 1..{hi - lo - 1} along {name}")
            if n < 1:
                raise ValueError(f"{source}: downsampling factor {b} is larger than the {hi - lo} voxels "
                                 f"read along {name}; use a smaller factor or a larger crop")
            out.append(n)
        # Block reads only cover whole blocks; the remainder of the crop is left out.
        stops = [lo + n * b if b > 1 else hi for lo, hi, n, b in zip(starts, stops, out, self.block)]
        return ResolvedRegion(tuple(starts), tuple(stops), self.stride, self.block, tuple(out))

    def describe(self) -> str:
        parts = []
        if self.crop != ((None, None),) * 3:
            parts.append("crop " + ",".join(f"{'' if a is None else a}:{'' if b is None else b}" for a, b in self.crop))
        if self.stride != (1, 1, 1):
            parts.append("stride " + "x".join(map(str, self.stride)))
        if self.block != (1, 1, 1):
            parts.append("block " + "x".join(map(str, self.block)))
        return ", ".join(parts) or "whole stack"


@dataclass(frozen=True)
class ResolvedRegion:
    """Index ranges of a :class:`Region` on one stack (ends exclusive, trimmed to whole blocks)."""

    start: tuple[int, int, int]
    stop: tuple[int, int, int]
    stride: tuple[int, int, int]
    block: tuple[int, int, int]
    out_shape: tuple[int, int, int]

    def axis_slice(self, axis: int) -> slice:
        return slice(self.start[axis], self.stop[axis], self.stride[axis])
