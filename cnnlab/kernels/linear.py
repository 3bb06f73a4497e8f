"""Fully connected layer: y = x W^T + b, with W stored (out, in) as in PyTorch.

Backward, as derived in the notes for an FC layer with delta = dL/dy:
dL/dx = delta W,  dL/dW = delta^T x,  dL/db = sum over the batch of delta.

Each product runs with BLAS on one thread (:mod:`cnnlab.kernels._threads`); a large
one is cut into column blocks of its result, spread over the cores.  The number of
blocks depends on the shapes only, so the results do not depend on the thread count.
"""
from __future__ import annotations

from functools import partial

import numpy as np

from cnnlab.kernels import _threads

# a product of at least this many multiply-adds per block is cut into blocks (at most 8)
BLOCK_MACS = 4 << 20


def _blocks(macs: int, width: int) -> list[tuple[int, int]]:
    """Column blocks of a result ``width`` wide, one per BLOCK_MACS of work (1 to 8)."""
    return _threads.spans(width, int(min(8, width, macs // BLOCK_MACS)))


def _product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a (m, k) @ b (k, n), cut into column blocks of the result."""
    m, k = a.shape
    n = b.shape[1]
    out = np.empty((m, n), dtype=np.result_type(a, b))

    def block(c0: int, c1: int) -> None:
        np.matmul(a, b[:, c0:c1], out=out[:, c0:c1])

    _threads.parallel([partial(block, *span) for span in _blocks(m * k * n, n)])
    return out


def _rows(a: np.ndarray) -> np.ndarray:
    """(..., k) -> (prod(...), k), also when k or the batch is 0."""
    return a.reshape(int(np.prod(a.shape[:-1])), a.shape[-1])


def linear_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """x (..., in) , w (out, in), b (out,) -> y (..., out)."""
    y = _product(_rows(x), w.T)
    if b is not None:
        y += b
    return y.reshape(*x.shape[:-1], w.shape[0])


def linear_backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray, need_dx: bool = True,
                    need_dw: bool = True, has_bias: bool = True):
    """dy (..., out) -> dx (..., in), dw (out, in), db (out,) or None."""
    dy2 = _rows(dy)
    dx = _product(dy2, w).reshape(*dy.shape[:-1], w.shape[1]) if need_dx else None
    dw = _product(dy2.T, _rows(x)) if need_dw else None
    db = dy2.sum(axis=0) if has_bias else None
    return dx, dw, db
