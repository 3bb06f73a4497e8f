"""Convolution layers: Conv1d, Conv2d and ConvTranspose2d over one base, ``_ConvNd``,
as in PyTorch's ``torch/nn/modules/conv.py``.

Each subclass turns its arguments into tuples with one entry per spatial axis and
hands them to ``_ConvNd.__init__``, which checks them once and builds the weight
and bias.  ``forward`` checks the input's shape and calls the functional core
(:func:`cnnlab.nn.functional_conv._conv`), which checks only what the input decides.
The other convolution-like layers (locally connected, connection table, learned
combination) live in their own files and share the init and repr helpers below.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from cnnlab.autograd.tensor import DEFAULT_DTYPE, Tensor
from cnnlab.kernels.conv import conv_output_size
from cnnlab.kernels.conv_transpose import conv_transpose_output_size
from cnnlab.nn import functional as F
from cnnlab.nn import init
from cnnlab.nn._args import (
    as_tensor,
    check_cpu,
    check_output_padding,
    check_padding,
    check_sizes,
    errors_naming,
    single,
)
from cnnlab.nn.functional_conv import (
    _SPATIAL,
    Sizes,
    _conv,
    _conv_transpose2d,
    _resolve_padding,
)
from cnnlab.nn.module import Module
from cnnlab.nn.parameter import Parameter

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _uniform_fan_in(*tensors: Tensor | None, fan_in: int) -> None:
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)) on each tensor given: PyTorch's conv bias init,
    and the weight init of the layers PyTorch does not have."""
    bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
    for t in tensors:
        if t is not None:
            init.uniform_(t, -bound, bound)


def _add_bias(layer: Module, shape: int | tuple[int, ...], bias: bool, dtype: Any) -> None:
    """Register ``bias`` as an empty parameter of ``shape`` (``reset_parameters`` fills
    it), or as None when ``bias`` is False."""
    if bias:
        layer.bias = Parameter(np.empty(shape, dtype=dtype))
    else:
        layer.register_parameter("bias", None)


def _conv_repr(head: str, bias: Tensor | None, **settings: tuple[Any, Any]) -> str:
    """``head``, then ``name=value`` for every setting given as (value, default) whose
    value is not its default (padding 'valid' is no padding), then ``bias=False``."""
    s = head
    for name, (value, default) in settings.items():
        if value != default and not (name == "padding" and value == "valid"):
            s += f", {name}={value!r}"
    return s + (", bias=False" if bias is None else "")


def _checked_input(layer: Module, x: Tensor, nd: int) -> Tensor:
    """x as a Tensor, if it is (N, in_channels, *spatial) or unbatched (in_channels, *spatial)
    with ``nd`` spatial axes; else an error naming the layer."""
    x = as_tensor(x)
    if x.ndim not in (nd + 1, nd + 2) or x.shape[-nd - 1] != layer.in_channels:
        raise ValueError(f"{layer!r} expects input (N, {layer.in_channels}, {_SPATIAL[nd]}), "
                         f"got {x.shape}")
    return x


