"""The one preconditioned conjugate-gradient driver of every conductivity solve.

The driver knows nothing of where the vectors live: a *problem* (the whole
volume in one address space, :class:`microsim.solve.local.LocalProblem`, or one
rank's slab, :class:`microsim.mpi.solver.SlabProblem`) supplies the vector
operations, halo refreshes, global reductions, the dissipation and the terminal
currents, and applies a preconditioner. The driver owns what must be the same
everywhere: the iteration, the restart policy, the stopping rule
(:class:`microsim.solve.accuracy.Accuracy`), the progress calls and the
:class:`SolverInfo` of the result.

A solve runs through *stages*, each a preconditioner with its own precision: the
fast geometric multigrid in float32 first and, where it stalls or runs past its
budget, algebraic multigrid in float64, continuing from the potential reached.
Only the last stage runs to the iteration limit; a stage that cannot be built
(not enough memory, a problem it does not cover) is left out before the solve
starts, with its reason recorded.

Every vector operation is written for real numbers today; the protocol keeps
the inner products behind ``problem``, so a complex-symmetric (COCG) variant
needs only other reductions, not another loop.

Protocol of a problem (all reductions global, the same on every rank)::

    vector(dtype) -> zeroed padded array
    boundary_norm(x, work) -> ||b||            (x zeroed, work overwritten)
    initial_guess(x)
    refresh(v, jump)                            halo / periodic ghosts
    energy(p) -> p.A p        power(x) -> dissipation of x
    axpy(x, p, alpha)         xpay(z, p, beta)  p = z + beta p
    precondition(pre, x, z) -> (r.z, r.r, inlet/outlet mismatch, spread of three layer currents)
    layer_spread(x) -> spread of the currents through every layer of faces
    mismatch(x) -> inlet/outlet mismatch
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .accuracy import Accuracy


@dataclass(frozen=True)
class Stage:
    """One preconditioner of a solve.

    build : callable(problem) -> preconditioner, called only when the stage is reached
    unavailable : callable(problem) -> None, or the reason why the stage cannot run on
        this problem (checked before the solve starts, so that the last stage that can
        run is known: it alone runs to the iteration limit)
    trusted : callable(problem) -> whether the stage's error estimate holds on this
        problem. Where it may not (the plateaus of a float32 V-cycle at high contrast),
        a claim of convergence hands over to the next stage, which must confirm it;
        in the last stage the claim needs the strict test: the current through every
        layer of faces the same to within ``tol``
    dtype : precision of the search direction and preconditioned residual
    restart_after : restart conjugate gradients when the residual has not halved for
        this many iterations (None: never)
    max_restarts : restarts without progress before a stage that is not the last hands
        over to the next one
    budget : iterations after which a stage that is not the last hands over; from
        ``look_ahead`` iterations on it also hands over as soon as the rate of its energy
        decrements says it would need more than that in all; ``untrusted_budget``
        replaces it where the stage's estimate is not trusted (see ``trusted``)
    """

    name: str
    build: Callable
    dtype: type = np.float64
    restart_after: int | None = 10
    max_restarts: int = 3
    budget: int | None = None
    look_ahead: int = 30
    untrusted_budget: int | None = None
    unavailable: Callable = lambda problem: None
    trusted: Callable = lambda problem: True


@dataclass(frozen=True)
class SolverInfo:
    """How a solve went.

    ``relative_residual`` is ||b - A x|| / ||b|| at the final potential;
    ``current_mismatch`` is |I_in - I_out| / mean(|I_in|, |I_out|);
    ``error_estimate`` is the estimated relative error of sigma_eff;
    ``tol``, ``rtol``, ``current_tol`` the criteria that applied (None = not used);
    ``stopped`` why the iteration ended ('converged', 'iteration limit',
    'no search direction left'); ``stages`` the (preconditioner, iterations) of
    each stage that ran; ``notes`` the stages passed over, with their reasons.
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
    stopped: str = "converged"
    stages: tuple[tuple[str, int], ...] = ()
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["stages"] = [list(s) for s in self.stages]
        d["notes"] = list(self.notes)
        return d


@dataclass
class _Run:
    it: int = 0
    rel: float = math.inf
    mis: float = math.nan
    converged: bool = False
    stopped: str = "iteration limit"
    stages: list = field(default_factory=list)
    notes: list = field(default_factory=list)


