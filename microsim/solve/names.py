"""The names of the solvers a user can choose."""
from __future__ import annotations

SOLVERS = ("mg", "jacobi")
DEFAULT_SOLVER = "mg"


def check_solver(solver: str) -> str:
    if solver not in SOLVERS:
        raise ValueError(f"solver {solver!r} is not one of {', '.join(SOLVERS)}; 'mg' is the fast one, "
                         "'jacobi' the reference")
    return solver