class _ConvNd(Module):
    """What Conv1d, Conv2d and ConvTranspose2d share (PyTorch's ``_ConvNd``).

    Parameters
    ----------
    in_channels, out_channels, groups : int
        Both channel counts must be divisible by ``groups``.
    kernel_size, stride, dilation : tuple of int, one entry per spatial axis, each >= 1
    padding : tuple of int (each >= 0), or 'valid' / 'same' / 'full' (not transposed)
    transposed : bool
        The weight is (in_channels, out_channels // groups, *kernel_size) when
        True, else (out_channels, in_channels // groups, *kernel_size).
    output_padding : tuple of int
        Transposed only: per axis >= 0 and smaller than the stride or the dilation.
    bias : bool
        A bias of shape (out_channels,).
    dtype : numpy dtype
        Of the weight and bias.
    padding_mode : {'zeros', 'reflect', 'replicate', 'circular'}
        What the padding holds (PyTorch's modes; :func:`cnnlab.nn.functional.pad`).
        Transposed convolutions take 'zeros' only, as in PyTorch.
    device : the CPU, or None
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Sizes, stride: Sizes,
                 padding: Sizes | str, dilation: Sizes, transposed: bool, output_padding: Sizes,
                 groups: int, bias: bool, dtype: Any, padding_mode: str = "zeros",
                 device: Any = None) -> None:
        super().__init__()
        name = type(self).__name__
        check_cpu(device)
        modes = ("zeros",) if transposed else _PADDING_MODES
        if padding_mode not in modes:
            raise ValueError(f"{name}: padding_mode must be one of {list(modes)}, "
                             f"got {padding_mode!r}")
        if groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(f"{name}: in_channels ({in_channels}) and out_channels "
                             f"({out_channels}) must be divisible by groups ({groups})")
        check_sizes(name, 1, kernel_size=kernel_size, stride=stride, dilation=dilation)
        if transposed:
            check_sizes(name, 0, padding=padding, output_padding=output_padding)
            check_output_padding(name, output_padding, stride, dilation)
        else:
            check_padding(name, padding, len(kernel_size))
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size, self.stride, self.dilation = kernel_size, stride, dilation
        self.padding, self.output_padding, self.transposed = padding, output_padding, transposed
        self.padding_mode = padding_mode
        channels = ((in_channels, out_channels // groups) if transposed
                    else (out_channels, in_channels // groups))
        self.weight = Parameter(np.empty((*channels, *kernel_size), dtype=dtype))
        _add_bias(self, out_channels, bias, dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default: kaiming_uniform_(a=sqrt(5)) on the weight,
        U(-1/sqrt(fan_in), 1/sqrt(fan_in)) on the bias."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        fan_in, _ = init.calculate_fan_in_and_fan_out(self.weight)
        _uniform_fan_in(self.bias, fan_in=fan_in)

    def _conv_forward(self, x: Tensor, relu: bool = False) -> Tensor:
        padding = self.padding
        with errors_naming(self):      # e.g. a map smaller than the kernel: say which layer
            if self.padding_mode != "zeros":    # pad first, then convolve without padding
                nd = len(self.kernel_size)
                pads = _resolve_padding(padding, self.kernel_size, self.stride, self.dilation,
                                        x.shape[-nd:])
                x = F.pad(x, [p for a in reversed(range(nd)) for p in pads[2 * a:2 * a + 2]],
                          mode=self.padding_mode)
                padding = (0,) * nd
            return _conv(x, self.weight, self.bias, self.stride, padding, self.dilation,
                         self.groups, f"conv{len(self.kernel_size)}d", relu=relu)

    def extra_repr(self) -> str:
        zeros, ones = (0,) * len(self.kernel_size), (1,) * len(self.kernel_size)
        return _conv_repr(f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                          f"stride={self.stride}", self.bias, padding=(self.padding, zeros),
                          output_padding=(self.output_padding, zeros), dilation=(self.dilation, ones),
                          groups=(self.groups, 1), padding_mode=(self.padding_mode, "zeros"))


class Conv1d(_ConvNd):
    """1-D convolution over time series (N, C_in, L) (Deep Learning ch. 9, the notes' 004),
    PyTorch's signature and layout: weight (out_channels, in_channels // groups, K),
    bias (out_channels,), U(-1/sqrt(fan_in), 1/sqrt(fan_in)) init.  Computed by the
    2-D kernels with H = 1; ``padding`` is an int or 'valid' / 'same' / 'full'.

    L_out = (L + 2P - dilation (K - 1) - 1) // stride + 1.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int | str = 0, dilation: int = 1, groups: int = 1, bias: bool = True,
                 dtype=DEFAULT_DTYPE, *, padding_mode: str = "zeros", device: Any = None) -> None:
        name = type(self).__name__
        super().__init__(
            in_channels, out_channels, kernel_size=(single(kernel_size, "kernel_size", name),),
            stride=(single(stride, "stride", name),),
            padding=padding if isinstance(padding, str) else (single(padding, "padding", name),),
            dilation=(single(dilation, "dilation", name),), transposed=False, output_padding=(0,),
            groups=groups, bias=bias, dtype=dtype, padding_mode=padding_mode, device=device)

    def forward(self, x: Tensor) -> Tensor:
        return self._conv_forward(_checked_input(self, x, 1))

    def forward_relu(self, x: Tensor) -> Tensor:
        """relu(self.forward(x)) as one node (see ``Sequential``)."""
        return self._conv_forward(_checked_input(self, x, 1), relu=True)


