"""Material presets: literature conductivities and densities near room temperature.

Every :class:`Material` says where its numbers come from and at which
temperature the conductivities were measured. Conductivities are in S/m
(1 S/cm = 100 S/m, 1 mS/cm = 0.1 S/m). Numbers that are not a measured value
taken from the cited work are listed in :attr:`Material.estimates` and the
:attr:`Material.note` states how they were obtained. A phase table overrides any
value (see :mod:`microsim.phases`); presets are starting points, not truths
about a particular sample, and several of them (the active materials above all)
change by orders of magnitude with state of charge, processing and pressure.

Examples
--------
>>> get_material("Li10GeP2S12").sigma_ionic_S_per_m
1.2
>>> "NMC811" in material_names()
True
"""
from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass

KINDS = ("electrolyte", "active", "conductive_additive", "binder", "void")
ESTIMABLE = ("sigma_ionic_S_per_m", "sigma_electronic_S_per_m", "density_g_per_cm3")

# CODATA 2018 exact values; used for the Nernst-Einstein estimates below.
FARADAY_C_PER_MOL = 96485.33212
GAS_CONSTANT_J_PER_MOL_K = 8.314462618
AVOGADRO_PER_MOL = 6.02214076e23

# Standard atomic weights (IUPAC, abridged to the elements used here), g/mol.
_ATOMIC_WEIGHT = {"Li": 6.94, "O": 15.999, "P": 30.974, "S": 32.06, "Cl": 35.45, "Mn": 54.938,
                  "Co": 58.933, "Ni": 58.693, "Ge": 72.630, "Zr": 91.224, "I": 126.904, "La": 138.905}


class UnknownMaterialError(ValueError):
    """A material name is not one of the presets; the message lists them."""


@dataclass(frozen=True)
class Material:
    """Bulk properties of one material.

    Parameters
    ----------
    name : str
        Preset name used in phase tables (``material = "..."``).
    kind : str
        One of :data:`KINDS`.
    sigma_ionic_S_per_m, sigma_electronic_S_per_m : float
        Li-ion and electronic conductivity in S/m, finite and >= 0 (0 = blocking).
    density_g_per_cm3 : float or None
        Density in g/cm3 (for weight-to-volume fractions); None for empty pore.
    temperature_C : float or None
        Temperature of the conductivity measurement in degC; None only when no
        measurement is behind the numbers, and then ``note`` says why.
    source : str
        Citation(s): authors, journal, volume, first page, year.
    note : str
        Composition, state of charge, how estimates were made, caveats.
    estimates : tuple of str
        Which of ``sigma_ionic_S_per_m``, ``sigma_electronic_S_per_m`` and
        ``density_g_per_cm3`` are estimates rather than a value read from the
        cited work.
    """

    name: str
    kind: str
    sigma_ionic_S_per_m: float
    sigma_electronic_S_per_m: float
    density_g_per_cm3: float | None
    temperature_C: float | None
    source: str
    note: str = ""
    estimates: tuple[str, ...] = ()

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"material {self.name!r}: kind {self.kind!r} is not one of {', '.join(KINDS)}")
        for key in ("sigma_ionic_S_per_m", "sigma_electronic_S_per_m"):
            value = getattr(self, key)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"material {self.name!r}: {key} = {value!r} must be a finite number >= 0 (S/m)")
        if self.density_g_per_cm3 is not None and not self.density_g_per_cm3 > 0:
            raise ValueError(f"material {self.name!r}: density_g_per_cm3 must be > 0 or None")
        if not self.source.strip():
            raise ValueError(f"material {self.name!r}: give a source for its numbers")
        if self.temperature_C is None and not self.note.strip():
            raise ValueError(f"material {self.name!r}: no temperature_C; say in the note why there is none")
        unknown = set(self.estimates) - set(ESTIMABLE)
        if unknown:
            raise ValueError(f"material {self.name!r}: estimates {sorted(unknown)} are not among {', '.join(ESTIMABLE)}")
        object.__setattr__(self, "estimates", tuple(self.estimates))

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["estimates"] = list(self.estimates)
        return d


