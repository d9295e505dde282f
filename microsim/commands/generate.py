"""``microsim generate``: a synthetic composite cathode from a recipe."""
from __future__ import annotations

from pathlib import Path

from ..progress import Progress
from ._common import add_quiet, add_threads, apply_threads, voxel_size_arg


def _shape_arg(text: str):
    import argparse
    try:
        parts = [int(t) for t in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a shape; give 'n' or 'nz,ny,nx' in voxels")
    if len(parts) not in (1, 3):
        raise argparse.ArgumentTypeError(f"{text!r}: give one value or three (nz,ny,nx)")
    if min(parts) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: every edge must be at least 1 voxel")
    return tuple(parts * 3 if len(parts) == 1 else parts)


def register(sub) -> None:
    p = sub.add_parser("generate", help="generate a synthetic composite cathode from a recipe (TOML)",
                       description="Pack active-material (and electrolyte) particles densely, lay down the "
                                   "carbon-binder domain, electrolyte and pores, and write the label volume. "
                                   "Labels: 0 pore, 1 electrolyte, 2 active, 3 CBD.")
    p.add_argument("recipe", help="recipe TOML file, or the name of a preset in samples/recipes")
    p.add_argument("--out", required=True, help="output volume (.tif, .h5, .npy, .raw)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: the recipe's)")
    p.add_argument("--preview", default=None, help="PNG with three orthogonal slices coloured by phase")
    p.add_argument("--particles", default=None,
                   help="CSV of the placed particles (default: OUT with suffix .particles.csv; 'none' to skip)")
    p.add_argument("--phases-out", default=None,
                   help="phase table TOML for the other commands (default: OUT with suffix .phases.toml)")
    p.add_argument("--report", default=None, help="JSON with targets, achieved fractions and packing figures")
    p.add_argument("--shape", type=_shape_arg, default=None, help="override the recipe's domain: 'n' or 'nz,ny,nx'")
    p.add_argument("--voxel-size", type=voxel_size_arg, default=None,
                   help="override the recipe's voxel size in um: 'd' or 'dz,dy,dx'")
    add_threads(p)
    add_quiet(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..atomic import write_text_atomic
    from ..io.writers import output_format, write_volume
    from ..jsonio import write_json
    from ..report.figures import phase_slices
    from ..generate import generate, load_recipe
    from ..generate.presets import PRESET_DIR, preset_path

    apply_threads(args)
    source = Path(args.recipe)
    if not source.exists() and source.suffix == "" and (PRESET_DIR / f"{args.recipe}.toml").is_file():
        source = preset_path(args.recipe)
    output_format(args.out)  # an unknown extension fails before any work is done
    from ._guard import BYTES_PER_VOXEL, check_output_space, guard
    from ..safety import check_memory, count
    phases_out = args.phases_out or str(Path(args.out).with_suffix(".phases.toml"))
    particles = args.particles
    if particles is None:
        particles = str(Path(args.out).with_suffix(".particles.csv"))
    if particles.lower() == "none":
        particles = "none"
    # every output location is checked before the work: none may be an input or unwritable
    guard(args, inputs=[source], outputs=[phases_out, None if particles == "none" else particles, args.preview,
                                          args.report], volumes=[args.out])
    recipe = load_recipe(source)
    changes = {}
    if args.shape:
        changes["shape"] = args.shape
    if args.voxel_size:
        changes["voxel_size_um"] = args.voxel_size
    if args.seed is not None:
        changes["seed"] = args.seed
    if changes:
        recipe = recipe.with_changes(**changes)
    n = count(recipe.shape)
    check_memory(n * BYTES_PER_VOXEL["generate"], f"generating {' x '.join(map(str, recipe.shape))} voxels",
                 "use a smaller domain (--shape) or a coarser voxel size (--voxel-size)")
    check_output_space(args.out, n, "the generated volume")
    progress = Progress(quiet=args.quiet)
    progress.line(f"{source}: {recipe.name or 'recipe'}; {recipe.shape} voxels of {recipe.voxel_size_um} um, "
                  f"seed {recipe.seed}", force=True)
    cathode = generate(recipe, progress=progress)

    write_volume(args.out, cathode.volume)
    write_text_atomic(phases_out, f"# phase table of {Path(args.out).name}, written by microsim generate\n"
                      + cathode.volume.phases.to_toml())
    if particles != "none":
        cathode.particles.write_csv(particles)
    if args.preview:
        phase_slices(cathode.volume.labels, [p for p in cathode.volume.phases if cathode.achieved[p.name] > 0],
                     cathode.volume.voxel_size_um, args.preview,
                     title=f"{recipe.name or source.stem} (seed {recipe.seed})")
    if args.report:
        write_json(args.report, cathode.to_dict())

    pk = cathode.packing
    print(f"{recipe.name or source.stem}: {cathode.volume.shape} voxels of {cathode.volume.voxel_size_um} um, "
          f"seed {recipe.seed}, {recipe.boundary}")
    print(f"packing: {pk.radii_um.size} particles at {pk.fraction:.4f} of the box, largest overlap "
          f"{pk.max_overlap:.4f} of a diameter (tolerance {pk.tolerance}), {pk.sweeps} sweeps")
    print(cathode.fractions_table())
    written = [args.out, phases_out] + ([particles] if particles.lower() != "none" else []) + \
        [f for f in (args.preview, args.report) if f]
    print(f"wrote {', '.join(str(w) for w in written)} in {cathode.timings_s['total']:.1f} s")
    return 0
