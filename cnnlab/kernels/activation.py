"""Elementwise activations and softmax: forward and backward on ndarrays.

Every backward takes the upstream gradient and what the forward saved, and
returns the gradient with respect to the input (same shape).
"""
from __future__ import annotations

import numpy as np


def relu_forward(x: np.ndarray) -> np.ndarray:
    """max(x, 0), elementwise."""
    return np.maximum(x, 0)


def relu_backward(dy: np.ndarray, y: np.ndarray) -> np.ndarray:
    """dy where the output is positive, else 0.  At exactly x = 0 the
    (sub)gradient is taken as 0, as in PyTorch."""
    return dy * (y > 0)


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
