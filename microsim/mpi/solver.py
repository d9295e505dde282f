"""Conjugate gradients on a volume split into slabs of z planes, with the kernels of :mod:`kernels.fv`.

Every rank holds its slab as the padded arrays of :mod:`kernels.fv`; the z
ghost planes that a single process fills with boundary values hold the
neighbouring ranks' planes instead (at the two ends of the volume they keep the
Dirichlet, wall or periodic ghosts). The kernels run unchanged on these arrays.
What the single-process solver (:func:`microsim.conductivity.solve_potential`)
does in one address space becomes:

* a halo exchange of the boundary planes before every stencil application
  (operator, dissipation, currents; the Jacobi preconditioner needs only the
  labels, exchanged once at set-up);
* a reduction for every dot product: the kernels' per-z-plane float64 partial
  sums are combined so that they are added in the same order as on one
  process (see :meth:`World.reduce`);
* sums over ranks for the inlet and outlet currents.

``solver='jacobi'`` mirrors the single-process Jacobi loop, and its iterates,
iteration count and sigma_eff are bit-identical to it for any number of ranks.
``solver='mg'`` mirrors the single-process multigrid loop with the V-cycle
applied by every rank to its own slab (:func:`slab_multigrid`), followed by the
correction of a global coarse grid of boxes (:mod:`microsim.mpi.coarse`) that
couples the slabs; the iteration count stays close to the single process's
(5 to 7 on 1 to 8 slabs of a 64^3 volume against 5 and 7 on one process).
"""
from __future__ import annotations

import math
import time
from typing import Callable

import numpy as np

from kernels import fv
from kernels import multigrid as mg

from ..conductivity import (STAGNATION_ITERATIONS, Discretisation, SolverInfo, _Accuracy, _compact_indices,
                            _Multigrid, check_solver, fill_compact_labels)
from . import coarse as coarse_module
from .coarse import CoarseGrid
from .world import Slab, World


def slab_discretisation(world: World, slab: Slab, labels: np.ndarray, keep: np.ndarray, lut: np.ndarray,
                        present: np.ndarray, voxel_size_um, axis: int, periodic_sides: bool = False,
                        cell_problem: bool = False) -> Discretisation:
    """The padded label array and conductance tables of this rank's slab.

    ``labels`` and ``keep`` are the slab's planes; ``present`` lists the label
    values present anywhere in the volume, so that every rank numbers the
    conducting phases the same way as :func:`microsim.conductivity.discretise`
    does for the whole volume. The z ghost planes receive the neighbours' planes
    (a collective call: every rank must call this together).
    """
    with world.step():
        to_index, sigma, ins = _compact_indices(np.asarray(present, dtype=np.uint8), lut)
        if ins > 250:
            raise ValueError("more than 250 conducting label values; merge phases with equal conductivity")
        dirichlet = ins + 1
        scale = float(sigma[:ins].max()) if ins else 1.0
        g = fv.conductance_tables(sigma / scale, np.asarray(voxel_size_um, dtype=np.float64),
                                  -1 if cell_problem else dirichlet)
        lab = np.full(tuple(n + 2 for n in labels.shape), ins, dtype=np.uint8)
        fill_compact_labels(lab, labels, keep, to_index, ins)
        periodic = np.array([cell_problem if a == axis else periodic_sides for a in range(3)], dtype=np.bool_)
        for a in (1, 2):  # the side ghosts of the slab's own planes, as discretise() sets them
            lo = [slice(1, -1)] * 3
            hi = [slice(1, -1)] * 3
            lo[a], hi[a] = 0, -1
            if periodic[a]:
                first = [slice(1, -1)] * 3
                last = [slice(1, -1)] * 3
                first[a], last[a] = 1, -2
                lab[tuple(lo)] = lab[tuple(last)]
                lab[tuple(hi)] = lab[tuple(first)]
            elif a == axis:
                lab[tuple(lo)] = dirichlet
                lab[tuple(hi)] = dirichlet
    world.exchange(lab, periodic=bool(periodic[0]))
    if axis == 0 and not cell_problem:
        if slab.first:
            lab[0, 1:-1, 1:-1] = dirichlet
        if slab.last:
            lab[-1, 1:-1, 1:-1] = dirichlet
    return Discretisation(lab, g, scale, axis, periodic, cell_problem)


