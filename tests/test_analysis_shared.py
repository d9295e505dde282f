"""The analysis on a real electrode volume (skipped when ../shared/data is absent)."""
import numpy as np
import pytest
from scipy import ndimage

from microsim import Volume, label_clusters
from microsim.analysis import active_material, cluster_percolation, volume_fractions


def test_taufactor_electrode(shared_data):
    tifffile = pytest.importorskip("tifffile")
    labels = tifffile.imread(shared_data / "taufactor_electrode_NMC_pore_CBD_256.tiff")
    v = Volume(labels, {"electrolyte": {"label": 0, "material": "Li6PS5Cl"},
                        "NMC": {"label": 85, "material": "NMC811"},
                        "CBD": {"label": 170, "material": "carbon_black"}}, voxel_size_um=0.390625)
    f = volume_fractions(v, ["NMC+CBD"])
    # fractions listed with the data set
    assert f["electrolyte"] == pytest.approx(0.4499, abs=5e-5)
    assert f["NMC"] == pytest.approx(0.4005, abs=5e-5)
    assert f["CBD"] == pytest.approx(0.1496, abs=5e-5)
    pore = v.mask("electrolyte")
    want, n_want = ndimage.label(pore)
    got, n_got, _ = label_clusters(pore, 6)
    assert n_got == n_want and np.array_equal(got, want)
    r = cluster_percolation(pore, "all")
    for d in r.directions:
        assert d.fraction_percolating + d.fraction_dead_end + d.fraction_isolated == pytest.approx(1.0)
        assert d.fraction_percolating > 0.99      # the electrolyte network of this cathode is connected
    a = active_material(v)
    assert 0.9 < a.fraction_active <= 1.0
