"""Strong and weak scaling of the distributed solver (microsim.mpi) on 1 and 2 MPI ranks.

Usage::

    python benchmarks/bench_mpi.py                   # strong: 128^3; weak: 64 x 128 x 128 per rank
    python benchmarks/bench_mpi.py --edge 192        # strong scaling on 192^3 (weak: 96 x 192 x 192 per rank)
    python benchmarks/bench_mpi.py --solver jacobi   # the Jacobi solver instead of multigrid
    python benchmarks/bench_mpi.py --slabs 1 2 4 8   # iterations against the number of slabs (64^3)
    python benchmarks/bench_mpi.py --json out.json   # also write the figures as JSON

Each case runs ``mpiexec -n R python benchmarks/bench_mpi.py --worker ...``: every
rank reads its slab of a two-phase blobs volume (conducting fraction 0.5) from a
.npy file and solves one direction with the default tolerance (tol = 5e-4). Rows:

* ranks x threads: MPI ranks and numba threads per rank (the machine's cores are shared);
* seconds: wall time of the whole call (slab read, percolation, set-up, solve), rank 0;
* solve s / it: seconds per conjugate-gradient iteration;
* Mvox*it/s: voxel updates per second, all ranks together;
* comm %: share of the wall time spent in halo exchanges and reductions, waiting for
  slower ranks included (largest over the ranks);
* B/voxel/rank: peak numpy allocation of a rank (tracemalloc) over the voxels of its slab;
* halo MB/it: bytes one rank sends per iteration to its neighbours (two planes for an
  interior rank): the search direction (float32) for Jacobi; the search direction, the
  potential (float64) and the V-cycles' correction (float32) for multigrid;
* speed-up (strong) or efficiency (weak) against the 1-rank, 1-thread row.

The load average is printed: on a shared machine, other processes skew the figures.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
from scipy import ndimage

PHASES = {"solid": {"label": 0}, "pore": {"label": 1, "sigma_ionic_S_per_m": 1.0}}


def blobs(shape, eps: float = 0.5, seed: int = 0) -> np.ndarray:
    field = ndimage.gaussian_filter(np.random.default_rng(seed).standard_normal(shape).astype(np.float32), 2.0,
                                    mode="wrap")
    return (field > np.quantile(field, 1 - eps)).astype(np.uint8)


def mpiexec() -> str:
    here = Path(sys.executable).parent / "mpiexec"
    return str(here) if here.exists() else "mpiexec"


def run_case(path: Path, ranks: int, threads: int, direction: str, solver: str, workdir: Path) -> dict:
    out = workdir / f"r{ranks}t{threads}{direction}{solver}{path.stem}.json"
    env = dict(os.environ, NUMBA_NUM_THREADS=str(threads), OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    cmd = [mpiexec(), "-n", str(ranks), sys.executable, __file__, "--worker", str(path), direction, str(threads),
           str(out), str(workdir / "warm.npy"), solver]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark case failed ({' '.join(cmd)}):\n{proc.stderr}")
    return json.loads(out.read_text())


def worker(path: str, direction: str, threads: int, out: str, warm: str, solver: str) -> None:
    import numba

    from microsim.mpi import World, distributed_conductivity
    numba.set_num_threads(threads)
    world = World()
    # Load the compiled kernels before measuring (a small solve of the same kind).
    distributed_conductivity(warm, PHASES, 1.0, direction, solver=solver, world=world)
    world.comm.Barrier()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    t0 = time.perf_counter()
    run = distributed_conductivity(path, PHASES, 1.0, direction, solver=solver, world=world)
    wall = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    bounds = run.slab_bounds
    shape = run.result.shape
    voxels = (bounds[world.rank + 1] - bounds[world.rank]) * shape[1] * shape[2]
    per_rank = world.comm.gather({"peak_bytes": peak, "voxels": voxels, "wall_s": wall}, root=0)
    if world.rank == 0:
        r = run.result.results[0]
        halo_planes = 2 if world.size > 2 else (1 if world.size == 2 else 0)
        plane_bytes = 4 if solver == "jacobi" else 16
        Path(out).write_text(json.dumps({
            "shape": list(shape), "ranks": world.size, "threads": threads, "direction": direction, "solver": solver,
            "tau": r.tau, "iterations": r.solver.iterations, "solve_s": r.solver.time_s,
            "wall_s": max(p["wall_s"] for p in per_rank),
            "comm_share": max(c / p["wall_s"] for c, p in zip(run.comm_time_s, per_rank)),
            "bytes_per_voxel_per_rank": max(p["peak_bytes"] / p["voxels"] for p in per_rank),
            "halo_bytes_per_iteration": halo_planes * (shape[1] + 2) * (shape[2] + 2) * plane_bytes,
        }))


def count_worker(path: str, out: str) -> None:
    from microsim.mpi import World, coarse, distributed_conductivity
    world = World()
    counts = {}
    limit = coarse.COARSE_AGGREGATES
    # "mg" with the global coarse grid; "mg-block": without it (block Jacobi between slabs)
    for name in ("mg", "mg-block", "jacobi"):
        coarse.COARSE_AGGREGATES = 0 if name == "mg-block" else limit
        for direction in "xz":
            run = distributed_conductivity(path, PHASES, 1.0, direction, solver=name.split("-")[0], world=world)
            r = run.result.results[0]
            counts[f"{name} {direction}"] = (r.solver.iterations, r.sigma_eff_S_per_m)
    coarse.COARSE_AGGREGATES = limit
    if world.rank == 0:
        Path(out).write_text(json.dumps(counts))


def iteration_counts(slabs, edge: int) -> None:
    """Iterations of both solvers on ``edge``^3 blobs cut into 1, 2, 4 ... slabs (ranks may outnumber cores).

    Multigrid is run with the global coarse grid ("mg") and without it ("mg-block").
    """
    env = dict(os.environ, NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               MPIR_CVAR_ENABLE_HEAVY_YIELD="1")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cube.npy"
        np.save(path, blobs((edge, edge, edge)))
        print(f"iterations on {edge}^3 blobs, default tolerance, against the number of slabs (ranks)")
        for n in slabs:
            out = Path(tmp) / f"count{n}.json"
            cmd = [mpiexec(), "-n", str(n), sys.executable, __file__, "--count-worker", str(path), str(out)]
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if proc.returncode != 0:
                raise SystemExit(f"benchmark case failed ({' '.join(cmd)}):\n{proc.stderr}")
            counts = json.loads(out.read_text())
            print(f"  {n:3d} slabs: " + "  ".join(f"{k} {v[0]:4d} (sigma {v[1]:.5g})" for k, v in counts.items()),
                  flush=True)


def row(label: str, c: dict, ref: dict, kind: str) -> str:
    vox = float(np.prod(c["shape"]))
    it = max(c["iterations"], 1)
    if kind == "strong":
        gain = f"speed-up {ref['solve_s'] / c['solve_s']:.2f}"
    else:
        gain = f"efficiency {(ref['solve_s'] / ref['iterations']) / (c['solve_s'] / it):.2f}"
    return (f"{label:<8s} {'x'.join(map(str, c['shape'])):>13s} {c['direction']:>3s} {c['ranks']:>2d} x {c['threads']:<2d}"
            f" {c['wall_s']:8.2f} {c['iterations']:6d} {c['solve_s'] / it * 1e3:9.2f} "
            f"{vox * it / c['solve_s'] / 1e6:9.1f} {100 * c['comm_share']:6.1f} "
            f"{c['bytes_per_voxel_per_rank']:8.1f} {c['halo_bytes_per_iteration'] / 1e6:8.3f}  {gain}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--edge", type=int, default=128, help="edge of the strong-scaling cube (default 128)")
    ap.add_argument("--json", default=None, help="write the figures as JSON here")
    ap.add_argument("--solver", choices=("mg", "jacobi"), default="mg",
                    help="mg (default: V-cycle per slab and a global coarse grid) or jacobi "
                         "(bit-identical to one process)")
    ap.add_argument("--slabs", type=int, nargs="+", default=None,
                    help="instead: iteration counts of both solvers on --slab-edge^3 cut into this many slabs")
    ap.add_argument("--slab-edge", type=int, default=64, help="edge of the --slabs volume (default 64)")
    ap.add_argument("--worker", nargs=6, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--count-worker", nargs=2, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        path, direction, threads, out, warm, solver = args.worker
        worker(path, direction, int(threads), out, warm, solver)
        return
    if args.count_worker:
        count_worker(*args.count_worker)
        return
    if args.slabs:
        iteration_counts(args.slabs, args.slab_edge)
        return
    n = args.edge
    print(f"solver {args.solver}; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; "
          f"MPI: {mpiexec()}")
    print(f"{'case':<8s} {'shape':>13s} {'dir':>3s} {'ranks x thr':<11s} {'seconds':>6s} {'iter':>6s} "
          f"{'ms/iter':>9s} {'Mvox*it/s':>9s} {'comm %':>6s} {'B/vox/rk':>8s} {'halo MB':>8s}")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        np.save(tmp / "warm.npy", blobs((16, 12, 12)))
        cube = tmp / f"cube{n}.npy"
        np.save(cube, blobs((n, n, n)))
        half = tmp / f"half{n}.npy"
        np.save(half, blobs((n // 2, n, n), seed=1))
        for direction in ("x", "z"):
            ref = None
            for ranks, threads in ((1, 1), (1, 2), (2, 1)):
                c = run_case(cube, ranks, threads, direction, args.solver, tmp)
                ref = ref or c
                print(row("strong", c, ref, "strong"), flush=True)
                results.append(dict(c, kind="strong"))
        ref = None
        for ranks, path in ((1, half), (2, cube)):
            c = run_case(path, ranks, 1, "x", args.solver, tmp)
            ref = ref or c
            print(row("weak", c, ref, "weak"), flush=True)
            results.append(dict(c, kind="weak"))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
