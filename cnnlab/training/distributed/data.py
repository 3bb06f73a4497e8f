"""Each rank's share of every global batch.

Every rank walks the same global order, ``DataLoader.order(epoch)`` (a function
of the seed and the epoch only), cuts it into global batches of
``batch_size``, and takes a contiguous share of each: rank r of N gets samples
``[r m // N, (r + 1) m // N)`` of a batch of m, so the shares are disjoint,
cover the batch, and differ in size by at most one.

Random augmentation draws from a per-rank stream: batch b of epoch e on rank r
uses ``default_rng([seed, e, b, 1, r])`` (the one-process stream is
``[seed, e, b, 1]``), so a run is reproducible for a given number of ranks.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

from cnnlab.autograd.tensor import Tensor
from cnnlab.data import DataLoader


def share_bounds(m: int, rank: int, size: int) -> tuple[int, int]:
    """[lo, hi) of rank ``rank``'s contiguous share of a batch of ``m`` samples."""
    return rank * m // size, (rank + 1) * m // size


class ShardedLoader(DataLoader):
    """The share of rank ``rank`` of ``size`` of every batch ``base`` would yield.

    ``len()`` counts global batches.  In training every rank takes part in
    every step's Allreduce, so each needs a sample of every batch: a final
    batch with fewer samples than ranks is left out (``dropped`` says how many
    samples that is; the run reports it).  For evaluation (``training=False``)
    nothing is left out: a rank whose share of a batch is empty skips it
    (``samples`` counts a rank's share of the whole set).  ``whole`` is ``base``.
    """

    def __init__(self, base: DataLoader, rank: int, size: int, training: bool = True) -> None:
        super().__init__(base.dataset, base.batch_size, shuffle=base.shuffle, seed=base.seed,
                         drop_last=base.drop_last, transform=base.transform)
        if training and base.batch_size < size:
            raise ValueError(f"batch size {base.batch_size} is smaller than the {size} ranks: "
                             "every rank needs at least one sample of each batch (the batch "
                             "size is the global one)")
        self.epoch = base.epoch
        self.rank, self.size, self.whole = rank, size, base
        last = len(self.dataset) % self.batch_size
        self.training = training
        self.dropped = last if (training and not self.drop_last and 0 < last < size) else 0

    def __len__(self) -> int:
        return super().__len__() - (1 if self.dropped else 0)

    def batch_rng(self, epoch: int, batch_index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, int(epoch), int(batch_index), 1, self.rank])

    def _batches(self, order: np.ndarray, epoch: int) -> Iterator[tuple[Tensor, Tensor]]:
        bs = self.batch_size
        for b in range(len(self)):
            idx = order[b * bs:(b + 1) * bs]
            lo, hi = share_bounds(len(idx), self.rank, self.size)
            if hi > lo:
                yield self._batch(idx[lo:hi], epoch, b)

    @property
    def samples(self) -> int:
        """The number of samples this rank's shares hold in one pass."""
        n, bs = len(self.dataset), self.batch_size
        return sum(hi - lo for lo, hi in (share_bounds(min(bs, n - b * bs), self.rank, self.size)
                                          for b in range(len(self))))
