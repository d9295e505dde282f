"""The distributed solver (microsim.mpi) run under mpiexec, against the single-process solver.

Most tests start ``mpiexec -n N python tests/test_mpi.py MODE ...`` in a subprocess;
the code that runs on the ranks is at the end of this file. The tests are skipped
with a reason when mpi4py or mpiexec is missing (``pip install 'microsim[mpi]'``);
``make test`` installs them. Ranks run one numba thread each, so 3 ranks
oversubscribe a 2-core machine without thrashing.
"""
from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numba
import numpy as np
import pytest
from scipy import ndimage

from microsim.solve.local import LocalProblem

ROOT = Path(__file__).resolve().parents[1]
TIGHT = dict(rtol=1e-8, current_tol=1e-6)
PHASES3 = {"pore": {"label": 0}, "SE": {"label": 1, "sigma_ionic_S_per_m": 0.2},
           "CBD": {"label": 2, "sigma_ionic_S_per_m": 0.05, "sigma_electronic_S_per_m": 10.0}}
ELECTRODE = {"electrolyte": {"label": 0, "sigma_ionic_S_per_m": 0.1},
             "NMC": {"label": 85, "sigma_electronic_S_per_m": 1.0},
             "CBD": {"label": 170, "sigma_ionic_S_per_m": 0.01, "sigma_electronic_S_per_m": 100.0}}


def _mpiexec() -> str | None:
    here = Path(sys.executable).parent / "mpiexec"
    return str(here) if here.exists() else shutil.which("mpiexec")


MPIEXEC = _mpiexec()
MISSING = ("mpi4py is not installed (pip install 'microsim[mpi]')" if importlib.util.find_spec("mpi4py") is None
           else "no mpiexec next to the Python interpreter or on PATH" if MPIEXEC is None else None)
needs_mpi = pytest.mark.skipif(MISSING is not None, reason=MISSING or "")


@functools.lru_cache(maxsize=None)
def _oversubscribe() -> tuple[str, ...]:
    # MPICH runs more ranks than cores as it is; Open MPI refuses unless told.
    out = subprocess.run([MPIEXEC, "--version"], capture_output=True, text=True, timeout=60)
    return ("--oversubscribe",) if "open mpi" in (out.stdout + out.stderr).lower() else ()


def mpirun(n: int, *args, timeout: float = 300) -> subprocess.CompletedProcess:
    # MPICH ranks busy-wait in MPI calls; on an oversubscribed or busy machine letting them sleep
    # instead makes a small run several times faster (the variable means nothing to other MPIs).
    env = dict(os.environ, NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               MPIR_CVAR_ENABLE_HEAVY_YIELD="1")
    cmd = [MPIEXEC, "-n", str(n), *_oversubscribe(), sys.executable, *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)


@contextlib.contextmanager
def one_thread():
    """Solve the small reference volumes with one numba thread (threads only cost time on them)."""
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(threads)


def blobs(shape, seed: int, fractions=(0.45, 0.1)) -> np.ndarray:
    """Labels 0 (insulating), 1 and 2 in smooth random blobs."""
    field = ndimage.gaussian_filter(np.random.default_rng(seed).random(shape), 1.5)
    lab = (field > np.quantile(field, 1 - fractions[0] - fractions[1])).astype(np.uint8)
    lab[field > np.quantile(field, 1 - fractions[1])] = 2
    return lab


