"""Locally connected (unshared) convolution layers: a separate filter bank at every
output position.  PyTorch has no such layer (pytorch#499)."""
from __future__ import annotations

import numpy as np

from cnnlab.autograd.tensor import DEFAULT_DTYPE, Tensor
from cnnlab.kernels.local import local2d_num_parameters
from cnnlab.nn import functional as F
from cnnlab.nn._args import as_tensor, check_padding, check_sizes, shown, single
from cnnlab.nn.functional_conv import Sizes, _locally_connected, _resolve_padding
from cnnlab.nn.module import Module
from cnnlab.nn.modules.conv import _add_bias, _conv_repr, _uniform_fan_in
from cnnlab.nn.parameter import Parameter


def _output_size(name: str, in_channels: int, out_channels: int, input_size: Sizes,
                 kernel: Sizes, stride: Sizes, padding: Sizes | str, dilation: Sizes) -> Sizes:
    """The output positions of a locally connected layer (one entry per spatial axis),
    checking its settings; the layers' filter banks and the parameter count need it."""
    if in_channels < 1 or out_channels < 1:
        raise ValueError(f"{name}: in_channels and out_channels must be >= 1, got "
                         f"{in_channels} and {out_channels}")
    check_sizes(name, 1, input_size=input_size, kernel_size=kernel, stride=stride,
                dilation=dilation)
    check_padding(name, padding, len(kernel))
    pad = _resolve_padding(padding, kernel, stride, dilation, input_size)
    out = []
    for a, size in enumerate(input_size):
        padded = size + pad[2 * a] + pad[2 * a + 1]
        eff = dilation[a] * (kernel[a] - 1) + 1
        if padded < eff:
            raise ValueError(f"{name}: input_size {shown(input_size)} padded by {pad} is smaller "
                             f"than the effective kernel size {eff}")
        out.append((padded - eff) // stride[a] + 1)
    return tuple(out)


class LocallyConnected2d(Module):
    """Locally connected (unshared) convolution: a separate filter bank at every output
    position (the notes' face example, 001/003; Deep Learning 9.5, 004).  PyTorch has
    no such layer.

    ``input_size`` (H, W) is fixed, since the number of filters depends on it.
    weight (OH, OW, out_channels, in_channels, KH, KW), bias (out_channels, OH, OW),
    both U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = in_channels * KH * KW;
    y[n, o, p, q] = sum w[p, q, o, c, i, j] xpad[n, c, p S + i d, q S + j d] + b[o, p, q].
    Parameters: OH * OW * out_channels * (in_channels * KH * KW + 1), see
    :meth:`parameter_count` (AlexNet conv1 unshared: 105,705,600).
    """

    def __init__(self, in_channels: int, out_channels: int, input_size: F.IntPair,
                 kernel_size: F.IntPair, stride: F.IntPair = 1, padding: F.IntPair | str = 0,
                 dilation: F.IntPair = 1, bias: bool = True, dtype=DEFAULT_DTYPE) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.input_size = F.pair(input_size, "input_size")
        self.kernel_size = F.pair(kernel_size, "kernel_size")
        self.stride = F.pair(stride, "stride")
        self.padding = padding if isinstance(padding, str) else F.pair(padding, "padding")
        self.dilation = F.pair(dilation, "dilation")
        OH, OW = _output_size(type(self).__name__, in_channels, out_channels, self.input_size,
                              self.kernel_size, self.stride, self.padding, self.dilation)
        self.output_size = (OH, OW)
        self.weight = Parameter(np.empty((OH, OW, out_channels, in_channels,
                                          *self.kernel_size), dtype=dtype))
        _add_bias(self, (out_channels, OH, OW), bias, dtype)
        self.reset_parameters()

    @classmethod
    def parameter_count(cls, in_channels: int, out_channels: int, input_size: F.IntPair,
                        kernel_size: F.IntPair, stride: F.IntPair = 1,
                        padding: F.IntPair | str = 0, dilation: F.IntPair = 1,
                        bias: bool = True) -> int:
        """The number of parameters the layer would have, without allocating it."""
        k = F.pair(kernel_size, "kernel_size")
        out = _output_size(cls.__name__, in_channels, out_channels,
                           F.pair(input_size, "input_size"), k, F.pair(stride, "stride"),
                           padding if isinstance(padding, str) else F.pair(padding, "padding"),
                           F.pair(dilation, "dilation"))
        return local2d_num_parameters(in_channels, out_channels, out, k, bias)

    def reset_parameters(self) -> None:
        fan_in = self.in_channels * self.kernel_size[0] * self.kernel_size[1]
        _uniform_fan_in(self.weight, self.bias, fan_in=fan_in)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels or tuple(x.shape[2:]) != self.input_size:
            raise ValueError(f"{self!r} expects input (N, {self.in_channels}, "
                             f"{self.input_size[0]}, {self.input_size[1]}), got {x.shape}")
        return _locally_connected(as_tensor(x), self.weight, self.bias, self.stride,
                                  self.padding, self.dilation, "locally_connected2d")

    def extra_repr(self) -> str:
        return _conv_repr(f"{self.in_channels}, {self.out_channels}, input_size={self.input_size}, "
                          f"kernel_size={self.kernel_size}, stride={self.stride}", self.bias,
                          padding=(self.padding, (0, 0)), dilation=(self.dilation, (1, 1)))


class LocallyConnected1d(Module):
    """Unshared 1-D convolution over (N, C_in, L) with fixed ``input_size`` L:
    weight (OL, out_channels, in_channels, K), bias (out_channels, OL); the 2-D
    layer with H = 1 (see :class:`LocallyConnected2d`)."""

    def __init__(self, in_channels: int, out_channels: int, input_size: int, kernel_size: int,
                 stride: int = 1, padding: int | str = 0, dilation: int = 1, bias: bool = True,
                 dtype=DEFAULT_DTYPE) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        name = type(self).__name__
        self.input_size = single(input_size, "input_size", name)
        self.kernel_size = single(kernel_size, "kernel_size", name)
        self.stride = single(stride, "stride", name)
        self.padding = padding if isinstance(padding, str) else single(padding, "padding",
                                                                          name)
        self.dilation = single(dilation, "dilation", name)
        (OL,) = _output_size(name, in_channels, out_channels, (self.input_size,),
                             (self.kernel_size,), (self.stride,), self._padding_1(),
                             (self.dilation,))
        self.output_size = OL
        self.weight = Parameter(np.empty((OL, out_channels, in_channels, self.kernel_size),
                                         dtype=dtype))
        _add_bias(self, (out_channels, OL), bias, dtype)
        self.reset_parameters()

    def _padding_1(self) -> Sizes | str:
        """The padding as the 1-D ops take it: a mode, or a 1-tuple."""
        return self.padding if isinstance(self.padding, str) else (self.padding,)

    def reset_parameters(self) -> None:
        _uniform_fan_in(self.weight, self.bias, fan_in=self.in_channels * self.kernel_size)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 3 or x.shape[1] != self.in_channels or x.shape[2] != self.input_size:
            raise ValueError(f"{self!r} expects input (N, {self.in_channels}, {self.input_size}), "
                             f"got {x.shape}")
        return _locally_connected(as_tensor(x), self.weight, self.bias, (self.stride,),
                                  self._padding_1(), (self.dilation,), "locally_connected1d")

    def extra_repr(self) -> str:
        return _conv_repr(f"{self.in_channels}, {self.out_channels}, input_size={self.input_size}, "
                          f"kernel_size={self.kernel_size}, stride={self.stride}", self.bias,
                          padding=(self.padding, 0), dilation=(self.dilation, 1))


__all__ = ["LocallyConnected1d", "LocallyConnected2d"]
