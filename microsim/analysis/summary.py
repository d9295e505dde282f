"""Everything that can be said about a volume without a transport solve, in one call."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from ..arrays import as_volume
from ..conductivity import BRUGGEMAN_ALPHA
from ..phases import CARRIERS
from ..progress import Progress
from ..volume import Volume, label_counts
from .active import ActiveMaterialResult, active_material, default_roles, parse_face
from .bruggeman import tau_bruggeman
from .clusters import ClusterPercolation, phase_percolation
from .fractions import VolumeFractions, phase_set, union_name, volume_fractions
from .interfaces import InterfaceAreas, interface_areas
from .psd import particle_size_distribution
from .rev import REVResult, representative_volume


@dataclass(frozen=True)
class VolumeAnalysis:
    """The results of :func:`analyze_volume`; ``skipped`` says why a part is missing."""

    shape: tuple
    voxel_size_um: tuple
    provenance: tuple
    fractions: VolumeFractions
    percolation: tuple
    active: ActiveMaterialResult | None
    interfaces: InterfaceAreas | None
    bruggeman: tuple
    rev: REVResult | None
    psd: tuple
    skipped: dict = field(default_factory=dict)

    def percolation_of(self, name: str) -> ClusterPercolation:
        for p in self.percolation:
            if p.name == name:
                return p
        raise KeyError(f"no percolation result for {name!r}")

    def to_dict(self) -> dict:
        return {"shape": list(self.shape), "voxel_size_um": list(self.voxel_size_um),
                "provenance": list(self.provenance), "fractions": self.fractions.to_dict(),
                "percolation": [p.to_dict() for p in self.percolation],
                "active_material": None if self.active is None else self.active.to_dict(),
                "interfaces": None if self.interfaces is None else self.interfaces.to_dict(),
                "bruggeman": list(self.bruggeman), "rev": None if self.rev is None else self.rev.to_dict(),
                "psd": [p.to_dict() for p in self.psd], "skipped": dict(self.skipped)}


def analyze_volume(volume: Volume, unions: Iterable[str] = (), directions: str = "all", connectivity: int = 6,
                   active=None, electrolyte=None, electronic=None, separator_face: str = "z=0",
                   collector_face: str = "z=end", smoothing: str = "constrained", psd_phases=None,
                   psd_method: str = "auto", psd_bins: int = 24, rev_sizes=None, rev_samples: int = 8,
                   rev_eps_tol: float = 0.02, alpha: float = BRUGGEMAN_ALPHA, seed: int = 0,
                   progress: Progress | None = None, sigma=None, phase_table=None, voxel_size_um=None,
                   axes: str = "zyx") -> VolumeAnalysis:
    """Volume fractions, percolation, active material, interfaces, Bruggeman estimates, REV of the
    volume fractions and particle sizes of ``volume``.

    Parameters
    ----------
    unions : phase selections
        Extra unions of phases to analyse (e.g. ``"NMC+CBD"``). The networks that
        conduct each carrier (every phase with a nonzero conductivity) are always added.
    directions, connectivity
        For the percolation analysis.
    active, electrolyte, electronic, separator_face, collector_face
        See :func:`~microsim.analysis.active.active_material`; when the roles cannot be
        found in the phase table this part is skipped and ``skipped`` says why.
    smoothing : str
        See :func:`~microsim.analysis.interfaces.interface_areas`.
    psd_phases : phase selections, optional
        Phases for the size distribution (default: ``active`` if given, else the phases
        whose material the table marks as active).
    psd_method, psd_bins
        See :func:`~microsim.analysis.psd.particle_size_distribution`.
    rev_sizes, rev_samples, rev_eps_tol, seed
        See :func:`~microsim.analysis.rev.representative_volume` (volume fractions only).
    alpha : float
        Bruggeman exponent of the tau_Bruggeman estimates.
    progress : Progress, optional
        Prints one line per step.
    sigma, phase_table, voxel_size_um, axes
        For a numpy array instead of a Volume: see :func:`microsim.arrays.as_volume`
        (``phase_table`` is its ``phases``; a boolean array needs none of them).
    """
    volume = as_volume(volume, sigma=sigma, phases=phase_table, voxel_size_um=voxel_size_um, axes=axes)
    say = (lambda text: progress.line(text, force=True)) if progress is not None else (lambda text: None)
    # check every name and face before the long work
    for spec in (active, electrolyte, electronic):
        if spec is not None:
            phase_set(volume, spec)
    for spec in ([psd_phases] if isinstance(psd_phases, str) else psd_phases or ()):
        phase_set(volume, spec)
    parse_face(separator_face)
    parse_face(collector_face)
    skipped = {}
    counts = label_counts(volume.labels)
    present = [p for p in volume.phases if counts[p.label] > 0]
    selections = [(p.name,) for p in present]
    networks = {}
    for carrier in CARRIERS:
        names = tuple(p.name for p in present if p.sigma_S_per_m(carrier) > 0)
        if names:
            networks[carrier] = names
    for spec in list(unions) + list(networks.values()):
        names = phase_set(volume, spec)
        if names not in selections:
            selections.append(names)
    say("volume fractions")
    fractions = volume_fractions(volume, [s for s in selections if len(s) > 1])
    perc = []
    for k, names in enumerate(selections):
        say(f"percolation of {union_name(names)} ({k + 1}/{len(selections)})")
        perc.append(phase_percolation(volume, names, directions, connectivity))
    say("active material")
    act = None
    try:
        act = active_material(volume, active, electrolyte, electronic, separator_face, collector_face, connectivity)
    except ValueError as exc:
        if active is not None or electrolyte is not None or electronic is not None:
            raise
        skipped["active_material"] = str(exc)
    say("interface areas (marching cubes)")
    inter = interface_areas(volume, smoothing=smoothing) if len(present) > 1 else None
    if inter is None:
        skipped["interfaces"] = "only one phase present"
    brugg = []
    for carrier, names in networks.items():
        eps = fractions[union_name(names)] if len(names) > 1 else fractions[names[0]]
        p = perc[selections.index(names)]
        brugg.append({"carrier": carrier, "conducting_phases": list(names), "eps": eps, "alpha": alpha,
                      "tau_bruggeman": tau_bruggeman(eps, alpha),
                      "eps_percolating": {d.direction: d.fraction_percolating * eps for d in p.directions}})
    say("representative volume (volume fractions)")
    rev = representative_volume(volume, rev_sizes, rev_samples, eps_tol=rev_eps_tol, seed=seed)
    psd = []
    if psd_phases is None:
        # the phases named active for the active-material analysis, else those the table marks active
        psd_phases = [active] if active is not None else default_roles(volume)["active"]
        if not psd_phases:
            skipped["psd"] = "no active-material phase in the phase table; choose phases for the size distribution"
    for spec in ([psd_phases] if isinstance(psd_phases, str) else psd_phases):
        names = phase_set(volume, spec)
        if not volume.mask(names).any():
            skipped[f"psd {union_name(names)}"] = "phase absent from the volume"
            continue
        say(f"size distribution of {union_name(names)} ({psd_method})")
        bar = None if progress is None else (lambda done, total, n=union_name(names):
                                             progress.bar(f"local thickness of {n}", done, total))
        psd.append(particle_size_distribution(volume, union_name(names), psd_method, psd_bins, progress=bar))
    return VolumeAnalysis(volume.shape, volume.voxel_size_um, volume.provenance, fractions, tuple(perc), act, inter,
                          tuple(brugg), rev, tuple(psd), skipped)
