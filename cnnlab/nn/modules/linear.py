"""Fully connected layers and shape helpers."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from cnnlab.autograd.tensor import DEFAULT_DTYPE, Tensor
from cnnlab.nn import functional as F
from cnnlab.nn import init
from cnnlab.nn._args import check_cpu
from cnnlab.nn.functional_conv import _linear_relu
from cnnlab.nn.module import Module
from cnnlab.nn.parameter import Parameter


class Linear(Module):
    """y = x W^T + b with W (out_features, in_features), as in PyTorch."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 dtype=DEFAULT_DTYPE, *, device: Any = None) -> None:
        super().__init__()
        check_cpu(device)
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(np.empty((out_features, in_features), dtype=dtype))
        if bias:
            self.bias = Parameter(np.empty(out_features, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features) if self.in_features > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(self._checked(x), self.weight, self.bias)

    def forward_relu(self, x: Tensor) -> Tensor:
        """relu(self.forward(x)) as one node (see ``Sequential``)."""
        return _linear_relu(self._checked(x), self.weight, self.bias)

    def _checked(self, x: Tensor) -> Tensor:
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"{self!r} expects input (N, {self.in_features}), got {x.shape}")
        return x

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Flatten(Module):
    """Flatten dims start_dim..end_dim (default: all but the batch)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Identity(Module):
    def forward(self, x: Tensor) -> Tensor:
        return x


__all__ = ["Flatten", "Identity", "Linear"]
