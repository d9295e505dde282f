"""Percolation classes, cluster statistics and the run-based labeller."""
import numpy as np
import pytest
from scipy import ndimage

from microsim import Volume, label_clusters, percolation
from microsim.analysis import cluster_percolation, cluster_size_stats, phase_percolation, volume_fractions

STRUCT = {6: 1, 18: 2, 26: 3}


@pytest.mark.parametrize("connectivity", [6, 18, 26])
def test_labels_equal_scipy(connectivity):
    # The numba labeller must number clusters exactly as scipy.ndimage.label does.
    rng = np.random.default_rng(7)
    structure = ndimage.generate_binary_structure(3, STRUCT[connectivity])
    shapes = [(23, 19, 31), (1, 9, 13), (7, 1, 11), (5, 6, 1), (1, 1, 17), (40, 3, 2)]
    for p in (0.15, 0.3116, 0.5, 0.85):
        for shape in shapes:
            mask = rng.random(shape) < p
            want, n_want = ndimage.label(mask, structure)
            got, n_got, _ = label_clusters(mask, connectivity)
            assert n_got == n_want
            np.testing.assert_array_equal(got, want)


def test_labels_empty_and_full():
    lab, n, _ = label_clusters(np.zeros((4, 5, 6), bool))
    assert n == 0 and not lab.any()
    lab, n, _ = label_clusters(np.ones((4, 5, 6), bool))
    assert n == 1 and (lab == 1).all()


def _classes(mask, direction, connectivity=6):
    d = cluster_percolation(mask, direction, connectivity).get(direction)
    total = d.fraction_percolating + d.fraction_dead_end + d.fraction_isolated
    assert total == pytest.approx(1.0, abs=1e-12)
    return d


def test_straight_channel():
    m = np.zeros((8, 9, 10), bool)
    m[4, 4, :] = True  # along x
    d = _classes(m, "x")
    assert (d.fraction_percolating, d.fraction_dead_end, d.fraction_isolated) == (1.0, 0.0, 0.0)
    assert d.n_percolating == 1
    # the same channel does not reach both faces normal to y or z
    assert _classes(m, "y").fraction_isolated == 1.0
    assert _classes(m, "z").fraction_isolated == 1.0


def test_dead_end_branch_and_isolated_inclusion():
    # the three classes have different volumes, so no two of them can be confused
    m = np.zeros((8, 9, 10), bool)
    m[1, 1, :] = True            # channel along x: 10 voxels
    m[5, 5, 0:4] = True          # dead end from the x = 0 face: 4 voxels
    m[6, 1, 6:10] = True         # dead end from the x = end face: 4 voxels
    m[6, 3, 0:9] = True          # dead end from x = 0 that stops one voxel short of x = end: 9 voxels
    m[3:5, 6:8, 4:6] = True      # isolated 2x2x2 inclusion: 8 voxels
    m[0, 6:8, 7:9] = True        # isolated 1x2x2 plate: 4 voxels
    m[1, 2:5, 5] = True          # side branch off the channel: part of the percolating cluster, 3 voxels
    d = _classes(m, "x")
    assert d.fraction_percolating == pytest.approx(13 / 42)
    assert d.fraction_dead_end == pytest.approx(17 / 42)
    assert d.fraction_isolated == pytest.approx(12 / 42)
    assert (d.n_percolating, d.n_dead_end, d.n_isolated) == (1, 3, 2)
    # the single-direction function gives the same classes, and the voxels of the percolating one
    r = percolation(m, "x")
    assert r.fraction_percolating == pytest.approx(13 / 42)
    assert r.fraction_dead_end == pytest.approx(17 / 42)
    assert r.fraction_isolated == pytest.approx(12 / 42)
    assert r.volume_fraction == pytest.approx(42 / m.size)
    assert r.percolating_volume_fraction == pytest.approx(13 / m.size)
    assert r.n_clusters == 6 and r.percolates
    want = np.zeros_like(m)
    want[1, 1, :] = True
    want[1, 2:5, 5] = True
    np.testing.assert_array_equal(r.percolating, want)
    assert r.to_dict() == {"direction": "x", "volume_fraction": r.volume_fraction,
                           "percolating_volume_fraction": r.percolating_volume_fraction,
                           "fraction_percolating": r.fraction_percolating, "fraction_dead_end": r.fraction_dead_end,
                           "fraction_isolated": r.fraction_isolated, "n_clusters": 6, "percolates": True}
    # along z only the plate touches a face (z = 0): it is the one dead end, everything else is isolated
    rz = percolation(m, "z")
    assert rz.fraction_percolating == 0.0 and not rz.percolates and rz.percolating_volume_fraction == 0.0
    assert rz.fraction_dead_end == pytest.approx(4 / 42)
    assert rz.fraction_isolated == pytest.approx(38 / 42)
    dz = _classes(m, "z")
    assert (dz.fraction_dead_end, dz.fraction_isolated) == (rz.fraction_dead_end, rz.fraction_isolated)
    assert (dz.n_percolating, dz.n_dead_end, dz.n_isolated) == (0, 1, 5)


def test_same_volume_three_directions():
    # A plate spanning y and x but only one voxel thick in z: percolates along x and y, not z.
    m = np.zeros((6, 7, 8), bool)
    m[0, :, :] = True            # on the z = 0 face: a dead end along z
    m[3, 2, 2] = True            # isolated in every direction
    r = cluster_percolation(m, "all")
    n = m.sum()
    for axis in ("x", "y"):
        d = r.get(axis)
        assert d.fraction_percolating == pytest.approx(56 / n) and d.fraction_isolated == pytest.approx(1 / n)
    z = r.get("z")
    assert (z.fraction_percolating, z.fraction_dead_end, z.fraction_isolated) == (0.0, 56 / n, 1 / n)
    # rotating the volume rotates the answer
    rot = np.ascontiguousarray(np.transpose(m, (2, 1, 0)))
    r2 = cluster_percolation(rot, "all")
    assert r2.get("x").fraction_dead_end == z.fraction_dead_end
    assert r2.get("z").fraction_percolating == r.get("x").fraction_percolating


