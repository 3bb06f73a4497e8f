"""Data-parallel training over MPI (``mpiexec -n N cnnlab train --distributed``).

Horovod's recipe on mpi4py, in one package so that nothing else imports MPI:

* :mod:`.world` -- :func:`join_world` gives a run its processes: this one alone
  (:class:`LocalWorld`, every hook a no-op) or the MPI job (:class:`MPIWorld`):
  rank 0 broadcasts every parameter and buffer, only rank 0 prints and writes
  files, losses and accuracies are reduced over the ranks, errors stop every
  rank (``MPI_Abort`` once training);
* :mod:`.data` -- each rank's contiguous share of every global batch of the
  same seeded order, with per-rank augmentation streams;
* :mod:`.buckets` -- gradients weighted by each rank's sample count and summed
  with ``Allreduce`` on fused contiguous buffers of the parameters' dtype;
* :mod:`.sync_bn` -- BatchNorm statistics over all ranks (``--sync-bn``).

mpi4py is imported only when a run asks for ``--distributed``; importing
cnnlab (or this package) does not import it.
"""
from cnnlab.training.distributed.world import (
    LocalWorld,
    MPIWorld,
    independent_copies_warning,
    join_world,
    launched_by_mpi,
)

__all__ = ["LocalWorld", "MPIWorld", "independent_copies_warning", "join_world", "launched_by_mpi"]
