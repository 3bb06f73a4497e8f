"""``cnnlab.onnx.load``: an ONNX CNN as an ordinary, trainable cnnlab Module.

Each node becomes a named child module of an :class:`~cnnlab.onnx.layers.OnnxGraph`
(cnnlab's own layer where one matches: Conv -> Conv2d, Gemm -> Linear, ...), its
initializers the module's parameters and buffers.  The graph runs the children in
the file's topological order, so branching and merging graphs (Inception, ResNet,
DenseNet) train through cnnlab's autograd.  Names come from the node names:
``/layer1/layer1.0/conv1/Conv`` becomes ``layer1_0_conv1``.
"""
from __future__ import annotations

import os
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

import numpy as np

from cnnlab.kernels.pool import pool_output_size
from cnnlab.nn import modules as M
from cnnlab.nn.functional_conv import _resolve_padding
from cnnlab.nn.module import Module
from cnnlab.onnx.checks import MAX_FILE_BYTES, OnnxFileError, read_model, tensor_to_array
from cnnlab.onnx.graph import onnx_module
from cnnlab.onnx.layers import (
    Clip,
    Concat,
    Elementwise,
    Gemm,
    OnnxGraph,
    Pad,
    Reduce,
    Reshape,
    Transpose,
    Unary,
    Unsqueeze,
)


class UnsupportedOperatorError(OnnxFileError):
    """A node whose operator (or attribute) has no cnnlab equivalent."""


class _Context:
    def __init__(self, path: Path, consts: dict[str, np.ndarray], shapes: dict[str, tuple],
                 opset: int) -> None:
        self.path, self.consts, self.shapes, self.opset = path, consts, shapes, opset
        self.helper = onnx_module().helper

    def attrs(self, node) -> dict[str, Any]:
        return {a.name: self.helper.get_attribute_value(a) for a in node.attribute}

    def const(self, node, i: int, what: str, required: bool = True) -> np.ndarray | None:
        name = node.input[i] if i < len(node.input) else ""
        if not name:
            if required:
                self.fail(node, f"needs its {what} input")
            return None
        if name not in self.consts:
            self.fail(node, f"its {what} ({name!r}) is computed in the graph; only a constant "
                            "(initializer) is supported there")
        return self.consts[name]

    def shape(self, name: str) -> tuple | None:
        return self.shapes.get(name)

    def rank(self, node, name: str) -> int:
        s = self.shape(name)
        if s is None:
            self.fail(node, f"the rank of its input {name!r} is unknown (shape inference failed)")
        return len(s)

    def fail(self, node, reason: str):
        raise UnsupportedOperatorError(f"{self.path}: node {node.name or '?'} ({node.op_type}): "
                                       f"{reason}")


Converter = Callable[[_Context, Any], tuple[Module | None, list[str]]]
CONVERTERS: dict[str, Converter] = {}


def _converts(*ops: str):
    def register(fn):
        for op in ops:
            CONVERTERS[op] = fn
        return fn
    return register


def _runtime(ctx: _Context, node, *indices: int) -> list[str]:
    idx = indices or range(len(node.input))
    return [node.input[i] for i in idx if node.input[i] and node.input[i] not in ctx.consts]


def _set(module: Module, **arrays: np.ndarray | None) -> Module:
    for name, a in arrays.items():
        if a is None:
            continue
        target = getattr(module, name)
        if target is None or tuple(target.shape) != tuple(a.shape):
            raise ValueError(f"{name}: shape {a.shape} does not fit {module!r}")
        target.data[...] = a.astype(target.data.dtype)
    return module


