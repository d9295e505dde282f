"""Interface areas: marching cubes against exact areas, face counting, pair decomposition."""
import numpy as np
import pytest

from microsim import Volume
from microsim.analysis import face_count_areas, interface_areas, mesh_area


def _ball(radius_um, voxel_size_um):
    n = [int(2 * radius_um / d) + 10 for d in voxel_size_um]
    axes = [(np.arange(k) - (k - 1) / 2) * d for k, d in zip(n, voxel_size_um)]
    z, y, x = np.meshgrid(*axes, indexing="ij")
    return z ** 2 + y ** 2 + x ** 2 <= radius_um ** 2


@pytest.mark.parametrize("smoothing", ["constrained", "gaussian"])
def test_sphere_radius_20_within_2_percent(smoothing):
    exact = 4 * np.pi * 20.0 ** 2
    area = mesh_area(_ball(20.0, (1.0, 1.0, 1.0)), (1.0, 1.0, 1.0), smoothing)
    assert area == pytest.approx(exact, rel=0.02)


def test_raw_marching_cubes_overestimates_and_face_count_is_three_halves():
    # the reasons for smoothing and for calling face counting an overestimate
    ball = _ball(20.0, (1.0, 1.0, 1.0))
    exact = 4 * np.pi * 20.0 ** 2
    assert mesh_area(ball, 1.0, "none") / exact > 1.05
    faces = face_count_areas(ball.astype(np.uint8))[(0, 1)]
    assert faces / exact == pytest.approx(1.5, rel=0.03)


@pytest.mark.parametrize("voxel_size", [(2.0, 1.0, 1.0), (1.0, 0.8, 1.25)])
def test_anisotropic_voxels_scale_the_area(voxel_size):
    # The same 20 um sphere digitised on anisotropic grids keeps its area in um^2.
    exact = 4 * np.pi * 20.0 ** 2
    assert mesh_area(_ball(20.0, voxel_size), voxel_size) == pytest.approx(exact, rel=0.02)
    # and the same labels with a stretched voxel give a stretched surface
    ball = _ball(10.0, (1.0, 1.0, 1.0))
    iso = mesh_area(ball, (1.0, 1.0, 1.0), "none")
    assert mesh_area(ball, (3.0, 3.0, 3.0), "none") == pytest.approx(9 * iso, rel=1e-9)


def test_flat_interfaces_are_exact_and_stop_at_the_box():
    # A plane normal to z inside a box: its area is the box cross-section, whatever the
    # voxel size, for both estimates (the mesh is cut at the box faces).
    lab = np.zeros((10, 7, 9), np.uint8)
    lab[4:] = 1
    for vs in [(1.0, 1.0, 1.0), (0.5, 2.0, 0.25)]:
        v = Volume(lab, {"SE": {"label": 0}, "NMC": {"label": 1}}, voxel_size_um=vs)
        r = interface_areas(v).get("SE", "NMC")
        exact = 7 * vs[1] * 9 * vs[2]
        assert r.area_um2 == pytest.approx(exact, rel=1e-9)
        assert r.face_count_area_um2 == pytest.approx(exact, rel=1e-12)
        assert r.specific_area_per_um == pytest.approx(exact / (lab.size * np.prod(vs)))


def test_three_layers_pair_decomposition():
    lab = np.zeros((12, 8, 8), np.uint8)
    lab[4:8] = 1
    lab[8:] = 2
    v = Volume(lab, {"A": {"label": 0}, "B": {"label": 1}, "C": {"label": 2}})
    r = interface_areas(v)
    assert r.get("A", "B").area_um2 == pytest.approx(64.0, rel=1e-9)
    assert r.get("B", "C").area_um2 == pytest.approx(64.0, rel=1e-9)
    assert r.get("A", "C").area_um2 == pytest.approx(0.0, abs=1e-9)
    assert r.get("C", "A").face_count_area_um2 == 0.0
    surf = {s.phase: s for s in r.surfaces}
    assert surf["B"].area_um2 == pytest.approx(128.0, rel=1e-9)
    assert surf["B"].area_per_phase_volume_per_um == pytest.approx(128.0 / 256.0)


def test_face_count_areas_weights_each_axis():
    lab = np.zeros((3, 3, 3), np.uint8)
    lab[1, 1, 1] = 5
    areas = face_count_areas(lab, (2.0, 3.0, 5.0))
    # two faces normal to each axis: z faces dy*dx = 15, y faces dz*dx = 10, x faces dz*dy = 6
    assert areas == {(0, 5): 2 * 15.0 + 2 * 10.0 + 2 * 6.0}