def formula_mass_g_per_mol(formula: str) -> float:
    """Molar mass of a chemical formula with optional fractional counts.

    >>> round(formula_mass_g_per_mol("LiCoO2"), 2)
    97.87
    """
    tokens = re.findall(r"([A-Z][a-z]?)(\d*\.?\d*)", formula)
    if "".join(el + n for el, n in tokens) != formula:
        raise ValueError(f"cannot parse formula {formula!r}; write it like 'LiNi0.8Mn0.1Co0.1O2'")
    return sum(_ATOMIC_WEIGHT[el] * (float(n) if n else 1.0) for el, n in tokens)


def crystal_density_g_per_cm3(formula: str, cell_volume_A3: float, formula_units_per_cell: int) -> float:
    """X-ray (crystallographic) density from the unit cell.

    ``rho = Z * M / (N_A * V)`` with V in cubic angstrom (1e-24 cm3).

    >>> round(crystal_density_g_per_cm3("LiCoO2", hexagonal_cell_volume_A3(2.816, 14.05), 3), 2)
    5.05
    """
    return formula_units_per_cell * formula_mass_g_per_mol(formula) / (AVOGADRO_PER_MOL * cell_volume_A3 * 1e-24)


def hexagonal_cell_volume_A3(a_A: float, c_A: float) -> float:
    """Volume of a hexagonal cell (a = b, gamma = 120 deg) in cubic angstrom."""
    return math.sqrt(3.0) / 2.0 * a_A * a_A * c_A


def nernst_einstein_S_per_m(diffusivity_m2_per_s: float, concentration_mol_per_m3: float,
                            temperature_C: float = 25.0, charge: int = 1) -> float:
    """Conductivity of one mobile species from its diffusivity: sigma = c z^2 F^2 D / (R T).

    Using a *chemical* diffusion coefficient (GITT, PITT) ignores the
    thermodynamic factor, which for intercalation oxides is well above 1, so the
    result is an upper estimate.

    >>> round(nernst_einstein_S_per_m(1e-11, 1000.0), 4)
    0.0376
    """
    temperature_K = temperature_C + 273.15
    return concentration_mol_per_m3 * charge**2 * FARADAY_C_PER_MOL**2 * diffusivity_m2_per_s / (
        GAS_CONSTANT_J_PER_MOL_K * temperature_K)


def _li_per_m3(formula: str, density_g_per_cm3: float, li_per_formula: float = 1.0) -> float:
    """Li concentration in mol/m3 of a dense phase."""
    return li_per_formula * density_g_per_cm3 / formula_mass_g_per_mol(formula) * 1e6


