"""microsim: microstructure-resolved transport in solid-state battery electrodes.

The public API is flat: ``from microsim import Volume, conductivity``.
"""
from .conductivity import (ConductivityResult, DirectionResult, NotConvergedError, SolverInfo, conductivity,
                           solve_direction)
from .materials import Material, get_material, material_names
from .percolation import PercolationResult, label_clusters, percolation
from .phases import Phase, PhaseTable, PhaseTableError, phase_table, two_phase_table
from .volume import Volume, VolumeError, axis_index, directions

__version__ = "0.1.0"

__all__ = [
    "ConductivityResult", "DirectionResult", "Material", "NotConvergedError", "PercolationResult", "Phase",
    "PhaseTable", "PhaseTableError", "SolverInfo", "Volume", "VolumeError", "axis_index", "conductivity",
    "directions", "get_material", "label_clusters", "material_names", "percolation", "phase_table",
    "solve_direction", "two_phase_table",
]
