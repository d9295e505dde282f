"""The periodic cell problem of the finite-volume solver (conductivity(..., cell_problem=True)).

Checked against exact results and against an independent dense solve of the same
periodic network written here from the definition.
"""
from __future__ import annotations

import numpy as np
import pytest

from microsim import Volume, conductivity, two_phase_table

SIGMA = {0: 0.0, 1: 1.0, 2: 0.3, 3: 0.05}
TABLE = {"ins": {"label": 0}, "A": {"label": 1, "sigma_ionic_S_per_m": SIGMA[1]},
         "B": {"label": 2, "sigma_ionic_S_per_m": SIGMA[2]}, "C": {"label": 3, "sigma_ionic_S_per_m": SIGMA[3]}}


def cell(labels, direction, spacing=(1.0, 1.0, 1.0), table=TABLE, **kw):
    v = Volume(labels, table, spacing)
    return conductivity(v, direction, cell_problem=True, rtol=1e-7, **kw).get("ionic", direction)


def reference_sigma(labels, spacing, axis):
    """sigma_eff of the periodic network by a dense least-squares solve.

    Unknowns are the cell potentials of one period; a face that crosses the period
    boundary along ``axis`` in +axis direction sees the neighbour's potential lowered
    by 1 V (unit drop per period). sigma_eff = dissipated power * L / A.
    """
    shape = labels.shape
    n = labels.size
    sig = np.vectorize(SIGMA.get)(labels).astype(float)
    idx = np.arange(n).reshape(shape)
    A = np.zeros((n, n))
    b = np.zeros(n)
    links = []
    for a in range(3):
        area = np.prod(spacing) / spacing[a]
        nb = np.roll(idx, -1, axis=a)
        wraps = np.zeros(shape, bool)
        wraps[(slice(None),) * a + (-1,)] = True
        s1, s2 = sig.ravel(), sig.ravel()[nb.ravel()]
        with np.errstate(invalid="ignore", divide="ignore"):
            g = np.where((s1 > 0) & (s2 > 0), 2 * s1 * s2 / (s1 + s2), 0.0) * area / spacing[a]
        for i, j, gg, w in zip(idx.ravel(), nb.ravel(), g, wraps.ravel()):
            if gg == 0:
                continue
            jump = 1.0 if (w and a == axis) else 0.0  # phi_image(j) = phi_j - jump
            A[i, i] += gg
            A[j, j] += gg
            A[i, j] -= gg
            A[j, i] -= gg
            b[i] -= gg * jump
            b[j] += gg * jump
            links.append((i, j, gg, jump))
    phi = np.linalg.lstsq(A, b, rcond=None)[0]
    power = sum(gg * (phi[i] - phi[j] + jump) ** 2 for i, j, gg, jump in links)
    length = shape[axis] * spacing[axis]
    cross = np.prod(np.array(shape) * np.array(spacing)) / length
    return power * length / cross


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_independent_dense_solve(seed):
    rng = np.random.default_rng(seed)
    labels = rng.choice([0, 1, 2, 3], p=[0.3, 0.35, 0.25, 0.1], size=(5, 6, 7)).astype(np.uint8)
    spacing = (0.7, 1.0, 1.3)
    for axis, d in enumerate("zyx"):
        ref = reference_sigma(labels, spacing, axis)
        got = cell(labels, d, spacing).sigma_eff_S_per_m
        assert ref > 0
        assert got == pytest.approx(ref, rel=2e-5)


def test_invariant_under_periodic_shift():
    # A cell problem does not depend on where the period is cut, along any axis.
    rng = np.random.default_rng(3)
    labels = (rng.random((8, 7, 9)) < 0.6).astype(np.uint8)
    table = two_phase_table(1.0)
    base = [cell(labels, d, table=table).sigma_eff_S_per_m for d in "xyz"]
    for shift in [(3, 0, 0), (2, 5, 4)]:
        rolled = np.roll(labels, shift, axis=(0, 1, 2))
        got = [cell(rolled, d, table=table).sigma_eff_S_per_m for d in "xyz"]
        assert got == pytest.approx(base, rel=1e-5)


def test_exact_layers_checkerboard_and_block():
    sp = (0.5, 1.0, 0.8)
    # layers normal to z: 3 voxels of A (1.0), 5 of B (0.3)
    labels = np.ones((8, 4, 5), np.uint8)
    labels[3:] = 2
    arith = (3 * 1.0 + 5 * 0.3) / 8
    harm = 8 / (3 / 1.0 + 5 / 0.3)
    assert cell(labels, "x", sp).sigma_eff_S_per_m == pytest.approx(arith, rel=1e-5)
    assert cell(labels, "y", sp).sigma_eff_S_per_m == pytest.approx(arith, rel=1e-5)
    assert cell(labels, "z", sp).sigma_eff_S_per_m == pytest.approx(harm, rel=1e-5)
    # voxel checkerboard: every face joins A and B, so every face has the harmonic-mean conductance
    k, j, i = np.indices((6, 6, 6))
    cb = np.where((k + j + i) % 2 == 0, 1, 2).astype(np.uint8)
    for d in "xyz":
        assert cell(cb, d, sp).sigma_eff_S_per_m == pytest.approx(2 * 1.0 * 0.3 / 1.3, rel=1e-5)
    # uniform block, anisotropic voxels: tau = 1
    r = cell(np.ones((4, 5, 6), np.uint8), "y", sp)
    assert r.tau == pytest.approx(1.0, abs=1e-6)


