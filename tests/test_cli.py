"""The command line, run as a user would run it."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import tifffile


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "microsim", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


@pytest.fixture()
def phases_file(tmp_path):
    p = tmp_path / "phases.toml"
    p.write_text('[phases.pore]\nlabel = 0\n\n[phases.SE]\nlabel = 1\nsigma_ionic_S_per_m = 0.2\n')
    return p


def test_demo_runs_and_prints_table():
    proc = run("demo", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "tau" in proc.stdout and "electronic" in proc.stdout and "ionic" in proc.stdout
    assert proc.stderr == ""


def test_conductivity_command_writes_json(tmp_path, phases_file):
    labels = np.zeros((12, 10, 8), np.uint8)
    labels[:, 2:8, 2:6] = 1
    vol = tmp_path / "v.tif"
    tifffile.imwrite(vol, labels)
    out = tmp_path / "r.json"
    proc = run("conductivity", str(vol), "--phases", str(phases_file), "--direction", "all",
               "--voxel-size", "0.5,0.4,0.4", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "iter" in proc.stderr  # progress lines
    data = json.loads(out.read_text())
    res = {r["direction"]: r for r in data["results"]}
    assert abs(res["z"]["tau"] - 1) < 1e-4
    assert res["x"]["tau"] == "inf" and res["x"]["percolates"] is False
    assert data["voxel_size_um"] == [0.5, 0.4, 0.4]
    npy = tmp_path / "v.npy"
    np.save(npy, labels)
    proc = run("conductivity", str(npy), "--phases", str(phases_file), "--direction", "z", "--quiet")
    assert proc.returncode == 0 and proc.stderr == ""


def test_bad_inputs_give_one_line_and_no_output(tmp_path, phases_file):
    labels = np.full((4, 4, 4), 3, np.uint8)
    vol = tmp_path / "v.npy"
    np.save(vol, labels)
    out = tmp_path / "r.json"
    cases = [
        ("conductivity", str(vol), "--phases", str(phases_file), "--out", str(out)),       # label 3 missing
        ("conductivity", str(tmp_path / "nope.tif"), "--phases", str(phases_file), "--out", str(out)),
        ("conductivity", str(vol), "--phases", str(tmp_path / "nope.toml"), "--out", str(out)),
    ]
    for args in cases:
        proc = run(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "error" in lines[0], proc.stderr
        assert not out.exists()
        assert not list(tmp_path.glob(".r.json*"))
    proc = run("conductivity", str(vol), "--phases", str(phases_file), "--voxel-size", "0,1,1")
    assert proc.returncode == 2 and "micrometres" in proc.stderr


def test_not_converged_exits_3(tmp_path, phases_file):
    rng = np.random.default_rng(0)
    labels = (rng.random((16, 16, 16)) < 0.7).astype(np.uint8)
    vol = tmp_path / "v.npy"
    np.save(vol, labels)
    proc = run("conductivity", str(vol), "--phases", str(phases_file), "--direction", "x", "--max-iter", "2",
               "--quiet")
    assert proc.returncode == 3
    assert "did not converge" in proc.stderr


def test_conductivity_uses_the_phase_table_stored_in_hdf5(tmp_path, phases_file):
    labels = np.zeros((12, 10, 8), np.uint8)
    labels[:, 2:8, 2:6] = 1
    tifffile.imwrite(tmp_path / "v.tif", labels)
    proc = run("convert", str(tmp_path / "v.tif"), str(tmp_path / "v.h5"), "--phases", str(phases_file),
               "--voxel-size", "0.5", "--quiet")
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "r.json"
    proc = run("conductivity", str(tmp_path / "v.h5"), "--direction", "z", "--out", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr
    res = json.loads(out.read_text())["results"][0]
    # straight channels of SE along z: sigma_eff = eps * 0.2 S/m exactly
    assert res["sigma_eff_S_per_m"] == pytest.approx(0.2 * 24 / 80, rel=1e-6)
    # a TIFF stores no table: one line naming the fix, exit code 2, no output
    out2 = tmp_path / "r2.json"
    proc = run("conductivity", str(tmp_path / "v.tif"), "--out", str(out2), "--quiet")
    assert proc.returncode == 2 and "--phases" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not out2.exists()
