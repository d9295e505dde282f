"""Plain numpy arrays as volumes: the one place where an array becomes a :class:`~microsim.Volume`.

Every entry point that works on a volume (``conductivity``, ``random_walk``,
``analyze_volume``, ``phase_percolation``) calls :func:`as_volume` first, so
each of them takes

* a :class:`~microsim.Volume` (returned as it is);
* a boolean array: True conducts with sigma 1 S/m (both carriers), False insulates;
* an integer array that holds only 0 and 1: read like the boolean array;
* an integer array with ``sigma={label: S_per_m}`` (both carriers), or
  ``ionic={label: S_per_m}`` and/or ``electronic={label: S_per_m}``, or
  ``conducting=[label, ...]`` (sigma 1), or ``phases=`` a phase table
  (:class:`~microsim.PhaseTable`, dict or TOML path);
* a path of a stack on disk (TIFF, HDF5, .npy, ...), read with its stored table
  unless one of the options above is given.

Labels missing from the mappings insulate. The voxel size is 1 um unless
``voxel_size_um`` is given. ``axes`` names the order in which the array is
stored: 'zyx' (numpy and microsim, the default) or e.g. 'xyz' (Julia, MATLAB,
Fortran-ordered exports); the array and a three-valued voxel size, given in the
same stored order, are brought to (z, y, x) and the reorder is recorded in the
provenance.

Examples
--------
>>> import numpy as np
>>> img = np.zeros((4, 4, 4), bool)
>>> img[:, :, 1] = True
>>> v = as_volume(img)
>>> v.phases.names, v.voxel_size_um
(('insulating', 'conducting'), (1.0, 1.0, 1.0))
>>> as_volume(np.array([[[0, 2, 5]]]), sigma={2: 0.5}).phases["label_2"].sigma_ionic_S_per_m
0.5
>>> as_volume(np.zeros((2, 3, 4), np.uint8), axes="xyz").shape
(4, 3, 2)
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from .phases import Phase, PhaseTable, phase_table
from .volume import Volume, VolumeError, as_label_array, check_voxel_size, label_counts

#: names of the two phases of a boolean array
BOOL_NAMES = ("insulating", "conducting")


def label_name(value: int) -> str:
    """Name of the phase of label ``value`` in a table built from label values."""
    return f"label_{int(value)}"


def parse_axes(axes: str) -> tuple[int, int, int]:
    """The permutation that brings an array stored in ``axes`` order to (z, y, x).

    >>> parse_axes("xyz")
    (2, 1, 0)
    """
    text = str(axes).strip().lower()
    if sorted(text) != ["x", "y", "z"]:
        raise VolumeError(f"axes {axes!r} is not an order of x, y and z; give 'zyx' (numpy, the default) "
                          "or 'xyz' (Julia, MATLAB, Fortran order)")
    return tuple(text.index(c) for c in "zyx")


def reorder_axes(array: np.ndarray, axes: str = "zyx", voxel_size_um=None):
    """``array`` (and a three-valued voxel size in the same stored order) in (z, y, x) order.

    Returns (array, voxel_size_um, note); ``note`` is None when nothing moved.
    """
    perm = parse_axes(axes)
    if perm == (0, 1, 2):
        return array, voxel_size_um, None
    arr = np.asarray(array)
    if arr.ndim != 3:
        raise VolumeError(f"axes={axes!r} needs a 3D array; this one has shape {arr.shape}")
    arr = np.ascontiguousarray(arr.transpose(perm))
    if voxel_size_um is not None and not np.isscalar(voxel_size_um):
        vs = tuple(voxel_size_um)
        if len(vs) == 3:
            voxel_size_um = tuple(vs[p] for p in perm)
    return arr, voxel_size_um, f"array stored with axes ({', '.join(axes.lower())}): transposed to (z, y, x)"


def conducting_table(present: Iterable[int], conducting: Iterable[int] = (), *, sigma: Mapping | None = None,
                     ionic: Mapping | None = None, electronic: Mapping | None = None,
                     names: Mapping[int, str] | None = None) -> PhaseTable:
    """A phase table for the label values ``present``: one phase per label, named ``label_N``.

    ``conducting`` labels get sigma 1 S/m for both carriers; ``sigma`` maps labels to a
    conductivity for both carriers, ``ionic`` and ``electronic`` to one carrier's. Any
    label the arguments do not name insulates. ``names`` overrides phase names.
    """
    present = sorted({int(v) for v in present})
    ion = {int(v): 1.0 for v in conducting}
    ele = dict(ion)
    for mapping, targets in ((sigma, (ion, ele)), (ionic, (ion,)), (electronic, (ele,))):
        for key, value in (mapping or {}).items():
            try:
                label = int(key)
            except (TypeError, ValueError):
                raise VolumeError(f"conductivity key {key!r} is not a label value; map label values (integers) "
                                  "to S/m, e.g. sigma={1: 1.0}") from None
            for t in targets:
                t[label] = value
    named = set(ion) | set(ele)
    missing = sorted(named - set(present))
    if missing:
        raise VolumeError(f"label value(s) {', '.join(map(str, missing))} given a conductivity are not in the volume "
                          f"(it holds {', '.join(map(str, present))})")
    names = names or {}
    return PhaseTable(tuple(Phase(names.get(v, label_name(v)), v, sigma_ionic_S_per_m=ion.get(v, 0.0),
                                  sigma_electronic_S_per_m=ele.get(v, 0.0)) for v in present))


def _binary_labels(arr: np.ndarray) -> np.ndarray | None:
    """0/1 uint8 labels of a boolean array, or of a numeric one that holds only 0 and 1; else None."""
    if arr.dtype == bool:
        return arr.astype(np.uint8)
    if arr.dtype.kind in "iuf" and arr.size:
        lo, hi = arr.min(), arr.max()
        if lo >= 0 and hi <= 1 and (arr.dtype.kind != "f" or bool(np.all((arr == 0) | (arr == 1)))):
            return arr.astype(np.uint8)
    return None


def as_volume(data, *, sigma=None, ionic: Mapping | None = None, electronic: Mapping | None = None,
              conducting: Iterable[int] | None = None, phases=None, voxel_size_um=None,
              axes: str = "zyx") -> Volume:
    """A :class:`~microsim.Volume` from a Volume, a numpy array or a stack file; see the module text.

    Parameters
    ----------
    data : Volume, ndarray (3D) or path
    sigma : float or {label: S_per_m}, optional
        A float: the conductivity of the True voxels of a binary array. A mapping: the
        conductivity of each label, for both carriers.
    ionic, electronic : {label: S_per_m}, optional
        Conductivities of one carrier.
    conducting : labels, optional
        These labels conduct with sigma 1 S/m (both carriers), the rest insulate.
    phases : PhaseTable, dict or TOML path, optional
        A full phase table instead of the shortcuts above.
    voxel_size_um : float or three values, optional
        Default 1 um for an array (the file's for a path); three values are in the
        stored axis order.
    axes : str
        Axis order of the stored array, 'zyx' (default) or 'xyz'.
    """
    shortcuts = sigma is not None or ionic is not None or electronic is not None or conducting is not None
    if shortcuts and phases is not None:
        raise VolumeError("give either phases= (a full phase table) or sigma=/ionic=/electronic=/conducting=, "
                          "not both")
    if isinstance(data, Volume):
        if shortcuts or phases is not None or voxel_size_um is not None or parse_axes(axes) != (0, 1, 2):
            raise VolumeError("a Volume already has its phase table, voxel size and axis order; pass its "
                              "labels (volume.labels) to rebuild it with other options, or use volume.derive()")
        return data
    if isinstance(data, (str, Path)):
        from .io import load_stack
        loaded = load_stack(data, voxel_size_um=None if voxel_size_um is None or parse_axes(axes) != (0, 1, 2)
                            else voxel_size_um)
        vs = loaded.voxel_size_um if voxel_size_um is None else voxel_size_um
        table = phases if (phases is not None or shortcuts) else loaded.info.phases
        if table is None and not shortcuts and _binary_labels(loaded.array) is None:
            raise VolumeError(f"{data}: the file stores no phase table; give phases=, sigma= or conducting=")
        return _from_array(loaded.array, sigma, ionic, electronic, conducting, table, vs, axes, loaded.provenance)
    return _from_array(data, sigma, ionic, electronic, conducting, phases, voxel_size_um, axes, ())


def _from_array(data, sigma, ionic, electronic, conducting, phases, voxel_size_um, axes, provenance) -> Volume:
    arr = np.asarray(data)
    arr, voxel_size_um, note = reorder_axes(arr, axes, voxel_size_um)
    prov = tuple(provenance) + ((note,) if note else ())
    vs = check_voxel_size(1.0 if voxel_size_um is None else voxel_size_um)
    if phases is not None:
        return Volume(as_label_array(arr), phase_table(phases), vs, prov)
    mappings = ionic is not None or electronic is not None or conducting is not None or isinstance(sigma, Mapping)
    binary = _binary_labels(arr)
    if binary is not None and not mappings:
        value = 1.0 if sigma is None else float(sigma)
        present = np.flatnonzero(label_counts(binary, 2)[:2])
        table = conducting_table(present, sigma={1: value} if 1 in present else None,
                                 names=dict(enumerate(BOOL_NAMES)))
        return Volume(binary, table, vs, prov + ("boolean array: True conducts",))
    if not mappings:
        if sigma is not None:
            raise VolumeError("sigma as one number is for a boolean (0/1) array; for integer labels give "
                              "sigma={label: S_per_m}")
        raise VolumeError("an integer label array needs to know what conducts: give sigma={label: S_per_m}, "
                          "ionic=/electronic= mappings, conducting=[labels] or phases= a phase table")
    labels = as_label_array(arr if binary is None else binary)
    present = np.flatnonzero(label_counts(labels))
    table = conducting_table(present, conducting or (), sigma=sigma if isinstance(sigma, Mapping) else None,
                             ionic=ionic, electronic=electronic)
    return Volume(labels, table, vs, prov)


def conducting_labels(text: str) -> tuple[int, ...]:
    """Parse the CLI's ``--conducting 1`` or ``--conducting 85,170``.

    >>> conducting_labels("85,170")
    (85, 170)
    """
    try:
        values = tuple(int(t) for t in str(text).split(",") if t.strip())
    except ValueError:
        raise VolumeError(f"--conducting {text!r}: give label values, e.g. --conducting 1 or --conducting 85,170") \
            from None
    if not values or not all(0 <= v <= 255 for v in values):
        raise VolumeError(f"--conducting {text!r}: give label values 0..255, e.g. --conducting 1")
    return values
