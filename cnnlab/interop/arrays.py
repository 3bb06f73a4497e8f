"""Values of a state dict as ndarrays: NumPy arrays, cnnlab Tensors and torch tensors alike.

torch is never imported here: a torch tensor is recognised by its
``detach`` / ``cpu`` / ``numpy`` methods.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from cnnlab.autograd.tensor import Tensor


def _as_array(value: Any) -> np.ndarray:
    """An ndarray from an ndarray, a cnnlab Tensor, a torch tensor or a number."""
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, Tensor):
        return value.data
    if hasattr(value, "detach") and hasattr(value, "cpu") and hasattr(value, "numpy"):
        return _torch_to_numpy(value)
    if isinstance(value, (np.generic, int, float, bool)):
        return np.asarray(value)
    raise TypeError(f"got {type(value).__name__}")


def _torch_to_numpy(t: Any) -> np.ndarray:
    """``t.detach().cpu().numpy()``, upcasting to float32 the dtypes NumPy lacks (bfloat16, float8)."""
    t = t.detach().cpu()
    try:
        return t.numpy()
    except TypeError:   # "Got unsupported ScalarType BFloat16"
        if not t.is_floating_point():
            raise
        return t.float().numpy()
