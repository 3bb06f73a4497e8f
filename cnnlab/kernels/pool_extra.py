"""More pooling kernels: LP-norm, stochastic, adaptive (average and max) and
LeNet's trainable subsampling, forward and backward side by side.

All take x (N, C, H, W) and return y (N, C, OH, OW); ndarrays in, ndarrays
out, float32 stays float32.  The max and average kernels they build on are in
:mod:`cnnlab.kernels.pool`.  Sources: sum and L2-norm pooling and fixed-size
pooled outputs such as one per quadrant (Deep Learning ch. 9.3, "Pooling"),
trainable subsampling x_j = beta_j down(x_j) + b_j (Bouvrie's "Notes on
Convolutional Neural Networks", sub-sampling layers); stochastic pooling is
Zeiler & Fergus (2013).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from cnnlab.kernels import _threads
from cnnlab.kernels import pool as pool_k
from cnnlab.kernels.conv_common import window
from cnnlab.kernels.pool import Pair, pool_output_size

# --------------------------------------------------------------------- LP pool


class LPPoolCache(NamedTuple):
    x: np.ndarray             # (N, C, H, W) the input
    a: np.ndarray             # (N, C, OH, OW) avg_pool of x ** p
    y: np.ndarray             # (N, C, OH, OW) the output
    avg: pool_k.AvgPoolCache
    norm_type: float
    numel: int                # KH * KW


def lp_pool2d_forward(x: np.ndarray, norm_type: float, kernel: Pair, stride: Pair,
                      ceil_mode: bool = False) -> tuple[np.ndarray, LPPoolCache]:
    """Power-average pooling, exactly as PyTorch defines it:

        a = avg_pool2d(x ** p),   y = (sign(a) relu(|a|) * KH * KW) ** (1 / p)

    i.e. y = (sum over the window of x ** p) ** (1 / p).  p = 1 is sum pooling,
    p = 2 L2-norm pooling, p -> inf approaches max pooling.  In ceil mode a
    window clipped by the border is averaged over its real positions and still
    multiplied by KH * KW (PyTorch's numbers).  Negative x with a non-integer
    or odd p gives NaN, as in PyTorch.

    x (N, C, H, W) -> y (N, C, OH, OW), OH = (H - KH (+ S - 1 in ceil mode)) // S + 1.
    """
    p = float(norm_type)
    numel = kernel[0] * kernel[1]
    with np.errstate(invalid="ignore"):   # negative x ** 1.5: NaN, silently, as in PyTorch
        a, avg = pool_k.avg_pool2d_forward(x ** x.dtype.type(p), kernel, stride, (0, 0),
                                           ceil_mode)
        y = (a * x.dtype.type(numel)) ** x.dtype.type(1.0 / p)
    return y, LPPoolCache(x, a, y, avg, p, numel)


def lp_pool2d_backward(dy: np.ndarray, cache: LPPoolCache) -> np.ndarray:
    """dy (N, C, OH, OW) -> dx (N, C, H, W).

    With z = K a:  dy/da = K (1/p) z ** (1/p - 1) where a != 0 and 0 where a == 0
    (PyTorch's sign * relu gate), then avg_pool2d's backward, then
    d(x ** p)/dx = p x ** (p - 1).
    """
    x, a, y, avg, p, numel = cache
    t = x.dtype.type
    z = a * t(numel)
    with np.errstate(divide="ignore", invalid="ignore"):
        dz = dy * t(1.0 / p) * z ** t(1.0 / p - 1.0)
        da = np.where(a != 0, dz * t(numel), t(0)).astype(x.dtype, copy=False)
        dpow = pool_k.avg_pool2d_backward(da, avg)
        return dpow * (t(p) * x ** t(p - 1.0))


# ------------------------------------------------------------- stochastic pool


class StochasticPoolCache(NamedTuple):
    x: np.ndarray             # (N, C, H, W) the input
    x_shape: tuple[int, int, int, int]
    kernel: Pair
    stride: Pair
    chosen: np.ndarray | None  # train: (N, C, OH, OW) kh * KW + kw sampled, -1 if none
    total: np.ndarray | None   # eval: (N, C, OH, OW) sum of each window
    y: np.ndarray


def _out_hw(x: np.ndarray, kernel: Pair, stride: Pair) -> Pair:
    """Output size of unpadded floor-mode windows."""
    N, C, H, W = x.shape
    return (pool_output_size(H, kernel[0], stride[0], 0),
            pool_output_size(W, kernel[1], stride[1], 0))


def stochastic_pool2d_train_forward(x: np.ndarray, kernel: Pair, stride: Pair,
                                    uniforms: np.ndarray
                                    ) -> tuple[np.ndarray, StochasticPoolCache]:
    """Training-time stochastic pooling (Zeiler & Fergus 2013).

    In each window with activations a_i >= 0 (scan order, row by row) pick one
    position with probability p_i = a_i / sum_j a_j and output its value.  The
    draw is inverse-CDF sampling with ``uniforms`` (N, C, OH, OW) in [0, 1): the
    first i whose running sum exceeds u * sum_j a_j.  A position with a_i = 0
    is never picked; an all-zero window picks nothing and outputs 0.

    x (N, C, H, W) -> y (N, C, OH, OW), OH = (H - KH) // SH + 1 (no padding).
    """
    N, C, H, W = x.shape
    KH, KW = kernel
    out_hw = _out_hw(x, kernel, stride)
    total = np.zeros((N, C, *out_hw), dtype=x.dtype)
    for i in range(KH):
        for j in range(KW):
            total += window(x, i, j, stride, out_hw)
    threshold = uniforms.astype(x.dtype, copy=False) * total
    running = np.zeros_like(total)
    chosen = np.full(total.shape, -1, dtype=np.int8 if KH * KW < 128 else np.int32)
    y = np.zeros_like(total)
    last = np.full_like(chosen, -1)      # the last positive position, in case rounding
    last_value = np.zeros_like(total)    # made u * total reach total (u just below 1)
    for i in range(KH):
        for j in range(KW):
            v = window(x, i, j, stride, out_hw)
            running += v
            pick = (chosen < 0) & (running > threshold)
            np.copyto(chosen, i * KW + j, where=pick)
            np.copyto(y, v, where=pick)
            np.copyto(last, i * KW + j, where=v > 0)
            np.copyto(last_value, v, where=v > 0)
    missed = (chosen < 0) & (total > 0)
    np.copyto(chosen, last, where=missed)
    np.copyto(y, last_value, where=missed)
    return y, StochasticPoolCache(x, (N, C, H, W), kernel, stride, chosen, None, y)


def stochastic_pool2d_eval_forward(x: np.ndarray, kernel: Pair, stride: Pair
                                   ) -> tuple[np.ndarray, StochasticPoolCache]:
    """Test-time stochastic pooling: the probability-weighted average

        y = sum_i p_i a_i = sum_i a_i**2 / sum_i a_i   (0 for an all-zero window).

    x (N, C, H, W) -> y (N, C, OH, OW), OH = (H - KH) // SH + 1 (no padding).
    """
    N, C, H, W = x.shape
    KH, KW = kernel
    out_hw = _out_hw(x, kernel, stride)
    total = np.zeros((N, C, *out_hw), dtype=x.dtype)
    squares = np.zeros_like(total)
    for i in range(KH):
        for j in range(KW):
            v = window(x, i, j, stride, out_hw)
            total += v
            squares += v * v
    safe = np.where(total > 0, total, x.dtype.type(1))
    y = np.where(total > 0, squares / safe, x.dtype.type(0)).astype(x.dtype, copy=False)
    return y, StochasticPoolCache(x, (N, C, H, W), kernel, stride, None, total, y)


def stochastic_pool2d_backward(dy: np.ndarray, cache: StochasticPoolCache) -> np.ndarray:
    """dy (N, C, OH, OW) -> dx (N, C, H, W).

    Train: each gradient goes to the sampled position (none for an all-zero
    window), summed where windows overlap.  Eval: the gradient of
    sum a_i**2 / sum a_i, i.e. d y / d a_j = (2 a_j - y) / sum_i a_i (0 for an
    all-zero window, where it is undefined).
    """
    N, C, H, W = cache.x_shape
    KH, KW = cache.kernel
    out_hw = dy.shape[2:]
    dx = np.zeros((N, C, H, W), dtype=dy.dtype)
    if cache.chosen is not None:
        for i in range(KH):
            for j in range(KW):
                window(dx, i, j, cache.stride, out_hw)[...] += np.where(
                    cache.chosen == i * KW + j, dy, 0)
        return dx
    total = cache.total
    scale = np.where(total > 0, dy / np.where(total > 0, total, total.dtype.type(1)), 0)
    scale = scale.astype(dy.dtype, copy=False)
    two = dy.dtype.type(2)
    for i in range(KH):
        for j in range(KW):
            v = window(cache.x, i, j, cache.stride, out_hw)
            window(dx, i, j, cache.stride, out_hw)[...] += scale * (two * v - cache.y)
    return dx


# ------------------------------------------------------------------- adaptive


def adaptive_bins(size: int, out: int) -> tuple[np.ndarray, np.ndarray]:
    """PyTorch's adaptive bins along one axis: bin i covers
    [floor(i * size / out), ceil((i + 1) * size / out)).  Neighbouring bins
    overlap when ``out`` does not divide ``size``; with out > size bins repeat."""
    i = np.arange(out)
    start = (i * size) // out
    end = -((-(i + 1) * size) // out)
    return start, end


def _bin_matrix(size: int, out: int, dtype: np.dtype) -> np.ndarray:
    """(out, size) matrix averaging each bin: row i is 1/len on the bin's positions."""
    start, end = adaptive_bins(size, out)
    pos = np.arange(size)
    member = (pos >= start[:, None]) & (pos < end[:, None])
    return (member / (end - start)[:, None]).astype(dtype)


class AdaptiveAvgPoolCache(NamedTuple):
    rows: np.ndarray   # (OH, H) bin-averaging matrix
    cols: np.ndarray   # (OW, W)


def adaptive_avg_pool2d_forward(x: np.ndarray, out_hw: Pair
                                ) -> tuple[np.ndarray, AdaptiveAvgPoolCache]:
    """Mean over each adaptive bin (see :func:`adaptive_bins`).  The bins are a
    product of row bins and column bins, so the mean is separable:
    y = R x C^T with R (OH, H) and C (OW, W) the bin-averaging matrices.
    ``out_hw = (1, 1)`` is global average pooling (NIN, GoogLeNet).

    x (N, C, H, W) -> y (N, C, OH, OW).
    """
    N, C, H, W = x.shape
    rows = _bin_matrix(H, out_hw[0], x.dtype)
    cols = _bin_matrix(W, out_hw[1], x.dtype)
    with _threads.blas_one_thread:      # small products: keep OpenBLAS's workers asleep
        y = rows @ x @ cols.T
    return y, AdaptiveAvgPoolCache(rows, cols)


def adaptive_avg_pool2d_backward(dy: np.ndarray, cache: AdaptiveAvgPoolCache) -> np.ndarray:
    """dy (N, C, OH, OW) -> dx (N, C, H, W) = R^T dy C: each gradient spread
    evenly over its bin, summed where bins overlap."""
    with _threads.blas_one_thread:
        return cache.rows.T @ dy @ cache.cols


class AdaptiveMaxPoolCache(NamedTuple):
    indices: np.ndarray   # (N, C, OH, OW) int64 flat index h * W + w of each maximum
    x_shape: tuple[int, int, int, int]


def adaptive_max_pool2d_forward(x: np.ndarray, out_hw: Pair
                                ) -> tuple[np.ndarray, AdaptiveMaxPoolCache]:
    """Max over each adaptive bin; ties go to the first maximum in scan order
    (row by row, left to right), as in PyTorch's CPU kernel, and a NaN wins.

    Done in two separable passes (max over each column bin, then over each row
    bin, taking the first row that reaches the maximum), so Python loops over
    OH + OW bins, not over elements.

    x (N, C, H, W) -> y (N, C, OH, OW), plus the flat indices h * W + w.
    """
    N, C, H, W = x.shape
    OH, OW = out_hw
    hs, he = adaptive_bins(H, OH)
    ws, we = adaptive_bins(W, OW)
    colmax = np.empty((N, C, H, OW), dtype=x.dtype)
    colarg = np.empty((N, C, H, OW), dtype=np.int64)
    for j in range(OW):
        seg = x[:, :, :, ws[j]:we[j]]
        k = seg.argmax(axis=3)[..., None]
        colarg[..., j] = k[..., 0] + ws[j]
        colmax[..., j] = np.take_along_axis(seg, k, axis=3)[..., 0]
    y = np.empty((N, C, OH, OW), dtype=x.dtype)
    indices = np.empty((N, C, OH, OW), dtype=np.int64)
    for i in range(OH):
        seg = colmax[:, :, hs[i]:he[i], :]
        r = seg.argmax(axis=2)[:, :, None, :]
        y[:, :, i, :] = np.take_along_axis(seg, r, axis=2)[:, :, 0, :]
        col = np.take_along_axis(colarg[:, :, hs[i]:he[i], :], r, axis=2)[:, :, 0, :]
        indices[:, :, i, :] = (r[:, :, 0, :] + hs[i]) * W + col
    return y, AdaptiveMaxPoolCache(indices, (N, C, H, W))


def adaptive_max_pool2d_backward(dy: np.ndarray, cache: AdaptiveMaxPoolCache) -> np.ndarray:
    """dy (N, C, OH, OW) -> dx (N, C, H, W): each gradient goes to its bin's
    maximum, summed where overlapping bins share one."""
    N, C, H, W = cache.x_shape
    plane = (np.arange(N * C, dtype=np.int64) * (H * W)).reshape(N, C, 1, 1)
    flat = (cache.indices + plane).reshape(-1)
    dx = np.bincount(flat, weights=dy.reshape(-1), minlength=N * C * H * W)
    return dx.astype(dy.dtype, copy=False).reshape(N, C, H, W)


# -------------------------------------------------------------- subsampling


class SubsampleCache(NamedTuple):
    down: np.ndarray    # (N, C, OH, OW) block sums of the input
    weight: np.ndarray  # (C,)
    sum_cache: pool_k.AvgPoolCache


def subsample2d_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None,
                        kernel: Pair) -> tuple[np.ndarray, SubsampleCache]:
    """LeNet / Bouvrie trainable subsampling (the notes, 002):

        y_c = beta_c * down(x_c) + b_c,   down = sum over each KH x KW block

    blocks do not overlap (stride = kernel); rows and columns left over at the
    far edge are dropped.  x (N, C, H, W), weight = beta (C,), bias = b (C,) or
    None -> y (N, C, H // KH, W // KW).
    """
    down, sum_cache = pool_k.avg_pool2d_forward(x, kernel, kernel, divisor_override=1)
    y = down * weight.reshape(1, -1, 1, 1)
    if bias is not None:
        y += bias.reshape(1, -1, 1, 1)
    return y, SubsampleCache(down, weight, sum_cache)


def subsample2d_backward(dy: np.ndarray, cache: SubsampleCache
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dy = delta (N, C, OH, OW) -> (dx, dweight, dbias):

        dx = beta * up(delta) (each block gets its output's gradient),
        dbeta_c = sum(delta_c o down(x_c)),   db_c = sum(delta_c)   (the notes, 002).
    """
    dx = pool_k.avg_pool2d_backward(dy * cache.weight.reshape(1, -1, 1, 1), cache.sum_cache)
    dweight = (dy * cache.down).sum(axis=(0, 2, 3))
    dbias = dy.sum(axis=(0, 2, 3))
    return dx, dweight, dbias
