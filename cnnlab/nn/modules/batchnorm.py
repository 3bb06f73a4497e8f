"""Batch normalisation layers (the notes, 003)."""
from __future__ import annotations

import numpy as np

from cnnlab.autograd.tensor import DEFAULT_DTYPE, Tensor
from cnnlab.nn import functional as F
from cnnlab.nn.module import Module
from cnnlab.nn.parameter import Parameter


class _BatchNorm(Module):
    _expected_ndim: tuple[int, ...] = ()
    _shape_text = ""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True,
                 dtype=DEFAULT_DTYPE) -> None:
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self.weight = Parameter(np.ones(num_features, dtype=dtype))
            self.bias = Parameter(np.zeros(num_features, dtype=dtype))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, dtype=dtype))
            self.register_buffer("running_var", np.ones(num_features, dtype=dtype))
            self.register_buffer("num_batches_tracked", np.zeros((), dtype=np.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim not in self._expected_ndim or x.shape[1] != self.num_features:
            raise ValueError(
                f"{self!r} expects input {self._shape_text.format(C=self.num_features)}, "
                f"got {x.shape}")
        use_batch_stats = self.training or not self.track_running_stats
        updating = self.training and self.track_running_stats
        momentum = self.momentum
        if updating and momentum is None:   # cumulative moving average, as in PyTorch
            momentum = 1.0 / (int(self.num_batches_tracked) + 1)
        y = F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                         training=use_batch_stats, momentum=momentum or 0.0, eps=self.eps)
        if updating:
            self.num_batches_tracked[...] += 1
        return y

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch norm over (N, C) or (N, C, L)."""
    _expected_ndim = (2, 3)
    _shape_text = "(N, {C}) or (N, {C}, L)"


class BatchNorm2d(_BatchNorm):
    """Batch norm per channel over (N, C, H, W)."""
    _expected_ndim = (4,)
    _shape_text = "(N, {C}, H, W)"


__all__ = ["BatchNorm1d", "BatchNorm2d"]
