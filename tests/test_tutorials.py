"""The tutorials in docs/tutorials run, as plain scripts, on small volumes, and draw their figures."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = sorted((ROOT / "docs" / "tutorials").glob("[0-9][0-9]_*.py"))
#: the figure each tutorial writes
FIGURES = {"01_tomogram_tortuosity": "tutorial_tomogram_tau.png",
           "02_generated_cathode_sweep": "tutorial_cathode_bruggeman.png",
           "03_random_walk_vs_finite_volumes": "tutorial_random_walk_msd.png",
           "04_distributed_run": "tutorial_distributed_tau.png"}


def test_four_tutorials_in_jupytext_percent_format_with_their_figures_in_the_docs():
    assert [t.stem for t in TUTORIALS] == list(FIGURES)
    for t in TUTORIALS:
        text = t.read_text()
        assert "format_name: percent" in text and text.count("# %%") >= 4, t.name
        assert (ROOT / "docs" / "figures" / FIGURES[t.stem]).is_file(), f"run {t.name} to draw its figure"


@pytest.mark.slow
@pytest.mark.parametrize("tutorial", TUTORIALS, ids=lambda p: p.stem)
def test_tutorial_runs_on_a_small_volume(tutorial, tmp_path):
    env = dict(os.environ, MPLBACKEND="Agg", MICROSIM_FIGURES=str(tmp_path), MICROSIM_TUTORIAL_SIZE="24",
               MICROSIM_TUTORIAL_WALKERS="512", MICROSIM_TUTORIAL_STEPS="4000")
    proc = subprocess.run([sys.executable, str(tutorial)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / FIGURES[tutorial.stem]).read_bytes()[:4] == b"\x89PNG"
    assert "wrote" in proc.stdout
