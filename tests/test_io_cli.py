"""`microsim info`, `convert` and `conductivity` on every input format."""
from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from microsim import Volume, conductivity
from microsim.cli import main
from microsim.io import RawLayout, describe, load_stack, read_volume, write_volume

PHASES = '[phases.pore]\nlabel = 0\nsigma_ionic_S_per_m = 0.5\n\n[phases.solid]\nlabel = 255\n'


@pytest.fixture()
def labelled(tmp_path):
    rng = np.random.default_rng(11)
    labels = np.where(rng.random((10, 12, 14)) < 0.75, 0, 255).astype(np.uint8)
    table = tmp_path / "phases.toml"
    table.write_text(PHASES)
    return Volume(labels, table, (0.5, 0.25, 0.25)), table


def test_convert_every_format_to_every_format(tmp_path, labelled, capsys):
    volume, _ = labelled
    src = tmp_path / "src.h5"
    write_volume(src, volume)
    outputs = ["a.tif", "a.npy", "a.raw", "a_slices", "b.h5"]
    prev = src
    for name in outputs:  # a chain: each output is the next input
        assert main(["convert", str(prev), str(tmp_path / name), "--quiet"]) == 0
        prev = tmp_path / name
        v = read_volume(prev)
        assert np.array_equal(v.labels, volume.labels)
        assert v.voxel_size_um == volume.voxel_size_um and v.phases == volume.phases
    assert "wrote" in capsys.readouterr().out
    assert (tmp_path / "b.xdmf").is_file()


def test_convert_crop_and_downsample_scale_the_voxel_size(tmp_path, labelled, capsys):
    volume, _ = labelled
    src = tmp_path / "src.tif"
    write_volume(src, volume)
    out = tmp_path / "small.h5"
    assert main(["convert", str(src), str(out), "--crop", "2:10,:,1:13", "--downsample", "2", "--quiet"]) == 0
    capsys.readouterr()
    v = read_volume(out)
    assert v.shape == (4, 6, 6) and v.voxel_size_um == (1.0, 0.5, 0.5)
    assert any("block 2x2x2 by majority vote" in p for p in v.provenance)
    assert main(["convert", str(src), str(tmp_path / "mean.npy"), "--downsample", "2", "--reduce", "mean",
                 "--quiet"]) == 0
    capsys.readouterr()
    mean = load_stack(tmp_path / "mean.npy")
    assert mean.array.dtype == np.float32 and mean.info.phases is None  # averaged labels are not labels
    assert mean.array[0, 0, 0] == pytest.approx(volume.labels[:2, :2, :2].mean())


def test_convert_grayscale_slices_with_slice_thickness(tmp_path, capsys):
    folder = tmp_path / "fib"
    folder.mkdir()
    gray = np.random.default_rng(2).integers(0, 4000, (6, 8, 9)).astype(np.uint16)
    for k in range(6):
        tifffile.imwrite(folder / f"fib_{k + 1}.tif", gray[k], imagej=True, resolution=(1 / 0.01, 1 / 0.01),
                         metadata={"unit": "micron"})
    out = tmp_path / "fib.h5"
    assert main(["convert", str(folder), str(out), "--slice-thickness", "0.03", "--quiet"]) == 0
    capsys.readouterr()
    s = load_stack(out)
    assert np.array_equal(s.array, gray) and s.voxel_size_um == pytest.approx((0.03, 0.01, 0.01))


