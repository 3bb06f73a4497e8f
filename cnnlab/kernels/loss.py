"""Loss kernels: cross-entropy on class indices and mean squared error.

Cross-entropy on logits z (N, C) and targets t (N,):
    L_n = -log softmax(z_n)[t_n]
    dL_n/dz_n = softmax(z_n) - onehot(t_n)
which is the notes' point: the gradient has no sigma'(z) factor, so learning
does not slow down when the output saturates (unlike squared error).
"""
from __future__ import annotations

import numpy as np

from cnnlab.kernels.activation import log_softmax_forward

REDUCTIONS = ("mean", "sum", "none")


def cross_entropy_forward(z: np.ndarray, target: np.ndarray,
                          reduction: str = "mean") -> tuple[np.ndarray, np.ndarray]:
    """z (N, C), target (N,) int in [0, C) -> loss (scalar, or (N,) for 'none'), log_probs."""
    log_p = log_softmax_forward(z, axis=1)
    nll = -log_p[np.arange(z.shape[0]), target]
    if reduction == "mean":
        return np.asarray(nll.mean()), log_p
    if reduction == "sum":
        return np.asarray(nll.sum()), log_p
    return nll, log_p


def cross_entropy_backward(dloss: np.ndarray, log_p: np.ndarray, target: np.ndarray,
                           reduction: str = "mean") -> np.ndarray:
    """-> dz (N, C) = (softmax(z) - onehot(t)) * dloss (/ N for 'mean')."""
    N = log_p.shape[0]
    dz = np.exp(log_p)
    dz[np.arange(N), target] -= 1
    if reduction == "mean":
        dz *= dloss / N
    elif reduction == "sum":
        dz *= dloss
    else:
        dz *= dloss[:, None]
    return dz


def mse_forward(y: np.ndarray, t: np.ndarray, reduction: str = "mean") -> np.ndarray:
    """mean (or sum) of (y - t)^2, elementwise for 'none'."""
    d2 = (y - t) ** 2
    if reduction == "mean":
        return np.asarray(d2.mean())
    if reduction == "sum":
        return np.asarray(d2.sum())
    return d2


def mse_backward(dloss: np.ndarray, y: np.ndarray, t: np.ndarray,
                 reduction: str = "mean") -> tuple[np.ndarray, np.ndarray]:
    """-> dy = 2 (y - t) dloss (/ size for 'mean'), dt = -dy."""
    d = 2 * (y - t)
    if reduction == "mean":
        d = d * (dloss / y.size)
    else:
        d = d * dloss
    return d, -d
