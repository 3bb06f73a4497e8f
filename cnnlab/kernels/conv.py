"""2-D convolution kernels: im2col + GEMM forward, GEMM + col2im backward.

Pure NumPy: ndarrays in, ndarrays out, no autograd.  Shapes follow PyTorch:

    x (N, C, H, W) * w (O, C / groups, KH, KW) + b (O,) -> y (N, O, OH, OW)
    OH = (H + pad_top + pad_bottom - dilation_h * (KH - 1) - 1) // stride_h + 1

As the notes' im2col section describes, every receptive field is stretched
into a column of a matrix ``X_col`` and the convolution becomes one matrix
product with the filters stretched into the rows of ``W_row``.  The notes'
example: x 227x227x3 with 96 filters of 11x11x3 at stride 4 gives ``X_col`` of
363 x 3025, ``W_row`` of 96 x 363, and ``np.dot(W_row, X_col)`` of 96 x 3025,
reshaped to 55x55x96.

Two memory layouts of the same product are implemented; they differ only in
which copies are cheap, and the tests run both against torch:

* ``"cols"`` -- the notes' form.  ``X_col`` is (C*KH*KW, N*OH*OW), the
  product ``W_row @ X_col`` is (O, N*OH*OW), i.e. the output is
  *channel-major* (physically C, N, H, W).  Copying a window moves runs of OW
  contiguous pixels, which suits few channels and stride 1 (LeNet).
* ``"rows"`` -- the transpose: one receptive field per *row*, ordered
  (KH, KW, C), so the input is read channels-last (NHWC) and each copy moves
  runs of KW*C values; the product (N*OH*OW, O) is the output in NHWC.  It
  suited many channels on small maps while the kernels ran on one core; it is
  kept, tested and selectable with ``layout="rows"``.

Two more algorithms are chosen by shape: ``"depthwise"`` when every group has
one input channel (the GEMMs would be 1 x KH*KW products, so the compiled loops
in :mod:`cnnlab.kernels._numba` compute it directly), and ``"winograd"``
(:mod:`cnnlab.kernels.winograd`, F(2x2, 3x3)) for 3x3 stride-1 convolutions
with many channels.

Every algorithm hands back the NCHW array as a transposed *view* of the buffer
it wrote (channel-major, or channels-last for "rows"), so no copy is made;
NumPy's elementwise ops and the pooling kernels keep that physical layout for
the next layer.  ``choose_layout`` picks by shape.

Both GEMM layouts work through the batch in chunks whose column matrix stays in
cache (a few MB): each chunk is padded, stretched, multiplied and dropped by one
core, and the chunks are spread over the cores (:mod:`cnnlab.kernels._threads`),
with BLAS on one thread each.

Backward (the notes, Bouvrie's equations for a conv layer):

* bias:   dL/db_o = sum over n, i, j of delta_o
* weight: dL/dW = delta @ X_col^T (one GEMM per group); this equals the
  notes' rot180(conv2(x, rot180(delta), 'valid')).
* data:   dX_col = W_row^T @ delta, then col2im adds every column back onto
  the window it came from (KH * KW strided adds).  This is exactly the
  notes' full convolution of delta with the 180-degree rotated kernel;
  :mod:`cnnlab.kernels.reference` implements that formula literally and the
  tests check the two agree.
"""
from __future__ import annotations

from functools import partial
from typing import Literal, NamedTuple

import numpy as np

from cnnlab.kernels import _numba as _nb
from cnnlab.kernels import _threads
from cnnlab.kernels import winograd as _winograd

Pair = tuple[int, int]
Padding4 = tuple[int, int, int, int]  # (top, bottom, left, right)
Layout = Literal["cols", "rows", "depthwise", "winograd"]


class ConvCache(NamedTuple):
    """What ``conv2d_backward`` needs from ``conv2d_forward``."""

    layout: Layout
    cols: tuple | np.ndarray | None
                            # "cols": one (G, Cg*KH*KW, n*OH*OW) per batch chunk;
                            # "rows": one (n*OH*OW, G, KH*KW*Cg) per batch chunk;
                            # None: not kept (recomputed from ``x`` in backward);
                            # "depthwise": the padded input itself, channel-major (C, N, Hp, Wp)
    w_mat: np.ndarray       # (G, Og, K) filters as rows, K in the same order as cols
    x_shape: tuple[int, int, int, int]
    w_shape: tuple[int, int, int, int]
    out_hw: Pair
    stride: Pair
    padding: Padding4
    dilation: Pair
    groups: int
    has_bias: bool
    x: np.ndarray | None = None    # the input itself (no copy) when cols is None
    chunk: int = 0                 # samples per batch chunk


