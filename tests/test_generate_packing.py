"""Dense packing and rasterisation: densities, overlaps, shapes, periodic wrapping."""
from __future__ import annotations

import math

import numpy as np
import pytest

from kernels import packing as kp
from microsim.generate import ParticleList, SizeDistribution, overlaps, pack, sample_diameters
from microsim.generate import placement
from microsim.generate.particles import orientations, spheroid_axes
from microsim.generate.recipe import Shape


def _box_for(radii, fraction):
    edge = (4.0 / 3.0 * math.pi * np.sum(radii**3) / fraction) ** (1.0 / 3.0)
    return (edge, edge, edge)


def _packed_fraction(p, radii, box):
    """Solid fraction of packing ``p`` computed from what it returned, after checking that it
    kept every requested particle at its size, inside the requested box."""
    assert np.array_equal(p.radii_um, radii) and len(p.centres_um) == len(radii)
    assert np.allclose(p.box_um, box, rtol=1e-12)
    assert np.all(p.centres_um >= 0) and np.all(p.centres_um <= np.asarray(box))
    return 4.0 / 3.0 * math.pi * np.sum(radii**3) / np.prod(box)


def test_monodisperse_packing_reaches_60_percent_without_overlap():
    r = np.full(1500, 0.5)
    box = _box_for(r, 0.60)
    p = pack(r, box, tolerance=0.01, seed=3)
    assert _packed_fraction(p, r, box) >= 0.60 - 1e-12
    rel = overlaps(p.centres_um, r, p.box_um)
    # The k-d tree check is independent of the packer's cell lists.
    assert rel[:, 2].max() < 0.01
    assert p.max_overlap < 0.01
    # Not a trivially loose arrangement: at 60 % most spheres touch (within 2 % of a diameter) several others.
    near = overlaps(p.centres_um, r * 1.02, p.box_um)
    contacts = np.bincount(near[:, :2].astype(int).ravel(), minlength=r.size)
    assert np.median(contacts) >= 4


def test_polydisperse_lognormal_packing_reaches_65_percent():
    size = SizeDistribution(d50_um=2.0, gsd=1.5, basis="number")
    r = sample_diameters(size, np.random.default_rng(0), 1500) / 2.0
    box = _box_for(r, 0.65)
    p = pack(r, box, tolerance=0.01, seed=1)
    assert _packed_fraction(p, r, box) >= 0.65 - 1e-12
    assert overlaps(p.centres_um, r, p.box_um)[:, 2].max() < 0.01


def test_walled_packing_keeps_particles_inside():
    r = np.random.default_rng(2).uniform(0.4, 0.8, 600)
    p = pack(r, _box_for(r, 0.55), periodic=False, tolerance=0.01, seed=2)
    box = np.asarray(p.box_um)
    poke = np.maximum(r[:, None] - p.centres_um, p.centres_um + r[:, None] - box) / (2 * r[:, None])
    assert poke.max() < 0.01
    assert overlaps(p.centres_um, r, p.box_um, periodic=False)[:, 2].max() < 0.01


def test_contact_function_matches_spheres_and_affine_map():
    rng = np.random.default_rng(5)
    for _ in range(20):
        ri, rj = rng.uniform(0.5, 2.0, 2)
        v = rng.normal(size=3) * 2.0
        f = kp.contact_function(v, np.eye(3) * ri**2, np.eye(3) * rj**2, np.empty(3))
        assert f == pytest.approx(np.dot(v, v) / (ri + rj) ** 2, rel=1e-6)
    # Two spheroids with the same aspect ratio and axis map to spheres when z is divided by the ratio.
    ar = 0.5
    for _ in range(20):
        ai, aj = rng.uniform(0.5, 2.0, 2)
        v = rng.normal(size=3) * 2.0
        qi = np.diag([(ar * ai) ** 2, ai**2, ai**2])
        qj = np.diag([(ar * aj) ** 2, aj**2, aj**2])
        w = v / np.array([ar, 1.0, 1.0])
        assert kp.contact_function(v, qi, qj, np.empty(3)) == pytest.approx(np.dot(w, w) / (ai + aj) ** 2, rel=1e-6)


@pytest.mark.parametrize("orientation", ["z", "random"])
def test_spheroid_packing_has_no_overlaps(orientation):
    rng = np.random.default_rng(7)
    r = rng.uniform(0.6, 0.9, 400)
    shape = Shape(kind="spheroid", aspect_ratio=0.5, orientation=orientation)
    axes = spheroid_axes(r, shape.aspect_ratio)
    rot = orientations(shape, rng, r.size)
    plist = ParticleList(np.zeros((r.size, 3)), r, np.ones(r.size), axes, rot)
    q = plist.shape_matrices()
    box = _box_for(r, 0.55)
    p = pack(r, box, shape_q=q, tolerance=0.01, seed=7)
    assert _packed_fraction(p, r, box) >= 0.55 - 1e-12
    rel = overlaps(p.centres_um, r, p.box_um, shape_q=q)
    assert rel[:, 2].max() < 0.01
    if orientation == "z":
        # Independent check for aligned spheroids: stretching z by 1/aspect turns them into spheres.
        c = p.centres_um / np.array([0.5, 1.0, 1.0])
        box = np.asarray(p.box_um) / np.array([0.5, 1.0, 1.0])
        a = axes[:, 1]
        v = c[:, None, :] - c[None, :, :]
        v -= box * np.round(v / box)
        d = np.linalg.norm(v, axis=2)
        np.fill_diagonal(d, np.inf)
        assert np.min(d / (a[:, None] + a[None, :])) > 1.0 - 0.01 * 2 * 0.9 / 1.2


