"""``microsim run``: a configuration in, a run folder with results, fields, figures and report out."""
from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from ..pipeline.config import ConfigError, load_config, parse_assignment, read_toml, set_dotted
from ..pipeline.runner import interrupt_on_sigterm, run as run_config
from ..progress import Progress
from ._common import add_quiet, fmt, threads_arg


def register(sub) -> None:
    p = sub.add_parser("run", help="run a configuration: volume, percolation, solves, fields, figures, report",
                       description="Read a stack (or generate a volume from a recipe) as CONFIG.toml says, run the "
                                   "analyses and solvers it names, and write a run folder with result.json, "
                                   "summary.csv, fields.h5 + fields.xdmf, PNG figures and report.html.")
    p.add_argument("config", help="run configuration (TOML)")
    p.add_argument("--out", default=None, help="run folder to create (default: runs/CONFIG_NAME)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing run folder (only once the new one is complete)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="change one configuration value, e.g. --set source.crop='\"0:64,:,:\"' or --set run.seed=3 "
                        "(VALUE is a TOML value; repeatable)")
    p.add_argument("--threads", type=threads_arg, default=None, help="numba threads (default: all cores)")
    add_quiet(p)
    p.set_defaults(func=main)


def rows_table(rows) -> str:
    """Plain-text table of the summary rows of a run."""
    head = ("method", "carrier", "dir", "eps", "perc.frac", "sigma_eff S/m", "tau", "tau_Brugg", "MacMullin",
            "converged")
    lines = [head]
    for r in rows:
        lines.append((r["method"].replace("finite_volume", "FV").replace("random_walk", "RW"), r["carrier"],
                      r["direction"], fmt(_num(r["eps"]), ".4f"), fmt(_num(r["percolating_fraction"]), ".4f"),
                      fmt(_num(r["sigma_eff_S_per_m"])), fmt(_num(r["tau"])), fmt(_num(r["tau_bruggeman"])),
                      fmt(_num(r["macmullin"])), "yes" if r["converged"] else "NO"))
    widths = [max(len(row[i]) for row in lines) for i in range(len(head))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in lines)


def _num(v) -> float:
    return float(v) if not isinstance(v, bool) else float(v)


def main(args) -> int:
    interrupt_on_sigterm()
    path = Path(args.config)
    doc = read_toml(path)
    for item in args.overrides:
        key, value = parse_assignment(item)
        set_dotted(doc, key, value, path.resolve().parent)
    if args.threads is not None:
        set_dotted(doc, "run.threads", args.threads, path.resolve().parent)
    try:
        config = load_config(doc, base_dir=path.resolve().parent)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    config = replace(config, source_file=path)
    out = Path(args.out) if args.out else Path("runs") / path.stem
    if args.out is None:
        out.parent.mkdir(exist_ok=True)
    from ..safety import allow_symlink_output
    result = run_config(config, out, overwrite=args.overwrite, progress=Progress(quiet=args.quiet),
                        allow_symlink=allow_symlink_output(args))
    print(rows_table(result.rows))
    for w in result.warnings:
        print(f"warning: {w}")
    print(f"wrote {out}/ (open {out / 'report.html'})")
    if not result.converged:
        for t in result.document.get("transport", ()):
            if not t["converged"]:
                print(f"microsim run: {t['carrier']} {t['direction']}: {t['message']}", file=sys.stderr)
        print("microsim run: error: a solve did not converge (see its message; the report marks it)", file=sys.stderr)
        return 3
    return 0
