"""The processes a run trains on: one (:class:`LocalWorld`) or an MPI job (:class:`MPIWorld`).

A run asks its world at a few fixed points (see :func:`cnnlab.training.run.fit`):
``seed`` and ``prepare`` before the first epoch, ``begin_epoch``, the gradient
hook after every backward pass, ``end_training`` and ``reduce`` after each
epoch's training and evaluation, ``is_writer`` before writing a file.  For one
process every answer is "as before"; the MPI world implements Horovod's recipe.
"""
from __future__ import annotations

import os
import sys
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

import cnnlab
from cnnlab.nn.module import Module
from cnnlab.training.config import ConfigError
from cnnlab.training.loop import EpochResult

# (size, rank) variables the common launchers set in every process they start.
LAUNCHER_VARIABLES = (("OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK"),   # Open MPI
                      ("PMI_SIZE", "PMI_RANK"),                           # MPICH, Intel MPI, srun --mpi=pmi2
                      ("MV2_COMM_WORLD_SIZE", "MV2_COMM_WORLD_RANK"))     # MVAPICH


def launched_by_mpi(environ: dict[str, str] | None = None) -> tuple[int, int] | None:
    """(rank, size) when an MPI launcher started this process among others, else None."""
    env = os.environ if environ is None else environ
    for size_var, rank_var in LAUNCHER_VARIABLES:
        try:
            size, rank = int(env[size_var]), int(env.get(rank_var, "0"))
        except (KeyError, ValueError):
            continue
        if size > 1:
            return rank, size
    return None


def independent_copies_warning(rank: int, size: int) -> str:
    return (f"cnnlab train: warning: this is process {rank} of {size} started by mpiexec, but "
            f"--distributed is not set, so mpiexec is running {size} independent copies of the same "
            "training (each on all the data, each writing its run folder). To train one model "
            f"data-parallel on the {size} processes, add --distributed: "
            "mpiexec -n N cnnlab train --distributed ...")


class LocalWorld:
    """One process: every hook leaves the run as it is."""

    rank, size = 0, 1
    is_writer = True

    def agree_path(self, out: Path) -> Path:
        return out

    def reporter(self, report: Callable[[str], None]) -> Callable[[str], None]:
        return report

    @contextmanager
    def guard(self) -> Iterator[None]:
        yield

    def setup_done(self) -> None:
        pass

    def seed(self, seed: int) -> None:
        cnnlab.manual_seed(seed)

    def prepare(self, run: Any, report: Callable[[str], None]) -> None:
        pass

    def begin_epoch(self, epoch: int) -> None:
        pass

    def gradient_hook(self) -> Callable[[int], int] | None:
        return None

    def end_training(self, run: Any) -> None:
        pass

    def reduce(self, result: EpochResult) -> EpochResult:
        return result


class _PeerFailed(SystemExit):
    """Another rank failed while setting up and printed why; leave quietly."""


