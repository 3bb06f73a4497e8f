"""Loading a weights file of any supported format into a model: :func:`load_weights`."""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from cnnlab._files import check_readable_file
from cnnlab.interop.arrays import sniff_format
from cnnlab.interop.pth import load_pth
from cnnlab.interop.safetensors import load_safetensors
from cnnlab.interop.state_dict import IncompatibleKeys, _load_state
from cnnlab.nn.module import Module
from cnnlab.serialization import load_arrays

__all__ = ["load_weights"]

# The prefix cnnlab's training checkpoints (cnnlab.training.checkpoint) put on model weights.
CNNLAB_MODEL_PREFIX = "model/"


def load_weights(model: Module, path: str | os.PathLike, strict: bool = True) -> IncompatibleKeys:
    """Load the weights in ``path`` into ``model``, choosing the reader by the file's
    first bytes (:func:`~cnnlab.interop.arrays.sniff_format`), the extension only
    when those say nothing.

    Parameters
    ----------
    model : Module
        The cnnlab model.
    path : str or os.PathLike
        ``.safetensors`` (:func:`load_safetensors`), ``.pth`` / ``.pt``
        (:func:`load_pth`; needs PyTorch), or cnnlab's own ``.npz``
        (``cnnlab.serialization.load_arrays``: a ``cnnlab.save`` state dict, or
        a training checkpoint / model file whose weights are under ``"model/"``).
    strict : bool
        As :func:`load_torch_state_dict`.

    Returns
    -------
    IncompatibleKeys

    Raises
    ------
    ValueError
        For an extension not listed above.
    FileNotFoundError, SafetensorsError, TorchCheckpointError, cnnlab.CheckpointError, ImportError
        From the reader.
    StateDictError
        From :func:`load_torch_state_dict`, naming the file.
    """
    path = check_readable_file(path, "weights file")
    suffix = path.suffix.lower()
    kind = sniff_format(path)     # by content: a .pth that is really safetensors is read as such
    if kind == "safetensors" or (kind == "unknown" and suffix == ".safetensors"):
        state: Mapping[str, Any] = load_safetensors(path)
    elif kind in ("torch-zip", "pickle") or (kind == "unknown" and suffix in (".pth", ".pt")):
        state = load_pth(path)
    elif kind == "npz" or suffix == ".npz":
        arrays, _ = load_arrays(path)
        n = len(CNNLAB_MODEL_PREFIX)
        model_arrays = {k[n:]: v for k, v in arrays.items() if k.startswith(CNNLAB_MODEL_PREFIX)}
        state = model_arrays if model_arrays else arrays
    else:
        raise ValueError(f"load_weights: cannot tell the format of {path} from its first bytes or "
                         f"its extension {suffix or '(none)'!r}; expected safetensors, a torch.save "
                         "file (.pth, .pt) or cnnlab's .npz")
    return _load_state(model, state, strict, source=str(path))
