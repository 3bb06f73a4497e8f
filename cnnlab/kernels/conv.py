"""2-D convolution: the public entry, which picks one of three algorithms by shape.

Pure NumPy: ndarrays in, ndarrays out, no autograd.  Shapes follow PyTorch:

    x (N, C, H, W) * w (O, C / groups, KH, KW) + b (O,) -> y (N, O, OH, OW)
    OH = (H + pad_top + pad_bottom - dilation_h * (KH - 1) - 1) // stride_h + 1

The algorithms, one file each, each with its forward and backward side by side
and its own cache:

* ``"cols"`` -- im2col + GEMM, the notes' ``W_row @ X_col``
  (:mod:`cnnlab.kernels.conv_gemm`); any shape.
* ``"depthwise"`` -- one input map per group, computed directly
  (:mod:`cnnlab.kernels.conv_depthwise`).
* ``"winograd"`` -- F(2x2, 3x3) for 3x3 stride-1 convolutions with many channels
  (:mod:`cnnlab.kernels.winograd`).

:func:`choose_layout` picks one; :func:`conv2d_backward` follows the cache's type.
Every algorithm hands back the NCHW array as a transposed *view* of the
channel-major buffer it wrote, so no copy is made.
"""
from __future__ import annotations

from typing import Literal

import numpy as np

from cnnlab.kernels import _numba as _nb
from cnnlab.kernels import winograd as _winograd
from cnnlab.kernels.activation import relu_backward, relu_inplace
from cnnlab.kernels.conv_common import (
    ConvSpec,
    Padding4,
    Pair,
    conv_output_size,
    out_size,
    pad_channel_major,
    pad_cnhw,
    zeros_like_layout,
)
from cnnlab.kernels.conv_depthwise import DepthwiseCache, depthwise_backward, depthwise_forward
from cnnlab.kernels.conv_gemm import (
    GemmCache,
    ReluGrad,
    col2im_cols,
    gemm_backward,
    gemm_forward,
    im2col_cols,
)
from cnnlab.kernels.winograd import WinogradCache, winograd_backward, winograd_forward

Layout = Literal["cols", "depthwise", "winograd"]
ConvCache = GemmCache | DepthwiseCache | WinogradCache

# Winograd F(2x2, 3x3) from this many input and output channels on (see choose_layout)
WINOGRAD_MIN_CHANNELS = 64


def choose_layout(w_shape: tuple[int, int, int, int], groups: int,
                  stride: Pair | None = None, padding: Padding4 = (0, 0, 0, 0),
                  dilation: Pair = (1, 1)) -> Layout:
    """Pick the algorithm that is fastest for this shape.

    "depthwise" when every group has one input channel and numba compiles its loops;
    without numba such a convolution goes to "cols" (the loops' NumPy twin is their
    specification, not tuned for speed).

    "winograd" (:mod:`cnnlab.kernels.winograd`) for 3x3 stride-1 convolutions with
    at least 64 input and output channels: measured alternately with "cols" in one
    process (forward, batch 8 at 224x224 scale), the best of 9 runs took 0.57-0.74x
    the time for 64 to 256 channels at 56x56 to 14x14, 0.88x at 512@7x7 and 0.91x
    for ResNet-20's 64@8x8 (batch 128), but 1.3x for 16 and 32 channels, where its
    16 GEMMs with K = C are too thin.

    "cols" (im2col + GEMM) otherwise.
    """
    Cg = w_shape[1]
    if Cg == 1 and groups > 1 and _nb.AVAILABLE:
        return "depthwise"
    if (stride is not None and _winograd.applies(w_shape, stride, padding, dilation, groups)
            and min(w_shape[0], Cg) >= WINOGRAD_MIN_CHANNELS):
        return "winograd"
    return "cols"


