"""Autograd adapters for convolution and fully connected layers (kernels in
:mod:`cnnlab.kernels.conv` and :mod:`cnnlab.kernels.linear`)."""
from __future__ import annotations

from cnnlab.autograd import relu_modes
from cnnlab.autograd.tensor import Function
from cnnlab.kernels import activation as act
from cnnlab.kernels import combination as comb_k
from cnnlab.kernels import conv as conv_k
from cnnlab.kernels import conv_transpose as convt_k
from cnnlab.kernels import linear as linear_k
from cnnlab.kernels import local as local_k


class Conv2d(Function):
    def forward(self, x, w, b, stride, padding, dilation, groups):
        y, self.cache = conv_k.conv2d_forward(x, w, b, stride, padding, dilation, groups)
        return y

    def backward(self, g):
        dx, dw, db = conv_k.conv2d_backward(
            g, self.cache, need_dx=self.needs_input_grad[0], need_dw=self.needs_input_grad[1])
        return dx, dw, db


class Conv2dReLU(Function):
    """relu(conv2d(x, w, b)) as one node: the ReLU is taken in the convolution's
    output pass and its gradient in the backward's, batch chunk by chunk."""

    def forward(self, x, w, b, stride, padding, dilation, groups):
        y, self.cache = conv_k.conv2d_forward(x, w, b, stride, padding, dilation, groups,
                                              relu=True)
        self.y = y
        return y

    def backward(self, g):
        return conv_k.conv2d_backward(
            g, self.cache, need_dx=self.needs_input_grad[0], need_dw=self.needs_input_grad[1],
            relu_y=self.y, relu_grad=relu_modes.mode_rule())


class Linear(Function):
    def forward(self, x, w, b):
        self.x, self.w, self.has_bias = x, w, b is not None
        return linear_k.linear_forward(x, w, b)

    def backward(self, g):
        return linear_k.linear_backward(
            g, self.x, self.w, need_dx=self.needs_input_grad[0],
            need_dw=self.needs_input_grad[1], has_bias=self.has_bias)


class LinearReLU(Function):
    """relu(x W^T + b) as one node."""

    def forward(self, x, w, b):
        self.x, self.w, self.has_bias = x, w, b is not None
        self.y = act.relu_inplace(linear_k.linear_forward(x, w, b))
        return self.y

    def backward(self, g):
        return linear_k.linear_backward(
            relu_modes.relu_grad(g, self.y), self.x, self.w,
            need_dx=self.needs_input_grad[0],
            need_dw=self.needs_input_grad[1], has_bias=self.has_bias)


class ConvTranspose2d(Function):
    def forward(self, x, w, b, stride, padding, output_padding, dilation, groups):
        y, self.cache = convt_k.conv_transpose2d_forward(x, w, b, stride, padding, output_padding,
                                                         dilation, groups)
        return y

    def backward(self, g):
        return convt_k.conv_transpose2d_backward(
            g, self.cache, need_dx=self.needs_input_grad[0], need_dw=self.needs_input_grad[1])


class Local2d(Function):
    def forward(self, x, w, b, stride, padding, dilation):
        y, self.cache = local_k.local2d_forward(x, w, b, stride, padding, dilation)
        return y

    def backward(self, g):
        return local_k.local2d_backward(
            g, self.cache, need_dx=self.needs_input_grad[0], need_dw=self.needs_input_grad[1])


class LearnedCombination(Function):
    def forward(self, x, k, c, b, stride, padding, dilation):
        y, self.cache = comb_k.learned_combination_forward(x, k, c, b, stride, padding, dilation)
        return y

    def backward(self, g):
        n = self.needs_input_grad
        return comb_k.learned_combination_backward(g, self.cache, need_dx=n[0], need_dk=n[1],
                                                   need_dc=n[2])


class CombinationWeights(Function):
    """alpha = softmax(c) over axis 0 (Bouvrie's eq. (15) in backward)."""

    def forward(self, c):
        self.alpha = comb_k.softmax_columns(c)
        return self.alpha

    def backward(self, g):
        return (comb_k.softmax_columns_backward(g, self.alpha),)


__all__ = ["CombinationWeights", "Conv2d", "Conv2dReLU", "ConvTranspose2d", "LearnedCombination",
           "Linear", "LinearReLU", "Local2d"]
