"""Batch normalisation over the channel axis (axis 1), as in the notes (003).

Training, per channel j over the batch (and every spatial position):
    mu_j = mean(x_j),  var_j = mean((x_j - mu_j)^2)
    x_hat = (x - mu) / sqrt(var + eps),  y = gamma * x_hat + beta
and the running statistics move by momentum m:
    running_mean = (1 - m) running_mean + m mu
    running_var  = (1 - m) running_var  + m var * n / (n - 1)   (unbiased, as PyTorch)
At test time mu and var are the running statistics.

Works for x (N, C) (BatchNorm1d), (N, C, L) and (N, C, H, W) (BatchNorm2d).

The same normalisation over other axes gives the per-sample variants of the
notes (003): layer norm (over the trailing ``normalized_shape`` of each sample),
instance norm (per sample and channel, over the spatial axes) and group norm
(per sample and group of channels).  All three share
    x_hat = (x - mean) / sqrt(var + eps),    var biased (divided by m)
    dx = inv_std * (g - mean(g) - x_hat * mean(g * x_hat)),  g = dL/dx_hat
with the means over the m normalised elements.  Local response normalisation
(AlexNet, the notes 002) is at the end.
"""
from __future__ import annotations

from functools import partial
from typing import NamedTuple

import numpy as np

from cnnlab.kernels import _numba as _nb
from cnnlab.kernels import _threads


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


def update_running_stats(running_mean: np.ndarray | None, running_var: np.ndarray | None,
                         mean: np.ndarray, var: np.ndarray, n: float, momentum: float) -> None:
    """Move the running statistics (C,) in place towards a batch's ``mean`` and
    biased ``var`` over ``n`` values per channel (the variance made unbiased)."""
    if running_mean is not None:
        running_mean *= 1 - momentum
        running_mean += momentum * mean.astype(running_mean.dtype)
    if running_var is not None:
        running_var *= 1 - momentum
        running_var += momentum * (var * (n / (n - 1))).astype(running_var.dtype)


def batch_norm_forward(x: np.ndarray, running_mean: np.ndarray | None,
                       running_var: np.ndarray | None, gamma: np.ndarray | None,
                       beta: np.ndarray | None, training: bool, momentum: float,
                       eps: float, relu: bool = False) -> tuple[np.ndarray, BatchNormCache]:
    """x (N, C, ...) -> y (same shape and memory layout).  Updates running stats in
    place when training.  With numba the three passes run in one compiled kernel
    (:func:`_batch_norm_forward_fused`); this NumPy code is its specification.
    ``relu``: y = max(y, 0), a ReLU fused into the last pass."""
    axes = _reduce_axes(x)
    nd = x.ndim
    if training:
        n = x.size // x.shape[1]
        if n <= 1:
            raise ValueError(
                f"expected more than 1 value per channel when training, got input size {x.shape}")
    if _nb.AVAILABLE and x.ndim >= 2 and x.size:
        return _batch_norm_forward_fused(x, running_mean, running_var, gamma, beta, training,
                                         momentum, eps, relu)
    if training:
        mean = x.mean(axis=axes)
        xc = x - _bcast(mean, nd)
        var = np.mean(xc * xc, axis=axes)
        update_running_stats(running_mean, running_var, mean, var, n, momentum)
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
    if relu:
        y = np.maximum(y, 0)
    return y, BatchNormCache(x_hat, inv_std, gamma, training)


def batch_norm_backward(dy: np.ndarray, cache: BatchNormCache, relu_y: np.ndarray | None = None):
    """dy (N, C, ...) -> dx (same), dgamma (C,), dbeta (C,).

    With batch statistics the mean and variance depend on x, which gives
    dx = inv_std * (g - mean(g) - x_hat * mean(g * x_hat)),  g = gamma * dy.
    With running statistics dx is just inv_std * g.  After a fused ReLU, ``relu_y``
    is the forward's output and dy is zeroed where it is <= 0 first.
    """
    if _nb.AVAILABLE and dy.ndim >= 2 and dy.size:
        return _batch_norm_backward_fused(dy, cache, relu_y)
    if relu_y is not None:
        dy = np.where(relu_y > 0, dy, 0)
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


def _channel_major(a: np.ndarray) -> bool:
    """True when ``a`` (N, C, ...) is stored channel-major, (C, N, ...) in memory
    (the layout the notes' X_col convolution produces)."""
    return a.ndim >= 2 and a.shape[0] > 1 and a.shape[1] > 1 and a.strides[1] > a.strides[0]


