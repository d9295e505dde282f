"""The hard cases: every phase of the real volumes, poorly connected networks and extreme contrasts.

Each solve of the default solver is checked against an independent sparse
direct solve of the same discretisation (tests/references.py) on a crop small
enough to factorise; the full volumes are in benchmarks/bench_solvers.py.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import tifffile
from scipy import ndimage

from microsim import Volume, conductivity
from microsim.cli import main
from microsim.solve import preconditioners
from microsim.solve.local import LocalProblem
from references import direct_solve

#: (file, {phase: label}) of every volume in ../shared/data with its phases
SHARED = [
    ("taufactor_electrode_NMC_pore_CBD_256.tiff", {"pore": 0, "NMC": 85, "CBD": 170}),
    ("NREL_nmc-1-cal_generatedCBD_bridge.tif", {"pore": 0, "NMC": 1, "CBD": 2}),
    ("MATBOX_Ellipsoids.tif", {"pore": 0, "particles": 1}),
    ("MATBOX_Bi_layer.tif", {"pore": 0, "layer1": 1, "layer2": 2}),
    ("TF-500x500x500-1x2x6-v3_deflate.tif", {"rest": 0, "conducting": 255}),
]
CROP = 32
VOXEL = (0.4, 0.5, 0.6)
_cache: dict = {}


def crop_of(shared_data, name):
    if name not in _cache:
        arr = tifffile.imread(shared_data / name)
        z0 = (arr.shape[0] - CROP) // 2
        _cache[name] = np.ascontiguousarray(arr[z0:z0 + CROP, :CROP, :CROP])
    return _cache[name]


def one_phase(names, conducting, sigma=1.0):
    return {n: ({"label": l, "sigma_ionic_S_per_m": sigma} if n == conducting else {"label": l})
            for n, l in names.items()}


def lut_of(phases):
    lut = np.zeros(256)
    for p in phases.values():
        lut[p["label"]] = p.get("sigma_ionic_S_per_m", 0.0)
    return lut


def check_against_direct(labels, phases, direction, rel=1e-3, **kw):
    """Solve with microsim and directly; returns the microsim result after comparing sigma_eff."""
    axis = "zyx".index(direction)
    ref = direct_solve(labels, lut_of(phases), VOXEL, axis)
    r = conductivity(Volume(labels, phases, voxel_size_um=VOXEL), direction, **kw).results[0]
    if ref == 0.0:
        assert not r.percolates and r.sigma_eff_S_per_m == 0.0 and r.tau == math.inf
    else:
        assert r.converged, r.message
        assert abs(r.sigma_eff_S_per_m / ref - 1) <= rel, (r.sigma_eff_S_per_m, ref, r.solver)
    return r


CASES = [(name, phase) for name, names in SHARED for phase in names]


@pytest.mark.parametrize("name,phase", CASES, ids=[f"{n.split('_')[0]}-{p}" for n, p in CASES])
def test_every_phase_of_every_real_volume_along_every_axis(shared_data, name, phase):
    names = dict(SHARED)[name]
    labels = crop_of(shared_data, name)
    for direction in "xyz":
        check_against_direct(labels, one_phase(names, phase), direction)


@pytest.mark.parametrize("name,phase,direction", [
    ("taufactor_electrode_NMC_pore_CBD_256.tiff", "NMC", "x"),
    ("NREL_nmc-1-cal_generatedCBD_bridge.tif", "CBD", "z"),
    ("NREL_nmc-1-cal_generatedCBD_bridge.tif", "NMC", "y"),
])
def test_algebraic_stage_agrees_with_direct_solve(shared_data, monkeypatch, name, phase, direction):
    """The stage that takes over where the box V-cycle stalls, forced after two iterations."""
    monkeypatch.setattr(preconditioners, "GMG_BUDGET", 2)
    labels = crop_of(shared_data, name)
    r = check_against_direct(labels, one_phase(dict(SHARED)[name], phase), direction)
    if r.percolates:
        assert [s for s, _ in r.solver.stages] == ["mg", "amg"], r.solver


def test_non_percolating_layers_are_instant(shared_data):
    labels = tifffile.imread(shared_data / "MATBOX_Bi_layer.tif")
    for phase in ("layer1", "layer2"):
        v = Volume(labels, one_phase(dict(SHARED)["MATBOX_Bi_layer.tif"], phase))
        r = conductivity(v, "z").results[0]
        assert not r.percolates and r.sigma_eff_S_per_m == 0.0 and r.tau == math.inf and r.solver is None


# ---------------------------------------------------------------------------
# contrast

CONTRASTS = [1e4, 1e8, 1e12]


@pytest.mark.parametrize("contrast", CONTRASTS)
@pytest.mark.parametrize("direction", ["x", "z"])
def test_series_and_parallel_layers_exact_at_every_contrast(direction, contrast):
    axis = "zyx".index(direction)
    phases = {"good": {"label": 0, "sigma_ionic_S_per_m": 1e3}, "poor": {"label": 1, "sigma_ionic_S_per_m": 1e3 / contrast}}
    sig = {0: 1e3, 1: 1e3 / contrast}
    thickness, layer_labels = [4, 1, 6, 2, 3], [0, 1, 0, 1, 0]
    stack = np.concatenate([np.full(t, l, np.uint8) for t, l in zip(thickness, layer_labels)])
    for arrangement in ("series", "parallel"):
        along = axis if arrangement == "series" else (axis + 1) % 3
        shape = [5, 6, 7]
        shape[along] = len(stack)
        view = [1, 1, 1]
        view[along] = len(stack)
        labels = np.broadcast_to(stack.reshape(view), shape).copy()
        if arrangement == "series":
            exact = sum(thickness) / sum(t / sig[l] for t, l in zip(thickness, layer_labels))
        else:
            exact = sum(t * sig[l] for t, l in zip(thickness, layer_labels)) / sum(thickness)
        r = conductivity(Volume(labels, phases, voxel_size_um=VOXEL), direction).results[0]
        assert r.converged, r.message
        assert abs(r.sigma_eff_S_per_m / exact - 1) < 1e-6, (arrangement, r.sigma_eff_S_per_m, exact)


def islands(shape, fraction, seed):
    """A good conductor (label 1) below its percolation threshold in a poor one (label 0)."""
    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.standard_normal(shape), 1.5, mode="wrap")
    return (field > np.quantile(field, 1 - fraction)).astype(np.uint8)


@pytest.mark.parametrize("contrast", CONTRASTS)
def test_islands_of_a_good_conductor_at_every_contrast(contrast):
    labels = islands((24, 24, 24), 0.22, seed=3)
    phases = {"poor": {"label": 0, "sigma_ionic_S_per_m": 1.0 / contrast}, "good": {"label": 1, "sigma_ionic_S_per_m": 1.0}}
    for direction in "xyz":
        check_against_direct(labels, phases, direction)


NREL_ELECTRONIC = {"pore": {"label": 0}, "NMC": {"label": 1, "sigma_ionic_S_per_m": 1e-5},
                   "CBD": {"label": 2, "sigma_ionic_S_per_m": 1e3}}


def nrel_crop(shared_data, n=32):
    arr = tifffile.imread(shared_data / "NREL_nmc-1-cal_generatedCBD_bridge.tif")
    return np.ascontiguousarray(arr[:n, 100:100 + n, 100:100 + n])


def test_nrel_electronic_network_crop(shared_data):
    """Carbon-binder at 1e3 S/m that does not span the crop, NMC at 1e-5 S/m: current crosses the particles."""
    labels = nrel_crop(shared_data)
    for direction in "xyz":
        r = check_against_direct(labels, NREL_ELECTRONIC, direction)
        assert r.tau > 10


STOPPING = [{}, {"rtol": 1e-2}, {"rtol": 1e-5}, {"current_tol": 0.1}, {"current_tol": 1e-3}, {"tol": 1e-3},
            {"solver": "jacobi", "rtol": 1e-2}, {"solver": "jacobi", "max_iter": 300}]


@pytest.mark.parametrize("opts", STOPPING, ids=[json.dumps(o) for o in STOPPING])
def test_no_stopping_option_returns_a_wrong_converged_answer(shared_data, opts):
    cases = [(nrel_crop(shared_data, 24), NREL_ELECTRONIC, "z"),
             (crop_of(shared_data, "taufactor_electrode_NMC_pore_CBD_256.tiff"),
              one_phase(dict(SHARED)["taufactor_electrode_NMC_pore_CBD_256.tiff"], "NMC"), "z"),
             (islands((20, 20, 20), 0.22, seed=5),
              {"poor": {"label": 0, "sigma_ionic_S_per_m": 1e-8}, "good": {"label": 1, "sigma_ionic_S_per_m": 1.0}}, "y")]
    for labels, phases, direction in cases:
        ref = direct_solve(labels, lut_of(phases), VOXEL, "zyx".index(direction))
        assert ref > 0
        r = conductivity(Volume(labels, phases, voxel_size_um=VOXEL), direction, **opts).results[0]
        if r.converged:
            assert abs(r.sigma_eff_S_per_m / ref - 1) <= 1e-3, (opts, r.solver)
        else:
            assert math.isnan(r.tau) and r.unconverged is not None


def test_error_estimate_bounds_the_true_error_in_the_trusted_stages(shared_data):
    """At every iterate of a stage whose estimate is trusted, the estimate is at least the true error / 2."""
    from microsim.percolation import percolation
    from microsim.solve import discretise
    from microsim.conductivity import solve_potential
    for labels, phases, direction in [(nrel_crop(shared_data, 24), NREL_ELECTRONIC, "y"),
                                      (crop_of(shared_data, "taufactor_electrode_NMC_pore_CBD_256.tiff"),
                                       one_phase(dict(SHARED)["taufactor_electrode_NMC_pore_CBD_256.tiff"], "NMC"),
                                       "z")]:
        axis = "zyx".index(direction)
        v = Volume(labels, phases, voxel_size_um=VOXEL)
        lut = v.conductivity_lut("ionic")
        d = discretise(labels, lut, VOXEL, axis, percolation(lut[labels] > 0, direction).percolating)
        history = []
        x, info, power = solve_potential(d, monitor=lambda it, est, p: history.append((it, est, p)))
        ref = direct_solve(labels, lut, VOXEL, axis)
        size = [n * h for n, h in zip(labels.shape, VOXEL)]
        p_ref = ref / (d.sigma_scale * size[axis] ** 2 / (size[0] * size[1] * size[2]))
        # at contrast the V-cycle's estimate is not trusted (its claims are confirmed by the next stage)
        contrast = preconditioners.estimate_trusted(LocalProblem(d)) is False
        if contrast:
            assert [s for s, _ in info.stages] == ["mg", "amg"], info
        trusted_from = info.stages[0][1] if contrast else 0
        checked = 0
        for it, est, p in history:
            if it > trusted_from and est < 1e-2:
                assert p / p_ref - 1 <= 2 * est + 1e-12, (it, est, p / p_ref - 1)
                checked += 1
        assert info.converged and checked >= 1


# ---------------------------------------------------------------------------
# options and failure


def test_tolerances_outside_their_range_are_refused():
    v = Volume(np.ones((4, 4, 4), np.uint8), {"c": {"label": 1, "sigma_ionic_S_per_m": 1.0}})
    for opts, what in (({"rtol": 1.0}, "rtol = 1.0 is outside"), ({"current_tol": 5}, "current_tol = 5 is outside"),
                       ({"tol": 0.5}, "tol = 0.5 is outside"), ({"tol": float("nan")}, "tol = nan"),
                       ({"max_iter": 0}, "max_iter = 0")):
        with pytest.raises(ValueError, match=what):
            conductivity(v, "x", **opts)


def test_command_line_refuses_a_tolerance_that_would_end_the_solve_at_once(tmp_path, capsys):
    np.save(tmp_path / "v.npy", np.ones((4, 4, 4), np.uint8))
    (tmp_path / "p.toml").write_text('[phases.c]\nlabel = 1\nsigma_ionic_S_per_m = 1.0\n')
    for opt in (["--rtol", "1"], ["--current-tol", "5"]):
        try:
            rc = main(["conductivity", str(tmp_path / "v.npy"), "--phases", str(tmp_path / "p.toml"), "--out",
                       str(tmp_path / "r.json")] + opt)
        except SystemExit as exc:  # argparse refuses it
            rc = exc.code
        last = capsys.readouterr().err.strip().splitlines()[-1]  # after argparse's usage line
        assert rc == 2 and last.startswith("microsim conductivity: error:") and "outside" in last
        assert not (tmp_path / "r.json").exists()


def test_a_solve_that_stops_short_says_how_far_it_got(shared_data):
    v = Volume(nrel_crop(shared_data, 24), NREL_ELECTRONIC, voxel_size_um=VOXEL)
    r = conductivity(v, "z", max_iter=3).results[0]
    assert not r.converged and math.isnan(r.tau) and math.isnan(r.sigma_eff_S_per_m)
    assert "iteration limit of 3" in r.message and "--max-iter" in r.message and "estimated error" in r.message
    assert r.unconverged["iterations"] == 3 and r.unconverged["tau"] > 0
    d = r.to_dict()
    assert d["unconverged"]["tau"] == r.unconverged["tau"] and d["solver"]["stopped"] == "iteration limit"
