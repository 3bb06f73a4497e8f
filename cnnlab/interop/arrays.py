"""Values of a state dict as ndarrays: NumPy arrays, cnnlab Tensors and torch tensors alike.

torch is never imported here: a torch tensor is recognised by its
``detach`` / ``cpu`` / ``numpy`` methods.
"""
from __future__ import annotations

import os
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


def sniff_format(path: str | os.PathLike) -> str:
    """A weights file's format by its first bytes, not its name: 'safetensors'
    (an 8-byte header length, then '{'), 'npz' (a zip of .npy members, cnnlab's
    own), 'torch-zip' (torch.save's zip, holding data.pkl), 'pickle' (torch's
    legacy format, protocol 2+), else 'unknown'."""
    import zipfile

    with open(path, "rb") as f:
        head = f.read(9)
    if head[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
        except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError):   # damaged or exotic zip
            return "unknown"
        if any(n.endswith("data.pkl") for n in names):
            return "torch-zip"
        return "npz" if any(n.endswith(".npy") for n in names) else "unknown"
    if len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") > 1:
        return "safetensors"
    if len(head) > 1 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "pickle"
    return "unknown"
