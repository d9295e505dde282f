"""The distributed path of ``microsim conductivity`` (``--distributed``, or started by mpiexec on several ranks)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from ..commands._common import apply_threads, results_table, stack_options
from ..jsonio import write_json
from ..io.stack import describe
from ..phases import phase_table
from ..progress import Progress
from .conductivity import distributed_conductivity
from .world import World, run_ranks

PROG = "microsim conductivity"


def _check_output_folder(path) -> None:
    folder = Path(path).parent
    if folder.exists() and not folder.is_dir():
        raise FileNotFoundError(f"{path}: {folder} is a file, not a folder; choose another output")


def run_distributed(args) -> int:
    """Run the conductivity command on every rank; rank 0 prints and writes the JSON."""
    world = World()

    def body() -> int:
        with world.step():
            if args.threads is None and world.size > 1:
                # numba would start one thread per core in every rank; share the node's cores instead.
                import numba
                numba.set_num_threads(max(1, min(numba.config.NUMBA_NUM_THREADS,
                                                 (os.cpu_count() or 1) // world.ranks_on_node())))
            apply_threads(args)
            options = stack_options(args)
            if args.phases:
                table = phase_table(args.phases)
            else:  # the table stored in the file (an HDF5 file written by microsim)
                table = describe(args.volume, dataset=options.get("dataset"), raw=options.get("raw")).phases
                if table is None:
                    raise ValueError(f"{args.volume}: the file stores no phase table; give one (--phases TABLE.toml)")
            for path in (args.out, args.fields):
                if path:
                    _check_output_folder(path)
        progress = Progress(quiet=args.quiet or world.rank != 0)
        progress.line(f"{args.volume}: solving on {world.size} MPI rank(s), one slab of z planes each", force=True)
        run = distributed_conductivity(args.volume, table, args.voxel_size, args.direction, args.carrier,
                                       periodic_sides=args.periodic_sides, tol=getattr(args, "tol", None),
                                       rtol=args.rtol, current_tol=args.current_tol, max_iter=args.max_iter,
                                       solver=getattr(args, "solver", "mg"), fields=args.fields,
                                       world=world, progress=progress.solver, **options)
        with world.step():
            if world.rank == 0:
                print(results_table(run.result), flush=True)
                if args.out:
                    write_json(args.out, {"volume": str(args.volume), "phases": table.to_dict(), **run.to_dict()})
        if not run.result.converged:
            if world.rank == 0:
                print(f"{PROG}: error: a solve did not converge; raise --max-iter or loosen --rtol", file=sys.stderr)
            return 3
        return 0

    return run_ranks(world, body, PROG)
