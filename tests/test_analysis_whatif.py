"""What-if operations: pore filling, phase conversion, conductivity change, erosion and dilation."""
import numpy as np
import pytest
from scipy import ndimage

from microsim import Volume, conductivity
from microsim.analysis import (convert_phase, dilate_phase, erode_phase, fill_pores, set_conductivity,
                               volume_fractions)

SE, NMC, BINDER, PORE = 0, 1, 2, 3
TABLE = {"SE": {"label": SE, "material": "Li6PS5Cl"},
         "NMC": {"label": NMC, "material": "NMC811", "sigma_ionic_S_per_m": 0.0},
         "binder": {"label": BINDER, "material": "binder"}, "pore": {"label": PORE, "material": "pore"}}


def _cathode(n=24, seed=3):
    # electrolyte matrix with spherical particles, binder specks and void blobs
    rng = np.random.default_rng(seed)
    lab = np.full((n, n, n), SE, np.uint8)
    z, y, x = np.mgrid[:n, :n, :n]
    for _ in range(14):
        c = rng.uniform(0, n, 3)
        r = rng.uniform(2.5, 4.5)
        lab[(z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2 <= r * r] = NMC
    noise = ndimage.gaussian_filter(rng.random((n, n, n)), 1.5)
    lab[(noise > np.quantile(noise, 0.85)) & (lab == SE)] = PORE
    lab[(noise < np.quantile(noise, 0.05)) & (lab == SE)] = BINDER
    return Volume(lab, TABLE, voxel_size_um=0.5)


def test_fill_pores_adds_exactly_the_pore_fraction_and_lowers_tau():
    v = _cathode()
    before = volume_fractions(v)
    filled = fill_pores(v, "SE")
    after = volume_fractions(filled)
    assert before["pore"] > 0.05
    assert after["SE"] == before["SE"] + before["pore"]          # exact: counts of voxels
    assert after["pore"] == 0.0 and after["NMC"] == before["NMC"]
    assert filled.provenance[-1].startswith("fill_pores: pore -> SE")
    assert v.labels is not filled.labels and (v.labels == PORE).any()  # the input is untouched
    tau0 = conductivity(v, "z", "ionic").get("ionic", "z")
    tau1 = conductivity(filled, "z", "ionic").get("ionic", "z")
    assert tau0.percolates and tau1.percolates
    assert 1.0 <= tau1.tau < tau0.tau
    assert tau1.eps == pytest.approx(after["SE"])


def test_ion_conducting_binder_lowers_tau():
    v = _cathode()
    wet = set_conductivity(v, "binder", "ionic", v.phases["SE"].sigma_ionic_S_per_m)
    assert wet.phases["binder"].sigma_ionic_S_per_m == v.phases["SE"].sigma_ionic_S_per_m
    assert (wet.labels == v.labels).all()
    assert "set_conductivity: binder ionic 0 ->" in wet.provenance[-1]
    t0 = conductivity(v, "x", "ionic").get("ionic", "x").tau
    t1 = conductivity(wet, "x", "ionic").get("ionic", "x").tau
    assert t1 < t0
    # converting the binder to electrolyte gives the same structure as far as ions go
    conv = convert_phase(v, "binder", "SE")
    assert volume_fractions(conv)["binder"] == 0.0
    assert conductivity(conv, "x", "ionic").get("ionic", "x").tau == pytest.approx(t1, rel=1e-3)


def test_erode_and_dilate_by_n_voxels():
    lab = np.zeros((14, 14, 14), np.uint8)
    lab[2:12, 2:12, 2:12] = NMC
    v = Volume(lab, TABLE)
    eroded = erode_phase(v, "NMC", 2)
    assert (eroded.labels == NMC).sum() == 6 ** 3                     # a 10-cube loses 2 layers per side
    assert (eroded.labels[4:10, 4:10, 4:10] == NMC).all()
    assert (eroded.labels[lab == NMC] != NMC).sum() == 1000 - 216
    assert set(np.unique(eroded.labels).tolist()) == {SE, NMC}        # removed voxels take the neighbour
    assert erode_phase(v, "NMC", 2, into="pore").labels.max() == PORE
    assert "erode_phase: NMC by 2 voxels" in eroded.provenance[-1]
    seed = np.zeros((9, 9, 9), np.uint8)
    seed[4, 4, 4] = BINDER
    grown = dilate_phase(Volume(seed, TABLE), "binder", 2)
    assert (grown.labels == BINDER).sum() == 33                        # integer points with |p| <= 2
    # a slab grows by exactly n layers on each side; `into` limits what it may replace
    slab = np.zeros((12, 5, 5), np.uint8)
    slab[5:7] = BINDER
    slab[:2] = PORE
    g = dilate_phase(Volume(slab, TABLE), "binder", 3, into="SE")
    assert (g.labels[2:10] == BINDER).all() and (g.labels[:2] == PORE).all() and (g.labels[10:] == SE).all()
    assert erode_phase(v, "NMC", 0).labels.tolist() == v.labels.tolist()


def test_whatif_errors_name_the_problem():
    v = _cathode(8)
    with pytest.raises(ValueError, match="no phase named 'LLZO'"):
        fill_pores(v, "LLZO")
    with pytest.raises(ValueError, match="cannot fill the pores with the pore phase"):
        fill_pores(v, "pore")
    no_pores = Volume(np.zeros((3, 3, 3), np.uint8), {"SE": {"label": 0}})
    with pytest.raises(ValueError, match="no pore phase"):
        fill_pores(no_pores, "SE")
    with pytest.raises(ValueError, match="must be an integer >= 0"):
        erode_phase(v, "NMC", -1)
    with pytest.raises(ValueError, match="carrier 'protons'"):
        set_conductivity(v, "binder", "protons", 1.0)
