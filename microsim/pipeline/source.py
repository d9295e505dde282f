"""The first stage of a run: the labelled volume, read (and segmented) from a stack or generated from a recipe."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io import RawLayout, load_stack
from ..volume import Volume, as_label_array
from .config import ConfigError, RecipeSource, RunConfig, StackSource


def load_source(config: RunConfig, progress=None) -> tuple[Volume, dict]:
    """The volume a run works on, and a description of how it was obtained (for result.json).

    Raises :class:`ConfigError` (a ValueError) with a one-line message when the
    source cannot give a volume, e.g. a grayscale stack without ``[source.segment]``.
    """
    if isinstance(config.source, StackSource):
        return _from_stack(config, config.source, progress)
    return _from_recipe(config, config.source, progress)


def _from_stack(config: RunConfig, src: StackSource, progress) -> tuple[Volume, dict]:
    raw = None
    if src.raw is not None:
        if "shape" not in src.raw:
            raise ConfigError("[source.raw] needs shape = [nz, ny, nx]")
        raw = RawLayout(**src.raw)
    loaded = load_stack(src.path, crop=src.crop, stride=src.stride, downsample=src.downsample,
                        reduce="mean" if src.segment is not None else "majority", dataset=src.dataset, raw=raw,
                        voxel_size_um=src.voxel_size_um, slice_thickness_um=src.slice_thickness_um,
                        progress=progress)
    info = {"kind": "stack", "path": str(src.path), "read": loaded.to_dict()}
    provenance = loaded.provenance
    if src.segment is not None:
        from ..segment import segment
        opts = dict(src.segment)
        denoise = opts.pop("denoise", None)
        size = opts.pop("denoise_size", 3)
        h = opts.pop("nlm_h", None)
        result = segment(loaded.array, opts.pop("n_phases", None), thresholds=opts.pop("thresholds", None),
                         denoise_method=denoise, denoise_size=size, nlm_h=h, phases=config.phases, **opts)
        labels = result.labels
        seg = result.to_dict()
        seg.pop("histogram", None)
        info["segmentation"] = seg
        provenance = provenance + (f"segmented ({result.method}, thresholds {list(result.thresholds)})",)
    else:
        if loaded.array.dtype.kind == "f":
            raise ConfigError(f"{src.path.name} holds grayscale {loaded.array.dtype} values, not labels; "
                              "add a [source.segment] table (e.g. n_phases = 3) to segment it")
        try:
            labels = as_label_array(loaded.array)
        except ValueError as exc:
            raise ConfigError(f"{src.path.name}: {exc}; for grayscale data add a [source.segment] table") from None
    phases = config.phases if config.phases is not None else loaded.info.phases
    if src.conducting is not None:
        from ..arrays import conducting_table
        from ..volume import label_counts
        phases = conducting_table(np.flatnonzero(label_counts(labels)), src.conducting)
        provenance = provenance + (f"[source] conducting = {list(src.conducting)}: sigma 1 S/m, other labels "
                                   "insulating",)
    elif phases is None and src.segment is not None:
        from ..segment import class_table
        phases = class_table(result.label_values)
        provenance = provenance + ("phase table of the segmented classes: darkest = pore (ionic sigma 1), "
                                   "others solid (electronic sigma 1)",)
    if phases is None:
        raise ConfigError(f"{src.path.name} stores no phase table; add phases = \"TABLE.toml\" or [phases.NAME] "
                          "tables to the configuration, or [source] conducting = [LABEL, ...]")
    vs = loaded.voxel_size_um
    if vs is None:
        vs = (1.0, 1.0, 1.0)
        provenance = provenance + ("voxel size not in the file and not in the configuration: 1 um assumed",)
        info["voxel_size_assumed"] = True
    info["voxel_size_source"] = loaded.voxel_size_source
    return Volume(labels, phases, vs, provenance), info


def _from_recipe(config: RunConfig, src: RecipeSource, progress) -> tuple[Volume, dict]:
    from ..generate import Recipe, generate, load_recipe
    if isinstance(src.recipe, str):
        path = Path(src.recipe)
        path = path if path.is_absolute() else config.base_dir / path
        recipe = load_recipe(path)
        where = str(path)
    else:
        try:
            recipe = Recipe.from_dict(src.recipe)
        except TypeError as exc:  # a value of the wrong type reached a dataclass
            raise ConfigError(f"[source.recipe]: {exc}") from None
        where = "inline [source.recipe]"
    # The run's seed, when given, wins over the recipe's: one seed for the whole run.
    seed = config.seed if config.seed is not None else recipe.seed
    cathode = generate(recipe, seed=seed, progress=progress)
    volume = cathode.volume
    if config.phases is not None:
        volume = volume.derive(phases=config.phases, note="phase table of the run configuration")
    info = {"kind": "recipe", "recipe": where, "seed": seed, "generated": cathode.to_dict()}
    return volume, info
