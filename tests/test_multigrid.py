"""The multigrid solver: exact cases, agreement with the Jacobi reference, the V-cycle as a
symmetric positive definite preconditioner, Galerkin coarse operators that do not leak
through insulators, accuracy control and the memory estimate."""
from __future__ import annotations

import importlib
import json
import math
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy import ndimage

from kernels import fv
from kernels import multigrid as mg
from microsim import MemoryLimitError, Volume, conductivity, estimate_memory, largest_crop, percolation
from microsim.solve.local import LocalProblem
from microsim.solve.multigrid import GeometricMultigrid

C = importlib.import_module("microsim.conductivity")  # the module, not the function of that name

TWO = {"i": {"label": 0}, "c": {"label": 1, "sigma_ionic_S_per_m": 2.5}}
CONTRAST = {"low": {"label": 0, "sigma_ionic_S_per_m": 1e-6}, "high": {"label": 1, "sigma_ionic_S_per_m": 1.0}}
TIGHT = dict(rtol=1e-10)


def blobs(shape, eps, seed, sigma=2.0):
    field = ndimage.gaussian_filter(np.random.default_rng(seed).standard_normal(shape), sigma, mode="wrap")
    return (field > np.quantile(field, 1 - eps)).astype(np.uint8)


def one(labels, phases, direction="x", voxel=(1.0, 1.0, 1.0), **kw):
    return conductivity(Volume(labels, phases, voxel), direction, **kw).results[0]


# ---------------------------------------------------------------------------
# exact and analytic cases


@pytest.mark.parametrize("periodic", [False, True])
def test_uniform_block_and_straight_channels_are_exact(periodic):
    r = one(np.ones((9, 12, 15), np.uint8), TWO, "y", (0.3, 0.5, 0.7), solver="mg", periodic_sides=periodic)
    assert r.solver.method == "pcg-mg" and r.solver.iterations == 0  # the initial guess is the solution
    assert abs(r.tau - 1) < 1e-12
    section = np.random.default_rng(3).random((14, 11)) < 0.4
    labels = np.repeat(section[:, :, None], 13, axis=2).astype(np.uint8)
    r = one(labels, TWO, "x", (0.4, 0.9, 1.3), solver="mg", periodic_sides=periodic)
    assert abs(r.tau - 1) < 1e-12 and abs(r.sigma_eff_S_per_m - 2.5 * section.mean()) < 1e-11


@pytest.mark.parametrize("contrast", [1e2, 1e6])
@pytest.mark.parametrize("direction", ["x", "z"])
def test_series_and_parallel_layers_at_high_contrast(direction, contrast):
    axis = "zyx".index(direction)
    phases = {"a": {"label": 0, "sigma_ionic_S_per_m": 1.0}, "b": {"label": 1, "sigma_ionic_S_per_m": 1 / contrast}}
    sig = {0: 1.0, 1: 1 / contrast}
    stack = np.array([0] * 5 + [1] * 3 + [0] * 6 + [1] * 2, np.uint8)
    view = [1, 1, 1]
    view[axis] = stack.size
    shape = [7, 8, 9]
    shape[axis] = stack.size
    series = np.broadcast_to(stack.reshape(view), shape).copy()
    exact = stack.size / sum(1 / sig[s] for s in stack)
    r = one(series, phases, direction, (0.5, 1.0, 2.0), solver="mg", **TIGHT)
    assert r.converged and abs(r.sigma_eff_S_per_m / exact - 1) < 1e-8
    # parallel: the layers stacked across the transport direction
    other = (axis + 1) % 3
    view = [1, 1, 1]
    view[other] = stack.size
    shape = [7, 8, 9]
    shape[other] = stack.size
    parallel = np.broadcast_to(stack.reshape(view), shape).copy()
    exact = sum(sig[s] for s in stack) / stack.size
    r = one(parallel, phases, direction, (0.5, 1.0, 2.0), solver="mg", **TIGHT)
    assert abs(r.sigma_eff_S_per_m / exact - 1) < 1e-8 and abs(r.tau - 1) < 1e-8


