"""``microsim run``: from a configuration to a run folder with every number, field and figure.

The run folder holds

=====================  ==========================================================
``result.json``        every number with units, config, seed, versions, timings
``summary.csv``        one row per (method, carrier, direction)
``fields.h5``          labels, potential and current-density magnitude per solve
``fields.xdmf``        sidecar that opens ``fields.h5`` in ParaView
``config.toml``        the configuration with absolute paths: reruns anywhere
``*.png``              phases, potential, current density, profiles, percolation,
                       Bruggeman plot (and random-walk MSD curves)
``report.html``        one self-contained page that summarises all of it
=====================  ==========================================================

The folder is built under a hidden temporary name next to the destination and
renamed when everything is written, so an interrupted or failed run leaves
nothing behind and a run folder that exists is always complete.
"""
from __future__ import annotations

import datetime as _dt
import math
import os
import platform
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np

from ..atomic import write_text_atomic
from ..conductivity import solve_direction
from ..jsonio import json_safe, write_json
from ..percolation import percolation
from ..progress import Progress
from ..safety import (DiskFullError, OutputLock, allow_symlink_output, check_disk, check_input, check_memory, check_outputs, count,
                      disk_full_error, identity, is_disk_full, rename_noreplace, temp_path, volume_inputs)
from ..volume import AXES, Volume
from .config import ConfigError, RecipeSource, RunConfig, StackSource, load_config, toml_text
from .source import load_source

#: Version of the layout of result.json; microsim/data/result.schema.json describes it.
SCHEMA_VERSION = 1
SCHEMA_ID = "microsim-run-result"
RESULT_FILE = "result.json"
SUMMARY_COLUMNS = ("method", "carrier", "direction", "conducting_phases", "eps", "eps_percolating",
                   "percolating_fraction", "sigma_ref_S_per_m", "sigma_eff_S_per_m", "normalised_sigma", "tau",
                   "tau_percolating", "tau_bruggeman", "tau_over_tau_bruggeman", "alpha_fit", "macmullin",
                   "converged")
#: Units of the unit-less numbers of result.json; every other number carries its unit in its name.
UNITS = {"eps": "1 (volume fraction)", "eps_percolating": "1 (volume fraction)",
         "percolating_fraction": "1 (share of the conducting network)", "normalised_sigma": "1 (sigma_eff / sigma_ref)",
         "tau": "1 (eps sigma_ref / sigma_eff)", "tau_percolating": "1", "tau_bruggeman": "1 (eps^-alpha)",
         "macmullin": "1 (sigma_ref / sigma_eff = tau / eps)", "alpha_fit": "1 (-ln tau / ln eps)",
         "potential": "V, for 1 V across the volume", "current_density": "A/m^2, for 1 V across the volume",
         "timings": "s", "lengths": "um"}
#: peak bytes per voxel of the microstructure analyses (clusters, interfaces, sizes), measured with margin
ANALYSIS_BYTES_PER_VOXEL = 120
#: peak bytes per voxel and per walker of a random walk
RANDOM_WALK_BYTES_PER_VOXEL = 40
RANDOM_WALK_BYTES_PER_WALKER = 64
_DEPENDENCIES = ("numpy", "numba", "scipy", "scikit-image", "tifffile", "h5py", "matplotlib")


@dataclass(frozen=True)
class RunResult:
    """What a run produced: the folder and the content of its result.json.

    >>> r = run("samples/run_electrode.toml", "runs/electrode")  # doctest: +SKIP
    >>> r.rows[0]["tau"]  # doctest: +SKIP
    """

    out_dir: Path
    document: dict = field(repr=False)

    @property
    def rows(self) -> list[dict]:
        return self.document["summary"]

    @property
    def warnings(self) -> list[str]:
        return self.document["warnings"]

    @property
    def converged(self) -> bool:
        return all(r["converged"] for r in self.rows)

    def to_dict(self) -> dict:
        return self.document


def versions() -> dict:
    """Versions of Python, microsim and its dependencies (for result.json)."""
    from importlib import metadata

    from .. import __version__
    out = {"microsim": __version__, "python": platform.python_version(), "platform": platform.platform()}
    for name in _DEPENDENCIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:  # pragma: no cover - every dependency is installed with microsim
            out[name] = "not installed"
    return out