def test_connectivity_joins_diagonals():
    m = np.zeros((5, 5, 5), bool)
    idx = np.arange(5)
    m[idx, idx, idx] = True      # a body diagonal: corner contacts only
    assert _classes(m, "z", 6).fraction_isolated == pytest.approx(3 / 5)
    assert _classes(m, "z", 18).n_percolating == 0
    assert _classes(m, "z", 26).fraction_percolating == 1.0
    m2 = np.zeros((5, 5, 5), bool)
    m2[idx, idx, 2] = True       # an in-plane diagonal: edge contacts
    assert _classes(m2, "z", 6).n_percolating == 0
    assert _classes(m2, "z", 18).fraction_percolating == 1.0


def test_empty_phase_gives_zeros():
    d = cluster_percolation(np.zeros((3, 3, 3), bool), "x").get("x")
    assert (d.fraction_percolating, d.fraction_dead_end, d.fraction_isolated) == (0.0, 0.0, 0.0)


def test_cluster_size_stats_known():
    m = np.zeros((6, 6, 6), bool)
    m[0, 0, 0] = True                 # size 1
    m[2, 2, 2:5] = True               # size 3
    m[5, :, :] = True                 # size 36
    r = cluster_percolation(m, "x", voxel_size_um=(0.5, 1.0, 2.0))
    s = r.clusters
    assert (s.n_clusters, s.n_voxels, s.largest_voxels) == (3, 40, 36)
    assert s.largest_fraction == pytest.approx(0.9)
    assert s.mean_voxels == pytest.approx(40 / 3)
    assert s.weighted_mean_voxels == pytest.approx((1 + 9 + 36 ** 2) / 40)
    assert s.largest_um3 == pytest.approx(36.0)
    assert sum(s.histogram_counts) == 3
    assert sum(s.histogram_volume_fraction) == pytest.approx(1.0)
    # 1 -> [1, 2), 3 -> [2, 4), 36 -> [32, 64)
    edges = s.histogram_edges_voxels
    assert s.histogram_counts[edges.index(1)] == 1 and s.histogram_counts[edges.index(2)] == 1
    assert s.histogram_counts[edges.index(32)] == 1
    assert cluster_size_stats(np.zeros(0, np.int64)).n_clusters == 0


def test_phase_unions_and_fractions():
    lab = np.zeros((6, 6, 6), np.uint8)
    lab[:, :, :2] = 1                 # NMC slab
    lab[2, 2, 2:] = 2                 # CBD strand touching the NMC slab, reaching x = end
    v = Volume(lab, {"SE": {"label": 0}, "NMC": {"label": 1}, "CBD": {"label": 2}})
    assert phase_percolation(v, "CBD").get("x").fraction_dead_end == 1.0
    both = phase_percolation(v, "NMC+CBD")
    assert both.name == "NMC+CBD" and both.get("x").fraction_percolating == 1.0
    f = volume_fractions(v, ["NMC+CBD", ("SE", "CBD")])
    assert f["NMC+CBD"] == pytest.approx(f["NMC"] + f["CBD"])
    assert sum(f.phases.values()) == pytest.approx(1.0)
    assert f["SE+CBD"] == pytest.approx(1.0 - f["NMC"])
    with pytest.raises(ValueError, match="no phase named 'LFP'"):
        phase_percolation(v, "LFP")


def _spanning(p, rng, n_samples, size=64):
    hits = 0
    for _ in range(n_samples):
        r = cluster_percolation(rng.random((size, size, size)) < p, "all")
        hits += sum(d.percolates for d in r.directions)
    return hits / (3 * n_samples)


def test_site_percolation_threshold_simple_cubic():
    # Bisection on p for the point where the spanning probability of a 64^3 lattice
    # crosses 1/2; the simple-cubic site threshold is p_c = 0.3116. Each step uses
    # 40 lattices x 3 directions; a wrong step can only happen within about
    # +-0.002 of the crossing, where the estimate's noise (+-0.045) matters.
    rng = np.random.default_rng(2024)
    lo, hi = 0.28, 0.345
    assert _spanning(lo, rng, 10) < 0.5 < _spanning(hi, rng, 10)
    for _ in range(6):
        mid = 0.5 * (lo + hi)
        if _spanning(mid, rng, 40) < 0.5:
            lo = mid
        else:
            hi = mid
    assert abs(0.5 * (lo + hi) - 0.3116) < 0.01


def test_volume_fractions_are_hand_counts_with_anisotropic_voxels():
    lab = np.zeros((4, 5, 6), np.uint8)
    lab[0] = 1                        # 30 voxels
    lab[1:3, 0, 0] = 2                # 2 voxels
    v = Volume(lab, {"SE": {"label": 0}, "NMC": {"label": 1}, "CBD": {"label": 2}, "pore": {"label": 7}},
               voxel_size_um=(1.0, 2.0, 3.0))
    f = volume_fractions(v, ["NMC+CBD", "CBD,SE"])
    assert f.phases == {"SE": 88 / 120, "NMC": 30 / 120, "CBD": 2 / 120, "pore": 0.0}
    assert f.unions == {"NMC+CBD": 32 / 120, "CBD+SE": 90 / 120}
    assert f.n_voxels == 120 and f.volume_um3 == 720.0
    assert f.to_dict() == {"phases": f.phases, "unions": f.unions, "n_voxels": 120, "volume_um3": 720.0}
