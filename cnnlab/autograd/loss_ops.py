"""Autograd adapters for losses and the RBF output layer (kernels in :mod:`cnnlab.kernels.loss`).

Targets that are class indices, class weights and ``pos_weight`` are passed as
keyword arrays: they are constants (torch does not differentiate them either).
Float targets of the regression and binary losses are tensor inputs and get
gradients, as in torch.
"""
from __future__ import annotations

from cnnlab.autograd.tensor import Function
from cnnlab.kernels import loss as loss_k


class CrossEntropy(Function):
    def forward(self, z, target, weight=None, ignore_index=-100, reduction="mean",
                label_smoothing=0.0):
        loss, self.cache = loss_k.cross_entropy_forward(
            z, target, weight, ignore_index, reduction, label_smoothing)
        return loss

    def backward(self, g):
        return (loss_k.cross_entropy_backward(g, self.cache),)


class NLLLoss(Function):
    def forward(self, log_p, target, weight=None, ignore_index=-100, reduction="mean"):
        loss, self.cache = loss_k.nll_loss_forward(log_p, target, weight, ignore_index, reduction)
        return loss

    def backward(self, g):
        return (loss_k.nll_loss_backward(g, self.cache),)


class BinaryCrossEntropy(Function):
    def forward(self, x, y, weight=None, reduction="mean"):
        loss, self.cache = loss_k.binary_cross_entropy_forward(x, y, weight, reduction)
        return loss

    def backward(self, g):
        return loss_k.binary_cross_entropy_backward(g, self.cache)


class BinaryCrossEntropyWithLogits(Function):
    def forward(self, x, y, weight=None, pos_weight=None, reduction="mean"):
        loss, self.cache = loss_k.binary_cross_entropy_with_logits_forward(
            x, y, weight, pos_weight, reduction)
        return loss

    def backward(self, g):
        return loss_k.binary_cross_entropy_with_logits_backward(g, self.cache)


class MultiMarginLoss(Function):
    def forward(self, x, target, p=1, margin=1.0, weight=None, reduction="mean"):
        loss, self.cache = loss_k.multi_margin_loss_forward(x, target, p, margin, weight, reduction)
        return loss

    def backward(self, g):
        return (loss_k.multi_margin_loss_backward(g, self.cache),)


class MSELoss(Function):
    def forward(self, y, t, reduction):
        self.y, self.t, self.reduction = y, t, reduction
        return loss_k.mse_forward(y, t, reduction)

    def backward(self, g):
        dy, dt = loss_k.mse_backward(g, self.y, self.t, self.reduction)
        return dy, dt


class SquaredError(Function):
    def forward(self, y, t):
        self.y, self.t = y, t
        return loss_k.squared_error_forward(y, t)

    def backward(self, g):
        return loss_k.squared_error_backward(g, self.y, self.t)


class RBFOutput(Function):
    def forward(self, x, w):
        self.x, self.w = x, w
        return loss_k.rbf_output_forward(x, w)

    def backward(self, g):
        return loss_k.rbf_output_backward(g, self.x, self.w)


__all__ = ["BinaryCrossEntropy", "BinaryCrossEntropyWithLogits", "CrossEntropy", "MSELoss",
           "MultiMarginLoss", "NLLLoss", "RBFOutput", "SquaredError"]
