"""The ranks of a distributed run: neighbours along z, halo exchange, reductions and agreed errors.

mpi4py is imported here, and only when a :class:`World` is made, so that
single-machine users never need it.

Errors
------
Work that one rank can fail on (reading its slab, checking labels, set-up,
writing output) runs inside :meth:`World.step`: every rank reports whether its
part failed, and if any did, *every* rank raises the same :class:`RanksFailed`
naming the first failing rank and its message, so rank 0 can print one line and
all ranks stop together without a partial output file. A failure that cannot be
agreed on (an MPI error, or an exception in the middle of the lock-step solver
loop) is handled by :func:`run_ranks`: the failing rank prints one line and
aborts the MPI job, which ends every rank.
"""
from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import dataclass

import numpy as np

from ..io.errors import one_line

#: environment variables by which MPI launchers announce the number of ranks
LAUNCHER_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")


#: seconds a failing rank waits after its last message before aborting the job
ABORT_GRACE_S = 0.5


class MPIUnavailableError(ValueError):
    """mpi4py or an MPI library is missing; the message says how to install them."""


class RanksFailed(Exception):
    """Raised on every rank when at least one rank failed inside :meth:`World.step`.

    Attributes: ``rank`` (the first failing rank), ``code`` (exit code: 2 for bad
    input or a file problem, 1 otherwise) and ``n_failed``.
    """

    def __init__(self, message: str, code: int, rank: int, n_failed: int):
        super().__init__(message)
        self.code = code
        self.rank = rank
        self.n_failed = n_failed


def launched_ranks() -> int:
    """Number of ranks announced by the MPI launcher that started this process (1 if none)."""
    for name in LAUNCHER_SIZE_VARIABLES:
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    return 1


def load_mpi():
    """The ``mpi4py.MPI`` module, or a one-line :class:`MPIUnavailableError`."""
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise MPIUnavailableError(f"distributed runs need mpi4py and an MPI library ({one_line(exc)}); "
                                  "install them with: pip install 'microsim[mpi]'") from None
    return MPI


@dataclass(frozen=True)
class Slab:
    """The z planes ``z0 .. z1-1`` of a volume of ``nz`` planes held by one rank.

    ``bounds`` are the first planes of every rank's slab followed by ``nz``.
    """

    z0: int
    z1: int
    nz: int
    bounds: tuple[int, ...]

    @property
    def n(self) -> int:
        return self.z1 - self.z0

    @property
    def first(self) -> bool:
        return self.z0 == 0

    @property
    def last(self) -> bool:
        return self.z1 == self.nz


