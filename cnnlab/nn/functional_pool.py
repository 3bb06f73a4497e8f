"""Functional pooling ops (PyTorch names and argument order).

1-D ops run the 2-D kernels on (N, C, 1, L).  ``stochastic_pool2d`` and
``subsample2d`` have no PyTorch counterpart; their signatures follow the
same conventions (input first, hyper-parameters after).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from cnnlab.autograd import pool_ops as ops
from cnnlab.autograd.tensor import Tensor
from cnnlab.kernels import pool as pool_k
from cnnlab.kernels import pool_weighted as weighted_k
from cnnlab.nn._args import IntPair, as_tensor, check_same_dtype, pair, single
from cnnlab.random import get_rng


def _pool_args(x: Tensor, kernel_size: IntPair, stride: IntPair | None, padding: IntPair,
               dilation: IntPair, name: str):
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
    for size, ksize, pad, dil, axis in ((H, k[0], p[0], d[0], "height"),
                                        (W, k[1], p[1], d[1], "width")):
        window = dil * (ksize - 1) + 1
        if size + 2 * pad < window:
            raise ValueError(f"{name}: input {axis} {size} padded to {size + 2 * pad} is smaller "
                             f"than the window {window} (input shape {x.shape})")
    return x, unbatched, k, s, p, d


def max_pool2d(input: Tensor, kernel_size: IntPair, stride: IntPair | None = None,
               padding: IntPair = 0, dilation: IntPair = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """Max pooling; stride defaults to kernel_size.  Ties go to the first
    maximum in scan order (see :mod:`cnnlab.kernels.pool`).  With
    ``return_indices`` also returns, per output, the flat index h * W + w of
    the maximum in its input plane (an int64 Tensor), as PyTorch does."""
    x, unbatched, k, s, p, d = _pool_args(as_tensor(input), kernel_size, stride, padding,
                                          dilation, "max_pool2d")
    y, cache = ops.max_pool2d(x, kernel=k, stride=s, padding=p, dilation=d, ceil_mode=ceil_mode)
    out = y.reshape(y.shape[1:]) if unbatched else y
    if not return_indices:
        return out
    idx = pool_k.max_pool2d_indices(cache)
    return out, Tensor(idx[0] if unbatched else idx)


def avg_pool2d(input: Tensor, kernel_size: IntPair, stride: IntPair | None = None,
               padding: IntPair = 0, ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: int | None = None) -> Tensor:
    """Average pooling; stride defaults to kernel_size.  PyTorch's signature and divisor rules."""
    x, unbatched, k, s, p, _ = _pool_args(as_tensor(input), kernel_size, stride, padding, 1,
                                          "avg_pool2d")
    if divisor_override is not None and divisor_override <= 0:
        raise ValueError(f"avg_pool2d: divisor_override must be positive, got {divisor_override}")
    y = ops.AvgPool2d.apply(x, kernel=k, stride=s, padding=p, ceil_mode=ceil_mode,
                            count_include_pad=count_include_pad, divisor_override=divisor_override)
    return y.reshape(y.shape[1:]) if unbatched else y


# ------------------------------------------------------------------- 1-D pooling
def _pool1d_args(x: Tensor, kernel_size, stride, padding, dilation, name: str):
    """Validate a 1-D pool's arguments; returns x as (N, C, 1, L) and the ints."""
    unbatched = x.ndim == 2
    if unbatched:
        x = x.reshape(1, *x.shape)
    if x.ndim != 3:
        raise ValueError(f"{name}: expected input (N, C, L) or (C, L), got shape "
                         f"{x.shape[1:] if unbatched else x.shape}")
    k = single(kernel_size, "kernel_size", name)
    empty = stride is None or (not isinstance(stride, (int, np.integer)) and len(stride) == 0)
    s = k if empty else single(stride, "stride", name)
    p = single(padding, "padding", name)
    d = single(dilation, "dilation", name)
    if k < 1 or s < 1 or d < 1:
        raise ValueError(f"{name}: kernel_size, stride and dilation must be >= 1, got {k}, {s}, {d}")
    if not 0 <= p <= k // 2:
        raise ValueError(f"{name}: padding {p} must be between 0 and half the kernel size {k}")
    L = x.shape[2]
    if L + 2 * p < d * (k - 1) + 1:
        raise ValueError(f"{name}: input length {L} padded to {L + 2 * p} is smaller than the "
                         f"window {d * (k - 1) + 1} (input shape {x.shape})")
    return x.reshape(x.shape[0], x.shape[1], 1, L), unbatched, k, s, p, d