def test_thin_strand_keeps_a_surface():
    # a one-voxel strand must not vanish (it would with Gaussian smoothing)
    m = np.zeros((20, 9, 9), bool)
    m[:, 4, 4] = True
    assert mesh_area(m, 1.0, "gaussian") == 0.0
    assert mesh_area(m, 1.0, "constrained") > 0.1 * face_count_areas(m.astype(np.uint8))[(0, 1)]


def test_unknown_smoothing_is_an_error():
    with pytest.raises(ValueError, match="smoothing 'fancy'"):
        mesh_area(np.ones((2, 2, 2), bool), 1.0, "fancy")


def test_face_counting_with_anisotropic_voxels_on_planes_normal_to_each_axis():
    # One plane normal to each axis between distinct pairs of phases, voxel (1, 2, 3) um: every face
    # normal to z has dy*dx = 6 um^2, normal to y dz*dx = 3, normal to x dz*dy = 2. Swapping any two
    # voxel edges changes the answer.
    lab = np.zeros((4, 5, 6), np.uint8)
    lab[2:] = 1                                        # plane normal to z between 0 and 1: 5 x 6 faces
    got = face_count_areas(lab, (1.0, 2.0, 3.0))
    assert got == {(0, 1): 30 * 6.0}
    lab = np.zeros((4, 5, 6), np.uint8)
    lab[:, 3:, :] = 2                                  # plane normal to y: 4 x 6 faces
    assert face_count_areas(lab, (1.0, 2.0, 3.0)) == {(0, 2): 24 * 3.0}
    lab = np.zeros((4, 5, 6), np.uint8)
    lab[:, :, 1:] = 3                                  # plane normal to x: 4 x 5 faces
    assert face_count_areas(lab, (1.0, 2.0, 3.0)) == {(0, 3): 20 * 2.0}   # 40 um^2, not 60 or 120
    # all three in one volume: each pair gets its own plane's area
    lab = np.zeros((4, 5, 6), np.uint8)
    lab[:, :, 3:] = 1                                  # x >= 3: phase 1 (plane normal to x, 4 x 5 faces)
    lab[2:, :, :3] = 2                                 # z >= 2, x < 3: phase 2 (normal to z vs 0, 5 x 3 faces)
    got = face_count_areas(lab, (1.0, 2.0, 3.0))
    assert got == {(0, 1): 2 * 5 * 2.0, (1, 2): 2 * 5 * 2.0, (0, 2): 5 * 3 * 6.0}


@pytest.mark.parametrize("smoothing", ["constrained", "gaussian", "none"])
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_flat_interface_normal_to_each_axis_with_anisotropic_voxels(smoothing, axis):
    # the exact area is the box cross-section normal to the axis, for every mesh smoothing
    vs = (0.5, 2.0, 0.25)
    shape = (10, 7, 9)
    lab = np.zeros(shape, np.uint8)
    cut = [slice(None)] * 3
    cut[axis] = slice(shape[axis] // 2, None)
    lab[tuple(cut)] = 1
    v = Volume(lab, {"SE": {"label": 0}, "NMC": {"label": 1}}, voxel_size_um=vs)
    r = interface_areas(v, smoothing=smoothing)
    exact = float(np.prod([n * d for a, (n, d) in enumerate(zip(shape, vs)) if a != axis]))
    pair = r.get("SE", "NMC")
    assert pair.area_um2 == pytest.approx(exact, rel=1e-6)
    assert pair.face_count_area_um2 == pytest.approx(exact, rel=1e-12)
    box = lab.size * 0.25
    assert r.volume_um3 == pytest.approx(box, rel=1e-12)
    assert pair.specific_area_per_um == pytest.approx(exact / box, rel=1e-6)
    assert pair.face_count_specific_area_per_um == pytest.approx(exact / box, rel=1e-12)
    surf = {s.phase: s for s in r.surfaces}
    n_nmc = int(lab.sum())
    assert surf["NMC"].area_um2 == pytest.approx(exact, rel=1e-6)
    assert surf["NMC"].face_count_area_um2 == pytest.approx(exact, rel=1e-12)
    assert surf["NMC"].specific_area_per_um == pytest.approx(exact / box, rel=1e-6)
    # per phase volume: the phase's own volume in um^3, not its voxel count
    assert surf["NMC"].area_per_phase_volume_per_um == pytest.approx(exact / (n_nmc * 0.25), rel=1e-6)
    assert surf["SE"].area_per_phase_volume_per_um == pytest.approx(exact / ((lab.size - n_nmc) * 0.25), rel=1e-6)
