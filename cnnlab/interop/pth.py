"""Reading ``torch.save`` files (``.pth`` / ``.pt``) safely: :func:`load_pth`.

PyTorch is needed to read the format; it is imported only when a file is read.
"""
from __future__ import annotations

import importlib
import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cnnlab._files import UnsafePathError, check_readable_file
from cnnlab.interop.arrays import _torch_to_numpy, sniff_format

__all__ = ["TorchCheckpointError", "load_pth"]


class TorchCheckpointError(ValueError):
    """A ``.pth`` / ``.pt`` file cannot be read safely: it is corrupt, holds
    something other than tensors in plain containers (refused by
    ``weights_only=True``), or is not a mapping of weights."""


def load_pth(path: str | os.PathLike) -> dict[str, Any]:
    """Read a file written by ``torch.save``, safely, as NumPy arrays.

    Uses ``torch.load(path, map_location="cpu", weights_only=True)``: only
    tensors, numbers, strings and plain containers are unpickled, never
    arbitrary objects, so no code in the file can run.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.pth`` / ``.pt`` file.

    Returns
    -------
    dict[str, Any]
        The saved mapping with every tensor replaced by a NumPy array (bfloat16
        upcast to float32) and nested dicts, lists and tuples converted the same
        way; other values (epochs, strings) are kept.

    Raises
    ------
    ImportError
        If PyTorch is not installed (it is needed to read the format).
    FileNotFoundError
        If ``path`` does not exist.
    TorchCheckpointError
        If the file holds objects ``weights_only=True`` refuses, is corrupt,
        or does not hold a mapping.
    """
    path = Path(path)
    try:
        torch = importlib.import_module("torch")
    except ImportError as e:
        raise ImportError(f"reading {path} needs PyTorch, which is not installed ({e}); "
                          f"install torch, or convert the file to .safetensors where torch is "
                          f"available and load that") from e
    try:
        check_readable_file(path, "PyTorch checkpoint")
    except UnsafePathError as e:
        raise TorchCheckpointError(str(e)) from None
    kind = sniff_format(path)
    if kind in ("safetensors", "npz"):    # a misnamed file: say what it is, not "unsafe pickle"
        raise TorchCheckpointError(f"{path}: by its first bytes a {kind} file, not one written by "
                                   "torch.save; cnnlab.interop.load_weights reads it by its content")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise TorchCheckpointError(
            f"{path}: refused: the file holds pickled objects other than tensors and plain "
            f"containers, and it is only read with weights_only=True so that no code in it can run "
            f"(torch: {_unpickler_reason(e)}). If you trust its source, extract the state dict with "
            f"torch.load(..., weights_only=False) and save that") from e
    except Exception as e:  # noqa: BLE001 -- any damage (zip, storage, pickle stream) is one error
        raise TorchCheckpointError(f"{path}: not a readable PyTorch checkpoint "
                                   f"({type(e).__name__}: {e})") from e
    if not isinstance(obj, Mapping):
        raise TorchCheckpointError(f"{path}: holds a {type(obj).__name__}, not a mapping of weights")
    try:
        return _tree_to_numpy(obj, torch)
    except TorchCheckpointError as e:
        raise TorchCheckpointError(f"{path}: {e}") from None


def _unpickler_reason(e: BaseException) -> str:
    """The line of torch's long weights_only message that names what it refused."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    for line in lines:
        if "Unsupported" in line or "GLOBAL" in line:
            return line[:300]
    return lines[0][:300] if lines else type(e).__name__


def _tree_to_numpy(obj: Any, torch: Any, where: str = "") -> Any:
    if isinstance(obj, torch.Tensor):
        if obj.layout != torch.strided or obj.is_quantized:
            kind = "quantized" if obj.is_quantized else f"{obj.layout} (sparse)".replace("torch.", "")
            raise TorchCheckpointError(f"tensor {where or '(top level)'!r} is {kind}; only dense "
                                       "tensors can be loaded (call .dequantize() or .to_dense() "
                                       "before saving)")
        return _torch_to_numpy(obj)
    if isinstance(obj, Mapping):
        return {k: _tree_to_numpy(v, torch, f"{where}.{k}" if where else str(k)) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_tree_to_numpy(v, torch, f"{where}[{i}]") for i, v in enumerate(obj)]
    return obj
