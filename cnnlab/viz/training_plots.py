"""Pictures of a training run: learning curves, the confusion matrix, and the test
images the model gets wrong.

::

    plot_curves("runs/digits-digits_cnn", "curves.png")
    cm, preds, targets = confusion(model, loader)
    plot_confusion(cm, classes, "confusion.png")
    idx, preds, targets = misclassified(model, loader)
    plot_misclassified(test.x[idx], preds, targets, classes, "wrong.png")
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab.autograd.tensor import Tensor
from cnnlab.nn.module import Module
from cnnlab.plots import plot_history, save_exact, subplots
from cnnlab.training.checkpoint import check_history
from cnnlab.training.loop import confusion_matrix, evaluate
from cnnlab.viz.image import as_hwc, to_unit

__all__ = ["save_exact", "read_history", "plot_curves", "confusion", "plot_confusion", "misclassified",
           "plot_misclassified"]


def read_history(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The per-epoch rows of ``RUN/metrics.jsonl`` (one JSON object per line),
    in file order; blank lines are skipped.

    Raises FileNotFoundError when the run folder has no ``metrics.jsonl`` and
    ValueError naming the line that is not valid JSON or not a metrics row
    (:func:`cnnlab.training.checkpoint.check_history`).
    """
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"read_history: {path} does not exist (is {run_dir} a run folder "
                                "written by `cnnlab train`?)")
    rows = []
    for k, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f"read_history: {path} line {k} is not JSON: {e}") from e
    check_history(rows, f"read_history: {path}")
    return rows


def plot_curves(run_or_history: str | os.PathLike | Sequence[dict[str, Any]], path: str | os.PathLike,
                title: str = "", figsize: tuple[float, float] = (10, 3.8), dpi: int = 100,
                final_test: float | None = None) -> Path:
    """Loss and accuracy per epoch (train, and validation or test); a PNG.
    ``final_test``: the test accuracy scored after training, for the title.

    Parameters
    ----------
    run_or_history : run folder, or rows with ``epoch``, ``train_loss``, ``train_acc``,
        ``test_loss``, ``test_acc`` (``val_loss`` / ``val_acc`` drawn when present).

    Drawn by :func:`cnnlab.plots.plot_history`, as the run's own ``curves.png``.
    """
    hist = (read_history(run_or_history) if isinstance(run_or_history, (str, os.PathLike))
            else list(run_or_history))
    if not hist:
        raise ValueError("plot_curves: the history is empty (no epoch finished)")
    return plot_history(hist, path, title, figsize=figsize, dpi=dpi, final_test=final_test)


