"""Mutation check: apply one realistic bug at a time to a copy of the code and run the tests that cover it.

Run on demand (``make mutation``), not in CI. The catalogue is in ``tools/mutations.py``:
each entry names a file, an exact snippet of it, the snippet's buggy replacement and the
tests to run. For every entry the tool writes the mutated file into a temporary copy of
the repository, runs ``python -m pytest -x -q -p no:cacheprovider TESTS`` there and
restores the file. A mutation is *caught* when a test fails (or the run exceeds the time
limit), *survived* when every test passes. A snippet that no longer occurs exactly once
in its file is *stale*: the code moved and the entry must be updated. The tool prints one
row per mutation and exits with 1 when any mutation survived, was stale or could not be
run, 0 when every one was caught.

Usage::

    python tools/mutation_check.py                 # the whole catalogue
    python tools/mutation_check.py --list          # the catalogue, nothing run
    python tools/mutation_check.py --only fv-dirichlet-half rw-tau-perc-eps
    python tools/mutation_check.py --skip-baseline --timeout 900
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from mutations import MUTATIONS  # noqa: E402

IGNORE = shutil.ignore_patterns(".git", ".venv", "venv", "__pycache__", "*.egg-info", "build", ".pytest_cache",
                                ".hypothesis", "*.pyc")
PYTEST = ["-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-rfE"]


def check_catalogue(mutations) -> dict[str, str]:
    """Problems of the catalogue entries: id -> why the entry is stale (or malformed)."""
    problems = {}
    seen = set()
    for m in mutations:
        mid = m["id"]
        if mid in seen:
            problems[mid] = "duplicate id"
            continue
        seen.add(mid)
        path = ROOT / m["file"]
        if not path.is_file():
            problems[mid] = f"file {m['file']} does not exist"
            continue
        n = path.read_text().count(m["old"])
        if n != 1:
            problems[mid] = f"snippet occurs {n} times in {m['file']} (must be exactly once)"
        elif m["old"] == m["new"]:
            problems[mid] = "replacement equals the original"
        elif not m.get("tests"):
            problems[mid] = "no tests named"
    return problems


def make_copy(tmp: Path) -> Path:
    repo = tmp / ROOT.name
    shutil.copytree(ROOT, repo, ignore=IGNORE)
    shared = ROOT.parent / "shared"
    if shared.exists():  # the real volumes the shared_data fixture looks for beside the repository
        (tmp / "shared").symlink_to(shared.resolve(), target_is_directory=True)
    return repo


def environment(repo: Path, numba_cache: Path) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(repo) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["NUMBA_CACHE_DIR"] = str(numba_cache)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.setdefault("MPLBACKEND", "Agg")
    return env


_FAILED = re.compile(r"^(FAILED|ERROR) (\S+)")


def run_tests(repo: Path, tests, env: dict, timeout: float) -> tuple[str, str, float]:
    """(status, detail, seconds): status 'pass', 'fail' (detail: the first failing test), 'timeout' or 'error'."""
    t0 = time.perf_counter()
    cmd = [sys.executable, *PYTEST, *tests]
    try:
        proc = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", f"no result after {timeout:.0f} s", time.perf_counter() - t0
    dt = time.perf_counter() - t0
    out = proc.stdout + proc.stderr
    if proc.returncode == 0:
        return "pass", "", dt
    if proc.returncode == 1:
        for line in out.splitlines():
            hit = _FAILED.match(line.strip())
            if hit:
                return "fail", hit.group(2), dt
        return "fail", "(failing test not named in the output)", dt
    tail = " | ".join(line for line in out.strip().splitlines()[-3:])
    return "error", f"pytest exit code {proc.returncode}: {tail}", dt


def uses_numba(text: str) -> bool:
    return "@njit" in text or "numba.njit" in text or "@jit" in text


def enclosing_function(text: str, snippet: str) -> str | None:
    """Name of the function whose body holds ``snippet`` (the last ``def`` before it)."""
    defs = re.findall(r"^\s*def (\w+)\(", text[:text.index(snippet)], re.M)
    return defs[-1] if defs else None


def numba_dependents(repo: Path, stem: str, function: str | None = None) -> set[str]:
    """Module names of the compiled files whose cached code may hold the mutated function of module
    ``stem``: numba recompiles a file whose source changed, not the files that call into it.

    With ``function`` given, a file counts only if it names ``stem.function`` or the function is
    called elsewhere in its own module (then some caller of it might be used); without, every
    compiled file importing the module counts.
    """
    out = set()
    pattern = re.compile(rf"^\s*(from \. import .*\b{stem}\b|from kernels import .*\b{stem}\b|"
                         rf"import kernels\.{stem}\b|from kernels\.{stem} import)", re.M)
    own = (repo / "kernels" / f"{stem}.py")
    called_inside = (function is None or not own.is_file()
                     or len(re.findall(rf"\b{function}\b", own.read_text())) > 1)
    for path in list((repo / "kernels").glob("*.py")) + list((repo / "microsim").rglob("*.py")):
        if path.stem == stem:
            continue
        text = path.read_text()
        if uses_numba(text) and pattern.search(text):
            if called_inside or re.search(rf"\b{stem}\.{function}\b", text):
                out.add(path.stem)
    return out


def fresh_cache(warm: Path, target: Path, stems: set[str]) -> None:
    """A copy of the warm numba cache without the entries of the modules in ``stems``."""
    if warm.exists():
        shutil.copytree(warm, target)
    for f in list(target.rglob("*")) if target.exists() else []:
        if f.is_file() and f.name.split(".")[0] in stems:
            f.unlink()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--list", action="store_true", help="print the catalogue and exit")
    ap.add_argument("--only", nargs="+", metavar="ID", help="run these mutations only")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per mutation (a hang counts as caught)")
    ap.add_argument("--skip-baseline", action="store_true",
                    help="do not first check that the named tests pass on the unmodified code")
    ap.add_argument("--keep", action="store_true", help="keep the temporary copy (its path is printed)")
    args = ap.parse_args(argv)

    mutations = list(MUTATIONS)
    if args.only:
        unknown = set(args.only) - {m["id"] for m in mutations}
        if unknown:
            print(f"unknown mutation id(s): {', '.join(sorted(unknown))}", file=sys.stderr)
            return 2
        mutations = [m for m in mutations if m["id"] in set(args.only)]
    if args.list:
        for m in mutations:
            print(f"{m['id']:<28} {m['file']:<34} {m['what']}")
            print(f"{'':<28} tests: {' '.join(m['tests'])}")
        return 0

    problems = check_catalogue(mutations)
    tmp = Path(tempfile.mkdtemp(prefix="microsim-mutation-"))
    rows = []
    try:
        repo = make_copy(tmp)
        warm_cache = tmp / "numba-cache"
        env = environment(repo, warm_cache)
        probe = subprocess.run([sys.executable, "-c", "import microsim, kernels; print(microsim.__file__); "
                                "print(kernels.__file__)"], cwd=repo, env=env, capture_output=True, text=True)
        paths = probe.stdout.split()
        if probe.returncode != 0 or len(paths) != 2 or not all(Path(p).resolve().is_relative_to(repo.resolve())
                                                                  for p in paths):
            print(f"the copy does not import its own code:\n{probe.stdout}{probe.stderr}", file=sys.stderr)
            return 2
        runnable = [m for m in mutations if m["id"] not in problems]
        if runnable and not args.skip_baseline:
            tests = list(dict.fromkeys(t for m in runnable for t in m["tests"]))
            print(f"baseline: {len(tests)} test selections on the unmodified copy ...", flush=True)
            status, detail, dt = run_tests(repo, tests, env, max(args.timeout, 3600.0))
            if status != "pass":
                print(f"baseline does not pass ({status}: {detail}); fix the tests first", file=sys.stderr)
                return 2
            print(f"baseline passed in {dt:.0f} s", flush=True)
        for k, m in enumerate(mutations, 1):
            mid = m["id"]
            if mid in problems:
                rows.append((mid, m["file"], "stale", problems[mid], 0.0))
                print(f"[{k}/{len(mutations)}] {mid}: stale ({problems[mid]})", flush=True)
                continue
            path = repo / m["file"]
            original = path.read_text()
            stat = path.stat()
            mutated = original.replace(m["old"], m["new"], 1)
            deps = (numba_dependents(repo, path.stem, enclosing_function(original, m["old"]))
                    if uses_numba(original) else set())
            if deps:
                # kernels of other files call the mutated one: drop their cached code as well (numba
                # recompiles a file whose own source changed, but not the files that use it)
                cache = tmp / f"numba-cache-{k}"
                fresh_cache(warm_cache, cache, deps | {path.stem})
                run_env = environment(repo, cache)
            else:
                cache, run_env = None, env
            try:
                path.write_text(mutated)
                status, detail, dt = run_tests(repo, m["tests"], run_env, args.timeout)
            finally:
                path.write_text(original)
                os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
                if cache is not None:
                    shutil.rmtree(cache, ignore_errors=True)
            result = {"fail": "caught", "timeout": "caught", "pass": "survived", "error": "error"}[status]
            if status == "timeout":
                detail = f"(timeout) {detail}"
            rows.append((mid, m["file"], result, detail, dt))
            print(f"[{k}/{len(mutations)}] {mid}: {result} {detail} ({dt:.0f} s)", flush=True)
    finally:
        if args.keep:
            print(f"copy kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    w_id = max([len(r[0]) for r in rows] + [8])
    w_file = max([len(r[1]) for r in rows] + [4])
    print()
    print(f"{'mutation':<{w_id}}  {'file':<{w_file}}  {'result':<8}  caught by / reason")
    print(f"{'-' * w_id}  {'-' * w_file}  {'-' * 8}  {'-' * 40}")
    for mid, fname, result, detail, _ in rows:
        print(f"{mid:<{w_id}}  {fname:<{w_file}}  {result:<8}  {detail}")
    counts = {r: sum(1 for row in rows if row[2] == r) for r in ("caught", "survived", "stale", "error")}
    print()
    print(f"{len(rows)} mutations: {counts['caught']} caught, {counts['survived']} survived, "
          f"{counts['stale']} stale, {counts['error']} could not be run")
    return 0 if counts["caught"] == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
