"""Representative volume and particle-size distributions."""
import math
from dataclasses import dataclass

import numpy as np
import pytest

from microsim import Volume
from microsim.analysis import local_thickness, particle_size_distribution, plot_psd, representative_volume


def _columns(n=16):
    # 2x2 conducting columns along z on a 4-voxel grid: eps = 1/4 in every sub-volume whose
    # x and y edges are multiples of 4, wherever it starts; tau_z = 1 in every sub-volume
    lab = np.zeros((n, n, n), np.uint8)
    for j in range(0, n, 4):
        for i in range(0, n, 4):
            lab[:, j:j + 2, i:i + 2] = 1
    return Volume(lab, {"SE": {"label": 1, "sigma_ionic_S_per_m": 0.2}, "AM": {"label": 0}}, voxel_size_um=0.5)


def test_rev_of_a_periodic_structure():
    v = _columns()
    r = representative_volume(v, sizes=[3, 4, 8], n_samples=6, carrier="ionic", direction="z", seed=1)
    by = {s.size_voxels: s for s in r.sizes}
    # edges that are multiples of the period hold exactly one quarter of conductor ...
    for s in (4, 8):
        assert by[s].fraction_std["SE"] == 0.0 and by[s].fraction_mean["SE"] == 0.25
        assert by[s].eps_mean == 0.25
        assert by[s].tau_mean == pytest.approx(1.0, abs=1e-6) and by[s].tau_std == pytest.approx(0.0, abs=1e-6)
    # ... other edges do not
    assert by[3].fraction_std["SE"] > 0.02
    assert r.rev_size_fraction["SE"] == 4
    # every sub-volume holds pieces of straight columns: tau = 1 at every size, so already 3 is representative
    assert r.rev_size_tau == 3
    assert by[8].size_um == (4.0, 4.0, 4.0)
    assert len(r.samples) == 18 and all(t == pytest.approx(1.0, abs=1e-6) for s, e, t in r.samples)


def test_rev_tiled_positions_and_non_percolating_sizes():
    v = _columns()
    r = representative_volume(v, sizes=[4, 8, 16], n_samples=100, positions="tiled")
    assert [s.n_samples for s in r.sizes] == [64, 8, 1]
    assert math.isnan(r.sizes[-1].fraction_std["SE"])      # one sub-volume: no spread
    # a sub-volume that misses the columns does not percolate and blocks the tau REV
    lab = np.zeros((8, 8, 8), np.uint8)
    lab[:, :2, :2] = 1
    v2 = Volume(lab, {"SE": {"label": 1, "sigma_ionic_S_per_m": 0.2}, "AM": {"label": 0}})
    r2 = representative_volume(v2, sizes=[2, 8], n_samples=4, positions="tiled", carrier="ionic")
    assert r2.sizes[0].n_not_percolating > 0 and r2.rev_size_tau is None
    with pytest.raises(ValueError, match="'random' or 'tiled'"):
        representative_volume(v, positions="grid")


