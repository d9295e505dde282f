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
# # Random walks against finite volumes, on the same problem
#
# A random walk and a finite-volume solve measure the same transport only if they solve
# the same problem. The walk lives in an infinite medium built from copies of the
# volume: **periodic** copies (the default) are the finite-volume *cell problem*
# (`conductivity(..., cell_problem=True)`, `microsim conductivity --cell-problem`);
# **mirrored** copies are the default finite-volume problem, fixed potentials on two
# faces and no flux through the sides. Compare a periodic walk with the default solve
# and they differ by tens of percent on a small crop, for a reason that has nothing to do
# with either method.
#
# `MICROSIM_TUTORIAL_SIZE` sets the crop (default 32) and `MICROSIM_TUTORIAL_WALKERS` the walkers.

# %%
import os
from pathlib import Path

import matplotlib
matplotlib.use(os.environ.get("MPLBACKEND", "Agg"))
import tifffile

import microsim

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
REPO = HERE.parents[1]
FIGURES = Path(os.environ.get("MICROSIM_FIGURES", REPO / "docs" / "figures"))
SIZE = int(os.environ.get("MICROSIM_TUTORIAL_SIZE", "32"))
WALKERS = int(os.environ.get("MICROSIM_TUTORIAL_WALKERS", "4096"))
STEPS = int(os.environ.get("MICROSIM_TUTORIAL_STEPS", "40000"))

pore = tifffile.imread(REPO / "samples" / "electrode_64.tif")[:SIZE, :SIZE, :SIZE] == 0

# %% [markdown]
# ## Both boundaries, both methods

# %%
table = []
for boundary, fv_kw in (("periodic", {"cell_problem": True}), ("mirror", {})):
    walk = microsim.random_walk(pore, walkers=WALKERS, steps=STEPS, boundary=boundary, seed=1)
    fv = microsim.conductivity(pore, "all", **fv_kw)
    for d in "xyz":
        a = walk.get(d)
        table.append((boundary, d, a.tau, a.tau_se, fv["ionic", d].tau))
    print(f"{boundary}: the walk matches {walk.equivalent_fv_problem}")
for boundary, d, tau_rw, se, tau_fv in table:
    print(f"{boundary:>8} {d}: random walk tau {tau_rw:.3f} +- {se:.3f}   finite volumes {tau_fv:.3f}")

# %% [markdown]
# Same problem, same answer within the walk's error bars. The periodic walk against the
# default (fixed-potential) solve is the comparison that disagrees:

# %%
for (b1, d, rw, se, _), (_, _, _, _, fv_fixed) in zip(table[:3], table[3:]):
    print(f"{d}: periodic walk {rw:.3f} vs fixed-potential solve {fv_fixed:.3f} "
          f"({100 * (rw / fv_fixed - 1):+.0f} %)")

# %% [markdown]
# The command line says which problem it solved on both sides:
#
# ```
# microsim randomwalk samples/electrode_64.tif --conducting 0 --crop 0:32,0:32,0:32 --compare-fv --walkers 2048 --steps 20000
# ```

# %%
walk = microsim.random_walk(pore, walkers=WALKERS, steps=STEPS, seed=1)
FIGURES.mkdir(parents=True, exist_ok=True)
microsim.plot_msd(walk, FIGURES / "tutorial_random_walk_msd.png")
print("wrote", FIGURES / "tutorial_random_walk_msd.png")
