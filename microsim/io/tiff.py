"""Multi-page TIFF stacks (classic and BigTIFF, ImageJ and OME metadata), read and written.

Reading picks the cheapest way the file allows: uncompressed contiguous data
is memory-mapped a few planes at a time; otherwise each page (z plane) is
decoded on its own, so a crop in z decodes only the pages it needs.

Voxel size comes from OME-XML (PhysicalSizeX/Y/Z) or from ImageJ metadata
(resolution tags plus ``unit`` and ``spacing``). The resolution tags of a plain
TIFF are a print resolution (72 dpi by default) and are ignored, as is an ImageJ
calibration in inches. Files written by microsim also keep the exact voxel
size, the phase table and the provenance as ImageJ properties, because the TIFF
resolution is a ratio of two 32-bit integers and would round the voxel size.
"""
from __future__ import annotations

import contextlib
import json
import logging
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from .errors import VolumeReadError, one_line
from .metadata import length_to_um, normalise_unit, phases_from_json, phases_to_json, provenance_from_json, \
    provenance_to_json
from .raw import ContiguousBlock
from .stack import StackInfo, StackReader, native

_IMAGEJ_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.float32))
_DAMAGE = re.compile(r"offset|reshape|corrupt|truncat|invalid", re.IGNORECASE)


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(" ".join(record.getMessage().split()))


@contextlib.contextmanager
def tifffile_warnings():
    """Collect tifffile's log warnings instead of printing them; a damaged file shows up here."""
    logger = logging.getLogger("tifffile")
    handler = _Collect()
    logger.addHandler(handler)
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)


def check_damage(path, messages) -> None:
    """Raise when tifffile warned about offsets or shapes that point past the end of the file."""
    bad = [re.sub(r"<[^>]*>\s*", "", m) for m in messages if _DAMAGE.search(m)]
    if bad:
        try:
            size = f", file has {Path(path).stat().st_size} bytes"
        except OSError:
            size = ""
        raise VolumeReadError(f"{path}: TIFF file is truncated or damaged ({bad[0]}{size}); copy or export it again")


def _ome_voxel_size(xml_text: str):
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError:
        return None
    pixels = next((el for el in root.iter() if el.tag.rsplit("}", 1)[-1] == "Pixels"), None)
    if pixels is None:
        return None
    out = []
    for axis in ("Z", "Y", "X"):
        value = pixels.get(f"PhysicalSize{axis}")
        unit = pixels.get(f"PhysicalSize{axis}Unit", "\u00b5m")  # the OME schema's default unit
        out.append(None if value is None else length_to_um(value, unit))
    return tuple(out) if any(v is not None for v in out) else None


def _rational(tag) -> float | None:
    try:
        num, den = tag.value
        return den / num if num else None
    except (TypeError, ValueError, AttributeError):
        return None


def tiff_metadata(tif, page) -> dict:
    """Voxel size (with its source and notes), phase table and provenance of an open TiffFile."""
    notes = []
    ij = tif.imagej_metadata or {}
    props = ij.get("Properties") or {}
    stored = None
    if "microsim_voxel_size_um" in props:
        try:
            stored = tuple(float(v) for v in json.loads(props["microsim_voxel_size_um"]))
        except (ValueError, TypeError):
            stored = None
    vs, source = None, "not in the file"
    if tif.is_ome and tif.ome_metadata:
        vs = _ome_voxel_size(tif.ome_metadata)
        source = "OME-XML" if vs else source
    elif ij:
        unit = ij.get("unit")
        xr = _rational(page.tags.get("XResolution")) if "XResolution" in page.tags else None
        yr = _rational(page.tags.get("YResolution")) if "YResolution" in page.tags else None
        if unit is None or normalise_unit(unit) in ("pixel", "pixels", ""):
            notes.append("ImageJ metadata has no length unit")
        elif length_to_um(1, unit) is None:
            notes.append(f"ImageJ calibration in {unit!r} is not a voxel size and is ignored")
        else:
            dx = None if xr is None else length_to_um(xr, unit)
            dy = None if yr is None else length_to_um(yr, unit)
            if ij.get("spacing"):
                dz = length_to_um(ij["spacing"], unit)
            elif int(ij.get("images", 1)) > 1:
                dz = length_to_um(1.0, unit)  # ImageJ leaves out spacing=1 from a stack's description
            else:
                dz = None  # a single image says nothing about the distance to the next one
            if dx is not None or dy is not None or dz is not None:
                vs, source = (dz, dy, dx), "ImageJ metadata"
    elif "XResolution" in page.tags:
        notes.append("TIFF resolution tags are a print resolution and are ignored")
    if stored is not None and len(stored) == 3:
        # The exact value written by microsim wins unless the calibration was changed since.
        agree = vs is None or all(a is None or abs(a - b) <= 1e-6 * b for a, b in zip(vs, stored))
        if agree:
            vs, source = stored, ("ImageJ metadata" if vs is not None else "microsim metadata")
        else:
            notes.append("stored microsim voxel size differs from the ImageJ calibration; using the calibration")
    phases = None
    if "microsim_phases" in props:
        phases = phases_from_json(props["microsim_phases"], str(tif.filehandle.path))
    provenance = provenance_from_json(props["microsim_provenance"]) if "microsim_provenance" in props else ()
    if vs is not None and all(v is None for v in vs):
        vs = None
    return {"voxel_size_um": vs, "source": source, "notes": tuple(notes), "phases": phases, "provenance": provenance}


