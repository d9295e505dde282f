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
# # A distributed run
#
# A volume larger than one machine's memory is solved by several MPI ranks, each holding
# a slab of z planes and reading only those from the file. The command is the usual one
# under `mpiexec` (the `mpi` extra installs mpi4py and MPICH: `pip install ".[mpi]"`):
#
# ```
# mpiexec -n 2 microsim conductivity volume.h5 --direction z --out dist.json
# ```
#
# Here a small volume is written to HDF5 with its phase table, solved on 1 and 2 ranks
# and on one process, and the three tortuosity factors are compared. Without mpiexec
# the distributed part is skipped. `MICROSIM_TUTORIAL_SIZE` sets the volume's edge
# (default 64).

# %%
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import matplotlib
matplotlib.use(os.environ.get("MPLBACKEND", "Agg"))
import matplotlib.pyplot as plt
import tifffile

import microsim

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
REPO = HERE.parents[1]
FIGURES = Path(os.environ.get("MICROSIM_FIGURES", REPO / "docs" / "figures"))
SIZE = int(os.environ.get("MICROSIM_TUTORIAL_SIZE", "64"))
work = Path(tempfile.mkdtemp(prefix="microsim-distributed-"))

labels = tifffile.imread(REPO / "samples" / "electrode_64.tif")[:SIZE, :SIZE, :SIZE]
volume = microsim.Volume(labels, REPO / "samples" / "electrode_phases.toml", 0.390625)
microsim.write_volume(work / "volume.h5", volume)
single = microsim.conductivity(volume, "z")
print(f"one process: tau_z {single.tau:.6f} in {single.solver.iterations} iterations")

# %% [markdown]
# ## On two ranks
#
# mpiexec starts the ranks; each runs the same command. MPICH ranks busy-wait by
# default, which on a shared machine is slow: `MPIR_CVAR_ENABLE_HEAVY_YIELD=1` lets them
# sleep instead.

# %%
mpiexec = Path(sys.executable).with_name("mpiexec")
mpiexec = str(mpiexec) if mpiexec.exists() else shutil.which("mpiexec")
taus = {"1 process": single.tau}
if mpiexec is None:
    print("no mpiexec: install the mpi extra to run this part")
else:
    env = dict(os.environ, NUMBA_NUM_THREADS="1", MPIR_CVAR_ENABLE_HEAVY_YIELD="1")
    for n in (1, 2):
        out = work / f"ranks{n}.json"
        proc = subprocess.run([mpiexec, "-n", str(n), sys.executable, "-m", "microsim", "conductivity",
                               str(work / "volume.h5"), "--direction", "z", "--distributed", "--quiet",
                               "--out", str(out)], env=env, capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr)
        doc = json.loads(out.read_text())
        tau = doc["results"][0]["tau"]
        taus[f"{n} rank{'s' if n > 1 else ''}"] = tau
        print(f"{n} rank(s): tau_z {tau:.6f}   (relative difference to one process {abs(tau / single.tau - 1):.1e})")

# %%
fig, ax = plt.subplots(figsize=(4.5, 3))
ax.bar(list(taus), list(taus.values()), color=["0.6", "C0", "C1"][:len(taus)])
ax.set_ylim(0.9 * min(taus.values()), 1.02 * max(taus.values()))
ax.set_ylabel("tau_z (electrolyte)")
ax.set_title(f"{SIZE}^3 sample, one process and MPI ranks")
fig.tight_layout()
FIGURES.mkdir(parents=True, exist_ok=True)
fig.savefig(FIGURES / "tutorial_distributed_tau.png", dpi=110)
print("wrote", FIGURES / "tutorial_distributed_tau.png")
shutil.rmtree(work, ignore_errors=True)
