"""Autograd adapters for pooling (kernels in :mod:`cnnlab.kernels.pool`,
:mod:`cnnlab.kernels.pool_extra` and :mod:`cnnlab.kernels.pool_weighted`)."""
from __future__ import annotations

from cnnlab.autograd.tensor import Function, Tensor
from cnnlab.kernels import pool as pool_k
from cnnlab.kernels import pool_extra as extra_k
from cnnlab.kernels import pool_weighted as weighted_k


class _KernelRun(Function):
    """A node whose forward kernel the caller has already run: ``forward`` takes the
    kernel's output and cache and keeps the cache for ``backward``.  The max pools use
    it so that the caller keeps the cache too: its winners are ``return_indices``."""

    def forward(self, x, y, cache):
        self.cache = cache
        return y


class MaxPool2d(_KernelRun):
    def backward(self, g):
        return (pool_k.max_pool2d_backward(g, self.cache),)


def max_pool2d(x: Tensor, kernel, stride, padding, dilation,
               ceil_mode) -> tuple[Tensor, pool_k.MaxPoolCache]:
    """Max pooling of x (N, C, H, W) as a graph node, and the kernel's cache (its winners)."""
    y, cache = pool_k.max_pool2d_forward(x.data, kernel, stride, padding, dilation, ceil_mode)
    return MaxPool2d.apply(x, y=y, cache=cache), cache


class AvgPool2d(Function):
    def forward(self, x, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override):
        y, self.cache = pool_k.avg_pool2d_forward(x, kernel, stride, padding, ceil_mode,
                                                  count_include_pad, divisor_override)
        return y

    def backward(self, g):
        return (pool_k.avg_pool2d_backward(g, self.cache),)


class DistanceWeightedPool2d(Function):
    def forward(self, x, weights, stride, padding, count_include_pad):
        y, self.cache = weighted_k.weighted_pool2d_forward(x, weights, stride, padding,
                                                           count_include_pad)
        return y

    def backward(self, g):
        return (weighted_k.weighted_pool2d_backward(g, self.cache),)


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


class AdaptiveMaxPool2d(_KernelRun):
    def backward(self, g):
        return (extra_k.adaptive_max_pool2d_backward(g, self.cache),)


def adaptive_max_pool2d(x: Tensor, output_size) -> tuple[Tensor, extra_k.AdaptiveMaxPoolCache]:
    """Adaptive max pooling of x (N, C, H, W) as a graph node, and the kernel's cache
    (its ``indices`` are the winners)."""
    y, cache = extra_k.adaptive_max_pool2d_forward(x.data, output_size)
    return AdaptiveMaxPool2d.apply(x, y=y, cache=cache), cache


class Subsample2d(Function):
    def forward(self, x, weight, bias, kernel):
        y, self.cache = extra_k.subsample2d_forward(x, weight, bias, kernel)
        return y

    def backward(self, g):
        return extra_k.subsample2d_backward(g, self.cache)
