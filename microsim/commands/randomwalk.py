"""``microsim randomwalk``: tortuosity, effective diffusivity and MSD curves by random walks."""
from __future__ import annotations

import argparse
import sys

from ..conductivity import conductivity
from ..jsonio import write_json
from ..progress import Progress
from ..randomwalk import AXIS_NAMES, BOUNDARIES, check_parameters, plot_msd, random_walk
from ._common import (add_input_args, add_phases_arg, add_quiet, add_threads, apply_threads, fmt, read_input,
                      voxel_size_arg)


def _positive_fraction(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; give a relative error such as 0.01")
    if not 0 < v < 1:
        raise argparse.ArgumentTypeError(f"{text} must lie between 0 and 1 (a relative standard error, e.g. 0.01)")
    return v


def _window(text: str):
    try:
        lo, hi = (float(t) for t in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give two fractions of the run, e.g. 0.25,0.5")
    return lo, hi


#: most walker steps one command may ask for (about an hour at 3e8 walker-steps/s)
MAX_WALKER_STEPS = 10**12
#: most walkers or steps per walker
MAX_COUNT = 10**10


def register(sub) -> None:
    p = sub.add_parser("randomwalk", help="tortuosity and effective diffusivity by random walks (MSD curves)",
                       description="Random walk on the conducting voxels with jump rates from the finite-volume "
                                   "face conductances. Reports D_eff per axis, tau_rw = D0/D_eff, sigma_eff and the "
                                   "TauFactor tau with standard errors, and the MSD curves.")
    p.add_argument("volume", help="labelled volume: TIFF, folder or glob of TIFF slices, HDF5, .npy or raw file")
    add_phases_arg(p)
    p.add_argument("--voxel-size", type=voxel_size_arg, default=None,
                   help="voxel size in um: 'd' or 'dz,dy,dx' (default: from the file, else 1)")
    p.add_argument("--carrier", default="ionic", choices=("ionic", "electronic"))
    p.add_argument("--walkers", type=int, default=10_000, help="walkers (per batch with --target-error)")
    p.add_argument("--steps", type=int, default=10_000, help="steps per walker")
    p.add_argument("--boundary", default="periodic", choices=BOUNDARIES,
                   help="periodic images (= finite-volume cell problem) or mirrored images "
                        "(= fixed-potential faces with no-flux sides); default periodic")
    p.add_argument("--target-error", type=_positive_fraction, default=None,
                   help="add batches of walkers until the relative standard error of D_eff is at most this")
    p.add_argument("--max-walkers", type=int, default=None,
                   help="walker limit for --target-error (default 64 x --walkers)")
    p.add_argument("--seed", type=int, default=0, help="random seed; results do not depend on --threads")
    p.add_argument("--records", type=int, default=64, help="recorded times per walker (default 64)")
    p.add_argument("--groups", type=int, default=32, help="independent walker groups for error bars (default 32)")
    p.add_argument("--fit-window", type=_window, default=(0.25, 0.5),
                   help="part of the run fitted for D_eff, as fractions 'start,end' (default 0.25,0.5)")
    p.add_argument("--compare-fv", action="store_true",
                   help="also solve the matching finite-volume problem and print both")
    p.add_argument("--out", default=None, help="write the result with the MSD curves as JSON here")
    p.add_argument("--plot", default=None, help="write a PNG of MSD/(2 t D0) per axis here")
    add_input_args(p)
    add_threads(p)
    add_quiet(p)
    p.set_defaults(func=run)


def _table(result, fv=None) -> str:
    head = ["dir", "percolates", "D_eff um2/tu", "+-", "tau_rw", "+-", "sigma_eff S/m", "tau", "+-", "MacMullin"]
    if fv is not None:
        head += ["tau FV", "RW/FV sigma"]
    rows = [head]
    for name in reversed(AXIS_NAMES):
        a = result.get(name)
        row = [name, "yes" if a.percolates else "no", fmt(a.D_eff_um2_per_tu), fmt(a.D_eff_se, ".2g"),
               fmt(a.tau_rw), fmt(a.tau_rw_se, ".2g"), fmt(a.sigma_eff_S_per_m), fmt(a.tau), fmt(a.tau_se, ".2g"),
               fmt(a.macmullin)]
        if fv is not None:
            f = fv.get(result.carrier, name)
            ratio = a.sigma_eff_S_per_m / f.sigma_eff_S_per_m if f.sigma_eff_S_per_m > 0 else float("nan")
            row += [fmt(f.tau), fmt(ratio, ".4f")]
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in rows]
    lines.append(f"  eps {result.eps:.4f}, walked {result.eps_walked:.4f}, D0 {result.D0_um2_per_tu:.4g} um2/tu, "
                 f"{result.walkers} walkers x {result.steps} steps, {result.walker_steps_per_s:.3g} walker-steps/s")
    lines.append(f"  {result.message}")
    same = ("microsim conductivity --cell-problem (fully periodic cell)" if result.boundary == "periodic" else
            "microsim conductivity (fixed potentials on two faces, no-flux sides)")
    if fv is not None:
        lines.append(f"  tau FV solves the same problem as the walk ({result.boundary} boundary): {same}")
    else:
        lines.append(f"  the walk's problem ({result.boundary} boundary) is that of {same}; "
                     "--compare-fv solves it by finite volumes too")
    return "\n".join(lines)


def run(args) -> int:
    apply_threads(args)
    check_parameters(args.walkers, args.steps, args.boundary, args.seed, args.records, args.groups,
                     args.fit_window, args.target_error, args.max_walkers)
    for name, value, top in (("--walkers", args.walkers, MAX_COUNT), ("--steps", args.steps, MAX_COUNT),
                             ("--max-walkers", args.max_walkers or 0, MAX_COUNT)):
        if value > top:
            raise ValueError(f"{name} {value} is above {top:.0e}; the valid range is up to 10^10")
    from ._guard import BYTES_PER_WALKER, check_read, guard
    guard(args, inputs=[args.volume, args.phases], outputs=[args.out, args.plot])
    walkers = args.max_walkers or (64 * args.walkers if args.target_error else args.walkers)
    if args.walkers * args.steps > MAX_WALKER_STEPS:
        raise ValueError(f"--walkers {args.walkers} x --steps {args.steps} = {args.walkers * args.steps:.3g} walker "
                         f"steps is more than {MAX_WALKER_STEPS:.0e} (hours of work); use fewer walkers or steps "
                         "(--target-error adds walkers only as needed)")
    check_read(args, "randomwalk", extra_bytes=BYTES_PER_WALKER * walkers,
               hint="use fewer walkers (--walkers, --max-walkers) or read less of the volume (--crop, --stride)")
    volume = read_input(args, args.phases)
    progress = Progress(quiet=args.quiet)
    progress.line(f"{args.volume}: {volume.shape} voxels, voxel size {volume.voxel_size_um} um", force=True)

    def report(done, planned, rate):
        progress.bar("random walk", done, planned, f"walkers  {rate:.3g} walker-steps/s")

    result = random_walk(volume, args.carrier, walkers=args.walkers, steps=args.steps, boundary=args.boundary,
                         seed=args.seed, records=args.records, groups=args.groups, fit_window=args.fit_window,
                         target_error=args.target_error, max_walkers=args.max_walkers, progress=report)
    fv = None
    if args.compare_fv:
        fv = conductivity(volume, "all", args.carrier, cell_problem=args.boundary == "periodic",
                          progress=progress.solver)
    print(_table(result, fv))
    if args.target_error is not None and result.relative_error > args.target_error:
        print(f"microsim randomwalk: warning: relative error {result.relative_error:.3g} is above the target "
              f"{args.target_error} after {result.walkers} walkers; raise --max-walkers", file=sys.stderr)
    if args.plot:
        plot_msd(result, args.plot)
    if args.out:
        doc = {"volume": str(args.volume), "phases": volume.phases.to_dict(), **result.to_dict()}
        if fv is not None:
            doc["finite_volume"] = fv.to_dict()
        write_json(args.out, doc)
    return 0
