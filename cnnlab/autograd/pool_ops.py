"""Autograd adapters for pooling (kernels in :mod:`cnnlab.kernels.pool` and
:mod:`cnnlab.kernels.pool_extra`)."""
from __future__ import annotations

from cnnlab.autograd.tensor import Function
from cnnlab.kernels import pool as pool_k
from cnnlab.kernels import pool_extra as extra_k


class MaxPool2d(Function):
    """``keep``, a list, receives the kernel's cache (the winners, for ``return_indices``)."""

    def forward(self, x, kernel, stride, padding, dilation, ceil_mode, keep=None):
        y, self.cache = pool_k.max_pool2d_forward(x, kernel, stride, padding, dilation, ceil_mode)
        if keep is not None:
            keep.append(self.cache)
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


class LPPool2d(Function):
    def forward(self, x, norm_type, kernel, stride, ceil_mode):
        y, self.cache = extra_k.lp_pool2d_forward(x, norm_type, kernel, stride, ceil_mode)
        return y

    def backward(self, g):
        return (extra_k.lp_pool2d_backward(g, self.cache),)


class StochasticPool2d(Function):
    """Train mode when ``uniforms`` (one draw in [0, 1) per output) is given, else eval."""

    def forward(self, x, kernel, stride, uniforms=None):
        if uniforms is None:
            y, self.cache = extra_k.stochastic_pool2d_eval_forward(x, kernel, stride)
        else:
            y, self.cache = extra_k.stochastic_pool2d_train_forward(x, kernel, stride, uniforms)
        return y

    def backward(self, g):
        return (extra_k.stochastic_pool2d_backward(g, self.cache),)


class AdaptiveAvgPool2d(Function):
    def forward(self, x, output_size):
        y, self.cache = extra_k.adaptive_avg_pool2d_forward(x, output_size)
        return y

    def backward(self, g):
        return (extra_k.adaptive_avg_pool2d_backward(g, self.cache),)


class AdaptiveMaxPool2d(Function):
    """``keep``, a list, receives the kernel's cache (the winners, for ``return_indices``)."""

    def forward(self, x, output_size, keep=None):
        y, self.cache = extra_k.adaptive_max_pool2d_forward(x, output_size)
        if keep is not None:
            keep.append(self.cache)
        return y

    def backward(self, g):
        return (extra_k.adaptive_max_pool2d_backward(g, self.cache),)


class Subsample2d(Function):
    def forward(self, x, weight, bias, kernel):
        y, self.cache = extra_k.subsample2d_forward(x, weight, bias, kernel)
        return y

    def backward(self, g):
        return extra_k.subsample2d_backward(g, self.cache)
