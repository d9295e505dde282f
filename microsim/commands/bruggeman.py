"""``microsim bruggeman``: computed tortuosity factors against Bruggeman's relation, with a fit."""
from __future__ import annotations

from pathlib import Path

from ..analysis.bruggeman import compare_bruggeman, fit_bruggeman, plot_bruggeman, read_tau_points
from ..jsonio import write_json
from ._common import add_quiet, fmt


def register(sub) -> None:
    p = sub.add_parser("bruggeman", help="compare computed tau with Bruggeman's eps^-alpha and fit tau = A eps^-alpha",
                       description="Read results written by `microsim conductivity --out` and set each computed "
                                   "tortuosity factor beside Bruggeman's eps^-alpha (ratio and fitted exponent); "
                                   "fit tau = A eps^-alpha across all of them, per carrier, with confidence "
                                   "intervals.")
    p.add_argument("results", nargs="+", help="JSON files written by `microsim conductivity --out`")
    p.add_argument("--alpha", type=float, default=0.5, help="Bruggeman exponent to compare with (default 0.5)")
    p.add_argument("--carrier", choices=("ionic", "electronic", "both"), default="both",
                   help="which results to use (default both, fitted separately)")
    p.add_argument("--per-direction", action="store_true", help="fit each direction separately")
    p.add_argument("--fix-prefactor", action="store_true", help="fit alpha alone with A = 1 (Bruggeman's form)")
    p.add_argument("--percolating", action="store_true",
                   help="use the percolating part only (eps_percolating, tau_percolating)")
    p.add_argument("--confidence", type=float, default=0.95, help="confidence level of the intervals (default 0.95)")
    p.add_argument("--plot", default=None, help="write a PNG of tau against eps with both curves here")
    p.add_argument("--out", default=None, help="write the comparison and the fits as JSON here")
    add_quiet(p)
    p.set_defaults(func=run)


def _table(rows) -> str:
    head = ("source", "carrier", "dir", "eps", "tau", "tau_Brugg", "tau/tau_Brugg", "alpha_fit")
    out = [head]
    for r in rows:
        out.append((Path(r.source).name, r.carrier, r.direction, fmt(r.eps, ".4f"), fmt(r.tau), fmt(r.tau_bruggeman),
                    fmt(r.ratio), fmt(r.alpha_fit)))
    widths = [max(len(r[i]) for r in out) for i in range(len(head))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in out)


def run(args) -> int:
    if not 0 < args.confidence < 1:
        raise ValueError(f"--confidence {args.confidence} must lie between 0 and 1, e.g. 0.95")
    from ._guard import guard
    guard(args, inputs=args.results, outputs=[args.out, args.plot])
    for target in (args.out, args.plot):
        if target and Path(target).resolve().parent.is_file():
            raise ValueError(f"{target}: {Path(target).parent} is a file, not a folder")
    points = []
    for path in args.results:
        points.extend(read_tau_points(path, percolating=args.percolating))
    if args.carrier != "both":
        points = [p for p in points if p.carrier == args.carrier]
    if not points:
        raise ValueError(f"no {args.carrier if args.carrier != 'both' else ''} results in "
                         f"{', '.join(args.results)}; run `microsim conductivity --out` for that carrier first")
    rows = compare_bruggeman(points, args.alpha)
    print(_table(rows))
    groups = {}
    for r in rows:
        key = f"{r.carrier} {r.direction}" if args.per_direction else r.carrier
        groups.setdefault(key, []).append(r)
    fits, notes = {}, {}
    for key, members in groups.items():
        try:
            fits[key] = fit_bruggeman([m.eps for m in members], [m.tau for m in members], args.confidence,
                                      args.fix_prefactor)
        except ValueError as exc:
            notes[key] = str(exc)
    print()
    for key, f in fits.items():
        level = f"{100 * args.confidence:g} %"
        a_part = "A = 1 (fixed)" if f.prefactor_fixed else \
            f"A = {f.prefactor:.4g} [{fmt(f.prefactor_ci[0])}, {fmt(f.prefactor_ci[1])}]"
        print(f"fit {key}: tau = A eps^-alpha, {a_part}, alpha = {f.alpha:.4g} [{fmt(f.alpha_ci[0])}, "
              f"{fmt(f.alpha_ci[1])}] ({level}), {f.n_points} points"
              + (f" ({f.n_excluded} left out)" if f.n_excluded else "") + f", R^2 = {fmt(f.r_squared)}")
    for key, text in notes.items():
        print(f"no fit for {key}: {text}")
    if args.plot:
        plot_bruggeman(args.plot, [r.eps for r in rows], [r.tau for r in rows], fits, args.alpha,
                       groups=[f"{r.carrier} {r.direction}" for r in rows])
    if args.out:
        write_json(args.out, {"alpha": args.alpha, "confidence": args.confidence, "percolating": args.percolating,
                              "rows": [r.to_dict() for r in rows], "fits": {k: f.to_dict() for k, f in fits.items()},
                              "no_fit": notes})
    return 0
