"""ONNX converters for activations, normalisation, dropout, flatten and identity,
and for the glue operations between layers (``+``, ``-``, ``*``, ``/``, ``cat``,
``reshape``...) read from the autograd graph.

LRN: PyTorch (and cnnlab) sum the squares over channels c - size//2 ..
c + (size-1)//2, ONNX over c - (size-1)//2 .. c + size//2: the same window for an
odd size only.  An even size becomes an explicit window average over channels.
Softmax: from opset 13 ``axis`` is one axis (before 13 it flattened from there on),
so ``dim`` is written as is; cnnlab's ``dim=None`` is resolved to PyTorch's
legacy choice first.
"""
from __future__ import annotations

import numpy as np

from cnnlab.autograd import activation_ops as act
from cnnlab.autograd import basic
from cnnlab.kernels.activation import SCALED_TANH_A, SCALED_TANH_S
from cnnlab.nn import modules as M
from cnnlab.onnx.graph import ExportError, GraphBuilder
from cnnlab.onnx.trace import FUNCTION_CONVERTERS, converts


def _w(a) -> np.ndarray:
    return np.asarray(a.data if hasattr(a, "data") else a)


# ------------------------------------------------------------------ activations
_SIMPLE = {M.ReLU: "Relu", M.Sigmoid: "Sigmoid", M.Tanh: "Tanh"}


@converts(*_SIMPLE)
def _simple(g, m, names, tensors, out):
    return g.op(_SIMPLE[type(m)], names, name=g.scope)


@converts(M.LeakyReLU)
def _leaky(g, m, names, tensors, out):
    return g.op("LeakyRelu", names, name=g.scope, alpha=float(m.negative_slope))


@converts(M.ELU)
def _elu(g, m, names, tensors, out):
    return g.op("Elu", names, name=g.scope, alpha=float(m.alpha))


def scaled_tanh(g: GraphBuilder, x: str) -> str:
    t = g.op("Tanh", [g.op("Mul", [x, g.f32(SCALED_TANH_S, f"{g.scope}.s")])])
    return g.op("Mul", [t, g.f32(SCALED_TANH_A, f"{g.scope}.a")], name=g.scope)


@converts(M.ScaledTanh)
def _scaled_tanh(g, m, names, tensors, out):
    return scaled_tanh(g, names[0])


def softmax_axis(dim, ndim: int) -> int:
    if dim is None:
        dim = 0 if ndim in (0, 1, 3) else 1
    return int(dim) % ndim


@converts(M.Softmax, M.LogSoftmax)
def _softmax(g, m, names, tensors, out):
    op = "LogSoftmax" if isinstance(m, M.LogSoftmax) else "Softmax"
    return g.op(op, names, name=g.scope, axis=softmax_axis(m.dim, tensors[0].ndim))


@converts(M.Dropout, M.Dropout2d, M.Identity)
def _identity(g, m, names, tensors, out):
    if getattr(m, "training", False) and getattr(m, "p", 0) > 0:
        raise ExportError("dropout in training mode is random; export in eval mode")
    return g.op("Identity", names, name=g.scope)


@converts(M.Flatten)
def _flatten(g, m, names, tensors, out):
    nd = tensors[0].ndim
    start, end = m.start_dim % nd, m.end_dim % nd
    if start == 1 and end == nd - 1:
        return g.op("Flatten", names, name=g.scope, axis=1)
    if start == 0:
        raise ExportError("flattening the batch dimension would fix the batch size")
    return g.op("Reshape", [names[0], g.i64([0, *out.shape[1:]])], name=g.scope)


# -------------------------------------------------------------- normalisation
def _affine(g: GraphBuilder, m, C: int) -> tuple[str, str]:
    w = _w(m.weight) if getattr(m, "weight", None) is not None else np.ones(C, np.float32)
    b = _w(m.bias) if getattr(m, "bias", None) is not None else np.zeros(C, np.float32)
    return g.const(w, f"{g.scope}.weight"), g.const(b, f"{g.scope}.bias")