class RunDisplay:
    """The progress display of a whole run: a bar over the stages, then each stage's own lines."""

    def __init__(self, stages: list[str], progress: Progress, prefix: str = "run"):
        self.stages = stages
        self.progress = progress
        self.prefix = prefix
        self.done = 0

    def stage(self, name: str) -> None:
        self.progress.bar(self.prefix, self.done, len(self.stages), f"{name} ...")
        self.progress.line(f"[{self.done + 1}/{len(self.stages)}] {name}", force=True)
        self.done += 1

    def finish(self, text: str) -> None:
        self.progress.bar(self.prefix, len(self.stages), len(self.stages), text)


def _stages(config: RunConfig) -> list[str]:
    stages = ["load volume"]
    if config.analysis.percolation:
        stages.append("percolation")
    a = config.analysis
    if a.interfaces or a.active_material or a.particle_size:
        stages.append("microstructure analysis")
    if config.finite_volume.enabled:
        stages += [f"solve {c} {d}" for c in config.carriers for d in config.directions]
    if config.random_walk.enabled:
        stages += [f"random walk {c}" for c in config.carriers]
    if config.output.figures:
        stages.append("figures")
    stages.append("write results")
    return stages


def run(config: RunConfig | str | Path | Mapping, out: str | Path, *, overwrite: bool = False,
        progress: Progress | None = None, quiet: bool = False, extra: Mapping | None = None,
        allow_symlink: bool | None = None) -> RunResult:
    """Run a configuration and write its run folder.

    Parameters
    ----------
    config : RunConfig, path of a TOML file, or a dict (see :mod:`microsim.pipeline.config`)
    out : folder to create; it must not exist unless ``overwrite``
    overwrite : replace an existing folder (only once the new one is complete)
    progress : Progress, optional
        Where the stage bar and the solver's residual go (default: stderr, unless ``quiet``).
    extra : dict, optional
        Stored as ``extra`` in result.json (a sweep records its case there).

    Returns
    -------
    RunResult

    Examples
    --------
    >>> result = run("samples/run_electrode.toml", "runs/electrode", quiet=True)  # doctest: +SKIP
    >>> sorted(p.name for p in result.out_dir.iterdir())  # doctest: +SKIP
    """
    if not isinstance(config, RunConfig):
        config = load_config(config)
    out = Path(out)
    parent = out.parent if str(out.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise ConfigError(f"{out}: {parent} is a file, not a folder; choose another --out")
    parent.mkdir(parents=True, exist_ok=True)
    progress = progress if progress is not None else Progress(quiet=quiet)
    # Every check before any work: the inputs stay untouched, one writer per folder.
    check_run_paths(config, out, overwrite=overwrite, progress=progress, allow_symlink=allow_symlink)
    if out.is_symlink():  # allowed: write where it points
        out = Path(os.path.realpath(out))
    with OutputLock(out, "run folder"):
        if out.exists() and not overwrite:
            raise ConfigError(f"{out}: output folder exists; choose another --out or pass --overwrite")
        if out.exists() and not out.is_dir():
            raise ConfigError(f"{out}: exists and is not a folder; choose another --out")
        before = identity(out)
        check_run_resources(config, out, progress)
        staging = temp_path(out, "partial", "", folder=True)
        try:
            _default_permissions(staging)
            document = _execute(config, staging, progress, extra)
            _publish(staging, out, before)
        except BaseException as exc:
            shutil.rmtree(staging, ignore_errors=True)
            if isinstance(exc, DiskFullError) or is_disk_full(exc, parent):
                raise disk_full_error(out, exc) from None
            raise
    return RunResult(out, document)


def run_inputs(config: RunConfig) -> list[str]:
    """Every file a run reads: the configuration, the stack (with its sidecars), phase table and recipe."""
    doc, base = config.document, config.base_dir
    found = []
    if config.source_file is not None:
        found.append(str(config.source_file))
    if isinstance(config.source, StackSource):
        found += volume_inputs(config.source.path)
    src = doc.get("source", {}) if isinstance(doc.get("source"), Mapping) else {}
    if isinstance(src.get("recipe"), str):
        found.append(str(Path(base) / Path(src["recipe"]).expanduser()))
    if isinstance(doc.get("phases"), str):
        found.append(str(Path(base) / Path(doc["phases"]).expanduser()))
    return found


def check_run_paths(config: RunConfig, out: Path, *, overwrite: bool, progress=None,
                    allow_symlink: bool | None = None) -> None:
    """Refuse a run folder that is, contains or lies in an input, or is a symbolic link."""
    allow = allow_symlink_output() if allow_symlink is None else allow_symlink
    for path in run_inputs(config):
        check_input(path)
    check_outputs(run_inputs(config), [], replace_folders=[out], allow_symlink=allow, progress=progress)


def estimate_run_bytes(config: RunConfig) -> tuple[int | None, int | None]:
    """(peak memory, output size) of a run from its source header and options, or None where unknown."""
    shape = source_shape(config)
    if shape is None:
        return None, None
    n = count(shape)
    fv, rw = config.finite_volume, config.random_walk
    peak = 8 * n  # labels, masks and profiles
    a = config.analysis
    if a.percolation or a.interfaces or a.active_material or a.particle_size:
        peak = max(peak, ANALYSIS_BYTES_PER_VOXEL * n)
    if fv.enabled:
        try:
            from ..conductivity import estimate_memory
            est = estimate_memory(shape, fv.solver, periodic=fv.periodic_sides or fv.cell_problem,
                                  return_fields=True).peak_bytes
        except Exception:  # the solver's estimate is a refinement; fall back to its published figure
            est = 40 * n
        peak = max(peak, est)
    if rw.enabled:
        peak = max(peak, RANDOM_WALK_BYTES_PER_VOXEL * n + RANDOM_WALK_BYTES_PER_WALKER * rw.walkers)
    out_bytes = 1 << 20
    if config.output.fields and fv.enabled:
        out_bytes += n * (1 + 8 * len(config.carriers) * len(config.directions))
    return peak, out_bytes


def source_shape(config: RunConfig):
    """Shape of the volume a run will hold, from the stack header or the recipe, without reading voxels."""
    src = config.source
    try:
        if isinstance(src, StackSource):
            from ..io import describe
            from ..io.region import Region
            from ..io.stack import RawLayout
            raw = None
            if src.raw:
                r = src.raw
                raw = RawLayout(tuple(r.get("shape")), r.get("dtype"), r.get("byte_order", "little"),
                                r.get("offset_bytes", 0))
            info = describe(src.path, dataset=src.dataset, raw=raw)
            return Region.make(src.crop, src.stride, src.downsample).resolve(info.shape, str(src.path)).out_shape
        shape = getattr(getattr(src, "recipe", None), "shape", None)
        if shape is None and isinstance(config.document.get("source"), Mapping):
            from ..generate.recipe import load_recipe
            rec = config.document["source"].get("recipe")
            if isinstance(rec, str):
                shape = load_recipe(Path(config.base_dir) / rec).shape
        return None if shape is None else tuple(shape)
    except (ValueError, OSError, TypeError, AttributeError, KeyError):
        return None  # the stage that loads the volume reports it with its own message


def check_run_resources(config: RunConfig, out: Path, progress=None) -> None:
    """Refuse a run whose memory or output would not fit, before the volume is read."""
    peak, out_bytes = estimate_run_bytes(config)
    if peak is not None:
        shape = source_shape(config)
        check_memory(peak, f"the run {config.name!r} on {' x '.join(map(str, shape))} voxels",
                     "crop the volume ([source] crop), thin it ([source] stride or downsample), "
                     "or turn off analyses and solves you do not need")
    if out_bytes is not None:
        check_disk(out.parent if str(out.parent) else Path("."), out_bytes, "the run folder")


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def interrupt_on_sigterm() -> None:
    """Make SIGTERM (``kill``, a batch system's time limit) stop like Ctrl-C: partial output is removed.

    Only from the main thread, where Python runs signal handlers.
    """
    import signal
    import threading
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_interrupt)
        if getattr(sys.unraisablehook, "__name__", "") != "_redeliver_interrupt":
            sys.unraisablehook = _redeliver_interrupt


