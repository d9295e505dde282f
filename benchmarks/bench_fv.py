"""Finite-volume solver benchmark: voxels/s, iterations, voxel-updates/s and peak bytes/voxel.

Usage::

    python benchmarks/bench_fv.py                 # 64^3, 128^3, 256^3
    python benchmarks/bench_fv.py --sizes 128 384 # any edge lengths
    python benchmarks/bench_fv.py --large         # adds 384^3 and 512^3

Structures are two-phase "blobs" (Gaussian-filtered noise thresholded to a
conducting fraction, default 0.5), solved along x with the default tolerance by
each solver (``--solvers jacobi,mg``: the Jacobi-PCG reference and the multigrid
default; benchmarks/bench_solvers.py compares them in depth).
Peak bytes per voxel = (peak of numpy allocations traced during the call + the
uint8 input) / voxels. The memory-bandwidth figure is a parallel triad measured
here, and "bandwidth bound" is what that bandwidth allows for the bytes one
Jacobi-PCG iteration moves per voxel (see BYTES_PER_UPDATE); it is printed for
the Jacobi rows only (a multigrid iteration is a V-cycle, not one stencil sweep).
"""
from __future__ import annotations

import argparse
import time
import tracemalloc

import numba
import numpy as np
from numba import njit, prange
from scipy import ndimage

from microsim import Volume, conductivity

# Bytes one Jacobi-PCG iteration streams per voxel when neighbours hit the cache:
# operator (labels 1 + p 4 + q 4), Jacobi (labels 1 + r 4 + z 4),
# update (x 8+8, p 4, r 4+4, q 4), p = z + beta p (4 + 4 + 4).
BYTES_PER_UPDATE = 9 + 9 + 32 + 12


@njit(parallel=True, cache=True)
def _triad(a, b, c, s):
    for i in prange(a.shape[0]):
        a[i] = b[i] + s * c[i]


def memory_bandwidth_GBps(n: int = 50_000_000, repeats: int = 5) -> float:
    """Sustained bandwidth of a parallel float32 triad (3 arrays x 4 bytes per element)."""
    a = np.zeros(n, np.float32)
    b = np.ones(n, np.float32)
    c = np.ones(n, np.float32)
    _triad(a, b, c, np.float32(0.5))
    best = min(_timed(_triad, a, b, c, np.float32(0.5)) for _ in range(repeats))
    return 12 * n / best / 1e9


def _timed(fn, *args) -> float:
    t = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t


def blobs(n: int, eps: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.standard_normal((n, n, n)).astype(np.float32), 2.0, mode="wrap")
    return (field > np.quantile(field, 1 - eps)).astype(np.uint8)


def run_case(n: int, eps: float, solver: str) -> dict:
    labels = blobs(n, eps)
    vol = Volume(labels, {"solid": {"label": 0}, "pore": {"label": 1, "sigma_ionic_S_per_m": 1.0}})
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    t = time.perf_counter()
    r = conductivity(vol, "x", solver=solver).results[0]
    seconds = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    it = r.solver.iterations
    return dict(n=n, eps=eps, solver=solver, tau=r.tau, iterations=it, seconds=seconds, voxels_per_s=n ** 3 / seconds,
                updates_per_s=n ** 3 * it / r.solver.time_s, bytes_per_voxel=(peak + labels.nbytes) / n ** 3,
                converged=r.converged)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[64, 128, 256])
    ap.add_argument("--large", action="store_true", help="add 384^3 and 512^3")
    ap.add_argument("--eps", type=float, default=0.5)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--solvers", default="jacobi,mg", help="comma list of solvers to time (jacobi, mg)")
    args = ap.parse_args()
    if args.threads:
        numba.set_num_threads(args.threads)
    sizes = args.sizes + ([384, 512] if args.large else [])
    solvers = [v for v in args.solvers.split(",") if v]
    for solver in solvers:  # compile (or load the cache) outside the timings
        conductivity(Volume(blobs(16, args.eps), {"s": {"label": 0}, "p": {"label": 1, "sigma_ionic_S_per_m": 1.0}}),
                     "x", solver=solver)
    bw = memory_bandwidth_GBps()
    bound = bw * 1e9 / BYTES_PER_UPDATE
    print(f"threads {numba.get_num_threads()}; triad bandwidth {bw:.1f} GB/s; "
          f"{BYTES_PER_UPDATE} B moved per voxel-update -> bandwidth bound {bound / 1e6:.0f} M updates/s")
    print(f"{'size':>6} {'eps':>5} {'solver':>7} {'tau':>8} {'iter':>6} {'seconds':>8} {'Mvox/s':>8} {'Mupd/s':>8} "
          f"{'%bound':>7} {'B/voxel':>8}")
    for n in sizes:
        for solver in solvers:
            c = run_case(n, args.eps, solver)
            share = f"{100 * c['updates_per_s'] / bound:6.0f}%" if solver == "jacobi" else f"{'-':>7}"
            print(f"{n:>5}^3 {c['eps']:5.2f} {solver:>7} {c['tau']:8.4f} {c['iterations']:6d} {c['seconds']:8.2f} "
                  f"{c['voxels_per_s'] / 1e6:8.3f} {c['updates_per_s'] / 1e6:8.1f} "
                  f"{share} {c['bytes_per_voxel']:8.1f}"
                  + ("" if c["converged"] else "  NOT CONVERGED"), flush=True)


if __name__ == "__main__":
    main()
