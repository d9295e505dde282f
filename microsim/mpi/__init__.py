"""The conductivity solver on the ranks of an MPI run, for volumes larger than one node's memory.

The volume is cut into slabs of z planes, one per rank (:mod:`.slabs`); each
rank reads only its slab from the file. Percolation is decided per slab and
merged across slab boundaries on rank 0 (:mod:`.percolation`); the potential
is solved by conjugate gradients whose stencil applications exchange halo
planes with the neighbouring ranks (:mod:`.solver`), with the unchanged
kernels of :mod:`kernels.fv`; fields are written to one HDF5 file, each rank
its own planes (:mod:`.fields`). mpi4py is imported only when a
:class:`World` is created, so importing this package costs nothing without it.

Run it as ``mpiexec -n N microsim conductivity VOLUME ... --distributed`` or, in
Python, call :func:`distributed_conductivity` on every rank.
"""
from .conductivity import DistributedResult, distributed_conductivity
from .fields import FieldsFile
from .percolation import slab_percolation
from .slabs import DecompositionError, read_slab, slab_bounds
from .solver import SlabOperator, slab_discretisation, solve_slab_potential
from .world import MPIUnavailableError, RanksFailed, Slab, World, launched_ranks, run_ranks

__all__ = ["DecompositionError", "DistributedResult", "FieldsFile", "MPIUnavailableError", "RanksFailed", "Slab",
           "SlabOperator", "World", "distributed_conductivity", "launched_ranks", "read_slab", "run_ranks",
           "slab_bounds", "slab_discretisation", "slab_percolation", "solve_slab_potential"]
