"""Autograd adapters for convolution and fully connected layers (kernels in
:mod:`cnnlab.kernels.conv` and :mod:`cnnlab.kernels.linear`)."""
from __future__ import annotations

from cnnlab.autograd.tensor import Function
from cnnlab.kernels import conv as conv_k
from cnnlab.kernels import linear as linear_k


class Conv2d(Function):
    def forward(self, x, w, b, stride, padding, dilation, groups):
        y, self.cache = conv_k.conv2d_forward(x, w, b, stride, padding, dilation, groups)
        return y

    def backward(self, g):
        dx, dw, db = conv_k.conv2d_backward(
            g, self.cache, need_dx=self.needs_input_grad[0], need_dw=self.needs_input_grad[1])
        return dx, dw, db


class Linear(Function):
    def forward(self, x, w, b):
        self.x, self.w, self.has_bias = x, w, b is not None
        return linear_k.linear_forward(x, w, b)

    def backward(self, g):
        return linear_k.linear_backward(
            g, self.x, self.w, need_dx=self.needs_input_grad[0],
            need_dw=self.needs_input_grad[1], has_bias=self.has_bias)

__all__ = ["Conv2d", "Linear"]
