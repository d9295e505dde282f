"""Preconditioners of :mod:`microsim.solve.pcg` on one address space, and the stages built from them.

Each preconditioner is a callable ``pre(x, z) -> (r.z, r.r)`` that evaluates
the residual r = b - A x from the float64 potential ``x`` (ghosts holding the
boundary values) and writes z = B r:

* :class:`Jacobi` - the diagonal; the reference solver (iterations growing
  with the edge length, nothing to go wrong);
* :class:`~microsim.solve.multigrid.GeometricMultigrid` - the V-cycle on
  2 x 2 x 2 boxes, float32, a few bytes per voxel, 4 to 20 iterations on the
  volumes of a typical electrode;
* :class:`AlgebraicMultigrid` - classical (Ruge-Stueben) algebraic multigrid
  built from the same face conductances, float64. Its coarse levels follow the
  strong couplings of the operator rather than boxes, so thin tortuous paths,
  one-voxel bottlenecks and conductivity contrasts of 1e8 and more keep their
  coarse representatives; it is the fallback where the box V-cycle stalls, at
  about a hundred times its memory per unknown (see :data:`AMG_BYTES_PER_UNKNOWN`).
"""
from __future__ import annotations

import numpy as np

from kernels import fv
from kernels import sparse

from .memory import available_memory_bytes, format_bytes
from .multigrid import GeometricMultigrid
from .pcg import Stage

#: peak memory of the algebraic multigrid stage per unknown (the matrix, the hierarchy
#: of about 2.7 times its size, the set-up temporaries and the float64 work vectors),
#: measured at about 900 bytes on a 6.5 million-unknown network
AMG_BYTES_PER_UNKNOWN = 1100
#: geometric multigrid iterations before the algebraic stage takes over (at high
#: contrast, where the algebraic stage must confirm the answer anyway, fewer)
GMG_BUDGET = 100
GMG_BUDGET_AT_CONTRAST = 20
#: above this contrast between conducting phases, the float32 V-cycle can plateau with
#: sigma_eff several % off while its error estimate reads 1e-4 (islands of a good conductor
#: in a poor one); its claims are then confirmed by the next stage
TRUSTED_CONTRAST = 100.0


def estimate_trusted(problem) -> bool:
    """Whether the error estimate of a geometric-multigrid or Jacobi solve holds on ``problem``."""
    return problem.contrast <= TRUSTED_CONTRAST


class Jacobi:
    """z = r / diag(A), with r evaluated from x."""

    def __init__(self, d):
        self.d = d
        self.part_rz = np.zeros(d.lab.shape[0])
        self.part_rr = np.zeros(d.lab.shape[0])

    def __call__(self, x, z):
        fv.jacobi_residual(self.d.lab, self.d.g, x, z, self.part_rz, self.part_rr)
        return float(self.part_rz.sum()), float(self.part_rr.sum())


def operator_matrix(d):
    """The operator of ``d`` on its conducting cells as a CSR matrix, with its right-hand side and cell index.

    Returns ``(A, b, index)``: ``A`` (scipy CSR, float64), ``b`` (float64) the
    source terms of the boundary values, ``index`` the padded int32 array that
    numbers the cells (-1 elsewhere). For a problem without a cell problem's
    singular periodic direction.
    """
    import scipy.sparse as sp

    lab, g = d.lab, d.g
    ins = g.shape[1] - 2
    index = np.empty(lab.shape, dtype=np.int32)
    n = int(sparse.number_cells(lab, ins, index))
    indptr = np.zeros(n + 1, dtype=np.int64)
    sparse.row_lengths(lab, g, index, d.periodic, n, indptr)
    nnz = int(indptr[-1])
    indices = np.empty(nnz, dtype=np.int32)
    data = np.empty(nnz, dtype=np.float64)
    b = np.zeros(n)
    ghost = np.zeros(lab.shape, dtype=np.float64)
    ghost[(slice(None),) * d.axis + (0,)] = 1.0
    sparse.fill_rows(lab, g, ghost, index, d.periodic, indptr, indices, data, b)
    del ghost
    A = sp.csr_matrix((data, indices, indptr.astype(np.int32) if nnz < 2**31 else indptr), shape=(n, n))
    A.sort_indices()
    return A, b, index


class AlgebraicMultigrid:
    """One V-cycle of a Ruge-Stueben hierarchy (pyamg) of the operator, as z = B r."""

    def __init__(self, d):
        import pyamg

        self.d = d
        A, _, self.index = operator_matrix(d)
        # Symmetric Gauss-Seidel before and after keeps the cycle symmetric, as CG needs.
        self.ml = pyamg.ruge_stuben_solver(A, presmoother=("gauss_seidel", {"sweep": "symmetric"}),
                                           postsmoother=("gauss_seidel", {"sweep": "symmetric"}))
        self.M = self.ml.aspreconditioner(cycle="V")
        n = A.shape[0]
        del A
        self.r = np.zeros(d.lab.shape, dtype=np.float64)
        self.rc = np.zeros(n)
        self.partial = np.zeros(d.lab.shape[0])

    def __call__(self, x, z):
        fv.apply_operator(self.d.lab, self.d.g, x, self.r, -1.0, self.partial)
        sparse.gather(self.r, self.index, self.rc)
        zc = self.M @ self.rc
        sparse.scatter(zc, self.index, z)
        return float(self.rc @ zc), float(self.rc @ self.rc)


def conducting_cells(d) -> int:
    """Number of interior cells of ``d`` that take part in the solve."""
    ins = d.g.shape[1] - 2
    return int(np.count_nonzero(d.lab[1:-1, 1:-1, 1:-1] < ins))


def amg_unavailable(problem) -> str | None:
    """Why the algebraic stage cannot run on ``problem`` (None if it can)."""
    d = problem.d
    if d.cell_problem:
        return "the periodic cell problem is singular without a fixed potential"
    try:
        import pyamg  # noqa: F401
    except ImportError:
        return "pyamg is not installed (pip install pyamg)"
    need = AMG_BYTES_PER_UNKNOWN * conducting_cells(d)
    avail = available_memory_bytes()
    if avail is not None and need > avail:
        return (f"it needs about {format_bytes(need)} and {format_bytes(avail)} are available; "
                "crop the volume or solve on a machine with more memory")
    return None


def stages(solver: str) -> tuple[Stage, ...]:
    """The stages of a single-process solve: 'mg' (the default) or 'jacobi' (the reference)."""
    if solver == "jacobi":
        return (Stage("jacobi", lambda problem: Jacobi(problem.d), np.float64, restart_after=None,
                      trusted=estimate_trusted),)
    return (Stage("mg", lambda problem: GeometricMultigrid(problem.d), np.float32, budget=GMG_BUDGET,
                  untrusted_budget=GMG_BUDGET_AT_CONTRAST, trusted=estimate_trusted),
            Stage("amg", lambda problem: AlgebraicMultigrid(problem.d), np.float64, restart_after=None,
                  unavailable=amg_unavailable))
