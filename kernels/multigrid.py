"""Geometric multigrid V-cycle for the finite-volume operator of :mod:`kernels.fv`.

The V-cycle serves as the preconditioner of conjugate gradients, so it is a
fixed, symmetric positive definite linear map of the residual.

Hierarchy
---------
Level 0 is the padded label array of :mod:`kernels.fv`, whose face conductances
come from the (3, L, L) lookup table. Level l+1 aggregates blocks of up to
2 x 2 x 2 cells of level l; an axis of length 1 is not coarsened, and the last
block of an odd axis is one cell thick. A coarse face conductance is the sum of
the finer face conductances that cross it (the Galerkin operator of
piecewise-constant interpolation) times a scale factor, 1/2 along a coarsened
axis: piecewise-constant interpolation doubles the energy of a smooth error,
and the factor gives the coarse correction the right size. Because coarse
conductances are sums of fine ones, a coarse face is zero exactly when every
fine face through it is, so no current leaks through an insulator on any level,
and a coarse cell with zero diagonal is inactive (its correction stays 0).
Dirichlet and periodic boundaries coarsen by the same sums. Along a periodic
axis that has shrunk to one cell the face would join a cell to itself; its
scale factor is 0.

Faces of a coarse level are ``f[a, k, j, i]``: the face between cell (k, j, i)
and its +a neighbour, with index 0 along a for the low boundary face; arrays
are padded like level 0. Level 1 usually stores them as uint8 codes into a
(3, 256) float64 table, because a sum of four fine faces takes few distinct
values when the volume has few phases; this costs 3/8 of a byte per fine voxel
instead of 1.5. Deeper levels, and level 1 when the codes do not fit, store
float32. Every coarse level also stores its correction ``e`` and right-hand
side ``rc`` (float32). The coarsest level, a few hundred cells, is solved
exactly with a dense Cholesky factor (see :func:`coarsest_solve`).

Smoothing
---------
Multicolour Gauss-Seidel: colours in increasing order before the coarse
correction and in decreasing order after it, which makes the cycle symmetric.
The 7-point stencil needs two colours (parity of k + j + i). A periodic axis of
odd length would join two cells of equal parity, so the last layer of such an
axis gets colours of its own: colour = parity + 2 * bits, with bit a set when
the cell is in the last layer of such an axis a (bit values 1, 2, 4 for z, y, x).

Level 0 never stores the right-hand side of its correction equation: the
residual b - A x is evaluated from the potential ``x`` (float64, ghosts holding
the boundary values) wherever it is needed. That keeps the potential in
float64 for the price of the float32 residual array it replaces.

Inner loops index row views with unsigned integers: with signed indices numba
adds the handling of negative indices to every access, which costs about as
much as the arithmetic.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from . import fv

#: sweep modes: first sweep of a cycle (start from zero), plain sweep
FIRST, RELAX = 0, 1

#: columns of the level table: interior shape, offset into the e/rc buffers, offset of the
#: float32 faces (-1: uint8 codes), coarsening factors from the finer level, colour bits
N0, N1, N2, OFF_E, OFF_F, C0, C1, C2, ODD = range(9)
LEVEL_COLUMNS = 9
ONE = np.uint64(1)


# ---------------------------------------------------------------------------
# index helpers


@njit(cache=True, inline="always")
def _span(bit, fb, odd, n):
    """Index range of one colour class along an axis."""
    if odd & bit:
        if fb & bit:
            return n, n
        return 1, n - 1
    return 1, n


@njit(cache=True, inline="always")
def _colour(k, j, i, n0, n1, n2, odd):
    """Colour of cell (k, j, i); a periodic ghost index stands for the cell it copies."""
    if k == 0:
        k = n0
    elif k == n0 + 1:
        k = 1
    if j == 0:
        j = n1
    elif j == n1 + 1:
        j = 1
    if i == 0:
        i = n2
    elif i == n2 + 1:
        i = 1
    fb = 0
    if (odd & 1) and k == n0:
        fb |= 1
    if (odd & 2) and j == n1:
        fb |= 2
    if (odd & 4) and i == n2:
        fb |= 4
    return ((k + j + i) & 1) + 2 * fb


@njit(cache=True, inline="always")
def _up(k, n, c):
    """Index on the next coarser level of padded index k of an axis with n interior cells."""
    if k == 0:
        return 0
    if k > n:
        return (n + c - 1) // c + 1
    return (k - 1) // c + 1


@njit(cache=True, inline="always")
def _lo(c, kk):
    return c * (kk - 1) + 1


@njit(cache=True, inline="always")
def _hi(c, kk, n):
    return min(c * kk, n)


@njit(cache=True, inline="always")
def _valid(colour, odd):
    return ((colour >> 1) & ~odd) == 0


@njit(cache=True, inline="always")
def _face(f, fc, tab, a, k, j, i):
    """Conductance of the face between coarse cell (k, j, i) and its +a neighbour.

    The level stores either float32 faces ``f`` or codes ``fc`` into ``tab``;
    the other array is a stand-in with one element per axis. With a (3, 16)
    table the codes are 4 bits, two faces per byte along the last axis; with a
    (3, 256) table they are bytes.
    """
    if fc.shape[1] > 1:
        if tab.shape[1] == 16:
            return tab[a, (fc[a, k, j, i >> 1] >> ((i & 1) << 2)) & 15]
        return tab[a, fc[a, k, j, i]]
    return np.float64(f[a, k, j, i])


# ---------------------------------------------------------------------------
# building the hierarchy


@njit(cache=True, inline="always")
def _fine_face(ga, lab, x, k0, j0, i0, k1, j1, i1):
    """Conductance of the fine face between cells 0 and 1, or with a potential ``x`` (not a
    one-element stand-in) the current g (x_0 - x_1) through it from cell 0 to cell 1."""
    gf = ga[lab[k0, j0, i0], lab[k1, j1, i1]]
    if x.shape[0] > 1:
        return gf * (x[k0, j0, i0] - x[k1, j1, i1])
    return gf


@njit(parallel=True, cache=True)
def block_faces(lab, g, x, cf, fac, a, out):
    """Sums over the fine faces between blocks of ``cf`` cells, normal to axis ``a``.

    Block (k, j, i) covers fine cells ``cf * (k - 1) + 1 .. min(cf * k, n)`` per
    axis (the last block of an axis may be thinner); ``out[k, j, i]`` (float64,
    padded block shape) receives ``fac`` times the sum over the fine faces
    between block (k, j, i) and its +a neighbour, index 0 along ``a`` being the
    faces between the low ghost layer and the first block. With ``x`` a
    one-element stand-in the sum is of the face conductances g; with ``x`` the
    padded float64 potential (ghosts fresh) it is of the currents g (x_lo - x_hi)
    that cross from block (k, j, i) into its +a neighbour.
    """
    n0 = lab.shape[0] - 2
    n1 = lab.shape[1] - 2
    n2 = lab.shape[2] - 2
    m0 = out.shape[0] - 2
    m1 = out.shape[1] - 2
    m2 = out.shape[2] - 2
    ga = g[a]
    for k in prange(m0 + 2):
        for j in range(m1 + 2):
            for i in range(m2 + 2):
                out[k, j, i] = 0.0
        if a == 0:
            kf = min(cf[0] * k, n0)
            if k > m0:
                continue
            for j in range(1, m1 + 1):
                for i in range(1, m2 + 1):
                    acc = 0.0
                    for jj in range(_lo(cf[1], j), _hi(cf[1], j, n1) + 1):
                        for ii in range(_lo(cf[2], i), _hi(cf[2], i, n2) + 1):
                            acc += _fine_face(ga, lab, x, kf, jj, ii, kf + 1, jj, ii)
                    out[k, j, i] = acc * fac
        else:
            if k < 1 or k > m0:
                continue
            for j in range(0 if a == 1 else 1, m1 + 1):
                for i in range(0 if a == 2 else 1, m2 + 1):
                    acc = 0.0
                    if a == 1:
                        jf = min(cf[1] * j, n1)
                        for kk in range(_lo(cf[0], k), _hi(cf[0], k, n0) + 1):
                            for ii in range(_lo(cf[2], i), _hi(cf[2], i, n2) + 1):
                                acc += _fine_face(ga, lab, x, kk, jf, ii, kk, jf + 1, ii)
                    else:
                        if_ = min(cf[2] * i, n2)
                        for kk in range(_lo(cf[0], k), _hi(cf[0], k, n0) + 1):
                            for jj in range(_lo(cf[1], j), _hi(cf[1], j, n1) + 1):
                                acc += _fine_face(ga, lab, x, kk, jj, if_, kk, jj, if_ + 1)
                    out[k, j, i] = acc * fac


@njit(cache=True)
def label_faces(lab, g, w, cf, s, a, out):
    """Level-1 face conductances along axis ``a`` from the level-0 labels.

    ``cf`` are the coarsening factors, ``s`` the level-1 scale factors, ``w`` the
    level-0 per-axis factors; ``out`` (float64, padded level-1 shape) receives
    the faces normal to ``a`` (index 0 along ``a`` included).
    """
    block_faces(lab, g, np.zeros((1, 1, 1)), cf, s[a] * w[a], a, out)


@njit(cache=True)
def face_values(vals, tab):
    """Collect the distinct values of ``vals`` into ``tab`` (256,); their number, or -1 if more than 256."""
    keys = np.zeros(512)
    used = np.zeros(512, dtype=np.bool_)
    m = 0
    flat = vals.reshape(-1)
    for p in range(flat.shape[0]):
        v = flat[p]
        h = hash(v) & 511
        while used[h] and keys[h] != v:
            h = (h + 1) & 511
        if not used[h]:
            if m == 256:
                return -1
            used[h] = True
            keys[h] = v
            tab[m] = v
            m += 1
    return m


@njit(cache=True)
def encode_faces(vals, tab, m, codes):
    """Codes of ``vals`` into the first ``m`` entries of ``tab``: bytes, or 4-bit pairs if
    ``codes`` has half the last dimension of ``vals`` (rounded up)."""
    slot = np.full(512, -1, dtype=np.int64)
    keys = np.zeros(512)
    for c in range(m):  # the same hash table as face_values, rebuilt from tab
        h = hash(tab[c]) & 511
        while slot[h] >= 0:
            h = (h + 1) & 511
        slot[h] = c
        keys[h] = tab[c]
    packed = codes.shape[2] < vals.shape[2]
    for k in range(vals.shape[0]):
        for j in range(vals.shape[1]):
            for i in range(vals.shape[2]):
                v = vals[k, j, i]
                h = hash(v) & 511
                while keys[h] != v or slot[h] < 0:
                    h = (h + 1) & 511
                if packed:
                    codes[k, j, i >> 1] |= np.uint8(slot[h] << ((i & 1) << 2))
                else:
                    codes[k, j, i] = slot[h]


@njit(parallel=True, cache=True)
def coarsen_faces(f, fc, tab, ns, cd, sd, out):
    """Float32 faces ``out`` (3, N0+2, N1+2, N2+2) of the level below a level with faces (f, fc, tab).

    ``ns`` is the interior shape of the source level, ``cd`` the coarsening
    factors towards the new level and ``sd`` its scale factors.
    """
    m0 = out.shape[1] - 2
    m1 = out.shape[2] - 2
    m2 = out.shape[3] - 2
    for k in prange(m0 + 1):
        for j in range(m1 + 1):
            for i in range(m2 + 1):
                if j >= 1 and i >= 1:
                    kf = min(cd[0] * k, ns[0])
                    acc = 0.0
                    for jj in range(_lo(cd[1], j), _hi(cd[1], j, ns[1]) + 1):
                        for ii in range(_lo(cd[2], i), _hi(cd[2], i, ns[2]) + 1):
                            acc += _face(f, fc, tab, 0, kf, jj, ii)
                    out[0, k, j, i] = acc * sd[0]
                if k >= 1 and i >= 1:
                    jf = min(cd[1] * j, ns[1])
                    acc = 0.0
                    for kk in range(_lo(cd[0], k), _hi(cd[0], k, ns[0]) + 1):
                        for ii in range(_lo(cd[2], i), _hi(cd[2], i, ns[2]) + 1):
                            acc += _face(f, fc, tab, 1, kk, jf, ii)
                    out[1, k, j, i] = acc * sd[1]
                if k >= 1 and j >= 1:
                    if_ = min(cd[2] * i, ns[2])
                    acc = 0.0
                    for kk in range(_lo(cd[0], k), _hi(cd[0], k, ns[0]) + 1):
                        for jj in range(_lo(cd[1], j), _hi(cd[1], j, ns[1]) + 1):
                            acc += _face(f, fc, tab, 2, kk, jj, if_)
                    out[2, k, j, i] = acc * sd[2]


@njit(cache=True)
def coarsest_matrix(f, fc, tab, n, periodic):
    """Dense operator of a small level over its active cells.

    Returns ``(A, cells)``: float64 (m, m) and the int64 (m, 3) padded indices of
    the m cells with a non-zero diagonal.
    """
    n0, n1, n2 = n[0], n[1], n[2]
    index = np.full((n0 + 2, n1 + 2, n2 + 2), -1, dtype=np.int64)
    m = 0
    for k in range(1, n0 + 1):
        for j in range(1, n1 + 1):
            for i in range(1, n2 + 1):
                d = (_face(f, fc, tab, 0, k - 1, j, i) + _face(f, fc, tab, 0, k, j, i)
                     + _face(f, fc, tab, 1, k, j - 1, i) + _face(f, fc, tab, 1, k, j, i)
                     + _face(f, fc, tab, 2, k, j, i - 1) + _face(f, fc, tab, 2, k, j, i))
                if d > 0.0:
                    index[k, j, i] = m
                    m += 1
    A = np.zeros((m, m))
    cells = np.zeros((m, 3), dtype=np.int64)
    c = np.zeros(3, dtype=np.int64)
    lo = np.zeros(3, dtype=np.int64)
    for k in range(1, n0 + 1):
        for j in range(1, n1 + 1):
            for i in range(1, n2 + 1):
                p = index[k, j, i]
                if p < 0:
                    continue
                cells[p, 0], cells[p, 1], cells[p, 2] = k, j, i
                for a in range(3):
                    for side in (-1, 1):
                        c[0], c[1], c[2] = k, j, i
                        lo[0], lo[1], lo[2] = k, j, i
                        c[a] += side
                        if side < 0:
                            lo[a] -= 1
                        gf = _face(f, fc, tab, a, lo[0], lo[1], lo[2])
                        if gf == 0.0:
                            continue
                        A[p, p] += gf
                        if c[a] == 0 or c[a] == n[a] + 1:
                            if not periodic[a]:
                                continue  # a boundary face only adds to the diagonal
                            c[a] = n[a] if c[a] == 0 else 1
                        q = index[c[0], c[1], c[2]]
                        if q >= 0:
                            A[p, q] -= gf
    return A, cells


# ---------------------------------------------------------------------------
# sweeps and transfers


@njit(parallel=True, cache=True)
def relax_fine(lab, g, w, x, z, colour, odd, mode, part_rz, part_rr):
    """One Gauss-Seidel sweep over the cells of one colour of level 0: A z = r, r = b - A x.

    ``w`` (3,) multiplies the conductances per axis (0 for a periodic axis of
    length 1, whose faces join a cell to itself). Mode FIRST zeroes z and sweeps
    colour 0, the start of a cycle. ``part_rz[k]`` and ``part_rr[k]`` receive the
    plane sums of r z and r r over the swept cells.
    """
    n0 = lab.shape[0] - 2
    n1 = lab.shape[1] - 2
    n2 = lab.shape[2] - 2
    par = colour & 1
    fb = colour >> 1
    k0, k1 = _span(1, fb, odd, n0)
    j0, j1 = _span(2, fb, odd, n1)
    i0, i1 = _span(4, fb, odd, n2)
    w0, w1, w2 = w[0], w[1], w[2]
    g0, g1, g2 = g[0], g[1], g[2]
    for k in prange(1, n0 + 1):
        arz = 0.0
        arr = 0.0
        if mode == FIRST:
            for j in range(1, n1 + 1):
                for i in range(1, n2 + 1):
                    z[k, j, i] = 0.0
        if k0 <= k <= k1:
            for j in range(j0, j1 + 1):
                lr, lzm, lzp, lym, lyp = lab[k, j], lab[k - 1, j], lab[k + 1, j], lab[k, j - 1], lab[k, j + 1]
                xr, xzm, xzp, xym, xyp = x[k, j], x[k - 1, j], x[k + 1, j], x[k, j - 1], x[k, j + 1]
                zr, zzm, zzp, zym, zyp = z[k, j], z[k - 1, j], z[k + 1, j], z[k, j - 1], z[k, j + 1]
                for ii in range(i0 + ((i0 + k + j + par) & 1), i1 + 1, 2):
                    i = np.uint64(ii)
                    im = i - ONE
                    ip = i + ONE
                    c = lr[i]
                    a0 = g0[c, lzm[i]] * w0
                    a1 = g0[c, lzp[i]] * w0
                    a2 = g1[c, lym[i]] * w1
                    a3 = g1[c, lyp[i]] * w1
                    a4 = g2[c, lr[im]] * w2
                    a5 = g2[c, lr[ip]] * w2
                    d = a0 + a1 + a2 + a3 + a4 + a5
                    if d > 0.0:
                        xc = xr[i]
                        r = (a0 * (xzm[i] - xc) + a1 * (xzp[i] - xc) + a2 * (xym[i] - xc) + a3 * (xyp[i] - xc)
                             + a4 * (xr[im] - xc) + a5 * (xr[ip] - xc))
                        s = r
                        if mode == RELAX:
                            s += (a0 * zzm[i] + a1 * zzp[i] + a2 * zym[i] + a3 * zyp[i]
                                  + a4 * zr[im] + a5 * zr[ip])
                        zc = np.float32(s / d)
                        zr[i] = zc
                        arz += r * zc
                        arr += r * r
                    else:
                        zr[i] = 0.0
        part_rz[k] = arz
        part_rr[k] = arr


@njit(parallel=True, cache=True)
def relax_coarse(f, fc, tab, rc, e, colour, odd, mode):
    """One Gauss-Seidel sweep over one colour of a coarse level: A e = rc.

    (f, fc, tab) are the level's faces (see :func:`_face`); modes as in :func:`relax_fine`.
    """
    n0 = e.shape[0] - 2
    n1 = e.shape[1] - 2
    n2 = e.shape[2] - 2
    par = colour & 1
    fb = colour >> 1
    k0, k1 = _span(1, fb, odd, n0)
    j0, j1 = _span(2, fb, odd, n1)
    i0, i1 = _span(4, fb, odd, n2)
    for k in prange(1, n0 + 1):
        if mode == FIRST:
            for j in range(1, n1 + 1):
                for i in range(1, n2 + 1):
                    e[k, j, i] = 0.0
        if k0 <= k <= k1:
            for j in range(j0, j1 + 1):
                for i in range(i0 + ((i0 + k + j + par) & 1), i1 + 1, 2):
                    a0 = _face(f, fc, tab, 0, k - 1, j, i)
                    a1 = _face(f, fc, tab, 0, k, j, i)
                    a2 = _face(f, fc, tab, 1, k, j - 1, i)
                    a3 = _face(f, fc, tab, 1, k, j, i)
                    a4 = _face(f, fc, tab, 2, k, j, i - 1)
                    a5 = _face(f, fc, tab, 2, k, j, i)
                    d = a0 + a1 + a2 + a3 + a4 + a5
                    if d > 0.0:
                        t = np.float64(rc[k, j, i])
                        if mode == RELAX:
                            t += (a0 * e[k - 1, j, i] + a1 * e[k + 1, j, i] + a2 * e[k, j - 1, i]
                                  + a3 * e[k, j + 1, i] + a4 * e[k, j, i - 1] + a5 * e[k, j, i + 1])
                        e[k, j, i] = t / d
                    else:
                        e[k, j, i] = 0.0


@njit(parallel=True, cache=True)
def restrict_fine(lab, g, w, x, z, rc, cf, last, odd):
    """``rc`` (level 1) = block sums of b - A(x + z), the residual after pre-smoothing.

    Cells of colour ``last`` were relaxed last and have zero residual; they are skipped.
    """
    n0 = lab.shape[0] - 2
    n1 = lab.shape[1] - 2
    n2 = lab.shape[2] - 2
    m0 = rc.shape[0] - 2
    w0, w1, w2 = w[0], w[1], w[2]
    g0, g1, g2 = g[0], g[1], g[2]
    c1, c2 = cf[1], cf[2]
    # with two colours the cells to visit are those of parity 0
    step = 2 if odd == 0 else 1
    for kc in prange(1, m0 + 1):
        for jc in range(rc.shape[1]):
            for ic in range(rc.shape[2]):
                rc[kc, jc, ic] = 0.0
        for k in range(_lo(cf[0], kc), _hi(cf[0], kc, n0) + 1):
            for j in range(1, n1 + 1):
                out = rc[kc, (j - 1) // c1 + 1]
                lr, lzm, lzp, lym, lyp = lab[k, j], lab[k - 1, j], lab[k + 1, j], lab[k, j - 1], lab[k, j + 1]
                xr, xzm, xzp, xym, xyp = x[k, j], x[k - 1, j], x[k + 1, j], x[k, j - 1], x[k, j + 1]
                zr, zzm, zzp, zym, zyp = z[k, j], z[k - 1, j], z[k + 1, j], z[k, j - 1], z[k, j + 1]
                start = 1 if odd != 0 else 1 + ((1 + k + j) & 1)
                for ii in range(start, n2 + 1, step):
                    if odd != 0 and _colour(k, j, ii, n0, n1, n2, odd) == last:
                        continue
                    i = np.uint64(ii)
                    im = i - ONE
                    ip = i + ONE
                    c = lr[i]
                    vc = xr[i] + zr[i]
                    res = (g0[c, lzm[i]] * w0 * (xzm[i] + zzm[i] - vc) + g0[c, lzp[i]] * w0 * (xzp[i] + zzp[i] - vc)
                           + g1[c, lym[i]] * w1 * (xym[i] + zym[i] - vc) + g1[c, lyp[i]] * w1 * (xyp[i] + zyp[i] - vc)
                           + g2[c, lr[im]] * w2 * (xr[im] + zr[im] - vc) + g2[c, lr[ip]] * w2 * (xr[ip] + zr[ip] - vc))
                    out[np.uint64((ii - 1) // c2 + 1)] += res


@njit(parallel=True, cache=True)
def restrict_coarse(f, fc, tab, rc, e, rcc, cd, last, odd):
    """``rcc`` (next coarser level) = block sums of rc - A e, skipping cells of colour ``last``."""
    n0 = e.shape[0] - 2
    n1 = e.shape[1] - 2
    n2 = e.shape[2] - 2
    m0 = rcc.shape[0] - 2
    c1, c2 = cd[1], cd[2]
    for kc in prange(1, m0 + 1):
        for jc in range(rcc.shape[1]):
            for ic in range(rcc.shape[2]):
                rcc[kc, jc, ic] = 0.0
        for k in range(_lo(cd[0], kc), _hi(cd[0], kc, n0) + 1):
            for j in range(1, n1 + 1):
                jc = (j - 1) // c1 + 1
                for i in range(1, n2 + 1):
                    if _colour(k, j, i, n0, n1, n2, odd) == last:
                        continue
                    ev = np.float64(e[k, j, i])
                    res = (rc[k, j, i]
                           + _face(f, fc, tab, 0, k - 1, j, i) * (e[k - 1, j, i] - ev)
                           + _face(f, fc, tab, 0, k, j, i) * (e[k + 1, j, i] - ev)
                           + _face(f, fc, tab, 1, k, j - 1, i) * (e[k, j - 1, i] - ev)
                           + _face(f, fc, tab, 1, k, j, i) * (e[k, j + 1, i] - ev)
                           + _face(f, fc, tab, 2, k, j, i - 1) * (e[k, j, i - 1] - ev)
                           + _face(f, fc, tab, 2, k, j, i) * (e[k, j, i + 1] - ev))
                    rcc[kc, jc, (i - 1) // c2 + 1] += res


@njit(parallel=True, cache=True)
def prolong(v, ec, cf):
    """``v += ec[parent]`` on interior cells: the piecewise-constant interpolation of a correction."""
    n0 = v.shape[0] - 2
    n1 = v.shape[1] - 2
    n2 = v.shape[2] - 2
    c2 = cf[2]
    for k in prange(1, n0 + 1):
        uk = _up(k, n0, cf[0])
        for j in range(1, n1 + 1):
            vr = v[k, j]
            er = ec[uk, _up(j, n1, cf[1])]
            for ii in range(1, n2 + 1):
                vr[np.uint64(ii)] += er[np.uint64((ii - 1) // c2 + 1)]


@njit(cache=True)
def cholesky(A):
    """Overwrite the lower triangle of the symmetric positive definite ``A`` with its Cholesky factor.

    Plain loops, no BLAS: the coarsest matrix has a few hundred rows, and a threaded
    BLAS competing with the solver's own threads costs more than it saves.
    """
    m = A.shape[0]
    for j in range(m):
        s = A[j, j]
        for k in range(j):
            s -= A[j, k] * A[j, k]
        if not s > 0.0:
            raise ValueError("coarsest multigrid matrix is not positive definite")
        d = np.sqrt(s)
        A[j, j] = d
        for i in range(j + 1, m):
            s = A[i, j]
            for k in range(j):
                s -= A[i, k] * A[j, k]
            A[i, j] = s / d


@njit(cache=True)
def coarsest_solve(L, cells, comp, ncomp, ground, rc, e, b):
    """``e = A^+ rc`` on the active cells of the coarsest level (float64 arithmetic).

    ``L``: Cholesky factor of the coarsest matrix in which one cell per singular
    component (``ground``) has been replaced by an identity row and column. With
    ``ncomp`` > 0 (the cell problem) the right-hand side and the result are
    projected on zero mean per component (``comp``), which makes the solve the
    exact pseudo-inverse on consistent right-hand sides and symmetric on all.
    ``b``: float64 work array of length m.
    """
    m = cells.shape[0]
    for p in range(m):
        b[p] = rc[cells[p, 0], cells[p, 1], cells[p, 2]]
    _zero_mean(b, comp, ncomp)
    for p in range(m):
        if ground[p]:
            b[p] = 0.0
    for i in range(m):  # L y = b
        s = b[i]
        for k in range(i):
            s -= L[i, k] * b[k]
        b[i] = s / L[i, i]
    for i in range(m - 1, -1, -1):  # L^T e = y
        s = b[i]
        for k in range(i + 1, m):
            s -= L[k, i] * b[k]
        b[i] = s / L[i, i]
    for p in range(m):
        if ground[p]:
            b[p] = 0.0
    _zero_mean(b, comp, ncomp)
    for p in range(m):
        e[cells[p, 0], cells[p, 1], cells[p, 2]] = b[p]


@njit(cache=True)
def _zero_mean(b, comp, ncomp):
    if ncomp == 0:
        return
    total = np.zeros(ncomp)
    count = np.zeros(ncomp)
    for p in range(b.shape[0]):
        total[comp[p]] += b[p]
        count[comp[p]] += 1.0
    for p in range(b.shape[0]):
        b[p] -= total[comp[p]] / count[comp[p]]


@njit(parallel=True, cache=True)
def axpy(x, p, alpha):
    """``x += alpha p`` on interior cells."""
    nz, ny, nx = x.shape
    for k in prange(1, nz - 1):
        for j in range(1, ny - 1):
            for i in range(1, nx - 1):
                x[k, j, i] += alpha * p[k, j, i]


# ---------------------------------------------------------------------------
# the cycle


@njit(cache=True)
def _refresh(v, periodic):
    for a in range(3):
        if periodic[a]:
            fv.refresh_halo(v, a, 0.0)


@njit(cache=True)
def level_field(buf, lv, l):
    """Level l's part of a flat e or rc buffer, as a padded 3D array."""
    o = lv[l, OFF_E]
    n0, n1, n2 = lv[l, N0] + 2, lv[l, N1] + 2, lv[l, N2] + 2
    return buf[o:o + n0 * n1 * n2].reshape((n0, n1, n2))


