"""Depthwise convolution: every group has one input map, so it is computed directly.

With one input channel per group, im2col + GEMM would multiply 1 x KH*KW rows by
KH*KW x pixels matrices: no GEMM worth the name.  Output map o reads input map
c = o // per_group (per_group = O / C, the channel multiplier):

    y[n, o] = sum_{i, j} w[o, 0, i, j] * xpad[n, c, i*dh + sh*oh, j*dw + sw*ow] + b[o]

and backward, with delta = dL/dy,

    dL/dw[o, 0, i, j] = sum_{n, oh, ow} delta[n, o, oh, ow] * xpad[n, c, i*dh + sh*oh, j*dw + sw*ow]
    dL/dxpad[n, c]    = sum over the o of c and over (i, j) of w[o, 0, i, j] * delta[n, o]
                        added onto the window (i, j) it was read from.

The compiled loops of :mod:`cnnlab.kernels._numba` compute this, split by input map
over the cores; :func:`depthwise_maps_forward` and :func:`depthwise_maps_backward`
are their NumPy twins (KH * KW whole-array operations each), the specification the
tests hold the loops to, and what runs without numba.  3x3 kernels at stride 1 have
faster loops of their own (one pass per output row, nine taps in registers); their
dX is the forward loop on dY padded by 2, with the kernels turned by 180 degrees.

Arrays are channel-major inside: the padded input (C, N, Hp, Wp) C-contiguous, the
output (O, N, OH, OW), handed back as an NCHW view as im2col's is.
"""
from __future__ import annotations

from functools import partial
from typing import NamedTuple

import numpy as np

from cnnlab.kernels import _numba as _nb
from cnnlab.kernels import _threads
from cnnlab.kernels.conv_common import ConvSpec, Pair, pad_cnhw, window


class DepthwiseCache(NamedTuple):
    """What :func:`depthwise_backward` needs from :func:`depthwise_forward`."""

    spec: ConvSpec
    x_padded: np.ndarray        # (C, N, Hp, Wp), the zero-padded input, C-contiguous
    w_maps: np.ndarray          # (O, KH, KW), one kernel per output map

    layout = "depthwise"        # the algorithm's name (a class attribute, not a field)


def is_3x3_unit(w_shape: tuple[int, ...], stride: Pair, dilation: Pair) -> bool:
    """Whether the fast 3x3 loops apply: 3x3, stride 1, no dilation."""
    return tuple(w_shape[2:]) == (3, 3) and tuple(stride) == (1, 1) and tuple(dilation) == (1, 1)


def depthwise_maps_forward(xp: np.ndarray, w_maps: np.ndarray, stride: Pair, dilation: Pair,
                           out_hw: Pair, per_group: int) -> np.ndarray:
    """The NumPy twin of ``_numba.depthwise_fwd`` (and ``depthwise3x3_fwd``).

    xp (C, N, Hp, Wp) padded, w_maps (O, KH, KW) -> y (O, N, OH, OW), output map
    o = c * per_group + k reading input map c; the taps are added in the loops' order."""
    O, KH, KW = w_maps.shape
    y = np.zeros((O, xp.shape[1], *out_hw), dtype=np.result_type(xp, w_maps))
    for k in range(per_group):
        y_k, w_k = y[k::per_group], w_maps[k::per_group]      # (C, N, OH, OW), (C, KH, KW)
        for i in range(KH):
            for j in range(KW):
                y_k += w_k[:, i, j, None, None, None] * window(xp, i * dilation[0],
                                                               j * dilation[1], stride, out_hw)
    return y


def depthwise_maps_backward(xp: np.ndarray, w_maps: np.ndarray, delta: np.ndarray, stride: Pair,
                            dilation: Pair, per_group: int,
                            need_dx: bool) -> tuple[np.ndarray | None, np.ndarray]:
    """The NumPy twin of ``_numba.depthwise_bwd``: delta (O, N, OH, OW) ->
    dxp (C, N, Hp, Wp) or None, dw_maps (O, KH, KW), both in xp's dtype."""
    O, KH, KW = w_maps.shape
    out_hw = delta.shape[2:]
    dxp = np.zeros(xp.shape, dtype=xp.dtype) if need_dx else None
    dw_maps = np.zeros(w_maps.shape, dtype=xp.dtype)
    for k in range(per_group):
        d_k, w_k = delta[k::per_group], w_maps[k::per_group]  # (C, N, OH, OW), (C, KH, KW)
        for i in range(KH):
            for j in range(KW):
                taps = (i * dilation[0], j * dilation[1], stride, out_hw)
                dw_maps[k::per_group, i, j] = (d_k * window(xp, *taps)).sum(axis=(1, 2, 3))
                if need_dx:
                    window(dxp, *taps)[...] += w_k[:, i, j, None, None, None] * d_k
    return dxp, dw_maps


