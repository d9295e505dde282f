"""The finite-volume solver against exact results, analytic formulas and a direct sparse solve."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from microsim import Volume, conductivity
from references import direct_solve

ONE = {"c": {"label": 1, "sigma_ionic_S_per_m": 2.5}}
TWO = {"i": {"label": 0}, "c": {"label": 1, "sigma_ionic_S_per_m": 2.5}}
TIGHT = dict(rtol=1e-8, current_tol=1e-6)


def solve(labels, phases, direction, voxel=(1.0, 1.0, 1.0), **kw):
    opts = dict(TIGHT)
    opts.update(kw)
    return conductivity(Volume(labels, phases, voxel), direction, **opts).results[0]


@pytest.mark.parametrize("periodic", [False, True])
@pytest.mark.parametrize("direction", ["x", "y", "z"])
def test_uniform_block_tau_is_one(direction, periodic):
    r = solve(np.ones((9, 12, 15), np.uint8), ONE, direction, (0.3, 0.5, 0.7), periodic_sides=periodic)
    assert r.converged and r.percolates
    assert abs(r.tau - 1) < 1e-6
    assert abs(r.sigma_eff_S_per_m - 2.5) < 2.5e-6
    assert abs(r.macmullin - 1) < 1e-6
    assert r.sigma_eff_S_per_cm == pytest.approx(r.sigma_eff_S_per_m / 100)


@pytest.mark.parametrize("periodic", [False, True])
@pytest.mark.parametrize("direction", ["x", "y", "z"])
def test_straight_channels_of_any_cross_section(direction, periodic):
    rng = np.random.default_rng(3)
    axis = "zyx".index(direction)
    section = rng.random((14, 11)) < 0.4
    section[0, 0] = True
    labels = np.expand_dims(section, axis).repeat(10, axis=axis).astype(np.uint8)
    r = solve(labels, TWO, direction, (0.4, 0.9, 1.3), periodic_sides=periodic)
    assert r.converged
    assert abs(r.eps - section.mean()) < 1e-12
    assert abs(r.tau - 1) < 1e-6
    assert abs(r.sigma_eff_S_per_m - 2.5 * section.mean()) < 1e-6 * 2.5


@pytest.mark.parametrize("contrast", [10.0, 1e4])
@pytest.mark.parametrize("direction", ["x", "y", "z"])
def test_series_and_parallel_layers(direction, contrast):
    voxel = (0.5, 1.25, 2.0)
    axis = "zyx".index(direction)
    phases = {"a": {"label": 0, "sigma_ionic_S_per_m": 1.0}, "b": {"label": 1, "sigma_ionic_S_per_m": 1.0 / contrast},
              "c": {"label": 2, "sigma_ionic_S_per_m": 0.3}}
    sig = {0: 1.0, 1: 1.0 / contrast, 2: 0.3}
    thickness = [3, 5, 2, 4]
    layer_labels = [0, 1, 2, 1]
    stack = np.concatenate([np.full(t, l, np.uint8) for t, l in zip(thickness, layer_labels)])
    shape = [6, 7, 8]
    # series: layers normal to the transport direction
    shape_s = list(shape)
    shape_s[axis] = len(stack)
    view = [1, 1, 1]
    view[axis] = len(stack)
    series = np.broadcast_to(stack.reshape(view), shape_s).copy()
    exact_series = sum(thickness) / sum(t / sig[l] for t, l in zip(thickness, layer_labels))
    r = solve(series, phases, direction, voxel)
    assert r.converged
    assert abs(r.sigma_eff_S_per_m / exact_series - 1) < 1e-6
    # parallel: the same layers stacked along another axis
    other = (axis + 1) % 3
    shape_p = list(shape)
    shape_p[other] = len(stack)
    view = [1, 1, 1]
    view[other] = len(stack)
    parallel = np.broadcast_to(stack.reshape(view), shape_p).copy()
    exact_parallel = sum(t * sig[l] for t, l in zip(thickness, layer_labels)) / sum(thickness)
    r = solve(parallel, phases, direction, voxel)
    assert abs(r.sigma_eff_S_per_m / exact_parallel - 1) < 1e-6
    # several conducting phases: tau is relative to the volume-averaged conductivity
    assert abs(r.tau - 1) < 1e-6


def sphere_cell(n: int, f: float) -> np.ndarray:
    """One cubic cell of edge n voxels with a centred insulating sphere (label 0) of volume fraction f."""
    radius = (3 * f / (4 * math.pi)) ** (1 / 3) * n
    c = np.arange(n) + 0.5 - n / 2
    d2 = c[:, None, None] ** 2 + c[None, :, None] ** 2 + c[None, None, :] ** 2
    return (d2 > radius * radius).astype(np.uint8)


def rayleigh_insulating_spheres(f: float) -> float:
    """sigma_eff / sigma_matrix of a simple-cubic array of insulating spheres (Rayleigh's formula with the
    octupole term, 1 - 3f / (2 + f - 1.305 * 0.75 * f^(10/3)))."""
    return 1 - 3 * f / (2 + f - 1.305 * 0.75 * f ** (10 / 3))


@pytest.mark.parametrize("f", [0.1, 0.3, 0.5])
def test_simple_cubic_spheres_match_rayleigh(f):
    # By symmetry one cell with fixed potentials on two faces and no-flux sides is the infinite array.
    errors = []
    for n in (64, 96):
        labels = sphere_cell(n, f)
        r = solve(labels, TWO, "x", rtol=1e-6, current_tol=1e-5)
        f_actual = 1 - labels.mean()
        errors.append(abs(r.sigma_eff_S_per_m / 2.5 / rayleigh_insulating_spheres(f_actual) - 1))
    assert errors[0] < 0.03
    assert errors[1] < errors[0]


def blobs(shape, eps, seed, sigma=2.0):
    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    return (field > np.quantile(field, 1 - eps)).astype(np.uint8)


@pytest.mark.parametrize("eps", [0.35, 0.5, 0.7])
def test_hashin_shtrikman_upper_bound(eps):
    labels = blobs((40, 40, 40), eps, seed=int(eps * 100))
    res = conductivity(Volume(labels, TWO), "all", rtol=1e-6)
    eps_actual = labels.mean()
    bound = 2 * eps_actual / (3 - eps_actual)
    sigma = np.zeros(256)
    sigma[1] = 2.5
    if eps > 0.4:
        jacobi = conductivity(Volume(labels, TWO), "all", tol=1e-6, solver="jacobi")
    for r in res:
        assert r.converged
        assert 0 < r.sigma_eff_S_per_m / 2.5 <= bound
        # and the value itself: at the lowest eps (few percolating voxels, a quick sparse LU) from an
        # independent assembly solved by scipy, otherwise from the Jacobi-preconditioned reference solver
        if eps < 0.4:
            ref = direct_solve(labels, sigma, (1.0, 1.0, 1.0), "zyx".index(r.direction), False)
        else:
            ref = jacobi.get("ionic", r.direction).sigma_eff_S_per_m
        assert r.sigma_eff_S_per_m == pytest.approx(ref, rel=2e-5)


@pytest.mark.parametrize("solver", ["mg", "jacobi"])
@pytest.mark.parametrize("periodic", [False, True])
def test_agrees_with_sparse_direct_solve(periodic, solver):
    rng = np.random.default_rng(7)
    labels = rng.choice(np.array([0, 1, 2], np.uint8), size=(9, 10, 11), p=[0.25, 0.5, 0.25])
    sigma = np.zeros(256)
    sigma[[0, 1, 2]] = [0.0, 1.0, 0.1]
    phases = {"i": {"label": 0}, "a": {"label": 1, "sigma_ionic_S_per_m": 1.0},
              "b": {"label": 2, "sigma_ionic_S_per_m": 0.1}}
    voxel = (0.7, 1.0, 1.3)
    for direction in "xyz":
        axis = "zyx".index(direction)
        ref = direct_solve(labels, sigma, voxel, axis, periodic)
        r = solve(labels, phases, direction, voxel, periodic_sides=periodic, solver=solver)
        assert ref > 0
        assert abs(r.sigma_eff_S_per_m / ref - 1) < 1e-6


def test_non_percolating_gives_zero_and_inf():
    labels = np.zeros((10, 10, 10), np.uint8)
    labels[:, :, :4] = 1          # a slab that touches the x=0 face only: dead end in x
    labels[:, 5:, 6:] = 1         # disconnected block touching x=end
    r = solve(labels, TWO, "x")
    assert not r.percolates
    assert r.sigma_eff_S_per_m == 0.0 and r.tau == math.inf and r.macmullin == math.inf
    assert "does not connect" in r.message
    assert r.to_dict()["tau"] == math.inf
    # nothing conducts at all
    r = solve(np.zeros((4, 4, 4), np.uint8), TWO, "z")
    assert r.sigma_eff_S_per_m == 0.0 and r.tau == math.inf


def test_isolated_and_dead_end_clusters_do_not_change_sigma():
    base = np.zeros((12, 12, 16), np.uint8)
    base[4:8, 4:8, :] = 1
    clean = solve(base, TWO, "x")
    cluttered = base.copy()
    cluttered[0:2, 0:2, 5:9] = 1        # isolated inclusion
    cluttered[10:12, 0:3, 0:6] = 1      # dead end touching the inlet
    cluttered[6, 8:11, 7] = 1           # dead-end branch hanging off the channel
    r = solve(cluttered, TWO, "x")
    assert abs(r.sigma_eff_S_per_m / clean.sigma_eff_S_per_m - 1) < 1e-7
    assert r.eps > clean.eps
    assert r.tau > clean.tau  # tau uses the whole phase's eps
    # exactly: the 4x4 channel carries 16/144 of the cross-section; the branch, attached at one voxel,
    # carries nothing; eps counts channel 256 + inclusion 16 + dead end 36 + branch 3 of 2304 voxels
    assert clean.sigma_eff_S_per_m == pytest.approx(2.5 * 16 / 144, rel=1e-7)
    assert r.eps == pytest.approx(311 / 2304, rel=1e-12)
    assert r.tau == pytest.approx(311 / 2304 * 144 / 16, rel=1e-7)
    assert clean.tau == pytest.approx(1.0, rel=1e-7)
    # PoreSpy's tau counts the percolating part (channel + branch) only
    assert abs(r.eps_percolating - (base.sum() + 3) / base.size) < 1e-12
    assert abs(r.tau_percolating - r.eps_percolating * 2.5 / r.sigma_eff_S_per_m) < 1e-9


def test_cell_problem_exact_cases():
    r = solve(np.ones((6, 7, 8), np.uint8), ONE, "y", (0.5, 1.0, 2.0), cell_problem=True)
    assert abs(r.tau - 1) < 1e-6
    labels = np.zeros((6, 7, 12), np.uint8)
    labels[:, :, 4:] = 1
    phases = {"a": {"label": 0, "sigma_ionic_S_per_m": 1.0}, "b": {"label": 1, "sigma_ionic_S_per_m": 0.01}}
    r = solve(labels, phases, "x", cell_problem=True)
    assert abs(r.sigma_eff_S_per_m / (12 / (4 / 1.0 + 8 / 0.01)) - 1) < 1e-6


def test_cell_problem_needs_a_winding_cluster():
    labels = np.zeros((8, 8, 8), np.uint8)
    labels[2:6, 2:6, 1:7] = 1   # touches neither x face: no path through the periodic tiling
    r = solve(labels, TWO, "x", cell_problem=True)
    assert not r.percolates and r.tau == math.inf


def test_iteration_limit_is_reported_not_a_result():
    labels = blobs((24, 24, 24), 0.6, seed=1)
    r = solve(labels, TWO, "x", max_iter=3)
    assert not r.converged
    assert math.isnan(r.sigma_eff_S_per_m) and math.isnan(r.tau)
    assert "not converged" in r.message


def test_fields_and_current_density():
    labels = blobs((20, 18, 16), 0.6, seed=5)
    voxel = (0.5, 0.5, 0.25)
    r = conductivity(Volume(labels, TWO, voxel), "z", return_fields=True, **TIGHT).results[0]
    assert r.potential.shape == labels.shape and r.current_density_A_per_m2.shape == (3,) + labels.shape
    assert np.all(np.isnan(r.potential[labels == 0]))
    pot = r.potential[~np.isnan(r.potential)]
    assert pot.min() > 0 and pot.max() < 1
    # the cell-averaged current density along z integrates to the terminal current
    area_m2 = 18 * 0.5e-6 * 16 * 0.25e-6
    mean_jz = r.current_density_A_per_m2[0].mean(dtype=np.float64)
    assert abs(mean_jz * area_m2 / r.current_in_A - 1) < 1e-4
    # sigma_eff from the terminal current agrees with the dissipation estimate
    length_m = 20 * 0.5e-6
    assert abs(r.current_in_A * length_m / area_m2 / r.sigma_eff_S_per_m - 1) < 1e-5


def test_both_carriers_in_one_call():
    labels = blobs((16, 16, 16), 0.5, seed=2)
    phases = {"SE": {"label": 0, "sigma_ionic_S_per_m": 0.1},
              "CAM": {"label": 1, "sigma_ionic_S_per_m": 0.0, "sigma_electronic_S_per_m": 10.0}}
    res = conductivity(Volume(labels, phases), "x", "both")
    assert [r.carrier for r in res] == ["ionic", "electronic"]
    assert res.get("ionic", "x").conducting_phases == ("SE",)
    assert res.get("electronic", "x").conducting_phases == ("CAM",)
    assert res.to_dict()["results"][1]["carrier"] == "electronic"
    # each solve used its own column of the phase table: the same numbers as one carrier at a
    # time, and as the single-phase structure with that phase's conductivity
    for carrier, name, sigma in (("ionic", "SE", 0.1), ("electronic", "CAM", 10.0)):
        alone = conductivity(Volume(labels, phases), "x", carrier).results[0]
        assert res.get(carrier, "x").sigma_eff_S_per_m == pytest.approx(alone.sigma_eff_S_per_m, rel=1e-12)
        unit = conductivity(Volume(labels, {"a": {"label": 0, "sigma_ionic_S_per_m": 1.0 if name == "SE" else 0.0},
                                            "b": {"label": 1, "sigma_ionic_S_per_m": 1.0 if name == "CAM" else 0.0}}),
                            "x").results[0]
        assert res.get(carrier, "x").sigma_eff_S_per_m == pytest.approx(sigma * unit.sigma_eff_S_per_m, rel=2e-3)
        assert res.get(carrier, "x").tau == pytest.approx(unit.tau, rel=2e-3)


def test_tau_independent_of_conductivity_scale():
    labels = blobs((16, 16, 16), 0.55, seed=9)
    taus = [solve(labels, {"i": {"label": 0}, "c": {"label": 1, "sigma_ionic_S_per_m": s}}, "y").tau
            for s in (1e-9, 1.0, 1e6)]
    assert max(taus) - min(taus) < 1e-6 * taus[0]


from hypothesis import given, settings, strategies as st


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), s1=st.floats(1e-3, 1e3), s2=st.floats(1e-3, 1e3),
       direction=st.sampled_from("xyz"))
def test_wiener_bounds_and_mirror_symmetry(seed, s1, s2, direction):
    # With every phase conducting, sigma_eff lies between the harmonic and arithmetic means,
    # and mirroring the volume along the direction (swapping inlet and outlet) changes nothing.
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, size=(7, 8, 9)).astype(np.uint8)
    sig = np.array([1.0, s1, s2])
    phases = {f"p{k}": {"label": k, "sigma_ionic_S_per_m": float(sig[k])} for k in range(3)}
    frac = np.bincount(labels.ravel(), minlength=3) / labels.size
    lo, hi = 1 / (frac / sig).sum(), (frac * sig).sum()
    r = solve(labels, phases, direction, rtol=1e-9, current_tol=1e-7)
    assert lo * (1 - 1e-9) <= r.sigma_eff_S_per_m <= hi * (1 + 1e-9)
    flipped = np.flip(labels, axis="zyx".index(direction))
    r2 = solve(flipped, phases, direction, rtol=1e-9, current_tol=1e-7)
    assert abs(r2.sigma_eff_S_per_m / r.sigma_eff_S_per_m - 1) < 1e-7


# -- every reported number on volumes where the quantities that could be confused differ ----------

THREE = {"ins": {"label": 0}, "A": {"label": 1, "sigma_ionic_S_per_m": 2.0},
         "B": {"label": 2, "sigma_ionic_S_per_m": 0.5}}
VOXEL_123 = (0.5, 1.5, 2.0)


def _channel_dead_end_isolated():
    """(6, 7, 10) voxels: a 2x2 channel of A along x through the last z and y rows (the only part that
    percolates along x), a dead end of B from the x = 0 face and an isolated block of A."""
    labels = np.zeros((6, 7, 10), np.uint8)
    labels[4:6, 5:7, :] = 1        # channel: 40 voxels
    labels[0:2, 0:2, 0:5] = 2      # dead end of B: 20 voxels
    labels[0:2, 4, 7:9] = 1        # isolated A: 4 voxels
    return labels


def test_every_reported_field_along_a_channel_with_dead_end_and_isolated_parts():
    labels = _channel_dead_end_isolated()
    res = conductivity(Volume(labels, THREE, VOXEL_123), "x", **TIGHT)
    r = res.get("ionic", "x")
    # hand counts: 64 conducting voxels of 420, 40 of them percolating; sigma_ref over the conducting ones
    eps, eps_perc = 64 / 420, 40 / 420
    sigma_ref = (44 * 2.0 + 20 * 0.5) / 64
    # a straight channel: the conductivity of A times the channel's share of the cross-section
    sigma_eff = 2.0 * 4 / 42
    assert r.converged and r.percolates and r.message == "converged"
    assert r.conducting_phases == ("A", "B")
    assert r.eps == pytest.approx(eps, rel=1e-12)
    assert r.eps_percolating == pytest.approx(eps_perc, rel=1e-12)
    assert r.sigma_ref_S_per_m == pytest.approx(sigma_ref, rel=1e-12)
    assert r.sigma_eff_S_per_m == pytest.approx(sigma_eff, rel=1e-6)
    assert r.sigma_eff_S_per_cm == pytest.approx(sigma_eff / 100, rel=1e-6)
    assert r.normalised_sigma == pytest.approx(sigma_eff / sigma_ref, rel=1e-6)
    assert r.tau == pytest.approx(eps * sigma_ref / sigma_eff, rel=1e-6)          # 1.225
    assert r.tau == pytest.approx(1.225, rel=1e-6)
    assert r.tau_percolating == pytest.approx(1.0, rel=1e-6)                       # PoreSpy: the channel alone
    assert r.macmullin == pytest.approx(sigma_ref / sigma_eff, rel=1e-6)          # 8.0390625
    assert r.macmullin == pytest.approx(r.tau / r.eps, rel=1e-9)
    assert r.tau_bruggeman == pytest.approx(1 / math.sqrt(eps), rel=1e-12)
    # 1 V over 10 x 2 um; cross-section 6 x 0.5 um by 7 x 1.5 um
    current = sigma_eff * (3.0e-6 * 10.5e-6) / 20e-6
    assert r.current_in_A == pytest.approx(current, rel=1e-6)
    assert r.current_out_A == pytest.approx(current, rel=1e-6)
    d = res.to_dict()
    assert d["shape"] == [6, 7, 10] and d["voxel_size_um"] == list(VOXEL_123)
    row = d["results"][0]
    for key in ("eps", "eps_percolating", "sigma_ref_S_per_m", "sigma_eff_S_per_m", "sigma_eff_S_per_cm",
                "normalised_sigma", "tau", "tau_percolating", "macmullin", "tau_bruggeman", "current_in_A",
                "current_out_A"):
        assert row[key] == getattr(r, key)
    assert row["conducting_phases"] == ["A", "B"] and row["percolates"] is True and row["converged"] is True
    assert row["solver"]["converged"] is True and row["solver"]["iterations"] == r.solver.iterations


def test_fields_of_a_direction_that_does_not_percolate():
    r = conductivity(Volume(_channel_dead_end_isolated(), THREE, VOXEL_123), "y", **TIGHT).results[0]
    assert not r.percolates and r.solver is None
    assert r.eps == pytest.approx(64 / 420, rel=1e-12) and r.eps_percolating == 0.0
    assert r.sigma_ref_S_per_m == pytest.approx(98 / 64, rel=1e-12)
    assert r.sigma_eff_S_per_m == 0.0 and r.current_in_A == 0.0 and r.current_out_A == 0.0
    assert r.tau == r.tau_percolating == r.macmullin == math.inf
    assert r.tau_bruggeman == pytest.approx((64 / 420) ** -0.5, rel=1e-12)


@pytest.mark.parametrize("direction", ["x", "y", "z"])
def test_potential_and_current_density_of_a_straight_channel(direction):
    # exact fields: the potential falls linearly from 1 to 0 along the channel (cell centres half a voxel
    # from the fixed-potential faces), j = sigma * 1 V / L along the channel and 0 across it; NaN potential
    # outside the percolating network, dead ends and isolated parts included
    axis = "zyx".index(direction)
    shape = [7, 8, 9]
    shape[axis] = 10
    labels = np.zeros(shape, np.uint8)
    sl = [slice(-2, None)] * 3           # the channel runs through the last rows of both other axes
    sl[axis] = slice(None)
    labels[tuple(sl)] = 1
    dead = [slice(0, 2)] * 3
    dead[axis] = slice(0, 4)
    labels[tuple(dead)] = 2              # dead end from the inlet face
    voxel = (0.5, 1.5, 2.0)
    r = conductivity(Volume(labels, THREE, voxel), direction, return_fields=True, **TIGHT).results[0]
    n = shape[axis]
    length_m = n * voxel[axis] * 1e-6
    channel = np.zeros(shape, bool)
    channel[tuple(sl)] = True
    assert np.all(np.isnan(r.potential[~channel]))
    pos = np.arange(n)
    expected = np.broadcast_to(np.expand_dims(1 - (pos + 0.5) / n, [a for a in range(3) if a != axis]), shape)
    np.testing.assert_allclose(r.potential[channel], expected[channel], atol=1e-6)
    j = r.current_density_A_per_m2
    np.testing.assert_allclose(j[axis][channel], 2.0 / length_m, rtol=1e-5)
    for a in range(3):
        if a != axis:
            assert np.abs(j[a]).max() <= 1e-6 * 2.0 / length_m
    assert np.all(j[:, ~channel] == 0)


def test_command_line_result_json_has_every_number(tmp_path):
    # `microsim conductivity --out`: every number of result.json for a channel with a dead end, by hand
    import json

    from microsim.cli import main

    labels = _channel_dead_end_isolated()
    np.save(tmp_path / "v.npy", labels)
    (tmp_path / "p.toml").write_text('[phases.ins]\nlabel = 0\n\n[phases.A]\nlabel = 1\nsigma_ionic_S_per_m = 2.0\n'
                                     '\n[phases.B]\nlabel = 2\nsigma_ionic_S_per_m = 0.5\n')
    out = tmp_path / "r.json"
    assert main(["conductivity", str(tmp_path / "v.npy"), "--phases", str(tmp_path / "p.toml"), "--voxel-size",
                 "0.5,1.5,2.0", "--direction", "x,y", "--rtol", "1e-8", "--out", str(out), "--quiet"]) == 0
    doc = json.loads(out.read_text())
    assert doc["shape"] == [6, 7, 10] and doc["voxel_size_um"] == [0.5, 1.5, 2.0]
    x, y = doc["results"]
    sigma_eff = 2.0 * 4 / 42
    want = {"eps": 64 / 420, "eps_percolating": 40 / 420, "sigma_ref_S_per_m": 98 / 64, "sigma_eff_S_per_m": sigma_eff,
            "sigma_eff_S_per_cm": sigma_eff / 100, "normalised_sigma": sigma_eff / (98 / 64), "tau": 1.225,
            "tau_percolating": 1.0, "macmullin": (98 / 64) / sigma_eff, "tau_bruggeman": (64 / 420) ** -0.5,
            "current_in_A": sigma_eff * 31.5e-12 / 20e-6, "current_out_A": sigma_eff * 31.5e-12 / 20e-6}
    for key, value in want.items():
        assert x[key] == pytest.approx(value, rel=1e-6), key
    assert (x["carrier"], x["direction"], x["percolates"], x["converged"]) == ("ionic", "x", True, True)
    assert x["conducting_phases"] == ["A", "B"] and x["cell_problem"] is False and x["periodic_sides"] is False
    # strict JSON has no infinity: a direction that does not percolate writes "inf"
    assert (y["tau"], y["tau_percolating"], y["macmullin"]) == ("inf", "inf", "inf")
    assert y["sigma_eff_S_per_m"] == 0.0 and y["eps_percolating"] == 0.0 and y["percolates"] is False