class SlabOperator:
    """Halo refresh, reductions and terminal currents of one distributed problem."""

    def __init__(self, world: World, slab: Slab, d: Discretisation):
        self.world, self.slab, self.d = world, slab, d
        # The low z face of a slab that is not the first is the high face of the slab
        # below, counted there: telling the dissipation kernel that z is periodic on
        # those ranks makes every face count once.
        self.dissipation_periodic = d.periodic.copy()
        if not slab.first:
            self.dissipation_periodic[0] = True

    def refresh(self, v: np.ndarray, jump: float) -> None:
        """Ghosts of ``v`` from the neighbours (z) and from the periodic sides (y, x)."""
        d = self.d
        self.world.exchange(v, bool(d.periodic[0]), jump if d.axis == 0 else 0.0)
        for a in (1, 2):
            if d.periodic[a]:
                fv.refresh_halo(v, a, jump if a == d.axis else 0.0)

    def total(self, partial: np.ndarray) -> float:
        return self.world.plane_sum(partial, self.slab)

    def local_currents(self, x: np.ndarray) -> tuple[float, float]:
        """This rank's share of the inlet and outlet currents (x's ghosts on the two faces must be fresh).

        Along z only the first and the last rank hold a terminal face; along y or x
        every rank holds its planes' part of both.
        """
        d, slab = self.d, self.slab
        a = d.axis
        n = d.lab.shape[a] - 2
        ga = d.g[a]

        def layer(arr, k):
            return arr[(slice(None),) * a + (k,)]

        i_in = i_out = 0.0
        if a != 0 or slab.first:
            i_in = fv.plane_current(layer(d.lab, 0), layer(d.lab, 1), layer(x, 0), layer(x, 1), ga)
        if a != 0 or slab.last:
            i_out = fv.plane_current(layer(d.lab, n), layer(d.lab, n + 1), layer(x, n), layer(x, n + 1), ga)
        return i_in, i_out

    def currents(self, x: np.ndarray) -> tuple[float, float]:
        """Inlet and outlet currents of the whole volume, the same on every rank."""
        return self.world.reduce(self.slab, (), self.local_currents(x))[1]

    @property
    def currents_need_halo(self) -> bool:
        # The terminal faces of the periodic cell join the last layer to the first: their
        # ghosts are copies (from the neighbour rank along z). Every other terminal ghost
        # holds a fixed boundary value.
        return self.d.cell_problem

    def dissipation(self, x: np.ndarray, partial: np.ndarray) -> float:
        fv.dissipation(self.d.lab, self.d.g, x, self.dissipation_periodic, partial)
        return self.total(partial)


def _mismatch(i_in: float, i_out: float) -> float:
    den = 0.5 * (abs(i_in) + abs(i_out))
    return abs(i_in - i_out) / den if den > 0 else 0.0


def _allocate(op: SlabOperator, *dtypes):
    """Zeroed padded arrays of this rank's slab, allocated where the ranks can agree on a failure."""
    with op.world.step():
        # Allocation is where a rank runs out of memory: fail in a step, not halfway through a collective.
        return [np.zeros(op.d.lab.shape, dtype=dt) for dt in dtypes]


