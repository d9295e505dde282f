"""``microsim sweep``: many variations of one run configuration, in parallel and resumable."""
from __future__ import annotations

from pathlib import Path

from ..pipeline.runner import interrupt_on_sigterm
from ..progress import Progress
from ..sweep import load_sweep, sweep


def register(sub) -> None:
    p = sub.add_parser("sweep", help="run a grid or list of variations of a run configuration, resumably",
                       description="Run every case of SWEEP.toml (a grid or list of changes to a base run "
                                   "configuration) in parallel, one run folder per case, then write results.csv, "
                                   "the Bruggeman fits and report.html. Running it again skips finished cases.")
    p.add_argument("sweep", help="sweep file (TOML)")
    p.add_argument("--out", default=None, help="sweep folder (default: sweeps/SWEEP_NAME); reused to resume")
    p.add_argument("--workers", type=int, default=None,
                   help="cases at the same time (default: the sweep file's workers, else one per core)")
    p.add_argument("--retry-failed", action="store_true", help="run cases that failed before again")
    p.add_argument("--list", action="store_true", help="list the cases and their IDs, run nothing")
    p.add_argument("--quiet", action="store_true", help="no progress output on stderr")
    p.set_defaults(func=main)


def main(args) -> int:
    interrupt_on_sigterm()
    spec = load_sweep(args.sweep)
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers {args.workers} must be at least 1")
    if args.list:
        for case in spec.cases:
            print(f"{case.id}  {case.name}")
        return 0
    out = Path(args.out) if args.out else Path("sweeps") / Path(args.sweep).stem
    if args.out is None:
        out.parent.mkdir(exist_ok=True)
    result = sweep(spec, out, workers=args.workers, retry_failed=args.retry_failed,
                   progress=Progress(quiet=args.quiet))
    print(f"{len(result.done)} of {result.total} cases done, {len(result.failed)} failed "
          f"({len(result.ran)} run now, {len(result.skipped)} already finished)")
    for f in result.fits:
        if f["direction"] == "all" and "skipped" not in f:
            # the fits come back from sweep.json, where a non-finite number is a string ("nan", "inf")
            lo, hi = (float(v) for v in f["alpha_ci"])
            print(f"Bruggeman fit {f['method']} {f['carrier']}: tau = {float(f['prefactor']):.3g} "
                  f"eps^-{float(f['alpha']):.3g} "
                  f"(alpha {lo:.3g}..{hi:.3g}, {f['n_points']} points)")
    print(f"wrote {out / 'results.csv'} and {out / 'report.html'}")
    return 1 if result.failed else 0