def _redeliver_interrupt(unraisable, _previous=sys.unraisablehook) -> None:
    """A KeyboardInterrupt raised inside a callback Python cannot propagate (a weakref finaliser
    running during garbage collection) would be printed and lost, and the run would carry on:
    deliver it again, so that it is raised where the run can stop cleanly."""
    if unraisable.exc_type is not None and issubclass(unraisable.exc_type, KeyboardInterrupt):
        import signal
        # where SIGINT is left to a parent (sweep cases), SIGTERM's handler raises it instead
        catches = signal.getsignal(signal.SIGINT) not in (signal.SIG_IGN, signal.SIG_DFL, None)
        os.kill(os.getpid(), signal.SIGINT if catches else signal.SIGTERM)
        return
    _previous(unraisable)


def _default_permissions(folder: Path) -> None:
    """mkdtemp makes a folder only its owner can read; a run folder gets the usual permissions."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(folder, 0o777 & ~mask)


def _publish(staging: Path, out: Path, before=None) -> None:
    """Move the finished staging folder to ``out``.

    ``before`` is the identity of ``out`` when the run started (None: it did not
    exist). Only that folder is replaced (with ``--overwrite``); a folder that
    appeared meanwhile is never replaced: the finished run is then kept under a
    visible name and the error says where.
    """
    now = identity(out)
    if now is not None and now != before:
        keep = out.with_name(f"{out.name}.new-{os.getpid()}")
        os.replace(staging, keep)
        what = "appeared" if before is None else "was replaced or changed"
        raise ConfigError(f"{out}: {what} while this run was running (another program wrote it) and was not "
                          f"replaced; this run's results are in {keep}")
    if now is None:
        try:
            rename_noreplace(staging, out)
        except FileExistsError:
            keep = out.with_name(f"{out.name}.new-{os.getpid()}")
            os.replace(staging, keep)
            raise ConfigError(f"{out}: appeared while this run was running and was not replaced; this run's "
                              f"results are in {keep}") from None
        return
    old = temp_path(out, "old", "", folder=True)
    os.replace(out, old / "run")
    os.replace(staging, out)
    shutil.rmtree(old, ignore_errors=True)


def _set_threads(threads: int | None) -> None:
    if threads is None:
        return
    import numba
    if threads > numba.config.NUMBA_NUM_THREADS:
        raise ConfigError(f"[run] threads = {threads} is more than the {numba.config.NUMBA_NUM_THREADS} available")
    numba.set_num_threads(threads)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def conducting_phases(volume: Volume, carrier: str) -> tuple[str, ...]:
    """Names of the phases of ``volume`` that conduct ``carrier`` and are present in it."""
    fractions = volume.phase_fractions()
    return tuple(p.name for p in volume.phases.conducting(carrier) if fractions[p.name] > 0)


def _profiles(volume: Volume, axis: int) -> dict[str, list[float]]:
    """Volume fraction of each phase in each slice normal to ``axis``."""
    moved = np.moveaxis(volume.labels, axis, 0)
    n = moved.shape[0]
    counts = np.zeros((n, 256), dtype=np.int64)
    for k in range(n):
        counts[k] = np.bincount(moved[k].ravel(), minlength=256)
    per_slice = moved[0].size
    return {p.name: (counts[:, p.label] / per_slice).tolist() for p in volume.phases}


def _execute(config: RunConfig, folder: Path, progress: Progress, extra: Mapping | None) -> dict:
    started = _now()
    t_start = time.perf_counter()
    _set_threads(config.threads)
    display = RunDisplay(_stages(config), progress)
    timings: dict[str, float] = {}
    warnings: list[str] = []

    display.stage("load volume")
    t0 = time.perf_counter()
    volume, source_info = load_source(config, progress)
    timings["load_volume"] = time.perf_counter() - t0
    seed = config.seed if config.seed is not None else source_info.get("seed", 0)
    generated = source_info.get("generated")
    if generated:
        for phase, target in generated["targets"].items():
            got = generated["achieved"].get(phase, 0.0)
            if abs(got - target) > 0.01:
                warnings.append(f"generated {phase} fraction {got:.4f} misses the recipe's target {target:.4f} "
                                "by more than 0.01")
    fractions = volume.phase_fractions()
    progress.line(f"volume {volume.shape} voxels of {volume.voxel_size_um} um; "
                  + ", ".join(f"{k} {v:.3f}" for k, v in fractions.items()), force=True)
    if source_info.get("voxel_size_assumed"):
        warnings.append("the voxel size is not in the file or the configuration: 1 um was assumed, so sigma and "
                        "lengths are in units of it; set [source] voxel_size_um")
    for name, frac in fractions.items():
        if frac == 0 and not (generated and generated["targets"].get(name, 0.0) == 0.0):
            warnings.append(f"phase {name} of the phase table is absent from the volume")
    networks = {c: conducting_phases(volume, c) for c in config.carriers}
    for c, names in networks.items():
        if not names:
            warnings.append(f"no phase present conducts {c} charge: every {c} result is sigma_eff = 0, tau = inf")

    fv = config.finite_volume
    periodic_sides = fv.periodic_sides or fv.cell_problem
    alpha = config.analysis.bruggeman_alpha

    # -- percolation ------------------------------------------------------------------
    perc_rows, cluster_stats, class_slices = [], {}, []
    if config.analysis.percolation:
        display.stage("percolation")
        t0 = time.perf_counter()
        class_dir = config.analysis.profile_axis if config.analysis.profile_axis in config.directions \
            else config.directions[0]
        for c in config.carriers:
            rows_c, stats, slices = _percolation(volume, c, networks[c], config, periodic_sides, class_dir)
            perc_rows += rows_c
            if stats is not None:
                cluster_stats[c] = stats
            if slices is not None:
                class_slices.append((f"{c} ({' + '.join(networks[c])}) along {class_dir}", slices))
            for r in rows_c:
                lost = r["fraction_dead_end"] + r["fraction_isolated"]
                if networks[c] and r["percolates"] and lost > 0.05:
                    warnings.append(f"{100 * lost:.1f} % of the {c} network ({' + '.join(networks[c])}) is dead-end "
                                    f"or isolated along {r['direction']} and carries no current")
        timings["percolation"] = time.perf_counter() - t0

    # -- microstructure analysis ------------------------------------------------------
    analysis = {"clusters": cluster_stats}
    a = config.analysis
    if a.interfaces or a.active_material or a.particle_size:
        display.stage("microstructure analysis")
        t0 = time.perf_counter()
        analysis.update(_microstructure(volume, config))
        timings["microstructure_analysis"] = time.perf_counter() - t0

    # -- finite volumes ---------------------------------------------------------------
    axis_p = AXES[config.analysis.profile_axis]
    transport, field_slices, current_profiles, field_names = [], {}, {}, []
    if fv.enabled:
        transport, field_slices, current_profiles, field_names = _solve_all(
            config, volume, folder, display, progress, timings, axis_p)
        warnings += [f"{t['carrier']} {t['direction']}: {t['message']}" for t in transport
                     if not t["percolates"] or not t["converged"]]

    # -- random walk ------------------------------------------------------------------
    rw_results, rw_objects = [], []
    if config.random_walk.enabled:
        from ..randomwalk import random_walk
        o = config.random_walk
        for c in config.carriers:
            display.stage(f"random walk {c}")
            t0 = time.perf_counter()
            if not networks[c]:
                warnings.append(f"random walk {c}: no phase conducts {c} charge; skipped")
                continue
            res = random_walk(volume, c, walkers=o.walkers, steps=o.steps, boundary=o.boundary, seed=seed,
                              records=o.records, groups=o.groups, target_error=o.target_error,
                              max_walkers=o.max_walkers,
                              progress=lambda done, planned, rate, c=c: progress.bar(
                                  f"random walk {c}", done, planned, f"{rate:.3g} walker-steps/s"))
            timings[f"random_walk_{c}"] = time.perf_counter() - t0
            rw_results.append(res.to_dict())
            rw_objects.append(res)
            if res.percolates and not all(a.diffusive for a in res.axes if a.percolates):
                warnings.append(f"random walk {c}: {res.message}")

    rows = _summary_rows(transport, rw_objects, perc_rows, networks, config, alpha)
    _cross_check(rows, rw_objects, config, warnings)

    # -- figures ----------------------------------------------------------------------
    figures = {}
    if config.output.figures:
        display.stage("figures")
        t0 = time.perf_counter()
        figures = _figures(folder, volume, config, field_slices, current_profiles, perc_rows, class_slices, rows,
                           rw_objects, alpha)
        timings["figures"] = time.perf_counter() - t0

    # -- results ----------------------------------------------------------------------
    display.stage("write results")
    timings["total"] = time.perf_counter() - t_start
    document = {
        "schema": SCHEMA_ID,
        "schema_version": SCHEMA_VERSION,
        "name": config.name,
        "started_utc": started,
        "finished_utc": _now(),
        "seed": seed,
        "versions": versions(),
        "config": config.to_dict(),
        "config_file": None if config.source_file is None else str(config.source_file),
        "source": source_info,
        "volume": {"shape": list(volume.shape), "voxel_size_um": list(volume.voxel_size_um),
                   "size_um": list(volume.size_um), "phases": [p.to_dict() for p in volume.phases],
                   "phase_fractions": fractions, "provenance": list(volume.provenance)},
        "networks": {c: list(v) for c, v in networks.items()},
        "percolation": perc_rows,
        "analysis": analysis,
        "transport": transport,
        "random_walk": rw_results,
        "summary": rows,
        "profiles": {"axis": config.analysis.profile_axis,
                     "positions_um": _positions(volume, axis_p),
                     "phase_fractions": _profiles(volume, axis_p),
                     "mean_current_density_A_per_m2": current_profiles},
        "bruggeman": {"alpha": alpha, "definition": "tau_bruggeman = eps^-alpha; alpha_fit = -ln(tau) / ln(eps)"},
        "warnings": warnings,
        "units": UNITS,
        "files": {"summary": "summary.csv", "config": "config.toml",
                  "fields": "fields.h5" if config.output.fields else None,
                  "fields_xdmf": "fields.xdmf" if config.output.fields else None,
                  "field_datasets": field_names,
                  "figures": figures, "report": "report.html" if config.output.report else None},
        "timings_s": timings,
        "extra": dict(extra) if extra else {},
    }
    document = json_safe(document)
    write_text_atomic(folder / "config.toml", _config_header(config) + toml_text(config.resolved_document()))
    _write_summary(folder / "summary.csv", rows)
    if config.output.report:
        from ..report.html import write_report
        write_report(folder / "report.html", document, folder)
    write_json(folder / RESULT_FILE, document)
    n_warn = f", {len(warnings)} warning(s)" if warnings else ""
    display.finish(f"done in {timings['total']:.1f} s{n_warn}")
    return document


def _solve_all(config: RunConfig, volume: Volume, folder: Path, display: RunDisplay, progress: Progress,
               timings: dict, axis_p: int):
    """Every (carrier, direction) solve; fields go to fields.h5 one solve at a time, so that only
    one solve's fields are in memory, and only their mid-plane slices and profiles are kept."""
    from ..io.hdf5 import open_fields
    from ..report.figures import orthogonal_slices
    fv, out = config.finite_volume, config.output
    writer = None
    if out.fields:
        writer = open_fields(folder / "fields.h5", volume.voxel_size_um, volume.phases, volume.provenance,
                             None if out.compression == "none" else out.compression)
    transport, slices, profiles = [], {}, {}
    try:
        if writer is not None:
            writer.add("labels", volume.labels)
        for c in config.carriers:
            for d in config.directions:
                display.stage(f"solve {c} {d}")
                t0 = time.perf_counter()
                r = solve_direction(volume, c, d, periodic_sides=fv.periodic_sides, cell_problem=fv.cell_problem,
                                    tol=fv.tol, rtol=fv.rtol, current_tol=fv.current_tol, max_iter=fv.max_iter,
                                    solver=fv.solver, return_fields=out.fields or out.figures,
                                    progress=lambda it, rel, mis, done=False, c=c, d=d:
                                    progress.solver(c, d, it, rel, mis, done))
                timings[f"solve_{c}_{d}"] = time.perf_counter() - t0
                transport.append(r.to_dict())
                if r.potential is None:
                    continue
                jd = r.current_density_A_per_m2
                mag = np.sqrt(np.einsum("i...,i...->...", jd, jd, dtype=np.float32))
                axial = np.moveaxis(jd[AXES[d]], axis_p, 0)
                profiles[f"{c} {d}"] = axial.reshape(axial.shape[0], -1).mean(axis=1).tolist()
                slices[(c, d)] = (orthogonal_slices(r.potential), orthogonal_slices(mag))
                if writer is not None:
                    writer.add(f"{c}/{d}/potential_V", r.potential)
                    writer.add(f"{c}/{d}/current_density_magnitude_A_per_m2", mag)
                del r, jd, mag, axial
        names = []
        if writer is not None:
            names = writer.names
            writer.close()
            writer = None
    finally:
        if writer is not None:
            writer.abort()
    return transport, slices, profiles, names