def conv2d_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: Pair = (1, 1),
                   padding: Padding4 = (0, 0, 0, 0), dilation: Pair = (1, 1), groups: int = 1,
                   layout: Layout | None = None, relu: bool = False) -> tuple[np.ndarray, ConvCache]:
    """Convolution (cross-correlation, as every library implements it), with ``relu``
    followed by max(y, 0) (a ReLU fused into the output pass for "cols", in place and
    over the threads after the others).

    Parameters
    ----------
    x : ndarray (N, C, H, W), any memory layout
    w : ndarray (O, C // groups, KH, KW)
    b : ndarray (O,) or None
    stride, dilation : (int, int)
    padding : (top, bottom, left, right) zero padding
    groups : int, dividing both C and O
    layout : "cols", "depthwise", "winograd" or None (:func:`choose_layout`)
    relu : bool

    Returns
    -------
    y : ndarray (N, O, OH, OW), a view of a channel-major buffer
    cache : GemmCache, DepthwiseCache or WinogradCache
    """
    N, C, H, W = x.shape
    O, Cg, KH, KW = w.shape
    pt, pb, pl, pr = padding
    out_hw = (out_size(H, KH, stride[0], pt, pb, dilation[0]),
              out_size(W, KW, stride[1], pl, pr, dilation[1]))
    spec = ConvSpec(x_shape=(N, C, H, W), w_shape=(O, Cg, KH, KW), out_hw=out_hw, stride=stride,
                    padding=padding, dilation=dilation, groups=groups, has_bias=b is not None)
    if layout is None:
        layout = choose_layout(w.shape, groups, stride, padding, dilation)
        if layout == "winograd" and not (_winograd.all_finite(x) and _winograd.all_finite(w)):
            layout = "cols"      # Winograd's transforms would turn inf into inf - inf = NaN
    if layout == "cols":
        return gemm_forward(x, w, b, spec, relu=relu)
    if layout == "winograd":
        if not _winograd.applies(w.shape, stride, padding, dilation, groups):
            raise ValueError("the 'winograd' layout needs a 3x3 kernel, stride 1, no dilation, "
                             "one group and padding 0 to 2")
        y, cache = winograd_forward(x, w, b, spec)
    elif layout != "depthwise":
        raise ValueError(f"layout must be 'cols', 'depthwise' or 'winograd', got {layout!r}")
    elif Cg != 1:
        raise ValueError("the 'depthwise' layout needs one input channel per group")
    else:
        y, cache = depthwise_forward(x, w, b, spec)
    if relu:
        relu_inplace(y)
    return y, cache


_BACKWARD = {GemmCache: gemm_backward, DepthwiseCache: depthwise_backward,
             WinogradCache: winograd_backward}


def conv2d_backward(dy: np.ndarray, cache: ConvCache, need_dx: bool = True,
                    need_dw: bool = True, relu_y: np.ndarray | None = None,
                    relu_grad: ReluGrad | None = None) -> tuple[np.ndarray | None,
                                                                np.ndarray | None,
                                                                np.ndarray | None]:
    """Gradients of :func:`conv2d_forward`, by the algorithm that made ``cache``.

    dy (N, O, OH, OW) -> dx (N, C, H, W), dw (O, C // G, KH, KW), db (O,) or None.
    After a fused ReLU, ``relu_y`` is the forward's output and dy is first taken
    through the ReLU (per batch chunk for "cols"): dy where y > 0, else 0, or
    ``relu_grad(dy, y)`` if given (guided backprop's rule, say).
    """
    spec = cache.spec
    if spec.x_shape[0] == 0:                    # an empty batch: zero gradients
        return (np.zeros(spec.x_shape, dy.dtype) if need_dx else None,
                np.zeros(spec.w_shape, dy.dtype) if need_dw else None,
                np.zeros(spec.w_shape[0], dy.dtype) if spec.has_bias else None)
    if type(cache) is GemmCache:       # (not a WinogradCache, which extends it)
        return gemm_backward(dy, cache, need_dx, need_dw, relu_y, relu_grad)
    if relu_y is not None:
        dy = (relu_grad or relu_backward)(dy, relu_y)
    return _BACKWARD[type(cache)](dy, cache, need_dx, need_dw)


__all__ = ["ConvCache", "ConvSpec", "DepthwiseCache", "GemmCache", "WINOGRAD_MIN_CHANNELS", "WinogradCache",
           "choose_layout", "col2im_cols", "conv2d_backward", "conv2d_forward", "conv_output_size",
           "im2col_cols", "out_size", "pad_channel_major", "pad_cnhw", "zeros_like_layout"]
