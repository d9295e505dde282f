"""Bad input files: one line that names the file and the problem, a non-zero exit code, no output."""
from __future__ import annotations

import subprocess
import sys

import h5py
import numpy as np
import pytest
import tifffile

from microsim.cli import main
from microsim.io import RawLayout, VolumeReadError, describe, read_array, read_volume


def _truncated_tiff(tmp_path, compression):
    path = tmp_path / f"cut_{compression or 'none'}.tif"
    arr = np.random.default_rng(0).integers(0, 3, (20, 30, 40), dtype=np.uint8)
    tifffile.imwrite(path, arr, photometric="minisblack", compression=compression)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _hdf5_without_3d(tmp_path):
    path = tmp_path / "flat.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("projection", data=np.zeros((30, 40), np.uint16))
        f.create_dataset("angles", data=np.zeros(5))
    return path


def _short_raw(tmp_path):
    path = tmp_path / "cube.raw"
    path.write_bytes(bytes(999))
    return path


def _mixed_slices(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    for k in range(3):
        tifffile.imwrite(folder / f"s{k}.tif", np.zeros((10, 10), np.uint8))
    tifffile.imwrite(folder / "s3.tif", np.zeros((10, 12), np.uint8))
    return folder


def _empty_folder(tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    return folder


# (make file, extra CLI args, words the message must contain)
BAD = {
    "truncated uncompressed tiff": (lambda p: _truncated_tiff(p, None), [], ["cut_none.tif", "truncated"]),
    "truncated compressed tiff": (lambda p: _truncated_tiff(p, "zlib"), [], ["cut_zlib.tif", "truncated"]),
    "hdf5 without 3D dataset": (_hdf5_without_3d, [], ["flat.h5", "no 3D dataset", "/projection (30, 40)"]),
    "raw of the wrong size": (_short_raw, ["--raw-shape", "10,10,10", "--raw-dtype", "uint8"],
                              ["cube.raw: file has 999 bytes but shape (10,10,10) uint8 needs 1000; "
                               "check --raw-shape/--raw-dtype"]),
    "slices of different sizes": (_mixed_slices, [], ["s3.tif", "10 x 12", "10 x 10", "same size"]),
    "empty folder": (_empty_folder, [], ["empty", "no .tif/.tiff slices"]),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_file_gives_one_line_error_naming_file_and_problem(tmp_path, case, capsys):
    make, extra, words = BAD[case]
    path = make(tmp_path)
    raw = RawLayout((10, 10, 10), "uint8") if "--raw-shape" in extra else None
    with pytest.raises(VolumeReadError) as err:
        read_array(path, raw=raw)
    message = str(err.value)
    assert "\n" not in message
    for w in words:
        assert w in message, (w, message)
    for command in (["info", str(path)], ["convert", str(path), str(tmp_path / "out.h5")],
                    ["conductivity", str(path), "--phases", str(tmp_path / "unused.toml")]):
        code = main(command + extra + ["--quiet"])
        captured = capsys.readouterr()
        assert code == 2
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1, captured.err
        assert all(w in lines[0] for w in words), lines[0]
    assert not (tmp_path / "out.h5").exists() and not (tmp_path / "out.xdmf").exists()


def test_exit_code_of_the_program(tmp_path):
    path = _short_raw(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "microsim", "info", str(path), "--raw-shape", "10,10,10",
                           "--raw-dtype", "uint8"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.strip().endswith("needs 1000; check --raw-shape/--raw-dtype")
    assert len(proc.stderr.strip().splitlines()) == 1


def test_more_bad_inputs(tmp_path):
    (tmp_path / "noise.tif").write_bytes(b"this is not a TIFF file at all" * 10)
    with pytest.raises(VolumeReadError, match="noise.tif: not a readable TIFF file"):
        describe(tmp_path / "noise.tif")
    tifffile.imwrite(tmp_path / "one.tif", np.zeros((30, 40), np.uint8))
    with pytest.raises(VolumeReadError, match="single 2D image of 30 x 40 pixels"):
        describe(tmp_path / "one.tif")
    tifffile.imwrite(tmp_path / "rgb.tif", np.zeros((5, 30, 40, 3), np.uint8), photometric="rgb")
    with pytest.raises(VolumeReadError, match="one 3D single-channel stack.*colour samples"):
        describe(tmp_path / "rgb.tif")
    with pytest.raises(VolumeReadError, match="file not found"):
        describe(tmp_path / "missing.tif")
    with pytest.raises(VolumeReadError, match="unknown format '.png'"):
        describe(tmp_path / "x.png")
    (tmp_path / "x.raw").write_bytes(bytes(8))
    with pytest.raises(VolumeReadError, match="needs its layout; give --raw-shape"):
        describe(tmp_path / "x.raw")
    with h5py.File(tmp_path / "two.h5", "w") as f:
        f["a"] = np.zeros((2, 2, 2))
        f["g/b"] = np.zeros((2, 2, 2))
    with pytest.raises(VolumeReadError, match=r"2 3D datasets \(/a, /g/b\); choose one with --dataset"):
        describe(tmp_path / "two.h5")
    with pytest.raises(VolumeReadError, match="dataset '/c' does not exist"):
        describe(tmp_path / "two.h5", dataset="/c")
    (tmp_path / "bad.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    with pytest.raises(VolumeReadError, match="bad.h5: not a readable HDF5 file"):
        describe(tmp_path / "bad.h5")
    np.save(tmp_path / "flat.npy", np.zeros((3, 4)))
    with pytest.raises(VolumeReadError, match="2 dimensions"):
        describe(tmp_path / "flat.npy")


def test_labels_that_do_not_fit_the_table_or_are_grayscale(tmp_path):
    path = tmp_path / "v.npy"
    np.save(path, np.full((2, 2, 2), 7, np.uint8))
    with pytest.raises(VolumeReadError, match="v.npy: label value\\(s\\) 7"):
        read_volume(path, {"pore": {"label": 0}})
    with pytest.raises(VolumeReadError, match="stores no phase table; give one"):
        read_volume(path)
    np.save(path, np.zeros((2, 2, 2), np.float32))
    with pytest.raises(VolumeReadError, match="grayscale float32 data, not labels; segment it first"):
        read_volume(path, {"pore": {"label": 0}})


def test_cli_rejects_half_a_raw_layout(tmp_path, capsys):
    path = _short_raw(tmp_path)
    assert main(["info", str(path), "--raw-shape", "10,10,10"]) == 2
    assert "--raw-shape and --raw-dtype go together" in capsys.readouterr().err
