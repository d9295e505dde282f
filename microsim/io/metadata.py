"""Metadata that travels with a volume: length units, phase tables, provenance, sidecar files.

Phase tables are stored as JSON of :meth:`PhaseTable.to_dict` and rebuilt field by
field, so a table read back is equal to the one written (floats survive JSON
exactly). Formats without a place for metadata (raw binary, .npy) get a sidecar
``NAME.EXT.json`` next to the data.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..phases import Phase, PhaseTable
from .errors import VolumeReadError

SIDECAR_KIND = "microsim-volume"

# (multiply, divide) that turn a length in the unit into micrometres; integer factors keep
# 398 nm -> 0.398 um correctly rounded.
_UNITS = {}
for _names, _factor in (
        (("um", "micron", "microns", "micrometer", "micrometre", "micrometers", "micrometres"), (1, 1)),
        (("nm", "nanometer", "nanometre", "nanometers", "nanometres"), (1, 1000)),
        (("mm", "millimeter", "millimetre", "millimeters", "millimetres"), (1000, 1)),
        (("cm", "centimeter", "centimetre"), (10_000, 1)),
        (("m", "meter", "metre", "meters", "metres"), (1_000_000, 1)),
        (("pm", "picometer", "picometre"), (1, 1_000_000)),
        (("a", "angstrom", "\u00e5", "\u212b"), (1, 10_000))):
    for _n in _names:
        _UNITS[_n] = _factor


def normalise_unit(unit) -> str:
    """Lower-case unit name with the micro sign spelled ``u`` (ImageJ writes ``\\u00B5m`` literally)."""
    text = str(unit).strip().lower()
    for micro in ("\\u00b5", "\u00b5", "\u03bc"):
        text = text.replace(micro, "u")
    return text


def length_to_um(value, unit) -> float | None:
    """``value`` in ``unit`` converted to micrometres, or None when ``unit`` is not a length unit.

    Inches are deliberately not accepted: in image files they are a print
    resolution (72 dpi by default), not the size of a tomography voxel.

    >>> length_to_um(398, "nm"), length_to_um(0.5, "micron"), length_to_um(1, "inch")
    (0.398, 0.5, None)
    """
    factor = _UNITS.get(normalise_unit(unit))
    if factor is None:
        return None
    v = float(value)
    if not v > 0 or v == float("inf"):
        return None
    return v * factor[0] / factor[1]


def phases_to_json(table: PhaseTable) -> str:
    return json.dumps(table.to_dict())


def phases_from_json(text, source: str) -> PhaseTable:
    """Rebuild a table written by :func:`phases_to_json`; ``source`` names the file in errors."""
    try:
        doc = json.loads(text)
        return PhaseTable(tuple(Phase(**row) for row in doc["phases"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise VolumeReadError(f"{source}: the stored phase table is damaged ({exc}); "
                              "give the table explicitly with --phases") from None


def provenance_to_json(provenance) -> str:
    return json.dumps([str(p) for p in provenance])


def provenance_from_json(text) -> tuple[str, ...]:
    try:
        value = json.loads(text)
    except ValueError:
        return ()
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


def sidecar_path(path) -> Path:
    """``cube.raw`` -> ``cube.raw.json``."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def sidecar_dict(shape, dtype, byte_order: str, offset: int, voxel_size_um, phases, provenance) -> dict:
    return {
        "kind": SIDECAR_KIND,
        "version": 1,
        "shape": [int(n) for n in shape],
        "dtype": str(dtype),
        "byte_order": byte_order,
        "offset_bytes": int(offset),
        "voxel_size_um": None if voxel_size_um is None else [float(v) for v in voxel_size_um],
        "phases": None if phases is None else phases.to_dict(),
        "provenance": [str(p) for p in provenance],
    }


def read_sidecar(data_path) -> dict | None:
    """The sidecar of ``data_path`` as a dict, or None when there is none."""
    side = sidecar_path(data_path)
    if not side.is_file():
        return None
    try:
        doc = json.loads(side.read_text())
    except (OSError, ValueError) as exc:
        raise VolumeReadError(f"{side}: sidecar is not readable JSON ({exc}); fix or delete it") from None
    if not isinstance(doc, dict) or doc.get("kind") != SIDECAR_KIND:
        return None
    return doc


def sidecar_phases(doc: dict, source: str) -> PhaseTable | None:
    if doc.get("phases") is None:
        return None
    return phases_from_json(json.dumps(doc["phases"]), source)

