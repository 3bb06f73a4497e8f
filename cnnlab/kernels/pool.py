"""2-D pooling kernels: max and average, forward and backward.

x (N, C, H, W) -> y (N, C, OH, OW) with, as in PyTorch,

    OH = (H + 2 * pad - dilation * (K - 1) - 1 + (stride - 1 if ceil_mode else 0)) // stride + 1

and in ceil mode the last window dropped if it would start past the padding.

Both NumPy kernels loop over the KH * KW positions inside a window (a
handful) and do whole-array work for each, so no Python runs per element;
:mod:`cnnlab.kernels._numba` has compiled twins of the max-pool loops.
Outputs and gradients keep the input's memory layout (see ``zeros_like_layout``).

Max-pool backward routes each upstream gradient to the position of its
window's maximum, as in the notes: for the window [1, 2, 3, 2] the gradient g
goes to the 3, giving [0, 0, g, 0].  **Ties:** the first maximum in scan order
(row by row, left to right) wins, which is what PyTorch's CPU kernel does; the
other tied positions get nothing.  A NaN wins over any number (NaNs
propagate, as in PyTorch).  Where windows overlap, a position that is the
maximum of several windows receives the sum of their gradients.
"""
from __future__ import annotations

from functools import partial
from typing import NamedTuple

import numpy as np

from cnnlab.kernels import _numba as _nb
from cnnlab.kernels import _threads
from cnnlab.kernels.conv_common import window, zeros_like_layout

Pair = tuple[int, int]


class MaxPoolCache(NamedTuple):
    argmax: np.ndarray   # (N, C, OH, OW) int8/int32: kh * KW + kw of the winner
    x_shape: tuple[int, int, int, int]
    kernel: Pair
    stride: Pair
    padding: Pair
    dilation: Pair
    padded_hw: Pair      # the padded input the windows were taken from


class AvgPoolCache(NamedTuple):
    divisor: np.ndarray   # (OH, OW): the count each window's sum was divided by
    x_shape: tuple[int, int, int, int]
    kernel: Pair
    stride: Pair
    padding: Pair
    padded_hw: Pair


def pool_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int = 1,
                     ceil_mode: bool = False) -> int:
    """PyTorch's pooling output size (floor, or ceil with the last-window rule)."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    out = (span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def _padded_extent(size: int, out: int, kernel: int, stride: int, padding: int,
                   dilation: int) -> int:
    """Length of the padded input the windows read: left padding, the input,
    and on the far side the padding or, in ceil mode, what the last window needs."""
    return max(size + 2 * padding, (out - 1) * stride + dilation * (kernel - 1) + 1)


def _pad(x: np.ndarray, padding: Pair, padded_hw: Pair, value: float) -> np.ndarray:
    """x padded by ``padding`` on the near sides and up to ``padded_hw`` on the far
    sides with ``value``, in x's memory layout."""
    N, C, H, W = x.shape
    ph, pw = padding
    if padded_hw == (H, W):
        return x
    xp = zeros_like_layout((N, C, *padded_hw), x)
    if value != 0:
        xp[...] = value
    xp[:, :, ph:ph + H, pw:pw + W] = x
    return xp


def max_pool2d_forward(x: np.ndarray, kernel: Pair, stride: Pair, padding: Pair = (0, 0),
                       dilation: Pair = (1, 1),
                       ceil_mode: bool = False) -> tuple[np.ndarray, MaxPoolCache]:
    """Max over each KH x KW window (taps ``dilation`` apart); padding counts as -inf.

    x (N, C, H, W) -> y (N, C, OH, OW).
    """
    N, C, H, W = x.shape
    KH, KW = kernel
    OH = pool_output_size(H, KH, stride[0], padding[0], dilation[0], ceil_mode)
    OW = pool_output_size(W, KW, stride[1], padding[1], dilation[1], ceil_mode)
    Hp = _padded_extent(H, OH, KH, stride[0], padding[0], dilation[0])
    Wp = _padded_extent(W, OW, KW, stride[1], padding[1], dilation[1])
    xp = _pad(x, padding, (Hp, Wp), -np.inf)
    arg_dtype = np.int8 if KH * KW < 128 else np.int32
    cache_args = ((N, C, H, W), kernel, stride, padding, dilation, (Hp, Wp))
    compiled = _nb.AVAILABLE
    # keeps x's memory layout; every output written (the compiled loops write every winner)
    y = zeros_like_layout((N, C, OH, OW), xp, fill=False)
    argmax = zeros_like_layout((N, C, OH, OW), xp, arg_dtype, fill=not compiled)
    if compiled:
        order = _nb.outer_order(xp)
        xo, yo, ao = xp.transpose(order), y.transpose(order), argmax.transpose(order)
        _threads.parallel([partial(_nb.max_pool_fwd, xo, KH, KW, stride[0], stride[1],
                                   dilation[0], dilation[1], yo, ao, a0, a1)
                           for a0, a1 in _threads.split(xo.shape[0], xp.size)], blas=False)
        return y, MaxPoolCache(argmax, *cache_args)
    dh, dw = dilation
    y[...] = window(xp, 0, 0, stride, (OH, OW))
    for i in range(KH):
        for j in range(KW):
            if i == 0 and j == 0:
                continue
            v = window(xp, i * dh, j * dw, stride, (OH, OW))
            # strict '>': on a tie the earlier position stays; a NaN always wins
            better = (v > y) | np.isnan(v)
            np.copyto(y, v, where=better)
            np.copyto(argmax, i * KW + j, where=better)
    return y, MaxPoolCache(argmax, *cache_args)


