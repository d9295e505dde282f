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
    assert sorted(row["eps"] for row in doc["rows"]) == [2 / 8, 3 / 8, 5 / 8, 6 / 8]
    for row in doc["rows"]:
        assert row["tau"] == pytest.approx(1.0, abs=1e-6)
        assert row["ratio"] == pytest.approx(row["eps"] ** 0.5, rel=1e-5)
        assert row["tau_bruggeman"] == pytest.approx(row["eps"] ** -0.5, rel=1e-12)
        assert row["alpha_fit"] == pytest.approx(0.0, abs=1e-5)
    assert (tmp_path / "b.png").read_bytes()[:4] == b"\x89PNG"


def test_bruggeman_command_rejects_other_files(tmp_path, capsys):
    bad = tmp_path / "x.json"
    bad.write_text("[1, 2]")
    assert main(["bruggeman", str(bad), "--out", str(tmp_path / "o.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert "has no 'results' list" in err and "\n" not in err
    assert not (tmp_path / "o.json").exists()


def test_analyze_every_section_against_hand_counts(tmp_path, capsys):
    # SE and NMC one-voxel slabs alternating along x, voxel (0.5, 1.0, 3.0) um: every number below follows
    # from counting slabs and faces
    lab = np.zeros((8, 8, 8), np.uint8)
    lab[:, :, 1::2] = 1
    np.save(tmp_path / "v.npy", lab)
    (tmp_path / "p.toml").write_text('[phases.SE]\nlabel = 0\nmaterial = "Li6PS5Cl"\nsigma_electronic_S_per_m = 0.0\n'
                                     '\n[phases.NMC]\nlabel = 1\nmaterial = "NMC811"\nsigma_ionic_S_per_m = 0.0\n')
    out = tmp_path / "a.json"
    rc = main(["analyze", str(tmp_path / "v.npy"), "--phases", str(tmp_path / "p.toml"), "--voxel-size",
               "0.5,1.0,3.0", "--out", str(out), "--rev-sizes", "4,8", "--psd-bins", "6", "--quiet"])
    assert rc == 0
    capsys.readouterr()
    doc = json.loads(out.read_text())
    voxel, box = 1.5, 512 * 1.5
    assert doc["fractions"] == {"phases": {"SE": 0.5, "NMC": 0.5}, "unions": {}, "n_voxels": 512, "volume_um3": box}
    # percolation: four slabs per phase, each spanning y and z; along x the first slab of SE touches x = 0 and
    # the last of NMC x = end (dead ends), the other three of each touch no x face
    for p in doc["percolation"]:
        assert p["volume_fraction"] == 0.5 and p["connectivity"] == 6
        d = p["directions"]
        assert (d["x"]["fraction_percolating"], d["x"]["fraction_dead_end"], d["x"]["fraction_isolated"]) == (
            0.0, 0.25, 0.75)
        assert (d["x"]["n_percolating"], d["x"]["n_dead_end"], d["x"]["n_isolated"]) == (0, 1, 3)
        for axis in "yz":
            assert d[axis]["fraction_percolating"] == 1.0 and d[axis]["n_percolating"] == 4
        c = p["clusters"]
        assert (c["n_clusters"], c["n_voxels"], c["largest_voxels"]) == (4, 256, 64)
        assert c["voxel_volume_um3"] == voxel and c["largest_um3"] == 64 * voxel and c["mean_um3"] == 64 * voxel
        assert c["largest_fraction"] == 0.25 and c["weighted_mean_voxels"] == 64.0
    # interfaces: 7 planes normal to x of 8 x 8 faces of dz * dy = 0.5 um^2
    area = 7 * 64 * 0.5
    (pair,) = doc["interfaces"]["pairs"]
    assert {pair["phase_a"], pair["phase_b"]} == {"SE", "NMC"}
    assert pair["area_um2"] == pytest.approx(area, rel=1e-6) and pair["face_count_area_um2"] == area
    assert pair["specific_area_per_um"] == pytest.approx(area / box, rel=1e-6)
    assert pair["face_count_specific_area_per_um"] == pytest.approx(area / box, rel=1e-12)
    for s in doc["interfaces"]["surfaces"]:
        assert s["area_um2"] == pytest.approx(area, rel=1e-6)
        assert s["area_per_phase_volume_per_um"] == pytest.approx(area / (256 * voxel), rel=1e-6)
    assert doc["interfaces"]["volume_um3"] == box
    # active material: every NMC slab reaches z = end and faces SE slabs that reach z = 0
    a = doc["active_material"]
    assert (a["n_particles"], a["n_active_particles"]) == (4, 4)
    assert a["fraction_active"] == 1.0 and a["fraction_inactive"] == 0.0 and a["active_volume_fraction"] == 0.5
    assert a["interface_area_um2"] == area and a["active_interface_area_um2"] == area
    # Bruggeman: each carrier's conducting phase fills half the box; nothing percolates along x
    for b in doc["bruggeman"]:
        assert b["eps"] == 0.5 and b["tau_bruggeman"] == pytest.approx(2 ** 0.5, rel=1e-12)
        assert b["eps_percolating"] == {"x": 0.0, "y": 0.5, "z": 0.5}
    assert {b["carrier"]: b["conducting_phases"] for b in doc["bruggeman"]} == {"ionic": ["SE"],
                                                                                "electronic": ["NMC"]}
    # REV: any 4-voxel cube holds two slabs of each phase, wherever it starts
    rev = doc["rev"]
    s4, s8 = rev["sizes"]
    assert s4["size_voxels"] == 4 and s4["size_um"] == [2.0, 4.0, 12.0] and s4["n_samples"] == 8
    assert s4["fraction_mean"] == {"SE": 0.5, "NMC": 0.5} and s4["fraction_std"] == {"SE": 0.0, "NMC": 0.0}
    assert s8["n_samples"] == 1 and s8["fraction_mean"] == {"SE": 0.5, "NMC": 0.5}
    assert rev["rev_size_fraction"] == {"SE": 4, "NMC": 4}
    # size distribution of the active phase: a layer one voxel (3 um) thick reads as n + 1 = 2 voxels, 6 um
    (psd,) = doc["psd"]
    assert psd["phase"] == "NMC" and psd["method"] == "local_thickness" and psd["n_particles"] is None
    assert (psd["d10_um"], psd["d50_um"], psd["d90_um"], psd["mean_diameter_um"]) == pytest.approx((6.0,) * 4)
    assert sum(row["volume_fraction"] for row in psd["table"]) == pytest.approx(1.0)
