"""What the convolution algorithms share: output sizes, zero padding in the layouts
their loops read, strided window views, and arrays laid out like another.

Pure NumPy, importing no other kernel module, so that every algorithm
(:mod:`~cnnlab.kernels.conv_gemm`, :mod:`~cnnlab.kernels.conv_depthwise`,
:mod:`~cnnlab.kernels.winograd`) and the dispatcher :mod:`cnnlab.kernels.conv` can
import it without a cycle.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

Pair = tuple[int, int]
Padding4 = tuple[int, int, int, int]  # (top, bottom, left, right)


class ConvSpec(NamedTuple):
    """One convolution call's shapes and settings: what every algorithm's forward
    reads and its backward needs again."""

    x_shape: tuple[int, int, int, int]     # (N, C, H, W)
    w_shape: tuple[int, int, int, int]     # (O, C // groups, KH, KW)
    out_hw: Pair                           # (OH, OW)
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


def out_size(size: int, k: int, s: int, p0: int, p1: int, d: int) -> int:
    """(size + p0 + p1 - d (k - 1) - 1) // s + 1, floored as PyTorch does."""
    return (size + p0 + p1 - d * (k - 1) - 1) // s + 1


def zeros_like_layout(shape: tuple[int, ...], like: np.ndarray, dtype=None,
                      fill: bool = True) -> np.ndarray:
    """Zeros of ``shape`` whose axes are laid out in memory in the same order as
    ``like``'s (so a channel-major input gets a channel-major gradient).  With
    ``fill=False`` the array is left unset, for a caller that writes every element."""
    order = sorted(range(like.ndim), key=lambda a: -like.strides[a])
    phys = (np.zeros if fill else np.empty)([shape[a] for a in order], dtype=dtype or like.dtype)
    return phys.transpose(np.argsort(order))


def window(a: np.ndarray, i: int, j: int, stride: Pair, out_hw: Pair) -> np.ndarray:
    """The strided view of ``a`` (A, B, Hp, Wp) holding offset (i, j) of every window:
    (A, B, OH, OW), element (oh, ow) at row i + stride_h * oh, column j + stride_w * ow."""
    sh, sw = stride
    OH, OW = out_hw
    return a[:, :, i:i + sh * (OH - 1) + 1:sh, j:j + sw * (OW - 1) + 1:sw]


def pad_channel_major(x: np.ndarray, padding: Padding4) -> np.ndarray:
    """x (N, C, H, W) -> zero-padded (N, C, Hp, Wp); no copy without padding,
    otherwise a new array stored channel-major (C, N, Hp, Wp)."""
    pt, pb, pl, pr = padding
    if not any(padding):
        return x
    N, C, H, W = x.shape
    xp = np.zeros((C, N, H + pt + pb, W + pl + pr), dtype=x.dtype).transpose(1, 0, 2, 3)
    xp[:, :, pt:pt + H, pl:pl + W] = x
    return xp


def pad_cnhw(x: np.ndarray, padding: Padding4) -> np.ndarray:
    """x (N, C, H, W) -> zero-padded (C, N, Hp, Wp), C-contiguous: the form the
    depthwise and Winograd loops read row by row (and vectorise)."""
    return np.ascontiguousarray(pad_channel_major(x, padding).transpose(1, 0, 2, 3))


__all__ = ["ConvSpec", "Padding4", "Pair", "conv_output_size", "out_size", "pad_channel_major", "pad_cnhw",
           "window", "zeros_like_layout"]
