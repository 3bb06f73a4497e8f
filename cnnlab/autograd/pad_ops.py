"""Autograd adapter for padding (kernel in :mod:`cnnlab.kernels.pad`)."""
from __future__ import annotations

from cnnlab.autograd.tensor import Function
from cnnlab.kernels import pad as pad_k


class Pad(Function):
    def forward(self, x, widths, mode, value):
        y, self.cache = pad_k.pad_forward(x, widths, mode, value)
        return y

    def backward(self, g):
        return (pad_k.pad_backward(g, self.cache),)
