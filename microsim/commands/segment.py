"""``microsim segment``: grayscale stack -> labelled volume (multi-Otsu or thresholds)."""
from __future__ import annotations

import sys
from pathlib import Path

from ..atomic import write_text_atomic
from ..io import load_stack, write_array
from ..jsonio import write_json
from ..phases import phase_table
from ..progress import Progress
from ..segment import class_table, segment
from ._common import add_input_args, add_quiet, announce_input, fmt, stack_options, voxel_size_arg
from .info import text_histogram


def _phases_arg(text: str):
    try:
        return int(text)
    except ValueError:
        return text


def _numbers(text: str, kind=float, what: str = "--thresholds"):
    import math
    try:
        values = [kind(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise ValueError(f"{what} {text!r} is not a comma-separated list of numbers") from None
    bad = [v for v in values if not math.isfinite(v)]
    if bad:
        raise ValueError(f"{what} {text!r}: {bad[0]} is not a finite number; give finite grey levels, "
                         "e.g. --thresholds 80,170")
    if not values:
        raise ValueError(f"{what} {text!r} holds no number")
    return values


def register(sub) -> None:
    p = sub.add_parser("segment", help="segment a grayscale stack into labelled phases",
                       description="Threshold a grayscale stack into N phases (multi-Otsu, or explicit "
                                   "thresholds), after optional denoising, with optional removal of small islands, "
                                   "and write the labels. Classes go from dark to bright; a voxel is in class k+1 "
                                   "when its value is above threshold t_k.")
    p.add_argument("volume", metavar="STACK", help="grayscale TIFF, folder or glob of slices, HDF5, .npy or raw file")
    p.add_argument("--classes", type=int, default=None, metavar="N",
                   help="number of classes for multi-Otsu (dark to bright); the output gets a phase table for "
                        "them: the darkest class is pore (ionic sigma 1), the others solid (electronic sigma 1)")
    p.add_argument("--phases", type=_phases_arg, default=None, metavar="TABLE",
                   help="a phase table (TOML) whose phases, listed dark to bright, give the classes' label values, "
                        "names and conductivities (a number here still means --classes, the old spelling)")
    p.add_argument("--out", required=True, help="output labels (.tif, .h5, .npy, .raw or a folder)")
    p.add_argument("--thresholds", default=None, metavar="T1,T2,..",
                   help="explicit grey-level thresholds instead of multi-Otsu")
    p.add_argument("--labels", default=None, metavar="V0,V1,..", help="label value of each class, dark to bright "
                   "(default 0,1,..; taken from the table when --phases is a table)")
    p.add_argument("--denoise", choices=("median", "nlm"), default=None,
                   help="denoise before thresholding: median filter or non-local means")
    p.add_argument("--denoise-size", type=int, default=3, metavar="VOXELS",
                   help="median window / non-local-means patch size (default 3)")
    p.add_argument("--min-island", type=int, default=0, metavar="VOXELS",
                   help="give connected regions smaller than this to the surrounding phase")
    p.add_argument("--connectivity", type=int, choices=(6, 18, 26), default=6,
                   help="neighbourhood of island detection (default 6)")
    p.add_argument("--voxel-size", type=voxel_size_arg, default=None,
                   help="voxel size of the stack in um ('d' or 'dz,dy,dx'); default from the file")
    p.add_argument("--report", default=None, help="write thresholds, histogram and fractions as JSON here")
    p.add_argument("--compression", default=None, help="output compression (TIFF: zlib; HDF5: gzip, lzf, none)")
    add_input_args(p)
    add_quiet(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..io.writers import output_format
    from ._guard import check_output_space, check_read, guard
    output_format(args.out)
    table_file = args.phases if isinstance(args.phases, str) else None
    guard(args, inputs=[args.volume, table_file], outputs=[args.report], volumes=[args.out])
    if isinstance(args.phases, int) and not 2 <= args.phases <= 255:
        raise ValueError(f"--phases {args.phases}: the number of phases must be 2..255")
    if args.min_island < 0:
        raise ValueError(f"--min-island {args.min_island} must be >= 0 (voxels)")
    size = args.denoise_size
    footprint = 0
    if args.denoise:
        from ._guard import region_shape
        shape0 = region_shape(args)[0]
        top = max(1, min(shape0))
        if not 1 <= size <= top:
            raise ValueError(f"--denoise-size {size} must be 1..{top} (voxels, at most the smallest axis of "
                             f"{' x '.join(map(str, shape0))})")
        footprint = size ** 3 * (8 if args.denoise == "nlm" else 1)
    shape = check_read(args, "segment", extra_bytes=footprint,
                       hint="read less of it (--crop, --stride, --downsample) or use a smaller --denoise-size")
    check_output_space(args.out, _count(shape), "the labels")
    progress = Progress(quiet=args.quiet)
    table = None
    n_phases = args.classes
    if isinstance(args.phases, int):
        if n_phases is not None and n_phases != args.phases:
            raise ValueError(f"--classes {n_phases} and --phases {args.phases} disagree; give --classes only")
        n_phases = args.phases
        print(f"microsim segment: note: --phases {args.phases} is the old spelling of --classes {args.phases}; "
              "--phases now names a phase table", file=sys.stderr)
    elif args.phases is not None:
        table = phase_table(args.phases)
    thresholds = _numbers(args.thresholds) if args.thresholds else None
    label_values = _numbers(args.labels, int, "--labels") if args.labels else None
    if n_phases is None and table is None and thresholds is None:
        raise ValueError("give --classes N (or --phases TABLE.toml) or --thresholds")
    loaded = load_stack(args.volume, reduce="mean", voxel_size_um=args.voxel_size,
                        progress=announce_input(args, progress), **stack_options(args))
    image = loaded.array
    if image.dtype.kind == "f":
        import numpy as np
        n_nan = int(np.count_nonzero(np.isnan(image)))
        if n_nan:
            raise ValueError(f"{args.volume}: {n_nan} of {image.size} voxels are NaN (not a number); segmenting "
                             "needs a grey level in every voxel: crop them away (--crop) or fill them first")
    progress.line(f"segmenting {' x '.join(map(str, image.shape))} voxels"
                  + (f" after {args.denoise} denoising" if args.denoise else ""), force=True)
    result = segment(image, n_phases, thresholds=thresholds, denoise_method=args.denoise,
                     denoise_size=args.denoise_size, min_island_voxels=args.min_island,
                     connectivity=args.connectivity, label_values=label_values, phases=table)
    made_table = table is None
    if made_table:
        table = class_table(result.label_values)
    names = result.phase_names or table.names
    print(f"method       {result.method}" + (f" after {result.denoise} denoising" if result.denoise else ""))
    print("thresholds   " + ", ".join(fmt(t, ".6g") for t in result.thresholds) + " (class k+1: value > t_k)")
    print("histogram of the thresholded image")
    print("\n".join(text_histogram(result.histogram, marks=result.thresholds)))
    if result.min_island_voxels > 1:
        print(f"islands      {result.islands_removed} regions below {result.min_island_voxels} voxels removed, "
              f"{result.voxels_reassigned} voxels reassigned")
    print(f"  {'label':>6}  {'phase':<16} fraction")
    for v, name, f in zip(result.label_values, names, result.fractions):
        print(f"  {v:>6}  {name:<16} {f:.4f}")
    step = (f"segmented: {result.method} thresholds {list(result.thresholds)}"
            + (f", {result.denoise} denoise size {args.denoise_size}" if result.denoise else "")
            + (f", islands < {result.min_island_voxels} voxels removed" if result.min_island_voxels > 1 else "")
            + f", labels {list(result.label_values)}")
    write_array(args.out, result.labels, loaded.voxel_size_um, table, loaded.provenance + (step,),
                compression=args.compression)
    print(f"wrote {args.out} (with its phase table)")
    if made_table:
        print("  phase table: " + ", ".join(f"{p.name} = label {p.label}" for p in table)
              + "; pore conducts ions, solid electrons (sigma 1 S/m)")
        if Path(args.out).suffix.lower() in (".tif", ".tiff") or Path(args.out).is_dir():
            side = phase_table_path(args.out)
            write_text_atomic(side, table.to_toml())
            print(f"  wrote {side}: edit it for other conductivities and pass --phases {side}")
    if args.report:
        write_json(args.report, {"input": str(args.volume), "output": str(args.out), "shape": list(image.shape),
                                 "voxel_size_um": loaded.voxel_size_um, **result.to_dict()})
    return 0


def _count(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def phase_table_path(out) -> Path:
    """Where the editable phase table of a labelled TIFF goes: ``NAME.phases.toml`` beside it."""
    out = Path(out)
    if out.is_dir():
        return out.parent / f"{out.name}.phases.toml"
    return out.with_name(out.stem + ".phases.toml")