class Conv2d(_ConvNd):
    """2-D convolution over (N, C_in, H, W), PyTorch's signature and layout.

    weight (out_channels, in_channels // groups, KH, KW), bias (out_channels,),
    both initialised like PyTorch: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    ``padding`` is an int, a pair, or 'valid' / 'same' / 'full'.

    ``strict=True`` refuses, at the first forward, a setting the notes call
    invalid: one where (W - F + 2P)/S + 1 is not an integer, so the last
    rows or columns of the input would never be visited (with
    ``strict=False`` the size is floored, as in PyTorch).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: F.IntPair,
                 stride: F.IntPair = 1, padding: F.IntPair | str = 0, dilation: F.IntPair = 1,
                 groups: int = 1, bias: bool = True, dtype=DEFAULT_DTYPE,
                 strict: bool = False, *, padding_mode: str = "zeros",
                 device: Any = None) -> None:
        super().__init__(
            in_channels, out_channels, kernel_size=F.pair(kernel_size, "kernel_size"),
            stride=F.pair(stride, "stride"),
            padding=padding if isinstance(padding, str) else F.pair(padding, "padding"),
            dilation=F.pair(dilation, "dilation"), transposed=False, output_padding=(0, 0),
            groups=groups, bias=bias, dtype=dtype, padding_mode=padding_mode, device=device)
        self.strict = bool(strict)

    def forward(self, x: Tensor) -> Tensor:
        return self._conv_forward(self._checked(x))

    def forward_relu(self, x: Tensor) -> Tensor:
        """relu(self.forward(x)) as one node (see ``Sequential``)."""
        return self._conv_forward(self._checked(x), relu=True)

    def _checked(self, x: Tensor) -> Tensor:
        x = _checked_input(self, x, 2)
        if self.strict:
            self.check_setting(x.shape[-2:])
        return x

    def extra_repr(self) -> str:
        return super().extra_repr() + (", strict=True" if self.strict else "")

    def check_setting(self, in_hw: tuple[int, int]) -> tuple[int, int]:
        """The output (OH, OW) for an input (H, W), raising (naming the layer and
        the numbers) when (W - F + 2P)/S + 1 is not an integer on either axis."""
        pad = _resolve_padding(self.padding, self.kernel_size, self.stride, self.dilation,
                               tuple(in_hw))
        out = []
        for a, axis in enumerate(("height", "width")):
            size, k, s, d = in_hw[a], self.kernel_size[a], self.stride[a], self.dilation[a]
            p0, p1 = pad[2 * a], pad[2 * a + 1]
            try:
                if p0 == p1:
                    out.append(conv_output_size(size, k, s, p0, d, strict=True))
                else:   # asymmetric 'same' padding: P0 + P1 in place of 2P
                    out.append(conv_output_size(size + p0 + p1, k, s, 0, d, strict=True))
            except ValueError as e:
                raise ValueError(f"{self!r} on input {axis} {size}, padding "
                                 f"{(p0, p1)}: {e}") from e
        return out[0], out[1]


class ConvTranspose2d(_ConvNd):
    """Transposed convolution ("deconvolution": FCN's upsampling, Zeiler and Fergus'
    DeconvNet; named in the notes 000/001), PyTorch's signature, layout and init:
    weight (in_channels, out_channels // groups, KH, KW), bias (out_channels,).

    Input (N, C_in, H, W) -> (N, C_out, OH, OW),
    OH = (H - 1) S - 2P + d (KH - 1) + output_padding + 1.
    ``forward(x, output_size)`` picks the output_padding that gives ``output_size``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: F.IntPair,
                 stride: F.IntPair = 1, padding: F.IntPair = 0, output_padding: F.IntPair = 0,
                 groups: int = 1, bias: bool = True, dilation: F.IntPair = 1,
                 dtype=DEFAULT_DTYPE, *, padding_mode: str = "zeros", device: Any = None) -> None:
        super().__init__(
            in_channels, out_channels, kernel_size=F.pair(kernel_size, "kernel_size"),
            stride=F.pair(stride, "stride"), padding=F.pair(padding, "padding"),
            dilation=F.pair(dilation, "dilation"), transposed=True,
            output_padding=F.pair(output_padding, "output_padding"), groups=groups, bias=bias,
            dtype=dtype, padding_mode=padding_mode, device=device)

    def _output_padding(self, in_hw: tuple[int, int], output_size) -> tuple[int, int]:
        if output_size is None:
            return self.output_padding
        size = tuple(int(v) for v in output_size)[-2:]
        extras = []
        for a in range(2):
            smallest = conv_transpose_output_size(in_hw[a], self.kernel_size[a], self.stride[a],
                                                  self.padding[a], 0, self.dilation[a])
            extra = size[a] - smallest
            if not 0 <= extra < max(self.stride[a], self.dilation[a]):
                raise ValueError(
                    f"{self!r}: requested output_size {size} is not reachable from input "
                    f"{tuple(in_hw)}: the valid range on axis {a} is {smallest} to "
                    f"{smallest + max(self.stride[a], self.dilation[a]) - 1}")
            extras.append(extra)
        return extras[0], extras[1]

    def forward(self, x: Tensor, output_size=None) -> Tensor:
        x = _checked_input(self, x, 2)
        op = self._output_padding(x.shape[-2:], output_size)
        with errors_naming(self):
            return _conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding, op,
                                     self.groups, self.dilation)


__all__ = ["Conv1d", "Conv2d", "ConvTranspose2d"]
