"""Autograd adapters for normalisation layers (kernels in :mod:`cnnlab.kernels.norm`)."""
from __future__ import annotations

from cnnlab.autograd import relu_modes
from cnnlab.autograd.tensor import Function
from cnnlab.kernels import norm as norm_k


class BatchNorm(Function):
    def forward(self, x, gamma, beta, running_mean, running_var, training, momentum, eps):
        y, self.cache = norm_k.batch_norm_forward(
            x, running_mean, running_var, gamma, beta, training, momentum, eps)
        return y

    def backward(self, g):
        return norm_k.batch_norm_backward(g, self.cache)


class BatchNormReLU(Function):
    """relu(batch_norm(x)) as one node: the ReLU in the normalisation's last pass, its
    gradient in the backward's passes."""

    def forward(self, x, gamma, beta, running_mean, running_var, training, momentum, eps):
        self.y, self.cache = norm_k.batch_norm_forward(
            x, running_mean, running_var, gamma, beta, training, momentum, eps, relu=True)
        return self.y

    def backward(self, g):
        rule = relu_modes.mode_rule()
        if rule is None:
            return norm_k.batch_norm_backward(g, self.cache, relu_y=self.y)
        return norm_k.batch_norm_backward(rule(g, self.y), self.cache)


class LayerNorm(Function):
    def forward(self, x, gamma, beta, ndim_norm, eps):
        y, self.cache = norm_k.layer_norm_forward(x, ndim_norm, gamma, beta, eps)
        return y

    def backward(self, g):
        return norm_k.layer_norm_backward(g, self.cache)


class InstanceNorm(Function):
    def forward(self, x, gamma, beta, running_mean, running_var, use_input_stats, momentum, eps):
        y, self.cache = norm_k.instance_norm_forward(
            x, running_mean, running_var, gamma, beta, use_input_stats, momentum, eps)
        return y

    def backward(self, g):
        return norm_k.instance_norm_backward(g, self.cache)


class GroupNorm(Function):
    def forward(self, x, gamma, beta, num_groups, eps):
        y, self.cache = norm_k.group_norm_forward(x, num_groups, gamma, beta, eps)
        return y

    def backward(self, g):
        return norm_k.group_norm_backward(g, self.cache)


class LocalResponseNorm(Function):
    def forward(self, x, size, alpha, beta, k):
        y, self.cache = norm_k.local_response_norm_forward(x, size, alpha, beta, k)
        return y

    def backward(self, g):
        return (norm_k.local_response_norm_backward(g, self.cache),)


__all__ = ["BatchNorm", "BatchNormReLU", "GroupNorm", "InstanceNorm", "LayerNorm", "LocalResponseNorm"]