def _as_channel_rows(a: np.ndarray, channel_major: bool) -> np.ndarray:
    """(N, C, ...) -> a C-contiguous (A, C, L) view, channel axis 1: (N, C, prod(spatial))
    for NCHW storage, (1, C, N*prod(spatial)) for channel-major; a copy only when ``a``
    is in neither layout."""
    N, C = a.shape[:2]
    if channel_major:
        t = np.ascontiguousarray(np.swapaxes(a, 0, 1))
        return t.reshape(1, C, -1)
    return np.ascontiguousarray(a).reshape(N, C, -1)


def _from_channel_rows(a3: np.ndarray, shape: tuple[int, ...], channel_major: bool) -> np.ndarray:
    """Inverse of :func:`_as_channel_rows` for an array allocated in that layout."""
    if channel_major:
        return np.swapaxes(a3.reshape((shape[1], shape[0]) + shape[2:]), 0, 1)
    return a3.reshape(shape)


def _batch_norm_forward_fused(x, running_mean, running_var, gamma, beta, training, momentum, eps,
                              relu=False):
    C = x.shape[1]
    cm = _channel_major(x)
    x3 = _as_channel_rows(x, cm)
    if training:
        mean, var = np.empty(C), np.empty(C)
    else:
        mean, var = running_mean.astype(np.float64), running_var.astype(np.float64)
    g = np.ones(C, x.dtype) if gamma is None else gamma
    b = np.zeros(C, x.dtype) if beta is None else beta
    x_hat3, y3 = np.empty_like(x3), np.empty_like(x3)
    inv_std = np.empty(C, dtype=x3.dtype)
    _threads.parallel([partial(_nb.bn_forward, x3, mean, var, training, g, b, float(eps), x_hat3,
                               y3, inv_std, c0, c1, relu)
                       for c0, c1 in _threads.split(C, x3.size)], blas=False)
    if training:
        n = x.size // C
        if running_mean is not None:
            running_mean *= 1 - momentum
            running_mean += (momentum * mean).astype(running_mean.dtype)
        if running_var is not None:
            running_var *= 1 - momentum
            running_var += (momentum * var * (n / (n - 1))).astype(running_var.dtype)
    return (_from_channel_rows(y3, x.shape, cm),
            BatchNormCache(_from_channel_rows(x_hat3, x.shape, cm), inv_std, gamma, training))


def _batch_norm_backward_fused(dy, cache: BatchNormCache, relu_y=None):
    C = dy.shape[1]
    cm = _channel_major(cache.x_hat)
    x_hat3 = _as_channel_rows(cache.x_hat, cm)
    dy3 = _as_channel_rows(dy.astype(x_hat3.dtype, copy=False), cm)
    y3 = x_hat3 if relu_y is None else _as_channel_rows(relu_y, cm)   # read only with a ReLU
    g = np.ones(C, x_hat3.dtype) if cache.gamma is None else cache.gamma
    dx3 = np.empty_like(x_hat3)
    dgamma, dbeta = np.empty(C, x_hat3.dtype), np.empty(C, x_hat3.dtype)
    _threads.parallel([partial(_nb.bn_backward, dy3, x_hat3, g, cache.inv_std, cache.training,
                               dx3, dgamma, dbeta, c0, c1, y3, relu_y is not None)
                       for c0, c1 in _threads.split(C, dy3.size)], blas=False)
    return _from_channel_rows(dx3, dy.shape, cm), dgamma, dbeta


