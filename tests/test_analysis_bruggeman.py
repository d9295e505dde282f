"""Bruggeman comparison and the fit of tau = A eps^-alpha."""
import json
import math

import numpy as np
import pytest

from microsim import Volume, conductivity
from microsim.analysis import (bruggeman_exponent, compare_bruggeman, fit_bruggeman, plot_bruggeman, read_tau_points,
                               tau_points)


@pytest.mark.parametrize("alpha", [0.5, 0.83, 1.5])
def test_fit_recovers_alpha_exactly(alpha):
    eps = np.array([0.2, 0.3, 0.45, 0.6, 0.75])
    f = fit_bruggeman(eps, eps ** -alpha)
    assert f.alpha == pytest.approx(alpha, abs=1e-12)
    assert f.prefactor == pytest.approx(1.0, abs=1e-12)
    assert f.alpha_ci[1] - f.alpha_ci[0] == pytest.approx(0.0, abs=1e-9)   # no scatter, no uncertainty
    assert f.r_squared == pytest.approx(1.0)
    g = fit_bruggeman(eps, 1.7 * eps ** -alpha, fix_prefactor=False)
    assert (g.prefactor, g.alpha) == (pytest.approx(1.7, abs=1e-12), pytest.approx(alpha, abs=1e-12))
    h = fit_bruggeman(eps, eps ** -alpha, fix_prefactor=True)
    assert h.alpha == pytest.approx(alpha, abs=1e-12) and h.prefactor == 1.0 and h.dof == 4


def test_fit_confidence_intervals_cover_at_their_level():
    # With log-normal scatter the 90 % interval of alpha must contain the true value in
    # about 90 % of repeated experiments (400 repeats: standard error 1.5 %).
    rng = np.random.default_rng(11)
    eps = np.linspace(0.25, 0.7, 6)
    hits = 0
    for _ in range(400):
        tau = 1.2 * eps ** -0.9 * np.exp(rng.normal(0.0, 0.05, eps.size))
        f = fit_bruggeman(eps, tau, confidence=0.9)
        hits += f.alpha_ci[0] <= 0.9 <= f.alpha_ci[1]
    assert 0.85 <= hits / 400 <= 0.95


def test_fit_leaves_out_non_percolating_points_and_needs_two_eps():
    f = fit_bruggeman([0.3, 0.5, 0.2, 1.0], [0.3 ** -0.5, 0.5 ** -0.5, math.inf, 1.0])
    assert f.n_points == 2 and f.n_excluded == 2 and f.alpha == pytest.approx(0.5)
    assert math.isnan(f.alpha_ci[0])                                        # no degrees of freedom
    with pytest.raises(ValueError, match="at least 2 distinct eps"):
        fit_bruggeman([0.4, 0.4], [2.0, 2.1])
    with pytest.raises(ValueError, match="one tau per eps"):
        fit_bruggeman([0.4, 0.5], [2.0])


def test_exponent_and_rows():
    assert bruggeman_exponent(0.25, 2.0) == pytest.approx(0.5)
    assert bruggeman_exponent(0.3, math.inf) == math.inf and math.isnan(bruggeman_exponent(1.0, 1.0))
    lab = np.zeros((10, 10, 10), np.uint8)
    lab[:, :, :4] = 1                  # straight slab along z: tau = 1 exactly
    v = Volume(lab, {"SE": {"label": 1, "sigma_ionic_S_per_m": 0.1}, "AM": {"label": 0}})
    res = conductivity(v, ["z", "x"], "ionic")
    rows = compare_bruggeman(tau_points(res, "slab"), alpha=0.5)
    z = next(r for r in rows if r.direction == "z")
    assert z.tau == pytest.approx(1.0, abs=1e-6) and z.eps == pytest.approx(0.4)
    assert z.tau_bruggeman == pytest.approx(0.4 ** -0.5)
    assert z.ratio == pytest.approx(0.4 ** 0.5, rel=1e-6)       # Bruggeman overestimates a straight path
    assert z.alpha_fit == pytest.approx(0.0, abs=1e-6)
    x = next(r for r in rows if r.direction == "x")
    assert x.tau == math.inf and x.alpha_fit == math.inf          # the slab does not span x


