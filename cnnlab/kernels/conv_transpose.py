"""Transposed 2-D convolution ("deconvolution", as in FCN and DeconvNet).

Pure NumPy: ndarrays in, ndarrays out, no autograd.  Shapes follow PyTorch:

    x (N, C_in, H, W) with w (C_in, C_out / groups, KH, KW) and b (C_out,)
    -> y (N, C_out, OH, OW)
    OH = (H - 1) * stride_h - 2 * padding_h + dilation_h * (KH - 1) + output_padding_h + 1

A transposed convolution is the adjoint of a convolution: for the conv
``conv2d(z, w)`` that maps z (N, C_out, OH, OW) to (N, C_in, H, W) with the
same stride, padding, dilation and groups (its weight is ``w`` read in the
conv layout (O, C / groups, KH, KW) = (C_in, C_out / groups, KH, KW)),

    conv_transpose2d(x, w) = d conv2d(z, w) / dz  applied to x.

So the pieces of :mod:`cnnlab.kernels.conv_gemm` are reused the other way round
(the notes' backward rule, Bouvrie's delta^l = sum_j conv2(delta_j, rot180(k), 'full')):

* forward:  X_col = W_row^T @ x (one GEMM per group), then col2im adds every
  column onto its window of the (padded) output and crops the padding;
* backward-data: dx = W_row @ im2col(dy), i.e. an ordinary conv forward of
  dy with the same weight;
* backward-weight: dw = x @ im2col(dy)^T (the same im2col, one GEMM per group);
* bias: db = sum over n, h, w of dy.

``output_padding`` only adds rows/columns at the bottom/right of the output
(it resolves the ambiguity of strided convs, whose floor division maps several
input sizes to one output size); it must be smaller than the stride or the
dilation, as in PyTorch.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from cnnlab.kernels.conv_gemm import col2im_cols, im2col

Pair = tuple[int, int]


class ConvTransposeCache(NamedTuple):
    """What ``conv_transpose2d_backward`` needs from ``conv_transpose2d_forward``."""

    x_mat: np.ndarray       # (G, Cin_g, N*H*W), the input as the conv's delta
    w_mat: np.ndarray       # (G, Cin_g, Cout_g*KH*KW), filters as rows
    x_shape: tuple[int, int, int, int]
    w_shape: tuple[int, int, int, int]
    out_hw: Pair
    stride: Pair
    padding: Pair
    dilation: Pair
    groups: int
    has_bias: bool


def conv_transpose_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0,
                               output_padding: int = 0, dilation: int = 1) -> int:
    """(W - 1) S - 2P + d (F - 1) + output_padding + 1, the inverse of the
    conv rule W2 = (W1 - F + 2P) / S + 1.

    >>> conv_transpose_output_size(55, 11, stride=4)   # back to AlexNet's 227
    227
    """
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def conv_transpose2d_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None,
                             stride: Pair = (1, 1), padding: Pair = (0, 0),
                             output_padding: Pair = (0, 0), dilation: Pair = (1, 1),
                             groups: int = 1) -> tuple[np.ndarray, ConvTransposeCache]:
    """Transposed convolution.

    Parameters
    ----------
    x : ndarray (N, C_in, H, W)
    w : ndarray (C_in, C_out // groups, KH, KW)  (PyTorch's layout)
    b : ndarray (C_out,) or None
    stride, padding, output_padding, dilation : (int, int)
    groups : int, dividing C_in and C_out

    Returns
    -------
    y : ndarray (N, C_out, OH, OW), a view of a channel-major buffer
    cache : ConvTransposeCache
    """
    N, Cin, H, W = x.shape
    _, Cout_g, KH, KW = w.shape
    G = groups
    Cin_g = Cin // G
    Cout = Cout_g * G
    OH = conv_transpose_output_size(H, KH, stride[0], padding[0], output_padding[0], dilation[0])
    OW = conv_transpose_output_size(W, KW, stride[1], padding[1], output_padding[1], dilation[1])
    x_mat = x.transpose(1, 0, 2, 3).reshape(G, Cin_g, N * H * W)
    w_mat = w.reshape(G, Cin_g, Cout_g * KH * KW)
    cols = np.matmul(w_mat.transpose(0, 2, 1), x_mat)          # (G, Cout_g*KH*KW, N*H*W)
    pad4 = (padding[0], padding[0], padding[1], padding[1])
    y = col2im_cols(cols, (N, Cout, OH, OW), pad4, (KH, KW), stride, dilation, (H, W))
    if b is not None:
        y += b[:, None, None]
    cache = ConvTransposeCache(x_mat, w_mat, (N, Cin, H, W), (Cin, Cout_g, KH, KW), (OH, OW),
                               stride, padding, dilation, G, b is not None)
    return y, cache


def conv_transpose2d_backward(dy: np.ndarray, cache: ConvTransposeCache, need_dx: bool = True,
                              need_dw: bool = True) -> tuple[np.ndarray | None,
                                                             np.ndarray | None,
                                                             np.ndarray | None]:
    """Gradients of :func:`conv_transpose2d_forward`.

    dy (N, C_out, OH, OW) -> dx (N, C_in, H, W), dw (C_in, C_out // G, KH, KW),
    db (C_out,) or None.  dx is the conv forward of dy with the same weight.
    """
    N, Cin, H, W = cache.x_shape
    _, Cout_g, KH, KW = cache.w_shape
    G = cache.groups
    dx = dw = db = None
    if cache.has_bias:
        db = dy.sum(axis=(0, 2, 3))
    if not (need_dx or need_dw):
        return dx, dw, db
    ph, pw = cache.padding
    # the (H, W) receptive fields the forward scattered into: the conv's X_col of dy
    cols = im2col(dy, (ph, ph, pw, pw), (KH, KW), cache.stride, cache.dilation, (H, W),
                  G)                                          # (G, Cout_g*KH*KW, N*H*W)
    if need_dx:
        dx_mat = np.matmul(cache.w_mat, cols)                      # (G, Cin_g, N*H*W)
        dx = dx_mat.reshape(Cin, N, H, W).transpose(1, 0, 2, 3)
    if need_dw:
        dw = np.matmul(cache.x_mat, cols.transpose(0, 2, 1)).reshape(Cin, Cout_g, KH, KW)
    return dx, dw, db


__all__ = ["ConvTransposeCache", "conv_transpose2d_backward", "conv_transpose2d_forward",
           "conv_transpose_output_size"]
