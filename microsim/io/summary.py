"""Label fractions or grey-level statistics of a stack, computed slab by slab.

A stack whose voxels are integers with at most :data:`MAX_LABELS` distinct values
is reported as labels (value, count, fraction); anything else as grayscale
(range, mean, standard deviation, percentiles, histogram). Statistics are
accumulated over slabs of planes, so a stack larger than memory can be summarised.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..segment import Histogram
from .region import Region
from .stack import RawLayout, StackInfo, iter_slabs, open_stack, reducer

#: integer stacks with at most this many distinct values are treated as labels
MAX_LABELS = 32


@dataclass(frozen=True)
class StackSummary:
    """Statistics of the voxels of a stack (or of a region of it).

    Attributes
    ----------
    info : StackInfo of the file
    shape : shape of the voxels summarised (after crop, stride or downsampling)
    kind : 'labels' or 'grayscale'
    values, counts : distinct values and their voxel counts (labels; empty for grayscale)
    minimum, maximum, mean, std : grey-level statistics (also given for labels)
    histogram : Histogram of the values (one bin per value for 8- and 16-bit data)
    """

    info: StackInfo
    shape: tuple[int, int, int]
    kind: str
    values: tuple[int, ...]
    counts: tuple[int, ...]
    minimum: float
    maximum: float
    mean: float
    std: float
    histogram: Histogram = field(repr=False)

    @property
    def n_voxels(self) -> int:
        return int(np.prod(self.shape))

    @property
    def fractions(self) -> dict[int, float]:
        """Volume fraction of each label value."""
        return {v: c / self.n_voxels for v, c in zip(self.values, self.counts)}

    def percentile(self, q: float) -> float:
        """Approximate q-th percentile (0-100) from the histogram (exact bin for 8/16-bit data)."""
        cum = np.cumsum(self.histogram.counts)
        k = int(np.searchsorted(cum, q / 100.0 * cum[-1], side="left"))
        return float(self.histogram.centers[min(k, len(cum) - 1)])

    def to_dict(self) -> dict:
        d = {"info": self.info.to_dict(), "shape": list(self.shape), "kind": self.kind,
             "minimum": self.minimum, "maximum": self.maximum, "mean": self.mean, "std": self.std}
        if self.kind == "labels":
            d["labels"] = [{"value": v, "count": c, "fraction": c / self.n_voxels}
                           for v, c in zip(self.values, self.counts)]
        else:
            d["percentiles"] = {str(q): self.percentile(q) for q in (1, 5, 25, 50, 75, 95, 99)}
        d["histogram"] = self.histogram.to_dict()
        return d


def _exact_offset(dtype: np.dtype) -> int | None:
    """Shift that maps every value of a <= 16-bit integer type onto 0..65535, else None."""
    if dtype.kind == "b":
        return 0
    if dtype.kind in "iu" and dtype.itemsize <= 2:
        return -int(np.iinfo(dtype).min)
    return None


def summarize_stack(path, *, crop=None, stride=None, downsample=None, reduce: str = "auto",
                    dataset: str | None = None, raw: RawLayout | None = None, bins: int = 256,
                    progress=None) -> StackSummary:
    """Label counts or grey-level statistics of a stack, reading a few planes at a time.

    >>> s = summarize_stack("samples/electrode_64.tif")  # doctest: +SKIP
    >>> s.kind, sorted(s.fractions)  # doctest: +SKIP
    ('labels', [0, 85, 170])
    """
    region = Region.make(crop, stride, downsample)
    with open_stack(path, dataset=dataset, raw=raw) as reader:
        info = reader.info
        rr = region.resolve(info.shape, info.path)
        fn = reducer(reduce, info.dtype) if region.block != (1, 1, 1) else None

        def slabs():
            for k0, slab in iter_slabs(reader, rr, fn):
                if progress is not None:
                    progress.bar("summarising", k0 + slab.shape[0], rr.out_shape[0])
                yield slab

        first_dtype = None
        total = 0
        s1 = s2 = 0.0
        lo, hi = np.inf, -np.inf
        exact = None
        tally: dict | None = {}
        for slab in slabs():
            if first_dtype is None:
                first_dtype = slab.dtype
                off = _exact_offset(slab.dtype)
                exact = np.zeros(65536, dtype=np.int64) if off is not None else None
            if exact is not None:
                flat = slab.ravel()
                if flat.dtype.kind in "bu":  # counted as they are, no widened copy
                    counts_ = np.bincount(flat.view(np.uint8) if flat.dtype == bool else flat)
                    exact[:len(counts_)] += counts_
                else:
                    exact += np.bincount(flat.astype(np.int64) + off, minlength=65536)
            else:
                if tally is not None and slab.dtype.kind in "iu":  # wide integers may still be labels
                    v, c = np.unique(slab, return_counts=True)
                    for value, count in zip(v.tolist(), c.tolist()):
                        tally[value] = tally.get(value, 0) + count
                    if len(tally) > MAX_LABELS:
                        tally = None
                x = slab.astype(np.float64, copy=False)
                s1 += float(x.sum())
                s2 += float((x * x).sum())
                lo, hi = min(lo, float(x.min())), max(hi, float(x.max()))
            total += slab.size
        if exact is not None:
            present = np.flatnonzero(exact)
            vals = present - off
            cnt = exact[present]
            mean = float((vals * cnt).sum()) / total
            var = float(((vals - mean) ** 2 * cnt).sum()) / total
            lo, hi = float(vals.min()), float(vals.max())
            kind = "labels" if len(vals) <= MAX_LABELS else "grayscale"
            if first_dtype.itemsize == 1 or hi - lo + 1 <= bins:
                # one bin per value: every value of an 8-bit type, or the range present
                if first_dtype.kind == "b":
                    ilo, ihi = 0, 1
                elif first_dtype.itemsize == 1:
                    ilo, ihi = int(np.iinfo(first_dtype).min), int(np.iinfo(first_dtype).max)
                else:
                    ilo, ihi = int(lo), int(hi)
                hist = Histogram(exact[ilo + off: ihi + off + 1].copy(), np.arange(ilo, ihi + 2) - 0.5)
            else:
                edges = np.linspace(lo, hi + 1, bins + 1)
                hist = Histogram(np.histogram(vals, bins=edges, weights=cnt)[0].astype(np.int64), edges)
            values = tuple(int(v) for v in vals) if kind == "labels" else ()
            counts = tuple(int(c) for c in cnt) if kind == "labels" else ()
        else:
            mean = s1 / total
            var = max(s2 / total - mean * mean, 0.0)
            top = hi if hi > lo else lo + 1.0
            counts = np.zeros(bins, dtype=np.int64)
            for slab in slabs():  # second pass: the range is known now
                counts += np.histogram(slab, bins=bins, range=(lo, top))[0]
            hist = Histogram(counts, np.linspace(lo, top, bins + 1))
            if tally and first_dtype.kind in "iu":
                kind = "labels"
                values = tuple(sorted(tally))
                counts = tuple(tally[v] for v in values)
            else:
                kind, values, counts = "grayscale", (), ()
    return StackSummary(info, rr.out_shape, kind, values, counts, float(lo), float(hi), float(mean),
                        float(np.sqrt(var)), hist)
