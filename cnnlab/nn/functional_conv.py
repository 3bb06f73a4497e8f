"""Functional convolution and fully connected ops (PyTorch names and argument order)."""
from __future__ import annotations

from cnnlab.autograd import conv_ops as ops
from cnnlab.autograd.tensor import Tensor
from cnnlab.kernels.conv import conv_output_size
from cnnlab.nn._args import IntPair, as_tensor, check_same_dtype, pair


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


__all__ = ["conv2d", "conv_output_size", "conv_padding", "linear"]
