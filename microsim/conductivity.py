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
are computed too and their mismatch is one of the two stopping criteria.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from kernels import fv

from .percolation import percolation
from .phases import CARRIERS, PhaseTable, check_carrier
from .volume import Volume, axis_index, directions

#: tortuosity exponent of the Bruggeman relation tau = eps^-alpha
BRUGGEMAN_ALPHA = 0.5


class NotConvergedError(RuntimeError):
    """The solver reached its iteration limit before both stopping criteria held."""


@dataclass(frozen=True)
class SolverInfo:
    """How a solve went.

    ``relative_residual`` is ||b - A x|| / ||b|| recomputed from the final potential;
    ``current_mismatch`` is |I_in - I_out| / mean(|I_in|, |I_out|).
    """

    method: str
    converged: bool
    iterations: int
    relative_residual: float
    current_mismatch: float
    time_s: float
    rtol: float
    current_tol: float

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


@dataclass(frozen=True)
class ConductivityResult:
    """All (carrier, direction) results of one call of :func:`conductivity`."""

    results: tuple[DirectionResult, ...]
    shape: tuple[int, int, int]
    voxel_size_um: tuple[float, float, float]

    def __iter__(self):
        return iter(self.results)

    def get(self, carrier: str, direction: str) -> DirectionResult:
        for r in self.results:
            if r.carrier == carrier and r.direction == direction:
                return r
        raise KeyError(f"no result for carrier {carrier!r} in direction {direction!r}")

    @property
    def converged(self) -> bool:
        return all(r.converged for r in self.results)

    def to_dict(self) -> dict:
        return {"shape": list(self.shape), "voxel_size_um": list(self.voxel_size_um),
                "results": [r.to_dict() for r in self.results]}


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


def _compact_indices(labels: np.ndarray, lut: np.ndarray):
    """Map label values to compact indices 0..L-1 for conducting labels; L = insulating, L+1 = Dirichlet."""
    present = np.flatnonzero(np.bincount(labels.ravel(), minlength=256))
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
    lab[inner] = np.where(keep, to_index[labels], np.uint8(ins))
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


def solve_potential(d: Discretisation, rtol: float = 1e-5, current_tol: float = 1e-4, max_iter: int = 20000,
                    progress: Callable[..., None] | None = None,
                    preconditioner: Callable | None = None):
    """Preconditioned conjugate gradients for the potential of a discretised problem.

    Returns ``(x, info, power)``: the padded float64 potential (ghosts hold the
    boundary values), a :class:`SolverInfo` and the dissipated power for a unit
    potential drop, in the units of ``d.g``.

    Stops when the relative residual ||b - Ax|| / ||b|| <= ``rtol`` *and* the
    inlet/outlet current mismatch <= ``current_tol``. The residual is recomputed
    from ``x`` before stopping, so float32 drift of the recursive residual cannot
    end the iteration early. ``preconditioner(r, z, partial)`` writes z = M^-1 r
    and the plane sums of r z; the default is Jacobi.
    """
    t0 = time.perf_counter()
    lab, g, axis = d.lab, d.g, d.axis
    shape = lab.shape
    partial = np.zeros(shape[0])
    n = shape[axis] - 2
    view = [None, None, None]
    view[axis] = slice(None)

    # ||b||: the potential's source terms, which only the boundary values create.
    # The potential is float64: near a Dirichlet face of a highly conducting phase it
    # varies by less than float32 can resolve, and the inlet current would be lost.
    x = np.zeros(shape, dtype=np.float64)
    r = np.zeros(shape, dtype=np.float32)
    if d.cell_problem:
        fv.refresh_halo(x, axis, 1.0)
    else:
        x[(slice(None),) * axis + (0,)] = 1.0
    fv.apply_operator(lab, g, x, r, -1.0, partial)
    fv.dot(r, r, partial)
    bnorm = math.sqrt(_sum(partial))

    # Initial guess: the linear profile of a uniform block, exact for straight channels.
    prof = (n - np.arange(shape[axis], dtype=np.float64) + 0.5) / n
    if not d.cell_problem:
        prof[0], prof[-1] = 1.0, 0.0
    x[...] = prof[tuple(view)]
    _refresh(d, x, 1.0)
    p = np.zeros(shape, dtype=np.float32)
    q = np.zeros(shape, dtype=np.float32)
    precond = preconditioner or (lambda rr, zz, part: fv.jacobi_precondition(lab, g, rr, zz, part))

    def residual():
        fv.apply_operator(lab, g, x, r, -1.0, partial)
        fv.dot(r, r, partial)
        return math.sqrt(_sum(partial)) / bnorm

    def mismatch():
        _refresh(d, x, 1.0)
        i_in, i_out = _currents(d, x)
        den = 0.5 * (abs(i_in) + abs(i_out))
        return abs(i_in - i_out) / den if den > 0 else 0.0

    it, converged = 0, False
    if bnorm == 0.0:
        rel = mis = 0.0
        converged = True
    else:
        rel = residual()
        mis = mismatch()
        converged = rel <= rtol and mis <= current_tol
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
        fv.cg_update(x, r, p, q, rz / pq, partial)
        it += 1
        rel = math.sqrt(_sum(partial)) / bnorm
        mis = mismatch() if rel <= rtol else math.nan
        if progress is not None:
            progress(it, rel, mis)
        if (rel <= rtol and mis <= current_tol) or rel <= 1e-3 * rtol:
            # Replace the recursive residual by the true one: either to confirm convergence,
            # or because the float32 recursion has drifted far below what x really satisfies
            # while the currents still disagree.
            rel = residual()
            converged = rel <= rtol and mis <= current_tol
            restart = True
            continue
        precond(r, q, partial)
        rz_new = _sum(partial)
        fv.xpay(q, p, rz_new / rz if rz > 0 else 0.0)
        rz = rz_new
    _refresh(d, x, 1.0)
    mis = mismatch()
    if progress is not None:
        progress(it, rel, mis, True)
    fv.dissipation(lab, g, x, d.periodic, partial)
    power = _sum(partial)
    info = SolverInfo("pcg-jacobi" if preconditioner is None else "pcg", bool(converged), it, float(rel), float(mis),
                      time.perf_counter() - t0, rtol, current_tol)
    return x, info, power