def _config_header(config: RunConfig) -> str:
    return (f"# Configuration of the run {config.name!r}, paths made absolute.\n"
            "# Rerun with: microsim run config.toml --out NEW_FOLDER\n\n")


def _positions(volume: Volume, axis: int) -> list[float]:
    d = volume.voxel_size_um[axis]
    return ((np.arange(volume.shape[axis]) + 0.5) * d).tolist()


def _finite_ratio(a: float, b: float) -> float:
    return a / b if (math.isfinite(a) and math.isfinite(b) and b > 0) else math.nan


def _summary_rows(transport, rw_objects, perc_rows, networks, config: RunConfig, alpha: float) -> list[dict]:
    from ..analysis import bruggeman_exponent, tau_bruggeman
    perc = {(p["carrier"], p["direction"]): p for p in perc_rows}
    rows = []

    def add(method, carrier, direction, phases, eps, eps_perc, sigma_ref, sigma_eff, tau, tau_perc, macmullin,
            converged):
        p = perc.get((carrier, direction))
        frac = p["fraction_percolating"] if p is not None else (eps_perc / eps if eps > 0 else 0.0)
        tau_b = tau_bruggeman(eps, alpha)
        rows.append({"method": method, "carrier": carrier, "direction": direction,
                     "conducting_phases": " + ".join(phases), "eps": eps, "eps_percolating": eps_perc,
                     "percolating_fraction": frac, "sigma_ref_S_per_m": sigma_ref, "sigma_eff_S_per_m": sigma_eff,
                     "normalised_sigma": sigma_eff / sigma_ref if sigma_ref > 0 else 0.0, "tau": tau,
                     "tau_percolating": tau_perc, "tau_bruggeman": tau_b,
                     "tau_over_tau_bruggeman": _finite_ratio(tau, tau_b), "alpha_fit": bruggeman_exponent(eps, tau),
                     "macmullin": macmullin,
                     "converged": bool(converged)})
    for t in transport:
        add("finite_volume", t["carrier"], t["direction"], t["conducting_phases"], t["eps"], t["eps_percolating"],
            t["sigma_ref_S_per_m"], t["sigma_eff_S_per_m"], t["tau"], t["tau_percolating"], t["macmullin"],
            t["converged"])
    for res in rw_objects:
        for d in config.directions:
            a = res.get(d)
            add("random_walk", res.carrier, d, networks[res.carrier], res.eps, a.eps_percolating, res.sigma_ref_S_per_m,
                a.sigma_eff_S_per_m, a.tau, a.tau_percolating, a.macmullin, a.diffusive or not a.percolates)
    return rows


