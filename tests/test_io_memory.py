"""Reading a region of a stack larger than memory allows must not load the stack.

Each format gets a 1 GiB file (1024^3 uint8, sparse on disk: only a few marked
voxels are written). A child process reads a crop, a strided copy of half
of it and a block-downsampled region of each, and reports its peak resident memory
(``ru_maxrss``) before and after. The bound asserted is 64 MiB above the
baseline, against the 1024 MiB a full read would need.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest
import tifffile

N = 1024
BOUND_MIB = 64
MARKS = [(0, 0, 0), (100, 200, 300), (517, 3, 1000), (1023, 1023, 1023), (640, 128, 256)]

CHILD = textwrap.dedent("""
    import json, resource, sys
    import numpy as np
    from microsim.io import RawLayout, describe, read_array
    from microsim.downsample import majority_downsample

    def peak_mib():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0   # kilobytes on Linux

    files = json.loads(sys.argv[1])
    majority_downsample(np.zeros((4, 4, 4), np.uint8), 2)   # load the compiled kernel before the baseline
    base = peak_mib()
    out = {"baseline_mib": base, "reads": {}}
    for name, path in files.items():
        raw = RawLayout((1024, 1024, 1024), "uint8") if name == "raw" else None
        info = describe(path, raw=raw)
        crop = read_array(path, raw=raw, crop="90:160,150:250,250:350")
        strided = read_array(path, raw=raw, crop="0:512,:,:", stride=8)
        blocks = read_array(path, raw=raw, crop="512:768,0:256,768:1024", downsample=4)
        out["reads"][name] = {
            "shape": list(info.shape), "memory_mapped": info.memory_mapped,
            "crop_mark": int(crop[10, 50, 50]), "crop_sum": int(crop.sum(dtype=np.int64)),
            "strided_shape": list(strided.shape), "strided_sum": int(strided.sum(dtype=np.int64)),
            "blocks_shape": list(blocks.shape), "peak_after_mib": peak_mib()}
    print(json.dumps(out))
""")


def _mark(arr_like):
    for k, (z, y, x) in enumerate(MARKS):
        arr_like[z, y, x] = 10 + k


@pytest.fixture(scope="module")
def big_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("big")
    files = {}
    raw = d / "big.raw"
    with open(raw, "wb") as fh:
        fh.truncate(N ** 3)
    mm = np.memmap(raw, np.uint8, "r+", shape=(N, N, N))
    _mark(mm)
    mm.flush()
    del mm
    files["raw"] = raw
    npy = np.lib.format.open_memmap(d / "big.npy", "w+", np.uint8, (N, N, N))
    _mark(npy)
    npy.flush()
    del npy
    files["npy"] = d / "big.npy"
    tif = tifffile.memmap(d / "big.tif", shape=(N, N, N), dtype=np.uint8, photometric="minisblack", bigtiff=True)
    _mark(tif)
    tif.flush()
    del tif
    files["tiff"] = d / "big.tif"
    with h5py.File(d / "big.h5", "w") as f:
        ds = f.create_dataset("volume", shape=(N, N, N), dtype=np.uint8)
        for k, (z, y, x) in enumerate(MARKS):
            ds[z, y, x] = 10 + k
    files["hdf5"] = d / "big.h5"
    for path in files.values():
        assert path.stat().st_size >= 2**30  # at least 1 GiB on disk (sparse)
    return files


def test_cropped_reads_of_1_gib_files_stay_under_the_memory_bound(big_files):
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps({k: str(v) for k, v in big_files.items()})],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    base = report["baseline_mib"]
    # The strided copy keeps exactly the marks on its grid (all coordinates multiples of 8, z < 512).
    on_grid = sum(10 + k for k, m in enumerate(MARKS) if all(c % 8 == 0 for c in m) and m[0] < 512)
    for name, r in report["reads"].items():
        assert r["shape"] == [N, N, N]
        assert r["crop_mark"] == 11 and r["crop_sum"] == 11, name  # mark (100, 200, 300) and nothing else
        assert r["strided_shape"] == [64, 128, 128] and r["strided_sum"] == on_grid, name
        assert r["blocks_shape"] == [64, 64, 64], name
        grew = r["peak_after_mib"] - base
        assert grew < BOUND_MIB, f"{name}: peak memory grew by {grew:.0f} MiB reading regions of a 1 GiB file"
    assert report["reads"]["raw"]["memory_mapped"] and report["reads"]["tiff"]["memory_mapped"]
