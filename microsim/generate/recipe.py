"""Recipes for synthetic composite cathodes: dataclasses and TOML files.

A recipe says how big the volume is, what the particles look like and how much
of each phase there is. Fractions of the solid phases (active material,
electrolyte, carbon-binder domain) are parts of the *solids*, by volume or by
weight; the porosity is a part of the whole volume. By weight, the densities
of the material presets (:mod:`microsim.materials`, where each one is sourced)
convert to volume, unless the recipe gives its own ``[densities]``.

TOML layout (every key of a table is optional unless marked)::

    name = "NMC811 in Li6PS5Cl"
    seed = 1
    boundary = "periodic"          # or "walled"
    fractions = "weight"           # basis of the solid fractions: "volume" or "weight"

    [domain]
    shape = [128, 128, 128]        # required: voxels (z, y, x)
    voxel_size_um = 0.4            # required: one value or [dz, dy, dx]

    [active]
    material = "NMC811"            # required: a material preset
    fraction = 0.686               # required: part of the solids
    size = { d50_um = 6.0, gsd = 1.3, basis = "volume" }   # or { diameters_um = [4.0, 15.6] }
    shape = { kind = "sphere" }    # or { kind = "spheroid", aspect_ratio = 0.5, orientation = "z", tilt_deg = 10 }

    [electrolyte]
    material = "Li6PS5Cl"          # required
    form = "matrix"                # or "particles" (then give size = {...})
    # fraction: part of the solids; default = what the other solids leave

    [porosity]
    fraction = 0.13                # part of the whole volume
    size = { d50_um = 1.0, gsd = 1.5 }   # voids cut into a matrix electrolyte
    # filled_with = "electrolyte"  # place the voids, then fill them: same particles, no porosity

    [cbd]
    material = "carbon_black"
    fraction = 0.02                # part of the solids
    placement = "bridges"          # "film" or "agglomerates" (then size = {...})

    [packing]
    tolerance = 0.01               # largest overlap depth / smaller diameter
    compaction = 0.0               # uniaxial compaction strain during packing, 0..0.5
    compaction_axis = "z"
    max_fraction = 0.62            # rigid packing fraction when electrolyte particles deform

    [densities]                    # g/cm3, by material name; override the presets
    NMC811 = 4.75
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

from ..materials import get_material
from ..tomlio import read_toml
from ..volume import check_voxel_size

AXIS_NAMES = ("z", "y", "x")


class RecipeError(ValueError):
    """A recipe is malformed or asks for something impossible; the message says what to change."""


def _number(value, where: str, lo: float | None = None, hi: float | None = None, lo_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RecipeError(f"{where} = {value!r} is not a number")
    v = float(value)
    if not math.isfinite(v):
        raise RecipeError(f"{where} = {v!r} must be finite")
    if lo is not None and (v <= lo if lo_open else v < lo):
        raise RecipeError(f"{where} = {v!r} must be {'>' if lo_open else '>='} {lo}")
    if hi is not None and v > hi:
        raise RecipeError(f"{where} = {v!r} must be <= {hi}")
    return v


def _check_keys(table: Mapping, allowed: set[str], where: str) -> None:
    if not isinstance(table, Mapping):
        raise RecipeError(f"{where} must be a table, not {type(table).__name__}")
    unknown = set(table) - allowed
    if unknown:
        raise RecipeError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(allowed))}")


@dataclass(frozen=True)
class SizeDistribution:
    """Particle diameters: a truncated log-normal or an explicit list.

    Parameters
    ----------
    d50_um : float or None
        Median diameter in micrometres of the log-normal.
    gsd : float
        Geometric standard deviation (>= 1; 1 means all particles have ``d50_um``).
    basis : str
        'volume' (default): ``d50_um`` is the median of the volume-weighted
        distribution, as laser diffraction reports it; 'number': of the number
        distribution. For a log-normal the two medians differ by exp(3 ln(gsd)^2).
    min_um, max_um : float or None
        Truncation of the number distribution; default number median / gsd^3 and
        number median * gsd^3 (beyond three geometric standard deviations).
    diameters_um : tuple of float
        Explicit diameters, drawn with equal probability (by number); replaces the log-normal.

    Examples
    --------
    >>> SizeDistribution(d50_um=10.0, gsd=1.2).number_median_um < 10.0
    True
    """

    d50_um: float | None = None
    gsd: float = 1.0
    basis: str = "volume"
    min_um: float | None = None
    max_um: float | None = None
    diameters_um: tuple[float, ...] = ()

    def __post_init__(self):
        if self.diameters_um:
            ds = tuple(_number(d, "size.diameters_um[]", 0.0, lo_open=True) for d in self.diameters_um)
            object.__setattr__(self, "diameters_um", ds)
            if self.d50_um is not None:
                raise RecipeError("size: give either d50_um (log-normal) or diameters_um (a list), not both")
            return
        if self.d50_um is None:
            raise RecipeError("size: give d50_um (log-normal median diameter in um) or diameters_um (a list)")
        object.__setattr__(self, "d50_um", _number(self.d50_um, "size.d50_um", 0.0, lo_open=True))
        object.__setattr__(self, "gsd", _number(self.gsd, "size.gsd", 1.0))
        if self.basis not in ("volume", "number"):
            raise RecipeError(f"size.basis = {self.basis!r} must be 'volume' or 'number'")
        lo, hi = self.bounds_um
        if not lo <= self.number_median_um <= hi:
            raise RecipeError(f"size: truncation [{lo}, {hi}] um does not contain the median "
                              f"{self.number_median_um:.4g} um; widen min_um/max_um")

    @property
    def sigma(self) -> float:
        """Standard deviation of ln(diameter)."""
        return 0.0 if self.diameters_um else math.log(self.gsd)

    @property
    def number_median_um(self) -> float:
        """Median of the number distribution (before truncation)."""
        if self.diameters_um:
            return sorted(self.diameters_um)[len(self.diameters_um) // 2]
        return self.d50_um * math.exp(-3.0 * self.sigma**2) if self.basis == "volume" else self.d50_um

    @property
    def bounds_um(self) -> tuple[float, float]:
        """Smallest and largest diameter that can be drawn."""
        if self.diameters_um:
            return min(self.diameters_um), max(self.diameters_um)
        m = self.d50_um * math.exp(-3.0 * self.sigma**2) if self.basis == "volume" else self.d50_um
        spread = self.gsd**3
        lo = m / spread if self.min_um is None else _number(self.min_um, "size.min_um", 0.0, lo_open=True)
        hi = m * spread if self.max_um is None else _number(self.max_um, "size.max_um", 0.0, lo_open=True)
        return lo, hi

    @classmethod
    def from_dict(cls, d: Mapping, where: str) -> "SizeDistribution":
        _check_keys(d, {f.name for f in fields(cls)}, where)
        d = dict(d)
        if "diameters_um" in d:
            if not isinstance(d["diameters_um"], (list, tuple)) or not d["diameters_um"]:
                raise RecipeError(f"{where}.diameters_um must be a non-empty list of diameters in um")
            d["diameters_um"] = tuple(d["diameters_um"])
        try:
            return cls(**d)
        except RecipeError as exc:
            raise RecipeError(f"{where}: {str(exc).removeprefix('size: ').removeprefix('size.')}") from None

    def to_dict(self) -> dict:
        if self.diameters_um:
            return {"diameters_um": list(self.diameters_um)}
        d = {"d50_um": self.d50_um, "gsd": self.gsd, "basis": self.basis}
        if self.min_um is not None:
            d["min_um"] = self.min_um
        if self.max_um is not None:
            d["max_um"] = self.max_um
        return d


@dataclass(frozen=True)
class Shape:
    """Particle shape: a sphere, or a spheroid of given aspect ratio and orientation.

    Parameters
    ----------
    kind : str
        'sphere' or 'spheroid'.
    aspect_ratio : float
        Polar over equatorial semi-axis of a spheroid: < 1 flattened (flakes,
        calendered particles), > 1 elongated (rods). The size distribution gives
        the volume-equivalent diameter.
    orientation : str
        Direction of the spheroid's symmetry axis: 'z', 'y' or 'x' (aligned,
        spread by ``tilt_deg``), or 'random' (isotropic).
    tilt_deg : float
        Root-mean-square tilt of the symmetry axis away from the aligned
        direction in degrees (a 2D Gaussian on the tangent plane).
    """

    kind: str = "sphere"
    aspect_ratio: float = 1.0
    orientation: str = "random"
    tilt_deg: float = 0.0

    def __post_init__(self):
        if self.kind not in ("sphere", "spheroid"):
            raise RecipeError(f"shape.kind = {self.kind!r} must be 'sphere' or 'spheroid'")
        ar = _number(self.aspect_ratio, "shape.aspect_ratio", 0.0, lo_open=True)
        if not 0.2 <= ar <= 5.0:
            raise RecipeError(f"shape.aspect_ratio = {ar} is outside 0.2..5; stronger shapes are not packed reliably")
        object.__setattr__(self, "aspect_ratio", ar)
        if self.orientation not in ("random",) + AXIS_NAMES:
            raise RecipeError(f"shape.orientation = {self.orientation!r} must be 'random', 'z', 'y' or 'x'")
        object.__setattr__(self, "tilt_deg", _number(self.tilt_deg, "shape.tilt_deg", 0.0, 90.0))

    @property
    def is_sphere(self) -> bool:
        return self.kind == "sphere" or self.aspect_ratio == 1.0

    @classmethod
    def from_dict(cls, d: Mapping, where: str) -> "Shape":
        _check_keys(d, {f.name for f in fields(cls)}, where)
        try:
            return cls(**d)
        except RecipeError as exc:
            raise RecipeError(f"{where}: {str(exc).removeprefix('shape.')}") from None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class ActiveSpec:
    """Active material particles (required in every recipe)."""

    material: str
    fraction: float
    size: SizeDistribution
    shape: Shape = field(default_factory=Shape)
    sigma_ionic_S_per_m: float | None = 0.0
    sigma_electronic_S_per_m: float | None = None


@dataclass(frozen=True)
class ElectrolyteSpec:
    """Solid electrolyte: a matrix filling the space, or particles with their own sizes."""

    material: str
    form: str = "matrix"
    fraction: float | None = None
    size: SizeDistribution | None = None
    sigma_ionic_S_per_m: float | None = None
    sigma_electronic_S_per_m: float | None = None


@dataclass(frozen=True)
class PorositySpec:
    """Void fraction of the whole volume; ``size`` gives the voids cut into a matrix electrolyte.

    ``filled_with = "electrolyte"`` places the voids as usual and then fills them with
    electrolyte: the same particles as the porous recipe, without its porosity.
    """

    fraction: float = 0.0
    size: SizeDistribution | None = None
    filled_with: str | None = None


@dataclass(frozen=True)
class CBDSpec:
    """Carbon-binder domain: fraction of the solids and where it goes."""

    material: str = "carbon_black"
    fraction: float = 0.0
    placement: str = "bridges"
    size: SizeDistribution | None = None
    sigma_ionic_S_per_m: float | None = None
    sigma_electronic_S_per_m: float | None = None


@dataclass(frozen=True)
class PackingSpec:
    """Packing controls.

    tolerance : largest allowed overlap depth as a fraction of the smaller particle's diameter.
    compaction : uniaxial compaction strain (0..0.5); the packing is made in a box taller by
        1/(1 - compaction) along ``compaction_axis`` and then pressed down to the final height,
        and spheroid axes turn as the affine compression turns them (flakes come to lie across
        the pressing direction). Rigid frictionless spheres rearrange as they are pressed and
        keep no measurable memory of it: for spheres the result is statistically isotropic.
    max_fraction : largest fraction of the box the rigid particles fill when the electrolyte
        is made of particles; electrolyte particles are packed small enough to stay below it
        and then grown into the remaining space (cold-pressed electrolyte deforms and fills pores).
    max_sweeps : give up after this many relaxation sweeps.
    """

    tolerance: float = 0.01
    compaction: float = 0.0
    compaction_axis: str = "z"
    max_fraction: float = 0.62
    max_sweeps: int = 200000


@dataclass(frozen=True)
class Recipe:
    """Everything needed to generate one composite cathode; see the module docstring for the TOML form.

    Examples
    --------
    >>> r = Recipe.from_dict({
    ...     "domain": {"shape": [64, 64, 64], "voxel_size_um": 0.5},
    ...     "active": {"material": "NMC811", "fraction": 0.6, "size": {"d50_um": 6.0, "gsd": 1.2}},
    ...     "electrolyte": {"material": "Li6PS5Cl"}})
    >>> round(r.volume_fractions()["electrolyte"], 3)
    0.4
    """

    shape: tuple[int, int, int]
    voxel_size_um: tuple[float, float, float]
    active: ActiveSpec
    electrolyte: ElectrolyteSpec
    porosity: PorositySpec = field(default_factory=PorositySpec)
    cbd: CBDSpec = field(default_factory=CBDSpec)
    packing: PackingSpec = field(default_factory=PackingSpec)
    seed: int = 0
    boundary: str = "periodic"
    fractions: str = "volume"
    densities_g_per_cm3: tuple[tuple[str, float], ...] = ()
    name: str = ""
    source: str = ""

    def __post_init__(self):
        shape = self.shape
        if (not isinstance(shape, (list, tuple)) or len(shape) != 3
                or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 8 for n in shape)):
            raise RecipeError(f"domain.shape = {shape!r} must be three integers >= 8 (voxels along z, y, x)")
        object.__setattr__(self, "shape", tuple(int(n) for n in shape))
        try:
            object.__setattr__(self, "voxel_size_um", check_voxel_size(self.voxel_size_um))
        except ValueError as exc:
            raise RecipeError(f"domain.voxel_size_um: {exc}") from None
        if self.boundary not in ("periodic", "walled"):
            raise RecipeError(f"boundary = {self.boundary!r} must be 'periodic' or 'walled'")
        if self.fractions not in ("volume", "weight"):
            raise RecipeError(f"fractions = {self.fractions!r} must be 'volume' or 'weight'")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise RecipeError(f"seed = {self.seed!r} must be an integer >= 0")
        object.__setattr__(self, "densities_g_per_cm3", tuple((str(k), float(v)) for k, v in self.densities_g_per_cm3))
        self._check_phases()
        self.volume_fractions()  # raises when the fractions do not add up
        self._check_sizes()

    # -- validation ---------------------------------------------------------
    def _check_phases(self) -> None:
        a, e, p, c, k = self.active, self.electrolyte, self.porosity, self.cbd, self.packing
        for where, spec in (("active", a), ("electrolyte", e), ("cbd", c)):
            try:
                get_material(spec.material)
            except ValueError as exc:
                raise RecipeError(f"{where}.material: {exc}") from None
        _number(a.fraction, "active.fraction", 0.0, 1.0, lo_open=True)
        if e.form not in ("matrix", "particles"):
            raise RecipeError(f"electrolyte.form = {e.form!r} must be 'matrix' or 'particles'")
        if e.form == "particles" and e.size is None:
            raise RecipeError("electrolyte.form = 'particles' needs electrolyte.size (e.g. { d50_um = 1.5, gsd = 1.3 })")
        if e.fraction is not None:
            _number(e.fraction, "electrolyte.fraction", 0.0, 1.0, lo_open=True)
        _number(p.fraction, "porosity.fraction", 0.0, 0.6)
        if p.filled_with not in (None, "electrolyte"):
            raise RecipeError(f"porosity.filled_with = {p.filled_with!r} must be 'electrolyte' (or left out)")
        if p.fraction > 0 and e.form == "matrix" and p.size is None:
            raise RecipeError("porosity in a matrix electrolyte needs porosity.size, the void diameters "
                              "(e.g. { d50_um = 1.0, gsd = 1.5 })")
        _number(c.fraction, "cbd.fraction", 0.0, 0.5)
        if c.placement not in ("bridges", "film", "agglomerates"):
            raise RecipeError(f"cbd.placement = {c.placement!r} must be 'bridges', 'film' or 'agglomerates'")
        if c.fraction > 0 and c.placement == "agglomerates" and c.size is None:
            raise RecipeError("cbd.placement = 'agglomerates' needs cbd.size, the agglomerate diameters")
        _number(k.tolerance, "packing.tolerance", 0.0, 0.2, lo_open=True)
        _number(k.compaction, "packing.compaction", 0.0, 0.5)
        if k.compaction_axis not in AXIS_NAMES:
            raise RecipeError(f"packing.compaction_axis = {k.compaction_axis!r} must be 'z', 'y' or 'x'")
        _number(k.max_fraction, "packing.max_fraction", 0.3, 0.8)
        if isinstance(k.max_sweeps, bool) or not isinstance(k.max_sweeps, int) or k.max_sweeps < 100:
            raise RecipeError(f"packing.max_sweeps = {k.max_sweeps!r} must be an integer >= 100")
        for name, rho in self.densities_g_per_cm3:
            _number(rho, f"densities.{name}", 0.0, lo_open=True)

    def _check_sizes(self) -> None:
        box = min(n * d for n, d in zip(self.shape, self.voxel_size_um))
        voxel = max(self.voxel_size_um)
        for where, size in (("active.size", self.active.size), ("electrolyte.size", self.electrolyte.size),
                            ("porosity.size", self.porosity.size), ("cbd.size", self.cbd.size)):
            if size is None:
                continue
            lo, hi = size.bounds_um
            stretch = 1.0
            if where == "active.size" and not self.active.shape.is_sphere:
                ar = self.active.shape.aspect_ratio
                stretch = max(ar ** (2.0 / 3.0), ar ** (-1.0 / 3.0))
            if hi * stretch > box / 2:
                raise RecipeError(f"{where}: particles up to {hi * stretch:.3g} um do not fit a domain of "
                                  f"{box:.3g} um (the box must be at least twice the largest particle); "
                                  f"enlarge domain.shape or lower max_um")
            if size.number_median_um < 2 * voxel:
                raise RecipeError(f"{where}: median diameter {size.number_median_um:.3g} um is under two voxels "
                                  f"of {voxel:.3g} um; use a smaller domain.voxel_size_um")

    # -- fractions ----------------------------------------------------------
    def density(self, material: str) -> float:
        """Density in g/cm3 of a material: the recipe's [densities] entry or the preset's."""
        for name, rho in self.densities_g_per_cm3:
            if name == material:
                return rho
        rho = get_material(material).density_g_per_cm3
        if rho is None:
            raise RecipeError(f"material {material!r} has no density; add it under [densities] in g/cm3")
        return rho

    def solid_fractions(self) -> dict[str, float]:
        """Parts of the solids as given (volume or weight basis), the electrolyte filled in."""
        a, e, c = self.active.fraction, self.electrolyte.fraction, self.cbd.fraction
        if e is None:
            e = 1.0 - a - c
            if e <= 1e-9:
                raise RecipeError(f"active ({a}) and cbd ({c}) fractions leave no electrolyte; they are parts of "
                                  "the solids and must sum to less than 1")
        elif abs(a + e + c - 1.0) > 1e-6:
            raise RecipeError(f"solid fractions active {a} + electrolyte {e} + cbd {c} = {a + e + c:.6g}; they are "
                              "parts of the solids and must sum to 1 (or leave out electrolyte.fraction)")
        return {"active": a, "electrolyte": e, "CBD": c}

    def volume_fractions(self, placed: bool = False) -> dict[str, float]:
        """Target volume fraction of each phase in the whole volume (they sum to 1).

        With ``porosity.filled_with = "electrolyte"`` the voids are part of the electrolyte
        (pore 0); ``placed=True`` gives the split before they are filled, which is what
        the generator places.
        """
        parts = self.solid_fractions()
        if self.fractions == "weight":
            materials = {"active": self.active.material, "electrolyte": self.electrolyte.material,
                         "CBD": self.cbd.material}
            parts = {k: v / self.density(materials[k]) for k, v in parts.items()}
        total = sum(parts.values())
        solid = 1.0 - self.porosity.fraction
        out = {k: solid * v / total for k, v in parts.items()}
        out["pore"] = self.porosity.fraction
        if self.porosity.filled_with == "electrolyte" and not placed:
            out["electrolyte"] += out["pore"]
            out["pore"] = 0.0
        return out

    # -- conversion ---------------------------------------------------------
    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> "Recipe":
        """Build from the nested mapping of a TOML recipe."""
        top = {"name", "source", "seed", "boundary", "fractions", "domain", "active", "electrolyte", "porosity",
               "cbd", "packing", "densities"}
        _check_keys(doc, top, "recipe")
        for key in ("domain", "active", "electrolyte"):
            if key not in doc:
                raise RecipeError(f"recipe has no [{key}] table; add it (see microsim.generate.recipe for the layout)")
        dom = doc["domain"]
        _check_keys(dom, {"shape", "voxel_size_um"}, "[domain]")
        for key in ("shape", "voxel_size_um"):
            if key not in dom:
                raise RecipeError(f"[domain] has no {key}")
        shape = dom["shape"]
        if isinstance(shape, int):
            shape = [shape] * 3

        def spec(cls_, key, required=(), sized=(), shaped=False):
            table = doc.get(key, {})
            names = {f.name for f in fields(cls_)}
            _check_keys(table, names, f"[{key}]")
            for r in required:
                if r not in table:
                    raise RecipeError(f"[{key}] has no {r}")
            kw = dict(table)
            if "size" in kw:
                kw["size"] = SizeDistribution.from_dict(kw["size"], f"{key}.size")
            if "shape" in kw and shaped:
                kw["shape"] = Shape.from_dict(kw["shape"], f"{key}.shape")
            return cls_(**kw)

        active = spec(ActiveSpec, "active", ("material", "fraction", "size"), shaped=True)
        electrolyte = spec(ElectrolyteSpec, "electrolyte", ("material",))
        porosity = spec(PorositySpec, "porosity")
        cbd = spec(CBDSpec, "cbd")
        packing = spec(PackingSpec, "packing")
        dens = doc.get("densities", {})
        if not isinstance(dens, Mapping):
            raise RecipeError("[densities] must be a table of material = g/cm3")
        return cls(shape=tuple(shape) if isinstance(shape, list) else shape, voxel_size_um=dom["voxel_size_um"],
                   active=active, electrolyte=electrolyte, porosity=porosity, cbd=cbd, packing=packing,
                   seed=doc.get("seed", 0), boundary=doc.get("boundary", "periodic"),
                   fractions=doc.get("fractions", "volume"), densities_g_per_cm3=tuple(dens.items()),
                   name=str(doc.get("name", "")), source=str(doc.get("source", "")))

    def to_dict(self) -> dict:
        def plain(obj):
            out = {}
            for f in fields(obj):
                v = getattr(obj, f.name)
                if v is None:
                    continue
                out[f.name] = v.to_dict() if hasattr(v, "to_dict") else v
            return out

        return {"name": self.name, "source": self.source, "seed": self.seed, "boundary": self.boundary,
                "fractions": self.fractions,
                "domain": {"shape": list(self.shape), "voxel_size_um": list(self.voxel_size_um)},
                "active": plain(self.active), "electrolyte": plain(self.electrolyte),
                "porosity": plain(self.porosity), "cbd": plain(self.cbd), "packing": plain(self.packing),
                "densities": dict(self.densities_g_per_cm3)}

    def with_changes(self, **changes) -> "Recipe":
        """A copy with top-level fields replaced (e.g. ``seed=3`` or ``shape=(64, 64, 64)``)."""
        return replace(self, **changes)

    @property
    def periodic(self) -> tuple[bool, bool, bool]:
        return (self.boundary == "periodic",) * 3

    @property
    def box_um(self) -> tuple[float, float, float]:
        return tuple(n * d for n, d in zip(self.shape, self.voxel_size_um))


def load_recipe(path: str | Path) -> Recipe:
    """Read a recipe TOML file.

    >>> load_recipe("samples/recipes/nmc_li6ps5cl_70_30_wt.toml").active.material  # doctest: +SKIP
    'NMC811'
    """
    path = Path(path)
    doc = read_toml(path, "recipe", RecipeError, "check the path (presets are in samples/recipes)")
    try:
        return Recipe.from_dict(doc)
    except RecipeError as exc:
        raise RecipeError(f"{path}: {exc}") from None
    except TypeError as exc:  # a value of the wrong type reached a dataclass
        raise RecipeError(f"{path}: {exc}") from None
