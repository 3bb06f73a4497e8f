"""Learned combinations of feature maps (Bouvrie, "Notes on Convolutional
Neural Networks", section 5; the notes' seed 002, equations (15)-(21)).

Pure NumPy: ndarrays in, ndarrays out, no autograd.

Bouvrie lets the network learn which input maps feed each output map instead
of fixing a connection table by hand (LeNet-5's C3 is the fixed form):

    u_j = sum_i alpha_ij (x_i * k_i) + b_j,        x_j = f(u_j)
    alpha_ij = exp(c_ij) / sum_k exp(c_kj)        (softmax over the inputs i)

Our reading of the notes: the kernel k_i carries only the input index, so
each input map i is convolved once with its own kernel (a depthwise conv,
weight (C_in, 1, KH, KW)), and output j is a convex combination of those
C_in filtered maps, with weights alpha_.j (a column of the (C_in, C_out)
matrix alpha, summing to 1) plus its bias b_j.  The forward returns u; the
non-linearity f is the next layer, as for Conv2d.  (Equivalently the layer is
a conv with weight W[j, i] = alpha_ij k_i, which the tests check.)

Backward, with delta_j = dE/du_j:

* bias:    dE/db_j = sum_uv delta_j
* alpha:   dE/dalpha_ij = sum_uv (delta_j o (x_i * k_i))_uv           (eq. 16)
* c:       dE/dc_ij = alpha_ij (dE/dalpha_ij - sum_k dE/dalpha_kj alpha_kj),
           the softmax Jacobian dalpha_k/dc_i = delta_ki alpha_i - alpha_i alpha_k
           of eq. (15) applied column by column                       (eq. 17)
* maps:    dE/d(x_i * k_i) = sum_j alpha_ij delta_j, then the conv backward of
           :mod:`cnnlab.kernels.conv` gives dE/dx and dE/dk.

The sparsity penalty of eq. (18), Omega = lambda sum_ij |alpha_ij|, has the
c-gradient lambda (|alpha_ij| - alpha_ij sum_k |alpha_kj|) (eq. 21).  Note that
under the softmax parametrisation every alpha is positive and each column sums
to 1, so Omega = lambda * C_out is a constant and eq. (21) is identically zero:
the penalty as written cannot make alpha sparser.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from cnnlab.kernels.activation import softmax_backward, softmax_forward
from cnnlab.kernels.conv import ConvCache, conv2d_backward, conv2d_forward

Pair = tuple[int, int]
Padding4 = tuple[int, int, int, int]


def softmax_columns(c: np.ndarray) -> np.ndarray:
    """alpha_ij = exp(c_ij) / sum_k exp(c_kj): c (C_in, C_out) -> alpha, columns sum to 1."""
    return softmax_forward(c, axis=0)


def softmax_columns_backward(dalpha: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """dE/dc_i = alpha_i (dE/dalpha_i - sum_k dE/dalpha_k alpha_k) per column (eq. 17)."""
    return softmax_backward(dalpha, alpha, axis=0)


class CombinationCache(NamedTuple):
    """What ``learned_combination_backward`` needs from the forward."""

    conv: ConvCache         # the depthwise conv x_i * k_i
    z: np.ndarray           # (N, C_in, OH, OW), the filtered maps x_i * k_i
    alpha: np.ndarray       # (C_in, C_out)
    has_bias: bool


def learned_combination_forward(x: np.ndarray, k: np.ndarray, c: np.ndarray, b: np.ndarray | None,
                                stride: Pair = (1, 1), padding: Padding4 = (0, 0, 0, 0),
                                dilation: Pair = (1, 1)) -> tuple[np.ndarray, CombinationCache]:
    """u_j = sum_i softmax(c)_ij (x_i * k_i) + b_j.

    Parameters
    ----------
    x : ndarray (N, C_in, H, W)
    k : ndarray (C_in, 1, KH, KW), one kernel per input map
    c : ndarray (C_in, C_out), the unconstrained combination weights
    b : ndarray (C_out,) or None
    stride, dilation : (int, int); padding : (top, bottom, left, right)

    Returns
    -------
    u : ndarray (N, C_out, OH, OW)
    cache : CombinationCache
    """
    C = x.shape[1]
    z, conv_cache = conv2d_forward(x, k, None, stride, padding, dilation, groups=C)
    alpha = softmax_columns(c)
    u = np.tensordot(alpha, z, axes=([0], [1])).transpose(1, 0, 2, 3)   # (N, C_out, OH, OW)
    if b is not None:
        u = u + b[:, None, None]
    return u, CombinationCache(conv_cache, z, alpha, b is not None)


def learned_combination_backward(du: np.ndarray, cache: CombinationCache, need_dx: bool = True,
                                 need_dk: bool = True, need_dc: bool = True
                                 ) -> tuple[np.ndarray | None, np.ndarray | None,
                                            np.ndarray | None, np.ndarray | None]:
    """Gradients of :func:`learned_combination_forward`:
    du (N, C_out, OH, OW) -> dx, dk (C_in, 1, KH, KW), dc (C_in, C_out), db (C_out,) or None."""
    dx = dk = dc = db = None
    if cache.has_bias:
        db = du.sum(axis=(0, 2, 3))
    if need_dc:
        dalpha = np.tensordot(cache.z, du, axes=([0, 2, 3], [0, 2, 3]))  # (C_in, C_out), eq. 16
        dc = softmax_columns_backward(dalpha, cache.alpha)
    if need_dx or need_dk:
        dz = np.tensordot(cache.alpha, du, axes=([1], [1])).transpose(1, 0, 2, 3)
        dx, dk, _ = conv2d_backward(dz, cache.conv, need_dx=need_dx, need_dw=need_dk)
    return dx, dk, dc, db


__all__ = ["CombinationCache", "learned_combination_backward", "learned_combination_forward",
           "softmax_columns", "softmax_columns_backward"]