def _from_2d(y: Tensor, unbatched: bool) -> Tensor:
    """(N, C, 1, L') -> (N, C, L') or (C, L')."""
    return y.reshape(y.shape[1], y.shape[3]) if unbatched else y.reshape(y.shape[0], y.shape[1],
                                                                          y.shape[3])


def max_pool1d(input: Tensor, kernel_size: int, stride: int | None = None, padding: int = 0,
               dilation: int = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """Max over windows of ``kernel_size`` along L; (N, C, L) or (C, L) ->
    (N, C, OL), OL = (L + 2P - D(K - 1) - 1 (+ S - 1 in ceil mode)) // S + 1.
    Windows overlap when stride < kernel_size; ties go to the first maximum.
    With ``return_indices`` also returns the index of each maximum along L."""
    x, unbatched, k, s, p, d = _pool1d_args(as_tensor(input), kernel_size, stride, padding,
                                            dilation, "max_pool1d")
    y, cache = ops.max_pool2d(x, kernel=(1, k), stride=(1, s), padding=(0, p), dilation=(1, d),
                              ceil_mode=ceil_mode)
    out = _from_2d(y, unbatched)
    if not return_indices:
        return out
    idx = pool_k.max_pool2d_indices(cache)[:, :, 0, :]   # h = 0, so h * L + l = l
    return out, Tensor(idx[0] if unbatched else idx)


def avg_pool1d(input: Tensor, kernel_size: int, stride: int | None = None, padding: int = 0,
               ceil_mode: bool = False, count_include_pad: bool = True) -> Tensor:
    """Mean over windows of ``kernel_size`` along L; (N, C, L) or (C, L) ->
    (N, C, OL), PyTorch's divisor rules (see :func:`avg_pool2d`)."""
    x, unbatched, k, s, p, _ = _pool1d_args(as_tensor(input), kernel_size, stride, padding, 1,
                                            "avg_pool1d")
    y = ops.AvgPool2d.apply(x, kernel=(1, k), stride=(1, s), padding=(0, p), ceil_mode=ceil_mode,
                            count_include_pad=count_include_pad, divisor_override=None)
    return _from_2d(y, unbatched)


# ----------------------------------------------------------------------- LP pool
def _check_norm_type(norm_type: float, name: str) -> float:
    try:
        p = float(norm_type)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{name}: norm_type must be a positive number, got {norm_type!r}") from e
    if not (p > 0 and math.isfinite(p)):
        raise ValueError(f"{name}: norm_type must be positive and finite, got {norm_type!r}")
    return p


def lp_pool2d(input: Tensor, norm_type: float, kernel_size: IntPair,
              stride: IntPair | None = None, ceil_mode: bool = False) -> Tensor:
    """Power-average (LP-norm) pooling, y = (sum over the window of x ** p) ** (1 / p),
    computed as PyTorch does: (sign(a) relu(|a|) KH KW) ** (1 / p) with
    a = avg_pool2d(x ** p).  p = 1 is sum pooling, p = 2 L2 pooling (the notes,
    004).  (N, C, H, W) or (C, H, W) -> (N, C, OH, OW); no padding.  The
    gradient where a window's a is 0 is 0, as in PyTorch."""
    p = _check_norm_type(norm_type, "lp_pool2d")
    x, unbatched, k, s, _, _ = _pool_args(as_tensor(input), kernel_size, stride, 0, 1,
                                          "lp_pool2d")
    y = ops.LPPool2d.apply(x, norm_type=p, kernel=k, stride=s, ceil_mode=ceil_mode)
    return y.reshape(y.shape[1:]) if unbatched else y


def lp_pool1d(input: Tensor, norm_type: float, kernel_size: int, stride: int | None = None,
              ceil_mode: bool = False) -> Tensor:
    """LP-norm pooling along L (see :func:`lp_pool2d`); (N, C, L) or (C, L) -> (N, C, OL)."""
    p = _check_norm_type(norm_type, "lp_pool1d")
    x, unbatched, k, s, _, _ = _pool1d_args(as_tensor(input), kernel_size, stride, 0, 1,
                                            "lp_pool1d")
    y = ops.LPPool2d.apply(x, norm_type=p, kernel=(1, k), stride=(1, s), ceil_mode=ceil_mode)
    return _from_2d(y, unbatched)


# -------------------------------------------------------- distance-weighted pool
def distance_weights(kernel_size: IntPair, sigma: float | None = None, profile=None) -> np.ndarray:
    """The (KH, KW) float64 weights of :func:`distance_weighted_pool2d`, normalised
    to sum to 1: f(r) of each window position's distance r from the window's
    centre, f a Gaussian exp(-r**2 / (2 sigma**2)) (sigma default 1.0) or the
    callable ``profile`` (array of distances in, weights >= 0 out)."""
    k = pair(kernel_size, "kernel_size")
    if min(k) < 1:
        raise ValueError(f"distance_weights: kernel_size must be >= 1, got {k}")
    w = weighted_k.distance_weights(k, _radial_profile(sigma, profile, "distance_weights"))
    return w / w.sum()


def _radial_profile(sigma: float | None, profile, name: str):
    if profile is not None:
        if sigma is not None:
            raise ValueError(f"{name}: give sigma (a Gaussian profile) or profile, not both")
        if not callable(profile):
            raise TypeError(f"{name}: profile must be a callable f(distances) -> weights, "
                            f"got {type(profile).__name__}")
        return profile
    sigma = 1.0 if sigma is None else float(sigma)
    if not (sigma > 0 and math.isfinite(sigma)):
        raise ValueError(f"{name}: sigma must be positive and finite, got {sigma!r}")
    return weighted_k.gaussian_profile(sigma)


def distance_weighted_pool2d(input: Tensor, kernel_size: IntPair, stride: IntPair | None = None,
                             padding: IntPair = 0, sigma: float | None = None, profile=None,
                             count_include_pad: bool = True) -> Tensor:
    """Weighted average pooling, the weights a function of the distance from the
    window's centre (Deep Learning ch. 9.3's fourth pooling function, the
    notes, 004); no PyTorch counterpart.

    y = sum_ij w_ij x_ij / sum_ij w_ij over each KH x KW window, with w_ij =
    exp(-r_ij**2 / (2 sigma**2)) (``sigma`` default 1.0) or ``profile(r_ij)``
    for a callable radial ``profile`` (distances in, weights >= 0 out), r_ij
    the distance of position (i, j) from ((KH - 1) / 2, (KW - 1) / 2).  Zero
    padding counts as average pooling counts it (``count_include_pad``); a flat
    profile, ``profile=lambda r: np.ones_like(r)``, gives ``avg_pool2d``.
    Stride defaults to kernel_size.  (N, C, H, W) or (C, H, W) ->
    (N, C, OH, OW), OH = (H + 2P - KH) // SH + 1.
    """
    x, unbatched, k, s, p, _ = _pool_args(as_tensor(input), kernel_size, stride, padding, 1,
                                          "distance_weighted_pool2d")
    weights = weighted_k.distance_weights(
        k, _radial_profile(sigma, profile, "distance_weighted_pool2d"))
    y = ops.DistanceWeightedPool2d.apply(x, weights=weights, stride=s, padding=p,
                                         count_include_pad=count_include_pad)
    return y.reshape(y.shape[1:]) if unbatched else y


# -------------------------------------------------------------- stochastic pool
def stochastic_pool2d(input: Tensor, kernel_size: IntPair, stride: IntPair | None = None,
                      training: bool = True) -> Tensor:
    """Stochastic pooling (Zeiler & Fergus 2013) over non-negative activations
    (e.g. after ReLU); no PyTorch counterpart.

    In each window p_i = a_i / sum_j a_j.  Training: output a_k for one
    position k sampled with probability p_k (drawn from
    :func:`cnnlab.random.get_rng`, so ``cnnlab.manual_seed`` makes it
    reproducible); the gradient goes to the sampled position.  Eval: output
    sum_i p_i a_i = sum_i a_i**2 / sum_i a_i.  An all-zero window outputs 0
    and passes no gradient.  Negative inputs raise ``ValueError`` (the p_i
    would not be probabilities).  (N, C, H, W) or (C, H, W) -> (N, C, OH, OW),
    OH = (H - KH) // SH + 1; stride defaults to kernel_size; no padding.
    """
    x, unbatched, k, s, _, _ = _pool_args(as_tensor(input), kernel_size, stride, 0, 1,
                                          "stochastic_pool2d")
    if x.numel() and not (x.data.min() >= 0):
        raise ValueError(f"stochastic_pool2d: input must be non-negative (e.g. after ReLU), "
                         f"got minimum {x.data.min()}")
    uniforms = None
    if training:
        N, C, H, W = x.shape
        out_hw = (pool_k.pool_output_size(H, k[0], s[0], 0), pool_k.pool_output_size(W, k[1], s[1], 0))
        uniforms = get_rng().random((N, C, *out_hw), dtype=np.float64)
    y = ops.StochasticPool2d.apply(x, kernel=k, stride=s, uniforms=uniforms)
    return y.reshape(y.shape[1:]) if unbatched else y


# --------------------------------------------------------------------- adaptive
def _adaptive_args(x: Tensor, output_size, ndim: int, name: str):
    """x as (N, C, H, W) and the output size, None entries meaning 'keep the input's'."""
    unbatched = x.ndim == ndim + 1
    if unbatched:
        x = x.reshape(1, *x.shape)
    if x.ndim != ndim + 2:
        want = "(N, C, L) or (C, L)" if ndim == 1 else "(N, C, H, W) or (C, H, W)"
        raise ValueError(f"{name}: expected input {want}, got shape "
                         f"{x.shape[1:] if unbatched else x.shape}")
    if ndim == 1:
        x = x.reshape(x.shape[0], x.shape[1], 1, x.shape[2])
    sizes = x.shape[2:]
    if output_size is None or isinstance(output_size, (int, np.integer)):
        req = (output_size,) * ndim
    else:
        req = tuple(output_size)
        if len(req) != ndim:
            raise ValueError(f"{name}: output_size must be an int{' or a pair' if ndim == 2 else ''}"
                             f" (None keeps a dimension), got {output_size!r}")
    out = tuple(int(sz) if r is None else r for r, sz in zip(req, sizes[2 - ndim:]))
    if any(not isinstance(o, (int, np.integer)) or o < 1 for o in out):
        raise ValueError(f"{name}: output_size must be positive ints, got {output_size!r}")
    if min(sizes[2 - ndim:]) < 1:
        raise ValueError(f"{name}: input has an empty spatial dimension, shape {x.shape}")
    out_hw = (1, int(out[0])) if ndim == 1 else (int(out[0]), int(out[1]))
    return x, unbatched, out_hw


def _adaptive_out(y: Tensor, unbatched: bool, ndim: int) -> Tensor:
    if ndim == 1:
        y = y.reshape(y.shape[0], y.shape[1], y.shape[3])
    return y.reshape(y.shape[1:]) if unbatched else y


def adaptive_avg_pool2d(input: Tensor, output_size: int | Sequence[int | None]) -> Tensor:
    """Average pooling to a fixed output size whatever the input size (the notes,
    004: e.g. one output per quadrant with ``output_size=2``).  Bin i along H
    covers [floor(i H / OH), ceil((i + 1) H / OH)), PyTorch's rule; ``None``
    in ``output_size`` keeps that dimension.  ``output_size=1`` is global
    average pooling (NIN, GoogLeNet).  (N, C, H, W) or (C, H, W) -> (N, C, OH, OW)."""
    x, unbatched, out_hw = _adaptive_args(as_tensor(input), output_size, 2, "adaptive_avg_pool2d")
    return _adaptive_out(ops.AdaptiveAvgPool2d.apply(x, output_size=out_hw), unbatched, 2)


def adaptive_max_pool2d(input: Tensor, output_size: int | Sequence[int | None],
                        return_indices: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """Max pooling over PyTorch's adaptive bins (see :func:`adaptive_avg_pool2d`);
    ties go to the first maximum in scan order.  With ``return_indices`` also
    returns the flat index h * W + w of each maximum."""
    x, unbatched, out_hw = _adaptive_args(as_tensor(input), output_size, 2, "adaptive_max_pool2d")
    y, cache = ops.adaptive_max_pool2d(x, output_size=out_hw)
    out = _adaptive_out(y, unbatched, 2)
    if not return_indices:
        return out
    return out, Tensor(cache.indices[0] if unbatched else cache.indices)


def adaptive_avg_pool1d(input: Tensor, output_size: int) -> Tensor:
    """Adaptive average pooling along L; (N, C, L) or (C, L) -> (N, C, output_size)."""
    x, unbatched, out_hw = _adaptive_args(as_tensor(input), output_size, 1, "adaptive_avg_pool1d")
    return _adaptive_out(ops.AdaptiveAvgPool2d.apply(x, output_size=out_hw), unbatched, 1)


def adaptive_max_pool1d(input: Tensor, output_size: int,
                        return_indices: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """Adaptive max pooling along L; with ``return_indices`` also the index along L."""
    x, unbatched, out_hw = _adaptive_args(as_tensor(input), output_size, 1, "adaptive_max_pool1d")
    y, cache = ops.adaptive_max_pool2d(x, output_size=out_hw)
    out = _adaptive_out(y, unbatched, 1)
    if not return_indices:
        return out
    idx = cache.indices[:, :, 0, :]
    return out, Tensor(idx[0] if unbatched else idx)


# ------------------------------------------------------------------ subsampling
def subsample2d(input: Tensor, weight: Tensor, bias: Tensor | None,
                kernel_size: IntPair) -> Tensor:
    """LeNet / Bouvrie trainable subsampling (the notes, 002); no PyTorch counterpart:

        y_c = weight_c * down(x_c) + bias_c,   down = sum over each KH x KW block

    (beta = ``weight``, b = ``bias``, one per map).  Blocks do not overlap;
    leftover rows and columns are dropped.  (N, C, H, W) or (C, H, W), weight
    (C,), bias (C,) or None -> (N, C, H // KH, W // KW).  With weight = 1 / (KH KW)
    and bias = 0 it is ``avg_pool2d(input, kernel_size)``.
    """
    x, unbatched, k, _, _, _ = _pool_args(as_tensor(input), kernel_size, None, 0, 1,
                                          "subsample2d")
    weight = as_tensor(weight)
    bias = None if bias is None else as_tensor(bias)
    C = x.shape[1]
    if weight.shape != (C,):
        raise ValueError(f"subsample2d: weight must have shape ({C},) for {C} input maps, "
                         f"got {weight.shape}")
    if bias is not None and bias.shape != (C,):
        raise ValueError(f"subsample2d: bias must have shape ({C},) for {C} input maps, "
                         f"got {bias.shape}")
    check_same_dtype("subsample2d", x, weight, bias)
    y = ops.Subsample2d.apply(x, weight, bias, kernel=k)
    return y.reshape(y.shape[1:]) if unbatched else y


__all__ = ["adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_max_pool1d",
           "adaptive_max_pool2d", "avg_pool1d", "avg_pool2d", "distance_weighted_pool2d",
           "distance_weights", "lp_pool1d", "lp_pool2d",
           "max_pool1d", "max_pool2d", "stochastic_pool2d", "subsample2d"]
