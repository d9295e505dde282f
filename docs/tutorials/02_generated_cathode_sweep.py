# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # A generated cathode, swept over its active fraction, and its Bruggeman exponent
#
# `generate_cathode` packs active-material particles (here NMC811, 4 um) in a solid
# electrolyte matrix (Li6PS5Cl). The more active material, the less electrolyte is left
# for the ions, and the more tortuous its network becomes. A sweep over the active
# fraction gives (eps, tau) pairs of the electrolyte, and a fit of `tau = A eps^-alpha`
# says how far the structure is from Bruggeman's alpha = 0.5.
#
# `MICROSIM_TUTORIAL_SIZE` sets the edge of the generated cube in voxels (default 64).

# %%
import os
from pathlib import Path

import matplotlib
matplotlib.use(os.environ.get("MPLBACKEND", "Agg"))

import microsim

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
FIGURES = Path(os.environ.get("MICROSIM_FIGURES", HERE.parents[1] / "docs" / "figures"))
SIZE = int(os.environ.get("MICROSIM_TUTORIAL_SIZE", "64"))
FRACTIONS = [0.35, 0.45, 0.55, 0.62]


def recipe(fraction):
    return microsim.Recipe.from_dict({
        "domain": {"shape": SIZE, "voxel_size_um": 0.5},
        "active": {"material": "NMC811", "fraction": fraction, "size": {"d50_um": 4.0, "gsd": 1.15}},
        "electrolyte": {"material": "Li6PS5Cl"}})


# %% [markdown]
# ## The sweep
#
# Each cathode carries its phase table (NMC811 and Li6PS5Cl with their conductivities),
# so `conductivity` needs nothing else; ions go through the electrolyte only.

# %%
results = []
for f in FRACTIONS:
    cathode = microsim.generate_cathode(recipe(f), seed=1)
    res = microsim.conductivity(cathode.volume, "all", "ionic")
    results.append(res)
    print(f"active {cathode.achieved['active']:.3f}: electrolyte eps {res[0].eps:.3f}, "
          + ", ".join(f"tau_{r.direction} {r.tau:.3f}" for r in res))

# %% [markdown]
# ## The fit
#
# `tau_points` turns results into (eps, tau) points; `fit_bruggeman` fits a straight line
# to ln(tau) against ln(eps), with 95 % confidence intervals.

# %%
points = [p for k, res in enumerate(results) for p in microsim.tau_points(res, f"active {FRACTIONS[k]}")]
fit = microsim.fit_bruggeman([p.eps for p in points], [p.tau for p in points])
print(f"tau = {fit.prefactor:.3f} eps^-{fit.alpha:.3f}, alpha in [{fit.alpha_ci[0]:.2f}, {fit.alpha_ci[1]:.2f}], "
      f"R^2 {fit.r_squared:.3f}, {fit.n_points} points")

FIGURES.mkdir(parents=True, exist_ok=True)
microsim.plot_bruggeman(FIGURES / "tutorial_cathode_bruggeman.png", [p.eps for p in points],
                        [p.tau for p in points], {"ionic": fit}, groups=[f"ionic {p.direction}" for p in points])
print("wrote", FIGURES / "tutorial_cathode_bruggeman.png")

# %% [markdown]
# The command line does the same with a sweep configuration (`samples/sweep_recipe.toml`
# sweeps the active fraction and the electrolyte particle size); `bruggeman` reads the
# sweep folder:
#
# ```
# microsim sweep samples/sweep_recipe.toml --out sweeps/recipe
# microsim bruggeman sweeps/recipe
# ```
