"""Segmentation of grayscale tomography into labelled phases.

The pipeline is: optional denoising (median or non-local means), thresholds
(multi-Otsu for N phases, or given explicitly), optional removal of islands
smaller than a size, and assignment of label values, optionally those of a phase
table so that the labels come out with phase names (pore, NMC, CBD ...).

Classes are numbered from dark to bright. A voxel belongs to class k+1 when its
value is above threshold t_k (``v > t_k``), the convention of Otsu's method; so
the pumapy fibre-preform segmentation "void = gray 0-89, solid = 90-255" is the
single threshold 89.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from kernels.majority import fill_sweep

from .phases import Phase, PhaseTable, phase_table
from .volume import label_counts

_STRUCTURE_RANK = {6: 1, 18: 2, 26: 3}
UNASSIGNED = 255


@dataclass(frozen=True)
class Histogram:
    """Counts of voxel values in bins; for integer data with at most ``bins`` distinct
    values in range there is one bin per value, centred on it."""

    counts: np.ndarray
    edges: np.ndarray

    @property
    def centers(self) -> np.ndarray:
        return 0.5 * (self.edges[:-1] + self.edges[1:])

    def to_dict(self) -> dict:
        return {"counts": self.counts.tolist(), "edges": self.edges.tolist()}


def intensity_histogram(image: np.ndarray, bins: int = 256) -> Histogram:
    """Histogram of a grayscale array.

    >>> h = intensity_histogram(np.array([0, 1, 1, 255], np.uint8))
    >>> int(h.counts[1]), float(h.centers[255])
    (2, 255.0)
    """
    arr = np.asarray(image)
    if arr.size == 0:
        raise ValueError("cannot take the histogram of an empty array")
    if arr.dtype == bool:
        arr = arr.view(np.uint8)
    # bincount widens its input to int64; counting a few million voxels at a time keeps
    # that copy small for large volumes.
    flat = arr.reshape(-1)
    step = 1 << 22
    if arr.dtype == np.uint8:
        return Histogram(label_counts(arr), np.arange(257) - 0.5)
    lo, hi = float(arr.min()), float(arr.max())
    if np.issubdtype(arr.dtype, np.integer) and hi - lo + 1 <= bins:
        counts = np.zeros(int(hi - lo) + 1, dtype=np.int64)
        for i in range(0, flat.size, step):
            counts += np.bincount(flat[i:i + step].astype(np.int64) - int(lo), minlength=len(counts))
        return Histogram(counts, np.arange(int(lo), int(hi) + 2) - 0.5)
    if hi == lo:
        hi = lo + 1.0
    counts, edges = np.histogram(arr, bins=bins, range=(lo, hi))
    return Histogram(counts.astype(np.int64), edges.astype(np.float64))


def noise_sigma(image: np.ndarray) -> float:
    """Standard deviation of white noise in a volume, estimated robustly.

    Differences of neighbouring voxels (along z, y and x) are sigma * sqrt(2)
    where the image is flat; the few differences across phase boundaries are
    large. Starting from the median absolute difference, differences beyond
    three standard deviations are dropped and the spread is re-estimated, with
    the factor 0.98658 that corrects for cutting the normal tails at 3 sigma.

    >>> rng = np.random.default_rng(0)
    >>> round(noise_sigma(100 + rng.normal(0, 5, (40, 40, 40))), 1)
    5.0
    """
    arr = np.asarray(image, dtype=np.float64)
    d = np.concatenate([np.diff(arr, axis=a).ravel() for a in range(arr.ndim) if arr.shape[a] > 1]) / np.sqrt(2.0)
    if d.size == 0:
        return 0.0
    s = 1.482602 * float(np.median(np.abs(d)))
    for _ in range(5):
        if s == 0:
            break
        kept = d[np.abs(d) < 3.0 * s]
        s = float(np.sqrt(np.mean(kept * kept))) / 0.98658
    return s


def denoise(image: np.ndarray, method: str = "median", size: int = 3, h: float | None = None) -> np.ndarray:
    """Denoise a grayscale volume before thresholding.

    Parameters
    ----------
    method : 'median' or 'nlm'
        Median filter over a ``size``^3 cube (keeps the dtype), or scikit-image's
        non-local means with ``size``^3 patches searched within ``size`` voxels (float32).
    h : float, optional
        Non-local means cut-off; default 0.8 x the noise level from :func:`noise_sigma`.

    >>> denoise(np.array([[[0, 9, 0, 0]]], np.uint8), "median", 3).tolist()
    [[[0, 0, 0, 0]]]
    """
    arr = np.asarray(image)
    if int(size) != size or size < 1:
        raise ValueError(f"denoise size {size!r} must be a positive integer (voxels)")
    size = int(size)
    if method == "median":
        return ndimage.median_filter(arr, size=size, mode="nearest")
    if method == "nlm":
        from skimage.restoration import denoise_nl_means
        img = arr.astype(np.float32)
        sigma = noise_sigma(img)
        cutoff = 0.8 * sigma if h is None else float(h)
        if cutoff <= 0:
            return img
        return denoise_nl_means(img, patch_size=size, patch_distance=size, h=cutoff, sigma=sigma,
                                fast_mode=True).astype(np.float32)
    raise ValueError(f"denoise method {method!r} is not 'median' or 'nlm'")


def multi_otsu_thresholds(hist: Histogram, n_phases: int) -> tuple[float, ...]:
    """Thresholds that split a histogram into ``n_phases`` classes by multi-level Otsu."""
    from skimage.filters import threshold_multiotsu
    if int(n_phases) != n_phases or n_phases < 2:
        raise ValueError(f"number of phases {n_phases!r} must be an integer >= 2")
    present = int(np.count_nonzero(hist.counts))
    if present < n_phases:
        raise ValueError(f"the image has only {present} distinct grey level(s); it cannot be split into "
                         f"{n_phases} phases")
    t = threshold_multiotsu(hist=(hist.counts, hist.centers), classes=int(n_phases))
    return tuple(float(v) for v in t)


def apply_lut(lut: np.ndarray, arr: np.ndarray) -> np.ndarray:
    """``lut[arr]`` for uint8 ``arr``, a few million voxels at a time (numpy widens the
    index array to int64, eight bytes per voxel, if it is indexed in one go)."""
    out = np.empty(arr.shape, dtype=lut.dtype)
    src, dst = arr.reshape(-1), out.reshape(-1)
    step = 1 << 22
    for i in range(0, src.size, step):
        dst[i:i + step] = lut[src[i:i + step]]
    return out


def classify(image: np.ndarray, thresholds) -> np.ndarray:
    """Class index (uint8) of every voxel: the number of thresholds its value is above."""
    arr = np.asarray(image)
    t = np.asarray(thresholds, dtype=np.float64)
    if arr.dtype in (np.uint8, np.bool_):
        lut = np.searchsorted(t, np.arange(256), side="left").astype(np.uint8)
        return apply_lut(lut, arr.view(np.uint8))
    out = np.zeros(arr.shape, dtype=np.uint8)
    for v in t:
        out += arr > v
    return out


def remove_islands(classes: np.ndarray, min_voxels: int, connectivity: int = 6,
                   n_classes: int | None = None) -> tuple[np.ndarray, int, int]:
    """Reassign connected regions smaller than ``min_voxels`` to the surrounding class.

    Each class is split into connected components (``connectivity`` 6, 18 or 26);
    components with fewer than ``min_voxels`` voxels are emptied, and the emptied
    voxels are filled from the outside in, each taking the most frequent class
    among its face neighbours. Components touching the volume boundary count like
    any other.

    Returns
    -------
    classes : uint8 array
    n_islands : int
        Number of components removed.
    n_voxels : int
        Number of voxels that changed class.

    Examples
    --------
    >>> c = np.zeros((5, 5, 5), np.uint8); c[2, 2, 2] = 1
    >>> out, n, v = remove_islands(c, 2)
    >>> int(out.max()), n, v
    (0, 1, 1)
    """
    cls = np.ascontiguousarray(classes, dtype=np.uint8)
    if connectivity not in _STRUCTURE_RANK:
        raise ValueError(f"connectivity {connectivity} is not 6, 18 or 26")
    if min_voxels <= 1:
        return cls.copy(), 0, 0
    n_classes = int(cls.max()) + 1 if n_classes is None else int(n_classes)
    if n_classes >= UNASSIGNED:
        raise ValueError(f"{n_classes} classes is too many for island removal (at most {UNASSIGNED - 1})")
    structure = ndimage.generate_binary_structure(3, _STRUCTURE_RANK[connectivity])
    small = np.zeros(cls.shape, dtype=bool)
    n_islands = 0
    for c in range(n_classes):
        lab, n = ndimage.label(cls == c, structure=structure)
        if n == 0:
            continue
        sizes = np.bincount(lab.ravel())
        drop = sizes < min_voxels
        drop[0] = False
        n_islands += int(drop.sum())
        small |= drop[lab]
    if not small.any():
        return cls.copy(), 0, 0
    src = cls.copy()
    src[small] = UNASSIGNED
    dst = np.empty_like(src)
    left = int(small.sum())
    while left:
        now = int(fill_sweep(src, dst, UNASSIGNED, n_classes))
        src, dst = dst, src
        if now == left:  # nothing assigned is left to grow from: keep the original classes
            src[src == UNASSIGNED] = cls[src == UNASSIGNED]
            break
        left = now
    return src, n_islands, int(np.count_nonzero(src != cls))


@dataclass(frozen=True)
class SegmentResult:
    """Labels of a segmented volume and how they were obtained.

    Attributes
    ----------
    labels : uint8 array (z, y, x)
    thresholds : grey-level thresholds between consecutive classes (dark to bright)
    label_values : label value of each class
    phase_names : phase name of each class, when a phase table was given
    method : 'multi-otsu' or 'thresholds'
    denoise : denoising applied before thresholding, or None
    histogram : histogram of the (denoised) image the thresholds were applied to
    fractions : volume fraction of each class in the final labels
    islands_removed, voxels_reassigned : what island removal changed
    """

    labels: np.ndarray = field(repr=False)
    thresholds: tuple[float, ...]
    label_values: tuple[int, ...]
    phase_names: tuple[str, ...] | None
    method: str
    denoise: str | None
    histogram: Histogram = field(repr=False)
    fractions: tuple[float, ...]
    islands_removed: int = 0
    voxels_reassigned: int = 0
    min_island_voxels: int = 0

    @property
    def n_phases(self) -> int:
        return len(self.label_values)

    def to_dict(self) -> dict:
        return {"method": self.method, "denoise": self.denoise, "thresholds": list(self.thresholds),
                "label_values": list(self.label_values),
                "phase_names": None if self.phase_names is None else list(self.phase_names),
                "fractions": list(self.fractions), "min_island_voxels": self.min_island_voxels,
                "islands_removed": self.islands_removed, "voxels_reassigned": self.voxels_reassigned,
                "histogram": self.histogram.to_dict()}


def segment(image: np.ndarray, n_phases: int | None = None, *, thresholds=None, denoise_method: str | None = None,
            denoise_size: int = 3, nlm_h: float | None = None, min_island_voxels: int = 0, connectivity: int = 6,
            label_values=None, phases: PhaseTable | dict | str | None = None, bins: int = 256) -> SegmentResult:
    """Segment a grayscale volume into ``n_phases`` labelled phases.

    Parameters
    ----------
    image : array (z, y, x) of grey values
    n_phases : int, optional
        Number of phases for multi-Otsu; implied by ``thresholds`` or ``phases`` if not given.
    thresholds : sequence of float, optional
        Explicit increasing thresholds in grey levels; class k+1 is ``value > t_k``.
    denoise_method : None, 'median' or 'nlm'
    denoise_size : int
        Median window or non-local-means patch size, in voxels.
    nlm_h : float, optional
        Non-local means cut-off (grey levels).
    min_island_voxels : int
        Connected regions smaller than this are given to the surrounding phase.
    connectivity : 6, 18 or 26
        Neighbourhood for island detection.
    label_values : sequence of int, optional
        Label of each class, dark to bright (default 0, 1, ...).
    phases : PhaseTable, dict or TOML path, optional
        Its phases, in the order they are listed, name the classes from dark to bright
        and give their label values.
    bins : int
        Histogram bins for non-8-bit data.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> truth = (np.indices((20, 20, 20)).sum(axis=0) > 28).astype(np.uint8)
    >>> gray = np.where(truth == 1, 180.0, 60.0) + rng.normal(0, 10, truth.shape)
    >>> r = segment(gray, 2)
    >>> float((r.labels == truth).mean())
    1.0
    """
    arr = np.asarray(image)
    if arr.ndim != 3:
        raise ValueError(f"segmentation needs a 3D (z, y, x) array, got shape {arr.shape}")
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"cannot segment dtype {arr.dtype}; give grey values (integers or floats)")
    table = phase_table(phases) if phases is not None else None
    if thresholds is not None:
        t = tuple(float(v) for v in thresholds)
        if not t or any(b <= a for a, b in zip(t, t[1:])):
            raise ValueError(f"thresholds {list(thresholds)} must be one or more strictly increasing values")
        implied = len(t) + 1
    else:
        t = None
        implied = n_phases if n_phases is not None else (len(table) if table is not None else None)
        if implied is None:
            raise ValueError("give the number of phases, thresholds or a phase table")
    for what, n in (("number of phases", n_phases), ("phase table", None if table is None else len(table)),
                    ("label values", None if label_values is None else len(label_values))):
        if n is not None and n != implied:
            raise ValueError(f"{what} gives {n} phases but the segmentation has {implied}; make them agree")
    filtered = denoise(arr, denoise_method, denoise_size, nlm_h) if denoise_method else arr
    hist = intensity_histogram(filtered, bins)
    method = "thresholds" if t is not None else "multi-otsu"
    if t is None:
        t = multi_otsu_thresholds(hist, implied)
    classes = classify(filtered, t)
    n_islands = n_changed = 0
    if min_island_voxels and min_island_voxels > 1:
        classes, n_islands, n_changed = remove_islands(classes, int(min_island_voxels), connectivity, implied)
    if table is not None:
        values = tuple(p.label for p in table)
        names = tuple(p.name for p in table)
    else:
        values = tuple(int(v) for v in label_values) if label_values is not None else tuple(range(implied))
        names = None
    if len(set(values)) != len(values) or not all(0 <= v <= 255 for v in values):
        raise ValueError(f"label values {list(values)} must be distinct integers in 0..255")
    lut = np.zeros(256, dtype=np.uint8)
    lut[:implied] = values
    labels = apply_lut(lut, classes)
    counts = intensity_histogram(classes).counts[:implied]
    fractions = tuple(float(c) / classes.size for c in counts)
    return SegmentResult(labels, tuple(t), values, names, method, denoise_method, hist, fractions, n_islands,
                         n_changed, int(min_island_voxels or 0))


def phase_names_of(values, phases: PhaseTable | None) -> dict[int, str | None]:
    """Phase name of each label value (None for values the table does not have).

    >>> t = PhaseTable.from_dict({"pore": {"label": 0}, "NMC": {"label": 85}, "CBD": {"label": 170}})
    >>> phase_names_of([0, 85, 170], t)
    {0: 'pore', 85: 'NMC', 170: 'CBD'}
    """
    names = {} if phases is None else {p.label: p.name for p in phases}
    return {int(v): names.get(int(v)) for v in values}


def class_table(label_values) -> PhaseTable:
    """The phase table ``microsim segment`` writes for classes it made without a table.

    Classes go dark to bright: the darkest is taken for the pore space (it conducts
    ions with sigma 1 S/m), every brighter one for solid (it conducts electrons with
    sigma 1 S/m). So ``conductivity`` of the result gives the pore network's tau by
    default and the solid's with ``--carrier electronic``; edit the table for real
    conductivities or other roles.

    >>> [(p.name, p.label, p.sigma_ionic_S_per_m, p.sigma_electronic_S_per_m) for p in class_table((0, 1))]
    [('pore', 0, 1.0, 0.0), ('solid', 1, 0.0, 1.0)]
    """
    values = [int(v) for v in label_values]
    names = ["pore"] + (["solid"] if len(values) == 2 else [f"solid_{k}" for k in range(1, len(values))])
    return PhaseTable(tuple(Phase(n, v, sigma_ionic_S_per_m=1.0 if k == 0 else 0.0,
                                  sigma_electronic_S_per_m=0.0 if k == 0 else 1.0)
                            for k, (n, v) in enumerate(zip(names, values))))
