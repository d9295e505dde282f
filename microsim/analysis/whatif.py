"""What-if operations: change a volume and see what the change does to transport.

Each operation returns a new :class:`~microsim.Volume` (the input is left as it
is) whose provenance ends with a line saying what was done, so results computed
on it can be traced to the operation.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np
from scipy import ndimage

from ..materials import get_material
from ..phases import check_carrier
from ..volume import Volume
from .fractions import phase_set, union_name


def pore_phases(volume: Volume) -> tuple[str, ...]:
    """Phases that are empty pores: material preset of kind 'void', or named 'pore', 'void' or 'pores'."""
    out = []
    for p in volume.phases:
        kind = None
        if p.material is not None:
            try:
                kind = get_material(p.material).kind
            except ValueError:
                kind = None
        if kind == "void" or p.name.lower() in ("pore", "pores", "void", "voids"):
            out.append(p.name)
    return tuple(out)


def _labels_of(volume: Volume, names) -> list[int]:
    return list(volume.phases.labels_of(names))


def fill_pores(volume: Volume, phase: str, pores: str | Iterable[str] | None = None) -> Volume:
    """Fill the pores with ``phase`` (e.g. the solid electrolyte).

    Parameters
    ----------
    volume : Volume
    phase : str
        The phase that takes the pore voxels.
    pores : phase selection, optional
        The pore phase(s); default: phases with a 'pore' material preset or named pore/void.

    Examples
    --------
    >>> lab = np.array([0, 1, 2, 2]).reshape(1, 1, 4).astype(np.uint8)
    >>> v = Volume(lab, {"pore": {"label": 0, "material": "pore"}, "SE": {"label": 1}, "NMC": {"label": 2}})
    >>> fill_pores(v, "SE").labels.ravel().tolist()
    [1, 1, 2, 2]
    """
    target = phase_set(volume, phase)
    if len(target) != 1:
        raise ValueError(f"fill the pores with one phase, not {union_name(target)}")
    names = phase_set(volume, pores) if pores is not None else pore_phases(volume)
    if not names:
        raise ValueError("no pore phase in the phase table (none has material 'pore' or is named pore/void); "
                         "name it with pores=...")
    if target[0] in names:
        raise ValueError(f"cannot fill the pores with the pore phase {target[0]!r}; choose another phase")
    mask = volume.mask(names)
    labels = np.where(mask, np.uint8(volume.phases[target[0]].label), volume.labels)
    return volume.derive(labels=labels, note=f"fill_pores: {union_name(names)} -> {target[0]} "
                                             f"({mask.mean():.6g} of the volume)")


def convert_phase(volume: Volume, source: str | Iterable[str], target: str) -> Volume:
    """Relabel every voxel of ``source`` (one phase or a union) as phase ``target``.

    >>> lab = np.array([0, 1, 2]).reshape(1, 1, 3).astype(np.uint8)
    >>> v = Volume(lab, {"SE": {"label": 0}, "NMC": {"label": 1}, "CBD": {"label": 2}})
    >>> convert_phase(v, "CBD", "SE").labels.ravel().tolist()
    [0, 1, 0]
    """
    names = phase_set(volume, source)
    tgt = phase_set(volume, target)
    if len(tgt) != 1:
        raise ValueError(f"convert to one phase, not {union_name(tgt)}")
    mask = volume.mask(names)
    labels = np.where(mask, np.uint8(volume.phases[tgt[0]].label), volume.labels)
    return volume.derive(labels=labels, note=f"convert_phase: {union_name(names)} -> {tgt[0]} "
                                             f"({mask.mean():.6g} of the volume)")


def set_conductivity(volume: Volume, phase: str, carrier: str, sigma_S_per_m: float) -> Volume:
    """Give ``phase`` a new conductivity for ``carrier`` ('ionic' or 'electronic'), in S/m.

    The labels stay as they are; use it e.g. to make the binder ion-conducting.

    >>> v = Volume(np.zeros((1, 1, 1), np.uint8), {"binder": {"label": 0}})
    >>> set_conductivity(v, "binder", "ionic", 0.01).phases["binder"].sigma_ionic_S_per_m
    0.01
    """
    check_carrier(carrier)
    name = phase_set(volume, phase)
    if len(name) != 1:
        raise ValueError(f"set the conductivity of one phase, not {union_name(name)}")
    old = volume.phases[name[0]].sigma_S_per_m(carrier)
    table = volume.phases.with_conductivity(name[0], carrier, sigma_S_per_m)
    return volume.derive(phases=table, note=f"set_conductivity: {name[0]} {carrier} {old:g} -> "
                                            f"{float(sigma_S_per_m):g} S/m")


def _check_n(n) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n = {n!r} voxels must be an integer >= 0")
    return int(n)


def erode_phase(volume: Volume, phase: str | Iterable[str], n: int, into: str | None = None) -> Volume:
    """Strip ``n`` voxels off the surface of ``phase``.

    A voxel is removed when a voxel of another phase lies within Euclidean
    distance ``n`` (in voxel units) of it; the faces of the box do not count as
    a surface. Removed voxels take the phase ``into``, or, by default, the phase
    of the nearest voxel outside ``phase``.

    Examples
    --------
    A 10-voxel cube eroded by 2 becomes a 6-voxel cube:

    >>> lab = np.zeros((14, 14, 14), np.uint8); lab[2:12, 2:12, 2:12] = 1
    >>> v = Volume(lab, {"SE": {"label": 0}, "NMC": {"label": 1}})
    >>> int((erode_phase(v, "NMC", 2).labels == 1).sum())
    216
    """
    n = _check_n(n)
    names = phase_set(volume, phase)
    mask = volume.mask(names)
    if n == 0 or mask.all() or not mask.any():
        return volume.derive(note=f"erode_phase: {union_name(names)} by {n} voxels (nothing changed)")
    if into is None:
        dist, idx = ndimage.distance_transform_edt(mask, return_indices=True)
        removed = mask & (dist <= n)
        fill = volume.labels[tuple(i[removed] for i in idx)]
        del idx
    else:
        tgt = phase_set(volume, into)
        if len(tgt) != 1 or tgt[0] in names:
            raise ValueError(f"erode into one phase other than {union_name(names)}, not {union_name(tgt)}")
        removed = mask & (ndimage.distance_transform_edt(mask) <= n)
        fill = np.uint8(volume.phases[tgt[0]].label)
    labels = volume.labels.copy()
    labels[removed] = fill
    return volume.derive(labels=labels, note=f"erode_phase: {union_name(names)} by {n} voxels -> "
                                             f"{into or 'nearest phase'} ({removed.mean():.6g} of the volume)")


def dilate_phase(volume: Volume, phase: str, n: int, into: str | Iterable[str] | None = None) -> Volume:
    """Grow ``phase`` by ``n`` voxels.

    Every voxel within Euclidean distance ``n`` (in voxel units) of ``phase``
    becomes ``phase``, if it belongs to one of the phases ``into`` (default:
    any other phase), e.g. grow the carbon-binder into the pores only.

    Examples
    --------
    One voxel dilated by 2 becomes the digital ball of radius 2 (33 voxels):

    >>> lab = np.zeros((9, 9, 9), np.uint8); lab[4, 4, 4] = 1
    >>> v = Volume(lab, {"SE": {"label": 0}, "CBD": {"label": 1}})
    >>> int((dilate_phase(v, "CBD", 2).labels == 1).sum())
    33
    """
    n = _check_n(n)
    names = phase_set(volume, phase)
    if len(names) != 1:
        raise ValueError(f"dilate one phase, not {union_name(names)}")
    mask = volume.mask(names)
    if n == 0 or not mask.any() or mask.all():
        return volume.derive(note=f"dilate_phase: {names[0]} by {n} voxels (nothing changed)")
    grow = ~mask & (ndimage.distance_transform_edt(~mask) <= n)
    if into is not None:
        allowed = phase_set(volume, into)
        grow &= volume.mask(allowed)
    labels = volume.labels.copy()
    labels[grow] = volume.phases[names[0]].label
    where = "any phase" if into is None else union_name(allowed)
    return volume.derive(labels=labels, note=f"dilate_phase: {names[0]} by {n} voxels into {where} "
                                             f"({grow.mean():.6g} of the volume)")
