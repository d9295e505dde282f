"""Regions of interest, strides and block downsampling, the same in every format."""
from __future__ import annotations

import numpy as np
import pytest
import tifffile
from hypothesis import given, settings
from hypothesis import strategies as st

from microsim.downsample import majority_downsample, mean_downsample
from microsim.io import RawLayout, Region, describe, load_stack, parse_crop, read_array, read_volume, write_array
from microsim.io.slices import natural_key

SHAPE = (13, 17, 19)  # odd sizes, so that blocks leave remainders


def _majority_reference(labels, f):
    """Most frequent value per block, smallest on ties, by brute force."""
    oz, oy, ox = (n // b for n, b in zip(labels.shape, f))
    out = np.empty((oz, oy, ox), labels.dtype)
    for k in range(oz):
        for j in range(oy):
            for i in range(ox):
                block = labels[k * f[0]:(k + 1) * f[0], j * f[1]:(j + 1) * f[1], i * f[2]:(i + 1) * f[2]]
                values, counts = np.unique(block, return_counts=True)
                out[k, j, i] = values[np.argmax(counts)]  # np.unique sorts, argmax takes the first maximum
    return out


def _write_all(tmp_path, arr):
    """The same array in every readable format; returns (path, raw layout or None) pairs."""
    out = {}
    write_array(tmp_path / "a.tif", arr)
    out["tiff-memmap"] = (tmp_path / "a.tif", None)
    tifffile.imwrite(tmp_path / "z.tif", arr, compression="zlib", photometric="minisblack")
    out["tiff-pages"] = (tmp_path / "z.tif", None)
    write_array(tmp_path / "a.h5", arr)
    out["hdf5"] = (tmp_path / "a.h5", None)
    np.save(tmp_path / "a.npy", arr)
    out["npy"] = (tmp_path / "a.npy", None)
    (tmp_path / "a.raw").write_bytes(arr.astype(arr.dtype.newbyteorder(">")).tobytes())
    out["raw-big-endian"] = (tmp_path / "a.raw", RawLayout(arr.shape, arr.dtype.name, "big"))
    folder = tmp_path / "slices"
    folder.mkdir()
    for k in range(arr.shape[0]):
        tifffile.imwrite(folder / f"s{k}.tif", arr[k])
    out["slices"] = (folder, None)
    out["glob"] = (str(folder / "s*.tif"), None)
    return out


@pytest.fixture(scope="module")
def gray_files(tmp_path_factory):
    arr = np.random.default_rng(5).integers(0, 60000, SHAPE).astype(np.uint16)
    return arr, _write_all(tmp_path_factory.mktemp("gray"), arr)


@pytest.fixture(scope="module")
def label_files(tmp_path_factory):
    arr = np.random.default_rng(6).choice(np.array([0, 85, 170], np.uint8), SHAPE)
    return arr, _write_all(tmp_path_factory.mktemp("labels"), arr)


FORMATS = ["tiff-memmap", "tiff-pages", "hdf5", "npy", "raw-big-endian", "slices", "glob"]
CASES = [
    dict(),
    dict(crop="2:11,3:15,1:18"),
    dict(crop=((0, 5), (None, None), (4, None)), stride=2),
    dict(crop="1:13,:,:", stride=(3, 1, 2)),
    dict(downsample=2),
    dict(crop="1:12,2:17,0:19", downsample=(3, 2, 4)),
]


# What each case must give, written out by hand for SHAPE = (13, 17, 19) rather than derived
# with the Region code under test: the voxels selected before reduction, the stride, the block.
EXPECTED = [
    (np.s_[:, :, :], (1, 1, 1), (1, 1, 1)),
    (np.s_[2:11, 3:15, 1:18], (1, 1, 1), (1, 1, 1)),
    (np.s_[0:5, :, 4:], (2, 2, 2), (1, 1, 1)),
    (np.s_[1:13, :, :], (3, 1, 2), (1, 1, 1)),
    (np.s_[0:12, 0:16, 0:18], (1, 1, 1), (2, 2, 2)),       # whole blocks only: remainders dropped
    (np.s_[1:10, 2:16, 0:16], (1, 1, 1), (3, 2, 4)),
]


def _reference(arr, case, reduce):
    where, stride, block = EXPECTED[case]
    sub = arr[where]
    if block != (1, 1, 1):
        if reduce == "majority":
            return _majority_reference(sub, block)
        shape = [v for n, b in zip(sub.shape, block) for v in (n // b, b)]
        return sub.reshape(shape).mean(axis=(1, 3, 5), dtype=np.float64).astype(np.float32)
    return sub[::stride[0], ::stride[1], ::stride[2]]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", range(len(CASES)))
def test_region_reads_match_numpy(gray_files, label_files, fmt, case):
    for (arr, files), reduce in ((gray_files, "mean"), (label_files, "majority")):
        path, raw = files[fmt]
        got = read_array(path, raw=raw, reduce=reduce, **CASES[case])
        want = _reference(arr, case, reduce)
        assert got.shape == want.shape
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


def test_voxel_size_scales_with_stride_and_block(tmp_path):
    arr = np.zeros((8, 8, 8), np.uint8)
    write_array(tmp_path / "v.h5", arr, (0.5, 0.25, 0.1))
    assert load_stack(tmp_path / "v.h5", crop="0:4,:,:").voxel_size_um == (0.5, 0.25, 0.1)
    assert load_stack(tmp_path / "v.h5", stride=(1, 2, 4)).voxel_size_um == (0.5, 0.5, 0.4)
    assert load_stack(tmp_path / "v.h5", downsample=2).voxel_size_um == (1.0, 0.5, 0.2)
    v = read_volume(tmp_path / "v.h5", {"pore": {"label": 0}}, voxel_size_um=1.0, downsample=(2, 1, 1))
    assert v.voxel_size_um == (2.0, 1.0, 1.0) and v.shape == (4, 8, 8)
    assert any("block 2x1x1" in p for p in v.provenance)


def test_describe_reports_shape_and_dtype_without_reading_voxels(tmp_path):
    # A raw file that claims 2 GB of float32 would take seconds to read; the header is enough.
    path = tmp_path / "huge.raw"
    with open(path, "wb") as fh:
        fh.truncate(512 * 1024 * 1024 * 4)
    info = describe(path, raw=RawLayout((512, 1024, 1024), "float32"))
    assert info.shape == (512, 1024, 1024) and info.dtype == "float32" and info.nbytes == 2**31


def test_slices_are_read_in_natural_order(tmp_path):
    folder = tmp_path / "fib"
    folder.mkdir()
    for k in (1, 2, 10, 11, 3):
        tifffile.imwrite(folder / f"slice_{k}.tif", np.full((3, 4), k, np.uint8))
    (folder / "notes.txt").write_text("not a slice")
    got = read_array(folder)
    assert got[:, 0, 0].tolist() == [1, 2, 3, 10, 11]
    assert read_array(str(folder / "slice_1*.tif"))[:, 0, 0].tolist() == [1, 10, 11]
    assert describe(folder).n_files == 5
    assert sorted(["b10", "b9", "a100", "B1"], key=natural_key) == ["a100", "B1", "b9", "b10"]


def test_parse_crop_and_region_errors():
    assert parse_crop(":,:,:") == ((None, None),) * 3
    with pytest.raises(ValueError, match="three ranges"):
        parse_crop("0:4,0:4")
    with pytest.raises(ValueError, match="not two integers"):
        parse_crop("a:4,:,:")
    with pytest.raises(ValueError, match="not both"):
        Region.make(stride=2, downsample=2)
    with pytest.raises(ValueError, match="beyond the 8 voxels along y"):
        Region.make("0:2,0:9,:").resolve((4, 8, 8), "v.tif")
    with pytest.raises(ValueError, match="is empty"):
        Region.make("3:3,:,:").resolve((4, 8, 8))
    with pytest.raises(ValueError, match="larger than the 4 voxels"):
        Region.make(downsample=5).resolve((4, 8, 8))


def test_majority_downsample_examples():
    a = np.zeros((2, 2, 4), np.uint8)
    a[:, :, 2:] = 7
    a[0, 0, 0] = 7  # 1 of 8 in the first block
    assert majority_downsample(a, 2).tolist() == [[[0, 7]]]
    tie = np.array([[[3, 3], [5, 5]], [[3, 3], [5, 5]]], np.uint8)
    assert majority_downsample(tie, 2).tolist() == [[[3]]]
    b = np.zeros((3, 3, 3), bool)
    b[0] = True
    assert majority_downsample(b, 3).dtype == bool and not majority_downsample(b, 3)[0, 0, 0]
    wide = np.full((2, 2, 2), 40000, np.uint16)
    wide[0, 0, 0] = 3
    assert majority_downsample(wide, 2).tolist() == [[[40000]]]
    with pytest.raises(ValueError, match="integer labels"):
        majority_downsample(np.zeros((2, 2, 2), np.float32), 2)


def test_majority_is_not_the_mean():
    # pore 0 and CBD 170 in equal parts average to 85, which would be NMC
    a = np.zeros((2, 2, 2), np.uint8)
    a[0] = 170
    a[1, 0, 0] = 170
    assert mean_downsample(a, 2)[0, 0, 0] == pytest.approx(106.25)
    assert majority_downsample(a, 2)[0, 0, 0] == 170


@settings(max_examples=40, deadline=None)
@given(st.tuples(st.integers(1, 9), st.integers(1, 9), st.integers(1, 9)),
       st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3)),
       st.integers(1, 5), st.integers(0, 2**16))
def test_majority_downsample_matches_brute_force(shape, factor, n_labels, seed):
    if any(n < f for n, f in zip(shape, factor)):
        return
    rng = np.random.default_rng(seed)
    values = np.array([0, 1, 85, 170, 255], np.uint8)[:n_labels]
    labels = rng.choice(values, shape)
    assert np.array_equal(majority_downsample(labels, factor), _majority_reference(labels, factor))
    wide = labels.astype(np.int32) * 1000 - 7
    assert np.array_equal(majority_downsample(wide, factor), _majority_reference(wide, factor))
