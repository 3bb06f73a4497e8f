"""Fully connected layer: y = x W^T + b, with W stored (out, in) as in PyTorch.

Backward, as derived in the notes for an FC layer with delta = dL/dy:
dL/dx = delta W,  dL/dW = delta^T x,  dL/db = sum over the batch of delta.
"""
from __future__ import annotations

import numpy as np


def linear_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """x (..., in) , w (out, in), b (out,) -> y (..., out)."""
    y = x @ w.T
    if b is not None:
        y += b
    return y


def linear_backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray, need_dx: bool = True,
                    need_dw: bool = True, has_bias: bool = True):
    """dy (..., out) -> dx (..., in), dw (out, in), db (out,) or None."""
    dx = dy @ w if need_dx else None
    dy2 = dy.reshape(-1, dy.shape[-1])
    dw = dy2.T @ x.reshape(-1, x.shape[-1]) if need_dw else None
    db = dy2.sum(axis=0) if has_bias else None
    return dx, dw, db
