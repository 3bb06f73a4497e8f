"""Tensor factories with PyTorch's names: ``zeros``, ``arange``, ``randn``,
``randperm``...  Random ones draw from cnnlab's seeded generator
(:func:`cnnlab.manual_seed`).  Floating results are float32 unless ``dtype``
says otherwise, integer ones int64, as in torch.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from cnnlab.autograd.device import as_dtype, check_device
from cnnlab.autograd.tensor import DEFAULT_DTYPE, Tensor
from cnnlab.random import get_rng


def _shape(size: tuple[Any, ...]) -> tuple[int, ...]:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    return tuple(int(s) for s in size)


def _make(data: np.ndarray, dtype: Any, device: Any, requires_grad: bool,
          default: Any = DEFAULT_DTYPE) -> Tensor:
    if device is not None:
        check_device(device)
    dt = as_dtype(default if dtype is None else dtype)
    return Tensor(np.asarray(data, dtype=dt), requires_grad=requires_grad)


def from_numpy(array: np.ndarray) -> Tensor:
    """A Tensor sharing ``array``'s memory and dtype (``torch.from_numpy``)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy expected an np.ndarray, got {type(array).__name__}")
    return Tensor(array)


def as_tensor(data: Any, dtype: Any = None, device: Any = None) -> Tensor:
    if isinstance(data, Tensor) and dtype is None:
        return data
    if device is not None:
        check_device(device)
    return Tensor(data, dtype=None if dtype is None else as_dtype(dtype))


def zeros(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    return _make(np.zeros(_shape(size)), dtype, device, requires_grad)


def ones(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    return _make(np.ones(_shape(size)), dtype, device, requires_grad)


def empty(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """Zeros (NumPy's uninitialised memory would make runs irreproducible)."""
    return zeros(*size, dtype=dtype, device=device, requires_grad=requires_grad)


def full(size: Sequence[int], fill_value: Any, *, dtype: Any = None, device: Any = None,
         requires_grad: bool = False) -> Tensor:
    """As torch: the dtype follows ``fill_value`` (bool, int64, float32) unless given."""
    if isinstance(fill_value, (bool, np.bool_)):
        default: Any = np.bool_
    elif isinstance(fill_value, (int, np.integer)):
        default = np.int64
    else:
        default = DEFAULT_DTYPE
    return _make(np.full(_shape((size,)), fill_value), dtype, device, requires_grad, default)


def _like(input: Tensor, dtype: Any) -> Any:
    return input.dtype if dtype is None else dtype


def zeros_like(input: Tensor, *, dtype: Any = None, device: Any = None,
               requires_grad: bool = False) -> Tensor:
    return _make(np.zeros(input.shape), _like(input, dtype), device, requires_grad)


def ones_like(input: Tensor, *, dtype: Any = None, device: Any = None,
              requires_grad: bool = False) -> Tensor:
    return _make(np.ones(input.shape), _like(input, dtype), device, requires_grad)


def full_like(input: Tensor, fill_value: Any, *, dtype: Any = None, device: Any = None,
              requires_grad: bool = False) -> Tensor:
    return _make(np.full(input.shape, fill_value), _like(input, dtype), device, requires_grad)


def arange(start: float, end: float | None = None, step: float = 1, *, dtype: Any = None,
           device: Any = None, requires_grad: bool = False) -> Tensor:
    """``arange(end)`` or ``arange(start, end, step)``; int64 when every argument is an integer."""
    if end is None:
        start, end = 0, start
    integral = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
    default = np.int64 if integral else DEFAULT_DTYPE
    return _make(np.arange(start, end, step), dtype, device, requires_grad, default)


def linspace(start: float, end: float, steps: int, *, dtype: Any = None, device: Any = None,
             requires_grad: bool = False) -> Tensor:
    return _make(np.linspace(start, end, int(steps)), dtype, device, requires_grad)


def rand(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False,
         generator: np.random.Generator | None = None) -> Tensor:
    """U[0, 1) from cnnlab's generator (or ``generator``, a NumPy Generator)."""
    rng = generator or get_rng()
    return _make(rng.random(_shape(size)), dtype, device, requires_grad)


def randn(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False,
          generator: np.random.Generator | None = None) -> Tensor:
    """N(0, 1) from cnnlab's generator."""
    rng = generator or get_rng()
    return _make(rng.standard_normal(_shape(size)), dtype, device, requires_grad)


def randint(low: int, high: int | None = None, size: Sequence[int] = (), *, dtype: Any = None,
            device: Any = None, generator: np.random.Generator | None = None) -> Tensor:
    """Integers in [low, high) (``randint(high, size)`` means low = 0); int64."""
    if high is None:
        low, high = 0, low
    rng = generator or get_rng()
    return _make(rng.integers(low, high, size=_shape((size,))), dtype, device, False, np.int64)


def randperm(n: int, *, dtype: Any = None, device: Any = None,
             generator: np.random.Generator | None = None) -> Tensor:
    """A random permutation of 0 .. n-1 (int64) from cnnlab's generator."""
    rng = generator or get_rng()
    return _make(rng.permutation(int(n)), dtype, device, False, np.int64)


def rand_like(input: Tensor, *, dtype: Any = None) -> Tensor:
    return rand(*input.shape, dtype=_like(input, dtype))


def randn_like(input: Tensor, *, dtype: Any = None) -> Tensor:
    return randn(*input.shape, dtype=_like(input, dtype))


__all__ = ["arange", "as_tensor", "empty", "from_numpy", "full", "full_like", "linspace", "ones",
           "ones_like", "rand", "rand_like", "randint", "randn", "randn_like", "randperm",
           "zeros", "zeros_like"]
