"""Material presets: every row is complete and sane, derived numbers match their stated basis,
and the phase-table override mechanism works."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

from microsim import PhaseTable, get_material, material_names
from microsim.materials import (ESTIMABLE, KINDS, Material, UnknownMaterialError, crystal_density_g_per_cm3,
                                formula_mass_g_per_mol, hexagonal_cell_volume_A3, material_table,
                                nernst_einstein_S_per_m)

REQUIRED = ("Li3PS4", "Li6PS5Cl", "Li10GeP2S12", "Li3PS4-LiI", "LLZO", "NMC811", "LCO", "carbon_black",
            "binder", "pore")
README = Path(__file__).resolve().parents[1] / "README.md"


def one_line(excinfo) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg, msg
    return msg


def test_required_presets_present():
    assert set(REQUIRED) <= set(material_names())
    assert len(set(material_names())) == len(material_names())


@pytest.mark.parametrize("name", REQUIRED)
def test_preset_row_is_complete(name):
    m = get_material(name)
    assert isinstance(m, Material) and m.name == name and m.kind in KINDS
    for value in (m.sigma_ionic_S_per_m, m.sigma_electronic_S_per_m):
        assert math.isfinite(value) and value >= 0
    assert m.source.strip()
    # A missing temperature must be explained.
    assert m.temperature_C is not None or "temperature" in m.note.lower()
    assert set(m.estimates) <= set(ESTIMABLE)
    if m.estimates:
        assert m.note.strip()
    d = m.to_dict()
    assert d["name"] == name and d["sigma_ionic_S_per_m"] == m.sigma_ionic_S_per_m
    assert isinstance(d["estimates"], list)


def test_physical_ordering_of_presets():
    # Values that any correct table must satisfy, independent of the exact citations.
    by = {m.name: m for m in material_table()}
    electrolytes = [m for m in by.values() if m.kind == "electrolyte"]
    assert electrolytes and all(m.sigma_ionic_S_per_m > 0 for m in electrolytes)
    assert all(m.sigma_ionic_S_per_m > 100 * m.sigma_electronic_S_per_m for m in electrolytes)
    assert by["Li10GeP2S12"].sigma_ionic_S_per_m > by["Li6PS5Cl"].sigma_ionic_S_per_m > by["Li3PS4"].sigma_ionic_S_per_m
    assert by["carbon_black"].sigma_electronic_S_per_m > 1000 * by["NMC811"].sigma_electronic_S_per_m
    assert by["carbon_black"].sigma_ionic_S_per_m == 0
    for name in ("binder", "pore"):
        assert by[name].sigma_ionic_S_per_m == by[name].sigma_electronic_S_per_m == 0
    assert by["pore"].density_g_per_cm3 is None
    for m in by.values():
        if m.name != "pore":
            assert 1.0 < m.density_g_per_cm3 < 6.0, m.name


def test_literature_values_in_S_per_m():
    # Spot checks of the unit conversion S/cm -> S/m against the values quoted in the sources.
    assert get_material("Li10GeP2S12").sigma_ionic_S_per_m == pytest.approx(1.2e-2 * 100)
    assert get_material("Li3PS4").sigma_ionic_S_per_m == pytest.approx(1.6e-4 * 100)
    assert get_material("Li6PS5Cl").sigma_ionic_S_per_m == pytest.approx(1.33e-3 * 100)
    assert get_material("Li3PS4-LiI").sigma_ionic_S_per_m == pytest.approx(0.63e-3 * 100)
    assert get_material("Li10GeP2S12").temperature_C == 27.0


def test_formula_mass_and_crystal_density():
    assert formula_mass_g_per_mol("Li2O") == pytest.approx(2 * 6.94 + 15.999)
    assert formula_mass_g_per_mol("LiNi0.8Mn0.1Co0.1O2") == pytest.approx(
        6.94 + 0.8 * 58.693 + 0.1 * 54.938 + 0.1 * 58.933 + 2 * 15.999)
    with pytest.raises(ValueError):
        formula_mass_g_per_mol("li3ps4")
    # Cubic Li2O (antifluorite, a = 4.619 A, Z = 4) has an X-ray density of 2.013 g/cm3.
    assert crystal_density_g_per_cm3("Li2O", 4.619**3, 4) == pytest.approx(2.013, abs=0.005)
    # A hexagonal cell of unit edges has volume sqrt(3)/2.
    assert hexagonal_cell_volume_A3(1.0, 1.0) == pytest.approx(math.sqrt(3) / 2)


def test_preset_densities_match_their_stated_cells():
    # The densities in the table are the X-ray densities of the cells named in their notes.
    assert get_material("Li10GeP2S12").density_g_per_cm3 == pytest.approx(
        crystal_density_g_per_cm3("Li10GeP2S12", 8.7177**2 * 12.6345, 2), abs=1e-3)
    assert get_material("LLZO").density_g_per_cm3 == pytest.approx(
        crystal_density_g_per_cm3("Li7La3Zr2O12", 12.97**3, 8), abs=1e-3)
    assert get_material("LCO").density_g_per_cm3 == pytest.approx(5.05, abs=0.01)


def test_nernst_einstein_estimates():
    # sigma = c F^2 D / (R T), computed by hand for 1 mol/L and D = 1e-9 m2/s at 25 C.
    F, R, T = 96485.33212, 8.314462618, 298.15
    assert nernst_einstein_S_per_m(1e-9, 1000.0) == pytest.approx(1000.0 * F**2 * 1e-9 / (R * T))
    assert nernst_einstein_S_per_m(1e-9, 1000.0, charge=2) == pytest.approx(4 * nernst_einstein_S_per_m(1e-9, 1000.0))
    # The NMC811 ionic estimate follows from its stated basis: D = 1.9e-11 cm2/s, one Li per formula unit.
    nmc = get_material("NMC811")
    c_li = nmc.density_g_per_cm3 / formula_mass_g_per_mol("LiNi0.8Mn0.1Co0.1O2") * 1e6
    assert nmc.sigma_ionic_S_per_m == pytest.approx(c_li * F**2 * 1.9e-15 / (R * T), rel=1e-3)
    assert "sigma_ionic_S_per_m" in nmc.estimates


def test_unknown_material_is_one_line_listing_presets():
    with pytest.raises(UnknownMaterialError) as e:
        get_material("NMC81")
    msg = one_line(e)
    assert "NMC81" in msg and "did you mean 'NMC811'" in msg
    for name in REQUIRED:
        assert name in msg
    assert isinstance(e.value, ValueError)


def test_toml_material_then_override(tmp_path):
    path = tmp_path / "phases.toml"
    path.write_text('[phases.SE]\nlabel = 0\nmaterial = "Li6PS5Cl"\nsigma_ionic_S_per_m = 0.25\n\n'
                    '[phases.CAM]\nlabel = 1\nmaterial = "NMC811"\n\n'
                    '[phases.void]\nlabel = 2\nmaterial = "pore"\n')
    t = PhaseTable.from_toml(path)
    preset = get_material("Li6PS5Cl")
    assert t["SE"].sigma_ionic_S_per_m == 0.25 != preset.sigma_ionic_S_per_m
    # Keys not overridden come from the preset.
    assert t["SE"].sigma_electronic_S_per_m == preset.sigma_electronic_S_per_m
    assert t["SE"].density_g_per_cm3 == preset.density_g_per_cm3
    assert t["CAM"].sigma_electronic_S_per_m == get_material("NMC811").sigma_electronic_S_per_m
    assert t["SE"].material == "Li6PS5Cl"
    assert t["void"].density_g_per_cm3 is None


def test_toml_misspelt_material(tmp_path):
    path = tmp_path / "phases.toml"
    path.write_text('[phases.SE]\nlabel = 0\nmaterial = "Li6PS5CL"\n')
    with pytest.raises(ValueError) as e:
        PhaseTable.from_toml(path)
    msg = one_line(e)
    assert "Li6PS5CL" in msg and "Li6PS5Cl" in msg and "carbon_black" in msg


def test_invalid_material_rows_rejected():
    with pytest.raises(ValueError):
        Material("x", "electrolyte", -1.0, 0.0, 2.0, 25.0, "somewhere")
    with pytest.raises(ValueError):
        Material("x", "electrolyte", float("nan"), 0.0, 2.0, 25.0, "somewhere")
    with pytest.raises(ValueError):
        Material("x", "metal", 1.0, 0.0, 2.0, 25.0, "somewhere")
    with pytest.raises(ValueError):
        Material("x", "electrolyte", 1.0, 0.0, 2.0, 25.0, " ")
    with pytest.raises(ValueError, match="temperature"):
        Material("x", "electrolyte", 1.0, 0.0, 2.0, None, "somewhere")
    with pytest.raises(ValueError):
        Material("x", "electrolyte", 1.0, 0.0, 2.0, 25.0, "somewhere", "n", ("tau",))


def test_readme_table_lists_every_preset():
    text = README.read_text(encoding="utf-8")
    assert "## Material presets" in text
    section = text.split("## Material presets", 1)[1].split("\n## ", 1)[0]
    for name in material_names():
        assert f"| {name} |" in section, name
