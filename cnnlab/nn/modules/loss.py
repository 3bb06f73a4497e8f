"""Loss layers, with PyTorch's constructor signatures minus the deprecated
``size_average``/``reduce`` arguments (so everything after them is keyword-only
here, which keeps a torch-style positional call from binding the wrong value).

Class weights and ``pos_weight`` are buffers named ``weight``/``pos_weight``,
as in torch, so they appear in ``state_dict()`` and follow ``.double()``.
Formulas are in :mod:`cnnlab.nn.functional_loss`.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from cnnlab.autograd.tensor import Tensor
from cnnlab.kernels.loss import REDUCTIONS
from cnnlab.nn import functional as F
from cnnlab.nn.module import Module


def _array(value: Any) -> np.ndarray | None:
    """A weight as an ndarray; Python floats become float32, like tensors."""
    return None if value is None else Tensor(value).data


class _Loss(Module):
    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        if reduction not in REDUCTIONS:
            raise ValueError(f"{type(self).__name__}: reduction must be one of {REDUCTIONS}, "
                             f"got {reduction!r}")
        self.reduction = reduction

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}" if self.reduction != "mean" else ""


class _WeightedLoss(_Loss):
    def __init__(self, weight: Any = None, reduction: str = "mean") -> None:
        super().__init__(reduction)
        w = _array(weight)
        if w is not None and w.ndim != 1:
            raise ValueError(f"{type(self).__name__}: weight must be a 1-D tensor of class "
                             f"weights (C,), got shape {w.shape}")
        self.register_buffer("weight", w)


class CrossEntropyLoss(_WeightedLoss):
    """Softmax cross-entropy on logits (N, C[, d1, ...]) and class indices (N[, d1, ...]).

    ``weight`` (C,) per class, targets equal to ``ignore_index`` skipped (the
    weighted mean divides by the summed weights of the others), optional label
    smoothing; see :func:`cnnlab.nn.functional.cross_entropy`.
    """

    def __init__(self, weight: Any = None, *, ignore_index: int = -100, reduction: str = "mean",
                 label_smoothing: float = 0.0) -> None:
        super().__init__(weight, reduction)
        if not 0.0 <= float(label_smoothing) <= 1.0:
            raise ValueError(f"CrossEntropyLoss: label_smoothing must be between 0.0 and 1.0, "
                             f"got {label_smoothing}")
        self.ignore_index, self.label_smoothing = int(ignore_index), float(label_smoothing)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(input, target, weight=self.weight, ignore_index=self.ignore_index,
                               reduction=self.reduction, label_smoothing=self.label_smoothing)

    def extra_repr(self) -> str:
        parts = [s for s in (super().extra_repr(),) if s]
        if self.ignore_index != -100:
            parts.append(f"ignore_index={self.ignore_index}")
        if self.label_smoothing:
            parts.append(f"label_smoothing={self.label_smoothing}")
        return ", ".join(parts)


class NLLLoss(_WeightedLoss):
    """Negative log-likelihood on log-probabilities (N, C[, d1, ...]); pair with LogSoftmax."""

    def __init__(self, weight: Any = None, *, ignore_index: int = -100,
                 reduction: str = "mean") -> None:
        super().__init__(weight, reduction)
        self.ignore_index = int(ignore_index)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.nll_loss(input, target, weight=self.weight, ignore_index=self.ignore_index,
                          reduction=self.reduction)


class BCELoss(_Loss):
    """Binary cross-entropy on probabilities in [0, 1] (the notes' C with a = sigma(z)).

    ``weight`` broadcasts to the input (per element, not per class).
    """

    def __init__(self, weight: Any = None, *, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.register_buffer("weight", _array(weight))

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.binary_cross_entropy(input, target, weight=self.weight, reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Sigmoid + binary cross-entropy on logits, numerically stable; gradient sigma(z) - y.

    ``weight`` and ``pos_weight`` (e.g. (C,) for C binary labels) broadcast to the input.
    """

    def __init__(self, weight: Any = None, *, reduction: str = "mean",
                 pos_weight: Any = None) -> None:
        super().__init__(reduction)
        self.register_buffer("weight", _array(weight))
        self.register_buffer("pos_weight", _array(pos_weight))

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(input, target, weight=self.weight,
                                                  reduction=self.reduction,
                                                  pos_weight=self.pos_weight)


class MultiMarginLoss(_WeightedLoss):
    """Multiclass SVM hinge loss on scores (N, C) and class indices (N,), p = 1 or 2."""

    def __init__(self, p: int = 1, margin: float = 1.0, weight: Any = None, *,
                 reduction: str = "mean") -> None:
        super().__init__(weight, reduction)
        if p not in (1, 2) or isinstance(p, bool):
            raise ValueError(f"MultiMarginLoss: only p == 1 and p == 2 are supported, got p={p!r}")
        self.p, self.margin = int(p), float(margin)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.multi_margin_loss(input, target, p=self.p, margin=self.margin,
                                   weight=self.weight, reduction=self.reduction)

    def extra_repr(self) -> str:
        return ", ".join(s for s in (f"p={self.p}", f"margin={self.margin}",
                                     super().extra_repr()) if s)


class MSELoss(_Loss):
    """Mean squared error, as torch (for the notes' E = 1/2 sum (t - y)^2 see SquaredErrorLoss)."""

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__(reduction)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.mse_loss(input, target, reduction=self.reduction)


class SquaredErrorLoss(Module):
    """The notes' squared error E = 1/2 sum (t - y)^2, summed over everything (002).

    Not in torch.  Kept apart from :class:`MSELoss` so that MSELoss keeps
    torch's exact signature; it equals ``0.5 * MSELoss(reduction='sum')``.
    """

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.squared_error_loss(input, target)


__all__ = ["BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "MSELoss", "MultiMarginLoss",
           "NLLLoss", "SquaredErrorLoss"]