def _spheres(centres, radii, n, vs=1.0):
    lab = np.zeros((n, n, n), np.uint8)
    z, y, x = np.mgrid[:n, :n, :n]
    for c, r in zip(centres, radii):
        lab[(z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2 <= r * r] = 1
    return Volume(lab, {"SE": {"label": 0}, "NMC": {"label": 1, "material": "NMC811"}}, voxel_size_um=vs)


def test_local_thickness_of_spheres():
    v = _spheres([(20, 20, 20)], [12], 41, vs=0.5)
    r = particle_size_distribution(v, "NMC", "local_thickness")
    assert r.method == "local_thickness" and r.n_particles is None
    assert r.d50_um == pytest.approx(12.0, rel=0.03)        # diameter 24 voxels of 0.5 um
    assert sum(r.volume_fraction) == pytest.approx(1.0)
    # two sizes: the volume-weighted median lies in the larger one, d10 in the smaller
    v2 = _spheres([(12, 12, 12), (12, 12, 38), (36, 30, 25)], [4, 4, 10], 50)
    r2 = particle_size_distribution(v2, "NMC", "local_thickness")
    assert r2.d50_um == pytest.approx(20.0, rel=0.05) and r2.d10_um == pytest.approx(8.0, rel=0.15)
    lt = local_thickness(v2.mask("NMC"))
    assert lt[36, 30, 25] == pytest.approx(20.0, rel=0.05) and lt[0, 0, 0] == 0.0


def test_watershed_separates_touching_particles():
    v = _spheres([(20, 20, 12), (20, 20, 28)], [8, 8], 41)  # two spheres touching at a point
    r = particle_size_distribution(v, "NMC", "watershed")
    assert r.n_particles == 2
    assert r.diameters_um == pytest.approx([16.0, 16.0], rel=0.06)
    assert sum(r.number_fraction) == pytest.approx(1.0)


@dataclass(frozen=True)
class _Particles:
    centres_um: np.ndarray
    radii_um: np.ndarray
    phase: tuple


def test_particle_list_is_used_when_present(tmp_path):
    v = _spheres([(10, 10, 10)], [5], 21)
    listed = v.derive(note="generated", particles=_Particles(np.zeros((4, 3)), np.array([1.0, 2.0, 3.0, 9.0]),
                                                             ("NMC", "NMC", "NMC", "SE")))
    r = particle_size_distribution(listed, "NMC")
    assert r.method == "particles" and r.n_particles == 3
    assert sorted(r.diameters_um.tolist()) == [2.0, 4.0, 6.0]
    assert r.d50_um == 6.0          # by volume the largest particle holds 27/36
    assert r.mean_diameter_um == pytest.approx(4.0)
    assert particle_size_distribution(v, "NMC").method == "local_thickness"
    with pytest.raises(ValueError, match="no particle list"):
        particle_size_distribution(v, "NMC", "particles")
    png = tmp_path / "psd.png"
    plot_psd(r, png)
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_particle_list_of_the_generator():
    # the generator's ParticleList stores label values, not names
    from microsim.generate import ParticleList

    v = _spheres([(10, 10, 10)], [5], 21)
    plist = ParticleList(np.zeros((3, 3)), np.array([1.0, 2.0, 3.0]), np.array([1, 1, 0], np.uint8),
                         box_um=(21.0, 21.0, 21.0))
    r = particle_size_distribution(v.derive(note="generated", particles=plist), "NMC")
    assert r.method == "particles" and sorted(r.diameters_um.tolist()) == [2.0, 4.0]


def test_rev_spread_is_the_sample_standard_deviation_of_hand_counted_tiles():
    import statistics

    # 8^3 volume cut into eight 4^3 tiles; tile t holds 4 (t + 1) voxels of SE
    lab = np.zeros((8, 8, 8), np.uint8)
    corners = [(a, b, c) for a in (0, 4) for b in (0, 4) for c in (0, 4)]
    for t, (a, b, c) in enumerate(corners):
        tile = np.zeros(64, np.uint8)
        tile[:4 * (t + 1)] = 1
        lab[a:a + 4, b:b + 4, c:c + 4] = tile.reshape(4, 4, 4)
    v = Volume(lab, {"SE": {"label": 1}, "AM": {"label": 0}}, voxel_size_um=(0.5, 1.0, 2.0))
    r = representative_volume(v, sizes=[4, 8], n_samples=8, positions="tiled", eps_tol=0.15)
    fractions = [4 * (t + 1) / 64 for t in range(8)]
    s4, s8 = r.sizes
    assert s4.n_samples == 8 and s8.n_samples == 1
    assert s4.shape == (4, 4, 4) and s4.size_um == (2.0, 4.0, 8.0)
    assert s4.fraction_mean["SE"] == pytest.approx(statistics.mean(fractions), rel=1e-12)
    assert s4.fraction_std["SE"] == pytest.approx(statistics.stdev(fractions), rel=1e-12)   # ddof = 1
    assert s4.fraction_std["AM"] == pytest.approx(statistics.stdev(fractions), rel=1e-12)
    assert s4.fraction_mean["AM"] == pytest.approx(1 - statistics.mean(fractions), rel=1e-12)
    assert s8.fraction_mean["SE"] == pytest.approx(sum(fractions) / 8, rel=1e-12)
    assert math.isnan(s8.fraction_std["SE"])
    # sample std 0.0625 * sqrt(6) = 0.153 > 0.15 at size 4 (the population std, 0.143, would pass) and no
    # spread at size 8: no size is representative
    assert r.rev_size_fraction == {"SE": None, "AM": None}
    assert representative_volume(v, sizes=[4, 8], n_samples=8, positions="tiled",
                                 eps_tol=0.16).rev_size_fraction == {"SE": 4, "AM": 4}


def test_rev_size_is_not_below_a_size_that_fails():
    # 3^3 tiles (corners 0 and 3) see only the empty region x, y, z < 6; 4^3 tiles also see the SE
    # placed in x >= 6 of some of them, so size 3 passes and size 4 fails: no size is representative
    lab = np.zeros((8, 8, 8), np.uint8)
    lab[0:4, 0:4, 6:8] = 1
    v = Volume(lab, {"SE": {"label": 1}, "AM": {"label": 0}})
    r = representative_volume(v, sizes=[3, 4], n_samples=8, positions="tiled")
    s3, s4 = r.sizes
    assert s3.fraction_std["SE"] == 0.0 and s4.fraction_std["SE"] > 0.02
    assert r.rev_size_fraction["SE"] is None
    # with only size 3 it is representative
    assert representative_volume(v, sizes=[3], n_samples=8, positions="tiled").rev_size_fraction["SE"] == 3
    assert representative_volume(v, sizes=[3, 8], n_samples=8, positions="tiled").rev_size_fraction["SE"] == 3


def test_rev_tau_statistics_use_the_percolating_sub_volumes_only():
    import statistics

    # a 4x4 column of SE along z in the corner (y, x < 4) of an 8^3 volume: of the eight 4^3 tiles the two
    # at y, x = 0 are filled with SE (tau = 1), the other six hold none (not percolating, tau = inf)
    lab = np.zeros((8, 8, 8), np.uint8)
    lab[:, :4, :4] = 1
    v = Volume(lab, {"SE": {"label": 1, "sigma_ionic_S_per_m": 0.2}, "AM": {"label": 0}})
    r = representative_volume(v, sizes=[4], n_samples=8, positions="tiled", carrier="ionic", direction="z")
    s = r.sizes[0]
    assert s.n_samples == 8 and s.n_not_percolating == 6
    assert s.tau_mean == pytest.approx(1.0, abs=1e-6) and s.tau_std == pytest.approx(0.0, abs=1e-6)
    eps = [1.0 if (b, c) == (0, 0) else 0.0 for a in (0, 4) for b in (0, 4) for c in (0, 4)]
    assert s.eps_mean == pytest.approx(statistics.mean(eps), rel=1e-12)
    assert s.eps_std == pytest.approx(statistics.stdev(eps), rel=1e-12)
    assert r.rev_size_tau is None and r.carrier == "ionic" and r.direction == "z"
    assert sorted((e, t) for _, e, t in r.samples)[:6] == [(0.0, math.inf)] * 6
    assert [round(t, 6) for _, e, t in r.samples if e == 1.0] == [1.0, 1.0]
    d = r.to_dict()
    assert d["sizes"][0]["tau_rel_std"] == pytest.approx(0.0, abs=1e-6)
    assert d["sizes"][0]["n_not_percolating"] == 6
    assert len(d["samples"]) == 8


def test_particle_list_percentiles_are_volume_weighted():
    # diameters 2, 4, 6, 8 um: volumes in the ratio 8 : 64 : 216 : 512, cumulative 0.01, 0.09, 0.36, 1
    v = _spheres([(10, 10, 10)], [5], 21)
    plist = _Particles(np.zeros((4, 3)), np.array([1.0, 2.0, 3.0, 4.0]), ("NMC",) * 4)
    r = particle_size_distribution(v.derive(note="generated", particles=plist), "NMC", n_bins=4)
    assert (r.d10_um, r.d50_um, r.d90_um) == (6.0, 8.0, 8.0)
    assert r.mean_diameter_um == pytest.approx(5.0)
    assert r.n_particles == 4
    assert sum(r.volume_fraction) == pytest.approx(1.0) and sum(r.number_fraction) == pytest.approx(1.0)
    # the bin holding the largest particle holds 512 / 800 of the volume and a quarter of the number
    assert r.volume_fraction[-1] == pytest.approx(512 / 800) and r.number_fraction[-1] == pytest.approx(0.25)
    assert r.volume_fraction[0] == pytest.approx(8 / 800) and r.number_fraction[0] == pytest.approx(0.25)
    assert r.bin_edges_um[0] <= 2.0 and r.bin_edges_um[-1] >= 8.0
    d = r.to_dict()
    assert (d["d10_um"], d["d50_um"], d["d90_um"]) == (6.0, 8.0, 8.0) and len(d["table"]) == 4


def test_ellipsoid_particles_use_the_volume_equivalent_diameter():
    v = _spheres([(10, 10, 10)], [5], 21)
    semi = np.array([[1.0, 2.0, 4.0], [3.0, 3.0, 3.0], [0.5, 0.5, 4.0]])   # r_eq = 2, 3 and 1
    plist = _Particles(np.zeros((3, 3)), semi, ("NMC",) * 3)
    r = particle_size_distribution(v.derive(note="generated", particles=plist), "NMC")
    assert sorted(r.diameters_um.tolist()) == pytest.approx([2.0, 4.0, 6.0], rel=1e-12)
