"""The literature presets shipped as recipe files in ``samples/recipes``."""
from __future__ import annotations

from pathlib import Path

from .recipe import Recipe, RecipeError, load_recipe

PRESET_DIR = Path(__file__).resolve().parents[1] / "data" / "samples" / "recipes"


def preset_names() -> tuple[str, ...]:
    """Names (file stems) of the preset recipes, sorted."""
    return tuple(sorted(p.stem for p in PRESET_DIR.glob("*.toml")))


def preset_path(name: str) -> Path:
    """Path of the preset recipe ``name`` (a file stem from :func:`preset_names`)."""
    path = PRESET_DIR / f"{name}.toml"
    if not path.is_file():
        raise RecipeError(f"no preset named {name!r}; presets are: {', '.join(preset_names()) or 'none'}")
    return path


def load_preset(name: str) -> Recipe:
    """The preset recipe ``name``."""
    return load_recipe(preset_path(name))
