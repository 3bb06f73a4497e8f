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

from cnnlab._files import atomic_write, check_readable_file
from cnnlab.autograd.tensor import Tensor, no_grad
from cnnlab.nn.capture import capture_outputs, layer_names
from cnnlab.nn.module import Module
from cnnlab.serialization import MAX_TOTAL_BYTES

MAX_CLASSES = 100_000

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
    check_readable_file(path, "codes file")
    try:
        arrays = _load_npz(path)
    except ValueError as e:
        raise ValueError(f"{path}: not a readable codes file ({e})") from e
    missing = {"codes", "labels"} - set(arrays)
    if missing:
        raise ValueError(f"{path}: not a codes file (missing {sorted(missing)}; has {sorted(arrays)})")
    codes, labels = arrays["codes"], arrays["labels"]
    layer = str(arrays["layer"]) if "layer" in arrays else ""
    if codes.ndim != 2 or codes.dtype.kind not in "fiu" or len(codes) == 0:
        raise ValueError(f"{path}: codes must be a non-empty (N, D) array of numbers, got "
                         f"{codes.dtype}{list(codes.shape)}")
    if labels.shape != (len(codes),) or labels.dtype.kind not in "iu":
        raise ValueError(f"{path}: labels must be ({len(codes)},) integers, got "
                         f"{labels.dtype}{list(labels.shape)}")
    if labels.min() < 0 or labels.max() >= MAX_CLASSES:
        raise ValueError(f"{path}: labels must lie in [0, {MAX_CLASSES}), got {labels.min()}..{labels.max()}")
    bad = ~np.isfinite(codes).all(axis=1)
    if bad.any():
        raise ValueError(f"{path}: code {int(np.argmax(bad))} (and {int(bad.sum()) - 1} more) holds NaN "
                         "or infinity")
    return codes, labels, layer


def _load_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The arrays of an ``np.savez`` file, without pickle, sizes checked before reading."""
    import zipfile

    with zipfile.ZipFile(path) as zf:
        total = sum(i.file_size for i in zf.infolist())
        if total > MAX_TOTAL_BYTES:
            raise ValueError(f"its arrays declare {total} bytes, over the {MAX_TOTAL_BYTES}-byte limit")
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}
