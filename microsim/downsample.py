"""Block downsampling of volumes: majority vote for labels, averaging for grayscale.

Averaging labels would invent phases (the mean of pore 0 and CBD 170 is 85, which
is NMC in the TauFactor labelling), so labels take the most frequent value of each
block instead. Trailing voxels that do not fill a whole block are dropped, so
every output voxel stands for exactly ``bz * by * bx`` input voxels and the voxel
size scales by the factor.
"""
from __future__ import annotations

import numpy as np

from kernels.majority import block_majority


def block_factor(factor) -> tuple[int, int, int]:
    """Validate a block size: one positive integer or three (bz, by, bx)."""
    if np.isscalar(factor):
        factor = (factor,) * 3
    try:
        f = tuple(int(v) for v in factor)
        ok = len(f) == 3 and all(int(v) == v for v in factor)
    except (TypeError, ValueError):
        ok = False
    if not ok or min(f) < 1:
        raise ValueError(f"downsampling factor {factor!r} is not one positive integer or three (z, y, x)")
    return f


def _trimmed(arr: np.ndarray, f) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim != 3:
        raise ValueError(f"downsampling needs a 3D (z, y, x) array, got shape {arr.shape}")
    out = tuple(n // b for n, b in zip(arr.shape, f))
    if min(out) < 1:
        raise ValueError(f"downsampling factor {f} is larger than the array {arr.shape} along some axis; "
                         "use a smaller factor")
    return arr[: out[0] * f[0], : out[1] * f[1], : out[2] * f[2]]


def majority_downsample(labels: np.ndarray, factor) -> np.ndarray:
    """Downsample a label volume by the most frequent label of each block.

    Parameters
    ----------
    labels : integer or bool array (z, y, x)
    factor : int or (bz, by, bx)
        Block size in voxels; the output voxel is ``factor`` times larger.

    Returns
    -------
    ndarray of the same dtype, shape ``labels.shape // factor``. A tie between
    labels goes to the smallest label value.

    Examples
    --------
    >>> a = np.zeros((2, 2, 2), np.uint8); a[0, 0, :] = 3; a[1, 0, 0] = 3
    >>> majority_downsample(a, 2).tolist()
    [[[0]]]
    >>> a[1, 1, 1] = 3; majority_downsample(a, 2).tolist()   # 4 against 4: the smaller label wins
    [[[0]]]
    """
    f = block_factor(factor)
    arr = _trimmed(labels, f)
    if arr.dtype != bool and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"majority vote needs integer labels, got dtype {arr.dtype}; "
                         "average grayscale data with mean_downsample instead")
    shape = tuple(n // b for n, b in zip(arr.shape, f))
    if f == (1, 1, 1):
        return np.array(arr)
    if arr.dtype in (np.uint8, np.bool_):
        codes = np.ascontiguousarray(arr).view(np.uint8)
        out = np.empty(shape, dtype=np.uint8)
        block_majority(codes, 256, f[0], f[1], f[2], out)
        return out.view(arr.dtype)
    values, inverse = np.unique(arr, return_inverse=True)
    codes = inverse.reshape(arr.shape).astype(np.int32)
    out = np.empty(shape, dtype=np.int32)
    block_majority(codes, len(values), f[0], f[1], f[2], out)
    return values[out]


def mean_downsample(image: np.ndarray, factor) -> np.ndarray:
    """Downsample a grayscale volume by the mean of each block (float32 result).

    >>> mean_downsample(np.arange(8, dtype=np.uint8).reshape(2, 2, 2), 2).tolist()
    [[[3.5]]]
    """
    f = block_factor(factor)
    arr = _trimmed(image, f)
    oz, oy, ox = (n // b for n, b in zip(arr.shape, f))
    blocks = arr.reshape(oz, f[0], oy, f[1], ox, f[2])
    return blocks.mean(axis=(1, 3, 5), dtype=np.float64).astype(np.float32)
