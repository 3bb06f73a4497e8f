"""The modules an ONNX import builds besides cnnlab's own layers: the graph itself
(:class:`OnnxGraph`) and the operators with no cnnlab layer (elementwise with a
constant, concat, reshape, pad, clip, general Gemm/MatMul).  Each is an ordinary
Module, differentiable through cnnlab's autograd, and each has an export converter
here, so an imported model exports again.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from cnnlab.autograd.tensor import Tensor, cat
from cnnlab.nn.module import Module
from cnnlab.nn.parameter import Parameter
from cnnlab.onnx.trace import converts


class OnnxGraph(Module):
    """An imported ONNX graph: its nodes as named child modules, run in topological
    order.  ``steps`` lists (child name, input value names, output value name);
    ``input_size`` is the (C, H, W) the file declares."""

    def __init__(self, steps: list[tuple[str, list[str], str]], input_name: str, output_name: str,
                 input_size: tuple[int, ...]) -> None:
        super().__init__()
        self.steps, self.input_name, self.output_name = steps, input_name, output_name
        self.input_size = tuple(input_size)

    def forward(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor):
            x = Tensor(x)
        if tuple(x.shape[1:]) != self.input_size:
            raise ValueError(f"imported ONNX model expects input (N, "
                             f"{', '.join(map(str, self.input_size))}), got {x.shape}")
        env = {self.input_name: x}
        for name, inputs, output in self.steps:
            env[output] = getattr(self, name)(*(env[i] for i in inputs))
        return env[self.output_name]

    def extra_repr(self) -> str:
        return f"input_size={self.input_size}"


def _const(a) -> np.ndarray:
    return np.array(a, dtype=np.float32) if np.asarray(a).dtype.kind == "f" else np.array(a)


class Elementwise(Module):
    """``op`` ('Add', 'Sub', 'Mul', 'Div', 'MatMul') of two inputs, or of one input and a constant
    (``constant``, on the side ``constant_first`` says), broadcast as ONNX does."""

    _OPS = {"Add": Tensor.__add__, "Sub": Tensor.__sub__, "Mul": Tensor.__mul__,
            "Div": Tensor.__truediv__, "MatMul": Tensor.__matmul__}

    def __init__(self, op: str, constant: np.ndarray | None = None, constant_first: bool = False):
        super().__init__()
        self.op, self.constant_first = op, constant_first
        self.register_buffer("constant", None if constant is None else _const(constant))

    def forward(self, a: Tensor, b: Tensor | None = None) -> Tensor:
        if self.constant is not None:
            c = Tensor(self.constant)
            a, b = (c, a) if self.constant_first else (a, c)
        return self._OPS[self.op](a, b)

    def extra_repr(self) -> str:
        return self.op + ("" if self.constant is None else f", constant {self.constant.shape}")


class Concat(Module):
    def __init__(self, axis: int) -> None:
        super().__init__()
        self.axis = int(axis)

    def forward(self, *xs: Tensor) -> Tensor:
        return cat(list(xs), self.axis)

    def extra_repr(self) -> str:
        return f"axis={self.axis}"


class Reshape(Module):
    """Reshape to ``shape``; 0 copies the input's dimension, -1 is inferred (ONNX's rule)."""

    def __init__(self, shape: Sequence[int]) -> None:
        super().__init__()
        self.shape = tuple(int(v) for v in shape)

    def forward(self, x: Tensor) -> Tensor:
        shape = [x.shape[i] if v == 0 else v for i, v in enumerate(self.shape)]
        return x.reshape(*shape)

    def extra_repr(self) -> str:
        return f"shape={self.shape}"


class Pad(Module):
    """Constant padding; ``pads`` in ONNX's order [begin per axis..., end per axis...]."""

    def __init__(self, pads: Sequence[int], value: float = 0.0) -> None:
        super().__init__()
        self.pads, self.value = tuple(int(p) for p in pads), float(value)

    def forward(self, x: Tensor) -> Tensor:
        nd = x.ndim
        for axis in range(nd):
            before, after = self.pads[axis], self.pads[axis + nd]
            parts = []
            for n in (before, after):
                shape = list(x.shape)
                shape[axis] = n
                parts.append(Tensor(np.full(shape, self.value, dtype=x.dtype)) if n else None)
            if parts[0] is not None or parts[1] is not None:
                x = cat([p for p in (parts[0], x, parts[1]) if p is not None], axis)
        return x

    def extra_repr(self) -> str:
        return f"pads={self.pads}, value={self.value}"


class Clip(Module):
    """min(max(x, low), high), either bound optional; the gradient passes where x is
    strictly inside."""

    def __init__(self, low: float | None, high: float | None) -> None:
        super().__init__()
        self.low, self.high = low, high

    def forward(self, x: Tensor) -> Tensor:
        inside = np.ones(x.shape, dtype=bool)
        if self.low is not None:
            inside &= x.data > self.low
        if self.high is not None:
            inside &= x.data < self.high
        clipped = np.clip(x.data, self.low, self.high) * ~inside
        return x * Tensor(inside.astype(x.dtype)) + Tensor(clipped.astype(x.dtype))

    def extra_repr(self) -> str:
        return f"min={self.low}, max={self.high}"


