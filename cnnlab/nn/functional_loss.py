"""Functional losses (PyTorch names and argument order) and LeNet-5's RBF output.

Formulas are in :mod:`cnnlab.kernels.loss`.  Class weights, ``pos_weight`` and
class-index targets are constants (torch does not differentiate them either);
float targets of the binary and regression losses receive gradients.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from cnnlab.autograd import loss_ops as ops
from cnnlab.autograd.tensor import Tensor
from cnnlab.kernels.loss import REDUCTIONS
from cnnlab.nn._args import as_tensor, check_same_dtype


def _check_reduction(reduction: str, name: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"{name}: reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _check_float(x: Tensor, name: str, what: str = "input") -> None:
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{name}: {what} must be a floating point tensor, got {x.dtype}")


def _raw(a: Any) -> np.ndarray:
    return np.asarray(a.data if isinstance(a, Tensor) else a)


def _class_weight(weight: Any, C: int, x: Tensor, name: str) -> np.ndarray | None:
    if weight is None:
        return None
    w = as_tensor(weight)
    if w.shape != (C,):
        raise ValueError(f"{name}: weight must have shape ({C},) for input {x.shape}, got {w.shape}")
    check_same_dtype(name, x, w)
    return w.data


def _class_indices(input: Tensor, target: Any, name: str, ignore_index: int | None
                   ) -> np.ndarray:
    """Check an integer target () / (N,) / (N, d1, ...) against input (C,) / (N, C, d1, ...)."""
    t = _raw(target)
    if input.ndim == 0:
        raise ValueError(f"{name}: expected input (C,), (N, C) or (N, C, d1, ...), got shape ()")
    expected = () if input.ndim == 1 else (input.shape[0],) + tuple(input.shape[2:])
    if t.shape != expected:
        raise ValueError(f"{name}: expected target {expected} for input {input.shape}, got {t.shape}")
    if not np.issubdtype(t.dtype, np.integer):
        raise TypeError(f"{name}: target must hold integer class indices, got {t.dtype}")
    C = input.shape[0] if input.ndim == 1 else input.shape[1]
    live = t if ignore_index is None else t[t != ignore_index]
    if live.size and (live.min() < 0 or live.max() >= C):
        raise IndexError(f"{name}: target {int(live.min())}..{int(live.max())} out of range for "
                         f"{C} classes (input {input.shape})")
    return t


def _class_loss_args(input: Any, target: Any, weight: Any, ignore_index: int, reduction: str,
                     name: str) -> tuple[Tensor, np.ndarray, np.ndarray | None]:
    """Validate a class-index loss's arguments (input (C,) or (N, C, ...)); returns
    the input tensor, the class indices and the class weights."""
    x = as_tensor(input)
    _check_reduction(reduction, name)
    _check_float(x, name)
    t = _class_indices(x, target, name, ignore_index)
    C = x.shape[0] if x.ndim == 1 else x.shape[1]
    return x, t, _class_weight(weight, C, x, name)


def cross_entropy(input: Tensor, target: Tensor | np.ndarray, weight: Tensor | None = None,
                  ignore_index: int = -100, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    """Softmax cross-entropy on logits and class indices (the notes, 002).

    Shapes: input (C,), (N, C) or (N, C, d1, ...); target (), (N,) or
    (N, d1, ...) integer class indices; output () or, for ``'none'``, target's
    shape.  ``weight`` (C,) rescales each class; targets equal to
    ``ignore_index`` contribute nothing (and may be out of range); ``'mean'``
    divides by the summed weights of the non-ignored targets.  With label
    smoothing eps the target is (1 - eps) onehot + eps / C:

        l_m = (1 - eps) w[t_m] (-log p_m[t_m]) + eps / C * sum_c w[c] (-log p_m[c])

    The gradient w.r.t. the logits is softmax minus the (smoothed, weighted)
    one-hot, with no sigma'(z) factor.  Only class-index targets are supported
    (not torch's class-probability targets).
    """
    name = "cross_entropy"
    z, t, w = _class_loss_args(input, target, weight, ignore_index, reduction, name)
    if not 0.0 <= float(label_smoothing) <= 1.0:
        raise ValueError(f"{name}: label_smoothing must be between 0.0 and 1.0, "
                         f"got {label_smoothing}")
    return ops.CrossEntropy.apply(z, target=t, weight=w, ignore_index=int(ignore_index),
                                  reduction=reduction, label_smoothing=float(label_smoothing))


def nll_loss(input: Tensor, target: Tensor | np.ndarray, weight: Tensor | None = None,
             ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood on log-probabilities and class indices.

    Shapes as :func:`cross_entropy`.  l_m = -w[t_m] input[m, t_m] (0 where
    t_m == ignore_index); ``'mean'`` divides by the summed weights of the
    non-ignored targets.  ``nll_loss(log_softmax(z, 1), t) == cross_entropy(z, t)``.
    """
    lp, t, w = _class_loss_args(input, target, weight, ignore_index, reduction, "nll_loss")
    return ops.NLLLoss.apply(lp, target=t, weight=w, ignore_index=int(ignore_index),
                             reduction=reduction)


def _elementwise_weight(weight: Any, x: Tensor, name: str, what: str) -> np.ndarray | None:
    if weight is None:
        return None
    w = as_tensor(weight)
    check_same_dtype(name, x, w)
    try:
        shape = np.broadcast_shapes(w.shape, x.shape)
    except ValueError:
        shape = None
    if shape != x.shape:
        raise ValueError(f"{name}: {what} {w.shape} must broadcast to the input shape {x.shape}")
    return w.data


def _binary_args(input: Any, target: Any, name: str) -> tuple[Tensor, Tensor]:
    x, y = as_tensor(input), as_tensor(target)
    _check_float(x, name)
    _check_float(y, name, "target")
    if x.shape != y.shape:
        raise ValueError(f"{name}: target {y.shape} must have the same shape as input {x.shape}")
    check_same_dtype(name, x, y)
    return x, y


def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                         reduction: str = "mean") -> Tensor:
    """The notes' cross-entropy C = -(1/n) sum [y ln a + (1 - y) ln(1 - a)] on probabilities a.

    input and target have the same shape, input in [0, 1]; ``weight``
    broadcasts to it.  Each log is clamped to >= -100 as in torch, so a = 0 or
    1 gives a finite loss.  Gradients: da = w (a - y) / max(a (1 - a), 1e-12)
    and dy = w (ln(1 - a) - ln a).
    """
    name = "binary_cross_entropy"
    _check_reduction(reduction, name)
    x, y = _binary_args(input, target, name)
    if x.numel() and (np.nanmin(x.data) < 0 or np.nanmax(x.data) > 1):
        raise ValueError(f"{name}: all elements of input should be between 0 and 1, got "
                         f"{float(np.nanmin(x.data))}..{float(np.nanmax(x.data))}")
    w = _elementwise_weight(weight, x, name, "weight")
    return ops.BinaryCrossEntropy.apply(x, y, weight=w, reduction=reduction)


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor,
                                     weight: Tensor | None = None, reduction: str = "mean",
                                     pos_weight: Tensor | None = None) -> Tensor:
    """Sigmoid followed by binary cross-entropy, in one numerically stable op.

    input (logits z) and target y have the same shape; ``weight`` and
    ``pos_weight`` (e.g. (C,) for the last axis) broadcast to it:

        l = -w [pw y log sigma(z) + (1 - y) log(1 - sigma(z))]

    computed with a stable log sigma.  dl/dz = w (sigma(z) - y) without
    ``pos_weight``: no sigma'(z) factor, so a saturated wrong output still
    learns fast (the notes' argument against squared error with sigmoids).
    """
    name = "binary_cross_entropy_with_logits"
    _check_reduction(reduction, name)
    x, y = _binary_args(input, target, name)
    w = _elementwise_weight(weight, x, name, "weight")
    pw = _elementwise_weight(pos_weight, x, name, "pos_weight")
    return ops.BinaryCrossEntropyWithLogits.apply(x, y, weight=w, pos_weight=pw,
                                                  reduction=reduction)


