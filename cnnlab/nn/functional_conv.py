"""Functional convolution and fully connected ops (PyTorch names and argument order).

Each public op checks the arguments it is given, then runs its core (``_conv``,
``_conv_transpose2d``, ``_locally_connected``, ``_learned_combination``).  A core
checks only what the input decides: one dtype, and an input at least as large as
the kernel.  The layers in :mod:`cnnlab.nn.modules` check their settings once,
when they are built, check the input in ``forward`` and call the cores directly,
so nothing is checked twice on a layer's call.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from cnnlab.autograd import conv_ops as ops
from cnnlab.autograd.tensor import Tensor
from cnnlab.kernels.conv import conv_output_size, out_size
from cnnlab.kernels.conv_transpose import conv_transpose_output_size
from cnnlab.nn._args import (
    IntPair,
    as_tensor,
    check_output_padding,
    check_padding,
    check_same_dtype,
    check_sizes,
    pair,
    shown,
    single,
)

Sizes = tuple[int, ...]            # one entry per spatial axis: (L,) in 1-D, (H, W) in 2-D

_SPATIAL = {1: "L", 2: "H, W"}                     # an input's spatial axes, in messages
_KERNEL = {1: "K", 2: "KH, KW"}
_AXES = {1: ("length",), 2: ("height", "width")}


# ----------------------------------------------------------------- padding
def conv_padding(padding: IntPair | str, kernel: tuple[int, int], stride: tuple[int, int],
                 dilation: tuple[int, int], in_hw: tuple[int, int]) -> tuple[int, int, int, int]:
    """Resolve a padding spec into (top, bottom, left, right).

    * an int or (ph, pw): symmetric zero padding;
    * ``'valid'``: no padding;
    * ``'same'``: output = ceil(input / stride).  For stride 1 this is the
      notes' P = (F - 1) / 2; an even total is split evenly and an odd one puts
      the extra pixel on the bottom/right (PyTorch for stride 1, TensorFlow's
      rule for any stride);
    * ``'full'``: P = d (F - 1) on every side, so each input pixel is visited
      by every kernel position (the notes' 'full' mode; output = W + F - 1).
    """
    p = padding if isinstance(padding, str) else pair(padding, "padding")
    check_padding("conv_padding", p, 2)
    top, bottom, left, right = _resolve_padding(p, kernel, stride, dilation, in_hw)
    return top, bottom, left, right


def _resolve_padding(padding: Sizes | str, kernel: Sizes, stride: Sizes, dilation: Sizes,
                     spatial: Sizes) -> Sizes:
    """A checked padding spec (see :func:`conv_padding`) as (before, after) per spatial
    axis: (left, right) in 1-D, (top, bottom, left, right) in 2-D."""
    if not isinstance(padding, str):
        return tuple(p for p in padding for _ in range(2))
    mode = padding.lower()
    pads: list[int] = []
    for size, k, s, d in zip(spatial, kernel, stride, dilation):
        eff = d * (k - 1) + 1
        if mode == "valid":
            pads += [0, 0]
        elif mode == "full":
            pads += [eff - 1, eff - 1]
        else:                                            # 'same'
            total = max((-(-size // s) - 1) * s + eff - size, 0)
            pads += [total // 2, total - total // 2]
    return tuple(pads)


def _check_fits(op: str, shape: Sizes, kernel: Sizes, dilation: Sizes, pad: Sizes) -> None:
    """Raise unless the padded input (N, C, *spatial) holds the effective kernel on every axis."""
    for a, axis in enumerate(_AXES[len(kernel)]):
        size, padded = shape[2 + a], shape[2 + a] + pad[2 * a] + pad[2 * a + 1]
        eff = dilation[a] * (kernel[a] - 1) + 1
        if padded < eff:
            raise ValueError(f"{op}: input {axis} {size} padded to {padded} is smaller than the "
                             f"effective kernel size {eff} (input shape {shape})")


def _as_2d(stride: Sizes, pad: Sizes, dilation: Sizes) -> tuple[Sizes, Sizes, Sizes]:
    """1-D settings as those of the 2-D kernels on (N, C, 1, L): H = 1, unpadded, stride 1."""
    return (1, *stride), (0, 0, *pad), (1, *dilation)


def _batched(x: Tensor, nd: int) -> tuple[Tensor, bool]:
    """x as (N, C, *spatial), and whether it came unbatched (C, *spatial)."""
    return (x.reshape(1, *x.shape), True) if x.ndim == nd + 1 else (x, False)


# --------------------------------------------------------- conv1d / conv2d
def _check_conv_call(op: str, x: Tensor, weight: Tensor, bias: Tensor | None, stride: Sizes,
                     padding: Sizes | str, dilation: Sizes, groups: int) -> None:
    """The arguments of a functional convolution (``len(stride)`` spatial axes): the
    input's rank and channels against the weight and groups, the bias, the settings."""
    nd, spatial = len(stride), _SPATIAL[len(stride)]
    if x.ndim not in (nd + 1, nd + 2):
        raise ValueError(f"{op}: expected input (N, C, {spatial}) or (C, {spatial}), got shape "
                         f"{x.shape}")
    if weight.ndim != nd + 2:
        raise ValueError(f"{op}: expected weight (O, C/groups, {_KERNEL[nd]}), got shape "
                         f"{weight.shape}")
    O, Cg = weight.shape[:2]
    shape = x.shape if x.ndim == nd + 2 else (1, *x.shape)
    if groups < 1 or shape[1] != Cg * groups or O % groups:
        raise ValueError(f"{op}: weight {weight.shape} with groups={groups} expects input "
                         f"(N, {Cg * groups}, {spatial}), got {shape}")
    if bias is not None and bias.shape != (O,):
        raise ValueError(f"{op}: expected bias of shape ({O},), got {bias.shape}")
    check_sizes(op, 1, stride=stride, dilation=dilation)
    check_padding(op, padding, nd)


def _conv(x: Tensor, weight: Tensor, bias: Tensor | None, stride: Sizes, padding: Sizes | str,
          dilation: Sizes, groups: int, op: str, relu: bool = False) -> Tensor:
    """The convolution of checked arguments, 1-D or 2-D (``len(stride)`` spatial axes).

    x (N, C, *spatial) or unbatched (C, *spatial), weight (O, C // groups, *kernel),
    bias (O,) -> (N, O, *spatial_out).  Checks only what the input decides: one dtype
    and an input that holds the kernel.  1-D runs the 2-D kernels with H = 1.
    ``relu`` gives relu(conv(x)) as one node (:class:`~cnnlab.autograd.conv_ops.Conv2dReLU`).
    """
    fn = ops.Conv2dReLU if relu else ops.Conv2d
    nd = len(stride)
    x, unbatched = _batched(x, nd)
    check_same_dtype(op, x, weight, bias)
    kernel = weight.shape[2:]
    pad = _resolve_padding(padding, kernel, stride, dilation, x.shape[2:])
    _check_fits(op, x.shape, kernel, dilation, pad)
    if nd == 1:
        N, C, L = x.shape
        s2, p2, d2 = _as_2d(stride, pad, dilation)
        y = fn.apply(x.reshape(N, C, 1, L), weight.reshape(*weight.shape[:2], 1, kernel[0]),
                     bias, stride=s2, padding=p2, dilation=d2, groups=groups)
        y = y.reshape(N, y.shape[1], y.shape[3])
    else:
        y = fn.apply(x, weight, bias, stride=stride, padding=pad, dilation=dilation,
                     groups=groups)
    return y.reshape(y.shape[1:]) if unbatched else y


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntPair = 1,
           padding: IntPair | str = 0, dilation: IntPair = 1, groups: int = 1) -> Tensor:
    """2-D convolution (cross-correlation) over (N, C, H, W) or unbatched (C, H, W).

    weight (O, C // groups, KH, KW), bias (O,).  Output (N, O, OH, OW) with
    OH = (H + P_top + P_bottom - dilation (KH - 1) - 1) // stride + 1.
    """
    x = as_tensor(input)
    s, d = pair(stride, "stride"), pair(dilation, "dilation")
    p = padding if isinstance(padding, str) else pair(padding, "padding")
    _check_conv_call("conv2d", x, weight, bias, s, p, d, groups)
    return _conv(x, weight, bias, s, p, d, groups, "conv2d")


def conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: int = 1,
           padding: int | str = 0, dilation: int = 1, groups: int = 1) -> Tensor:
    """1-D convolution (cross-correlation) over time series (N, C, L) or unbatched (C, L)
    (Deep Learning ch. 9, the notes' 1-D case), computed by the 2-D kernels with H = 1.

    weight (O, C // groups, K), bias (O,).  Output (N, O, L_out) with
    L_out = (L + 2P - dilation (K - 1) - 1) // stride + 1; ``padding`` is an int
    or 'valid' / 'same' / 'full' as in :func:`conv2d`.
    """
    x = as_tensor(input)
    s, d = (single(stride, "stride", "conv1d"),), (single(dilation, "dilation", "conv1d"),)
    p = padding if isinstance(padding, str) else (single(padding, "padding", "conv1d"),)
    _check_conv_call("conv1d", x, weight, bias, s, p, d, groups)
    return _conv(x, weight, bias, s, p, d, groups, "conv1d")


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = x W^T + b over the last axis: x (..., in), W (out, in) -> (..., out)."""
    x = as_tensor(input)
    if x.ndim < 1 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: weight {weight.shape} expects input (..., {weight.shape[1]}), "
                         f"got {x.shape}")
    check_same_dtype("linear", x, weight, bias)
    return ops.Linear.apply(x, weight, bias)


def _linear_relu(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """relu(linear(x, weight, bias)) as one node, for arguments :func:`linear` accepts."""
    x = as_tensor(x)
    check_same_dtype("linear", x, weight, bias)
    return ops.LinearReLU.apply(x, weight, bias)


# --------------------------------------------------------- conv_transpose2d
def _conv_transpose2d(x: Tensor, weight: Tensor, bias: Tensor | None, stride: Sizes,
                      padding: Sizes, output_padding: Sizes, groups: int, dilation: Sizes,
                      op: str = "conv_transpose2d") -> Tensor:
    """The transposed convolution of checked arguments (see :func:`conv_transpose2d`);
    checks only the dtype and that the output is not empty."""
    x, unbatched = _batched(x, 2)
    check_same_dtype(op, x, weight, bias)
    kernel = weight.shape[2:]
    out = [conv_transpose_output_size(size, k, stride[a], padding[a], output_padding[a],
                                      dilation[a])
           for a, (size, k) in enumerate(zip(x.shape[2:], kernel))]
    if min(out) < 1:
        raise ValueError(f"{op}: input {x.shape} with kernel {kernel}, stride {stride}, "
                         f"padding {padding}, dilation {dilation} gives an empty output "
                         f"{tuple(out)}")
    y = ops.ConvTranspose2d.apply(x, weight, bias, stride=stride, padding=padding,
                                  output_padding=output_padding, dilation=dilation, groups=groups)
    return y.reshape(y.shape[1:]) if unbatched else y


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor | None = None,
                     stride: IntPair = 1, padding: IntPair = 0, output_padding: IntPair = 0,
                     groups: int = 1, dilation: IntPair = 1) -> Tensor:
    """Transposed convolution ("deconvolution", FCN / DeconvNet) over (N, C_in, H, W)
    or unbatched (C_in, H, W): the adjoint (data gradient) of conv2d.

    weight (C_in, C_out // groups, KH, KW) (PyTorch's layout), bias (C_out,).
    Output (N, C_out, OH, OW) with
    OH = (H - 1) stride - 2 padding + dilation (KH - 1) + output_padding + 1;
    ``output_padding`` must be smaller than the stride or the dilation.
    """
    op = "conv_transpose2d"
    x = as_tensor(input)
    if x.ndim not in (3, 4):
        raise ValueError(f"{op}: expected input (N, C_in, H, W) or (C_in, H, W), got shape "
                         f"{x.shape}")
    if weight.ndim != 4:
        raise ValueError(f"{op}: expected weight (C_in, C_out/groups, KH, KW), got shape "
                         f"{weight.shape}")
    Cin, Cout_g = weight.shape[:2]
    shape = x.shape if x.ndim == 4 else (1, *x.shape)
    if groups < 1 or Cin % groups or shape[1] != Cin:
        raise ValueError(f"{op}: weight {weight.shape} with groups={groups} expects input "
                         f"(N, {Cin}, H, W) with {Cin} divisible by groups, got {shape}")
    if bias is not None and bias.shape != (Cout_g * groups,):
        raise ValueError(f"{op}: expected bias of shape ({Cout_g * groups},), got {bias.shape}")
    s, d = pair(stride, "stride"), pair(dilation, "dilation")
    p, o = pair(padding, "padding"), pair(output_padding, "output_padding")
    check_sizes(op, 1, stride=s, dilation=d)
    check_sizes(op, 0, padding=p, output_padding=o)
    check_output_padding(op, o, s, d)
    return _conv_transpose2d(x, weight, bias, s, p, o, groups, d, op)


# ------------------------------------------------------ locally connected
def _check_local_call(op: str, x: Tensor, weight: Tensor, bias: Tensor | None, stride: Sizes,
                      padding: Sizes | str, dilation: Sizes) -> None:
    """The arguments of a functional locally connected op (``len(stride)`` spatial axes),
    including that the weight has one filter bank per output position of this input."""
    nd, spatial = len(stride), _SPATIAL[len(stride)]
    if x.ndim != nd + 2:
        raise ValueError(f"{op}: expected input (N, C, {spatial}), got shape {x.shape}")
    if weight.ndim != 2 * nd + 2:
        positions = "OL" if nd == 1 else "OH, OW"
        raise ValueError(f"{op}: expected weight ({positions}, O, C, {_KERNEL[nd]}), got shape "
                         f"{weight.shape}")
    positions, (O, C), kernel = weight.shape[:nd], weight.shape[nd:nd + 2], weight.shape[nd + 2:]
    if x.shape[1] != C:
        raise ValueError(f"{op}: weight {weight.shape} expects input (N, {C}, {spatial}), got "
                         f"{x.shape}")
    if bias is not None and bias.shape != (O, *positions):
        raise ValueError(f"{op}: expected bias of shape {(O, *positions)}, got {bias.shape}")
    check_sizes(op, 1, stride=stride, dilation=dilation)
    check_padding(op, padding, nd)
    pad = _resolve_padding(padding, kernel, stride, dilation, x.shape[2:])
    out = tuple(out_size(x.shape[2 + a], kernel[a], stride[a], pad[2 * a], pad[2 * a + 1],
                         dilation[a]) for a in range(nd))
    if out != positions:
        pad_shown = padding if isinstance(padding, str) else shown(padding)
        raise ValueError(f"{op}: input {x.shape} with kernel {shown(kernel)}, stride "
                         f"{shown(stride)}, padding {pad_shown!r}, dilation {shown(dilation)} gives "
                         f"{shown(out)} output positions, but the weight has filters for "
                         f"{shown(positions)}")


def _locally_connected(x: Tensor, weight: Tensor, bias: Tensor | None, stride: Sizes,
                       padding: Sizes | str, dilation: Sizes, op: str) -> Tensor:
    """The locally connected op on checked arguments, 1-D or 2-D (``len(stride)``);
    checks only the dtype.  1-D runs the 2-D kernel with H = 1."""
    check_same_dtype(op, x, weight, bias)
    nd = len(stride)
    pad = _resolve_padding(padding, weight.shape[nd + 2:], stride, dilation, x.shape[2:])
    if nd == 2:
        return ops.Local2d.apply(x, weight, bias, stride=stride, padding=pad, dilation=dilation)
    (N, C, L), (OL, O, _, K) = x.shape, weight.shape
    s2, p2, d2 = _as_2d(stride, pad, dilation)
    y = ops.Local2d.apply(x.reshape(N, C, 1, L), weight.reshape(1, OL, O, C, 1, K),
                          None if bias is None else bias.reshape(O, 1, OL),
                          stride=s2, padding=p2, dilation=d2)
    return y.reshape(N, O, OL)


def locally_connected2d(input: Tensor, weight: Tensor, bias: Tensor | None = None,
                        stride: IntPair = 1, padding: IntPair | str = 0,
                        dilation: IntPair = 1) -> Tensor:
    """Unshared convolution (the notes' locally connected layer): one filter bank
    per output position, over (N, C, H, W).

    weight (OH, OW, O, C, KH, KW), bias (O, OH, OW);
    y[n, o, p, q] = sum_{c,i,j} w[p, q, o, c, i, j] xpad[n, c, p sh + i dh, q sw + j dw] + b[o, p, q].
    (OH, OW) must be the window count of this input, stride, padding and dilation.
    """
    x = as_tensor(input)
    s, d = pair(stride, "stride"), pair(dilation, "dilation")
    p = padding if isinstance(padding, str) else pair(padding, "padding")
    _check_local_call("locally_connected2d", x, weight, bias, s, p, d)
    return _locally_connected(x, weight, bias, s, p, d, "locally_connected2d")


def locally_connected1d(input: Tensor, weight: Tensor, bias: Tensor | None = None,
                        stride: int = 1, padding: int | str = 0, dilation: int = 1) -> Tensor:
    """Unshared 1-D convolution over (N, C, L): weight (OL, O, C, K), bias (O, OL);
    the 2-D op with H = 1."""
    op = "locally_connected1d"
    x = as_tensor(input)
    s, d = (single(stride, "stride", op),), (single(dilation, "dilation", op),)
    p = padding if isinstance(padding, str) else (single(padding, "padding", op),)
    _check_local_call(op, x, weight, bias, s, p, d)
    return _locally_connected(x, weight, bias, s, p, d, op)


# ------------------------------------------------------- connection table
def _masked_weight(weight: Tensor, table: np.ndarray) -> Tensor:
    """weight (O, C, KH, KW) times the mask mask[j, i] = table[i, j] of a boolean (C, O)
    table, so a disconnected weight never reaches the output and gets zero gradient."""
    return weight * Tensor(np.ascontiguousarray(table.T[:, :, None, None]).astype(weight.dtype))


def connection_table_conv2d(input: Tensor, weight: Tensor, table: Any, bias: Tensor | None = None,
                            stride: IntPair = 1, padding: IntPair | str = 0,
                            dilation: IntPair = 1) -> Tensor:
    """A conv whose output map j only sees the input maps i with table[i, j] true
    (LeNet-5's C3, LeCun et al. 1998 Table I; the notes' fixed form of Bouvrie's
    learned combinations).

    weight (O, C, KH, KW), table boolean (C, O).  Computes
    conv2d(x, weight * mask, bias) with mask[j, i] = table[i, j], so the
    gradient of a disconnected weight is zero.
    """
    op = "connection_table_conv2d"
    if weight.ndim != 4:
        raise ValueError(f"{op}: expected weight (O, C, KH, KW), got shape {weight.shape}")
    mask = np.asarray(table, dtype=bool)
    O, C = weight.shape[:2]
    if mask.shape != (C, O):
        raise ValueError(f"{op}: weight {weight.shape} needs a table of shape "
                         f"(in_channels, out_channels) = {(C, O)}, got {mask.shape}")
    x = as_tensor(input)
    s, d = pair(stride, "stride"), pair(dilation, "dilation")
    p = padding if isinstance(padding, str) else pair(padding, "padding")
    _check_conv_call(op, x, weight, bias, s, p, d, 1)
    return _conv(x, _masked_weight(weight, mask), bias, s, p, d, 1, op)


# --------------------------------------------------- learned combinations
def combination_weights(c: Tensor) -> Tensor:
    """alpha = softmax(c) over the input axis: c (C_in, C_out) -> alpha, each column
    a convex combination (Bouvrie's alpha_ij = exp(c_ij) / sum_k exp(c_kj))."""
    c = as_tensor(c)
    if c.ndim != 2:
        raise ValueError(f"combination_weights: expected c of shape (C_in, C_out), got {c.shape}")
    return ops.CombinationWeights.apply(c)


def _learned_combination(x: Tensor, weight: Tensor, c: Tensor, bias: Tensor | None,
                         stride: Sizes, padding: Sizes | str, dilation: Sizes) -> Tensor:
    """The learned combination of checked arguments (see :func:`learned_combination`);
    checks only the dtype and that the input holds the kernel."""
    op = "learned_combination"
    check_same_dtype(op, x, weight, c, bias)
    kernel = weight.shape[2:]
    pad = _resolve_padding(padding, kernel, stride, dilation, x.shape[2:])
    _check_fits(op, x.shape, kernel, dilation, pad)
    return ops.LearnedCombination.apply(x, weight, c, bias, stride=stride, padding=pad,
                                        dilation=dilation)


def learned_combination(input: Tensor, weight: Tensor, c: Tensor, bias: Tensor | None = None,
                        stride: IntPair = 1, padding: IntPair | str = 0,
                        dilation: IntPair = 1) -> Tensor:
    """Bouvrie's learned combination of feature maps (seed 002, eqs. (15)-(21)):

        u_j = sum_i alpha_ij (x_i * k_i) + b_j,   alpha_.j = softmax(c_.j)

    input (N, C_in, H, W), weight k (C_in, 1, KH, KW) (one kernel per input map),
    c (C_in, C_out), bias (C_out,) -> u (N, C_out, OH, OW), OH as for conv2d.
    The non-linearity f of x_j = f(u_j) is left to the next layer.
    """
    op = "learned_combination"
    x = as_tensor(input)
    if x.ndim != 4:
        raise ValueError(f"{op}: expected input (N, C, H, W), got shape {x.shape}")
    if weight.ndim != 4 or weight.shape[1] != 1:
        raise ValueError(f"{op}: expected weight (C_in, 1, KH, KW), got shape {weight.shape}")
    C = weight.shape[0]
    if x.shape[1] != C:
        raise ValueError(f"{op}: weight {weight.shape} expects input (N, {C}, H, W), got {x.shape}")
    if c.ndim != 2 or c.shape[0] != C:
        raise ValueError(f"{op}: expected c of shape ({C}, C_out), got {c.shape}")
    if bias is not None and bias.shape != (c.shape[1],):
        raise ValueError(f"{op}: expected bias of shape ({c.shape[1]},), got {bias.shape}")
    s, d = pair(stride, "stride"), pair(dilation, "dilation")
    p = padding if isinstance(padding, str) else pair(padding, "padding")
    check_sizes(op, 1, stride=s, dilation=d)
    check_padding(op, p, 2)
    return _learned_combination(x, weight, c, bias, s, p, d)


def combination_l1_penalty(layer: Any, lam: float) -> Tensor:
    """Bouvrie's sparsity penalty Omega = lambda sum_ij |alpha_ij| (eq. (18)) of a
    :class:`LearnedCombination` layer (or of a c tensor), as a Tensor whose
    gradient flows to c: dOmega/dc_ij = lambda (|alpha_ij| - alpha_ij sum_k |alpha_kj|)
    (eq. (21)).  Since softmax columns are positive and sum to 1, its value is
    lambda * C_out and that gradient is zero up to rounding (see
    :mod:`cnnlab.kernels.combination`)."""
    c = layer if isinstance(layer, Tensor) else getattr(layer, "c", None)
    if not isinstance(c, Tensor):
        raise TypeError(f"combination_l1_penalty: expected a LearnedCombination layer or a c "
                        f"Tensor, got {type(layer).__name__}")
    alpha = combination_weights(c)
    return alpha.abs().sum() * np.asarray(lam, dtype=c.dtype)


__all__ = ["combination_l1_penalty", "combination_weights", "connection_table_conv2d", "conv1d",
           "conv2d", "conv_output_size", "conv_padding", "conv_transpose2d", "learned_combination",
           "linear", "locally_connected1d", "locally_connected2d"]
