"""The padded label array and conductance tables of one (carrier, direction) solve; see :mod:`kernels.fv`."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kernels import fv

from ..volume import label_counts


@dataclass(frozen=True)
class Discretisation:
    """The padded arrays and tables of one (carrier, direction) solve; see :mod:`kernels.fv`."""

    lab: np.ndarray            # padded compact indices (uint8)
    g: np.ndarray              # (3, L, L) face conductances / sigma_scale
    sigma_scale: float         # S/m that a unit of g stands for (per um of area/length)
    axis: int
    periodic: np.ndarray       # (3,) bool: axes whose ghosts are periodic copies
    cell_problem: bool


def fill_compact_labels(lab: np.ndarray, labels: np.ndarray, keep: np.ndarray, to_index: np.ndarray,
                        ins: int) -> None:
    """Interior of the padded ``lab``: the compact index of each kept voxel, ``ins`` elsewhere.

    Runs a few planes at a time: indexing with the whole label array would make an
    8-byte copy of it.
    """
    step = max(1, (1 << 20) // max(labels[0].size, 1))
    for k in range(0, labels.shape[0], step):
        end = min(k + step, labels.shape[0])
        lab[1 + k:1 + end, 1:-1, 1:-1] = np.where(keep[k:end], to_index[labels[k:end]], np.uint8(ins))


def compact_indices(labels: np.ndarray, lut: np.ndarray):
    """Map label values to compact indices 0..L-1 for conducting labels; L = insulating, L+1 = Dirichlet."""
    present = np.flatnonzero(label_counts(labels))
    conducting = [int(v) for v in present if lut[v] > 0]
    ins = len(conducting)
    to_index = np.full(256, ins, dtype=np.uint8)
    for i, v in enumerate(conducting):
        to_index[v] = i
    sigma = np.zeros(ins + 2)
    sigma[:ins] = lut[conducting]
    return to_index, sigma, ins


def padded_labels(labels: np.ndarray, present_labels: np.ndarray, lut: np.ndarray, keep: np.ndarray, voxel_size_um,
                  axis: int, periodic_sides: bool, cell_problem: bool):
    """The padded compact label array (ghosts insulating), the conductance tables and the periodic axes.

    ``present_labels`` holds every label value of the whole volume (a slab of a
    distributed volume numbers its phases as the whole volume does). Returns
    ``(lab, g, sigma_scale, periodic, dirichlet_index)``.
    """
    to_index, sigma, ins = compact_indices(np.asarray(present_labels), lut)
    if ins > 250:
        raise ValueError("more than 250 conducting label values; merge phases with equal conductivity")
    dirichlet = ins + 1
    scale = float(sigma[:ins].max()) if ins else 1.0
    g = fv.conductance_tables(sigma / scale, np.asarray(voxel_size_um, dtype=np.float64), -1 if cell_problem else dirichlet)
    lab = np.full(tuple(n + 2 for n in labels.shape), ins, dtype=np.uint8)
    fill_compact_labels(lab, labels, keep, to_index, ins)
    periodic = np.array([cell_problem if a == axis else periodic_sides for a in range(3)], dtype=np.bool_)
    return lab, g, scale, periodic, dirichlet


def set_ghosts(lab: np.ndarray, periodic, axis: int, dirichlet: int, axes=(0, 1, 2)) -> None:
    """Ghost layers of ``axes``: periodic copies, fixed-potential faces along ``axis``, else insulating walls."""
    for a in axes:
        lo = [slice(1, -1)] * 3
        hi = [slice(1, -1)] * 3
        lo[a], hi[a] = 0, -1
        if periodic[a]:
            first = [slice(1, -1)] * 3
            last = [slice(1, -1)] * 3
            first[a], last[a] = 1, -2
            lab[tuple(lo)] = lab[tuple(last)]
            lab[tuple(hi)] = lab[tuple(first)]
        elif a == axis:
            lab[tuple(lo)] = dirichlet
            lab[tuple(hi)] = dirichlet


def discretise(labels: np.ndarray, lut: np.ndarray, voxel_size_um, axis: int, keep: np.ndarray,
               periodic_sides: bool = False, cell_problem: bool = False) -> Discretisation:
    """Build the padded label array and the conductance tables for one solve.

    ``keep`` marks the conducting voxels that stay in the system (the percolating
    ones); every other voxel becomes insulating.
    """
    lab, g, scale, periodic, dirichlet = padded_labels(labels, labels, lut, keep, voxel_size_um, axis, periodic_sides,
                                                       cell_problem)
    set_ghosts(lab, periodic, axis, dirichlet, axes=(0, 1, 2))
    return Discretisation(lab, g, scale, axis, periodic, cell_problem)
