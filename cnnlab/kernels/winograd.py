"""Winograd's minimal filtering F(2x2, 3x3): a 3x3 stride-1 convolution with 2.25x
fewer multiplications than im2col + GEMM.

Lavin and Gray (2015), "Fast Algorithms for Convolutional Neural Networks".  The
output is cut into 2x2 tiles; each reads a 4x4 tile d of the input (tiles overlap
by two).  With

    B^T = [[1, 0, -1, 0],      G = [[1,    0,    0 ],      A^T = [[1, 1,  1,  0],
           [0, 1,  1, 0],           [1/2,  1/2,  1/2],             [0, 1, -1, -1]]
           [0, -1, 1, 0],           [1/2, -1/2,  1/2],
           [0, 1,  0, -1]]          [0,    0,    1 ]]

one output tile of one filter g is  Y = A^T [ (G g G^T) . (B^T d B) ] A  (. is the
elementwise product).  Summed over input channels, the elementwise products
become 16 matrix products, one per position xi of the 4x4 transformed tile:

    U[xi] = (G g G^T)[xi]     (O, C)      the filters, transformed once
    V[xi] = (B^T d B)[xi]     (C, tiles)  the input tiles, transformed
    M[xi] = U[xi] @ V[xi]     (O, tiles)  16 GEMMs with K = C
    Y     = A^T M A           2x2 output per tile

im2col + GEMM multiplies 9 C O numbers per output pixel; this does 16 C O per
2x2 tile, i.e. 4 C O per pixel.  The transforms only add and subtract (and
halve, in G), so in float32 the result differs from the direct sum by a few
units in the last place; in float64 the parity tests hold it to torch at 1e-12.
Infinities are another matter: the transforms subtract inputs, so an inf in a
tile gives inf - inf = NaN.  :func:`cnnlab.kernels.conv.conv2d_forward` therefore
uses Winograd only on finite inputs, and :func:`winograd_backward` computes dX
this way only for a finite dY (else by im2col's col2im).

The backward pass of the data is the same kind of convolution: dX is dY
correlated with the filters turned by 180 degrees and transposed (C <- O), with
padding 2 - p.  The weight gradient is left to im2col (:mod:`cnnlab.kernels.conv_gemm`),
which rebuilds its columns from the kept input.

Layouts: x (N, C, H, W) in any memory order; the output is channel-major
(O, N, OH, OW) in memory, like im2col's.  The work is cut into batch chunks
(:func:`winograd_chunk` each) spread over the cores (:mod:`cnnlab.kernels._threads`).
"""
from __future__ import annotations

import numpy as np

from cnnlab.kernels import _numba as _nb
from cnnlab.kernels import _threads
from cnnlab.kernels.conv_common import ConvSpec, Padding4, pad_cnhw
from cnnlab.kernels.conv_gemm import GemmCache, batch_chunk, gemm_backward

B_T = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.float64)
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=np.float64)
A_T = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.float64)
_G_KRON = np.kron(G, G)          # (16, 9): row 4 a + b, column 3 i + j holds G[a, i] G[b, j]

# per batch chunk, the transformed input and the 16 products together stay near this
CHUNK_BYTES = 4 << 20


class WinogradCache(GemmCache):
    """What :func:`winograd_backward` needs: the cache of an im2col convolution that
    kept its input and no columns (``cols`` is None), for dW, db and the fallback dX;
    dX itself is a Winograd convolution with ``w_rows`` (1, O, C*9) read as (O, C, 3, 3)."""

    __slots__ = ()
    layout = "winograd"


def all_finite(a: np.ndarray) -> bool:
    """No inf or NaN in ``a`` (one pass: 0.3 ms for ResNet-18's 64@56x56 batch of 8)."""
    return bool(np.isfinite(a).all())


def applies(w_shape: tuple[int, int, int, int], stride, padding, dilation, groups: int) -> bool:
    """Whether F(2x2, 3x3) computes this convolution: 3x3, stride 1, no dilation, one
    group, padding 0 to 2 on every side (so the backward's 2 - p is a padding too)."""
    return (tuple(w_shape[2:]) == (3, 3) and tuple(stride) == (1, 1)
            and tuple(dilation) == (1, 1) and groups == 1 and all(0 <= p <= 2 for p in padding))


