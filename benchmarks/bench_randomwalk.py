"""Random-walk benchmark: walker-steps per second, set-up time and bytes per voxel.

Usage::

    python benchmarks/bench_randomwalk.py                       # 10^5 walkers, 128^3 and 256^3, 30/50/70 %
    python benchmarks/bench_randomwalk.py --sizes 64 --walkers 20000 --steps 1000
    python benchmarks/bench_randomwalk.py --threads 1           # one thread

Structures are two-phase "blobs" (Gaussian-filtered noise thresholded to the
conducting fraction), periodic images. "walk steps/s" counts every step of every
walker (a rejected jump is a step: the walk is uniformised) over the walking
calls only; "cpu steps/s" divides by the CPU time of the process instead of the
wall time, which tells what the kernel does per core when other programs share
the machine (the load average is printed for that reason; it subtracts the CPU
time of the set-up). "set-up s" is the cluster labelling and table building
before the walk, timed on its own. Bytes per voxel: the walk itself reads one
padded uint8 label array (about 1 byte per voxel); "setup B/vox" is the input
labels plus the peak of numpy allocations traced during the set-up.
"""
from __future__ import annotations

import argparse
import os
import time
import tracemalloc

import numba
import numpy as np
from scipy import ndimage

from microsim import Volume, random_walk
from microsim.randomwalk import _problem


def blobs(n: int, eps: float, seed: int = 0) -> np.ndarray:
    """Periodic Gaussian random field thresholded so that a fraction ``eps`` conducts (label 1)."""
    rng = np.random.default_rng(seed)
    smooth = ndimage.gaussian_filter(rng.standard_normal((n, n, n)).astype(np.float32), 2.0, mode="wrap")
    return (smooth > np.quantile(smooth, 1.0 - eps)).astype(np.uint8)


def run_case(n: int, eps: float, walkers: int, steps: int, seed: int) -> dict:
    vol = Volume(blobs(n, eps, seed), {"solid": {"label": 0}, "pore": {"label": 1, "sigma_ionic_S_per_m": 1.0}})
    # the set-up alone (cluster labelling, tables), timed and traced on its own
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    wall, cpu = time.perf_counter(), time.process_time()
    _problem(vol, "ionic", False)
    setup_wall, setup_cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    wall, cpu = time.perf_counter(), time.process_time()
    r = random_walk(vol, walkers=walkers, steps=steps, seed=seed)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    n_steps = r.walkers * r.steps
    return dict(n=n, eps=eps, walkers=r.walkers, steps=r.steps, walk_rate=r.walker_steps_per_s,
                cpu_rate=n_steps / max(cpu - setup_cpu, 1e-9), setup_s=setup_wall, total_s=wall,
                bytes_per_voxel=(peak + vol.labels.nbytes) / n ** 3, tau=[a.tau_rw for a in r.axes])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    p.add_argument("--fractions", type=float, nargs="+", default=[0.3, 0.5, 0.7])
    p.add_argument("--walkers", type=int, default=100_000)
    p.add_argument("--steps", type=int, default=2048)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    if args.threads:
        numba.set_num_threads(args.threads)
    # compile (or load the cache) outside the timings
    random_walk(Volume(blobs(16, 0.5), {"s": {"label": 0}, "p": {"label": 1, "sigma_ionic_S_per_m": 1.0}}),
                walkers=64, steps=64)
    print(f"threads {numba.get_num_threads()}, cores {os.cpu_count()}, "
          f"load average before {os.getloadavg()[0]:.2f}")
    head = (f"{'size':>6} {'eps':>5} {'walkers':>8} {'steps':>6} {'walk steps/s':>13} {'cpu steps/s':>12} "
            f"{'set-up s':>9} {'total s':>8} {'setup B/vox':>11}  tau_rw (z, y, x)")
    print(head)
    for n in args.sizes:
        for eps in args.fractions:
            c = run_case(n, eps, args.walkers, args.steps, args.seed)
            taus = ", ".join(f"{t:.3g}" for t in c["tau"])
            print(f"{n:>5}^3 {eps:>5.2f} {c['walkers']:>8} {c['steps']:>6} {c['walk_rate']:>13.3e} "
                  f"{c['cpu_rate']:>12.3e} {c['setup_s']:>9.2f} {c['total_s']:>8.2f} "
                  f"{c['bytes_per_voxel']:>11.1f}  {taus}", flush=True)
    print(f"load average after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
