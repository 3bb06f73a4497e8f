"""Locally connected (unshared) 2-D convolution kernels.

Pure NumPy: ndarrays in, ndarrays out, no autograd.

A convolution without parameter sharing: every output position (p, q) has
its own filter bank, as the notes describe for centred face images, where
features at different places should differ (cs231n notes 001, 003; Deep
Learning ch. 9.5 "unshared convolution", 004):

    y[n, o, p, q] = sum_{c, i, j} w[p, q, o, c, i, j] *
                    xpad[n, c, p*sh + i*dh, q*sw + j*dw] + b[o, p, q]

Shapes: x (N, C, H, W), w (OH, OW, O, C, KH, KW), b (O, OH, OW) or None ->
y (N, O, OH, OW).  With the same filter at every position it is a Conv2d.

Implementation: the conv's im2col gives every receptive field as a column
(C*KH*KW, N*OH*OW); regrouped by position to (P, K, N) with P = OH*OW and
K = C*KH*KW, the layer is one batched matmul (P independent small GEMMs):

    Y_p = W_p @ X_p            (P, O, K) @ (P, K, N) -> (P, O, N)
    dW_p = dY_p @ X_p^T        dX_p = W_p^T @ dY_p   (then col2im)
    db = sum over n of dy

Parameter count: OH*OW*O*(C*KH*KW + 1) with a bias per output unit; for an
unshared AlexNet conv1, 55*55*96 * (11*11*3 + 1) = 290,400 * 364 = 105,705,600
(the notes), against 34,944 shared.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from cnnlab.kernels.conv_gemm import col2im_cols, im2col

Pair = tuple[int, int]
Padding4 = tuple[int, int, int, int]


class LocalCache(NamedTuple):
    """What ``local2d_backward`` needs from ``local2d_forward``."""

    cols: np.ndarray        # (P, K, N) receptive fields grouped by output position
    w_mat: np.ndarray       # (P, O, K)
    x_shape: tuple[int, int, int, int]
    w_shape: tuple[int, int, int, int, int, int]
    stride: Pair
    padding: Padding4
    dilation: Pair
    has_bias: bool


def local2d_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: Pair = (1, 1),
                    padding: Padding4 = (0, 0, 0, 0), dilation: Pair = (1, 1)
                    ) -> tuple[np.ndarray, LocalCache]:
    """Unshared convolution.

    Parameters
    ----------
    x : ndarray (N, C, H, W)
    w : ndarray (OH, OW, O, C, KH, KW), one filter bank per output position;
        (OH, OW) must be the output size of the window arithmetic
    b : ndarray (O, OH, OW) or None
    stride, dilation : (int, int); padding : (top, bottom, left, right)

    Returns
    -------
    y : ndarray (N, O, OH, OW)
    cache : LocalCache
    """
    N, C, H, W = x.shape
    OH, OW, O, Cw, KH, KW = w.shape
    P, K = OH * OW, C * KH * KW
    cols = im2col(x, padding, (KH, KW), stride, dilation, (OH, OW), 1)
    cols = np.ascontiguousarray(cols.reshape(K, N, P).transpose(2, 0, 1))   # (P, K, N)
    w_mat = w.reshape(P, O, K)
    y = np.matmul(w_mat, cols)                                             # (P, O, N)
    y = y.reshape(OH, OW, O, N).transpose(3, 2, 0, 1)
    if b is not None:
        y = y + b
    return y, LocalCache(cols, w_mat, (N, C, H, W), w.shape, stride, padding, dilation,
                         b is not None)


def local2d_backward(dy: np.ndarray, cache: LocalCache, need_dx: bool = True,
                     need_dw: bool = True) -> tuple[np.ndarray | None, np.ndarray | None,
                                                    np.ndarray | None]:
    """Gradients of :func:`local2d_forward`.

    dy (N, O, OH, OW) -> dx (N, C, H, W), dw (OH, OW, O, C, KH, KW), db (O, OH, OW) or None.
    """
    N, C, H, W = cache.x_shape
    OH, OW, O, _, KH, KW = cache.w_shape
    P, K = OH * OW, C * KH * KW
    dx = dw = db = None
    if cache.has_bias:
        db = dy.sum(axis=0)
    d = dy.transpose(2, 3, 1, 0).reshape(P, O, N)
    if need_dw:
        dw = np.matmul(d, cache.cols.transpose(0, 2, 1)).reshape(cache.w_shape)
    if need_dx:
        dcols = np.matmul(cache.w_mat.transpose(0, 2, 1), d)                # (P, K, N)
        dcols = np.ascontiguousarray(dcols.transpose(1, 2, 0)).reshape(1, K, N * P)
        dx = col2im_cols(dcols, cache.x_shape, cache.padding, (KH, KW), cache.stride,
                         cache.dilation, (OH, OW))
    return dx, dw, db


def local2d_num_parameters(in_channels: int, out_channels: int, out_hw: Pair, kernel: Pair,
                           bias: bool = True) -> int:
    """Number of weights (and biases) of an unshared layer, without allocating it:
    OH*OW*O*C*KH*KW (+ O*OH*OW)."""
    units = out_hw[0] * out_hw[1] * out_channels
    return units * (in_channels * kernel[0] * kernel[1] + (1 if bias else 0))


__all__ = ["LocalCache", "local2d_backward", "local2d_forward", "local2d_num_parameters"]
