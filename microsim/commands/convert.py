"""``microsim convert``: any supported stack -> any supported format, optionally cropped or downsampled."""
from __future__ import annotations

from ..io import load_stack, write_array
from ..phases import phase_table
from ..progress import Progress
from ..volume import Volume
from ._common import add_input_args, add_quiet, announce_input, fmt, stack_options, voxel_size_arg


def register(sub) -> None:
    p = sub.add_parser("convert", help="convert a stack between formats, optionally cropped or downsampled",
                       description="Read a stack (TIFF, folder or glob of slices, HDF5, .npy, raw) and write it as "
                                   "TIFF, HDF5 (+ XDMF for ParaView), .npy, raw or a folder of slices, keeping the "
                                   "voxel size, phase table and provenance. The output format follows the name.")
    p.add_argument("volume", metavar="IN", help="input stack")
    p.add_argument("out", metavar="OUT", help="output: .tif, .h5, .npy, .raw, or a name without extension for a "
                   "folder of slices")
    p.add_argument("--reduce", choices=("auto", "majority", "mean"), default="auto",
                   help="how --downsample combines voxels: majority vote (labels), mean (grayscale, float32), "
                        "auto = majority for integer data, mean for float data")
    p.add_argument("--phases", default=None, help="phase table (TOML) to store with the labels (default: the input's)")
    p.add_argument("--voxel-size", type=voxel_size_arg, default=None,
                   help="voxel size of the input in um ('d' or 'dz,dy,dx'); default from the file")
    p.add_argument("--compression", default=None, help="TIFF: zlib (default none); HDF5: gzip (default), lzf, none")
    p.add_argument("--out-dataset", default=None, help="HDF5 output dataset (default /labels or /image)")
    add_input_args(p)
    add_quiet(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..io.writers import output_format
    from ._guard import check_output_space, check_read, guard
    output_format(args.out)  # an unknown extension fails before any work is done
    guard(args, inputs=[args.volume, args.phases], volumes=[args.out])
    shape = check_read(args, "convert")
    check_output_space(args.out, _nbytes(shape, args), "the converted volume")
    progress = Progress(quiet=args.quiet)
    loaded = load_stack(args.volume, reduce=args.reduce, voxel_size_um=args.voxel_size,
                        progress=announce_input(args, progress), **stack_options(args))
    arr = loaded.array
    table = phase_table(args.phases) if args.phases else loaded.info.phases
    if table is not None:
        if arr.dtype.kind == "f":
            if args.phases:
                raise ValueError(f"{args.volume}: --phases given but the data read is grayscale {arr.dtype}; "
                                 "labels need --reduce majority")
            table = None  # averaged labels are no longer labels
        else:
            try:
                Volume(arr, table)  # every label present must be in the table
            except ValueError as exc:
                raise ValueError(f"{args.volume}: {exc}") from None
    write_array(args.out, arr, loaded.voxel_size_um, table, loaded.provenance + (f"converted to {args.out}",),
                compression=args.compression, dataset=args.out_dataset)
    vs = "unknown" if loaded.voxel_size_um is None else " x ".join(fmt(v, ".6g") for v in loaded.voxel_size_um) + " um"
    print(f"wrote {args.out}: {' x '.join(map(str, arr.shape))} voxels of {arr.dtype}, voxel size {vs}"
          + (f", phases {', '.join(table.names)}" if table is not None else ""))
    return 0


def _nbytes(shape, args) -> int:
    from ._guard import region_shape
    _, itemsize, _ = region_shape(args)
    n = 1
    for s in shape:
        n *= s
    return n * itemsize