def test_compaction_packs_to_the_final_box_without_overlap():
    r = np.full(800, 0.5)
    box = _box_for(r, 0.58)
    pressed = pack(r, box, tolerance=0.01, seed=4, compaction=0.4, compaction_axis=0)
    assert _packed_fraction(pressed, r, box) == pytest.approx(0.58)
    assert overlaps(pressed.centres_um, r, pressed.box_um)[:, 2].max() < 0.01


@pytest.mark.parametrize("compaction", [0.0, 0.3, 0.5])
def test_compaction_turns_flakes_like_an_affine_compression(compaction):
    from scipy import integrate
    shape = Shape(kind="spheroid", aspect_ratio=0.4, orientation="random")
    rot = orientations(shape, np.random.default_rng(9), 20000, compaction=compaction, compaction_axis=0)
    cos2 = rot[:, 0, 2] ** 2  # squared z component of each flake's normal
    # Isotropic normals n compressed as n -> F^-T n with F = diag(1 - c, 1, 1): with t = cos(theta)
    # uniform on [-1, 1] and k = 1 / (1 - c), <cos^2> = 1/2 int k^2 t^2 / (1 + (k^2 - 1) t^2) dt.
    k = 1.0 / (1.0 - compaction)
    expect = 0.5 * integrate.quad(lambda t: k * k * t * t / (1.0 + (k * k - 1.0) * t * t), -1.0, 1.0)[0]
    assert cos2.mean() == pytest.approx(expect, abs=4 * cos2.std() / math.sqrt(cos2.size))
    if compaction == 0.0:
        assert expect == pytest.approx(1.0 / 3.0)


def test_pack_rejects_particles_larger_than_half_the_box():
    with pytest.raises(ValueError, match="box at least twice"):
        pack(np.array([3.0, 1.0]), (10.0, 10.0, 10.0))


# ---------------------------------------------------------------------------
# rasterisation


def test_sphere_rasterises_to_its_volume_and_wraps_periodically():
    vs = (0.25, 0.25, 0.25)
    r = 4.0
    centre = ParticleList(np.array([[8.0, 8.0, 8.0]]), [r], [1], box_um=(16.0, 16.0, 16.0))
    inside = placement.rasterise(centre, (64, 64, 64), vs)
    exact = 4.0 / 3.0 * math.pi * r**3 / 0.25**3
    assert abs(inside.sum() - exact) / exact < 0.01
    # The same sphere centred on a corner of a periodic box: identical voxels, rolled.
    corner = ParticleList(np.array([[0.0, 0.0, 0.0]]), [r], [1], box_um=(16.0, 16.0, 16.0))
    wrapped = placement.rasterise(corner, (64, 64, 64), vs)
    assert np.array_equal(np.roll(inside, (-32, -32, -32), axis=(0, 1, 2)), wrapped)
    # With walls the corner sphere is cut to an eighth.
    walled = ParticleList(np.array([[0.0, 0.0, 0.0]]), [r], [1], box_um=(16.0, 16.0, 16.0),
                          periodic=(False, False, False))
    cut = placement.rasterise(walled, (64, 64, 64), vs)
    assert cut.sum() * 8 == inside.sum()


def test_rasterised_packing_is_shift_invariant():
    rng = np.random.default_rng(11)
    r = rng.uniform(1.0, 2.0, 60)
    p = pack(r, (16.0, 16.0, 16.0), seed=11)
    vs = np.array([0.25, 0.25, 0.25])
    a = placement.rasterise(ParticleList(p.centres_um, r, np.ones(r.size), box_um=p.box_um), (64, 64, 64), vs)
    shift = np.array([13, 40, 7])
    moved = np.mod(p.centres_um + shift * vs, 16.0)
    b = placement.rasterise(ParticleList(moved, r, np.ones(r.size), box_um=p.box_um), (64, 64, 64), vs)
    assert np.array_equal(np.roll(a, tuple(shift), axis=(0, 1, 2)), b)


def test_ellipsoid_rasterises_to_its_volume():
    vs = (0.25, 0.25, 0.25)
    axes = np.array([[3.0, 2.0, 1.0]])
    theta = 0.6
    rot = np.array([[[math.cos(theta), -math.sin(theta), 0.0], [math.sin(theta), math.cos(theta), 0.0],
                     [0.0, 0.0, 1.0]]])
    req = np.prod(axes) ** (1.0 / 3.0)
    e = ParticleList(np.array([[8.0, 8.0, 8.0]]), [req], [1], axes, rot, box_um=(16.0, 16.0, 16.0))
    inside = placement.rasterise(e, (64, 64, 64), vs)
    exact = 4.0 / 3.0 * math.pi * 6.0 / 0.25**3
    assert abs(inside.sum() - exact) / exact < 0.01
    # Voxel by voxel against the definition: semi-axis k (length axes[k]) lies along column k
    # of the rotation, so a voxel centre g is inside when sum_k ((g . R[:, k]) / a_k)^2 < 1.
    g = (np.indices((64, 64, 64)).reshape(3, -1).T + 0.5) * 0.25 - 8.0
    direct = ((((g @ rot[0]) / axes[0]) ** 2).sum(axis=1) < 1.0).reshape(64, 64, 64)
    assert np.array_equal(inside, direct)
    # and the orientation: 2.6 um from the centre along the long axis (3 um) is inside, along
    # the middle axis (2 um) outside
    long_axis, middle_axis = rot[0][:, 0], rot[0][:, 1]
    assert inside[tuple(((8.0 + 2.6 * long_axis) / 0.25).astype(int))]
    assert not inside[tuple(((8.0 + 2.6 * middle_axis) / 0.25).astype(int))]
