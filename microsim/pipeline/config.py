"""Run configurations: what ``microsim run CONFIG.toml`` reads, checked before any work starts.

A configuration names the source of the volume, the phase table, the carriers
and directions, the methods and the analyses. Every relative path is taken
relative to the folder of the configuration file. Example (the complete list of
keys is in :data:`KEYS`)::

    [run]
    name = "NMC cathode, 32^3 crop"
    seed = 0

    [source]
    stack = "electrode_64.tif"       # TIFF, slice folder or glob, HDF5, .npy or raw
    crop = "0:32,0:32,0:32"
    voxel_size_um = 0.390625

    phases = "electrode_phases.toml"  # or [phases.NAME] tables here

    [transport]
    carriers = ["ionic", "electronic"]
    directions = ["x", "y", "z"]

    [finite_volume]
    tol = 1e-4                       # relative error of sigma_eff

    [analysis]
    profile_axis = "z"

Grayscale stacks are segmented when ``[source.segment]`` is present (keys of
:func:`microsim.segment.segment`). A generated volume comes from
``source.recipe``: the path of a recipe TOML or an inline ``[source.recipe]``
table. ``[random_walk]`` adds the random-walk method next to finite volumes.
"""
from __future__ import annotations

import copy
import difflib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .. import tomlio
from ..conductivity import DEFAULT_SOLVER, SOLVERS
from ..solve.accuracy import DEFAULT_MAX_ITER, check_tolerances
from ..phases import CARRIERS, PhaseTable
from ..tomlio import tomllib
from ..volume import AXES, check_voxel_size, directions as parse_directions


class ConfigError(ValueError):
    """A run or sweep configuration is invalid; the message names the key, the problem and the fix."""


#: Every key a run configuration may hold, per section, with a short description.
KEYS: dict[str, dict[str, str]] = {
    "run": {"name": "title of the run in the report",
            "seed": "integer seed of the generator and the random walk (default: the recipe's, else 0)",
            "threads": "numba threads for this run (default: all cores)"},
    "source": {"stack": "path of a TIFF, slice folder or glob, HDF5, .npy or raw file",
               "recipe": "path of a generator recipe TOML, or an inline [source.recipe] table",
               "crop": "voxel ranges 'z0:z1,y0:y1,x0:x1' of the stack to read",
               "stride": "keep every s-th voxel (int or [sz, sy, sx])",
               "downsample": "majority-vote block factor (int or [bz, by, bx])",
               "dataset": "HDF5 dataset path", "voxel_size_um": "voxel size (d or [dz, dy, dx]) in um",
               "slice_thickness_um": "replaces dz (FIB-SEM slice thickness) in um",
               "raw": "layout of a raw file: shape, dtype, byte_order, offset_bytes",
               "conducting": "label values that conduct with sigma 1 S/m (either carrier), the rest insulating: "
                             "a phase table without writing one, e.g. conducting = [1]",
               "segment": "segmentation of a grayscale stack: n_phases, thresholds, denoise, denoise_size, "
                          "nlm_h, min_island_voxels, connectivity"},
    "phases": {},
    "transport": {"carriers": "'ionic', 'electronic', 'both' or a list",
                  "directions": "'all', 'x,y' or a list of x, y, z"},
    "finite_volume": {"enabled": "solve by finite volumes (default true)",
                      "periodic_sides": "periodic instead of no-flux side faces",
                      "cell_problem": "fully periodic homogenisation cell problem",
                      "tol": "estimated relative error of sigma_eff to reach (solver default: 5e-4)",
                      "rtol": "relative residual to reach as well (optional)",
                      "current_tol": "inlet/outlet current mismatch to reach as well (optional)",
                      "max_iter": "iteration limit of each solve",
                      "solver": "'mg' (multigrid-preconditioned, default) or 'jacobi' (the reference)"},
    "random_walk": {"enabled": "run the random walk (default true when the section is present)",
                    "walkers": "walkers per batch", "steps": "steps per walker",
                    "boundary": "'mirror' (matches the default finite-volume problem) or 'periodic'",
                    "target_error": "relative standard error to reach by adding batches",
                    "max_walkers": "walker limit for target_error", "records": "recorded times per walker",
                    "groups": "independent walker groups for the error bars"},
    "analysis": {"percolation": "percolating / dead-end / isolated fractions per carrier network (default true)",
                 "connectivity": "6, 18 or 26 for the percolation classes (default 6)",
                 "interfaces": "interface areas of every pair of phases by marching cubes (default true)",
                 "active_material": "share of the active material reachable by ions and electrons (default true; "
                                    "needs active and electrolyte phases, recognised by their material preset)",
                 "separator_face": "face the ions come from, 'z=0' (default) or e.g. 'x=end'",
                 "collector_face": "face the electrons come from, 'z=end' (default)",
                 "particle_size": "phases whose particle-size distribution to report, e.g. [\"NMC\"]",
                 "profile_axis": "through-thickness axis of the profiles: z, y or x (default z)",
                 "bruggeman_alpha": "exponent of tau_Bruggeman = eps^-alpha (default 0.5)"},
    "output": {"fields": "write fields.h5 + fields.xdmf (default true)",
               "figures": "write the PNG figures (default true)", "report": "write report.html (default true)",
               "compression": "HDF5 compression: 'gzip' (default), 'lzf' or 'none'"},
}

