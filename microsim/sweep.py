"""Parameter sweeps: many variations of one run configuration, in parallel, resumable.

A sweep file names a base run configuration and the values to vary, as dotted
paths into it (``source.crop``, ``phases.electrolyte.sigma_ionic_S_per_m``,
``source.recipe.cam.volume_fraction`` ...)::

    [sweep]
    name = "crop position x electrolyte conductivity"
    base = "run_electrode.toml"      # relative to this file
    workers = 2                      # parallel cases (default: one per core)

    [set]                            # changes applied to every case
    "output.fields" = false

    [grid]                           # every combination of these values
    "source.crop" = ["0:24,0:24,0:24", "0:24,0:24,40:64"]
    "phases.electrolyte.sigma_ionic_S_per_m" = [0.05, 0.2]

    [[cases]]                        # and/or explicit cases
    name = "whole sample"
    "source.crop" = "0:64,0:64,0:64"

A path that runs through a string naming a TOML file (``source.recipe =
"recipe.toml"``, ``phases = "table.toml"``) reads that file first, so values
inside it can be varied.

The sweep folder holds ``cases/ID/`` (one complete run folder per finished
case), ``failed/ID.json`` (the error of each failed case), ``results.csv``
(one table of every case), ``sweep.json`` (cases, status and the Bruggeman fits),
``bruggeman_CARRIER.png`` and ``report.html``. A case's ID is a readable slug
plus a hash of its complete configuration: rerunning the same sweep (after an
interruption, or with more values) skips every case whose run folder exists,
and a run folder only exists once complete (see :func:`microsim.pipeline.run`).
"""
from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import multiprocessing
import multiprocessing.connection
import os
import re
import shutil
import signal
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from .atomic import write_text_atomic
from .jsonio import json_safe, write_json
from .pipeline.config import ConfigError, load_config, read_toml, set_dotted, toml_text
from .pipeline.runner import RESULT_FILE, SUMMARY_COLUMNS, interrupt_on_sigterm, run
from .progress import Progress

SWEEP_KEYS = ("name", "base", "workers")
LOCK_FILE = ".sweep.lock"


class SweepError(ConfigError):
    """A sweep file or sweep folder cannot be used; the message names the problem and the fix."""


@dataclass(frozen=True)
class Case:
    """One variation: its ID, a readable name, the values it changes and the complete run document."""

    id: str
    name: str
    overrides: dict
    document: dict = field(repr=False)

    def to_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "overrides": copy.deepcopy(self.overrides)}


@dataclass(frozen=True)
class SweepSpec:
    """A checked sweep: its cases and where relative paths of the base configuration start."""

    name: str
    base_file: Path
    base_dir: Path
    cases: tuple[Case, ...]
    parameters: tuple[str, ...]
    workers: int | None
    document: dict = field(repr=False)
    source_file: Path | None = None

    def to_dict(self) -> dict:
        return {"name": self.name, "parameters": list(self.parameters), "cases": [c.to_dict() for c in self.cases]}


@dataclass(frozen=True)
class SweepResult:
    """What a call of :func:`sweep` found and did.

    ``ran`` lists the cases this call ran (finished or failed); ``skipped`` the
    cases found finished (or failed, unless retried) from an earlier call.
    """

    out_dir: Path
    total: int
    done: tuple[str, ...]
    failed: tuple[str, ...]
    ran: tuple[str, ...]
    skipped: tuple[str, ...]
    rows: list = field(repr=False)
    fits: list = field(repr=False)

    @property
    def complete(self) -> bool:
        return len(self.done) + len(self.failed) == self.total

    def to_dict(self) -> dict:
        return {"out_dir": str(self.out_dir), "total": self.total, "done": list(self.done),
                "failed": list(self.failed), "ran": list(self.ran), "skipped": list(self.skipped),
                "fits": self.fits}


# ---------------------------------------------------------------------------
# the sweep file