def test_info_reports_grayscale_histogram_and_otsu(tmp_path, capsys):
    rng = np.random.default_rng(0)
    gray = np.where(rng.random((20, 20, 20)) < 0.4, 60, 190) + rng.normal(0, 8, (20, 20, 20))
    path = tmp_path / "g.npy"
    np.save(path, gray.astype(np.float32))
    report = tmp_path / "info.json"
    assert main(["info", str(path), "--json", str(report), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "grey levels" in out and "otsu 2" in out and "histogram" in out
    doc = json.loads(report.read_text())
    (t,) = doc["otsu_thresholds"]["2"]
    assert 80 < t < 170
    assert sum(doc["summary"]["histogram"]["counts"]) == 8000
    assert doc["summary"]["minimum"] == pytest.approx(float(gray.astype(np.float32).min()))


def test_info_header_only_and_stored_table(tmp_path, labelled, capsys):
    volume, _ = labelled
    write_volume(tmp_path / "v.raw", volume)
    assert main(["info", str(tmp_path / "v.raw"), "--header-only"]) == 0
    out = capsys.readouterr().out
    assert "10 x 12 x 14" in out and "0.5 x 0.25 x 0.25 um" in out and "pore=0, solid=255" in out
    assert "fraction" not in out  # the voxels were not read


@pytest.mark.parametrize("name", ["v.h5", "v.raw", "v_slices", "v.npy"])
def test_conductivity_reads_every_format_with_the_files_voxel_size(tmp_path, labelled, name, capsys):
    volume, table = labelled
    path = tmp_path / name
    write_volume(path, volume)
    out = tmp_path / "r.json"
    assert main(["conductivity", str(path), "--phases", str(table), "--direction", "z", "--out", str(out),
                 "--quiet"]) == 0
    capsys.readouterr()
    doc = json.loads(out.read_text())
    assert doc["voxel_size_um"] == [0.5, 0.25, 0.25] and doc["shape"] == [10, 12, 14]
    want = conductivity(volume, "z").get("ionic", "z")  # the command's defaults are the library's
    assert doc["results"][0]["tau"] == pytest.approx(want.tau, rel=1e-9)


def test_conductivity_on_a_raw_file_region(tmp_path, labelled, capsys):
    volume, table = labelled
    path = tmp_path / "plain.raw"
    path.write_bytes(volume.labels.tobytes())
    out = tmp_path / "r.json"
    assert main(["conductivity", str(path), "--phases", str(table), "--raw-shape", "10,12,14", "--raw-dtype", "uint8",
                 "--crop", "0:10,0:12,2:14", "--voxel-size", "0.5,0.25,0.25", "--direction", "z", "--out", str(out),
                 "--quiet"]) == 0
    capsys.readouterr()
    doc = json.loads(out.read_text())
    assert doc["shape"] == [10, 12, 12]
    sub = Volume(volume.labels[:, :, 2:], volume.phases, (0.5, 0.25, 0.25))
    want = conductivity(sub, "z").get("ionic", "z")
    assert doc["results"][0]["tau"] == pytest.approx(want.tau, rel=1e-9)
    assert describe(path, raw=RawLayout((10, 12, 14), "uint8")).voxel_size_um is None  # raw data has no metadata


def test_summary_recognises_labels_in_any_integer_type(tmp_path):
    from microsim.io.summary import summarize_stack
    rng = np.random.default_rng(0)
    wide = rng.choice(np.array([0, 5, 1_000_000]), (20, 20, 20))
    np.save(tmp_path / "wide.npy", wide)
    s = summarize_stack(tmp_path / "wide.npy")
    assert s.kind == "labels" and s.values == (0, 5, 1_000_000)
    assert s.counts == tuple(int((wide == v).sum()) for v in (0, 5, 1_000_000))
    signed = rng.choice(np.array([-3, 0, 7], np.int8), (20, 20, 20))
    np.save(tmp_path / "signed.npy", signed)
    s = summarize_stack(tmp_path / "signed.npy", crop="0:10,:,:")
    assert s.kind == "labels" and s.values == (-3, 0, 7) and sum(s.counts) == 4000
    assert s.fractions[7] == pytest.approx(float((signed[:10] == 7).mean()))
    noise = rng.integers(0, 60000, (20, 20, 20)).astype(np.uint16)
    np.save(tmp_path / "noise.npy", noise)
    s = summarize_stack(tmp_path / "noise.npy")
    assert s.kind == "grayscale" and s.minimum == noise.min() and s.maximum == noise.max()
    assert s.mean == pytest.approx(noise.mean()) and s.std == pytest.approx(noise.std())
    assert s.histogram.counts.sum() == noise.size
