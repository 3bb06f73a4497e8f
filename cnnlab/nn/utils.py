"""Gradient clipping, with ``torch.nn.utils``' names, signatures and numbers; and
batch norm folded into the layer before it for inference (:func:`fold_batchnorm`,
from :mod:`cnnlab.nn.fold`).

Call between ``loss.backward()`` and ``optimizer.step()``; the gradients are
changed in place.  Parameters whose ``.grad`` is ``None`` (frozen ones, or ones
the loss does not reach) are skipped, as in torch.

:func:`clip_grad_norm_` rescales all gradients together, as one long vector g
made of every gradient, so their directions are kept::

    total = ||g||_p = (sum_i ||g_i||_p^p)^(1/p)        (max_i ||g_i||_inf for p = inf)
    g_i <- g_i * min(1, max_norm / (total + 1e-6))

:func:`clip_grad_value_` clamps every element to [-clip_value, clip_value].
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from cnnlab.autograd.tensor import Tensor
from cnnlab.nn.fold import (
    FoldError,
    FoldReport,
    fold_batchnorm,
    fuse_conv_bn_eval,
    fuse_linear_bn_eval,
    has_batchnorm,
)

__all__ = ["FoldError", "FoldReport", "clip_grad_norm_", "clip_grad_value_", "clip_grads_with_norm_",
           "fold_batchnorm", "fuse_conv_bn_eval", "fuse_linear_bn_eval", "get_total_norm",
           "has_batchnorm"]

TensorOrTensors = Tensor | Iterable[Tensor]

#: added to the total norm before dividing, as torch does
_CLIP_EPS = 1e-6


def _as_list(tensors: Any) -> list[Any]:
    return [tensors] if isinstance(tensors, Tensor) else list(tensors)


def _grads(parameters: TensorOrTensors) -> list[np.ndarray]:
    return [p.grad for p in _as_list(parameters) if p.grad is not None]


def _norm_type(norm_type: Any, name: str) -> float:
    try:
        return float(norm_type)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name}: norm_type must be a number or 'inf', got {norm_type!r}") from e


def _vector_norm(x: np.ndarray, p: float) -> np.ndarray:
    """torch.linalg.vector_norm(x, p) of a flattened array, as a 0-d array of x's dtype."""
    a = np.abs(x.reshape(-1))
    if p == math.inf:
        out = a.max() if a.size else 0
    elif p == -math.inf:
        out = a.min() if a.size else math.inf
    elif p == 0:
        out = np.count_nonzero(a)
    elif p == 1:
        out = a.sum()
    elif p == 2:
        out = np.sqrt(np.dot(a, a))
    else:
        out = (a ** p).sum() ** (1.0 / p)
    return np.asarray(out, dtype=x.dtype)


def get_total_norm(tensors: TensorOrTensors, norm_type: float | str = 2.0,
                   error_if_nonfinite: bool = False, foreach: bool | None = None) -> Tensor:
    """The ``norm_type``-norm of all the given arrays taken together, as torch.

    Parameters
    ----------
    tensors : ndarray, Tensor or iterable of them
        Usually ``[p.grad for p in params]``; ``None`` entries are skipped.
    norm_type : float or 'inf', default 2
        p of the p-norm; ``inf`` is the largest absolute value.
    error_if_nonfinite : bool, default False
        Raise ``RuntimeError`` if the total is nan or inf.
    foreach : bool, optional
        Accepted for torch's signature; ignored.

    Returns
    -------
    Tensor ()
        The norm of the norms of each array (= the norm of their concatenation),
        in their common dtype; ``Tensor(0.0)`` for no arrays.
    """
    p = _norm_type(norm_type, "get_total_norm")
    arrays = [np.asarray(t.data if isinstance(t, Tensor) else t)
              for t in ([tensors] if isinstance(tensors, (Tensor, np.ndarray)) else tensors)
              if t is not None]
    if not arrays:
        return Tensor(0.0)
    dtype = np.result_type(*arrays)
    norms = np.stack([_vector_norm(a, p).astype(dtype) for a in arrays])
    total = _vector_norm(norms, p)
    if error_if_nonfinite and not np.isfinite(total):
        raise RuntimeError(
            f"The total norm of order {p} for gradients from `parameters` is non-finite, so it "
            "cannot be clipped. To disable this error and scale the gradients by the non-finite "
            "norm anyway, set `error_if_nonfinite=False`")
    return Tensor(total)