def _flatten(table: Mapping, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}, "c.d": 2}`` -> ``{"a.b": 1, "c.d": 2}`` (quoted and bare dotted keys alike)."""
    out = {}
    for key, value in table.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, Mapping):
            out.update(_flatten(value, path))
        else:
            out[path] = value
    return out


def _slug(text: str, limit: int = 48) -> str:
    s = re.sub(r"[^A-Za-z0-9.=+-]+", "_", text).strip("_.")
    return (s[:limit].rstrip("_.") or "case")


def _value_text(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def case_id(name: str, document: Mapping) -> str:
    """A folder name for a case: a slug of ``name`` and 10 hex digits of the hash of its whole configuration.

    >>> case_id("sigma=0.1", {"a": 1}) == case_id("sigma=0.1", {"a": 1}) != case_id("sigma=0.1", {"a": 2})
    True
    """
    digest = hashlib.sha256(json.dumps(json_safe(document), sort_keys=True).encode()).hexdigest()[:10]
    return f"{_slug(name)}-{digest}"


def _make_case(base: dict, overrides: dict, name: str | None, base_dir: Path, common: dict) -> Case:
    doc = copy.deepcopy(base)
    label = name or "_".join(f"{k.split('.')[-1]}={_value_text(v)}" for k, v in overrides.items()) or "base"
    try:
        for key, value in {**common, **overrides}.items():
            set_dotted(doc, key, value, base_dir)
        # The hash sees absolute paths, so the same file named from two folders is one case.
        resolved = load_config(doc, base_dir).resolved_document()
    except ConfigError as exc:
        raise SweepError(f"case {label!r}: {exc}") from None
    return Case(case_id(label, resolved), label, dict(overrides), doc)


def load_sweep(source: str | Path | Mapping, base_dir: str | Path | None = None) -> SweepSpec:
    """Read and check a sweep file (or its parsed document); every case's configuration is checked too.

    Examples
    --------
    >>> spec = load_sweep("samples/sweep_electrode.toml")  # doctest: +SKIP
    >>> len(spec.cases)  # doctest: +SKIP
    4
    """
    if isinstance(source, Mapping):
        doc, origin = copy.deepcopy(dict(source)), None
        here = Path(base_dir) if base_dir is not None else Path.cwd()
    else:
        origin = Path(source)
        doc = read_toml(origin, "sweep")
        here = Path(base_dir) if base_dir is not None else origin.resolve().parent
    try:
        return _parse_sweep(doc, here, origin)
    except ConfigError as exc:
        if origin is None or str(exc).startswith(str(origin)):
            raise
        raise SweepError(f"{origin}: {exc}") from None


def _parse_sweep(doc: dict, here: Path, origin: Path | None) -> SweepSpec:
    for section in doc:
        if section not in ("sweep", "set", "grid", "cases"):
            raise SweepError(f"unknown section [{section}] in the sweep file; use [sweep], [set], [grid] and "
                             "[[cases]]")
    head = doc.get("sweep")
    if not isinstance(head, Mapping) or "base" not in head:
        raise SweepError("no [sweep] table with base = \"RUN_CONFIG.toml\"; add one naming the configuration to vary")
    for key in head:
        if key not in SWEEP_KEYS:
            raise SweepError(f"unknown key [sweep] {key} (allowed: {', '.join(SWEEP_KEYS)})")
    base_path = Path(head["base"])
    base_path = base_path if base_path.is_absolute() else here / base_path
    base = read_toml(base_path, "base configuration")
    base_dir = base_path.resolve().parent
    workers = head.get("workers")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise SweepError(f"[sweep] workers = {workers!r} must be a positive integer")
    common = _flatten(doc.get("set", {}))
    grid = _flatten(doc.get("grid", {}))
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise SweepError(f"[grid] {key} = {values!r} must be a non-empty list of values")
    listed = doc.get("cases", [])
    if not isinstance(listed, list) or not all(isinstance(c, Mapping) for c in listed):
        raise SweepError("cases must be [[cases]] tables")
    if not grid and not listed:
        raise SweepError("the sweep has no cases; add a [grid] of values or [[cases]] tables")
    cases = []
    if grid:
        keys = list(grid)
        for combo in itertools.product(*(grid[k] for k in keys)):
            cases.append(_make_case(base, dict(zip(keys, combo)), None, base_dir, common))
    for entry in listed:
        entry = dict(entry)
        name = entry.pop("name", None)
        if name is not None and not isinstance(name, str):
            raise SweepError(f"[[cases]] name = {name!r} must be a string")
        cases.append(_make_case(base, _flatten(entry), name, base_dir, common))
    seen: dict[str, str] = {}
    unique = []
    for c in cases:
        if c.id in seen:
            continue  # the same configuration twice: run it once
        seen[c.id] = c.name
        unique.append(c)
    params = tuple(dict.fromkeys(k for c in unique for k in c.overrides))
    name = head.get("name", origin.stem if origin is not None else "sweep")
    return SweepSpec(str(name), base_path.resolve(), base_dir, tuple(unique), params, workers, doc, origin)


# ---------------------------------------------------------------------------
# running


def _status(out: Path, case: Case) -> str:
    if (out / "cases" / case.id / RESULT_FILE).is_file():
        return "done"
    if (out / "failed" / f"{case.id}.json").is_file():
        return "failed"
    return "pending"


def _record_failure(out: Path, case: Case, exc: BaseException | None, message: str | None = None) -> None:
    text = message or " ".join(f"{type(exc).__name__}: {exc}".split())
    record = {"id": case.id, "name": case.name, "overrides": case.overrides, "error": text,
              "error_type": type(exc).__name__ if exc is not None else "WorkerExit",
              "traceback": "".join(traceback.format_exception(exc)) if exc is not None else None,
              "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    write_json(out / "failed" / f"{case.id}.json", record)


def _run_case(case: Case, base_dir: Path, out: Path, sweep_name: str) -> str:
    """Run one case in this process; returns 'done' or 'failed' (the error is recorded)."""
    failed = out / "failed" / f"{case.id}.json"
    try:
        config = load_config(case.document, base_dir)
        run(config, out / "cases" / case.id, overwrite=False, quiet=True,
            extra={"sweep": {"name": sweep_name, **case.to_dict()}})
    except Exception as exc:  # a failing case is recorded and the sweep goes on
        _record_failure(out, case, exc)
        return "failed"
    if failed.exists():
        failed.unlink()
    return "done"


def _worker(case: Case, base_dir: str, out: str, sweep_name: str, threads: int, parent: int | None = None) -> None:
    """Body of a case process: SIGINT is left to the parent, SIGTERM stops the case cleanly.

    If the sweep is killed (even with SIGKILL) the case gets SIGTERM and removes its partial run folder."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    interrupt_on_sigterm()
    if parent is not None:
        from .safety import end_with_parent
        end_with_parent(parent)
    try:
        import numba
        numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
        _run_case(case, Path(base_dir), Path(out), sweep_name)
    except KeyboardInterrupt:
        os._exit(130)


