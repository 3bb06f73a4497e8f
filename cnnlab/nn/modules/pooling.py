"""Pooling layers, as the classic CNN notes describe pooling and subsampling (cs231n's
"Convolutional Networks", Bouvrie's "Notes on Convolutional Neural Networks", Deep
Learning ch. 9.3 "Pooling").

Max-pool tie rule (all max layers here): the gradient of a window goes to its
first maximum in scan order (row by row, left to right), as PyTorch's CPU
kernels do; other tied positions get nothing, and a NaN wins over any number.
The notes' worked example, the window [1, 2, 3, 2]: max pooling outputs 3 and
routes the upstream gradient g to the 3, giving [0, 0, g, 0]; average pooling
outputs 2 and spreads g / 4 to each position.
"""
from __future__ import annotations

import numpy as np

from cnnlab.autograd.tensor import DEFAULT_DTYPE, Tensor
from cnnlab.nn import functional as F
from cnnlab.nn._args import check_sizes, errors_naming, single
from cnnlab.nn.functional_pool import _check_norm_type
from cnnlab.nn.module import Module
from cnnlab.nn.parameter import Parameter


def _run(layer: Module, fn, x: Tensor, ndims: tuple[int, ...], want: str, *args, **kwargs):
    """Check the input's rank, run the functional op, and re-raise its
    ValueErrors naming the layer."""
    if x.ndim not in ndims:
        raise ValueError(f"{layer!r} expects input {want}, got {x.shape}")
    with errors_naming(layer):
        return fn(x, *args, **kwargs)


class _Pool2d(Module):
    def __init__(self, kernel_size: F.IntPair, stride: F.IntPair | None = None,
                 padding: F.IntPair = 0, ceil_mode: bool = False) -> None:
        super().__init__()
        self.kernel_size = F.pair(kernel_size, "kernel_size")
        self.stride = self.kernel_size if stride is None else F.pair(stride, "stride")
        self.padding = F.pair(padding, "padding")
        self.ceil_mode = ceil_mode
        check_sizes(type(self).__name__, 1, kernel_size=self.kernel_size, stride=self.stride)
        check_sizes(type(self).__name__, 0, padding=self.padding)

    def _call(self, fn, x: Tensor, *args, **kwargs):
        """Run the functional op; shape errors are re-raised naming this layer."""
        return _run(self, fn, x, (3, 4), "(N, C, H, W)", *args, **kwargs)

    def extra_repr(self) -> str:
        s = f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
        return s + (", ceil_mode=True" if self.ceil_mode else "")


class MaxPool2d(_Pool2d):
    """Max over KH x KW windows (stride defaults to the kernel size); the usual
    2x2/2, or AlexNet's overlapping 3x3/2 (55x55 -> 27x27).  (N, C, H, W) ->
    (N, C, OH, OW), OH = (H + 2P - D(K - 1) - 1 (+ S - 1 in ceil mode)) // S + 1.

    Backward routes each gradient to its window's maximum; on ties to the
    first maximum in scan order (see the module docstring for the notes'
    [1, 2, 3, 2] example)."""

    def __init__(self, kernel_size: F.IntPair, stride: F.IntPair | None = None,
                 padding: F.IntPair = 0, dilation: F.IntPair = 1, return_indices: bool = False,
                 ceil_mode: bool = False) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode)
        self.dilation = F.pair(dilation, "dilation")
        self.return_indices = return_indices

    def forward(self, x: Tensor):
        return self._call(F.max_pool2d, x, self.kernel_size, self.stride, self.padding,
                          self.dilation, self.ceil_mode, self.return_indices)


class AvgPool2d(_Pool2d):
    """Mean over KH x KW windows (stride defaults to the kernel size); the
    backward spreads each gradient evenly over its window."""

    def __init__(self, kernel_size: F.IntPair, stride: F.IntPair | None = None,
                 padding: F.IntPair = 0, ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override: int | None = None) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode)
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override

    def forward(self, x: Tensor) -> Tensor:
        return self._call(F.avg_pool2d, x, self.kernel_size, self.stride, self.padding,
                          self.ceil_mode, self.count_include_pad, self.divisor_override)


