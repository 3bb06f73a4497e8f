"""Autograd adapters over the NumPy kernels in :mod:`cnnlab.kernels`.

Each class is a thin :class:`~cnnlab.autograd.tensor.Function`: ``forward``
calls the kernel's forward and keeps its cache, ``backward`` calls the
kernel's backward.  Argument checking happens one level up, in
:mod:`cnnlab.nn.functional`.
"""
from __future__ import annotations

from cnnlab.autograd.tensor import Function
from cnnlab.kernels import activation as act
from cnnlab.kernels import conv as conv_k
from cnnlab.kernels import linear as linear_k
from cnnlab.kernels import loss as loss_k
from cnnlab.kernels import norm as norm_k
from cnnlab.kernels import pool as pool_k


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


class ReLU(Function):
    def forward(self, x):
        self.y = act.relu_forward(x)
        return self.y

    def backward(self, g):
        return (act.relu_backward(g, self.y),)


class Sigmoid(Function):
    def forward(self, x):
        self.y = act.sigmoid_forward(x)
        return self.y

    def backward(self, g):
        return (act.sigmoid_backward(g, self.y),)


class Tanh(Function):
    def forward(self, x):
        self.y = act.tanh_forward(x)
        return self.y

    def backward(self, g):
        return (act.tanh_backward(g, self.y),)


class Softmax(Function):
    def forward(self, x, axis):
        self.axis = axis
        self.y = act.softmax_forward(x, axis)
        return self.y

    def backward(self, g):
        return (act.softmax_backward(g, self.y, self.axis),)


class LogSoftmax(Function):
    def forward(self, x, axis):
        self.axis = axis
        self.y = act.log_softmax_forward(x, axis)
        return self.y

    def backward(self, g):
        return (act.log_softmax_backward(g, self.y, self.axis),)


class Dropout(Function):
    """Multiply by a fixed mask already scaled by 1 / (1 - p)."""

    def forward(self, x, mask):
        self.mask = mask
        return x * mask

    def backward(self, g):
        return (g * self.mask,)


class BatchNorm(Function):
    def forward(self, x, gamma, beta, running_mean, running_var, training, momentum, eps):
        y, self.cache = norm_k.batch_norm_forward(
            x, running_mean, running_var, gamma, beta, training, momentum, eps)
        return y

    def backward(self, g):
        dx, dgamma, dbeta = norm_k.batch_norm_backward(g, self.cache)
        return dx, dgamma, dbeta


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
