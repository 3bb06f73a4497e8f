"""2-D convolution kernels: im2col + GEMM forward, GEMM + col2im backward.

Pure NumPy: ndarrays in, ndarrays out, no autograd.  Shapes follow PyTorch:

    x (N, C, H, W) * w (O, C / groups, KH, KW) + b (O,) -> y (N, O, OH, OW)
    OH = (H + pad_top + pad_bottom - dilation_h * (KH - 1) - 1) // stride_h + 1

As the notes' im2col section describes, every receptive field is stretched into
one row of a matrix ``cols`` and the convolution becomes one matrix product
with the filters stretched into rows.  The notes' example: x 227x227x3 with 96
filters of 11x11x3 at stride 4 gives ``cols`` of 3025 rows by 363 columns and
an output of 55x55x96.

Inside the kernels the channel axis is kept last (NHWC): a row of ``cols`` is
ordered (KH, KW, C), so copying a window moves contiguous runs of channels,
and the GEMM result (N*OH*OW, O) is already the output in NHWC order.  The
NCHW array handed back is a transposed *view* of it, so no copy is made;
NumPy's elementwise ops keep that layout for the next layer.

Backward (the notes, Bouvrie eq. for conv layers):

* bias:   dL/db_o = sum over n, i, j of delta_o
* weight: dL/dW = delta_mat^T @ cols, one GEMM per group; this equals the
  notes' rot180(conv2(x, rot180(delta), 'valid')).
* data:   dcols = delta_mat @ W_mat, then col2im adds every row back onto the
  window it came from (KH * KW strided adds).  This is exactly the notes'
  full convolution of delta with the 180-degree rotated kernel;
  :mod:`cnnlab.kernels.reference` implements that formula literally and the
  tests check the two agree.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

Pair = tuple[int, int]
Padding4 = tuple[int, int, int, int]  # (top, bottom, left, right)


class ConvCache(NamedTuple):
    """What ``conv2d_backward`` needs from ``conv2d_forward``."""

    cols: np.ndarray        # (N*OH*OW, G, KH*KW*Cg), rows ordered (KH, KW, Cg)
    w_mat: np.ndarray       # (G, Og, KH*KW*Cg) filters as rows, same order
    x_shape: tuple[int, int, int, int]
    w_shape: tuple[int, int, int, int]
    out_hw: Pair
    stride: Pair
    padding: Padding4
    dilation: Pair
    groups: int
    has_bias: bool


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0,
                     dilation: int = 1, strict: bool = True) -> int:
    """Spatial output size of a convolution or pooling: (W - F + 2P) / S + 1.

    With a dilation d the effective filter size is d (F - 1) + 1.  The notes
    call a setting whose division leaves a remainder *invalid* (part of the
    input would never be visited).  ``strict=True`` raises for it; with
    ``strict=False`` the size is floored as PyTorch does.

    >>> conv_output_size(227, 11, stride=4)   # AlexNet conv1
    55
    >>> conv_output_size(7, 3, stride=2, padding=1)
    4
    """
    eff = dilation * (kernel - 1) + 1
    span = size + 2 * padding - eff
    if span < 0:
        raise ValueError(
            f"kernel of effective size {eff} does not fit an input of size {size} "
            f"with padding {padding}"
        )
    if strict and span % stride:
        raise ValueError(
            f"invalid setting: (W - F + 2P)/S + 1 = ({size} - {eff} + 2*{padding})/{stride} + 1 "
            f"= {span / stride + 1:g} is not an integer"
        )
    return span // stride + 1


def _out_size(size: int, k: int, s: int, p0: int, p1: int, d: int) -> int:
    return (size + p0 + p1 - d * (k - 1) - 1) // s + 1


def pad_nhwc(x: np.ndarray, padding: Padding4) -> np.ndarray:
    """x (N, C, H, W) -> zero-padded (N, H + pt + pb, W + pl + pr, C), channels last."""
    N, C, H, W = x.shape
    pt, pb, pl, pr = padding
    xp = np.zeros((N, H + pt + pb, W + pl + pr, C), dtype=x.dtype)
    xp[:, pt:pt + H, pl:pl + W, :] = x.transpose(0, 2, 3, 1)
    return xp


def im2col(xp: np.ndarray, kernel: Pair, stride: Pair, dilation: Pair, out_hw: Pair,
           groups: int) -> np.ndarray:
    """Stretch every receptive field of a padded NHWC input into a row.

    xp (N, Hp, Wp, C) -> cols (N*OH*OW, G, KH*KW*Cg), each row ordered
    (kh, kw, c) within its group.
    """
    N, Hp, Wp, C = xp.shape
    KH, KW = kernel
    sh, sw = stride
    dh, dw = dilation
    OH, OW = out_hw
    G = groups
    Cg = C // G
    sN, sH, sW, sC = xp.strides
    windows = np.lib.stride_tricks.as_strided(
        xp,
        shape=(N, OH, OW, G, KH, KW, Cg),
        strides=(sN, sH * sh, sW * sw, sC * Cg, sH * dh, sW * dw, sC),
        writeable=False,
    )
    return np.ascontiguousarray(windows).reshape(N * OH * OW, G, KH * KW * Cg)


def col2im(dcols: np.ndarray, padded_shape: tuple[int, int, int, int], kernel: Pair,
           stride: Pair, dilation: Pair, out_hw: Pair) -> np.ndarray:
    """Adjoint of :func:`im2col`: add every row back onto its window.

    dcols (N*OH*OW, G, KH*KW*Cg) -> dxp (N, Hp, Wp, C).  Overlapping windows
    accumulate, which is what makes this the data gradient.
    """
    N, Hp, Wp, C = padded_shape
    KH, KW = kernel
    sh, sw = stride
    dh, dw = dilation
    OH, OW = out_hw
    G = dcols.shape[1]
    Cg = C // G
    d = dcols.reshape(N, OH, OW, G, KH, KW, Cg)
    dxp = np.zeros(padded_shape, dtype=dcols.dtype)
    for i in range(KH):
        hi = i * dh
        for j in range(KW):
            wj = j * dw
            dxp[:, hi:hi + sh * (OH - 1) + 1:sh, wj:wj + sw * (OW - 1) + 1:sw, :] += (
                d[:, :, :, :, i, j, :].reshape(N, OH, OW, C)
            )
    return dxp


def _gemm_groups(a: np.ndarray, b_t: np.ndarray) -> np.ndarray:
    """Per-group ``a[:, g] @ b_t[g].T``: a (M, G, K), b_t (G, O, K) -> (M, G, O)."""
    if a.shape[1] == 1:
        return (a[:, 0, :] @ b_t[0].T)[:, None, :]
    return np.matmul(a.transpose(1, 0, 2), b_t.transpose(0, 2, 1)).transpose(1, 0, 2)


def conv2d_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: Pair = (1, 1),
                   padding: Padding4 = (0, 0, 0, 0), dilation: Pair = (1, 1),
                   groups: int = 1) -> tuple[np.ndarray, ConvCache]:
    """Convolution (cross-correlation, as every library implements it).

    Parameters
    ----------
    x : ndarray (N, C, H, W)
    w : ndarray (O, C // groups, KH, KW)
    b : ndarray (O,) or None
    stride, dilation : (int, int)
    padding : (top, bottom, left, right) zero padding
    groups : int, dividing both C and O

    Returns
    -------
    y : ndarray (N, O, OH, OW), a view of an NHWC buffer
    cache : ConvCache
    """
    N, C, H, W = x.shape
    O, Cg, KH, KW = w.shape
    G = groups
    pt, pb, pl, pr = padding
    OH = _out_size(H, KH, stride[0], pt, pb, dilation[0])
    OW = _out_size(W, KW, stride[1], pl, pr, dilation[1])
    xp = pad_nhwc(x, padding)
    cols = im2col(xp, (KH, KW), stride, dilation, (OH, OW), G)
    # filters as rows in the same (kh, kw, c) order: (G, Og, KH*KW*Cg)
    w_mat = np.ascontiguousarray(w.transpose(0, 2, 3, 1)).reshape(G, O // G, KH * KW * Cg)
    out = _gemm_groups(cols, w_mat).reshape(N * OH * OW, O)
    if b is not None:
        out += b
    y = out.reshape(N, OH, OW, O).transpose(0, 3, 1, 2)
    cache = ConvCache(cols, w_mat, (N, C, H, W), (O, Cg, KH, KW), (OH, OW), stride, padding,
                      dilation, G, b is not None)
    return y, cache


def conv2d_backward(dy: np.ndarray, cache: ConvCache, need_dx: bool = True,
                    need_dw: bool = True) -> tuple[np.ndarray | None, np.ndarray | None,
                                                   np.ndarray | None]:
    """Gradients of :func:`conv2d_forward`.

    dy (N, O, OH, OW) -> dx (N, C, H, W), dw (O, C // G, KH, KW), db (O,) or None.
    """
    N, C, H, W = cache.x_shape
    O, Cg, KH, KW = cache.w_shape
    OH, OW = cache.out_hw
    G = cache.groups
    Og = O // G
    pt, pb, pl, pr = cache.padding
    dy_mat = dy.transpose(0, 2, 3, 1).reshape(N * OH * OW, O)  # free if dy is NHWC-strided
    db = dy_mat.sum(axis=0) if cache.has_bias else None
    dw = dx = None
    if need_dw:
        dyg = dy_mat.reshape(-1, G, Og)
        if G == 1:
            dw_mat = (dy_mat.T @ cache.cols[:, 0, :])[None]
        else:
            dw_mat = np.matmul(dyg.transpose(1, 2, 0), cache.cols.transpose(1, 0, 2))
        dw = np.ascontiguousarray(dw_mat.reshape(O, KH, KW, Cg).transpose(0, 3, 1, 2))
    if need_dx:
        dyg = dy_mat.reshape(-1, G, Og)
        if G == 1:
            dcols = (dy_mat @ cache.w_mat[0])[:, None, :]
        else:
            dcols = np.matmul(dyg.transpose(1, 0, 2), cache.w_mat).transpose(1, 0, 2)
        padded = (N, H + pt + pb, W + pl + pr, C)
        dxp = col2im(dcols, padded, (KH, KW), cache.stride, cache.dilation, (OH, OW))
        dx = dxp[:, pt:pt + H, pl:pl + W, :].transpose(0, 3, 1, 2)
    return dx, dw, db
