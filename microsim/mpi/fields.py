"""Potential and current-density fields written to one HDF5 file by all ranks, each its own planes.

The file is created by rank 0 under a temporary name next to the output (see
:func:`microsim.atomic.atomic_path`). The ranks then take turns, in rank
order, to open it and write their hyperslab of each dataset, so no rank ever
holds a whole field and the h5py build needs no MPI support. Only when every
rank has written does rank 0 rename the file to its final name; after any
failure the temporary file is removed and the output name is never created.

Layout: one group per result, ``/ionic/x`` etc., holding ``potential_V``
(nz, ny, nx) float32 (V for 1 V applied between the two faces normal to the
direction, NaN outside the percolating network) and
``current_density_A_per_m2`` (3, nz, ny, nx) float32 (components z, y, x), with
the group's sigma_eff, tau and solver state as attributes; the file's
attributes hold the voxel size in um and the axis order.
"""
from __future__ import annotations

import contextlib
import os

import numpy as np

from ..atomic import atomic_path
from .world import Slab, World


class FieldsFile:
    """An HDF5 output shared by the ranks; use as a context manager on every rank.

    Parameters
    ----------
    world : World
    path : str or Path
        Final name of the file.
    shape : (nz, ny, nx)
        Shape of the whole volume.
    voxel_size_um : (dz, dy, dx)

    Example (every rank)::

        with FieldsFile(world, "fields.h5", shape, voxel_size) as out:
            out.write("ionic/x", "potential_V", local_potential, slab)
    """

    def __init__(self, world: World, path, shape, voxel_size_um):
        self.world, self.path = world, path
        self.shape = tuple(int(n) for n in shape)
        self.voxel_size_um = tuple(float(v) for v in voxel_size_um)
        self._atomic = None
        self.tmp = None

    def __enter__(self):
        import h5py
        from .. import __version__
        with self.world.step():
            if self.world.rank == 0:
                atomic = atomic_path(self.path)
                self.tmp = str(atomic.__enter__())
                self._atomic = atomic
                try:
                    with h5py.File(self.tmp, "w") as f:
                        f.attrs["voxel_size_um"] = np.array(self.voxel_size_um)
                        f.attrs["shape"] = np.array(self.shape)
                        f.attrs["axes"] = "zyx"
                        f.attrs["creator"] = f"microsim {__version__}"
                except BaseException as exc:
                    self._discard(exc)
                    raise
        self.tmp = self.world.comm.bcast(self.tmp, root=0)
        return self

    def write(self, group: str, name: str, local: np.ndarray, slab: Slab, attrs: dict | None = None) -> None:
        """Write this rank's planes of dataset ``group/name`` (collective: every rank calls it).

        ``local`` holds planes ``slab.z0 .. slab.z1-1`` along its axis
        ``local.ndim - 3`` (the leading axis of a vector field is its component).
        """
        import h5py
        world = self.world
        zaxis = local.ndim - 3
        shape = local.shape[:zaxis] + self.shape
        index = (slice(None),) * zaxis + (slice(slab.z0, slab.z1),)
        error = None
        for turn in range(world.size):
            if turn == world.rank:
                try:
                    with h5py.File(self.tmp, "r+") as f:
                        if turn == 0:
                            grp = f.require_group(group)
                            grp.create_dataset(name, shape=shape, dtype=local.dtype)
                            for key, value in (attrs or {}).items():
                                grp.attrs[key] = value
                        f[group][name][index] = local
                except Exception as exc:  # reported to all ranks by the step below
                    error = exc
            world.comm.Barrier()
        with world.step():
            if error is not None:
                raise OSError(f"{self.path}: writing planes {slab.z0}:{slab.z1} of {group}/{name} failed "
                              f"({error}); check the free space and that every rank can write there")

    def note(self, group: str, attrs: dict) -> None:
        """Attributes of a group without datasets (a direction that does not percolate)."""
        import h5py
        with self.world.step():
            if self.world.rank == 0:
                with h5py.File(self.tmp, "r+") as f:
                    grp = f.require_group(group)
                    for key, value in attrs.items():
                        grp.attrs[key] = value

    def _discard(self, exc: BaseException) -> None:
        if self._atomic is not None:
            atomic, self._atomic = self._atomic, None
            atomic.__exit__(type(exc), exc, exc.__traceback__)  # removes the temporary file

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self._discard(exc)
            if self.tmp is not None:
                # A failure on this rank alone ends the job by MPI abort, before rank 0
                # could clean up: whichever rank fails removes the temporary file.
                with contextlib.suppress(OSError):
                    os.unlink(self.tmp)
            return False
        with self.world.step():
            if self._atomic is not None:
                atomic, self._atomic = self._atomic, None
                atomic.__exit__(None, None, None)  # renames onto the final name
        return False