@converts(M.BatchNorm1d, M.BatchNorm2d, M.InstanceNorm2d)
def _batch_norm(g, m, names, tensors, out):
    """Eval with running statistics: BatchNormalization in inference form.  Without them
    (``track_running_stats=False``) each batch normalises itself: an instance norm
    normalises each sample (InstanceNormalization); a batch norm over the batch
    cannot be written with a dynamic batch and refuses."""
    C = tensors[0].shape[1]
    scale, bias = _affine(g, m, C)
    if m.training:
        raise ExportError("normalisation in training mode uses batch statistics; export in "
                          "eval mode")
    if m.track_running_stats and m.running_mean is not None:
        mean = g.const(m.running_mean, f"{g.scope}.running_mean")
        var = g.const(m.running_var, f"{g.scope}.running_var")
        return g.op("BatchNormalization", [names[0], scale, bias, mean, var], name=g.scope,
                    epsilon=float(m.eps))
    if isinstance(m, M.InstanceNorm2d):
        return g.op("InstanceNormalization", [names[0], scale, bias], name=g.scope,
                    epsilon=float(m.eps))
    x, axes = names[0], [0, *range(2, tensors[0].ndim)]
    mean = g.reduce("ReduceMean", x, axes)
    d = g.op("Sub", [x, mean])
    var = g.reduce("ReduceMean", g.op("Mul", [d, d]), axes)
    y = g.op("Div", [d, g.op("Sqrt", [g.op("Add", [var, g.f32(m.eps)])])])
    shape = [1, C] + [1] * (tensors[0].ndim - 2)
    y = g.op("Mul", [y, g.reshape(scale, shape)])
    return g.op("Add", [y, g.reshape(bias, shape)], name=g.scope)


@converts(M.GroupNorm)
def _group_norm(g, m, names, tensors, out):
    """(N, C, *) as (N, G, rest): instance-normalised per group, then the per-channel affine."""
    shape = tensors[0].shape
    G, C = m.num_groups, shape[1]
    x = g.reshape(names[0], [0, G, -1])
    ones, zeros = g.f32(np.ones(G), f"{g.scope}.ones"), g.f32(np.zeros(G), f"{g.scope}.zeros")
    y = g.reshape(g.op("InstanceNormalization", [x, ones, zeros], epsilon=float(m.eps)),
                  [0, *shape[1:]])
    scale, bias = _affine(g, m, C)
    bshape = [1, C] + [1] * (len(shape) - 2)
    y = g.op("Mul", [y, g.reshape(scale, bshape)])
    return g.op("Add", [y, g.reshape(bias, bshape)], name=g.scope)


@converts(M.LayerNorm)
def _layer_norm(g, m, names, tensors, out):
    k = len(m.normalized_shape)
    nd = tensors[0].ndim
    w = _w(m.weight) if m.weight is not None else np.ones(m.normalized_shape, np.float32)
    b = _w(m.bias) if m.bias is not None else np.zeros(m.normalized_shape, np.float32)
    scale, bias = g.const(w, f"{g.scope}.weight"), g.const(b, f"{g.scope}.bias")
    if g.opset >= 17:
        return g.op("LayerNormalization", [names[0], scale, bias], name=g.scope, axis=-k,
                    epsilon=float(m.eps))
    x, axes = names[0], list(range(nd - k, nd))
    d = g.op("Sub", [x, g.reduce("ReduceMean", x, axes)])
    var = g.reduce("ReduceMean", g.op("Mul", [d, d]), axes)
    y = g.op("Div", [d, g.op("Sqrt", [g.op("Add", [var, g.f32(m.eps)])])])
    return g.op("Add", [g.op("Mul", [y, scale]), bias], name=g.scope)


