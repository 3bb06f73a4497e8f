"""Convolution layers."""
from __future__ import annotations

import math

import numpy as np

from cnnlab.autograd.tensor import DEFAULT_DTYPE, Tensor
from cnnlab.kernels.conv import conv_output_size
from cnnlab.kernels.conv_transpose import conv_transpose_output_size
from cnnlab.kernels.local import local2d_num_parameters
from cnnlab.nn import functional as F
from cnnlab.nn import init
from cnnlab.nn._args import single
from cnnlab.nn.module import Module
from cnnlab.nn.parameter import Parameter


class Conv2d(Module):
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
                 strict: bool = False) -> None:
        super().__init__()
        self.strict = bool(strict)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv2d: in_channels ({in_channels}) and out_channels "
                             f"({out_channels}) must be divisible by groups ({groups})")
        if isinstance(padding, str) and padding.lower() not in ("valid", "same", "full"):
            raise ValueError(f"Conv2d: padding must be 'valid', 'same', 'full', an int or a pair, "
                             f"got {padding!r}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = F.pair(kernel_size, "kernel_size")
        self.stride = F.pair(stride, "stride")
        self.padding = padding if isinstance(padding, str) else F.pair(padding, "padding")
        self.dilation = F.pair(dilation, "dilation")
        _add_weight_and_bias(self, (out_channels, in_channels // groups, *self.kernel_size),
                             out_channels, bias, dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _reset_like_torch_conv(self)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim not in (3, 4) or x.shape[-3] != self.in_channels:
            raise ValueError(f"{self!r} expects input (N, {self.in_channels}, H, W), got {x.shape}")
        if self.strict:
            self.check_setting(x.shape[-2:])
        try:
            return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                            self.groups)
        except ValueError as e:   # e.g. a map smaller than the kernel: say which layer
            raise ValueError(f"{self!r}: {e}") from None

    def extra_repr(self) -> str:
        s = _conv_extra_repr(f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                             f"stride={self.stride}", self.padding, (0, 0), self.dilation, (1, 1),
                             self.groups, self.bias)
        return s + ", strict=True" if self.strict else s

    def check_setting(self, in_hw: tuple[int, int]) -> tuple[int, int]:
        """The output (OH, OW) for an input (H, W), raising (naming the layer and
        the numbers) when (W - F + 2P)/S + 1 is not an integer on either axis."""
        pad = F.conv_padding(self.padding, self.kernel_size, self.stride, self.dilation,
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
                                 f"{(p0, p1)}: {e}") from None
        return out[0], out[1]


def _uniform_fan_in(*tensors, fan_in: int) -> None:
    """PyTorch's default conv init: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
    for t in tensors:
        if t is not None:
            init.uniform_(t, -bound, bound)


def _add_weight_and_bias(layer: Module, weight_shape: tuple[int, ...], bias_size: int,
                         bias: bool, dtype) -> None:
    """Register ``weight`` (and ``bias``, or None) as empty parameters; the caller
    then runs its ``reset_parameters``."""
    layer.weight = Parameter(np.empty(weight_shape, dtype=dtype))
    if bias:
        layer.bias = Parameter(np.empty(bias_size, dtype=dtype))
    else:
        layer.register_parameter("bias", None)


def _reset_like_torch_conv(layer: Module) -> None:
    """PyTorch's default for Conv/ConvTranspose: kaiming_uniform_(a=sqrt(5)) on the
    weight, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) on the bias."""
    init.kaiming_uniform_(layer.weight, a=math.sqrt(5))
    fan_in, _ = init.calculate_fan_in_and_fan_out(layer.weight)
    _uniform_fan_in(layer.bias, fan_in=fan_in)


def _conv_extra_repr(head: str, padding, no_padding, dilation, no_dilation, groups: int,
                     bias: Tensor | None) -> str:
    """``head`` plus the padding, dilation, groups and bias settings that differ from
    the defaults (``no_padding`` / ``no_dilation`` in the layer's own form)."""
    s = head
    if padding not in (no_padding, "valid"):
        s += f", padding={padding!r}"
    if dilation != no_dilation:
        s += f", dilation={dilation}"
    if groups != 1:
        s += f", groups={groups}"
    if bias is None:
        s += ", bias=False"
    return s


class Conv1d(Module):
    """1-D convolution over time series (N, C_in, L) (Deep Learning ch. 9, the notes' 004),
    PyTorch's signature and layout: weight (out_channels, in_channels // groups, K),
    bias (out_channels,), U(-1/sqrt(fan_in), 1/sqrt(fan_in)) init.  Computed by the
    2-D kernels with H = 1; ``padding`` is an int or 'valid' / 'same' / 'full'.

    L_out = (L + 2P - dilation (K - 1) - 1) // stride + 1.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int | str = 0, dilation: int = 1, groups: int = 1, bias: bool = True,
                 dtype=DEFAULT_DTYPE) -> None:
        super().__init__()
        if groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv1d: in_channels ({in_channels}) and out_channels "
                             f"({out_channels}) must be divisible by groups ({groups})")
        if isinstance(padding, str) and padding.lower() not in ("valid", "same", "full"):
            raise ValueError(f"Conv1d: padding must be 'valid', 'same', 'full' or an int, "
                             f"got {padding!r}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = (single(kernel_size, "kernel_size", "Conv1d"),)
        self.stride = (single(stride, "stride", "Conv1d"),)
        self.padding = padding if isinstance(padding, str) else (
            single(padding, "padding", "Conv1d"),)
        self.dilation = (single(dilation, "dilation", "Conv1d"),)
        if self.kernel_size[0] < 1 or self.stride[0] < 1 or self.dilation[0] < 1:
            raise ValueError(f"Conv1d: kernel_size, stride and dilation must be >= 1, got "
                             f"{kernel_size}, {stride} and {dilation}")
        _add_weight_and_bias(self, (out_channels, in_channels // groups, self.kernel_size[0]),
                             out_channels, bias, dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _reset_like_torch_conv(self)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim not in (2, 3) or x.shape[-2] != self.in_channels:
            raise ValueError(f"{self!r} expects input (N, {self.in_channels}, L), got {x.shape}")
        p = self.padding if isinstance(self.padding, str) else self.padding[0]
        try:
            return F.conv1d(x, self.weight, self.bias, self.stride[0], p, self.dilation[0],
                            self.groups)
        except ValueError as e:
            raise ValueError(f"{self!r}: {e}") from None

    def extra_repr(self) -> str:
        return _conv_extra_repr(f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                                f"stride={self.stride}", self.padding, (0,), self.dilation, (1,),
                                self.groups, self.bias)


class ConvTranspose2d(Module):
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
                 dtype=DEFAULT_DTYPE) -> None:
        super().__init__()
        if groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(f"ConvTranspose2d: in_channels ({in_channels}) and out_channels "
                             f"({out_channels}) must be divisible by groups ({groups})")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = F.pair(kernel_size, "kernel_size")
        self.stride = F.pair(stride, "stride")
        self.padding = F.pair(padding, "padding")
        self.output_padding = F.pair(output_padding, "output_padding")
        self.dilation = F.pair(dilation, "dilation")
        if min(self.kernel_size) < 1 or min(self.stride) < 1 or min(self.dilation) < 1:
            raise ValueError(f"ConvTranspose2d: kernel_size, stride and dilation must be >= 1, "
                             f"got {self.kernel_size}, {self.stride} and {self.dilation}")
        for a in range(2):
            if self.output_padding[a] >= max(self.stride[a], self.dilation[a]):
                raise ValueError(
                    f"ConvTranspose2d: output_padding {self.output_padding} must be smaller "
                    f"than either the stride {self.stride} or the dilation {self.dilation}")
        _add_weight_and_bias(self, (in_channels, out_channels // groups, *self.kernel_size),
                             out_channels, bias, dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _reset_like_torch_conv(self)

    def _output_padding(self, in_hw: tuple[int, int], output_size) -> tuple[int, int]:
        if output_size is None:
            return self.output_padding
        size = tuple(int(v) for v in output_size)[-2:]
        ops = []
        for a in range(2):
            smallest = conv_transpose_output_size(in_hw[a], self.kernel_size[a], self.stride[a],
                                                  self.padding[a], 0, self.dilation[a])
            extra = size[a] - smallest
            if not 0 <= extra < max(self.stride[a], self.dilation[a]):
                raise ValueError(
                    f"{self!r}: requested output_size {size} is not reachable from input "
                    f"{tuple(in_hw)}: the valid range on axis {a} is {smallest} to "
                    f"{smallest + max(self.stride[a], self.dilation[a]) - 1}")
            ops.append(extra)
        return ops[0], ops[1]

    def forward(self, x: Tensor, output_size=None) -> Tensor:
        if x.ndim not in (3, 4) or x.shape[-3] != self.in_channels:
            raise ValueError(f"{self!r} expects input (N, {self.in_channels}, H, W), got {x.shape}")
        op = self._output_padding(x.shape[-2:], output_size)
        try:
            return F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding, op,
                                      self.groups, self.dilation)
        except ValueError as e:
            raise ValueError(f"{self!r}: {e}") from None

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.output_padding != (0, 0):
            s += f", output_padding={self.output_padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s


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
        self.output_size = self._output_size(type(self).__name__, in_channels, out_channels,
                                             self.input_size, self.kernel_size, self.stride,
                                             self.padding, self.dilation)
        OH, OW = self.output_size
        self.weight = Parameter(np.empty((OH, OW, out_channels, in_channels,
                                          *self.kernel_size), dtype=dtype))
        if bias:
            self.bias = Parameter(np.empty((out_channels, OH, OW), dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    @staticmethod
    def _output_size(name, in_channels, out_channels, input_size, kernel, stride, padding,
                     dilation) -> tuple[int, int]:
        if in_channels < 1 or out_channels < 1:
            raise ValueError(f"{name}: in_channels and out_channels must be >= 1, got "
                             f"{in_channels} and {out_channels}")
        if min(kernel) < 1 or min(stride) < 1 or min(dilation) < 1 or min(input_size) < 1:
            raise ValueError(f"{name}: input_size, kernel_size, stride and dilation must be "
                             f">= 1, got {input_size}, {kernel}, {stride} and {dilation}")
        try:
            pad = F.conv_padding(padding, kernel, stride, dilation, input_size)
        except ValueError as e:
            raise ValueError(f"{name}: {e}") from None
        out = []
        for a in range(2):
            size, p0, p1 = input_size[a], pad[2 * a], pad[2 * a + 1]
            eff = dilation[a] * (kernel[a] - 1) + 1
            if size + p0 + p1 < eff:
                raise ValueError(f"{name}: input_size {input_size} padded by {pad} is smaller "
                                 f"than the effective kernel size {eff}")
            out.append((size + p0 + p1 - eff) // stride[a] + 1)
        return out[0], out[1]

    @classmethod
    def parameter_count(cls, in_channels: int, out_channels: int, input_size: F.IntPair,
                        kernel_size: F.IntPair, stride: F.IntPair = 1,
                        padding: F.IntPair | str = 0, dilation: F.IntPair = 1,
                        bias: bool = True) -> int:
        """The number of parameters the layer would have, without allocating it."""
        k = F.pair(kernel_size, "kernel_size")
        out = cls._output_size(cls.__name__, in_channels, out_channels,
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
        return F.locally_connected2d(x, self.weight, self.bias, self.stride, self.padding,
                                     self.dilation)

    def extra_repr(self) -> str:
        return _conv_extra_repr(f"{self.in_channels}, {self.out_channels}, input_size={self.input_size}, "
                                f"kernel_size={self.kernel_size}, stride={self.stride}", self.padding,
                                (0, 0), self.dilation, (1, 1), 1, self.bias)


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
        p2 = self.padding if isinstance(self.padding, str) else (0, self.padding)
        _, OL = LocallyConnected2d._output_size(name, in_channels, out_channels,
                                                (1, self.input_size), (1, self.kernel_size),
                                                (1, self.stride), p2, (1, self.dilation))
        self.output_size = OL
        self.weight = Parameter(np.empty((OL, out_channels, in_channels, self.kernel_size),
                                         dtype=dtype))
        if bias:
            self.bias = Parameter(np.empty((out_channels, OL), dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _uniform_fan_in(self.weight, self.bias, fan_in=self.in_channels * self.kernel_size)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 3 or x.shape[1] != self.in_channels or x.shape[2] != self.input_size:
            raise ValueError(f"{self!r} expects input (N, {self.in_channels}, {self.input_size}), "
                             f"got {x.shape}")
        return F.locally_connected1d(x, self.weight, self.bias, self.stride, self.padding,
                                     self.dilation)

    def extra_repr(self) -> str:
        return _conv_extra_repr(f"{self.in_channels}, {self.out_channels}, input_size={self.input_size}, "
                                f"kernel_size={self.kernel_size}, stride={self.stride}", self.padding,
                                0, self.dilation, 1, 1, self.bias)


# LeCun et al. 1998, Table I: the S2 maps (0-5) each C3 map (0-15) is connected to.
_LENET5_C3 = [
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (4, 5, 0), (5, 0, 1),            # 3 consecutive
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (3, 4, 5, 0), (4, 5, 0, 1), (5, 0, 1, 2),
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),                                   # non-consecutive
    (0, 1, 2, 3, 4, 5),                                                         # all six
]


def lenet5_c3_table() -> np.ndarray:
    """LeNet-5's C3 connection table (LeCun et al. 1998, Table I) as a boolean
    (6, 16) array, table[i, j] = S2 map i feeds C3 map j: maps 0-5 see 3
    consecutive inputs, 6-11 see 4 consecutive, 12-14 see 4 non-consecutive and
    15 sees all 6 (60 connections; with 5x5 kernels 60 * 25 + 16 = 1,516 parameters)."""
    table = np.zeros((6, 16), dtype=bool)
    for j, inputs in enumerate(_LENET5_C3):
        table[list(inputs), j] = True
    return table


class ConnectionTable(Module):
    """A conv layer whose output map j sees only the input maps i with table[i, j]
    (LeNet-5's C3; the notes' fixed form of Bouvrie's learned combinations, 002).

    ``table``: boolean (in_channels, out_channels) array, or a list with one
    list of input indices per output map.  Implemented as a masked Conv2d:
    weight (out_channels, in_channels, KH, KW) is multiplied by the mask in the
    forward, so disconnected weights never affect the output and get zero
    gradient.  Init: U(-1/sqrt(fan_in_j), 1/sqrt(fan_in_j)) with fan_in_j =
    (inputs of map j) * KH * KW; disconnected entries are zero.
    :meth:`num_connection_parameters` counts only the connected weights and biases.
    """

    def __init__(self, table, kernel_size: F.IntPair, stride: F.IntPair = 1,
                 padding: F.IntPair | str = 0, bias: bool = True, dtype=DEFAULT_DTYPE) -> None:
        super().__init__()
        self.table = self._as_table(table)
        self.in_channels, self.out_channels = self.table.shape
        if isinstance(padding, str) and padding.lower() not in ("valid", "same", "full"):
            raise ValueError(f"ConnectionTable: padding must be 'valid', 'same', 'full', an int "
                             f"or a pair, got {padding!r}")
        self.kernel_size = F.pair(kernel_size, "kernel_size")
        self.stride = F.pair(stride, "stride")
        self.padding = padding if isinstance(padding, str) else F.pair(padding, "padding")
        if min(self.kernel_size) < 1 or min(self.stride) < 1:
            raise ValueError(f"ConnectionTable: kernel_size and stride must be >= 1, got "
                             f"{self.kernel_size} and {self.stride}")
        shape = (self.out_channels, self.in_channels, *self.kernel_size)
        self.weight = Parameter(np.empty(shape, dtype=dtype))
        if bias:
            self.bias = Parameter(np.empty(self.out_channels, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    @staticmethod
    def _as_table(table) -> np.ndarray:
        arr = None
        if isinstance(table, np.ndarray) and table.ndim == 2:
            arr = table.astype(bool)
        elif isinstance(table, (list, tuple)) and all(isinstance(r, (list, tuple)) for r in table):
            lists = [list(r) for r in table]
            if lists and all(isinstance(v, (bool, np.bool_)) for r in lists for v in r):
                arr = np.array(lists, dtype=bool)          # a boolean matrix as lists
            elif lists and all(isinstance(v, (int, np.integer)) for r in lists for v in r):
                n_in = 1 + max((v for r in lists for v in r), default=-1)
                if any(v < 0 for r in lists for v in r):
                    raise ValueError(f"ConnectionTable: input indices must be >= 0, got {table}")
                arr = np.zeros((n_in, len(lists)), dtype=bool)
                for j, r in enumerate(lists):
                    arr[r, j] = True
        if arr is None or arr.ndim != 2 or arr.size == 0:
            raise ValueError("ConnectionTable: table must be a boolean (in_channels, out_channels) "
                             "array or one list of input indices per output map, got "
                             f"{table!r}")
        for j in np.flatnonzero(~arr.any(axis=0)):
            raise ValueError(f"ConnectionTable: output map {j} is connected to no input map")
        return arr

    def reset_parameters(self) -> None:
        k = self.kernel_size[0] * self.kernel_size[1]
        fan_in = self.table.sum(axis=0) * k                              # per output map
        bound = (1 / np.sqrt(fan_in)).astype(self.weight.dtype)           # (out_channels,)
        init.uniform_(self.weight, -1.0, 1.0)
        self.weight.data *= bound[:, None, None, None] * self.mask()
        if self.bias is not None:
            init.uniform_(self.bias, -1.0, 1.0)
            self.bias.data *= bound

    def mask(self) -> np.ndarray:
        """(out_channels, in_channels, 1, 1) 0/1 mask of the weight."""
        return self.table.T[:, :, None, None].astype(self.weight.dtype)

    def num_connection_parameters(self) -> int:
        """Connected weights plus biases: table.sum() * KH * KW + out_channels."""
        k = self.kernel_size[0] * self.kernel_size[1]
        return int(self.table.sum()) * k + (self.out_channels if self.bias is not None else 0)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim not in (3, 4) or x.shape[-3] != self.in_channels:
            raise ValueError(f"{self!r} expects input (N, {self.in_channels}, H, W), got {x.shape}")
        try:
            return F.connection_table_conv2d(x, self.weight, self.table, self.bias, self.stride,
                                             self.padding)
        except ValueError as e:
            raise ValueError(f"{self!r}: {e}") from None

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, connections={int(self.table.sum())}, "
             f"kernel_size={self.kernel_size}, stride={self.stride}")
        if self.padding not in ((0, 0), "valid"):
            s += f", padding={self.padding!r}"
        if self.bias is None:
            s += ", bias=False"
        return s


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
        if isinstance(padding, str) and padding.lower() not in ("valid", "same", "full"):
            raise ValueError(f"LearnedCombination: padding must be 'valid', 'same', 'full', an "
                             f"int or a pair, got {padding!r}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = F.pair(kernel_size, "kernel_size")
        self.stride = F.pair(stride, "stride")
        self.padding = padding if isinstance(padding, str) else F.pair(padding, "padding")
        self.dilation = F.pair(dilation, "dilation")
        if min(self.kernel_size) < 1 or min(self.stride) < 1 or min(self.dilation) < 1:
            raise ValueError(f"LearnedCombination: kernel_size, stride and dilation must be >= 1, "
                             f"got {self.kernel_size}, {self.stride} and {self.dilation}")
        self.weight = Parameter(np.empty((in_channels, 1, *self.kernel_size), dtype=dtype))
        self.c = Parameter(np.empty((in_channels, out_channels), dtype=dtype))
        if bias:
            self.bias = Parameter(np.empty(out_channels, dtype=dtype))
        else:
            self.register_parameter("bias", None)
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
        try:
            return F.learned_combination(x, self.weight, self.c, self.bias, self.stride,
                                         self.padding, self.dilation)
        except ValueError as e:
            raise ValueError(f"{self!r}: {e}") from None

    def extra_repr(self) -> str:
        return _conv_extra_repr(f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                                f"stride={self.stride}", self.padding, (0, 0), self.dilation, (1, 1), 1,
                                self.bias)


def combination_l1_penalty(layer: LearnedCombination | Tensor, lam: float) -> Tensor:
    """lambda * sum_ij |alpha_ij| of a :class:`LearnedCombination` (Bouvrie's eq. (18));
    see :func:`cnnlab.nn.functional.combination_l1_penalty`."""
    return F.combination_l1_penalty(layer, lam)


__all__ = ["ConnectionTable", "Conv1d", "Conv2d", "ConvTranspose2d", "LearnedCombination",
           "LocallyConnected1d", "LocallyConnected2d", "combination_l1_penalty",
           "lenet5_c3_table"]
