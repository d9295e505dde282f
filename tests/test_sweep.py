"""``microsim sweep``: cases from a grid or list, resumable after an interruption, failures recorded."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import microsim.pipeline.runner as runner
import microsim.sweep as sweep_module
from microsim.pipeline import validate_result
from microsim.sweep import SweepError, load_sweep, sweep

ROOT = Path(__file__).resolve().parents[1]
BASE = ROOT / "samples" / "run_electrode.toml"
CROPS = ["0:16,0:16,0:16", "0:16,0:16,16:32", "16:32,0:16,0:16", "32:48,0:16,0:16"]
FAST = {"transport.carriers": ["ionic"], "transport.directions": ["x"], "output.fields": False,
        "output.figures": False, "output.report": False, "analysis.interfaces": False}


def spec_doc(crops=CROPS, **extra) -> dict:
    doc = {"sweep": {"name": "crops", "base": str(BASE)}, "set": dict(FAST), "grid": {"source.crop": list(crops)}}
    doc.update(extra)
    return doc


def finished(out: Path) -> dict[str, int]:
    """Case id -> mtime (ns) of its result.json, for every complete case folder."""
    return {p.name: (p / "result.json").stat().st_mtime_ns for p in (out / "cases").iterdir()
            if (p / "result.json").is_file()}


def leftovers(out: Path) -> list[str]:
    """Hidden staging folders and temporary files anywhere under ``out``."""
    return [str(p.relative_to(out)) for p in out.rglob("*")
            if ".partial-" in p.name or ".old-" in p.name or p.name.endswith((".part", ".part.json"))
            or ".part." in p.name]


def test_grid_and_list_make_distinct_stable_cases(tmp_path):
    doc = spec_doc(crops=CROPS[:2])
    doc["grid"]["phases.electrolyte.sigma_ionic_S_per_m"] = [0.1, 0.2]
    doc["cases"] = [{"name": "whole", "source": {"crop": "0:32,0:32,0:32"}},
                    {"source.crop": CROPS[0], "phases.electrolyte.sigma_ionic_S_per_m": 0.1}]  # = a grid case
    spec = load_sweep(doc, tmp_path)
    assert len(spec.cases) == 5  # 2 x 2 grid + 1 new listed case (the other repeats a grid case)
    assert len({c.id for c in spec.cases}) == 5
    assert spec.parameters == ("source.crop", "phases.electrolyte.sigma_ionic_S_per_m")
    assert [c.id for c in load_sweep(doc, tmp_path).cases] == [c.id for c in spec.cases]
    first = spec.cases[0]
    assert first.document["source"]["crop"] == CROPS[0]
    assert first.document["phases"]["electrolyte"]["sigma_ionic_S_per_m"] == 0.1  # read from the phase table file
    assert first.document["output"]["fields"] is False  # [set] reaches every case
    assert spec.cases[-1].name == "whole"


@pytest.mark.parametrize("change, message", [
    ({"grid": {"source.crop": []}}, "must be a non-empty list"),
    ({"grid": {"source.crop.z": [1]}}, "source.crop is '0:32,0:32,0:32', not a table"),
    ({"grid": {"transport.directions": [["w"]]}}, "direction 'w' is not one of x, y, z"),
    ({"sweeps": {}}, "unknown section [sweeps]"),
])
def test_bad_sweep_files_fail_early_in_one_line(tmp_path, change, message):
    doc = spec_doc()
    doc.pop("grid")
    doc.update(change)
    if "grid" not in doc:
        doc["grid"] = {"source.crop": CROPS}
    with pytest.raises(SweepError) as info:
        load_sweep(doc, tmp_path)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_interrupted_sweep_resumes_without_rerunning_finished_cases(tmp_path, monkeypatch):
    spec = load_sweep(spec_doc(), tmp_path)
    out = tmp_path / "sweep"
    real = runner.solve_direction
    solves = []

    def ctrl_c_in_third_case(*args, **kwargs):
        solves.append(1)
        if len(solves) == 3:  # the third case is interrupted in the middle of its solve stage
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "solve_direction", ctrl_c_in_third_case)
    with pytest.raises(KeyboardInterrupt):
        sweep(spec, out, workers=1, quiet=True)
    first = finished(out)
    assert len(first) == 2 and leftovers(out) == []
    assert not (out / ".sweep.lock").exists()
    state = json.loads((out / "sweep.json").read_text())
    assert state["complete"] is False
    assert [c["status"] for c in state["cases"]] == ["done", "done", "pending", "pending"]

    monkeypatch.setattr(runner, "solve_direction", real)
    runs = []
    real_run = sweep_module.run
    monkeypatch.setattr(sweep_module, "run", lambda config, out_dir, **kw: runs.append(out_dir.name)
                        or real_run(config, out_dir, **kw))
    result = sweep(spec, out, workers=1, quiet=True)
    assert result.complete and len(result.done) == 4 and not result.failed
    assert set(result.skipped) == set(first) and set(runs) == set(result.ran) == {c.id for c in spec.cases} - set(first)
    assert len(runs) == 2  # never a finished case twice
    after = finished(out)
    assert len(after) == 4 and all(after[k] == v for k, v in first.items())  # finished cases untouched
    with open(out / "results.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4 and {r["source.crop"] for r in rows} == set(CROPS)
    assert all(r["status"] == "done" and float(r["tau"]) > 1 for r in rows)
    for case in after:
        assert validate_result(out / "cases" / case / "result.json") == []

    # a third call finds nothing to do
    runs.clear()
    again = sweep(spec, out, workers=1, quiet=True)
    assert runs == [] and len(again.skipped) == 4


def test_a_failing_case_is_recorded_and_the_sweep_goes_on(tmp_path):
    crops = [CROPS[0], "0:16,0:16,100:116", CROPS[1]]  # the middle crop lies outside the 64^3 sample
    out = tmp_path / "sweep"
    result = sweep(load_sweep(spec_doc(crops), tmp_path), out, workers=1, quiet=True)
    assert len(result.done) == 2 and len(result.failed) == 1 and result.complete
    record = json.loads((out / "failed" / f"{result.failed[0]}.json").read_text())
    assert "100:116" in record["error"] or "outside" in record["error"]
    assert "\n" not in record["error"] and record["traceback"]
    with open(out / "results.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["status"] for r in rows] == ["done", "failed", "done"]
    assert rows[1]["error"] == record["error"] and rows[1]["tau"] == ""
    fits = json.loads((out / "sweep.json").read_text())["fits"]
    pooled = next(f for f in fits if f["carrier"] == "ionic" and f["direction"] == "x")
    assert pooled["n_points"] == 2  # the failed case is not in the fit
    # by default a failed case stays failed; --retry-failed runs it again
    spec = load_sweep(spec_doc(crops), tmp_path)
    assert sweep(spec, out, workers=1, quiet=True).ran == ()
    retried = sweep(spec, out, workers=1, retry_failed=True, quiet=True)
    assert retried.ran == result.failed and retried.failed == result.failed


def test_bruggeman_fit_across_the_sweep_matches_a_direct_fit(tmp_path):
    from microsim.analysis.bruggeman import fit_bruggeman
    out = tmp_path / "sweep"
    result = sweep(load_sweep(spec_doc(), tmp_path), out, workers=1, quiet=True)
    rows = [r for r in result.rows if r["direction"] == "x"]
    want = fit_bruggeman([r["eps"] for r in rows], [r["tau"] for r in rows])
    fit = next(f for f in result.fits if f["carrier"] == "ionic" and f["direction"] == "x")
    assert fit["alpha"] == pytest.approx(want.alpha, rel=1e-12) and fit["n_points"] == 4
    assert (out / "bruggeman_ionic.png").read_bytes()[:4] == b"\x89PNG"
    html = (out / "report.html").read_text()
    assert "Bruggeman fits" in html and "http" not in html


def test_ctrl_c_on_a_parallel_sweep_then_resume(tmp_path):
    """A real SIGINT to the whole process group (what Ctrl-C in a terminal sends), with two workers."""
    sweep_file = tmp_path / "sweep.toml"
    crops = "[" + ", ".join(f'"{c}"' for c in CROPS) + "]"
    sweep_file.write_text(f'[sweep]\nname = "crops"\nbase = "{BASE.as_posix()}"\nworkers = 2\n\n'
                          '[set]\n"transport.carriers" = ["ionic"]\n"transport.directions" = ["x"]\n'
                          # figures make each case last a second or two, so the signal always
                          # finds cases still running, however fast the solves are
                          '"output.fields" = false\n"output.figures" = true\n"output.report" = false\n\n'
                          f'[grid]\n"source.crop" = {crops}\n')
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "microsim", "sweep", str(sweep_file), "--out", str(out), "--quiet"]
    # A shell starts background jobs with SIGINT ignored, and the ignored disposition is
    # inherited: give the sweep the default one, as in a terminal's foreground.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if (out / "cases").is_dir() and finished(out):
            break
        time.sleep(0.05)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    before = finished(out)
    # the signal came right after the first case finished, with three still to run or running
    assert proc.returncode == 130, err
    assert "interrupted" in err and err.count("\n") == 1
    assert 0 < len(before) < 4
    assert leftovers(out) == [] and not (out / ".sweep.lock").exists()
    for case in before:  # every case folder that exists is complete
        assert validate_result(out / "cases" / case / "result.json") == []
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    after = finished(out)
    assert len(after) == 4 and all(after[k] == v for k, v in before.items())
    assert f"{4 - len(before)} run now, {len(before)} already finished" in done.stdout


def test_one_sweep_per_folder(tmp_path):
    out = tmp_path / "sweep"
    out.mkdir()
    (out / ".sweep.lock").write_text(str(os.getpid()))  # a live process holds the folder
    with pytest.raises(SweepError, match=r"another sweep \(process \d+\) is writing this folder"):
        sweep(load_sweep(spec_doc(CROPS[:1]), tmp_path), out, workers=1, quiet=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (out / ".sweep.lock").write_text(dead.stdout.strip())  # left by a sweep that was killed
    with sweep_module._Lock(out):
        assert (out / ".sweep.lock").read_text() == str(os.getpid())
    assert sorted(p.name for p in out.iterdir()) == []
