"""JSON output that stays valid JSON: numpy values become Python ones, inf and NaN become strings.

The one convention of every JSON file microsim writes: a number that is infinite
or not a number is written as the string ``"inf"``, ``"-inf"`` or ``"nan"`` (strict
JSON has no such numbers, and ``Infinity``/``NaN`` break most parsers). Every
writer goes through :func:`dumps`, which refuses anything else.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from .atomic import write_text_atomic


def json_safe(obj):
    """Recursively convert ``obj`` to plain JSON types.

    Infinite and NaN floats become the strings "inf", "-inf" and "nan" (strict JSON
    has no such numbers); numpy scalars and arrays become Python numbers and lists.

    >>> json_safe({"tau": float("inf"), "n": np.int64(3)})
    {'tau': 'inf', 'n': 3}
    """
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return v
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "to_dict"):
        return json_safe(obj.to_dict())
    return obj


def dumps(obj, **kwargs) -> str:
    """``json.dumps`` of :func:`json_safe` of ``obj``, strict: no bare Infinity or NaN can come out."""
    return json.dumps(json_safe(obj), allow_nan=False, **kwargs)


def write_json(path, obj) -> None:
    """Write ``obj`` as indented JSON through a temporary file."""
    write_text_atomic(path, dumps(obj, indent=2) + "\n")