class MPIWorld(LocalWorld):
    """The processes of ``MPI.COMM_WORLD``, training one model data-parallel.

    Parameters
    ----------
    bucket_mb : float
        The largest fused gradient buffer, in MiB.
    """

    def __init__(self, bucket_mb: float) -> None:
        try:
            from mpi4py import MPI
        except ImportError as e:
            raise ConfigError("distributed training needs mpi4py and an MPI library: "
                              "pip install -e '.[distributed]'", "distributed") from e
        self.MPI, self.comm = MPI, MPI.COMM_WORLD
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.is_writer = self.rank == 0
        self.bucket_bytes = max(1, int(bucket_mb * 2 ** 20))
        self.library = MPI.Get_library_version().split(",")[0].strip()
        self.buckets = None
        self._setting_up = True
        self._seed = 0
        self.threads = self._share_cores()

    # ---------------------------------------------------------------- start
    def _share_cores(self) -> int:
        """Ranks on one machine split its cores (unless CNNLAB_NUM_THREADS says otherwise)."""
        local = self.comm.Split_type(self.MPI.COMM_TYPE_SHARED).Get_size()
        if os.environ.get("CNNLAB_NUM_THREADS"):
            return cnnlab.get_num_threads()
        n = max(1, (os.cpu_count() or 1) // local)
        cnnlab.set_num_threads(n)
        try:
            from threadpoolctl import threadpool_limits
            self._blas_limits = threadpool_limits(limits=n, user_api="blas")
        except ImportError:
            pass
        return n

    def agree_path(self, out: Path) -> Path:
        """Rank 0's run folder (absolute), on every rank (once each has set up so far)."""
        self.check_peers()
        data = np.frombuffer(str(Path(out).absolute()).encode("utf-8"), dtype=np.uint8)
        n = np.array([data.size], dtype=np.int64)
        self.comm.Bcast(n, root=0)
        buf = data.copy() if self.rank == 0 else np.empty(int(n[0]), dtype=np.uint8)
        self.comm.Bcast(buf, root=0)
        return Path(buf.tobytes().decode("utf-8"))

    def reporter(self, report: Callable[[str], None]) -> Callable[[str], None]:
        return report if self.is_writer else (lambda line: None)

    # --------------------------------------------------------------- faults
    def _first_failed(self, mine: int) -> int:
        v = np.array([mine], dtype=np.int64)
        self.comm.Allreduce(self.MPI.IN_PLACE, v, op=self.MPI.MIN)
        return int(v[0])

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Errors end every rank.  While setting up (config, data, model, run
        folder: the same on every rank) the lowest failing rank raises it as in
        one process and the others exit with 2 quietly; once training, a rank
        that fails prints its error and calls ``MPI_Abort``, which ends the job."""
        try:
            yield
        except Exception as e:
            if self._setting_up:
                self._setting_up = False
                if self._first_failed(self.rank) == self.rank:
                    raise
                raise _PeerFailed(2) from e
            self.abort(e)

    def check_peers(self) -> None:
        """While setting up, before a collective call: if a rank failed, leave
        (it says why).  A failing rank's :meth:`guard` meets this same call."""
        if self._first_failed(self.size) < self.size:
            self._setting_up = False
            raise _PeerFailed(2)

    def setup_done(self) -> None:
        """Every rank has set up (or one failed: leave); errors from now on abort the job."""
        self.check_peers()
        self._setting_up = False

    def abort(self, error: BaseException) -> None:
        if isinstance(error, (ValueError, OSError, FloatingPointError)):
            message = f"{type(error).__name__}: {error}"
        else:
            message = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        print(f"cnnlab train: error on rank {self.rank} of {self.size}: {message}\n"
              "cnnlab train: stopping every rank (MPI_Abort); the checkpoints of completed "
              "epochs are intact (continue with --resume)", file=sys.stderr, flush=True)
        self.comm.Abort(1)

    # ------------------------------------------------------------- training
    def seed(self, seed: int) -> None:
        """Rank 0 seeds as one process would; the others differently (the
        broadcast in :meth:`prepare` then gives every rank rank 0's weights)."""
        self._seed = seed
        cnnlab.manual_seed(seed if self.rank == 0 else _derived_seed(seed, "init", self.rank))

    def prepare(self, run: Any, report: Callable[[str], None]) -> None:
        """Shard the loaders, synchronise BatchNorm if asked, broadcast rank 0's
        parameters and buffers, and plan the gradient buckets."""
        from cnnlab.training.distributed.buckets import GradientBuckets
        from cnnlab.training.distributed.data import ShardedLoader
        from cnnlab.training.distributed.sync_bn import convert_sync_batchnorm
        from cnnlab.training.transfer import trained_batchnorms

        data, cfg, model = run.data, run.cfg, run.model
        data.train_loader = ShardedLoader(data.train_loader, self.rank, self.size)
        data.test_loader = ShardedLoader(data.test_loader, self.rank, self.size, training=False)
        if data.val_loader is not None:
            data.val_loader = ShardedLoader(data.val_loader, self.rank, self.size, training=False)
        synced = convert_sync_batchnorm(model, self.comm, run.frozen_bn) if cfg.sync_bn else 0
        self.local_bn = [] if cfg.sync_bn else trained_batchnorms(model, run.frozen_bn)
        self.broadcast(model)
        self.buckets = GradientBuckets([p for p in model.parameters() if p.requires_grad],
                                       self.bucket_bytes, self.comm)
        report(self.describe(cfg, synced))
        if data.train_loader.dropped:
            report(f"the last batch of each epoch ({data.train_loader.dropped} samples, fewer than "
                   f"the {self.size} ranks) is left out")

    def describe(self, cfg: Any, synced: int) -> str:
        b = self.buckets
        values = sum(bk.size for bk in b.buckets)
        dtypes = "/".join(sorted({bk.dtype.name for bk in b.buckets})) or "no"
        bn = (f"; BatchNorm: {synced} layers synchronised over the ranks" if synced else
              f"; BatchNorm: {len(self.local_bn)} layers normalise each rank's share, running "
              "statistics averaged over the ranks every epoch" if self.local_bn else "")
        threads = f"{self.threads} thread{'s' if self.threads != 1 else ''} each"
        return (f"distributed: {self.size} ranks ({self.library}, {threads}), "
                f"each takes its share of every global batch of {cfg.batch_size}; gradients: "
                f"{values:,} {dtypes} values ({b.nbytes / 2 ** 10:,.0f} KiB) in {len(b.buckets)} "
                f"Allreduce bucket{'s' if len(b.buckets) != 1 else ''} of <= "
                f"{self.bucket_bytes / 2 ** 20:g} MiB{bn}")

    def broadcast(self, model: Module) -> None:
        """Every parameter and buffer of ``model`` takes rank 0's values."""
        arrays = [p.data for p in model.parameters()] + list(model.buffers())
        for a in arrays:
            buf = a if a.flags.c_contiguous else np.ascontiguousarray(a)
            self.comm.Bcast(buf, root=0)
            if buf is not a:
                a[...] = buf

    def begin_epoch(self, epoch: int) -> None:
        """Dropout and the model's other random draws: a stream per rank and
        epoch, ``[seed, epoch, rank]``, so a resumed run draws the same."""
        cnnlab.manual_seed(_derived_seed(self._seed, "epoch", epoch, self.rank))

    def gradient_hook(self) -> Callable[[int], int]:
        return self.buckets.allreduce

    def end_training(self, run: Any) -> None:
        """Without sync BN: average the running statistics over the ranks."""
        arrays = [m._buffers[k] for m in self.local_bn for k in ("running_mean", "running_var")
                  if m._buffers.get(k) is not None]
        if not arrays:
            return
        flat = np.concatenate([a.astype(np.float64).ravel() for a in arrays])
        self.comm.Allreduce(self.MPI.IN_PLACE, flat, op=self.MPI.SUM)
        flat /= self.size
        offset = 0
        for a in arrays:
            a[...] = flat[offset:offset + a.size].reshape(a.shape)
            offset += a.size

    def reduce(self, result: EpochResult) -> EpochResult:
        """A rank's loss and accuracy over its shard -> those over every rank's."""
        s = np.array([result.loss * result.count, round(result.accuracy * result.count),
                      result.count], dtype=np.float64)
        self.comm.Allreduce(self.MPI.IN_PLACE, s, op=self.MPI.SUM)
        return EpochResult(float(s[0] / s[2]), int(s[1]) / int(s[2]), int(s[2]))


def _derived_seed(seed: int, *parts: Any) -> int:
    words = [seed] + [sum(map(ord, p)) if isinstance(p, str) else int(p) for p in parts]
    return int(np.random.SeedSequence(words).generate_state(1)[0])


def join_world(distributed: bool, bucket_mb: float) -> LocalWorld:
    """The MPI job when ``distributed``, else this process alone (warning when
    an MPI launcher started it among others)."""
    if distributed:
        return MPIWorld(bucket_mb)
    launched = launched_by_mpi()
    if launched is not None:   # every copy says so: any of them may be the one a user reads
        print(independent_copies_warning(*launched), file=sys.stderr, flush=True)
    return LocalWorld()
