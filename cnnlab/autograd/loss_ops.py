"""Autograd adapters for losses (kernels in :mod:`cnnlab.kernels.loss`)."""
from __future__ import annotations

from cnnlab.autograd.tensor import Function
from cnnlab.kernels import loss as loss_k


class CrossEntropy(Function):
    def forward(self, z, target, reduction):
        self.target, self.reduction = target, reduction
        loss, self.log_p = loss_k.cross_entropy_forward(z, target, reduction)
        return loss

    def backward(self, g):
        return loss_k.cross_entropy_backward(g, self.log_p, self.target, self.reduction), None


class MSELoss(Function):
    def forward(self, y, t, reduction):
        self.y, self.t, self.reduction = y, t, reduction
        return loss_k.mse_forward(y, t, reduction)

    def backward(self, g):
        dy, dt = loss_k.mse_backward(g, self.y, self.t, self.reduction)
        return dy, dt

__all__ = ["CrossEntropy", "MSELoss"]
