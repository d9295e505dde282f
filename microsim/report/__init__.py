"""Figures (PNG) and the self-contained HTML report of a run."""
from .figures import field_slices, orthogonal_slices, percolation_classes_figure, phase_slices, profiles
from .html import render_report, results_table, write_report

__all__ = ["field_slices", "orthogonal_slices", "percolation_classes_figure", "phase_slices",
           "profiles", "render_report", "results_table", "write_report"]
