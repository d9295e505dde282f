"""The conjugate-gradient driver, its stopping rule, discretisation, preconditioners and memory model.

Everything that solves for a potential goes through :func:`pcg`, whether the
volume is in one address space (:class:`LocalProblem`) or split into slabs on
MPI ranks (:class:`microsim.mpi.solver.SlabProblem`).
"""
from .accuracy import DEFAULT_MAX_ITER, DEFAULT_TOL, RANGES, Accuracy, check_tolerances
from .discretise import Discretisation, discretise
from .local import LocalProblem
from .memory import MemoryEstimate, MemoryLimitError, check_memory, estimate_memory
from .names import DEFAULT_SOLVER, SOLVERS, check_solver
from .pcg import SolverInfo, Stage, pcg

__all__ = ["Accuracy", "DEFAULT_MAX_ITER", "DEFAULT_SOLVER", "DEFAULT_TOL", "Discretisation", "LocalProblem",
           "MemoryEstimate", "MemoryLimitError", "RANGES", "SOLVERS", "SolverInfo", "Stage", "check_memory",
           "check_solver", "check_tolerances", "discretise", "estimate_memory", "pcg"]
