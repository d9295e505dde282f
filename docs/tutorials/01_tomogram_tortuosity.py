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
# # A tomogram to the tortuosity of every phase
#
# A three-phase cathode (pore, NMC, carbon-binder domain) from the TauFactor examples,
# kept in `../shared/data` next to the repository; without it the bundled sample
# `samples/electrode_64.tif` (the same kind of volume) stands in. For each phase we ask how
# tortuous its own network is along x, y and z, and how that compares with Bruggeman's
# `tau = eps^-0.5`.
#
# The script runs as it is (`python docs/tutorials/01_tomogram_tortuosity.py`) or as a
# notebook (`jupytext --to notebook ...`). `MICROSIM_TUTORIAL_SIZE` sets the edge of the crop
# (default 96 voxels); the tests run it on a small one.

# %%
import os
from pathlib import Path

import matplotlib
matplotlib.use(os.environ.get("MPLBACKEND", "Agg"))
import matplotlib.pyplot as plt
import numpy as np
import tifffile

import microsim

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
REPO = HERE.parents[1]
FIGURES = Path(os.environ.get("MICROSIM_FIGURES", REPO / "docs" / "figures"))
SIZE = int(os.environ.get("MICROSIM_TUTORIAL_SIZE", "96"))

tomogram = REPO.parent / "shared" / "data" / "taufactor_electrode_NMC_pore_CBD_256.tiff"
if not tomogram.exists():
    tomogram = REPO / "samples" / "electrode_64.tif"
labels = tifffile.imread(tomogram)[:SIZE, :SIZE, :SIZE]
values, counts = np.unique(labels, return_counts=True)
print(tomogram.name, labels.shape, dict(zip(values.tolist(), (counts / labels.size).round(3).tolist())))

# %% [markdown]
# ## One phase at a time
#
# A boolean array conducts where it is True, so `labels == v` is the network of phase `v`
# with sigma 1: exactly TauFactor's `tf.Solver(labels == v)`. `"all"` solves x, y and z.

# %%
names = {0: "pore", 1: "NMC", 2: "CBD"} if values.max() <= 2 else {0: "pore", 85: "NMC", 170: "CBD"}
rows = []
for v in values:
    res = microsim.conductivity(labels == v, "all")
    for r in res:
        rows.append((names.get(int(v), str(v)), r.direction, r.eps, r.tau, r.tau_bruggeman))
        print(f"{names.get(int(v), v):>5} {r.direction}: eps {r.eps:.3f}  tau {r.tau:.3f}  "
              f"Bruggeman {r.tau_bruggeman:.3f}")

# %% [markdown]
# ## Against Bruggeman
#
# `compare_bruggeman` sets every computed tau beside `eps^-0.5` and gives the exponent
# that would reproduce it (`alpha_fit = -ln(tau) / ln(eps)`). A phase that does not
# percolate has tau = inf and no exponent.

# %%
points = [microsim.TauPoint(name, "ionic", d, (name,), eps, tau) for name, d, eps, tau, _ in rows]
for row in microsim.compare_bruggeman(points):
    print(f"{row.source:>5} {row.direction}: tau/tau_Bruggeman {row.ratio:.2f}, alpha_fit {row.alpha_fit:.2f}")

# %%
fig, ax = plt.subplots(figsize=(6, 3.5))
phases = list(dict.fromkeys(name for name, *_ in rows))
for k, d in enumerate("xyz"):
    taus = [next(t for n, dd, _, t, _ in rows if n == p and dd == d) for p in phases]
    taus = [t if np.isfinite(t) else np.nan for t in taus]
    ax.bar(np.arange(len(phases)) + 0.2 * (k - 1), taus, width=0.2, label=f"tau_{d}")
brugg = [next(b for n, _, _, _, b in rows if n == p) for p in phases]
ax.scatter(np.arange(len(phases)), brugg, color="k", marker="_", s=600, zorder=3, label="eps^-0.5")
ax.set_xticks(range(len(phases)), phases)
ax.set_yscale("log")
ax.set_ylabel("tortuosity factor")
ax.set_title(f"{tomogram.name}, {SIZE}^3 crop")
ax.legend(fontsize=8)
fig.tight_layout()
FIGURES.mkdir(parents=True, exist_ok=True)
fig.savefig(FIGURES / "tutorial_tomogram_tau.png", dpi=110)
print("wrote", FIGURES / "tutorial_tomogram_tau.png")

# %% [markdown]
# The same from the command line, one phase at a time, with no phase table to write:
#
# ```
# microsim conductivity ../shared/data/taufactor_electrode_NMC_pore_CBD_256.tiff --conducting 0 --out tau/pore.json
# microsim bruggeman tau/pore.json
# ```
