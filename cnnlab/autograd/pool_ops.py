"""Autograd adapters for pooling (kernels in :mod:`cnnlab.kernels.pool`)."""
from __future__ import annotations

from cnnlab.autograd.tensor import Function
from cnnlab.kernels import pool as pool_k


class MaxPool2d(Function):
    def forward(self, x, kernel, stride, padding, dilation, ceil_mode):
        y, self.cache = pool_k.max_pool2d_forward(x, kernel, stride, padding, dilation, ceil_mode)
        return y

    def backward(self, g):
        return (pool_k.max_pool2d_backward(g, self.cache),)


class AvgPool2d(Function):
    def forward(self, x, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override):
        y, self.cache = pool_k.avg_pool2d_forward(x, kernel, stride, padding, ceil_mode,
                                                  count_include_pad, divisor_override)
        return y

    def backward(self, g):
        return (pool_k.avg_pool2d_backward(g, self.cache),)

__all__ = ["MaxPool2d", "AvgPool2d"]
