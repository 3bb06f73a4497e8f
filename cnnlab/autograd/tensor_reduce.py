"""The reductions of :class:`~cnnlab.autograd.tensor.Tensor`, PyTorch's names.

Every reduction takes PyTorch's ``dim=``/``keepdim=`` and, for NumPy users,
``axis=``/``keepdims=`` (one spelling at a time).  ``max(dim)`` and ``min(dim)``
return ``(values, indices)`` as a named tuple, like torch's; with ``axis=`` or no
dimension they return the values alone.  ``std``/``var`` use Bessel's
correction by default (``correction=1``, ``unbiased=True``), as torch does.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple, Sequence

import numpy as np

from cnnlab.autograd import basic as _basic
from cnnlab.autograd.tensor_shape import _dim_index

if TYPE_CHECKING:
    from cnnlab.autograd.tensor import Tensor

Dims = int | Sequence[int] | None


class ValuesIndices(NamedTuple):
    """What ``max(dim)``/``min(dim)``/``topk``/``sort`` return (``torch.return_types``)."""

    values: Tensor
    indices: Tensor


def resolve_dim(op: str, dim: Any, keepdim: bool | None, axis: Any, keepdims: bool | None
                ) -> tuple[Any, bool]:
    """Merge PyTorch's and NumPy's spellings of the reduced dimensions and keep flag."""
    if axis is not None:
        if dim is not None:
            raise TypeError(f"{op}() got both dim={dim!r} and axis={axis!r}; pass one")
        dim = axis
    if keepdims is not None:
        if keepdim is not None:
            raise TypeError(f"{op}() got both keepdim and keepdims; pass one")
        keepdim = keepdims
    return dim, bool(keepdim)


def norm_dims(dim: Dims, ndim: int, op: str) -> tuple[int, ...] | None:
    """``dim`` as a tuple of non-negative axes (None: all), range-checked."""
    if dim is None:
        return None
    dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
    out = tuple(_dim_index(int(d), ndim, op) for d in dims)
    if len(set(out)) != len(out):
        raise RuntimeError(f"{op}: dim {dim} appears multiple times in the list of dims")
    return out


class ReductionMethods:
    """Mixed into ``Tensor``; ``self`` is a Tensor."""

    data: np.ndarray

    def sum(self: Tensor, dim: Dims = None, keepdim: bool | None = None, *, dtype: Any = None,
            axis: Dims = None, keepdims: bool | None = None) -> Tensor:
        """Sum over ``dim`` (all by default).  Booleans and integers sum to int64, as in torch."""
        dim, keep = resolve_dim("sum", dim, keepdim, axis, keepdims)
        x = self if dtype is None else self.to(dtype)
        if x.dtype == np.bool_ or np.issubdtype(x.dtype, np.integer):
            from cnnlab.autograd.tensor import Tensor

            return Tensor(np.asarray(x.data.sum(axis=norm_dims(dim, x.ndim, "sum"),
                                                keepdims=keep, dtype=np.int64)))
        return _basic.Sum.apply(x, axis=norm_dims(dim, x.ndim, "sum"), keepdims=keep)

    def mean(self: Tensor, dim: Dims = None, keepdim: bool | None = None, *, dtype: Any = None,
             axis: Dims = None, keepdims: bool | None = None) -> Tensor:
        """Mean over ``dim`` (all by default); needs a floating tensor, as in torch."""
        dim, keep = resolve_dim("mean", dim, keepdim, axis, keepdims)
        x = self if dtype is None else self.to(dtype)
        if not np.issubdtype(x.dtype, np.floating):
            raise RuntimeError(f"mean(): could not infer output dtype. Input dtype must be "
                               f"floating point, but got {x.dtype} (use .float() first)")
        return _basic.Mean.apply(x, axis=norm_dims(dim, x.ndim, "mean"), keepdims=keep)

    def var(self: Tensor, dim: Dims = None, unbiased: bool | None = None,
            keepdim: bool | None = None, *, correction: float | None = None,
            axis: Dims = None, keepdims: bool | None = None) -> Tensor:
        """Variance over ``dim``: sum((x - mean)²) / (N - correction);
        ``correction`` defaults to 1 (``unbiased=False`` means 0)."""
        if isinstance(dim, bool):           # torch's var(unbiased) overload
            dim, unbiased = None, dim
        dim, keep = resolve_dim("var", dim, keepdim, axis, keepdims)
        if correction is not None and unbiased is not None:
            raise TypeError("var() got both correction and unbiased; pass one")
        corr = correction if correction is not None else (0 if unbiased is False else 1)
        dims = norm_dims(dim, self.ndim, "var")
        count = self.numel() if dims is None else int(np.prod([self.shape[d] for d in dims]))
        centred = self - self.mean(dims, keepdim=True)
        return (centred * centred).sum(dims, keepdim=keep) / max(count - corr, 0)

    def std(self: Tensor, dim: Dims = None, unbiased: bool | None = None,
            keepdim: bool | None = None, *, correction: float | None = None,
            axis: Dims = None, keepdims: bool | None = None) -> Tensor:
        """Standard deviation, the square root of :meth:`var` (same arguments)."""
        return self.var(dim, unbiased, keepdim, correction=correction, axis=axis,
                        keepdims=keepdims) ** 0.5

    def max(self: Tensor, dim: Any = None, keepdim: bool | None = None, *,
            axis: Dims = None, keepdims: bool | None = None) -> Any:
        """``x.max()``: the largest value (ties share the gradient, torch's rule).
        ``x.max(dim)``: ``(values, indices)`` along ``dim``, the first maximum's
        index on ties; the gradient goes to that entry.  ``x.max(other)``: the
        elementwise maximum.  ``axis=`` (NumPy) returns the values alone."""
        return _extreme(self, "max", dim, keepdim, axis, keepdims)

    def min(self: Tensor, dim: Any = None, keepdim: bool | None = None, *,
            axis: Dims = None, keepdims: bool | None = None) -> Any:
        """As :meth:`max`, for the smallest values."""
        return _extreme(self, "min", dim, keepdim, axis, keepdims)

    def amax(self: Tensor, dim: Dims = None, keepdim: bool = False) -> Tensor:
        """Largest values over ``dim`` (several allowed); ties share the gradient."""
        return _basic.Max.apply(self, axis=norm_dims(dim, self.ndim, "amax"), keepdims=keepdim)

    def amin(self: Tensor, dim: Dims = None, keepdim: bool = False) -> Tensor:
        return -(-self).amax(dim, keepdim)

    def argmax(self: Tensor, dim: int | None = None, keepdim: bool | None = None, *,
               axis: int | None = None, keepdims: bool | None = None) -> Tensor:
        """Index (int64) of the first maximum along ``dim``, or in the flattened tensor."""
        return _arg_extreme(self, "argmax", dim, keepdim, axis, keepdims)

    def argmin(self: Tensor, dim: int | None = None, keepdim: bool | None = None, *,
               axis: int | None = None, keepdims: bool | None = None) -> Tensor:
        """Index (int64) of the first minimum along ``dim``, or in the flattened tensor."""
        return _arg_extreme(self, "argmin", dim, keepdim, axis, keepdims)

    def sort(self: Tensor, dim: int = -1, descending: bool = False, *, stable: bool = False
             ) -> ValuesIndices:
        """``(values, indices)`` sorted along ``dim``; the gradient of each value goes
        back to where it came from.  Equal values keep their order (always stable)."""
        d = _dim_index(dim, self.ndim, "sort")
        idx = _order(self.data, d, descending)
        return ValuesIndices(_basic.TakeAlong.apply(self, indices=idx, axis=d), _index_tensor(idx))

    def argsort(self: Tensor, dim: int = -1, descending: bool = False, *, stable: bool = False
                ) -> Tensor:
        """The indices of :meth:`sort`."""
        return _index_tensor(_order(self.data, _dim_index(dim, self.ndim, "argsort"), descending))

    def topk(self: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True
             ) -> ValuesIndices:
        """The ``k`` largest (``largest=False``: smallest) values along ``dim`` and their
        indices, best first; equal values in index order.  ``(values, indices)``."""
        d = _dim_index(dim, self.ndim, "topk")
        n = self.shape[d] if self.ndim else 1
        if not 0 <= k <= n:
            raise RuntimeError(f"topk: k ({k}) is out of range for dimension {dim} of size {n}")
        idx = np.take(_order(self.data, d, largest), np.arange(k), axis=d)
        return ValuesIndices(_basic.TakeAlong.apply(self, indices=idx, axis=d), _index_tensor(idx))


def _order(a: np.ndarray, axis: int, descending: bool) -> np.ndarray:
    """Stable argsort along ``axis`` (int64); descending keeps equal values in index order."""
    if a.ndim == 0:
        return np.zeros((), dtype=np.int64)
    if descending:
        a = -(a.astype(np.int64) if a.dtype.kind in "bu" else a)
    return np.argsort(a, axis=axis, kind="stable").astype(np.int64)


def _index_tensor(idx: np.ndarray) -> Tensor:
    from cnnlab.autograd.tensor import Tensor

    return Tensor(idx)


def _arg_extreme(x: Tensor, op: str, dim: Any, keepdim: bool | None, axis: Any,
                 keepdims: bool | None) -> Tensor:
    from cnnlab.autograd.tensor import Tensor

    dim, keep = resolve_dim(op, dim, keepdim, axis, keepdims)
    find = np.argmax if op == "argmax" else np.argmin
    if dim is None:
        idx = np.asarray(find(x.data), dtype=np.int64)
        return Tensor(idx.reshape((1,) * x.ndim) if keep else idx)
    d = _dim_index(dim, x.ndim, op)
    return Tensor(np.asarray(find(x.data, axis=d, keepdims=keep), dtype=np.int64))


def _extreme(x: Tensor, op: str, dim: Any, keepdim: bool | None, axis: Any,
             keepdims: bool | None) -> Any:
    from cnnlab.autograd.tensor import Tensor, _lift

    if isinstance(dim, Tensor):             # torch.max(a, b): elementwise
        other = dim
        pick = x.data >= other.data if op == "max" else x.data <= other.data
        tie = x.data == other.data
        half = _basic.Where.apply(x, other, condition=pick)
        if not tie.any():
            return half
        return _basic.Where.apply((x + _lift(other, x)) * 0.5, half, condition=tie)
    if axis is not None or dim is None:
        values_dim, keep = resolve_dim(op, dim, keepdim, axis, keepdims)
        dims = norm_dims(values_dim, x.ndim, op)
        if op == "max":
            return _basic.Max.apply(x, axis=dims, keepdims=keep)
        return -_basic.Max.apply(-x, axis=dims, keepdims=keep)
    keep = bool(keepdim if keepdims is None else keepdims)
    d = _dim_index(dim, x.ndim, op)
    find = np.argmax if op == "max" else np.argmin
    idx = np.expand_dims(find(x.data, axis=d), d).astype(np.int64)
    values = _basic.TakeAlong.apply(x, indices=idx, axis=d)
    if not keep:
        values = values.squeeze(d)
        idx = idx.squeeze(d)
    return ValuesIndices(values, Tensor(idx))