def test_winding_staircase():
    # A one-voxel staircase that climbs one voxel in y per voxel in x closes on itself
    # through the periodic y and x faces: a chain of n x-links and n y-links.
    n = 7
    labels = np.zeros((1, n, n), np.uint8)
    for i in range(n):
        labels[0, i, i] = 1
        labels[0, i, (i + 1) % n] = 1
    sp = (1.0, 0.5, 2.0)
    gx = 1.0 * sp[0] * sp[1] / sp[2]
    gy = 1.0 * sp[0] * sp[2] / sp[1]
    current = 1.0 / (n / gx + n / gy)  # 1 V per period along the chain
    size = np.array(labels.shape) * sp
    for axis, d in ((2, "x"), (1, "y")):
        r = cell(labels, d, sp)
        assert r.percolates
        area = np.prod(size) / size[axis]
        assert r.sigma_eff_S_per_m == pytest.approx(current * size[axis] / area, rel=1e-5)
        # wherever the period is cut
        shifted = cell(np.roll(labels, (3, 2), axis=(1, 2)), d, sp)
        assert shifted.sigma_eff_S_per_m == pytest.approx(r.sigma_eff_S_per_m, rel=1e-5)


def test_closed_loop_does_not_percolate():
    labels = np.zeros((6, 8, 8), np.uint8)
    labels[3, 2:6, 2] = labels[3, 2:6, 5] = labels[3, 2, 2:6] = labels[3, 5, 2:6] = 1
    for d in "xyz":
        r = cell(labels, d)
        assert not r.percolates and r.sigma_eff_S_per_m == 0 and r.tau == np.inf


def test_touching_both_faces_is_not_winding():
    # a Z-shaped strand from x = 0 (at y = 1) to x = end (at y = 5): it touches both faces normal to x,
    # but its periodic images do not join (across the x faces they sit at different y), so in the
    # infinite medium it is a closed piece and carries no current
    labels = np.zeros((4, 8, 8), np.uint8)
    labels[1, 1, 0:5] = 1
    labels[1, 1:6, 4] = 1
    labels[1, 5, 4:8] = 1
    r = cell(labels, "x")
    assert not r.percolates and r.sigma_eff_S_per_m == 0 and r.tau == np.inf and r.eps_percolating == 0
    # with fixed potentials on the two faces the same strand does conduct
    fixed = conductivity(Volume(labels, {"i": {"label": 0}, "c": {"label": 1, "sigma_ionic_S_per_m": 1.0}}), "x",
                         rtol=1e-9).results[0]
    # a series chain of 12 unit voxels: 11 links and two half voxels to the faces, 1 V over 8 um, 4 x 8 um^2
    assert fixed.percolates and fixed.sigma_eff_S_per_m == pytest.approx(1 / 12 * 8 / 32, rel=1e-6)


@pytest.mark.parametrize("direction", ["x", "y", "z"])
def test_currents_and_fields_of_a_block_flow_down_the_potential(direction):
    # 1 V drop per period along the direction: positive terminal currents sigma * A / L and a current
    # density sigma / L pointing along +direction, in every voxel
    spacing = (0.5, 1.0, 2.0)
    shape = (6, 5, 4)
    axis = "zyx".index(direction)
    r = conductivity(Volume(np.ones(shape, np.uint8), {"c": {"label": 1, "sigma_ionic_S_per_m": 3.0}}, spacing),
                     direction, cell_problem=True, return_fields=True, rtol=1e-10).results[0]
    size = np.array(shape) * np.array(spacing) * 1e-6
    length, area = size[axis], np.prod(size) / size[axis]
    assert r.sigma_eff_S_per_m == pytest.approx(3.0, rel=1e-9)
    assert r.current_in_A == pytest.approx(3.0 * area / length, rel=1e-9)
    assert r.current_out_A == pytest.approx(3.0 * area / length, rel=1e-9)
    j = r.current_density_A_per_m2
    np.testing.assert_allclose(j[axis], 3.0 / length, rtol=1e-6)
    for a in range(3):
        if a != axis:
            assert np.abs(j[a]).max() <= 1e-6 * 3.0 / length
