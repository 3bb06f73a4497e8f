"""Loss kernels, and LeNet-5's Euclidean RBF output layer (the notes, 002).

Every loss kernel takes ndarrays and returns ``(loss, cache)``; its backward
takes the upstream gradient ``dloss`` (a 0-d array for ``'mean'``/``'sum'``,
the loss's shape for ``'none'``) and the cache.  The formulas are PyTorch's, so
the numbers match ``torch.nn.functional`` to rounding.

Class-index losses (cross-entropy, NLL) accept scores x of shape (C,), (N, C)
or (N, C, d1, ...), with integer targets of shape (), (N,) or (N, d1, ...).
Internally the class axis is moved last and everything else flattened into M
rows, ``x_rows (M, C)``.  For row m with target t_m, class weights w (default 1)
and ``keep_m = (t_m != ignore_index)``:

    nll_m = -w[t_m] * x[m, t_m] * keep_m
    'mean' = sum_m nll_m / sum_m w[t_m] keep_m        (a weighted mean, as torch)

Cross-entropy on logits z with label smoothing eps (C classes):

    L_m = (1 - eps) * nll_m(log_softmax(z)) + eps / C * smooth_m
    smooth_m = -sum_c w[c] log_softmax(z_m)[c] * keep_m
    dL_m/dz_m = keep_m * [ (1 - eps) w[t_m] (p_m - onehot(t_m)) + eps / C (W p_m - w) ]

with p = softmax(z) and W = sum_c w[c]; for eps = 0 and no weights this is the
notes' softmax - onehot, which has no sigma'(z) factor, so learning does not
slow down when the output saturates (unlike squared error).  'mean' divides
both parts by sum_m w[t_m] keep_m.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from cnnlab.kernels.activation import log_softmax_forward, sigmoid_forward

REDUCTIONS = ("mean", "sum", "none")

#: torch's lower bound on log(x) in binary_cross_entropy
BCE_LOG_MIN = -100.0
#: torch's lower bound on x (1 - x) in binary_cross_entropy's backward: 1e-12 rounded to
#: float32, as torch stores it (matters at x = 0 or 1, where the gradient is ~1e12)
BCE_GRAD_EPS = float(np.float32(1e-12))


# ------------------------------------------------------------------ helpers
def _to_rows(x: np.ndarray) -> np.ndarray:
    """(C,) -> (1, C); (N, C, d1, ...) -> (N * d1 * ..., C) with the class axis last."""
    if x.ndim == 1:
        return x[None, :]
    return np.moveaxis(x, 1, -1).reshape(-1, x.shape[1])


def _from_rows(rows: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Inverse of :func:`_to_rows` for an array of ``shape``."""
    if len(shape) == 1:
        return rows[0]
    moved = (shape[0],) + tuple(shape[2:]) + (shape[1],)
    return np.ascontiguousarray(np.moveaxis(rows.reshape(moved), -1, 1))


def _reduce(per: np.ndarray, reduction: str, denom) -> np.ndarray:
    """'none' -> per; 'sum' -> sum; 'mean' -> sum / denom (a 0-d array of per's dtype)."""
    if reduction == "none":
        return per
    total = per.sum()
    if reduction == "sum":
        return np.asarray(total, dtype=per.dtype)
    with np.errstate(invalid="ignore", divide="ignore"):   # all ignored: nan, as torch
        return np.asarray(total / denom, dtype=per.dtype)


def _scale(dloss: np.ndarray, reduction: str, denom) -> np.ndarray:
    """The factor d(loss)/d(per-element loss) times the upstream gradient."""
    if reduction == "mean":
        with np.errstate(invalid="ignore", divide="ignore"):
            return dloss / denom
    return dloss


