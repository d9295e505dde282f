"""The global coarse grid that the distributed multigrid preconditioner adds to the slabs' V-cycles.

Each rank's V-cycle (:func:`microsim.mpi.solver.slab_multigrid`) corrects its own
slab only, so on its own the preconditioner is block Jacobi between slabs and
the error modes that are smooth across slab boundaries are left to conjugate
gradients, which needs more iterations the more slabs there are. The coarse
grid carries those modes between all slabs at once. With B the slabs'
V-cycles, P piecewise-constant interpolation from boxes of cells and
A_c = P^T A P, the preconditioner is

    z = B r + P A_c^-1 P^T (r - A B r),

the V-cycles followed by the exact coarse correction of the residual they
leave (see :func:`microsim.mpi.solver.slab_coarse_grid` for why conjugate
gradients may use it). The additive form B r + P A_c^-1 P^T r was tried first:
on two slabs of a 64^3 volume it needed 13 and 15 iterations (x, z) where this
form needs 5 and 6 and one process 5 and 7.

P aggregates the fine cells into boxes of s x s x s cells (s a power of two,
:func:`box_size`); boxes never straddle two slabs (each rank cuts its own slab
from its first plane, so the last box of a slab may be thinner), and boxes
without a conducting cell of the percolating network are dropped. A_c is the
exact Galerkin operator: the conductance between two neighbouring boxes is the
sum of the fine face conductances that cross between them, the faces to a
fixed-potential plane add to the diagonal, and periodic axes wrap. Every rank
computes the coarse faces of its slab, those towards the slab above from its
ghost plane (which holds the neighbour's labels after the non-percolating cells
were removed there); the faces of all slabs are gathered on every rank, and A_c
is assembled and factorised once (sparse LU), redundantly, by every rank.

Per application, P^T r is the net current into each box, which only the fine
faces on the box surfaces carry (the interior ones cancel): a pass over one
face plane in s per axis, no residual array; -P^T A z is the same for z, whose
ghost planes then hold the neighbours' planes (one more halo exchange). The
ranks' sums travel in the reduction that carries the dot products of the
iteration, every rank solves the coarse system, and each adds the
piecewise-constant correction to its part of z. Memory: a few float64 values
per box and the LU factor (about 7 MB for 4096 boxes), nothing per voxel.

For the cell problem (no fixed potential) A_c is singular; one box per
connected component is grounded and the correction is projected on zero mean
per component, as on the coarsest level of the single-process V-cycle.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.sparse.csgraph import connected_components

from kernels import multigrid as mg

from ..conductivity import Discretisation
from .world import Slab, World

#: the global coarse grid has at most this many boxes (the box edge s is the smallest power of
#: two that keeps it so); 0 turns the coarse grid off, leaving block Jacobi between slabs
COARSE_AGGREGATES = 8192


def _blocks(n: int, s: int) -> int:
    return -(-n // s)


def box_size(bounds, ny: int, nx: int, limit: int | None = None) -> int:
    """Smallest power-of-two box edge s whose boxes number at most ``limit`` over all slabs.

    ``limit`` defaults to :data:`COARSE_AGGREGATES` (read at the call).

    ``bounds`` are the slab bounds (first plane of each rank's slab, then nz).
    Boxes do not straddle slabs, so there are at least as many box layers
    along z as slabs; if even one box layer per slab gives more than ``limit``
    boxes, s stops at the thickest slab or the longer side, whichever is larger.

    >>> box_size((0, 32, 64), 64, 64, limit=8192)   # 2 x 8 layers of 16 x 16 boxes of 4^3
    4
    """
    limit = COARSE_AGGREGATES if limit is None else limit
    thick = np.diff(np.asarray(bounds))
    s = 1
    while s < max(int(thick.max()), ny, nx):
        count = sum(_blocks(int(t), s) for t in thick) * _blocks(ny, s) * _blocks(nx, s)
        if count <= limit:
            break
        s *= 2
    return s


def slab_faces(d: Discretisation, s: int) -> np.ndarray:
    """Coarse face conductances of one slab's s x s x s boxes, float64 (3, mz+2, my+2, mx+2).

    ``[a, k, j, i]``: the sum of the fine face conductances between box (k, j, i)
    and its +a neighbour, index 0 along a for the faces towards the low ghost
    layer, index m_a for those towards the high one (see
    :func:`kernels.multigrid.block_faces`). The z ghost layers of ``d.lab`` hold
    the neighbouring slabs' planes, so the faces between slabs come out too.
    """
    cf = np.full(3, s, dtype=np.int64)
    m = [_blocks(n - 2, s) + 2 for n in d.lab.shape]
    faces = np.empty((3, *m))
    none = np.zeros((1, 1, 1))
    for a in range(3):
        mg.block_faces(d.lab, d.g, none, cf, 1.0, a, faces[a])
    return faces


def global_faces(parts, periodic_z: bool) -> np.ndarray:
    """The faces of the whole coarse grid, (3, Mz+2, my+2, mx+2), from the slabs' :func:`slab_faces` in rank order.

    Slab r's box layers follow slab r-1's; the face after a slab's last layer is
    the face towards the next slab's first. The low z boundary face comes from
    the first slab; along a periodic z it equals the last slab's high face.
    """
    mz = [p.shape[1] - 2 for p in parts]
    out = np.zeros((3, sum(mz) + 2) + parts[0].shape[2:])
    z = 0
    for p, n in zip(parts, mz):
        out[:, z + 1:z + n + 1] = p[:, 1:n + 1]
        z += n
    out[0, 0] = out[0, z] if periodic_z else parts[0][0, 0]
    return out


def galerkin_matrix(faces: np.ndarray, periodic) -> tuple[sp.csr_matrix, np.ndarray]:
    """The coarse operator over the active boxes, from the faces of the whole coarse grid.

    ``faces``: (3, M0+2, M1+2, M2+2) as :func:`global_faces` returns; ``periodic``:
    (3,) bool. A face joins a box to its +a neighbour (wrapping along a periodic
    axis; a face that wraps a box onto itself carries no current between
    different potentials and is left out); a face on a non-periodic boundary
    adds to its box's diagonal only (fixed potential; a wall's faces are 0).

    Returns ``(A, active)``: A (m x m, CSR) over the m boxes with a non-zero
    diagonal, and the flat indices (C order over M0 x M1 x M2) of those boxes.
    """
    shape = tuple(n - 2 for n in faces.shape[1:])
    ids = np.arange(int(np.prod(shape))).reshape(shape)
    diag = np.zeros(shape)
    rows, cols, vals = [], [], []
    inner = (slice(1, -1),) * 3
    for a in range(3):
        g = faces[a][inner]                     # face between box c and c + e_a
        low = np.take(faces[a], [0], axis=a)[inner[:a] + (slice(None),) + inner[a + 1:]]
        last = np.take(g, [-1], axis=a)
        inside = np.take(g, np.arange(shape[a] - 1), axis=a)
        here = np.take(ids, np.arange(shape[a] - 1), axis=a)
        there = np.take(ids, np.arange(1, shape[a]), axis=a)
        pairs = [(here, there, inside)]
        if periodic[a]:
            if shape[a] > 1:
                pairs.append((np.take(ids, [-1], axis=a), np.take(ids, [0], axis=a), last))
        else:
            first_ids, last_ids = np.take(ids, [0], axis=a), np.take(ids, [-1], axis=a)
            np.add.at(diag.reshape(-1), first_ids.ravel(), low.ravel())
            np.add.at(diag.reshape(-1), last_ids.ravel(), last.ravel())
        for p, q, v in pairs:
            p, q, v = p.ravel(), q.ravel(), v.ravel()
            keep = v != 0.0
            p, q, v = p[keep], q[keep], v[keep]
            np.add.at(diag.reshape(-1), p, v)
            np.add.at(diag.reshape(-1), q, v)
            rows += [p, q]
            cols += [q, p]
            vals += [-v, -v]
    flat = diag.reshape(-1)
    active = np.flatnonzero(flat > 0.0)
    index = np.full(flat.size, -1, dtype=np.int64)
    index[active] = np.arange(active.size)
    r = index[np.concatenate(rows)] if rows else np.zeros(0, np.int64)
    c = index[np.concatenate(cols)] if cols else np.zeros(0, np.int64)
    v = np.concatenate(vals) if vals else np.zeros(0)
    m = active.size
    A = sp.coo_matrix((np.concatenate([v, flat[active]]),
                       (np.concatenate([r, np.arange(m)]), np.concatenate([c, np.arange(m)]))), shape=(m, m))
    return A.tocsr(), active


class CoarseGrid:
    """The coarse-grid correction of the distributed preconditioner, on one rank.

    Build it on every rank together (collective). Per application:
    :meth:`restrict` writes this rank's parts of P^T r (r = b - A x from the
    potential ``x``, ghosts fresh) and of -P^T A z into :attr:`local`; the caller
    sums the ranks' parts into :attr:`full` (``World.reduce(...,
    segment=grid.segment)``); :meth:`solve` computes e = A_c^-1 P^T (r - A z),
    the same on every rank, and returns (P^T r).e, the share of r.z that the
    correction adds; :meth:`prolong` adds P e to this rank's cells.

    Attributes: ``box`` (s, cells), ``shape`` (boxes along z, y, x of the whole
    grid), ``active`` (flat indices of the boxes kept), ``galerkin`` (A_c over
    them, sparse), ``m`` (their number).

    Parameters
    ----------
    world, slab : the ranks and this rank's slab
    d : Discretisation of this rank's slab (z ghosts holding the neighbours' planes)
    box : edge of the boxes in cells (a power of two), or None for :func:`box_size`
    """

    def __init__(self, world: World, slab: Slab, d: Discretisation, box: int | None = None):
        ny, nx = (n - 2 for n in d.lab.shape[1:])
        s = box or box_size(slab.bounds, ny, nx)
        self.d, self.box = d, s
        self.cf = np.full(3, s, dtype=np.int64)
        layers = [_blocks(b - a, s) for a, b in zip(slab.bounds[:-1], slab.bounds[1:])]
        self.shape = (sum(layers), _blocks(ny, s), _blocks(nx, s))
        plane = self.shape[1] * self.shape[2]
        counts = [3 * (n + 2) * (self.shape[1] + 2) * (self.shape[2] + 2) for n in layers]
        with world.step():
            faces = np.ascontiguousarray(slab_faces(d, s)).reshape(-1)
            flat = np.empty(sum(counts))
        world.comm.Allgatherv(faces, [flat, counts])
        with world.step():
            parts, o = [], 0
            for n, c in zip(layers, counts):
                parts.append(flat[o:o + c].reshape(3, n + 2, self.shape[1] + 2, self.shape[2] + 2))
                o += c
            self._factorise(global_faces(parts, bool(d.periodic[0])), d)
            mz_local = layers[world.rank]
            # The ranks' boxes in order; each rank sends P^T r and -P^T A z of its own boxes.
            ends = np.cumsum([0] + [n * plane for n in layers])
            self._ranges = list(zip(ends[:-1], ends[1:]))
            self._offsets2 = [2 * int(a) for a in ends[:-1]]
            self._rank = world.rank
            self._start2 = self._offsets2[world.rank]
            self.local = np.zeros(2 * mz_local * plane)
            self.full = np.zeros(2 * int(ends[-1]))
            self._pr = np.zeros(int(ends[-1]))
            self._prz = np.zeros(int(ends[-1]))
            self._e_full = np.zeros(int(ends[-1]))
            self._flux = np.zeros((3, mz_local + 2, self.shape[1] + 2, self.shape[2] + 2))
            self._e = np.zeros(self._flux.shape[1:])

    def _factorise(self, faces: np.ndarray, d: Discretisation) -> None:
        A, self.active = galerkin_matrix(faces, d.periodic)
        self.galerkin = A  # P^T A P, kept for checks (a few values per box)
        m = A.shape[0]
        self.comp = np.zeros(m, dtype=np.int64)
        self.ground = np.zeros(m, dtype=np.bool_)
        self.ncomp = 0
        if d.cell_problem and m:
            # Constants are null vectors of every connected part: fix one box of each, and
            # project on zero mean in the solve, which makes it the pseudo-inverse.
            self.ncomp, comp = connected_components(A, directed=False)
            self.comp = comp.astype(np.int64)
            first = np.unique(self.comp, return_index=True)[1]
            self.ground[first] = True
            keep = sp.diags((~self.ground).astype(np.float64))
            A = keep @ A @ keep + sp.diags(self.ground.astype(np.float64))
        self.m = m
        # Symmetric pivoting on the diagonal keeps the factorisation of this SPD matrix stable
        # and its solves symmetric up to rounding.
        self.lu = spla.splu(A.tocsc(), permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                            options={"SymmetricMode": True}) if m else None

    @property
    def segment(self):
        """This rank's part of the vector that the ranks sum (see :meth:`World.reduce`)."""
        return self._start2, self.local, self.full

    def _into(self, v: np.ndarray, out: np.ndarray) -> None:
        """``out`` = net current into each of this rank's boxes for the potential ``v`` (ghosts fresh)."""
        d, f = self.d, self._flux
        for a in range(3):
            mg.block_faces(d.lab, d.g, v, self.cf, 1.0, a, f[a])
        inner = (slice(1, -1),) * 3
        r = (f[0, :-2, 1:-1, 1:-1] - f[0][inner] + f[1, 1:-1, :-2, 1:-1] - f[1][inner]
             + f[2, 1:-1, 1:-1, :-2] - f[2][inner])
        out[:] = r.reshape(-1)

    def restrict(self, x: np.ndarray, z: np.ndarray | None = None) -> None:
        """This rank's part of P^T r and of -P^T A z into :attr:`local`.

        ``x``: the potential, its ghosts fresh (r = b - A x; the net current into
        a box is the sum of r over it). ``z``: a correction whose z ghost planes
        hold the neighbours' planes (0 at a fixed potential), or None for 0.
        """
        n = self.local.size // 2
        self._into(x, self.local[:n])
        if z is None:
            self.local[n:] = 0.0
        else:
            self._into(z, self.local[n:])

    def _zero_mean(self, v: np.ndarray) -> None:
        if self.ncomp:
            v -= (np.bincount(self.comp, v, self.ncomp) / np.bincount(self.comp, None, self.ncomp))[self.comp]

    def solve(self) -> float:
        """e = A_c^-1 P^T (r - A z) from the summed :attr:`full`; returns (P^T r).e, the same on every rank."""
        if not self.m:
            return 0.0
        full, pr, prz = self.full, self._pr, self._prz
        for (a, b), o in zip(self._ranges, self._offsets2):
            pr[a:b] = full[o:o + b - a]
            prz[a:b] = full[o + b - a:o + 2 * (b - a)]
        rc = pr[self.active]
        rhs = rc + prz[self.active]
        self._zero_mean(rhs)
        rhs[self.ground] = 0.0
        e = self.lu.solve(rhs)
        e[self.ground] = 0.0
        self._zero_mean(e)
        self._e_full[self.active] = e
        a, b = self._ranges[self._rank]
        self._e[1:-1, 1:-1, 1:-1] = self._e_full[a:b].reshape(self._e[1:-1, 1:-1, 1:-1].shape)
        return float(rc @ e)

    def prolong(self, v: np.ndarray) -> None:
        """v += P e on this rank's cells (the last :meth:`solve`)."""
        mg.prolong(v, self._e, self.cf)
