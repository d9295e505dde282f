"""Faults from outside: kill -9 in the middle of a run or a sweep, a full file system, two runs into
one folder, a read-only output folder. After each, the inputs are unchanged, no output is half
written, and the next run cleans up and completes.

The processes are watched through their progress lines and their files, not through timers.
A full or read-only file system is a small tmpfs when this process may mount one (root);
otherwise those tests are skipped (tests/test_safety.py covers a full disk with a writer
that raises ENOSPC).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from microsim import safety

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"

CONFIG = """phases = "p.toml"
[run]
name = "faults"
[source]
stack = "a.tif"
crop = "0:24,0:24,0:24"
voxel_size_um = 0.390625
[transport]
carriers = ["ionic", "electronic"]
directions = ["x", "z"]
[analysis]
particle_size = []
"""

SWEEP = """[sweep]
name = "faults"
base = "c.toml"
workers = {workers}
[set]
"transport.carriers" = ["ionic"]
"transport.directions" = ["z"]
"output.fields" = false
"output.figures" = false
[grid]
"source.crop" = ["0:16,0:16,0:16", "16:32,16:32,16:32", "32:48,32:48,32:48"]
"""

TIMEOUT = 240  # seconds any one process may take on a loaded two-core machine


def digest(folder: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir() if p.is_file()}


@pytest.fixture()
def work(tmp_path):
    shutil.copy(SAMPLES / "electrode_64.tif", tmp_path / "a.tif")
    shutil.copy(SAMPLES / "electrode_phases.toml", tmp_path / "p.toml")
    (tmp_path / "c.toml").write_text(CONFIG)
    return tmp_path


def start(work: Path, *argv, env=None):
    e = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    return subprocess.Popen([sys.executable, "-m", "microsim", *map(str, argv)], cwd=work, env=e,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for_line(proc, text: str) -> list[str]:
    """Read the process's stderr (lines and progress-bar updates) until a line contains ``text``."""
    seen, buf = [], b""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        chunk = proc.stderr.read1(4096) if hasattr(proc.stderr, "read1") else proc.stderr.read(1)
        if not chunk:
            raise AssertionError(f"process ended before {text!r}: " + " | ".join(seen[-5:]))
        buf += chunk
        parts = buf.replace(b"\r", b"\n").split(b"\n")
        buf = parts.pop()
        for p in parts:
            line = p.decode(errors="replace")
            seen.append(line)
            if text in line:
                return seen
    raise AssertionError(f"no {text!r} within {TIMEOUT} s")


def finish(proc) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=TIMEOUT)
    return proc.returncode, out.decode(), err.decode()


def run_cli(work: Path, *argv, env=None) -> tuple[int, str, str]:
    return finish(start(work, *argv, env=env))


def temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*") if safety.temp_pid(p.name) is not None]


def strict(path: Path):
    def refuse(name):
        raise ValueError(f"bare {name}")
    return json.loads(path.read_text(), parse_constant=refuse)


# ---------------------------------------------------------------------------
# kill -9 during run and sweep


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["load volume", "solve ionic z", "figures"])
def test_kill_9_during_a_run_then_rerun(work, stage):
    inputs = digest(work)
    proc = start(work, "run", "c.toml", "--out", "o")
    wait_for_line(proc, f"] {stage}")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=TIMEOUT)
    assert not (work / "o").exists(), "a killed run must leave no run folder"
    left = [p for p in work.iterdir() if safety.temp_pid(p.name) is not None]
    code, out, err = run_cli(work, "run", "c.toml", "--out", "o", "--quiet")
    assert code == 0, err
    for p in left:
        assert f"removed {p}" in err
    assert not temporaries(work) and not list(work.glob(".*lock"))
    assert strict(work / "o" / "result.json")["name"] == "faults"
    assert (work / "o" / "report.html").is_file() and (work / "o" / "fields.h5").is_file()
    assert digest(work) == inputs


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_kill_9_during_a_sweep_then_rerun(work, workers):
    (work / "s.toml").write_text(SWEEP.format(workers=workers))
    inputs = digest(work)
    proc = start(work, "sweep", "s.toml", "--out", "sw")
    cases = work / "sw" / "cases"
    if workers == 1:
        wait_for_line(proc, "case ")  # the first case started ...
        wait_for_line(proc, "case ")  # ... and the second: one finished
    else:
        deadline = time.monotonic() + TIMEOUT
        while not (cases.is_dir() and temporaries(cases)):
            assert proc.poll() is None and time.monotonic() < deadline, "no case started"
            time.sleep(0.05)
    children = {safety.temp_pid(p.name) for p in temporaries(cases)}
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=TIMEOUT)
    # the cases' processes end with the sweep (SIGTERM from the kernel) and remove their partial folders
    deadline = time.monotonic() + TIMEOUT
    while any(safety.pid_alive(pid) for pid in children if pid != proc.pid):
        assert time.monotonic() < deadline, "case processes outlived the killed sweep"
        time.sleep(0.05)
    finished = [p for p in cases.iterdir() if not p.name.startswith(".")]
    for case in finished:
        strict(case / "result.json")  # whatever exists is complete
    code, out, err = run_cli(work, "sweep", "s.toml", "--out", "sw", "--quiet")
    assert code == 0, err
    assert "3 of 3 cases done" in out
    assert f"{len(finished)} already finished" in out
    assert not temporaries(work / "sw")
    doc = strict(work / "sw" / "sweep.json")
    assert [c["status"] for c in doc["cases"]] == ["done"] * 3
    assert digest(work) == inputs


