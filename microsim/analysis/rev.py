"""Representative volume: how large a sub-volume must be for its numbers to stop scattering.

Cubic sub-volumes of growing edge length are cut from the volume at random or
tiled positions; for each size the spread (sample standard deviation) of the
phase volume fractions and, optionally, of the tortuosity factor is reported.
The representative size for a quantity is the smallest size from which on the
spread of every larger size is within the tolerance: ``eps_tol`` (absolute,
on volume fractions) and ``tau_rtol`` (relative, std / mean, on tau). A size
at which some sub-volume does not percolate is never representative for tau.
Sizes with a single sub-volume (the whole volume) have no spread and do not
enter the criterion.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from ..conductivity import conductivity
from ..phases import check_carrier
from ..volume import Volume, axis_index


@dataclass(frozen=True)
class REVSize:
    """Statistics of the sub-volumes of one edge length.

    ``fraction_mean`` / ``fraction_std`` map phase names to the mean and sample
    standard deviation of their volume fractions; the tau fields are NaN when tau
    was not asked for. ``tau_mean`` and ``tau_std`` use the percolating
    sub-volumes only; ``n_not_percolating`` counts the others.
    """

    size_voxels: int
    shape: tuple
    size_um: tuple
    n_samples: int
    fraction_mean: dict
    fraction_std: dict
    eps_mean: float = math.nan
    eps_std: float = math.nan
    tau_mean: float = math.nan
    tau_std: float = math.nan
    n_not_percolating: int = 0

    @property
    def tau_rel_std(self) -> float:
        return self.tau_std / self.tau_mean if self.tau_mean > 0 else math.nan

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["shape"], d["size_um"] = list(self.shape), list(self.size_um)
        return d | {"tau_rel_std": self.tau_rel_std}


@dataclass(frozen=True)
class REVResult:
    """Sub-volume statistics for each size and the representative sizes found.

    ``rev_size_fraction[phase]`` and ``rev_size_tau`` are edge lengths in voxels,
    or None when no tested size qualifies. ``samples`` lists, for the tau
    analysis, (size_voxels, eps, tau) of every sub-volume, e.g. for
    :func:`~microsim.analysis.bruggeman.fit_bruggeman`.
    """

    sizes: tuple
    positions: str
    eps_tol: float
    tau_rtol: float
    rev_size_fraction: dict
    rev_size_tau: int | None
    carrier: str | None
    direction: str | None
    samples: tuple = field(default=(), repr=False)

    def to_dict(self) -> dict:
        return {"positions": self.positions, "eps_tol": self.eps_tol, "tau_rtol": self.tau_rtol,
                "carrier": self.carrier, "direction": self.direction,
                "rev_size_fraction": dict(self.rev_size_fraction), "rev_size_tau": self.rev_size_tau,
                "sizes": [s.to_dict() for s in self.sizes],
                "samples": [{"size_voxels": s, "eps": e, "tau": t} for s, e, t in self.samples]}


def default_sizes(shape: Sequence[int]) -> tuple[int, ...]:
    """Edge lengths 8, 16, 32, ... up to the smallest axis, and the smallest axis itself.

    >>> default_sizes((100, 64, 80))
    (8, 16, 32, 64)
    """
    top = min(shape)
    sizes = [s for s in (2 ** k for k in range(3, 16)) if s < top] + [top]
    return tuple(sorted(set(sizes)))


def _corners(shape, sub, n_samples, positions, rng) -> list[tuple[int, int, int]]:
    n_positions = int(np.prod([n - s + 1 for n, s in zip(shape, sub)]))
    if positions == "random" and n_positions <= n_samples:
        # so few places that drawing would repeat them: take each once (one for the whole volume)
        grid = [range(n - s + 1) for n, s in zip(shape, sub)]
        return [(a, b, c) for a in grid[0] for b in grid[1] for c in grid[2]]
    if positions == "random":
        return [tuple(int(rng.integers(0, n - s + 1)) for n, s in zip(shape, sub)) for _ in range(n_samples)]
    grid = [range(0, n - s + 1, s) for n, s in zip(shape, sub)]
    tiles = [(a, b, c) for a in grid[0] for b in grid[1] for c in grid[2]]
    if len(tiles) > n_samples:
        pick = np.sort(rng.choice(len(tiles), n_samples, replace=False))
        tiles = [tiles[i] for i in pick]
    return tiles


def _std(values) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else math.nan


def _rev_size(sizes: Sequence[int], spreads: Sequence[float], ok: Sequence[bool]) -> int | None:
    # the smallest size from which on every size with a spread passes
    best = None
    for size, spread, good in reversed(list(zip(sizes, spreads, ok))):
        if math.isnan(spread) and good:
            continue
        if not good:
            break
        best = size
    return best


def representative_volume(volume: Volume, sizes: Sequence[int] | None = None, n_samples: int = 8,
                          positions: str = "random", carrier: str | None = None, direction: str = "z",
                          eps_tol: float = 0.02, tau_rtol: float = 0.05, seed: int = 0,
                          progress: Callable[[int, int], None] | None = None, **solver) -> REVResult:
    """Volume fractions (and tau) of cubic sub-volumes of growing size, with their spread.

    Parameters
    ----------
    volume : Volume
    sizes : list of int, optional
        Edge lengths in voxels (clipped to each axis); default :func:`default_sizes`.
    n_samples : int
        Sub-volumes per size (for tiled positions: at most this many tiles, drawn at random).
    positions : 'random' or 'tiled'
        Corners drawn uniformly, or non-overlapping tiles of the volume.
    carrier : 'ionic', 'electronic' or None
        Also solve for tau of each sub-volume along ``direction`` with
        :func:`microsim.conductivity` (keep the volumes small: one solve per sub-volume).
    eps_tol, tau_rtol : float
        Tolerances on the std of volume fractions and on the relative std of tau.
    seed : int
        Seed of the random positions.
    progress : callable(done, total), optional
        Called after each sub-volume.
    **solver
        Passed to :func:`microsim.conductivity` (rtol, max_iter, ...).

    Examples
    --------
    >>> lab = np.zeros((16, 16, 16), np.uint8); lab[:, ::2, :] = 1
    >>> v = Volume(lab, {"SE": {"label": 1}, "NMC": {"label": 0}})
    >>> r = representative_volume(v, sizes=[2, 4, 8], n_samples=5)
    >>> r.rev_size_fraction["SE"], r.sizes[0].fraction_mean["SE"]
    (2, 0.5)
    """
    if positions not in ("random", "tiled"):
        raise ValueError(f"positions {positions!r} is not 'random' or 'tiled'")
    if not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
        raise ValueError(f"n_samples = {n_samples!r} must be a positive integer")
    if carrier is not None:
        check_carrier(carrier)
        axis_index(direction)
    sizes = tuple(default_sizes(volume.shape) if sizes is None else sorted({int(s) for s in sizes}))
    if not sizes or sizes[0] < 1:
        raise ValueError(f"sizes {sizes} must be positive edge lengths in voxels")
    rng = np.random.default_rng(seed)
    present = [p for p in volume.phases if (volume.labels == p.label).any()]
    plans = []
    for s in sizes:
        sub = tuple(min(s, n) for n in volume.shape)
        plans.append((s, sub, _corners(volume.shape, sub, n_samples, positions, rng)))
    total = sum(len(c) for _, _, c in plans)
    done = 0
    rows, samples = [], []
    lut = volume.conductivity_lut(carrier) > 0 if carrier else None
    for s, sub, corners in plans:
        fr = {p.name: [] for p in present}
        eps, taus = [], []
        for c in corners:
            sl = tuple(slice(a, a + k) for a, k in zip(c, sub))
            labels = volume.labels[sl]
            counts = np.bincount(labels.ravel(), minlength=256) / labels.size
            for p in present:
                fr[p.name].append(counts[p.label])
            if carrier:
                part = volume.derive(labels=np.ascontiguousarray(labels), note=f"sub-volume at {c} of shape {sub}")
                r = conductivity(part, direction, carrier, **solver).get(carrier, direction)
                e = float(counts[lut].sum())
                eps.append(e)
                taus.append(r.tau)
                samples.append((s, e, float(r.tau)))
            done += 1
            if progress is not None:
                progress(done, total)
        finite = [t for t in taus if math.isfinite(t)]
        rows.append(REVSize(
            size_voxels=s, shape=sub, size_um=tuple(k * d for k, d in zip(sub, volume.voxel_size_um)),
            n_samples=len(corners), fraction_mean={k: float(np.mean(v)) for k, v in fr.items()},
            fraction_std={k: _std(v) for k, v in fr.items()},
            eps_mean=float(np.mean(eps)) if eps else math.nan, eps_std=_std(eps),
            tau_mean=float(np.mean(finite)) if finite else math.nan, tau_std=_std(finite),
            n_not_percolating=len(taus) - len(finite)))
    rev_fraction = {}
    for p in present:
        spreads = [r.fraction_std[p.name] for r in rows]
        rev_fraction[p.name] = _rev_size(sizes, spreads, [math.isnan(x) or x <= eps_tol for x in spreads])
    rev_tau = None
    if carrier:
        spreads = [r.tau_rel_std for r in rows]
        good = [r.n_not_percolating == 0 and (math.isnan(x) or x <= tau_rtol) for r, x in zip(rows, spreads)]
        # a size whose one sub-volume does not percolate has no spread but is not representative
        spreads = [x if r.n_not_percolating == 0 else math.inf for r, x in zip(rows, spreads)]
        rev_tau = _rev_size(sizes, spreads, good)
    return REVResult(tuple(rows), positions, float(eps_tol), float(tau_rtol), rev_fraction, rev_tau,
                     carrier, direction if carrier else None, tuple(samples))
