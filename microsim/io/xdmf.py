"""XDMF sidecars: the few lines of XML that let ParaView open an HDF5 volume directly.

The volume is described as a 3DCoRectMesh with cell data. XDMF lists the
topology dimensions, the origin and the spacing slowest axis first, i.e. in
(z, y, x) order like the numpy array; ParaView's reader reverses them into its
(x, y, z). The topology counts points, one more than cells along each axis.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

# XDMF NumberType and Precision of each numpy kind/size
_TYPES = {
    ("u", 1): ("UChar", 1), ("i", 1): ("Char", 1),
    ("u", 2): ("UShort", 2), ("i", 2): ("Short", 2),
    ("u", 4): ("UInt", 4), ("i", 4): ("Int", 4),
    ("u", 8): ("UInt", 8), ("i", 8): ("Int", 8),
    ("f", 4): ("Float", 4), ("f", 8): ("Float", 8),
}


def xdmf_path(h5_path) -> Path:
    """``volume.h5`` -> ``volume.xdmf``."""
    return Path(h5_path).with_suffix(".xdmf")


def xdmf_text(h5_name: str, dataset: str, shape, dtype, voxel_size_um=None, name: str | None = None) -> str:
    """XML of an XDMF file for a (z, y, x) cell-centred dataset of an HDF5 file.

    Parameters
    ----------
    h5_name : str
        File name of the HDF5 file as the XDMF file should refer to it (relative to the
        XDMF file, normally just the name).
    dataset : str
        Dataset path inside the HDF5 file.
    shape, dtype : shape and numpy dtype of the dataset
    voxel_size_um : (dz, dy, dx) or None
        Spacing in micrometres (1 when unknown).

    >>> "3DCoRectMesh" in xdmf_text("v.h5", "/labels", (2, 3, 4), np.uint8, (1, 1, 1))
    True
    """
    return xdmf_grid_text(h5_name, [(dataset.strip("/").split("/")[-1] or "volume", dataset, dtype)], shape,
                          voxel_size_um, name or dataset.strip("/").replace("/", "_") or "volume")


def xdmf_grid_text(h5_name: str, attributes, shape, voxel_size_um=None, name: str = "volume") -> str:
    """XML of an XDMF file for several cell-centred datasets of one (z, y, x) grid in an HDF5 file.

    ``attributes`` holds ``(attribute name, dataset path, dtype)`` per dataset;
    ParaView shows each as a cell array of the same grid.

    >>> text = xdmf_grid_text("f.h5", [("labels", "/labels", np.uint8), ("phi", "/phi", np.float32)], (2, 3, 4))
    >>> text.count("<Attribute ")
    2
    """
    spacing = (1.0, 1.0, 1.0) if voxel_size_um is None else tuple(float(v) for v in voxel_size_um)
    root = ET.Element("Xdmf", Version="3.0")
    domain = ET.SubElement(root, "Domain")
    grid = ET.SubElement(domain, "Grid", Name=name, GridType="Uniform")
    ET.SubElement(grid, "Topology", TopologyType="3DCoRectMesh", Dimensions=" ".join(str(n + 1) for n in shape))
    geometry = ET.SubElement(grid, "Geometry", GeometryType="ORIGIN_DXDYDZ")
    origin = ET.SubElement(geometry, "DataItem", Name="Origin", Dimensions="3", NumberType="Float", Precision="8",
                           Format="XML")
    origin.text = "0 0 0"
    step = ET.SubElement(geometry, "DataItem", Name="Spacing", Dimensions="3", NumberType="Float", Precision="8",
                         Format="XML")
    step.text = " ".join(repr(v) for v in spacing)
    for attr_name, dataset, dtype in attributes:
        dt = np.dtype(dtype)
        if (dt.kind, dt.itemsize) not in _TYPES:
            raise ValueError(f"dtype {dt} has no XDMF number type")
        number_type, precision = _TYPES[(dt.kind, dt.itemsize)]
        attribute = ET.SubElement(grid, "Attribute", Name=attr_name, AttributeType="Scalar", Center="Cell")
        item = ET.SubElement(attribute, "DataItem", Dimensions=" ".join(str(n) for n in shape),
                             NumberType=number_type, Precision=str(precision), Format="HDF")
        item.text = f"{h5_name}:{dataset}"
    ET.indent(root)
    return '<?xml version="1.0" ?>\n' + ET.tostring(root, encoding="unicode") + "\n"
