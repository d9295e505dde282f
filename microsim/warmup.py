"""Compile the numba kernels on a tiny problem before the first real one, and say so.

The kernels are compiled the first time they run and cached on disk
(``cache=True``), which takes tens of seconds once per installation and
under a second afterwards. The ``ensure_compiled_*`` functions run a small
solve of the same kind first, so that the seconds reported for a solve are
the solve's own; when numba's cache lacks most of the kernels it prints

    compiling kernels (first run only) ... 27.4 s

on stderr. It runs once per kind of solve and process.
"""
from __future__ import annotations

import sys
import threading
import time

import numpy as np

#: when numba's cache cannot be inspected, the warm-up is announced after this many seconds
ANNOUNCE_AFTER_S = 3.0

#: set by ``--quiet`` on the command line: warm up without a word
quiet = False
_done: set = set()
_lock = threading.Lock()
_active = threading.local()
#: seconds spent in warm-ups of this process, by kind (for tests and reports)
seconds: dict = {}


def _tiny_volume(conducting_phases: int):
    from .volume import Volume
    rng = np.random.default_rng(1)
    n = 24  # three multigrid levels (24, 12, 6)
    labels = (rng.random((n, n, n)) < 0.8).astype(np.uint8)
    labels[:, :, n // 2] = 1  # a straight channel: percolation in every direction
    phases = {"solid": {"label": 0}, "a": {"label": 1, "sigma_ionic_S_per_m": 1.0, "sigma_electronic_S_per_m": 1.0}}
    if conducting_phases > 1:
        labels[rng.random(labels.shape) < 0.3] = 2
        phases["b"] = {"label": 2, "sigma_ionic_S_per_m": 0.1, "sigma_electronic_S_per_m": 0.1}
    return Volume(labels, phases)


def cached_fraction(module_names) -> float | None:
    """Share of the cached kernels of these modules that numba's disk cache holds for the current source.

    None when the cache cannot be inspected (numba's cache classes are internal).
    """
    import importlib
    try:
        from numba.core.registry import CPUDispatcher
        total = hit = 0
        for name in module_names:
            module = importlib.import_module(name)
            for obj in vars(module).values():
                cache = getattr(obj, "_cache", None) if isinstance(obj, CPUDispatcher) else None
                cache_file = getattr(cache, "_cache_file", None)
                if cache_file is None:
                    continue
                total += 1
                hit += bool(cache_file._load_index())  # empty when missing or made from other source
        return hit / total if total else None
    except Exception:  # noqa: BLE001 - any change inside numba: fall back to the timer
        return None


def _run(key, work, stream, modules=()) -> float:
    """Run ``work()`` once for ``key``, announcing it if it compiles; returns the seconds taken (0 if done)."""
    with _lock:
        if key in _done or getattr(_active, "busy", False):
            return 0.0
        _done.add(key)
    if quiet:
        stream = False
    stream = sys.stderr if stream is None else stream
    announced = threading.Event()

    def announce():
        announced.set()
        print("compiling kernels (first run only) ...", end="", file=stream, flush=True)

    share = cached_fraction(modules) if stream is not False else 1.0
    # most kernels missing from the cache: compiling for sure; otherwise only a long wait is announced
    timer = None
    if share is not None and share < 0.5:
        announce()
    elif stream is not False and share is None:
        timer = threading.Timer(ANNOUNCE_AFTER_S, announce)
    t0 = time.perf_counter()
    _active.busy = True
    try:
        if timer is not None:
            timer.daemon = True
            timer.start()
        work()
    finally:
        _active.busy = False
        if timer is not None:
            timer.cancel()
    elapsed = time.perf_counter() - t0
    seconds[key] = elapsed
    if announced.is_set():
        print(f" {elapsed:.1f} s", file=stream, flush=True)
    return elapsed


def ensure_compiled_conductivity(solver: str = "mg", periodic_sides: bool = False, cell_problem: bool = False,
                                 conducting_phases: int = 1, return_fields: bool = False, stream=None) -> float:
    """Compile the kernels a :func:`~microsim.conductivity` solve of this kind needs; see the module text.

    ``stream=False`` warms up silently. Returns the seconds it took (0 when already done).
    """
    multi = min(int(conducting_phases), 2)
    key = ("conductivity", solver, bool(periodic_sides), bool(cell_problem), multi, bool(return_fields))

    def work():
        from .conductivity import solve_direction
        volume = _tiny_volume(multi)
        solve_direction(volume, "ionic", "x", periodic_sides=periodic_sides, cell_problem=cell_problem,
                        solver=solver, return_fields=return_fields)

    return _run(key, work, stream, ("kernels.fv", "kernels.multigrid", "kernels.label"))


def ensure_compiled_random_walk(boundary: str = "periodic", stream=None) -> float:
    """Compile the random-walk kernels (a few hundred steps on a tiny volume); see the module text."""
    key = ("random_walk", boundary)

    def work():
        from .randomwalk import random_walk
        random_walk(_tiny_volume(2), walkers=64, steps=64, records=8, groups=2, boundary=boundary)

    return _run(key, work, stream, ("kernels.randomwalk", "kernels.label"))
