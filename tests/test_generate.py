"""Composite cathode generation: fractions, reproducibility, size distributions, periodicity, presets, CLI."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

import microsim
from microsim.cli import main
from microsim.generate import (ACTIVE, CBD, ELECTROLYTE, Recipe, RecipeError, SizeDistribution, diameter_cdf, generate,
                               load_recipe, overlaps, placement, preset_names, preset_path, sample_diameters)

ALPHA = 0.01  # significance of the Kolmogorov-Smirnov tests


def _recipe(**over) -> Recipe:
    doc = {"domain": {"shape": [48, 48, 48], "voxel_size_um": 0.5},
           "active": {"material": "NMC811", "fraction": 0.5, "size": {"d50_um": 5.0, "gsd": 1.25}},
           "electrolyte": {"material": "Li6PS5Cl"}, "seed": 3}
    for key, value in over.items():
        doc[key] = value
    return Recipe.from_dict(doc)


RECIPES = {
    # matrix electrolyte, voids, CBD at the necks
    "matrix_voids_bridges": _recipe(porosity={"fraction": 0.12, "size": {"d50_um": 1.5, "gsd": 1.4}},
                                    cbd={"fraction": 0.06, "placement": "bridges"}),
    # electrolyte particles growing into the pores, CBD film, by weight
    "particles_film_weight": _recipe(fractions="weight",
                                     active={"material": "NMC811", "fraction": 0.7,
                                             "size": {"d50_um": 6.0, "gsd": 1.2}},
                                     electrolyte={"material": "Li6PS5Cl", "fraction": 0.28, "form": "particles",
                                                  "size": {"d50_um": 2.0, "gsd": 1.3}},
                                     cbd={"fraction": 0.02, "placement": "film"},
                                     porosity={"fraction": 0.15}),
    # walled box, flattened spheroids lying in the x-y plane, CBD agglomerates, dense
    "walled_spheroids_agglomerates": _recipe(
        boundary="walled",
        active={"material": "LCO", "fraction": 0.5, "size": {"d50_um": 4.0, "gsd": 1.2},
                "shape": {"kind": "spheroid", "aspect_ratio": 0.6, "orientation": "z", "tilt_deg": 10}},
        electrolyte={"material": "Li3PS4-LiI"},
        cbd={"fraction": 0.05, "placement": "agglomerates", "size": {"d50_um": 1.5, "gsd": 1.3}}),
}


@pytest.fixture(scope="module")
def generated():
    return {name: generate(r) for name, r in RECIPES.items()}


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_fractions_within_one_percent_of_targets(generated, name):
    g = generated[name]
    assert set(g.targets) == {"pore", "electrolyte", "active", "CBD"}
    for phase, target in g.targets.items():
        assert abs(g.achieved[phase] - target) < 0.01, (phase, target, g.achieved[phase])
        # The placement aims at round(target x voxels): a few voxels off at most.
        assert abs(g.achieved[phase] - target) * g.volume.labels.size < 50
    assert sum(g.achieved.values()) == pytest.approx(1.0)


def test_weight_fractions_convert_with_densities():
    r = RECIPES["particles_film_weight"]
    v = {"active": 0.7 / r.density("NMC811"), "electrolyte": 0.28 / r.density("Li6PS5Cl"),
         "CBD": 0.02 / r.density("carbon_black")}
    total = sum(v.values())
    for phase in v:
        assert r.volume_fractions()[phase] == pytest.approx(0.85 * v[phase] / total)
    own = r.with_changes(densities_g_per_cm3=(("NMC811", 4.0),))
    assert own.volume_fractions()["active"] > r.volume_fractions()["active"]


def test_placement_rules_put_cbd_where_they_say(generated):
    from scipy import ndimage
    film = generated["particles_film_weight"].volume.labels
    bridges = generated["matrix_voids_bridges"].volume.labels
    # A film coats the active particles: nearly all of it touches active material.
    near_active = ndimage.binary_dilation(film == ACTIVE, iterations=1)
    assert np.mean(near_active[film == CBD]) > 0.9
    # Bridges sit where two particles nearly meet: the CBD touches active material on two sides.
    act = bridges == ACTIVE
    assert not np.any(bridges == placement.FREE)  # no voxel keeps the scratch label
    dist = ndimage.distance_transform_edt(~act)
    assert np.median(dist[bridges == CBD]) < np.median(dist[bridges == ELECTROLYTE])


def test_same_seed_same_volume_other_seed_other_volume(generated):
    import numba
    r = RECIPES["matrix_voids_bridges"]
    a = generated["matrix_voids_bridges"].volume.labels
    threads = numba.get_num_threads()
    numba.set_num_threads(1)  # and independent of the number of threads
    try:
        b = generate(r).volume.labels
    finally:
        numba.set_num_threads(threads)
    c = generate(r, seed=r.seed + 1).volume.labels
    assert a.tobytes() == b.tobytes()
    assert np.mean(a != c) > 0.2


def test_packing_overlap_and_particle_list(generated):
    g = generated["matrix_voids_bridges"]
    assert g.packing.max_overlap < g.recipe.packing.tolerance
    act = g.particles.select(ACTIVE)
    rel = overlaps(act.centres_um, act.radii_um, act.box_um)
    # The drawn particles are the packed ones scaled by size_scale (close to 1), so their overlap
    # stays within the tolerance plus that scaling.
    s = g.size_scale["active"]
    assert abs(s - 1.0) < 0.02
    # Scaling by s deepens an overlap by at most (s - 1) diameters of the larger particle.
    worst = g.recipe.packing.tolerance + max(s - 1.0, 0.0) * act.radii_um.max() / act.radii_um.min()
    assert rel.size == 0 or rel[:, 2].max() < worst
    # Re-drawing the stored active particles reproduces the active voxels of the volume.
    again = placement.rasterise(act, g.volume.shape, g.volume.voxel_size_um)
    assert np.mean(again != (g.volume.labels == ACTIVE)) < 1e-3


def test_placed_diameters_follow_the_requested_distribution():
    size = SizeDistribution(d50_um=4.0, gsd=1.3, basis="volume")
    r = Recipe.from_dict({
        "domain": {"shape": [64, 64, 64], "voxel_size_um": 0.5},
        "active": {"material": "NMC811", "fraction": 0.55, "size": size.to_dict()},
        "electrolyte": {"material": "Li6PS5Cl"}, "seed": 5})
    g = generate(r)
    d = g.particles.select(ACTIVE).diameters_um / g.size_scale["active"]
    assert d.size > 300
    assert stats.kstest(d, lambda x: diameter_cdf(size, x)).pvalue > ALPHA
    # The test has power: a distribution 10 % smaller is rejected.
    wrong = SizeDistribution(d50_um=3.6, gsd=1.3, basis="volume")
    assert stats.kstest(d, lambda x: diameter_cdf(wrong, x)).pvalue < ALPHA


def test_sampler_matches_number_and_volume_medians():
    size = SizeDistribution(d50_um=10.0, gsd=1.4, basis="volume")
    d = sample_diameters(size, np.random.default_rng(0), 20000)
    assert stats.kstest(d, lambda x: diameter_cdf(size, x)).pvalue > ALPHA
    # Volume-weighted median of the drawn diameters is the requested D50 (truncation moves it < 1 %).
    order = np.argsort(d)
    cum = np.cumsum(d[order] ** 3) / np.sum(d**3)
    assert d[order][np.searchsorted(cum, 0.5)] == pytest.approx(10.0, rel=0.02)
    assert np.median(d) == pytest.approx(10.0 * math.exp(-3 * math.log(1.4) ** 2), rel=0.02)
    lo, hi = size.bounds_um
    assert d.min() >= lo and d.max() <= hi


def _agreement(labels, axis):
    """Share of equal labels across the periodic face, between neighbouring planes, and between far planes."""
    a = np.moveaxis(labels, axis, 0)
    wrap = np.mean(a[-1] == a[0])
    inner = np.mean(a[1:] == a[:-1], axis=(1, 2))  # one value per neighbouring pair
    far = np.mean(a[: a.shape[0] // 2] == a[a.shape[0] // 2:])
    return wrap, inner, far


def test_periodic_volume_tiles_without_seams(generated):
    periodic = generated["matrix_voids_bridges"].volume.labels
    walled = generated["walled_spheroids_agglomerates"].volume.labels
    for axis in range(3):
        wrap, inner, far = _agreement(periodic, axis)
        # Across the wrap the labels continue like between any two neighbouring planes
        # (one plane pair scatters by a few per cent)...
        assert abs(wrap - inner.mean()) < 4 * inner.std() + 0.005, (axis, wrap, inner.mean(), inner.std())
        # ...and the measure would see a seam: unrelated planes agree far less.
        assert far < inner.mean() - 0.15, (axis, far, inner.mean())
        # A walled volume (the control) does not continue across its faces.
        wrap_w, inner_w, _ = _agreement(walled, axis)
        assert wrap_w < inner_w.mean() - 0.05, (axis, wrap_w, inner_w.mean())
    # Particles cut by a face of the periodic box continue on the opposite face.
    act = generated["matrix_voids_bridges"].particles.select(ACTIVE)
    box = np.asarray(act.box_um)
    cut = np.any((act.centres_um < act.radii_um[:, None]) | (act.centres_um > box - act.radii_um[:, None]), axis=1)
    assert cut.sum() > 5


def _test_size(recipe: Recipe) -> Recipe:
    """The smallest domain and coarsest voxels a preset's particles allow (keeps the test fast)."""
    sizes = [s for s in (recipe.active.size, recipe.electrolyte.size, recipe.porosity.size) if s is not None]
    voxel = max(recipe.voxel_size_um[0], min(s.number_median_um for s in sizes) / 2.5)
    largest = max(s.bounds_um[1] for s in sizes)
    n = max(40, int(math.ceil(2.05 * largest / voxel)))
    return recipe.with_changes(shape=(n, n, n), voxel_size_um=voxel)


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_generates_with_finite_ionic_tau(name):
    recipe = load_recipe(preset_path(name))
    g = generate(_test_size(recipe))
    for phase, target in g.targets.items():
        assert abs(g.achieved[phase] - target) < 0.01
    # The solver on (at most) a 48^3 crop: the electrolyte network conducts and tau is finite.
    crop = g.volume.derive(labels=g.volume.labels[:48, :48, :48], note="crop")
    r = microsim.conductivity(crop, "x", "ionic").get("ionic", "x")
    assert r.conducting_phases == ("electrolyte",)
    assert r.percolates and math.isfinite(r.tau) and r.tau >= 1.0


