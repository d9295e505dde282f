"""``microsim run``: a configuration in, a complete run folder out, with correct numbers and no external links."""
from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import h5py
import numpy as np
import pytest

from microsim import conductivity
from microsim.io import read_volume
from microsim.pipeline import ConfigError, load_config, load_schema, run, validate, validate_result
from microsim.pipeline.config import read_toml, set_dotted, toml_text
from microsim.pipeline.schema import SchemaError

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_CONFIG = ROOT / "samples" / "run_electrode.toml"
CROP = "0:24,0:24,0:24"
DIRS = ["x", "z"]
CARRIERS = ["ionic", "electronic"]
TOL = 1e-7  # relative error of sigma_eff; tight, so that the potential itself is accurate to ~1e-4


def sample_doc(**changes) -> dict:
    doc = read_toml(SAMPLE_CONFIG)
    set_dotted(doc, "source.crop", CROP, SAMPLE_CONFIG.parent)
    set_dotted(doc, "transport.directions", DIRS, SAMPLE_CONFIG.parent)
    set_dotted(doc, "transport.carriers", CARRIERS, SAMPLE_CONFIG.parent)
    set_dotted(doc, "finite_volume.tol", TOL, SAMPLE_CONFIG.parent)
    for key, value in changes.items():
        set_dotted(doc, key.replace("__", "."), value, SAMPLE_CONFIG.parent)
    return doc


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "electrode"
    result = run(load_config(sample_doc(), SAMPLE_CONFIG.parent), out, quiet=True)
    return out, result


# --- the run folder --------------------------------------------------------------------------


def test_run_folder_has_every_file(sample_run):
    out, result = sample_run
    expected = {"result.json", "summary.csv", "fields.h5", "fields.xdmf", "config.toml", "report.html",
                "phases.png", "profiles.png", "percolation.png", "bruggeman.png"}
    expected |= {f"{kind}_{c}_{d}.png" for kind in ("potential", "current") for c in CARRIERS for d in DIRS}
    names = {p.name for p in out.iterdir()}
    assert names == expected
    for name in expected:
        assert (out / name).stat().st_size > 0, name
    for name in expected:
        if name.endswith(".png"):
            assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    # nothing left next to the run folder (the staging folder was renamed, not copied)
    assert [p.name for p in out.parent.iterdir()] == ["electrode"]
    assert result.out_dir == out


def test_result_json_validates_against_its_schema(sample_run):
    out, _ = sample_run
    doc = json.loads((out / "result.json").read_text())
    assert validate_result(out / "result.json") == []
    assert doc["schema_version"] == 1 and doc["seed"] == 0
    assert set(doc["versions"]) >= {"microsim", "numpy", "numba", "scipy", "h5py", "matplotlib"}
    assert doc["config"]["source"]["crop"] == CROP
    assert doc["timings_s"]["total"] > 0
    # the validator can fail: a document with a wrong type or a missing key is reported
    broken = json.loads(json.dumps(doc))
    broken["summary"][0]["tau"] = "very tortuous"
    del broken["volume"]["shape"]
    problems = validate(broken, load_schema())
    assert any(p.startswith("$.summary[0].tau") for p in problems)
    assert "$.volume: missing required property shape" in problems


def test_schema_keywords_are_all_checked():
    with pytest.raises(SchemaError, match="pattern"):
        validate("abc", {"type": "string", "pattern": "^a"})
    # the shipped schema walks without unsupported keywords on a minimal document
    validate({}, load_schema())


def test_numbers_match_a_direct_solve(sample_run, samples):
    out, result = sample_run
    volume = read_volume(samples / "electrode_64.tif", samples / "electrode_phases.toml", 0.390625,
                         crop=((0, 24), (0, 24), (0, 24)))
    for carrier in CARRIERS:
        direct = conductivity(volume, DIRS, carrier, tol=TOL)
        for d in DIRS:
            ref = direct.get(carrier, d)
            row = next(r for r in result.rows if r["carrier"] == carrier and r["direction"] == d)
            assert row["tau"] == pytest.approx(ref.tau, rel=1e-12)
            assert row["sigma_eff_S_per_m"] == pytest.approx(ref.sigma_eff_S_per_m, rel=1e-12)
            assert row["eps"] == pytest.approx(ref.eps, rel=1e-15)


