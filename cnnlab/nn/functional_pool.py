"""Functional pooling ops (PyTorch names and argument order)."""
from __future__ import annotations

from cnnlab.autograd import pool_ops as ops
from cnnlab.autograd.tensor import Tensor
from cnnlab.kernels import pool as pool_k
from cnnlab.nn._args import IntPair, as_tensor, pair


def _pool_args(x: Tensor, kernel_size: IntPair, stride: IntPair | None, padding: IntPair,
               dilation: IntPair, ceil_mode: bool, name: str):
    unbatched = x.ndim == 3
    if unbatched:
        x = x.reshape(1, *x.shape)
    if x.ndim != 4:
        raise ValueError(f"{name}: expected input (N, C, H, W) or (C, H, W), got shape {x.shape}")
    k = pair(kernel_size, "kernel_size")
    s = k if stride is None or (not isinstance(stride, int) and len(stride) == 0) else pair(stride, "stride")
    p = pair(padding, "padding")
    d = pair(dilation, "dilation")
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
    x, unbatched, k, s, p, d = _pool_args(as_tensor(input), kernel_size, stride, padding,
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
    x, unbatched, k, s, p, _ = _pool_args(as_tensor(input), kernel_size, stride, padding, 1,
                                          ceil_mode, "avg_pool2d")
    if divisor_override is not None and divisor_override <= 0:
        raise ValueError(f"avg_pool2d: divisor_override must be positive, got {divisor_override}")
    y = ops.AvgPool2d.apply(x, kernel=k, stride=s, padding=p, ceil_mode=ceil_mode,
                            count_include_pad=count_include_pad, divisor_override=divisor_override)
    return y.reshape(y.shape[1:]) if unbatched else y


__all__ = ["avg_pool2d", "max_pool2d"]
