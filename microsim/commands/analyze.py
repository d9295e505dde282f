"""``microsim analyze``: everything about a volume that needs no transport solve."""
from __future__ import annotations

import argparse
import re
from pathlib import Path

from ..analysis import analyze_volume, plot_psd
from ..analysis.active import parse_face
from ..analysis.interfaces import SMOOTHING
from ..analysis.psd import METHODS
from ..jsonio import write_json
from ..progress import Progress
from ._common import (add_input_args, add_phases_arg, add_quiet, add_threads, apply_threads, fmt, read_input,
                      voxel_size_arg)


def _sizes(text: str):
    try:
        sizes = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of edge lengths; give e.g. 16,32,64 (voxels)")
    return sizes


def _face(text: str) -> str:
    try:
        parse_face(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc))
    return text


def register(sub) -> None:
    p = sub.add_parser("analyze", help="volume fractions, percolation, active material, interfaces, REV, particle "
                                       "sizes (no transport solve)",
                       description="Microstructure analysis of a labelled volume: volume fractions, percolating / "
                                   "dead-end / isolated shares and cluster sizes per phase and direction, the "
                                   "electrochemically active material, interface areas, Bruggeman estimates, the "
                                   "representative volume of the phase fractions and particle-size distributions.")
    p.add_argument("volume", help="labelled volume: TIFF, folder or glob of TIFF slices, HDF5, .npy or raw file")
    add_phases_arg(p)
    p.add_argument("--voxel-size", type=voxel_size_arg, default=None,
                   help="voxel size in um: 'd' or 'dz,dy,dx' (default: from the file, else 1)")
    p.add_argument("--out", default=None, help="write all results as JSON here")
    p.add_argument("--plots", default=None, metavar="DIR", help="write PNG histograms of the size distributions here")
    g = p.add_argument_group("percolation")
    g.add_argument("--direction", default="all", help="x, y, z, all, or a comma list (default all)")
    g.add_argument("--connectivity", type=int, choices=(6, 18, 26), default=6,
                   help="cluster neighbourhood: faces (6), +edges (18), +corners (26); default 6")
    g.add_argument("--union", action="append", default=[], metavar="A+B",
                   help="also analyse this union of phases (repeatable); the networks conducting ions and "
                        "electrons are always analysed")
    g = p.add_argument_group("active material")
    g.add_argument("--active", default=None, metavar="PHASES", help="active-material phase(s) "
                   "(default: phases with an active-material preset)")
    g.add_argument("--electrolyte", default=None, metavar="PHASES",
                   help="ion-conducting phase(s) (default: phases with an electrolyte preset)")
    g.add_argument("--electronic", default=None, metavar="PHASES",
                   help="electron-conducting phases, e.g. NMC+CBD (default: nonzero electronic conductivity)")
    g.add_argument("--separator", type=_face, default="z=0", help="separator face, AXIS=0 or AXIS=end (default z=0)")
    g.add_argument("--collector", type=_face, default="z=end",
                   help="current-collector face (default z=end)")
    g = p.add_argument_group("interfaces, REV, sizes")
    g.add_argument("--smoothing", choices=SMOOTHING, default="constrained",
                   help="how marching cubes removes the voxel staircase (default constrained)")
    g.add_argument("--rev-sizes", type=_sizes, default=None, metavar="N,N,...",
                   help="sub-volume edge lengths in voxels (default 8, 16, 32, ... up to the smallest axis)")
    g.add_argument("--rev-samples", type=int, default=8, help="sub-volumes per size (default 8)")
    g.add_argument("--eps-tol", type=float, default=0.02,
                   help="std of the volume fractions below which a size is representative (default 0.02)")
    g.add_argument("--psd", action="append", default=None, metavar="PHASE",
                   help="phase for a size distribution (repeatable; default: the active-material phases)")
    g.add_argument("--psd-method", choices=METHODS, default="auto",
                   help="particle list, local thickness or watershed (default auto)")
    g.add_argument("--psd-bins", type=int, default=24, help="diameter bins (default 24)")
    g.add_argument("--alpha", type=float, default=0.5, help="Bruggeman exponent of the estimates (default 0.5)")
    g.add_argument("--seed", type=int, default=0, help="seed of the random sub-volume positions")
    add_input_args(p)
    add_threads(p)
    add_quiet(p)
    p.set_defaults(func=run)


def _check_outputs(args) -> None:
    # fail before the work, not after it
    if args.out and Path(args.out).resolve().parent.is_file():
        raise ValueError(f"--out {args.out}: {Path(args.out).parent} is a file, not a folder")
    if args.plots and Path(args.plots).exists() and not Path(args.plots).is_dir():
        raise ValueError(f"--plots {args.plots} is a file; give a folder for the PNG files")
    if args.rev_samples < 1:
        raise ValueError(f"--rev-samples {args.rev_samples} must be at least 1")
    if args.psd_bins < 1:
        raise ValueError(f"--psd-bins {args.psd_bins} must be at least 1")