def test_presets_cover_the_literature_cases():
    names = preset_names()
    assert len(names) >= 8
    frac = {n: load_recipe(preset_path(n)).volume_fractions() for n in names}
    lco = frac["lco_li3ps4_lii_porous"]
    assert lco["pore"] == pytest.approx(0.13)
    assert lco["active"] / (lco["active"] + lco["electrolyte"]) == pytest.approx(0.38)
    assert frac["lco_li3ps4_lii_dense"]["pore"] == 0.0
    assert load_recipe(preset_path("nmc_li6ps5cl_70_30_wt")).fractions == "weight"
    se = sorted(load_recipe(preset_path(n)).electrolyte.size.d50_um for n in names if n.startswith("nmc12p5_se"))
    assert se == [1.5, 3.0, 5.0]
    for n in names:  # to_dict() is a recipe again
        r = load_recipe(preset_path(n))
        assert Recipe.from_dict(r.to_dict()) == r


def test_explicit_diameters_and_fully_dense_particle_electrolyte():
    r = Recipe.from_dict({"domain": {"shape": [40, 40, 40], "voxel_size_um": 0.5}, "seed": 2,
                          "active": {"material": "NMC811", "fraction": 0.5, "size": {"diameters_um": [4.0, 6.0]}},
                          "electrolyte": {"material": "Li6PS5Cl", "form": "particles",
                                          "size": {"d50_um": 1.5, "gsd": 1.2}}})
    g = generate(r)
    assert g.achieved["pore"] == 0.0 and g.achieved["active"] == pytest.approx(0.5, abs=1e-3)
    d = g.particles.select(ACTIVE).diameters_um / g.size_scale["active"]
    assert np.allclose(np.minimum(abs(d - 4.0), abs(d - 6.0)), 0.0)
    assert 0.3 < np.mean(np.isclose(d, 4.0)) < 0.7  # both sizes drawn, equally likely by number
    assert len(g.particles.select(ELECTROLYTE)) > 1000


