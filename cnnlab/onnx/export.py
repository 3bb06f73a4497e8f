"""``cnnlab.onnx.export``: a cnnlab model as an ONNX file with a dynamic batch.

The model is traced in eval mode (see :mod:`cnnlab.onnx.trace`) on one example of
``input_size``; every spatial size is fixed by that example, the batch is free.
The file passes ``onnx.checker.check_model(full_check=True)`` before it is
written, and it is written atomically.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from cnnlab._files import write_bytes_atomic
from cnnlab.autograd.tensor import Tensor
from cnnlab.nn.module import Module
from cnnlab.onnx import export_conv, export_layers, export_pool  # noqa: F401  (converters)
from cnnlab.onnx.graph import MAX_OPSET, MIN_OPSET, ExportError, GraphBuilder
from cnnlab.onnx.trace import build_graph, trace

INPUT_NAME, OUTPUT_NAME = "input", "output"
MAX_PROTO_BYTES = 2**31 - 1      # protobuf's limit for one file without external data


def _check_args(model: Module, input_size: Sequence[int], opset: int) -> tuple[int, ...]:
    if not isinstance(model, Module):
        raise ExportError(f"export needs a cnnlab.nn.Module, got {type(model).__name__}")
    if not isinstance(opset, (int, np.integer)) or not MIN_OPSET <= opset <= MAX_OPSET:
        raise ExportError(f"opset must be an int from {MIN_OPSET} to {MAX_OPSET} (Softmax "
                          f"takes one axis from 13), got {opset!r}")
    try:
        size = tuple(int(v) for v in input_size)
    except (TypeError, ValueError):
        size = ()
    if not size or min(size) < 1:
        raise ExportError(f"input_size must be the sizes of one example, e.g. (3, 32, 32), "
                          f"got {input_size!r}")
    for name, p in model.named_parameters():
        if p.data.dtype != np.float32:
            raise ExportError(f"parameter {name} is {p.data.dtype}; ONNX export writes float32 "
                              "models (call model.float() first)")
    return size


def to_onnx(model: Module, input_size: Sequence[int], opset: int = 17,
            example: np.ndarray | None = None, metadata: Mapping[str, str] | None = None):
    """The ``onnx.ModelProto`` of ``model`` (see :func:`export`)."""
    size = _check_args(model, input_size, opset)
    g = GraphBuilder(opset)
    onnx = g.onnx
    modes = {id(m): m.training for m in model.modules()}
    if example is None:   # non-negative, as layers after a ReLU (stochastic pooling) need
        example = np.random.default_rng(0).random((1, *size), dtype=np.float32)
    x = Tensor(np.asarray(example, dtype=np.float32), requires_grad=True)
    model.eval()
    try:
        out, calls = trace(model, x)
        result = build_graph(g, model, x, INPUT_NAME, out, calls)
    finally:
        for m in model.modules():
            m.training = modes[id(m)]
    producer = next((n for n in g.nodes if n.output[0] == result), None)
    if producer is None:           # the output is the input or a constant
        g.nodes.append(onnx.helper.make_node("Identity", [result], [OUTPUT_NAME], name="output"))
    else:
        producer.output[0] = OUTPUT_NAME
    f32 = onnx.TensorProto.FLOAT
    inputs = [onnx.helper.make_tensor_value_info(INPUT_NAME, f32, ["batch", *size])]
    outputs = [onnx.helper.make_tensor_value_info(OUTPUT_NAME, f32, ["batch", *out.shape[1:]])]
    proto = g.model(inputs, outputs, type(model).__name__,
                    doc=f"{type(model).__name__} exported by cnnlab for input (N, "
                        f"{', '.join(map(str, size))})")
    onnx.helper.set_model_props(proto, {"cnnlab.model": type(model).__name__,
                                        "cnnlab.input_size": "x".join(map(str, size)),
                                        **(metadata or {})})
    if proto.ByteSize() > MAX_PROTO_BYTES:
        raise ExportError(f"{type(model).__name__} needs {proto.ByteSize():,} bytes, over "
                          "protobuf's 2 GiB limit for one file")
    try:
        onnx.checker.check_model(proto, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        raise ExportError(f"the graph of {type(model).__name__} fails onnx.checker: {e}") from e
    return proto


def export(model: Module, path: str | os.PathLike, input_size: Sequence[int], opset: int = 17,
           example: np.ndarray | None = None, metadata: Mapping[str, str] | None = None) -> Path:
    """Write ``model`` to ``path`` as ONNX (float32, opset ``opset``, batch dimension
    dynamic, spatial sizes those of ``input_size`` = (C, H, W)).

    The model is run once in eval mode (its train/eval flags are restored).  Layers
    with no ONNX operator become small subgraphs of standard ones; a layer that
    cannot be written raises :class:`ExportError` naming it.  The file is written
    atomically (:func:`cnnlab._files.atomic_write`): on any error an existing ``path``
    is untouched.  ``metadata``
    (strings) goes into the file's metadata_props, which :func:`load` reads back.
    """
    folder = Path(path).parent
    if not folder.is_dir():     # a mistyped folder is named, not created
        raise FileNotFoundError(f"folder {folder} for {Path(path).name} does not exist")
    proto = to_onnx(model, input_size, opset, example, metadata)
    return write_bytes_atomic(path, proto.SerializeToString(), follow_symlinks=True)   # named by the caller
