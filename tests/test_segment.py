"""Segmentation of grayscale volumes made from known labels plus noise."""
from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from microsim import PhaseTable
from microsim.cli import main
from microsim.io import describe, read_volume
from microsim.segment import (classify, denoise, intensity_histogram, multi_otsu_thresholds, noise_sigma,
                              phase_names_of, remove_islands, segment)

GREY = np.array([50.0, 125.0, 200.0])  # pore dark, CBD grey, NMC bright


@pytest.fixture(scope="module")
def truth() -> np.ndarray:
    """Three phases: background 0 with overlapping spheres of classes 1 and 2 (48^3)."""
    n = 48
    rng = np.random.default_rng(2)
    z, y, x = np.indices((n, n, n))
    t = np.zeros((n, n, n), np.uint8)
    for k in range(10):
        c = rng.uniform(0, n, 3)
        r = rng.uniform(8, 14)
        t[(z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2 < r * r] = 1 + k % 2
    fractions = np.bincount(t.ravel()) / t.size
    assert fractions.min() > 0.1  # every phase well represented
    return t


def noisy(truth, sigma, seed=100):
    g = GREY[truth] + np.random.default_rng(seed).normal(0, sigma, truth.shape)
    return np.clip(np.rint(g), 0, 255).astype(np.uint8)


def accuracy(labels, truth):
    return float((labels == truth).mean())


def test_multi_otsu_recovers_labels_of_a_noisy_volume(truth):
    result = segment(noisy(truth, 12), 3)
    assert accuracy(result.labels, truth) >= 0.99
    # the thresholds fall between the grey levels of the phases
    assert 50 < result.thresholds[0] < 125 < result.thresholds[1] < 200
    assert result.method == "multi-otsu" and result.label_values == (0, 1, 2)
    assert result.fractions == pytest.approx(tuple(np.bincount(truth.ravel()) / truth.size), abs=0.005)


def test_island_removal_and_median_denoising_rescue_heavier_noise(truth):
    gray = noisy(truth, 20)
    plain = accuracy(segment(gray, 3).labels, truth)
    assert plain < 0.97  # thresholding alone misclassifies the noise tails
    islands = segment(gray, 3, min_island_voxels=30)
    assert accuracy(islands.labels, truth) >= 0.99
    assert islands.islands_removed > 100 and islands.voxels_reassigned > 1000
    median = segment(gray, 3, denoise_method="median")
    assert accuracy(median.labels, truth) >= 0.99


def test_non_local_means_improves_on_plain_thresholding(truth):
    gray = noisy(truth, 20)
    plain = accuracy(segment(gray, 3).labels, truth)
    nlm = segment(gray, 3, denoise_method="nlm")
    assert nlm.denoise == "nlm"
    assert accuracy(nlm.labels, truth) > plain + 0.03


def test_noise_estimate(truth):
    for sigma in (5.0, 15.0):
        g = GREY[truth] + np.random.default_rng(1).normal(0, sigma, truth.shape)
        assert noise_sigma(g) == pytest.approx(sigma, rel=0.03)


def test_explicit_thresholds_put_a_value_equal_to_the_threshold_below_it():
    img = np.array([[[10, 89, 90, 91, 200]]], np.uint8)
    assert classify(img, [89]).tolist() == [[[0, 0, 1, 1, 1]]]
    assert classify(img.astype(np.float32), [89.0, 150.0]).tolist() == [[[0, 0, 1, 1, 2]]]
    r = segment(img, thresholds=[89], label_values=[0, 255])
    assert r.labels.tolist() == [[[0, 0, 255, 255, 255]]] and r.method == "thresholds"
    with pytest.raises(ValueError, match="strictly increasing"):
        segment(img, thresholds=[90, 50])
    with pytest.raises(ValueError, match="gives 3 phases but the segmentation has 2"):
        segment(img, 3, thresholds=[89])


def test_multi_otsu_of_two_separated_levels():
    hist = intensity_histogram(np.array([20] * 50 + [220] * 50, np.uint8))
    (t,) = multi_otsu_thresholds(hist, 2)
    assert 20 <= t < 220  # anything in between splits them; Otsu puts the lower level's value in class 0
    with pytest.raises(ValueError, match="only 2 distinct grey level"):
        multi_otsu_thresholds(hist, 3)


def test_histogram_bins():
    h = intensity_histogram(np.array([0, 3, 3, 255], np.uint8))
    assert h.counts.sum() == 4 and len(h.counts) == 256 and h.counts[3] == 2 and h.centers[3] == 3.0
    h16 = intensity_histogram(np.array([1000, 1001, 1001], np.uint16))
    assert h16.centers.tolist() == [1000.0, 1001.0] and h16.counts.tolist() == [1, 2]
    hf = intensity_histogram(np.linspace(0, 1, 1000, dtype=np.float32), bins=10)
    assert hf.counts.tolist() == [100] * 10 and hf.edges[0] == 0 and hf.edges[-1] == 1


def test_remove_islands_exact_counts():
    c = np.zeros((12, 12, 12), np.uint8)
    c[1:3, 1:3, 1:3] = 1          # 8 voxels of class 1 in class 0
    c[5:8, 5:8, 5:8] = 1          # 27 voxels
    c[6, 6, 6] = 0                # 1-voxel hole inside the larger cube
    c[10:12, 10:12, 10:12] = 2    # 8 voxels touching the corner of the volume
    out, n, changed = remove_islands(c, 9)
    assert n == 3 and changed == 8 + 1 + 8
    assert out[1:3, 1:3, 1:3].max() == 0 and out[6, 6, 6] == 1 and out[10:, 10:, 10:].max() == 0
    assert (out[5:8, 5:8, 5:8] == 1).all()
    same, n0, changed0 = remove_islands(c, 8)  # every region has >= 8 voxels except the hole
    assert (n0, changed0) == (1, 1)


def test_removed_island_takes_the_majority_of_its_neighbours():
    c = np.zeros((5, 5, 9), np.uint8)
    c[:, :, 5:] = 2
    c[2, 2, 4] = 1  # one voxel of class 1: 4 neighbours of class 0... and 1 of class 2, one of class 0 behind
    out, n, _ = remove_islands(c, 2)
    assert n == 1 and out[2, 2, 4] == 0
    # and when the larger label is the majority and not the first neighbour looked at (-x is 0,
    # the other five are 2), it is the majority that wins
    c = np.zeros((5, 5, 9), np.uint8)
    c[:, :, 5:] = 2
    c[1:4, 1:4, 4] = 2
    c[2, 2, 4] = 1
    out, n, _ = remove_islands(c, 2)
    assert n == 1 and out[2, 2, 4] == 2


def test_labels_and_names_from_a_phase_table(truth):
    # listed dark to bright; the labels follow the TauFactor convention 0/85/170
    table = PhaseTable.from_dict({"pore": {"label": 0}, "CBD": {"label": 170}, "NMC": {"label": 85}})
    r = segment(noisy(truth, 12), phases=table)
    assert r.phase_names == ("pore", "CBD", "NMC") and r.label_values == (0, 170, 85)
    lut = np.array([0, 170, 85], np.uint8)
    assert accuracy(r.labels, lut[truth]) >= 0.99
    assert phase_names_of([0, 85, 170, 7], table) == {0: "pore", 85: "NMC", 170: "CBD", 7: None}


def test_median_keeps_dtype_and_removes_a_spike():
    img = np.full((3, 3, 3), 10, np.uint16)
    img[1, 1, 1] = 60000
    out = denoise(img, "median", 3)
    assert out.dtype == np.uint16 and out[1, 1, 1] == 10
    with pytest.raises(ValueError, match="not 'median' or 'nlm'"):
        denoise(img, "gauss")


def test_segment_command_writes_labels_report_and_names(truth, tmp_path, capsys):
    gray = tmp_path / "gray.tif"
    tifffile.imwrite(gray, noisy(truth, 12), imagej=True, resolution=(1 / 0.4, 1 / 0.4),
                     metadata={"spacing": 0.8, "unit": "micron", "axes": "ZYX"})
    table = tmp_path / "phases.toml"
    table.write_text('[phases.pore]\nlabel = 0\n\n[phases.CBD]\nlabel = 170\n\n[phases.NMC]\nlabel = 85\n'
                     'sigma_electronic_S_per_m = 10.0\n')
    out = tmp_path / "labels.h5"
    report = tmp_path / "seg.json"
    assert main(["segment", str(gray), "--phases", str(table), "--out", str(out), "--report", str(report),
                 "--min-island", "20", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "thresholds" in printed and "<- threshold" in printed and "NMC" in printed
    v = read_volume(out)  # phase table and voxel size travel with the labels
    assert v.phases.names == ("pore", "CBD", "NMC") and v.voxel_size_um == pytest.approx((0.8, 0.4, 0.4))
    assert accuracy(v.labels, np.array([0, 170, 85], np.uint8)[truth]) >= 0.99
    doc = json.loads(report.read_text())
    assert len(doc["thresholds"]) == 2 and sum(doc["histogram"]["counts"]) == truth.size
    assert doc["phase_names"] == ["pore", "CBD", "NMC"]
    assert any(p.startswith("segmented: multi-otsu") for p in describe(out).provenance)


def test_segment_command_with_phase_count_and_errors(truth, tmp_path, capsys):
    gray = tmp_path / "gray.npy"
    np.save(gray, noisy(truth, 12))
    out = tmp_path / "labels.tif"
    assert main(["segment", str(gray), "--phases", "3", "--labels", "0,85,170", "--out", str(out), "--quiet",
                 "--downsample", "2"]) == 0
    capsys.readouterr()
    info = describe(out)
    # the old spelling --phases N still works; the classes get a phase table of their own
    assert info.shape == (24, 24, 24) and info.phases.names == ("pore", "solid_1", "solid_2")
    assert main(["segment", str(gray), "--out", str(tmp_path / "x.tif"), "--quiet"]) == 2
    assert "give --classes N" in capsys.readouterr().err
    assert not (tmp_path / "x.tif").exists()
