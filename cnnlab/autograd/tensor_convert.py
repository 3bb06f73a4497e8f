"""Conversions, comparisons, device moves and in-place updates of
:class:`~cnnlab.autograd.tensor.Tensor`, with PyTorch's names.

In-place methods (``add_``, ``mul_``, ``zero_``, ``fill_``, ``copy_``...) write
into ``.data`` and return the tensor.  As in PyTorch they are refused on a leaf
that requires a gradient while gradients are being recorded (do them under
``cnnlab.no_grad()``, as initialisation and hand-written updates do).  cnnlab's
graph keeps no version counters, so they are also refused on any tensor that is
part of a recorded graph, where PyTorch would sometimes allow them.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from cnnlab.autograd import basic as _basic
from cnnlab.autograd.device import CPU, as_dtype, check_device, device, parse_to_args

if TYPE_CHECKING:
    from cnnlab.autograd.tensor import Tensor


def _other_array(other: Any) -> Any:
    from cnnlab.autograd.tensor import Tensor

    return other.data if isinstance(other, Tensor) else other


class ConversionMethods:
    """Mixed into ``Tensor``; ``self`` is a Tensor."""

    data: np.ndarray

    # ------------------------------------------------------------ dtypes
    def astype(self: Tensor, dtype: Any) -> Tensor:
        """Cast to ``dtype``; a floating result stays in the graph, an integer or
        boolean one is cut from it (it cannot carry a gradient)."""
        from cnnlab.autograd.tensor import Tensor

        dt = as_dtype(dtype)
        if np.issubdtype(dt, np.floating):
            if dt == self.dtype:
                return self
            return _basic.Cast.apply(self, dtype=dt)
        return Tensor(self.data.astype(dt))

    def type(self: Tensor, dtype: Any = None) -> Any:
        """With no argument the dtype's name; else :meth:`astype`."""
        if dtype is None:
            return str(self.dtype)
        return self.astype(dtype)

    def type_as(self: Tensor, other: Tensor) -> Tensor:
        return self.astype(other.dtype)

    def float(self: Tensor) -> Tensor:
        return self.astype(np.float32)

    def double(self: Tensor) -> Tensor:
        return self.astype(np.float64)

    def half(self: Tensor) -> Tensor:
        return self.astype(np.float16)

    def long(self: Tensor) -> Tensor:
        return self.astype(np.int64)

    def int(self: Tensor) -> Tensor:
        return self.astype(np.int32)

    def bool(self: Tensor) -> Tensor:
        return self.astype(np.bool_)

    def is_floating_point(self: Tensor) -> bool:
        return bool(np.issubdtype(self.dtype, np.floating))

    # ------------------------------------------------------------ devices
    @property
    def device(self: Tensor) -> device:
        return CPU

    @property
    def is_cuda(self: Tensor) -> bool:
        return False

    def to(self: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        """``to(device)``, ``to(dtype)``, ``to(device, dtype)``, ``to(other_tensor)``;
        ``non_blocking``/``copy``/``memory_format`` are accepted.  Any device but
        the CPU raises :class:`~cnnlab.autograd.device.DeviceError`."""
        from cnnlab.autograd.tensor import Tensor

        dtype, copy = parse_to_args(args, kwargs, Tensor, "Tensor")
        out = self if dtype is None else self.astype(dtype)
        return out.clone() if copy and out is self else out

    def cpu(self: Tensor) -> Tensor:
        return self

    def cuda(self: Tensor, device: Any = None, non_blocking: bool = False) -> Tensor:
        check_device("cuda" if device is None else device)
        return self   # not reached: check_device refuses every GPU

    # ------------------------------------------------------------ values
    def numpy(self: Tensor, *, force: bool = False) -> np.ndarray:
        """The underlying array (shared, not copied), like ``Tensor.numpy()``."""
        return self.data

    def item(self: Tensor) -> Any:
        """The value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise RuntimeError(f"a Tensor with {self.data.size} elements cannot be converted "
                               "to Scalar")
        return self.data.item()

    def tolist(self: Tensor) -> Any:
        return self.data.tolist()

    def __float__(self: Tensor) -> float:
        return float(self.item())

    def __int__(self: Tensor) -> int:
        return int(self.item())

    def __index__(self: Tensor) -> int:
        if not np.issubdtype(self.dtype, np.integer):
            raise TypeError(f"only integer tensors of a single element can be converted to an "
                            f"index, got dtype {self.dtype}")
        return int(self.item())

    # ------------------------------------------------------------ comparisons
    def eq(self: Tensor, other: Any) -> Tensor:
        return self == other

    def ne(self: Tensor, other: Any) -> Tensor:
        return self != other

    def lt(self: Tensor, other: Any) -> Tensor:
        return self < other

    def le(self: Tensor, other: Any) -> Tensor:
        return self <= other

    def gt(self: Tensor, other: Any) -> Tensor:
        return self > other

    def ge(self: Tensor, other: Any) -> Tensor:
        return self >= other

    def equal(self: Tensor, other: Tensor) -> bool:
        """True when the shapes and every value are equal (``torch.equal``)."""
        return self.shape == other.shape and bool(np.array_equal(self.data, other.data))

    # ------------------------------------------------------------ in place
    def _check_in_place(self: Tensor, op: str) -> None:
        from cnnlab.autograd.tensor import is_grad_enabled

        if not is_grad_enabled():
            return
        if self.requires_grad and self.is_leaf:
            raise RuntimeError(
                f"{op}: a leaf Variable that requires grad is being used in an in-place "
                "operation (do it inside `with cnnlab.no_grad():`, as in PyTorch)")
        if self.requires_grad:
            raise RuntimeError(
                f"{op}: in-place operations on a tensor that is part of a recorded graph are not "
                "supported in cnnlab; write it out of place (x = x + y) or detach() first")

    def _write(self: Tensor, op: str, values: Any) -> Tensor:
        values = np.asarray(values)
        if not np.can_cast(values.dtype, self.dtype, casting="same_kind") and values.ndim:
            raise RuntimeError(f"{op}: result type {values.dtype} can't be cast to the desired "
                               f"output type {self.dtype}")
        try:
            target = np.broadcast_shapes(values.shape, self.shape)
        except ValueError:
            target = None
        if target != self.shape:
            raise RuntimeError(f"{op}: output with shape {list(self.shape)} doesn't match the "
                               f"broadcast shape of the operands ({list(values.shape)})")
        self.data[...] = values
        return self

    def add_(self: Tensor, other: Any, *, alpha: float = 1) -> Tensor:
        """``self += alpha * other``."""
        self._check_in_place("add_")
        o = _other_array(other)
        return self._write("add_", self.data + (o if alpha == 1 else alpha * np.asarray(o)))

    def sub_(self: Tensor, other: Any, *, alpha: float = 1) -> Tensor:
        self._check_in_place("sub_")
        o = _other_array(other)
        return self._write("sub_", self.data - (o if alpha == 1 else alpha * np.asarray(o)))

    def mul_(self: Tensor, other: Any) -> Tensor:
        self._check_in_place("mul_")
        return self._write("mul_", self.data * _other_array(other))

    def div_(self: Tensor, other: Any) -> Tensor:
        self._check_in_place("div_")
        return self._write("div_", self.data / _other_array(other))

    def clamp_(self: Tensor, min: float | None = None, max: float | None = None) -> Tensor:  # noqa: A002
        self._check_in_place("clamp_")
        return self._write("clamp_", np.clip(self.data, min, max))

    def zero_(self: Tensor) -> Tensor:
        self._check_in_place("zero_")
        self.data[...] = 0
        return self

    def fill_(self: Tensor, value: Any) -> Tensor:
        self._check_in_place("fill_")
        return self._write("fill_", np.asarray(_other_array(value), dtype=self.dtype))

    def copy_(self: Tensor, src: Any, non_blocking: bool = False) -> Tensor:
        """Copy ``src``'s values (broadcast, cast to this tensor's dtype) into this tensor."""
        self._check_in_place("copy_")
        src_arr = np.asarray(_other_array(src))
        return self._write("copy_", src_arr.astype(self.dtype, copy=False))

    def normal_(self: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
        """Fill from N(mean, std²) drawn from cnnlab's seeded generator."""
        from cnnlab.random import get_rng

        self._check_in_place("normal_")
        return self._write("normal_", get_rng().normal(mean, std, size=self.shape))

    def uniform_(self: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
        """Fill from U(a, b) drawn from cnnlab's seeded generator."""
        from cnnlab.random import get_rng

        self._check_in_place("uniform_")
        return self._write("uniform_", get_rng().uniform(a, b, size=self.shape))