def pcg(problem, stages, acc: Accuracy, max_iter: int, progress: Callable[..., None] | None = None,
        monitor: Callable[[int, float, float], None] | None = None):
    """Solve for the potential; return ``(x, info, power)``.

    ``x`` is the padded float64 potential (ghosts fresh), ``power`` its dissipation
    for a unit potential drop in the units of the conductances. ``progress(it, rel,
    mis[, done])`` is called after every iteration and once at the end;
    ``monitor(it, estimate, power)`` (for validation) after every iteration.
    """
    t0 = time.perf_counter()
    run = _Run()
    usable = []
    for stage in stages:
        reason = stage.unavailable(problem)
        if reason:
            run.notes.append(f"{stage.name} not used: {reason}")
        else:
            usable.append(stage)
    # The first preconditioner is built before the potential exists, so that its set-up
    # temporaries never meet the solve's vectors (the peak memory stays the solve's).
    pre = usable[0].build(problem) if usable else None
    x = problem.vector(np.float64)
    work = problem.vector(np.float32)
    bnorm = problem.boundary_norm(x, work)
    del work
    problem.initial_guess(x)
    if bnorm == 0.0:
        run.rel, run.mis, run.converged, run.stopped = 0.0, 0.0, True, "converged"
    else:
        for si, stage in enumerate(usable):
            start = run.it
            if pre is None:
                pre = stage.build(problem)
            _stage(problem, pre, stage, acc, x, bnorm, max_iter, si == len(usable) - 1, run, progress, monitor,
                   first=si == 0)
            pre = None
            run.stages.append((stage.name, run.it - start))
            if run.converged or run.it >= max_iter or run.stopped == "no search direction left":
                break
    pre = None
    problem.refresh(x, 1.0)
    mis = problem.mismatch(x)
    if progress is not None:
        progress(run.it, run.rel, mis, True)
    power = problem.power(x)
    if run.it >= max_iter and not run.converged:
        run.stopped = "iteration limit"
    method = "pcg-" + "+".join(name for name, _ in run.stages) if run.stages else "none"
    info = SolverInfo(method, bool(run.converged), run.it, float(run.rel), float(mis), time.perf_counter() - t0,
                      acc.rtol, acc.current_tol, acc.tol, float(acc.estimate), run.stopped, tuple(run.stages),
                      tuple(run.notes))
    return x, info, power


def _stage(problem, pre, stage: Stage, acc: Accuracy, x, bnorm, max_iter, last, run: _Run, progress, monitor,
           first: bool):
    """Conjugate gradients with one preconditioner, from the current ``x``; updates ``run``."""
    z = problem.vector(stage.dtype)
    p = problem.vector(stage.dtype)
    rz, rr, mis, spread = problem.precondition(pre, x, z)
    run.rel, run.mis = math.sqrt(rr) / bnorm, mis
    if not first:
        acc.new_preconditioner()
    acc.start(problem.power(x), run.rel)
    if _claim(problem, acc, x, run, spread, stage, last):
        return
    p[...] = z
    best_rel, best_it, restarts, begun = run.rel, run.it, 0, run.it
    budget = stage.budget
    if stage.untrusted_budget is not None and not stage.trusted(problem):
        budget = stage.untrusted_budget
    while run.it < max_iter:
        problem.refresh(p, 0.0)
        pap = problem.energy(p)
        if not pap > 0.0:
            run.stopped = "no search direction left"
            return
        alpha = rz / pap
        problem.axpy(x, p, alpha)
        problem.refresh(x, 1.0)
        run.it += 1
        rz_new, rr, mis, spread = problem.precondition(pre, x, z)
        run.rel, run.mis = math.sqrt(rr) / bnorm, mis
        acc.step(alpha, rz, rz_new, run.rel)
        if progress is not None:
            progress(run.it, run.rel, mis)
        if monitor is not None:
            monitor(run.it, acc.estimate, acc.power)
        if _claim(problem, acc, x, run, spread, stage, last):
            return
        beta = rz_new / rz if rz > 0 else 0.0
        if run.rel <= 0.5 * best_rel:
            best_rel, best_it, restarts = run.rel, run.it, 0
        elif stage.restart_after is not None and run.it - best_it >= stage.restart_after:
            # Float32 search directions lose conjugacy at high contrast and the residual
            # stalls; x is float64 and the residual is evaluated from it, so a restart
            # from the preconditioned residual resumes the descent.
            if not last and restarts >= stage.max_restarts:
                run.stopped = "stalled"
                return
            restarts += 1
            best_it = run.it
            beta = 0.0
            acc.restart()
        done = run.it - begun
        if not last and budget is not None and (
                done >= budget or (done >= stage.look_ahead and done + acc.iterations_to_go() > budget)):
            run.stopped = "budget"
            return
        problem.xpay(z, p, beta)
        rz = rz_new
    run.stopped = "iteration limit"


def _claim(problem, acc: Accuracy, x, run: _Run, spread: float, stage: Stage, last: bool) -> bool:
    """The stopping test. True when the stage ends: converged, or a claim handed over for confirmation.

    A claim of convergence is checked on the currents through every layer of faces.
    """
    if not acc.met(run.rel, run.mis, spread):
        return False
    layers = problem.layer_spread(x)
    if stage.trusted(problem):
        ok = acc.current_ok(layers)
    elif not last:
        run.stopped = "to be confirmed"
        return True
    else:
        ok = layers <= acc.tol
    if ok:
        run.converged, run.stopped = True, "converged"
    return ok
