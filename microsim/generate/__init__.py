"""Synthetic composite cathodes: recipes, dense particle packing, phase placement, presets.

>>> from microsim.generate import load_recipe, generate   # doctest: +SKIP
>>> cathode = generate(load_recipe("samples/recipes/nmc_li6ps5cl_70_30_wt.toml"))  # doctest: +SKIP
>>> print(cathode.fractions_table())  # doctest: +SKIP
"""
from .cathode import ACTIVE, CBD, ELECTROLYTE, PORE, GeneratedCathode, cathode_phase_table, generate
from .packing import Packing, PackingError, overlaps, pack
from .particles import ParticleList, diameter_cdf, draw_to_volume, sample_diameters
from .placement import PlacementError
from .presets import load_preset, preset_names, preset_path
from .recipe import (ActiveSpec, CBDSpec, ElectrolyteSpec, PackingSpec, PorositySpec, Recipe, RecipeError, Shape,
                     SizeDistribution, load_recipe)

__all__ = [
    "ACTIVE", "ActiveSpec", "CBD", "CBDSpec", "ELECTROLYTE", "ElectrolyteSpec", "GeneratedCathode", "PORE",
    "Packing", "PackingError", "PackingSpec", "ParticleList", "PlacementError", "PorositySpec", "Recipe",
    "RecipeError", "Shape", "SizeDistribution", "cathode_phase_table", "diameter_cdf", "draw_to_volume", "generate",
    "load_preset", "load_recipe", "overlaps", "pack", "preset_names", "preset_path", "sample_diameters",
]
