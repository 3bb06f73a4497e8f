"""2-D pooling kernels: max and average, forward and backward.

x (N, C, H, W) -> y (N, C, OH, OW), OH = (H + 2 * pad_h - KH) // stride_h + 1.

Both kernels loop over the KH * KW positions inside a window (a handful) and
do whole-array work for each, so no Python runs per element.

Max-pool backward routes each upstream gradient to the position of its
window's maximum, as in the notes: for the window [1, 2, 3, 2] the gradient g
goes to the 3, giving [0, 0, g, 0].  **Ties:** the first maximum in scan order
(row by row, left to right) wins, which is what PyTorch's CPU kernel does; the
other tied positions get nothing.  Where windows overlap, a position that is
the maximum of several windows receives the sum of their gradients.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from cnnlab.kernels import _numba as _nb
from cnnlab.kernels.conv import zeros_like_layout

Pair = tuple[int, int]


class MaxPoolCache(NamedTuple):
    argmax: np.ndarray   # (N, C, OH, OW) int8/int16: kh * KW + kw of the winner
    x_shape: tuple[int, int, int, int]
    kernel: Pair
    stride: Pair
    padding: Pair


class AvgPoolCache(NamedTuple):
    divisor: np.ndarray | float   # per output position, or one number
    x_shape: tuple[int, int, int, int]
    kernel: Pair
    stride: Pair
    padding: Pair


def pool_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def _window(a: np.ndarray, i: int, j: int, stride: Pair, out_hw: Pair) -> np.ndarray:
    """The strided view of ``a`` holding position (i, j) of every window."""
    sh, sw = stride
    OH, OW = out_hw
    return a[:, :, i:i + sh * (OH - 1) + 1:sh, j:j + sw * (OW - 1) + 1:sw]


def _pad(x: np.ndarray, padding: Pair, value: float) -> np.ndarray:
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    N, C, H, W = x.shape
    xp = zeros_like_layout((N, C, H + 2 * ph, W + 2 * pw), x)   # same memory layout as x
    if value != 0:
        xp[...] = value
    xp[:, :, ph:ph + H, pw:pw + W] = x
    return xp


def max_pool2d_forward(x: np.ndarray, kernel: Pair, stride: Pair,
                       padding: Pair = (0, 0)) -> tuple[np.ndarray, MaxPoolCache]:
    """Max over each KH x KW window; padding counts as -inf.

    x (N, C, H, W) -> y (N, C, OH, OW).
    """
    N, C, H, W = x.shape
    KH, KW = kernel
    OH = pool_output_size(H, KH, stride[0], padding[0])
    OW = pool_output_size(W, KW, stride[1], padding[1])
    xp = _pad(x, padding, -np.inf)
    arg_dtype = np.int8 if KH * KW < 128 else np.int32
    if _nb.AVAILABLE:
        y = zeros_like_layout((N, C, OH, OW), xp)          # keeps x's memory layout
        argmax = zeros_like_layout((N, C, OH, OW), xp, arg_dtype)
        _nb.max_pool_fwd(_nb.outer_first(xp), KH, KW, stride[0], stride[1],
                         _nb.outer_first(y), _nb.outer_first(argmax))
        return y, MaxPoolCache(argmax, (N, C, H, W), kernel, stride, padding)
    y = _window(xp, 0, 0, stride, (OH, OW)).copy(order="K")   # keeps x's memory layout
    argmax = np.zeros_like(y, dtype=arg_dtype)
    for i in range(KH):
        for j in range(KW):
            if i == 0 and j == 0:
                continue
            v = _window(xp, i, j, stride, (OH, OW))
            better = v > y          # strict: on a tie the earlier position stays
            np.copyto(y, v, where=better)
            argmax[better] = i * KW + j
    return y, MaxPoolCache(argmax, (N, C, H, W), kernel, stride, padding)


def max_pool2d_backward(dy: np.ndarray, cache: MaxPoolCache) -> np.ndarray:
    """dy (N, C, OH, OW) -> dx (N, C, H, W): each gradient goes to its window's argmax."""
    N, C, H, W = cache.x_shape
    KH, KW = cache.kernel
    ph, pw = cache.padding
    OH, OW = dy.shape[2:]
    dxp = zeros_like_layout((N, C, H + 2 * ph, W + 2 * pw), cache.argmax, dy.dtype)
    sh, sw = cache.stride
    if _nb.AVAILABLE:
        order = (1, 0, 2, 3) if cache.argmax.strides[1] > cache.argmax.strides[0] else (0, 1, 2, 3)
        _nb.max_pool_bwd(dy.transpose(order), cache.argmax.transpose(order), KH, KW, sh, sw,
                         dxp.transpose(order))
    elif (sh, sw) == (KH, KW):
        # windows tile the input: each position belongs to at most one window,
        # so assignment is enough (and faster than accumulate)
        for i in range(KH):
            for j in range(KW):
                _window(dxp, i, j, cache.stride, (OH, OW))[...] = np.where(
                    cache.argmax == i * KW + j, dy, 0)
    else:
        for i in range(KH):
            for j in range(KW):
                _window(dxp, i, j, cache.stride, (OH, OW))[...] += np.where(
                    cache.argmax == i * KW + j, dy, 0)
    return dxp[:, :, ph:ph + H, pw:pw + W]


def avg_pool2d_forward(x: np.ndarray, kernel: Pair, stride: Pair, padding: Pair = (0, 0),
                       count_include_pad: bool = True) -> tuple[np.ndarray, AvgPoolCache]:
    """Mean over each window; zero padding, counted in the divisor unless
    ``count_include_pad`` is False (PyTorch's rule).

    x (N, C, H, W) -> y (N, C, OH, OW).
    """
    N, C, H, W = x.shape
    KH, KW = kernel
    OH = pool_output_size(H, KH, stride[0], padding[0])
    OW = pool_output_size(W, KW, stride[1], padding[1])
    xp = _pad(x, padding, 0.0)
    y = zeros_like_layout((N, C, OH, OW), x)
    for i in range(KH):
        for j in range(KW):
            y += _window(xp, i, j, stride, (OH, OW))
    divisor: np.ndarray | float = float(KH * KW)
    if not count_include_pad and padding != (0, 0):
        ones = _pad(np.ones((1, 1, H, W), dtype=x.dtype), padding, 0.0)
        divisor = np.zeros((1, 1, OH, OW), dtype=x.dtype)
        for i in range(KH):
            for j in range(KW):
                divisor += _window(ones, i, j, stride, (OH, OW))
    y /= np.asarray(divisor, dtype=x.dtype)
    return y, AvgPoolCache(divisor, (N, C, H, W), kernel, stride, padding)


def avg_pool2d_backward(dy: np.ndarray, cache: AvgPoolCache) -> np.ndarray:
    """dy (N, C, OH, OW) -> dx (N, C, H, W): each gradient spread evenly over its window."""
    N, C, H, W = cache.x_shape
    KH, KW = cache.kernel
    ph, pw = cache.padding
    OH, OW = dy.shape[2:]
    g = dy / np.asarray(cache.divisor, dtype=dy.dtype)
    dxp = zeros_like_layout((N, C, H + 2 * ph, W + 2 * pw), g)
    for i in range(KH):
        for j in range(KW):
            _window(dxp, i, j, cache.stride, (OH, OW))[...] += g
    return dxp[:, :, ph:ph + H, pw:pw + W]
