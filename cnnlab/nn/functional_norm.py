"""Functional normalisation ops (PyTorch names and argument order).

Batch, layer, instance and group norm and local response normalisation, as in
the notes (003 for the first four, 002 for AlexNet's LRN).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from cnnlab.autograd import norm_ops as ops
from cnnlab.autograd.tensor import Tensor
from cnnlab.nn._args import as_tensor, check_same_dtype


def batch_norm(input: Tensor, running_mean: np.ndarray | None, running_var: np.ndarray | None,
               weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Batch normalisation over axis 1 of (N, C), (N, C, L) or (N, C, H, W).

    ``running_mean``/``running_var`` are arrays (or Tensors) updated in place
    when ``training``; in eval they normalise the input.
    """
    return _batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)


def _batch_norm(input: Tensor, running_mean: np.ndarray | None, running_var: np.ndarray | None,
                weight: Tensor | None, bias: Tensor | None, training: bool, momentum: float,
                eps: float, relu: bool = False) -> Tensor:
    """:func:`batch_norm`; with ``relu``, relu(batch_norm(...)) as one node
    (:class:`~cnnlab.autograd.norm_ops.BatchNormReLU`, for ``Sequential``'s fusion)."""
    x = as_tensor(input)
    if x.ndim < 2:
        raise ValueError(f"batch_norm: expected input (N, C, ...), got shape {x.shape}")
    rm = running_mean.data if isinstance(running_mean, Tensor) else running_mean
    rv = running_var.data if isinstance(running_var, Tensor) else running_var
    if not training and (rm is None or rv is None):
        raise ValueError("batch_norm: eval mode needs running_mean and running_var")
    check_same_dtype("batch_norm", x, weight, bias)
    fn = ops.BatchNormReLU if relu else ops.BatchNorm
    return fn.apply(x, weight, bias, running_mean=rm, running_var=rv, training=training,
                    momentum=momentum, eps=eps)


def _raw(a) -> np.ndarray | None:
    return a.data if isinstance(a, Tensor) else (None if a is None else np.asarray(a))


def _check_param(op: str, name: str, t: Tensor | None, shape: tuple[int, ...]) -> None:
    if t is not None and tuple(t.shape) != tuple(shape):
        raise ValueError(f"{op}: expected {name} of shape {tuple(shape)}, got {tuple(t.shape)}")


def _normalized_shape(op: str, normalized_shape: int | Sequence[int]) -> tuple[int, ...]:
    if isinstance(normalized_shape, (int, np.integer)):
        shape = (int(normalized_shape),)
    else:
        shape = tuple(int(d) for d in normalized_shape)
    if not shape or any(d <= 0 for d in shape):
        raise ValueError(f"{op}: normalized_shape must be a non-empty shape of positive sizes, "
                         f"got {normalized_shape!r}")
    return shape