def confusion(model: Module, loader: Iterable[tuple[Tensor, Tensor]], num_classes: int | None = None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Predict every batch of ``loader`` (eval mode, no graph) and count.

    Returns
    -------
    cm : (K, K) int64, ``cm[i, j]`` = test images of true class i predicted as j
        (K = ``num_classes``, default the largest label or prediction + 1)
    preds : (N,) int64, argmax of the logits, in loader order
    targets : (N,) int64
    """
    res = evaluate(model, loader)
    preds, targets = res.predictions.astype(np.int64), res.targets.astype(np.int64)
    k = num_classes or int(max(preds.max(), targets.max())) + 1
    return confusion_matrix(targets, preds, k), preds, targets


def plot_confusion(cm: np.ndarray, class_names: Sequence[str] | None, path: str | os.PathLike,
                   title: str = "confusion matrix", normalize: bool = False, dpi: int = 100) -> Path:
    """The confusion matrix as a heat map with the count in every cell (rows: true
    class, columns: prediction); ``normalize=True`` colours by row fraction (recall)."""

    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"plot_confusion: expected a square (K, K) matrix, got shape {cm.shape}")
    k = cm.shape[0]
    names = list(class_names) if class_names is not None else [str(i) for i in range(k)]
    if len(names) != k:
        raise ValueError(f"plot_confusion: {len(names)} class names for a {k}x{k} matrix")
    rows = cm.sum(axis=1, keepdims=True)
    shade = cm / np.maximum(rows, 1) if normalize else cm.astype(np.float64)
    side = max(4.0, 0.45 * k + 1.5)
    fig, ax = subplots(figsize=(side + 0.8, side))
    im = ax.imshow(shade, cmap="Blues", vmin=0)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of row" if normalize else "count")
    hi = shade.max() if shade.size else 0
    for i in range(k):
        for j in range(k):
            v = int(cm[i, j])
            if v or i == j:
                ax.text(j, i, str(v), ha="center", va="center", fontsize=8 if k <= 12 else 6,
                        color="white" if hi and shade[i, j] > 0.55 * hi else "black")
    slanted = max(map(len, names)) > 2         # whole names, never cut
    ax.set_xticks(range(k), names, rotation=45 if slanted else 0, ha="right" if slanted else "center",
                  rotation_mode="anchor" if slanted else "default")
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    total = int(cm.sum())
    ax.set_title(f"{title}: {int(np.trace(cm))}/{total} correct" if total else title)
    fig.tight_layout()
    return save_exact(fig, path, dpi)


def misclassified(model: Module, data, batch_size: int = 500) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The test examples the model gets wrong.

    Parameters
    ----------
    data : DataLoader (unshuffled) or dataset with ``x`` (model inputs, N, C, H, W) and ``y``

    Returns
    -------
    indices : (M,) int64, positions in loader / dataset order where argmax(logits) != y
    preds : (M,) int64, the predicted classes there
    targets : (M,) int64, the true classes there
    """
    if hasattr(data, "x") and hasattr(data, "y"):
        from cnnlab.data import DataLoader

        data = DataLoader(data, batch_size, shuffle=False)
    elif getattr(data, "shuffle", False):
        raise ValueError("misclassified: the loader shuffles, so indices would not name examples; "
                         "pass shuffle=False")
    _, preds, targets = confusion(model, data)
    idx = np.flatnonzero(preds != targets).astype(np.int64)
    return idx, preds[idx], targets[idx]


def plot_misclassified(images: np.ndarray, preds: np.ndarray, targets: np.ndarray,
                       class_names: Sequence[str] | None, path: str | os.PathLike, max_n: int = 32,
                       ncols: int = 8, probs: np.ndarray | None = None, dpi: int = 100,
                       total_wrong: int | None = None) -> Path:
    """A grid of wrongly classified images titled with the true class over
    "-> predicted" (and the predicted probability when ``probs`` is given); the
    first ``max_n``.  Class names are written whole.

    Parameters
    ----------
    images : (M, C, H, W) or (M, H, W) raw pixels
    preds, targets : (M,) int
    probs : (M,) float, optional
    total_wrong : int, optional
        How many the model got wrong in all, when ``images`` are only the first
        of them: the title says "32 shown of 1,164 wrong".
    """

    imgs = np.asarray(images)
    preds, targets = np.asarray(preds).ravel(), np.asarray(targets).ravel()
    if not (len(imgs) == len(preds) == len(targets)):
        raise ValueError(f"plot_misclassified: {len(imgs)} images, {len(preds)} predictions and "
                         f"{len(targets)} targets must be equally many")
    n = min(len(imgs), max_n)
    names = list(class_names) if class_names is not None else None
    name = (lambda c: names[c]) if names else str
    cols = max(1, min(ncols, n))
    rows = max(1, math.ceil(n / cols))
    longest = max((len(name(int(c))) for c in np.concatenate([targets[:n], preds[:n]])), default=1)
    fig, axes = subplots(rows, cols, figsize=(max(1.4, 0.075 * longest + 0.5) * cols,
                                              1.8 * rows + 0.35), squeeze=False, layout="constrained")
    for k, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if k >= n:
            continue
        im = to_unit(as_hwc(imgs[k]))
        ax.imshow(im, cmap="gray" if im.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
        label = f"{name(int(targets[k]))}\n\u2192 {name(int(preds[k]))}"
        if probs is not None:
            label += f" {float(probs[k]):.2f}"
        ax.set_title(label, fontsize=8, color="#b00020")
    if n == 0:
        axes[0, 0].text(0.5, 0.5, "no mistakes", ha="center", va="center")
    wrong = len(imgs) if total_wrong is None else int(total_wrong)
    fig.suptitle(f"misclassified: {n:,} shown of {wrong:,} wrong (true \u2192 predicted)", fontsize=10)
    return save_exact(fig, path, dpi)
