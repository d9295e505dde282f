"""What the figures draw: the plotted data, read back from the figure, against the numbers they show."""
from __future__ import annotations

import math

import numpy as np
import pytest
from matplotlib.figure import Figure

from microsim import Volume, plot_msd, random_walk, two_phase_table
from microsim.analysis import fit_bruggeman, particle_size_distribution, plot_bruggeman, plot_psd
from microsim.report import figures


@pytest.fixture
def saved(monkeypatch):
    """Figures as they are saved (the PNG is still written)."""
    out = []
    original = Figure.savefig

    def keep(self, *args, **kw):
        out.append(self)
        return original(self, *args, **kw)

    monkeypatch.setattr(Figure, "savefig", keep)
    return out


def _png_size(path):
    import matplotlib.image as mpimg
    img = mpimg.imread(path)
    assert img.std() > 0          # not a blank image
    return img.shape[1], img.shape[0]


def test_msd_plot_shows_msd_over_2_t_d0_and_the_fitted_d_eff(tmp_path, saved):
    v = Volume(np.ones((6, 6, 6), np.uint8), two_phase_table(1.0), (1.0, 0.5, 2.0))
    r = random_walk(v, walkers=512, steps=256, seed=2)
    png = tmp_path / "msd.png"
    plot_msd(r, png)
    assert _png_size(png) == (768, 528)
    (ax,) = saved[0].axes
    curves = [ln for ln in ax.lines if len(ln.get_xdata()) == len(r.time)]
    levels = [ln for ln in ax.lines if ln not in curves]
    assert len(curves) == 3 and len(levels) == 3
    for i, name in enumerate("zyx"):
        np.testing.assert_allclose(curves[i].get_xdata(), r.time)
        np.testing.assert_allclose(curves[i].get_ydata(), r.msd_um2[:, i] / (2 * r.time * r.D0_um2_per_tu))
        assert curves[i].get_label() == f"{name}: tau_rw = {r.axes[i].tau_rw:.3g}"
        assert levels[i].get_ydata()[0] == pytest.approx(r.axes[i].D_eff_um2_per_tu / r.D0_um2_per_tu)


def test_bruggeman_plot_shows_the_points_the_relation_and_the_fit(tmp_path, saved):
    eps = [0.3, 0.4, 0.5, 0.6]
    tau = [2.9, 2.1, 1.75, math.inf]
    f = fit_bruggeman(eps, tau)
    png = tmp_path / "b.png"
    plot_bruggeman(png, eps, tau, {"ionic": f}, groups=["ionic"] * 4)
    assert _png_size(png) == (720, 540)
    (ax,) = saved[0].axes
    points, brugg, fit = ax.lines
    np.testing.assert_array_equal(points.get_xdata(), [0.3, 0.4, 0.5])     # the inf point is left out
    np.testing.assert_array_equal(points.get_ydata(), [2.9, 2.1, 1.75])
    x = np.asarray(brugg.get_xdata())
    np.testing.assert_allclose(brugg.get_ydata(), x ** -0.5)
    np.testing.assert_allclose(fit.get_ydata(), f.prefactor * np.asarray(fit.get_xdata()) ** -f.alpha)
    assert fit.get_label().startswith(f"ionic: {f.prefactor:.3g} eps^-{f.alpha:.3g}")


def test_psd_plot_bars_are_the_volume_shares(tmp_path, saved):
    z, y, x = np.mgrid[:30, :30, :30]
    lab = ((x - 15) ** 2 + (y - 15) ** 2 + (z - 15) ** 2 <= 8 ** 2).astype(np.uint8)
    v = Volume(lab, {"SE": {"label": 0}, "NMC": {"label": 1}}, voxel_size_um=0.5)
    r = particle_size_distribution(v, "NMC", "local_thickness", n_bins=8)
    png = tmp_path / "psd.png"
    plot_psd(r, png)
    assert _png_size(png) == (720, 480)
    (ax,) = saved[0].axes
    bars = ax.patches
    assert [b.get_height() for b in bars] == pytest.approx(list(r.volume_fraction))
    assert [b.get_x() for b in bars] == pytest.approx(list(r.bin_edges_um[:-1]))
    marks = sorted(ln.get_xdata()[0] for ln in ax.lines)
    assert marks == pytest.approx(sorted([r.d10_um, r.d50_um, r.d90_um]))


def test_profile_figure_draws_the_fractions_and_currents_relative_to_their_mean(tmp_path, saved):
    pos = np.array([0.25, 0.75, 1.25, 1.75])
    fractions = {"SE": [1.0, 0.5, 0.0, 0.5], "NMC": [0.0, 0.5, 1.0, 0.5]}
    currents = {"ionic x": [4.0, 2.0, 0.0, 2.0]}
    figures.profiles("z", pos, fractions, currents, tmp_path / "p.png")
    left, right = saved[0].axes
    assert [list(ln.get_ydata()) for ln in left.lines] == [fractions["SE"], fractions["NMC"]]
    np.testing.assert_allclose(left.lines[0].get_xdata(), pos)
    np.testing.assert_allclose(right.lines[0].get_ydata(), [2.0, 1.0, 0.0, 1.0])   # mean 2
