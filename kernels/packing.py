"""Dense random packing of spheres and spheroids by collective rearrangement.

Particles start at random positions at a fraction of their final size. Each
sweep computes, for every particle at once, the displacement that would remove
its overlaps (each overlapping pair is pushed apart along the line of centres,
for spheroids along the contact normal, the lighter particle taking the larger
share); these displacements drive a
damped inertial relaxation (FIRE). Whenever the largest remaining overlap is
small enough the packing is densified a little: first the particles grow
towards full size, then, for a compacted packing, the box shrinks along one
axis. A packing is finished when the particles have full size, the box its
final height and the largest overlap is below the tolerance.

Neighbours are found with one cell list per size class ("level"), so a packing
of 12 um particles among 1.5 um ones costs little more than a monodisperse one.

Shapes
------
Spheres are described by their radius only. Spheroids (and general ellipsoids)
carry a lab-frame shape matrix ``Q = R diag(a^2) R^T`` (the ellipsoid is
``x^T Q^-1 x <= 1``); their overlap is measured with the Perram-Wertheim contact
function, whose square root is the factor by which both particles would have to
be scaled to just touch. Orientations stay fixed during packing.

Overlap measure
---------------
For a pair at centre distance d that would touch when scaled by ``mu < 1``, the
overlap depth is ``h = d (1/mu - 1)`` (exactly r_i + r_j - d for spheres) and the
relative overlap is ``h / (2 min(r_i, r_j))``: the depth as a fraction of the
smaller particle's (volume-equivalent) diameter. Walls count like a particle of
infinite mass.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

#: densify while the largest overlap is below this multiple of the tolerance
STEP_FACTOR = 16.0
#: largest and smallest FIRE time step, in units of one plain relaxation step
DT_MAX = 1.0
DT_MIN = 0.05
#: largest relative size (or box) change of one densification step
GROWTH_MAX = 0.02


@njit(cache=True)
def cell_grid(box, cell_level, count_level, scale):
    """Cells per axis and cell edge of each level's grid.

    ``cell_level`` is the wanted cell edge of each level at full particle size
    (any edge is correct: the search covers every cell within reach). The number
    of cells is capped near twice the level's particle count so that sparse
    levels do not allocate huge empty grids.
    """
    n_levels = cell_level.shape[0]
    ncell = np.ones((n_levels, 3), dtype=np.int64)
    cs = np.empty((n_levels, 3))
    for b in range(n_levels):
        size = max(scale * cell_level[b], 1e-12)
        total = 1.0
        for a in range(3):
            ncell[b, a] = max(1, min(1024, int(box[a] / size)))
            total *= ncell[b, a]
        cap = 2.0 * count_level[b] + 64.0
        if total > cap:
            f = (total / cap) ** (1.0 / 3.0)
            for a in range(3):
                ncell[b, a] = max(1, int(ncell[b, a] / f))
        for a in range(3):
            cs[b, a] = box[a] / ncell[b, a]
    return ncell, cs


@njit(cache=True)
def build_cells(pos, level, ncell, cs):
    """Compressed cell lists of all levels: ``items[start[c]:start[c+1]]`` are the particles in cell ``c``.

    Cells of level ``b`` are numbered from ``base[b]``; a particle sits in the cell of
    its centre (clipped into the grid, since walled particles may poke out a little).
    """
    n = pos.shape[0]
    n_levels = ncell.shape[0]
    base = np.zeros(n_levels + 1, dtype=np.int64)
    for b in range(n_levels):
        base[b + 1] = base[b] + ncell[b, 0] * ncell[b, 1] * ncell[b, 2]
    cell_of = np.empty(n, dtype=np.int64)
    start = np.zeros(base[n_levels] + 1, dtype=np.int64)
    for i in range(n):
        b = level[i]
        c = 0
        for a in range(3):
            k = int(math.floor(pos[i, a] / cs[b, a]))
            k = min(max(k, 0), ncell[b, a] - 1)
            c = c * ncell[b, a] + k
        cell_of[i] = base[b] + c
        start[cell_of[i] + 1] += 1
    for c in range(base[n_levels]):
        start[c + 1] += start[c]
    fill = start[:-1].copy()
    items = np.empty(n, dtype=np.int64)
    for i in range(n):
        items[fill[cell_of[i]]] = i
        fill[cell_of[i]] += 1
    return base, start, items


@njit(cache=True)
def _solve3(m, r, out):
    # Cramer's rule for a symmetric 3x3 system; the matrices here are positive definite.
    a, b, c = m[0, 0], m[0, 1], m[0, 2]
    d, e, f = m[1, 1], m[1, 2], m[2, 2]
    c00 = d * f - e * e
    c01 = c * e - b * f
    c02 = b * e - c * d
    det = a * c00 + b * c01 + c * c02
    c11 = a * f - c * c
    c12 = b * c - a * e
    c22 = a * d - b * b
    out[0] = (c00 * r[0] + c01 * r[1] + c02 * r[2]) / det
    out[1] = (c01 * r[0] + c11 * r[1] + c12 * r[2]) / det
    out[2] = (c02 * r[0] + c12 * r[1] + c22 * r[2]) / det


@njit(cache=True)
def _contact_value(lam, r, qa, qb, m, x):
    for p in range(3):
        for q in range(3):
            m[p, q] = (1.0 - lam) * qa[p, q] + lam * qb[p, q]
    _solve3(m, r, x)
    return lam * (1.0 - lam) * (r[0] * x[0] + r[1] * x[1] + r[2] * x[2])


@njit(cache=True)
def contact_function(r, qa, qb, normal):
    """Perram-Wertheim contact function: max over l in [0, 1] of l (1-l) r^T C(l)^-1 r.

    ``C(l) = (1-l) qa + l qb`` with ``qa, qb`` the shape matrices of the two
    ellipsoids and ``r`` the vector between their centres. The result is < 1 if
    they overlap and 1 if they touch; scaling both ellipsoids by s divides it by
    s^2. It is concave in l, so a golden-section search finds the maximum.
    ``normal`` (3,) receives C(l*)^-1 r, the direction in which moving one
    centre increases the function fastest (the contact normal).
    """
    m = np.empty((3, 3))
    g = 0.6180339887498949
    lo = 0.0
    hi = 1.0
    l1 = hi - g * (hi - lo)
    l2 = lo + g * (hi - lo)
    f1 = _contact_value(l1, r, qa, qb, m, normal)
    f2 = _contact_value(l2, r, qa, qb, m, normal)
    while hi - lo > 1e-6:
        if f1 > f2:
            hi = l2
            l2 = l1
            f2 = f1
            l1 = hi - g * (hi - lo)
            f1 = _contact_value(l1, r, qa, qb, m, normal)
        else:
            lo = l1
            l1 = l2
            f1 = f2
            l2 = lo + g * (hi - lo)
            f2 = _contact_value(l2, r, qa, qb, m, normal)
    return _contact_value(0.5 * (lo + hi), r, qa, qb, m, normal)


@njit(parallel=True, cache=True)
def overlap_sweep(pos, req, rb, shape_q, spheres, level, rmax_level, ncell, cs, base, start, items,
                  box, periodic, scale, disp, eps):
    """Displacement that removes each particle's overlaps, and its largest relative overlap.

    Parameters
    ----------
    pos : float64 (N, 3)
        Centres (z, y, x) in the box [0, box).
    req : float64 (N,)
        Volume-equivalent radius at full size (sets mass and relative overlap).
    rb : float64 (N,)
        Bounding radius at full size (largest semi-axis).
    shape_q : float64 (N, 3, 3)
        Shape matrices at full size (ignored when ``spheres``).
    spheres : bool
        All particles are spheres of radius ``req``.
    level, rmax_level, ncell, cs, base, start, items :
        Size classes and their cell lists (see :func:`cell_grid`, :func:`build_cells`).
    box : float64 (3,)
        Current box edges.
    periodic : bool (3,)
        Periodic axes; the others are walls at 0 and ``box``.
    scale : float
        Current size of the particles relative to full size.
    disp : float64 (N, 3), out
        Displacement of each particle.
    eps : float64 (N,), out
        Largest relative overlap of each particle (with particles or walls).
    """
    n = pos.shape[0]
    n_levels = rmax_level.shape[0]
    pz, py, px = periodic[0], periodic[1], periodic[2]
    bz, by, bx = box[0], box[1], box[2]
    hz, hy, hx = 0.5 * bz, 0.5 * by, 0.5 * bx
    for i in prange(n):
        rvec = np.empty(3)
        normal = np.empty(3)
        sz = 0.0
        sy = 0.0
        sx = 0.0
        emax = 0.0
        ri = req[i]
        mi = ri * ri * ri
        zi, yi, xi = pos[i, 0], pos[i, 1], pos[i, 2]
        for b in range(n_levels):
            reach = scale * (rb[i] + rmax_level[b])
            nz, ny, nx = ncell[b, 0], ncell[b, 1], ncell[b, 2]
            z0 = int(math.floor((zi - reach) / cs[b, 0]))
            z1 = int(math.floor((zi + reach) / cs[b, 0]))
            y0 = int(math.floor((yi - reach) / cs[b, 1]))
            y1 = int(math.floor((yi + reach) / cs[b, 1]))
            x0 = int(math.floor((xi - reach) / cs[b, 2]))
            x1 = int(math.floor((xi + reach) / cs[b, 2]))
            if pz:
                if z1 - z0 + 1 >= nz:
                    z0, z1 = 0, nz - 1
            else:
                z0, z1 = max(z0, 0), min(z1, nz - 1)
            if py:
                if y1 - y0 + 1 >= ny:
                    y0, y1 = 0, ny - 1
            else:
                y0, y1 = max(y0, 0), min(y1, ny - 1)
            if px:
                if x1 - x0 + 1 >= nx:
                    x0, x1 = 0, nx - 1
            else:
                x0, x1 = max(x0, 0), min(x1, nx - 1)
            for cz in range(z0, z1 + 1):
                wz = cz + nz if cz < 0 else (cz - nz if cz >= nz else cz)
                for cy in range(y0, y1 + 1):
                    wy = cy + ny if cy < 0 else (cy - ny if cy >= ny else cy)
                    row = base[b] + (wz * ny + wy) * nx
                    for cx in range(x0, x1 + 1):
                        wx = cx + nx if cx < 0 else (cx - nx if cx >= nx else cx)
                        cell = row + wx
                        for p in range(start[cell], start[cell + 1]):
                            j = items[p]
                            if j == i:
                                continue
                            vz = zi - pos[j, 0]
                            vy = yi - pos[j, 1]
                            vx = xi - pos[j, 2]
                            # Centres lie in [0, box), so one shift gives the nearest image.
                            if pz:
                                if vz > hz:
                                    vz -= bz
                                elif vz < -hz:
                                    vz += bz
                            if py:
                                if vy > hy:
                                    vy -= by
                                elif vy < -hy:
                                    vy += by
                            if px:
                                if vx > hx:
                                    vx -= bx
                                elif vx < -hx:
                                    vx += bx
                            d2 = vz * vz + vy * vy + vx * vx
                            cut = scale * (rb[i] + rb[j])
                            if d2 >= cut * cut:
                                continue
                            rj = req[j]
                            d = math.sqrt(d2)
                            if spheres:
                                mu = d / (scale * (ri + rj))
                            else:
                                rvec[0] = vz
                                rvec[1] = vy
                                rvec[2] = vx
                                mu = math.sqrt(contact_function(rvec, shape_q[i], shape_q[j], normal)) / scale
                            if mu >= 1.0:
                                continue
                            if d > 0.0 and mu > 0.0:
                                h = d * (1.0 / mu - 1.0)
                                if spheres:
                                    vz /= d
                                    vy /= d
                                    vx /= d
                                else:
                                    # Push along the contact normal: along the line of centres two
                                    # elongated particles can balance against a wall while still overlapping.
                                    nn = math.sqrt(normal[0] ** 2 + normal[1] ** 2 + normal[2] ** 2)
                                    vz = normal[0] / nn
                                    vy = normal[1] / nn
                                    vx = normal[2] / nn
                            else:
                                # Coincident centres: separate along z, in index order.
                                h = scale * (ri + rj)
                                vz = 1.0 if i > j else -1.0
                                vy = 0.0
                                vx = 0.0
                            mj = rj * rj * rj
                            f = mj / (mi + mj) * h
                            sz += f * vz
                            sy += f * vy
                            sx += f * vx
                            rel = h / (2.0 * scale * min(ri, rj))
                            if rel > emax:
                                emax = rel
        for a in range(3):
            if periodic[a]:
                continue
            w = scale * (ri if spheres else math.sqrt(shape_q[i, a, a]))
            push = 0.0
            if pos[i, a] < w:
                push = w - pos[i, a]
            elif pos[i, a] > box[a] - w:
                push = (box[a] - w) - pos[i, a]
            if push != 0.0:
                if a == 0:
                    sz += push
                elif a == 1:
                    sy += push
                else:
                    sx += push
                emax = max(emax, abs(push) / (2.0 * scale * ri))
        disp[i, 0] = sz
        disp[i, 1] = sy
        disp[i, 2] = sx
        eps[i] = emax


@njit(cache=True)
def move(pos, disp, step, box, periodic):
    """``pos += step * disp``, wrapped back into the box along periodic axes."""
    n = pos.shape[0]
    for i in range(n):
        for a in range(3):
            x = pos[i, a] + step * disp[i, a]
            if periodic[a]:
                x -= box[a] * math.floor(x / box[a])
                if x >= box[a]:
                    x = 0.0
            pos[i, a] = x


@njit(cache=True)
def pack(pos, vel, req, rb, shape_q, spheres, level, rmax_level, cell_level, count_level, box_final, periodic,
         state, tol, compact_axis, max_sweeps):
    """Run up to ``max_sweeps`` sweeps of the packing; returns 1 when finished, else 0.

    Each sweep computes the overlap-removing displacements (:func:`overlap_sweep`)
    and moves the particles with FIRE (fast inertial relaxation, Bitzek et al.,
    Phys. Rev. Lett. 97 (2006) 170201): the displacements act as forces on
    particles that keep a velocity, which is steered towards the force and
    reset whenever it points against it. Near jamming this relaxes the packing
    an order of magnitude faster than applying the displacements directly.
    While the largest overlap is below ``STEP_FACTOR * tol`` the particles
    grow (or, once full size, the box shrinks along ``compact_axis``); the
    packing is done when nothing is left to densify and the largest overlap is
    below ``tol``.

    ``state`` (float64, length 10) carries the schedule between calls:
    [scale, box_z, box_y, box_x, growth_step, sweeps_since_step, total_sweeps, last_max_overlap,
    fire_dt, fire_mixing]. The caller starts with scale < 1 and, for a compaction along
    ``compact_axis`` (-1 for none), a box taller than ``box_final`` along that axis;
    positions must lie in the box and ``vel`` (N, 3) starts at zero.
    """
    n = pos.shape[0]
    disp = np.zeros((n, 3))
    eps = np.zeros(n)
    box = state[1:4].copy()
    scale = state[0]
    growth = state[4]
    since = state[5]
    dt = state[8]
    mixing = state[9]
    done = 0
    positive = 0
    for _ in range(max_sweeps):
        ncell, cs = cell_grid(box, cell_level, count_level, scale)
        base, start, items = build_cells(pos, level, ncell, cs)
        overlap_sweep(pos, req, rb, shape_q, spheres, level, rmax_level, ncell, cs, base, start, items,
                      box, periodic, scale, disp, eps)
        emax = eps.max() if n > 0 else 0.0
        state[7] = emax
        state[6] += 1.0
        full = scale >= 1.0 and (compact_axis < 0 or box[compact_axis] <= box_final[compact_axis])
        if full and emax < tol:
            done = 1
            break
        # Serial sums keep the result independent of the number of threads.
        power = 0.0
        vn = 0.0
        fn = 0.0
        for i in range(n):
            for a in range(3):
                power += vel[i, a] * disp[i, a]
                vn += vel[i, a] * vel[i, a]
                fn += disp[i, a] * disp[i, a]
        if power > 0.0:
            positive += 1
            steer = mixing * math.sqrt(vn / fn) if fn > 0.0 else 0.0
            for i in range(n):
                for a in range(3):
                    vel[i, a] = (1.0 - mixing) * vel[i, a] + steer * disp[i, a]
            if positive > 5:
                dt = min(dt * 1.1, DT_MAX)
                mixing *= 0.99
        else:
            positive = 0
            vel[:] = 0.0
            dt = max(dt * 0.5, DT_MIN)
            mixing = 0.1
        for i in range(n):
            for a in range(3):
                vel[i, a] += dt * disp[i, a]
        move(pos, vel, dt, box, periodic)
        since += 1.0
        if emax < STEP_FACTOR * tol and not full:
            # Fast relaxation after the last step means the packing is still loose: take bigger steps.
            if since <= 3.0:
                growth = min(growth * 1.5, GROWTH_MAX)
            elif since > 40.0:
                growth = max(growth * 0.7, 1e-5)
            since = 0.0
            if scale < 1.0:
                scale = min(1.0, scale * (1.0 + growth))
            else:
                a = compact_axis
                new = max(box_final[a], box[a] * (1.0 - growth))
                f = new / box[a]
                for i in range(n):
                    pos[i, a] *= f
                box[a] = new
    state[0] = scale
    state[1:4] = box
    state[4] = growth
    state[5] = since
    state[8] = dt
    state[9] = mixing
    return done
