"""Functional normalisation ops (PyTorch names and argument order)."""
from __future__ import annotations

import numpy as np

from cnnlab.autograd import norm_ops as ops
from cnnlab.autograd.tensor import Tensor
from cnnlab.nn._args import as_tensor, check_same_dtype


def batch_norm(input: Tensor, running_mean: np.ndarray | None, running_var: np.ndarray | None,
               weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Batch normalisation over axis 1 of (N, C), (N, C, L) or (N, C, H, W).

    ``running_mean``/``running_var`` are arrays (or Tensors) updated in place
    when ``training``; in eval they normalise the input.
    """
    x = as_tensor(input)
    if x.ndim < 2:
        raise ValueError(f"batch_norm: expected input (N, C, ...), got shape {x.shape}")
    rm = running_mean.data if isinstance(running_mean, Tensor) else running_mean
    rv = running_var.data if isinstance(running_var, Tensor) else running_var
    if not training and (rm is None or rv is None):
        raise ValueError("batch_norm: eval mode needs running_mean and running_var")
    check_same_dtype("batch_norm", x, weight, bias)
    return ops.BatchNorm.apply(x, weight, bias, running_mean=rm, running_var=rv,
                               training=training, momentum=momentum, eps=eps)


__all__ = ["batch_norm"]
