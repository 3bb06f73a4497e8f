"""Functional convolution and fully connected ops (PyTorch names and argument order)."""
from __future__ import annotations

from typing import Any

import numpy as np

from cnnlab.autograd import conv_ops as ops
from cnnlab.autograd.tensor import Tensor
from cnnlab.kernels.conv import conv_output_size, out_size
from cnnlab.kernels.conv_transpose import conv_transpose_output_size
from cnnlab.nn._args import IntPair, as_tensor, check_same_dtype, pair, single


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
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "valid":
            return (0, 0, 0, 0)
        pads = []
        for size, k, s, d in zip(in_hw, kernel, stride, dilation):
            eff = d * (k - 1) + 1
            if mode == "same":
                out = -(-size // s)
                total = max((out - 1) * s + eff - size, 0)
                pads += [total // 2, total - total // 2]
            elif mode == "full":
                pads += [eff - 1, eff - 1]
            else:
                raise ValueError(
                    f"padding must be an int, a pair, 'valid', 'same' or 'full', got {padding!r}")
        return (pads[0], pads[1], pads[2], pads[3])
    ph, pw = pair(padding, "padding")
    if ph < 0 or pw < 0:
        raise ValueError(f"padding must be non-negative, got {padding!r}")
    return (ph, ph, pw, pw)


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntPair = 1,
           padding: IntPair | str = 0, dilation: IntPair = 1, groups: int = 1) -> Tensor:
    """2-D convolution (cross-correlation) over (N, C, H, W) or unbatched (C, H, W).

    weight (O, C // groups, KH, KW), bias (O,).  Output (N, O, OH, OW) with
    OH = (H + P_top + P_bottom - dilation (KH - 1) - 1) // stride + 1.
    """
    x = as_tensor(input)
    unbatched = x.ndim == 3
    if unbatched:
        x = x.reshape(1, *x.shape)
    if x.ndim != 4:
        raise ValueError(f"conv2d: expected input (N, C, H, W) or (C, H, W), got shape {x.shape}")
    if weight.ndim != 4:
        raise ValueError(f"conv2d: expected weight (O, C/groups, KH, KW), got shape {weight.shape}")
    O, Cg, KH, KW = weight.shape
    if groups < 1 or x.shape[1] != Cg * groups or O % groups:
        raise ValueError(
            f"conv2d: weight {weight.shape} with groups={groups} expects input "
            f"(N, {Cg * groups}, H, W), got {x.shape}")
    if bias is not None and bias.shape != (O,):
        raise ValueError(f"conv2d: expected bias of shape ({O},), got {bias.shape}")
    check_same_dtype("conv2d", x, weight, bias)
    s = pair(stride, "stride")
    d = pair(dilation, "dilation")
    if min(s) < 1 or min(d) < 1:
        raise ValueError(f"conv2d: stride and dilation must be >= 1, got {s} and {d}")
    pad = conv_padding(padding, (KH, KW), s, d, x.shape[2:])
    H, W = x.shape[2:]
    for size, k, dd, p0, p1, axis in ((H, KH, d[0], pad[0], pad[1], "height"),
                                      (W, KW, d[1], pad[2], pad[3], "width")):
        if size + p0 + p1 < dd * (k - 1) + 1:
            raise ValueError(
                f"conv2d: input {axis} {size} padded to {size + p0 + p1} is smaller than the "
                f"effective kernel size {dd * (k - 1) + 1} (input shape {x.shape})")
    y = ops.Conv2d.apply(x, weight, bias, stride=s, padding=pad, dilation=d, groups=groups)
    return y.reshape(y.shape[1:]) if unbatched else y


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = x W^T + b over the last axis: x (..., in), W (out, in) -> (..., out)."""
    x = as_tensor(input)
    if x.ndim < 1 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: weight {weight.shape} expects input (..., {weight.shape[1]}), "
                         f"got {x.shape}")
    check_same_dtype("linear", x, weight, bias)
    return ops.Linear.apply(x, weight, bias)


# ------------------------------------------------------------------ conv1d
def conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: int = 1,
           padding: int | str = 0, dilation: int = 1, groups: int = 1) -> Tensor:
    """1-D convolution (cross-correlation) over time series (N, C, L) or unbatched (C, L)
    (Deep Learning ch. 9, the notes' 1-D case), computed by the 2-D kernels with H = 1.

    weight (O, C // groups, K), bias (O,).  Output (N, O, L_out) with
    L_out = (L + 2P - dilation (K - 1) - 1) // stride + 1; ``padding`` is an int
    or 'valid' / 'same' / 'full' as in :func:`conv2d`.
    """
    x = as_tensor(input)
    unbatched = x.ndim == 2
    if unbatched:
        x = x.reshape(1, *x.shape)
    if x.ndim != 3:
        raise ValueError(f"conv1d: expected input (N, C, L) or (C, L), got shape {x.shape}")
    if weight.ndim != 3:
        raise ValueError(f"conv1d: expected weight (O, C/groups, K), got shape {weight.shape}")
    O, Cg, K = weight.shape
    if groups < 1 or x.shape[1] != Cg * groups or O % groups:
        raise ValueError(f"conv1d: weight {weight.shape} with groups={groups} expects input "
                         f"(N, {Cg * groups}, L), got {x.shape}")
    s, d = single(stride, "stride", "conv1d"), single(dilation, "dilation", "conv1d")
    if s < 1 or d < 1:
        raise ValueError(f"conv1d: stride and dilation must be >= 1, got {s} and {d}")
    p = padding if isinstance(padding, str) else (0, single(padding, "padding", "conv1d"))
    N, C, L = x.shape
    try:
        y = conv2d(x.reshape(N, C, 1, L), weight.reshape(O, Cg, 1, K), bias, (1, s), p, (1, d),
                   groups)
    except ValueError as e:
        raise ValueError(str(e).replace("conv2d:", "conv1d:").replace("input width", "input length")
                         ) from None
    y = y.reshape(N, O, y.shape[3])
    return y.reshape(y.shape[1:]) if unbatched else y


# --------------------------------------------------------- conv_transpose2d
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
    x = as_tensor(input)
    unbatched = x.ndim == 3
    if unbatched:
        x = x.reshape(1, *x.shape)
    if x.ndim != 4:
        raise ValueError(f"conv_transpose2d: expected input (N, C_in, H, W) or (C_in, H, W), "
                         f"got shape {x.shape}")
    if weight.ndim != 4:
        raise ValueError(f"conv_transpose2d: expected weight (C_in, C_out/groups, KH, KW), got "
                         f"shape {weight.shape}")
    Cin, Cout_g, KH, KW = weight.shape
    if groups < 1 or Cin % groups or x.shape[1] != Cin:
        raise ValueError(f"conv_transpose2d: weight {weight.shape} with groups={groups} expects "
                         f"input (N, {Cin}, H, W) with {Cin} divisible by groups, got {x.shape}")
    if bias is not None and bias.shape != (Cout_g * groups,):
        raise ValueError(f"conv_transpose2d: expected bias of shape ({Cout_g * groups},), got "
                         f"{bias.shape}")
    check_same_dtype("conv_transpose2d", x, weight, bias)
    s, d = pair(stride, "stride"), pair(dilation, "dilation")
    p, op = pair(padding, "padding"), pair(output_padding, "output_padding")
    if min(s) < 1 or min(d) < 1:
        raise ValueError(f"conv_transpose2d: stride and dilation must be >= 1, got {s} and {d}")
    if min(p) < 0 or min(op) < 0:
        raise ValueError(f"conv_transpose2d: padding and output_padding must be non-negative, "
                         f"got {p} and {op}")
    for a in range(2):
        if op[a] >= max(s[a], d[a]):
            raise ValueError(f"conv_transpose2d: output_padding {op} must be smaller than either "
                             f"the stride {s} or the dilation {d}")
    out = [conv_transpose_output_size(size, k, s[a], p[a], op[a], d[a])
           for a, (size, k) in enumerate(zip(x.shape[2:], (KH, KW)))]
    if min(out) < 1:
        raise ValueError(f"conv_transpose2d: input {x.shape} with kernel {(KH, KW)}, stride {s}, "
                         f"padding {p}, dilation {d} gives an empty output {tuple(out)}")
    y = ops.ConvTranspose2d.apply(x, weight, bias, stride=s, padding=p, output_padding=op,
                                  dilation=d, groups=groups)
    return y.reshape(y.shape[1:]) if unbatched else y


# ------------------------------------------------------ locally connected
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
    if x.ndim != 4:
        raise ValueError(f"locally_connected2d: expected input (N, C, H, W), got shape {x.shape}")
    if weight.ndim != 6:
        raise ValueError(f"locally_connected2d: expected weight (OH, OW, O, C, KH, KW), got "
                         f"shape {weight.shape}")
    OH, OW, O, C, KH, KW = weight.shape
    if x.shape[1] != C:
        raise ValueError(f"locally_connected2d: weight {weight.shape} expects input "
                         f"(N, {C}, H, W), got {x.shape}")
    if bias is not None and bias.shape != (O, OH, OW):
        raise ValueError(f"locally_connected2d: expected bias of shape {(O, OH, OW)}, got "
                         f"{bias.shape}")
    check_same_dtype("locally_connected2d", x, weight, bias)
    s, d = pair(stride, "stride"), pair(dilation, "dilation")
    if min(s) < 1 or min(d) < 1:
        raise ValueError(f"locally_connected2d: stride and dilation must be >= 1, got {s} and {d}")
    pad = conv_padding(padding, (KH, KW), s, d, x.shape[2:])
    H, W = x.shape[2:]
    out = (out_size(H, KH, s[0], pad[0], pad[1], d[0]), out_size(W, KW, s[1], pad[2], pad[3], d[1]))
    if out != (OH, OW):
        raise ValueError(f"locally_connected2d: input {x.shape} with kernel {(KH, KW)}, stride "
                         f"{s}, padding {padding!r}, dilation {d} gives {out} output positions, "
                         f"but the weight has filters for {(OH, OW)}")
    return ops.Local2d.apply(x, weight, bias, stride=s, padding=pad, dilation=d)


def locally_connected1d(input: Tensor, weight: Tensor, bias: Tensor | None = None,
                        stride: int = 1, padding: int | str = 0, dilation: int = 1) -> Tensor:
    """Unshared 1-D convolution over (N, C, L): weight (OL, O, C, K), bias (O, OL);
    the 2-D op with H = 1."""
    x = as_tensor(input)
    if x.ndim != 3:
        raise ValueError(f"locally_connected1d: expected input (N, C, L), got shape {x.shape}")
    if weight.ndim != 4:
        raise ValueError(f"locally_connected1d: expected weight (OL, O, C, K), got shape "
                         f"{weight.shape}")
    OL, O, C, K = weight.shape
    if bias is not None and bias.shape != (O, OL):
        raise ValueError(f"locally_connected1d: expected bias of shape {(O, OL)}, got "
                         f"{bias.shape}")
    s = single(stride, "stride", "locally_connected1d")
    d = single(dilation, "dilation", "locally_connected1d")
    p = padding if isinstance(padding, str) else (0, single(padding, "padding",
                                                              "locally_connected1d"))
    N, _, L = x.shape
    b2 = None if bias is None else bias.reshape(O, 1, OL)
    try:
        y = locally_connected2d(x.reshape(N, x.shape[1], 1, L),
                                weight.reshape(1, OL, O, C, 1, K), b2, (1, s), p, (1, d))
    except ValueError as e:
        raise ValueError(str(e).replace("locally_connected2d:", "locally_connected1d:")
                         ) from None
    return y.reshape(N, O, OL)


# ------------------------------------------------------- connection table
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
    if weight.ndim != 4:
        raise ValueError(f"connection_table_conv2d: expected weight (O, C, KH, KW), got shape "
                         f"{weight.shape}")
    mask = np.asarray(table, dtype=bool)
    O, C = weight.shape[:2]
    if mask.shape != (C, O):
        raise ValueError(f"connection_table_conv2d: weight {weight.shape} needs a table of shape "
                         f"(in_channels, out_channels) = {(C, O)}, got {mask.shape}")
    m = Tensor(np.ascontiguousarray(mask.T[:, :, None, None]).astype(weight.dtype))
    try:
        return conv2d(input, weight * m, bias, stride, padding, dilation)
    except ValueError as e:
        raise ValueError(str(e).replace("conv2d:", "connection_table_conv2d:")) from None


# --------------------------------------------------- learned combinations
def combination_weights(c: Tensor) -> Tensor:
    """alpha = softmax(c) over the input axis: c (C_in, C_out) -> alpha, each column
    a convex combination (Bouvrie's alpha_ij = exp(c_ij) / sum_k exp(c_kj))."""
    c = as_tensor(c)
    if c.ndim != 2:
        raise ValueError(f"combination_weights: expected c of shape (C_in, C_out), got {c.shape}")
    return ops.CombinationWeights.apply(c)


def learned_combination(input: Tensor, weight: Tensor, c: Tensor, bias: Tensor | None = None,
                        stride: IntPair = 1, padding: IntPair | str = 0,
                        dilation: IntPair = 1) -> Tensor:
    """Bouvrie's learned combination of feature maps (seed 002, eqs. (15)-(21)):

        u_j = sum_i alpha_ij (x_i * k_i) + b_j,   alpha_.j = softmax(c_.j)

    input (N, C_in, H, W), weight k (C_in, 1, KH, KW) (one kernel per input map),
    c (C_in, C_out), bias (C_out,) -> u (N, C_out, OH, OW), OH as for conv2d.
    The non-linearity f of x_j = f(u_j) is left to the next layer.
    """
    x = as_tensor(input)
    if x.ndim != 4:
        raise ValueError(f"learned_combination: expected input (N, C, H, W), got shape {x.shape}")
    if weight.ndim != 4 or weight.shape[1] != 1:
        raise ValueError(f"learned_combination: expected weight (C_in, 1, KH, KW), got shape "
                         f"{weight.shape}")
    C, _, KH, KW = weight.shape
    if x.shape[1] != C:
        raise ValueError(f"learned_combination: weight {weight.shape} expects input "
                         f"(N, {C}, H, W), got {x.shape}")
    if c.ndim != 2 or c.shape[0] != C:
        raise ValueError(f"learned_combination: expected c of shape ({C}, C_out), got {c.shape}")
    if bias is not None and bias.shape != (c.shape[1],):
        raise ValueError(f"learned_combination: expected bias of shape ({c.shape[1]},), got "
                         f"{bias.shape}")
    check_same_dtype("learned_combination", x, weight, c, bias)
    s, d = pair(stride, "stride"), pair(dilation, "dilation")
    if min(s) < 1 or min(d) < 1:
        raise ValueError(f"learned_combination: stride and dilation must be >= 1, got {s} and {d}")
    pad = conv_padding(padding, (KH, KW), s, d, x.shape[2:])
    for size, k, dd, p0, p1 in ((x.shape[2], KH, d[0], pad[0], pad[1]),
                                (x.shape[3], KW, d[1], pad[2], pad[3])):
        if size + p0 + p1 < dd * (k - 1) + 1:
            raise ValueError(f"learned_combination: input {x.shape} padded by {pad} is smaller "
                             f"than the effective kernel size {dd * (k - 1) + 1}")
    return ops.LearnedCombination.apply(x, weight, c, bias, stride=s, padding=pad, dilation=d)


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
