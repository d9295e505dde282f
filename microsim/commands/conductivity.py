"""``microsim conductivity``: effective conductivity and tortuosity factor of a volume."""
from __future__ import annotations

import argparse
import math
import re
import sys

from ..conductivity import DEFAULT_SOLVER, DEFAULT_TOL, SOLVERS, available_memory_bytes, conductivity
from ..solve.accuracy import DEFAULT_MAX_ITER, check_tolerances
from ..jsonio import write_json
from ..progress import Progress
from ..volume import directions
from ._common import (add_input_args, add_phases_arg, add_quiet, add_threads, apply_threads, count_arg, read_input,
                      results_table, voxel_size_arg)


def _criterion(name: str):
    """An argparse type for the stopping criterion ``name``, refused outside its range (solve.accuracy.RANGES)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        try:
            check_tolerances(**{name: value})
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return value
    return parse


def register(sub) -> None:
    p = sub.add_parser("conductivity", help="effective conductivity and tortuosity factor of a labelled volume",
                       description="Solve steady conduction through a labelled volume and report sigma_eff, "
                                   "tau and the MacMullin number per carrier and direction.")
    p.add_argument("volume", help="labelled volume: TIFF, folder or glob of TIFF slices, HDF5, .npy or raw file")
    add_phases_arg(p)
    p.add_argument("--voxel-size", type=voxel_size_arg, default=None,
                   help="voxel size in um: 'd' or 'dz,dy,dx' (default: from the file, else 1)")
    p.add_argument("--direction", default="all", help="x, y, z, all, or a comma list (default all)")
    p.add_argument("--carrier", default="ionic", choices=("ionic", "electronic", "both"))
    p.add_argument("--periodic-sides", action="store_true", help="periodic instead of no-flux side faces")
    p.add_argument("--cell-problem", action="store_true",
                   help="fully periodic volume with a unit potential drop per period (the homogenisation cell "
                        "problem, which `microsim randomwalk` solves by default) instead of fixed potentials on "
                        "two faces")
    p.add_argument("--solver", default=DEFAULT_SOLVER, choices=SOLVERS,
                   help="mg: multigrid-preconditioned conjugate gradients (default, fast); "
                        "jacobi: Jacobi-preconditioned, the reference")
    p.add_argument("--tol", type=_criterion("tol"), default=None,
                   help=f"bound on the estimated relative error of sigma_eff and tau, in [1e-12, 1e-3] "
                        f"(default {DEFAULT_TOL:g}; it applies to every solve)")
    p.add_argument("--rtol", type=_criterion("rtol"), default=None,
                   help="relative residual to reach as well, in [1e-15, 1e-2] (default: not used)")
    p.add_argument("--current-tol", type=_criterion("current_tol"), default=None,
                   help="relative inlet/outlet current mismatch to reach as well, in [1e-12, 0.1] (default: not used)")
    p.add_argument("--max-iter", type=count_arg("iterations"), default=DEFAULT_MAX_ITER,
                   help=f"iteration limit, the only stop short of convergence (default {DEFAULT_MAX_ITER})")
    p.add_argument("--max-memory", type=memory_arg, default=None, metavar="SIZE",
                   help="refuse volumes whose solve needs more memory than this, e.g. 16G or 800M "
                        "(default: the memory available now; 'none' = no check)")
    p.add_argument("--out", default=None, help="write the results as JSON here")
    p.add_argument("--distributed", action="store_true",
                   help="solve on the ranks of an MPI run, one slab of z planes each: mpiexec -n N microsim "
                        "conductivity ... (implied when mpiexec starts several ranks; needs microsim[mpi])")
    p.add_argument("--fields", default=None, metavar="FILE.h5",
                   help="with --distributed: write potential and current density to this HDF5 file")
    add_input_args(p)
    add_threads(p)
    add_quiet(p)
    p.set_defaults(func=run)


_UNITS = {"": 1, "b": 1, "k": 2**10, "kb": 2**10, "kib": 2**10, "m": 2**20, "mb": 2**20, "mib": 2**20,
          "g": 2**30, "gb": 2**30, "gib": 2**30, "t": 2**40, "tb": 2**40, "tib": 2**40}


def memory_arg(text: str):
    """Parse '16G', '800M', '1.5GiB' or a number of bytes (binary units); 'none' disables the check (0)."""
    if text.strip().lower() == "none":
        return 0
    m = re.fullmatch(r"\s*([0-9.]+(?:e[0-9]+)?)\s*([a-zA-Z]*)\s*", text)
    if not m or m.group(2).lower() not in _UNITS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a memory size; give e.g. 16G, 800M or 'none'")
    value = float(m.group(1)) * _UNITS[m.group(2).lower()]
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r}: the memory limit must be positive (or 'none')")
    return value


def _check_limit(args) -> None:
    """The solve's memory from the header, before a voxel is read (the solver checks again on the volume)."""
    from ._guard import check_read, region_shape
    shape = region_shape(args)[0]
    limit = available_memory_bytes() if args.max_memory is None else args.max_memory
    if not limit:
        return
    try:
        from ..conductivity import MemoryLimitError, check_memory
    except ImportError:  # the solver's check is a refinement; the generic estimate still applies
        check_memory = None
    if check_memory is not None:
        try:
            check_memory(shape, limit, solver=args.solver, periodic=args.periodic_sides)
        except MemoryLimitError as exc:
            raise MemoryLimitError(f"{args.volume}: {exc}") from None
        except TypeError:
            check_memory = None
    if check_memory is None:
        check_read(args, "conductivity", extra_bytes=30 * math.prod(shape), per_voxel=0, limit=limit,
                   hint="crop the volume (--crop), thin it (--stride/--downsample) or raise the limit "
                        "(--max-memory)")


def run(args) -> int:
    from ..mpi.world import launched_ranks
    from ._guard import guard
    guard(args, inputs=[args.volume, args.phases], outputs=[args.out, args.fields])
    if args.distributed or launched_ranks() > 1:
        if args.cell_problem:
            raise ValueError("--cell-problem is not available with --distributed; solve it on one machine")
        from ..mpi.command import run_distributed
        return run_distributed(args)
    if args.fields:
        raise ValueError("--fields is written by the distributed solver; add --distributed (needs microsim[mpi])")
    apply_threads(args)
    _check_limit(args)
    volume = read_input(args, args.phases)
    progress = Progress(quiet=args.quiet)
    progress.line(f"{args.volume}: {volume.shape} voxels, voxel size {volume.voxel_size_um} um", force=True)
    progress.planned_solves = len(directions(args.direction)) * (2 if args.carrier == "both" else 1)
    limit = available_memory_bytes() if args.max_memory is None else args.max_memory
    result = conductivity(volume, args.direction, args.carrier, periodic_sides=args.periodic_sides,
                          cell_problem=args.cell_problem, tol=args.tol,
                          rtol=args.rtol, current_tol=args.current_tol, max_iter=args.max_iter,
                          progress=progress.solver, solver=args.solver, max_memory_bytes=limit or None)
    print(results_table(result))
    if args.out:
        write_json(args.out, {"volume": str(args.volume), "phases": volume.phases.to_dict(),
                              "provenance": list(volume.provenance), **result.to_dict()})
    if not result.converged:
        bad = [r for r in result if not r.converged]
        for r in bad:
            print(f"microsim conductivity: {r.carrier} {r.direction}: {r.message}", file=sys.stderr)
        print(f"microsim conductivity: error: {len(bad)} of {len(result.results)} solves did not converge "
              "(their numbers are not results; see the messages above)", file=sys.stderr)
        return 3
    return 0
