"""Hard-cases benchmark: every phase of every real volume along every axis, and the contrast cases.

For each case it prints the default solver's tau, iterations (per stage),
seconds and peak resident memory per voxel, beside a reference solve of the same
discretisation to a tight tolerance and the relative difference:

    python benchmarks/bench_hard_cases.py                      # all real volumes and contrast cases
    python benchmarks/bench_hard_cases.py --only taufactor,NREL --reference amg
    python benchmarks/bench_hard_cases.py --reference jacobi   # Jacobi-PCG to a relative residual of 1e-9

References
    amg     the operator assembled as a sparse matrix and solved by pyamg's own
            Ruge-Stueben-preconditioned CG to a relative residual of 1e-10 (a solve that
            shares the discretisation with microsim, not its driver or stopping rule);
            sigma_eff from the dissipation of that potential
    jacobi  microsim's Jacobi-preconditioned CG with rtol 1e-9 (hours on the full volumes)
    none    no reference

Cases
    real      every phase of the volumes in ../shared/data, single conducting phase, x, y, z
    contrast  the NREL cathode with the presets' electronic conductivities (NMC811 1e-5 S/m,
              carbon black 1e3 S/m; 100^3 crop and whole) and islands of a good conductor below
              its percolation threshold at contrasts 1e4, 1e8, 1e12 (128^3)

The real volumes are skipped, with a line saying so, when ../shared/data is absent.
"""
from __future__ import annotations

import argparse
import math
import resource
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"

REAL = [("taufactor_electrode_NMC_pore_CBD_256.tiff", {"pore": 0, "NMC": 85, "CBD": 170}, 0.390625),
        ("NREL_nmc-1-cal_generatedCBD_bridge.tif", {"pore": 0, "NMC": 1, "CBD": 2}, 0.398),
        ("MATBOX_Ellipsoids.tif", {"pore": 0, "particles": 1}, 1.0),
        ("MATBOX_Bi_layer.tif", {"pore": 0, "layer1": 1, "layer2": 2}, 1.0),
        ("TF-500x500x500-1x2x6-v3_deflate.tif", {"rest": 0, "conducting": 255}, 1.0)]


def real_cases():
    import tifffile
    for name, labels, voxel in REAL:
        path = DATA / name
        if not path.exists():
            print(f"skipped {name}: {DATA} does not hold it", flush=True)
            continue
        arr = tifffile.imread(path)
        for phase in labels:
            sig = {p: (1.0 if p == phase else 0.0) for p in labels}
            yield f"{name.split('_')[0]} {phase}", arr, labels, sig, voxel


def contrast_cases():
    import tifffile
    from scipy import ndimage
    path = DATA / "NREL_nmc-1-cal_generatedCBD_bridge.tif"
    labels = {"pore": 0, "NMC": 1, "CBD": 2}
    electronic = {"pore": 0.0, "NMC": 1e-5, "CBD": 1e3}
    if path.exists():
        arr = tifffile.imread(path)
        yield "NREL electronic 100^3", np.ascontiguousarray(arr[:100, 100:200, 100:200]), labels, electronic, 0.398
        yield "NREL electronic whole", arr, labels, electronic, 0.398
    else:
        print(f"skipped the NREL contrast cases: {path} is absent", flush=True)
    rng = np.random.default_rng(3)
    field = ndimage.gaussian_filter(rng.standard_normal((128, 128, 128)), 2.0, mode="wrap")
    isl = (field > np.quantile(field, 1 - 0.22)).astype(np.uint8)
    for contrast in (1e4, 1e8, 1e12):
        yield f"islands 0.22 contrast {contrast:g}", isl, {"poor": 0, "good": 1}, {"poor": 1 / contrast, "good": 1.0}, 1.0


def reference(kind, d, size_um, axis):
    """sigma_eff of the discretisation ``d`` by the reference method (units of d.g times sigma_scale)."""
    if kind == "amg":
        import pyamg
        from microsim.solve.preconditioners import operator_matrix
        A, b, index = operator_matrix(d)
        ml = pyamg.ruge_stuben_solver(A)
        u = ml.solve(b, tol=1e-10, accel="cg", maxiter=5000)
        x = np.zeros(d.lab.shape)
        x[(slice(None),) * axis + (0,)] = 1.0
        inner = index >= 0
        x[inner] = u[index[inner]]
        from kernels import fv
        partial = np.zeros(d.lab.shape[0])
        fv.dissipation(d.lab, d.g, x, d.periodic, partial)
        power = float(partial.sum())
    else:
        from microsim.conductivity import solve_potential
        _, info, power = solve_potential(d, solver="jacobi", rtol=1e-9)
        if not info.converged:
            return math.nan
    length = size_um[axis]
    return power * d.sigma_scale * length * length / (size_um[0] * size_um[1] * size_um[2])


def run(name, arr, labels, sig, voxel, ref_kind):
    from microsim import Volume, conductivity
    from microsim.percolation import percolation
    from microsim.solve import discretise
    phases = {p: {"label": l, "sigma_ionic_S_per_m": sig[p]} for p, l in labels.items()}
    vol = Volume(arr, phases, voxel_size_um=voxel)
    for direction in "xyz":
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.perf_counter()
        r = conductivity(vol, direction).results[0]
        secs = time.perf_counter() - t0
        rss = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) * 1024 / arr.size
        its = "+".join(f"{s}:{n}" for s, n in r.solver.stages) if r.solver else "0"
        tau_ref, diff = math.nan, math.nan
        if ref_kind != "none" and r.percolates:
            axis = "zyx".index(direction)
            lut = vol.conductivity_lut("ionic")
            d = discretise(vol.labels, lut, vol.voxel_size_um, axis,
                           percolation(lut[vol.labels] > 0, direction).percolating)
            t1 = time.perf_counter()
            s_ref = reference(ref_kind, d, vol.size_um, axis)
            ref_secs = time.perf_counter() - t1
            tau_ref = r.eps * r.sigma_ref_S_per_m / s_ref if s_ref > 0 else math.inf
            diff = r.tau / tau_ref - 1 if r.converged else math.nan
        else:
            ref_secs = 0.0
        tau = r.tau if r.converged or not r.percolates else r.unconverged["tau"]
        print(f"| {name} | {direction} | {tau:.6g} | {'yes' if r.converged or not r.percolates else 'NO'} | {its} | "
              f"{secs:.1f} | {max(rss, 0):.0f} | {tau_ref:.6g} | {ref_secs:.1f} | {diff:+.1e} |", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default="", help="comma list of substrings of the case names to run")
    ap.add_argument("--cases", default="real,contrast")
    ap.add_argument("--reference", default="amg", choices=("amg", "jacobi", "none"))
    args = ap.parse_args(argv)
    print("| case | direction | tau | converged | iterations (stage:n) | seconds | RSS B/voxel | tau reference | "
          "reference s | difference |")
    print("|---|---|---|---|---|---|---|---|---|---|", flush=True)
    only = [s for s in args.only.split(",") if s]
    gens = {"real": real_cases, "contrast": contrast_cases}
    for kind in args.cases.split(","):
        for case in gens[kind]():
            if only and not any(s in case[0] for s in only):
                continue
            run(*case, args.reference)
    return 0


if __name__ == "__main__":
    sys.exit(main())
