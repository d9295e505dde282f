"""Phase tables: which label value is which phase, and how well it conducts.

A :class:`PhaseTable` maps phase names to label values and to their ionic and
electronic conductivities in S/m. Tables come from Python, from a TOML file or
from the material presets in :mod:`microsim.materials`.

TOML layout (one table per phase; a ``material`` key takes the preset's
conductivities, explicit keys override them)::

    [phases.pore]
    label = 0
    material = "pore"

    [phases.NMC]
    label = 85
    material = "NMC811"

    [phases.CBD]
    label = 170
    material = "carbon_black"
    sigma_ionic_S_per_m = 0.0
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from .materials import get_material
from .tomlio import read_toml

CARRIERS = ("ionic", "electronic")


class PhaseTableError(ValueError):
    """A phase table is malformed; the message names the problem and the fix."""


@dataclass(frozen=True)
class Phase:
    """One phase of a labelled volume.

    Parameters
    ----------
    name : str
        Phase name, unique within a table (e.g. ``"NMC"``).
    label : int
        Label value 0-255 that marks this phase in the volume.
    sigma_ionic_S_per_m, sigma_electronic_S_per_m : float
        Bulk conductivities in S/m, finite and >= 0 (0 = insulating).
    material : str or None
        Preset the conductivities came from, if any.
    density_g_per_cm3 : float or None
        Density, used to turn weight fractions into volume fractions.
    """

    name: str
    label: int
    sigma_ionic_S_per_m: float = 0.0
    sigma_electronic_S_per_m: float = 0.0
    material: str | None = None
    density_g_per_cm3: float | None = None

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise PhaseTableError(f"phase name {self.name!r} is not a non-empty string; give every phase a name")
        if isinstance(self.label, bool) or not isinstance(self.label, (int, np.integer)) or not 0 <= int(self.label) <= 255:
            raise PhaseTableError(
                f"phase {self.name!r}: label {self.label!r} is not an integer in 0..255; use the label value of the uint8 volume")
        object.__setattr__(self, "label", int(self.label))
        for carrier in CARRIERS:
            key = f"sigma_{carrier}_S_per_m"
            value = getattr(self, key)
            if isinstance(value, (str, bytes, bool)):
                raise PhaseTableError(f"phase {self.name!r}: {key} = {value!r} is not a number (write it without "
                                      "quotes); give it in S/m")
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise PhaseTableError(f"phase {self.name!r}: {key} = {value!r} is not a number; give it in S/m") from None
            if math.isnan(value) or math.isinf(value) or value < 0:
                raise PhaseTableError(
                    f"phase {self.name!r}: {key} = {value!r} must be finite and >= 0; give it in S/m (0 for an insulator)")
            object.__setattr__(self, key, value)
        if self.density_g_per_cm3 is not None:
            raw = self.density_g_per_cm3
            if isinstance(raw, (str, bytes, bool)) or not isinstance(raw, (int, float, np.integer, np.floating)):
                raise PhaseTableError(f"phase {self.name!r}: density_g_per_cm3 = {raw!r} is not a number (write it "
                                      "without quotes); give it in g/cm3")
            d = float(raw)
            if not d > 0 or math.isinf(d):
                raise PhaseTableError(f"phase {self.name!r}: density_g_per_cm3 = {d!r} must be > 0")
            object.__setattr__(self, "density_g_per_cm3", d)

    def sigma_S_per_m(self, carrier: str) -> float:
        """Conductivity in S/m for ``carrier`` ('ionic' or 'electronic')."""
        return getattr(self, f"sigma_{check_carrier(carrier)}_S_per_m")

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "label": self.label,
            "sigma_ionic_S_per_m": self.sigma_ionic_S_per_m,
            "sigma_electronic_S_per_m": self.sigma_electronic_S_per_m,
            "material": self.material,
            "density_g_per_cm3": self.density_g_per_cm3,
        }


def check_carrier(carrier: str) -> str:
    if carrier not in CARRIERS:
        raise PhaseTableError(f"carrier {carrier!r} is not one of {', '.join(CARRIERS)}")
    return carrier


@dataclass(frozen=True)
class PhaseTable:
    """An ordered set of :class:`Phase` with unique names and labels.

    Examples
    --------
    >>> t = PhaseTable.from_dict({"pore": {"label": 0, "material": "pore"},
    ...                           "SE": {"label": 1, "sigma_ionic_S_per_m": 0.1}})
    >>> t["SE"].sigma_ionic_S_per_m
    0.1
    """

    phases: tuple[Phase, ...] = field(default_factory=tuple)

    def __post_init__(self):
        phases = tuple(self.phases)
        object.__setattr__(self, "phases", phases)
        names, labels = set(), set()
        for p in phases:
            if not isinstance(p, Phase):
                raise PhaseTableError(f"{p!r} is not a Phase")
            if p.name in names:
                raise PhaseTableError(f"phase name {p.name!r} appears twice; give each phase a unique name")
            if p.label in labels:
                raise PhaseTableError(f"label {p.label} is used by two phases; give each phase its own label value")
            names.add(p.name)
            labels.add(p.label)

    # -- access -------------------------------------------------------------
    def __iter__(self):
        return iter(self.phases)

    def __len__(self):
        return len(self.phases)

    def __contains__(self, name: str) -> bool:
        return any(p.name == name for p in self.phases)

    def __getitem__(self, name: str) -> Phase:
        for p in self.phases:
            if p.name == name:
                return p
        raise KeyError(f"no phase named {name!r}; the table has {', '.join(self.names) or 'no phases'}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.phases)

    @property
    def labels(self) -> tuple[int, ...]:
        return tuple(p.label for p in self.phases)

    def by_label(self, label: int) -> Phase:
        for p in self.phases:
            if p.label == int(label):
                return p
        raise KeyError(f"no phase has label {label}")

    def labels_of(self, names: str | Iterable[str]) -> tuple[int, ...]:
        """Label values of one phase name or several (a union of phases)."""
        if isinstance(names, str):
            names = [names]
        return tuple(self[n].label for n in names)

    def conductivity_lut(self, carrier: str) -> np.ndarray:
        """float64 array of length 256: conductivity in S/m of each label value (0 where unused)."""
        lut = np.zeros(256, dtype=np.float64)
        for p in self.phases:
            lut[p.label] = p.sigma_S_per_m(carrier)
        return lut

    def conducting(self, carrier: str) -> tuple[Phase, ...]:
        return tuple(p for p in self.phases if p.sigma_S_per_m(carrier) > 0)

    # -- changes ------------------------------------------------------------
    def with_phase(self, phase: Phase) -> "PhaseTable":
        """A new table with ``phase`` added, or replacing the phase of that name."""
        rest = tuple(p for p in self.phases if p.name != phase.name)
        return PhaseTable(rest + (phase,))

    def with_conductivity(self, name: str, carrier: str, sigma_S_per_m: float) -> "PhaseTable":
        """A new table where phase ``name`` conducts ``carrier`` with ``sigma_S_per_m``."""
        p = self[name]
        new = replace(p, **{f"sigma_{check_carrier(carrier)}_S_per_m": sigma_S_per_m})
        return PhaseTable(tuple(new if q.name == name else q for q in self.phases))

    # -- construction -------------------------------------------------------
    @classmethod
    def from_dict(cls, spec: Mapping[str, Mapping]) -> "PhaseTable":
        """Build from ``{name: {label, material?, sigma_ionic_S_per_m?, ...}}``."""
        allowed = {"label", "material", "sigma_ionic_S_per_m", "sigma_electronic_S_per_m", "density_g_per_cm3"}
        phases = []
        for name, row in spec.items():
            if not isinstance(row, Mapping):
                raise PhaseTableError(f"phase {name!r} must be a table with at least 'label'")
            unknown = set(row) - allowed
            if unknown:
                raise PhaseTableError(
                    f"phase {name!r}: unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(allowed))}")
            if "label" not in row:
                raise PhaseTableError(f"phase {name!r} has no 'label'; add the label value it has in the volume")
            values = {}
            material = row.get("material")
            if material is not None:
                m = get_material(material)
                values.update(sigma_ionic_S_per_m=m.sigma_ionic_S_per_m,
                              sigma_electronic_S_per_m=m.sigma_electronic_S_per_m,
                              density_g_per_cm3=m.density_g_per_cm3)
            values.update({k: v for k, v in row.items() if k not in ("label", "material")})
            phases.append(Phase(name=str(name), label=row["label"], material=material, **values))
        return cls(tuple(phases))

    @classmethod
    def from_toml(cls, path: str | Path) -> "PhaseTable":
        """Read a phase table from a TOML file with a ``[phases.NAME]`` table per phase."""
        doc = read_toml(path, "phase table", PhaseTableError)
        return cls.from_mapping(doc, source=str(path))

    @classmethod
    def from_mapping(cls, doc: Mapping, source: str = "phase table") -> "PhaseTable":
        if "phases" not in doc or not isinstance(doc["phases"], Mapping) or not doc["phases"]:
            raise PhaseTableError(f"{source}: no [phases.NAME] tables; add one per phase with its label")
        try:
            return cls.from_dict(doc["phases"])
        except ValueError as exc:  # PhaseTableError and an unknown material preset alike
            raise PhaseTableError(f"{source}: {exc}") from None

    def to_dict(self) -> dict:
        return {"phases": [p.to_dict() for p in self.phases]}

    def to_toml(self) -> str:
        """TOML text that :meth:`from_toml` reads back to an equal table."""
        lines = []
        for p in self.phases:
            lines.append(f'[phases."{p.name}"]')
            lines.append(f"label = {p.label}")
            if p.material is not None:
                lines.append(f'material = "{p.material}"')
            lines.append(f"sigma_ionic_S_per_m = {p.sigma_ionic_S_per_m!r}")
            lines.append(f"sigma_electronic_S_per_m = {p.sigma_electronic_S_per_m!r}")
            if p.density_g_per_cm3 is not None:
                lines.append(f"density_g_per_cm3 = {p.density_g_per_cm3!r}")
            lines.append("")
        return "\n".join(lines)


def phase_table(spec: Mapping[str, Mapping] | PhaseTable | str | Path) -> PhaseTable:
    """Coerce a dict, a TOML path or a table to a :class:`PhaseTable`."""
    if isinstance(spec, PhaseTable):
        return spec
    if isinstance(spec, (str, Path)):
        return PhaseTable.from_toml(spec)
    return PhaseTable.from_dict(spec)


def two_phase_table(sigma_S_per_m: float = 1.0, conducting_label: int = 1, other_label: int = 0,
                    carrier: str = "ionic") -> PhaseTable:
    """A table for a binary volume: ``conducting_label`` conducts ``carrier``, the other label is insulating.

    >>> two_phase_table(2.0)["conducting"].sigma_ionic_S_per_m
    2.0
    """
    key = f"sigma_{check_carrier(carrier)}_S_per_m"
    return PhaseTable((Phase("insulating", other_label), Phase("conducting", conducting_label, **{key: sigma_S_per_m})))
