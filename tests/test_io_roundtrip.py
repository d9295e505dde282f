"""Write-then-read round trips for every format, and metadata written by other tools."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import h5py
import numpy as np
import pytest
import tifffile

from microsim import Phase, PhaseTable, Volume
from microsim.io import describe, load_stack, read_array, read_volume, write_array, write_volume

VOXEL = (0.5, 0.398, 0.1 + 0.2)  # anisotropic, and values that no TIFF rational holds exactly
PROVENANCE = ("generated for the round-trip test", "second step")
FORMATS = ["vol.tif", "vol_zlib.tif", "vol.h5", "vol_raw.h5", "vol.npy", "vol.raw", "slices"]


def _table() -> PhaseTable:
    return PhaseTable((Phase("pore", 0, 0.0, 0.0, "pore"),
                       Phase("NMC", 85, 1e-9, 3.3, "NMC811", 4.78),
                       Phase("CBD", 170, 0.1 + 0.2, 1234.5678, None, None)))


@pytest.fixture(scope="module")
def volume() -> Volume:
    rng = np.random.default_rng(7)
    labels = rng.choice(np.array([0, 85, 170], np.uint8), size=(6, 9, 11), p=[0.5, 0.3, 0.2])
    return Volume(labels, _table(), VOXEL, PROVENANCE)


def _write(tmp_path: Path, name: str, volume: Volume) -> Path:
    out = tmp_path / name
    comp = {"vol_zlib.tif": "zlib", "vol_raw.h5": "none"}.get(name)
    write_volume(out, volume, **({"compression": comp} if comp else {}))
    return out


@pytest.mark.parametrize("name", FORMATS)
def test_volume_round_trip_keeps_labels_shape_voxel_size_and_phases(tmp_path, volume, name):
    out = _write(tmp_path, name, volume)
    info = describe(out)
    assert info.shape == volume.shape and info.dtype == "uint8"
    assert info.voxel_size_um == VOXEL  # exact, not approximately
    assert info.phases == volume.phases
    assert info.provenance == PROVENANCE
    back = read_volume(out)  # phase table and voxel size from the file alone
    assert np.array_equal(back.labels, volume.labels)
    assert back.voxel_size_um == VOXEL
    assert back.phases == volume.phases
    assert back.phases["CBD"].sigma_ionic_S_per_m == 0.1 + 0.2
    assert back.provenance[:2] == PROVENANCE and back.provenance[2].startswith("read ")


@pytest.mark.parametrize("name", FORMATS)
@pytest.mark.parametrize("dtype", ["uint16", "float32"])
def test_grayscale_round_trip(tmp_path, name, dtype):
    rng = np.random.default_rng(3)
    arr = (rng.random((5, 7, 8)) * 60000).astype(dtype)
    out = tmp_path / name
    write_array(out, arr, VOXEL)
    loaded = load_stack(out)
    assert loaded.array.dtype == arr.dtype and np.array_equal(loaded.array, arr)
    assert loaded.voxel_size_um == VOXEL
    assert loaded.info.phases is None


def test_other_dtypes_round_trip_through_ome_tiff(tmp_path):
    arr = np.arange(4 * 5 * 6, dtype=np.int32).reshape(4, 5, 6) - 50
    out = tmp_path / "signed.tif"
    write_array(out, arr, (2.0, 1.0, 0.5))
    info = describe(out)
    assert info.format == "ome-tiff" and info.dtype == "int32" and info.voxel_size_um == (2.0, 1.0, 0.5)
    assert np.array_equal(read_array(out), arr)


def test_imagej_tiff_calibration_is_what_fiji_reads(tmp_path, volume):
    """The resolution tags and 'spacing' carry the voxel size for ImageJ, to the precision a rational allows."""
    out = _write(tmp_path, "vol.tif", volume)
    with tifffile.TiffFile(out) as tif:
        ij = tif.imagej_metadata
        num, den = tif.pages[0].tags["XResolution"].value
        ynum, yden = tif.pages[0].tags["YResolution"].value
    assert ij["unit"] == "micron" and ij["spacing"] == VOXEL[0]
    assert den / num == pytest.approx(VOXEL[2], rel=1e-6)
    assert yden / ynum == pytest.approx(VOXEL[1], rel=1e-6)


def test_hdf5_attributes_and_xdmf_sidecar(tmp_path, volume):
    out = _write(tmp_path, "vol.h5", volume)
    with h5py.File(out) as f:
        ds = f["/labels"]
        assert ds.shape == volume.shape and ds.dtype == np.uint8
        assert tuple(ds.attrs["voxel_size_um"]) == VOXEL and tuple(ds.attrs["element_size_um"]) == VOXEL
        assert ds.attrs["unit"] == "um"
        assert json.loads(ds.attrs["microsim_phases"])["phases"][1]["name"] == "NMC"
    xdmf = out.with_suffix(".xdmf")
    root = ET.parse(xdmf).getroot()
    topo = root.find(".//Topology")
    assert topo.get("TopologyType") == "3DCoRectMesh"
    # points, slowest axis first: one more than cells
    assert [int(v) for v in topo.get("Dimensions").split()] == [n + 1 for n in volume.shape]
    spacing = root.find(".//Geometry/DataItem[@Name='Spacing']").text.split()
    assert tuple(float(v) for v in spacing) == VOXEL
    item = root.find(".//Attribute/DataItem")
    assert root.find(".//Attribute").get("Center") == "Cell"
    assert [int(v) for v in item.get("Dimensions").split()] == list(volume.shape)
    assert (item.get("NumberType"), item.get("Precision")) == ("UChar", "1")
    h5name, dataset = item.text.strip().split(":")
    with h5py.File(xdmf.parent / h5name) as f:  # the reference resolves next to the XDMF file
        assert np.array_equal(f[dataset][()], volume.labels)


def test_sidecars_describe_raw_and_npy(tmp_path, volume):
    raw = _write(tmp_path, "vol.raw", volume)
    doc = json.loads((tmp_path / "vol.raw.json").read_text())
    assert doc["shape"] == list(volume.shape) and doc["dtype"] == "uint8"
    assert raw.stat().st_size == volume.labels.size
    npy = _write(tmp_path, "vol.npy", volume)
    assert np.array_equal(np.load(npy), volume.labels)  # a plain .npy that numpy reads
    assert (tmp_path / "vol.npy.json").is_file()


def test_big_endian_raw_with_header(tmp_path):
    arr = np.arange(3 * 4 * 5, dtype=">u2").reshape(3, 4, 5) * 257
    path = tmp_path / "be.raw"
    path.write_bytes(b"HEADER!!" + arr.tobytes())
    from microsim.io import RawLayout
    got = read_array(path, raw=RawLayout((3, 4, 5), "uint16", "big", 8))
    assert got.dtype == np.dtype("uint16") and got.dtype.isnative
    assert np.array_equal(got, arr.astype(np.uint16))
    info = describe(path, raw=RawLayout((3, 4, 5), "uint16", "big", 8))
    assert info.byte_order == "big" and info.voxel_size_um is None


def test_write_raw_big_endian_reads_back(tmp_path):
    from microsim.io.writers import write_raw
    arr = np.arange(2 * 3 * 4, dtype=np.uint16).reshape(2, 3, 4) * 1000
    out = write_raw(tmp_path / "b.raw", arr, (1, 2, 3), byte_order="big")
    assert out.read_bytes() == arr.astype(">u2").tobytes()
    assert np.array_equal(read_array(out), arr)


def test_fortran_ordered_npy(tmp_path):
    arr = np.asfortranarray(np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6))
    np.save(tmp_path / "f.npy", arr)
    assert np.array_equal(read_array(tmp_path / "f.npy", crop="1:3,:,2:5"), arr[1:3, :, 2:5])


def test_imagej_metadata_written_by_another_tool(tmp_path):
    arr = np.zeros((4, 5, 6), np.uint8)
    path = tmp_path / "fiji.tif"
    # 20 nm pixels, 50 nm slices, as Fiji would store them
    tifffile.imwrite(path, arr, imagej=True, resolution=(1 / 20, 1 / 20),
                     metadata={"spacing": 50, "unit": "nm", "axes": "ZYX"})
    info = describe(path)
    assert info.format == "imagej-tiff"
    assert info.voxel_size_um == pytest.approx((0.05, 0.02, 0.02), rel=1e-9)
    assert info.voxel_size_source == "ImageJ metadata"
    tifffile.imwrite(path, arr, imagej=True, resolution=(4.0, 2.0), metadata={"spacing": 0.75, "unit": "\\u00B5m"})
    assert describe(path).voxel_size_um == (0.75, 0.5, 0.25)
    # ImageJ writes no 'spacing' line for a stack whose slices are 1 unit apart
    tifffile.imwrite(path, arr, imagej=True, resolution=(4.0, 4.0), metadata={"unit": "micron"})
    assert describe(path).voxel_size_um == (1.0, 0.25, 0.25)


def test_ome_tiff_physical_sizes_with_units(tmp_path):
    path = tmp_path / "x.ome.tif"
    tifffile.imwrite(path, np.zeros((3, 4, 5), np.uint16), ome=True, photometric="minisblack",
                     metadata={"axes": "ZYX", "PhysicalSizeX": 398, "PhysicalSizeXUnit": "nm",
                               "PhysicalSizeY": 0.25, "PhysicalSizeYUnit": "\u00b5m", "PhysicalSizeZ": 0.5})
    info = describe(path)
    assert info.format == "ome-tiff" and info.voxel_size_um == (0.5, 0.25, 0.398)


def test_plain_tiff_resolution_is_not_taken_as_voxel_size(tmp_path):
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, np.zeros((5, 4, 4), np.uint8), resolution=(72, 72), resolutionunit="INCH",
                     photometric="minisblack")
    info = describe(path)
    assert info.voxel_size_um is None and any("print resolution" in n for n in info.notes)
    assert read_volume(path, {"pore": {"label": 0}}).voxel_size_um == (1.0, 1.0, 1.0)
    assert read_volume(path, {"pore": {"label": 0}}, (0.5, 0.4, 0.4)).voxel_size_um == (0.5, 0.4, 0.4)


def test_bigtiff_is_read(tmp_path):
    arr = np.random.default_rng(1).integers(0, 3, (7, 6, 5), dtype=np.uint8)
    for comp in (None, "zlib"):
        path = tmp_path / f"big_{comp}.tif"
        tifffile.imwrite(path, arr, bigtiff=True, photometric="minisblack", compression=comp)
        with tifffile.TiffFile(path) as tif:
            assert tif.is_bigtiff
        assert np.array_equal(read_array(path), arr)
        assert describe(path).memory_mapped == (comp is None)


def test_hdf5_dataset_discovery_and_voxel_size_attributes(tmp_path):
    path = tmp_path / "scan.h5"
    arr = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
    with h5py.File(path, "w") as f:
        g = f.create_group("exchange")
        g.create_dataset("data", data=arr)
        g.create_dataset("theta", data=np.linspace(0, 180, 10))
        g.create_dataset("dark", data=np.zeros((5, 6)))
        g.attrs["spacing"] = [500.0, 250.0, 250.0]
        g.attrs["unit"] = "nm"
    info = describe(path)
    assert info.dataset == "/exchange/data" and info.voxel_size_um == (0.5, 0.25, 0.25)
    assert np.array_equal(read_array(path), arr)
    with h5py.File(path, "a") as f:
        f["exchange/data"].attrs["element_size_um"] = [2.0, 1.0, 1.0]
    assert describe(path).voxel_size_um == (2.0, 1.0, 1.0)  # the dataset's own attribute comes first
    with h5py.File(path, "a") as f:
        f.create_dataset("other", data=arr)
    assert describe(path, dataset="/other").shape == (4, 5, 6)


def test_slice_thickness_completes_the_voxel_size_of_a_slice_folder(tmp_path):
    folder = tmp_path / "fib"
    folder.mkdir()
    for k in range(3):
        tifffile.imwrite(folder / f"img{k}.tif", np.full((4, 5), k, np.uint8), imagej=True,
                         resolution=(1 / 0.005, 1 / 0.005), metadata={"unit": "micron"})
    info = describe(folder)
    assert info.voxel_size_um == (None, 0.005, 0.005)
    with pytest.raises(ValueError, match="slice thickness"):
        read_volume(folder, {"a": {"label": 0}, "b": {"label": 1}, "c": {"label": 2}})
    v = read_volume(folder, {"a": {"label": 0}, "b": {"label": 1}, "c": {"label": 2}}, slice_thickness_um=0.02)
    assert v.voxel_size_um == (0.02, 0.005, 0.005)


def test_failed_write_leaves_no_file(tmp_path, volume, monkeypatch):
    def broken(path, *a, **k):
        Path(path).write_bytes(b"half a file")
        raise OSError("disk full")
    monkeypatch.setattr(tifffile, "imwrite", broken)
    with pytest.raises(OSError, match="disk full"):
        write_volume(tmp_path / "out.tif", volume)
    with pytest.raises(OSError, match="disk full"):
        write_volume(tmp_path / "slices", volume)
    assert list(tmp_path.iterdir()) == []


def test_slice_folder_output_refuses_a_non_empty_folder(tmp_path, volume):
    (tmp_path / "slices").mkdir()
    (tmp_path / "slices" / "keep.txt").write_text("x")
    with pytest.raises(ValueError, match="not empty"):
        write_volume(tmp_path / "slices", volume)
    assert [p.name for p in (tmp_path / "slices").iterdir()] == ["keep.txt"]
