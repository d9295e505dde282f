"""PNG figures of a run: orthogonal slices, through-thickness profiles, percolation classes.

(The Bruggeman plot is :func:`microsim.analysis.bruggeman.plot_bruggeman`.)

Every function takes plain arrays and numbers, writes one PNG through a
temporary file (a reader never sees half an image) and returns its path.
Slices are shown in micrometres with the true aspect ratio of anisotropic voxels.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..atomic import atomic_path

#: Names of the three orthogonal mid-plane slices, as (title, row axis, column axis) of the (z, y, x) array.
SLICE_PLANES = (("x-y plane (mid z)", 1, 2), ("x-z plane (mid y)", 0, 2), ("y-z plane (mid x)", 0, 1))
AXIS_NAMES = "zyx"
# colours that stay distinct in print and for the common colour-vision deficiencies (Okabe-Ito)
PHASE_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
CLASS_COLOURS = ("#d9d9d9", "#009E73", "#E69F00", "#D55E00")
CLASS_NAMES = ("not conducting", "percolating", "dead-end", "isolated")


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path) -> Path:
    plt = _pyplot()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path


def orthogonal_slices(volume: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The three mid-plane slices of a (z, y, x) array, in the order of :data:`SLICE_PLANES`.

    >>> [s.shape for s in orthogonal_slices(np.zeros((2, 3, 4)))]
    [(3, 4), (2, 4), (2, 3)]
    """
    nz, ny, nx = volume.shape
    return (np.array(volume[nz // 2]), np.array(volume[:, ny // 2]), np.array(volume[:, :, nx // 2]))


def _extent(shape2d, row_axis: int, col_axis: int, voxel_size_um) -> list[float]:
    return [0.0, shape2d[1] * voxel_size_um[col_axis], shape2d[0] * voxel_size_um[row_axis], 0.0]


def _nice_length(max_um: float) -> float:
    """A round scale-bar length close to a fifth of ``max_um``."""
    target = max_um / 5
    if target <= 0:
        return 1.0
    mag = 10 ** math.floor(math.log10(target))
    for m in (1, 2, 5, 10):
        if m * mag >= target:
            return m * mag
    return 10 * mag


def _scale_bar(ax, width_um: float, height_um: float) -> None:
    length = _nice_length(width_um)
    x0, y0 = 0.05 * width_um, 0.93 * height_um
    ax.plot([x0, x0 + length], [y0, y0], color="white", linewidth=4, solid_capstyle="butt")
    ax.plot([x0, x0 + length], [y0, y0], color="black", linewidth=2, solid_capstyle="butt")
    ax.text(x0 + length / 2, y0 - 0.03 * height_um, f"{length:g} um", ha="center", va="bottom", fontsize=8,
            color="black", bbox=dict(facecolor="white", alpha=0.7, edgecolor="none", pad=1))


def _slice_axes(plt, title: str, n: int = 3):
    fig, axes = plt.subplots(1, n, figsize=(4.0 * n, 4.0), dpi=110, squeeze=False)
    fig.suptitle(title)
    return fig, axes[0]


def _label_axes(ax, plane: int) -> None:
    _, r, c = SLICE_PLANES[plane]
    ax.set_title(SLICE_PLANES[plane][0], fontsize=9)
    ax.set_xlabel(f"{AXIS_NAMES[c]} (um)", fontsize=8)
    ax.set_ylabel(f"{AXIS_NAMES[r]} (um)", fontsize=8)
    ax.tick_params(labelsize=7)


def phase_slices(labels: np.ndarray, phases, voxel_size_um, path, title: str = "phases") -> Path:
    """Three orthogonal mid-plane slices of a label volume coloured by phase, with a legend and scale bar.

    ``phases`` is a :class:`~microsim.PhaseTable` (or any iterable of objects with
    ``name`` and ``label``).
    """
    plt = _pyplot()
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch
    table = list(phases)
    lut = np.zeros(256, dtype=np.int16)
    for i, p in enumerate(table):
        lut[p.label] = i
    colours = [PHASE_COLOURS[i % len(PHASE_COLOURS)] for i in range(len(table))]
    cmap = ListedColormap(colours)
    fig, axes = _slice_axes(plt, title)
    for k, sl in enumerate(orthogonal_slices(labels)):
        _, r, c = SLICE_PLANES[k]
        ext = _extent(sl.shape, r, c, voxel_size_um)
        axes[k].imshow(lut[sl], cmap=cmap, vmin=-0.5, vmax=len(table) - 0.5, extent=ext, interpolation="nearest")
        _label_axes(axes[k], k)
        _scale_bar(axes[k], ext[1], ext[2])
    fig.legend(handles=[Patch(color=colours[i], label=f"{p.name} ({p.label})") for i, p in enumerate(table)],
               loc="lower center", ncol=min(len(table), 6), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return _save(fig, path)


def not_converged_mark(fig) -> None:
    """Write "NOT CONVERGED" across a figure: what it shows is the last iterate of a solve, not a result."""
    fig.text(0.5, 0.5, "NOT CONVERGED\nlast iterate, not a result", ha="center", va="center", fontsize=26,
             color="#d62728", alpha=0.75, rotation=18, fontweight="bold", zorder=100,
             bbox=dict(facecolor="white", alpha=0.6, edgecolor="#d62728"))


def field_slices(slices: Sequence[np.ndarray], voxel_size_um, path, title: str, units: str,
                 log: bool = False, cmap: str = "viridis", converged: bool = True) -> Path:
    """Three orthogonal slices of a scalar field (as from :func:`orthogonal_slices`), one colour scale.

    NaN voxels (outside the conducting network) are drawn grey. ``log`` uses a
    logarithmic colour scale over the positive values (for current densities).
    A field of a solve that did not converge (``converged=False``) is marked so on
    the figure itself.
    """
    plt = _pyplot()
    from matplotlib.colors import LogNorm, Normalize
    finite = np.concatenate([np.asarray(s, dtype=np.float64)[np.isfinite(s)].ravel() for s in slices])
    if log:
        pos = finite[finite > 0]
        hi = float(pos.max()) if pos.size else 1.0
        lo = max(float(np.percentile(pos, 1)) if pos.size else hi * 1e-3, hi * 1e-4)
        norm = LogNorm(vmin=lo, vmax=hi if hi > lo else lo * 10)
    else:
        lo = float(finite.min()) if finite.size else 0.0
        hi = float(finite.max()) if finite.size else 1.0
        norm = Normalize(vmin=lo, vmax=hi if hi > lo else lo + 1.0)
    cm = plt.get_cmap(cmap).with_extremes(bad="#bdbdbd")
    fig, axes = _slice_axes(plt, title)
    image = None
    for k, sl in enumerate(slices):
        _, r, c = SLICE_PLANES[k]
        ext = _extent(sl.shape, r, c, voxel_size_um)
        data = np.asarray(sl, dtype=np.float64)
        if log:
            data = np.where(data > 0, data, np.nan)
        image = axes[k].imshow(np.ma.masked_invalid(data), cmap=cm, norm=norm, extent=ext, interpolation="nearest")
        _label_axes(axes[k], k)
        _scale_bar(axes[k], ext[1], ext[2])
    fig.tight_layout(rect=(0, 0, 0.92, 1))
    cax = fig.add_axes((0.93, 0.15, 0.015, 0.7))
    fig.colorbar(image, cax=cax).set_label(units, fontsize=8)
    if not converged:
        not_converged_mark(fig)
    return _save(fig, path)


def profiles(axis: str, positions_um: np.ndarray, phase_fractions: Mapping[str, np.ndarray],
             currents: Mapping[str, np.ndarray], path, unconverged: Sequence[str] = ()) -> Path:
    """Through-thickness profiles: phase fractions per slice, and the current carried by each slice.

    ``currents`` maps a label (e.g. 'ionic x') to the mean current density along
    that solve's transport direction over each slice (any unit); each curve is
    drawn relative to its own mean over the slices, so carriers whose
    conductivities differ by decades share one axis. Curves named in
    ``unconverged`` come from solves that did not converge: they are drawn dashed,
    labelled so, and the figure carries the "not converged" mark.
    """
    plt = _pyplot()
    n = 2 if currents else 1
    fig, axes = plt.subplots(1, n, figsize=(5.2 * n, 3.8), dpi=110, squeeze=False)
    ax = axes[0][0]
    for i, (name, frac) in enumerate(phase_fractions.items()):
        ax.plot(positions_um, frac, color=PHASE_COLOURS[i % len(PHASE_COLOURS)], label=name)
    ax.set_xlabel(f"{axis} (um)")
    ax.set_ylabel("volume fraction in the slice")
    ax.set_ylim(0, 1)
    ax.set_title(f"phase fractions along {axis}", fontsize=10)
    ax.legend(fontsize=8)
    if currents:
        ax = axes[0][1]
        for name, cur in currents.items():
            cur = np.asarray(cur, dtype=np.float64)
            mean = cur.mean()
            bad = name in unconverged
            ax.plot(positions_um, cur / mean if mean > 0 else cur, linestyle="--" if bad else "-",
                    label=f"{name} (NOT CONVERGED)" if bad else name)
        ax.axhline(1.0, color="0.6", linewidth=0.8, zorder=0)
        ax.set_xlabel(f"{axis} (um)")
        ax.set_ylabel("current density in the slice / its mean")
        ax.set_title(f"current per slice along {axis}", fontsize=10)
        ax.legend(fontsize=8)
    fig.tight_layout()
    if any(name in unconverged for name in currents):
        not_converged_mark(fig)
    return _save(fig, path)


def percolation_classes_figure(rows: Sequence[tuple[str, Sequence[np.ndarray]]], fractions: Sequence[dict],
                               voxel_size_um, path, class_names: Sequence[str] = CLASS_NAMES) -> Path:
    """Percolation classes: per network, three slices coloured percolating / dead-end / isolated,
    and a bar chart of the class fractions of every (carrier, direction).

    ``rows`` holds ``(title, slices)`` with slices of class codes 0..3 (see
    :data:`CLASS_NAMES`, or ``class_names``); ``fractions`` holds dicts with keys
    carrier, direction, fraction_percolating, fraction_dead_end, fraction_isolated.
    """
    plt = _pyplot()
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch
    n_rows = len(rows) + 1
    fig = plt.figure(figsize=(12.0, 3.6 * n_rows), dpi=100)
    cmap = ListedColormap(CLASS_COLOURS)
    for i, (title, slices) in enumerate(rows):
        for k, sl in enumerate(slices):
            ax = fig.add_subplot(n_rows, 3, 3 * i + k + 1)
            _, r, c = SLICE_PLANES[k]
            ext = _extent(sl.shape, r, c, voxel_size_um)
            ax.imshow(sl, cmap=cmap, vmin=-0.5, vmax=3.5, extent=ext, interpolation="nearest")
            _label_axes(ax, k)
            ax.set_title(f"{title}: {SLICE_PLANES[k][0]}", fontsize=9)
    ax = fig.add_subplot(n_rows, 1, n_rows)
    names = [f"{f['carrier']} {f['direction']}" for f in fractions]
    left = np.zeros(len(fractions))
    for key, colour, label in (("fraction_percolating", CLASS_COLOURS[1], "percolating"),
                               ("fraction_dead_end", CLASS_COLOURS[2], "dead-end"),
                               ("fraction_isolated", CLASS_COLOURS[3], "isolated")):
        vals = np.array([float(f[key]) for f in fractions])
        ax.barh(names, vals, left=left, color=colour, label=label)
        left += vals
    ax.set_xlim(0, 1)
    ax.set_xlabel("fraction of the conducting network")
    ax.invert_yaxis()
    fig.legend(handles=[Patch(color=CLASS_COLOURS[i], label=class_names[i]) for i in range(4)],
               loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return _save(fig, path)