def _sum_to_shape(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum a broadcast gradient back to ``shape``."""
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    for ax, n in enumerate(shape):
        if n == 1 and g.shape[ax] != 1:
            g = g.sum(axis=ax, keepdims=True)
    return g


class ClassTargets(NamedTuple):
    target: np.ndarray      # (M,) int, ignored rows replaced by class 0
    w_t: np.ndarray         # (M,) weight of each row's class, 0 where ignored
    keep: np.ndarray        # (M,) bool, False where target == ignore_index
    denom: np.ndarray       # sum of w_t: the 'mean' divisor


def _class_targets(target: np.ndarray, weight: np.ndarray | None, ignore_index: int,
                   dtype: np.dtype) -> ClassTargets:
    t = target.reshape(-1)
    keep = t != ignore_index
    t_safe = np.where(keep, t, 0)
    w_t = (np.ones(t.shape, dtype) if weight is None else weight[t_safe]) * keep
    w_t = w_t.astype(dtype, copy=False)
    return ClassTargets(t_safe, w_t, keep, w_t.sum())


# ---------------------------------------------------------------- nll_loss
class NLLCache(NamedTuple):
    targets: ClassTargets
    x_shape: tuple[int, ...]
    dtype: np.dtype
    reduction: str


def nll_loss_forward(log_p: np.ndarray, target: np.ndarray, weight: np.ndarray | None = None,
                     ignore_index: int = -100, reduction: str = "mean"
                     ) -> tuple[np.ndarray, NLLCache]:
    """log_p (C,) / (N, C) / (N, C, d1, ...), target () / (N,) / (N, d1, ...) ->
    loss () or target.shape for 'none';  loss_m = -w[t_m] log_p[m, t_m] (0 if ignored)."""
    rows = _to_rows(log_p)
    ct = _class_targets(target, weight, ignore_index, log_p.dtype)
    per = -ct.w_t * rows[np.arange(rows.shape[0]), ct.target]
    loss = _reduce(per.reshape(target.shape), reduction, ct.denom)
    return loss, NLLCache(ct, log_p.shape, log_p.dtype, reduction)


def nll_loss_backward(dloss: np.ndarray, cache: NLLCache) -> np.ndarray:
    """-> dlog_p: -w[t_m] * scale_m at (m, t_m), zero elsewhere."""
    ct = cache.targets
    M = ct.target.shape[0]
    C = cache.x_shape[0] if len(cache.x_shape) == 1 else cache.x_shape[1]
    s = _scale(dloss, cache.reduction, ct.denom)
    s = np.broadcast_to(np.reshape(s, -1) if cache.reduction == "none" else s, (M,))
    d = np.zeros((M, C), dtype=cache.dtype)
    with np.errstate(invalid="ignore"):      # ignored rows get 0 even if s is nan
        d[np.arange(M), ct.target] = np.where(ct.keep, -ct.w_t * s, 0)
    return _from_rows(d, cache.x_shape)


# ----------------------------------------------------------- cross_entropy
class CrossEntropyCache(NamedTuple):
    log_p: np.ndarray       # (M, C) log-softmax of the rows
    targets: ClassTargets
    weight: np.ndarray | None
    z_shape: tuple[int, ...]
    reduction: str
    label_smoothing: float


def cross_entropy_forward(z: np.ndarray, target: np.ndarray, weight: np.ndarray | None = None,
                          ignore_index: int = -100, reduction: str = "mean",
                          label_smoothing: float = 0.0
                          ) -> tuple[np.ndarray, CrossEntropyCache]:
    """z (C,) / (N, C) / (N, C, d1, ...) logits, target () / (N,) / (N, d1, ...) ->
    loss () or target.shape for 'none' (formula in the module docstring)."""
    rows = _to_rows(z)
    C = rows.shape[1]
    log_p = log_softmax_forward(rows, axis=1)
    ct = _class_targets(target, weight, ignore_index, z.dtype)
    eps = label_smoothing
    per = -ct.w_t * log_p[np.arange(rows.shape[0]), ct.target]
    if eps > 0:
        wlp = log_p if weight is None else log_p * weight
        smooth = -wlp.sum(axis=1) * ct.keep
        per = (1 - eps) * per + (eps / C) * smooth
    loss = _reduce(per.reshape(target.shape), reduction, ct.denom)
    return loss, CrossEntropyCache(log_p, ct, weight, z.shape, reduction, eps)


def cross_entropy_backward(dloss: np.ndarray, cache: CrossEntropyCache) -> np.ndarray:
    """-> dz = scale_m keep_m [(1 - eps) w[t_m] (p - onehot(t_m)) + eps/C (W p - w)]."""
    ct, eps = cache.targets, cache.label_smoothing
    M, C = cache.log_p.shape
    s = _scale(dloss, cache.reduction, ct.denom)
    s = np.broadcast_to(np.reshape(s, -1) if cache.reduction == "none" else s, (M,))
    p = np.exp(cache.log_p)
    with np.errstate(invalid="ignore"):       # ignored rows get 0 even if s is nan (as torch)
        a = np.where(ct.keep, (1 - eps) * ct.w_t * s, 0)          # weight of (p - onehot)
        b = np.where(ct.keep, (eps / C) * s, 0) if eps > 0 else None   # weight of (W p - w)
    if b is not None:
        W = C if cache.weight is None else cache.weight.sum()
        dz = p * (a + b * W)[:, None]
        dz -= b[:, None] * (1 if cache.weight is None else cache.weight)
    else:
        dz = p * a[:, None]
    dz[np.arange(M), ct.target] -= a
    return _from_rows(dz.astype(cache.log_p.dtype, copy=False), cache.z_shape)


# ---------------------------------------------------- binary cross-entropy
class BCECache(NamedTuple):
    x: np.ndarray
    y: np.ndarray
    weight: np.ndarray | None
    reduction: str


def binary_cross_entropy_forward(x: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None,
                                 reduction: str = "mean") -> tuple[np.ndarray, BCECache]:
    """x probabilities in [0, 1], y targets, same shape; weight broadcastable ->
    l = -w [y max(log x, -100) + (1 - y) max(log(1 - x), -100)], 'mean' over x.size."""
    with np.errstate(divide="ignore"):
        log_x = np.maximum(np.log(x), BCE_LOG_MIN)
        log_1mx = np.maximum(np.log1p(-x), BCE_LOG_MIN)
    per = -(y * log_x + (1 - y) * log_1mx)
    if weight is not None:
        per = per * weight
    return _reduce(per, reduction, x.size), BCECache(x, y, weight, reduction)


def binary_cross_entropy_backward(dloss: np.ndarray, cache: BCECache
                                  ) -> tuple[np.ndarray, np.ndarray]:
    """-> dx = w (x - y) / max(x (1 - x), 1e-12),  dy = w (log(1 - x) - log x) (torch's, unclamped)."""
    x, y, w = cache.x, cache.y, cache.weight
    s = _scale(dloss, cache.reduction, x.size)
    if w is not None:
        s = s * w
    dx = s * (x - y) / np.maximum(x * (1 - x), BCE_GRAD_EPS)
    with np.errstate(divide="ignore"):
        dy = s * (np.log1p(-x) - np.log(x))
    return dx.astype(x.dtype, copy=False), dy.astype(y.dtype, copy=False)


def _log_sigmoid(x: np.ndarray) -> np.ndarray:
    """log sigma(x) = min(x, 0) - log1p(exp(-|x|)), stable for any x."""
    return np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x)))


