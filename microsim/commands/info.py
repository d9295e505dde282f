"""``microsim info``: what a stack is (shape, dtype, voxel size) and what it holds."""
from __future__ import annotations

from ..io import describe
from ..io.summary import summarize_stack
from ..jsonio import write_json
from ..phases import phase_table
from ..progress import Progress
from ..segment import multi_otsu_thresholds, phase_names_of
from ._common import LARGE_INPUT_BYTES, add_input_args, add_quiet, fmt, raw_layout, stack_options, voxel_size_arg


def register(sub) -> None:
    p = sub.add_parser("info", help="shape, dtype, voxel size and phase fractions (or grey-level histogram) of a stack",
                       description="Report a stack's format, shape, dtype and voxel size from its header, then read "
                                   "it slab by slab and report the fraction of every label value, or for grayscale "
                                   "data the grey-level statistics, histogram and multi-Otsu thresholds.")
    p.add_argument("volume", metavar="STACK", help="TIFF, folder or glob of TIFF slices, HDF5, .npy or raw file")
    p.add_argument("--phases", default=None, help="phase table (TOML) that names the label values")
    p.add_argument("--voxel-size", type=voxel_size_arg, default=None, help="voxel size in um to report instead of "
                   "the file's: 'd' or 'dz,dy,dx'")
    p.add_argument("--header-only", action="store_true", help="report the header; do not read the voxels")
    p.add_argument("--reduce", choices=("auto", "majority", "mean"), default="auto",
                   help="how --downsample combines voxels (auto: majority for integers, mean for floats)")
    p.add_argument("--json", dest="json_out", default=None, help="also write the report as JSON here")
    add_input_args(p)
    add_quiet(p)
    p.set_defaults(func=run)


def _voxel_line(info, args) -> str:
    if args.voxel_size is not None:
        return " x ".join(fmt(v, ".6g") for v in args.voxel_size) + " um (given)"
    vs = list(info.voxel_size_um) if info.voxel_size_um else [None] * 3
    if args.slice_thickness is not None:
        vs[0] = args.slice_thickness
    if all(v is None for v in vs):
        return f"unknown ({info.voxel_size_source}); give --voxel-size"
    return " x ".join("?" if v is None else fmt(v, ".6g") for v in vs) + f" um (dz x dy x dx, {info.voxel_size_source})"


def text_histogram(hist, rows: int = 16, width: int = 40, marks=()) -> list[str]:
    """A histogram as text lines, ``rows`` bins merged from the fine one; ``marks`` are thresholds."""
    import numpy as np
    edges = np.linspace(hist.edges[0], hist.edges[-1], rows + 1)
    counts = np.histogram(hist.centers, bins=edges, weights=hist.counts)[0]
    top = counts.max() or 1
    lines = []
    for k in range(rows):
        bar = "#" * int(round(width * counts[k] / top))
        flag = "  <- threshold " + ", ".join(fmt(t, ".6g") for t in marks if edges[k] <= t < edges[k + 1]) \
            if any(edges[k] <= t < edges[k + 1] for t in marks) else ""
        lines.append(f"  {fmt(edges[k], '>10.4g')} .. {fmt(edges[k + 1], '<10.4g')} {int(counts[k]):>12d} {bar}{flag}")
    return lines


def run(args) -> int:
    from ._guard import guard
    guard(args, inputs=[args.volume, args.phases], outputs=[args.json_out])
    progress = Progress(quiet=args.quiet)
    info = describe(args.volume, dataset=args.dataset, raw=raw_layout(args))
    table = phase_table(args.phases) if args.phases else info.phases
    lines = [f"file         {args.volume}",
             f"format       {info.format}" + (f", dataset {info.dataset}" if info.dataset else "")
             + (f", {info.n_files} slices" if info.format == "slices" else "")
             + (f", compression {info.compression}" if info.compression else ", uncompressed")
             + (", memory-mapped" if info.memory_mapped else ""),
             f"shape        {' x '.join(map(str, info.shape))} (z, y, x) = {_count(info.shape)} voxels, "
             f"{info.nbytes / 1e6:.1f} MB",
             f"dtype        {info.dtype}"
             + (f", {info.byte_order}-endian" if info.byte_order in ("little", "big") else ""),
             f"voxel size   {_voxel_line(info, args)}"]
    if info.phases is not None:
        lines.append("phase table  stored in the file: " + ", ".join(f"{p.name}={p.label}" for p in info.phases))
    lines += [f"note         {n}" for n in info.notes]
    if info.provenance:
        lines.append("provenance   " + " | ".join(info.provenance))
    print("\n".join(lines), flush=True)
    report = {"info": info.to_dict()}
    if not args.header_only:
        opts = stack_options(args)
        opts.pop("slice_thickness_um")
        big = info.nbytes >= LARGE_INPUT_BYTES  # a bar only where reading takes a while
        summary = summarize_stack(args.volume, reduce=args.reduce, progress=progress if big else None, **opts)
        out = []
        if summary.shape != info.shape:
            out.append(f"region       {' x '.join(map(str, summary.shape))} voxels read")
        if summary.kind == "labels":
            names = phase_names_of(summary.values, table)
            out.append(f"labels       {len(summary.values)} values")
            out.append(f"  {'value':>6}  {'phase':<16} {'voxels':>12}  fraction")
            for v, c in zip(summary.values, summary.counts):
                name = names[v] or ("-" if table is None else "(not in table)")
                out.append(f"  {v:>6}  {name:<16} {c:>12d}  {c / summary.n_voxels:.4f}")
        else:
            out.append(f"grey levels  min {fmt(summary.minimum)}, max {fmt(summary.maximum)}, "
                       f"mean {fmt(summary.mean)}, std {fmt(summary.std)}")
            out.append("percentiles  " + ", ".join(f"{q}%: {fmt(summary.percentile(q))}" for q in (1, 25, 50, 75, 99)))
            otsu = {}
            for n in (2, 3):
                try:
                    otsu[n] = multi_otsu_thresholds(summary.histogram, n)
                except ValueError:
                    pass
            for n, t in otsu.items():
                out.append(f"otsu {n}      thresholds {', '.join(fmt(v, '.6g') for v in t)} (class k+1: value > t_k)")
            out.append("histogram")
            out += text_histogram(summary.histogram, marks=otsu.get(2, ()))
            report["otsu_thresholds"] = {str(n): list(t) for n, t in otsu.items()}
        print("\n".join(out))
        report["summary"] = summary.to_dict()
        if summary.kind == "labels" and table is not None:
            names = phase_names_of(summary.values, table)
            report["summary"]["phase_fractions"] = {names[v] or str(v): c / summary.n_voxels
                                                    for v, c in zip(summary.values, summary.counts)}
    if args.json_out:
        write_json(args.json_out, report)
    return 0


def _count(shape) -> str:
    n = 1
    for s in shape:
        n *= s
    return f"{n / 1e6:.2f} M" if n >= 1e6 else str(n)
