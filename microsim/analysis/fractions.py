"""Volume fractions of phases and of unions of phases."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from ..phases import PhaseTableError
from ..volume import Volume


def phase_set(volume: Volume, spec: str | Iterable[str]) -> tuple[str, ...]:
    """Normalise a phase selection to a tuple of phase names of ``volume``.

    ``spec`` is one name, a union written ``"NMC+CBD"`` (or with commas), or a
    list of names. Unknown names raise :class:`~microsim.PhaseTableError`.

    >>> from microsim import Volume
    >>> v = Volume(np.zeros((2, 2, 2), np.uint8), {"a": {"label": 0}, "b": {"label": 1}})
    >>> phase_set(v, "a+b")
    ('a', 'b')
    """
    if isinstance(spec, str):
        names = [s.strip() for s in spec.replace(",", "+").split("+") if s.strip()]
    else:
        names = [str(s) for s in spec]
    if not names:
        raise PhaseTableError("empty phase selection; name one phase or a union such as NMC+CBD")
    out = []
    for name in names:
        if name not in volume.phases:
            raise PhaseTableError(f"no phase named {name!r}; the phase table has {', '.join(volume.phases.names)}")
        if name not in out:
            out.append(name)
    return tuple(out)


def union_name(names: Sequence[str]) -> str:
    """The display name of a union of phases: ``"NMC+CBD"``."""
    return "+".join(names)


@dataclass(frozen=True)
class VolumeFractions:
    """Volume fractions (0..1 of the whole volume) of phases and of unions of phases.

    Attributes
    ----------
    phases : dict name -> fraction
        Every phase of the table (0 for a phase absent from the volume).
    unions : dict "A+B" -> fraction
        The requested unions.
    n_voxels : int
    volume_um3 : float
        Volume of the whole box in cubic micrometres.
    """

    phases: dict
    unions: dict
    n_voxels: int
    volume_um3: float

    def __getitem__(self, key: str) -> float:
        if key in self.phases:
            return self.phases[key]
        return self.unions[key]

    def to_dict(self) -> dict:
        return {"phases": dict(self.phases), "unions": dict(self.unions), "n_voxels": self.n_voxels,
                "volume_um3": self.volume_um3}


def volume_fractions(volume: Volume, unions: Iterable[str | Sequence[str]] = ()) -> VolumeFractions:
    """Volume fraction of every phase and of each requested union of phases.

    Parameters
    ----------
    volume : Volume
    unions : iterable of phase selections
        Each a union such as ``"NMC+CBD"`` or ``("NMC", "CBD")``.

    Examples
    --------
    >>> from microsim import Volume
    >>> lab = np.zeros((4, 4, 4), np.uint8); lab[:1] = 1; lab[1:2] = 2
    >>> v = Volume(lab, {"SE": {"label": 0}, "NMC": {"label": 1}, "CBD": {"label": 2}})
    >>> f = volume_fractions(v, ["NMC+CBD"])
    >>> f["NMC"], f["NMC+CBD"]
    (0.25, 0.5)
    """
    counts = np.bincount(volume.labels.ravel(), minlength=256)
    total = volume.labels.size
    phases = {p.name: float(counts[p.label]) / total for p in volume.phases}
    out = {}
    for spec in unions:
        names = phase_set(volume, spec)
        out[union_name(names)] = float(counts[list(volume.phases.labels_of(names))].sum()) / total
    dz, dy, dx = volume.voxel_size_um
    return VolumeFractions(phases, out, int(total), float(total * dz * dy * dx))
