"""Functional activations, softmax and dropout (PyTorch names and argument order)."""
from __future__ import annotations

import numpy as np

from cnnlab.autograd import activation_ops as ops
from cnnlab.autograd.tensor import Tensor
from cnnlab.nn._args import as_tensor
from cnnlab.random import get_rng


def relu(input: Tensor) -> Tensor:
    return ops.ReLU.apply(as_tensor(input))


def sigmoid(input: Tensor) -> Tensor:
    return ops.Sigmoid.apply(as_tensor(input))


def tanh(input: Tensor) -> Tensor:
    return ops.Tanh.apply(as_tensor(input))


def _dim(x: Tensor, dim: int | None, name: str) -> int:
    if dim is None:
        dim = 0 if x.ndim in (0, 1, 3) else 1   # PyTorch's legacy implicit choice
    if not -x.ndim <= dim < x.ndim:
        raise IndexError(f"{name}: dim {dim} out of range for shape {x.shape}")
    return dim % x.ndim


def softmax(input: Tensor, dim: int | None = None) -> Tensor:
    x = as_tensor(input)
    return ops.Softmax.apply(x, axis=_dim(x, dim, "softmax"))


def log_softmax(input: Tensor, dim: int | None = None) -> Tensor:
    x = as_tensor(input)
    return ops.LogSoftmax.apply(x, axis=_dim(x, dim, "log_softmax"))


def dropout(input: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Inverted dropout: zero each value with probability p and scale the
    rest by 1 / (1 - p), so evaluation needs no rescaling."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, got {p}")
    x = as_tensor(input)
    if not training or p == 0.0:
        return x
    if p == 1.0:
        mask = np.zeros(x.shape, dtype=x.dtype)
    else:
        keep = get_rng().random(x.shape, dtype=np.float64) >= p
        mask = keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - p))
    return ops.Dropout.apply(x, mask=mask)


__all__ = ["dropout", "log_softmax", "relu", "sigmoid", "softmax", "tanh"]
