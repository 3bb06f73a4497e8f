"""``DataLoader``: reproducible mini-batches as Tensors.

Reproducibility rule: with ``shuffle=True`` the order of epoch ``e`` is
``np.random.default_rng([seed, e]).permutation(len(dataset))`` -- a function
of ``(seed, e)`` only.  ``e`` is :attr:`DataLoader.epoch`, which counts how
many times the loader has been iterated (it is incremented when ``iter()`` is
called) and can be set, so a run resumed at epoch ``k`` (``loader.epoch = k``
or ``loader.set_epoch(k)``) sees exactly the batches of an uninterrupted run.

The same holds for random augmentation: a ``transform`` with the attribute
``random = True`` (see :mod:`cnnlab.data.augment`; a ``Compose`` holding one)
is called as ``transform(x, rng=loader.batch_rng(e, b))`` for batch ``b`` of
epoch ``e``, a generator seeded with ``[seed, e, b, 1]``.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from cnnlab.autograd.tensor import Tensor

__all__ = ["DataLoader"]


class DataLoader:
    """Iterate over a dataset in mini-batches of ``(Tensor x, Tensor y)``.

    Parameters
    ----------
    dataset : ArrayDataset or any object with ``__len__`` and ``__getitem__``
        When it exposes ndarray attributes ``x`` and ``y`` (as
        :class:`~cnnlab.data.datasets.ArrayDataset` does), each batch is one
        fancy-index ``dataset.x[idx]``, ``dataset.y[idx]``; otherwise the
        samples ``dataset[i] -> (x_i, y_i)`` are stacked.
    batch_size : int
        Positive.  The last batch may be smaller unless ``drop_last``.
    shuffle : bool
        Draw a new permutation every epoch (see the module docstring).
    seed : int, optional
        Non-negative seed of the shuffling.  ``None`` draws one from OS
        entropy at construction; it is then available as ``loader.seed``.
    drop_last : bool
        Drop the final incomplete batch.
    transform : callable ``ndarray -> ndarray``, optional
        Applied to each batch's ``x`` array (B, C, H, W) before wrapping.
        If it has ``random = True`` it also gets ``rng=batch_rng(epoch, b)``.

    Yields
    ------
    x : Tensor, shape (B, C, H, W)
        float32 (a floating dataset keeps its dtype, e.g. float64; other
        dtypes are converted to float32).  A fresh array, never a view of
        the dataset.
    y : Tensor, shape (B,)
        int64 for integer labels (other dtypes are left unchanged).

    Attributes
    ----------
    epoch : int
        Index of the next epoch; ``iter(loader)`` uses it and then adds one.
    """

    def __init__(self, dataset: Any, batch_size: int = 1, shuffle: bool = False,
                 seed: int | None = None, drop_last: bool = False,
                 transform: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
            raise TypeError(f"DataLoader: batch_size must be a positive int, "
                            f"got {batch_size!r} of type {type(batch_size).__name__}")
        if batch_size <= 0:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size}")
        if seed is None:
            seed = int(np.random.SeedSequence().entropy)  # type: ignore[arg-type]
        elif isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"DataLoader: seed must be a non-negative int or None, got {seed!r}")
        if transform is not None and not callable(transform):
            raise TypeError(f"DataLoader: transform must be callable, got {transform!r}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.transform = transform
        self._epoch = 0

    # ----------------------------------------------------------------- epoch
    @property
    def epoch(self) -> int:
        """Index of the next epoch (the number of completed ``iter()`` calls)."""
        return self._epoch

    @epoch.setter
    def epoch(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"DataLoader: epoch must be a non-negative int, got {value!r}")
        self._epoch = int(value)

    def set_epoch(self, epoch: int) -> None:
        """Make the next ``iter()`` produce the order of epoch ``epoch``."""
        self.epoch = epoch

    # ------------------------------------------------------------- iteration
    def __len__(self) -> int:
        n = len(self.dataset)
        if self.drop_last:
            return n // self.batch_size
        return math.ceil(n / self.batch_size)

    def order(self, epoch: int) -> np.ndarray:
        """The sample indices, in visiting order, of epoch ``epoch``.

        Returns
        -------
        np.ndarray of int64, shape (len(dataset),)
            ``arange`` without shuffling, otherwise the permutation drawn
            from ``default_rng([seed, epoch])``.
        """
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n, dtype=np.int64)
        return np.random.default_rng([self.seed, int(epoch)]).permutation(n)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        # Not a generator function: the epoch is consumed as soon as iter() is
        # called, even if the caller stops early.
        epoch = self._epoch
        order = self.order(epoch)
        self._epoch += 1
        return self._batches(order, epoch)

    def batch_rng(self, epoch: int, batch_index: int) -> np.random.Generator:
        """The generator a random ``transform`` gets for batch ``batch_index`` of ``epoch``:
        ``np.random.default_rng([seed, epoch, batch_index, 1])`` (the trailing 1
        keeps it apart from the shuffling stream ``[seed, epoch]``)."""
        return np.random.default_rng([self.seed, int(epoch), int(batch_index), 1])

    def _batches(self, order: np.ndarray, epoch: int) -> Iterator[tuple[Tensor, Tensor]]:
        bs = self.batch_size
        for b in range(len(self)):
            yield self._batch(order[b * bs:(b + 1) * bs], epoch, b)

    def _batch(self, idx: np.ndarray, epoch: int, b: int) -> tuple[Tensor, Tensor]:
        """The samples ``idx`` as batch ``b`` of ``epoch``: fetched, transformed, wrapped."""
        x, y = self._fetch(idx)
        if self.transform is not None:
            if getattr(self.transform, "random", False):
                x = self.transform(x, rng=self.batch_rng(epoch, b))  # type: ignore[call-arg]
            else:
                x = self.transform(x)
            if not isinstance(x, np.ndarray):
                raise TypeError(f"DataLoader: transform must return an ndarray, "
                                f"got {type(x).__name__}")
        return Tensor(x), Tensor(y)

    def _fetch(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        xs = getattr(self.dataset, "x", None)
        ys = getattr(self.dataset, "y", None)
        if isinstance(xs, np.ndarray) and isinstance(ys, np.ndarray):
            x, y = xs[idx], ys[idx]  # fancy indexing: one copy per batch
        else:
            samples = [self.dataset[int(i)] for i in idx]
            x = np.stack([np.asarray(s[0]) for s in samples])
            y = np.stack([np.asarray(s[1]) for s in samples])
        if not np.issubdtype(x.dtype, np.floating):
            x = x.astype(np.float32)
        if np.issubdtype(y.dtype, np.integer) and y.dtype != np.int64:
            y = y.astype(np.int64)
        return x, y

    def __repr__(self) -> str:
        return (f"DataLoader(n={len(self.dataset)}, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, seed={self.seed}, drop_last={self.drop_last}, "
                f"epoch={self.epoch}, transform={self.transform!r})")
