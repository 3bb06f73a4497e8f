"""Functional interface with PyTorch's names and argument order.

``import cnnlab.nn.functional as F`` then ``F.conv2d(x, w, b, stride=2)`` as in
``torch.nn.functional``.  This layer normalises and validates arguments and
hands ndarrays to the autograd adapters in :mod:`cnnlab.autograd.nn_ops`.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from cnnlab.autograd import nn_ops as ops
from cnnlab.autograd.tensor import Tensor
from cnnlab.kernels import pool as pool_k
from cnnlab.kernels.conv import conv_output_size
from cnnlab.kernels.loss import REDUCTIONS
from cnnlab.random import get_rng

IntPair = int | Sequence[int]


def _pair(v: IntPair, name: str) -> tuple[int, int]:
    if isinstance(v, (int, np.integer)):
        out = (int(v), int(v))
    else:
        t = tuple(int(a) for a in v)
        if len(t) != 2:
            raise ValueError(f"{name} must be an int or a pair of ints, got {v!r}")
        out = (t[0], t[1])
    return out


def _as_tensor(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def _check_same_dtype(op: str, *tensors: Tensor | None) -> None:
    dtypes = {t.dtype for t in tensors if t is not None}
    if len(dtypes) > 1:
        raise TypeError(
            f"{op}: all inputs must share one dtype, got {sorted(str(d) for d in dtypes)}; "
            "convert the model with .float()/.double() or the input with .float()/.double()")


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
    ph, pw = _pair(padding, "padding")
    if ph < 0 or pw < 0:
        raise ValueError(f"padding must be non-negative, got {padding!r}")
    return (ph, ph, pw, pw)


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntPair = 1,
           padding: IntPair | str = 0, dilation: IntPair = 1, groups: int = 1) -> Tensor:
    """2-D convolution (cross-correlation) over (N, C, H, W) or unbatched (C, H, W).

    weight (O, C // groups, KH, KW), bias (O,).  Output (N, O, OH, OW) with
    OH = (H + P_top + P_bottom - dilation (KH - 1) - 1) // stride + 1.
    """
    x = _as_tensor(input)
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
    _check_same_dtype("conv2d", x, weight, bias)
    s = _pair(stride, "stride")
    d = _pair(dilation, "dilation")
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


def _pool_args(x: Tensor, kernel_size: IntPair, stride: IntPair | None, padding: IntPair,
               dilation: IntPair, ceil_mode: bool, name: str):
    unbatched = x.ndim == 3
    if unbatched:
        x = x.reshape(1, *x.shape)
    if x.ndim != 4:
        raise ValueError(f"{name}: expected input (N, C, H, W) or (C, H, W), got shape {x.shape}")
    k = _pair(kernel_size, "kernel_size")
    s = k if stride is None or (not isinstance(stride, int) and len(stride) == 0) else _pair(stride, "stride")
    p = _pair(padding, "padding")
    d = _pair(dilation, "dilation")
    if min(k) < 1 or min(s) < 1 or min(d) < 1:
        raise ValueError(f"{name}: kernel_size, stride and dilation must be >= 1, got {k}, {s}, {d}")
    if p[0] > k[0] // 2 or p[1] > k[1] // 2 or min(p) < 0:
        raise ValueError(f"{name}: padding {p} must be between 0 and half the kernel size {k}")
    H, W = x.shape[2:]
    for size, kk, pp, dd, axis in ((H, k[0], p[0], d[0], "height"), (W, k[1], p[1], d[1], "width")):
        if size + 2 * pp < dd * (kk - 1) + 1:
            raise ValueError(f"{name}: input {axis} {size} padded to {size + 2 * pp} is smaller than "
                             f"the window {dd * (kk - 1) + 1} (input shape {x.shape})")
    return x, unbatched, k, s, p, d


def max_pool2d(input: Tensor, kernel_size: IntPair, stride: IntPair | None = None,
               padding: IntPair = 0, dilation: IntPair = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """Max pooling; stride defaults to kernel_size.  Ties go to the first
    maximum in scan order (see :mod:`cnnlab.kernels.pool`).  With
    ``return_indices`` also returns, per output, the flat index h * W + w of
    the maximum in its input plane (an int64 Tensor), as PyTorch does."""
    x, unbatched, k, s, p, d = _pool_args(_as_tensor(input), kernel_size, stride, padding,
                                          dilation, ceil_mode, "max_pool2d")
    y = ops.MaxPool2d.apply(x, kernel=k, stride=s, padding=p, dilation=d, ceil_mode=ceil_mode)
    out = y.reshape(y.shape[1:]) if unbatched else y
    if not return_indices:
        return out
    _, cache = pool_k.max_pool2d_forward(x.data, k, s, p, d, ceil_mode)
    idx = pool_k.max_pool2d_indices(cache)
    return out, Tensor(idx[0] if unbatched else idx)


def avg_pool2d(input: Tensor, kernel_size: IntPair, stride: IntPair | None = None,
               padding: IntPair = 0, ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: int | None = None) -> Tensor:
    """Average pooling; stride defaults to kernel_size.  PyTorch's signature and divisor rules."""
    x, unbatched, k, s, p, _ = _pool_args(_as_tensor(input), kernel_size, stride, padding, 1,
                                          ceil_mode, "avg_pool2d")
    if divisor_override is not None and divisor_override <= 0:
        raise ValueError(f"avg_pool2d: divisor_override must be positive, got {divisor_override}")
    y = ops.AvgPool2d.apply(x, kernel=k, stride=s, padding=p, ceil_mode=ceil_mode,
                            count_include_pad=count_include_pad, divisor_override=divisor_override)
    return y.reshape(y.shape[1:]) if unbatched else y


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = x W^T + b over the last axis: x (..., in), W (out, in) -> (..., out)."""
    x = _as_tensor(input)
    if x.ndim < 1 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: weight {weight.shape} expects input (..., {weight.shape[1]}), "
                         f"got {x.shape}")
    _check_same_dtype("linear", x, weight, bias)
    return ops.Linear.apply(x, weight, bias)


def relu(input: Tensor) -> Tensor:
    return ops.ReLU.apply(_as_tensor(input))


def sigmoid(input: Tensor) -> Tensor:
    return ops.Sigmoid.apply(_as_tensor(input))


def tanh(input: Tensor) -> Tensor:
    return ops.Tanh.apply(_as_tensor(input))


def _dim(x: Tensor, dim: int | None, name: str) -> int:
    if dim is None:
        dim = 0 if x.ndim in (0, 1, 3) else 1   # PyTorch's legacy implicit choice
    if not -x.ndim <= dim < x.ndim:
        raise IndexError(f"{name}: dim {dim} out of range for shape {x.shape}")
    return dim % x.ndim


def softmax(input: Tensor, dim: int | None = None) -> Tensor:
    x = _as_tensor(input)
    return ops.Softmax.apply(x, axis=_dim(x, dim, "softmax"))


def log_softmax(input: Tensor, dim: int | None = None) -> Tensor:
    x = _as_tensor(input)
    return ops.LogSoftmax.apply(x, axis=_dim(x, dim, "log_softmax"))


def dropout(input: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Inverted dropout: zero each value with probability p and scale the
    rest by 1 / (1 - p), so evaluation needs no rescaling."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, got {p}")
    x = _as_tensor(input)
    if not training or p == 0.0:
        return x
    if p == 1.0:
        mask = np.zeros(x.shape, dtype=x.dtype)
    else:
        keep = get_rng().random(x.shape, dtype=np.float64) >= p
        mask = keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - p))
    return ops.Dropout.apply(x, mask=mask)


def batch_norm(input: Tensor, running_mean: np.ndarray | None, running_var: np.ndarray | None,
               weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Batch normalisation over axis 1 of (N, C), (N, C, L) or (N, C, H, W).

    ``running_mean``/``running_var`` are arrays (or Tensors) updated in place
    when ``training``; in eval they normalise the input.
    """
    x = _as_tensor(input)
    if x.ndim < 2:
        raise ValueError(f"batch_norm: expected input (N, C, ...), got shape {x.shape}")
    rm = running_mean.data if isinstance(running_mean, Tensor) else running_mean
    rv = running_var.data if isinstance(running_var, Tensor) else running_var
    if not training and (rm is None or rv is None):
        raise ValueError("batch_norm: eval mode needs running_mean and running_var")
    _check_same_dtype("batch_norm", x, weight, bias)
    return ops.BatchNorm.apply(x, weight, bias, running_mean=rm, running_var=rv,
                               training=training, momentum=momentum, eps=eps)


def _check_reduction(reduction: str, name: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"{name}: reduction must be one of {REDUCTIONS}, got {reduction!r}")


def cross_entropy(input: Tensor, target: Tensor | np.ndarray, reduction: str = "mean") -> Tensor:
    """Softmax cross-entropy on logits (N, C) and class indices (N,)."""
    z = _as_tensor(input)
    t = np.asarray(target.data if isinstance(target, Tensor) else target)
    _check_reduction(reduction, "cross_entropy")
    if z.ndim != 2:
        raise ValueError(f"cross_entropy: expected logits (N, C), got shape {z.shape}")
    if t.shape != (z.shape[0],):
        raise ValueError(f"cross_entropy: expected target ({z.shape[0]},) for logits {z.shape}, "
                         f"got {t.shape}")
    if not np.issubdtype(t.dtype, np.integer):
        raise TypeError(f"cross_entropy: target must hold integer class indices, got {t.dtype}")
    if t.size and (t.min() < 0 or t.max() >= z.shape[1]):
        raise IndexError(f"cross_entropy: target {int(t.min())}..{int(t.max())} out of range for "
                         f"{z.shape[1]} classes")
    return ops.CrossEntropy.apply(z, Tensor(t), reduction=reduction)


def nll_loss(input: Tensor, target: Tensor | np.ndarray, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood on log-probabilities (N, C) and class indices (N,)."""
    lp = _as_tensor(input)
    t = np.asarray(target.data if isinstance(target, Tensor) else target)
    _check_reduction(reduction, "nll_loss")
    picked = -lp[np.arange(lp.shape[0]), t]
    if reduction == "mean":
        return picked.mean()
    if reduction == "sum":
        return picked.sum()
    return picked


def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Squared error, averaged (or summed) over every element."""
    y, t = _as_tensor(input), _as_tensor(target)
    _check_reduction(reduction, "mse_loss")
    if y.shape != t.shape:
        raise ValueError(f"mse_loss: input {y.shape} and target {t.shape} must have the same shape")
    return ops.MSELoss.apply(y, t, reduction=reduction)


__all__ = ["avg_pool2d", "batch_norm", "conv2d", "conv_output_size", "conv_padding",
           "cross_entropy", "dropout", "linear", "log_softmax", "max_pool2d", "mse_loss",
           "nll_loss", "relu", "sigmoid", "softmax", "tanh"]