SEGMENT_KEYS = ("n_phases", "thresholds", "denoise", "denoise_size", "nlm_h", "min_island_voxels", "connectivity",
                "bins")
RAW_KEYS = ("shape", "dtype", "byte_order", "offset_bytes")
RW_BOUNDARIES = ("mirror", "periodic")


def _suggest(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _where(section: str, key: str | None = None) -> str:
    return f"[{section}]" + (f" {key}" if key else "")


@dataclass(frozen=True)
class StackSource:
    """A labelled (or, with ``segment``, grayscale) stack read from a file."""

    path: Path
    crop: Any = None
    stride: Any = None
    downsample: Any = None
    dataset: str | None = None
    voxel_size_um: tuple[float, float, float] | None = None
    slice_thickness_um: float | None = None
    raw: Mapping | None = None
    segment: Mapping | None = None
    conducting: tuple[int, ...] | None = None

    kind = "stack"


@dataclass(frozen=True)
class RecipeSource:
    """A volume generated from a recipe (a path of a recipe TOML, or its tables)."""

    recipe: Any

    kind = "recipe"


@dataclass(frozen=True)
class FiniteVolumeOptions:
    """Options of :func:`microsim.solve_direction`; None leaves a criterion to the solver's default."""

    enabled: bool = True
    periodic_sides: bool = False
    cell_problem: bool = False
    tol: float | None = None
    rtol: float | None = None
    current_tol: float | None = None
    max_iter: int = DEFAULT_MAX_ITER
    solver: str = DEFAULT_SOLVER


@dataclass(frozen=True)
class RandomWalkOptions:
    enabled: bool = False
    walkers: int = 10_000
    steps: int = 10_000
    boundary: str = "mirror"
    target_error: float | None = None
    max_walkers: int | None = None
    records: int = 64
    groups: int = 32


@dataclass(frozen=True)
class AnalysisOptions:
    percolation: bool = True
    connectivity: int = 6
    interfaces: bool = True
    active_material: bool = True
    separator_face: str = "z=0"
    collector_face: str = "z=end"
    particle_size: tuple[str, ...] = ()
    profile_axis: str = "z"
    bruggeman_alpha: float = 0.5


@dataclass(frozen=True)
class OutputOptions:
    fields: bool = True
    figures: bool = True
    report: bool = True
    compression: str = "gzip"


@dataclass(frozen=True)
class RunConfig:
    """A checked run configuration.

    ``document`` is the configuration as written (after sweep overrides), kept
    for result.json and for reproducing the run; ``base_dir`` is the folder
    relative paths were resolved against. ``seed`` is None when not given: a
    generated volume then uses its recipe's seed, and everything else 0.
    """

    name: str
    seed: int | None
    threads: int | None
    source: StackSource | RecipeSource
    phases: PhaseTable | None
    carriers: tuple[str, ...]
    directions: tuple[str, ...]
    finite_volume: FiniteVolumeOptions
    random_walk: RandomWalkOptions
    analysis: AnalysisOptions
    output: OutputOptions
    document: dict = field(repr=False)
    base_dir: Path = field(repr=False)
    source_file: Path | None = None

    def to_dict(self) -> dict:
        return copy.deepcopy(self.document)

    def resolved_document(self) -> dict:
        """The document with every file path made absolute, so it runs from any folder."""
        doc = copy.deepcopy(self.document)
        src = doc.get("source", {})
        if isinstance(self.source, StackSource):
            src["stack"] = str(self.source.path)
        elif isinstance(self.source, RecipeSource) and isinstance(src.get("recipe"), str):
            src["recipe"] = str(_resolve(self.base_dir, src["recipe"]))
        if isinstance(doc.get("phases"), str):
            doc["phases"] = str(_resolve(self.base_dir, doc["phases"]))
        return doc


# ---------------------------------------------------------------------------
# reading


def read_toml(path: str | Path, what: str = "configuration") -> dict:
    """Parse a TOML file, turning every failure into a one-line :class:`ConfigError`."""
    return tomlio.read_toml(path, what, ConfigError)


def _resolve(base_dir: Path, path: str) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else (base_dir / p)


def load_config(source: str | Path | Mapping, base_dir: str | Path | None = None) -> RunConfig:
    """Read and check a run configuration.

    Parameters
    ----------
    source : path of a TOML file, or the parsed document (a dict)
    base_dir : folder that relative paths refer to (default: the file's folder,
        or the current folder for a dict)

    Examples
    --------
    >>> cfg = load_config({"source": {"stack": "v.tif"}, "phases": {"SE": {"label": 1, "sigma_ionic_S_per_m": 1}}})
    >>> cfg.carriers, cfg.directions
    (('ionic',), ('x', 'y', 'z'))
    """
    if isinstance(source, Mapping):
        doc = copy.deepcopy(dict(source))
        base = Path(base_dir) if base_dir is not None else Path.cwd()
        origin, label = None, "configuration"
    else:
        origin = Path(source)
        doc = read_toml(origin)
        base = Path(base_dir) if base_dir is not None else origin.resolve().parent
        label = str(origin)
    try:
        return _parse(doc, base, origin)
    except ConfigError as exc:
        if origin is None:
            raise
        raise ConfigError(f"{label}: {exc}") from None


def _check_keys(section: str, table: Mapping, allowed) -> None:
    if not isinstance(table, Mapping):
        raise ConfigError(f"{_where(section)} must be a table")
    for key in table:
        if key == "phases" and key not in allowed:
            raise ConfigError(f"phases is inside {_where(section)}: TOML puts every key after a [table] header into "
                              "that table; move 'phases = ...' above the first [table] of the file")
        if key not in allowed:
            raise ConfigError(f"unknown key {_where(section, key)}{_suggest(key, allowed)} "
                              f"(allowed: {', '.join(allowed)})")


def _bool(section: str, table: Mapping, key: str, default: bool) -> bool:
    v = table.get(key, default)
    if not isinstance(v, bool):
        raise ConfigError(f"{_where(section, key)} = {v!r} must be true or false")
    return v


def _int(section: str, table: Mapping, key: str, default, lo: int | None = None, allow_none: bool = False):
    v = table.get(key, default)
    if v is None and allow_none:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise ConfigError(f"{_where(section, key)} = {v!r} must be an integer")
    if lo is not None and v < lo:
        raise ConfigError(f"{_where(section, key)} = {v} must be >= {lo}")
    return v


def _float(section: str, table: Mapping, key: str, default, positive: bool = True, allow_none: bool = False):
    v = table.get(key, default)
    if v is None and allow_none:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ConfigError(f"{_where(section, key)} = {v!r} must be a finite number")
    if positive and not v > 0:
        raise ConfigError(f"{_where(section, key)} = {v!r} must be > 0")
    return float(v)


def _voxel_size(section: str, value):
    if value is None:
        return None
    try:
        return check_voxel_size(value)
    except ValueError as exc:
        raise ConfigError(f"{_where(section, 'voxel_size_um')}: {exc}") from None


def _parse_source(doc: Mapping, base: Path):
    if "source" not in doc:
        raise ConfigError("no [source] table; add one with 'stack = \"FILE\"' or 'recipe = \"RECIPE.toml\"'")
    src = doc["source"]
    _check_keys("source", src, KEYS["source"])
    has_stack, has_recipe = "stack" in src, "recipe" in src
    if has_stack == has_recipe:
        raise ConfigError("[source] needs exactly one of 'stack' (a file to read) or 'recipe' (a volume to generate)")
    vs = _voxel_size("source", src.get("voxel_size_um"))
    if has_recipe:
        recipe = src["recipe"]
        if not isinstance(recipe, (str, Mapping)):
            raise ConfigError("[source] recipe must be the path of a recipe TOML or an inline [source.recipe] table")
        for key in ("crop", "stride", "downsample", "dataset", "raw", "segment", "slice_thickness_um",
                    "voxel_size_um", "conducting"):
            if key in src:
                raise ConfigError(f"[source] {key} applies to stacks only; remove it for a recipe source "
                                  "(the recipe's [domain] sets shape and voxel size)")
        if isinstance(recipe, str):
            path = _resolve(base, recipe)
            if not path.is_file():
                raise ConfigError(f"[source] recipe {recipe!r}: file {path.name} not found; check the path "
                                  "(relative paths start at the configuration's folder)")
        return RecipeSource(recipe=copy.deepcopy(recipe))
    stack = src["stack"]
    if not isinstance(stack, str) or not stack:
        raise ConfigError("[source] stack must be a path (a string)")
    path = _resolve(base, stack)
    segment = src.get("segment")
    if segment is not None:
        _check_keys("source.segment", segment, SEGMENT_KEYS)
    raw = src.get("raw")
    if raw is not None:
        _check_keys("source.raw", raw, RAW_KEYS)
    dataset = src.get("dataset")
    if dataset is not None and not isinstance(dataset, str):
        raise ConfigError(f"[source] dataset = {dataset!r} must be an HDF5 dataset path such as '/labels'")
    thick = _float("source", src, "slice_thickness_um", None, allow_none=True)
    conducting = src.get("conducting")
    if conducting is not None:
        items = [conducting] if isinstance(conducting, int) and not isinstance(conducting, bool) else conducting
        if (not isinstance(items, list) or not items
                or not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in items)):
            raise ConfigError(f"[source] conducting = {conducting!r} must be a list of label values 0..255, "
                              "e.g. conducting = [1]")
        conducting = tuple(items)
    return StackSource(path=path, crop=src.get("crop"), stride=src.get("stride"), downsample=src.get("downsample"),
                       dataset=dataset, voxel_size_um=vs, slice_thickness_um=thick,
                       raw=copy.deepcopy(raw), segment=copy.deepcopy(segment), conducting=conducting)


