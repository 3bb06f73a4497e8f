"""The autograd ``Tensor``, the ``Function`` node and the reverse-mode engine.

A ``Tensor`` wraps a NumPy array (``.data``).  Every differentiable operation is
a :class:`Function` subclass with an explicit ``forward`` (ndarrays in, ndarray
out) and ``backward`` (upstream gradient in, one gradient per input out).  When
any input requires a gradient, :meth:`Function.apply` records the node on the
output; :meth:`Tensor.backward` then walks the recorded graph in reverse
topological order and accumulates gradients with ``+`` so a tensor used twice
receives the sum of both contributions.

Tensor's methods come in families, each in its own file: shapes
(:mod:`cnnlab.autograd.tensor_shape`), reductions (``tensor_reduce``), and
conversions, comparisons, devices and in-place updates (``tensor_convert``).
The arithmetic ``Function``s live in :mod:`cnnlab.autograd.basic`; the neural
network ones, thin adapters over :mod:`cnnlab.kernels`, in one file per family
(:mod:`cnnlab.autograd.conv_ops`, ``pool_ops``, ``activation_ops``, ``norm_ops``,
``loss_ops``).
"""
from __future__ import annotations

import contextlib
import sys
import threading
from typing import Any, Iterator, Sequence

import numpy as np

from cnnlab.autograd.device import check_device

DEFAULT_DTYPE = np.float32

_grad_state = threading.local()


def is_grad_enabled() -> bool:
    """True unless inside a :func:`no_grad` block."""
    return getattr(_grad_state, "enabled", True)


@contextlib.contextmanager
def no_grad() -> Iterator[None]:
    """Context manager that disables graph recording (like ``torch.no_grad``)."""
    previous = is_grad_enabled()
    _grad_state.enabled = False
    try:
        yield
    finally:
        _grad_state.enabled = previous


@contextlib.contextmanager
def enable_grad() -> Iterator[None]:
    """Context manager that re-enables graph recording inside ``no_grad``."""
    previous = is_grad_enabled()
    _grad_state.enabled = True
    try:
        yield
    finally:
        _grad_state.enabled = previous


def inference_mode(mode: bool = True) -> contextlib.AbstractContextManager[None]:
    """``torch.inference_mode``: here the same as :func:`no_grad` (``mode=False``
    changes nothing)."""
    return no_grad() if mode else contextlib.nullcontext()


class set_grad_enabled:  # noqa: N801  (PyTorch's name)
    """``torch.set_grad_enabled(mode)``: switches graph recording on or off at
    once, and as a context manager (``with set_grad_enabled(train):``) puts the
    previous setting back on exit."""

    def __init__(self, mode: bool) -> None:
        self.previous = is_grad_enabled()
        _grad_state.enabled = bool(mode)

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        _grad_state.enabled = self.previous


def _as_array(data: Any, dtype: Any = None) -> np.ndarray:
    """Convert user data to an ndarray.

    Python scalars and lists of floats become the default dtype (float32),
    integer data stays integer, and existing float arrays keep their dtype
    (so float64 flows through untouched).
    """
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        return np.asarray(data, dtype=dtype)
    if isinstance(data, np.ndarray):
        return data
    if isinstance(data, np.generic):
        return np.asarray(data)
    arr = np.asarray(data)
    if arr.dtype == np.float64 or arr.dtype == np.float16:
        # Python floats: follow torch and use the default dtype.
        arr = arr.astype(DEFAULT_DTYPE)
    return arr


class Function:
    """One node of the graph: an operation with an explicit backward.

    Subclasses implement ``forward(*arrays, **kwargs) -> ndarray`` and
    ``backward(grad_out) -> tuple`` returning one gradient (or ``None``) per
    tensor input, each with that input's shape.  State needed by backward is
    stored on ``self`` during ``forward``.
    """

    def __init__(self) -> None:
        self.inputs: tuple[Tensor, ...] = ()
        self.needs_input_grad: tuple[bool, ...] = ()
        self.released = False

    def release(self) -> None:
        """Drop everything saved for backward (called after backward has run)."""
        keep = {"inputs": (), "needs_input_grad": self.needs_input_grad, "released": True}
        self.__dict__.clear()
        self.__dict__.update(keep)

    def forward(self, *args: np.ndarray, **kwargs: Any) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad_out: np.ndarray) -> tuple[np.ndarray | None, ...]:
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs: Tensor, **kwargs: Any) -> Tensor:
        """Run ``forward`` on the inputs' arrays and record the node if needed.

        An optional input (a conv without bias, say) may be passed as ``None``;
        ``forward`` then receives ``None`` and its gradient is never asked for.
        """
        fn = cls()
        out_data = fn.forward(*(None if t is None else t.data for t in inputs), **kwargs)
        needs = tuple(t is not None and t.requires_grad for t in inputs)
        requires = is_grad_enabled() and any(needs)
        out = Tensor(out_data, requires_grad=requires)
        if requires:
            fn.inputs = inputs
            fn.needs_input_grad = needs
            out._ctx = fn
        return out

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


