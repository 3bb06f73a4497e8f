"""Argument helpers shared by the functional ops: pairs, tensors, dtype checks."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from cnnlab.autograd.tensor import Tensor

IntPair = int | Sequence[int]


def pair(v: IntPair, name: str) -> tuple[int, int]:
    if isinstance(v, (int, np.integer)):
        out = (int(v), int(v))
    else:
        t = tuple(int(a) for a in v)
        if len(t) != 2:
            raise ValueError(f"{name} must be an int or a pair of ints, got {v!r}")
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


def as_tensor(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def check_same_dtype(op: str, *tensors: Tensor | None) -> None:
    dtypes = {t.dtype for t in tensors if t is not None}
    if len(dtypes) > 1:
        raise TypeError(
            f"{op}: all inputs must share one dtype, got {sorted(str(d) for d in dtypes)}; "
            "convert the model with .float()/.double() or the input with .float()/.double()")