# ---------------------------------------------------------------------------
# public entry points


def _conducting_names(phases: PhaseTable, carrier: str, labels: np.ndarray) -> tuple[str, ...]:
    present = set(np.flatnonzero(np.bincount(labels.ravel(), minlength=256)).tolist())
    return tuple(p.name for p in phases.conducting(carrier) if p.label in present)


def solve_direction(volume: Volume, carrier: str, direction: str, *, periodic_sides: bool = False,
                    cell_problem: bool = False, rtol: float = 1e-5, current_tol: float = 1e-4,
                    max_iter: int = 20000, return_fields: bool = False,
                    progress: Callable[[int, float, float], None] | None = None) -> DirectionResult:
    """Effective conductivity of ``volume`` for one carrier along one direction.

    See :func:`conductivity` for the parameters.
    """
    carrier = check_carrier(carrier)
    axis = axis_index(direction)
    # The cell problem is one period of an infinite medium: walls at the side faces
    # would make the result depend on where the period is cut.
    periodic_sides = periodic_sides or cell_problem
    labels = volume.labels
    lut = volume.conductivity_lut(carrier)
    conducting = (lut > 0)[labels]
    n_total = labels.size
    counts = np.bincount(labels.ravel(), minlength=256)
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
    x, info, power = solve_potential(d, rtol=rtol, current_tol=current_tol, max_iter=max_iter, progress=progress)
    size = volume.size_um
    length = size[axis]
    area = size[0] * size[1] * size[2] / length
    sigma_eff = power * d.sigma_scale * length / area
    i_in, i_out = _currents(d, x)
    to_amp = d.sigma_scale * 1e-6  # g is in (S/m) um; 1 V applied
    if info.converged:
        tau = eps * sigma_ref / sigma_eff
        tau_p = eps_perc * sigma_ref_perc / sigma_eff
        nm = sigma_ref / sigma_eff
        msg = "converged"
    else:
        sigma_eff = tau = tau_p = nm = math.nan
        msg = (f"not converged after {info.iterations} iterations (relative residual {info.relative_residual:.2e}, "
               f"current mismatch {info.current_mismatch:.2e}); raise max_iter or loosen rtol/current_tol")
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
    return DirectionResult(sigma_eff_S_per_m=sigma_eff, tau=tau, tau_percolating=tau_p, macmullin=nm,
                           current_in_A=i_in * to_amp, current_out_A=i_out * to_amp, percolates=True,
                           message=msg, solver=info, potential=pot, current_density_A_per_m2=jd, **common)


def conductivity(volume: Volume, direction: str | Sequence[str] = "all", carrier: str = "ionic", *,
                 periodic_sides: bool = False, cell_problem: bool = False, rtol: float = 1e-5,
                 current_tol: float = 1e-4, max_iter: int = 20000, return_fields: bool = False,
                 progress: Callable[[str, str, int, float, float], None] | None = None) -> ConductivityResult:
    """Effective conductivity and tortuosity factor of a volume.

    Parameters
    ----------
    volume : Volume
        Labels, phase table (conductivities in S/m) and voxel size in um.
    direction : 'x', 'y', 'z', 'all' or a list of them
        Transport directions; each is a separate solve.
    carrier : 'ionic', 'electronic' or 'both'
        Which conductivity column of the phase table to use ('both' = two solves).
    periodic_sides : bool
        Periodic instead of no-flux side faces.
    cell_problem : bool
        Fully periodic volume with a unit potential drop per period (homogenisation
        cell problem) instead of fixed potentials on two faces; implies periodic sides.
    rtol : float
        Relative residual ||b - Ax|| / ||b|| to reach.
    current_tol : float
        Relative mismatch of inlet and outlet current to reach.
    max_iter : int
        Iteration limit; reaching it gives a result marked not converged (NaN values).
    return_fields : bool
        Keep the potential (V, for 1 V applied; NaN outside the percolating network)
        and the cell-centred current density (A/m^2, components z, y, x).
    progress : callable(carrier, direction, iteration, rel_residual, current_mismatch, done)
        Called after every iteration and once more (``done=True``) at the end of each solve.

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
    """
    carriers = CARRIERS if carrier == "both" else (check_carrier(carrier),)
    results = []
    for c in carriers:
        for dname in directions(direction):
            cb = None if progress is None else (
                lambda it, rel, mis, done=False, c=c, dn=dname: progress(c, dn, it, rel, mis, done))
            results.append(solve_direction(volume, c, dname, periodic_sides=periodic_sides, cell_problem=cell_problem,
                                           rtol=rtol, current_tol=current_tol, max_iter=max_iter,
                                           return_fields=return_fields, progress=cb))
    return ConductivityResult(tuple(results), volume.shape, volume.voxel_size_um)
