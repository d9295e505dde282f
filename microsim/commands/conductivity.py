"""``microsim conductivity``: effective conductivity and tortuosity factor of a volume."""
from __future__ import annotations

import sys

from ..conductivity import conductivity
from ..io import read_volume
from ..jsonio import write_json
from ..progress import Progress
from ._common import add_quiet, add_threads, apply_threads, results_table, voxel_size_arg


def register(sub) -> None:
    p = sub.add_parser("conductivity", help="effective conductivity and tortuosity factor of a labelled volume",
                       description="Solve steady conduction through a labelled volume and report sigma_eff, "
                                   "tau and the MacMullin number per carrier and direction.")
    p.add_argument("volume", help="labelled volume (.tif, .tiff, .npy)")
    p.add_argument("--phases", required=True, help="phase table (TOML) mapping labels to conductivities")
    p.add_argument("--voxel-size", type=voxel_size_arg, default=None,
                   help="voxel size in um: 'd' or 'dz,dy,dx' (default 1)")
    p.add_argument("--direction", default="all", help="x, y, z, all, or a comma list (default all)")
    p.add_argument("--carrier", default="ionic", choices=("ionic", "electronic", "both"))
    p.add_argument("--periodic-sides", action="store_true", help="periodic instead of no-flux side faces")
    p.add_argument("--rtol", type=float, default=1e-5, help="relative residual to reach (default 1e-5)")
    p.add_argument("--current-tol", type=float, default=1e-4,
                   help="relative inlet/outlet current mismatch to reach (default 1e-4)")
    p.add_argument("--max-iter", type=int, default=20000)
    p.add_argument("--out", default=None, help="write the results as JSON here")
    add_threads(p)
    add_quiet(p)
    p.set_defaults(func=run)


def run(args) -> int:
    apply_threads(args)
    volume = read_volume(args.volume, args.phases, args.voxel_size)
    progress = Progress(quiet=args.quiet)
    progress.line(f"{args.volume}: {volume.shape} voxels, voxel size {volume.voxel_size_um} um", force=True)
    result = conductivity(volume, args.direction, args.carrier, periodic_sides=args.periodic_sides,
                          rtol=args.rtol, current_tol=args.current_tol, max_iter=args.max_iter,
                          progress=progress.solver)
    print(results_table(result))
    if args.out:
        write_json(args.out, {"volume": str(args.volume), "phases": volume.phases.to_dict(), **result.to_dict()})
    if not result.converged:
        print("microsim conductivity: error: a solve did not converge; raise --max-iter or loosen --rtol",
              file=sys.stderr)
        return 3
    return 0