# --------------------------------------------------------------------------- 1-D
class _Pool1d(Module):
    def __init__(self, kernel_size: int, stride: int | None = None, padding: int = 0,
                 ceil_mode: bool = False) -> None:
        super().__init__()
        name = type(self).__name__
        self.kernel_size = single(kernel_size, "kernel_size", name)
        self.stride = self.kernel_size if stride is None else single(stride, "stride", name)
        self.padding = single(padding, "padding", name)
        self.ceil_mode = ceil_mode
        check_sizes(name, 1, kernel_size=(self.kernel_size,), stride=(self.stride,))
        check_sizes(name, 0, padding=(self.padding,))

    def _call(self, fn, x: Tensor, *args, **kwargs):
        return _run(self, fn, x, (2, 3), "(N, C, L)", *args, **kwargs)

    def extra_repr(self) -> str:
        s = f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
        return s + (", ceil_mode=True" if self.ceil_mode else "")


class MaxPool1d(_Pool1d):
    """Max over windows along L, (N, C, L) -> (N, C, OL),
    OL = (L + 2P - D(K - 1) - 1 (+ S - 1 in ceil mode)) // S + 1.  Windows
    overlap when stride < kernel_size.  Same tie rule as :class:`MaxPool2d`."""

    def __init__(self, kernel_size: int, stride: int | None = None, padding: int = 0,
                 dilation: int = 1, return_indices: bool = False, ceil_mode: bool = False) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode)
        self.dilation = single(dilation, "dilation", "MaxPool1d")
        self.return_indices = return_indices

    def forward(self, x: Tensor):
        return self._call(F.max_pool1d, x, self.kernel_size, self.stride, self.padding,
                          self.dilation, self.ceil_mode, self.return_indices)

    def extra_repr(self) -> str:
        return super().extra_repr() + (f", dilation={self.dilation}" if self.dilation != 1 else "")


class AvgPool1d(_Pool1d):
    """Mean over windows along L, (N, C, L) -> (N, C, OL), PyTorch's divisor rules."""

    def __init__(self, kernel_size: int, stride: int | None = None, padding: int = 0,
                 ceil_mode: bool = False, count_include_pad: bool = True) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode)
        self.count_include_pad = count_include_pad

    def forward(self, x: Tensor) -> Tensor:
        return self._call(F.avg_pool1d, x, self.kernel_size, self.stride, self.padding,
                          self.ceil_mode, self.count_include_pad)


# ----------------------------------------------------------------------- LP pool
class LPPool2d(Module):
    """Power-average pooling y = (sum over the window of x ** p) ** (1 / p),
    with PyTorch's exact numbers (see :func:`cnnlab.nn.functional.lp_pool2d`):
    p = 1 is sum pooling, p = 2 L2-norm pooling (the notes, 004).
    (N, C, H, W) -> (N, C, OH, OW), no padding; stride defaults to kernel_size."""

    def __init__(self, norm_type: float, kernel_size: F.IntPair, stride: F.IntPair | None = None,
                 ceil_mode: bool = False) -> None:
        super().__init__()
        self.norm_type = norm_type
        _check_norm_type(norm_type, "LPPool2d")
        self.kernel_size = F.pair(kernel_size, "kernel_size")
        self.stride = self.kernel_size if stride is None else F.pair(stride, "stride")
        self.ceil_mode = ceil_mode
        check_sizes("LPPool2d", 1, kernel_size=self.kernel_size, stride=self.stride)

    def forward(self, x: Tensor) -> Tensor:
        return _run(self, F.lp_pool2d, x, (3, 4), "(N, C, H, W)", self.norm_type,
                    self.kernel_size, self.stride, self.ceil_mode)

    def extra_repr(self) -> str:
        return (f"norm_type={self.norm_type}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, ceil_mode={self.ceil_mode}")


class LPPool1d(Module):
    """Power-average pooling along L (see :class:`LPPool2d`), (N, C, L) -> (N, C, OL)."""

    def __init__(self, norm_type: float, kernel_size: int, stride: int | None = None,
                 ceil_mode: bool = False) -> None:
        super().__init__()
        self.norm_type = norm_type
        _check_norm_type(norm_type, "LPPool1d")
        self.kernel_size = single(kernel_size, "kernel_size", "LPPool1d")
        self.stride = self.kernel_size if stride is None else single(stride, "stride",
                                                                         "LPPool1d")
        self.ceil_mode = ceil_mode

    def forward(self, x: Tensor) -> Tensor:
        return _run(self, F.lp_pool1d, x, (2, 3), "(N, C, L)", self.norm_type, self.kernel_size,
                    self.stride, self.ceil_mode)

    def extra_repr(self) -> str:
        return (f"norm_type={self.norm_type}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, ceil_mode={self.ceil_mode}")