def _cross_check(rows, rw_objects, config: RunConfig, warnings: list[str]) -> None:
    """Warn when the two methods disagree on the same problem by more than 2 % and 3 standard errors."""
    if not rw_objects or not config.finite_volume.enabled:
        return
    same = (config.random_walk.boundary == "periodic") == config.finite_volume.cell_problem \
        and not (config.random_walk.boundary == "mirror" and config.finite_volume.periodic_sides)
    if not same:
        return
    fv = {(r["carrier"], r["direction"]): r for r in rows if r["method"] == "finite_volume"}
    for res in rw_objects:
        for d in config.directions:
            a, f = res.get(d), fv.get((res.carrier, d))
            if f is None or not a.percolates or not math.isfinite(f["tau"]) or not math.isfinite(a.tau):
                continue
            gap = abs(a.tau - f["tau"])
            if gap > max(0.02 * f["tau"], 3 * a.tau_se):
                warnings.append(f"{res.carrier} {d}: random-walk tau {a.tau:.4g} +- {a.tau_se:.2g} differs from the "
                                f"finite-volume tau {f['tau']:.4g}; run more walkers or steps")


def _percolation(volume: Volume, carrier: str, names: tuple[str, ...], config: RunConfig, periodic_sides: bool,
                 class_dir: str):
    """Percolation rows of one carrier's network in every direction, its cluster statistics and the
    mid-plane slices of its class map along ``class_dir`` (for the figure)."""
    from ..analysis import cluster_percolation
    from ..analysis.clusters import touching
    from ..report.figures import orthogonal_slices
    conn = config.analysis.connectivity
    mask = volume.mask(names) if names else np.zeros(volume.shape, dtype=bool)
    base = {"carrier": carrier, "phases": list(names), "connectivity": conn}
    rows = []
    if periodic_sides:
        # The cluster analysis knows no periodic faces; the solver's own percolation test does.
        fv = config.finite_volume
        keep = None
        for d in config.directions:
            r = percolation(mask, d, conn, periodic_sides=True, periodic_direction=fv.cell_problem)
            rows.append(base | r.to_dict())
            if d == class_dir:
                keep = np.where(r.percolating, 1, np.where(mask, 3, 0)).astype(np.uint8)
        slices = orthogonal_slices(keep) if (keep is not None and names and config.output.figures) else None
        return rows, None, slices
    cp = cluster_percolation(mask, config.directions, conn, volume.voxel_size_um, " + ".join(names) or "none",
                             keep_labels=config.output.figures)
    for dp in cp.directions:
        rows.append(base | {"direction": dp.direction, "volume_fraction": cp.volume_fraction,
                            "percolating_volume_fraction": dp.fraction_percolating * cp.volume_fraction,
                            "fraction_percolating": dp.fraction_percolating,
                            "fraction_dead_end": dp.fraction_dead_end, "fraction_isolated": dp.fraction_isolated,
                            "n_clusters": cp.clusters.n_clusters, "percolates": dp.percolates})
    slices = None
    if cp.labels is not None and names:
        n = cp.clusters.n_clusters
        axis = AXES[class_dir]
        first, last = touching(cp.labels, n, axis, 0), touching(cp.labels, n, axis, -1)
        code = np.full(n + 1, 3, dtype=np.uint8)
        code[first ^ last] = 2
        code[first & last] = 1
        code[0] = 0
        slices = orthogonal_slices(code[cp.labels])
    return rows, cp.clusters.to_dict(), slices


