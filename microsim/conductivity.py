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

Two solvers share the discretisation and one conjugate-gradient driver
(:mod:`microsim.solve`): ``solver='mg'`` (the default) preconditions with a
geometric multigrid V-cycle, whose iteration count barely grows with the
volume, and hands over to algebraic multigrid where the V-cycle stalls (thin
poorly connected networks, conductivity contrasts of 1e4 and more);
``solver='jacobi'`` preconditions with the diagonal, the reference. Both stop
only when the estimated relative error of sigma_eff is at most ``tol``
(default 5e-4: tau within 0.1 % with a margin) and the current through every
layer of faces agrees; ``rtol`` and ``current_tol`` add criteria.
:func:`estimate_memory` predicts the peak memory of a solve before anything is
allocated; ``max_memory_bytes`` turns the prediction into a refusal.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from kernels import fv

from .arrays import as_volume
from .percolation import percolation
from .phases import CARRIERS, PhaseTable, check_carrier
from .solve.accuracy import DEFAULT_MAX_ITER, DEFAULT_TOL, Accuracy, check_tolerances
from .solve.discretise import Discretisation, discretise
from .solve.local import LocalProblem
from .solve.memory import (MemoryEstimate, MemoryLimitError, available_memory_bytes, check_memory, estimate_memory,
                           largest_crop)
from .solve.names import DEFAULT_SOLVER, SOLVERS, check_solver
from .solve.pcg import SolverInfo, pcg
from .solve.preconditioners import stages
from .volume import Volume, axis_index, directions, label_counts, lookup
from .warmup import ensure_compiled_conductivity

#: tortuosity exponent of the Bruggeman relation tau = eps^-alpha
BRUGGEMAN_ALPHA = 0.5


class NotConvergedError(RuntimeError):
    """The solver reached its iteration limit before both stopping criteria held."""


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
    unconverged : for a solve that stopped short, the numbers of its last iterate
        (sigma_eff_S_per_m, tau, estimated_relative_error, current_mismatch, ...); they
        are not results, and the result fields hold NaN
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
    unconverged: dict | None = None
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
        d["unconverged"] = None if self.unconverged is None else dict(self.unconverged)
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


def solve_potential(d: Discretisation, *, solver: str = DEFAULT_SOLVER, tol: float | None = None,
                    rtol: float | None = None, current_tol: float | None = None, max_iter: int = DEFAULT_MAX_ITER,
                    progress: Callable[..., None] | None = None, monitor: Callable | None = None):
    """Preconditioned conjugate gradients for the potential of a discretised problem.

    Returns ``(x, info, power)``: the padded float64 potential (ghosts hold the
    boundary values), a :class:`SolverInfo` and the dissipated power for a unit
    potential drop, in the units of ``d.g``. ``solver='mg'`` runs the geometric
    multigrid stage and, where it stalls, the algebraic one
    (:mod:`microsim.solve.preconditioners`); ``'jacobi'`` the diagonal, the
    reference. The stopping test is that of :func:`conductivity`.
    """
    check_solver(solver)
    acc = Accuracy(tol, rtol, current_tol)
    check_tolerances(tol, rtol, current_tol, max_iter)
    return pcg(LocalProblem(d), stages(solver), acc, max_iter, progress, monitor)


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
                    message="converged", unconverged=None)
    tau_last = eps_sigma_ref / sigma_eff if sigma_eff > 0 else math.inf
    unconverged = {"sigma_eff_S_per_m": sigma_eff, "tau": tau_last, "estimated_relative_error": info.error_estimate,
                   "current_mismatch": info.current_mismatch, "relative_residual": info.relative_residual,
                   "iterations": info.iterations}
    return dict(sigma_eff_S_per_m=math.nan, tau=math.nan, tau_percolating=math.nan, macmullin=math.nan,
                message=not_converged_message(info, tau_last), unconverged=unconverged)


def not_converged_message(info: SolverInfo, tau_last: float) -> str:
    """What a solve that stopped short reached, why it stopped and what would help, in one line."""
    where = (f"at the last iterate tau = {tau_last:.6g} with an estimated error of "
             f"{info.error_estimate:.1e} and a current mismatch of {info.current_mismatch:.1e}")
    if info.stopped == "iteration limit":
        why, fix = f"the iteration limit of {info.iterations} was reached", "raise --max-iter (max_iter)"
    else:
        why, fix = f"the search stalled after {info.iterations} iterations", "use --solver jacobi (slow but sure)"
    notes = f" ({'; '.join(info.notes)})" if info.notes else ""
    return f"not converged: {why}{notes}; {where}; {fix}"


def solve_direction(volume: Volume, carrier: str, direction: str, *, periodic_sides: bool = False,
                    cell_problem: bool = False, tol: float | None = None, rtol: float | None = None,
                    current_tol: float | None = None, max_iter: int = DEFAULT_MAX_ITER, return_fields: bool = False,
                    progress: Callable[[int, float, float], None] | None = None,
                    solver: str = DEFAULT_SOLVER) -> DirectionResult:
    """Effective conductivity of ``volume`` for one carrier along one direction.

    See :func:`conductivity` for the parameters.
    """
    carrier = check_carrier(carrier)
    axis = axis_index(direction)
    check_solver(solver)
    check_tolerances(tol, rtol, current_tol, max_iter)  # bad options fail before any work
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
    i_in, i_out = LocalProblem(d).currents(x)
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
                 rtol: float | None = None, current_tol: float | None = None, max_iter: int = DEFAULT_MAX_ITER,
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
        each step lowers it; the estimate extrapolates those steps. The default
        5e-4 keeps tau within 0.1 % of the fully converged value with a factor 2 to
        spare; accepted range [1e-12, 1e-3]. It applies to every solve, whatever
        else is asked, and so does the check that the current through every layer
        of faces normal to the direction is the same (see
        :mod:`microsim.solve.accuracy`).
    rtol : float, optional
        Relative residual ||b - Ax|| / ||b|| to reach as well, in [1e-15, 1e-2].
    current_tol : float, optional
        Relative mismatch of inlet and outlet current to reach as well, in
        [1e-12, 0.1]. It shrinks only linearly with the error of the potential
        while sigma_eff converges quadratically, so asking for it costs
        iterations that sigma_eff does not need; it matters when the terminal
        currents themselves are wanted.
    max_iter : int
        Iteration limit, the only stop short of convergence; reaching it gives a
        result marked not converged: NaN values, and the last iterate's numbers under
        ``unconverged``.
    return_fields : bool
        Keep the potential (V, for 1 V applied; NaN outside the percolating network)
        and the cell-centred current density (A/m^2, components z, y, x).
    progress : callable(carrier, direction, iteration, rel_residual, current_mismatch, done)
        Called after every iteration and once more (``done=True``) at the end of each solve.
    solver : 'mg' or 'jacobi'
        Multigrid-preconditioned conjugate gradients (default; geometric, then
        algebraic where the geometric one stalls), or Jacobi-preconditioned (the
        reference: same discretisation, iterations growing with the edge length).
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
