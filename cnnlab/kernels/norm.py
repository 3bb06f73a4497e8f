"""Batch normalisation over the channel axis (axis 1), as in the notes (003).

Training, per channel j over the batch (and every spatial position):
    mu_j = mean(x_j),  var_j = mean((x_j - mu_j)^2)
    x_hat = (x - mu) / sqrt(var + eps),  y = gamma * x_hat + beta
and the running statistics move by momentum m:
    running_mean = (1 - m) running_mean + m mu
    running_var  = (1 - m) running_var  + m var * n / (n - 1)   (unbiased, as PyTorch)
At test time mu and var are the running statistics.

Works for x (N, C) (BatchNorm1d), (N, C, L) and (N, C, H, W) (BatchNorm2d).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np


class BatchNormCache(NamedTuple):
    x_hat: np.ndarray
    inv_std: np.ndarray     # (C,)
    gamma: np.ndarray | None
    training: bool          # whether mu and var came from this batch


def _reduce_axes(x: np.ndarray) -> tuple[int, ...]:
    return (0,) + tuple(range(2, x.ndim))


def _bcast(v: np.ndarray, ndim: int) -> np.ndarray:
    """(C,) -> (1, C, 1, ...) for broadcasting against an (N, C, ...) array."""
    return v.reshape((1, -1) + (1,) * (ndim - 2))


def batch_norm_forward(x: np.ndarray, running_mean: np.ndarray | None,
                       running_var: np.ndarray | None, gamma: np.ndarray | None,
                       beta: np.ndarray | None, training: bool, momentum: float,
                       eps: float) -> tuple[np.ndarray, BatchNormCache]:
    """x (N, C, ...) -> y (same shape).  Updates running stats in place when training."""
    axes = _reduce_axes(x)
    nd = x.ndim
    if training:
        n = x.size // x.shape[1]
        if n <= 1:
            raise ValueError(
                f"expected more than 1 value per channel when training, got input size {x.shape}")
        mean = x.mean(axis=axes)
        xc = x - _bcast(mean, nd)
        var = np.mean(xc * xc, axis=axes)
        if running_mean is not None:
            running_mean *= 1 - momentum
            running_mean += momentum * mean.astype(running_mean.dtype)
        if running_var is not None:
            running_var *= 1 - momentum
            running_var += momentum * (var * (n / (n - 1))).astype(running_var.dtype)
    else:
        mean, var = running_mean.astype(x.dtype), running_var.astype(x.dtype)
        xc = x - _bcast(mean, nd)
    inv_std = (1.0 / np.sqrt(var + eps)).astype(x.dtype)
    x_hat = xc * _bcast(inv_std, nd)
    y = x_hat
    if gamma is not None:
        y = x_hat * _bcast(gamma, nd)
    if beta is not None:
        y = y + _bcast(beta, nd)
    return y, BatchNormCache(x_hat, inv_std, gamma, training)


def batch_norm_backward(dy: np.ndarray, cache: BatchNormCache):
    """dy (N, C, ...) -> dx (same), dgamma (C,), dbeta (C,).

    With batch statistics the mean and variance depend on x, which gives
    dx = inv_std * (g - mean(g) - x_hat * mean(g * x_hat)),  g = gamma * dy.
    With running statistics dx is just inv_std * g.
    """
    axes = _reduce_axes(dy)
    nd = dy.ndim
    x_hat = cache.x_hat
    dbeta = dy.sum(axis=axes)
    dgamma = (dy * x_hat).sum(axis=axes)
    g = dy if cache.gamma is None else dy * _bcast(cache.gamma, nd)
    inv = _bcast(cache.inv_std, nd)
    if cache.training:
        m = dy.size // dy.shape[1]
        g_mean = g.sum(axis=axes) / m
        gx_mean = (g * x_hat).sum(axis=axes) / m
        dx = inv * (g - _bcast(g_mean, nd) - x_hat * _bcast(gx_mean, nd))
    else:
        dx = g * inv
    return dx, dgamma, dbeta