def _explicit_pads(ctx, node, a, x_name, kernel, strides, dilations) -> list[int]:
    """ONNX pads [begins..., ends...] with auto_pad resolved for the input's size."""
    nd = len(kernel)
    auto = a.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto in ("NOTSET", ""):
        return list(a.get("pads", [0] * 2 * nd))
    if auto == "VALID":
        return [0] * 2 * nd
    shape = ctx.shape(x_name)
    if shape is None or any(v is None for v in shape[2:]):
        ctx.fail(node, f"auto_pad {auto} needs the input's spatial size, which is unknown")
    begins, ends = [], []
    for size, k, s, d in zip(shape[2:], kernel, strides, dilations):
        total = max((-(-size // s) - 1) * s + d * (k - 1) + 1 - size, 0)
        small = total // 2
        begins.append(small if auto == "SAME_UPPER" else total - small)
        ends.append(total - begins[-1])
    return begins + ends


def _window(ctx, node, a, x_name):
    kernel = list(a["kernel_shape"]) if "kernel_shape" in a else None
    if kernel is None:
        ctx.fail(node, "has no kernel_shape")
    nd = len(kernel)
    strides = list(a.get("strides", [1] * nd))
    dilations = list(a.get("dilations", [1] * nd))
    pads = _explicit_pads(ctx, node, a, x_name, kernel, strides, dilations)
    return nd, kernel, strides, dilations, pads


def _with_pad(pads: list[int], nd: int, value: float, layer: Module) -> Module:
    """``layer`` preceded by an explicit Pad for asymmetric pads (no pad on N, C)."""
    full = [0, 0, *pads[:nd], 0, 0, *pads[nd:]]
    return M.Sequential(OrderedDict(pad=Pad(full, value), op=layer))


@_converts("Conv")
def _conv(ctx, node):
    a = ctx.attrs(node)
    w = ctx.const(node, 1, "weight")
    b = ctx.const(node, 2, "bias", required=False)
    a.setdefault("kernel_shape", list(w.shape[2:]))
    nd, kernel, strides, dilations, pads = _window(ctx, node, a, node.input[0])
    group = int(a.get("group", 1))
    O, cin = w.shape[0], w.shape[1] * group
    if nd not in (1, 2):
        ctx.fail(node, f"{nd}-D convolution is not supported (1-D and 2-D are)")
    begins, ends = pads[:nd], pads[nd:]
    padding: Any = tuple(begins)
    wrap = False
    if begins != ends:
        shape = ctx.shape(node.input[0])
        padding = None
        if shape is not None and None not in shape[2:] and nd == 2:
            for mode in ("same", "full"):
                p = _resolve_padding(mode, tuple(kernel), tuple(strides), tuple(dilations),
                                     tuple(shape[2:]))
                if [p[0], p[2], p[1], p[3]] == pads:
                    padding = mode
        if padding is None:
            padding, wrap = (0,) * nd, True
    if nd == 1:
        conv = M.Conv1d(cin, O, kernel[0], strides[0], padding if isinstance(padding, str)
                        else padding[0], dilations[0], group, bias=b is not None)
    else:
        conv = M.Conv2d(cin, O, tuple(kernel), tuple(strides), padding, tuple(dilations), group,
                        bias=b is not None)
    _set(conv, weight=w, bias=b)
    return (_with_pad(pads, nd, 0.0, conv) if wrap else conv), _runtime(ctx, node, 0)


@_converts("ConvTranspose")
def _conv_transpose(ctx, node):
    a = ctx.attrs(node)
    w = ctx.const(node, 1, "weight")
    b = ctx.const(node, 2, "bias", required=False)
    if "output_shape" in a:
        ctx.fail(node, "output_shape is not supported; give pads and output_padding")
    a.setdefault("kernel_shape", list(w.shape[2:]))
    nd, kernel, strides, dilations, pads = _window(ctx, node, a, node.input[0])
    if nd != 2 or pads[:2] != pads[2:]:
        ctx.fail(node, f"only 2-D with symmetric pads is supported, got pads {pads}")
    group = int(a.get("group", 1))
    conv = M.ConvTranspose2d(w.shape[0], w.shape[1] * group, tuple(kernel), tuple(strides),
                             tuple(pads[:2]), tuple(a.get("output_padding", [0, 0])), group,
                             bias=b is not None, dilation=tuple(dilations))
    return _set(conv, weight=w, bias=b), _runtime(ctx, node, 0)


def _linear(w_out_in: np.ndarray, bias: np.ndarray | None) -> Module:
    O, F_in = w_out_in.shape
    lin = M.Linear(F_in, O, bias=bias is not None)
    return _set(lin, weight=w_out_in, bias=None if bias is None
                else np.broadcast_to(bias, (O,)).reshape(O))


@_converts("Gemm")
def _gemm(ctx, node):
    a = ctx.attrs(node)
    w = ctx.const(node, 1, "B")
    c = ctx.const(node, 2, "C", required=False)
    alpha, beta = float(a.get("alpha", 1.0)), float(a.get("beta", 1.0))
    ta, tb = bool(a.get("transA", 0)), bool(a.get("transB", 0))
    W = w if tb else w.T
    bias_ok = c is None or c.size in (1, W.shape[0]) and c.ndim <= 2 and c.shape[-1] in (1, W.shape[0])
    if alpha == 1 and beta == 1 and not ta and bias_ok:
        return _linear(np.ascontiguousarray(W), c), _runtime(ctx, node, 0)
    return Gemm(w, c, alpha, beta, ta, tb), _runtime(ctx, node, 0)


@_converts("MatMul")
def _matmul(ctx, node):
    b = ctx.consts.get(node.input[1])
    if b is not None and b.ndim == 2 and node.input[0] not in ctx.consts:
        return _linear(np.ascontiguousarray(b.T), ctx.fused_bias.get(node.output[0])), \
            _runtime(ctx, node, 0)
    return _elementwise(ctx, node, "MatMul")


def _elementwise(ctx, node, op: str):
    x, y = node.input[0], node.input[1]
    if x in ctx.consts and y in ctx.consts:
        ctx.fail(node, "both inputs are constants")
    if y in ctx.consts:
        return Elementwise(op, ctx.consts[y]), [x]
    if x in ctx.consts:
        return Elementwise(op, ctx.consts[x], constant_first=True), [y]
    return Elementwise(op), [x, y]


for _op in ("Add", "Sub", "Mul", "Div"):
    CONVERTERS[_op] = lambda ctx, node, _op=_op: _elementwise(ctx, node, _op)

_ACT = {"Relu": M.ReLU, "Sigmoid": M.Sigmoid, "Tanh": M.Tanh}


@_converts(*_ACT)
def _act(ctx, node):
    return _ACT[node.op_type](), _runtime(ctx, node, 0)


@_converts("LeakyRelu")
def _leaky(ctx, node):
    return M.LeakyReLU(float(ctx.attrs(node).get("alpha", 0.01))), _runtime(ctx, node, 0)


@_converts("Elu")
def _elu(ctx, node):
    return M.ELU(float(ctx.attrs(node).get("alpha", 1.0))), _runtime(ctx, node, 0)


@_converts("Softmax", "LogSoftmax")
def _softmax(ctx, node):
    a = ctx.attrs(node)
    rank = ctx.rank(node, node.input[0])
    if ctx.opset >= 13:
        axis = int(a.get("axis", -1)) % rank
    else:   # before 13: flatten from axis on, softmax over the flattened rest
        axis = int(a.get("axis", 1)) % rank
        if axis != rank - 1:
            ctx.fail(node, f"opset {ctx.opset} softmax over the flattened axes {axis}..{rank - 1} "
                           "is not supported (opset 13+ or axis = last is)")
    layer = M.LogSoftmax(axis) if node.op_type == "LogSoftmax" else M.Softmax(axis)
    return layer, _runtime(ctx, node, 0)


@_converts("Clip")
def _clip(ctx, node):
    a = ctx.attrs(node)
    low, high = a.get("min"), a.get("max")
    if ctx.opset >= 11:
        lo = ctx.const(node, 1, "min", required=False)
        hi = ctx.const(node, 2, "max", required=False)
        low = None if lo is None else float(lo)
        high = None if hi is None else float(hi)
    if low == 0 and high is None:
        return M.ReLU(), _runtime(ctx, node, 0)
    return Clip(low, high), _runtime(ctx, node, 0)


@_converts("MaxPool", "AveragePool")
def _pool(ctx, node):
    a = ctx.attrs(node)
    if len(node.output) > 1 and node.output[1]:
        ctx.fail(node, "the Indices output is not supported")
    nd, kernel, strides, dilations, pads = _window(ctx, node, a, node.input[0])
    ceil = bool(a.get("ceil_mode", 0))
    is_max = node.op_type == "MaxPool"
    include = bool(a.get("count_include_pad", 0))
    if nd not in (1, 2):
        ctx.fail(node, f"{nd}-D pooling is not supported (1-D and 2-D are)")
    begins, ends = pads[:nd], pads[nd:]
    fits = all(2 * p <= k for p, k in zip(begins, kernel))
    if begins != ends and fits and not ceil and (is_max or not include):
        ceil = _ceil_equivalent(ctx.shape(node.input[0]), kernel, strides, dilations, pads)
        if ceil:    # far-side pads that only complete the last window: ceil_mode (exact)
            ends = begins
    if begins == ends and fits:
        pad_out, padding = None, begins
    elif is_max or include:
        if ceil:
            ctx.fail(node, f"asymmetric pads {pads} with ceil_mode are not supported")
        pad_out, padding = pads, [0] * nd
    else:
        ctx.fail(node, f"asymmetric pads {pads} with count_include_pad=0 are not supported")
    one = (lambda v: v[0]) if nd == 1 else tuple
    if is_max:
        cls = M.MaxPool1d if nd == 1 else M.MaxPool2d
        layer = cls(one(kernel), one(strides), one(padding), one(dilations), ceil_mode=ceil)
    else:
        if dilations != [1] * nd:
            ctx.fail(node, "dilated average pooling is not supported")
        cls = M.AvgPool1d if nd == 1 else M.AvgPool2d
        layer = cls(one(kernel), one(strides), one(padding), ceil_mode=ceil,
                    count_include_pad=include)
    if pad_out is not None:
        layer = _with_pad(pad_out, nd, -np.inf if is_max else 0.0, layer)
    return layer, _runtime(ctx, node, 0)


def _ceil_equivalent(shape, kernel, strides, dilations, pads) -> bool:
    """Whether pads (begin, larger end) give the output of ceil_mode with pads (begin,
    begin); for max pooling (and averaging that counts only real values) the two
    are then the same windows."""
    nd = len(kernel)
    if shape is None or None in shape[2:]:
        return False
    for a, size in enumerate(shape[2:]):
        k, s, d, b, e = kernel[a], strides[a], dilations[a], pads[a], pads[a + nd]
        if e < b or (size + b + e - d * (k - 1) - 1) // s + 1 != pool_output_size(size, k, s, b, d, True):
            return False
        if (pool_output_size(size, k, s, b, d, True) - 1) * s >= size + b:
            return False
    return True


@_converts("GlobalAveragePool", "GlobalMaxPool")
def _global_pool(ctx, node):
    rank = ctx.rank(node, node.input[0])
    avg = node.op_type == "GlobalAveragePool"
    if rank == 4:
        layer = M.AdaptiveAvgPool2d(1) if avg else M.AdaptiveMaxPool2d(1)
    elif rank == 3:
        layer = M.AdaptiveAvgPool1d(1) if avg else M.AdaptiveMaxPool1d(1)
    else:
        ctx.fail(node, f"input of rank {rank} is not supported (3 or 4 are)")
    return layer, _runtime(ctx, node, 0)


@_converts("BatchNormalization")
def _batch_norm(ctx, node):
    a = ctx.attrs(node)
    if a.get("training_mode", 0):
        ctx.fail(node, "training_mode=1 is not supported (inference form is)")
    scale, bias = ctx.const(node, 1, "scale"), ctx.const(node, 2, "B")
    mean, var = ctx.const(node, 3, "mean"), ctx.const(node, 4, "var")
    rank = ctx.rank(node, node.input[0])
    cls = M.BatchNorm2d if rank == 4 else M.BatchNorm1d
    layer = cls(scale.shape[0], eps=float(a.get("epsilon", 1e-5)),
                momentum=1.0 - float(a.get("momentum", 0.9)))
    _set(layer, weight=scale, bias=bias)
    layer.running_mean[...] = mean
    layer.running_var[...] = var
    return layer, _runtime(ctx, node, 0)


@_converts("InstanceNormalization")
def _instance_norm(ctx, node):
    scale, bias = ctx.const(node, 1, "scale"), ctx.const(node, 2, "B")
    layer = M.InstanceNorm2d(scale.shape[0], eps=float(ctx.attrs(node).get("epsilon", 1e-5)),
                             affine=True)
    return _set(layer, weight=scale, bias=bias), _runtime(ctx, node, 0)


@_converts("LayerNormalization")
def _layer_norm(ctx, node):
    a = ctx.attrs(node)
    scale = ctx.const(node, 1, "scale")
    bias = ctx.const(node, 2, "B", required=False)
    rank = ctx.rank(node, node.input[0])
    axis = int(a.get("axis", -1)) % rank
    shape = ctx.shape(node.input[0])[axis:]
    if None in shape:
        ctx.fail(node, "normalises over an axis of unknown size")
    layer = M.LayerNorm(tuple(shape), eps=float(a.get("epsilon", 1e-5)),
                        bias=bias is not None)
    return _set(layer, weight=np.broadcast_to(scale, shape),
                bias=None if bias is None else np.broadcast_to(bias, shape)), _runtime(ctx, node, 0)


@_converts("LRN")
def _lrn(ctx, node):
    a = ctx.attrs(node)
    size = int(a["size"])
    if size % 2 == 0:
        ctx.fail(node, f"even size {size}: ONNX centres the window one channel later than "
                       "cnnlab's (PyTorch's) LocalResponseNorm")
    return (M.LocalResponseNorm(size, float(a.get("alpha", 1e-4)), float(a.get("beta", 0.75)),
                                float(a.get("bias", 1.0))), _runtime(ctx, node, 0))


@_converts("Flatten")
def _flatten(ctx, node):
    axis = int(ctx.attrs(node).get("axis", 1))
    rank = ctx.rank(node, node.input[0])
    if axis % rank != 1 and axis != rank:
        ctx.fail(node, f"axis {axis} would flatten the batch dimension into the features")
    return M.Flatten(1, -1), _runtime(ctx, node, 0)


@_converts("Reshape")
def _reshape(ctx, node):
    if ctx.attrs(node).get("allowzero", 0):
        ctx.fail(node, "allowzero=1 is not supported")
    shape = ctx.consts.get(node.input[1])
    if shape is None:     # computed from Shape(x): use the inferred output shape
        out = ctx.shape(node.output[0])
        if out is None or sum(v is None for v in out) > 1:
            ctx.fail(node, "its target shape is computed in the graph and could not be inferred")
        shape = [-1 if v is None else v for v in out]
    shape = [int(v) for v in np.asarray(shape).ravel()]
    if BATCH in shape[1:] or any(abs(v) > 2**39 and v != BATCH for v in shape):
        ctx.fail(node, "its target shape moves or computes with the batch size")
    shape = [0 if v == BATCH else v for v in shape]
    if shape and shape[0] not in (0, -1):
        in_shape = ctx.shape(node.input[0])
        if in_shape is not None and in_shape[0] is None and -1 in shape[1:]:
            ctx.fail(node, f"target shape {shape} fixes the batch size")
        if -1 not in shape:
            shape[0] = 0 if in_shape is None or in_shape[0] is None else shape[0]
    return Reshape(shape), _runtime(ctx, node, 0)


@_converts("Concat")
def _concat(ctx, node):
    if any(i in ctx.consts for i in node.input):
        ctx.fail(node, "concatenating a constant is not supported")
    return Concat(int(ctx.attrs(node)["axis"])), list(node.input)


@_converts("Dropout", "Identity")
def _alias(ctx, node):
    if node.op_type == "Dropout" and len(node.output) > 1 and node.output[1]:
        ctx.fail(node, "the mask output is not supported")
    return None, _runtime(ctx, node, 0)


@_converts("Pad")
def _pad(ctx, node):
    a = ctx.attrs(node)
    mode = a.get("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if mode != "constant":
        ctx.fail(node, f"mode {mode!r} is not supported (constant is)")
    if ctx.opset >= 11:
        pads = ctx.const(node, 1, "pads")
        value = ctx.const(node, 2, "constant_value", required=False)
        if len(node.input) > 3 and node.input[3]:
            ctx.fail(node, "the axes input is not supported")
    else:
        pads, value = a["pads"], a.get("value", 0.0)
    pads = [int(p) for p in np.asarray(pads).ravel()]
    if min(pads) < 0:
        ctx.fail(node, f"negative pads {pads} (cropping) are not supported")
    return Pad(pads, 0.0 if value is None else float(np.asarray(value).ravel()[0])), \
        _runtime(ctx, node, 0)


@_converts("Neg", "Exp", "Log", "Abs", "Sqrt", "Pow")
def _unary(ctx, node):
    exponent = None
    if node.op_type == "Pow":
        p = ctx.const(node, 1, "exponent")
        if p.size != 1:
            ctx.fail(node, f"exponent of shape {p.shape}: only a scalar is supported")
        exponent = float(p.ravel()[0])
    return Unary(node.op_type, exponent), _runtime(ctx, node, 0)


def _axes(ctx, node, required: bool = True) -> list[int] | None:
    a = ctx.attrs(node)
    if "axes" in a:
        return [int(v) for v in a["axes"]]
    axes = ctx.const(node, 1, "axes", required=required)
    return None if axes is None else [int(v) for v in np.asarray(axes).ravel()]


@_converts("Unsqueeze")
def _unsqueeze(ctx, node):
    return Unsqueeze(_axes(ctx, node)), _runtime(ctx, node, 0)


@_converts("Transpose")
def _transpose(ctx, node):
    perm = ctx.attrs(node).get("perm")
    if perm is None:
        perm = list(reversed(range(ctx.rank(node, node.input[0]))))
    return Transpose(perm), _runtime(ctx, node, 0)


@_converts("ReduceSum", "ReduceMean", "ReduceMax")
def _reduce(ctx, node):
    a = ctx.attrs(node)
    axes = _axes(ctx, node, required=False)
    if axes is None:
        if a.get("noop_with_empty_axes", 0):
            return None, _runtime(ctx, node, 0)
        axes = list(range(ctx.rank(node, node.input[0])))
    return Reduce(node.op_type, axes, bool(a.get("keepdims", 1))), _runtime(ctx, node, 0)


SUPPORTED = sorted([*CONVERTERS, "Constant"])


def _layer_name(node, index: int, used: set[str]) -> str:
    parts = [p for p in node.name.strip("/").split("/") if p]
    if len(parts) > 1 and re.fullmatch(rf"{node.op_type}(_\d+)?", parts[-1]):
        parts = parts[:-1]
    path: list[str] = []
    for p in parts:     # torch's scopes repeat the parent's last name: layer1/layer1.0/conv1
        cut = next((k for k in range(len(path)) if p.startswith(".".join(path[k:]) + ".")),
                   len(path))
        path = path[:cut] + [p]
    name = re.sub(r"\W+", "_", ".".join(path)).strip("_") or f"{node.op_type.lower()}_{index}"
    if hasattr(OnnxGraph, name) or name in ("steps", "input_name", "output_name", "input_size"):
        name = f"{node.op_type.lower()}_{name}"
    base, i = name, 0
    while name in used:
        i += 1
        name = f"{base}_{i}"
    used.add(name)
    return name


def _shapes(model) -> dict[str, tuple]:
    onnx = onnx_module()
    try:
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception:   # noqa: BLE001 - a graph shape inference cannot follow: shapes unknown
        inferred = model
    g = inferred.graph
    out = {}
    for vi in [*g.input, *g.value_info, *g.output]:
        if vi.type.HasField("tensor_type") and vi.type.tensor_type.HasField("shape"):
            out[vi.name] = tuple(d.dim_value if d.HasField("dim_value") else None
                                 for d in vi.type.tensor_type.shape.dim)
    return out


BATCH = 2**40 + 7     # stands for the free batch size inside shape arithmetic


def _fold_shape_arithmetic(graph, consts: dict, shapes: dict) -> None:
    """Evaluate the shape computations exporters write for ``x.view(x.size(0), -1)``
    (Shape, Gather, Unsqueeze, Squeeze, Concat, Slice, Cast on shapes) to constants,
    the free batch size standing as ``BATCH``."""
    for n in graph.node:
        ins = list(n.input)
        try:
            if n.op_type == "Shape" and ins[0] in shapes and not n.attribute:
                dims = shapes[ins[0]]
                if None in dims[1:]:
                    continue
                consts[n.output[0]] = np.array([BATCH if d is None else d for d in dims], np.int64)
            elif n.op_type in ("Gather", "Unsqueeze", "Squeeze", "Concat", "Slice", "Cast") \
                    and ins and all(i in consts for i in ins if i) \
                    and any(np.asarray(consts[i]).dtype.kind in "iu" for i in ins if i):
                a = {x.name: onnx_module().helper.get_attribute_value(x) for x in n.attribute}
                v = [consts[i] if i else None for i in ins]
                if n.op_type == "Gather":
                    out = np.take(v[0], v[1], axis=int(a.get("axis", 0)))
                elif n.op_type == "Unsqueeze":
                    out = np.expand_dims(v[0], tuple(int(x) for x in (a.get("axes") or v[1])))
                elif n.op_type == "Squeeze":
                    out = np.squeeze(v[0], tuple(int(x) for x in (a.get("axes") or v[1])))
                elif n.op_type == "Concat":
                    out = np.concatenate([np.atleast_1d(x) for x in v], int(a["axis"]))
                elif n.op_type == "Slice" and len(v) >= 3:
                    axes = v[3] if len(v) > 3 and v[3] is not None else range(len(v[1]))
                    steps = v[4] if len(v) > 4 and v[4] is not None else [1] * len(v[1])
                    idx = [slice(None)] * v[0].ndim
                    for ax, b, e, st in zip(axes, v[1], v[2], steps):
                        idx[int(ax)] = slice(int(b), int(e), int(st))
                    out = v[0][tuple(idx)]
                else:
                    out = v[0].astype(np.int64)
                consts[n.output[0]] = np.asarray(out)
        except (ValueError, IndexError, KeyError, TypeError):
            continue


def _fused_bias(graph, consts) -> dict[str, np.ndarray]:
    """MatMul(x, W) + b (both constant, b 1-D, the product used once): one Linear."""
    uses: dict[str, int] = {}
    for n in graph.node:
        for i in n.input:
            uses[i] = uses.get(i, 0) + 1
    producers = {o: n for n in graph.node for o in n.output}
    fused = {}
    for n in graph.node:
        if n.op_type != "Add" or len(n.input) != 2:
            continue
        for x, b in ((n.input[0], n.input[1]), (n.input[1], n.input[0])):
            p = producers.get(x)
            if (p is not None and p.op_type == "MatMul" and uses.get(x) == 1 and b in consts
                    and consts[b].ndim == 1 and p.input[1] in consts
                    and consts[p.input[1]].ndim == 2 and consts[b].shape[0] == consts[p.input[1]].shape[1]):
                fused[x] = consts[b]
                fused[n.output[0]] = x      # the Add's output is the MatMul's
    return fused


def load(path: str | os.PathLike, max_bytes: int = MAX_FILE_BYTES) -> OnnxGraph:
    """Read an ONNX CNN as a cnnlab Module (in eval mode; ``.train()`` to fine-tune).

    One input (N, C, H, W) or (N, F) with a free or fixed batch, one output.  Raises
    :class:`OnnxFileError` for a missing, truncated, malformed, oversized or unsafe
    file and :class:`UnsupportedOperatorError` naming a node whose operator cnnlab
    cannot run (with the list of those it can).
    """
    path = Path(path)
    model = read_model(path, max_bytes)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is None:
        raise OnnxFileError(f"{path}: no default-domain opset import")
    if len(model.functions):
        raise UnsupportedOperatorError(f"{path}: model-local functions are not supported")
    g = model.graph
    consts = {t.name: tensor_to_array(t, path, path.parent) for t in g.initializer}
    for n in g.node:
        if n.domain not in ("", "ai.onnx"):
            raise UnsupportedOperatorError(
                f"{path}: node {n.name or '?'} uses operator {n.domain}.{n.op_type} of a custom "
                f"domain; supported: {', '.join(SUPPORTED)}")
        if n.op_type == "Constant":
            attr = {a.name: a for a in n.attribute}
            if "value" not in attr:
                raise UnsupportedOperatorError(f"{path}: node {n.name or '?'} (Constant): only the "
                                               "'value' form is supported")
            consts[n.output[0]] = tensor_to_array(attr["value"].t, path, path.parent)
        elif n.op_type == "Identity" and n.input[0] in consts:      # a shared weight
            consts[n.output[0]] = consts[n.input[0]]
    shapes = _shapes(model)
    _fold_shape_arithmetic(g, consts, shapes)
    inputs = [i for i in g.input if i.name not in consts]
    if len(inputs) != 1 or len(g.output) != 1:
        raise UnsupportedOperatorError(f"{path}: only one input and one output are supported, "
                                       f"got {len(inputs)} inputs and {len(g.output)} outputs")
    in_shape = shapes.get(inputs[0].name)
    if in_shape is None or len(in_shape) < 2 or None in in_shape[1:]:
        raise UnsupportedOperatorError(f"{path}: input {inputs[0].name!r} must have a known "
                                       f"shape (N, C, ...) apart from the batch, got {in_shape}")
    ctx = _Context(path, consts, shapes, opset)
    ctx.fused_bias = {k: v for k, v in _fused_bias(g, consts).items() if isinstance(v, np.ndarray)}
    alias_add = {k: v for k, v in _fused_bias(g, consts).items() if isinstance(v, str)}
    # walk back from the output: only what it needs is converted (shape-only subgraphs drop out)
    needed, plan = {g.output[0].name}, []
    for n in reversed(g.node):
        if not any(o in needed for o in n.output) or n.output[0] in consts:
            continue
        if n.output[0] in alias_add:             # MatMul + Add fused into the MatMul's Linear
            plan.append((n, None, [alias_add[n.output[0]]]))
            needed.add(alias_add[n.output[0]])
            continue
        convert = CONVERTERS.get(n.op_type)
        if convert is None:
            raise UnsupportedOperatorError(
                f"{path}: node {n.name or '?'} uses operator {n.op_type}, which cnnlab cannot "
                f"import; supported: {', '.join(SUPPORTED)}")
        try:
            module, runtime = convert(ctx, n)
        except (KeyError, IndexError, TypeError, ValueError) as e:
            if isinstance(e, OnnxFileError):
                raise
            raise UnsupportedOperatorError(f"{path}: node {n.name or '?'} ({n.op_type}): {e}") from e
        plan.append((n, module, runtime))
        needed.update(runtime)
    plan.reverse()
    steps, aliases, used, children = [], {}, set(), {}
    for index, (n, module, runtime) in enumerate(plan):
        runtime = [aliases.get(r, r) for r in runtime]
        if module is None:
            aliases[n.output[0]] = runtime[0]
            continue
        name = _layer_name(n, index, used)
        children[name] = module
        steps.append((name, runtime, n.output[0]))
    out_name = aliases.get(g.output[0].name, g.output[0].name)
    graph = OnnxGraph(steps, inputs[0].name, out_name, tuple(in_shape[1:]))
    for name, module in children.items():
        graph.add_module(name, module)
    graph.source = str(path)
    graph.opset = opset
    graph.metadata = {p.key: p.value for p in model.metadata_props}
    return graph.eval()


__all__ = ["OnnxFileError", "UnsupportedOperatorError", "load"]
