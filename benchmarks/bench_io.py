"""Stack I/O benchmark: write and read throughput per format, region reads, downsampling, segmentation.

Usage::

    python benchmarks/bench_io.py              # 256^3 uint8 labels and grayscale
    python benchmarks/bench_io.py --size 512   # 512^3 (128 MB per array)

For each format the labels are written once, then read whole, as a crop of one
eighth of the volume, and block-downsampled by 2 (majority vote). Throughputs
are voxels of the *result* per second (a crop of 1/8 that takes as long as the
whole read would show 1/8 of the rate). "peak MB" is the growth of the largest
numpy allocation traced during the read, i.e. the extra memory the read needed
beyond its result; for memory-mapped formats the mapped pages are not numpy
allocations and do not show up here. The load average is printed because
these figures fall when other programs share the machine.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
from scipy import ndimage

from microsim.downsample import majority_downsample, mean_downsample
from microsim.io import RawLayout, load_stack, write_array
from microsim.io.summary import summarize_stack
from microsim.segment import remove_islands, segment


def structure(n: int, seed: int = 0) -> np.ndarray:
    """Three-phase labels 0/85/170 from smoothed noise (about 45/40/15 %)."""
    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.standard_normal((n, n, n)).astype(np.float32), 2.0)
    lo, hi = np.quantile(field, [0.45, 0.85])
    return np.select([field < lo, field < hi], [0, 85], 170).astype(np.uint8)


def timed(fn, repeat: int = 1):
    best = float("inf")
    out = None
    for _ in range(repeat):
        tracemalloc.start()
        t0 = time.perf_counter()
        out = fn()
        dt = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        best = min(best, dt)
    return out, best, peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256, help="edge length of the cubic test volume (voxels)")
    args = ap.parse_args()
    n = args.size
    labels = structure(n)
    gray = np.clip(np.array([50.0, 200.0, 125.0])[np.searchsorted([0, 85, 170], labels)]
                   + np.random.default_rng(1).normal(0, 15, labels.shape), 0, 255).astype(np.uint8)
    vox = labels.size
    print(f"volume {n}^3 = {vox / 1e6:.1f} M voxels (uint8); load average {os.getloadavg()[0]:.1f}")
    majority_downsample(labels[:4, :4, :4], 2)  # compile before timing
    remove_islands(np.zeros((4, 4, 4), np.uint8), 2)

    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        cases = [("tif (uncompressed, memmap)", d / "v.tif", {}), ("tif zlib (page by page)", d / "z.tif",
                                                                     {"compression": "zlib"}),
                 ("h5 gzip, 64^3 chunks", d / "v.h5", {}), ("h5 uncompressed", d / "u.h5", {"compression": "none"}),
                 ("npy", d / "v.npy", {}), ("raw", d / "v.raw", {}), ("slice folder", d / "slices", {})]
        print(f"{'format':<28} {'write MB/s':>10} {'read Mvox/s':>11} {'crop Mvox/s':>11} "
              f"{'ds2 Mvox/s':>10} {'read peak MB':>12} {'file MB':>8}")
        h = n // 2
        for name, path, kw in cases:
            _, tw, _ = timed(lambda: write_array(path, labels, (0.4, 0.4, 0.4), **kw))
            raw = RawLayout(labels.shape, "uint8") if path.suffix == ".raw" else None
            full, tr, peak = timed(lambda: load_stack(path, raw=raw).array, 2)
            assert np.array_equal(full, labels)
            crop, tc, _ = timed(lambda: load_stack(path, raw=raw, crop=((0, h), (0, h), (0, h))).array, 2)
            ds, td, _ = timed(lambda: load_stack(path, raw=raw, downsample=2).array, 2)
            size = sum(f.stat().st_size for f in (path.iterdir() if path.is_dir() else [path]))
            print(f"{name:<28} {labels.nbytes / 1e6 / tw:>10.0f} {vox / 1e6 / tr:>11.1f} "
                  f"{crop.size / 1e6 / tc:>11.1f} {ds.size * 8 / 1e6 / td:>10.1f} "
                  f"{max(peak - full.nbytes, 0) / 1e6:>12.1f} {size / 1e6:>8.1f}")
        _, ts, _ = timed(lambda: summarize_stack(d / "v.h5"), 2)
        print(f"summarize_stack (label fractions) of the h5 file: {vox / 1e6 / ts:.1f} M voxels/s")

    print()
    for what, fn in (("majority_downsample x2", lambda: majority_downsample(labels, 2)),
                     ("mean_downsample x2", lambda: mean_downsample(gray, 2)),
                     ("segment 3 phases, multi-Otsu", lambda: segment(gray, 3)),
                     ("segment + median 3^3", lambda: segment(gray, 3, denoise_method="median")),
                     ("segment + islands < 30 voxels", lambda: segment(gray, 3, min_island_voxels=30))):
        out, t, peak = timed(fn)
        extra = ""
        if what.startswith("segment"):
            lut = np.array([0, 170, 85], np.uint8)  # classes dark to bright: pore, CBD, NMC
            extra = f"  accuracy {float((lut[out.labels] == labels).mean()):.4f}"
        print(f"{what:<32} {vox / 1e6 / t:>8.1f} M voxels/s  peak {peak / vox:5.1f} bytes/voxel{extra}")


if __name__ == "__main__":
    main()