def test_read_results_file_and_plot(tmp_path):
    doc = {"volume": "a.tif", "results": [
        {"carrier": "ionic", "direction": "z", "eps": 0.4, "tau": 2.0, "conducting_phases": ["SE"]},
        {"carrier": "ionic", "direction": "x", "eps": 0.4, "tau": "inf", "conducting_phases": ["SE"]},
        {"carrier": "ionic", "direction": "y", "eps": 0.55, "tau": 1.6, "conducting_phases": ["SE"]}]}
    path = tmp_path / "r.json"
    path.write_text(json.dumps(doc))
    pts = read_tau_points(path)
    assert [p.tau for p in pts] == [2.0, math.inf, 1.6]
    png = tmp_path / "b.png"
    f = fit_bruggeman([p.eps for p in pts], [p.tau for p in pts])
    plot_bruggeman(png, [p.eps for p in pts], [p.tau for p in pts], {"ionic": f}, groups=["ionic"] * 3)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = tmp_path / "bad.json"
    bad.write_text('{"shape": [1, 2, 3]}')
    with pytest.raises(ValueError, match="has no 'results' list"):
        read_tau_points(bad)
    with pytest.raises(ValueError, match="not found"):
        read_tau_points(tmp_path / "missing.json")


def test_fit_numbers_against_the_textbook_formulas():
    # ln(tau) = ln(A) + alpha * x with x = -ln(eps): slope, intercept, their standard errors and the
    # t-quantile written out by hand for four points with scatter
    from scipy import stats

    eps = [0.3, 0.4, 0.5, 0.6]
    tau = [2.9, 2.1, 1.75, 1.45]
    x = [-math.log(e) for e in eps]
    y = [math.log(t) for t in tau]
    n = 4
    xm, ym = sum(x) / n, sum(y) / n
    sxx = sum((a - xm) ** 2 for a in x)
    sxy = sum((a - xm) * (b - ym) for a, b in zip(x, y))
    slope = sxy / sxx
    icpt = ym - slope * xm
    resid = [b - icpt - slope * a for a, b in zip(x, y)]
    ssr = sum(r * r for r in resid)
    s2 = ssr / (n - 2)
    se_slope = math.sqrt(s2 / sxx)
    se_icpt = math.sqrt(s2 * (1 / n + xm * xm / sxx))
    t = stats.t.ppf(0.975, n - 2)   # 4.303: Student's t with 2 degrees of freedom, not the normal 1.96
    f = fit_bruggeman(eps, tau, confidence=0.95)
    assert f.alpha == pytest.approx(slope, rel=1e-12)
    assert f.prefactor == pytest.approx(math.exp(icpt), rel=1e-12)
    assert f.alpha_ci[0] == pytest.approx(slope - t * se_slope, rel=1e-10)
    assert f.alpha_ci[1] == pytest.approx(slope + t * se_slope, rel=1e-10)
    assert f.prefactor_ci[0] == pytest.approx(math.exp(icpt - t * se_icpt), rel=1e-10)
    assert f.prefactor_ci[1] == pytest.approx(math.exp(icpt + t * se_icpt), rel=1e-10)
    assert f.residual_std == pytest.approx(math.sqrt(s2), rel=1e-10)
    sst = sum((b - ym) ** 2 for b in y)
    assert f.r_squared == pytest.approx(1 - ssr / sst, rel=1e-12)
    assert 0.9 < f.r_squared < 1.0
    assert (f.n_points, f.n_excluded, f.dof, f.confidence, f.prefactor_fixed) == (4, 0, 2, 0.95, False)
    assert f.predict(0.5) == pytest.approx(math.exp(icpt) * 0.5 ** -slope, rel=1e-12)
    # Bruggeman's form: alpha alone, through the origin in log space
    g = fit_bruggeman(eps, tau, confidence=0.9, fix_prefactor=True)
    a1 = sum(a * b for a, b in zip(x, y)) / sum(a * a for a in x)
    r1 = [b - a1 * a for a, b in zip(x, y)]
    s1 = sum(r * r for r in r1) / (n - 1)
    t1 = stats.t.ppf(0.95, n - 1)
    se1 = math.sqrt(s1 / sum(a * a for a in x))
    assert g.alpha == pytest.approx(a1, rel=1e-12) and g.prefactor == 1.0 and g.dof == 3
    assert g.alpha_ci == pytest.approx((a1 - t1 * se1, a1 + t1 * se1), rel=1e-10)
    assert g.residual_std == pytest.approx(math.sqrt(s1), rel=1e-10)
