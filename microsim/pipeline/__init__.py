"""One command from a stack or a recipe to a run folder: configuration, stages, outputs.

:func:`run` reads a configuration (:mod:`.config`), builds the volume
(:mod:`.source`), runs the analyses and solvers and writes the run folder
(:mod:`.runner`); :mod:`microsim.sweep` runs many variations of one configuration.
"""
from .config import ConfigError, RunConfig, load_config
from .runner import SCHEMA_VERSION, RunResult, run, versions
from .schema import load_schema, validate, validate_result

__all__ = ["ConfigError", "RunConfig", "RunResult", "SCHEMA_VERSION", "load_config", "load_schema", "run", "validate",
           "validate_result", "versions"]