def clip_grads_with_norm_(parameters: TensorOrTensors, max_norm: float, total_norm: Any,
                          foreach: bool | None = None) -> None:
    """Scale every ``.grad`` in place by ``min(1, max_norm / (total_norm + 1e-6))`` (torch's).

    Parameters
    ----------
    parameters : Tensor or iterable of Tensors
        Parameters whose gradients are scaled; those without a gradient are skipped.
    max_norm : float
        The largest norm the gradients may have afterwards.
    total_norm : Tensor or float
        Their norm, e.g. from :func:`get_total_norm`.
    foreach : bool, optional
        Accepted for torch's signature; ignored.
    """
    params = [p for p in _as_list(parameters) if p.grad is not None]
    if not params:
        return
    total = np.asarray(total_norm.data if isinstance(total_norm, Tensor) else total_norm)
    dtype = total.dtype if np.issubdtype(total.dtype, np.floating) else np.float32
    coef = np.asarray(float(max_norm), dtype) / (total.astype(dtype) + np.asarray(_CLIP_EPS, dtype))
    coef = np.minimum(coef, np.asarray(1.0, dtype))
    with np.errstate(invalid="ignore"):     # inf * 0 = nan for a non-finite norm, as torch
        for p in params:
            p.grad[...] = p.grad * coef.astype(p.grad.dtype)


def clip_grad_norm_(parameters: TensorOrTensors, max_norm: float, norm_type: float | str = 2.0,
                    error_if_nonfinite: bool = False, foreach: bool | None = None) -> Tensor:
    """Rescale the gradients so that their total norm is at most ``max_norm``.

    The norm is that of all gradients concatenated into one vector; if it is
    above ``max_norm`` every gradient is multiplied by
    ``max_norm / (total_norm + 1e-6)``, otherwise (factor clamped to 1) left as is.
    Identical to ``torch.nn.utils.clip_grad_norm_``.

    Parameters
    ----------
    parameters : Tensor or iterable of Tensors
        Usually ``model.parameters()``; parameters with ``.grad`` None are skipped.
    max_norm : float
        Largest allowed total norm.
    norm_type : float or 'inf', default 2
        p of the p-norm (1, 2, ``inf``, ...).
    error_if_nonfinite : bool, default False
        Raise ``RuntimeError`` if the total norm is nan or inf (the gradients are
        then left unchanged); otherwise they are scaled by it anyway, as torch.
    foreach : bool, optional
        Accepted for torch's signature; ignored.

    Returns
    -------
    Tensor ()
        The total norm of the gradients *before* clipping (``Tensor(0.0)`` if
        none has a gradient); ``.item()`` gives a float for logging.

    Examples
    --------
    >>> loss.backward()                                            # doctest: +SKIP
    >>> norm = clip_grad_norm_(model.parameters(), max_norm=5.0)   # doctest: +SKIP
    >>> optimizer.step()                                           # doctest: +SKIP
    """
    params = _as_list(parameters)
    total = get_total_norm(_grads(params), norm_type, error_if_nonfinite, foreach)
    clip_grads_with_norm_(params, max_norm, total, foreach)
    return total


def clip_grad_value_(parameters: TensorOrTensors, clip_value: float,
                     foreach: bool | None = None) -> None:
    """Clamp every gradient element to ``[-clip_value, clip_value]`` in place (torch's).

    Parameters
    ----------
    parameters : Tensor or iterable of Tensors
        Parameters whose ``.grad`` is clamped; those without one are skipped.
    clip_value : float
        Bound on the absolute value of each gradient element.
    foreach : bool, optional
        Accepted for torch's signature; ignored.
    """
    c = float(clip_value)
    for g in _grads(parameters):
        np.clip(g, -c, c, out=g)
