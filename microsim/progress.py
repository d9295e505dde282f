"""Progress lines on stderr for long work; silent when asked to be quiet."""
from __future__ import annotations

import sys
import time


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
    """

    def __init__(self, quiet: bool = False, every_s: float = 0.5, stream=None):
        self.quiet = quiet
        self.every_s = every_s
        self.stream = stream if stream is not None else sys.stderr
        self._last = 0.0

    def line(self, text: str, force: bool = False) -> None:
        if self.quiet:
            return
        now = time.monotonic()
        if force or now - self._last >= self.every_s:
            self._last = now
            print(text, file=self.stream, flush=True)

    def bar(self, label: str, done: int, total: int, extra: str = "") -> None:
        """A one-line bar ``label [#####.....]  done/total  extra``."""
        width = 30
        frac = done / total if total else 1.0
        fill = int(round(width * frac))
        self.line(f"{label} [{'#' * fill}{'.' * (width - fill)}] {done}/{total} {extra}".rstrip(),
                  force=done >= total)

    def solver(self, carrier: str, direction: str, it: int, rel: float, mismatch: float, done: bool = False) -> None:
        """Per-iteration residual line of the conductivity solver (always printed at the end of a solve)."""
        mis = "   -    " if mismatch != mismatch else f"{mismatch:.2e}"
        self.line(f"{carrier:>10s} {direction}  iter {it:6d}  rel.residual {rel:.2e}  current mismatch {mis}"
                  + ("  done" if done else ""), force=done)