def max_pool2d_backward(dy: np.ndarray, cache: MaxPoolCache) -> np.ndarray:
    """dy (N, C, OH, OW) -> dx (N, C, H, W): each gradient goes to its window's argmax."""
    N, C, H, W = cache.x_shape
    KH, KW = cache.kernel
    ph, pw = cache.padding
    dh, dw = cache.dilation
    OH, OW = dy.shape[2:]
    # 2x2 windows at stride 2 that tile the padded input: the compiled loop writes every
    # element (zero or the gradient), so the buffer need not be zeroed first
    tiles = (_nb.AVAILABLE and cache.kernel == (2, 2) and cache.stride == (2, 2)
             and cache.dilation == (1, 1) and cache.padded_hw == (2 * OH, 2 * OW))
    dxp = zeros_like_layout((N, C, *cache.padded_hw), cache.argmax, dy.dtype, fill=not tiles)
    if _nb.AVAILABLE:
        order = _nb.outer_order(cache.argmax)
        do, ao, dxo = dy.transpose(order), cache.argmax.transpose(order), dxp.transpose(order)
        _threads.parallel([partial(_nb.max_pool_bwd, do, ao, KH, KW, cache.stride[0],
                                   cache.stride[1], dh, dw, dxo, a0, a1)
                           for a0, a1 in _threads.split(ao.shape[0], dxp.size)],
                          blas=False)
    else:
        for i in range(KH):
            for j in range(KW):
                # views of different (i, j) may overlap, so accumulate one at a time
                window(dxp, i * dh, j * dw, cache.stride, (OH, OW))[...] += np.where(
                    cache.argmax == i * KW + j, dy, 0)
    return dxp[:, :, ph:ph + H, pw:pw + W]


def max_pool2d_indices(cache: MaxPoolCache) -> np.ndarray:
    """PyTorch's ``return_indices``: for every output, the flat index h * W + w
    of its maximum in the (unpadded) input plane.  (N, C, OH, OW) int64."""
    N, C, H, W = cache.x_shape
    KH, KW = cache.kernel
    OH, OW = cache.argmax.shape[2:]
    k = cache.argmax.astype(np.int64)
    oh = np.arange(OH).reshape(OH, 1) * cache.stride[0] - cache.padding[0]
    ow = np.arange(OW).reshape(1, OW) * cache.stride[1] - cache.padding[1]
    h = oh + (k // KW) * cache.dilation[0]
    w = ow + (k % KW) * cache.dilation[1]
    return h * W + w


def avg_pool2d_forward(x: np.ndarray, kernel: Pair, stride: Pair, padding: Pair = (0, 0),
                       ceil_mode: bool = False, count_include_pad: bool = True,
                       divisor_override: int | None = None) -> tuple[np.ndarray, AvgPoolCache]:
    """Mean over each window, with PyTorch's divisor: the window clipped to the
    padded input, or (``count_include_pad=False``) to the real input, or
    ``divisor_override`` for every window.

    x (N, C, H, W) -> y (N, C, OH, OW).
    """
    N, C, H, W = x.shape
    KH, KW = kernel
    OH = pool_output_size(H, KH, stride[0], padding[0], 1, ceil_mode)
    OW = pool_output_size(W, KW, stride[1], padding[1], 1, ceil_mode)
    Hp = _padded_extent(H, OH, KH, stride[0], padding[0], 1)
    Wp = _padded_extent(W, OW, KW, stride[1], padding[1], 1)
    xp = _pad(x, padding, (Hp, Wp), 0.0)
    y = zeros_like_layout((N, C, OH, OW), x)
    for i in range(KH):
        for j in range(KW):
            y += window(xp, i, j, stride, (OH, OW))
    if divisor_override:
        divisor = np.full((OH, OW), divisor_override, dtype=x.dtype)
    else:
        dh = _divisor_1d(H, OH, KH, stride[0], padding[0], count_include_pad)
        dw = _divisor_1d(W, OW, KW, stride[1], padding[1], count_include_pad)
        divisor = np.outer(dh, dw).astype(x.dtype)
    y /= divisor
    return y, AvgPoolCache(divisor, (N, C, H, W), kernel, stride, padding, (Hp, Wp))


def _divisor_1d(size: int, out: int, k: int, s: int, p: int, include_pad: bool) -> np.ndarray:
    start = np.arange(out) * s - p
    end = np.minimum(start + k, size + p)          # clipped to the padded input
    if include_pad:
        return end - start
    return np.minimum(end, size) - np.maximum(start, 0)


def avg_pool2d_backward(dy: np.ndarray, cache: AvgPoolCache) -> np.ndarray:
    """dy (N, C, OH, OW) -> dx (N, C, H, W): each gradient spread evenly over its window."""
    N, C, H, W = cache.x_shape
    KH, KW = cache.kernel
    ph, pw = cache.padding
    OH, OW = dy.shape[2:]
    g = dy / cache.divisor
    dxp = zeros_like_layout((N, C, *cache.padded_hw), g)
    for i in range(KH):
        for j in range(KW):
            window(dxp, i, j, cache.stride, (OH, OW))[...] += g
    return dxp[:, :, ph:ph + H, pw:pw + W]
