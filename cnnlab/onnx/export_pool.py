"""ONNX converters for pooling: max and average (1-D and 2-D, padding, dilation,
ceil_mode, count_include_pad, divisor_override), adaptive, LP, stochastic (eval)
and trainable subsampling.

The pitfalls, each handled here rather than left to the runtime:

* ``ceil_mode``: PyTorch drops a last window that would start in the right-hand
  padding; ONNX's rule has differed between versions.  The output size PyTorch's
  rule gives is turned into explicit extra end pads with ``ceil_mode=0``.
* ``count_include_pad``: ONNX's default is 0, PyTorch's True; the attribute is
  always written.  Where the divisor of a window is neither (ceil-mode overhang
  with counted padding, ``divisor_override``), the window sums are divided by a
  constant divisor map computed with cnnlab's own rule.
"""
from __future__ import annotations

import numpy as np

from cnnlab.kernels.pool import _divisor_1d, pool_output_size
from cnnlab.nn import modules as M
from cnnlab.onnx.graph import ExportError, GraphBuilder
from cnnlab.onnx.trace import converts


def _tup(v, n: int) -> tuple[int, ...]:
    return tuple(int(a) for a in np.broadcast_to(np.asarray(v), (n,)))


def _window_pads(sizes, kernel, stride, padding, dilation, ceil_mode) -> tuple[list[int], tuple]:
    """ONNX pads [begins..., ends...] that give PyTorch's output size in floor mode."""
    begins, ends, outs = [], [], []
    for size, k, s, p, d in zip(sizes, kernel, stride, padding, dilation):
        out = pool_output_size(size, k, s, p, d, ceil_mode)
        need = (out - 1) * s + d * (k - 1) + 1
        begins.append(p)
        ends.append(max(p, need - size - p))
        outs.append(out)
    return begins + ends, tuple(outs)


def window_sum(g: GraphBuilder, x: str, channels: int, kernel, stride, pads) -> str:
    """Sum over each window (zero padding): a depthwise convolution with ones."""
    ones = np.ones((channels, 1, *kernel), dtype=np.float32)
    return g.op("Conv", [x, g.const(ones, f"{g.scope}.ones")], kernel_shape=list(kernel),
                strides=list(stride), pads=list(pads), dilations=[1] * len(kernel), group=channels)


def _pool_settings(m, nd: int):
    k, s = _tup(m.kernel_size, nd), _tup(m.stride, nd)
    p = _tup(getattr(m, "padding", 0), nd)
    d = _tup(getattr(m, "dilation", 1), nd)
    return k, s, p, d


@converts(M.MaxPool2d, M.MaxPool1d)
def _max_pool(g, m, names, tensors, out):
    if m.return_indices:
        raise ExportError("return_indices=True has no single-output ONNX form")
    nd = tensors[0].ndim - 2
    k, s, p, d = _pool_settings(m, nd)
    pads, _ = _window_pads(tensors[0].shape[2:], k, s, p, d, m.ceil_mode)
    return g.op("MaxPool", [names[0]], name=g.scope, kernel_shape=list(k), strides=list(s),
                pads=pads, dilations=list(d), ceil_mode=0)


@converts(M.AvgPool2d, M.AvgPool1d)
def _avg_pool(g, m, names, tensors, out):
    nd = tensors[0].ndim - 2
    k, s, p, _ = _pool_settings(m, nd)
    sizes = tensors[0].shape[2:]
    pads, outs = _window_pads(sizes, k, s, p, (1,) * nd, m.ceil_mode)
    override = getattr(m, "divisor_override", None)
    overhang = pads[nd:] != list(p)
    if not override and not (overhang and m.count_include_pad):
        return g.op("AveragePool", [names[0]], name=g.scope, kernel_shape=list(k),
                    strides=list(s), pads=pads, ceil_mode=0,
                    count_include_pad=int(bool(m.count_include_pad)))
    if override:
        divisor = np.full(outs, float(override), dtype=np.float32)
    else:
        per_axis = [_divisor_1d(sz, o, kk, ss, pp, True) for sz, o, kk, ss, pp in
                    zip(sizes, outs, k, s, p)]
        divisor = per_axis[0] if nd == 1 else np.outer(per_axis[0], per_axis[1])
    total = window_sum(g, names[0], tensors[0].shape[1], k, s, pads)
    return g.op("Div", [total, g.f32(divisor, f"{g.scope}.divisor")])