def test_cell_problem_series_layers():
    labels = np.zeros((5, 7, 13), np.uint8)
    labels[:, :, 4:] = 1
    phases = {"a": {"label": 0, "sigma_ionic_S_per_m": 1.0}, "b": {"label": 1, "sigma_ionic_S_per_m": 0.01}}
    r = one(labels, phases, "x", solver="mg", cell_problem=True, **TIGHT)
    assert abs(r.sigma_eff_S_per_m / (13 / (4 / 1.0 + 9 / 0.01)) - 1) < 1e-8


# ---------------------------------------------------------------------------
# the reference solver


def random3(shape, seed):
    return np.random.default_rng(seed).choice(np.array([0, 1, 2], np.uint8), size=shape, p=[0.25, 0.5, 0.25])


THREE = {"i": {"label": 0}, "a": {"label": 1, "sigma_ionic_S_per_m": 1.0},
         "b": {"label": 2, "sigma_ionic_S_per_m": 0.01}}


@pytest.mark.parametrize("shape, direction, opts", [
    ((13, 14, 15), "x", {}),
    ((13, 14, 15), "y", {"periodic_sides": True}),       # odd periodic axes: extra colours
    ((11, 12, 9), "z", {"cell_problem": True}),          # singular: constant null vector
    ((1, 17, 19), "x", {"periodic_sides": True}),       # a periodic axis of one cell
    ((9, 2, 21), "x", {}),                               # an axis that cannot coarsen much
    ((24, 20, 22), "y", {}),                             # three levels
])
def test_multigrid_matches_jacobi(shape, direction, opts):
    labels = random3(shape, seed=sum(shape))
    voxel = (0.7, 1.0, 1.3)
    a = one(labels, THREE, direction, voxel, solver="mg", **TIGHT, **opts)
    # the reference's float32 residual recursion cannot go much below 1e-8
    b = one(labels, THREE, direction, voxel, solver="jacobi", rtol=1e-8, **opts)
    assert a.percolates and a.converged and b.converged
    assert abs(a.sigma_eff_S_per_m / b.sigma_eff_S_per_m - 1) < 1e-9
    assert a.solver.iterations < b.solver.iterations


def near_threshold(n, seed):
    """The lowest fraction (in steps of 0.01) at which a blobs structure still percolates along x."""
    for eps in np.arange(0.10, 0.30, 0.01):
        labels = blobs((n, n, n), eps, seed=seed)
        if percolation(labels == 1, "x").percolates:
            return labels
    raise AssertionError("no percolating fraction below 0.3")


@pytest.mark.parametrize("high", [0.1, 0.3])
def test_contrast_1e6_matches_jacobi(high):
    # 0.1: islands of the good conductor float in the poor one (a plateau in the convergence)
    labels = blobs((24, 24, 24), high, seed=4)
    a = one(labels, CONTRAST, solver="mg", rtol=1e-9)
    # A small residual alone does not make the reference accurate at this contrast.
    b = one(labels, CONTRAST, solver="jacobi", rtol=1e-8, tol=1e-7)
    assert a.converged and b.converged
    assert abs(a.tau / b.tau - 1) < 1e-6


def test_near_threshold_matches_jacobi():
    labels = near_threshold(32, seed=9)
    a = one(labels, TWO, solver="mg", rtol=1e-9)
    b = one(labels, TWO, solver="jacobi", rtol=1e-8)
    assert a.percolates and a.eps < 0.3 and abs(a.tau / b.tau - 1) < 1e-8


# ---------------------------------------------------------------------------
# the V-cycle


