"""Functional activations, softmax and dropout (PyTorch names and argument order)."""
from __future__ import annotations

from typing import Any

import numpy as np

from cnnlab.autograd import activation_ops as ops
from cnnlab.autograd.tensor import Tensor
from cnnlab.nn._args import as_tensor
from cnnlab.random import get_rng


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """max(x, 0).  ``inplace`` is PyTorch's argument and is accepted, but the result
    is always a new tensor and ``input`` is left as it was: cnnlab's graph does not
    rewrite tensors in place.  Code that uses the return value (``x = F.relu(x,
    inplace=True)``, ``nn.ReLU(inplace=True)``) gives PyTorch's numbers."""
    return ops.ReLU.apply(as_tensor(input))


def sigmoid(input: Tensor) -> Tensor:
    return ops.Sigmoid.apply(as_tensor(input))


def tanh(input: Tensor) -> Tensor:
    return ops.Tanh.apply(as_tensor(input))


def leaky_relu(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    """x for x > 0, negative_slope * x otherwise; any shape.  The gradient at
    exactly 0 is negative_slope, as in PyTorch."""
    return ops.LeakyReLU.apply(as_tensor(input), negative_slope=negative_slope)


def elu(input: Tensor, alpha: float = 1.0) -> Tensor:
    """x for x > 0, alpha (e^x - 1) otherwise; any shape."""
    return ops.ELU.apply(as_tensor(input), alpha=alpha)


def scaled_tanh(input: Tensor) -> Tensor:
    """LeCun's scaled tanh, f(x) = 1.7159 tanh(2x / 3) (the notes, 002), chosen so
    that f(+-1) ~ +-1 for targets of +-1; any shape.  Not in PyTorch."""
    return ops.ScaledTanh.apply(as_tensor(input))


def _dim(x: Tensor, dim: int | None, name: str) -> int:
    if dim is None:
        dim = 0 if x.ndim in (0, 1, 3) else 1   # PyTorch's legacy implicit choice
    if not -x.ndim <= dim < x.ndim:
        raise IndexError(f"{name}: dim {dim} out of range for shape {x.shape}")
    return dim % x.ndim


def softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3,
            dtype: Any = None) -> Tensor:
    x = as_tensor(input) if dtype is None else as_tensor(input).to(dtype)
    return ops.Softmax.apply(x, axis=_dim(x, dim, "softmax"))


def log_softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3,
                dtype: Any = None) -> Tensor:
    x = as_tensor(input) if dtype is None else as_tensor(input).to(dtype)
    return ops.LogSoftmax.apply(x, axis=_dim(x, dim, "log_softmax"))


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Inverted dropout: zero each value with probability p and scale the
    rest by 1 / (1 - p), so evaluation needs no rescaling.  The identity when
    ``training`` is False (note that PyTorch's functional default is True, so
    ``F.dropout(x, 0.5)`` drops even in ``model.eval()``: pass
    ``training=self.training``).  ``inplace`` as in :func:`relu`."""
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


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False
              ) -> Tensor:
    """Channel dropout: zero each whole channel with probability p and scale the
    others by 1 / (1 - p).  input (N, C, H, W), or (C, H, W) unbatched (one draw
    per channel); output same shape.  The identity when not training.

    (PyTorch currently treats a 3-D input as (N, C, L) with a deprecation
    warning; here it is (C, H, W), the behaviour PyTorch's docs announce.)
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout2d: probability has to be between 0 and 1, got {p}")
    x = as_tensor(input)
    if x.ndim not in (3, 4):
        raise ValueError(f"dropout2d: expected input (N, C, H, W) or (C, H, W), got {x.shape}")
    if not training or p == 0.0:
        return x
    mask_shape = x.shape[:x.ndim - 2] + (1, 1)
    if p == 1.0:
        mask = np.zeros(mask_shape, dtype=x.dtype)
    else:
        keep = get_rng().random(mask_shape, dtype=np.float64) >= p
        mask = keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - p))
    return ops.Dropout.apply(x, mask=mask)


__all__ = ["dropout", "dropout2d", "elu", "leaky_relu", "log_softmax", "relu", "scaled_tanh",
           "sigmoid", "softmax", "tanh"]
