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

The iteration itself is not here: :class:`SlabOperator` is a problem of the
one conjugate-gradient driver, :func:`microsim.solve.pcg.pcg`, which the single
process runs too. ``solver='jacobi'`` gives iterates, iteration counts and
sigma_eff bit-identical to the single process for any number of ranks.
``solver='mg'`` applies the V-cycle of every rank to its own slab (:func:`slab_multigrid`), followed by the
correction of a global coarse grid of boxes (:mod:`microsim.mpi.coarse`) that
couples the slabs; the iteration count stays close to the single process's
(5 to 7 on 1 to 8 slabs of a 64^3 volume against 5 and 7 on one process).
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from kernels import fv
from kernels import multigrid as mg

from ..solve.accuracy import DEFAULT_MAX_ITER, Accuracy, check_tolerances
from ..solve.discretise import Discretisation, padded_labels, set_ghosts
from ..solve.local import conductivity_contrast, mismatch_of, spread_of
from ..solve.multigrid import GeometricMultigrid
from ..solve.names import check_solver
from ..solve.pcg import Stage, pcg
from ..solve.preconditioners import GMG_BUDGET, estimate_trusted
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
        lab, g, scale, periodic, dirichlet = padded_labels(labels, np.asarray(present, dtype=np.uint8), lut, keep,
                                                           voxel_size_um, axis, periodic_sides, cell_problem)
        set_ghosts(lab, periodic, axis, dirichlet, axes=(1, 2))  # the side ghosts of the slab's own planes
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
        self.partial = np.zeros(d.lab.shape[0])
        self.contrast = conductivity_contrast(d)

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

    # -- the problem protocol of microsim.solve.pcg

    def vector(self, dtype) -> np.ndarray:
        """A zeroed padded array of this rank's slab, allocated where the ranks can agree on a failure."""
        with self.world.step():
            # Allocation is where a rank runs out of memory: fail in a step, not halfway through a collective.
            return np.zeros(self.d.lab.shape, dtype=dtype)

    def axpy(self, x, p, alpha: float) -> None:
        mg.axpy(x, p, alpha)

    def xpay(self, z, p, beta: float) -> None:
        fv.xpay(z, p, beta)

    def energy(self, p) -> float:
        return self.dissipation(p, self.partial)

    power = energy

    def mismatch(self, x) -> float:
        return mismatch_of(*self.currents(x))

    def layer_spread(self, x) -> float:
        """Spread of the currents through every layer of faces of the whole volume (collective)."""
        d, slab = self.d, self.slab
        a = d.axis
        out = np.zeros(d.lab.shape[a] - 1)
        fv.layer_currents(d.lab, d.g, x, a, out)
        MPI = self.world.MPI
        if a == 0:
            # A face between two slabs is the last layer of the lower slab and the first of
            # the upper one: the upper slab leaves it out.
            mine = out if slab.first else out[1:]
            hi = np.empty(2)
            self.world.comm.Allreduce(np.array([mine.max(), -mine.min()]), hi, op=MPI.MAX)
            tot = np.empty(2)
            self.world.comm.Allreduce(np.array([np.abs(mine).sum(), float(mine.size)]), tot, op=MPI.SUM)
            mean = tot[0] / tot[1]
            return float(hi[0] + hi[1]) / mean if mean > 0 else 0.0
        total = np.empty_like(out)
        self.world.comm.Allreduce(out, total, op=MPI.SUM)
        return spread_of(total)

    def boundary_norm(self, x, work) -> float:
        return _boundary_norm(self, x, work, self.partial)

    def initial_guess(self, x) -> None:
        _initial_guess(self, x)

    def precondition(self, pre, x, z):
        """z = B (b - A x) on every rank; (r.z, r.r, mismatch, mismatch) of the whole volume."""
        rz, rr, mis = pre(x, z)
        return rz, rr, mis, mis


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
                         current_tol: float | None = None, max_iter: int = DEFAULT_MAX_ITER,
                         progress: Callable[..., None] | None = None, solver: str = "mg"):
    """Preconditioned conjugate gradients for the potential, on every rank together.

    The driver is the single process's (:func:`microsim.solve.pcg.pcg`); only the
    problem (this slab, its halos and reductions) and the preconditioners differ.
    ``solver='jacobi'``: the diagonal, whose iterates are the single process's bit
    for bit on any number of ranks (the same loop, and reductions that add in the
    same order). ``solver='mg'``: each rank's V-cycle restricted to its own slab
    (see :func:`slab_multigrid`) and, on more than one rank, the global coarse-grid
    correction of :mod:`microsim.mpi.coarse`; on one rank it is the
    single-process geometric multigrid. The algebraic-multigrid stage of the single
    process has no distributed form: here the geometric stage is the last one and
    runs, restarting where it stalls, to the iteration limit.

    Returns ``(x, info, power)`` like the single-process solver: this rank's
    padded float64 potential, a :class:`SolverInfo` (the same on every rank) and
    the dissipated power of the whole volume for a unit potential drop.
    ``progress(it, rel, mis[, done])`` is called on every rank.
    """
    check_solver(solver)
    check_tolerances(tol, rtol, current_tol, max_iter)
    acc = Accuracy(tol, rtol, current_tol)
    if solver == "jacobi":
        stage = Stage("jacobi", _SlabJacobi, np.float64, restart_after=None, trusted=estimate_trusted)
    else:
        stage = Stage("mg", _SlabMultigrid, np.float32, budget=GMG_BUDGET, trusted=estimate_trusted)
    return pcg(op, (stage,), acc, max_iter, progress)


