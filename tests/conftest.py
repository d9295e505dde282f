"""Shared fixtures: the real volumes beside the project, skipped with a reason when absent."""
from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder of real segmented electrode volumes (../shared/data next to the repository)."""
    if not SHARED_DATA.is_dir():
        pytest.skip("real volumes not available: ../shared/data does not exist next to the repository")
    return SHARED_DATA


@pytest.fixture(scope="session")
def samples() -> Path:
    return ROOT / "samples"