def discretised(labels, lut, axis=2, periodic_sides=False, cell_problem=False):
    perc = percolation(lut[labels] > 0, "zyx"[axis], periodic_sides=periodic_sides or cell_problem,
                       periodic_direction=cell_problem)
    return C.discretise(labels, lut, (1.0, 1.2, 0.8), axis, perc.percolating, periodic_sides or cell_problem,
                        cell_problem)


def operator_matrix(d):
    """A over the interior cells (sparse), column by column from the solver's own operator kernel."""
    inner = (slice(1, -1),) * 3
    n = int(np.prod(np.array(d.lab.shape) - 2))
    v = np.zeros(d.lab.shape)
    out = np.zeros(d.lab.shape)
    part = np.zeros(d.lab.shape[0])
    rows, cols, vals = [], [], []
    for c in range(n):
        v[...] = 0.0
        v[inner].flat[c] = 1.0
        LocalProblem(d).refresh(v, 0.0)
        fv.apply_operator(d.lab, d.g, v, out, 1.0, part)
        col = out[inner].ravel()
        nz = np.flatnonzero(col)
        rows.append(nz)
        cols.append(np.full(nz.size, c))
        vals.append(col[nz])
    return sp.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))


@pytest.mark.parametrize("shape, opts", [((6, 6, 6), {}), ((5, 6, 7), {"periodic_sides": True}),
                                         ((7, 5, 6), {"cell_problem": True})])
def test_vcycle_is_symmetric_positive_definite(shape, opts):
    lut = np.zeros(256)
    lut[1], lut[2] = 1.0, 0.05
    labels = np.random.default_rng(1).choice(np.array([0, 1, 2], np.uint8), size=shape, p=[0.2, 0.6, 0.2])
    d = discretised(labels, lut, **opts)
    cycle = GeometricMultigrid(d)
    A = operator_matrix(d).toarray()
    inner = (slice(1, -1),) * 3
    x = np.zeros(d.lab.shape)
    z = np.zeros(d.lab.shape, np.float32)
    BA = np.zeros_like(A)
    for c in range(A.shape[0]):  # with zero boundary values r = -A x, so x = -e_c gives z = B A e_c
        x[...] = 0.0
        x[inner].flat[c] = -1.0
        LocalProblem(d).refresh(x, 0.0)
        cycle(x, z)
        BA[:, c] = z[inner].ravel()
    act = np.diag(A) > 0
    A, BA = A[np.ix_(act, act)], BA[np.ix_(act, act)]
    lam, vec = np.linalg.eigh(A)
    null = vec[:, lam < 1e-9 * lam[-1]]
    assert null.shape[1] == (1 if opts.get("cell_problem") else 0)
    proj = np.eye(len(A)) - null @ null.T
    B = proj @ BA @ np.linalg.pinv(A) @ proj  # B on the range of A, where residuals live
    assert np.abs(B - B.T).max() < 1e-5 * np.abs(B).max()
    assert np.linalg.eigvalsh(0.5 * (B + B.T) + null @ null.T).min() > 0


