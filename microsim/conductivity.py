"""Effective conductivity and tortuosity factor of a volume by finite volumes.

The potential solves div(sigma grad phi) = 0 on the voxel grid (cell-centred,
face conductance = series combination of the two half voxels). Along the
transport direction the potential is fixed on the two outer faces of the
volume, half a voxel from the first and last cell centres, so that a uniform
block gives tau = 1 exactly; the side faces carry no flux unless periodic
sides are asked for. With ``cell_problem=True`` the volume is instead treated
as one period of an infinite medium with a unit potential drop per period
(the homogenisation cell problem), the set-up of the random-walk method.

sigma_eff is computed from the Joule dissipation (sum over faces of g dphi^2),
which equals the current for a unit potential drop and is accurate to second
order in the remaining error of the potential; the inlet and outlet currents
are computed too and their mismatch can be asked to be small as well.

Two solvers share the discretisation: conjugate gradients preconditioned by a
geometric multigrid V-cycle (``solver='mg'``, the default; its iteration count
barely grows with the volume) and by the diagonal (``solver='jacobi'``, the
reference). Both stop on ``tol``, a bound on the estimated relative error of
sigma_eff (default 5e-4: tau within 0.1 % with a margin), unless other criteria are given.
:func:`estimate_memory` predicts the peak memory of a solve before anything is
allocated; ``max_memory_bytes`` turns the prediction into a refusal.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
from scipy.linalg import eigvalsh_tridiagonal
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from kernels import fv
from kernels import multigrid as mg

from .arrays import as_volume
from .percolation import percolation
from .phases import CARRIERS, PhaseTable, check_carrier
from .volume import Volume, axis_index, directions, label_counts, lookup
from .warmup import ensure_compiled_conductivity

#: tortuosity exponent of the Bruggeman relation tau = eps^-alpha
BRUGGEMAN_ALPHA = 0.5


class NotConvergedError(RuntimeError):
    """The solver reached its iteration limit before both stopping criteria held."""


@dataclass(frozen=True)
class SolverInfo:
    """How a solve went.

    ``relative_residual`` is ||b - A x|| / ||b|| recomputed from the final potential;
    ``current_mismatch`` is |I_in - I_out| / mean(|I_in|, |I_out|);
    ``error_estimate`` is the estimated relative error of sigma_eff (see
    :func:`conductivity`). ``tol``, ``rtol``, ``current_tol``: the criteria that
    applied (None = not used).
    """

    method: str
    converged: bool
    iterations: int
    relative_residual: float
    current_mismatch: float
    time_s: float
    rtol: float | None
    current_tol: float | None
    tol: float | None = None
    error_estimate: float = math.nan

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class DirectionResult:
    """Transport of one carrier along one direction.

    Attributes (units in the names)
    -------------------------------
    sigma_eff_S_per_m, sigma_eff_S_per_cm : effective conductivity (0 if nothing percolates,
        NaN if the solver did not converge)
    sigma_ref_S_per_m : volume-averaged conductivity of the conducting voxels
        (for one conducting phase, that phase's conductivity)
    normalised_sigma : sigma_eff / sigma_ref
    eps : volume fraction of the conducting voxels (all of them, percolating or not)
    eps_percolating : volume fraction of the conducting voxels that percolate
    tau : tortuosity factor eps * sigma_ref / sigma_eff (TauFactor's definition)
    tau_percolating : the same with the percolating part only (PoreSpy's choice)
    macmullin : MacMullin number sigma_ref / sigma_eff = tau / eps
    tau_bruggeman : eps^-0.5
    current_in_A, current_out_A : currents through the inlet and outlet faces for 1 V
    """

    carrier: str
    direction: str
    conducting_phases: tuple[str, ...]
    eps: float
    eps_percolating: float
    sigma_ref_S_per_m: float
    sigma_eff_S_per_m: float
    tau: float
    tau_percolating: float
    macmullin: float
    tau_bruggeman: float
    current_in_A: float
    current_out_A: float
    percolates: bool
    cell_problem: bool
    periodic_sides: bool
    message: str
    solver: SolverInfo | None
    potential: np.ndarray | None = field(default=None, repr=False)
    current_density_A_per_m2: np.ndarray | None = field(default=None, repr=False)

    @property
    def sigma_eff_S_per_cm(self) -> float:
        return self.sigma_eff_S_per_m / 100.0

    @property
    def normalised_sigma(self) -> float:
        return self.sigma_eff_S_per_m / self.sigma_ref_S_per_m if self.sigma_ref_S_per_m > 0 else 0.0

    @property
    def converged(self) -> bool:
        return self.solver is None or self.solver.converged

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in (
            "carrier", "direction", "eps", "eps_percolating", "sigma_ref_S_per_m", "sigma_eff_S_per_m",
            "sigma_eff_S_per_cm", "normalised_sigma", "tau", "tau_percolating", "macmullin", "tau_bruggeman",
            "current_in_A", "current_out_A", "percolates", "converged", "cell_problem", "periodic_sides", "message")}
        d["conducting_phases"] = list(self.conducting_phases)
        d["solver"] = None if self.solver is None else self.solver.to_dict()
        return d

    def row(self) -> dict:
        """The numbers of :meth:`to_dict` as one flat table row (solver iterations and seconds included)."""
        d = self.to_dict()
        s = d.pop("solver")
        d["conducting_phases"] = " + ".join(self.conducting_phases)
        d["iterations"] = s["iterations"] if s else 0
        d["time_s"] = s["time_s"] if s else 0.0
        return d

    def _repr_html_(self) -> str:
        from .tables import html_table
        return html_table([self.row()], TABLE_COLUMNS, f"{self.carrier} transport along {self.direction}")


@dataclass(frozen=True)
class ConductivityResult:
    """All (carrier, direction) results of one call of :func:`conductivity`."""

    results: tuple[DirectionResult, ...]
    shape: tuple[int, int, int]
    voxel_size_um: tuple[float, float, float]

    def __iter__(self):
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def __getitem__(self, key) -> DirectionResult:
        """``res[0]`` (position), ``res["ionic", "z"]`` (carrier, direction), or ``res["z"]`` with one carrier."""
        if isinstance(key, (int, np.integer)):
            return self.results[key]
        if isinstance(key, tuple) and len(key) == 2:
            return self.get(*key)
        if isinstance(key, str):
            found = [r for r in self.results if r.direction == key]
            if len(found) == 1:
                return found[0]
            if found:
                raise KeyError(f"direction {key!r} has results for {len(found)} carriers; "
                               f"index with (carrier, direction), e.g. res['ionic', {key!r}]")
        if not self.results:
            raise KeyError(f"no result {key!r}: the result is empty")
        c, d = self._keys()[0]
        raise KeyError(f"no result {key!r}; index by position (res[0]) or by (carrier, direction), "
                       f"e.g. res[{c!r}, {d!r}]")

    def __getattr__(self, name):
        # res.tau, res.sigma_eff_S_per_m, ... of a result with one (carrier, direction)
        if name.startswith("_") or name not in _DIRECTION_ATTRIBUTES:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        results = self.__dict__.get("results", ())
        if len(results) == 1:
            return getattr(results[0], name)
        if not results:
            raise AttributeError(f"the result is empty: no {name}")
        c, d = self._keys()[0]
        raise AttributeError(f"this result holds {len(results)} solves ({', '.join(map(str, self._keys()))}); "
                             f"pick one first, e.g. res[{c!r}, {d!r}].{name} or res[0].{name}")

    def _keys(self) -> list[tuple[str, str]]:
        return [(r.carrier, r.direction) for r in self.results]

    def get(self, carrier: str, direction: str) -> DirectionResult:
        for r in self.results:
            if r.carrier == carrier and r.direction == direction:
                return r
        raise KeyError(f"no result for carrier {carrier!r} in direction {direction!r}")

    def rows(self) -> list[dict]:
        """One flat dict per (carrier, direction); see :meth:`DirectionResult.row`."""
        return [r.row() for r in self.results]

    def to_dataframe(self):
        """A pandas DataFrame, one row per (carrier, direction), indexed by both (needs pandas)."""
        from .tables import dataframe
        return dataframe(self.rows(), ("carrier", "direction"))

    def _repr_html_(self) -> str:
        from .tables import html_table
        size = " x ".join(map(str, self.shape))
        return html_table(self.rows(), TABLE_COLUMNS, f"conductivity of a {size} volume (z, y, x), "
                                                      f"voxel {self.voxel_size_um} um")

    @property
    def converged(self) -> bool:
        return all(r.converged for r in self.results)

    def to_dict(self) -> dict:
        return {"shape": list(self.shape), "voxel_size_um": list(self.voxel_size_um),
                "results": [r.to_dict() for r in self.results]}


#: the columns of the notebook tables of conductivity results
TABLE_COLUMNS = ("carrier", "direction", "conducting_phases", "eps", "eps_percolating", "sigma_eff_S_per_m", "tau",
                 "tau_percolating", "macmullin", "tau_bruggeman", "converged", "iterations", "time_s")
#: what ``ConductivityResult.tau`` and friends read from a result of one solve
_DIRECTION_ATTRIBUTES = frozenset(f.name for f in DirectionResult.__dataclass_fields__.values()) | {
    "sigma_eff_S_per_cm", "normalised_sigma"}


# ---------------------------------------------------------------------------
# problem set-up


@dataclass(frozen=True)
class Discretisation:
    """The padded arrays and tables of one (carrier, direction) solve; see :mod:`kernels.fv`."""

    lab: np.ndarray            # padded compact indices (uint8)
    g: np.ndarray              # (3, L, L) face conductances / sigma_scale
    sigma_scale: float         # S/m that a unit of g stands for (per um of area/length)
    axis: int
    periodic: np.ndarray       # (3,) bool: axes whose ghosts are periodic copies
    cell_problem: bool


def fill_compact_labels(lab: np.ndarray, labels: np.ndarray, keep: np.ndarray, to_index: np.ndarray,
                        ins: int) -> None:
    """Interior of the padded ``lab``: the compact index of each kept voxel, ``ins`` elsewhere.

    Runs a few planes at a time: indexing with the whole label array would make an
    8-byte copy of it.
    """
    step = max(1, (1 << 20) // max(labels[0].size, 1))
    for k in range(0, labels.shape[0], step):
        end = min(k + step, labels.shape[0])
        lab[1 + k:1 + end, 1:-1, 1:-1] = np.where(keep[k:end], to_index[labels[k:end]], np.uint8(ins))


def _compact_indices(labels: np.ndarray, lut: np.ndarray):
    """Map label values to compact indices 0..L-1 for conducting labels; L = insulating, L+1 = Dirichlet."""
    present = np.flatnonzero(label_counts(labels))
    conducting = [int(v) for v in present if lut[v] > 0]
    ins = len(conducting)
    to_index = np.full(256, ins, dtype=np.uint8)
    for i, v in enumerate(conducting):
        to_index[v] = i
    sigma = np.zeros(ins + 2)
    sigma[:ins] = lut[conducting]
    return to_index, sigma, ins


def discretise(labels: np.ndarray, lut: np.ndarray, voxel_size_um, axis: int, keep: np.ndarray,
               periodic_sides: bool = False, cell_problem: bool = False) -> Discretisation:
    """Build the padded label array and the conductance tables for one solve.

    ``keep`` marks the conducting voxels that stay in the system (the percolating
    ones); every other voxel becomes insulating.
    """
    to_index, sigma, ins = _compact_indices(labels, lut)
    if ins > 250:
        raise ValueError("more than 250 conducting label values; merge phases with equal conductivity")
    dirichlet = ins + 1
    scale = float(sigma[:ins].max()) if ins else 1.0
    g = fv.conductance_tables(sigma / scale, np.asarray(voxel_size_um, dtype=np.float64), -1 if cell_problem else dirichlet)
    lab = np.full(tuple(n + 2 for n in labels.shape), ins, dtype=np.uint8)
    inner = (slice(1, -1),) * 3
    fill_compact_labels(lab, labels, keep, to_index, ins)
    periodic = np.zeros(3, dtype=np.bool_)
    for a in range(3):
        if a == axis:
            periodic[a] = cell_problem
        else:
            periodic[a] = periodic_sides
    for a in range(3):
        lo = [slice(1, -1)] * 3
        hi = [slice(1, -1)] * 3
        lo[a], hi[a] = 0, -1
        if periodic[a]:
            src_last = [slice(1, -1)] * 3
            src_first = [slice(1, -1)] * 3
            src_last[a], src_first[a] = -2, 1
            lab[tuple(lo)] = lab[tuple(src_last)]
            lab[tuple(hi)] = lab[tuple(src_first)]
        elif a == axis:
            lab[tuple(lo)] = dirichlet
            lab[tuple(hi)] = dirichlet
    return Discretisation(lab, g, scale, axis, periodic, cell_problem)


# ---------------------------------------------------------------------------
# the solve


def _sum(partial: np.ndarray) -> float:
    return float(partial.sum())


def _layer(arr: np.ndarray, axis: int, index: int) -> np.ndarray:
    return arr[(slice(None),) * axis + (index,)]


def _currents(d: Discretisation, x: np.ndarray) -> tuple[float, float]:
    """Currents through the inlet and outlet face layers (internal units, flowing in +axis)."""
    a = d.axis
    n = d.lab.shape[a] - 2
    ga = d.g[a]
    i_in = fv.plane_current(_layer(d.lab, a, 0), _layer(d.lab, a, 1), _layer(x, a, 0), _layer(x, a, 1), ga)
    i_out = fv.plane_current(_layer(d.lab, a, n), _layer(d.lab, a, n + 1), _layer(x, a, n), _layer(x, a, n + 1), ga)
    return i_in, i_out


def _refresh(d: Discretisation, v: np.ndarray, jump: float):
    for a in range(3):
        if d.periodic[a]:
            fv.refresh_halo(v, a, jump if (a == d.axis) else 0.0)


# ---------------------------------------------------------------------------
# accuracy control

#: default bound on the estimated relative error of sigma_eff (and of tau): half of
#: 0.1 %, so that tau is within 0.1 % of the converged value even where the estimate
#: falls short of the true error (in the tests it never did by more than 15 %)
DEFAULT_TOL = 5e-4
#: with ``tol``, the spread of the currents through the inlet, middle and outlet planes
#: must also satisfy spread^2 <= CURRENT_GUARD * tol (see _Accuracy)
CURRENT_GUARD = 20.0
#: the multigrid loop restarts conjugate gradients when the residual has not halved for
#: this many iterations, and gives up after MAX_RESTARTS restarts without progress
RESTART_ITERATIONS = 10
MAX_RESTARTS = 3
#: kept for callers that count stagnating iterations (RESTART_ITERATIONS * MAX_RESTARTS)
STAGNATION_ITERATIONS = RESTART_ITERATIONS * MAX_RESTARTS
#: a relative residual this small counts as an exact solution (the initial guess of a
#: uniform block or of straight channels); its error in sigma_eff is below 1e-12
EXACT_RESIDUAL = 1e-12
SOLVERS = ("mg", "jacobi")
DEFAULT_SOLVER = "mg"


def check_solver(solver: str) -> str:
    if solver not in SOLVERS:
        raise ValueError(f"solver {solver!r} is not one of {', '.join(SOLVERS)}; 'mg' is the fast one, "
                         "'jacobi' the reference")
    return solver


class _Accuracy:
    """The stopping test of one solve and the running error estimate of sigma_eff.

    sigma_eff comes from the dissipation P(x), and P(x) = P* + ||x - x*||_A^2 for
    every x that carries the boundary values, so the relative error of sigma_eff
    is ||e||_A^2 / P*, never negative. Two estimates of it are kept and the
    larger one is used:

    * the residual bound ||e||_A^2 <= r.z / lambda_min(BA) (B the preconditioner),
      with lambda_min replaced by the smallest Ritz value of the Lanczos matrix
      that the conjugate-gradient coefficients define;
    * the sum of the energy decrements still to come: step k lowers ||e||_A^2 by
      t_k = alpha_k r_k.z_k (Hestenes and Stiefel), extrapolated as a geometric
      series with the slowest of the last three ratios t_k / t_(k-1).

    Until four steps are known the estimate is infinite, unless the residual
    vanishes. Both estimates read the convergence history, and a plateau fools
    them: at high contrast, where islands of a good conductor float in a poor
    one, the energy steps can stall for ten iterations with sigma_eff still
    several % off. The currents through the inlet, middle and outlet planes,
    equal in the exact solution, then still differ by tens of %. In every test
    the squared spread of these currents was within a factor 20 of the energy
    error or above it, so ``tol`` also requires spread^2 <= CURRENT_GUARD * tol.

    With none of ``tol``, ``rtol``, ``current_tol`` given, ``tol`` = DEFAULT_TOL; every
    criterion that is given must hold. The inlet/outlet mismatch itself is not part
    of the default: it shrinks only linearly with the error of the potential, and
    asking it to be 1e-4 triples the multigrid iterations (7 -> 22 on a 128^3
    volume) for a sigma_eff that was already right to 2e-4.
    """

    def __init__(self, tol, rtol, current_tol):
        if tol is None and rtol is None and current_tol is None:
            tol = DEFAULT_TOL
        for name, value in (("tol", tol), ("rtol", rtol), ("current_tol", current_tol)):
            if value is not None and not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} = {value!r} must be a positive number (a relative error, e.g. 1e-3)")
        self.tol, self.rtol, self.current_tol = tol, rtol, current_tol
        self.power = math.nan
        self.steps: list[float] = []
        self.alphas: list[float] = []
        self.betas: list[float] = []
        self.ritz_min = math.inf
        self.estimate = math.inf

    def start(self, power: float, rel: float) -> None:
        self.power = power
        self.estimate = 0.0 if rel <= EXACT_RESIDUAL else math.inf

    def restart(self) -> None:
        """A new Krylov sequence begins (the smallest Ritz value found so far stays valid)."""
        self.alphas.clear()
        self.betas.clear()

    def _ritz(self) -> float:
        a = np.asarray(self.alphas)
        b = np.asarray(self.betas[:len(a) - 1])
        diag = 1.0 / a
        diag[1:] += b / a[:-1]
        return float(eigvalsh_tridiagonal(diag, np.sqrt(b) / a[:-1], select="i", select_range=(0, 0))[0])

    def step(self, alpha: float, rz: float, rz_new: float, rel: float) -> None:
        """Record one CG step: x += alpha p with r.z = ``rz`` before it and ``rz_new`` after."""
        decrement = alpha * rz
        self.power -= decrement
        s = self.steps
        s.append(decrement)
        del s[:-4]
        self.alphas.append(alpha)
        k = len(self.alphas)
        if k < 64 or k % max(8, k // 32) == 0:  # it settles early; spare long Jacobi runs
            self.ritz_min = min(self.ritz_min, self._ritz())
        self.betas.append(rz_new / rz if rz > 0 else 0.0)
        if rel <= EXACT_RESIDUAL:
            self.estimate = 0.0
        elif len(s) == 4 and min(s[:3]) > 0 and self.power > 0 and self.ritz_min > 0:
            q = max(s[3] / s[2], s[2] / s[1], s[1] / s[0])
            tail = s[3] * q / (1 - q) if q < 1 else math.inf
            self.estimate = max(tail, rz_new / self.ritz_min) / self.power
        else:
            self.estimate = math.inf

    def met(self, rel: float, mismatch: float, spread: float | None = None) -> bool:
        """``spread``: of the inlet, middle and outlet plane currents (the mismatch if not given)."""
        spread = mismatch if spread is None else spread
        return ((self.tol is None or (self.estimate <= self.tol and spread * spread <= CURRENT_GUARD * self.tol))
                and (self.rtol is None or rel <= self.rtol)
                and (self.current_tol is None or mismatch <= self.current_tol))


# ---------------------------------------------------------------------------
# multigrid

#: the hierarchy stops at the first level with at most this many cells, solved exactly
COARSEST_CELLS = 512


def _odd_bits(n, periodic) -> int:
    """Colour bits of a level (see kernels.multigrid): periodic axes of odd length > 1."""
    return sum(1 << a for a in range(3) if periodic[a] and n[a] > 1 and n[a] % 2 == 1)


def _mg_levels(shape, periodic):
    """Level table (see kernels.multigrid.vcycle), scale factors and float32 buffer lengths.

    Level 1 is laid out with uint8 face codes; ``(lv, scales, n_e, n_f)`` with
    ``n_e`` the length of each of the e and rc buffers and ``n_f`` that of the
    stored faces of levels >= 2.
    """
    rows = [[0] * mg.LEVEL_COLUMNS]
    scales = [[1.0, 1.0, 1.0]]
    n = [int(m) for m in shape]
    off_e = off_f = 0
    while True:
        c = [2 if m > 1 else 1 for m in n]
        n = [-(-m // cc) for m, cc in zip(n, c)]
        size = (n[0] + 2) * (n[1] + 2) * (n[2] + 2)
        first = len(rows) == 1
        rows.append(n + [off_e, -1 if first else off_f] + c + [_odd_bits(n, periodic)])
        # Along a periodic axis of one cell the face joins the cell to itself.
        scales.append([0.0 if (periodic[a] and n[a] == 1) else 1.0 / c[a] for a in range(3)])
        off_e += size
        if not first:
            off_f += 3 * size
        if n[0] * n[1] * n[2] <= COARSEST_CELLS or max(n) == 1:
            return np.array(rows, dtype=np.int64), np.array(scales), off_e, off_f


class _Multigrid:
    """The V-cycle preconditioner of one discretised problem; see :mod:`kernels.multigrid`.

    ``mg(x, z)`` writes z = B (b - A x) and returns (r.z, r.r).
    """

    def __init__(self, d: Discretisation, sweeps: int = 1):
        lab, g = d.lab, d.g
        n = np.array(lab.shape, dtype=np.int64) - 2
        periodic = np.asarray(d.periodic, dtype=np.bool_)
        self.w = np.where(periodic & (n == 1), 0.0, 1.0)
        self.odd0 = _odd_bits(n, periodic)
        lv, scales, n_e, n_f = _mg_levels(tuple(n), periodic)
        cols = slice(mg.C0, mg.C2 + 1)
        shape1 = tuple(int(v) + 2 for v in lv[1, :3])
        cf1 = lv[1, cols].copy()
        # Level 1: a face is a sum of up to four fine faces. With few phases the sums take few
        # values: up to 16 (one conducting phase) fit 4-bit codes, up to 256 bytes, an eighth
        # or a quarter of float32 faces.
        tab = np.zeros((3, 256))
        no_codes = np.zeros((3, 1, 1, 1), dtype=np.uint8)
        values = np.empty(shape1)
        counts = []
        for a in range(3):
            mg.label_faces(lab, g, self.w, cf1, scales[1], a, values)
            counts.append(mg.face_values(values, tab[a]))
        coded = min(counts) >= 0
        codes = no_codes
        if coded:
            if max(counts) <= 16:
                tab = np.ascontiguousarray(tab[:, :16])
                codes = np.zeros((3, shape1[0], shape1[1], (shape1[2] + 1) // 2), dtype=np.uint8)
            else:
                codes = np.zeros((3,) + shape1, dtype=np.uint8)
            for a in range(3):
                mg.label_faces(lab, g, self.w, cf1, scales[1], a, values)
                mg.encode_faces(values, tab[a], counts[a], codes[a])
        del values
        if not coded:
            size1 = 3 * int(np.prod(shape1))
            lv[1, mg.OFF_F] = 0
            lv[2:, mg.OFF_F] += size1
            n_f += size1
        faces = np.zeros(max(n_f, 3), dtype=np.float32)
        if not coded:
            f1 = mg.level_faces(faces, lv, 1)
            for a in range(3):
                mg.label_faces(lab, g, self.w, cf1, scales[1], a, f1[a])
        for l in range(1, len(lv) - 1):
            mg.coarsen_faces(mg.level_faces(faces, lv, l), codes if l == 1 else no_codes, tab, lv[l, :3].copy(),
                             lv[l + 1, cols].copy(), scales[l + 1], mg.level_faces(faces, lv, l + 1))
        bottom = len(lv) - 1
        A, cells = mg.coarsest_matrix(mg.level_faces(faces, lv, bottom), codes if bottom == 1 else no_codes, tab,
                                      lv[bottom, :3].copy(), periodic)
        m = len(A)
        comp = np.zeros(m, dtype=np.int64)
        ground = np.zeros(m, dtype=np.bool_)
        ncomp = 0
        if d.cell_problem and m:
            # Without fixed potentials every connected part is singular (constants are null
            # vectors): fix one cell of each, and project on zero mean in the solve.
            ncomp, comp = connected_components(csr_matrix(A != 0), directed=False)
            comp = comp.astype(np.int64)
            first = np.unique(comp, return_index=True)[1]
            ground[first] = True
            A[first, :] = 0.0
            A[:, first] = 0.0
            A[first, first] = 1.0
        mg.cholesky(A)
        self.bottom = (A, cells, comp, ncomp, ground, np.zeros(m))
        self.lab, self.g, self.periodic = lab, g, periodic
        self.lv, self.codes, self.no_codes, self.tab, self.faces = lv, codes, no_codes, tab, faces
        self.e = np.zeros(n_e, dtype=np.float32)
        self.rc = np.zeros(n_e, dtype=np.float32)
        self.sweeps = sweeps
        self.part_rz = np.zeros(lab.shape[0])
        self.part_rr = np.zeros(lab.shape[0])
        self.levels = len(lv)
        self.coded = coded

    def __call__(self, x: np.ndarray, z: np.ndarray) -> tuple[float, float]:
        return mg.vcycle(self.lab, self.g, self.w, x, z, self.odd0, self.periodic, self.e, self.rc, self.faces,
                         self.codes, self.no_codes, self.tab, self.lv, self.bottom, self.sweeps,
                         self.part_rz, self.part_rr)


def _initial_guess(d: Discretisation, x: np.ndarray) -> None:
    """The linear profile of a uniform block (exact for straight channels), ghosts included."""
    axis, shape = d.axis, d.lab.shape
    n = shape[axis] - 2
    view = [None, None, None]
    view[axis] = slice(None)
    prof = (n - np.arange(shape[axis], dtype=np.float64) + 0.5) / n
    if not d.cell_problem:
        prof[0], prof[-1] = 1.0, 0.0
    x[...] = prof[tuple(view)]
    _refresh(d, x, 1.0)


def _boundary_norm(d: Discretisation, x: np.ndarray, work: np.ndarray, partial: np.ndarray) -> float:
    """||b||, the source terms that only the boundary values create; ``x`` is zeroed, ``work`` overwritten."""
    x[...] = 0.0
    if d.cell_problem:
        fv.refresh_halo(x, d.axis, 1.0)
    else:
        x[(slice(None),) * d.axis + (0,)] = 1.0
    fv.apply_operator(d.lab, d.g, x, work, -1.0, partial)
    fv.dot(work, work, partial)
    return math.sqrt(_sum(partial))


def _mismatch(d: Discretisation, x: np.ndarray) -> tuple[float, float]:
    """(inlet/outlet current mismatch, spread of the inlet, middle and outlet plane currents)."""
    i_in, i_out = _currents(d, x)
    den = 0.5 * (abs(i_in) + abs(i_out))
    mis = abs(i_in - i_out) / den if den > 0 else 0.0
    a = d.axis
    n = d.lab.shape[a] - 2
    if n < 2:
        return mis, mis
    m = n // 2
    i_mid = fv.plane_current(_layer(d.lab, a, m), _layer(d.lab, a, m + 1), _layer(x, a, m), _layer(x, a, m + 1),
                             d.g[a])
    cur = (i_in, i_mid, i_out)
    den = sum(abs(c) for c in cur) / 3
    return mis, (max(cur) - min(cur)) / den if den > 0 else 0.0


def _solve_mg(d: Discretisation, tol, rtol, current_tol, max_iter, progress, t0):
    """Conjugate gradients preconditioned by the V-cycle; see :func:`solve_potential`.

    Memory: the V-cycle evaluates the residual from the float64 potential, so the
    fine level holds x (8 bytes), the search direction p and the preconditioned
    residual z (4 + 4), and the labels; the coarse levels add about 1.8 bytes per
    voxel. The hierarchy is built first, so its set-up temporaries never meet x.
    """
    acc = _Accuracy(tol, rtol, current_tol)
    lab, g = d.lab, d.g
    shape = lab.shape
    partial = np.zeros(shape[0])
    cycle = _Multigrid(d)
    x = np.zeros(shape, dtype=np.float64)
    p = np.zeros(shape, dtype=np.float32)
    z = np.zeros(shape, dtype=np.float32)
    bnorm = _boundary_norm(d, x, z, partial)
    _initial_guess(d, x)
    fv.dissipation(lab, g, x, d.periodic, partial)
    it, converged = 0, False
    if bnorm == 0.0:
        rel = mis = 0.0
        converged = True
    else:
        rz, rr = cycle(x, z)
        rel = math.sqrt(rr) / bnorm
        mis, spread = _mismatch(d, x)
        acc.start(_sum(partial), rel)
        converged = acc.met(rel, mis, spread)
        p[...] = z
    best_rel, best_it, restarts = rel, 0, 0
    while not converged and it < max_iter:
        _refresh(d, p, 0.0)
        fv.dissipation(lab, g, p, d.periodic, partial)  # p.Ap, each face once
        pap = _sum(partial)
        if not pap > 0.0:
            break
        alpha = rz / pap
        mg.axpy(x, p, alpha)
        _refresh(d, x, 1.0)
        it += 1
        rz_new, rr = cycle(x, z)
        rel = math.sqrt(rr) / bnorm
        mis, spread = _mismatch(d, x)
        acc.step(alpha, rz, rz_new, rel)
        if progress is not None:
            progress(it, rel, mis)
        if acc.met(rel, mis, spread):
            converged = True
            break
        beta = rz_new / rz if rz > 0 else 0.0
        if rel <= 0.5 * best_rel:
            best_rel, best_it, restarts = rel, it, 0
        elif it - best_it >= RESTART_ITERATIONS:
            # At high contrast the float32 search directions lose conjugacy and the residual
            # stalls; x is float64 and the residual is evaluated from it, so a restart from
            # the preconditioned residual resumes the descent.
            if restarts == MAX_RESTARTS:
                break
            restarts += 1
            best_it = it
            beta = 0.0
            acc.restart()
        fv.xpay(z, p, beta)
        rz = rz_new
    del cycle, p, z
    _refresh(d, x, 1.0)
    mis = _mismatch(d, x)[0]
    if progress is not None:
        progress(it, rel, mis, True)
    fv.dissipation(lab, g, x, d.periodic, partial)
    power = _sum(partial)
    info = SolverInfo("pcg-mg", bool(converged), it, float(rel), float(mis), time.perf_counter() - t0, rtol,
                      current_tol, acc.tol, float(acc.estimate))
    return x, info, power


def solve_potential(d: Discretisation, rtol: float | None = None, current_tol: float | None = None,
                    max_iter: int = 20000, progress: Callable[..., None] | None = None,
                    preconditioner: Callable | None = None, *, solver: str = DEFAULT_SOLVER,
                    tol: float | None = None):
    """Preconditioned conjugate gradients for the potential of a discretised problem.

    Returns ``(x, info, power)``: the padded float64 potential (ghosts hold the
    boundary values), a :class:`SolverInfo` and the dissipated power for a unit
    potential drop, in the units of ``d.g``.

    ``solver='mg'`` preconditions with a multigrid V-cycle (iteration counts
    nearly independent of the volume size); ``'jacobi'`` with the diagonal, the
    reference. The stopping test (``tol``, ``rtol``, ``current_tol``) is that of
    :func:`conductivity`. The Jacobi loop updates the residual recursively in
    float32 and recomputes it from ``x`` before stopping, so float32 drift cannot
    end the iteration early; the multigrid loop evaluates it from ``x`` in every
    iteration. ``preconditioner(r, z, partial)`` replaces Jacobi in the Jacobi
    loop: it writes z = M^-1 r and the plane sums of r z into ``partial``.
    """
    check_solver(solver)
    t0 = time.perf_counter()
    if solver == "mg" and preconditioner is None:
        return _solve_mg(d, tol, rtol, current_tol, max_iter, progress, t0)
    acc = _Accuracy(tol, rtol, current_tol)
    lab, g = d.lab, d.g
    shape = lab.shape
    partial = np.zeros(shape[0])

    # The potential is float64: near a Dirichlet face of a highly conducting phase it
    # varies by less than float32 can resolve, and the inlet current would be lost.
    x = np.zeros(shape, dtype=np.float64)
    r = np.zeros(shape, dtype=np.float32)
    bnorm = _boundary_norm(d, x, r, partial)
    _initial_guess(d, x)
    p = np.zeros(shape, dtype=np.float32)
    q = np.zeros(shape, dtype=np.float32)
    precond = preconditioner or (lambda rr, zz, part: fv.jacobi_precondition(lab, g, rr, zz, part))

    def residual():
        fv.apply_operator(lab, g, x, r, -1.0, partial)
        fv.dot(r, r, partial)
        return math.sqrt(_sum(partial)) / bnorm

    def mismatch():
        _refresh(d, x, 1.0)
        return _mismatch(d, x)  # (mismatch, spread)

    it, converged = 0, False
    if bnorm == 0.0:
        rel = mis = 0.0
        converged = True
    else:
        fv.dissipation(lab, g, x, d.periodic, partial)
        power0 = _sum(partial)
        rel = residual()
        mis, spread = mismatch()
        acc.start(power0, rel)
        converged = acc.met(rel, mis, spread)
    rtol_seen = acc.rtol if acc.rtol is not None else math.inf
    restart = True
    while not converged and it < max_iter:
        if restart:
            precond(r, p, partial)
            rz = _sum(partial)
            restart = False
        _refresh(d, p, 0.0)
        fv.apply_operator(lab, g, p, q, 1.0, partial)
        pq = _sum(partial)
        if not pq > 0.0:  # p = 0: nothing left to reduce
            break
        alpha = rz / pq
        fv.cg_update(x, r, p, q, alpha, partial)
        it += 1
        rel = math.sqrt(_sum(partial)) / bnorm
        precond(r, q, partial)  # q is dead once r is updated: it takes z
        rz_new = _sum(partial)
        acc.step(alpha, rz, rz_new, rel)
        mis, spread = mismatch() if rel <= rtol_seen else (math.nan, math.nan)
        if progress is not None:
            progress(it, rel, mis)
        if acc.met(rel, mis, spread) or (acc.rtol is not None and rel <= 1e-3 * acc.rtol):
            # Replace the recursive residual by the true one: either to confirm convergence,
            # or because the float32 recursion has drifted far below what x really satisfies
            # while the currents still disagree.
            rel = residual()
            converged = acc.met(rel, mis, spread)
            restart = True
            acc.restart()
            continue
        fv.xpay(q, p, rz_new / rz if rz > 0 else 0.0)
        rz = rz_new
    _refresh(d, x, 1.0)
    mis = mismatch()[0]
    if progress is not None:
        progress(it, rel, mis, True)
    fv.dissipation(lab, g, x, d.periodic, partial)
    power = _sum(partial)
    info = SolverInfo("pcg-jacobi" if preconditioner is None else "pcg", bool(converged), it, float(rel), float(mis),
                      time.perf_counter() - t0, rtol, current_tol, acc.tol, float(acc.estimate))
    return x, info, power


# ---------------------------------------------------------------------------
# public entry points


def _conducting_names(phases: PhaseTable, carrier: str, labels: np.ndarray) -> tuple[str, ...]:
    present = set(np.flatnonzero(label_counts(labels)).tolist())
    return tuple(p.name for p in phases.conducting(carrier) if p.label in present)


def solved_numbers(info: SolverInfo, power: float, sigma_scale: float, size_um, axis: int, eps_sigma_ref: float,
                   eps_sigma_ref_percolating: float, sigma_ref: float) -> dict:
    """sigma_eff (S/m), tau, tau_percolating, the MacMullin number and the message of one solve.

    ``power`` is the dissipation of the solved potential for 1 V in units of
    ``sigma_scale`` (S/m) um; ``eps_sigma_ref`` is eps * sigma_ref of the whole
    conducting phase and ``eps_sigma_ref_percolating`` the same for its percolating
    part. A solve that did not converge gives NaN values and a message, never numbers.
    """
    length = size_um[axis]
    area = size_um[0] * size_um[1] * size_um[2] / length
    sigma_eff = power * sigma_scale * length / area
    if info.converged:
        return dict(sigma_eff_S_per_m=sigma_eff, tau=eps_sigma_ref / sigma_eff,
                    tau_percolating=eps_sigma_ref_percolating / sigma_eff, macmullin=sigma_ref / sigma_eff,
                    message="converged")
    msg = (f"not converged after {info.iterations} iterations (relative residual {info.relative_residual:.2e}, "
           f"current mismatch {info.current_mismatch:.2e}, estimated error {info.error_estimate:.1e}); "
           "raise max_iter or loosen tol/rtol/current_tol")
    return dict(sigma_eff_S_per_m=math.nan, tau=math.nan, tau_percolating=math.nan, macmullin=math.nan,
                message=msg)


def solve_direction(volume: Volume, carrier: str, direction: str, *, periodic_sides: bool = False,
                    cell_problem: bool = False, tol: float | None = None, rtol: float | None = None,
                    current_tol: float | None = None, max_iter: int = 20000, return_fields: bool = False,
                    progress: Callable[[int, float, float], None] | None = None,
                    solver: str = DEFAULT_SOLVER) -> DirectionResult:
    """Effective conductivity of ``volume`` for one carrier along one direction.

    See :func:`conductivity` for the parameters.
    """
    carrier = check_carrier(carrier)
    axis = axis_index(direction)
    check_solver(solver)
    _Accuracy(tol, rtol, current_tol)  # bad tolerances fail before any work
    # The cell problem is one period of an infinite medium: walls at the side faces
    # would make the result depend on where the period is cut.
    periodic_sides = periodic_sides or cell_problem
    labels = volume.labels
    lut = volume.conductivity_lut(carrier)
    conducting = lookup(lut > 0, labels)
    n_total = labels.size
    counts = label_counts(labels)
    n_cond = int(counts[lut > 0].sum())
    eps = n_cond / n_total
    sigma_ref = float((counts * lut).sum() / n_cond) if n_cond else 0.0
    names = _conducting_names(volume.phases, carrier, labels)
    perc = percolation(conducting, direction, periodic_sides=periodic_sides, periodic_direction=cell_problem)
    del conducting
    eps_perc = perc.percolating_volume_fraction
    tau_brugg = eps ** -BRUGGEMAN_ALPHA if eps > 0 else math.inf
    common = dict(carrier=carrier, direction=direction, conducting_phases=names, eps=eps, eps_percolating=eps_perc,
                  sigma_ref_S_per_m=sigma_ref, tau_bruggeman=tau_brugg, cell_problem=cell_problem,
                  periodic_sides=periodic_sides)
    if not perc.percolates:
        what = " + ".join(names) if names else f"no phase conducts {carrier} charge"
        msg = (f"{what} does not connect the two faces normal to {direction}: no {carrier} current flows "
               f"(sigma_eff = 0, tau = inf)" if names else f"{what}: sigma_eff = 0, tau = inf")
        return DirectionResult(sigma_eff_S_per_m=0.0, tau=math.inf, tau_percolating=math.inf, macmullin=math.inf,
                               current_in_A=0.0, current_out_A=0.0, percolates=False, message=msg, solver=None,
                               **common)
    keep = perc.percolating
    n_perc = int(keep.sum())
    sigma_ref_perc = float(lut[labels[keep]].sum() / n_perc)
    d = discretise(labels, lut, volume.voxel_size_um, axis, keep, periodic_sides, cell_problem)
    del keep, perc
    x, info, power = solve_potential(d, rtol=rtol, current_tol=current_tol, max_iter=max_iter, progress=progress,
                                     solver=solver, tol=tol)
    numbers = solved_numbers(info, power, d.sigma_scale, volume.size_um, axis, eps * sigma_ref,
                             eps_perc * sigma_ref_perc, sigma_ref)
    i_in, i_out = _currents(d, x)
    to_amp = d.sigma_scale * 1e-6  # g is in (S/m) um; 1 V applied
    pot = jd = None
    if return_fields:
        inner = (slice(1, -1),) * 3
        conducting_mask = d.lab[inner] < (d.g.shape[1] - 2)
        pot = np.where(conducting_mask, x[inner], np.nan).astype(np.float32)
        jd = np.zeros((3,) + labels.shape, dtype=np.float32)
        spacing = np.asarray(volume.voxel_size_um, dtype=np.float64)
        face_area = np.array([spacing[1] * spacing[2], spacing[0] * spacing[2], spacing[0] * spacing[1]])
        fv.current_density(d.lab, d.g, x, face_area, jd)
        jd *= d.sigma_scale * 1e6  # (S/m) V / um -> A/m^2
    return DirectionResult(**numbers, current_in_A=i_in * to_amp, current_out_A=i_out * to_amp, percolates=True,
                           solver=info, potential=pot, current_density_A_per_m2=jd, **common)


def conductivity(volume, direction: str | Sequence[str] = "all", carrier: str = "ionic", *,
                 periodic_sides: bool = False, cell_problem: bool = False, tol: float | None = None,
                 rtol: float | None = None, current_tol: float | None = None, max_iter: int = 20000,
                 return_fields: bool = False, progress: Callable[..., None] | None = None,
                 solver: str = DEFAULT_SOLVER, max_memory_bytes: float | None = None,
                 sigma=None, ionic=None, electronic=None, phases=None, voxel_size_um=None,
                 axes: str = "zyx") -> ConductivityResult:
    """Effective conductivity and tortuosity factor of a volume.

    Parameters
    ----------
    volume : Volume, numpy array or path
        Labels, phase table (conductivities in S/m) and voxel size in um. A boolean
        array conducts where True (sigma 1 S/m, voxel 1 um unless ``voxel_size_um``);
        an integer array needs ``sigma={label: S_per_m}``, ``ionic=``/``electronic=``
        mappings or ``phases=`` a phase table; see :func:`microsim.arrays.as_volume`.
    sigma, ionic, electronic, phases, voxel_size_um, axes
        How to read an array (``axes='xyz'`` for arrays stored (x, y, z)); not for a Volume.
    direction : 'x', 'y', 'z', 'all' or a list of them
        Transport directions; each is a separate solve.
    carrier : 'ionic', 'electronic' or 'both'
        Which conductivity column of the phase table to use ('both' = two solves).
    periodic_sides : bool
        Periodic instead of no-flux side faces.
    cell_problem : bool
        Fully periodic volume with a unit potential drop per period (homogenisation
        cell problem) instead of fixed potentials on two faces; implies periodic sides.
    tol : float, optional
        Bound on the estimated relative error of sigma_eff (and so of tau). sigma_eff
        comes from the dissipation, whose error is the energy norm of the error of
        the potential, never negative, and conjugate gradients tells by how much
        each step lowers it; the estimate extrapolates those steps. The default,
        used when none of tol, rtol, current_tol is given, is 5e-4, which keeps tau
        within 0.1 % of the fully converged value with a factor 2 to spare.
    rtol : float, optional
        Relative residual ||b - Ax|| / ||b|| to reach.
    current_tol : float, optional
        Relative mismatch of inlet and outlet current to reach. It shrinks only
        linearly with the error of the potential while sigma_eff converges
        quadratically, so asking for it costs iterations that sigma_eff does not
        need; it matters when the terminal currents themselves are wanted.
        Every criterion given must hold.
    max_iter : int
        Iteration limit; reaching it gives a result marked not converged (NaN values).
    return_fields : bool
        Keep the potential (V, for 1 V applied; NaN outside the percolating network)
        and the cell-centred current density (A/m^2, components z, y, x).
    progress : callable(carrier, direction, iteration, rel_residual, current_mismatch, done)
        Called after every iteration and once more (``done=True``) at the end of each solve.
    solver : 'mg' or 'jacobi'
        Multigrid-preconditioned conjugate gradients (default), or Jacobi-preconditioned
        (the reference: same discretisation, iterations growing with the edge length).
    max_memory_bytes : float, optional
        Refuse, before allocating anything, a volume whose :func:`estimate_memory`
        exceeds this, with :class:`MemoryLimitError` naming the largest crop that fits.

    Returns
    -------
    ConductivityResult

    Examples
    --------
    >>> import numpy as np
    >>> from microsim import Volume
    >>> v = Volume(np.ones((8, 8, 8), np.uint8), {"SE": {"label": 1, "sigma_ionic_S_per_m": 0.5}})
    >>> r = conductivity(v, "x")
    >>> round(r.get("ionic", "x").tau, 6)
    1.0
    >>> round(conductivity(np.ones((8, 8, 8), bool), "x").tau, 6)
    1.0
    """
    volume = as_volume(volume, sigma=sigma, ionic=ionic, electronic=electronic, phases=phases,
                       voxel_size_um=voxel_size_um, axes=axes)
    carriers = CARRIERS if carrier == "both" else (check_carrier(carrier),)
    dirs = directions(direction)
    check_solver(solver)
    if max_memory_bytes is not None:
        present = label_counts(volume.labels) > 0
        phases = max(int((present & (volume.conductivity_lut(c) > 0)).sum()) for c in carriers)
        check_memory(volume.shape, max_memory_bytes, solver=solver, periodic=periodic_sides or cell_problem,
                     conducting_phases=phases, return_fields=return_fields, solves=len(carriers) * len(dirs))
    present = label_counts(volume.labels) > 0
    for n_phases in sorted({min(int((present & (volume.conductivity_lut(c) > 0)).sum()), 2) for c in carriers} - {0}):
        ensure_compiled_conductivity(solver, periodic_sides or cell_problem, cell_problem, n_phases, return_fields)
    results = []
    for c in carriers:
        for dname in dirs:
            cb = None if progress is None else (
                lambda it, rel, mis, done=False, c=c, dn=dname: progress(c, dn, it, rel, mis, done))
            results.append(solve_direction(volume, c, dname, periodic_sides=periodic_sides, cell_problem=cell_problem,
                                           tol=tol, rtol=rtol, current_tol=current_tol, max_iter=max_iter,
                                           return_fields=return_fields, progress=cb, solver=solver))
    return ConductivityResult(tuple(results), volume.shape, volume.voxel_size_um)


# ---------------------------------------------------------------------------
# memory


class MemoryLimitError(ValueError):
    """A solve would need more memory than allowed; the message has the estimate and a crop that fits."""


@dataclass(frozen=True)
class MemoryEstimate:
    """Peak memory of the arrays of a conductivity solve.

    Computed from the sizes of the arrays each stage allocates (the same level
    layout the multigrid solver builds). The volume's own labels are included;
    the Python interpreter and the compiled kernels (a few hundred MB, the same
    for every volume) are not.

    Attributes
    ----------
    peak_bytes : int
        The largest stage plus the fields kept by earlier solves.
    stages : tuple of (name, bytes)
        Peak of each stage: percolation, discretise, set-up (multigrid), solve, fields.
    """

    shape: tuple[int, int, int]
    solver: str
    peak_bytes: int
    stages: tuple[tuple[str, int], ...]

    @property
    def bytes_per_voxel(self) -> float:
        return self.peak_bytes / float(np.prod(self.shape))

    def to_dict(self) -> dict:
        return {"shape": list(self.shape), "solver": self.solver, "peak_bytes": self.peak_bytes,
                "bytes_per_voxel": self.bytes_per_voxel, "stages": dict(self.stages)}


def estimate_memory(shape, solver: str = DEFAULT_SOLVER, *, periodic: bool = False, conducting_phases: int = 1,
                    return_fields: bool = False, solves: int = 1) -> MemoryEstimate:
    """Peak memory of :func:`conductivity` on a volume of ``shape`` (z, y, x).

    Parameters
    ----------
    solver : 'mg' or 'jacobi'
    periodic : bool
        Periodic sides or the cell problem (cluster labelling across periodic faces
        needs a second int32 array).
    conducting_phases : int
        Number of conducting label values; with more than two, level 1 of the
        multigrid hierarchy may need float32 faces instead of uint8 codes.
    return_fields, solves : the potential and current density of every solve are kept.

    Examples
    --------
    >>> e = estimate_memory((512, 512, 512))
    >>> round(e.bytes_per_voxel, 1) <= 20.0
    True
    """
    check_solver(solver)
    nz, ny, nx = (int(v) for v in shape)
    n = nz * ny * nx
    padded = (nz + 2) * (ny + 2) * (nx + 2)
    # percolation: the labels, the conducting mask, int32 cluster ids and the percolating
    # mask (lookups and counts run a few planes at a time, so no 8-byte copy of a whole
    # array); periodic faces can add a second set of ids while clusters are merged
    stages = [("percolation", n * (7 + (4 if periodic else 0))),
              ("discretise", 4 * n + padded)]
    if solver == "mg":
        lv, _, n_e, n_f = _mg_levels((nz, ny, nx), (periodic,) * 3)
        level1 = int(np.prod(lv[1, :3] + 2))
        bottom = int(np.prod(lv[-1, :3]))
        # level-1 faces: 4-bit codes with one conducting phase, bytes with two, float32 when
        # more than 256 sums occur (possible with three or more conducting phases); the
        # coarsest level keeps a dense float64 Cholesky factor
        per_face = 1.5 if conducting_phases <= 1 else 3 if conducting_phases == 2 else 12
        faces = int(per_face * level1) + 4 * n_f
        stages.append(("set-up", n + padded + faces + 8 * level1))
        stages.append(("solve", n + padded + 16 * padded + 8 * n_e + faces + 8 * bottom * (bottom + 3)))
    else:
        stages.append(("solve", n + padded + 20 * padded))
    kept = 0
    if return_fields:
        # potential (float32, via a float64 temporary) and current density (3 x float32)
        # while the float64 potential of the solve is still alive
        stages.append(("fields", 18 * n + 9 * padded))
        kept = 16 * n * (solves - 1)
    peak = max(b for _, b in stages) + kept
    return MemoryEstimate((nz, ny, nx), solver, int(peak), tuple((k, int(b)) for k, b in stages))


def largest_crop(shape, max_bytes: float, **kw) -> tuple[int, int, int] | None:
    """The largest crop of ``shape``, same proportions, whose :func:`estimate_memory` fits ``max_bytes``."""
    shape = tuple(int(v) for v in shape)

    def crop(s):
        return tuple(max(1, int(v * s)) for v in shape)

    if estimate_memory(crop(0.0), **kw).peak_bytes > max_bytes:
        return None
    lo, hi = 0.0, 1.0
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        if estimate_memory(crop(mid), **kw).peak_bytes <= max_bytes:
            lo = mid
        else:
            hi = mid
    return crop(lo)


def available_memory_bytes() -> int | None:
    """Memory the system can give a new process without swapping (Linux MemAvailable), or None if unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def _size(nbytes: float) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= scale:
            return f"{nbytes / scale:.2f} {unit}"
    return f"{nbytes:.0f} bytes"


def check_memory(shape, max_bytes: float, **kw) -> MemoryEstimate:
    """Raise :class:`MemoryLimitError` if :func:`estimate_memory` exceeds ``max_bytes``; return the estimate."""
    est = estimate_memory(shape, **kw)
    if est.peak_bytes > max_bytes:
        fit = largest_crop(shape, max_bytes, **kw)
        where = (f"the largest crop that fits is about {' x '.join(map(str, fit))} voxels (z, y, x)" if fit
                 else "not even a single voxel fits")
        raise MemoryLimitError(
            f"a {' x '.join(map(str, est.shape))} volume needs about {_size(est.peak_bytes)} "
            f"({est.bytes_per_voxel:.1f} bytes/voxel, {est.solver} solver) but only {_size(max_bytes)} "
            f"may be used; {where}: crop the volume or raise the limit (--max-memory)")
    return est