def summary_text(result) -> str:
    """A plain-text digest of a VolumeAnalysis."""
    lines = ["volume fractions: " + ", ".join(f"{k} {v:.4f}" for k, v in result.fractions.phases.items())]
    if result.fractions.unions:
        lines[-1] += "; " + ", ".join(f"{k} {v:.4f}" for k, v in result.fractions.unions.items())
    rows = [("phases", "dir", "percolating", "dead-end", "isolated", "clusters", "largest")]
    for p in result.percolation:
        for d in p.directions:
            rows.append((p.name, d.direction, fmt(d.fraction_percolating, ".4f"), fmt(d.fraction_dead_end, ".4f"),
                         fmt(d.fraction_isolated, ".4f"), str(p.clusters.n_clusters),
                         fmt(p.clusters.largest_fraction, ".4f")))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines += ["", f"percolation ({result.percolation[0].connectivity}-connectivity; shares of each phase's volume)"
              if result.percolation else ""]
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in rows]
    a = result.active
    if a is not None:
        lines += ["", f"active material {'+'.join(a.active_phases)} (separator {a.separator_face}, current collector "
                      f"{a.collector_face}): {a.fraction_active:.4f} of its volume active "
                      f"({a.n_active_particles}/{a.n_particles} particles); electron-connected "
                      f"{a.fraction_electron_connected:.4f}, ion-connected {a.fraction_ion_connected:.4f}; "
                      f"active interface {a.fraction_interface_active:.4f} of {a.interface_area_um2:.4g} um2 "
                      "(face count)"]
    if result.interfaces is not None:
        lines += ["", f"interfaces (marching cubes, {result.interfaces.smoothing} smoothing | face counting)"]
        for q in result.interfaces.pairs:
            lines.append(f"  {q.phase_a}/{q.phase_b}: {q.area_um2:.4g} um2, {q.specific_area_per_um:.4g} 1/um | "
                         f"{q.face_count_area_um2:.4g} um2, {q.face_count_specific_area_per_um:.4g} 1/um")
    if result.bruggeman:
        lines.append("")
    for b in result.bruggeman:
        lines.append(f"Bruggeman {b['carrier']} ({'+'.join(b['conducting_phases'])}): eps {b['eps']:.4f}, "
                     f"tau_Bruggeman = eps^-{b['alpha']:g} = {fmt(b['tau_bruggeman'])}")
    if result.rev is not None:
        lines += ["", f"representative volume of the fractions (std <= {result.rev.eps_tol:g}, "
                      f"{result.rev.positions} positions)"]
        for s in result.rev.sizes:
            lines.append(f"  {s.size_voxels:5d} voxels ({s.n_samples} sub-volume(s)): std " +
                         ", ".join(f"{k} {fmt(v, '.4f')}" for k, v in s.fraction_std.items()))
        lines.append("  representative from: " + ", ".join(
            f"{k} {v if v is not None else 'not reached'}" for k, v in result.rev.rev_size_fraction.items()))
    for s in result.psd:
        lines += ["", f"size distribution of {s.phase} ({s.method.replace('_', ' ')}): d10 {fmt(s.d10_um)} um, "
                      f"d50 {fmt(s.d50_um)} um, d90 {fmt(s.d90_um)} um"
                      + (f", {s.n_particles} particles" if s.n_particles is not None else "")]
    for k, v in result.skipped.items():
        lines.append(f"skipped {k}: {v}")
    return "\n".join(lines)


def run(args) -> int:
    apply_threads(args)
    from ._guard import check_read, guard
    guard(args, inputs=[args.volume, args.phases], outputs=[args.out], folders=[args.plots])
    _check_outputs(args)
    check_read(args, "analyze")
    progress = Progress(quiet=args.quiet)
    volume = read_input(args, args.phases)
    progress.line(f"{args.volume}: {volume.shape} voxels, voxel size {volume.voxel_size_um} um", force=True)
    result = analyze_volume(volume, unions=args.union, directions=args.direction, connectivity=args.connectivity,
                            active=args.active, electrolyte=args.electrolyte, electronic=args.electronic,
                            separator_face=args.separator, collector_face=args.collector, smoothing=args.smoothing,
                            psd_phases=args.psd, psd_method=args.psd_method, psd_bins=args.psd_bins,
                            rev_sizes=args.rev_sizes, rev_samples=args.rev_samples, rev_eps_tol=args.eps_tol,
                            alpha=args.alpha, seed=args.seed, progress=progress)
    print(summary_text(result))
    if args.plots:
        Path(args.plots).mkdir(parents=True, exist_ok=True)
        for s in result.psd:
            plot_psd(s, Path(args.plots) / f"psd_{re.sub(r'[^A-Za-z0-9_.+-]', '_', s.phase)}.png")
    if args.out:
        write_json(args.out, {"volume": str(args.volume), "phases": volume.phases.to_dict(), **result.to_dict()})
    return 0