@converts(M.AdaptiveAvgPool2d, M.AdaptiveMaxPool2d, M.AdaptiveAvgPool1d, M.AdaptiveMaxPool1d)
def _adaptive(g, m, names, tensors, out):
    """Global pooling, or equal non-overlapping bins as one pool; otherwise PyTorch's
    overlapping bins: averages as one MatMul with a constant bin matrix, maxima one
    ReduceMax per bin."""
    is_max = isinstance(m, (M.AdaptiveMaxPool2d, M.AdaptiveMaxPool1d))
    if is_max and m.return_indices:
        raise ExportError("return_indices=True has no single-output ONNX form")
    x, sizes, outs = names[0], tuple(tensors[0].shape[2:]), tuple(out.shape[2:])
    if all(o == 1 for o in outs):
        return g.op("GlobalMaxPool" if is_max else "GlobalAveragePool", [x], name=g.scope)
    if all(sz % o == 0 for sz, o in zip(sizes, outs)):
        k = [sz // o for sz, o in zip(sizes, outs)]
        kwargs = {} if is_max else {"count_include_pad": 0}
        return g.op("MaxPool" if is_max else "AveragePool", [x], name=g.scope, kernel_shape=k,
                    strides=k, pads=[0] * 2 * len(k), **kwargs)
    bins = [[(i * sz // o, -(-(i + 1) * sz // o)) for i in range(o)] for sz, o in zip(sizes, outs)]
    C = tensors[0].shape[1]
    if not is_max:
        P = np.zeros((int(np.prod(sizes)), int(np.prod(outs))), dtype=np.float32)
        grid = np.zeros(sizes, dtype=np.float32)
        for j, window in enumerate(np.ndindex(*outs)):
            cell = grid.copy()
            cell[tuple(slice(*bins[a][window[a]]) for a in range(len(sizes)))] = 1
            P[:, j] = cell.ravel() / cell.sum()
        flat = g.reshape(x, [0, C, int(np.prod(sizes))])
        y = g.op("MatMul", [flat, g.f32(P, f"{g.scope}.bins")], name=g.scope)
        return g.reshape(y, [0, C, *outs])
    cells = []
    for window in np.ndindex(*outs):
        starts = [bins[a][window[a]][0] for a in range(len(sizes))]
        ends = [bins[a][window[a]][1] for a in range(len(sizes))]
        axes = list(range(2, 2 + len(sizes)))
        part = g.op("Slice", [x, g.i64(starts), g.i64(ends), g.i64(axes)])
        cells.append(g.reduce("ReduceMax", part, axes, keepdims=True))
    rows = cells
    if len(outs) == 2:
        rows = [g.op("Concat", cells[r * outs[1]:(r + 1) * outs[1]], axis=3) for r in range(outs[0])]
    return g.op("Concat", rows, name=g.scope, axis=2)


@converts(M.LPPool2d, M.LPPool1d)
def _lp_pool(g, m, names, tensors, out):
    """PyTorch's numbers: a = avg_pool(x ** p) (ceil-mode windows averaged over their
    real positions), y = (a * KH KW) ** (1 / p)."""
    nd = tensors[0].ndim - 2
    k, s, _, _ = _pool_settings(m, nd)
    sizes = tensors[0].shape[2:]
    p = float(m.norm_type)
    pads, outs = _window_pads(sizes, k, s, (0,) * nd, (1,) * nd, m.ceil_mode)
    xp = g.op("Pow", [names[0], g.f32(p, f"{g.scope}.p")])
    a = g.op("AveragePool", [xp], kernel_shape=list(k), strides=list(s), pads=pads, ceil_mode=0,
             count_include_pad=0)
    z = g.op("Mul", [a, g.f32(float(np.prod(k)), f"{g.scope}.numel")])
    return g.op("Pow", [z, g.f32(np.float32(1.0 / p), f"{g.scope}.inv_p")], name=g.scope)


@converts(M.StochasticPool2d)
def _stochastic_pool(g, m, names, tensors, out):
    """Eval-mode stochastic pooling, sum a^2 / sum a per window (0 for an all-zero
    window).  Training mode samples, which a deterministic graph cannot."""
    if m.training:
        raise ExportError("stochastic pooling samples in training mode; export in eval mode")
    k, s, _, _ = _pool_settings(m, 2)
    C = tensors[0].shape[1]
    x = names[0]
    num = window_sum(g, g.op("Mul", [x, x]), C, k, s, [0, 0, 0, 0])
    den = window_sum(g, x, C, k, s, [0, 0, 0, 0])
    zero = g.f32(0.0, f"{g.scope}.zero")
    return g.op("Where", [g.op("Equal", [den, zero]), zero, g.op("Div", [num, den])],
                name=g.scope)


@converts(M.Subsample2d)
def _subsample(g, m, names, tensors, out):
    """weight_c * (sum of each block) + bias_c, blocks of kernel_size, leftovers dropped."""
    C = m.channels
    k = _tup(m.kernel_size, 2)
    down = window_sum(g, names[0], C, k, k, [0, 0, 0, 0])
    y = g.op("Mul", [down, g.const(np.asarray(m.weight.data).reshape(1, C, 1, 1),
                                   f"{g.scope}.weight")], name=g.scope)
    if m.bias is None:
        return y
    return g.op("Add", [y, g.const(np.asarray(m.bias.data).reshape(1, C, 1, 1), f"{g.scope}.bias")])
