"""Autograd adapters for activations and dropout (kernels in
:mod:`cnnlab.kernels.activation`)."""
from __future__ import annotations

from cnnlab.autograd import relu_modes
from cnnlab.autograd.tensor import Function
from cnnlab.kernels import activation as act


class ReLU(Function):
    def forward(self, x):
        self.y = act.relu_forward(x)
        return self.y

    def backward(self, g):
        return (relu_modes.relu_grad(g, self.y),)   # the mode: guided backprop, DeconvNet


class AddReLU(Function):
    """relu(a + b) as one node, for a and b of one shape (a residual block's output)."""

    def forward(self, a, b):
        self.y = act.add_relu_forward(a, b)
        return self.y

    def backward(self, g):
        d = relu_modes.relu_grad(g, self.y)
        return d, d


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


class LeakyReLU(Function):
    def forward(self, x, negative_slope):
        self.x, self.slope = x, negative_slope
        return act.leaky_relu_forward(x, negative_slope)

    def backward(self, g):
        return (act.leaky_relu_backward(g, self.x, self.slope),)


class ELU(Function):
    def forward(self, x, alpha):
        self.x, self.alpha = x, alpha
        return act.elu_forward(x, alpha)

    def backward(self, g):
        return (act.elu_backward(g, self.x, self.alpha),)


class ScaledTanh(Function):
    def forward(self, x):
        self.y = act.scaled_tanh_forward(x)
        return self.y

    def backward(self, g):
        return (act.scaled_tanh_backward(g, self.y),)


class Dropout(Function):
    """Multiply by a fixed mask already scaled by 1 / (1 - p).  The mask may be
    smaller than x and broadcast against it (one value per channel for
    dropout2d); the gradient then has x's shape because g does."""

    def forward(self, x, mask):
        self.mask = mask
        return x * mask

    def backward(self, g):
        return (g * self.mask,)

__all__ = ["AddReLU", "ReLU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax", "Dropout", "LeakyReLU", "ELU",
           "ScaledTanh"]