def test_recipe_errors_name_the_problem():
    with pytest.raises(RecipeError, match="must sum to 1"):
        _recipe(electrolyte={"material": "Li6PS5Cl", "fraction": 0.3})
    with pytest.raises(RecipeError, match="unknown key"):
        _recipe(electrolyte={"material": "Li6PS5Cl", "colour": "red"})
    with pytest.raises(RecipeError, match="twice the largest particle"):
        _recipe(active={"material": "NMC811", "fraction": 0.5, "size": {"d50_um": 14.0}})
    with pytest.raises(RecipeError, match="unknown material"):
        _recipe(electrolyte={"material": "LiPON"})
    with pytest.raises(RecipeError, match="needs porosity.size"):
        _recipe(porosity={"fraction": 0.1})
    with pytest.raises(microsim.PackingError, match="stalled"):
        generate(_recipe(active={"material": "NMC811", "fraction": 0.72, "size": {"d50_um": 5.0}},
                         packing={"max_sweeps": 100}))


def test_cli_generate_writes_volume_particles_preview(tmp_path, capsys):
    out = tmp_path / "cathode.tif"
    rc = main(["generate", "lco_li3ps4_lii_porous", "--out", str(out), "--shape", "52", "--voxel-size", "0.4",
               "--seed", "2", "--preview", str(tmp_path / "p.png"), "--report", str(tmp_path / "r.json"),
               "--quiet"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "achieved" in text and "electrolyte" in text
    v = microsim.read_volume(out)
    assert v.shape == (52, 52, 52) and v.voxel_size_um == pytest.approx((0.4, 0.4, 0.4))
    assert set(v.phases.names) >= {"pore", "electrolyte", "active"}
    rows = (tmp_path / "cathode.particles.csv").read_text().splitlines()
    assert rows[1].startswith("label,phase,z_um") and len(rows) > 20
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_bad_recipe_is_one_line_and_writes_nothing(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('[domain]\nshape = [32, 32, 32]\nvoxel_size_um = 0.5\n[active]\nmaterial = "NMC811"\n'
                   'fraction = 1.4\nsize = { d50_um = 4.0 }\n[electrolyte]\nmaterial = "Li6PS5Cl"\n')
    rc = main(["generate", str(bad), "--out", str(tmp_path / "c.tif")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "active.fraction" in err[0]
    assert list(tmp_path.iterdir()) == [bad]