def _parse_phases(doc: Mapping, base: Path) -> PhaseTable | None:
    spec = doc.get("phases")
    if spec is None:
        return None
    if isinstance(spec, str):
        path = _resolve(base, spec)
        if not path.is_file():
            raise ConfigError(f"phases = {spec!r}: file {path.name} not found; check the path "
                              "(relative paths start at the configuration's folder)")
        return PhaseTable.from_toml(path)
    if not isinstance(spec, Mapping) or not spec:
        raise ConfigError("phases must be the path of a phase table TOML or [phases.NAME] tables")
    return PhaseTable.from_mapping({"phases": spec}, source="[phases]")


def _parse_carriers(value) -> tuple[str, ...]:
    if value == "both":
        return CARRIERS
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise ConfigError(f"[transport] carriers = {value!r} must be 'ionic', 'electronic', 'both' or a list")
    out = []
    for c in items:
        if c not in CARRIERS:
            raise ConfigError(f"[transport] carriers: {c!r} is not one of {', '.join(CARRIERS)}"
                              f"{_suggest(str(c), CARRIERS)}")
        if c not in out:
            out.append(c)
    return tuple(out)


def _parse(doc: Mapping, base: Path, origin: Path | None) -> RunConfig:
    for section in doc:
        if section not in KEYS:
            raise ConfigError(f"unknown section [{section}]{_suggest(section, KEYS)} (allowed: {', '.join(KEYS)})")
    run = doc.get("run", {})
    _check_keys("run", run, KEYS["run"])
    name = run.get("name", origin.stem if origin is not None else "run")
    if not isinstance(name, str):
        raise ConfigError(f"[run] name = {name!r} must be a string")
    seed = _int("run", run, "seed", None, lo=0, allow_none=True)
    threads = _int("run", run, "threads", None, lo=1, allow_none=True)

    source = _parse_source(doc, base)
    phases = _parse_phases(doc, base)
    if phases is not None and isinstance(source, StackSource) and source.conducting is not None:
        raise ConfigError("[source] conducting makes its own phase table; give it or phases, not both")

    tr = doc.get("transport", {})
    _check_keys("transport", tr, KEYS["transport"])
    carriers = _parse_carriers(tr.get("carriers", ["ionic"]))
    try:
        dirs_spec = tr.get("directions", "all")
        if not isinstance(dirs_spec, (str, list)):
            raise ValueError(f"{dirs_spec!r} is not a direction list")
        dirs = parse_directions(dirs_spec)
    except ValueError as exc:
        raise ConfigError(f"[transport] directions: {exc}; use 'all' or a list of x, y, z") from None

    fvt = doc.get("finite_volume", {})
    _check_keys("finite_volume", fvt, KEYS["finite_volume"])
    solver = fvt.get("solver", DEFAULT_SOLVER)
    if solver not in SOLVERS:
        raise ConfigError(f"[finite_volume] solver = {solver!r} is not one of {', '.join(SOLVERS)}"
                          f"{_suggest(str(solver), SOLVERS)}")
    fv = FiniteVolumeOptions(
        enabled=_bool("finite_volume", fvt, "enabled", True),
        periodic_sides=_bool("finite_volume", fvt, "periodic_sides", False),
        cell_problem=_bool("finite_volume", fvt, "cell_problem", False),
        tol=_float("finite_volume", fvt, "tol", None, allow_none=True),
        rtol=_float("finite_volume", fvt, "rtol", None, allow_none=True),
        current_tol=_float("finite_volume", fvt, "current_tol", None, allow_none=True),
        max_iter=_int("finite_volume", fvt, "max_iter", DEFAULT_MAX_ITER, lo=1), solver=solver)
    try:
        check_tolerances(fv.tol, fv.rtol, fv.current_tol, fv.max_iter)
    except ValueError as exc:
        raise ConfigError(f"[finite_volume] {exc}") from None

    rwt = doc.get("random_walk")
    if rwt is None:
        rw = RandomWalkOptions(enabled=False)
    else:
        _check_keys("random_walk", rwt, KEYS["random_walk"])
        boundary = rwt.get("boundary", "mirror")
        if boundary not in RW_BOUNDARIES:
            raise ConfigError(f"[random_walk] boundary = {boundary!r} is not one of {', '.join(RW_BOUNDARIES)}")
        rw = RandomWalkOptions(
            enabled=_bool("random_walk", rwt, "enabled", True),
            walkers=_int("random_walk", rwt, "walkers", 10_000, lo=2),
            steps=_int("random_walk", rwt, "steps", 10_000, lo=8), boundary=boundary,
            target_error=_float("random_walk", rwt, "target_error", None, allow_none=True),
            max_walkers=_int("random_walk", rwt, "max_walkers", None, lo=2, allow_none=True),
            records=_int("random_walk", rwt, "records", 64, lo=2),
            groups=_int("random_walk", rwt, "groups", 32, lo=2))
    if not fv.enabled and not rw.enabled:
        raise ConfigError("no method to run: [finite_volume] enabled = false and no [random_walk]; enable one")

    at = doc.get("analysis", {})
    _check_keys("analysis", at, KEYS["analysis"])
    conn = _int("analysis", at, "connectivity", 6)
    if conn not in (6, 18, 26):
        raise ConfigError(f"[analysis] connectivity = {conn} must be 6, 18 or 26")
    axis = at.get("profile_axis", "z")
    if axis not in AXES:
        raise ConfigError(f"[analysis] profile_axis = {axis!r} must be 'z', 'y' or 'x'")
    faces = {}
    for key, default in (("separator_face", "z=0"), ("collector_face", "z=end")):
        value = at.get(key, default)
        if not isinstance(value, str) or value.replace(" ", "") not in {f"{a}={e}" for a in AXES for e in ("0", "end")}:
            raise ConfigError(f"[analysis] {key} = {value!r} must be 'AXIS=0' or 'AXIS=end', e.g. 'z=0'")
        faces[key] = value.replace(" ", "")
    psd = at.get("particle_size", [])
    if isinstance(psd, str):
        psd = [psd]
    if not isinstance(psd, list) or not all(isinstance(p, str) for p in psd):
        raise ConfigError(f"[analysis] particle_size = {psd!r} must be a list of phase names, e.g. [\"NMC\"]")
    analysis = AnalysisOptions(percolation=_bool("analysis", at, "percolation", True), connectivity=conn,
                               interfaces=_bool("analysis", at, "interfaces", True),
                               active_material=_bool("analysis", at, "active_material", True),
                               particle_size=tuple(psd), profile_axis=axis,
                               bruggeman_alpha=_float("analysis", at, "bruggeman_alpha", 0.5), **faces)

    ot = doc.get("output", {})
    _check_keys("output", ot, KEYS["output"])
    comp = ot.get("compression", "gzip")
    if comp not in ("gzip", "lzf", "none"):
        raise ConfigError(f"[output] compression = {comp!r} must be 'gzip', 'lzf' or 'none'")
    output = OutputOptions(fields=_bool("output", ot, "fields", True), figures=_bool("output", ot, "figures", True),
                           report=_bool("output", ot, "report", True), compression=comp)
    return RunConfig(name=name, seed=seed, threads=threads, source=source, phases=phases, carriers=carriers,
                     directions=dirs, finite_volume=fv, random_walk=rw, analysis=analysis, output=output,
                     document=copy.deepcopy(dict(doc)), base_dir=base, source_file=origin)