class _SlabJacobi:
    """The Jacobi preconditioner on a slab; one reduction carries r.z, r.r and the currents."""

    def __init__(self, op: SlabOperator):
        self.op = op
        self.part_rz = np.zeros(op.d.lab.shape[0])
        self.part_rr = np.zeros(op.d.lab.shape[0])

    def __call__(self, x, z):
        op = self.op
        fv.jacobi_residual(op.d.lab, op.d.g, x, z, self.part_rz, self.part_rr)
        if op.currents_need_halo:
            op.refresh(x, 1.0)
        (rz, rr), currents = op.world.reduce(op.slab, (self.part_rz, self.part_rr), op.local_currents(x))
        return rz, rr, mismatch_of(*currents)


def slab_multigrid(op: SlabOperator) -> GeometricMultigrid:
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
    return GeometricMultigrid(Discretisation(d.lab, d.g, d.sigma_scale, d.axis, periodic, d.cell_problem))


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




class _SlabMultigrid:
    """The slabs' V-cycles and, on more than one rank, the global coarse grid (see :func:`slab_coarse_grid`).

    The first call corrects the potential by the coarse grid, so that the residual
    has no component in the coarse space (P^T r = 0) from then on.
    """

    def __init__(self, op: SlabOperator):
        self.op = op
        with op.world.step():
            self.cycle = slab_multigrid(op)
        self.coarse = slab_coarse_grid(op)
        self.started = False

    def __call__(self, x, z):
        op, coarse, world, slab = self.op, self.coarse, self.op.world, self.op.slab
        if coarse is not None and not self.started:
            coarse.restrict(x)
            world.reduce(slab, (), (), coarse.segment)
            coarse.solve()
            coarse.prolong(x)
            op.refresh(x, 1.0)
        self.started = True
        rz, rr = self.cycle(x, z)
        if op.currents_need_halo:
            op.refresh(x, 1.0)
        if coarse is None:
            _, (rz, rr, i_in, i_out) = world.reduce(slab, (), (rz, rr) + op.local_currents(x))
        else:
            # z = B r + P A_c^-1 P^T (r - A B r): the slabs' V-cycles, then the coarse
            # correction of the residual they leave.
            world.exchange(z, bool(op.d.periodic[0]))
            coarse.restrict(x, z)
            z[0] = 0.0  # the slab V-cycle takes its z ghost planes as zero
            z[-1] = 0.0
            _, (rz, rr, i_in, i_out) = world.reduce(slab, (), (rz, rr) + op.local_currents(x), coarse.segment)
            # The coarse term's share of r.z is added once, after the sum over the ranks.
            rz += coarse.solve()
            coarse.prolong(z)
        return rz, rr, mismatch_of(i_in, i_out)