class BCEWithLogitsCache(NamedTuple):
    x: np.ndarray
    y: np.ndarray
    weight: np.ndarray | None
    pos_weight: np.ndarray | None
    reduction: str


def binary_cross_entropy_with_logits_forward(
        x: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None,
        pos_weight: np.ndarray | None = None, reduction: str = "mean"
) -> tuple[np.ndarray, BCEWithLogitsCache]:
    """x logits, y targets, same shape; weight and pos_weight (C,) broadcastable ->
    l = w [(1 - y) x - (1 + (pw - 1) y) log sigma(x)]
      = -w [pw y log sigma(x) + (1 - y) log(1 - sigma(x))]  (the notes' C with a = sigma(x)),
    computed through the stable log sigma; 'mean' over x.size."""
    lw = 1 if pos_weight is None else 1 + (pos_weight - 1) * y
    per = (1 - y) * x - lw * _log_sigmoid(x)
    if weight is not None:
        per = per * weight
    per = per.astype(x.dtype, copy=False)
    return (_reduce(per, reduction, x.size),
            BCEWithLogitsCache(x, y, weight, pos_weight, reduction))


def binary_cross_entropy_with_logits_backward(dloss: np.ndarray, cache: BCEWithLogitsCache
                                              ) -> tuple[np.ndarray, np.ndarray]:
    """-> dx = w [(1 + (pw - 1) y) sigma(x) - pw y]  (= w (sigma(x) - y) without pos_weight:
    no sigma'(x) factor, the notes' point),  dy = w [-x - (pw - 1) log sigma(x)]."""
    x, y, w, pw = cache.x, cache.y, cache.weight, cache.pos_weight
    s = _scale(dloss, cache.reduction, x.size)
    if w is not None:
        s = s * w
    sig = sigmoid_forward(x)
    if pw is None:
        dx, dy = s * (sig - y), -s * x
    else:
        dx = s * ((1 + (pw - 1) * y) * sig - pw * y)
        dy = -s * (x + (pw - 1) * _log_sigmoid(x))
    return (np.broadcast_to(dx, x.shape).astype(x.dtype, copy=True),
            np.broadcast_to(dy, y.shape).astype(y.dtype, copy=True))


# ---------------------------------------------------------- multi-margin
class MultiMarginCache(NamedTuple):
    hinge: np.ndarray       # (N, C) max(0, margin - x[y] + x[i]), 0 at i = y
    target: np.ndarray      # (N,)
    w_t: np.ndarray | None  # (N,) weight of each sample's class
    x_shape: tuple[int, ...]
    p: int
    reduction: str


