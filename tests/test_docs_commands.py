"""Every shell command and Python block of README.md and docs/*.md, run from a fresh copy of the repository.

The blocks run in the order a reader meets them, in one scratch copy per page,
so that a command may use what an earlier one wrote (`convert` then `info`).
Commands are spelled as a reader types them (``.venv/bin/microsim``,
``microsim``, ``python -m microsim``); here they all run with the test's Python.
What is too slow for the test suite, needs a cluster, or installs packages is
left out by the rules in SKIP, each with its reason; a rule that matches no
command fails the test, so the list cannot rot.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

#: the first word(s) that make a line of a plain code block a command (other blocks show output)
COMMAND_START = re.compile(r"^(\.venv/bin/\S+|microsim|python3?|pip|make|mpiexec|for|cd)\b(?!:|\s+\S+:\s)")

#: (regex on the command, reason): commands the test does not run
SKIP = [
    (r"^make\b", "builds a virtual environment; the test suite runs inside one"),
    (r"^(\.venv/bin/)?pip\b", "installs packages (the wheel is checked separately)"),
    (r"^mpiexec\b", "needs several MPI ranks; tests/test_mpi.py and the distributed tutorial cover it"),
    (r"--steps (\d{6,}|[2-9]\d{5})|--steps 100000", "a long random walk (tests/test_randomwalk*.py use short ones)"),
    (r"run_nrel\.toml", "a 20 s run of a large real volume"),
    (r"sweep_recipe\.toml|run_recipe\.toml", "generates and solves several cathodes (minutes)"),
    (r"generate nmc_li6ps5cl_70_30_wt --out cathode\.tif", "packs a 96^3 cathode (tests/test_generate*.py)"),
    (r"conductivity cathode\.tif --phases cathode\.phases\.toml", "needs the cathode of the skipped generate"),
    (r"analyze samples/electrode_64\.tif", "the full analysis takes about a minute (tests/test_analysis_cli.py)"),
]
#: the same for Python blocks (the regex is searched in the whole block)
SKIP_PYTHON = [
    (r"steps=200_000", "a long random walk (tests/test_randomwalk*.py use short ones)"),
]


def blocks(page: Path):
    """(language, text, line) of every fenced code block of a Markdown page."""
    out, lang, buf, start = [], None, [], 0
    for n, line in enumerate(page.read_text().splitlines(), 1):
        m = re.match(r"^\s*```\s*(\S*)\s*$", line)
        if m and lang is None:
            lang, buf, start = m.group(1).lower(), [], n
        elif m:
            out.append((lang, "\n".join(buf), start))
            lang = None
        elif lang is not None:
            buf.append(line)
    return out


def commands(text: str) -> list[str]:
    """The commands of a shell block: continuation lines joined, a for ... done loop kept whole."""
    cmds, cur, depth = [], "", 0
    for raw in text.splitlines():
        line = raw.rstrip()
        if not cur and not line.strip():
            continue
        stripped = line.strip()
        if not cur and depth == 0 and not COMMAND_START.match(stripped):
            return cmds  # output follows (or the whole block is output, or prose)
        cur += (" " if cur and not cur.endswith("\n") else "") + (stripped[:-1] if stripped.endswith("\\") else
                                                                  stripped)
        if stripped.endswith("\\"):
            continue
        if re.match(r"^for\b", stripped) or re.match(r"^while\b", stripped):
            depth += 1
        if stripped == "done" or stripped.endswith("; done"):
            depth -= 1
        if depth > 0:
            cur += "\n"
            continue
        cmds.append(cur.strip())
        cur = ""
    return cmds


def without_comment(cmd: str) -> str:
    # a trailing "# ..." that is not inside quotes (the README's commands quote no '#')
    return "\n".join(re.sub(r"\s+#.*$", "", line) for line in cmd.splitlines())


def skip_reason(cmd: str) -> str | None:
    for pattern, reason in SKIP:
        if re.search(pattern, cmd):
            return reason
    if "../shared/data" in cmd and not SHARED.is_dir():
        return "the real volumes are not next to the repository"
    return None


def _microsim() -> str:
    """How to start the installed microsim: its console script, else python -P -m (not the copy's package,
    which ``-m`` would import from the working directory and compile its kernels anew)."""
    script = Path(sys.executable).with_name("microsim")
    if script.exists():
        return f'"{script}"'
    return f'"{sys.executable}" -P -m microsim'


def as_run(cmd: str) -> str:
    """The command with the reader's spellings of microsim and python replaced by this environment's."""
    py, ms = f'"{sys.executable}"', _microsim()
    cmd = re.sub(r"(^|[\s;(])\.venv/bin/microsim\b", rf"\1{ms}", cmd)
    cmd = re.sub(r"(^|[\s;(])\.venv/bin/python\b", rf"\1{py}", cmd)
    cmd = re.sub(r"(^|\n|;\s*|do\s+)microsim\b", rf"\1{ms}", cmd)
    cmd = re.sub(r"(^|\n|;\s*)python3?\b", rf"\1{py}", cmd)
    return cmd


def fresh_copy(dest: Path) -> Path:
    """The files git knows of (committed or not, ignored ones left out) copied to ``dest``."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = ROOT / rel
        if src.is_file() and not src.is_symlink():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    if SHARED.is_dir():  # ../shared/data as the README means it
        (dest.parent / "shared").mkdir(exist_ok=True)
        link = dest.parent / "shared" / "data"
        if not link.exists():
            link.symlink_to(SHARED)
    return dest