def layer_norm(input: Tensor, normalized_shape: int | Sequence[int], weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Layer normalisation (the notes, 003): each sample normalised over its last
    ``len(normalized_shape)`` axes.

    input (*, *normalized_shape) -> output (same shape);
    y = (x - E[x]) / sqrt(Var[x] + eps) * weight + bias, biased variance,
    weight and bias of shape ``normalized_shape`` (or None).
    """
    x = as_tensor(input)
    shape = _normalized_shape("layer_norm", normalized_shape)
    k = len(shape)
    if x.ndim < k or tuple(x.shape[x.ndim - k:]) != shape:
        raise ValueError(f"layer_norm: normalized_shape={list(shape)} expects input of shape "
                         f"(*, {', '.join(map(str, shape))}), got {x.shape}")
    _check_param("layer_norm", "weight", weight, shape)
    _check_param("layer_norm", "bias", bias, shape)
    check_same_dtype("layer_norm", x, weight, bias)
    return ops.LayerNorm.apply(x, weight, bias, ndim_norm=k, eps=eps)


def instance_norm(input: Tensor, running_mean: np.ndarray | None = None,
                  running_var: np.ndarray | None = None, weight: Tensor | None = None,
                  bias: Tensor | None = None, use_input_stats: bool = True,
                  momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Instance normalisation (the notes, 003): each (sample, channel) of
    input (N, C, *spatial) normalised over its spatial positions; output same shape.

    With ``use_input_stats`` (training, or no running stats) the per-instance
    statistics are used and ``running_mean``/``running_var`` (C,), if given, are
    updated in place with their batch average (unbiased variance), as PyTorch
    does; otherwise the running statistics normalise the input.
    weight and bias (C,) apply per channel.
    """
    x = as_tensor(input)
    if x.ndim < 3:
        raise ValueError(f"instance_norm: expected input (N, C, *spatial) with at least one "
                         f"spatial axis, got shape {x.shape}")
    c = x.shape[1]
    rm, rv = _raw(running_mean), _raw(running_var)
    for name, a in (("running_mean", rm), ("running_var", rv)):
        if a is not None and a.shape != (c,):
            raise ValueError(f"instance_norm: expected {name} of shape ({c},), got {a.shape}")
    if use_input_stats:
        spatial = math.prod(x.shape[2:])
        if spatial <= 1:
            raise ValueError("instance_norm: expected more than 1 spatial element when "
                             f"training, got input size {x.shape}")
    elif rm is None or rv is None:
        raise ValueError("instance_norm: use_input_stats=False needs running_mean and running_var")
    _check_param("instance_norm", "weight", weight, (c,))
    _check_param("instance_norm", "bias", bias, (c,))
    check_same_dtype("instance_norm", x, weight, bias)
    return ops.InstanceNorm.apply(x, weight, bias, running_mean=rm, running_var=rv,
                                  use_input_stats=use_input_stats, momentum=momentum, eps=eps)


def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Group normalisation (the notes, 003): the C channels of input (N, C, *)
    are split into ``num_groups`` groups of consecutive channels, and each
    (sample, group) is normalised over its channels and positions; output same
    shape.  weight and bias (C,) apply per channel.
    """
    x = as_tensor(input)
    if x.ndim < 2:
        raise ValueError(f"group_norm: expected input (N, C, *), got shape {x.shape}")
    if not isinstance(num_groups, (int, np.integer)) or num_groups <= 0:
        raise ValueError(f"group_norm: num_groups must be a positive int, got {num_groups!r}")
    c = x.shape[1]
    if c % num_groups:
        raise ValueError(f"group_norm: the number of channels ({c}) must be divisible by "
                         f"num_groups ({num_groups})")
    _check_param("group_norm", "weight", weight, (c,))
    _check_param("group_norm", "bias", bias, (c,))
    check_same_dtype("group_norm", x, weight, bias)
    return ops.GroupNorm.apply(x, weight, bias, num_groups=int(num_groups), eps=eps)


def local_response_norm(input: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75,
                        k: float = 1.0) -> Tensor:
    """Local response normalisation across channels (AlexNet, the notes 002), as
    PyTorch defines it.  input (N, C, *) with at least one spatial axis -> same shape:

        y_c = x_c / (k + alpha / size * sum_{j=c-size//2}^{c+(size-1)//2} x_j^2) ** beta

    channels outside [0, C) count as zeros.  (AlexNet: size 5, alpha 1e-4 * 5
    in this convention, beta 0.75, k 2.)
    """
    x = as_tensor(input)
    if x.ndim < 3:
        raise ValueError(f"local_response_norm: expected input (N, C, *) with at least 3 "
                         f"dimensions, got shape {x.shape}")
    if not isinstance(size, (int, np.integer)) or size <= 0:
        raise ValueError(f"local_response_norm: size must be a positive int, got {size!r}")
    return ops.LocalResponseNorm.apply(x, size=int(size), alpha=alpha, beta=beta, k=k)


__all__ = ["batch_norm", "group_norm", "instance_norm", "layer_norm", "local_response_norm"]