def aggregation(fine_shape, coarse_shape):
    """Piecewise-constant prolongation (fine cells x coarse cells, sparse) of 2x2x2 blocks."""
    idx = [np.minimum(np.arange(n) // 2, m - 1) for n, m in zip(fine_shape, coarse_shape)]
    parent = np.ravel_multi_index(np.meshgrid(*idx, indexing="ij"), coarse_shape).ravel()
    n = parent.size
    return sp.csc_matrix((np.ones(n), (np.arange(n), parent)), shape=(n, int(np.prod(coarse_shape))))


@pytest.mark.parametrize("shape, opts", [((10, 12, 14), {}), ((20, 20, 22), {}), ((9, 12, 13), {"periodic_sides": True})])
def test_coarse_operators_are_galerkin_and_do_not_leak(shape, opts):
    # Two conducting regions joined only at one end; an insulating wall (one voxel thick, at an
    # odd index so that it cuts through 2x2x2 blocks) separates them elsewhere.
    lut = np.zeros(256)
    lut[1] = 1.0
    labels = np.ones(shape, np.uint8)
    labels[:, 5, 3:] = 0
    d = discretised(labels, lut, **opts)
    cycle = GeometricMultigrid(d)
    lv = cycle.lv
    A = operator_matrix(d)
    fine = tuple(np.array(d.lab.shape) - 2)
    for level in range(1, len(lv)):
        coarse = tuple(int(v) for v in lv[level, :3])
        P = aggregation(fine, coarse)
        A = 0.5 * (P.T @ A @ P)  # Galerkin, scaled for the doubled energy of constant interpolation
        fine = coarse
    A = A.toarray()
    bottom = len(lv) - 1
    Ac, cells = mg.coarsest_matrix(mg.level_faces(cycle.faces, lv, bottom), cycle.codes if bottom == 1 else
                                   cycle.no_codes, cycle.tab, lv[bottom, :3].copy(), cycle.periodic)
    flat = np.ravel_multi_index(tuple((cells - 1).T), fine)
    assert np.array_equal(np.flatnonzero(np.diag(A) > 0), np.sort(flat))  # inactive = zero diagonal
    assert np.allclose(Ac, A[np.ix_(flat, flat)], rtol=1e-6, atol=1e-7 * np.abs(A).max())
    if bottom == 1:
        # Level-1 cells y = 2 (fine 4, 5) and y = 3 (fine 6, 7) meet only through the wall where
        # it stands (fine x >= 3, level-1 x >= 2) and conduct to each other where it does not.
        def coupling(i):
            rows = np.flatnonzero((cells[:, 1] == 3) & (cells[:, 2] == i + 1))
            cols = np.flatnonzero((cells[:, 1] == 4) & (cells[:, 2] == i + 1))
            return Ac[np.ix_(rows, cols)]
        assert all(np.all(coupling(i) == 0) for i in range(2, fine[2]))
        assert np.all(np.diag(coupling(0)) < 0)


# ---------------------------------------------------------------------------
# iterations and accuracy


def test_iterations_nearly_flat_as_the_volume_grows():
    its = {}
    for n in (32, 64, 128):
        its[n] = one(blobs((n, n, n), 0.5, seed=3), TWO).solver.iterations
    assert its[128] < 2 * its[32], its
    jac = {n: one(blobs((n, n, n), 0.5, seed=3), TWO, solver="jacobi").solver.iterations for n in (32, 64)}
    assert jac[64] > 1.4 * jac[32], (its, jac)  # the reference grows with the edge length


def direct_sigma(labels, phases, direction="x"):
    """sigma_eff of the same discretisation (fixed potentials, no-flux sides) by a sparse direct solve."""
    volume = Volume(labels, phases)
    lut = volume.conductivity_lut("ionic")
    axis = "zyx".index(direction)
    d = C.discretise(labels, lut, volume.voxel_size_um, axis, percolation(lut[labels] > 0, direction).percolating)
    lab, shape = d.lab, labels.shape
    index = np.arange(labels.size).reshape(shape)
    rows, cols, vals = [], [], []
    diag = np.zeros(labels.size)
    rhs = np.zeros(labels.size)
    for a in range(3):
        n = shape[a]
        lo, hi = [slice(1, -1)] * 3, [slice(1, -1)] * 3
        lo[a], hi[a] = slice(0, -1), slice(1, None)
        face = d.g[a][lab[tuple(lo)], lab[tuple(hi)]]  # the n + 1 faces along a, boundary faces included
        f = np.take(face, range(1, n), axis=a).ravel()
        i0 = np.take(index, range(0, n - 1), axis=a).ravel()
        i1 = np.take(index, range(1, n), axis=a).ravel()
        rows += [i0, i1]
        cols += [i1, i0]
        vals += [-f, -f]
        np.add.at(diag, i0, f)
        np.add.at(diag, i1, f)
        for k, cell in ((0, 0), (n, n - 1)):
            fb = np.take(face, k, axis=a).ravel()
            cells = np.take(index, cell, axis=a).ravel()
            np.add.at(diag, cells, fb)
            if a == axis and k == 0:
                rhs[cells] += fb  # potential 1 at the inlet, 0 at the outlet
    A = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(labels.size,) * 2)
    A = A + sp.diags(diag)
    act = diag > 0
    x = np.zeros(labels.size)
    x[act] = spla.spsolve(A[act][:, act].tocsc(), rhs[act])
    pot = np.zeros(lab.shape)
    pot[(slice(None),) * axis + (0,)] = 1.0
    pot[(slice(1, -1),) * 3] = x.reshape(shape)
    part = np.zeros(lab.shape[0])
    fv.dissipation(lab, d.g, pot, d.periodic, part)
    size = volume.size_um
    return part.sum() * d.sigma_scale * size[axis] ** 2 / (size[0] * size[1] * size[2])


@pytest.mark.parametrize("name, labels, phases, opts", [
    ("eps 0.3", blobs((40, 40, 40), 0.3, seed=1), TWO, {}),
    ("eps 0.7", blobs((40, 40, 40), 0.7, seed=2), TWO, {}),
    ("near threshold", near_threshold(36, seed=5), TWO, {}),
    ("contrast 1e6", blobs((36, 36, 36), 0.3, seed=6), CONTRAST, {}),
    ("islands, contrast 1e6", blobs((30, 30, 30), 0.1, seed=4), CONTRAST, {}),  # a plateau: see microsim.solve.accuracy
    ("cell problem", blobs((36, 36, 36), 0.4, seed=7), TWO, {"cell_problem": True}),
    ("periodic sides", blobs((35, 35, 35), 0.4, seed=8), TWO, {"periodic_sides": True}),
])
def test_default_tolerance_gives_tau_within_0_1_percent(name, labels, phases, opts):
    if opts:
        ref = one(labels, phases, solver="mg", rtol=1e-9, **opts)
        assert ref.converged
        sigma = ref.sigma_eff_S_per_m
    else:
        sigma = direct_sigma(labels, phases)
    for solver in ("mg", "jacobi"):
        r = one(labels, phases, solver=solver, **opts)
        err = sigma / r.sigma_eff_S_per_m - 1  # relative error of tau
        assert r.converged and r.solver.tol == C.DEFAULT_TOL and r.solver.rtol is None
        assert abs(err) < 1e-3, (name, solver, err)
        # sigma_eff from the dissipation is never below the converged value: tau is never above it
        assert err < 1e-9
        assert r.solver.error_estimate <= r.solver.tol
        assert r.solver.error_estimate >= 0.5 * abs(err)


def test_tolerance_parameters():
    labels = blobs((20, 20, 20), 0.5, seed=5)
    r = one(labels, TWO, rtol=1e-7)
    # rtol adds a criterion; the bound on the error of sigma_eff always applies
    assert r.solver.tol == C.DEFAULT_TOL and r.solver.rtol == 1e-7 and r.solver.relative_residual <= 1e-7
    r = one(labels, TWO, tol=1e-6, current_tol=1e-5)
    assert r.solver.error_estimate <= 1e-6 and r.solver.current_mismatch <= 1e-5
    assert r.to_dict()["solver"]["error_estimate"] == r.solver.error_estimate
    with pytest.raises(ValueError, match="tol = -1 is outside"):
        one(labels, TWO, tol=-1)
    with pytest.raises(ValueError, match="not one of mg, jacobi"):
        one(labels, TWO, solver="amg")
    r = one(labels, TWO, max_iter=2)
    assert not r.converged and math.isnan(r.tau) and "estimated error" in r.message


# ---------------------------------------------------------------------------
# memory


def measured_peak(volume, **kw):
    conductivity(volume, "x", **kw)  # compiled and warm
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    conductivity(volume, "x", **kw)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return peak + volume.labels.nbytes


@pytest.mark.parametrize("opts", [dict(solver="mg"), dict(solver="jacobi"), dict(solver="mg", return_fields=True),
                                  dict(solver="mg", periodic_sides=True)])
def test_memory_estimate_matches_the_allocations(opts):
    labels = blobs((64, 64, 64), 0.5, seed=2)
    peak = measured_peak(Volume(labels, TWO), **opts)
    est = estimate_memory(labels.shape, opts["solver"], periodic=opts.get("periodic_sides", False),
                          return_fields=opts.get("return_fields", False))
    assert 0.97 < peak / est.peak_bytes < 1.03, (peak / labels.size, est.to_dict())


def test_memory_at_most_20_bytes_per_voxel_for_large_volumes():
    for n in (512, 1024):
        est = estimate_memory((n, n, n))
        assert est.bytes_per_voxel <= 20.0, est.to_dict()
    assert estimate_memory((1024,) * 3).peak_bytes < 24 * 2**30
    # the reference keeps a float32 residual and product as well
    assert estimate_memory((512,) * 3, "jacobi").bytes_per_voxel > 22


def test_refuses_a_volume_that_does_not_fit_before_allocating(tmp_path):
    labels = np.ones((150, 160, 170), np.uint8)
    labels[::7] = 0
    volume = Volume(labels, TWO)
    need = estimate_memory(labels.shape).peak_bytes
    tracemalloc.start()
    with pytest.raises(MemoryLimitError, match="largest crop that fits is about") as exc:
        conductivity(volume, "all", max_memory_bytes=need / 3)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < need / 20  # nothing of the solve's size was allocated
    assert isinstance(exc.value, ValueError) and "\n" not in str(exc.value)
    crop = largest_crop(labels.shape, need / 3)
    assert " x ".join(map(str, crop)) in str(exc.value)
    assert estimate_memory(crop).peak_bytes <= need / 3 < estimate_memory(tuple(c + 1 for c in crop)).peak_bytes
    # the command line: one line, exit code 2, no output file
    np.save(tmp_path / "v.npy", labels[:40, :40, :40])
    (tmp_path / "p.toml").write_text('[phases.i]\nlabel = 0\n[phases.c]\nlabel = 1\nsigma_ionic_S_per_m = 1.0\n')
    out = tmp_path / "r.json"
    proc = subprocess.run([sys.executable, "-m", "microsim", "conductivity", str(tmp_path / "v.npy"), "--phases",
                           str(tmp_path / "p.toml"), "--max-memory", "100K", "--out", str(out), "--quiet"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and not out.exists()
    assert proc.stderr.count("\n") == 1 and "largest crop" in proc.stderr and "--max-memory" in proc.stderr


def test_command_line_solver_choice(tmp_path):
    labels = blobs((24, 24, 24), 0.5, seed=3)
    np.save(tmp_path / "v.npy", labels)
    (tmp_path / "p.toml").write_text('[phases.i]\nlabel = 0\n[phases.c]\nlabel = 1\nsigma_ionic_S_per_m = 1.0\n')
    taus = {}
    for solver in ("mg", "jacobi"):
        out = tmp_path / f"{solver}.json"
        proc = subprocess.run([sys.executable, "-m", "microsim", "conductivity", str(tmp_path / "v.npy"), "--phases",
                               str(tmp_path / "p.toml"), "--direction", "x", "--solver", solver, "--tol", "1e-4",
                               "--out", str(out), "--quiet"], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        res = json.loads(out.read_text())["results"][0]
        assert res["solver"]["method"] == f"pcg-{solver}" and res["solver"]["tol"] == 1e-4
        taus[solver] = res["tau"]
    assert abs(taus["mg"] / taus["jacobi"] - 1) < 2e-4
