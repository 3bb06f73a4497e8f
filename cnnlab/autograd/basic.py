"""Tensor arithmetic: elementwise, matmul, reductions and shape ops.

Each ``Function`` writes its backward beside its forward.  Binary ops
broadcast like NumPy, so their backward sums the upstream gradient over the
broadcast axes (:func:`unbroadcast`) to give each input its own shape.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from cnnlab.autograd.tensor import Function


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` down to ``shape``, undoing NumPy broadcasting."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)


# ---------------------------------------------------------------- elementwise
class Add(Function):
    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        self.a_shape, self.b_shape = a.shape, b.shape
        return a + b

    def backward(self, g: np.ndarray):
        return unbroadcast(g, self.a_shape), unbroadcast(g, self.b_shape)


class Sub(Function):
    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        self.a_shape, self.b_shape = a.shape, b.shape
        return a - b

    def backward(self, g: np.ndarray):
        return unbroadcast(g, self.a_shape), unbroadcast(-g, self.b_shape)


class Mul(Function):
    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        self.a, self.b = a, b
        return a * b

    def backward(self, g: np.ndarray):
        da = unbroadcast(g * self.b, self.a.shape) if self.needs_input_grad[0] else None
        db = unbroadcast(g * self.a, self.b.shape) if self.needs_input_grad[1] else None
        return da, db


class Div(Function):
    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        self.a, self.b = a, b
        return a / b

    def backward(self, g: np.ndarray):
        da = unbroadcast(g / self.b, self.a.shape) if self.needs_input_grad[0] else None
        db = (
            unbroadcast(-g * self.a / (self.b * self.b), self.b.shape)
            if self.needs_input_grad[1]
            else None
        )
        return da, db


class Neg(Function):
    def forward(self, a: np.ndarray) -> np.ndarray:
        return -a

    def backward(self, g: np.ndarray):
        return (-g,)


class Pow(Function):
    """``a ** p`` for a constant Python-number exponent ``p``."""

    def forward(self, a: np.ndarray, exponent: float) -> np.ndarray:
        if not np.issubdtype(a.dtype, np.floating):   # int ** 0.5 must not truncate
            a = a.astype(np.result_type(a.dtype, np.float32))
        self.a, self.p = a, exponent
        return a ** np.asarray(exponent, dtype=a.dtype)

    def backward(self, g: np.ndarray):
        if self.p == 0:          # d(x**0)/dx = 0 everywhere, also at x = 0
            return (np.zeros_like(g),)
        p = np.asarray(self.p, dtype=self.a.dtype)
        return (g * p * self.a ** (p - 1),)


class Exp(Function):
    def forward(self, a: np.ndarray) -> np.ndarray:
        self.out = np.exp(a)
        return self.out

    def backward(self, g: np.ndarray):
        return (g * self.out,)


class Log(Function):
    def forward(self, a: np.ndarray) -> np.ndarray:
        self.a = a
        return np.log(a)

    def backward(self, g: np.ndarray):
        return (g / self.a,)


class Abs(Function):
    """|a|; the gradient at 0 is 0, as in torch (sign(0) = 0)."""

    def forward(self, a: np.ndarray) -> np.ndarray:
        self.a = a
        return np.abs(a)

    def backward(self, g: np.ndarray):
        return (g * np.sign(self.a),)


class Cast(Function):
    def forward(self, a: np.ndarray, dtype: np.dtype) -> np.ndarray:
        self.src = a.dtype
        return a.astype(dtype, copy=a.dtype != dtype)

    def backward(self, g: np.ndarray):
        return (g.astype(self.src, copy=False),)


class Clone(Function):
    def forward(self, a: np.ndarray) -> np.ndarray:
        return a.copy()

    def backward(self, g: np.ndarray):
        return (g,)


# --------------------------------------------------------------------- matmul
class MatMul(Function):
    """``a @ b`` with NumPy's rules: 1-D operands are promoted and the
    promoted axis removed again, leading (batch) axes broadcast."""

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError("matmul: both operands must have at least one dimension")
        self.a, self.b = a, b
        return a @ b

    def backward(self, g: np.ndarray):
        a, b = self.a, self.b
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = g
        if b.ndim == 1:      # the promoted trailing axis of b was removed from the output
            g2 = g2[..., None]
        if a.ndim == 1:      # the promoted leading axis of a was removed from the output
            g2 = g2[..., None, :]
        da = db = None
        if self.needs_input_grad[0]:
            da = unbroadcast(g2 @ np.swapaxes(b2, -1, -2), a2.shape).reshape(a.shape)
        if self.needs_input_grad[1]:
            db = unbroadcast(np.swapaxes(a2, -1, -2) @ g2, b2.shape).reshape(b.shape)
        return da, db


# ----------------------------------------------------------------- reductions
def _expand_reduced(g: np.ndarray, shape: tuple[int, ...], axis, keepdims: bool) -> np.ndarray:
    """Reshape a reduced gradient so it broadcasts back against ``shape``."""
    if axis is None:
        return g.reshape((1,) * len(shape))
    if not keepdims:
        g = np.expand_dims(g, axis)
    return g


class Sum(Function):
    def forward(self, a: np.ndarray, axis, keepdims: bool) -> np.ndarray:
        self.shape, self.axis, self.keepdims = a.shape, axis, keepdims
        return np.asarray(a.sum(axis=axis, keepdims=keepdims))

    def backward(self, g: np.ndarray):
        g = _expand_reduced(g, self.shape, self.axis, self.keepdims)
        return (np.broadcast_to(g, self.shape).copy(),)


class Mean(Function):
    def forward(self, a: np.ndarray, axis, keepdims: bool) -> np.ndarray:
        self.shape, self.axis, self.keepdims = a.shape, axis, keepdims
        axes = range(a.ndim) if axis is None else axis
        self.count = int(np.prod([a.shape[i] for i in axes], dtype=np.int64))
        return np.asarray(a.mean(axis=axis, keepdims=keepdims))

    def backward(self, g: np.ndarray):
        g = _expand_reduced(g, self.shape, self.axis, self.keepdims) / self.count
        return (np.broadcast_to(g, self.shape).astype(g.dtype, copy=True),)


class Max(Function):
    """Maximum over axes.  On ties the gradient is split evenly among the
    maxima (the rule torch uses for ``amax``/``max()`` without ``dim``)."""

    def forward(self, a: np.ndarray, axis, keepdims: bool) -> np.ndarray:
        self.a, self.axis, self.keepdims = a, axis, keepdims
        self.out = a.max(axis=axis, keepdims=True)
        return np.asarray(self.out if keepdims else self.out.reshape(
            a.max(axis=axis, keepdims=False).shape))

    def backward(self, g: np.ndarray):
        mask = self.a == self.out
        count = mask.sum(axis=self.axis, keepdims=True)
        g = _expand_reduced(g, self.a.shape, self.axis, self.keepdims)
        return (mask * (g / count).astype(self.a.dtype),)


# ----------------------------------------------------------------- shape ops
class Reshape(Function):
    def forward(self, a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        self.shape = a.shape
        try:
            return a.reshape(shape)
        except ValueError as e:
            raise ValueError(f"cannot reshape a tensor of shape {a.shape} into {shape}") from e

    def backward(self, g: np.ndarray):
        return (g.reshape(self.shape),)


class Transpose(Function):
    def forward(self, a: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
        self.inverse = tuple(np.argsort(axes))
        return a.transpose(axes)

    def backward(self, g: np.ndarray):
        return (g.transpose(self.inverse),)


class Index(Function):
    """Basic and advanced indexing; the backward scatters with ``np.add.at``
    so repeated indices accumulate."""

    def forward(self, a: np.ndarray, index: Any) -> np.ndarray:
        self.shape, self.dtype, self.index = a.shape, a.dtype, index
        return np.asarray(a[index])

    def backward(self, g: np.ndarray):
        out = np.zeros(self.shape, dtype=self.dtype)
        np.add.at(out, self.index, g)
        return (out,)


class Concatenate(Function):
    """``concatenate(tensors, axis)``; backward splits the gradient."""

    def forward(self, *arrays: np.ndarray, axis: int) -> np.ndarray:
        self.axis = axis
        self.splits = np.cumsum([a.shape[axis] for a in arrays])[:-1]
        return np.concatenate(arrays, axis=axis)

    def backward(self, g: np.ndarray):
        return tuple(np.split(g, self.splits, axis=self.axis))


class Stack(Function):
    def forward(self, *arrays: np.ndarray, axis: int) -> np.ndarray:
        self.axis = axis
        return np.stack(arrays, axis=axis)

    def backward(self, g: np.ndarray):
        return tuple(np.moveaxis(g, self.axis, 0))


class Expand(Function):
    """Broadcast to ``shape`` (``Tensor.expand``); the backward sums back."""

    def forward(self, a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        self.shape = a.shape
        try:
            return np.broadcast_to(a, shape).copy()
        except ValueError as e:
            raise RuntimeError(f"expand: the shape {a.shape} cannot be expanded to {shape}") from e

    def backward(self, g: np.ndarray):
        return (unbroadcast(g, self.shape),)


# ------------------------------------------------------------ select and clamp
class TakeAlong(Function):
    """``np.take_along_axis(a, indices, axis)``: the values ``max(dim)`` and
    ``min(dim)`` pick; the whole gradient goes to the picked entry (torch's rule
    for the indexed reductions, unlike ``amax``, which splits ties)."""

    def forward(self, a: np.ndarray, indices: np.ndarray, axis: int) -> np.ndarray:
        self.shape, self.indices, self.axis = a.shape, indices, axis
        return np.take_along_axis(a, indices, axis=axis)

    def backward(self, g: np.ndarray):
        out = np.zeros(self.shape, dtype=g.dtype)
        np.put_along_axis(out, self.indices, g, axis=self.axis)
        return (out,)


class Where(Function):
    """``where(condition, a, b)`` with broadcasting; each branch gets the
    gradient where it was chosen."""

    def forward(self, a: np.ndarray, b: np.ndarray, condition: np.ndarray) -> np.ndarray:
        self.condition, self.a_shape, self.b_shape = condition, a.shape, b.shape
        return np.where(condition, a, b)

    def backward(self, g: np.ndarray):
        zero = np.zeros((), dtype=g.dtype)
        return (unbroadcast(np.where(self.condition, g, zero), self.a_shape),
                unbroadcast(np.where(self.condition, zero, g), self.b_shape))


class Clamp(Function):
    """``clamp(a, min, max)``; the gradient passes where ``min <= a <= max``
    (both bounds included, as in torch)."""

    def forward(self, a: np.ndarray, low: float | None, high: float | None) -> np.ndarray:
        self.pass_mask = np.ones(a.shape, dtype=bool)
        out = a
        if low is not None:
            self.pass_mask &= a >= low
            out = np.maximum(out, np.asarray(low, dtype=a.dtype))
        if high is not None:
            self.pass_mask &= a <= high
            out = np.minimum(out, np.asarray(high, dtype=a.dtype))
        return np.array(out, copy=True)

    def backward(self, g: np.ndarray):
        return (g * self.pass_mask,)
