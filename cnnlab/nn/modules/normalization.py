"""Per-sample normalisation layers (the notes, 003: layer and group norm) and
AlexNet's local response normalisation (the notes, 002)."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from cnnlab.autograd.tensor import DEFAULT_DTYPE, Tensor
from cnnlab.nn import functional as F
from cnnlab.nn._args import check_cpu
from cnnlab.nn.module import Module
from cnnlab.nn.modules.batchnorm import add_affine_parameters


class LayerNorm(Module):
    """Layer norm over the trailing ``normalized_shape`` axes of each sample.

    input (*, *normalized_shape) -> output (same shape);
    y = (x - E[x]) / sqrt(Var[x] + eps) * weight + bias (biased variance).
    weight (ones) and bias (zeros) have shape ``normalized_shape``; none with
    ``elementwise_affine=False``, no bias with ``bias=False``.  Same in train and eval.
    """

    def __init__(self, normalized_shape: int | Sequence[int], eps: float = 1e-5,
                 elementwise_affine: bool = True, bias: bool = True,
                 dtype=DEFAULT_DTYPE, *, device: Any = None) -> None:
        super().__init__()
        check_cpu(device)
        if isinstance(normalized_shape, (int, np.integer)):
            normalized_shape = (int(normalized_shape),)
        self.normalized_shape = tuple(int(d) for d in normalized_shape)
        if not self.normalized_shape or any(d <= 0 for d in self.normalized_shape):
            raise ValueError(f"LayerNorm: normalized_shape must be a non-empty shape of positive "
                             f"sizes, got {normalized_shape!r}")
        self.eps, self.elementwise_affine = eps, elementwise_affine
        add_affine_parameters(self, self.normalized_shape, elementwise_affine, bias, dtype)

    def forward(self, x: Tensor) -> Tensor:
        k = len(self.normalized_shape)
        if x.ndim < k or tuple(x.shape[x.ndim - k:]) != self.normalized_shape:
            raise ValueError(f"{self!r} expects input (*, "
                             f"{', '.join(map(str, self.normalized_shape))}), got {x.shape}")
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}")


class GroupNorm(Module):
    """Group norm: the channels of (N, C, *) split into ``num_groups`` groups of
    consecutive channels, each (sample, group) normalised over its channels and
    positions, then a per-channel affine map (weight ones, bias zeros, (C,),
    with ``affine``; no bias with the keyword ``bias=False``).  Same in train and eval.
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5,
                 affine: bool = True, dtype=DEFAULT_DTYPE, *, bias: bool = True,
                 device: Any = None) -> None:
        super().__init__()
        check_cpu(device)
        if num_groups <= 0 or num_channels <= 0:
            raise ValueError(f"GroupNorm: num_groups ({num_groups}) and num_channels "
                             f"({num_channels}) must be positive")
        if num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels ({num_channels}) must be divisible by "
                             f"num_groups ({num_groups})")
        self.num_groups, self.num_channels = num_groups, num_channels
        self.eps, self.affine = eps, affine
        add_affine_parameters(self, num_channels, affine, bias, dtype)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim < 2 or x.shape[1] != self.num_channels:
            raise ValueError(f"{self!r} expects input (N, {self.num_channels}, *), got {x.shape}")
        return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.bias is not None}")


class LocalResponseNorm(Module):
    """Local response normalisation across channels (AlexNet), PyTorch's form:
    y_c = x_c / (k + alpha / size * sum of x_j^2 over the ``size`` channels
    c - size//2 .. c + (size-1)//2) ** beta.  input (N, C, *) -> same shape.
    No parameters; same in train and eval.
    """

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75,
                 k: float = 1.0) -> None:
        super().__init__()
        if not isinstance(size, (int, np.integer)) or size <= 0:
            raise ValueError(f"LocalResponseNorm: size must be a positive int, got {size!r}")
        self.size, self.alpha, self.beta, self.k = int(size), alpha, beta, k

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim < 3:
            raise ValueError(f"{self!r} expects input (N, C, *) with at least 3 dimensions, "
                             f"got {x.shape}")
        return F.local_response_norm(x, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


__all__ = ["GroupNorm", "LayerNorm", "LocalResponseNorm"]
