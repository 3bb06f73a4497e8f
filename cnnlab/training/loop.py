"""The training loop as small functions: one epoch of training, one evaluation.

``train_one_epoch`` is the notes' recipe: forward pass, loss, backpropagation,
gradient step, over mini-batches.  ``evaluate`` runs the model in eval mode
without recording a graph, with its batch norm folded into the convolutions
before it (:func:`inference_model`).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import numpy as np

from cnnlab.autograd.tensor import Tensor, no_grad
from cnnlab.models.googlenet import googlenet_loss
from cnnlab.nn.module import Module
from cnnlab.nn.utils import FoldError, clip_grad_norm_, fold_batchnorm, has_batchnorm
from cnnlab.training.checkpoint import TrainingDivergedError

ProgressHook = Callable[[int, float, float], None]   # (batch size, loss, accuracy so far)


def classification_loss(outputs, target) -> Tensor:
    """Cross-entropy of the logits; for a model that also returns auxiliary
    logits in training (GoogLeNet), plus 0.3 times each auxiliary loss."""
    return googlenet_loss(outputs, target)


def main_logits(outputs) -> Tensor:
    """The class scores of a model's output (the main head of a multi-head one)."""
    return getattr(outputs, "logits", outputs)


@dataclass
class EpochResult:
    loss: float
    accuracy: float
    count: int
    predictions: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    targets: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


def train_one_epoch(model: Module, loader: Iterable[tuple[Tensor, Tensor]], optimizer,
                    loss_fn: Callable[[Tensor, Tensor], Tensor] = classification_loss,
                    on_batch: ProgressHook | None = None, clip_grad_norm: float | None = None,
                    eval_modules: Sequence[Module] = (),
                    reduce_gradients: Callable[[int], int] | None = None) -> EpochResult:
    """One pass over ``loader`` with a gradient step per batch.

    Parameters
    ----------
    clip_grad_norm : float, optional
        Rescale the gradients so their joint 2-norm is at most this, between
        ``backward`` and the step (:func:`cnnlab.nn.utils.clip_grad_norm_`).
    eval_modules : sequence of Module
        Submodules kept in eval mode while the rest trains (BatchNorm layers of
        frozen parts, whose running statistics must not move).
    reduce_gradients : callable, optional
        Called with the batch's sample count after ``backward`` and before
        clipping and the step; data-parallel training averages the gradients
        over every process's batch there (:mod:`cnnlab.training.distributed`).

    Returns the sample-weighted mean training loss and accuracy (of the
    predictions made while training, before each step).
    """
    model.train()
    for m in eval_modules:
        m.eval()
    params = [p for p in model.parameters() if p.requires_grad] if clip_grad_norm else []
    total_loss, correct, seen = 0.0, 0, 0
    for x, y in loader:
        if len(y) == 0:
            raise ValueError(f"train_one_epoch: an empty batch after {seen} samples (the loader "
                             "yielded a batch of 0 samples)")
        optimizer.zero_grad()
        outputs = model(x)
        loss = loss_fn(outputs, y)
        logits = main_logits(outputs)
        batch_loss = float(loss.item())
        if not np.isfinite(batch_loss):   # before the step, so the weights stay finite
            _refuse_bad_input(x, loader, seen)
            raise TrainingDivergedError(
                f"training diverged: loss is {batch_loss} after {seen} samples; lower the learning rate")
        loss.backward()
        if reduce_gradients is not None:
            reduce_gradients(len(y))
        if clip_grad_norm:
            clip_grad_norm_(params, clip_grad_norm)
        optimizer.step()
        n = len(y)
        total_loss += batch_loss * n
        correct += int((logits.data.argmax(axis=1) == y.data).sum())
        seen += n
        if on_batch is not None:
            on_batch(n, total_loss / seen, correct / seen)
    if seen == 0:
        raise ValueError("train_one_epoch: the loader produced no batches")
    return EpochResult(total_loss / seen, correct / seen, seen)


def _refuse_bad_input(x: Tensor, loader, seen: int) -> None:
    """ValueError naming the first sample of the batch ``x`` with a NaN or infinite
    value (its dataset index when ``loader`` is a DataLoader): the real cause of a
    non-finite loss, not the learning rate."""
    data = np.asarray(x.data)
    bad = ~np.isfinite(data.reshape(len(data), -1)).all(axis=1)
    if not bad.any():
        return
    i = int(np.argmax(bad))
    where = f"sample {seen + i} of the epoch"
    order, epoch = getattr(loader, "order", None), getattr(loader, "epoch", None)
    if callable(order) and isinstance(epoch, int):
        where += f" (dataset index {int(order(epoch - 1)[seen + i])})"
    raise ValueError(f"non-finite input: {where} holds NaN or infinity after the input pipeline; "
                     "fix or drop it (this is not a learning-rate problem)")