def _materials() -> dict[str, Material]:
    rho_li3ps4 = crystal_density_g_per_cm3("Li3PS4", 12.82 * 8.22 * 6.12, 4)
    rho_argyrodite = crystal_density_g_per_cm3("Li6PS5Cl", 9.85**3, 4)
    rho_lgps = crystal_density_g_per_cm3("Li10GeP2S12", 8.7177**2 * 12.6345, 2)
    rho_llzo = crystal_density_g_per_cm3("Li7La3Zr2O12", 12.97**3, 8)
    rho_nmc = crystal_density_g_per_cm3("LiNi0.8Mn0.1Co0.1O2", hexagonal_cell_volume_A3(2.871, 14.20), 3)
    rho_lco = crystal_density_g_per_cm3("LiCoO2", hexagonal_cell_volume_A3(2.816, 14.05), 3)
    # Ideal mixing (additive volumes) of 2 Li3PS4 + LiI; LiI taken as 4.08 g/cm3.
    mass_2lps_lii = 2 * formula_mass_g_per_mol("Li3PS4") + formula_mass_g_per_mol("LiI")
    rho_lps_lii = mass_2lps_lii / (2 * formula_mass_g_per_mol("Li3PS4") / rho_li3ps4
                                   + formula_mass_g_per_mol("LiI") / 4.08)
    # Lowest GITT chemical diffusivity on discharge for NMC532 (1.9e-11 cm2/s) and
    # the order of EIS/PITT values on LiCoO2 films (1e-12 cm2/s); both in m2/s.
    d_nmc_m2_per_s = 1.9e-11 * 1e-4
    d_lco_m2_per_s = 1e-12 * 1e-4
    sigma_ion_nmc = nernst_einstein_S_per_m(d_nmc_m2_per_s, _li_per_m3("LiNi0.8Mn0.1Co0.1O2", rho_nmc))
    sigma_ion_lco = nernst_einstein_S_per_m(d_lco_m2_per_s, _li_per_m3("LiCoO2", rho_lco))

    blocking = ("Electronic conductivity set to 0: the electrolyte is treated as electron-blocking; "
                "no measured electronic conductivity was confirmed for this preset. ")
    rows = [
        Material(
            "Li3PS4", "electrolyte", 1.6e-2, 0.0, round(rho_li3ps4, 3), 25.0,
            "Liu et al., J. Am. Chem. Soc. 135 (2013) 975 (nanoporous beta-Li3PS4, 1.6e-4 S/cm at 25 C)",
            blocking + "Density: X-ray density of the orthorhombic Pnma cell a = 12.82, b = 8.22, "
            "c = 6.12 A, Z = 4 (cell values not re-checked against a primary source).",
            ("density_g_per_cm3",)),
        Material(
            "Li6PS5Cl", "electrolyte", 1.33e-1, 0.0, round(rho_argyrodite, 3), 25.0,
            "Boulineau et al., Solid State Ionics 221 (2012) 1 (mechanosynthesised argyrodite, 1.33e-3 S/cm "
            "at room temperature)",
            blocking + "Density: X-ray density of the cubic F-43m cell a = 9.85 A, Z = 4.",
            ("density_g_per_cm3",)),
        Material(
            "Li10GeP2S12", "electrolyte", 1.2, 0.0, round(rho_lgps, 3), 27.0,
            "Kamaya et al., Nat. Mater. 10 (2011) 682 (LGPS, 1.2e-2 S/cm at 27 C; tetragonal P4_2/nmc "
            "cell a = 8.7177, c = 12.6345 A, Z = 2)",
            blocking + "Density: X-ray density of the cited cell."),
        Material(
            "Li3PS4-LiI", "electrolyte", 6.3e-2, 0.0, round(rho_lps_lii, 3), 25.0,
            "Rangasamy et al., J. Am. Chem. Soc. 137 (2015) 1384 (Li7P2S8I = 2 Li3PS4 . LiI, "
            "6.3e-4 S/cm at room temperature)",
            blocking + "The often quoted 0.7 mS/cm for Li3PS4-LiI glass could not be traced to a source; the "
            "nearest published value found, 0.63 mS/cm for the 2:1 composition, is used (override "
            "sigma_ionic_S_per_m = 0.07 for 0.7 mS/cm). 'Room temperature' read as 25 C. Density: "
            "additive volumes of 2 beta-Li3PS4 (this table) + LiI (4.08 g/cm3); a glass differs.",
            ("density_g_per_cm3",)),
        Material(
            "LLZO", "electrolyte", 3.0e-2, 0.0, round(rho_llzo, 3), 25.0,
            "Murugan, Thangadurai, Weppner, Angew. Chem. Int. Ed. 46 (2007) 7778 (cubic garnet "
            "Li7La3Zr2O12, total conductivity of order 3e-4 S/cm at 25 C)",
            blocking + "Density: X-ray density of the cubic Ia-3d cell a = 12.97 A, Z = 8.",
            ("density_g_per_cm3",)),
        Material(
            "NMC811", "active", sigma_ion_nmc, 1.0e-5, round(rho_nmc, 3), 25.0,
            "Electronic: Amin and Chiang, J. Electrochem. Soc. 163 (2016) A1512 (NMC333/NMC523, "
            "~1e-7 S/cm fully lithiated rising to ~1e-2 S/cm at Li1-xMO2 x = 0.75). Ionic: Yang et al., "
            "Electrochim. Acta 66 (2012) 88 (NMC532 GITT chemical diffusivity 1.9e-11 to 3.9e-9 cm2/s). "
            "Cell a = 2.871, c = 14.20 A as quoted in Symmetry 16 (2024) 301",
            "LiNi0.8Mn0.1Co0.1O2 in the discharged (fully lithiated, as-made) state. No NMC811-specific "
            "transport measurement was confirmed: the electronic value is the x = 0 value measured on "
            "NMC333/NMC523; for charged electrodes raise it by up to three decades. The ionic value is a "
            "Nernst-Einstein estimate from the lowest NMC532 diffusivity and the Li concentration of "
            "the dense oxide, an upper estimate because the thermodynamic factor is ignored. Density: "
            "X-ray density of the R-3m cell, Z = 3.",
            ("sigma_ionic_S_per_m", "sigma_electronic_S_per_m", "density_g_per_cm3")),
        Material(
            "LCO", "active", sigma_ion_lco, 1.0e-1, round(rho_lco, 3), 25.0,
            "Electronic: Tukamoto and West, J. Electrochem. Soc. 144 (1997) 3164 (Mg doping raises the "
            "room-temperature conductivity of LiCoO2 by more than two decades to ~0.5 S/cm). Ionic: "
            "EIS/PITT Li diffusivities of 6e-13 to 8e-12 cm2/s on (003)-oriented LiCoO2 films made by "
            "pulsed laser deposition (journal details not confirmed)",
            "LiCoO2, as made (fully lithiated). Electronic: the cited work bounds undoped LiCoO2 below "
            "~5e-3 S/cm at room temperature; 1e-3 S/cm is taken as its order of magnitude. Ionic: "
            "Nernst-Einstein estimate with D = 1e-12 cm2/s and the Li concentration of the dense oxide. "
            "Density: X-ray density of the R-3m cell a = 2.816, c = 14.05 A, Z = 3.",
            ("sigma_ionic_S_per_m", "sigma_electronic_S_per_m", "density_g_per_cm3")),
        Material(
            "carbon_black", "conductive_additive", 0.0, 1.0e3, 1.9, 25.0,
            "Sanchez-Gonzalez et al., Carbon 43 (2005) 741 (conductivity of six commercial carbon blacks "
            "under compression, room temperature)",
            "Compacted carbon black powder. 10 S/cm is an order-of-magnitude value, not read from the "
            "cited work, which shows that the conductivity of a compact depends strongly on grade and "
            "pressure; carbon inside a binder domain conducts less. Skeletal density ~1.9 g/cm3, "
            "typical of carbon blacks (estimate). No Li-ion conduction.",
            ("sigma_electronic_S_per_m", "density_g_per_cm3")),
        Material(
            "binder", "binder", 0.0, 0.0, 1.78, None,
            "PVDF-type binder treated as an ideal insulator",
            "No temperature: no measurement is behind the zeros; the binder is idealised as blocking both "
            "carriers. Density 1.78 g/cm3 is a typical PVDF value (estimate, not cited).",
            ("density_g_per_cm3",)),
        Material(
            "pore", "void", 0.0, 0.0, None, None,
            "Empty pore of a solid-state electrode: no conduction by definition",
            "No temperature and no density: an empty pore carries neither ions nor electrons and has no "
            "mass. A pore filled with liquid electrolyte needs its own phase values."),
    ]
    return {m.name: m for m in rows}


def material_names() -> tuple[str, ...]:
    """Names of all presets, in table order."""
    return tuple(_materials())


def material_table() -> tuple[Material, ...]:
    """All presets, in table order."""
    return tuple(_materials().values())


def get_material(name: str) -> Material:
    """The preset called ``name``.

    Raises :class:`UnknownMaterialError` (a ``ValueError``) with a one-line message
    listing the presets when ``name`` is not one of them.

    >>> get_material("LLZO").kind
    'electrolyte'
    """
    table = _materials()
    if name in table:
        return table[name]
    close = difflib.get_close_matches(str(name), list(table), n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise UnknownMaterialError(f"unknown material {name!r}; {hint}use one of the presets: {', '.join(table)}")
