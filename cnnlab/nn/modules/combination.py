"""Bouvrie's learned combinations of feature maps ("Notes on Convolutional Neural
Networks", eqs. (15)-(21)): each output map a convex combination of filtered inputs."""
from __future__ import annotations

import numpy as np

from cnnlab.autograd.tensor import DEFAULT_DTYPE, Tensor
from cnnlab.nn import functional as F
from cnnlab.nn import init
from cnnlab.nn._args import as_tensor, check_padding, check_sizes, errors_naming
from cnnlab.nn.functional_conv import _learned_combination
from cnnlab.nn.module import Module
from cnnlab.nn.modules.conv import _add_bias, _conv_repr, _uniform_fan_in
from cnnlab.nn.parameter import Parameter


class LearnedCombination(Module):
    """Bouvrie's learned combination of feature maps (the notes' seed 002, eqs. (15)-(21)):

        u_j = sum_i alpha_ij (x_i * k_i) + b_j,    alpha_.j = softmax(c_.j)

    Each input map i has one kernel k_i shared by all outputs (weight
    (in_channels, 1, KH, KW)); output j mixes the filtered maps with the convex
    weights alpha_.j (c: (in_channels, out_channels)); bias (out_channels,).  The
    non-linearity f of x_j = f(u_j) is the next layer.  Init: kernels and bias
    U(-1/sqrt(KH KW), 1/sqrt(KH KW)) (PyTorch's depthwise-conv rule), c ~ U(-1, 1)
    so the outputs start different.  :meth:`alpha` gives softmax(c);
    :func:`combination_l1_penalty` the notes' sparsity penalty.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: F.IntPair,
                 stride: F.IntPair = 1, padding: F.IntPair | str = 0, dilation: F.IntPair = 1,
                 bias: bool = True, dtype=DEFAULT_DTYPE) -> None:
        super().__init__()
        if in_channels < 1 or out_channels < 1:
            raise ValueError(f"LearnedCombination: in_channels and out_channels must be >= 1, "
                             f"got {in_channels} and {out_channels}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = F.pair(kernel_size, "kernel_size")
        self.stride = F.pair(stride, "stride")
        self.padding = padding if isinstance(padding, str) else F.pair(padding, "padding")
        self.dilation = F.pair(dilation, "dilation")
        check_padding("LearnedCombination", self.padding, 2)
        check_sizes("LearnedCombination", 1, kernel_size=self.kernel_size, stride=self.stride,
                    dilation=self.dilation)
        self.weight = Parameter(np.empty((in_channels, 1, *self.kernel_size), dtype=dtype))
        self.c = Parameter(np.empty((in_channels, out_channels), dtype=dtype))
        _add_bias(self, out_channels, bias, dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _uniform_fan_in(self.weight, self.bias, fan_in=self.kernel_size[0] * self.kernel_size[1])
        init.uniform_(self.c, -1.0, 1.0)

    def alpha(self) -> Tensor:
        """alpha = softmax(c) over the inputs: (in_channels, out_channels), columns sum to 1."""
        return F.combination_weights(self.c)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"{self!r} expects input (N, {self.in_channels}, H, W), got {x.shape}")
        with errors_naming(self):
            return _learned_combination(as_tensor(x), self.weight, self.c, self.bias, self.stride,
                                        self.padding, self.dilation)

    def extra_repr(self) -> str:
        return _conv_repr(f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                          f"stride={self.stride}", self.bias, padding=(self.padding, (0, 0)),
                          dilation=(self.dilation, (1, 1)))


def combination_l1_penalty(layer: LearnedCombination | Tensor, lam: float) -> Tensor:
    """lambda * sum_ij |alpha_ij| of a :class:`LearnedCombination` (Bouvrie's eq. (18));
    see :func:`cnnlab.nn.functional.combination_l1_penalty`."""
    return F.combination_l1_penalty(layer, lam)


__all__ = ["LearnedCombination", "combination_l1_penalty"]
