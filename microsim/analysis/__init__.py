"""Microstructure analysis: why a volume conducts as it does.

Volume fractions, percolation classes and cluster sizes, electrochemically
active material, interface areas, Bruggeman's relation against computed
tortuosity, what-if operations, representative volume and particle sizes.
Every public name is also available flat from :mod:`microsim`.
"""
from .active import ActiveMaterialResult, active_material, parse_face
from .bruggeman import (BruggemanFit, BruggemanRow, ResultsFileError, TauPoint, bruggeman_exponent,
                        compare_bruggeman, fit_bruggeman, plot_bruggeman, read_tau_points, tau_bruggeman, tau_points)
from .clusters import (ClusterPercolation, ClusterSizeStats, DirectionPercolation, cluster_percolation,
                       cluster_size_stats, phase_percolation)
from .fractions import VolumeFractions, phase_set, volume_fractions
from .interfaces import InterfaceArea, InterfaceAreas, PhaseSurface, face_count_areas, interface_areas, mesh_area
from .psd import PSDResult, local_thickness, particle_size_distribution, plot_psd, watershed_particles
from .rev import REVResult, REVSize, representative_volume
from .summary import VolumeAnalysis, analyze_volume
from .whatif import convert_phase, dilate_phase, erode_phase, fill_pores, set_conductivity

__all__ = [
    "ActiveMaterialResult", "BruggemanFit", "BruggemanRow", "ClusterPercolation", "ClusterSizeStats",
    "bruggeman_exponent",
    "DirectionPercolation", "InterfaceArea", "InterfaceAreas", "PSDResult", "PhaseSurface", "REVResult", "REVSize",
    "ResultsFileError", "TauPoint", "VolumeAnalysis", "VolumeFractions", "active_material", "analyze_volume",
    "cluster_percolation", "cluster_size_stats", "compare_bruggeman", "convert_phase", "dilate_phase",
    "erode_phase", "face_count_areas", "fill_pores", "fit_bruggeman", "interface_areas",
    "local_thickness", "mesh_area", "parse_face", "particle_size_distribution", "phase_percolation", "phase_set",
    "plot_bruggeman", "plot_psd", "read_tau_points", "representative_volume", "set_conductivity",
    "tau_bruggeman", "tau_points", "volume_fractions", "watershed_particles",
]
