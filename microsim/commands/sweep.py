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


def _g(value) -> str:
    """A fit number as text; a JSON-safe 'nan'/'inf' string is shown as it is."""
    return value if isinstance(value, str) else format(value, ".3g")


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
    from ..safety import allow_symlink_output
    result = sweep(spec, out, workers=args.workers, retry_failed=args.retry_failed,
                   progress=Progress(quiet=args.quiet), allow_symlink=allow_symlink_output(args))
    print(f"{len(result.done)} of {result.total} cases done, {len(result.failed)} failed "
          f"({len(result.ran)} run now, {len(result.skipped)} already finished)")
    for f in result.fits:
        if f["direction"] != "all":
            continue
        if "skipped" in f:
            print(f"Bruggeman fit {f['method']} {f['carrier']}: none ({f['skipped']})")
            continue
        # the fits come back from sweep.json, where a non-finite number is a string ("nan", "inf")
        lo, hi = (float(v) for v in f["alpha_ci"])
        interval = f"alpha {_g(lo)}..{_g(hi)}" if f.get("dof", 1) > 0 else \
            "no confidence interval: as many parameters as cases, add cases"
        print(f"Bruggeman fit {f['method']} {f['carrier']}: tau = {_g(float(f['prefactor']))} "
              f"eps^-{_g(float(f['alpha']))} ({interval}, {f['n_points']} points)")
    print(f"wrote {out / 'results.csv'} and {out / 'report.html'}")
    return 1 if result.failed else 0
