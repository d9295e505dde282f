"""Tortuosity and effective diffusivity by random walks on the voxel grid.

The walk uses exactly the discretisation of the finite-volume solver in
:mod:`microsim.conductivity`, so the two methods answer the same question and
check each other.

Derivation
----------
Give every conducting voxel the same capacity ``c`` per unit volume and let a
walker jump from voxel ``i`` to a face neighbour ``j`` at the rate
``k_ij = G_ij / (c V)``, where ``G_ij`` is the finite-volume face conductance
(series combination of the two half voxels: harmonic-mean sigma times
area / spacing) and ``V`` the voxel volume. The rates are symmetric, so the
uniform distribution over the conducting voxels of a cluster is stationary:
walkers started uniformly stay uniform, whatever the phase of each voxel. For
a periodic medium the long-time diffusivity along ``a`` has the variational
form ``D_a = (1 / N) min_chi sum_faces k (Delta x_a + Delta chi)^2`` (N walkable
voxels per period), and the finite-volume cell problem gives
``sigma_a = (1 / V_period) min_chi sum_faces G (Delta x_a + Delta chi)^2``. With
``k = G / (c V)`` the two minimisations are the same, hence

    sigma_eff,a = c * eps_walk * D_eff,a

where ``eps_walk = N V / V_period`` is the volume fraction of the walked voxels.
A bulk phase p has ``D_p = sigma_p / c``. microsim takes ``c = sigma_max`` (the
largest conductivity among the conducting phases), so ``D_p = sigma_p /
sigma_max`` in um^2 per time unit, and time is counted in units of 1 um^2 /
D_max.

From this:

* ``tau_rw = D0 / D_eff`` with D0 the mean bulk diffusivity of the walked
  voxels: the random-walk tortuosity of the literature (it equals the
  finite-volume ``tau_percolating`` when the walked clusters are those that
  percolate along that axis, the usual case);
* ``normalised_sigma = sigma_eff / sigma_ref = eps_walk D_eff / D_ref`` with
  D_ref the mean bulk diffusivity of all conducting voxels;
* ``tau = eps sigma_ref / sigma_eff`` (TauFactor's definition, as
  :func:`microsim.conductivity` reports it) and MacMullin ``N_M = tau / eps``.

Which finite-volume problem each walk matches
---------------------------------------------
``boundary="periodic"``: the volume is one period of an infinite medium. This
is ``conductivity(volume, d, carrier, cell_problem=True)``, the potential-jump
(homogenisation) cell problem on the fully periodic volume.

``boundary="mirror"``: the volume is continued by mirror images, so every
outer face is a plane of symmetry. By that symmetry the potential of a drop
along ``a`` is constant on the mirror planes normal to ``a`` and carries no flux
through the others, which is ``conductivity(volume, d, carrier)`` (fixed
potentials on the two faces normal to ``d``, no-flux sides).

Walkers start uniformly on the conducting voxels of the clusters that
percolate along at least one axis (winding clusters for periodic images,
face-to-face clusters for mirrored ones). Including clusters that percolate
along another axis only does not change sigma_eff,a: their walkers contribute
nothing to D_eff,a at long times and are counted in eps_walk. If no cluster
percolates, all conducting voxels are walked, which shows the MSD saturating.

Statistics
----------
The walk is the uniformised discrete-time chain of :mod:`kernels.randomwalk`
(exact: same stationary state and long-time diffusivity as the continuous-time
walk). The run is recorded at ``records`` equally spaced times; because the
walkers start in the stationary state, the increments are stationary and the
MSD at each lag is averaged over all time origins of each trajectory (the
time-averaged MSD), so every part of a trajectory is used, not only its start.
The early part is resolved by the displacement from the start at
logarithmically spaced steps.

D_eff,a is half the least-squares slope of MSD_a(t) over the lags in
``fit_window`` (fractions of the run time, default 0.25 to 0.5). A slope, not
MSD / 2t, so the constant offset that the early (local, faster) motion leaves in
the MSD cancels; the start of the window excludes that early part. Walkers form
``groups`` independent groups; the error bars are the standard errors of the
group estimates. ``diffusive`` is False when the slopes over the two halves of the
window differ by more than three standard errors: then MSD / t is still falling
and the run needs more steps.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numba
import numpy as np

from kernels import randomwalk as rwk

from .arrays import as_volume
from .percolation import label_clusters
from .phases import check_carrier
from .volume import Volume, lookup
from .warmup import ensure_compiled_random_walk

BOUNDARIES = ("periodic", "mirror")
AXIS_NAMES = ("z", "y", "x")
_BLOCK = 64  # walkers per unit of parallel work


class RandomWalkError(ValueError):
    """Random-walk parameters or input that cannot work; the message names the fix."""


@dataclass(frozen=True)
class AxisDiffusion:
    """Random-walk transport along one axis; ``*_se`` are standard errors over walker groups.

    Attributes
    ----------
    D_eff_um2_per_tu : long-time diffusivity, um^2 per time unit
    tau_rw : D0 / D_eff, the random-walk tortuosity of the literature
    normalised_sigma : sigma_eff / sigma_ref
    sigma_eff_S_per_m : effective conductivity
    tau : eps sigma_ref / sigma_eff (TauFactor definition; comparable to the finite-volume tau)
    tau_percolating : the same over the voxels percolating along this axis only
    macmullin : sigma_ref / sigma_eff = tau / eps
    percolates : a cluster percolates along this axis (if not: sigma_eff = 0, tau = inf)
    diffusive : MSD grows linearly over the fit window within the statistical error
    travel_volumes : rms displacement at the start of the fit window over the volume length
        along this axis. Below about 1 the walkers have not yet sampled the joins
        between images, which matters for volumes that are not periodic.
    """

    direction: str
    D_eff_um2_per_tu: float
    D_eff_se: float
    tau_rw: float
    tau_rw_se: float
    normalised_sigma: float
    normalised_sigma_se: float
    sigma_eff_S_per_m: float
    sigma_eff_se_S_per_m: float
    tau: float
    tau_se: float
    tau_percolating: float
    macmullin: float
    eps_percolating: float
    percolates: bool
    diffusive: bool
    travel_volumes: float

    @property
    def relative_error(self) -> float:
        d = abs(self.D_eff_um2_per_tu)
        return self.D_eff_se / d if d > 0 else math.inf

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class RandomWalkResult:
    """Result of :func:`random_walk`.

    ``time`` (time units) and ``msd_um2`` / ``msd_se_um2`` (shape (n, 3), axes
    z, y, x) are the MSD curves; ``axes`` holds one :class:`AxisDiffusion` per
    axis in z, y, x order (use :meth:`get`). ``time_step`` is the time of one walk
    step; ``sigma_scale_S_per_m`` the capacity c (a bulk phase has D = sigma / c).
    """

    carrier: str
    boundary: str
    equivalent_fv_problem: str
    seed: int
    walkers: int
    groups: int
    steps: int
    time_step: float
    fit_window: tuple[float, float]
    eps: float
    eps_walked: float
    D0_um2_per_tu: float
    D_ref_um2_per_tu: float
    sigma_ref_S_per_m: float
    sigma_scale_S_per_m: float
    voxel_size_um: tuple[float, float, float]
    shape: tuple[int, int, int]
    axes: tuple[AxisDiffusion, ...]
    percolates: bool
    message: str
    target_error: float | None
    walker_steps_per_s: float
    time: np.ndarray = field(repr=False)
    msd_um2: np.ndarray = field(repr=False)
    msd_se_um2: np.ndarray = field(repr=False)

    def get(self, direction: str) -> AxisDiffusion:
        for ax in self.axes:
            if ax.direction == direction:
                return ax
        raise KeyError(f"no axis {direction!r}; use x, y or z")

    def rows(self) -> list[dict]:
        """One flat dict per axis, x first."""
        return [{"direction": a.direction, **{k: v for k, v in a.to_dict().items() if k != "direction"}}
                for a in reversed(self.axes)]

    def to_dataframe(self):
        """A pandas DataFrame, one row per axis (needs pandas, an optional extra)."""
        from .tables import dataframe
        return dataframe(self.rows(), ("direction",))

    def _repr_html_(self) -> str:
        from .tables import html_table
        cols = ("direction", "percolates", "D_eff_um2_per_tu", "D_eff_se", "tau_rw", "tau_rw_se", "tau", "tau_se",
                "sigma_eff_S_per_m", "diffusive")
        return html_table(self.rows(), cols, f"random walk ({self.boundary} boundary), {self.walkers} walkers x "
                                             f"{self.steps} steps: {self.message}")

    @property
    def D_eff_um2_per_tu(self) -> np.ndarray:
        """(D_z, D_y, D_x): the diagonal of the effective diffusion tensor."""
        return np.array([a.D_eff_um2_per_tu for a in self.axes])

    @property
    def relative_error(self) -> float:
        """Largest relative standard error of D_eff over the percolating axes (0 if none percolates)."""
        errs = [a.relative_error for a in self.axes if a.percolates]
        return max(errs) if errs else 0.0

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in (
            "carrier", "boundary", "equivalent_fv_problem", "seed", "walkers", "groups", "steps", "time_step",
            "eps", "eps_walked", "D0_um2_per_tu", "D_ref_um2_per_tu", "sigma_ref_S_per_m", "sigma_scale_S_per_m",
            "percolates", "message", "target_error", "walker_steps_per_s")}
        d["fit_window"] = list(self.fit_window)
        d["relative_error"] = self.relative_error
        d["shape"] = list(self.shape)
        d["voxel_size_um"] = list(self.voxel_size_um)
        d["time_unit"] = "1 um^2 / D_max; a bulk phase p has D_p = sigma_p / sigma_scale_S_per_m um^2 per time unit"
        d["axes"] = {a.direction: a.to_dict() for a in self.axes}
        d["msd"] = {"time": self.time.tolist(),
                    **{f"msd_{n}_um2": self.msd_um2[:, i].tolist() for i, n in enumerate(AXIS_NAMES)},
                    **{f"msd_{n}_se_um2": self.msd_se_um2[:, i].tolist() for i, n in enumerate(AXIS_NAMES)}}
        return d


# ---------------------------------------------------------------------------
# set-up


@dataclass(frozen=True)
class _Problem:
    lab: np.ndarray          # padded compact indices; n_cond = never entered
    n_cond: int
    accept: np.ndarray
    axis_cut: np.ndarray
    time_step: float
    mirror: np.ndarray
    eps: float
    eps_walked: float
    D0: float
    D_ref: float
    sigma_ref: float
    sigma_scale: float
    percolates: np.ndarray   # (3,) bool
    perc_weight: np.ndarray  # (3,) sum of D_p over voxels percolating along each axis / total voxels
    eps_perc: np.ndarray     # (3,)


def _percolating_clusters(clusters: np.ndarray, n: int, winds: np.ndarray, mirror: bool) -> np.ndarray:
    """(3, n + 1) bool: cluster c percolates along axis a in the infinite medium of images."""
    per_axis = np.zeros((3, n + 1), dtype=bool)
    if mirror:
        # mirror images join a cluster to itself across every face: infinite along a
        # exactly when it touches both faces normal to a
        for a in range(3):
            first = np.unique(np.take(clusters, 0, axis=a))
            last = np.unique(np.take(clusters, -1, axis=a))
            per_axis[a, np.intersect1d(first, last)] = True
    else:
        per_axis[:] = winds.T
    per_axis[:, 0] = False
    return per_axis


def _problem(volume: Volume, carrier: str, mirror: bool) -> _Problem:
    lut = volume.conductivity_lut(carrier)
    labels = volume.labels
    clusters, n, winds = label_clusters(lookup(lut > 0, labels), 6, (not mirror,) * 3)
    everything = np.ones(n + 1, dtype=np.bool_)
    counts = rwk.label_counts(labels, clusters, everything)
    n_total = labels.size
    values = [int(v) for v in np.flatnonzero(counts) if lut[v] > 0]
    if not values:
        raise RandomWalkError(f"no voxel conducts {carrier} charge (every phase present has "
                              f"sigma_{carrier}_S_per_m = 0); nothing to walk on: check the phase table or carrier")
    if len(values) > 127:
        raise RandomWalkError(f"{len(values)} conducting label values; the walk handles at most 127: "
                              "merge phases with equal conductivity")
    sigma_scale = float(lut[values].max())
    d_lut = lut / sigma_scale  # bulk diffusivity of each label value, um^2 per time unit
    per_axis = _percolating_clusters(clusters, n, winds, mirror)
    percolates = per_axis.any(axis=1)
    walked = per_axis.any(axis=0)
    if not walked.any():  # nothing percolates: walk every cluster to show the confinement
        walked = everything.copy()
        walked[0] = False
    to_index = np.full(256, len(values), dtype=np.uint8)
    to_index[values] = np.arange(len(values), dtype=np.uint8)
    lab = rwk.walk_labels(labels, to_index, clusters, walked, np.uint8(len(values)))
    rwk.fill_ghosts(lab, len(values) + 1, np.full(3, mirror, dtype=np.bool_))
    walk_counts = rwk.label_counts(labels, clusters, walked)
    perc_weight = np.zeros(3)
    eps_perc = np.zeros(3)
    for a in range(3):
        c = rwk.label_counts(labels, clusters, per_axis[a])
        perc_weight[a] = float(c @ d_lut) / n_total
        eps_perc[a] = float(c.sum()) / n_total
    del clusters
    sigma = np.zeros(len(values) + 1)
    sigma[:len(values)] = d_lut[values]
    accept, axis_cut, rate, _ = rwk.jump_tables(sigma, np.asarray(volume.voxel_size_um, dtype=np.float64))
    n_walk = int(walk_counts.sum())
    n_cond = int(counts[values].sum())
    D0 = float(walk_counts @ d_lut) / n_walk
    D_ref = float(counts @ d_lut) / n_cond
    return _Problem(lab=lab, n_cond=len(values), accept=accept, axis_cut=axis_cut, time_step=1.0 / rate,
                    mirror=np.full(3, mirror, dtype=np.bool_), eps=n_cond / n_total,
                    eps_walked=n_walk / n_total, D0=D0, D_ref=D_ref, sigma_ref=D_ref * sigma_scale,
                    sigma_scale=sigma_scale, percolates=percolates, perc_weight=perc_weight, eps_perc=eps_perc)


def _log_steps(stride: int) -> np.ndarray:
    """About five steps per decade below ``stride`` (origin-at-start MSD of the early part)."""
    if stride <= 1:
        return np.zeros(0, dtype=np.int64)
    s = np.unique(np.round(np.geomspace(1, stride, max(2, int(5 * math.log10(stride)) + 1))).astype(np.int64))
    return s[s < stride]


# ---------------------------------------------------------------------------
# statistics


def _slopes(t: np.ndarray, msd: np.ndarray) -> np.ndarray:
    """Least-squares slope of msd (groups, n, 3) against t (n,), per group and axis."""
    tc = t - t.mean()
    return np.einsum("n,gna->ga", tc, msd - msd.mean(axis=1, keepdims=True)) / float(tc @ tc)


def _mean_se(x: np.ndarray):
    g = x.shape[0]
    return x.mean(axis=0), (x.std(axis=0, ddof=1) / math.sqrt(g) if g > 1 else np.full(x.shape[1:], math.inf))


# ---------------------------------------------------------------------------
# public entry point


def random_walk(volume, carrier: str = "ionic", *, walkers: int = 10_000, steps: int = 10_000,
                boundary: str = "periodic", seed: int = 0, records: int = 64, groups: int = 32,
                fit_window: tuple[float, float] = (0.25, 0.5), target_error: float | None = None,
                max_walkers: int | None = None,
                progress: Callable[[int, int, float], None] | None = None, sigma=None, ionic=None,
                electronic=None, phases=None, voxel_size_um=None, axes: str = "zyx") -> RandomWalkResult:
    """Effective diffusivity, tortuosity and MSD curves of a volume by random walks.

    Parameters
    ----------
    volume : Volume, numpy array or path
        Labels, phase table (conductivities in S/m) and voxel size in um (may be anisotropic).
        A boolean array conducts where True; see :func:`microsim.arrays.as_volume` for
        ``sigma``, ``ionic``, ``electronic``, ``phases``, ``voxel_size_um`` and ``axes``.
    carrier : 'ionic' or 'electronic'
        Which conductivity column of the phase table sets the jump rates.
    walkers : int
        Walkers per batch, rounded up to a multiple of ``groups``.
    steps : int
        Steps per walker, rounded up to a multiple of ``records``.
    boundary : 'periodic' or 'mirror'
        Infinite medium of periodic images (matches the finite-volume cell problem,
        ``conductivity(..., cell_problem=True)``) or of mirrored images (matches the
        default ``conductivity(...)``: fixed-potential faces, no-flux sides).
    seed : int >= 0
        The result depends on the seed only, not on the number of threads.
    records : int
        Equally spaced recorded times per walker (MSD lags; cost grows as records^2 per walker).
    groups : int
        Independent walker groups per batch, for the error bars (>= 2).
    fit_window : (float, float)
        Part of the run, as fractions of its duration, over which MSD(t) is fitted by a line.
    target_error : float, optional
        Keep adding batches of ``walkers`` until the relative standard error of
        D_eff is at most this on every percolating axis (or ``max_walkers`` is reached).
    max_walkers : int, optional
        Limit for ``target_error`` (default 64 batches).
    progress : callable(walkers_done, walkers_planned, walker_steps_per_s), optional

    Returns
    -------
    RandomWalkResult

    Examples
    --------
    >>> import numpy as np
    >>> from microsim import Volume
    >>> v = Volume(np.ones((8, 8, 8), np.uint8), {"SE": {"label": 1, "sigma_ionic_S_per_m": 0.5}})
    >>> r = random_walk(v, walkers=2048, steps=512, seed=1)
    >>> abs(r.get("x").tau_rw - 1.0) < 4 * r.get("x").tau_rw_se
    True
    """
    volume = as_volume(volume, sigma=sigma, ionic=ionic, electronic=electronic, phases=phases,
                       voxel_size_um=voxel_size_um, axes=axes)
    carrier = check_carrier(carrier)
    walkers, steps, records, groups, seed, (f0, f1), max_walkers = check_parameters(
        walkers, steps, boundary, seed, records, groups, fit_window, target_error, max_walkers)
    ensure_compiled_random_walk(boundary)
    stride = steps // records
    lags = np.arange(1, records + 1)
    fit = (lags >= f0 * records) & (lags <= f1 * records)
    mirror = boundary == "mirror"
    prob = _problem(volume, carrier, mirror)
    group_size = walkers // groups
    log_steps = _log_steps(stride)
    spacing2 = np.asarray(volume.voxel_size_um) ** 2

    lag_sums, log_sums = [], []
    done = 0
    t0 = time.perf_counter()
    while True:
        ls, gs = _run_batch(prob, seed, done // group_size, groups, group_size, stride, records, log_steps, done,
                            done + walkers, t0, progress)
        lag_sums.append(ls)
        log_sums.append(gs)
        done += walkers
        lag = np.concatenate(lag_sums)
        # time-origin average: lag m has records + 1 - m origins per walker
        msd_lag = lag[:, 1:, :] / (group_size * (records + 1 - lags))[None, :, None] * spacing2
        tl = lags * stride * prob.time_step
        d_groups = 0.5 * _slopes(tl[fit], msd_lag[:, fit, :])
        if target_error is None or done + walkers > max_walkers:
            break
        d_mean, d_se = _mean_se(d_groups)
        rel = [d_se[a] / d_mean[a] if d_mean[a] > 0 else math.inf for a in range(3) if prob.percolates[a]]
        if not rel or max(rel) <= target_error:
            break
    elapsed = time.perf_counter() - t0
    n_groups = lag.shape[0]

    # diffusive check: slopes of the two halves of the window, per group
    idx = np.flatnonzero(fit)
    half = len(idx) // 2
    if half >= 2:
        lo = 0.5 * _slopes(tl[idx[:half + 1]], msd_lag[:, idx[:half + 1], :])
        hi = 0.5 * _slopes(tl[idx[half:]], msd_lag[:, idx[half:], :])
        diff, diff_se = _mean_se(lo - hi)
        diffusive = np.abs(diff) <= 3 * diff_se
    else:
        diffusive = np.ones(3, dtype=bool)

    glog = np.concatenate(log_sums)
    msd_log = glog / group_size * spacing2 if len(log_steps) else np.zeros((n_groups, 0, 3))
    msd_groups = np.concatenate([msd_log, msd_lag], axis=1)
    times = np.concatenate([log_steps * prob.time_step, tl])
    msd, msd_se = _mean_se(msd_groups)

    lengths = np.asarray(volume.size_um)
    travel = np.sqrt(np.maximum(msd_lag[:, idx[0], :].mean(axis=0), 0.0)) / lengths
    axes = tuple(_axis_result(prob, a, d_groups[:, a], bool(diffusive[a]), float(travel[a])) for a in range(3))
    fv = ("conductivity(volume, d, carrier, cell_problem=True): fully periodic potential-jump cell problem"
          if not mirror else "conductivity(volume, d, carrier): fixed potentials on the faces normal to d, "
                             "no-flux sides")
    if prob.percolates.all():
        msg = "percolates along x, y and z"
    elif prob.percolates.any():
        bad = [AXIS_NAMES[a] for a in range(3) if not prob.percolates[a]]
        msg = (f"does not percolate along {', '.join(reversed(bad))}: sigma_eff = 0 and tau = inf there "
               "(walkers are confined along that axis)")
    else:
        msg = ("the conducting phase does not percolate along any axis: every cluster is closed, "
               "D_eff tends to zero (sigma_eff = 0, tau = inf)")
    if prob.percolates.any() and not all(ax.diffusive for ax in axes if ax.percolates):
        msg += "; MSD/t still changes over the fit window: run more steps"
    short = [f"{ax.direction} {ax.travel_volumes:.2g}" for ax in reversed(axes)
             if ax.percolates and ax.travel_volumes < 1]
    if short:
        msg += (f"; before the fit window walkers move less than one volume length ({', '.join(short)}), so the "
                "joins between images are not yet sampled: unless the volume is periodic, run more steps")
    return RandomWalkResult(
        carrier=carrier, boundary=boundary, equivalent_fv_problem=fv, seed=seed, walkers=done, groups=n_groups,
        steps=steps, time_step=prob.time_step, fit_window=(f0, f1), eps=prob.eps, eps_walked=prob.eps_walked,
        D0_um2_per_tu=prob.D0, D_ref_um2_per_tu=prob.D_ref, sigma_ref_S_per_m=prob.sigma_ref,
        sigma_scale_S_per_m=prob.sigma_scale, voxel_size_um=volume.voxel_size_um, shape=volume.shape, axes=axes,
        percolates=bool(prob.percolates.any()), message=msg, target_error=target_error,
        walker_steps_per_s=done * steps / elapsed if elapsed > 0 else math.inf,
        time=times, msd_um2=msd, msd_se_um2=msd_se)


def check_parameters(walkers=10_000, steps=10_000, boundary="periodic", seed=0, records=64, groups=32,
                     fit_window=(0.25, 0.5), target_error=None, max_walkers=None):
    """Validate the parameters of :func:`random_walk` and return them as used.

    Returns (walkers, steps, records, groups, seed, fit_window, max_walkers): walkers
    rounded up to a multiple of groups, steps to a multiple of records.
    """
    def as_int(name, v, lo):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise RandomWalkError(f"{name} = {v!r} must be an integer >= {lo}")
        return int(v)
    if boundary not in BOUNDARIES:
        raise RandomWalkError(f"boundary {boundary!r} is not one of {', '.join(BOUNDARIES)}")
    walkers = as_int("walkers", walkers, 2)
    steps = as_int("steps", steps, 8)
    records = as_int("records", records, 4)
    groups = as_int("groups", groups, 2)
    seed = as_int("seed", seed, 0)
    if seed >= 2 ** 63:
        raise RandomWalkError(f"seed {seed} must be below 2^63")
    groups = min(groups, walkers)
    walkers = -(-walkers // groups) * groups
    records = min(records, steps)
    steps = -(-steps // records) * records
    try:
        f0, f1 = (float(v) for v in fit_window)
    except (TypeError, ValueError):
        raise RandomWalkError(f"fit_window {fit_window!r} is not two numbers (start, end)") from None
    if not 0.0 <= f0 < f1 <= 1.0:
        raise RandomWalkError(f"fit_window {fit_window!r} must be two fractions 0 <= start < end <= 1 of the run")
    lags = np.arange(1, records + 1)
    n_fit = int(((lags >= f0 * records) & (lags <= f1 * records)).sum())
    if n_fit < 2:
        raise RandomWalkError(f"fit_window {fit_window!r} holds {n_fit} of the {records} recorded times; "
                              "widen it or raise records")
    if target_error is not None and not target_error > 0:
        raise RandomWalkError(f"target_error {target_error!r} must be > 0 (a relative standard error, e.g. 0.01)")
    max_walkers = 64 * walkers if max_walkers is None else as_int("max_walkers", max_walkers, walkers)
    return walkers, steps, records, groups, seed, (f0, f1), max_walkers


def _run_batch(prob, seed, first_group, groups, group_size, stride, records, log_steps, done, planned, t0, progress):
    """Walk ``groups`` groups; return per-group lag and log sums (int64)."""
    # blocks of at most _BLOCK walkers inside each group: the parallel unit
    per_group = -(-group_size // _BLOCK)
    firsts, sizes, owner = [], [], []
    for g in range(groups):
        start = (first_group + g) * group_size
        for b in range(per_group):
            lo = b * _BLOCK
            firsts.append(start + lo)
            sizes.append(min(_BLOCK, group_size - lo))
            owner.append(g)
    firsts = np.asarray(firsts, dtype=np.int64)
    sizes = np.asarray(sizes, dtype=np.int64)
    owner = np.asarray(owner)
    n_blocks = len(firsts)
    lag = np.zeros((n_blocks, records + 1, 3), dtype=np.int64)
    logs = np.zeros((n_blocks, len(log_steps), 3), dtype=np.int64)
    failed = np.zeros(n_blocks, dtype=np.int64)
    # calls of about 2^26 walker steps keep the progress output alive without costing time
    chunk = max(1, min(n_blocks, (1 << 26) // max(1, _BLOCK * stride * records)))
    walked = done
    for s in range(0, n_blocks, chunk):
        e = min(n_blocks, s + chunk)
        # blocks handed out one at a time: a thread that the OS pauses does not hold up the others
        previous = numba.set_parallel_chunksize(1)
        try:
            rwk.walk_blocks(prob.lab, prob.n_cond + 1, prob.n_cond, prob.accept, prob.axis_cut, prob.mirror, seed,
                            firsts[s:e], sizes[s:e], stride, records, log_steps, lag[s:e], logs[s:e], failed[s:e])
        finally:
            numba.set_parallel_chunksize(previous)
        walked += int(sizes[s:e].sum())
        if progress is not None:
            el = time.perf_counter() - t0
            progress(walked, planned, (walked * stride * records) / el if el > 0 else math.inf)
    if failed.any():
        raise RandomWalkError("no start voxel found for some walkers: the walked phase is too sparse "
                              "(below about 1e-6 of the volume) for rejection sampling; crop to the phase")
    lag_g = np.zeros((groups, records + 1, 3), dtype=np.int64)
    log_g = np.zeros((groups, len(log_steps), 3), dtype=np.int64)
    np.add.at(lag_g, owner, lag)
    np.add.at(log_g, owner, logs)
    return lag_g, log_g


def _axis_result(prob: _Problem, axis: int, d_groups: np.ndarray, diffusive: bool, travel: float) -> AxisDiffusion:
    name = AXIS_NAMES[axis]
    d, se = float(d_groups.mean()), float(d_groups.std(ddof=1) / math.sqrt(len(d_groups)))
    if not prob.percolates[axis]:
        return AxisDiffusion(name, d, se, math.inf, math.nan, 0.0, 0.0, 0.0, 0.0, math.inf, math.nan, math.inf,
                             math.inf, 0.0, False, diffusive, travel)
    rel = se / d if d > 0 else math.inf
    ns = prob.eps_walked * d / prob.D_ref
    sig = prob.sigma_ref * ns
    tau = prob.eps / ns if ns > 0 else math.inf
    tau_rw = prob.D0 / d if d > 0 else math.inf
    tau_p = prob.perc_weight[axis] / (prob.eps_walked * d) if d > 0 else math.inf
    return AxisDiffusion(name, d, se, tau_rw, tau_rw * rel, ns, ns * rel, sig, sig * rel, tau, tau * rel, tau_p,
                         prob.D_ref / (prob.eps_walked * d) if d > 0 else math.inf, float(prob.eps_perc[axis]),
                         True, diffusive, travel)


# ---------------------------------------------------------------------------
# plot


def plot_msd(result: RandomWalkResult, path) -> None:
    """Write a PNG of MSD_a / (2 t D0) against t for each axis: it falls from the local value to 1 / tau_rw.

    The shaded band is the fit window; dashed lines are the fitted D_eff / D0.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .atomic import atomic_path

    t = result.time
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    colours = {"x": "tab:blue", "y": "tab:orange", "z": "tab:green"}
    d0 = result.D0_um2_per_tu
    for i, name in enumerate(AXIS_NAMES):
        y = result.msd_um2[:, i] / (2 * t * d0)
        e = result.msd_se_um2[:, i] / (2 * t * d0)
        ax.plot(t, y, color=colours[name], label=f"{name}: tau_rw = {result.axes[i].tau_rw:.3g}")
        ax.fill_between(t, y - e, y + e, color=colours[name], alpha=0.25, linewidth=0)
        ax.axhline(result.axes[i].D_eff_um2_per_tu / d0, color=colours[name], linestyle="--", linewidth=0.8)
    total = result.steps * result.time_step
    ax.axvspan(result.fit_window[0] * total, result.fit_window[1] * total, color="0.9", zorder=0, label="fit window")
    ax.set_xscale("log")
    ax.set_xlabel("time (units of 1 um^2 / D_max)")
    ax.set_ylabel("MSD / (2 t D0)")
    ax.set_ylim(bottom=0)
    ax.set_title(f"random walk, {result.boundary} images, {result.walkers} walkers x {result.steps} steps")
    ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
