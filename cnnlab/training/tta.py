"""Test-time augmentation: average the softmax over flipped and shifted views.

AlexNet predicts on ten 224 patches of a test image (the four corners and
the centre, and their mirror images) and averages the softmax outputs.  Here
the views keep the model's input size: the identity, optionally its
horizontal mirror, and optionally four copies shifted by ``padding`` pixels
diagonally (pad every side by ``padding``, cut the four corner windows of the
original size), so a model trained on ``H × W`` inputs sees ``H × W`` inputs.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from cnnlab.autograd.tensor import Tensor, no_grad
from cnnlab.data.augment import crop_padding, pad_images
from cnnlab.kernels.activation import softmax_forward
from cnnlab.nn.module import Module
from cnnlab.training.config import TrainConfig
from cnnlab.training.loop import inference_model, main_logits

__all__ = ["evaluate_tta", "predict_tta", "tta_options", "tta_views"]

# Datasets whose labels survive a horizontal mirror: clothes do, digits do not.
FLIP_SAFE = {"fashion-mnist"}

_CROPS = (None, "five", "ten")


def tta_views(x: np.ndarray, flips: bool = True, crops: str | None = None, padding: int = 2,
              padding_mode: str = "edge", fill: float = 0.0) -> list[np.ndarray]:
    """The test-time views of a batch, each of the batch's shape.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    flips : bool
        Add the horizontal mirror ``v[..., ::-1]`` of every view.
    crops : {None, 'five', 'ten'}
        ``None``: the identity only.  ``'five'``: the identity (the centre
        crop of the padded image) and the four corner crops of ``x`` padded
        by ``padding`` -- shifts by ``(±padding, ±padding)``.  ``'ten'``:
        ``'five'`` with flips, whatever ``flips`` says.
    padding : int
        Shift of the corner views, in pixels (positive when ``crops`` is set).
    padding_mode : {'edge', 'constant', 'reflect', 'symmetric'}
        How the shifted-in border is filled.  The default ``'edge'`` repeats
        the border pixels: a loader's batches are usually already normalised,
        where a constant 0 would be the *mean* intensity, not the background.
    fill : float
        The value for ``padding_mode='constant'``.

    Returns
    -------
    list of ndarray, each (N, C, H, W): ``[identity, (mirror), corners..., (their mirrors)]``.
    """
    if crops not in _CROPS:
        raise ValueError(f"tta_views: crops must be None, 'five' or 'ten', got {crops!r}")
    if x.ndim != 4:
        raise ValueError(f"tta_views: expected (N, C, H, W) input, got shape {x.shape}")
    base = [x]
    if crops is not None:
        if isinstance(padding, bool) or not isinstance(padding, (int, np.integer)) or padding <= 0:
            raise ValueError(f"tta_views: crops={crops!r} needs a positive int padding, got {padding!r}")
        p = int(padding)
        H, W = x.shape[-2:]
        xp = pad_images(x, (p, p, p, p), fill, padding_mode)
        base += [np.ascontiguousarray(xp[..., t:t + H, s:s + W])
                 for t, s in ((0, 0), (0, 2 * p), (2 * p, 0), (2 * p, 2 * p))]
    if flips or crops == "ten":
        return [v for b in base for v in (b, np.ascontiguousarray(b[..., ::-1]))]
    return base


def predict_tta(model: Module, x: np.ndarray | Tensor, flips: bool = True, crops: str | None = None,
                padding: int = 2, padding_mode: str = "edge", fill: float = 0.0,
                batch_size: int = 256, fold_bn: bool = True) -> np.ndarray:
    """Mean softmax probabilities over the test-time views of each sample.

    Parameters
    ----------
    model : Module
        Run in eval mode without a graph (its mode is restored afterwards).
        A multi-head output (GoogLeNet) contributes its main logits.
    x : ndarray or Tensor, shape (N, C, H, W)
        Model-ready inputs (after Pad / Resize / Normalize).
    flips, crops, padding, padding_mode, fill
        The views, see :func:`tta_views`.
    batch_size : int
        Samples per forward pass.
    fold_bn : bool
        Run the model with its batch norm folded into the convolutions
        (:func:`~cnnlab.training.loop.inference_model`).

    Returns
    -------
    ndarray, float64, shape (N, K)
        ``mean over views v of softmax(model(v(x)))``; rows sum to 1.
    """
    arr = x.data if isinstance(x, Tensor) else np.asarray(x)
    if arr.ndim != 4:
        raise ValueError(f"predict_tta: expected (N, C, H, W) input, got shape {arr.shape}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
        raise ValueError(f"predict_tta: batch_size must be a positive int, got {batch_size!r}")
    was_training = model.training
    model.eval()
    chunks = []
    try:
        net = inference_model(model, arr, fold_bn) if len(arr) else model
        with no_grad():
            for i in range(0, len(arr), batch_size):
                views = tta_views(arr[i:i + batch_size], flips, crops, padding, padding_mode, fill)
                total = sum(softmax_forward(main_logits(net(Tensor(v))).data.astype(np.float64), axis=1)
                            for v in views)
                chunks.append(total / len(views))
    finally:
        model.train(was_training)
    if not chunks:
        raise ValueError("predict_tta: empty input")
    return np.concatenate(chunks)


def evaluate_tta(model: Module, loader: Iterable[tuple[Tensor, Tensor]], flips: bool = True,
                 crops: str | None = None, padding: int = 2, padding_mode: str = "edge",
                 fill: float = 0.0, fold_bn: bool = True) -> float:
    """Accuracy of the argmax of :func:`predict_tta` over a loader's batches.

    Parameters
    ----------
    model : Module
    loader : iterable of (x Tensor (B, C, H, W), y Tensor (B,))
        Typically the test :class:`~cnnlab.data.DataLoader` (no augmentation).
    flips, crops, padding, padding_mode, fill
        See :func:`tta_views`.
    fold_bn : bool
        As in :func:`predict_tta` (folded once, on the first batch).

    Returns
    -------
    float
        Fraction of samples whose averaged prediction equals the label.
    """
    correct, seen = 0, 0
    net = None
    for x, y in loader:
        net = inference_model(model, x, fold_bn) if net is None else net   # once, not per batch
        probs = predict_tta(net, x, flips, crops, padding, padding_mode, fill,
                            batch_size=max(1, len(x.data)), fold_bn=False)
        target = y.data if isinstance(y, Tensor) else np.asarray(y)
        correct += int((probs.argmax(axis=1) == target).sum())
        seen += len(target)
    if seen == 0:
        raise ValueError("evaluate_tta: the loader produced no batches")
    return correct / seen


def tta_options(cfg: TrainConfig, spec: dict, normalize: dict | None) -> dict[str, Any]:
    """The test-time views matching a run's training augmentation (``evaluate_tta`` keywords).

    Shifted views only when the training batches were randomly shifted (any
    ``augment`` preset): by the training crop's padding, scaled to the model's
    input size, with the raw background 0 (normalised) shifted in, as in
    training.  Mirrors only when training flipped too and the dataset's labels
    survive a mirror (:data:`FLIP_SAFE`).  With ``augment='none'`` there is
    no view but the identity, so the TTA accuracy equals the plain one (views
    a model never saw in training lower its accuracy: a 1-pixel shift of an
    8x8 digit is 12% of its width)."""
    if cfg.augment == "none":
        return {"flips": False, "crops": None}
    inp = spec["input"]
    padding = max(1, int(round(crop_padding(inp["from"]) * inp["to"] / inp["from"])))
    fill = -normalize["mean"] / normalize["std"] if normalize else 0.0
    return {"flips": cfg.dataset in FLIP_SAFE and cfg.augment != "crop", "crops": "five",
            "padding": padding, "padding_mode": "constant", "fill": fill}
