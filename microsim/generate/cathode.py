"""Generate a composite cathode volume from a recipe.

Order of work (each phase takes only voxels no earlier phase claimed):

1. Draw active-material diameters until they fill the target volume; for
   electrolyte particles draw theirs too.
2. Pack all particles densely without overlaps (:func:`microsim.generate.packing.pack`).
   Electrolyte particles, if there are any, are packed at a reduced size so that
   the rigid packing stays at or below ``packing.max_fraction``.
3. Rasterise the active particles, scaled by the factor (close to 1) that gives
   exactly the target number of voxels.
4. Place the carbon-binder domain: in the necks between active particles
   ("bridges": lowest sum of distances to the two nearest particle surfaces), as
   a film of even thickness on them ("film"), or as random agglomerates.
5. Electrolyte and pores: with a matrix electrolyte, voids of the given sizes are
   cut at random positions and the electrolyte fills the rest; with electrolyte
   particles, the particles grow uniformly into the free space (the plastic
   flow of a cold-pressed sulfide) until the electrolyte fraction is reached, and
   what they leave is pore.

Every count is set to round(target fraction x voxels), so achieved fractions
match the targets to a few voxels. Labels: 0 pore, 1 electrolyte, 2 active, 3 CBD.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from ..phases import Phase, PhaseTable
from ..materials import get_material
from ..progress import Progress
from ..volume import Volume
from . import placement
from .packing import Packing, PackingError, pack
from .particles import ParticleList, draw_to_volume, orientations, spheroid_axes
from .recipe import AXIS_NAMES, Recipe

PORE, ELECTROLYTE, ACTIVE, CBD = 0, 1, 2, 3
PHASE_NAMES = {PORE: "pore", ELECTROLYTE: "electrolyte", ACTIVE: "active", CBD: "CBD"}


@dataclass(frozen=True, eq=False)
class GeneratedCathode:
    """A generated volume with what went into it.

    Attributes
    ----------
    volume : Volume
        Labels 0 pore, 1 electrolyte, 2 active, 3 CBD; ``volume.particles`` is the
        :class:`ParticleList` of every placed particle (active, electrolyte, voids,
        CBD agglomerates) at the size drawn in the volume.
    recipe : Recipe
        The recipe, with the seed that was used.
    targets, achieved : dict
        Volume fraction of each phase asked for and obtained.
    packing : Packing
        The dense packing of the active (and electrolyte) particles.
    size_scale : dict
        Drawn (volume) sizes over sampled sizes, per particle phase: the stored
        diameters divided by this factor are the ones sampled from the recipe's
        distribution. Near 1 for the active material; above 1 for electrolyte
        particles that grew into the pores.
    timings_s : dict
        Seconds spent in each stage.
    """

    volume: Volume
    recipe: Recipe
    targets: dict
    achieved: dict
    packing: Packing
    size_scale: dict
    timings_s: dict = field(default_factory=dict)

    @property
    def particles(self) -> ParticleList:
        return self.volume.particles

    def fractions_table(self) -> str:
        """Target and achieved volume fraction per phase, one line each."""
        lines = [f"{'phase':<12s} {'material':<14s} {'target':>8s} {'achieved':>9s} {'diff':>8s}"]
        for p in self.volume.phases:
            t, a = self.targets[p.name], self.achieved[p.name]
            lines.append(f"{p.name:<12s} {p.material or '-':<14s} {t:8.4f} {a:9.4f} {a - t:+8.4f}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"recipe": self.recipe.to_dict(), "shape": list(self.volume.shape),
                "voxel_size_um": list(self.volume.voxel_size_um), "phases": self.volume.phases.to_dict(),
                "targets": self.targets, "achieved": self.achieved, "packing": self.packing.to_dict(),
                "size_scale": self.size_scale, "particle_count": len(self.particles),
                "timings_s": self.timings_s}


def cathode_phase_table(recipe: Recipe) -> PhaseTable:
    """Phase table of a generated cathode: material presets with the recipe's overrides.

    Ion conduction through the active material is set to zero unless the recipe
    gives ``active.sigma_ionic_S_per_m``, so that the ionic tortuosity factor is the
    one of the electrolyte network.
    """
    rows = [(PORE, "pore", None), (ELECTROLYTE, "electrolyte", recipe.electrolyte),
            (ACTIVE, "active", recipe.active), (CBD, "CBD", recipe.cbd)]
    phases = []
    for label, name, spec in rows:
        material = "pore" if spec is None else spec.material
        m = get_material(material)
        ion, ele = m.sigma_ionic_S_per_m, m.sigma_electronic_S_per_m
        if spec is not None:
            ion = ion if spec.sigma_ionic_S_per_m is None else spec.sigma_ionic_S_per_m
            ele = ele if spec.sigma_electronic_S_per_m is None else spec.sigma_electronic_S_per_m
        density = None if spec is None else recipe.density(material)
        phases.append(Phase(name, label, ion, ele, material, density))
    return PhaseTable(tuple(phases))


def _particles(centres, radii, label, box, periodic, axes=None, rot=None) -> ParticleList:
    return ParticleList(centres, radii, np.full(len(radii), label, np.uint8), axes, rot, box, periodic,
                        tuple(PHASE_NAMES.items()))


def _scaled(p: ParticleList, s: float) -> ParticleList:
    return ParticleList(p.centres_um, p.radii_um * s, p.phase, None if p.spheres else p.semi_axes_um * s,
                        p.rotations, p.box_um, p.periodic, p.names)


def _concat(lists: list[ParticleList], box, periodic) -> ParticleList:
    lists = [p for p in lists if len(p)]
    if not lists:
        return _particles(np.zeros((0, 3)), np.zeros(0), 0, box, periodic)
    if all(p.spheres for p in lists):
        axes = rot = None
    else:
        axes = np.concatenate([np.repeat(p.radii_um[:, None], 3, 1) if p.spheres else p.semi_axes_um for p in lists])
        rot = np.concatenate([np.repeat(np.eye(3)[None], len(p), 0) if p.spheres else p.rotations for p in lists])
    return ParticleList(np.concatenate([p.centres_um for p in lists]), np.concatenate([p.radii_um for p in lists]),
                        np.concatenate([p.phase for p in lists]), axes, rot, box, periodic, tuple(PHASE_NAMES.items()))


def generate(recipe: Recipe, seed: int | None = None, progress: Progress | None = None) -> GeneratedCathode:
    """Generate the composite cathode a recipe describes.

    Parameters
    ----------
    recipe : Recipe
    seed : int, optional
        Replaces the recipe's seed. The same recipe and seed give a bit-identical volume.
    progress : Progress, optional
        Receives stage and packing progress lines (stderr).

    Examples
    --------
    >>> r = Recipe.from_dict({"domain": {"shape": 32, "voxel_size_um": 0.5},
    ...     "active": {"material": "NMC811", "fraction": 0.5, "size": {"d50_um": 4.0}},
    ...     "electrolyte": {"material": "Li6PS5Cl"}})
    >>> g = generate(r, seed=1)
    >>> abs(g.achieved["active"] - 0.5) < 0.01
    True
    """
    if seed is not None:
        recipe = recipe.with_changes(seed=int(seed))
    progress = progress or Progress(quiet=True)
    t_all = time.perf_counter()
    timings = {}
    box = recipe.box_um
    periodic = recipe.periodic
    vol_um3 = math.prod(box)
    targets = recipe.volume_fractions(placed=True)
    n_vox = math.prod(recipe.shape)
    counts = {k: int(round(v * n_vox)) for k, v in targets.items()}
    # Independent random streams per ingredient: changing the voids does not move the particles.
    streams = np.random.SeedSequence(recipe.seed).spawn(6)
    rng_active, rng_se, rng_pack, rng_void, rng_cbd, rng_orient = (np.random.default_rng(s) for s in streams)

    # 1. sizes and shapes
    t = time.perf_counter()
    d_active = draw_to_volume(recipe.active.size, rng_active, targets["active"] * vol_um3)
    # A whole number of particles misses the target volume by up to half a particle; a common
    # factor within a percent or so closes the gap, so the packing holds exactly the target.
    fit_a = _fit(d_active, targets["active"] * vol_um3)
    r_active = d_active / 2.0 * fit_a
    shape = recipe.active.shape
    if shape.is_sphere:
        axes_a = rot_a = None
    else:
        axes_a = spheroid_axes(r_active, shape.aspect_ratio)
        rot_a = orientations(shape, rng_orient, len(r_active), recipe.packing.compaction,
                             AXIS_NAMES.index(recipe.packing.compaction_axis))
    se = recipe.electrolyte
    r_se = np.zeros(0)
    se_pack_scale = 1.0
    if se.form == "particles":
        d_se = draw_to_volume(se.size, rng_se, targets["electrolyte"] * vol_um3)
        fit_e = _fit(d_se, targets["electrolyte"] * vol_um3)
        r_se = d_se / 2.0 * fit_e
        phi_a = float(np.sum(4.0 / 3.0 * math.pi * r_active**3)) / vol_um3
        phi_e = float(np.sum(4.0 / 3.0 * math.pi * r_se**3)) / vol_um3
        room = recipe.packing.max_fraction - phi_a
        if room < 0.02:
            raise PackingError(f"active particles fill {phi_a:.3f} of the box, leaving no room below "
                               f"packing.max_fraction = {recipe.packing.max_fraction} for electrolyte particles; "
                               "raise packing.max_fraction or use electrolyte.form = 'matrix'")
        se_pack_scale = min(1.0, (room / phi_e) ** (1.0 / 3.0)) if phi_e > 0 else 1.0
    timings["sizes"] = time.perf_counter() - t

    # 2. packing
    t = time.perf_counter()
    n_a = len(r_active)
    radii = np.concatenate([r_active, r_se * se_pack_scale])
    shape_q = None
    if axes_a is not None:
        q_a = np.einsum("nij,nj,nkj->nik", rot_a, axes_a**2, rot_a)
        q_e = np.eye(3)[None] * ((r_se * se_pack_scale) ** 2)[:, None, None]
        shape_q = np.concatenate([q_a, q_e])
    progress.line(f"packing {n_a} active" + (f" and {len(r_se)} electrolyte" if len(r_se) else "")
                  + f" particles in {box[0]:.4g} x {box[1]:.4g} x {box[2]:.4g} um", force=True)

    def report(sweeps, scale, emax):
        progress.line(f"  packing: sweep {sweeps:7d}  size {scale:6.4f} of final  largest overlap {emax:.4f}")

    packing = pack(radii, box, periodic, shape_q=shape_q, tolerance=recipe.packing.tolerance, seed=rng_pack,
                   compaction=recipe.packing.compaction,
                   compaction_axis=AXIS_NAMES.index(recipe.packing.compaction_axis),
                   max_sweeps=recipe.packing.max_sweeps, progress=report)
    progress.line(f"  packed {packing.fraction:.4f} of the box in {packing.sweeps} sweeps, largest overlap "
                  f"{packing.max_overlap:.4f} of a diameter ({packing.time_s:.1f} s)", force=True)
    timings["packing"] = time.perf_counter() - t

    # 3. active material
    t = time.perf_counter()
    labels = np.full(recipe.shape, placement.FREE, dtype=np.uint8)
    vs = recipe.voxel_size_um
    active = _particles(packing.centres_um[:n_a], r_active, ACTIVE, box, periodic, axes_a, rot_a)
    pa = placement.place(labels, ACTIVE, active, placement.SCALE, counts["active"], vs, periodic, 1.1)
    active = _scaled(active, pa.threshold)
    scales = {"active": fit_a * pa.threshold}
    progress.line(f"  active material: {pa.count} voxels (particles drawn at {pa.threshold:.4f} x packed size)",
                  force=True)
    timings["active"] = time.perf_counter() - t

    # 4. carbon-binder domain
    t = time.perf_counter()
    extra = []
    cbd = recipe.cbd
    if counts["CBD"] > 0:
        if cbd.placement == "agglomerates":
            agg = _boolean(cbd.size, counts["CBD"], labels, box, rng_cbd, CBD, periodic)
            pc = placement.place(labels, CBD, agg, placement.SCALE, counts["CBD"], vs, periodic, 1.5)
            extra.append(_scaled(agg, pc.threshold))
            scales["CBD"] = pc.threshold
        else:
            metric = placement.NECK if cbd.placement == "bridges" else placement.DISTANCE
            guess = 0.5 * float(np.median(active.radii_um)) if metric == placement.NECK else max(vs)
            placement.place(labels, CBD, active, metric, counts["CBD"], vs, periodic, guess)
        progress.line(f"  carbon-binder domain ({cbd.placement}) placed", force=True)
    timings["cbd"] = time.perf_counter() - t

    # 5. electrolyte and pores
    t = time.perf_counter()
    if se.form == "particles":
        electrolyte = _particles(packing.centres_um[n_a:], r_se * se_pack_scale, ELECTROLYTE, box, periodic)
        if counts["pore"] > 0:
            pe = placement.place(labels, ELECTROLYTE, electrolyte, placement.SCALE, counts["electrolyte"], vs,
                                 periodic, 1.5 / se_pack_scale)
            extra.append(_scaled(electrolyte, pe.threshold))
            scales["electrolyte"] = fit_e * se_pack_scale * pe.threshold
            labels[labels == placement.FREE] = PORE
        else:
            # Fully dense: the electrolyte fills every free voxel.
            extra.append(electrolyte)
            scales["electrolyte"] = fit_e * se_pack_scale
            labels[labels == placement.FREE] = ELECTROLYTE
    else:
        if counts["pore"] > 0:
            voids = _boolean(recipe.porosity.size, counts["pore"], labels, box, rng_void, PORE, periodic)
            pv = placement.place(labels, PORE, voids, placement.SCALE, counts["pore"], vs, periodic, 1.5)
            extra.append(_scaled(voids, pv.threshold))
            scales["pore"] = pv.threshold
        labels[labels == placement.FREE] = ELECTROLYTE
    if recipe.porosity.filled_with == "electrolyte" and counts["pore"] > 0:
        # the porous microstructure with its voids filled: every particle stays where it is
        labels[labels == PORE] = ELECTROLYTE
        extra = [e for e in extra if not (len(e) and int(e.phase[0]) == PORE)]
        targets = recipe.volume_fractions()  # the voids are electrolyte now
    progress.line("  electrolyte and pores placed", force=True)
    timings["electrolyte_pores"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t_all

    table = cathode_phase_table(recipe)
    everything = _concat([active] + extra, box, periodic)
    prov = (f"generated from recipe {recipe.name or '(unnamed)'} with seed {recipe.seed}",)
    volume = Volume(labels, table, vs, prov, everything)
    achieved = volume.phase_fractions()
    return GeneratedCathode(volume, recipe, {k: float(v) for k, v in targets.items()}, achieved, packing, scales,
                            timings)


def _fit(diameters_um: np.ndarray, volume_um3: float) -> float:
    """Factor on the diameters that makes their spheres fill exactly ``volume_um3``."""
    have = float(np.sum(math.pi / 6.0 * diameters_um**3))
    return (volume_um3 / have) ** (1.0 / 3.0) if have > 0 else 1.0


def _boolean(size, count: int, labels: np.ndarray, box, rng, label: int, periodic) -> ParticleList:
    """Randomly placed, freely overlapping spheres expected to cover about ``count`` of the free voxels."""
    free = int(np.count_nonzero(labels == placement.FREE))
    if count >= free:
        raise placement.PlacementError(f"{PHASE_NAMES[label]} needs {count} voxels but only {free} are left; "
                                       "lower its fraction")
    # A Boolean model covers 1 - exp(-n v / V) of space; aim for the free part's share.
    cover = count / free
    d = draw_to_volume(size, rng, -math.log(1.0 - cover) * math.prod(box))
    centres = placement.boolean_spheres(d, box, rng)
    return _particles(centres, d / 2.0, label, box, periodic)