def transform_filters(w: np.ndarray) -> np.ndarray:
    """w (O, C, 3, 3) -> U (16, O, C): G g G^T for every filter and channel,
    position xi = 4 i + j of the 4x4 result first."""
    O, C = w.shape[:2]
    # one GEMM: U[4a + b] = sum_ij G[a, i] G[b, j] g[i, j] = kron(G, G) @ g (as 9 numbers)
    with _threads.blas_one_thread:    # (see _threads: OpenBLAS's own threads would spin)
        return (_G_KRON.astype(w.dtype) @ w.reshape(O * C, 9).T).reshape(16, O, C)


def transform_input(xp: np.ndarray, tH: int, tW: int) -> np.ndarray:
    """xp (C, n, 2 tH + 2, 2 tW + 2), already padded -> V (16, C, n tH tW): B^T d B
    for every 4x4 tile (the NumPy specification of the compiled kernel)."""
    C, n = xp.shape[:2]
    d = [[xp[:, :, i:i + 2 * tH:2, j:j + 2 * tW:2] for j in range(4)] for i in range(4)]
    rows = [[B_T[a, 0] * d[0][j] + B_T[a, 1] * d[1][j] + B_T[a, 2] * d[2][j]
             + B_T[a, 3] * d[3][j] for j in range(4)] for a in range(4)]
    v = np.empty((16, C, n, tH, tW), dtype=xp.dtype)
    for a in range(4):
        r = rows[a]
        for b in range(4):
            v[4 * a + b] = B_T[b, 0] * r[0] + B_T[b, 1] * r[1] + B_T[b, 2] * r[2] + B_T[b, 3] * r[3]
    return v.reshape(16, C, n * tH * tW)


def transform_output(m: np.ndarray, y: np.ndarray, bias: np.ndarray | None) -> None:
    """m (16, O, n tH tW) -> y (O, n, OH, OW) (written): A^T M A per tile, cropped
    to OH x OW, plus the bias (the NumPy specification of the compiled kernel)."""
    O, n, OH, OW = y.shape
    tH, tW = (OH + 1) // 2, (OW + 1) // 2
    m = m.reshape(4, 4, O, n, tH, tW)
    s = np.einsum("ai,ij...->aj...", A_T, m)          # (2, 4, O, n, tH, tW)
    t = np.einsum("bj,aj...->ab...", A_T, s)           # (2, 2, O, n, tH, tW)
    full = t.transpose(2, 3, 4, 0, 5, 1).reshape(O, n, 2 * tH, 2 * tW)
    y[...] = full[:, :, :OH, :OW]
    if bias is not None:
        y += bias[:, None, None, None]


def winograd_chunk(x: np.ndarray, u: np.ndarray, bias: np.ndarray, pad: Padding4,
                   out: np.ndarray) -> None:
    """F(2x2, 3x3) for the n samples of one batch chunk.

    Parameters
    ----------
    x : ndarray (n, C, H, W), unpadded
    u : ndarray (16, O, C), the transformed filters (:func:`transform_filters`)
    bias : ndarray (O,)
    pad : (top, bottom, left, right), giving every tile its 4x4 input
    out : ndarray (O, n, OH, OW), written: A^T [U . (B^T d B)] A per 2x2 tile, plus bias
    """
    OH, OW = out.shape[2:]
    tH, tW = (OH + 1) // 2, (OW + 1) // 2
    xp = pad_cnhw(x, pad)                       # (C, n, 2 tH + 2, 2 tW + 2)
    if _nb.AVAILABLE:
        v = _nb.winograd_in(xp, tH, tW)
    else:
        v = transform_input(xp, tH, tW)
    m = np.matmul(u, v)                         # 16 GEMMs (O, C) @ (C, tiles)
    if _nb.AVAILABLE:
        _nb.winograd_out(m, out, bias)
    else:
        transform_output(m, out, bias)


