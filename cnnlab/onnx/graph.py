"""The ONNX graph under construction: nodes, initializers, unique names, and the
few operators whose form changed between opsets (ReduceX, Squeeze/Unsqueeze axes).

Converters (``export_*.py``) only call :class:`GraphBuilder`; nothing else in
the exporter writes protobufs.
"""
from __future__ import annotations

import re
from typing import Any, Sequence

import numpy as np

MIN_OPSET, MAX_OPSET = 13, 21


class ExportError(ValueError):
    """A model (or one of its layers) cannot be written as ONNX; the message names
    the layer and the reason."""


def onnx_module():
    """The ``onnx`` package, or an error saying which extra installs it."""
    try:
        import onnx
    except ImportError as e:   # pragma: no cover - the test extra installs it
        raise ImportError("cnnlab.onnx needs the onnx package: pip install 'cnnlab[onnx]'") from e
    return onnx


class GraphBuilder:
    """Collects nodes and initializers for one graph.

    ``op(op_type, inputs, name=..., **attrs)`` adds a node and returns its output's
    name; ``const(array, name)`` adds an initializer.  Names are made unique by
    suffixing ``_1``, ``_2``...  ``scope`` is the module path the current converter
    works for; node names are ``scope`` (the first node) or ``scope/OpType``.
    """

    def __init__(self, opset: int) -> None:
        self.onnx = onnx_module()
        self.opset = int(opset)
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._names: set[str] = set()
        self.scope = ""

    def unique(self, base: str) -> str:
        base = re.sub(r"[^\w./:-]", "_", base) or "v"
        name, i = base, 0
        while name in self._names:
            i += 1
            name = f"{base}_{i}"
        self._names.add(name)
        return name

    def const(self, array: Any, name: str | None = None) -> str:
        """An initializer holding ``array`` (float64 is stored as float32 only when
        ``array`` came from Python numbers; model weights are float32 already)."""
        a = np.asarray(array)
        key = self.unique(name or f"{self.scope or 'const'}.const")
        self.initializers.append(self.onnx.numpy_helper.from_array(np.ascontiguousarray(a), key))
        return key

    def f32(self, values: Any, name: str | None = None) -> str:
        return self.const(np.asarray(values, dtype=np.float32), name)

    def i64(self, values: Any, name: str | None = None) -> str:
        return self.const(np.asarray(values, dtype=np.int64), name)

    def op(self, op_type: str, inputs: Sequence[str], name: str | None = None, **attrs: Any) -> str:
        out = self.unique(f"{name or self.scope or op_type}:{op_type}" if (name or self.scope)
                          else op_type)
        node_name = self.unique(name or (f"{self.scope}/{op_type}" if self.scope else op_type))
        attrs = {k: v for k, v in attrs.items() if v is not None}
        self.nodes.append(self.onnx.helper.make_node(op_type, list(inputs), [out], name=node_name,
                                                     **attrs))
        return out

    # ---------------------------------------------- operators that changed form
    def reduce(self, op_type: str, x: str, axes: Sequence[int], keepdims: bool = True) -> str:
        """ReduceSum/ReduceMean/ReduceMax over ``axes``: axes are an input from opset 18
        (ReduceSum from 13), an attribute before."""
        if op_type == "ReduceSum" or self.opset >= 18:
            return self.op(op_type, [x, self.i64(list(axes))], keepdims=int(keepdims))
        return self.op(op_type, [x], axes=list(axes), keepdims=int(keepdims))

    def unsqueeze(self, x: str, axes: Sequence[int]) -> str:
        return self.op("Unsqueeze", [x, self.i64(list(axes))])

    def reshape(self, x: str, shape: Sequence[int]) -> str:
        """Reshape to ``shape``; 0 copies that dimension of the input (the batch)."""
        return self.op("Reshape", [x, self.i64(list(shape))])

    def model(self, inputs: list[Any], outputs: list[Any], graph_name: str, doc: str = "") -> Any:
        helper = self.onnx.helper
        graph = helper.make_graph(self.nodes, graph_name, inputs, outputs, self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)],
                                  producer_name="cnnlab", doc_string=doc)
        model.ir_version = min(model.ir_version, 8 if self.opset <= 17 else 9 if self.opset <= 19 else 10)
        return model


def pads_2d(pad: Sequence[int]) -> list[int]:
    """cnnlab's (top, bottom, left, right) as ONNX's [top, left, bottom, right]."""
    top, bottom, left, right = (int(v) for v in pad)
    return [top, left, bottom, right]


def pads_nd(pad: Sequence[int]) -> list[int]:
    """(before, after) per axis -> ONNX's [all befores, all afters]."""
    pad = [int(v) for v in pad]
    return pad[0::2] + pad[1::2]
