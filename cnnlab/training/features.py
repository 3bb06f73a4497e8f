"""A trained CNN as a fixed feature extractor: the "CNN codes" of a layer.

The notes (001, 002): take a network trained on a large dataset, remove the
last fully connected layer, and use the activations of the layer before it
(AlexNet's 4096-d codes) as a fixed representation of each image; apply ReLU
to them (thresholded codes) and train a linear classifier on top
(:mod:`cnnlab.training.linear`).
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from cnnlab.autograd.tensor import Tensor, no_grad
from cnnlab.nn.capture import capture_outputs, layer_names
from cnnlab.nn.module import Module
from cnnlab.serialization import atomic_write

__all__ = ["extract_features", "load_codes", "save_codes"]


def extract_features(model: Module, layer: str, loader: Iterable[tuple[Tensor, Tensor]],
                     relu: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The output of submodule ``layer`` for every sample of ``loader``, flattened.

    Parameters
    ----------
    model : Module
        Run in eval mode (dropout off, BatchNorm on running statistics) without
        a graph; its mode is restored afterwards.
    layer : str
        Dotted submodule name (``"classifier.2"``, ``"features"``; see
        :func:`cnnlab.nn.capture.layer_names`).
    loader : iterable of (x Tensor (B, C, H, W), y Tensor (B,))
        Model-ready batches (a :class:`~cnnlab.data.DataLoader` with the
        model's input transform), in the order the codes are wanted.
    relu : bool
        Apply ``max(0, .)`` to the codes (the notes' thresholded codes).

    Returns
    -------
    codes : ndarray, float32, shape (N, D)
        ``D`` is the product of the layer's output shape without the batch axis.
    labels : ndarray, int64, shape (N,)

    Raises
    ------
    ValueError
        If ``layer`` is not a submodule name of ``model`` (the message lists them),
        or the loader is empty.
    """
    names = layer_names(model)
    if layer not in names:
        raise ValueError(f"extract_features: {type(model).__name__} has no layer {layer!r}; "
                         f"layers: {', '.join(names)}")
    was_training = model.training
    model.eval()
    codes, labels = [], []
    try:
        with no_grad(), capture_outputs(model, [layer]) as seen:
            for x, y in loader:
                model(x)
                out = np.asarray(seen[layer])
                codes.append(out.reshape(len(out), -1).astype(np.float32, copy=False))
                labels.append(np.asarray(y.data if isinstance(y, Tensor) else y, dtype=np.int64))
    finally:
        model.train(was_training)
    if not codes:
        raise ValueError("extract_features: the loader produced no batches")
    c = np.concatenate(codes)
    if relu:
        np.maximum(c, 0, out=c)
    return c, np.concatenate(labels)


def save_codes(path: str | os.PathLike, codes: np.ndarray, labels: np.ndarray, layer: str,
               **info: str) -> Path:
    """Write ``codes`` (N, D), ``labels`` (N,) and the layer name to an ``.npz``,
    atomically and without pickle (the strings are stored as unicode arrays);
    ``info`` adds more string fields (e.g. ``source``, ``dataset``, ``split``)."""
    path = Path(path)
    arrays = {"codes": np.asarray(codes, dtype=np.float32), "labels": np.asarray(labels, dtype=np.int64),
              "layer": np.array(layer)}
    arrays.update({k: np.array(str(v)) for k, v in info.items()})
    if arrays["codes"].ndim != 2 or len(arrays["codes"]) != len(arrays["labels"]):
        raise ValueError(f"save_codes: expected codes (N, D) and labels (N,), got "
                         f"{arrays['codes'].shape} and {arrays['labels'].shape}")
    with atomic_write(path, follow_symlinks=True) as f:   # the caller named the path
        np.savez(f, **arrays)
    return path


def load_codes(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, str]:
    """Read a file written by :func:`save_codes`: ``(codes, labels, layer)``."""
    with np.load(path, allow_pickle=False) as z:
        missing = {"codes", "labels"} - set(z.files)
        if missing:
            raise ValueError(f"{path}: not a codes file (missing {sorted(missing)}; has {z.files})")
        layer = str(z["layer"]) if "layer" in z.files else ""
        return z["codes"], z["labels"], layer
