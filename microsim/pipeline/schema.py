"""Checking result.json against its JSON Schema (microsim/data/result.schema.json).

microsim does not depend on a JSON Schema library; this module validates the
subset of JSON Schema (draft 2020-12) that the schema file uses: ``type``,
``properties``, ``required``, ``additionalProperties``, ``items``, ``enum``,
``const``, ``minimum``, ``maximum``, ``minItems``, ``maxItems``, ``anyOf``
and local ``$ref`` to ``#/$defs/NAME``. A schema keyword outside that subset is
an error rather than silently ignored, so the schema cannot promise more than
is checked.
"""
from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

SCHEMA_FILE = "result.schema.json"
_ANNOTATIONS = {"$schema", "$id", "$defs", "title", "description", "examples", "$comment", "default"}
_KEYWORDS = {"type", "properties", "required", "additionalProperties", "items", "enum", "const", "minimum", "maximum",
             "minItems", "maxItems", "anyOf", "$ref"} | _ANNOTATIONS
_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


class SchemaError(ValueError):
    """The schema uses a keyword this validator does not implement, or a broken $ref."""


def load_schema() -> dict:
    """The JSON Schema of result.json shipped with microsim."""
    text = resources.files("microsim").joinpath("data", SCHEMA_FILE).read_text()
    return json.loads(text)


def validate(instance, schema: dict, root: dict | None = None, path: str = "$") -> list[str]:
    """Every way ``instance`` breaks ``schema``, as 'path: problem' strings (empty when valid).

    >>> validate({"a": 1}, {"type": "object", "required": ["a", "b"]})
    ['$: missing required property b']
    >>> validate([1, "x"], {"type": "array", "items": {"type": "integer"}})
    ['$[1]: "x" is not of type integer']
    """
    root = schema if root is None else root
    unknown = set(schema) - _KEYWORDS
    if unknown:
        raise SchemaError(f"schema at {path} uses unsupported keyword(s) {', '.join(sorted(unknown))}")
    if "$ref" in schema:
        ref = schema["$ref"]
        if not ref.startswith("#/$defs/") or ref[len("#/$defs/"):] not in root.get("$defs", {}):
            raise SchemaError(f"schema at {path}: cannot resolve $ref {ref!r}; use '#/$defs/NAME'")
        return validate(instance, root["$defs"][ref[len("#/$defs/"):]], root, path)
    errors: list[str] = []
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_TYPES[t](instance) for t in types):
            return [f"{path}: {json.dumps(instance)[:60]} is not of type {' or '.join(types)}"]
    if "const" in schema and instance != schema["const"]:
        errors.append(f"{path}: {json.dumps(instance)[:60]} is not {json.dumps(schema['const'])}")
    if "enum" in schema and instance not in schema["enum"]:
        errors.append(f"{path}: {json.dumps(instance)[:60]} is not one of {json.dumps(schema['enum'])}")
    if _TYPES["number"](instance):
        if "minimum" in schema and instance < schema["minimum"]:
            errors.append(f"{path}: {instance} is below the minimum {schema['minimum']}")
        if "maximum" in schema and instance > schema["maximum"]:
            errors.append(f"{path}: {instance} is above the maximum {schema['maximum']}")
    if isinstance(instance, dict):
        for key in schema.get("required", []):
            if key not in instance:
                errors.append(f"{path}: missing required property {key}")
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for key, value in instance.items():
            if key in props:
                errors += validate(value, props[key], root, f"{path}.{key}")
            elif extra is False:
                errors.append(f"{path}: unexpected property {key}")
            elif isinstance(extra, dict):
                errors += validate(value, extra, root, f"{path}.{key}")
    if isinstance(instance, list):
        if "minItems" in schema and len(instance) < schema["minItems"]:
            errors.append(f"{path}: {len(instance)} items, fewer than {schema['minItems']}")
        if "maxItems" in schema and len(instance) > schema["maxItems"]:
            errors.append(f"{path}: {len(instance)} items, more than {schema['maxItems']}")
        if "items" in schema:
            for i, value in enumerate(instance):
                errors += validate(value, schema["items"], root, f"{path}[{i}]")
    if "anyOf" in schema:
        branches = [validate(instance, s, root, path) for s in schema["anyOf"]]
        if all(branches):
            errors.append(f"{path}: matches none of the alternatives ({'; '.join(b[0] for b in branches)})")
    return errors


def validate_result(document_or_path) -> list[str]:
    """Validate a result.json (a path or the loaded dict) against the shipped schema.

    Returns the list of problems; empty means valid.
    """
    doc = document_or_path
    if isinstance(doc, (str, Path)):
        doc = json.loads(Path(doc).read_text())
    return validate(doc, load_schema())