class _Lock:
    """One sweep at a time per folder: a lock file holding the pid of the sweep that writes it."""

    def __init__(self, out: Path):
        self.path = out / LOCK_FILE

    def __enter__(self):
        from .safety import pid_alive
        # The pid is written first and the file linked into place, so a lock is never seen empty.
        mine = self.path.with_name(f"{LOCK_FILE}.{os.getpid()}")
        mine.write_text(str(os.getpid()))
        try:
            for _ in range(2):
                try:
                    os.link(mine, self.path)
                    return self
                except FileExistsError:
                    try:
                        pid = int(self.path.read_text().strip())
                    except (OSError, ValueError):
                        pid = 0
                    if pid and pid_alive(pid):
                        raise SweepError(f"{self.path.parent}: another sweep (process {pid}) is writing this "
                                         "folder; wait for it to finish or use another --out") from None
                    self.path.unlink(missing_ok=True)  # left by a sweep that was killed
            raise SweepError(f"{self.path}: cannot take the sweep lock; remove the file if no sweep is running")
        finally:
            mine.unlink(missing_ok=True)

    def __exit__(self, *exc):
        self.path.unlink(missing_ok=True)


def _remove_partials(out: Path, progress=None) -> None:
    """Delete what killed runs left: hidden staging folders of run folders (never read), with a message.

    Called under the sweep's lock, so no case of this folder is running."""
    from .safety import remove_stale_temporaries, temp_pid
    for folder in (out / "cases", out):
        if not folder.is_dir():
            continue
        remove_stale_temporaries(folder, progress)
        if folder == out:
            continue
        for p in folder.iterdir():
            old_style = p.name.startswith(".") and (".partial-" in p.name or ".old-" in p.name)
            if old_style or (temp_pid(p.name) is not None and p.exists()):
                shutil.rmtree(p, ignore_errors=True)
                msg = f"microsim: removed {p}, a temporary left by a case that was killed"
                if progress is not None:
                    progress.line(msg, force=True)