@converts(M.LocalResponseNorm)
def _lrn(g, m, names, tensors, out):
    if m.size % 2:
        return g.op("LRN", names, name=g.scope, size=int(m.size), alpha=float(m.alpha),
                    beta=float(m.beta), bias=float(m.k))
    # even size: the window c - size//2 .. c + size//2 - 1 as an average over channels
    shape = tensors[0].shape
    C, rest = shape[1], int(np.prod(shape[2:]))
    x = names[0]
    sq = g.reshape(g.op("Mul", [x, x]), [0, 1, C, rest])
    avg = g.op("AveragePool", [sq], kernel_shape=[m.size, 1], strides=[1, 1],
               pads=[m.size // 2, 0, (m.size - 1) // 2, 0], count_include_pad=1)
    avg = g.reshape(avg, [0, *shape[1:]])
    den = g.op("Add", [g.op("Mul", [avg, g.f32(m.alpha)]), g.f32(m.k)])
    return g.op("Div", [x, g.op("Pow", [den, g.f32(m.beta)])], name=g.scope)


# ---------------------------------------------------------------- glue (autograd)
def _binary(op: str):
    def convert(g, fn, names, tensors, out):
        return g.op(op, names)     # a Python number arrives as a constant tensor input
    return convert


for _fn, _op in ((basic.Add, "Add"), (basic.Sub, "Sub"), (basic.Mul, "Mul"), (basic.Div, "Div"),
                 (basic.MatMul, "MatMul")):
    FUNCTION_CONVERTERS[_fn] = _binary(_op)

_UNARY = {basic.Neg: "Neg", basic.Exp: "Exp", basic.Log: "Log", basic.Abs: "Abs",
          basic.Clone: "Identity", act.ReLU: "Relu", act.Sigmoid: "Sigmoid", act.Tanh: "Tanh"}


def _unary(g, fn, names, tensors, out):
    return g.op(_UNARY[type(fn)], names)


FUNCTION_CONVERTERS.update({k: _unary for k in _UNARY})


@converts(act.ScaledTanh, table=FUNCTION_CONVERTERS)
def _fn_scaled_tanh(g, fn, names, tensors, out):
    return scaled_tanh(g, names[0])


@converts(basic.Pow, table=FUNCTION_CONVERTERS)
def _fn_pow(g, fn, names, tensors, out):
    return g.op("Pow", [names[0], g.f32(fn.p)])


@converts(basic.Concatenate, table=FUNCTION_CONVERTERS)
def _fn_cat(g, fn, names, tensors, out):
    return g.op("Concat", names, axis=int(fn.axis) % out.ndim)


def _keeps_batch(tensors, out, what: str) -> None:
    if out.ndim == 0 or tensors[0].shape[0] != out.shape[0]:
        raise ExportError(f"{what} from {tensors[0].shape} to {out.shape} changes the batch "
                          "dimension, which would fix the batch size")


@converts(basic.Reshape, table=FUNCTION_CONVERTERS)
def _fn_reshape(g, fn, names, tensors, out):
    _keeps_batch(tensors, out, "reshape")
    return g.reshape(names[0], [0, *out.shape[1:]])


@converts(basic.Transpose, table=FUNCTION_CONVERTERS)
def _fn_transpose(g, fn, names, tensors, out):
    perm = [int(v) for v in np.argsort(fn.inverse)]
    return g.op("Transpose", names, perm=perm)


def _reduce(op: str):
    def convert(g, fn, names, tensors, out):
        axes = list(range(tensors[0].ndim)) if fn.axis is None else [
            int(a) % tensors[0].ndim for a in np.atleast_1d(fn.axis)]
        if 0 in axes:
            raise ExportError(f"{op} over the batch dimension would fix the batch size")
        return g.reduce(op, names[0], axes, keepdims=bool(fn.keepdims))
    return convert


FUNCTION_CONVERTERS[basic.Sum] = _reduce("ReduceSum")
FUNCTION_CONVERTERS[basic.Mean] = _reduce("ReduceMean")
FUNCTION_CONVERTERS[basic.Max] = _reduce("ReduceMax")


@converts(act.Softmax, act.LogSoftmax, table=FUNCTION_CONVERTERS)
def _fn_softmax(g, fn, names, tensors, out):
    return g.op(type(fn).__name__, names, axis=int(fn.axis) % out.ndim)