def test_summary_csv_rows_and_definitions(sample_run):
    out, _ = sample_run
    with open(out / "summary.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["carrier"], r["direction"]) for r in rows] == [(c, d) for c in CARRIERS for d in DIRS]
    for r in rows:
        eps, tau, sref, seff = (float(r[k]) for k in ("eps", "tau", "sigma_ref_S_per_m", "sigma_eff_S_per_m"))
        assert tau == pytest.approx(eps * sref / seff, rel=1e-9)  # TauFactor's definition, not squared
        assert float(r["macmullin"]) == pytest.approx(tau / eps, rel=1e-9)
        assert float(r["tau_bruggeman"]) == pytest.approx(eps ** -0.5, rel=1e-12)
        assert float(r["alpha_fit"]) == pytest.approx(-math.log(tau) / math.log(eps), rel=1e-9)
        assert 0.9 < float(r["percolating_fraction"]) <= 1.0
        assert r["converged"] == "true"


def test_fields_open_with_h5py_and_xdmf_has_the_right_dimensions(sample_run, samples):
    out, _ = sample_run
    shape = (24, 24, 24)
    with h5py.File(out / "fields.h5", "r") as f:
        labels = f["labels"][...]
        truth = read_volume(samples / "electrode_64.tif", samples / "electrode_phases.toml", 0.390625,
                            crop=((0, 24), (0, 24), (0, 24))).labels
        assert labels.dtype == np.uint8 and np.array_equal(labels, truth)
        assert tuple(f["labels"].attrs["voxel_size_um"]) == (0.390625,) * 3
        for c in CARRIERS:
            for d in DIRS:
                phi = f[f"{c}/{d}/potential_V"][...]
                j = f[f"{c}/{d}/current_density_magnitude_A_per_m2"][...]
                assert phi.shape == shape and j.shape == shape and phi.dtype == np.float32
                finite = np.isfinite(phi)
                # maximum principle: the potential of a 1 V drop lies between the two face values
                # (up to the solver's tolerance)
                assert finite.any() and phi[finite].min() >= -1e-3 and phi[finite].max() <= 1 + 1e-3
                assert phi[finite].max() - phi[finite].min() > 0.9
                assert (j >= 0).all()
                # no current where the network does not conduct (potential NaN there)
                assert np.all(j[~finite] == 0)
        datasets = set()
        f.visititems(lambda name, obj: datasets.add("/" + name) if isinstance(obj, h5py.Dataset) else None)
        dtypes = {name: f[name].dtype for name in datasets}
    root = ET.parse(out / "fields.xdmf").getroot()
    grid = root.find("Domain/Grid")
    assert grid.find("Topology").get("Dimensions") == "25 25 25"  # points: one more than cells
    spacing = [e for e in grid.find("Geometry") if e.get("Name") == "Spacing"][0]
    assert [float(v) for v in spacing.text.split()] == [0.390625] * 3
    attrs = grid.findall("Attribute")
    assert len(attrs) == 1 + 2 * len(CARRIERS) * len(DIRS)
    seen = set()
    for a in attrs:
        item = a.find("DataItem")
        assert a.get("Center") == "Cell" and item.get("Dimensions") == "24 24 24"
        fname, dataset = item.text.strip().split(":")
        assert fname == "fields.h5" and dataset in datasets
        size = {"UChar": 1, "Float": 4}[item.get("NumberType")]
        assert int(item.get("Precision")) == size == dtypes[dataset].itemsize
        seen.add(dataset)
    assert seen == datasets


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.urls, self.tables, self._cell, self._row = [], [], [], None, None

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for k, v in attrs:
            if k in ("src", "href", "srcset", "poster", "data", "action", "background") and v is not None:
                self.urls.append(v)
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._row is not None:
            self._row.append(self._cell)
            self._cell = None
        elif tag == "tr" and self.tables:
            self.tables[-1].append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def test_html_report_is_self_contained_and_has_the_results_table(sample_run):
    out, result = sample_run
    text = (out / "report.html").read_text()
    page = _Links()
    page.feed(text)
    assert not {"script", "link", "iframe", "object", "embed"} & set(page.tags)
    assert page.urls and all(u.startswith("data:image/png;base64,") for u in page.urls)
    doc = json.loads((out / "result.json").read_text())
    assert len(page.urls) == len(doc["files"]["figures"])
    lowered = text.lower()
    assert "url(" not in lowered and "@import" not in lowered and "http:" not in lowered and "https:" not in lowered
    table = next(t for t in page.tables if t and "tau" in t[0] and "sigma_eff (S/m)" in t[0])
    head = table[0]
    assert len(table) == 1 + len(result.rows)
    for row, want in zip(table[1:], result.rows):
        cells = dict(zip(head, row))
        assert (cells["carrier"], cells["dir"]) == (want["carrier"], want["direction"])
        assert float(cells["tau"]) == pytest.approx(want["tau"], rel=1e-3)
    assert "How to reproduce" in text and "microsim run config.toml" in text


def test_config_copy_reruns_to_the_same_numbers(sample_run, tmp_path):
    out, result = sample_run
    doc = tomllib.loads((out / "config.toml").read_text())
    assert Path(doc["source"]["stack"]).is_absolute()
    doc["transport"]["carriers"] = ["ionic"]
    doc["output"] = {"fields": False, "figures": False, "report": False}
    again = run(load_config(doc, tmp_path), tmp_path / "again", quiet=True)
    want = [r for r in result.rows if r["carrier"] == "ionic"]
    assert [r["tau"] for r in again.rows] == [r["tau"] for r in want]
    assert sorted(p.name for p in (tmp_path / "again").iterdir()) == ["config.toml", "result.json", "summary.csv"]


# --- exact answers through the whole pipeline --------------------------------------------------


def test_layers_give_exact_tau_and_a_warning_for_the_blocked_direction(tmp_path):
    # Conducting slabs stacked along z: straight paths along x (tau = 1 exactly),
    # but z crosses the insulating slabs, so nothing percolates along z.
    labels = np.zeros((8, 6, 10), np.uint8)
    labels[0::2] = 1
    np.save(tmp_path / "layers.npy", labels)
    doc = {"run": {"name": "layers"}, "source": {"stack": "layers.npy", "voxel_size_um": [0.5, 0.25, 0.25]},
           "phases": {"insulator": {"label": 0}, "SE": {"label": 1, "sigma_ionic_S_per_m": 0.2}},
           "transport": {"carriers": "ionic", "directions": ["x", "z"]},
           "finite_volume": {"rtol": 1e-9, "current_tol": 1e-8}, "analysis": {"interfaces": False}}
    result = run(load_config(doc, tmp_path), tmp_path / "out", quiet=True)
    x, z = result.rows
    assert x["tau"] == pytest.approx(1.0, abs=1e-7)
    assert x["sigma_eff_S_per_m"] == pytest.approx(0.5 * 0.2, rel=1e-7)
    assert x["macmullin"] == pytest.approx(2.0, rel=1e-7) and x["percolating_fraction"] == 1.0
    assert z["tau"] == "inf" and z["sigma_eff_S_per_m"] == 0.0 and z["percolating_fraction"] == 0.0
    assert any("does not connect the two faces normal to z" in w for w in result.warnings)
    html = (tmp_path / "out" / "report.html").read_text()
    assert "does not connect the two faces normal to z" in html
    with open(tmp_path / "out" / "summary.csv", newline="") as fh:
        assert [r["tau"] for r in csv.DictReader(fh)][1] == "inf"
    doc = json.loads((tmp_path / "out" / "result.json").read_text())
    # every number of the x row, by hand: half the voxels conduct, all of them along x
    for key, value in {"eps": 0.5, "eps_percolating": 0.5, "sigma_ref_S_per_m": 0.2, "normalised_sigma": 0.5,
                       "tau_percolating": 1.0, "tau_bruggeman": 2 ** 0.5, "tau_over_tau_bruggeman": 2 ** -0.5}.items():
        assert doc["summary"][0][key] == pytest.approx(value, rel=1e-7), key
    assert doc["summary"][0]["alpha_fit"] == pytest.approx(0.0, abs=1e-7)
    t = doc["transport"][0]
    # 1 V over 10 x 0.25 um through 8 x 0.5 um by 6 x 0.25 um, half of it conducting
    assert t["current_in_A"] == pytest.approx(0.1 * 6e-12 / 2.5e-6, rel=1e-7)
    assert t["current_out_A"] == pytest.approx(0.1 * 6e-12 / 2.5e-6, rel=1e-7)
    assert t["sigma_eff_S_per_cm"] == pytest.approx(0.001, rel=1e-7)
    # percolation along z: of the four slabs the first touches z = 0 (dead end), the others no z face
    pz = next(p for p in doc["percolation"] if p["direction"] == "z")
    assert (pz["fraction_percolating"], pz["fraction_dead_end"], pz["fraction_isolated"]) == (0.0, 0.25, 0.75)
    assert pz["n_clusters"] == 4 and pz["volume_fraction"] == 0.5 and pz["percolating_volume_fraction"] == 0.0
    assert doc["volume"]["size_um"] == [4.0, 1.5, 2.5] and doc["volume"]["phase_fractions"] == {"insulator": 0.5,
                                                                                                  "SE": 0.5}
    clusters = doc["analysis"]["clusters"]["ionic"]
    assert (clusters["n_clusters"], clusters["largest_voxels"]) == (4, 60)
    assert clusters["voxel_volume_um3"] == pytest.approx(0.5 * 0.25 * 0.25, rel=1e-12)
    assert clusters["largest_um3"] == pytest.approx(60 * 0.5 * 0.25 * 0.25, rel=1e-12)
    profile = doc["profiles"]
    assert profile["phase_fractions"]["SE"] == [1.0, 0.0] * 4
    assert profile["positions_um"] == pytest.approx([0.25 + 0.5 * k for k in range(8)])
    # the current density along x in each z slice: sigma * 1 V / (10 x 0.25 um) in the conducting slabs
    j = 0.2 / 2.5e-6
    assert profile["mean_current_density_A_per_m2"]["ionic x"] == pytest.approx([j, 0.0] * 4, rel=1e-6, abs=1e-6)
    assert "ionic z" not in profile["mean_current_density_A_per_m2"]   # nothing flows along z


def test_grayscale_stack_is_segmented(tmp_path):
    import tifffile
    rng = np.random.default_rng(3)
    truth = np.zeros((12, 12, 12), np.uint8)
    truth[:, :, 4:9] = 1
    gray = np.where(truth == 1, 190, 60).astype(np.float64) + rng.normal(0, 8, truth.shape)
    tifffile.imwrite(tmp_path / "gray.tif", np.clip(gray, 0, 255).astype(np.uint8))
    doc = {"source": {"stack": "gray.tif", "voxel_size_um": 1.0, "segment": {"n_phases": 2}},
           "phases": {"pore": {"label": 0}, "SE": {"label": 7, "sigma_ionic_S_per_m": 1.0}},
           "transport": {"directions": ["z"]}, "output": {"figures": False, "report": False}}
    run(load_config(doc, tmp_path), tmp_path / "out", quiet=True)
    doc = json.loads((tmp_path / "out" / "result.json").read_text())
    assert doc["source"]["segmentation"]["method"] == "multi-otsu"
    with h5py.File(tmp_path / "out" / "fields.h5") as f:
        assert np.array_equal(f["labels"][...], truth * 7)
    # the channel is 5 of 12 voxels wide and straight along z
    assert doc["summary"][0]["eps"] == pytest.approx(5 / 12) and doc["summary"][0]["tau"] == pytest.approx(1, abs=1e-4)


# --- bad input and interruption ----------------------------------------------------------------


@pytest.mark.parametrize("change, message", [
    ({"transport": {"carrier": ["ionic"]}}, "unknown key [transport] carrier; did you mean 'carriers'?"),
    ({"transport": {"directions": ["w"]}}, "[transport] directions: direction 'w' is not one of x, y, z"),
    ({"source": {"stack": "a.tif", "recipe": "r.toml"}}, "exactly one of 'stack'"),
    ({"finite_volume": {"rtol": -1}}, "[finite_volume] rtol = -1 must be > 0"),
    ({"analysis": {"profile_axis": "t"}}, "profile_axis = 't' must be 'z', 'y' or 'x'"),
    ({"random_walk": {"boundary": "closed"}}, "boundary = 'closed' is not one of mirror, periodic"),
    ({"output": {"fields": "yes"}}, "[output] fields = 'yes' must be true or false"),
    ({"sources": {}}, "unknown section [sources]; did you mean 'source'?"),
])
def test_config_errors_are_one_line_with_the_fix(change, message):
    doc = {"source": {"stack": "v.tif"}, "phases": {"SE": {"label": 1, "sigma_ionic_S_per_m": 1.0}}}
    for section, table in change.items():
        doc[section] = {**doc.get(section, {}), **table} if section != "source" else table
    with pytest.raises(ConfigError) as info:
        load_config(doc)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_misplaced_top_level_key_is_explained(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[source]\nstack = "v.tif"\nphases = "p.toml"\n')
    with pytest.raises(ConfigError, match="move 'phases = ...' above the first"):
        load_config(cfg)


def test_missing_stack_and_existing_output_are_refused(tmp_path):
    doc = sample_doc()
    doc["source"]["stack"] = "nowhere.tif"
    with pytest.raises(ValueError) as info:
        run(load_config(doc, SAMPLE_CONFIG.parent), tmp_path / "out", quiet=True)
    assert "nowhere.tif" in str(info.value) and "\n" not in str(info.value)
    assert not any(tmp_path.iterdir())  # no partial output
    (tmp_path / "exists").mkdir()
    with pytest.raises(ConfigError, match="output folder exists; choose another --out or pass --overwrite"):
        run(load_config(sample_doc(), SAMPLE_CONFIG.parent), tmp_path / "exists", quiet=True)


def test_interrupt_during_a_solve_leaves_nothing(tmp_path, monkeypatch):
    import microsim.pipeline.runner as runner
    real = runner.solve_direction
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(args[2])
        if len(calls) == 2:  # after fields.h5 received the first solve's fields
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "solve_direction", interrupted)
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "keep.txt").write_text("previous run")
    with pytest.raises(KeyboardInterrupt):
        run(load_config(sample_doc(**{"output__figures": False}), SAMPLE_CONFIG.parent), tmp_path / "old",
            overwrite=True, quiet=True)
    # the old folder is untouched and no staging folder or temporary file is left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old"]
    assert [p.name for p in (tmp_path / "old").iterdir()] == ["keep.txt"]


