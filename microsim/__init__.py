"""microsim: microstructure-resolved transport in solid-state battery electrodes.

The public API is flat: ``from microsim import Volume, conductivity``.
"""
from .conductivity import (ConductivityResult, DirectionResult, MemoryEstimate, MemoryLimitError, NotConvergedError,
                           SolverInfo, conductivity, estimate_memory, largest_crop, solve_direction)
from .downsample import majority_downsample, mean_downsample
from .io import (LoadedStack, RawLayout, StackInfo, VolumeReadError, VolumeWriteError, describe, load_stack,
                 read_array, read_volume, write_array, write_volume)
from .io.summary import StackSummary, summarize_stack
from .materials import Material, UnknownMaterialError, get_material, material_names, material_table
from .percolation import PercolationResult, label_clusters, percolation
from .phases import Phase, PhaseTable, PhaseTableError, phase_table, two_phase_table
from .segment import Histogram, SegmentResult, intensity_histogram, noise_sigma, remove_islands, segment
from .randomwalk import AxisDiffusion, RandomWalkError, RandomWalkResult, plot_msd, random_walk
from .volume import Volume, VolumeError, axis_index, directions
from .pipeline import ConfigError, RunConfig, RunResult, load_config, run, validate_result
from .sweep import SweepError, SweepResult, SweepSpec, load_sweep
from .sweep import sweep as run_sweep  # not `sweep`: that name is the module microsim.sweep
from .generate import (GeneratedCathode, Packing, PackingError, ParticleList, Recipe, RecipeError, load_recipe,
                       preset_names)
from .generate import generate as generate_cathode  # not `generate`: that name is the package microsim.generate
from .generate import overlaps as particle_overlaps
from .generate import pack as pack_particles
from .mpi import DistributedResult, distributed_conductivity  # mpi4py is imported only when a run starts
from .analysis import (ActiveMaterialResult, BruggemanFit, BruggemanRow, ClusterPercolation, ClusterSizeStats,
                       DirectionPercolation, InterfaceArea, InterfaceAreas, PhaseSurface, PSDResult, ResultsFileError,
                       REVResult, REVSize, TauPoint, VolumeAnalysis, VolumeFractions, active_material, analyze_volume,
                       bruggeman_exponent, cluster_percolation, cluster_size_stats, compare_bruggeman, convert_phase,
                       dilate_phase, erode_phase, face_count_areas, fill_pores, fit_bruggeman, interface_areas,
                       local_thickness, mesh_area, parse_face, particle_size_distribution, phase_percolation,
                       phase_set, plot_bruggeman, plot_psd, read_tau_points, representative_volume, set_conductivity,
                       tau_bruggeman, tau_points, volume_fractions, watershed_particles)

__version__ = "0.1.0"

__all__ = [
    "ConductivityResult", "DirectionResult", "Material", "NotConvergedError", "PercolationResult", "Phase",
    "PhaseTable", "PhaseTableError", "SolverInfo", "Volume", "VolumeError", "axis_index", "conductivity",
    "directions", "get_material", "label_clusters", "material_names", "material_table", "percolation",
    "phase_table", "UnknownMaterialError",
    "solve_direction", "two_phase_table",
    "MemoryEstimate", "MemoryLimitError", "estimate_memory", "largest_crop",
    "AxisDiffusion", "RandomWalkError", "RandomWalkResult", "plot_msd", "random_walk",
    "Histogram", "LoadedStack", "RawLayout", "SegmentResult", "StackInfo", "StackSummary", "VolumeReadError",
    "VolumeWriteError", "describe", "intensity_histogram", "load_stack", "majority_downsample", "mean_downsample",
    "noise_sigma", "read_array", "read_volume", "remove_islands", "segment", "summarize_stack", "write_array",
    "write_volume",
]
# the microstructure analysis (microsim.analysis)
__all__ += [
    "ActiveMaterialResult", "BruggemanFit", "BruggemanRow", "ClusterPercolation", "ClusterSizeStats",
    "bruggeman_exponent",
    "DirectionPercolation", "InterfaceArea", "InterfaceAreas", "PhaseSurface", "PSDResult", "ResultsFileError",
    "REVResult", "REVSize", "TauPoint", "VolumeAnalysis", "VolumeFractions", "active_material", "analyze_volume",
    "cluster_percolation", "cluster_size_stats", "compare_bruggeman", "convert_phase", "dilate_phase", "erode_phase",
    "face_count_areas", "fill_pores", "fit_bruggeman", "interface_areas", "local_thickness", "mesh_area",
    "parse_face", "particle_size_distribution", "phase_percolation", "phase_set", "plot_bruggeman", "plot_psd",
    "read_tau_points", "representative_volume", "set_conductivity", "tau_bruggeman", "tau_points",
    "volume_fractions", "watershed_particles",
]
# runs and sweeps (microsim.pipeline, microsim.sweep)
__all__ += ["ConfigError", "RunConfig", "RunResult", "SweepError", "SweepResult", "SweepSpec", "load_config",
            "load_sweep", "run", "run_sweep", "validate_result"]
# synthetic composite cathodes (microsim.generate)
__all__ += ["GeneratedCathode", "Packing", "PackingError", "ParticleList", "Recipe", "RecipeError", "generate_cathode",
            "load_recipe", "pack_particles", "particle_overlaps", "preset_names"]
# the solver on MPI ranks (microsim.mpi)
__all__ += ["DistributedResult", "distributed_conductivity"]
