"""Devices and dtypes with PyTorch's names.

cnnlab runs on the CPU only.  ``cnnlab.device("cpu")`` exists so that code
written as ``model.to(device)`` runs unchanged; asking for any other device
(``"cuda"``, ``"mps"``) raises :class:`DeviceError`, which says so.  The dtypes
are NumPy's (``cnnlab.float32 is numpy.float32``, :data:`DTYPES`), so ``x.dtype == cnnlab.float32``
holds for a Tensor whose ``dtype`` is ``np.dtype('float32')``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

DTYPES: dict[str, type] = {
    "float32": np.float32, "float": np.float32, "float64": np.float64, "double": np.float64,
    "float16": np.float16, "half": np.float16, "int64": np.int64, "long": np.int64,
    "int32": np.int32, "int": np.int32, "int16": np.int16, "short": np.int16, "int8": np.int8,
    "uint8": np.uint8, "bool": np.bool_,
}
"""torch's dtype names (``torch.long``, ``torch.float``...) and the NumPy types they are."""


class DeviceError(ValueError):
    """A device other than the CPU was asked for."""


class device:  # noqa: N801 -- torch.device's name
    """``cnnlab.device("cpu")``; ``"cpu:0"`` and ``device("cpu", 0)`` also work."""

    def __init__(self, type: str | device, index: int | None = None) -> None:  # noqa: A002
        if isinstance(type, device):
            type, index = type.type, type.index
        if not isinstance(type, str):
            raise TypeError(f"device() expects a string such as 'cpu', got {type!r}")
        name, _, idx = type.partition(":")
        if name != "cpu":
            raise DeviceError(
                f"device {type!r} is not available: cnnlab runs on the CPU only (NumPy); "
                "use 'cpu', or cnnlab.cuda.is_available() to pick the device in portable code")
        if idx:
            index = int(idx)
        self.type = "cpu"
        self.index = index

    def __repr__(self) -> str:
        index = "" if self.index is None else f", index={self.index}"
        return f"device(type='cpu'{index})"

    def __str__(self) -> str:
        return "cpu" if self.index is None else f"cpu:{self.index}"

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, str):
            other = device(other)
        return isinstance(other, device) and other.type == self.type

    def __hash__(self) -> int:
        return hash(self.type)


CPU = device("cpu")


def is_device_spec(value: Any) -> bool:
    """True for what ``to()`` should read as a device: a string naming no dtype,
    a :class:`device`, or an object with a ``type`` string (a ``torch.device``)."""
    if isinstance(value, device):
        return True
    if isinstance(value, str):
        return value not in DTYPES
    return isinstance(getattr(value, "type", None), str) and not isinstance(value, np.dtype)


def check_device(value: Any) -> device:
    """The CPU device for ``value``, or :class:`DeviceError` for any other device."""
    if isinstance(value, device):
        return value
    if not isinstance(value, str):
        value = str(value)               # a torch.device prints as 'cuda:0', 'cpu'
    return device(value)


def as_dtype(value: Any) -> np.dtype:
    """A NumPy dtype from a dtype, a NumPy type, a name ('float64') or a torch dtype."""
    if isinstance(value, str) and value in DTYPES:
        return np.dtype(DTYPES[value])
    name = str(value)
    if name.startswith("torch."):
        return as_dtype(name[len("torch."):])
    try:
        return np.dtype(value)
    except TypeError as e:
        raise TypeError(f"{value!r} is not a dtype") from e


def parse_to_args(args: tuple[Any, ...], kwargs: dict[str, Any], tensor_type: type,
                  owner: str) -> tuple[Any, bool]:
    """Read PyTorch's ``to(device)``, ``to(dtype)``, ``to(device, dtype)``,
    ``to(tensor)`` and keywords into ``(dtype or None, copy)``, checking the device
    (any but the CPU raises :class:`DeviceError`)."""
    kwargs = dict(kwargs)
    dtype = kwargs.pop("dtype", None)
    dev = kwargs.pop("device", None)
    copy = bool(kwargs.pop("copy", False))
    for ignored in ("non_blocking", "memory_format"):
        kwargs.pop(ignored, None)
    if kwargs:
        raise TypeError(f"{owner}.to() got unexpected keyword arguments {sorted(kwargs)}")
    for arg in args:
        if isinstance(arg, tensor_type):
            dtype = arg.dtype
        elif arg is None or isinstance(arg, (bool, np.bool_)):
            continue
        elif is_device_spec(arg):
            dev = arg
        else:
            dtype = arg
    if dev is not None:
        check_device(dev)
    return dtype, copy
