"""PyTorch's data API: ``Dataset``, ``TensorDataset``, ``Subset``, ``random_split``,
``default_collate`` and a ``DataLoader`` over any of them.

A ``Dataset`` subclass with ``__getitem__``/``__len__`` works as in PyTorch
tutorials: each sample is fetched and :func:`default_collate` stacks a batch of
them (tuples of Tensors, ndarrays and numbers become Tensors).  A
:class:`TensorDataset` or an array dataset (``.x``/``.y`` ndarrays, such as
:class:`cnnlab.data.ArrayDataset`) is batched with one fancy index per tensor
instead, giving the same batches faster.  ``shuffle=True`` draws each epoch's
permutation from cnnlab's seeded generator (:func:`cnnlab.manual_seed`), as
torch's sampler draws from torch's.  For cnnlab's own training runs,
:class:`cnnlab.data.DataLoader` keeps its ``(seed, epoch)``-addressable order.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from cnnlab.autograd.tensor import Tensor, stack
from cnnlab.random import get_rng

__all__ = ["DataLoader", "Dataset", "Subset", "TensorDataset", "default_collate", "random_split"]


class Dataset:
    """Base class of map-style datasets: subclasses define ``__getitem__(i)``
    and ``__len__()``."""

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must define __len__")


class TensorDataset(Dataset):
    """Samples are rows of the given tensors: ``dataset[i] == (t0[i], t1[i], ...)``.

    Raises ``ValueError`` when the tensors' first dimensions differ."""

    def __init__(self, *tensors: Tensor | np.ndarray) -> None:
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor")
        self.tensors = tuple(t if isinstance(t, Tensor) else Tensor(np.asarray(t))
                             for t in tensors)
        sizes = [t.shape[0] if t.ndim else None for t in self.tensors]
        if None in sizes or len(set(sizes)) != 1:
            raise ValueError(f"Size mismatch between tensors: first dimensions {sizes}")

    def __getitem__(self, index: int) -> tuple[Tensor, ...]:
        return tuple(Tensor(t.data[index]) for t in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0].shape[0]


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``."""

    def __init__(self, dataset: Any, indices: Sequence[int]) -> None:
        self.dataset = dataset
        self.indices = [int(i) for i in indices]

    def __getitem__(self, index: int) -> Any:
        return self.dataset[self.indices[index]]

    def __len__(self) -> int:
        return len(self.indices)


def random_split(dataset: Any, lengths: Sequence[float], generator: Any = None) -> list[Subset]:
    """Split into non-overlapping subsets of the given lengths (or fractions that
    sum to 1, the remainder going round-robin as in torch), from cnnlab's generator."""
    n = len(dataset)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        counts = [int(math.floor(n * f)) for f in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
    else:
        counts = [int(x) for x in lengths]
    if sum(counts) != n:
        raise ValueError(f"Sum of input lengths {sum(counts)} does not equal the length of the "
                         f"input dataset ({n})")
    order = (generator or get_rng()).permutation(n)
    bounds = np.cumsum([0] + counts)
    return [Subset(dataset, order[a:b].tolist()) for a, b in zip(bounds[:-1], bounds[1:])]


def default_collate(batch: Sequence[Any]) -> Any:
    """Stack a list of samples as PyTorch's ``default_collate`` does: Tensors and
    ndarrays along a new first dimension, Python ints to int64 and floats to
    float64 Tensors, bools to bool Tensors, tuples/lists field by field, dicts key
    by key (a tuple sample gives a list of fields, as in torch); strings stay lists."""
    first = batch[0]
    if isinstance(first, Tensor):
        return stack(list(batch))
    if isinstance(first, np.ndarray):
        return Tensor(np.stack(batch))
    if isinstance(first, (bool, np.bool_)):
        return Tensor(np.asarray(batch, dtype=np.bool_))
    if isinstance(first, numbers.Integral):
        return Tensor(np.asarray(batch, dtype=np.int64))
    if isinstance(first, numbers.Real):
        return Tensor(np.asarray(batch, dtype=np.float64))
    if isinstance(first, (str, bytes)):
        return list(batch)
    if isinstance(first, Mapping):
        return {key: default_collate([sample[key] for sample in batch]) for key in first}
    if isinstance(first, (tuple, list)):
        if any(len(sample) != len(first) for sample in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        return [default_collate(list(field)) for field in zip(*batch)]   # a list, as torch
    raise TypeError(f"default_collate: batch must contain tensors, numpy arrays, numbers, "
                    f"dicts or lists; found {type(first).__name__}")


class DataLoader:
    """Mini-batches of a dataset, with PyTorch's signature.

    Parameters
    ----------
    dataset : Dataset, TensorDataset, or an object with ``__len__``/``__getitem__``
    batch_size : int or None, default 1
        ``None`` yields single samples (no batching).
    shuffle : bool
        A new permutation each epoch from cnnlab's generator.
    sampler, batch_sampler : iterable of indices / of index lists, optional
    num_workers : int
        Accepted; batches are always made in this process.
    collate_fn : callable, default :func:`default_collate`
    drop_last : bool
        Drop the last incomplete batch.
    generator : numpy.random.Generator, optional
        Draw the permutations from it instead of cnnlab's global generator.
    pin_memory, timeout, worker_init_fn, prefetch_factor, persistent_workers, ... :
        Accepted and ignored (CPU only, one process).
    """

    def __init__(self, dataset: Any, batch_size: int | None = 1, shuffle: bool | None = None,
                 sampler: Any = None, batch_sampler: Any = None, num_workers: int = 0,
                 collate_fn: Callable[[list[Any]], Any] | None = None, pin_memory: bool = False,
                 drop_last: bool = False, timeout: float = 0, worker_init_fn: Any = None,
                 multiprocessing_context: Any = None, generator: Any = None, *,
                 prefetch_factor: int | None = None, persistent_workers: bool = False,
                 pin_memory_device: str = "", in_order: bool = True) -> None:
        if batch_size is not None and (isinstance(batch_size, bool) or
                                       not isinstance(batch_size, numbers.Integral) or
                                       batch_size <= 0):
            raise ValueError(f"batch_size should be a positive integer value, but got "
                             f"batch_size={batch_size!r}")
        if shuffle and sampler is not None:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None and (batch_size != 1 or shuffle or sampler is not None
                                          or drop_last):
            raise ValueError("batch_sampler option is mutually exclusive with batch_size, "
                             "shuffle, sampler, and drop_last")
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"num_workers option should be non-negative; got {num_workers!r}")
        self.dataset = dataset
        self.batch_size = batch_size if batch_sampler is None else None
        self.shuffle = bool(shuffle)
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.num_workers = num_workers
        self.collate_fn = collate_fn
        self.drop_last = bool(drop_last)
        self.generator = generator

    def _order(self) -> list[int] | np.ndarray:
        if self.sampler is not None:
            return list(self.sampler)
        n = len(self.dataset)
        if self.shuffle:
            return (self.generator or get_rng()).permutation(n)
        return np.arange(n)

    def _index_batches(self) -> Iterator[Any]:
        if self.batch_sampler is not None:
            yield from self.batch_sampler
            return
        order = self._order()
        if self.batch_size is None:
            yield from order
            return
        bs = self.batch_size
        stop = len(order) - len(order) % bs if self.drop_last else len(order)
        for start in range(0, stop, bs):
            yield order[start:start + bs]

    def __iter__(self) -> Iterator[Any]:
        single = self.batch_size is None and self.batch_sampler is None
        fast = self.collate_fn is None and self.batch_size is not None
        tensors = fast and isinstance(self.dataset, TensorDataset)
        arrays = fast and not tensors and _is_array_dataset(self.dataset)
        for idx in self._index_batches():
            if single:
                yield self.dataset[int(idx)]
            elif tensors:
                rows = np.asarray(idx, dtype=np.int64)
                yield [Tensor(t.data[rows]) for t in self.dataset.tensors]
            elif arrays:
                rows = np.asarray(idx, dtype=np.int64)
                yield [Tensor(self.dataset.x[rows]), Tensor(self.dataset.y[rows])]
            else:
                samples = [self.dataset[int(i)] for i in idx]
                yield (self.collate_fn or default_collate)(samples)

    def __len__(self) -> int:
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        n = len(self.sampler) if self.sampler is not None else len(self.dataset)
        if self.batch_size is None:
            return n
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)


def _is_array_dataset(dataset: Any) -> bool:
    """cnnlab's in-memory datasets: whole ndarrays ``x`` and ``y``, indexed together."""
    from cnnlab.data.datasets import ArrayDataset

    return isinstance(dataset, ArrayDataset)