def open_tiff(path: Path):
    """Open a TiffFile, turning every failure into a one-line :class:`VolumeReadError`."""
    import tifffile
    with tifffile_warnings() as messages:
        try:
            tif = tifffile.TiffFile(path)
        except Exception as exc:  # tifffile raises many types for damaged headers
            raise VolumeReadError(f"{path}: not a readable TIFF file ({one_line(exc)}); "
                                  "check that it is complete") from None
        try:
            series = tif.series
            _ = [s.shape for s in series]
        except Exception as exc:
            tif.close()
            raise VolumeReadError(f"{path}: TIFF file is damaged ({one_line(exc)}); copy or export it again") from None
    try:
        check_damage(path, messages)
    except VolumeReadError:
        tif.close()
        raise
    return tif


class TiffReader(StackReader):
    """A multi-page TIFF, one z plane per page."""

    def __init__(self, path: Path):
        self.path = path
        self.size = path.stat().st_size
        tif = self.tif = open_tiff(path)
        try:
            self._setup()
        except BaseException:
            tif.close()
            raise

    def _setup(self):
        path, tif = self.path, self.tif
        if not tif.series:
            raise VolumeReadError(f"{path}: TIFF file holds no image; check the file")
        s = self.series = tif.series[0]
        shape, axes = tuple(s.shape), s.axes
        if axes.endswith("S") and shape[-1] == 1:  # one sample per pixel stored as an axis
            shape, axes = shape[:-1], axes[:-1]
        lead = [n for n in shape[:-2] if n != 1]
        if not axes.endswith("YX") or len(lead) > 1:
            hint = ("; its last axis holds colour samples (a volume saved with tifffile needs "
                    "photometric='minisblack')" if axes.endswith("S") else "")
            raise VolumeReadError(f"{path}: image has shape {s.shape} (axes {s.axes}); microsim needs one 3D "
                                  f"single-channel stack (z, y, x); extract one channel or time point first{hint}")
        if not lead:
            raise VolumeReadError(f"{path}: a single 2D image of {shape[-2]} x {shape[-1]} pixels; a volume "
                                  "needs a stack: give a multi-page TIFF, a folder of slices or a glob 'dir/*.tif'")
        dims = [lead[0], shape[-2], shape[-1]]
        dtype = np.dtype(s.dtype)
        if dtype.kind not in "biuf":
            raise VolumeReadError(f"{path}: pixel type {dtype} is not an integer, bool or float type")
        shape = tuple(dims)
        key = s.keyframe
        self.mode = "pages"
        self.block = None
        self._whole = None
        contiguous = s.dataoffset is not None and key.compression == 1 and dtype.kind != "b" \
            and key.bitspersample == dtype.itemsize * 8 and key.fillorder == 1
        if contiguous:
            end = s.dataoffset + int(np.prod(shape)) * dtype.itemsize
            if end > self.size:
                raise VolumeReadError(f"{path}: TIFF file is truncated: image data ends at byte {end} but the file "
                                      f"has {self.size} bytes; copy or export it again")
            self.mode = "memmap"
            self.block = ContiguousBlock(path, s.dataoffset, shape, dtype.newbyteorder(tif.byteorder))
        elif len(s.pages) != shape[0] or tuple(key.shape[-2:]) != shape[1:] or key.size != shape[1] * shape[2]:
            self.mode = "whole"  # e.g. a volume stored as the samples of one page
        if self.mode == "pages":
            self._check_page(len(s.pages) - 1)
        meta = tiff_metadata(tif, tif.pages[0])
        kind = "ome-tiff" if tif.is_ome else "imagej-tiff" if tif.is_imagej else "tiff"
        notes = meta["notes"] + (("read whole: the pages do not map one to one onto z planes",)
                                 if self.mode == "whole" else ())
        self.info = StackInfo(str(path), kind, shape, dtype.name, meta["voxel_size_um"], meta["source"],
                              meta["phases"], meta["provenance"],
                              byte_order={"<": "little", ">": "big"}[tif.byteorder] if dtype.itemsize > 1 else "n/a",
                              compression=None if key.compression == 1 else key.compression.name.lower(),
                              memory_mapped=self.mode == "memmap", notes=notes)

    def _check_page(self, index: int):
        page = self.series.pages[index]
        ends = [o + c for o, c in zip(page.dataoffsets, page.databytecounts)]
        if ends and max(ends) > self.size:
            raise VolumeReadError(f"{self.path}: TIFF file is truncated: page {index} needs bytes up to {max(ends)} "
                                  f"but the file has {self.size}; copy or export it again")

    def read(self, z, y, x):
        if self.mode == "memmap":
            return self.block.read(z, y, x)
        if self.mode == "whole":
            if self._whole is None:
                self._whole = self.series.asarray().reshape(self.info.shape)
            return native(np.array(self._whole[z, y, x]))
        planes = []
        for k in range(*z.indices(self.info.shape[0])):
            self._check_page(k)
            with tifffile_warnings() as messages:
                try:
                    data = self.series.pages[k].asarray(maxworkers=1)
                except Exception as exc:
                    raise VolumeReadError(f"{self.path}: page {k} cannot be decoded ({one_line(exc)}); "
                                          "the file is damaged, copy or export it again") from None
            check_damage(self.path, messages)
            planes.append(data.reshape(self.info.shape[1:])[y, x])
        return native(np.stack(planes))

    def close(self):
        self.tif.close()