def conv3x3(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, padding: Padding4) -> np.ndarray:
    """y = conv2d(x, w, b, stride 1, padding (top, bottom, left, right)) by F(2x2, 3x3).

    x (N, C, H, W) any layout, w (O, C, 3, 3) -> y (N, O, OH, OW), a view of a
    channel-major (O, N, OH, OW) buffer."""
    N, C, H, W = x.shape
    O = w.shape[0]
    pt, pb, pl, pr = padding
    OH, OW = H + pt + pb - 2, W + pl + pr - 2
    tH, tW = (OH + 1) // 2, (OW + 1) // 2
    # pad so that every tile has its 4x4 input: 2 tH + 2 rows, 2 tW + 2 columns
    pad = (pt, 2 * tH + 2 - H - pt, pl, 2 * tW + 2 - W - pl)
    u = transform_filters(w)
    dtype = np.result_type(x, w)
    out = np.empty((O, N, OH, OW), dtype=dtype)
    per_sample = 16 * (C + O) * tH * tW * x.itemsize     # V and M of one sample
    chunk = max(1, min(-(-N // 2), CHUNK_BYTES // per_sample))  # at least two pieces when N > 1
    bias = np.zeros(O, dtype) if b is None else b.astype(dtype)
    _threads.map_chunks(N, chunk, lambda n0, n1: winograd_chunk(x[n0:n1], u, bias, pad,
                                                                out[:, n0:n1]))
    return out.transpose(1, 0, 2, 3)


def conv3x3_backward_data(dy: np.ndarray, w: np.ndarray, padding, x_hw) -> np.ndarray:
    """dX of :func:`conv3x3`: dy correlated with the filters turned by 180 degrees
    and transposed, w'[c, o] = rot180(w[o, c]), padded 2 - p on each side."""
    pt, pb, pl, pr = padding
    H, W = x_hw
    OH, OW = dy.shape[2:]
    w_rot = np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
    # the 'full' correlation needs 2 - p on the near sides; the far sides follow from H
    pad = (2 - pt, H - OH + pt, 2 - pl, W - OW + pl)
    return conv3x3(dy, w_rot, None, pad)


def winograd_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None,
                     spec: ConvSpec) -> tuple[np.ndarray, WinogradCache]:
    """:func:`conv3x3` with the cache for :func:`winograd_backward`: x (N, C, H, W),
    w (O, C, 3, 3), b (O,) or None -> y (N, O, OH, OW), channel-major in memory."""
    N, C = x.shape[:2]
    O = w.shape[0]
    OH, OW = spec.out_hw
    y = conv3x3(x, w, b, spec.padding)
    # the weight gradient is im2col's: keep the input and im2col's batch chunks
    chunk = batch_chunk(N, C * 9 * OH * OW * x.itemsize)
    cache = WinogradCache(spec=spec, w_rows=w.reshape(1, O, C * 9), cols=None, x=x, chunk=chunk)
    return y, cache


def winograd_backward(dy: np.ndarray, cache: WinogradCache, need_dx: bool = True,
                      need_dw: bool = True) -> tuple[np.ndarray | None, np.ndarray | None,
                                                     np.ndarray | None]:
    """Gradients of :func:`winograd_forward`: dy (N, O, OH, OW) -> dx (N, C, H, W),
    dw (O, C, 3, 3), db (O,) or None.  dW and db are im2col's; dX is a Winograd
    convolution of dY when dY is finite, else im2col's col2im (no inf - inf = NaN)."""
    if not (need_dx and all_finite(dy)):
        return gemm_backward(dy, cache, need_dx, need_dw)
    _, dw, db = gemm_backward(dy, cache, need_dx=False, need_dw=need_dw)
    spec = cache.spec
    dx = conv3x3_backward_data(dy, cache.w_rows.reshape(spec.w_shape), spec.padding,
                               spec.x_shape[2:])
    return dx.astype(dy.dtype, copy=False), dw, db
