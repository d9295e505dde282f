"""Solver benchmark: multigrid against Jacobi-preconditioned conjugate gradients.

For every volume size and conducting fraction it prints, per solver: iterations,
seconds, voxels per second, voxel-updates per second and peak bytes per voxel,
and checks that the two solvers agree on tau within the tolerance. Two extra
volumes stress the solver: a structure close to its percolation threshold and
one with a conductivity contrast of 1e6 between two conducting phases.

    python benchmarks/bench_solvers.py                      # 128^3 .. 512^3, fractions 0.3, 0.5, 0.7
    python benchmarks/bench_solvers.py --sizes 128,256 --solvers mg
    python benchmarks/bench_solvers.py --sizes 300 --fractions 0.5 --kind spheres --compare

Structures
    blobs    Gaussian random field (smoothing length 2 voxels at every size, so the
             feature size is fixed and only the volume grows), thresholded at the
             fraction's quantile: the conducting fraction is exact.
    spheres  Overlapping solid spheres (radius 6 voxels), conducting pore space
             around them, as in the usual tortuosity benchmarks.

Definitions
    seconds            wall time of conductivity(), percolation analysis included
    solve seconds      the iteration itself (SolverInfo.time_s)
    voxels/s           voxels / seconds
    updates/s          voxels x iterations / solve seconds (one update = one voxel in one
                       iteration, whatever the iteration costs)
    B/voxel arrays     peak of the arrays numpy allocates during conductivity() (tracemalloc),
                       plus the 1-byte labels: the figure estimate_memory() predicts
    B/voxel RSS        (peak resident set - resident set before the volume was loaded) / voxels,
                       in a fresh process per case; it includes the labels' file reading

Every case runs in its own subprocess, one after the other, with the same number
of numba threads (--threads, default all cores). ``--compare`` also runs
TauFactor and PoreSpy on the same volumes when they are installed (they are not
dependencies of microsim) with the same thread count, and prints their time and
tau next to microsim's.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()
CONTRAST = 1e6


# ---------------------------------------------------------------------------
# structures


def blobs(n: int, fraction: float, seed: int, smoothing: float = 2.0) -> np.ndarray:
    """Labels (uint8, n^3): 1 = conducting (exactly ``fraction`` of the voxels), 0 = the rest."""
    from scipy import ndimage
    field = ndimage.gaussian_filter(np.random.default_rng(seed).standard_normal((n, n, n), dtype=np.float32),
                                    smoothing, mode="wrap")
    flat = field.ravel()
    k = int(round(fraction * flat.size))
    labels = np.zeros(flat.size, dtype=np.uint8)
    labels[np.argpartition(flat, k)[:k]] = 1
    return labels.reshape(field.shape)


def spheres(n: int, fraction: float, seed: int, radius: float = 6.0) -> np.ndarray:
    """Labels (uint8, n^3): 1 = pore space (about ``fraction``) between overlapping solid spheres."""
    from scipy import ndimage
    rng = np.random.default_rng(seed)
    # Poisson spheres: the pore fraction is exp(-density * sphere volume)
    count = int(round(-math.log(fraction) * n ** 3 / (4 / 3 * math.pi * radius ** 3)))
    free = np.ones((n, n, n), dtype=bool)
    free[tuple(rng.integers(0, n, size=(3, count)))] = False
    dist = ndimage.distance_transform_edt(free)
    return (dist > radius).astype(np.uint8)


def near_threshold(n: int, seed: int) -> tuple[np.ndarray, float]:
    """A blobs structure at the lowest conducting fraction (step 0.01) that still percolates along x."""
    from microsim import percolation
    for f in np.arange(0.10, 0.40, 0.01):
        labels = blobs(n, float(f), seed)
        if percolation(labels == 1, "x").percolates:
            return labels, float(f)
    raise RuntimeError("no percolating fraction found below 0.4")


def phases_for(case: dict) -> dict:
    if case["kind"] == "contrast":
        return {"low": {"label": 0, "sigma_ionic_S_per_m": 1.0 / CONTRAST},
                "high": {"label": 1, "sigma_ionic_S_per_m": 1.0}}
    return {"insulating": {"label": 0}, "conducting": {"label": 1, "sigma_ionic_S_per_m": 1.0}}


def make_volume(case: dict, folder: Path) -> Path:
    path = folder / f"{case['kind']}_{case['n']}_{case['fraction']:.2f}.npy"
    if not path.exists():
        n, f, seed = case["n"], case["fraction"], case["seed"]
        if case["kind"] == "spheres":
            labels = spheres(n, f, seed)
        else:
            labels = blobs(n, f, seed)
        np.save(path, labels)
    return path


# ---------------------------------------------------------------------------
# one case in a fresh process


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def run_case(spec: dict) -> dict:
    """Solve one case (called in the child process); returns the figures as a dict."""
    import numba

    from microsim import Volume, conductivity, estimate_memory
    if spec["threads"]:
        numba.set_num_threads(spec["threads"])
    # compile (or load from the cache) and start the thread pools outside the measurement
    warm = Volume((np.random.default_rng(0).random((32, 32, 32)) < 0.7).astype(np.uint8), phases_for(spec))
    conductivity(warm, "x", solver=spec["solver"])
    base_rss = rss_bytes()
    labels = np.load(spec["path"])
    volume = Volume(labels, phases_for(spec))
    tracemalloc.start()
    t0 = time.perf_counter()
    res = conductivity(volume, "x", solver=spec["solver"], tol=spec["tol"], max_iter=spec["max_iter"])
    wall = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    r = res.results[0]
    n = labels.size
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    info = r.solver
    est = estimate_memory(labels.shape, spec["solver"])
    return {"tau": r.tau, "eps": r.eps, "converged": r.converged, "iterations": info.iterations if info else 0,
            "seconds": wall, "solve_seconds": info.time_s if info else 0.0,
            "voxels_per_s": n / wall, "updates_per_s": n * info.iterations / info.time_s if info else 0.0,
            "array_bytes_per_voxel": (peak + labels.nbytes) / n, "rss_bytes_per_voxel": (maxrss - base_rss) / n,
            "estimate_bytes_per_voxel": est.bytes_per_voxel, "error_estimate": info.error_estimate if info else 0.0,
            "threads": numba.get_num_threads()}


def run_other(spec: dict) -> dict:
    """TauFactor or PoreSpy on one case (child process), if installed."""
    labels = np.load(spec["path"])
    conducting = labels == 1
    threads = spec["threads"] or os.cpu_count()
    t0 = time.perf_counter()
    if spec["tool"] == "taufactor":
        import taufactor
        import torch
        torch.set_num_threads(threads)
        # TauFactor transports along its first axis; ours is x (the last)
        solver = taufactor.Solver(np.ascontiguousarray(np.moveaxis(conducting, 2, 0)).astype(np.float32),
                                  device="cpu")
        solver.solve(verbose=False, conv_crit=spec["tol"])
        tau = float(solver.tau)
    else:
        import porespy
        tau = float(porespy.simulations.tortuosity_fd(conducting, axis=2).tortuosity)
    return {"tau": tau, "seconds": time.perf_counter() - t0,
            "rss_bytes_per_voxel": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / labels.size}


def child(spec_json: str) -> None:
    spec = json.loads(spec_json)
    out = run_other(spec) if spec.get("tool") else run_case(spec)
    print("RESULT " + json.dumps(out))


def spawn(spec: dict, timeout: float) -> dict:
    env = dict(os.environ)
    if spec["threads"]:
        env["NUMBA_NUM_THREADS"] = str(max(spec["threads"], 1))
    try:
        proc = subprocess.run([sys.executable, str(HERE), "--child", json.dumps(spec)], capture_output=True,
                              text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"over the time limit of {timeout:.0f} s"}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return {"error": last}


# ---------------------------------------------------------------------------
# the suite


def fmt(v, spec):
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="128,256,384,512", help="edge lengths, comma separated")
    ap.add_argument("--fractions", default="0.3,0.5,0.7", help="conducting fractions, comma separated")
    ap.add_argument("--kind", default="blobs", choices=("blobs", "spheres"))
    ap.add_argument("--solvers", default="mg,jacobi")
    ap.add_argument("--extra", default="256", help="size of the near-threshold and contrast-1e6 volumes "
                                                   "('' for none)")
    ap.add_argument("--threads", type=int, default=0, help="numba threads (default: all cores)")
    ap.add_argument("--tol", type=float, default=5e-4, help="tolerance of every solve (microsim's default)")
    ap.add_argument("--max-iter", type=int, default=20000)
    ap.add_argument("--timeout", type=float, default=4 * 3600, help="seconds per case")
    ap.add_argument("--compare", action="store_true", help="also run TauFactor and PoreSpy if installed")
    ap.add_argument("--data", default=None, help="folder for the generated volumes (default: a temporary one)")
    ap.add_argument("--out", default=None, help="write all figures as JSON here")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child)
        return 0
    sizes = [int(s) for s in args.sizes.split(",") if s]
    fractions = [float(f) for f in args.fractions.split(",") if f]
    solvers = [s for s in args.solvers.split(",") if s]
    folder = Path(args.data) if args.data else Path(tempfile.mkdtemp(prefix="bench_solvers_"))
    folder.mkdir(parents=True, exist_ok=True)
    cases = [dict(kind=args.kind, n=n, fraction=f, seed=1000 * n + int(100 * f)) for n in sizes for f in fractions]
    for n in (int(s) for s in args.extra.split(",") if s):
        labels, f = near_threshold(n, seed=7 * n)
        path = folder / f"threshold_{n}.npy"
        np.save(path, labels)
        cases.append(dict(kind="threshold", n=n, fraction=f, seed=7 * n, path=str(path)))
        cases.append(dict(kind="contrast", n=n, fraction=0.3, seed=11 * n))
    print(f"# bench_solvers: {len(cases)} volumes, solvers {', '.join(solvers)}, tol {args.tol:g}, "
          f"threads {args.threads or 'all'}, cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}", flush=True)
    head = ("volume", "eps", "solver", "iter", "seconds", "solve s", "Mvox/s", "Mupd/s", "B/vox arrays",
            "B/vox RSS", "tau")
    print("  ".join(f"{h:>12s}" if i else f"{h:<24s}" for i, h in enumerate(head)), flush=True)
    rows = []
    worst = 0.0
    for case in cases:
        if "path" not in case:
            case["path"] = str(make_volume(case, folder))
        name = f"{case['kind']} {case['n']}^3"
        got = {}
        for solver in solvers:
            spec = dict(case, solver=solver, threads=args.threads, tol=args.tol, max_iter=args.max_iter)
            r = spawn(spec, args.timeout)
            got[solver] = r
            rows.append(dict(case, solver=solver, **r))
            if "error" in r:
                print(f"{name:<24s}  {case['fraction']:12.2f}  {solver:>12s}  error: {r['error']}", flush=True)
                continue
            print("  ".join([f"{name:<24s}", f"{r['eps']:12.4f}", f"{solver:>12s}", f"{r['iterations']:12d}",
                             f"{r['seconds']:12.2f}", f"{r['solve_seconds']:12.2f}", f"{r['voxels_per_s'] / 1e6:12.2f}",
                             f"{r['updates_per_s'] / 1e6:12.1f}", f"{r['array_bytes_per_voxel']:12.2f}",
                             f"{r['rss_bytes_per_voxel']:12.2f}", f"{r['tau']:12.5f}"]), flush=True)
        if all(s in got and "tau" in got[s] for s in ("mg", "jacobi")):
            diff = abs(got["mg"]["tau"] / got["jacobi"]["tau"] - 1)
            worst = max(worst, diff)
            ok = "agree" if diff <= args.tol else "DISAGREE"
            speed = got["jacobi"]["seconds"] / got["mg"]["seconds"]
            print(f"{'':<24s}  mg vs jacobi: |d tau|/tau = {diff:.1e} ({ok} within {args.tol:g}), "
                  f"mg {speed:.1f}x faster", flush=True)
        if args.compare:
            for tool in ("taufactor", "porespy"):
                try:
                    __import__(tool)
                except ImportError:
                    print(f"{'':<24s}  {tool}: not installed (not a microsim dependency); skipped", flush=True)
                    continue
                spec = dict(case, tool=tool, threads=args.threads, tol=args.tol)
                r = spawn(spec, args.timeout)
                rows.append(dict(case, solver=tool, **r))
                if "error" in r:
                    print(f"{'':<24s}  {tool}: error: {r['error']}", flush=True)
                    continue
                ours = got.get("mg", {})
                ratio = r["seconds"] / ours["seconds"] if ours.get("seconds") else math.nan
                print(f"{'':<24s}  {tool}: {r['seconds']:.1f} s ({fmt(ratio, '.1f')}x microsim mg), "
                      f"tau {r['tau']:.5f} (microsim {fmt(ours.get('tau'), '.5f')}), "
                      f"{r['rss_bytes_per_voxel']:.0f} B/voxel RSS", flush=True)
    if "mg" in solvers and "jacobi" in solvers:
        print(f"# largest mg/jacobi difference in tau: {worst:.1e} (tolerance {args.tol:g})")
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
