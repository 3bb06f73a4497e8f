"""Elementwise activations and softmax: forward and backward on ndarrays.

Every backward takes the upstream gradient and what the forward saved, and
returns the gradient with respect to the input (same shape).
"""
from __future__ import annotations

from functools import partial

import numpy as np

from cnnlab.kernels import _numba as _nb
from cnnlab.kernels import _threads

_COMPILED = (np.float32, np.float64)    # dtypes the compiled ReLU loops take (not float16)


def relu_forward(x: np.ndarray) -> np.ndarray:
    """max(x, 0), elementwise (NaN stays NaN), in x's memory order."""
    if not _nb.AVAILABLE or not _dense(x) or x.dtype not in _COMPILED:
        return np.maximum(x, 0)
    y = np.empty_like(x)            # same memory order as x: its flat view is a view
    if y.strides != x.strides:      # e.g. reversed axes
        return np.maximum(x, 0)
    return _flat_parallel(_nb.relu_fwd, y, x)


def relu_inplace(y: np.ndarray) -> np.ndarray:
    """y = max(y, 0) written over y (a layer's fresh output, for a fused ReLU), split
    over the threads as :func:`relu_forward` is; returns y."""
    if _nb.AVAILABLE and _dense(y) and y.dtype in _COMPILED:
        return _flat_parallel(_nb.relu_fwd, y, y)
    return np.maximum(y, 0, out=y)


def relu_backward(dy: np.ndarray, y: np.ndarray) -> np.ndarray:
    """dy where the output is positive, else 0.  At exactly x = 0 the
    (sub)gradient is taken as 0, as in PyTorch."""
    if (_nb.AVAILABLE and dy.dtype == y.dtype and dy.dtype in _COMPILED and dy.shape == y.shape
            and dy.strides == y.strides and _dense(y)):
        return _flat_parallel(_nb.relu_bwd, np.empty_like(dy), dy, y)
    return dy * (y > 0)


def add_relu_forward(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """max(a + b, 0) for arrays of one shape (a residual block's sum and its ReLU), in
    one pass when both share a dense memory order; NumPy's two passes are the
    specification, and give the same numbers."""
    if (_nb.AVAILABLE and a.shape == b.shape and a.dtype == b.dtype and a.dtype in _COMPILED
            and a.strides == b.strides and _dense(a)):
        y = np.empty_like(a)
        if y.strides == a.strides:
            return _flat_parallel(_nb.add_relu_fwd, y, a, b)
    return relu_forward(np.add(a, b))


def _flat_parallel(kernel, out: np.ndarray, *inputs: np.ndarray) -> np.ndarray:
    """``kernel(*inputs, out)`` on the flat views of arrays laid out alike (dense, equal
    strides), cut into spans over the threads; returns ``out``."""
    flat = [a.ravel(order="K") for a in (*inputs, out)]
    _threads.parallel([partial(kernel, *(f[a:b] for f in flat))
                       for a, b in _threads.split(out.size, out.size)], blas=False)
    return out


def _dense(a: np.ndarray) -> bool:
    """Whether ``a`` fills one block of memory in some axis order (so ``ravel('K')``
    is a view and two such arrays with equal strides line up element by element)."""
    if a.flags.c_contiguous or a.flags.f_contiguous:
        return True
    order = np.argsort([-abs(s) for s in a.strides], kind="stable")
    return bool(np.transpose(a, order).flags.c_contiguous)


def sigmoid_forward(x: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-x), computed without overflow for large |x|."""
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    ex = np.exp(x[~pos])
    out[~pos] = ex / (1.0 + ex)
    return out


def sigmoid_backward(dy: np.ndarray, y: np.ndarray) -> np.ndarray:
    """d sigma = sigma (1 - sigma)."""
    return dy * y * (1 - y)


def tanh_forward(x: np.ndarray) -> np.ndarray:
    return np.tanh(x)


def tanh_backward(dy: np.ndarray, y: np.ndarray) -> np.ndarray:
    """d tanh = 1 - tanh^2."""
    return dy * (1 - y * y)


def softmax_forward(x: np.ndarray, axis: int) -> np.ndarray:
    """exp(x) / sum exp(x) along ``axis``, shifted by the max for stability."""
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def softmax_backward(dy: np.ndarray, y: np.ndarray, axis: int) -> np.ndarray:
    """dx = y * (dy - sum(dy * y)) along ``axis``."""
    return y * (dy - (dy * y).sum(axis=axis, keepdims=True))


def log_softmax_forward(x: np.ndarray, axis: int) -> np.ndarray:
    """x - logsumexp(x) along ``axis``."""
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def log_softmax_backward(dy: np.ndarray, y: np.ndarray, axis: int) -> np.ndarray:
    """dx = dy - softmax(x) * sum(dy) along ``axis``; softmax(x) = exp(y)."""
    return dy - np.exp(y) * dy.sum(axis=axis, keepdims=True)


def leaky_relu_forward(x: np.ndarray, negative_slope: float) -> np.ndarray:
    """x where x > 0, else negative_slope * x."""
    return np.where(x > 0, x, x * negative_slope)


def leaky_relu_backward(dy: np.ndarray, x: np.ndarray, negative_slope: float) -> np.ndarray:
    """dy where x > 0, else negative_slope * dy (so the slope at exactly 0, as in PyTorch)."""
    return np.where(x > 0, dy, dy * negative_slope)


def elu_forward(x: np.ndarray, alpha: float) -> np.ndarray:
    """x where x > 0, else alpha (e^x - 1)."""
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


def elu_backward(dy: np.ndarray, x: np.ndarray, alpha: float) -> np.ndarray:
    """dy where x > 0, else alpha e^x dy (alpha at exactly 0, as in PyTorch)."""
    return np.where(x > 0, dy, dy * (alpha * np.exp(np.minimum(x, 0))))


SCALED_TANH_A = 1.7159
SCALED_TANH_S = 2.0 / 3.0


def scaled_tanh_forward(x: np.ndarray) -> np.ndarray:
    """LeCun's f(x) = 1.7159 tanh(2x / 3) (the notes, 002): f(+-1) ~ +-1, so
    targets of +-1 sit where the curve is still steep."""
    return SCALED_TANH_A * np.tanh(x * SCALED_TANH_S)


def scaled_tanh_backward(dy: np.ndarray, y: np.ndarray) -> np.ndarray:
    """f'(x) = A S (1 - tanh^2(S x)) = S (A - y^2 / A)."""
    return dy * (SCALED_TANH_S * (SCALED_TANH_A - y * y / SCALED_TANH_A))
