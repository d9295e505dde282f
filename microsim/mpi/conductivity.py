"""Effective conductivity of a volume file solved on the ranks of an MPI run, one slab of z planes each."""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from kernels import fv

from ..conductivity import BRUGGEMAN_ALPHA, ConductivityResult, DirectionResult, solved_numbers
from ..solve.accuracy import DEFAULT_MAX_ITER, check_tolerances
from ..solve.names import check_solver
from ..phases import CARRIERS, check_carrier
from ..volume import axis_index, directions, label_counts, lookup
from .fields import FieldsFile
from .percolation import slab_percolation
from .slabs import read_slab
from .solver import SlabOperator, slab_discretisation, solve_slab_potential
from .world import World


@dataclass(frozen=True)
class DistributedResult:
    """What :func:`distributed_conductivity` returns on every rank.

    Attributes
    ----------
    result : ConductivityResult
        The same numbers the single-process :func:`microsim.conductivity` gives.
    ranks : int
    slab_bounds : first z plane of each rank's slab, then nz
    time_s : wall time of the whole run (reading, percolation, solves, output), s
    comm_time_s : per rank, seconds spent in halo exchanges and reductions,
        waiting for slower ranks included
    """

    result: ConductivityResult
    ranks: int
    slab_bounds: tuple[int, ...]
    time_s: float
    comm_time_s: tuple[float, ...]

    def to_dict(self) -> dict:
        return self.result.to_dict() | {"mpi": {"ranks": self.ranks, "slab_bounds": list(self.slab_bounds),
                                                "time_s": self.time_s, "comm_time_s": list(self.comm_time_s)}}


def _conducting_names(phases, carrier: str, present: np.ndarray) -> tuple[str, ...]:
    have = set(int(v) for v in present)
    return tuple(p.name for p in phases.conducting(carrier) if p.label in have)


def distributed_conductivity(path, phases=None, voxel_size_um=None, direction: str | Sequence[str] = "all",
                             carrier: str = "ionic", *, periodic_sides: bool = False, cell_problem: bool = False,
                             tol: float | None = None, rtol: float | None = None,
                             current_tol: float | None = None, max_iter: int = DEFAULT_MAX_ITER, solver: str = "mg",
                             fields=None, crop=None, stride=None, downsample=None, dataset: str | None = None,
                             raw=None, slice_thickness_um=None, world: World | None = None,
                             progress: Callable[..., None] | None = None) -> DistributedResult:
    """Effective conductivity and tortuosity factor of a volume file, solved by all ranks together.

    Call it on every rank of an MPI run (``mpiexec -n N python script.py``).
    Each rank reads only its slab of z planes from the file; the clusters that
    do not percolate are removed across slab boundaries exactly as on one
    process; the potential is solved by Jacobi-preconditioned conjugate
    gradients with halo exchanges. The results equal those of
    :func:`microsim.conductivity` on the whole volume.

    Parameters
    ----------
    path : str or Path
        Labelled volume in any format :func:`microsim.io.read_volume` reads.
    phases, voxel_size_um, crop, stride, downsample, dataset, raw, slice_thickness_um
        As for :func:`microsim.io.read_volume`; the selection is cut into slabs after it is made.
    direction, carrier, periodic_sides, cell_problem, tol, rtol, current_tol, max_iter
        As for :func:`microsim.conductivity`; the stopping test is the same.
    solver : 'mg' or 'jacobi'
        'jacobi': the iterates are those of ``conductivity(..., solver='jacobi')``,
        bit for bit, on any number of ranks. 'mg' (default): conjugate gradients
        preconditioned by a multigrid V-cycle on each rank's slab and a global
        coarse grid that couples the slabs (see
        :func:`microsim.mpi.solver.slab_coarse_grid`); on one rank it is the
        single-process default solver, on more its iteration count stays close
        to that solver's.
    fields : str or Path, optional
        HDF5 file for the potential (V) and the current density (A/m^2) of every
        solve, each rank writing its own planes (see :mod:`microsim.mpi.fields`).
    world : World, optional
        The ranks (default: all of ``MPI.COMM_WORLD``).
    progress : callable(carrier, direction, iteration, rel_residual, mismatch, done), optional
        Called on every rank; print from rank 0 only.

    Returns
    -------
    DistributedResult
        The same on every rank.

    Raises
    ------
    RanksFailed
        On every rank, when any rank failed (bad input, unreadable file, ...);
        the message names the problem and the rank.

    Example (every rank of ``mpiexec -n 4``)::

        from microsim.mpi import World, distributed_conductivity
        world = World()
        run = distributed_conductivity("electrode.h5", "phases.toml", 0.4, "all", world=world)
        if world.rank == 0:
            print(run.result.get("ionic", "z").tau)
    """
    world = world or World()
    t_start = time.perf_counter()
    comm_start = world.comm_time_s
    carriers = CARRIERS if carrier == "both" else None
    with world.step():
        carriers = carriers or (check_carrier(carrier),)
        dirs = directions(direction)
        check_tolerances(tol, rtol, current_tol, max_iter)  # bad options fail before any work
        check_solver(solver)
        volume, slab, shape = read_slab(path, phases, voxel_size_um, rank=world.rank, size=world.size, crop=crop,
                                        stride=stride, downsample=downsample, dataset=dataset, raw=raw,
                                        slice_thickness_um=slice_thickness_um)
        labels = volume.labels
        local_counts = label_counts(labels)
    counts = world.counts(local_counts)
    present = np.flatnonzero(counts)
    periodic_sides = periodic_sides or cell_problem
    size = tuple(n * d for n, d in zip(shape, volume.voxel_size_um))
    n_total = int(np.prod(shape))
    results = []
    with contextlib.ExitStack() as stack:
        out = None
        if fields is not None:
            out = stack.enter_context(FieldsFile(world, fields, shape, volume.voxel_size_um))
        for c in carriers:
            lut = volume.conductivity_lut(c)
            n_cond = int(counts[lut > 0].sum())
            eps = n_cond / n_total
            sigma_ref = float((counts * lut).sum() / n_cond) if n_cond else 0.0
            names = _conducting_names(volume.phases, c, present)
            for dname in dirs:
                cb = None if progress is None else (
                    lambda it, rel, mis, done=False, c=c, dn=dname: progress(c, dn, it, rel, mis, done))
                res = _solve_direction(world, slab, labels, lut, present, volume.voxel_size_um, size, c, dname,
                                       names, eps, sigma_ref, periodic_sides, cell_problem, tol, rtol, current_tol,
                                       max_iter, solver, out, cb)
                results.append(res)
    comm = tuple(world.comm.allgather(world.comm_time_s - comm_start))
    result = ConductivityResult(tuple(results), tuple(int(n) for n in shape), volume.voxel_size_um)
    elapsed = world.comm.bcast(time.perf_counter() - t_start, root=0)
    return DistributedResult(result, world.size, slab.bounds, elapsed, comm)