def _boundary_norm(op: SlabOperator, x: np.ndarray, work: np.ndarray, partial: np.ndarray) -> float:
    """||b||, the source terms that only the boundary values create; ``x`` is zeroed, ``work`` overwritten."""
    d, slab = op.d, op.slab
    x[...] = 0.0
    if d.cell_problem:
        op.refresh(x, 1.0)
    elif d.axis != 0:
        x[(slice(None),) * d.axis + (0,)] = 1.0
    elif slab.first:
        x[0] = 1.0
    fv.apply_operator(d.lab, d.g, x, work, -1.0, partial)
    fv.dot(work, work, partial)
    return math.sqrt(op.total(partial))


def _initial_guess(op: SlabOperator, x: np.ndarray) -> None:
    """The linear profile of a uniform block over this rank's part of the axis, ghosts included."""
    d, slab = op.d, op.slab
    axis = d.axis
    n = slab.nz if axis == 0 else d.lab.shape[axis] - 2
    prof = (n - np.arange(n + 2, dtype=np.float64) + 0.5) / n
    if not d.cell_problem:
        prof[0], prof[-1] = 1.0, 0.0
    if axis == 0:
        prof = prof[slab.z0:slab.z1 + 2]
    view = [None, None, None]
    view[axis] = slice(None)
    x[...] = prof[tuple(view)]
    op.refresh(x, 1.0)


def solve_slab_potential(op: SlabOperator, tol: float | None = None, rtol: float | None = None,
                         current_tol: float | None = None, max_iter: int = 20000,
                         progress: Callable[..., None] | None = None, solver: str = "mg"):
    """Preconditioned conjugate gradients for the potential, on every rank together.

    ``solver='jacobi'``: the algorithm and the stopping test (``tol``, ``rtol``,
    ``current_tol``, residual replacement) of
    :func:`microsim.conductivity.solve_potential` with ``solver='jacobi'``; the
    iterates are the single process's, bit for bit.

    ``solver='mg'``: the multigrid loop of the single process with each rank's
    V-cycle restricted to its own slab (see :func:`slab_multigrid`) and, on more
    than one rank, the global coarse-grid correction of
    :mod:`microsim.mpi.coarse`; on one rank it is the single-process solver.

    Returns ``(x, info, power)`` like the single-process solver: this rank's
    padded float64 potential, a :class:`SolverInfo` (the same on every rank) and
    the dissipated power of the whole volume for a unit potential drop.
    ``progress(it, rel, mis[, done])`` is called on every rank.
    """
    check_solver(solver)
    if solver == "mg":
        return _solve_mg(op, tol, rtol, current_tol, max_iter, progress)
    return _solve_jacobi(op, tol, rtol, current_tol, max_iter, progress)


