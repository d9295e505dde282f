"""Electrochemically active material: particles that both ions and electrons can reach.

An active-material particle can take part in the reaction only when it has an
electronic path to the current collector and an ionic path, through the
electrolyte, to the separator. Here

* the *ionic network* is the set of electrolyte clusters that touch the
  separator face;
* the *electronic network* is the set of clusters of the electron-conducting
  phases (active material, carbon, ...) that touch the current-collector face;
* an active-material *particle* is a connected cluster of the active phase(s).
  It is electronically connected when one of its voxels is in the electronic
  network or shares a face with it, and ionically connected when one of its
  voxels shares a face with the ionic network. Lithium moves through the
  particle's bulk, so a whole particle is active when both hold.

An active-material / electrolyte voxel face is *active* when its particle is
electronically connected and its electrolyte voxel is in the ionic network.
Interface shares come from face counts weighted by the face areas (anisotropic
voxels); a share is a ratio of two such counts, so the overestimate of face
counting (see :mod:`microsim.analysis.interfaces`) cancels to first order.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from ..materials import get_material
from ..percolation import label_clusters
from ..volume import AXES, Volume
from .clusters import touching
from .fractions import phase_set


class FaceError(ValueError):
    """A face specification is malformed."""


def parse_face(spec: str | tuple) -> tuple[str, int]:
    """Turn ``"z=0"`` or ``"x=end"`` into ``(direction, side)`` with side 0 or -1.

    >>> parse_face("z=end"), parse_face(("x", 0))
    (('z', -1), ('x', 0))
    """
    if isinstance(spec, tuple) and len(spec) == 2 and spec[0] in AXES and spec[1] in (0, -1):
        return spec[0], int(spec[1])
    text = str(spec).replace(" ", "").lower()
    axis, _, where = text.partition("=")
    if axis in AXES and where in ("0", "end", "-1"):
        return axis, 0 if where == "0" else -1
    raise FaceError(f"face {spec!r} is not AXIS=0 or AXIS=end (for example z=0 for the first z layer)")


def face_name(face: tuple[str, int]) -> str:
    return f"{face[0]}={'0' if face[1] == 0 else 'end'}"


def _kind(phase) -> str | None:
    if phase.material is None:
        return None
    try:
        return get_material(phase.material).kind
    except ValueError:
        return None


def default_roles(volume: Volume) -> dict[str, tuple[str, ...]]:
    """Phases playing each role, from the phase table: active and electrolyte by the material
    preset's kind, the electronic network = every phase with a nonzero electronic conductivity."""
    phases = list(volume.phases)
    return {"active": tuple(p.name for p in phases if _kind(p) == "active"),
            "electrolyte": tuple(p.name for p in phases if _kind(p) == "electrolyte"),
            "electronic": tuple(p.name for p in phases if p.sigma_electronic_S_per_m > 0)}


def resolve_roles(volume: Volume, active=None, electrolyte=None, electronic=None) -> dict[str, tuple[str, ...]]:
    """Phase names of the three roles; explicit selections win over the phase table's defaults."""
    roles = default_roles(volume)
    given = {"active": active, "electrolyte": electrolyte, "electronic": electronic}
    flags = {"active": "--active", "electrolyte": "--electrolyte", "electronic": "--electronic"}
    out = {}
    for role, spec in given.items():
        names = phase_set(volume, spec) if spec is not None else roles[role]
        if not names:
            raise ValueError(f"no {role} phase found in the phase table (by material preset kind or conductivity); "
                             f"name it with {role}=... ({flags[role]} on the command line)")
        out[role] = names
    return out


@dataclass(frozen=True)
class ActiveMaterialResult:
    """Which share of the active material and of its electrolyte interface can react.

    Volume shares are fractions of the active-material volume, interface shares
    fractions of the active-material / electrolyte interface area.

    Attributes
    ----------
    active_volume_fraction : float
        Active-material volume over the whole volume.
    n_particles, n_active_particles : int
        Connected active-material clusters, all and active.
    fraction_active : float
        Reachable by ions and electrons.
    fraction_electron_connected, fraction_ion_connected : float
        Reachable by electrons / by ions (each regardless of the other).
    fraction_inactive : float
        1 - fraction_active (0 for no active material).
    interface_area_um2, active_interface_area_um2 : float
        Active-material / electrolyte face area, all and active (face counting).
    fraction_interface_active, fraction_interface_ion, fraction_interface_electron : float
    ion_network_fraction : float
        Share of the electrolyte volume connected to the separator face.
    electron_network_fraction : float
        Share of the electron-conducting volume connected to the current-collector face.
    active : bool array or None
        The active active-material voxels, kept when asked for.
    """

    active_phases: tuple
    electrolyte_phases: tuple
    electronic_phases: tuple
    separator_face: str
    collector_face: str
    connectivity: int
    active_volume_fraction: float
    n_particles: int
    n_active_particles: int
    fraction_active: float
    fraction_electron_connected: float
    fraction_ion_connected: float
    interface_area_um2: float
    active_interface_area_um2: float
    fraction_interface_active: float
    fraction_interface_ion: float
    fraction_interface_electron: float
    ion_network_fraction: float
    electron_network_fraction: float
    active: np.ndarray | None = field(default=None, repr=False)

    @property
    def fraction_inactive(self) -> float:
        return 1.0 - self.fraction_active if self.n_particles else 0.0

    def to_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k != "active"}
        for k in ("active_phases", "electrolyte_phases", "electronic_phases"):
            d[k] = list(d[k])
        return d | {"fraction_inactive": self.fraction_inactive}