def steps(page: Path):
    """('sh'|'python', code, line) of the runnable parts of a page, in order, and the skipped commands."""
    todo, skipped = [], []
    for lang, text, line in blocks(page):
        if lang == "python":
            reason = next((r for pattern, r in SKIP_PYTHON if re.search(pattern, text)), None)
            if reason:
                skipped.append((text, reason))
            else:
                todo.append(("python", text, line))
        elif lang in ("", "sh", "bash", "shell", "console"):
            for cmd in commands(text):
                cmd = without_comment(cmd)
                reason = skip_reason(cmd)
                if reason:
                    skipped.append((cmd, reason))
                else:
                    todo.append(("sh", cmd, line))
    return todo, skipped


def test_extraction_finds_the_commands():
    todo, skipped = steps(ROOT / "README.md")
    shell = [c for kind, c, _ in todo if kind == "sh"]
    assert any("--conducting 0 --direction z" in c for c in shell)
    assert any(c.startswith("for c in") and c.rstrip().endswith("done") for c in shell)
    assert sum(kind == "python" for kind, _, _ in todo) >= 3
    used = {reason for _, reason in skipped}
    generic = SKIP[:3]  # make, pip, mpiexec: kept whether or not a page uses them now
    unused = [p for p, reason in SKIP[3:] + SKIP_PYTHON if reason not in used]
    assert len(generic) == 3
    assert not unused, f"skip rules that match no command any more: {unused}"
    assert not any("\\\n" in c for c in shell)


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_commands_run_from_a_fresh_copy(page, tmp_path, monkeypatch, capsys):
    """Shell commands in subprocesses; the Python blocks of a page in one namespace, as a reader runs them
    in one interpreter."""
    copy = fresh_copy(tmp_path / "repo")
    todo, _ = steps(page)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(copy)
    namespace = {"__name__": "__docs__"}
    failures, seconds = [], []
    for kind, code, line in todo:
        t0 = time.perf_counter()
        if kind == "sh":
            proc = subprocess.run(["bash", "-c", "set -e\n" + as_run(code)], cwd=copy, capture_output=True,
                                  text=True, timeout=300)
            if proc.returncode != 0:
                failures.append(f"{page.name}:{line}: {code[:200]!r} exited {proc.returncode}: "
                                f"{(proc.stderr or proc.stdout).strip()[-600:]}")
        else:
            try:
                exec(compile(code, f"{page.name}:{line}", "exec"), namespace)
            except Exception as exc:  # noqa: BLE001 - every failure is reported with its block
                failures.append(f"{page.name}:{line}: Python block failed: {type(exc).__name__}: {exc}")
        seconds.append((time.perf_counter() - t0, line, code.splitlines()[0][:70]))
    with capsys.disabled():
        for s, line, first in sorted(seconds, reverse=True)[:8]:
            print(f"\n  {s:6.1f} s  {page.name}:{line}  {first}", end="")
    assert not failures, "\n".join(failures)