def imagej_kwargs(arr: np.ndarray, voxel_size_um, phases, provenance) -> dict:
    """Keyword arguments of ``tifffile.imwrite`` for an ImageJ stack with microsim properties."""
    props = {"microsim_provenance": provenance_to_json(provenance)}
    metadata = {"axes": "ZYX" if arr.ndim == 3 else "YX"}
    kw = {"imagej": True, "photometric": "minisblack"}
    if voxel_size_um is not None:
        dz, dy, dx = (float(v) for v in voxel_size_um)
        metadata.update(unit="micron", spacing=dz)
        kw["resolution"] = (1.0 / dx, 1.0 / dy)
        props["microsim_voxel_size_um"] = json.dumps([dz, dy, dx])
    if phases is not None:
        props["microsim_phases"] = phases_to_json(phases)
    metadata["Properties"] = props
    kw["metadata"] = metadata
    return kw


def write_tiff(path, array: np.ndarray, voxel_size_um=None, phases=None, provenance=(),
               compression: str | None = None) -> Path:
    """Write a 3D array as a multi-page TIFF through a temporary file.

    uint8, uint16 and float32 arrays (and bool, stored as uint8) become ImageJ
    stacks that Fiji opens with the right voxel size (unit micron, ``spacing`` =
    dz); the exact voxel size, the phase table and the provenance are kept as
    ImageJ properties. Other types are written as OME-TIFF with physical sizes.
    ``compression`` is None (memory-mappable on reading) or e.g. 'zlib'.
    """
    import tifffile
    path = Path(path)
    arr = np.ascontiguousarray(array)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    big = arr.nbytes > 2**32 - 2**26
    if arr.dtype in _IMAGEJ_DTYPES and not big:
        kw = imagej_kwargs(arr, voxel_size_um, phases, provenance)
    else:
        meta = {"axes": "ZYX"}
        if voxel_size_um is not None:
            for axis, v in zip("ZYX", voxel_size_um):
                meta[f"PhysicalSize{axis}"] = float(v)
                meta[f"PhysicalSize{axis}Unit"] = "\u00b5m"
        kw = {"ome": True, "photometric": "minisblack", "metadata": meta, "bigtiff": big}
    if compression:
        kw["compression"] = compression
    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, arr, **kw)
    return path