def inference_model(model: Module, example: Tensor | np.ndarray, fold_bn: bool = True) -> Module:
    """The model to run for predictions: with ``fold_bn``, an eval-only copy whose batch
    norm layers are folded into the convolutions before them
    (:func:`cnnlab.nn.utils.fold_batchnorm`, traced on the first sample of the batch
    ``example``; same outputs up to float rounding, one pass over the maps fewer per
    folded layer) if it has any to fold; otherwise ``model`` itself.  If the folded
    copy fails its self-check (a forward reading a layer's output outside the graph),
    ``model`` itself, with a warning: folding only saves time."""
    if not fold_bn or not has_batchnorm(model):
        return model
    try:
        folded = fold_batchnorm(model, (example.data if isinstance(example, Tensor) else example)[:1])
    except FoldError as e:
        warnings.warn(f"{e}; running {type(model).__name__} with its batch norm unfolded",
                      RuntimeWarning, stacklevel=2)
        return model
    return folded if folded.fold_report.folded else model


def evaluate(model: Module, loader: Iterable[tuple[Tensor, Tensor]],
             loss_fn: Callable[[Tensor, Tensor], Tensor] = classification_loss,
             fold_bn: bool = True) -> EpochResult:
    """Mean loss, accuracy, and every prediction, in eval mode without a graph; with
    ``fold_bn``, batch norm folded into the convolutions (:func:`inference_model`)."""
    was_training = model.training
    model.eval()
    total_loss, seen = 0.0, 0
    preds, targets = [], []
    net = None
    try:
        with no_grad():
            for x, y in loader:
                if net is None:
                    net = inference_model(model, x, fold_bn)
                logits = main_logits(net(x))
                total_loss += float(loss_fn(logits, y).item()) * len(y)
                preds.append(logits.data.argmax(axis=1))
                targets.append(np.asarray(y.data))
                seen += len(y)
    finally:
        model.train(was_training)
    if seen == 0:
        raise ValueError("evaluate: the loader produced no batches")
    p, t = np.concatenate(preds), np.concatenate(targets)
    return EpochResult(total_loss / seen, float((p == t).mean()), seen, p, t)


def confusion_matrix(targets: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """counts[i, j] = number of samples of true class i predicted as j."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(targets), np.asarray(predictions)), 1)
    return cm


def format_confusion_matrix(cm: np.ndarray, class_names: list[str] | None = None) -> str:
    """A text table: rows are true classes (named in full), columns predictions
    (numbered, with a legend), plus per-class recall."""
    k = cm.shape[0]
    names = class_names or [str(i) for i in range(k)]
    width = max(5, max(len(str(int(cm.max()))), 1) + 1)
    label_w = max(len(s) for s in names) + 1
    head = " " * label_w + "".join(f"{i:>{width}d}" for i in range(k)) + "  recall"
    lines = ["true \\ predicted", head]
    for i in range(k):
        row_total = cm[i].sum()
        recall = cm[i, i] / row_total if row_total else float("nan")
        lines.append(f"{names[i]:<{label_w}}" + "".join(f"{int(v):>{width}d}" for v in cm[i])
                     + f"  {recall:6.3f}")
    legend = ", ".join(f"{i}={n}" for i, n in enumerate(names))
    lines.append(f"columns: {legend}")
    return "\n".join(lines)


def best_epoch(history: Sequence[dict], key: str = "val_acc") -> tuple[int, float] | None:
    """(epoch, value) of the first epoch with the highest ``key`` in a run's
    history (rows with ``"epoch"`` and ``key``); None if no row has ``key``."""
    best: tuple[int, float] | None = None
    for row in history:
        value = row.get(key)
        if value is not None and (best is None or value > best[1]):
            best = (int(row["epoch"]), float(value))
    return best


def should_stop(history: Sequence[dict], patience: int, key: str = "val_acc") -> bool:
    """Early stopping: True when ``key`` has not improved (strictly) on its best
    for ``patience`` epochs, i.e. the last epoch is ``>= best epoch + patience``.

    With validation accuracies 0.5, 0.7, 0.7, 0.6 and ``patience=2`` the best
    is epoch 2, and training stops after epoch 4."""
    if patience < 1:
        raise ValueError(f"should_stop: patience must be >= 1, got {patience}")
    best = best_epoch(history, key)
    return best is not None and int(history[-1]["epoch"]) - best[0] >= patience