def _solve_jacobi(op, tol, rtol, current_tol, max_iter, progress):
    # Per iteration the ranks meet three times: the halo exchange of the search direction,
    # the reduction of p.Ap, and one reduction that carries r.r, r.z and the currents.
    t0 = time.perf_counter()
    acc = _Accuracy(tol, rtol, current_tol)
    d, slab = op.d, op.slab
    lab, g = d.lab, d.g
    partial = np.zeros(lab.shape[0])
    partial_z = np.zeros(lab.shape[0])
    x, r, p, q = _allocate(op, np.float64, np.float32, np.float32, np.float32)
    bnorm = _boundary_norm(op, x, r, partial)
    _initial_guess(op, x)

    def residual():
        op.refresh(x, 1.0)
        fv.apply_operator(lab, g, x, r, -1.0, partial)
        fv.dot(r, r, partial)
        return math.sqrt(op.total(partial)) / bnorm

    def mismatch():
        op.refresh(x, 1.0)
        return _mismatch(*op.currents(x))

    it, converged = 0, False
    if bnorm == 0.0:
        rel = mis = 0.0
        converged = True
    else:
        power0 = op.dissipation(x, partial)
        rel = residual()
        mis = mismatch()
        acc.start(power0, rel)
        converged = acc.met(rel, mis)
    rtol_seen = acc.rtol if acc.rtol is not None else math.inf
    restart = True
    while not converged and it < max_iter:
        if restart:
            fv.jacobi_precondition(lab, g, r, p, partial)
            rz = op.total(partial)
            restart = False
        op.refresh(p, 0.0)
        fv.apply_operator(lab, g, p, q, 1.0, partial)
        pq = op.total(partial)
        if not pq > 0.0:  # p = 0: nothing left to reduce
            break
        alpha = rz / pq
        fv.cg_update(x, r, p, q, alpha, partial)
        it += 1
        fv.jacobi_precondition(lab, g, r, q, partial_z)  # q is dead once r is updated: it takes z
        if op.currents_need_halo:
            op.refresh(x, 1.0)
        # The currents are computed whether or not they are needed, to travel in this message.
        (rr, rz_new), currents = op.world.reduce(slab, (partial, partial_z), op.local_currents(x))
        rel = math.sqrt(rr) / bnorm
        acc.step(alpha, rz, rz_new, rel)
        mis = _mismatch(*currents) if rel <= rtol_seen else math.nan
        if progress is not None:
            progress(it, rel, mis)
        if acc.met(rel, mis) or (acc.rtol is not None and rel <= 1e-3 * acc.rtol):
            # Replace the recursive residual by the true one: to confirm convergence, or
            # because the float32 recursion has drifted below what x really satisfies.
            rel = residual()
            converged = acc.met(rel, mis)
            restart = True
            acc.restart()
            continue
        fv.xpay(q, p, rz_new / rz if rz > 0 else 0.0)
        rz = rz_new
    return _finish(op, x, "pcg-jacobi", converged, it, rel, acc, rtol, current_tol, progress, partial, t0)


def slab_multigrid(op: SlabOperator) -> _Multigrid:
    """The multigrid V-cycle of the single process, built on this rank's slab alone.

    The slab's ghost planes hold the neighbouring ranks' labels, so the V-cycle
    sees the true conductances of the faces between slabs; it evaluates the
    residual b - A x of the whole problem from the potential, whose ghosts hold
    the neighbours' values, and solves for a correction that is zero beyond the
    slab. On its own, between ranks, this is block Jacobi, each block (the
    operator restricted to a slab) approximately inverted by a full V-cycle on
    that slab: symmetric positive definite and free of communication, but blind
    to errors that are smooth across slab boundaries; :func:`slab_coarse_grid`
    adds what it misses. On one rank it is the single-process preconditioner.
    """
    d = op.d
    periodic = d.periodic.copy()
    if op.world.size > 1:
        periodic[0] = False
    return _Multigrid(Discretisation(d.lab, d.g, d.sigma_scale, d.axis, periodic, d.cell_problem))


def slab_coarse_grid(op: SlabOperator) -> CoarseGrid | None:
    """The global coarse grid of the distributed preconditioner (collective), or None.

    With B the slabs' V-cycles (:func:`slab_multigrid`) and Q = P A_c^-1 P^T the
    exact solve on the coarse grid of boxes (:mod:`microsim.mpi.coarse`), the
    preconditioner is z = B r + Q (r - A B r): the V-cycles, then the coarse
    correction of the residual they leave (Tang et al.'s "A-DEF2" two-level
    method). The loop starts from a potential corrected by Q, so that P^T r = 0;
    from there this equals the symmetric positive definite
    Q + (I - QA) B (I - AQ) in exact arithmetic, at the cost of one coarse solve
    per iteration instead of two, and the coarse solve of every step removes
    whatever P^T r rounding lets back in.

    None on one rank, where the slab's V-cycle is already the single-process
    preconditioner, and when :data:`microsim.mpi.coarse.COARSE_AGGREGATES` is 0
    (block Jacobi between slabs).
    """
    if op.world.size == 1 or coarse_module.COARSE_AGGREGATES <= 0:
        return None
    return CoarseGrid(op.world, op.slab, op.d)