def multi_margin_loss(input: Tensor, target: Tensor | np.ndarray, p: int = 1,
                      margin: float = 1.0, weight: Tensor | None = None,
                      reduction: str = "mean") -> Tensor:
    """The multiclass SVM hinge loss (the notes' alternative to softmax, 002).

    input (C,) or (N, C) scores, target () or (N,) class indices:

        l_n = w[y_n] / C * sum_{i != y_n} max(0, margin - x[n, y_n] + x[n, i])^p

    p = 1 (hinge) or 2 (squared hinge); ``'mean'`` averages over N.
    """
    name = "multi_margin_loss"
    x = as_tensor(input)
    _check_reduction(reduction, name)
    _check_float(x, name)
    if p not in (1, 2) or isinstance(p, bool):
        raise ValueError(f"{name}: only p == 1 and p == 2 are supported, got p={p!r}")
    if x.ndim not in (1, 2):
        raise ValueError(f"{name}: expected input (C,) or (N, C), got shape {x.shape}")
    if x.shape[-1] == 0:
        raise ValueError(f"{name}: input {x.shape} has no classes")
    t = _class_indices(x, target, name, None)
    w = _class_weight(weight, x.shape[-1], x, name)
    return ops.MultiMarginLoss.apply(x, target=t, p=int(p), margin=float(margin), weight=w,
                                     reduction=reduction)