# ---------------------------------------------------------------- shared helper
def _normalize(x: np.ndarray, axes: tuple[int, ...], eps: float
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """x_hat, mean, biased var and inv_std over ``axes`` (kept as size-1 axes)."""
    mean = x.mean(axis=axes, keepdims=True)
    xc = x - mean
    var = np.mean(xc * xc, axis=axes, keepdims=True)
    inv_std = (1.0 / np.sqrt(var + eps)).astype(x.dtype)
    return xc * inv_std, mean, var, inv_std


def _normalize_backward(g: np.ndarray, x_hat: np.ndarray, inv_std: np.ndarray,
                        axes: tuple[int, ...]) -> np.ndarray:
    """dx for x_hat = (x - mean) / sqrt(var + eps) with batch mean and var over ``axes``;
    ``g`` is the gradient with respect to x_hat."""
    g_mean = g.mean(axis=axes, keepdims=True)
    gx_mean = (g * x_hat).mean(axis=axes, keepdims=True)
    return inv_std * (g - g_mean - x_hat * gx_mean)


def _affine_backward(dy: np.ndarray, x_hat: np.ndarray, gamma: np.ndarray | None,
                     param_axes: tuple[int, ...], gamma_shape: tuple[int, ...]
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dgamma, dbeta (summed over ``param_axes``) and g = dL/dx_hat for y = gamma x_hat + beta."""
    dgamma = (dy * x_hat).sum(axis=param_axes).reshape(gamma_shape)
    dbeta = dy.sum(axis=param_axes).reshape(gamma_shape)
    g = dy if gamma is None else dy * gamma
    return dgamma, dbeta, g


# ------------------------------------------------------------------ layer norm
class LayerNormCache(NamedTuple):
    x_hat: np.ndarray
    inv_std: np.ndarray     # (..., 1, ..., 1): one per normalised slice
    gamma: np.ndarray | None
    ndim_norm: int          # how many trailing axes are normalised


def layer_norm_forward(x: np.ndarray, ndim_norm: int, gamma: np.ndarray | None,
                       beta: np.ndarray | None, eps: float
                       ) -> tuple[np.ndarray, LayerNormCache]:
    """x (*, D1, ..., Dk) -> y (same shape), normalising over the last k = ``ndim_norm``
    axes of each sample:  y = (x - mean) / sqrt(var + eps) * gamma + beta,
    gamma and beta (D1, ..., Dk) or None."""
    axes = tuple(range(x.ndim - ndim_norm, x.ndim))
    x_hat, _, _, inv_std = _normalize(x, axes, eps)
    y = x_hat if gamma is None else x_hat * gamma
    if beta is not None:
        y = y + beta
    return y, LayerNormCache(x_hat, inv_std, gamma, ndim_norm)


def layer_norm_backward(dy: np.ndarray, cache: LayerNormCache
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dy (*, D1..Dk) -> dx (same), dgamma (D1..Dk), dbeta (D1..Dk)."""
    k = cache.ndim_norm
    axes = tuple(range(dy.ndim - k, dy.ndim))
    lead = tuple(range(dy.ndim - k))
    dgamma, dbeta, g = _affine_backward(dy, cache.x_hat, cache.gamma, lead, dy.shape[dy.ndim - k:])
    return _normalize_backward(g, cache.x_hat, cache.inv_std, axes), dgamma, dbeta


# --------------------------------------------------------------- instance norm
class InstanceNormCache(NamedTuple):
    x_hat: np.ndarray
    inv_std: np.ndarray     # (N, C, 1, ...) with input stats, (1, C, 1, ...) with running ones
    gamma: np.ndarray | None  # broadcast shape (1, C, 1, ...)
    use_input_stats: bool


def instance_norm_forward(x: np.ndarray, running_mean: np.ndarray | None,
                          running_var: np.ndarray | None, gamma: np.ndarray | None,
                          beta: np.ndarray | None, use_input_stats: bool, momentum: float,
                          eps: float) -> tuple[np.ndarray, InstanceNormCache]:
    """x (N, C, *spatial) -> y (same shape), each (sample, channel) normalised over
    its spatial positions; gamma, beta, running stats (C,) or None.

    With ``use_input_stats`` the running stats (if given) are updated in place as
    PyTorch does, with the per-instance statistics averaged over the batch:
        running_mean = (1 - m) running_mean + m mean_n(mu_nc)
        running_var  = (1 - m) running_var  + m mean_n(var_nc * s / (s - 1))
    where s is the number of spatial positions.  Otherwise the running
    statistics normalise the input (as batch norm in eval).
    """
    nd = x.ndim
    gamma_b = None if gamma is None else _bcast(gamma, nd)
    if use_input_stats:
        axes = tuple(range(2, nd))
        x_hat, mean, var, inv_std = _normalize(x, axes, eps)
        s = x.size // (x.shape[0] * x.shape[1])
        n_c = x.shape[:2]
        if running_mean is not None:
            running_mean *= 1 - momentum
            running_mean += momentum * mean.reshape(n_c).mean(axis=0).astype(running_mean.dtype)
        if running_var is not None:
            unbiased = var.reshape(n_c) * (s / (s - 1))
            running_var *= 1 - momentum
            running_var += momentum * unbiased.mean(axis=0).astype(running_var.dtype)
    else:
        mean = _bcast(running_mean.astype(x.dtype), nd)
        inv_std = (1.0 / np.sqrt(_bcast(running_var.astype(x.dtype), nd) + eps)).astype(x.dtype)
        x_hat = (x - mean) * inv_std
    y = x_hat if gamma_b is None else x_hat * gamma_b
    if beta is not None:
        y = y + _bcast(beta, nd)
    return y, InstanceNormCache(x_hat, inv_std, gamma_b, use_input_stats)


def instance_norm_backward(dy: np.ndarray, cache: InstanceNormCache
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dy (N, C, *spatial) -> dx (same), dgamma (C,), dbeta (C,)."""
    dgamma, dbeta, g = _affine_backward(dy, cache.x_hat, cache.gamma, _reduce_axes(dy),
                                        (dy.shape[1],))
    if cache.use_input_stats:
        dx = _normalize_backward(g, cache.x_hat, cache.inv_std, tuple(range(2, dy.ndim)))
    else:
        dx = g * cache.inv_std
    return dx, dgamma, dbeta


# ------------------------------------------------------------------ group norm
class GroupNormCache(NamedTuple):
    x_hat_g: np.ndarray     # (N, G, C // G * spatial)
    inv_std: np.ndarray     # (N, G, 1)
    gamma: np.ndarray | None  # broadcast shape (1, C, 1, ...)


def group_norm_forward(x: np.ndarray, num_groups: int, gamma: np.ndarray | None,
                       beta: np.ndarray | None, eps: float
                       ) -> tuple[np.ndarray, GroupNormCache]:
    """x (N, C, *) -> y (same shape).  The C channels are split into ``num_groups``
    consecutive groups of C / G; each (sample, group) is normalised over its
    channels and positions, then y = x_hat * gamma_c + beta_c, gamma, beta (C,).
    G = 1 is layer norm over (C, *), G = C is instance norm."""
    n = x.shape[0]
    x_hat_g, _, _, inv_std = _normalize(x.reshape(n, num_groups, -1), (2,), eps)
    x_hat = x_hat_g.reshape(x.shape)
    gamma_b = None if gamma is None else _bcast(gamma, x.ndim)
    y = x_hat if gamma_b is None else x_hat * gamma_b
    if beta is not None:
        y = y + _bcast(beta, x.ndim)
    return y, GroupNormCache(x_hat_g, inv_std, gamma_b)


def group_norm_backward(dy: np.ndarray, cache: GroupNormCache
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dy (N, C, *) -> dx (same), dgamma (C,), dbeta (C,)."""
    x_hat = cache.x_hat_g.reshape(dy.shape)
    dgamma, dbeta, g = _affine_backward(dy, x_hat, cache.gamma, _reduce_axes(dy), (dy.shape[1],))
    dx = _normalize_backward(g.reshape(cache.x_hat_g.shape), cache.x_hat_g, cache.inv_std, (2,))
    return dx.reshape(dy.shape), dgamma, dbeta


# ------------------------------------------------------ local response norm
class LocalResponseNormCache(NamedTuple):
    x: np.ndarray
    d: np.ndarray           # k + alpha / size * (window sum of x^2), same shape as x
    scale: np.ndarray       # d ** -beta
    size: int
    alpha: float
    beta: float


def _channel_window_sum(a: np.ndarray, size: int, before: int) -> np.ndarray:
    """out[:, c] = sum of a[:, j] for c - before <= j < c - before + size (zero outside)."""
    c = a.shape[1]
    pad = [(0, 0)] * a.ndim
    pad[1] = (before, size - 1 - before)
    ap = np.pad(a, pad)
    out = ap[:, 0:c].copy()
    for j in range(1, size):
        out += ap[:, j:j + c]
    return out


def local_response_norm_forward(x: np.ndarray, size: int, alpha: float, beta: float,
                                k: float) -> tuple[np.ndarray, LocalResponseNormCache]:
    """x (N, C, *) -> y (same shape), AlexNet's local response normalisation as
    PyTorch defines it (the notes, 002):

        d_c = k + alpha / size * sum_{j = c - size//2}^{c + (size-1)//2} x_j^2
        y_c = x_c / d_c^beta

    with zeros outside the channel range (the window always counts ``size``)."""
    s = _channel_window_sum(x * x, size, size // 2)
    d = k + (alpha / size) * s
    scale = d ** -beta
    return x * scale, LocalResponseNormCache(x, d, scale, size, alpha, beta)


def local_response_norm_backward(dy: np.ndarray, cache: LocalResponseNormCache) -> np.ndarray:
    """dy (N, C, *) -> dx (same shape).

    dx_i = dy_i d_i^-beta - 2 alpha beta / size * x_i * sum_{c: i in window(c)} dy_c x_c d_c^(-beta-1)
    where c runs over i - (size-1)//2 .. i + size//2 (the window reflected).
    """
    x, size = cache.x, cache.size
    t = dy * x * cache.scale / cache.d
    back = _channel_window_sum(t, size, (size - 1) // 2)
    return dy * cache.scale - (2 * cache.alpha * cache.beta / size) * x * back