def _microstructure(volume: Volume, config: RunConfig) -> dict:
    """Interface areas, active material and particle sizes, as asked for in [analysis]."""
    a = config.analysis
    out: dict = {}
    if a.interfaces:
        from ..analysis.interfaces import interface_areas
        out["interfaces"] = interface_areas(volume).to_dict()
    if a.active_material:
        from ..analysis.active import active_material, resolve_roles
        try:
            resolve_roles(volume)
        except ValueError as exc:
            # Not every volume has an active material and an electrolyte (a two-phase
            # test structure has neither): say why the analysis was skipped.
            out["active_material"] = {"skipped": str(exc)}
        else:
            out["active_material"] = active_material(volume, separator_face=a.separator_face,
                                                     collector_face=a.collector_face,
                                                     connectivity=a.connectivity).to_dict()
    if a.particle_size:
        from ..analysis.psd import particle_size_distribution
        out["particle_size"] = {name: particle_size_distribution(volume, name).to_dict() for name in a.particle_size}
    return out


def _figures(folder: Path, volume: Volume, config: RunConfig, field_slices, current_profiles, perc_rows,
             class_slices, rows, rw_objects, alpha) -> dict[str, str]:
    from ..analysis import plot_bruggeman
    from ..report import figures as fig
    out: dict[str, str] = {}
    vs = volume.voxel_size_um
    fig.phase_slices(volume.labels, volume.phases, vs, folder / "phases.png",
                     title=f"phases of {config.name} ({' x '.join(map(str, volume.shape))} voxels)")
    out["phases"] = "phases.png"
    unconverged = {(r["carrier"], r["direction"]) for r in rows
                   if r["method"] == "finite_volume" and not r["converged"]}
    for (c, d), (pot, mag) in field_slices.items():
        ok = (c, d) not in unconverged
        name = f"potential_{c}_{d}.png"
        fig.field_slices(pot, vs, folder / name, f"potential, {c} transport along {d} (1 V applied)", "potential (V)",
                         cmap="viridis", converged=ok)
        out[f"potential {c} {d}"] = name
        name = f"current_{c}_{d}.png"
        fig.field_slices(mag, vs, folder / name, f"current-density magnitude, {c} transport along {d}",
                         "|j| (A/m^2, 1 V applied)", log=True, cmap="inferno", converged=ok)
        out[f"current {c} {d}"] = name
    axis = config.analysis.profile_axis
    a = AXES[axis]
    fig.profiles(axis, np.asarray(_positions(volume, a)), _profiles(volume, a), current_profiles,
                 folder / "profiles.png", unconverged=[f"{c} {d}" for c, d in unconverged])
    out["profiles"] = "profiles.png"
    if perc_rows:
        periodic = config.finite_volume.periodic_sides or config.finite_volume.cell_problem
        names = fig.CLASS_NAMES[:3] + ("not percolating",) if periodic else fig.CLASS_NAMES
        fig.percolation_classes_figure(class_slices, perc_rows, vs, folder / "percolation.png", names)
        out["percolation"] = "percolation.png"
    method = {"finite_volume": "", "random_walk": " (random walk)"}
    plot_bruggeman(folder / "bruggeman.png", [r["eps"] for r in rows], [r["tau"] for r in rows], alpha=alpha,
                   groups=[f"{r['carrier']} {r['direction']}{method[r['method']]}" for r in rows],
                   title=f"tau against eps: {config.name}")
    out["bruggeman"] = "bruggeman.png"
    if rw_objects:
        from ..randomwalk import plot_msd
        for res in rw_objects:
            name = f"msd_{res.carrier}.png"
            plot_msd(res, folder / name)
            out[f"random walk {res.carrier}"] = name
    return out


def _fmt_csv(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ("inf" if v > 0 else "-inf" if v < 0 else "nan")
    if isinstance(v, str) and v in ("inf", "-inf", "nan"):
        return v
    return str(v)


def _write_summary(path: Path, rows: list[dict]) -> None:
    import csv
    import io
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(SUMMARY_COLUMNS)
    for r in rows:
        w.writerow([_fmt_csv(r[k]) for k in SUMMARY_COLUMNS])
    write_text_atomic(path, buf.getvalue())

