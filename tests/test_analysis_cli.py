"""`microsim analyze` and `microsim bruggeman` end to end."""
import json
from pathlib import Path

import numpy as np
import pytest

from microsim import percolation
from microsim.analysis import active_material
from microsim.cli import main
from microsim.io import read_volume

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def test_analyze_sample(tmp_path, capsys):
    out = tmp_path / "analysis.json"
    plots = tmp_path / "plots"
    rc = main(["analyze", str(SAMPLES / "electrode_64.tif"), "--phases", str(SAMPLES / "electrode_phases.toml"),
               "--voxel-size", "0.390625", "--out", str(out), "--plots", str(plots), "--rev-sizes", "16,32",
               "--psd-bins", "12", "--quiet"])
    assert rc == 0
    text = capsys.readouterr()
    assert "percolation" in text.out and text.err == ""
    doc = json.loads(out.read_text())
    v = read_volume(SAMPLES / "electrode_64.tif", SAMPLES / "electrode_phases.toml", 0.390625)
    assert doc["fractions"]["phases"] == pytest.approx(v.phase_fractions())
    names = [p["name"] for p in doc["percolation"]]
    assert names == ["electrolyte", "NMC", "CBD", "NMC+CBD"]
    for p in doc["percolation"]:
        mask = v.mask(p["name"].split("+"))
        for direction, d in p["directions"].items():
            want = percolation(mask, direction)  # the solver's own percolation step
            assert d["fraction_percolating"] == pytest.approx(want.fraction_percolating, abs=1e-12)
            assert d["fraction_dead_end"] == pytest.approx(want.fraction_dead_end, abs=1e-12)
    # the sample's electrolyte is almost all one network (eps_perc 0.4353 of 0.4357)
    electrolyte = doc["percolation"][0]["directions"]
    assert all(0.99 < d["fraction_percolating"] < 1.0 for d in electrolyte.values())
    a = doc["active_material"]
    assert a["active_phases"] == ["NMC"] and a["electronic_phases"] == ["NMC", "CBD"]
    assert a["fraction_active"] == pytest.approx(active_material(v).fraction_active, abs=1e-12)
    assert {(q["phase_a"], q["phase_b"]) for q in doc["interfaces"]["pairs"]} == {
        ("electrolyte", "NMC"), ("electrolyte", "CBD"), ("NMC", "CBD")}
    assert [s["size_voxels"] for s in doc["rev"]["sizes"]] == [16, 32]
    assert doc["psd"][0]["phase"] == "NMC" and len(doc["psd"][0]["table"]) <= 12
    assert (plots / "psd_NMC.png").read_bytes()[:4] == b"\x89PNG"
    b = {x["carrier"]: x for x in doc["bruggeman"]}
    assert b["ionic"]["tau_bruggeman"] == pytest.approx(doc["fractions"]["phases"]["electrolyte"] ** -0.5)


@pytest.mark.parametrize("extra, message", [
    (["--active", "LFP"], "no phase named 'LFP'"),
    (["--psd-bins", "0"], "at least 1"),
])
def test_analyze_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, monkeypatch, extra, message):
    monkeypatch.chdir(tmp_path)
    args = ["analyze", str(SAMPLES / "electrode_64.tif"), "--phases", str(SAMPLES / "electrode_phases.toml"),
            "--quiet", "--rev-sizes", "32"]
    if "--out" not in extra:
        args += ["--out", "a.json"]
    rc = main(args + extra)
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.startswith("microsim analyze: error:") and message in err and "\n" not in err
    assert list(tmp_path.iterdir()) == []


def test_analyze_bad_face_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["analyze", "x.tif", "--phases", "p.toml", "--separator", "top"])
    assert e.value.code == 2 and "AXIS=0 or AXIS=end" in capsys.readouterr().err


def test_bruggeman_command_on_conductivity_results(tmp_path, capsys):
    # Slabs of k voxels across an 8^3 volume: straight paths along z, tau = 1 for every eps,
    # so the fit must give A = 1 and alpha = 0, and Bruggeman overestimates tau by eps^-0.5.
    toml = tmp_path / "phases.toml"
    toml.write_text('[phases.SE]\nlabel = 1\nsigma_ionic_S_per_m = 0.1\n[phases.AM]\nlabel = 0\n')
    files = []
    for k in (2, 3, 5, 6):
        lab = np.zeros((8, 8, 8), np.uint8)
        lab[:, :, :k] = 1
        np.save(tmp_path / f"slab{k}.npy", lab)
        out = tmp_path / f"slab{k}.json"
        assert main(["conductivity", str(tmp_path / f"slab{k}.npy"), "--phases", str(toml), "--direction", "z",
                     "--out", str(out), "--quiet"]) == 0
        files.append(str(out))
    capsys.readouterr()
    rc = main(["bruggeman", *files, "--plot", str(tmp_path / "b.png"), "--out", str(tmp_path / "b.json")])
    assert rc == 0
    text = capsys.readouterr().out
    assert "fit ionic" in text
    doc = json.loads((tmp_path / "b.json").read_text())
    fit = doc["fits"]["ionic"]
    assert fit["alpha"] == pytest.approx(0.0, abs=1e-5) and fit["prefactor"] == pytest.approx(1.0, abs=1e-5)
    assert fit["n_points"] == 4
    for row in doc["rows"]:
        assert row["tau"] == pytest.approx(1.0, abs=1e-6)
        assert row["ratio"] == pytest.approx(row["eps"] ** 0.5, rel=1e-5)
    assert (tmp_path / "b.png").read_bytes()[:4] == b"\x89PNG"


def test_bruggeman_command_rejects_other_files(tmp_path, capsys):
    bad = tmp_path / "x.json"
    bad.write_text("[1, 2]")
    assert main(["bruggeman", str(bad), "--out", str(tmp_path / "o.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert "has no 'results' list" in err and "\n" not in err
    assert not (tmp_path / "o.json").exists()