def _solve_mg(op, tol, rtol, current_tol, max_iter, progress):
    # Per iteration the ranks meet four times: halo exchanges of p and of x, the reduction
    # of p.Ap, and one reduction that carries r.z, r.r and the currents; with the coarse
    # grid also a halo exchange of z, and the reduction carries the coarse right-hand side.
    t0 = time.perf_counter()
    acc = _Accuracy(tol, rtol, current_tol)
    d, slab, world = op.d, op.slab, op.world
    partial = np.zeros(d.lab.shape[0])
    with world.step():
        cycle = slab_multigrid(op)
    coarse = slab_coarse_grid(op)
    x, p, z = _allocate(op, np.float64, np.float32, np.float32)
    bnorm = _boundary_norm(op, x, z, partial)
    _initial_guess(op, x)
    if coarse is not None:
        # Start from a residual with no component in the coarse space (P^T r = 0).
        coarse.restrict(x)
        world.reduce(slab, (), (), coarse.segment)
        coarse.solve()
        coarse.prolong(x)
        op.refresh(x, 1.0)

    def cycle_and_currents():
        rz, rr = cycle(x, z)
        if op.currents_need_halo:
            op.refresh(x, 1.0)
        if coarse is None:
            _, (rz, rr, i_in, i_out) = world.reduce(slab, (), (rz, rr) + op.local_currents(x))
        else:
            # z = B r + P A_c^-1 P^T (r - A B r): the slabs' V-cycles, then the coarse
            # correction of the residual they leave.
            world.exchange(z, bool(d.periodic[0]))
            coarse.restrict(x, z)
            z[0] = 0.0  # the slab V-cycle takes its z ghost planes as zero
            z[-1] = 0.0
            _, (rz, rr, i_in, i_out) = world.reduce(slab, (), (rz, rr) + op.local_currents(x), coarse.segment)
            # The coarse term's share of r.z is added once, after the sum over the ranks.
            rz += coarse.solve()
            coarse.prolong(z)
        return rz, rr, _mismatch(i_in, i_out)

    power0 = op.dissipation(x, partial)
    it, converged = 0, False
    if bnorm == 0.0:
        rel = mis = 0.0
        converged = True
    else:
        rz, rr, mis = cycle_and_currents()
        rel = math.sqrt(rr) / bnorm
        acc.start(power0, rel)
        converged = acc.met(rel, mis)
        p[...] = z
    best_rel, best_it = rel, 0
    while not converged and it < max_iter:
        op.refresh(p, 0.0)
        pap = op.dissipation(p, partial)  # p.Ap, each face once
        if not pap > 0.0:
            break
        alpha = rz / pap
        mg.axpy(x, p, alpha)
        op.refresh(x, 1.0)
        it += 1
        rz_new, rr, mis = cycle_and_currents()
        rel = math.sqrt(rr) / bnorm
        acc.step(alpha, rz, rz_new, rel)
        if progress is not None:
            progress(it, rel, mis)
        if acc.met(rel, mis):
            converged = True
            break
        if rel <= 0.5 * best_rel:
            best_rel, best_it = rel, it
        elif it - best_it >= STAGNATION_ITERATIONS:
            break
        fv.xpay(z, p, rz_new / rz if rz > 0 else 0.0)
        rz = rz_new
    del cycle, coarse, p, z
    return _finish(op, x, "pcg-mg", converged, it, rel, acc, rtol, current_tol, progress, partial, t0)


def _finish(op, x, method, converged, it, rel, acc, rtol, current_tol, progress, partial, t0):
    op.refresh(x, 1.0)
    mis = _mismatch(*op.currents(x))
    if progress is not None:
        progress(it, rel, mis, True)
    power = op.dissipation(x, partial)
    info = SolverInfo(method, bool(converged), it, float(rel), float(mis), time.perf_counter() - t0, rtol,
                      current_tol, acc.tol, float(acc.estimate))
    return x, info, power
