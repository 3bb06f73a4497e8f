"""Tracing a cnnlab model into an ONNX graph.

The model runs once, in eval mode, on an example batch that requires a gradient,
so every operation records itself in the autograd graph.  Layers with a converter
(``LAYER_CONVERTERS``) are seen by a forward hook, which records their inputs and
output and hides what runs inside them; the glue between layers (``out +
identity``, ``cat``, ``-x``...) is read from the autograd graph itself and
converted by ``FUNCTION_CONVERTERS``.  Walking back from the output then gives
the graph in topological order.  A layer or operation with no converter stops the
export with an error naming it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from cnnlab.autograd.tensor import Function, Tensor
from cnnlab.nn.capture import forward_hooks
from cnnlab.nn.module import Module
from cnnlab.onnx.graph import ExportError, GraphBuilder

# type -> fn(g, module, input_names, input_tensors, output_tensor) -> output name
LAYER_CONVERTERS: dict[type, Callable[..., str]] = {}
# Function type -> fn(g, fn, input_names, input_tensors, output_tensor) -> output name
FUNCTION_CONVERTERS: dict[type, Callable[..., str]] = {}


def converts(*types: type, table: dict | None = None) -> Callable:
    """Register the decorated function as the converter of ``types`` (layers by
    default, autograd Functions with ``table=FUNCTION_CONVERTERS``)."""
    def register(fn: Callable) -> Callable:
        for t in types:
            (LAYER_CONVERTERS if table is None else table)[t] = fn
        return fn
    return register


def layer_converter(module: Module) -> Callable[..., str] | None:
    for klass in type(module).__mro__:
        if klass in LAYER_CONVERTERS:
            return LAYER_CONVERTERS[klass]
    return None


@dataclass
class LayerCall:
    name: str
    module: Module
    inputs: tuple[Tensor, ...]


def _tensor_args(args: tuple) -> tuple[Tensor, ...] | None:
    return args if all(isinstance(a, Tensor) for a in args) and args else None


def trace(model: Module, example: Tensor) -> tuple[Tensor, dict[int, LayerCall]]:
    """Run ``model(example)`` recording every converted layer's call; returns the
    output and {id(output tensor): LayerCall}."""
    calls: dict[int, LayerCall] = {}
    names = {id(m): n for n, m in model.named_modules()}

    def hook(module: Module, args: tuple, out: Any) -> None:
        inputs = _tensor_args(args)
        if inputs is None or not isinstance(out, Tensor):
            raise ExportError(f"layer {names[id(module)] or type(module).__name__} "
                              f"({type(module).__name__}) must take and return tensors to be "
                              f"exported, got inputs {[type(a).__name__ for a in args]} and "
                              f"output {type(out).__name__}")
        if any(out is t for t in inputs):        # an identity in eval (Dropout): no node
            return
        calls[id(out)] = LayerCall(names[id(module)], module, inputs)

    with forward_hooks((m for m in model.modules() if layer_converter(m) is not None), hook):
        out = model(example)
    if not isinstance(out, Tensor):
        raise ExportError(f"{type(model).__name__} returns {type(out).__name__} in eval mode; "
                          "only a model returning one tensor can be exported")
    return out, calls


def build_graph(g: GraphBuilder, model: Module, example: Tensor, input_name: str,
                out: Tensor, calls: dict[int, LayerCall]) -> str:
    """Emit the nodes that compute ``out`` from ``example``; returns the output's name."""
    params = {id(p): n for n, p in model.named_parameters()}
    params.update({id(b): n for n, b in model.named_buffers()})
    named: dict[int, str] = {id(example): input_name}
    keep: list[Tensor] = [example]        # ids stay valid while the tensors live

    def deps(t: Tensor) -> tuple[Tensor, ...]:
        call = calls.get(id(t))
        if call is not None:
            return call.inputs
        fn = t._ctx
        return tuple(i for i in fn.inputs if i is not None) if fn is not None else ()

    stack: list[tuple[Tensor, bool]] = [(out, False)]
    while stack:
        t, ready = stack.pop()
        if id(t) in named:
            continue
        if not ready:
            stack.append((t, True))
            stack.extend((d, False) for d in deps(t) if id(d) not in named)
            continue
        keep.append(t)
        named[id(t)] = _convert(g, t, calls.get(id(t)), named, params)
    return named[id(out)]


def _convert(g: GraphBuilder, t: Tensor, call: LayerCall | None, named: dict[int, str],
             params: dict[int, str]) -> str:
    if call is not None:
        g.scope = call.name or type(call.module).__name__
        convert = layer_converter(call.module)
        try:
            return convert(g, call.module, [named[id(i)] for i in call.inputs], call.inputs, t)
        except ExportError as e:
            raise ExportError(f"layer {g.scope} ({call.module!r}): {e}") from e
    fn: Function | None = t._ctx
    if fn is None:     # a constant: a parameter used outside its layer, or a computed array
        return g.const(np.asarray(t.data), params.get(id(t), "const"))
    g.scope = type(fn).__name__
    convert = FUNCTION_CONVERTERS.get(type(fn))
    if convert is None:
        raise ExportError(f"operation {type(fn).__name__} (output shape {t.shape}) outside any "
                          f"exportable layer has no ONNX converter; supported operations: "
                          f"{', '.join(sorted(k.__name__ for k in FUNCTION_CONVERTERS))}")
    inputs = tuple(i for i in fn.inputs if i is not None)
    return convert(g, fn, [named[id(i)] for i in inputs], inputs, t)
