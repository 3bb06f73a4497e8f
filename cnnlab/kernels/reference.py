"""Reference implementations: the notes' formulas written as plainly as possible.

These are the specification the fast kernels are tested against, not code the
library runs.  They are slow on purpose: every loop of the definition is a
Python loop (or one ``np.sum`` over a window).
"""
from __future__ import annotations

import numpy as np


def conv2d_naive(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: tuple[int, int],
                 padding: tuple[int, int, int, int], dilation: tuple[int, int],
                 groups: int) -> np.ndarray:
    """y[n, o, i, j] = b[o] + sum_{c, u, v} w[o, c, u, v] * xp[n, g*Cg + c, i*s + u*d, j*s + v*d].

    x (N, C, H, W), w (O, C // groups, KH, KW) -> y (N, O, OH, OW).
    """
    N, C, H, W = x.shape
    O, Cg, KH, KW = w.shape
    pt, pb, pl, pr = padding
    sh, sw = stride
    dh, dw = dilation
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    OH = (H + pt + pb - dh * (KH - 1) - 1) // sh + 1
    OW = (W + pl + pr - dw * (KW - 1) - 1) // sw + 1
    Og = O // groups
    y = np.zeros((N, O, OH, OW), dtype=np.result_type(x, w))
    for n in range(N):
        for o in range(O):
            g = o // Og
            xs = xp[n, g * Cg:(g + 1) * Cg]
            for i in range(OH):
                for j in range(OW):
                    patch = xs[:, i * sh:i * sh + dh * (KH - 1) + 1:dh,
                               j * sw:j * sw + dw * (KW - 1) + 1:dw]
                    y[n, o, i, j] = np.sum(patch * w[o])
            if b is not None:
                y[n, o] += b[o]
    return y


def conv2d_full(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """MATLAB's ``conv2(x, k, 'full')`` for 2-D arrays: a true convolution
    (kernel flipped), output size (H + KH - 1, W + KW - 1)."""
    H, W = x.shape
    KH, KW = k.shape
    out = np.zeros((H + KH - 1, W + KW - 1), dtype=np.result_type(x, k))
    for u in range(KH):
        for v in range(KW):
            out[u:u + H, v:v + W] += k[u, v] * x
    return out


def conv2d_valid(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """MATLAB's ``conv2(x, k, 'valid')``: a true convolution, output
    (H - KH + 1, W - KW + 1)."""
    H, W = x.shape
    KH, KW = k.shape
    k_rot = k[::-1, ::-1]     # turned by 180 degrees: conv2 is a correlation with it
    out = np.zeros((H - KH + 1, W - KW + 1), dtype=np.result_type(x, k))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = np.sum(x[i:i + KH, j:j + KW] * k_rot)
    return out


def conv2d_backward_notes(x: np.ndarray, w: np.ndarray,
                          delta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bouvrie's backward for a stride-1, unpadded, ungrouped conv layer.

    For the cross-correlation y_j = sum_i x_i (*) k_ij (what libraries compute):

    * input sensitivity  delta_i = sum_j conv2(delta_j, rot180(rot180(k_ij)), 'full')
      -- the notes write conv2(delta_j, rot180(k_ij), 'full') for the layer
      defined with a true convolution; with cross-correlation the kernel is
      already rotated once, so it appears unrotated here;
    * kernel gradient    dE/dk_ij = conv2(x_i, rot180(delta_j), 'valid')
      (again one rot180 fewer than for a true-convolution layer);
    * bias gradient      dE/db_j = sum_{u,v} (delta_j)_{uv}.

    x (N, C, H, W), w (O, C, KH, KW), delta (N, O, OH, OW).
    """
    N, C, H, W = x.shape
    O = w.shape[0]
    dx = np.zeros_like(x, dtype=np.result_type(x, w))
    dw = np.zeros_like(w, dtype=np.result_type(x, w))
    for n in range(N):
        for i in range(C):
            for j in range(O):
                dx[n, i] += conv2d_full(delta[n, j], w[j, i])
                dw[j, i] += conv2d_valid(x[n, i], np.rot90(delta[n, j], 2))
    db = delta.sum(axis=(0, 2, 3))
    return dx, dw, db


def max_pool2d_naive(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int],
                     padding: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Max over each window (padding counts as -inf) and the flat index of the
    first maximum in scan order.  x (N, C, H, W) -> (N, C, OH, OW) twice."""
    N, C, H, W = x.shape
    KH, KW = kernel
    sh, sw = stride
    ph, pw = padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
    OH = (H + 2 * ph - KH) // sh + 1
    OW = (W + 2 * pw - KW) // sw + 1
    y = np.empty((N, C, OH, OW), dtype=x.dtype)
    arg = np.empty((N, C, OH, OW), dtype=np.int64)
    for n in range(N):
        for c in range(C):
            for i in range(OH):
                for j in range(OW):
                    win = xp[n, c, i * sh:i * sh + KH, j * sw:j * sw + KW]
                    k = int(np.argmax(win))
                    y[n, c, i, j] = win.flat[k]
                    arg[n, c, i, j] = k
    return y, arg
