"""Weights from other frameworks: PyTorch state dicts, ``.safetensors`` and ``.pth`` files.

cnnlab's module names and parameter shapes follow torchvision, so a torchvision
state dict maps one to one onto the cnnlab model of the same architecture::

    from cnnlab.interop import load_weights
    model = cnnlab.models.resnet18()
    load_weights(model, "resnet18.safetensors")     # or .pth / .pt, or cnnlab's own .npz

* :func:`load_torch_state_dict` copies a mapping of torchvision-style names to
  arrays (NumPy arrays, cnnlab Tensors or torch tensors) into a model and
  reports missing and unexpected keys as ``torch.nn.Module.load_state_dict``
  does, but writes nothing at all unless every key is acceptable.
* :func:`load_safetensors` / :func:`save_safetensors` implement the
  safetensors format in plain Python and NumPy (the ``safetensors`` package is
  not needed), validating every field of a file before trusting it.
* :func:`load_pth` reads ``torch.save`` files with ``weights_only=True``, so no
  pickled code can run; it needs PyTorch, which this module only imports when
  such a file is actually read.
* :func:`load_weights` picks the reader from the file extension.

One module per job: :mod:`~cnnlab.interop.state_dict` (copying into a model),
:mod:`~cnnlab.interop.safetensors` and :mod:`~cnnlab.interop.pth` (the file
formats), :mod:`~cnnlab.interop.weights` (the dispatch by extension), with the
conversion of values to ndarrays in :mod:`~cnnlab.interop.arrays`.
"""
from __future__ import annotations

from cnnlab.interop.pth import TorchCheckpointError, load_pth
from cnnlab.interop.safetensors import (
    MAX_HEADER_BYTES,  # noqa: F401 -- the formats' constants stay reachable as cnnlab.interop.X
    METADATA_KEY,  # noqa: F401
    SafetensorsError,
    load_safetensors,
    safetensors_metadata,
    save_safetensors,
)
from cnnlab.interop.state_dict import (
    DATA_PARALLEL_PREFIX,  # noqa: F401
    NESTED_KEYS,  # noqa: F401
    IncompatibleKeys,
    StateDictError,
    load_torch_state_dict,
)
from cnnlab.interop.weights import CNNLAB_MODEL_PREFIX, load_weights  # noqa: F401

__all__ = [
    "IncompatibleKeys", "SafetensorsError", "StateDictError", "TorchCheckpointError",
    "load_pth", "load_safetensors", "load_torch_state_dict", "load_weights",
    "safetensors_metadata", "save_safetensors",
]
