"""Batch and instance normalisation layers (the notes, 003)."""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from cnnlab.autograd.tensor import DEFAULT_DTYPE, Tensor
from cnnlab.nn import functional as F
from cnnlab.nn._args import check_cpu
from cnnlab.nn.functional_norm import _batch_norm
from cnnlab.nn.module import Module
from cnnlab.nn.parameter import Parameter


def add_affine_parameters(layer: Module, shape: int | tuple[int, ...], affine: bool, bias: bool,
                          dtype) -> None:
    """Register a normalisation layer's ``weight`` (ones) and ``bias`` (zeros) of
    ``shape``; None for both without ``affine``, for ``bias`` alone without ``bias``."""
    layer.register_parameter("weight", Parameter(np.ones(shape, dtype=dtype)) if affine else None)
    layer.register_parameter("bias", Parameter(np.zeros(shape, dtype=dtype))
                             if affine and bias else None)


class _BatchNorm(Module):
    """Shared by the batch and instance norms: weight (ones) and bias (zeros) of
    shape (C,) when ``affine`` (no bias with the keyword ``bias=False``, as in
    PyTorch 2.x), running_mean / running_var / num_batches_tracked buffers when
    ``track_running_stats``."""
    _expected_ndim: tuple[int, ...] = ()
    _shape_text = ""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True,
                 dtype=DEFAULT_DTYPE, *, bias: bool = True, device: Any = None) -> None:
        super().__init__()
        check_cpu(device)
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        add_affine_parameters(self, num_features, affine, bias, dtype)
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, dtype=dtype))
            self.register_buffer("running_var", np.ones(num_features, dtype=dtype))
            self.register_buffer("num_batches_tracked", np.zeros((), dtype=np.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def forward(self, x: Tensor) -> Tensor:
        return self._forward(x, relu=False)

    def _forward(self, x: Tensor, relu: bool) -> Tensor:
        if x.ndim not in self._expected_ndim or x.shape[1] != self.num_features:
            raise ValueError(
                f"{self!r} expects input {self._shape_text.format(C=self.num_features)}, "
                f"got {x.shape}")
        use_batch_stats = self.training or not self.track_running_stats
        updating = self.training and self.track_running_stats
        momentum = self.momentum
        if updating and momentum is None:   # cumulative moving average, as in PyTorch
            momentum = 1.0 / (int(self.num_batches_tracked) + 1)
        y = _batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                        use_batch_stats, momentum or 0.0, self.eps, relu)
        if updating:
            self.num_batches_tracked[...] += 1
        return y

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.bias is not None}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch norm over (N, C) or (N, C, L)."""
    _expected_ndim = (2, 3)
    _shape_text = "(N, {C}) or (N, {C}, L)"

    def forward_relu(self, x: Tensor) -> Tensor:
        """relu(self.forward(x)) as one node (see ``Sequential``)."""
        return self._forward(x, relu=True)


class BatchNorm2d(_BatchNorm):
    """Batch norm per channel over (N, C, H, W)."""
    _expected_ndim = (4,)
    _shape_text = "(N, {C}, H, W)"

    def forward_relu(self, x: Tensor) -> Tensor:
        """relu(self.forward(x)) as one node (see ``Sequential``)."""
        return self._forward(x, relu=True)


class InstanceNorm2d(_BatchNorm):
    """Instance norm (the notes, 003): each (sample, channel) of (N, C, H, W), or
    unbatched (C, H, W), normalised over its H x W positions:
        y = (x - E[x]) / sqrt(Var[x] + eps) * weight + bias   (biased variance)

    PyTorch's defaults: ``affine=False`` (weight ones and bias zeros (C,) when
    True; no bias with ``bias=False``) and ``track_running_stats=False``.  When tracking, training updates
    running_mean / running_var with the batch average of the per-instance
    statistics (unbiased variance) and eval normalises with them; without
    tracking, eval also uses the input's own statistics.  As in PyTorch,
    ``num_batches_tracked`` is registered but not advanced, and momentum=None
    means no update.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = False, track_running_stats: bool = False,
                 dtype=DEFAULT_DTYPE, *, bias: bool = True, device: Any = None) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, dtype,
                         bias=bias, device=device)

    def forward(self, x: Tensor) -> Tensor:
        c = self.num_features
        msg = f"{self!r} expects input (N, {c}, H, W) or ({c}, H, W), got {x.shape}"
        if x.ndim not in (3, 4):
            raise ValueError(msg)
        if x.shape[x.ndim - 3] != c:
            if self.affine or self.track_running_stats:
                raise ValueError(msg)
            warnings.warn(f"{msg}; without affine parameters or running stats num_features "
                          "is unused, so it is normalised anyway (as PyTorch does)",
                          stacklevel=2)
        unbatched = x.ndim == 3
        if unbatched:
            x = x.reshape(1, *x.shape)
        use_input_stats = self.training or not self.track_running_stats
        y = F.instance_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            use_input_stats=use_input_stats,
                            momentum=self.momentum if self.momentum is not None else 0.0,
                            eps=self.eps)
        return y.reshape(*y.shape[1:]) if unbatched else y


__all__ = ["BatchNorm1d", "BatchNorm2d", "InstanceNorm2d"]
