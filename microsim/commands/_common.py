"""Arguments and output shared by several commands."""
from __future__ import annotations

import argparse

from ..volume import check_voxel_size


def voxel_size_arg(text: str):
    """Parse '0.4' or '0.5,0.4,0.4' (dz,dy,dx in um)."""
    try:
        parts = [float(t) for t in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a voxel size; give 'd' or 'dz,dy,dx' in micrometres")
    if len(parts) not in (1, 3):
        raise argparse.ArgumentTypeError(f"{text!r}: give one value or three (dz,dy,dx) in micrometres")
    try:
        return check_voxel_size(parts[0] if len(parts) == 1 else parts)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc))


def add_quiet(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", action="store_true", help="no progress output on stderr")


def add_threads(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=int, default=None, help="number of threads (default: all cores)")


def apply_threads(args) -> None:
    if getattr(args, "threads", None):
        import numba
        if not 1 <= args.threads <= numba.config.NUMBA_NUM_THREADS:
            raise ValueError(f"--threads {args.threads} is outside 1..{numba.config.NUMBA_NUM_THREADS}")
        numba.set_num_threads(args.threads)


def fmt(value: float, spec: str = ".4g") -> str:
    if value != value:
        return "nan"
    if value in (float("inf"), float("-inf")):
        return "inf"
    return format(value, spec)


def results_table(result) -> str:
    """A plain-text table of a ConductivityResult, one row per (carrier, direction)."""
    head = ("carrier", "dir", "eps", "eps_perc", "sigma_eff S/m", "sigma_eff S/cm", "tau", "tau_perc",
            "MacMullin", "tau_Brugg", "iter", "time s")
    rows = [head]
    for r in result:
        s = r.solver
        rows.append((r.carrier, r.direction, fmt(r.eps, ".4f"), fmt(r.eps_percolating, ".4f"),
                     fmt(r.sigma_eff_S_per_m), fmt(r.sigma_eff_S_per_cm), fmt(r.tau), fmt(r.tau_percolating),
                     fmt(r.macmullin), fmt(r.tau_bruggeman), str(s.iterations) if s else "-",
                     fmt(s.time_s, ".2f") if s else "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in rows]
    notes = [f"  {r.carrier} {r.direction}: {r.message}" for r in result if r.message != "converged"]
    return "\n".join(lines + notes)