def write_toml(path: Path, phases: dict) -> Path:
    lines = []
    for name, spec in phases.items():
        lines.append(f"[phases.{name}]")
        lines += [f"{k} = {v!r}" for k, v in spec.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def files_in(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


# ---------------------------------------------------------------------------
# pure functions (no MPI needed)


def test_slab_bounds_balance_and_alignment():
    from microsim.mpi import DecompositionError, slab_bounds
    for nz in range(1, 40):
        for parts in range(1, min(nz, 7) + 1):
            for align in (1, 2, 4, 8):
                b = slab_bounds(nz, parts, align)
                sizes = np.diff(b)
                assert b[0] == 0 and b[-1] == nz and len(b) == parts + 1 and sizes.min() >= 1
                used = max(a for a in (1, 2, 4, 8) if a <= align and -(-nz // a) >= parts)
                assert all(z % used == 0 for z in b[:-1])
                if parts > 1:  # balanced up to one block; the last slab, with the remainder, is the thinnest
                    assert np.ptp(sizes[:-1]) <= used and sizes[-1] <= sizes[:-1].min()
    with pytest.raises(DecompositionError, match="use at most 3 ranks"):
        slab_bounds(3, 4)


def test_importing_microsim_does_not_need_mpi4py():
    code = ("import sys; sys.modules['mpi4py'] = None\n"
            "import microsim, microsim.mpi, microsim.cli\n"
            "rc = microsim.cli.main(['conductivity', 'x.npy', '--phases', 'p.toml', '--distributed'])\n"
            "sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("microsim conductivity: error: distributed runs need mpi4py")
    assert lines[0].endswith("install them with: pip install 'microsim[mpi]'")


# ---------------------------------------------------------------------------
# sigma_eff on 2 and 3 ranks equals the single-process result


def solve_cases(tmp_path: Path, shared_data: Path | None) -> list[dict]:
    """Volumes in every format the slab reader handles, each with how to solve it."""
    import h5py
    import tifffile
    cases = []
    uniform = tmp_path / "uniform.h5"
    with h5py.File(uniform, "w") as f:
        f.create_dataset("labels", data=np.ones((10, 9, 11), np.uint8))
    cases.append(dict(name="uniform", path=uniform, phases={"SE": {"label": 1, "sigma_ionic_S_per_m": 0.2}},
                      voxel=(0.5, 0.4, 0.3), carrier="ionic"))
    layers = np.repeat(np.array([1, 2, 3, 2], np.uint8), [3, 4, 2, 3])[:, None, None] * np.ones((1, 7, 6), np.uint8)
    layered = tmp_path / "layered.tif"
    tifffile.imwrite(layered, layers)
    cases.append(dict(name="layered", path=layered, voxel=(0.5, 1.0, 1.0), carrier="ionic",
                      phases={"a": {"label": 1, "sigma_ionic_S_per_m": 1.0},
                              "b": {"label": 2, "sigma_ionic_S_per_m": 10.0},
                              "c": {"label": 3, "sigma_ionic_S_per_m": 1e4}}))
    random_raw = tmp_path / "random.raw"
    blobs((16, 14, 12), 5).tofile(random_raw)
    raw = {"raw": [[16, 14, 12], "uint8"]}
    cases.append(dict(name="random", path=random_raw, phases=PHASES3, carrier="both", read=raw))
    cases.append(dict(name="random-default-tol", path=random_raw, phases=PHASES3, carrier="ionic", read=raw,
                      tolerances={}))
    cases.append(dict(name="random-periodic", path=random_raw, phases=PHASES3, carrier="ionic", read=raw,
                      periodic_sides=True))
    cases.append(dict(name="random-cell", path=random_raw, phases=PHASES3, carrier="ionic", read=raw,
                      cell_problem=True))
    if shared_data is not None:
        real = shared_data / "taufactor_electrode_NMC_pore_CBD_256.tiff"
        cases.append(dict(name="real", path=real, phases=ELECTRODE, voxel=0.390625, carrier="both",
                          read={"crop": "100:118,40:60,0:22"}))
        cases.append(dict(name="real-downsampled", path=real, phases=ELECTRODE, voxel=0.390625, carrier="ionic",
                          read={"crop": "0:36,0:40,0:44", "downsample": 2}))
    return cases


@pytest.fixture(scope="module")
def solved(tmp_path_factory, request):
    """Every case solved on one process, and on 2 and 3 ranks (one mpiexec run each)."""
    if MISSING:
        pytest.skip(MISSING)
    from microsim import conductivity
    from microsim.io import RawLayout, read_volume
    tmp = tmp_path_factory.mktemp("mpi_solve")
    try:
        shared = request.getfixturevalue("shared_data")
    except pytest.skip.Exception:
        shared = None
    cases = solve_cases(tmp, shared)
    serial, exact = {}, {}
    with one_thread():
        for case in cases:
            read = dict(case.get("read", {}))
            if "raw" in read:
                read["raw"] = RawLayout(*read["raw"])
            vol = read_volume(case["path"], case["phases"], case.get("voxel"), **read)
            opts = dict(periodic_sides=case.get("periodic_sides", False), cell_problem=case.get("cell_problem", False))
            serial[case["name"]] = conductivity(vol, "all", case["carrier"], solver="jacobi",
                                                **opts, **case.get("tolerances", TIGHT)).to_dict()
            # converged far beyond any tolerance used here
            exact[case["name"]] = serial[case["name"]] if "tolerances" not in case else conductivity(
                vol, "all", case["carrier"], solver="jacobi", **opts, **TIGHT).to_dict()
    manifest = tmp / "cases.json"
    manifest.write_text(json.dumps(cases, default=str))
    out = {}
    for n in (2, 3):
        proc = mpirun(n, __file__, "solve", manifest, tmp / f"out{n}.json")
        assert proc.returncode == 0, proc.stderr
        out[n] = json.loads((tmp / f"out{n}.json").read_text())
    return serial, exact, out


CASES = ["uniform", "layered", "random", "random-default-tol", "random-periodic", "random-cell", "real",
         "real-downsampled"]


@needs_mpi
@pytest.mark.parametrize("ranks", [2, 3])
@pytest.mark.parametrize("name", CASES)
def test_jacobi_on_ranks_reproduces_the_single_process(solved, name, ranks):
    serial, exact, out = solved
    if name not in serial:
        pytest.skip("real volumes not available: ../shared/data does not exist next to the repository")
    ref, got = serial[name], out[ranks][name]["jacobi"]
    assert got["mpi"]["ranks"] == ranks and len(got["mpi"]["slab_bounds"]) == ranks + 1
    assert got["shape"] == ref["shape"] and len(got["results"]) == len(ref["results"])
    for a, b in zip(ref["results"], got["results"]):
        assert (a["carrier"], a["direction"]) == (b["carrier"], b["direction"])
        assert b["converged"] and a["percolates"] == b["percolates"]
        assert b["eps"] == a["eps"] and b["eps_percolating"] == a["eps_percolating"]
        # Same kernels, same reductions in the same order: the iterates are those of the
        # single-process Jacobi solver, bit for bit.
        assert b["sigma_eff_S_per_m"] == a["sigma_eff_S_per_m"], (a["direction"], a["carrier"])
        if a["solver"]:
            assert b["solver"]["iterations"] == a["solver"]["iterations"]
            assert b["tau_percolating"] == pytest.approx(a["tau_percolating"], rel=1e-12)
            assert b["current_in_A"] == pytest.approx(a["current_in_A"], rel=1e-9)
            assert b["current_out_A"] == pytest.approx(a["current_out_A"], rel=1e-9)
    if name == "uniform":
        assert all(abs(r["tau"] - 1) < 1e-6 for r in got["results"])
    if name == "layered":
        # Series layers along z, parallel along x and y: exact.
        frac = np.array([3, 7, 2]) / 12
        sig = np.array([1.0, 10.0, 1e4])
        expected = {"z": 1 / (frac / sig).sum(), "y": (frac * sig).sum(), "x": (frac * sig).sum()}
        for r in got["results"]:
            assert r["sigma_eff_S_per_m"] == pytest.approx(expected[r["direction"]], rel=1e-6)


@needs_mpi
@pytest.mark.parametrize("variant", ["mg", "mg-coarse"])
@pytest.mark.parametrize("ranks", [2, 3])
@pytest.mark.parametrize("name", CASES)
def test_multigrid_on_ranks_gives_sigma_eff_within_the_tolerance(solved, name, ranks, variant):
    serial, exact, out = solved
    if name not in serial:
        pytest.skip("real volumes not available: ../shared/data does not exist next to the repository")
    got = out[ranks][name][variant]
    # A relative residual of 1e-8 leaves sigma_eff within far less than 1e-6 of the converged
    # value; the default tol = 1e-3 is a bound on the relative error of sigma_eff.
    bound = 1e-3 if name == "random-default-tol" else 1e-6
    assert len(got["results"]) == len(exact[name]["results"])
    for e, b in zip(exact[name]["results"], got["results"]):
        assert (e["carrier"], e["direction"]) == (b["carrier"], b["direction"])
        assert b["converged"] and b["percolates"] == e["percolates"]
        assert b["eps_percolating"] == e["eps_percolating"]
        if e["percolates"]:
            assert b["solver"]["method"] == "pcg-mg"
            assert abs(b["sigma_eff_S_per_m"] / e["sigma_eff_S_per_m"] - 1) <= bound, (b["direction"], b["carrier"])
        else:
            assert b["sigma_eff_S_per_m"] == 0.0 and b["tau"] == "inf"


# ---------------------------------------------------------------------------
# the global coarse grid of the multigrid preconditioner


LUT3 = np.zeros(256)
LUT3[1], LUT3[2] = 0.2, 0.05
VOXEL = (1.0, 0.8, 1.3)


def fine_operator(d) -> np.ndarray:
    """A over the interior cells (dense), column by column from the operator kernel."""
    from kernels import fv
    C = importlib.import_module("microsim.conductivity")  # the module, not the function of that name
    inner = (slice(1, -1),) * 3
    n = int(np.prod(np.array(d.lab.shape) - 2))
    v = np.zeros(d.lab.shape)
    out = np.zeros(d.lab.shape)
    part = np.zeros(d.lab.shape[0])
    A = np.zeros((n, n))
    for c in range(n):
        v[...] = 0.0
        v[inner].flat[c] = 1.0
        LocalProblem(d).refresh(v, 0.0)
        fv.apply_operator(d.lab, d.g, v, out, 1.0, part)
        A[:, c] = out[inner].ravel()
    return A


def slab_aggregation(shape, bounds, box: int) -> np.ndarray:
    """P (fine cells x boxes, dense): boxes of ``box`` cells cut from each slab's first plane."""
    nz, ny, nx = shape
    layers = [-(-(b - a) // box) for a, b in zip(bounds[:-1], bounds[1:])]
    my, mx = -(-ny // box), -(-nx // box)
    kz = np.concatenate([sum(layers[:r]) + np.arange(b - a) // box
                         for r, (a, b) in enumerate(zip(bounds[:-1], bounds[1:]))])
    k, j, i = np.meshgrid(kz, np.arange(ny) // box, np.arange(nx) // box, indexing="ij")
    parent = ((k * my + j) * mx + i).ravel()
    P = np.zeros((parent.size, sum(layers) * my * mx))
    P[np.arange(parent.size), parent] = 1.0
    return P


COARSE_CASES = [("z-walls", 0, False, False, 2, 3), ("x-periodic-sides", 2, True, False, 2, 4),
                ("y-box4", 1, False, False, 4, 5), ("z-cell", 0, True, True, 2, 6), ("x-cell", 2, True, True, 4, 8)]


@needs_mpi
@pytest.mark.parametrize("ranks", [3])
def test_coarse_operator_is_the_galerkin_operator(tmp_path, ranks):
    """A_c = P^T A P with P the per-slab box aggregation, and the net box currents equal P^T r and -P^T A z."""
    from kernels import fv
    from microsim.conductivity import discretise
    from microsim.mpi import slab_bounds
    from microsim.percolation import percolation
    manifest = []
    expected = {}
    rng = np.random.default_rng(4)
    for name, axis, periodic_sides, cell, box, seed in COARSE_CASES:
        labels = blobs((11, 7, 9), seed, fractions=(0.45, 0.15))
        keep = percolation(LUT3[labels] > 0, "zyx"[axis], periodic_sides=periodic_sides,
                           periodic_direction=cell).percolating
        d = discretise(labels, LUT3, VOXEL, axis, keep, periodic_sides, cell)
        inner = (slice(1, -1),) * 3
        # a potential with its boundary values, and a correction with zero ones
        C = importlib.import_module("microsim.conductivity")
        x = np.zeros(d.lab.shape)
        x[inner] = rng.random(labels.shape)
        if not cell:
            x[(slice(None),) * axis + (0,)] = 1.0
        LocalProblem(d).refresh(x, 1.0)
        z = np.zeros(d.lab.shape, np.float32)
        z[inner] = rng.standard_normal(labels.shape)
        LocalProblem(d).refresh(z, 0.0)
        r = np.zeros(d.lab.shape)
        az = np.zeros(d.lab.shape)
        part = np.zeros(d.lab.shape[0])
        fv.apply_operator(d.lab, d.g, x, r, -1.0, part)
        fv.apply_operator(d.lab, d.g, z.astype(np.float64), az, 1.0, part)
        P = slab_aggregation(labels.shape, slab_bounds(labels.shape[0], ranks), box)
        expected[name] = (P.T @ fine_operator(d) @ P, P.T @ r[inner].ravel(), -(P.T @ az[inner].ravel()))
        for what, arr in (("labels", labels), ("x", x), ("z", z)):
            np.save(tmp_path / f"{name}-{what}.npy", arr)
        manifest.append(dict(name=name, axis=axis, periodic_sides=periodic_sides, cell=cell, box=box,
                             path=str(tmp_path / name)))
    (tmp_path / "cases.json").write_text(json.dumps(manifest))
    proc = mpirun(ranks, __file__, "coarse", tmp_path / "cases.json", tmp_path / "out.npz")
    assert proc.returncode == 0, proc.stderr
    got = np.load(tmp_path / "out.npz")
    for name, *_ in COARSE_CASES:
        Ac, pr, paz = expected[name]
        active = got[f"{name}/active"]
        # the boxes dropped are those whose cells carry no current to other boxes
        dropped = np.setdiff1d(np.arange(Ac.shape[0]), active)
        assert active.size > 10 and not Ac[dropped].any() and not Ac[:, dropped].any(), name
        assert np.allclose(got[f"{name}/A"], Ac[np.ix_(active, active)], rtol=1e-12, atol=1e-12), name
        assert np.allclose(got[f"{name}/pr"], pr, rtol=1e-9, atol=1e-9), name
        assert np.allclose(got[f"{name}/paz"], paz, rtol=1e-5, atol=1e-5), name


def _iteration_volume(tmp: Path) -> Path:
    path = tmp / "cube48.npy"
    np.save(path, blobs((48, 48, 48), 7))
    return path


@needs_mpi
def test_multigrid_iterations_barely_grow_with_the_ranks(tmp_path):
    """With the global coarse grid, 2 and 3 slabs need about as many iterations as one process.

    The same runs without it (block Jacobi between the slabs' V-cycles) needed 12-17
    iterations against 5, and must fail the bound, which shows that it means something.
    """
    from microsim import Volume, conductivity
    path = _iteration_volume(tmp_path)
    with one_thread():
        serial = conductivity(Volume(np.load(path), PHASES3, 1.0), "all", "ionic")
    single = {r.direction: r.solver.iterations for r in serial}
    for ranks in (2, 3):
        proc = mpirun(ranks, __file__, "iterations", path, tmp_path / f"it{ranks}.json")
        assert proc.returncode == 0, proc.stderr
        got = json.loads((tmp_path / f"it{ranks}.json").read_text())
        for d, n in single.items():
            bound = 1.5 * n + 2
            assert got["coarse"][d] <= bound, (ranks, d, got, single)
            assert got["block-jacobi"][d] > bound, (ranks, d, got, single)


# ---------------------------------------------------------------------------
# percolation across slab boundaries


def crafted_masks(ranks: int):
    """Masks whose clusters meet the slab boundaries of ``ranks`` slabs in the awkward ways.

    Returns a list of (name, mask, direction, periodic_sides, periodic_direction, must_keep,
    must_remove): boolean arrays of voxels the answer must keep / remove.
    """
    from microsim.mpi import slab_bounds
    nz, ny, nx = 12, 6, 12
    b = slab_bounds(nz, ranks)[1]          # the first plane of the second slab
    out = []

    # A path along x that zigzags across the plane between two slabs: each slab holds
    # only pieces that touch one face or none, so the path is connected only through
    # the slab boundary. A dead end at x = 0 elsewhere in the lower slab must go.
    m = np.zeros((nz, ny, nx), bool)
    m[b - 1, 2, 0:3] = True
    m[b, 2, 2:6] = True
    m[b - 1, 2, 5:9] = True
    m[b, 2, 8:12] = True
    path = m.copy()
    m[0, 4, 0:4] = True
    out.append(("zigzag-x", m, "x", False, False, path, m & ~path))

    # A column along z: within a middle slab its piece touches neither the inlet nor the
    # outlet face, so a slab on its own would call it isolated; it percolates. A column that
    # climbs from the inlet into the second slab and stops is a dead end; a blob inside the
    # first slab that touches no slab face is isolated.
    m = np.zeros((nz, ny, nx), bool)
    m[:, 1, 1] = True
    m[b + 1, 1, 1:6] = True                # a side branch inside the second slab
    column = m.copy()
    m[0:b + 1, 4, 9] = True                # dead end through the slab boundary
    m[1:b - 1, 3, 4:6] = True
    out.append(("column-z", m, "z", False, False, column, m & ~column))

    # A path along x that leaves through the face y = ny-1 and comes back at y = 0 (periodic
    # sides), then crosses into the next slab: it percolates only with periodic sides.
    m = np.zeros((nz, ny, nx), bool)
    m[b - 1, ny - 1, 0:6] = True
    m[b - 1, 0, 5:8] = True
    m[b, 0, 7:12] = True
    out.append(("wrap-y-periodic", m, "x", True, False, m.copy(), np.zeros_like(m)))
    out.append(("wrap-y-walls", m, "x", False, False, np.zeros_like(m), m.copy()))

    # The periodic cell along z: a staircase that joins its own image only through the
    # wrap from the last slab to the first winds; a column missing one plane does not.
    m = np.zeros((nz, ny, nx), bool)
    for z in range(nz):
        m[z, 2, z // 3:z // 3 + 2] = True
    m[nz - 1, 2, 0:(nz - 1) // 3 + 2] = True
    stair = m.copy()
    m[1:, 4, 8] = True
    out.append(("winds-z", m, "z", False, True, stair, m & ~stair))

    # Random blobs in every direction, with walls, periodic sides and the periodic cell.
    rnd = ndimage.gaussian_filter(np.random.default_rng(11).random((nz, 10, 9)), 1.0) > 0.5
    none = np.zeros_like(rnd)
    for d in "xyz":
        out.append((f"random-{d}", rnd, d, False, False, none, none))
        out.append((f"random-{d}-periodic", rnd, d, True, False, none, none))
        out.append((f"random-{d}-cell", rnd, d, True, True, none, none))
    return out


@needs_mpi
@pytest.mark.parametrize("ranks", [2, 3])
def test_percolation_across_slab_boundaries(tmp_path, ranks):
    from microsim.percolation import percolation
    cases = crafted_masks(ranks)
    manifest = []
    for k, (name, mask, d, ps, pd, _, _) in enumerate(cases):
        np.save(tmp_path / f"m{k}.npy", mask)
        manifest.append(dict(name=name, path=str(tmp_path / f"m{k}.npy"), direction=d, periodic_sides=ps,
                             periodic_direction=pd))
    (tmp_path / "cases.json").write_text(json.dumps(manifest))
    proc = mpirun(ranks, __file__, "percolation", tmp_path / "cases.json", tmp_path / "out.npz")
    assert proc.returncode == 0, proc.stderr
    got = np.load(tmp_path / "out.npz")
    for name, mask, d, ps, pd, must_keep, must_remove in cases:
        ref = percolation(mask, d, periodic_sides=ps, periodic_direction=pd)
        perc = got[f"{name}/percolating"]
        assert np.array_equal(perc, ref.percolating), name
        assert perc[must_keep].all() and not perc[must_remove].any(), name
        fractions = got[f"{name}/fractions"]
        assert fractions.tolist() == [ref.volume_fraction, ref.percolating_volume_fraction, ref.fraction_percolating,
                                      ref.fraction_dead_end, ref.fraction_isolated, ref.n_clusters], name
    # the crafted cases are not trivial: each has something to keep, and most something to remove
    assert all(c[5].any() for c in cases if not c[0].startswith(("random", "wrap-y-walls")))


# ---------------------------------------------------------------------------
# the command line: results, fields, and automatic detection of an MPI launch


@needs_mpi
def test_command_line_under_mpiexec_writes_results_and_fields(tmp_path):
    import h5py
    from microsim import Volume, conductivity
    labels = blobs((14, 12, 10), 3)
    np.save(tmp_path / "v.npy", labels)
    write_toml(tmp_path / "p.toml", PHASES3)
    args = ("-m", "microsim", "conductivity", tmp_path / "v.npy", "--phases", tmp_path / "p.toml", "--carrier",
            "both", "--voxel-size", "0.5,0.4,0.3", "--out", tmp_path / "r.json", "--fields", tmp_path / "f.h5",
            "--rtol", "1e-8", "--current-tol", "1e-6", "--quiet")
    proc = mpirun(2, *args)  # no --distributed: an mpiexec launch with 2 ranks is detected
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "" and "MacMullin" in proc.stdout and proc.stdout.count("MacMullin") == 1
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["mpi"]["ranks"] == 2 and data["mpi"]["slab_bounds"] == [0, 7, 14]
    with one_thread():
        ref = conductivity(Volume(labels, PHASES3, (0.5, 0.4, 0.3)), "all", "both", return_fields=True,
                           solver="jacobi", rtol=1e-9, current_tol=1e-6)
    assert len(data["results"]) == len(ref.results)
    with h5py.File(tmp_path / "f.h5", "r") as f:
        assert f.attrs["voxel_size_um"].tolist() == [0.5, 0.4, 0.3]
        for r, d in zip(ref, data["results"]):
            assert d["sigma_eff_S_per_m"] == pytest.approx(r.sigma_eff_S_per_m, rel=1e-6, abs=1e-300)
            group = f[f"{r.carrier}/{r.direction}"]
            if not r.percolates:
                assert "potential_V" not in group and "does not connect" in group.attrs["message"]
                continue
            assert group.attrs["sigma_eff_S_per_m"] == d["sigma_eff_S_per_m"]
            # both solves reach a relative residual of 1e-8 or better: potentials agree to about 1e-6 V
            pot = group["potential_V"][()]
            assert np.array_equal(np.isnan(pot), np.isnan(r.potential))
            np.testing.assert_allclose(pot, r.potential, atol=1e-5)
            jd = r.current_density_A_per_m2
            np.testing.assert_allclose(group["current_density_A_per_m2"][()], jd, atol=1e-4 * np.abs(jd).max())
    assert files_in(tmp_path) == {"v.npy", "p.toml", "r.json", "f.h5"}


# ---------------------------------------------------------------------------
# failures: one clear line from rank 0 and no output file


@needs_mpi
def test_bad_input_on_one_rank_stops_all_with_one_line(tmp_path):
    labels = blobs((12, 8, 8), 1)
    labels[10, 3, 3] = 7                   # only the last of 3 slabs holds it
    np.save(tmp_path / "v.npy", labels)
    write_toml(tmp_path / "p.toml", PHASES3)
    proc = mpirun(3, "-m", "microsim", "conductivity", tmp_path / "v.npy", "--phases", tmp_path / "p.toml",
                  "--distributed", "--out", tmp_path / "r.json", "--fields", tmp_path / "f.h5", "--quiet")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("microsim conductivity: error: ") and "label value(s) 7" in lines[0]
    assert lines[0].endswith("(rank 2 of 3)") and "add a phase" in lines[0]
    assert files_in(tmp_path) == {"v.npy", "p.toml"}


@needs_mpi
@pytest.mark.parametrize("how, expected", [
    ("raise", "rank 1 of 2 failed (RuntimeError: simulated failure of a node)"),
    ("mpi-error", "rank 1 of 2 failed (Exception: "),
])
def test_rank_failure_mid_solve_ends_the_run_without_output(tmp_path, how, expected):
    # Large enough that the coarse grid is coarser than the volume (which would solve it at once).
    np.save(tmp_path / "v.npy", blobs((32, 24, 24), 2))
    proc = mpirun(2, __file__, "fail", how, tmp_path / "v.npy", tmp_path / "f.h5", timeout=120)
    assert proc.returncode != 0
    assert expected in proc.stderr and "stopping all ranks, no output was written" in proc.stderr
    if how == "mpi-error":
        assert "rank" in proc.stderr.lower() and "MPI" in proc.stderr
    # the fields file had been created under a temporary name before the failure: it is gone
    assert files_in(tmp_path) == {"v.npy"}


@needs_mpi
def test_killed_rank_ends_the_run_without_output(tmp_path):
    np.save(tmp_path / "v.npy", blobs((32, 24, 24), 2))
    proc = mpirun(2, __file__, "fail", "kill", tmp_path / "v.npy", tmp_path / "f.h5", timeout=120)
    assert proc.returncode != 0
    assert "f.h5" not in files_in(tmp_path)


# ---------------------------------------------------------------------------
# code run on the ranks: python tests/test_mpi.py MODE ...


def _rank_solve(manifest: str, out: str) -> None:
    from microsim.io import RawLayout
    from microsim.mpi import World, coarse, distributed_conductivity
    world = World()
    limit = coarse.COARSE_AGGREGATES
    results = {}
    for case in json.loads(Path(manifest).read_text()):
        read = dict(case.get("read", {}))
        if "raw" in read:
            read["raw"] = RawLayout(*read["raw"])
        results[case["name"]] = {}
        for solver in ("jacobi", "mg", "mg-coarse"):
            # These volumes are small enough for a coarse grid of one box per voxel, a direct
            # solve; "mg-coarse" limits it to 64 boxes, so that the boxes hold several voxels.
            coarse.COARSE_AGGREGATES = 64 if solver == "mg-coarse" else limit
            run = distributed_conductivity(case["path"], case["phases"], case.get("voxel"), "all", case["carrier"],
                                           periodic_sides=case.get("periodic_sides", False),
                                           cell_problem=case.get("cell_problem", False), solver=solver.split("-")[0],
                                           world=world, **case.get("tolerances", TIGHT), **read)
            results[case["name"]][solver] = run.to_dict()
        coarse.COARSE_AGGREGATES = limit
    if world.rank == 0:
        from microsim.jsonio import write_json
        write_json(out, results)


def _rank_coarse(manifest: str, out: str) -> None:
    from microsim.mpi import Slab, World, slab_bounds, slab_discretisation, slab_percolation
    from microsim.mpi.coarse import CoarseGrid
    world = World()
    saved = {}
    for case in json.loads(Path(manifest).read_text()):
        base = case["path"]
        labels = np.load(f"{base}-labels.npy")
        nz = labels.shape[0]
        bounds = slab_bounds(nz, world.size)
        slab = Slab(bounds[world.rank], bounds[world.rank + 1], nz, bounds)
        mine = labels[slab.z0:slab.z1]
        perc = slab_percolation(world, slab, LUT3[mine] > 0, "zyx"[case["axis"]],
                                periodic_sides=case["periodic_sides"], periodic_direction=case["cell"])
        present = np.flatnonzero(np.bincount(labels.ravel(), minlength=256))
        d = slab_discretisation(world, slab, mine, perc.percolating, LUT3, present, VOXEL, case["axis"],
                                case["periodic_sides"], case["cell"])
        grid = CoarseGrid(world, slab, d, box=case["box"])
        # the slab's planes and, in the ghosts, its neighbours' (as the halo exchange leaves them)
        x = np.ascontiguousarray(np.load(f"{base}-x.npy")[slab.z0:slab.z1 + 2])
        z = np.ascontiguousarray(np.load(f"{base}-z.npy")[slab.z0:slab.z1 + 2])
        grid.restrict(x, z)
        parts = world.comm.gather(grid.local.copy(), root=0)
        if world.rank == 0:
            name = case["name"]
            saved[f"{name}/A"] = grid.galerkin.toarray()
            saved[f"{name}/active"] = grid.active
            saved[f"{name}/pr"] = np.concatenate([p[:p.size // 2] for p in parts])
            saved[f"{name}/paz"] = np.concatenate([p[p.size // 2:] for p in parts])
    if world.rank == 0:
        np.savez(out, **saved)


def _rank_iterations(volume: str, out: str) -> None:
    from microsim.mpi import World, coarse, distributed_conductivity
    world = World()
    limit = coarse.COARSE_AGGREGATES
    counts = {}
    for name, aggregates in (("coarse", limit), ("block-jacobi", 0)):
        coarse.COARSE_AGGREGATES = aggregates
        run = distributed_conductivity(volume, PHASES3, 1.0, "all", "ionic", world=world)
        counts[name] = {r.direction: r.solver.iterations for r in run.result.results}
    coarse.COARSE_AGGREGATES = limit
    if world.rank == 0:
        Path(out).write_text(json.dumps(counts))


def _rank_percolation(manifest: str, out: str) -> None:
    from microsim.mpi import Slab, World, slab_bounds, slab_percolation
    world = World()
    saved = {}
    for case in json.loads(Path(manifest).read_text()):
        whole = np.load(case["path"], mmap_mode="r")
        bounds = slab_bounds(whole.shape[0], world.size)
        slab = Slab(bounds[world.rank], bounds[world.rank + 1], whole.shape[0], bounds)
        res = slab_percolation(world, slab, np.array(whole[slab.z0:slab.z1]), case["direction"],
                               periodic_sides=case["periodic_sides"], periodic_direction=case["periodic_direction"])
        parts = world.comm.gather(res.percolating, root=0)
        if world.rank == 0:
            saved[f"{case['name']}/percolating"] = np.concatenate(parts)
            saved[f"{case['name']}/fractions"] = np.array([
                res.volume_fraction, res.percolating_volume_fraction, res.fraction_percolating,
                res.fraction_dead_end, res.fraction_isolated, res.n_clusters], dtype=np.float64)
    if world.rank == 0:
        np.savez(out, **saved)


def _rank_fail(how: str, volume: str, fields: str) -> int:
    from microsim.mpi import World, distributed_conductivity, run_ranks
    world = World()

    def progress(carrier, direction, it, rel, mis, done):
        if world.rank == 1 and it == 1:
            if how == "raise":
                raise RuntimeError("simulated failure of a node")
            if how == "mpi-error":
                world.comm.Recv(np.zeros(1), source=world.size + 5)   # no such rank
            if how == "kill":
                os.kill(os.getpid(), signal.SIGKILL)

    def body():
        distributed_conductivity(volume, PHASES3, 1.0, "all", "ionic", fields=fields, world=world,
                                 progress=progress)
        return 0

    return run_ranks(world, body, "microsim test")


if __name__ == "__main__":
    mode, *rest = sys.argv[1:]
    if mode == "solve":
        _rank_solve(*rest)
    elif mode == "percolation":
        _rank_percolation(*rest)
    elif mode == "coarse":
        _rank_coarse(*rest)
    elif mode == "iterations":
        _rank_iterations(*rest)
    elif mode == "fail":
        sys.exit(_rank_fail(*rest))
    else:
        sys.exit(f"unknown mode {mode!r}")
