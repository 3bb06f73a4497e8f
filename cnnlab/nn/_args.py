"""Argument helpers shared by the functional ops and the layers: pairs, tensors,
dtype checks, the checks of a sliding window's settings, and errors that name the layer."""
from __future__ import annotations

import contextlib
from typing import Any, Iterator, Sequence

import numpy as np

from cnnlab.autograd.device import check_device
from cnnlab.autograd.tensor import Tensor

IntPair = int | Sequence[int]

PADDING_MODES = ("valid", "same", "full")


def pair(v: IntPair, name: str) -> tuple[int, int]:
    if isinstance(v, (int, np.integer)):
        out = (int(v), int(v))
    else:
        ok = isinstance(v, (tuple, list)) and all(isinstance(a, (int, np.integer))
                                                  and not isinstance(a, bool) for a in v)
        if not ok:
            raise TypeError(f"{name} must be an int or a pair of ints, got {v!r}")
        if len(v) != 2:
            raise ValueError(f"{name} must be an int or a pair of ints, got {v!r}")
        t = tuple(int(a) for a in v)
        out = (t[0], t[1])
    return out


def single(v: int | Sequence[int], name: str, op: str) -> int:
    """An int, or the int in a 1-tuple (the 1-D layers' kernel_size, stride, ...)."""
    if isinstance(v, (int, np.integer)):
        return int(v)
    t = tuple(int(a) for a in v)
    if len(t) != 1:
        raise ValueError(f"{op}: {name} must be an int or a 1-tuple, got {v!r}")
    return t[0]


def check_cpu(device: Any) -> None:
    """A layer's ``device=`` argument: None or the CPU (``DeviceError`` otherwise)."""
    if device is not None:
        check_device(device)


def as_tensor(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def check_same_dtype(op: str, *tensors: Tensor | None) -> None:
    dtypes = {t.dtype for t in tensors if t is not None}
    if len(dtypes) > 1:
        raise TypeError(
            f"{op}: all inputs must share one dtype, got {sorted(str(d) for d in dtypes)}; "
            "convert the model with .float()/.double() or the input with .float()/.double()")


def shown(size: Sequence[int]) -> int | tuple[int, ...]:
    """A size as a message shows it: the int of a 1-D size, the tuple otherwise."""
    return size[0] if len(size) == 1 else tuple(size)


def _listed(items: Sequence[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def check_sizes(op: str, minimum: int, **sizes: Sequence[int]) -> None:
    """Raise unless every entry of every named size is at least ``minimum``.

    Parameters
    ----------
    op : str
        The op or layer the message starts with.
    minimum : int
        1 for kernel_size, stride and dilation, 0 for padding.
    **sizes : tuple of int, one entry per spatial axis

    Raises
    ------
    ValueError
        ``"Conv2d: kernel_size, stride and dilation must be >= 1, got (3, 3), (0, 1) and (1, 1)"``.
    """
    if all(min(v) >= minimum for v in sizes.values()):
        return
    rule = "non-negative" if minimum == 0 else f">= {minimum}"
    raise ValueError(f"{op}: {_listed(list(sizes))} must be {rule}, got "
                     f"{_listed([str(shown(v)) for v in sizes.values()])}")


def check_padding(op: str, padding: Sequence[int] | str, ndim: int) -> None:
    """A convolution's padding: one of :data:`PADDING_MODES`, or one size >= 0 per
    spatial axis (``ndim`` of them)."""
    if not isinstance(padding, str):
        check_sizes(op, 0, padding=padding)
    elif padding.lower() not in PADDING_MODES:
        ints = " or an int" if ndim == 1 else ", an int or a pair"
        raise ValueError(f"{op}: padding must be 'valid', 'same', 'full'{ints}, got {padding!r}")


def check_output_padding(op: str, output_padding: Sequence[int], stride: Sequence[int],
                         dilation: Sequence[int]) -> None:
    """A transposed convolution's output_padding: >= 0 and, per axis, smaller than the
    stride or the dilation (a larger one would add rows no input reaches)."""
    check_sizes(op, 0, output_padding=output_padding)
    if any(o >= max(s, d) for o, s, d in zip(output_padding, stride, dilation)):
        raise ValueError(f"{op}: output_padding {shown(output_padding)} must be smaller than "
                         f"either the stride {shown(stride)} or the dilation {shown(dilation)}")


@contextlib.contextmanager
def errors_naming(layer: Any) -> Iterator[None]:
    """Re-raise a ValueError from inside the block with the layer's repr in front
    (``Conv2d(6, 16, kernel_size=(5, 5), ...): conv2d: input height 4 ...``)."""
    try:
        yield
    except ValueError as e:
        raise ValueError(f"{layer!r}: {e}") from e
