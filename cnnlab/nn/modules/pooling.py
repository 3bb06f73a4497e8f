"""Pooling layers."""
from __future__ import annotations

from cnnlab.autograd.tensor import Tensor
from cnnlab.nn import functional as F
from cnnlab.nn.module import Module


class _Pool2d(Module):
    def __init__(self, kernel_size: F.IntPair, stride: F.IntPair | None = None,
                 padding: F.IntPair = 0, ceil_mode: bool = False) -> None:
        super().__init__()
        self.kernel_size = F.pair(kernel_size, "kernel_size")
        self.stride = self.kernel_size if stride is None else F.pair(stride, "stride")
        self.padding = F.pair(padding, "padding")
        self.ceil_mode = ceil_mode

    def _call(self, fn, x: Tensor, *args, **kwargs):
        """Run the functional op; shape errors are re-raised naming this layer."""
        if x.ndim not in (3, 4):
            raise ValueError(f"{self!r} expects input (N, C, H, W), got {x.shape}")
        try:
            return fn(x, *args, **kwargs)
        except ValueError as e:
            raise ValueError(f"{self!r}: {e}") from None

    def extra_repr(self) -> str:
        s = f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
        return s + (", ceil_mode=True" if self.ceil_mode else "")


class MaxPool2d(_Pool2d):
    """Max over KH x KW windows (stride defaults to the kernel size).
    Gradient goes to the first maximum of each window on ties."""

    def __init__(self, kernel_size: F.IntPair, stride: F.IntPair | None = None,
                 padding: F.IntPair = 0, dilation: F.IntPair = 1, return_indices: bool = False,
                 ceil_mode: bool = False) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode)
        self.dilation = F.pair(dilation, "dilation")
        self.return_indices = return_indices

    def forward(self, x: Tensor):
        return self._call(F.max_pool2d, x, self.kernel_size, self.stride, self.padding,
                          self.dilation, self.ceil_mode, self.return_indices)


class AvgPool2d(_Pool2d):
    """Mean over KH x KW windows (stride defaults to the kernel size)."""

    def __init__(self, kernel_size: F.IntPair, stride: F.IntPair | None = None,
                 padding: F.IntPair = 0, ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override: int | None = None) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode)
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override

    def forward(self, x: Tensor) -> Tensor:
        return self._call(F.avg_pool2d, x, self.kernel_size, self.stride, self.padding,
                          self.ceil_mode, self.count_include_pad, self.divisor_override)


__all__ = ["AvgPool2d", "MaxPool2d"]
