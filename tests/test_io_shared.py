"""The real volumes of ../shared/data load with the shapes, labels and fractions their sources state.

Expected values are those of ../shared/data/SOURCES.md, compared at the number of
decimals given there. None of the files stores a usable voxel size (the TIFF
headers hold a 72 dpi print resolution, or an ImageJ calibration in inches), so
the sizes SOURCES.md states are given on the command line and must come through.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from microsim.cli import main
from microsim.io import describe, load_stack, read_volume
from microsim.segment import segment

# file: (shape, dtype, {label: fraction as stated}, decimals, voxel size stated in um or None)
EXPECTED = {
    "NREL_nmc-1-cal_generatedCBD_bridge.tif": ((251, 301, 301), "uint8", {0: 0.4005, 1: 0.4995, 2: 0.1000}, 4, 0.398),
    "MATBOX_Ellipsoids.tif": ((200, 200, 200), "uint8", {0: 0.3974, 1: 0.6026}, 4, None),
    "openimpala/SampleData_2Phase_stack_3d_1bit.tif": ((100, 100, 100), "bool", {1: 0.398309}, 6, None),
    "openimpala/SampleData_2Phase_3d.hdf5": ((100, 100, 100), "uint8", {1: 0.399553}, 6, None),
    "taufactor_electrode_NMC_pore_CBD_256.tiff": ((256, 256, 256), "uint8", {0: 0.4499, 85: 0.4005, 170: 0.1496}, 4,
                                                  0.390625),
    "TF-500x500x500-1x2x6-v3_deflate.tif": ((500, 500, 500), "uint8", {0: 0.7, 255: 0.3}, 12, None),
    "MATBOX_Bi_layer.tif": ((240, 240, 240), "uint8", {0: 0.408, 1: 0.165, 2: 0.427}, 3, None),
    "TortuosityJL_blobs_xyz.npy": ((32, 42, 52), "uint8", {1: 0.7036}, 4, None),
}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_real_volume_shape_labels_fractions_and_info_output(shared_data, name, tmp_path, capsys):
    shape, dtype, fractions, decimals, voxel = EXPECTED[name]
    path = shared_data / name
    info = describe(path)
    assert info.shape == shape and info.dtype == dtype
    assert info.voxel_size_um is None  # no file states a voxel size
    report = tmp_path / "info.json"
    args = ["info", str(path), "--json", str(report), "--quiet"]
    if voxel is not None:
        args += ["--voxel-size", str(voxel)]
    assert main(args) == 0
    out = capsys.readouterr().out
    summary = json.loads(report.read_text())["summary"]
    assert summary["kind"] == "labels" and summary["shape"] == list(shape)
    got = {row["value"]: row["fraction"] for row in summary["labels"]}
    assert sum(row["count"] for row in summary["labels"]) == int(np.prod(shape))
    for label, stated in fractions.items():
        assert round(got[label], decimals) == stated, (label, got[label])
        assert f"{got[label]:.4f}" in out  # the fraction is printed
    if voxel is not None:
        assert f"{voxel:g} x {voxel:g} x {voxel:g} um (given)" in out
    if name.startswith("TF-500"):
        assert got[255] * 500**3 == 37_500_000  # exactly 30 %


def test_phase_names_from_a_table(shared_data, samples, capsys):
    path = shared_data / "taufactor_electrode_NMC_pore_CBD_256.tiff"
    assert main(["info", str(path), "--phases", str(samples / "electrode_phases.toml"), "--crop", "0:64,:,:",
                 "--quiet"]) == 0
    out = capsys.readouterr().out
    names = [line.split()[1] for line in out.splitlines() if line.strip()[:1].isdigit() and len(line.split()) == 4]
    assert names == ["electrolyte", "NMC", "CBD"]


def test_stated_voxel_size_reaches_the_volume(shared_data, samples):
    v = read_volume(shared_data / "NREL_nmc-1-cal_generatedCBD_bridge.tif",
                    {"pore": {"label": 0}, "NMC": {"label": 1}, "CBD": {"label": 2}}, 0.398, crop="0:40,:,:")
    assert v.voxel_size_um == (0.398, 0.398, 0.398) and v.shape == (40, 301, 301)
    fib = describe(shared_data / "pumapy_100_fiberform.tif")
    assert fib.voxel_size_um is None and any("inch" in n for n in fib.notes)
    assert load_stack(shared_data / "pumapy_100_fiberform.tif", voxel_size_um=1.3).voxel_size_um == (1.3, 1.3, 1.3)


def test_fiberform_segmentation_reproduces_upstream_porosity(shared_data, tmp_path, capsys):
    """Upstream: void = grey 0-89, solid = 90-255, porosity 0.83286."""
    gray = load_stack(shared_data / "pumapy_100_fiberform.tif").array
    assert gray.dtype == np.uint8 and len(np.unique(gray)) > 100  # grayscale, not labels
    result = segment(gray, thresholds=[89])
    assert round(result.fractions[0], 5) == 0.83286
    out = tmp_path / "fiber_labels.tif"
    assert main(["segment", str(shared_data / "pumapy_100_fiberform.tif"), "--thresholds", "89", "--out", str(out),
                 "--voxel-size", "1.3", "--quiet"]) == 0
    capsys.readouterr()
    back = load_stack(out)
    assert back.voxel_size_um == (1.3, 1.3, 1.3)
    assert round(float((back.array == 0).mean()), 5) == 0.83286
