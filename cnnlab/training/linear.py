"""A linear classifier on CNN codes, trained with cnnlab itself.

The last step of the notes' "CNN as a fixed feature extractor" (001, 002):
a linear SVM (the multiclass hinge loss, ``multi_margin_loss``) or a softmax
classifier (cross-entropy) on the codes of :mod:`cnnlab.training.features`.
The codes are standardised with the training codes' mean and standard
deviation (kept in the classifier and applied to any later input), and the
layer is trained by SGD with momentum and an L2 penalty on the weights.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import cnnlab
import cnnlab.nn.functional as F
from cnnlab.autograd.tensor import Tensor, no_grad
from cnnlab.data import ArrayDataset, DataLoader
from cnnlab.nn import Linear
from cnnlab.optim import SGD
from cnnlab.optim.lr_scheduler import CosineAnnealingLR
from cnnlab.training.checkpoint import TrainingDivergedError

__all__ = ["LOSSES", "LinearClassifier", "train_linear"]

LOSSES = ("softmax", "svm")


@dataclass
class LinearClassifier:
    """scores = W ((codes - mean) / std) + b.

    Attributes
    ----------
    linear : cnnlab.nn.Linear
        ``(D -> K)``; the weights are ``linear.weight.data`` (K, D), float32.
    mean, std : ndarray, shape (D,)
        The training codes' per-dimension statistics; ``std`` is ``inf`` for
        dimensions constant in training (std < 1e-6), so those map to 0 for
        any input (a unit dead on the training codes but active on test codes
        would otherwise be scaled by 1e6 through an untrained weight).
    loss : {'softmax', 'svm'}
        The loss it was trained with.
    history : list of float
        Mean training loss per epoch.
    """

    linear: Linear
    mean: np.ndarray
    std: np.ndarray
    loss: str
    history: list[float]

    def _standardise(self, codes: np.ndarray) -> np.ndarray:
        codes = np.asarray(codes)
        if codes.ndim != 2 or codes.shape[1] != len(self.mean):
            raise ValueError(f"LinearClassifier: expected codes (N, {len(self.mean)}), "
                             f"got shape {codes.shape}")
        return ((codes - self.mean) / self.std).astype(np.float32)

    def decision_function(self, codes: np.ndarray) -> np.ndarray:
        """Class scores, shape (N, K)."""
        with no_grad():
            return self.linear(Tensor(self._standardise(codes))).data

    def predict(self, codes: np.ndarray) -> np.ndarray:
        """The highest-scoring class of each row, int64 (N,)."""
        return self.decision_function(codes).argmax(axis=1)

    def score(self, codes: np.ndarray, labels: np.ndarray) -> float:
        """Accuracy on ``(codes, labels)``."""
        return float((self.predict(codes) == np.asarray(labels)).mean())


def train_linear(codes: np.ndarray, labels: np.ndarray, loss: str = "softmax", epochs: int = 100,
                 lr: float = 0.01, weight_decay: float = 1e-3, batch_size: int = 64,
                 seed: int = 0, num_classes: int | None = None) -> LinearClassifier:
    """Train a linear softmax or SVM classifier on codes.

    Parameters
    ----------
    codes : ndarray, shape (N, D)
    labels : ndarray of int, shape (N,), values in ``[0, K)``
    loss : {'softmax', 'svm'}
        Cross-entropy, or the multiclass hinge loss ``multi_margin_loss``
        (Weston-Watkins form, margin 1, averaged over the K classes as torch).
    epochs, lr, batch_size : SGD with momentum 0.9 and a cosine learning-rate
        decay over ``epochs``; the batches are reshuffled every epoch.
    weight_decay : float
        L2 penalty on the weights (not the biases).
    seed : int
        Seeds the initialisation and the shuffling; the global generator of
        :func:`cnnlab.manual_seed` is left as it was.
    num_classes : int, optional
        Default ``labels.max() + 1``.

    Returns
    -------
    LinearClassifier
    """
    codes = np.asarray(codes)
    labels = np.asarray(labels)
    if loss not in LOSSES:
        raise ValueError(f"train_linear: loss must be one of {', '.join(LOSSES)}, got {loss!r}")
    if codes.ndim != 2 or labels.shape != (len(codes),):
        raise ValueError(f"train_linear: expected codes (N, D) and labels (N,), got {codes.shape} "
                         f"and {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0:
        raise ValueError("train_linear: labels must be non-negative integers")
    if epochs < 1 or batch_size < 1 or not lr > 0:
        raise ValueError(f"train_linear: need epochs >= 1, batch_size >= 1, lr > 0; got {epochs}, "
                         f"{batch_size}, {lr}")
    k = int(labels.max()) + 1 if num_classes is None else int(num_classes)
    if k <= labels.max():
        raise ValueError(f"train_linear: num_classes={k} but the labels go up to {labels.max()}")
    mean = codes.mean(axis=0, dtype=np.float64)
    std = codes.std(axis=0, dtype=np.float64)
    std[std < 1e-6] = np.inf
    saved = cnnlab.get_rng_state()
    try:
        cnnlab.manual_seed(seed)
        linear = Linear(codes.shape[1], k)
    finally:
        cnnlab.set_rng_state(saved)
    clf = LinearClassifier(linear, mean, std, loss, [])
    loader = DataLoader(ArrayDataset(clf._standardise(codes), labels.astype(np.int64)), batch_size,
                        shuffle=True, seed=seed)
    opt = SGD([{"params": [linear.weight], "weight_decay": weight_decay},
               {"params": [linear.bias], "weight_decay": 0.0}], lr=lr, momentum=0.9)
    sched = CosineAnnealingLR(opt, T_max=epochs)
    criterion = F.cross_entropy if loss == "softmax" else F.multi_margin_loss
    for epoch in range(1, epochs + 1):
        total = 0.0
        for x, y in loader:
            opt.zero_grad()
            out = criterion(linear(x), y)
            if not np.isfinite(out.item()):     # before the step: the weights stay finite
                raise TrainingDivergedError(f"train_linear: diverged in epoch {epoch}: the loss is "
                                            f"{out.item()}; lower the learning rate (lr={lr})")
            out.backward()
            opt.step()
            total += float(out.item()) * len(y)
        clf.history.append(total / len(labels))
        sched.step()
    return clf
