"""Material presets: literature conductivities at room temperature.

Each :class:`Material` cites where its numbers come from and at which
temperature they were measured. Conductivities are in S/m (1 S/cm = 100 S/m);
an electrolyte's electronic conductivity and an insulator's conductivities are
small or zero. A user overrides any value in the phase table (see
:mod:`microsim.phases`); these presets are starting points, not truths about a
particular sample.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Material:
    """Bulk properties of one material.

    Parameters
    ----------
    name : str
        Preset name used in phase tables and recipes.
    kind : str
        'electrolyte', 'active', 'conductive_additive', 'binder' or 'void'.
    sigma_ionic_S_per_m, sigma_electronic_S_per_m : float
        Conductivities in S/m.
    density_g_per_cm3 : float or None
        Density (for weight-to-volume fractions).
    temperature_C : float or None
        Temperature of the conductivity measurement.
    source : str
        Citation of the conductivity (and density) values.
    """

    name: str
    kind: str
    sigma_ionic_S_per_m: float
    sigma_electronic_S_per_m: float
    density_g_per_cm3: float | None
    temperature_C: float | None
    source: str

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _materials() -> dict[str, Material]:
    rows = [
        Material("Li3PS4", "electrolyte", 1.6e-2, 0.0, 1.87, 25.0,
                 "beta-Li3PS4, 1.6e-4 S/cm at 25 C: Liu et al., J. Am. Chem. Soc. 135 (2013) 975"),
        Material("Li6PS5Cl", "electrolyte", 1.33e-1, 0.0, 1.64, 25.0,
                 "argyrodite Li6PS5Cl, 1.33e-3 S/cm at 25 C: Boulineau et al., Solid State Ionics 221 (2012) 1"),
        Material("Li10GeP2S12", "electrolyte", 1.2, 0.0, 2.04, 27.0,
                 "LGPS, 1.2e-2 S/cm at 27 C: Kamaya et al., Nat. Mater. 10 (2011) 682"),
        Material("Li3PS4-LiI", "electrolyte", 7.0e-2, 0.0, 1.9, 25.0,
                 "Li3PS4-LiI glass, 0.7 mS/cm at room temperature, as used for LCO composite cathodes"),
        Material("LLZO", "electrolyte", 3.0e-2, 0.0, 5.1, 25.0,
                 "cubic Li7La3Zr2O12, 3e-4 S/cm at 25 C: Murugan et al., Angew. Chem. Int. Ed. 46 (2007) 7778"),
        Material("NMC811", "active", 1.0e-6, 1.0e-3, 4.75, 25.0,
                 "LiNi0.8Mn0.1Co0.1O2, order-of-magnitude values at 25 C"),
        Material("LCO", "active", 1.0e-6, 1.0e-2, 5.05, 25.0,
                 "LiCoO2, order-of-magnitude values at 25 C"),
        Material("carbon_black", "conductive_additive", 0.0, 1.0e3, 1.9, 25.0,
                 "compacted carbon black, order-of-magnitude value"),
        Material("binder", "binder", 0.0, 0.0, 1.78, None,
                 "PVDF-type binder, treated as an insulator"),
        Material("pore", "void", 0.0, 0.0, None, None,
                 "empty pore in a solid-state electrode: no conduction"),
    ]
    return {m.name: m for m in rows}


def material_names() -> tuple[str, ...]:
    """Names of all presets."""
    return tuple(_materials())


def get_material(name: str) -> Material:
    """The preset called ``name``.

    >>> get_material("Li10GeP2S12").sigma_ionic_S_per_m
    1.2
    """
    table = _materials()
    if name not in table:
        raise ValueError(f"unknown material {name!r}; presets are: {', '.join(table)}")
    return table[name]
