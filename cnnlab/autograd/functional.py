"""``cnnlab.flatten``, ``cnnlab.max``, ``cnnlab.where``...: the tensor functions
PyTorch has at module level, each the method of the same name or one op."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from cnnlab.autograd import basic as _basic
from cnnlab.autograd.tensor import Tensor, _lift
from cnnlab.autograd.tensor_reduce import Dims


def _t(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    return _t(input).flatten(start_dim, end_dim)


def reshape(input: Tensor, shape: Sequence[int]) -> Tensor:
    return _t(input).reshape(shape)


def squeeze(input: Tensor, dim: int | None = None) -> Tensor:
    return _t(input).squeeze(dim)


def unsqueeze(input: Tensor, dim: int) -> Tensor:
    return _t(input).unsqueeze(dim)


def transpose(input: Tensor, dim0: int, dim1: int) -> Tensor:
    return _t(input).transpose(dim0, dim1)


def permute(input: Tensor, dims: Sequence[int]) -> Tensor:
    return _t(input).permute(dims)


def max(input: Tensor, dim: Any = None, keepdim: bool = False) -> Any:  # noqa: A001
    """``max(x)``, ``max(x, dim)`` -> (values, indices), ``max(x, other)`` elementwise."""
    return _t(input).max(dim, keepdim)


def min(input: Tensor, dim: Any = None, keepdim: bool = False) -> Any:  # noqa: A001
    return _t(input).min(dim, keepdim)


def maximum(input: Tensor, other: Tensor) -> Tensor:
    return _t(input).max(_t(other))


def minimum(input: Tensor, other: Tensor) -> Tensor:
    return _t(input).min(_t(other))


def topk(input: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> Any:  # noqa: A002
    """``(values, indices)`` of the ``k`` largest values along ``dim``."""
    return _t(input).topk(k, dim, largest, sorted)


def sort(input: Tensor, dim: int = -1, descending: bool = False, *, stable: bool = False) -> Any:
    return _t(input).sort(dim, descending, stable=stable)


def argsort(input: Tensor, dim: int = -1, descending: bool = False, *, stable: bool = False) -> Tensor:
    return _t(input).argsort(dim, descending, stable=stable)


def argmax(input: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    return _t(input).argmax(dim, keepdim)


def argmin(input: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    return _t(input).argmin(dim, keepdim)


def sum(input: Tensor, dim: Dims = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:  # noqa: A001
    return _t(input).sum(dim, keepdim, dtype=dtype)


def mean(input: Tensor, dim: Dims = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:
    return _t(input).mean(dim, keepdim, dtype=dtype)


def std(input: Tensor, dim: Dims = None, unbiased: bool | None = None, keepdim: bool = False, *,
        correction: float | None = None) -> Tensor:
    return _t(input).std(dim, unbiased, keepdim, correction=correction)


def var(input: Tensor, dim: Dims = None, unbiased: bool | None = None, keepdim: bool = False, *,
        correction: float | None = None) -> Tensor:
    return _t(input).var(dim, unbiased, keepdim, correction=correction)


def exp(input: Tensor) -> Tensor:
    return _t(input).exp()


def log(input: Tensor) -> Tensor:
    return _t(input).log()


def sqrt(input: Tensor) -> Tensor:
    return _t(input).sqrt()


def abs(input: Tensor) -> Tensor:  # noqa: A001
    return _t(input).abs()


def matmul(input: Tensor, other: Tensor) -> Tensor:
    return _t(input) @ other


def clamp(input: Tensor, min: float | None = None, max: float | None = None) -> Tensor:  # noqa: A002
    """Limit to [min, max]; the gradient passes where min <= x <= max (torch's rule)."""
    return _t(input).clamp(min, max)


def where(condition: Any, input: Any, other: Any) -> Tensor:
    """``input`` where ``condition`` holds, else ``other`` (broadcast); either
    branch may be a Python number."""
    cond = np.asarray(condition.data if isinstance(condition, Tensor) else condition)
    if cond.dtype != np.bool_:
        raise RuntimeError(f"where expected condition to be a boolean tensor, but got {cond.dtype}")
    a = input if isinstance(input, Tensor) else None
    b = other if isinstance(other, Tensor) else None
    like = a if a is not None else b
    if like is None:
        return Tensor(np.where(cond, input, other))
    return _basic.Where.apply(_lift(input, like), _lift(other, like), condition=cond)


def numel(input: Tensor) -> int:
    return _t(input).numel()


def equal(input: Tensor, other: Tensor) -> bool:
    return _t(input).equal(_t(other))


def is_tensor(obj: Any) -> bool:
    return isinstance(obj, Tensor)


__all__ = ["abs", "argmax", "argmin", "clamp", "equal", "exp", "flatten", "is_tensor", "log",
           "matmul", "max", "maximum", "mean", "min", "minimum", "numel", "permute", "reshape",
           "sqrt", "squeeze", "std", "sum", "transpose", "unsqueeze", "var", "where"]