# -------------------------------------------------------- distance-weighted pool
class DistanceWeightedPool2d(_Pool2d):
    """Weighted average over KH x KW windows, each position weighted by its
    distance r from the window's centre: a Gaussian exp(-r**2 / (2 sigma**2))
    (``sigma`` default 1.0) or a callable radial ``profile(r)``; the weights
    are normalised per window (see :func:`cnnlab.nn.functional.distance_weighted_pool2d`).
    Deep Learning ch. 9.3's "weighted average based on the distance from the
    central pixel" (the notes, 004); no PyTorch counterpart, no parameters.
    Padding counts as in :class:`AvgPool2d` (``count_include_pad``).
    (N, C, H, W) -> (N, C, OH, OW), OH = (H + 2P - KH) // SH + 1.

    ``weights`` is the normalised (KH, KW) window the layer applies.
    """

    def __init__(self, kernel_size: F.IntPair, stride: F.IntPair | None = None,
                 padding: F.IntPair = 0, sigma: float | None = None, profile=None,
                 count_include_pad: bool = True) -> None:
        super().__init__(kernel_size, stride, padding)
        self.sigma = 1.0 if sigma is None and profile is None else sigma
        self.profile = profile
        self.count_include_pad = count_include_pad
        with errors_naming(self):
            self.weights = F.distance_weights(self.kernel_size, sigma, profile)   # checks them

    def forward(self, x: Tensor) -> Tensor:
        return self._call(F.distance_weighted_pool2d, x, self.kernel_size, self.stride,
                          self.padding, self.sigma, self.profile, self.count_include_pad)

    def extra_repr(self) -> str:
        shape = (f"sigma={self.sigma}" if self.profile is None
                 else f"profile={getattr(self.profile, '__name__', 'custom')}")
        return (super().extra_repr() + f", {shape}"
                + ("" if self.count_include_pad else ", count_include_pad=False"))


# -------------------------------------------------------------- stochastic pool
class StochasticPool2d(Module):
    """Stochastic pooling (Zeiler & Fergus 2013) over non-negative activations
    (put it after a ReLU); no PyTorch counterpart.

    With p_i = a_i / sum_j a_j in each window: in training, output a_k for one
    position k drawn with probability p_k from :func:`cnnlab.random.get_rng`
    (reproducible with ``cnnlab.manual_seed``), gradient to that position; in
    eval, output sum_i p_i a_i = sum_i a_i**2 / sum_i a_i with its exact
    gradient (2 a_j - y) / sum_i a_i.  An all-zero window outputs 0 and passes
    no gradient.  Negative inputs raise ``ValueError``.
    (N, C, H, W) -> (N, C, OH, OW), OH = (H - KH) // SH + 1, no padding;
    stride defaults to kernel_size.
    """

    def __init__(self, kernel_size: F.IntPair, stride: F.IntPair | None = None) -> None:
        super().__init__()
        self.kernel_size = F.pair(kernel_size, "kernel_size")
        self.stride = self.kernel_size if stride is None else F.pair(stride, "stride")
        if min(self.kernel_size) < 1 or min(self.stride) < 1:
            raise ValueError(f"StochasticPool2d: kernel_size and stride must be >= 1, got "
                             f"{self.kernel_size}, {self.stride}")

    def forward(self, x: Tensor) -> Tensor:
        return _run(self, F.stochastic_pool2d, x, (3, 4), "(N, C, H, W)", self.kernel_size,
                    self.stride, self.training)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}"


