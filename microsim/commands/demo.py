"""``microsim demo``: the main job on the bundled sample electrode."""
from __future__ import annotations

from pathlib import Path

from ..conductivity import conductivity
from ..io import read_volume
from ..progress import Progress
from ._common import add_quiet, add_threads, apply_threads, results_table

# the repository's samples/ folder, shipped inside the package (microsim/data/samples) for pip installs
SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"


def register(sub) -> None:
    p = sub.add_parser("demo", help="run the conductivity solver on the bundled sample electrode")
    add_threads(p)
    add_quiet(p)
    p.set_defaults(func=run)


def run(args) -> int:
    apply_threads(args)
    volume = read_volume(SAMPLES / "electrode_64.tif", SAMPLES / "electrode_phases.toml", 0.390625)
    progress = Progress(quiet=args.quiet)
    fractions = ", ".join(f"{k} {v:.3f}" for k, v in volume.phase_fractions().items())
    print(f"sample: NMC cathode crop, {volume.shape} voxels of {volume.voxel_size_um[0]} um; phases: {fractions}")
    result = conductivity(volume, "all", "both", progress=progress.solver)
    print(results_table(result))
    return 0 if result.converged else 3
