"""The random walk and the finite-volume solver on the same problems.

Periodic images <-> the cell problem (conductivity(..., cell_problem=True));
mirrored images <-> fixed potentials on two faces with no-flux sides (the default).
They must agree within 2 % or 3 standard errors of the walk, whichever is larger.
"""
from __future__ import annotations

import numpy as np
import pytest
import tifffile

from microsim import Volume, conductivity, random_walk, two_phase_table


def spheres(shape, radius, fraction, seed):
    """Overlapping spheres at random centres in a periodic box, added until ``fraction`` is covered."""
    rng = np.random.default_rng(seed)
    n = np.array(shape)
    grid = np.indices(shape).reshape(3, -1).T
    solid = np.zeros(shape, bool)
    while solid.mean() < fraction:
        d = np.abs(grid - rng.random(3) * n)
        d = np.minimum(d, n - d)
        solid |= ((d ** 2).sum(axis=1) <= radius ** 2).reshape(shape)
    return solid


def agree(walk, fv_result):
    """RW and FV agree on every axis; returns the tau values compared (for messages)."""
    checked = []
    for a in walk.axes:
        f = fv_result.get(walk.carrier, a.direction)
        assert a.percolates == f.percolates
        assert 1 <= f.tau <= 5, "the case is meant to have tau between 1 and 5"
        tol = max(0.02 * f.tau, 3 * a.tau_se)
        assert abs(a.tau - f.tau) <= tol, (a.direction, a.tau, a.tau_se, f.tau)
        assert a.tau_se < 0.03 * a.tau  # the comparison means something
        checked.append((a.direction, round(a.tau, 3), round(f.tau, 3)))
    return checked


@pytest.mark.parametrize("fraction, invert, seed", [
    (0.45, True, 2),    # pore space between spheres, tau ~ 1.6-1.8
    (0.60, False, 2),   # overlapping spheres as the conductor, tau ~ 2-2.4
    (0.55, False, 3),   # closer to the percolation threshold, tau ~ 2.9-4.4
])
def test_sphere_packings_periodic(fraction, invert, seed):
    solid = spheres((28, 28, 28), 3.5, fraction, seed)
    v = Volume((~solid if invert else solid).astype(np.uint8), two_phase_table(1.0), 0.5)
    fv_result = conductivity(v, "all", cell_problem=True)
    walk = random_walk(v, walkers=12_288, steps=8192, seed=seed)
    agree(walk, fv_result)


def test_three_phases_with_different_conductivities():
    # conductor A with inclusions of a poorer conductor B and insulating particles, anisotropic voxels
    rng_solid = spheres((24, 24, 24), 3.0, 0.30, 7)
    poorer = spheres((24, 24, 24), 2.5, 0.25, 8) & ~rng_solid
    labels = np.ones((24, 24, 24), np.uint8)
    labels[poorer] = 2
    labels[rng_solid] = 0
    table = {"particles": {"label": 0}, "A": {"label": 1, "sigma_ionic_S_per_m": 2.0},
             "B": {"label": 2, "sigma_ionic_S_per_m": 0.2}}
    v = Volume(labels, table, (0.4, 0.5, 0.45))
    fv_result = conductivity(v, "all", cell_problem=True)
    walk = random_walk(v, walkers=12_288, steps=8192, seed=1)
    agree(walk, fv_result)


def test_mirror_images_match_fixed_potential_problem():
    # a volume that is not periodic: spheres cut by the faces
    solid = spheres((30, 30, 30), 3.5, 0.42, 5)[3:27, 2:26, 4:28]
    v = Volume((~solid).astype(np.uint8), two_phase_table(1.0), 1.0)
    fv_result = conductivity(v, "all")
    walk = random_walk(v, walkers=12_288, steps=16_384, boundary="mirror", seed=4)
    agree(walk, fv_result)


def test_real_volume_periodic(shared_data):
    # X-ray CT of a calendered NMC cathode (NREL); pore space (label 0) as the conductor
    path = shared_data / "NREL_nmc-1-cal_generatedCBD_bridge.tif"
    if not path.exists():
        pytest.skip(f"{path.name} is not in the shared data folder")
    crop = tifffile.imread(path)[100:124, 100:124, 100:124]
    v = Volume((crop == 0).astype(np.uint8), two_phase_table(1.0), 0.398)
    fv_result = conductivity(v, "all", cell_problem=True)
    # a crop is not periodic: the walkers must cross the joins between images many times
    walk = random_walk(v, walkers=8192, steps=65_536, seed=3)
    assert all(a.travel_volumes > 1 for a in walk.axes)
    agree(walk, fv_result)
