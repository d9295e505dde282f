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