# --------------------------------------------------------------------- adaptive
def _check_output_size(output_size, ndim: int, name: str):
    req = (output_size,) * ndim if output_size is None or isinstance(
        output_size, (int, np.integer)) else tuple(output_size)
    if len(req) != ndim or any(o is not None and (not isinstance(o, (int, np.integer)) or o < 1)
                               for o in req):
        raise ValueError(f"{name}: output_size must be a positive int"
                         f"{' or a pair (None keeps a dimension)' if ndim == 2 else ''}, "
                         f"got {output_size!r}")
    return output_size


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed output size for any input size (the notes,
    004: e.g. ``AdaptiveAvgPool2d(2)`` gives one output per quadrant).  Bin i
    along H covers [floor(i H / OH), ceil((i + 1) H / OH)) (PyTorch's rule), so
    bins overlap when OH does not divide H.  ``None`` in ``output_size`` keeps
    that dimension.  ``AdaptiveAvgPool2d(1)`` is global average pooling (NIN,
    GoogLeNet, 002).  (N, C, H, W) -> (N, C, OH, OW)."""

    def __init__(self, output_size: int | tuple[int | None, int | None]) -> None:
        super().__init__()
        self.output_size = _check_output_size(output_size, 2, "AdaptiveAvgPool2d")

    def forward(self, x: Tensor) -> Tensor:
        return _run(self, F.adaptive_avg_pool2d, x, (3, 4), "(N, C, H, W)", self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveMaxPool2d(Module):
    """Max pooling over the adaptive bins of :class:`AdaptiveAvgPool2d`; ties
    go to the first maximum in scan order.  (N, C, H, W) -> (N, C, OH, OW)."""

    def __init__(self, output_size: int | tuple[int | None, int | None],
                 return_indices: bool = False) -> None:
        super().__init__()
        self.output_size = _check_output_size(output_size, 2, "AdaptiveMaxPool2d")
        self.return_indices = return_indices

    def forward(self, x: Tensor):
        return _run(self, F.adaptive_max_pool2d, x, (3, 4), "(N, C, H, W)", self.output_size,
                    self.return_indices)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveAvgPool1d(Module):
    """Adaptive average pooling along L, (N, C, L) -> (N, C, output_size)."""

    def __init__(self, output_size: int) -> None:
        super().__init__()
        self.output_size = _check_output_size(output_size, 1, "AdaptiveAvgPool1d")

    def forward(self, x: Tensor) -> Tensor:
        return _run(self, F.adaptive_avg_pool1d, x, (2, 3), "(N, C, L)", self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveMaxPool1d(Module):
    """Adaptive max pooling along L, (N, C, L) -> (N, C, output_size)."""

    def __init__(self, output_size: int, return_indices: bool = False) -> None:
        super().__init__()
        self.output_size = _check_output_size(output_size, 1, "AdaptiveMaxPool1d")
        self.return_indices = return_indices

    def forward(self, x: Tensor):
        return _run(self, F.adaptive_max_pool1d, x, (2, 3), "(N, C, L)", self.output_size,
                    self.return_indices)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


# ------------------------------------------------------------------ subsampling
class Subsample2d(Module):
    """LeNet's trainable subsampling (Bouvrie's notes, 002): per map c,

        y_c = weight_c * down(x_c) + bias_c,   down = sum over each n x n block

    (the notes' beta_j is ``weight``, b_j is ``bias``).  Parameters: ``weight``
    (channels,) initialised to 1 (so it starts as sum pooling) and ``bias``
    (channels,) initialised to 0.  Gradients (the notes): dbeta_c =
    sum(delta_c o down(x_c)), db_c = sum(delta_c), dx = beta_c up(delta_c).
    Blocks do not overlap; leftover rows and columns are dropped.  With
    weight = 1 / n**2 and bias = 0 it equals ``AvgPool2d(n)``.  LeNet-5 follows
    it with a sigmoid/tanh; add that as a separate layer.  No PyTorch counterpart.
    (N, channels, H, W) -> (N, channels, H // KH, W // KW).
    """

    def __init__(self, channels: int, kernel_size: F.IntPair, bias: bool = True,
                 dtype=DEFAULT_DTYPE) -> None:
        super().__init__()
        if channels < 1:
            raise ValueError(f"Subsample2d: channels must be >= 1, got {channels}")
        self.channels = channels
        self.kernel_size = F.pair(kernel_size, "kernel_size")
        if min(self.kernel_size) < 1:
            raise ValueError(f"Subsample2d: kernel_size must be >= 1, got {self.kernel_size}")
        self.weight = Parameter(np.empty(channels, dtype=dtype))
        if bias:
            self.bias = Parameter(np.empty(channels, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.weight.data[...] = 1
        if self.bias is not None:
            self.bias.data[...] = 0

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim not in (3, 4) or x.shape[-3] != self.channels:
            raise ValueError(f"{self!r} expects input (N, {self.channels}, H, W), got {x.shape}")
        return _run(self, F.subsample2d, x, (3, 4), f"(N, {self.channels}, H, W)", self.weight,
                    self.bias, self.kernel_size)

    def extra_repr(self) -> str:
        return (f"{self.channels}, kernel_size={self.kernel_size}"
                + (", bias=False" if self.bias is None else ""))


__all__ = ["AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d",
           "AvgPool1d", "AvgPool2d", "DistanceWeightedPool2d", "LPPool1d", "LPPool2d", "MaxPool1d",
           "MaxPool2d", "StochasticPool2d", "Subsample2d"]
