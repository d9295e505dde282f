"""Set-up of the geometric multigrid V-cycle of :mod:`kernels.multigrid` for one discretised problem."""
from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from kernels import multigrid as mg

from .discretise import Discretisation

#: the hierarchy stops at the first level with at most this many cells, solved exactly
COARSEST_CELLS = 512


def odd_bits(n, periodic) -> int:
    """Colour bits of a level (see kernels.multigrid): periodic axes of odd length > 1."""
    return sum(1 << a for a in range(3) if periodic[a] and n[a] > 1 and n[a] % 2 == 1)


def mg_levels(shape, periodic):
    """Level table (see kernels.multigrid.vcycle), scale factors and float32 buffer lengths.

    Level 1 is laid out with uint8 face codes; ``(lv, scales, n_e, n_f)`` with
    ``n_e`` the length of each of the e and rc buffers and ``n_f`` that of the
    stored faces of levels >= 2.
    """
    rows = [[0] * mg.LEVEL_COLUMNS]
    scales = [[1.0, 1.0, 1.0]]
    n = [int(m) for m in shape]
    off_e = off_f = 0
    while True:
        c = [2 if m > 1 else 1 for m in n]
        n = [-(-m // cc) for m, cc in zip(n, c)]
        size = (n[0] + 2) * (n[1] + 2) * (n[2] + 2)
        first = len(rows) == 1
        rows.append(n + [off_e, -1 if first else off_f] + c + [odd_bits(n, periodic)])
        # Along a periodic axis of one cell the face joins the cell to itself.
        scales.append([0.0 if (periodic[a] and n[a] == 1) else 1.0 / c[a] for a in range(3)])
        off_e += size
        if not first:
            off_f += 3 * size
        if n[0] * n[1] * n[2] <= COARSEST_CELLS or max(n) == 1:
            return np.array(rows, dtype=np.int64), np.array(scales), off_e, off_f


class GeometricMultigrid:
    """The V-cycle preconditioner of one discretised problem; see :mod:`kernels.multigrid`.

    ``cycle(x, z)`` writes z = B (b - A x) and returns (r.z, r.r) (the preconditioner
    protocol of :mod:`microsim.solve.pcg`).
    """

    def __init__(self, d: Discretisation, sweeps: int = 1):
        lab, g = d.lab, d.g
        n = np.array(lab.shape, dtype=np.int64) - 2
        periodic = np.asarray(d.periodic, dtype=np.bool_)
        self.w = np.where(periodic & (n == 1), 0.0, 1.0)
        self.odd0 = odd_bits(n, periodic)
        lv, scales, n_e, n_f = mg_levels(tuple(n), periodic)
        cols = slice(mg.C0, mg.C2 + 1)
        shape1 = tuple(int(v) + 2 for v in lv[1, :3])
        cf1 = lv[1, cols].copy()
        # Level 1: a face is a sum of up to four fine faces. With few phases the sums take few
        # values: up to 16 (one conducting phase) fit 4-bit codes, up to 256 bytes, an eighth
        # or a quarter of float32 faces.
        tab = np.zeros((3, 256))
        no_codes = np.zeros((3, 1, 1, 1), dtype=np.uint8)
        values = np.empty(shape1)
        counts = []
        for a in range(3):
            mg.label_faces(lab, g, self.w, cf1, scales[1], a, values)
            counts.append(mg.face_values(values, tab[a]))
        coded = min(counts) >= 0
        codes = no_codes
        if coded:
            if max(counts) <= 16:
                tab = np.ascontiguousarray(tab[:, :16])
                codes = np.zeros((3, shape1[0], shape1[1], (shape1[2] + 1) // 2), dtype=np.uint8)
            else:
                codes = np.zeros((3,) + shape1, dtype=np.uint8)
            for a in range(3):
                mg.label_faces(lab, g, self.w, cf1, scales[1], a, values)
                mg.encode_faces(values, tab[a], counts[a], codes[a])
        del values
        if not coded:
            size1 = 3 * int(np.prod(shape1))
            lv[1, mg.OFF_F] = 0
            lv[2:, mg.OFF_F] += size1
            n_f += size1
        faces = np.zeros(max(n_f, 3), dtype=np.float32)
        if not coded:
            f1 = mg.level_faces(faces, lv, 1)
            for a in range(3):
                mg.label_faces(lab, g, self.w, cf1, scales[1], a, f1[a])
        for l in range(1, len(lv) - 1):
            mg.coarsen_faces(mg.level_faces(faces, lv, l), codes if l == 1 else no_codes, tab, lv[l, :3].copy(),
                             lv[l + 1, cols].copy(), scales[l + 1], mg.level_faces(faces, lv, l + 1))
        bottom = len(lv) - 1
        A, cells = mg.coarsest_matrix(mg.level_faces(faces, lv, bottom), codes if bottom == 1 else no_codes, tab,
                                      lv[bottom, :3].copy(), periodic)
        m = len(A)
        comp = np.zeros(m, dtype=np.int64)
        ground = np.zeros(m, dtype=np.bool_)
        ncomp = 0
        if d.cell_problem and m:
            # Without fixed potentials every connected part is singular (constants are null
            # vectors): fix one cell of each, and project on zero mean in the solve.
            ncomp, comp = connected_components(csr_matrix(A != 0), directed=False)
            comp = comp.astype(np.int64)
            first = np.unique(comp, return_index=True)[1]
            ground[first] = True
            A[first, :] = 0.0
            A[:, first] = 0.0
            A[first, first] = 1.0
        mg.cholesky(A)
        self.bottom = (A, cells, comp, ncomp, ground, np.zeros(m))
        self.lab, self.g, self.periodic = lab, g, periodic
        self.lv, self.codes, self.no_codes, self.tab, self.faces = lv, codes, no_codes, tab, faces
        self.e = np.zeros(n_e, dtype=np.float32)
        self.rc = np.zeros(n_e, dtype=np.float32)
        self.sweeps = sweeps
        self.part_rz = np.zeros(lab.shape[0])
        self.part_rr = np.zeros(lab.shape[0])
        self.levels = len(lv)
        self.coded = coded

    def __call__(self, x: np.ndarray, z: np.ndarray) -> tuple[float, float]:
        return mg.vcycle(self.lab, self.g, self.w, x, z, self.odd0, self.periodic, self.e, self.rc, self.faces,
                         self.codes, self.no_codes, self.tab, self.lv, self.bottom, self.sweeps,
                         self.part_rz, self.part_rr)