class World:
    """The communicator of a distributed run and the few operations the solver needs.

    Parameters
    ----------
    comm : mpi4py communicator, optional
        Default ``MPI.COMM_WORLD``.

    ``comm_time_s`` accumulates the wall time spent in halo exchanges and
    reductions, waiting for slower ranks included (the benchmark reports it).

    >>> w = World()  # doctest: +SKIP
    >>> w.rank, w.size
    (0, 1)
    """

    def __init__(self, comm=None):
        MPI = load_mpi()
        self.MPI = MPI
        self.comm = MPI.COMM_WORLD if comm is None else comm
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()
        self.comm_time_s = 0.0
        self._planes = None

    # -- agreement on errors ------------------------------------------------

    @contextlib.contextmanager
    def step(self):
        """Run a block on every rank; if it fails on any rank, raise :class:`RanksFailed` on all.

        Every rank must enter the same steps in the same order (the block ends
        with one collective call).
        """
        report = error = None
        try:
            yield
        except Exception as exc:  # reported to every rank below, then re-raised as RanksFailed
            code = 2 if isinstance(exc, (ValueError, OSError)) else 1
            text = str(exc) if code == 2 else one_line(exc)
            report = (" ".join(text.split()), code)
            error = exc
        reports = self.comm.allgather(report)
        failed = [(r, rep) for r, rep in enumerate(reports) if rep is not None]
        if failed:
            rank, (message, code) = failed[0]
            if len(failed) == 1:
                where = f"rank {rank} of {self.size}"
            elif len(failed) == self.size:
                where = f"all {self.size} ranks"
            else:
                where = f"ranks {', '.join(str(r) for r, _ in failed)} of {self.size}"
            exc = RanksFailed(f"{message} ({where})", code, rank, len(failed))
            raise exc from error

    # -- neighbours and halos -----------------------------------------------

    def neighbours(self, periodic: bool) -> tuple[int, int]:
        """Ranks (below, above) along z; ``MPI.PROC_NULL`` at an end of a non-periodic axis."""
        null = self.MPI.PROC_NULL
        below = self.rank - 1 if self.rank > 0 else (self.size - 1 if periodic else null)
        above = self.rank + 1 if self.rank < self.size - 1 else (0 if periodic else null)
        return below, above

    def exchange(self, v: np.ndarray, periodic: bool = False, jump: float = 0.0) -> None:
        """Fill the z ghost planes of a padded slab array with the neighbours' boundary planes.

        ``v`` has shape (n+2, ...): planes 1 and n are sent, planes 0 and n+1
        received. At the ends of a non-periodic axis the ghosts are left as they
        are (they hold the boundary condition). Along a periodic axis the planes
        wrap around from the last rank to the first, with ``jump`` (the
        potential drop per period) added on the low side and subtracted on the
        high side, as :func:`kernels.fv.refresh_halo` does on one process.
        """
        t0 = time.perf_counter()
        below, above = self.neighbours(periodic)
        requests = [self.comm.Irecv(v[0], source=below, tag=11), self.comm.Irecv(v[-1], source=above, tag=12),
                    self.comm.Isend(v[-2], dest=above, tag=11), self.comm.Isend(v[1], dest=below, tag=12)]
        self.MPI.Request.Waitall(requests)
        if periodic and jump:
            if self.rank == 0:
                v[0] += jump
            if self.rank == self.size - 1:
                v[-1] -= jump
        self.comm_time_s += time.perf_counter() - t0

    # -- reductions ---------------------------------------------------------

    def reduce(self, slab: Slab, planes=(), scalars=(), segment=None) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Global sums of per-z-plane partial sums and of per-rank floats, in one message.

        Each array in ``planes`` is the local array of a :mod:`kernels.fv`
        reduction (length n+2, entries 1..n used). Every rank places its planes
        in a zeroed vector of all nz+2 planes, and its ``scalars`` in its own
        row of a (size, k) table; the element-wise sum over ranks adds one
        non-zero value to zeros, which is exact, and every rank then adds up
        the same vector in the same order. A plane sum is therefore
        bit-identical to the single-process solver's, and every sum is the same
        on every rank.

        ``segment = (start, values, out)`` travels in the same message: each
        rank's float64 ``values`` go to ``start`` of a zeroed vector as long as
        ``out``, the ranks' segments not overlapping, and ``out`` receives the
        vector of all of them (exact, the same on every rank).
        """
        t0 = time.perf_counter()
        rows, k = len(planes), len(scalars)
        tail = 0 if segment is None else len(segment[2])
        width = rows * (slab.nz + 2) + self.size * k + tail
        if self._planes is None or self._planes[0].shape[0] != width:
            self._planes = (np.zeros(width), np.zeros(width))
        mine, total = self._planes
        mine[:] = 0.0
        for row, part in enumerate(planes):
            base = row * (slab.nz + 2)
            mine[base + slab.z0 + 1:base + slab.z1 + 1] = part[1:-1]
        scal = slice(rows * (slab.nz + 2), width - tail)
        if k:
            mine[scal].reshape(self.size, k)[self.rank] = scalars
        if tail:
            start, values, out = segment
            mine[width - tail + start:width - tail + start + len(values)] = values
        self.comm.Allreduce(mine, total, op=self.MPI.SUM)
        sums = tuple(float(total[row * (slab.nz + 2):(row + 1) * (slab.nz + 2)].sum()) for row in range(rows))
        extra = tuple(float(v) for v in total[scal].reshape(self.size, k).sum(axis=0))
        if tail:
            out[:] = total[width - tail:]
        self.comm_time_s += time.perf_counter() - t0
        return sums, extra

    def plane_sum(self, partial: np.ndarray, slab: Slab) -> float:
        """Global sum of one per-z-plane partial-sum array (see :meth:`reduce`)."""
        return self.reduce(slab, (partial,))[0][0]

    def counts(self, local: np.ndarray) -> np.ndarray:
        """Element-wise sum over ranks of an integer array (exact)."""
        local = np.ascontiguousarray(local, dtype=np.int64)
        out = np.empty_like(local)
        self.comm.Allreduce(local, out, op=self.MPI.SUM)
        return out

    def ranks_on_node(self) -> int:
        """Number of ranks sharing this rank's node (and its cores)."""
        node = self.comm.Split_type(self.MPI.COMM_TYPE_SHARED)
        try:
            return node.Get_size()
        finally:
            node.Free()

    def abort(self, code: int) -> None:
        """End every rank of the job (used when the ranks cannot agree on an error).

        The other ranks are stopped by the MPI launcher wherever they are.
        """
        sys.stderr.flush()
        # The launcher forwards each rank's stderr through a pipe; aborting at once can kill
        # the forwarding proxy before it has passed on the line that explains the failure.
        time.sleep(ABORT_GRACE_S)
        self.comm.Abort(code)


def run_ranks(world: World, fn, prog: str):
    """Run ``fn()`` on every rank and turn failures into one message and an exit code.

    An agreed failure (:class:`RanksFailed`) is printed by rank 0 only, as
    ``PROG: error: MESSAGE (rank R of N)``, and every rank returns its code. Any
    other exception escaped a step, so the other ranks may be waiting in a
    collective call: the failing rank prints one line naming itself and aborts
    the job.
    """
    try:
        return fn()
    except RanksFailed as exc:
        if world.rank == 0:
            print(f"{prog}: error: {exc}", file=sys.stderr, flush=True)
        return exc.code
    except KeyboardInterrupt:
        if world.rank == 0:
            print(f"{prog}: interrupted; no partial output was kept", file=sys.stderr, flush=True)
        world.abort(130)
    except BaseException as exc:  # noqa: BLE001 - anything else leaves the ranks out of step
        print(f"{prog}: error: rank {world.rank} of {world.size} failed ({one_line(exc)}); "
              "stopping all ranks, no output was written", file=sys.stderr, flush=True)
        world.abort(1)
    return 1