def _start(ctx, case: Case, spec: SweepSpec, out: Path, threads: int):
    p = ctx.Process(target=_worker, args=(case, str(spec.base_dir), str(out), spec.name, threads, os.getpid()),
                    name=f"microsim-case-{case.id}", daemon=False)
    # SIGINT is blocked while the child is started: the child inherits the blocked signal, so a
    # Ctrl-C during its import cannot kill it half-way (stopping cases is the parent's job,
    # with SIGTERM), and the parent receives the Ctrl-C as soon as the start is over instead of
    # losing it, as ignoring the signal for that moment would.
    main = threading.current_thread() is threading.main_thread()
    if main and hasattr(signal, "pthread_sigmask"):
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            p.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        return p
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    try:
        p.start()
    finally:
        if main:
            signal.signal(signal.SIGINT, previous)
    return p


def _run_parallel(pending, spec: SweepSpec, out: Path, workers: int, finished: Callable[[Case, str], None]):
    ctx = multiprocessing.get_context("spawn")
    threads = max(1, (os.cpu_count() or 1) // workers)
    queue = list(pending)
    running: dict[int, tuple[Any, Case]] = {}
    try:
        while queue or running:
            while queue and len(running) < workers:
                case = queue.pop(0)
                p = _start(ctx, case, spec, out, threads)
                running[p.sentinel] = (p, case)
            for sentinel in multiprocessing.connection.wait(list(running), timeout=1.0):
                p, case = running.pop(sentinel)
                p.join()
                status = _status(out, case)
                if status == "pending":
                    why = "was interrupted" if p.exitcode == 130 else f"ended with exit code {p.exitcode}"
                    _record_failure(out, case, None, f"the case's process {why} before finishing "
                                                     "(out of memory or killed?)")
                    status = "failed"
                finished(case, status)
    except BaseException:
        for p, _ in running.values():
            if p.is_alive():
                p.terminate()  # SIGTERM: the case removes its partial run folder and exits
        for p, _ in running.values():
            p.join(timeout=60)
            if p.is_alive():
                p.kill()
                p.join()
        raise


def sweep(spec: SweepSpec | str | Path | Mapping, out: str | Path, *, workers: int | None = None,
          retry_failed: bool = False, progress: Progress | None = None, quiet: bool = False,
          on_case_done: Callable[[Case, str], None] | None = None,
          allow_symlink: bool | None = None) -> SweepResult:
    """Run every case of a sweep that is not finished yet, then write the table and the Bruggeman fits.

    Parameters
    ----------
    spec : SweepSpec, path of a sweep TOML, or its parsed document
    out : sweep folder (created if needed; reused to resume)
    workers : cases run at the same time (default: the sweep file's, else one per core);
        1 runs the cases one after the other in this process
    retry_failed : run the cases that failed before again (default: keep their error)
    progress : Progress, optional; ``quiet`` silences the default one
    on_case_done : callable(case, status), optional
        Called in this process after each case ('done' or 'failed').

    Ctrl-C (KeyboardInterrupt) stops the running cases; their partial run folders
    are removed, finished cases stay, and the table of the finished cases is
    written before the interrupt propagates. A later call with the same sweep
    runs only the cases that are still missing.

    Examples
    --------
    >>> r = sweep("samples/sweep_electrode.toml", "sweeps/electrode")  # doctest: +SKIP
    >>> r.complete, len(r.done)  # doctest: +SKIP
    (True, 4)
    """
    if not isinstance(spec, SweepSpec):
        spec = load_sweep(spec)
    out = Path(out)
    progress = progress if progress is not None else Progress(quiet=quiet)
    check_sweep_paths(spec, out, allow_symlink=allow_symlink, progress=progress)
    if out.exists() and not out.is_dir():
        raise SweepError(f"{out}: exists and is not a folder; choose another --out")
    if out.parent.exists() and not out.parent.is_dir():
        raise SweepError(f"{out}: {out.parent} is a file, not a folder; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    progress = progress if progress is not None else Progress(quiet=quiet)
    n_workers = workers or spec.workers or os.cpu_count() or 1
    with _Lock(out):
        for sub in ("cases", "failed"):
            (out / sub).mkdir(exist_ok=True)
        _remove_partials(out, progress)
        copy_doc = copy.deepcopy(spec.document)
        copy_doc["sweep"]["base"] = str(spec.base_file)
        write_text_atomic(out / "sweep.toml", "# The sweep file of this folder, base path made absolute.\n"
                          f"# Resume or extend with: microsim sweep sweep.toml --out {out.name}\n\n"
                          + toml_text(copy_doc))
        status = {c.id: _status(out, c) for c in spec.cases}
        todo = [c for c in spec.cases if status[c.id] == "pending" or (retry_failed and status[c.id] == "failed")]
        skipped = tuple(c.id for c in spec.cases if c not in todo)
        ran: list[str] = []
        n_total = len(spec.cases)
        progress.line(f"sweep {spec.name!r}: {n_total} cases, {len(skipped)} already finished, {len(todo)} to run "
                      f"({min(n_workers, max(len(todo), 1))} at a time)", force=True)
        t0 = time.monotonic()

        def finished(case: Case, st: str) -> None:
            status[case.id] = st
            ran.append(case.id)
            n_fin = sum(1 for v in status.values() if v != "pending")
            note = "done" if st == "done" else "FAILED (see failed/" + case.id + ".json)"
            progress.bar("sweep", n_fin, n_total, f"{case.name}: {note}")
            if on_case_done is not None:
                on_case_done(case, st)

        interrupted = True
        try:
            if n_workers <= 1 or len(todo) <= 1:
                for case in todo:
                    progress.line(f"case {case.name} ...", force=True)
                    finished(case, _run_case(case, spec.base_dir, out, spec.name))
            else:
                _run_parallel(todo, spec, out, min(n_workers, len(todo)), finished)
            interrupted = False
        finally:
            # A table of what is finished, also after Ctrl-C: every file in it is complete.
            status = {c.id: _status(out, c) for c in spec.cases}
            rows, fits = _tabulate(spec, out, status, complete=not interrupted)
        done = tuple(c.id for c in spec.cases if status[c.id] == "done")
        failed = tuple(c.id for c in spec.cases if status[c.id] == "failed")
        progress.line(f"sweep finished in {time.monotonic() - t0:.1f} s: {len(done)} done, {len(failed)} failed; "
                      f"table {out / 'results.csv'}", force=True)
        return SweepResult(out, n_total, done, failed, tuple(ran), skipped, rows, fits)


def check_sweep_paths(spec: SweepSpec, out: Path, *, allow_symlink: bool | None = None, progress=None) -> None:
    """Refuse a sweep folder that is a symbolic link, or whose files would replace an input.

    The sweep folder is reused to resume, and its own ``sweep.toml`` may be given as the
    sweep file (it is rewritten with the same content), so only the other files count.
    """
    from .safety import allow_symlink_output, check_input, check_outputs, volume_inputs
    allow = allow_symlink_output() if allow_symlink is None else allow_symlink
    inputs = [str(spec.base_file)]
    if spec.source_file is not None:
        inputs.append(str(spec.source_file))
    try:
        config = load_config(spec.base_file)
        from .pipeline.runner import run_inputs
        inputs += run_inputs(config)
    except (ValueError, OSError):
        pass
    for path in inputs:
        check_input(path)
    if out.is_symlink() and not allow:
        check_outputs([], [out], allow_symlink=False)
    files = [out / n for n in ("results.csv", "sweep.json", "report.html")]
    if out.is_dir():
        files += list(out.glob("bruggeman_*.png"))
    check_outputs(inputs, files if out.is_dir() else [], allow_symlink=allow, progress=progress, clean=False)
    if not out.exists():
        check_outputs(inputs, [], folders=[out], allow_symlink=allow, progress=progress, clean=False)


# ---------------------------------------------------------------------------
# the table and the fits


def _num(v) -> float:
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return math.nan
    return math.nan if v is None else float(v)


def _tabulate(spec: SweepSpec, out: Path, status: dict[str, str], complete: bool):
    from .analysis import fit_bruggeman, plot_bruggeman
    rows = []
    for case in spec.cases:
        st = status[case.id]
        base = {"case": case.id, "name": case.name, "status": st}
        params = {k: _value_text(case.overrides[k]) if k in case.overrides else "" for k in spec.parameters}
        if st == "done":
            doc = json.loads((out / "cases" / case.id / RESULT_FILE).read_text())
            for r in doc["summary"]:
                rows.append({**base, **params, **r, "error": ""})
        else:
            error = ""
            if st == "failed":
                error = json.loads((out / "failed" / f"{case.id}.json").read_text()).get("error", "")
            rows.append({**base, **params, **{k: "" for k in SUMMARY_COLUMNS}, "error": error})

    columns = ["case", "name", "status", *spec.parameters, *SUMMARY_COLUMNS, "error"]
    import csv
    import io
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow(["true" if r[c] is True else "false" if r[c] is False else r[c] for c in columns])
    write_text_atomic(out / "results.csv", buf.getvalue())

    # Bruggeman fit across the sweep: per carrier and direction, and per carrier over all directions.
    fits, figures = [], {}
    ok = [r for r in rows if r["status"] == "done"]
    groups: dict[tuple, list[dict]] = {}
    for r in ok:
        groups.setdefault((r["method"], r["carrier"], r["direction"]), []).append(r)
        groups.setdefault((r["method"], r["carrier"], "all"), []).append(r)
    for (method, carrier, direction), members in groups.items():
        eps = [_num(r["eps"]) for r in members]
        tau = [_num(r["tau"]) for r in members]
        entry = {"method": method, "carrier": carrier, "direction": direction, "n_cases": len(members)}
        try:
            entry.update(fit_bruggeman(eps, tau).to_dict())
        except ValueError as exc:
            entry["skipped"] = str(exc)
        else:
            if entry.get("dof", 1) <= 0:
                entry["note"] = (f"{entry['n_points']} points for 2 parameters: the fit goes through them exactly, "
                                 "no degrees of freedom are left for a confidence interval; add cases")
        fits.append(entry)
    for carrier in dict.fromkeys(r["carrier"] for r in ok if r["method"] == "finite_volume"):
        members = [r for r in ok if r["method"] == "finite_volume" and r["carrier"] == carrier]
        pooled = next((f for f in fits if f["method"] == "finite_volume" and f["carrier"] == carrier
                       and f["direction"] == "all" and "skipped" not in f), None)
        fit_obj = None
        if pooled is not None:
            fit_obj = fit_bruggeman([_num(r["eps"]) for r in members], [_num(r["tau"]) for r in members])
        name = f"bruggeman_{carrier}.png"
        plot_bruggeman(out / name, [_num(r["eps"]) for r in members], [_num(r["tau"]) for r in members],
                       fit=fit_obj, groups=[f"{carrier} {r['direction']}" for r in members],
                       title=f"{spec.name}: {carrier} tau against eps ({len({r['case'] for r in members})} cases)")
        figures[f"bruggeman {carrier}"] = name

    document = {"schema": "microsim-sweep", "schema_version": 1, "name": spec.name, "complete": complete,
                "written_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "parameters": list(spec.parameters), "base_dir": str(spec.base_dir),
                "cases": [{**c.to_dict(), "status": status[c.id]} for c in spec.cases],
                "fits": fits, "figures": figures, "table": "results.csv"}
    write_json(out / "sweep.json", document)
    from .report.html import write_sweep_report
    write_sweep_report(out / "report.html", json_safe(document), rows, out)
    return rows, json_safe(fits)
