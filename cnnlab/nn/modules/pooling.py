"""Pooling layers."""
from __future__ import annotations

from cnnlab.autograd.tensor import Tensor
from cnnlab.nn import functional as F
from cnnlab.nn.module import Module


class _Pool2d(Module):
    def __init__(self, kernel_size: F.IntPair, stride: F.IntPair | None = None,
                 padding: F.IntPair = 0) -> None:
        super().__init__()
        self.kernel_size = F._pair(kernel_size, "kernel_size")
        self.stride = self.kernel_size if stride is None else F._pair(stride, "stride")
        self.padding = F._pair(padding, "padding")

    def _check(self, x: Tensor) -> None:
        if x.ndim not in (3, 4):
            raise ValueError(f"{self!r} expects input (N, C, H, W), got {x.shape}")

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(_Pool2d):
    """Max over KH x KW windows (stride defaults to the kernel size).
    Gradient goes to the first maximum of each window on ties."""

    def forward(self, x: Tensor) -> Tensor:
        self._check(x)
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding)


class AvgPool2d(_Pool2d):
    """Mean over KH x KW windows (stride defaults to the kernel size)."""

    def __init__(self, kernel_size: F.IntPair, stride: F.IntPair | None = None,
                 padding: F.IntPair = 0, count_include_pad: bool = True) -> None:
        super().__init__(kernel_size, stride, padding)
        self.count_include_pad = count_include_pad

    def forward(self, x: Tensor) -> Tensor:
        self._check(x)
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.count_include_pad)
