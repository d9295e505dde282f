"""The stopping rule of every conjugate-gradient solve, and its error estimate of sigma_eff.

sigma_eff comes from the dissipation P(x), and P(x) = P* + ||x - x*||_A^2 for
every x that carries the boundary values, so the relative error of sigma_eff
is ||e||_A^2 / P*, never negative. Two estimates of it are kept and the larger
one is used:

* the residual bound ||e||_A^2 <= r.z / lambda_min(BA) (B the preconditioner),
  with lambda_min replaced by the smallest Ritz value of the Lanczos matrix that
  the conjugate-gradient coefficients define;
* the sum of the energy decrements still to come: step k lowers ||e||_A^2 by
  t_k = alpha_k r_k.z_k (Hestenes and Stiefel), extrapolated as a geometric
  series with the slowest of the last three ratios t_k / t_(k-1).

Until four steps are known the estimate is infinite, unless the residual
vanishes. Both estimates read the convergence history, and a plateau fools
them: at high contrast, where islands of a good conductor float in a poor one,
the energy steps can stall for ten iterations with sigma_eff still several %
off. The currents through the faces normal to the transport direction, equal in
every layer for the exact solution, then still differ by tens of %. So the error
estimate is never the only test: a solve counts as converged only when

1. the estimated relative error of sigma_eff is at most ``tol`` (always; the
   default is :data:`DEFAULT_TOL`; ``rtol`` and ``current_tol`` add criteria,
   they never replace this one, so no choice of options can turn a residual
   into an unchecked answer), and
2. the current is conserved: the spread of the currents through the inlet,
   middle and outlet layers is checked in every iteration, and through every
   layer of faces once the other criteria hold, with spread^2 <= CURRENT_GUARD * tol
   (the current errs linearly in the error of the potential, sigma_eff from the
   dissipation quadratically), and
3. ``rtol`` (relative residual) and ``current_tol`` (inlet/outlet mismatch) hold
   when given.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.linalg import eigvalsh_tridiagonal

#: default bound on the estimated relative error of sigma_eff (and of tau): half of
#: 0.1 %, so that tau is within 0.1 % of the converged value even where the estimate
#: falls short of the true error
DEFAULT_TOL = 5e-4
#: the squared spread of the layer currents must be at most CURRENT_GUARD * tol
CURRENT_GUARD = 20.0
#: a relative residual this small counts as an exact solution (the initial guess of a
#: uniform block or of straight channels); its error in sigma_eff is below 1e-12
EXACT_RESIDUAL = 1e-12
#: the accepted ranges of the criteria: a looser ``tol`` would promise less than the
#: 0.1 % every result is held to; a looser ``rtol`` or ``current_tol`` would say nothing
RANGES = {"tol": (1e-12, 1e-3), "rtol": (1e-15, 1e-2), "current_tol": (1e-12, 0.1)}
#: the default iteration limit of every solver
DEFAULT_MAX_ITER = 20000


def check_tolerances(tol=None, rtol=None, current_tol=None, max_iter: int = DEFAULT_MAX_ITER) -> None:
    """Raise ValueError, naming the accepted range, for a criterion outside :data:`RANGES`."""
    for name, value in (("tol", tol), ("rtol", rtol), ("current_tol", current_tol)):
        if value is None:
            continue
        lo, hi = RANGES[name]
        try:
            ok = lo <= float(value) <= hi
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ValueError(f"{name} = {value!r} is outside [{lo:g}, {hi:g}]; it is a relative error "
                             f"(default tol {DEFAULT_TOL:g}: tau within 0.1 %)")
    if not (isinstance(max_iter, (int, np.integer)) and not isinstance(max_iter, bool) and max_iter >= 1):
        raise ValueError(f"max_iter = {max_iter!r} must be a whole number of at least 1")


class Accuracy:
    """The stopping test of one solve and the running error estimate of sigma_eff (see the module text)."""

    def __init__(self, tol=None, rtol=None, current_tol=None):
        check_tolerances(tol, rtol, current_tol)
        self.tol = DEFAULT_TOL if tol is None else float(tol)
        self.rtol = None if rtol is None else float(rtol)
        self.current_tol = None if current_tol is None else float(current_tol)
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

    def new_preconditioner(self) -> None:
        """A new Krylov sequence with another preconditioner: nothing of the old spectrum holds."""
        self.restart()
        self.steps.clear()
        self.ritz_min = math.inf
        self.estimate = math.inf

    def _ritz(self) -> float:
        a = np.asarray(self.alphas)
        b = np.asarray(self.betas[:len(a) - 1])
        if not (np.all(a > 0) and np.all(b >= 0) and np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
            return math.inf  # rounding has broken the Lanczos relation: nothing to learn from it
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
        elif len(s) == 4 and min(s[:3]) > 0 and self.power > 0 and self.ritz_min > 0 and rz_new > 0:
            q = max(s[3] / s[2], s[2] / s[1], s[1] / s[0])
            tail = s[3] * q / (1 - q) if q < 1 else math.inf
            self.estimate = max(tail, rz_new / self.ritz_min) / self.power
        else:
            self.estimate = math.inf

    def iterations_to_go(self) -> float:
        """Iterations still needed at the present rate of the energy decrements (NaN if unknown)."""
        s = self.steps
        if not (self.estimate < math.inf and len(s) == 4 and min(s) > 0):
            return math.nan
        if self.estimate <= self.tol:
            return 0.0
        q = max(s[3] / s[2], s[2] / s[1], s[1] / s[0])
        return math.log(self.tol / self.estimate) / math.log(q) if q < 1 else math.inf

    def current_ok(self, spread: float) -> bool:
        """Whether a spread of layer currents is small enough to call the current conserved."""
        return spread * spread <= CURRENT_GUARD * self.tol

    def met(self, rel: float, mismatch: float, spread: float | None = None) -> bool:
        """``spread``: of the inlet, middle and outlet layer currents (the mismatch if not given)."""
        spread = mismatch if spread is None else spread
        return (self.estimate <= self.tol and self.current_ok(spread)
                and (self.rtol is None or rel <= self.rtol)
                and (self.current_tol is None or mismatch <= self.current_tol))
