"""Autograd adapters for normalisation layers (kernels in :mod:`cnnlab.kernels.norm`)."""
from __future__ import annotations

from cnnlab.autograd.tensor import Function
from cnnlab.kernels import norm as norm_k


class BatchNorm(Function):
    def forward(self, x, gamma, beta, running_mean, running_var, training, momentum, eps):
        y, self.cache = norm_k.batch_norm_forward(
            x, running_mean, running_var, gamma, beta, training, momentum, eps)
        return y

    def backward(self, g):
        dx, dgamma, dbeta = norm_k.batch_norm_backward(g, self.cache)
        return dx, dgamma, dbeta

__all__ = ["BatchNorm"]
