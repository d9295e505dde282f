"""The problem of :mod:`microsim.solve.pcg` for a whole volume in one address space."""
from __future__ import annotations

import math

import numpy as np

from kernels import fv
from kernels import multigrid as mg

from .discretise import Discretisation


def _layer(arr: np.ndarray, axis: int, index: int) -> np.ndarray:
    return arr[(slice(None),) * axis + (index,)]


def spread_of(currents) -> float:
    """(max - min) / mean of |currents|: 0 when the current is the same through every layer."""
    cur = np.asarray(currents, dtype=np.float64)
    den = float(np.abs(cur).mean()) if cur.size else 0.0
    return float(cur.max() - cur.min()) / den if den > 0 else 0.0


def mismatch_of(i_in: float, i_out: float) -> float:
    """|I_in - I_out| / mean(|I_in|, |I_out|)."""
    den = 0.5 * (abs(i_in) + abs(i_out))
    return abs(i_in - i_out) / den if den > 0 else 0.0


def conductivity_contrast(d: Discretisation) -> float:
    """Largest over smallest conductivity of the conducting phases of ``d`` (1 for a single phase)."""
    ins = d.g.shape[1] - 2
    own = np.array([d.g[0, i, i] for i in range(ins)])
    own = own[own > 0]
    return float(own.max() / own.min()) if own.size else 1.0


class LocalProblem:
    """Vector operations, boundary values and currents of one discretised problem (see :mod:`.pcg`)."""

    def __init__(self, d: Discretisation):
        self.d = d
        self.partial = np.zeros(d.lab.shape[0])
        self.partial_rr = np.zeros(d.lab.shape[0])
        n = d.lab.shape[d.axis] - 2
        self.layers = np.zeros(n + 1)
        self.contrast = conductivity_contrast(d)

    # -- vectors
    def vector(self, dtype) -> np.ndarray:
        return np.zeros(self.d.lab.shape, dtype=dtype)

    def total(self, partial: np.ndarray) -> float:
        return float(partial.sum())

    def refresh(self, v: np.ndarray, jump: float) -> None:
        d = self.d
        for a in range(3):
            if d.periodic[a]:
                fv.refresh_halo(v, a, jump if a == d.axis else 0.0)

    def axpy(self, x, p, alpha: float) -> None:
        mg.axpy(x, p, alpha)

    def xpay(self, z, p, beta: float) -> None:
        fv.xpay(z, p, beta)

    def energy(self, p) -> float:
        """p.A p (each face once; p's ghosts fresh, zero on Dirichlet faces)."""
        fv.dissipation(self.d.lab, self.d.g, p, self.d.periodic, self.partial)
        return self.total(self.partial)

    power = energy

    # -- boundary values
    def boundary_norm(self, x, work) -> float:
        """||b||, the source terms that only the boundary values create; ``x`` is zeroed, ``work`` overwritten."""
        d = self.d
        x[...] = 0.0
        if d.cell_problem:
            fv.refresh_halo(x, d.axis, 1.0)
        else:
            x[(slice(None),) * d.axis + (0,)] = 1.0
        fv.apply_operator(d.lab, d.g, x, work, -1.0, self.partial)
        fv.dot(work, work, self.partial)
        return math.sqrt(self.total(self.partial))

    def initial_guess(self, x) -> None:
        """The linear profile of a uniform block (exact for straight channels), ghosts included."""
        d = self.d
        axis, shape = d.axis, d.lab.shape
        n = shape[axis] - 2
        view = [None, None, None]
        view[axis] = slice(None)
        prof = (n - np.arange(shape[axis], dtype=np.float64) + 0.5) / n
        if not d.cell_problem:
            prof[0], prof[-1] = 1.0, 0.0
        x[...] = prof[tuple(view)]
        self.refresh(x, 1.0)

    # -- currents
    def plane_current(self, x, m: int) -> float:
        d, a = self.d, self.d.axis
        return fv.plane_current(_layer(d.lab, a, m), _layer(d.lab, a, m + 1), _layer(x, a, m), _layer(x, a, m + 1),
                                d.g[a])

    def currents(self, x) -> tuple[float, float]:
        """Inlet and outlet currents (internal units, flowing in +axis)."""
        n = self.d.lab.shape[self.d.axis] - 2
        return self.plane_current(x, 0), self.plane_current(x, n)

    def mismatch(self, x) -> float:
        return mismatch_of(*self.currents(x))

    def mismatch_and_spread(self, x) -> tuple[float, float]:
        """(inlet/outlet mismatch, spread of the inlet, middle and outlet layer currents)."""
        i_in, i_out = self.currents(x)
        mis = mismatch_of(i_in, i_out)
        n = self.d.lab.shape[self.d.axis] - 2
        if n < 2:
            return mis, mis
        return mis, spread_of((i_in, self.plane_current(x, n // 2), i_out))

    def layer_spread(self, x) -> float:
        fv.layer_currents(self.d.lab, self.d.g, x, self.d.axis, self.layers)
        return spread_of(self.layers)

    # -- preconditioning
    def precondition(self, pre, x, z) -> tuple[float, float, float, float]:
        """z = B (b - A x); returns (r.z, r.r, mismatch, spread) (x's ghosts fresh)."""
        rz, rr = pre(x, z)
        self.refresh(z, 0.0)
        return (rz, rr) + self.mismatch_and_spread(x)
