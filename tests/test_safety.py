"""No command may destroy an input or return a wrong answer quietly (docs/safety.md).

Every refusal here is checked the same way: exit code 2, one error line naming the
problem, every file of the working folder unchanged byte for byte and nothing new in it.
"""
from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import tifffile

from microsim import safety
from microsim.cli import main

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"

RUN_CONFIG = """phases = "p.toml"
[run]
name = "safety"
[source]
stack = "a.tif"
crop = "0:12,0:12,0:12"
voxel_size_um = 0.5
[transport]
carriers = ["ionic"]
directions = ["z"]
[analysis]
interfaces = false
active_material = false
[output]
figures = false
report = false
fields = false
"""


def snapshot(folder: Path) -> dict:
    """Every file and folder under ``folder`` (hidden ones too) with the hash of its bytes and its mode."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for d in dirnames:
            p = Path(dirpath) / d
            out[str(p.relative_to(folder)) + "/"] = stat.S_IMODE(os.lstat(p).st_mode)
        for f in filenames:
            p = Path(dirpath) / f
            if p.is_symlink():
                out[str(p.relative_to(folder))] = "link:" + os.readlink(p)
            elif p.is_file():
                out[str(p.relative_to(folder))] = hashlib.sha256(p.read_bytes()).hexdigest()
            else:
                out[str(p.relative_to(folder))] = "special"
    return out


def refused(capsys, folder: Path, argv: list[str], *words: str, code: int = 2) -> str:
    """Run ``microsim ARGV``; it must exit ``code`` with one error line containing ``words``, changing nothing."""
    before = snapshot(folder)
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse refusals
        rc = exc.code
    captured = capsys.readouterr()
    lines = [line for line in captured.err.strip().splitlines() if line.strip()]
    assert rc == code, captured.err
    assert lines, "no error message"
    last = lines[-1]
    assert last.startswith(f"microsim {argv[0]}: error:"), captured.err
    if len(lines) > 1:  # argparse prints its usage first; anything else must be the usage
        assert lines[0].startswith("usage:"), captured.err
    for w in words:
        assert w in last, last
    assert snapshot(folder) == before, "a file changed or was left behind"
    return last


@pytest.fixture()
def work(tmp_path, monkeypatch):
    """A folder with the sample volume a.tif, its phase table p.toml and a run configuration c.toml."""
    shutil.copy(SAMPLES / "electrode_64.tif", tmp_path / "a.tif")
    shutil.copy(SAMPLES / "electrode_phases.toml", tmp_path / "p.toml")
    (tmp_path / "c.toml").write_text(RUN_CONFIG)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(safety.ALLOW_SYMLINK_ENV, raising=False)
    return tmp_path


@pytest.fixture()
def huge(tmp_path):
    """An HDF5 file of a few kB whose header claims 10^15 voxels (a chunked dataset never written)."""
    path = tmp_path / "huge.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("labels", shape=(100_000, 100_000, 100_000), dtype="u1", chunks=(1, 64, 64))
    return path


# ---------------------------------------------------------------------------
# 1. an output that is also an input


@pytest.mark.parametrize("argv", [
    ["convert", "a.tif", "a.tif"],
    ["convert", "a.tif", "sub/../a.tif"],
    ["convert", "a.tif", "hard.tif"],
    ["convert", "a.tif", "a.tif", "--phases", "p.toml"],
    ["segment", "a.tif", "--phases", "3", "--out", "a.tif"],
    ["segment", "a.tif", "--phases", "3", "--out", "s.tif", "--report", "a.tif"],
    ["conductivity", "a.tif", "--phases", "p.toml", "--out", "p.toml"],
    ["conductivity", "a.tif", "--phases", "p.toml", "--out", "a.tif"],
    ["analyze", "a.tif", "--phases", "p.toml", "--out", "p.toml"],
    ["randomwalk", "a.tif", "--phases", "p.toml", "--plot", "a.tif"],
    ["randomwalk", "a.tif", "--phases", "p.toml", "--out", "sub/../p.toml"],
    ["info", "a.tif", "--json", "a.tif"],
    ["info", "a.tif", "--json", "hard.tif"],
])
def test_an_output_that_is_an_input_is_refused(work, capsys, argv):
    (work / "sub").mkdir()
    os.link(work / "a.tif", work / "hard.tif")
    refused(capsys, work, argv, "is the input", "destroy")


def test_bruggeman_output_that_is_an_input_is_refused(work, capsys):
    (work / "r.json").write_text(json.dumps({"results": []}))
    refused(capsys, work, ["bruggeman", "r.json", "--out", "r.json"], "is the input")
    refused(capsys, work, ["bruggeman", "r.json", "--plot", "./r.json"], "is the input")


def test_generate_phases_out_that_is_the_recipe_is_refused(work, capsys):
    shutil.copy(SAMPLES / "recipes" / "nmc12p5_se3um.toml", work / "r.toml")
    refused(capsys, work, ["generate", "r.toml", "--out", "g.tif", "--phases-out", "r.toml"], "is the input")
    refused(capsys, work, ["generate", "r.toml", "--out", "g.tif", "--report", "r.toml"], "is the input")
    refused(capsys, work, ["generate", "r.toml", "--out", "r.toml"], "unknown output format")


def test_convert_into_the_input_slice_folder_is_refused(work, capsys):
    assert main(["convert", "a.tif", "slices"]) == 0
    capsys.readouterr()
    refused(capsys, work, ["convert", "slices", "slices/extra.tif"], "inside the input folder")
    refused(capsys, work, ["convert", "slices", "slices"], "is the input")


def test_run_overwrite_never_deletes_an_input_inside_the_folder(work, capsys):
    # the configuration, the stack and the phase table all live in the folder given as --out
    refused(capsys, work, ["run", "c.toml", "--out", ".", "--overwrite"], "contains the input", "delete")
    refused(capsys, work, ["run", "c.toml", "--out", str(work), "--overwrite"], "contains the input")
    (work / "cfg").mkdir()
    (work / "cfg" / "c.toml").write_text(RUN_CONFIG.replace('"p.toml"', '"../p.toml"').replace('"a.tif"', '"../a.tif"'))
    refused(capsys, work, ["run", "cfg/c.toml", "--out", "cfg", "--overwrite"], "contains the input cfg/c.toml")


def test_run_overwrite_with_the_stack_reached_through_a_link(work, capsys):
    (work / "runs").mkdir()
    shutil.move(work / "a.tif", work / "runs" / "a.tif")
    os.symlink("runs/a.tif", work / "a.tif")  # the configuration names a.tif, which lives in runs/
    refused(capsys, work, ["run", "c.toml", "--out", "runs", "--overwrite"], "contains the input")


# ---------------------------------------------------------------------------
# 3 and 11. nonsense numbers


@pytest.mark.parametrize("argv, words", [
    (["segment", "a.tif", "--thresholds", "nan", "--out", "s.tif"], ["not a finite number"]),
    (["segment", "a.tif", "--thresholds", "80,inf", "--out", "s.tif"], ["not a finite number"]),
    (["segment", "a.tif", "--phases", "1", "--out", "s.tif"], ["2..255"]),
    (["segment", "a.tif", "--phases", "3", "--denoise", "median", "--denoise-size", "100000", "--out", "s.tif"],
     ["--denoise-size 100000 must be 1..64"]),
    (["randomwalk", "a.tif", "--phases", "p.toml", "--steps", "100000000000"], ["up to 10^10"]),
    (["randomwalk", "a.tif", "--phases", "p.toml", "--walkers", "1000000000"], ["walker steps is more than"]),
    (["conductivity", "a.tif", "--phases", "p.toml", "--stride", "1000"], ["stride 1000 leaves one voxel",
                                                                          "1..63"]),
    (["analyze", "a.tif", "--phases", "p.toml", "--stride", "64,1,1"], ["use a stride of 1..63"]),
    (["conductivity", "a.tif", "--phases", "p.toml", "--threads", "0"], ["must be at least 1"]),
    (["analyze", "a.tif", "--phases", "p.toml", "--threads", "0"], ["must be at least 1"]),
    (["randomwalk", "a.tif", "--phases", "p.toml", "--threads", "-2"], ["must be at least 1"]),
    (["run", "c.toml", "--threads", "0", "--out", "o"], ["must be at least 1"]),
    (["conductivity", "a.tif", "--phases", "p.toml", "--voxel-size", "1e-300"], ["outside", "um"]),
    (["conductivity", "a.tif", "--phases", "p.toml", "--voxel-size", "1e300,1,1"], ["outside"]),
    (["generate", "r.toml", "--out", "g.tif", "--shape", "0"], ["at least 1 voxel"]),
])
def test_nonsense_numbers_are_refused_with_the_range(work, capsys, argv, words):
    shutil.copy(SAMPLES / "recipes" / "nmc12p5_se3um.toml", work / "r.toml")
    refused(capsys, work, argv, *words)


def test_a_string_conductivity_in_a_phase_table_is_refused(work, capsys):
    text = (work / "p.toml").read_text().replace("label = 85\n", 'label = 85\nsigma_electronic_S_per_m = "100"\n')
    (work / "q.toml").write_text(text)
    refused(capsys, work, ["conductivity", "a.tif", "--phases", "q.toml", "--carrier", "electronic"],
            "is not a number", "without quotes")
    (work / "q.toml").write_text(text.replace('"100"', "true"))
    refused(capsys, work, ["conductivity", "a.tif", "--phases", "q.toml"], "is not a number")


def test_integer_directions_in_a_run_configuration_are_refused(work, capsys):
    (work / "d.toml").write_text(RUN_CONFIG.replace('directions = ["z"]', "directions = [1, 2]"))
    refused(capsys, work, ["run", "d.toml", "--out", "o"], "direction 1 is not one of x, y, z")


def test_a_tiny_voxel_size_in_a_run_configuration_is_refused(work, capsys):
    (work / "d.toml").write_text(RUN_CONFIG.replace("voxel_size_um = 0.5", "voxel_size_um = 1e-300"))
    refused(capsys, work, ["run", "d.toml", "--out", "o"], "outside")


# ---------------------------------------------------------------------------
# 4. memory, estimated from the header before anything is read


@pytest.mark.parametrize("argv, hint", [
    (["conductivity", "{huge}", "--phases", "p.toml", "--direction", "z"], "--max-memory"),
    (["analyze", "{huge}", "--phases", "p.toml"], "--crop"),
    (["randomwalk", "{huge}", "--phases", "p.toml"], "fewer walkers"),
    (["convert", "{huge}", "h.npy"], "--stride"),
    (["segment", "{huge}", "--phases", "3", "--out", "s.tif"], "--crop"),
    (["segment", "{huge}", "--phases", "3", "--denoise", "median", "--out", "s.tif"], "--denoise-size"),
    (["generate", "r.toml", "--out", "g.tif", "--shape", "100000"], "--shape"),
    (["randomwalk", "a.tif", "--phases", "p.toml", "--walkers", "10000000000", "--steps", "8"], "fewer walkers"),
])
def test_memory_is_refused_from_the_header_with_estimate_and_fix(work, huge, capsys, argv, hint):
    shutil.copy(SAMPLES / "recipes" / "nmc12p5_se3um.toml", work / "r.toml")
    argv = [a.replace("{huge}", str(huge)) for a in argv]
    msg = refused(capsys, work, argv, "needs about", "but only", hint)
    assert "available" in msg or "may be used" in msg  # the memory there is, or the --max-memory limit
    assert "PiB" in msg or "TiB" in msg or "GiB" in msg


def test_run_refuses_a_huge_stack_from_its_header(work, huge, capsys):
    (work / "h.toml").write_text(RUN_CONFIG.replace('"a.tif"', f'"{huge}"').replace('crop = "0:12,0:12,0:12"\n', ""))
    refused(capsys, work, ["run", "h.toml", "--out", "o"], "needs about", "available", "crop")


def test_the_header_check_comes_before_any_read(work, huge, monkeypatch, capsys):
    import microsim.io.stack as stack

    def no_read(*args, **kwargs):
        raise AssertionError("voxels were read before the memory check")
    monkeypatch.setattr(stack, "read_region", no_read)
    import microsim.io as mio
    monkeypatch.setattr(mio, "read_region", no_read)
    refused(capsys, work, ["analyze", str(huge), "--phases", "p.toml"], "needs about")


# ---------------------------------------------------------------------------
# 5. special files


def test_fifo_and_device_inputs_are_refused(work, capsys):
    os.mkfifo(work / "pipe.tif")
    os.mkfifo(work / "pipe.toml")
    refused(capsys, work, ["info", "pipe.tif"], "named pipe")
    refused(capsys, work, ["conductivity", "pipe.tif", "--phases", "p.toml"], "named pipe")
    refused(capsys, work, ["conductivity", "a.tif", "--phases", "pipe.toml"], "named pipe")
    refused(capsys, work, ["run", "pipe.toml"], "named pipe")
    refused(capsys, work, ["info", "/dev/zero", "--raw-shape", "4,4,4", "--raw-dtype", "uint8"], "a device")
    refused(capsys, work, ["convert", "a.tif", "/dev/null"], "device")


def test_a_fifo_inside_a_slice_folder_is_refused(work, capsys):
    assert main(["convert", "a.tif", "slices"]) == 0
    capsys.readouterr()
    os.mkfifo(work / "slices" / "slice_9999.tif")
    refused(capsys, work, ["info", "slices"], "named pipe", "regular files")


# ---------------------------------------------------------------------------
# 6. a full disk


def test_free_space_is_checked_before_writing(work, capsys, monkeypatch):
    monkeypatch.setattr(safety, "free_bytes", lambda path: 1000)
    refused(capsys, work, ["convert", "a.tif", "b.h5"], "needs about 256 KiB", "1000 bytes is free")
    refused(capsys, work, ["run", "c.toml", "--out", "o"], "free")


class _FullDisk:
    """A stand-in for a file write that fills the disk: some bytes, then ENOSPC."""

    def __init__(self, real):
        self.real = real

    def __call__(self, file, *args, **kwargs):
        fh = file if hasattr(file, "write") else open(file, "wb")
        fh.write(b"\0" * 100)
        raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("name", ["b.npy", "b.raw", "b.tif", "b.h5", "slices"])
def test_a_full_disk_gives_one_line_and_no_partial_file(work, capsys, monkeypatch, name):
    import microsim.io.hdf5 as h5
    real_write = h5.GuardedFile.write

    def full_write(self, data):
        if self._fh.tell() > 4096:
            self.error = OSError(errno.ENOSPC, "No space left on device")
        return real_write(self, data)
    monkeypatch.setattr(h5.GuardedFile, "write", full_write)
    monkeypatch.setattr(np, "save", _FullDisk(np.save))
    monkeypatch.setattr(tifffile, "imwrite", _FullDisk(tifffile.imwrite))
    import io
    real_open = io.open

    def full_open(file, mode="r", *args, **kwargs):
        fh = real_open(file, mode, *args, **kwargs)
        if "w" in mode and str(file).endswith(".part.raw"):
            class F:
                def __enter__(s):
                    return s

                def __exit__(s, *exc):
                    fh.close()

                def write(s, data):
                    raise OSError(errno.ENOSPC, "No space left on device")
            return F()
        return fh
    monkeypatch.setattr("builtins.open", full_open)
    msg = refused(capsys, work, ["convert", "a.tif", name], "the file system is full", "free", "nothing was kept")
    assert name in msg


# ---------------------------------------------------------------------------
# 7 and 8. locks, renames, stale temporaries


def test_a_run_into_a_locked_folder_is_refused(work, capsys):
    with safety.OutputLock(work / "o"):
        refused(capsys, work, ["run", "c.toml", "--out", "o"], "another microsim", f"process {os.getpid()}")
    assert not (work / ".o.msim-lock").exists()


def test_the_final_rename_never_replaces_a_folder_that_appeared(work, capsys, monkeypatch):
    import microsim.pipeline.runner as runner
    real = runner._execute

    def meanwhile(config, folder, progress, extra):
        doc = real(config, folder, progress, extra)
        (work / "o").mkdir()
        (work / "o" / "theirs.txt").write_text("not ours")
        return doc
    monkeypatch.setattr(runner, "_execute", meanwhile)
    rc = main(["run", "c.toml", "--out", "o", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "appeared while this run was running" in err
    assert sorted(p.name for p in (work / "o").iterdir()) == ["theirs.txt"]
    kept = [p for p in work.iterdir() if p.name.startswith("o.new-")]
    assert len(kept) == 1 and (kept[0] / "result.json").is_file()
    assert not [p for p in work.iterdir() if safety.temp_pid(p.name) is not None]


def test_overwrite_replaces_only_the_folder_that_was_there(work, capsys, monkeypatch):
    (work / "o").mkdir()
    (work / "o" / "old.txt").write_text("old run")
    import microsim.pipeline.runner as runner
    real = runner._execute

    def swapped(config, folder, progress, extra):
        doc = real(config, folder, progress, extra)
        shutil.rmtree(work / "o")
        (work / "o").mkdir()
        (work / "o" / "theirs.txt").write_text("not ours")
        return doc
    monkeypatch.setattr(runner, "_execute", swapped)
    assert main(["run", "c.toml", "--out", "o", "--overwrite", "--quiet"]) == 2
    assert "was replaced or changed while this run was running" in capsys.readouterr().err
    assert (work / "o" / "theirs.txt").read_text() == "not ours"


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_stale_temporaries_of_dead_processes_are_removed_with_a_message(work, capsys):
    pid = _dead_pid()
    stale_file = work / f".b.tif.msim-{pid}-0123abcd.part.tif"
    stale_file.write_bytes(b"half a tiff")
    (work / "runs").mkdir()
    stale_run = work / "runs" / f".o.msim-{pid}-89abcdef.partial"
    stale_run.mkdir()
    (stale_run / "result.json").write_text("{")
    alive = work / f".x.tif.msim-{os.getppid()}-0123abcd.part.tif"  # a live process: kept
    alive.write_bytes(b"in progress")
    other = work / ".hidden.part"  # not ours: kept
    other.write_text("user file")
    assert main(["convert", "a.tif", "b.tif"]) == 0
    err = capsys.readouterr().err
    assert f"removed {stale_file}" in err and f"process {pid}" in err
    assert not stale_file.exists() and alive.exists() and other.exists()
    assert stale_run.exists()
    assert main(["run", "c.toml", "--out", "runs/o", "--quiet"]) == 0
    assert f"removed {stale_run}" in capsys.readouterr().err
    assert not stale_run.exists()


def test_temporary_names_fit_255_bytes_and_carry_the_pid():
    for name in ("a.tif", "n" * 250 + ".tif", "é" * 126 + ".h5"):
        t = safety.temp_name(name, "part", ".tif")
        assert len(t.encode()) <= 255
        assert safety.temp_pid(t) == os.getpid()


def test_a_name_of_250_characters_can_be_written(work, capsys):
    name = "n" * 246 + ".tif"
    assert main(["convert", "a.tif", name]) == 0
    assert (work / name).is_file()
    name = "m" * 246 + ".npy"  # and its sidecar .npy.json, 255 bytes
    assert main(["convert", "a.tif", name]) == 0
    capsys.readouterr()
    refused(capsys, work, ["convert", "a.tif", "k" * 251 + ".npy"], "at most 255", ".npy.json")


# ---------------------------------------------------------------------------
# 9. every output location is checked before the work


@pytest.mark.parametrize("argv", [
    ["generate", "r.toml", "--out", "g.tif", "--preview", "afile/p.png"],
    ["generate", "r.toml", "--out", "g.tif", "--report", "afile/r.json"],
    ["generate", "r.toml", "--out", "g.tif", "--particles", "afile/p.csv"],
    ["generate", "r.toml", "--out", "g.tif", "--phases-out", "afile/p.toml"],
    ["segment", "a.tif", "--classes", "3", "--out", "s.tif", "--report", "afile/r.json"],
    ["conductivity", "a.tif", "--phases", "p.toml", "--out", "afile/r.json"],
    ["info", "a.tif", "--json", "afile/r.json"],
    ["randomwalk", "a.tif", "--phases", "p.toml", "--plot", "afile/m.png"],
])
def test_secondary_outputs_are_checked_before_the_main_one_is_written(work, capsys, argv):
    # A missing output folder is made (as mkdir -p would); one whose path runs through a file cannot be.
    shutil.copy(SAMPLES / "recipes" / "nmc12p5_se3um.toml", work / "r.toml")
    (work / "afile").write_text("a file, not a folder")
    refused(capsys, work, argv, "afile", "is not a folder")


def test_two_outputs_with_one_name_are_refused(work, capsys):
    refused(capsys, work, ["segment", "a.tif", "--phases", "3", "--out", "s.tif", "--report", "s.tif"],
            "two outputs")


# ---------------------------------------------------------------------------
# 12. permissions and links


@pytest.mark.parametrize("mask, mode", [(0o022, 0o755), (0o077, 0o700), (0o002, 0o775)])
def test_slice_folders_get_folder_permissions_from_the_umask(work, capsys, mask, mode):
    old = os.umask(mask)
    try:
        assert main(["convert", "a.tif", "slices"]) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE((work / "slices").stat().st_mode) == mode
    assert stat.S_IMODE((work / "slices" / "slice_0000.tif").stat().st_mode) == mode & 0o666


def test_run_folders_honour_the_umask(work, capsys):
    old = os.umask(0o027)
    try:
        assert main(["run", "c.toml", "--out", "o", "--quiet"]) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE((work / "o").stat().st_mode) == 0o750


def test_output_symlinks_are_refused_unless_asked(work, capsys, monkeypatch):
    (work / "real").mkdir()
    os.symlink("real", work / "link")
    os.symlink("elsewhere.json", work / "r.json")
    refused(capsys, work, ["sweep", str(SAMPLES / "sweep_electrode.toml"), "--out", "link"], "symbolic link",
            "--allow-symlink-output")
    refused(capsys, work, ["run", "c.toml", "--out", "link"], "symbolic link")
    refused(capsys, work, ["info", "a.tif", "--json", "r.json"], "symbolic link")
    assert main(["info", "a.tif", "--header-only", "--json", "r.json", "--allow-symlink-output"]) == 0
    assert json.loads((work / "elsewhere.json").read_text())["info"]["shape"] == [64, 64, 64]
    monkeypatch.setenv(safety.ALLOW_SYMLINK_ENV, "1")
    assert main(["convert", "a.tif", "link/b.tif"]) == 0  # a link above the output is a folder, not the output


# ---------------------------------------------------------------------------
# weak points: messages that name the file


def test_text_decoding_errors_name_the_file(work, capsys):
    (work / "bad.toml").write_bytes(b"\xff\xfe[phases]\n")
    refused(capsys, work, ["conductivity", "a.tif", "--phases", "bad.toml"], "bad.toml", "not UTF-8")
    refused(capsys, work, ["run", "bad.toml"], "bad.toml", "not UTF-8")
    (work / "bad.json").write_bytes(b"\xff\xfe{}")
    refused(capsys, work, ["bruggeman", "bad.json"], "bad.json")


def test_nan_in_a_grayscale_stack_names_the_file_and_the_count(work, capsys):
    g = np.random.default_rng(0).random((8, 8, 8)).astype(np.float32)
    g[0, 0, :3] = np.nan
    np.save(work / "g.npy", g)
    refused(capsys, work, ["segment", "g.npy", "--classes", "2", "--out", "s.tif"], "g.npy", "3 of 512 voxels are NaN")


def test_a_zero_size_axis_names_the_file_and_its_shape(work, capsys):
    np.save(work / "z.npy", np.zeros((0, 4, 4), np.uint8))
    refused(capsys, work, ["info", "z.npy"], "z.npy", "0 x 4 x 4", "no voxels along z")
    refused(capsys, work, ["conductivity", "z.npy", "--phases", "p.toml"], "z.npy", "0 x 4 x 4")


# ---------------------------------------------------------------------------
# JSON: one convention, strict JSON everywhere


def strict_load(path: Path):
    def refuse(name):
        raise ValueError(f"{path}: bare {name} is not JSON")
    return json.loads(path.read_text(), parse_constant=refuse)


def test_json_writer_refuses_bare_infinity(tmp_path):
    from microsim.jsonio import dumps, write_json
    write_json(tmp_path / "x.json", {"tau": math.inf, "nan": float("nan"), "a": np.float32(-np.inf)})
    assert strict_load(tmp_path / "x.json") == {"tau": "inf", "nan": "nan", "a": "-inf"}
    assert dumps([np.float64("nan")]) == '["nan"]'


def _blocked_volume(path: Path) -> None:
    """16^3 labels: electrolyte (0) in columns along x, a solid plane blocking z: ionic tau along z is inf."""
    labels = np.full((16, 16, 16), 85, np.uint8)
    labels[:, 4:10, :] = 0
    labels[7, :, :] = 170
    tifffile.imwrite(path, labels, imagej=True)


@pytest.mark.slow
def test_every_json_file_microsim_writes_is_strict_json(work, capsys):
    _blocked_volume(work / "b.tif")
    (work / "res").mkdir()
    r = work / "res"
    assert main(["info", "b.tif", "--json", f"{r}/info.json"]) == 0
    assert main(["info", "a.tif", "--json", f"{r}/info_gray.json", "--reduce", "mean", "--downsample", "2"]) == 0
    assert main(["conductivity", "b.tif", "--phases", "p.toml", "--out", f"{r}/cond.json", "--quiet"]) == 0
    assert main(["conductivity", "a.tif", "--phases", "p.toml", "--crop", "0:16,0:16,0:16", "--direction", "z",
                 "--out", f"{r}/cond2.json", "--quiet"]) == 0
    assert main(["bruggeman", f"{r}/cond.json", f"{r}/cond2.json", "--out", f"{r}/brugg.json"]) == 0
    assert main(["analyze", "b.tif", "--phases", "p.toml", "--out", f"{r}/analyze.json", "--quiet"]) == 0
    assert main(["randomwalk", "b.tif", "--phases", "p.toml", "--walkers", "64", "--steps", "64",
                 "--out", f"{r}/rw.json", "--quiet"]) == 0
    assert main(["segment", "a.tif", "--phases", "3", "--out", f"{r}/s.npy", "--report", f"{r}/seg.json",
                 "--quiet"]) == 0
    assert main(["convert", "b.tif", f"{r}/b.raw"]) == 0
    (work / "d.toml").write_text(RUN_CONFIG.replace('"a.tif"', '"b.tif"').replace('crop = "0:12,0:12,0:12"\n', ""))
    assert main(["run", "d.toml", "--out", f"{r}/run", "--quiet"]) == 0
    capsys.readouterr()
    files = sorted(work.rglob("*.json"))
    names = {p.name for p in files}
    assert {"info.json", "cond.json", "brugg.json", "analyze.json", "rw.json", "seg.json", "s.npy.json",
            "b.raw.json", "result.json"} <= names
    for p in files:
        strict_load(p)
    cond = strict_load(r / "cond.json")
    assert "inf" in {row["tau"] for row in cond["results"]}  # the blocked direction, as a string


# ---------------------------------------------------------------------------
# the dense LCO preset is the porous one with the voids filled


@pytest.mark.slow
def test_dense_lco_preset_is_the_porous_one_with_its_voids_filled():
    from microsim.generate import generate, load_recipe
    from microsim.generate.cathode import ACTIVE, ELECTROLYTE, PORE
    porous = load_recipe(SAMPLES / "recipes" / "lco_li3ps4_lii_porous.toml")
    dense = load_recipe(SAMPLES / "recipes" / "lco_li3ps4_lii_dense.toml")
    a, b = generate(porous), generate(dense)
    la, lb = a.volume.labels, b.volume.labels
    assert np.count_nonzero(la == PORE) > 0.1 * la.size
    assert np.count_nonzero(lb == PORE) == 0
    assert np.array_equal(la == ACTIVE, lb == ACTIVE)  # the same particles, voxel for voxel
    assert np.array_equal(np.isin(la, (PORE, ELECTROLYTE)), lb == ELECTROLYTE)  # voids became electrolyte
    assert np.array_equal(a.particles.centres_um[a.particles.phase == ACTIVE],
                          b.particles.centres_um[b.particles.phase == ACTIVE])
    assert b.targets["pore"] == 0.0
    assert abs(b.achieved["electrolyte"] - (a.achieved["electrolyte"] + a.achieved["pore"])) < 1e-12


@pytest.mark.parametrize("option, value", [("--rtol", "1"), ("--rtol", "5"), ("--current-tol", "5"),
                                           ("--tol", "0"), ("--tol", "nan"), ("--max-iter", "0")])
def test_tolerances_that_would_end_the_solve_before_it_starts_are_refused(work, capsys, option, value):
    refused(capsys, work, ["conductivity", "a.tif", "--phases", "p.toml", option, value], f"argument {option}")


def test_a_folder_written_into_may_hold_inputs_but_one_replaced_may_not(work):
    safety.check_outputs([work / "a.tif"], [], folders=[work], clean=False)  # e.g. analyze --plots .
    with pytest.raises(safety.SafetyError, match="contains the input"):
        safety.check_outputs([work / "a.tif"], [], replace_folders=[work], clean=False)
    with pytest.raises(safety.SafetyError, match="is the input"):
        safety.check_outputs([work / "a.tif"], [], folders=[work / "a.tif"], clean=False)


def test_rename_noreplace_never_replaces(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()  # empty: os.rename would replace it
    with pytest.raises(FileExistsError):
        safety.rename_noreplace(tmp_path / "a", tmp_path / "b")
    assert (tmp_path / "a").is_dir() and (tmp_path / "b").is_dir()
    safety.rename_noreplace(tmp_path / "a", tmp_path / "c")
    assert (tmp_path / "c").is_dir() and not (tmp_path / "a").exists()
