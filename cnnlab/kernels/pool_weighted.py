"""Distance-weighted average pooling, forward and backward side by side.

Deep Learning ch. 9.3 ("Pooling"), as the notes retell it (004), lists four
common pooling functions: the maximum, the average of a rectangular
neighbourhood, the L2 norm, and "a weighted average based on the distance from
the central pixel".  This file is the fourth.  Each window position (i, j) of a
KH x KW window gets a fixed weight w_ij = f(r_ij) of its distance

    r_ij = sqrt((i - (KH - 1) / 2) ** 2 + (j - (KW - 1) / 2) ** 2)

from the window's centre (a Gaussian f(r) = exp(-r ** 2 / (2 sigma ** 2)) by
default, see :func:`distance_weights`), and the output is the weighted mean

    y = sum_ij w_ij x_ij / sum_ij w_ij.

Zero padding is handled as average pooling handles it: with
``count_include_pad`` the padded positions count in the denominator (their
values are 0), without it the weights are renormalised over the real pixels
of each window.  With a flat profile (every w_ij equal) it is
:func:`cnnlab.kernels.pool.avg_pool2d_forward` with the same padding rule.

ndarrays in, ndarrays out; float32 stays float32.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

from cnnlab.kernels.conv_common import window
from cnnlab.kernels.pool import Pair, pool_output_size

Profile = Callable[[np.ndarray], np.ndarray]


def window_distances(kernel: Pair) -> np.ndarray:
    """(KH, KW) float64: the distance of each window position from the window's
    centre ((KH - 1) / 2, (KW - 1) / 2), in pixels."""
    KH, KW = kernel
    i = np.arange(KH, dtype=np.float64) - (KH - 1) / 2
    j = np.arange(KW, dtype=np.float64) - (KW - 1) / 2
    return np.sqrt(i[:, None] ** 2 + j[None, :] ** 2)


def gaussian_profile(sigma: float) -> Profile:
    """f(r) = exp(-r ** 2 / (2 sigma ** 2)); the Gaussian's constant factor cancels
    in the normalisation."""
    def profile(r: np.ndarray) -> np.ndarray:
        return np.exp(-(r * r) / (2.0 * sigma * sigma))
    return profile


def distance_weights(kernel: Pair, profile: Profile) -> np.ndarray:
    """(KH, KW) float64 weights f(r_ij) of a radial ``profile`` f, checked to be
    finite and non-negative with a positive sum (before normalisation)."""
    r = window_distances(kernel)
    w = np.asarray(profile(r), dtype=np.float64)
    if w.ndim == 0:                 # a constant profile: flat weights
        w = np.full(r.shape, float(w))
    if w.shape != r.shape:
        raise ValueError(f"the profile must return one weight per distance, shape {r.shape}, "
                         f"got shape {w.shape}")
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError(f"the profile's weights must be finite and >= 0, got {w.tolist()}")
    if not w.sum() > 0:
        raise ValueError("the profile's weights sum to 0 over the window; at least one must be > 0")
    return w


class WeightedPoolCache(NamedTuple):
    x_shape: tuple[int, int, int, int]
    weights: np.ndarray       # (KH, KW) the unnormalised weights, in x's dtype
    stride: Pair
    padding: Pair
    denominator: np.ndarray   # (1, 1, OH, OW) or (1, 1, 1, 1): sum of the counted weights


def _padded(a: np.ndarray, padding: Pair) -> np.ndarray:
    ph, pw = padding
    if not ph and not pw:
        return a
    return np.pad(a, ((0, 0), (0, 0), (ph, ph), (pw, pw)))


def weighted_pool2d_forward(x: np.ndarray, weights: np.ndarray, stride: Pair, padding: Pair = (0, 0),
                            count_include_pad: bool = True
                            ) -> tuple[np.ndarray, WeightedPoolCache]:
    """Weighted average of every window, the weights normalised per window.

    x (N, C, H, W), weights (KH, KW) >= 0 -> y (N, C, OH, OW),
    OH = (H + 2 PH - KH) // SH + 1, where

        y[n, c, oh, ow] = sum_ij w_ij xp[n, c, oh SH + i, ow SW + j] / D[oh, ow]

    with xp the zero-padded input and D = sum_ij w_ij (``count_include_pad``)
    or the sum of the w_ij that fall on real pixels of that window.  With
    padding at most half the kernel (the functional op's check), every window
    holds a whole quadrant of real positions around its centre, which by
    symmetry carries every distance of the window: D > 0 whenever sum w > 0.
    """
    N, C, H, W = x.shape
    KH, KW = weights.shape
    w = weights.astype(x.dtype, copy=False)
    out_hw = (pool_output_size(H, KH, stride[0], padding[0]),
              pool_output_size(W, KW, stride[1], padding[1]))
    xp = _padded(x, padding)
    y = np.zeros((N, C, *out_hw), dtype=x.dtype)
    for i in range(KH):
        for j in range(KW):
            if w[i, j]:
                y += w[i, j] * window(xp, i, j, stride, out_hw)
    if count_include_pad or not any(padding):
        denominator = np.full((1, 1, 1, 1), w.sum(), dtype=x.dtype)
    else:
        real = _padded(np.ones((1, 1, H, W), dtype=x.dtype), padding)
        denominator = np.zeros((1, 1, *out_hw), dtype=x.dtype)
        for i in range(KH):
            for j in range(KW):
                denominator += w[i, j] * window(real, i, j, stride, out_hw)
    y /= denominator
    return y, WeightedPoolCache((N, C, H, W), w, stride, padding, denominator)


def weighted_pool2d_backward(dy: np.ndarray, cache: WeightedPoolCache) -> np.ndarray:
    """dy (N, C, OH, OW) -> dx (N, C, H, W): window position (i, j) of every output
    receives w_ij / D times its gradient, summed where windows overlap; the
    padding's share is dropped."""
    N, C, H, W = cache.x_shape
    ph, pw = cache.padding
    KH, KW = cache.weights.shape
    out_hw = dy.shape[2:]
    scaled = dy / cache.denominator
    dxp = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=dy.dtype)
    for i in range(KH):
        for j in range(KW):
            if cache.weights[i, j]:
                window(dxp, i, j, cache.stride, out_hw)[...] += cache.weights[i, j] * scaled
    return dxp[:, :, ph:ph + H, pw:pw + W]
