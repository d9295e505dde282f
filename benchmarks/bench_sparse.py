"""Benchmark of the algebraic-multigrid stage: matrix assembly (kernels/sparse.py), hierarchy set-up, one cycle.

    python benchmarks/bench_sparse.py                 # blobs at 64^3 and 128^3, eps 0.5
    python benchmarks/bench_sparse.py --sizes 128 256 --fraction 0.3

It prints, per size: conducting cells, assembly seconds and cells/s, pyamg set-up
seconds, seconds per preconditioner application (residual, gather, V-cycle,
scatter) and the peak resident memory per conducting cell of the whole stage.
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def blobs(n: int, fraction: float, seed: int = 0) -> np.ndarray:
    from scipy import ndimage
    field = ndimage.gaussian_filter(np.random.default_rng(seed).standard_normal((n, n, n)), 2.0, mode="wrap")
    return (field > np.quantile(field, 1 - fraction)).astype(np.uint8)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    ap.add_argument("--fraction", type=float, default=0.5)
    args = ap.parse_args(argv)
    from microsim.percolation import percolation
    from microsim.solve import discretise
    from microsim.solve.preconditioners import AlgebraicMultigrid, conducting_cells, operator_matrix
    lut = np.zeros(256)
    lut[1] = 1.0
    print(f"{'size':>6} {'cells':>10} {'assemble s':>11} {'cells/s':>10} {'set-up s':>9} {'cycle s':>8} "
          f"{'RSS B/cell':>11}")
    for n in args.sizes:
        labels = blobs(n, args.fraction)
        d = discretise(labels, lut, (1.0, 1.0, 1.0), 2, percolation(labels > 0, "x").percolating)
        operator_matrix(d)  # compiled
        cells = conducting_cells(d)
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.perf_counter()
        operator_matrix(d)
        t_asm = time.perf_counter() - t0
        t0 = time.perf_counter()
        pre = AlgebraicMultigrid(d)
        t_setup = time.perf_counter() - t0
        x = np.zeros(d.lab.shape)
        x[:, :, 0] = 1.0
        z = np.zeros(d.lab.shape)
        pre(x, z)
        t0 = time.perf_counter()
        for _ in range(3):
            pre(x, z)
        t_cycle = (time.perf_counter() - t0) / 3
        rss = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) * 1024 / max(cells, 1)
        print(f"{n:>5}^3 {cells:>10} {t_asm:>11.3f} {cells / t_asm:>10.3g} {t_setup:>9.2f} {t_cycle:>8.3f} "
              f"{rss:>11.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