class Size(tuple):
    """The shape of a tensor, ``x.size()`` (a tuple, like ``torch.Size``)."""

    def numel(self) -> int:
        return int(np.prod(self, dtype=np.int64))

    def __repr__(self) -> str:
        return f"Size({list(self)})"


# The method families of Tensor, each in its own file; they use the op modules,
# which import Function from here, so they come after it.
from cnnlab.autograd.tensor_convert import ConversionMethods  # noqa: E402
from cnnlab.autograd.tensor_reduce import ReductionMethods  # noqa: E402
from cnnlab.autograd.tensor_shape import ShapeMethods, _dim_index  # noqa: E402


class Tensor(ShapeMethods, ReductionMethods, ConversionMethods):
    """An n-dimensional array with reverse-mode automatic differentiation.

    Parameters
    ----------
    data : array_like
        The values.  A float ndarray keeps its dtype; Python floats become
        float32 (the default dtype), integers stay integers.
    requires_grad : bool
        Whether gradients with respect to this tensor should be computed.
    dtype : numpy dtype, optional
        Force a dtype.
    """

    # ``ndarray + Tensor`` defers to Tensor.__radd__ (so the graph is recorded);
    # ``np.asarray(tensor)`` gives the data.
    __array_ufunc__ = None

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None) -> None:
        self.data: np.ndarray = _as_array(data, dtype)
        if requires_grad and not np.issubdtype(self.data.dtype, np.floating):
            raise TypeError(
                f"only floating point tensors can require gradients, got dtype {self.data.dtype}"
            )
        self.requires_grad: bool = bool(requires_grad)
        self.grad: np.ndarray | None = None
        self._ctx: Function | None = None

    # ------------------------------------------------------------------ info
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    @property
    def grad_fn(self) -> Function | None:
        return self._ctx

    def dim(self) -> int:
        return self.data.ndim

    def ndimension(self) -> int:
        return self.data.ndim

    def size(self, dim: int | None = None) -> Size | int:
        """PyTorch's ``size()``: the shape as a :class:`Size` (a tuple), or
        ``size(d)``, the length of dimension ``d``.  (Until this release ``size``
        was NumPy's element-count property; that is :meth:`numel`.)"""
        if dim is None:
            return Size(self.data.shape)
        return self.data.shape[_dim_index(dim, self.data.ndim, "size")]

    def numel(self) -> int:
        return int(self.data.size)

    nelement = numel

    def __len__(self) -> int:
        return len(self.data)

    def __bool__(self) -> bool:
        """Truth of a one-element tensor; ambiguous for more, as in NumPy and torch."""
        return bool(self.data)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        if dtype is not None and np.dtype(dtype) != self.data.dtype:
            return self.data.astype(dtype)
        return self.data.copy() if copy else self.data

    def detach(self) -> Tensor:
        """A new tensor sharing the data, cut from the graph."""
        return Tensor(self.data)

    def clone(self) -> Tensor:
        return _basic.Clone.apply(self)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if requires_grad and not np.issubdtype(self.data.dtype, np.floating):
            raise TypeError(f"only floating point tensors can require gradients, got {self.dtype}")
        self.requires_grad = requires_grad
        return self

    def zero_grad(self) -> None:
        self.grad = None

    def __repr__(self) -> str:
        body = np.array2string(self.data, precision=4, separator=", ", threshold=50)
        extra = ", requires_grad=True" if self.requires_grad else ""
        if self._ctx is not None:
            extra = f", grad_fn={type(self._ctx).__name__}"
        return f"Tensor({body}, dtype={self.dtype}{extra})"

    # -------------------------------------------------------------- backward
    def backward(self, grad: Any = None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into ``leaf.grad`` for every leaf that
        requires a gradient.

        ``grad`` defaults to 1 for a single-element tensor, as in PyTorch;
        otherwise it must be given and have ``self.shape``.  Unless
        ``retain_graph`` is set, the saved state of every node is released as
        soon as its backward has run, so activations do not outlive the step.
        """
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad")
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"grad can be implicitly created only for scalar outputs, got shape {self.shape}"
                )
            grad_arr = np.ones_like(self.data)
        else:
            grad_arr = _as_array(grad, self.dtype)
            if grad_arr.shape != self.shape:
                raise ValueError(f"grad shape must match tensor shape, {grad_arr.shape} != {self.shape}")

        order = _topological_order(self)
        grads: dict[int, np.ndarray] = {id(self): grad_arr}
        for node in order:
            g = grads.pop(id(node), None)
            fn = node._ctx
            if fn is None:
                if g is not None and node.requires_grad:
                    # a fresh array: ops may hand the same gradient array to several
                    # inputs, and the caller's ``grad`` must not become a leaf's .grad;
                    # an array nothing else refers to is taken as it is (as PyTorch does)
                    if node.grad is not None:
                        node.grad = node.grad + g
                    else:
                        node.grad = g if _sole_owner(g) else g.copy()
                continue
            if fn.released:
                raise RuntimeError(
                    f"trying to backward through {fn} a second time; its saved arrays were "
                    "released after the first backward (pass retain_graph=True)"
                )
            if g is None:
                continue
            in_grads = fn.backward(g)
            if len(in_grads) != len(fn.inputs):
                raise RuntimeError(f"{fn} returned {len(in_grads)} grads for {len(fn.inputs)} inputs")
            for t, tg, needed in zip(fn.inputs, in_grads, fn.needs_input_grad):
                if not needed or tg is None:
                    continue
                if tg.shape != t.shape:
                    raise RuntimeError(
                        f"{fn}: grad shape must match input shape, {tg.shape} != {t.shape}"
                    )
                prev = grads.get(id(t))
                grads[id(t)] = tg if prev is None else prev + tg
            in_grads = tg = prev = None      # the gradients now live in ``grads`` alone
            if not retain_graph:
                fn.release()

    # ------------------------------------------------------------ arithmetic
    def __add__(self, other: Any) -> Tensor:
        return _basic.Add.apply(self, _lift(other, self))

    def __radd__(self, other: Any) -> Tensor:
        return _basic.Add.apply(_lift(other, self), self)

    def __sub__(self, other: Any) -> Tensor:
        return _basic.Sub.apply(self, _lift(other, self))

    def __rsub__(self, other: Any) -> Tensor:
        return _basic.Sub.apply(_lift(other, self), self)

    def __mul__(self, other: Any) -> Tensor:
        return _basic.Mul.apply(self, _lift(other, self))

    def __rmul__(self, other: Any) -> Tensor:
        return _basic.Mul.apply(_lift(other, self), self)

    def __truediv__(self, other: Any) -> Tensor:
        return _basic.Div.apply(self, _lift(other, self))

    def __rtruediv__(self, other: Any) -> Tensor:
        return _basic.Div.apply(_lift(other, self), self)

    def __matmul__(self, other: Any) -> Tensor:
        return _basic.MatMul.apply(self, _lift(other, self))

    def __rmatmul__(self, other: Any) -> Tensor:
        return _basic.MatMul.apply(_lift(other, self), self)

    def __pow__(self, exponent: Any) -> Tensor:
        if isinstance(exponent, Tensor):
            raise TypeError("Tensor ** Tensor is not supported; use a Python number exponent")
        return _basic.Pow.apply(self, exponent=float(exponent))

    def __neg__(self) -> Tensor:
        return _basic.Neg.apply(self)

    def __pos__(self) -> Tensor:
        return self

    # comparisons give plain boolean tensors without gradient
    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        return Tensor(self.data == _raw(other))

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        return Tensor(self.data != _raw(other))

    def __lt__(self, other: Any) -> Tensor:
        return Tensor(self.data < _raw(other))

    def __le__(self, other: Any) -> Tensor:
        return Tensor(self.data <= _raw(other))

    def __gt__(self, other: Any) -> Tensor:
        return Tensor(self.data > _raw(other))

    def __ge__(self, other: Any) -> Tensor:
        return Tensor(self.data >= _raw(other))

    __hash__ = object.__hash__

    # --------------------------------------------------------- elementwise
    def exp(self) -> Tensor:
        return _basic.Exp.apply(self)

    def log(self) -> Tensor:
        return _basic.Log.apply(self)

    def sqrt(self) -> Tensor:
        return self ** 0.5

    def abs(self) -> Tensor:
        return _basic.Abs.apply(self)

    def clamp(self, min: float | None = None, max: float | None = None) -> Tensor:  # noqa: A002
        """Limit to [min, max]; the gradient passes where min <= x <= max (torch's rule)."""
        if min is None and max is None:
            raise RuntimeError("clamp: at least one of 'min' or 'max' must not be None")
        return _basic.Clamp.apply(self, low=min, high=max)

    def relu(self) -> Tensor:
        return _act_ops.ReLU.apply(self)

    def sigmoid(self) -> Tensor:
        return _act_ops.Sigmoid.apply(self)

    def tanh(self) -> Tensor:
        return _act_ops.Tanh.apply(self)

    def softmax(self, dim: int) -> Tensor:
        """``x.softmax(dim)``, as ``F.softmax(x, dim)``."""
        return _act_ops.Softmax.apply(self, axis=_dim_index(dim, self.ndim, "softmax"))

    def log_softmax(self, dim: int) -> Tensor:
        """``x.log_softmax(dim)``, as ``F.log_softmax(x, dim)``."""
        return _act_ops.LogSoftmax.apply(self, axis=_dim_index(dim, self.ndim, "log_softmax"))

def _raw(x: Any) -> Any:
    return x.data if isinstance(x, Tensor) else x


def _lift(x: Any, like: Tensor) -> Tensor:
    """Turn a Python number or array into a constant Tensor of ``like``'s float dtype."""
    if isinstance(x, Tensor):
        return x
    arr = np.asarray(x)
    if np.issubdtype(like.dtype, np.floating) and not (
        np.issubdtype(arr.dtype, np.floating) and arr.ndim > 0
    ):
        arr = arr.astype(like.dtype)
    return Tensor(arr)


def _local_refcount() -> int:
    a = np.empty(1)
    return sys.getrefcount(a)


# sys.getrefcount of an array held by one local variable only, as _sole_owner sees it
# (measured rather than assumed: interpreters count borrowed references differently)
_SOLE_REFCOUNT = _local_refcount()


def _sole_owner(g: np.ndarray) -> bool:
    """Whether the gradient array ``g`` (held by the caller's one local variable) owns its
    memory and nothing else refers to it: no other gradient, no view of it, no caller.
    Such an array can become a leaf's ``.grad`` without a copy."""
    return g.base is None and g.flags.writeable and sys.getrefcount(g) <= _SOLE_REFCOUNT + 1


def _topological_order(root: Tensor) -> list[Tensor]:
    """Nodes reachable from ``root``, each before its inputs (iterative DFS)."""
    order: list[Tensor] = []
    seen: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        if node._ctx is not None:
            for t in node._ctx.inputs:
                if t is not None and t.requires_grad and id(t) not in seen:
                    stack.append((t, False))
    order.reverse()
    return order


def tensor(data: Any, requires_grad: bool = False, dtype: Any = None, *, device: Any = None,
           pin_memory: bool = False) -> Tensor:
    """Build a Tensor (``torch.tensor`` style); ``device`` must be the CPU."""
    if device is not None:
        check_device(device)
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


# The op modules import Function and Tensor from here, so they come last.
from cnnlab.autograd import activation_ops as _act_ops  # noqa: E402
from cnnlab.autograd import basic as _basic  # noqa: E402


def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Concatenate along ``dim`` (``torch.cat``); the backward splits the gradient."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat() needs at least one tensor")
    return _basic.Concatenate.apply(*tensors, axis=dim % tensors[0].ndim)


def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Stack along a new axis ``dim`` (``torch.stack``)."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack() needs at least one tensor")
    return _basic.Stack.apply(*tensors, axis=dim % (tensors[0].ndim + 1))
