"""Bruggeman's relation against computed tortuosity factors.

Cell models use Bruggeman's tau = eps^-alpha with alpha = 0.5. With the
TauFactor definition tau = eps * sigma_phase / sigma_eff a computed tau can be
set beside it directly: their ratio says how far the relation is off, and the
exponent that would reproduce the computed value is alpha_fit = -ln(tau) / ln(eps).
Across several volumes (a parameter sweep, or sub-volumes of one sample) a
least-squares fit of tau = A * eps^-alpha, done as a straight line
ln(tau) = ln(A) - alpha ln(eps), gives A and alpha with confidence intervals
from Student's t distribution.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..atomic import atomic_path
from ..conductivity import BRUGGEMAN_ALPHA, ConductivityResult, DirectionResult


class ResultsFileError(ValueError):
    """A results file cannot be used; the message names the file and the fix."""


def _number(value) -> float:
    # Results files write inf and NaN as strings (strict JSON has no such numbers).
    if isinstance(value, str):
        return float(value)
    return math.nan if value is None else float(value)


@dataclass(frozen=True)
class TauPoint:
    """One computed (eps, tau) pair: a carrier along a direction of one volume."""

    source: str
    carrier: str
    direction: str
    conducting_phases: tuple
    eps: float
    tau: float

    def to_dict(self) -> dict:
        return dict(self.__dict__) | {"conducting_phases": list(self.conducting_phases)}


def tau_points(results, source: str = "", percolating: bool = False) -> tuple[TauPoint, ...]:
    """(eps, tau) points of conductivity results.

    Parameters
    ----------
    results : ConductivityResult, DirectionResult, dict or list of them
        Results of :func:`microsim.conductivity`, or their ``to_dict()`` form as
        written by ``microsim conductivity --out``.
    source : str
        Name of the volume the results belong to.
    percolating : bool
        Use the percolating part only (eps_percolating, tau_percolating) instead of
        all conducting voxels (eps, tau).
    """
    if isinstance(results, ConductivityResult):
        results = list(results)
    elif isinstance(results, (DirectionResult, Mapping)):
        results = [results]
    out = []
    for r in results:
        if isinstance(r, Mapping) and "results" in r:
            out.extend(tau_points(r["results"], source or str(r.get("volume", "")), percolating))
            continue
        d = r.to_dict() if isinstance(r, DirectionResult) else r
        try:
            eps = _number(d["eps_percolating" if percolating else "eps"])
            tau = _number(d["tau_percolating" if percolating else "tau"])
            point = TauPoint(source, str(d["carrier"]), str(d["direction"]),
                             tuple(d.get("conducting_phases", ())), eps, tau)
        except (KeyError, TypeError, ValueError) as exc:
            raise ResultsFileError(f"{source or 'result'}: not a conductivity result ({exc!r} missing or "
                                   "malformed); give files written by `microsim conductivity --out`") from None
        out.append(point)
    return tuple(out)


#: what :func:`read_tau_points` reads, for its error messages
READABLE = ("JSON written by `microsim conductivity --out`, a run folder or its result.json (`microsim run`), "
            "a sweep folder or its sweep.json (`microsim sweep`)")


def _load_json(path: Path):
    from ..safety import check_input
    check_input(path, "results")
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ResultsFileError(f"{path}: results file not found; check the path") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ResultsFileError(f"{path}: not a JSON file ({exc}); give {READABLE}") from None


def read_tau_points(path: str | Path, percolating: bool = False) -> tuple[TauPoint, ...]:
    """The finite-volume (eps, tau) points of what the other commands write.

    ``path`` may be a JSON file of ``microsim conductivity --out`` (a ``results``
    list), a run folder of ``microsim run`` or its ``result.json`` (a ``transport``
    list), or a sweep folder of ``microsim sweep`` or its ``sweep.json`` (the
    result.json of every finished case, each point named by its case).
    """
    path = Path(path)
    if path.is_dir():
        for name in ("result.json", "sweep.json"):
            if (path / name).is_file():
                return read_tau_points(path / name, percolating)
        raise ResultsFileError(f"{path}: a folder without result.json or sweep.json; give {READABLE}")
    doc = _load_json(path)
    if isinstance(doc, Mapping) and isinstance(doc.get("results"), list):
        return tau_points(doc["results"], str(path), percolating)
    if isinstance(doc, Mapping) and isinstance(doc.get("transport"), list):
        # a run folder is named by its folder (the table shows the last part of a source)
        return tau_points(doc["transport"], str(path.parent if path.name == "result.json" else path), percolating)
    if isinstance(doc, Mapping) and doc.get("schema") == "microsim-sweep":
        points = []
        for case in doc.get("cases", []):
            result = path.parent / "cases" / str(case.get("id", "")) / "result.json"
            if case.get("status") == "done" and result.is_file():
                case_doc = _load_json(result)
                points.extend(tau_points(case_doc.get("transport", []), str(case.get("name") or case["id"]),
                                         percolating))
        if not points:
            raise ResultsFileError(f"{path}: the sweep has no finished case with finite-volume results yet")
        return tuple(points)
    raise ResultsFileError(f"{path}: has no 'results' list (nor the 'transport' list of a run); give {READABLE}")


@dataclass(frozen=True)
class BruggemanRow(TauPoint):
    """A computed tau (a :class:`TauPoint`) beside Bruggeman's eps^-alpha.

    ``ratio`` = tau / tau_bruggeman (> 1: Bruggeman underestimates the tortuosity);
    ``alpha_fit`` = -ln(tau) / ln(eps), the exponent that reproduces tau (NaN for
    eps = 1 or no conduction, inf when nothing percolates).
    """

    alpha: float
    tau_bruggeman: float
    ratio: float
    alpha_fit: float


def tau_bruggeman(eps: float, alpha: float = BRUGGEMAN_ALPHA) -> float:
    """Bruggeman's tortuosity factor eps^-alpha (inf for eps = 0).

    >>> tau_bruggeman(0.25)
    2.0
    """
    return float(eps) ** -alpha if eps > 0 else math.inf


def bruggeman_exponent(eps: float, tau: float) -> float:
    """The exponent alpha with tau = eps^-alpha: -ln(tau) / ln(eps).

    >>> round(bruggeman_exponent(0.25, 2.0), 12)
    0.5
    """
    if not (0 < eps < 1) or math.isnan(tau) or tau <= 0:
        return math.nan
    if math.isinf(tau):
        return math.inf
    return -math.log(tau) / math.log(eps)


exponent = bruggeman_exponent  # the short name the pipeline imports


def compare_bruggeman(points: Iterable[TauPoint], alpha: float = BRUGGEMAN_ALPHA) -> tuple[BruggemanRow, ...]:
    """Each computed tau beside tau_Bruggeman = eps^-alpha, their ratio and the fitted exponent."""
    rows = []
    for p in points:
        tb = tau_bruggeman(p.eps, alpha)
        ratio = p.tau / tb if math.isfinite(tb) and tb > 0 else math.nan
        rows.append(BruggemanRow(p.source, p.carrier, p.direction, p.conducting_phases, p.eps, p.tau, float(alpha),
                                 tb, ratio, bruggeman_exponent(p.eps, p.tau)))
    return tuple(rows)


@dataclass(frozen=True)
class BruggemanFit:
    """Least-squares fit of tau = A * eps^-alpha (ln tau = ln A - alpha ln eps).

    Attributes
    ----------
    prefactor, alpha : float
        A and alpha (A fixed to 1 when ``prefactor_fixed``).
    prefactor_ci, alpha_ci : (low, high)
        Confidence intervals at ``confidence`` (NaN when there are no degrees of freedom).
    n_points, n_excluded : int
        Points used; points left out (tau not finite, eps outside (0, 1)).
    dof : int
        Degrees of freedom of the residual.
    r_squared : float
        Coefficient of determination of the straight line in log space (NaN if
        all ln(eps) are equal).
    residual_std : float
        Standard deviation of the ln(tau) residuals.
    """

    prefactor: float
    alpha: float
    prefactor_ci: tuple
    alpha_ci: tuple
    confidence: float
    n_points: int
    n_excluded: int
    dof: int
    r_squared: float
    residual_std: float
    prefactor_fixed: bool

    def predict(self, eps):
        """tau = A * eps^-alpha."""
        return self.prefactor * np.asarray(eps, dtype=np.float64) ** -self.alpha

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["prefactor_ci"] = list(self.prefactor_ci)
        d["alpha_ci"] = list(self.alpha_ci)
        return d


def fit_bruggeman(eps: Sequence[float], tau: Sequence[float], confidence: float = 0.95,
                  fix_prefactor: bool = False) -> BruggemanFit:
    """Fit tau = A * eps^-alpha to (eps, tau) points by least squares on ln(tau).

    Parameters
    ----------
    eps, tau : sequences of float
        Volume fractions in (0, 1) and tortuosity factors; other points (eps = 1,
        tau = inf for a phase that does not percolate, NaN) are left out and counted.
    confidence : float
        Level of the confidence intervals, e.g. 0.95.
    fix_prefactor : bool
        Fit alpha alone with A = 1 (Bruggeman's form).

    Examples
    --------
    >>> eps = np.array([0.3, 0.4, 0.5, 0.6])
    >>> f = fit_bruggeman(eps, 1.2 * eps ** -0.8)
    >>> round(f.prefactor, 12), round(f.alpha, 12)
    (1.2, 0.8)
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence {confidence} must be between 0 and 1, e.g. 0.95")
    from scipy import stats

    e = np.asarray(eps, dtype=np.float64).ravel()
    t = np.asarray(tau, dtype=np.float64).ravel()
    if e.shape != t.shape:
        raise ValueError(f"eps has {e.size} values and tau {t.size}; give one tau per eps")
    ok = (e > 0) & (e < 1) & np.isfinite(t) & (t > 0)
    n = int(ok.sum())
    need = 1 if fix_prefactor else 2
    if n < need or (not fix_prefactor and np.unique(e[ok]).size < 2):
        raise ValueError(f"{n} usable (eps, tau) point(s) with {np.unique(e[ok]).size} distinct eps; the fit needs at "
                         f"least {need} distinct eps in (0, 1) with finite tau")
    x = -np.log(e[ok])
    y = np.log(t[ok])
    if fix_prefactor:
        design = x[:, None]
    else:
        design = np.column_stack([np.ones(n), x])
    coef, _, _, _ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ coef
    dof = n - need
    ssr = float(resid @ resid)
    tval = stats.t.ppf(0.5 + confidence / 2, dof) if dof > 0 else math.nan
    if dof > 0:
        cov = ssr / dof * np.linalg.inv(design.T @ design)
        se = np.sqrt(np.diag(cov))
    else:
        se = np.full(need, math.nan)
    if fix_prefactor:
        ln_a, ln_a_ci = 0.0, (0.0, 0.0)
        alpha, se_alpha = float(coef[0]), float(se[0])
    else:
        ln_a, alpha = float(coef[0]), float(coef[1])
        ln_a_ci = (ln_a - tval * se[0], ln_a + tval * se[0])
        se_alpha = float(se[1])
    sst = float(((y - y.mean()) ** 2).sum())
    return BruggemanFit(
        prefactor=math.exp(ln_a), alpha=alpha,
        prefactor_ci=(math.exp(ln_a_ci[0]), math.exp(ln_a_ci[1])),
        alpha_ci=(alpha - tval * se_alpha, alpha + tval * se_alpha),
        confidence=float(confidence), n_points=n, n_excluded=int(e.size - n), dof=dof,
        r_squared=1.0 - ssr / sst if sst > 0 else math.nan,
        residual_std=math.sqrt(ssr / dof) if dof > 0 else math.nan, prefactor_fixed=bool(fix_prefactor))


def plot_bruggeman(path: str | Path, eps: Sequence[float], tau: Sequence[float],
                   fit: BruggemanFit | Mapping[str, BruggemanFit] | None = None, alpha: float = BRUGGEMAN_ALPHA,
                   groups: Sequence[str] | None = None,
                   title: str = "Tortuosity factor against volume fraction") -> None:
    """Write a PNG of tau against eps with Bruggeman's curve eps^-alpha and the fit(s).

    ``fit`` is one fit or a mapping of a name (e.g. "ionic") to each fit;
    ``groups`` gives each point a legend entry (e.g. "ionic x"). Points with an
    infinite tau are left out of the plot.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    e = np.asarray(eps, dtype=np.float64)
    t = np.asarray(tau, dtype=np.float64)
    keys = np.asarray(groups if groups is not None else [""] * len(e), dtype=object)
    ok = (e > 0) & np.isfinite(t)
    fig = Figure(figsize=(6.0, 4.5), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for key in dict.fromkeys(keys[ok].tolist()):
        sel = ok & (keys == key)
        ax.plot(e[sel], t[sel], "o", ms=5, label=key or "computed")
    lo = float(e[ok].min()) if ok.any() else 0.1
    grid = np.linspace(max(0.5 * lo, 1e-3), 1.0, 200)
    ax.plot(grid, grid ** -alpha, "k--", lw=1.2, label=f"Bruggeman eps^-{alpha:g}")
    fits = {} if fit is None else ({"fit": fit} if isinstance(fit, BruggemanFit) else dict(fit))
    for k, (name, f) in enumerate(fits.items()):
        ax.plot(grid, f.predict(grid), "-", color=f"C{(k + 3) % 10}", lw=1.5,
                label=f"{name}: {f.prefactor:.3g} eps^-{f.alpha:.3g} "
                      f"(alpha {f.alpha_ci[0]:.3g}..{f.alpha_ci[1]:.3g}, {100 * f.confidence:g} %)")
    ax.set_xlabel("volume fraction eps")
    ax.set_ylabel("tortuosity factor tau")
    ax.set_xlim(0.0, 1.02)
    if ok.any():
        ax.set_ylim(0.9, max(float(t[ok].max()), lo ** -alpha) * 1.15)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
