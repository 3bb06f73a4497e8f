"""The shape methods of :class:`~cnnlab.autograd.tensor.Tensor`, PyTorch's names.

``reshape``/``view``/``view_as``, ``flatten``, ``unsqueeze``/``squeeze``,
``permute``/``transpose``, ``expand``, ``contiguous`` and indexing.  Every one is
a :class:`~cnnlab.autograd.basic.Reshape`, ``Transpose``, ``Expand`` or ``Index``
node, so gradients flow through them.  (Views never alias storage here: NumPy
reshapes may copy, and in-place ops on graph tensors are refused.)
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from cnnlab.autograd import basic as _basic

if TYPE_CHECKING:
    from cnnlab.autograd.tensor import Tensor


def _shape_args(shape: tuple[Any, ...]) -> tuple[int, ...]:
    """``f(2, 3)``, ``f((2, 3))`` and ``f([2, 3])`` all mean the shape (2, 3)."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return tuple(int(s) for s in shape)


def _dim_index(dim: int, ndim: int, op: str) -> int:
    """``dim`` in [-ndim, ndim) as a non-negative index, else PyTorch's IndexError."""
    if not -max(ndim, 1) <= dim < max(ndim, 1):
        raise IndexError(f"{op}: dimension out of range (expected to be in range of "
                         f"[{-max(ndim, 1)}, {max(ndim, 1) - 1}], but got {dim})")
    return int(dim) % max(ndim, 1)


class ShapeMethods:
    """Mixed into ``Tensor``; ``self`` is a Tensor."""

    data: np.ndarray

    def reshape(self: Tensor, *shape: int | Sequence[int]) -> Tensor:
        """A tensor with the same values in ``shape`` (one entry may be -1)."""
        return _basic.Reshape.apply(self, shape=_shape_args(shape))

    def view(self: Tensor, *shape: int | Sequence[int]) -> Tensor:
        """PyTorch's ``view``: same as :meth:`reshape` (``x.view(x.size(0), -1)``)."""
        return self.reshape(*shape)

    def view_as(self: Tensor, other: Tensor) -> Tensor:
        """``self.view(other.shape)``."""
        return self.reshape(other.shape)

    def reshape_as(self: Tensor, other: Tensor) -> Tensor:
        return self.reshape(other.shape)

    def flatten(self: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        """Merge dimensions ``start_dim`` .. ``end_dim`` (inclusive) into one."""
        nd = self.ndim
        if nd == 0:
            return self.reshape(1)
        start = _dim_index(start_dim, nd, "flatten")
        end = _dim_index(end_dim, nd, "flatten")
        if start > end:
            raise ValueError(f"flatten() has invalid args: start_dim {start_dim} cannot come "
                             f"after end_dim {end_dim}")
        shape = self.shape
        merged = int(np.prod(shape[start:end + 1], dtype=np.int64))
        return self.reshape(shape[:start] + (merged,) + shape[end + 1:])

    def unsqueeze(self: Tensor, dim: int) -> Tensor:
        """Insert a dimension of size 1 at ``dim`` (in [-ndim - 1, ndim])."""
        nd = self.ndim + 1
        d = _dim_index(dim, nd, "unsqueeze")
        return self.reshape(self.shape[:d] + (1,) + self.shape[d:])

    def squeeze(self: Tensor, dim: int | Sequence[int] | None = None) -> Tensor:
        """Remove dimensions of size 1: all of them, or those in ``dim`` (a
        named dimension that is not of size 1 is left alone, as in PyTorch)."""
        if dim is None:
            dims = {i for i, n in enumerate(self.shape) if n == 1}
        else:
            wanted = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
            dims = {_dim_index(d, self.ndim, "squeeze") for d in wanted} if self.ndim else set()
            dims = {d for d in dims if self.shape[d] == 1}
        return self.reshape(tuple(n for i, n in enumerate(self.shape) if i not in dims))

    def transpose(self: Tensor, *axes: int | Sequence[int]) -> Tensor:
        """Swap two dimensions, ``t.transpose(d0, d1)`` (PyTorch).

        For NumPy users ``t.transpose()`` reverses the dimensions and
        ``t.transpose((0, 2, 1))`` / ``t.transpose(0, 2, 1)`` applies a permutation.
        """
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        nd = self.ndim
        if len(axes) == 0:
            perm = tuple(reversed(range(nd)))
        elif len(axes) == 2 and all(isinstance(ax, (int, np.integer)) for ax in axes):
            a, b = (_dim_index(ax, nd, "transpose") for ax in axes)
            p = list(range(nd))
            p[a], p[b] = p[b], p[a]
            perm = tuple(p)
        else:
            perm = tuple(int(ax) % nd for ax in axes)
            if sorted(perm) != list(range(nd)):
                raise ValueError(f"transpose axes {axes} are not a permutation of {nd} dimensions")
        return _basic.Transpose.apply(self, axes=perm)

    def permute(self: Tensor, *dims: int | Sequence[int]) -> Tensor:
        """Reorder the dimensions: ``x.permute(0, 2, 3, 1)`` (NCHW -> NHWC)."""
        perm = tuple(_dim_index(d, self.ndim, "permute") for d in _shape_args(dims))
        if len(perm) != self.ndim:
            raise RuntimeError(f"permute: the tensor has {self.ndim} dimensions but the "
                               f"ordering {dims} has {len(perm)}")
        if len(set(perm)) != len(perm):
            raise RuntimeError(f"permute: repeated dim in {dims}")
        return _basic.Transpose.apply(self, axes=perm)

    def t(self: Tensor) -> Tensor:
        """Transpose a matrix (``x.t()``); a 0-d or 1-d tensor comes back as it is."""
        if self.ndim > 2:
            raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {self.ndim}D")
        return self.transpose() if self.ndim == 2 else self

    @property
    def T(self: Tensor) -> Tensor:
        return self.transpose()

    def expand(self: Tensor, *sizes: int | Sequence[int]) -> Tensor:
        """Broadcast to ``sizes`` (-1 keeps a dimension); the backward sums back."""
        sizes = _shape_args(sizes)
        lead = len(sizes) - self.ndim
        if lead < 0:
            raise RuntimeError(f"expand: the number of sizes provided ({len(sizes)}) must be "
                               f"greater or equal to the number of dimensions ({self.ndim})")
        shape = tuple(self.shape[i - lead] if s == -1 and i >= lead else s
                      for i, s in enumerate(sizes))
        return _basic.Expand.apply(self, shape=shape)

    def expand_as(self: Tensor, other: Tensor) -> Tensor:
        return self.expand(other.shape)

    def contiguous(self: Tensor) -> Tensor:
        """The tensor itself when its array is C-contiguous, else a contiguous copy
        (that stays in the graph)."""
        if self.data.flags.c_contiguous:
            return self
        return _basic.Clone.apply(self)

    def is_contiguous(self: Tensor) -> bool:
        return bool(self.data.flags.c_contiguous)

    def __getitem__(self: Tensor, index: Any) -> Tensor:
        from cnnlab.autograd.tensor import Tensor

        if isinstance(index, Tensor):
            index = index.data
        elif isinstance(index, tuple):
            index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
        return _basic.Index.apply(self, index=index)
