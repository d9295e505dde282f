"""Validation of volumes and phase tables: every bad input gets a one-line error naming the fix."""
from __future__ import annotations

import numpy as np
import pytest

from microsim import PhaseTable, PhaseTableError, Volume, VolumeError, directions, phase_table

PH = {"pore": {"label": 0}, "SE": {"label": 1, "sigma_ionic_S_per_m": 0.1}}


def one_line(exc) -> str:
    text = str(exc.value)
    assert "\n" not in text and text
    return text


@pytest.mark.parametrize("shape, hint", [((4, 4), "3D"), ((2, 3, 4, 5), "3D")])
def test_wrong_dimensions(shape, hint):
    with pytest.raises(VolumeError) as e:
        Volume(np.zeros(shape, np.uint8), PH)
    assert hint in one_line(e)


def test_float_labels_rejected():
    with pytest.raises(VolumeError) as e:
        Volume(np.zeros((3, 3, 3), np.float32), PH)
    assert "integer" in one_line(e) and "segment" in one_line(e)


def test_wide_integer_labels_in_range_are_accepted_out_of_range_rejected():
    v = Volume(np.ones((2, 2, 2), np.int64), PH)
    assert v.labels.dtype == np.uint8
    with pytest.raises(VolumeError) as e:
        Volume(np.full((2, 2, 2), 300, np.int32), PH)
    assert "0..255" in one_line(e)


def test_label_missing_from_table():
    labels = np.zeros((3, 3, 3), np.uint8)
    labels[0, 0, 0] = 7
    with pytest.raises(VolumeError) as e:
        Volume(labels, PH)
    assert "7" in one_line(e) and "phase table" in one_line(e)


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), "abc"])
def test_bad_conductivity(bad):
    with pytest.raises(PhaseTableError) as e:
        phase_table({"SE": {"label": 1, "sigma_ionic_S_per_m": bad}})
    assert "S/m" in one_line(e)


@pytest.mark.parametrize("voxel", [0.0, -1.0, (1.0, 0.0, 1.0), (1.0, 1.0), float("nan")])
def test_bad_voxel_size(voxel):
    with pytest.raises(VolumeError) as e:
        Volume(np.zeros((2, 2, 2), np.uint8), PH, voxel)
    assert "micrometres" in one_line(e)


def test_duplicate_labels_and_names():
    with pytest.raises(PhaseTableError):
        phase_table({"a": {"label": 1}, "b": {"label": 1}})
    with pytest.raises(PhaseTableError):
        phase_table({"a": {"label": 300}})
    with pytest.raises(PhaseTableError) as e:
        phase_table({"a": {"labl": 1}})
    assert "unknown key" in one_line(e)


def test_toml_round_trip_and_presets(tmp_path):
    path = tmp_path / "phases.toml"
    path.write_text('[phases.pore]\nlabel = 0\nmaterial = "pore"\n\n'
                    '[phases.SE]\nlabel = 85\nmaterial = "Li6PS5Cl"\n\n'
                    '[phases.NMC]\nlabel = 170\nmaterial = "NMC811"\nsigma_ionic_S_per_m = 0.0\n')
    t = PhaseTable.from_toml(path)
    assert t["SE"].sigma_ionic_S_per_m > 0 and t["SE"].material == "Li6PS5Cl"
    assert t["NMC"].sigma_ionic_S_per_m == 0.0 and t["NMC"].sigma_electronic_S_per_m > 0
    again = tmp_path / "again.toml"
    again.write_text(t.to_toml())
    assert PhaseTable.from_toml(again) == t
    lut = t.conductivity_lut("ionic")
    assert lut.shape == (256,) and lut[85] == t["SE"].sigma_ionic_S_per_m


def test_bad_toml_files(tmp_path):
    with pytest.raises(PhaseTableError) as e:
        PhaseTable.from_toml(tmp_path / "missing.toml")
    assert "not found" in one_line(e)
    bad = tmp_path / "bad.toml"
    bad.write_text("[phases.a\nlabel=1")
    with pytest.raises(PhaseTableError) as e:
        PhaseTable.from_toml(bad)
    assert "TOML" in one_line(e)
    empty = tmp_path / "empty.toml"
    empty.write_text("title = 'x'\n")
    with pytest.raises(PhaseTableError) as e:
        PhaseTable.from_toml(empty)
    assert "[phases.NAME]" in one_line(e)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text('[phases.a]\nlabel = 1\nmaterial = "unobtainium"\n')
    with pytest.raises(ValueError) as e:
        PhaseTable.from_toml(unknown)
    assert "unobtainium" in one_line(e)


def test_volume_helpers():
    labels = np.zeros((2, 4, 5), np.uint8)
    labels[:, :2] = 1
    v = Volume(labels, PH, (0.5, 1.0, 2.0))
    assert v.size_um == (1.0, 4.0, 10.0)
    assert v.phase_fractions() == {"pore": 0.5, "SE": 0.5}
    assert v.mask("SE").sum() == 20
    w = v.derive(labels=np.ones_like(labels), note="filled")
    assert w.provenance == ("filled",) and w.voxel_size_um == v.voxel_size_um
    assert directions("all") == ("x", "y", "z") and directions("z,x") == ("z", "x")
    with pytest.raises(VolumeError):
        directions("q")
