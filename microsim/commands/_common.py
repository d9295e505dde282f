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


def count_arg(what: str):
    """An argparse type for a count of ``what``: a whole number of at least 1."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of {what}") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"{value} must be at least 1 (a number of {what})")
        return value
    return parse


threads_arg = count_arg("threads")


def add_threads(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=threads_arg, default=None, help="number of threads (default: all cores)")


def apply_threads(args) -> None:
    if getattr(args, "threads", None) is not None:
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


# ---------------------------------------------------------------------------
# input stacks in any format (see microsim.io)


def factor_arg(text: str):
    """Parse '2' or '2,1,1' (z,y,x) as a stride or downsampling factor."""
    try:
        parts = [int(t) for t in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a factor; give 'n' or 'nz,ny,nx' (positive integers)")
    if len(parts) not in (1, 3) or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give one positive integer or three (nz,ny,nx)")
    return parts[0] if len(parts) == 1 else tuple(parts)


def raw_shape_arg(text: str):
    """Parse 'Z,Y,X' or 'ZxYxX'."""
    try:
        parts = [int(t) for t in text.replace("x", ",").split(",")]
    except ValueError:
        parts = []
    if len(parts) != 3 or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a shape; give Z,Y,X (three positive integers)")
    return tuple(parts)


def crop_arg(text: str):
    from ..io import parse_crop
    try:
        return parse_crop(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc))


def add_input_args(parser: argparse.ArgumentParser) -> None:
    """Options that say how to read the input stack: format details, region, slice thickness."""
    g = parser.add_argument_group("reading the input stack")
    g.add_argument("--dataset", default=None, help="HDF5 dataset path (default: the file's only 3D dataset)")
    g.add_argument("--raw-shape", type=raw_shape_arg, default=None, metavar="Z,Y,X",
                   help="shape of a raw binary file (C order, x fastest)")
    g.add_argument("--raw-dtype", default=None, metavar="TYPE", help="element type of a raw file: uint8, uint16, "
                   "int16, float32 ...")
    g.add_argument("--byte-order", choices=("little", "big"), default=None,
                   help="byte order of a raw file (default little)")
    g.add_argument("--raw-offset", type=int, default=0, metavar="BYTES", help="header bytes to skip in a raw file")
    g.add_argument("--crop", type=crop_arg, default=None, metavar="z0:z1,y0:y1,x0:x1",
                   help="read only these voxels (end excluded; empty bound = edge), e.g. 0:100,:,:")
    g.add_argument("--stride", type=factor_arg, default=None, metavar="N|nz,ny,nx",
                   help="keep every N-th voxel (voxel size grows by N)")
    g.add_argument("--downsample", type=factor_arg, default=None, metavar="N|nz,ny,nx",
                   help="reduce N^3 blocks to one voxel (labels: majority vote)")
    g.add_argument("--slice-thickness", type=float, default=None, metavar="UM",
                   help="slice thickness dz in um; replaces the file's dz (FIB-SEM slice folders)")


def raw_layout(args):
    """The RawLayout given by --raw-shape/--raw-dtype/--byte-order/--raw-offset, or None."""
    from ..io import RawLayout
    shape, dtype = getattr(args, "raw_shape", None), getattr(args, "raw_dtype", None)
    if shape is None and dtype is None:
        if getattr(args, "byte_order", None) or getattr(args, "raw_offset", 0):
            raise ValueError("--byte-order/--raw-offset describe a raw file; give --raw-shape and --raw-dtype too")
        return None
    if shape is None or dtype is None:
        raise ValueError("--raw-shape and --raw-dtype go together; give both for a raw file")
    return RawLayout(shape, dtype, getattr(args, "byte_order", None) or "little", getattr(args, "raw_offset", 0))


def stack_options(args) -> dict:
    """Keyword arguments of microsim.io.load_stack / read_volume from the input options."""
    return {"crop": getattr(args, "crop", None), "stride": getattr(args, "stride", None),
            "downsample": getattr(args, "downsample", None), "dataset": getattr(args, "dataset", None),
            "raw": raw_layout(args), "slice_thickness_um": getattr(args, "slice_thickness", None)}


#: inputs at least this large get a line on stderr before reading and a progress bar while reading
LARGE_INPUT_BYTES = 64 * 2**20


def announce_input(args, progress):
    """For a large input, one line on stderr with what its header says, before any voxel is read.

    Returns ``progress`` for a large input (so that reading shows a bar) and None for a
    small one, whose reading is quick and whose errors then stay a single line.
    """
    from ..io import describe
    info = describe(args.volume, dataset=getattr(args, "dataset", None), raw=raw_layout(args))
    if info.nbytes < LARGE_INPUT_BYTES:
        return None
    shape = " x ".join(map(str, info.shape))
    progress.line(f"{args.volume}: {info.format}, {shape} voxels of {info.dtype} "
                  f"({info.nbytes / 2**20:.0f} MiB); reading", force=True)
    return progress


def add_phases_arg(p) -> None:
    """``--phases TABLE.toml`` (optional where the input file stores its table), ``--conducting``, ``--axes``."""
    p.add_argument("--phases", default=None,
                   help="phase table (TOML) mapping labels to phases and conductivities "
                        "(default: the table stored in the file, e.g. by microsim segment)")
    p.add_argument("--conducting", default=None, metavar="LABEL[,LABEL...]",
                   help="no phase table needed: these label values conduct with sigma 1 S/m (either carrier), "
                        "every other label insulates")
    p.add_argument("--axes", default="zyx", metavar="ORDER",
                   help="axis order the file is stored in: zyx (default; TIFF stacks, numpy) or xyz "
                        "(Julia, MATLAB, Fortran order); recorded in the provenance")


def read_input(args, phases):
    """The labelled Volume named by ``args.volume`` in any supported format.

    The voxel size comes from --voxel-size if given, else from the file, else 1 um;
    --crop/--stride/--downsample select what is read (labels are downsampled by
    majority vote).
    """
    from ..arrays import parse_axes
    from ..io import read_volume
    from ..progress import Progress
    conducting = getattr(args, "conducting", None)
    axes = getattr(args, "axes", "zyx") or "zyx"
    parse_axes(axes)  # a bad order fails before the file is touched
    progress = announce_input(args, Progress(quiet=getattr(args, "quiet", False)))
    if conducting is None and axes == "zyx":
        return read_volume(args.volume, phases, getattr(args, "voxel_size", None), progress=progress,
                           **stack_options(args))
    return read_conducting(args, phases, conducting, axes, progress)


def read_conducting(args, phases, conducting, axes, progress):
    """The volume of ``--conducting LABELS`` (a table made from the labels) and/or ``--axes ORDER``.

    The voxel size (``--voxel-size`` or the file's) is taken in the stored axis order.
    """
    from ..arrays import as_volume, conducting_labels, parse_axes
    from ..io import load_stack, read_volume
    from ..volume import Volume, as_label_array
    if conducting is not None and phases is not None:
        raise ValueError("--conducting makes its own phase table; give it or --phases, not both")
    opts = stack_options(args)
    if parse_axes(axes) != (0, 1, 2) and any(opts[k] is not None for k in ("crop", "stride", "downsample")):
        raise ValueError(f"--axes {axes}: --crop/--stride/--downsample are in the stored axis order of the "
                         "file; leave them out or crop the file first")
    explicit = getattr(args, "voxel_size", None)
    if conducting is None:
        volume = read_volume(args.volume, phases, explicit, progress=progress, **opts)
        new = as_volume(volume.labels, phases=volume.phases, voxel_size_um=volume.voxel_size_um, axes=axes)
        return Volume(new.labels, new.phases, new.voxel_size_um, volume.provenance + new.provenance)
    labels = conducting_labels(conducting)
    loaded = load_stack(args.volume, reduce="majority", progress=progress, voxel_size_um=explicit, **opts)
    if loaded.array.dtype.kind == "f":
        raise ValueError(f"{args.volume}: holds grayscale {loaded.array.dtype} data, not labels; "
                         "segment it first (microsim segment)")
    new = as_volume(as_label_array(loaded.array), conducting=labels, voxel_size_um=loaded.voxel_size_um, axes=axes)
    note = f"--conducting {','.join(map(str, labels))}: sigma 1 S/m, other labels insulating"
    return Volume(new.labels, new.phases, new.voxel_size_um, loaded.provenance + new.provenance + (note,))