def _face_pairs(shape, axis):
    lo = [slice(None)] * 3
    hi = [slice(None)] * 3
    lo[axis] = slice(0, shape[axis] - 1)
    hi[axis] = slice(1, shape[axis])
    return tuple(lo), tuple(hi)


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b > 0 else 0.0


def active_material(volume: Volume, active: str | Iterable[str] | None = None,
                    electrolyte: str | Iterable[str] | None = None, electronic: str | Iterable[str] | None = None,
                    separator_face: str = "z=0", collector_face: str = "z=end", connectivity: int = 6,
                    keep_map: bool = False) -> ActiveMaterialResult:
    """Share of the active material (volume and interface) reachable by both ions and electrons.

    Parameters
    ----------
    volume : Volume
    active, electrolyte, electronic : phase selections, optional
        The active material, the ion conductor and the electron-conducting phases
        (a union such as ``"NMC+CBD"``). Defaults come from the phase table: the
        phases whose material preset is of kind 'active' / 'electrolyte', and
        every phase with a nonzero electronic conductivity.
    separator_face, collector_face : str
        ``"AXIS=0"`` or ``"AXIS=end"``; default separator at z = 0 and current
        collector at z = end.
    connectivity : 6, 18 or 26
        Neighbourhood of the clusters (contacts between networks are always faces).
    keep_map : bool
        Keep the bool array of active active-material voxels.

    Examples
    --------
    One particle touching the collector and the electrolyte, one floating in the electrolyte:

    >>> from microsim import Volume
    >>> lab = np.zeros((6, 4, 4), np.uint8)          # 0 = electrolyte
    >>> lab[3:, 0, 0] = 1                            # particle on the z = end face
    >>> lab[2, 2, 2] = 1                             # particle with no electronic path
    >>> v = Volume(lab, {"SE": {"label": 0, "material": "Li6PS5Cl"}, "AM": {"label": 1, "material": "NMC811"}})
    >>> r = active_material(v)
    >>> r.n_particles, r.n_active_particles, r.fraction_active
    (2, 1, 0.75)
    """
    roles = resolve_roles(volume, active, electrolyte, electronic)
    sep = parse_face(separator_face)
    col = parse_face(collector_face)
    am = volume.mask(roles["active"])
    ely = volume.mask(roles["electrolyte"])
    overlap = set(roles["active"]) & set(roles["electrolyte"])
    if overlap:
        raise ValueError(f"phase(s) {', '.join(sorted(overlap))} cannot be both active material and electrolyte; "
                         "give disjoint selections")
    lab_i, n_i, _ = label_clusters(ely, connectivity)
    ion_net = touching(lab_i, n_i, AXES[sep[0]], sep[1])[lab_i]
    del lab_i
    el = volume.mask(roles["electronic"])
    lab_e, n_e, _ = label_clusters(el, connectivity)
    e_net = touching(lab_e, n_e, AXES[col[0]], col[1])[lab_e]
    del lab_e
    lab_a, n_a, _ = label_clusters(am, connectivity)

    e_ok = np.zeros(n_a + 1, dtype=bool)
    i_ok = np.zeros(n_a + 1, dtype=bool)
    e_ok[lab_a[am & e_net]] = True
    shape = volume.shape
    dz, dy, dx = volume.voxel_size_um
    face_area = (dy * dx, dz * dx, dz * dy)
    # particles that touch a network through a face
    for axis in range(3):
        lo, hi = _face_pairs(shape, axis)
        for a, b in ((lo, hi), (hi, lo)):
            e_ok[lab_a[a][am[a] & e_net[b]]] = True
            i_ok[lab_a[a][am[a] & ion_net[b]]] = True
    e_ok[0] = i_ok[0] = False
    both = e_ok & i_ok
    sizes = np.bincount(lab_a.ravel(), minlength=n_a + 1).astype(np.float64)
    sizes[0] = 0.0
    n_am = sizes.sum()
    # interface faces between active material and electrolyte
    area = area_active = area_ion = area_el = 0.0
    for axis in range(3):
        lo, hi = _face_pairs(shape, axis)
        for a, b in ((lo, hi), (hi, lo)):
            f = am[a] & ely[b]
            part_e = e_ok[lab_a[a][f]]
            part_i = ion_net[b][f]
            area += face_area[axis] * f.sum()
            area_active += face_area[axis] * np.count_nonzero(part_e & part_i)
            area_ion += face_area[axis] * np.count_nonzero(part_i)
            area_el += face_area[axis] * np.count_nonzero(part_e)
    n_ely, n_el = int(ely.sum()), int(el.sum())
    return ActiveMaterialResult(
        active_phases=roles["active"], electrolyte_phases=roles["electrolyte"], electronic_phases=roles["electronic"],
        separator_face=face_name(sep), collector_face=face_name(col), connectivity=int(connectivity),
        active_volume_fraction=float(n_am) / am.size, n_particles=int(n_a), n_active_particles=int(both.sum()),
        fraction_active=_ratio(float(sizes[both].sum()), n_am),
        fraction_electron_connected=_ratio(float(sizes[e_ok].sum()), n_am),
        fraction_ion_connected=_ratio(float(sizes[i_ok].sum()), n_am),
        interface_area_um2=float(area), active_interface_area_um2=float(area_active),
        fraction_interface_active=_ratio(area_active, area), fraction_interface_ion=_ratio(area_ion, area),
        fraction_interface_electron=_ratio(area_el, area),
        ion_network_fraction=_ratio(float(ion_net.sum()), n_ely),
        electron_network_fraction=_ratio(float(e_net.sum()), n_el),
        active=both[lab_a] if keep_map else None)
