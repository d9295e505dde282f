"""Composite cathode generation benchmark: seconds and voxels per second at 60 vol % active material.

Usage::

    python benchmarks/bench_generate.py                  # 128^3 and 256^3
    python benchmarks/bench_generate.py --sizes 128 256 512

The recipe is the same at every size (only the number of voxels changes, so the
number of particles grows with the volume): NMC811 spheres with a log-normal
size distribution (D50 5 um by volume, geometric standard deviation 1.3) at 60
vol % of the whole volume, 3 vol % carbon-binder domain at the particle necks,
5 vol % voids in a Li6PS5Cl matrix, voxels of 0.25 um (about 16 voxels across
a median particle), periodic boundaries. Each size runs in a fresh process
after a small warm-up run, so numba compilation is not timed and "peak RSS" is
the high-water mark of that process alone. "bytes/voxel" is peak RSS over the
number of voxels. The load average is printed because these figures fall when
other programs share the machine.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

RECIPE = {
    "name": "benchmark: NMC811 60 vol %, 3 % CBD bridges, 5 % voids",
    "seed": 1,
    "domain": {"shape": [128, 128, 128], "voxel_size_um": 0.25},
    "active": {"material": "NMC811", "fraction": 0.60 / 0.95, "size": {"d50_um": 5.0, "gsd": 1.3}},
    "electrolyte": {"material": "Li6PS5Cl"},
    "cbd": {"fraction": 0.03 / 0.95, "placement": "bridges"},
    "porosity": {"fraction": 0.05, "size": {"d50_um": 1.5, "gsd": 1.4}},
}


def child(n: int) -> dict:
    from microsim.generate import Recipe, generate
    small = dict(RECIPE, domain={"shape": [80, 80, 80], "voxel_size_um": 0.25})
    generate(Recipe.from_dict(small))  # compile (or load the numba cache) before timing
    recipe = Recipe.from_dict(dict(RECIPE, domain={"shape": [n, n, n], "voxel_size_um": 0.25}))
    t0 = time.perf_counter()
    g = generate(recipe)
    total = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"n": n, "seconds": total, "timings": g.timings_s, "particles": int(g.packing.radii_um.size),
            "sweeps": g.packing.sweeps, "fraction_active": g.achieved["active"],
            "max_overlap": g.packing.max_overlap, "peak_rss": rss}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[128, 256], help="cube edge lengths in voxels")
    ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child)))
        return
    import numba
    print(f"threads {numba.config.NUMBA_NUM_THREADS}; load average {os.getloadavg()[0]:.1f}")
    head = (f"{'size':>6} {'Mvoxels':>8} {'particles':>9} {'sweeps':>6} {'pack s':>7} {'raster s':>8} "
            f"{'total s':>8} {'Mvox/s':>7} {'active':>7} {'overlap':>7} {'peak MB':>8} {'B/voxel':>7}")
    print(head)
    for n in args.sizes:
        out = subprocess.run([sys.executable, __file__, "--child", str(n)], capture_output=True, text=True)
        if out.returncode != 0:
            print(f"{n:>6} failed: {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode}")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        vox = n**3
        t = r["timings"]
        raster = t["active"] + t["cbd"] + t["electrolyte_pores"]
        print(f"{n:>5}^3 {vox / 1e6:8.2f} {r['particles']:9d} {r['sweeps']:6d} {t['packing']:7.2f} {raster:8.2f} "
              f"{r['seconds']:8.2f} {vox / r['seconds'] / 1e6:7.2f} {r['fraction_active']:7.4f} "
              f"{r['max_overlap']:7.4f} {r['peak_rss'] / 2**20:8.0f} {r['peak_rss'] / vox:7.1f}", flush=True)


if __name__ == "__main__":
    main()
