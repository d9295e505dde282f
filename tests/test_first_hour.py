"""The paths a new user walks: arrays in, no TOML for the simple case, outputs that chain, results for notebooks."""
from __future__ import annotations

import io
import json
import subprocess
import sys

import numpy as np
import pytest
import tifffile

import microsim
from microsim import warmup
from microsim.arrays import as_volume
from microsim.cli import main
from microsim.commands._common import results_table
from microsim.progress import Progress


def _rows(table: str) -> list[list[str]]:
    """The rows of a printed conductivity table without the seconds column."""
    rows = [line.split() for line in table.splitlines()]
    rows = [r for r in rows if len(r) == 12 and r[0] != "carrier"]  # not the header, not the notes
    assert rows, table
    return [r[:-1] for r in rows]


@pytest.fixture(scope="module")
def pore(samples):
    return tifffile.imread(samples / "electrode_64.tif")[:24, :24, :24] == 0


def test_boolean_one_liner_equals_the_cli_with_conducting_to_the_last_digit(pore, tmp_path, capsys):
    tifffile.imwrite(tmp_path / "pore.tif", pore.astype(np.uint8))
    py = microsim.conductivity(pore, "z")
    assert py.tau == py["ionic", "z"].tau == py[0].tau == py["z"].tau
    assert main(["conductivity", str(tmp_path / "pore.tif"), "--conducting", "1", "--direction", "z",
                 "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert _rows(printed) == _rows(results_table(py))
    assert f"{py.tau:.4g}" in printed


def test_shared_1bit_stack_with_conducting(shared_data, tmp_path, capsys):
    path = shared_data / "openimpala" / "SampleData_2Phase_stack_3d_1bit.tif"
    out = tmp_path / "new" / "folder" / "r.json"   # --out makes the folders
    assert main(["conductivity", str(path), "--conducting", "1", "--direction", "z", "--quiet",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    doc = json.loads(out.read_text())
    img = tifffile.imread(path)
    assert doc["results"][0]["tau"] == microsim.conductivity(img, "z").tau
    assert _rows(printed)[0][0:2] == ["ionic", "z"]


def test_integer_arrays_take_sigma_ionic_electronic_or_a_table():
    lab = np.zeros((6, 6, 6), np.uint8)
    lab[:, :, :3] = 85
    lab[:, :, 3:] = 170
    r = microsim.conductivity(lab, "z", sigma={85: 2.0})
    assert r.eps == pytest.approx(0.5) and r.tau == pytest.approx(1.0) and r.sigma_eff_S_per_m == pytest.approx(1.0)
    both = microsim.conductivity(lab, "z", "both", ionic={85: 1.0}, electronic={170: 4.0})
    assert both["electronic", "z"].sigma_eff_S_per_m == pytest.approx(2.0)
    assert both["ionic", "z"].conducting_phases == ("label_85",)
    table = {"A": {"label": 85, "sigma_ionic_S_per_m": 1.0}, "B": {"label": 170}}
    assert microsim.conductivity(lab, "z", phases=table).conducting_phases == ("A",)
    with pytest.raises(ValueError, match="needs to know what conducts"):
        microsim.conductivity(lab, "z")
    with pytest.raises(ValueError, match="not in the volume"):
        microsim.conductivity(lab, "z", sigma={7: 1.0})
    with pytest.raises(ValueError, match="already has its phase table"):
        microsim.conductivity(as_volume(lab == 85), "z", sigma={1: 1.0})
    v = as_volume(lab == 85, voxel_size_um=0.5, sigma=3.0)
    assert v.voxel_size_um == (0.5, 0.5, 0.5) and v.phases["conducting"].sigma_ionic_S_per_m == 3.0


def test_random_walk_analysis_and_percolation_take_arrays(pore):
    rw = microsim.random_walk(pore, walkers=256, steps=512, records=8, groups=4, seed=1)
    assert rw.eps == pytest.approx(pore.mean())
    assert rw._repr_html_().count("<tr>") == 4 and [r["direction"] for r in rw.rows()] == ["x", "y", "z"]
    perc = microsim.phase_percolation(pore)
    assert perc.name == "conducting" and perc.volume_fraction == pytest.approx(pore.mean())
    an = microsim.analyze_volume(pore, rev_sizes=[8], rev_samples=2)
    assert an.fractions["conducting"] == pytest.approx(pore.mean())


def test_axes_xyz_reads_julia_arrays_and_is_recorded(shared_data, tmp_path, capsys):
    xyz = np.load(shared_data / "TortuosityJL_blobs_xyz.npy")
    assert xyz.shape == (32, 42, 52)
    v = as_volume(xyz, axes="xyz")
    assert v.shape == (52, 42, 32) and any("(x, y, z)" in p for p in v.provenance)
    zyx = np.ascontiguousarray(xyz.transpose(2, 1, 0))
    assert microsim.conductivity(xyz, "x", axes="xyz").tau == microsim.conductivity(zyx, "x").tau
    out = tmp_path / "b.json"
    assert main(["conductivity", str(shared_data / "TortuosityJL_blobs_xyz.npy"), "--conducting", "1", "--axes",
                 "xyz", "--direction", "x", "--quiet", "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["shape"] == [52, 42, 32] and any("(x, y, z)" in p for p in doc["provenance"])
    assert doc["results"][0]["tau"] == microsim.conductivity(zyx, "x").tau
    assert main(["conductivity", "x.npy", "--axes", "xzq", "--quiet"]) == 2
    assert "not an order of x, y and z" in capsys.readouterr().err


def test_results_for_notebooks(pore, monkeypatch):
    res = microsim.conductivity(pore, "all")
    assert len(res) == 3 and res[-1] is res["ionic", "z"] is res["z"]
    with pytest.raises(AttributeError, match=r"res\['ionic', 'x'\]\.tau"):
        res.tau
    with pytest.raises(KeyError, match="index by position"):
        res["electronic", "q"] if False else res["q"]
    html = res._repr_html_()
    assert html.startswith("<table>") and html.count("<tr>") == 4 and "tau" in html
    assert res[0]._repr_html_().count("<tr>") == 2
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="pip install pandas"):
        res.to_dataframe()


def test_to_dataframe_when_pandas_is_there(pore):
    pytest.importorskip("pandas")
    df = microsim.conductivity(pore, "all").to_dataframe()
    assert df.loc[("ionic", "y"), "tau"] > 1 and list(df.index.names) == ["carrier", "direction"]


def test_segment_then_conductivity_needs_no_toml(samples, tmp_path, capsys):
    out = tmp_path / "fibers.tif"
    assert main(["segment", str(samples / "fiberform_64.tif"), "--classes", "2", "--out", str(out),
                 "--quiet"]) == 0
    said = capsys.readouterr().out
    assert (tmp_path / "fibers.phases.toml").is_file() and "fibers.phases.toml" in said
    assert microsim.PhaseTable.from_toml(tmp_path / "fibers.phases.toml").names == ("pore", "solid")
    assert main(["conductivity", str(out), "--direction", "z", "--carrier", "both", "--quiet"]) == 0
    rows = _rows(capsys.readouterr().out)
    assert [r[0] for r in rows] == ["ionic", "electronic"] and float(rows[0][6]) > 1
    h5 = tmp_path / "deep" / "f.h5"
    assert main(["segment", str(samples / "fiberform_64.tif"), "--phases", "2", "--out", str(h5), "--quiet"]) == 0
    assert "old spelling of --classes" in capsys.readouterr().err
    assert microsim.describe(h5).phases.names == ("pore", "solid")


def test_bruggeman_reads_a_run_folder_and_its_result_json(samples, tmp_path, capsys):
    config = tmp_path / "run.toml"
    config.write_text(f'[source]\nstack = "{samples / "electrode_64.tif"}"\ncrop = "0:16,0:16,0:16"\n'
                      'conducting = [0]\n[transport]\ndirections = ["x", "z"]\n[output]\nfields = false\n')
    run_dir = tmp_path / "runs" / "electrode"
    assert main(["run", str(config), "--out", str(run_dir), "--quiet"]) == 0
    capsys.readouterr()
    for target in (run_dir, run_dir / "result.json"):
        assert main(["bruggeman", str(target), "--quiet"]) == 0
        out = capsys.readouterr().out
        assert "electrode" in out and out.count(" ionic ") == 2
    doc = json.loads((run_dir / "result.json").read_text())
    assert doc["volume"]["phases"][0]["name"] == "label_0"


@pytest.mark.slow
def test_bruggeman_reads_a_sweep_folder(samples, tmp_path, capsys):
    base = tmp_path / "run.toml"
    base.write_text(f'[source]\nstack = "{samples / "electrode_64.tif"}"\nconducting = [0]\n'
                    '[transport]\ndirections = ["z"]\n[output]\nfields = false\n')
    sweep = tmp_path / "sweep.toml"
    sweep.write_text('[sweep]\nname = "two crops"\nbase = "run.toml"\n'
                     '[grid]\n"source.crop" = ["0:16,0:16,0:16", "16:32,16:32,16:32"]\n')
    assert main(["sweep", str(sweep), "--out", str(tmp_path / "sweeps" / "s"), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["bruggeman", str(tmp_path / "sweeps" / "s")]) == 0
    out = capsys.readouterr().out
    assert out.count(" ionic ") == 2 and "fit ionic" in out


def test_randomwalk_compare_fv_says_which_problem(samples, capsys):
    assert main(["randomwalk", str(samples / "electrode_64.tif"), "--conducting", "0", "--crop", "0:16,0:16,0:16",
                 "--walkers", "256", "--steps", "512", "--records", "8", "--groups", "4", "--compare-fv",
                 "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "solves the same problem as the walk (periodic boundary)" in out and "--cell-problem" in out


def test_compiling_is_announced_and_timed_apart(monkeypatch):
    monkeypatch.setattr(warmup, "_done", set())
    monkeypatch.setattr(warmup, "quiet", False)
    monkeypatch.setattr(warmup, "cached_fraction", lambda modules: 0.0)
    buf = io.StringIO()
    took = warmup.ensure_compiled_conductivity(stream=buf)
    assert took > 0 and buf.getvalue().startswith("compiling kernels (first run only) ...")
    assert buf.getvalue().rstrip().endswith(" s")
    buf2 = io.StringIO()
    assert warmup.ensure_compiled_conductivity(stream=buf2) == 0.0 and buf2.getvalue() == ""


def test_progress_has_an_eta_and_prints_no_line_twice(monkeypatch):
    buf = io.StringIO()
    p = Progress(stream=buf, every_s=0.0)
    clock = iter(range(0, 1000, 2))
    monkeypatch.setattr("microsim.progress.time.monotonic", lambda: float(next(clock)))
    for done in range(0, 5):
        p.bar("local thickness", done, 4)
    p.line("same")
    p.line("same")
    p.solver("ionic", "z", 1, 1e-1, 0.5)
    p.solver("ionic", "z", 2, 1e-2, 0.1)
    p.solver("ionic", "z", 2, 1e-2, 0.1, done=True)
    lines = buf.getvalue().splitlines()
    assert len(lines) == len(set(lines))
    assert any("left" in line for line in lines if line.startswith("local thickness"))
    assert lines.count("same") == 1
    assert lines[-1].strip() == "ionic z  done after 2 iterations"


def test_python_dash_m_microsim():
    proc = subprocess.run([sys.executable, "-m", "microsim", "--version"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and proc.stdout.startswith("microsim ")
