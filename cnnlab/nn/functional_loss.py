"""Functional losses (PyTorch names and argument order)."""
from __future__ import annotations

import numpy as np

from cnnlab.autograd import loss_ops as ops
from cnnlab.autograd.tensor import Tensor
from cnnlab.kernels.loss import REDUCTIONS
from cnnlab.nn._args import as_tensor


def _check_reduction(reduction: str, name: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"{name}: reduction must be one of {REDUCTIONS}, got {reduction!r}")


def cross_entropy(input: Tensor, target: Tensor | np.ndarray, reduction: str = "mean") -> Tensor:
    """Softmax cross-entropy on logits (N, C) and class indices (N,)."""
    z = as_tensor(input)
    t = np.asarray(target.data if isinstance(target, Tensor) else target)
    _check_reduction(reduction, "cross_entropy")
    if z.ndim != 2:
        raise ValueError(f"cross_entropy: expected logits (N, C), got shape {z.shape}")
    if t.shape != (z.shape[0],):
        raise ValueError(f"cross_entropy: expected target ({z.shape[0]},) for logits {z.shape}, "
                         f"got {t.shape}")
    if not np.issubdtype(t.dtype, np.integer):
        raise TypeError(f"cross_entropy: target must hold integer class indices, got {t.dtype}")
    if t.size and (t.min() < 0 or t.max() >= z.shape[1]):
        raise IndexError(f"cross_entropy: target {int(t.min())}..{int(t.max())} out of range for "
                         f"{z.shape[1]} classes")
    return ops.CrossEntropy.apply(z, Tensor(t), reduction=reduction)


def nll_loss(input: Tensor, target: Tensor | np.ndarray, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood on log-probabilities (N, C) and class indices (N,)."""
    lp = as_tensor(input)
    t = np.asarray(target.data if isinstance(target, Tensor) else target)
    _check_reduction(reduction, "nll_loss")
    picked = -lp[np.arange(lp.shape[0]), t]
    if reduction == "mean":
        return picked.mean()
    if reduction == "sum":
        return picked.sum()
    return picked


def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Squared error, averaged (or summed) over every element."""
    y, t = as_tensor(input), as_tensor(target)
    _check_reduction(reduction, "mse_loss")
    if y.shape != t.shape:
        raise ValueError(f"mse_loss: input {y.shape} and target {t.shape} must have the same shape")
    return ops.MSELoss.apply(y, t, reduction=reduction)


__all__ = ["cross_entropy", "mse_loss", "nll_loss"]
