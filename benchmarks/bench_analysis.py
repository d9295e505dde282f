"""Analysis benchmark: connected-component labelling (numba run-based vs scipy.ndimage.label),
marching-cubes interface areas and the active-material analysis.

Usage::

    python benchmarks/bench_analysis.py               # 256^3 and 512^3
    python benchmarks/bench_analysis.py --sizes 128   # any edge lengths

Structures: "critical" = random sites at the simple-cubic threshold p = 0.3116
(the hardest case for a labeller: millions of small clusters, short runs) and
"blobs" = Gaussian-filtered noise thresholded to 40 % (a porous-electrode-like
structure with long runs). Figures are voxels per second of the labelling
alone (best of ``--repeat``), with 6- and 26-connectivity, and the extra bytes
per voxel the numba labeller allocates (int32 labels + its run table). The load
average is printed because the figures fall when other programs share the
machine; scipy is single-threaded, the numba labeller uses all numba threads.
"""
from __future__ import annotations

import argparse
import os
import time

import numba
import numpy as np
from scipy import ndimage

from microsim import Volume, label_clusters
from microsim.analysis import active_material, mesh_area


def structure(kind: str, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "critical":
        return rng.random((n, n, n)) < 0.3116
    field = ndimage.gaussian_filter(rng.random((n, n, n), dtype=np.float32), 3.0, mode="wrap")
    return field < np.quantile(field, 0.4)


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    label_clusters(np.ones((4, 4, 4), bool))  # compile (or load the cache) outside the timings
    print(f"numba threads {numba.get_num_threads()}, load average {os.getloadavg()[0]:.1f}")
    print(f"{'structure':>9} {'size':>5} {'conn':>4} {'numba Mvox/s':>12} {'scipy Mvox/s':>12} {'speed-up':>8} "
          f"{'clusters':>9} {'numba B/vox':>11}")
    for n in args.sizes:
        for kind in ("critical", "blobs"):
            mask = structure(kind, n)
            runs = int(np.count_nonzero(mask[..., 0]) + np.count_nonzero(mask[..., 1:] & ~mask[..., :-1]))
            for conn in (6, 26):
                st = ndimage.generate_binary_structure(3, {6: 1, 26: 3}[conn])
                t_nb = best(lambda: label_clusters(mask, conn), args.repeat)
                t_sp = best(lambda: ndimage.label(mask, st, output=np.int32), args.repeat)
                clusters = label_clusters(mask, conn)[1]
                # int32 labels + per run: start, end (int32) and parent (int64); + row offsets (int64)
                extra = (4 * mask.size + 16 * runs + 8 * n * n) / mask.size
                print(f"{kind:>9} {n:>4}^3 {conn:>4} {mask.size / t_nb / 1e6:12.1f} {mask.size / t_sp / 1e6:12.1f} "
                      f"{t_sp / t_nb:8.2f} {clusters:9d} {extra:11.2f}", flush=True)
            del mask
    n = args.sizes[0]
    rng = np.random.default_rng(1)
    lab = np.zeros((n, n, n), np.uint8)
    field = ndimage.gaussian_filter(rng.random((n, n, n), dtype=np.float32), 3.0, mode="wrap")
    lab[field < np.quantile(field, 0.45)] = 1
    lab[(field > np.quantile(field, 0.85))] = 2
    v = Volume(lab, {"SE": {"label": 0, "material": "Li6PS5Cl"}, "NMC": {"label": 1, "material": "NMC811"},
                     "CBD": {"label": 2, "material": "carbon_black"}})
    t = best(lambda: mesh_area(lab == 1), 1)
    print(f"marching-cubes area (constrained smoothing), one phase of blobs {n}^3: {t:.2f} s, "
          f"{lab.size / t / 1e6:.1f} Mvox/s")
    t = best(lambda: active_material(v), 1)
    print(f"active material (three labellings + face tests), blobs {n}^3: {t:.2f} s, {lab.size / t / 1e6:.1f} Mvox/s")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