# ---------------------------------------------------------------------------
# variations (used by sweeps)


def set_dotted(doc: dict, dotted: str, value, base_dir: Path) -> None:
    """Set ``doc[a][b][c] = value`` for ``dotted = "a.b.c"``, creating tables on the way.

    A string met on the way that names a TOML file (a recipe or phase table given
    by path) is replaced by the file's tables first, so a sweep can vary a value
    inside it.
    """
    parts = dotted.split(".")
    if not all(parts):
        raise ConfigError(f"parameter {dotted!r} has an empty part; write it as 'section.key' or 'a.b.c'")
    node = doc
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if isinstance(child, str) and child.endswith(".toml"):
            child = read_toml(_resolve(base_dir, child), "referenced TOML")
            if list(child) == [part]:
                child = child[part]  # a phase table file holds [phases.NAME] tables: take what is inside
            node[part] = child
        elif child is None:
            child = {}
            node[part] = child
        elif not isinstance(child, dict):
            where = ".".join(parts[:i + 1])
            raise ConfigError(f"parameter {dotted!r}: {where} is {child!r}, not a table; vary {where} itself")
        node = child
    node[parts[-1]] = copy.deepcopy(value)


def parse_assignment(text: str) -> tuple[str, Any]:
    """Split ``KEY=VALUE`` and read VALUE as a TOML value (a bare word that is not one is taken as a string).

    >>> parse_assignment("run.seed=3"), parse_assignment("transport.directions=['x']")
    (('run.seed', 3), ('transport.directions', ['x']))
    >>> parse_assignment("source.stack=v.tif")
    ('source.stack', 'v.tif')
    """
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"{text!r} is not KEY=VALUE; write e.g. run.seed=3 or source.crop='\"0:64,:,:\"'")
    try:
        return key, tomllib.loads(f"v = {value.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        return key, value.strip()


def toml_text(doc: Mapping) -> str:
    """TOML text of a document of tables, strings, numbers, booleans and lists (what :func:`read_toml` gives back).

    >>> toml_text({"run": {"name": "a", "seed": 1}, "source": {"stack": "v.tif"}})
    '[run]\\nname = "a"\\nseed = 1\\n\\n[source]\\nstack = "v.tif"\\n'
    """
    lines: list[str] = []
    _emit_table(lines, [], doc)
    return "\n".join(lines).strip("\n") + "\n"


def _key(k: str) -> str:
    return k if k and all(c.isalnum() or c in "-_" for c in k) else _value(k)


def _value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + "}"
    raise ConfigError(f"cannot write {v!r} ({type(v).__name__}) to TOML")


def _emit_table(lines: list[str], path: list[str], table: Mapping) -> None:
    scalars = {k: v for k, v in table.items() if not isinstance(v, Mapping)}
    tables = {k: v for k, v in table.items() if isinstance(v, Mapping)}
    if path and (scalars or not tables):
        lines.append("[" + ".".join(_key(p) for p in path) + "]")
    for k, v in scalars.items():
        lines.append(f"{_key(k)} = {_value(v)}")
    if scalars or (path and not tables):
        lines.append("")
    for k, v in tables.items():
        _emit_table(lines, path + [k], v)