def depthwise_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None,
                      spec: ConvSpec) -> tuple[np.ndarray, DepthwiseCache]:
    """x (N, C, H, W) * w (O, 1, KH, KW) with groups == C, + b -> y (N, O, OH, OW),
    a view of a channel-major buffer."""
    N, C = x.shape[:2]
    O, _, KH, KW = w.shape
    OH, OW = out_hw = spec.out_hw
    stride, dilation = spec.stride, spec.dilation
    per_group = O // spec.groups
    xp = pad_cnhw(x, spec.padding)
    w_maps = w.reshape(O, KH, KW)
    dtype = np.result_type(x, w)
    spans = _threads.split(C, O * N * OH * OW * KH * KW)
    if not _nb.AVAILABLE:
        out = depthwise_maps_forward(xp, w_maps, stride, dilation, out_hw, per_group)
    elif is_3x3_unit(w.shape, stride, dilation):
        out = np.empty((O, N, OH, OW), dtype=dtype)
        _threads.parallel([partial(_nb.depthwise3x3_fwd, xp, w_maps, OH, OW, per_group, out,
                                   c0, c1) for c0, c1 in spans], blas=False)
    else:
        out = np.zeros((O, N, OH, OW), dtype=dtype)
        _threads.parallel([partial(_nb.depthwise_fwd, xp, w_maps, stride[0], stride[1],
                                   dilation[0], dilation[1], OH, OW, per_group, out, c0, c1)
                           for c0, c1 in spans], blas=False)
    if b is not None:
        out += b[:, None, None, None]
    return out.transpose(1, 0, 2, 3), DepthwiseCache(spec=spec, x_padded=xp, w_maps=w_maps)


def depthwise_backward(dy: np.ndarray, cache: DepthwiseCache, need_dx: bool = True,
                       need_dw: bool = True) -> tuple[np.ndarray | None, np.ndarray | None,
                                                      np.ndarray | None]:
    """Gradients of :func:`depthwise_forward`: dy (N, O, OH, OW) -> dx (N, C, H, W),
    dw (O, 1, KH, KW), db (O,) or None; split by input map."""
    spec = cache.spec
    N, C, H, W = spec.x_shape
    O, Cg, KH, KW = spec.w_shape
    d = np.ascontiguousarray(dy.transpose(1, 0, 2, 3))   # (O, N, OH, OW); free when channel-major
    db = d.sum(axis=(1, 2, 3)) if spec.has_bias else None
    xp = cache.x_padded
    per_group = O // spec.groups
    spans = _threads.split(C, d.size * KH * KW)
    if not _nb.AVAILABLE:
        dxp, dw_maps = depthwise_maps_backward(xp, cache.w_maps, d, spec.stride, spec.dilation,
                                               per_group, need_dx)
    elif is_3x3_unit(spec.w_shape, spec.stride, spec.dilation) and per_group == 1:
        dw_maps = np.zeros(cache.w_maps.shape, dtype=xp.dtype)
        if need_dw:
            _threads.parallel([partial(_nb.depthwise3x3_dw, xp, d, 1, dw_maps, c0, c1)
                               for c0, c1 in spans], blas=False)
        if need_dx:   # dX = dY padded by 2, correlated with the kernels turned by 180 degrees
            OH, OW = spec.out_hw
            dyp = pad_cnhw(dy, (2, 2, 2, 2))
            w_rot = np.ascontiguousarray(cache.w_maps[:, ::-1, ::-1])
            dxp = np.empty((C, N, OH + 2, OW + 2), dtype=xp.dtype)   # as the general loop
            _threads.parallel([partial(_nb.depthwise3x3_fwd, dyp, w_rot, OH + 2, OW + 2, 1, dxp,
                                       c0, c1) for c0, c1 in spans], blas=False)
    else:
        dw_maps = np.zeros(cache.w_maps.shape, dtype=xp.dtype)
        dxp = np.zeros(xp.shape if need_dx else (0, 0, 0, 0), dtype=xp.dtype)
        _threads.parallel([partial(_nb.depthwise_bwd, xp, cache.w_maps, d, spec.stride[0],
                                   spec.stride[1], spec.dilation[0], spec.dilation[1],
                                   per_group, need_dx, dxp, dw_maps, c0, c1)
                           for c0, c1 in spans], blas=False)
    dw = dw_maps.reshape(O, Cg, KH, KW) if need_dw else None
    dx = None
    if need_dx:
        pt, _, pl, _ = spec.padding
        dx = dxp[:, :, pt:pt + H, pl:pl + W].transpose(1, 0, 2, 3)
    return dx, dw, db


__all__ = ["DepthwiseCache", "depthwise_backward", "depthwise_forward", "depthwise_maps_backward",
           "depthwise_maps_forward", "is_3x3_unit"]