# The "cols" and "rows" layouts work through the batch in chunks whose column
# matrix (about CHUNK_BYTES) stays in cache while it is built, multiplied and
# dropped; the chunks are spread over the cores (cnnlab.kernels._threads).
# Up to KEEP_BYTES of column matrices per layer are kept for the backward pass;
# above that the "cols" layout recomputes them from the input, which it keeps
# instead: a 3x3 conv at 16@32x32 on 128 images would otherwise store 75 MB.
CHUNK_BYTES = 3 << 20
KEEP_BYTES = 16 << 20
# Below SPLIT_BYTES of columns in all, one chunk on one core (handing a piece to
# another thread costs about 0.1 ms).  Above it, at least two chunks, so that a
# ResNet-20's 2 MB projections, too, use both cores.
SPLIT_BYTES = 256 << 10


def _batch_chunk(N: int, bytes_per_sample: int) -> int:
    """Samples per chunk, from the shapes alone (never from the thread count, so
    results do not depend on it): chunks of about CHUNK_BYTES, at least two, aiming
    at an even number (small batches round up to fewer, larger chunks)."""
    total = N * bytes_per_sample
    if N < 2 or total < SPLIT_BYTES:
        return N
    pieces = max(2, -(-total // CHUNK_BYTES))
    pieces += pieces % 2
    return -(-N // min(pieces, N))


def _sum_in_order(parts: list) -> np.ndarray:
    """parts[0] + parts[1] + ... in this order (fixed rounding)."""
    total = parts[0]
    for p in parts[1:]:
        total = total + p
    return total


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0,
                     dilation: int = 1, strict: bool = True) -> int:
    """Spatial output size of a convolution or pooling: (W - F + 2P) / S + 1.

    With a dilation d the effective filter size is d (F - 1) + 1.  The notes
    call a setting whose division leaves a remainder *invalid* (part of the
    input would never be visited).  ``strict=True`` raises for it; with
    ``strict=False`` the size is floored as PyTorch does.

    >>> conv_output_size(227, 11, stride=4)   # AlexNet conv1
    55
    >>> conv_output_size(7, 3, stride=2, padding=1)
    4
    """
    eff = dilation * (kernel - 1) + 1
    span = size + 2 * padding - eff
    if span < 0:
        raise ValueError(
            f"kernel of effective size {eff} does not fit an input of size {size} "
            f"with padding {padding}"
        )
    if strict and span % stride:
        raise ValueError(
            f"invalid setting: (W - F + 2P)/S + 1 = ({size} - {eff} + 2*{padding})/{stride} + 1 "
            f"= {span / stride + 1:g} is not an integer"
        )
    return span // stride + 1


def out_size(size: int, k: int, s: int, p0: int, p1: int, d: int) -> int:
    """(size + p0 + p1 - d (k - 1) - 1) // s + 1, floored as PyTorch does."""
    return (size + p0 + p1 - d * (k - 1) - 1) // s + 1


def zeros_like_layout(shape: tuple[int, ...], like: np.ndarray, dtype=None) -> np.ndarray:
    """Zeros of ``shape`` whose axes are laid out in memory in the same order as
    ``like``'s (so a channel-major input gets a channel-major gradient)."""
    order = sorted(range(like.ndim), key=lambda a: -like.strides[a])
    phys = np.zeros([shape[a] for a in order], dtype=dtype or like.dtype)
    return phys.transpose(np.argsort(order))


# Winograd F(2x2, 3x3) from this many input and output channels on (see choose_layout)
WINOGRAD_MIN_CHANNELS = 64


def choose_layout(w_shape: tuple[int, int, int, int], groups: int,
                  stride: Pair | None = None, padding: Padding4 = (0, 0, 0, 0),
                  dilation: Pair = (1, 1)) -> Layout:
    """Pick the layout (or algorithm) that is faster for this shape.

    "winograd" (:mod:`cnnlab.kernels.winograd`) for 3x3 stride-1 convolutions with
    at least 64 input and output channels: measured alternately with "cols" in one
    process (forward, batch 8 at 224x224 scale), the best of 9 runs took 0.57-0.74x
    the time for 64 to 256 channels at 56x56 to 14x14, 0.88x at 512@7x7 and 0.91x
    for ResNet-20's 64@8x8 (batch 128), but 1.3x for 16 and 32 channels, where its
    16 GEMMs with K = C are too thin.

    Otherwise, measured here (forward + backward, float32, 2 cores, batch chunks
    spread over both cores): "cols" is faster than "rows" or level with it on every
    shape of the benchmark suite and the zoo -- by 2x for ResNet-20's 16@32x32 and LeNet's convolutions, by
    1.0-1.1x for 256 and 512 channels at 14x14 and 7x7 -- with one exception
    within noise (64->128 3x3/2 at 56x56, batch 8: 30 against 27 ms).  Before the
    batch was split over the cores, "rows" won for many channels on small maps.
    "rows" stays available through ``layout="rows"`` and is tested like the others.
    """
    Cg = w_shape[1]
    if Cg == 1 and groups > 1 and _nb.AVAILABLE:
        return "depthwise"   # one input map per group: no GEMM to speak of, compute directly
    if (stride is not None and _winograd.applies(w_shape, stride, padding, dilation, groups)
            and min(w_shape[0], Cg) >= WINOGRAD_MIN_CHANNELS):
        return "winograd"
    return "cols"


# ----------------------------------------------------------- "cols" layout
def pad_channel_major(x: np.ndarray, padding: Padding4) -> np.ndarray:
    """x (N, C, H, W) -> zero-padded (N, C, Hp, Wp); no copy without padding,
    otherwise a new array stored channel-major (C, N, Hp, Wp)."""
    pt, pb, pl, pr = padding
    if not any(padding):
        return x
    N, C, H, W = x.shape
    xp = np.zeros((C, N, H + pt + pb, W + pl + pr), dtype=x.dtype).transpose(1, 0, 2, 3)
    xp[:, :, pt:pt + H, pl:pl + W] = x
    return xp


def pad_cnhw(x: np.ndarray, padding: Padding4) -> np.ndarray:
    """x (N, C, H, W) -> zero-padded (C, N, Hp, Wp), C-contiguous: the form the
    compiled depthwise and Winograd loops read row by row (and vectorise)."""
    return np.ascontiguousarray(pad_channel_major(x, padding).transpose(1, 0, 2, 3))


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


# ----------------------------------------------------------- "rows" layout
def pad_nhwc(x: np.ndarray, padding: Padding4) -> np.ndarray:
    """x (N, C, H, W) -> zero-padded (N, H + pt + pb, W + pl + pr, C), channels last."""
    N, C, H, W = x.shape
    pt, pb, pl, pr = padding
    xp = np.zeros((N, H + pt + pb, W + pl + pr, C), dtype=x.dtype)
    xp[:, pt:pt + H, pl:pl + W, :] = x.transpose(0, 2, 3, 1)
    return xp


def im2col_rows(xp: np.ndarray, kernel: Pair, stride: Pair, dilation: Pair, out_hw: Pair,
                groups: int) -> np.ndarray:
    """One receptive field per row: xp (N, Hp, Wp, C) -> (N*OH*OW, G, KH*KW*Cg),
    each row ordered (kh, kw, c) within its group."""
    N, Hp, Wp, C = xp.shape
    KH, KW = kernel
    OH, OW = out_hw
    G = groups
    Cg = C // G
    sN, sH, sW, sC = xp.strides
    windows = np.lib.stride_tricks.as_strided(
        xp, shape=(N, OH, OW, G, KH, KW, Cg),
        strides=(sN, sH * stride[0], sW * stride[1], sC * Cg, sH * dilation[0],
                 sW * dilation[1], sC),
        writeable=False)
    return np.ascontiguousarray(windows).reshape(N * OH * OW, G, KH * KW * Cg)


def col2im_rows(dcols: np.ndarray, x_shape: tuple[int, int, int, int], padding: Padding4,
                kernel: Pair, stride: Pair, dilation: Pair, out_hw: Pair) -> np.ndarray:
    """Adjoint of :func:`im2col_rows`: (N*OH*OW, G, KH*KW*Cg) -> dx (N, C, H, W),
    accumulated in a channels-last buffer."""
    N, C, H, W = x_shape
    pt, pb, pl, pr = padding
    KH, KW = kernel
    sh, sw = stride
    OH, OW = out_hw
    G = dcols.shape[1]
    d = dcols.reshape(N, OH, OW, G, KH, KW, C // G)
    dxp = np.zeros((N, H + pt + pb, W + pl + pr, C), dtype=dcols.dtype)
    for i in range(KH):
        hi = i * dilation[0]
        for j in range(KW):
            wj = j * dilation[1]
            dxp[:, hi:hi + sh * (OH - 1) + 1:sh, wj:wj + sw * (OW - 1) + 1:sw, :] += (
                d[:, :, :, :, i, j, :].reshape(N, OH, OW, C))
    return dxp[:, pt:pt + H, pl:pl + W, :].transpose(0, 3, 1, 2)


# ------------------------------------------------------------------ kernels
def _mm(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Per-group product (G, m, k) @ (G, k, n); one plain 2-D GEMM when G == 1."""
    if a.shape[0] == 1:
        r = np.matmul(a[0], b[0], out=None if out is None else out[0])
        return r[None] if out is None else out
    return np.matmul(a, b, out=out)


def conv2d_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: Pair = (1, 1),
                   padding: Padding4 = (0, 0, 0, 0), dilation: Pair = (1, 1), groups: int = 1,
                   layout: Layout | None = None) -> tuple[np.ndarray, ConvCache]:
    """Convolution (cross-correlation, as every library implements it).

    Parameters
    ----------
    x : ndarray (N, C, H, W), any memory layout
    w : ndarray (O, C // groups, KH, KW)
    b : ndarray (O,) or None
    stride, dilation : (int, int)
    padding : (top, bottom, left, right) zero padding
    groups : int, dividing both C and O
    layout : "cols", "rows", "depthwise", "winograd" or None (:func:`choose_layout`)

    Returns
    -------
    y : ndarray (N, O, OH, OW), a view of a channel-major or channels-last buffer
    cache : ConvCache
    """
    N, C, H, W = x.shape
    O, Cg, KH, KW = w.shape
    pt, pb, pl, pr = padding
    OH = out_size(H, KH, stride[0], pt, pb, dilation[0])
    OW = out_size(W, KW, stride[1], pl, pr, dilation[1])
    if layout is None:
        layout = choose_layout(w.shape, groups, stride, padding, dilation)
        if layout == "winograd" and not (_finite(x) and _finite(w)):
            layout = "cols"      # Winograd's transforms would turn inf into inf - inf = NaN
    if layout == "cols":
        return _forward_cols(x, w, b, stride, padding, dilation, groups, (OH, OW))
    if layout == "rows":
        return _forward_rows(x, w, b, stride, padding, dilation, groups, (OH, OW))
    if layout == "winograd":
        if not _winograd.applies(w.shape, stride, padding, dilation, groups):
            raise ValueError("the 'winograd' layout needs a 3x3 kernel, stride 1, no dilation, "
                             "one group and padding 0 to 2")
        y = _winograd.conv3x3(x, w, b, padding)
        # the weight gradient is im2col's: keep the input and its chunking, as "cols" does
        nb = _batch_chunk(N, C * KH * KW * OH * OW * x.itemsize)
        cache = ConvCache("winograd", None, w.reshape(1, O, C * KH * KW), (N, C, H, W), w.shape,
                          (OH, OW), stride, padding, dilation, groups, b is not None, x, nb)
        return y, cache
    if layout != "depthwise":
        raise ValueError(
            f"layout must be 'cols', 'rows', 'depthwise' or 'winograd', got {layout!r}")
    if Cg != 1 or not _nb.AVAILABLE:
        raise ValueError("the 'depthwise' layout needs one input channel per group and numba")
    return _forward_depthwise(x, w, b, stride, padding, dilation, groups, (OH, OW))


def _forward_depthwise(x, w, b, stride, padding, dilation, groups, out_hw):
    """One input map per group: the compiled loops, split by input map."""
    N, C, H, W = x.shape
    O, Cg, KH, KW = w.shape
    OH, OW = out_hw
    xp = pad_cnhw(x, padding)
    w_mat = w.reshape(O, KH, KW)
    spans = _threads.split(C, O * N * OH * OW * KH * KW)
    if _depthwise3x3(w.shape, stride, dilation):
        out = np.empty((O, N, OH, OW), dtype=np.result_type(x, w))
        _threads.parallel([partial(_nb.depthwise3x3_fwd, xp, w_mat, OH, OW, O // groups, out,
                                   c0, c1) for c0, c1 in spans], blas=False)
    else:
        out = np.zeros((O, N, OH, OW), dtype=np.result_type(x, w))
        _threads.parallel([partial(_nb.depthwise_fwd, xp, w_mat, stride[0], stride[1],
                                   dilation[0], dilation[1], OH, OW, O // groups, out, c0, c1)
                           for c0, c1 in spans], blas=False)
    if b is not None:
        out += b[:, None, None, None]
    cache = ConvCache("depthwise", xp, w_mat, (N, C, H, W), (O, Cg, KH, KW), out_hw, stride,
                      padding, dilation, groups, b is not None, None, N)
    return out.transpose(1, 0, 2, 3), cache


def _forward_cols(x, w, b, stride, padding, dilation, G, out_hw):
    """The notes' W_row @ X_col, one batch chunk per piece: each piece pads and
    stretches its samples while they are in cache and writes its columns of the
    channel-major output (O, N*OH*OW)."""
    N, C, H, W = x.shape
    O, Cg, KH, KW = w.shape
    Mn = out_hw[0] * out_hw[1]
    w_mat = w.reshape(G, O // G, Cg * KH * KW)
    per_sample = G * Cg * KH * KW * Mn * x.itemsize
    nb = _batch_chunk(N, per_sample)
    keep = N * per_sample <= KEEP_BYTES
    out = np.empty((O, N * Mn), dtype=np.result_type(x, w))

    def piece(n0: int, n1: int) -> np.ndarray | None:
        c = im2col_cols(pad_channel_major(x[n0:n1], padding), (KH, KW), stride, dilation,
                        out_hw, G)
        o = out[:, n0 * Mn:n1 * Mn]
        _mm(w_mat, c, out=o.reshape(G, O // G, -1))
        if b is not None:
            o += b[:, None]
        return c if keep else None

    cols = _threads.parallel([partial(piece, *span) for span in _threads.chunks(N, nb)])
    cache = ConvCache("cols", tuple(cols) if keep else None, w_mat, (N, C, H, W), w.shape,
                      out_hw, stride, padding, dilation, G, b is not None,
                      None if keep else x, nb)
    return out.reshape(O, N, *out_hw).transpose(1, 0, 2, 3), cache


def _forward_rows(x, w, b, stride, padding, dilation, G, out_hw):
    """The transposed product X_rows @ W_row^T, one batch chunk per piece: each
    piece writes its rows of the channels-last output (N*OH*OW, O)."""
    N, C, H, W = x.shape
    O, Cg, KH, KW = w.shape
    Og = O // G
    Mn = out_hw[0] * out_hw[1]
    w_mat = np.ascontiguousarray(w.transpose(0, 2, 3, 1)).reshape(G, Og, KH * KW * Cg)
    nb = _batch_chunk(N, Mn * G * KH * KW * Cg * x.itemsize)
    out = np.empty((N * Mn, O), dtype=np.result_type(x, w))

    def piece(n0: int, n1: int) -> np.ndarray:
        c = im2col_rows(pad_nhwc(x[n0:n1], padding), (KH, KW), stride, dilation, out_hw, G)
        o = out[n0 * Mn:n1 * Mn]
        _mm(c.transpose(1, 0, 2), w_mat.transpose(0, 2, 1), out=o.reshape(-1, G, Og).transpose(1, 0, 2))
        if b is not None:
            o += b
        return c

    cols = _threads.parallel([partial(piece, *span) for span in _threads.chunks(N, nb)])
    cache = ConvCache("rows", tuple(cols), w_mat, (N, C, H, W), w.shape, out_hw, stride,
                      padding, dilation, G, b is not None, None, nb)
    return out.reshape(N, *out_hw, O).transpose(0, 3, 1, 2), cache


def conv2d_backward(dy: np.ndarray, cache: ConvCache, need_dx: bool = True,
                    need_dw: bool = True) -> tuple[np.ndarray | None, np.ndarray | None,
                                                   np.ndarray | None]:
    """Gradients of :func:`conv2d_forward`.

    dy (N, O, OH, OW) -> dx (N, C, H, W), dw (O, C // G, KH, KW), db (O,) or None.
    For "cols", "rows" and the weight gradient after "winograd", the batch chunks
    of the forward pass are the pieces again: each adds its share of dW and db
    (summed in chunk order) and writes its samples of dx.  Winograd's dx is a
    Winograd convolution of dy; depthwise is split by input map.
    """
    if cache.x_shape[0] == 0:                   # an empty batch: zero gradients
        N, C, H, W = cache.x_shape
        O = cache.w_shape[0]
        return (np.zeros((N, C, H, W), dy.dtype) if need_dx else None,
                np.zeros(cache.w_shape, dy.dtype) if need_dw else None,
                np.zeros(O, dy.dtype) if cache.has_bias else None)
    if cache.layout in ("cols", "winograd"):
        return _backward_cols(dy, cache, need_dx, need_dw)
    if cache.layout == "rows":
        return _backward_rows(dy, cache, need_dx, need_dw)
    return _backward_depthwise(dy, cache, need_dx, need_dw)


def _backward_depthwise(dy, cache: ConvCache, need_dx: bool, need_dw: bool):
    """Gradients of :func:`_forward_depthwise`, split by input map."""
    N, C, H, W = cache.x_shape
    O, Cg, KH, KW = cache.w_shape
    d = np.ascontiguousarray(dy.transpose(1, 0, 2, 3))   # (O, N, OH, OW); free when channel-major
    db = d.sum(axis=(1, 2, 3)) if cache.has_bias else None
    xp = cache.cols
    per_group = O // cache.groups
    spans = _threads.split(C, d.size * KH * KW)
    dw3 = np.zeros(cache.w_mat.shape, dtype=xp.dtype)
    if _depthwise3x3(cache.w_shape, cache.stride, cache.dilation) and per_group == 1:
        if need_dw:
            _threads.parallel([partial(_nb.depthwise3x3_dw, xp, d, 1, dw3, c0, c1)
                               for c0, c1 in spans], blas=False)
        if need_dx:   # dX = dY padded by 2, correlated with the kernels turned by 180 degrees
            OH, OW = cache.out_hw
            dyp = pad_cnhw(dy, (2, 2, 2, 2))
            w_rot = np.ascontiguousarray(cache.w_mat[:, ::-1, ::-1])
            dxp = np.empty((C, N, OH + 2, OW + 2), dtype=xp.dtype)   # as the general loop
            _threads.parallel([partial(_nb.depthwise3x3_fwd, dyp, w_rot, OH + 2, OW + 2, 1, dxp,
                                       c0, c1) for c0, c1 in spans], blas=False)
    else:
        dxp = np.zeros(xp.shape if need_dx else (0, 0, 0, 0), dtype=xp.dtype)
        _threads.parallel([partial(_nb.depthwise_bwd, xp, cache.w_mat, d, cache.stride[0],
                                   cache.stride[1], cache.dilation[0], cache.dilation[1],
                                   per_group, need_dx, dxp, dw3, c0, c1)
                           for c0, c1 in spans], blas=False)
    dw = dw3.reshape(O, Cg, KH, KW) if need_dw else None
    dx = None
    if need_dx:
        pt, _, pl, _ = cache.padding
        dx = dxp[:, :, pt:pt + H, pl:pl + W].transpose(1, 0, 2, 3)
    return dx, dw, db


def _finite(a: np.ndarray) -> bool:
    """No inf or NaN in ``a`` (one pass: 0.3 ms for ResNet-18's 64@56x56 batch of 8)."""
    return bool(np.isfinite(a).all())


def _depthwise3x3(w_shape, stride, dilation) -> bool:
    """Whether the depthwise fast loops apply: 3x3, stride 1, no dilation."""
    return tuple(w_shape[2:]) == (3, 3) and tuple(stride) == (1, 1) and tuple(dilation) == (1, 1)


def _run_chunks(piece, N: int, cache: ConvCache, need_dw: bool):
    """Run ``piece(i, n0, n1)`` for every batch chunk of the forward pass, spread over
    the threads, and sum the (dw, db) partials it returns in chunk order."""
    spans = _threads.chunks(N, cache.chunk)
    parts = _threads.parallel([partial(piece, i, *s) for i, s in enumerate(spans)])
    dw = _sum_in_order([p[0] for p in parts]) if need_dw else None
    db = _sum_in_order([p[1] for p in parts]) if cache.has_bias else None
    return dw, db


def _backward_cols(dy, cache: ConvCache, need_dx: bool, need_dw: bool):
    """Per chunk: dW += delta X_col^T (X_col kept, or rebuilt from the kept input),
    dX_col = W_row^T delta, col2im into the chunk's samples of dx.  After a Winograd
    forward only dW comes from here; dx is a Winograd convolution of dy."""
    # Winograd's dx only for a finite dy (its transforms turn inf into NaN); else col2im
    winograd = cache.layout == "winograd" and (not need_dx or _finite(dy))
    N, C, H, W = cache.x_shape
    O, Cg, KH, KW = cache.w_shape
    G = cache.groups
    Mn = cache.out_hw[0] * cache.out_hw[1]
    # delta as (G, Og, N*OH*OW): free when dy is channel-major, as the forward made it
    d = dy.transpose(1, 0, 2, 3).reshape(G, O // G, N * Mn)
    dx = None
    if need_dx and not winograd:
        dx = np.empty((C, N, H, W), dtype=d.dtype).transpose(1, 0, 2, 3)

    def piece(i: int, n0: int, n1: int):
        dch = d[:, :, n0 * Mn:n1 * Mn]
        db = dch.sum(axis=2).reshape(O) if cache.has_bias else None
        dw = None
        if need_dw:
            if cache.cols is not None:
                c = cache.cols[i]
            else:
                c = im2col_cols(pad_channel_major(cache.x[n0:n1], cache.padding), (KH, KW),
                                cache.stride, cache.dilation, cache.out_hw, G)
            dw = _mm(dch, c.transpose(0, 2, 1))
        if need_dx and not winograd:
            dcols = _mm(cache.w_mat.transpose(0, 2, 1), dch)
            dx[n0:n1] = col2im_cols(dcols, (n1 - n0, C, H, W), cache.padding, (KH, KW),
                                    cache.stride, cache.dilation, cache.out_hw)
        return dw, db

    dw, db = _run_chunks(piece, N, cache, need_dw)
    if need_dx and winograd:
        dx = _winograd.conv3x3_backward_data(dy, cache.w_mat.reshape(cache.w_shape),
                                             cache.padding, (H, W)).astype(d.dtype, copy=False)
    return dx, (dw.reshape(O, Cg, KH, KW) if need_dw else None), db


def _backward_rows(dy, cache: ConvCache, need_dx: bool, need_dw: bool):
    """Per chunk: dW_row += delta^T X_rows, dX_rows = delta W_row, col2im into the
    chunk's samples of a channels-last dx."""
    N, C, H, W = cache.x_shape
    O, Cg, KH, KW = cache.w_shape
    G = cache.groups
    Og = O // G
    Mn = cache.out_hw[0] * cache.out_hw[1]
    # delta as (N*OH*OW, O): free when dy is channels-last, as the forward made it
    d = dy.transpose(0, 2, 3, 1).reshape(N * Mn, O)
    dx = np.empty((N, H, W, C), dtype=d.dtype).transpose(0, 3, 1, 2) if need_dx else None

    def piece(i: int, n0: int, n1: int):
        dr = d[n0 * Mn:n1 * Mn]
        c = cache.cols[i]
        db = dr.sum(axis=0) if cache.has_bias else None
        dw = None
        dg = dr.reshape(-1, G, Og).transpose(1, 0, 2)          # (G, rows, Og)
        if need_dw:
            dw = _mm(dg.transpose(0, 2, 1), c.transpose(1, 0, 2))
        if need_dx:
            dcols = _mm(dg, cache.w_mat).transpose(1, 0, 2)
            dx[n0:n1] = col2im_rows(dcols, (n1 - n0, C, H, W), cache.padding, (KH, KW),
                                    cache.stride, cache.dilation, cache.out_hw)
        return dw, db

    dw, db = _run_chunks(piece, N, cache, need_dw)
    if need_dw:
        dw = np.ascontiguousarray(dw.reshape(O, KH, KW, Cg).transpose(0, 3, 1, 2))
    return dx, dw, db