def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Squared error (y - t)^2, averaged (or summed) over every element, as torch.

    For the notes' E = 1/2 sum (t - y)^2 use :func:`squared_error_loss`.
    """
    y, t = as_tensor(input), as_tensor(target)
    _check_reduction(reduction, "mse_loss")
    if y.shape != t.shape:
        raise ValueError(f"mse_loss: input {y.shape} and target {t.shape} must have the same shape")
    return ops.MSELoss.apply(y, t, reduction=reduction)


def squared_error_loss(input: Tensor, target: Tensor) -> Tensor:
    """The notes' squared error E = 1/2 sum (t - y)^2 over every element (002).

    Not a torch loss: torch's ``mse_loss`` has no 1/2 and averages by default,
    so this is a separate op rather than an extra ``mse_loss`` argument.  It
    equals ``0.5 * mse_loss(input, target, reduction='sum')``; dE/dy = y - t.
    input and target have the same shape; the output is a scalar.
    """
    y, t = as_tensor(input), as_tensor(target)
    if y.shape != t.shape:
        raise ValueError(f"squared_error_loss: input {y.shape} and target {t.shape} must have "
                         "the same shape")
    check_same_dtype("squared_error_loss", y, t)
    return ops.SquaredError.apply(y, t)


def rbf_output(input: Tensor, weight: Tensor) -> Tensor:
    """LeNet-5's Euclidean RBF output units (the notes, 002; LeCun et al. 1998, eq. 7).

    input x (N, F), centres ``weight`` (K, F) -> y (N, K),

        y[n, i] = sum_j (x[n, j] - weight[i, j])^2

    a penalty (distance to class i's centre): smaller means more likely.  To
    train it, use ``cross_entropy(-y, target)`` = y_t + log sum_i exp(-y_i),
    LeCun's MAP criterion (eq. 9) without the "rubbish class" constant.
    """
    x, w = as_tensor(input), as_tensor(weight)
    if w.ndim != 2:
        raise ValueError(f"rbf_output: weight must be (num_classes, in_features), got {w.shape}")
    if x.ndim != 2 or x.shape[1] != w.shape[1]:
        raise ValueError(f"rbf_output: expected input (N, {w.shape[1]}) for weight {w.shape}, "
                         f"got {x.shape}")
    check_same_dtype("rbf_output", x, w)
    return ops.RBFOutput.apply(x, w)


__all__ = ["binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy",
           "mse_loss", "multi_margin_loss", "nll_loss", "rbf_output", "squared_error_loss"]