@pytest.mark.slow
def test_two_case_sweep_reports_a_fit_without_degrees_of_freedom(work):
    (work / "s.toml").write_text(SWEEP.format(workers=1).replace(', "32:48,32:48,32:48"', ""))
    code, out, err = run_cli(work, "sweep", "s.toml", "--out", "sw", "--quiet")
    assert code == 0, err
    assert "no confidence interval" in out and "2 points" in out
    fit = next(f for f in strict(work / "sw" / "sweep.json")["fits"] if f["direction"] == "all")
    assert fit["dof"] == 0 and "no degrees of freedom" in fit["note"]
    assert "no degrees of freedom" in (work / "sw" / "report.html").read_text()


# ---------------------------------------------------------------------------
# two runs into one folder


@pytest.mark.slow
def test_two_concurrent_runs_into_one_folder(work):
    first = start(work, "run", "c.toml", "--out", "o")
    wait_for_line(first, "] load volume")  # the first holds the folder's lock from here on
    code, out, err = run_cli(work, "run", "c.toml", "--out", "o")
    assert code == 2
    assert err.strip().splitlines() == [f"microsim run: error: {work / 'o'}: another microsim (process "
                                        f"{first.pid}) is writing this run folder; wait for it to finish or "
                                        "choose another --out"]
    code, out, err = finish(first)
    assert code == 0, err
    assert strict(work / "o" / "result.json")["name"] == "faults"
    code, out, err = run_cli(work, "run", "c.toml", "--out", "o")
    assert code == 2 and "output folder exists" in err  # the finished folder is never replaced silently
    assert not temporaries(work)


# ---------------------------------------------------------------------------
# full and read-only file systems


@contextmanager
def tmpfs(where: Path, size: str, readonly: bool = False):
    where.mkdir()
    opts = f"size={size}" + (",ro" if readonly else "")
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(where)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root); a full disk is covered by a writer raising ENOSPC "
                    "in tests/test_safety.py")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


NO_PREFLIGHT = ("import sys, microsim.safety as s, microsim.pipeline.runner as r, microsim.commands._guard as g; "
                "s.check_disk = r.check_disk = g.check_disk = lambda *a, **k: None; "
                "from microsim.cli import main; sys.exit(main(sys.argv[1:]))")


@pytest.mark.slow
def test_full_file_system(work):
    inputs = digest(work)
    with tmpfs(work / "full", "400k") as full:
        (full / "fill").write_bytes(b"\0" * 300_000)
        # before writing: the estimate does not fit
        code, out, err = run_cli(work, "convert", "a.tif", full / "b.h5")
        assert code == 2 and "needs about 256 KiB" in err and "is free there" in err
        code, out, err = run_cli(work, "run", "c.toml", "--out", full / "o")
        assert code == 2 and "free" in err, err
        # while writing (the check bypassed): a clean error, no crash of the HDF5 library
        for name in ("b.h5", "b.tif", "b.npy", "slices"):
            proc = subprocess.run([sys.executable, "-c", NO_PREFLIGHT, "convert", "a.tif", str(full / name),
                                   "--compression", "none"], cwd=work, capture_output=True, text=True,
                                  timeout=TIMEOUT)
            assert proc.returncode == 2, proc.stderr
            lines = proc.stderr.strip().splitlines()
            assert len(lines) == 1 and "the file system is full" in lines[0] and name in lines[0], proc.stderr
        proc = subprocess.run([sys.executable, "-c", NO_PREFLIGHT, "run", "c.toml", "--out", str(full / "o"),
                               "--quiet"], cwd=work, capture_output=True, text=True, timeout=TIMEOUT)
        assert proc.returncode == 2, proc.stderr
        assert "the file system is full" in proc.stderr.strip().splitlines()[-1]
        assert sorted(p.name for p in full.iterdir()) == ["fill"]
    assert digest(work) == inputs


@pytest.mark.slow
def test_read_only_output_folder(work):
    (work / "s.toml").write_text(SWEEP.format(workers=1))
    inputs = digest(work)
    with tmpfs(work / "ro", "100k", readonly=True) as ro:
        for argv in (["convert", "a.tif", ro / "b.tif"], ["run", "c.toml", "--out", ro / "o"],
                     ["info", "a.tif", "--json", ro / "i.json"]):
            code, out, err = run_cli(work, *argv)
            assert code == 2
            lines = err.strip().splitlines()
            assert len(lines) == 1 and "cannot write in" in lines[0], err
        code, out, err = run_cli(work, "sweep", "s.toml", "--out", ro / "sw")
        assert code == 2 and "cannot write in" in err, err
        assert list(ro.iterdir()) == []
    assert digest(work) == inputs
