"""Convolution as one matrix product: im2col + GEMM forward, GEMM + col2im backward.

As the notes' im2col section describes, every receptive field is stretched
into a column of a matrix ``X_col`` and the convolution becomes one matrix
product with the filters stretched into the rows of ``W_row``.  The notes'
example: x 227x227x3 with 96 filters of 11x11x3 at stride 4 gives ``X_col`` of
363 x 3025, ``W_row`` of 96 x 363, and ``np.dot(W_row, X_col)`` of 96 x 3025,
reshaped to 55x55x96.

``X_col`` is (C*KH*KW, N*OH*OW), so the product ``W_row @ X_col`` is
(O, N*OH*OW): the output is *channel-major* (physically C, N, H, W), and
:func:`gemm_forward` hands it back as a transposed NCHW *view* of that buffer.
NumPy's elementwise ops and the pooling kernels keep the physical layout for the
next layer.  With G groups both matrices are cut into G independent products.

Backward (the notes, Bouvrie's equations for a conv layer), with delta = dL/dy:

* bias:   dL/db_o = sum over n, i, j of delta_o
* weight: dL/dW = delta @ X_col^T (one GEMM per group); this equals the
  notes' rot180(conv2(x, rot180(delta), 'valid')).
* data:   dX_col = W_row^T @ delta, then col2im adds every column back onto
  the window it came from (KH * KW strided adds).  This is exactly the
  notes' full convolution of delta with the 180-degree rotated kernel;
  :mod:`cnnlab.kernels.reference` implements that formula literally and the
  tests check the two agree.

The math of one batch chunk is :func:`gemm_forward_chunk` and
:func:`gemm_backward_chunk`; :func:`gemm_forward` and :func:`gemm_backward` run
them over the batch in chunks whose column matrix stays in cache (a few MB), one
chunk per core at a time (:func:`cnnlab.kernels._threads.map_chunks`, BLAS on one
thread each).
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

from cnnlab.kernels import _numba as _nb
from cnnlab.kernels import _threads
from cnnlab.kernels.conv_common import ConvSpec, Padding4, Pair, pad_channel_major

# Each batch chunk's column matrix (about CHUNK_BYTES) stays in cache while it is
# built, multiplied and dropped.  Up to KEEP_BYTES of column matrices per layer are
# kept for the backward pass; above that the input is kept instead and the columns
# are rebuilt from it: a 3x3 conv at 16@32x32 on 128 images would otherwise store 75 MB.
CHUNK_BYTES = 3 << 20
KEEP_BYTES = 16 << 20
# Below SPLIT_BYTES of columns in all, one chunk on one core (handing a piece to
# another thread costs about 0.1 ms).  Above it, at least two chunks, so that a
# ResNet-20's 2 MB projections, too, use both cores.
SPLIT_BYTES = 256 << 10
# OpenBLAS multiplies a product of at most SMALL_GEMM_MACS multiply-adds with its
# small-matrix kernels (on AVX-512 machines), which are 2-3x faster on the skinny
# products of few-channel convolutions than its general GEMM: measured one thread,
# (6 x 25) @ (25 x 25088), LeNet's conv1, 0.20 ms whole and 0.11 ms in blocks of
# 4096 columns; its dW 0.47 ms whole and 0.11 ms in blocks.  So the long axis (the
# pixels) is cut into blocks of that many multiply-adds, when the blocks stay wide:
# at least MIN_BLOCK_OUT columns where each block writes its own columns of the
# result, MIN_BLOCK_SUM where the blocks' products are added up (dW), below which
# the extra calls and sums cost more than they gain (measured from 16 x 144 on).
SMALL_GEMM_MACS = 1_000_000
MIN_BLOCK_OUT = 256
MIN_BLOCK_SUM = 768
# dW = delta @ X_col^T is multiplied with X_col on the left, (X_col @ delta^T)^T, up to
# this many weights: forward + backward of a conv layer, in place, took 0.82x the time
# at 16@32x32 (batch 128), 0.89x at 64@56x56 (batch 8), 0.99x at 256@28x28, but 1.1x
# at 512@14x14 (2.4M weights)
DW_SWAP_MAX = 1 << 20


# how a fused ReLU's gradient is taken: (dL/dy, y) -> dL/d(pre-activation), same shape
ReluGrad = Callable[[np.ndarray, np.ndarray], np.ndarray]


class GemmCache(NamedTuple):
    """What :func:`gemm_backward` needs from :func:`gemm_forward`."""

    spec: ConvSpec
    w_rows: np.ndarray          # W_row (G, Og, Cg*KH*KW), rows in the order of X_col's
    cols: tuple[np.ndarray, ...] | None  # X_col of each batch chunk, (G, Cg*KH*KW, n*OH*OW);
                                         # None when not kept (rebuilt from ``x``)
    x: np.ndarray | None        # the input itself (no copy) when ``cols`` is None
    chunk: int                  # samples per batch chunk

    layout = "cols"             # the algorithm's name (a class attribute, not a field)


def batch_chunk(N: int, bytes_per_sample: int) -> int:
    """Samples per chunk, from the shapes alone (never from the thread count, so
    results do not depend on it): chunks of about CHUNK_BYTES, at least two, aiming
    at an even number (small batches round up to fewer, larger chunks)."""
    total = N * bytes_per_sample
    if N < 2 or total < SPLIT_BYTES:
        return N
    pieces = max(2, -(-total // CHUNK_BYTES))
    pieces += pieces % 2
    return -(-N // min(pieces, N))


def im2col_cols(xp: np.ndarray, kernel: Pair, stride: Pair, dilation: Pair, out_hw: Pair,
                groups: int) -> np.ndarray:
    """The notes' X_col: xp (N, C, Hp, Wp) -> (G, Cg*KH*KW, N*OH*OW), each
    column one receptive field, rows ordered (c, kh, kw) like a filter."""
    N, C, Hp, Wp = xp.shape
    KH, KW = kernel
    OH, OW = out_hw
    G = groups
    Cg = C // G
    if _nb.AVAILABLE:
        out = _nb.im2col_cm(xp.transpose(1, 0, 2, 3), KH, KW, stride[0], stride[1],
                            dilation[0], dilation[1], OH, OW)
        return out.reshape(G, Cg * KH * KW, N * OH * OW)
    sN, sC, sH, sW = xp.strides
    windows = np.lib.stride_tricks.as_strided(
        xp, shape=(G, Cg, KH, KW, N, OH, OW),
        strides=(sC * Cg, sC, sH * dilation[0], sW * dilation[1], sN, sH * stride[0],
                 sW * stride[1]),
        writeable=False)
    return np.ascontiguousarray(windows).reshape(G, Cg * KH * KW, N * OH * OW)


def im2col(x: np.ndarray, padding: Padding4, kernel: Pair, stride: Pair, dilation: Pair,
           out_hw: Pair, groups: int) -> np.ndarray:
    """X_col of an unpadded input: x (N, C, H, W) -> (G, Cg*KH*KW, N*OH*OW)."""
    return im2col_cols(pad_channel_major(x, padding), kernel, stride, dilation, out_hw, groups)


def col2im_cols(dcols: np.ndarray, x_shape: tuple[int, int, int, int], padding: Padding4,
                kernel: Pair, stride: Pair, dilation: Pair, out_hw: Pair) -> np.ndarray:
    """Adjoint of :func:`im2col_cols`: (G, Cg*KH*KW, N*OH*OW) -> dx (N, C, H, W),
    accumulated in a channel-major buffer (overlapping windows add up)."""
    N, C, H, W = x_shape
    pt, pb, pl, pr = padding
    KH, KW = kernel
    sh, sw = stride
    OH, OW = out_hw
    d = dcols.reshape(C, KH, KW, N, OH, OW)
    if _nb.AVAILABLE:
        dxp = _nb.col2im_cm(d, sh, sw, dilation[0], dilation[1], H + pt + pb, W + pl + pr)
        return dxp[:, :, pt:pt + H, pl:pl + W].transpose(1, 0, 2, 3)
    dxp = np.zeros((C, N, H + pt + pb, W + pl + pr), dtype=dcols.dtype)
    for i in range(KH):
        hi = i * dilation[0]
        for j in range(KW):
            wj = j * dilation[1]
            dxp[:, :, hi:hi + sh * (OH - 1) + 1:sh, wj:wj + sw * (OW - 1) + 1:sw] += d[:, i, j]
    return dxp[:, :, pt:pt + H, pl:pl + W].transpose(1, 0, 2, 3)


def matmul_per_group(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """(G, m, k) @ (G, k, n) -> (G, m, n), one product per group; one plain 2-D GEMM
    when G == 1 (a stack of one takes NumPy's slower batched path)."""
    if a.shape[0] == 1:
        r = np.matmul(a[0], b[0], out=None if out is None else out[0])
        return r[None] if out is None else out
    return np.matmul(a, b, out=out)


# OpenBLAS kernels with the small-matrix path that SMALL_GEMM_MACS and DW_SWAP_MAX were
# measured on (its AVX-512 x86 kernels); with any other kernel the products run whole
SMALL_GEMM_KERNELS = ("SKYLAKEX", "COOPERLAKE", "SAPPHIRERAPIDS")
_small_gemm: bool | None = None


def small_gemm_kernel() -> bool:
    """Whether the loaded OpenBLAS runs the small-matrix kernels (found once, from
    threadpoolctl's report of its architecture: a property of the machine, not of
    the thread count)."""
    global _small_gemm
    if _small_gemm is None:
        try:
            from threadpoolctl import threadpool_info

            archs = [str(p.get("architecture") or "").upper() for p in threadpool_info()
                     if p.get("internal_api") == "openblas"]
        except Exception:    # threadpoolctl absent or failing: assume the plain products
            archs = []
        _small_gemm = any(a in SMALL_GEMM_KERNELS for a in archs)
    return _small_gemm


def column_blocks(n: int, macs_per_column: int, min_width: int) -> list[tuple[int, int]]:
    """Spans of range(n) of near-equal width, each a product of at most SMALL_GEMM_MACS
    multiply-adds, or one span when such blocks would be narrower than ``min_width``
    or OpenBLAS has no small-matrix kernel here.  From the shapes and the machine
    alone, so results do not depend on the thread count."""
    if not small_gemm_kernel():
        return [(0, n)]
    width = SMALL_GEMM_MACS // max(1, macs_per_column)
    if width >= n or width < min_width:
        return [(0, n)]
    return _threads.spans(n, -(-n // width))


def matmul_columns(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> np.ndarray:
    """out = a @ b, (G, m, k) @ (G, k, n) -> (G, m, n), in blocks of b's columns
    (see SMALL_GEMM_MACS); the same numbers as :func:`matmul_per_group`, each
    block's columns computed alone."""
    G, m, k = a.shape
    for c0, c1 in column_blocks(b.shape[2], m * k, MIN_BLOCK_OUT):
        matmul_per_group(a, b[:, :, c0:c1], out=out[:, :, c0:c1])
    return out


def matmul_nt_blocks(d: np.ndarray, c: np.ndarray) -> np.ndarray:
    """d @ c^T, (G, m, n) by (G, k, n) -> (G, m, k): the weight gradient delta @ X_col^T.

    The long shared axis n is cut into blocks (see SMALL_GEMM_MACS) whose products
    are added in order.  Up to DW_SWAP_MAX weights, each block is multiplied with the
    larger operand on the left (c_blk @ d_blk^T, transposed back, when k >= m),
    which OpenBLAS runs up to twice as fast as the other order (LeNet's conv2,
    (16 x 6400) by (150 x 6400): 0.38 ms as d @ c^T, 0.22 ms as (c @ d^T)^T)."""
    m, k = d.shape[1], c.shape[1]
    swap = k >= m and m * k <= DW_SWAP_MAX and small_gemm_kernel()
    total = None
    for c0, c1 in column_blocks(d.shape[2], m * k, MIN_BLOCK_SUM):
        db, cb = d[:, :, c0:c1], c[:, :, c0:c1]
        if swap:
            part = matmul_per_group(cb, db.transpose(0, 2, 1)).transpose(0, 2, 1)
        else:
            part = matmul_per_group(db, cb.transpose(0, 2, 1))
        if total is None:
            total = part
        else:
            total += part
    return total


def gemm_forward_chunk(x: np.ndarray, w_rows: np.ndarray, b: np.ndarray | None, kernel: Pair,
                       stride: Pair, padding: Padding4, dilation: Pair, out_hw: Pair,
                       out: np.ndarray, relu: bool = False) -> np.ndarray:
    """y = W_row @ X_col + b for the n samples of one batch chunk; with ``relu``,
    y = max(W_row @ X_col + b, 0), taken while the chunk's output is in cache.

    Parameters
    ----------
    x : ndarray (n, C, H, W), unpadded
    w_rows : ndarray (G, Og, Cg*KH*KW), W_row
    b : ndarray (O,) or None
    kernel, stride, dilation, out_hw : (int, int); padding : (top, bottom, left, right)
    out : ndarray (O, n*OH*OW), written: the chunk's columns of the channel-major output
    relu : bool, a ReLU fused into the output pass (its gradient: :func:`relu_delta`)

    Returns
    -------
    cols : ndarray (G, Cg*KH*KW, n*OH*OW), X_col (the backward's dW needs it)
    """
    G, Og, _ = w_rows.shape
    cols = im2col(x, padding, kernel, stride, dilation, out_hw, G)
    matmul_columns(w_rows, cols, out.reshape(G, Og, -1))
    if b is not None:
        out += b[:, None]
    if relu:
        np.maximum(out, 0, out=out)
    return cols


def relu_delta(delta: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The gradient through a fused ReLU: dL/dy where y > 0, else 0 (also where dL/dy
    is inf or NaN), as :func:`cnnlab.kernels.activation.relu_backward` gives it.  The
    specification of :func:`relu_delta_cols`."""
    return np.where(y > 0, delta, 0)


def relu_delta_cols(delta: np.ndarray, y: np.ndarray, c0: int, c1: int) -> np.ndarray:
    """``relu_delta(delta[:, :, c0:c1], y[:, :, c0:c1])`` for (G, Og, T) arrays: one
    batch chunk's columns, by a compiled loop over the rows when both arrays are
    contiguous (NumPy's ``where`` on the chunk's strided view takes 7x as long)."""
    if (_nb.AVAILABLE and delta.dtype == y.dtype and delta.dtype in (np.float32, np.float64)
            and delta.flags.c_contiguous and y.flags.c_contiguous):
        G, Og, T = delta.shape
        out = np.empty((G, Og, c1 - c0), dtype=delta.dtype)
        _nb.relu_bwd_cols(delta.reshape(G * Og, T), y.reshape(G * Og, T),
                          out.reshape(G * Og, c1 - c0), c0, c1)
        return out
    return relu_delta(delta[:, :, c0:c1], y[:, :, c0:c1])


def gemm_backward_chunk(delta: np.ndarray, cols: np.ndarray | None, w_rows: np.ndarray,
                        x_shape: tuple[int, int, int, int], kernel: Pair, stride: Pair,
                        padding: Padding4, dilation: Pair, out_hw: Pair, need_dx: bool,
                        need_db: bool) -> tuple[np.ndarray | None, np.ndarray | None,
                                                np.ndarray | None]:
    """Gradients of :func:`gemm_forward_chunk` for one batch chunk of n samples.

    Parameters
    ----------
    delta : ndarray (G, Og, n*OH*OW), dL/dy of the chunk, grouped like W_row
    cols : ndarray (G, Cg*KH*KW, n*OH*OW), the chunk's X_col, or None for no dW
    w_rows : ndarray (G, Og, Cg*KH*KW), W_row
    x_shape : (n, C, H, W), the chunk's input shape

    Returns
    -------
    dx : ndarray (n, C, H, W) or None: col2im(W_row^T @ delta)
    dw : ndarray (G, Og, Cg*KH*KW) or None: delta @ X_col^T, this chunk's share
    db : ndarray (O,) or None: delta summed over the chunk's pixels
    """
    db = delta.sum(axis=2).reshape(-1) if need_db else None
    dw = None if cols is None else matmul_nt_blocks(delta, cols)
    dx = None
    if need_dx:
        G, Og, K = w_rows.shape
        dcols = matmul_columns(w_rows.transpose(0, 2, 1), delta,
                               np.empty((G, K, delta.shape[2]), dtype=delta.dtype))
        dx = col2im_cols(dcols, x_shape, padding, kernel, stride, dilation, out_hw)
    return dx, dw, db


def gemm_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, spec: ConvSpec,
                 relu: bool = False) -> tuple[np.ndarray, GemmCache]:
    """x (N, C, H, W) * w (O, C // groups, KH, KW) + b -> y (N, O, OH, OW), a view of
    a channel-major buffer; one :func:`gemm_forward_chunk` per batch chunk (with
    ``relu``, max(y, 0) in each chunk's output pass)."""
    N, C, H, W = x.shape
    O, Cg, KH, KW = w.shape
    G = spec.groups
    pixels = spec.out_hw[0] * spec.out_hw[1]
    w_rows = w.reshape(G, O // G, Cg * KH * KW)
    per_sample = G * Cg * KH * KW * pixels * x.itemsize
    chunk = batch_chunk(N, per_sample)
    keep = N * per_sample <= KEEP_BYTES
    out = np.empty((O, N * pixels), dtype=np.result_type(x, w))

    def piece(n0: int, n1: int) -> np.ndarray | None:
        cols = gemm_forward_chunk(x[n0:n1], w_rows, b, (KH, KW), spec.stride, spec.padding,
                                  spec.dilation, spec.out_hw, out=out[:, n0 * pixels:n1 * pixels],
                                  relu=relu)
        return cols if keep else None      # dropped at once when not kept: memory stays low

    cols = _threads.map_chunks(N, chunk, piece)
    cache = GemmCache(spec=spec, w_rows=w_rows, cols=tuple(cols) if keep else None,
                      x=None if keep else x, chunk=chunk)
    return out.reshape(O, N, *spec.out_hw).transpose(1, 0, 2, 3), cache


def gemm_backward(dy: np.ndarray, cache: GemmCache, need_dx: bool = True,
                  need_dw: bool = True, relu_y: np.ndarray | None = None,
                  relu_grad: ReluGrad | None = None) -> tuple[np.ndarray | None,
                                                              np.ndarray | None,
                                                              np.ndarray | None]:
    """Gradients of :func:`gemm_forward`: dy (N, O, OH, OW) -> dx (N, C, H, W),
    dw (O, C // G, KH, KW), db (O,) or None.

    With a fused ReLU, ``relu_y`` is the forward's output y and each chunk's dL/dy is
    first taken through the ReLU, while in cache: by :func:`relu_delta_cols`, or by
    ``relu_grad(delta_chunk, y_chunk)`` if given (guided backprop's rule, say).

    The batch chunks of the forward pass are the pieces again: each writes its
    samples of dx and returns its share of dW and db, summed in chunk order.  X_col
    is the kept one, or rebuilt from the kept input."""
    spec = cache.spec
    N, C, H, W = spec.x_shape
    O, Cg, KH, KW = spec.w_shape
    G = spec.groups
    pixels = spec.out_hw[0] * spec.out_hw[1]
    # delta as (G, Og, N*OH*OW): free when dy is channel-major, as the forward made it
    delta = dy.transpose(1, 0, 2, 3).reshape(G, O // G, N * pixels)
    y_cm = None if relu_y is None else relu_y.transpose(1, 0, 2, 3).reshape(G, O // G, N * pixels)
    dx = np.empty((C, N, H, W), dtype=delta.dtype).transpose(1, 0, 2, 3) if need_dx else None

    def piece(n0: int, n1: int):
        cols = None
        if need_dw and cache.cols is not None:
            cols = cache.cols[n0 // cache.chunk]       # chunk i starts at sample i * chunk
        elif need_dw:
            cols = im2col(cache.x[n0:n1], spec.padding, (KH, KW), spec.stride, spec.dilation,
                          spec.out_hw, G)
        c0, c1 = n0 * pixels, n1 * pixels
        if y_cm is None:
            d = delta[:, :, c0:c1]
        elif relu_grad is None:
            d = relu_delta_cols(delta, y_cm, c0, c1)
        else:
            d = relu_grad(delta[:, :, c0:c1], y_cm[:, :, c0:c1])
        dx_chunk, dw, db = gemm_backward_chunk(
            d, cols, cache.w_rows, (n1 - n0, C, H, W),
            (KH, KW), spec.stride, spec.padding, spec.dilation, spec.out_hw, need_dx,
            need_db=spec.has_bias)
        if need_dx:
            dx[n0:n1] = dx_chunk
        return dw, db

    parts = _threads.map_chunks(N, cache.chunk, piece)
    dw = _threads.sum_in_order([p[0] for p in parts]).reshape(O, Cg, KH, KW) if need_dw else None
    db = _threads.sum_in_order([p[1] for p in parts]) if spec.has_bias else None
    return dx, dw, db


__all__ = ["CHUNK_BYTES", "DW_SWAP_MAX", "KEEP_BYTES", "SPLIT_BYTES", "GemmCache", "batch_chunk",
           "col2im_cols", "column_blocks", "gemm_backward", "gemm_backward_chunk", "gemm_forward",
           "gemm_forward_chunk", "im2col", "im2col_cols", "matmul_columns", "matmul_nt_blocks",
           "matmul_per_group", "relu_delta", "relu_delta_cols"]
