"""Activation layers."""
from __future__ import annotations

from cnnlab.autograd.tensor import Tensor
from cnnlab.nn import functional as F
from cnnlab.nn.module import Module


class ReLU(Module):
    """max(x, 0); gradient 0 at exactly 0, as in PyTorch.  ``inplace`` is accepted
    for PyTorch's signature; the output is always a new tensor (see ``F.relu``)."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = bool(inplace)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class Sigmoid(Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.sigmoid(x)


class Tanh(Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.tanh(x)


class LeakyReLU(Module):
    """x for x > 0, negative_slope * x otherwise."""

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class ELU(Module):
    """x for x > 0, alpha (e^x - 1) otherwise."""

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = alpha

    def forward(self, x: Tensor) -> Tensor:
        return F.elu(x, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class ScaledTanh(Module):
    """LeCun's 1.7159 tanh(2x / 3) (the notes, 002); f(+-1) ~ +-1.  Not in PyTorch."""

    def forward(self, x: Tensor) -> Tensor:
        return F.scaled_tanh(x)


class Softmax(Module):
    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return F.softmax(x, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    def forward(self, x: Tensor) -> Tensor:
        return F.log_softmax(x, self.dim)


__all__ = ["ELU", "LeakyReLU", "LogSoftmax", "ReLU", "ScaledTanh", "Sigmoid", "Softmax", "Tanh"]