def _solve_direction(world, slab, labels, lut, present, voxel_size_um, size, carrier, direction, names, eps,
                     sigma_ref, periodic_sides, cell_problem, tol, rtol, current_tol, max_iter, solver, out,
                     progress):
    axis = axis_index(direction)
    conducting = lookup(lut > 0, labels)
    perc = slab_percolation(world, slab, conducting, direction, periodic_sides=periodic_sides,
                            periodic_direction=cell_problem)
    del conducting
    eps_perc = perc.percolating_volume_fraction
    common = dict(carrier=carrier, direction=direction, conducting_phases=names, eps=eps, eps_percolating=eps_perc,
                  sigma_ref_S_per_m=sigma_ref, tau_bruggeman=eps ** -BRUGGEMAN_ALPHA if eps > 0 else math.inf,
                  cell_problem=cell_problem, periodic_sides=periodic_sides)
    group = f"{carrier}/{direction}"
    if not perc.percolates:
        what = " + ".join(names) if names else f"no phase conducts {carrier} charge"
        msg = (f"{what} does not connect the two faces normal to {direction}: no {carrier} current flows "
               f"(sigma_eff = 0, tau = inf)" if names else f"{what}: sigma_eff = 0, tau = inf")
        if out is not None:
            out.note(group, {"message": msg, "percolates": False})
        return DirectionResult(sigma_eff_S_per_m=0.0, tau=math.inf, tau_percolating=math.inf, macmullin=math.inf,
                               current_in_A=0.0, current_out_A=0.0, percolates=False, message=msg, solver=None,
                               **common)
    keep = perc.percolating
    kept = world.counts(label_counts(labels[keep]))
    n_perc = int(kept.sum())
    sigma_ref_perc = float((kept * lut).sum() / n_perc)
    d = slab_discretisation(world, slab, labels, keep, lut, present, voxel_size_um, axis, periodic_sides,
                            cell_problem)
    del keep, perc
    op = SlabOperator(world, slab, d)
    x, info, power = solve_slab_potential(op, tol=tol, rtol=rtol, current_tol=current_tol, max_iter=max_iter,
                                          progress=progress, solver=solver)
    numbers = solved_numbers(info, power, d.sigma_scale, size, axis, eps * sigma_ref, eps_perc * sigma_ref_perc,
                             sigma_ref)
    i_in, i_out = op.currents(x)
    to_amp = d.sigma_scale * 1e-6
    result = DirectionResult(**numbers, current_in_A=i_in * to_amp, current_out_A=i_out * to_amp, percolates=True,
                             solver=info, **common)
    if out is not None:
        _write_fields(world, slab, out, group, d, x, voxel_size_um, result)
    return result


def _write_fields(world, slab, out, group, d, x, voxel_size_um, result):
    with world.step():
        inner = (slice(1, -1),) * 3
        conducting = d.lab[inner] < (d.g.shape[1] - 2)
        potential = np.where(conducting, x[inner], np.nan).astype(np.float32)
        del conducting
    attrs = {"sigma_eff_S_per_m": result.sigma_eff_S_per_m, "tau": result.tau, "converged": result.converged,
             "message": result.message, "potential_unit": "V for 1 V applied", "current_density_unit": "A/m^2"}
    out.write(group, "potential_V", potential, slab, attrs)
    del potential
    with world.step():
        spacing = np.asarray(voxel_size_um, dtype=np.float64)
        face_area = np.array([spacing[1] * spacing[2], spacing[0] * spacing[2], spacing[0] * spacing[1]])
        jd = np.zeros((3,) + tuple(n - 2 for n in d.lab.shape), dtype=np.float32)
        fv.current_density(d.lab, d.g, x, face_area, jd)
        jd *= d.sigma_scale * 1e6
    out.write(group, "current_density_A_per_m2", jd, slab)
