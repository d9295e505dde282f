"""Progress lines on stderr for long work; silent when asked to be quiet.

Bars and solver lines carry an estimate of the time left once there is
enough to go on; a line identical to the one printed just before it is not
printed again.
"""
from __future__ import annotations

import math
import sys
import time


def eta_text(seconds: float) -> str:
    """'about 12 s left', '3 min 10 s left', '' when unknown.

    >>> eta_text(75.0)
    'about 1 min 15 s left'
    """
    if not (seconds >= 0 and math.isfinite(seconds)):
        return ""
    s = int(round(seconds))
    if s < 60:
        return f"about {s} s left"
    if s < 3600:
        return f"about {s // 60} min {s % 60} s left"
    return f"about {s // 3600} h {(s % 3600) // 60} min left"


class Progress:
    """Throttled progress reporting to a stream (stderr by default).

    Parameters
    ----------
    quiet : bool
        Print nothing.
    every_s : float
        Minimum seconds between two lines (the final line is always printed).

    >>> p = Progress(quiet=True)
    >>> p.line("x", force=True)
    False
    """

    def __init__(self, quiet: bool = False, every_s: float = 0.5, stream=None):
        self.quiet = quiet
        self.every_s = every_s
        self.stream = stream if stream is not None else sys.stderr
        self._last = 0.0
        self._last_text = None
        self._bars: dict[str, tuple[float, int]] = {}   # label -> (start time, done at start)
        self._solve: tuple | None = None                  # (carrier, direction, start time, first rel)
        self._solver_printed: tuple | None = None
        #: solves a command will run (set by it); the solver lines then estimate the time left for them
        self.planned_solves: int | None = None
        self._solves_done: list[float] = []

    def line(self, text: str, force: bool = False) -> bool:
        """Print ``text`` (throttled unless ``force``); returns whether it was printed."""
        if self.quiet or text == self._last_text:
            return False
        now = time.monotonic()
        if force or now - self._last >= self.every_s:
            self._last = now
            self._last_text = text
            print(text, file=self.stream, flush=True)
            return True
        return False

    def bar(self, label: str, done: int, total: int, extra: str = "") -> None:
        """A one-line bar ``label [#####.....]  done/total  extra  about N s left``."""
        now = time.monotonic()
        start = self._bars.get(label)
        if start is None or done < start[1]:
            start = self._bars[label] = (now, done)
        eta = ""
        t0, d0 = start
        if total and d0 < done < total and now - t0 > 1.0:
            eta = eta_text((now - t0) / (done - d0) * (total - done))
        width = 30
        frac = done / total if total else 1.0
        fill = int(round(width * frac))
        text = f"{label} [{'#' * fill}{'.' * (width - fill)}] {done}/{total} {extra}".rstrip()
        if eta:
            text += f"  {eta}"
        if done >= total:
            self._bars.pop(label, None)
        self.line(text, force=done >= total)

    def solver(self, carrier: str, direction: str, it: int, rel: float, mismatch: float, done: bool = False) -> None:
        """Per-iteration residual line of the conductivity solver.

        After two seconds of a solve the line adds the seconds per iteration and how long the
        residual takes to fall tenfold (the stopping test is on the estimated error of sigma_eff,
        which the residual's trend follows); with ``planned_solves`` set, the end of each solve
        says how many remain and about how long they take. The last iteration is printed once.
        """
        now = time.monotonic()
        key = (carrier, direction)
        if self._solve is None or self._solve[0] != key or it <= 1 and not done:
            self._solve = (key, now, it, rel)
        _, t0, it0, rel0 = self._solve
        mis = "   -    " if mismatch != mismatch else f"{mismatch:.2e}"
        text = f"{carrier:>10s} {direction}  iter {it:6d}  rel.residual {rel:.2e}  current mismatch {mis}"
        if done:
            text += "  done"
            if self._solver_printed == (key, it):
                text = f"{carrier:>10s} {direction}  done after {it} iterations"
            self._solves_done.append(now - t0)
            n, planned = len(self._solves_done), self.planned_solves
            if planned and n < planned:
                mean = sum(self._solves_done) / n
                text += f"; solve {n} of {planned}, {eta_text(mean * (planned - n))} for the others"
            self._solve = None
        elif it > it0 and now - t0 > 2.0:
            per_it = (now - t0) / (it - it0)
            text += f"  {per_it:.2g} s/iter"
            if 0 < rel < rel0:
                decade = math.log(10.0) / (math.log(rel0 / rel) / (it - it0)) * per_it
                text += f", residual /10 every {decade:.2g} s"
        if self.line(text, force=done):
            self._solver_printed = None if done else (key, it)