def multi_margin_loss_forward(x: np.ndarray, target: np.ndarray, p: int = 1,
                              margin: float = 1.0, weight: np.ndarray | None = None,
                              reduction: str = "mean") -> tuple[np.ndarray, MultiMarginCache]:
    """x (C,) / (N, C) scores, target () / (N,) -> the multiclass SVM hinge (the notes, 002):
    l_n = w[y_n] / C * sum_{i != y_n} max(0, margin - x[n, y_n] + x[n, i])^p,  p in {1, 2};
    'mean' over N."""
    rows = x[None, :] if x.ndim == 1 else x
    N, C = rows.shape
    t = target.reshape(-1)
    ar = np.arange(N)
    hinge = margin - rows[ar, t][:, None] + rows
    hinge[ar, t] = 0
    hinge = np.maximum(hinge, 0)
    per = (hinge if p == 1 else hinge * hinge).sum(axis=1) / C
    w_t = None if weight is None else weight[t]
    if w_t is not None:
        per = per * w_t
    loss = _reduce(per.reshape(target.shape).astype(x.dtype, copy=False), reduction, N)
    return loss, MultiMarginCache(hinge, t, w_t, x.shape, p, reduction)


def multi_margin_loss_backward(dloss: np.ndarray, cache: MultiMarginCache) -> np.ndarray:
    """-> dx[n, i] = s_n w[y_n] / C * p h^(p-1) [h > 0] for i != y_n, dx[n, y_n] = -sum_i dx[n, i]."""
    h = cache.hinge
    N, C = h.shape
    s = _scale(dloss, cache.reduction, N)
    s = np.broadcast_to(np.reshape(s, -1) if cache.reduction == "none" else s, (N,))
    if cache.w_t is not None:
        s = s * cache.w_t
    dh = (h > 0).astype(h.dtype) if cache.p == 1 else 2 * h
    dx = dh * (s / C)[:, None]
    dx[np.arange(N), cache.target] = -dx.sum(axis=1)
    return dx.reshape(cache.x_shape).astype(h.dtype, copy=False)


# --------------------------------------------------------- squared error
def mse_forward(y: np.ndarray, t: np.ndarray, reduction: str = "mean") -> np.ndarray:
    """mean (or sum) of (y - t)^2, elementwise for 'none'."""
    d2 = (y - t) ** 2
    if reduction == "mean":
        return np.asarray(d2.mean())
    if reduction == "sum":
        return np.asarray(d2.sum())
    return d2


def mse_backward(dloss: np.ndarray, y: np.ndarray, t: np.ndarray,
                 reduction: str = "mean") -> tuple[np.ndarray, np.ndarray]:
    """-> dy = 2 (y - t) dloss (/ size for 'mean'), dt = -dy."""
    d = 2 * (y - t)
    if reduction == "mean":
        d = d * (dloss / y.size)
    else:
        d = d * dloss
    return d, -d


def squared_error_forward(y: np.ndarray, t: np.ndarray) -> np.ndarray:
    """The notes' E = 1/2 sum (t - y)^2 over every element (002) -> 0-d array."""
    d = y - t
    return np.asarray(0.5 * (d * d).sum(), dtype=d.dtype)


def squared_error_backward(dloss: np.ndarray, y: np.ndarray, t: np.ndarray
                           ) -> tuple[np.ndarray, np.ndarray]:
    """-> dy = (y - t) dloss, dt = -dy (the 1/2 cancels the 2)."""
    d = (y - t) * dloss
    return d, -d


# ------------------------------------------------ LeNet-5's RBF output layer
def rbf_output_forward(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """x (N, F), centres w (K, F) -> y (N, K),  y[n, i] = sum_j (x[n, j] - w[i, j])^2.

    LeNet-5's Euclidean radial-basis output units (the notes, 002): one unit
    per class, each a squared distance to its centre, so smaller is better.
    Computed from the differences (no cancellation), not ||x||^2 - 2 x.w + ||w||^2.
    """
    d = x[:, None, :] - w[None, :, :]
    return (d * d).sum(axis=2)


def rbf_output_backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray]:
    """dy (N, K) -> dx (N, F) = 2 (rowsum(dy) x - dy w),  dw (K, F) = 2 (colsum(dy) w - dy^T x)."""
    dx = 2 * (dy.sum(axis=1)[:, None] * x - dy @ w)
    dw = 2 * (dy.sum(axis=0)[:, None] * w - dy.T @ x)
    return dx, dw