class Gemm(Module):
    """ONNX's general matrix product alpha A' B' + beta C with A the input and B, C
    trainable parameters (the cases ``Linear`` does not cover)."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray | None, alpha: float = 1.0,
                 beta: float = 1.0, trans_a: bool = False, trans_b: bool = False) -> None:
        super().__init__()
        self.weight = Parameter(_const(weight))
        self.register_parameter("bias", None if bias is None else Parameter(_const(bias)))
        self.alpha, self.beta, self.trans_a, self.trans_b = alpha, beta, trans_a, trans_b

    def forward(self, x: Tensor) -> Tensor:
        a = x.transpose(1, 0) if self.trans_a else x
        b = self.weight.transpose(1, 0) if self.trans_b else self.weight
        y = a @ b
        if self.alpha != 1:
            y = y * self.alpha
        if self.bias is not None:
            y = y + (self.bias * self.beta if self.beta != 1 else self.bias)
        return y

    def extra_repr(self) -> str:
        return (f"weight {self.weight.shape}, alpha={self.alpha}, beta={self.beta}, "
                f"trans_a={self.trans_a}, trans_b={self.trans_b}")


class Unary(Module):
    """An elementwise ONNX operator without parameters: Neg, Exp, Log, Abs, Sqrt, or
    Pow with a constant exponent."""

    _OPS = {"Neg": lambda x, p: -x, "Exp": lambda x, p: x.exp(), "Log": lambda x, p: x.log(),
            "Abs": lambda x, p: x.abs(), "Sqrt": lambda x, p: x.sqrt(),
            "Pow": lambda x, p: x ** p}

    def __init__(self, op: str, exponent: float | None = None) -> None:
        super().__init__()
        self.op, self.exponent = op, exponent

    def forward(self, x: Tensor) -> Tensor:
        return self._OPS[self.op](x, self.exponent)

    def extra_repr(self) -> str:
        return self.op + ("" if self.exponent is None else f", exponent={self.exponent}")


class Unsqueeze(Module):
    """Insert axes of size 1 at ``axes`` (of the output), as ONNX's Unsqueeze."""

    def __init__(self, axes: Sequence[int]) -> None:
        super().__init__()
        self.axes = tuple(int(a) for a in axes)

    def forward(self, x: Tensor) -> Tensor:
        shape, nd = list(x.shape), x.ndim + len(self.axes)
        for a in sorted(a % nd for a in self.axes):
            shape.insert(a, 1)
        return x.reshape(*shape)

    def extra_repr(self) -> str:
        return f"axes={self.axes}"


class Transpose(Module):
    def __init__(self, perm: Sequence[int]) -> None:
        super().__init__()
        self.perm = tuple(int(p) for p in perm)

    def forward(self, x: Tensor) -> Tensor:
        return x.permute(*self.perm)

    def extra_repr(self) -> str:
        return f"perm={self.perm}"


class Reduce(Module):
    """ReduceSum / ReduceMean / ReduceMax over ``axes``."""

    def __init__(self, op: str, axes: Sequence[int], keepdims: bool = True) -> None:
        super().__init__()
        self.op, self.axes, self.keepdims = op, tuple(int(a) for a in axes), bool(keepdims)

    def forward(self, x: Tensor) -> Tensor:
        axes = tuple(a % x.ndim for a in self.axes)
        fn = {"ReduceSum": x.sum, "ReduceMean": x.mean, "ReduceMax": x.max}[self.op]
        return fn(axis=axes, keepdims=self.keepdims)

    def extra_repr(self) -> str:
        return f"{self.op}, axes={self.axes}, keepdims={self.keepdims}"


# ------------------------------------------------------------- export converters
@converts(Elementwise)
def _elementwise(g, m, names, tensors, out):
    if m.constant is None:
        return g.op(m.op, names, name=g.scope)
    c = g.const(m.constant, f"{g.scope}.constant")
    return g.op(m.op, [c, names[0]] if m.constant_first else [names[0], c], name=g.scope)


@converts(Concat)
def _concat(g, m, names, tensors, out):
    return g.op("Concat", names, name=g.scope, axis=m.axis % out.ndim)


@converts(Reshape)
def _reshape(g, m, names, tensors, out):
    return g.op("Reshape", [names[0], g.i64(m.shape)], name=g.scope)


@converts(Pad)
def _pad(g, m, names, tensors, out):
    return g.op("Pad", [names[0], g.i64(m.pads), g.f32(m.value)], name=g.scope, mode="constant")


@converts(Clip)
def _clip(g, m, names, tensors, out):
    low = "" if m.low is None else g.f32(m.low)
    high = "" if m.high is None else g.f32(m.high)
    return g.op("Clip", [names[0], low, high], name=g.scope)


@converts(Gemm)
def _gemm(g, m, names, tensors, out):
    inputs = [names[0], g.const(m.weight.data, f"{g.scope}.weight")]
    if m.bias is not None:
        inputs.append(g.const(m.bias.data, f"{g.scope}.bias"))
    return g.op("Gemm", inputs, name=g.scope, alpha=float(m.alpha), beta=float(m.beta),
                transA=int(m.trans_a), transB=int(m.trans_b))


@converts(Unary)
def _unary(g, m, names, tensors, out):
    if m.op == "Pow":
        return g.op("Pow", [names[0], g.f32(m.exponent)], name=g.scope)
    return g.op(m.op, names, name=g.scope)


@converts(Unsqueeze)
def _unsqueeze(g, m, names, tensors, out):
    return g.op("Unsqueeze", [names[0], g.i64(list(m.axes))], name=g.scope)


@converts(Transpose)
def _transpose(g, m, names, tensors, out):
    return g.op("Transpose", names, name=g.scope, perm=list(m.perm))


@converts(Reduce)
def _reduce(g, m, names, tensors, out):
    g.scope = g.scope or m.op
    return g.reduce(m.op, names[0], list(m.axes), m.keepdims)