@njit(cache=True)
def level_faces(f_all, lv, l):
    """Level l's float32 faces (3, n0+2, n1+2, n2+2), or a one-element stand-in if it stores codes."""
    o = lv[l, OFF_F]
    if o < 0:
        return f_all[0:3].reshape((3, 1, 1, 1))
    n0, n1, n2 = lv[l, N0] + 2, lv[l, N1] + 2, lv[l, N2] + 2
    return f_all[o:o + 3 * n0 * n1 * n2].reshape((3, n0, n1, n2))


@njit(cache=True)
def vcycle(lab, g, w, x, z, odd0, periodic, e_all, r_all, f_all, codes1, no_codes, tab1, lv, bottom, nu,
           part_rz, part_rr):
    """Apply the V-cycle: z = B r with r = b - A x evaluated from ``x``.

    Parameters
    ----------
    lab, g : level 0 (see :mod:`kernels.fv`)
    w : float64 (3,), per-axis conductance factor of level 0
    x : float64 padded potential, ghosts holding the boundary values
    z : float32 padded output; its ghosts are 0 or periodic copies
    odd0 : colour bits of level 0
    periodic : bool (3,)
    e_all, r_all : flat float32 buffers of the coarse corrections and right-hand sides
    f_all : flat float32 buffer of stored coarse faces (at least 3 elements)
    codes1, tab1 : uint8 face codes of level 1, (3, n0+2, n1+2, n2+2), and their float64
        (3, 256) values; ``no_codes`` is a (3, 1, 1, 1) uint8 stand-in for levels without codes
        (and ``codes1`` is one too when level 1 stores float32 faces)
    lv : int64 (L, LEVEL_COLUMNS) level table, row 0 unused
    bottom : the arguments (L, cells, comp, ncomp, ground, work) of :func:`coarsest_solve`
    nu : Gauss-Seidel sweeps before and after each coarse correction
    part_rz, part_rr : float64 work arrays of length lab.shape[0], zero at both ends

    Returns (r.z, r.r) as float64 sums.
    """
    nlev = lv.shape[0]
    cf1 = lv[1, C0:C2 + 1].copy()
    # down: pre-smoothing and restriction
    for sweep in range(nu):
        for colour in range(16):
            if _valid(colour, odd0):
                mode = FIRST if (sweep == 0 and colour == 0) else RELAX
                relax_fine(lab, g, w, x, z, colour, odd0, mode, part_rz, part_rr)
                _refresh(z, periodic)
    restrict_fine(lab, g, w, x, z, level_field(r_all, lv, 1), cf1, 1 + 2 * odd0, odd0)
    for l in range(1, nlev - 1):
        f = level_faces(f_all, lv, l)
        fc = codes1 if l == 1 else no_codes
        cd = lv[l + 1, C0:C2 + 1].copy()
        odd = lv[l, ODD]
        e = level_field(e_all, lv, l)
        rc = level_field(r_all, lv, l)
        for sweep in range(nu):
            for colour in range(16):
                if _valid(colour, odd):
                    mode = FIRST if (sweep == 0 and colour == 0) else RELAX
                    relax_coarse(f, fc, tab1, rc, e, colour, odd, mode)
                    _refresh(e, periodic)
        restrict_coarse(f, fc, tab1, rc, e, level_field(r_all, lv, l + 1), cd, 1 + 2 * odd, odd)
    # coarsest level: exact
    ebot = level_field(e_all, lv, nlev - 1)
    chol, cells, comp, ncomp, ground, work = bottom
    coarsest_solve(chol, cells, comp, ncomp, ground, level_field(r_all, lv, nlev - 1), ebot, work)
    _refresh(ebot, periodic)
    # up: the interpolated correction, then the sweeps in decreasing colour order
    for l in range(nlev - 2, 0, -1):
        f = level_faces(f_all, lv, l)
        fc = codes1 if l == 1 else no_codes
        odd = lv[l, ODD]
        e = level_field(e_all, lv, l)
        rc = level_field(r_all, lv, l)
        prolong(e, level_field(e_all, lv, l + 1), lv[l + 1, C0:C2 + 1].copy())
        _refresh(e, periodic)
        for sweep in range(nu):
            for colour in range(15, -1, -1):
                if _valid(colour, odd):
                    relax_coarse(f, fc, tab1, rc, e, colour, odd, RELAX)
                    _refresh(e, periodic)
    prolong(z, level_field(e_all, lv, 1), cf1)
    _refresh(z, periodic)
    rz = 0.0
    rr = 0.0
    for sweep in range(nu):
        for colour in range(15, -1, -1):
            if _valid(colour, odd0):
                relax_fine(lab, g, w, x, z, colour, odd0, RELAX, part_rz, part_rr)
                _refresh(z, periodic)
                if sweep == nu - 1:
                    rz += part_rz.sum()
                    rr += part_rr.sum()
    return rz, rr