def test_sigterm_stops_the_cli_run_cleanly(tmp_path):
    import signal
    import time
    proc = subprocess.Popen([sys.executable, "-m", "microsim", "run", str(SAMPLE_CONFIG), "--out", "killed",
                             "--quiet"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    # signal once the run is under way: its staging folder exists (the lock file comes earlier)
    while time.monotonic() < deadline and proc.poll() is None and \
            not any(p.name.endswith(".partial") for p in tmp_path.iterdir()):
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)  # as a batch system's time limit would
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert "interrupted; no partial output was kept" in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_overwrite_replaces_a_folder_only_when_complete(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "stale.txt").write_text("x")
    doc = sample_doc(output__figures=False, output__fields=False, output__report=False,
                     transport__carriers=["ionic"], transport__directions=["x"])
    run(load_config(doc, SAMPLE_CONFIG.parent), tmp_path / "out", overwrite=True, quiet=True)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["config.toml", "result.json", "summary.csv"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_toml_text_round_trips():
    doc = {"phases": "t.toml", "run": {"name": 'a "quoted" name', "seed": 3},
           "source": {"stack": "v.tif", "crop": "0:8,:,:", "voxel_size_um": [0.5, 0.25, 0.25],
                      "segment": {"thresholds": [10.5, 99.0]}},
           "grid": {"source.crop": ["0:8", "8:16"]}, "flags": {"on": True, "x": -1.5e-7}}
    assert tomllib.loads(toml_text(doc)) == doc


def test_cli_run_prints_table_and_reports_errors_in_one_line(tmp_path):
    cmd = [sys.executable, "-m", "microsim", "run", str(SAMPLE_CONFIG), "--out", str(tmp_path / "cli"), "--quiet",
           "--set", f'source.crop="{CROP}"', "--set", 'transport.directions=["x"]', "--set",
           "transport.carriers=ionic", "--set", "output.figures=false", "--set", "output.report=false"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "tau" in proc.stdout and "ionic" in proc.stdout and proc.stderr == ""
    assert (tmp_path / "cli" / "result.json").is_file()
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert again.returncode == 2
    assert again.stderr.count("\n") == 1 and "output folder exists" in again.stderr
    bad = subprocess.run([sys.executable, "-m", "microsim", "run", str(tmp_path / "missing.toml")],
                         capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "not found" in bad.stderr


def test_real_volume_crop_runs(shared_data, tmp_path):
    path = shared_data / "NREL_nmc-1-cal_generatedCBD_bridge.tif"
    if not path.is_file():
        pytest.skip(f"{path.name} is not in ../shared/data")
    doc = read_toml(ROOT / "samples" / "run_nrel.toml")
    doc["source"]["stack"] = str(path)
    doc["source"]["crop"] = "0:32,0:32,0:32"
    doc["transport"] = {"carriers": ["ionic"], "directions": ["z"]}
    doc["output"] = {"figures": False, "report": False}
    result = run(load_config(doc, ROOT / "samples"), tmp_path / "nrel", quiet=True)
    assert validate_result(tmp_path / "nrel" / "result.json") == []
    ionic, = result.rows
    # SOURCES.md: pore fraction 0.4005 over the whole stack; a 32^3 corner is close to it
    assert 0.25 < ionic["eps"] < 0.55 and 1.0 < ionic["tau"] < 10.0
    assert os.path.getsize(tmp_path / "nrel" / "fields.h5") > 0


def test_random_walk_joins_the_finite_volume_results(tmp_path):
    # Straight slabs along x: both methods must give tau = 1 along x (the walk within its error bars).
    labels = np.zeros((8, 8, 16), np.uint8)
    labels[0::2] = 1
    np.save(tmp_path / "layers.npy", labels)
    doc = {"source": {"stack": "layers.npy"},
           "phases": {"insulator": {"label": 0}, "SE": {"label": 1, "sigma_ionic_S_per_m": 1.0}},
           "transport": {"directions": ["x"]}, "finite_volume": {"tol": 1e-8},
           "random_walk": {"walkers": 16384, "steps": 512, "boundary": "mirror"},
           "analysis": {"interfaces": False}, "output": {"fields": False}}
    result = run(load_config(doc, tmp_path), tmp_path / "out", quiet=True)
    fv, rw = result.rows
    assert (fv["method"], rw["method"]) == ("finite_volume", "random_walk")
    assert fv["tau"] == pytest.approx(1.0, abs=1e-6)
    axis = json.loads((tmp_path / "out" / "result.json").read_text())["random_walk"][0]["axes"]["x"]
    assert axis["tau_se"] < 0.02 and abs(rw["tau"] - 1.0) < max(0.03, 3 * axis["tau_se"])
    assert (tmp_path / "out" / "msd_ionic.png").is_file()
    assert validate_result(tmp_path / "out" / "result.json") == []
    assert "Random walk" in (tmp_path / "out" / "report.html").read_text()


TINY_RECIPE = {"boundary": "periodic", "domain": {"shape": [24, 24, 24], "voxel_size_um": 0.5},
               "active": {"material": "NMC811", "fraction": 0.5, "size": {"d50_um": 4.0}},
               "electrolyte": {"material": "Li6PS5Cl"}}


def test_recipe_source_generates_the_volume_with_the_run_seed(tmp_path):
    from microsim.generate import Recipe, generate
    doc = {"run": {"seed": 7}, "source": {"recipe": TINY_RECIPE}, "transport": {"directions": ["x"]},
           "output": {"figures": False, "report": False}}
    result = run(load_config(doc, tmp_path), tmp_path / "out", quiet=True)
    saved = json.loads((tmp_path / "out" / "result.json").read_text())
    assert saved["seed"] == 7 and saved["source"]["kind"] == "recipe" and saved["source"]["seed"] == 7
    achieved = saved["source"]["generated"]["achieved"]
    assert achieved["active"] == pytest.approx(0.5, abs=0.01)
    # the ionic network is the generated electrolyte, and the volume is the one the seed gives
    assert result.rows[0]["eps"] == pytest.approx(achieved["electrolyte"], abs=1e-12)
    same = generate(Recipe.from_dict(TINY_RECIPE), seed=7).volume
    with h5py.File(tmp_path / "out" / "fields.h5") as f:
        assert np.array_equal(f["labels"][...], same.labels)
    assert validate_result(tmp_path / "out" / "result.json") == []
    with pytest.raises(ConfigError, match="applies to stacks only"):
        load_config({"source": {"recipe": TINY_RECIPE, "crop": "0:8,:,:"}})
